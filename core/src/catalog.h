/* catalog.h -- the SQLite catalog: an index of models, checkpoints and evaluations. */
#ifndef CHICANE_CATALOG_H
#define CHICANE_CATALOG_H

#include <chicane/plugin.h> /* ch_error, ch_status */

#include <stdint.h>

/*
** One catalog file (catalog.db) per deployment. Every fallible call returns CH_OK or a negative
** ch_status and fills err (when not NULL) with a message naming the catalog's path and, for
** database errors, SQLite's own message. Inputs are borrowed for the call; the strings in the
** info structs filled by the getters are malloc'd and released with the matching _free. NULL
** strings are allowed and stored as NULL. A created time of 0 on input means "now".
**
** Schema version 2 (PRAGMA user_version; older files are migrated when opened, keeping their
** rows): models; checkpoints, with mean_reward, mean_progress and completion_rate columns
** taken from metrics_json; evaluations, with race type, penalties, off-track and crash counts,
** best lap, reference lap and ratio, and their per-trial rows (evaluation_trials); training
** runs. Deleting a model deletes all of its rows.
**
** A handle is used by one thread at a time; open one handle per thread (the file may be shared
** by many handles and processes: WAL mode, 5 s busy timeout). The list calls stop early, still
** returning CH_OK, when the callback returns non-zero; the callback may call into the catalog.
*/

typedef struct ch_catalog ch_catalog;

typedef struct ch_model_info {
  char *name;                 /* primary key, [A-Za-z0-9._-]+, not "." or "..", <= 255 bytes */
  char *track;                /* track name */
  char *reward_script;        /* path of the reward script as given */
  char *reward_sha256;        /* hex sha256 of the reward script text */
  char *action_space_json;    /* JSON array of {steering_angle, speed, index} */
  char *hyperparameters_json; /* JSON object, DeepRacer names */
  char *config_json;          /* the whole resolved training configuration */
  char *storage;              /* where the checkpoints live (directory or URL) */
  char *status;               /* "training" | "ready" | "stopped" | "failed" (or NULL) */
  int64_t created;            /* unix seconds */
} ch_model_info;

typedef struct ch_checkpoint_info {
  char *model;
  int64_t iteration; /* unique per model */
  int64_t episodes;
  int64_t env_steps;
  double wall_seconds;
  char *metrics_json;
  char *storage_key;
  char *sha256;
  int64_t created;
} ch_checkpoint_info;

/* One trial of an evaluation (one lap attempt from the start line). */
typedef struct ch_trial_info {
  int64_t trial;     /* 1-based, unique within the evaluation */
  double progress;   /* 0..100 */
  double lap_time;   /* seconds including penalties; stored only when completed */
  int64_t off_track; /* times the car left the track and was put back */
  int64_t crashes;   /* times it hit an object and was put back */
  int64_t steps;
  int completed;
} ch_trial_info;

/* An evaluation. The fields after created were added by schema version 2; 0 (or NULL) in
** them means "not known", so older callers that fill only the first seven keep working. */
typedef struct ch_evaluation_info {
  char *model;
  int64_t iteration;
  char *track;
  int64_t trials;
  int64_t completed_laps;
  char *results_json;
  int64_t created;
  char *race_type;        /* "time_trial", "object_avoidance", "head_to_head" */
  int64_t off_track;      /* over all trials */
  int64_t crashes;        /* over all trials */
  double best_lap_time;   /* the fastest completed trial, seconds; 0: no lap completed */
  double reference_lap;   /* the track's racing-line lap time, seconds; 0: unknown */
  double reference_ratio; /* best_lap_time / reference_lap; 0 when either is 0 */
  double penalty_seconds; /* per off-track */
  double crash_penalty_seconds;
  char *storage_key;         /* the results object in storage */
  char *simtrace_key;        /* the evaluation's sim-trace CSV in storage */
  int64_t num_trial_info;    /* entries of trial_info */
  ch_trial_info *trial_info; /* per trial; the getters fill it (malloc'd), may be NULL */
  int64_t id;                /* assigned by the catalog; set by the getters, ignored on add */
} ch_evaluation_info;

/* A training run: one `chicane train` (or clone, import) that wrote checkpoints. */
typedef struct ch_run_info {
  int64_t id; /* assigned by the catalog */
  char *model;
  int64_t started;    /* unix seconds; 0 on input: now */
  int64_t ended;      /* 0 while running */
  char *stop_reason;  /* "iteration limit", "failed: ...", ... */
  int64_t iterations; /* in this run */
  int64_t env_steps;  /* in this run */
  double wall_seconds;
  char *host;
  char *command_line;
} ch_run_info;

/* A model's best evaluation on a track, for the leaderboard. */
typedef struct ch_leaderboard_entry {
  int64_t rank; /* 1-based within the track */
  char *track;
  char *model;
  int64_t iteration; /* the evaluated checkpoint */
  char *race_type;
  double best_lap_time; /* seconds */
  double reference_lap; /* 0: unknown */
  double reference_ratio;
  int64_t completed_laps, trials, off_track, crashes;
  int64_t created; /* when that evaluation ran */
  int64_t evaluation_id;
} ch_leaderboard_entry;

