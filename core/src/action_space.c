/* action_space.c -- discrete and continuous action spaces: checks, scaling, JSON and Lua forms. */
#include "action_space.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *ch_action_space_type_name(int type) {
  return type == CH_ACTION_SPACE_CONTINUOUS ? "continuous" : "discrete";
}

int ch_action_space_type_from_name(const char *name) {
  if (strcmp(name, "discrete") == 0) return CH_ACTION_SPACE_DISCRETE;
  if (strcmp(name, "continuous") == 0) return CH_ACTION_SPACE_CONTINUOUS;
  return -1;
}

static int ch__steering_ok(double v) {
  return v >= -CH_STEERING_MAX && v <= CH_STEERING_MAX;
}

static int ch__speed_ok(double v) {
  return v >= CH_SPEED_MIN && v <= CH_SPEED_MAX;
}

/* Entries are named from base: 1 for Lua lists, 0 for JSON (DeepRacer's "index"). */
static int ch__check_discrete(const ch_action *a, int n, const char *where, int base,
                              ch_error *err) {
  if (n < 1 || n > CH_MAX_ACTIONS)
    return ch_error_set(err, CH_EINVAL, "%s: needs 1 to %d actions, has %d", where, CH_MAX_ACTIONS,
                        n);
  for (int i = 0; i < n; i++) {
    if (!ch__steering_ok(a[i].steering_angle))
      return ch_error_set(err, CH_EINVAL,
                          "%s[%d]: steering_angle %g must be within [-30, 30] degrees", where,
                          i + base, a[i].steering_angle);
    if (!ch__speed_ok(a[i].speed))
      return ch_error_set(err, CH_EINVAL, "%s[%d]: speed %g must be within [0.1, 4] m/s", where,
                          i + base, a[i].speed);
    for (int j = 0; j < i; j++)
      if (a[j].steering_angle == a[i].steering_angle && a[j].speed == a[i].speed)
        return ch_error_set(err, CH_EINVAL,
                            "%s[%d]: duplicates entry [%d] {steering_angle = %g, speed = %g}",
                            where, i + base, j + base, a[i].steering_angle, a[i].speed);
  }
  return CH_OK;
}

int ch_action_space_check_discrete(const ch_action *a, int n, const char *where, ch_error *err) {
  return ch__check_discrete(a, n, where, 1, err);
}

static int ch__check_range(const ch_action_range *r, const char *where, const char *key,
                           int (*ok)(double), const char *limits, ch_error *err) {
  if (!isfinite(r->low) || !isfinite(r->high) || !ok(r->low) || !ok(r->high))
    return ch_error_set(err, CH_EINVAL, "%s.%s: {low = %g, high = %g} must lie within %s", where,
                        key, r->low, r->high, limits);
  if (!(r->low < r->high))
    return ch_error_set(err, CH_EINVAL, "%s.%s: low %g must be less than high %g", where, key,
                        r->low, r->high);
  return CH_OK;
}

int ch_action_space_check_ranges(const ch_action_ranges *r, const char *where, ch_error *err) {
  int rc = ch__check_range(&r->steering_angle, where, "steering_angle", ch__steering_ok,
                           "[-30, 30] degrees", err);
  if (rc == CH_OK)
    rc = ch__check_range(&r->speed, where, "speed", ch__speed_ok, "[0.1, 4] m/s", err);
  return rc;
}

static double ch__scale(const ch_action_range *r, double u) {
  if (!(u >= -1.0)) u = -1.0; /* NaN too: a broken policy output drives gently, not wildly */
  if (u > 1.0) u = 1.0;
  return r->low + (u + 1.0) * 0.5 * (r->high - r->low);
}

ch_action ch_action_space_scale(const ch_action_ranges *r, double u_steer, double u_speed) {
  return (ch_action){ch__scale(&r->steering_angle, u_steer), ch__scale(&r->speed, u_speed)};
}

