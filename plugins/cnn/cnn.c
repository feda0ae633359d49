/* cnn.c -- network plugin "cnn": DeepRacer's camera networks (conv towers + heads) on OpenBLAS. */

/*
** USAGE
**
**   Network plugin "cnn" (network_cnn.so). Config is a JSON object; unknown keys are an error.
**
**   key           type    default        meaning
**   image         object  required       the camera input: {"width": int, "height": int,
**                                        "channels": int}, all three required; width and
**                                        height 1..1024 (and at least 36 for "shallow", 21 for
**                                        "deep"); channels = stacked frames x cameras, 1..16
**   vector_size   int     0              floats after the image in each sample (a lidar
**                                        vector, the state vector), 0..65536; 0 = none
**   architecture  string  "shallow"      "shallow": conv 32 8x8 stride 4, conv 64 4x4/2,
**                                        conv 64 3x3/1, dense 512 (DeepRacer's 3-layer CNN);
**                                        "deep": conv 32 5x5/2, 32 3x3/1, 64 3x3/2, 64 3x3/1,
**                                        dense 64 (DeepRacer's 5-layer CNN)
**   num_actions   int     required       categorical: logits per sample (= policy_size);
**                                        gaussian: action dimensions D; 1..65536
**   head          string  "categorical"  "categorical": policy_size = num_actions logits;
**                                        "gaussian": policy_size = 2 * D, per sample the
**                                        means then the log stds (below)
**   log_std_init  number  -0.5           gaussian only: the initial log standard deviation
**                                        of every action dimension, -20..2
**   shared        bool    true           true: one tower (convs + dense) feeds both heads;
**                                        false: a policy tower and a value tower
**   seed          int     1              seed of the initial weights, |seed| <= 2^53
**
**   Input: each sample is channels * height * width floats, channel-major (CHW, row after
**   row), pixel values already scaled to [0, 1] by the caller, then vector_size floats; so
**   input_size = channels * height * width + vector_size.
**
**   Layers: valid padding (an output side is (side - kernel) / stride + 1, rounded down),
**   ReLU after every conv and after the dense layer; the last conv's output is flattened in
**   CHW order (as torch.flatten of NCHW) and the vector appended before the dense layer. The
**   heads are linear: the policy head gives num_actions logits (or means), the value head one
**   float. Gaussian head (continuous actions): the outputs of a sample are [mean_1..mean_D,
**   log_std_1..log_std_D], log_std being a parameter vector independent of the input;
**   backward takes its gradient from the dpolicy entries of the log std outputs, summed over
**   the batch. Convolutions are im2col + cblas_sgemm over the whole batch, forward and back.
**
**   DeepRacer's third camera network ("deeper": more conv layers with batch normalisation) is
**   not offered: batch normalisation computes different functions in training and in
**   inference, and the network vtable has no member that says which one a forward is for.
**
**   Initialisation: orthogonal, as torch.nn.init.orthogonal_ on the weights viewed as
**   (outputs x inputs) matrices (a conv's as out x in*k*k), gain sqrt(2) for convs and the
**   dense layer, 0.01 for the policy head, 1 for the value head; biases 0; log std
**   log_std_init. One splitmix64 + Box-Muller stream seeded with `seed` runs over the layers
**   in parameter order, so a seed gives the same weights in every process.
**
**   Parameter order (get_params, set_params, get_grads and the blob): layer after layer, each
**   as its weights then its biases; conv weights out x in x kh x kw (torch.nn.Conv2d.weight),
**   dense weights out x in (torch.nn.Linear.weight):
**     shared true:  convs, dense, policy head, value head
**     shared false: policy convs, policy dense, policy head, value convs, value dense, value
**                   head
**   then, with the Gaussian head only, the D log stds last of all.
**
**   forward: batch >= 1. The work buffers grow to the largest batch seen and are then reused;
**   the im2col buffer stops at 4 Mi floats (16 MiB) or one sample, larger batches going
**   through it in chunks. A NULL policy or value skips that head and, with separate towers,
**   its tower. backward: accepts gradients only for heads whose input the most recent forward
**   computed, and only while the parameters are those that forward used: set_params, load and
**   optimizer_step forget the forward (CH_ESTATE until the next one).
**
**   optimizer_step: Adam with bias correction (torch.optim.Adam, no weight decay) after
**   global gradient-norm clipping (torch.nn.utils.clip_grad_norm_) when max_grad_norm > 0,
**   the very code the mlp plugin runs; the accumulator keeps the unscaled sums. A non-finite
**   norm is refused with CH_ERANGE and nothing changes.
**
**   Blob (save/load), little-endian: "CHCNN001", u32 format version (1), u32 width, height,
**   channels, vector_size, architecture (0 shallow, 1 deep), head (0 categorical, 1
**   gaussian), num_actions, shared (0/1), u64 param count, f32 params, u64 Adam step count,
**   f32 Adam m, f32 Adam v (param count each), u32 zlib CRC-32 of every byte before it. load
**   checks all of it before touching the handle: CH_ECORRUPT for a damaged blob, CH_EINVAL
**   naming what differs for another architecture. The gradient accumulator is not saved.
*/

