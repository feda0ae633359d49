/* model_io.h -- whole models in and out: export, import, clone, delete, rebuild the catalog. */
#ifndef CHICANE_MODEL_IO_H
#define CHICANE_MODEL_IO_H

#include "runtime.h"

#include <stddef.h>
#include <stdint.h>

/*
** Storage is the truth, the catalog an index of it. Besides what model.h lists, a model keeps:
**
**   models/NAME/model.json                     the catalog's model row: {name, track,
**                                              reward_script, reward_sha256, status, created}
**   models/NAME/checkpoints/NNNNNN.json        one checkpoint's row: {iteration, episodes,
**                                              env_steps, wall_seconds, metrics_json (the
**                                              text, verbatim), storage_key, sha256, created};
**                                              storage_key null: metrics only, no weights
**   models/NAME/evaluations/<stamp>.json       one evaluation's results (evaluate.h)
**   models/NAME/evaluation-simtrace/<stamp>.csv  its sim-trace (simtrace.h)
**   models/NAME/training-simtrace/<N>-iteration.csv  training sim-traces (the trainer)
**   models/NAME/runs/<stamp>.json              one training run: {model, started, ended,
**                                              stop_reason, iterations, env_steps,
**                                              wall_seconds, host, command_line}
**
** Rebuilding the catalog reads these back. Where model.json is missing the status is "ready"
** when a checkpoint exists ("stopped" otherwise) and created is the first checkpoint's time;
** where a checkpoint record is missing its row is made from the blob (iteration from the key,
** sha256 computed, counters 0, no metrics).
**
** An exported folder (DeepRacer's layout plus chicane's files):
**
**   model_metadata.json, hyperparameters.json, reward_function.lua, training_config.json
**   model.ckpt          the latest checkpoint's weights, bit for bit as stored
**   checkpoint.json     {"iteration", "sha256", "episodes", "env_steps", "wall_seconds",
**                        "network"}: sha256 of model.ckpt, checked on import
**   metrics.json        {"metrics": [{iteration, episodes, env_steps, wall_seconds, created,
**                        metrics: {...}}, ...]}, one entry per recorded iteration
**   model.json          the model row (as in storage)
**   evaluations/<stamp>.json, evaluation-simtrace/<stamp>.csv,
**   training-simtrace/<N>-iteration.csv   when stored
**
** Every call returns CH_OK or a negative ch_status with a message naming the model, the key or
** file, and the reason.
*/

/* Write models/NAME/model.json from the catalog's row (after any change of the row). */
int ch_model_store_record(ch_session *s, const char *model, ch_error *err);

/* Write models/NAME/checkpoints/NNNNNN.json for a checkpoint row (c->model names the model). */
int ch_model_store_checkpoint_record(ch_session *s, const ch_checkpoint_info *c, ch_error *err);

/* Write model.json and every checkpoint record storage lacks, from the catalog. */
int ch_model_sync_records(ch_session *s, const char *model, ch_error *err);

/* A training run being recorded (catalog row and runs/<stamp>.json). */
typedef struct ch_model_run {
  int64_t id;      /* catalog row */
  int64_t started; /* unix seconds */
  double t0;       /* monotonic clock at the start, for wall_seconds */
  char model[256];
  char key[512]; /* its storage object */
  char host[256];
  char *command_line; /* owned; released by ch_model_run_end */
} ch_model_run;

/* Record the start of a run of model (which must exist). command_line may be NULL. */
int ch_model_run_begin(ch_session *s, const char *model, const char *command_line,
                       ch_model_run *run, ch_error *err);
/* Record its end; releases what begin allocated, also when it fails. */
int ch_model_run_end(ch_session *s, ch_model_run *run, const char *stop_reason, int64_t iterations,
                     int64_t env_steps, ch_error *err);
/* argv joined by spaces, arguments with shell metacharacters single-quoted; caller frees. */
char *ch_model_command_line(int argc, char **argv);

/* Write model's folder at dir (created with its parents; must be empty or absent). */
int ch_model_export(ch_session *s, const char *model, const char *dir, ch_error *err);

/* Read a folder written by export (or by hand in that layout) into storage and the catalog
** under name (NULL: the "model" of its training_config.json, else the folder's name). The
** name must be new. Writes the name used to name_out (may be NULL). Nothing is left behind
** when it fails. */
int ch_model_import(ch_session *s, const char *dir, const char *name, char *name_out,
                    size_t name_cap, ch_error *err);

/* A new model dst with src's metadata objects and src's latest checkpoint as its own (same
** iteration and counters), status "ready": training or evaluating dst starts from src's
** weights. dst must be new. */
int ch_model_clone(ch_session *s, const char *src, const char *dst, ch_error *err);

/* Remove every stored object of model, then its catalog rows. CH_ENOTFOUND when neither
** exists. */
int ch_model_delete(ch_session *s, const char *model, ch_error *err);

typedef struct ch_rebuild_stats {
  int models, checkpoints, evaluations, runs;
  int skipped; /* folders under models/ without a training_config.json */
} ch_rebuild_stats;

/* Recreate the catalog's rows from storage alone, in one transaction: every model row (with
** its checkpoints, evaluations and runs) is deleted, then each models/NAME/ in storage is
** indexed again. stats may be NULL. */
int ch_models_rebuild(ch_session *s, ch_rebuild_stats *stats, ch_error *err);

/* Index one model from storage into the catalog (its rows must not exist yet). */
int ch_model_index(ch_session *s, const char *model, ch_rebuild_stats *stats, ch_error *err);

#endif
