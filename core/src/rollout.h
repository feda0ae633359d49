/* rollout.h -- simulation worker threads: act with the current policy, push segments. */
#ifndef CHICANE_ROLLOUT_H
#define CHICANE_ROLLOUT_H

#include "config.h"
#include "runtime.h"

#include <stdint.h>

typedef struct ch_rollout ch_rollout;

typedef struct ch_rollout_setup {
  const ch_train_config *cfg; /* actions, reward, segment_steps, start_advance, seed */
  const ch_plugin *env_plugin, *net_plugin;
  /* env configs (num_cars = cars per worker); thread i uses env_json[i % num_env_json], so
  ** threads can drive different tracks for one model */
  const char *const *env_json;
  int num_env_json;
  const char *net_json; /* network config, same as the trainer's */
  ch_buffer *buffer;
  int threads;             /* worker threads in this process */
  uint32_t worker_base;    /* id of the first thread; ids must be unique among all workers */
  int alternate_direction; /* every other episode drives the track the other way */
  double start_offset;     /* metres left of the centre line at the start */
} ch_rollout_setup;

/* Create every worker's env, network and reward state (errors surface here, before training),
** then start the threads; they wait for the first policy. */
int ch_rollout_start(const ch_rollout_setup *setup, ch_rollout **out, ch_error *err);

/* Hand the workers a new policy version: its parameters (copied), whether to act uniformly at
** random instead (the warm-up), and how many episodes to run with it in total. Publishing the
** same version again (round > 0) runs that many more episodes with it. */
void ch_rollout_publish(ch_rollout *r, uint64_t version, const float *params, uint64_t count,
                        int random_actions, int episodes);

/* Non-zero (a ch_status, with the message in err) once a worker has failed. */
int ch_rollout_failed(ch_rollout *r, ch_error *err);

/* Where the threads' time went since the start, in thread-seconds (summed over threads):
** choosing actions (network forward and sampling), stepping the env, and after the step
** (reward calls, segment encoding and pushes, bootstrap forwards). */
typedef struct ch_rollout_time {
  double policy_seconds, env_seconds, reward_seconds;
} ch_rollout_time;
void ch_rollout_times(ch_rollout *r, ch_rollout_time *out);

/* Episodes the threads finished since the start (all versions). */
int64_t ch_rollout_episodes(ch_rollout *r);

/* Stop and join the threads, release everything. */
void ch_rollout_stop(ch_rollout *r);

#endif
