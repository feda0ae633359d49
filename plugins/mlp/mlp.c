/* mlp.c -- network plugin "mlp": a policy/value multilayer perceptron for PPO on OpenBLAS. */

/*
** USAGE
**
**   Network plugin "mlp" (network_mlp.so). Config is a JSON object; unknown keys are an error.
**
**   key           type          default        meaning
**   input_size    int           required       floats per sample in, 1..1048576
**   num_actions   int           required       categorical: logits per sample (= policy_size);
**                                              gaussian: action dimensions D; 1..65536
**   head          string        "categorical"  "categorical": policy_size = num_actions
**                                              logits; "gaussian": policy_size = 2 * D, per
**                                              sample the means then the log stds (below)
**   log_std_init  number        -0.5           gaussian only: the initial log standard
**                                              deviation of every action dimension, -20..2
**   hidden        array of int  [64, 64]       widths of the hidden layers: 0..8 layers, each
**                                              1..4096; [] makes both heads linear in the input
**   activation    string        "tanh"         "tanh" or "relu", applied after every hidden
**                                              layer
**   shared        bool          false          false: two trunks of hidden layers, one feeding
**                                              the policy head and one the value head (CleanRL,
**                                              SB3); true: one trunk feeding both heads
**   seed          int           1              seed of the initial weights, |seed| <= 2^53
**
**   Layers: a hidden layer computes act(x W^T + b); the heads are linear: the policy head
**   gives num_actions logits (or means), the value head one float. tanh is a rational
**   approximation within 3e-7 of the true function (Eigen's), its derivative taken as 1 - y^2.
**
**   Gaussian head (continuous actions, as CleanRL's and SB3's PPO): the outputs of a sample
**   are [mean_1..mean_D, log_std_1..log_std_D]; the means come from the linear policy head,
**   log_std is a parameter vector independent of the input (the same in every row). backward
**   takes its gradient from the dpolicy entries of the log std outputs, summed over the batch.
**   The default -0.5 (std 0.61, Spinning Up's choice) suits actions scaled to [-1, 1]; SB3 and
**   CleanRL start at 0.
**
**   Initialisation: orthogonal, as torch.nn.init.orthogonal_ (QR of a Gaussian matrix, signs
**   fixed so that R has a positive diagonal), gain sqrt(2) for hidden layers, 0.01 for the
**   policy head, 1 for the value head; biases 0; log std log_std_init. The Gaussian numbers
**   come from splitmix64 and Box-Muller seeded with `seed`, one stream over the layers in
**   parameter order, so a seed gives the same weights in every process.
**
**   Parameter order (get_params, set_params, get_grads and the blob): layer after layer, each
**   as its weights W (out x in, row-major, like torch.nn.Linear.weight) then its biases b:
**     shared false: policy trunk layers, policy head, value trunk layers, value head
**     shared true:  trunk layers, policy head, value head
**   then, with the Gaussian head only, the D log stds last of all.
**   e.g. input 5, hidden [7, 6], 4 actions, separate: W 7x5, b 7; W 6x7, b 6; policy head
**   W 4x6, b 4; the same trunk again; value head W 1x6, b 1: 2 * (42 + 48) + 28 + 7 = 215;
**   the same with "head": "gaussian" adds 4 log stds at 215..218: 219.
**
**   forward: batch >= 1; the work buffers grow to the largest batch seen and are then reused.
**   A NULL policy or value skips that head and, with separate trunks, its trunk.
**   backward: accepts gradients only for heads whose input the most recent forward computed,
**   and only while the parameters are those that forward used: set_params, load and
**   optimizer_step forget the forward (CH_ESTATE until the next one).
**
**   optimizer_step: Adam with bias correction, as torch.optim.Adam without weight decay. When
**   max_grad_norm > 0, the gradients enter the step scaled by min(1, max_grad_norm / (norm +
**   1e-6)) where norm is their global L2 norm (torch.nn.utils.clip_grad_norm_); the
**   accumulator keeps the unscaled sums. A non-finite norm is refused with CH_ERANGE and
**   nothing changes. The log stds are parameters like the others.
**
**   Blob (save/load), little-endian: "CHMLP001", u32 format version (2), u32 input_size,
**   u32 num_actions, u32 activation (0 tanh, 1 relu), u32 shared (0/1), u32 head (0
**   categorical, 1 gaussian), u32 number of hidden layers, u32 width of each, u64 param count,
**   f32 params, u64 Adam step count, f32 Adam m, f32 Adam v (param count each), u32 zlib CRC-32
**   of every byte before it. Version 1 blobs (no head field: categorical) still load. The
**   gradient accumulator is not saved; load leaves it as it is.
*/

