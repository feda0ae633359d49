/* test_reward.c -- Lua reward functions: the shipped examples, errors, the sandbox's limits. */
#include "unit_test.h"

#include "reward.h"

#include <lauxlib.h>
#include <lualib.h>

#define REWARDS CHICANE_SOURCE_DIR "/rewards/"

static const double waypoints[4 * 2] = {0.0, 0.0, 1.5, 0.25, 3.0, 1.0, 4.5, 2.5};

typedef struct fixture {
  char dir[512];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  unit_mkdtemp(f->dir, sizeof f->dir, "reward");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  unit_rmdir(f->dir);
  free(f);
  return 0;
}

static ch_env_params params(void) {
  return (ch_env_params){.x = 1.25,
                         .y = -0.5,
                         .heading = 30.0,
                         .distance_from_center = 0.0,
                         .progress = 12.5,
                         .speed = 2.0,
                         .steering_angle = 10.0,
                         .track_width = 0.76,
                         .track_length = 17.5,
                         .steps = 7,
                         .closest_waypoints = {0, 1},
                         .all_wheels_on_track = 1,
                         .is_left_of_center = 1};
}

static ch_reward *open_path(const char *path) {
  ch_reward_options opt = {waypoints, 4, 0, 0};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(ch_reward_open(path, &opt, &r, &err), err);
  assert_non_null(r);
  return r;
}

/* Write the script text to dir/name and open it; path gets the script's path. */
static ch_reward *open_text(fixture *f, const char *name, const char *text, char *path) {
  unit_write(f->dir, name, text, path, 1024);
  return open_path(path);
}

static double call_ok(ch_reward *r, const ch_env_params *p) {
  double v = -12345;
  ch_error err = {0, ""};
  unit_check(ch_reward_call(r, p, &v, &err), err);
  return v;
}

/* A call that must fail with CH_ESCRIPT and a message containing each of parts (NULL-ended). */
static void call_fails(ch_reward *r, const ch_env_params *p, const char *part, ...) {
  double v = -12345;
  ch_error err = {0, ""};
  unit_expect(ch_reward_call(r, p, &v, &err), CH_ESCRIPT, err);
  assert_int_equal(err.code, CH_ESCRIPT);
  va_list ap;
  va_start(ap, part);
  for (const char *s = part; s; s = va_arg(ap, const char *)) unit_assert_contains(err.message, s);
  va_end(ap);
}

/* ---- the shipped reward functions --------------------------------------------------------- */

static void test_follow_center_line(void **state) {
  (void)state;
  ch_reward *r = open_path(REWARDS "follow_center_line.lua");
  ch_env_params p = params();
  static const double frac[4] = {0.0, 0.2, 0.4, 0.6}, want[4] = {1.0, 0.5, 0.1, 1e-3};
  for (int i = 0; i < 4; i++) {
    p.distance_from_center = frac[i] * p.track_width;
    unit_assert_near(call_ok(r, &p), want[i], 0.0);
  }
  ch_reward_close(r);
}

static void test_prevent_zigzag(void **state) {
  (void)state;
  ch_reward *r = open_path(REWARDS "prevent_zigzag.lua");
  ch_env_params p = params();
  p.steering_angle = -10.0;
  unit_assert_near(call_ok(r, &p), 1.0, 1e-12);
  p.steering_angle = 20.0;
  unit_assert_near(call_ok(r, &p), 0.8, 1e-12);
  p.steering_angle = -20.0;
  p.distance_from_center = 0.2 * p.track_width;
  unit_assert_near(call_ok(r, &p), 0.4, 1e-12);
  ch_reward_close(r);
}

static void test_stay_inside_borders(void **state) {
  (void)state;
  ch_reward *r = open_path(REWARDS "stay_inside_borders.lua");
  ch_env_params p = params();
  p.distance_from_center = 0.1; /* 0.28 m from the border */
  unit_assert_near(call_ok(r, &p), 1.0, 0.0);
  p.distance_from_center = 0.35; /* 0.03 m from the border */
  unit_assert_near(call_ok(r, &p), 1e-3, 0.0);
  p.distance_from_center = 0.1;
  p.all_wheels_on_track = 0;
  unit_assert_near(call_ok(r, &p), 1e-3, 0.0);
  ch_reward_close(r);
}

