/* cnn_layers.c -- cnn plugin: the architectures, their layout, and convolution as GEMM. */
#include "cnn.h"

#include <cblas.h>
#include <chicane/plugin_util.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DeepRacer's camera networks (its simapp's "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW" and
** "DEEP_CONVOLUTIONAL_NETWORK" embedders plus the dense middleware). */
const ch_cnn_arch_spec ch__cnn_archs[CH_CNN_NUM_ARCHS] = {
    {"shallow", 3, {{32, 8, 4}, {64, 4, 2}, {64, 3, 1}, {0, 0, 0}}, 512},
    {"deep", 4, {{32, 5, 2}, {32, 3, 1}, {64, 3, 2}, {64, 3, 1}}, 64},
};

/* ---- architecture ------------------------------------------------------------------------- */

static void add_tower(ch_cnn *n, ch_cnn_tower *t) {
  const ch_cnn_arch_spec *s = &ch__cnn_archs[n->arch.architecture];
  uint32_t c = n->arch.channels, h = n->arch.height, w = n->arch.width;
  for (uint32_t l = 0; l < s->num_conv; l++) {
    ch_cnn_conv *L = &t->conv[l];
    L->in_c = c, L->in_h = h, L->in_w = w;
    L->kernel = s->conv[l].kernel;
    L->stride = s->conv[l].stride;
    L->out_c = c = s->conv[l].filters;
    L->out_h = h = (L->in_h - L->kernel) / L->stride + 1;
    L->out_w = w = (L->in_w - L->kernel) / L->stride + 1;
    L->w = n->core.num_params;
    L->b = L->w + (uint64_t)L->out_c * L->in_c * L->kernel * L->kernel;
    n->core.num_params = L->b + L->out_c;
    if (h * w > n->max_plane) n->max_plane = h * w;
  }
  ch__net_dense_place(&t->dense, &n->core.num_params, c * h * w + n->arch.vector_size, s->dense,
                      sqrt(2.0));
}

/* Floats a sample needs in the work area: activations, gradient buffers, im2col rows. */
static void size_work(ch_cnn *n) {
  const ch_cnn_tower *t = &n->tower[0];
  size_t acts = 0, grad = t->dense.in;
  n->cols_row = 0;
  for (uint32_t l = 0; l < n->num_conv; l++) {
    const ch_cnn_conv *L = &t->conv[l];
    size_t plane = (size_t)L->out_h * L->out_w, k = (size_t)L->in_c * L->kernel * L->kernel;
    acts += L->out_c * plane;
    if (L->out_c * plane > grad) grad = L->out_c * plane;
    if (k * plane > n->cols_row) n->cols_row = k * plane;
  }
  if (t->dense.out > grad) grad = t->dense.out;
  n->grad_row = grad;
  n->work_row = n->core.input_size + n->num_towers * (acts + t->dense.in + t->dense.out) + 2 * grad;
}

void ch__cnn_layout(ch_cnn *n) {
  const ch_cnn_arch *a = &n->arch;
  n->num_conv = ch__cnn_archs[a->architecture].num_conv;
  n->num_towers = a->shared ? 1 : 2;
  n->core.input_size = a->channels * a->height * a->width + a->vector_size;
  n->core.num_params = 0;
  n->max_plane = 0;
  uint32_t top = ch__cnn_archs[a->architecture].dense;
  add_tower(n, &n->tower[CH_CNN_POLICY]);
  ch__net_dense_place(&n->head[CH_CNN_POLICY], &n->core.num_params, top, a->num_actions, 0.01);
  if (!a->shared) add_tower(n, &n->tower[CH_CNN_VALUE]);
  ch__net_dense_place(&n->head[CH_CNN_VALUE], &n->core.num_params, top, 1, 1.0);
  ch__net_place_log_std(&n->core, a->head, a->num_actions);
  size_work(n);
}

uint64_t ch__cnn_param_count(const ch_cnn_arch *a) {
  ch_cnn n;
  memset(&n, 0, sizeof n);
  n.arch = *a;
  ch__cnn_layout(&n);
  return n.core.num_params;
}

/* The smallest input side that leaves every conv at least one output. */
static uint32_t min_side(const ch_cnn_arch_spec *s) {
  uint32_t side = 1;
  for (uint32_t l = s->num_conv; l-- > 0;)
    side = (side - 1) * s->conv[l].stride + s->conv[l].kernel;
  return side;
}

