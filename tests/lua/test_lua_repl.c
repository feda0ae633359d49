/* test_lua_repl.c -- `chicane repl` driven as a user would: piped input, and typed on a terminal.
 */
#include "lua_test.h"

typedef struct fixture {
  char home[512];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  lt_mkdtemp(f->home, sizeof f->home, "repl");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  lt_rmdir(f->home);
  free(f);
  return 0;
}

/* Pipe input into `chicane repl --home HOME`; returns the exit status, *out the output. */
static int repl(const fixture *f, const char *input, char **out) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' repl --home '%s'", LT_CHICANE, f->home);
  return lt_sh(f->home, cmd, input, out);
}

/* repl, failing with the output unless the exit status is want; returns the output. */
static char *repl_expect(const fixture *f, const char *input, int want) {
  char *out;
  int rc = repl(f, input, &out);
  if (rc != want) fail_msg("exit status %d, expected %d; output:\n%s", rc, want, out);
  return out;
}

static void test_pipe_prints_values_readably(void **state) {
  char *out;
  out = repl_expect(*state,
                    "1 + 1\n"
                    "=2 * 21\n"
                    "{3, a = 1, b = {c = true}, [\"two words\"] = 'x'}\n"
                    "t = {name = 'x'}; t.self = t\n"
                    "t\n"
                    "'two\\nlines'\n"
                    "nil\n"
                    "x = 5\n"
                    "x, x + 1\n"
                    "local y = 7\n"
                    "print('hi')\n"
                    "string.format('%5.2f', math.pi)\n"
                    "string.format\n"
                    "_\n",
                    0);
  /* Exactly this: no prompts, no banner, statements print nothing. */
  const char *want = "2\n"
                     "42\n"
                     "{3, a = 1, b = {c = true}, [\"two words\"] = \"x\"}\n"
                     "{name = \"x\", self = <cycle>}\n"
                     "\"two\\nlines\"\n"
                     "nil\n"
                     "5, 6\n"
                     "hi\n"
                     "\" 3.14\"\n"
                     "<function string.format>\n"
                     "<function string.format>\n";
  if (strcmp(out, want) != 0) fail_msg("got:\n%s\nwanted:\n%s", out, want);
  free(out);
}

static void test_pipe_long_tables_break_into_lines(void **state) {
  char *out;
  out = repl_expect(*state,
                    "w = {}; for i = 1, 40 do w[i] = i * 1000 end\n"
                    "w\n"
                    "{deep = {a = {b = {c = {d = {e = 1}}}}}}\n",
                    0);
  /* 30 entries shown, one per line since they do not fit in 100 columns, then a count. */
  lt_assert_contains(out, "{\n  1000,\n  2000,\n");
  lt_assert_contains(out, "  30000,\n  ... (10 more)\n}\n");
  lt_assert_not_contains(out, "31000");
  lt_assert_contains(out, "{deep = {a = {b = {c = {...}}}}}\n");
  free(out);
}

static void test_pipe_shows_chicane_objects(void **state) {
  char *out;
  out = repl_expect(*state,
                    "chicane.track('oval')\n"
                    "chicane.tracks()\n"
                    "chicane.track\n"
                    "env = chicane.env{track = 'oval'}\n"
                    "obs, p = env:reset{}\n"
                    "obs, p, status = env:step(0, 1)\n"
                    "status, p.steps, #obs == env.obs_size\n"
                    "p.closest_waypoints\n"
                    "env:close()\n"
                    "env:step(0, 1)\n",
                    0);
  lt_assert_contains(out, "<chicane.track oval: loop, ");
  lt_assert_contains(out, "\"oval\"");
  lt_assert_contains(out, "\"bayside\"");
  lt_assert_contains(out, "<function chicane.track>\n");
  lt_assert_contains(out, "\"in_progress\", 1, true\n");
  lt_assert_contains(out, "{1, 2}\n");
  lt_assert_contains(out, "env is closed");
  lt_assert_not_contains(out, "table: 0x");
  lt_assert_not_contains(out, "userdata: 0x");
  free(out);
}

static void test_pipe_errors_print_and_the_repl_goes_on(void **state) {
  char *out;
  out = repl_expect(*state,
                    "error('boom')\n"
                    "nosuch.field = 1\n"
                    "chicane.track('nope')\n"
                    "1 +* 2\n"
                    "error({})\n"
                    "'still here'\n",
                    0);
  lt_assert_contains(out, "stdin:1: boom\n");
  lt_assert_contains(out, "attempt to index a nil value (global 'nosuch')");
  lt_assert_contains(out, "chicane.track: no track 'nope'");
  lt_assert_contains(out, "stdin:1: unexpected symbol near");
  lt_assert_contains(out, "(error object is a table value)");
  lt_assert_contains(out, "\"still here\"\n");
  free(out);
}