#include "mlp.h"

#include <cJSON.h>
#include <chicane/plugin_util.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- architecture ------------------------------------------------------------------------- */

static uint64_t layer_params(uint32_t in, uint32_t out) {
  return (uint64_t)in * out + out;
}

/* A trunk of the configured hidden layers on top of input_size; returns its top width. */
static uint32_t trunk_params(const ch_mlp_arch *a, uint64_t *count) {
  uint32_t in = a->input_size;
  for (uint32_t i = 0; i < a->num_hidden; i++) {
    *count += layer_params(in, a->hidden[i]);
    in = a->hidden[i];
  }
  return in;
}

uint64_t ch__mlp_param_count(const ch_mlp_arch *a) {
  uint64_t count = 0;
  uint32_t top = trunk_params(a, &count);
  if (!a->shared) trunk_params(a, &count);
  count += layer_params(top, a->num_actions) + layer_params(top, 1);
  return a->head == CH_NET_GAUSSIAN ? count + a->num_actions : count;
}

void ch__mlp_arch_describe(const ch_mlp_arch *a, char *buf, size_t size) {
  char hidden[CH_MLP_MAX_HIDDEN * 12 + 3], actions[64];
  size_t at = 0;
  hidden[at++] = '[';
  for (uint32_t i = 0; i < a->num_hidden && i < CH_MLP_MAX_HIDDEN; i++)
    at += (size_t)snprintf(hidden + at, sizeof hidden - at, "%s%u", i ? "," : "", a->hidden[i]);
  snprintf(hidden + at, sizeof hidden - at, "]");
  if (a->head == CH_NET_GAUSSIAN)
    snprintf(actions, sizeof actions, "gaussian over %u action dims", a->num_actions);
  else
    snprintf(actions, sizeof actions, "%u actions", a->num_actions);
  snprintf(buf, size, "input %u, %s, hidden %s, %s, %s", a->input_size, actions, hidden,
           a->activation == CH_MLP_RELU ? "relu" : "tanh",
           a->shared ? "shared trunk" : "separate trunks");
}

static uint32_t add_layer(ch_mlp *n, uint32_t in, uint32_t out, double gain) {
  ch__net_dense_place(&n->layer[n->num_layers], &n->core.num_params, in, out, gain);
  return n->num_layers++;
}

static ch_mlp_trunk add_trunk(ch_mlp *n) {
  ch_mlp_trunk t = {n->num_layers, n->arch.num_hidden};
  uint32_t in = n->arch.input_size;
  for (uint32_t i = 0; i < n->arch.num_hidden; i++) {
    add_layer(n, in, n->arch.hidden[i], sqrt(2.0));
    in = n->arch.hidden[i];
  }
  return t;
}

static uint32_t trunk_width(const ch_mlp *n, const ch_mlp_trunk *t) {
  return t->count ? n->layer[t->first + t->count - 1].out : n->arch.input_size;
}

static int is_head(const ch_mlp *n, uint32_t layer) {
  return layer == n->head_layer[CH_MLP_POLICY] || layer == n->head_layer[CH_MLP_VALUE];
}

/* Lay the layers out in the documented parameter order. */
static void layout(ch_mlp *n) {
  n->trunk[CH_MLP_POLICY] = add_trunk(n);
  uint32_t top = trunk_width(n, &n->trunk[CH_MLP_POLICY]);
  n->head_layer[CH_MLP_POLICY] = add_layer(n, top, n->arch.num_actions, 0.01);
  n->trunk[CH_MLP_VALUE] = n->arch.shared ? n->trunk[CH_MLP_POLICY] : add_trunk(n);
  n->head_layer[CH_MLP_VALUE] = add_layer(n, top, 1, 1.0);
  ch__net_place_log_std(&n->core, n->arch.head, n->arch.num_actions);
  n->core.input_size = n->arch.input_size;
  n->work_row = n->arch.input_size;
  for (uint32_t i = 0; i < n->num_layers; i++) {
    if (is_head(n, i)) continue;
    n->work_row += n->layer[i].out;
    if (n->layer[i].out > n->max_width) n->max_width = n->layer[i].out;
  }
  n->work_row += 2 * (size_t)n->max_width;
}

