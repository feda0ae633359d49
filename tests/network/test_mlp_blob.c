/* test_mlp_blob.c -- mlp: save/load round trips bit for bit; corrupt or foreign blobs refused. */
#include "mlp_test.h"

#include <zlib.h>

#define CONFIG_A "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"seed\":3}"
#define CONFIG_B "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"seed\":99}"
#define BATCH    6

static const ch_optimizer_config adam = {3e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};

/* One Adam step from a gradient of random data drawn from seed. */
static void train_step(const ch_network_vtable *vt, void *net, uint64_t seed) {
  float *x = test_random(&seed, BATCH * 5, 1.0f), *dp = test_random(&seed, BATCH * 4, 1.0f);
  float *dv = test_random(&seed, BATCH, 1.0f);
  ch_error err = {0, ""};
  mlp_grad_step(vt, net, x, BATCH, dp, dv);
  mlp_check(vt->optimizer_step(net, &adam, &err), err);
  free(x), free(dp), free(dv);
}

/* Outputs for a fixed batch, policy then value, in one malloc'd array of out_size floats. */
static size_t out_size(const ch_network_vtable *vt, void *net) {
  ch_network_spec spec;
  vt->spec(net, &spec);
  return BATCH * ((size_t)spec.policy_size + 1);
}

static float *outputs(const ch_network_vtable *vt, void *net) {
  ch_network_spec spec;
  vt->spec(net, &spec);
  uint64_t seed = 1234;
  float *x = test_random(&seed, BATCH * (size_t)spec.input_size, 1.0f);
  float *out = malloc(out_size(vt, net) * sizeof *out);
  ch_error err = {0, ""};
  mlp_check(vt->forward(net, x, BATCH, out, out + BATCH * spec.policy_size, &err), err);
  free(x);
  return out;
}

/* A trained handle and its saved blob. */
static void *saved_net(const ch_network_vtable *vt, void **blob, size_t *len) {
  void *net = mlp_new(vt, CONFIG_A);
  train_step(vt, net, 1);
  train_step(vt, net, 2);
  ch_error err = {0, ""};
  mlp_check(vt->save(net, blob, len, &err), err);
  return net;
}

static void round_trip_is_bit_exact(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob, *blob2;
  size_t len, len2;
  void *a = saved_net(vt, &blob, &len), *b = mlp_new(vt, CONFIG_B);
  uint64_t n = mlp_count(vt, a);
  ch_error err = {0, ""};
  mlp_check(vt->load(b, blob, len, &err), err);
  float *pa = mlp_params(vt, a), *pb = mlp_params(vt, b);
  assert_memory_equal(pa, pb, (size_t)n * sizeof *pa);
  float *oa = outputs(vt, a), *ob = outputs(vt, b);
  assert_memory_equal(oa, ob, out_size(vt, a) * sizeof *oa);
  /* The loaded handle saves the very same bytes: the Adam state came along. */
  mlp_check(vt->save(b, &blob2, &len2, &err), err);
  assert_int_equal(len2, len);
  assert_memory_equal(blob2, blob, len);
  /* And Adam continues identically on both. */
  train_step(vt, a, 3);
  train_step(vt, b, 3);
  float *pa2 = mlp_params(vt, a), *pb2 = mlp_params(vt, b);
  assert_memory_equal(pa2, pb2, (size_t)n * sizeof *pa2);
  assert_memory_not_equal(pa2, pa, (size_t)n * sizeof *pa2);
  vt->free_blob(a, blob), vt->free_blob(b, blob2), vt->destroy(a), vt->destroy(b);
  free(pa), free(pb), free(oa), free(ob), free(pa2), free(pb2);
}

static void blob_layout_is_as_documented(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob;
  size_t len;
  void *net = saved_net(vt, &blob, &len);
  const unsigned char *p = blob;
  uint64_t n = mlp_count(vt, net);
  assert_int_equal(len, 8 + 7 * 4 + 2 * 4 + 8 + 12 * n + 8 + 4);
  assert_memory_equal(p, "CHMLP001", 8);
  /* version 2, input 5, 4 actions, tanh, separate, categorical, 2 hidden layers: 7, 6 */
  const unsigned char head[] = {2, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 6, 0, 0, 0};
  assert_memory_equal(p + 8, head, sizeof head);
  uint64_t count = 0, step = 0;
  for (int i = 7; i >= 0; i--) count = count << 8 | p[44 + i];
  for (int i = 7; i >= 0; i--) step = step << 8 | p[52 + 4 * n + i];
  assert_int_equal(count, n);
  assert_int_equal(step, 2);
  float *params = mlp_params(vt, net);
  uint32_t bits =
      (uint32_t)p[52] | (uint32_t)p[53] << 8 | (uint32_t)p[54] << 16 | (uint32_t)p[55] << 24;
  float first;
  memcpy(&first, &bits, sizeof first);
  assert_memory_equal(&first, &params[0], sizeof first);
  uint32_t crc = (uint32_t)crc32(0, p, (uInt)(len - 4));
  assert_int_equal(crc, (uint32_t)p[len - 4] | (uint32_t)p[len - 3] << 8 |
                            (uint32_t)p[len - 2] << 16 | (uint32_t)p[len - 1] << 24);
  vt->free_blob(net, blob), vt->destroy(net);
  free(params);
}

