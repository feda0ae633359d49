/* test_catalog_models.c -- whole models on a real short training run: records, I/O, rebuild. */
#include "catalog_test.h"

#include <cjson/cJSON.h>
#include <math.h>

#include "evaluate.h"
#include "model.h"
#include "model_io.h"
#include "paths.h"
#include "policy.h"

static ch_session session;
static int evaluated; /* "base" has one stored evaluation */

#define CHECK(call)                                                                                \
  do {                                                                                             \
    ch_error err_ = {0, ""};                                                                       \
    int rc_ = (call);                                                                              \
    if (rc_ != CH_OK) fail_msg("%s -> %d: %s", #call, rc_, err_.message);                          \
  } while (0)

static int group_setup(void **state) {
  (void)state;
  test_make_home("models");
  test_train("base", 40);
  char storage[512], catalog[512];
  snprintf(storage, sizeof storage, "%s/storage", test_home);
  snprintf(catalog, sizeof catalog, "%s/catalog.db", test_home);
  ch_error err = {0, ""};
  if (ch_session_open("local", storage, catalog, &session, &err) != CH_OK)
    fail_msg("session: %s", err.message);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ch_session_close(&session);
  test_rm_tree(test_home);
  return 0;
}

/* A stored object, NUL-terminated (free it); NULL when absent. */
static char *get_object(const char *key, size_t *len) {
  void *data;
  size_t n;
  if (session.st->get(session.st_h, key, &data, &n, NULL) != CH_OK) return NULL;
  char *copy = malloc(n + 1);
  memcpy(copy, data, n);
  copy[n] = '\0';
  session.st->free_data(session.st_h, data);
  if (len) *len = n;
  return copy;
}

static ch_eval_stored evaluate_base(ch_eval_result *r) {
  ch_eval_options o;
  ch_eval_defaults(&o);
  o.trials = 2;
  o.max_seconds = 60;
  ch_eval_stored st;
  CHECK(ch_evaluate_store(&session, "base", NULL, &o, r, &st, &err_));
  evaluated = 1;
  return st;
}

static void ensure_evaluated(void) {
  static ch_eval_result r;
  if (!evaluated) evaluate_base(&r);
}

/* ---- evaluation records ---------------------------------------------------------------- */

static void check_episode(const ch_simtrace_row *rows, size_t n, const ch_eval_trial *t,
                          const ch_eval_options *o) {
  assert_int_equal(rows[0].status, CH_SIMTRACE_PREPARE);
  assert_int_equal(rows[0].steps, 0);
  assert_true(rows[0].progress == 0);
  double paused = 0;
  for (size_t i = 1; i < n; i++) {
    if (rows[i].steps != rows[i - 1].steps + 1)
      fail_msg("row %zu: steps %d after %d", i, rows[i].steps, rows[i - 1].steps);
    assert_true(rows[i].progress >= 0 && rows[i].progress <= 100);
    assert_true(rows[i].tstamp > rows[i - 1].tstamp);
    assert_true(rows[i].track_len > 10);
    assert_int_equal(rows[i].done, i == n - 1);
    paused += rows[i].pause_duration;
  }
  const ch_simtrace_row *last = &rows[n - 1];
  assert_int_equal(last->status, t->completed ? CH_EPISODE_LAP_COMPLETE : CH_EPISODE_TIME_UP);
  assert_int_equal(last->steps, t->steps);
  assert_true(fabs(last->progress - t->progress) < 1e-3);
  assert_true(fabs(paused - (t->off_track * o->penalty_seconds +
                             t->crashes * o->crash_penalty_seconds)) < 1e-9);
}

static void test_evaluation_is_stored_with_its_simtrace(void **state) {
  (void)state;
  ch_eval_result r;
  ch_eval_stored st = evaluate_base(&r);
  ch_eval_options o;
  ch_eval_defaults(&o);
  assert_int_equal(r.trials, 2);
  assert_string_equal(st.track, "bayside");
  assert_string_equal(st.race_type, "time_trial");
  assert_non_null(strstr(st.key, "models/base/evaluations/"));
  assert_true(r.reference_lap > 1 && r.reference_lap < 60);
  for (int i = 0; i < r.trials; i++)
    if (r.trial[i].completed)
      assert_true(fabs(r.trial[i].ratio - r.trial[i].lap_time / r.reference_lap) < 1e-12);

  /* The stored results object is the catalog's results_json, and names the sim-trace. */
  char *results = get_object(st.key, NULL);
  assert_non_null(results);
  cJSON *j = cJSON_Parse(results);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "simtrace_key")),
                      st.simtrace_key);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "trials")), 2);
  cJSON_Delete(j);

  size_t len, n;
  char *csv = get_object(st.simtrace_key, &len);
  assert_non_null(csv);
  assert_memory_equal(csv, CH_SIMTRACE_HEADER "\n", strlen(CH_SIMTRACE_HEADER) + 1);
  ch_simtrace_row *rows;
  ch_error err = {0, ""};
  if (ch_simtrace_parse(csv, len, &rows, &n, &err) != CH_OK) fail_msg("%s", err.message);
  size_t start = 0;
  for (int trial = 0; trial < 2; trial++) {
    size_t end = start;
    while (end < n && rows[end].episode == trial) end++;
    assert_int_equal(end - start, (size_t)r.trial[trial].steps + 1);
    check_episode(rows + start, end - start, &r.trial[trial], &o);
    start = end;
  }
  assert_int_equal(start, n);
  free(rows);
  free(csv);
  free(results);
  /* The model's own rows went to storage too. */
  char *record = get_object("models/base/model.json", NULL);
  assert_non_null(strstr(record, "\"status\":\t\"ready\""));
  free(record);
  char *ck = get_object("models/base/checkpoints/000000.json", NULL);
  assert_non_null(strstr(ck, "mean_progress"));
  free(ck);
}

