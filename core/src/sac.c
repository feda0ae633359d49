/* sac.c -- Soft Actor-Critic for continuous actions: targets, critics, actor, alpha, Polyak. */
#include "sac.h"

#include "policy.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CH__HALF_LOG_2PI 0.91893853320467274178 /* 0.5 log(2 pi) */
#define CH__MAX_BATCH    (1 << 20)

struct ch_sac {
  ch_sac_config c;
  ch_net *actor, *q[2], *qt[2];
  uint32_t O;
  int D, cap;
  ch_sac_alpha_state a;
  float *mem; /* every buffer below, one allocation */
  float *pol, *dpol, *eps, *raw, *act, *logpi, *y, *qin, *qv[2], *dq, *dqa[2], *qwork, *pa, *pb;
};

static const char *const ch__q_name[2] = {"q1", "q2"};
static const char *const ch__qt_name[2] = {"q1_target", "q2_target"};

/* A network call failed: name what sac was doing in front of the plugin's own message. */
static int ch__net_fail(ch_error *err, int rc, const char *what, const char *net,
                        const ch_error *e) {
  return ch_error_set(err, rc, "sac: %s of %s: %s", what, net, e->message);
}

/* ---- pure pieces -------------------------------------------------------------------------- */

void ch_sac_actions(int B, int D, const float *out, const float *eps, float *raw, float *act) {
  for (int i = 0; i < B; i++) {
    const float *o = out + (size_t)i * 2 * D;
    for (int j = 0; j < D; j++) {
      double u = o[j] + exp(ch_policy_clamp_log_std(o[D + j])) * eps[(size_t)i * D + j];
      raw[(size_t)i * D + j] = (float)u;
      act[(size_t)i * D + j] = (float)tanh(u);
    }
  }
}

/* log pi of the squashed action made from one sample's outputs o and noise e. In terms of e,
** because (u - mean) / std = e exactly, whatever float rounding did to u. */
static double ch__logpi(int D, const float *o, const float *e) {
  double lp = 0;
  for (int j = 0; j < D; j++) {
    double ls = ch_policy_clamp_log_std(o[D + j]), u = o[j] + exp(ls) * e[j];
    lp += -0.5 * (double)e[j] * e[j] - ls - CH__HALF_LOG_2PI - ch_policy_log1m_tanh2(u);
  }
  return lp;
}

double ch_sac_actor_loss(int B, int D, double alpha, const float *out, const float *eps,
                         const float *q, const float *dq_da, float *dout, float *logpi) {
  double loss = 0, inv_b = 1.0 / B;
  for (int i = 0; i < B; i++) {
    const float *o = out + (size_t)i * 2 * D, *e = eps + (size_t)i * D;
    float *d = dout + (size_t)i * 2 * D;
    for (int j = 0; j < D; j++) {
      double raw_ls = o[D + j], ls = ch_policy_clamp_log_std(raw_ls), std = exp(ls);
      double a = tanh(o[j] + std * e[j]);
      /* dQ/du through tanh; d log pi/du = 2 tanh(u) from -log(1 - tanh(u)^2); du/dmean = 1,
      ** du/dlog_std = std * eps, and log pi has its own -log_std. */
      double dq_du = dq_da[(size_t)i * D + j] * (1.0 - a * a), dl_du = alpha * 2.0 * a - dq_du;
      int clamped = raw_ls < CH_POLICY_LOG_STD_MIN || raw_ls > CH_POLICY_LOG_STD_MAX;
      d[j] = (float)(dl_du * inv_b);
      d[D + j] = clamped ? 0.0f : (float)((dl_du * std * e[j] - alpha) * inv_b);
    }
    double lp = ch__logpi(D, o, e);
    if (logpi) logpi[i] = (float)lp;
    loss += alpha * lp - q[i];
  }
  return loss * inv_b;
}

size_t ch_sac_q_grad_work(int B, uint32_t obs_size, int D) {
  size_t rows = (size_t)(1 + 2 * D) * (size_t)B;
  return rows * ((size_t)obs_size + (size_t)D) + rows;
}