/* ---- configuration ------------------------------------------------------------------------ */

static const char *const config_keys[] = {"input_size", "num_actions", "hidden", "activation",
                                          "shared",     "seed",        "head",   "log_std_init"};
enum {
  KEY_INPUT,
  KEY_ACTIONS,
  KEY_HIDDEN,
  KEY_ACTIVATION,
  KEY_SHARED,
  KEY_SEED,
  KEY_HEAD,
  KEY_LOG_STD,
  KEY_COUNT
};

static int config_hidden(const cJSON *item, ch_mlp_arch *a, ch_error *err) {
  if (!cJSON_IsArray(item))
    return ch_error_set(err, CH_EINVAL,
                        "mlp config key 'hidden': expected an array of layer widths, got %s",
                        ch__net_json_kind(item));
  int count = cJSON_GetArraySize(item);
  if (count > CH_MLP_MAX_HIDDEN)
    return ch_error_set(err, CH_EINVAL, "mlp config key 'hidden': at most %d layers, got %d",
                        CH_MLP_MAX_HIDDEN, count);
  a->num_hidden = 0;
  for (const cJSON *w = item->child; w; w = w->next) {
    char what[48];
    double v;
    snprintf(what, sizeof what, "'hidden' (element %u)", a->num_hidden);
    int rc = ch__net_config_int("mlp", w, what, 1, CH_MLP_MAX_WIDTH, &v, err);
    if (rc) return rc;
    a->hidden[a->num_hidden++] = (uint32_t)v;
  }
  return CH_OK;
}

static int config_activation(const cJSON *item, ch_mlp_arch *a, ch_error *err) {
  const char *s = cJSON_GetStringValue(item);
  if (s && !strcmp(s, "tanh"))
    a->activation = CH_MLP_TANH;
  else if (s && !strcmp(s, "relu"))
    a->activation = CH_MLP_RELU;
  else if (s)
    return ch_error_set(err, CH_EINVAL,
                        "mlp config key 'activation': expected \"tanh\" or \"relu\", got \"%s\"",
                        s);
  else
    return ch_error_set(err, CH_EINVAL,
                        "mlp config key 'activation': expected \"tanh\" or \"relu\", got %s",
                        ch__net_json_kind(item));
  return CH_OK;
}

static int config_key(int key, const cJSON *item, void *net, ch_error *err) {
  ch_mlp_arch *a = &((ch_mlp *)net)->arch;
  ch_net_init *init = &((ch_mlp *)net)->core.init;
  double v = 0;
  int rc = CH_OK;
  switch (key) {
  case KEY_INPUT:
    rc = ch__net_config_int("mlp", item, "'input_size'", 1, CH_MLP_MAX_INPUT, &v, err);
    a->input_size = (uint32_t)v;
    return rc;
  case KEY_ACTIONS:
    rc = ch__net_config_int("mlp", item, "'num_actions'", 1, CH_MLP_MAX_ACTIONS, &v, err);
    a->num_actions = (uint32_t)v;
    return rc;
  case KEY_HIDDEN:
    return config_hidden(item, a, err);
  case KEY_ACTIVATION:
    return config_activation(item, a, err);
  case KEY_SHARED:
    return ch__net_config_bool("mlp", item, "'shared'", &a->shared, err);
  case KEY_HEAD:
    return ch__net_config_head("mlp", item, &a->head, err);
  case KEY_LOG_STD:
    return ch__net_config_log_std("mlp", item, &init->log_std_init, err);
  default:
    return ch__net_config_seed("mlp", item, &init->seed, err);
  }
}

static const ch_net_keys mlp_keys = {
    config_keys, KEY_COUNT,
    "input_size, num_actions, head, log_std_init, hidden, activation, shared, seed", config_key};