/* ---- export and import ----------------------------------------------------------------- */

typedef struct rows {
  ch_checkpoint_info c[256];
  int n;
} rows;

static int keep_checkpoint(const ch_checkpoint_info *c, void *user) {
  rows *r = user;
  ch_checkpoint_info *k = &r->c[r->n++];
  *k = *c;
  k->model = strdup(c->model);
  k->metrics_json = c->metrics_json ? strdup(c->metrics_json) : NULL;
  k->storage_key = c->storage_key ? strdup(c->storage_key) : NULL;
  k->sha256 = c->sha256 ? strdup(c->sha256) : NULL;
  return 0;
}

static void rows_free(rows *r) {
  for (int i = 0; i < r->n; i++) ch_checkpoint_info_free(&r->c[i]);
  r->n = 0;
}

/* The same numbers under the same keys (the texts may spell them differently). */
static void assert_same_metrics(const char *a, const char *b) {
  cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
  assert_non_null(ja);
  assert_non_null(jb);
  assert_int_equal(cJSON_GetArraySize(ja), cJSON_GetArraySize(jb));
  const cJSON *v;
  cJSON_ArrayForEach(v, ja) {
    const cJSON *w = cJSON_GetObjectItem(jb, v->string);
    if (!cJSON_IsNumber(w) || w->valuedouble != v->valuedouble)
      fail_msg("metric %s: %.17g, then %.17g", v->string, v->valuedouble, cJSON_GetNumberValue(w));
  }
  cJSON_Delete(ja);
  cJSON_Delete(jb);
}

