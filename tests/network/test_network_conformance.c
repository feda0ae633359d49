/* test_network_conformance.c -- every network plugin against one suite of checks. */
#include "net_test.h"

#include <zlib.h>

/*
** Each check runs against every (plugin, config) pair of the table below, so a new network
** plugin earns its place by adding rows. A config is a JSON object without "seed"; the checks
** add the seeds they need.
*/

typedef struct conf_case {
  const char *name;
  const char *plugin;
  const char *config;
  const char *other;    /* the same plugin, another architecture (for the blob checks) */
  float scale;          /* of the random parameters of the gradient check */
  float eps;            /* its finite-difference step */
  double tol;           /* its absolute tolerance (a relative one of GC_REL comes on top) */
  int piecewise_linear; /* relu everywhere: finite differences are exact between kinks */
} conf_case;

#define MLP_IN "\"input_size\":5"

static const conf_case cases[] = {
    {"mlp categorical separate", "network_mlp.so",
     "{" MLP_IN ",\"num_actions\":4,\"hidden\":[7,6]}",
     "{" MLP_IN ",\"num_actions\":4,\"hidden\":[7,5]}", 0.6f, 1e-2f, 2e-4, 0},
    {"mlp categorical shared relu", "network_mlp.so",
     "{" MLP_IN ",\"num_actions\":4,\"hidden\":[7,6],\"activation\":\"relu\",\"shared\":true}",
     "{" MLP_IN ",\"num_actions\":4,\"hidden\":[7,6],\"activation\":\"relu\"}", 0.6f, 1e-2f, 2e-4,
     1},
    {"mlp gaussian", "network_mlp.so",
     "{" MLP_IN ",\"num_actions\":3,\"hidden\":[7,6],\"head\":\"gaussian\",\"log_std_init\":-0.3}",
     "{" MLP_IN ",\"num_actions\":3,\"hidden\":[7,6]}", 0.6f, 1e-2f, 2e-4, 0},
    /* Relu stacks of thousands of units put kinks within reach of some parameters, and float
    ** rounding (1e-7 of the loss) rules out steps much below 1e-3: the cnn rows tolerate 1e-3
    ** absolute. test_cnn_layers checks their exact gradients against a double-precision
    ** reference. Here: last conv output 1x1 (36 is the smallest side "shallow" takes). */
    {"cnn shallow small", "network_cnn.so",
     "{\"image\":{\"width\":36,\"height\":36,\"channels\":2},\"vector_size\":3,\"num_actions\":5}",
     "{\"image\":{\"width\":36,\"height\":36,\"channels\":2},\"vector_size\":4,\"num_actions\":5}",
     0.1f, 1e-3f, 1e-3, 1},
    /* 25x21 leaves the last conv 2 wide and 1 high: the flatten order matters. */
    {"cnn deep small", "network_cnn.so",
     "{\"image\":{\"width\":25,\"height\":21,\"channels\":2},\"vector_size\":3,\"num_actions\":4,"
     "\"architecture\":\"deep\"}",
     "{\"image\":{\"width\":21,\"height\":25,\"channels\":2},\"vector_size\":3,\"num_actions\":4,"
     "\"architecture\":\"deep\"}",
     0.1f, 1e-3f, 1e-3, 1},
    /* Separate towers double the finite differences; test_cnn_layers covers them exactly. */
    {"cnn gaussian", "network_cnn.so",
     "{\"image\":{\"width\":21,\"height\":21,\"channels\":1},\"vector_size\":2,\"num_actions\":2,"
     "\"architecture\":\"deep\",\"head\":\"gaussian\",\"log_std_init\":-0.7}",
     "{\"image\":{\"width\":21,\"height\":21,\"channels\":1},\"vector_size\":2,\"num_actions\":2,"
     "\"architecture\":\"deep\",\"head\":\"gaussian\",\"shared\":false}",
     0.1f, 1e-3f, 1e-3, 1},
};
#define NUM_CASES (sizeof cases / sizeof cases[0])

/* config with "seed": seed added, in a malloc'd string. */
static char *with_seed(const char *config, int seed) {
  size_t len = strlen(config);
  char *s = malloc(len + 32);
  assert_non_null(s);
  memcpy(s, config, len - 1); /* all but the closing brace */
  snprintf(s + len - 1, 32, ",\"seed\":%d}", seed);
  return s;
}

