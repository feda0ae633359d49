/* test_ppo.c -- PPO losses: value clipping, the Gaussian loss, target KL, gradients checked. */
#include "algo_test.h"

#include "config.h"
#include "ppo.h"

#define B   8   /* samples in the loss-only batches */
#define A   5   /* categorical actions */
#define D   2   /* Gaussian dimensions */
#define VC  0.2 /* the value clip used where it is on */
#define FDH 2e-4f

/* Ratios inside and outside [0.8, 1.2] with both signs of advantage; value moves since acting
** inside and outside +-VC; errors of the (clipped) prediction under and over Huber's knee.
** Every one at least 0.05 from a kink. */
static const double ratio_of[B] = {0.5, 1.5, 0.5, 1.5, 0.9, 1.1, 1.0, 0.7};
static const float adv_of[B] = {1.2f, 0.8f, -1.0f, -0.6f, 0.5f, -1.5f, 2.0f, 0.3f};
static const float moved_of[B] = {0.05f, 0.5f, -0.1f, -0.6f, 0.15f, -0.35f, 0.0f, 0.3f};
static const float verr_of[B] = {0.3f, -0.5f, 2.5f, -1.7f, 0.9f, -3.0f, 0.1f, 1.4f};

typedef struct batch {
  int gaussian;
  float out[B * 2 * A], value[B], old_value[B], old_logp[B], adv[B], ret[B], action[B * D];
  int32_t index[B];
  float dout[B * 2 * A], dvalue[B];
} batch;

typedef struct variant {
  int loss_type;
  double beta, value_clip;
} variant;

/* ---- references, written out plainly in double -------------------------------------------- */

static double ref_value_loss(const variant *v, double value, double old, double ret) {
  double pred = value;
  if (v->value_clip > 0) pred = old + fmin(fmax(value - old, -v->value_clip), v->value_clip);
  double d = pred - ret;
  return (v->loss_type == CH_LOSS_MSE || fabs(d) <= 1) ? 0.5 * d * d : fabs(d) - 0.5;
}

/* log pi of sample i and the entropy of its distribution. */
static double ref_logp(const batch *b, int i, double *entropy) {
  if (!b->gaussian) {
    const float *z = b->out + i * A;
    double m = -INFINITY, s = 0, h = 0;
    for (int j = 0; j < A; j++) m = fmax(m, z[j]);
    for (int j = 0; j < A; j++) s += exp(z[j] - m);
    for (int j = 0; j < A; j++) h -= exp(z[j] - m - log(s)) * (z[j] - m - log(s));
    *entropy = h;
    return z[b->index[i]] - m - log(s);
  }
  const float *o = b->out + i * 2 * D;
  double lp = 0, h = 0;
  for (int j = 0; j < D; j++) {
    double sd = exp((double)o[D + j]), z = ((double)b->action[i * D + j] - o[j]) / sd;
    lp += -0.5 * z * z - log(sd) - 0.5 * log(2 * M_PI);
    h += log(sd) + 0.5 * log(2 * M_PI * M_E);
  }
  *entropy = h;
  return lp;
}

static ch_ppo_stats ref_loss(const variant *v, const batch *b) {
  ch_ppo_stats st = {0, 0, 0, 0, 0, 0};
  for (int i = 0; i < B; i++) {
    double h, lp = ref_logp(b, i, &h), r = exp(lp - b->old_logp[i]);
    double rc = fmin(fmax(r, 1 - CH_PPO_CLIP), 1 + CH_PPO_CLIP);
    st.policy_loss -= fmin(r * b->adv[i], rc * b->adv[i]);
    st.value_loss += ref_value_loss(v, b->value[i], b->old_value[i], b->ret[i]);
    st.entropy += h;
    st.approx_kl += (r - 1) - log(r);
    st.clip_fraction += (r < 1 - CH_PPO_CLIP || r > 1 + CH_PPO_CLIP);
  }
  st.policy_loss /= B;
  st.value_loss /= B;
  st.entropy /= B;
  st.approx_kl /= B;
  st.clip_fraction /= B;
  st.loss = st.policy_loss + 0.5 * st.value_loss - v->beta * st.entropy;
  return st;
}

