/* test_lua_module.c -- the chicane Lua module in-process (rendering, completion, help, errors)
** and as chicane.so in the stock lua5.4 interpreter. */
#include "lua_test.h"

#include "chicane_lua.h"

#include <dlfcn.h>
#include <lauxlib.h>

/* Run code in a fresh chicane state; returns the state with the chunk's results on the stack. */
static lua_State *eval(const char *code) {
  ch_error err = {0, ""};
  lua_State *L = ch_lua_new_state(&err);
  if (!L) fail_msg("ch_lua_new_state: %s", err.message);
  if (luaL_dostring(L, code) != LUA_OK) fail_msg("%s: %s", code, lua_tostring(L, -1));
  return L;
}

/* The rendering of `return EXPR` with the given options. */
static void expect_repr(const char *setup, const char *expr, const ch_lua_repr_options *o,
                        const char *want) {
  char code[2048];
  snprintf(code, sizeof code, "%s\nreturn %s", setup, expr);
  lua_State *L = eval(code);
  const char *got = ch_lua_repr(L, -1, o);
  if (strcmp(got, want) != 0) fail_msg("repr of %s:\n%s\nwanted:\n%s", expr, got, want);
  lua_close(L);
}

static void test_repr_scalars_and_strings(void **state) {
  (void)state;
  expect_repr("", "nil", NULL, "nil");
  expect_repr("", "true", NULL, "true");
  expect_repr("", "42", NULL, "42");
  expect_repr("", "1.5", NULL, "1.5");
  expect_repr("", "2^53", NULL, "9.007199254741e+15");
  expect_repr("", "0/0 ~= 0/0", NULL, "true");
  expect_repr("", "'tab\\there \"q\" back\\\\slash\\0'", NULL,
              "\"tab\\there \\\"q\\\" back\\\\slash\\0\"");
  expect_repr("", "print", NULL, "<function print>");
  expect_repr("", "chicane.env", NULL, "<function chicane.env>");
  expect_repr("", "table.concat", NULL, "<function table.concat>");
  expect_repr("local function f() end", "f", NULL,
              "<function [string \"local function f() end...\"]:1>");
  expect_repr("", "coroutine.create(print)", NULL, "<thread>");
}

static void test_repr_tables(void **state) {
  (void)state;
  expect_repr("", "{}", NULL, "{}");
  expect_repr("", "{1, 2, 3}", NULL, "{1, 2, 3}");
  expect_repr("", "{b = 2, a = 1, [10] = 'ten', [true] = 0, 'one'}", NULL,
              "{\"one\", [10] = \"ten\", a = 1, b = 2, [true] = 0}");
  expect_repr("", "{['not an id'] = 1, ['end'] = 2, _ok = 3}", NULL,
              "{_ok = 3, [\"end\"] = 2, [\"not an id\"] = 1}");
  expect_repr("", "{1, nil, 3}", NULL, "{1, [3] = 3}");
  expect_repr("t = {x = {}}; t.x.up = t; t.me = t", "t", NULL,
              "{me = <cycle>, x = {up = <cycle>}}");
  expect_repr("s = {1}", "{s, s}", NULL, "{{1}, {1}}");
  expect_repr("", "setmetatable({}, {__tostring = function() return 'custom' end})", NULL,
              "custom");
}

static void test_repr_limits_and_layout(void **state) {
  (void)state;
  ch_lua_repr_options o = {2, 3, 100};
  expect_repr("", "{1, 2, 3, 4, 5}", &o, "{1, 2, 3, ... (2 more)}");
  expect_repr("", "{a = {b = {c = 1}}, d = {}}", &o, "{a = {b = {...}}, d = {}}");
  ch_lua_repr_options narrow = {4, 30, 24};
  expect_repr("", "{name = 'bayside', list = {10, 20, 30}, flag = true}", &narrow,
              "{\n"
              "  flag = true,\n"
              "  list = {10, 20, 30},\n"
              "  name = \"bayside\",\n"
              "}");
  expect_repr("", "{outer = {inner = {'aaaaaaaa', 'bbbbbbbb', 'cccccccc'}}}", &narrow,
              "{\n"
              "  outer = {\n"
              "    inner = {\n"
              "      \"aaaaaaaa\",\n"
              "      \"bbbbbbbb\",\n"
              "      \"cccccccc\",\n"
              "    },\n"
              "  },\n"
              "}");
  expect_repr("", "chicane.repr({1, {2, {3}}}, {depth = 2})", NULL, "\"{1, {2, {...}}}\"");
  lua_State *L = eval("return pcall(chicane.repr, 1, {colour = 1})");
  assert_false(lua_toboolean(L, -2));
  lt_assert_contains(lua_tostring(L, -1), "chicane.repr: unknown option 'colour'");
  lua_close(L);
}