/* Read the config into n (core.init holds the defaults) and lay the network out. */
static int configure(void *net, const char *json, ch_error *err) {
  ch_mlp *n = net;
  ch_mlp_arch *a = &n->arch;
  a->num_hidden = 2;
  a->hidden[0] = a->hidden[1] = 64;
  a->head = CH_NET_CATEGORICAL;
  int seen[KEY_COUNT] = {0};
  int rc = ch__net_config_walk("mlp", json, &mlp_keys, n, seen, err);
  if (rc) return rc;
  if (!seen[KEY_INPUT])
    return ch_error_set(err, CH_EINVAL, "mlp config: missing required key 'input_size'");
  if (!seen[KEY_ACTIONS])
    return ch_error_set(err, CH_EINVAL, "mlp config: missing required key 'num_actions'");
  if (seen[KEY_LOG_STD] && a->head != CH_NET_GAUSSIAN)
    return ch_error_set(err, CH_EINVAL,
                        "mlp config key 'log_std_init': only for \"head\": \"gaussian\"");
  layout(n);
  return CH_OK;
}

/* ---- layers ------------------------------------------------------------------------------- */

static const float *trunk_top(const ch_mlp *n, const ch_mlp_trunk *t) {
  return t->count ? n->act[t->first + t->count - 1] : n->x;
}

/* tanh as a rational function (Eigen 3.4's float coefficients, also used by onnxruntime and
** MLIR): within 3e-7 of tanh everywhere (a few float roundings near +-1) and branch-free, so
** the loop over a layer vectorises; libm's tanhf is a call per element and took over half of
** the forward pass. */
static inline float fast_tanh(float x) {
  const float clamp = 7.90531110763549805f;
  float c = x > clamp ? clamp : x;
  c = c < -clamp ? -clamp : c;
  float c2 = c * c;
  float p = -2.76076847742355e-16f;
  p = p * c2 + 2.00018790482477e-13f;
  p = p * c2 + -8.60467152213735e-11f;
  p = p * c2 + 5.12229709037114e-08f;
  p = p * c2 + 1.48572235717979e-05f;
  p = p * c2 + 6.37261928875436e-04f;
  p = p * c2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * c2 + 1.18534705686654e-04f;
  q = q * c2 + 2.26843463243900e-03f;
  q = q * c2 + 4.89352518554385e-03f;
  return c * p / q;
}