/* Open (creating if missing) the catalog at path and bring its schema up to date. A file that
** is not a SQLite database -> CH_ECORRUPT; a schema newer than this code -> CH_EINVAL. */
int ch_catalog_open(const char *path, ch_catalog **out, ch_error *err);
void ch_catalog_close(ch_catalog *cat);

/* Insert or update by name, keeping its checkpoints and evaluations. On update a created of 0
** keeps the stored creation time. */
int ch_catalog_put_model(ch_catalog *cat, const ch_model_info *m, ch_error *err);
/* CH_ENOTFOUND "no model 'x' in catalog <path>". */
int ch_catalog_get_model(ch_catalog *cat, const char *name, ch_model_info *out, ch_error *err);
/* status one of "training", "ready", "stopped", "failed" (else CH_EINVAL); CH_ENOTFOUND. */
int ch_catalog_set_status(ch_catalog *cat, const char *name, const char *status, ch_error *err);
/* Every model, by name (byte order). */
int ch_catalog_list_models(ch_catalog *cat, int (*fn)(const ch_model_info *m, void *user),
                           void *user, ch_error *err);
/* Delete a model with its checkpoints and evaluations; CH_ENOTFOUND. */
int ch_catalog_delete_model(ch_catalog *cat, const char *name, ch_error *err);
void ch_model_info_free(ch_model_info *m);

/* The model must exist (CH_ENOTFOUND); an iteration already recorded -> CH_EINVAL. */
int ch_catalog_add_checkpoint(ch_catalog *cat, const ch_checkpoint_info *c, ch_error *err);
/* The highest iteration; CH_ENOTFOUND when the model has none. */
int ch_catalog_latest_checkpoint(ch_catalog *cat, const char *model, ch_checkpoint_info *out,
                                 ch_error *err);
/* By iteration; CH_ENOTFOUND when the model does not exist. */
int ch_catalog_list_checkpoints(ch_catalog *cat, const char *model,
                                int (*fn)(const ch_checkpoint_info *c, void *user), void *user,
                                ch_error *err);
void ch_checkpoint_info_free(ch_checkpoint_info *c);

/* The model must exist (CH_ENOTFOUND). */
int ch_catalog_add_evaluation(ch_catalog *cat, const ch_evaluation_info *e, ch_error *err);
/* By iteration, then in the order added; CH_ENOTFOUND when the model does not exist. */
int ch_catalog_list_evaluations(ch_catalog *cat, const char *model,
                                int (*fn)(const ch_evaluation_info *e, void *user), void *user,
                                ch_error *err);
void ch_evaluation_info_free(ch_evaluation_info *e);

/* ---- added with schema version 2 ------------------------------------------------------ */

/* Like add_evaluation, and writes the id the catalog gave the row to *id (may be NULL). The
** row and its trial_info rows are stored together or not at all. */
int ch_catalog_add_evaluation_id(ch_catalog *cat, const ch_evaluation_info *e, int64_t *id,
                                 ch_error *err);

/* Models ranked by their best completed lap on each track (only evaluations that completed
** at least one lap count; one entry per model and track, the fastest evaluation). track NULL:
** every track, ordered by track name, then rank. Entries are ordered by lap time, then by
** reference ratio, then by the time the evaluation ran. */
int ch_catalog_leaderboard(ch_catalog *cat, const char *track,
                           int (*fn)(const ch_leaderboard_entry *e, void *user), void *user,
                           ch_error *err);
void ch_leaderboard_entry_free(ch_leaderboard_entry *e);

/* Record the start of a run (every field of r as given, ended may already be set, id is
** ignored); *id receives the new run's id. The model must exist (CH_ENOTFOUND). */
int ch_catalog_start_run(ch_catalog *cat, const ch_run_info *r, int64_t *id, ch_error *err);
/* Record the end of run id: ended 0 means now. CH_ENOTFOUND when there is no such run. */
int ch_catalog_finish_run(ch_catalog *cat, int64_t id, const char *stop_reason, int64_t iterations,
                          int64_t env_steps, double wall_seconds, int64_t ended, ch_error *err);
/* A model's runs, oldest first; CH_ENOTFOUND when the model does not exist. */
int ch_catalog_list_runs(ch_catalog *cat, const char *model,
                         int (*fn)(const ch_run_info *r, void *user), void *user, ch_error *err);
void ch_run_info_free(ch_run_info *r);

/* The best values of a model for listings: the highest mean progress of any checkpoint, and
** the fastest completed evaluation lap on any track (0 when none). */
int ch_catalog_model_summary(ch_catalog *cat, const char *model, double *best_progress,
                             double *best_lap_time, int64_t *checkpoints, ch_error *err);

/* Group several changes into one transaction (BEGIN IMMEDIATE ... COMMIT); rollback undoes
** them. Calls do not nest. */
int ch_catalog_begin(ch_catalog *cat, ch_error *err);
int ch_catalog_commit(ch_catalog *cat, ch_error *err);
void ch_catalog_rollback(ch_catalog *cat);

/* The schema version this code writes (PRAGMA user_version). */
int ch_catalog_schema_version(void);
/* The file the handle was opened on. */
const char *ch_catalog_path(const ch_catalog *cat);

#endif
