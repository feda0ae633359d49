/* test_mlp_api.c -- mlp: the vtable contract: header, states, misuse, accumulation, isolation. */
#include "mlp_test.h"

#define CONFIG "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6]}"
#define BATCH  3
/* Parameters of each trunk of CONFIG and where the value trunk starts (USAGE block order). */
#define TRUNK_PARAMS (5 * 7 + 7 + 7 * 6 + 6)
#define VALUE_TRUNK  (TRUNK_PARAMS + 6 * 4 + 4)

static void header_is_complete(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  assert_int_equal(vt->header.abi_version, CH_PLUGIN_ABI_VERSION);
  assert_int_equal(vt->header.struct_size, sizeof(ch_network_vtable));
  assert_int_equal(vt->header.reserved, 0);
  assert_string_equal(vt->header.name, "mlp");
  assert_non_null(vt->header.version);
  assert_non_null(vt->header.summary);
  void (*const members[])(void) = {(void (*)(void))vt->create,
                                   (void (*)(void))vt->destroy,
                                   (void (*)(void))vt->spec,
                                   (void (*)(void))vt->forward,
                                   (void (*)(void))vt->backward,
                                   (void (*)(void))vt->zero_grad,
                                   (void (*)(void))vt->optimizer_step,
                                   (void (*)(void))vt->get_params,
                                   (void (*)(void))vt->set_params,
                                   (void (*)(void))vt->get_grads,
                                   (void (*)(void))vt->save,
                                   (void (*)(void))vt->free_blob,
                                   (void (*)(void))vt->load};
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) assert_non_null(members[i]);
}

static void entry_refuses_a_foreign_host(void **state) {
  (void)state;
  mlp_open();
  char path[1024];
  snprintf(path, sizeof path, "%s/network_mlp.so", CHICANE_PLUGIN_BUILD_DIR);
  void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(so);
  ch_plugin_entry_fn entry;
  *(void **)&entry = dlsym(so, CH_PLUGIN_ENTRY_NAME);
  assert_non_null(entry);
  ch_host_api future = test_host;
  future.abi_version = CH_PLUGIN_ABI_VERSION + 1;
  assert_null(entry(&future));
  assert_non_null(entry(&test_host));
  dlclose(so);
}

static void backward_needs_a_current_forward(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  uint64_t seed = 1, n = mlp_count(vt, net);
  float *x = test_random(&seed, BATCH * 5, 1.0f), dp[BATCH * 4] = {1}, dv[BATCH] = {1}, p[12], v[3];
  ch_error err = {0, ""};
  assert_int_equal(vt->backward(net, dp, dv, &err), CH_ESTATE);
  mlp_assert_contains(err.message, "no forward");
  mlp_check(vt->forward(net, x, BATCH, p, v, &err), err);
  mlp_check(vt->backward(net, dp, dv, &err), err);
  float *params = mlp_params(vt, net);
  mlp_check(vt->set_params(net, params, n, &err), err);
  assert_int_equal(vt->backward(net, dp, dv, &err), CH_ESTATE);
  mlp_check(vt->forward(net, x, BATCH, p, v, &err), err);
  ch_optimizer_config cfg = {1e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};
  mlp_check(vt->optimizer_step(net, &cfg, &err), err);
  assert_int_equal(vt->backward(net, dp, dv, &err), CH_ESTATE);
  /* A failed forward forgets the previous one too. */
  mlp_check(vt->forward(net, x, BATCH, p, v, &err), err);
  assert_int_equal(vt->forward(net, x, 0, p, v, &err), CH_EINVAL);
  assert_int_equal(vt->backward(net, dp, dv, &err), CH_ESTATE);
  assert_int_equal(vt->forward(net, NULL, BATCH, p, v, &err), CH_EINVAL);
  mlp_assert_contains(err.message, "input");
  vt->destroy(net);
  free(x), free(params);
}

static void skipped_separate_trunk_cannot_backward(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  uint64_t seed = 2;
  float *x = test_random(&seed, BATCH * 5, 1.0f), dp[BATCH * 4] = {1}, dv[BATCH] = {1}, p[12];
  ch_error err = {0, ""};
  mlp_check(vt->forward(net, x, BATCH, p, NULL, &err), err);
  assert_int_equal(vt->backward(net, NULL, dv, &err), CH_ESTATE);
  mlp_assert_contains(err.message, "dvalue");
  mlp_check(vt->backward(net, dp, NULL, &err), err);
  vt->destroy(net);
  free(x);
}

/* With one trunk, a forward of the policy alone still lets the value head back-propagate, and
** gives the same gradient as a forward of both. */
static void shared_trunk_backward_after_one_head(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"shared\":true}");
  uint64_t seed = 3, n = mlp_count(vt, net);
  float *x = test_random(&seed, BATCH * 5, 1.0f), *dv = test_random(&seed, BATCH, 1.0f), p[12];
  ch_error err = {0, ""};
  mlp_grad_step(vt, net, x, BATCH, NULL, dv);
  float *both = mlp_grads(vt, net);
  vt->zero_grad(net);
  mlp_check(vt->forward(net, x, BATCH, p, NULL, &err), err);
  mlp_check(vt->backward(net, NULL, dv, &err), err);
  float *one = mlp_grads(vt, net);
  assert_memory_equal(both, one, (size_t)n * sizeof *one);
  uint64_t trunk_nonzero = 0;
  for (uint64_t i = 0; i < TRUNK_PARAMS; i++) trunk_nonzero += one[i] != 0.0f;
  assert_true(trunk_nonzero > TRUNK_PARAMS / 2); /* the value gradient reached the trunk */
  vt->destroy(net);
  free(x), free(dv), free(both), free(one);
}

