/* reward.c -- calls a Lua reward_function(params) with DeepRacer's parameter names. */
#include "reward.h"

#include "sandbox.h"
#include "track.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Registry references of the tables updated in place at every call. */
enum {
  CH__T_PARAMS,
  CH__T_CLOSEST_WAYPOINTS,
  CH__T_CLOSEST_OBJECTS,
  CH__T_LOCATION,
  CH__T_LEFT,
  CH__T_DISTANCE,
  CH__T_HEADING,
  CH__T_SPEED,
  CH__T_COUNT
};

#define CH__LAST_OBJECTS 64 /* objects remembered to skip rewriting lists that did not change */

struct ch_reward {
  ch_sandbox sb;
  char *path;
  int fn_ref;                           /* registry ref of reward_function */
  int fn_line;                          /* where it is defined, for errors about its value */
  int ref[CH__T_COUNT];                 /* registry refs of the reused tables */
  uint32_t num_objects;                 /* entries now in the objects_* lists */
  ch_env_object last[CH__LAST_OBJECTS]; /* what the lists hold now (when it fits) */
};

/* A table of n {x, y} tables from 2n doubles. */
static void ch__push_points(lua_State *L, const double *xy, uint32_t n) {
  lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, xy[2 * i]);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, xy[2 * i + 1]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Set params[key] to a new table (kept in the registry at ref[slot] too when slot >= 0). */
static void ch__sub_table(ch_reward *r, const char *key, int slot, int narr) {
  lua_State *L = r->sb.L;
  lua_createtable(L, narr, 0);
  if (slot >= 0) {
    lua_pushvalue(L, -1);
    r->ref[slot] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_setfield(L, -2, key);
}

/* The parts of params that never change (waypoints, racing line) and the reused tables. */
static void ch__build_params(ch_reward *r, const ch_reward_options *opt,
                             const ch_reward_extra *ex) {
  lua_State *L = r->sb.L;
  lua_createtable(L, 0, 32);
  ch__push_points(L, opt->waypoints, opt->waypoints ? opt->num_waypoints : 0);
  lua_setfield(L, -2, "waypoints");
  uint32_t nl = ex && ex->racing_line ? ex->num_racing_line : 0;
  ch__push_points(L, nl ? ex->racing_line : NULL, nl);
  lua_setfield(L, -2, "racing_line");
  lua_createtable(L, (int)nl, 0);
  for (uint32_t i = 0; nl && ex->racing_line_speed && i < nl; i++) {
    lua_pushnumber(L, ex->racing_line_speed[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "racing_line_speed");
  ch__sub_table(r, "closest_waypoints", CH__T_CLOSEST_WAYPOINTS, 2);
  ch__sub_table(r, "closest_objects", CH__T_CLOSEST_OBJECTS, 2);
  ch__sub_table(r, "objects_location", CH__T_LOCATION, 0);
  ch__sub_table(r, "objects_left_of_center", CH__T_LEFT, 0);
  ch__sub_table(r, "objects_distance", CH__T_DISTANCE, 0);
  ch__sub_table(r, "objects_heading", CH__T_HEADING, 0);
  ch__sub_table(r, "objects_speed", CH__T_SPEED, 0);
  r->ref[CH__T_PARAMS] = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Line where reward_function (on top of the stack) is defined. */
static int ch__defined_at(lua_State *L) {
  lua_Debug ar;
  lua_pushvalue(L, -1);
  return lua_getinfo(L, ">S", &ar) ? ar.linedefined : 0;
}

int ch_reward_open(const char *path, const ch_reward_options *opt, ch_reward **out, ch_error *err) {
  return ch_reward_open_extra(path, opt, NULL, out, err);
}

int ch_reward_open_extra(const char *path, const ch_reward_options *opt,
                         const ch_reward_extra *extra, ch_reward **out, ch_error *err) {
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
    else
      r->fn_line = ch__defined_at(r->sb.L);
    r->fn_ref = luaL_ref(r->sb.L, LUA_REGISTRYINDEX);
  }
  if (rc != CH_OK) {
    ch_reward_close(r);
    return rc;
  }
  ch__build_params(r, opt, extra);
  *out = r;
  return CH_OK;
}

void ch_reward_close(ch_reward *r) {
  if (!r) return;
  ch_sandbox_close(&r->sb);
  free(r->path);
  free(r);
}

static void ch__set_number(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void ch__set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* Write a 2-entry index table (0-based in C, 1-based in Lua; -1 becomes 0 = none). */
static void ch__set_pair(ch_reward *r, int slot, const int32_t v[2]) {
  lua_State *L = r->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->ref[slot]);
  lua_pushinteger(L, (lua_Integer)v[0] + 1);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, (lua_Integer)v[1] + 1);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 1);
}

/* Make list slot (on top of the stack) hold exactly n entries: drop the ones past n. */
static void ch__trim(lua_State *L, uint32_t from, uint32_t to) {
  for (uint32_t i = to; i > from; i--) {
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
}

static void ch__fill_locations(ch_reward *r, const ch_env_params *p, uint32_t n) {
  lua_State *L = r->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->ref[CH__T_LOCATION]);
  for (uint32_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_createtable(L, 2, 0);
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, (lua_Integer)i + 1);
    }
    lua_pushnumber(L, p->objects[i].x);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, p->objects[i].y);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 1);
  }
  ch__trim(L, n, r->num_objects);
  lua_pop(L, 1);
}

