/* test_policy.c -- the policies: categorical, e-greedy, Gaussian (clipped and tanh-squashed). */
#include "algo_test.h"

#include "policy.h"

#define N_DRAWS 200000 /* draws behind every frequency check: 1 sigma of a share <= 0.0012 */

static const ch_action table[5] = {{-30, 1.0}, {-15, 2.0}, {0, 4.0}, {15, 2.0}, {30, 1.0}};

static ch_policy_space discrete_space(void) {
  ch_policy_space s = {0, 5, {0, 0}, {0, 0}, 0, table};
  return s;
}

static ch_policy_space continuous_space(int squash) {
  ch_policy_space s = {1, 2, {-30.0, 0.5}, {30.0, 4.0}, squash, NULL};
  return s;
}

/* ---- the space ---------------------------------------------------------------------------- */

static void test_check(void **state) {
  (void)state;
  ch_error err = {0, ""};
  ch_policy_space d = discrete_space(), c = continuous_space(1), bad;
  algo_check(ch_policy_check(&d, &err), err);
  algo_check(ch_policy_check(&c, &err), err);
  assert_int_equal(ch_policy_output_size(&d), 5);
  assert_int_equal(ch_policy_action_size(&d), 1);
  assert_int_equal(ch_policy_output_size(&c), 4);
  assert_int_equal(ch_policy_action_size(&c), 2);

  bad = d, bad.num_actions = 0;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "num_actions 0");
  bad = d, bad.num_actions = CH_MAX_ACTIONS + 1;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "num_actions 65");
  bad = d, bad.actions = NULL;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "without its actions");
  bad = c, bad.num_actions = 3;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "must be 2");
  bad = c, bad.squash = 2;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "squash");
  bad = c, bad.low[1] = 5.0;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "speed range [5, 4]");
  bad = c, bad.high[0] = NAN;
  algo_expect(ch_policy_check(&bad, &err), CH_EINVAL, err, "steering_angle");
  algo_expect(ch_policy_check(NULL, &err), CH_EINVAL, err, "NULL");
}

static void test_epsilon_schedule(void **state) {
  (void)state;
  algo_near(ch_policy_epsilon(0.05, 10000, 0), 1.0, 1e-15);
  algo_near(ch_policy_epsilon(0.05, 10000, -5), 1.0, 1e-15);
  algo_near(ch_policy_epsilon(0.05, 10000, 2500), 1.0 - 0.95 * 0.25, 1e-15);
  algo_near(ch_policy_epsilon(0.05, 10000, 5000), 0.525, 1e-15);
  algo_near(ch_policy_epsilon(0.05, 10000, 9999), 0.05 + 0.95 / 10000, 1e-12);
  algo_near(ch_policy_epsilon(0.05, 10000, 10000), 0.05, 0);
  algo_near(ch_policy_epsilon(0.05, 10000, 1LL << 40), 0.05, 0);
  algo_near(ch_policy_epsilon(0.1, 0, 0), 0.1, 0);
  algo_near(ch_policy_epsilon(0.1, -1, 7), 0.1, 0);
}

/* ---- discrete ----------------------------------------------------------------------------- */

static const float logits[5] = {1.0f, -0.5f, 0.0f, 2.0f, -1.0f}; /* argmax 3 */

static void softmax5(double *p) {
  double s = 0;
  for (int j = 0; j < 5; j++) s += (p[j] = exp(logits[j]));
  for (int j = 0; j < 5; j++) p[j] /= s;
}

