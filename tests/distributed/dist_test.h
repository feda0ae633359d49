/* dist_test.h -- distributed tests: run the real chicane trainer and workers on real servers. */
#ifndef CHICANE_DIST_TEST_H
#define CHICANE_DIST_TEST_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

/*
** Every process these helpers start runs in its own process group (the trainer and the
** workers it spawns), in the test's home directory, with stdout and stderr in files there,
** and is killed with SIGKILL if the test dies (PR_SET_PDEATHSIG). dist_kill_group ends a
** trainer together with its workers, as a crashed machine would.
*/

/* A fresh temporary directory (the models' home) into dir. */
void dist_make_home(char *dir, size_t cap);

/* Remove the home directory, or keep it (and say where) when CHICANE_TEST_KEEP is set, to
** read the runs' logs. 0, or -1 when it could not be removed. */
int dist_remove_home(const char *dir);

/* Write HOME/MODEL.lua: a small PPO run of `iterations` iterations (16 episodes each, two cars
** per worker) whose reward function spends about a millisecond per call, so that a run lasts
** long enough to be interrupted. path gets the script's path. */
void dist_write_script(const char *home, const char *model, int iterations, char *path, size_t cap);

/* Start CHICANE_BINARY_DIR/chicane with args (NULL-terminated) in home; its output goes to
** HOME/LOG.out and HOME/LOG.err. */
pid_t dist_spawn(const char *home, const char *log, const char *const *args);

/* Wait for pid to exit, at most `seconds` (then its group is killed and the test fails).
** The exit status, or 128 + the signal that ended it. */
int dist_wait(pid_t pid, double seconds);

/* SIGKILL pid's whole process group and reap pid. */
void dist_kill_group(pid_t pid);

/* Wait until HOME/LOG.out or .err (which: "out"/"err") holds text; 0 once it does, -1 when
** pid exited first or `seconds` passed. */
int dist_wait_for(const char *home, const char *log, const char *which, const char *text, pid_t pid,
                  double seconds);

/* The whole of HOME/LOG.WHICH as a string (free it); "" when missing. */
char *dist_read_log(const char *home, const char *log, const char *which);

/* The pids of pid's children whose command line has the word "worker"; how many. */
int dist_worker_pids(pid_t parent, pid_t *out, int cap);

/* `chicane models show NAME --json` (with extra options, e.g. "--storage s3://..."), parsed;
** NULL when the command fails. */
cJSON *dist_model_json(const char *home, const char *name, const char *extra);

/* Checks of a model's catalog record: its checkpoints are iterations 0..n-1, each once, and
** (sha_root not NULL) every stored object, the file SHA_ROOT/KEY+SUFFIX, has the catalog's
** sha256: the local storage directory, or s3rver's bucket directory and "._S3rver_object".
** Fails the test otherwise. */
void dist_check_checkpoints(const cJSON *model, int n, const char *sha_root, const char *suffix);

/* The sum of the metric `key` over every checkpoint of the model. */
double dist_metric_sum(const cJSON *model, const char *key);

/* A loopback port that nothing listens on. */
int dist_unused_port(void);

/* Start the redis-server every distributed test needs: 1 when it runs, 0 when it is not
** installed (said loudly: the tests skip), -1 when it would not start. */
struct ch_test_server;
int dist_start_redis(struct ch_test_server *redis);

#endif
