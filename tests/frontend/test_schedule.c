/* test_schedule.c -- on_iteration(stats, training): requests by call and by return, the stats
** table, and errors that name the script, the line and the iteration. */
#include "unit_test.h"

#include "schedule.h"

typedef struct fixture {
  char dir[512];
  ch_train_config cfg;
  ch_schedule_actions act;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  unit_mkdtemp(f->dir, sizeof f->dir, "frontend-schedule");
  char path[1024];
  unit_write(f->dir, "r.lua", "function reward_function(params) return 1.0 end\n", path,
             sizeof path);
  unit_write(f->dir, "r2.lua", "function reward_function(params) return 2.0 end\n", path,
             sizeof path);
  unit_write(f->dir, "broken.lua", "function reward_function(params)\n  return 1 +\nend\n", path,
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

/* Load a training script whose on_iteration has the given body (from line 3). */
static ch_schedule *open_with(fixture *f, const char *body, char *path) {
  static int serial;
  char name[32], text[4096];
  snprintf(name, sizeof name, "sched%d.lua", ++serial);
  snprintf(text, sizeof text,
           "return { reward = 'r.lua', action_space = {{steering_angle = 0, speed = 1}},\n"
           "  model = 'sched', on_iteration = function(stats, training)\n"
           "%s\n"
           "  end }\n",
           body);
  unit_write(f->dir, name, text, path, 1024);
  ch_error err = {0, ""};
  unit_check(ch_config_load(path, &f->cfg, &err), err);
  ch_schedule *s = NULL;
  unit_check(ch_schedule_open(&f->cfg, &s, &err), err);
  assert_non_null(s);
  return s;
}

static ch_iteration_stats stats(int64_t iteration) {
  ch_iteration_stats st;
  memset(&st, 0, sizeof st);
  st.iteration = iteration;
  st.eval_laps = -1;
  return st;
}

static void run_ok(fixture *f, ch_schedule *s, int64_t iteration) {
  ch_iteration_stats st = stats(iteration);
  ch_error err = {0, ""};
  unit_check(ch_schedule_on_iteration(s, &st, &f->act, &err), err);
}

/* The call must fail naming path:line, the iteration and what. */
static void run_fails(fixture *f, ch_schedule *s, const char *path, int line, const char *what) {
  ch_iteration_stats st = stats(6);
  ch_error err = {0, ""};
  f->act.set_lr = 99;
  unit_expect(ch_schedule_on_iteration(s, &st, &f->act, &err), CH_ESCRIPT, err);
  char where[1100];
  snprintf(where, sizeof where, "%s:%d:", path, line);
  unit_assert_contains(err.message, where);
  unit_assert_contains(err.message, "iteration 6");
  unit_assert_contains(err.message, what);
  assert_int_equal(f->act.set_lr, 0); /* nothing half-applied */
}

static void test_no_callback(void **state) {
  fixture *f = *state;
  char path[1024];
  unit_write(f->dir, "plain.lua",
             "return { reward = 'r.lua', action_space = {{steering_angle = 0, speed = 1}} }\n",
             path, sizeof path);
  ch_error err = {0, ""};
  unit_check(ch_config_load(path, &f->cfg, &err), err);
  ch_schedule *s = (ch_schedule *)&err;
  unit_check(ch_schedule_open(&f->cfg, &s, &err), err);
  assert_null(s);
}

static void test_requests_by_call(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_schedule *s = open_with(f,
                             "    if stats.iteration == 1 then\n"
                             "      training.set_lr(training.lr / 2)\n"
                             "      training:set_beta_entropy(0.002)\n"
                             "      training.set_track('oval')\n"
                             "      training.save_checkpoint('first.ckpt')\n"
                             "      training.set_reward('r2.lua')\n"
                             "    elseif stats.iteration == 2 then\n"
                             "      training.set_tracks({'bayside', 'oval'})\n"
                             "      training.stop()\n"
                             "    else\n"
                             "      training:stop('enough: ' .. training.lr .. ' ' .. "
                             "#training.tracks .. ' ' .. training.model)\n"
                             "    end",
                             path);
  run_ok(f, s, 1);
  const ch_schedule_actions *a = &f->act;
  assert_int_equal(a->set_lr, 1);
  unit_assert_near(a->lr, 0.00015, 1e-15);
  assert_int_equal(a->set_beta_entropy, 1);
  unit_assert_near(a->beta_entropy, 0.002, 0);
  assert_int_equal(a->set_tracks, 1);
  assert_int_equal(a->num_tracks, 1);
  assert_string_equal(a->tracks[0], "oval");
  unit_assert_contains(a->track_paths[0], "tracks/oval.track");
  assert_int_equal(a->save_checkpoint, 1);
  assert_string_equal(a->checkpoint_name, "first.ckpt");
  assert_int_equal(a->set_reward, 1);
  char want[1100];
  snprintf(want, sizeof want, "%s/r2.lua", f->dir);
  assert_string_equal(a->reward, want);
  assert_int_equal(a->stop, 0);
  run_ok(f, s, 2);
  assert_int_equal(a->set_lr, 0); /* each iteration starts clean */
  assert_int_equal(a->num_tracks, 2);
  assert_string_equal(a->tracks[1], "oval");
  assert_int_equal(a->stop, 1);
  assert_string_equal(a->stop_reason, "on_iteration asked to stop");
  /* the settings in force follow the requests */
  run_ok(f, s, 3);
  assert_string_equal(a->stop_reason, "enough: 0.00015 2 sched");
  ch_schedule_close(s);
}

static void test_requests_by_return(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_schedule *s = open_with(f,
                             "    if stats.iteration == 1 then\n"
                             "      training.set_lr(0.1)\n"
                             "      return {lr = 0.0002, beta_entropy = 0, track = 'oval',\n"
                             "              reward = 'r2.lua', checkpoint = 'best'}\n"
                             "    elseif stats.iteration == 2 then\n"
                             "      return {tracks = {'oval', 'bayside'}, stop = true}\n"
                             "    elseif stats.iteration == 3 then\n"
                             "      return {stop = 'laps done'}\n"
                             "    end\n"
                             "    return {stop = false}",
                             path);
  run_ok(f, s, 1);
  const ch_schedule_actions *a = &f->act;
  unit_assert_near(a->lr, 0.0002, 0); /* the returned value wins over the call */
  assert_int_equal(a->set_beta_entropy, 1);
  unit_assert_near(a->beta_entropy, 0, 0);
  assert_string_equal(a->tracks[0], "oval");
  assert_int_equal(a->set_reward, 1);
  assert_string_equal(a->checkpoint_name, "best");
  run_ok(f, s, 2);
  assert_int_equal(a->num_tracks, 2);
  assert_int_equal(a->stop, 1);
  run_ok(f, s, 3);
  assert_string_equal(a->stop_reason, "laps done");
  run_ok(f, s, 4);
  assert_int_equal(a->stop, 0);
  ch_schedule_close(s);
}

/* Every field of ch_iteration_stats reaches the callback under its own name. */
static void test_stats_table(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_schedule *s = open_with(
      f,
      "    local names = {'iteration', 'episodes', 'total_episodes', 'steps', 'total_steps',\n"
      "      'mean_reward', 'mean_progress', 'completion_rate', 'rollout_seconds',\n"
      "      'update_seconds', 'elapsed_seconds', 'policy_loss', 'value_loss', 'entropy',\n"
      "      'approx_kl', 'clip_fraction', 'stale_segments', 'corrupt_segments',\n"
      "      'duplicate_segments', 'eval_laps', 'eval_lap_time'}\n"
      "    local parts = {}\n"
      "    for _, n in ipairs(names) do parts[#parts + 1] = tostring(stats[n]) end\n"
      "    training.stop(table.concat(parts, ' '))",
      path);
  ch_iteration_stats st = {.iteration = 12,
                           .episodes = 20,
                           .total_episodes = 240,
                           .steps = 3000,
                           .total_steps = 36000,
                           .mean_reward = 1.5,
                           .mean_progress = 42.25,
                           .completion_rate = 0.5,
                           .rollout_seconds = 2,
                           .update_seconds = 0.75,
                           .elapsed_seconds = 30,
                           .policy_loss = -0.125,
                           .value_loss = 0.25,
                           .entropy = 1.75,
                           .approx_kl = 0.0625,
                           .clip_fraction = 0.5,
                           .stale_segments = 3,
                           .corrupt_segments = 1,
                           .duplicate_segments = 2,
                           .eval_laps = 2,
                           .eval_lap_time = 9.5};
  ch_error err = {0, ""};
  unit_check(ch_schedule_on_iteration(s, &st, &f->act, &err), err);
  assert_string_equal(f->act.stop_reason, "12 20 240 3000 36000 1.5 42.25 0.5 2.0 0.75 30.0 "
                                          "-0.125 0.25 1.75 0.0625 0.5 3 1 2 2 9.5");
  ch_schedule_close(s);
}

static void test_callback_errors(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_schedule *s = open_with(f, "    local t = nil\n    return t.x", path);
  run_fails(f, s, path, 4, "attempt to index");
  ch_schedule_close(s);
  s = open_with(f, "    training.set_lr(0.5)\n    while true do end", path);
  run_fails(f, s, path, 4, "instruction budget");
  ch_schedule_close(s);
  s = open_with(f, "    pcall(function() while true do end end)", path);
  run_fails(f, s, path, 3, "instruction budget");
  ch_schedule_close(s);
}

/* A bad request is an error at the line that made it. */
static void test_bad_requests(void **state) {
  fixture *f = *state;
  char path[1024];
  static const char *const calls[][2] = {
      {"training.set_lr(5)", "training.set_lr: lr 5 is outside (0, 1]"},
      {"training.set_lr('x')", "number expected"},
      {"training.set_beta_entropy(-1)", "training.set_beta_entropy: beta_entropy -1"},
      {"training.set_track('nowhere')", "training.set_track: no track 'nowhere'"},
      {"training.set_tracks({})", "training.set_tracks: needs a list of 1 to 8"},
      {"training.set_tracks({'oval', 3})", "training.set_tracks: entry 2 is not a track name"},
      {"training.set_reward('missing.lua')", "training.set_reward: missing.lua: no such file"},
      {"training.set_reward('broken.lua')", "broken.lua:3:"},
      {"training.save_checkpoint('no spaces please')", "checkpoint name \"no spaces please\""},
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    char body[256];
    snprintf(body, sizeof body, "    local x = 1\n    %s", calls[i][0]);
    ch_schedule *s = open_with(f, body, path);
    print_message("%s\n", calls[i][0]);
    run_fails(f, s, path, 4, calls[i][1]);
    ch_schedule_close(s);
  }
}

/* A bad returned table is reported at the line where on_iteration is defined. */
static void test_bad_returns(void **state) {
  fixture *f = *state;
  char path[1024];
  static const char *const returns[][2] = {
      {"return 5", "on_iteration returned a number: return nothing or a table"},
      {"return {colour = 'red'}", "returned an unknown key colour"},
      {"return {lr = 'fast'}", "returned lr = a string, not a number"},
      {"return {lr = 2}", "lr 2 is outside (0, 1]"},
      {"return {stop = 3}", "returned stop = a number"},
      {"return {track = 'nowhere'}", "no track 'nowhere'"},
      {"return {tracks = {}}", "returned tracks: needs 1 to 8 names"},
      {"return {checkpoint = 7}", "returned checkpoint = a number, not a string"},
      {"return {[1] = 'x'}", "returned a table with a non-name key"},
  };
  for (size_t i = 0; i < sizeof returns / sizeof returns[0]; i++) {
    ch_schedule *s = open_with(f, returns[i][0], path);
    print_message("%s\n", returns[i][0]);
    run_fails(f, s, path, 2, returns[i][1]);
    ch_schedule_close(s);
  }
}

/* The callback's state persists between iterations, and an error does not break the next. */
static void test_state_between_iterations(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_schedule *s = open_with(f,
                             "    calls = (calls or 0) + 1\n"
                             "    if stats.iteration == 6 then error('once') end\n"
                             "    training.save_checkpoint('n' .. calls)",
                             path);
  run_ok(f, s, 1);
  assert_string_equal(f->act.checkpoint_name, "n1");
  run_fails(f, s, path, 4, "once");
  run_ok(f, s, 7);
  assert_string_equal(f->act.checkpoint_name, "n3");
  ch_schedule_close(s);
}

/* The shipped curriculum example: lr decays, then the oval-to-bayside switch, then the stop. */
static void test_curriculum_example(void **state) {
  fixture *f = *state;
  ch_error err = {0, ""};
  unit_check(ch_config_load(CHICANE_SOURCE_DIR "/scripts/curriculum.lua", &f->cfg, &err), err);
  ch_schedule *s = NULL;
  unit_check(ch_schedule_open(&f->cfg, &s, &err), err);
  ch_iteration_stats st = stats(0);
  st.completion_rate = 0.1;
  unit_check(ch_schedule_on_iteration(s, &st, &f->act, &err), err);
  unit_assert_near(f->act.lr, 0.0005 * 0.97, 1e-15);
  assert_int_equal(f->act.set_tracks, 0);
  st.iteration = 1;
  st.completion_rate = 0.7;
  unit_check(ch_schedule_on_iteration(s, &st, &f->act, &err), err);
  unit_assert_near(f->act.lr, 0.0005 * 0.97 * 0.97, 1e-15);
  assert_int_equal(f->act.set_tracks, 1);
  assert_string_equal(f->act.tracks[0], "bayside");
  assert_string_equal(f->act.checkpoint_name, "oval-done");
  st.iteration = 2;
  st.completion_rate = 0.95;
  unit_check(ch_schedule_on_iteration(s, &st, &f->act, &err), err);
  assert_int_equal(f->act.stop, 1);
  assert_string_equal(f->act.stop_reason, "bayside laps mostly complete");
  ch_schedule_close(s);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_no_callback), T(test_requests_by_call),         T(test_requests_by_return),
      T(test_stats_table), T(test_callback_errors),          T(test_bad_requests),
      T(test_bad_returns), T(test_state_between_iterations), T(test_curriculum_example),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
