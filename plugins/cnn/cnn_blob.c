/* cnn_blob.c -- cnn plugin: the self-describing little-endian model blob (save and load). */
#include "cnn.h"

#include <chicane/plugin_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC   "CHCNN001"
#define BLOB_VERSION 1u
/* magic, version, width, height, channels, vector_size, architecture, head, num_actions,
** shared */
#define BLOB_FIXED_HEAD (8 + 9 * 4)
/* A blob without parameters. */
#define BLOB_MIN (BLOB_FIXED_HEAD + CH_NET_BLOB_TAIL)

/* ---- save --------------------------------------------------------------------------------- */

int ch__cnn_save(void *net, void **blob, size_t *len, ch_error *err) {
  const ch_cnn *n = net;
  const ch_cnn_arch *a = &n->arch;
  const uint32_t head[] = {BLOB_VERSION,    a->width, a->height,      a->channels, a->vector_size,
                           a->architecture, a->head,  a->num_actions, a->shared};
  return ch__net_blob_save(&n->core, BLOB_MAGIC, head, sizeof head / sizeof head[0], blob, len,
                           err);
}

/* ---- load --------------------------------------------------------------------------------- */

static int arch_valid(const ch_cnn_arch *a) {
  uint32_t need;
  int ok = a->width >= 1 && a->width <= CH_CNN_MAX_SIDE && a->height >= 1 &&
           a->height <= CH_CNN_MAX_SIDE && a->channels >= 1 && a->channels <= CH_CNN_MAX_CHANNELS &&
           a->vector_size <= CH_CNN_MAX_VECTOR && a->architecture < CH_CNN_NUM_ARCHS &&
           a->head <= CH_NET_GAUSSIAN && a->num_actions >= 1 &&
           a->num_actions <= CH_CNN_MAX_ACTIONS && a->shared <= 1;
  return ok && !ch__cnn_too_small(a, &need);
}

/* The architecture in a blob whose checksum matched; CH_ECORRUPT if it is not one this plugin
** can build or the length disagrees with it. */
static int read_arch(const unsigned char *p, size_t len, ch_cnn_arch *a, ch_error *err) {
  uint32_t version = ch__net_get_u32(p + 8);
  if (version != BLOB_VERSION)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob format version %u is not supported (this plugin reads %u)",
                        version, BLOB_VERSION);
  uint32_t *dst[] = {&a->width,        &a->height, &a->channels,    &a->vector_size,
                     &a->architecture, &a->head,   &a->num_actions, &a->shared};
  for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++) *dst[i] = ch__net_get_u32(p + 12 + 4 * i);
  if (!arch_valid(a))
    return ch_error_set(err, CH_ECORRUPT, "model blob is corrupt: invalid architecture");
  return ch__net_blob_check_count(p, BLOB_FIXED_HEAD, len, ch__cnn_param_count(a), err);
}

/* The names of the fields in which a and b differ, e.g. "image width, num_actions". */
static void arch_diff(const ch_cnn_arch *a, const ch_cnn_arch *b, char *buf, size_t size) {
  const uint32_t av[] = {a->width,        a->height, a->channels,    a->vector_size,
                         a->architecture, a->head,   a->num_actions, a->shared};
  const uint32_t bv[] = {b->width,        b->height, b->channels,    b->vector_size,
                         b->architecture, b->head,   b->num_actions, b->shared};
  static const char *const names[] = {"image width", "image height", "image channels",
                                      "vector_size", "architecture", "head",
                                      "num_actions", "shared"};
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof av / sizeof av[0] && at < size; i++)
    if (av[i] != bv[i])
      at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? ", " : "", names[i]);
}

int ch__cnn_load(void *net, const void *blob, size_t len, ch_error *err) {
  ch_cnn *n = net;
  const unsigned char *p = blob;
  ch_error_clear(err);
  int rc = ch__net_blob_open(&n->core, p, len, BLOB_MAGIC, BLOB_MIN, err);
  if (rc) return rc;
  ch_cnn_arch arch;
  rc = read_arch(p, len, &arch, err);
  if (rc) return rc;
  if (memcmp(&arch, &n->arch, sizeof arch)) {
    char diff[160], have[256], want[256];
    arch_diff(&arch, &n->arch, diff, sizeof diff);
    ch__cnn_arch_describe(&arch, have, sizeof have);
    ch__cnn_arch_describe(&n->arch, want, sizeof want);
    return ch_error_set(err, CH_EINVAL,
                        "cnn load: the blob's architecture differs in %s: blob (%s), this network "
                        "(%s)",
                        diff, have, want);
  }
  ch__net_blob_restore(&n->core, p, BLOB_FIXED_HEAD);
  return CH_OK;
}
