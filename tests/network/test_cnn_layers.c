/* test_cnn_layers.c -- cnn: outputs and every gradient against a naive double-precision model. */
#include "net_test.h"

#include <malloc.h>

/*
** The reference below is the USAGE block of plugins/cnn/cnn.c written as plainly as possible:
** direct convolution loops over one sample at a time, in double, reading the parameters in the
** documented order. It shares no code with the plugin, so agreement checks the im2col layout,
** the GEMM shapes, the flatten order, the towers and heads, and the parameter order at once.
*/

typedef struct ref_conv {
  int filters, kernel, stride;
} ref_conv;

typedef struct ref_arch {
  int num_conv;
  ref_conv conv[4];
  int dense;
} ref_arch;

static const ref_arch ref_shallow = {3, {{32, 8, 4}, {64, 4, 2}, {64, 3, 1}, {0, 0, 0}}, 512};
static const ref_arch ref_deep = {4, {{32, 5, 2}, {32, 3, 1}, {64, 3, 2}, {64, 3, 1}}, 64};

typedef struct ref_net {
  const char *config;
  const ref_arch *arch;
  int width, height, channels, vector, actions, gaussian, shared;
} ref_net;

/* Where each tensor starts in the flat parameters, and the shape of every activation. */
typedef struct ref_layout {
  size_t conv_w[2][4], conv_b[2][4], dense_w[2], dense_b[2];
  size_t head_w[2], head_b[2], log_std, count;
  int c[5], h[5], w[5]; /* activation 0 is the image, l + 1 the output of conv l */
  int flat;
} ref_layout;

static void ref_tower_layout(const ref_net *n, ref_layout *L, int t, size_t *at) {
  for (int l = 0; l < n->arch->num_conv; l++) {
    const ref_conv *cv = &n->arch->conv[l];
    L->conv_w[t][l] = *at;
    *at += (size_t)cv->filters * L->c[l] * cv->kernel * cv->kernel;
    L->conv_b[t][l] = *at;
    *at += (size_t)cv->filters;
  }
  L->dense_w[t] = *at;
  *at += (size_t)L->flat * n->arch->dense;
  L->dense_b[t] = *at;
  *at += (size_t)n->arch->dense;
}

static void ref_layout_of(const ref_net *n, ref_layout *L) {
  memset(L, 0, sizeof *L);
  L->c[0] = n->channels, L->h[0] = n->height, L->w[0] = n->width;
  for (int l = 0; l < n->arch->num_conv; l++) {
    const ref_conv *cv = &n->arch->conv[l];
    L->c[l + 1] = cv->filters;
    L->h[l + 1] = (L->h[l] - cv->kernel) / cv->stride + 1;
    L->w[l + 1] = (L->w[l] - cv->kernel) / cv->stride + 1;
  }
  int top = n->arch->num_conv;
  L->flat = L->c[top] * L->h[top] * L->w[top] + n->vector;
  size_t at = 0;
  ref_tower_layout(n, L, 0, &at);
  L->head_w[0] = at, at += (size_t)n->arch->dense * n->actions;
  L->head_b[0] = at, at += (size_t)n->actions;
  if (!n->shared) ref_tower_layout(n, L, 1, &at);
  L->head_w[1] = at, at += (size_t)n->arch->dense;
  L->head_b[1] = at, at += 1;
  L->log_std = at;
  L->count = at + (n->gaussian ? (size_t)n->actions : 0);
}

/* One sample's activations in one tower: a[0] the image, a[l + 1] after conv l and relu. */
typedef struct ref_acts {
  double *a[5], *flat, *hidden;
} ref_acts;

static size_t ref_size(const ref_layout *L, int l) {
  return (size_t)L->c[l] * L->h[l] * L->w[l];
}

static void ref_conv_forward(const ref_net *n, const ref_layout *L, const float *P, int t, int l,
                             ref_acts *A) {
  const ref_conv *cv = &n->arch->conv[l];
  int k = cv->kernel, s = cv->stride, ic = L->c[l], ih = L->h[l], iw = L->w[l];
  int oh = L->h[l + 1], ow = L->w[l + 1];
  const float *W = P + L->conv_w[t][l], *b = P + L->conv_b[t][l];
  double *y = A->a[l + 1] = malloc(ref_size(L, l + 1) * sizeof *y);
  for (int f = 0; f < cv->filters; f++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        double z = b[f];
        for (int c = 0; c < ic; c++)
          for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
              z += (double)W[((f * ic + c) * k + i) * k + j] *
                   A->a[l][(c * ih + oy * s + i) * iw + ox * s + j];
        y[(f * oh + oy) * ow + ox] = z > 0 ? z : 0;
      }
}

