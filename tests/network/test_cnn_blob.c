/* test_cnn_blob.c -- cnn: the blob's documented layout; damaged or foreign blobs refused whole. */
#include "net_test.h"

#include <zlib.h>

/* deep, 21x22x2 + 3-vector, gaussian over 2 dims, separate towers */
#define CONFIG                                                                                     \
  "{\"image\":{\"width\":21,\"height\":22,\"channels\":2},\"vector_size\":3,\"num_actions\":2,"    \
  "\"architecture\":\"deep\",\"head\":\"gaussian\",\"shared\":false,\"seed\":%d}"
#define HEAD 44 /* bytes before the parameter count */

static const ch_network_vtable *cnn_open(void) {
  return net_open("network_cnn.so");
}

static void *cnn_new(int seed) {
  char json[512];
  snprintf(json, sizeof json, CONFIG, seed);
  return net_new(cnn_open(), json);
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) {
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* A handle after two Adam steps and its blob. */
static void *saved_net(void **blob, size_t *len) {
  const ch_network_vtable *vt = cnn_open();
  void *net = cnn_new(3);
  ch_network_spec spec = net_spec(vt, net);
  const ch_optimizer_config adam = {3e-3f, 0.9f, 0.999f, 1e-5f, 0.5f};
  ch_error err = {0, ""};
  for (uint64_t step = 1; step <= 2; step++) {
    uint64_t seed = step;
    float *x = test_random(&seed, 3 * (size_t)spec.input_size, 1.0f);
    float *dp = test_random(&seed, 3 * spec.policy_size, 1.0f), *dv = test_random(&seed, 3, 1.0f);
    net_grad_step(vt, net, x, 3, dp, dv);
    net_check(vt->optimizer_step(net, &adam, &err), err);
    free(x), free(dp), free(dv);
  }
  net_check(vt->save(net, blob, len, &err), err);
  return net;
}

static void layout_is_as_documented(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *blob;
  size_t len;
  void *net = saved_net(&blob, &len);
  const unsigned char *p = blob;
  uint64_t n = net_count(vt, net);
  assert_int_equal(len, HEAD + 8 + 4 * n + 8 + 8 * n + 4);
  assert_memory_equal(p, "CHCNN001", 8);
  /* version, width, height, channels, vector_size, architecture, head, num_actions, shared */
  const uint32_t head[] = {1, 21, 22, 2, 3, 1, 1, 2, 0};
  for (int i = 0; i < 9; i++)
    if (le32(p + 8 + 4 * i) != head[i])
      fail_msg("header field %d is %u, expected %u", i, le32(p + 8 + 4 * i), head[i]);
  assert_int_equal(le64(p + HEAD), n);
  assert_int_equal(le64(p + HEAD + 8 + 4 * n), 2); /* Adam steps */
  float *params = net_params(vt, net);
  for (uint64_t i = 0; i < n; i += n / 7) {
    uint32_t bits = le32(p + HEAD + 8 + 4 * i);
    float f;
    memcpy(&f, &bits, sizeof f);
    assert_memory_equal(&f, &params[i], sizeof f);
  }
  assert_int_equal(le32(p + len - 4), (uint32_t)crc32(0, p, (uInt)(len - 4)));
  vt->free_blob(net, blob), vt->destroy(net);
  free(params);
}

/* Load bad into net expecting code and a message mentioning part; net must not change. */
static void expect_refused(void *net, const void *bad, size_t len, int code, const char *part) {
  const ch_network_vtable *vt = cnn_open();
  float *before = net_params(vt, net);
  ch_error err = {0, ""};
  int rc = vt->load(net, bad, len, &err);
  if (rc != code)
    fail_msg("load of a %zu-byte blob -> %d (%s), expected %d", len, rc, err.message, code);
  assert_int_equal(err.code, code);
  net_assert_contains(err.message, part);
  float *after = net_params(vt, net);
  assert_memory_equal(before, after, (size_t)net_count(vt, net) * sizeof *before);
  free(before), free(after);
}

/* Every byte of the header, and the checksum, flipped one at a time. */
static void flipped_header_bytes_are_caught(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *blob;
  size_t len;
  void *src = saved_net(&blob, &len), *net = cnn_new(9);
  unsigned char *bad = malloc(len);
  for (size_t i = 0; i < HEAD + 8 + 16; i++) {
    memcpy(bad, blob, len);
    bad[i] ^= 0xA5;
    expect_refused(net, bad, len, CH_ECORRUPT, "corrupt");
  }
  for (size_t i = len - 4; i < len; i++) {
    memcpy(bad, blob, len);
    bad[i] ^= 0x01;
    expect_refused(net, bad, len, CH_ECORRUPT, "checksum mismatch");
  }
  expect_refused(net, bad, 3, CH_ECORRUPT, "shorter");
  ch_error err = {0, ""};
  assert_int_equal(vt->load(net, NULL, len, &err), CH_EINVAL);
  vt->free_blob(src, blob), vt->destroy(src), vt->destroy(net);
  free(bad);
}

/* Rewrite the trailing checksum after an edit, making a well-sealed but invalid blob. */
static void reseal(unsigned char *p, size_t len) {
  uint32_t crc = (uint32_t)crc32(0, p, (uInt)(len - 4));
  for (int i = 0; i < 4; i++) p[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

static void sealed_but_invalid_headers_are_refused(void **state) {
  (void)state;
  void *blob;
  size_t len;
  void *src = saved_net(&blob, &len), *net = cnn_new(9);
  unsigned char *bad = malloc(len);
  struct {
    size_t at;
    unsigned char value;
    const char *part;
  } edits[] = {{8, 2, "version 2"},
               {12, 0, "invalid architecture"},  /* width 0 */
               {12, 20, "invalid architecture"}, /* too small for "deep" */
               {20, 17, "invalid architecture"}, /* 17 channels */
               {28, 2, "invalid architecture"},  /* no third architecture */
               {32, 2, "invalid architecture"},  /* no third head */
               {36, 0, "invalid architecture"},  /* no actions */
               {40, 2, "invalid architecture"},  /* shared is 0 or 1 */
               {24, 4, "parameters stored"},     /* another vector size */
               {40, 1, "parameters stored"},     /* one tower */
               {HEAD, 7, "parameters stored"}};
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    memcpy(bad, blob, len);
    bad[edits[i].at] = edits[i].value;
    reseal(bad, len);
    expect_refused(net, bad, len, CH_ECORRUPT, edits[i].part);
  }
  cnn_open()->free_blob(src, blob), cnn_open()->destroy(src), cnn_open()->destroy(net);
  free(bad);
}

/* Another architecture is CH_EINVAL, naming the fields that differ and both sides. */
static void other_architectures_are_einval(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *blob;
  size_t len;
  void *src = saved_net(&blob, &len);
  const struct {
    const char *config, *differs;
  } others[] = {
      {"{\"image\":{\"width\":22,\"height\":22,\"channels\":2},\"vector_size\":3,\"num_actions\":2,"
       "\"architecture\":\"deep\",\"head\":\"gaussian\",\"shared\":false}",
       "differs in image width: blob (image 21x22x2"},
      {"{\"image\":{\"width\":21,\"height\":22,\"channels\":1},\"vector_size\":4,\"num_actions\":2,"
       "\"architecture\":\"deep\",\"head\":\"gaussian\",\"shared\":false}",
       "image channels, vector_size"},
      {"{\"image\":{\"width\":21,\"height\":22,\"channels\":2},\"vector_size\":3,\"num_actions\":2,"
       "\"architecture\":\"deep\",\"shared\":false}",
       "differs in head"},
      {"{\"image\":{\"width\":40,\"height\":40,\"channels\":2},\"vector_size\":3,\"num_actions\":2,"
       "\"head\":\"gaussian\",\"shared\":false}",
       "architecture"},
      {"{\"image\":{\"width\":21,\"height\":22,\"channels\":2},\"vector_size\":3,\"num_actions\":2,"
       "\"architecture\":\"deep\",\"head\":\"gaussian\"}",
       "this network (image 21x22x2, vector 3, deep, gaussian over 2 action dims, shared tower)"},
  };
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    void *net = net_new(vt, others[i].config);
    expect_refused(net, blob, len, CH_EINVAL, others[i].differs);
    vt->destroy(net);
  }
  vt->free_blob(src, blob), vt->destroy(src);
}

static void load_forgets_the_forward_and_keeps_the_grads(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *blob;
  size_t len;
  void *net = saved_net(&blob, &len);
  float *g = net_grads(vt, net), x[21 * 22 * 2 + 3] = {0}, p[4], v[1], dv[1] = {1};
  ch_error err = {0, ""};
  net_check(vt->forward(net, x, 1, p, v, &err), err);
  net_check(vt->load(net, blob, len, &err), err);
  assert_int_equal(vt->backward(net, NULL, dv, &err), CH_ESTATE);
  float *g2 = net_grads(vt, net);
  assert_memory_equal(g, g2, (size_t)net_count(vt, net) * sizeof *g);
  vt->free_blob(net, blob), vt->destroy(net);
  free(g), free(g2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(layout_is_as_documented),
      cmocka_unit_test(flipped_header_bytes_are_caught),
      cmocka_unit_test(sealed_but_invalid_headers_are_refused),
      cmocka_unit_test(other_architectures_are_einval),
      cmocka_unit_test(load_forgets_the_forward_and_keeps_the_grads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
