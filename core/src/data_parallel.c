/* data_parallel.c -- one minibatch split over network replicas on several cores. */
#include "data_parallel.h"

#include "clock.h"
#include "log.h"

#include <chicane/plugin_util.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* How long a replica thread polls for the next job before it sleeps: longer than the gap
** between two minibatches (loss and optimizer step), far shorter than the gap between two
** updates (a rollout). Sleeping and waking cost tens of microseconds on a virtual machine. */
#define CH__SPIN_NS 1000000
/* How long the main thread polls for the replicas before it starts yielding its core. */
#define CH__WAIT_NS 200000

enum { CH__JOB_FORWARD = 1, CH__JOB_BACKWARD, CH__JOB_STOP };

typedef struct ch__replica {
  ch_dp *dp;
  int index; /* 1..threads-1: its rows are the index-th share */
  ch_net net;
  float *grads;
  int has_rows; /* whether the last forward gave it any rows */
  pthread_t thread;
  int started;
  int rc;
  ch_error err;
} ch__replica;

struct ch_dp {
  ch_net *main;
  int threads;
  ch__replica *rep; /* threads - 1 of them */
  float *params;    /* the main network's parameters, copied out before each forward */
  uint64_t count;   /* parameters */

  /* The job: written by the main thread before it bumps gen, read by replicas after. */
  int job;
  uint32_t m, share;
  const float *input, *dpolicy, *dvalue;
  float *policy, *value;

  atomic_uint gen;    /* bumped once per job */
  atomic_int pending; /* replicas not yet done with the job */
  pthread_mutex_t mu; /* with cv: where replicas sleep between updates */
  pthread_cond_t cv;
  atomic_int sleepers;
};

/* Rows [lo, hi) of share k. */
static void ch__rows(const ch_dp *dp, int k, uint32_t *lo, uint32_t *hi) {
  uint64_t a = (uint64_t)k * dp->share, b = a + dp->share;
  *lo = (uint32_t)(a < dp->m ? a : dp->m);
  *hi = (uint32_t)(b < dp->m ? b : dp->m);
}

static int ch__forward_rows(ch_dp *dp, ch_net *n, int k, ch_error *err) {
  uint32_t lo, hi, P = n->spec.policy_size;
  ch__rows(dp, k, &lo, &hi);
  if (lo == hi) return CH_OK;
  return n->vt->forward(n->h, dp->input + (size_t)lo * n->spec.input_size, hi - lo,
                        dp->policy ? dp->policy + (size_t)lo * P : NULL,
                        dp->value ? dp->value + lo : NULL, err);
}

static int ch__backward_rows(ch_dp *dp, ch_net *n, int k, ch_error *err) {
  uint32_t lo, hi, P = n->spec.policy_size;
  ch__rows(dp, k, &lo, &hi);
  if (lo == hi) return CH_OK;
  return n->vt->backward(n->h, dp->dpolicy ? dp->dpolicy + (size_t)lo * P : NULL,
                         dp->dvalue ? dp->dvalue + lo : NULL, err);
}

/* A replica's part of the job: its rows, with the main network's parameters. */
static int ch__replica_job(ch__replica *r, int job) {
  ch_dp *dp = r->dp;
  ch_net *n = &r->net;
  uint32_t lo, hi;
  ch__rows(dp, r->index, &lo, &hi);
  if (job == CH__JOB_FORWARD) {
    r->has_rows = lo < hi;
    if (!r->has_rows) return CH_OK;
    int rc = n->vt->set_params(n->h, dp->params, dp->count, &r->err);
    return rc == CH_OK ? ch__forward_rows(dp, n, r->index, &r->err) : rc;
  }
  if (!r->has_rows) return CH_OK;
  n->vt->zero_grad(n->h);
  int rc = ch__backward_rows(dp, n, r->index, &r->err);
  if (rc == CH_OK && n->vt->get_grads(n->h, r->grads, dp->count) != CH_OK)
    rc = ch_error_set(&r->err, CH_EINVAL, "replica %d: get_grads failed", r->index);
  return rc;
}