static void ref_tower_forward(const ref_net *n, const ref_layout *L, const float *P, int t,
                              const float *x, ref_acts *A) {
  size_t image = ref_size(L, 0), top = ref_size(L, n->arch->num_conv);
  A->a[0] = malloc(image * sizeof(double));
  for (size_t i = 0; i < image; i++) A->a[0][i] = x[i];
  for (int l = 0; l < n->arch->num_conv; l++) ref_conv_forward(n, L, P, t, l, A);
  A->flat = malloc((size_t)L->flat * sizeof(double));
  for (size_t i = 0; i < top; i++) A->flat[i] = A->a[n->arch->num_conv][i];
  for (int i = 0; i < n->vector; i++) A->flat[top + i] = x[image + i];
  A->hidden = malloc((size_t)n->arch->dense * sizeof(double));
  for (int o = 0; o < n->arch->dense; o++) {
    double z = P[L->dense_b[t] + o];
    for (int i = 0; i < L->flat; i++)
      z += (double)P[L->dense_w[t] + (size_t)o * L->flat + i] * A->flat[i];
    A->hidden[o] = z > 0 ? z : 0;
  }
}

/* dy is the gradient of conv l's output (after relu); returns that of its input. */
static double *ref_conv_backward(const ref_net *n, const ref_layout *L, const float *P, int t,
                                 int l, const ref_acts *A, const double *dy, double *G) {
  const ref_conv *cv = &n->arch->conv[l];
  int k = cv->kernel, s = cv->stride, ic = L->c[l], ih = L->h[l], iw = L->w[l];
  int oh = L->h[l + 1], ow = L->w[l + 1];
  size_t wo = L->conv_w[t][l], bo = L->conv_b[t][l];
  double *dx = calloc(ref_size(L, l), sizeof *dx);
  for (int f = 0; f < cv->filters; f++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        int o = (f * oh + oy) * ow + ox;
        double d = A->a[l + 1][o] > 0 ? dy[o] : 0;
        G[bo + f] += d;
        for (int c = 0; c < ic; c++)
          for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
              size_t wi = wo + (size_t)((f * ic + c) * k + i) * k + j;
              int xi = (c * ih + oy * s + i) * iw + ox * s + j;
              G[wi] += d * A->a[l][xi];
              dx[xi] += d * P[wi];
            }
      }
  return dx;
}

static void ref_tower_backward(const ref_net *n, const ref_layout *L, const float *P, int t,
                               const ref_acts *A, const double *dhidden, double *G) {
  double *d = calloc((size_t)L->flat, sizeof *d);
  for (int o = 0; o < n->arch->dense; o++) {
    double g = A->hidden[o] > 0 ? dhidden[o] : 0;
    G[L->dense_b[t] + o] += g;
    for (int i = 0; i < L->flat; i++) {
      size_t wi = L->dense_w[t] + (size_t)o * L->flat + i;
      G[wi] += g * A->flat[i];
      d[i] += g * P[wi];
    }
  }
  for (int l = n->arch->num_conv - 1; l >= 0; l--) {
    double *dx = ref_conv_backward(n, L, P, t, l, A, d, G);
    free(d);
    d = dx;
  }
  free(d);
}

static void ref_free(ref_acts *A, int num_conv) {
  for (int l = 0; l <= num_conv; l++) free(A->a[l]);
  free(A->flat), free(A->hidden);
}

/* A linear head on a tower's hidden layer: out rows of W, returns the outputs and adds the
** gradients of W, b and (into dhidden) of the tower's hidden layer for output gradient d. */
static void ref_head(const ref_net *n, const float *P, size_t w, size_t b, int out,
                     const ref_acts *A, double *y, const float *d, double *G, double *dhidden) {
  int dense = n->arch->dense;
  for (int o = 0; o < out; o++) {
    double z = P[b + o];
    for (int i = 0; i < dense; i++) z += (double)P[w + (size_t)o * dense + i] * A->hidden[i];
    y[o] = z;
    G[b + o] += d[o];
    for (int i = 0; i < dense; i++) {
      G[w + (size_t)o * dense + i] += d[o] * A->hidden[i];
      dhidden[i] += d[o] * P[w + (size_t)o * dense + i];
    }
  }
}