/* ---- the functions under test ------------------------------------------------------------- */

static ch_ppo_stats run_loss(const variant *v, batch *b) {
  ch_ppo_params p = {CH_PPO_CLIP, v->beta, 0.5, v->loss_type};
  ch_ppo_extras x = {v->value_clip, 0.0};
  ch_ppo_stats st;
  if (b->gaussian)
    ch_ppo_loss_gaussian(&p, &x, B, D, b->out, b->value, b->action, b->old_logp, b->adv, b->ret,
                         b->old_value, b->dout, b->dvalue, &st);
  else
    ch_ppo_loss_categorical(&p, &x, B, A, b->out, b->value, b->index, b->old_logp, b->adv, b->ret,
                            b->old_value, b->dout, b->dvalue, &st);
  return st;
}

/* d(loss)/dx by central differences, x perturbed in float, the loss in double. */
static double numeric_grad(const variant *v, batch *b, float *x) {
  float keep = *x, up = keep + FDH, down = keep - FDH;
  batch scratch;
  *x = up;
  scratch = *b;
  double lu = run_loss(v, &scratch).loss;
  *x = down;
  scratch = *b;
  double ld = run_loss(v, &scratch).loss;
  *x = keep;
  return (lu - ld) / ((double)up - (double)down);
}

static void make_batch(batch *b, int gaussian) {
  uint64_t rng = 42;
  memset(b, 0, sizeof *b);
  b->gaussian = gaussian;
  int width = gaussian ? 2 * D : A;
  for (int i = 0; i < B; i++) {
    float *o = b->out + i * width;
    if (gaussian) {
      for (int j = 0; j < D; j++) {
        o[j] = (float)algo_uniform(&rng, -1, 1);
        o[D + j] = (float)algo_uniform(&rng, -1.0, 0.5);
        b->action[i * D + j] = (float)(o[j] + exp(o[D + j]) * algo_uniform(&rng, -2, 2));
      }
    } else {
      for (int j = 0; j < A; j++) o[j] = (float)algo_uniform(&rng, -2, 2);
      b->index[i] = (int32_t)((i * 3) % A);
    }
    double h;
    b->old_logp[i] = (float)(ref_logp(b, i, &h) - log(ratio_of[i]));
    b->adv[i] = adv_of[i];
    b->value[i] = (float)algo_uniform(&rng, -0.5, 0.5);
    b->old_value[i] = b->value[i] - moved_of[i];
  }
}

/* Returns so that the prediction (clipped or not) misses them by verr_of. */
static void set_returns(batch *b, double value_clip) {
  for (int i = 0; i < B; i++) {
    double pred = b->value[i];
    if (value_clip > 0) pred = b->old_value[i] + fmin(fmax(moved_of[i], -value_clip), value_clip);
    b->ret[i] = (float)(pred - verr_of[i]);
  }
}

static void check_variant(int gaussian, const variant *v) {
  batch b;
  make_batch(&b, gaussian);
  set_returns(&b, v->value_clip);
  ch_ppo_stats st = run_loss(v, &b), want = ref_loss(v, &b);
  const char *kind = gaussian ? "gaussian" : "categorical";
  algo_near(st.loss, want.loss, 1e-9);
  algo_near(st.policy_loss, want.policy_loss, 1e-9);
  algo_near(st.value_loss, want.value_loss, 1e-9);
  algo_near(st.entropy, want.entropy, 1e-9);
  algo_near(st.approx_kl, want.approx_kl, 1e-6);
  algo_near(st.clip_fraction, 5.0 / 8.0, 1e-12);

  int width = gaussian ? 2 * D : A;
  double worst = 0;
  for (int k = 0; k < B * width; k++) {
    double num = numeric_grad(v, &b, &b.out[k]), tol = 1e-6 + 1e-4 * fabs(num);
    worst = fmax(worst, fabs(b.dout[k] - num) / tol);
    if (fabs(b.dout[k] - num) > tol)
      fail_msg("%s loss %d beta %g clip %g: d/dout[%d] (sample %d) analytic %.9g numeric %.9g",
               kind, v->loss_type, v->beta, v->value_clip, k, k / width, b.dout[k], num);
  }
  for (int i = 0; i < B; i++) {
    double num = numeric_grad(v, &b, &b.value[i]), tol = 1e-6 + 1e-4 * fabs(num);
    worst = fmax(worst, fabs(b.dvalue[i] - num) / tol);
    if (fabs(b.dvalue[i] - num) > tol)
      fail_msg("%s loss %d clip %g: d/dvalue[%d] analytic %.9g numeric %.9g (moved %g)", kind,
               v->loss_type, v->value_clip, i, b.dvalue[i], num, moved_of[i]);
    /* SB3's clip: a value that moved past the clip gets no gradient at all */
    int clipped = v->value_clip > 0 && fabs(moved_of[i]) > v->value_clip;
    if (clipped != (b.dvalue[i] == 0.0f))
      fail_msg("%s clip %g: dvalue[%d] = %g with the value moved by %g", kind, v->value_clip, i,
               b.dvalue[i], moved_of[i]);
  }
  print_message("%s, loss type %d, beta %g, value clip %g: worst gradient error %.3f of the "
                "tolerance\n",
                kind, v->loss_type, v->beta, v->value_clip, worst);
}