#include "cnn.h"

#include <cJSON.h>
#include <chicane/plugin_util.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------------------ */

static const char *const config_keys[] = {"image", "vector_size",  "architecture", "num_actions",
                                          "head",  "log_std_init", "shared",       "seed"};
enum {
  KEY_IMAGE,
  KEY_VECTOR,
  KEY_ARCH,
  KEY_ACTIONS,
  KEY_HEAD,
  KEY_LOG_STD,
  KEY_SHARED,
  KEY_SEED,
  KEY_COUNT
};

/* What create needs beyond the architecture. */
typedef struct cnn_init {
  uint64_t seed;
  double log_std_init;
} cnn_init;

static int config_image(const cJSON *item, ch_cnn_arch *a, ch_error *err) {
  static const char *const keys[] = {"width", "height", "channels"};
  const double max[] = {CH_CNN_MAX_SIDE, CH_CNN_MAX_SIDE, CH_CNN_MAX_CHANNELS};
  uint32_t *dst[] = {&a->width, &a->height, &a->channels};
  int seen[3] = {0, 0, 0};
  if (!cJSON_IsObject(item))
    return ch_error_set(err, CH_EINVAL,
                        "cnn config key 'image': expected an object {\"width\", \"height\", "
                        "\"channels\"}, got %s",
                        ch__net_json_kind(item));
  for (const cJSON *it = item->child; it; it = it->next) {
    int k = 0;
    while (k < 3 && strcmp(it->string, keys[k])) k++;
    if (k == 3)
      return ch_error_set(err, CH_EINVAL,
                          "cnn config key 'image.%s': unknown (known: width, height, channels)",
                          it->string);
    if (seen[k]++)
      return ch_error_set(err, CH_EINVAL, "cnn config: key 'image.%s' given twice", keys[k]);
    char what[32];
    double v;
    snprintf(what, sizeof what, "'image.%s'", keys[k]);
    int rc = ch__net_config_int("cnn", it, what, 1, max[k], &v, err);
    if (rc) return rc;
    *dst[k] = (uint32_t)v;
  }
  for (int k = 0; k < 3; k++)
    if (!seen[k])
      return ch_error_set(err, CH_EINVAL, "cnn config key 'image': missing required key '%s'",
                          keys[k]);
  return CH_OK;
}

static int config_architecture(const cJSON *item, ch_cnn_arch *a, ch_error *err) {
  const char *s = cJSON_GetStringValue(item);
  for (uint32_t i = 0; s && i < CH_CNN_NUM_ARCHS; i++)
    if (!strcmp(s, ch__cnn_archs[i].name)) {
      a->architecture = i;
      return CH_OK;
    }
  if (s && !strcmp(s, "deeper"))
    return ch_error_set(err, CH_EINVAL,
                        "cnn config key 'architecture': \"deeper\" is not available (its batch "
                        "normalisation needs a train/eval mode the network ABI lacks); expected "
                        "\"shallow\" or \"deep\"");
  if (s)
    return ch_error_set(err, CH_EINVAL,
                        "cnn config key 'architecture': expected \"shallow\" or \"deep\", got "
                        "\"%s\"",
                        s);
  return ch_error_set(err, CH_EINVAL,
                      "cnn config key 'architecture': expected \"shallow\" or \"deep\", got %s",
                      ch__net_json_kind(item));
}

static int config_key(int key, const cJSON *item, ch_cnn_arch *a, cnn_init *init, ch_error *err) {
  double v = 0;
  int rc;
  switch (key) {
  case KEY_IMAGE:
    return config_image(item, a, err);
  case KEY_VECTOR:
    rc = ch__net_config_int("cnn", item, "'vector_size'", 0, CH_CNN_MAX_VECTOR, &v, err);
    a->vector_size = (uint32_t)v;
    return rc;
  case KEY_ARCH:
    return config_architecture(item, a, err);
  case KEY_ACTIONS:
    rc = ch__net_config_int("cnn", item, "'num_actions'", 1, CH_CNN_MAX_ACTIONS, &v, err);
    a->num_actions = (uint32_t)v;
    return rc;
  case KEY_HEAD:
    return ch__net_config_head("cnn", item, &a->head, err);
  case KEY_LOG_STD:
    return ch__net_config_log_std("cnn", item, &init->log_std_init, err);
  case KEY_SHARED:
    return ch__net_config_bool("cnn", item, "'shared'", &a->shared, err);
  default:
    return ch__net_config_seed("cnn", item, &init->seed, err);
  }
}

