/* test_dist_faults.c -- distributed training survives worker, redis and trainer crashes. */
#include "dist_test.h"
#include "servers.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define ITERATIONS 8

static char home[512];
static ch_test_server redis;
static int have_redis;

static int group_setup(void **state) {
  (void)state;
  dist_make_home(home, sizeof home);
  have_redis = dist_start_redis(&redis);
  if (have_redis < 0) return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ch_test_server_stop(&redis);
  return dist_remove_home(home);
}

/* Print LOG's stderr and fail. */
static void fail_with_log(const char *log, const char *why) {
  char *s = dist_read_log(home, log, "err");
  fprintf(stderr, "--- %s.err ---\n%s\n---\n", log, s);
  free(s);
  fail_msg("%s: %s", log, why);
}

static void assert_log_has(const char *log, const char *which, const char *text) {
  char *s = dist_read_log(home, log, which);
  int found = strstr(s, text) != NULL;
  free(s);
  if (!found) fail_with_log(log, text);
}

/* Start `chicane train` on model's script with 2 worker processes (and --resume). */
static pid_t start_train(const char *model, const char *log, int resume) {
  char script[1024];
  dist_write_script(home, model, ITERATIONS, script, sizeof script);
  const char *args[] = {"train",     script,     "--home",
                        home,        "--buffer", redis.url,
                        "--workers", "2",        resume ? "--resume" : NULL,
                        NULL};
  return dist_spawn(home, log, args);
}

/* Wait until the run has printed iteration it's line. */
static void wait_iteration(pid_t pid, const char *log, int it) {
  char line[32];
  snprintf(line, sizeof line, "iter %4d", it);
  if (dist_wait_for(home, log, "out", line, pid, 40) == 0) return;
  dist_kill_group(pid);
  fail_with_log(log, "the run never reached its iteration line");
}

/* The run ends well, having trained every iteration; the catalog has them all. */
static void assert_completed(pid_t pid, const char *model, const char *log, int iterations) {
  int rc = dist_wait(pid, 50);
  if (rc != 0) fail_with_log(log, "chicane train failed");
  char text[128];
  snprintf(text, sizeof text, "trained '%s': %d iterations", model, iterations);
  assert_log_has(log, "out", text);
  cJSON *m = dist_model_json(home, model, NULL);
  assert_non_null(m);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "status")), "ready");
  char root[700];
  snprintf(root, sizeof root, "%s/storage", home);
  dist_check_checkpoints(m, ITERATIONS, root, NULL);
  cJSON_Delete(m);
}

/* SIGKILL one worker process mid-run: the trainer restarts it, asks the living workers for the
** lost episodes, and training still completes every iteration. */
static void test_worker_killed(void **state) {
  (void)state;
  if (!have_redis) skip();
  pid_t pid = start_train("wkill", "wkill", 0);
  wait_iteration(pid, "wkill", 1);
  pid_t workers[8];
  int n = dist_worker_pids(pid, workers, 8);
  if (n != 2) {
    dist_kill_group(pid);
    fail_msg("%d worker processes under the trainer, expected 2", n);
  }
  assert_int_equal(kill(workers[0], SIGKILL), 0);
  assert_completed(pid, "wkill", "wkill", ITERATIONS);
  assert_log_has("wkill", "err", "killed by signal 9");
}

/* The redis server crashes (SIGKILL) mid-run and comes back on the same port with its
** append-only file: trainer and workers reconnect and training completes. */
static void test_redis_restarted(void **state) {
  (void)state;
  if (!have_redis) skip();
  pid_t pid = start_train("rrestart", "rrestart", 0);
  wait_iteration(pid, "rrestart", 1);
  ch_test_server_kill(&redis);
  int rc = ch_test_server_restart(&redis);
  if (rc != 0) {
    dist_kill_group(pid);
    fail_msg("redis-server would not restart");
  }
  assert_completed(pid, "rrestart", "rrestart", ITERATIONS);
}

