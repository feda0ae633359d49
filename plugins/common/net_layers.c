/* net_layers.c -- network plugins: dense layers on OpenBLAS and the Gaussian head's log std. */
#include "netcommon.h"

#include <cblas.h>

void ch__net_dense_forward(const float *params, const ch_net_dense *L, const float *x,
                           uint32_t batch, float *y, size_t ldy) {
  const float *w = params + L->w, *b = params + L->b;
  for (uint32_t r = 0; r < batch; r++) memcpy(y + (size_t)r * ldy, b, L->out * sizeof *b);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)L->out, (int)L->in, 1.0f, x,
              (int)L->in, w, (int)L->in, 1.0f, y, (int)ldy);
}

void ch__net_dense_param_grads(float *grads, const ch_net_dense *L, const float *x, const float *dy,
                               size_t lddy, uint32_t batch) {
  float *dw = grads + L->w, *db = grads + L->b;
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)L->out, (int)L->in, (int)batch, 1.0f,
              dy, (int)lddy, x, (int)L->in, 1.0f, dw, (int)L->in);
  for (uint32_t r = 0; r < batch; r++) {
    const float *row = dy + (size_t)r * lddy;
    for (uint32_t j = 0; j < L->out; j++) db[j] += row[j];
  }
}

void ch__net_dense_input_grads(const float *params, const ch_net_dense *L, const float *dy,
                               size_t lddy, uint32_t batch, float *dx, float beta) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)batch, (int)L->in, (int)L->out, 1.0f,
              dy, (int)lddy, params + L->w, (int)L->in, beta, dx, (int)L->in);
}

void ch__net_gaussian_fill(const float *log_std, uint32_t dims, uint32_t batch, float *policy) {
  for (uint32_t r = 0; r < batch; r++)
    memcpy(policy + (size_t)r * 2 * dims + dims, log_std, dims * sizeof *log_std);
}

void ch__net_gaussian_grads(float *dlog_std, uint32_t dims, uint32_t batch, const float *dpolicy) {
  for (uint32_t r = 0; r < batch; r++) {
    const float *row = dpolicy + (size_t)r * 2 * dims + dims;
    for (uint32_t j = 0; j < dims; j++) dlog_std[j] += row[j];
  }
}
