/* lua_reward.c -- chicane.reward(path): a reward function in the training sandbox, callable. */
#include "lua_internal.h"

#include "paths.h"
#include "reward.h"
#include "simtrace.h"
#include "track.h"

#include <stdlib.h>
#include <string.h>

#define CH__MAX_OBJECTS 64 /* objects read from one params table */

typedef struct ch__lreward {
  ch_reward *r;
  char path[CH_PATH_MAX];
  char track[CH_TRACK_NAME_MAX];
} ch__lreward;

static ch__lreward *ch__check(lua_State *L) {
  ch__lreward *lr = luaL_checkudata(L, 1, CH_LUA_REWARD);
  if (!lr->r) luaL_error(L, "reward is closed");
  return lr;
}

static int ch__gc(lua_State *L) {
  ch__lreward *lr = luaL_checkudata(L, 1, CH_LUA_REWARD);
  ch_reward_close(lr->r);
  lr->r = NULL;
  return 0;
}

static int ch__tostring(lua_State *L) {
  ch__lreward *lr = luaL_checkudata(L, 1, CH_LUA_REWARD);
  if (!lr->r)
    lua_pushfstring(L, "<chicane.reward %s (closed)>", lr->path);
  else if (lr->track[0])
    lua_pushfstring(L, "<chicane.reward %s on %s>", lr->path, lr->track);
  else
    lua_pushfstring(L, "<chicane.reward %s>", lr->path);
  return 1;
}

/* The centre line of the track at path in driving order, 2 doubles per point (malloc'd). */
static int ch__waypoints(const char *path, int reversed, ch__lreward *lr, double **xy, uint32_t *n,
                         ch_error *err) {
  ch_track *t = NULL, *r = NULL;
  int rc = ch_track_load(path, &t, err);
  if (rc == CH_OK && reversed) rc = ch_track_reverse(t, &r, err);
  const ch_track *use = r ? r : t;
  if (rc == CH_OK) {
    snprintf(lr->track, sizeof lr->track, "%s", use->name);
    *xy = malloc(sizeof(double) * 2 * (size_t)use->n);
    if (!*xy) rc = ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
    for (int i = 0; *xy && i < use->n; i++) {
      (*xy)[2 * i] = use->cx[i];
      (*xy)[2 * i + 1] = use->cy[i];
    }
    *n = (uint32_t)use->n;
  }
  ch_track_free(r);
  ch_track_free(t);
  return rc;
}

/* Open the script as training does: with the track's waypoints and racing line (in the
** direction driven) when there is a track, else with neither. */
static int ch__open(ch__lreward *lr, const char *track_path, int reversed, ch_error *err) {
  double *xy = NULL, *line = NULL, *speed = NULL;
  uint32_t n = 0, nl = 0;
  int rc = CH_OK;
  if (track_path) rc = ch__waypoints(track_path, reversed, lr, &xy, &n, err);
  if (rc == CH_OK && track_path)
    rc = ch_reward_racing_line(track_path, reversed, &line, &speed, &nl, err);
  ch_reward_options opt = {xy, n, 0, 0};
  ch_reward_extra extra = {line, speed, nl};
  if (rc == CH_OK) rc = ch_reward_open_extra(lr->path, &opt, &extra, &lr->r, err);
  free(xy);
  free(line);
  free(speed);
  return rc;
}

/* chicane.reward(path[, track[, {reversed=}]]) -> reward */
static int ch__new(lua_State *L) {
  static const char *const keys[] = {"reversed", NULL};
  const char *fn = "chicane.reward", *name = luaL_checkstring(L, 1);
  char track_path[CH_PATH_MAX];
  int with_track = !lua_isnoneornil(L, 2);
  if (with_track) ch_lua_track_path(L, 2, fn, track_path, sizeof track_path);
  ch_lua_check_options(L, 3, fn, keys);
  int reversed = ch_lua_opt_bool(L, 3, fn, "reversed", 0);
  if (reversed && !with_track) return luaL_error(L, "%s: reversed needs a track", fn);
  ch__lreward *lr = lua_newuserdatauv(L, sizeof *lr, 0);
  memset(lr, 0, sizeof *lr);
  luaL_setmetatable(L, CH_LUA_REWARD);
  ch_error err = {0, ""};
  if (ch_file_resolve(name, ".", lr->path, sizeof lr->path, &err) != CH_OK ||
      ch__open(lr, with_track ? track_path : NULL, reversed, &err) != CH_OK)
    return ch_lua_fail(L, fn, &err);
  return 1;
}

/* params[key] on the stack, checked to be of type t (or nil); returns whether present. */
static int ch__field(lua_State *L, int idx, const char *fn, const char *key, int t) {
  int got = lua_getfield(L, idx, key);
  if (got == LUA_TNIL) return 0;
  if (got != t && !(t == LUA_TBOOLEAN && got == LUA_TNUMBER))
    luaL_error(L, "%s: params.%s must be a %s, got %s", fn, key, lua_typename(L, t),
               luaL_typename(L, -1));
  return 1;
}

static double ch__number(lua_State *L, int idx, const char *fn, const char *key, double def) {
  double v = ch__field(L, idx, fn, key, LUA_TNUMBER) ? lua_tonumber(L, -1) : def;
  lua_pop(L, 1);
  return v;
}

static int ch__bool(lua_State *L, int idx, const char *fn, const char *key) {
  int v = 0;
  if (ch__field(L, idx, fn, key, LUA_TBOOLEAN))
    v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) != 0 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Entry i (1-based) of list params[key] as a number; def when absent. */
