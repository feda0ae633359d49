/* test_metadata.c -- DeepRacer's model_metadata.json and hyperparameters.json: fixtures, round
** trips, errors. */
#include "unit_test.h"

#include "metadata.h"

#define FIX(name) CH_FIXTURES "/" name

static ch_train_config *fresh(void) {
  ch_train_config *c = malloc(sizeof *c);
  assert_non_null(c);
  ch_config_defaults(c);
  snprintf(c->script, sizeof c->script, "train.lua");
  return c;
}

static void test_console_camera_file(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  unit_check(ch_metadata_load_model(FIX("camera_discrete_model_metadata.json"), c, &err), err);
  assert_int_equal(c->action_space_type, CH_ACTION_SPACE_DISCRETE);
  assert_int_equal(c->num_actions, 10);
  unit_assert_near(c->actions[0].steering_angle, -30, 0);
  unit_assert_near(c->actions[0].speed, 0.6, 0);
  unit_assert_near(c->actions[5].steering_angle, 0, 0);
  unit_assert_near(c->actions[5].speed, 1.2, 0);
  assert_int_equal(c->num_sensors, 1);
  assert_string_equal(c->sensors[0], "camera");
  assert_string_equal(c->network_plugin, "cnn");
  assert_string_equal(c->architecture, "shallow");
  assert_int_equal(c->shared, 1);
  assert_string_equal(c->algorithm, "clipped_ppo");
  free(c);
}

static void test_console_sac_file(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  unit_check(ch_metadata_load_model(FIX("stereo_lidar_sac_model_metadata.json"), c, &err), err);
  assert_int_equal(c->action_space_type, CH_ACTION_SPACE_CONTINUOUS);
  assert_int_equal(c->num_actions, 0);
  unit_assert_near(c->action_ranges.steering_angle.low, -25, 0);
  unit_assert_near(c->action_ranges.steering_angle.high, 25, 0);
  unit_assert_near(c->action_ranges.speed.low, 0.8, 0);
  unit_assert_near(c->action_ranges.speed.high, 3.5, 0);
  assert_int_equal(c->num_sensors, 2);
  assert_string_equal(c->sensors[0], "stereo");
  assert_string_equal(c->sensors[1], "lidar");
  assert_string_equal(c->architecture, "deep");
  assert_string_equal(c->algorithm, "sac");
  free(c);
}

/* An early file: only the action space and a numeric version; the rest keeps its value. */
static void test_old_file(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  unit_check(ch_metadata_load_model(FIX("version2_model_metadata.json"), c, &err), err);
  assert_int_equal(c->num_actions, 3);
  assert_string_equal(c->sensors[0], "state");
  assert_string_equal(c->network_plugin, "mlp");
  free(c);
}

static void test_hyperparameter_files(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  unit_check(ch_metadata_load_hyperparameters(FIX("console_hyperparameters.json"), c, &err), err);
  const ch_hyperparameters *hp = &c->hp;
  assert_int_equal(hp->batch_size, 32);
  unit_assert_near(hp->beta_entropy, 0.005, 0);
  unit_assert_near(hp->discount_factor, 0.99, 0);
  unit_assert_near(hp->e_greedy_value, 0.05, 0);
  assert_int_equal(hp->epsilon_steps, 10000);
  assert_int_equal(hp->exploration_type, CH_EXPLORATION_CATEGORICAL);
  assert_int_equal(hp->loss_type, CH_LOSS_MSE);
  unit_assert_near(hp->lr, 0.0001, 0);
  assert_int_equal(hp->num_episodes_between_training, 40);
  assert_int_equal(hp->num_epochs, 5);
  assert_int_equal(hp->stack_size, 1);
  unit_assert_near(hp->term_cond_avg_score, 350, 0);
  assert_int_equal(hp->term_cond_max_episodes, 1000);
  unit_assert_near(hp->sac_alpha, 0.2, 0);
  /* SageMaker's strings; a key the file leaves out (sac_alpha) keeps its value. */
  c->hp.sac_alpha = 0.7;
  unit_check(ch_metadata_load_hyperparameters(FIX("sagemaker_hyperparameters.json"), c, &err), err);
  assert_int_equal(hp->batch_size, 128);
  unit_assert_near(hp->lr, 3e-4, 0);
  assert_int_equal(hp->exploration_type, CH_EXPLORATION_E_GREEDY);
  assert_int_equal(hp->loss_type, CH_LOSS_HUBER);
  assert_int_equal(hp->term_cond_max_episodes, 100000);
  unit_assert_near(hp->sac_alpha, 0.7, 0);
  free(c);
}

