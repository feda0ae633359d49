/* test_reward_check.c -- `chicane reward check`: runs the binary as a user would and checks its
** output and exit status on good and broken reward scripts. */
#include "unit_test.h"

#include <cjson/cJSON.h>
#include <sys/wait.h>

static char dir[512];

/* Run `chicane ARGS` with stdout (and stderr when merge) into out; returns the exit status. */
static int run(const char *args, char *out, size_t outlen, int merge) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s/chicane %s %s", CHICANE_BINARY_DIR, args,
           merge ? "2>&1" : "2>/dev/null");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state) {
  (void)state;
  unit_mkdtemp(dir, sizeof dir, "frontend-check");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unit_rmdir(dir);
  return 0;
}

static void write_script(const char *name, const char *text, char *path) {
  unit_write(dir, name, text, path, 1024);
}

static void test_shipped_rewards_pass(void **state) {
  (void)state;
  static const char *const files[] = {"follow_center_line", "stay_inside_borders", "prevent_zigzag",
                                      "object_avoidance",   "racing_line",         "progress"};
  static char out[65536];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char args[1024];
    snprintf(args, sizeof args, "reward check %s/rewards/%s.lua", CHICANE_SOURCE_DIR, files[i]);
    int rc = run(args, out, sizeof out, 1);
    if (rc != 0) fail_msg("%s -> %d:\n%s", args, rc, out);
    unit_assert_contains(out, "on bayside:");
    unit_assert_contains(out, "all calls");
    unit_assert_contains(out, "with objects");
    unit_assert_contains(out, "\nok\n");
  }
}

/* --json gives the ranges; follow_center_line's are its three bands and its floor. */
static void test_json_ranges(void **state) {
  (void)state;
  static char out[65536];
  char args[1024];
  snprintf(args, sizeof args, "reward check %s/rewards/follow_center_line.lua --json --track oval",
           CHICANE_SOURCE_DIR);
  assert_int_equal(run(args, out, sizeof out, 0), 0);
  cJSON *j = cJSON_Parse(out);
  if (!j) fail_msg("not JSON: %s", out);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "track")), "oval");
  double calls = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "calls"));
  assert_true(calls > 1000);
  const cJSON *all = cJSON_GetObjectItem(j, "all");
  unit_assert_near(cJSON_GetNumberValue(cJSON_GetObjectItem(all, "min")), 1e-3, 1e-12);
  unit_assert_near(cJSON_GetNumberValue(cJSON_GetObjectItem(all, "max")), 1.0, 0);
  /* every situation was tried */
  static const char *const groups[] = {"on_track", "wheels_off", "reversed", "with_objects"};
  for (int g = 0; g < 4; g++) {
    const cJSON *v = cJSON_GetObjectItem(j, groups[g]);
    double n = cJSON_GetNumberValue(cJSON_GetObjectItem(v, "calls"));
    if (!(n > 0)) fail_msg("no calls %s: %s", groups[g], out);
  }
  cJSON_Delete(j);
}

static void test_error_at_a_line(void **state) {
  (void)state;
  char path[1024], args[1200], want[1100];
  static char out[65536];
  write_script("offtrack.lua",
               "function reward_function(params)\n"
               "  if not params.all_wheels_on_track then\n"
               "    return params.no_such_table.value\n"
               "  end\n"
               "  return 1\n"
               "end\n",
               path);
  snprintf(args, sizeof args, "reward check %s", path);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  snprintf(want, sizeof want, "chicane: error: %s:3:", path);
  unit_assert_contains(out, want);
  unit_assert_contains(out, "attempt to index a nil value");
  unit_assert_contains(out, "all_wheels_on_track=false");
  /* the same as JSON, with the params of the failing call */
  snprintf(args, sizeof args, "reward check %s --json", path);
  assert_int_equal(run(args, out, sizeof out, 0), 1);
  cJSON *j = cJSON_Parse(out);
  assert_non_null(j);
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")));
  unit_assert_contains(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")), ":3:");
  const cJSON *p = cJSON_GetObjectItem(j, "params");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(p, "all_wheels_on_track")));
  cJSON_Delete(j);
}

static void test_bad_values_and_loops(void **state) {
  (void)state;
  static const char *const bodies[][2] = {
      {"  if params.is_reversed then return 0/0 end\n  return 1\n", "outside [-1e5, 1e5]"},
      {"  if #params.objects_location > 0 then return 1e6 end\n  return 1\n", "returned 1e+06"},
      {"  if params.speed > 3 then return nil end\n  return 1\n", "returned nil"},
      {"  while params.steps > 0 do end\n", "instruction budget"},
  };
  static char out[65536];
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    char path[1024], args[1200], name[32], text[512];
    snprintf(name, sizeof name, "bad%zu.lua", i);
    snprintf(text, sizeof text, "function reward_function(params)\n%send\n", bodies[i][0]);
    write_script(name, text, path);
    snprintf(args, sizeof args, "reward check %s", path);
    assert_int_equal(run(args, out, sizeof out, 1), 1);
    unit_assert_contains(out, path);
    unit_assert_contains(out, bodies[i][1]);
    unit_assert_contains(out, "step ");
  }
}

static void test_load_errors(void **state) {
  (void)state;
  char path[1024], args[1200], want[1100];
  static char out[65536];
  write_script("syntax.lua", "function reward_function(params)\n  return 1 +\nend\n", path);
  snprintf(args, sizeof args, "reward check %s", path);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  snprintf(want, sizeof want, "%s:3:", path);
  unit_assert_contains(out, want);
  write_script("nofn.lua", "reward = 1\n", path);
  snprintf(args, sizeof args, "reward check %s", path);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  unit_assert_contains(out, "does not define a function reward_function");
  snprintf(args, sizeof args, "reward check %s/absent.lua", dir);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  unit_assert_contains(out, "absent.lua");
  snprintf(args, sizeof args, "reward check %s/rewards/progress.lua --track nowhere",
           CHICANE_SOURCE_DIR);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  unit_assert_contains(out, "no track 'nowhere'");
}

static void test_usage(void **state) {
  (void)state;
  static char out[65536];
  assert_int_equal(run("reward", out, sizeof out, 1), 2);
  unit_assert_contains(out, "reward check FILE");
  assert_int_equal(run("reward check", out, sizeof out, 1), 2);
  assert_int_equal(run("reward check a.lua b.lua", out, sizeof out, 1), 2);
  assert_int_equal(run("reward check --bogus a.lua", out, sizeof out, 1), 2);
  assert_int_equal(run("reward check --help", out, sizeof out, 1), 0);
  unit_assert_contains(out, "usage: chicane reward check FILE");
  assert_int_equal(run("--help", out, sizeof out, 1), 0);
  unit_assert_contains(out, "reward check FILE");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shipped_rewards_pass), cmocka_unit_test(test_json_ranges),
      cmocka_unit_test(test_error_at_a_line),      cmocka_unit_test(test_bad_values_and_loops),
      cmocka_unit_test(test_load_errors),          cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
