/* test_cnn_config.c -- cnn: config JSON defaults, and errors that name the offending key. */
#include "net_test.h"

#define IMAGE "\"image\":{\"width\":40,\"height\":36,\"channels\":2}"

static const ch_network_vtable *cnn_open(void) {
  return net_open("network_cnn.so");
}

/* create must fail with CH_EINVAL, leave *out NULL and mention part in its message. */
static void expect_einval(const char *config, const char *part) {
  const ch_network_vtable *vt = cnn_open();
  void *net = (void *)&net;
  ch_error err = {0, ""};
  int rc = vt->create(config, &test_host, &net, &err);
  if (rc != CH_EINVAL)
    fail_msg("create(%s) -> %d (%s), expected CH_EINVAL", config ? config : "NULL", rc,
             err.message);
  assert_null(net);
  assert_int_equal(err.code, CH_EINVAL);
  net_assert_contains(err.message, part);
}

static void missing_required_keys(void **state) {
  (void)state;
  expect_einval("{\"num_actions\":4}", "missing required key 'image'");
  expect_einval("{" IMAGE "}", "missing required key 'num_actions'");
  expect_einval("{}", "'image'");
}

static void unknown_keys_are_named(void **state) {
  (void)state;
  expect_einval("{" IMAGE ",\"num_actions\":4,\"hidden\":[64]}", "'hidden'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"lr\":0.1}", "'lr'");
  expect_einval("{\"image\":{\"width\":40,\"height\":36,\"channels\":2,\"depth\":3},"
                "\"num_actions\":4}",
                "'image.depth'");
}

static void image_is_checked(void **state) {
  (void)state;
  expect_einval("{\"image\":[40,36,2],\"num_actions\":4}", "'image'");
  expect_einval("{\"image\":{\"width\":40,\"height\":36},\"num_actions\":4}", "'channels'");
  expect_einval("{\"image\":{\"height\":36,\"channels\":1},\"num_actions\":4}", "'width'");
  expect_einval("{\"image\":{\"width\":0,\"height\":36,\"channels\":1},\"num_actions\":4}",
                "'image.width'");
  expect_einval("{\"image\":{\"width\":1025,\"height\":36,\"channels\":1},\"num_actions\":4}",
                "'image.width'");
  expect_einval("{\"image\":{\"width\":40,\"height\":36.5,\"channels\":1},\"num_actions\":4}",
                "'image.height'");
  expect_einval("{\"image\":{\"width\":40,\"height\":\"36\",\"channels\":1},\"num_actions\":4}",
                "'image.height'");
  expect_einval("{\"image\":{\"width\":40,\"height\":36,\"channels\":0},\"num_actions\":4}",
                "'image.channels'");
  expect_einval("{\"image\":{\"width\":40,\"height\":36,\"channels\":17},\"num_actions\":4}",
                "'image.channels'");
  expect_einval("{\"image\":{\"width\":40,\"width\":41,\"height\":36,\"channels\":1},"
                "\"num_actions\":4}",
                "'image.width' given twice");
}

/* Valid padding: "shallow" needs 36 pixels a side, "deep" 21; the message says so. */
static void image_must_fit_the_convolutions(void **state) {
  (void)state;
  expect_einval("{\"image\":{\"width\":35,\"height\":36,\"channels\":1},\"num_actions\":4}",
                "'image.width': 35 is too small for architecture \"shallow\"");
  expect_einval("{\"image\":{\"width\":36,\"height\":28,\"channels\":1},\"num_actions\":4}",
                "at least 36");
  expect_einval("{\"image\":{\"width\":40,\"height\":20,\"channels\":1},\"num_actions\":4,"
                "\"architecture\":\"deep\"}",
                "'image.height': 20 is too small for architecture \"deep\" (its convolutions "
                "need at least 21)");
  const ch_network_vtable *vt = cnn_open();
  vt->destroy(net_new(vt, "{\"image\":{\"width\":36,\"height\":36,\"channels\":1},"
                          "\"num_actions\":4}"));
  vt->destroy(net_new(vt, "{\"image\":{\"width\":21,\"height\":21,\"channels\":1},"
                          "\"num_actions\":4,\"architecture\":\"deep\"}"));
}

static void architecture_is_checked(void **state) {
  (void)state;
  expect_einval("{" IMAGE ",\"num_actions\":4,\"architecture\":\"vgg\"}", "\"vgg\"");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"architecture\":\"vgg\"}", "'architecture'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"architecture\":3}", "'architecture'");
  /* DeepRacer's third network is refused with the reason, not as a typo. */
  expect_einval("{" IMAGE ",\"num_actions\":4,\"architecture\":\"deeper\"}", "batch normalisation");
}

static void heads_are_checked(void **state) {
  (void)state;
  expect_einval("{" IMAGE ",\"num_actions\":4,\"head\":\"beta\"}", "'head'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"head\":true}", "'head'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"log_std_init\":-1}", "'log_std_init'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"head\":\"gaussian\",\"log_std_init\":3}",
                "'log_std_init'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"head\":\"gaussian\",\"log_std_init\":\"0\"}",
                "'log_std_init'");
  expect_einval("{" IMAGE ",\"num_actions\":0}", "'num_actions'");
  expect_einval("{" IMAGE ",\"num_actions\":65537}", "'num_actions'");
}

static void scalar_keys_are_checked(void **state) {
  (void)state;
  expect_einval("{" IMAGE ",\"num_actions\":4,\"vector_size\":-1}", "'vector_size'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"vector_size\":65537}", "'vector_size'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"shared\":1}", "'shared'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"seed\":1.5}", "'seed'");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"seed\":1e300}", "'seed'");
}

static void malformed_documents(void **state) {
  (void)state;
  expect_einval("{" IMAGE ",", "invalid JSON");
  expect_einval("[1, 2]", "expected a JSON object");
  expect_einval("{" IMAGE ",\"num_actions\":4,\"num_actions\":5}", "'num_actions' given twice");
  expect_einval(NULL, "NULL");
  const ch_network_vtable *vt = cnn_open();
  ch_error err = {0, ""};
  assert_int_equal(vt->create("{}", &test_host, NULL, &err), CH_EINVAL);
}

/* Defaults: "shallow", one shared tower, the categorical head, no vector. */
static void defaults(void **state) {
  (void)state;
  const ch_network_vtable *vt = cnn_open();
  void *a = net_new(vt, "{" IMAGE ",\"num_actions\":4}");
  void *b = net_new(vt, "{" IMAGE ",\"num_actions\":4,\"architecture\":\"shallow\",\"shared\":true,"
                        "\"head\":\"categorical\",\"vector_size\":0,\"seed\":1}");
  ch_network_spec sa = net_spec(vt, a), sb = net_spec(vt, b);
  assert_int_equal(sa.input_size, 40 * 36 * 2);
  assert_int_equal(sa.policy_size, 4);
  assert_int_equal(sa.param_count, sb.param_count);
  float *pa = net_params(vt, a), *pb = net_params(vt, b);
  assert_memory_equal(pa, pb, (size_t)sa.param_count * sizeof *pa);
  vt->destroy(a), vt->destroy(b);
  free(pa), free(pb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(missing_required_keys),
      cmocka_unit_test(unknown_keys_are_named),
      cmocka_unit_test(image_is_checked),
      cmocka_unit_test(image_must_fit_the_convolutions),
      cmocka_unit_test(architecture_is_checked),
      cmocka_unit_test(heads_are_checked),
      cmocka_unit_test(scalar_keys_are_checked),
      cmocka_unit_test(malformed_documents),
      cmocka_unit_test(defaults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
