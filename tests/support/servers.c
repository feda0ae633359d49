/* servers.c -- tests: start real redis-server and s3rver processes on free loopback ports. */

#define _XOPEN_SOURCE 700 /* nftw, to remove a server's directory */

#include "servers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVER_REDIS      1
#define SERVER_S3RVER     2
#define SERVER_READY_MS   10000 /* how long a server may take to accept connections */
#define SERVER_PORT_TRIES 3     /* another process may take the free port before the server */
#define SERVER_MAX_ARGS   24
#define SERVER_LOG_TAIL   2000

static void ch__sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* An executable named `name` on PATH, else `fallback` if that is executable. */
static int ch__find_program(const char *name, const char *fallback, char *out, size_t cap) {
  const char *path = getenv("PATH");
  while (path && *path) {
    const char *colon = strchr(path, ':');
    size_t n = colon ? (size_t)(colon - path) : strlen(path);
    snprintf(out, cap, "%.*s/%s", (int)n, path, name);
    if (n > 0 && access(out, X_OK) == 0) return 0;
    path = colon ? colon + 1 : NULL;
  }
  if (fallback && access(fallback, X_OK) == 0) {
    snprintf(out, cap, "%s", fallback);
    return 0;
  }
  return -1;
}

/* A port nobody listens on right now: bind port 0, read the number back, let it go. */
static int ch__free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

static int ch__accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

static int ch__connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
  close(fd);
  return -1;
}

/* Accepting connections is not enough for redis: a restarted server answers LOADING until it
** has read its AOF back. Ready means PING (after AUTH) answers +PONG. */
static int ch__redis_ready(const ch_test_server *s) {
  int fd = ch__connect(s->port);
  if (fd < 0) return 0;
  char req[512];
  int n = 0, lines = 1;
  if (s->param[0]) {
    n = snprintf(req, sizeof req, "*2\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n", strlen(s->param), s->param);
    lines = 2;
  }
  n += snprintf(req + n, sizeof req - (size_t)n, "*1\r\n$4\r\nPING\r\n");
  char reply[512] = "";
  size_t got = 0;
  if (write(fd, req, (size_t)n) == n) {
    for (int seen = 0; seen < lines && got < sizeof reply - 1;) {
      ssize_t k = read(fd, reply + got, sizeof reply - 1 - got);
      if (k <= 0) break;
      for (ssize_t i = 0; i < k; i++) seen += reply[got + (size_t)i] == '\n';
      got += (size_t)k;
      reply[got] = '\0';
    }
  }
  close(fd);
  return strstr(reply, "+PONG") != NULL;
}

static void ch__print_log_tail(const ch_test_server *s) {
  char path[600];
  snprintf(path, sizeof path, "%s/server.log", s->dir);
  FILE *fp = fopen(path, "rb");
  if (!fp) return;
  char buf[SERVER_LOG_TAIL + 1];
  if (fseek(fp, 0, SEEK_END) == 0) {
    long size = ftell(fp);
    fseek(fp, size > SERVER_LOG_TAIL ? size - SERVER_LOG_TAIL : 0, SEEK_SET);
  }
  size_t n = fread(buf, 1, SERVER_LOG_TAIL, fp);
  buf[n] = '\0';
  fclose(fp);
  fprintf(stderr, "---- %s (tail) ----\n%s\n----\n", path, buf);
}

extern char **environ;

/* Only async-signal-safe calls between fork and exec: the test may have threads. */
static void ch__exec_child(const char *const *argv, char **env, const char *log, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(126); /* the parent died before prctl took effect */
  int null = open("/dev/null", O_RDONLY);
  int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (null >= 0) dup2(null, 0);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  execve(argv[0], (char *const *)argv, env);
  _exit(127);
}

/* The environment plus `extra` (NULL: none), built before fork; free with free(). */
static char **ch__environment(const char *extra) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = malloc((n + 2) * sizeof *env);
  if (!env) return NULL;
  size_t k = 0, len = extra ? strcspn(extra, "=") + 1 : 0;
  for (size_t i = 0; i < n; i++)
    if (!extra || strncmp(environ[i], extra, len) != 0) env[k++] = environ[i];
  if (extra) env[k++] = (char *)extra;
  env[k] = NULL;
  return env;
}

static int ch__spawn(const char *const *argv, const char *env_extra, const char *dir) {
  char log[600];
  snprintf(log, sizeof log, "%s/server.log", dir);
  char **env = ch__environment(env_extra);
  if (!env) return -1;
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) ch__exec_child(argv, env, log, parent);
  free(env);
  return pid;
}

/* Wait until the server accepts a connection; 0, or -2 if it exited or never got ready. */
static int ch__wait_ready(ch_test_server *s) {
  for (int waited = 0; waited < SERVER_READY_MS; waited += 20) {
    int status;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      s->pid = 0;
      return -2;
    }
    if (ch__accepts(s->port) && (s->kind != SERVER_REDIS || ch__redis_ready(s))) return 0;
    ch__sleep_ms(20);
  }
  fprintf(stderr, "server pid %d did not accept on port %d within %d ms\n", s->pid, s->port,
          SERVER_READY_MS);
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  s->pid = 0;
  return -2;
}

