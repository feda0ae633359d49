/* test_dist_run.c -- distributed training end to end: workers, redis, s3rver, bad input. */
#include "dist_test.h"
#include "segment.h"
#include "servers.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char home[512];
static ch_test_server redis, s3;
static int have_redis, have_s3;

static int group_setup(void **state) {
  (void)state;
  dist_make_home(home, sizeof home);
  have_redis = dist_start_redis(&redis);
  if (have_redis < 0) return -1;
  int rc = ch_test_s3rver_start(&s3, "chicane");
  if (rc == -1)
    fprintf(stderr,
            "\n*** SKIPPED: s3rver is not installed (npm install in %s): the s3 "
            "storage test will skip\n",
            CHICANE_SOURCE_DIR);
  have_s3 = rc == 0;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ch_test_server_stop(&redis);
  ch_test_server_stop(&s3);
  return dist_remove_home(home);
}

#define NEED_REDIS()                                                                               \
  do {                                                                                             \
    if (!have_redis) skip();                                                                       \
  } while (0)

/* `chicane train SCRIPT --buffer REDIS --workers 2 [more]`, to completion; its exit status. */
static int train(const char *model, int iterations, const char *more, pid_t *pid_out) {
  char script[1024];
  dist_write_script(home, model, iterations, script, sizeof script);
  const char *args[] = {"train",   script,      "--home", home, "--buffer",
                        redis.url, "--workers", "2",      more, NULL};
  pid_t pid = dist_spawn(home, model, args);
  if (pid_out) *pid_out = pid;
  return pid_out ? 0 : dist_wait(pid, 50);
}

static void assert_log_has(const char *log, const char *which, const char *text) {
  char *s = dist_read_log(home, log, which);
  if (!strstr(s, text)) {
    fprintf(stderr, "--- %s.%s ---\n%s\n---\n", log, which, s);
    free(s);
    fail_msg("%s.%s lacks '%s'", log, which, text);
  }
  free(s);
}

/* Print LOG's stderr and fail: the run ended with status rc. */
static void fail_with_log(const char *log, int rc) {
  char *s = dist_read_log(home, log, "err");
  fprintf(stderr, "--- %s.err ---\n%s\n---\n", log, s);
  free(s);
  fail_msg("chicane train (%s) ended with status %d", log, rc);
}

/* A run with two worker processes completes, and the catalog holds every checkpoint, whose
** stored bytes are the ones the catalog names. */
static void test_two_workers_complete(void **state) {
  (void)state;
  NEED_REDIS();
  int rc = train("two", 5, NULL, NULL);
  if (rc != 0) fail_with_log("two", rc);
  assert_log_has("two", "out", "trained 'two': 5 iterations");
  cJSON *m = dist_model_json(home, "two", NULL);
  assert_non_null(m);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "status")), "ready");
  char root[700];
  snprintf(root, sizeof root, "%s/storage", home);
  dist_check_checkpoints(m, 5, root, NULL);
  assert_int_equal((int)dist_metric_sum(m, "corrupt_segments"), 0);
  cJSON_Delete(m);
}

/* Nothing listens at the buffer's address: a clear error naming it, and no model left behind. */
static void test_dead_redis_is_named(void **state) {
  (void)state;
  char script[1024], url[64], where[64];
  int port = dist_unused_port();
  snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
  snprintf(where, sizeof where, "127.0.0.1:%d", port);
  dist_write_script(home, "dead", 2, script, sizeof script);
  const char *args[] = {"train", script, "--home", home, "--buffer", url, "--workers", "1", NULL};
  int rc = dist_wait(dist_spawn(home, "dead", args), 50);
  assert_int_not_equal(rc, 0);
  assert_true(rc < 128); /* an error exit, not a crash */
  assert_log_has("dead", "err", where);
  cJSON *m = dist_model_json(home, "dead", NULL);
  assert_null(m); /* `models show` fails: the catalog has no such model */
}

/* Raw XADD of an entry in the plugin's field layout (v, i, d) into the model's stream. */
static void xadd(redisContext *c, const char *model, const void *data, size_t len) {
  char stream[256];
  snprintf(stream, sizeof stream, "chicane:%s:segments", model);
  redisReply *r = redisCommand(c, "XADD %s * v %s i %s d %b", stream, "1", "900001", data, len);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
}

