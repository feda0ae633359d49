/* lua_render.c -- chicane.render{...}: what a car's sensors see, or a track map, as a PNG file. */
#include "lua_internal.h"

#include "paths.h"
#include "render.h"

#include <string.h>

/* chicane.render{track=, sensor="camera", progress=0, offset=0, heading_offset=0, race_type=,
** seed=1, reversed=false, scale=4, plugin=, env={...}, out="frame.png"} -> out */
static int ch__render(lua_State *L) {
  static const char *const keys[] = {"track",     "sensor", "progress", "offset", "heading_offset",
                                     "race_type", "seed",   "reversed", "scale",  "plugin",
                                     "env",       "out",    NULL};
  const char *fn = "chicane.render";
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  ch_lua_check_options(L, 1, fn, keys);
  ch_render_options o;
  ch_render_defaults(&o);
  char track[CH_PATH_MAX];
  if (lua_getfield(L, 1, "track") == LUA_TNIL) return luaL_error(L, "%s: needs track=", fn);
  ch_lua_track_path(L, -1, fn, track, sizeof track);
  o.track = track;
  o.sensor = ch_lua_opt_string(L, 1, fn, "sensor", o.sensor);
  o.progress = ch_lua_opt_number(L, 1, fn, "progress", o.progress);
  o.offset = ch_lua_opt_number(L, 1, fn, "offset", o.offset);
  o.heading_offset = ch_lua_opt_number(L, 1, fn, "heading_offset", o.heading_offset);
  o.race_type = ch_lua_opt_string(L, 1, fn, "race_type", o.race_type);
  o.seed = (uint64_t)ch_lua_opt_integer(L, 1, fn, "seed", (lua_Integer)o.seed);
  o.reversed = ch_lua_opt_bool(L, 1, fn, "reversed", o.reversed);
  o.scale = (int)ch_lua_opt_integer(L, 1, fn, "scale", o.scale);
  o.env_plugin = ch_lua_opt_string(L, 1, fn, "plugin", o.env_plugin);
  const char *out = ch_lua_opt_string(L, 1, fn, "out", "frame.png");
  char *extra = NULL;
  if (lua_getfield(L, 1, "env") != LUA_TNIL) {
    if (!lua_istable(L, -1)) return luaL_error(L, "%s: option 'env' must be a table", fn);
    ch_error jerr = {0, ""};
    cJSON *j = ch_lua_to_json(L, -1, "env", &jerr);
    if (!j) return ch_lua_fail(L, fn, &jerr);
    extra = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    /* as a Lua string, so that an error below cannot leak it */
    lua_pushstring(L, extra ? extra : "{}");
    cJSON_free(extra);
    o.env_extra = lua_tostring(L, -1);
  }
  ch_error err = {0, ""};
  if (ch_render_png(&o, out, &err) != CH_OK) return ch_lua_fail(L, fn, &err);
  lua_pushstring(L, out);
  return 1;
}

void ch_lua_open_render(lua_State *L) {
  lua_pushcfunction(L, ch__render);
  lua_setfield(L, -2, "render");
}
