/* lua_env.c -- chicane.env{...}: an env plugin instance driven by hand (reset, step, recover). */
#include "lua_internal.h"

#include "loader.h"
#include "paths.h"
#include "simtrace.h"

#include <stdlib.h>
#include <string.h>

enum { CH__NEW = 0, CH__RUNNING = 1, CH__ENDED = 2 }; /* what a car may do next */

typedef struct ch__lenv {
  ch_plugin *plugin;
  ch_env env;
  float *obs, *steer, *speed;
  uint8_t *image, *active, *state;
  ch_env_params *params;
  int32_t *status;
  size_t image_bytes; /* per car */
  char track[CH_PATH_MAX];
  char plugin_name[64];
} ch__lenv;

/* DeepRacer's episode_status names, as sim-traces write them. */
const char *ch_lua_status_name(int status) {
  const char *name = status >= 0 ? ch_simtrace_status_name(status) : NULL;
  return name ? name : "unknown";
}

static ch__lenv *ch__check(lua_State *L, int idx) {
  ch__lenv *e = luaL_checkudata(L, idx, CH_LUA_ENV);
  if (!e->env.h) luaL_error(L, "env is closed");
  return e;
}

static int ch__gc(lua_State *L) {
  ch__lenv *e = luaL_checkudata(L, 1, CH_LUA_ENV);
  ch_env_destroy(&e->env);
  ch_plugin_close(e->plugin);
  e->plugin = NULL;
  void *bufs[] = {e->obs, e->steer, e->speed, e->image, e->active, e->state, e->params, e->status};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  e->obs = e->steer = e->speed = NULL;
  e->image = e->active = e->state = NULL;
  e->params = NULL;
  e->status = NULL;
  return 0;
}

static int ch__tostring(lua_State *L) {
  ch__lenv *e = luaL_checkudata(L, 1, CH_LUA_ENV);
  if (!e->env.h) {
    lua_pushstring(L, "<chicane.env (closed)>");
    return 1;
  }
  const ch_env_spec *s = &e->env.spec;
  const char *slash = strrchr(e->track, '/');
  lua_pushfstring(L, "<chicane.env %s on %s: %d car%s, %d obs floats", e->plugin_name,
                  slash ? slash + 1 : e->track, (int)s->num_cars, s->num_cars == 1 ? "" : "s",
                  (int)s->obs_size);
  if (s->image_channels)
    lua_pushfstring(L, ", camera %dx%dx%d>", (int)s->image_width, (int)s->image_height,
                    (int)s->image_channels);
  else
    lua_pushstring(L, ">");
  lua_concat(L, 2);
  return 1;
}

static int ch__alloc(ch__lenv *e) {
  const ch_env_spec *s = &e->env.spec;
  size_t n = s->num_cars;
  e->image_bytes = (size_t)s->image_width * s->image_height * s->image_channels;
  e->obs = calloc(n * s->obs_size + 1, sizeof *e->obs);
  e->steer = calloc(n, sizeof *e->steer);
  e->speed = calloc(n, sizeof *e->speed);
  e->image = calloc(n * e->image_bytes + 1, 1);
  e->active = calloc(n, 1);
  e->state = calloc(n, 1);
  e->params = calloc(n, sizeof *e->params);
  e->status = calloc(n, sizeof *e->status);
  return e->obs && e->steer && e->speed && e->image && e->active && e->state && e->params &&
         e->status;
}

/* The plugin's config: the options table without `plugin`, with `track` as a file path. */
static char *ch__config_json(lua_State *L, int opts, const char *track, ch_error *err) {
  lua_newtable(L);
  for (lua_pushnil(L); lua_next(L, opts); lua_pop(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING &&
        (strcmp(lua_tostring(L, -2), "plugin") == 0 || strcmp(lua_tostring(L, -2), "track") == 0))
      continue;
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5);
  }
  cJSON *cfg = ch_lua_to_json(L, -1, "chicane.env", err);
  lua_pop(L, 1);
  if (!cfg) return NULL;
  cJSON_AddStringToObject(cfg, "track", track);
  char *json = cJSON_PrintUnformatted(cfg);
  cJSON_Delete(cfg);
  return json;
}

/* The centre line as a list of {x, y}, kept as the env's user value and shared by params. */
static void ch__waypoints(lua_State *L, ch__lenv *e) {
  int n = e->env.vt->waypoints(e->env.h, NULL, 0);
  double *xy = n > 0 ? malloc(sizeof(double) * 2 * (size_t)n) : NULL;
  if (n > 0 && (!xy || e->env.vt->waypoints(e->env.h, xy, (uint32_t)n) != n)) n = 0;
  lua_createtable(L, n > 0 ? n : 0, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, xy[2 * i]);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, xy[2 * i + 1]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  free(xy);
  lua_setiuservalue(L, -2, 1);
}