const char *ch__cnn_too_small(const ch_cnn_arch *a, uint32_t *need) {
  *need = min_side(&ch__cnn_archs[a->architecture]);
  if (a->width < *need) return "width";
  if (a->height < *need) return "height";
  return NULL;
}

void ch__cnn_arch_describe(const ch_cnn_arch *a, char *buf, size_t size) {
  char actions[64];
  if (a->head == CH_NET_GAUSSIAN)
    snprintf(actions, sizeof actions, "gaussian over %u action dims", a->num_actions);
  else
    snprintf(actions, sizeof actions, "%u actions", a->num_actions);
  const char *name =
      a->architecture < CH_CNN_NUM_ARCHS ? ch__cnn_archs[a->architecture].name : "unknown";
  snprintf(buf, size, "image %ux%ux%u, vector %u, %s, %s, %s", a->width, a->height, a->channels,
           a->vector_size, name, actions, a->shared ? "shared tower" : "separate towers");
}

/* ---- work area ---------------------------------------------------------------------------- */

int ch__cnn_reserve(ch_cnn *n, uint32_t batch, ch_error *err) {
  if (batch <= n->core.cap) return CH_OK;
  /* The im2col buffer holds whole samples up to CH_CNN_COLS_FLOATS; larger batches go through
  ** it in chunks, so it stops growing there. */
  size_t cols = n->cols_row * batch;
  if (cols > CH_CNN_COLS_FLOATS)
    cols = n->cols_row > CH_CNN_COLS_FLOATS ? n->cols_row : CH_CNN_COLS_FLOATS;
  int rc = ch__net_work_reserve(&n->core, batch, n->work_row, cols, "samples", err);
  if (rc) return rc;
  float *w = n->core.work;
  n->cols_floats = cols;
  n->x = w;
  w += (size_t)batch * n->core.input_size;
  for (uint32_t i = 0; i < n->num_towers; i++) {
    ch_cnn_tower *t = &n->tower[i];
    for (uint32_t l = 0; l < n->num_conv; l++) {
      const ch_cnn_conv *L = &t->conv[l];
      t->act[l] = w;
      w += (size_t)batch * L->out_c * L->out_h * L->out_w;
    }
    t->flat = w;
    w += (size_t)batch * t->dense.in;
    t->hidden = w;
    w += (size_t)batch * t->dense.out;
  }
  n->dbuf[0] = w;
  n->dbuf[1] = w + (size_t)batch * n->grad_row;
  n->cols = w + 2 * (size_t)batch * n->grad_row;
  return CH_OK;
}

/* ---- convolution -------------------------------------------------------------------------- */

/* Where a conv layer's input lives: sample s, channel c starts at base + s * sample + c * chan.
** The network input is sample-major (CHW per sample); conv outputs are channel-major. */
typedef struct planes {
  float *base;
  size_t sample, chan;
} planes;

static planes conv_input(ch_cnn *n, ch_cnn_tower *t, uint32_t l, uint32_t batch) {
  const ch_cnn_conv *L = &t->conv[l];
  size_t plane = (size_t)L->in_h * L->in_w;
  if (l == 0) return (planes){n->x, n->core.input_size, plane};
  return (planes){t->act[l - 1], plane, plane * batch};
}

/* Samples per im2col chunk of layer L. */
static uint32_t chunk_of(const ch_cnn *n, const ch_cnn_conv *L, uint32_t batch) {
  size_t per = (size_t)L->in_c * L->kernel * L->kernel * L->out_h * L->out_w;
  size_t fit = n->cols_floats / per;
  return fit >= batch ? batch : (uint32_t)fit;
}

/* out_h rows of out_w values, every stride-th of a row of the input, rows row_step apart:
** one window offset of one channel of one sample. Inlined with a constant stride below, so
** that each case compiles to its own vectorised loop. */
static inline void gather(float *restrict dst, const float *restrict src, uint32_t oh, uint32_t ow,
                          size_t row_step, uint32_t st) {
  for (uint32_t oy = 0; oy < oh; oy++, dst += ow, src += row_step)
    for (uint32_t ox = 0; ox < ow; ox++) dst[ox] = src[(size_t)ox * st];
}