static void test_categorical_gradients(void **state) {
  (void)state;
  for (int lt = 0; lt <= 1; lt++)
    for (int c = 0; c <= 1; c++)
      for (int e = 0; e <= 1; e++) {
        variant v = {lt ? CH_LOSS_MSE : CH_LOSS_HUBER, e ? 0.01 : 0.0, c ? VC : 0.0};
        check_variant(0, &v);
      }
}

static void test_gaussian_gradients(void **state) {
  (void)state;
  for (int lt = 0; lt <= 1; lt++)
    for (int c = 0; c <= 1; c++)
      for (int e = 0; e <= 1; e++) {
        variant v = {lt ? CH_LOSS_MSE : CH_LOSS_HUBER, e ? 0.01 : 0.0, c ? VC : 0.0};
        check_variant(1, &v);
      }
}

/* Where min() takes the clipped branch the Gaussian's means get no gradient, and its log stds
** only the entropy bonus's -beta / B. */
static void test_gaussian_clipped_branch(void **state) {
  (void)state;
  batch b;
  variant v = {CH_LOSS_HUBER, 0.01, 0.0};
  make_batch(&b, 1);
  set_returns(&b, 0.0);
  run_loss(&v, &b);
  for (int i = 1; i <= 2; i++) /* ratio 1.5 with A > 0, ratio 0.5 with A < 0 */
    for (int j = 0; j < D; j++) {
      assert_true(b.dout[i * 2 * D + j] == 0.0f);
      algo_near(b.dout[i * 2 * D + D + j], -0.01 / B, 1e-9);
    }
}

/* The old entry point is the categorical loss without extras, bit for bit; extras with a zero
** clip or no old values are the same too. */
static void test_compatible(void **state) {
  (void)state;
  batch b;
  make_batch(&b, 0);
  set_returns(&b, 0.0);
  ch_ppo_params p = {CH_PPO_CLIP, 0.01, 0.5, CH_LOSS_HUBER};
  float dl1[B * A], dv1[B], dl2[B * A], dv2[B], dl3[B * A], dv3[B];
  ch_ppo_stats s1, s2, s3;
  ch_ppo_extras off = {0.0, 0.03}, on = {VC, 0.0};
  ch_ppo_loss(&p, B, A, b.out, b.value, b.index, b.old_logp, b.adv, b.ret, dl1, dv1, &s1);
  ch_ppo_loss_categorical(&p, &off, B, A, b.out, b.value, b.index, b.old_logp, b.adv, b.ret,
                          b.old_value, dl2, dv2, &s2);
  ch_ppo_loss_categorical(&p, &on, B, A, b.out, b.value, b.index, b.old_logp, b.adv, b.ret, NULL,
                          dl3, dv3, &s3);
  assert_memory_equal(dl1, dl2, sizeof dl1);
  assert_memory_equal(dv1, dv2, sizeof dv1);
  assert_memory_equal(dl1, dl3, sizeof dl1);
  assert_memory_equal(dv1, dv3, sizeof dv1);
  assert_memory_equal(&s1, &s2, sizeof s1);
  assert_memory_equal(&s1, &s3, sizeof s1);
  ch_ppo_loss(&p, B, A, b.out, b.value, b.index, b.old_logp, b.adv, b.ret, dl1, dv1, NULL);
}