void ch_action_space_scale_batch(const ch_action_ranges *r, const float *u, uint32_t n,
                                 float *steer, float *speed) {
  for (uint32_t i = 0; i < n; i++) {
    steer[i] = (float)ch__scale(&r->steering_angle, u[2 * i]);
    speed[i] = (float)ch__scale(&r->speed, u[2 * i + 1]);
  }
}

void ch_action_space_unscale(const ch_action_ranges *r, ch_action a, double *u_steer,
                             double *u_speed) {
  const ch_action_range *s = &r->steering_angle, *v = &r->speed;
  *u_steer = 2.0 * (a.steering_angle - s->low) / (s->high - s->low) - 1.0;
  *u_speed = 2.0 * (a.speed - v->low) / (v->high - v->low) - 1.0;
}

/* ---- JSON ------------------------------------------------------------------------------- */

cJSON *ch_action_space_discrete_json(const ch_action *a, int n) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "steering_angle", a[i].steering_angle);
    cJSON_AddNumberToObject(o, "speed", a[i].speed);
    cJSON_AddNumberToObject(o, "index", i);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static cJSON *ch__range_json(const ch_action_range *r) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "high", r->high);
  cJSON_AddNumberToObject(o, "low", r->low);
  return o;
}

cJSON *ch_action_space_ranges_json(const ch_action_ranges *r) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "steering_angle", ch__range_json(&r->steering_angle));
  cJSON_AddItemToObject(o, "speed", ch__range_json(&r->speed));
  return o;
}

/* Every member of obj must be one of keys (NULL-ended). */
static int ch__json_keys(const cJSON *obj, const char *where, const char *const *keys,
                         ch_error *err) {
  for (const cJSON *m = obj->child; m; m = m->next) {
    const char *const *k = keys;
    while (*k && strcmp(*k, m->string) != 0) k++;
    if (!*k) return ch_error_set(err, CH_EINVAL, "%s.%s: unknown key", where, m->string);
  }
  return CH_OK;
}

static int ch__json_action(const cJSON *o, const char *where, int i, ch_action *out,
                           ch_error *err) {
  static const char *const keys[] = {"steering_angle", "speed", "index", NULL};
  char at[600];
  snprintf(at, sizeof at, "%s[%d]", where, i);
  if (!cJSON_IsObject(o))
    return ch_error_set(err, CH_EINVAL, "%s: must be an object {steering_angle, speed, index}", at);
  int rc = ch__json_keys(o, at, keys, err);
  if (rc != CH_OK) return rc;
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "steering_angle");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "speed");
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "index");
  if (!cJSON_IsNumber(s) || !cJSON_IsNumber(v))
    return ch_error_set(err, CH_EINVAL, "%s: needs numbers steering_angle and speed", at);
  if (x && (!cJSON_IsNumber(x) || x->valuedouble != i))
    return ch_error_set(err, CH_EINVAL, "%s: index must be %d (its position)", at, i);
  *out = (ch_action){s->valuedouble, v->valuedouble};
  return CH_OK;
}

int ch_action_space_discrete_from_json(const cJSON *arr, const char *where, ch_action *out, int *n,
                                       ch_error *err) {
  int count = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
  if (count < 1 || count > CH_MAX_ACTIONS)
    return ch_error_set(err, CH_EINVAL, "%s: expected an array of 1 to %d actions", where,
                        CH_MAX_ACTIONS);
  int i = 0, rc = CH_OK;
  for (const cJSON *o = arr->child; o && rc == CH_OK; o = o->next, i++)
    rc = ch__json_action(o, where, i, &out[i], err);
  if (rc != CH_OK) return rc;
  rc = ch__check_discrete(out, count, where, 0, err);
  if (rc == CH_OK) *n = count;
  return rc;
}

