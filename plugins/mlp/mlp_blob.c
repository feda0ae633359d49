/* mlp_blob.c -- mlp plugin: the self-describing little-endian model blob (save and load). */
#include "mlp.h"

#include <chicane/plugin_util.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC   "CHMLP001"
#define BLOB_VERSION 2u
/* Version 2: magic, version, input_size, num_actions, activation, shared, head, number of
** hidden layers. Version 1 lacks the head field (its networks are all categorical). */
#define BLOB_FIXED_HEAD(version) (8 + ((version) == 1 ? 6 : 7) * 4)
/* The smallest blob of any version: no hidden layers, no parameters (then rejected for
** other reasons). */
#define BLOB_MIN (BLOB_FIXED_HEAD(1) + 8 + 8 + 4)

/* Bytes of a blob of this version with this many hidden layers and parameters; 0 if that
** overflows size_t. */
static size_t blob_size(uint32_t version, uint32_t num_hidden, uint64_t num_params) {
  size_t head = BLOB_FIXED_HEAD(version) + 4 * (size_t)num_hidden + 8;
  if (num_params > (SIZE_MAX - head - 12) / 12) return 0;
  return head + 12 * (size_t)num_params + 8 + 4;
}

/* ---- save --------------------------------------------------------------------------------- */

int ch__mlp_save(ch_mlp *n, void **blob, size_t *len, ch_error *err) {
  if (!blob || !len) return ch_error_set(err, CH_EINVAL, "mlp save: blob or len is NULL");
  size_t size = blob_size(BLOB_VERSION, n->arch.num_hidden, n->num_params);
  unsigned char *buf = size ? malloc(size) : NULL;
  if (!buf)
    return ch_error_set(err, CH_ENOMEM, "mlp save: out of memory for a %zu-byte blob", size);
  unsigned char *p = buf;
  memcpy(p, BLOB_MAGIC, 8);
  p = ch__net_put_u32(p + 8, BLOB_VERSION);
  p = ch__net_put_u32(p, n->arch.input_size);
  p = ch__net_put_u32(p, n->arch.num_actions);
  p = ch__net_put_u32(p, n->arch.activation);
  p = ch__net_put_u32(p, n->arch.shared);
  p = ch__net_put_u32(p, n->arch.head);
  p = ch__net_put_u32(p, n->arch.num_hidden);
  for (uint32_t i = 0; i < n->arch.num_hidden; i++) p = ch__net_put_u32(p, n->arch.hidden[i]);
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

/* The architecture in a blob whose checksum matched; CH_ECORRUPT if it is not one this plugin
** can build or the length disagrees with it. *at becomes the offset of the parameter count. */
static int read_arch(const unsigned char *p, size_t len, ch_mlp_arch *a, size_t *at,
                     ch_error *err) {
  uint32_t version = ch__net_get_u32(p + 8);
  if (version != 1 && version != BLOB_VERSION)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob format version %u is not supported (this plugin reads 1 and "
                        "%u)",
                        version, BLOB_VERSION);
  memset(a, 0, sizeof *a);
  a->input_size = ch__net_get_u32(p + 12);
  a->num_actions = ch__net_get_u32(p + 16);
  a->activation = ch__net_get_u32(p + 20);
  a->shared = ch__net_get_u32(p + 24);
  a->head = version == 1 ? CH_NET_CATEGORICAL : ch__net_get_u32(p + 28);
  size_t fixed = BLOB_FIXED_HEAD(version);
  a->num_hidden = ch__net_get_u32(p + fixed - 4);
  int ok = a->input_size >= 1 && a->input_size <= CH_MLP_MAX_INPUT && a->num_actions >= 1 &&
           a->num_actions <= CH_MLP_MAX_ACTIONS && a->activation <= CH_MLP_RELU && a->shared <= 1 &&
           a->head <= CH_NET_GAUSSIAN && a->num_hidden <= CH_MLP_MAX_HIDDEN &&
           len >= fixed + 4 * (size_t)a->num_hidden + 8 + 8 + 4;
  for (uint32_t i = 0; ok && i < a->num_hidden; i++) {
    a->hidden[i] = ch__net_get_u32(p + fixed + 4 * (size_t)i);
    ok = a->hidden[i] >= 1 && a->hidden[i] <= CH_MLP_MAX_WIDTH;
  }
  if (!ok) return ch_error_set(err, CH_ECORRUPT, "model blob is corrupt: invalid architecture");
  *at = fixed + 4 * (size_t)a->num_hidden;
  uint64_t count = ch__net_get_u64(p + *at), expect = ch__mlp_param_count(a);
  if (count != expect)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %llu parameters stored, its architecture has %llu",
                        (unsigned long long)count, (unsigned long long)expect);
  size_t size = blob_size(version, a->num_hidden, count);
  if (size != len)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %zu bytes, its header implies %zu", len, size);
  return CH_OK;
}

static int same_arch(const ch_mlp_arch *a, const ch_mlp_arch *b) {
  if (a->input_size != b->input_size || a->num_actions != b->num_actions ||
      a->activation != b->activation || a->shared != b->shared || a->head != b->head ||
      a->num_hidden != b->num_hidden)
    return 0;
  for (uint32_t i = 0; i < a->num_hidden; i++)
    if (a->hidden[i] != b->hidden[i]) return 0;
  return 1;
}

int ch__mlp_load(ch_mlp *n, const void *blob, size_t len, ch_error *err) {
  const unsigned char *p = blob;
  if (!p) return ch_error_set(err, CH_EINVAL, "mlp load: blob is NULL");
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
  ch_mlp_arch arch;
  size_t at = 0;
  int rc = read_arch(p, len, &arch, &at, err);
  if (rc) return rc;
  if (!same_arch(&arch, &n->arch)) {
    char have[256], want[256];
    ch__mlp_arch_describe(&arch, have, sizeof have);
    ch__mlp_arch_describe(&n->arch, want, sizeof want);
    return ch_error_set(err, CH_EINVAL,
                        "mlp load: the blob's architecture (%s) differs from this network's (%s)",
                        have, want);
  }
  uint64_t count = n->num_params;
  p = ch__net_get_floats(p + at + 8, n->params, count);
  n->adam_step = ch__net_get_u64(p);
  p = ch__net_get_floats(p + 8, n->adam_m, count);
  ch__net_get_floats(p, n->adam_v, count);
  ch__mlp_invalidate(n);
  return CH_OK;
}
