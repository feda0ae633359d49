/* test_mlp_gaussian.c -- mlp: the Gaussian head: outputs, log-std parameters, config, gradients. */
#include "mlp_test.h"

#define BASE "\"input_size\":6,\"num_actions\":3,\"hidden\":[8,5]"

/* The means are the categorical network's logits: the log stds come after every other
** parameter and take nothing from the seed's stream, so both draw the same weights. */
static void means_are_the_policy_head(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *cat = mlp_new(vt, "{" BASE ",\"seed\":4}");
  void *gau = mlp_new(vt, "{" BASE ",\"seed\":4,\"head\":\"gaussian\"}");
  ch_network_spec sc = net_spec(vt, cat), sg = net_spec(vt, gau);
  assert_int_equal(sg.policy_size, 6);
  assert_int_equal(sg.param_count, sc.param_count + 3);
  float *pc = mlp_params(vt, cat), *pg = mlp_params(vt, gau);
  assert_memory_equal(pc, pg, (size_t)sc.param_count * sizeof *pc);
  for (uint64_t i = sc.param_count; i < sg.param_count; i++) assert_true(pg[i] == -0.5f);
  uint64_t seed = 1;
  float *x = test_random(&seed, 4 * 6, 1.0f), logits[12], means[24], vc[4], vg[4];
  ch_error err = {0, ""};
  mlp_check(vt->forward(cat, x, 4, logits, vc, &err), err);
  mlp_check(vt->forward(gau, x, 4, means, vg, &err), err);
  for (int r = 0; r < 4; r++) {
    assert_memory_equal(means + 6 * r, logits + 3 * r, 3 * sizeof *means);
    for (int j = 3; j < 6; j++) assert_true(means[6 * r + j] == -0.5f);
  }
  assert_memory_equal(vc, vg, sizeof vc);
  vt->destroy(cat), vt->destroy(gau);
  free(pc), free(pg), free(x);
}

/* log_std is a parameter: set_params changes the outputs, backward sums its gradients. */
static void log_std_is_trained(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, "{" BASE ",\"head\":\"gaussian\",\"log_std_init\":0.5,\"shared\":true}");
  uint64_t n = mlp_count(vt, net), seed = 2;
  float *p = mlp_params(vt, net), out[3 * 6], v[3];
  assert_true(p[n - 3] == 0.5f && p[n - 1] == 0.5f);
  p[n - 2] = -2.0f;
  ch_error err = {0, ""};
  mlp_check(vt->set_params(net, p, n, &err), err);
  float *x = test_random(&seed, 3 * 6, 1.0f);
  mlp_check(vt->forward(net, x, 3, out, v, &err), err);
  for (int r = 0; r < 3; r++) assert_true(out[6 * r + 4] == -2.0f && out[6 * r + 3] == 0.5f);
  float dp[18] = {0, 0, 0, 1, 2, 3, 0, 0, 0, 10, 20, 30, 0, 0, 0, 100, 200, 300};
  vt->zero_grad(net);
  mlp_check(vt->backward(net, dp, NULL, &err), err);
  float *g = mlp_grads(vt, net);
  assert_true(g[n - 3] == 111.0f && g[n - 2] == 222.0f && g[n - 1] == 333.0f);
  for (uint64_t i = 0; i < n - 3; i++)
    if (g[i] != 0.0f) fail_msg("a log-std gradient reached param %llu", (unsigned long long)i);
  /* An Adam step moves the log stds like any other parameter. */
  ch_optimizer_config cfg = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f};
  mlp_check(vt->optimizer_step(net, &cfg, &err), err);
  float *q = mlp_params(vt, net);
  assert_true(fabsf(q[n - 2] - (-2.0f - 1e-2f)) < 1e-6f);
  vt->destroy(net);
  free(p), free(x), free(g), free(q);
}

static void expect_einval(const char *config, const char *part) {
  const ch_network_vtable *vt = mlp_open();
  void *net = NULL;
  ch_error err = {0, ""};
  int rc = vt->create(config, &test_host, &net, &err);
  if (rc != CH_EINVAL) fail_msg("create(%s) -> %d (%s)", config, rc, err.message);
  assert_null(net);
  mlp_assert_contains(err.message, part);
}

static void config_is_checked(void **state) {
  (void)state;
  expect_einval("{" BASE ",\"head\":\"beta\"}", "'head'");
  expect_einval("{" BASE ",\"head\":\"beta\"}", "\"beta\"");
  expect_einval("{" BASE ",\"head\":1}", "'head'");
  expect_einval("{" BASE ",\"log_std_init\":-1}", "only for \"head\": \"gaussian\"");
  expect_einval("{" BASE ",\"head\":\"gaussian\",\"log_std_init\":-21}", "'log_std_init'");
  expect_einval("{" BASE ",\"head\":\"gaussian\",\"log_std_init\":2.5}", "'log_std_init'");
  expect_einval("{" BASE ",\"head\":\"gaussian\",\"log_std_init\":null}", "'log_std_init'");
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, "{" BASE ",\"head\":\"categorical\"}");
  assert_int_equal(net_spec(vt, net).policy_size, 3);
  vt->destroy(net);
}

/* A Gaussian network skipping its value head still fills the log stds. */
static void skipped_value_head(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, "{" BASE ",\"head\":\"gaussian\"}");
  uint64_t seed = 3;
  float *x = test_random(&seed, 2 * 6, 1.0f), a[12], b[12], v[2];
  ch_error err = {0, ""};
  mlp_check(vt->forward(net, x, 2, a, v, &err), err);
  memset(b, 0, sizeof b);
  mlp_check(vt->forward(net, x, 2, b, NULL, &err), err);
  assert_memory_equal(a, b, sizeof a);
  vt->destroy(net);
  free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(means_are_the_policy_head),
      cmocka_unit_test(log_std_is_trained),
      cmocka_unit_test(config_is_checked),
      cmocka_unit_test(skipped_value_head),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