CH__NET_VECTOR_CLONES
static void activation_forward(int activation, float *y, size_t count) {
  if (activation == CH_MLP_RELU)
    for (size_t i = 0; i < count; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
  else
    for (size_t i = 0; i < count; i++) y[i] = fast_tanh(y[i]);
}

/* d *= act'(pre-activation), written in terms of the cached output y = act(pre-activation). */
static void activation_backward(int activation, const float *y, float *d, size_t count) {
  if (activation == CH_MLP_RELU)
    for (size_t i = 0; i < count; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
  else
    for (size_t i = 0; i < count; i++) d[i] *= 1.0f - y[i] * y[i];
}

static void trunk_forward(ch_mlp *n, const ch_mlp_trunk *t, uint32_t batch) {
  const float *x = n->x;
  for (uint32_t i = t->first; i < t->first + t->count; i++) {
    const ch_net_dense *L = &n->layer[i];
    ch__net_dense_forward(n->core.params, L, x, batch, n->act[i], L->out);
    activation_forward((int)n->arch.activation, n->act[i], (size_t)batch * L->out);
    x = n->act[i];
  }
}

/* Back through a trunk whose top-output gradient is in dbuf[0]. */
static void trunk_backward(ch_mlp *n, const ch_mlp_trunk *t, uint32_t batch) {
  int cur = 0;
  for (uint32_t i = t->count; i-- > 0;) {
    uint32_t k = t->first + i;
    const ch_net_dense *L = &n->layer[k];
    float *d = n->dbuf[cur];
    activation_backward((int)n->arch.activation, n->act[k], d, (size_t)batch * L->out);
    ch__net_dense_param_grads(n->core.grads, L, i ? n->act[k - 1] : n->x, d, L->out, batch);
    if (i) ch__net_dense_input_grads(n->core.params, L, d, L->out, batch, n->dbuf[1 - cur], 0.0f);
    cur = 1 - cur;
  }
}

/* Make the work area hold batch rows; it only grows, so a steady batch size allocates once. */
static int work_reserve(ch_mlp *n, uint32_t batch, ch_error *err) {
  if (batch <= n->core.cap) return CH_OK;
  int rc = ch__net_work_reserve(&n->core, batch, n->work_row, 0, "rows", err);
  if (rc) return rc;
  float *w = n->core.work;
  n->x = w;
  w += (size_t)batch * n->arch.input_size;
  for (uint32_t i = 0; i < n->num_layers; i++) {
    if (is_head(n, i)) continue;
    n->act[i] = w;
    w += (size_t)batch * n->layer[i].out;
  }
  n->dbuf[0] = w;
  n->dbuf[1] = w + (size_t)batch * n->max_width;
  return CH_OK;
}

/* ---- vtable members ----------------------------------------------------------------------- */

static void describe(const void *net, char *buf, size_t size) {
  ch__mlp_arch_describe(&((const ch_mlp *)net)->arch, buf, size);
}

static const ch_net_kind mlp_kind = {"mlp", sizeof(ch_mlp), configure, ch__mlp_init_params,
                                     describe};

static int mlp_create(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  return ch__net_create(&mlp_kind, config_json, host, out, err);
}

static int mlp_forward(void *net, const float *input, uint32_t batch, float *policy, float *value,
                       ch_error *err) {
  ch_mlp *n = net;
  int rc = ch__net_forward_check(&n->core, input, batch, INT_MAX, "", err);
  if (!rc) rc = work_reserve(n, batch, err);
  if (rc) return rc;
  memcpy(n->x, input, (size_t)batch * n->arch.input_size * sizeof *input);
  float *out[2] = {policy, value};
  size_t ld[2] = {n->core.policy_size, 1};
  for (int h = 0; h < 2; h++) {
    if (!out[h]) continue;
    int trunk_done = n->arch.shared && (n->core.have[CH_MLP_POLICY] || n->core.have[CH_MLP_VALUE]);
    if (!trunk_done) trunk_forward(n, &n->trunk[h], batch);
    n->core.have[h] = 1;
    ch__net_dense_forward(n->core.params, &n->layer[n->head_layer[h]], trunk_top(n, &n->trunk[h]),
                          batch, out[h], ld[h]);
  }
  if (n->arch.shared && (n->core.have[CH_MLP_POLICY] || n->core.have[CH_MLP_VALUE]))
    n->core.have[CH_MLP_POLICY] = n->core.have[CH_MLP_VALUE] = 1;
  ch__net_forward_done(&n->core, policy, batch);
  return CH_OK;
}

static int mlp_backward(void *net, const float *dpolicy, const float *dvalue, ch_error *err) {
  ch_mlp *n = net;
  const float *d[2] = {dpolicy, dvalue};
  size_t ld[2] = {n->core.policy_size, 1};
  int rc = ch__net_backward_begin(&n->core, dpolicy, dvalue, err);
  if (rc) return rc;
  int pending = 0; /* dbuf[0] holds part of the shared trunk's top gradient */
  for (int h = 0; h < 2; h++) {
    if (!d[h]) continue;
    const ch_mlp_trunk *t = &n->trunk[h];
    const ch_net_dense *L = &n->layer[n->head_layer[h]];
    ch__net_dense_param_grads(n->core.grads, L, trunk_top(n, t), d[h], ld[h], n->core.batch);
    if (!t->count) continue;
    ch__net_dense_input_grads(n->core.params, L, d[h], ld[h], n->core.batch, n->dbuf[0],
                              pending ? 1.0f : 0.0f);
    if (n->arch.shared)
      pending = 1;
    else
      trunk_backward(n, t, n->core.batch);
  }
  if (pending) trunk_backward(n, &n->trunk[CH_MLP_POLICY], n->core.batch);
  return CH_OK;
}

static const ch_network_vtable mlp_vtable = {
    .header = {.abi_version = CH_PLUGIN_ABI_VERSION,
               .struct_size = sizeof(ch_network_vtable),
               .kind = CH_PLUGIN_NETWORK,
               .reserved = 0,
               .name = "mlp",
               .version = "1.1.0",
               .summary =
                   "policy/value MLP (tanh/relu, categorical or Gaussian head, Adam) on OpenBLAS"},
    .create = mlp_create,
    .forward = mlp_forward,
    .backward = mlp_backward,
    .save = ch__mlp_save,
    .load = ch__mlp_load,
    CH_NET_SHARED_MEMBERS,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &mlp_vtable.header;
}
