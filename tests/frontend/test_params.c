/* test_params.c -- the reward params: every DeepRacer name with the right Lua type, from the real
** env, the objects lists, and chicane's racing line. */
#include "unit_test.h"

#include "config.h"
#include "plugin_open.h"
#include "reward.h"

typedef struct fixture {
  char dir[512];
  const ch_env_vtable *env;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  unit_mkdtemp(f->dir, sizeof f->dir, "frontend-params");
  f->env = test_plugin_open("env_sim2d.so");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  unit_rmdir(f->dir);
  free(f);
  return 0;
}

/* Checks every name DeepRacer gives (and chicane's two), their types, their shapes and
** 1-based indices, and that nothing else is there; returns the number of objects. */
static const char check_script[] =
    "local expect = {\n"
    "  all_wheels_on_track = 'boolean', x = 'float', y = 'float', heading = 'float',\n"
    "  distance_from_center = 'float', is_left_of_center = 'boolean', progress = 'float',\n"
    "  steps = 'integer', speed = 'float', steering_angle = 'float', track_width = 'float',\n"
    "  track_length = 'float', waypoints = 'table', closest_waypoints = 'table',\n"
    "  is_offtrack = 'boolean', is_crashed = 'boolean', is_reversed = 'boolean',\n"
    "  closest_objects = 'table', objects_location = 'table', objects_left_of_center = 'table',\n"
    "  objects_distance = 'table', objects_heading = 'table', objects_speed = 'table',\n"
    "  racing_line = 'table', racing_line_speed = 'table',\n"
    "}\n"
    "local function kind(v)\n"
    "  return type(v) == 'number' and math.type(v) or type(v)\n"
    "end\n"
    "local function is_index(v, lo, hi)\n"
    "  return math.type(v) == 'integer' and v >= lo and v <= hi\n"
    "end\n"
    "local function points(name, t)\n"
    "  for i, p in ipairs(t) do\n"
    "    if kind(p) ~= 'table' or #p ~= 2 or kind(p[1]) ~= 'float' or kind(p[2]) ~= 'float' then\n"
    "      error(name .. '[' .. i .. '] is not {x, y}')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function list(name, t, want, n)\n"
    "  if #t ~= n then error(name .. ' has ' .. #t .. ' entries, not ' .. n) end\n"
    "  for i = 1, n do\n"
    "    if kind(t[i]) ~= want then error(name .. '[' .. i .. '] is a ' .. kind(t[i])) end\n"
    "  end\n"
    "end\n"
    "function reward_function(p)\n"
    "  for name, want in pairs(expect) do\n"
    "    if kind(p[name]) ~= want then\n"
    "      error(name .. ' is a ' .. kind(p[name]) .. ', expected ' .. want)\n"
    "    end\n"
    "  end\n"
    "  for name in pairs(p) do\n"
    "    if expect[name] == nil then error('unexpected param ' .. tostring(name)) end\n"
    "  end\n"
    "  points('waypoints', p.waypoints)\n"
    "  local cw = p.closest_waypoints\n"
    "  if #cw ~= 2 or not is_index(cw[1], 1, #p.waypoints) or not is_index(cw[2], 1, "
    "#p.waypoints) then\n"
    "    error('closest_waypoints out of range')\n"
    "  end\n"
    "  local n = #p.objects_location\n"
    "  points('objects_location', p.objects_location)\n"
    "  list('objects_left_of_center', p.objects_left_of_center, 'boolean', n)\n"
    "  list('objects_distance', p.objects_distance, 'float', n)\n"
    "  list('objects_heading', p.objects_heading, 'float', n)\n"
    "  list('objects_speed', p.objects_speed, 'float', n)\n"
    "  local co = p.closest_objects\n"
    "  if #co ~= 2 or not is_index(co[1], 0, n) or not is_index(co[2], 0, n) then\n"
    "    error('closest_objects out of range: ' .. tostring(co[1]) .. ', ' .. tostring(co[2]))\n"
    "  end\n"
    "  points('racing_line', p.racing_line)\n"
    "  list('racing_line_speed', p.racing_line_speed, 'float', #p.racing_line)\n"
    "  if p.progress < 0 or p.progress > 100 or p.track_width <= 0 or p.steps < 1 then\n"
    "    error('a value out of its range')\n"
    "  end\n"
    "  return n\n"
    "end\n";

