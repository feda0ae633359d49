/* lua_track.c -- chicane.tracks() and track objects: geometry, projection, points along the line.
 */
#include "lua_internal.h"

#include "paths.h"
#include "track.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CH__DEG (180.0 / 3.14159265358979323846)

typedef struct ch__ltrack {
  ch_track *t;
  char path[CH_PATH_MAX];
} ch__ltrack;

static ch__ltrack *ch__check(lua_State *L, int idx) {
  ch__ltrack *lt = luaL_checkudata(L, idx, CH_LUA_TRACK);
  if (!lt->t) luaL_error(L, "track is closed");
  return lt;
}

void ch_lua_track_path(lua_State *L, int idx, const char *fn, char *out, size_t outlen) {
  ch__ltrack *lt = luaL_testudata(L, idx, CH_LUA_TRACK);
  if (lt) {
    snprintf(out, outlen, "%s", lt->path);
    return;
  }
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "%s: track must be a name, a path or a track object, got %s", fn,
               luaL_typename(L, idx));
  ch_error err = {0, ""};
  if (ch_resolve_track(lua_tostring(L, idx), out, outlen, &err) != CH_OK) ch_lua_fail(L, fn, &err);
}

static int ch__filter(const struct dirent *d) {
  size_t n = strlen(d->d_name);
  return n > 6 && strcmp(d->d_name + n - 6, ".track") == 0;
}

/* chicane.tracks() -> list of names */
static int ch__tracks(lua_State *L) {
  char dir[CH_PATH_MAX];
  snprintf(dir, sizeof dir, "%s/tracks", ch_data_dir());
  struct dirent **list = NULL;
  int n = scandir(dir, &list, ch__filter, alphasort);
  lua_createtable(L, n > 0 ? n : 0, 0);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(list[i]->d_name) - 6;
    lua_pushlstring(L, list[i]->d_name, len);
    lua_rawseti(L, -2, i + 1);
  }
  for (int i = 0; i < n; i++) free(list[i]);
  free(list);
  return 1;
}

/* chicane.track(name_or_path) -> track */
static int ch__track(lua_State *L) {
  if (luaL_testudata(L, 1, CH_LUA_TRACK)) {
    lua_settop(L, 1);
    return 1;
  }
  ch__ltrack *lt = lua_newuserdatauv(L, sizeof *lt, 1);
  lt->t = NULL;
  luaL_setmetatable(L, CH_LUA_TRACK);
  ch_lua_track_path(L, 1, "chicane.track", lt->path, sizeof lt->path);
  ch_error err = {0, ""};
  if (ch_track_load(lt->path, &lt->t, &err) != CH_OK) return ch_lua_fail(L, "chicane.track", &err);
  lua_newtable(L); /* cache of the point lists */
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int ch__gc(lua_State *L) {
  ch__ltrack *lt = luaL_checkudata(L, 1, CH_LUA_TRACK);
  ch_track_free(lt->t);
  lt->t = NULL;
  return 0;
}

static int ch__tostring(lua_State *L) {
  ch__ltrack *lt = luaL_checkudata(L, 1, CH_LUA_TRACK);
  if (!lt->t) {
    lua_pushstring(L, "<chicane.track (closed)>");
    return 1;
  }
  const ch_track *t = lt->t;
  char buf[256];
  snprintf(buf, sizeof buf, "<chicane.track %s: %s, %.2f m long, %.3f m wide, %d points>", t->name,
           t->is_loop ? "loop" : "open", t->length, t->width, t->n);
  lua_pushstring(L, buf);
  return 1;
}

/* A list of {x, y} from two arrays; with a key, cached in the user value under it. */
static void ch__points(lua_State *L, const char *key, const double *x, const double *y, int n) {
  if (key) {
    lua_getiuservalue(L, 1, 1);
    if (lua_getfield(L, -1, key) == LUA_TTABLE) {
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 1);
  }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, x[i]);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, y[i]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  if (key) {
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, key);
    lua_remove(L, -2);
  }
}