/* N_DRAWS actions in mode; checks each logp against want_p and the shares against want_p. */
static void check_discrete(ch_act_mode mode, double eps, const double *want_p, const char *what) {
  ch_policy_space s = discrete_space();
  long count[5] = {0};
  uint64_t rng = 1234;
  for (int i = 0; i < N_DRAWS; i++) {
    float a, lp;
    double steer, speed;
    ch_policy_act(&s, logits, mode, eps, &rng, &a, &lp, &steer, &speed);
    int k = (int)a;
    if (a != (float)k || k < 0 || k >= 5) fail_msg("%s: action %g is not an index of 5", what, a);
    if (fabs(lp - log(want_p[k])) > 1e-6)
      fail_msg("%s: logp of %d = %.9g, expected %.9g", what, k, lp, log(want_p[k]));
    if (steer != table[k].steering_angle || speed != table[k].speed)
      fail_msg("%s: action %d commands (%g, %g), the table says (%g, %g)", what, k, steer, speed,
               table[k].steering_angle, table[k].speed);
    count[k]++;
  }
  for (int j = 0; j < 5; j++)
    if (fabs((double)count[j] / N_DRAWS - want_p[j]) > 0.006)
      fail_msg("%s: action %d drawn %.4f of the time, expected %.4f", what, j,
               (double)count[j] / N_DRAWS, want_p[j]);
}

static void test_discrete_sample_and_random(void **state) {
  (void)state;
  double p[5], u[5] = {0.2, 0.2, 0.2, 0.2, 0.2};
  softmax5(p);
  check_discrete(CH_ACT_SAMPLE, 0.0, p, "sample");
  check_discrete(CH_ACT_RANDOM, 0.0, u, "random");
}

static void test_discrete_greedy_and_egreedy(void **state) {
  (void)state;
  ch_policy_space s = discrete_space();
  double p[5];
  softmax5(p);
  uint64_t rng = 5;
  float a, lp;
  ch_policy_act(&s, logits, CH_ACT_GREEDY, 0.9, &rng, &a, &lp, NULL, NULL);
  assert_true(a == 3.0f);
  algo_near(lp, log(p[3]), 1e-6);
  /* e-greedy: uniform with probability 0.3, else argmax; logp of that mixture. */
  double mix[5];
  for (int j = 0; j < 5; j++) mix[j] = 0.3 / 5 + (j == 3 ? 0.7 : 0.0);
  check_discrete(CH_ACT_EGREEDY, 0.3, mix, "e-greedy 0.3");
  ch_policy_act(&s, logits, CH_ACT_EGREEDY, 0.0, &rng, &a, &lp, NULL, NULL);
  assert_true(a == 3.0f && lp == 0.0f);
  /* logp_of is the policy's, not the mixture's */
  float idx = 1.0f;
  algo_near(ch_policy_logp_of(&s, logits, &idx), log(p[1]), 1e-9);
}

/* ---- continuous --------------------------------------------------------------------------- */

static const float gauss_out[4] = {0.3f, -0.2f, -0.5f, 0.1f}; /* means, log stds */

static double ref_gauss_logp(const float *out, const double *u) {
  double lp = 0;
  for (int j = 0; j < 2; j++) {
    double sd = exp((double)out[2 + j]), z = (u[j] - out[j]) / sd;
    lp += -0.5 * z * z - log(sd) - 0.5 * log(2 * M_PI);
  }
  return lp;
}

static void test_command_mapping(void **state) {
  (void)state;
  ch_policy_space ppo = continuous_space(0), sac = continuous_space(1);
  double steer, speed;
  const float mid[2] = {0, 0}, top[2] = {1, 1}, bottom[2] = {-1, -1}, beyond[2] = {3, -7};
  ch_policy_command(&ppo, mid, &steer, &speed);
  algo_near(steer, 0.0, 1e-12);
  algo_near(speed, 2.25, 1e-12);
  ch_policy_command(&ppo, top, &steer, &speed);
  algo_near(steer, 30.0, 1e-12);
  algo_near(speed, 4.0, 1e-12);
  ch_policy_command(&ppo, bottom, &steer, &speed);
  algo_near(steer, -30.0, 1e-12);
  algo_near(speed, 0.5, 1e-12);
  ch_policy_command(&ppo, beyond, &steer, &speed); /* PPO clips the raw sample for the env */
  algo_near(steer, 30.0, 1e-12);
  algo_near(speed, 0.5, 1e-12);
  const float q[2] = {0.5f, -1.0f}; /* SAC squashes */
  ch_policy_command(&sac, q, &steer, &speed);
  algo_near(steer, 30.0 * tanh(0.5), 1e-6);
  algo_near(speed, 0.5 + 0.5 * (tanh(-1.0) + 1.0) * 3.5, 1e-6);
}

