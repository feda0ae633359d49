/* sandbox.c -- a restricted Lua state for user scripts: no I/O, bounded time and memory. */
#include "sandbox.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH__HOOK_EVERY 1000 /* instructions between budget checks */

static ch_sandbox *ch__sb(lua_State *L) {
  return *(ch_sandbox **)lua_getextraspace(L);
}

static void *ch__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  ch_sandbox *sb = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    sb->mem_used -= old;
    return NULL;
  }
  if (nsize > old && sb->mem_used - old + nsize > sb->mem_limit) {
    if (!sb->tripped) {
      sb->tripped = 1;
      snprintf(sb->trip_message, sizeof sb->trip_message, "memory cap of %zu bytes exceeded",
               sb->mem_limit);
    }
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) sb->mem_used = sb->mem_used - old + nsize;
  return p;
}

static void ch__hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  ch_sandbox *sb = ch__sb(L);
  sb->used += CH__HOOK_EVERY;
  if (sb->used > sb->budget && !sb->tripped) {
    sb->tripped = 1;
    snprintf(sb->trip_message, sizeof sb->trip_message,
             "instruction budget of %llu exceeded (endless loop?)", (unsigned long long)sb->budget);
  }
  if (sb->tripped) luaL_error(L, "%s", sb->trip_message);
}

/* pcall/xpcall that cannot swallow a tripped budget or memory cap. */
static int ch__finish_pcall(lua_State *L, int status, int base) {
  ch_sandbox *sb = ch__sb(L);
  if (sb->tripped) return luaL_error(L, "%s", sb->trip_message);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, base);
  return lua_gettop(L) - base + 1;
}

static int ch__pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  return ch__finish_pcall(L, status, 1);
}

static int ch__xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 1); /* f */
  lua_copy(L, 2, 1);   /* handler at 1 */
  lua_replace(L, 2);   /* f at 2 */
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
  return ch__finish_pcall(L, status, 2);
}

/* load(chunk [, chunkname [, mode [, env]]]) for text chunks in strings only. */
static int ch__load(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, s);
  int has_env = !lua_isnone(L, 4);
  int status = luaL_loadbufferx(L, s, len, name, "t");
  if (status != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (has_env) {
    lua_pushvalue(L, 4);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

static void ch__open_libs(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->func; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  static const char *const removed[] = {"dofile", "loadfile", "require", NULL};
  for (const char *const *r = removed; *r; r++) {
    lua_pushnil(L);
    lua_setglobal(L, *r);
  }
  lua_pushcfunction(L, ch__pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, ch__xpcall);
  lua_setglobal(L, "xpcall");
  lua_pushcfunction(L, ch__load);
  lua_setglobal(L, "load");
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
}

int ch_sandbox_open(ch_sandbox *sb, size_t mem_limit, uint64_t budget, ch_error *err) {
  memset(sb, 0, sizeof *sb);
  sb->mem_limit = mem_limit ? mem_limit : CH_SANDBOX_DEFAULT_MEMORY;
  sb->budget = budget ? budget : CH_SANDBOX_DEFAULT_BUDGET;
  sb->L = lua_newstate(ch__alloc, sb);
  if (!sb->L) return ch_error_set(err, CH_ENOMEM, "cannot create a Lua state");
  *(ch_sandbox **)lua_getextraspace(sb->L) = sb;
  ch__open_libs(sb->L);
  lua_sethook(sb->L, ch__hook, LUA_MASKCOUNT, CH__HOOK_EVERY);
  return CH_OK;
}

void ch_sandbox_close(ch_sandbox *sb) {
  if (sb->L) lua_close(sb->L);
  sb->L = NULL;
}

int ch_sandbox_call(ch_sandbox *sb, int nargs, int nresults, ch_error *err) {
  sb->used = 0;
  sb->tripped = 0;
  int status = lua_pcall(sb->L, nargs, nresults, 0);
  if (status == LUA_OK) return CH_OK;
  const char *msg = lua_tostring(sb->L, -1);
  if (status == LUA_ERRMEM || (sb->tripped && !msg)) msg = sb->trip_message;
  if (!msg) msg = "error object is not a string";
  if (sb->name[0] && strncmp(msg, sb->name, strlen(sb->name)) != 0)
    ch_error_set(err, CH_ESCRIPT, "%s: %s", sb->name, msg);
  else
    ch_error_set(err, CH_ESCRIPT, "%s", msg);
  lua_pop(sb->L, 1);
  sb->tripped = 0;
  lua_gc(sb->L, LUA_GCCOLLECT);
  return CH_ESCRIPT;
}

int ch_sandbox_dofile(ch_sandbox *sb, const char *path, int nresults, ch_error *err) {
  snprintf(sb->name, sizeof sb->name, "%s", path);
  int status = luaL_loadfilex(sb->L, path, "t");
  if (status != LUA_OK) {
    const char *msg = lua_tostring(sb->L, -1);
    ch_error_set(err, status == LUA_ERRFILE ? CH_ENOTFOUND : CH_ESCRIPT, "%s",
                 msg ? msg : "cannot load script");
    lua_pop(sb->L, 1);
    return err ? err->code : CH_ESCRIPT;
  }
  return ch_sandbox_call(sb, 0, nresults, err);
}