/* The log-probability the policy records when acting is the one the loss uses: on the data it
** produced, every ratio is 1 (no clipping, approx_kl 0). */
static void test_gaussian_matches_policy(void **state) {
  (void)state;
  ch_policy_space s = {1, 2, {-30, 0.5}, {30, 4}, 0, NULL};
  float out[B * 2 * D], act[B * D], logp[B], value[B] = {0}, adv[B], ret[B] = {0};
  float dout[B * 2 * D], dv[B];
  uint64_t rng = 5;
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < 2 * D; j++) out[i * 2 * D + j] = (float)algo_uniform(&rng, -1, 0.5);
    ch_policy_act(&s, out + i * 2 * D, CH_ACT_SAMPLE, 0, &rng, act + i * D, &logp[i], NULL, NULL);
    adv[i] = adv_of[i];
  }
  ch_ppo_params p = {CH_PPO_CLIP, 0.0, 0.5, CH_LOSS_HUBER};
  ch_ppo_stats st;
  ch_ppo_loss_gaussian(&p, NULL, B, D, out, value, act, logp, adv, ret, NULL, dout, dv, &st);
  algo_near(st.approx_kl, 0.0, 1e-12);
  algo_near(st.clip_fraction, 0.0, 0);
  double mean_adv = 0;
  for (int i = 0; i < B; i++) mean_adv += adv[i] / (double)B;
  algo_near(st.policy_loss, -mean_adv, 1e-6);
}

static void test_kl_stop(void **state) {
  (void)state;
  ch_ppo_extras off = {0.1, 0.0}, on = {0.0, 0.01};
  assert_int_equal(ch_ppo_kl_exceeded(NULL, 1e9), 0);
  assert_int_equal(ch_ppo_kl_exceeded(&off, 1e9), 0);
  assert_int_equal(ch_ppo_kl_exceeded(&on, 0.015), 0);
  assert_int_equal(ch_ppo_kl_exceeded(&on, 0.0151), 1);
  assert_int_equal(ch_ppo_kl_exceeded(&on, 0.001), 0);
}

/* ---- the Gaussian loss back-propagated through the mlp plugin's Gaussian head --------------- */

#define NB 6 /* batch through the network */
#define NI 5 /* its inputs */

typedef struct netcase {
  ch_net net;
  float x[NB * NI], out[NB * 2 * D], value[NB], act[NB * D];
  float old_logp[NB], old_value[NB], adv[NB], ret[NB], dout[NB * 2 * D], dv[NB];
  ch_ppo_params p;
  ch_ppo_extras ex;
} netcase;

static double net_loss(netcase *c) {
  ch_error err = {0, ""};
  ch_ppo_stats st;
  algo_check(c->net.vt->forward(c->net.h, c->x, NB, c->out, c->value, &err), err);
  ch_ppo_loss_gaussian(&c->p, &c->ex, NB, D, c->out, c->value, c->act, c->old_logp, c->adv, c->ret,
                       c->old_value, c->dout, c->dv, &st);
  return st.loss;
}

static double net_loss_at(netcase *c, float *params, uint64_t n, uint64_t i, float v) {
  ch_error err = {0, ""};
  float keep = params[i];
  params[i] = v;
  algo_check(c->net.vt->set_params(c->net.h, params, n, &err), err);
  params[i] = keep;
  return net_loss(c);
}