static void test_progress(void **state) {
  (void)state;
  ch_reward *r = open_path(REWARDS "progress.lua");
  ch_env_params p = params();
  p.steps = 1;
  p.progress = 2.0;
  unit_assert_near(call_ok(r, &p), 2.0, 1e-12); /* centred: full weight */
  p.steps = 2;
  p.progress = 5.0;
  p.distance_from_center = 0.19; /* half way to the border: weight 0.75 */
  unit_assert_near(call_ok(r, &p), 2.25, 1e-12);
  p.steps = 3;
  p.progress = 4.0; /* going backwards pays nothing */
  unit_assert_near(call_ok(r, &p), 0.0, 0.0);
  p.steps = 1; /* a new episode forgets the last one's progress */
  p.progress = 1.0;
  p.distance_from_center = 0.0;
  unit_assert_near(call_ok(r, &p), 1.0, 1e-12);
  ch_reward_close(r);
}

/* ---- errors name the script, the line and the step ---------------------------------------- */

static void test_runtime_error(void **state) {
  char path[1024], line[1100];
  ch_reward *r = open_text(*state, "runtime.lua",
                           "function reward_function(params)\n"
                           "  local t = nil\n"
                           "  return t.x + 1\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  snprintf(line, sizeof line, "%s:3:", path);
  call_fails(r, &p, line, "step 7", NULL);
  ch_reward_close(r);
}

static void expect_open_fails(fixture *f, const char *name, const char *text, int rc,
                              const char *part) {
  char path[1024];
  unit_write(f->dir, name, text, path, sizeof path);
  ch_reward_options opt = {waypoints, 4, 0, 0};
  ch_reward *r = (ch_reward *)&r;
  ch_error err = {0, ""};
  unit_expect(ch_reward_open(path, &opt, &r, &err), rc, err);
  assert_null(r);
  unit_assert_contains(err.message, path);
  unit_assert_contains(err.message, part);
}

static void test_syntax_error(void **state) {
  expect_open_fails(*state, "syntax.lua",
                    "function reward_function(params)\n"
                    "  local x = 1 +\n"
                    "end\n",
                    CH_ESCRIPT, ".lua:3:");
}

static void test_missing_function(void **state) {
  expect_open_fails(*state, "nofn.lua", "reward = 1\n", CH_ESCRIPT, "reward_function");
  expect_open_fails(*state, "notfn.lua", "reward_function = 5\n", CH_ESCRIPT, "reward_function");
}

static void test_error_at_load(void **state) {
  expect_open_fails(*state, "loaderr.lua", "local a = 1\nerror('refusing to load')\n", CH_ESCRIPT,
                    ".lua:2: refusing to load");
}

static void test_missing_file(void **state) {
  fixture *f = *state;
  char path[1024];
  snprintf(path, sizeof path, "%s/absent.lua", f->dir);
  ch_reward_options opt = {waypoints, 4, 0, 0};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_expect(ch_reward_open(path, &opt, &r, &err), CH_ENOTFOUND, err);
  unit_assert_contains(err.message, path);
}

static void test_bad_values(void **state) {
  static const char *const bodies[] = {"return nil",       "return 'fast'",     "return 0/0",
                                       "return math.huge", "return -math.huge", "return 2e5",
                                       "return -100001",   "return {}"};
  ch_env_params p = params();
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    char text[256], path[1024], name[32];
    snprintf(text, sizeof text, "function reward_function(params)\n  %s\nend\n", bodies[i]);
    snprintf(name, sizeof name, "bad%zu.lua", i);
    ch_reward *r = open_text(*state, name, text, path);
    print_message("%s\n", bodies[i]);
    call_fails(r, &p, path, "step 7", NULL);
    ch_reward_close(r);
  }
}