static const char *const ch__fields[] = {"name",   "path",      "length", "width", "loop",
                                         "points", "waypoints", "left",   "right", NULL};

static int ch__get(lua_State *L, const char *key) {
  ch__ltrack *lt = ch__check(L, 1);
  const ch_track *t = lt->t;
  if (strcmp(key, "name") == 0)
    lua_pushstring(L, t->name);
  else if (strcmp(key, "path") == 0)
    lua_pushstring(L, lt->path);
  else if (strcmp(key, "length") == 0)
    lua_pushnumber(L, t->length);
  else if (strcmp(key, "width") == 0)
    lua_pushnumber(L, t->width);
  else if (strcmp(key, "loop") == 0)
    lua_pushboolean(L, t->is_loop);
  else if (strcmp(key, "points") == 0)
    lua_pushinteger(L, t->n);
  else if (strcmp(key, "waypoints") == 0)
    ch__points(L, key, t->cx, t->cy, t->n);
  else if (strcmp(key, "left") == 0)
    ch__points(L, key, t->lx, t->ly, t->n);
  else if (strcmp(key, "right") == 0)
    ch__points(L, key, t->rx, t->ry, t->n);
  else
    return 0;
  return 1;
}

static void ch__set(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* track:project(x, y) -> {s, progress, offset, distance, ...} */
static int ch__project(lua_State *L) {
  const ch_track *t = ch__check(L, 1)->t;
  double x = luaL_checknumber(L, 2), y = luaL_checknumber(L, 3);
  ch_track_proj p;
  ch_track_project(t, x, y, -1, &p);
  lua_createtable(L, 0, 14);
  ch__set(L, "s", p.s);
  ch__set(L, "progress", 100.0 * p.s / t->length);
  ch__set(L, "offset", p.offset);
  ch__set(L, "distance", p.distance);
  ch__set(L, "half_left", p.half_left);
  ch__set(L, "half_right", p.half_right);
  ch__set(L, "heading", p.heading * CH__DEG);
  ch__set(L, "x", p.px);
  ch__set(L, "y", p.py);
  ch__set(L, "t", p.t);
  lua_pushinteger(L, p.segment + 1);
  lua_setfield(L, -2, "segment");
  lua_pushboolean(L, p.offset > 0);
  lua_setfield(L, -2, "left_of_center");
  lua_pushboolean(L, p.offset <= p.half_left && -p.offset <= p.half_right);
  lua_setfield(L, -2, "on_track");
  return 1;
}

/* track:point_at(s) -> x, y, heading (degrees) */
static int ch__point_at(lua_State *L) {
  const ch_track *t = ch__check(L, 1)->t;
  double s = ch_track_wrap_s(t, luaL_checknumber(L, 2)), x, y, h;
  ch_track_point_at(t, s, &x, &y, &h);
  lua_pushnumber(L, x);
  lua_pushnumber(L, y);
  lua_pushnumber(L, h * CH__DEG);
  return 3;
}

/* track:curvature(s[, ahead]) -> mean curvature over [s, s + ahead], 1/m, + = left */
static int ch__curvature(lua_State *L) {
  const ch_track *t = ch__check(L, 1)->t;
  double s = luaL_checknumber(L, 2), ahead = luaL_optnumber(L, 3, 0.5);
  luaL_argcheck(L, ahead > 0, 3, "must be > 0 metres");
  lua_pushnumber(L, ch_track_curvature(t, s, 0.0, ahead));
  return 1;
}

static void ch__list(lua_State *L, const char *key, const double *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, key);
}

/* The car limits from an options table (DeepRacer's car by default). */
static void ch__car(lua_State *L, int idx, const char *fn, ch_car_limits *car) {
  static const char *const keys[] = {"v_max",   "v_min",  "a_lat",           "a_accel",
                                     "a_brake", "margin", "friction_circle", NULL};
  ch_car_limits_default(car);
  ch_lua_check_options(L, idx, fn, keys);
  car->v_max = ch_lua_opt_number(L, idx, fn, "v_max", car->v_max);
  car->v_min = ch_lua_opt_number(L, idx, fn, "v_min", car->v_min);
  car->a_lat = ch_lua_opt_number(L, idx, fn, "a_lat", car->a_lat);
  car->a_accel = ch_lua_opt_number(L, idx, fn, "a_accel", car->a_accel);
  car->a_brake = ch_lua_opt_number(L, idx, fn, "a_brake", car->a_brake);
  car->margin = ch_lua_opt_number(L, idx, fn, "margin", car->margin);
  car->friction_circle = ch_lua_opt_bool(L, idx, fn, "friction_circle", car->friction_circle);
}