static void test_ppo_gaussian_sample(void **state) {
  (void)state;
  ch_policy_space s = continuous_space(0);
  uint64_t rng = 77;
  double sum[2] = {0, 0}, sq[2] = {0, 0};
  long clipped = 0;
  for (int i = 0; i < N_DRAWS; i++) {
    float a[2], lp;
    double steer, speed, u[2];
    ch_policy_act(&s, gauss_out, CH_ACT_SAMPLE, 0.0, &rng, a, &lp, &steer, &speed);
    for (int j = 0; j < 2; j++) {
      u[j] = a[j];
      sum[j] += a[j];
      sq[j] += (double)a[j] * a[j];
    }
    clipped += fabs(a[0]) > 1.0;
    if (fabs(lp - ref_gauss_logp(gauss_out, u)) > 1e-5)
      fail_msg("draw %d: logp %.9g, expected %.9g", i, lp, ref_gauss_logp(gauss_out, u));
    if (lp != (float)ch_policy_logp_of(&s, gauss_out, a))
      fail_msg("draw %d: act's logp %.9g differs from logp_of %.9g", i, lp,
               ch_policy_logp_of(&s, gauss_out, a));
    if (fabs(steer - 30.0 * fmax(-1.0, fmin(1.0, u[0]))) > 1e-4)
      fail_msg("draw %d: steer %g for raw %g", i, steer, u[0]);
  }
  for (int j = 0; j < 2; j++) {
    double mean = sum[j] / N_DRAWS, sd = sqrt(sq[j] / N_DRAWS - mean * mean);
    double want_sd = exp((double)gauss_out[2 + j]);
    /* 5 standard errors */
    algo_near(mean, gauss_out[j], 5 * want_sd / sqrt(N_DRAWS));
    algo_near(sd, want_sd, 5 * want_sd / sqrt(2.0 * N_DRAWS));
  }
  /* Raw samples are stored unclipped: P(|u0| > 1) with u0 ~ N(0.3, 0.61). */
  double sd0 = exp(-0.5), p_out = algo_phi((-1 - 0.3) / sd0) + 1 - algo_phi((1 - 0.3) / sd0);
  algo_near((double)clipped / N_DRAWS, p_out, 0.004);
}

static void test_greedy_continuous(void **state) {
  (void)state;
  uint64_t rng = 3;
  for (int squash = 0; squash <= 1; squash++) {
    ch_policy_space s = continuous_space(squash);
    float a[2], lp;
    double steer, speed;
    ch_policy_act(&s, gauss_out, CH_ACT_GREEDY, 0.0, &rng, a, &lp, &steer, &speed);
    assert_true(a[0] == gauss_out[0] && a[1] == gauss_out[1]);
    algo_near(lp, ch_policy_logp_of(&s, gauss_out, a), 1e-6);
    double x0 = squash ? tanh(gauss_out[0]) : gauss_out[0];
    algo_near(steer, 30.0 * x0, 1e-5);
  }
}

/* Mass of the squashed density over (-1, x0_hi) x (-1, 1) by the midpoint rule in x itself:
** exp(logp_of) must be a density of x = tanh(u), not of u. */
static double squashed_mass_x(const float *out, double x0_hi) {
  ch_policy_space s = continuous_space(1);
  const int n = 2000;
  double h0 = (x0_hi + 1) / n, h1 = 2.0 / n, mass = 0;
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++) {
      float u[2] = {(float)atanh(-1 + (a + 0.5) * h0), (float)atanh(-1 + (b + 0.5) * h1)};
      mass += exp(ch_policy_logp_of(&s, out, u)) * h0 * h1;
    }
  return mass;
}

