/* ppo.h -- PPO-clip for categorical and Gaussian policies: losses, their gradients, GAE. */
#ifndef CHICANE_PPO_H
#define CHICANE_PPO_H

#include "policy.h" /* ch_policy_sample, _argmax, _logp: they used to live here */

#include <stdint.h>

#define CH_PPO_CLIP       0.2  /* DeepRacer's fixed clipping range */
#define CH_PPO_GAE_LAMBDA 0.95 /* DeepRacer's fixed GAE lambda */
#define CH_PPO_ADAM_EPS   1e-5 /* DeepRacer's fixed Adam epsilon */
#define CH_PPO_KL_STOP    1.5  /* SB3: stop when approx_kl > 1.5 * target_kl */

typedef struct ch_ppo_params {
  double clip;         /* ratio clipping range */
  double beta_entropy; /* entropy bonus weight */
  double value_coef;   /* value loss weight (0.5) */
  int loss_type;       /* CH_LOSS_HUBER or CH_LOSS_MSE (config.h) */
} ch_ppo_params;

/*
** The extras. They live in their own struct rather than at the end of ch_ppo_params
** because callers initialise ch_ppo_params positionally, and gcc's -Wextra (missing field
** initializers) under -Werror refuses such an initialiser once the struct grows. A NULL
** ch_ppo_extras, or zero in a field, turns that feature off.
*/
typedef struct ch_ppo_extras {
  /* > 0: value clipping with SB3's clip_range_vf semantics: the value loss is taken of
  ** v_pred = old_value + clip(value - old_value, -value_clip, value_clip), so a sample whose
  ** value moved further than value_clip from the one recorded at acting time gives no value
  ** gradient. Needs the old values; in the units of ret (mind any return scaling). */
  double value_clip;
  /* > 0: the trainer stops the update (the rest of this epoch and all later epochs) as soon as
  ** a minibatch's approx_kl exceeds CH_PPO_KL_STOP * target_kl, as SB3 does; see
  ** ch_ppo_kl_exceeded. The losses do not read it. */
  double target_kl;
} ch_ppo_extras;

typedef struct ch_ppo_stats {
  double loss, policy_loss, value_loss, entropy, approx_kl, clip_fraction;
} ch_ppo_stats;

/*
** The minibatch losses (mean over B samples) of
**   -min(r*A, clip(r)*A) + value_coef * L_v(v_pred - R) - beta_entropy * H(pi),
** r = exp(logp - old_logp), L_v Huber (delta 1) or 0.5 * MSE, v_pred = v or its clipped form
** (ch_ppo_extras), and their gradients with respect to the policy outputs and the value (B).
** stats (may be NULL) receives the loss and its parts as means, approx_kl as the mean of
** (r - 1) - log r (SB3's estimator) and clip_fraction the share of ratios outside [1-c, 1+c].
*/

/* Categorical: logits B*A, action B indices; A <= CH_MAX_ACTIONS (64, config.h). Same as
** ch_ppo_loss_categorical without extras. */
void ch_ppo_loss(const ch_ppo_params *p, int B, int A, const float *logits, const float *value,
                 const int32_t *action, const float *old_logp, const float *adv, const float *ret,
                 float *dlogits, float *dvalue, ch_ppo_stats *stats);

/* Categorical with the extras: x may be NULL and old_value (B) may be NULL (no value clip). */
void ch_ppo_loss_categorical(const ch_ppo_params *p, const ch_ppo_extras *x, int B, int A,
                             const float *logits, const float *value, const int32_t *action,
                             const float *old_logp, const float *adv, const float *ret,
                             const float *old_value, float *dlogits, float *dvalue,
                             ch_ppo_stats *stats);

/*
** Gaussian (continuous actions): out is B rows of [mean_1..mean_D, log_std_1..log_std_D] (the
** mlp plugin's Gaussian head), action B*D raw samples as ch_policy_act stores them with
** squash 0 (not clipped), dout B*2D. log pi = sum_j -0.5 ((a_j - mean_j) / std_j)^2 - log_std_j
** - 0.5 log(2 pi); entropy sum_j log_std_j + 0.5 log(2 pi e). x and old_value as above.
*/
void ch_ppo_loss_gaussian(const ch_ppo_params *p, const ch_ppo_extras *x, int B, int D,
                          const float *out, const float *value, const float *action,
                          const float *old_logp, const float *adv, const float *ret,
                          const float *old_value, float *dout, float *dvalue, ch_ppo_stats *stats);

/* 1 when target-KL early stopping is on and approx_kl passed CH_PPO_KL_STOP * target_kl. */
int ch_ppo_kl_exceeded(const ch_ppo_extras *x, double approx_kl);

/* Generalized advantage estimation over T consecutive steps of one episode. bootstrap is V of
** the state after the last step, ignored when terminal. Writes advantages and returns. */
void ch_gae(int T, const float *reward, const float *value, float bootstrap, int terminal,
            double gamma, double lambda, float *adv, float *ret);

#endif
