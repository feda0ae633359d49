/* reward.c -- calls a Lua reward_function(params) with DeepRacer's parameter names. */
#include "reward.h"

#include "sandbox.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ch_reward {
  ch_sandbox sb;
  char *path;
  int fn_ref;      /* registry ref of reward_function */
  int params_ref;  /* registry ref of the reused params table */
  int closest_ref; /* registry ref of params.closest_waypoints */
};

static void ch__set_number(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void ch__set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* The parts of params that never change: waypoints, empty object lists. */
static void ch__build_params(ch_reward *r, const ch_reward_options *opt) {
  lua_State *L = r->sb.L;
  lua_createtable(L, 0, 32);
  lua_createtable(L, (int)opt->num_waypoints, 0);
  for (uint32_t i = 0; i < opt->num_waypoints; i++) {
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, opt->waypoints[2 * i]);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, opt->waypoints[2 * i + 1]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "waypoints");
  static const char *const empty[] = {"closest_objects",
                                      "objects_location",
                                      "objects_left_of_center",
                                      "objects_distance",
                                      "objects_heading",
                                      "objects_speed",
                                      NULL};
  for (const char *const *k = empty; *k; k++) {
    lua_newtable(L);
    lua_setfield(L, -2, *k);
  }
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, -1);
  r->closest_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, -2, "closest_waypoints");
  r->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int ch_reward_open(const char *path, const ch_reward_options *opt, ch_reward **out, ch_error *err) {
  *out = NULL;
  ch_reward *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  }
  int rc = ch_sandbox_open(&r->sb, opt->memory_limit, opt->budget, err);
  if (rc == CH_OK) rc = ch_sandbox_dofile(&r->sb, path, 0, err);
  if (rc == CH_OK) {
    lua_getglobal(r->sb.L, "reward_function");
    if (!lua_isfunction(r->sb.L, -1))
      rc = ch_error_set(err, CH_ESCRIPT, "%s: does not define a function reward_function(params)",
                        path);
    r->fn_ref = luaL_ref(r->sb.L, LUA_REGISTRYINDEX);
  }
  if (rc != CH_OK) {
    ch_reward_close(r);
    return rc;
  }
  ch__build_params(r, opt);
  *out = r;
  return CH_OK;
}

void ch_reward_close(ch_reward *r) {
  if (!r) return;
  ch_sandbox_close(&r->sb);
  free(r->path);
  free(r);
}

/* Write this step's values into the reused params table (on top of the stack). */
static void ch__fill_params(ch_reward *r, const ch_env_params *p) {
  lua_State *L = r->sb.L;
  ch__set_bool(L, "all_wheels_on_track", p->all_wheels_on_track);
  ch__set_number(L, "x", p->x);
  ch__set_number(L, "y", p->y);
  ch__set_number(L, "heading", p->heading);
  ch__set_number(L, "distance_from_center", p->distance_from_center);
  ch__set_bool(L, "is_left_of_center", p->is_left_of_center);
  ch__set_number(L, "progress", p->progress);
  lua_pushinteger(L, p->steps);
  lua_setfield(L, -2, "steps");
  ch__set_number(L, "speed", p->speed);
  ch__set_number(L, "steering_angle", p->steering_angle);
  ch__set_number(L, "track_width", p->track_width);
  ch__set_number(L, "track_length", p->track_length);
  ch__set_bool(L, "is_offtrack", p->is_offtrack);
  ch__set_bool(L, "is_crashed", p->is_crashed);
  ch__set_bool(L, "is_reversed", p->is_reversed);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->closest_ref);
  lua_pushinteger(L, (lua_Integer)p->closest_waypoints[0] + 1); /* 1-based in Lua */
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, (lua_Integer)p->closest_waypoints[1] + 1);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 1);
}

int ch_reward_call(ch_reward *r, const ch_env_params *p, double *out, ch_error *err) {
  lua_State *L = r->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->params_ref);
  ch__fill_params(r, p);
  ch_error e;
  if (ch_sandbox_call(&r->sb, 1, 1, &e) != CH_OK)
    return ch_error_set(err, CH_ESCRIPT, "%s (reward_function at step %d)", e.message, p->steps);
  int isnum = 0;
  double v = lua_type(L, -1) == LUA_TNUMBER ? (isnum = 1, lua_tonumber(L, -1)) : 0.0;
  const char *tname = luaL_typename(L, -1);
  lua_pop(L, 1);
  if (!isnum)
    return ch_error_set(err, CH_ESCRIPT, "%s: reward_function returned %s, not a number (step %d)",
                        r->path, tname, p->steps);
  if (!isfinite(v) || fabs(v) > CH_REWARD_LIMIT)
    return ch_error_set(err, CH_ESCRIPT,
                        "%s: reward_function returned %g, outside [-1e5, 1e5] (step %d)", r->path,
                        v, p->steps);
  *out = v;
  return CH_OK;
}
