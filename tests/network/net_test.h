/* net_test.h -- helpers the network plugin tests share: open a plugin, make handles, data. */
#ifndef CH_NET_TEST_H
#define CH_NET_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "plugin_open.h"
#include <chicane/plugin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fail the test with the plugin's message when rc is not CH_OK. */
#define net_check(rc, err)                                                                         \
  do {                                                                                             \
    int net__rc = (rc);                                                                            \
    if (net__rc != CH_OK) fail_msg("%s -> %d: %s", #rc, net__rc, (err).message);                   \
  } while (0)

/* Fail unless msg contains part, printing both. */
#define net_assert_contains(msg, part)                                                             \
  do {                                                                                             \
    if (!strstr((msg), (part))) fail_msg("message \"%s\" does not mention \"%s\"", (msg), (part)); \
  } while (0)

/* The vtable of CHICANE_PLUGIN_BUILD_DIR/<file>, which must be a network plugin. */
static inline const ch_network_vtable *net_open(const char *file) {
  const ch_network_vtable *vt = test_plugin_open(file);
  assert_int_equal(vt->header.kind, CH_PLUGIN_NETWORK);
  return vt;
}

static inline void *net_new(const ch_network_vtable *vt, const char *json) {
  void *net = NULL;
  ch_error err = {0, ""};
  int rc = vt->create(json, &test_host, &net, &err);
  if (rc) fail_msg("create(%s) -> %d: %s", json, rc, err.message);
  assert_non_null(net);
  return net;
}

static inline ch_network_spec net_spec(const ch_network_vtable *vt, void *net) {
  ch_network_spec spec;
  vt->spec(net, &spec);
  return spec;
}

static inline uint64_t net_count(const ch_network_vtable *vt, void *net) {
  return net_spec(vt, net).param_count;
}

/* The parameters in a malloc'd array of net_count floats. */
static inline float *net_params(const ch_network_vtable *vt, void *net) {
  uint64_t n = net_count(vt, net);
  float *p = malloc((size_t)n * sizeof *p);
  assert_non_null(p);
  assert_int_equal(vt->get_params(net, p, n), CH_OK);
  return p;
}

static inline float *net_grads(const ch_network_vtable *vt, void *net) {
  uint64_t n = net_count(vt, net);
  float *g = malloc((size_t)n * sizeof *g);
  assert_non_null(g);
  assert_int_equal(vt->get_grads(net, g, n), CH_OK);
  return g;
}

/* splitmix64: the tests' own reproducible numbers, uniform in [-1, 1). */
static inline float test_uniform(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)((double)(z >> 11) * 0x1.0p-52 - 1.0);
}

/* A malloc'd array of n uniform numbers in [-scale, scale). */
static inline float *test_random(uint64_t *state, size_t n, float scale) {
  float *a = malloc((n ? n : 1) * sizeof *a);
  assert_non_null(a);
  for (size_t i = 0; i < n; i++) a[i] = scale * test_uniform(state);
  return a;
}

/* Replace the parameters with uniform numbers in [-scale, scale), away from the init. */
static inline void net_randomize(const ch_network_vtable *vt, void *net, uint64_t seed,
                                 float scale) {
  uint64_t n = net_count(vt, net);
  float *p = test_random(&seed, (size_t)n, scale);
  ch_error err = {0, ""};
  net_check(vt->set_params(net, p, n, &err), err);
  free(p);
}

/* zero_grad, forward the batch, backward the given output gradients. */
static inline void net_grad_step(const ch_network_vtable *vt, void *net, const float *x,
                                 uint32_t batch, const float *dp, const float *dv) {
  ch_network_spec spec = net_spec(vt, net);
  float *policy = malloc((size_t)batch * spec.policy_size * sizeof *policy);
  float *value = malloc((size_t)batch * sizeof *value);
  ch_error err = {0, ""};
  vt->zero_grad(net);
  net_check(vt->forward(net, x, batch, policy, value, &err), err);
  net_check(vt->backward(net, dp, dv, &err), err);
  free(policy);
  free(value);
}

/* ---- net_contract.c (linked into every network test) ------------------------------------ */

/* The header names name, has every member, and the entry refuses a host of another ABI. */
void net_contract_header(const char *file, const char *name);

/* backward needs a forward since the last parameter change, and a failed forward counts. */
void net_contract_needs_forward(const char *file, const char *json, uint32_t batch);

/* backward adds to the gradients; zero_grad clears them. */
void net_contract_accumulates(const char *file, const char *json, uint32_t batch);

/* get_params, set_params and get_grads refuse a wrong count (naming the right one) or NULL. */
void net_contract_flat_access(const char *file, const char *json);

/* Work on handles of json and other between the steps of another json handle changes nothing
** in it. */
void net_contract_independent(const char *file, const char *json, const char *other,
                              uint32_t batch);

/* Forward x and give the largest |policy output| and |value|, printing them. */
void net_output_scale(const ch_network_vtable *vt, void *net, const float *x, uint32_t batch,
                      double *max_logit, double *max_value);

#endif
