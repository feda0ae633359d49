/* test_bench_train.c -- `chicane bench train`, run as a user would: its JSON and its clean-up. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

static char tmp[256]; /* TMPDIR of the benchmark: it must leave nothing behind */
static cJSON *report; /* the JSON of the one benchmark run all tests read */
static char out[1 << 20];

/* Run `chicane bench train ARGS` with TMPDIR=tmp (stderr too when merge); the exit status. */
static int run(const char *args, int merge) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "TMPDIR='%s' '%s/chicane' bench train %s %s", tmp, CHICANE_BINARY_DIR,
           args, merge ? "2>&1" : "2>/dev/null");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof tmp, "/tmp/chicane-bench-test-XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  int rc = run("--seeds 1 --max-seconds 30", 0);
  if (rc != 0) fprintf(stderr, "chicane bench train: exit %d: %s\n", rc, out);
  report = rc == 0 ? cJSON_Parse(out) : NULL;
  if (rc == 0 && !report) fprintf(stderr, "chicane bench train: not JSON: %s\n", out);
  return report ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  cJSON_Delete(report);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static const cJSON *get(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v) fail_msg("no '%s' in %s", key, cJSON_PrintUnformatted(o));
  return v;
}

static double num(const cJSON *o, const char *key) {
  const cJSON *v = get(o, key);
  if (!cJSON_IsNumber(v)) fail_msg("'%s' is not a number", key);
  return v->valuedouble;
}

static void expect_near(double got, double want, double tol) {
  if (fabs(got - want) > tol) fail_msg("got %.6g, want %.6g (+- %.3g)", got, want, tol);
}

static void test_help_and_usage_errors(void **state) {
  (void)state;
  assert_int_equal(run("--help", 0), 0);
  assert_non_null(strstr(out, "usage: chicane bench train"));
  assert_non_null(strstr(out, "--seeds N"));
  assert_int_equal(run("--seeds 0", 1), 2);
  assert_non_null(strstr(out, "--seeds"));
  assert_int_equal(run("--threads x", 1), 2);
  assert_int_equal(run("--script /nonexistent/train.lua --seeds 1", 1), 1);
  assert_non_null(strstr(out, "/nonexistent/train.lua"));
}

static void test_header(void **state) {
  (void)state;
  assert_string_equal(cJSON_GetStringValue(get(report, "benchmark")), "train");
  assert_non_null(strstr(cJSON_GetStringValue(get(report, "script")), "scripts/default.lua"));
  assert_string_equal(cJSON_GetStringValue(get(report, "track")), "bayside");
  assert_int_equal(num(report, "seeds"), 1);
  assert_int_equal(num(report, "max_seconds"), 30);
  assert_true(num(report, "workers") >= 1);
  assert_true(num(report, "num_actions") >= 1);
}

/* The per-iteration rows come from the catalog's checkpoints, the totals from ch_train's
** summary: they must agree. */
static void check_run(const cJSON *r) {
  double iterations = num(r, "iterations"), steps = num(r, "env_steps");
  assert_true(iterations >= 1);
  assert_true(steps > 0 && num(r, "episodes") > 0);
  assert_true(num(r, "seconds") > 0);
  assert_true(num(r, "wall_seconds") >= num(r, "seconds") - 1e-3); /* read around ch_train */
  assert_true(num(r, "steps_per_second") > 0 && num(r, "update_steps_per_second") > 0);
  const cJSON *rows = get(r, "per_iteration"), *row;
  assert_int_equal(cJSON_GetArraySize(get(r, "per_iteration_columns")), 6);
  assert_int_equal(cJSON_GetArraySize(rows), iterations);
  double sum = 0, split = 0;
  int i = 0;
  cJSON_ArrayForEach(row, rows) {
    assert_int_equal(cJSON_GetArraySize(row), 6);
    assert_int_equal(cJSON_GetArrayItem(row, 0)->valuedouble, i++);
    sum += cJSON_GetArrayItem(row, 1)->valuedouble;
    for (int k = 2; k < 4; k++) assert_true(cJSON_GetArrayItem(row, k)->valuedouble >= 0);
  }
  expect_near(sum, steps, 0.5);
  const cJSON *s = get(r, "split");
  const char *parts[] = {"rollout_seconds", "update_seconds", "other_seconds", "final_seconds"};
  for (int k = 0; k < 4; k++) split += num(s, parts[k]);
  expect_near(split, num(r, "seconds"), 0.01);
  assert_true(num(s, "update_seconds") > 0);
}

