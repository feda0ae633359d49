/* sac.h -- Soft Actor-Critic for continuous actions (DeepRacer's sac): critics, actor, alpha. */
#ifndef CHICANE_SAC_H
#define CHICANE_SAC_H

#include "runtime.h"

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

/*
** Five networks, driven only through the network ABI and borrowed (the caller creates and
** destroys them; ch_sac never frees them):
**   actor       input obs_size, policy_size 2D: per sample [mean_1..D, log_std_1..D] (the mlp
**               plugin's "head": "gaussian"); the value head is never used. Actions are
**               u = mean + std * eps, a = tanh(u) in (-1, 1)^D, log_std clamped to
**               [CH_POLICY_LOG_STD_MIN, MAX] (policy.h) as ch_policy_act does with squash 1.
**   q1, q2      input obs_size + D: the observation, then the action a in [-1, 1]^D (after
**               tanh); their value head is Q, their policy head is ignored (give it size 1:
**               mlp "num_actions": 1).
**   q1_target,  the same architectures as q1 and q2 (equal param_count). ch_sac_create copies
**   q2_target   q1 and q2 into them; each update then moves them by Polyak averaging:
**               target = (1 - tau) * target + tau * online, through get_params/set_params.
**
** One update (SB3's order; alpha is the value before this update's alpha step):
**   1. y = r + gamma * (1 - done) * (min(Q1t, Q2t)(s', a') - alpha * log pi(a'|s')), a' drawn
**      from the actor at s'.
**   2. Each critic: loss 0.5 * mean (Qk(s, a) - y)^2 (critic_loss sums the two, as SB3), one
**      Adam step with lr_critic.
**   3. The actor: loss mean(alpha * log pi(a|s) - min(Q1, Q2)(s, a)) with a = tanh(mean + std *
**      eps) reparameterised and the updated critics; its gradient reaches the action through
**      dQ/da, taken by central differences of the critic in each action dimension (the
**      network ABI has no input gradient): one forward of (1 + 2D) * B rows per critic. One
**      Adam step with lr_actor.
**   4. auto_alpha: log_alpha takes one Adam step on -log_alpha * mean(log pi + target_entropy).
**   5. The targets move by tau.
** Adam: betas 0.9, 0.999, eps 1e-8 (torch's defaults, as SB3), no gradient clipping.
** log pi is the density of the squashed action: sum_j log N(u_j; mean_j, std_j)
** - log(1 - tanh(u_j)^2), the last term in its stable form (ch_policy_log1m_tanh2).
*/

/* Action step of the central differences of Q. Against a double-precision reference
** (tests/algo/test_sac.c, 64x64 tanh critic) the worst error relative to 1 + |dQ/da| is 1e-5
** with Q near 1 and 1.2e-3 with Q near 300; a step of 1e-3 is 8 times worse there (float
** rounding of Q), 3e-2 3 times (truncation). */
#define CH_SAC_FD_STEP  1e-2
#define CH_SAC_ADAM_EPS 1e-8

typedef struct ch_sac_config {
  double gamma;          /* discount, [0, 1] (DeepRacer's discount_factor) */
  double tau;            /* Polyak rate of the targets, (0, 1] */
  double alpha;          /* entropy coefficient (sac_alpha), > 0; the start with auto_alpha */
  int auto_alpha;        /* 1: tune alpha toward target_entropy (SB3's ent_coef "auto") */
  double target_entropy; /* auto_alpha's target entropy; the usual choice is -D */
  double lr_actor, lr_critic, lr_alpha; /* Adam learning rates, > 0 (lr_alpha: auto_alpha) */
  int batch_size;                       /* the largest B ch_sac_update accepts, >= 1 */
} ch_sac_config;

typedef struct ch_sac_stats {
  double critic_loss; /* 0.5 * (mean (Q1 - y)^2 + mean (Q2 - y)^2), before the critics' step */
  double actor_loss;  /* mean(alpha * log pi - min Q) at fresh actions, before the actor's step */
  double alpha;       /* the entropy coefficient the update used */
  double alpha_loss;  /* auto_alpha: -log(alpha) * mean(log pi + target_entropy); else 0 */
  double entropy;     /* -mean(log pi) of the actor's fresh actions at obs */
  double q_mean;      /* mean of min(Q1, Q2) at those actions */
  double target_mean; /* mean of y */
} ch_sac_stats;