typedef struct conf_net {
  const ch_network_vtable *vt;
  void *net;
  ch_network_spec spec;
} conf_net;

static conf_net conf_new(const conf_case *c, const char *config, int seed) {
  conf_net n;
  n.vt = net_open(c->plugin);
  char *json = with_seed(config, seed);
  n.net = net_new(n.vt, json);
  free(json);
  n.spec = net_spec(n.vt, n.net);
  return n;
}

/* Inputs in [0, 1), as camera pixels and normalised state vectors are. */
static float *conf_input(const conf_net *n, uint32_t batch, uint64_t seed) {
  size_t count = (size_t)batch * n->spec.input_size;
  float *x = test_random(&seed, count, 0.5f);
  for (size_t i = 0; i < count; i++) x[i] += 0.5f;
  return x;
}

/* Outputs for a batch, policy then value, in one malloc'd array of batch * (policy_size + 1). */
static float *conf_outputs(const conf_net *n, const float *x, uint32_t batch) {
  float *out = malloc((size_t)batch * (n->spec.policy_size + 1) * sizeof *out);
  ch_error err = {0, ""};
  assert_non_null(out);
  net_check(n->vt->forward(n->net, x, batch, out, out + (size_t)batch * n->spec.policy_size, &err),
            err);
  return out;
}

static size_t out_bytes(const conf_net *n, uint32_t batch) {
  return (size_t)batch * (n->spec.policy_size + 1) * sizeof(float);
}

/* One Adam step on the gradient of random output gradients at random inputs. */
static void train_step(const conf_net *n, uint64_t seed) {
  const uint32_t batch = 3;
  float *x = conf_input(n, batch, seed);
  float *dp = test_random(&seed, (size_t)batch * n->spec.policy_size, 1.0f);
  float *dv = test_random(&seed, batch, 1.0f);
  const ch_optimizer_config adam = {3e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};
  ch_error err = {0, ""};
  net_grad_step(n->vt, n->net, x, batch, dp, dv);
  net_check(n->vt->optimizer_step(n->net, &adam, &err), err);
  free(x), free(dp), free(dv);
}

/* ---- (a) gradients against central finite differences ----------------------------------- */

#define GC_BATCH 2
#define GC_REL   1e-2
/* Float rounding jitters a loss of order 1 by about 1e-7; a second difference below three
** times that is no evidence of a kink. */
#define GC_NOISE 3e-7

typedef struct gc_data {
  conf_net n;
  float *x, *wp, *wv, *policy, *value;
} gc_data;

/* sum(wp * policy) + sum(wv * value) at the handle's current parameters, in double: the loss
** mixes every policy output (log stds included) with the value. */
static double gc_loss(gc_data *d) {
  ch_error err = {0, ""};
  net_check(d->n.vt->forward(d->n.net, d->x, GC_BATCH, d->policy, d->value, &err), err);
  double loss = 0.0;
  for (size_t i = 0; i < (size_t)GC_BATCH * d->n.spec.policy_size; i++)
    loss += (double)d->wp[i] * d->policy[i];
  for (size_t i = 0; i < GC_BATCH; i++) loss += (double)d->wv[i] * d->value[i];
  return loss;
}

static double gc_loss_at(gc_data *d, float *params, uint64_t i, float value) {
  ch_error err = {0, ""};
  float keep = params[i];
  params[i] = value;
  net_check(d->n.vt->set_params(d->n.net, params, d->n.spec.param_count, &err), err);
  params[i] = keep;
  return gc_loss(d);
}

typedef struct gc_tally {
  uint64_t failed, skipped, worst_i;
  double worst, worst_a, worst_n; /* the largest error seen, as a fraction of the tolerance */
} gc_tally;

/* The error of the central difference at step eps as a fraction of the tolerance (> 1
** fails), or -1 when the step crossed a kink: piecewise linear in one parameter, unequal
** one-sided slopes mean a kink, where a finite difference says nothing about the derivative.
** A lone kink this lets through moves the central difference by at most half the absolute
** tolerance (or the rounding noise over the step, if that is larger). */
static double gc_try(gc_data *d, const conf_case *c, float *params, double analytic, uint64_t i,
                     double loss0, float eps, double *numeric) {
  double up = gc_loss_at(d, params, i, params[i] + eps);
  double down = gc_loss_at(d, params, i, params[i] - eps);
  double kink = fmax(eps * c->tol, GC_NOISE * fmax(1.0, fabs(loss0)));
  if (c->piecewise_linear && fabs((up - loss0) - (loss0 - down)) > kink) return -1;
  *numeric = (up - down) / (2.0 * eps);
  return fabs(analytic - *numeric) / (c->tol + GC_REL * fmax(fabs(analytic), fabs(*numeric)));
}

