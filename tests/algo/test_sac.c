/* test_sac.c -- SAC: actor loss gradients, dQ/da by differences, targets, Polyak, alpha,
** learning, and the learner's replay memory (uniform draws, FIFO eviction, corrupt records). */
#include "algo_test.h"

#include "config.h"
#include "policy.h"
#include "sac.h"
#include "sac_learner.h"
#include "segment.h"

#define MAXB 64

/* The five networks and the SAC handle over them. */
typedef struct rig {
  ch_net actor, q[2], qt[2];
  ch_sac *sac;
  int O, D;
} rig;

static void critic_json(char *buf, size_t n, int O, int D, const char *hidden, int seed) {
  snprintf(buf, n, "{\"input_size\":%d,\"num_actions\":1,\"hidden\":%s,\"seed\":%d}", O + D, hidden,
           seed);
}

static void rig_nets(rig *r, int O, int D, const char *hidden) {
  char json[256];
  r->O = O;
  r->D = D;
  snprintf(json, sizeof json,
           "{\"input_size\":%d,\"num_actions\":%d,\"head\":\"gaussian\",\"hidden\":%s,\"seed\":1}",
           O, D, hidden);
  algo_net(&r->actor, json);
  for (int k = 0; k < 2; k++) {
    critic_json(json, sizeof json, O, D, hidden, 2 + k);
    algo_net(&r->q[k], json);
    critic_json(json, sizeof json, O, D, hidden, 10 + k); /* different until create copies */
    algo_net(&r->qt[k], json);
  }
  r->sac = NULL;
}

static void rig_make(rig *r, int O, int D, const char *hidden, const ch_sac_config *c) {
  ch_error err = {0, ""};
  rig_nets(r, O, D, hidden);
  algo_check(ch_sac_create(c, &r->actor, &r->q[0], &r->q[1], &r->qt[0], &r->qt[1], (uint32_t)O,
                           &r->sac, &err),
             err);
  assert_int_equal(ch_sac_dims(r->sac), D);
}

static void rig_free(rig *r) {
  ch_sac_free(r->sac);
  algo_net_free(&r->actor);
  for (int k = 0; k < 2; k++) {
    algo_net_free(&r->q[k]);
    algo_net_free(&r->qt[k]);
  }
}

static ch_sac_config config(int D) {
  ch_sac_config c;
  ch_sac_config_defaults(&c, D);
  c.batch_size = MAXB;
  return c;
}

/* ---- the actor loss alone, with an analytic critic ---------------------------------------- */

#define AB 6
#define AD 2

/* Q(a) = -sum_j w_j (a_j - c_j)^2 + 0.3 a_0 a_1, and its gradient. */
static double toy_q(const double *a, float *dq) {
  static const double w[AD] = {1.5, 0.7}, c[AD] = {0.2, -0.4};
  double q = 0.3 * a[0] * a[1];
  for (int j = 0; j < AD; j++) {
    q -= w[j] * (a[j] - c[j]) * (a[j] - c[j]);
    if (dq) dq[j] = (float)(-2 * w[j] * (a[j] - c[j]) + 0.3 * a[1 - j]);
  }
  return q;
}

/* The actor loss with toy_q as the critic. Q is evaluated in double at actions made in double,
** and the loss corrected for the float q the function takes, so that differences of it are
** not float noise. */
static double actor_loss_at(const float *out, const float *eps, double alpha, float *dout,
                            float *logpi) {
  float q[AB], dq[AB * AD], scratch[AB * 2 * AD];
  double fix = 0;
  for (int i = 0; i < AB; i++) {
    double a[AD];
    for (int j = 0; j < AD; j++) {
      const float *o = out + i * 2 * AD;
      a[j] = tanh(o[j] + exp(ch_policy_clamp_log_std(o[AD + j])) * eps[i * AD + j]);
    }
    double qd = toy_q(a, dq + i * AD);
    q[i] = (float)qd;
    fix += (q[i] - qd) / AB;
  }
  return ch_sac_actor_loss(AB, AD, alpha, out, eps, q, dq, dout ? dout : scratch, logpi) + fix;
}

static void test_actor_loss_gradient(void **state) {
  (void)state;
  uint64_t rng = 3;
  float out[AB * 2 * AD], eps[AB * AD], dout[AB * 2 * AD], logpi[AB];
  for (int i = 0; i < AB; i++)
    for (int j = 0; j < AD; j++) {
      out[i * 2 * AD + j] = (float)algo_uniform(&rng, -1.5, 1.5);
      out[i * 2 * AD + AD + j] = (float)algo_uniform(&rng, -1.5, 0.5);
      eps[i * AD + j] = (float)ch_policy_normal(&rng);
    }
  out[5 * 2 * AD + AD] = 2.5f;    /* clamped to 2: no gradient */
  out[4 * 2 * AD + AD + 1] = -21; /* clamped to -20 */
  const double alpha = 0.3;
  actor_loss_at(out, eps, alpha, dout, logpi);
  double worst = 0;
  for (int k = 0; k < AB * 2 * AD; k++) {
    const float h = 1e-3f;
    float keep = out[k], up = keep + h, down = keep - h;
    out[k] = up;
    double lu = actor_loss_at(out, eps, alpha, NULL, NULL);
    out[k] = down;
    double ld = actor_loss_at(out, eps, alpha, NULL, NULL);
    out[k] = keep;
    double num = (lu - ld) / ((double)up - (double)down), tol = 1e-6 + 1e-4 * fabs(num);
    worst = fmax(worst, fabs(dout[k] - num) / tol);
    if (fabs(dout[k] - num) > tol)
      fail_msg("d actor loss / d out[%d] (sample %d): analytic %.9g numeric %.9g", k, k / (2 * AD),
               dout[k], num);
  }
  assert_true(dout[5 * 2 * AD + AD] == 0.0f && dout[4 * 2 * AD + AD + 1] == 0.0f);
  /* log pi is the squashed density the policy module computes from the stored raw sample */
  float raw[AB * AD], act[AB * AD];
  ch_sac_actions(AB, AD, out, eps, raw, act);
  for (int i = 0; i < AB; i++) {
    /* Not for std e^-20: the float raw sample cannot hold u - mean; that is why the loss
    ** works from eps. */
    if (i == 4) continue;
    double want = ch_policy_gaussian_logp(AD, out + i * 2 * AD, raw + i * AD, 1);
    algo_near(logpi[i], want, 1e-4 * (1 + fabs(want)));
    for (int j = 0; j < AD; j++) algo_near(act[i * AD + j], tanh(raw[i * AD + j]), 1e-6);
  }
  print_message("actor loss: worst gradient error %.3f of the tolerance\n", worst);
}

