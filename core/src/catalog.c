/* catalog.c -- the SQLite catalog: models, checkpoints, evaluations and runs in catalog.db. */

#include "catalog.h"

#include <chicane/plugin_util.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CH__BUSY_TIMEOUT_MS 5000
#define CH__NAME_MAX        255

struct ch_catalog {
  sqlite3 *db;
  char *path;
};

/*
** The schema, one entry per version: entry i takes a database from user_version i to i + 1.
** Never edit a released entry; append the next version's change instead.
*/
static const char *const ch__migrations[] = {
    /* 1: models, checkpoints, evaluations. ON UPDATE CASCADE lets a later version rename. */
    "CREATE TABLE models ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  track TEXT, reward_script TEXT, reward_sha256 TEXT, action_space_json TEXT,"
    "  hyperparameters_json TEXT, config_json TEXT, storage TEXT,"
    "  status TEXT CHECK (status IS NULL OR status IN ('training', 'ready', 'stopped', 'failed')),"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE checkpoints ("
    "  model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE ON UPDATE CASCADE,"
    "  iteration INTEGER NOT NULL, episodes INTEGER NOT NULL, env_steps INTEGER NOT NULL,"
    "  wall_seconds REAL NOT NULL, metrics_json TEXT, storage_key TEXT, sha256 TEXT,"
    "  created INTEGER NOT NULL,"
    "  PRIMARY KEY (model, iteration));"
    "CREATE TABLE evaluations ("
    "  id INTEGER PRIMARY KEY,"
    "  model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE ON UPDATE CASCADE,"
    "  iteration INTEGER NOT NULL, track TEXT, trials INTEGER NOT NULL,"
    "  completed_laps INTEGER NOT NULL, results_json TEXT, created INTEGER NOT NULL);"
    "CREATE INDEX evaluations_by_model ON evaluations (model, iteration);",

    /* 2: what listings rank by as real columns (checkpoint metrics, evaluation lap times),
    ** per-trial evaluation rows, training runs. Rows of version 1 keep their data: the
    ** per-trial results they held only inside results_json are copied into the new rows. */
    "ALTER TABLE checkpoints ADD COLUMN mean_reward REAL GENERATED ALWAYS AS (CASE WHEN "
    "  json_valid(metrics_json) THEN json_extract(metrics_json, '$.mean_reward') END) VIRTUAL;"
    "ALTER TABLE checkpoints ADD COLUMN mean_progress REAL GENERATED ALWAYS AS (CASE WHEN "
    "  json_valid(metrics_json) THEN json_extract(metrics_json, '$.mean_progress') END) VIRTUAL;"
    "ALTER TABLE checkpoints ADD COLUMN completion_rate REAL GENERATED ALWAYS AS (CASE WHEN "
    "  json_valid(metrics_json) THEN json_extract(metrics_json, '$.completion_rate') END) "
    "  VIRTUAL;"
    "ALTER TABLE evaluations ADD COLUMN race_type TEXT;"
    "ALTER TABLE evaluations ADD COLUMN off_track INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE evaluations ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE evaluations ADD COLUMN best_lap_time REAL;"
    "ALTER TABLE evaluations ADD COLUMN reference_lap REAL;"
    "ALTER TABLE evaluations ADD COLUMN reference_ratio REAL;"
    "ALTER TABLE evaluations ADD COLUMN penalty_seconds REAL;"
    "ALTER TABLE evaluations ADD COLUMN crash_penalty_seconds REAL;"
    "ALTER TABLE evaluations ADD COLUMN storage_key TEXT;"
    "ALTER TABLE evaluations ADD COLUMN simtrace_key TEXT;"
    "CREATE TABLE evaluation_trials ("
    "  evaluation INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,"
    "  trial INTEGER NOT NULL, progress REAL NOT NULL, lap_time REAL,"
    "  off_track INTEGER NOT NULL, crashes INTEGER NOT NULL, steps INTEGER NOT NULL,"
    "  completed INTEGER NOT NULL CHECK (completed IN (0, 1)),"
    "  PRIMARY KEY (evaluation, trial));"
    "INSERT OR IGNORE INTO evaluation_trials "
    "  (evaluation, trial, progress, lap_time, off_track, crashes, steps, completed) "
    "  SELECT e.id, COALESCE(json_extract(t.value, '$.trial'), t.key + 1),"
    "    COALESCE(json_extract(t.value, '$.progress'), 0),"
    "    CASE WHEN json_extract(t.value, '$.completed') THEN json_extract(t.value, '$.lap_time')"
    "    END, COALESCE(json_extract(t.value, '$.off_track'), 0), 0,"
    "    COALESCE(json_extract(t.value, '$.steps'), 0),"
    "    CASE WHEN json_extract(t.value, '$.completed') THEN 1 ELSE 0 END"
    "  FROM evaluations e, json_each(CASE WHEN json_valid(e.results_json) AND"
    "    json_type(e.results_json, '$.trials') = 'array' THEN e.results_json"
    "    ELSE '{\"trials\": []}' END, '$.trials') t"
    "  WHERE json_type(t.value) = 'object';"
    "UPDATE evaluations SET"
    "  off_track = COALESCE((SELECT sum(off_track) FROM evaluation_trials"
    "    WHERE evaluation = evaluations.id), 0),"
    "  best_lap_time = (SELECT min(lap_time) FROM evaluation_trials"
    "    WHERE evaluation = evaluations.id AND completed = 1),"
    "  penalty_seconds = CASE WHEN json_valid(results_json) THEN"
    "    json_extract(results_json, '$.penalty_seconds') END;"
    "CREATE INDEX evaluations_by_track ON evaluations (track, best_lap_time);"
    "CREATE TABLE training_runs ("
    "  id INTEGER PRIMARY KEY,"
    "  model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE ON UPDATE CASCADE,"
    "  started INTEGER NOT NULL, ended INTEGER, stop_reason TEXT,"
    "  iterations INTEGER NOT NULL DEFAULT 0, env_steps INTEGER NOT NULL DEFAULT 0,"
    "  wall_seconds REAL NOT NULL DEFAULT 0, host TEXT, command_line TEXT);"
    "CREATE INDEX training_runs_by_model ON training_runs (model, started);",
};

#define CH__SCHEMA_VERSION ((int)(sizeof ch__migrations / sizeof ch__migrations[0]))

/* ---- errors ---------------------------------------------------------------------------- */

static int ch__code(int rc) {
  switch (rc & 0xff) {
  case SQLITE_NOMEM:
    return CH_ENOMEM;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    return CH_ECORRUPT;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_TOOBIG:
    return CH_EINVAL;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return CH_ETIMEDOUT;
  default:
    return CH_EIO;
  }
}

/* Report the connection's last error; call before finalizing, which may reset the message. */
static int ch__db_error(ch_catalog *cat, int rc, const char *what, ch_error *err) {
  const char *msg = cat->db ? sqlite3_errmsg(cat->db) : sqlite3_errstr(rc);
  return ch_error_set(err, ch__code(rc), "catalog %s: %s: %s", cat->path, what, msg);
}

static int ch__no_model(ch_catalog *cat, const char *name, ch_error *err) {
  return ch_error_set(err, CH_ENOTFOUND, "no model '%s' in catalog %s", name ? name : "(null)",
                      cat->path);
}

/* ---- statements ------------------------------------------------------------------------ */

static int ch__prepare(ch_catalog *cat, const char *sql, sqlite3_stmt **st, ch_error *err) {
  int rc = sqlite3_prepare_v2(cat->db, sql, -1, st, NULL);
  if (rc == SQLITE_OK) return CH_OK;
  *st = NULL;
  return ch__db_error(cat, rc, "prepare statement", err);
}

/* Bind helpers that pass an earlier failure through, so a run of binds is checked once. */
static int ch__bind_text(sqlite3_stmt *st, int i, const char *s, int rc) {
  return rc != SQLITE_OK ? rc : sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int ch__bind_int(sqlite3_stmt *st, int i, int64_t v, int rc) {
  return rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, i, v);
}

static int ch__bind_created(sqlite3_stmt *st, int i, int64_t created, int rc) {
  return ch__bind_int(st, i, created != 0 ? created : (int64_t)time(NULL), rc);
}

/* Called for each row; returns CH_OK to go on, 1 to stop, or a negative ch_status. */
typedef int (*ch__row_fn)(sqlite3_stmt *st, void *ctx);

/* Step st to its end (or until fn stops), then finalize it. bind_rc is the binds' result.
** *rows (may be NULL) counts the rows seen. */
static int ch__each_row(ch_catalog *cat, sqlite3_stmt *st, int bind_rc, ch__row_fn fn, void *ctx,
                        long *rows, const char *what, ch_error *err) {
  int rc = bind_rc == SQLITE_OK ? CH_OK : ch__db_error(cat, bind_rc, what, err);
  long n = 0;
  while (rc == CH_OK) {
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) break;
    if (s != SQLITE_ROW) {
      rc = ch__db_error(cat, s, what, err);
      break;
    }
    n++;
    int r = fn ? fn(st, ctx) : CH_OK;
    if (r == 1) break;
    if (r < 0) rc = ch_error_set(err, r, "catalog %s: %s: out of memory", cat->path, what);
  }
  sqlite3_finalize(st);
  if (rows) *rows = n;
  return rc;
}