/* Load bad into net expecting code and a message mentioning part; net must not change. */
static void expect_refused(const ch_network_vtable *vt, void *net, const void *bad, size_t len,
                           int code, const char *part) {
  float *before = mlp_params(vt, net), *out_before = outputs(vt, net);
  ch_error err = {0, ""};
  int rc = vt->load(net, bad, len, &err);
  if (rc != code)
    fail_msg("load of a %zu-byte blob -> %d (%s), expected %d", len, rc, err.message, code);
  assert_int_equal(err.code, code);
  mlp_assert_contains(err.message, part);
  float *after = mlp_params(vt, net), *out_after = outputs(vt, net);
  assert_memory_equal(before, after, (size_t)mlp_count(vt, net) * sizeof *before);
  assert_memory_equal(out_before, out_after, out_size(vt, net) * sizeof *out_before);
  free(before), free(after), free(out_before), free(out_after);
}

static void corrupt_blobs_are_refused(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob;
  size_t len;
  void *src = saved_net(vt, &blob, &len), *net = mlp_new(vt, CONFIG_B);
  unsigned char *bad = malloc(len);
  memcpy(bad, blob, len);
  bad[len / 2] ^= 0x10;
  expect_refused(vt, net, bad, len, CH_ECORRUPT, "checksum mismatch");
  bad[len / 2] ^= 0x10;
  bad[len - 1] ^= 0x01; /* the checksum itself */
  expect_refused(vt, net, bad, len, CH_ECORRUPT, "checksum mismatch");
  bad[len - 1] ^= 0x01;
  expect_refused(vt, net, bad, len - 1, CH_ECORRUPT, "corrupt");
  expect_refused(vt, net, bad, len / 2, CH_ECORRUPT, "corrupt");
  expect_refused(vt, net, bad, 10, CH_ECORRUPT, "shorter");
  expect_refused(vt, net, bad, 0, CH_ECORRUPT, "shorter");
  memcpy(bad, "CHMLP002", 8);
  expect_refused(vt, net, bad, len, CH_ECORRUPT, "magic");
  vt->free_blob(src, blob), vt->destroy(src), vt->destroy(net);
  free(bad);
}

/* Every single flipped byte of a small blob is caught. */
static void every_flipped_byte_is_caught(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  const char *config = "{\"input_size\":2,\"num_actions\":2,\"hidden\":[3]}";
  void *src = mlp_new(vt, config), *net = mlp_new(vt, config), *blob;
  size_t len;
  ch_error err = {0, ""};
  mlp_check(vt->save(src, &blob, &len, &err), err);
  unsigned char *bad = malloc(len);
  float *before = mlp_params(vt, net);
  for (size_t i = 0; i < len; i++) {
    memcpy(bad, blob, len);
    bad[i] ^= 0xA5;
    int rc = vt->load(net, bad, len, &err);
    if (rc != CH_ECORRUPT) fail_msg("byte %zu flipped: load -> %d (%s)", i, rc, err.message);
  }
  float *after = mlp_params(vt, net);
  assert_memory_equal(before, after, (size_t)mlp_count(vt, net) * sizeof *before);
  vt->free_blob(src, blob), vt->destroy(src), vt->destroy(net);
  free(bad), free(before), free(after);
}

/* Rewrite the trailing checksum after an edit, making a well-sealed but invalid blob. */
static void reseal(unsigned char *p, size_t len) {
  uint32_t crc = (uint32_t)crc32(0, p, (uInt)(len - 4));
  for (int i = 0; i < 4; i++) p[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

static void sealed_but_invalid_headers_are_refused(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob;
  size_t len;
  void *src = saved_net(vt, &blob, &len), *net = mlp_new(vt, CONFIG_B);
  unsigned char *bad = malloc(len);
  struct {
    size_t at;
    unsigned char value;
    const char *part;
  } edits[] = {{8, 3, "version 3"},
               {8, 0, "version 0"},
               {32, 9, "invalid architecture"},
               {20, 7, "invalid architecture"},
               {28, 2, "invalid architecture"},
               {36, 0, "invalid architecture"},
               {40, 5, "parameters stored"},
               {28, 1, "parameters stored"}, /* gaussian: 4 log stds more */
               {44, 1, "parameters stored"}};
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    memcpy(bad, blob, len);
    bad[edits[i].at] = edits[i].value;
    reseal(bad, len);
    expect_refused(vt, net, bad, len, CH_ECORRUPT, edits[i].part);
  }
  vt->free_blob(src, blob), vt->destroy(src), vt->destroy(net);
  free(bad);
}

static void other_architecture_is_einval(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob;
  size_t len;
  void *src = saved_net(vt, &blob, &len);
  const char *others[] = {
      "{\"input_size\":5,\"num_actions\":4,\"hidden\":[8]}",
      "{\"input_size\":6,\"num_actions\":4,\"hidden\":[7,6]}",
      "{\"input_size\":5,\"num_actions\":3,\"hidden\":[7,6]}",
      "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"activation\":\"relu\"}",
      "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],\"shared\":true}",
      "{\"input_size\":5,\"num_actions\":4,\"hidden\":[6,7]}",
  };
  const char *wanted[] = {"hidden [8]", "input 6",      "3 actions",
                          "relu",       "shared trunk", "hidden [6,7]"};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    void *net = mlp_new(vt, others[i]);
    expect_refused(vt, net, blob, len, CH_EINVAL, "hidden [7,6]");
    ch_error err = {0, ""};
    vt->load(net, blob, len, &err);
    mlp_assert_contains(err.message, "input 5, 4 actions, hidden [7,6], tanh, separate trunks");
    mlp_assert_contains(err.message, wanted[i]);
    vt->destroy(net);
  }
  vt->free_blob(src, blob), vt->destroy(src);
}

