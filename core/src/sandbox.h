/* sandbox.h -- a restricted Lua 5.4 state: safe libraries, an instruction budget, a memory cap. */
#ifndef CHICANE_SANDBOX_H
#define CHICANE_SANDBOX_H

#include <chicane/plugin.h>
#include <lua.h>
#include <stdint.h>

typedef struct ch_sandbox {
  lua_State *L;
  size_t mem_used, mem_limit; /* bytes */
  uint64_t budget;            /* instructions allowed per ch_sandbox_call */
  uint64_t used;              /* instructions used by the current call (granularity 1000) */
  int tripped; /* budget or memory cap hit: no pcall inside the script may catch it */
  char trip_message[160];
  char name[512]; /* the script file, to name it in errors Lua reports without a position */
} ch_sandbox;

#define CH_SANDBOX_DEFAULT_MEMORY (64u << 20)
#define CH_SANDBOX_DEFAULT_BUDGET 1000000u

/* Create a state with base (without dofile/loadfile, with a text-only load), table, string
** (without dump), math and utf8; nothing else (no io, os, package, debug, coroutine). */
int ch_sandbox_open(ch_sandbox *sb, size_t mem_limit, uint64_t budget, ch_error *err);
void ch_sandbox_close(ch_sandbox *sb);

/* Load a text chunk from path (chunk name "@path", so errors read "path:line: ...") and run it
** with the budget; leaves nresults values on the stack. */
int ch_sandbox_dofile(ch_sandbox *sb, const char *path, int nresults, ch_error *err);

/* lua_pcall with the budget reset and the cap enforced. err gets the Lua message (which names
** file and line) and CH_ESCRIPT. On error the stack is as before the function was pushed. */
int ch_sandbox_call(ch_sandbox *sb, int nargs, int nresults, ch_error *err);

#endif