/* Run a statement that returns no rows; *sqlite_rc (may be NULL) gets the raw step result. */
static int ch__run(ch_catalog *cat, sqlite3_stmt *st, int bind_rc, int *sqlite_rc, const char *what,
                   ch_error *err) {
  int s = bind_rc == SQLITE_OK ? sqlite3_step(st) : bind_rc;
  if (sqlite_rc) *sqlite_rc = s;
  int rc = s == SQLITE_DONE || s == SQLITE_ROW ? CH_OK : ch__db_error(cat, s, what, err);
  sqlite3_finalize(st);
  return rc;
}

static int ch__exec(ch_catalog *cat, const char *sql, const char *what, ch_error *err) {
  int rc = sqlite3_exec(cat->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? CH_OK : ch__db_error(cat, rc, what, err);
}

/* A copy of a text column; NULL stays NULL. */
static int ch__dup_column(sqlite3_stmt *st, int col, char **out) {
  *out = NULL;
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return CH_OK;
  const unsigned char *text = sqlite3_column_text(st, col);
  if (!text) return CH_ENOMEM;
  size_t n = (size_t)sqlite3_column_bytes(st, col);
  if (!(*out = malloc(n + 1))) return CH_ENOMEM;
  memcpy(*out, text, n);
  (*out)[n] = '\0';
  return CH_OK;
}

static int ch__dup_columns(sqlite3_stmt *st, char **const *fields, const int *cols, int n) {
  for (int i = 0; i < n; i++)
    if (ch__dup_column(st, cols[i], fields[i]) != CH_OK) return CH_ENOMEM;
  return CH_OK;
}

/* ---- open, close, schema --------------------------------------------------------------- */

static int ch__user_version(ch_catalog *cat, int *out, ch_error *err) {
  sqlite3_stmt *st;
  int rc = ch__prepare(cat, "PRAGMA user_version", &st, err);
  if (rc != CH_OK) return rc;
  int s = sqlite3_step(st);
  if (s == SQLITE_ROW)
    *out = sqlite3_column_int(st, 0);
  else
    rc = ch__db_error(cat, s, "read the schema version", err);
  sqlite3_finalize(st);
  return rc;
}

static int ch__check_version(ch_catalog *cat, int version, ch_error *err) {
  if (version >= 0 && version <= CH__SCHEMA_VERSION) return CH_OK;
  return ch_error_set(err, CH_EINVAL,
                      "catalog %s: schema version %d is not one this chicane knows (0 to %d); "
                      "a newer chicane wrote it",
                      cat->path, version, CH__SCHEMA_VERSION);
}

static int ch__apply_migrations(ch_catalog *cat, ch_error *err) {
  int version = 0;
  int rc = ch__user_version(cat, &version, err); /* again: another process may have won */
  if (rc == CH_OK) rc = ch__check_version(cat, version, err);
  for (; rc == CH_OK && version < CH__SCHEMA_VERSION; version++) {
    char what[64], pragma[64];
    snprintf(what, sizeof what, "migrate the schema to version %d", version + 1);
    /* PRAGMA takes no bound parameters; the number comes from this file, not from input. */
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
    rc = ch__exec(cat, ch__migrations[version], what, err);
    if (rc == CH_OK) rc = ch__exec(cat, pragma, what, err);
  }
  return rc;
}

static int ch__migrate(ch_catalog *cat, ch_error *err) {
  int version = 0;
  int rc = ch__user_version(cat, &version, err);
  if (rc == CH_OK) rc = ch__check_version(cat, version, err);
  if (rc != CH_OK || version == CH__SCHEMA_VERSION) return rc;
  /* IMMEDIATE: take the write lock first, so two processes never migrate at once. */
  rc = ch__exec(cat, "BEGIN IMMEDIATE", "begin the schema migration", err);
  if (rc != CH_OK) return rc;
  rc = ch__apply_migrations(cat, err);
  if (rc == CH_OK) return ch__exec(cat, "COMMIT", "commit the schema migration", err);
  sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int ch__configure(ch_catalog *cat, ch_error *err) {
  sqlite3_extended_result_codes(cat->db, 1);
  sqlite3_busy_timeout(cat->db, CH__BUSY_TIMEOUT_MS);
  /* Read the version before anything writes, so a foreign or future file is left untouched. */
  int version = 0;
  int rc = ch__user_version(cat, &version, err);
  if (rc == CH_OK) rc = ch__check_version(cat, version, err);
  if (rc == CH_OK) rc = ch__exec(cat, "PRAGMA journal_mode = WAL", "enable WAL", err);
  if (rc == CH_OK) rc = ch__exec(cat, "PRAGMA foreign_keys = ON", "enable foreign keys", err);
  if (rc == CH_OK) rc = ch__migrate(cat, err);
  return rc;
}

int ch_catalog_open(const char *path, ch_catalog **out, ch_error *err) {
  ch_error_clear(err);
  if (!path || !out) return ch_error_set(err, CH_EINVAL, "catalog open: NULL argument");
  *out = NULL;
  ch_catalog *cat = calloc(1, sizeof *cat);
  if (!cat || !(cat->path = strdup(path))) {
    free(cat);
    return ch_error_set(err, CH_ENOMEM, "catalog %s: out of memory", path);
  }
  int s = sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  int rc = s == SQLITE_OK ? CH_OK : ch__db_error(cat, s, "cannot open", err);
  if (rc == CH_OK) rc = ch__configure(cat, err);
  if (rc != CH_OK) {
    ch_catalog_close(cat);
    return rc;
  }
  *out = cat;
  return CH_OK;
}

void ch_catalog_close(ch_catalog *cat) {
  if (!cat) return;
  sqlite3_close(cat->db);
  free(cat->path);
  free(cat);
}

/* ---- models ---------------------------------------------------------------------------- */

static int ch__check_name(const char *name, ch_error *err) {
  size_t n = name ? strlen(name) : 0;
  int ok = n > 0 && n <= CH__NAME_MAX && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
  for (size_t i = 0; ok && i < n; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
  }
  if (ok) return CH_OK;
  return ch_error_set(
      err, CH_EINVAL,
      "invalid model name '%.255s': use 1 to 255 of [A-Za-z0-9._-], not '.' or '..'",
      name ? name : "(null)");
}

static int ch__check_status(const char *status, ch_error *err) {
  static const char *const known[] = {"training", "ready", "stopped", "failed"};
  for (size_t i = 0; status && i < sizeof known / sizeof known[0]; i++)
    if (strcmp(status, known[i]) == 0) return CH_OK;
  return ch_error_set(err, CH_EINVAL,
                      "invalid model status '%.64s': use training, ready, stopped or failed",
                      status ? status : "(null)");
}

#define CH__MODEL_COLUMNS                                                                          \
  "name, track, reward_script, reward_sha256, action_space_json, hyperparameters_json, "           \
  "config_json, storage, status, created"

static int ch__read_model(sqlite3_stmt *st, ch_model_info *m) {
  memset(m, 0, sizeof *m);
  char **const fields[] = {&m->name,
                           &m->track,
                           &m->reward_script,
                           &m->reward_sha256,
                           &m->action_space_json,
                           &m->hyperparameters_json,
                           &m->config_json,
                           &m->storage,
                           &m->status};
  static const int cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  if (ch__dup_columns(st, fields, cols, 9) != CH_OK) {
    ch_model_info_free(m);
    return CH_ENOMEM;
  }
  m->created = sqlite3_column_int64(st, 9);
  return CH_OK;
}

static int ch__model_exists(ch_catalog *cat, const char *name, int *exists, ch_error *err) {
  sqlite3_stmt *st;
  int rc = ch__prepare(cat, "SELECT 1 FROM models WHERE name = ?1", &st, err);
  if (rc != CH_OK) return rc;
  long rows = 0;
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, name, SQLITE_OK), NULL, NULL, &rows,
                    "look up a model", err);
  *exists = rows > 0;
  return rc;
}

