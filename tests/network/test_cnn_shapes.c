/* test_cnn_shapes.c -- cnn: sizes in the spec, parameter layout, init, the vtable contract. */
#include "net_test.h"

static const ch_network_vtable *cnn_open(void) {
  return net_open("network_cnn.so");
}

static ch_network_spec spec_of(const char *config) {
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, config);
  ch_network_spec spec = net_spec(vt, net);
  vt->destroy(net);
  return spec;
}

/* ---- sizes -------------------------------------------------------------------------------- */

/* Weights and biases of a conv layer, and of a dense layer. */
static uint64_t conv_params(uint64_t in, uint64_t out, uint64_t k) {
  return out * in * k * k + out;
}

static uint64_t dense_params(uint64_t in, uint64_t out) {
  return out * in + out;
}

static void camera_sizes_in_the_spec(void **state) {
  (void)state;
  /* shallow at 160x120: 39x29, 18x13, 16x11 -> 64 * 176 = 11264 flattened. */
  uint64_t tower = conv_params(1, 32, 8) + conv_params(32, 64, 4) + conv_params(64, 64, 3) +
                   dense_params(11264, 512);
  ch_network_spec s =
      spec_of("{\"image\":{\"width\":160,\"height\":120,\"channels\":1},\"num_actions\":5}");
  assert_int_equal(s.input_size, 160 * 120);
  assert_int_equal(s.policy_size, 5);
  assert_int_equal(s.param_count, tower + dense_params(512, 5) + dense_params(512, 1));
  assert_int_equal(s.param_count, 5842598);
  /* deep at 160x120 with two stacked frames and a 64-beam lidar: 78x58, 76x56, 37x27, 35x25. */
  uint64_t deep = conv_params(2, 32, 5) + conv_params(32, 32, 3) + conv_params(32, 64, 3) +
                  conv_params(64, 64, 3) + dense_params(64 * 35 * 25 + 64, 64);
  s = spec_of("{\"image\":{\"width\":160,\"height\":120,\"channels\":2},\"vector_size\":64,"
              "\"num_actions\":2,\"architecture\":\"deep\",\"head\":\"gaussian\","
              "\"shared\":false}");
  assert_int_equal(s.input_size, 2 * 160 * 120 + 64);
  assert_int_equal(s.policy_size, 4);
  assert_int_equal(s.param_count, 2 * deep + dense_params(64, 2) + dense_params(64, 1) + 2);
}

static void small_sizes_in_the_spec(void **state) {
  (void)state;
  /* 36x36: 8x8, 3x3, 1x1 -> 64 + 3 into the dense layer. */
  uint64_t tower = conv_params(3, 32, 8) + conv_params(32, 64, 4) + conv_params(64, 64, 3) +
                   dense_params(64 + 3, 512);
  ch_network_spec s = spec_of("{\"image\":{\"width\":36,\"height\":36,\"channels\":3},"
                              "\"vector_size\":3,\"num_actions\":9,\"shared\":false}");
  assert_int_equal(s.input_size, 3 * 36 * 36 + 3);
  assert_int_equal(s.policy_size, 9);
  assert_int_equal(s.param_count, 2 * tower + dense_params(512, 9) + dense_params(512, 1));
}

/* forward writes batch * policy_size and batch floats, not one more. */
static void outputs_fill_exactly_their_rows(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":21,\"height\":24,\"channels\":2},"
                          "\"vector_size\":2,\"num_actions\":3,\"architecture\":\"deep\","
                          "\"head\":\"gaussian\"}");
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 1;
  float *x = test_random(&seed, 5 * (size_t)spec.input_size, 1.0f), p[5 * 6 + 1], v[5 + 1];
  p[30] = v[5] = 12345.0f;
  memset(p, 0xff, 30 * sizeof *p); /* NaN until written */
  memset(v, 0xff, 5 * sizeof *v);
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, 5, p, v, &err), err);
  for (int i = 0; i < 30; i++) assert_true(isfinite(p[i]));
  for (int i = 0; i < 5; i++) assert_true(isfinite(v[i]));
  assert_true(p[30] == 12345.0f && v[5] == 12345.0f);
  vt->destroy(net);
  free(x);
}

