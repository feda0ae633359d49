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

static int config_key(int key, const cJSON *item, void *net, ch_error *err) {
  ch_cnn_arch *a = &((ch_cnn *)net)->arch;
  ch_net_init *init = &((ch_cnn *)net)->core.init;
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

static const ch_net_keys cnn_keys = {
    config_keys, KEY_COUNT,
    "image, vector_size, architecture, num_actions, head, log_std_init, shared, seed", config_key};

/* Read the config into n (core.init holds the defaults) and lay the network out. */
static int configure(void *net, const char *json, ch_error *err) {
  ch_cnn *n = net;
  n->arch.architecture = CH_CNN_SHALLOW;
  n->arch.head = CH_NET_CATEGORICAL;
  n->arch.shared = 1;
  int seen[KEY_COUNT] = {0};
  int rc = ch__net_config_walk("cnn", json, &cnn_keys, n, seen, err);
  if (!rc) rc = config_check(seen, &n->arch, err);
  if (!rc) ch__cnn_layout(n);
  return rc;
}

/* ---- initialisation ----------------------------------------------------------------------- */

static int init_tower(ch_cnn *n, const ch_cnn_tower *t, ch_net_rng *r, ch_error *err) {
  for (uint32_t l = 0; l < n->num_conv; l++) {
    const ch_cnn_conv *L = &t->conv[l];
    uint32_t cols = L->in_c * L->kernel * L->kernel;
    int rc = ch__net_orthogonal("cnn", n->core.params + L->w, L->out_c, cols, sqrt(2.0), r, err);
    if (rc) return rc;
  }
  return ch__net_orthogonal("cnn", n->core.params + t->dense.w, t->dense.out, t->dense.in,
                            t->dense.gain, r, err);
}

static int init_head(ch_cnn *n, const ch_net_dense *H, ch_net_rng *r, ch_error *err) {
  return ch__net_orthogonal("cnn", n->core.params + H->w, H->out, H->in, H->gain, r, err);
}

/* Weights in parameter order from one stream; biases stay 0 from calloc. */
static int init_params(void *net, ch_error *err) {
  ch_cnn *n = net;
  ch_net_rng r;
  ch__net_rng_seed(&r, n->core.init.seed);
  int rc = init_tower(n, &n->tower[CH_CNN_POLICY], &r, err);
  if (!rc) rc = init_head(n, &n->head[CH_CNN_POLICY], &r, err);
  if (!rc && !n->arch.shared) rc = init_tower(n, &n->tower[CH_CNN_VALUE], &r, err);
  if (!rc) rc = init_head(n, &n->head[CH_CNN_VALUE], &r, err);
  return rc;
}

/* ---- vtable members ----------------------------------------------------------------------- */

static void describe(const void *net, char *buf, size_t size) {
  ch__cnn_arch_describe(&((const ch_cnn *)net)->arch, buf, size);
}

static const ch_net_kind cnn_kind = {"cnn", sizeof(ch_cnn), configure, init_params, describe};

static int cnn_create(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  return ch__net_create(&cnn_kind, config_json, host, out, err);
}

static ch_cnn_tower *tower_of(ch_cnn *n, int h) {
  return &n->tower[n->arch.shared ? CH_CNN_POLICY : h];
}

static int cnn_forward(void *net, const float *input, uint32_t batch, float *policy, float *value,
                       ch_error *err) {
  ch_cnn *n = net;
  /* BLAS takes int dimensions: batch * plane columns */
  int rc = ch__net_forward_check(&n->core, input, batch, INT_MAX / n->max_plane,
                                 " for this image size", err);
  if (!rc) rc = ch__cnn_reserve(n, batch, err);
  if (rc) return rc;
  memcpy(n->x, input, (size_t)batch * n->core.input_size * sizeof *input);
  float *out[2] = {policy, value};
  size_t ld[2] = {n->core.policy_size, 1};
  int done[2] = {0, 0}; /* towers computed */
  for (int h = 0; h < 2; h++) {
    if (!out[h]) continue;
    ch_cnn_tower *t = tower_of(n, h);
    if (!done[t - n->tower]++) ch__cnn_tower_forward(n, t, batch);
    ch__net_dense_forward(n->core.params, &n->head[h], t->hidden, batch, out[h], ld[h]);
    n->core.have[h] = 1;
  }
  /* One tower computed for either head serves both. */
  if (n->arch.shared) n->core.have[CH_CNN_POLICY] = n->core.have[CH_CNN_VALUE] = done[0] > 0;
  ch__net_forward_done(&n->core, policy, batch);
  return CH_OK;
}

static int cnn_backward(void *net, const float *dpolicy, const float *dvalue, ch_error *err) {
  ch_cnn *n = net;
  const float *d[2] = {dpolicy, dvalue};
  size_t ld[2] = {n->core.policy_size, 1};
  int rc = ch__net_backward_begin(&n->core, dpolicy, dvalue, err);
  if (rc) return rc;
  int pending = 0; /* dbuf[0] holds part of the shared tower's hidden-output gradient */
  for (int h = 0; h < 2; h++) {
    if (!d[h]) continue;
    ch_cnn_tower *t = tower_of(n, h);
    const ch_net_dense *H = &n->head[h];
    ch__net_dense_param_grads(n->core.grads, H, t->hidden, d[h], ld[h], n->core.batch);
    ch__net_dense_input_grads(n->core.params, H, d[h], ld[h], n->core.batch, n->dbuf[0],
                              pending ? 1.0f : 0.0f);
    if (n->arch.shared)
      pending = 1;
    else
      ch__cnn_tower_backward(n, t, n->core.batch);
  }
  if (pending) ch__cnn_tower_backward(n, &n->tower[CH_CNN_POLICY], n->core.batch);
  return CH_OK;
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
    .forward = cnn_forward,
    .backward = cnn_backward,
    .save = ch__cnn_save,
    .load = ch__cnn_load,
    CH_NET_SHARED_MEMBERS,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &cnn_vtable.header;
}