static void test_solve_runs(void **state) {
  (void)state;
  const cJSON *solve = get(report, "solve");
  assert_int_equal(num(solve, "runs"), 1);
  assert_int_equal(num(solve, "target_seconds"), 60);
  const cJSON *runs = get(solve, "runs_detail");
  assert_int_equal(cJSON_GetArraySize(runs), 1);
  const cJSON *r = cJSON_GetArrayItem(runs, 0);
  check_run(r);
  int solved = cJSON_IsTrue(get(r, "solved"));
  assert_int_equal(num(solve, "solved"), solved);
  const cJSON *last = cJSON_GetArrayItem(get(r, "per_iteration"), (int)num(r, "iterations") - 1);
  if (solved) {
    assert_string_equal(cJSON_GetStringValue(get(r, "stop_reason")), "evaluation laps completed");
    assert_int_equal(cJSON_GetArrayItem(last, 5)->valuedouble, 3); /* its evaluation: 3/3 */
    expect_near(num(solve, "seconds_median"), num(r, "seconds"), 1e-6);
    expect_near(num(solve, "env_steps_max"), num(r, "env_steps"), 0.5);
  } else {
    assert_true(cJSON_IsNull(get(solve, "seconds_median")));
    assert_false(cJSON_IsTrue(get(solve, "met")));
  }
}

/* Every shipped track (each .track file in the source tree's tracks/) has its evaluation. */
static void test_tracks_and_lap(void **state) {
  (void)state;
  const cJSON *r = cJSON_GetArrayItem(get(get(report, "solve"), "runs_detail"), 0);
  if (!cJSON_IsTrue(get(r, "solved"))) skip(); /* nothing to evaluate; test_solve_runs checked */
  const cJSON *tracks = get(r, "tracks"), *gen = get(report, "generalization");
  DIR *d = opendir(CHICANE_SOURCE_DIR "/tracks");
  assert_non_null(d);
  int shipped = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len <= 6 || strcmp(e->d_name + len - 6, ".track") != 0) continue;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(len - 6), e->d_name);
    const cJSON *t = get(tracks, name);
    shipped++;
    assert_int_equal(num(t, "trials"), 3);
    assert_true(num(t, "completed_laps") >= 0 && num(t, "completed_laps") <= 3);
    assert_true(num(t, "reference_lap") > 0);
    if (num(t, "completed_laps") > 0)
      expect_near(num(t, "ratio") * num(t, "reference_lap"), num(t, "best_lap_time"), 0.01);
    if (strcmp(name, "bayside") != 0)
      assert_int_equal(cJSON_GetArraySize(get(get(gen, name), "completed_laps")), 1);
  }
  closedir(d);
  assert_true(shipped >= 2);
  assert_int_equal(cJSON_GetArraySize(tracks), shipped);
  assert_int_equal(cJSON_GetArraySize(gen), shipped - 1); /* all but the training track */
  const cJSON *lap = get(report, "lap"), *bay = get(tracks, "bayside");
  assert_string_equal(cJSON_GetStringValue(get(lap, "track")), "bayside");
  assert_int_equal(num(bay, "completed_laps"), 3); /* the model solved on it */
  expect_near(num(lap, "ratio_median"), num(bay, "ratio"), 1e-6);
  expect_near(num(lap, "reference_lap"), num(bay, "reference_lap"), 1e-6);
  assert_int_equal(cJSON_IsTrue(get(lap, "met")),
                   num(lap, "ratio_max") <= num(lap, "target_ratio"));
}