/* Each part of a sample reaches the outputs: every image channel and the vector. */
static void every_input_part_matters(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":36,\"height\":40,\"channels\":2},"
                          "\"vector_size\":4,\"num_actions\":3,\"seed\":5}");
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 2;
  float *x = test_random(&seed, spec.input_size, 0.5f), p0[3], v0, p1[3], v1;
  for (uint32_t i = 0; i < spec.input_size; i++) x[i] += 0.5f;
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, 1, p0, &v0, &err), err);
  const uint32_t parts[] = {0, 36 * 40 + 7, 2 * 36 * 40 + 1}; /* channel 0, 1, the vector */
  for (size_t i = 0; i < 3; i++) {
    float keep = x[parts[i]];
    x[parts[i]] += 0.9f;
    net_check(vt->forward(net, x, 1, p1, &v1, &err), err);
    x[parts[i]] = keep;
    if (v1 == v0 && !memcmp(p0, p1, sizeof p0)) fail_msg("input %u changes no output", parts[i]);
  }
  vt->destroy(net);
  free(x);
}

/* The Gaussian head: means from the network, log stds the same parameters in every row. */
static void gaussian_outputs(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":21,\"height\":21,\"channels\":1},"
                          "\"num_actions\":2,\"architecture\":\"deep\",\"head\":\"gaussian\","
                          "\"log_std_init\":-1.25}");
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 3, n = spec.param_count;
  float *x = test_random(&seed, 4 * (size_t)spec.input_size, 1.0f), p[4 * 4], v[4];
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, 4, p, v, &err), err);
  float *params = net_params(vt, net);
  assert_true(params[n - 1] == -1.25f && params[n - 2] == -1.25f); /* log stds come last */
  for (int r = 0; r < 4; r++) {
    assert_true(p[r * 4 + 2] == -1.25f && p[r * 4 + 3] == -1.25f);
    assert_true(fabsf(p[r * 4]) < 0.5f && p[r * 4] != p[(r + 1) % 4 * 4]); /* means differ */
  }
  /* backward adds the column sums of the log-std gradients to the last two parameters. */
  float dp[16] = {0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0, 0, 7, 8};
  vt->zero_grad(net);
  net_check(vt->forward(net, x, 4, p, v, &err), err);
  net_check(vt->backward(net, dp, NULL, &err), err);
  float *g = net_grads(vt, net);
  assert_true(g[n - 2] == 16.0f && g[n - 1] == 20.0f);
  for (uint64_t i = 0; i < n - 2; i++)
    if (g[i] != 0.0f) fail_msg("a log-std gradient reached param %llu", (unsigned long long)i);
  vt->destroy(net);
  free(x), free(params), free(g);
}

/* ---- initialisation ----------------------------------------------------------------------- */

typedef struct init_tensor {
  uint32_t rows, cols; /* out x (in * k * k) */
  double gain;
} init_tensor;

/* W W^T = gain^2 I when rows <= cols, W^T W = gain^2 I otherwise; worst deviation returned. */
static double orthogonality_error(const float *w, const init_tensor *T) {
  int wide = T->rows <= T->cols;
  uint32_t k = wide ? T->rows : T->cols, len = wide ? T->cols : T->rows;
  double worst = 0;
  for (uint32_t a = 0; a < k; a++)
    for (uint32_t b = 0; b < k; b++) {
      double dot = 0;
      for (uint32_t t = 0; t < len; t++) {
        double x = wide ? w[(size_t)a * T->cols + t] : w[(size_t)t * T->cols + a];
        double y = wide ? w[(size_t)b * T->cols + t] : w[(size_t)t * T->cols + b];
        dot += x * y;
      }
      worst = fmax(worst, fabs(dot - (a == b ? T->gain * T->gain : 0.0)) / (T->gain * T->gain));
    }
  return worst;
}