/* One of the per-object scalar lists: which 0 = left of centre, 1 distance, 2 heading,
** 3 speed. */
static void ch__fill_list(ch_reward *r, const ch_env_params *p, uint32_t n, int slot, int which) {
  lua_State *L = r->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->ref[slot]);
  for (uint32_t i = 0; i < n; i++) {
    const ch_env_object *o = &p->objects[i];
    if (which == 0)
      lua_pushboolean(L, o->is_left_of_center);
    else
      lua_pushnumber(L, which == 1 ? o->distance : which == 2 ? o->heading : o->speed);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  ch__trim(L, n, r->num_objects);
  lua_pop(L, 1);
}

static void ch__fill_objects(ch_reward *r, const ch_env_params *p) {
  uint32_t n = p->objects ? p->num_objects : 0;
  int32_t closest[2] = {p->closest_objects[0], p->closest_objects[1]};
  for (int k = 0; k < 2; k++)
    if (closest[k] < 0 || (uint32_t)closest[k] >= n) closest[k] = -1;
  ch__set_pair(r, CH__T_CLOSEST_OBJECTS, closest);
  if (n == 0 && r->num_objects == 0) return;
  /* Boxes stand still for a whole episode: their lists are written once, not every step. */
  size_t bytes = n * sizeof *r->last;
  if (n == r->num_objects && n <= CH__LAST_OBJECTS && memcmp(r->last, p->objects, bytes) == 0)
    return;
  if (n <= CH__LAST_OBJECTS) memcpy(r->last, p->objects, bytes); /* more: rewritten each step */
  ch__fill_locations(r, p, n);
  ch__fill_list(r, p, n, CH__T_LEFT, 0);
  ch__fill_list(r, p, n, CH__T_DISTANCE, 1);
  ch__fill_list(r, p, n, CH__T_HEADING, 2);
  ch__fill_list(r, p, n, CH__T_SPEED, 3);
  r->num_objects = n;
}

