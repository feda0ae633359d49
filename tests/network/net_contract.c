/* net_contract.c -- network tests: the vtable contract checks every network plugin passes. */
#include "net_test.h"

/* Random inputs, output gradients and output buffers for batch samples of a network. */
typedef struct contract_data {
  ch_network_spec spec;
  float *x, *dp, *dv, *p, *v;
} contract_data;

static contract_data contract_data_new(const ch_network_vtable *vt, void *net, uint32_t batch,
                                       uint64_t seed) {
  contract_data d;
  d.spec = net_spec(vt, net);
  d.x = test_random(&seed, (size_t)batch * d.spec.input_size, 1.0f);
  d.dp = test_random(&seed, (size_t)batch * d.spec.policy_size, 1.0f);
  d.dv = test_random(&seed, batch, 1.0f);
  d.p = test_random(&seed, (size_t)batch * d.spec.policy_size, 1.0f);
  d.v = test_random(&seed, batch, 1.0f);
  return d;
}

static void contract_data_free(contract_data *d) {
  free(d->x), free(d->dp), free(d->dv), free(d->p), free(d->v);
}

void net_contract_header(const char *file, const char *name) {
  const ch_network_vtable *vt = net_open(file);
  assert_int_equal(vt->header.abi_version, CH_PLUGIN_ABI_VERSION);
  assert_int_equal(vt->header.struct_size, sizeof(ch_network_vtable));
  assert_int_equal(vt->header.reserved, 0);
  assert_string_equal(vt->header.name, name);
  assert_non_null(vt->header.version);
  assert_non_null(vt->header.summary);
  assert_true(vt->create && vt->destroy && vt->spec && vt->forward && vt->backward &&
              vt->zero_grad && vt->optimizer_step && vt->get_params && vt->set_params &&
              vt->get_grads && vt->save && vt->free_blob && vt->load);
  /* The entry refuses a host of another ABI version. */
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", CHICANE_PLUGIN_BUILD_DIR, file);
  void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(so);
  ch_plugin_entry_fn entry;
  *(void **)&entry = dlsym(so, CH_PLUGIN_ENTRY_NAME);
  assert_non_null(entry);
  ch_host_api future = test_host;
  future.abi_version = CH_PLUGIN_ABI_VERSION + 1;
  assert_null(entry(&future));
  assert_non_null(entry(&test_host));
  dlclose(so);
}

void net_contract_needs_forward(const char *file, const char *json, uint32_t batch) {
  const ch_network_vtable *vt = net_open(file);
  void *net = net_new(vt, json);
  contract_data d = contract_data_new(vt, net, batch, 1);
  ch_error err = {0, ""};
  assert_int_equal(vt->backward(net, d.dp, d.dv, &err), CH_ESTATE);
  net_assert_contains(err.message, "no forward");
  net_check(vt->forward(net, d.x, batch, d.p, d.v, &err), err);
  net_check(vt->backward(net, d.dp, d.dv, &err), err);
  float *params = net_params(vt, net);
  net_check(vt->set_params(net, params, d.spec.param_count, &err), err);
  assert_int_equal(vt->backward(net, d.dp, d.dv, &err), CH_ESTATE);
  net_check(vt->forward(net, d.x, batch, d.p, d.v, &err), err);
  ch_optimizer_config cfg = {1e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};
  net_check(vt->optimizer_step(net, &cfg, &err), err);
  assert_int_equal(vt->backward(net, d.dp, d.dv, &err), CH_ESTATE);
  /* A failed forward forgets the previous one too. */
  net_check(vt->forward(net, d.x, batch, d.p, d.v, &err), err);
  assert_int_equal(vt->forward(net, d.x, 0, d.p, d.v, &err), CH_EINVAL);
  assert_int_equal(vt->backward(net, d.dp, d.dv, &err), CH_ESTATE);
  assert_int_equal(vt->forward(net, NULL, batch, d.p, d.v, &err), CH_EINVAL);
  net_assert_contains(err.message, "input");
  vt->destroy(net);
  free(params);
  contract_data_free(&d);
}