static void test_pipe_multiline_statements(void **state) {
  char *out;
  out = repl_expect(*state,
                    "function sq(x)\n"
                    "  -- a comment line inside\n"
                    "  return x * x\n"
                    "end\n"
                    "sq(7)\n"
                    "t = {\n"
                    "  1,\n"
                    "  2,\n"
                    "}\n"
                    "#t\n"
                    "{\n"
                    "  k = 'v'\n"
                    "}\n",
                    0);
  const char *want = "49\n2\n{k = \"v\"}\n";
  if (strcmp(out, want) != 0) fail_msg("got:\n%s\nwanted:\n%s", out, want);
  free(out);
}

static void test_pipe_unfinished_statement_at_end(void **state) {
  char *out;
  out = repl_expect(*state, "function f(a)\n  return a\n", 0);
  lt_assert_contains(out, "stdin:2: 'end' expected (to close 'function' at line 1) near <eof>");
  free(out);
}

static void test_pipe_help_and_quit(void **state) {
  char *out;
  out = repl_expect(*state,
                    ":help\n"
                    ":help env:step\n"
                    ":help chicane.model\n"
                    ":help nosuch\n"
                    ":frobnicate\n"
                    "chicane.help('track:project'):match('^[^\\n]*')\n"
                    ":quit\n"
                    "'not reached'\n",
                    0);
  lt_assert_contains(out, "chicane.track(name_or_path) -> track");
  lt_assert_contains(out, "chicane.env{track=");
  lt_assert_contains(out, "model:drive{track=");
  lt_assert_contains(out, "env:step(steering, speed) -> obs, params, status\n\n");
  lt_assert_contains(out, "lap_complete, off_track");
  lt_assert_contains(out, "chicane.model(name) -> model\n");
  lt_assert_contains(out, "no help for 'nosuch'");
  lt_assert_contains(out, "unknown command ':frobnicate'");
  lt_assert_contains(out,
                     "\"track:project(x, y) -> {s, progress, offset, distance, heading, ...}\"");
  lt_assert_not_contains(out, "not reached");
  free(out);
}

static void test_repl_rejects_arguments(void **state) {
  char *out;
  fixture *f = *state;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' repl --home '%s' extra", LT_CHICANE, f->home);
  assert_int_equal(lt_sh(f->home, cmd, "", &out), 2);
  lt_assert_contains(out, "takes no arguments");
  free(out);
}

/* ------------------------------------------------------------------ on a terminal */

static void pty_start(const fixture *f, lt_pty *t) {
  static char home_env[600];
  snprintf(home_env, sizeof home_env, "CHICANE_HOME=%s", f->home);
  const char *env[] = {home_env, "TERM=dumb", "INPUTRC=/dev/null", NULL};
  char *argv[] = {LT_CHICANE, "repl", NULL};
  lt_pty_start(t, argv, env);
  lt_pty_expect(t, ":help for the API");
  lt_pty_expect(t, "> ");
}

/* Keys typed before readline has the terminal are read in its cooked mode (Ctrl-D there is
** an end of line, TAB a plain character), so a user, and these tests, wait for the prompt. */
static void prompt(lt_pty *t) {
  lt_pty_expect(t, "> ");
}

static void test_pty_completion_multiline_and_history(void **state) {
  fixture *f = *state;
  lt_pty t;
  pty_start(f, &t);

  /* A second TAB lists the choices by their last name; the line stays as typed. */
  lt_pty_type(&t, "chicane.\t\t");
  lt_pty_expect(&t, "tracks(");
  lt_pty_expect(&t, "reward(");
  lt_pty_expect(&t, "> chicane.");
  lt_pty_type(&t, "tracks()\n");
  lt_pty_expect(&t, "\"oval\"");
  prompt(&t);

  /* TAB completes as far as the choices agree. */
  lt_pty_type(&t, "chicane.tr\t");
  lt_pty_expect(&t, "chicane.tra");
  lt_pty_type(&t, "ck('bayside').name\n");
  lt_pty_expect(&t, "\"bayside\"\r\n");
  prompt(&t);

  /* A unique match is completed with its "(". */
  lt_pty_type(&t, "pri\t'hello there')\n");
  lt_pty_expect(&t, "print('hello there')\r\n");
  lt_pty_expect(&t, "hello there\r\n");
  prompt(&t);

  /* Methods of a chicane object after ':'. */
  lt_pty_type(&t, "tr = chicane.track('oval')\n");
  prompt(&t);
  lt_pty_type(&t, "tr:point_\t0) == tr.waypoints[1][1]\n");
  lt_pty_expect(&t, "tr:point_at(0) == tr.waypoints[1][1]\r\n");
  lt_pty_expect(&t, "true\r\n");
  prompt(&t);

  /* A function over several lines, with the continuation prompt. */
  lt_pty_type(&t, "function tri(a)\n");
  lt_pty_expect(&t, ">> ");
  lt_pty_type(&t, "return a * 3\n");
  lt_pty_expect(&t, ">> ");
  lt_pty_type(&t, "end\n");
  prompt(&t);
  lt_pty_type(&t, "tri(5)\n");
  lt_pty_expect(&t, "15\r\n");
  prompt(&t);

  lt_pty_type(&t, "{x = 1, y = {2, 3}}\n");
  lt_pty_expect(&t, "{x = 1, y = {2, 3}}\r\n"); /* the echo */
  lt_pty_expect(&t, "{x = 1, y = {2, 3}}\r\n"); /* the value */
  prompt(&t);
  lt_pty_type(&t, ":help tracks\n");
  lt_pty_expect(&t, "chicane.tracks() -> list of names");
  prompt(&t);
  lt_pty_type(&t, ":quit\n");
  assert_int_equal(lt_pty_finish(&t), 0);

  char path[700];
  snprintf(path, sizeof path, "%s/.chicane_history", f->home);
  char *hist = lt_read(path);
  if (!hist) fail_msg("no history file %s", path);
  lt_assert_contains(hist, "tri(5)");
  lt_assert_contains(hist, "function tri(a)\nreturn a * 3\nend");
  free(hist);
  free(t.out);
}

