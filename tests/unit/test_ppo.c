/* test_ppo.c -- PPO-clip loss gradients (alone and through the mlp plugin), GAE, the policy. */
#include "unit_test.h"

#include "config.h"
#include "loader.h"
#include "ppo.h"
#include "runtime.h"

#define B 8 /* samples in the loss-only batch */
#define A 5 /* actions in the loss-only batch */

/* ---- a reference PPO loss written out plainly, in double ---------------------------------- */

typedef struct batch {
  int n, na;
  float *logits, *value, *old_logp, *adv, *ret;
  int32_t *action;
} batch;

static double ref_log_softmax(const float *z, int na, int a, double *entropy) {
  double m = -INFINITY, s = 0.0, h = 0.0;
  for (int j = 0; j < na; j++) m = fmax(m, z[j]);
  for (int j = 0; j < na; j++) s += exp(z[j] - m);
  for (int j = 0; j < na; j++) {
    double lp = z[j] - m - log(s);
    h -= exp(lp) * lp;
  }
  if (entropy) *entropy = h;
  return z[a] - m - log(s);
}

static ch_ppo_stats ref_loss(const ch_ppo_params *p, const batch *b) {
  ch_ppo_stats st = {0, 0, 0, 0, 0, 0};
  for (int i = 0; i < b->n; i++) {
    double h;
    double lp = ref_log_softmax(b->logits + (size_t)i * b->na, b->na, b->action[i], &h);
    double r = exp(lp - b->old_logp[i]);
    double rc = fmin(fmax(r, 1 - p->clip), 1 + p->clip);
    st.policy_loss -= fmin(r * b->adv[i], rc * b->adv[i]);
    double d = (double)b->value[i] - b->ret[i];
    st.value_loss += (p->loss_type == CH_LOSS_MSE || fabs(d) <= 1) ? 0.5 * d * d : fabs(d) - 0.5;
    st.entropy += h;
    st.approx_kl += (r - 1) - log(r);
    st.clip_fraction += (r < 1 - p->clip || r > 1 + p->clip);
  }
  st.policy_loss /= b->n;
  st.value_loss /= b->n;
  st.entropy /= b->n;
  st.approx_kl /= b->n;
  st.clip_fraction /= b->n;
  st.loss = st.policy_loss + p->value_coef * st.value_loss - p->beta_entropy * st.entropy;
  return st;
}

static double loss_of(const ch_ppo_params *p, const batch *b) {
  float dl[64 * CH_MAX_ACTIONS], dv[64];
  ch_ppo_stats st;
  ch_ppo_loss(p, b->n, b->na, b->logits, b->value, b->action, b->old_logp, b->adv, b->ret, dl, dv,
              &st);
  return st.loss;
}

/* d(loss)/dx by central differences, x perturbed in float by h. */
static double numeric_grad(const ch_ppo_params *p, const batch *b, float *x, float h) {
  float keep = *x, up = keep + h, down = keep - h;
  *x = up;
  double lu = loss_of(p, b);
  *x = down;
  double ld = loss_of(p, b);
  *x = keep;
  return (lu - ld) / ((double)up - (double)down);
}

/* Ratios inside and outside [0.8, 1.2] with both signs of advantage, and value errors both
** under and over Huber's knee; every one at least 0.1 from a kink. */
static const double ratio_of[B] = {0.5, 1.5, 0.5, 1.5, 0.9, 1.1, 1.0, 0.7};
static const float adv_of[B] = {1.2f, 0.8f, -1.0f, -0.6f, 0.5f, -1.5f, 2.0f, 0.3f};
static const float verr_of[B] = {0.3f, -0.5f, 2.5f, -1.7f, 0.9f, -3.0f, 0.1f, 1.4f};

static void make_batch(batch *b, float *logits, float *value, float *old_logp, float *adv,
                       float *ret, int32_t *action) {
  uint64_t seed = 42;
  *b = (batch){B, A, logits, value, old_logp, adv, ret, action};
  for (int i = 0; i < B * A; i++) logits[i] = (float)(4.0 * unit_uniform(&seed) - 2.0);
  for (int i = 0; i < B; i++) {
    action[i] = (int32_t)((i * 3) % A);
    double lp = ref_log_softmax(logits + i * A, A, action[i], NULL);
    old_logp[i] = (float)(lp - log(ratio_of[i]));
    adv[i] = adv_of[i];
    value[i] = (float)(unit_uniform(&seed) - 0.5);
    ret[i] = value[i] - verr_of[i];
  }
}

