/* test_catalog_schema.c -- catalog schema 2: migrations, per-trial results, runs, leaderboard. */
#include "catalog_test.h"

#include <math.h>
#include <sqlite3.h>

#include "catalog.h"

typedef struct fixture {
  char path[300];
  ch_catalog *cat;
} fixture;

#define CHECK(call)                                                                                \
  do {                                                                                             \
    ch_error err_ = {0, ""};                                                                       \
    int rc_ = (call);                                                                              \
    if (rc_ != CH_OK) fail_msg("%s -> %d: %s", #call, rc_, err_.message);                          \
  } while (0)

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  test_make_home("schema");
  snprintf(f->path, sizeof f->path, "%s/catalog.db", test_home);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ch_catalog_close(f->cat);
  test_rm_tree(test_home);
  free(f);
  return 0;
}

static ch_catalog *open_catalog(const char *path) {
  ch_catalog *cat = NULL;
  ch_error err = {0, ""};
  if (ch_catalog_open(path, &cat, &err) != CH_OK) fail_msg("open %s: %s", path, err.message);
  return cat;
}

/* Run SQL on the file through a separate connection. */
static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
  sqlite3_close(db);
}

/* One number from a query (NAN for NULL). */
static double query(const char *path, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  double v = sqlite3_column_type(st, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void put_model(ch_catalog *cat, const char *name, const char *track) {
  ch_model_info m;
  memset(&m, 0, sizeof m);
  m.name = (char *)name;
  m.track = (char *)track;
  m.status = "ready";
  m.created = 1700000000;
  CHECK(ch_catalog_put_model(cat, &m, &err_));
}

/* ---- migrations ------------------------------------------------------------------------ */

static void test_catalog_migrates_an_empty_file(void **state) {
  fixture *f = *state;
  f->cat = open_catalog(f->path);
  assert_int_equal(query(f->path, "PRAGMA user_version"), ch_catalog_schema_version());
  assert_true(ch_catalog_schema_version() >= 2);
  static const char *const tables[] = {"models", "checkpoints", "evaluations", "evaluation_trials",
                                       "training_runs"};
  char sql[200];
  for (int i = 0; i < 5; i++) {
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", tables[i]);
    if (query(f->path, sql) != 1) fail_msg("table %s missing", tables[i]);
  }
  /* Columns added by version 2 answer queries. */
  assert_true(isnan(query(f->path, "SELECT max(mean_progress) FROM checkpoints")));
  assert_true(isnan(query(f->path, "SELECT min(best_lap_time) FROM evaluations")));
  assert_string_equal(ch_catalog_path(f->cat), f->path);
  /* Opening again changes nothing. */
  ch_catalog_close(f->cat);
  f->cat = open_catalog(f->path);
  assert_int_equal(query(f->path, "PRAGMA user_version"), ch_catalog_schema_version());
}

/* The DDL of schema version 1, as chicane 0.1 created it. */
static const char v1_schema[] =
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
    "CREATE INDEX evaluations_by_model ON evaluations (model, iteration);"
    "PRAGMA user_version = 1;";

static const char v1_rows[] =
    "INSERT INTO models VALUES ('old', 'bayside', 'rewards/progress.lua', 'abc', '[]', '{}',"
    "  '{\"model\": \"old\"}', 'local:/x', 'ready', 1700000000);"
    "INSERT INTO checkpoints VALUES ('old', 0, 20, 4000, 1.5,"
    "  '{\"mean_reward\": 3.5, \"mean_progress\": 12.5, \"completion_rate\": 0.25}',"
    "  'models/old/checkpoints/000000.ckpt', 'aa', 1700000100);"
    "INSERT INTO checkpoints VALUES ('old', 1, 40, 8000, 3.0, 'not json', NULL, NULL, 1700000200);"
    "INSERT INTO checkpoints VALUES ('old', 2, 60, 12000, 4.5, NULL, NULL, NULL, 1700000300);"
    "INSERT INTO evaluations VALUES (1, 'old', 2, 'bayside', 2, 1,"
    "  '{\"model\":\"old\",\"track\":\"bayside\",\"penalty_seconds\":5,\"trials\":["
    "  {\"trial\":1,\"progress\":100,\"lap_time\":9.5,\"off_track\":1,\"completed\":true,"
    "\"steps\":110},"
    "  {\"trial\":2,\"progress\":63.25,\"lap_time\":null,\"off_track\":2,\"completed\":false,"
    "\"steps\":2700}],\"completed_laps\":1}', 1700000400);"
    "INSERT INTO evaluations VALUES (2, 'old', 2, 'oval', 3, 0, 'garbage', 1700000500);"
    "INSERT INTO evaluations VALUES (3, 'old', 1, NULL, 1, 0, NULL, 1700000600);";

typedef struct seen {
  ch_evaluation_info e[4];
  int n;
} seen;

static int keep_evaluation(const ch_evaluation_info *e, void *user) {
  seen *s = user;
  ch_evaluation_info *c = &s->e[s->n++];
  *c = *e;
  c->model = strdup(e->model);
  c->track = e->track ? strdup(e->track) : NULL;
  c->results_json = e->results_json ? strdup(e->results_json) : NULL;
  c->race_type = c->storage_key = c->simtrace_key = NULL;
  c->trial_info = NULL;
  if (e->num_trial_info) {
    c->trial_info = malloc(sizeof *c->trial_info * (size_t)e->num_trial_info);
    memcpy(c->trial_info, e->trial_info, sizeof *c->trial_info * (size_t)e->num_trial_info);
  }
  return 0;
}

static void test_catalog_migrates_version_1_keeping_rows(void **state) {
  fixture *f = *state;
  exec_sql(f->path, v1_schema);
  exec_sql(f->path, v1_rows);
  assert_int_equal(query(f->path, "PRAGMA user_version"), 1);
  f->cat = open_catalog(f->path);
  assert_int_equal(query(f->path, "PRAGMA user_version"), ch_catalog_schema_version());

  ch_model_info m;
  CHECK(ch_catalog_get_model(f->cat, "old", &m, &err_));
  assert_string_equal(m.track, "bayside");
  assert_string_equal(m.config_json, "{\"model\": \"old\"}");
  assert_int_equal(m.created, 1700000000);
  ch_model_info_free(&m);
  ch_checkpoint_info ck;
  CHECK(ch_catalog_latest_checkpoint(f->cat, "old", &ck, &err_));
  assert_int_equal(ck.iteration, 2);
  assert_int_equal(ck.env_steps, 12000);
  ch_checkpoint_info_free(&ck);
  /* The metrics now have columns of their own, bad JSON reads as NULL. */
  assert_true(query(f->path, "SELECT mean_progress FROM checkpoints WHERE iteration = 0") == 12.5);
  assert_true(query(f->path, "SELECT completion_rate FROM checkpoints WHERE iteration = 0") ==
              0.25);
  assert_true(isnan(query(f->path, "SELECT mean_progress FROM checkpoints WHERE iteration = 1")));

  seen s;
  memset(&s, 0, sizeof s);
  CHECK(ch_catalog_list_evaluations(f->cat, "old", keep_evaluation, &s, &err_));
  assert_int_equal(s.n, 3);
  /* By iteration, then id: 3 (iteration 1), 1, 2. */
  assert_int_equal(s.e[0].id, 3);
  const ch_evaluation_info *e = &s.e[1];
  assert_int_equal(e->id, 1);
  assert_int_equal(e->trials, 2);
  assert_int_equal(e->completed_laps, 1);
  assert_true(e->best_lap_time == 9.5);
  assert_int_equal(e->off_track, 3);
  assert_true(e->penalty_seconds == 5);
  assert_non_null(strstr(e->results_json, "\"lap_time\":9.5"));
  assert_int_equal(e->num_trial_info, 2);
  assert_int_equal(e->trial_info[0].trial, 1);
  assert_true(e->trial_info[0].completed && e->trial_info[0].lap_time == 9.5);
  assert_int_equal(e->trial_info[0].steps, 110);
  assert_false(e->trial_info[1].completed);
  assert_true(e->trial_info[1].progress == 63.25);
  assert_int_equal(e->trial_info[1].off_track, 2);
  assert_int_equal(s.e[2].num_trial_info, 0); /* 'garbage' had no trials to copy */
  assert_true(s.e[2].best_lap_time == 0);
  for (int i = 0; i < s.n; i++) {
    s.e[i].race_type = s.e[i].storage_key = s.e[i].simtrace_key = NULL;
    ch_evaluation_info_free(&s.e[i]);
  }
  double progress, lap;
  int64_t n;
  CHECK(ch_catalog_model_summary(f->cat, "old", &progress, &lap, &n, &err_));
  assert_true(progress == 12.5);
  assert_true(lap == 9.5);
  assert_int_equal(n, 3);
}

/* ---- evaluations with trials ----------------------------------------------------------- */

static ch_evaluation_info evaluation(const char *model, const char *track, double best,
                                     int64_t laps, int64_t created) {
  ch_evaluation_info e;
  memset(&e, 0, sizeof e);
  e.model = (char *)model;
  e.track = (char *)track;
  e.iteration = 5;
  e.trials = 3;
  e.completed_laps = laps;
  e.best_lap_time = best;
  e.reference_lap = 8.0;
  e.reference_ratio = best > 0 ? best / 8.0 : 0;
  e.created = created;
  e.race_type = "time_trial";
  return e;
}

static void test_catalog_evaluation_trials_round_trip(void **state) {
  fixture *f = *state;
  f->cat = open_catalog(f->path);
  put_model(f->cat, "m", "oval");
  ch_trial_info t[3] = {
      {1, 100, 10.25, 1, 0, 140, 1}, {2, 47.5, 0, 0, 2, 2700, 0}, {3, 100, 9.75, 0, 1, 131, 1}};
  ch_evaluation_info e = evaluation("m", "oval", 9.75, 2, 1700000000);
  e.results_json = "{\"x\": 1}";
  e.off_track = 1;
  e.crashes = 3;
  e.penalty_seconds = 5;
  e.crash_penalty_seconds = 2.5;
  e.storage_key = "models/m/evaluations/a.json";
  e.simtrace_key = "models/m/evaluation-simtrace/a.csv";
  e.race_type = "object_avoidance";
  e.trial_info = t;
  e.num_trial_info = 3;
  int64_t id = 0;
  CHECK(ch_catalog_add_evaluation_id(f->cat, &e, &id, &err_));
  assert_true(id > 0);
  seen s;
  memset(&s, 0, sizeof s);
  CHECK(ch_catalog_list_evaluations(f->cat, "m", keep_evaluation, &s, &err_));
  assert_int_equal(s.n, 1);
  ch_evaluation_info *g = &s.e[0];
  assert_int_equal(g->id, id);
  assert_int_equal(g->crashes, 3);
  assert_int_equal(g->off_track, 1);
  assert_true(g->best_lap_time == 9.75 && g->reference_lap == 8.0);
  assert_true(g->reference_ratio == 9.75 / 8.0);
  assert_true(g->penalty_seconds == 5 && g->crash_penalty_seconds == 2.5);
  assert_int_equal(g->num_trial_info, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g->trial_info[i].trial, t[i].trial);
    assert_true(g->trial_info[i].progress == t[i].progress);
    assert_int_equal(g->trial_info[i].completed, t[i].completed);
    assert_true(g->trial_info[i].lap_time == (t[i].completed ? t[i].lap_time : 0));
    assert_int_equal(g->trial_info[i].crashes, t[i].crashes);
    assert_int_equal(g->trial_info[i].steps, t[i].steps);
  }
  g->race_type = g->storage_key = g->simtrace_key = NULL;
  ch_evaluation_info_free(g);
  /* The strings the getters fill: read them through the catalog again. */
  assert_true(query(f->path, "SELECT count(*) FROM evaluations WHERE race_type = "
                             "'object_avoidance' AND simtrace_key LIKE '%a.csv'") == 1);

  /* A trial number twice: nothing of the evaluation is stored. */
  t[2].trial = 1;
  ch_error err = {0, ""};
  assert_int_equal(ch_catalog_add_evaluation_id(f->cat, &e, NULL, &err), CH_EINVAL);
  assert_non_null(strstr(err.message, "trial 1 appears twice"));
  assert_true(query(f->path, "SELECT count(*) FROM evaluations") == 1);
  assert_true(query(f->path, "SELECT count(*) FROM evaluation_trials") == 3);
  /* Bad numbers are refused with the field's name. */
  t[2].trial = 3;
  e.best_lap_time = NAN;
  assert_int_equal(ch_catalog_add_evaluation(f->cat, &e, &err), CH_EINVAL);
  assert_non_null(strstr(err.message, "best_lap_time"));
  /* Deleting the model takes the trials with it. */
  CHECK(ch_catalog_delete_model(f->cat, "m", &err_));
  assert_true(query(f->path, "SELECT count(*) FROM evaluation_trials") == 0);
}

/* ---- training runs --------------------------------------------------------------------- */

typedef struct runs {
  ch_run_info r[4];
  int n;
} runs;

static int keep_run(const ch_run_info *r, void *user) {
  runs *s = user;
  ch_run_info *c = &s->r[s->n++];
  *c = *r;
  c->model = strdup(r->model);
  c->stop_reason = r->stop_reason ? strdup(r->stop_reason) : NULL;
  c->host = r->host ? strdup(r->host) : NULL;
  c->command_line = r->command_line ? strdup(r->command_line) : NULL;
  return 0;
}

static void test_catalog_training_runs(void **state) {
  fixture *f = *state;
  f->cat = open_catalog(f->path);
  put_model(f->cat, "m", "oval");
  ch_run_info r = {0, "m", 1700000000, 0, NULL, 0, 0, 0.0, "box1", "chicane train x.lua"};
  int64_t first = 0, second = 0;
  CHECK(ch_catalog_start_run(f->cat, &r, &first, &err_));
  r.started = 1700000500;
  r.host = "box2";
  CHECK(ch_catalog_start_run(f->cat, &r, &second, &err_));
  assert_true(second > first);
  CHECK(
      ch_catalog_finish_run(f->cat, first, "iteration limit", 12, 34567, 81.5, 1700000090, &err_));
  runs s;
  memset(&s, 0, sizeof s);
  CHECK(ch_catalog_list_runs(f->cat, "m", keep_run, &s, &err_));
  assert_int_equal(s.n, 2);
  assert_int_equal(s.r[0].id, first);
  assert_int_equal(s.r[0].ended, 1700000090);
  assert_string_equal(s.r[0].stop_reason, "iteration limit");
  assert_int_equal(s.r[0].iterations, 12);
  assert_int_equal(s.r[0].env_steps, 34567);
  assert_true(s.r[0].wall_seconds == 81.5);
  assert_string_equal(s.r[0].command_line, "chicane train x.lua");
  assert_int_equal(s.r[1].ended, 0); /* still running */
  assert_null(s.r[1].stop_reason);
  assert_string_equal(s.r[1].host, "box2");
  for (int i = 0; i < s.n; i++) ch_run_info_free(&s.r[i]);

  ch_error err = {0, ""};
  assert_int_equal(ch_catalog_finish_run(f->cat, 999, "x", 0, 0, 0, 0, &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, "no training run 999"));
  r.model = "ghost";
  assert_int_equal(ch_catalog_start_run(f->cat, &r, NULL, &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, "no model 'ghost'"));
  memset(&s, 0, sizeof s);
  assert_int_equal(ch_catalog_list_runs(f->cat, "ghost", keep_run, &s, &err), CH_ENOTFOUND);
  CHECK(ch_catalog_delete_model(f->cat, "m", &err_));
  assert_true(query(f->path, "SELECT count(*) FROM training_runs") == 0);
}

/* ---- leaderboard ----------------------------------------------------------------------- */

typedef struct board {
  char model[8][16], track[8][16];
  double lap[8];
  int64_t rank[8], created[8];
  int n;
} board;

static int keep_entry(const ch_leaderboard_entry *e, void *user) {
  board *b = user;
  snprintf(b->model[b->n], sizeof b->model[0], "%s", e->model);
  snprintf(b->track[b->n], sizeof b->track[0], "%s", e->track ? e->track : "");
  b->lap[b->n] = e->best_lap_time;
  b->rank[b->n] = e->rank;
  b->created[b->n++] = e->created;
  return 0;
}

static void test_catalog_leaderboard_order(void **state) {
  fixture *f = *state;
  f->cat = open_catalog(f->path);
  const char *models[] = {"alpha", "bravo", "charlie", "delta", "echo"};
  for (int i = 0; i < 5; i++) put_model(f->cat, models[i], "oval");
  struct {
    const char *model, *track;
    double best;
    int64_t laps, created;
  } evals[] = {
      {"alpha", "oval", 11.0, 3, 100},   {"alpha", "oval", 9.5, 2, 200},   /* alpha's best: 9.5 */
      {"bravo", "oval", 10.0, 3, 150},   {"charlie", "oval", 9.5, 1, 300}, /* ties alpha, later */
      {"delta", "oval", 0, 0, 120},                                        /* no lap: not ranked */
      {"echo", "bayside", 20.0, 3, 130}, {"bravo", "bayside", 18.0, 1, 140},
  };
  for (size_t i = 0; i < sizeof evals / sizeof evals[0]; i++) {
    ch_evaluation_info e =
        evaluation(evals[i].model, evals[i].track, evals[i].best, evals[i].laps, evals[i].created);
    CHECK(ch_catalog_add_evaluation(f->cat, &e, &err_));
  }
  board b;
  memset(&b, 0, sizeof b);
  CHECK(ch_catalog_leaderboard(f->cat, NULL, keep_entry, &b, &err_));
  /* By track name, then lap time; one entry per model and track. */
  const char *want_model[] = {"bravo", "echo", "alpha", "charlie", "bravo"};
  const char *want_track[] = {"bayside", "bayside", "oval", "oval", "oval"};
  const double want_lap[] = {18.0, 20.0, 9.5, 9.5, 10.0};
  const int64_t want_rank[] = {1, 2, 1, 2, 3};
  assert_int_equal(b.n, 5);
  for (int i = 0; i < 5; i++) {
    if (strcmp(b.model[i], want_model[i]) || strcmp(b.track[i], want_track[i]))
      fail_msg("entry %d: got %s on %s, want %s on %s", i, b.model[i], b.track[i], want_model[i],
               want_track[i]);
    assert_true(b.lap[i] == want_lap[i]);
    assert_int_equal(b.rank[i], want_rank[i]);
  }
  assert_int_equal(b.created[2], 200); /* alpha's faster evaluation, not its first */
  memset(&b, 0, sizeof b);
  CHECK(ch_catalog_leaderboard(f->cat, "bayside", keep_entry, &b, &err_));
  assert_int_equal(b.n, 2);
  assert_string_equal(b.model[0], "bravo");
  memset(&b, 0, sizeof b);
  CHECK(ch_catalog_leaderboard(f->cat, "nowhere", keep_entry, &b, &err_));
  assert_int_equal(b.n, 0);
}

static void test_catalog_transactions(void **state) {
  fixture *f = *state;
  f->cat = open_catalog(f->path);
  CHECK(ch_catalog_begin(f->cat, &err_));
  put_model(f->cat, "temporary", "oval");
  ch_catalog_rollback(f->cat);
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(f->cat, "temporary", &m, NULL), CH_ENOTFOUND);
  CHECK(ch_catalog_begin(f->cat, &err_));
  put_model(f->cat, "kept", "oval");
  /* An evaluation's savepoint nests inside the caller's transaction. */
  ch_evaluation_info e = evaluation("kept", "oval", 9, 1, 0);
  CHECK(ch_catalog_add_evaluation(f->cat, &e, &err_));
  CHECK(ch_catalog_commit(f->cat, &err_));
  CHECK(ch_catalog_get_model(f->cat, "kept", &m, &err_));
  ch_model_info_free(&m);
  assert_true(query(f->path, "SELECT count(*) FROM evaluations") == 1);
}

