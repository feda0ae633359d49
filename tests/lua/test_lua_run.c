/* test_lua_run.c -- `chicane run SCRIPT`: tracks, envs, rewards, training and driving from Lua. */
#include "lua_test.h"

#include "track.h"

#include <math.h>

typedef struct fixture {
  char home[512];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  lt_mkdtemp(f->home, sizeof f->home, "run");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  lt_rmdir(f->home);
  free(f);
  return 0;
}

/* Write the script as HOME/name and run `chicane run --home HOME script args`. */
static int run(const fixture *f, const char *name, const char *script, const char *args,
               char **out) {
  char path[1024], cmd[2048];
  lt_write(f->home, name, script, path, sizeof path);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run --home '%s' '%s' %s", f->home, LT_CHICANE, f->home,
           path, args ? args : "");
  return lt_sh(f->home, cmd, NULL, out);
}

/* run, failing with the output unless the exit status is want; returns the output. */
static char *run_expect(const fixture *f, const char *name, const char *script, const char *args,
                        int want) {
  char *out;
  int rc = run(f, name, script, args, &out);
  if (rc != want) fail_msg("exit status %d, expected %d; output:\n%s", rc, want, out);
  return out;
}

static void expect_output(const char *out, const char *want) {
  if (strcmp(out, want) != 0) fail_msg("got:\n%s\nwanted:\n%s", out, want);
}

static void test_run_track_geometry(void **state) {
  char *out;
  out = run_expect(
      *state, "track.lua",
      "local t = chicane.track('bayside')\n"
      "print(string.format('%s %.6f %.6f %s %d', t.name, t.length, t.width,\n"
      "                    tostring(t.loop), t.points))\n"
      "print(#t.waypoints == t.points, #t.left == t.points, t.waypoints == t.waypoints)\n"
      "local x, y, h = t:point_at(t.length / 4)\n"
      "local p = t:project(x, y)\n"
      "print(string.format('%.6f %.6f %.1f', p.s, p.distance, p.progress))\n"
      "local a = math.rad(h + 90)\n"
      "local q = t:project(x + 0.1 * math.cos(a), y + 0.1 * math.sin(a))\n"
      "print(string.format('%.4f %s %s', q.offset, q.left_of_center, q.on_track))\n"
      "print(chicane.track(t) == t, chicane.track(t.path).name)\n",
      NULL, 0);
  ch_track *t;
  ch_error err = {0, ""};
  if (ch_track_load(CHICANE_SOURCE_DIR "/tracks/bayside.track", &t, &err) != CH_OK)
    fail_msg("%s", err.message);
  char want[1024];
  snprintf(want, sizeof want,
           "bayside %.6f %.6f true %d\n"
           "true\ttrue\ttrue\n"
           "%.6f 0.000000 25.0\n"
           "0.1000 true true\n"
           "true\tbayside\n",
           t->length, t->width, t->n, t->length / 4);
  ch_track_free(t);
  expect_output(out, want);
  free(out);
}

static void test_run_env_steps_and_reward(void **state) {
  char *out;
  out = run_expect(*state, "env.lua",
                   "local env <close> = chicane.env{track = 'oval', max_steps = 200}\n"
                   "local obs, p = env:reset{start = 0.5}\n"
                   "assert(#obs == env.obs_size and env.num_cars == 1)\n"
                   "local status\n"
                   "for i = 1, 10 do obs, p, status = env:step(0, 1) end\n"
                   "print(status, p.steps, p.progress > 0, p.all_wheels_on_track, #p.waypoints)\n"
                   "local r = chicane.reward('rewards/follow_center_line.lua', 'oval')\n"
                   "local v = r:call(p)\n"
                   "print(math.type(v), v >= 0.001 and v <= 1)\n"
                   "print(r{distance_from_center = 0.0, track_width = 0.76},\n"
                   "      r{distance_from_center = 0.5, track_width = 0.76})\n"
                   "print(pcall(r.call, r, {track_width = 'wide'}))\n"
                   "env:reset{}\n"
                   "repeat obs, p, status = env:step(30, 4) until status ~= 'in_progress'\n"
                   "print(status, p.episode_status, p.is_offtrack)\n"
                   "print(pcall(env.step, env, 0, 1))\n"
                   "obs, p = env:recover()\n"
                   "print(p.episode_status, select(3, env:step(0, 1)))\n"
                   "print(pcall(env.reset, env, {lap = 1}))\n",
                   NULL, 0);
  lt_assert_contains(out, "in_progress\t10\ttrue\ttrue\t145\n");
  lt_assert_contains(out, "float\ttrue\n");
  lt_assert_contains(out, "1.0\t0.001\n");
  lt_assert_contains(out, "false\treward:call: params.track_width must be a number, got string\n");
  lt_assert_contains(out, "off_track\toff_track\ttrue\n");
  lt_assert_contains(out, "false\tenv:step: the episode ended (off_track): reset or recover");
  lt_assert_contains(out, "in_progress\tin_progress\n");
  lt_assert_contains(out, "false\tenv:reset: unknown option 'lap'\n");
  free(out);
}