/* The transpose of gather: add the values back where they came from. */
static inline void scatter(float *restrict dst, const float *restrict src, uint32_t oh, uint32_t ow,
                           size_t row_step, uint32_t st) {
  for (uint32_t oy = 0; oy < oh; oy++, dst += row_step, src += ow)
    for (uint32_t ox = 0; ox < ow; ox++) dst[(size_t)ox * st] += src[ox];
}

static void gather_any(float *dst, const float *src, uint32_t oh, uint32_t ow, size_t row_step,
                       uint32_t st) {
  switch (st) {
  case 1:
    gather(dst, src, oh, ow, row_step, 1);
    break;
  case 2:
    gather(dst, src, oh, ow, row_step, 2);
    break;
  case 4:
    gather(dst, src, oh, ow, row_step, 4);
    break;
  default:
    gather(dst, src, oh, ow, row_step, st);
  }
}

static void scatter_any(float *dst, const float *src, uint32_t oh, uint32_t ow, size_t row_step,
                        uint32_t st) {
  switch (st) {
  case 1:
    scatter(dst, src, oh, ow, row_step, 1);
    break;
  case 2:
    scatter(dst, src, oh, ow, row_step, 2);
    break;
  case 4:
    scatter(dst, src, oh, ow, row_step, 4);
    break;
  default:
    scatter(dst, src, oh, ow, row_step, st);
  }
}

/* Unfold samples s0..s0+count of in into cols: row (c, i, j) of the kernel window, column
** (sample, oy, ox) of the output; each row count * out_h * out_w floats long. With back set,
** the opposite: add cols into the input positions they were read from (col2im). */
static void unfold(const ch_cnn_conv *L, planes in, uint32_t s0, uint32_t count, float *cols,
                   int back) {
  uint32_t k = L->kernel, oh = L->out_h, ow = L->out_w;
  size_t plane = (size_t)oh * ow, row_step = (size_t)L->stride * L->in_w;
  for (uint32_t c = 0; c < L->in_c; c++)
    for (uint32_t i = 0; i < k; i++)
      for (uint32_t j = 0; j < k; j++) {
        float *col = cols + ((size_t)(c * k + i) * k + j) * count * plane;
        for (uint32_t s = s0; s < s0 + count; s++, col += plane) {
          float *x = in.base + s * in.sample + c * in.chan + (size_t)i * L->in_w + j;
          if (back)
            scatter_any(x, col, oh, ow, row_step, L->stride);
          else
            gather_any(col, x, oh, ow, row_step, L->stride);
        }
      }
}

/* y = relu(W * unfold(x) + b) for every sample; y is out_c rows of batch * plane floats. */
static void conv_forward(ch_cnn *n, ch_cnn_tower *t, uint32_t l, uint32_t batch) {
  const ch_cnn_conv *L = &t->conv[l];
  planes in = conv_input(n, t, l, batch);
  int k = (int)(L->in_c * L->kernel * L->kernel);
  size_t plane = (size_t)L->out_h * L->out_w, ld = plane * batch;
  uint32_t chunk = chunk_of(n, L, batch);
  float *y = t->act[l];
  for (uint32_t s0 = 0; s0 < batch; s0 += chunk) {
    uint32_t count = batch - s0 < chunk ? batch - s0 : chunk;
    unfold(L, in, s0, count, n->cols, 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L->out_c, (int)(count * plane), k,
                1.0f, n->core.params + L->w, k, n->cols, (int)(count * plane), 0.0f, y + s0 * plane,
                (int)ld);
  }
  const float *b = n->core.params + L->b;
  for (uint32_t f = 0; f < L->out_c; f++) {
    float *row = y + f * ld, bias = b[f];
    for (size_t i = 0; i < ld; i++) {
      float v = row[i] + bias;
      row[i] = v > 0.0f ? v : 0.0f;
    }
  }
}