/* The defaults write DeepRacer's console values under every name. */
static void test_write_defaults(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  cJSON *j = ch_metadata_hyperparameters_json(c);
  char *text = cJSON_PrintUnformatted(j);
  assert_string_equal(text, "{\"batch_size\":64,\"beta_entropy\":0.01,\"discount_factor\":0.999,"
                            "\"e_greedy_value\":0.05,\"epsilon_steps\":10000,\"exploration_type\":"
                            "\"categorical\",\"loss_type\":\"huber\",\"lr\":0.0003,"
                            "\"num_episodes_between_training\":20,\"num_epochs\":10,"
                            "\"stack_size\":1,\"term_cond_avg_score\":0,"
                            "\"term_cond_max_episodes\":0,\"sac_alpha\":0.2}");
  cJSON_free(text);
  cJSON_Delete(j);
  c->num_actions = 2;
  c->actions[0] = (ch_action){-10, 1};
  c->actions[1] = (ch_action){10, 1};
  j = ch_metadata_model_json(c);
  text = cJSON_PrintUnformatted(j);
  assert_string_equal(text, "{\"action_space\":[{\"steering_angle\":-10,\"speed\":1,\"index\":0},"
                            "{\"steering_angle\":10,\"speed\":1,\"index\":1}],"
                            "\"action_space_type\":\"discrete\",\"sensor\":[\"STATE\"],"
                            "\"neural_network\":\"MLP_64_64\",\"training_algorithm\":"
                            "\"clipped_ppo\",\"version\":\"5\"}");
  cJSON_free(text);
  cJSON_Delete(j);
  free(c);
}

static void expect_same_hp(const ch_hyperparameters *a, const ch_hyperparameters *b) {
  assert_int_equal(a->batch_size, b->batch_size);
  assert_int_equal(a->num_epochs, b->num_epochs);
  unit_assert_near(a->lr, b->lr, 0);
  unit_assert_near(a->beta_entropy, b->beta_entropy, 0);
  unit_assert_near(a->discount_factor, b->discount_factor, 0);
  assert_int_equal(a->loss_type, b->loss_type);
  assert_int_equal(a->num_episodes_between_training, b->num_episodes_between_training);
  unit_assert_near(a->e_greedy_value, b->e_greedy_value, 0);
  assert_int_equal(a->epsilon_steps, b->epsilon_steps);
  assert_int_equal(a->exploration_type, b->exploration_type);
  assert_int_equal(a->stack_size, b->stack_size);
  unit_assert_near(a->term_cond_avg_score, b->term_cond_avg_score, 0);
  assert_int_equal(a->term_cond_max_episodes, b->term_cond_max_episodes);
  unit_assert_near(a->sac_alpha, b->sac_alpha, 0);
}

/* Write a config's files, read them into a fresh config, compare what they carry. */
static void round_trip(const ch_train_config *c) {
  cJSON *m = ch_metadata_model_json(c), *h = ch_metadata_hyperparameters_json(c);
  char *mt = cJSON_Print(m), *ht = cJSON_Print(h);
  ch_train_config *b = fresh();
  ch_error err = {0, ""};
  unit_check(ch_metadata_read_model(mt, "model_metadata.json", b, &err), err);
  unit_check(ch_metadata_read_hyperparameters(ht, "hyperparameters.json", b, &err), err);
  assert_int_equal(b->action_space_type, c->action_space_type);
  assert_int_equal(b->num_actions, c->num_actions);
  assert_memory_equal(b->actions, c->actions, sizeof(ch_action) * (size_t)c->num_actions);
  if (c->action_space_type == CH_ACTION_SPACE_CONTINUOUS)
    assert_memory_equal(&b->action_ranges, &c->action_ranges, sizeof c->action_ranges);
  assert_int_equal(b->num_sensors, c->num_sensors);
  for (int i = 0; i < c->num_sensors; i++) assert_string_equal(b->sensors[i], c->sensors[i]);
  assert_string_equal(b->network_plugin, c->network_plugin);
  if (strcmp(c->network_plugin, "cnn") == 0) {
    assert_string_equal(b->architecture, c->architecture);
  } else { /* an MLP's name carries its layers */
    assert_int_equal(b->num_hidden, c->num_hidden);
    assert_memory_equal(b->hidden, c->hidden, sizeof(int) * (size_t)c->num_hidden);
  }
  assert_string_equal(b->algorithm, c->algorithm);
  expect_same_hp(&b->hp, &c->hp);
  /* and writing the copy gives the same text */
  cJSON *m2 = ch_metadata_model_json(b);
  char *mt2 = cJSON_Print(m2);
  assert_string_equal(mt, mt2);
  cJSON_free(mt2);
  cJSON_Delete(m2);
  cJSON_free(mt);
  cJSON_free(ht);
  cJSON_Delete(m);
  cJSON_Delete(h);
  free(b);
}