/* Write B rows of [obs_i, act_i] (act may be NULL: leave the action columns). */
static void ch__rows(int B, uint32_t O, int D, const float *obs, const float *act, float *in) {
  size_t W = (size_t)O + (size_t)D;
  for (int i = 0; i < B; i++) {
    memcpy(in + (size_t)i * W, obs + (size_t)i * O, sizeof(float) * O);
    if (act) memcpy(in + (size_t)i * W + O, act + (size_t)i * D, sizeof(float) * (size_t)D);
  }
}

int ch_sac_q_grad(ch_net *q, int B, uint32_t obs_size, int D, const float *obs, const float *act,
                  double h, float *q_out, float *dq_da, float *work, ch_error *err) {
  size_t W = (size_t)obs_size + (size_t)D, rows = (size_t)(1 + 2 * D) * (size_t)B;
  float *in = work, *val = work + rows * W;
  /* Block 0 is (obs, a); block 1 + 2j has a_j + h, block 2 + 2j has a_j - h. */
  for (int k = 0; k < 1 + 2 * D; k++) {
    float *blk = in + (size_t)k * B * W;
    ch__rows(B, obs_size, D, obs, act, blk);
    if (k == 0) continue;
    int j = (k - 1) / 2;
    double sign = (k - 1) % 2 ? -1.0 : 1.0;
    for (int i = 0; i < B; i++) {
      float *x = blk + (size_t)i * W + obs_size + j;
      *x = (float)(*x + sign * h);
    }
  }
  ch_error e = {0, ""};
  int rc = q->vt->forward(q->h, in, (uint32_t)rows, NULL, val, &e);
  if (rc != CH_OK) return ch_error_set(err, rc, "sac: forward of a critic: %s", e.message);
  for (int i = 0; i < B; i++) {
    q_out[i] = val[i];
    for (int j = 0; j < D; j++) {
      double a = act[(size_t)i * D + j];
      /* The step as the floats hold it, so input rounding does not bias the slope. */
      double span = (double)(float)(a + h) - (double)(float)(a - h);
      double up = val[(size_t)(1 + 2 * j) * B + i], down = val[(size_t)(2 + 2 * j) * B + i];
      dq_da[(size_t)i * D + j] = (float)((up - down) / span);
    }
  }
  return CH_OK;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

void ch_sac_config_defaults(ch_sac_config *c, int D) {
  c->gamma = 0.999;
  c->tau = 0.005;
  c->alpha = 0.2;
  c->auto_alpha = 0;
  c->target_entropy = -(double)D;
  c->lr_actor = c->lr_critic = c->lr_alpha = 3e-4;
  c->batch_size = 64;
}

static int ch__bad_rate(double v) {
  return !(isfinite(v) && v > 0);
}

static int ch__check_config(const ch_sac_config *c, ch_error *err) {
  if (!c) return ch_error_set(err, CH_EINVAL, "sac config: NULL");
  if (!(c->gamma >= 0 && c->gamma <= 1))
    return ch_error_set(err, CH_EINVAL, "sac config: gamma %g outside [0, 1]", c->gamma);
  if (!(c->tau > 0 && c->tau <= 1))
    return ch_error_set(err, CH_EINVAL, "sac config: tau %g outside (0, 1]", c->tau);
  if (ch__bad_rate(c->alpha))
    return ch_error_set(err, CH_EINVAL, "sac config: alpha must be finite and > 0, got %g",
                        c->alpha);
  if (c->auto_alpha != 0 && c->auto_alpha != 1)
    return ch_error_set(err, CH_EINVAL, "sac config: auto_alpha must be 0 or 1, got %d",
                        c->auto_alpha);
  if (!isfinite(c->target_entropy))
    return ch_error_set(err, CH_EINVAL, "sac config: target_entropy must be finite");
  if (ch__bad_rate(c->lr_actor) || ch__bad_rate(c->lr_critic) ||
      (c->auto_alpha && ch__bad_rate(c->lr_alpha)))
    return ch_error_set(err, CH_EINVAL,
                        "sac config: learning rates must be finite and > 0, got lr_actor %g, "
                        "lr_critic %g, lr_alpha %g",
                        c->lr_actor, c->lr_critic, c->lr_alpha);
  if (c->batch_size < 1 || c->batch_size > CH__MAX_BATCH)
    return ch_error_set(err, CH_EINVAL, "sac config: batch_size %d outside 1..%d", c->batch_size,
                        CH__MAX_BATCH);
  return CH_OK;
}

static int ch__check_critic(const ch_net *n, const char *name, uint32_t want_in, ch_error *err) {
  if (n->spec.input_size != want_in)
    return ch_error_set(err, CH_EINVAL,
                        "sac: %s has input_size %u, expected %u (obs_size + action dims)", name,
                        n->spec.input_size, want_in);
  return CH_OK;
}

/* Shapes of the five networks; sets *D. */
static int ch__check_nets(ch_net *const n[5], uint32_t O, int *D, ch_error *err) {
  static const char *const name[5] = {"actor", "q1", "q2", "q1_target", "q2_target"};
  for (int k = 0; k < 5; k++) {
    if (!n[k] || !n[k]->vt || !n[k]->h)
      return ch_error_set(err, CH_EINVAL, "sac: network %s is NULL", name[k]);
    for (int m = 0; m < k; m++)
      if (n[m]->h == n[k]->h)
        return ch_error_set(err, CH_EINVAL, "sac: %s and %s are the same network handle", name[m],
                            name[k]);
  }
  const ch_network_spec *as = &n[0]->spec;
  if (as->input_size != O)
    return ch_error_set(err, CH_EINVAL, "sac: actor has input_size %u, expected obs_size %u",
                        as->input_size, O);
  if (as->policy_size < 2 || as->policy_size % 2 || as->policy_size > 2 * CH_MAX_ACTIONS)
    return ch_error_set(err, CH_EINVAL,
                        "sac: actor policy_size %u is not 2 * D (means, log stds) with D in 1..%d",
                        as->policy_size, CH_MAX_ACTIONS);
  *D = (int)as->policy_size / 2;
  for (int k = 1; k < 5; k++) {
    int rc = ch__check_critic(n[k], name[k], O + (uint32_t)*D, err);
    if (rc) return rc;
  }
  for (int k = 0; k < 2; k++)
    if (n[3 + k]->spec.param_count != n[1 + k]->spec.param_count)
      return ch_error_set(err, CH_EINVAL, "sac: %s has %llu parameters, %s %llu: not a copy",
                          name[3 + k], (unsigned long long)n[3 + k]->spec.param_count, name[1 + k],
                          (unsigned long long)n[1 + k]->spec.param_count);
  return CH_OK;
}

/* Carve the work buffers out of one allocation. */
static int ch__alloc(ch_sac *s, ch_error *err) {
  size_t B = (size_t)s->cap, D = (size_t)s->D, O = s->O;
  uint64_t np = s->q[0]->spec.param_count > s->q[1]->spec.param_count ? s->q[0]->spec.param_count
                                                                      : s->q[1]->spec.param_count;
  size_t qw = ch_sac_q_grad_work(s->cap, s->O, s->D);
  size_t sizes[] = {B * 2 * D, B * 2 * D, B * D, B * D, B * D, B,  B,  B * (O + D),
                    B,         B,         B,     B * D, B * D, qw, np, np};
  float **ptrs[] = {&s->pol,    &s->dpol,  &s->eps,   &s->raw,   &s->act, &s->logpi,
                    &s->y,      &s->qin,   &s->qv[0], &s->qv[1], &s->dq,  &s->dqa[0],
                    &s->dqa[1], &s->qwork, &s->pa,    &s->pb};
  size_t total = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
  s->mem = malloc(total * sizeof(float));
  if (!s->mem)
    return ch_error_set(err, CH_ENOMEM, "sac: out of memory for %zu floats of work buffers", total);
  float *p = s->mem;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    *ptrs[i] = p;
    p += sizes[i];
  }
  return CH_OK;
}