/* The version-1 form of a version-2 blob of a categorical network: no head field. */
static unsigned char *as_version1(const unsigned char *v2, size_t len, size_t *len1) {
  unsigned char *v1 = malloc(len - 4);
  assert_non_null(v1);
  memcpy(v1, v2, 28);
  memcpy(v1 + 28, v2 + 32, len - 32);
  v1[8] = 1;
  *len1 = len - 4;
  reseal(v1, *len1);
  return v1;
}

static void version1_blobs_still_load(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob, *blob2;
  size_t len, len1, len2;
  void *src = saved_net(vt, &blob, &len), *net = mlp_new(vt, CONFIG_B);
  unsigned char *v1 = as_version1(blob, len, &len1);
  ch_error err = {0, ""};
  mlp_check(vt->load(net, v1, len1, &err), err);
  float *ps = mlp_params(vt, src), *pn = mlp_params(vt, net);
  assert_memory_equal(ps, pn, (size_t)mlp_count(vt, src) * sizeof *ps);
  /* Saving again writes version 2, byte for byte what the source writes. */
  mlp_check(vt->save(net, &blob2, &len2, &err), err);
  assert_int_equal(len2, len);
  assert_memory_equal(blob2, blob, len);
  /* A version-1 blob is categorical: a Gaussian network refuses it. */
  void *gauss = mlp_new(vt, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6],"
                            "\"head\":\"gaussian\"}");
  expect_refused(vt, gauss, v1, len1, CH_EINVAL, "4 actions");
  vt->load(gauss, v1, len1, &err);
  mlp_assert_contains(err.message, "gaussian over 4 action dims");
  /* Version-1 sizes are checked against the version-1 layout. */
  expect_refused(vt, net, v1, len1 - 1, CH_ECORRUPT, "corrupt");
  vt->free_blob(src, blob), vt->free_blob(net, blob2), vt->destroy(src), vt->destroy(net);
  vt->destroy(gauss);
  free(v1), free(ps), free(pn);
}

static void gaussian_blob_round_trips(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  const char *config = "{\"input_size\":5,\"num_actions\":2,\"hidden\":[7,6],\"head\":\"gaussian\","
                       "\"log_std_init\":-1}";
  void *a = mlp_new(vt, config), *b = mlp_new(vt, config), *blob;
  size_t len;
  ch_error err = {0, ""};
  mlp_randomize(vt, a, 9, 0.5f);
  mlp_check(vt->save(a, &blob, &len, &err), err);
  assert_int_equal(((unsigned char *)blob)[28], 1); /* head: gaussian */
  mlp_check(vt->load(b, blob, len, &err), err);
  float *pa = mlp_params(vt, a), *pb = mlp_params(vt, b);
  assert_memory_equal(pa, pb, (size_t)mlp_count(vt, a) * sizeof *pa);
  void *cat = mlp_new(vt, "{\"input_size\":5,\"num_actions\":2,\"hidden\":[7,6]}");
  expect_refused(vt, cat, blob, len, CH_EINVAL, "gaussian over 2 action dims");
  vt->free_blob(a, blob), vt->destroy(a), vt->destroy(b), vt->destroy(cat);
  free(pa), free(pb);
}

static void load_forgets_the_forward(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *blob;
  size_t len;
  void *net = saved_net(vt, &blob, &len);
  float *out = outputs(vt, net), dv[BATCH] = {1, 1, 1, 1, 1, 1};
  ch_error err = {0, ""};
  mlp_check(vt->load(net, blob, len, &err), err);
  assert_int_equal(vt->backward(net, NULL, dv, &err), CH_ESTATE);
  assert_int_equal(vt->load(net, NULL, len, &err), CH_EINVAL);
  vt->free_blob(net, blob), vt->destroy(net);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip_is_bit_exact),
      cmocka_unit_test(blob_layout_is_as_documented),
      cmocka_unit_test(corrupt_blobs_are_refused),
      cmocka_unit_test(every_flipped_byte_is_caught),
      cmocka_unit_test(sealed_but_invalid_headers_are_refused),
      cmocka_unit_test(other_architecture_is_einval),
      cmocka_unit_test(version1_blobs_still_load),
      cmocka_unit_test(gaussian_blob_round_trips),
      cmocka_unit_test(load_forgets_the_forward),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
