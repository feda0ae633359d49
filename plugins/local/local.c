/* local.c -- the local-directory storage plugin: each object is a file under a root directory. */

/*
** USAGE
**
**   storage_local.so, config JSON:
**
**     {"root": "/var/lib/chicane/store", "fsync": true}
**
**   root    string, required. The directory that holds the objects, created with its parents
**           if missing; a relative path is resolved against the working directory at open.
**           Key "a/b/c" is the file <root>/a/b/c.
**   fsync   boolean, default true. Flush each object and its directory to disk before put
**           returns, so a put that returned survives a power cut. false skips the flushes
**           (faster; still atomic against a crashed process, not against a crashed machine).
**
** Keys: '/'-separated segments of [A-Za-z0-9._-], no empty segment, no "." or "..", no leading
** or trailing '/', at most 1024 bytes in all and 255 bytes (the file-name limit) per segment.
**
** Behaviour:
**  - put writes "<dir>/.tmp~<pid>~<n>~<name>", flushes it, renames it over the target and
**    flushes the directory. '~' is not a key character, so no key can name a temp file, and a
**    temp file orphaned by a crashed writer is never listed nor read.
**  - list reports regular files whose names are valid key segments, in byte order of the key;
**    anything else in the tree (temp files, symlinks, stray names) is skipped.
**  - remove unlinks the file and then removes the directories it leaves empty, up to but not
**    including the root, so the tree does not fill with empty directories of deleted runs.
**  - A handle may be used from several threads at once.
*/

#include <chicane/plugin.h>
#include <chicane/plugin_util.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCAL_KEY_MAX      1024
#define LOCAL_SEGMENT_MAX  255
#define LOCAL_TMP_NAME_MAX 200 /* bytes of the target name kept in a temp file's name */
#define LOCAL_PUT_RETRIES  100 /* a concurrent remove may prune a directory put just made */

typedef struct local_store {
  char *root; /* absolute, no trailing '/' */
  size_t root_len;
  int fsync;
  atomic_uint_fast64_t tmp_counter;
} local_store;

/* ---- keys and paths -------------------------------------------------------------------- */

static int local_key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

static int local_bad_key(ch_error *err, const char *key, const char *reason) {
  size_t n = strlen(key);
  return ch_error_set(err, CH_EINVAL, "invalid storage key '%.200s%s': %s", key,
                      n > 200 ? "..." : "", reason);
}

/* Check one segment [s, s+n); complete says whether a '/' follows or it ends a whole key. */
static const char *local_segment_problem(const char *s, size_t n, int complete) {
  if (n == 0) return "empty segment";
  if (n > LOCAL_SEGMENT_MAX) return "segment longer than 255 bytes";
  for (size_t i = 0; i < n; i++)
    if (!local_key_char((unsigned char)s[i]))
      return "character outside [A-Za-z0-9._-] in a segment";
  if (complete && n == 1 && s[0] == '.') return "segment '.'";
  if (complete && n == 2 && s[0] == '.' && s[1] == '.') return "segment '..'";
  return NULL;
}

/* A key, or (as_prefix) a list prefix: empty, may end in '/' or inside a segment. */
static int local_check_key(const char *key, int as_prefix, ch_error *err) {
  if (!key) return ch_error_set(err, CH_EINVAL, "invalid storage key: NULL");
  size_t len = strlen(key);
  if (len == 0 && !as_prefix) return local_bad_key(err, key, "empty key");
  if (len > LOCAL_KEY_MAX) return local_bad_key(err, key, "longer than 1024 bytes");
  if (key[0] == '/') return local_bad_key(err, key, "leading '/'");
  if (!as_prefix && key[len - 1] == '/') return local_bad_key(err, key, "trailing '/'");
  const char *s = key;
  while (*s) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    const char *why = local_segment_problem(s, n, slash || !as_prefix);
    if (why) return local_bad_key(err, key, why);
    if (!slash) break;
    s = slash + 1;
  }
  return CH_OK;
}

/* root + "/" + rel (rel_len bytes of it); malloc'd, NULL when out of memory. */
static char *local_join(const local_store *st, const char *rel, size_t rel_len) {
  char *p = malloc(st->root_len + 1 + rel_len + 1);
  if (!p) return NULL;
  memcpy(p, st->root, st->root_len);
  p[st->root_len] = '/';
  memcpy(p + st->root_len + 1, rel, rel_len);
  p[st->root_len + 1 + rel_len] = '\0';
  return p;
}

