/* schedule.h -- a training script's on_iteration callback: curriculum, lr decay, stops. */
#ifndef CHICANE_SCHEDULE_H
#define CHICANE_SCHEDULE_H

#include "config.h"
#include "trainer.h"

#include <chicane/plugin.h>

/*
** A training script may define on_iteration = function(stats, training) ... end. The trainer
** calls it after every iteration; it runs in its own sandbox (instruction budget
** CH_SCHEDULE_BUDGET per call, memory cap), so a runaway callback stops training with the
** script's file and line (CH_ESCRIPT) like a broken reward function does.
**
** stats has every field of ch_iteration_stats under the same name (eval_laps is -1 when no
** evaluation ran).
**
** training asks the trainer for changes, as calls (training.set_lr(x) or training:set_lr(x)):
**   set_lr(x)              learning rate, (0, 1]
**   set_beta_entropy(x)    entropy weight, [0, 1]
**   set_track(name)        train on this track from now on
**   set_tracks({a, b})     several tracks (1..8)
**   set_reward(path)       switch the reward script (relative to the training script's
**                          directory, else the data directory); it is loaded once to check it
**   save_checkpoint(name)  keep this iteration's weights under a name, [A-Za-z0-9._-]
**   stop(reason)           stop after this iteration; reason is optional
** and reads the settings in force: training.lr, training.beta_entropy, training.tracks (a
** list), training.reward (the resolved path), training.model.
** Bad arguments raise a Lua error at the calling line. The callback may instead return a table
** with any of the keys lr, beta_entropy, track, tracks, reward, checkpoint, stop (a reason
** string, or true); its values win over calls made in the same iteration.
*/

#define CH_SCHEDULE_BUDGET 10000000u /* instructions per on_iteration call */

typedef struct ch_schedule ch_schedule;

/* What the callback asked for in one iteration. The set_ flags say which fields hold a
** request; the trainer applies them before the next iteration. */
typedef struct ch_schedule_actions {
  int set_lr;
  double lr;
  int set_beta_entropy;
  double beta_entropy;
  int set_tracks;
  int num_tracks;
  char tracks[CH_MAX_TRACKS][256];              /* as the script named them */
  char track_paths[CH_MAX_TRACKS][CH_PATH_MAX]; /* resolved .track files */
  int set_reward;
  char reward[CH_PATH_MAX]; /* resolved path of the new reward script */
  int save_checkpoint;
  char checkpoint_name[128];
  int stop;
  char stop_reason[256]; /* "on_iteration asked to stop" when no reason was given */
} ch_schedule_actions;

/* Load c->script's on_iteration. *out is NULL (and CH_OK) when the script has none. The
** schedule keeps its own copy of what it needs from c. */
int ch_schedule_open(const ch_train_config *c, ch_schedule **out, ch_error *err);

/* Call on_iteration with st; fills *out (cleared first) and records the requests as the
** settings in force (training.lr etc. show them next time). An error in the callback, a bad
** request or a bad return value is CH_ESCRIPT naming the script, the line and the iteration. */
int ch_schedule_on_iteration(ch_schedule *s, const ch_iteration_stats *st, ch_schedule_actions *out,
                             ch_error *err);

void ch_schedule_close(ch_schedule *s);

#endif
