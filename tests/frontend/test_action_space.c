/* test_action_space.c -- discrete and continuous action spaces: forms, checks, scaling, helpers. */
#include "unit_test.h"

#include "action_space.h"

#include <lauxlib.h>
#include <lualib.h>

/* A state with the helpers loaded; the value of expr is left on top of the stack. */
static lua_State *eval(const char *expr) {
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  luaL_openlibs(L);
  if (luaL_dostring(L, ch_action_space_lua_helpers) != LUA_OK)
    fail_msg("helpers: %s", lua_tostring(L, -1));
  char chunk[2048];
  snprintf(chunk, sizeof chunk, "return %s", expr);
  if (luaL_loadbuffer(L, chunk, strlen(chunk), "=test") != LUA_OK || lua_pcall(L, 0, 1, 0))
    fail_msg("%s: %s", expr, lua_tostring(L, -1));
  return L;
}

typedef struct space {
  int type, n;
  ch_action a[CH_MAX_ACTIONS];
  ch_action_ranges r;
} space;

static int read_lua(const char *expr, space *s, ch_error *err) {
  lua_State *L = eval(expr);
  memset(s, 0, sizeof *s);
  s->type = -1;
  int rc =
      ch_action_space_from_lua(L, -1, "t.lua: action_space", &s->type, s->a, &s->n, &s->r, err);
  assert_int_equal(lua_gettop(L), 1); /* the reader leaves the stack as it found it */
  lua_close(L);
  return rc;
}

static void lua_fails(const char *expr, const char *part) {
  space s;
  ch_error err = {0, ""};
  int rc = read_lua(expr, &s, &err);
  if (rc != CH_EINVAL) fail_msg("%s -> %d (%s), expected CH_EINVAL", expr, rc, err.message);
  if (!strstr(err.message, "t.lua: action_space") || !strstr(err.message, part))
    fail_msg("%s: message \"%s\" lacks \"%s\"", expr, err.message, part);
}

static void test_discrete_lua(void **state) {
  (void)state;
  space s;
  ch_error err = {0, ""};
  unit_check(read_lua("{{steering_angle = -10, speed = 1, index = 0},"
                      " {steering_angle = 10.5, speed = 2.25}}",
                      &s, &err),
             err);
  assert_int_equal(s.type, CH_ACTION_SPACE_DISCRETE);
  assert_int_equal(s.n, 2);
  unit_assert_near(s.a[1].steering_angle, 10.5, 0);
  unit_assert_near(s.a[1].speed, 2.25, 0);
  /* 64 is the most */
  unit_check(read_lua("action_grid(linspace(-30, 30, 16), {1, 2, 3, 4})", &s, &err), err);
  assert_int_equal(s.n, 64);
}

static void test_discrete_lua_errors(void **state) {
  (void)state;
  lua_fails("{}", "needs 1 to 64 actions");
  lua_fails("action_grid(linspace(-30, 30, 13), {1, 2, 3, 4, 3.5})", "needs 1 to 64 actions");
  lua_fails("{{steering_angle = 0, speed = 1}, {steering_angle = 31, speed = 1}}",
            "action_space[2]: steering_angle 31 must be within [-30, 30]");
  lua_fails("{{steering_angle = 0, speed = 0.05}}", "action_space[1]: speed 0.05 must be within");
  lua_fails("{{steering_angle = 0, speed = 1}, {steering_angle = 5, speed = 1},"
            " {steering_angle = 0, speed = 1}}",
            "action_space[3]: duplicates entry [1]");
  lua_fails("{{steering_angle = 0}}", "action_space[1]: needs both steering_angle and speed");
  lua_fails("{{steering_angle = 0, speed = 1, colour = 'red'}}", "action_space[1].colour: unknown");
  lua_fails("{{steering_angle = 0, speed = 1, index = 3}}", "action_space[1]: index 3 must be 0");
  lua_fails("{{steering_angle = 'left', speed = 1}}",
            "action_space[1].steering_angle: must be a number");
  lua_fails("{{steering_angle = 0, speed = 1}, 7}", "action_space[2]: must be a table");
  lua_fails("{{steering_angle = 0, speed = 1}, fast = true}", "action_space.fast: unknown key");
  lua_fails("5", "must be a table");
}

