/* evaluate.h -- DeepRacer-style evaluation: greedy policy, start at the line, off-track penalty. */
#ifndef CHICANE_EVALUATE_H
#define CHICANE_EVALUATE_H

#include "config.h"
#include "runtime.h"

#define CH_EVAL_MAX_TRIALS 100

typedef struct ch_eval_options {
  int trials;             /* 3 */
  double penalty_seconds; /* added per off-track (5) */
  double max_seconds;     /* a trial that has not finished by then ends incomplete (180) */
} ch_eval_options;

typedef struct ch_eval_trial {
  double progress; /* 0..100 */
  double lap_time; /* seconds incl. penalties; valid when completed */
  int off_track;   /* times the car was put back */
  int completed;   /* 1 when the lap was finished */
  int steps;
} ch_eval_trial;

typedef struct ch_eval_result {
  int trials;
  int completed_laps;
  ch_eval_trial trial[CH_EVAL_MAX_TRIALS];
} ch_eval_result;

void ch_eval_defaults(ch_eval_options *o);

/* The env config an evaluation needs (one car, step cap from max_seconds); caller frees. */
char *ch_eval_env_config(const char *track_path, const ch_eval_options *o);

/* Run the trials on car 0 of env (created with ch_eval_env_config) with net acting greedily. */
int ch_eval_run(ch_env *env, ch_net *net, const ch_action *actions, int num_actions,
                const ch_eval_options *o, ch_eval_result *out, ch_error *err);

/* Load a model from the session and evaluate it on track (NULL: the model's own track).
** Writes the track name used into track_out. Stores nothing. */
int ch_evaluate_model(ch_session *s, const char *model, const char *track, const ch_eval_options *o,
                      ch_eval_result *out, char *track_out, size_t track_out_len, ch_error *err);

#endif