static void test_export_import_round_trip(void **state) {
  (void)state;
  ensure_evaluated();
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/exported/base", test_home);
  CHECK(ch_model_export(&session, "base", dir, &err_));
  const char *files[] = {
      "model_metadata.json", "hyperparameters.json", "reward_function.lua", "training_config.json",
      "model.ckpt",          "checkpoint.json",      "metrics.json",        "model.json"};
  for (int i = 0; i < 8; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (access(path, R_OK) != 0) fail_msg("export lacks %s", path);
  }
  ch_error err = {0, ""};
  assert_int_equal(ch_model_export(&session, "base", dir, &err), CH_ESTATE); /* not empty */

  char name[64];
  CHECK(ch_model_import(&session, dir, "copy", name, sizeof name, &err_));
  assert_string_equal(name, "copy");
  ch_loaded_model a, b;
  CHECK(ch_model_load(&session, "base", &a, &err_));
  CHECK(ch_model_load(&session, "copy", &b, &err_));
  assert_int_equal(a.iteration, b.iteration);
  assert_int_equal(a.blob_len, b.blob_len);
  assert_memory_equal(a.blob, b.blob, a.blob_len); /* bit for bit */
  assert_string_equal(b.info.status, "ready");
  assert_string_equal(b.info.reward_sha256, a.info.reward_sha256);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(b.config, "model")), "copy");
  ch_loaded_model_free(&session, &a);
  ch_loaded_model_free(&session, &b);
  /* Every iteration's counters and metrics came along (weights only for the last). */
  static rows ra, rb;
  CHECK(ch_catalog_list_checkpoints(session.cat, "base", keep_checkpoint, &ra, &err_));
  CHECK(ch_catalog_list_checkpoints(session.cat, "copy", keep_checkpoint, &rb, &err_));
  assert_int_equal(ra.n, rb.n);
  for (int i = 0; i < ra.n; i++) {
    const ch_checkpoint_info *a = &ra.c[i], *b = &rb.c[i];
    assert_int_equal(a->iteration, b->iteration);
    assert_int_equal(a->episodes, b->episodes);
    assert_int_equal(a->env_steps, b->env_steps);
    assert_true(a->wall_seconds == b->wall_seconds);
    assert_int_equal(a->created, b->created);
    assert_same_metrics(a->metrics_json, b->metrics_json);
    /* Weights come along for the latest checkpoint only. */
    if (i == ra.n - 1)
      assert_string_equal(a->sha256, b->sha256);
    else
      assert_null(b->storage_key);
  }
  rows_free(&ra);
  rows_free(&rb);
  double lap_a, lap_b;
  CHECK(ch_catalog_model_summary(session.cat, "base", NULL, &lap_a, NULL, &err_));
  CHECK(ch_catalog_model_summary(session.cat, "copy", NULL, &lap_b, NULL, &err_));
  assert_true(lap_a == lap_b); /* its evaluations too */
}

static void corrupt_copy(const char *from, const char *to) {
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
  assert_int_equal(system(cmd), 0);
}

static void test_import_refuses_bad_folders(void **state) {
  (void)state;
  char good[512], bad[512], path[700];
  snprintf(good, sizeof good, "%s/exported/good", test_home);
  CHECK(ch_model_export(&session, "base", good, &err_));
  ch_error err = {0, ""};
  /* One flipped bit in the weights. */
  snprintf(bad, sizeof bad, "%s/exported/flipped", test_home);
  corrupt_copy(good, bad);
  snprintf(path, sizeof path, "%s/model.ckpt", bad);
  FILE *f = fopen(path, "r+b");
  fseek(f, 100, SEEK_SET);
  int c = fgetc(f);
  fseek(f, 100, SEEK_SET);
  fputc(c ^ 1, f);
  fclose(f);
  assert_int_equal(ch_model_import(&session, bad, "flipped", NULL, 0, &err), CH_ECORRUPT);
  assert_non_null(strstr(err.message, "model.ckpt is corrupt"));
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(session.cat, "flipped", &m, NULL), CH_ENOTFOUND);
  assert_null(get_object("models/flipped/training_config.json", NULL));
  /* A file missing. */
  snprintf(bad, sizeof bad, "%s/exported/missing", test_home);
  corrupt_copy(good, bad);
  snprintf(path, sizeof path, "%s/reward_function.lua", bad);
  unlink(path);
  assert_int_equal(ch_model_import(&session, bad, "missing", NULL, 0, &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, path));
  /* A name in use, a bad name. */
  assert_int_equal(ch_model_import(&session, good, "base", NULL, 0, &err), CH_ESTATE);
  assert_non_null(strstr(err.message, "'base' already exists"));
  assert_int_equal(ch_model_import(&session, good, "no/slash", NULL, 0, &err), CH_EINVAL);
  assert_non_null(strstr(err.message, "invalid model name"));
}

/* ---- rebuild --------------------------------------------------------------------------- */

typedef struct snapshot {
  char *text;
  size_t len, cap;
} snapshot;

static void add(snapshot *s, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (s->len + (size_t)n + 1 > s->cap) {
    s->cap = 2 * (s->len + (size_t)n + 1);
    s->text = realloc(s->text, s->cap);
  }
  memcpy(s->text + s->len, buf, (size_t)n + 1);
  s->len += (size_t)n;
}

#define S(x) ((x) ? (x) : "NULL")

static int snap_checkpoint(const ch_checkpoint_info *c, void *user) {
  add(user, "  checkpoint %lld %lld %lld %.17g %s %s %s %lld\n", (long long)c->iteration,
      (long long)c->episodes, (long long)c->env_steps, c->wall_seconds, S(c->metrics_json),
      S(c->storage_key), S(c->sha256), (long long)c->created);
  return 0;
}