static int ch__line(lua_State *L, const char *fn, int centre) {
  const ch_track *t = ch__check(L, 1)->t;
  ch_car_limits car;
  ch__car(L, 2, fn, &car);
  ch_racing_line *rl = NULL;
  ch_error err = {0, ""};
  int rc =
      centre ? ch_track_centre_line(t, &car, &rl, &err) : ch_track_racing_line(t, &car, &rl, &err);
  if (rc != CH_OK) return ch_lua_fail(L, fn, &err);
  /* Copy into Lua first: a memory error while building the table must not leak rl, so the
  ** numbers go into a userdata that Lua owns before rl is freed. */
  int n = rl->n;
  double *v = lua_newuserdatauv(L, sizeof(double) * 6 * (size_t)(n > 0 ? n : 1), 0);
  double scalars[5] = {rl->length, rl->lap_time, rl->standing_lap_time, rl->iterations, rl->beta};
  for (int i = 0; i < n; i++) {
    v[i] = rl->x[i], v[n + i] = rl->y[i], v[2 * n + i] = rl->v[i];
    v[3 * n + i] = rl->offset[i], v[4 * n + i] = rl->kappa[i], v[5 * n + i] = rl->s[i];
  }
  ch_racing_line_free(rl);
  lua_createtable(L, 0, 10);
  ch__points(L, NULL, v, v + n, n);
  lua_setfield(L, -2, "points");
  ch__list(L, "speed", v + 2 * n, n);
  ch__list(L, "offset", v + 3 * n, n);
  ch__list(L, "curvature", v + 4 * n, n);
  ch__list(L, "s", v + 5 * n, n);
  static const char *const names[] = {"length", "lap_time", "standing_lap_time", "iterations",
                                      "beta"};
  for (int i = 0; i < 5; i++) ch__set(L, names[i], scalars[i]);
  return 1;
}

/* track:racing_line([car]) -> {points, speed, offset, curvature, s, length, lap_time, ...} */
static int ch__racing_line(lua_State *L) {
  return ch__line(L, "track:racing_line", 0);
}

/* track:centre_line([car]) -> the same for the centre line */
static int ch__centre_line(lua_State *L) {
  return ch__line(L, "track:centre_line", 1);
}

/* track:reference_lap() -> seconds: the racing line's standing lap (what evaluation compares) */
static int ch__reference_lap(lua_State *L) {
  const ch_track *t = ch__check(L, 1)->t;
  double seconds;
  ch_error err = {0, ""};
  if (ch_track_reference_lap(t, &seconds, &err) != CH_OK)
    return ch_lua_fail(L, "track:reference_lap", &err);
  lua_pushnumber(L, seconds);
  return 1;
}

static const luaL_Reg ch__methods[] = {{"project", ch__project},
                                       {"point_at", ch__point_at},
                                       {"curvature", ch__curvature},
                                       {"racing_line", ch__racing_line},
                                       {"centre_line", ch__centre_line},
                                       {"reference_lap", ch__reference_lap},
                                       {"close", ch__gc},
                                       {NULL, NULL}};

static const ch_lua_class ch__class = {CH_LUA_TRACK, ch__methods, ch__fields,
                                       ch__get,      ch__gc,      ch__tostring};

void ch_lua_open_track(lua_State *L) {
  ch_lua_class_register(L, &ch__class);
  lua_pushcfunction(L, ch__tracks);
  lua_setfield(L, -2, "tracks");
  lua_pushcfunction(L, ch__track);
  lua_setfield(L, -2, "track");
}
