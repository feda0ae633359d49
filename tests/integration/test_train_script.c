/* test_train_script.c -- training scripts' features end to end: on_iteration, continuous actions,
** clone_from, DeepRacer's stop conditions, and the logs a run leaves in storage. */
#include "evaluate.h"
#include "simtrace.h"
#include "train_test.h"

#include <math.h>

/* home/name: a short training script on bayside; `extra` adds or overrides keys (Lua). */
static void write_script(const char *name, const char *model, const char *extra) {
  char text[4096];
  snprintf(text, sizeof text,
           "local s = {\n"
           "  model = '%s', track = 'bayside', reward = 'reward.lua',\n"
           "  action_space = action_grid({-30, 0, 30}, {1.0, 2.0}),\n"
           "  network = { hidden = {16, 16} },\n"
           "  hyperparameters = { num_episodes_between_training = 8, num_epochs = 2 },\n"
           "  stop = { max_iterations = 2 },\n"
           "  workers = 2, cars_per_worker = 4, segment_steps = 32, max_steps = 300,\n"
           "}\n"
           "local extra = { %s }\n"
           "for k, v in pairs(extra) do s[k] = v end\n"
           "return s\n",
           model, extra);
  write_home_file(name, text);
}

static int setup(void **state) {
  (void)state;
  make_home();
  write_home_file("reward.lua", "function reward_function(params)\n"
                                "  return params.progress / 100 + (params.all_wheels_on_track and "
                                "0.1 or 0)\n"
                                "end\n");
  return 0;
}

static void train_ok(const char *script, ch_train_summary *sum) {
  ch_error err = {0, ""};
  if (train(script, 0, sum, &err) != CH_OK) fail_msg("train %s: %s", script, err.message);
}

static char *model_object(ch_session *s, const char *model, const char *rest) {
  char key[512];
  snprintf(key, sizeof key, "models/%s/%s", model, rest);
  return get_object(s, key);
}

static void test_on_iteration_changes_training_and_stops_it(void **state) {
  (void)state;
  write_script("sched.lua", "sched",
               "stop = { max_iterations = 10 },\n"
               "on_iteration = function(stats, training)\n"
               "  if stats.iteration == 0 then\n"
               "    training.set_lr(0.001); training.save_checkpoint('first')\n"
               "  elseif stats.iteration == 1 then training.set_track('oval')\n"
               "  elseif stats.iteration == 2 then training.stop('done here') end\n"
               "end");
  ch_train_summary sum;
  train_ok("sched.lua", &sum);
  assert_string_equal(sum.stop_reason, "done here");
  assert_int_equal(sum.iterations, 3);
  ch_session s;
  open_session(&s);
  /* the named checkpoint is a model of its own, with iteration 0's weights */
  ch_checkpoint_info ck;
  assert_int_equal(ch_catalog_latest_checkpoint(s.cat, "sched.first", &ck, NULL), CH_OK);
  assert_int_equal(ck.iteration, 0);
  ch_checkpoint_info_free(&ck);
  /* the workers were given the new track */
  char *spec = model_object(&s, "sched", "worker.json");
  assert_non_null(strstr(spec, "oval.track"));
  assert_null(strstr(spec, "bayside.track"));
  free(spec);
  ch_session_close(&s);
}

static void test_failing_on_iteration_stops_with_the_line(void **state) {
  (void)state;
  write_script("schedfail.lua", "schedfail",
               "stop = { max_iterations = 10 },\n"
               "on_iteration = function(stats)\n"
               "  if stats.iteration == 1 then error('boom') end\n"
               "end");
  ch_train_summary sum;
  ch_error err = {0, ""};
  assert_int_equal(train("schedfail.lua", 0, &sum, &err), CH_ESCRIPT);
  assert_non_null(strstr(err.message, "schedfail.lua"));
  assert_non_null(strstr(err.message, "boom"));
  ch_session s;
  open_session(&s);
  assert_int_equal(checkpoints(&s, "schedfail"), 2); /* both iterations stored before the call */
  ch_model_info m;
  assert_int_equal(ch_catalog_get_model(s.cat, "schedfail", &m, NULL), CH_OK);
  assert_string_equal(m.status, "failed");
  ch_model_info_free(&m);
  ch_session_close(&s);
}

typedef struct runs_seen {
  int n;
  char stop_reason[256], command_line[256];
  int64_t iterations;
} runs_seen;

