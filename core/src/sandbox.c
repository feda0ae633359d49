/* sandbox.c -- a restricted Lua state for user scripts: no I/O, bounded time and memory. */
#include "sandbox.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH__HOOK_EVERY 1000 /* instructions between budget checks */

/* Bytes a tripped state may still allocate beyond its cap, so that raising the error (a new
** message string, a traceback-free unwind) does not itself fail. */
#define CH__TRIP_SLACK (64u << 10)

/* Patterns whose estimated worst case exceeds this many matcher steps are refused. */
#define CH__MAX_PATTERN_COST 1e9

/* Lua up to 5.4.4 grows a stack by allocating the new block before it touches the old one, so
** the allocator may read the call stack to say where memory ran out. Later releases turn the
** stack pointers into offsets around the reallocation; there the allocator reports the
** position the instruction hook saw last instead. */
#if LUA_VERSION_RELEASE_NUM <= 50404
#define CH__WHERE_IN_ALLOC 1
#else
#define CH__WHERE_IN_ALLOC 0
#endif

static ch_sandbox *ch__sb(lua_State *L) {
  return *(ch_sandbox **)lua_getextraspace(L);
}

void ch_sandbox_where(lua_State *L, char *out, size_t n) {
  lua_Debug ar;
  out[0] = '\0';
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar)) break;
    if (ar.currentline <= 0) continue;
    /* ar.source is the whole chunk name; short_src may have cut a long path to "...". */
    const char *src =
        ar.source && (ar.source[0] == '@' || ar.source[0] == '=') ? ar.source + 1 : ar.short_src;
    snprintf(out, n, "%s:%d:", src, ar.currentline);
    return;
  }
}

/* Mark the state tripped with "where: what" (the first trip of a call wins). in_alloc: called
** from the allocator, where the call stack may be unreadable (CH__WHERE_IN_ALLOC). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
ch__trip(ch_sandbox *sb, int in_alloc, const char *fmt, ...) {
  if (sb->tripped) return;
  char where[sizeof sb->last_where], what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  where[0] = '\0';
  if (in_alloc && !CH__WHERE_IN_ALLOC)
    snprintf(where, sizeof where, "%s", sb->last_where);
  else if (sb->L)
    ch_sandbox_where(sb->L, where, sizeof where);
  sb->tripped = 1;
  snprintf(sb->trip_message, sizeof sb->trip_message, "%s%s%s", where, where[0] ? " " : "", what);
}

/* Raise the tripped limit again (from the hook or a pcall that must not swallow it). */
static int ch__raise_trip(lua_State *L, ch_sandbox *sb) {
  lua_pushstring(L, sb->trip_message);
  return lua_error(L);
}

static void *ch__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  ch_sandbox *sb = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    sb->mem_used -= old;
    return NULL;
  }
  size_t limit = sb->mem_limit + (sb->tripped ? CH__TRIP_SLACK : 0);
  if (nsize > old && sb->mem_used - old + nsize > limit) {
    ch__trip(sb, 1, "memory cap of %zu bytes exceeded", sb->mem_limit);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) sb->mem_used = sb->mem_used - old + nsize;
  return p;
}

/* Count instructions against the budget; trips (and raises) when it is spent. */
static void ch__charge(lua_State *L, ch_sandbox *sb, uint64_t n) {
  sb->used += n;
  if (sb->used > sb->budget)
    ch__trip(sb, 0, "instruction budget of %llu exceeded (endless loop?)",
             (unsigned long long)sb->budget);
  if (sb->tripped) ch__raise_trip(L, sb);
}

static void ch__hook(lua_State *L, lua_Debug *ar) {
  ch_sandbox *sb = ch__sb(L);
  if (ar->event == LUA_HOOKRET) {
    /* The caller checks the value only after the function is gone; remember the line of its
    ** return statement now, so that a bad value names it (C functions have no line). */
    if (lua_getinfo(L, "l", ar) && ar->currentline > 0) sb->return_line = ar->currentline;
    return;
  }
  if (!CH__WHERE_IN_ALLOC) ch_sandbox_where(L, sb->last_where, sizeof sb->last_where);
  ch__charge(L, sb, CH__HOOK_EVERY);
}

/* Run the original library function (upvalue 1, a C function without upvalues of its own)
** in this very call frame, so that its errors still name the Lua line that called it. */
static int ch__forward(lua_State *L) {
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

/* pcall/xpcall that cannot swallow a tripped budget or memory cap. */
static int ch__finish_pcall(lua_State *L, int status, int base) {
  ch_sandbox *sb = ch__sb(L);
  if (sb->tripped) return ch__raise_trip(L, sb);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, base);
  return lua_gettop(L) - base + 1;
}

