/* ppo.h -- PPO-clip for a categorical policy: loss, its gradients, GAE, action sampling. */
#ifndef CHICANE_PPO_H
#define CHICANE_PPO_H

#include <stdint.h>

#define CH_PPO_CLIP       0.2  /* DeepRacer's fixed clipping range */
#define CH_PPO_GAE_LAMBDA 0.95 /* DeepRacer's fixed GAE lambda */
#define CH_PPO_ADAM_EPS   1e-5 /* DeepRacer's fixed Adam epsilon */

typedef struct ch_ppo_params {
  double clip;         /* ratio clipping range */
  double beta_entropy; /* entropy bonus weight */
  double value_coef;   /* value loss weight (0.5) */
  int loss_type;       /* CH_LOSS_HUBER or CH_LOSS_MSE (config.h) */
} ch_ppo_params;

typedef struct ch_ppo_stats {
  double loss, policy_loss, value_loss, entropy, approx_kl, clip_fraction;
} ch_ppo_stats;

/* Every function here takes A <= CH_MAX_ACTIONS (64, config.h): the training config refuses
** larger action spaces, and the trainer checks the network's policy size against it.
**
** The minibatch loss (mean over B samples) of
**   -min(r*A, clip(r)*A) + value_coef * L_v(v - R) - beta_entropy * H(pi),
** r = exp(logp - old_logp), and its gradient with respect to logits (B*A) and value (B). */
void ch_ppo_loss(const ch_ppo_params *p, int B, int A, const float *logits, const float *value,
                 const int32_t *action, const float *old_logp, const float *adv, const float *ret,
                 float *dlogits, float *dvalue, ch_ppo_stats *stats);

/* Generalized advantage estimation over T consecutive steps of one episode. bootstrap is V of
** the state after the last step, ignored when terminal. Writes advantages and returns. */
void ch_gae(int T, const float *reward, const float *value, float bootstrap, int terminal,
            double gamma, double lambda, float *adv, float *ret);

/* Draw an action from softmax(logits) with u uniform in [0, 1); writes its log-probability. */
int ch_policy_sample(const float *logits, int A, double u, float *logp);

/* The most probable action. */
int ch_policy_argmax(const float *logits, int A);

/* Log-probability of action under softmax(logits). */
double ch_policy_logp(const float *logits, int A, int action);

#endif
