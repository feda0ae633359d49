/* test_config.c -- training scripts: the default one loads, and each mistake is named precisely. */
#include "unit_test.h"

#include "config.h"

typedef struct fixture {
  char dir[512];
  ch_train_config cfg;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  unit_mkdtemp(f->dir, sizeof f->dir, "config");
  char path[1024];
  unit_write(f->dir, "r.lua", "function reward_function(params) return 1.0 end\n", path,
             sizeof path);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  unit_rmdir(f->dir);
  free(f);
  return 0;
}

/* The settings every test script starts from; body is spliced into the returned table. */
#define BASE                                                                                       \
  "reward = \"r.lua\", track = \"bayside\", action_space = {{steering_angle = 0, speed = 1}}"

static int load(fixture *f, const char *text, char *path, ch_error *err) {
  static int serial;
  char name[32];
  snprintf(name, sizeof name, "train%d.lua", ++serial);
  unit_write(f->dir, name, text, path, 1024);
  return ch_config_load(path, &f->cfg, err);
}

/* Load text expecting rc and a message naming the script and containing part. */
static void expect_fails(fixture *f, const char *text, int rc, const char *part) {
  char path[1024];
  ch_error err = {0, ""};
  unit_expect(load(f, text, path, &err), rc, err);
  assert_int_equal(err.code, rc);
  unit_assert_contains(err.message, path);
  unit_assert_contains(err.message, part);
}

static void test_default_script(void **state) {
  fixture *f = *state;
  ch_error err = {0, ""};
  const char *script = CHICANE_SOURCE_DIR "/scripts/default.lua";
  unit_check(ch_config_load(script, &f->cfg, &err), err);
  const ch_train_config *c = &f->cfg;
  assert_string_equal(c->script, script);
  assert_string_equal(c->model, "bayside-ppo");
  assert_string_equal(c->track, "bayside");
  unit_assert_contains(c->track_path, "tracks/bayside.track");
  assert_int_equal(access(c->track_path, R_OK), 0);
  unit_assert_contains(c->reward, "rewards/progress.lua");
  assert_int_equal(access(c->reward, R_OK), 0);
  assert_int_equal(c->num_actions, 10);
  /* action_grid: speeds outer, steering inner */
  unit_assert_near(c->actions[0].steering_angle, -30, 0);
  unit_assert_near(c->actions[0].speed, 1.5, 0);
  unit_assert_near(c->actions[4].steering_angle, 30, 0);
  unit_assert_near(c->actions[5].steering_angle, -30, 0);
  unit_assert_near(c->actions[5].speed, 3.0, 0);
  assert_int_equal(c->num_hidden, 2);
  assert_int_equal(c->hidden[1], 64);
  assert_string_equal(c->activation, "tanh");
  assert_int_equal(c->hp.batch_size, 64);
  assert_int_equal(c->hp.num_epochs, 10);
  unit_assert_near(c->hp.lr, 0.0003, 0);
  unit_assert_near(c->hp.discount_factor, 0.999, 0);
  assert_int_equal(c->hp.loss_type, CH_LOSS_HUBER);
  assert_int_equal(c->hp.num_episodes_between_training, 32);
  assert_int_equal(c->stop.eval_laps, 3);
  unit_assert_near(c->stop.max_seconds, 600, 0);
  assert_int_equal(c->workers, 2);
  assert_int_equal(c->cars_per_worker, 8);
  assert_int_equal(c->segment_steps, 128);
  assert_int_equal(c->max_steps, 1500);
  unit_assert_near(c->start_advance, 0.05, 0);
  assert_int_equal(c->num_sensors, 1);
  assert_string_equal(c->sensors[0], "state");
  assert_string_equal(c->algorithm, "clipped_ppo");
  assert_string_equal(c->network_plugin, "mlp");
  unit_assert_near(c->start_offset, 0, 0);
  assert_int_equal(c->alternate_direction, 0);
}

