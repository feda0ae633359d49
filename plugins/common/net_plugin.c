/* net_plugin.c -- network plugins: the handle state and vtable members mlp and cnn share. */
#include "netcommon.h"

#include <chicane/plugin_util.h>
#include <stdio.h>
#include <stdlib.h>

void ch__net_place_log_std(ch_net_core *c, uint32_t head, uint32_t num_actions) {
  c->policy_size = ch__net_policy_size(head, num_actions);
  c->log_std = c->num_params;
  c->gaussian_dims = head == CH_NET_GAUSSIAN ? num_actions : 0;
  c->num_params += c->gaussian_dims;
}

/* Allocate the zeroed parameters, gradients and Adam moments of c->num_params floats each. */
static int core_alloc(ch_net_core *c, ch_error *err) {
  c->params = calloc((size_t)c->num_params * 4, sizeof(float));
  if (!c->params)
    return ch_error_set(err, CH_ENOMEM, "%s create: out of memory for %llu parameters", c->who,
                        (unsigned long long)c->num_params);
  c->grads = c->params + c->num_params;
  c->adam_m = c->grads + c->num_params;
  c->adam_v = c->adam_m + c->num_params;
  return CH_OK;
}

/* Log "created: <arch>, N parameters" at debug level when the host offers a log. */
static void log_created(const ch_net_kind *kind, const ch_net_core *c) {
  const ch_host_api *h = c->host;
  if (!h || h->struct_size < offsetof(ch_host_api, log) + sizeof h->log || !h->log) return;
  char arch[256], line[320];
  kind->describe(c, arch, sizeof arch);
  snprintf(line, sizeof line, "created: %s, %llu parameters", arch,
           (unsigned long long)c->num_params);
  h->log(CH_LOG_DEBUG, c->who, line);
}

int ch__net_create(const ch_net_kind *kind, const char *config_json, const ch_host_api *host,
                   void **out, ch_error *err) {
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "%s create: out is NULL", kind->who);
  *out = NULL;
  ch_net_core *c = calloc(1, kind->size);
  if (!c) return ch_error_set(err, CH_ENOMEM, "%s create: out of memory", kind->who);
  c->who = kind->who;
  c->host = host;
  c->init.seed = 1;
  c->init.log_std_init = CH_NET_LOG_STD_INIT;
  int rc = kind->configure(c, config_json, err);
  if (!rc) rc = core_alloc(c, err);
  if (!rc) rc = kind->init_params(c, err);
  if (rc) {
    ch__net_destroy(c);
    return rc;
  }
  for (uint32_t j = 0; j < c->gaussian_dims; j++)
    c->params[c->log_std + j] = (float)c->init.log_std_init;
  log_created(kind, c);
  *out = c;
  return CH_OK;
}

int ch__net_work_reserve(ch_net_core *c, uint32_t batch, size_t row, size_t extra, const char *unit,
                         ch_error *err) {
  if (row > (SIZE_MAX / sizeof(float) - extra) / batch)
    return ch_error_set(err, CH_ENOMEM, "%s forward: a batch of %u %s overflows size_t", c->who,
                        batch, unit);
  size_t bytes = ((size_t)batch * row + extra) * sizeof(float);
  float *w = realloc(c->work, bytes);
  if (!w)
    return ch_error_set(err, CH_ENOMEM, "%s forward: out of memory for a batch of %u (%zu bytes)",
                        c->who, batch, bytes);
  c->work = w;
  c->cap = batch;
  return CH_OK;
}

int ch__net_forward_check(ch_net_core *c, const float *input, uint32_t batch, uint32_t limit,
                          const char *note, ch_error *err) {
  ch__net_invalidate(c);
  if (!input) return ch_error_set(err, CH_EINVAL, "%s forward: input is NULL", c->who);
  if (!batch) return ch_error_set(err, CH_EINVAL, "%s forward: batch is 0", c->who);
  if (batch > limit)
    return ch_error_set(err, CH_ERANGE, "%s forward: batch %u exceeds %u%s", c->who, batch, limit,
                        note);
  return CH_OK;
}