/* Outputs (policy then value, batch rows each) and gradients of the loss with output
** gradients dp, dv, of a batch, one sample at a time. */
static void ref_run(const ref_net *n, const float *P, const float *x, const float *dp,
                    const float *dv, int batch, double *policy, double *value, double *G) {
  ref_layout L;
  ref_layout_of(n, &L);
  int in = n->channels * n->height * n->width + n->vector;
  int ps = n->gaussian ? 2 * n->actions : n->actions, dense = n->arch->dense;
  for (int s = 0; s < batch; s++) {
    ref_acts A[2];
    double *dh[2] = {calloc((size_t)dense, sizeof(double)), calloc((size_t)dense, sizeof(double))};
    int vt = n->shared ? 0 : 1;
    ref_tower_forward(n, &L, P, 0, x + (size_t)s * in, &A[0]);
    if (!n->shared) ref_tower_forward(n, &L, P, 1, x + (size_t)s * in, &A[1]);
    ref_head(n, P, L.head_w[0], L.head_b[0], n->actions, &A[0], policy + (size_t)s * ps,
             dp + (size_t)s * ps, G, dh[0]);
    ref_head(n, P, L.head_w[1], L.head_b[1], 1, &A[vt], value + s, dv + s, G, dh[vt]);
    for (int j = 0; n->gaussian && j < n->actions; j++) {
      policy[(size_t)s * ps + n->actions + j] = P[L.log_std + j];
      G[L.log_std + j] += dp[(size_t)s * ps + n->actions + j];
    }
    for (int t = 0; t <= vt; t++) {
      ref_tower_backward(n, &L, P, t, &A[t], dh[t], G);
      ref_free(&A[t], n->arch->num_conv);
    }
    free(dh[0]), free(dh[1]);
  }
}

/* ---- the checks --------------------------------------------------------------------------- */

static const ch_network_vtable *cnn_open(void) {
  return net_open("network_cnn.so");
}

/* Random parameters of scale 0.1, inputs in [0, 1), output gradients in [-1, 1). */
static void compare(const ref_net *n, int batch, uint64_t seed) {
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, n->config);
  ch_network_spec spec = net_spec(vt, net);
  ref_layout L;
  ref_layout_of(n, &L);
  assert_int_equal(spec.param_count, L.count);
  size_t ps = spec.policy_size, count = L.count;
  net_randomize(vt, net, seed, 0.1f);
  float *P = net_params(vt, net), *x = test_random(&seed, (size_t)batch * spec.input_size, 0.5f);
  for (size_t i = 0; i < (size_t)batch * spec.input_size; i++) x[i] += 0.5f;
  float *dp = test_random(&seed, batch * ps, 1.0f), *dv = test_random(&seed, (size_t)batch, 1.0f);
  float *policy = malloc(batch * ps * sizeof *policy), *value = malloc(batch * sizeof *value);
  ch_error err = {0, ""};
  vt->zero_grad(net);
  net_check(vt->forward(net, x, (uint32_t)batch, policy, value, &err), err);
  net_check(vt->backward(net, dp, dv, &err), err);
  float *g = net_grads(vt, net);
  double *rp = malloc(batch * ps * sizeof *rp), *rv = malloc(batch * sizeof *rv);
  double *G = calloc(count, sizeof *G), gmax = 0, worst = 0;
  ref_run(n, P, x, dp, dv, batch, rp, rv, G);
  for (size_t i = 0; i < batch * ps; i++)
    if (fabs(policy[i] - rp[i]) > 1e-5 * (1 + fabs(rp[i])))
      fail_msg("%s: policy output %zu is %.9g, the reference says %.9g", n->config, i, policy[i],
               rp[i]);
  for (int i = 0; i < batch; i++)
    if (fabs(value[i] - rv[i]) > 1e-5 * (1 + fabs(rv[i])))
      fail_msg("%s: value %d is %.9g, the reference says %.9g", n->config, i, value[i], rv[i]);
  for (size_t i = 0; i < count; i++) gmax = fmax(gmax, fabs(G[i]));
  /* Float sums of thousands of products: relative to the gradient, with a floor at a
  ** thousandth of the largest one for gradients that nearly cancel. */
  for (size_t i = 0; i < count; i++) {
    double e = fabs(g[i] - G[i]) / (fabs(G[i]) + 1e-3 * gmax);
    if (e > 2e-3)
      fail_msg("%s: gradient of param %zu is %.9g, the reference says %.9g", n->config, i, g[i],
               G[i]);
    worst = fmax(worst, e);
  }
  print_message("%s, batch %d: %zu gradients, worst relative error %.3g\n", n->config, batch, count,
                worst);
  vt->destroy(net);
  free(P), free(x), free(dp), free(dv), free(policy), free(value), free(g), free(rp), free(rv),
      free(G);
}