static int local_io_error(ch_error *err, const char *what, const char *path, int e) {
  return ch_error_set(err, CH_EIO, "storage local: %s %s: %s", what, path, strerror(e));
}

static int local_oom(ch_error *err) {
  return ch_error_set(err, CH_ENOMEM, "storage local: out of memory");
}

/* fsync a directory, so that the names created or removed in it are durable. missing_ok: a
** directory that is gone (pruned by a concurrent remove) needs no flush. */
static int local_sync_dir(const char *dir, int missing_ok, ch_error *err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && missing_ok && errno == ENOENT) return CH_OK;
  if (fd < 0) return local_io_error(err, "open directory", dir, errno);
  int rc = fsync(fd) == 0 ? CH_OK : local_io_error(err, "fsync directory", dir, errno);
  close(fd);
  return rc;
}

static int local_mkdirs_once(char *path, size_t from, int sync, int *vanished, ch_error *err) {
  for (char *s = strchr(path + from, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    int made = mkdir(path, 0777) == 0;
    int e = errno;
    int rc = CH_OK;
    if (!made && e != EEXIST) rc = local_io_error(err, "create directory", path, e);
    *vanished = !made && e == ENOENT;
    if (made && sync) {
      char *parent = strrchr(path, '/');
      if (parent && parent != path) {
        *parent = '\0';
        rc = local_sync_dir(path, 1, err); /* if pruned meanwhile, the next step remakes it */
        *parent = '/';
      }
    }
    *s = '/';
    if (rc != CH_OK) return rc;
  }
  return CH_OK;
}

/* Create the directories of path from byte `from` on (each '/' after it ends one). The part
** before `from` must exist. New directories' parents are flushed when sync is set. A parent
** that vanishes midway (a concurrent remove pruned it) is made again. */
static int local_mkdirs(char *path, size_t from, int sync, ch_error *err) {
  for (int attempt = 0;; attempt++) {
    int vanished = 0;
    int rc = local_mkdirs_once(path, from, sync, &vanished, err);
    if (rc == CH_OK || !vanished || attempt == LOCAL_PUT_RETRIES) return rc;
  }
}

/* ---- configuration --------------------------------------------------------------------- */

static int local_parse_config(const char *json, char **root, int *sync, ch_error *err) {
  *root = NULL;
  *sync = 1;
  if (!json) return ch_error_set(err, CH_EINVAL, "storage local: config is NULL (needs 'root')");
  const char *end = NULL;
  cJSON *cfg = cJSON_ParseWithOpts(json, &end, 1);
  if (!cfg)
    return ch_error_set(err, CH_EINVAL, "storage local: config is not valid JSON (at byte %ld)",
                        end ? (long)(end - json) : 0L);
  int rc = CH_OK;
  if (!cJSON_IsObject(cfg))
    rc = ch_error_set(err, CH_EINVAL, "storage local: config must be a JSON object");
  for (const cJSON *it = cfg->child; rc == CH_OK && it; it = it->next) {
    if (strcmp(it->string, "root") == 0) {
      if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
        rc = ch_error_set(err, CH_EINVAL, "storage local: config key 'root' must be a path");
      else if (!(*root = strdup(it->valuestring)))
        rc = local_oom(err);
    } else if (strcmp(it->string, "fsync") == 0) {
      if (!cJSON_IsBool(it))
        rc = ch_error_set(err, CH_EINVAL, "storage local: config key 'fsync' must be a boolean");
      *sync = cJSON_IsTrue(it);
    } else {
      rc = ch_error_set(err, CH_EINVAL, "storage local: unknown config key '%s'", it->string);
    }
  }
  if (rc == CH_OK && !*root)
    rc = ch_error_set(err, CH_EINVAL, "storage local: config key 'root' is required");
  cJSON_Delete(cfg);
  if (rc != CH_OK) {
    free(*root);
    *root = NULL;
  }
  return rc;
}

/* Create root with its parents, check it is a writable directory, and make it absolute. */
static int local_prepare_root(const char *given, char **out, ch_error *err) {
  size_t n = strlen(given);
  char *path = malloc(n + 2);
  if (!path) return local_oom(err);
  memcpy(path, given, n);
  path[n] = '/'; /* so local_mkdirs creates the last component too */
  path[n + 1] = '\0';
  ch_error inner = {0};
  int rc = local_mkdirs(path, path[0] == '/' ? 1 : 0, 0, &inner);
  path[n] = '\0';
  struct stat sb = {0};
  if (rc == CH_OK && stat(path, &sb) != 0) rc = local_io_error(&inner, "stat", path, errno);
  if (rc == CH_OK && !S_ISDIR(sb.st_mode)) rc = local_io_error(&inner, "use", path, ENOTDIR);
  if (rc == CH_OK && access(path, W_OK | X_OK) != 0)
    rc = local_io_error(&inner, "write into", path, errno);
  if (rc == CH_OK && !(*out = realpath(path, NULL)))
    rc = local_io_error(&inner, "resolve", path, errno);
  free(path);
  /* Name the root as configured even when a parent of it is what failed. */
  if (rc != CH_OK)
    ch_error_set(err, rc, "storage local: cannot use root %s: %s", given,
                 inner.message + strlen("storage local: "));
  return rc;
}

/* ---- vtable members -------------------------------------------------------------------- */

static int local_open(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  (void)host;
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "storage local: open: out is NULL");
  *out = NULL;
  char *given;
  int sync;
  int rc = local_parse_config(config_json, &given, &sync, err);
  if (rc != CH_OK) return rc;
  local_store *st = calloc(1, sizeof *st);
  if (!st) {
    free(given);
    return local_oom(err);
  }
  rc = local_prepare_root(given, &st->root, err);
  free(given);
  if (rc != CH_OK) {
    free(st);
    return rc;
  }
  st->root_len = strlen(st->root);
  if (st->root_len == 1) st->root_len = 0; /* root "/": keys join as "/key", not "//key" */
  st->fsync = sync;
  atomic_init(&st->tmp_counter, 0);
  *out = st;
  return CH_OK;
}