/* An env from the JSON text, one car. */
static void *make_env(fixture *f, const char *race_type, ch_env_spec *spec) {
  ch_train_config *c = malloc(sizeof *c);
  assert_non_null(c);
  ch_config_defaults(c);
  snprintf(c->race_type, sizeof c->race_type, "%s", race_type);
  cJSON *j = ch_config_env_json(c, CHICANE_SOURCE_DIR "/tracks/bayside.track", 1);
  char *json = cJSON_PrintUnformatted(j);
  void *env = NULL;
  ch_error err = {0, ""};
  unit_check(f->env->create(json, &test_host, &env, &err), err);
  f->env->spec(env, spec);
  cJSON_free(json);
  cJSON_Delete(j);
  free(c);
  return env;
}

/* Drive the car round for steps steps from a few starts in both directions, checking the
** params each step; returns the largest object count seen. */
static int drive_and_check(fixture *f, const char *race_type, int with_line) {
  ch_env_spec spec;
  void *env = make_env(f, race_type, &spec);
  double *wp = calloc(2 * (size_t)spec.num_waypoints, sizeof(double));
  assert_int_equal(f->env->waypoints(env, wp, spec.num_waypoints), (int)spec.num_waypoints);
  char path[1024];
  unit_write(f->dir, "check.lua", check_script, path, sizeof path);
  int most = 0;
  for (int rev = 0; rev < 2; rev++) {
    double *line = NULL, *speed = NULL;
    uint32_t nl = 0;
    ch_error err = {0, ""};
    if (with_line)
      unit_check(ch_reward_racing_line(CHICANE_SOURCE_DIR "/tracks/bayside.track", rev, &line,
                                       &speed, &nl, &err),
                 err);
    ch_reward_options ro = {wp, spec.num_waypoints, 0, 0};
    ch_reward_extra ex = {line, speed, nl};
    ch_reward *r = NULL;
    unit_check(ch_reward_open_extra(path, &ro, &ex, &r, &err), err);
    for (int start = 0; start < 4; start++) {
      ch_env_reset opt = {start * 0.25, 0.0, rev, 0, (uint64_t)start + 7};
      ch_env_params p;
      unit_check(f->env->reset(env, 0, &opt, NULL, NULL, &p, &err), err);
      float steer = 3.0f, sp = 1.5f;
      int32_t status = 0;
      for (int s = 0; s < 40 && status == CH_EPISODE_IN_PROGRESS; s++) {
        unit_check(f->env->step(env, &steer, &sp, NULL, NULL, NULL, &p, &status, &err), err);
        double n = -1;
        unit_check(ch_reward_call(r, &p, &n, &err), err);
        assert_int_equal((int)n, (int)p.num_objects);
        if ((int)n > most) most = (int)n;
      }
    }
    ch_reward_close(r);
    free(line);
    free(speed);
  }
  free(wp);
  f->env->destroy(env);
  return most;
}

static void test_time_trial_params(void **state) {
  assert_int_equal(drive_and_check(*state, "time_trial", 0), 0);
}

static void test_object_avoidance_params(void **state) {
  assert_int_equal(drive_and_check(*state, "object_avoidance", 1), 3);
}

static void test_head_to_head_params(void **state) {
  assert_int_equal(drive_and_check(*state, "head_to_head", 1), 3);
}

/* ---- exact values of the objects lists ---------------------------------------------------- */

/* Returns the params field selected by params.steps, so that each is checked alone. */
static const char query_script[] =
    "local b = function(v) return v == true and 1 or v == false and 0 or -1 end\n"
    "local q = {\n"
    "  function(p) return #p.objects_location * 100 + #p.objects_speed end,\n"
    "  function(p) return p.objects_location[2][1] * 1000 + p.objects_location[2][2] end,\n"
    "  function(p) return b(p.objects_left_of_center[1]) * 10 + "
    "b(p.objects_left_of_center[2]) end,\n"
    "  function(p) return p.objects_distance[3] + p.objects_heading[3] * 1000 end,\n"
    "  function(p) return p.objects_speed[2] end,\n"
    "  function(p) return p.closest_objects[1] * 10 + p.closest_objects[2] end,\n"
    "  function(p) return #p.objects_heading * 100 + #p.objects_left_of_center end,\n"
    "}\n"
    "local saved\n"
    "function reward_function(p)\n"
    "  if p.steps == 8 then saved = p.objects_location return 0 end\n"
    "  if p.steps == 9 then return rawequal(saved, p.objects_location) and 1 or 0 end\n"
    "  return q[p.steps](p)\n"
    "end\n";