/* The state of the entropy coefficient (log alpha and its Adam moments): a checkpoint keeps it
** beside the five networks' blobs so that training resumes exactly. */
typedef struct ch_sac_alpha_state {
  double log_alpha, adam_m, adam_v;
  uint64_t adam_step;
} ch_sac_alpha_state;

typedef struct ch_sac ch_sac;

/* DeepRacer's defaults for D action dimensions: gamma 0.999, tau 0.005, alpha 0.2 fixed
** (target_entropy -D for auto_alpha), learning rates 3e-4, batch_size 64. */
void ch_sac_config_defaults(ch_sac_config *c, int D);

/* Check the config and the networks' shapes (errors name the network and both sizes), copy
** q1, q2 into their targets and allocate the work buffers for c->batch_size. D is the actor's
** policy_size / 2. The nets are borrowed: they must outlive *out. */
int ch_sac_create(const ch_sac_config *c, ch_net *actor, ch_net *q1, ch_net *q2, ch_net *q1_target,
                  ch_net *q2_target, uint32_t obs_size, ch_sac **out, ch_error *err);

/*
** One gradient step of everything from a batch of B (1..batch_size) transitions: obs B*O,
** action B*D as stored by ch_policy_act with squash 1 (the raw pre-tanh sample u; the critics
** see tanh(u)), reward B, next_obs B*O, done B (1: the episode ended in a terminal state, so
** no bootstrap; pass 0 for a time-up cut). rng (splitmix64, the caller's) gives B*D normals
** for the next-state actions, then B*D for the actor's actions, in that order. st may be
** NULL. A failed network call leaves the update half done and names the network.
*/
int ch_sac_update(ch_sac *s, int B, const float *obs, const float *action, const float *reward,
                  const float *next_obs, const float *done, uint64_t *rng, ch_sac_stats *st,
                  ch_error *err);

void ch_sac_free(ch_sac *s);

int ch_sac_dims(const ch_sac *s);     /* D */
double ch_sac_alpha(const ch_sac *s); /* the current entropy coefficient */
void ch_sac_get_alpha_state(const ch_sac *s, ch_sac_alpha_state *out);
int ch_sac_set_alpha_state(ch_sac *s, const ch_sac_alpha_state *in, ch_error *err);

/* ---- the pieces of an update, with the noise explicit (ch_sac_update composes them) ------- */

/* Step 1: targets y (B) with eps (B*D standard normals) for the next-state actions. */
int ch_sac_targets(ch_sac *s, int B, const float *reward, const float *next_obs, const float *done,
                   const float *eps, float *y, ch_error *err);

/* Step 3 without the optimizer step: zero the actor's gradients and accumulate the actor
** loss's, with eps (B*D) for the actions. st (may be NULL) receives actor_loss, entropy,
** q_mean and alpha. */
int ch_sac_actor_grad(ch_sac *s, int B, const float *obs, const float *eps, ch_sac_stats *st,
                      ch_error *err);

/* Actions from actor outputs out (B*2D) and noise eps (B*D): raw u and a = tanh(u), B*D each. */
void ch_sac_actions(int B, int D, const float *out, const float *eps, float *raw, float *act);

/*
** The actor loss mean_i(alpha * log pi_i - q_i) where the actions were made by ch_sac_actions
** from out and eps, q (B) is Q at them and dq_da (B*D) its gradient in the action. Writes
** d(loss)/d(out) to dout (B*2D; 0 for a clamped log std) and log pi to logpi (B); returns the
** loss.
*/
double ch_sac_actor_loss(int B, int D, double alpha, const float *out, const float *eps,
                         const float *q, const float *dq_da, float *dout, float *logpi);

/* Floats of work ch_sac_q_grad needs for B samples. */
size_t ch_sac_q_grad_work(int B, uint32_t obs_size, int D);

/* Q (B) of critic q at (obs, act) and dQ/da (B*D) by central differences with step h, from
** one forward of (1 + 2D) * B rows. work: ch_sac_q_grad_work floats. */
int ch_sac_q_grad(ch_net *q, int B, uint32_t obs_size, int D, const float *obs, const float *act,
                  double h, float *q_out, float *dq_da, float *work, ch_error *err);

#endif