static int collect_run(const ch_run_info *r, void *user) {
  runs_seen *seen = user;
  seen->n++;
  snprintf(seen->stop_reason, sizeof seen->stop_reason, "%s", r->stop_reason ? r->stop_reason : "");
  snprintf(seen->command_line, sizeof seen->command_line, "%s",
           r->command_line ? r->command_line : "");
  seen->iterations = r->iterations;
  return 0;
}

/* Iteration 0's sim-trace has one row per training step, every episode numbered, ends marked. */
static void check_simtrace(ch_session *s, const char *model, double steps) {
  char *csv = model_object(s, model, "training-simtrace/0-iteration.csv");
  ch_simtrace_row *rows = NULL;
  size_t n = 0;
  ch_error err;
  if (ch_simtrace_parse(csv, strlen(csv), &rows, &n, &err) != CH_OK) fail_msg("%s", err.message);
  assert_int_equal(n, (size_t)steps);
  int done = 0;
  for (size_t i = 0; i < n; i++) {
    assert_true(rows[i].episode >= 0 && rows[i].episode < 64);
    assert_true(rows[i].progress >= 0 && rows[i].progress <= 100);
    assert_true(rows[i].steps >= 1);
    assert_true(fabs(rows[i].tstamp - rows[i].steps / 15.0) < 1e-3);
    assert_true(rows[i].action >= 0 && rows[i].action < 6);
    done += rows[i].done;
  }
  assert_true(done >= 8); /* num_episodes_between_training episodes ended */
  free(rows);
  free(csv);
}

static void test_a_run_leaves_logs_and_records(void **state) {
  (void)state;
  write_script("logs.lua", "logs", "");
  ch_train_summary sum;
  train_ok("logs.lua", &sum);
  ch_session s;
  open_session(&s);
  /* metrics: one JSON object per iteration */
  char *lines = model_object(&s, "logs", "metrics/training.jsonl");
  char *second = strchr(lines, '\n');
  assert_non_null(second);
  *second++ = 0;
  cJSON *first = cJSON_Parse(lines), *next = cJSON_Parse(second);
  assert_non_null(first);
  assert_non_null(next);
  assert_int_equal(cJSON_GetObjectItem(first, "iteration")->valueint, 0);
  assert_int_equal(cJSON_GetObjectItem(next, "iteration")->valueint, 1);
  double steps = cJSON_GetObjectItem(first, "steps")->valuedouble;
  assert_true(steps > 0);
  check_simtrace(&s, "logs", steps);
  cJSON_Delete(first);
  cJSON_Delete(next);
  free(lines);
  /* records that `models rebuild` reads back */
  free(model_object(&s, "logs", "checkpoints/000001.json"));
  char *record = model_object(&s, "logs", "model.json");
  assert_non_null(strstr(record, "\"ready\""));
  free(record);
  runs_seen seen = {0};
  assert_int_equal(ch_catalog_list_runs(s.cat, "logs", collect_run, &seen, NULL), CH_OK);
  assert_int_equal(seen.n, 1);
  assert_string_equal(seen.stop_reason, "iteration limit");
  assert_string_equal(seen.command_line, "chicane train (test)");
  assert_int_equal(seen.iterations, 2);
  ch_session_close(&s);
}

static void test_continuous_actions_train(void **state) {
  (void)state;
  write_script("cont.lua", "cont",
               "action_space = { steering_angle = {-30, 30}, speed = {0.5, 2.0} }");
  ch_train_summary sum;
  train_ok("cont.lua", &sum);
  assert_true(isfinite(sum.last.entropy));
  assert_true(isfinite(sum.last.policy_loss));
  ch_session s;
  open_session(&s);
  char *meta = model_object(&s, "cont", "model_metadata.json");
  assert_non_null(strstr(meta, "continuous"));
  free(meta);
  char *csv = model_object(&s, "cont", "training-simtrace/1-iteration.csv");
  ch_simtrace_row *rows = NULL;
  size_t n = 0;
  assert_int_equal(ch_simtrace_parse(csv, strlen(csv), &rows, &n, NULL), CH_OK);
  assert_true(n > 0);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(rows[i].action, -1);
    assert_true(rows[i].steer_deg >= -30.001 && rows[i].steer_deg <= 30.001);
    assert_true(rows[i].throttle >= 0.499 && rows[i].throttle <= 2.001);
  }
  free(rows);
  free(csv);
  ch_session_close(&s);
}

