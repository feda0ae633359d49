/* paths.c -- data directory, track and script path resolution, whole-file reads, SHA-256. */
#include "paths.h"

#include <chicane/plugin_util.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CHICANE_SOURCE_DATA_DIR
#define CHICANE_SOURCE_DATA_DIR ""
#endif
#ifndef CHICANE_DATA_INSTALL_DIR
#define CHICANE_DATA_INSTALL_DIR ""
#endif

static int ch__is_dir(const char *p) {
  struct stat st;
  return p && p[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ch__is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

const char *ch_data_dir(void) {
  const char *env = getenv("CHICANE_DATA_DIR");
  if (ch__is_dir(env)) return env;
  if (ch__is_dir(CHICANE_SOURCE_DATA_DIR)) return CHICANE_SOURCE_DATA_DIR;
  return CHICANE_DATA_INSTALL_DIR;
}

/* A path (it has a '/' or ends in .track or .npy: the track library reads DeepRacer's .npy
** too) is taken as it is. A name is looked up as DATA/tracks/NAME.track, where the shipped
** tracks live, then HOME/tracks/NAME.track, where `chicane tracks import` writes, with HOME
** from $CHICANE_HOME (default "."); shipped names come first so a script means the same track
** on every machine. */
int ch_resolve_track(const char *name, char *out, size_t outlen, ch_error *err) {
  size_t len = strlen(name);
  if (strchr(name, '/') || (len > 6 && strcmp(name + len - 6, ".track") == 0) ||
      (len > 4 && strcmp(name + len - 4, ".npy") == 0)) {
    if (!ch__is_file(name)) return ch_error_set(err, CH_ENOTFOUND, "%s: no such track file", name);
    snprintf(out, outlen, "%s", name);
    return CH_OK;
  }
  const char *home = getenv("CHICANE_HOME");
  char data[CH_PATH_MAX], mine[CH_PATH_MAX];
  snprintf(data, sizeof data, "%s/tracks/%s.track", ch_data_dir(), name);
  snprintf(mine, sizeof mine, "%s/tracks/%s.track", home && *home ? home : ".", name);
  const char *found = ch__is_file(data) ? data : ch__is_file(mine) ? mine : NULL;
  if (!found)
    return ch_error_set(err, CH_ENOTFOUND,
                        "no track '%s' (looked for %s and %s; `chicane tracks` lists them)", name,
                        data, mine);
  snprintf(out, outlen, "%s", found);
  return CH_OK;
}

int ch_file_resolve(const char *name, const char *base_dir, char *out, size_t outlen,
                    ch_error *err) {
  if (name[0] == '/') {
    snprintf(out, outlen, "%s", name);
  } else {
    snprintf(out, outlen, "%s/%s", base_dir, name);
    if (!ch__is_file(out)) snprintf(out, outlen, "%s/%s", ch_data_dir(), name);
  }
  if (!ch__is_file(out))
    return ch_error_set(err, CH_ENOTFOUND, "%s: no such file (relative to %s or %s)", name,
                        base_dir, ch_data_dir());
  return CH_OK;
}

void ch_dirname(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    snprintf(out, outlen, ".");
  } else if (slash == path) {
    snprintf(out, outlen, "/");
  } else {
    snprintf(out, outlen, "%.*s", (int)(slash - path), path);
  }
}

int ch_read_file(const char *path, char **data, size_t *len, ch_error *err) {
  *data = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return ch_error_set(err, errno == ENOENT ? CH_ENOTFOUND : CH_EIO, "%s: %s", path,
                        strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      char *nb = realloc(buf, 2 * cap + 1);
      if (!nb) free(buf);
      buf = nb;
      cap *= 2;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  if (bad) {
    free(buf);
    return ch_error_set(err, CH_EIO, "%s: read error", path);
  }
  buf[n] = '\0';
  *data = buf;
  if (len) *len = n;
  return CH_OK;
}

void ch_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  for (unsigned int i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  out[64] = '\0';
}