static void check_loss_case(int loss_type, double beta) {
  float logits[B * A], value[B], old_logp[B], adv[B], ret[B], dl[B * A], dv[B];
  int32_t action[B];
  batch b;
  make_batch(&b, logits, value, old_logp, adv, ret, action);
  ch_ppo_params p = {CH_PPO_CLIP, beta, 0.5, loss_type};
  ch_ppo_stats st, want = ref_loss(&p, &b);
  ch_ppo_loss(&p, B, A, logits, value, action, old_logp, adv, ret, dl, dv, &st);
  unit_assert_near(st.loss, want.loss, 1e-9);
  unit_assert_near(st.policy_loss, want.policy_loss, 1e-9);
  unit_assert_near(st.value_loss, want.value_loss, 1e-9);
  unit_assert_near(st.entropy, want.entropy, 1e-9);
  unit_assert_near(st.approx_kl, want.approx_kl, 1e-6);
  unit_assert_near(st.clip_fraction, 5.0 / 8.0, 1e-12);

  const float h = 1e-3f;
  double worst = 0;
  for (int k = 0; k < B * A; k++) {
    double num = numeric_grad(&p, &b, &logits[k], h), tol = 1e-6 + 1e-4 * fabs(num);
    worst = fmax(worst, fabs(dl[k] - num) / tol);
    if (fabs(dl[k] - num) > tol)
      fail_msg("loss %d beta %g: dloss/dlogit[%d] (sample %d) analytic %.9g numeric %.9g",
               loss_type, beta, k, k / A, dl[k], num);
  }
  for (int i = 0; i < B; i++) {
    double num = numeric_grad(&p, &b, &value[i], h), tol = 1e-6 + 1e-4 * fabs(num);
    worst = fmax(worst, fabs(dv[i] - num) / tol);
    if (fabs(dv[i] - num) > tol)
      fail_msg("loss %d beta %g: dloss/dvalue[%d] analytic %.9g numeric %.9g (v-R = %g)", loss_type,
               beta, i, dv[i], num, verr_of[i]);
  }
  /* Where min() takes the clipped branch the policy term is constant in the logits. */
  if (beta == 0.0)
    for (int j = 0; j < A; j++) {
      assert_true(dl[1 * A + j] == 0.0f);
      assert_true(dl[2 * A + j] == 0.0f);
    }
  print_message("loss type %d, beta %g: worst gradient error %.3f of the tolerance\n", loss_type,
                beta, worst);
}

static void test_loss_gradients(void **state) {
  (void)state;
  check_loss_case(CH_LOSS_HUBER, 0.01);
  check_loss_case(CH_LOSS_HUBER, 0.0);
  check_loss_case(CH_LOSS_MSE, 0.01);
  check_loss_case(CH_LOSS_MSE, 0.0);
}

/* ---- the same loss back-propagated through the real mlp plugin ---------------------------- */

#define NB 6 /* batch through the network */
#define NA 4 /* its actions */
#define NI 5 /* its inputs */

typedef struct netcase {
  ch_net net;
  float x[NB * NI], logits[NB * NA], value[NB];
  float old_logp[NB], adv[NB], ret[NB], dl[NB * NA], dv[NB];
  int32_t action[NB];
  ch_ppo_params p;
} netcase;

static double net_loss(netcase *c) {
  ch_error err = {0, ""};
  ch_ppo_stats st;
  unit_check(c->net.vt->forward(c->net.h, c->x, NB, c->logits, c->value, &err), err);
  ch_ppo_loss(&c->p, NB, NA, c->logits, c->value, c->action, c->old_logp, c->adv, c->ret, c->dl,
              c->dv, &st);
  return st.loss;
}

static double net_loss_at(netcase *c, float *params, uint64_t n, uint64_t i, float v) {
  ch_error err = {0, ""};
  float keep = params[i];
  params[i] = v;
  unit_check(c->net.vt->set_params(c->net.h, params, n, &err), err);
  params[i] = keep;
  return net_loss(c);
}

