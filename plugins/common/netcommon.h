/* netcommon.h -- code the network plugins (mlp, cnn) share: Adam, init, dense layers, blobs. */
#ifndef CH_NETCOMMON_H
#define CH_NETCOMMON_H

/*
** Compiled into each network plugin (see netcommon.cmake), never exported: every plugin gets
** its own hidden copy, so the plugins stay self-contained .so files. `who` arguments are the
** plugin's name, the first word of every error message.
*/

#include <cJSON.h>
#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- policy heads ------------------------------------------------------------------------- */

/* What the policy outputs of a sample mean. */
enum { CH_NET_CATEGORICAL = 0, CH_NET_GAUSSIAN = 1 };

/* Initial log standard deviation of the Gaussian head (std 0.61 on actions scaled to [-1, 1],
** Spinning Up's choice) and the range config accepts (SAC's usual clamp). */
#define CH_NET_LOG_STD_INIT (-0.5)
#define CH_NET_LOG_STD_MIN  (-20.0)
#define CH_NET_LOG_STD_MAX  2.0

/* Floats per sample out of the policy head: the logits, or the means then the log stds. */
static inline uint32_t ch__net_policy_size(uint32_t head, uint32_t num_actions) {
  return head == CH_NET_GAUSSIAN ? 2 * num_actions : num_actions;
}

/* Write log_std (dims floats) into columns dims..2*dims of each row of policy (2*dims wide). */
void ch__net_gaussian_fill(const float *log_std, uint32_t dims, uint32_t batch, float *policy);

/* dlog_std += the column sums of columns dims..2*dims of dpolicy: log_std feeds every row. */
void ch__net_gaussian_grads(float *dlog_std, uint32_t dims, uint32_t batch, const float *dpolicy);

/* ---- dense layers ------------------------------------------------------------------------- */

typedef struct ch_net_dense {
  uint32_t in, out;
  uint64_t w, b; /* offsets in the flat params of W (out x in, row-major) and of b (out) */
  double gain;   /* of the orthogonal initialisation */
} ch_net_dense;

/* Place a layer of in -> out at the end of the flat params (*num_params grows past it). */
static inline void ch__net_dense_place(ch_net_dense *L, uint64_t *num_params, uint32_t in,
                                       uint32_t out, double gain) {
  L->in = in;
  L->out = out;
  L->w = *num_params;
  L->b = L->w + (uint64_t)in * out;
  L->gain = gain;
  *num_params = L->b + out;
}

/* y = x W^T + b: batch rows of L->in floats in, rows of L->out floats (ldy apart) out. */
void ch__net_dense_forward(const float *params, const ch_net_dense *L, const float *x,
                           uint32_t batch, float *y, size_t ldy);

/* dW += dy^T x and db += the column sums of dy (rows lddy apart). */
void ch__net_dense_param_grads(float *grads, const ch_net_dense *L, const float *x, const float *dy,
                               size_t lddy, uint32_t batch);

/* dx = dy W + beta * dx (dx is batch x L->in). */
void ch__net_dense_input_grads(const float *params, const ch_net_dense *L, const float *dy,
                               size_t lddy, uint32_t batch, float *dx, float beta);

/* ---- initialisation ----------------------------------------------------------------------- */

/* splitmix64 feeding Box-Muller: tiny, seedable with any 64-bit value, the same everywhere. */
typedef struct ch_net_rng {
  uint64_t state;
  int has_spare;
  double spare;
} ch_net_rng;

static inline void ch__net_rng_seed(ch_net_rng *r, uint64_t seed) {
  r->state = seed;
  r->has_spare = 0;
  r->spare = 0.0;
}

/* A standard normal number. */
double ch__net_gauss(ch_net_rng *r);

/* w (rows x cols, row-major) = gain * a random orthogonal matrix as torch.nn.init.orthogonal_
** draws it: orthonormal columns when rows >= cols, else orthonormal rows. Draws rows * cols
** numbers from r. */
int ch__net_orthogonal(const char *who, float *w, uint32_t rows, uint32_t cols, double gain,
                       ch_net_rng *r, ch_error *err);

/* ---- optimizer ---------------------------------------------------------------------------- */

/* One Adam step (torch.optim.Adam, bias-corrected, no weight decay) over count parameters
** after clipping the global gradient norm to cfg->max_grad_norm (torch's clip_grad_norm_: a
** scale of min(1, max / (norm + 1e-6)) applied on the way in; grads are left unscaled).
** Refuses a bad cfg (CH_EINVAL) or a non-finite norm (CH_ERANGE) without changing anything. */
int ch__net_adam_step(const char *who, const ch_optimizer_config *cfg, float *restrict params,
                      const float *restrict grads, float *restrict m, float *restrict v,
                      uint64_t count, uint64_t *step, ch_error *err);

