/* test_mlp_init.c -- mlp: seeded orthogonal initialisation, in the documented parameter order. */
#include "mlp_test.h"

typedef struct init_layer {
  uint32_t in, out;
  double gain;
} init_layer;

/* The layers of input 5, hidden [7, 6], 4 actions in the USAGE block's order. */
static const init_layer separate_layers[] = {
    {5, 7, 1.4142135623730951}, {7, 6, 1.4142135623730951}, {6, 4, 0.01},
    {5, 7, 1.4142135623730951}, {7, 6, 1.4142135623730951}, {6, 1, 1.0}};
static const init_layer shared_layers[] = {
    {5, 7, 1.4142135623730951}, {7, 6, 1.4142135623730951}, {6, 4, 0.01}, {6, 1, 1.0}};

/* W W^T = gain^2 I when out <= in, W^T W = gain^2 I otherwise; worst deviation returned. */
static double orthogonality_error(const float *w, const init_layer *L) {
  int wide = L->out <= L->in;
  uint32_t k = wide ? L->out : L->in, len = wide ? L->in : L->out;
  double worst = 0;
  for (uint32_t a = 0; a < k; a++)
    for (uint32_t b = 0; b < k; b++) {
      double dot = 0;
      for (uint32_t t = 0; t < len; t++) {
        double x = wide ? w[a * L->in + t] : w[t * L->in + a];
        double y = wide ? w[b * L->in + t] : w[t * L->in + b];
        dot += x * y;
      }
      double expect = a == b ? L->gain * L->gain : 0.0;
      worst = fmax(worst, fabs(dot - expect) / (L->gain * L->gain));
    }
  return worst;
}

static void check_layers(const char *config, const init_layer *layers, size_t count) {
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, config);
  float *p = mlp_params(vt, net);
  uint64_t at = 0;
  for (size_t i = 0; i < count; i++) {
    const init_layer *L = &layers[i];
    double err = orthogonality_error(p + at, L);
    if (err > 1e-5)
      fail_msg("%s layer %zu (%u x %u): not orthogonal with gain %g (error %.3g)", config, i,
               L->out, L->in, L->gain, err);
    at += (uint64_t)L->in * L->out;
    for (uint32_t j = 0; j < L->out; j++)
      if (p[at + j] != 0.0f) fail_msg("%s layer %zu: bias %u is %g", config, i, j, p[at + j]);
    at += L->out;
  }
  assert_int_equal(at, mlp_count(vt, net));
  vt->destroy(net);
  free(p);
}

static void separate_trunks_are_orthogonal_in_order(void **state) {
  (void)state;
  check_layers("{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6]}", separate_layers,
               sizeof separate_layers / sizeof separate_layers[0]);
}

static void shared_trunk_is_orthogonal_in_order(void **state) {
  (void)state;
  check_layers("{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"shared\":true}",
               shared_layers, sizeof shared_layers / sizeof shared_layers[0]);
}

static void default_sized_layers_are_orthogonal(void **state) {
  (void)state;
  const init_layer layers[] = {
      {19, 64, 1.4142135623730951}, {64, 64, 1.4142135623730951}, {64, 9, 0.01},
      {19, 64, 1.4142135623730951}, {64, 64, 1.4142135623730951}, {64, 1, 1.0}};
  check_layers("{\"input_size\":19,\"num_actions\":9,\"activation\":\"relu\"}", layers, 6);
}

static void same_seed_same_params(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  const char *cfg = "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"seed\":42}";
  void *a = mlp_new(vt, cfg), *b = mlp_new(vt, cfg);
  float *pa = mlp_params(vt, a), *pb = mlp_params(vt, b);
  assert_memory_equal(pa, pb, (size_t)mlp_count(vt, a) * sizeof *pa);
  vt->destroy(a), vt->destroy(b);
  free(pa), free(pb);
}

static void different_seeds_differ(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *a = mlp_new(vt, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"seed\":42}");
  void *b = mlp_new(vt, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"seed\":43}");
  void *c = mlp_new(vt, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6]}");
  float *pa = mlp_params(vt, a), *pb = mlp_params(vt, b), *pc = mlp_params(vt, c);
  uint64_t n = mlp_count(vt, a), weights = 0, differ_b = 0, differ_c = 0;
  for (uint64_t i = 0; i < n; i++) {
    if (pa[i] == 0.0f) continue; /* biases */
    weights++;
    differ_b += pa[i] != pb[i];
    differ_c += pa[i] != pc[i];
  }
  print_message("seed 42 vs 43: %llu of %llu weights differ; vs default seed: %llu\n",
                (unsigned long long)differ_b, (unsigned long long)weights,
                (unsigned long long)differ_c);
  assert_true(differ_b == weights && differ_c == weights);
  vt->destroy(a), vt->destroy(b), vt->destroy(c);
  free(pa), free(pb), free(pc);
}

/* Initial outputs at PPO's usual scale: logits near 0, values of order 1. */
static void head_gains_set_the_output_scale(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, "{\"input_size\":8,\"num_actions\":5}");
  uint64_t seed = 3;
  float *x = test_random(&seed, 64 * 8, 1.0f);
  double max_logit, max_value;
  net_output_scale(vt, net, x, 64, &max_logit, &max_value);
  assert_true(max_logit > 0 && max_logit < 0.1);
  assert_true(max_value > 0.05 && max_value < 10);
  vt->destroy(net);
  free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(separate_trunks_are_orthogonal_in_order),
      cmocka_unit_test(shared_trunk_is_orthogonal_in_order),
      cmocka_unit_test(default_sized_layers_are_orthogonal),
      cmocka_unit_test(same_seed_same_params),
      cmocka_unit_test(different_seeds_differ),
      cmocka_unit_test(head_gains_set_the_output_scale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