int ch_catalog_put_model(ch_catalog *cat, const ch_model_info *m, ch_error *err) {
  if (!cat || !m) return ch_error_set(err, CH_EINVAL, "catalog put_model: NULL argument");
  int rc = ch__check_name(m->name, err);
  if (rc == CH_OK && m->status) rc = ch__check_status(m->status, err);
  sqlite3_stmt *st;
  if (rc == CH_OK)
    rc = ch__prepare(cat,
                     "INSERT INTO models (" CH__MODEL_COLUMNS ") VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, COALESCE(?10, ?11)) "
                     "ON CONFLICT (name) DO UPDATE SET track = excluded.track, "
                     "reward_script = excluded.reward_script, "
                     "reward_sha256 = excluded.reward_sha256, "
                     "action_space_json = excluded.action_space_json, "
                     "hyperparameters_json = excluded.hyperparameters_json, "
                     "config_json = excluded.config_json, storage = excluded.storage, "
                     "status = excluded.status, created = COALESCE(?10, models.created)",
                     &st, err);
  if (rc != CH_OK) return rc;
  const char *texts[] = {m->name,
                         m->track,
                         m->reward_script,
                         m->reward_sha256,
                         m->action_space_json,
                         m->hyperparameters_json,
                         m->config_json,
                         m->storage,
                         m->status};
  int b = SQLITE_OK;
  for (int i = 0; i < 9; i++) b = ch__bind_text(st, i + 1, texts[i], b);
  /* ?10 NULL (created 0): a new row gets now (?11), an existing one keeps its time. */
  if (m->created != 0) b = ch__bind_int(st, 10, m->created, b);
  b = ch__bind_created(st, 11, 0, b);
  return ch__run(cat, st, b, NULL, "store a model", err);
}

static int ch__get_model_row(sqlite3_stmt *st, void *ctx) {
  int rc = ch__read_model(st, ctx);
  return rc == CH_OK ? 1 : rc;
}