static void test_loss_through_mlp(void **state) {
  (void)state;
  ch_plugin *plug = NULL;
  ch_error err = {0, ""};
  unit_check(ch_plugin_find(CH_PLUGIN_NETWORK, "mlp", &plug, &err), err);
  netcase *c = calloc(1, sizeof *c);
  assert_non_null(c);
  unit_check(
      ch_net_create(plug, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[8,8]}", &c->net, &err),
      err);
  const ch_network_vtable *vt = c->net.vt;
  uint64_t n = c->net.spec.param_count, seed = 7;
  float *params = malloc(n * sizeof *params), *grads = malloc(n * sizeof *grads);
  assert_non_null(params);
  assert_non_null(grads);
  /* Weights large enough that every layer matters to the loss. */
  for (uint64_t i = 0; i < n; i++) params[i] = (float)(unit_uniform(&seed) - 0.5);
  unit_check(vt->set_params(c->net.h, params, n, &err), err);
  for (int i = 0; i < NB * NI; i++) c->x[i] = (float)(2.0 * unit_uniform(&seed) - 1.0);

  static const double ratio[NB] = {0.5, 1.5, 0.6, 1.4, 1.0, 0.9};
  static const float adv[NB] = {1.0f, 1.0f, -1.0f, -1.0f, 0.7f, -0.4f};
  static const float verr[NB] = {0.4f, -2.0f, 1.8f, -0.3f, 0.6f, -1.5f};
  c->p = (ch_ppo_params){CH_PPO_CLIP, 0.01, 0.5, CH_LOSS_HUBER};
  unit_check(vt->forward(c->net.h, c->x, NB, c->logits, c->value, &err), err);
  for (int i = 0; i < NB; i++) {
    c->action[i] = (int32_t)(i % NA);
    c->old_logp[i] = (float)(ch_policy_logp(c->logits + i * NA, NA, c->action[i]) - log(ratio[i]));
    c->adv[i] = adv[i];
    c->ret[i] = c->value[i] - verr[i];
  }

  vt->zero_grad(c->net.h);
  double loss0 = net_loss(c);
  unit_check(vt->backward(c->net.h, c->dl, c->dv, &err), err);
  assert_int_equal(vt->get_grads(c->net.h, grads, n), CH_OK);

  const float eps = 1e-2f;
  const double tol_abs = 5e-5, tol_rel = 5e-3;
  double worst = 0, norm = 0;
  uint64_t worst_i = 0, failed = 0;
  for (uint64_t i = 0; i < n; i++) {
    float up = params[i] + eps, down = params[i] - eps;
    double lu = net_loss_at(c, params, n, i, up), ld = net_loss_at(c, params, n, i, down);
    double num = (lu - ld) / ((double)up - (double)down), ana = grads[i];
    double ratio_err = fabs(ana - num) / (tol_abs + tol_rel * fmax(fabs(ana), fabs(num)));
    if (ratio_err > 1.0 && failed++ < 5)
      print_error("param %llu: analytic %.7g numeric %.7g\n", (unsigned long long)i, ana, num);
    if (ratio_err >= worst) worst = ratio_err, worst_i = i;
    norm += ana * ana;
  }
  print_message("mlp + PPO loss %.6f: %llu params, gradient norm %.4f, worst param %llu at %.2f "
                "of the tolerance\n",
                loss0, (unsigned long long)n, sqrt(norm), (unsigned long long)worst_i, worst);
  if (failed)
    fail_msg("%llu of %llu parameter gradients disagree with finite differences",
             (unsigned long long)failed, (unsigned long long)n);
  /* A gradient this small would let the absolute tolerance hide a wrong sign. */
  if (!(sqrt(norm) > 0.05)) fail_msg("gradient norm %g too small to be a test", sqrt(norm));
  free(params);
  free(grads);
  ch_net_destroy(&c->net);
  free(c);
  ch_plugin_close(plug);
}

/* ---- GAE ---------------------------------------------------------------------------------- */

static void expect_floats(const char *what, const float *got, const double *want, int n) {
  for (int i = 0; i < n; i++)
    if (fabs(got[i] - want[i]) > 1e-6)
      fail_msg("%s[%d] = %.9g, expected %.9g", what, i, got[i], want[i]);
}

/* gamma = lambda = 0.5 keeps every number exact in binary; worked by hand:
**   terminal: delta = {1, -1, 2.25, 0.5}; adv_t = delta_t + 0.25 adv_{t+1}
**   bootstrap 2: the last delta becomes 1 + 0.5 * 2 - 0.5 = 1.5 */
static void test_gae_by_hand(void **state) {
  (void)state;
  const float reward[4] = {1, 0, 2, 1}, value[4] = {0.5f, 1, 0, 0.5f};
  float adv[4], ret[4];
  static const double adv_term[4] = {0.8984375, -0.40625, 2.375, 0.5};
  static const double ret_term[4] = {1.3984375, 0.59375, 2.375, 1.0};
  static const double adv_boot[4] = {0.9140625, -0.34375, 2.625, 1.5};
  static const double ret_boot[4] = {1.4140625, 0.65625, 2.625, 2.0};

  ch_gae(4, reward, value, 2.0f, 1, 0.5, 0.5, adv, ret);
  expect_floats("terminal adv", adv, adv_term, 4);
  expect_floats("terminal ret", ret, ret_term, 4);
  ch_gae(4, reward, value, 2.0f, 0, 0.5, 0.5, adv, ret);
  expect_floats("bootstrapped adv", adv, adv_boot, 4);
  expect_floats("bootstrapped ret", ret, ret_boot, 4);
}