static int ch__json_range(const cJSON *obj, const char *where, const char *key,
                          ch_action_range *out, ch_error *err) {
  static const char *const keys[] = {"low", "high", NULL};
  char at[600];
  snprintf(at, sizeof at, "%s.%s", where, key);
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsObject(r))
    return ch_error_set(err, CH_EINVAL, "%s: expected an object {\"low\": .., \"high\": ..}", at);
  int rc = ch__json_keys(r, at, keys, err);
  if (rc != CH_OK) return rc;
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(r, "low");
  const cJSON *hi = cJSON_GetObjectItemCaseSensitive(r, "high");
  if (!cJSON_IsNumber(lo) || !cJSON_IsNumber(hi))
    return ch_error_set(err, CH_EINVAL, "%s: needs numbers low and high", at);
  *out = (ch_action_range){lo->valuedouble, hi->valuedouble};
  return CH_OK;
}

int ch_action_space_ranges_from_json(const cJSON *obj, const char *where, ch_action_ranges *out,
                                     ch_error *err) {
  static const char *const keys[] = {"steering_angle", "speed", NULL};
  if (!cJSON_IsObject(obj))
    return ch_error_set(err, CH_EINVAL, "%s: expected an object {steering_angle, speed}", where);
  ch_action_ranges r;
  int rc = ch__json_keys(obj, where, keys, err);
  if (rc == CH_OK) rc = ch__json_range(obj, where, "steering_angle", &r.steering_angle, err);
  if (rc == CH_OK) rc = ch__json_range(obj, where, "speed", &r.speed, err);
  if (rc == CH_OK) rc = ch_action_space_check_ranges(&r, where, err);
  if (rc == CH_OK) *out = r;
  return rc;
}

/* ---- Lua -------------------------------------------------------------------------------- */

/* A number field of the table on top of the stack; NaN when absent, CH_EINVAL when not a
** number. */
static int ch__lua_number(lua_State *L, const char *key, const char *at, double *out,
                          ch_error *err) {
  int t = lua_getfield(L, -1, key);
  *out = NAN;
  int rc = CH_OK;
  if (t == LUA_TNUMBER)
    *out = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    rc = ch_error_set(err, CH_EINVAL, "%s.%s: must be a number, not a %s", at, key,
                      lua_typename(L, t));
  lua_pop(L, 1);
  return rc;
}

/* Every key of the table on top of the stack must be a string among keys. */
static int ch__lua_keys(lua_State *L, const char *at, const char *const *keys, ch_error *err) {
  int rc = CH_OK;
  lua_pushnil(L);
  while (rc == CH_OK && lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    const char *const *a = keys;
    while (k && *a && strcmp(*a, k) != 0) a++;
    if (!k)
      rc = ch_error_set(err, CH_EINVAL, "%s: unexpected %s key", at, luaL_typename(L, -1));
    else if (!*a)
      rc = ch_error_set(err, CH_EINVAL, "%s.%s: unknown key", at, k);
    if (rc != CH_OK) lua_pop(L, 1);
  }
  return rc;
}

static int ch__lua_action(lua_State *L, const char *where, int i, ch_action *out, ch_error *err) {
  static const char *const keys[] = {"steering_angle", "speed", "index", NULL};
  char at[600];
  snprintf(at, sizeof at, "%s[%d]", where, i);
  if (!lua_istable(L, -1))
    return ch_error_set(err, CH_EINVAL, "%s: must be a table {steering_angle = , speed = }", at);
  double s, v, index;
  int rc = ch__lua_keys(L, at, keys, err);
  if (rc == CH_OK) rc = ch__lua_number(L, "steering_angle", at, &s, err);
  if (rc == CH_OK) rc = ch__lua_number(L, "speed", at, &v, err);
  if (rc == CH_OK) rc = ch__lua_number(L, "index", at, &index, err);
  if (rc != CH_OK) return rc;
  if (isnan(s) || isnan(v))
    return ch_error_set(err, CH_EINVAL, "%s: needs both steering_angle and speed", at);
  if (!isnan(index) && index != i - 1)
    return ch_error_set(err, CH_EINVAL, "%s: index %g must be %d (0-based, as DeepRacer counts)",
                        at, index, i - 1);
  *out = (ch_action){s, v};
  return CH_OK;
}