int ch_catalog_get_model(ch_catalog *cat, const char *name, ch_model_info *out, ch_error *err) {
  if (!cat || !name || !out)
    return ch_error_set(err, CH_EINVAL, "catalog get_model: NULL argument");
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  int rc = ch__prepare(cat, "SELECT " CH__MODEL_COLUMNS " FROM models WHERE name = ?1", &st, err);
  if (rc != CH_OK) return rc;
  long rows = 0;
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, name, SQLITE_OK), ch__get_model_row, out, &rows,
                    "read a model", err);
  if (rc == CH_OK && rows == 0) rc = ch__no_model(cat, name, err);
  return rc;
}

int ch_catalog_set_status(ch_catalog *cat, const char *name, const char *status, ch_error *err) {
  if (!cat || !name) return ch_error_set(err, CH_EINVAL, "catalog set_status: NULL argument");
  int rc = ch__check_status(status, err);
  sqlite3_stmt *st;
  if (rc == CH_OK) rc = ch__prepare(cat, "UPDATE models SET status = ?2 WHERE name = ?1", &st, err);
  if (rc != CH_OK) return rc;
  int b = ch__bind_text(st, 2, status, ch__bind_text(st, 1, name, SQLITE_OK));
  rc = ch__run(cat, st, b, NULL, "set a model's status", err);
  if (rc == CH_OK && sqlite3_changes(cat->db) == 0) rc = ch__no_model(cat, name, err);
  return rc;
}

typedef struct ch__model_list {
  int (*fn)(const ch_model_info *m, void *user);
  void *user;
} ch__model_list;

static int ch__list_model_row(sqlite3_stmt *st, void *ctx) {
  ch__model_list *l = ctx;
  ch_model_info m;
  if (ch__read_model(st, &m) != CH_OK) return CH_ENOMEM;
  int stop = l->fn(&m, l->user);
  ch_model_info_free(&m);
  return stop != 0 ? 1 : CH_OK;
}

int ch_catalog_list_models(ch_catalog *cat, int (*fn)(const ch_model_info *m, void *user),
                           void *user, ch_error *err) {
  if (!cat || !fn) return ch_error_set(err, CH_EINVAL, "catalog list_models: NULL argument");
  sqlite3_stmt *st;
  int rc = ch__prepare(cat, "SELECT " CH__MODEL_COLUMNS " FROM models ORDER BY name", &st, err);
  if (rc != CH_OK) return rc;
  ch__model_list l = {fn, user};
  return ch__each_row(cat, st, SQLITE_OK, ch__list_model_row, &l, NULL, "list models", err);
}

int ch_catalog_delete_model(ch_catalog *cat, const char *name, ch_error *err) {
  if (!cat || !name) return ch_error_set(err, CH_EINVAL, "catalog delete_model: NULL argument");
  sqlite3_stmt *st;
  int rc = ch__prepare(cat, "DELETE FROM models WHERE name = ?1", &st, err);
  if (rc != CH_OK) return rc;
  rc = ch__run(cat, st, ch__bind_text(st, 1, name, SQLITE_OK), NULL, "delete a model", err);
  if (rc == CH_OK && sqlite3_changes(cat->db) == 0) rc = ch__no_model(cat, name, err);
  return rc;
}

void ch_model_info_free(ch_model_info *m) {
  if (!m) return;
  free(m->name);
  free(m->track);
  free(m->reward_script);
  free(m->reward_sha256);
  free(m->action_space_json);
  free(m->hyperparameters_json);
  free(m->config_json);
  free(m->storage);
  free(m->status);
  memset(m, 0, sizeof *m);
}

/* ---- checkpoints ----------------------------------------------------------------------- */

#define CH__CHECKPOINT_COLUMNS                                                                     \
  "model, iteration, episodes, env_steps, wall_seconds, metrics_json, storage_key, sha256, "       \
  "created"

static int ch__read_checkpoint(sqlite3_stmt *st, ch_checkpoint_info *c) {
  memset(c, 0, sizeof *c);
  char **const fields[] = {&c->model, &c->metrics_json, &c->storage_key, &c->sha256};
  static const int cols[] = {0, 5, 6, 7};
  if (ch__dup_columns(st, fields, cols, 4) != CH_OK) {
    ch_checkpoint_info_free(c);
    return CH_ENOMEM;
  }
  c->iteration = sqlite3_column_int64(st, 1);
  c->episodes = sqlite3_column_int64(st, 2);
  c->env_steps = sqlite3_column_int64(st, 3);
  c->wall_seconds = sqlite3_column_double(st, 4);
  c->created = sqlite3_column_int64(st, 8);
  return CH_OK;
}

/* Turn the constraint failures of an insert into messages about the model and iteration. */
static int ch__insert_failed(ch_catalog *cat, int rc, int sqlite_rc, const char *model,
                             const char *what, int64_t iteration, ch_error *err) {
  if (sqlite_rc == SQLITE_CONSTRAINT_FOREIGNKEY)
    return ch_error_set(err, CH_ENOTFOUND, "no model '%s' in catalog %s (adding %s %lld)", model,
                        cat->path, what, (long long)iteration);
  if (sqlite_rc == SQLITE_CONSTRAINT_PRIMARYKEY)
    return ch_error_set(err, CH_EINVAL, "%s %lld of model '%s' is already in catalog %s", what,
                        (long long)iteration, model, cat->path);
  return rc;
}

int ch_catalog_add_checkpoint(ch_catalog *cat, const ch_checkpoint_info *c, ch_error *err) {
  if (!cat || !c || !c->model)
    return ch_error_set(err, CH_EINVAL, "catalog add_checkpoint: NULL argument");
  if (!isfinite(c->wall_seconds))
    return ch_error_set(err, CH_EINVAL,
                        "catalog %s: checkpoint %lld of model '%s': wall_seconds "
                        "is not finite",
                        cat->path, (long long)c->iteration, c->model);
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "INSERT INTO checkpoints (" CH__CHECKPOINT_COLUMNS ") VALUES "
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                       &st, err);
  if (rc != CH_OK) return rc;
  int b = ch__bind_text(st, 1, c->model, SQLITE_OK);
  b = ch__bind_int(st, 2, c->iteration, b);
  b = ch__bind_int(st, 3, c->episodes, b);
  b = ch__bind_int(st, 4, c->env_steps, b);
  b = b != SQLITE_OK ? b : sqlite3_bind_double(st, 5, c->wall_seconds);
  b = ch__bind_text(st, 6, c->metrics_json, b);
  b = ch__bind_text(st, 7, c->storage_key, b);
  b = ch__bind_text(st, 8, c->sha256, b);
  b = ch__bind_created(st, 9, c->created, b);
  int s;
  rc = ch__run(cat, st, b, &s, "add a checkpoint", err);
  if (rc != CH_OK) rc = ch__insert_failed(cat, rc, s, c->model, "checkpoint", c->iteration, err);
  return rc;
}