static void init_is_orthogonal_in_parameter_order(void **state) {
  (void)state;
  const double r2 = 1.4142135623730951;
  /* deep, 21x23x2 + 3, separate: 9x10, 7x8, 3x3, 1x1 -> 64 + 3. */
  const init_tensor t[] = {{32, 50, r2},  {32, 288, r2}, {64, 288, r2}, {64, 576, r2},
                           {64, 67, r2},  {4, 64, 0.01}, {32, 50, r2},  {32, 288, r2},
                           {64, 288, r2}, {64, 576, r2}, {64, 67, r2},  {1, 64, 1.0}};
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":21,\"height\":23,\"channels\":2},"
                          "\"vector_size\":3,\"num_actions\":4,\"architecture\":\"deep\","
                          "\"shared\":false,\"seed\":17}");
  float *p = net_params(vt, net);
  uint64_t at = 0;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    double err = orthogonality_error(p + at, &t[i]);
    if (err > 1e-5)
      fail_msg("tensor %zu (%u x %u): not orthogonal with gain %g (error %.3g)", i, t[i].rows,
               t[i].cols, t[i].gain, err);
    at += (uint64_t)t[i].rows * t[i].cols;
    for (uint32_t j = 0; j < t[i].rows; j++)
      if (p[at + j] != 0.0f) fail_msg("tensor %zu: bias %u is %g", i, j, p[at + j]);
    at += t[i].rows;
  }
  assert_int_equal(at, net_count(vt, net));
  vt->destroy(net);
  free(p);
}

/* Initial outputs at PPO's usual scale: logits near 0, values of order 1. */
static void head_gains_set_the_output_scale(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":48,\"height\":40,\"channels\":1},"
                          "\"num_actions\":5}");
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 3;
  float *x = test_random(&seed, 32 * (size_t)spec.input_size, 0.5f);
  for (size_t i = 0; i < 32 * (size_t)spec.input_size; i++) x[i] += 0.5f;
  double max_logit, max_value;
  net_output_scale(vt, net, x, 32, &max_logit, &max_value);
  assert_true(max_logit > 0 && max_logit < 0.2);
  assert_true(max_value > 0.05 && max_value < 20);
  vt->destroy(net);
  free(x);
}

/* ---- the vtable contract ------------------------------------------------------------------ */

#define SMALL    "{\"image\":{\"width\":21,\"height\":21,\"channels\":1},\"num_actions\":3,"
#define SHARED   SMALL "\"architecture\":\"deep\"}"
#define SEPARATE SMALL "\"architecture\":\"deep\",\"shared\":false}"

static void vtable_contract(void **state) {
  (void)state;
  net_contract_header("network_cnn.so", "cnn");
  net_contract_needs_forward("network_cnn.so", SHARED, 2);
  net_contract_accumulates("network_cnn.so", SEPARATE, 2);
  net_contract_flat_access("network_cnn.so", SHARED);
  net_contract_independent("network_cnn.so", SEPARATE, SHARED, 2);
}

/* Separate towers: a skipped head's tower cannot back-propagate; a policy gradient touches
** only the policy tower and head, and a value gradient only the value tower and head. */
static void separate_towers_keep_apart(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, SEPARATE);
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 2, n = spec.param_count;
  /* policy tower, policy head (64 x 3 + 3), then the value tower and head. */
  uint64_t tower = (n - (64 * 3 + 3) - 65) / 2, value_part = tower + 64 * 3 + 3;
  float *x = test_random(&seed, 3 * (size_t)spec.input_size, 1.0f);
  float *dp = test_random(&seed, 9, 1.0f), *dv = test_random(&seed, 3, 1.0f), p[9];
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, 3, p, NULL, &err), err);
  assert_int_equal(vt->backward(net, NULL, dv, &err), CH_ESTATE);
  net_assert_contains(err.message, "dvalue");
  net_grad_step(vt, net, x, 3, dp, NULL);
  float *g = net_grads(vt, net);
  uint64_t nonzero = 0;
  for (uint64_t i = 0; i < n; i++) {
    if (i >= value_part && g[i] != 0.0f)
      fail_msg("policy gradient reached param %llu: %g", (unsigned long long)i, g[i]);
    nonzero += i < value_part && g[i] != 0.0f;
  }
  assert_true(nonzero > value_part / 2);
  free(g);
  net_grad_step(vt, net, x, 3, NULL, dv);
  g = net_grads(vt, net);
  for (uint64_t i = 0; i < value_part; i++)
    if (g[i] != 0.0f) fail_msg("value gradient reached param %llu", (unsigned long long)i);
  vt->destroy(net);
  free(x), free(dp), free(dv), free(g);
}

