/* cmd_run.c -- `chicane run SCRIPT.lua [args...]`: a Lua script with the chicane module loaded. */
#include "chicane_lua.h"
#include "cli.h"
#include "commands.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static const char run_usage[] =
    "usage: chicane run [options] SCRIPT.lua [args...]\n"
    "\n"
    "Run a Lua script with every standard library and the chicane module loaded: the global\n"
    "`chicane` (also `require \"chicane\"`), and `arg` as lua5.4 sets it (arg[0] is the\n"
    "script, arg[1..] its arguments, also passed as `...`). SCRIPT `-` reads standard input.\n"
    "On an error the message and a stack traceback go to standard error and the exit status\n"
    "is 1; os.exit(n) sets another. `chicane.help()` or `chicane repl` and :help list the API.\n"
    "\n"
    "options (before SCRIPT):\n" CH_CLI_COMMON_HELP;

static int ch__parse(int argc, char **argv, ch_cli *cli) {
  static const struct option opts[] = {CH_CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
  int c;
  /* "+": stop at the script, so that its own arguments are left alone. */
  while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (ch_cli_common_option(cli, c, optarg)) continue;
    if (c == 'h') return fputs(run_usage, stdout), -1;
    return ch_cli_usage_error("run", "unknown option");
  }
  if (optind >= argc) return ch_cli_usage_error("run", "needs a SCRIPT");
  return 0;
}

/* arg[0] = script, arg[1..] = its arguments, arg[-1] = "chicane run"; pushes them too. */
static int ch__push_args(lua_State *L, int argc, char **argv, int script) {
  lua_createtable(L, argc - script, 2);
  lua_pushstring(L, "chicane run");
  lua_rawseti(L, -2, -1);
  for (int i = script; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  luaL_checkstack(L, argc - script, "too many arguments");
  for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return argc - script - 1;
}

static int ch__report(lua_State *L) {
  fprintf(stderr, "chicane run: %s\n", lua_tostring(L, -1));
  fflush(stderr);
  return 1;
}

const char ch_cmd_run_summary[] = "run SCRIPT.lua [args]\trun a Lua script with the chicane module";

int ch_cmd_run(int argc, char **argv) {
  ch_cli cli;
  ch_cli_init(&cli);
  int rc = ch__parse(argc, argv, &cli);
  if (rc) return rc < 0 ? 0 : rc;
  int script = optind;
  ch_error err = {0, ""};
  lua_State *L = ch_lua_new_state(&err);
  if (!L) return ch_cli_fail(err.message);
  ch_lua_set_home(L, cli.home, cli.storage_root, cli.catalog);
  lua_pushcfunction(L, ch_lua_traceback);
  int handler = lua_gettop(L);
  const char *path = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
  if (luaL_loadfile(L, path) != LUA_OK) {
    rc = ch__report(L);
  } else {
    int nargs = ch__push_args(L, argc, argv, script);
    rc = lua_pcall(L, nargs, 0, handler) == LUA_OK ? 0 : ch__report(L);
  }
  fflush(stdout);
  lua_close(L);
  return rc;
}
