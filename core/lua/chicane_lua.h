/* chicane_lua.h -- the `chicane` Lua module and the pieces of it the REPL and `chicane run` use. */
#ifndef CHICANE_LUA_H
#define CHICANE_LUA_H

#include <chicane/plugin.h>
#include <lua.h>
#include <stdio.h>

/* The module loader: `require "chicane"` in lua5.4 (LUA_CPATH) or in a chicane state. Returns
** the module table. Its home (storage, catalog) comes from CHICANE_HOME like the CLI's. */
int luaopen_chicane(lua_State *L);

/* A state for trusted scripts: every standard library, `chicane` in package.preload, loaded,
** and set as the global `chicane`. NULL (err filled) when out of memory or when loading the
** module fails. Close with lua_close. */
lua_State *ch_lua_new_state(ch_error *err);

/* Point the module of L (already loaded) at other places: NULL keeps a value as it is. A new
** home derives storage (HOME/storage) and catalog (HOME/catalog.db) unless they are given. */
void ch_lua_set_home(lua_State *L, const char *home, const char *storage, const char *catalog);

/* Options of ch_lua_repr: nesting shown, items shown per table, line width aimed for. */
typedef struct ch_lua_repr_options {
  int depth; /* tables nested deeper print as {...} (4) */
  int items; /* a table shows this many entries, then "... (N more)" (30) */
  int width; /* a table longer than this is laid out one entry per line (100) */
} ch_lua_repr_options;

void ch_lua_repr_defaults(ch_lua_repr_options *o);

/* Push a readable rendering of the value at idx: tables as {k = v, ...} nested, with cycles
** marked <cycle>, strings quoted, functions by name, userdata through __tostring. May raise a
** Lua error (a failing __tostring, out of memory): call it protected. */
const char *ch_lua_repr(lua_State *L, int idx, const ch_lua_repr_options *o);

/* Help on the API. name NULL: every entry, one line each. Otherwise one entry ("track",
** "chicane.track", "env:step", "env.step"); returns 0, or -1 (printing nothing) when unknown. */
int ch_lua_help_print(FILE *out, const char *name);

/* Completion of text, the word under the cursor ("chicane.tr", "env:st", "pri"): calls fn with
** each candidate, the whole word as it would read completed (a function ends in "(", a table in
** "."). Never runs Lua code (no metamethods). */
void ch_lua_complete(lua_State *L, const char *text, void (*fn)(const char *candidate, void *user),
                     void *user);

/* A message handler for lua_pcall: the error message with a stack traceback appended. */
int ch_lua_traceback(lua_State *L);

#endif