static double call(ch_reward *r, ch_env_params *p, int steps) {
  double v = -12345;
  ch_error err = {0, ""};
  p->steps = steps;
  unit_check(ch_reward_call(r, p, &v, &err), err);
  return v;
}

static void test_object_values(void **state) {
  fixture *f = *state;
  char path[1024];
  unit_write(f->dir, "query.lua", query_script, path, sizeof path);
  static const double wp[4] = {0, 0, 1, 0};
  ch_reward_options ro = {wp, 2, 0, 0};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(ch_reward_open(path, &ro, &r, &err), err);
  ch_env_object obj[3] = {{1.5, 2.5, 10, 0, 3.25, 1, CH_OBJECT_BOX},
                          {4.0, 0.5, -20, 1.75, 7.5, 0, CH_OBJECT_BOT_CAR},
                          {6.0, 1.0, 45, 0, 12.0, 1, CH_OBJECT_BOX}};
  ch_env_params p = {.track_width = 0.76, .track_length = 17, .all_wheels_on_track = 1};
  p.num_objects = 3;
  p.objects = obj;
  p.closest_objects[0] = 0; /* behind: the first object */
  p.closest_objects[1] = 2; /* ahead: the third */
  unit_assert_near(call(r, &p, 1), 303, 0);
  unit_assert_near(call(r, &p, 2), 4000.5, 1e-9);
  unit_assert_near(call(r, &p, 3), 10, 0);
  unit_assert_near(call(r, &p, 4), 12 + 45000, 1e-9);
  unit_assert_near(call(r, &p, 5), 1.75, 0);
  unit_assert_near(call(r, &p, 6), 13, 0); /* 1-based: {1, 3} */
  /* the lists shrink with the count, in every list, and keep being the same tables */
  unit_assert_near(call(r, &p, 8), 0, 0);
  p.num_objects = 1;
  p.closest_objects[1] = -1; /* nothing ahead: 0 */
  unit_assert_near(call(r, &p, 1), 101, 0);
  unit_assert_near(call(r, &p, 7), 101, 0);
  unit_assert_near(call(r, &p, 6), 10, 0);
  unit_assert_near(call(r, &p, 9), 1, 0);
  p.num_objects = 0;
  p.closest_objects[0] = -1;
  unit_assert_near(call(r, &p, 1), 0, 0);
  unit_assert_near(call(r, &p, 6), 0, 0);
  /* an index beyond the count is reported as none rather than as a dangling index */
  p.num_objects = 2;
  p.closest_objects[0] = 5;
  p.closest_objects[1] = 1;
  unit_assert_near(call(r, &p, 1), 202, 0);
  unit_assert_near(call(r, &p, 6), 2, 0);
  unit_assert_near(call(r, &p, 9), 1, 0);
  ch_reward_close(r);
}

static void test_racing_line_values(void **state) {
  fixture *f = *state;
  char path[1024];
  unit_write(f->dir, "line.lua",
             "function reward_function(p)\n"
             "  if p.steps == 1 then return #p.racing_line * 100 + #p.racing_line_speed end\n"
             "  if p.steps == 2 then return p.racing_line[3][1] * 10 + p.racing_line[3][2] end\n"
             "  return p.racing_line_speed[2]\n"
             "end\n",
             path, sizeof path);
  static const double wp[4] = {0, 0, 1, 0};
  static const double line[6] = {0, 0.1, 1, 0.2, 2, 0.3}, speed[3] = {1.5, 2.5, 3.5};
  ch_reward_options ro = {wp, 2, 0, 0};
  ch_reward_extra ex = {line, speed, 3};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(ch_reward_open_extra(path, &ro, &ex, &r, &err), err);
  ch_env_params p = {.track_width = 0.76, .track_length = 17};
  p.closest_objects[0] = p.closest_objects[1] = -1;
  unit_assert_near(call(r, &p, 1), 303, 0);
  unit_assert_near(call(r, &p, 2), 20.3, 1e-12);
  unit_assert_near(call(r, &p, 3), 2.5, 0);
  ch_reward_close(r);
  /* without a racing line the tables are there and empty */
  unit_check(ch_reward_open(path, &ro, &r, &err), err);
  unit_assert_near(call(r, &p, 1), 0, 0);
  ch_reward_close(r);
}

