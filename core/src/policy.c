/* policy.c -- from a network's policy outputs to actions: categorical, e-greedy and Gaussian. */
#include "policy.h"

#include "action_space.h"
#include "rng.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <string.h>

#define CH__LOG_2PI 1.8378770664093454836  /* log(2 pi) */
#define CH__LN2     0.69314718055994530942 /* log(2) */

/* ---- building blocks ---------------------------------------------------------------------- */

double ch_policy_softmax(const float *z, int A, double *p) {
  double m = z[0], s = 0;
  for (int j = 1; j < A; j++) m = z[j] > m ? z[j] : m;
  for (int j = 0; j < A; j++) s += (p[j] = exp((double)z[j] - m));
  for (int j = 0; j < A; j++) p[j] /= s;
  return m + log(s);
}

int ch_policy_sample(const float *logits, int A, double u, float *logp) {
  double prob[CH_MAX_ACTIONS];
  double lse = ch_policy_softmax(logits, A, prob), acc = 0;
  int a = A - 1; /* rounding may leave the sum of prob a hair under u */
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
  return (double)logits[action] - ch_policy_softmax(logits, A, prob);
}

double ch_policy_normal(uint64_t *rng) {
  double u1 = 1.0 - ch_rng_uniform(rng); /* (0, 1]: log stays finite */
  double u2 = ch_rng_uniform(rng);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586477 * u2);
}

