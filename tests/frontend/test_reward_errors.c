/* test_reward_errors.c -- every way a reward function fails names the script, the line and the
** step, and the sandbox's limits hold against C-level loops too. */
#include "unit_test.h"

#include "reward.h"

#include <sys/stat.h>

typedef struct fixture {
  char dir[512];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  unit_mkdtemp(f->dir, sizeof f->dir, "frontend-reward");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  unit_rmdir(f->dir);
  free(f);
  return 0;
}

static const double wp[4] = {0, 0, 1, 0};

static ch_reward *open_text(fixture *f, const char *name, const char *text, char *path) {
  unit_write(f->dir, name, text, path, 1024);
  ch_reward_options opt = {wp, 2, 0, 0};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(ch_reward_open(path, &opt, &r, &err), err);
  return r;
}

static ch_env_params params(int steps) {
  ch_env_params p = {.track_width = 0.76, .track_length = 17, .steps = steps, .speed = 1};
  p.closest_objects[0] = p.closest_objects[1] = -1;
  return p;
}

/* The call at step must fail with CH_ESCRIPT naming "path:line:", the step and what. */
static void expect_error(ch_reward *r, const char *path, int line, int step, const char *what) {
  ch_env_params p = params(step);
  double v = 0;
  ch_error err = {0, ""};
  unit_expect(ch_reward_call(r, &p, &v, &err), CH_ESCRIPT, err);
  char where[1100], at[64];
  snprintf(where, sizeof where, "%s:%d:", path, line);
  snprintf(at, sizeof at, "step %d", step);
  unit_assert_contains(err.message, where);
  unit_assert_contains(err.message, at);
  unit_assert_contains(err.message, what);
}

/* A script whose reward_function starts on line 2 and runs body at line 3: a bad value names
** line 3, its return statement. */
static void bad_value(fixture *f, const char *body, const char *what) {
  char text[512], path[1024];
  snprintf(text, sizeof text,
           "-- returns a bad value\nfunction reward_function(params)\n  %s\nend\n", body);
  ch_reward *r = open_text(f, "value.lua", text, path);
  expect_error(r, path, 3, 11, what);
  ch_reward_close(r);
}

static void test_bad_values(void **state) {
  fixture *f = *state;
  bad_value(f, "return nil", "returned nil, not a number");
  bad_value(f, "return", "returned no value, not a number");
  bad_value(f, "return 'fast'", "returned string, not a number");
  bad_value(f, "return true", "returned boolean, not a number");
  bad_value(f, "return 0/0", "outside [-1e5, 1e5]");
  bad_value(f, "return math.huge", "returned inf, outside");
  bad_value(f, "return -math.huge", "returned -inf, outside");
  bad_value(f, "return 1e6", "returned 1e+06, outside [-1e5, 1e5]");
  bad_value(f, "return -100000.5", "outside [-1e5, 1e5]");
}

/* Of several returns, the one that gave the bad value; through a tail call, the helper's. */
static void test_bad_value_names_its_return(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(f, "returns.lua",
                           "local function scaled(p)\n"
                           "  return p.speed / (p.steps - 7)\n"
                           "end\n"
                           "function reward_function(params)\n"
                           "  local x = math.abs(params.speed)\n"
                           "  if params.steps == 4 then\n"
                           "    return nil\n"
                           "  elseif params.steps == 7 then\n"
                           "    return scaled(params)\n"
                           "  elseif params.steps == 9 then\n"
                           "    return 2 * scaled(params) * 1e6\n"
                           "  end\n"
                           "  return x\n"
                           "end\n",
                           path);
  double v = 0;
  ch_error err = {0, ""};
  ch_env_params p = params(1);
  unit_check(ch_reward_call(r, &p, &v, &err), err); /* fine: the last line's return */
  expect_error(r, path, 7, 4, "returned nil");
  expect_error(r, path, 2, 7, "returned inf"); /* 1 / 0 in the helper, reached by tail call */
  expect_error(r, path, 11, 9, "outside [-1e5, 1e5]");
  ch_reward_close(r);
}

static void test_error_names_its_line(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(f, "raise.lua",
                           "local function helper(p)\n"
                           "  if p.steps > 3 then\n"
                           "    error('too many steps')\n"
                           "  end\n"
                           "  return 1\n"
                           "end\n"
                           "function reward_function(params)\n"
                           "  return helper(params) + params.missing.field\n"
                           "end\n",
                           path);
  expect_error(r, path, 3, 5, "too many steps");
  expect_error(r, path, 8, 2, "attempt to index a nil value");
  ch_reward_close(r);
}