static void local_close(void *h) {
  local_store *st = h;
  if (!st) return;
  free(st->root);
  free(st);
}

static int local_write_all(int fd, const void *data, size_t len) {
  const unsigned char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Create a fresh temp file beside path (whose last '/' is at name - 1); *tmp is malloc'd. */
static int local_create_tmp(local_store *st, char *path, const char *name, char **tmp, int *fd,
                            ch_error *err) {
  size_t dir_len = (size_t)(name - path);
  size_t cap = dir_len + 64 + LOCAL_TMP_NAME_MAX;
  if (!(*tmp = malloc(cap))) return local_oom(err);
  for (int attempt = 0;; attempt++) {
    unsigned long long n = (unsigned long long)atomic_fetch_add(&st->tmp_counter, 1);
    snprintf(*tmp, cap, "%.*s.tmp~%ld~%llu~%.*s", (int)dir_len, path, (long)getpid(), n,
             LOCAL_TMP_NAME_MAX, name);
    *fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (*fd >= 0) return CH_OK;
    int e = errno;
    /* EEXIST: another handle of this process took the name. ENOENT: a remove pruned the
    ** directory between mkdirs and open; make it again. */
    if ((e == EEXIST || e == ENOENT) && attempt < LOCAL_PUT_RETRIES) {
      int rc = e == ENOENT ? local_mkdirs(path, st->root_len + 1, st->fsync, err) : CH_OK;
      if (rc == CH_OK) continue;
      free(*tmp);
      *tmp = NULL;
      return rc;
    }
    int rc = local_io_error(err, "create", *tmp, e);
    free(*tmp);
    *tmp = NULL;
    return rc;
  }
}

static int local_put(void *h, const char *key, const void *data, size_t len, ch_error *err) {
  local_store *st = h;
  int rc = local_check_key(key, 0, err);
  if (rc != CH_OK) return rc;
  if (!data && len > 0)
    return ch_error_set(err, CH_EINVAL, "storage local: put '%s': data is NULL", key);
  char *path = local_join(st, key, strlen(key));
  if (!path) return local_oom(err);
  char *name = strrchr(path, '/') + 1;
  char *tmp = NULL;
  int fd = -1;
  rc = local_mkdirs(path, st->root_len + 1, st->fsync, err);
  if (rc == CH_OK) rc = local_create_tmp(st, path, name, &tmp, &fd, err);
  if (rc == CH_OK && local_write_all(fd, data, len) != 0)
    rc = local_io_error(err, "write", tmp, errno);
  if (rc == CH_OK && st->fsync && fsync(fd) != 0) rc = local_io_error(err, "fsync", tmp, errno);
  if (fd >= 0 && close(fd) != 0 && rc == CH_OK) rc = local_io_error(err, "close", tmp, errno);
  if (rc == CH_OK && rename(tmp, path) != 0) rc = local_io_error(err, "rename to", path, errno);
  if (rc != CH_OK && tmp) unlink(tmp);
  if (rc == CH_OK && st->fsync) {
    name[-1] = '\0';
    rc = local_sync_dir(name - 1 == path ? "/" : path, 0, err);
  }
  free(tmp);
  free(path);
  return rc;
}

static int local_not_found(local_store *st, const char *key, ch_error *err) {
  return ch_error_set(err, CH_ENOTFOUND, "no object '%s' in %s", key,
                      st->root_len ? st->root : "/");
}

static int local_read_all(int fd, unsigned char *buf, size_t len, const char *path, ch_error *err) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return local_io_error(err, "read", path, errno);
    if (n == 0)
      return ch_error_set(err, CH_EIO, "storage local: read %s: file shrank while reading", path);
    done += (size_t)n;
  }
  return CH_OK;
}

