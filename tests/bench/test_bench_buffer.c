/* test_bench_buffer.c -- `chicane bench buffer --only rollout` against a real redis: its JSON. */
#include "servers.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

static ch_test_server redis;
static cJSON *report; /* the JSON of the one rollout run the tests read */
static char out[1 << 20];

/* Run `chicane bench buffer ARGS` (stderr too when merge); the exit status. */
static int run(const char *args, int merge) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s/chicane' bench buffer %s %s", CHICANE_BINARY_DIR, args,
           merge ? "2>&1" : "2>/dev/null");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int setup(void **state) {
  (void)state;
  int started = ch_test_redis_start(&redis, NULL);
  if (started == -1) {
    fprintf(stderr, "\n*** SKIPPED: redis-server is not installed: bench buffer needs it\n");
    return 0;
  }
  if (started != 0) return -1;
  char args[1024];
  snprintf(args, sizeof args, "--only rollout --seconds 0.3 --redis %s", redis.url);
  int rc = run(args, 0);
  if (rc != 0) fprintf(stderr, "chicane bench buffer: exit %d: %s\n", rc, out);
  report = rc == 0 ? cJSON_Parse(out) : NULL;
  if (rc == 0 && !report) fprintf(stderr, "chicane bench buffer: not JSON: %s\n", out);
  return report ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  cJSON_Delete(report);
  ch_test_server_stop(&redis);
  return 0;
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

static void test_help_and_usage_errors(void **state) {
  (void)state;
  assert_int_equal(run("--help", 0), 0);
  assert_non_null(strstr(out, "usage: chicane bench buffer"));
  assert_non_null(strstr(out, "--only WHICH"));
  assert_non_null(strstr(out, "memory_N"));
  assert_int_equal(run("--only both", 1), 2);
  assert_non_null(strstr(out, "--only"));
}

/* Only the rollout section ran, against the given server. */
static void test_header(void **state) {
  (void)state;
  if (!report) skip();
  assert_string_equal(cJSON_GetStringValue(get(report, "benchmark")), "buffer");
  assert_string_equal(cJSON_GetStringValue(get(report, "redis")), redis.url);
  assert_false(cJSON_IsTrue(get(report, "redis_started")));
  assert_null(cJSON_GetObjectItemCaseSensitive(report, "results"));
  assert_true(cJSON_IsObject(get(report, "rollout")));
}

/* A measurement counted real segments: steps, segments and the rates agree. */
static void check_flow(const cJSON *payload, const char *name, int redis_side) {
  const cJSON *m = get(payload, name);
  double steps = num(m, "env_steps"), segments = num(m, "segments"), seconds = num(m, "seconds");
  assert_true(num(m, "env_steps_per_s") > 0);
  assert_true(segments > 0 && steps >= segments); /* a segment holds at least one step */
  assert_true(steps <= segments * num(payload, "segment_steps"));
  assert_true(seconds >= 0.3 - 1e-3);
  /* the report rounds the rate to a step and the seconds to a millisecond */
  if (fabs(num(m, "env_steps_per_s") - steps / seconds) > 0.5 + 6e-4 * steps / seconds / seconds)
    fail_msg("%s: env_steps_per_s %g, env_steps/seconds %g", name, num(m, "env_steps_per_s"),
             steps / seconds);
  if (!redis_side) return;
  assert_true(num(m, "ratio") > 0);
  assert_true(fabs(num(m, "target") - 0.8) < 1e-9);
  assert_int_equal(cJSON_IsTrue(get(m, "met")), num(m, "ratio") >= 0.8);
}

static void check_payload(const char *kind, const char *script, const char *network) {
  if (!report) skip();
  const cJSON *p = get(get(report, "rollout"), kind);
  assert_non_null(strstr(cJSON_GetStringValue(get(p, "script")), script));
  assert_string_equal(cJSON_GetStringValue(get(p, "network")), network);
  assert_true(num(p, "record_bytes") >= num(p, "mean_record_bytes"));
  assert_true(num(p, "mean_record_bytes") > 0);
  const char *names[] = {"memory_1", "memory_2", "memory_4", "redis_1", "redis_2", "redis_4"};
  for (int k = 0; k < 6; k++) check_flow(p, names[k], k >= 3);
}

static void test_rollout_state(void **state) {
  (void)state;
  check_payload("state", "scripts/default.lua", "mlp");
}

static void test_rollout_camera(void **state) {
  (void)state;
  check_payload("camera", "scripts/camera.lua", "cnn");
  /* a camera segment carries its frames: far bigger than a state one */
  const cJSON *r = get(report, "rollout");
  assert_true(num(get(r, "camera"), "record_bytes") > 10 * num(get(r, "state"), "record_bytes"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_usage_errors), cmocka_unit_test(test_header),
      cmocka_unit_test(test_rollout_state), cmocka_unit_test(test_rollout_camera)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