static void shallow_shared_with_vector(void **state) {
  (void)state;
  ref_net n = {"{\"image\":{\"width\":36,\"height\":36,\"channels\":2},\"vector_size\":3,"
               "\"num_actions\":5}",
               &ref_shallow,
               36,
               36,
               2,
               3,
               5,
               0,
               1};
  compare(&n, 3, 1);
}

/* The last conv 3 wide and 2 high, three channels: the flatten order and the CHW input. */
static void shallow_separate_wide_flatten(void **state) {
  (void)state;
  ref_net n = {"{\"image\":{\"width\":52,\"height\":44,\"channels\":3},\"num_actions\":3,"
               "\"shared\":false}",
               &ref_shallow,
               52,
               44,
               3,
               0,
               3,
               0,
               0};
  compare(&n, 2, 2);
}

static void deep_shared_odd_sides(void **state) {
  (void)state;
  ref_net n = {"{\"image\":{\"width\":25,\"height\":23,\"channels\":2},\"vector_size\":4,"
               "\"num_actions\":4,\"architecture\":\"deep\"}",
               &ref_deep,
               25,
               23,
               2,
               4,
               4,
               0,
               1};
  compare(&n, 3, 3);
}

static void deep_gaussian_separate(void **state) {
  (void)state;
  ref_net n = {"{\"image\":{\"width\":22,\"height\":27,\"channels\":1},\"vector_size\":2,"
               "\"num_actions\":2,\"architecture\":\"deep\",\"head\":\"gaussian\","
               "\"shared\":false,\"log_std_init\":0.25}",
               &ref_deep,
               22,
               27,
               1,
               2,
               2,
               1,
               0};
  compare(&n, 3, 4);
}

/* ---- large batches, the im2col chunks and the work area ----------------------------------- */

/* Gradients of batch rows x at once and in pieces of `piece` rows, and the outputs of both. */
static void batch_in_pieces(const ch_network_vtable *vt, void *net, const float *x, uint32_t batch,
                            uint32_t piece, const float *dp, const float *dv, float *whole,
                            float *parts, float *out_whole, float *out_parts) {
  ch_network_spec spec = net_spec(vt, net);
  size_t ps = spec.policy_size;
  ch_error err = {0, ""};
  vt->zero_grad(net);
  net_check(vt->forward(net, x, batch, out_whole, out_whole + batch * ps, &err), err);
  net_check(vt->backward(net, dp, dv, &err), err);
  assert_int_equal(vt->get_grads(net, whole, spec.param_count), CH_OK);
  vt->zero_grad(net);
  for (uint32_t s = 0; s < batch; s += piece) {
    uint32_t n = batch - s < piece ? batch - s : piece;
    float *p = malloc(n * ps * sizeof *p), *v = malloc(n * sizeof *v);
    net_check(vt->forward(net, x + (size_t)s * spec.input_size, n, p, v, &err), err);
    net_check(vt->backward(net, dp + s * ps, dv + s, &err), err);
    memcpy(out_parts + s * ps, p, n * ps * sizeof *p);
    memcpy(out_parts + batch * ps + s, v, n * sizeof *v);
    free(p), free(v);
  }
  assert_int_equal(vt->get_grads(net, parts, spec.param_count), CH_OK);
}

