/* dist_support.c -- distributed tests: start, watch and kill chicane processes. */
#include "dist_test.h"
#include "servers.h"

#include "clock.h"

#include "paths.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

void dist_make_home(char *dir, size_t cap) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, cap, "%s/chicane-dist-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));
}

int dist_remove_home(const char *dir) {
  if (getenv("CHICANE_TEST_KEEP")) {
    fprintf(stderr, "kept %s (CHICANE_TEST_KEEP)\n", dir);
    return 0;
  }
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

void dist_write_script(const char *home, const char *model, int iterations, char *path,
                       size_t cap) {
  char reward[1024];
  snprintf(reward, sizeof reward, "%s/%s_reward.lua", home, model);
  FILE *f = fopen(reward, "w");
  assert_non_null(f);
  /* The busy loop makes each call cost about a millisecond: a run of a few seconds, so a
  ** test can kill something while it is under way. */
  fputs("function reward_function(params)\n"
        "  local x = 0\n"
        "  for i = 1, 40000 do x = x + i % 7 end\n"
        "  if params.distance_from_center <= 0.25 * params.track_width then\n"
        "    return 1.0 + x * 0\n"
        "  end\n"
        "  return 0.1\n"
        "end\n",
        f);
  fclose(f);
  snprintf(path, cap, "%s/%s.lua", home, model);
  f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "return {\n"
          "  model = '%s', track = 'bayside', reward = '%s',\n"
          "  action_space = action_grid({-30, 0, 30}, {1.0}),\n"
          "  hyperparameters = { num_episodes_between_training = 16, num_epochs = 1 },\n"
          "  stop = { max_iterations = %d },\n"
          "  workers = 1, cars_per_worker = 2, max_steps = 200, segment_steps = 32,\n"
          "}\n",
          model, reward, iterations);
  fclose(f);
}

pid_t dist_spawn(const char *home, const char *log, const char *const *args) {
  char exe[1024], out[1024], err[1024];
  snprintf(exe, sizeof exe, "%s/chicane", CHICANE_BINARY_DIR);
  snprintf(out, sizeof out, "%s/%s.out", home, log);
  snprintf(err, sizeof err, "%s/%s.err", home, log);
  const char *argv[40];
  int n = 0;
  argv[n++] = exe;
  for (int i = 0; args[i] && n < 39; i++) argv[n++] = args[i];
  argv[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0 || chdir(home) != 0) _exit(126);
    dup2(fi, 0), dup2(fo, 1), dup2(fe, 2);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  setpgid(pid, pid); /* also here, so the group exists before anyone signals it */
  return pid;
}

void dist_kill_group(pid_t pid) {
  if (pid <= 0) return;
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

int dist_wait(pid_t pid, double seconds) {
  double end = ch_clock_now() + seconds;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    assert_int_equal(r, 0);
    if (ch_clock_now() > end) {
      dist_kill_group(pid);
      fail_msg("pid %d still running after %.0f s: killed", (int)pid, seconds);
    }
    ch_clock_sleep(0.05);
  }
}

char *dist_read_log(const char *home, const char *log, const char *which) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.%s", home, log, which);
  FILE *f = fopen(path, "rb");
  size_t cap = 4096, n = 0;
  char *s = malloc(cap);
  assert_non_null(s);
  while (f) {
    if (n + 2048 > cap) {
      cap *= 2;
      s = realloc(s, cap);
      assert_non_null(s);
    }
    size_t got = fread(s + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  if (f) fclose(f);
  s[n] = 0;
  return s;
}

/* Whether pid has exited, leaving it to be reaped by dist_wait. */
static int dist_exited(pid_t pid) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return 1;
  return info.si_pid != 0;
}

int dist_wait_for(const char *home, const char *log, const char *which, const char *text, pid_t pid,
                  double seconds) {
  double end = ch_clock_now() + seconds;
  for (;;) {
    char *s = dist_read_log(home, log, which);
    int found = strstr(s, text) != NULL;
    free(s);
    if (found) return 0;
    if (ch_clock_now() > end || dist_exited(pid)) return -1;
    ch_clock_sleep(0.02);
  }
}

