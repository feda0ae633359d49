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

/* Parse json into a new object (release with cJSON_Delete); CH_EINVAL naming the offset of a
** syntax error, a NULL string or a document that is not an object. */
int ch__net_config_parse(const char *who, const char *json, cJSON **out, ch_error *err);

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

/* zlib's CRC-32 of len bytes (fed in pieces: zlib takes a 32-bit length). */
uint32_t ch__net_crc32(const unsigned char *p, size_t len);

#endif
