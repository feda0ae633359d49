/* mlp_blob.c -- mlp plugin: the self-describing little-endian model blob (save and load). */
#include "mlp.h"

#include <chicane/plugin_util.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BLOB_MAGIC   "CHMLP001"
#define BLOB_VERSION 1u
/* magic, version, input_size, num_actions, activation, shared, number of hidden layers */
#define BLOB_FIXED_HEAD (8 + 6 * 4)
/* The smallest blob: no hidden layers, no parameters (then rejected for other reasons). */
#define BLOB_MIN (BLOB_FIXED_HEAD + 8 + 8 + 4)

/* ---- little-endian encoding, independent of the host's byte order ------------------------ */

static unsigned char *put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static unsigned char *put_floats(unsigned char *p, const float *f, uint64_t count) {
  for (uint64_t i = 0; i < count; i++) {
    uint32_t bits;
    memcpy(&bits, &f[i], sizeof bits);
    p = put_u32(p, bits);
  }
  return p;
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static const unsigned char *get_floats(const unsigned char *p, float *f, uint64_t count) {
  for (uint64_t i = 0; i < count; i++, p += 4) {
    uint32_t bits = get_u32(p);
    memcpy(&f[i], &bits, sizeof bits);
  }
  return p;
}

/* zlib's crc32 takes a 32-bit length; feed it in pieces so that huge blobs work too. */
static uint32_t blob_crc(const unsigned char *p, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (len) {
    uInt piece = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, p, piece);
    p += piece;
    len -= piece;
  }
  return (uint32_t)crc;
}

/* Bytes of a blob with this many hidden layers and parameters; 0 if that overflows size_t. */
static size_t blob_size(uint32_t num_hidden, uint64_t num_params) {
  size_t head = BLOB_FIXED_HEAD + 4 * (size_t)num_hidden + 8;
  if (num_params > (SIZE_MAX - head - 12) / 12) return 0;
  return head + 12 * (size_t)num_params + 8 + 4;
}

/* ---- save --------------------------------------------------------------------------------- */

int ch__mlp_save(ch_mlp *n, void **blob, size_t *len, ch_error *err) {
  if (!blob || !len) return ch_error_set(err, CH_EINVAL, "mlp save: blob or len is NULL");
  size_t size = blob_size(n->arch.num_hidden, n->num_params);
  unsigned char *buf = size ? malloc(size) : NULL;
  if (!buf)
    return ch_error_set(err, CH_ENOMEM, "mlp save: out of memory for a %zu-byte blob", size);
  unsigned char *p = buf;
  memcpy(p, BLOB_MAGIC, 8);
  p = put_u32(p + 8, BLOB_VERSION);
  p = put_u32(p, n->arch.input_size);
  p = put_u32(p, n->arch.num_actions);
  p = put_u32(p, n->arch.activation);
  p = put_u32(p, n->arch.shared);
  p = put_u32(p, n->arch.num_hidden);
  for (uint32_t i = 0; i < n->arch.num_hidden; i++) p = put_u32(p, n->arch.hidden[i]);
  p = put_u64(p, n->num_params);
  p = put_floats(p, n->params, n->num_params);
  p = put_u64(p, n->adam_step);
  p = put_floats(p, n->adam_m, n->num_params);
  p = put_floats(p, n->adam_v, n->num_params);
  put_u32(p, blob_crc(buf, (size_t)(p - buf)));
  *blob = buf;
  *len = size;
  return CH_OK;
}

/* ---- load --------------------------------------------------------------------------------- */

/* The architecture in a blob whose checksum matched; CH_ECORRUPT if it is not one this plugin
** can build or the length disagrees with it. */
static int read_arch(const unsigned char *p, size_t len, ch_mlp_arch *a, uint64_t *num_params,
                     ch_error *err) {
  uint32_t version = get_u32(p + 8);
  if (version != BLOB_VERSION)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob format version %u is not supported (this plugin reads %u)",
                        version, BLOB_VERSION);
  memset(a, 0, sizeof *a);
  a->input_size = get_u32(p + 12);
  a->num_actions = get_u32(p + 16);
  a->activation = get_u32(p + 20);
  a->shared = get_u32(p + 24);
  a->num_hidden = get_u32(p + 28);
  int ok = a->input_size >= 1 && a->input_size <= CH_MLP_MAX_INPUT && a->num_actions >= 1 &&
           a->num_actions <= CH_MLP_MAX_ACTIONS && a->activation <= CH_MLP_RELU && a->shared <= 1 &&
           a->num_hidden <= CH_MLP_MAX_HIDDEN && len >= BLOB_MIN + 4 * (size_t)a->num_hidden;
  for (uint32_t i = 0; ok && i < a->num_hidden; i++) {
    a->hidden[i] = get_u32(p + BLOB_FIXED_HEAD + 4 * (size_t)i);
    ok = a->hidden[i] >= 1 && a->hidden[i] <= CH_MLP_MAX_WIDTH;
  }
  if (!ok) return ch_error_set(err, CH_ECORRUPT, "model blob is corrupt: invalid architecture");
  *num_params = get_u64(p + BLOB_FIXED_HEAD + 4 * (size_t)a->num_hidden);
  uint64_t expect = ch__mlp_param_count(a);
  if (*num_params != expect)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %llu parameters stored, its architecture has %llu",
                        (unsigned long long)*num_params, (unsigned long long)expect);
  if (blob_size(a->num_hidden, *num_params) != len)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %zu bytes, its header implies %zu", len,
                        blob_size(a->num_hidden, *num_params));
  return CH_OK;
}

static int same_arch(const ch_mlp_arch *a, const ch_mlp_arch *b) {
  if (a->input_size != b->input_size || a->num_actions != b->num_actions ||
      a->activation != b->activation || a->shared != b->shared || a->num_hidden != b->num_hidden)
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
  uint32_t stored = get_u32(p + len - 4), computed = blob_crc(p, len - 4);
  if (stored != computed)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: checksum mismatch (stored %08x, computed %08x)",
                        stored, computed);
  ch_mlp_arch arch;
  uint64_t count = 0;
  int rc = read_arch(p, len, &arch, &count, err);
  if (rc) return rc;
  if (!same_arch(&arch, &n->arch)) {
    char have[256], want[256];
    ch__mlp_arch_describe(&arch, have, sizeof have);
    ch__mlp_arch_describe(&n->arch, want, sizeof want);
    return ch_error_set(err, CH_EINVAL,
                        "mlp load: the blob's architecture (%s) differs from this network's (%s)",
                        have, want);
  }
  p += BLOB_FIXED_HEAD + 4 * (size_t)arch.num_hidden + 8;
  p = get_floats(p, n->params, count);
  n->adam_step = get_u64(p);
  p = get_floats(p + 8, n->adam_m, count);
  get_floats(p, n->adam_v, count);
  ch__mlp_invalidate(n);
  return CH_OK;
}
