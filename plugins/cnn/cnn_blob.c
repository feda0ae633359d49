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
/* Header, parameter count, Adam step count, checksum: a blob without parameters. */
#define BLOB_MIN (BLOB_FIXED_HEAD + 8 + 8 + 4)

/* Bytes of a blob with this many parameters; 0 if that overflows size_t. */
static size_t blob_size(uint64_t num_params) {
  if (num_params > (SIZE_MAX - BLOB_MIN) / 12) return 0;
  return BLOB_MIN + 12 * (size_t)num_params;
}

/* ---- save --------------------------------------------------------------------------------- */

int ch__cnn_save(ch_cnn *n, void **blob, size_t *len, ch_error *err) {
  if (!blob || !len) return ch_error_set(err, CH_EINVAL, "cnn save: blob or len is NULL");
  size_t size = blob_size(n->num_params);
  unsigned char *buf = size ? malloc(size) : NULL;
  if (!buf)
    return ch_error_set(err, CH_ENOMEM, "cnn save: out of memory for a %zu-byte blob", size);
  const ch_cnn_arch *a = &n->arch;
  const uint32_t head[] = {BLOB_VERSION,    a->width, a->height,      a->channels, a->vector_size,
                           a->architecture, a->head,  a->num_actions, a->shared};
  unsigned char *p = buf;
  memcpy(p, BLOB_MAGIC, 8);
  p += 8;
  for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) p = ch__net_put_u32(p, head[i]);
  p = ch__net_put_u64(p, n->num_params);
  p = ch__net_put_floats(p, n->params, n->num_params);
  p = ch__net_put_u64(p, n->adam_step);
  p = ch__net_put_floats(p, n->adam_m, n->num_params);
  p = ch__net_put_floats(p, n->adam_v, n->num_params);
  ch__net_put_u32(p, ch__net_crc32(buf, (size_t)(p - buf)));
  *blob = buf;
  *len = size;
  return CH_OK;
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
  uint64_t count = ch__net_get_u64(p + BLOB_FIXED_HEAD), expect = ch__cnn_param_count(a);
  if (count != expect)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %llu parameters stored, its architecture has %llu",
                        (unsigned long long)count, (unsigned long long)expect);
  if (blob_size(count) != len)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %zu bytes, its header implies %zu", len,
                        blob_size(count));
  return CH_OK;
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

int ch__cnn_load(ch_cnn *n, const void *blob, size_t len, ch_error *err) {
  const unsigned char *p = blob;
  if (!p) return ch_error_set(err, CH_EINVAL, "cnn load: blob is NULL");
  if (len < BLOB_MIN)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %zu bytes, shorter than the smallest valid "
                        "blob (%d bytes)",
                        len, BLOB_MIN);
  if (memcmp(p, BLOB_MAGIC, 8))
    return ch_error_set(err, CH_ECORRUPT, "model blob is corrupt: bad magic (expected \"%s\")",
                        BLOB_MAGIC);
  uint32_t stored = ch__net_get_u32(p + len - 4), computed = ch__net_crc32(p, len - 4);
  if (stored != computed)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: checksum mismatch (stored %08x, computed %08x)",
                        stored, computed);
  ch_cnn_arch arch;
  int rc = read_arch(p, len, &arch, err);
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
  uint64_t count = n->num_params;
  p = ch__net_get_floats(p + BLOB_FIXED_HEAD + 8, n->params, count);
  n->adam_step = ch__net_get_u64(p);
  p = ch__net_get_floats(p + 8, n->adam_m, count);
  ch__net_get_floats(p, n->adam_v, count);
  ch__cnn_invalidate(n);
  return CH_OK;
}