/* A clone trained with a vanishing learning rate drives as its source does. */
static void test_clone_from_starts_from_the_weights(void **state) {
  (void)state;
  write_script("src.lua", "src", "stop = { max_iterations = 3 }");
  write_script("dst.lua", "dst",
               "clone_from = 'src', stop = { max_iterations = 1 },\n"
               "hyperparameters = { num_episodes_between_training = 8, num_epochs = 1, "
               "lr = 1e-9 }");
  ch_train_summary sum;
  train_ok("src.lua", &sum);
  train_ok("dst.lua", &sum);
  ch_session s;
  open_session(&s);
  ch_eval_options o;
  ch_eval_defaults(&o);
  o.trials = 1;
  ch_eval_result a, b;
  char track[256];
  ch_error err = {0, ""};
  if (ch_evaluate_model(&s, "src", NULL, &o, &a, track, sizeof track, &err) != CH_OK ||
      ch_evaluate_model(&s, "dst", NULL, &o, &b, track, sizeof track, &err) != CH_OK)
    fail_msg("evaluate: %s", err.message);
  assert_int_equal(a.trial[0].steps, b.trial[0].steps);
  assert_true(fabs(a.trial[0].progress - b.trial[0].progress) < 1e-9);
  ch_session_close(&s);
}

static void test_term_cond_max_episodes_stops(void **state) {
  (void)state;
  write_script("term.lua", "term",
               "stop = { max_iterations = 10 },\n"
               "hyperparameters = { num_episodes_between_training = 8, num_epochs = 1, "
               "term_cond_max_episodes = 16 }");
  ch_train_summary sum;
  train_ok("term.lua", &sum);
  assert_int_equal(sum.iterations, 2);
  assert_non_null(strstr(sum.stop_reason, "term_cond_max_episodes"));
}

/* SAC learns off-policy; its critics are stored beside each checkpoint and resumed. */
static void test_sac_trains_and_resumes_with_its_critics(void **state) {
  (void)state;
  write_script("sac.lua", "sacm",
               "algorithm = 'sac',\n"
               "action_space = { steering_angle = {-30, 30}, speed = {0.5, 2.0} },\n"
               "hyperparameters = { num_episodes_between_training = 8, batch_size = 32 }");
  ch_train_summary sum;
  train_ok("sac.lua", &sum);
  assert_int_equal(sum.iterations, 2);
  assert_true(isfinite(sum.last.value_loss) && sum.last.value_loss > 0); /* critics learned */
  ch_session s;
  open_session(&s);
  char *critics = model_object(&s, "sacm", "checkpoints/000001.critics");
  assert_true(strlen(critics) >= 4);
  free(critics);
  ch_session_close(&s);
  /* max_iterations 2 is reached, so a resumed run does exactly one more iteration */
  ch_error err = {0, ""};
  if (train("sac.lua", TRAIN_RESUME, &sum, &err) != CH_OK) fail_msg("resume: %s", err.message);
  assert_int_equal(sum.last.iteration, 2);
  /* the metrics lines of both runs are kept */
  open_session(&s);
  char *lines = model_object(&s, "sacm", "metrics/training.jsonl");
  int count = 0;
  for (const char *c = lines; *c; c++) count += *c == '\n';
  assert_int_equal(count, 3);
  assert_non_null(strstr(lines, "{\"iteration\":2,"));
  free(lines);
  ch_session_close(&s);
  /* a corrupt critics blob is named when resuming */
  char path[512];
  snprintf(path, sizeof path, "%s/storage/models/sacm/checkpoints/000002.critics", home);
  write_file(path, "garbage");
  assert_int_not_equal(train("sac.lua", TRAIN_RESUME, &sum, &err), CH_OK);
  assert_non_null(strstr(err.message, "000002.critics"));
}

