/* lua_internal.h -- what the files of the chicane Lua module share; not part of its API. */
#ifndef CHICANE_LUA_INTERNAL_H
#define CHICANE_LUA_INTERNAL_H

#include "chicane_lua.h"
#include "runtime.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <stdint.h>

#define CH_LUA_TRACK   "chicane.track"
#define CH_LUA_ENV     "chicane.env"
#define CH_LUA_REWARD  "chicane.reward"
#define CH_LUA_MODEL   "chicane.model"
#define CH_LUA_IMAGE   "chicane.image"
#define CH_LUA_SESSION "chicane.session"

/* A userdata type. Its metatable gets __name, __index (a method, else a field from get),
** __gc and __close (both gc), __tostring, and for completion `methods` (name -> function)
** and `fields` (a list of names). */
typedef struct ch_lua_class {
  const char *name;
  const luaL_Reg *methods;
  const char *const *fields; /* NULL-terminated */
  /* Push field `key` of self (the userdata at index 1) and return 1, or return 0. */
  int (*get)(lua_State *L, const char *key);
  lua_CFunction gc; /* frees what the handle holds; NULL when Lua owns all of it */
  lua_CFunction tostring;
} ch_lua_class;

void ch_lua_class_register(lua_State *L, const ch_lua_class *c);

/* Raise "fn: message" from err. */
int ch_lua_fail(lua_State *L, const char *fn, const ch_error *err);

/* Options tables: raise an error naming fn and the key for a key not in allowed
** (NULL-terminated) or a value of the wrong type. idx may hold nil (no options). */
void ch_lua_check_options(lua_State *L, int idx, const char *fn, const char *const *allowed);
double ch_lua_opt_number(lua_State *L, int idx, const char *fn, const char *key, double def);
lua_Integer ch_lua_opt_integer(lua_State *L, int idx, const char *fn, const char *key,
                               lua_Integer def);
int ch_lua_opt_bool(lua_State *L, int idx, const char *fn, const char *key, int def);
const char *ch_lua_opt_string(lua_State *L, int idx, const char *fn, const char *key,
                              const char *def);

/* Where models live for this state (CHICANE_HOME like the CLI, or chicane.home). */
typedef struct ch_lua_home {
  char home[1024];
  char storage[1024];
  char catalog[1024];
} ch_lua_home;

ch_lua_home *ch_lua_home_get(lua_State *L);

/* The session (storage and catalog) of this state, opened on first use; raises "fn: why".
** push: also push the userdata that owns it, for a handle to keep (chicane.home moves the
** state to a new session, but a model keeps the one it came from). */
ch_session *ch_lua_session(lua_State *L, const char *fn);
ch_session *ch_lua_push_session(lua_State *L, const char *fn);

/* JSON: push a cJSON value as Lua (objects and arrays as tables, null as nil), and build
** cJSON from the Lua value at idx (a table with keys 1..n only is an array; NULL with err
** filled for functions, cycles and keys that are neither strings nor a sequence). */
void ch_lua_push_json(lua_State *L, const cJSON *j);
cJSON *ch_lua_to_json(lua_State *L, int idx, const char *what, ch_error *err);

/* A track given as a track object or a name or path (the value at idx): writes the file. */
void ch_lua_track_path(lua_State *L, int idx, const char *fn, char *out, size_t outlen);

/* Params tables (DeepRacer's names; closest_* 1-based). push: waypoints_idx is a table to
** share as params.waypoints, or 0. read: fills p from the table at idx; objects has room for
** max_objects and receives the objects_* lists. */
void ch_lua_push_params(lua_State *L, const ch_env_params *p, int waypoints_idx);
void ch_lua_read_params(lua_State *L, int idx, const char *fn, ch_env_params *p,
                        ch_env_object *objects, uint32_t max_objects);
const char *ch_lua_status_name(int status);

/* A camera frame: channels planes of height rows of width bytes, copied. */
void ch_lua_push_image(lua_State *L, uint32_t width, uint32_t height, uint32_t channels,
                       const uint8_t *data);
/* The pixels of the image at idx, or NULL when it is not one. */
const uint8_t *ch_lua_image_data(lua_State *L, int idx, uint32_t *width, uint32_t *height,
                                 uint32_t *channels);

/* Parts of the module: each adds its functions to the module table on top of the stack and
** registers its classes. */
void ch_lua_open_track(lua_State *L);
void ch_lua_open_env(lua_State *L);
void ch_lua_open_image(lua_State *L);
void ch_lua_open_reward(lua_State *L);
void ch_lua_open_model(lua_State *L);
void ch_lua_open_train(lua_State *L);
void ch_lua_open_render(lua_State *L);
void ch_lua_open_repr(lua_State *L);
void ch_lua_open_help(lua_State *L);

#endif