/* chicane.env{track=..., plugin="sim2d", ...} or chicane.env(track) -> env */
static int ch__new(lua_State *L) {
  const char *fn = "chicane.env";
  if (!lua_istable(L, 1)) {
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "track");
    lua_replace(L, 1);
  }
  lua_settop(L, 1);
  const char *plugin = ch_lua_opt_string(L, 1, fn, "plugin", "sim2d");
  ch__lenv *e = lua_newuserdatauv(L, sizeof *e, 1);
  memset(e, 0, sizeof *e);
  luaL_setmetatable(L, CH_LUA_ENV);
  snprintf(e->plugin_name, sizeof e->plugin_name, "%s", plugin);
  if (lua_getfield(L, 1, "track") == LUA_TNIL) return luaL_error(L, "%s: needs track=", fn);
  ch_lua_track_path(L, -1, fn, e->track, sizeof e->track);
  lua_pop(L, 1);
  ch_error err = {0, ""};
  char *json = ch__config_json(L, 1, e->track, &err);
  if (!json) return ch_lua_fail(L, fn, &err);
  int rc = ch_plugin_find(CH_PLUGIN_ENV, plugin, &e->plugin, &err);
  if (rc == CH_OK) rc = ch_env_create(e->plugin, json, &e->env, &err);
  free(json);
  if (rc != CH_OK) return ch_lua_fail(L, fn, &err);
  if (!ch__alloc(e)) return luaL_error(L, "%s: out of memory", fn);
  ch__waypoints(L, e);
  return 1;
}