/* Redis gone for longer than the plugin's own retries (about 3 s): trainer and workers wait
** for it, say so, and training completes once it is back. */
static void test_redis_down_for_a_while(void **state) {
  (void)state;
  if (!have_redis) skip();
  pid_t pid = start_train("rdown", "rdown", 0);
  wait_iteration(pid, "rdown", 1);
  ch_test_server_kill(&redis);
  nanosleep(&(struct timespec){6, 0}, NULL);
  int rc = ch_test_server_restart(&redis);
  if (rc != 0) {
    dist_kill_group(pid);
    fail_msg("redis-server would not restart");
  }
  assert_completed(pid, "rdown", "rdown", ITERATIONS);
  /* the outage was felt (who waited it out, the plugin's retries or the trainer, depends on
  ** where each process was when redis went away) */
  assert_log_has("rdown", "err", "Connection refused");
}

/* The latest checkpoint's iteration in the catalog, -1 without one. */
static int latest_iteration(const char *model) {
  cJSON *m = dist_model_json(home, model, NULL);
  assert_non_null(m);
  int latest = -1;
  const cJSON *c;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "checkpoints")) {
    int it = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(c, "iteration"));
    if (it > latest) latest = it;
  }
  cJSON_Delete(m);
  return latest;
}

/* SIGKILL the trainer and its workers mid-run; `train --resume` continues at the latest
** checkpoint's iteration + 1, and every checkpoint stored, before and after, is whole. */
static void test_trainer_killed_then_resumed(void **state) {
  (void)state;
  if (!have_redis) skip();
  pid_t pid = start_train("tkill", "tkill", 0);
  wait_iteration(pid, "tkill", 2);
  dist_kill_group(pid); /* the trainer and its workers, as a crashed machine */
  int latest = latest_iteration("tkill");
  assert_true(latest >= 2);
  if (latest + 1 >= ITERATIONS) skip(); /* it finished before the kill: nothing to resume */
  pid = start_train("tkill", "tkill-resume", 1);
  char text[128];
  snprintf(text, sizeof text, "resuming 'tkill' at iteration %d", latest + 1);
  assert_completed(pid, "tkill", "tkill-resume", ITERATIONS - latest - 1);
  assert_log_has("tkill-resume", "err", text);
  snprintf(text, sizeof text, "last checkpoint: iteration %d", ITERATIONS - 1);
  assert_log_has("tkill-resume", "out", text);
  /* the weights load and drive */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "%s/chicane evaluate tkill --home %s --trials 1 --max-seconds 5 >/dev/null 2>&1",
           CHICANE_BINARY_DIR, home);
  int st = system(cmd);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A process that has exited (gone, or a zombie its new parent has not reaped yet). */
static int exited(pid_t pid) {
  char path[64], stat[256] = "";
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = 0;
  const char *paren = strrchr(stat, ')');
  return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* Workers started by a trainer leave when it is killed, rather than wait for it forever. */
static void test_workers_leave_with_their_trainer(void **state) {
  (void)state;
  if (!have_redis) skip();
  pid_t pid = start_train("orphan", "orphan", 0);
  wait_iteration(pid, "orphan", 1);
  pid_t workers[8];
  int n = dist_worker_pids(pid, workers, 8);
  assert_true(n >= 1);
  assert_int_equal(kill(pid, SIGKILL), 0); /* the trainer alone */
  assert_true(dist_wait(pid, 10) >= 0);
  int left = 0;
  for (int tries = 0; tries < 100 && left < n; tries++) {
    left = 0;
    for (int i = 0; i < n; i++) left += exited(workers[i]);
    if (left < n) nanosleep(&(struct timespec){0, 100000000L}, NULL);
  }
  dist_kill_group(pid); /* whatever is left, so the next test starts clean */
  assert_int_equal(left, n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_worker_killed),
      cmocka_unit_test(test_redis_restarted),
      cmocka_unit_test(test_redis_down_for_a_while),
      cmocka_unit_test(test_trainer_killed_then_resumed),
      cmocka_unit_test(test_workers_leave_with_their_trainer),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