static void test_limits_inclusive(void **state) {
  char path[1024];
  ch_reward *r = open_text(*state, "edge.lua",
                           "function reward_function(params)\n"
                           "  if params.steps == 1 then return 1e5 end\n"
                           "  return -1e5\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  p.steps = 1;
  unit_assert_near(call_ok(r, &p), 1e5, 0.0);
  p.steps = 2;
  unit_assert_near(call_ok(r, &p), -1e5, 0.0);
  ch_reward_close(r);
}

/* ---- the sandbox: time, memory, libraries ------------------------------------------------- */

static void test_endless_loop(void **state) {
  char path[1024];
  ch_reward *r = open_text(*state, "loop.lua",
                           "function reward_function(params)\n"
                           "  while true do end\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  call_fails(r, &p, path, "instruction budget", "step 7", NULL);
  ch_reward_close(r);
}

static void test_loop_in_pcall(void **state) {
  char path[1024];
  ch_env_params p = params();
  /* A bounded outer loop first: if pcall swallowed the trip this would return 1, not hang. */
  ch_reward *r = open_text(*state, "pcall50.lua",
                           "function reward_function(params)\n"
                           "  for i = 1, 50 do pcall(function() while true do end end) end\n"
                           "  return 1\n"
                           "end\n",
                           path);
  call_fails(r, &p, path, "instruction budget", NULL);
  ch_reward_close(r);
  r = open_text(*state, "pcall.lua",
                "function reward_function(params)\n"
                "  while true do pcall(function() while true do end end) end\n"
                "end\n",
                path);
  call_fails(r, &p, path, "instruction budget", NULL);
  ch_reward_close(r);
  r = open_text(
      *state, "xpcall.lua",
      "function reward_function(params)\n"
      "  while true do xpcall(function() while true do end end, function(e) return e end) end\n"
      "end\n",
      path);
  call_fails(r, &p, path, "instruction budget", NULL);
  ch_reward_close(r);
}

static void test_memory_bomb(void **state) {
  char path[1024];
  /* The bomb goes off at step 7 only, so the next call shows the state survived it. */
  ch_reward *r = open_text(*state, "bomb.lua",
                           "function reward_function(params)\n"
                           "  if params.steps == 7 then\n"
                           "    local t = {}\n"
                           "    for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end\n"
                           "  end\n"
                           "  return params.steps\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  call_fails(r, &p, path, "memory cap", "step 7", NULL);
  p.steps = 8;
  unit_assert_near(call_ok(r, &p), 8.0, 0.0);
  ch_reward_close(r);
}

static void test_memory_bomb_in_pcall(void **state) {
  char path[1024];
  ch_reward *r = open_text(*state, "pbomb.lua",
                           "function reward_function(params)\n"
                           "  local ok = pcall(function()\n"
                           "    local t = {}\n"
                           "    for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end\n"
                           "  end)\n"
                           "  return 1\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  call_fails(r, &p, path, "memory cap", NULL);
  ch_reward_close(r);
}

static void test_no_unsafe_libraries(void **state) {
  char path[1024];
  /* Each library still reachable sets its own bit, so a failure says which. */
  ch_reward *r = open_text(*state, "libs.lua",
                           "local names = {'io', 'os', 'require', 'dofile', 'loadfile', 'debug',\n"
                           "               'package', 'coroutine'}\n"
                           "function reward_function(params)\n"
                           "  local present = 0\n"
                           "  for i, n in ipairs(names) do\n"
                           "    if _G[n] ~= nil then present = present + 2 ^ (i - 1) end\n"
                           "  end\n"
                           "  if string.dump ~= nil then present = present + 2 ^ 8 end\n"
                           "  if math.sqrt(16) ~= 4 or string.format('%d', 3) ~= '3' then\n"
                           "    present = present + 2 ^ 9\n"
                           "  end\n"
                           "  return present\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  double present = call_ok(r, &p);
  if (present != 0.0)
    fail_msg("reachable from the sandbox (bits: io os require dofile loadfile debug package "
             "coroutine string.dump; 512 = safe libraries missing): %.0f",
             present);
  ch_reward_close(r);
}

typedef struct bytes {
  unsigned char data[4096];
  size_t len;
} bytes;

static int dump_writer(lua_State *L, const void *p, size_t n, void *user) {
  bytes *b = user;
  (void)L;
  if (b->len + n > sizeof b->data) return 1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

/* A real binary chunk of this Lua ("return 7", dumped outside the sandbox) must not load. */
static void test_no_binary_chunks(void **state) {
  bytes chunk = {{0}, 0};
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  assert_int_equal(luaL_loadstring(L, "return 7"), LUA_OK);
  assert_int_equal(lua_dump(L, dump_writer, &chunk, 0), 0);
  lua_close(L);
  assert_memory_equal(chunk.data, "\033Lua", 4);

  char *text = malloc(chunk.len * 4 + 512), path[1024];
  assert_non_null(text);
  size_t n = (size_t)sprintf(text, "local chunk = \"");
  for (size_t i = 0; i < chunk.len; i++) n += (size_t)sprintf(text + n, "\\%03u", chunk.data[i]);
  sprintf(text + n, "\"\n"
                    "function reward_function(params)\n"
                    "  local f, e = load(chunk)\n"
                    "  if f ~= nil then return f() end\n"
                    "  if type(e) ~= 'string' or not e:find('binary') then return -1 end\n"
                    "  return load('return 41')() + 1\n"
                    "end\n");
  ch_reward *r = open_text(*state, "binary.lua", text, path);
  free(text);
  ch_env_params p = params();
  double got = call_ok(r, &p);
  if (got != 42.0)
    fail_msg("the script returned %g: 7 = the binary chunk loaded, -1 = no 'binary' error", got);
  ch_reward_close(r);
}

/* ---- the params table --------------------------------------------------------------------- */

static void test_params_reused(void **state) {
  char path[1024];
  ch_reward *r = open_text(*state, "reuse.lua",
                           "local saved\n"
                           "function reward_function(params)\n"
                           "  if saved == nil then saved = params return 1 end\n"
                           "  if rawequal(saved, params) then return 100 + saved.steps end\n"
                           "  return 3\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  unit_assert_near(call_ok(r, &p), 1.0, 0.0);
  p.steps = 8;
  unit_assert_near(call_ok(r, &p), 108.0, 0.0);
  ch_reward_close(r);
}

/* One script returns the params field selected by steps, so each field is checked alone. */
static void test_params_fields(void **state) {
  char path[1024];
  ch_reward *r = open_text(
      *state, "fields.lua",
      "local b = function(v) if v == true then return 1 elseif v == false then return 0 end\n"
      "  return -1 end\n"
      "local q = {\n"
      "  function(p) return #p.waypoints end,\n"
      "  function(p) return p.waypoints[1][1] + 10 * p.waypoints[1][2] end,\n"
      "  function(p) return p.waypoints[4][1] + 10 * p.waypoints[4][2] end,\n"
      "  function(p) return p.closest_waypoints[1] * 10 + p.closest_waypoints[2] end,\n"
      "  function(p) return p.x * 1000 + p.y end,\n"
      "  function(p) return p.heading end,\n"
      "  function(p) return p.distance_from_center end,\n"
      "  function(p) return p.progress end,\n"
      "  function(p) return p.speed * 100 + p.steering_angle end,\n"
      "  function(p) return p.track_width * 1000 + p.track_length end,\n"
      "  function(p) return b(p.all_wheels_on_track) * 10 + b(p.is_left_of_center) end,\n"
      "  function(p) return b(p.is_offtrack) * 100 + b(p.is_crashed) * 10 + b(p.is_reversed) end,\n"
      "  function(p) return #p.closest_objects * 100 + p.closest_objects[1] * 10 +\n"
      "    p.closest_objects[2] + #p.objects_location + #p.objects_distance end,\n"
      "  function(p) return math.type(p.steps) == 'integer' and p.steps or -1 end,\n"
      "}\n"
      "function reward_function(p) return q[p.steps](p) end\n",
      path);
  ch_env_params p = params();
  p.distance_from_center = 0.125;
  p.is_crashed = 1;
  /* closest_objects: always two entries, 0 (none) in a time trial */
  static const double want[] = {4,    0.0, 4.5 + 25.0, 12, 1250 - 0.5, 30.0, 0.125,
                                12.5, 210, 760 + 17.5, 11, 10,         200,  14};
  for (int i = 0; i < (int)(sizeof want / sizeof want[0]); i++) {
    p.steps = i + 1;
    double got = call_ok(r, &p);
    if (fabs(got - want[i]) > 1e-9)
      fail_msg("params query %d returned %.12g, expected %.12g", i + 1, got, want[i]);
  }
  p.steps = 4;
  p.closest_waypoints[0] = 2;
  p.closest_waypoints[1] = 3;
  unit_assert_near(call_ok(r, &p), 34.0, 0.0);
  ch_reward_close(r);
}

static void test_recovers_after_error(void **state) {
  char path[1024];
  ch_reward *r = open_text(*state, "flaky.lua",
                           "function reward_function(params)\n"
                           "  if params.steps == 7 then error('bad step') end\n"
                           "  if params.steps == 9 then while true do end end\n"
                           "  return params.steps * 0.5\n"
                           "end\n",
                           path);
  ch_env_params p = params();
  call_fails(r, &p, path, "bad step", ":2:", "step 7", NULL);
  p.steps = 8;
  unit_assert_near(call_ok(r, &p), 4.0, 0.0);
  p.steps = 9;
  call_fails(r, &p, "instruction budget", "step 9", NULL);
  p.steps = 10;
  unit_assert_near(call_ok(r, &p), 5.0, 0.0);
  ch_reward_close(r);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_follow_center_line),   T(test_prevent_zigzag),
      T(test_stay_inside_borders),  T(test_progress),
      T(test_runtime_error),        T(test_syntax_error),
      T(test_missing_function),     T(test_error_at_load),
      T(test_missing_file),         T(test_bad_values),
      T(test_limits_inclusive),     T(test_endless_loop),
      T(test_loop_in_pcall),        T(test_memory_bomb),
      T(test_memory_bomb_in_pcall), T(test_no_unsafe_libraries),
      T(test_no_binary_chunks),     T(test_params_reused),
      T(test_params_fields),        T(test_recovers_after_error),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