/* ---- dQ/da by central differences against a double-precision reference mlp ------------------ */

/* Q and dQ/dx of the mlp value path (separate trunks, tanh; layout in plugins/mlp USAGE) in
** double with the true tanh. */
static double ref_critic(const float *p, int in, const int *hidden, int nh, const double *x,
                         double *dx) {
  double act[3][64], grad[64], next[64];
  const float *wv = p;
  int width = in;
  for (int l = 0; l < nh; l++) { /* skip the policy trunk and head */
    wv += (size_t)hidden[l] * width + hidden[l];
    width = hidden[l];
  }
  wv += (size_t)1 * width + 1;
  const float *w[3];
  const double *h = x;
  width = in;
  for (int l = 0; l < nh; l++) {
    w[l] = wv;
    for (int o = 0; o < hidden[l]; o++) {
      double s = wv[(size_t)hidden[l] * width + o];
      for (int i = 0; i < width; i++) s += wv[(size_t)o * width + i] * h[i];
      act[l][o] = tanh(s);
    }
    wv += (size_t)hidden[l] * width + hidden[l];
    h = act[l];
    width = hidden[l];
  }
  double q = wv[width];
  for (int i = 0; i < width; i++) q += wv[i] * h[i];
  for (int i = 0; i < width; i++) grad[i] = wv[i];
  for (int l = nh - 1; l >= 0; l--) {
    int fan_in = l ? hidden[l - 1] : in;
    for (int i = 0; i < fan_in; i++) next[i] = 0;
    for (int o = 0; o < hidden[l]; o++) {
      double d = grad[o] * (1 - act[l][o] * act[l][o]);
      for (int i = 0; i < fan_in; i++) next[i] += d * w[l][(size_t)o * fan_in + i];
    }
    memcpy(grad, next, sizeof(double) * (size_t)fan_in);
  }
  memcpy(dx, grad, sizeof(double) * (size_t)in);
  return q;
}

/* Worst error of ch_sac_q_grad with step h on B samples, relative to 1 + |reference|. */
static double q_grad_error(ch_net *q, const float *p, int O, int D, const float *obs,
                           const float *act, int nb, double h, double *q_err) {
  static const int hidden[2] = {64, 64};
  ch_error err = {0, ""};
  float *work = malloc(ch_sac_q_grad_work(nb, (uint32_t)O, D) * sizeof(float));
  float qv[MAXB], dq[MAXB * 2];
  assert_non_null(work);
  algo_check(ch_sac_q_grad(q, nb, (uint32_t)O, D, obs, act, h, qv, dq, work, &err), err);
  double worst = 0;
  *q_err = 0;
  for (int i = 0; i < nb; i++) {
    double x[16], dx[16];
    for (int k = 0; k < O; k++) x[k] = obs[i * O + k];
    for (int j = 0; j < D; j++) x[O + j] = act[i * D + j];
    double qr = ref_critic(p, O + D, hidden, 2, x, dx);
    *q_err = fmax(*q_err, fabs(qv[i] - qr) / (1 + fabs(qr)));
    for (int j = 0; j < D; j++)
      worst = fmax(worst, fabs(dq[i * D + j] - dx[O + j]) / (1 + fabs(dx[O + j])));
  }
  free(work);
  return worst;
}

static void test_q_grad_accuracy(void **state) {
  (void)state;
  enum { O = 6, D = 2, NB = 32 };
  ch_net q;
  char json[128];
  critic_json(json, sizeof json, O, D, "[64,64]", 5);
  algo_net(&q, json);
  uint64_t rng = 9, n = q.spec.param_count;
  float obs[NB * O], act[NB * D];
  for (int i = 0; i < NB * O; i++) obs[i] = (float)algo_uniform(&rng, -1, 1);
  for (int i = 0; i < NB * D; i++) act[i] = (float)algo_uniform(&rng, -0.99, 0.99);
  float *p = algo_params(&q);
  /* The value head scaled so that Q is in the hundreds, as returns with gamma 0.999 are. */
  for (int scale = 1; scale <= 300; scale *= 300) {
    float *sp = malloc(n * sizeof *sp);
    assert_non_null(sp);
    memcpy(sp, p, n * sizeof *sp);
    for (uint64_t i = n - 65; i < n; i++) sp[i] *= (float)scale; /* value head: 64 + 1 */
    ch_error err = {0, ""};
    algo_check(q.vt->set_params(q.h, sp, n, &err), err);
    static const double steps[4] = {1e-3, 3e-3, 1e-2, 3e-2};
    double at_default = 0, q_err = 0;
    for (int k = 0; k < 4; k++) {
      double e = q_grad_error(&q, sp, O, D, obs, act, NB, steps[k], &q_err);
      print_message("Q scale %d: step %g: worst dQ/da error %.2e (relative to 1 + |dQ/da|), Q "
                    "error %.2e\n",
                    scale, steps[k], e, q_err);
      if (steps[k] == CH_SAC_FD_STEP) at_default = e;
    }
    algo_near(q_err, 0, 1e-5);
    if (!(at_default < 2e-3))
      fail_msg("Q scale %d: dQ/da by differences off by %.3g at step %g", scale, at_default,
               CH_SAC_FD_STEP);
    free(sp);
  }
  free(p);
  algo_net_free(&q);
}