static void test_run_many_cars(void **state) {
  char *out;
  out = run_expect(*state, "cars.lua",
                   "local env = chicane.env{track = 'oval', num_cars = 3}\n"
                   "local obs, params = env:reset{}\n"
                   "print(#obs, #params)\n"
                   "local _, p1 = env:reset{car = 2, start = 0.5}\n"
                   "print(math.abs(p1.x - params[1].x) + math.abs(p1.y - params[1].y) > 1)\n"
                   "local o, ps, st = env:step({0, 0, 0}, {1, 2, 3})\n"
                   "print(#o, #ps, table.concat(st, ','))\n"
                   "print(ps[3].speed, ps[1].speed)\n"
                   "print(pcall(env.step, env, 0, 1))\n"
                   "print(pcall(env.step, env, {0, 0}, {1, 1, 1}))\n"
                   "env:close()\n"
                   "print(pcall(env.spec, env))\n"
                   "print(env)\n",
                   NULL, 0);
  expect_output(out, "3\t3\n"
                     "true\n"
                     "3\t3\tin_progress,in_progress,in_progress\n"
                     "3.0\t1.0\n"
                     "false\tenv:step: the env has 3 cars: pass lists of steering angles and "
                     "speeds, one per car\n"
                     "false\tenv:step: steering[3] must be a number, got nil\n"
                     "false\tenv is closed\n"
                     "<chicane.env (closed)>\n");
  free(out);
}

static void test_run_arguments_and_libraries(void **state) {
  char *out;
  out = run_expect(*state, "args.lua",
                   "print(arg[0]:match('[^/]*$'), arg[1], arg[2], #arg, select('#', ...), ...)\n"
                   "print(arg[-1])\n"
                   "print(require('chicane') == chicane, package.loaded.chicane == chicane)\n"
                   "print(type(io.open), type(os.time), type(debug.traceback))\n"
                   "io.stdout:flush()\n"
                   "os.exit(3)\n",
                   "first 'second arg'", 3);
  lt_assert_contains(out, "args.lua\tfirst\tsecond arg\t2\t2\tfirst\tsecond arg\n");
  lt_assert_contains(out, "chicane run\n");
  lt_assert_contains(out, "true\ttrue\nfunction\tfunction\tfunction\n");
  free(out);
}

static void test_run_home_follows_the_option(void **state) {
  fixture *f = *state;
  char *out, want[1200];
  out = run_expect(f, "home.lua",
                   "local h = chicane.home()\n"
                   "print(h.home) print(h.storage) print(h.catalog)\n"
                   "chicane.home('/elsewhere')\n"
                   "print(chicane.home().catalog)\n"
                   "print(pcall(chicane.home, 42))\n",
                   NULL, 0);
  snprintf(want, sizeof want,
           "%s\n%s/storage\n%s/catalog.db\n/elsewhere/catalog.db\n"
           "false\tchicane.home: expected a directory or a table, got number\n",
           f->home, f->home, f->home);
  expect_output(out, want);
  free(out);
}

static void test_run_error_exits_with_traceback(void **state) {
  char *out;
  out = run_expect(*state, "errors.lua",
                   "local function inner() error('bad thing happened') end\n"
                   "local function outer() inner() end\n"
                   "print('before')\n"
                   "outer()\n"
                   "print('after')\n",
                   NULL, 1);
  lt_assert_contains(out, "before\n");
  lt_assert_contains(out, "chicane run: ");
  lt_assert_contains(out, "errors.lua:1: bad thing happened\n");
  lt_assert_contains(out, "stack traceback:");
  lt_assert_contains(out, "errors.lua:2: in ");
  lt_assert_not_contains(out, "after");
  free(out);
}