static int ch__get_checkpoint_row(sqlite3_stmt *st, void *ctx) {
  int rc = ch__read_checkpoint(st, ctx);
  return rc == CH_OK ? 1 : rc;
}

int ch_catalog_latest_checkpoint(ch_catalog *cat, const char *model, ch_checkpoint_info *out,
                                 ch_error *err) {
  if (!cat || !model || !out)
    return ch_error_set(err, CH_EINVAL, "catalog latest_checkpoint: NULL argument");
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "SELECT " CH__CHECKPOINT_COLUMNS " FROM checkpoints WHERE model = ?1 "
                       "ORDER BY iteration DESC LIMIT 1",
                       &st, err);
  if (rc != CH_OK) return rc;
  long rows = 0;
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, model, SQLITE_OK), ch__get_checkpoint_row, out,
                    &rows, "read the latest checkpoint", err);
  int exists = 0;
  if (rc == CH_OK && rows == 0) rc = ch__model_exists(cat, model, &exists, err);
  if (rc == CH_OK && rows == 0 && !exists)
    rc = ch__no_model(cat, model, err);
  else if (rc == CH_OK && rows == 0)
    rc = ch_error_set(err, CH_ENOTFOUND, "no checkpoint of model '%s' in catalog %s", model,
                      cat->path);
  return rc;
}

typedef struct ch__checkpoint_list {
  int (*fn)(const ch_checkpoint_info *c, void *user);
  void *user;
} ch__checkpoint_list;

static int ch__list_checkpoint_row(sqlite3_stmt *st, void *ctx) {
  ch__checkpoint_list *l = ctx;
  ch_checkpoint_info c;
  if (ch__read_checkpoint(st, &c) != CH_OK) return CH_ENOMEM;
  int stop = l->fn(&c, l->user);
  ch_checkpoint_info_free(&c);
  return stop != 0 ? 1 : CH_OK;
}

/* After a list of a model's rows found none: CH_ENOTFOUND if the model itself is missing. */
static int ch__check_listed(ch_catalog *cat, const char *model, int rc, long rows, ch_error *err) {
  int exists = 1;
  if (rc == CH_OK && rows == 0) rc = ch__model_exists(cat, model, &exists, err);
  if (rc == CH_OK && !exists) rc = ch__no_model(cat, model, err);
  return rc;
}

int ch_catalog_list_checkpoints(ch_catalog *cat, const char *model,
                                int (*fn)(const ch_checkpoint_info *c, void *user), void *user,
                                ch_error *err) {
  if (!cat || !model || !fn)
    return ch_error_set(err, CH_EINVAL, "catalog list_checkpoints: NULL argument");
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "SELECT " CH__CHECKPOINT_COLUMNS " FROM checkpoints WHERE model = ?1 "
                       "ORDER BY iteration",
                       &st, err);
  if (rc != CH_OK) return rc;
  ch__checkpoint_list l = {fn, user};
  long rows = 0;
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, model, SQLITE_OK), ch__list_checkpoint_row, &l,
                    &rows, "list checkpoints", err);
  return ch__check_listed(cat, model, rc, rows, err);
}

void ch_checkpoint_info_free(ch_checkpoint_info *c) {
  if (!c) return;
  free(c->model);
  free(c->metrics_json);
  free(c->storage_key);
  free(c->sha256);
  memset(c, 0, sizeof *c);
}

/* ---- evaluations ----------------------------------------------------------------------- */

#define CH__EVALUATION_COLUMNS                                                                     \
  "model, iteration, track, trials, completed_laps, results_json, created, race_type, "            \
  "off_track, crashes, best_lap_time, reference_lap, reference_ratio, penalty_seconds, "           \
  "crash_penalty_seconds, storage_key, simtrace_key, id"

static int ch__read_trial(sqlite3_stmt *st, void *ctx) {
  ch_evaluation_info *e = ctx;
  ch_trial_info *t = realloc(e->trial_info, (size_t)(e->num_trial_info + 1) * sizeof *t);
  if (!t) return CH_ENOMEM;
  e->trial_info = t;
  t += e->num_trial_info++;
  t->trial = sqlite3_column_int64(st, 0);
  t->progress = sqlite3_column_double(st, 1);
  t->lap_time = sqlite3_column_double(st, 2);
  t->off_track = sqlite3_column_int64(st, 3);
  t->crashes = sqlite3_column_int64(st, 4);
  t->steps = sqlite3_column_int64(st, 5);
  t->completed = sqlite3_column_int(st, 6);
  return CH_OK;
}

static int ch__read_trials(ch_catalog *cat, ch_evaluation_info *e, ch_error *err) {
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "SELECT trial, progress, lap_time, off_track, crashes, steps, completed "
                       "FROM evaluation_trials WHERE evaluation = ?1 ORDER BY trial",
                       &st, err);
  if (rc != CH_OK) return rc;
  return ch__each_row(cat, st, ch__bind_int(st, 1, e->id, SQLITE_OK), ch__read_trial, e, NULL,
                      "read evaluation trials", err);
}

static int ch__read_evaluation(ch_catalog *cat, sqlite3_stmt *st, ch_evaluation_info *e) {
  memset(e, 0, sizeof *e);
  char **const fields[] = {&e->model,     &e->track,       &e->results_json,
                           &e->race_type, &e->storage_key, &e->simtrace_key};
  static const int cols[] = {0, 2, 5, 7, 15, 16};
  if (ch__dup_columns(st, fields, cols, 6) != CH_OK) {
    ch_evaluation_info_free(e);
    return CH_ENOMEM;
  }
  e->iteration = sqlite3_column_int64(st, 1);
  e->trials = sqlite3_column_int64(st, 3);
  e->completed_laps = sqlite3_column_int64(st, 4);
  e->created = sqlite3_column_int64(st, 6);
  e->off_track = sqlite3_column_int64(st, 8);
  e->crashes = sqlite3_column_int64(st, 9);
  e->best_lap_time = sqlite3_column_double(st, 10);
  e->reference_lap = sqlite3_column_double(st, 11);
  e->reference_ratio = sqlite3_column_double(st, 12);
  e->penalty_seconds = sqlite3_column_double(st, 13);
  e->crash_penalty_seconds = sqlite3_column_double(st, 14);
  e->id = sqlite3_column_int64(st, 17);
  if (ch__read_trials(cat, e, NULL) != CH_OK) {
    ch_evaluation_info_free(e);
    return CH_ENOMEM;
  }
  return CH_OK;
}

