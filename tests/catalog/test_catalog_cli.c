/* test_catalog_cli.c -- `chicane models`, `evaluate` and `leaderboard` as a user runs them. */
#include "catalog_test.h"

#include <cjson/cJSON.h>
#include <math.h>

static char out[1 << 18];

static int group_setup(void **state) {
  (void)state;
  test_make_home("catcli");
  test_train("alpha", 40);
  test_train("bravo", 40);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  test_rm_tree(test_home);
  return 0;
}

/* Run a command that must succeed and print JSON; returns the parsed JSON. */
static cJSON *run_json(const char *args) {
  int rc = test_run(args, out, sizeof out, 0);
  if (rc != 0) {
    test_run(args, out, sizeof out, 1);
    fail_msg("chicane %s exited %d:\n%s", args, rc, out);
  }
  cJSON *j = cJSON_Parse(out);
  if (!j) fail_msg("chicane %s: not JSON:\n%s", args, out);
  return j;
}

static double num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItem(o, key);
  if (!cJSON_IsNumber(v)) fail_msg("'%s' is not a number", key);
  return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
  if (!s) fail_msg("'%s' is not a string", key);
  return s;
}

static const cJSON *find(const cJSON *arr, const char *key, const char *value) {
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(e, key));
    if (s && strcmp(s, value) == 0) return e;
  }
  return NULL;
}

static void test_evaluate_json_and_race_types(void **state) {
  (void)state;
  cJSON *j = run_json("evaluate alpha --json --trials 2 --max-seconds 60");
  assert_string_equal(str(j, "model"), "alpha");
  assert_string_equal(str(j, "race_type"), "time_trial");
  assert_true(num(j, "reference_lap") > 1);
  assert_non_null(strstr(str(j, "storage_key"), "models/alpha/evaluations/"));
  assert_non_null(strstr(str(j, "simtrace_key"), "models/alpha/evaluation-simtrace/"));
  const cJSON *t;
  int completed = 0;
  cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "trials")) {
    assert_true(num(t, "progress") >= 0 && num(t, "progress") <= 100);
    int done = cJSON_IsTrue(cJSON_GetObjectItem(t, "completed"));
    completed += done;
    assert_string_equal(str(t, "status"), done ? "lap_complete" : "time_up");
    if (done) assert_true(num(t, "ratio") > 0.5);
  }
  assert_int_equal((int)num(j, "completed_laps"), completed);
  cJSON_Delete(j);
  cJSON_Delete(run_json("evaluate bravo --json --trials 2 --max-seconds 60"));

  j = run_json("evaluate alpha --json --trials 1 --max-seconds 60 --race-type object_avoidance "
               "--objects '{\"count\": 2}' --crash-penalty 2");
  assert_string_equal(str(j, "race_type"), "object_avoidance");
  assert_true(num(j, "crash_penalty_seconds") == 2);
  cJSON_Delete(j);
  assert_int_equal(test_run("evaluate alpha --objects '[1'", out, sizeof out, 1), 2);
  assert_non_null(strstr(out, "--objects needs a JSON object"));
  assert_int_equal(test_run("evaluate alpha --race-type drag_race", out, sizeof out, 1), 1);
  assert_non_null(strstr(out, "race_type"));
}

static void test_models_list_and_show(void **state) {
  (void)state;
  cJSON *list = run_json("models --json");
  const cJSON *a = find(list, "name", "alpha");
  assert_non_null(a);
  assert_string_equal(str(a, "track"), "bayside");
  assert_string_equal(str(a, "status"), "ready");
  assert_true(num(a, "iterations") >= 1);
  assert_true(num(a, "best_progress") > 0 && num(a, "best_progress") <= 100);
  assert_true(num(a, "created") > 1700000000);
  assert_non_null(cJSON_GetObjectItem(a, "best_lap_time"));
  cJSON *show = run_json("models show alpha --json");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(show, "checkpoints")),
                   (int)num(a, "iterations"));
  const cJSON *evs = cJSON_GetObjectItem(show, "evaluations");
  assert_true(cJSON_GetArraySize(evs) >= 1);
  const cJSON *e0 = cJSON_GetArrayItem(evs, 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(e0, "trial_results")),
                   (int)num(e0, "trials"));
  assert_true(num(e0, "reference_lap") > 1);
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(show, "runs")));
  cJSON_Delete(show);
  cJSON_Delete(list);
  assert_int_equal(test_run("models show alpha", out, sizeof out, 0), 0);
  assert_non_null(strstr(out, "checkpoints"));
  assert_non_null(strstr(out, "evaluations    "));
  assert_non_null(strstr(out, "time_trial"));
  assert_int_equal(test_run("models", out, sizeof out, 0), 0);
  assert_non_null(strstr(out, "BEST LAP"));
  assert_int_equal(test_run("models show ghost", out, sizeof out, 1), 1);
  assert_non_null(strstr(out, "no model 'ghost'"));
  assert_int_equal(test_run("models frobnicate", out, sizeof out, 1), 2);
  assert_int_equal(test_run("models clone alpha", out, sizeof out, 1), 2);
  assert_non_null(strstr(out, "clone SRC DST"));
}