/* Wait for a job newer than seen: spin first, then sleep. Returns the job's number. */
static unsigned ch__wait_job(ch_dp *dp, unsigned seen) {
  long long start = ch_clock_ns();
  for (int i = 1;; i++) {
    unsigned g = atomic_load_explicit(&dp->gen, memory_order_acquire);
    if (g != seen) return g;
    if (i % 256 == 0 && ch_clock_ns() - start > CH__SPIN_NS) break;
  }
  pthread_mutex_lock(&dp->mu);
  atomic_fetch_add(&dp->sleepers, 1);
  unsigned g;
  while ((g = atomic_load(&dp->gen)) == seen) pthread_cond_wait(&dp->cv, &dp->mu);
  atomic_fetch_sub(&dp->sleepers, 1);
  pthread_mutex_unlock(&dp->mu);
  return g;
}

static void *ch__replica_main(void *arg) {
  ch__replica *r = arg;
  ch_dp *dp = r->dp;
  unsigned seen = 0;
  for (;;) {
    seen = ch__wait_job(dp, seen);
    int job = dp->job;
    if (job == CH__JOB_STOP) return NULL;
    r->rc = ch__replica_job(r, job);
    atomic_fetch_sub_explicit(&dp->pending, 1, memory_order_release);
  }
}

/* Hand the job to every replica. A replica going to sleep counts itself in sleepers before it
** looks at gen again (both sequentially consistent), so either it sees the new job or this
** sees it sleeping; then it holds the mutex until it is in cond_wait, and the broadcast, made
** under the mutex, wakes it. */
static void ch__post(ch_dp *dp, int job) {
  dp->job = job;
  atomic_store_explicit(&dp->pending, dp->threads - 1, memory_order_relaxed);
  atomic_fetch_add(&dp->gen, 1);
  if (atomic_load(&dp->sleepers) == 0) return; /* the usual case within an update */
  pthread_mutex_lock(&dp->mu);
  pthread_cond_broadcast(&dp->cv);
  pthread_mutex_unlock(&dp->mu);
}

/* Wait for the replicas; the first failure is the result. */
static int ch__join_job(ch_dp *dp, ch_error *err) {
  long long start = ch_clock_ns();
  int yield = 0;
  for (int i = 1; atomic_load_explicit(&dp->pending, memory_order_acquire) > 0; i++) {
    if (yield)
      sched_yield();
    else if (i % 256 == 0)
      yield = ch_clock_ns() - start > CH__WAIT_NS;
  }
  for (int k = 0; k < dp->threads - 1; k++)
    if (dp->rep[k].rc != CH_OK) {
      if (err) *err = dp->rep[k].err;
      return dp->rep[k].rc;
    }
  return CH_OK;
}

int ch_dp_forward(ch_dp *dp, const float *input, uint32_t m, float *policy, float *value,
                  ch_error *err) {
  ch_net *n = dp->main;
  if (n->vt->get_params(n->h, dp->params, dp->count) != CH_OK)
    return ch_error_set(err, CH_EINVAL, "data parallel: get_params failed");
  dp->m = m;
  dp->share = (m + (uint32_t)dp->threads - 1) / (uint32_t)dp->threads;
  dp->input = input, dp->policy = policy, dp->value = value;
  ch__post(dp, CH__JOB_FORWARD);
  int rc = ch__forward_rows(dp, n, 0, err);
  int rc2 = ch__join_job(dp, rc == CH_OK ? err : NULL);
  return rc != CH_OK ? rc : rc2;
}