/* DeepRacer's constants against the closed form adv_t = sum_k (gamma lambda)^k delta_{t+k}. */
static void test_gae_closed_form(void **state) {
  (void)state;
  const float reward[4] = {0.3f, -1.0f, 2.0f, 0.7f}, value[4] = {1.0f, 0.2f, -0.5f, 1.5f};
  const double g = 0.999, l = CH_PPO_GAE_LAMBDA;
  for (int terminal = 0; terminal <= 1; terminal++) {
    float adv[4], ret[4];
    double delta[4], want_adv[4], want_ret[4];
    ch_gae(4, reward, value, 0.8f, terminal, g, l, adv, ret);
    for (int t = 0; t < 4; t++) {
      double next = t < 3 ? value[t + 1] : (terminal ? 0.0 : 0.8);
      delta[t] = reward[t] + g * next - value[t];
    }
    for (int t = 0; t < 4; t++) {
      want_adv[t] = 0;
      for (int k = t; k < 4; k++) want_adv[t] += pow(g * l, k - t) * delta[k];
      want_ret[t] = want_adv[t] + value[t];
    }
    expect_floats(terminal ? "terminal adv" : "bootstrapped adv", adv, want_adv, 4);
    expect_floats(terminal ? "terminal ret" : "bootstrapped ret", ret, want_ret, 4);
  }
}

/* ---- the categorical policy ---------------------------------------------------------------- */

static void test_policy_sample(void **state) {
  (void)state;
  const float z[5] = {1.0f, -0.5f, 0.0f, 2.0f, -1.0f};
  double p[5], s = 0;
  for (int j = 0; j < 5; j++) s += (p[j] = exp(z[j]));
  for (int j = 0; j < 5; j++) p[j] /= s;

  enum { N = 200000 };
  long count[5] = {0};
  uint64_t seed = 99;
  for (int i = 0; i < N; i++) {
    float lp = 0;
    int a = ch_policy_sample(z, 5, unit_uniform(&seed), &lp);
    if (a < 0 || a >= 5) fail_msg("sampled action %d of 5", a);
    if (fabs(lp - log(p[a])) > 1e-6)
      fail_msg("logp of action %d = %.9g, expected %.9g", a, lp, log(p[a]));
    count[a]++;
  }
  for (int j = 0; j < 5; j++)
    if (fabs((double)count[j] / N - p[j]) > 0.01)
      fail_msg("action %d drawn %.4f of the time, softmax says %.4f", j, (double)count[j] / N,
               p[j]);
  assert_int_equal(ch_policy_sample(z, 5, 0.0, NULL), 0);
  assert_int_equal(ch_policy_sample(z, 5, p[0] - 1e-9, NULL), 0);
  assert_int_equal(ch_policy_sample(z, 5, p[0] + 1e-9, NULL), 1);
  assert_int_equal(ch_policy_sample(z, 5, 1.0 - 1e-12, NULL), 4);
}

static void test_policy_argmax(void **state) {
  (void)state;
  const float ties[4] = {0.1f, 3.0f, -2.0f, 3.0f}, last[3] = {-5, -4, -3}, one[1] = {7};
  assert_int_equal(ch_policy_argmax(ties, 4), 1);
  assert_int_equal(ch_policy_argmax(last, 3), 2);
  assert_int_equal(ch_policy_argmax(one, 1), 0);
}

static void test_policy_logp(void **state) {
  (void)state;
  const float flat[4] = {0.25f, 0.25f, 0.25f, 0.25f}, big[2] = {1000.0f, 999.0f};
  const float z[3] = {0.5f, -1.5f, 2.0f};
  unit_assert_near(ch_policy_logp(flat, 4, 2), -log(4.0), 1e-12);
  /* Shifted by the maximum, so logits near 1000 stay finite. */
  unit_assert_near(ch_policy_logp(big, 2, 0), -log1p(exp(-1.0)), 1e-9);
  unit_assert_near(ch_policy_logp(big, 2, 1), -1.0 - log1p(exp(-1.0)), 1e-9);
  double s = exp(0.5) + exp(-1.5) + exp(2.0);
  for (int a = 0; a < 3; a++) unit_assert_near(ch_policy_logp(z, 3, a), z[a] - log(s), 1e-9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loss_gradients), cmocka_unit_test(test_loss_through_mlp),
      cmocka_unit_test(test_gae_by_hand),    cmocka_unit_test(test_gae_closed_form),
      cmocka_unit_test(test_policy_sample),  cmocka_unit_test(test_policy_argmax),
      cmocka_unit_test(test_policy_logp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
