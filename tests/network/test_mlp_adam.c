/* test_mlp_adam.c -- mlp: Adam's steps, bias correction, gradient-norm clipping, bad configs. */
#include "mlp_test.h"

#include <float.h>

#define CONFIG "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"seed\":11}"
#define BATCH  4

/* A handle with random parameters and a gradient accumulated from random data. */
static void *adam_net(const ch_network_vtable *vt, uint64_t seed) {
  void *net = mlp_new(vt, CONFIG);
  mlp_randomize(vt, net, 5, 0.5f);
  float *x = test_random(&seed, BATCH * 5, 1.0f), *dp = test_random(&seed, BATCH * 4, 1.0f);
  float *dv = test_random(&seed, BATCH, 1.0f);
  mlp_grad_step(vt, net, x, BATCH, dp, dv);
  free(x), free(dp), free(dv);
  return net;
}

static double ulp_of(float v) {
  return (double)nextafterf(fabsf(v), INFINITY) - fabsf(v);
}

static void first_step_moves_each_param_by_lr_sign(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = adam_net(vt, 1);
  uint64_t n = mlp_count(vt, net);
  float *before = mlp_params(vt, net), *g = mlp_grads(vt, net);
  ch_optimizer_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
  ch_error err = {0, ""};
  mlp_check(vt->optimizer_step(net, &cfg, &err), err);
  float *after = mlp_params(vt, net);
  uint64_t moved = 0;
  for (uint64_t i = 0; i < n; i++) {
    double delta = (double)after[i] - before[i];
    /* m_hat = g and v_hat = g^2 on the first step, so the step is lr * g / (|g| + eps). */
    double expect = -1e-3 * g[i] / (fabs(g[i]) + 1e-8);
    if (fabs(delta - expect) > 2 * ulp_of(before[i]) + 1e-9)
      fail_msg("param %llu: moved %.9g, expected %.9g (grad %.6g)", (unsigned long long)i, delta,
               expect, (double)g[i]);
    moved += fabs(delta) > 0.9e-3;
  }
  assert_true(moved > n * 9 / 10);
  float *g_after = mlp_grads(vt, net);
  assert_memory_equal(g, g_after, (size_t)n * sizeof *g); /* the step leaves the gradients */
  vt->destroy(net);
  free(before), free(g), free(after), free(g_after);
}

/* Five steps on the same gradient against a double-precision Adam written from the paper. */
static void steps_follow_bias_corrected_adam(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = adam_net(vt, 2);
  uint64_t n = mlp_count(vt, net);
  float *p0 = mlp_params(vt, net), *g = mlp_grads(vt, net);
  double *p = calloc((size_t)n, sizeof *p), *m = calloc((size_t)n, sizeof *m);
  double *v = calloc((size_t)n, sizeof *v);
  for (uint64_t i = 0; i < n; i++) p[i] = p0[i];
  ch_optimizer_config cfg = {0.01f, 0.8f, 0.95f, 1e-5f, 0.0f};
  ch_error err = {0, ""};
  for (int t = 1; t <= 5; t++) {
    mlp_check(vt->optimizer_step(net, &cfg, &err), err);
    for (uint64_t i = 0; i < n; i++) {
      m[i] = 0.8 * m[i] + 0.2 * g[i];
      v[i] = 0.95 * v[i] + 0.05 * (double)g[i] * g[i];
      double mh = m[i] / (1 - pow(0.8, t)), vh = v[i] / (1 - pow(0.95, t));
      p[i] -= 0.01 * mh / (sqrt(vh) + 1e-5);
    }
  }
  float *got = mlp_params(vt, net);
  double worst = 0;
  for (uint64_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - p[i]));
  print_message("worst deviation from the reference after 5 steps: %.3g\n", worst);
  assert_true(worst < 2e-6);
  vt->destroy(net);
  free(p0), free(g), free(p), free(m), free(v), free(got);
}

/* Moves of the parameters in one step with the given clip, from a fresh copy of the same net. */
static float *step_delta(const ch_network_vtable *vt, float max_grad_norm, float eps) {
  void *net = adam_net(vt, 3);
  float *before = mlp_params(vt, net);
  ch_optimizer_config cfg = {1e-2f, 0.9f, 0.999f, eps, max_grad_norm};
  ch_error err = {0, ""};
  mlp_check(vt->optimizer_step(net, &cfg, &err), err);
  float *after = mlp_params(vt, net);
  for (uint64_t i = 0; i < mlp_count(vt, net); i++) after[i] -= before[i];
  vt->destroy(net);
  free(before);
  return after;
}

