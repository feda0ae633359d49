/* evaluate.h -- DeepRacer-style evaluation: greedy policy, start at the line, off-track penalty. */
#ifndef CHICANE_EVALUATE_H
#define CHICANE_EVALUATE_H

#include "config.h"
#include "runtime.h"
#include "simtrace.h"

#define CH_EVAL_MAX_TRIALS 100

struct ch_reward;       /* reward.h */
struct ch_policy_space; /* policy.h */

/* Called for every row an evaluation produces ("prepare" after each reset, then one per step),
** with the env's params of that moment (objects included). */
typedef void (*ch_eval_step_fn)(void *user, int trial, const ch_simtrace_row *row,
                                const ch_env_params *params);

typedef struct ch_eval_options {
  int trials;             /* 3 */
  double penalty_seconds; /* added per off-track (5) */
  double max_seconds;     /* a trial that has not finished by then ends incomplete (180) */
  /* Added with issue 7; ch_eval_defaults fills them. */
  double crash_penalty_seconds; /* added per crash into an object (5) */
  const char *race_type;        /* "time_trial" | "object_avoidance" | "head_to_head"; NULL: the
                                ** model's own (from its configuration), else the env's default */
  const char *env_json;         /* a JSON object of more env config keys ("objects", "bots", ...),
                                ** merged over the model's; NULL: none */
  uint64_t seed;                /* trial i resets with seed + i (object placement, bot lanes) (1) */
  ch_simtrace *trace;           /* when set, every row is appended (episode = trial - 1) */
  struct ch_reward *reward;     /* when set, the sim-trace's reward column is computed with it */
  double reference_lap;    /* seconds; > 0: each completed trial gets ratio = lap / reference */
  ch_eval_step_fn on_step; /* may be NULL */
  void *on_step_user;
  /* The action space as policy.h describes it; NULL: discrete, the actions given to
  ** ch_eval_run. A continuous policy acts with its mean (the sim-trace's action is -1). */
  const struct ch_policy_space *space;
} ch_eval_options;

typedef struct ch_eval_trial {
  double progress; /* 0..100 */
  double lap_time; /* seconds incl. penalties; valid when completed */
  int off_track;   /* times the car left the track and was put back */
  int completed;   /* 1 when the lap was finished */
  int steps;
  /* Added with issue 7. */
  int crashes;          /* times the car hit an object and was put back */
  double ratio;         /* lap_time / reference lap; 0 when not completed or no reference */
  int32_t status;       /* the last step's ch_episode_status (LAP_COMPLETE or TIME_UP) */
  double drive_seconds; /* simulated driving time, penalties excluded */
} ch_eval_trial;

typedef struct ch_eval_result {
  int trials;
  int completed_laps;
  ch_eval_trial trial[CH_EVAL_MAX_TRIALS];
  /* Added with issue 7. */
  double reference_lap; /* seconds; 0 when unknown */
  double best_lap_time; /* fastest completed trial; 0 when none */
  double best_ratio;    /* best_lap_time / reference_lap; 0 when either is 0 */
  int off_track, crashes;
} ch_eval_result;

void ch_eval_defaults(ch_eval_options *o);

/* The env config an evaluation needs (one car, step cap from max_seconds, o->race_type and
** the keys of o->env_json); caller frees. NULL when o->env_json is not a JSON object. */
char *ch_eval_env_config(const char *track_path, const ch_eval_options *o);

/* Run the trials on car 0 of env (created with ch_eval_env_config) with net acting greedily.
** A camera env (image_* > 0 in its spec) feeds the network the image as floats in [0, 1]
** (channel, row, column order) followed by the obs vector. */
int ch_eval_run(ch_env *env, ch_net *net, const ch_action *actions, int num_actions,
                const ch_eval_options *o, ch_eval_result *out, ch_error *err);

/* Load a model from the session and evaluate it on track (NULL: the model's own track).
** Writes the track name used into track_out. Stores nothing. The reference lap of the track
** (ch_track_reference_lap) fills out->reference_lap and the ratios, unless o->reference_lap is
** already > 0. When o->trace is set, the model's stored reward script computes its rewards. */
int ch_evaluate_model(ch_session *s, const char *model, const char *track, const ch_eval_options *o,
                      ch_eval_result *out, char *track_out, size_t track_out_len, ch_error *err);

/* Where ch_evaluate_store put things. */
typedef struct ch_eval_stored {
  int64_t id;        /* catalog row */
  int64_t iteration; /* the checkpoint evaluated */
  int64_t created;   /* unix seconds */
  char track[256];
  char race_type[32];
  char key[512];          /* models/NAME/evaluations/<stamp>.json: the results */
  char simtrace_key[512]; /* models/NAME/evaluation-simtrace/<stamp>.csv */
} ch_eval_stored;

/* Evaluate (as ch_evaluate_model, with a sim-trace) and record the result: the sim-trace CSV
** and the results JSON in storage, then the catalog row. stored may be NULL. The results JSON
** (also the catalog's results_json) is ch_eval_results_json's. */
int ch_evaluate_store(ch_session *s, const char *model, const char *track, const ch_eval_options *o,
                      ch_eval_result *out, ch_eval_stored *stored, ch_error *err);

/* The results object of an evaluation, as stored and printed by `chicane evaluate --json`:
** {model, iteration, track, race_type, created, trials: [{trial, progress, lap_time|null,
** ratio|null, off_track, crashes, completed, steps, status}], completed_laps, best_lap_time,
** reference_lap, best_ratio, off_track, crashes, penalty_seconds, crash_penalty_seconds,
** max_seconds, seed, simtrace_key}. Caller deletes. */
cJSON *ch_eval_results_json(const char *model, int64_t iteration, const char *track,
                            const char *race_type, int64_t created, const ch_eval_options *o,
                            const ch_eval_result *r, const char *simtrace_key);

/* Read such an object back into a catalog row (strings point into j; trial_info malloc'd:
** release it with free). CH_ECORRUPT naming what is wrong. */
int ch_eval_results_parse(const cJSON *j, ch_evaluation_info *e, ch_error *err);

#endif