static void test_round_trips(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  /* discrete, state sensor, a 3-layer MLP, every hyperparameter off its default */
  c->num_actions = 3;
  c->actions[0] = (ch_action){-22.5, 0.7};
  c->actions[1] = (ch_action){0, 3.9};
  c->actions[2] = (ch_action){17.25, 1.3};
  c->num_hidden = 3;
  c->hidden[0] = 128, c->hidden[1] = 64, c->hidden[2] = 32;
  c->hp = (ch_hyperparameters){
      256, 4,     0.00125, 0.03, 0.97, CH_LOSS_MSE, 15, 0.2, 2500, CH_EXPLORATION_E_GREEDY,
      1,   123.5, 4321,    0.35, 0.5,  0.02};
  round_trip(c);
  /* continuous SAC with stereo cameras and a sector lidar on the deep CNN */
  c->action_space_type = CH_ACTION_SPACE_CONTINUOUS;
  c->num_actions = 0;
  c->action_ranges = (ch_action_ranges){{-28, 12.5}, {0.25, 3.75}};
  c->num_sensors = 2;
  snprintf(c->sensors[0], sizeof c->sensors[0], "stereo");
  snprintf(c->sensors[1], sizeof c->sensors[1], "sector_lidar");
  snprintf(c->network_plugin, sizeof c->network_plugin, "cnn");
  snprintf(c->architecture, sizeof c->architecture, "deep");
  snprintf(c->algorithm, sizeof c->algorithm, "sac");
  c->hp.exploration_type = CH_EXPLORATION_CATEGORICAL;
  c->hp.stack_size = 3;
  round_trip(c);
  snprintf(c->architecture, sizeof c->architecture, "deeper");
  round_trip(c);
  free(c);
}

static void read_fails(int model, const char *text, const char *part) {
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  int rc = model ? ch_metadata_read_model(text, "f.json", c, &err)
                 : ch_metadata_read_hyperparameters(text, "f.json", c, &err);
  if (rc != CH_EINVAL) fail_msg("%s -> %d, expected CH_EINVAL (%s)", text, rc, err.message);
  if (strncmp(err.message, "f.json", 6) != 0 || !strstr(err.message, part))
    fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.message, part);
  free(c);
}

static void test_model_errors(void **state) {
  (void)state;
  read_fails(1, "{\"sensor\": [\"STATE\"], \"colour\": \"red\"}", "f.json: colour: unknown key");
  read_fails(1, "{\"sensor\": [\"RADAR\"]}", "f.json: sensor[0]: \"RADAR\" is not a sensor");
  read_fails(1, "{\"sensor\": []}", "f.json: sensor: expected a list of 1 to 4");
  read_fails(1, "{\"neural_network\": \"RESNET\"}", "f.json: neural_network: \"RESNET\" is not");
  read_fails(1, "{\"neural_network\": \"MLP_64_x\"}", "neural_network: \"MLP_64_x\"");
  read_fails(1, "{\"training_algorithm\": \"dqn\"}", "f.json: training_algorithm: must be");
  read_fails(1, "{\"action_space_type\": \"box\"}", "f.json: action_space_type: must be");
  read_fails(1,
             "{\"action_space\": [{\"steering_angle\": 0, \"speed\": 1}],"
             " \"action_space_type\": \"continuous\"}",
             "f.json: action_space: is a list but action_space_type says \"continuous\"");
  read_fails(1, "{\"action_space\": [{\"steering_angle\": 0, \"speed\": 1, \"index\": 1}]}",
             "f.json: action_space[0]: index must be 0");
  read_fails(1, "{\"preprocess_type\": \"RGB\"}", "f.json: preprocess_type:");
  read_fails(1, "{\"version\": [5]}", "f.json: version: must be a string or a number");
  read_fails(1, "{\n  \"sensor\": [\"STATE\"],\n  \"version\": \n}", "f.json:4: not valid JSON");
  read_fails(1, "[1, 2]", "f.json: must hold a JSON object");
}