/* A real segment record with one byte of its body flipped: only the CRC can tell. */
static void *flipped_segment(size_t *len) {
  float f[32 * (11 + 4 + CH_TRACE_FLOATS)];
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) f[i] = 0.25f;
  ch_segment s = {.policy_version = 1,
                  .episode_id = 77,
                  .worker_id = 4242,
                  .num_steps = 32,
                  .obs_size = 11,
                  .action_size = 1,
                  .flags = CH_SEGMENT_EPISODE_END,
                  .obs = f,
                  .action = f + 32 * 11,
                  .reward = f + 32 * 12,
                  .logp = f + 32 * 13,
                  .value = f + 32 * 14,
                  .trace = f + 32 * 15};
  for (int i = 0; i < 32; i++) f[32 * 11 + i] = 1; /* a valid action index */
  *len = ch_segment_encoded_size(&s);
  unsigned char *b = malloc(*len);
  assert_non_null(b);
  ch_segment_encode(&s, b);
  ch_segment check;
  assert_int_equal(ch_segment_decode(b, *len, &check, NULL), CH_OK);
  b[100] ^= 0x40;
  assert_int_equal(ch_segment_decode(b, *len, &check, NULL), CH_ECORRUPT);
  return b;
}

/* Corrupt records pushed mid-run are rejected by checksum, counted in the checkpoint metrics,
** and training goes on to the end. */
static void test_corrupt_records_counted(void **state) {
  (void)state;
  NEED_REDIS();
  pid_t pid;
  train("corrupt", 5, NULL, &pid);
  if (dist_wait_for(home, "corrupt", "out", "iter    1", pid, 40) != 0) {
    dist_wait(pid, 5);
    assert_log_has("corrupt", "out", "iter    1");
  }
  redisContext *c = redisConnect("127.0.0.1", redis.port);
  assert_true(c && !c->err);
  size_t len;
  void *seg = flipped_segment(&len);
  xadd(c, "corrupt", seg, len);
  xadd(c, "corrupt", "not a segment at all", 20);
  free(seg);
  redisFree(c);
  int rc = dist_wait(pid, 50);
  if (rc != 0) fail_with_log("corrupt", rc);
  assert_log_has("corrupt", "out", "trained 'corrupt': 5 iterations");
  assert_log_has("corrupt", "err", "rejected");
  cJSON *m = dist_model_json(home, "corrupt", NULL);
  dist_check_checkpoints(m, 5, NULL, NULL);
  assert_int_equal((int)dist_metric_sum(m, "corrupt_segments"), 2);
  cJSON_Delete(m);
}

/* One trainer with --storage s3://...: the checkpoints land in s3rver, as the catalog says. */
static void test_s3_storage(void **state) {
  (void)state;
  NEED_REDIS();
  if (!have_s3) skip();
  setenv("CHICANE_S3_ENDPOINT", s3.url, 1);
  setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  setenv("AWS_REGION", "us-east-1", 1);
  char script[1024];
  dist_write_script(home, "ons3", 3, script, sizeof script);
  const char *args[] = {"train",    script,    "--home",    home, "--storage", "s3://chicane/runs",
                        "--buffer", redis.url, "--workers", "2",  NULL};
  int rc = dist_wait(dist_spawn(home, "ons3", args), 50);
  if (rc != 0) fail_with_log("ons3", rc);
  assert_log_has("ons3", "out", "trained 'ons3': 3 iterations");
  char root[700], object[1024];
  snprintf(root, sizeof root, "%s/chicane/runs", s3.dir);
  snprintf(object, sizeof object, "%s/models/ons3/checkpoints/000002.ckpt._S3rver_object", root);
  struct stat st;
  assert_int_equal(stat(object, &st), 0);
  assert_true(st.st_size > 0);
  cJSON *m = dist_model_json(home, "ons3", "--storage s3://chicane/runs");
  dist_check_checkpoints(m, 3, root, "._S3rver_object");
  cJSON_Delete(m);
  snprintf(object, sizeof object, "%s/storage/models/ons3", home);
  assert_int_not_equal(stat(object, &st), 0); /* nothing went to local storage */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_workers_complete),
      cmocka_unit_test(test_dead_redis_is_named),
      cmocka_unit_test(test_corrupt_records_counted),
      cmocka_unit_test(test_s3_storage),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