static void test_gaussian_through_mlp(void **state) {
  (void)state;
  ch_error err = {0, ""};
  netcase *c = calloc(1, sizeof *c);
  assert_non_null(c);
  algo_net(
      &c->net,
      "{\"input_size\":5,\"num_actions\":2,\"head\":\"gaussian\",\"hidden\":[8,8],\"seed\":3}");
  const ch_network_vtable *vt = c->net.vt;
  assert_int_equal(c->net.spec.policy_size, 2 * D);
  uint64_t n = c->net.spec.param_count, rng = 7;
  float *params = malloc(n * sizeof *params), *grads = malloc(n * sizeof *grads);
  assert_non_null(params);
  assert_non_null(grads);
  for (uint64_t i = 0; i < n; i++) params[i] = (float)algo_uniform(&rng, -0.5, 0.5);
  params[n - 2] = -0.3f; /* the log stds come last (mlp USAGE) */
  params[n - 1] = 0.2f;
  algo_check(vt->set_params(c->net.h, params, n, &err), err);
  for (int i = 0; i < NB * NI; i++) c->x[i] = (float)algo_uniform(&rng, -1, 1);

  static const double ratio[NB] = {0.5, 1.5, 0.6, 1.4, 1.0, 0.9};
  static const float adv[NB] = {1.0f, 1.0f, -1.0f, -1.0f, 0.7f, -0.4f};
  static const float moved[NB] = {0.05f, 0.5f, -0.6f, -0.1f, 0.35f, 0.0f};
  static const float verr[NB] = {0.4f, -2.0f, 1.8f, -0.3f, 0.6f, -1.5f};
  c->p = (ch_ppo_params){CH_PPO_CLIP, 0.01, 0.5, CH_LOSS_HUBER};
  c->ex = (ch_ppo_extras){VC, 0.0};
  algo_check(vt->forward(c->net.h, c->x, NB, c->out, c->value, &err), err);
  ch_policy_space s = {1, 2, {-30, 0.5}, {30, 4}, 0, NULL};
  for (int i = 0; i < NB; i++) {
    float lp;
    ch_policy_act(&s, c->out + i * 2 * D, CH_ACT_SAMPLE, 0, &rng, c->act + i * D, &lp, NULL, NULL);
    c->old_logp[i] = (float)(lp - log(ratio[i]));
    c->adv[i] = adv[i];
    c->old_value[i] = c->value[i] - moved[i];
    double pred = c->old_value[i] + fmin(fmax(moved[i], -VC), VC);
    c->ret[i] = (float)(pred - verr[i]);
  }

  vt->zero_grad(c->net.h);
  double loss0 = net_loss(c);
  algo_check(vt->backward(c->net.h, c->dout, c->dv, &err), err);
  assert_int_equal(vt->get_grads(c->net.h, grads, n), CH_OK);

  const float eps = 1e-2f;
  const double tol_abs = 5e-5, tol_rel = 5e-3;
  double worst = 0, norm = 0;
  uint64_t failed = 0;
  for (uint64_t i = 0; i < n; i++) {
    float up = params[i] + eps, down = params[i] - eps;
    double lu = net_loss_at(c, params, n, i, up), ld = net_loss_at(c, params, n, i, down);
    double num = (lu - ld) / ((double)up - (double)down), ana = grads[i];
    double ratio_err = fabs(ana - num) / (tol_abs + tol_rel * fmax(fabs(ana), fabs(num)));
    if (ratio_err > 1.0 && failed++ < 5)
      print_error("param %llu: analytic %.7g numeric %.7g\n", (unsigned long long)i, ana, num);
    worst = fmax(worst, ratio_err);
    norm += ana * ana;
  }
  print_message("mlp gaussian + PPO loss %.6f: %llu params, gradient norm %.4f, worst at %.2f of "
                "the tolerance; log std grads %.5f %.5f\n",
                loss0, (unsigned long long)n, sqrt(norm), worst, grads[n - 2], grads[n - 1]);
  if (failed)
    fail_msg("%llu of %llu parameter gradients disagree with finite differences",
             (unsigned long long)failed, (unsigned long long)n);
  if (!(sqrt(norm) > 0.05)) fail_msg("gradient norm %g too small to be a test", sqrt(norm));
  if (!(fabs(grads[n - 1]) > 1e-3)) fail_msg("log std gradient %g too small", grads[n - 1]);
  free(params);
  free(grads);
  algo_net_free(&c->net);
  free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_categorical_gradients),   cmocka_unit_test(test_gaussian_gradients),
      cmocka_unit_test(test_gaussian_clipped_branch), cmocka_unit_test(test_compatible),
      cmocka_unit_test(test_gaussian_matches_policy), cmocka_unit_test(test_kl_stop),
      cmocka_unit_test(test_gaussian_through_mlp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