/* What the keys together must satisfy. */
static int config_check(const int *seen, const ch_cnn_arch *a, ch_error *err) {
  if (!seen[KEY_IMAGE])
    return ch_error_set(err, CH_EINVAL, "cnn config: missing required key 'image'");
  if (!seen[KEY_ACTIONS])
    return ch_error_set(err, CH_EINVAL, "cnn config: missing required key 'num_actions'");
  if (seen[KEY_LOG_STD] && a->head != CH_NET_GAUSSIAN)
    return ch_error_set(err, CH_EINVAL,
                        "cnn config key 'log_std_init': only for \"head\": \"gaussian\"");
  uint32_t need;
  const char *side = ch__cnn_too_small(a, &need);
  if (side)
    return ch_error_set(err, CH_EINVAL,
                        "cnn config key 'image.%s': %u is too small for architecture \"%s\" (its "
                        "convolutions need at least %u)",
                        side, !strcmp(side, "width") ? a->width : a->height,
                        ch__cnn_archs[a->architecture].name, need);
  return CH_OK;
}

static int config_walk(const cJSON *root, ch_cnn_arch *a, cnn_init *init, ch_error *err) {
  int seen[KEY_COUNT] = {0};
  for (const cJSON *it = root->child; it; it = it->next) {
    int key = 0;
    while (key < KEY_COUNT && strcmp(it->string, config_keys[key])) key++;
    if (key == KEY_COUNT)
      return ch_error_set(err, CH_EINVAL,
                          "cnn config: unknown key '%s' (known: image, vector_size, architecture, "
                          "num_actions, head, log_std_init, shared, seed)",
                          it->string);
    if (seen[key]++)
      return ch_error_set(err, CH_EINVAL, "cnn config: key '%s' given twice", it->string);
    int rc = config_key(key, it, a, init, err);
    if (rc) return rc;
  }
  return config_check(seen, a, err);
}

static int parse_config(const char *json, ch_cnn_arch *a, cnn_init *init, ch_error *err) {
  memset(a, 0, sizeof *a);
  a->architecture = CH_CNN_SHALLOW;
  a->head = CH_NET_CATEGORICAL;
  a->shared = 1;
  init->seed = 1;
  init->log_std_init = CH_NET_LOG_STD_INIT;
  cJSON *root;
  int rc = ch__net_config_parse("cnn", json, &root, err);
  if (rc) return rc;
  rc = config_walk(root, a, init, err);
  cJSON_Delete(root);
  return rc;
}

/* ---- initialisation ----------------------------------------------------------------------- */

static int init_tower(ch_cnn *n, const ch_cnn_tower *t, ch_net_rng *r, ch_error *err) {
  for (uint32_t l = 0; l < n->num_conv; l++) {
    const ch_cnn_conv *L = &t->conv[l];
    uint32_t cols = L->in_c * L->kernel * L->kernel;
    int rc = ch__net_orthogonal("cnn", n->params + L->w, L->out_c, cols, sqrt(2.0), r, err);
    if (rc) return rc;
  }
  return ch__net_orthogonal("cnn", n->params + t->dense.w, t->dense.out, t->dense.in, t->dense.gain,
                            r, err);
}

static int init_head(ch_cnn *n, const ch_net_dense *H, ch_net_rng *r, ch_error *err) {
  return ch__net_orthogonal("cnn", n->params + H->w, H->out, H->in, H->gain, r, err);
}

/* Weights in parameter order from one stream; biases stay 0 from calloc. */
static int init_params(ch_cnn *n, const cnn_init *init, ch_error *err) {
  ch_net_rng r;
  ch__net_rng_seed(&r, init->seed);
  int rc = init_tower(n, &n->tower[CH_CNN_POLICY], &r, err);
  if (!rc) rc = init_head(n, &n->head[CH_CNN_POLICY], &r, err);
  if (!rc && !n->arch.shared) rc = init_tower(n, &n->tower[CH_CNN_VALUE], &r, err);
  if (!rc) rc = init_head(n, &n->head[CH_CNN_VALUE], &r, err);
  if (!rc && n->arch.head == CH_NET_GAUSSIAN)
    for (uint32_t j = 0; j < n->arch.num_actions; j++)
      n->params[n->log_std + j] = (float)init->log_std_init;
  return rc;
}