/* With relu, units near zero put kinks around a parameter, and kinks on both sides can bend
** both one-sided slopes alike and pass the kink test. Their effect changes with the step, a
** wrong gradient's does not: a piecewise linear network gets two more tries at a quarter of
** the step each; one agreeing try passes, and a parameter fails only if every try is free
** of kinks and disagrees (the rest are skipped as inconclusive). */
static void gc_param(gc_data *d, const conf_case *c, float *params, const float *grad, uint64_t i,
                     double loss0, gc_tally *t) {
  int tries = c->piecewise_linear ? 3 : 1, kinked = 0;
  double best = INFINITY, best_n = 0, numeric = 0;
  float eps = c->eps;
  for (int k = 0; k < tries && !(best <= 1); k++, eps /= 4) {
    double r = gc_try(d, c, params, grad[i], i, loss0, eps, &numeric);
    kinked += r < 0;
    if (r >= 0 && r < best) best = r, best_n = numeric;
  }
  if (best > 1 && kinked) {
    t->skipped++;
    return;
  }
  if (best > 1) {
    t->failed++;
    if (t->failed <= 10) /* the first few, to see which tensor */
      print_message("  param %llu: analytic %.6g numeric %.6g\n", (unsigned long long)i, grad[i],
                    best_n);
  }
  if (best >= t->worst) *t = (gc_tally){t->failed, t->skipped, i, best, grad[i], best_n};
}

static void check_gradients(void **state) {
  const conf_case *c = *state;
  gc_data d;
  d.n = conf_new(c, c->config, 5);
  uint64_t seed = 0x5eed, n = d.n.spec.param_count;
  net_randomize(d.n.vt, d.n.net, 77, c->scale);
  d.x = conf_input(&d.n, GC_BATCH, 11);
  d.wp = test_random(&seed, (size_t)GC_BATCH * d.n.spec.policy_size, 1.0f);
  d.wv = test_random(&seed, GC_BATCH, 1.0f);
  d.policy = malloc((size_t)GC_BATCH * d.n.spec.policy_size * sizeof(float));
  d.value = malloc(GC_BATCH * sizeof(float));
  net_grad_step(d.n.vt, d.n.net, d.x, GC_BATCH, d.wp, d.wv);
  float *grad = net_grads(d.n.vt, d.n.net), *params = net_params(d.n.vt, d.n.net);
  double loss0 = gc_loss(&d);
  gc_tally t = {0, 0, 0, 0, 0, 0};
  for (uint64_t i = 0; i < n; i++) gc_param(&d, c, params, grad, i, loss0, &t);
  print_message("%s: loss %.4g, %llu params, worst param %llu analytic %.6g numeric %.6g (%.2f of "
                "the tolerance), %llu skipped at relu kinks\n",
                c->name, loss0, (unsigned long long)n, (unsigned long long)t.worst_i, t.worst_a,
                t.worst_n, t.worst, (unsigned long long)t.skipped);
  if (t.failed)
    fail_msg("%s: %llu of %llu gradients disagree with finite differences", c->name,
             (unsigned long long)t.failed, (unsigned long long)n);
  if (t.skipped * 10 > n)
    fail_msg("%s: too many relu kinks skipped: %llu of %llu", c->name,
             (unsigned long long)t.skipped, (unsigned long long)n);
  d.n.vt->destroy(d.n.net);
  free(grad), free(params), free(d.x), free(d.wp), free(d.wv), free(d.policy), free(d.value);
}

/* ---- (b) save and load ------------------------------------------------------------------- */

