/* channel.h -- how a trainer tells worker processes which policy to act with (buffer meta). */
#ifndef CHICANE_CHANNEL_H
#define CHICANE_CHANNEL_H

#include "runtime.h"

#include <stdint.h>

/* The announcement, stored as JSON under the buffer meta key "chicane/MODEL/policy". */
typedef struct ch_policy_note {
  uint64_t version;     /* policy version the workers' segments must carry */
  uint64_t round;       /* bumped to ask for more episodes of the same version */
  int random;           /* act uniformly at random (the warm-up before the first model) */
  int episodes;         /* episodes each worker process runs per round */
  int done;             /* training is over: workers leave */
  int spec;             /* revision of models/MODEL/worker.json: a new one makes workers reload */
  char checkpoint[512]; /* storage key of the weights; "" = the initial weights */
  char sha256[65];      /* of the checkpoint object */
} ch_policy_note;

int ch_channel_announce(ch_buffer *b, const char *model, const ch_policy_note *n, ch_error *err);

/* CH_ENOTFOUND when no trainer has announced anything for model yet. */
int ch_channel_read(ch_buffer *b, const char *model, ch_policy_note *n, ch_error *err);

#endif