static void test_run_bad_scripts_and_usage(void **state) {
  fixture *f = *state;
  char *out, cmd[1024];
  out = run_expect(f, "syntax.lua", "x = = 1\n", NULL, 1);
  lt_assert_contains(out, "syntax.lua:1: unexpected symbol near '='");
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' run '%s/nosuch.lua'", LT_CHICANE, f->home);
  assert_int_equal(lt_sh(f->home, cmd, NULL, &out), 1);
  lt_assert_contains(out, "cannot open");
  lt_assert_contains(out, "nosuch.lua");
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' run", LT_CHICANE);
  assert_int_equal(lt_sh(f->home, cmd, NULL, &out), 2);
  lt_assert_contains(out, "needs a SCRIPT");
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' run - one", LT_CHICANE);
  assert_int_equal(lt_sh(f->home, cmd, "print('from stdin', ...)\n", &out), 0);
  expect_output(out, "from stdin\tone\n");
  free(out);
}

static void test_run_racing_line_render_and_images(void **state) {
  fixture *f = *state;
  lt_write(f->home, "line.lua",
           "function reward_function(params)\n"
           "  return #params.racing_line + #params.waypoints / 1000\n"
           "end\n",
           NULL, 0);
  char *out = run_expect(
      f, "views.lua",
      "local t = chicane.track('oval')\n"
      "local rl = t:racing_line()\n"
      "print(#rl.points == t.points, #rl.speed == t.points, rl.lap_time > 0,\n"
      "      rl.standing_lap_time > rl.lap_time, rl.length < t.length)\n"
      "print(t:reference_lap() == rl.standing_lap_time, t:centre_line().lap_time > rl.lap_time)\n"
      "print(pcall(t.racing_line, t, {mu = 1}))\n"
      "print(chicane.reward('line.lua', t)({}), chicane.reward('line.lua')({}))\n"
      "print(chicane.reward('line.lua', 'oval', {reversed = true})({}))\n"
      "local png = '\\137PNG\\r\\n\\26\\n'\n"
      "for _, sensor in ipairs({'camera', 'lidar', 'top'}) do\n"
      "  local f = chicane.render{track = t, sensor = sensor, progress = 20, out = sensor .. "
      "'.png'}\n"
      "  print(f, io.open(f, 'rb'):read(8) == png)\n"
      "end\n"
      "print(select(2, pcall(chicane.render, {track = 'oval', sensor = 'sonar'})):match('sonar'))\n"
      "print(pcall(chicane.render, {track = 'oval', at = 5}))\n"
      "local env = chicane.env{track = 'oval', sensors = {'camera'}, camera = {downscale = 4}}\n"
      "local obs = env:reset{}\n"
      "local im = obs.image\n"
      "print(im, im.width, im.height, im.channels, #im.bytes, #obs, env.obs_size)\n"
      "print(im:at(40, 30) == im.bytes:byte(40 * 30), im:mean() > 0)\n"
      "print(im:save('frame.png') == im, io.open('frame.png', 'rb'):read(8) == png)\n"
      "print(select(2, pcall(im.at, im, 41, 1)):match('column outside the image'))\n",
      NULL, 0);
  expect_output(out, "true\ttrue\ttrue\ttrue\ttrue\n"
                     "true\ttrue\n"
                     "false\ttrack:racing_line: unknown option 'mu'\n"
                     "145.145\t0.0\n"
                     "145.145\n"
                     "camera.png\ttrue\n"
                     "lidar.png\ttrue\n"
                     "top.png\ttrue\n"
                     "sonar\n"
                     "false\tchicane.render: unknown option 'at'\n"
                     "<chicane.image 40x30, 1 channel>\t40\t30\t1\t1200\t0\t0\n"
                     "true\ttrue\n"
                     "true\ttrue\n"
                     "column outside the image\n");
  free(out);
}

static void test_run_the_tour_example(void **state) {
  fixture *f = *state;
  char cmd[2048], *out;
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run --home '%s' '%s/scripts/repl/tour.lua' '%s'",
           f->home, LT_CHICANE, f->home, CHICANE_SOURCE_DIR, f->home);
  int rc = lt_sh(f->home, cmd, NULL, &out);
  if (rc != 0) fail_msg("tour.lua exited with %d:\n%s", rc, out);
  lt_assert_contains(out, "<chicane.track bayside: loop, ");
  lt_assert_contains(out, "lap_complete after ");
  lt_assert_contains(out, "racing line ");
  lt_assert_contains(out, "/camera.png\n");
  lt_assert_contains(out, "/track.png\n");
  free(out);
}