/* The same over all of (-1, 1)^2 in u = atanh(x), for a density too wide for the x grid (its
** mass piles up at +-1): p(x) dx = exp(logp_of(u) + sum_j log(1 - tanh(u_j)^2)) du. */
static double squashed_mass_u(const float *out) {
  ch_policy_space s = continuous_space(1);
  const int n = 1000;
  double lo[2], h[2], mass = 0;
  for (int j = 0; j < 2; j++) {
    double sd = exp(ch_policy_clamp_log_std(out[2 + j]));
    lo[j] = out[j] - 12 * sd;
    h[j] = 24 * sd / n;
  }
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++) {
      float u[2] = {(float)(lo[0] + (a + 0.5) * h[0]), (float)(lo[1] + (b + 0.5) * h[1])};
      double lj = ch_policy_log1m_tanh2(u[0]) + ch_policy_log1m_tanh2(u[1]);
      mass += exp(ch_policy_logp_of(&s, out, u) + lj) * h[0] * h[1];
    }
  return mass;
}

static void test_squashed_density(void **state) {
  (void)state;
  /* A whole density integrates to 1, also with a log std clamped from 3 to 2. */
  const float wide[4] = {0.4f, -1.0f, 0.3f, 3.0f};
  algo_near(squashed_mass_x(gauss_out, 1.0), 1.0, 1e-4);
  algo_near(squashed_mass_u(wide), 1.0, 1e-6);
  /* P(x0 <= 0.5) = Phi((atanh 0.5 - mean) / std), and the sampler agrees. */
  double want = algo_phi((atanh(0.5) - 0.3) / exp(-0.5));
  algo_near(squashed_mass_x(gauss_out, 0.5), want, 1e-4);
  ch_policy_space s = continuous_space(1);
  uint64_t rng = 11;
  long below = 0;
  for (int i = 0; i < N_DRAWS; i++) {
    float a[2], lp;
    ch_policy_act(&s, gauss_out, CH_ACT_SAMPLE, 0.0, &rng, a, &lp, NULL, NULL);
    below += tanh(a[0]) <= 0.5;
    algo_near(lp, ch_policy_logp_of(&s, gauss_out, a), 1e-6);
  }
  algo_near((double)below / N_DRAWS, want, 0.005);
}

static void test_log1m_tanh2(void **state) {
  (void)state;
  for (double u = -5; u <= 5; u += 0.125) {
    double t = tanh(u), want = log(1 - t * t);
    algo_near(ch_policy_log1m_tanh2(u), want, 1e-12 * (1 + fabs(want)));
  }
  /* Where 1 - tanh^2 rounds to 0 the stable form still gives 2 (log 2 - |u|) - tiny. */
  algo_near(ch_policy_log1m_tanh2(50.0), 2 * (log(2.0) - 50.0), 1e-12);
  algo_near(ch_policy_log1m_tanh2(-50.0), 2 * (log(2.0) - 50.0), 1e-12);
}

/* The mixture density of e-greedy and the uniform warm-up in both continuous spaces. */
static void check_continuous_mixture(int squash, double eps) {
  ch_policy_space s = continuous_space(squash);
  uint64_t rng = 99 + (uint64_t)squash;
  long outside = 0;
  for (int i = 0; i < N_DRAWS / 4; i++) {
    float a[2], lp;
    ch_policy_act(&s, gauss_out, CH_ACT_EGREEDY, eps, &rng, a, &lp, NULL, NULL);
    int in_box = squash || (fabs(a[0]) <= 1 && fabs(a[1]) <= 1);
    double pol = exp(ch_policy_logp_of(&s, gauss_out, a));
    double want = log(eps * 0.25 * in_box + (1 - eps) * pol);
    if (fabs(lp - want) > 1e-5 * (1 + fabs(want)))
      fail_msg("squash %d eps %g: logp %.9g, expected %.9g", squash, eps, lp, want);
    outside += !in_box;
  }
  if (!squash) { /* only the Gaussian part leaves the box */
    double p_in = 1.0;
    for (int j = 0; j < 2; j++) {
      double m = gauss_out[j], sd = exp(gauss_out[2 + j]);
      p_in *= algo_phi((1 - m) / sd) - algo_phi((-1 - m) / sd);
    }
    algo_near((double)outside / (N_DRAWS / 4), (1 - eps) * (1 - p_in), 0.006);
  }
}

