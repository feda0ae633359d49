/* ppo.c -- PPO-clip losses and gradients for categorical and Gaussian policies, and GAE. */
#include "ppo.h"

#include "config.h"

#include <math.h>

#define CH__HALF_LOG_2PI 0.91893853320467274178 /* 0.5 log(2 pi); + 0.5 is N(0,1)'s entropy */

/* Value loss and its derivative in d = v_pred - R. */
static double ch__value_loss(int loss_type, double d, double *dd) {
  if (loss_type == CH_LOSS_MSE || fabs(d) <= 1.0) {
    *dd = d;
    return 0.5 * d * d;
  }
  *dd = d > 0 ? 1.0 : -1.0;
  return fabs(d) - 0.5;
}

/* Sample i's value loss (clipped as SB3's clip_range_vf when asked) and d(loss)/d(value). */
static double ch__value_term(const ch_ppo_params *p, const ch_ppo_extras *x, int i,
                             const float *value, const float *ret, const float *old_value,
                             double *dv) {
  double v = value[i], pass = 1.0;
  if (x && x->value_clip > 0 && old_value) {
    double old = old_value[i], c = x->value_clip, moved = v - old;
    if (moved > c || moved < -c) { /* clamp passes no gradient outside its range (torch) */
      v = old + (moved > 0 ? c : -c);
      pass = 0.0;
    }
  }
  double dd, l = ch__value_loss(p->loss_type, v - ret[i], &dd);
  *dv = dd * pass;
  return l;
}

/* One sample's policy part: returns d(loss)/d(logp) and accumulates stats. */
static double ch__clip_term(const ch_ppo_params *p, double logp, double old_logp, double a,
                            ch_ppo_stats *st) {
  double r = exp(logp - old_logp);
  double rc = r < 1 - p->clip ? 1 - p->clip : (r > 1 + p->clip ? 1 + p->clip : r);
  double unclipped = r * a, clipped = rc * a;
  st->policy_loss += -(unclipped < clipped ? unclipped : clipped);
  st->approx_kl += (r - 1) - (logp - old_logp);
  int is_clipped = clipped < unclipped; /* min picks the clipped (constant in logp) branch */
  st->clip_fraction += rc != r;
  return is_clipped ? 0.0 : -a * r;
}

/* Means from sums, and the total. */
static void ch__finish(const ch_ppo_params *p, int B, ch_ppo_stats *st, ch_ppo_stats *out) {
  const double inv_b = 1.0 / B;
  st->policy_loss *= inv_b;
  st->value_loss *= inv_b;
  st->entropy *= inv_b;
  st->approx_kl *= inv_b;
  st->clip_fraction *= inv_b;
  st->loss = st->policy_loss + p->value_coef * st->value_loss - p->beta_entropy * st->entropy;
  if (out) *out = *st;
}

void ch_ppo_loss_categorical(const ch_ppo_params *p, const ch_ppo_extras *x, int B, int A,
                             const float *logits, const float *value, const int32_t *action,
                             const float *old_logp, const float *adv, const float *ret,
                             const float *old_value, float *dlogits, float *dvalue,
                             ch_ppo_stats *stats) {
  ch_ppo_stats st = {0, 0, 0, 0, 0, 0};
  double prob[CH_MAX_ACTIONS], logprob[CH_MAX_ACTIONS];
  const double inv_b = 1.0 / B;
  for (int i = 0; i < B; i++) {
    const float *z = logits + (size_t)i * A;
    double lse = ch_policy_softmax(z, A, prob), h = 0;
    for (int j = 0; j < A; j++) {
      logprob[j] = (double)z[j] - lse;
      h -= prob[j] * logprob[j];
    }
    int a = action[i];
    double g_logp = ch__clip_term(p, logprob[a], old_logp[i], adv[i], &st);
    for (int j = 0; j < A; j++) {
      double g = g_logp * ((j == a) - prob[j]);          /* through logp(a) */
      g += p->beta_entropy * prob[j] * (logprob[j] + h); /* through -beta * H */
      dlogits[(size_t)i * A + j] = (float)(g * inv_b);
    }
    double dv;
    st.value_loss += ch__value_term(p, x, i, value, ret, old_value, &dv);
    dvalue[i] = (float)(p->value_coef * dv * inv_b);
    st.entropy += h;
  }
  ch__finish(p, B, &st, stats);
}

void ch_ppo_loss(const ch_ppo_params *p, int B, int A, const float *logits, const float *value,
                 const int32_t *action, const float *old_logp, const float *adv, const float *ret,
                 float *dlogits, float *dvalue, ch_ppo_stats *stats) {
  ch_ppo_loss_categorical(p, NULL, B, A, logits, value, action, old_logp, adv, ret, NULL, dlogits,
                          dvalue, stats);
}

/* One sample of the Gaussian loss: out row o, action row u, gradient row d (2D floats). */
static void ch__gaussian_sample(const ch_ppo_params *p, int D, const float *o, const float *u,
                                double old_logp, double adv, double inv_b, float *d,
                                ch_ppo_stats *st) {
  double logp = 0, h = 0;
  for (int j = 0; j < D; j++) {
    double ls = o[D + j], z = ((double)u[j] - o[j]) * exp(-ls);
    logp += -0.5 * z * z - ls - CH__HALF_LOG_2PI;
    h += ls + CH__HALF_LOG_2PI + 0.5;
  }
  double g_logp = ch__clip_term(p, logp, old_logp, adv, st);
  for (int j = 0; j < D; j++) {
    double inv_std = exp(-(double)o[D + j]), z = ((double)u[j] - o[j]) * inv_std;
    d[j] = (float)(g_logp * z * inv_std * inv_b);                           /* mean */
    d[D + j] = (float)((g_logp * (z * z - 1.0) - p->beta_entropy) * inv_b); /* log std */
  }
  st->entropy += h;
}

void ch_ppo_loss_gaussian(const ch_ppo_params *p, const ch_ppo_extras *x, int B, int D,
                          const float *out, const float *value, const float *action,
                          const float *old_logp, const float *adv, const float *ret,
                          const float *old_value, float *dout, float *dvalue, ch_ppo_stats *stats) {
  ch_ppo_stats st = {0, 0, 0, 0, 0, 0};
  const double inv_b = 1.0 / B;
  for (int i = 0; i < B; i++) {
    size_t row = (size_t)i * 2 * D;
    ch__gaussian_sample(p, D, out + row, action + (size_t)i * D, old_logp[i], adv[i], inv_b,
                        dout + row, &st);
    double dv;
    st.value_loss += ch__value_term(p, x, i, value, ret, old_value, &dv);
    dvalue[i] = (float)(p->value_coef * dv * inv_b);
  }
  ch__finish(p, B, &st, stats);
}

int ch_ppo_kl_exceeded(const ch_ppo_extras *x, double approx_kl) {
  return x && x->target_kl > 0 && approx_kl > CH_PPO_KL_STOP * x->target_kl;
}

void ch_gae(int T, const float *reward, const float *value, float bootstrap, int terminal,
            double gamma, double lambda, float *adv, float *ret) {
  double next_value = terminal ? 0.0 : bootstrap, next_adv = 0.0;
  for (int t = T - 1; t >= 0; t--) {
    double delta = reward[t] + gamma * next_value - value[t];
    next_adv = delta + gamma * lambda * next_adv;
    adv[t] = (float)next_adv;
    ret[t] = (float)(next_adv + value[t]);
    next_value = value[t];
  }
}