static double ch__list_number(lua_State *L, int idx, const char *key, lua_Integer i, double def) {
  double v = def;
  if (lua_getfield(L, idx, key) == LUA_TTABLE) {
    if (lua_rawgeti(L, -1, i) == LUA_TNUMBER)
      v = lua_tonumber(L, -1);
    else if (lua_isboolean(L, -1))
      v = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

static uint32_t ch__read_objects(lua_State *L, int idx, const char *fn, ch_env_object *objects,
                                 uint32_t max) {
  if (!ch__field(L, idx, fn, "objects_location", LUA_TTABLE)) {
    lua_pop(L, 1);
    return 0;
  }
  uint32_t n = (uint32_t)lua_rawlen(L, -1);
  if (n > max) luaL_error(L, "%s: params.objects_location has more than %d objects", fn, (int)max);
  for (uint32_t i = 0; i < n; i++) {
    ch_env_object *o = &objects[i];
    memset(o, 0, sizeof *o);
    if (lua_rawgeti(L, -1, (lua_Integer)i + 1) != LUA_TTABLE)
      luaL_error(L, "%s: params.objects_location[%d] must be {x, y}", fn, (int)i + 1);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    o->x = lua_tonumber(L, -2);
    o->y = lua_tonumber(L, -1);
    lua_pop(L, 3);
    o->distance = ch__list_number(L, idx, "objects_distance", i + 1, 0);
    o->heading = ch__list_number(L, idx, "objects_heading", i + 1, 0);
    o->speed = ch__list_number(L, idx, "objects_speed", i + 1, 0);
    o->is_left_of_center = ch__list_number(L, idx, "objects_left_of_center", i + 1, 0) != 0;
    o->kind = o->speed > 0 ? CH_OBJECT_BOT_CAR : CH_OBJECT_BOX;
  }
  lua_pop(L, 1);
  return n;
}

static int ch__status(lua_State *L, int idx, const char *fn) {
  int s = CH_EPISODE_IN_PROGRESS;
  int32_t parsed;
  if (ch__field(L, idx, fn, "episode_status", LUA_TSTRING) &&
      ch_simtrace_status_parse(lua_tostring(L, -1), &parsed) == CH_OK && parsed >= 0)
    s = parsed;
  lua_pop(L, 1);
  return s;
}

void ch_lua_read_params(lua_State *L, int idx, const char *fn, ch_env_params *p,
                        ch_env_object *objects, uint32_t max_objects) {
  luaL_checktype(L, idx, LUA_TTABLE);
  idx = lua_absindex(L, idx);
  memset(p, 0, sizeof *p);
  p->x = ch__number(L, idx, fn, "x", 0);
  p->y = ch__number(L, idx, fn, "y", 0);
  p->heading = ch__number(L, idx, fn, "heading", 0);
  p->distance_from_center = ch__number(L, idx, fn, "distance_from_center", 0);
  p->progress = ch__number(L, idx, fn, "progress", 0);
  p->speed = ch__number(L, idx, fn, "speed", 0);
  p->steering_angle = ch__number(L, idx, fn, "steering_angle", 0);
  p->track_width = ch__number(L, idx, fn, "track_width", 0);
  p->track_length = ch__number(L, idx, fn, "track_length", 0);
  p->steps = (int32_t)ch__number(L, idx, fn, "steps", 1);
  p->all_wheels_on_track = ch__bool(L, idx, fn, "all_wheels_on_track");
  p->is_left_of_center = ch__bool(L, idx, fn, "is_left_of_center");
  p->is_offtrack = ch__bool(L, idx, fn, "is_offtrack");
  p->is_crashed = ch__bool(L, idx, fn, "is_crashed");
  p->is_reversed = ch__bool(L, idx, fn, "is_reversed");
  p->episode_status = ch__status(L, idx, fn);
  for (int i = 0; i < 2; i++)
    p->closest_waypoints[i] =
        (int32_t)ch__list_number(L, idx, "closest_waypoints", i + 1, i + 1) - 1;
  p->num_objects = ch__read_objects(L, idx, fn, objects, max_objects);
  p->objects = p->num_objects ? objects : NULL;
  for (int i = 0; i < 2; i++)
    p->closest_objects[i] = (int32_t)ch__list_number(L, idx, "closest_objects", i + 1, 0) - 1;
}

/* reward:call(params) -> number */
static int ch__call(lua_State *L) {
  ch__lreward *lr = ch__check(L);
  ch_env_params p;
  ch_env_object objects[CH__MAX_OBJECTS];
  ch_lua_read_params(L, 2, "reward:call", &p, objects, CH__MAX_OBJECTS);
  double v;
  ch_error err = {0, ""};
  if (ch_reward_call(lr->r, &p, &v, &err) != CH_OK) return ch_lua_fail(L, "reward:call", &err);
  lua_pushnumber(L, v);
  return 1;
}

static const char *const ch__fields[] = {"path", "track", NULL};

static int ch__get(lua_State *L, const char *key) {
  ch__lreward *lr = ch__check(L);
  if (strcmp(key, "path") == 0)
    lua_pushstring(L, lr->path);
  else if (strcmp(key, "track") == 0 && lr->track[0])
    lua_pushstring(L, lr->track);
  else
    return 0;
  return 1;
}

static const luaL_Reg ch__methods[] = {{"call", ch__call}, {"close", ch__gc}, {NULL, NULL}};

static const ch_lua_class ch__class = {CH_LUA_REWARD, ch__methods, ch__fields,
                                       ch__get,       ch__gc,      ch__tostring};

void ch_lua_open_reward(lua_State *L) {
  ch_lua_class_register(L, &ch__class);
  luaL_getmetatable(L, CH_LUA_REWARD);
  lua_pushcfunction(L, ch__call); /* reward(params) is reward:call(params) */
  lua_setfield(L, -2, "__call");
  lua_pop(L, 1);
  lua_pushcfunction(L, ch__new);
  lua_setfield(L, -2, "reward");
}
