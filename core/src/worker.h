/* worker.h -- a simulation worker process: acts with the announced policy, pushes segments. */
#ifndef CHICANE_WORKER_H
#define CHICANE_WORKER_H

#include "config.h"
#include "runtime.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/*
** What a worker needs to simulate for a model, stored by the trainer at models/NAME/worker.json
** beside the model's other objects, so that a worker on any machine needs only the buffer and
** storage addresses and the model name:
**   {"env_plugin", "network_plugin", "network": {...}, "envs": [{...env config...}],
**    "tracks": ["models/NAME/tracks/T.track", ...] (one per env config), "reward":
**    "models/NAME/reward_function.lua", "actions": [...], "segment_steps", "start_advance",
**    "start_offset", "alternate_direction", "seed"}
** The env configs omit "track": the worker stores each track object in a temporary file and
** names it there.
*/

/* Write models/NAME/worker.json and the track objects. env_json[i] is env config i (with its
** "track" path, which is read and stored). */
int ch_worker_spec_store(ch_session *s, const ch_train_config *c, const char *const *env_json,
                         int num_env, const char *network_json, int alternate_direction,
                         double start_offset, ch_error *err);

typedef struct ch_worker_options {
  const char *buffer;  /* redis://... */
  const char *storage; /* s3://... or a directory */
  const char *model;
  const char *track;   /* only this track of the model's (NULL: worker id picks one) */
  int threads;         /* simulation threads (default 1) */
  uint32_t id;         /* unique among the model's workers; 0 = derived from host and pid */
  double wait_seconds; /* how long to wait for a trainer's first announcement (default 120) */
  int quiet;
} ch_worker_options;

/* Run until the trainer announces that training is done (returns CH_OK) or something fails. */
int ch_worker_run(const ch_worker_options *o, ch_error *err);

/* Stop ch_worker_run from a signal handler: it returns CH_OK at its next poll. */
void ch_worker_request_stop(void);

#endif
