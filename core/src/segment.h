/* segment.h -- the binary record of one segment of an episode, as it travels through a buffer. */
#ifndef CHICANE_SEGMENT_H
#define CHICANE_SEGMENT_H

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

#define CH_SEGMENT_MAGIC  0x47455343u /* "CSEG" little-endian */
#define CH_SEGMENT_FORMAT 1

enum {
  CH_SEGMENT_EPISODE_END = 1, /* the episode ended at this segment's last step */
  CH_SEGMENT_TERMINAL = 2     /* ...in a state with no future reward (no bootstrap) */
};

/* A segment: consecutive steps of one car's episode under one policy version. The arrays are
** views (into the encoder's scratch or into the decoded record); num_steps entries each. */
typedef struct ch_segment {
  uint64_t policy_version;
  uint64_t episode_id;
  uint32_t worker_id;
  uint32_t num_steps;
  uint32_t obs_size;
  uint32_t flags;
  float bootstrap_value; /* V(state after the last step) when not terminal */
  /* episode summary, valid with CH_SEGMENT_EPISODE_END */
  int32_t episode_status;
  int32_t episode_steps;
  float episode_reward;
  float episode_progress;
  const float *obs;      /* num_steps * obs_size */
  const int32_t *action; /* index into the action space */
  const float *reward;
  const float *logp; /* log-probability of the action under the acting policy */
  const float *value;
} ch_segment;

/* Bytes the encoding of seg takes. */
size_t ch_segment_encoded_size(const ch_segment *seg);

/* Write seg into out (at least ch_segment_encoded_size bytes), with a CRC32 trailer. */
void ch_segment_encode(const ch_segment *seg, void *out);

/* Validate magic, format, sizes and checksum of data, then fill seg with views into data
** (which must stay alive and be 4-byte aligned). CH_ECORRUPT with a reason otherwise. */
int ch_segment_decode(const void *data, size_t len, ch_segment *seg, ch_error *err);

#endif
