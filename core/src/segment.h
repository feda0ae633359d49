/* segment.h -- the binary record of one segment of an episode, as it travels through a buffer. */
#ifndef CHICANE_SEGMENT_H
#define CHICANE_SEGMENT_H

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

#define CH_SEGMENT_MAGIC  0x47455343u /* "CSEG" little-endian */
#define CH_SEGMENT_FORMAT 2

enum {
  CH_SEGMENT_EPISODE_END = 1, /* the episode ended at this segment's last step */
  CH_SEGMENT_TERMINAL = 2,    /* ...in a state with no future reward (no bootstrap) */
  CH_SEGMENT_RANDOM = 4       /* acted uniformly at random (the warm-up before the first model) */
};

/* What the sim-trace log records of each step, beside the learning data (DESIGN.md 5). */
enum {
  CH_TRACE_X,
  CH_TRACE_Y,
  CH_TRACE_YAW,      /* degrees */
  CH_TRACE_STEER,    /* commanded, degrees */
  CH_TRACE_THROTTLE, /* commanded speed, m/s */
  CH_TRACE_PROGRESS,
  CH_TRACE_WAYPOINT, /* closest waypoint ahead, 0-based */
  CH_TRACE_STATUS,   /* ch_episode_status after the step */
  CH_TRACE_ON_TRACK, /* all wheels on track: 0/1 */
  CH_TRACE_FLOATS
};

/* A segment: consecutive steps of one car's episode under one policy version. The arrays are
** views (into the encoder's caller or into the decoded record); num_steps rows each. */
typedef struct ch_segment {
  uint64_t policy_version;
  uint64_t episode_id; /* unique per worker; (worker_id, episode_id, seq) names a segment */
  uint32_t worker_id;
  uint32_t seq; /* index of this segment within its episode, from 0 */
  uint32_t num_steps;
  uint32_t obs_size;    /* floats of vector observation per step */
  uint32_t image_size;  /* bytes of camera image per step (0 without a camera) */
  uint32_t action_size; /* floats per action: 1 (a discrete index) or the continuous dims */
  uint32_t flags;
  float bootstrap_value; /* V(state after the last step) when not terminal */
  /* episode summary, valid with CH_SEGMENT_EPISODE_END */
  int32_t episode_status;
  int32_t episode_steps;
  float episode_reward;
  float episode_progress;
  const float *obs;     /* num_steps * obs_size */
  const uint8_t *image; /* num_steps * image_size */
  const float *action;  /* num_steps * action_size */
  const float *reward;
  const float *logp; /* log-probability of the action under the acting policy */
  const float *value;
  const float *trace; /* num_steps * CH_TRACE_FLOATS */
} ch_segment;

/* Bytes the encoding of seg takes. */
size_t ch_segment_encoded_size(const ch_segment *seg);

/* Write seg into out (at least ch_segment_encoded_size bytes), with a CRC32 trailer. */
void ch_segment_encode(const ch_segment *seg, void *out);

/* Validate magic, format, sizes and checksum of data, then fill seg with views into data
** (which must stay alive and be 4-byte aligned). CH_ECORRUPT with a reason otherwise. */
int ch_segment_decode(const void *data, size_t len, ch_segment *seg, ch_error *err);

/* ch_segment_decode without the checksum, for bytes that passed ch_segment_decode once and
** have stayed in this process since (a replay memory reads each record many times; the CRC
** is the only pass over all of a record's bytes). Magic, format and sizes are still checked. */
int ch_segment_view(const void *data, size_t len, ch_segment *seg, ch_error *err);

#endif