static int ch__redis_argv(const ch_test_server *s, const char **argv, char *prog, size_t cap,
                          char *port) {
  if (ch__find_program("redis-server", "/usr/bin/redis-server", prog, cap) != 0) return -1;
  snprintf(port, 16, "%d", s->port);
  int n = 0;
  const char *fixed[] = {prog,    "--port",        port,     "--bind", "127.0.0.1",
                         "--dir", s->dir,          "--save", "",       "--appendonly",
                         "yes",   "--appendfsync", "always"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[n++] = fixed[i];
  if (s->param[0]) {
    argv[n++] = "--requirepass";
    argv[n++] = s->param;
  }
  argv[n] = NULL;
  return 0;
}

static int ch__s3rver_argv(const ch_test_server *s, const char **argv, char *prog, size_t cap,
                           char *port) {
  char node[512];
  /* .bin/s3rver is a "#!/usr/bin/env node" script, so node must be on PATH as well. */
  if (ch__find_program("node", NULL, node, sizeof node) != 0) return -1;
  snprintf(prog, cap, "%s/node_modules/.bin/s3rver", CHICANE_SOURCE_DIR);
  if (access(prog, X_OK) != 0) return -1;
  snprintf(port, 16, "%d", s->port);
  const char *fixed[] = {
      prog,     "-d", s->dir, "-a", "127.0.0.1", "-p", port, "--silent", "--configure-bucket",
      s->param, NULL};
  memcpy(argv, fixed, sizeof fixed);
  return 0;
}

/* Run the server described by s (kind, port, dir, param); 0, -1 (not installed) or -2. */
static int ch__run(ch_test_server *s) {
  const char *argv[SERVER_MAX_ARGS];
  char prog[600], port[16];
  int rc = s->kind == SERVER_REDIS ? ch__redis_argv(s, argv, prog, sizeof prog, port)
                                   : ch__s3rver_argv(s, argv, prog, sizeof prog, port);
  if (rc != 0) return rc;
  /* s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 only has in its legacy
  ** provider: without it, a listing of more than one page fails with HTTP 500. */
  const char *env = s->kind == SERVER_S3RVER ? "NODE_OPTIONS=--openssl-legacy-provider" : NULL;
  pid_t pid = ch__spawn(argv, env, s->dir);
  if (pid < 0) {
    fprintf(stderr, "fork for %s: %s\n", prog, strerror(errno));
    return -2;
  }
  s->pid = (int)pid;
  return ch__wait_ready(s);
}

static int ch__rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void ch__rm_rf(const char *dir) {
  if (dir[0]) nftw(dir, ch__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int ch__make_dir(ch_test_server *s, const char *what) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !tmp[0]) tmp = "/tmp";
  snprintf(s->dir, sizeof s->dir, "%s/chicane-%s-XXXXXX", tmp, what);
  if (mkdtemp(s->dir)) return 0;
  fprintf(stderr, "mkdtemp %s: %s\n", s->dir, strerror(errno));
  s->dir[0] = '\0';
  return -2;
}

/* Percent-encode a password for the userinfo of a URL. */
static void ch__encode(const char *in, char *out, size_t cap) {
  size_t n = 0;
  for (const unsigned char *c = (const unsigned char *)in; *c && n + 4 < cap; c++) {
    if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
        strchr("-._~", *c))
      out[n++] = (char)*c;
    else
      n += (size_t)snprintf(out + n, cap - n, "%%%02X", *c);
  }
  out[n] = '\0';
}

static void ch__set_url(ch_test_server *s) {
  char pw[3 * sizeof s->param];
  ch__encode(s->param, pw, sizeof pw);
  if (s->kind == SERVER_S3RVER)
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
  else if (s->param[0])
    snprintf(s->url, sizeof s->url, "redis://:%s@127.0.0.1:%d", pw, s->port);
  else
    snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
}

static int ch__start(ch_test_server *out, int kind, const char *param, const char *what) {
  ch_test_server s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  snprintf(s.param, sizeof s.param, "%s", param ? param : "");
  for (int attempt = 0; attempt < SERVER_PORT_TRIES; attempt++) {
    if (ch__make_dir(&s, what) != 0) return -2;
    s.port = ch__free_port();
    int rc = s.port > 0 ? ch__run(&s) : -2;
    if (rc == 0) {
      ch__set_url(&s);
      *out = s;
      return 0;
    }
    if (rc == -2) ch__print_log_tail(&s);
    ch__rm_rf(s.dir);
    if (rc == -1) return -1;
  }
  fprintf(stderr, "%s would not start after %d attempts\n", what, SERVER_PORT_TRIES);
  return -2;
}

int ch_test_redis_start(ch_test_server *s, const char *password) {
  return ch__start(s, SERVER_REDIS, password, "redis");
}

int ch_test_s3rver_start(ch_test_server *s, const char *bucket) {
  return ch__start(s, SERVER_S3RVER, bucket ? bucket : "chicane", "s3rver");
}

static void ch__signal_wait(ch_test_server *s, int sig) {
  if (s->pid <= 0) return;
  kill(s->pid, sig);
  while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
  }
  s->pid = 0;
}

void ch_test_server_stop(ch_test_server *s) {
  ch__signal_wait(s, SIGTERM);
  ch__rm_rf(s->dir);
  s->dir[0] = '\0';
}

void ch_test_server_kill(ch_test_server *s) {
  ch__signal_wait(s, SIGKILL);
}

int ch_test_server_restart(ch_test_server *s) {
  ch__signal_wait(s, SIGKILL);
  /* The old listener is gone, but give a lingering accept queue a moment to drain. */
  for (int i = 0; i < 50 && ch__accepts(s->port); i++) ch__sleep_ms(20);
  int rc = ch__run(s);
  if (rc != 0) ch__print_log_tail(s);
  return rc;
}