/* /proc/PID/stat's parent pid; -1 when unreadable. */
static pid_t dist_parent_of(const char *pid) {
  char path[300], buf[1024];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *close_paren = strrchr(buf, ')'); /* the command name may hold spaces */
  int ppid = -1;
  char state;
  if (!close_paren || sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2) return -1;
  return (pid_t)ppid;
}

static int dist_cmdline_has(const char *pid, const char *word) {
  char path[300], buf[4096];
  snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  for (size_t i = 0; i < n; i++) /* arguments are NUL-separated */
    if (strcmp(buf + i, word) == 0)
      return 1;
    else
      i += strlen(buf + i);
  return 0;
}

int dist_worker_pids(pid_t parent, pid_t *out, int cap) {
  DIR *d = opendir("/proc");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    if (dist_parent_of(e->d_name) == parent && dist_cmdline_has(e->d_name, "worker"))
      out[n++] = (pid_t)atoi(e->d_name);
  }
  closedir(d);
  return n;
}

cJSON *dist_model_json(const char *home, const char *name, const char *extra) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s/chicane models show %s --json --home %s %s 2>/dev/null",
           CHICANE_BINARY_DIR, name, home, extra ? extra : "");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t cap = 1 << 16, n = 0;
  char *s = malloc(cap);
  assert_non_null(s);
  size_t got;
  while ((got = fread(s + n, 1, cap - n - 1, p)) > 0) {
    n += got;
    if (n + 1 == cap) {
      cap *= 2;
      s = realloc(s, cap);
      assert_non_null(s);
    }
  }
  s[n] = 0;
  int status = pclose(p);
  cJSON *j = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? cJSON_Parse(s) : NULL;
  free(s);
  return j;
}

/* sha256 of the file ROOT/KEY, or "" when it cannot be read. */
static void dist_file_sha(const char *root, const char *key, char out[65]) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", root, key);
  out[0] = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *data = malloc(len > 0 ? (size_t)len : 1);
  if (data && fread(data, 1, (size_t)len, f) == (size_t)len) ch_sha256_hex(data, (size_t)len, out);
  free(data);
  fclose(f);
}

void dist_check_checkpoints(const cJSON *model, int n, const char *sha_root, const char *suffix) {
  assert_non_null(model);
  const cJSON *cks = cJSON_GetObjectItem(model, "checkpoints");
  assert_true(cJSON_IsArray(cks));
  if (cJSON_GetArraySize(cks) != n)
    fail_msg("%d checkpoints in the catalog, expected %d", cJSON_GetArraySize(cks), n);
  int seen[256] = {0};
  const cJSON *c;
  cJSON_ArrayForEach(c, cks) {
    int it = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(c, "iteration"));
    assert_true(it >= 0 && it < n && it < 256);
    assert_int_equal(seen[it]++, 0);
    const cJSON *m = cJSON_GetObjectItem(c, "metrics");
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(m, "episodes")) >= 16);
    if (!sha_root) continue;
    const char *key = cJSON_GetStringValue(cJSON_GetObjectItem(c, "storage_key"));
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(c, "sha256"));
    assert_non_null(key);
    assert_non_null(want);
    char got[65];
    char object[1024];
    snprintf(object, sizeof object, "%s%s", key, suffix ? suffix : "");
    dist_file_sha(sha_root, object, got);
    if (strcmp(got, want) != 0)
      fail_msg("checkpoint %s: stored sha256 '%s', catalog says %s", key, got, want);
  }
}

double dist_metric_sum(const cJSON *model, const char *key) {
  double sum = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(model, "checkpoints")) {
    sum += cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "metrics"), key));
  }
  return sum;
}

int dist_unused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd); /* closed, so nothing listens there (a race with other programs is unlikely) */
  return ntohs(a.sin_port);
}

int dist_start_redis(struct ch_test_server *redis) {
  int rc = ch_test_redis_start(redis, NULL);
  if (rc == -1)
    fprintf(stderr, "\n*** SKIPPED: redis-server is not installed: distributed tests need it\n");
  return rc == 0 ? 1 : rc == -1 ? 0 : -1;
}
