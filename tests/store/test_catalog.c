/* test_catalog.c -- the SQLite catalog: round trips, order, cascades, keys, bad files. */

#define _XOPEN_SOURCE 700 /* nftw, to clean up the scratch directory */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"

typedef struct fixture {
  char dir[64];
  char path[128]; /* dir/catalog.db */
  ch_catalog *cat;
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static ch_catalog *open_catalog(const char *path) {
  ch_catalog *cat = NULL;
  ch_error err = {0};
  int rc = ch_catalog_open(path, &cat, &err);
  if (rc != CH_OK) fail_msg("open %s: %s", path, err.message);
  return cat;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  strcpy(f->dir, "/tmp/chicane-catalog-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->path, sizeof f->path, "%s/catalog.db", f->dir);
  f->cat = open_catalog(f->path);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ch_catalog_close(f->cat);
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

#define CHECK(call)                                                                                \
  do {                                                                                             \
    ch_error err_ = {0};                                                                           \
    int rc_ = (call);                                                                              \
    if (rc_ != CH_OK) fail_msg("%s -> %d: %s", #call, rc_, err_.message);                          \
  } while (0)

static ch_model_info full_model(const char *name) {
  ch_model_info m = {(char *)name,
                     "reinvent_base",
                     "rewards/follow_centre.lua",
                     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                     "[{\"steering_angle\": -30, \"speed\": 1.0, \"index\": 0}]",
                     "{\"batch_size\": 64, \"lr\": 0.0003}",
                     "{\"env\": {\"plugin\": \"sim2d\"}}",
                     "/var/lib/chicane/models/x",
                     "training",
                     1700000000};
  return m;
}

static ch_checkpoint_info checkpoint(const char *model, int64_t iteration) {
  ch_checkpoint_info c = {(char *)model,         iteration,       iteration * 20,
                          iteration * 4000,      iteration * 1.5, "{\"mean_reward\": 12.5}",
                          "models/x/000001.bin", "abc123",        1700000100 + iteration};
  return c;
}

/* An evaluation row with the fields of schema version 1; the later ones stay 0 (unknown). */
static ch_evaluation_info evaluation(const char *model, int64_t iteration, const char *track,
                                     int64_t trials, int64_t laps, const char *results,
                                     int64_t created) {
  ch_evaluation_info e;
  memset(&e, 0, sizeof e);
  e.model = (char *)model;
  e.iteration = iteration;
  e.track = (char *)track;
  e.trials = trials;
  e.completed_laps = laps;
  e.results_json = (char *)results;
  e.created = created;
  return e;
}

static void assert_str_or_null(const char *got, const char *want) {
  if (!want)
    assert_null(got);
  else
    assert_string_equal(got, want);
}

static void assert_model_equal(const ch_model_info *got, const ch_model_info *want) {
  assert_str_or_null(got->name, want->name);
  assert_str_or_null(got->track, want->track);
  assert_str_or_null(got->reward_script, want->reward_script);
  assert_str_or_null(got->reward_sha256, want->reward_sha256);
  assert_str_or_null(got->action_space_json, want->action_space_json);
  assert_str_or_null(got->hyperparameters_json, want->hyperparameters_json);
  assert_str_or_null(got->config_json, want->config_json);
  assert_str_or_null(got->storage, want->storage);
  assert_str_or_null(got->status, want->status);
  assert_int_equal(got->created, want->created);
}

static void assert_checkpoint_equal(const ch_checkpoint_info *got, const ch_checkpoint_info *want) {
  assert_string_equal(got->model, want->model);
  assert_int_equal(got->iteration, want->iteration);
  assert_int_equal(got->episodes, want->episodes);
  assert_int_equal(got->env_steps, want->env_steps);
  assert_true(got->wall_seconds == want->wall_seconds);
  assert_str_or_null(got->metrics_json, want->metrics_json);
  assert_str_or_null(got->storage_key, want->storage_key);
  assert_str_or_null(got->sha256, want->sha256);
  assert_int_equal(got->created, want->created);
}

static void expect_error(int rc, const ch_error *err, int code, const char *needle) {
  assert_int_equal(rc, code);
  assert_int_equal(err->code, code);
  if (!strstr(err->message, needle)) fail_msg("message '%s' lacks '%s'", err->message, needle);
}

/* One integer from a query on the file, through a separate connection. */
static long long query_int(const char *path, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void test_catalog_model_round_trip(void **state) {
  fixture *f = *state;
  ch_model_info m = full_model("follow-centre_v1.2");
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  ch_model_info got;
  CHECK(ch_catalog_get_model(f->cat, "follow-centre_v1.2", &got, &err_));
  assert_model_equal(&got, &m);
  ch_model_info_free(&got);
  assert_null(got.name); /* free leaves the struct empty */

  /* NULL strings stay NULL; created 0 means now. */
  ch_model_info sparse = {0};
  sparse.name = "sparse";
  int64_t before = (int64_t)time(NULL);
  CHECK(ch_catalog_put_model(f->cat, &sparse, &err_));
  CHECK(ch_catalog_get_model(f->cat, "sparse", &got, &err_));
  assert_string_equal(got.name, "sparse");
  assert_null(got.track);
  assert_null(got.config_json);
  assert_null(got.status);
  assert_in_range(got.created, before, (int64_t)time(NULL));
  ch_model_info_free(&got);

  ch_error err = {0};
  expect_error(ch_catalog_get_model(f->cat, "nope", &got, &err), &err, CH_ENOTFOUND,
               "no model 'nope' in catalog ");
  assert_non_null(strstr(err.message, f->path));
}

static void test_catalog_invalid_input(void **state) {
  fixture *f = *state;
  ch_error err = {0};
  const char *bad[] = {"", "has space", "slash/name", ".", "..", "caf\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ch_model_info m = full_model(bad[i]);
    expect_error(ch_catalog_put_model(f->cat, &m, &err), &err, CH_EINVAL, "invalid model name");
  }
  ch_model_info m = full_model("ok");
  m.status = "racing";
  expect_error(ch_catalog_put_model(f->cat, &m, &err), &err, CH_EINVAL, "'racing'");
  m.status = "ready";
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  expect_error(ch_catalog_set_status(f->cat, "ok", "done", &err), &err, CH_EINVAL, "'done'");
  ch_checkpoint_info c = checkpoint("ok", 1);
  c.wall_seconds = NAN;
  expect_error(ch_catalog_add_checkpoint(f->cat, &c, &err), &err, CH_EINVAL, "wall_seconds");
}

static void test_catalog_set_status(void **state) {
  fixture *f = *state;
  ch_model_info m = full_model("m");
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  const char *statuses[] = {"ready", "stopped", "failed", "training"};
  for (int i = 0; i < 4; i++) {
    CHECK(ch_catalog_set_status(f->cat, "m", statuses[i], &err_));
    ch_model_info got;
    CHECK(ch_catalog_get_model(f->cat, "m", &got, &err_));
    assert_string_equal(got.status, statuses[i]);
    assert_string_equal(got.track, m.track);
    ch_model_info_free(&got);
  }
  ch_error err = {0};
  expect_error(ch_catalog_set_status(f->cat, "ghost", "ready", &err), &err, CH_ENOTFOUND,
               "no model 'ghost'");
}

typedef struct collected {
  char names[16][32];
  int64_t numbers[16];
  int n;
  int stop_after;
} collected;

static int collect_model(const ch_model_info *m, void *user) {
  collected *c = user;
  snprintf(c->names[c->n], sizeof c->names[0], "%s", m->name);
  c->numbers[c->n++] = m->created;
  return c->stop_after && c->n >= c->stop_after;
}

static int collect_checkpoint(const ch_checkpoint_info *cp, void *user) {
  collected *c = user;
  snprintf(c->names[c->n], sizeof c->names[0], "%s", cp->model);
  c->numbers[c->n++] = cp->iteration;
  return c->stop_after && c->n >= c->stop_after;
}

static int collect_evaluation(const ch_evaluation_info *e, void *user) {
  collected *c = user;
  snprintf(c->names[c->n], sizeof c->names[0], "%s", e->results_json);
  c->numbers[c->n++] = e->iteration;
  return c->stop_after && c->n >= c->stop_after;
}

static void test_catalog_update_keeps_checkpoints(void **state) {
  fixture *f = *state;
  ch_model_info m = full_model("m");
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  for (int i = 1; i <= 3; i++) {
    ch_checkpoint_info c = checkpoint("m", i);
    CHECK(ch_catalog_add_checkpoint(f->cat, &c, &err_));
  }
  ch_evaluation_info e = evaluation("m", 3, "reinvent_base", 3, 2, "{\"laps\": 2}", 0);
  CHECK(ch_catalog_add_evaluation(f->cat, &e, &err_));
  ch_model_info changed = full_model("m");
  changed.track = "oval";
  changed.status = "ready";
  changed.config_json = NULL;
  changed.created = 0; /* keep the stored creation time */
  CHECK(ch_catalog_put_model(f->cat, &changed, &err_));
  ch_model_info got;
  CHECK(ch_catalog_get_model(f->cat, "m", &got, &err_));
  changed.created = m.created;
  assert_model_equal(&got, &changed);
  ch_model_info_free(&got);
  collected c = {0};
  CHECK(ch_catalog_list_checkpoints(f->cat, "m", collect_checkpoint, &c, &err_));
  assert_int_equal(c.n, 3);
  memset(&c, 0, sizeof c);
  CHECK(ch_catalog_list_evaluations(f->cat, "m", collect_evaluation, &c, &err_));
  assert_int_equal(c.n, 1);
  /* An explicit created replaces the stored one. */
  changed.created = 1234;
  CHECK(ch_catalog_put_model(f->cat, &changed, &err_));
  CHECK(ch_catalog_get_model(f->cat, "m", &got, &err_));
  assert_int_equal(got.created, 1234);
  ch_model_info_free(&got);
}

static void test_catalog_latest_checkpoint(void **state) {
  fixture *f = *state;
  ch_model_info m = full_model("m");
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  ch_checkpoint_info got;
  ch_error err = {0};
  expect_error(ch_catalog_latest_checkpoint(f->cat, "m", &got, &err), &err, CH_ENOTFOUND,
               "no checkpoint of model 'm'");
  expect_error(ch_catalog_latest_checkpoint(f->cat, "ghost", &got, &err), &err, CH_ENOTFOUND,
               "no model 'ghost'");
  const int64_t order[] = {5, 2, 9, 7};
  for (int i = 0; i < 4; i++) {
    ch_checkpoint_info c = checkpoint("m", order[i]);
    CHECK(ch_catalog_add_checkpoint(f->cat, &c, &err_));
  }
  CHECK(ch_catalog_latest_checkpoint(f->cat, "m", &got, &err_));
  ch_checkpoint_info want = checkpoint("m", 9);
  assert_checkpoint_equal(&got, &want);
  ch_checkpoint_info_free(&got);
  /* NULL strings and created 0 (now) survive too. */
  ch_checkpoint_info sparse = {"m", 10, 0, 0, 0.0, NULL, NULL, NULL, 0};
  CHECK(ch_catalog_add_checkpoint(f->cat, &sparse, &err_));
  CHECK(ch_catalog_latest_checkpoint(f->cat, "m", &got, &err_));
  assert_int_equal(got.iteration, 10);
  assert_null(got.metrics_json);
  assert_null(got.storage_key);
  assert_true(got.created > 1700000000);
  ch_checkpoint_info_free(&got);
  /* The same iteration twice is a mistake (two trainers on one model). */
  ch_checkpoint_info dup = checkpoint("m", 7);
  expect_error(ch_catalog_add_checkpoint(f->cat, &dup, &err), &err, CH_EINVAL,
               "checkpoint 7 of model 'm' is already in catalog");
}

static void test_catalog_list_order(void **state) {
  fixture *f = *state;
  const char *names[] = {"zeta", "beta", "Alpha", "alpha", "beta-2", "beta.1"};
  for (int i = 0; i < 6; i++) {
    ch_model_info m = full_model(names[i]);
    m.created = 100 + i;
    CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  }
  collected c = {0};
  CHECK(ch_catalog_list_models(f->cat, collect_model, &c, &err_));
  const char *sorted[] = {"Alpha", "alpha", "beta", "beta-2", "beta.1", "zeta"};
  assert_int_equal(c.n, 6);
  for (int i = 0; i < 6; i++) assert_string_equal(c.names[i], sorted[i]);
  assert_int_equal(c.numbers[0], 102); /* fields travel with their row */
  memset(&c, 0, sizeof c);
  c.stop_after = 2;
  CHECK(ch_catalog_list_models(f->cat, collect_model, &c, &err_));
  assert_int_equal(c.n, 2);

  const int64_t iterations[] = {30, 10, 20, 40};
  for (int i = 0; i < 4; i++) {
    ch_checkpoint_info cp = checkpoint("beta", iterations[i]);
    CHECK(ch_catalog_add_checkpoint(f->cat, &cp, &err_));
  }
  ch_checkpoint_info other = checkpoint("zeta", 15);
  CHECK(ch_catalog_add_checkpoint(f->cat, &other, &err_));
  memset(&c, 0, sizeof c);
  CHECK(ch_catalog_list_checkpoints(f->cat, "beta", collect_checkpoint, &c, &err_));
  assert_int_equal(c.n, 4);
  for (int i = 0; i < 4; i++) {
    assert_string_equal(c.names[i], "beta");
    assert_int_equal(c.numbers[i], 10 * (i + 1));
  }
  memset(&c, 0, sizeof c);
  c.stop_after = 1;
  CHECK(ch_catalog_list_checkpoints(f->cat, "beta", collect_checkpoint, &c, &err_));
  assert_int_equal(c.n, 1);
  memset(&c, 0, sizeof c);
  CHECK(ch_catalog_list_checkpoints(f->cat, "alpha", collect_checkpoint, &c, &err_));
  assert_int_equal(c.n, 0);
  ch_error err = {0};
  expect_error(ch_catalog_list_checkpoints(f->cat, "ghost", collect_checkpoint, &c, &err), &err,
               CH_ENOTFOUND, "no model 'ghost'");

  /* Evaluations: by iteration, then in the order added. */
  ch_evaluation_info evals[] = {evaluation("beta", 20, "oval", 3, 3, "second", 0),
                                evaluation("beta", 10, "oval", 3, 1, "first", 0),
                                evaluation("beta", 20, "reinvent_base", 3, 2, "third", 0)};
  for (int i = 0; i < 3; i++) CHECK(ch_catalog_add_evaluation(f->cat, &evals[i], &err_));
  memset(&c, 0, sizeof c);
  CHECK(ch_catalog_list_evaluations(f->cat, "beta", collect_evaluation, &c, &err_));
  assert_int_equal(c.n, 3);
  assert_string_equal(c.names[0], "first");
  assert_string_equal(c.names[1], "second");
  assert_string_equal(c.names[2], "third");
}

static int capture_evaluation(const ch_evaluation_info *e, void *user) {
  ch_evaluation_info *out = user;
  out->model = strdup(e->model);
  out->iteration = e->iteration;
  out->track = e->track ? strdup(e->track) : NULL;
  out->trials = e->trials;
  out->completed_laps = e->completed_laps;
  out->results_json = strdup(e->results_json);
  out->created = e->created;
  return 1;
}

static void test_catalog_evaluation_round_trip(void **state) {
  fixture *f = *state;
  ch_model_info m = full_model("m");
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  ch_evaluation_info e = evaluation("m", 12, NULL, 3, 2, "{\"lap_times\": [9.8, 9.6]}", 1700000500);
  CHECK(ch_catalog_add_evaluation(f->cat, &e, &err_));
  ch_evaluation_info got = {0};
  CHECK(ch_catalog_list_evaluations(f->cat, "m", capture_evaluation, &got, &err_));
  assert_string_equal(got.model, "m");
  assert_int_equal(got.iteration, 12);
  assert_null(got.track);
  assert_int_equal(got.trials, 3);
  assert_int_equal(got.completed_laps, 2);
  assert_string_equal(got.results_json, e.results_json);
  assert_int_equal(got.created, 1700000500);
  ch_evaluation_info_free(&got);
}

static void test_catalog_delete_cascades(void **state) {
  fixture *f = *state;
  const char *names[] = {"doomed", "kept"};
  for (int k = 0; k < 2; k++) {
    ch_model_info m = full_model(names[k]);
    CHECK(ch_catalog_put_model(f->cat, &m, &err_));
    for (int i = 1; i <= 3; i++) {
      ch_checkpoint_info c = checkpoint(names[k], i);
      CHECK(ch_catalog_add_checkpoint(f->cat, &c, &err_));
      ch_evaluation_info e = evaluation(names[k], i, "oval", 3, 3, "{}", 0);
      CHECK(ch_catalog_add_evaluation(f->cat, &e, &err_));
    }
  }
  CHECK(ch_catalog_delete_model(f->cat, "doomed", &err_));
  ch_error err = {0};
  ch_model_info got;
  expect_error(ch_catalog_get_model(f->cat, "doomed", &got, &err), &err, CH_ENOTFOUND,
               "no model 'doomed'");
  expect_error(ch_catalog_delete_model(f->cat, "doomed", &err), &err, CH_ENOTFOUND,
               "no model 'doomed'");
  assert_int_equal(query_int(f->path, "SELECT count(*) FROM checkpoints WHERE model = 'doomed'"),
                   0);
  assert_int_equal(query_int(f->path, "SELECT count(*) FROM evaluations WHERE model = 'doomed'"),
                   0);
  assert_int_equal(query_int(f->path, "SELECT count(*) FROM checkpoints"), 3);
  assert_int_equal(query_int(f->path, "SELECT count(*) FROM evaluations"), 3);
  /* A new model of the same name starts with no history. */
  ch_model_info again = full_model("doomed");
  CHECK(ch_catalog_put_model(f->cat, &again, &err_));
  ch_checkpoint_info c;
  expect_error(ch_catalog_latest_checkpoint(f->cat, "doomed", &c, &err), &err, CH_ENOTFOUND,
               "no checkpoint of model 'doomed'");
}

static void test_catalog_foreign_key(void **state) {
  fixture *f = *state;
  ch_error err = {0};
  ch_checkpoint_info c = checkpoint("unknown", 1);
  expect_error(ch_catalog_add_checkpoint(f->cat, &c, &err), &err, CH_ENOTFOUND,
               "no model 'unknown' in catalog");
  assert_non_null(strstr(err.message, f->path));
  ch_evaluation_info e = evaluation("unknown", 1, "oval", 3, 0, "{}", 0);
  expect_error(ch_catalog_add_evaluation(f->cat, &e, &err), &err, CH_ENOTFOUND,
               "no model 'unknown' in catalog");
  assert_int_equal(query_int(f->path, "SELECT count(*) FROM checkpoints"), 0);
  assert_int_equal(query_int(f->path, "SELECT count(*) FROM evaluations"), 0);
}

typedef struct nested {
  ch_catalog *cat;
  int checkpoints;
} nested;

static int count_nested(const ch_checkpoint_info *c, void *user) {
  (void)c;
  ((nested *)user)->checkpoints++;
  return 0;
}

/* A list callback may call back into the catalog. */
static int list_inside(const ch_model_info *m, void *user) {
  nested *n = user;
  ch_error err = {0};
  return ch_catalog_list_checkpoints(n->cat, m->name, count_nested, n, &err) != CH_OK;
}

static void test_catalog_reopen_persists(void **state) {
  fixture *f = *state;
  ch_model_info m = full_model("persist");
  CHECK(ch_catalog_put_model(f->cat, &m, &err_));
  ch_checkpoint_info c = checkpoint("persist", 4);
  CHECK(ch_catalog_add_checkpoint(f->cat, &c, &err_));
  ch_catalog_close(f->cat);
  f->cat = open_catalog(f->path);
  ch_model_info got;
  CHECK(ch_catalog_get_model(f->cat, "persist", &got, &err_));
  assert_model_equal(&got, &m);
  ch_model_info_free(&got);
  ch_checkpoint_info gc;
  CHECK(ch_catalog_latest_checkpoint(f->cat, "persist", &gc, &err_));
  assert_checkpoint_equal(&gc, &c);
  ch_checkpoint_info_free(&gc);
  nested n = {f->cat, 0};
  CHECK(ch_catalog_list_models(f->cat, list_inside, &n, &err_));
  assert_int_equal(n.checkpoints, 1);
  /* Two handles on one file (WAL) see each other's writes. */
  ch_catalog *second = open_catalog(f->path);
  ch_model_info m2 = full_model("second");
  CHECK(ch_catalog_put_model(second, &m2, &err_));
  CHECK(ch_catalog_get_model(f->cat, "second", &got, &err_));
  ch_model_info_free(&got);
  ch_catalog_close(second);
  assert_int_equal(query_int(f->path, "PRAGMA user_version"), ch_catalog_schema_version());
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void test_catalog_garbage_file(void **state) {
  fixture *f = *state;
  char path[200];
  snprintf(path, sizeof path, "%s/garbage.db", f->dir);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  for (int i = 0; i < 200; i++) fputs("this is not a SQLite database, just text.\n", fp);
  fclose(fp);
  struct stat before, after;
  assert_int_equal(stat(path, &before), 0);
  ch_catalog *cat = (ch_catalog *)&cat;
  ch_error err = {0};
  expect_error(ch_catalog_open(path, &cat, &err), &err, CH_ECORRUPT, path);
  assert_null(cat);
  assert_non_null(strstr(err.message, "not a database"));
  assert_int_equal(stat(path, &after), 0);
  assert_int_equal(after.st_size, before.st_size); /* left as it was */
}

static void test_catalog_future_version(void **state) {
  fixture *f = *state;
  char path[200];
  snprintf(path, sizeof path, "%s/future.db", f->dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db, "CREATE TABLE t (x); PRAGMA user_version = 99", NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  ch_catalog *cat = (ch_catalog *)&cat;
  ch_error err = {0};
  expect_error(ch_catalog_open(path, &cat, &err), &err, CH_EINVAL, path);
  assert_null(cat);
  assert_non_null(strstr(err.message, "schema version 99"));
  assert_int_equal(query_int(path, "PRAGMA user_version"), 99); /* untouched */
}

static void test_catalog_unopenable_path(void **state) {
  fixture *f = *state;
  char path[200];
  snprintf(path, sizeof path, "%s/no/such/dir/catalog.db", f->dir);
  ch_catalog *cat = (ch_catalog *)&cat;
  ch_error err = {0};
  expect_error(ch_catalog_open(path, &cat, &err), &err, CH_EIO, path);
  assert_null(cat);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_catalog_model_round_trip),
      T(test_catalog_invalid_input),
      T(test_catalog_set_status),
      T(test_catalog_update_keeps_checkpoints),
      T(test_catalog_latest_checkpoint),
      T(test_catalog_list_order),
      T(test_catalog_evaluation_round_trip),
      T(test_catalog_delete_cascades),
      T(test_catalog_foreign_key),
      T(test_catalog_reopen_persists),
      T(test_catalog_garbage_file),
      T(test_catalog_future_version),
      T(test_catalog_unopenable_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