static int snap_evaluation(const ch_evaluation_info *e, void *user) {
  add(user,
      "  evaluation %lld %s %lld %lld %s %lld %s %lld %lld %.17g %.17g %.17g %.17g %.17g %s %s\n",
      (long long)e->iteration, S(e->track), (long long)e->trials, (long long)e->completed_laps,
      S(e->results_json), (long long)e->created, S(e->race_type), (long long)e->off_track,
      (long long)e->crashes, e->best_lap_time, e->reference_lap, e->reference_ratio,
      e->penalty_seconds, e->crash_penalty_seconds, S(e->storage_key), S(e->simtrace_key));
  for (int64_t i = 0; i < e->num_trial_info; i++) {
    const ch_trial_info *t = &e->trial_info[i];
    add(user, "    trial %lld %.17g %.17g %lld %lld %lld %d\n", (long long)t->trial, t->progress,
        t->lap_time, (long long)t->off_track, (long long)t->crashes, (long long)t->steps,
        t->completed);
  }
  return 0;
}

static int snap_run(const ch_run_info *r, void *user) {
  add(user, "  run %lld %lld %s %lld %lld %.17g %s %s\n", (long long)r->started,
      (long long)r->ended, S(r->stop_reason), (long long)r->iterations, (long long)r->env_steps,
      r->wall_seconds, S(r->host), S(r->command_line));
  return 0;
}

static int snap_model(const ch_model_info *m, void *user) {
  add(user, "model %s %s %s %s %s %s %s %s %s %lld\n", m->name, S(m->track), S(m->reward_script),
      S(m->reward_sha256), S(m->action_space_json), S(m->hyperparameters_json), S(m->config_json),
      S(m->storage), S(m->status), (long long)m->created);
  CHECK(ch_catalog_list_checkpoints(session.cat, m->name, snap_checkpoint, user, &err_));
  CHECK(ch_catalog_list_evaluations(session.cat, m->name, snap_evaluation, user, &err_));
  CHECK(ch_catalog_list_runs(session.cat, m->name, snap_run, user, &err_));
  return 0;
}

static char *take_snapshot(void) {
  snapshot s = {NULL, 0, 0};
  add(&s, "catalog\n");
  CHECK(ch_catalog_list_models(session.cat, snap_model, &s, &err_));
  return s.text;
}

/* Name the first line that differs (whole snapshots are too long for a failure message). */
static void fail_diff(const char *what, const char *a, const char *b) {
  size_t i = 0, line = 0;
  while (a[i] && a[i] == b[i]) line = a[i++] == '\n' ? i : line;
  fail_msg("%s differs at:\n  before: %.600s\n  %s: %.600s", what, a + line, what, b + line);
}

static int sync_model(const ch_model_info *m, void *user) {
  (void)user;
  CHECK(ch_model_sync_records(&session, m->name, &err_));
  return 0;
}

/* Lines of a snapshot that start with prefix. */
static int count_lines(const char *text, const char *prefix) {
  int n = 0;
  size_t k = strlen(prefix);
  for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
    n += strncmp(l, prefix, k) == 0;
  return n;
}

static void test_rebuild_recreates_the_catalog(void **state) {
  (void)state;
  ensure_evaluated();
  ch_model_run run;
  CHECK(ch_model_run_begin(&session, "base", "chicane train base.lua --quiet", &run, &err_));
  CHECK(ch_model_run_end(&session, &run, "iteration limit", 7, 12345, &err_));
  /* Records the trainer may not store itself (see model_io.h). */
  CHECK(ch_catalog_list_models(session.cat, sync_model, NULL, &err_));
  char *before = take_snapshot();
  assert_non_null(strstr(before, "  evaluation "));
  assert_non_null(strstr(before, "    trial 1 "));
  assert_non_null(strstr(before, "  run "));
  ch_rebuild_stats st;
  CHECK(ch_models_rebuild(&session, &st, &err_));
  char *after = take_snapshot();
  if (strcmp(before, after) != 0) fail_diff("after", before, after);
  assert_true(st.models >= 1);
  assert_true(st.evaluations >= 1);
  /* Every run in the catalog came back: this test's, and any the trainer recorded itself. */
  assert_int_equal(st.runs, count_lines(before, "  run "));
  /* From scratch: a new, empty catalog file on the same storage gets the same rows. */
  char storage[512], catalog[512];
  snprintf(storage, sizeof storage, "%s/storage", test_home);
  snprintf(catalog, sizeof catalog, "%s/fresh.db", test_home);
  ch_session keep = session;
  CHECK(ch_session_open("local", storage, catalog, &session, &err_));
  CHECK(ch_models_rebuild(&session, NULL, &err_));
  char *fresh = take_snapshot();
  ch_session_close(&session);
  session = keep;
  /* Identical but for the catalog-assigned ids (not in the snapshot). */
  if (strcmp(before, fresh) != 0) fail_diff("fresh", before, fresh);
  free(before);
  free(after);
  free(fresh);
}