/* Write this step's values into the reused params table (on top of the stack). */
static void ch__fill_params(ch_reward *r, const ch_env_params *p) {
  lua_State *L = r->sb.L;
  ch__set_number(L, "x", p->x);
  ch__set_number(L, "y", p->y);
  ch__set_number(L, "heading", p->heading);
  ch__set_number(L, "distance_from_center", p->distance_from_center);
  ch__set_number(L, "progress", p->progress);
  lua_pushinteger(L, p->steps);
  lua_setfield(L, -2, "steps");
  ch__set_number(L, "speed", p->speed);
  ch__set_number(L, "steering_angle", p->steering_angle);
  ch__set_number(L, "track_width", p->track_width);
  ch__set_number(L, "track_length", p->track_length);
  ch__set_bool(L, "all_wheels_on_track", p->all_wheels_on_track);
  ch__set_bool(L, "is_left_of_center", p->is_left_of_center);
  ch__set_bool(L, "is_offtrack", p->is_offtrack);
  ch__set_bool(L, "is_crashed", p->is_crashed);
  ch__set_bool(L, "is_reversed", p->is_reversed);
  ch__set_pair(r, CH__T_CLOSEST_WAYPOINTS, p->closest_waypoints);
  ch__fill_objects(r, p);
}

/* The line a bad result names: the return statement that gave it, else where reward_function
** is defined (a C function assigned to the name has no return line). */
static int ch__result_line(const ch_reward *r) {
  return r->sb.return_line > 0 ? r->sb.return_line : r->fn_line;
}

int ch_reward_call(ch_reward *r, const ch_env_params *p, double *out, ch_error *err) {
  lua_State *L = r->sb.L;
  int base = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->ref[CH__T_PARAMS]);
  ch__fill_params(r, p);
  ch_error e;
  if (ch_sandbox_call(&r->sb, 1, LUA_MULTRET, &e) != CH_OK)
    return ch_error_set(err, CH_ESCRIPT, "%s (reward_function at step %d)", e.message, p->steps);
  int nres = lua_gettop(L) - base;
  int isnum = nres > 0 && lua_type(L, base + 1) == LUA_TNUMBER;
  double v = isnum ? lua_tonumber(L, base + 1) : 0.0;
  const char *tname = nres > 0 ? luaL_typename(L, base + 1) : "no value";
  lua_settop(L, base);
  if (!isnum)
    return ch_error_set(err, CH_ESCRIPT,
                        "%s:%d: reward_function returned %s, not a number (step %d)", r->path,
                        ch__result_line(r), tname, p->steps);
  if (!isfinite(v) || fabs(v) > CH_REWARD_LIMIT)
    return ch_error_set(err, CH_ESCRIPT,
                        "%s:%d: reward_function returned %g, outside [-1e5, 1e5] (step %d)",
                        r->path, ch__result_line(r), v, p->steps);
  *out = v;
  return CH_OK;
}

/* Copy a racing line into the arrays ch_reward_extra takes. */
static int ch__copy_line(const ch_racing_line *rl, double **xy, double **speed, uint32_t *n,
                         ch_error *err) {
  *xy = malloc(sizeof(double) * 2 * (size_t)rl->n + 1);
  *speed = malloc(sizeof(double) * (size_t)rl->n + 1);
  if (!*xy || !*speed) {
    free(*xy);
    free(*speed);
    *xy = *speed = NULL;
    return ch_error_set(err, CH_ENOMEM, "racing line: out of memory");
  }
  for (int i = 0; i < rl->n; i++) {
    (*xy)[2 * i] = rl->x[i];
    (*xy)[2 * i + 1] = rl->y[i];
    (*speed)[i] = rl->v[i];
  }
  *n = (uint32_t)rl->n;
  return CH_OK;
}

int ch_reward_racing_line(const char *track_path, int reversed, double **xy, double **speed,
                          uint32_t *n, ch_error *err) {
  *xy = *speed = NULL;
  *n = 0;
  ch_track *t = NULL, *r = NULL;
  ch_racing_line *rl = NULL;
  ch_car_limits car;
  ch_car_limits_default(&car);
  int rc = ch_track_load(track_path, &t, err);
  if (rc == CH_OK && reversed) rc = ch_track_reverse(t, &r, err);
  if (rc == CH_OK) rc = ch_track_racing_line(r ? r : t, &car, &rl, err);
  if (rc == CH_OK) rc = ch__copy_line(rl, xy, speed, n, err);
  ch_racing_line_free(rl);
  ch_track_free(r);
  ch_track_free(t);
  return rc;
}
