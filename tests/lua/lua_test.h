/* lua_test.h -- helpers of the Lua front-end tests: temp dirs, files, running commands, a pty. */
#ifndef CH_LUA_TEST_H
#define CH_LUA_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LT_CHICANE CHICANE_BINARY_DIR "/chicane"
#define LT_OUT_MAX (1 << 20)

/* Fail unless text contains part, printing both. */
#define lt_assert_contains(text, part)                                                             \
  do {                                                                                             \
    const char *lt__t = (text), *lt__p = (part);                                                   \
    if (!strstr(lt__t, lt__p)) fail_msg("output does not contain \"%s\":\n%s", lt__p, lt__t);      \
  } while (0)

#define lt_assert_not_contains(text, part)                                                         \
  do {                                                                                             \
    const char *lt__t = (text), *lt__p = (part);                                                   \
    if (strstr(lt__t, lt__p))                                                                      \
      fail_msg("output contains \"%s\" but should not:\n%s", lt__p, lt__t);                        \
  } while (0)

/* A fresh directory under $TMPDIR (or /tmp). */
static inline void lt_mkdtemp(char *out, size_t n, const char *tag) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, n, "%s/chicane-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", tag);
  if (!mkdtemp(out)) fail_msg("mkdtemp(%s) failed", out);
}

static inline void lt_rmdir(const char *dir) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* Write text to dir/name; path (if not NULL) gets the file's path. */
static inline void lt_write(const char *dir, const char *name, const char *text, char *path,
                            size_t n) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (!f) fail_msg("cannot write %s", p);
  fputs(text, f);
  fclose(f);
  if (path) snprintf(path, n, "%s", p);
}

/* The whole of a file (malloc'd, NUL-terminated), or NULL. */
static inline char *lt_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(LT_OUT_MAX + 1);
  size_t n = buf ? fread(buf, 1, LT_OUT_MAX, f) : 0;
  fclose(f);
  if (buf) buf[n] = '\0';
  return buf;
}

/* Run a shell command with input on stdin (NULL: none), stdout and stderr both into *out
** (malloc'd). Returns the exit status (128 + signal when killed). */
static inline int lt_sh(const char *dir, const char *command, const char *input, char **out) {
  char in[1024], res[1024], cmd[8192];
  snprintf(in, sizeof in, "%s/.stdin", dir);
  snprintf(res, sizeof res, "%s/.stdout", dir);
  FILE *f = fopen(in, "w");
  if (!f) fail_msg("cannot write %s", in);
  fputs(input ? input : "", f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s < '%s' > '%s' 2>&1", command, in, res);
  int st = system(cmd);
  *out = lt_read(res);
  if (!*out) fail_msg("no output file for: %s", command);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ------------------------------------------------------------------ a pseudo-terminal */

typedef struct lt_pty {
  int fd;
  pid_t pid;
  char *out; /* everything read so far, NUL-terminated */
  size_t n, seen;
} lt_pty;

/* Start argv (execv) on a new pseudo-terminal of 80 columns, with env added to environ. */
static inline void lt_pty_start(lt_pty *t, char *const argv[], const char *const env[]) {
  struct winsize ws = {24, 80, 0, 0};
  memset(t, 0, sizeof *t);
  t->out = calloc(1, LT_OUT_MAX + 1);
  assert_non_null(t->out);
  t->pid = forkpty(&t->fd, NULL, NULL, &ws);
  if (t->pid < 0) fail_msg("forkpty: %s", strerror(errno));
  if (t->pid == 0) {
    for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
    execv(argv[0], argv);
    _exit(127);
  }
}

/* Read what is available within ms milliseconds, without bells; returns 0 at the end of the
** output. */
static inline int lt_pty_read(lt_pty *t, int ms) {
  struct pollfd p = {t->fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return 1;
  char buf[4096];
  ssize_t k = read(t->fd, buf, sizeof buf);
  if (k <= 0) return 0;
  for (ssize_t i = 0; i < k && t->n < LT_OUT_MAX; i++)
    if (buf[i] != '\a') t->out[t->n++] = buf[i]; /* the bell of an ambiguous TAB */
  t->out[t->n] = '\0';
  return 1;
}

/* Wait until the output after the last expectation contains text. The limit only keeps a
** broken build from hanging the suite; nothing is measured. */
static inline void lt_pty_expect(lt_pty *t, const char *text) {
  time_t give_up = time(NULL) + 120;
  char *at;
  while (!(at = strstr(t->out + t->seen, text))) {
    if (time(NULL) > give_up || !lt_pty_read(t, 200))
      fail_msg("terminal output never showed \"%s\"; it was:\n%s", text, t->out);
  }
  t->seen = (size_t)(at - t->out) + strlen(text);
}

static inline void lt_pty_type(lt_pty *t, const char *keys) {
  size_t n = strlen(keys);
  if (write(t->fd, keys, n) != (ssize_t)n) fail_msg("write to the terminal failed");
}

/* Read to the end (the terminal closes when the program exits) and reap the program;
** returns its exit status. */
static inline int lt_pty_finish(lt_pty *t) {
  time_t give_up = time(NULL) + 120;
  while (lt_pty_read(t, 200)) {
    if (time(NULL) > give_up) {
      kill(t->pid, SIGKILL);
      fail_msg("the program on the terminal did not end; output:\n%s", t->out);
    }
  }
  int st;
  waitpid(t->pid, &st, 0);
  close(t->fd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
