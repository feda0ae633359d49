/* test_config.c -- every key of a training script, valid and invalid, and the JSON built from it.
 */
#include "unit_test.h"

#include "config.h"

#include <glob.h>

typedef struct fixture {
  char dir[512];
  ch_train_config cfg;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  unit_mkdtemp(f->dir, sizeof f->dir, "frontend-config");
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

#define BASE "reward = 'r.lua', action_space = {{steering_angle = 0, speed = 1}}"

static int load(fixture *f, const char *text, char *path, ch_error *err) {
  static int serial;
  char name[32];
  snprintf(name, sizeof name, "train%d.lua", ++serial);
  unit_write(f->dir, name, text, path, 1024);
  return ch_config_load(path, &f->cfg, err);
}

static void load_ok(fixture *f, const char *text) {
  char path[1024];
  ch_error err = {0, ""};
  int rc = load(f, text, path, &err);
  if (rc != CH_OK) fail_msg("script:\n%s\nfailed (%d): %s", text, rc, err.message);
}

/* The returned table body (spliced after BASE) must fail with rc, naming the script and part. */
static void fails(fixture *f, const char *body, int rc, const char *part) {
  char text[4096], path[1024];
  snprintf(text, sizeof text, "return { " BASE ", %s }\n", body);
  ch_error err = {0, ""};
  int got = load(f, text, path, &err);
  if (got != rc) fail_msg("{ %s } -> %d, expected %d; message: %s", body, got, rc, err.message);
  if (!strstr(err.message, path) || !strstr(err.message, part))
    fail_msg("{ %s }: message \"%s\" does not name the script and \"%s\"", body, err.message, part);
}

/* ---- valid keys -------------------------------------------------------------------------- */

static void test_every_key(void **state) {
  fixture *f = *state;
  load_ok(f, "return {\n"
             "  model = 'everything', tracks = {'oval', 'bayside'}, reward = 'r.lua',\n"
             "  action_space = {steering_angle = {-20, 25}, speed = {low = 0.5, high = 3}},\n"
             "  sensor = {'camera', 'lidar'}, camera = {downscale = 2}, lidar = {max_range = 6},\n"
             "  network = {plugin = 'cnn', architecture = 'deep', shared = false,\n"
             "             hidden = {32}, activation = 'relu'},\n"
             "  algorithm = 'sac',\n"
             "  hyperparameters = {batch_size = 128, num_epochs = 3, lr = 0.001,\n"
             "    beta_entropy = 0.02, discount_factor = 0.99, loss_type = 'mean squared error',\n"
             "    num_episodes_between_training = 8, e_greedy_value = 0.1, epsilon_steps = 500,\n"
             "    exploration_type = 'categorical', stack_size = 2, term_cond_avg_score = 300,\n"
             "    term_cond_max_episodes = 900, sac_alpha = 0.3},\n"
             "  race_type = 'object_avoidance',\n"
             "  objects = {count = 2, placement = 'fixed',\n"
             "             positions = {{progress = 30, lane = 'left'}, {progress = 70, lane = "
             "'right'}}},\n"
             "  start = {advance = 0.1, offset = 0.05, alternate_direction = true},\n"
             "  stop = {max_seconds = 60, max_episodes = 500, max_iterations = 9,\n"
             "          avg_progress = 80, eval_laps = 2},\n"
             "  clone_from = 'older-model',\n"
             "  on_iteration = function(stats, training) end,\n"
             "  workers = 3, cars_per_worker = 5, segment_steps = 64, max_steps = 900, seed = 42,\n"
             "  plugins = {env = 'sim2d', buffer = 'memory', storage = 'local'},\n"
             "}\n");
  const ch_train_config *c = &f->cfg;
  assert_string_equal(c->model, "everything");
  assert_int_equal(c->num_tracks, 2);
  assert_string_equal(c->tracks[0], "oval");
  assert_string_equal(c->tracks[1], "bayside");
  assert_string_equal(c->track, "oval");
  unit_assert_contains(c->track_paths[1], "tracks/bayside.track");
  assert_string_equal(c->track_path, c->track_paths[0]);
  assert_int_equal(c->action_space_type, CH_ACTION_SPACE_CONTINUOUS);
  assert_int_equal(c->num_actions, 0);
  unit_assert_near(c->action_ranges.steering_angle.low, -20, 0);
  unit_assert_near(c->action_ranges.steering_angle.high, 25, 0);
  unit_assert_near(c->action_ranges.speed.low, 0.5, 0);
  unit_assert_near(c->action_ranges.speed.high, 3, 0);
  assert_int_equal(c->num_sensors, 2);
  assert_string_equal(c->sensors[0], "camera");
  assert_string_equal(c->sensors[1], "lidar");
  assert_int_equal(c->camera_downscale, 2);
  assert_string_equal(c->lidar_json, "{\"max_range\":6}");
  assert_string_equal(c->network_plugin, "cnn");
  assert_string_equal(c->architecture, "deep");
  assert_int_equal(c->shared, 0);
  assert_int_equal(c->num_hidden, 1);
  assert_int_equal(c->hidden[0], 32);
  assert_string_equal(c->activation, "relu");
  assert_string_equal(c->algorithm, "sac");
  const ch_hyperparameters *hp = &c->hp;
  assert_int_equal(hp->batch_size, 128);
  assert_int_equal(hp->num_epochs, 3);
  unit_assert_near(hp->lr, 0.001, 0);
  unit_assert_near(hp->beta_entropy, 0.02, 0);
  unit_assert_near(hp->discount_factor, 0.99, 0);
  assert_int_equal(hp->loss_type, CH_LOSS_MSE);
  assert_int_equal(hp->num_episodes_between_training, 8);
  unit_assert_near(hp->e_greedy_value, 0.1, 0);
  assert_int_equal(hp->epsilon_steps, 500);
  assert_int_equal(hp->exploration_type, CH_EXPLORATION_CATEGORICAL);
  assert_int_equal(hp->stack_size, 2);
  unit_assert_near(hp->term_cond_avg_score, 300, 0);
  assert_int_equal(hp->term_cond_max_episodes, 900);
  unit_assert_near(hp->sac_alpha, 0.3, 0);
  assert_string_equal(c->race_type, "object_avoidance");
  assert_string_equal(c->objects_json, "{\"count\":2,\"placement\":\"fixed\",\"positions\":[{"
                                       "\"lane\":\"left\",\"progress\":30},{\"lane\":\"right\","
                                       "\"progress\":70}]}");
  assert_string_equal(c->bots_json, "");
  unit_assert_near(c->start_advance, 0.1, 0);
  unit_assert_near(c->start_offset, 0.05, 0);
  assert_int_equal(c->alternate_direction, 1);
  unit_assert_near(c->stop.max_seconds, 60, 0);
  assert_int_equal(c->stop.max_episodes, 500);
  assert_int_equal(c->stop.max_iterations, 9);
  unit_assert_near(c->stop.avg_progress, 80, 0);
  assert_int_equal(c->stop.eval_laps, 2);
  assert_string_equal(c->clone_from, "older-model");
  assert_int_equal(c->has_on_iteration, 1);
  assert_int_equal(c->workers, 3);
  assert_int_equal(c->cars_per_worker, 5);
  assert_int_equal(c->segment_steps, 64);
  assert_int_equal(c->max_steps, 900);
  assert_int_equal(c->seed, 42);
}

static void test_defaults_of_new_keys(void **state) {
  fixture *f = *state;
  load_ok(f, "return { " BASE " }\n");
  const ch_train_config *c = &f->cfg;
  assert_int_equal(c->num_tracks, 1);
  assert_string_equal(c->tracks[0], "bayside");
  assert_int_equal(c->action_space_type, CH_ACTION_SPACE_DISCRETE);
  assert_int_equal(c->num_sensors, 1);
  assert_string_equal(c->sensors[0], "state");
  assert_int_equal(c->camera_downscale, 1);
  assert_string_equal(c->network_plugin, "mlp");
  assert_int_equal(c->shared, 0);
  assert_string_equal(c->algorithm, "clipped_ppo");
  assert_string_equal(c->race_type, "time_trial");
  unit_assert_near(c->hp.e_greedy_value, 0.05, 0);
  assert_int_equal(c->hp.epsilon_steps, 10000);
  assert_int_equal(c->hp.exploration_type, CH_EXPLORATION_CATEGORICAL);
  assert_int_equal(c->hp.stack_size, 1);
  unit_assert_near(c->hp.sac_alpha, 0.2, 0);
  assert_int_equal(c->hp.term_cond_max_episodes, 0);
  unit_assert_near(c->hp.term_cond_avg_score, 0, 0);
  unit_assert_near(c->start_offset, 0, 0);
  assert_int_equal(c->alternate_direction, 0);
  assert_string_equal(c->clone_from, "");
  assert_int_equal(c->has_on_iteration, 0);
  /* A camera without a network named picks the cnn, which shares its tower by default. */
  load_ok(f, "return { " BASE ", sensor = 'FRONT_FACING_CAMERA' }\n");
  assert_string_equal(f->cfg.sensors[0], "camera");
  assert_string_equal(f->cfg.network_plugin, "cnn");
  assert_string_equal(f->cfg.architecture, "shallow");
  assert_int_equal(f->cfg.shared, 1);
}

static void test_bots_and_other_forms(void **state) {
  fixture *f = *state;
  load_ok(f, "return { " BASE ", race_type = 'head_to_head',\n"
             "  bots = {count = 2, speed = 1.5, lane_changes = true},\n"
             "  track = 'oval', start_advance = 0.2, hyperparameters = {loss_type = 'mse',\n"
             "  exploration_type = 'e-greedy'}, plugins = {network = 'mlp'} }\n");
  assert_string_equal(f->cfg.bots_json, "{\"count\":2,\"lane_changes\":true,\"speed\":1.5}");
  assert_string_equal(f->cfg.objects_json, "");
  assert_string_equal(f->cfg.track, "oval");
  assert_int_equal(f->cfg.num_tracks, 1);
  unit_assert_near(f->cfg.start_advance, 0.2, 0);
  assert_int_equal(f->cfg.hp.loss_type, CH_LOSS_MSE);
  assert_int_equal(f->cfg.hp.exploration_type, CH_EXPLORATION_E_GREEDY);
}

/* ---- invalid keys: each names the script and the key -------------------------------------- */

static void test_track_errors(void **state) {
  fixture *f = *state;
  fails(f, "track = 'oval', tracks = {'bayside'}", CH_EINVAL, "tracks: give track or tracks");
  fails(f, "tracks = {}", CH_EINVAL, "tracks: must list 1 to 8 names");
  fails(f, "tracks = {'a','b','c','d','e','f','g','h','i'}", CH_EINVAL, "tracks: must list 1 to 8");
  fails(f, "tracks = {'bayside', 5}", CH_EINVAL, "tracks[2]: must be a string");
  fails(f, "tracks = {'bayside', 'nowhere'}", CH_ENOTFOUND, "tracks[2]: no track 'nowhere'");
  fails(f, "track = 7", CH_EINVAL, "track: must be a string or a list");
}

static void test_sensor_errors(void **state) {
  fixture *f = *state;
  fails(f, "sensor = {'radar'}", CH_EINVAL, "sensor[1]: must be \"state\"");
  fails(f, "sensor = {'camera', 'stereo'}", CH_EINVAL, "sensor: one camera at most");
  fails(f, "sensor = {'lidar', 'sector_lidar'}", CH_EINVAL, "sensor: one lidar at most");
  fails(f, "sensor = {'state', 'state'}", CH_EINVAL, "sensor[2]: names a sensor twice");
  fails(f, "sensor = {'a', 'b', 'c', 'd', 'e'}", CH_EINVAL, "sensor: must list 1 to 4");
  fails(f, "sensor = {'camera'}, camera = {downscale = 3}", CH_EINVAL, "camera.downscale");
  fails(f, "sensor = {'camera'}, camera = {zoom = 2}", CH_EINVAL, "camera.zoom: unknown key");
  fails(f, "camera = 5", CH_EINVAL, "camera: must be a table");
  fails(f, "lidar = {max_range = 6}", CH_EINVAL, "lidar: needs the \"lidar\" sensor");
  /* the env's own check, reported under the script's key */
  fails(f, "sensor = {'lidar'}, lidar = {max_range = 100}", CH_EINVAL, "lidar: sim2d:");
}

static void test_network_errors(void **state) {
  fixture *f = *state;
  fails(f, "sensor = {'camera'}, network = {plugin = 'mlp'}", CH_EINVAL,
        "network.plugin: \"mlp\" cannot read camera images");
  fails(f, "network = {plugin = 'cnn'}", CH_EINVAL, "network.plugin: \"cnn\" needs a");
  fails(f, "network = {architecture = 'huge'}", CH_EINVAL, "network.architecture: must be");
  fails(f, "sensor = {'camera'}, network = {architecture = 'deeper'}", CH_EINVAL,
        "network.architecture: \"deeper\"");
  fails(f, "sensor = {'camera'}, camera = {downscale = 4}", CH_EINVAL,
        "camera.downscale: 4 gives 40x30 images");
  fails(f, "network = {shared = 'yes'}", CH_EINVAL, "network.shared: must be true or false");
  fails(f, "network = {depth = 3}", CH_EINVAL, "network.depth: unknown key");
  fails(f, "network = {hidden = {1,2,3,4,5,6,7,8,9}}", CH_EINVAL, "network.hidden: at most 8");
  fails(f, "network = {activation = 'sigmoid'}", CH_EINVAL, "network.activation");
}

static void test_algorithm_and_hp_errors(void **state) {
  fixture *f = *state;
  fails(f, "algorithm = 'dqn'", CH_EINVAL, "algorithm: must be \"clipped_ppo\" or \"sac\"");
  fails(f, "algorithm = 'sac'", CH_EINVAL, "algorithm: \"sac\" needs a continuous action_space");
  fails(f, "hyperparameters = {exploration_type = 'random'}", CH_EINVAL,
        "hyperparameters.exploration_type: must be");
  fails(f, "hyperparameters = {e_greedy_value = 2}", CH_EINVAL, "hyperparameters.e_greedy_value");
  fails(f, "hyperparameters = {epsilon_steps = -1}", CH_EINVAL, "hyperparameters.epsilon_steps");
  fails(f, "hyperparameters = {stack_size = 2}", CH_EINVAL,
        "hyperparameters.stack_size: stacks camera frames");
  fails(f, "sensor = {'camera'}, hyperparameters = {stack_size = 9}", CH_EINVAL,
        "hyperparameters.stack_size: 1..8");
  fails(f, "hyperparameters = {term_cond_max_episodes = -5}", CH_EINVAL,
        "hyperparameters.term_cond_max_episodes");
  fails(f, "hyperparameters = {sac_alpha = 0}", CH_EINVAL, "hyperparameters.sac_alpha");
  fails(f, "hyperparameters = {discount_factor = 1.5}", CH_EINVAL,
        "hyperparameters.discount_factor");
  fails(f, "hyperparameters = {batch_size = 2.5}", CH_EINVAL,
        "hyperparameters.batch_size: must be an integer");
  fails(f, "hyperparameters = {lr = 'fast'}", CH_EINVAL, "hyperparameters.lr: must be a number");
  char text[512], path[1024];
  ch_error err = {0, ""};
  snprintf(text, sizeof text,
           "return { reward = 'r.lua', action_space = {steering_angle = {-1, 1}, speed = {1, 2}},\n"
           "  hyperparameters = {exploration_type = 'e-greedy'} }\n");
  unit_expect(load(f, text, path, &err), CH_EINVAL, err);
  unit_assert_contains(err.message, "hyperparameters.exploration_type: \"e-greedy\" picks");
}

static void test_race_errors(void **state) {
  fixture *f = *state;
  fails(f, "race_type = 'drag'", CH_EINVAL, "race_type: must be");
  fails(f, "objects = {count = 2}", CH_EINVAL, "objects: needs race_type = \"object_avoidance\"");
  fails(f, "bots = {count = 2}", CH_EINVAL, "bots: needs race_type = \"head_to_head\"");
  fails(f, "race_type = 'object_avoidance', objects = {count = 99}", CH_EINVAL,
        "objects: sim2d: config key 'objects.count'");
  fails(f, "race_type = 'object_avoidance', objects = {colour = 'red'}", CH_EINVAL,
        "objects: sim2d:");
  fails(f, "race_type = 'head_to_head', bots = {speed = 9}", CH_EINVAL,
        "bots: sim2d: config key 'bots.speed'");
  fails(f, "race_type = 'object_avoidance', objects = {count = print}", CH_EINVAL,
        "objects.count: a function cannot be passed to the env");
  fails(f, "race_type = 'object_avoidance', objects = {size = {0/0, 1}}", CH_EINVAL,
        "objects.size[1]: must be a finite number");
  fails(f, "race_type = 'object_avoidance', objects = {1, count = 2}", CH_EINVAL,
        "objects: mixes list entries and named keys");
  fails(f, "race_type = 'object_avoidance', objects = {positions = {[1] = {}, [3] = {}}}",
        CH_EINVAL, "objects.positions: a list must have keys 1..n");
  fails(f, "objects = 3", CH_EINVAL, "objects: must be a table");
}

static void test_start_stop_and_misc_errors(void **state) {
  fixture *f = *state;
  fails(f, "start = {advance = 1.5}", CH_EINVAL, "start.advance: must be in [0, 1)");
  fails(f, "start = {offset = 3}", CH_EINVAL, "start.offset: must be in [-1, 1]");
  fails(f, "start = {alternate_direction = 1}", CH_EINVAL,
        "start.alternate_direction: must be true or false");
  fails(f, "start = {speed = 1}", CH_EINVAL, "start.speed: unknown key");
  fails(f, "start_advance = 0.1, start = {advance = 0.2}", CH_EINVAL,
        "start_advance: give start.advance or start_advance, not both");
  fails(f, "stop = {max_seconds = 0}", CH_EINVAL, "stop: needs at least one stop condition");
  fails(f, "clone_from = 'bad name!'", CH_EINVAL, "clone_from: must name a model");
  fails(f, "model = 'm1', clone_from = 'm1'", CH_EINVAL, "clone_from: names the model being");
  fails(f, "clone_from = 5", CH_EINVAL, "clone_from: must be a string");
  fails(f, "on_iteration = 5", CH_EINVAL, "on_iteration: must be a function");
  fails(f, "seed = -1", CH_EINVAL, "seed: must be >= 0");
  fails(f, "plugins = {env = 'nosuch'}", CH_ENOTFOUND, "plugins.env:");
  fails(f, "colour = 'red'", CH_EINVAL, "colour: unknown key");
  fails(f, "model = 'has space'", CH_EINVAL, "model: must be 1-100 of [A-Za-z0-9._-]");
  fails(f, "cars_per_worker = 0", CH_EINVAL, "cars_per_worker: 1..1024");
  fails(f, "segment_steps = 0", CH_EINVAL, "segment_steps: 1..100000");
  fails(f, "max_steps = 'long'", CH_EINVAL, "max_steps: must be an integer");
  fails(f, "workers = 65", CH_EINVAL, "workers: 1..64");
  fails(f, "plugins = {gpu = 'yes'}", CH_EINVAL, "plugins.gpu: unknown key");
  fails(f, "stop = {eval_laps = 4}", CH_EINVAL, "stop.eval_laps: 0..3");
  fails(f, "stop = {avg_progress = 101}", CH_EINVAL, "stop.avg_progress: must be in [0, 100]");
}

/* ---- DeepRacer files named by the script -------------------------------------------------- */

static void test_deepracer_files(void **state) {
  fixture *f = *state;
  load_ok(f, "return { reward = 'r.lua', deepracer = {\n"
             "  model_metadata = '" CH_FIXTURES "/camera_discrete_model_metadata.json',\n"
             "  hyperparameters = '" CH_FIXTURES "/console_hyperparameters.json' } }\n");
  const ch_train_config *c = &f->cfg;
  assert_int_equal(c->num_actions, 10);
  unit_assert_near(c->actions[9].steering_angle, 30, 0);
  unit_assert_near(c->actions[9].speed, 1.2, 0);
  assert_string_equal(c->sensors[0], "camera");
  assert_string_equal(c->network_plugin, "cnn");
  assert_string_equal(c->architecture, "shallow");
  assert_string_equal(c->algorithm, "clipped_ppo");
  assert_int_equal(c->hp.batch_size, 32);
  assert_int_equal(c->hp.loss_type, CH_LOSS_MSE);
  assert_int_equal(c->hp.term_cond_max_episodes, 1000);
  unit_assert_near(c->hp.term_cond_avg_score, 350, 0);
  unit_assert_contains(c->deepracer_model_metadata, "camera_discrete_model_metadata.json");
  /* The script's keys override the files': its action space and one hyperparameter. */
  load_ok(f, "return { reward = 'r.lua', deepracer = {\n"
             "  model_metadata = '" CH_FIXTURES "/camera_discrete_model_metadata.json',\n"
             "  hyperparameters = '" CH_FIXTURES "/console_hyperparameters.json' },\n"
             "  action_space = {{steering_angle = 5, speed = 2}}, hyperparameters = {lr = 0.01},\n"
             "  camera = {downscale = 2} }\n");
  assert_int_equal(c->num_actions, 1);
  unit_assert_near(c->actions[0].steering_angle, 5, 0);
  unit_assert_near(c->hp.lr, 0.01, 0);
  assert_int_equal(c->hp.batch_size, 32);
  assert_int_equal(c->camera_downscale, 2);
  /* SAC with continuous ranges, stereo cameras and a lidar. */
  load_ok(f, "return { reward = 'r.lua', deepracer = {\n"
             "  model_metadata = '" CH_FIXTURES "/stereo_lidar_sac_model_metadata.json' } }\n");
  assert_int_equal(c->action_space_type, CH_ACTION_SPACE_CONTINUOUS);
  assert_string_equal(c->algorithm, "sac");
  assert_string_equal(c->architecture, "deep");
  fails(f, "deepracer = {model_metadata = 'nope.json'}", CH_ENOTFOUND,
        "deepracer.model_metadata: nope.json: no such file");
  fails(f, "deepracer = {colour = 1}", CH_EINVAL, "deepracer.colour: unknown key");
  char path[1024];
  unit_write(f->dir, "bad_hp.json", "{\"lr\": 7}", path, sizeof path);
  fails(f, "deepracer = {hyperparameters = 'bad_hp.json'}", CH_EINVAL,
        "deepracer.hyperparameters: ");
  fails(f, "deepracer = {hyperparameters = 'bad_hp.json'}", CH_EINVAL, "bad_hp.json: lr: must be");
}

/* ---- the JSON the plugins get --------------------------------------------------------------- */

static void test_env_json(void **state) {
  fixture *f = *state;
  load_ok(f, "return { " BASE ", sensor = {'stereo', 'lidar'}, camera = {downscale = 2},\n"
             "  lidar = {max_range = 5}, race_type = 'object_avoidance', objects = {count = 4},\n"
             "  max_steps = 700, hyperparameters = {stack_size = 3} }\n");
  cJSON *j = ch_config_env_json(&f->cfg, "/x/y.track", 6);
  char *text = cJSON_PrintUnformatted(j);
  assert_string_equal(text, "{\"track\":\"/x/y.track\",\"num_cars\":6,\"max_steps\":700,"
                            "\"sensors\":[\"stereo\",\"lidar\"],\"camera\":{\"downscale\":2,"
                            "\"stack_size\":3},\"lidar\":{\"max_range\":5},\"race_type\":"
                            "\"object_avoidance\",\"objects\":{\"count\":4}}");
  cJSON_free(text);
  cJSON_Delete(j);
  /* The defaults add nothing an older env would not know. */
  load_ok(f, "return { " BASE " }\n");
  j = ch_config_env_json(&f->cfg, "t.track", 1);
  text = cJSON_PrintUnformatted(j);
  assert_string_equal(text, "{\"track\":\"t.track\",\"num_cars\":1,\"max_steps\":1500}");
  cJSON_free(text);
  cJSON_Delete(j);
}

static void expect_json(cJSON *j, const char *want) {
  assert_non_null(j);
  char *text = cJSON_PrintUnformatted(j);
  if (strcmp(text, want) != 0) fail_msg("got  %s\nwant %s", text, want);
  cJSON_free(text);
  cJSON_Delete(j);
}

static void test_network_json(void **state) {
  fixture *f = *state;
  ch_error err = {0, ""};
  ch_env_spec state_spec = {.num_cars = 1, .obs_size = 11};
  ch_env_spec camera_spec = {
      .num_cars = 1, .obs_size = 64, .image_width = 80, .image_height = 60, .image_channels = 2};
  load_ok(f, "return { " BASE ", network = {hidden = {32, 16}, shared = true}, seed = 7 }\n");
  expect_json(ch_config_network_json_for(&f->cfg, &state_spec, &err),
              "{\"input_size\":11,\"num_actions\":1,\"hidden\":[32,16],\"activation\":\"tanh\","
              "\"shared\":true,\"seed\":7}");
  expect_json(ch_config_network_json(&f->cfg, 11),
              "{\"input_size\":11,\"num_actions\":1,\"hidden\":[32,16],\"activation\":\"tanh\","
              "\"shared\":true,\"seed\":7}");
  assert_null(ch_config_network_json_for(&f->cfg, &camera_spec, &err));
  unit_assert_contains(err.message, "network.plugin: \"mlp\" cannot read");
  load_ok(f, "return { reward = 'r.lua', action_space = {steering_angle = {-30, 30},\n"
             "  speed = {1, 4}}, sensor = {'stereo', 'lidar'}, network = {architecture = 'deep'} "
             "}\n");
  expect_json(ch_config_network_json_for(&f->cfg, &camera_spec, &err),
              "{\"image\":{\"width\":80,\"height\":60,\"channels\":2},\"vector_size\":64,"
              "\"architecture\":\"deep\",\"num_actions\":2,\"head\":\"gaussian\",\"shared\":true,"
              "\"seed\":1}");
  assert_null(ch_config_network_json_for(&f->cfg, &state_spec, &err));
  unit_assert_contains(err.message, "network.plugin: \"cnn\" needs camera images");
}

static void test_config_json(void **state) {
  fixture *f = *state;
  load_ok(f, "return { reward = 'r.lua', action_space = {steering_angle = {-30, 30},\n"
             "  speed = {1, 4}}, tracks = {'oval', 'bayside'}, clone_from = 'base',\n"
             "  on_iteration = function() end }\n");
  cJSON *j = ch_config_json(&f->cfg);
  const cJSON *as = cJSON_GetObjectItem(j, "action_space");
  assert_true(cJSON_IsObject(as));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "action_space_type")),
                      "continuous");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tracks")), 2);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "clone_from")), "base");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "on_iteration")));
  ch_train_config *back = calloc(1, sizeof *back);
  ch_error err = {0, ""};
  unit_check(ch_config_action_space_from_json(as, back, &err), err);
  assert_int_equal(back->action_space_type, CH_ACTION_SPACE_CONTINUOUS);
  unit_assert_near(back->action_ranges.speed.high, 4, 0);
  free(back);
  cJSON_Delete(j);
}

/* Every example script the project ships must load. */
static void test_shipped_scripts_load(void **state) {
  fixture *f = *state;
  glob_t g;
  assert_int_equal(glob(CHICANE_SOURCE_DIR "/scripts/*.lua", 0, NULL, &g), 0);
  assert_true(g.gl_pathc >= 7);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    ch_error err = {0, ""};
    if (ch_config_load(g.gl_pathv[i], &f->cfg, &err) != CH_OK)
      fail_msg("%s: %s", g.gl_pathv[i], err.message);
  }
  globfree(&g);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_every_key),
      T(test_defaults_of_new_keys),
      T(test_bots_and_other_forms),
      T(test_track_errors),
      T(test_sensor_errors),
      T(test_network_errors),
      T(test_algorithm_and_hp_errors),
      T(test_race_errors),
      T(test_start_stop_and_misc_errors),
      T(test_deepracer_files),
      T(test_env_json),
      T(test_network_json),
      T(test_config_json),
      T(test_shipped_scripts_load),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
