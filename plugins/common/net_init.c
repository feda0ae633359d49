/* net_init.c -- network plugins: seeded Gaussian numbers and orthogonal initial weights. */
#include "netcommon.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>

/* LAPACK as OpenBLAS bundles it. The openblas packages install no lapack.h, so the two
** routines are declared here: Fortran calling convention, LP64 integers. */
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
                    const double *tau, double *work, const int *lwork, int *info);

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so the logarithm below stays finite. */
static double uniform_open0(uint64_t *state) {
  return (double)((splitmix64(state) >> 11) + 1) * 0x1.0p-53;
}

double ch__net_gauss(ch_net_rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double radius = sqrt(-2.0 * log(uniform_open0(&r->state)));
  double angle = 6.283185307179586 * uniform_open0(&r->state);
  r->spare = radius * sin(angle);
  r->has_spare = 1;
  return radius * cos(angle);
}

/* Orthonormalise the columns of the column-major m x k matrix a (m >= k) in place and store
** sign(R[j][j]) in sign[j], so that Q * diag(sign) is the unique QR factor with R's diagonal
** positive, the distribution torch.nn.init.orthogonal_ draws from. */
static int qr_q(const char *who, double *a, int m, int k, double *sign, ch_error *err) {
  int info = 0, lwork = -1;
  double query[2] = {0, 0};
  double *tau = malloc((size_t)k * sizeof *tau);
  if (!tau) return ch_error_set(err, CH_ENOMEM, "%s init: out of memory", who);
  dgeqrf_(&m, &k, a, &m, tau, &query[0], &lwork, &info);
  if (!info) dorgqr_(&m, &k, &k, a, &m, tau, &query[1], &lwork, &info);
  lwork = (int)fmax(fmax(query[0], query[1]), (double)k);
  double *work = info ? NULL : malloc((size_t)lwork * sizeof *work);
  if (!info && work) {
    dgeqrf_(&m, &k, a, &m, tau, work, &lwork, &info);
    for (int j = 0; j < k; j++) sign[j] = a[j + (size_t)j * m] < 0.0 ? -1.0 : 1.0;
    if (!info) dorgqr_(&m, &k, &k, a, &m, tau, work, &lwork, &info);
  }
  free(tau);
  free(work);
  if (info)
    return ch_error_set(err, CH_EINVAL, "%s init: LAPACK QR of a %d x %d matrix failed (info %d)",
                        who, m, k, info);
  return work ? CH_OK : ch_error_set(err, CH_ENOMEM, "%s init: out of memory", who);
}

int ch__net_orthogonal(const char *who, float *w, uint32_t rows, uint32_t cols, double gain,
                       ch_net_rng *r, ch_error *err) {
  int tall = rows >= cols;
  int m = (int)(tall ? rows : cols), k = (int)(tall ? cols : rows);
  double *a = malloc(((size_t)m * k + (size_t)k) * sizeof *a);
  if (!a)
    return ch_error_set(err, CH_ENOMEM, "%s init: out of memory for a %u x %u weight matrix", who,
                        rows, cols);
  double *sign = a + (size_t)m * k;
  for (size_t i = 0; i < (size_t)m * k; i++) a[i] = ch__net_gauss(r);
  int rc = qr_q(who, a, m, k, sign, err);
  for (uint32_t row = 0; rc == CH_OK && row < rows; row++)
    for (uint32_t col = 0; col < cols; col++) {
      size_t i = tall ? row + (size_t)col * m : col + (size_t)row * m;
      w[(size_t)row * cols + col] = (float)(gain * sign[tall ? col : row] * a[i]);
    }
  free(a);
  return rc;
}
