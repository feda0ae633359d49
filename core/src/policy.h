/* policy.h -- from a network's policy outputs to actions: categorical, e-greedy and Gaussian. */
#ifndef CHICANE_POLICY_H
#define CHICANE_POLICY_H

#include "config.h"

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

/*
** Two kinds of action space, as DeepRacer's model_metadata.json has them:
**
**  - discrete: the network gives num_actions logits per sample; an action is an index into
**    the table `actions`, stored for training as that index in one float.
**  - continuous: the network's Gaussian head gives 2 * D floats per sample, the means then the
**    log standard deviations (plugins/mlp USAGE). An action is a raw Gaussian sample u of D
**    floats, stored as drawn. The car is commanded from x in [-1, 1]^D (dimension 0 steers,
**    dimension 1 sets the speed), mapped linearly onto [low, high] as DeepRacer rescales:
**      squash 0 (PPO, as SB3 and CleanRL): x = clip(u, -1, 1); log-probabilities are those
**        of u under N(mean, std) (the clip is the env's business, not the policy's).
**      squash 1 (SAC): x = tanh(u); log-probabilities are densities of x, i.e. of u minus
**        sum log(1 - tanh(u)^2); log_std is clamped to [CH_POLICY_LOG_STD_MIN, MAX] first.
*/

#define CH_POLICY_DIMS        2     /* continuous dimensions: steering angle, speed */
#define CH_POLICY_LOG_STD_MIN -20.0 /* SAC's usual clamp of the log std (SB3, Spinning Up) */
#define CH_POLICY_LOG_STD_MAX 2.0

typedef struct ch_policy_space {
  int continuous;           /* 0: discrete, 1: continuous */
  int num_actions;          /* discrete: entries (<= CH_MAX_ACTIONS); continuous: D (= 2) */
  double low[2], high[2];   /* continuous: steering_angle (deg) and speed (m/s) ranges */
  int squash;               /* continuous: 0 = PPO (clip), 1 = SAC (tanh) */
  const ch_action *actions; /* discrete: the num_actions entries; borrowed */
} ch_policy_space;

typedef enum ch_act_mode {
  CH_ACT_SAMPLE = 0,  /* draw from the policy (exploration_type "categorical") */
  CH_ACT_GREEDY = 1,  /* discrete: the most probable action; continuous: u = mean */
  CH_ACT_EGREEDY = 2, /* with probability epsilon uniformly at random, else (discrete) greedy or
                      ** (continuous) a draw from the policy: a point mass at the mean has no
                      ** density, and the mixture needs one for PPO's ratio */
  CH_ACT_RANDOM = 3   /* uniformly at random (the warm-up before the first model) */
} ch_act_mode;

/* The action space of a training configuration: discrete with its table, or continuous with
** its ranges (squash 1 for algorithm "sac", else 0). The table is borrowed from c. */
void ch_policy_space_from_config(const ch_train_config *c, ch_policy_space *out);

/* CH_OK, or CH_EINVAL naming the field that is out of range. Every other function here takes
** a space that passed this check. */
int ch_policy_check(const ch_policy_space *s, ch_error *err);

/* Floats per sample the network's policy head must give: num_actions, or 2 * D. */
size_t ch_policy_output_size(const ch_policy_space *s);

/* Floats stored per step for training: 1 (the index), or D (the raw sample u). */
size_t ch_policy_action_size(const ch_policy_space *s);

/*
** Choose an action from one sample's policy outputs `out` (ch_policy_output_size floats).
** action receives ch_policy_action_size floats as stored for training; logp the
** log-probability (or density) of that action under what chose it:
**   SAMPLE, GREEDY: the policy (as ch_policy_logp_of);
**   EGREEDY: the mixture, eps * uniform + (1 - eps) * (greedy or policy) as described above;
**     the uniform part of a continuous space is 2^-D on the box [-1, 1]^D, in u for PPO and
**     in x = tanh(u) for SAC, the same space ch_policy_logp_of measures in;
**   RANDOM: uniform, -log(num_actions) or -D log 2.
** steer (degrees) and speed (m/s) receive the command (either may be NULL). epsilon matters
** for EGREEDY only. rng is the caller's splitmix64 state (rng.h).
*/
void ch_policy_act(const ch_policy_space *s, const float *out, ch_act_mode mode, double epsilon,
                   uint64_t *rng, float *action, float *logp, double *steer, double *speed);

/* Log-probability of a stored action under the policy alone (no e-greedy mixture): the
** categorical log-softmax of the index, or the Gaussian (squashed for SAC) log-density. */
double ch_policy_logp_of(const ch_policy_space *s, const float *out, const float *action);

/* The command of a stored action, as ch_policy_act gives it (either output may be NULL). */
void ch_policy_command(const ch_policy_space *s, const float *action, double *steer, double *speed);

/*
** DeepRacer's e-greedy schedule (rl_coach LinearSchedule): epsilon falls linearly from 1 to
** e_greedy_value over the first epsilon_steps steps, then stays there. epsilon_steps <= 0
** gives e_greedy_value at once.
*/
double ch_policy_epsilon(double e_greedy_value, long long epsilon_steps, long long steps_done);

/* ---- building blocks (PPO and SAC share them) --------------------------------------------- */

/* Softmax of A logits into p (double), returning their log-sum-exp. */
double ch_policy_softmax(const float *z, int A, double *p);

/* Draw an action from softmax(logits) with u uniform in [0, 1); writes its log-probability. */
int ch_policy_sample(const float *logits, int A, double u, float *logp);

/* The most probable action (the first of equals). */
int ch_policy_argmax(const float *logits, int A);

/* Log-probability of action under softmax(logits). */
double ch_policy_logp(const float *logits, int A, int action);

/* A standard normal number (Box-Muller on two draws of rng). */
double ch_policy_normal(uint64_t *rng);

/* log(1 - tanh(u)^2) without cancellation for large |u|: 2 (log 2 - u - softplus(-2u)). */
double ch_policy_log1m_tanh2(double u);

/* log_std clamped to [CH_POLICY_LOG_STD_MIN, CH_POLICY_LOG_STD_MAX]. */
double ch_policy_clamp_log_std(double log_std);

/* Log-density of the raw sample u (D floats) under N(mean, exp(log_std)) with out = [mean_1..D,
** log_std_1..D]; squash 1 clamps log_std and gives the density of tanh(u) instead. */
double ch_policy_gaussian_logp(int D, const float *out, const float *u, int squash);

#endif