static void test_repr_objects(void **state) {
  (void)state;
  lua_State *L = eval("local closed = chicane.env('oval'); closed:close()\n"
                      "return {chicane.track('oval'), chicane.env{track = 'oval', num_cars = 2},\n"
                      "        chicane.reward('rewards/progress.lua'), closed, io.stdout}");
  ch_lua_repr_options o = {4, 30, 1000};
  const char *got = ch_lua_repr(L, -1, &o);
  lt_assert_contains(got, "{<chicane.track oval: loop, ");
  lt_assert_contains(got, " m wide, 145 points>, <chicane.env sim2d on oval.track: 2 cars, ");
  lt_assert_contains(got, "<chicane.reward ");
  lt_assert_contains(got, "/rewards/progress.lua>, <chicane.env (closed)>, <file (0x");
  lua_close(L);
}

typedef struct words {
  char text[4096];
  int count;
} words;

static void add_word(const char *w, void *user) {
  words *ws = user;
  ws->count++;
  snprintf(ws->text + strlen(ws->text), sizeof ws->text - strlen(ws->text), "%s|", w);
}

static void expect_completions(lua_State *L, const char *text, const char *want) {
  words ws = {"", 0};
  ch_lua_complete(L, text, add_word, &ws);
  /* candidates in any order: check each wanted word is there and nothing else */
  char copy[1024];
  snprintf(copy, sizeof copy, "%s", want);
  int n = 0;
  for (char *w = strtok(copy, " "); w; w = strtok(NULL, " "), n++) {
    char probe[300];
    snprintf(probe, sizeof probe, "|%s|", w);
    char all[4200];
    snprintf(all, sizeof all, "|%s", ws.text);
    if (!strstr(all, probe)) fail_msg("completing \"%s\": no %s in %s", text, w, ws.text);
  }
  if (n != ws.count) fail_msg("completing \"%s\": got %s, wanted %s", text, ws.text, want);
}

static void test_completion(void **state) {
  (void)state;
  lua_State *L = eval("env = chicane.env('oval'); t = {alpha = 1, beta = {gamma = print}}");
  expect_completions(L, "chicane.tra", "chicane.track( chicane.tracks( chicane.train(");
  expect_completions(L, "chicane.ver", "chicane.version");
  expect_completions(L, "chic", "chicane.");
  expect_completions(L, "pri", "print(");
  expect_completions(L, "whi", "while");
  expect_completions(L, "string.for", "string.format(");
  expect_completions(L, "t.", "t.alpha t.beta.");
  expect_completions(L, "t.beta.g", "t.beta.gamma(");
  expect_completions(L, "t:", "");
  expect_completions(L, "env:st", "env:step(");
  expect_completions(L, "env.num", "env.num_cars");
  expect_completions(L, "env:num", "");
  expect_completions(L, "nosuch.x", "");
  expect_completions(L, "t.alpha.", "");
  expect_completions(L, "(x).", "");
  lua_close(L);
}

static void test_help(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(ch_lua_help_print(f, NULL), 0);
  assert_int_equal(ch_lua_help_print(f, "env.step"), 0);
  assert_int_equal(ch_lua_help_print(f, "chicane.train"), 0);
  assert_int_equal(ch_lua_help_print(f, "nosuch"), -1);
  fclose(f);
  lt_assert_contains(text, "  chicane.tracks() -> list of names");
  lt_assert_contains(text, "env:step(steering, speed) -> obs, params, status\n\n");
  lt_assert_contains(text, "chicane.train(script[, {name=");
  free(text);
  /* Every documented name exists: functions in the module, methods in the classes. */
  lua_State *L = eval("local missing = {}\n"
                      "local env = chicane.env('oval')\n"
                      "local objs = {track = chicane.track('oval'), env = env,\n"
                      "  reward = chicane.reward('rewards/progress.lua')}\n"
                      "for name in pairs(chicane.help()) do\n"
                      "  local obj, method = name:match('^(%w+):([%w_]+)$')\n"
                      "  if obj and objs[obj] and type(objs[obj][method]) ~= 'function' then\n"
                      "    missing[#missing + 1] = name\n"
                      "  elseif not obj and name ~= 'image' and chicane[name] == nil then\n"
                      "    missing[#missing + 1] = name\n"
                      "  end\n"
                      "end\n"
                      "for name, v in pairs(chicane) do\n"
                      "  if not pcall(chicane.help, name) then missing[#missing + 1] = name end\n"
                      "end\n"
                      "return table.concat(missing, ' ')");
  if (strcmp(lua_tostring(L, -1), "") != 0)
    fail_msg("documented but missing, or undocumented: %s", lua_tostring(L, -1));
  lua_close(L);
}

