/* segment.c -- encodes and validates segment records (fixed little-endian layout + CRC32). */
#include "segment.h"

#include <chicane/plugin_util.h>
#include <string.h>
#include <zlib.h>

/* Layout: a 72-byte header, then the float arrays (obs, action, reward, logp, value, trace),
** then the image bytes padded to 4, then a CRC32 of everything before it. Fields are
** little-endian (the only byte order we build for). */
typedef struct ch__segment_header {
  uint32_t magic;
  uint16_t format;
  uint16_t flags;
  uint32_t worker_id;
  uint32_t seq;
  uint32_t num_steps;
  uint32_t obs_size;
  uint32_t image_size;
  uint32_t action_size;
  int32_t episode_status;
  int32_t episode_steps;
  uint64_t policy_version;
  uint64_t episode_id;
  float bootstrap_value;
  float episode_reward;
  float episode_progress;
  uint32_t reserved;
} ch__segment_header;

_Static_assert(sizeof(ch__segment_header) == 72, "segment header layout");

#define CH__MAX_STEPS 1000000u
#define CH__MAX_OBS   1000000u
#define CH__MAX_IMAGE (16u * 640u * 480u)

static size_t ch__floats_per_step(uint32_t obs_size, uint32_t action_size) {
  return (size_t)obs_size + action_size + 3 + CH_TRACE_FLOATS;
}

static size_t ch__body_size(uint32_t steps, uint32_t obs, uint32_t image, uint32_t action) {
  size_t image_bytes = ((size_t)steps * image + 3) & ~(size_t)3;
  return (size_t)steps * ch__floats_per_step(obs, action) * 4 + image_bytes;
}

size_t ch_segment_encoded_size(const ch_segment *seg) {
  return sizeof(ch__segment_header) +
         ch__body_size(seg->num_steps, seg->obs_size, seg->image_size, seg->action_size) + 4;
}

static unsigned char *ch__put(unsigned char *p, const void *src, size_t n) {
  if (n) memcpy(p, src, n);
  return p + n;
}

void ch_segment_encode(const ch_segment *seg, void *out) {
  ch__segment_header h = {CH_SEGMENT_MAGIC,
                          CH_SEGMENT_FORMAT,
                          (uint16_t)seg->flags,
                          seg->worker_id,
                          seg->seq,
                          seg->num_steps,
                          seg->obs_size,
                          seg->image_size,
                          seg->action_size,
                          seg->episode_status,
                          seg->episode_steps,
                          seg->policy_version,
                          seg->episode_id,
                          seg->bootstrap_value,
                          seg->episode_reward,
                          seg->episode_progress,
                          0};
  size_t t = seg->num_steps;
  unsigned char *p = ch__put(out, &h, sizeof h);
  p = ch__put(p, seg->obs, t * seg->obs_size * 4);
  p = ch__put(p, seg->action, t * seg->action_size * 4);
  p = ch__put(p, seg->reward, t * 4);
  p = ch__put(p, seg->logp, t * 4);
  p = ch__put(p, seg->value, t * 4);
  p = ch__put(p, seg->trace, t * CH_TRACE_FLOATS * 4);
  p = ch__put(p, seg->image, t * seg->image_size);
  while ((p - (unsigned char *)out) % 4) *p++ = 0;
  uint32_t crc = (uint32_t)crc32_z(0L, out, (z_size_t)(p - (unsigned char *)out));
  memcpy(p, &crc, 4);
}

static int ch__check_sizes(const ch__segment_header *h, size_t len, ch_error *err) {
  if (h->num_steps == 0 || h->num_steps > CH__MAX_STEPS || h->obs_size > CH__MAX_OBS ||
      h->image_size > CH__MAX_IMAGE || h->action_size == 0 || h->action_size > 16 ||
      (h->obs_size == 0 && h->image_size == 0) ||
      sizeof *h + ch__body_size(h->num_steps, h->obs_size, h->image_size, h->action_size) + 4 !=
          len)
    return ch_error_set(err, CH_ECORRUPT,
                        "segment sizes (%u steps x %u obs + %u image bytes, %u action floats) "
                        "do not match %zu bytes",
                        h->num_steps, h->obs_size, h->image_size, h->action_size, len);
  return CH_OK;
}

/* Decode; check_crc 0 skips the checksum (the one pass over every byte). */
static int ch__parse(const void *data, size_t len, int check_crc, ch_segment *seg, ch_error *err) {
  ch__segment_header h;
  if (len < sizeof h + 4)
    return ch_error_set(err, CH_ECORRUPT, "segment record of %zu bytes is too short", len);
  memcpy(&h, data, sizeof h);
  if (h.magic != CH_SEGMENT_MAGIC)
    return ch_error_set(err, CH_ECORRUPT, "not a segment record (magic %08x)", h.magic);
  if (h.format != CH_SEGMENT_FORMAT)
    return ch_error_set(err, CH_ECORRUPT, "segment format %u, this chicane reads %u", h.format,
                        CH_SEGMENT_FORMAT);
  int rc = ch__check_sizes(&h, len, err);
  if (rc != CH_OK) return rc;
  uint32_t crc;
  memcpy(&crc, (const unsigned char *)data + len - 4, 4);
  if (check_crc && crc != (uint32_t)crc32_z(0L, data, (z_size_t)(len - 4)))
    return ch_error_set(err, CH_ECORRUPT, "segment checksum mismatch (worker %u, episode %llu)",
                        h.worker_id, (unsigned long long)h.episode_id);
  const float *f = (const float *)((const unsigned char *)data + sizeof h);
  size_t t = h.num_steps;
  *seg = (ch_segment){.policy_version = h.policy_version,
                      .episode_id = h.episode_id,
                      .worker_id = h.worker_id,
                      .seq = h.seq,
                      .num_steps = h.num_steps,
                      .obs_size = h.obs_size,
                      .image_size = h.image_size,
                      .action_size = h.action_size,
                      .flags = h.flags,
                      .bootstrap_value = h.bootstrap_value,
                      .episode_status = h.episode_status,
                      .episode_steps = h.episode_steps,
                      .episode_reward = h.episode_reward,
                      .episode_progress = h.episode_progress};
  seg->obs = f;
  f += t * h.obs_size;
  seg->action = f;
  f += t * h.action_size;
  seg->reward = f;
  seg->logp = f + t;
  seg->value = f + 2 * t;
  seg->trace = f + 3 * t;
  f += (3 + CH_TRACE_FLOATS) * t;
  seg->image = (const uint8_t *)f;
  return CH_OK;
}

int ch_segment_decode(const void *data, size_t len, ch_segment *seg, ch_error *err) {
  return ch__parse(data, len, 1, seg, err);
}

int ch_segment_view(const void *data, size_t len, ch_segment *seg, ch_error *err) {
  return ch__parse(data, len, 0, seg, err);
}
