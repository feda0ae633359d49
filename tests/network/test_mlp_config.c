/* test_mlp_config.c -- mlp: config JSON defaults, and errors that name the offending key. */
#include "mlp_test.h"

/* create must fail with CH_EINVAL, leave *out NULL and mention part in its message. */
static void expect_einval(const char *config, const char *part) {
  const ch_network_vtable *vt = mlp_open();
  void *net = (void *)&net;
  ch_error err = {0, ""};
  int rc = vt->create(config, &test_host, &net, &err);
  if (rc != CH_EINVAL)
    fail_msg("create(%s) -> %d (%s), expected CH_EINVAL", config, rc, err.message);
  assert_null(net);
  assert_int_equal(err.code, CH_EINVAL);
  mlp_assert_contains(err.message, part);
}

static void missing_required_keys(void **state) {
  (void)state;
  expect_einval("{\"num_actions\":4}", "'input_size'");
  expect_einval("{\"input_size\":4}", "'num_actions'");
  expect_einval("{}", "input_size");
}

static void unknown_key_is_named(void **state) {
  (void)state;
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hiden\":[7]}", "'hiden'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"lr\":0.1}", "'lr'");
}

static void hidden_must_be_an_array_of_widths(void **state) {
  (void)state;
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":64}", "'hidden'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":\"64,64\"}", "'hidden'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":[64,0]}", "'hidden' (element 1)");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":[4097]}", "'hidden'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":[2.5]}", "'hidden'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":[\"8\"]}", "'hidden'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"hidden\":[1,2,3,4,5,6,7,8,9]}",
                "at most 8 layers");
}

static void activation_must_be_tanh_or_relu(void **state) {
  (void)state;
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"activation\":\"sigmoid\"}", "'activation'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"activation\":\"sigmoid\"}", "sigmoid");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"activation\":1}", "'activation'");
}

static void scalar_keys_are_checked(void **state) {
  (void)state;
  expect_einval("{\"input_size\":0,\"num_actions\":4}", "'input_size'");
  expect_einval("{\"input_size\":-3,\"num_actions\":4}", "'input_size'");
  expect_einval("{\"input_size\":\"5\",\"num_actions\":4}", "'input_size'");
  expect_einval("{\"input_size\":5.5,\"num_actions\":4}", "'input_size'");
  expect_einval("{\"input_size\":5,\"num_actions\":0}", "'num_actions'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"shared\":1}", "'shared'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"seed\":1.5}", "'seed'");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"seed\":1e300}", "'seed'");
}

static void malformed_documents(void **state) {
  (void)state;
  expect_einval("{\"input_size\":5,", "invalid JSON");
  expect_einval("[5, 4]", "expected a JSON object");
  expect_einval("{\"input_size\":5,\"num_actions\":4,\"input_size\":6}",
                "'input_size' given twice");
  expect_einval(NULL, "NULL");
}

static uint64_t count_of(const char *config) {
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, config);
  ch_network_spec spec;
  vt->spec(net, &spec);
  vt->destroy(net);
  return spec.param_count;
}

static void defaults_and_param_counts(void **state) {
  (void)state;
  const ch_network_vtable *vt = mlp_open();
  void *net = mlp_new(vt, "{\"input_size\":5,\"num_actions\":4}");
  ch_network_spec spec;
  vt->spec(net, &spec);
  assert_int_equal(spec.input_size, 5);
  assert_int_equal(spec.policy_size, 4);
  /* hidden [64, 64], separate trunks */
  uint64_t trunk = 5 * 64 + 64 + 64 * 64 + 64;
  assert_int_equal(spec.param_count, 2 * trunk + 64 * 4 + 4 + 64 + 1);
  vt->destroy(net);
  assert_int_equal(count_of("{\"input_size\":5,\"num_actions\":4,\"shared\":true}"),
                   trunk + 64 * 4 + 4 + 64 + 1);
  assert_int_equal(count_of("{\"input_size\":5,\"num_actions\":4,\"hidden\":[]}"),
                   5 * 4 + 4 + 5 + 1);
  assert_int_equal(count_of("{\"input_size\":5,\"num_actions\":4,\"hidden\":[7,6]}"), 215);
  assert_int_equal(count_of("{\"input_size\":2,\"num_actions\":1,\"hidden\":[1,1,1,1,1,1,1,1],"
                            "\"activation\":\"relu\",\"shared\":false,\"seed\":-7}"),
                   2 * (3 + 7 * 2) + 2 + 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(missing_required_keys),
      cmocka_unit_test(unknown_key_is_named),
      cmocka_unit_test(hidden_must_be_an_array_of_widths),
      cmocka_unit_test(activation_must_be_tanh_or_relu),
      cmocka_unit_test(scalar_keys_are_checked),
      cmocka_unit_test(malformed_documents),
      cmocka_unit_test(defaults_and_param_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
