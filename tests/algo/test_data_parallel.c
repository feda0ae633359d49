/* test_data_parallel.c -- a minibatch split over mlp replicas gives one network's outputs,
** gradients and steps. */
#include "algo_test.h"

#include "data_parallel.h"

#include <stddef.h>
#include <time.h>

#define DP_ROWS 64

typedef struct dp_case {
  const char *json;
  uint32_t rows;
  int threads;
} dp_case;

/* Inputs and output gradients of rows rows, the same for every run of a seed. */
typedef struct dp_data {
  float *input, *dpolicy, *dvalue, *policy, *value;
} dp_data;

static void dp_data_make(dp_data *d, const ch_net *n, uint32_t rows, uint64_t seed) {
  size_t I = n->spec.input_size, P = n->spec.policy_size;
  d->input = malloc(sizeof(float) * rows * I);
  d->dpolicy = malloc(sizeof(float) * rows * P);
  d->dvalue = malloc(sizeof(float) * rows);
  d->policy = malloc(sizeof(float) * rows * P);
  d->value = malloc(sizeof(float) * rows);
  for (size_t i = 0; i < rows * I; i++) d->input[i] = (float)algo_uniform(&seed, -1, 1);
  for (size_t i = 0; i < rows * P; i++) d->dpolicy[i] = (float)algo_uniform(&seed, -0.1, 0.1);
  for (size_t i = 0; i < rows; i++) d->dvalue[i] = (float)algo_uniform(&seed, -0.1, 0.1);
}

static void dp_data_free(dp_data *d) {
  free(d->input), free(d->dpolicy), free(d->dvalue), free(d->policy), free(d->value);
}

static float *dp_grads(const ch_net *n) {
  float *g = malloc(n->spec.param_count * sizeof *g);
  if (n->vt->get_grads(n->h, g, n->spec.param_count) != CH_OK) fail_msg("get_grads failed");
  return g;
}

/* Three optimizer steps of one network and of a split one from the same weights: outputs,
** gradients and parameters agree to float rounding at every step. */
static void dp_run_case(const dp_case *c) {
  ch_error err = {0, ""};
  ch_net one, main;
  algo_net(&one, c->json);
  algo_net(&main, c->json);
  ch_dp *dp = NULL;
  algo_check(ch_dp_create(&main, c->json, c->threads, &dp, &err), err);
  ch_optimizer_config oc = {1e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};
  size_t P = one.spec.policy_size, N = one.spec.param_count;
  for (int step = 0; step < 3; step++) {
    dp_data a, b;
    dp_data_make(&a, &one, c->rows, 100 + (uint64_t)step);
    dp_data_make(&b, &one, c->rows, 100 + (uint64_t)step);
    algo_check(one.vt->forward(one.h, a.input, c->rows, a.policy, a.value, &err), err);
    algo_check(ch_dp_forward(dp, b.input, c->rows, b.policy, b.value, &err), err);
    for (size_t i = 0; i < c->rows * P; i++) algo_near(b.policy[i], a.policy[i], 1e-5);
    for (size_t i = 0; i < c->rows; i++) algo_near(b.value[i], a.value[i], 1e-5);
    one.vt->zero_grad(one.h);
    main.vt->zero_grad(main.h);
    algo_check(one.vt->backward(one.h, a.dpolicy, a.dvalue, &err), err);
    algo_check(ch_dp_backward(dp, b.dpolicy, b.dvalue, &err), err);
    float *ga = dp_grads(&one), *gb = dp_grads(&main);
    double biggest = 0;
    for (size_t i = 0; i < N; i++) biggest = fmax(biggest, fabs(ga[i]));
    assert_true(biggest > 1e-4); /* the gradients compared are not all zero */
    for (size_t i = 0; i < N; i++) algo_near(gb[i], ga[i], 1e-5 * biggest);
    free(ga), free(gb);
    algo_check(one.vt->optimizer_step(one.h, &oc, &err), err);
    algo_check(main.vt->optimizer_step(main.h, &oc, &err), err);
    dp_data_free(&a), dp_data_free(&b);
  }
  float *pa = algo_params(&one), *pb = algo_params(&main);
  for (size_t i = 0; i < N; i++) algo_near(pb[i], pa[i], 1e-5);
  free(pa), free(pb);
  ch_dp_destroy(dp);
  algo_net_free(&main);
  algo_net_free(&one);
}