static void test_hyperparameter_errors(void **state) {
  (void)state;
  read_fails(0, "{\"lr\": 0.001, \"gamma\": 0.9}", "f.json: gamma: unknown key");
  read_fails(0, "{\"lr\": 0}", "f.json: lr: must be a number in (0, 1]");
  read_fails(0, "{\"lr\": \"fast\"}", "f.json: lr: must be a number");
  read_fails(0, "{\"batch_size\": 32.5}", "f.json: batch_size: must be an integer");
  read_fails(0, "{\"num_epochs\": 0}", "f.json: num_epochs: must be an integer in [1, 100]");
  read_fails(0, "{\"loss_type\": \"l1\"}", "f.json: loss_type: must be \"huber\" or");
  read_fails(0, "{\"exploration_type\": \"greedy\"}", "f.json: exploration_type: must be");
  read_fails(0, "{\"stack_size\": 9}", "f.json: stack_size:");
  /* nothing is changed by a file with an error in it */
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  assert_int_equal(
      ch_metadata_read_hyperparameters("{\"batch_size\": 16, \"lr\": -1}", "f.json", c, &err),
      CH_EINVAL);
  assert_int_equal(c->hp.batch_size, 64);
  free(c);
}

static void test_missing_file(void **state) {
  (void)state;
  ch_train_config *c = fresh();
  ch_error err = {0, ""};
  unit_expect(ch_metadata_load_model(FIX("absent.json"), c, &err), CH_ENOTFOUND, err);
  unit_assert_contains(err.message, "absent.json");
  free(c);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(ch_metadata_sensor_name("camera"), "FRONT_FACING_CAMERA");
  assert_string_equal(ch_metadata_sensor_name("stereo"), "STEREO_CAMERAS");
  assert_string_equal(ch_metadata_sensor_name("sector_lidar"), "SECTOR_LIDAR");
  assert_string_equal(ch_metadata_sensor_name("state"), "STATE");
  assert_null(ch_metadata_sensor_name("radar"));
  assert_string_equal(ch_metadata_env_sensor("LIDAR"), "lidar");
  assert_null(ch_metadata_env_sensor("DISCRETIZED_SECTOR_LIDAR"));
  ch_train_config *c = fresh();
  char nn[64];
  ch_metadata_network_name(c, nn, sizeof nn);
  assert_string_equal(nn, "MLP_64_64");
  c->num_hidden = 0;
  ch_metadata_network_name(c, nn, sizeof nn);
  assert_string_equal(nn, "MLP");
  snprintf(c->network_plugin, sizeof c->network_plugin, "cnn");
  snprintf(c->architecture, sizeof c->architecture, "deeper");
  ch_metadata_network_name(c, nn, sizeof nn);
  assert_string_equal(nn, "DEEP_CONVOLUTIONAL_NETWORK_DEEP");
  /* models written before the "_" spelling ("MLP_64x64") still read */
  assert_int_equal(ch_metadata_read_model("{\"neural_network\": \"MLP_32x16\"}", "f", c, NULL),
                   CH_OK);
  assert_int_equal(c->num_hidden, 2);
  assert_int_equal(c->hidden[1], 16);
  assert_string_equal(c->network_plugin, "mlp");
  free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_console_camera_file),
      cmocka_unit_test(test_console_sac_file),
      cmocka_unit_test(test_old_file),
      cmocka_unit_test(test_hyperparameter_files),
      cmocka_unit_test(test_write_defaults),
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_model_errors),
      cmocka_unit_test(test_hyperparameter_errors),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