static double ch__softplus(double x) {
  return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

double ch_policy_log1m_tanh2(double u) {
  return 2.0 * (CH__LN2 - u - ch__softplus(-2.0 * u));
}

double ch_policy_clamp_log_std(double log_std) {
  if (log_std < CH_POLICY_LOG_STD_MIN) return CH_POLICY_LOG_STD_MIN;
  return log_std > CH_POLICY_LOG_STD_MAX ? CH_POLICY_LOG_STD_MAX : log_std;
}

double ch_policy_gaussian_logp(int D, const float *out, const float *u, int squash) {
  double lp = 0;
  for (int j = 0; j < D; j++) {
    double ls = squash ? ch_policy_clamp_log_std(out[D + j]) : (double)out[D + j];
    double z = ((double)u[j] - out[j]) * exp(-ls);
    lp += -0.5 * z * z - ls - 0.5 * CH__LOG_2PI;
    if (squash) lp -= ch_policy_log1m_tanh2(u[j]);
  }
  return lp;
}

/* ---- the action space --------------------------------------------------------------------- */

static int ch__check_range(const ch_policy_space *s, int j, const char *name, ch_error *err) {
  if (!isfinite(s->low[j]) || !isfinite(s->high[j]) || !(s->low[j] <= s->high[j]))
    return ch_error_set(err, CH_EINVAL,
                        "policy space: %s range [%g, %g] must be finite with low <= high", name,
                        s->low[j], s->high[j]);
  return CH_OK;
}

int ch_policy_check(const ch_policy_space *s, ch_error *err) {
  if (!s) return ch_error_set(err, CH_EINVAL, "policy space: NULL");
  if (!s->continuous) {
    if (s->num_actions < 1 || s->num_actions > CH_MAX_ACTIONS)
      return ch_error_set(err, CH_EINVAL, "policy space: discrete num_actions %d outside 1..%d",
                          s->num_actions, CH_MAX_ACTIONS);
    if (!s->actions)
      return ch_error_set(err, CH_EINVAL, "policy space: discrete space without its actions");
    return CH_OK;
  }
  if (s->continuous != 1)
    return ch_error_set(err, CH_EINVAL, "policy space: continuous must be 0 or 1, got %d",
                        s->continuous);
  if (s->num_actions != CH_POLICY_DIMS)
    return ch_error_set(err, CH_EINVAL,
                        "policy space: continuous num_actions must be %d (steering, speed), got %d",
                        CH_POLICY_DIMS, s->num_actions);
  if (s->squash != 0 && s->squash != 1)
    return ch_error_set(err, CH_EINVAL, "policy space: squash must be 0 (PPO) or 1 (SAC), got %d",
                        s->squash);
  int rc = ch__check_range(s, 0, "steering_angle", err);
  return rc ? rc : ch__check_range(s, 1, "speed", err);
}

size_t ch_policy_output_size(const ch_policy_space *s) {
  return s->continuous ? 2 * (size_t)s->num_actions : (size_t)s->num_actions;
}

size_t ch_policy_action_size(const ch_policy_space *s) {
  return s->continuous ? (size_t)s->num_actions : 1;
}

void ch_policy_command(const ch_policy_space *s, const float *action, double *steer,
                       double *speed) {
  ch_action a;
  if (!s->continuous) {
    a = s->actions[(int)action[0]];
  } else { /* DeepRacer's linear map of [-1, 1] onto the ranges, in one place (action_space) */
    ch_action_ranges r = {{s->low[0], s->high[0]}, {s->low[1], s->high[1]}};
    double x[2];
    for (int j = 0; j < 2; j++) x[j] = s->squash ? tanh((double)action[j]) : (double)action[j];
    a = ch_action_space_scale(&r, x[0], x[1]);
  }
  if (steer) *steer = a.steering_angle;
  if (speed) *speed = a.speed;
}

double ch_policy_logp_of(const ch_policy_space *s, const float *out, const float *action) {
  if (!s->continuous) return ch_policy_logp(out, s->num_actions, (int)action[0]);
  return ch_policy_gaussian_logp(s->num_actions, out, action, s->squash);
}

double ch_policy_epsilon(double e_greedy_value, long long epsilon_steps, long long steps_done) {
  if (epsilon_steps <= 0 || steps_done >= epsilon_steps) return e_greedy_value;
  double f = steps_done > 0 ? (double)steps_done / (double)epsilon_steps : 0.0;
  return 1.0 + (e_greedy_value - 1.0) * f;
}

/* log(a + b) given log a and log b (either may be -inf). */
static double ch__log_add(double la, double lb) {
  double m = la > lb ? la : lb;
  if (m == -INFINITY) return m;
  return m + log(exp(la - m) + exp(lb - m));
}

static double ch__clamp01(double e) {
  return e < 0 ? 0 : (e > 1 ? 1 : e);
}

static void ch__act_discrete(const ch_policy_space *s, const float *out, ch_act_mode mode,
                             double epsilon, uint64_t *rng, float *action, float *logp) {
  int A = s->num_actions, a;
  double lp;
  if (mode == CH_ACT_RANDOM) {
    a = (int)(ch_rng_next(rng) % (uint64_t)A);
    lp = -log((double)A);
  } else if (mode == CH_ACT_SAMPLE) {
    float l;
    a = ch_policy_sample(out, A, ch_rng_uniform(rng), &l);
    lp = l;
  } else if (mode == CH_ACT_GREEDY) {
    a = ch_policy_argmax(out, A);
    lp = ch_policy_logp(out, A, a);
  } else {
    int g = ch_policy_argmax(out, A);
    double e = ch__clamp01(epsilon);
    a = ch_rng_uniform(rng) < e ? (int)(ch_rng_next(rng) % (uint64_t)A) : g;
    lp = log(e / A + (a == g ? 1.0 - e : 0.0));
  }
  action[0] = (float)a;
  if (logp) *logp = (float)lp;
}

/* A uniform point of [-1, 1] as the raw u that commands it; SAC's atanh stays finite. */
static double ch__uniform_raw(const ch_policy_space *s, uint64_t *rng) {
  double x = 2.0 * ch_rng_uniform(rng) - 1.0;
  if (!s->squash) return x;
  const double edge = 1.0 - 1e-6;
  return atanh(x < -edge ? -edge : (x > edge ? edge : x));
}

static void ch__act_continuous(const ch_policy_space *s, const float *out, ch_act_mode mode,
                               double epsilon, uint64_t *rng, float *action, float *logp) {
  int D = s->num_actions;
  double e = mode == CH_ACT_RANDOM ? 1.0 : (mode == CH_ACT_EGREEDY ? ch__clamp01(epsilon) : 0.0);
  int uniform = e >= 1.0 || (e > 0.0 && ch_rng_uniform(rng) < e);
  for (int j = 0; j < D; j++) {
    double ls = s->squash ? ch_policy_clamp_log_std(out[D + j]) : (double)out[D + j];
    double u = uniform ? ch__uniform_raw(s, rng)
                       : out[j] + (mode == CH_ACT_GREEDY ? 0.0 : exp(ls) * ch_policy_normal(rng));
    action[j] = (float)u;
  }
  if (!logp) return;
  /* From the stored floats, so that ch_policy_logp_of agrees with it exactly. */
  double lu = -D * CH__LN2, lp = lu;
  if (e < 1.0) {
    int in_box = 1;
    for (int j = 0; j < D; j++) in_box &= s->squash || fabs(action[j]) <= 1.0f;
    lp = ch_policy_gaussian_logp(D, out, action, s->squash);
    if (e > 0.0) lp = ch__log_add(in_box ? log(e) + lu : -INFINITY, log1p(-e) + lp);
  }
  *logp = (float)lp;
}

void ch_policy_act(const ch_policy_space *s, const float *out, ch_act_mode mode, double epsilon,
                   uint64_t *rng, float *action, float *logp, double *steer, double *speed) {
  if (s->continuous)
    ch__act_continuous(s, out, mode, epsilon, rng, action, logp);
  else
    ch__act_discrete(s, out, mode, epsilon, rng, action, logp);
  ch_policy_command(s, action, steer, speed);
}

void ch_policy_space_from_config(const ch_train_config *c, ch_policy_space *out) {
  memset(out, 0, sizeof *out);
  if (c->action_space_type != CH_ACTION_SPACE_CONTINUOUS) {
    out->num_actions = c->num_actions;
    out->actions = c->actions;
    return;
  }
  out->continuous = 1;
  out->num_actions = CH_POLICY_DIMS;
  out->low[0] = c->action_ranges.steering_angle.low;
  out->high[0] = c->action_ranges.steering_angle.high;
  out->low[1] = c->action_ranges.speed.low;
  out->high[1] = c->action_ranges.speed.high;
  out->squash = strcmp(c->algorithm, "sac") == 0;
}
