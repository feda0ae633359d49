/* test_mlp_activation.c -- mlp: the activations themselves, seen through a one-unit network. */
#include "mlp_test.h"

#define POINTS 4001

/* A network whose policy output is act(x): hidden W = 1, b = 0; policy head W = 1, b = 0. */
static void *identity_wrapped(const ch_network_vtable *vt, const char *activation) {
  char config[160];
  snprintf(config, sizeof config,
           "{\"input_size\":1,\"num_actions\":1,\"hidden\":[1],\"shared\":true,"
           "\"activation\":\"%s\"}",
           activation);
  void *net = mlp_new(vt, config);
  /* trunk W, b; policy head W, b; value head W, b */
  const float params[6] = {1, 0, 1, 0, 0, 0};
  ch_error err = {0, ""};
  assert_int_equal(mlp_count(vt, net), 6);
  mlp_check(vt->set_params(net, params, 6, &err), err);
  return net;
}

static float *sweep(const ch_network_vtable *vt, void *net, float *x) {
  float *y = malloc(POINTS * sizeof *y);
  for (int i = 0; i < POINTS; i++) x[i] = -20.0f + 40.0f * (float)i / (POINTS - 1);
  ch_error err = {0, ""};
  mlp_check(vt->forward(net, x, POINTS, y, NULL, &err), err);
  return y;
}

static void tanh_is_within_a_rounding(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = identity_wrapped(vt, "tanh");
  float x[POINTS];
  float *y = sweep(vt, net, x);
  double worst = 0, worst_x = 0, largest = 0;
  for (int i = 0; i < POINTS; i++) {
    double diff = fabs(y[i] - tanh((double)x[i]));
    if (diff > worst) worst = diff, worst_x = x[i];
    largest = fmax(largest, fabs(y[i]));
    if ((x[i] > 0) != (y[i] > 0) && x[i] != 0)
      fail_msg("tanh(%g) = %g has the wrong sign", x[i], y[i]);
  }
  print_message("tanh: worst |error| %.3g at x = %g, largest |y| %.9g\n", worst, worst_x, largest);
  assert_true(worst < 4e-7);
  assert_true(largest <= 1.0);
  float tiny[3] = {1e-6f, -3e-5f, 0.0f}, out[3];
  ch_error err = {0, ""};
  mlp_check(vt->forward(net, tiny, 3, out, NULL, &err), err);
  for (int i = 0; i < 3; i++)
    if (fabs(out[i] - tiny[i]) > 2e-7 * fabs(tiny[i]))
      fail_msg("tanh(%g) = %.9g, not within a rounding of %g", tiny[i], out[i], tiny[i]);
  float nan_in = NAN, nan_out;
  mlp_check(vt->forward(net, &nan_in, 1, &nan_out, NULL, &err), err);
  assert_true(isnan(nan_out));
  vt->destroy(net);
  free(y);
}

static void relu_is_exact(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = identity_wrapped(vt, "relu");
  float x[POINTS];
  float *y = sweep(vt, net, x);
  for (int i = 0; i < POINTS; i++) {
    float expect = x[i] > 0 ? x[i] : 0.0f;
    if (y[i] != expect) fail_msg("relu(%g) = %g", x[i], y[i]);
  }
  vt->destroy(net);
  free(y);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tanh_is_within_a_rounding),
      cmocka_unit_test(relu_is_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