/* ---- WAL and foreign keys --------------------------------------------------------------- */

/* The first column of a query's first row as text (into out). */
static void query_text(const char *path, const char *sql, char *out, size_t cap) {
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("%s: %s", sql, sqlite3_errmsg(db));
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const unsigned char *v = sqlite3_column_text(st, 0);
  snprintf(out, cap, "%s", v ? (const char *)v : "(null)");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* WAL is a property of the file (readers beside one writer, as the trainer and `chicane
** models` are); foreign keys are per connection, so the catalog's own must enforce them:
** no rows of a model that does not exist, and deleting a model takes all of its rows. */
static void test_catalog_wal_and_foreign_keys(void **state) {
  fixture *f = *state;
  f->cat = open_catalog(f->path);
  char mode[32];
  query_text(f->path, "PRAGMA journal_mode", mode, sizeof mode);
  assert_string_equal(mode, "wal");

  ch_checkpoint_info ghost = {"ghost", 0, 10, 100, 1.0, NULL, NULL, NULL, 1700000000};
  ch_error err = {0, ""};
  assert_int_not_equal(ch_catalog_add_checkpoint(f->cat, &ghost, &err), CH_OK);
  ch_evaluation_info ge = evaluation("ghost", "oval", 9, 1, 0);
  assert_int_not_equal(ch_catalog_add_evaluation(f->cat, &ge, &err), CH_OK);
  assert_true(query(f->path, "SELECT count(*) FROM checkpoints") == 0);
  assert_true(query(f->path, "SELECT count(*) FROM evaluations") == 0);

  put_model(f->cat, "m", "oval");
  ch_checkpoint_info ck = {"m", 0, 10, 100, 1.0, NULL, NULL, NULL, 1700000000};
  CHECK(ch_catalog_add_checkpoint(f->cat, &ck, &err_));
  ch_evaluation_info e = evaluation("m", "oval", 9, 1, 0);
  CHECK(ch_catalog_add_evaluation(f->cat, &e, &err_));
  ch_run_info r = {0, "m", 1700000000, 0, NULL, 0, 0, 0.0, "box", "chicane train x.lua"};
  int64_t run = 0;
  CHECK(ch_catalog_start_run(f->cat, &r, &run, &err_));
  assert_true(query(f->path, "SELECT count(*) FROM checkpoints") == 1);
  assert_true(query(f->path, "SELECT count(*) FROM evaluations") == 1);
  assert_true(query(f->path, "SELECT count(*) FROM training_runs") == 1);

  CHECK(ch_catalog_delete_model(f->cat, "m", &err_));
  assert_true(query(f->path, "SELECT count(*) FROM checkpoints") == 0);
  assert_true(query(f->path, "SELECT count(*) FROM evaluations") == 0);
  assert_true(query(f->path, "SELECT count(*) FROM evaluation_trials") == 0);
  assert_true(query(f->path, "SELECT count(*) FROM training_runs") == 0);
  /* A second connection sees the same: the rows are gone, not hidden. */
  ch_catalog_close(f->cat);
  f->cat = open_catalog(f->path);
  query_text(f->path, "PRAGMA journal_mode", mode, sizeof mode);
  assert_string_equal(mode, "wal");
  assert_int_not_equal(ch_catalog_add_checkpoint(f->cat, &ck, &err), CH_OK);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_catalog_migrates_an_empty_file),
      T(test_catalog_migrates_version_1_keeping_rows),
      T(test_catalog_evaluation_trials_round_trip),
      T(test_catalog_training_runs),
      T(test_catalog_leaderboard_order),
      T(test_catalog_transactions),
      T(test_catalog_wal_and_foreign_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