/* ---- vtable members ----------------------------------------------------------------------- */

static void cnn_destroy(void *net) {
  ch_cnn *n = net;
  if (!n) return;
  free(n->params);
  free(n->work);
  free(n);
}

static void cnn_log_created(const ch_cnn *n) {
  const ch_host_api *h = n->host;
  if (!h || h->struct_size < offsetof(ch_host_api, log) + sizeof h->log || !h->log) return;
  char arch[256], line[320];
  ch__cnn_arch_describe(&n->arch, arch, sizeof arch);
  snprintf(line, sizeof line, "created: %s, %llu parameters", arch,
           (unsigned long long)n->num_params);
  h->log(CH_LOG_DEBUG, "cnn", line);
}

static int cnn_create(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "cnn create: out is NULL");
  *out = NULL;
  ch_cnn_arch arch;
  cnn_init init;
  int rc = parse_config(config_json, &arch, &init, err);
  if (rc) return rc;
  ch_cnn *n = calloc(1, sizeof *n);
  if (!n) return ch_error_set(err, CH_ENOMEM, "cnn create: out of memory");
  n->arch = arch;
  n->host = host;
  ch__cnn_layout(n);
  n->params = calloc((size_t)n->num_params * 4, sizeof(float));
  if (!n->params) {
    unsigned long long count = (unsigned long long)n->num_params;
    cnn_destroy(n);
    return ch_error_set(err, CH_ENOMEM, "cnn create: out of memory for %llu parameters", count);
  }
  n->grads = n->params + n->num_params;
  n->adam_m = n->grads + n->num_params;
  n->adam_v = n->adam_m + n->num_params;
  rc = init_params(n, &init, err);
  if (rc) {
    cnn_destroy(n);
    return rc;
  }
  cnn_log_created(n);
  *out = n;
  return CH_OK;
}

static void cnn_spec(void *net, ch_network_spec *out) {
  const ch_cnn *n = net;
  out->input_size = n->input_size;
  out->policy_size = n->policy_size;
  out->param_count = n->num_params;
}

static ch_cnn_tower *tower_of(ch_cnn *n, int h) {
  return &n->tower[n->arch.shared ? CH_CNN_POLICY : h];
}

static int cnn_forward(void *net, const float *input, uint32_t batch, float *policy, float *value,
                       ch_error *err) {
  ch_cnn *n = net;
  ch__cnn_invalidate(n);
  if (!input) return ch_error_set(err, CH_EINVAL, "cnn forward: input is NULL");
  if (!batch) return ch_error_set(err, CH_EINVAL, "cnn forward: batch is 0");
  if (batch > INT_MAX / n->max_plane) /* BLAS takes int dimensions: batch * plane columns */
    return ch_error_set(err, CH_ERANGE, "cnn forward: batch %u exceeds %u for this image size",
                        batch, INT_MAX / n->max_plane);
  int rc = ch__cnn_reserve(n, batch, err);
  if (rc) return rc;
  memcpy(n->x, input, (size_t)batch * n->input_size * sizeof *input);
  float *out[2] = {policy, value};
  size_t ld[2] = {n->policy_size, 1};
  int done[2] = {0, 0}; /* towers computed */
  for (int h = 0; h < 2; h++) {
    if (!out[h]) continue;
    ch_cnn_tower *t = tower_of(n, h);
    if (!done[t - n->tower]++) ch__cnn_tower_forward(n, t, batch);
    ch__net_dense_forward(n->params, &n->head[h], t->hidden, batch, out[h], ld[h]);
    n->have[h] = 1;
  }
  if (policy && n->arch.head == CH_NET_GAUSSIAN)
    ch__net_gaussian_fill(n->params + n->log_std, n->arch.num_actions, batch, policy);
  /* One tower computed for either head serves both. */
  if (n->arch.shared) n->have[CH_CNN_POLICY] = n->have[CH_CNN_VALUE] = done[0] > 0;
  n->batch = batch;
  return CH_OK;
}

