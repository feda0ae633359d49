/* trainer.h -- the training loop: collect segments, PPO update, checkpoint, stop conditions. */
#ifndef CHICANE_TRAINER_H
#define CHICANE_TRAINER_H

#include "config.h"
#include "evaluate.h"

#include <stdint.h>

typedef struct ch_train_options {
  const char *storage;      /* storage plugin name ("local"), or NULL: storage_root is a spec */
  const char *storage_root; /* its root (a directory), or a spec: DIR, file://DIR, s3://... */
  const char *catalog_path;
  int replace; /* start an existing model over */
  int quiet;   /* no progress lines */
  /* Distributed training: buffer "memory" (NULL: in-process worker threads) or
  ** redis://host:port; worker processes to start on this machine (0: external workers only);
  ** the chicane executable they run (`EXE worker ...`). */
  const char *buffer;
  int worker_processes;
  const char *worker_command;
  int resume;               /* continue an existing model from its latest checkpoint */
  const char *command_line; /* recorded with the training run (ch_model_command_line); NULL ok */
} ch_train_options;

/* What one iteration did; passed to the progress printer and stored as checkpoint metrics. */
typedef struct ch_iteration_stats {
  int64_t iteration;
  int episodes;
  int64_t total_episodes;
  int64_t steps; /* env steps in this iteration */
  int64_t total_steps;
  double mean_reward, mean_progress, completion_rate;
  double rollout_seconds, update_seconds, elapsed_seconds;
  double policy_loss, value_loss, entropy, approx_kl, clip_fraction;
  int64_t minibatches; /* PPO steps taken (fewer than epochs x batches after a target-KL stop) */
  /* Where the time went. Worker threads in this process (thread-seconds, summed over threads;
  ** 0 with worker processes): acting (network forward, sampling), env steps, reward calls
  ** (with segment pushes). The update: network forward, loss, backward, optimizer step. */
  double act_seconds, env_seconds, reward_seconds;
  double forward_seconds, loss_seconds, backward_seconds, optimizer_seconds;
  int64_t stale_segments, corrupt_segments, duplicate_segments;
  int eval_laps; /* -1 when no evaluation ran */
  double eval_lap_time;
} ch_iteration_stats;

typedef struct ch_train_summary {
  int64_t iterations, episodes, env_steps;
  double seconds;
  char stop_reason[256]; /* why training stopped ("iteration limit", on_iteration's reason) */
  ch_iteration_stats last;
} ch_train_summary;

int ch_train(const ch_train_config *cfg, const ch_train_options *o, ch_train_summary *out,
             ch_error *err);

#endif