/* ---- create ------------------------------------------------------------------------------- */

static void test_create_errors(void **state) {
  (void)state;
  ch_error err = {0, ""};
  ch_sac_config c = config(2);
  rig r;
  rig_nets(&r, 3, 2, "[8]");
  ch_sac *s = (ch_sac *)&r; /* must be reset to NULL on failure */
  algo_expect(ch_sac_create(&c, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 4, &s, &err),
              CH_EINVAL, err, "actor has input_size 3, expected obs_size 4");
  assert_null(s);
  algo_expect(ch_sac_create(&c, &r.actor, &r.q[0], &r.q[0], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "q1 and q2 are the same network handle");
  algo_expect(ch_sac_create(&c, &r.actor, &r.actor, &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "same network handle");
  algo_expect(ch_sac_create(&c, &r.actor, &r.q[0], &r.q[1], &r.qt[0], NULL, 3, &s, &err), CH_EINVAL,
              err, "q2_target is NULL");
  ch_net odd, wrong_in, other;
  algo_net(&odd, "{\"input_size\":3,\"num_actions\":3}");
  algo_expect(ch_sac_create(&c, &odd, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err), CH_EINVAL,
              err, "policy_size 3 is not 2 * D");
  algo_net(&wrong_in, "{\"input_size\":4,\"num_actions\":1,\"hidden\":[8]}");
  algo_expect(ch_sac_create(&c, &r.actor, &r.q[0], &wrong_in, &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "q2 has input_size 4, expected 5");
  algo_net(&other, "{\"input_size\":5,\"num_actions\":1,\"hidden\":[9]}");
  algo_expect(ch_sac_create(&c, &r.actor, &r.q[0], &r.q[1], &other, &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "q1_target has");
  ch_sac_config bad = c;
  bad.tau = 0;
  algo_expect(ch_sac_create(&bad, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "tau 0 outside (0, 1]");
  bad = c, bad.gamma = 1.5;
  algo_expect(ch_sac_create(&bad, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "gamma 1.5");
  bad = c, bad.batch_size = 0;
  algo_expect(ch_sac_create(&bad, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "batch_size 0");
  bad = c, bad.alpha = -1;
  algo_expect(ch_sac_create(&bad, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "alpha must be");
  bad = c, bad.auto_alpha = 1, bad.lr_alpha = 0;
  algo_expect(ch_sac_create(&bad, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err),
              CH_EINVAL, err, "lr_alpha 0");
  /* and the batch limit at update time */
  algo_check(ch_sac_create(&c, &r.actor, &r.q[0], &r.q[1], &r.qt[0], &r.qt[1], 3, &s, &err), err);
  float z[(MAXB + 1) * 5] = {0};
  uint64_t rng = 1;
  algo_expect(ch_sac_update(s, MAXB + 1, z, z, z, z, z, &rng, NULL, &err), CH_ERANGE, err,
              "batch 65 outside 1..64");
  algo_expect(ch_sac_update(s, 4, z, NULL, z, z, z, &rng, NULL, &err), CH_EINVAL, err,
              "action is NULL");
  ch_sac_free(s);
  algo_net_free(&odd);
  algo_net_free(&wrong_in);
  algo_net_free(&other);
  rig_free(&r);
}

/* ---- one update, piece by piece ----------------------------------------------------------- */

#define UB 16

typedef struct data {
  float obs[UB * 3], act[UB * 2], rew[UB], next[UB * 3], done[UB];
} data;

static void make_data(data *d, uint64_t seed) {
  uint64_t rng = seed;
  for (int i = 0; i < UB * 3; i++) {
    d->obs[i] = (float)algo_uniform(&rng, -1, 1);
    d->next[i] = (float)algo_uniform(&rng, -1, 1);
  }
  for (int i = 0; i < UB * 2; i++) d->act[i] = (float)algo_uniform(&rng, -2, 2);
  for (int i = 0; i < UB; i++) {
    d->rew[i] = (float)algo_uniform(&rng, -1, 1);
    d->done[i] = (float)(i % 3 == 0);
  }
}

static void test_targets(void **state) {
  (void)state;
  ch_sac_config c = config(2);
  c.gamma = 0.9;
  c.alpha = 0.35;
  rig r;
  rig_make(&r, 3, 2, "[16,16]", &c);
  data d;
  make_data(&d, 4);
  uint64_t rng = 17;
  float eps[UB * 2], y[UB], out[UB * 4], raw[UB * 2], act[UB * 2], in[UB * 5], q[2][UB];
  for (int i = 0; i < UB * 2; i++) eps[i] = (float)ch_policy_normal(&rng);
  ch_error err = {0, ""};
  algo_check(ch_sac_targets(r.sac, UB, d.rew, d.next, d.done, eps, y, &err), err);
  /* the same by hand through the networks */
  algo_check(r.actor.vt->forward(r.actor.h, d.next, UB, out, NULL, &err), err);
  ch_sac_actions(UB, 2, out, eps, raw, act);
  for (int i = 0; i < UB; i++) {
    memcpy(in + i * 5, d.next + i * 3, 3 * sizeof(float));
    memcpy(in + i * 5 + 3, act + i * 2, 2 * sizeof(float));
  }
  for (int k = 0; k < 2; k++)
    algo_check(r.qt[k].vt->forward(r.qt[k].h, in, UB, NULL, q[k], &err), err);
  for (int i = 0; i < UB; i++) {
    double lp = ch_policy_gaussian_logp(2, out + i * 4, raw + i * 2, 1);
    double want = d.rew[i] + 0.9 * (1 - d.done[i]) * (fmin(q[0][i], q[1][i]) - 0.35 * lp);
    algo_near(y[i], want, 1e-4 * (1 + fabs(want)));
    if (d.done[i] == 1.0f) assert_true(y[i] == d.rew[i]);
  }
  rig_free(&r);
}

/* After create the targets are copies; after an update they moved by tau toward the critics. */
static void test_polyak(void **state) {
  (void)state;
  ch_sac_config c = config(2);
  c.tau = 0.05;
  c.lr_critic = 1e-2;
  rig r;
  rig_make(&r, 3, 2, "[16,16]", &c);
  float *before[2];
  for (int k = 0; k < 2; k++) {
    float *on = algo_params(&r.q[k]), *tg = algo_params(&r.qt[k]);
    assert_memory_equal(on, tg, r.q[k].spec.param_count * sizeof(float));
    before[k] = tg;
    free(on);
  }
  data d;
  make_data(&d, 5);
  uint64_t rng = 23;
  ch_error err = {0, ""};
  ch_sac_stats st;
  algo_check(ch_sac_update(r.sac, UB, d.obs, d.act, d.rew, d.next, d.done, &rng, &st, &err), err);
  for (int k = 0; k < 2; k++) {
    uint64_t n = r.q[k].spec.param_count, moved = 0;
    float *on = algo_params(&r.q[k]), *tg = algo_params(&r.qt[k]);
    for (uint64_t i = 0; i < n; i++) {
      double want = 0.95 * before[k][i] + 0.05 * on[i];
      if (fabs(tg[i] - want) > 1e-6 * (1 + fabs(want)))
        fail_msg("q%d target param %llu = %.9g, expected 0.95 * %.9g + 0.05 * %.9g", k + 1,
                 (unsigned long long)i, tg[i], before[k][i], on[i]);
      moved += tg[i] != before[k][i];
    }
    /* the critics took a step of ~lr per parameter, so most targets moved */
    if (moved < n / 2)
      fail_msg("only %llu of %llu target params moved", (unsigned long long)moved,
               (unsigned long long)n);
    free(on);
    free(tg);
    free(before[k]);
  }
  rig_free(&r);
}

/* The critic gradient of one update (left in the accumulator) with done = 1, where y = r:
** 0.5 * mean (Q1(s, tanh a) - r)^2 by central differences over Q1's parameters before the step. */
static void test_critic_gradient(void **state) {
  (void)state;
  ch_sac_config c = config(2);
  rig r;
  rig_make(&r, 3, 2, "[8,8]", &c);
  data d;
  make_data(&d, 6);
  for (int i = 0; i < UB; i++) d.done[i] = 1;
  float *p0 = algo_params(&r.q[0]);
  uint64_t rng = 31, n = r.q[0].spec.param_count;
  ch_error err = {0, ""};
  ch_sac_stats st;
  algo_check(ch_sac_update(r.sac, UB, d.obs, d.act, d.rew, d.next, d.done, &rng, &st, &err), err);
  float *g = malloc(n * sizeof *g), in[UB * 5], qv[UB];
  assert_non_null(g);
  assert_int_equal(r.q[0].vt->get_grads(r.q[0].h, g, n), CH_OK);
  for (int i = 0; i < UB; i++) {
    memcpy(in + i * 5, d.obs + i * 3, 3 * sizeof(float));
    for (int j = 0; j < 2; j++) in[i * 5 + 3 + j] = (float)tanh(d.act[i * 2 + j]);
  }
  ch_net probe;
  char json[128];
  critic_json(json, sizeof json, 3, 2, "[8,8]", 99);
  algo_net(&probe, json);
  double loss0 = 0, worst = 0;
  for (uint64_t k = 0; k <= n; k++) {
    double l[2];
    for (int side = 0; side < 2; side++) {
      float keep = k < n ? p0[k] : 0;
      if (k < n) p0[k] = keep + (side ? -1e-2f : 1e-2f);
      algo_check(probe.vt->set_params(probe.h, p0, n, &err), err);
      if (k < n) p0[k] = keep;
      algo_check(probe.vt->forward(probe.h, in, UB, NULL, qv, &err), err);
      l[side] = 0;
      for (int i = 0; i < UB; i++) l[side] += 0.5 * (qv[i] - d.rew[i]) * (qv[i] - d.rew[i]) / UB;
    }
    if (k == n) {
      loss0 = l[0];
      break;
    }
    double num = (l[0] - l[1]) / 2e-2, e = fabs(g[k] - num) / (5e-5 + 5e-3 * fabs(num));
    worst = fmax(worst, e);
    if (e > 1)
      fail_msg("q1 param %llu: gradient %.7g, differences %.7g", (unsigned long long)k, g[k], num);
  }
  /* critic_loss counts both critics (SB3); Q1's part is loss0 */
  if (!(st.critic_loss > loss0))
    fail_msg("critic_loss %g not above Q1's %g", st.critic_loss, loss0);
  double rmean = 0;
  for (int i = 0; i < UB; i++) rmean += d.rew[i] / UB;
  algo_near(st.target_mean, rmean, 1e-6);
  print_message("critic gradient: worst error %.3f of the tolerance\n", worst);
  free(g);
  free(p0);
  algo_net_free(&probe);
  rig_free(&r);
}

/* The actor's parameter gradient through both critics (dQ/da by differences) against central
** differences of the actor loss over the actor's parameters, noise held fixed. */
static void test_actor_gradient(void **state) {
  (void)state;
  ch_sac_config c = config(2);
  c.alpha = 0.2;
  rig r;
  rig_make(&r, 3, 2, "[16,16]", &c);
  data d;
  make_data(&d, 7);
  uint64_t rng = 41, n = r.actor.spec.param_count;
  float eps[UB * 2];
  for (int i = 0; i < UB * 2; i++) eps[i] = (float)ch_policy_normal(&rng);
  /* critics with more curvature than their init, so that dQ/da matters */
  for (int k = 0; k < 2; k++) {
    float *p = algo_params(&r.q[k]);
    for (uint64_t i = 0; i < r.q[k].spec.param_count; i++) p[i] *= 3.0f;
    ch_error err = {0, ""};
    algo_check(r.q[k].vt->set_params(r.q[k].h, p, r.q[k].spec.param_count, &err), err);
    free(p);
  }
  float *p = algo_params(&r.actor), *g = malloc(n * sizeof *g);
  assert_non_null(g);
  for (uint64_t i = 0; i < n; i++) p[i] += (float)algo_uniform(&rng, -0.2, 0.2);
  ch_error err = {0, ""};
  ch_sac_stats st;
  algo_check(r.actor.vt->set_params(r.actor.h, p, n, &err), err);
  algo_check(ch_sac_actor_grad(r.sac, UB, d.obs, eps, &st, &err), err);
  assert_int_equal(r.actor.vt->get_grads(r.actor.h, g, n), CH_OK);
  double worst = 0, norm = 0;
  uint64_t failed = 0;
  for (uint64_t k = 0; k < n; k++) {
    double l[2];
    for (int side = 0; side < 2; side++) {
      float keep = p[k];
      p[k] = keep + (side ? -1e-2f : 1e-2f);
      algo_check(r.actor.vt->set_params(r.actor.h, p, n, &err), err);
      p[k] = keep;
      ch_sac_stats s2;
      algo_check(ch_sac_actor_grad(r.sac, UB, d.obs, eps, &s2, &err), err);
      l[side] = s2.actor_loss;
    }
    double num = (l[0] - l[1]) / 2e-2, e = fabs(g[k] - num) / (2e-4 + 1e-2 * fabs(num));
    worst = fmax(worst, e);
    norm += (double)g[k] * g[k];
    if (e > 1 && failed++ < 5)
      print_error("actor param %llu: gradient %.7g, differences %.7g\n", (unsigned long long)k,
                  g[k], num);
  }
  print_message("actor gradient through the critics: loss %.5f, norm %.4f, worst error %.3f of "
                "the tolerance; log std grads %.5f %.5f\n",
                st.actor_loss, sqrt(norm), worst, g[n - 2], g[n - 1]);
  if (failed)
    fail_msg("%llu of %llu actor gradients disagree", (unsigned long long)failed,
             (unsigned long long)n);
  if (!(sqrt(norm) > 0.05)) fail_msg("gradient norm %g too small to be a test", sqrt(norm));
  free(p);
  free(g);
  rig_free(&r);
}

/* ---- alpha -------------------------------------------------------------------------------- */

/* Adam's first step moves log alpha by exactly lr against the sign of its gradient,
** entropy - target_entropy. */
static void check_auto_alpha(double target_entropy, double want_sign) {
  ch_sac_config c = config(2);
  c.auto_alpha = 1;
  c.lr_alpha = 0.01;
  c.target_entropy = target_entropy;
  rig r;
  rig_make(&r, 3, 2, "[8]", &c);
  data d;
  make_data(&d, 8);
  uint64_t rng = 2;
  ch_error err = {0, ""};
  ch_sac_stats st;
  algo_check(ch_sac_update(r.sac, UB, d.obs, d.act, d.rew, d.next, d.done, &rng, &st, &err), err);
  algo_near(st.alpha, 0.2, 1e-12);
  double g = st.entropy - target_entropy;
  assert_true(g * want_sign < 0);
  algo_near(ch_sac_alpha(r.sac), 0.2 * exp(-0.01 * (g > 0 ? 1 : -1)), 1e-9);
  algo_near(st.alpha_loss, log(0.2) * g, 1e-6 * (1 + fabs(g)));
  rig_free(&r);
}

static void test_alpha(void **state) {
  (void)state;
  check_auto_alpha(-10.0, -1.0); /* entropy above target: alpha falls */
  check_auto_alpha(10.0, 1.0);   /* below: it rises */
  /* fixed alpha stays, and its state round-trips */
  ch_sac_config c = config(2);
  rig r;
  rig_make(&r, 3, 2, "[8]", &c);
  data d;
  make_data(&d, 9);
  uint64_t rng = 2;
  ch_error err = {0, ""};
  ch_sac_stats st;
  algo_check(ch_sac_update(r.sac, UB, d.obs, d.act, d.rew, d.next, d.done, &rng, &st, &err), err);
  algo_near(ch_sac_alpha(r.sac), 0.2, 1e-15);
  algo_near(st.alpha_loss, 0, 0);
  ch_sac_alpha_state a = {log(0.05), 0.1, 0.02, 7}, back;
  algo_check(ch_sac_set_alpha_state(r.sac, &a, &err), err);
  ch_sac_get_alpha_state(r.sac, &back);
  assert_memory_equal(&a, &back, sizeof a);
  algo_near(ch_sac_alpha(r.sac), 0.05, 1e-15);
  a.adam_v = -1;
  algo_expect(ch_sac_set_alpha_state(r.sac, &a, &err), CH_EINVAL, err, "adam_v -1");
  rig_free(&r);
}

/* Equal seeds give equal updates, and an update draws exactly 2 * B * D normals from rng. */
static void test_deterministic(void **state) {
  (void)state;
  ch_sac_config c = config(2);
  rig r[2];
  data d;
  make_data(&d, 10);
  for (int k = 0; k < 2; k++) rig_make(&r[k], 3, 2, "[16,16]", &c);
  ch_sac_stats st[2];
  ch_error err = {0, ""};
  for (int k = 0; k < 2; k++) {
    uint64_t rng = 77, want = 77;
    for (int u = 0; u < 5; u++)
      algo_check(
          ch_sac_update(r[k].sac, UB, d.obs, d.act, d.rew, d.next, d.done, &rng, &st[k], &err),
          err);
    for (int i = 0; i < 5 * 2 * UB * 2; i++) ch_policy_normal(&want);
    assert_true(rng == want);
  }
  assert_memory_equal(&st[0], &st[1], sizeof st[0]);
  float *a0 = algo_params(&r[0].actor), *a1 = algo_params(&r[1].actor);
  float *t0 = algo_params(&r[0].qt[1]), *t1 = algo_params(&r[1].qt[1]);
  assert_memory_equal(a0, a1, r[0].actor.spec.param_count * sizeof(float));
  assert_memory_equal(t0, t1, r[0].qt[1].spec.param_count * sizeof(float));
  free(a0);
  free(a1);
  free(t0);
  free(t1);
  for (int k = 0; k < 2; k++) rig_free(&r[k]);
}

/* ---- learning a one-step problem ---------------------------------------------------------- */

#define TOY_N 4096

/* reward = -sum_j (a_j - target_j(obs))^2 with a = tanh(u) the commanded action. */
static void toy_target(int D, const float *obs, double *t) {
  t[0] = 0.6 * obs[0] - 0.2 * obs[1];
  if (D > 1) t[1] = -0.5 * obs[1] + 0.2;
}

/* Mean |tanh(mean(s)) - target(s)| over test states. */
static double toy_error(rig *r, const float *obs, int n) {
  float out[256 * 4];
  ch_error err = {0, ""};
  algo_check(r->actor.vt->forward(r->actor.h, obs, (uint32_t)n, out, NULL, &err), err);
  double e = 0;
  for (int i = 0; i < n; i++) {
    double t[2];
    toy_target(r->D, obs + i * r->O, t);
    for (int j = 0; j < r->D; j++) e += fabs(tanh(out[i * 2 * r->D + j]) - t[j]) / (n * r->D);
  }
  return e;
}

static void check_toy(int D, int updates) {
  enum { O = 2 };
  ch_sac_config c = config(D);
  c.alpha = 0.01;
  c.lr_actor = c.lr_critic = 1e-3;
  c.tau = 0.01;
  rig r;
  rig_make(&r, O, D, "[64,64]", &c);
  uint64_t rng = 1000 + (uint64_t)D;
  float *obs = malloc(sizeof(float) * TOY_N * O), *act = malloc(sizeof(float) * TOY_N * D);
  float *rew = malloc(sizeof(float) * TOY_N), test_obs[256 * O];
  assert_true(obs && act && rew);
  for (int i = 0; i < TOY_N; i++) { /* uniformly random actions: SAC learns off-policy */
    double t[2], r2 = 0;
    for (int k = 0; k < O; k++) obs[i * O + k] = (float)algo_uniform(&rng, -1, 1);
    toy_target(D, obs + i * O, t);
    for (int j = 0; j < D; j++) {
      double x = algo_uniform(&rng, -0.999, 0.999);
      act[i * D + j] = (float)atanh(x);
      r2 += (tanh(act[i * D + j]) - t[j]) * (tanh(act[i * D + j]) - t[j]);
    }
    rew[i] = (float)-r2;
  }
  for (int i = 0; i < 256 * O; i++) test_obs[i] = (float)algo_uniform(&rng, -1, 1);
  float bo[MAXB * O], ba[MAXB * 2], br[MAXB], bd[MAXB];
  for (int i = 0; i < MAXB; i++) bd[i] = 1; /* one step: every transition ends its episode */
  double e0 = toy_error(&r, test_obs, 256), first = 0, last = 0;
  ch_error err = {0, ""};
  for (int u = 0; u < updates; u++) {
    for (int i = 0; i < MAXB; i++) {
      int k = (int)(ch_rng_next(&rng) % TOY_N);
      memcpy(bo + i * O, obs + k * O, sizeof(float) * O);
      memcpy(ba + i * D, act + k * D, sizeof(float) * (size_t)D);
      br[i] = rew[k];
    }
    ch_sac_stats st;
    algo_check(ch_sac_update(r.sac, MAXB, bo, ba, br, bo, bd, &rng, &st, &err), err);
    if (u < 50) first += st.critic_loss / 50;
    if (u >= updates - 50) last += st.critic_loss / 50;
    if (!isfinite(st.actor_loss) || !isfinite(st.critic_loss))
      fail_msg("update %d: losses %g %g", u, st.actor_loss, st.critic_loss);
  }
  double e1 = toy_error(&r, test_obs, 256);
  print_message("toy D=%d: |tanh(mean) - target| %.4f -> %.4f after %d updates; critic loss "
                "%.5f -> %.5f\n",
                D, e0, e1, updates, first, last);
  if (!(e0 > 0.15)) fail_msg("the untrained actor is already close (%g): not a test", e0);
  if (!(e1 < 0.06))
    fail_msg("the actor's mean is %g from the target after %d updates", e1, updates);
  if (!(last < 0.2 * first)) fail_msg("critic loss %g -> %g did not fall", first, last);
  free(obs);
  free(act);
  free(rew);
  rig_free(&r);
}

static void test_learns_1d(void **state) {
  (void)state;
  check_toy(1, 1500);
}

static void test_learns_2d(void **state) {
  (void)state;
  check_toy(2, 3000);
}

/* ---- the learner's replay memory ---------------------------------------------------------- */

#define RO 2  /* vector floats per step */
#define RB 64 /* minibatch */
#define RT 8  /* steps of a full segment */

/* A learner over an actor with RO inputs and one action dim; tiny networks (only the replay
** memory is under test). */
typedef struct replay_rig {
  ch_net actor;
  ch_sac_learner *l;
} replay_rig;

static void replay_make(replay_rig *r) {
  algo_net(&r->actor, "{\"input_size\":2,\"num_actions\":1,\"head\":\"gaussian\",\"hidden\":[4]}");
  ch_train_config c;
  ch_config_defaults(&c);
  c.hp.batch_size = RB;
  c.num_hidden = 1;
  c.hidden[0] = 4;
  ch_error err = {0, ""};
  algo_check(ch_sac_learner_create(&c, NULL, &r->actor, RO, 0, &r->l, &err), err);
  assert_int_equal(ch_sac_learner_size(r->l), 0);
}

static void replay_free(replay_rig *r) {
  ch_sac_learner_free(r->l);
  algo_net_free(&r->actor);
}

/* Step i of segment id is named id * 100 + i: in its observation, reward and action, so that a
** drawn row tells which transition it is. Returns the record (free it) and its length. */
static void *replay_record(int id, int steps, int terminal, size_t *len) {
  float obs[RT * RO], act[RT], rew[RT], zero[RT] = {0}, trace[RT * CH_TRACE_FLOATS] = {0};
  for (int i = 0; i < steps; i++) {
    obs[i * RO] = (float)(id * 100 + i);
    obs[i * RO + 1] = -1;
    act[i] = rew[i] = (float)(id * 100 + i);
  }
  ch_segment s = {.episode_id = (uint64_t)id,
                  .num_steps = (uint32_t)steps,
                  .obs_size = RO,
                  .action_size = 1,
                  .flags = terminal ? CH_SEGMENT_EPISODE_END | CH_SEGMENT_TERMINAL : 0,
                  .obs = obs,
                  .action = act,
                  .reward = rew,
                  .logp = zero,
                  .value = zero,
                  .trace = trace};
  *len = ch_segment_encoded_size(&s);
  void *rec = malloc(*len);
  assert_non_null(rec);
  ch_segment_encode(&s, rec);
  return rec;
}

static void replay_add(replay_rig *r, int id, int steps, int terminal) {
  size_t len;
  void *rec = replay_record(id, steps, terminal, &len);
  ch_error err = {0, ""};
  algo_check(ch_sac_learner_add_record(r->l, rec, len, &err), err);
  free(rec);
}

/* Check that every row is a real transition (s' the next step, or done at the terminal last
** step of a segment whose terminal steps are in last[id]) and count it in hits[name]. */
static void replay_tally(const ch_sac_minibatch *mb, const int *last, int *hits, int names) {
  assert_int_equal(mb->n, RB);
  for (int b = 0; b < mb->n; b++) {
    int name = (int)mb->rew[b], id = name / 100, i = name % 100;
    assert_true(name >= 0 && name < names);
    assert_true(mb->obs[b * RO] == (float)name && mb->obs[b * RO + 1] == -1.0f);
    assert_true(mb->act[b] == (float)name);
    if (mb->done[b] == 1.0f) {
      assert_int_equal(i, last[id]); /* only a terminal segment's last step has no s' */
      assert_true(mb->next[b * RO] == (float)name);
    } else {
      assert_true(mb->done[b] == 0.0f);
      assert_true(mb->next[b * RO] == (float)(name + 1));
    }
    hits[name]++;
  }
}

/* Five full segments cut by the length (7 transitions each), one full terminal one (8) and a
** short terminal one, as an episode's end often is (3): 46 transitions. Drawn uniformly, each
** is hit draws / 46 times. Without the rejection step (a record, then one of ITS transitions)
** the short segment's would be hit 8/3 times as often as a terminal full one's; the bound
** below is set far under what that bias gives (computed here, so the check is known to bite). */
static void test_replay_draws_transitions_uniformly(void **state) {
  (void)state;
  replay_rig r;
  replay_make(&r);
  enum { IDS = 8, NAMES = IDS * 100, DRAWS = 1500 };
  int last[IDS], hits[NAMES] = {0}, count[IDS], K = 0;
  for (int id = 0; id < IDS; id++) {
    int steps = id == 5 ? 3 : RT, terminal = id >= 5 && id != 7;
    if (id == 7) steps = 1; /* no transition at all: not kept */
    replay_add(&r, id, steps, terminal);
    last[id] = terminal ? steps - 1 : -1;
    count[id] = steps - 1 + terminal;
    K += count[id];
  }
  assert_int_equal(K, 46);
  assert_int_equal(ch_sac_learner_size(r.l), K);
  uint64_t rng = 12345;
  ch_error err = {0, ""};
  for (int d = 0; d < DRAWS; d++) {
    ch_sac_minibatch mb;
    algo_check(ch_sac_learner_sample(r.l, &rng, &mb, &err), err);
    replay_tally(&mb, last, hits, NAMES);
  }
  /* Pearson's statistic against uniform, and what the biased draw would give on average */
  double n = (double)DRAWS * RB, e = n / K, chi2 = 0, biased = 0;
  int records = IDS - 1;
  for (int id = 0; id < IDS; id++)
    for (int i = 0; i < count[id]; i++) {
      double o = hits[id * 100 + i], p = 1.0 / records / count[id];
      chi2 += (o - e) * (o - e) / e;
      biased += (n * p - e) * (n * p - e) / e;
    }
  for (int name = 0; name < NAMES; name++)
    if (name % 100 >= count[name / 100]) assert_int_equal(hits[name], 0);
  /* 45 degrees of freedom: mean 45, sd 9.5; 110 is past 6.8 sd */
  if (chi2 > 110) fail_msg("chi-square %.1f over 45 dof: not uniform", chi2);
  if (biased < 10 * 110) fail_msg("the bound would not catch the per-record bias (%.1f)", biased);
  replay_free(&r);
}

/* The memory is a FIFO of records within the caps: once full, the oldest leave first and are
** never drawn again; the held transitions stay at the cap. */
static void test_replay_evicts_the_oldest(void **state) {
  (void)state;
  replay_rig r;
  replay_make(&r);
  ch_error err = {0, ""};
  algo_check(ch_sac_learner_set_caps(r.l, 20, CH_SAC_REPLAY_BYTES, &err), err);
  enum { IDS = 12, NAMES = IDS * 100 };
  int last[IDS], hits[NAMES] = {0};
  for (int id = 0; id < 10; id++) {
    replay_add(&r, id, 5, 0); /* 4 transitions each */
    last[id] = -1;
    assert_int_equal(ch_sac_learner_size(r.l), id < 5 ? 4 * (id + 1) : 20);
  }
  uint64_t rng = 99;
  for (int d = 0; d < 200; d++) {
    ch_sac_minibatch mb;
    algo_check(ch_sac_learner_sample(r.l, &rng, &mb, &err), err);
    replay_tally(&mb, last, hits, NAMES);
  }
  for (int name = 0; name < NAMES; name++) {
    int id = name / 100, i = name % 100, held = id >= 5 && id < 10 && i < 4;
    if (held && hits[name] == 0) fail_msg("transition %d held but never drawn", name);
    if (!held && hits[name] != 0) fail_msg("transition %d drawn %d times", name, hits[name]);
  }
  /* a shorter record evicts one: 16 + 3 */
  replay_add(&r, 10, 3, 1);
  assert_int_equal(ch_sac_learner_size(r.l), 19);
  /* the byte cap: room for two records of this size */
  size_t len;
  free(replay_record(11, 5, 0, &len));
  algo_check(ch_sac_learner_set_caps(r.l, 20, 2 * len + len / 2, &err), err);
  replay_add(&r, 11, 5, 0);
  assert_int_equal(ch_sac_learner_size(r.l), 4 + 3);
  /* one record beyond a cap alone is refused, and nothing held changes */
  algo_check(ch_sac_learner_set_caps(r.l, 3, CH_SAC_REPLAY_BYTES, &err), err);
  void *big = replay_record(11, 5, 0, &len);
  algo_expect(ch_sac_learner_add_record(r.l, big, len, &err), CH_ERANGE, err, "exceeds the caps");
  free(big);
  assert_int_equal(ch_sac_learner_size(r.l), 7);
  algo_expect(ch_sac_learner_set_caps(r.l, 0, 1, &err), CH_EINVAL, err, "caps must be");
  replay_free(&r);
}

/* Bytes that are not a segment of the model's shapes are refused with the reason; what was
** held stays, and draws still come from it alone. */
static void test_replay_rejects_corrupt_records(void **state) {
  (void)state;
  replay_rig r;
  replay_make(&r);
  ch_error err = {0, ""};
  uint64_t rng = 5;
  ch_sac_minibatch mb;
  algo_expect(ch_sac_learner_sample(r.l, &rng, &mb, &err), CH_EINVAL, err, "empty");
  replay_add(&r, 1, 4, 0);
  size_t len;
  unsigned char *rec = replay_record(2, RT, 1, &len);
  rec[100] ^= 1;
  algo_expect(ch_sac_learner_add_record(r.l, rec, len, &err), CH_ECORRUPT, err,
              "checksum mismatch");
  algo_expect(ch_sac_learner_add_record(r.l, rec, len - 4, &err), CH_ECORRUPT, err, "do not match");
  free(rec);
  /* a valid record of another model: three observation floats */
  float obs[3] = {0}, one[1] = {0}, trace[CH_TRACE_FLOATS] = {0};
  ch_segment s = {.num_steps = 1,
                  .obs_size = 3,
                  .action_size = 1,
                  .obs = obs,
                  .action = one,
                  .reward = one,
                  .logp = one,
                  .value = one,
                  .trace = trace};
  unsigned char other[256];
  assert_true(ch_segment_encoded_size(&s) <= sizeof other);
  ch_segment_encode(&s, other);
  algo_expect(ch_sac_learner_add_record(r.l, other, ch_segment_encoded_size(&s), &err), CH_ECORRUPT,
              err, "the model has 2, 0, 1");
  assert_int_equal(ch_sac_learner_size(r.l), 3);
  int last[3] = {-1, -1, -1}, hits[300] = {0};
  for (int d = 0; d < 20; d++) {
    algo_check(ch_sac_learner_sample(r.l, &rng, &mb, &err), err);
    replay_tally(&mb, last, hits, 300);
  }
  for (int name = 0; name < 300; name++)
    assert_int_equal(hits[name] > 0, name >= 100 && name < 103);
  replay_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_actor_loss_gradient),
      cmocka_unit_test(test_q_grad_accuracy),
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_targets),
      cmocka_unit_test(test_polyak),
      cmocka_unit_test(test_critic_gradient),
      cmocka_unit_test(test_actor_gradient),
      cmocka_unit_test(test_alpha),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_learns_1d),
      cmocka_unit_test(test_learns_2d),
      cmocka_unit_test(test_replay_draws_transitions_uniformly),
      cmocka_unit_test(test_replay_evicts_the_oldest),
      cmocka_unit_test(test_replay_rejects_corrupt_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