/* Copy (tau 1) or average the online critics into the targets. */
static int ch__polyak(ch_sac *s, double tau, ch_error *err) {
  for (int k = 0; k < 2; k++) {
    uint64_t n = s->q[k]->spec.param_count;
    int rc = s->q[k]->vt->get_params(s->q[k]->h, s->pa, n);
    if (rc == CH_OK) rc = s->qt[k]->vt->get_params(s->qt[k]->h, s->pb, n);
    if (rc != CH_OK)
      return ch_error_set(err, rc, "sac: get_params of %s or %s failed (%d)", ch__q_name[k],
                          ch__qt_name[k], rc);
    for (uint64_t i = 0; i < n; i++)
      s->pb[i] = tau == 1.0 ? s->pa[i] : (float)((1.0 - tau) * s->pb[i] + tau * s->pa[i]);
    ch_error e = {0, ""};
    rc = s->qt[k]->vt->set_params(s->qt[k]->h, s->pb, n, &e);
    if (rc != CH_OK) return ch__net_fail(err, rc, "set_params", ch__qt_name[k], &e);
  }
  return CH_OK;
}

int ch_sac_create(const ch_sac_config *c, ch_net *actor, ch_net *q1, ch_net *q2, ch_net *q1_target,
                  ch_net *q2_target, uint32_t obs_size, ch_sac **out, ch_error *err) {
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "sac: out is NULL");
  *out = NULL;
  ch_net *const nets[5] = {actor, q1, q2, q1_target, q2_target};
  int D = 0, rc = ch__check_config(c, err);
  if (rc == CH_OK) rc = ch__check_nets(nets, obs_size, &D, err);
  if (rc != CH_OK) return rc;
  ch_sac *s = calloc(1, sizeof *s);
  if (!s) return ch_error_set(err, CH_ENOMEM, "sac: out of memory");
  *s = (ch_sac){.c = *c, .actor = actor, .q = {q1, q2}, .qt = {q1_target, q2_target}};
  s->O = obs_size;
  s->D = D;
  s->cap = c->batch_size;
  s->a.log_alpha = log(c->alpha);
  rc = ch__alloc(s, err);
  if (rc == CH_OK) rc = ch__polyak(s, 1.0, err);
  if (rc != CH_OK) {
    ch_sac_free(s);
    return rc;
  }
  *out = s;
  return CH_OK;
}

