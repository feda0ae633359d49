/* test_cli.c -- runs the chicane binary as a user would and checks what it prints. */
#include <chicane/plugin.h>
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

static char home[256];

/* Run `chicane ARGS` (stderr into the output too when merge); returns the exit status. */
static int run(const char *args, char *out, size_t outlen, int merge) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s/chicane %s --home %s %s", CHICANE_BINARY_DIR, args, home,
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
  snprintf(home, sizeof home, "/tmp/chicane-cli-XXXXXX");
  assert_non_null(mkdtemp(home));
  char path[512];
  snprintf(path, sizeof path, "%s/quick.lua", home);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "return {\n"
          "  model = 'quick', track = 'bayside', reward = '%s/rewards/follow_center_line.lua',\n"
          "  action_space = action_grid({-30, 0, 30}, {1.0}),\n"
          "  hyperparameters = { num_episodes_between_training = 4, num_epochs = 1 },\n"
          "  stop = { max_iterations = 2 },\n"
          "  workers = 1, cars_per_worker = 4, max_steps = 200,\n"
          "}\n",
          CHICANE_SOURCE_DIR);
  fclose(f);
  return 0;
}

static void test_plugins_json_lists_the_four_kinds(void **state) {
  (void)state;
  static char out[65536];
  assert_int_equal(run("plugins --json", out, sizeof out, 0), 0);
  cJSON *arr = cJSON_Parse(out);
  assert_non_null(arr);
  const char *want[][2] = {
      {"env", "sim2d"}, {"network", "mlp"}, {"buffer", "memory"}, {"storage", "local"}};
  for (int w = 0; w < 4; w++) {
    int found = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, arr) {
      const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(p, "kind"));
      const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(p, "name"));
      if (kind && name && strcmp(kind, want[w][0]) == 0 && strcmp(name, want[w][1]) == 0) {
        found = 1;
        assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(p, "abi")),
                         CH_PLUGIN_ABI_VERSION);
        assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(p, "path")), ".so"));
      }
    }
    if (!found) fail_msg("plugin %s/%s missing from: %s", want[w][0], want[w][1], out);
  }
  cJSON_Delete(arr);
}

static void test_train_then_evaluate_json(void **state) {
  (void)state;
  static char out[65536];
  char args[1024];
  snprintf(args, sizeof args, "train %s/quick.lua", home);
  int rc = run(args, out, sizeof out, 1);
  if (rc != 0) fail_msg("train exited %d: %s", rc, out);
  assert_non_null(strstr(out, "iter    1"));
  assert_non_null(strstr(out, "trained 'quick': 2 iterations"));

  assert_int_equal(run("evaluate quick --json --trials 2 --max-seconds 20", out, sizeof out, 0), 0);
  cJSON *j = cJSON_Parse(out);
  if (!j) fail_msg("not JSON: %s", out);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "quick");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "track")), "bayside");
  const cJSON *trials = cJSON_GetObjectItem(j, "trials");
  assert_int_equal(cJSON_GetArraySize(trials), 2);
  const cJSON *t;
  int completed = 0;
  cJSON_ArrayForEach(t, trials) {
    double progress = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "progress"));
    assert_true(progress >= 0 && progress <= 100);
    assert_non_null(cJSON_GetObjectItem(t, "lap_time"));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(t, "off_track")));
    completed += cJSON_IsTrue(cJSON_GetObjectItem(t, "completed"));
  }
  assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "completed_laps")), completed);
  cJSON_Delete(j);

  assert_int_equal(run("models --json", out, sizeof out, 0), 0);
  assert_non_null(strstr(out, "\"quick\""));
  assert_int_equal(run("models show quick", out, sizeof out, 0), 0);
  assert_non_null(strstr(out, "follow_center_line.lua"));
  assert_non_null(strstr(out, "evaluation"));
  assert_int_equal(
      run("evaluate quick --require-laps 3 --trials 1 --max-seconds 1", out, sizeof out, 0), 3);
}

static void test_errors_are_named(void **state) {
  (void)state;
  static char out[65536];
  char path[512], args[1024];
  snprintf(path, sizeof path, "%s/typo.lua", home);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("return { reward = 'x.lua', hyperparamters = {} }\n", f);
  fclose(f);
  snprintf(args, sizeof args, "train %s", path);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  assert_non_null(strstr(out, "typo.lua"));
  assert_non_null(strstr(out, "hyperparamters: unknown key"));
  assert_int_equal(run("evaluate nosuchmodel", out, sizeof out, 1), 1);
  assert_non_null(strstr(out, "nosuchmodel"));
  assert_int_equal(run("frobnicate", out, sizeof out, 1), 2);
  assert_int_equal(run("train --help", out, sizeof out, 0), 0);
  assert_non_null(strstr(out, "usage: chicane train SCRIPT"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plugins_json_lists_the_four_kinds),
      cmocka_unit_test(test_train_then_evaluate_json),
      cmocka_unit_test(test_errors_are_named),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