static void test_rebuild_without_records(void **state) {
  (void)state;
  CHECK(ch_model_clone(&session, "base", "bare", &err_));
  ch_checkpoint_info ck;
  CHECK(ch_catalog_latest_checkpoint(session.cat, "bare", &ck, &err_));
  /* A model as a trainer that writes no records leaves it: blobs and metadata only. */
  char key[256];
  snprintf(key, sizeof key, "models/bare/checkpoints/%06lld.json", (long long)ck.iteration);
  CHECK(session.st->remove(session.st_h, key, &err_));
  CHECK(session.st->remove(session.st_h, "models/bare/model.json", &err_));
  CHECK(ch_models_rebuild(&session, NULL, &err_));
  ch_model_info m;
  CHECK(ch_catalog_get_model(session.cat, "bare", &m, &err_));
  assert_string_equal(m.status, "ready");
  assert_string_equal(m.track, "bayside");
  assert_true(m.created > 1700000000);
  ch_model_info_free(&m);
  ch_checkpoint_info got;
  CHECK(ch_catalog_latest_checkpoint(session.cat, "bare", &got, &err_));
  assert_int_equal(got.iteration, ck.iteration);
  assert_string_equal(got.sha256, ck.sha256);
  assert_string_equal(got.storage_key, ck.storage_key);
  assert_null(got.metrics_json);
  ch_checkpoint_info_free(&got);
  ch_checkpoint_info_free(&ck);
  ch_loaded_model lm;
  CHECK(ch_model_load(&session, "bare", &lm, &err_)); /* and it still loads */
  ch_loaded_model_free(&session, &lm);
  CHECK(ch_model_delete(&session, "bare", &err_));
}

/* ---- clone and delete ------------------------------------------------------------------ */

static int count_key(const char *key, uint64_t size, void *user) {
  (void)key;
  (void)size;
  (*(int *)user)++;
  return 0;
}

static int objects_of(const char *model) {
  char prefix[256];
  snprintf(prefix, sizeof prefix, "models/%s/", model);
  int n = 0;
  CHECK(session.st->list(session.st_h, prefix, count_key, &n, &err_));
  return n;
}

static void test_clone_then_delete(void **state) {
  (void)state;
  CHECK(ch_model_clone(&session, "base", "twin", &err_));
  ch_loaded_model a, b;
  CHECK(ch_model_load(&session, "base", &a, &err_));
  CHECK(ch_model_load(&session, "twin", &b, &err_));
  assert_int_equal(a.iteration, b.iteration);
  assert_int_equal(a.blob_len, b.blob_len);
  assert_memory_equal(a.blob, b.blob, a.blob_len);
  assert_string_equal(b.info.status, "ready");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(b.config, "model")), "twin");
  ch_loaded_model_free(&session, &a);
  ch_loaded_model_free(&session, &b);
  ch_checkpoint_info ck;
  CHECK(ch_catalog_latest_checkpoint(session.cat, "twin", &ck, &err_));
  assert_non_null(strstr(ck.storage_key, "models/twin/checkpoints/"));
  ch_checkpoint_info_free(&ck);
  /* The clone evaluates like any model. */
  ch_eval_options o;
  ch_eval_defaults(&o);
  o.trials = 1;
  o.max_seconds = 30;
  ch_eval_result r;
  char track[64];
  CHECK(ch_evaluate_model(&session, "twin", NULL, &o, &r, track, sizeof track, &err_));

  ch_error err = {0, ""};
  assert_int_equal(ch_model_clone(&session, "base", "twin", &err), CH_ESTATE);
  assert_int_equal(ch_model_clone(&session, "ghost", "other", &err), CH_ENOTFOUND);
  assert_int_equal(objects_of("other"), 0); /* nothing left behind */

  assert_true(objects_of("twin") > 5);
  CHECK(ch_model_delete(&session, "twin", &err_));
  assert_int_equal(objects_of("twin"), 0);
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(session.cat, "twin", &m, NULL), CH_ENOTFOUND);
  assert_int_equal(ch_model_delete(&session, "twin", &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, "no model 'twin'"));
  CHECK(ch_catalog_get_model(session.cat, "base", &m, &err_)); /* untouched */
  ch_model_info_free(&m);
}