static int local_get(void *h, const char *key, void **data, size_t *len, ch_error *err) {
  local_store *st = h;
  int rc = local_check_key(key, 0, err);
  if (rc != CH_OK) return rc;
  if (!data || !len) return ch_error_set(err, CH_EINVAL, "storage local: get: NULL argument");
  *data = NULL;
  *len = 0;
  char *path = local_join(st, key, strlen(key));
  if (!path) return local_oom(err);
  struct stat sb = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
    rc = local_not_found(st, key, err);
  else if (fd < 0)
    rc = local_io_error(err, "open", path, errno);
  else if (fstat(fd, &sb) != 0)
    rc = local_io_error(err, "stat", path, errno);
  else if (S_ISDIR(sb.st_mode))
    rc = local_not_found(st, key, err);
  else if (!S_ISREG(sb.st_mode))
    rc = local_io_error(err, "read", path, EINVAL);
  unsigned char *buf = NULL;
  if (rc == CH_OK && !(buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1))) rc = local_oom(err);
  if (rc == CH_OK) rc = local_read_all(fd, buf, (size_t)sb.st_size, path, err);
  if (fd >= 0) close(fd);
  free(path);
  if (rc != CH_OK) {
    free(buf);
    return rc;
  }
  *data = buf;
  *len = (size_t)sb.st_size;
  return CH_OK;
}

static void local_free_data(void *h, void *data) {
  (void)h;
  free(data);
}

/* ---- list ------------------------------------------------------------------------------ */

typedef struct local_entry {
  char *name;
  int is_dir;
  uint64_t size;
} local_entry;

typedef struct local_walk {
  local_store *st;
  ch_storage_list_fn fn;
  void *user;
  char key[LOCAL_KEY_MAX + 1];
} local_walk;

/* Byte order of the keys the entries stand for: a directory sorts as its name plus '/'. */
static int local_entry_cmp(const void *a, const void *b) {
  const local_entry *x = a, *y = b;
  const unsigned char *p = (const unsigned char *)x->name, *q = (const unsigned char *)y->name;
  while (*p && *p == *q) p++, q++;
  int cp = *p ? *p : (x->is_dir ? '/' : 0);
  int cq = *q ? *q : (y->is_dir ? '/' : 0);
  return cp - cq;
}

static void local_free_entries(local_entry *v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i].name);
  free(v);
}

/* Read the listable entries of directory d whose names start with filter. */
static int local_read_dir(DIR *d, const char *path, const char *filter, local_entry **out,
                          size_t *count, ch_error *err) {
  local_entry *v = NULL;
  size_t n = 0, cap = 0, filter_len = strlen(filter);
  struct dirent *de;
  for (;;) {
    errno = 0; /* readdir reports an error only through errno */
    if (!(de = readdir(d))) break;
    struct stat sb;
    size_t len = strlen(de->d_name);
    if (local_segment_problem(de->d_name, len, 1) || strncmp(de->d_name, filter, filter_len))
      continue;
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) continue; /* gone */
    if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      local_entry *nv = realloc(v, cap * sizeof *v);
      if (!nv) break;
      v = nv;
    }
    if (!(v[n].name = strdup(de->d_name))) break;
    v[n].is_dir = S_ISDIR(sb.st_mode);
    v[n++].size = (uint64_t)sb.st_size;
  }
  if (de) {
    local_free_entries(v, n);
    return local_oom(err);
  }
  if (errno != 0) {
    int e = errno;
    local_free_entries(v, n);
    return local_io_error(err, "read directory", path, e);
  }
  if (n > 1) qsort(v, n, sizeof *v, local_entry_cmp);
  *out = v;
  *count = n;
  return CH_OK;
}