static void test_minimal_script(void **state) {
  fixture *f = *state;
  char path[1024], want[1100];
  ch_error err = {0, ""};
  unit_check(load(f, "return { " BASE " }\n", path, &err), err);
  snprintf(want, sizeof want, "%s/r.lua", f->dir);
  assert_string_equal(f->cfg.reward, want);
  assert_int_equal(f->cfg.num_actions, 1);
  /* Everything else keeps its default: DeepRacer's console hyperparameters, a 5%
  ** start advance, the embedded plugins. */
  const ch_train_config *c = &f->cfg;
  assert_int_equal(c->hp.batch_size, 64);
  assert_int_equal(c->hp.num_epochs, 10);
  unit_assert_near(c->hp.lr, 0.0003, 0);
  unit_assert_near(c->hp.beta_entropy, 0.01, 0);
  unit_assert_near(c->hp.discount_factor, 0.999, 0);
  assert_int_equal(c->hp.loss_type, CH_LOSS_HUBER);
  assert_int_equal(c->hp.num_episodes_between_training, 20);
  unit_assert_near(c->start_advance, 0.05, 0);
  assert_string_equal(c->env_plugin, "sim2d");
  assert_string_equal(c->network_plugin, "mlp");
  assert_string_equal(c->buffer_plugin, "memory");
  assert_string_equal(c->storage_plugin, "local");
  assert_string_equal(c->track, "bayside");
}

static void test_unknown_key(void **state) {
  expect_fails(*state, "return { " BASE ", colour = 'red' }\n", CH_EINVAL, "colour: unknown key");
}

static void test_unknown_hyperparameter(void **state) {
  expect_fails(*state, "return { " BASE ", hyperparameters = { lr = 0.001, gama = 0.9 } }\n",
               CH_EINVAL, "hyperparameters.gama");
}

static void test_negative_lr(void **state) {
  expect_fails(*state, "return { " BASE ", hyperparameters = { lr = -1 } }\n", CH_EINVAL,
               "hyperparameters.lr");
}

static void test_bad_loss_type(void **state) {
  fixture *f = *state;
  expect_fails(f, "return { " BASE ", hyperparameters = { loss_type = 'l1' } }\n", CH_EINVAL,
               "hyperparameters.loss_type");
  char path[1024];
  ch_error err = {0, ""};
  unit_check(load(f,
                  "return { " BASE ", hyperparameters = { loss_type = 'mean squared error' } }\n",
                  path, &err),
             err);
  assert_int_equal(f->cfg.hp.loss_type, CH_LOSS_MSE);
}

static void test_duplicate_action(void **state) {
  expect_fails(*state,
               "return { reward = 'r.lua', track = 'bayside', action_space = {\n"
               "  {steering_angle = 10, speed = 1}, {steering_angle = -10, speed = 1},\n"
               "  {steering_angle = 10, speed = 1} } }\n",
               CH_EINVAL, "action_space[3]: duplicates");
}

static void test_steering_range(void **state) {
  expect_fails(*state,
               "return { reward = 'r.lua', track = 'bayside', action_space = {\n"
               "  {steering_angle = 0, speed = 1}, {steering_angle = 45, speed = 1} } }\n",
               CH_EINVAL, "action_space[2]: steering_angle");
  expect_fails(*state,
               "return { reward = 'r.lua', track = 'bayside', action_space = {\n"
               "  {steering_angle = 0, speed = 5} } }\n",
               CH_EINVAL, "action_space[1]: speed");
  expect_fails(*state,
               "return { reward = 'r.lua', track = 'bayside', action_space = {\n"
               "  {steering_angle = 0} } }\n",
               CH_EINVAL, "action_space[1]: needs both");
}

static void test_missing_reward(void **state) {
  expect_fails(*state,
               "return { track = 'bayside', action_space = {{steering_angle = 0, speed = 1}} }\n",
               CH_EINVAL, "reward: missing");
}

static void test_missing_actions(void **state) {
  expect_fails(*state, "return { reward = 'r.lua' }\n", CH_EINVAL, "action_space");
}