static void clipping_scales_the_step(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = adam_net(vt, 3);
  uint64_t n = mlp_count(vt, net);
  float *g = mlp_grads(vt, net);
  double norm = 0;
  for (uint64_t i = 0; i < n; i++) norm += (double)g[i] * g[i];
  norm = sqrt(norm);
  vt->destroy(net);
  /* A large eps makes the first step proportional to the gradient, so clipping shows. */
  float eps = 100.0f, clip = (float)(norm / 4);
  float *free_step = step_delta(vt, 0.0f, eps), *clipped = step_delta(vt, clip, eps);
  float *loose = step_delta(vt, (float)(norm * 2), eps);
  double scale = clip / (norm + 1e-6), sum_free = 0, sum_clipped = 0;
  for (uint64_t i = 0; i < n; i++) {
    double gc = g[i] * scale, expect = -1e-2 * gc / (fabs(gc) + eps);
    if (fabs(clipped[i] - expect) > 1e-6 * fabs(expect) + 1e-7)
      fail_msg("param %llu: clipped step %.9g, expected %.9g", (unsigned long long)i,
               (double)clipped[i], expect);
    sum_free += fabs(free_step[i]);
    sum_clipped += fabs(clipped[i]);
  }
  print_message("gradient norm %.4g clipped to %.4g: total step %.4g -> %.4g\n", norm, clip,
                sum_free, sum_clipped);
  assert_true(sum_clipped < 0.3 * sum_free && sum_clipped > 0.2 * sum_free);
  /* A bound above the norm changes nothing. */
  assert_memory_equal(loose, free_step, (size_t)n * sizeof *loose);
  free(g), free(free_step), free(clipped), free(loose);
}

static void nonfinite_gradient_is_refused(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, CONFIG);
  uint64_t seed = 9, n = mlp_count(vt, net);
  float *x = test_random(&seed, BATCH * 5, 1.0f), dv[BATCH];
  for (int i = 0; i < BATCH; i++) dv[i] = FLT_MAX;
  mlp_grad_step(vt, net, x, BATCH, NULL, dv); /* the value bias sums FLT_MAX to infinity */
  float *before = mlp_params(vt, net);
  ch_optimizer_config cfg = {1e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};
  ch_error err = {0, ""};
  assert_int_equal(vt->optimizer_step(net, &cfg, &err), CH_ERANGE);
  mlp_assert_contains(err.message, "gradient norm");
  float *after = mlp_params(vt, net);
  assert_memory_equal(before, after, (size_t)n * sizeof *before);
  vt->destroy(net);
  free(x), free(before), free(after);
}

static void bad_optimizer_config_is_einval(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = adam_net(vt, 4);
  ch_error err = {0, ""};
  const ch_optimizer_config bad[] = {
      {-1.0f, 0.9f, 0.999f, 1e-5f, 0.5f}, {NAN, 0.9f, 0.999f, 1e-5f, 0.5f},
      {1e-3f, 1.0f, 0.999f, 1e-5f, 0.5f}, {1e-3f, 0.9f, -0.1f, 1e-5f, 0.5f},
      {1e-3f, 0.9f, 0.999f, 0.0f, 0.5f},  {1e-3f, 0.9f, 0.999f, 1e-5f, NAN}};
  const char *const named[] = {"lr", "lr", "beta1", "beta2", "eps", "max_grad_norm"};
  float *before = mlp_params(vt, net);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(vt->optimizer_step(net, &bad[i], &err), CH_EINVAL);
    mlp_assert_contains(err.message, named[i]);
  }
  assert_int_equal(vt->optimizer_step(net, NULL, &err), CH_EINVAL);
  float *after = mlp_params(vt, net);
  assert_memory_equal(before, after, (size_t)mlp_count(vt, net) * sizeof *before);
  vt->destroy(net);
  free(before), free(after);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_step_moves_each_param_by_lr_sign),
      cmocka_unit_test(steps_follow_bias_corrected_adam),
      cmocka_unit_test(clipping_scales_the_step),
      cmocka_unit_test(nonfinite_gradient_is_refused),
      cmocka_unit_test(bad_optimizer_config_is_einval),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