static int ch__pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  return ch__finish_pcall(L, status, 1);
}

/* xpcall's message handler runs inside the raise: when the hook raises a tripped limit, Lua
** calls the handler with hooks switched off, so a looping handler would never be stopped.
** The user's handler (upvalue 1) runs only for errors that are not a tripped limit. */
static int ch__msgh(lua_State *L) {
  if (ch__sb(L)->tripped) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int ch__xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 1); /* f */
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, ch__msgh, 1);
  lua_replace(L, 1); /* the guarded handler at 1 */
  lua_replace(L, 2); /* f at 2 */
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
  return ch__finish_pcall(L, status, 2);
}

/* setmetatable refusing __gc: Lua runs finalizers with hooks switched off, so a looping
** finalizer could not be stopped. (A __gc added to the metatable later does not mark the
** object, so checking here is enough.) */
static int ch__setmetatable(lua_State *L) {
  if (lua_istable(L, 2) && (lua_pushliteral(L, "__gc"), lua_rawget(L, 2)) != LUA_TNIL)
    return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
  lua_settop(L, 2);
  return ch__forward(L);
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

/* string.rep loops n times in C: with empty strings it allocates nothing, so neither the
** memory cap nor the hook (which C code never reaches) would stop string.rep("", 1e15). The
** result is "" anyway; any other result is bounded by the memory cap before the loop. */
static int ch__rep(lua_State *L) {
  size_t l, lsep = 0;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  return ch__forward(L);
}

/* table.move copies element by element in C; moving nils allocates nothing. */
static int ch__move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  if (e >= f) ch__charge(L, ch__sb(L), (uint64_t)e - (uint64_t)f + 1);
  return ch__forward(L);
}

/* Index just past the set "[...]" that starts at p[i]. */
static size_t ch__skip_set(const char *p, size_t len, size_t i) {
  size_t j = i + 1;
  if (j < len && p[j] == '^') j++;
  if (j < len && p[j] == ']') j++; /* a leading ']' is a member */
  while (j < len && p[j] != ']') j += p[j] == '%' ? 2 : 1;
  return j + 1;
}