static void test_egreedy_continuous(void **state) {
  (void)state;
  check_continuous_mixture(0, 0.25);
  check_continuous_mixture(1, 0.25);
  check_continuous_mixture(0, 1e-3);
  /* eps 1 is the uniform distribution; eps 0 the policy itself. */
  for (int squash = 0; squash <= 1; squash++) {
    ch_policy_space s = continuous_space(squash);
    uint64_t rng = 8;
    float a[2], lp;
    ch_policy_act(&s, gauss_out, CH_ACT_EGREEDY, 1.0, &rng, a, &lp, NULL, NULL);
    algo_near(lp, -2 * log(2.0), 1e-6);
    ch_policy_act(&s, gauss_out, CH_ACT_EGREEDY, 0.0, &rng, a, &lp, NULL, NULL);
    algo_near(lp, ch_policy_logp_of(&s, gauss_out, a), 1e-6);
  }
}

static void test_random_continuous(void **state) {
  (void)state;
  for (int squash = 0; squash <= 1; squash++) {
    ch_policy_space s = continuous_space(squash);
    uint64_t rng = 21;
    double sum = 0, sq = 0, lo = 1, hi = -1;
    for (int i = 0; i < N_DRAWS; i++) {
      float a[2], lp;
      double steer;
      ch_policy_act(&s, gauss_out, CH_ACT_RANDOM, 0.0, &rng, a, &lp, &steer, NULL);
      if (!isfinite(a[0]) || !isfinite(a[1])) fail_msg("squash %d: raw action not finite", squash);
      algo_near(lp, -2 * log(2.0), 1e-7);
      double x = steer / 30.0; /* the commanded point of [-1, 1] */
      sum += x;
      sq += x * x;
      lo = fmin(lo, x);
      hi = fmax(hi, x);
    }
    /* uniform on [-1, 1]: mean 0, E x^2 = 1/3, reaching both ends */
    algo_near(sum / N_DRAWS, 0.0, 0.006);
    algo_near(sq / N_DRAWS, 1.0 / 3.0, 0.004);
    assert_true(lo < -0.999 && hi > 0.999);
  }
}

static void test_deterministic(void **state) {
  (void)state;
  ch_policy_space s = continuous_space(1);
  uint64_t r1 = 42, r2 = 42;
  for (int i = 0; i < 100; i++) {
    float a1[2], a2[2], l1, l2;
    ch_policy_act(&s, gauss_out, CH_ACT_EGREEDY, 0.5, &r1, a1, &l1, NULL, NULL);
    ch_policy_act(&s, gauss_out, CH_ACT_EGREEDY, 0.5, &r2, a2, &l2, NULL, NULL);
    assert_memory_equal(a1, a2, sizeof a1);
    assert_true(l1 == l2);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_epsilon_schedule),
      cmocka_unit_test(test_discrete_sample_and_random),
      cmocka_unit_test(test_discrete_greedy_and_egreedy),
      cmocka_unit_test(test_command_mapping),
      cmocka_unit_test(test_ppo_gaussian_sample),
      cmocka_unit_test(test_greedy_continuous),
      cmocka_unit_test(test_squashed_density),
      cmocka_unit_test(test_log1m_tanh2),
      cmocka_unit_test(test_egreedy_continuous),
      cmocka_unit_test(test_random_continuous),
      cmocka_unit_test(test_deterministic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