void ch_sac_free(ch_sac *s) {
  if (!s) return;
  free(s->mem);
  free(s);
}

int ch_sac_dims(const ch_sac *s) {
  return s->D;
}

double ch_sac_alpha(const ch_sac *s) {
  return exp(s->a.log_alpha);
}

void ch_sac_get_alpha_state(const ch_sac *s, ch_sac_alpha_state *out) {
  *out = s->a;
}

int ch_sac_set_alpha_state(ch_sac *s, const ch_sac_alpha_state *in, ch_error *err) {
  if (!isfinite(in->log_alpha) || !isfinite(in->adam_m) || !(in->adam_v >= 0) ||
      !isfinite(in->adam_v))
    return ch_error_set(err, CH_EINVAL,
                        "sac: alpha state (log_alpha %g, adam_m %g, adam_v %g) is not finite "
                        "with adam_v >= 0",
                        in->log_alpha, in->adam_m, in->adam_v);
  s->a = *in;
  return CH_OK;
}

/* ---- the update --------------------------------------------------------------------------- */

int ch_sac_targets(ch_sac *s, int B, const float *reward, const float *next_obs, const float *done,
                   const float *eps, float *y, ch_error *err) {
  int D = s->D;
  ch_error e = {0, ""};
  int rc = s->actor->vt->forward(s->actor->h, next_obs, (uint32_t)B, s->pol, NULL, &e);
  if (rc != CH_OK) return ch__net_fail(err, rc, "forward (next states)", "actor", &e);
  ch_sac_actions(B, D, s->pol, eps, s->raw, s->act);
  ch__rows(B, s->O, D, next_obs, s->act, s->qin);
  for (int k = 0; k < 2; k++) {
    rc = s->qt[k]->vt->forward(s->qt[k]->h, s->qin, (uint32_t)B, NULL, s->qv[k], &e);
    if (rc != CH_OK) return ch__net_fail(err, rc, "forward", ch__qt_name[k], &e);
  }
  double alpha = ch_sac_alpha(s);
  for (int i = 0; i < B; i++) {
    double qmin = s->qv[0][i] < s->qv[1][i] ? s->qv[0][i] : s->qv[1][i];
    double lp = ch__logpi(D, s->pol + (size_t)i * 2 * D, eps + (size_t)i * D);
    y[i] = (float)(reward[i] + s->c.gamma * (1.0 - done[i]) * (qmin - alpha * lp));
  }
  return CH_OK;
}