/* The racing line of a track is inside its borders and has plausible speeds. */
static void test_racing_line_of_a_track(void **state) {
  (void)state;
  double *xy = NULL, *v = NULL;
  uint32_t n = 0;
  ch_error err = {0, ""};
  unit_check(ch_reward_racing_line(CHICANE_SOURCE_DIR "/tracks/oval.track", 0, &xy, &v, &n, &err),
             err);
  assert_true(n > 10);
  for (uint32_t i = 0; i < n; i++) {
    if (!(v[i] >= 0.1 && v[i] <= 4.0)) fail_msg("speed %g at point %u", v[i], i);
    if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1])) fail_msg("point %u not finite", i);
  }
  free(xy);
  free(v);
  unit_expect(ch_reward_racing_line("/nonexistent.track", 0, &xy, &v, &n, &err), CH_ENOTFOUND, err);
  assert_null(xy);
}

/* The shipped object-avoidance reward, translated from DeepRacer's example. */
static void test_object_avoidance_reward(void **state) {
  (void)state;
  static const double wp[4] = {0, 0, 1, 0};
  ch_reward_options ro = {wp, 2, 0, 0};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(ch_reward_open(CHICANE_SOURCE_DIR "/rewards/object_avoidance.lua", &ro, &r, &err),
             err);
  ch_env_object obj[1] = {{1.0, 0.0, 0, 0, 1.0, 1, CH_OBJECT_BOX}};
  ch_env_params p = {.x = 0.6, .y = 0.0, .track_width = 0.76, .distance_from_center = 0.1};
  p.all_wheels_on_track = 1;
  p.is_left_of_center = 1;
  p.num_objects = 1;
  p.objects = obj;
  p.closest_objects[0] = -1;
  p.closest_objects[1] = 0;
  /* 0.4 m behind a box in its lane: lane 1 + 4 * 0.2 */
  unit_assert_near(call(r, &p, 3), 1e-3 + 1.0 + 4.0 * 0.2, 1e-12);
  p.x = 0.35; /* 0.65 m: 0.5 */
  unit_assert_near(call(r, &p, 4), 1e-3 + 1.0 + 4.0 * 0.5, 1e-12);
  p.x = 0.8; /* 0.2 m: likely crashed */
  unit_assert_near(call(r, &p, 5), 1e-3 + 1.0 + 4.0 * 1e-3, 1e-12);
  p.is_left_of_center = 0; /* the other lane: no penalty */
  unit_assert_near(call(r, &p, 6), 1e-3 + 1.0 + 4.0, 1e-12);
  p.num_objects = 0; /* no objects at all: the lane alone */
  p.closest_objects[1] = -1;
  p.all_wheels_on_track = 0;
  unit_assert_near(call(r, &p, 7), 1e-3 + 1e-3 + 4.0, 1e-12);
  ch_reward_close(r);
}

/* The racing-line reward: more on the line at its speed than off it or too slow. */
static void test_racing_line_reward(void **state) {
  (void)state;
  static const double wp[8] = {0, 0, 1, 0, 2, 0, 3, 0};
  static const double line[8] = {0, 0.1, 1, 0.1, 2, 0.1, 3, 0.1}, speed[4] = {2, 2, 2, 2};
  ch_reward_options ro = {wp, 4, 0, 0};
  ch_reward_extra ex = {line, speed, 4};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(
      ch_reward_open_extra(CHICANE_SOURCE_DIR "/rewards/racing_line.lua", &ro, &ex, &r, &err), err);
  ch_env_params p = {.x = 1.2, .y = 0.1, .speed = 2, .track_width = 0.8};
  p.all_wheels_on_track = 1;
  double on = call(r, &p, 1);
  unit_assert_near(on, 1.001, 1e-9);
  p.y = 0.3; /* 0.2 m off the line, half way to a half width */
  double off = call(r, &p, 2);
  unit_assert_near(off, 1e-3 + 0.25, 1e-9);
  p.y = 0.1;
  p.speed = 1; /* 1 m/s too slow: half the speed term */
  unit_assert_near(call(r, &p, 3), 1e-3 + 0.5, 1e-9);
  p.is_offtrack = 1;
  unit_assert_near(call(r, &p, 4), 1e-3, 0);
  ch_reward_close(r);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_time_trial_params),       T(test_object_avoidance_params),
      T(test_head_to_head_params),     T(test_object_values),
      T(test_racing_line_values),      T(test_racing_line_of_a_track),
      T(test_object_avoidance_reward), T(test_racing_line_reward),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