/* The camera and a CNN: the network is made from the env's image shape, evaluation sees it. */
static void test_camera_with_a_cnn_trains(void **state) {
  (void)state;
  write_script("cam.lua", "cam",
               "sensor = { 'camera' }, camera = { downscale = 4 },\n"
               "network = { plugin = 'cnn', architecture = 'deep' },\n"
               "stop = { max_iterations = 1 },\n"
               "hyperparameters = { num_episodes_between_training = 4, num_epochs = 1 }");
  ch_train_summary sum;
  train_ok("cam.lua", &sum);
  assert_int_equal(sum.iterations, 1);
  ch_session s;
  open_session(&s);
  ch_eval_options o;
  ch_eval_defaults(&o);
  o.trials = 1;
  o.max_seconds = 5;
  ch_eval_result r;
  char track[256];
  ch_error err = {0, ""};
  if (ch_evaluate_model(&s, "cam", NULL, &o, &r, track, sizeof track, &err) != CH_OK)
    fail_msg("evaluate: %s", err.message);
  assert_true(r.trial[0].steps > 0);
  ch_session_close(&s);
}

/* target_kl stops each update once the policy moved; value_clip trains as well. */
static void test_target_kl_stops_updates_early(void **state) {
  (void)state;
  write_script("kl.lua", "kl",
               "hyperparameters = { num_episodes_between_training = 8, num_epochs = 4, "
               "batch_size = 16, target_kl = 1e-9, value_clip = 0.2 }");
  ch_train_summary sum;
  train_ok("kl.lua", &sum);
  /* the first minibatch always steps (ratio 1); the next one finds the KL passed */
  assert_int_equal(sum.last.minibatches, 1);
  write_script("nokl.lua", "nokl",
               "hyperparameters = { num_episodes_between_training = 8, num_epochs = 4, "
               "batch_size = 16, value_clip = 0.2 }");
  train_ok("nokl.lua", &sum);
  assert_true(sum.last.minibatches >= 4 * (sum.last.steps / 16));
  assert_true(isfinite(sum.last.value_loss));
}

/* Start positions advance round-robin, alternate_direction reverses every other episode, and
** the offset moves the car off the centre line: seen at step 1 of the training sim-trace. */
static void test_start_options_reach_the_cars(void **state) {
  (void)state;
  write_home_file("reversed.lua", "function reward_function(params)\n"
                                  "  if params.steps > 1 then return 0.5 end\n"
                                  "  local r = params.is_reversed and 100 or 0\n"
                                  "  return r + params.distance_from_center\n"
                                  "end\n");
  write_script("start.lua", "start",
               "reward = 'reversed.lua', stop = { max_iterations = 1 },\n"
               "start = { advance = 0.1, offset = 0.2, alternate_direction = true }");
  ch_train_summary sum;
  train_ok("start.lua", &sum);
  ch_session s;
  open_session(&s);
  char *csv = model_object(&s, "start", "training-simtrace/0-iteration.csv");
  ch_simtrace_row *rows = NULL;
  size_t n = 0;
  assert_int_equal(ch_simtrace_parse(csv, strlen(csv), &rows, &n, NULL), CH_OK);
  int firsts = 0, reversed = 0, distinct = 0;
  double xs[64];
  for (size_t i = 0; i < n; i++) {
    if (rows[i].steps != 1) continue;
    firsts++;
    double r = rows[i].reward;
    reversed += r >= 50;
    double off = r >= 50 ? r - 100 : r; /* distance from the centre after one step */
    if (!(off > 0.1 && off < 0.3)) fail_msg("step 1 of an episode: %g m from the centre", off);
    int seen = 0;
    for (int k = 0; k < distinct; k++) seen |= fabs(xs[k] - rows[i].x) < 1e-3;
    if (!seen && distinct < 64) xs[distinct++] = rows[i].x;
  }
  assert_true(firsts >= 8);
  assert_true(reversed >= 3 && firsts - reversed >= 3); /* every other episode */
  assert_true(distinct >= firsts / 2);                  /* starts move round the track */
  free(rows);
  free(csv);
  ch_session_close(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_on_iteration_changes_training_and_stops_it),
      cmocka_unit_test(test_failing_on_iteration_stops_with_the_line),
      cmocka_unit_test(test_a_run_leaves_logs_and_records),
      cmocka_unit_test(test_continuous_actions_train),
      cmocka_unit_test(test_clone_from_starts_from_the_weights),
      cmocka_unit_test(test_term_cond_max_episodes_stops),
      cmocka_unit_test(test_sac_trains_and_resumes_with_its_critics),
      cmocka_unit_test(test_camera_with_a_cnn_trains),
      cmocka_unit_test(test_target_kl_stops_updates_early),
      cmocka_unit_test(test_start_options_reach_the_cars),
  };
  return cmocka_run_group_tests(tests, setup, remove_home);
}