static void ch__set_number(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void ch__set_bool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* The objects_* lists of DeepRacer's params. */
static void ch__push_objects(lua_State *L, const ch_env_params *p) {
  static const char *const lists[] = {"objects_location", "objects_left_of_center",
                                      "objects_distance", "objects_heading", "objects_speed"};
  for (int k = 0; k < 5; k++) {
    lua_createtable(L, (int)p->num_objects, 0);
    for (uint32_t i = 0; i < p->num_objects && p->objects; i++) {
      const ch_env_object *o = &p->objects[i];
      if (k == 0) {
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, o->x);
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, o->y);
        lua_rawseti(L, -2, 2);
      } else if (k == 1) {
        lua_pushboolean(L, o->is_left_of_center);
      } else {
        lua_pushnumber(L, k == 2 ? o->distance : k == 3 ? o->heading : o->speed);
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, lists[k]);
  }
  lua_createtable(L, 2, 0); /* 1-based; 0: no such object, as reward functions see them */
  for (int i = 0; i < 2; i++) {
    lua_pushinteger(L, (lua_Integer)p->closest_objects[i] + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "closest_objects");
}

void ch_lua_push_params(lua_State *L, const ch_env_params *p, int waypoints_idx) {
  lua_createtable(L, 0, 32);
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
  lua_createtable(L, 2, 0);
  for (int i = 0; i < 2; i++) {
    lua_pushinteger(L, (lua_Integer)p->closest_waypoints[i] + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "closest_waypoints");
  lua_pushstring(L, ch_lua_status_name(p->episode_status));
  lua_setfield(L, -2, "episode_status");
  ch__push_objects(L, p);
  if (waypoints_idx) {
    lua_pushvalue(L, waypoints_idx);
    lua_setfield(L, -2, "waypoints");
  }
}

/* Push car i's observation: the floats, and .image when the env has a camera. */
static void ch__push_obs(lua_State *L, const ch__lenv *e, uint32_t i) {
  const ch_env_spec *s = &e->env.spec;
  const float *o = e->obs + (size_t)i * s->obs_size;
  lua_createtable(L, (int)s->obs_size, 1);
  for (uint32_t k = 0; k < s->obs_size; k++) {
    lua_pushnumber(L, o[k]);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  if (e->image_bytes) {
    ch_lua_push_image(L, s->image_width, s->image_height, s->image_channels,
                      e->image + (size_t)i * e->image_bytes);
    lua_setfield(L, -2, "image");
  }
}

/* Push obs and params of car i (the env's user value supplies the waypoints). */
static void ch__push_car(lua_State *L, const ch__lenv *e, uint32_t i) {
  ch__push_obs(L, e, i);
  lua_getiuservalue(L, 1, 1);
  ch_lua_push_params(L, &e->params[i], lua_gettop(L));
  lua_remove(L, -2);
}

/* Push lists of obs, params (and statuses when with_status) of every car. */
static int ch__push_all(lua_State *L, const ch__lenv *e, int with_status) {
  uint32_t n = e->env.spec.num_cars;
  int base = lua_gettop(L);
  for (int k = 0; k < 2 + with_status; k++) lua_createtable(L, (int)n, 0);
  for (uint32_t i = 0; i < n; i++) {
    ch__push_car(L, e, i);
    lua_rawseti(L, base + 2, (lua_Integer)i + 1);
    lua_rawseti(L, base + 1, (lua_Integer)i + 1);
    if (with_status) {
      lua_pushstring(L, ch_lua_status_name(e->status[i]));
      lua_rawseti(L, base + 3, (lua_Integer)i + 1);
    }
  }
  return 2 + with_status;
}

/* A car number (1-based) from the options or an argument; raises when out of range. */
static uint32_t ch__car(lua_State *L, const ch__lenv *e, lua_Integer car, const char *fn) {
  if (car < 1 || car > (lua_Integer)e->env.spec.num_cars)
    luaL_error(L, "%s: car %d is not in 1..%d", fn, (int)car, (int)e->env.spec.num_cars);
  return (uint32_t)(car - 1);
}

static int ch__reset_car(lua_State *L, ch__lenv *e, uint32_t i, const ch_env_reset *r) {
  ch_error err = {0, ""};
  uint8_t *img = e->image_bytes ? e->image + (size_t)i * e->image_bytes : NULL;
  int rc = e->env.vt->reset(e->env.h, i, r, e->obs + (size_t)i * e->env.spec.obs_size, img,
                            &e->params[i], &err);
  if (rc != CH_OK) return ch_lua_fail(L, "env:reset", &err);
  e->state[i] = CH__RUNNING;
  e->status[i] = CH_EPISODE_IN_PROGRESS;
  return 0;
}

/* env:reset{car=, start=, offset=, reversed=, seed=} -> obs, params (lists without car when
** the env has several cars) */
static int ch__reset(lua_State *L) {
  static const char *const keys[] = {"car", "start", "offset", "reversed", "seed", NULL};
  const char *fn = "env:reset";
  ch__lenv *e = ch__check(L, 1);
  ch_lua_check_options(L, 2, fn, keys);
  ch_env_reset r = {0};
  r.start_fraction = ch_lua_opt_number(L, 2, fn, "start", 0.0);
  r.start_offset = ch_lua_opt_number(L, 2, fn, "offset", 0.0);
  r.reversed = ch_lua_opt_bool(L, 2, fn, "reversed", 0);
  r.seed = (uint64_t)ch_lua_opt_integer(L, 2, fn, "seed", 1);
  if (!(r.start_fraction >= 0 && r.start_fraction <= 1))
    return luaL_error(L, "%s: start must be a fraction of the track in [0, 1]", fn);
  lua_Integer car = ch_lua_opt_integer(L, 2, fn, "car", 0);
  lua_settop(L, 1);
  if (car == 0 && e->env.spec.num_cars > 1) {
    for (uint32_t i = 0; i < e->env.spec.num_cars; i++) ch__reset_car(L, e, i, &r);
    return ch__push_all(L, e, 0);
  }
  uint32_t i = ch__car(L, e, car ? car : 1, fn);
  ch__reset_car(L, e, i, &r);
  ch__push_car(L, e, i);
  return 2;
}

/* Read a command: a number for a one-car env, else a list of num_cars numbers. */
static void ch__commands(lua_State *L, ch__lenv *e, int idx, float *out, const char *what) {
  uint32_t n = e->env.spec.num_cars;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    out[0] = (float)lua_tonumber(L, idx);
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TNUMBER)
      luaL_error(L, "env:step: %s[%d] must be a number, got %s", what, (int)i + 1,
                 luaL_typename(L, -1));
    out[i] = (float)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
}

/* Mark which cars step; raises for a car never reset or, alone, one whose episode ended. */
static void ch__activate(lua_State *L, ch__lenv *e, int one) {
  int any = 0;
  for (uint32_t i = 0; i < e->env.spec.num_cars; i++) {
    if (e->state[i] == CH__NEW) luaL_error(L, "env:step: car %d has not been reset", (int)i + 1);
    e->active[i] = e->state[i] == CH__RUNNING;
    any |= e->active[i];
  }
  if (!any && one)
    luaL_error(L, "env:step: the episode ended (%s): reset or recover the car first",
               ch_lua_status_name(e->status[0]));
  if (!any) luaL_error(L, "env:step: every car's episode has ended: reset or recover them");
}

/* env:step(steer, speed) -> obs, params, status; with lists (one entry per car) -> lists */
static int ch__step(lua_State *L) {
  ch__lenv *e = ch__check(L, 1);
  int one = lua_type(L, 2) == LUA_TNUMBER;
  if (one && e->env.spec.num_cars != 1)
    return luaL_error(L,
                      "env:step: the env has %d cars: pass lists of steering angles and "
                      "speeds, one per car",
                      (int)e->env.spec.num_cars);
  luaL_argexpected(L, one || lua_istable(L, 2), 2, "number or list of numbers");
  luaL_argexpected(L, one ? lua_type(L, 3) == LUA_TNUMBER : lua_istable(L, 3), 3,
                   one ? "number" : "list of numbers");
  ch__commands(L, e, 2, e->steer, "steering");
  ch__commands(L, e, 3, e->speed, "speed");
  ch__activate(L, e, one);
  ch_error err = {0, ""};
  if (e->env.vt->step(e->env.h, e->steer, e->speed, e->active, e->obs,
                      e->image_bytes ? e->image : NULL, e->params, e->status, &err) != CH_OK)
    return ch_lua_fail(L, "env:step", &err);
  for (uint32_t i = 0; i < e->env.spec.num_cars; i++)
    if (e->active[i] && e->status[i] != CH_EPISODE_IN_PROGRESS) e->state[i] = CH__ENDED;
  lua_settop(L, 1);
  if (!one) return ch__push_all(L, e, 1);
  ch__push_car(L, e, 0);
  lua_pushstring(L, ch_lua_status_name(e->status[0]));
  return 3;
}

/* env:recover([car]) -> obs, params: back on the centre line, the episode goes on */
static int ch__recover(lua_State *L) {
  ch__lenv *e = ch__check(L, 1);
  uint32_t i = ch__car(L, e, luaL_optinteger(L, 2, 1), "env:recover");
  if (e->state[i] == CH__NEW) return luaL_error(L, "env:recover: car %d has not been reset", i + 1);
  ch_error err = {0, ""};
  uint8_t *img = e->image_bytes ? e->image + (size_t)i * e->image_bytes : NULL;
  if (e->env.vt->recover(e->env.h, i, e->obs + (size_t)i * e->env.spec.obs_size, img, &e->params[i],
                         &err) != CH_OK)
    return ch_lua_fail(L, "env:recover", &err);
  e->state[i] = CH__RUNNING;
  e->status[i] = CH_EPISODE_IN_PROGRESS;
  lua_settop(L, 1);
  ch__push_car(L, e, i);
  return 2;
}

/* env:spec() -> {num_cars, obs_size, ...} */
static int ch__spec(lua_State *L) {
  const ch_env_spec *s = &ch__check(L, 1)->env.spec;
  lua_createtable(L, 0, 11);
  const struct {
    const char *k;
    double v;
  } f[] = {{"num_cars", s->num_cars},
           {"obs_size", s->obs_size},
           {"num_waypoints", s->num_waypoints},
           {"track_length", s->track_length},
           {"track_width", s->track_width},
           {"step_seconds", s->step_seconds},
           {"image_width", s->image_width},
           {"image_height", s->image_height},
           {"image_channels", s->image_channels},
           {"max_objects", s->max_objects}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    if (f[i].v == (lua_Integer)f[i].v)
      lua_pushinteger(L, (lua_Integer)f[i].v);
    else
      lua_pushnumber(L, f[i].v);
    lua_setfield(L, -2, f[i].k);
  }
  lua_pushboolean(L, s->is_loop);
  lua_setfield(L, -2, "is_loop");
  return 1;
}

/* env:waypoints() -> list of {x, y} */
static int ch__get_waypoints(lua_State *L) {
  ch__check(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static const char *const ch__fields[] = {"num_cars", "obs_size", "track", "plugin", NULL};

static int ch__get(lua_State *L, const char *key) {
  ch__lenv *e = ch__check(L, 1);
  if (strcmp(key, "num_cars") == 0)
    lua_pushinteger(L, e->env.spec.num_cars);
  else if (strcmp(key, "obs_size") == 0)
    lua_pushinteger(L, e->env.spec.obs_size);
  else if (strcmp(key, "track") == 0)
    lua_pushstring(L, e->track);
  else if (strcmp(key, "plugin") == 0)
    lua_pushstring(L, e->plugin_name);
  else
    return 0;
  return 1;
}

static const luaL_Reg ch__methods[] = {{"reset", ch__reset},
                                       {"step", ch__step},
                                       {"recover", ch__recover},
                                       {"spec", ch__spec},
                                       {"waypoints", ch__get_waypoints},
                                       {"close", ch__gc},
                                       {NULL, NULL}};

static const ch_lua_class ch__class = {CH_LUA_ENV, ch__methods, ch__fields,
                                       ch__get,    ch__gc,      ch__tostring};

void ch_lua_open_env(lua_State *L) {
  ch_lua_class_register(L, &ch__class);
  lua_pushcfunction(L, ch__new);
  lua_setfield(L, -2, "env");
}