static void test_errors_name_the_function_and_key(void **state) {
  (void)state;
  lua_State *L = eval(
      "local r = {}\n"
      "local function try(f, ...) local ok, e = pcall(f, ...) r[#r + 1] = ok and 'ok' or e end\n"
      "try(chicane.env, {track = 'nope'})\n"
      "try(chicane.env, {num_cars = 2})\n"
      "try(chicane.env, {track = 'oval', num_cars = 'two'})\n"
      "try(chicane.env, {track = 'oval', plugin = 'nosuch'})\n"
      "try(chicane.env, {track = 'oval', bad = print})\n"
      "local env = chicane.env('oval')\n"
      "try(env.reset, env, {start = 2})\n"
      "try(env.reset, env, {car = 2})\n"
      "try(env.reset, env, {seed = 'x'})\n"
      "try(env.step, env, 0, 1)\n"
      "try(chicane.reward, 'nosuch.lua')\n"
      "try(chicane.track, 42)\n"
      "return table.concat(r, '\\n')");
  const char *out = lua_tostring(L, -1);
  lt_assert_contains(out, "chicane.env: no track 'nope'");
  lt_assert_contains(out, "chicane.env: needs track=");
  lt_assert_contains(out, "chicane.env: sim2d: config key 'num_cars'");
  lt_assert_contains(out, "chicane.env: ");
  lt_assert_contains(out, "nosuch");
  lt_assert_contains(out, "bad: a function cannot be written as JSON");
  lt_assert_contains(out, "env:reset: start must be a fraction of the track in [0, 1]");
  lt_assert_contains(out, "env:reset: car 2 is not in 1..1");
  lt_assert_contains(out, "env:reset: option 'seed' must be an integer, got string");
  lt_assert_contains(out, "env:step: car 1 has not been reset");
  lt_assert_contains(out, "chicane.reward: nosuch.lua: no such file");
  lt_assert_contains(out, "chicane.track: track must be a name, a path or a track object");
  lua_close(L);
}

static void test_state_has_the_module_as_global_and_require(void **state) {
  (void)state;
  lua_State *L = eval("return chicane == require('chicane'), type(chicane.version),\n"
                      "       chicane.home().data ~= nil, #chicane.plugins() > 0");
  for (int i = 1; i <= 4; i++)
    if (!lua_toboolean(L, i) && lua_type(L, i) != LUA_TSTRING) fail_msg("result %d is false", i);
  lua_close(L);
}

/* ------------------------------------------------------------------ chicane.so */

static void test_shared_module_exports_only_its_loader(void **state) {
  (void)state;
  void *so = dlopen(CH_LUA_MODULE_DIR "/chicane.so", RTLD_NOW | RTLD_LOCAL);
  if (!so) fail_msg("dlopen: %s", dlerror());
  assert_non_null(dlsym(so, "luaopen_chicane"));
  assert_null(dlsym(so, "ch_track_load"));
  assert_null(dlsym(so, "ch_lua_repr"));
  assert_null(dlsym(so, "ch_session_open_spec"));
  dlclose(so);
}

static void test_stock_interpreter_requires_the_module(void **state) {
  (void)state;
  if (!CH_LUA_INTERPRETER[0]) {
    fprintf(stderr, "SKIPPED: lua5.4 is not installed, so chicane.so is not tried in it\n");
    skip();
  }
  char dir[512], cmd[4096], *out;
  lt_mkdtemp(dir, sizeof dir, "lua54");
  lt_write(dir, "use.lua",
           "package.cpath = '" CH_LUA_MODULE_DIR "/?.so;' .. package.cpath\n"
           "local c = require 'chicane'\n"
           "print(c.version, c.track('oval').name, #c.tracks() > 1)\n"
           "local env <close> = c.env('oval')\n"
           "local obs, p = env:reset{}\n"
           "obs, p = env:step(0, 1)\n"
           "print(#obs == env.obs_size, p.episode_status, p.steps)\n"
           "print(c.repr({1, {2}, k = 'v'}))\n"
           "print(#c.models())\n",
           NULL, 0);
  snprintf(cmd, sizeof cmd, "cd '%s' && LD_PRELOAD='%s' '%s' use.lua", dir, CH_SANITIZER_PRELOAD,
           CH_LUA_INTERPRETER);
  int rc = lt_sh(dir, cmd, NULL, &out);
  if (rc != 0) fail_msg("lua5.4 exited with %d:\n%s", rc, out);
  lt_assert_contains(out, CHICANE_VERSION "\toval\ttrue\n");
  lt_assert_contains(out, "true\tin_progress\t1\n");
  lt_assert_contains(out, "{1, {2}, k = \"v\"}\n");
  lt_assert_contains(out, "0\n");
  free(out);
  lt_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_repr_scalars_and_strings),
      cmocka_unit_test(test_repr_tables),
      cmocka_unit_test(test_repr_limits_and_layout),
      cmocka_unit_test(test_repr_objects),
      cmocka_unit_test(test_completion),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_errors_name_the_function_and_key),
      cmocka_unit_test(test_state_has_the_module_as_global_and_require),
      cmocka_unit_test(test_shared_module_exports_only_its_loader),
      cmocka_unit_test(test_stock_interpreter_requires_the_module),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
