/* procs.h -- local worker processes for `chicane train --workers N`, kept alive by the trainer. */
#ifndef CHICANE_PROCS_H
#define CHICANE_PROCS_H

#include <chicane/plugin.h>
#include <sys/types.h>

#define CH_SPAWN_MAX 64

typedef struct ch_workers {
  int n;
  pid_t pid[CH_SPAWN_MAX];
  int restarts[CH_SPAWN_MAX];
  char *argv[16]; /* the worker command line, shared by all; the --id value is per worker */
  char id_arg[CH_SPAWN_MAX][16];
  char parent_arg[24]; /* the trainer's pid: workers leave when it dies (--parent) */
} ch_workers;

/* Start n copies of `exe worker --buffer B --storage S --model M --id ID --quiet`. */
int ch_workers_start(ch_workers *w, int n, const char *exe, const char *buffer, const char *storage,
                     const char *model, ch_error *err);

/* Reap workers that exited and start them again (a worker killed mid-segment costs only that
** segment); returns how many were restarted. Gives up on a worker after 20 restarts. */
int ch_workers_supervise(ch_workers *w);

/* SIGTERM every worker, wait up to 5 s, then SIGKILL the rest. */
void ch_workers_stop(ch_workers *w);

#endif