/* Step 2: one Adam step of each critic toward y at the stored actions. */
static int ch__critics(ch_sac *s, int B, const float *obs, const float *action, ch_sac_stats *st,
                       ch_error *err) {
  size_t W = (size_t)s->O + (size_t)s->D;
  ch__rows(B, s->O, s->D, obs, NULL, s->qin);
  for (int i = 0; i < B; i++)
    for (int j = 0; j < s->D; j++)
      s->qin[(size_t)i * W + s->O + j] = (float)tanh(action[(size_t)i * s->D + j]);
  ch_optimizer_config oc = {(float)s->c.lr_critic, 0.9f, 0.999f, (float)CH_SAC_ADAM_EPS, 0.0f};
  double loss = 0;
  for (int k = 0; k < 2; k++) {
    ch_net *q = s->q[k];
    ch_error e = {0, ""};
    int rc = q->vt->forward(q->h, s->qin, (uint32_t)B, NULL, s->qv[k], &e);
    if (rc != CH_OK) return ch__net_fail(err, rc, "forward", ch__q_name[k], &e);
    for (int i = 0; i < B; i++) {
      double d = (double)s->qv[k][i] - s->y[i];
      loss += 0.5 * d * d / B;
      s->dq[i] = (float)(d / B);
    }
    q->vt->zero_grad(q->h);
    rc = q->vt->backward(q->h, NULL, s->dq, &e);
    if (rc == CH_OK) rc = q->vt->optimizer_step(q->h, &oc, &e);
    if (rc != CH_OK) return ch__net_fail(err, rc, "backward/optimizer_step", ch__q_name[k], &e);
  }
  st->critic_loss = loss;
  return CH_OK;
}

int ch_sac_actor_grad(ch_sac *s, int B, const float *obs, const float *eps, ch_sac_stats *st,
                      ch_error *err) {
  int D = s->D;
  ch_error e = {0, ""};
  int rc = s->actor->vt->forward(s->actor->h, obs, (uint32_t)B, s->pol, NULL, &e);
  if (rc != CH_OK) return ch__net_fail(err, rc, "forward", "actor", &e);
  ch_sac_actions(B, D, s->pol, eps, s->raw, s->act);
  for (int k = 0; k < 2; k++) {
    rc = ch_sac_q_grad(s->q[k], B, s->O, D, obs, s->act, CH_SAC_FD_STEP, s->qv[k], s->dqa[k],
                       s->qwork, err);
    if (rc != CH_OK) return rc;
  }
  double qsum = 0, lpsum = 0, alpha = ch_sac_alpha(s);
  for (int i = 0; i < B; i++) { /* the smaller critic, and the gradient of that one */
    if (s->qv[1][i] < s->qv[0][i]) {
      s->qv[0][i] = s->qv[1][i];
      memcpy(s->dqa[0] + (size_t)i * D, s->dqa[1] + (size_t)i * D, sizeof(float) * (size_t)D);
    }
    qsum += s->qv[0][i];
  }
  double loss = ch_sac_actor_loss(B, D, alpha, s->pol, eps, s->qv[0], s->dqa[0], s->dpol, s->logpi);
  s->actor->vt->zero_grad(s->actor->h);
  rc = s->actor->vt->backward(s->actor->h, s->dpol, NULL, &e);
  if (rc != CH_OK) return ch__net_fail(err, rc, "backward", "actor", &e);
  for (int i = 0; i < B; i++) lpsum += s->logpi[i];
  if (st) {
    st->actor_loss = loss;
    st->entropy = -lpsum / B;
    st->q_mean = qsum / B;
    st->alpha = alpha;
  }
  return CH_OK;
}