/* 36x36x2 "shallow" unfolds 8192 floats a sample for its first conv: a batch of 600 goes
** through the 4 Mi-float im2col buffer in two chunks (512 + 88), pieces of 300 in one. */
static void chunked_batch_equals_its_pieces(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":36,\"height\":36,\"channels\":2},"
                          "\"vector_size\":3,\"num_actions\":5,\"shared\":false}");
  ch_network_spec spec = net_spec(vt, net);
  const uint32_t batch = 600;
  size_t ps = spec.policy_size, n = spec.param_count, outs = batch * (ps + 1);
  uint64_t seed = 9;
  net_randomize(vt, net, 5, 0.1f);
  float *x = test_random(&seed, (size_t)batch * spec.input_size, 0.5f);
  for (size_t i = 0; i < (size_t)batch * spec.input_size; i++) x[i] += 0.5f;
  float *dp = test_random(&seed, batch * ps, 1.0f), *dv = test_random(&seed, batch, 1.0f);
  float *whole = malloc(n * sizeof *whole), *parts = malloc(n * sizeof *parts);
  float *ow = malloc(outs * sizeof *ow), *op = malloc(outs * sizeof *op);
  batch_in_pieces(vt, net, x, batch, 300, dp, dv, whole, parts, ow, op);
  for (size_t i = 0; i < outs; i++)
    if (fabs(ow[i] - op[i]) > 1e-6 * fmax(1.0, fabs(op[i])))
      fail_msg("output %zu: %.9g in one batch, %.9g in pieces", i, ow[i], op[i]);
  double gmax = 0, worst = 0;
  for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(parts[i]));
  for (size_t i = 0; i < n; i++) {
    double e = fabs(whole[i] - parts[i]) / (fabs(parts[i]) + 1e-3 * gmax);
    if (e > 1e-3)
      fail_msg("param %zu: gradient %.9g in one batch, %.9g in pieces", i, whole[i], parts[i]);
    worst = fmax(worst, e);
  }
  print_message("batch %u vs pieces of 300: worst relative gradient difference %.3g\n", batch,
                worst);
  vt->destroy(net);
  free(x), free(dp), free(dv), free(whole), free(parts), free(ow), free(op);
}

/* Once the work area fits a batch, forward and backward of that batch or a smaller one take no
** memory from the heap. (Under AddressSanitizer mallinfo2 reports nothing: trivially true.) */
static void steady_batches_do_not_allocate(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *net = net_new(vt, "{\"image\":{\"width\":40,\"height\":30,\"channels\":1},"
                          "\"num_actions\":3,\"architecture\":\"deep\",\"shared\":false}");
  ch_network_spec spec = net_spec(vt, net);
  uint64_t seed = 3;
  float *x = test_random(&seed, 16 * (size_t)spec.input_size, 1.0f), p[16 * 3], v[16];
  float dp[16 * 3] = {0.5f}, dv[16] = {1.0f};
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, 16, p, v, &err), err);
  net_check(vt->backward(net, dp, dv, &err), err);
  size_t before = mallinfo2().uordblks;
  const uint32_t sizes[] = {16, 3, 1, 16, 9};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    net_check(vt->forward(net, x, sizes[i], p, v, &err), err);
    net_check(vt->backward(net, dp, dv, &err), err);
  }
  size_t after = mallinfo2().uordblks;
  if (after != before) fail_msg("heap in use went from %zu to %zu bytes", before, after);
  vt->destroy(net);
  free(x);
}

/* The camera DeepRacer trains on, once: shapes and finite outputs at full size. */
static void full_camera_size(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  const char *configs[] = {
      "{\"image\":{\"width\":160,\"height\":120,\"channels\":1},\"num_actions\":7}",
      "{\"image\":{\"width\":160,\"height\":120,\"channels\":2},\"vector_size\":64,"
      "\"num_actions\":2,\"architecture\":\"deep\",\"head\":\"gaussian\"}"};
  for (int c = 0; c < 2; c++) {
    void *net = net_new(vt, configs[c]);
    ch_network_spec spec = net_spec(vt, net);
    uint64_t seed = 12;
    float *x = test_random(&seed, 2 * (size_t)spec.input_size, 0.5f);
    float *p = malloc(2 * spec.policy_size * sizeof *p), v[2];
    float *dp = test_random(&seed, 2 * spec.policy_size, 1.0f), dv[2] = {1, -1};
    ch_error err = {0, ""};
    net_check(vt->forward(net, x, 2, p, v, &err), err);
    net_check(vt->backward(net, dp, dv, &err), err);
    for (size_t i = 0; i < 2 * spec.policy_size; i++) assert_true(isfinite(p[i]));
    assert_true(isfinite(v[0]) && isfinite(v[1]));
    vt->destroy(net);
    free(x), free(p), free(dp);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(shallow_shared_with_vector),
      cmocka_unit_test(shallow_separate_wide_flatten),
      cmocka_unit_test(deep_shared_odd_sides),
      cmocka_unit_test(deep_gaussian_separate),
      cmocka_unit_test(chunked_batch_equals_its_pieces),
      cmocka_unit_test(steady_batches_do_not_allocate),
      cmocka_unit_test(full_camera_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