static void check_save_load(void **state) {
  const conf_case *c = *state;
  conf_net a = conf_new(c, c->config, 3), b = conf_new(c, c->config, 4);
  uint64_t n = a.spec.param_count;
  train_step(&a, 1);
  train_step(&a, 2);
  void *blob, *blob2;
  size_t len, len2;
  ch_error err = {0, ""};
  net_check(a.vt->save(a.net, &blob, &len, &err), err);
  net_check(b.vt->load(b.net, blob, len, &err), err);
  float *pa = net_params(a.vt, a.net), *pb = net_params(b.vt, b.net);
  assert_memory_equal(pa, pb, (size_t)n * sizeof *pa);
  float *x = conf_input(&a, 4, 21), *oa = conf_outputs(&a, x, 4), *ob = conf_outputs(&b, x, 4);
  assert_memory_equal(oa, ob, out_bytes(&a, 4));
  /* The loaded handle saves the very same bytes, Adam state included. */
  net_check(b.vt->save(b.net, &blob2, &len2, &err), err);
  assert_int_equal(len2, len);
  assert_memory_equal(blob2, blob, len);
  /* One more step from the loaded state is the step the original takes. */
  train_step(&a, 3);
  train_step(&b, 3);
  float *pa2 = net_params(a.vt, a.net), *pb2 = net_params(b.vt, b.net);
  assert_memory_equal(pa2, pb2, (size_t)n * sizeof *pa2);
  assert_memory_not_equal(pa2, pa, (size_t)n * sizeof *pa2);
  a.vt->free_blob(a.net, blob), b.vt->free_blob(b.net, blob2);
  a.vt->destroy(a.net), b.vt->destroy(b.net);
  free(pa), free(pb), free(x), free(oa), free(ob), free(pa2), free(pb2);
}

/* ---- (c) determinism --------------------------------------------------------------------- */

static void check_seeds(void **state) {
  const conf_case *c = *state;
  conf_net a = conf_new(c, c->config, 42), b = conf_new(c, c->config, 42);
  conf_net o = conf_new(c, c->config, 43);
  uint64_t n = a.spec.param_count, weights = 0, differ = 0;
  float *pa = net_params(a.vt, a.net), *pb = net_params(b.vt, b.net), *po = net_params(o.vt, o.net);
  assert_memory_equal(pa, pb, (size_t)n * sizeof *pa);
  float *x = conf_input(&a, 3, 8), *oa = conf_outputs(&a, x, 3), *ob = conf_outputs(&b, x, 3);
  float *oo = conf_outputs(&o, x, 3);
  assert_memory_equal(oa, ob, out_bytes(&a, 3));
  for (uint64_t i = 0; i < n; i++) {
    /* What the seed does not draw: biases (0) and log stds (among the last entries). */
    if (pa[i] == po[i] && (pa[i] == 0.0f || i >= n - a.spec.policy_size)) continue;
    weights++;
    differ += pa[i] != po[i];
  }
  print_message("%s: seeds 42 and 43 differ in %llu of %llu weights\n", c->name,
                (unsigned long long)differ, (unsigned long long)weights);
  assert_true(weights > n / 2 && differ == weights);
  assert_memory_not_equal(oa, oo, out_bytes(&a, 3));
  a.vt->destroy(a.net), b.vt->destroy(b.net), o.vt->destroy(o.net);
  free(pa), free(pb), free(po), free(x), free(oa), free(ob), free(oo);
}

/* ---- (d) damaged and foreign blobs ------------------------------------------------------- */

/* Load bad into n expecting code and a message mentioning part; n must not change. */
static void expect_refused(const conf_net *n, const void *bad, size_t len, int code,
                           const char *part) {
  float *before = net_params(n->vt, n->net), *x = conf_input(n, 2, 5);
  float *out_before = conf_outputs(n, x, 2);
  ch_error err = {0, ""};
  int rc = n->vt->load(n->net, bad, len, &err);
  if (rc != code)
    fail_msg("load of a %zu-byte blob -> %d (%s), expected %d", len, rc, err.message, code);
  assert_int_equal(err.code, code);
  net_assert_contains(err.message, part);
  float *after = net_params(n->vt, n->net), *out_after = conf_outputs(n, x, 2);
  assert_memory_equal(before, after, (size_t)n->spec.param_count * sizeof *before);
  assert_memory_equal(out_before, out_after, out_bytes(n, 2));
  free(before), free(after), free(x), free(out_before), free(out_after);
}