/* Step 4: Adam on log alpha (torch.optim.Adam, bias-corrected) from the actor's log pi. */
static void ch__alpha_step(ch_sac *s, int B, ch_sac_stats *st) {
  double mean_lp = 0;
  for (int i = 0; i < B; i++) mean_lp += s->logpi[i];
  mean_lp /= B;
  double g = -(mean_lp + s->c.target_entropy);
  ch_sac_alpha_state *a = &s->a;
  st->alpha_loss = a->log_alpha * g;
  uint64_t t = ++a->adam_step;
  a->adam_m = 0.9 * a->adam_m + 0.1 * g;
  a->adam_v = 0.999 * a->adam_v + 0.001 * g * g;
  double mhat = a->adam_m / (1.0 - pow(0.9, (double)t));
  double vhat = a->adam_v / (1.0 - pow(0.999, (double)t));
  a->log_alpha -= s->c.lr_alpha * mhat / (sqrt(vhat) + CH_SAC_ADAM_EPS);
}

/* Step 3's optimizer step, from the gradients ch_sac_actor_grad accumulated. */
static int ch__actor_step(ch_sac *s, ch_error *err) {
  ch_optimizer_config oc = {(float)s->c.lr_actor, 0.9f, 0.999f, (float)CH_SAC_ADAM_EPS, 0.0f};
  ch_error e = {0, ""};
  int rc = s->actor->vt->optimizer_step(s->actor->h, &oc, &e);
  return rc == CH_OK ? CH_OK : ch__net_fail(err, rc, "optimizer_step", "actor", &e);
}

static void ch__normals(uint64_t *rng, size_t n, float *out) {
  for (size_t i = 0; i < n; i++) out[i] = (float)ch_policy_normal(rng);
}

static int ch__check_update(const ch_sac *s, int B, const void *const p[6], ch_error *err) {
  static const char *const name[6] = {"obs", "action", "reward", "next_obs", "done", "rng"};
  if (!s) return ch_error_set(err, CH_EINVAL, "sac update: handle is NULL");
  if (B < 1 || B > s->cap)
    return ch_error_set(err, CH_ERANGE, "sac update: batch %d outside 1..%d (batch_size)", B,
                        s->cap);
  for (int k = 0; k < 6; k++)
    if (!p[k]) return ch_error_set(err, CH_EINVAL, "sac update: %s is NULL", name[k]);
  return CH_OK;
}

int ch_sac_update(ch_sac *s, int B, const float *obs, const float *action, const float *reward,
                  const float *next_obs, const float *done, uint64_t *rng, ch_sac_stats *st,
                  ch_error *err) {
  ch_error_clear(err);
  const void *const args[6] = {obs, action, reward, next_obs, done, rng};
  int rc = ch__check_update(s, B, args, err);
  if (rc != CH_OK) return rc;
  ch_sac_stats local = {0, 0, 0, 0, 0, 0, 0};
  size_t n = (size_t)B * (size_t)s->D;
  ch__normals(rng, n, s->eps);
  rc = ch_sac_targets(s, B, reward, next_obs, done, s->eps, s->y, err);
  if (rc == CH_OK) rc = ch__critics(s, B, obs, action, &local, err);
  if (rc != CH_OK) return rc;
  ch__normals(rng, n, s->eps);
  rc = ch_sac_actor_grad(s, B, obs, s->eps, &local, err);
  if (rc == CH_OK) rc = ch__actor_step(s, err);
  if (rc != CH_OK) return rc;
  if (s->c.auto_alpha) ch__alpha_step(s, B, &local);
  rc = ch__polyak(s, s->c.tau, err);
  for (int i = 0; i < B; i++) local.target_mean += s->y[i] / B;
  if (st) *st = local;
  return rc;
}