/* ---- configuration ------------------------------------------------------------------------ */

/* "a number", "a string", ... for messages about a JSON value of the wrong type. */
const char *ch__net_json_kind(const cJSON *item);

/* The integer value of item, which must lie in lo..hi; what names the key ("'seed'"). */
int ch__net_config_int(const char *who, const cJSON *item, const char *what, double lo, double hi,
                       double *out, ch_error *err);

/* A JSON boolean as 0 or 1. */
int ch__net_config_bool(const char *who, const cJSON *item, const char *what, uint32_t *out,
                        ch_error *err);

/* 'head': "categorical" or "gaussian" as CH_NET_CATEGORICAL or CH_NET_GAUSSIAN. */
int ch__net_config_head(const char *who, const cJSON *item, uint32_t *out, ch_error *err);

/* 'log_std_init': a finite number in CH_NET_LOG_STD_MIN..CH_NET_LOG_STD_MAX. */
int ch__net_config_log_std(const char *who, const cJSON *item, double *out, ch_error *err);

/* 'seed': an integer with |seed| <= 2^53, as its two's-complement 64 bits. */
int ch__net_config_seed(const char *who, const cJSON *item, uint64_t *out, ch_error *err);

/* The keys a plugin's config may hold, and how to read each. */
typedef struct ch_net_keys {
  const char *const *names;
  int count;
  const char *known; /* the names as the message about an unknown key lists them */
  int (*read)(int key, const cJSON *item, void *net, ch_error *err);
} ch_net_keys;

/* Parse json, an object of keys each known and given once, and read every one into net;
** seen[key] counts them. */
int ch__net_config_walk(const char *who, const char *json, const ch_net_keys *keys, void *net,
                        int *seen, ch_error *err);

/* Parse json into a new object (release with cJSON_Delete); CH_EINVAL naming the offset of a
** syntax error, a NULL string or a document that is not an object. */
int ch__net_config_parse(const char *who, const char *json, cJSON **out, ch_error *err);

/* ---- plugin glue: the handle state and vtable members every network plugin shares ------ */

/* What create needs beyond the architecture (config keys "seed" and "log_std_init"). */
typedef struct ch_net_init {
  uint64_t seed;
  double log_std_init;
} ch_net_init;

/* The first member of each plugin's handle, so that the shared vtable members below can take
** the handle (a void *) as a pointer to it. */
typedef struct ch_net_core {
  const char *who; /* the plugin's name, first word of its messages */
  const ch_host_api *host;
  uint32_t input_size, policy_size; /* floats per sample in, and out of the policy head */
  uint64_t num_params;
  uint64_t log_std;       /* offset of the Gaussian head's log std (gaussian_dims floats) */
  uint32_t gaussian_dims; /* 0 for a categorical head */
  ch_net_init init;
  /* One allocation of 4 * num_params floats, in this order. */
  float *params, *grads, *adam_m, *adam_v;
  uint64_t adam_step;
  /* The plugin's work area for cap samples; it only grows. */
  float *work;
  uint32_t cap;
  /* What backward may use: samples of the most recent forward (0: none usable) and which
  ** heads' inputs it computed (indexed policy 0, value 1). */
  uint32_t batch;
  int have[2];
} ch_net_core;

/* Place the policy head's outputs: policy_size, and with a Gaussian head the log stds after
** every layer's parameters (the last of the flat params). */
void ch__net_place_log_std(ch_net_core *c, uint32_t head, uint32_t num_actions);

/* What a network plugin's create needs to know of it. */
typedef struct ch_net_kind {
  const char *who;
  size_t size; /* of the handle, which starts with its ch_net_core */
  /* Parse config into the handle (core.init too) and lay it out (core.num_params set). */
  int (*configure)(void *net, const char *config_json, ch_error *err);
  /* Initial weights of every layer from core.init.seed (the log stds are set after it). */
  int (*init_params)(void *net, ch_error *err);
  /* The architecture in words, for the log. */
  void (*describe)(const void *net, char *buf, size_t size);
} ch_net_kind;

/* The create vtable member of a plugin of that kind. */
int ch__net_create(const ch_net_kind *kind, const char *config_json, const ch_host_api *host,
                   void **out, ch_error *err);

/* Forget the cached forward: the parameters it was computed with have changed. */
static inline void ch__net_invalidate(ch_net_core *c) {
  c->batch = 0;
  c->have[0] = c->have[1] = 0;
}

/* Grow the work area to batch samples of row floats plus extra floats; unit names a sample in
** messages ("rows", "samples"). */
int ch__net_work_reserve(ch_net_core *c, uint32_t batch, size_t row, size_t extra, const char *unit,
                         ch_error *err);