static void test_pty_ctrl_c_interrupts_code_and_lines(void **state) {
  fixture *f = *state;
  lt_pty t;
  pty_start(f, &t);

  /* Ctrl-C stops running Lua code; the REPL goes on. */
  lt_pty_type(&t, "print('looping') while true do end\n");
  lt_pty_expect(&t, "looping\r\n");
  lt_pty_type(&t, "\003");
  lt_pty_expect(&t, "interrupted!");
  prompt(&t);

  /* Ctrl-C on a continuation line abandons the statement. */
  lt_pty_type(&t, "function g()\n");
  lt_pty_expect(&t, ">> ");
  lt_pty_type(&t, "\003");
  lt_pty_expect(&t, "^C");
  prompt(&t);
  lt_pty_type(&t, "g == nil\n");
  lt_pty_expect(&t, "true\r\n");
  prompt(&t);

  /* Ctrl-P (previous history) recalls the last line. */
  lt_pty_type(&t, "40 + 2\n");
  lt_pty_expect(&t, "42\r\n");
  prompt(&t);
  lt_pty_type(&t, "\020\n");
  lt_pty_expect(&t, "42\r\n");
  prompt(&t);

  /* End of input (Ctrl-D) leaves. */
  lt_pty_type(&t, "\004");
  assert_int_equal(lt_pty_finish(&t), 0);
  free(t.out);
}

/* History outlives the session (the file is read back at the start), and the line is edited
** with readline's keys: Ctrl-A/Ctrl-E move to the ends, Ctrl-B steps back, Ctrl-H deletes. */
static void test_pty_history_across_sessions_and_line_editing(void **state) {
  fixture *f = *state;
  lt_pty t;
  pty_start(f, &t);
  lt_pty_type(&t, "remembered = 6 * 7\n");
  prompt(&t);
  lt_pty_type(&t, "\004"); /* Ctrl-D: leave without adding a line to the history */
  assert_int_equal(lt_pty_finish(&t), 0);
  free(t.out);

  /* A new session: the variable is gone, but Ctrl-P brings its line back to run again. */
  pty_start(f, &t);
  lt_pty_type(&t, "remembered == nil\n");
  lt_pty_expect(&t, "true\r\n");
  prompt(&t);
  lt_pty_type(&t, "\020\020\n"); /* back past "remembered == nil" to the last session's line */
  prompt(&t);
  lt_pty_type(&t, "remembered + 1000\n");
  lt_pty_expect(&t, "1042\r\n");
  prompt(&t);

  /* "2 * 21", then Ctrl-A and "100 + " in front: 100 + 2 * 21. */
  lt_pty_type(&t, "2 * 21\001100 + \n");
  lt_pty_expect(&t, "142\r\n");
  prompt(&t);
  /* "3 * 5", Ctrl-B (before the 5), Ctrl-H deletes the space, "1" goes in: 3 *15. */
  lt_pty_type(&t, "3 * 5\002\0101\n");
  lt_pty_expect(&t, "45\r\n");
  prompt(&t);
  /* Ctrl-E goes back to the end after moving to the start. */
  lt_pty_type(&t, "10\001\005 - 3\n");
  lt_pty_expect(&t, "7\r\n");
  prompt(&t);
  lt_pty_type(&t, ":quit\n");
  assert_int_equal(lt_pty_finish(&t), 0);
  free(t.out);

  char path[700];
  snprintf(path, sizeof path, "%s/.chicane_history", f->home);
  char *hist = lt_read(path);
  if (!hist) fail_msg("no history file %s", path);
  /* Both sessions' lines, the edited ones as they were run. */
  lt_assert_contains(hist, "remembered = 6 * 7");
  lt_assert_contains(hist, "remembered + 1000");
  lt_assert_contains(hist, "100 + 2 * 21");
  lt_assert_contains(hist, "3 *15");
  free(hist);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pipe_prints_values_readably, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_long_tables_break_into_lines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_shows_chicane_objects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_errors_print_and_the_repl_goes_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_multiline_statements, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_unfinished_statement_at_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pipe_help_and_quit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_repl_rejects_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pty_completion_multiline_and_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pty_ctrl_c_interrupts_code_and_lines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pty_history_across_sessions_and_line_editing, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