void ch__net_forward_done(ch_net_core *c, float *policy, uint32_t batch) {
  if (policy && c->gaussian_dims)
    ch__net_gaussian_fill(c->params + c->log_std, c->gaussian_dims, batch, policy);
  c->batch = batch;
}

int ch__net_backward_begin(ch_net_core *c, const float *dpolicy, const float *dvalue,
                           ch_error *err) {
  static const char *const head_name[2] = {"policy", "value"};
  const float *d[2] = {dpolicy, dvalue};
  if (!c->batch)
    return ch_error_set(err, CH_ESTATE,
                        "%s backward: no forward since the network was created or its "
                        "parameters changed (set_params, load, optimizer_step)",
                        c->who);
  for (int h = 0; h < 2; h++)
    if (d[h] && !c->have[h])
      return ch_error_set(err, CH_ESTATE,
                          "%s backward: d%s given, but the most recent forward skipped the %s "
                          "head (its %s output was NULL)",
                          c->who, head_name[h], head_name[h], head_name[h]);
  if (dpolicy && c->gaussian_dims)
    ch__net_gaussian_grads(c->grads + c->log_std, c->gaussian_dims, c->batch, dpolicy);
  return CH_OK;
}

/* ---- vtable members ----------------------------------------------------------------------- */

void ch__net_destroy(void *net) {
  ch_net_core *c = net;
  if (!c) return;
  free(c->params);
  free(c->work);
  free(net);
}

void ch__net_spec(void *net, ch_network_spec *out) {
  const ch_net_core *c = net;
  out->input_size = c->input_size;
  out->policy_size = c->policy_size;
  out->param_count = c->num_params;
}

void ch__net_zero_grad(void *net) {
  ch_net_core *c = net;
  memset(c->grads, 0, (size_t)c->num_params * sizeof *c->grads);
}

int ch__net_optimizer_step(void *net, const ch_optimizer_config *cfg, ch_error *err) {
  ch_net_core *c = net;
  int rc = ch__net_adam_step(c->who, cfg, c->params, c->grads, c->adam_m, c->adam_v, c->num_params,
                             &c->adam_step, err);
  if (rc == CH_OK) ch__net_invalidate(c);
  return rc;
}

int ch__net_get_params(void *net, float *out, uint64_t count) {
  const ch_net_core *c = net;
  if (!out || count != c->num_params) return CH_EINVAL;
  memcpy(out, c->params, (size_t)count * sizeof *out);
  return CH_OK;
}

int ch__net_set_params(void *net, const float *in, uint64_t count, ch_error *err) {
  ch_net_core *c = net;
  if (!in) return ch_error_set(err, CH_EINVAL, "%s set_params: in is NULL", c->who);
  if (count != c->num_params)
    return ch_error_set(err, CH_EINVAL, "%s set_params: got %llu floats, the network has %llu",
                        c->who, (unsigned long long)count, (unsigned long long)c->num_params);
  memcpy(c->params, in, (size_t)count * sizeof *in);
  ch__net_invalidate(c);
  return CH_OK;
}

int ch__net_get_grads(void *net, float *out, uint64_t count) {
  const ch_net_core *c = net;
  if (!out || count != c->num_params) return CH_EINVAL;
  memcpy(out, c->grads, (size_t)count * sizeof *out);
  return CH_OK;
}

int ch__net_add_grads(void *net, const float *in, uint64_t count, ch_error *err) {
  ch_net_core *c = net;
  if (!in) return ch_error_set(err, CH_EINVAL, "%s add_grads: in is NULL", c->who);
  if (count != c->num_params)
    return ch_error_set(err, CH_EINVAL, "%s add_grads: got %llu floats, the network has %llu",
                        c->who, (unsigned long long)count, (unsigned long long)c->num_params);
  for (uint64_t i = 0; i < count; i++) c->grads[i] += in[i];
  return CH_OK;
}

void ch__net_free_blob(void *net, void *blob) {
  (void)net;
  free(blob);
}
