/* test_mlp_batch.c -- mlp: a batch gives each row what a forward of that row alone gives. */
#include "mlp_test.h"

#define IN  6
#define ACT 5

/* Largest |a - b| / (1 + |b|) between a batched output and the row-by-row one. */
static double batch_vs_rows(const ch_network_vtable *vt, void *net, uint32_t batch, uint64_t seed,
                            int *bit_equal) {
  float *x = test_random(&seed, (size_t)batch * IN, 2.0f);
  float *policy = malloc((size_t)batch * ACT * sizeof *policy);
  float *value = malloc((size_t)batch * sizeof *value);
  ch_error err = {0, ""};
  mlp_check(vt->forward(net, x, batch, policy, value, &err), err);
  double worst = 0;
  *bit_equal = 1;
  for (uint32_t r = 0; r < batch; r++) {
    float p1[ACT], v1;
    mlp_check(vt->forward(net, x + (size_t)r * IN, 1, p1, &v1, &err), err);
    for (int j = 0; j < ACT; j++) {
      float b = policy[(size_t)r * ACT + j];
      worst = fmax(worst, fabs(b - p1[j]) / (1 + fabs(p1[j])));
      *bit_equal &= b == p1[j];
    }
    worst = fmax(worst, fabs(value[r] - v1) / (1 + fabs(v1)));
    *bit_equal &= value[r] == v1;
  }
  free(x), free(policy), free(value);
  return worst;
}

static void run(const char *config) {
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, config);
  mlp_randomize(vt, net, 8, 0.4f);
  /* 257 first, then smaller and larger ones: the work area grows and is reused. */
  const uint32_t sizes[] = {257, 1, 3, 64, 300};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    int bit_equal;
    double worst = batch_vs_rows(vt, net, sizes[i], 100 + i, &bit_equal);
    print_message("%s batch %u: worst relative difference %.3g%s\n", config, sizes[i], worst,
                  bit_equal ? " (bit-identical)" : "");
    assert_true(worst <= 1e-5);
  }
  vt->destroy(net);
}

static void separate_tanh(void **state) {
  (void)state;
  run("{\"input_size\":6,\"num_actions\":5,\"hidden\":[32,16]}");
}

static void shared_relu(void **state) {
  (void)state;
  run("{\"input_size\":6,\"num_actions\":5,\"hidden\":[32,16],\"activation\":\"relu\","
      "\"shared\":true}");
}

static void linear(void **state) {
  (void)state;
  run("{\"input_size\":6,\"num_actions\":5,\"hidden\":[]}");
}

/* Skipping a head (NULL output) leaves the other head's numbers exactly as they were. */
static void skipped_head_does_not_change_the_other(void **state) {
  (void)state;
  const char *configs[] = {"{\"input_size\":6,\"num_actions\":5}",
                           "{\"input_size\":6,\"num_actions\":5,\"shared\":true}"};
  const ch_network_vtable *vt = mlp_open();
  for (int c = 0; c < 2; c++) {
    void *net = mlp_new(vt, configs[c]);
    uint64_t seed = 4;
    float *x = test_random(&seed, 20 * IN, 1.0f), p[20 * ACT], v[20], p2[20 * ACT], v2[20];
    ch_error err = {0, ""};
    mlp_check(vt->forward(net, x, 20, p, v, &err), err);
    memset(p2, 0xff, sizeof p2);
    memset(v2, 0xff, sizeof v2);
    mlp_check(vt->forward(net, x, 20, p2, NULL, &err), err);
    mlp_check(vt->forward(net, x, 20, NULL, v2, &err), err);
    assert_memory_equal(p, p2, sizeof p);
    assert_memory_equal(v, v2, sizeof v);
    vt->destroy(net);
    free(x);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(separate_tanh),
      cmocka_unit_test(shared_relu),
      cmocka_unit_test(linear),
      cmocka_unit_test(skipped_head_does_not_change_the_other),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