static void test_runs_are_recorded(void **state) {
  (void)state;
  ch_model_run run;
  CHECK(ch_model_run_begin(&session, "base", "chicane train 'a b.lua'", &run, &err_));
  char *text = get_object(run.key, NULL);
  assert_non_null(text);
  cJSON *j = cJSON_Parse(text);
  assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ended")) == 0);
  cJSON_Delete(j);
  free(text);
  CHECK(ch_model_run_end(&session, &run, "time limit", 3, 999, &err_));
  text = get_object(run.key, NULL);
  j = cJSON_Parse(text);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "stop_reason")), "time limit");
  assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "env_steps")) == 999);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "command_line")),
                      "chicane train 'a b.lua'");
  cJSON_Delete(j);
  free(text);
  char *argv[] = {"chicane", "train", "my script.lua", "--name", "it's"};
  char *line = ch_model_command_line(5, argv);
  assert_string_equal(line, "chicane train 'my script.lua' --name 'it'\\''s'");
  free(line);
}

/* A continuous policy with all-zero weights has mean 0: the middle of both ranges, always. */
static void test_continuous_policy_acts_with_its_mean(void **state) {
  (void)state;
  ch_plugin *envp, *netp;
  CHECK(ch_plugin_find(CH_PLUGIN_ENV, "sim2d", &envp, &err_));
  CHECK(ch_plugin_find(CH_PLUGIN_NETWORK, "mlp", &netp, &err_));
  char track[4096];
  CHECK(ch_resolve_track("bayside", track, sizeof track, &err_));
  ch_eval_options o;
  ch_eval_defaults(&o);
  o.trials = 1;
  o.max_seconds = 4;
  char *env_json = ch_eval_env_config(track, &o);
  ch_env env;
  ch_net net;
  CHECK(ch_env_create(envp, env_json, &env, &err_));
  free(env_json);
  char net_json[256];
  snprintf(net_json, sizeof net_json,
           "{\"input_size\": %u, \"num_actions\": 2, \"head\": \"gaussian\", "
           "\"hidden\": [8]}",
           env.spec.obs_size);
  CHECK(ch_net_create(netp, net_json, &net, &err_));
  float *zero = calloc(net.spec.param_count, sizeof(float));
  CHECK(net.vt->set_params(net.h, zero, net.spec.param_count, &err_));
  ch_policy_space space = {.continuous = 1, .num_actions = 2, .low = {-20, 0.5}, .high = {20, 2.5}};
  o.space = &space;
  o.trace = ch_simtrace_new();
  ch_eval_result r;
  CHECK(ch_eval_run(&env, &net, NULL, 0, &o, &r, &err_));
  size_t len, n;
  const char *csv = ch_simtrace_data(o.trace, &len);
  ch_simtrace_row *rows;
  CHECK(ch_simtrace_parse(csv, len, &rows, &n, &err_));
  assert_int_equal(n, (size_t)r.trial[0].steps + 1);
  for (size_t i = 1; i < n; i++) {
    assert_int_equal(rows[i].action, -1);
    assert_true(rows[i].steer_deg == 0);
    assert_true(rows[i].throttle == 1.5);
  }
  free(rows);
  ch_simtrace_free(o.trace);
  free(zero);
  ch_net_destroy(&net);
  ch_env_destroy(&env);
  ch_plugin_close(netp);
  ch_plugin_close(envp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_evaluation_is_stored_with_its_simtrace),
      cmocka_unit_test(test_export_import_round_trip),
      cmocka_unit_test(test_import_refuses_bad_folders),
      cmocka_unit_test(test_rebuild_recreates_the_catalog),
      cmocka_unit_test(test_rebuild_without_records),
      cmocka_unit_test(test_clone_then_delete),
      cmocka_unit_test(test_runs_are_recorded),
      cmocka_unit_test(test_continuous_policy_acts_with_its_mean),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