static int ch__lua_list(lua_State *L, const char *where, ch_action *out, int *n, ch_error *err) {
  lua_Integer len = luaL_len(L, -1);
  if (len < 1 || len > CH_MAX_ACTIONS)
    return ch_error_set(err, CH_EINVAL,
                        "%s: needs 1 to %d actions {steering_angle = , speed = }, has %lld", where,
                        CH_MAX_ACTIONS, (long long)len);
  /* Keys beyond 1..len would be silently ignored: refuse them. */
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
      int rc =
          lua_type(L, -1) == LUA_TSTRING
              ? ch_error_set(err, CH_EINVAL, "%s.%s: unknown key", where, lua_tostring(L, -1))
              : ch_error_set(err, CH_EINVAL, "%s: is a list of actions; it has a stray key", where);
      lua_pop(L, 1);
      return rc;
    }
  }
  for (int i = 1; i <= (int)len; i++) {
    lua_rawgeti(L, -1, i);
    int rc = ch__lua_action(L, where, i, &out[i - 1], err);
    lua_pop(L, 1);
    if (rc != CH_OK) return rc;
  }
  int rc = ch_action_space_check_discrete(out, (int)len, where, err);
  if (rc == CH_OK) *n = (int)len;
  return rc;
}

/* {low, high} or {low = , high = } at key of the table on top of the stack. */
static int ch__lua_range(lua_State *L, const char *where, const char *key, ch_action_range *out,
                         ch_error *err) {
  char at[600];
  snprintf(at, sizeof at, "%s.%s", where, key);
  int t = lua_getfield(L, -1, key), rc = CH_OK;
  double lo = NAN, hi = NAN;
  if (t != LUA_TTABLE) {
    rc = ch_error_set(err, CH_EINVAL, "%s: must be a table {low, high}", at);
  } else if (lua_rawgeti(L, -1, 1) != LUA_TNIL) {
    int numbers = lua_type(L, -1) == LUA_TNUMBER;
    lo = lua_tonumber(L, -1);
    numbers &= lua_rawgeti(L, -2, 2) == LUA_TNUMBER;
    hi = lua_tonumber(L, -1);
    if (!numbers || lua_rawlen(L, -3) != 2)
      rc = ch_error_set(err, CH_EINVAL, "%s: must be {low, high}, two numbers", at);
    lua_pop(L, 2);
  } else {
    static const char *const keys[] = {"low", "high", NULL};
    lua_pop(L, 1);
    rc = ch__lua_keys(L, at, keys, err);
    if (rc == CH_OK) rc = ch__lua_number(L, "low", at, &lo, err);
    if (rc == CH_OK) rc = ch__lua_number(L, "high", at, &hi, err);
    if (rc == CH_OK && (isnan(lo) || isnan(hi)))
      rc = ch_error_set(err, CH_EINVAL, "%s: needs both low and high", at);
  }
  lua_pop(L, 1);
  if (rc == CH_OK) *out = (ch_action_range){lo, hi};
  return rc;
}

int ch_action_space_from_lua(lua_State *L, int idx, const char *where, int *type, ch_action *out,
                             int *n, ch_action_ranges *ranges, ch_error *err) {
  if (!lua_istable(L, idx))
    return ch_error_set(err, CH_EINVAL,
                        "%s: must be a table: a list of {steering_angle = , speed = } or "
                        "{steering_angle = {low, high}, speed = {low, high}}",
                        where);
  lua_pushvalue(L, idx);
  int continuous = lua_getfield(L, -1, "steering_angle") != LUA_TNIL;
  lua_pop(L, 1);
  continuous |= lua_getfield(L, -1, "speed") != LUA_TNIL;
  lua_pop(L, 1);
  int rc;
  if (continuous) {
    static const char *const keys[] = {"steering_angle", "speed", NULL};
    ch_action_ranges r;
    rc = ch__lua_keys(L, where, keys, err);
    if (rc == CH_OK) rc = ch__lua_range(L, where, "steering_angle", &r.steering_angle, err);
    if (rc == CH_OK) rc = ch__lua_range(L, where, "speed", &r.speed, err);
    if (rc == CH_OK) rc = ch_action_space_check_ranges(&r, where, err);
    if (rc == CH_OK) {
      *ranges = r;
      *type = CH_ACTION_SPACE_CONTINUOUS;
    }
  } else {
    rc = ch__lua_list(L, where, out, n, err);
    if (rc == CH_OK) *type = CH_ACTION_SPACE_DISCRETE;
  }
  lua_pop(L, 1);
  return rc;
}

