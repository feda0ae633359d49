/* net_adam.c -- network plugins: Adam with global gradient-norm clipping, as PyTorch does it. */
#include "netcommon.h"

#include <chicane/plugin_util.h>
#include <math.h>

static int check_config(const char *who, const ch_optimizer_config *c, ch_error *err) {
  if (!c) return ch_error_set(err, CH_EINVAL, "%s optimizer_step: cfg is NULL", who);
  if (!(isfinite(c->lr) && c->lr >= 0.0f))
    return ch_error_set(err, CH_EINVAL, "%s optimizer_step: lr must be finite and >= 0, got %g",
                        who, (double)c->lr);
  if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
    return ch_error_set(err, CH_EINVAL,
                        "%s optimizer_step: beta1 and beta2 must lie in [0, 1), got %g and %g", who,
                        (double)c->beta1, (double)c->beta2);
  if (!(isfinite(c->eps) && c->eps > 0.0f))
    return ch_error_set(err, CH_EINVAL, "%s optimizer_step: eps must be finite and > 0, got %g",
                        who, (double)c->eps);
  if (isnan(c->max_grad_norm))
    return ch_error_set(err, CH_EINVAL, "%s optimizer_step: max_grad_norm is NaN", who);
  return CH_OK;
}

/* In double: a float sum of a few million squares loses the small ones. */
static double grad_norm(const float *g, uint64_t count) {
  double sum = 0.0;
  for (uint64_t i = 0; i < count; i++) sum += (double)g[i] * g[i];
  return sqrt(sum);
}

/* The element-wise update. With AVX2 (chosen at load time where the CPU has it) eight floats
** go at once; each element gets the same operations either way, so results do not change. */
CH__NET_VECTOR_CLONES
static void ch__adam_update(float *restrict params, const float *restrict grads, float *restrict m,
                            float *restrict v, uint64_t count, float scale, float b1, float b2,
                            float eps, float step_size, float bc2_sqrt) {
  for (uint64_t i = 0; i < count; i++) {
    float g = grads[i] * scale;
    float mi = m[i] = b1 * m[i] + (1.0f - b1) * g;
    float vi = v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    params[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
  }
}

int ch__net_adam_step(const char *who, const ch_optimizer_config *cfg, float *restrict params,
                      const float *restrict grads, float *restrict m, float *restrict v,
                      uint64_t count, uint64_t *step, ch_error *err) {
  int rc = check_config(who, cfg, err);
  if (rc) return rc;
  double norm = grad_norm(grads, count);
  if (!isfinite(norm))
    return ch_error_set(err, CH_ERANGE,
                        "%s optimizer_step: the gradient norm is %g; parameters left unchanged",
                        who, norm);
  float scale = 1.0f;
  if (cfg->max_grad_norm > 0.0f && cfg->max_grad_norm / (norm + 1e-6) < 1.0)
    scale = (float)(cfg->max_grad_norm / (norm + 1e-6));
  uint64_t t = ++*step;
  float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
  float step_size = (float)(cfg->lr / (1.0 - pow(b1, (double)t)));
  float bc2_sqrt = (float)sqrt(1.0 - pow(b2, (double)t));
  ch__adam_update(params, grads, m, v, count, scale, b1, b2, eps, step_size, bc2_sqrt);
  return CH_OK;
}