/* Equal up to rounding: BLAS may fold the old sum into its own summation order. */
void net_contract_accumulates(const char *file, const char *json, uint32_t batch) {
  const ch_network_vtable *vt = net_open(file);
  void *net = net_new(vt, json);
  contract_data d = contract_data_new(vt, net, batch, 5);
  uint64_t n = d.spec.param_count;
  ch_error err = {0, ""};
  net_grad_step(vt, net, d.x, batch, d.dp, d.dv);
  float *once = net_grads(vt, net);
  net_check(vt->backward(net, d.dp, d.dv, &err), err);
  float *twice = net_grads(vt, net);
  for (uint64_t i = 0; i < n; i++)
    if (fabsf(twice[i] - 2.0f * once[i]) > 1e-6f * fabsf(once[i]))
      fail_msg("param %llu: %g after two backwards, %g after one", (unsigned long long)i, twice[i],
               once[i]);
  vt->zero_grad(net);
  float *zero = net_grads(vt, net);
  for (uint64_t i = 0; i < n; i++) assert_true(zero[i] == 0.0f);
  vt->destroy(net);
  free(once), free(twice), free(zero);
  contract_data_free(&d);
}

void net_contract_flat_access(const char *file, const char *json) {
  const ch_network_vtable *vt = net_open(file);
  void *net = net_new(vt, json);
  uint64_t n = net_count(vt, net);
  float *p = net_params(vt, net);
  ch_error err = {0, ""};
  char count[32];
  snprintf(count, sizeof count, "%llu", (unsigned long long)n);
  assert_int_equal(vt->get_params(net, p, n - 1), CH_EINVAL);
  assert_int_equal(vt->get_grads(net, p, n + 1), CH_EINVAL);
  assert_int_equal(vt->get_params(net, NULL, n), CH_EINVAL);
  assert_int_equal(vt->set_params(net, p, n - 1, &err), CH_EINVAL);
  net_assert_contains(err.message, count);
  assert_int_equal(vt->set_params(net, NULL, n, &err), CH_EINVAL);
  p[7] = 0.125f;
  net_check(vt->set_params(net, p, n, &err), err);
  float *q = net_params(vt, net);
  assert_memory_equal(p, q, (size_t)n * sizeof *p);
  /* add_grads adds to the accumulator, twice makes double, and refuses a wrong count. */
  assert_non_null(vt->add_grads);
  assert_int_equal(vt->add_grads(net, p, n - 1, &err), CH_EINVAL);
  net_assert_contains(err.message, count);
  assert_int_equal(vt->add_grads(net, NULL, n, &err), CH_EINVAL);
  vt->zero_grad(net);
  net_check(vt->add_grads(net, p, n, &err), err);
  net_check(vt->add_grads(net, p, n, &err), err);
  float *g = net_grads(vt, net);
  for (uint64_t i = 0; i < n; i++) assert_true(g[i] == 2.0f * p[i]);
  assert_true(g[7] == 0.25f);
  vt->destroy(net);
  free(p), free(q), free(g);
}

void net_contract_independent(const char *file, const char *json, const char *other,
                              uint32_t batch) {
  const ch_network_vtable *vt = net_open(file);
  void *a = net_new(vt, json), *b = net_new(vt, json), *c = net_new(vt, other);
  /* c runs other data, a larger batch: batch + 6 samples from the second on. */
  contract_data d = contract_data_new(vt, a, batch + 7, 6);
  uint64_t n = d.spec.param_count;
  ch_error err = {0, ""};
  net_grad_step(vt, a, d.x, batch, d.dp, d.dv);
  vt->zero_grad(b);
  net_check(vt->forward(b, d.x, batch, d.p, d.v, &err), err);
  net_check(vt->forward(c, d.x + d.spec.input_size, batch + 6, d.p, d.v, &err), err);
  net_check(vt->backward(c, NULL, d.v, &err), err);
  net_check(vt->backward(b, d.dp, d.dv, &err), err);
  float *ga = net_grads(vt, a), *gb = net_grads(vt, b);
  assert_memory_equal(ga, gb, (size_t)n * sizeof *ga);
  vt->destroy(a), vt->destroy(b), vt->destroy(c);
  free(ga), free(gb);
  contract_data_free(&d);
}

void net_output_scale(const ch_network_vtable *vt, void *net, const float *x, uint32_t batch,
                      double *max_logit, double *max_value) {
  ch_network_spec spec = net_spec(vt, net);
  size_t np = (size_t)batch * spec.policy_size;
  float *policy = malloc(np * sizeof *policy), *value = malloc(batch * sizeof *value);
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, batch, policy, value, &err), err);
  *max_logit = *max_value = 0;
  for (size_t i = 0; i < np; i++) *max_logit = fmax(*max_logit, fabs(policy[i]));
  for (uint32_t i = 0; i < batch; i++) *max_value = fmax(*max_value, fabs(value[i]));
  print_message("largest |logit| %.4g, largest |value| %.4g\n", *max_logit, *max_value);
  free(policy), free(value);
}
