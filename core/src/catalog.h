/* catalog.h -- the SQLite catalog: an index of models, checkpoints and evaluations. */
#ifndef CHICANE_CATALOG_H
#define CHICANE_CATALOG_H

#include <chicane/plugin.h> /* ch_error, ch_status */

/*
** One catalog file (catalog.db) per deployment. Every fallible call returns CH_OK or a negative
** ch_status and fills err (when not NULL) with a message naming the catalog's path and, for
** database errors, SQLite's own message. Inputs are borrowed for the call; the strings in the
** info structs filled by the getters are malloc'd and released with the matching _free. NULL
** strings are allowed and stored as NULL. A created time of 0 on input means "now".
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

typedef struct ch_evaluation_info {
  char *model;
  int64_t iteration;
  char *track;
  int64_t trials;
  int64_t completed_laps;
  char *results_json;
  int64_t created;
} ch_evaluation_info;

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

#endif