static void test_continuous_lua(void **state) {
  (void)state;
  space s;
  ch_error err = {0, ""};
  unit_check(read_lua("{steering_angle = {-25, 20}, speed = {low = 0.5, high = 3.5}}", &s, &err),
             err);
  assert_int_equal(s.type, CH_ACTION_SPACE_CONTINUOUS);
  unit_assert_near(s.r.steering_angle.low, -25, 0);
  unit_assert_near(s.r.steering_angle.high, 20, 0);
  unit_assert_near(s.r.speed.low, 0.5, 0);
  unit_assert_near(s.r.speed.high, 3.5, 0);
}

static void test_continuous_lua_errors(void **state) {
  (void)state;
  lua_fails("{steering_angle = {10, -10}, speed = {1, 2}}",
            "action_space.steering_angle: low 10 must be less than high -10");
  lua_fails("{steering_angle = {-10, 10}, speed = {2, 2}}",
            "action_space.speed: low 2 must be less than high 2");
  lua_fails("{steering_angle = {-40, 10}, speed = {1, 2}}",
            "action_space.steering_angle: {low = -40, high = 10} must lie within [-30, 30]");
  lua_fails("{steering_angle = {-10, 10}, speed = {1, 5}}", "action_space.speed: {low = 1");
  lua_fails("{steering_angle = {-10, 10}}", "action_space.speed: must be a table {low, high}");
  lua_fails("{steering_angle = {-10, 10, 20}, speed = {1, 2}}",
            "action_space.steering_angle: must be {low, high}, two numbers");
  lua_fails("{steering_angle = {'a', 10}, speed = {1, 2}}",
            "action_space.steering_angle: must be {low, high}");
  lua_fails("{steering_angle = {low = -10}, speed = {1, 2}}",
            "action_space.steering_angle: needs both low and high");
  lua_fails("{steering_angle = {low = -10, high = 10, mid = 0}, speed = {1, 2}}",
            "action_space.steering_angle.mid: unknown key");
  lua_fails("{steering_angle = {-10, 10}, speed = {1, 2}, brake = {0, 1}}",
            "action_space.brake: unknown key");
}

static void test_scaling(void **state) {
  (void)state;
  ch_action_ranges r = {{-20, 30}, {0.5, 3.5}};
  ch_action a = ch_action_space_scale(&r, -1, -1);
  unit_assert_near(a.steering_angle, -20, 1e-12);
  unit_assert_near(a.speed, 0.5, 1e-12);
  a = ch_action_space_scale(&r, 1, 1);
  unit_assert_near(a.steering_angle, 30, 1e-12);
  unit_assert_near(a.speed, 3.5, 1e-12);
  a = ch_action_space_scale(&r, 0, 0.5);
  unit_assert_near(a.steering_angle, 5, 1e-12);
  unit_assert_near(a.speed, 2.75, 1e-12);
  /* outside [-1, 1] is clipped; NaN goes to low */
  a = ch_action_space_scale(&r, 7, -3);
  unit_assert_near(a.steering_angle, 30, 0);
  unit_assert_near(a.speed, 0.5, 0);
  a = ch_action_space_scale(&r, NAN, NAN);
  unit_assert_near(a.steering_angle, -20, 0);
  double us, uv;
  ch_action_space_unscale(&r, (ch_action){5, 2.75}, &us, &uv);
  unit_assert_near(us, 0, 1e-12);
  unit_assert_near(uv, 0.5, 1e-12);
  const float u[6] = {-1, 1, 0, 0, 1, -1};
  float steer[3], speed[3];
  ch_action_space_scale_batch(&r, u, 3, steer, speed);
  static const float ws[3] = {-20, 5, 30}, wv[3] = {3.5f, 2, 0.5f};
  for (int i = 0; i < 3; i++) {
    unit_assert_near(steer[i], ws[i], 1e-5);
    unit_assert_near(speed[i], wv[i], 1e-5);
  }
}

