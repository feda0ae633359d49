/* train_log.h -- what training writes beside the checkpoints: sim-traces and metrics lines. */
#ifndef CHICANE_TRAIN_LOG_H
#define CHICANE_TRAIN_LOG_H

#include "runtime.h"
#include "segment.h"

#include <stdint.h>

/*
** Per iteration N of model NAME, in storage:
**   models/NAME/training-simtrace/N-iteration.csv  DeepRacer's sim-trace (simtrace.h) of every
**                                                 step the trainer learned from, episodes
**                                                 numbered from the run's episode count
**   models/NAME/metrics/training.jsonl             one more line: {"iteration", "total_episodes",
**                                                 then the checkpoint's metrics}
** The metrics file is rewritten whole each iteration (storage has no append); a resumed run
** reads it back first, so its lines keep the earlier runs' lines.
*/

typedef struct ch_train_log ch_train_log;

/* A log for model; resume: continue the metrics lines already stored (none is fine). */
int ch_train_log_open(ch_session *s, const char *model, int resume, ch_train_log **out,
                      ch_error *err);

/* Start iteration's sim-trace; its first new episode gets number first_episode. */
void ch_train_log_begin(ch_train_log *l, int64_t first_episode);

/* Append the steps of a segment the trainer accepted. segment_steps: the cut length (a step's
** number in its episode is seq * segment_steps + i + 1); continuous: actions have no index;
** track_length and step_seconds fill those columns. CH_ENOMEM only: a row the format cannot
** hold (a non-finite number) is left out. */
int ch_train_log_segment(ch_train_log *l, const ch_segment *s, int segment_steps, int continuous,
                         double track_length, double step_seconds);

/* Store the iteration's metrics line (metrics: a JSON object's text) and its sim-trace. */
int ch_train_log_store(ch_train_log *l, int64_t iteration, int64_t total_episodes,
                       const char *metrics, ch_error *err);

void ch_train_log_free(ch_train_log *l);

#endif