/* Walk the directory for key prefix w->key[0..base) (empty or ending in '/'). Returns CH_OK,
** 1 when the callback stopped the walk, or a ch_status. */
static int local_walk_dir(local_walk *w, size_t base, const char *filter, ch_error *err) {
  char *path = local_join(w->st, w->key, base);
  if (!path) return local_oom(err);
  DIR *d = opendir(path);
  if (!d) {
    int e = errno;
    int rc = e == ENOENT || e == ENOTDIR ? CH_OK : local_io_error(err, "open directory", path, e);
    free(path);
    return rc; /* a prefix naming no directory, or one removed meanwhile, lists nothing */
  }
  local_entry *v = NULL;
  size_t n = 0;
  int rc = local_read_dir(d, path, filter, &v, &n, err);
  closedir(d);
  free(path);
  for (size_t i = 0; rc == CH_OK && i < n; i++) {
    size_t len = strlen(v[i].name);
    /* Too long to be a key (a file) or to hold one (a directory): not ours, skip it. */
    if (base + len + (size_t)v[i].is_dir * 2 > LOCAL_KEY_MAX) continue;
    memcpy(w->key + base, v[i].name, len + 1);
    if (!v[i].is_dir) {
      rc = w->fn(w->key, v[i].size, w->user) != 0 ? 1 : CH_OK;
    } else {
      w->key[base + len] = '/';
      w->key[base + len + 1] = '\0';
      rc = local_walk_dir(w, base + len + 1, "", err);
    }
  }
  local_free_entries(v, n);
  return rc;
}

static int local_list(void *h, const char *prefix, ch_storage_list_fn fn, void *user,
                      ch_error *err) {
  local_store *st = h;
  if (!fn) return ch_error_set(err, CH_EINVAL, "storage local: list: callback is NULL");
  if (!prefix) prefix = "";
  int rc = local_check_key(prefix, 1, err);
  if (rc != CH_OK) return rc;
  local_walk *w = malloc(sizeof *w);
  if (!w) return local_oom(err);
  w->st = st;
  w->fn = fn;
  w->user = user;
  /* Start in the deepest directory the prefix names; its last partial segment filters. */
  const char *slash = strrchr(prefix, '/');
  size_t base = slash ? (size_t)(slash - prefix) + 1 : 0;
  memcpy(w->key, prefix, base);
  w->key[base] = '\0';
  rc = local_walk_dir(w, base, prefix + base, err);
  free(w);
  return rc == 1 ? CH_OK : rc;
}

/* ---- remove ---------------------------------------------------------------------------- */

/* Remove the directories of path (a file path under root) that are now empty, deepest first,
** stopping at the first that is not (or at the root). */
static void local_prune(local_store *st, char *path) {
  for (char *s = strrchr(path, '/'); s && (size_t)(s - path) > st->root_len;
       s = strrchr(path, '/')) {
    *s = '\0';
    if (rmdir(path) != 0) return;
  }
}

static int local_remove(void *h, const char *key, ch_error *err) {
  local_store *st = h;
  int rc = local_check_key(key, 0, err);
  if (rc != CH_OK) return rc;
  char *path = local_join(st, key, strlen(key));
  if (!path) return local_oom(err);
  if (unlink(path) != 0) {
    int e = errno;
    /* EISDIR/EPERM: the key names a directory of other keys, not an object. */
    if (e == ENOENT || e == ENOTDIR || e == EISDIR || e == EPERM)
      rc = local_not_found(st, key, err);
    else
      rc = local_io_error(err, "remove", path, e);
  }
  if (rc == CH_OK && st->fsync) {
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rc = local_sync_dir(slash == path ? "/" : path, 1, err);
    *slash = '/';
  }
  if (rc == CH_OK) local_prune(st, path);
  free(path);
  return rc;
}

static const ch_storage_vtable local_vtable = {
    {CH_PLUGIN_ABI_VERSION, sizeof(ch_storage_vtable), CH_PLUGIN_STORAGE, 0, "local", "1.0.0",
     "objects as files under a local directory (atomic replace, fsync)"},
    local_open,
    local_close,
    local_put,
    local_get,
    local_free_data,
    local_list,
    local_remove,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &local_vtable.header;
}
