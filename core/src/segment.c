/* segment.c -- encodes and validates segment records (fixed little-endian layout + CRC32). */
#include "segment.h"

#include <chicane/plugin_util.h>
#include <string.h>
#include <zlib.h>

/* Layout: a 56-byte header, then obs, action, reward, logp, value, then a CRC32 of everything
** before it. All fields are 4 or 8 bytes, little-endian (the only byte order we build for). */
typedef struct ch__segment_header {
  uint32_t magic;
  uint16_t format;
  uint16_t flags;
  uint32_t worker_id;
  uint32_t num_steps;
  uint32_t obs_size;
  int32_t episode_status;
  uint64_t policy_version;
  uint64_t episode_id;
  float bootstrap_value;
  float episode_reward;
  float episode_progress;
  int32_t episode_steps;
} ch__segment_header;

_Static_assert(sizeof(ch__segment_header) == 56, "segment header layout");

static size_t ch__body_size(uint32_t steps, uint32_t obs_size) {
  return (size_t)steps * obs_size * 4 + (size_t)steps * 4 * 4;
}

size_t ch_segment_encoded_size(const ch_segment *seg) {
  return sizeof(ch__segment_header) + ch__body_size(seg->num_steps, seg->obs_size) + 4;
}

static unsigned char *ch__put(unsigned char *p, const void *src, size_t n) {
  memcpy(p, src, n);
  return p + n;
}

void ch_segment_encode(const ch_segment *seg, void *out) {
  ch__segment_header h = {CH_SEGMENT_MAGIC,     CH_SEGMENT_FORMAT,   (uint16_t)seg->flags,
                          seg->worker_id,       seg->num_steps,      seg->obs_size,
                          seg->episode_status,  seg->policy_version, seg->episode_id,
                          seg->bootstrap_value, seg->episode_reward, seg->episode_progress,
                          seg->episode_steps};
  size_t t = seg->num_steps;
  unsigned char *p = ch__put(out, &h, sizeof h);
  p = ch__put(p, seg->obs, t * seg->obs_size * 4);
  p = ch__put(p, seg->action, t * 4);
  p = ch__put(p, seg->reward, t * 4);
  p = ch__put(p, seg->logp, t * 4);
  p = ch__put(p, seg->value, t * 4);
  uint32_t crc = (uint32_t)crc32_z(0L, out, (z_size_t)(p - (unsigned char *)out));
  memcpy(p, &crc, 4);
}

int ch_segment_decode(const void *data, size_t len, ch_segment *seg, ch_error *err) {
  ch__segment_header h;
  if (len < sizeof h + 4)
    return ch_error_set(err, CH_ECORRUPT, "segment record of %zu bytes is too short", len);
  memcpy(&h, data, sizeof h);
  if (h.magic != CH_SEGMENT_MAGIC)
    return ch_error_set(err, CH_ECORRUPT, "not a segment record (magic %08x)", h.magic);
  if (h.format != CH_SEGMENT_FORMAT)
    return ch_error_set(err, CH_ECORRUPT, "segment format %u, this chicane reads %u", h.format,
                        CH_SEGMENT_FORMAT);
  if (h.num_steps == 0 || h.num_steps > 1000000 || h.obs_size == 0 || h.obs_size > 1000000 ||
      sizeof h + ch__body_size(h.num_steps, h.obs_size) + 4 != len)
    return ch_error_set(err, CH_ECORRUPT, "segment sizes (%u steps x %u) do not match %zu bytes",
                        h.num_steps, h.obs_size, len);
  uint32_t crc;
  memcpy(&crc, (const unsigned char *)data + len - 4, 4);
  if (crc != (uint32_t)crc32_z(0L, data, (z_size_t)(len - 4)))
    return ch_error_set(err, CH_ECORRUPT, "segment checksum mismatch (worker %u, episode %llu)",
                        h.worker_id, (unsigned long long)h.episode_id);
  const float *f = (const float *)((const unsigned char *)data + sizeof h);
  size_t t = h.num_steps;
  *seg = (ch_segment){h.policy_version,
                      h.episode_id,
                      h.worker_id,
                      h.num_steps,
                      h.obs_size,
                      h.flags,
                      h.bootstrap_value,
                      h.episode_status,
                      h.episode_steps,
                      h.episode_reward,
                      h.episode_progress,
                      NULL,
                      NULL,
                      NULL,
                      NULL,
                      NULL};
  seg->obs = f;
  seg->action = (const int32_t *)(f + t * h.obs_size);
  seg->reward = f + t * h.obs_size + t;
  seg->logp = f + t * h.obs_size + 2 * t;
  seg->value = f + t * h.obs_size + 3 * t;
  return CH_OK;
}