/* Separate trunks: a policy gradient touches only the policy trunk and head, and vice versa. */
static void separate_trunks_keep_their_gradients_apart(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  uint64_t seed = 4, n = mlp_count(vt, net);
  float *x = test_random(&seed, BATCH * 5, 1.0f), *dp = test_random(&seed, BATCH * 4, 1.0f);
  float *dv = test_random(&seed, BATCH, 1.0f);
  mlp_grad_step(vt, net, x, BATCH, dp, NULL);
  float *g = mlp_grads(vt, net);
  for (uint64_t i = 0; i < n; i++) {
    int policy_part = i < VALUE_TRUNK;
    if (!policy_part && g[i] != 0.0f)
      fail_msg("policy gradient reached param %llu: %g", (unsigned long long)i, g[i]);
  }
  free(g);
  mlp_grad_step(vt, net, x, BATCH, NULL, dv);
  g = mlp_grads(vt, net);
  for (uint64_t i = 0; i < VALUE_TRUNK; i++)
    if (g[i] != 0.0f)
      fail_msg("value gradient reached param %llu: %g", (unsigned long long)i, g[i]);
  uint64_t nonzero = 0;
  for (uint64_t i = VALUE_TRUNK; i < n; i++) nonzero += g[i] != 0.0f;
  assert_true(nonzero > (n - VALUE_TRUNK) / 2);
  vt->destroy(net);
  free(x), free(dp), free(dv), free(g);
}

/* Equal up to rounding: BLAS may fold the old sum into its own summation order. */
static void backward_accumulates_and_zero_grad_clears(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  uint64_t seed = 5, n = mlp_count(vt, net);
  float *x = test_random(&seed, BATCH * 5, 1.0f), *dp = test_random(&seed, BATCH * 4, 1.0f);
  float *dv = test_random(&seed, BATCH, 1.0f);
  ch_error err = {0, ""};
  mlp_grad_step(vt, net, x, BATCH, dp, dv);
  float *once = mlp_grads(vt, net);
  mlp_check(vt->backward(net, dp, dv, &err), err);
  float *twice = mlp_grads(vt, net);
  for (uint64_t i = 0; i < n; i++)
    if (fabsf(twice[i] - 2.0f * once[i]) > 1e-6f * fabsf(once[i]))
      fail_msg("param %llu: %g after two backwards, %g after one", (unsigned long long)i, twice[i],
               once[i]);
  vt->zero_grad(net);
  float *zero = mlp_grads(vt, net);
  for (uint64_t i = 0; i < n; i++) assert_true(zero[i] == 0.0f);
  vt->destroy(net);
  free(x), free(dp), free(dv), free(once), free(twice), free(zero);
}

static void flat_access_checks_the_count(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  uint64_t n = mlp_count(vt, net);
  float *p = mlp_params(vt, net);
  ch_error err = {0, ""};
  assert_int_equal(vt->get_params(net, p, n - 1), CH_EINVAL);
  assert_int_equal(vt->get_grads(net, p, n + 1), CH_EINVAL);
  assert_int_equal(vt->get_params(net, NULL, n), CH_EINVAL);
  assert_int_equal(vt->set_params(net, p, n - 1, &err), CH_EINVAL);
  mlp_assert_contains(err.message, "215");
  p[7] = 0.125f;
  mlp_check(vt->set_params(net, p, n, &err), err);
  float *q = mlp_params(vt, net);
  assert_memory_equal(p, q, (size_t)n * sizeof *p);
  vt->destroy(net);
  free(p), free(q);
}

/* Work on one handle between the steps of another changes nothing in the other. */
static void handles_are_independent(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *a = mlp_new(vt, CONFIG), *b = mlp_new(vt, CONFIG), *c = mlp_new(vt, CONFIG);
  uint64_t seed = 6, n = mlp_count(vt, a);
  float *x = test_random(&seed, 40 * 5, 1.0f), *dp = test_random(&seed, BATCH * 4, 1.0f);
  float *dv = test_random(&seed, BATCH, 1.0f), p[40 * 4], v[40];
  ch_error err = {0, ""};
  mlp_grad_step(vt, a, x, BATCH, dp, dv);
  vt->zero_grad(b);
  mlp_check(vt->forward(b, x, BATCH, p, v, &err), err);
  mlp_check(vt->forward(c, x + 15, 40 - 3, p, v, &err), err); /* other data, larger batch */
  mlp_check(vt->backward(c, NULL, v, &err), err);
  mlp_check(vt->backward(b, dp, dv, &err), err);
  float *ga = mlp_grads(vt, a), *gb = mlp_grads(vt, b);
  assert_memory_equal(ga, gb, (size_t)n * sizeof *ga);
  vt->destroy(a), vt->destroy(b), vt->destroy(c);
  free(x), free(dp), free(dv), free(ga), free(gb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(header_is_complete),
      cmocka_unit_test(entry_refuses_a_foreign_host),
      cmocka_unit_test(backward_needs_a_current_forward),
      cmocka_unit_test(skipped_separate_trunk_cannot_backward),
      cmocka_unit_test(shared_trunk_backward_after_one_head),
      cmocka_unit_test(separate_trunks_keep_their_gradients_apart),
      cmocka_unit_test(backward_accumulates_and_zero_grad_clears),
      cmocka_unit_test(flat_access_checks_the_count),
      cmocka_unit_test(handles_are_independent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
