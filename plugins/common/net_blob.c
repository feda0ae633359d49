/* net_blob.c -- network plugins: the model blob's common frame (state, checksum), save and load. */
#include "netcommon.h"

#include <chicane/plugin_util.h>
#include <stdlib.h>
#include <zlib.h>

uint32_t ch__net_crc32(const unsigned char *p, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (len) {
    uInt piece = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, p, piece);
    p += piece;
    len -= piece;
  }
  return (uint32_t)crc;
}

size_t ch__net_blob_size(size_t header, uint64_t num_params) {
  if (header > SIZE_MAX - CH_NET_BLOB_TAIL ||
      num_params > (SIZE_MAX - header - CH_NET_BLOB_TAIL) / 12)
    return 0;
  return header + CH_NET_BLOB_TAIL + 12 * (size_t)num_params;
}

int ch__net_blob_save(const ch_net_core *c, const char *magic, const uint32_t *words,
                      size_t num_words, void **blob, size_t *len, ch_error *err) {
  if (!blob || !len) return ch_error_set(err, CH_EINVAL, "%s save: blob or len is NULL", c->who);
  size_t size = ch__net_blob_size(8 + 4 * num_words, c->num_params);
  unsigned char *buf = size ? malloc(size) : NULL;
  if (!buf)
    return ch_error_set(err, CH_ENOMEM, "%s save: out of memory for a %zu-byte blob", c->who, size);
  unsigned char *p = buf;
  memcpy(p, magic, 8);
  p += 8;
  for (size_t i = 0; i < num_words; i++) p = ch__net_put_u32(p, words[i]);
  p = ch__net_put_u64(p, c->num_params);
  p = ch__net_put_floats(p, c->params, c->num_params);
  p = ch__net_put_u64(p, c->adam_step);
  p = ch__net_put_floats(p, c->adam_m, c->num_params);
  p = ch__net_put_floats(p, c->adam_v, c->num_params);
  ch__net_put_u32(p, ch__net_crc32(buf, (size_t)(p - buf)));
  *blob = buf;
  *len = size;
  return CH_OK;
}

int ch__net_blob_open(const ch_net_core *c, const unsigned char *p, size_t len, const char *magic,
                      size_t min, ch_error *err) {
  if (!p) return ch_error_set(err, CH_EINVAL, "%s load: blob is NULL", c->who);
  if (len < min)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %zu bytes, shorter than the smallest valid "
                        "blob (%zu bytes)",
                        len, min);
  if (memcmp(p, magic, 8))
    return ch_error_set(err, CH_ECORRUPT, "model blob is corrupt: bad magic (expected \"%s\")",
                        magic);
  uint32_t stored = ch__net_get_u32(p + len - 4), computed = ch__net_crc32(p, len - 4);
  if (stored != computed)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: checksum mismatch (stored %08x, computed %08x)",
                        stored, computed);
  return CH_OK;
}

int ch__net_blob_check_count(const unsigned char *p, size_t header, size_t len, uint64_t expect,
                             ch_error *err) {
  uint64_t count = ch__net_get_u64(p + header);
  if (count != expect)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %llu parameters stored, its architecture has %llu",
                        (unsigned long long)count, (unsigned long long)expect);
  size_t size = ch__net_blob_size(header, count);
  if (size != len)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob is corrupt: %zu bytes, its header implies %zu", len, size);
  return CH_OK;
}

void ch__net_blob_restore(ch_net_core *c, const unsigned char *p, size_t header) {
  uint64_t count = c->num_params;
  p = ch__net_get_floats(p + header + 8, c->params, count);
  c->adam_step = ch__net_get_u64(p);
  p = ch__net_get_floats(p + 8, c->adam_m, count);
  ch__net_get_floats(p, c->adam_v, count);
  ch__net_invalidate(c);
}
