/* rollout.h -- simulation worker threads: act with the current policy, push segments. */
#ifndef CHICANE_ROLLOUT_H
#define CHICANE_ROLLOUT_H

#include "config.h"
#include "runtime.h"

#include <stdint.h>

typedef struct ch_rollout ch_rollout;

typedef struct ch_rollout_setup {
  const ch_train_config *cfg;
  const ch_plugin *env_plugin, *net_plugin;
  const char *env_json; /* env config for one worker (num_cars = cfg->cars_per_worker) */
  const char *net_json; /* network config, same as the trainer's */
  ch_buffer *buffer;
  const double *waypoints; /* for the reward params */
  uint32_t num_waypoints;
} ch_rollout_setup;

/* Create every worker's env, network and reward state (errors surface here, before training),
** then start the threads; they wait for the first policy. */
int ch_rollout_start(const ch_rollout_setup *setup, ch_rollout **out, ch_error *err);

/* Hand the workers a new policy version: its parameters (copied), whether to act uniformly at
** random instead (the warm-up), and how many episodes to run with it in total. */
void ch_rollout_publish(ch_rollout *r, uint64_t version, const float *params, uint64_t count,
                        int random_actions, int episodes);

/* Non-zero (a ch_status, with the message in err) once a worker has failed. */
int ch_rollout_failed(ch_rollout *r, ch_error *err);

/* Stop and join the threads, release everything. */
void ch_rollout_stop(ch_rollout *r);

#endif