static void test_run_train_then_drive(void **state) {
  fixture *f = *state;
  char train[1024], *out;
  char text[2048];
  snprintf(text, sizeof text,
           "return {\n"
           "  model = 'quick', track = 'bayside', reward = '%s/rewards/follow_center_line.lua',\n"
           "  action_space = action_grid({-30, 0, 30}, {1.0}),\n"
           "  hyperparameters = { num_episodes_between_training = 4, num_epochs = 1 },\n"
           "  stop = { max_iterations = 2 },\n"
           "  workers = 1, cars_per_worker = 4, max_steps = 200,\n"
           "}\n",
           CHICANE_SOURCE_DIR);
  lt_write(f->home, "quick.lua", text, train, sizeof train);
  out = run_expect(
      f, "drive.lua",
      "local s = chicane.train(arg[1], {quiet = true, max_seconds = 120})\n"
      "print('trained', s.model, s.iterations, s.last.iteration, s.env_steps > 0)\n"
      "local ms = chicane.models()\n"
      "print(#ms, ms[1].name, ms[1].track, ms[1].iterations)\n"
      "local m <close> = chicane.model('quick')\n"
      "print(m.name, m.track, m.num_actions, m.iteration, #m.actions, m.status)\n"
      "local env = chicane.env{track = m.track}\n"
      "local obs = env:reset{}\n"
      "local i, steer, speed = m:act(obs)\n"
      "print(i >= 1 and i <= 3, steer == m.actions[i].steering_angle, speed == 1.0)\n"
      "local sum = 0 for _, p in ipairs(m:probabilities(obs)) do sum = sum + p end\n"
      "print(math.abs(sum - 1) < 1e-5)\n"
      "local d = m:drive{trials = 2, max_seconds = 10}\n"
      "print(d.track, #d.trials, d.completed_laps <= 2, d.off_track >= 0, d.model, d.iteration)\n"
      "print(d.trials[1].progress == d.trials[2].progress, d.trials[2].trial)\n"
      "print(m:drive{track = chicane.track('oval'), max_seconds = 5}.track:match('oval') ~= nil)\n"
      "print(#m:checkpoints(), #chicane.checkpoints('quick'), #m:evaluations())\n"
      "print(m:checkpoints()[2].iteration, type(m:checkpoints()[1].metrics))\n"
      "print(pcall(chicane.model, 'nosuch'))\n"
      "chicane.home{catalog = 'other.db'} -- a model keeps the catalog it came from\n"
      "print(#chicane.models(), #m:checkpoints(), m:drive{max_seconds = 2}.model)\n"
      "print(pcall(m.drive, m, {trials = 0}))\n"
      "print(pcall(m.act, m, {1, 2}))\n"
      "print(pcall(chicane.train, arg[1], {speed = 1}))\n",
      train, 0);
  lt_assert_contains(out, "trained\tquick\t2\t1\ttrue\n");
  lt_assert_contains(out, "1\tquick\tbayside\t2\n");
  lt_assert_contains(out, "quick\tbayside\t3\t1\t3\tready\n");
  lt_assert_contains(out, "true\ttrue\ttrue\ntrue\n");
  lt_assert_contains(out, "bayside\t2\ttrue\ttrue\tquick\t1\n");
  /* greedy driving from the start line is deterministic */
  lt_assert_contains(out, "true\t2\ntrue\n2\t2\t0\n1\ttable\n");
  lt_assert_contains(out, "false\tchicane.model: no model 'nosuch'");
  lt_assert_contains(out, "0\t2\tquick\n");
  lt_assert_contains(out, "false\tmodel:drive: trials must be 1..100\n");
  lt_assert_contains(out, "false\tmodel:act: the model takes ");
  lt_assert_contains(out, " inputs, the observation has 2 (image 0 + 2 floats)\n");
  lt_assert_contains(out, "false\tchicane.train: unknown option 'speed'\n");
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_run_track_geometry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_env_steps_and_reward, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_many_cars, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_arguments_and_libraries, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_home_follows_the_option, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_error_exits_with_traceback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_bad_scripts_and_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_racing_line_render_and_images, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_the_tour_example, setup, teardown),
      cmocka_unit_test_setup_teardown(test_run_train_then_drive, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