static void test_json_forms(void **state) {
  (void)state;
  ch_action a[3] = {{-30, 1}, {0, 2}, {30, 1}}, back[CH_MAX_ACTIONS];
  cJSON *j = ch_action_space_discrete_json(a, 3);
  char *text = cJSON_PrintUnformatted(j);
  assert_string_equal(text, "[{\"steering_angle\":-30,\"speed\":1,\"index\":0},{\"steering_angle\":"
                            "0,\"speed\":2,\"index\":1},{\"steering_angle\":30,\"speed\":1,"
                            "\"index\":2}]");
  cJSON_free(text);
  int n = 0;
  ch_error err = {0, ""};
  unit_check(ch_action_space_discrete_from_json(j, "m.json: action_space", back, &n, &err), err);
  assert_int_equal(n, 3);
  assert_memory_equal(a, back, sizeof a);
  cJSON_Delete(j);
  ch_action_ranges r = {{-15, 15}, {1, 2}}, rb;
  j = ch_action_space_ranges_json(&r);
  text = cJSON_PrintUnformatted(j);
  assert_string_equal(text, "{\"steering_angle\":{\"high\":15,\"low\":-15},\"speed\":{\"high\":2,"
                            "\"low\":1}}");
  cJSON_free(text);
  unit_check(ch_action_space_ranges_from_json(j, "m.json: action_space", &rb, &err), err);
  assert_memory_equal(&r, &rb, sizeof r);
  cJSON_Delete(j);
}

static void json_fails(const char *json, int continuous, const char *part) {
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  ch_action a[CH_MAX_ACTIONS];
  ch_action_ranges r;
  int n = 0;
  ch_error err = {0, ""};
  int rc = continuous ? ch_action_space_ranges_from_json(j, "m.json: action_space", &r, &err)
                      : ch_action_space_discrete_from_json(j, "m.json: action_space", a, &n, &err);
  cJSON_Delete(j);
  if (rc != CH_EINVAL) fail_msg("%s -> %d, expected CH_EINVAL", json, rc);
  unit_assert_contains(err.message, part);
}

static void test_json_errors(void **state) {
  (void)state;
  json_fails("[]", 0, "m.json: action_space: expected an array of 1 to 64");
  json_fails("[{\"steering_angle\": 0, \"speed\": 1, \"index\": 0},"
             " {\"steering_angle\": 0, \"speed\": 9, \"index\": 1}]",
             0, "m.json: action_space[1]: speed 9 must be within");
  json_fails("[{\"steering_angle\": 0, \"speed\": 1, \"index\": 4}]", 0,
             "action_space[0]: index must be 0");
  json_fails("[{\"steering_angle\": 0, \"speed\": 1, \"throttle\": 1}]", 0,
             "action_space[0].throttle: unknown key");
  json_fails("[{\"steering_angle\": 0, \"speed\": 1}, {\"steering_angle\": 0, \"speed\": 1}]", 0,
             "action_space[1]: duplicates entry [0]");
  json_fails("{\"steering_angle\": {\"low\": 5, \"high\": -5}, \"speed\": {\"low\": 1, \"high\": "
             "2}}",
             1, "action_space.steering_angle: low 5 must be less than high -5");
  json_fails("{\"steering_angle\": {\"low\": -5, \"high\": 5}}", 1,
             "action_space.speed: expected an object");
  json_fails("{\"steering_angle\": {\"low\": -5, \"high\": 5, \"step\": 1}, \"speed\": {\"low\": "
             "1, \"high\": 2}}",
             1, "action_space.steering_angle.step: unknown key");
}

static void test_type_names(void **state) {
  (void)state;
  assert_string_equal(ch_action_space_type_name(CH_ACTION_SPACE_DISCRETE), "discrete");
  assert_string_equal(ch_action_space_type_name(CH_ACTION_SPACE_CONTINUOUS), "continuous");
  assert_int_equal(ch_action_space_type_from_name("continuous"), CH_ACTION_SPACE_CONTINUOUS);
  assert_int_equal(ch_action_space_type_from_name("discrete"), CH_ACTION_SPACE_DISCRETE);
  assert_int_equal(ch_action_space_type_from_name("box"), -1);
}