int ch_dp_backward(ch_dp *dp, const float *dpolicy, const float *dvalue, ch_error *err) {
  ch_net *n = dp->main;
  dp->dpolicy = dpolicy, dp->dvalue = dvalue;
  ch__post(dp, CH__JOB_BACKWARD);
  int rc = ch__backward_rows(dp, n, 0, err);
  int rc2 = ch__join_job(dp, rc == CH_OK ? err : NULL);
  if (rc == CH_OK) rc = rc2;
  for (int k = 0; rc == CH_OK && k < dp->threads - 1; k++)
    if (dp->rep[k].has_rows) rc = n->vt->add_grads(n->h, dp->rep[k].grads, dp->count, err);
  return rc;
}

void ch_dp_destroy(ch_dp *dp) {
  if (!dp) return;
  int started = 0;
  for (int k = 0; k < dp->threads - 1; k++) started += dp->rep[k].started;
  if (started) {
    /* every started replica is waiting for a job (ch_dp calls are synchronous) */
    ch__post(dp, CH__JOB_STOP);
    for (int k = 0; k < dp->threads - 1; k++)
      if (dp->rep[k].started) pthread_join(dp->rep[k].thread, NULL);
  }
  for (int k = 0; k < dp->threads - 1; k++) {
    ch_net_destroy(&dp->rep[k].net);
    free(dp->rep[k].grads);
  }
  pthread_cond_destroy(&dp->cv);
  pthread_mutex_destroy(&dp->mu);
  free(dp->rep);
  free(dp->params);
  free(dp);
}

static int ch__replica_init(ch_dp *dp, ch__replica *r, int index, const char *net_json,
                            ch_error *err) {
  *r = (ch__replica){.dp = dp, .index = index, .rc = CH_OK};
  r->net.vt = dp->main->vt;
  int rc = r->net.vt->create(net_json, ch_host(), &r->net.h, err);
  if (rc != CH_OK) return rc;
  r->net.vt->spec(r->net.h, &r->net.spec);
  if (r->net.spec.param_count != dp->count)
    return ch_error_set(err, CH_EINVAL, "data parallel: a replica has %llu parameters, not %llu",
                        (unsigned long long)r->net.spec.param_count, (unsigned long long)dp->count);
  r->grads = malloc(sizeof(float) * dp->count);
  if (!r->grads) return ch_error_set(err, CH_ENOMEM, "data parallel: out of memory");
  if (pthread_create(&r->thread, NULL, ch__replica_main, r) != 0)
    return ch_error_set(err, CH_ENOMEM, "data parallel: cannot start a thread");
  r->started = 1;
  return CH_OK;
}

int ch_dp_create(ch_net *main, const char *net_json, int threads, ch_dp **out, ch_error *err) {
  *out = NULL;
  if (threads < 2) return ch_error_set(err, CH_EINVAL, "data parallel: needs 2 or more threads");
  if (!ch_net_has_add_grads(main))
    return ch_error_set(err, CH_EUNSUPPORTED, "network plugin '%s' has no add_grads",
                        main->vt->header.name);
  ch_dp *dp = calloc(1, sizeof *dp);
  if (!dp) return ch_error_set(err, CH_ENOMEM, "data parallel: out of memory");
  dp->main = main;
  dp->count = main->spec.param_count;
  pthread_mutex_init(&dp->mu, NULL);
  pthread_cond_init(&dp->cv, NULL);
  dp->rep = calloc((size_t)threads - 1, sizeof *dp->rep);
  dp->params = malloc(sizeof(float) * dp->count);
  int rc =
      dp->rep && dp->params ? CH_OK : ch_error_set(err, CH_ENOMEM, "data parallel: out of memory");
  /* threads counts the replicas made so far, so destroy releases exactly those */
  dp->threads = 1;
  for (int k = 0; rc == CH_OK && k < threads - 1; k++) {
    dp->threads = k + 2;
    rc = ch__replica_init(dp, &dp->rep[k], k + 1, net_json, err);
  }
  if (rc != CH_OK) {
    ch_dp_destroy(dp);
    return rc;
  }
  *out = dp;
  return CH_OK;
}