/* One tower: a forward of one head lets the other back-propagate, with the same gradient as a
** forward of both; skipping a head leaves the other's numbers exactly as they were. */
static void shared_tower_serves_both_heads(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, SHARED);
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 3, n = spec.param_count;
  float *x = test_random(&seed, 3 * (size_t)spec.input_size, 1.0f);
  float *dv = test_random(&seed, 3, 1.0f), p[9], v[3], p2[9], v2[3];
  ch_error err = {0, ""};
  net_grad_step(vt, net, x, 3, NULL, dv);
  float *both = net_grads(vt, net);
  vt->zero_grad(net);
  net_check(vt->forward(net, x, 3, p, NULL, &err), err);
  net_check(vt->backward(net, NULL, dv, &err), err);
  float *one = net_grads(vt, net);
  assert_memory_equal(both, one, (size_t)n * sizeof *one);
  net_check(vt->forward(net, x, 3, p, v, &err), err);
  net_check(vt->forward(net, x, 3, p2, NULL, &err), err);
  net_check(vt->forward(net, x, 3, NULL, v2, &err), err);
  assert_memory_equal(p, p2, sizeof p);
  assert_memory_equal(v, v2, sizeof v);
  vt->destroy(net);
  free(x), free(dv), free(both), free(one);
}

/* Adam is the code mlp runs (its tests cover the arithmetic); here: the first step moves every
** parameter with a gradient by lr against its sign, and bad settings change nothing. */
static void optimizer_step_is_adam(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, SHARED);
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 6, n = spec.param_count, moved = 0, with_grad = 0;
  float *x = test_random(&seed, 2 * (size_t)spec.input_size, 1.0f);
  float *dp = test_random(&seed, 6, 1.0f), *dv = test_random(&seed, 2, 1.0f);
  net_grad_step(vt, net, x, 2, dp, dv);
  float *before = net_params(vt, net), *g = net_grads(vt, net);
  ch_error err = {0, ""};
  ch_optimizer_config bad = {1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f};
  assert_int_equal(vt->optimizer_step(net, &bad, &err), CH_EINVAL);
  net_assert_contains(err.message, "cnn optimizer_step");
  assert_int_equal(vt->optimizer_step(net, NULL, &err), CH_EINVAL);
  ch_optimizer_config cfg = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
  net_check(vt->optimizer_step(net, &cfg, &err), err);
  float *after = net_params(vt, net);
  for (uint64_t i = 0; i < n; i++) {
    if (fabsf(g[i]) < 1e-4f) continue; /* eps 1e-8 bends the step by less than 1e-7 */
    with_grad++;
    double delta = (double)after[i] - before[i];
    moved += fabs(delta + 1e-3 * (g[i] > 0 ? 1 : -1)) < 1e-6;
  }
  print_message("%llu of %llu parameters with a gradient moved by lr\n", (unsigned long long)moved,
                (unsigned long long)with_grad);
  assert_true(with_grad > n / 4 && moved == with_grad);
  vt->destroy(net);
  free(x), free(dp), free(dv), free(before), free(g), free(after);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(camera_sizes_in_the_spec),
      cmocka_unit_test(small_sizes_in_the_spec),
      cmocka_unit_test(outputs_fill_exactly_their_rows),
      cmocka_unit_test(every_input_part_matters),
      cmocka_unit_test(gaussian_outputs),
      cmocka_unit_test(init_is_orthogonal_in_parameter_order),
      cmocka_unit_test(head_gains_set_the_output_scale),
      cmocka_unit_test(vtable_contract),
      cmocka_unit_test(separate_towers_keep_apart),
      cmocka_unit_test(shared_tower_serves_both_heads),
      cmocka_unit_test(optimizer_step_is_adam),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