/* What forward checks first (after forgetting the previous forward): an input, a batch of 1
** up to limit (BLAS takes int dimensions); note ends the message about a batch too large. */
int ch__net_forward_check(ch_net_core *c, const float *input, uint32_t batch, uint32_t limit,
                          const char *note, ch_error *err);

/* What forward does last: the log stds into the policy output, and remember the batch. */
void ch__net_forward_done(ch_net_core *c, float *policy, uint32_t batch);

/* What backward does first: check for a usable forward that computed every head given a
** gradient, then add the log stds' gradients. */
int ch__net_backward_begin(ch_net_core *c, const float *dpolicy, const float *dvalue,
                           ch_error *err);

/* Element-wise loops compiled twice, for AVX2 and for the baseline, picked when the plugin
** loads (GCC's target_clones; an ifunc). Without FMA, so both give the same floats. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define CH__NET_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CH__NET_VECTOR_CLONES
#endif

/* Vtable members that only touch the core (net is the handle, its core first). */
void ch__net_destroy(void *net);
void ch__net_spec(void *net, ch_network_spec *out);
void ch__net_zero_grad(void *net);
int ch__net_optimizer_step(void *net, const ch_optimizer_config *cfg, ch_error *err);
int ch__net_get_params(void *net, float *out, uint64_t count);
int ch__net_set_params(void *net, const float *in, uint64_t count, ch_error *err);
int ch__net_get_grads(void *net, float *out, uint64_t count);
int ch__net_add_grads(void *net, const float *in, uint64_t count, ch_error *err);
void ch__net_free_blob(void *net, void *blob);

/* The vtable members above, for a plugin's ch_network_vtable initialiser. */
#define CH_NET_SHARED_MEMBERS                                                                      \
  .destroy = ch__net_destroy, .spec = ch__net_spec, .zero_grad = ch__net_zero_grad,                \
  .optimizer_step = ch__net_optimizer_step, .get_params = ch__net_get_params,                      \
  .set_params = ch__net_set_params, .get_grads = ch__net_get_grads,                                \
  .free_blob = ch__net_free_blob, .add_grads = ch__net_add_grads

/* ---- blobs: little-endian encoding, independent of the host's byte order ------------------ */

static inline unsigned char *ch__net_put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static inline unsigned char *ch__net_put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) *p++ = (unsigned char)(v >> (8 * i));
  return p;
}

static inline unsigned char *ch__net_put_floats(unsigned char *p, const float *f, uint64_t count) {
  for (uint64_t i = 0; i < count; i++) {
    uint32_t bits;
    memcpy(&bits, &f[i], sizeof bits);
    p = ch__net_put_u32(p, bits);
  }
  return p;
}

static inline uint32_t ch__net_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ch__net_get_u64(const unsigned char *p) {
  return (uint64_t)ch__net_get_u32(p) | (uint64_t)ch__net_get_u32(p + 4) << 32;
}

static inline const unsigned char *ch__net_get_floats(const unsigned char *p, float *f,
                                                      uint64_t count) {
  for (uint64_t i = 0; i < count; i++, p += 4) {
    uint32_t bits = ch__net_get_u32(p);
    memcpy(&f[i], &bits, sizeof bits);
  }
  return p;
}

/* Every blob is magic (8 bytes), a header of u32 words starting with the format version,
** u64 param count, f32 params, u64 Adam step count, f32 Adam m, f32 Adam v, u32 CRC-32 of
** every byte before it. CH_NET_BLOB_TAIL is what follows the header without parameters. */
#define CH_NET_BLOB_TAIL (8 + 8 + 4)

/* Bytes of a blob whose magic and header take header bytes; 0 if that overflows size_t. */
size_t ch__net_blob_size(size_t header, uint64_t num_params);

/* Write a blob of magic, the words of the header and the core's state; a new buffer in *blob
** (release with free). */
int ch__net_blob_save(const ch_net_core *c, const char *magic, const uint32_t *words,
                      size_t num_words, void **blob, size_t *len, ch_error *err);

/* The checks before a blob's header is read: not NULL, at least min bytes, the magic, the
** checksum. CH_ECORRUPT (CH_EINVAL for NULL) naming what is wrong. */
int ch__net_blob_open(const ch_net_core *c, const unsigned char *p, size_t len, const char *magic,
                      size_t min, ch_error *err);

/* The param count at p + header against the architecture's (expect), and len against the
** size they imply: CH_ECORRUPT on a mismatch. */
int ch__net_blob_check_count(const unsigned char *p, size_t header, size_t len, uint64_t expect,
                             ch_error *err);

/* Read the state after a blob's header (checked) into the core, and forget the forward. */
void ch__net_blob_restore(ch_net_core *c, const unsigned char *p, size_t header);

/* zlib's CRC-32 of len bytes (fed in pieces: zlib takes a 32-bit length). */
uint32_t ch__net_crc32(const unsigned char *p, size_t len);

#endif
