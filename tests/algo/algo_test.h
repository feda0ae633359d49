/* algo_test.h -- helpers the algorithm tests share: checked calls, mlp networks, statistics. */
#ifndef CH_ALGO_TEST_H
#define CH_ALGO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "plugin_open.h"
#include "rng.h"
#include "runtime.h"

#include <chicane/plugin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fail with the callee's message when rc is not CH_OK. */
#define algo_check(rc, err)                                                                        \
  do {                                                                                             \
    int algo__rc = (rc);                                                                           \
    if (algo__rc != CH_OK) fail_msg("%s -> %d: %s", #rc, algo__rc, (err).message);                 \
  } while (0)

/* Fail unless rc is want and the message contains part, printing all of it. */
#define algo_expect(rc, want, err, part)                                                           \
  do {                                                                                             \
    int algo__rc = (rc);                                                                           \
    if (algo__rc != (want))                                                                        \
      fail_msg("%s -> %d, expected %d; message: %s", #rc, algo__rc, (want), (err).message);        \
    if (!strstr((err).message, (part)))                                                            \
      fail_msg("%s: message \"%s\" does not contain \"%s\"", #rc, (err).message, (part));          \
  } while (0)

/* Fail unless |got - want| <= tol, printing both. */
#define algo_near(got, want, tol)                                                                  \
  do {                                                                                             \
    double algo__g = (got), algo__w = (want);                                                      \
    if (!(fabs(algo__g - algo__w) <= (tol)))                                                       \
      fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #got, algo__g, algo__w,                \
               (double)(tol));                                                                     \
  } while (0)

/* A network of the mlp plugin, opened with dlopen as a third party would. */
static inline void algo_net(ch_net *n, const char *json) {
  ch_error err = {0, ""};
  n->vt = test_plugin_open("network_mlp.so");
  n->h = NULL;
  int rc = n->vt->create(json, &test_host, &n->h, &err);
  if (rc != CH_OK) fail_msg("mlp create %s -> %d: %s", json, rc, err.message);
  n->vt->spec(n->h, &n->spec);
}

static inline void algo_net_free(ch_net *n) {
  if (n->h) n->vt->destroy(n->h);
  n->h = NULL;
}

/* The network's parameters in a new array (the caller frees it). */
static inline float *algo_params(const ch_net *n) {
  float *p = malloc(n->spec.param_count * sizeof *p);
  if (!p) fail_msg("out of memory");
  if (n->vt->get_params(n->h, p, n->spec.param_count) != CH_OK) fail_msg("get_params failed");
  return p;
}

/* Uniform in [lo, hi). */
static inline double algo_uniform(uint64_t *rng, double lo, double hi) {
  return lo + (hi - lo) * ch_rng_uniform(rng);
}

/* The standard normal distribution function. */
static inline double algo_phi(double z) {
  return 0.5 * erfc(-z / sqrt(2.0));
}

#endif