static void check_bad_blobs(void **state) {
  const conf_case *c = *state;
  conf_net src = conf_new(c, c->config, 3), net = conf_new(c, c->config, 9);
  conf_net other = conf_new(c, c->other, 3);
  train_step(&src, 1);
  void *blob, *foreign;
  size_t len, flen;
  ch_error err = {0, ""};
  net_check(src.vt->save(src.net, &blob, &len, &err), err);
  net_check(other.vt->save(other.net, &foreign, &flen, &err), err);
  unsigned char *bad = malloc(len);
  /* A flipped bit anywhere: the header, the middle, the checksum itself. */
  const size_t at[] = {8, 12, 20, 40, len / 2, len - 20, len - 1};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    memcpy(bad, blob, len);
    bad[at[i]] ^= 0x10;
    expect_refused(&net, bad, len, CH_ECORRUPT, "corrupt");
  }
  memcpy(bad, blob, len);
  expect_refused(&net, bad, len - 1, CH_ECORRUPT, "corrupt");
  expect_refused(&net, bad, len / 2, CH_ECORRUPT, "corrupt");
  expect_refused(&net, bad, 10, CH_ECORRUPT, "corrupt");
  expect_refused(&net, bad, 0, CH_ECORRUPT, "corrupt");
  bad[3] ^= 0x01;
  expect_refused(&net, bad, len, CH_ECORRUPT, "magic");
  expect_refused(&net, foreign, flen, CH_EINVAL, "architecture");
  /* A blob of the other plugin kind is not this plugin's at all. */
  const conf_case *alien = &cases[strcmp(c->plugin, cases[0].plugin) ? 0 : NUM_CASES - 1];
  conf_net a = conf_new(alien, alien->config, 1);
  void *ablob;
  size_t alen;
  net_check(a.vt->save(a.net, &ablob, &alen, &err), err);
  expect_refused(&net, ablob, alen, CH_ECORRUPT, "magic");
  /* And after all that, the real blob still loads. */
  net_check(net.vt->load(net.net, blob, len, &err), err);
  a.vt->free_blob(a.net, ablob), a.vt->destroy(a.net);
  src.vt->free_blob(src.net, blob), other.vt->free_blob(other.net, foreign);
  src.vt->destroy(src.net), net.vt->destroy(net.net), other.vt->destroy(other.net);
  free(bad);
}

/* ---- (e) batch independence -------------------------------------------------------------- */

static void check_batch(void **state) {
  const conf_case *c = *state;
  conf_net n = conf_new(c, c->config, 6);
  const uint32_t batch = 7;
  size_t P = n.spec.policy_size;
  float *x = conf_input(&n, batch, 31), *all = conf_outputs(&n, x, batch);
  double worst = 0;
  for (uint32_t r = 0; r < batch; r++) {
    float *one = conf_outputs(&n, x + (size_t)r * n.spec.input_size, 1);
    for (size_t j = 0; j <= P; j++) {
      float b = j < P ? all[r * P + j] : all[batch * P + r], s = one[j];
      double diff = fabs((double)b - s) / fmax(1.0, fabs(s));
      if (diff > 1e-6)
        fail_msg("%s: sample %u output %zu is %.9g in the batch, %.9g alone", c->name, r, j, b, s);
      worst = fmax(worst, diff);
    }
    free(one);
  }
  print_message("%s: worst difference batch vs alone %.3g\n", c->name, worst);
  n.vt->destroy(n.net);
  free(x), free(all);
}

int main(void) {
  /* Thousands of tiny forwards: OpenBLAS's worker threads add only wake-ups there, and on a
  ** busy machine they fight the other tests for cores. Set before the plugins load BLAS. */
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  /* CH_TEST_FILTER="gradients: cnn*" runs a subset (cmocka's wildcard syntax). */
  if (getenv("CH_TEST_FILTER")) cmocka_set_test_filter(getenv("CH_TEST_FILTER"));
  static const struct {
    const char *name;
    CMUnitTestFunction fn;
  } checks[] = {{"gradients", check_gradients},
                {"save_load", check_save_load},
                {"seeds", check_seeds},
                {"bad_blobs", check_bad_blobs},
                {"batch", check_batch}};
  enum { NUM_CHECKS = sizeof checks / sizeof checks[0] };
  static char names[NUM_CHECKS * NUM_CASES][96];
  struct CMUnitTest tests[NUM_CHECKS * NUM_CASES];
  size_t k = 0;
  for (size_t i = 0; i < NUM_CHECKS; i++)
    for (size_t j = 0; j < NUM_CASES; j++, k++) {
      snprintf(names[k], sizeof names[k], "%s: %s", checks[i].name, cases[j].name);
      tests[k] = (struct CMUnitTest){names[k], checks[i].fn, NULL, NULL, (void *)&cases[j]};
    }
  return cmocka_run_group_tests_name("network conformance", tests, NULL, NULL);
}