static int ch__bind_double(sqlite3_stmt *st, int i, double v, int rc) {
  return rc != SQLITE_OK ? rc : sqlite3_bind_double(st, i, v);
}

/* A value where 0 means "not known": stored as NULL so that SQL's min() and ORDER BY skip it. */
static int ch__bind_known(sqlite3_stmt *st, int i, double v, int rc) {
  if (rc != SQLITE_OK || v != 0) return ch__bind_double(st, i, v, rc);
  return sqlite3_bind_null(st, i);
}

static int ch__check_evaluation(ch_catalog *cat, const ch_evaluation_info *e, ch_error *err) {
  const double v[] = {e->best_lap_time, e->reference_lap, e->reference_ratio, e->penalty_seconds,
                      e->crash_penalty_seconds};
  static const char *const names[] = {"best_lap_time", "reference_lap", "reference_ratio",
                                      "penalty_seconds", "crash_penalty_seconds"};
  for (int i = 0; i < 5; i++)
    if (!isfinite(v[i]) || v[i] < 0)
      return ch_error_set(err, CH_EINVAL,
                          "catalog %s: evaluation of model '%s': %s must be finite and >= 0",
                          cat->path, e->model, names[i]);
  if (e->num_trial_info < 0 || (e->num_trial_info > 0 && !e->trial_info))
    return ch_error_set(err, CH_EINVAL, "catalog %s: evaluation of model '%s': bad trial_info",
                        cat->path, e->model);
  for (int64_t i = 0; i < e->num_trial_info; i++)
    if (!isfinite(e->trial_info[i].progress) || !isfinite(e->trial_info[i].lap_time))
      return ch_error_set(err, CH_EINVAL,
                          "catalog %s: evaluation of model '%s': trial %lld is not finite",
                          cat->path, e->model, (long long)e->trial_info[i].trial);
  return CH_OK;
}

static int ch__insert_evaluation(ch_catalog *cat, const ch_evaluation_info *e, ch_error *err) {
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "INSERT INTO evaluations (model, iteration, track, trials, completed_laps, "
                       "results_json, created, race_type, off_track, crashes, best_lap_time, "
                       "reference_lap, reference_ratio, penalty_seconds, crash_penalty_seconds, "
                       "storage_key, simtrace_key) VALUES "
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                       "?17)",
                       &st, err);
  if (rc != CH_OK) return rc;
  int b = ch__bind_text(st, 1, e->model, SQLITE_OK);
  b = ch__bind_int(st, 2, e->iteration, b);
  b = ch__bind_text(st, 3, e->track, b);
  b = ch__bind_int(st, 4, e->trials, b);
  b = ch__bind_int(st, 5, e->completed_laps, b);
  b = ch__bind_text(st, 6, e->results_json, b);
  b = ch__bind_created(st, 7, e->created, b);
  b = ch__bind_text(st, 8, e->race_type, b);
  b = ch__bind_int(st, 9, e->off_track, b);
  b = ch__bind_int(st, 10, e->crashes, b);
  b = ch__bind_known(st, 11, e->best_lap_time, b);
  b = ch__bind_known(st, 12, e->reference_lap, b);
  b = ch__bind_known(st, 13, e->reference_ratio, b);
  b = ch__bind_double(st, 14, e->penalty_seconds, b);
  b = ch__bind_double(st, 15, e->crash_penalty_seconds, b);
  b = ch__bind_text(st, 16, e->storage_key, b);
  b = ch__bind_text(st, 17, e->simtrace_key, b);
  int s;
  rc = ch__run(cat, st, b, &s, "add an evaluation", err);
  if (rc != CH_OK)
    rc = ch__insert_failed(cat, rc, s, e->model, "evaluation of iteration", e->iteration, err);
  return rc;
}

static int ch__insert_trial(ch_catalog *cat, int64_t id, const ch_trial_info *t, ch_error *err) {
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "INSERT INTO evaluation_trials (evaluation, trial, progress, lap_time, "
                       "off_track, crashes, steps, completed) VALUES "
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                       &st, err);
  if (rc != CH_OK) return rc;
  int b = ch__bind_int(st, 1, id, SQLITE_OK);
  b = ch__bind_int(st, 2, t->trial, b);
  b = ch__bind_double(st, 3, t->progress, b);
  if (t->completed)
    b = ch__bind_double(st, 4, t->lap_time, b);
  else if (b == SQLITE_OK)
    b = sqlite3_bind_null(st, 4);
  b = ch__bind_int(st, 5, t->off_track, b);
  b = ch__bind_int(st, 6, t->crashes, b);
  b = ch__bind_int(st, 7, t->steps, b);
  b = ch__bind_int(st, 8, t->completed ? 1 : 0, b);
  int s;
  rc = ch__run(cat, st, b, &s, "add an evaluation trial", err);
  if (rc != CH_OK && s == SQLITE_CONSTRAINT_PRIMARYKEY)
    rc = ch_error_set(err, CH_EINVAL, "catalog %s: trial %lld appears twice in an evaluation",
                      cat->path, (long long)t->trial);
  return rc;
}

int ch_catalog_add_evaluation_id(ch_catalog *cat, const ch_evaluation_info *e, int64_t *id,
                                 ch_error *err) {
  if (!cat || !e || !e->model)
    return ch_error_set(err, CH_EINVAL, "catalog add_evaluation: NULL argument");
  int rc = ch__check_evaluation(cat, e, err);
  /* A savepoint (not BEGIN), so that this also works inside a caller's transaction. */
  if (rc == CH_OK) rc = ch__exec(cat, "SAVEPOINT ch_evaluation", "add an evaluation", err);
  if (rc != CH_OK) return rc;
  rc = ch__insert_evaluation(cat, e, err);
  int64_t row = sqlite3_last_insert_rowid(cat->db);
  for (int64_t i = 0; rc == CH_OK && i < e->num_trial_info; i++)
    rc = ch__insert_trial(cat, row, &e->trial_info[i], err);
  if (rc != CH_OK) sqlite3_exec(cat->db, "ROLLBACK TO ch_evaluation", NULL, NULL, NULL);
  int r2 = ch__exec(cat, "RELEASE ch_evaluation", "add an evaluation", rc == CH_OK ? err : NULL);
  if (rc == CH_OK) rc = r2;
  if (rc == CH_OK && id) *id = row;
  return rc;
}

int ch_catalog_add_evaluation(ch_catalog *cat, const ch_evaluation_info *e, ch_error *err) {
  return ch_catalog_add_evaluation_id(cat, e, NULL, err);
}