static void test_leaderboard_ranks_by_best_lap(void **state) {
  (void)state;
  cJSON *board = run_json("leaderboard --json");
  cJSON *list = run_json("models --json");
  double previous = 0;
  int rank = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, board) {
    assert_string_equal(str(e, "track"), "bayside");
    assert_int_equal((int)num(e, "rank"), ++rank);
    double lap = num(e, "best_lap_time");
    assert_true(lap >= previous);
    previous = lap;
    /* Each model's fastest lap of any of its evaluations. */
    const cJSON *m = find(list, "name", str(e, "model"));
    assert_true(num(m, "best_lap_time") == lap);
    assert_true(fabs(num(e, "reference_ratio") - lap / num(e, "reference_lap")) < 1e-9);
  }
  /* Models with a completed lap are all there. */
  const cJSON *m;
  cJSON_ArrayForEach(m, list) {
    int ranked = find(board, "model", str(m, "name")) != NULL;
    assert_int_equal(ranked, cJSON_IsNumber(cJSON_GetObjectItem(m, "best_lap_time")));
  }
  assert_true(rank >= 1); /* the default settings complete laps within 40 iterations */
  cJSON_Delete(board);
  cJSON_Delete(list);
  board = run_json("leaderboard --json --track oval");
  assert_int_equal(cJSON_GetArraySize(board), 0);
  cJSON_Delete(board);
  assert_int_equal(test_run("leaderboard", out, sizeof out, 0), 0);
  assert_non_null(strstr(out, "track bayside (reference lap "));
  assert_non_null(strstr(out, "RANK"));
}

static void test_clone_export_import_rebuild_delete(void **state) {
  (void)state;
  char args[1024];
  cJSON *j = run_json("models clone bravo charlie --json");
  assert_string_equal(str(j, "name"), "charlie");
  cJSON_Delete(j);
  snprintf(args, sizeof args, "models export charlie %s/out/charlie --json", test_home);
  cJSON_Delete(run_json(args));
  snprintf(args, sizeof args, "models import %s/out/charlie --name delta --json", test_home);
  j = run_json(args);
  assert_string_equal(str(j, "name"), "delta");
  cJSON_Delete(j);
  j = run_json("models rebuild --json");
  assert_int_equal((int)num(j, "models"), 4);
  assert_true(num(j, "checkpoints") >= 4);
  cJSON_Delete(j);
  cJSON *list = run_json("models --json");
  assert_int_equal(cJSON_GetArraySize(list), 4);
  assert_string_equal(str(find(list, "name", "delta"), "status"), "ready");
  cJSON_Delete(list);
  j = run_json("evaluate delta --json --trials 1 --max-seconds 30");
  cJSON_Delete(j);

  /* delete asks for --yes, and without it changes nothing. */
  assert_int_equal(test_run("models delete charlie", out, sizeof out, 1), 2);
  assert_non_null(strstr(out, "--yes"));
  assert_int_equal(test_run("models show charlie", out, sizeof out, 0), 0);
  assert_int_equal(test_run("models delete charlie --yes", out, sizeof out, 1), 0);
  assert_int_equal(test_run("models show charlie", out, sizeof out, 1), 1);
  char path[600];
  snprintf(path, sizeof path, "%s/storage/models/charlie", test_home);
  assert_int_equal(access(path, F_OK), -1); /* the local store prunes empty folders */
  assert_int_equal(test_run("models delete charlie --yes", out, sizeof out, 1), 1);
  assert_non_null(strstr(out, "no model 'charlie'"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_evaluate_json_and_race_types),
      cmocka_unit_test(test_models_list_and_show),
      cmocka_unit_test(test_leaderboard_ranks_by_best_lap),
      cmocka_unit_test(test_clone_export_import_rebuild_delete),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