/* The budget names the line of the loop that ran away, not the line that called it. */
static void test_budget_names_the_loop(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(f, "loop.lua",
                           "local function spin(n)\n"
                           "  local x = 0\n"
                           "  while true do\n"
                           "    x = x + n\n"
                           "  end\n"
                           "end\n"
                           "function reward_function(params)\n"
                           "  local a = 1\n"
                           "  spin(a)\n"
                           "  return a\n"
                           "end\n",
                           path);
  ch_env_params p = params(4);
  double v;
  ch_error err = {0, ""};
  unit_expect(ch_reward_call(r, &p, &v, &err), CH_ESCRIPT, err);
  unit_assert_contains(err.message, "instruction budget");
  unit_assert_contains(err.message, "step 4");
  char line3[1100], line4[1100], line9[1100];
  snprintf(line3, sizeof line3, "%s:3:", path);
  snprintf(line4, sizeof line4, "%s:4:", path);
  snprintf(line9, sizeof line9, "%s:9:", path);
  if (!strstr(err.message, line3) && !strstr(err.message, line4))
    fail_msg("\"%s\" does not name the loop (line 3 or 4)", err.message);
  if (strstr(err.message, line9)) fail_msg("\"%s\" names the caller's line 9", err.message);
  ch_reward_close(r);
}

static void test_pcall_cannot_catch_the_budget(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(f, "pcall.lua",
                           "function reward_function(params)\n"
                           "  for i = 1, 3 do\n"
                           "    local ok = pcall(function()\n"
                           "      while true do end\n"
                           "    end)\n"
                           "  end\n"
                           "  return 1\n"
                           "end\n",
                           path);
  expect_error(r, path, 4, 6, "instruction budget");
  ch_reward_close(r);
  r = open_text(f, "xpcall.lua",
                "function reward_function(params)\n"
                "  xpcall(function() error('first') end,\n"
                "         function(e) while true do end end)\n"
                "  return 1\n"
                "end\n",
                path);
  expect_error(r, path, 3, 6, "instruction budget");
  ch_reward_close(r);
}

static void test_memory_bomb(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(f, "bomb.lua",
                           "function reward_function(params)\n"
                           "  local t = {}\n"
                           "  for i = 1, 1e9 do\n"
                           "    t[i] = string.rep('x', 4096) .. i\n"
                           "  end\n"
                           "  return 1\n"
                           "end\n",
                           path);
  ch_env_params p = params(12);
  double v;
  ch_error err = {0, ""};
  unit_expect(ch_reward_call(r, &p, &v, &err), CH_ESCRIPT, err);
  unit_assert_contains(err.message, path);
  unit_assert_contains(err.message, "memory cap");
  unit_assert_contains(err.message, "step 12");
  char line3[1100], line4[1100];
  snprintf(line3, sizeof line3, "%s:3:", path);
  snprintf(line4, sizeof line4, "%s:4:", path);
  if (!strstr(err.message, line3) && !strstr(err.message, line4))
    fail_msg("\"%s\" does not name the growing loop (line 3 or 4)", err.message);
  ch_reward_close(r);
  /* one huge string at once */
  r = open_text(f, "rep.lua",
                "function reward_function(params)\n"
                "  local s = string.rep('x', 1 << 30)\n"
                "  return #s\n"
                "end\n",
                path);
  expect_error(r, path, 2, 3, "memory cap");
  ch_reward_close(r);
}