/* Given dy (relu already applied) for layer l in d: dW, db, and when dx is set the gradient
** of the layer's input, in the layout of conv_input. */
static void conv_backward(ch_cnn *n, ch_cnn_tower *t, uint32_t l, uint32_t batch, const float *d,
                          float *dx) {
  const ch_cnn_conv *L = &t->conv[l];
  planes in = conv_input(n, t, l, batch);
  int k = (int)(L->in_c * L->kernel * L->kernel);
  size_t plane = (size_t)L->out_h * L->out_w, ld = plane * batch;
  uint32_t chunk = chunk_of(n, L, batch);
  float *db = n->core.grads + L->b;
  for (uint32_t f = 0; f < L->out_c; f++) {
    const float *row = d + f * ld;
    double sum = 0.0; /* tens of thousands of terms: keep the small ones */
    for (size_t i = 0; i < ld; i++) sum += row[i];
    db[f] += (float)sum;
  }
  if (dx) memset(dx, 0, (size_t)L->in_c * L->in_h * L->in_w * batch * sizeof *dx);
  planes din = {dx, in.sample, in.chan};
  for (uint32_t s0 = 0; s0 < batch; s0 += chunk) {
    uint32_t count = batch - s0 < chunk ? batch - s0 : chunk;
    int cols = (int)(count * plane);
    unfold(L, in, s0, count, n->cols, 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L->out_c, k, cols, 1.0f,
                d + s0 * plane, (int)ld, n->cols, cols, 1.0f, n->core.grads + L->w, k);
    if (!dx) continue;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, cols, (int)L->out_c, 1.0f,
                n->core.params + L->w, k, d + s0 * plane, (int)ld, 0.0f, n->cols, cols);
    unfold(L, din, s0, count, n->cols, 1);
  }
}

/* ---- towers ------------------------------------------------------------------------------- */

/* flat = [last conv output of the sample (CHW), the sample's vector]. */
static void flatten(ch_cnn *n, ch_cnn_tower *t, uint32_t batch) {
  const ch_cnn_conv *L = &t->conv[n->num_conv - 1];
  size_t plane = (size_t)L->out_h * L->out_w, ld = plane * batch, conv = L->out_c * plane;
  size_t image = n->core.input_size - n->arch.vector_size;
  const float *y = t->act[n->num_conv - 1];
  for (uint32_t s = 0; s < batch; s++) {
    float *row = t->flat + s * (size_t)t->dense.in;
    for (uint32_t f = 0; f < L->out_c; f++)
      memcpy(row + f * plane, y + f * ld + s * plane, plane * sizeof *row);
    memcpy(row + conv, n->x + s * (size_t)n->core.input_size + image,
           n->arch.vector_size * sizeof *row);
  }
}

/* The conv part of dflat (batch x dense.in) into dy of the last conv (channel-major). */
static void unflatten(const ch_cnn *n, const ch_cnn_tower *t, uint32_t batch, const float *dflat,
                      float *dy) {
  const ch_cnn_conv *L = &t->conv[n->num_conv - 1];
  size_t plane = (size_t)L->out_h * L->out_w, ld = plane * batch;
  for (uint32_t s = 0; s < batch; s++) {
    const float *row = dflat + s * (size_t)t->dense.in;
    for (uint32_t f = 0; f < L->out_c; f++)
      memcpy(dy + f * ld + s * plane, row + f * plane, plane * sizeof *dy);
  }
}

static void relu(float *y, size_t count) {
  for (size_t i = 0; i < count; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

static void relu_backward(const float *y, float *d, size_t count) {
  for (size_t i = 0; i < count; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

void ch__cnn_tower_forward(ch_cnn *n, ch_cnn_tower *t, uint32_t batch) {
  for (uint32_t l = 0; l < n->num_conv; l++) conv_forward(n, t, l, batch);
  flatten(n, t, batch);
  ch__net_dense_forward(n->core.params, &t->dense, t->flat, batch, t->hidden, t->dense.out);
  relu(t->hidden, (size_t)batch * t->dense.out);
}

void ch__cnn_tower_backward(ch_cnn *n, ch_cnn_tower *t, uint32_t batch) {
  const ch_net_dense *D = &t->dense;
  relu_backward(t->hidden, n->dbuf[0], (size_t)batch * D->out);
  ch__net_dense_param_grads(n->core.grads, D, t->flat, n->dbuf[0], D->out, batch);
  ch__net_dense_input_grads(n->core.params, D, n->dbuf[0], D->out, batch, n->dbuf[1], 0.0f);
  unflatten(n, t, batch, n->dbuf[1], n->dbuf[0]);
  int cur = 0;
  for (uint32_t l = n->num_conv; l-- > 0;) {
    const ch_cnn_conv *L = &t->conv[l];
    relu_backward(t->act[l], n->dbuf[cur], (size_t)L->out_c * L->out_h * L->out_w * batch);
    conv_backward(n, t, l, batch, n->dbuf[cur], l ? n->dbuf[1 - cur] : NULL);
    cur = 1 - cur;
  }
}