static void test_reward_not_found(void **state) {
  fixture *f = *state;
  expect_fails(f,
               "return { reward = 'nope.lua', track = 'bayside', action_space = {{steering_angle = "
               "0, speed = 1}} }\n",
               CH_ENOTFOUND, "reward: nope.lua: no such file");
  /* the message says where it looked */
  char path[1024];
  ch_error err = {0, ""};
  unit_expect(load(f,
                   "return { reward = 'nope.lua', track = 'bayside', action_space = "
                   "{{steering_angle = 0, speed = 1}} }\n",
                   path, &err),
              CH_ENOTFOUND, err);
  unit_assert_contains(err.message, f->dir);
}

static void test_unknown_track(void **state) {
  expect_fails(*state,
               "return { reward = 'r.lua', track = 'nowhere', action_space = {{steering_angle = 0, "
               "speed = 1}} }\n",
               CH_ENOTFOUND, "track: no track 'nowhere'");
}

static void test_script_error(void **state) {
  expect_fails(*state, "local t = nil\nlocal x = 1\nreturn { reward = t.path }\n", CH_ESCRIPT,
               ".lua:3:");
}

static void test_syntax_error(void **state) {
  expect_fails(*state, "return {\n  reward = 'r.lua'\n  track = 'bayside'\n}\n", CH_ESCRIPT,
               ".lua:3:");
}

static void test_not_a_table(void **state) {
  expect_fails(*state, "return 5\n", CH_EINVAL, "must return a table");
  expect_fails(*state, "local x = 1\n", CH_EINVAL, "must return a table");
}

static void test_wrong_types(void **state) {
  expect_fails(*state, "return { " BASE ", workers = 'two' }\n", CH_EINVAL,
               "workers: must be an integer");
  expect_fails(*state, "return { " BASE ", workers = 1.5 }\n", CH_EINVAL,
               "workers: must be an integer");
  expect_fails(*state, "return { " BASE ", workers = 0 }\n", CH_EINVAL, "workers");
  expect_fails(*state, "return { " BASE ", network = 5 }\n", CH_EINVAL, "network: must be a table");
  expect_fails(*state, "return { " BASE ", network = { hidden = {64, 'x'} } }\n", CH_EINVAL,
               "network.hidden");
  expect_fails(*state, "return { " BASE ", stop = { max_secs = 1 } }\n", CH_EINVAL,
               "stop.max_secs: unknown key");
  expect_fails(*state, "return { " BASE ", stop = { max_seconds = 0 } }\n", CH_EINVAL,
               "stop: needs at least one stop condition");
  expect_fails(*state, "return { " BASE ", plugins = { env = 3 } }\n", CH_EINVAL,
               "plugins.env: must be a string");
}

static void test_action_grid(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_error err = {0, ""};
  unit_check(load(f,
                  "return { reward = 'r.lua', track = 'bayside',\n"
                  "  action_space = action_grid({-10, 0, 10}, {1, 2.5}) }\n",
                  path, &err),
             err);
  static const double steer[6] = {-10, 0, 10, -10, 0, 10}, speed[6] = {1, 1, 1, 2.5, 2.5, 2.5};
  assert_int_equal(f->cfg.num_actions, 6);
  for (int i = 0; i < 6; i++) {
    if (f->cfg.actions[i].steering_angle != steer[i] || f->cfg.actions[i].speed != speed[i])
      fail_msg("action %d is {%g, %g}, expected {%g, %g}", i, f->cfg.actions[i].steering_angle,
               f->cfg.actions[i].speed, steer[i], speed[i]);
  }
}

static void test_script_is_sandboxed(void **state) {
  expect_fails(*state, "os.execute('true')\nreturn { " BASE " }\n", CH_ESCRIPT, ".lua:1:");
  expect_fails(*state, "while true do end\n", CH_ESCRIPT, "instruction budget");
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_default_script),   T(test_minimal_script),
      T(test_unknown_key),      T(test_unknown_hyperparameter),
      T(test_negative_lr),      T(test_bad_loss_type),
      T(test_duplicate_action), T(test_steering_range),
      T(test_missing_reward),   T(test_missing_actions),
      T(test_reward_not_found), T(test_unknown_track),
      T(test_script_error),     T(test_syntax_error),
      T(test_not_a_table),      T(test_wrong_types),
      T(test_action_grid),      T(test_script_is_sandboxed),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
