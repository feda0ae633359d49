/* test_mlp_gradcheck.c -- mlp: backward agrees with central finite differences for every param. */
#include "mlp_test.h"

#define BATCH   3
#define FD_EPS  1e-2f
#define TOL_ABS 2e-4
#define TOL_REL 1e-2

typedef struct gc_case {
  const char *config;
  int relu;
} gc_case;

typedef struct gc_data {
  const ch_network_vtable *vt;
  void *net;
  ch_network_spec spec;
  float *x, *wp, *wv; /* input, and the loss weights of the policy and value outputs */
  float *policy, *value;
} gc_data;

/* The loss sum(wp * policy) + sum(wv * value) at the handle's current parameters, in double. */
static double gc_loss(gc_data *d) {
  ch_error err = {0, ""};
  mlp_check(d->vt->forward(d->net, d->x, BATCH, d->policy, d->value, &err), err);
  double loss = 0.0;
  for (size_t i = 0; i < (size_t)BATCH * d->spec.policy_size; i++)
    loss += (double)d->wp[i] * d->policy[i];
  for (size_t i = 0; i < BATCH; i++) loss += (double)d->wv[i] * d->value[i];
  return loss;
}

static double gc_loss_at(gc_data *d, float *params, uint64_t i, float value) {
  ch_error err = {0, ""};
  float keep = params[i];
  params[i] = value;
  mlp_check(d->vt->set_params(d->net, params, d->spec.param_count, &err), err);
  params[i] = keep;
  return gc_loss(d);
}

static void gc_run(const gc_case *c) {
  gc_data d = {mlp_open(), NULL, {0, 0, 0}, NULL, NULL, NULL, NULL, NULL};
  d.net = mlp_new(d.vt, c->config);
  d.vt->spec(d.net, &d.spec);
  uint64_t seed = 0x5eed + (uint64_t)c->relu;
  mlp_randomize(d.vt, d.net, 77, 0.6f);
  d.x = test_random(&seed, (size_t)BATCH * d.spec.input_size, 1.0f);
  d.wp = test_random(&seed, (size_t)BATCH * d.spec.policy_size, 1.0f);
  d.wv = test_random(&seed, BATCH, 1.0f);
  d.policy = malloc((size_t)BATCH * d.spec.policy_size * sizeof(float));
  d.value = malloc(BATCH * sizeof(float));
  mlp_grad_step(d.vt, d.net, d.x, BATCH, d.wp, d.wv);
  float *grad = mlp_grads(d.vt, d.net), *params = mlp_params(d.vt, d.net);

  double worst = 0, worst_a = 0, worst_n = 0, loss0 = gc_loss(&d);
  uint64_t worst_i = 0, skipped = 0, failed = 0, n = d.spec.param_count;
  for (uint64_t i = 0; i < n; i++) {
    double up = gc_loss_at(&d, params, i, params[i] + FD_EPS);
    double down = gc_loss_at(&d, params, i, params[i] - FD_EPS);
    /* relu is piecewise linear in one parameter: unequal one-sided slopes mean the step
    ** crossed a kink, where a finite difference says nothing about the derivative. */
    if (c->relu && fabs((up - loss0) - (loss0 - down)) > 4e-6) {
      skipped++;
      continue;
    }
    double numeric = (up - down) / (2.0 * FD_EPS), analytic = grad[i];
    double tol = TOL_ABS + TOL_REL * fmax(fabs(analytic), fabs(numeric));
    double ratio = fabs(analytic - numeric) / tol; /* > 1 fails */
    failed += ratio > 1.0;
    if (ratio >= worst) {
      worst = ratio;
      worst_i = i;
      worst_a = analytic;
      worst_n = numeric;
    }
  }
  print_message("%s: %llu params, worst param %llu analytic %.6g numeric %.6g (%.2f of the "
                "tolerance), %llu skipped at relu kinks\n",
                c->config, (unsigned long long)n, (unsigned long long)worst_i, worst_a, worst_n,
                worst, (unsigned long long)skipped);
  if (failed)
    fail_msg("%llu of %llu gradients disagree with finite differences", (unsigned long long)failed,
             (unsigned long long)n);
  if (skipped * 10 > n)
    fail_msg("too many relu kinks skipped: %llu of %llu", (unsigned long long)skipped,
             (unsigned long long)n);
  d.vt->destroy(d.net);
  free(grad), free(params), free(d.x), free(d.wp), free(d.wv), free(d.policy), free(d.value);
}

static void gradcheck_separate_tanh(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6]}", 0};
  gc_run(&c);
}

static void gradcheck_shared_tanh(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"shared\":true}", 0};
  gc_run(&c);
}

static void gradcheck_separate_relu(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"activation\":\"relu\"}", 1};
  gc_run(&c);
}

static void gradcheck_shared_relu(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"activation\":\"relu\","
               "\"shared\":true}",
               1};
  gc_run(&c);
}

static void gradcheck_no_hidden_layer(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":4,\"hidden\":[]}", 0};
  gc_run(&c);
}

static void gradcheck_one_hidden_layer_shared(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":3,\"hidden\":[4],\"shared\":true}", 0};
  gc_run(&c);
}

static void gradcheck_three_hidden_layers(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":3,\"num_actions\":2,\"hidden\":[5,4,3]}", 0};
  gc_run(&c);
}

/* The log stds take their gradient from the loss weights of their output columns. */
static void gradcheck_gaussian_shared(void **state) {
  (void)state;
  gc_case c = {"{\"input_size\":5,\"num_actions\":3,\"hidden\":[7,6],\"shared\":true,"
               "\"head\":\"gaussian\"}",
               0};
  gc_run(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(gradcheck_separate_tanh),
      cmocka_unit_test(gradcheck_shared_tanh),
      cmocka_unit_test(gradcheck_separate_relu),
      cmocka_unit_test(gradcheck_shared_relu),
      cmocka_unit_test(gradcheck_no_hidden_layer),
      cmocka_unit_test(gradcheck_one_hidden_layer_shared),
      cmocka_unit_test(gradcheck_three_hidden_layers),
      cmocka_unit_test(gradcheck_gaussian_shared),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
