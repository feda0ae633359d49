/* procs.c -- starts, restarts and stops local worker processes with posix_spawn. */
#include "procs.h"

#include "log.h"

#include <chicane/plugin_util.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CH__MAX_RESTARTS 20

static int ch__spawn_one(ch_workers *w, int i) {
  char *argv[18];
  int k = 0;
  for (; w->argv[k]; k++) argv[k] = w->argv[k];
  argv[k++] = "--id";
  argv[k++] = w->id_arg[i];
  argv[k++] = "--parent"; /* a worker whose trainer dies leaves with it */
  argv[k++] = w->parent_arg;
  argv[k] = NULL;
  int rc = posix_spawn(&w->pid[i], argv[0], NULL, NULL, argv, environ);
  if (rc != 0) w->pid[i] = 0;
  return rc;
}

int ch_workers_start(ch_workers *w, int n, const char *exe, const char *buffer, const char *storage,
                     const char *model, ch_error *err) {
  memset(w, 0, sizeof *w);
  if (n < 1 || n > CH_SPAWN_MAX)
    return ch_error_set(err, CH_ERANGE, "--workers %d: between 1 and %d", n, CH_SPAWN_MAX);
  const char *args[] = {exe,     "worker",  "--buffer", buffer,   "--storage",
                        storage, "--model", model,      "--quiet"};
  for (size_t k = 0; k < sizeof args / sizeof args[0]; k++) w->argv[k] = (char *)args[k];
  w->n = n;
  snprintf(w->parent_arg, sizeof w->parent_arg, "%ld", (long)getpid());
  for (int i = 0; i < n; i++) {
    /* ids far apart from in-process thread ids; unique per worker slot */
    snprintf(w->id_arg[i], sizeof w->id_arg[i], "%d", 1000 + i);
    int rc = ch__spawn_one(w, i);
    if (rc != 0) {
      w->n = i;
      ch_workers_stop(w);
      return ch_error_set(err, CH_EIO, "cannot start worker process %s: %s", exe, strerror(rc));
    }
  }
  return CH_OK;
}

int ch_workers_supervise(ch_workers *w) {
  int restarted = 0;
  for (int i = 0; i < w->n; i++) {
    int status;
    if (w->pid[i] <= 0 || waitpid(w->pid[i], &status, WNOHANG) != w->pid[i]) continue;
    if (WIFSIGNALED(status))
      ch_log(CH_LOG_WARN, "trainer", "worker %d (pid %d) was killed by signal %d", i,
             (int)w->pid[i], WTERMSIG(status));
    else
      ch_log(CH_LOG_WARN, "trainer", "worker %d (pid %d) exited with status %d", i, (int)w->pid[i],
             WEXITSTATUS(status));
    w->pid[i] = 0;
    if (w->restarts[i]++ >= CH__MAX_RESTARTS) continue;
    if (ch__spawn_one(w, i) == 0) {
      restarted++;
      ch_log(CH_LOG_INFO, "trainer", "worker %d restarted as pid %d", i, (int)w->pid[i]);
    }
  }
  return restarted;
}

void ch_workers_stop(ch_workers *w) {
  for (int i = 0; i < w->n; i++)
    if (w->pid[i] > 0) kill(w->pid[i], SIGTERM);
  for (int tries = 0; tries < 50; tries++) {
    int alive = 0;
    for (int i = 0; i < w->n; i++) {
      if (w->pid[i] <= 0) continue;
      pid_t r = waitpid(w->pid[i], NULL, WNOHANG);
      if (r == w->pid[i] || (r < 0 && errno == ECHILD))
        w->pid[i] = 0;
      else
        alive++;
    }
    if (!alive) return;
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < w->n; i++)
    if (w->pid[i] > 0) {
      kill(w->pid[i], SIGKILL);
      waitpid(w->pid[i], NULL, 0);
      w->pid[i] = 0;
    }
}