typedef struct ch__evaluation_list {
  ch_catalog *cat;
  int (*fn)(const ch_evaluation_info *e, void *user);
  void *user;
} ch__evaluation_list;

static int ch__list_evaluation_row(sqlite3_stmt *st, void *ctx) {
  ch__evaluation_list *l = ctx;
  ch_evaluation_info e;
  if (ch__read_evaluation(l->cat, st, &e) != CH_OK) return CH_ENOMEM;
  int stop = l->fn(&e, l->user);
  ch_evaluation_info_free(&e);
  return stop != 0 ? 1 : CH_OK;
}

int ch_catalog_list_evaluations(ch_catalog *cat, const char *model,
                                int (*fn)(const ch_evaluation_info *e, void *user), void *user,
                                ch_error *err) {
  if (!cat || !model || !fn)
    return ch_error_set(err, CH_EINVAL, "catalog list_evaluations: NULL argument");
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "SELECT " CH__EVALUATION_COLUMNS " FROM evaluations WHERE model = ?1 "
                       "ORDER BY iteration, id",
                       &st, err);
  if (rc != CH_OK) return rc;
  ch__evaluation_list l = {cat, fn, user};
  long rows = 0;
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, model, SQLITE_OK), ch__list_evaluation_row, &l,
                    &rows, "list evaluations", err);
  return ch__check_listed(cat, model, rc, rows, err);
}

void ch_evaluation_info_free(ch_evaluation_info *e) {
  if (!e) return;
  free(e->model);
  free(e->track);
  free(e->results_json);
  free(e->race_type);
  free(e->storage_key);
  free(e->simtrace_key);
  free(e->trial_info);
  memset(e, 0, sizeof *e);
}

/* ---- leaderboard ----------------------------------------------------------------------- */

static int ch__read_entry(sqlite3_stmt *st, ch_leaderboard_entry *e) {
  memset(e, 0, sizeof *e);
  char **const fields[] = {&e->track, &e->model, &e->race_type};
  static const int cols[] = {0, 1, 3};
  if (ch__dup_columns(st, fields, cols, 3) != CH_OK) {
    ch_leaderboard_entry_free(e);
    return CH_ENOMEM;
  }
  e->iteration = sqlite3_column_int64(st, 2);
  e->best_lap_time = sqlite3_column_double(st, 4);
  e->reference_lap = sqlite3_column_double(st, 5);
  e->reference_ratio = sqlite3_column_double(st, 6);
  e->completed_laps = sqlite3_column_int64(st, 7);
  e->trials = sqlite3_column_int64(st, 8);
  e->off_track = sqlite3_column_int64(st, 9);
  e->crashes = sqlite3_column_int64(st, 10);
  e->created = sqlite3_column_int64(st, 11);
  e->evaluation_id = sqlite3_column_int64(st, 12);
  e->rank = sqlite3_column_int64(st, 13);
  return CH_OK;
}

typedef struct ch__entry_list {
  int (*fn)(const ch_leaderboard_entry *e, void *user);
  void *user;
} ch__entry_list;

static int ch__list_entry_row(sqlite3_stmt *st, void *ctx) {
  ch__entry_list *l = ctx;
  ch_leaderboard_entry e;
  if (ch__read_entry(st, &e) != CH_OK) return CH_ENOMEM;
  int stop = l->fn(&e, l->user);
  ch_leaderboard_entry_free(&e);
  return stop != 0 ? 1 : CH_OK;
}

int ch_catalog_leaderboard(ch_catalog *cat, const char *track,
                           int (*fn)(const ch_leaderboard_entry *e, void *user), void *user,
                           ch_error *err) {
  if (!cat || !fn) return ch_error_set(err, CH_EINVAL, "catalog leaderboard: NULL argument");
  sqlite3_stmt *st;
  /* The inner query keeps each model's fastest evaluation per track; the outer ranks them. */
  int rc = ch__prepare(
      cat,
      "SELECT track, model, iteration, race_type, best_lap_time, reference_lap, "
      "reference_ratio, completed_laps, trials, off_track, crashes, created, id, "
      "row_number() OVER (PARTITION BY track ORDER BY best_lap_time, created, id) AS rank "
      "FROM (SELECT *, row_number() OVER (PARTITION BY model, track "
      "  ORDER BY best_lap_time, created, id) AS k FROM evaluations "
      "  WHERE best_lap_time IS NOT NULL AND completed_laps > 0 "
      "  AND (?1 IS NULL OR track = ?1)) "
      "WHERE k = 1 ORDER BY track, rank",
      &st, err);
  if (rc != CH_OK) return rc;
  ch__entry_list l = {fn, user};
  return ch__each_row(cat, st, ch__bind_text(st, 1, track, SQLITE_OK), ch__list_entry_row, &l, NULL,
                      "rank the models", err);
}

void ch_leaderboard_entry_free(ch_leaderboard_entry *e) {
  if (!e) return;
  free(e->track);
  free(e->model);
  free(e->race_type);
  memset(e, 0, sizeof *e);
}

/* ---- training runs --------------------------------------------------------------------- */

#define CH__RUN_COLUMNS                                                                            \
  "id, model, started, ended, stop_reason, iterations, env_steps, wall_seconds, host, "            \
  "command_line"

int ch_catalog_start_run(ch_catalog *cat, const ch_run_info *r, int64_t *id, ch_error *err) {
  if (!cat || !r || !r->model)
    return ch_error_set(err, CH_EINVAL, "catalog start_run: NULL argument");
  if (!isfinite(r->wall_seconds))
    return ch_error_set(err, CH_EINVAL, "catalog %s: run of model '%s': wall_seconds is not finite",
                        cat->path, r->model);
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "INSERT INTO training_runs (model, started, ended, stop_reason, iterations, "
                       "env_steps, wall_seconds, host, command_line) VALUES "
                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                       &st, err);
  if (rc != CH_OK) return rc;
  int b = ch__bind_text(st, 1, r->model, SQLITE_OK);
  b = ch__bind_created(st, 2, r->started, b);
  if (r->ended != 0)
    b = ch__bind_int(st, 3, r->ended, b);
  else if (b == SQLITE_OK)
    b = sqlite3_bind_null(st, 3);
  b = ch__bind_text(st, 4, r->stop_reason, b);
  b = ch__bind_int(st, 5, r->iterations, b);
  b = ch__bind_int(st, 6, r->env_steps, b);
  b = ch__bind_double(st, 7, r->wall_seconds, b);
  b = ch__bind_text(st, 8, r->host, b);
  b = ch__bind_text(st, 9, r->command_line, b);
  int s;
  rc = ch__run(cat, st, b, &s, "start a training run", err);
  if (rc != CH_OK)
    return ch__insert_failed(cat, rc, s, r->model, "run started at", r->started, err);
  if (id) *id = sqlite3_last_insert_rowid(cat->db);
  return CH_OK;
}