const char ch_action_space_lua_helpers[] =
    "local function check_list(name, t)\n"
    "  if type(t) ~= 'table' or #t == 0 then\n"
    "    error(name .. ': expected a non-empty list of numbers', 3)\n"
    "  end\n"
    "  for i, v in ipairs(t) do\n"
    "    if type(v) ~= 'number' then error(name .. '[' .. i .. ']: not a number', 3) end\n"
    "  end\n"
    "end\n"
    "function action_grid(steering, speeds)\n"
    "  check_list('action_grid: steerings', steering)\n"
    "  check_list('action_grid: speeds', speeds)\n"
    "  local t = {}\n"
    "  for _, v in ipairs(speeds) do for _, s in ipairs(steering) do\n"
    "    t[#t + 1] = {steering_angle = s, speed = v}\n"
    "  end end\n"
    "  return t\n"
    "end\n"
    "function linspace(a, b, n)\n"
    "  if type(a) ~= 'number' or type(b) ~= 'number' or math.type(n) ~= 'integer' or n < 1 then\n"
    "    error('linspace(a, b, n): needs numbers a, b and an integer n >= 1', 2)\n"
    "  end\n"
    "  if n == 1 then return {a} end\n"
    "  local t = {}\n"
    "  for i = 0, n - 1 do t[#t + 1] = a + (b - a) * i / (n - 1) end\n"
    "  return t\n"
    "end\n"
    "local function round2(x) return math.floor(x * 100 + 0.5) / 100 end\n"
    "function console_actions(max_steering, steering_granularity, max_speed, speed_granularity)\n"
    "  if type(max_steering) ~= 'number' or type(max_speed) ~= 'number'\n"
    "     or math.type(steering_granularity) ~= 'integer' or steering_granularity < 1\n"
    "     or math.type(speed_granularity) ~= 'integer' or speed_granularity < 1 then\n"
    "    error('console_actions(max_steering, steering_granularity, max_speed, '\n"
    "          .. 'speed_granularity): needs numbers and integer granularities >= 1', 2)\n"
    "  end\n"
    "  local steer = steering_granularity == 1 and {0}\n"
    "      or linspace(-max_steering, max_steering, steering_granularity)\n"
    "  local t = {}\n"
    "  for _, s in ipairs(steer) do\n"
    "    for k = 1, speed_granularity do\n"
    "      t[#t + 1] = {steering_angle = round2(s) + 0.0,\n"
    "                   speed = round2(max_speed * k / speed_granularity) + 0.0}\n"
    "    end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "function mirror_actions(list)\n"
    "  if type(list) ~= 'table' then error('mirror_actions(list): needs a list of actions', 2) "
    "end\n"
    "  local t, seen = {}, {}\n"
    "  local function key(s, v) return string.format('%.17g/%.17g', s, v) end\n"
    "  for i, a in ipairs(list) do\n"
    "    if type(a) ~= 'table' or type(a.steering_angle) ~= 'number'\n"
    "       or type(a.speed) ~= 'number' then\n"
    "      error('mirror_actions: entry ' .. i .. ' is not {steering_angle = , speed = }', 2)\n"
    "    end\n"
    "    t[#t + 1] = {steering_angle = a.steering_angle, speed = a.speed}\n"
    "    seen[key(a.steering_angle, a.speed)] = true\n"
    "  end\n"
    "  for _, a in ipairs(list) do\n"
    "    local s = a.steering_angle == 0 and 0.0 or -a.steering_angle\n"
    "    if not seen[key(s, a.speed)] then\n"
    "      t[#t + 1] = {steering_angle = s, speed = a.speed}\n"
    "      seen[key(s, a.speed)] = true\n"
    "    end\n"
    "  end\n"
    "  return t\n"
    "end\n";
