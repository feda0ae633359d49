/* lua_module.c -- the `chicane` Lua module: its table, home and session, classes, option helpers.
 */
#include "lua_internal.h"

#include "loader.h"
#include "paths.h"

#include <chicane/plugin_util.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHICANE_VERSION
#define CHICANE_VERSION "0"
#endif

#define CH__STATE_KEY "chicane.state" /* registry: the module state of this lua_State */

/* ------------------------------------------------------------------------ classes */

/* __index of every class: upvalue 1 is the methods table, upvalue 2 the class. */
static int ch__index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  const ch_lua_class *c = lua_touserdata(L, lua_upvalueindex(2));
  if (lua_type(L, 2) == LUA_TSTRING && c->get(L, lua_tostring(L, 2))) return 1;
  lua_pushnil(L);
  return 1;
}

void ch_lua_class_register(lua_State *L, const ch_lua_class *c) {
  luaL_newmetatable(L, c->name);
  lua_newtable(L);
  luaL_setfuncs(L, c->methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "methods");
  lua_pushlightuserdata(L, (void *)c);
  lua_pushcclosure(L, ch__index, 2);
  lua_setfield(L, -2, "__index");
  lua_newtable(L);
  for (int i = 0; c->fields[i]; i++) {
    lua_pushstring(L, c->fields[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "fields");
  if (c->gc) {
    lua_pushcfunction(L, c->gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, c->gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pushcfunction(L, c->tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

int ch_lua_fail(lua_State *L, const char *fn, const ch_error *err) {
  return luaL_error(L, "%s: %s", fn, err->message);
}

/* ------------------------------------------------------------------------ options */

void ch_lua_check_options(lua_State *L, int idx, const char *fn, const char *const *allowed) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: expected a table of options, got %s", fn, luaL_typename(L, idx));
  idx = lua_absindex(L, idx);
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int known = 0;
    for (int i = 0; key && allowed[i] && !known; i++) known = strcmp(key, allowed[i]) == 0;
    if (!known) {
      lua_pushvalue(L, -2);
      luaL_error(L, "%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
  }
}

/* Push options[key] (nil when there are no options); returns its type. */
static int ch__opt(lua_State *L, int idx, const char *key) {
  if (!lua_istable(L, idx)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, idx, key);
}

static void ch__opt_type_error(lua_State *L, const char *fn, const char *key, const char *want) {
  luaL_error(L, "%s: option '%s' must be %s, got %s", fn, key, want, luaL_typename(L, -1));
}

double ch_lua_opt_number(lua_State *L, int idx, const char *fn, const char *key, double def) {
  int t = ch__opt(L, idx, key);
  if (t != LUA_TNIL && t != LUA_TNUMBER) ch__opt_type_error(L, fn, key, "a number");
  double v = t == LUA_TNIL ? def : lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

lua_Integer ch_lua_opt_integer(lua_State *L, int idx, const char *fn, const char *key,
                               lua_Integer def) {
  int t = ch__opt(L, idx, key), isint = 0;
  lua_Integer v = t == LUA_TNIL ? def : lua_tointegerx(L, -1, &isint);
  if (t != LUA_TNIL && !isint) ch__opt_type_error(L, fn, key, "an integer");
  lua_pop(L, 1);
  return v;
}

int ch_lua_opt_bool(lua_State *L, int idx, const char *fn, const char *key, int def) {
  int t = ch__opt(L, idx, key);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) ch__opt_type_error(L, fn, key, "true or false");
  int v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The string stays valid while the options table holds it. */
const char *ch_lua_opt_string(lua_State *L, int idx, const char *fn, const char *key,
                              const char *def) {
  int t = ch__opt(L, idx, key);
  if (t != LUA_TNIL && t != LUA_TSTRING) ch__opt_type_error(L, fn, key, "a string");
  const char *v = t == LUA_TNIL ? def : lua_tostring(L, -1);
  lua_pop(L, 1);
  return v;
}

/* ------------------------------------------------------------------------ home and session */

typedef struct ch__session {
  ch_session s; /* first, so that the userdata is a ch_session * */
  int open;
} ch__session;

static int ch__session_gc(lua_State *L) {
  ch__session *s = luaL_checkudata(L, 1, CH_LUA_SESSION);
  if (s->open) ch_session_close(&s->s);
  s->open = 0;
  return 0;
}

static void ch__derive(ch_lua_home *h) {
  snprintf(h->storage, sizeof h->storage, "%s/storage", h->home);
  snprintf(h->catalog, sizeof h->catalog, "%s/catalog.db", h->home);
}

/* Push the state userdata (a ch_lua_home; user value 1 is the open session, if any). */
static ch_lua_home *ch__state(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, CH__STATE_KEY) == LUA_TUSERDATA)
    return lua_touserdata(L, -1);
  lua_pop(L, 1);
  ch_lua_home *h = lua_newuserdatauv(L, sizeof *h, 1);
  const char *env = getenv("CHICANE_HOME");
  snprintf(h->home, sizeof h->home, "%s", env && *env ? env : ".");
  ch__derive(h);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, CH__STATE_KEY);
  return h;
}

ch_lua_home *ch_lua_home_get(lua_State *L) {
  ch_lua_home *h = ch__state(L);
  lua_pop(L, 1);
  return h;
}

/* Forget the open session; handles that still use it keep it alive until collected. */
static void ch__drop_session(lua_State *L) {
  ch__state(L);
  lua_pushnil(L);
  lua_setiuservalue(L, -2, 1);
  lua_pop(L, 1);
}

ch_session *ch_lua_push_session(lua_State *L, const char *fn) {
  ch_lua_home *h = ch__state(L);
  if (lua_getiuservalue(L, -1, 1) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return lua_touserdata(L, -1); /* its first member is the ch_session */
  }
  lua_pop(L, 1);
  ch__session *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, CH_LUA_SESSION);
  ch_error err = {0, ""};
  if (ch_session_open_spec(h->storage, h->catalog, &s->s, &err) != CH_OK) ch_lua_fail(L, fn, &err);
  s->open = 1;
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, -3, 1);
  lua_remove(L, -2);
  return &s->s;
}

ch_session *ch_lua_session(lua_State *L, const char *fn) {
  ch_session *s = ch_lua_push_session(L, fn);
  lua_pop(L, 1); /* the state keeps it */
  return s;
}

void ch_lua_set_home(lua_State *L, const char *home, const char *storage, const char *catalog) {
  ch_lua_home *h = ch_lua_home_get(L);
  if (home) {
    snprintf(h->home, sizeof h->home, "%s", home);
    ch__derive(h);
  }
  if (storage) snprintf(h->storage, sizeof h->storage, "%s", storage);
  if (catalog) snprintf(h->catalog, sizeof h->catalog, "%s", catalog);
  ch__drop_session(L);
}

/* chicane.home([dir | {home=, storage=, catalog=}]) -> {home, storage, catalog, data} */
static int ch__home(lua_State *L) {
  static const char *const keys[] = {"home", "storage", "catalog", NULL};
  if (lua_type(L, 1) == LUA_TSTRING) {
    ch_lua_set_home(L, lua_tostring(L, 1), NULL, NULL);
  } else if (lua_istable(L, 1)) {
    ch_lua_check_options(L, 1, "chicane.home", keys);
    ch_lua_set_home(L, ch_lua_opt_string(L, 1, "chicane.home", "home", NULL),
                    ch_lua_opt_string(L, 1, "chicane.home", "storage", NULL),
                    ch_lua_opt_string(L, 1, "chicane.home", "catalog", NULL));
  } else if (!lua_isnoneornil(L, 1)) {
    return luaL_error(L, "chicane.home: expected a directory or a table, got %s",
                      luaL_typename(L, 1));
  }
  const ch_lua_home *h = ch_lua_home_get(L);
  lua_createtable(L, 0, 4);
  const char *vals[] = {h->home, h->storage, h->catalog};
  for (int i = 0; keys[i]; i++) {
    lua_pushstring(L, vals[i]);
    lua_setfield(L, -2, keys[i]);
  }
  lua_pushstring(L, ch_data_dir());
  lua_setfield(L, -2, "data");
  return 1;
}

/* ------------------------------------------------------------------------ plugins */

static void ch__plugin_entry(const ch_plugin_entry_info *info, void *user) {
  lua_State *L = user;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, info->path);
  lua_setfield(L, -2, "path");
  if (info->header) {
    lua_pushstring(L, ch_plugin_kind_name((int)info->header->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, info->header->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, info->header->version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, info->header->summary);
    lua_setfield(L, -2, "summary");
  } else {
    lua_pushstring(L, info->error->message);
    lua_setfield(L, -2, "error");
  }
  if (info->shadowed) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "shadowed");
  }
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* chicane.plugins() -> list of {kind, name, version, summary, path} */
static int ch__plugins(lua_State *L) {
  lua_newtable(L);
  ch_plugin_scan(ch__plugin_entry, L);
  return 1;
}

/* ------------------------------------------------------------------------ the module */

int ch_lua_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int luaopen_chicane(lua_State *L) {
  luaL_checkversion(L);
  luaL_newmetatable(L, CH_LUA_SESSION);
  lua_pushcfunction(L, ch__session_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  ch_lua_home_get(L);
  static const luaL_Reg funcs[] = {{"home", ch__home}, {"plugins", ch__plugins}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  lua_pushstring(L, CHICANE_VERSION);
  lua_setfield(L, -2, "version");
  ch_lua_open_track(L);
  ch_lua_open_env(L);
  ch_lua_open_image(L);
  ch_lua_open_reward(L);
  ch_lua_open_model(L);
  ch_lua_open_train(L);
  ch_lua_open_render(L);
  ch_lua_open_repr(L);
  ch_lua_open_help(L);
  return 1;
}

/* Runs protected: library loading may raise (out of memory). */
static int ch__setup_state(lua_State *L) {
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_chicane);
  lua_setfield(L, -2, "chicane");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, "chicane");
  lua_call(L, 1, 1);
  lua_setglobal(L, "chicane");
  return 0;
}

lua_State *ch_lua_new_state(ch_error *err) {
  lua_State *L = luaL_newstate();
  if (!L) {
    ch_error_set(err, CH_ENOMEM, "cannot create a Lua state: out of memory");
    return NULL;
  }
  lua_pushcfunction(L, ch__setup_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    ch_error_set(err, CH_ESCRIPT, "cannot load the chicane module: %s", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}