int ch_catalog_finish_run(ch_catalog *cat, int64_t id, const char *stop_reason, int64_t iterations,
                          int64_t env_steps, double wall_seconds, int64_t ended, ch_error *err) {
  if (!cat) return ch_error_set(err, CH_EINVAL, "catalog finish_run: NULL argument");
  if (!isfinite(wall_seconds))
    return ch_error_set(err, CH_EINVAL, "catalog %s: run %lld: wall_seconds is not finite",
                        cat->path, (long long)id);
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "UPDATE training_runs SET ended = ?2, stop_reason = ?3, iterations = ?4, "
                       "env_steps = ?5, wall_seconds = ?6 WHERE id = ?1",
                       &st, err);
  if (rc != CH_OK) return rc;
  int b = ch__bind_int(st, 1, id, SQLITE_OK);
  b = ch__bind_created(st, 2, ended, b);
  b = ch__bind_text(st, 3, stop_reason, b);
  b = ch__bind_int(st, 4, iterations, b);
  b = ch__bind_int(st, 5, env_steps, b);
  b = ch__bind_double(st, 6, wall_seconds, b);
  rc = ch__run(cat, st, b, NULL, "finish a training run", err);
  if (rc == CH_OK && sqlite3_changes(cat->db) == 0)
    rc = ch_error_set(err, CH_ENOTFOUND, "no training run %lld in catalog %s", (long long)id,
                      cat->path);
  return rc;
}

static int ch__read_run(sqlite3_stmt *st, ch_run_info *r) {
  memset(r, 0, sizeof *r);
  char **const fields[] = {&r->model, &r->stop_reason, &r->host, &r->command_line};
  static const int cols[] = {1, 4, 8, 9};
  if (ch__dup_columns(st, fields, cols, 4) != CH_OK) {
    ch_run_info_free(r);
    return CH_ENOMEM;
  }
  r->id = sqlite3_column_int64(st, 0);
  r->started = sqlite3_column_int64(st, 2);
  r->ended = sqlite3_column_int64(st, 3);
  r->iterations = sqlite3_column_int64(st, 5);
  r->env_steps = sqlite3_column_int64(st, 6);
  r->wall_seconds = sqlite3_column_double(st, 7);
  return CH_OK;
}

typedef struct ch__run_list {
  int (*fn)(const ch_run_info *r, void *user);
  void *user;
} ch__run_list;

static int ch__list_run_row(sqlite3_stmt *st, void *ctx) {
  ch__run_list *l = ctx;
  ch_run_info r;
  if (ch__read_run(st, &r) != CH_OK) return CH_ENOMEM;
  int stop = l->fn(&r, l->user);
  ch_run_info_free(&r);
  return stop != 0 ? 1 : CH_OK;
}

int ch_catalog_list_runs(ch_catalog *cat, const char *model,
                         int (*fn)(const ch_run_info *r, void *user), void *user, ch_error *err) {
  if (!cat || !model || !fn)
    return ch_error_set(err, CH_EINVAL, "catalog list_runs: NULL argument");
  sqlite3_stmt *st;
  int rc = ch__prepare(cat,
                       "SELECT " CH__RUN_COLUMNS " FROM training_runs WHERE model = ?1 "
                       "ORDER BY started, id",
                       &st, err);
  if (rc != CH_OK) return rc;
  ch__run_list l = {fn, user};
  long rows = 0;
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, model, SQLITE_OK), ch__list_run_row, &l, &rows,
                    "list training runs", err);
  return ch__check_listed(cat, model, rc, rows, err);
}

void ch_run_info_free(ch_run_info *r) {
  if (!r) return;
  free(r->model);
  free(r->stop_reason);
  free(r->host);
  free(r->command_line);
  memset(r, 0, sizeof *r);
}

/* ---- summaries, transactions ----------------------------------------------------------- */

typedef struct ch__summary {
  double progress, lap;
  int64_t checkpoints;
} ch__summary;

static int ch__summary_row(sqlite3_stmt *st, void *ctx) {
  ch__summary *s = ctx;
  s->progress = sqlite3_column_double(st, 0);
  s->lap = sqlite3_column_double(st, 1);
  s->checkpoints = sqlite3_column_int64(st, 2);
  return 1;
}

int ch_catalog_model_summary(ch_catalog *cat, const char *model, double *best_progress,
                             double *best_lap_time, int64_t *checkpoints, ch_error *err) {
  if (!cat || !model) return ch_error_set(err, CH_EINVAL, "catalog model_summary: NULL argument");
  int exists = 0;
  int rc = ch__model_exists(cat, model, &exists, err);
  if (rc == CH_OK && !exists) rc = ch__no_model(cat, model, err);
  sqlite3_stmt *st;
  if (rc == CH_OK)
    rc = ch__prepare(cat,
                     "SELECT (SELECT max(mean_progress) FROM checkpoints WHERE model = ?1), "
                     "(SELECT min(best_lap_time) FROM evaluations WHERE model = ?1 "
                     "  AND completed_laps > 0), "
                     "(SELECT count(*) FROM checkpoints WHERE model = ?1)",
                     &st, err);
  if (rc != CH_OK) return rc;
  ch__summary s = {0, 0, 0};
  rc = ch__each_row(cat, st, ch__bind_text(st, 1, model, SQLITE_OK), ch__summary_row, &s, NULL,
                    "summarise a model", err);
  if (best_progress) *best_progress = s.progress;
  if (best_lap_time) *best_lap_time = s.lap;
  if (checkpoints) *checkpoints = s.checkpoints;
  return rc;
}

int ch_catalog_begin(ch_catalog *cat, ch_error *err) {
  return ch__exec(cat, "BEGIN IMMEDIATE", "begin a transaction", err);
}

int ch_catalog_commit(ch_catalog *cat, ch_error *err) {
  return ch__exec(cat, "COMMIT", "commit a transaction", err);
}

void ch_catalog_rollback(ch_catalog *cat) {
  sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
}

int ch_catalog_schema_version(void) {
  return CH__SCHEMA_VERSION;
}

const char *ch_catalog_path(const ch_catalog *cat) {
  return cat->path;
}
