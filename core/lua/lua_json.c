/* lua_json.c -- converts between Lua values and cJSON (plugin configs, catalog records). */
#include "lua_internal.h"

#include <chicane/plugin_util.h>
#include <math.h>

#define CH__JSON_DEPTH 32 /* deeper nesting is taken for a cycle */

void ch_lua_push_json(lua_State *L, const cJSON *j) {
  luaL_checkstack(L, 4, "JSON nested too deeply");
  if (cJSON_IsBool(j)) {
    lua_pushboolean(L, cJSON_IsTrue(j));
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      lua_pushinteger(L, (lua_Integer)d);
    else
      lua_pushnumber(L, d);
  } else if (cJSON_IsString(j)) {
    lua_pushstring(L, j->valuestring);
  } else if (cJSON_IsArray(j)) {
    lua_createtable(L, cJSON_GetArraySize(j), 0);
    lua_Integer i = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
      ch_lua_push_json(L, e);
      lua_rawseti(L, -2, i++);
    }
  } else if (cJSON_IsObject(j)) {
    lua_newtable(L);
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
      ch_lua_push_json(L, e);
      lua_setfield(L, -2, e->string);
    }
  } else {
    lua_pushnil(L);
  }
}

static cJSON *ch__to_json(lua_State *L, int idx, const char *what, int depth, ch_error *err);

/* A table with exactly the keys 1..n (n >= 1) is an array. */
static int ch__is_array(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0) return 0;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) count++;
  return count == n;
}

static cJSON *ch__table(lua_State *L, int idx, const char *what, int depth, ch_error *err) {
  if (depth > CH__JSON_DEPTH) {
    ch_error_set(err, CH_EINVAL, "%s: nested more than %d deep (a cycle?)", what, CH__JSON_DEPTH);
    return NULL;
  }
  luaL_checkstack(L, 6, "table nested too deeply");
  if (ch__is_array(L, idx)) {
    cJSON *arr = cJSON_CreateArray();
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; arr && i <= n; i++) {
      lua_rawgeti(L, idx, i);
      cJSON *v = ch__to_json(L, lua_gettop(L), what, depth + 1, err);
      lua_pop(L, 1);
      if (!v) cJSON_Delete(arr);
      arr = v ? (cJSON_AddItemToArray(arr, v), arr) : NULL;
    }
    return arr;
  }
  cJSON *obj = cJSON_CreateObject();
  for (lua_pushnil(L); obj && lua_next(L, idx); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      ch_error_set(err, CH_EINVAL, "%s: key of type %s (use string keys, or a list 1..n)", what,
                   luaL_typename(L, -2));
      cJSON_Delete(obj);
      lua_pop(L, 2);
      return NULL;
    }
    cJSON *v = ch__to_json(L, lua_gettop(L), lua_tostring(L, -2), depth + 1, err);
    if (!v) {
      cJSON_Delete(obj);
      lua_pop(L, 2);
      return NULL;
    }
    cJSON_AddItemToObject(obj, lua_tostring(L, -2), v);
  }
  return obj;
}

static cJSON *ch__to_json(lua_State *L, int idx, const char *what, int depth, ch_error *err) {
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return cJSON_CreateBool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    return cJSON_CreateNumber(lua_tonumber(L, idx));
  case LUA_TSTRING:
    return cJSON_CreateString(lua_tostring(L, idx));
  case LUA_TTABLE:
    return ch__table(L, idx, what, depth, err);
  default:
    ch_error_set(err, CH_EINVAL, "%s: a %s cannot be written as JSON", what, luaL_typename(L, idx));
    return NULL;
  }
}

cJSON *ch_lua_to_json(lua_State *L, int idx, const char *what, ch_error *err) {
  return ch__to_json(L, lua_absindex(L, idx), what, 0, err);
}
