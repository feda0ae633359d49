/* ppo.c -- PPO-clip loss and gradients for a categorical policy, GAE, and action sampling. */
#include "ppo.h"

#include "config.h"

#include <math.h>

/* Softmax of one row in double, and its log-sum-exp. */
static double ch__softmax(const float *z, int A, double *p) {
  double m = z[0], s = 0;
  for (int j = 1; j < A; j++) m = z[j] > m ? z[j] : m;
  for (int j = 0; j < A; j++) s += (p[j] = exp((double)z[j] - m));
  for (int j = 0; j < A; j++) p[j] /= s;
  return m + log(s);
}

/* Value loss and its derivative in v for d = v - R. */
static double ch__value_loss(int loss_type, double d, double *dd) {
  if (loss_type == CH_LOSS_MSE || fabs(d) <= 1.0) {
    *dd = d;
    return 0.5 * d * d;
  }
  *dd = d > 0 ? 1.0 : -1.0;
  return fabs(d) - 0.5;
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

void ch_ppo_loss(const ch_ppo_params *p, int B, int A, const float *logits, const float *value,
                 const int32_t *action, const float *old_logp, const float *adv, const float *ret,
                 float *dlogits, float *dvalue, ch_ppo_stats *stats) {
  ch_ppo_stats st = {0, 0, 0, 0, 0, 0};
  double prob[CH_MAX_ACTIONS], logprob[CH_MAX_ACTIONS];
  const double inv_b = 1.0 / B;
  for (int i = 0; i < B; i++) {
    const float *z = logits + (size_t)i * A;
    double lse = ch__softmax(z, A, prob), h = 0;
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
    st.value_loss += ch__value_loss(p->loss_type, (double)value[i] - ret[i], &dv);
    dvalue[i] = (float)(p->value_coef * dv * inv_b);
    st.entropy += h;
  }
  st.policy_loss *= inv_b;
  st.value_loss *= inv_b;
  st.entropy *= inv_b;
  st.approx_kl *= inv_b;
  st.clip_fraction *= inv_b;
  st.loss = st.policy_loss + p->value_coef * st.value_loss - p->beta_entropy * st.entropy;
  if (stats) *stats = st;
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

int ch_policy_sample(const float *logits, int A, double u, float *logp) {
  double prob[CH_MAX_ACTIONS];
  double lse = ch__softmax(logits, A, prob), acc = 0;
  int a = A - 1;
  for (int j = 0; j < A; j++) {
    acc += prob[j];
    if (u < acc) {
      a = j;
      break;
    }
  }
  if (logp) *logp = (float)((double)logits[a] - lse);
  return a;
}

int ch_policy_argmax(const float *logits, int A) {
  int best = 0;
  for (int j = 1; j < A; j++)
    if (logits[j] > logits[best]) best = j;
  return best;
}

double ch_policy_logp(const float *logits, int A, int action) {
  double prob[CH_MAX_ACTIONS];
  return (double)logits[action] - ch__softmax(logits, A, prob);
}