static void test_throughput_and_baselines(void **state) {
  (void)state;
  const cJSON *t = get(report, "throughput");
  check_run(t);
  assert_string_equal(cJSON_GetStringValue(get(t, "stop_reason")), "time limit");
  assert_int_equal(num(t, "baseline_steps_per_second"), 15);
  expect_near(num(t, "ratio"), num(t, "steps_per_second") / 15, 0.1);
  assert_int_equal(cJSON_IsTrue(get(t, "met")),
                   num(t, "steps_per_second") >= num(t, "target_steps_per_second"));
  const cJSON *peer = get(t, "peer_torch_ppo_update");
  assert_non_null(cJSON_GetStringValue(get(peer, "note")));
  expect_near(num(peer, "chicane_update_steps_per_second"), num(t, "update_steps_per_second"), 0.5);
  if (cJSON_IsNumber(get(peer, "update_steps_per_second")))
    assert_true(num(peer, "ratio") > 0);
  else
    assert_true(cJSON_IsNull(get(peer, "ratio")));
}

/* The temporary home (storage, catalog) under TMPDIR is gone. */
static void test_temp_home_removed(void **state) {
  (void)state;
  DIR *d = opendir(tmp);
  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      fail_msg("left behind: %s/%s", tmp, e->d_name);
  closedir(d);
}

/* A script that prints while training (on_iteration), with its own stop conditions that the
** benchmark replaces: stdout still holds one JSON object, and the options are honoured. */
static void test_script_output_stays_off_stdout(void **state) {
  (void)state;
  char script[512], args[1024];
  snprintf(script, sizeof script, "%s/noisy.lua", tmp);
  FILE *f = fopen(script, "w");
  assert_non_null(f);
  fprintf(f,
          "return {\n"
          "  model = 'noisy', track = 'oval', reward = '%s/rewards/progress.lua',\n"
          "  action_space = action_grid({-30, 0, 30}, {1.5}),\n"
          "  hyperparameters = { num_episodes_between_training = 8, num_epochs = 2 },\n"
          "  stop = { max_iterations = 1 },\n"
          "  workers = 2, cars_per_worker = 4,\n"
          "  on_iteration = function(stats, training) print('noise ' .. stats.iteration) end,\n"
          "}\n",
          CHICANE_SOURCE_DIR);
  fclose(f);
  snprintf(args, sizeof args,
           "--script %s --seeds 2 --max-seconds 3 --threads 1 --throughput-seconds 0.5 --no-peer",
           script);
  assert_int_equal(run(args, 0), 0);
  remove(script);
  cJSON *j = cJSON_Parse(out);
  if (!j) fail_msg("stdout is not one JSON object: %s", out);
  assert_int_equal(num(j, "workers"), 1);
  assert_int_equal(num(j, "seeds"), 2);
  assert_string_equal(cJSON_GetStringValue(get(j, "track")), "oval");
  const cJSON *runs = get(get(j, "solve"), "runs_detail");
  assert_int_equal(cJSON_GetArraySize(runs), 2);
  for (int k = 0; k < 2; k++) {
    const cJSON *r = cJSON_GetArrayItem(runs, k);
    assert_int_equal(num(r, "seed"), 1 + k); /* the script's seed (1), then the next */
    /* max_iterations = 1 is replaced: a run ends solved or at the time limit */
    const char *why = cJSON_GetStringValue(get(r, "stop_reason"));
    if (strcmp(why, "evaluation laps completed") != 0) assert_string_equal(why, "time limit");
    check_run(r);
  }
  const cJSON *peer = get(get(j, "throughput"), "peer_torch_ppo_update");
  assert_string_equal(cJSON_GetStringValue(get(peer, "note")), "not run (--no-peer)");
  cJSON_Delete(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header),
      cmocka_unit_test(test_solve_runs),
      cmocka_unit_test(test_tracks_and_lap),
      cmocka_unit_test(test_throughput_and_baselines),
      cmocka_unit_test(test_temp_home_removed),
      cmocka_unit_test(test_help_and_usage_errors),
      cmocka_unit_test(test_script_output_stays_off_stdout),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
