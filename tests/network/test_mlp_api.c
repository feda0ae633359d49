/* test_mlp_api.c -- mlp: the vtable contract: header, states, misuse, accumulation, isolation. */
#include "mlp_test.h"

#define CONFIG "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6]}"
#define BATCH  3
/* Parameters of each trunk of CONFIG and where the value trunk starts (USAGE block order). */
#define TRUNK_PARAMS (5 * 7 + 7 + 7 * 6 + 6)
#define VALUE_TRUNK  (TRUNK_PARAMS + 6 * 4 + 4)

static void vtable_contract(void **state) {
  (void)state;
  net_contract_header("network_mlp.so", "mlp");
  net_contract_needs_forward("network_mlp.so", CONFIG, BATCH);
  net_contract_accumulates("network_mlp.so", CONFIG, BATCH);
  net_contract_flat_access("network_mlp.so", CONFIG);
  net_contract_independent("network_mlp.so", CONFIG, CONFIG, BATCH);
}

/* The count a wrong set_params names is CONFIG's (USAGE block arithmetic). */
static void config_has_215_params(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  assert_int_equal(mlp_count(vt, net), 215);
  vt->destroy(net);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vtable_contract),
      cmocka_unit_test(config_has_215_params),
      cmocka_unit_test(skipped_separate_trunk_cannot_backward),
      cmocka_unit_test(shared_trunk_backward_after_one_head),
      cmocka_unit_test(separate_trunks_keep_their_gradients_apart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