static int cnn_backward(void *net, const float *dpolicy, const float *dvalue, ch_error *err) {
  static const char *const head_name[2] = {"policy", "value"};
  ch_cnn *n = net;
  const float *d[2] = {dpolicy, dvalue};
  size_t ld[2] = {n->policy_size, 1};
  if (!n->batch)
    return ch_error_set(err, CH_ESTATE,
                        "cnn backward: no forward since the network was created or its "
                        "parameters changed (set_params, load, optimizer_step)");
  for (int h = 0; h < 2; h++)
    if (d[h] && !n->have[h])
      return ch_error_set(err, CH_ESTATE,
                          "cnn backward: d%s given, but the most recent forward skipped the %s "
                          "head (its %s output was NULL)",
                          head_name[h], head_name[h], head_name[h]);
  if (dpolicy && n->arch.head == CH_NET_GAUSSIAN)
    ch__net_gaussian_grads(n->grads + n->log_std, n->arch.num_actions, n->batch, dpolicy);
  int pending = 0; /* dbuf[0] holds part of the shared tower's hidden-output gradient */
  for (int h = 0; h < 2; h++) {
    if (!d[h]) continue;
    ch_cnn_tower *t = tower_of(n, h);
    const ch_net_dense *H = &n->head[h];
    ch__net_dense_param_grads(n->grads, H, t->hidden, d[h], ld[h], n->batch);
    ch__net_dense_input_grads(n->params, H, d[h], ld[h], n->batch, n->dbuf[0],
                              pending ? 1.0f : 0.0f);
    if (n->arch.shared)
      pending = 1;
    else
      ch__cnn_tower_backward(n, t, n->batch);
  }
  if (pending) ch__cnn_tower_backward(n, &n->tower[CH_CNN_POLICY], n->batch);
  return CH_OK;
}

static void cnn_zero_grad(void *net) {
  ch_cnn *n = net;
  memset(n->grads, 0, (size_t)n->num_params * sizeof *n->grads);
}

static int cnn_optimizer_step(void *net, const ch_optimizer_config *cfg, ch_error *err) {
  ch_cnn *n = net;
  int rc = ch__net_adam_step("cnn", cfg, n->params, n->grads, n->adam_m, n->adam_v, n->num_params,
                             &n->adam_step, err);
  if (rc == CH_OK) ch__cnn_invalidate(n);
  return rc;
}

static int cnn_get_params(void *net, float *out, uint64_t count) {
  ch_cnn *n = net;
  if (!out || count != n->num_params) return CH_EINVAL;
  memcpy(out, n->params, (size_t)count * sizeof *out);
  return CH_OK;
}

static int cnn_set_params(void *net, const float *in, uint64_t count, ch_error *err) {
  ch_cnn *n = net;
  if (!in) return ch_error_set(err, CH_EINVAL, "cnn set_params: in is NULL");
  if (count != n->num_params)
    return ch_error_set(err, CH_EINVAL, "cnn set_params: got %llu floats, the network has %llu",
                        (unsigned long long)count, (unsigned long long)n->num_params);
  memcpy(n->params, in, (size_t)count * sizeof *in);
  ch__cnn_invalidate(n);
  return CH_OK;
}

static int cnn_get_grads(void *net, float *out, uint64_t count) {
  ch_cnn *n = net;
  if (!out || count != n->num_params) return CH_EINVAL;
  memcpy(out, n->grads, (size_t)count * sizeof *out);
  return CH_OK;
}

static int cnn_save(void *net, void **blob, size_t *len, ch_error *err) {
  return ch__cnn_save(net, blob, len, err);
}

static void cnn_free_blob(void *net, void *blob) {
  (void)net;
  free(blob);
}

static int cnn_load(void *net, const void *blob, size_t len, ch_error *err) {
  ch_error_clear(err);
  return ch__cnn_load(net, blob, len, err);
}

static const ch_network_vtable cnn_vtable = {
    .header = {.abi_version = CH_PLUGIN_ABI_VERSION,
               .struct_size = sizeof(ch_network_vtable),
               .kind = CH_PLUGIN_NETWORK,
               .reserved = 0,
               .name = "cnn",
               .version = "1.0.0",
               .summary = "DeepRacer's camera CNNs (shallow, deep; categorical or Gaussian head, "
                          "Adam) on OpenBLAS"},
    .create = cnn_create,
    .destroy = cnn_destroy,
    .spec = cnn_spec,
    .forward = cnn_forward,
    .backward = cnn_backward,
    .zero_grad = cnn_zero_grad,
    .optimizer_step = cnn_optimizer_step,
    .get_params = cnn_get_params,
    .set_params = cnn_set_params,
    .get_grads = cnn_get_grads,
    .save = cnn_save,
    .free_blob = cnn_free_blob,
    .load = cnn_load,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &cnn_vtable.header;
}
