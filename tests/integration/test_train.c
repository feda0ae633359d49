/* test_train.c -- trains for a few iterations in one process and checks what was stored. */
#include "evaluate.h"
#include "train_test.h"

/* A short training script in the temp home, with the given reward file name. */
static void write_script(const char *name, const char *model, const char *reward, int iterations) {
  char path[512], text[2048];
  snprintf(path, sizeof path, "%s/%s", home, name);
  snprintf(text, sizeof text,
           "return {\n"
           "  model = '%s', track = 'bayside', reward = '%s',\n"
           "  action_space = action_grid({-30, 0, 30}, {1.0, 2.0}),\n"
           "  network = { hidden = {16, 16} },\n"
           "  hyperparameters = { num_episodes_between_training = 8, num_epochs = 2 },\n"
           "  stop = { max_iterations = %d },\n"
           "  workers = 2, cars_per_worker = 4, segment_steps = 32, max_steps = 300,\n"
           "}\n",
           model, reward, iterations);
  write_file(path, text);
}

static int setup(void **state) {
  (void)state;
  make_home();
  write_file(strcat(strcpy((char[512]){0}, home), "/reward.lua"),
             "function reward_function(params)\n"
             "  return params.progress / 100 + (params.all_wheels_on_track and 0.1 or 0)\n"
             "end\n");
  return 0;
}

static void test_train_stores_checkpoints_and_evaluates(void **state) {
  (void)state;
  write_script("train.lua", "tiny", "reward.lua", 3);
  ch_train_summary sum;
  ch_error err = {0, ""};
  int rc = train("train.lua", 0, &sum, &err);
  if (rc != CH_OK) fail_msg("train: %s", err.message);
  assert_int_equal(sum.iterations, 3);
  assert_true(sum.env_steps > 0);
  assert_int_equal(sum.episodes, 24);

  ch_session s;
  open_session(&s);
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(s.cat, "tiny", &m, &err), CH_OK);
  assert_string_equal(m.status, "ready");
  assert_string_equal(m.track, "bayside");
  assert_int_equal(strlen(m.reward_sha256), 64);
  ch_model_info_free(&m);
  assert_int_equal(checkpoints(&s, "tiny"), 3);

  void *data;
  size_t len;
  assert_int_equal(s.st->get(s.st_h, "models/tiny/latest.json", &data, &len, &err), CH_OK);
  assert_non_null(strstr((char *)data, "000002.ckpt"));
  s.st->free_data(s.st_h, data);
  assert_int_equal(s.st->get(s.st_h, "models/tiny/model_metadata.json", &data, &len, &err), CH_OK);
  assert_non_null(strstr((char *)data, "\"action_space_type\":\t\"discrete\""));
  s.st->free_data(s.st_h, data);

  ch_eval_options eo;
  ch_eval_defaults(&eo);
  eo.max_seconds = 20;
  ch_eval_result r;
  char track[64];
  rc = ch_evaluate_model(&s, "tiny", NULL, &eo, &r, track, sizeof track, &err);
  if (rc != CH_OK) fail_msg("evaluate: %s", err.message);
  assert_int_equal(r.trials, 3);
  assert_string_equal(track, "bayside");
  for (int i = 0; i < 3; i++) {
    assert_true(r.trial[i].progress >= 0 && r.trial[i].progress <= 100);
    assert_true(r.trial[i].steps > 0);
  }
  ch_session_close(&s);
}

static void test_existing_model_is_not_overwritten(void **state) {
  (void)state;
  ch_train_summary sum;
  ch_error err = {0, ""};
  assert_int_equal(train("train.lua", 0, &sum, &err), CH_ESTATE);
  assert_non_null(strstr(err.message, "already exists"));
  ch_session s;
  open_session(&s);
  assert_int_equal(checkpoints(&s, "tiny"), 3); /* nothing lost */
  ch_session_close(&s);
}

static void test_corrupt_checkpoint_is_reported(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/storage/models/tiny/checkpoints/000002.ckpt", home);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 40, SEEK_SET);
  int c = fgetc(f);
  fseek(f, 40, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
  ch_session s;
  open_session(&s);
  ch_eval_options eo;
  ch_eval_defaults(&eo);
  ch_eval_result r;
  char track[64];
  ch_error err = {0, ""};
  assert_int_equal(ch_evaluate_model(&s, "tiny", NULL, &eo, &r, track, sizeof track, &err),
                   CH_ECORRUPT);
  assert_non_null(strstr(err.message, "models/tiny/checkpoints/000002.ckpt"));
  ch_session_close(&s);
}

static void test_failing_reward_stops_training_and_keeps_checkpoints(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/late_error.lua", home);
  write_file(path, "local calls = 0\n"
                   "function reward_function(params)\n"
                   "  calls = calls + 1\n"
                   "  if calls > 400 then error('reward broke') end\n"
                   "  return 1.0\n"
                   "end\n");
  write_script("late.lua", "tiny", "late_error.lua", 200);
  ch_train_summary sum;
  ch_error err = {0, ""};
  assert_int_equal(train("late.lua", 1, &sum, &err), CH_ESCRIPT);
  assert_non_null(strstr(err.message, "late_error.lua:4:"));
  assert_non_null(strstr(err.message, "reward broke"));
  assert_non_null(strstr(err.message, "step"));
  ch_session s;
  open_session(&s);
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(s.cat, "tiny", &m, &err), CH_OK);
  assert_string_equal(m.status, "failed");
  ch_model_info_free(&m);
  assert_true(checkpoints(&s, "tiny") >= 1);
  ch_loaded_model lm;
  int rc = ch_model_load(&s, "tiny", &lm, &err);
  if (rc != CH_OK) fail_msg("last good checkpoint does not load: %s", err.message);
  ch_loaded_model_free(&s, &lm);
  ch_session_close(&s);
}

static void test_broken_reward_registers_nothing(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/syntax.lua", home);
  write_file(path, "function reward_function(params)\n  return 1 +\nend\n");
  write_script("syntax_train.lua", "tinx", "syntax.lua", 2);
  ch_train_summary sum;
  ch_error err = {0, ""};
  assert_int_equal(train("syntax_train.lua", 0, &sum, &err), CH_ESCRIPT);
  assert_non_null(strstr(err.message, "syntax.lua:3:"));
  ch_session s;
  open_session(&s);
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(s.cat, "tinx", &m, NULL), CH_ENOTFOUND);
  ch_session_close(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train_stores_checkpoints_and_evaluates),
      cmocka_unit_test(test_existing_model_is_not_overwritten),
      cmocka_unit_test(test_corrupt_checkpoint_is_reported),
      cmocka_unit_test(test_failing_reward_stops_training_and_keeps_checkpoints),
      cmocka_unit_test(test_broken_reward_registers_nothing),
  };
  return cmocka_run_group_tests(tests, setup, remove_home);
}