static const char *const dp_categorical =
    "{\"input_size\": 11, \"num_actions\": 7, \"hidden\": [64, 64], \"seed\": 5}";
static const char *const dp_gaussian = "{\"input_size\": 11, \"num_actions\": 2, \"head\": "
                                       "\"gaussian\", \"hidden\": [32], \"seed\": 9}";
static const char *const dp_shared =
    "{\"input_size\": 6, \"num_actions\": 3, \"hidden\": [16, 16], \"shared\": true}";

static void test_two_threads_match_one_network(void **state) {
  (void)state;
  dp_run_case(&(dp_case){dp_categorical, DP_ROWS, 2});
}

/* 5 rows over 4 threads: shares of 2, 2, 1 and none - a replica without rows adds nothing. */
static void test_uneven_and_empty_shares(void **state) {
  (void)state;
  dp_run_case(&(dp_case){dp_categorical, 5, 4});
  dp_run_case(&(dp_case){dp_categorical, 1, 2});
}

/* The Gaussian head's log std sums its gradient over rows, across the replicas too. */
static void test_gaussian_and_shared_trunks(void **state) {
  (void)state;
  dp_run_case(&(dp_case){dp_gaussian, 33, 3});
  dp_run_case(&(dp_case){dp_shared, DP_ROWS, 2});
}

/* Between updates the replicas sleep; a job after a long pause still reaches them. */
static void test_jobs_after_the_replicas_slept(void **state) {
  (void)state;
  ch_error err = {0, ""};
  ch_net main;
  algo_net(&main, dp_categorical);
  ch_dp *dp = NULL;
  algo_check(ch_dp_create(&main, dp_categorical, 2, &dp, &err), err);
  dp_data d;
  dp_data_make(&d, &main, DP_ROWS, 7);
  for (int i = 0; i < 3; i++) {
    struct timespec pause = {0, 20 * 1000 * 1000}; /* far longer than the replicas spin */
    nanosleep(&pause, NULL);
    algo_check(ch_dp_forward(dp, d.input, DP_ROWS, d.policy, d.value, &err), err);
    main.vt->zero_grad(main.h);
    algo_check(ch_dp_backward(dp, d.dpolicy, d.dvalue, &err), err);
  }
  dp_data_free(&d);
  ch_dp_destroy(dp);
  algo_net_free(&main);
}

/* A plugin built before add_grads (a shorter vtable) or without it is refused by name. */
static void test_plugin_without_add_grads(void **state) {
  (void)state;
  ch_error err = {0, ""};
  ch_net main;
  algo_net(&main, dp_categorical);
  ch_network_vtable old = *main.vt;
  const ch_network_vtable *real = main.vt;
  main.vt = &old;
  ch_dp *dp = NULL;
  old.header.struct_size = offsetof(ch_network_vtable, add_grads);
  algo_expect(ch_dp_create(&main, dp_categorical, 2, &dp, &err), CH_EUNSUPPORTED, err,
              "has no add_grads");
  assert_null(dp);
  old.header.struct_size = sizeof old;
  old.add_grads = NULL;
  algo_expect(ch_dp_create(&main, dp_categorical, 2, &dp, &err), CH_EUNSUPPORTED, err,
              "has no add_grads");
  algo_expect(ch_dp_create(&main, dp_categorical, 1, &dp, &err), CH_EINVAL, err, "2 or more");
  main.vt = real;
  algo_net_free(&main);
}

/* A replica config the plugin rejects fails creation with the plugin's message. */
static void test_bad_replica_config(void **state) {
  (void)state;
  ch_error err = {0, ""};
  ch_net main;
  algo_net(&main, dp_categorical);
  ch_dp *dp = NULL;
  algo_expect(ch_dp_create(&main, "{\"input_size\": 11, \"num_actions\": 7, \"hidden\": [8]}", 3,
                           &dp, &err),
              CH_EINVAL, err, "replica has");
  algo_expect(ch_dp_create(&main, "{\"input_size\": 0}", 2, &dp, &err), CH_EINVAL, err, "mlp");
  assert_null(dp);
  algo_net_free(&main);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_threads_match_one_network),
      cmocka_unit_test(test_uneven_and_empty_shares),
      cmocka_unit_test(test_gaussian_and_shared_trunks),
      cmocka_unit_test(test_jobs_after_the_replicas_slept),
      cmocka_unit_test(test_plugin_without_add_grads),
      cmocka_unit_test(test_bad_replica_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