/* Loops inside C library functions never reach the instruction hook: the sandbox bounds them. */
static void test_c_level_loops(void **state) {
  fixture *f = *state;
  char path[1024];
  /* string.rep of empty strings allocates nothing but would loop 1e15 times */
  ch_reward *r = open_text(f, "emptyrep.lua",
                           "function reward_function(params)\n"
                           "  local s = string.rep('', 1e15) .. ('').rep('', 1e15, '')\n"
                           "  return #s + 1\n"
                           "end\n",
                           path);
  ch_env_params p = params(1);
  double v = 0;
  ch_error err = {0, ""};
  unit_check(ch_reward_call(r, &p, &v, &err), err);
  unit_assert_near(v, 1, 0);
  ch_reward_close(r);
  /* table.move of nils allocates nothing either */
  r = open_text(f, "move.lua",
                "function reward_function(params)\n"
                "  table.move({}, 1, 1e15, 2)\n"
                "  return 1\n"
                "end\n",
                path);
  expect_error(r, path, 2, 2, "instruction budget");
  ch_reward_close(r);
  /* a backtracking pattern over a long string */
  r = open_text(f, "pattern.lua",
                "function reward_function(params)\n"
                "  local s = string.rep('a', 5000)\n"
                "  return s:find('.-.-.-.-.-.-b') or 1\n"
                "end\n",
                path);
  expect_error(r, path, 3, 3, "too slow for the sandbox");
  ch_reward_close(r);
  /* ordinary patterns still work */
  r = open_text(f, "okpattern.lua",
                "function reward_function(params)\n"
                "  local a, b = ('speed=2.5'):match('(%w+)=([%d.]+)')\n"
                "  local y, m, d = ('on 2024-01-02'):match('(%d+)-(%d+)-(%d+)')\n"
                "  local long = string.rep('a', 100000)\n"
                "  local plain = long:find('.-b', 1, true) == nil and 10 or 0\n"
                "  return tonumber(b) + #('a,b,c'):gsub(',', '') + d + plain\n"
                "end\n",
                path);
  unit_check(ch_reward_call(r, &p, &v, &err), err);
  unit_assert_near(v, 2.5 + 3 + 2 + 10, 0);
  ch_reward_close(r);
}

/* Finalizers run with the hook off, so the sandbox allows none. */
static void test_no_finalizers(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(f, "gc.lua",
                           "function reward_function(params)\n"
                           "  local mt = {__gc = function() while true do end end}\n"
                           "  setmetatable({}, mt)\n"
                           "  collectgarbage()\n"
                           "  return 1\n"
                           "end\n",
                           path);
  expect_error(r, path, 3, 1, "__gc metamethods are not allowed");
  ch_reward_close(r);
  /* other metatables work */
  r = open_text(f, "mt.lua",
                "local V = setmetatable({}, {__index = function(t, k) return #k end})\n"
                "function reward_function(params) return V.four end\n",
                path);
  ch_env_params p = params(1);
  double v = 0;
  ch_error err = {0, ""};
  unit_check(ch_reward_call(r, &p, &v, &err), err);
  unit_assert_near(v, 4, 0);
  ch_reward_close(r);
}

/* Lua cuts long chunk names to "...tail"; the message has the whole path. */
static void test_long_path(void **state) {
  fixture *f = *state;
  char sub[1024], path[1100];
  snprintf(sub, sizeof sub, "%s/a-directory-name-long-enough-to-push-the-path-past-sixty-chars",
           f->dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(path, sizeof path, "%s/long.lua", sub);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs("function reward_function(params)\n  return params.nothing.here\nend\n", fp);
  fclose(fp);
  ch_reward_options opt = {wp, 2, 0, 0};
  ch_reward *r = NULL;
  ch_error err = {0, ""};
  unit_check(ch_reward_open(path, &opt, &r, &err), err);
  expect_error(r, path, 2, 5, "attempt to index");
  ch_reward_close(r);
  fp = fopen(path, "w");
  fputs("function reward_function(params)\n  return 1 +\nend\n", fp);
  fclose(fp);
  unit_expect(ch_reward_open(path, &opt, &r, &err), CH_ESCRIPT, err);
  char where[1200];
  snprintf(where, sizeof where, "%s:3:", path);
  unit_assert_contains(err.message, where);
  unlink(path);
  rmdir(sub);
}

/* After any of these errors the state goes on working (training stops, but `chicane reward
** check` and tests reuse it). */
static void test_state_survives(void **state) {
  fixture *f = *state;
  char path[1024];
  ch_reward *r = open_text(
      f, "mixed.lua",
      "function reward_function(params)\n"
      "  if params.steps == 1 then while true do end end\n"
      "  if params.steps == 2 then local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(4096) .. i "
      "end end\n"
      "  if params.steps == 3 then return 0/0 end\n"
      "  return params.steps\n"
      "end\n",
      path);
  expect_error(r, path, 2, 1, "instruction budget");
  expect_error(r, path, 3, 2, "memory cap");
  expect_error(r, path, 4, 3, "outside"); /* the return statement */
  ch_env_params p = params(4);
  double v = 0;
  ch_error err = {0, ""};
  unit_check(ch_reward_call(r, &p, &v, &err), err);
  unit_assert_near(v, 4, 0);
  ch_reward_close(r);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_bad_values),
      T(test_bad_value_names_its_return),
      T(test_error_names_its_line),
      T(test_budget_names_the_loop),
      T(test_pcall_cannot_catch_the_budget),
      T(test_memory_bomb),
      T(test_c_level_loops),
      T(test_no_finalizers),
      T(test_long_path),
      T(test_state_survives),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
