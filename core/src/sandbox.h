/* sandbox.h -- a restricted Lua 5.4 state: safe libraries, an instruction budget, a memory cap. */
#ifndef CHICANE_SANDBOX_H
#define CHICANE_SANDBOX_H

#include <chicane/plugin.h>
#include <lua.h>
#include <stdint.h>

/*
** What a sandboxed script may do: the base library (without dofile, loadfile and require; with
** a load that takes text chunks in strings only, pcall/xpcall that cannot catch a tripped
** limit, and a setmetatable that refuses __gc), table, string (without dump), math and utf8.
** No io, os, package, debug, coroutine.
**
** Lua runs some code where the instruction hook cannot reach it, and the sandbox closes each
** such door: C library loops that allocate nothing (string.rep of empty strings answers at
** once, table.move is charged per element), backtracking patterns (string.find, match,
** gmatch and gsub refuse a pattern whose worst case on the subject exceeds about 1e9 steps),
** xpcall message handlers called while a limit is being raised (skipped) and finalizers
** (no __gc).
**
** Limits: every ch_sandbox_call may run `budget` VM instructions (checked every 1000) and the
** whole state may hold `mem_limit` bytes. Once a limit trips, every pcall inside the script
** re-raises it, so the error always reaches the host, with the position of the Lua code that
** was running when the limit tripped ("path:line: instruction budget of N exceeded").
*/

#define CH_SANDBOX_MESSAGE_MAX 1280

typedef struct ch_sandbox {
  lua_State *L;
  size_t mem_used, mem_limit; /* bytes */
  uint64_t budget;            /* instructions allowed per ch_sandbox_call */
  uint64_t used;              /* instructions used by the current call (granularity 1000) */
  int tripped; /* budget or memory cap hit: no pcall inside the script may catch it */
  char trip_message[CH_SANDBOX_MESSAGE_MAX]; /* "path:line: what tripped" */
  char name[1024];                           /* the script file, as ch_sandbox_dofile got it */
  char short_name[LUA_IDSIZE];               /* how Lua abbreviates name in its own messages */
  char last_where[1100]; /* "path:line:" at the last hook, for allocator trips (sandbox.c) */
  int return_line;       /* line of the last return from a Lua function in the current call
                         ** (0: none yet): where a bad result came from */
} ch_sandbox;

#define CH_SANDBOX_DEFAULT_MEMORY (64u << 20)
#define CH_SANDBOX_DEFAULT_BUDGET 1000000u

/* Create a state with base (without dofile/loadfile, with a text-only load), table, string
** (without dump), math and utf8; nothing else (no io, os, package, debug, coroutine).
** mem_limit 0 = CH_SANDBOX_DEFAULT_MEMORY, budget 0 = CH_SANDBOX_DEFAULT_BUDGET. */
int ch_sandbox_open(ch_sandbox *sb, size_t mem_limit, uint64_t budget, ch_error *err);
void ch_sandbox_close(ch_sandbox *sb);

/* Load a text chunk from path (chunk name "@path", so errors read "path:line: ...") and run it
** with the budget; leaves nresults values on the stack. A missing file is CH_ENOTFOUND, a
** syntax or run-time error CH_ESCRIPT; both messages name the path. */
int ch_sandbox_dofile(ch_sandbox *sb, const char *path, int nresults, ch_error *err);

/* lua_pcall with the budget reset and the cap enforced. err gets the Lua message, which names
** the file and line (with the full path even where Lua abbreviates a long one), and
** CH_ESCRIPT. On error the stack is as before the function was pushed. */
int ch_sandbox_call(ch_sandbox *sb, int nargs, int nresults, ch_error *err);

/* Write "source:line:" of the innermost running Lua function (C functions skipped) into out,
** or "" outside Lua code. For messages of C functions that a script calls. */
void ch_sandbox_where(lua_State *L, char *out, size_t n);

#endif