/* ---- the Lua helpers ---------------------------------------------------------------------- */

static void test_console_actions(void **state) {
  (void)state;
  space s;
  ch_error err = {0, ""};
  /* The console's default: 5 steering angles up to 30 degrees, 2 speeds up to 1 m/s, steering
  ** outer from the right (-30), speeds inner ascending. */
  unit_check(read_lua("console_actions(30, 5, 1, 2)", &s, &err), err);
  assert_int_equal(s.n, 10);
  static const double steer[10] = {-30, -30, -15, -15, 0, 0, 15, 15, 30, 30};
  static const double speed[10] = {0.5, 1, 0.5, 1, 0.5, 1, 0.5, 1, 0.5, 1};
  for (int i = 0; i < 10; i++)
    if (s.a[i].steering_angle != steer[i] || s.a[i].speed != speed[i])
      fail_msg("action %d is {%g, %g}, expected {%g, %g}", i, s.a[i].steering_angle, s.a[i].speed,
               steer[i], speed[i]);
  /* speeds rounded to 2 decimals as the console shows them; granularity 1 steers straight */
  unit_check(read_lua("console_actions(20, 1, 2, 3)", &s, &err), err);
  assert_int_equal(s.n, 3);
  unit_assert_near(s.a[0].steering_angle, 0, 0);
  unit_assert_near(s.a[0].speed, 0.67, 0);
  unit_assert_near(s.a[2].speed, 2, 0);
}

static void test_linspace_and_mirror(void **state) {
  (void)state;
  lua_State *L = eval("linspace(-30, 30, 5)");
  assert_int_equal((int)lua_rawlen(L, -1), 5);
  lua_rawgeti(L, -1, 2);
  unit_assert_near(lua_tonumber(L, -1), -15, 0);
  lua_close(L);
  space s;
  ch_error err = {0, ""};
  unit_check(read_lua("mirror_actions({{steering_angle = 10, speed = 1},"
                      " {steering_angle = 0, speed = 2}, {steering_angle = -20, speed = 1},"
                      " {steering_angle = 20, speed = 1}})",
                      &s, &err),
             err);
  /* the originals in order, then the mirror of 10 (-10); 0 and the +-20 pair need none */
  assert_int_equal(s.n, 5);
  unit_assert_near(s.a[4].steering_angle, -10, 0);
  unit_assert_near(s.a[4].speed, 1, 0);
}

/* A helper called wrongly raises an error at the caller's line. */
static void test_helper_errors(void **state) {
  (void)state;
  static const char *const calls[][2] = {
      {"action_grid({}, {1})", "action_grid: steerings: expected a non-empty list"},
      {"action_grid({0}, {'fast'})", "action_grid: speeds[1]: not a number"},
      {"linspace(0, 1, 0)", "linspace(a, b, n): needs"},
      {"console_actions(30, 2.5, 1, 2)", "console_actions("},
      {"mirror_actions({{steering_angle = 1}})", "mirror_actions: entry 1"},
  };
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    assert_int_equal(luaL_dostring(L, ch_action_space_lua_helpers), LUA_OK);
    char chunk[512];
    snprintf(chunk, sizeof chunk, "local x = 1\nlocal v = %s\nreturn v\n", calls[i][0]);
    int rc = luaL_loadbuffer(L, chunk, strlen(chunk), "=script.lua") || lua_pcall(L, 0, 1, 0);
    assert_int_not_equal(rc, 0);
    const char *msg = lua_tostring(L, -1);
    unit_assert_contains(msg, "script.lua:2:");
    unit_assert_contains(msg, calls[i][1]);
    lua_close(L);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_discrete_lua),    cmocka_unit_test(test_discrete_lua_errors),
      cmocka_unit_test(test_continuous_lua),  cmocka_unit_test(test_continuous_lua_errors),
      cmocka_unit_test(test_scaling),         cmocka_unit_test(test_json_forms),
      cmocka_unit_test(test_json_errors),     cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_console_actions), cmocka_unit_test(test_linspace_and_mirror),
      cmocka_unit_test(test_helper_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