/* Quantified items (and back-references) of a Lua pattern: each multiplies the matcher's
** worst case by the subject length. A '-' or '*' counts only where it quantifies an item, so
** literal dashes ("%d+-%d+") do not. */
static int ch__pattern_degree(const char *p, size_t len) {
  int k = 0;
  size_t i = len > 0 && p[0] == '^' ? 1 : 0;
  while (i < len) {
    char c = p[i];
    if (c == '(' || c == ')') {
      i++;
      continue;
    }
    if (c == '%' && i + 1 < len && p[i + 1] == 'b') {
      i += 4; /* %bxy matches balanced text without backtracking into it */
      continue;
    }
    if (c == '%' && i + 1 < len && p[i + 1] == 'f') {
      i = i + 2 < len && p[i + 2] == '[' ? ch__skip_set(p, len, i + 2) : i + 2;
      continue;
    }
    if (c == '%' && i + 1 < len && p[i + 1] >= '0' && p[i + 1] <= '9') {
      k++;
      i += 2;
      continue;
    }
    i = c == '%' ? i + 2 : c == '[' ? ch__skip_set(p, len, i) : i + 1;
    if (i < len && (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?')) {
      k++;
      i++;
    }
  }
  return k;
}

/* Refuse (raise) a pattern at index pi whose worst case on the subject at 1 would stall the
** state: Lua's backtracking matcher takes about len^(quantified items + 1) steps in C, where
** the instruction hook cannot interrupt it. */
static void ch__check_pattern(lua_State *L) {
  size_t ls, lp;
  luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int k = ch__pattern_degree(p, lp);
  if (pow((double)ls + 1.0, (double)k + 1.0) > CH__MAX_PATTERN_COST)
    luaL_error(L,
               "pattern with %d quantified items on a string of %d bytes is too slow for the "
               "sandbox",
               k, (int)ls);
}

/* string.match, gmatch and gsub. */
static int ch__pattern(lua_State *L) {
  ch__check_pattern(L);
  return ch__forward(L);
}

/* string.find, whose fourth argument asks for a plain search without patterns. */
static int ch__find(lua_State *L) {
  if (!lua_toboolean(L, 4)) ch__check_pattern(L);
  return ch__forward(L);
}

/* Replace lib[name] with a wrapper that holds the original as its upvalue. */
static void ch__wrap(lua_State *L, const char *lib, const char *name, lua_CFunction fn) {
  lua_getglobal(L, lib);
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
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
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, ch__setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  ch__wrap(L, LUA_STRLIBNAME, "rep", ch__rep);
  ch__wrap(L, LUA_TABLIBNAME, "move", ch__move);
  ch__wrap(L, LUA_STRLIBNAME, "find", ch__find);
  static const char *const matchers[] = {"match", "gmatch", "gsub", NULL};
  for (const char *const *m = matchers; *m; m++) ch__wrap(L, LUA_STRLIBNAME, *m, ch__pattern);
}

int ch_sandbox_open(ch_sandbox *sb, size_t mem_limit, uint64_t budget, ch_error *err) {
  memset(sb, 0, sizeof *sb);
  sb->mem_limit = mem_limit ? mem_limit : CH_SANDBOX_DEFAULT_MEMORY;
  sb->budget = budget ? budget : CH_SANDBOX_DEFAULT_BUDGET;
  lua_State *L = lua_newstate(ch__alloc, sb);
  if (!L) return ch_error_set(err, CH_ENOMEM, "cannot create a Lua state");
  *(ch_sandbox **)lua_getextraspace(L) = sb;
  ch__open_libs(L);
  lua_sethook(L, ch__hook, LUA_MASKCOUNT | LUA_MASKRET, CH__HOOK_EVERY);
  sb->L = L;
  return CH_OK;
}

void ch_sandbox_close(ch_sandbox *sb) {
  if (sb->L) lua_close(sb->L);
  sb->L = NULL;
}

/* Lua cuts a long chunk name to "...tail" in its own messages; put the whole path back. */
static void ch__set_message(ch_sandbox *sb, const char *msg, ch_error *err) {
  size_t sn = strlen(sb->short_name);
  if (sn && strcmp(sb->short_name, sb->name) != 0 && strncmp(msg, sb->short_name, sn) == 0)
    ch_error_set(err, CH_ESCRIPT, "%s%s", sb->name, msg + sn);
  else if (sb->name[0] && strncmp(msg, sb->name, strlen(sb->name)) != 0)
    ch_error_set(err, CH_ESCRIPT, "%s: %s", sb->name, msg);
  else
    ch_error_set(err, CH_ESCRIPT, "%s", msg);
}

int ch_sandbox_call(ch_sandbox *sb, int nargs, int nresults, ch_error *err) {
  int base = lua_gettop(sb->L) - nargs - 1;
  sb->used = 0;
  sb->tripped = 0;
  sb->last_where[0] = '\0';
  sb->return_line = 0;
  int status = lua_pcall(sb->L, nargs, nresults, 0);
  if (status == LUA_OK && !sb->tripped) return CH_OK;
  /* A limit tripped where nothing raised it (a failed allocation that load reported as a
  ** return value, say): the call still fails. */
  if (status == LUA_OK) lua_settop(sb->L, base);
  const char *msg = status == LUA_OK ? NULL : lua_tostring(sb->L, -1);
  if (sb->tripped) msg = sb->trip_message;
  if (!msg) msg = "error object is not a string";
  ch__set_message(sb, msg, err);
  if (status != LUA_OK) lua_pop(sb->L, 1);
  sb->tripped = 0;
  lua_gc(sb->L, LUA_GCCOLLECT);
  return CH_ESCRIPT;
}

/* The name Lua shows for chunk "@path" (luaO_chunkid): the path, or "..." and its tail. */
static void ch__short_name(const char *path, char *out, size_t n) {
  size_t len = strlen(path);
  if (len + 1 <= LUA_IDSIZE)
    snprintf(out, n, "%s", path);
  else
    snprintf(out, n, "...%s", path + len - (LUA_IDSIZE - 4));
}

int ch_sandbox_dofile(ch_sandbox *sb, const char *path, int nresults, ch_error *err) {
  snprintf(sb->name, sizeof sb->name, "%s", path);
  ch__short_name(path, sb->short_name, sizeof sb->short_name);
  int status = luaL_loadfilex(sb->L, path, "t");
  if (status != LUA_OK) {
    const char *msg = lua_tostring(sb->L, -1);
    int code = status == LUA_ERRFILE ? CH_ENOTFOUND : CH_ESCRIPT;
    if (code == CH_ESCRIPT && msg)
      ch__set_message(sb, msg, err);
    else
      ch_error_set(err, code, "%s", msg ? msg : "cannot load script");
    if (err) err->code = code;
    lua_pop(sb->L, 1);
    return code;
  }
  return ch_sandbox_call(sb, 0, nresults, err);
}
