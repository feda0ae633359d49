/* config.c -- reads a Lua training script into a ch_train_config, with precise errors. */
#include "config.h"

#include "sandbox.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void ch_config_defaults(ch_train_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->model, sizeof c->model, "model");
  snprintf(c->track, sizeof c->track, "bayside");
  c->num_hidden = 2;
  c->hidden[0] = c->hidden[1] = 64;
  snprintf(c->activation, sizeof c->activation, "tanh");
  c->hp = (ch_hyperparameters){64, 10, 0.0003, 0.01, 0.999, CH_LOSS_HUBER, 20};
  c->stop = (ch_stop_conditions){3600, 0, 0, 0, 0};
  c->workers = 2;
  c->cars_per_worker = 8;
  c->segment_steps = 128;
  c->max_steps = 1500;
  c->start_advance = 0.05;
  c->seed = 1;
  snprintf(c->env_plugin, sizeof c->env_plugin, "sim2d");
  snprintf(c->network_plugin, sizeof c->network_plugin, "mlp");
  snprintf(c->buffer_plugin, sizeof c->buffer_plugin, "memory");
  snprintf(c->storage_plugin, sizeof c->storage_plugin, "local");
}

/* Reading a Lua table with errors of the form "script: prefix.key: problem". */
typedef struct ch__reader {
  lua_State *L;
  const char *script;
  ch_error *err;
} ch__reader;

static int ch__bad(ch__reader *r, const char *prefix, const char *key, const char *problem) {
  return ch_error_set(r->err, CH_EINVAL, "%s: %s%s%s: %s", r->script, prefix, prefix[0] ? "." : "",
                      key, problem);
}

/* Every key of the table at idx must be a string among allowed. */
static int ch__check_keys(ch__reader *r, int idx, const char *prefix, const char *const *allowed) {
  lua_pushnil(r->L);
  while (lua_next(r->L, idx) != 0) {
    lua_pop(r->L, 1);
    if (lua_type(r->L, -1) != LUA_TSTRING) {
      lua_pop(r->L, 1);
      return ch_error_set(r->err, CH_EINVAL, "%s: %s: keys must be names", r->script,
                          prefix[0] ? prefix : "the returned table");
    }
    const char *k = lua_tostring(r->L, -1);
    const char *const *a = allowed;
    while (*a && strcmp(*a, k) != 0) a++;
    if (!*a) {
      int rc = ch__bad(r, prefix, k, "unknown key");
      lua_pop(r->L, 1);
      return rc;
    }
  }
  return CH_OK;
}

/* Push t[key] of the table at idx; returns its Lua type (LUA_TNIL when absent). */
static int ch__field(ch__reader *r, int idx, const char *key) {
  return lua_getfield(r->L, idx, key);
}

static int ch__number(ch__reader *r, int idx, const char *prefix, const char *key, double *out) {
  int t = ch__field(r, idx, key);
  int rc = CH_OK;
  if (t == LUA_TNUMBER) {
    *out = lua_tonumber(r->L, -1);
    if (!isfinite(*out)) rc = ch__bad(r, prefix, key, "must be a finite number");
  } else if (t != LUA_TNIL) {
    rc = ch__bad(r, prefix, key, "must be a number");
  }
  lua_pop(r->L, 1);
  return rc;
}

static int ch__integer(ch__reader *r, int idx, const char *prefix, const char *key, int64_t *out) {
  int t = ch__field(r, idx, key);
  int rc = CH_OK;
  if (t == LUA_TNUMBER && lua_isinteger(r->L, -1)) {
    *out = (int64_t)lua_tointeger(r->L, -1);
  } else if (t == LUA_TNUMBER && floor(lua_tonumber(r->L, -1)) == lua_tonumber(r->L, -1) &&
             fabs(lua_tonumber(r->L, -1)) < 9e15) {
    *out = (int64_t)lua_tonumber(r->L, -1);
  } else if (t != LUA_TNIL) {
    rc = ch__bad(r, prefix, key, "must be an integer");
  }
  lua_pop(r->L, 1);
  return rc;
}

static int ch__int(ch__reader *r, int idx, const char *prefix, const char *key, int *out) {
  int64_t v = *out;
  int rc = ch__integer(r, idx, prefix, key, &v);
  if (rc == CH_OK && (v < -2147483647 || v > 2147483647))
    return ch__bad(r, prefix, key, "out of range");
  *out = (int)v;
  return rc;
}

static int ch__string(ch__reader *r, int idx, const char *prefix, const char *key, char *out,
                      size_t n) {
  int t = ch__field(r, idx, key);
  int rc = CH_OK;
  if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(r->L, -1, &len);
    if (len >= n || strlen(s) != len)
      rc = ch__bad(r, prefix, key, "string too long or has NUL");
    else
      memcpy(out, s, len + 1);
  } else if (t != LUA_TNIL) {
    rc = ch__bad(r, prefix, key, "must be a string");
  }
  lua_pop(r->L, 1);
  return rc;
}

/* Push the sub-table t[key] (or nothing when absent: returns 0). */
static int ch__table(ch__reader *r, int idx, const char *prefix, const char *key, int *pushed) {
  int t = ch__field(r, idx, key);
  *pushed = 0;
  if (t == LUA_TNIL) {
    lua_pop(r->L, 1);
    return CH_OK;
  }
  if (t != LUA_TTABLE) {
    lua_pop(r->L, 1);
    return ch__bad(r, prefix, key, "must be a table");
  }
  *pushed = 1;
  return CH_OK;
}

static int ch__read_actions(ch__reader *r, int idx, ch_train_config *c) {
  int n = (int)luaL_len(r->L, idx);
  if (n < 1 || n > CH_MAX_ACTIONS)
    return ch__bad(r, "", "action_space", "needs 1 to 64 actions {steering_angle=, speed=}");
  static const char *const keys[] = {"steering_angle", "speed", "index", NULL};
  for (int i = 0; i < n; i++) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "action_space[%d]", i + 1);
    if (lua_rawgeti(r->L, idx, i + 1) != LUA_TTABLE) {
      lua_pop(r->L, 1);
      return ch_error_set(r->err, CH_EINVAL, "%s: %s: must be a table {steering_angle=, speed=}",
                          r->script, prefix);
    }
    int t = lua_gettop(r->L);
    double steer = NAN, speed = NAN;
    int rc = ch__check_keys(r, t, prefix, keys);
    if (rc == CH_OK) rc = ch__number(r, t, prefix, "steering_angle", &steer);
    if (rc == CH_OK) rc = ch__number(r, t, prefix, "speed", &speed);
    lua_pop(r->L, 1);
    if (rc != CH_OK) return rc;
    if (isnan(steer) || isnan(speed))
      return ch_error_set(r->err, CH_EINVAL, "%s: %s: needs both steering_angle and speed",
                          r->script, prefix);
    c->actions[i] = (ch_action){steer, speed};
  }
  c->num_actions = n;
  return CH_OK;
}

static int ch__read_network(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"hidden", "activation", "plugin", NULL};
  int rc = ch__check_keys(r, idx, "network", keys), pushed = 0;
  if (rc == CH_OK)
    rc = ch__string(r, idx, "network", "activation", c->activation, sizeof c->activation);
  if (rc == CH_OK)
    rc = ch__string(r, idx, "network", "plugin", c->network_plugin, sizeof c->network_plugin);
  if (rc == CH_OK) rc = ch__table(r, idx, "network", "hidden", &pushed);
  if (rc != CH_OK || !pushed) return rc;
  int n = (int)luaL_len(r->L, -1);
  if (n > CH_MAX_HIDDEN) rc = ch__bad(r, "network", "hidden", "at most 8 layers");
  for (int i = 0; rc == CH_OK && i < n; i++) {
    lua_rawgeti(r->L, -1, i + 1);
    if (!lua_isinteger(r->L, -1))
      rc = ch__bad(r, "network", "hidden", "must list integers");
    else
      c->hidden[i] = (int)lua_tointeger(r->L, -1);
    lua_pop(r->L, 1);
  }
  c->num_hidden = n;
  lua_pop(r->L, 1);
  return rc;
}

static int ch__read_hp(ch__reader *r, int idx, ch_hyperparameters *hp) {
  static const char *const keys[] = {"batch_size",
                                     "num_epochs",
                                     "lr",
                                     "beta_entropy",
                                     "discount_factor",
                                     "loss_type",
                                     "num_episodes_between_training",
                                     NULL};
  const char *p = "hyperparameters";
  char loss[32] = "";
  int rc = ch__check_keys(r, idx, p, keys);
  if (rc == CH_OK) rc = ch__int(r, idx, p, "batch_size", &hp->batch_size);
  if (rc == CH_OK) rc = ch__int(r, idx, p, "num_epochs", &hp->num_epochs);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "lr", &hp->lr);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "beta_entropy", &hp->beta_entropy);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "discount_factor", &hp->discount_factor);
  if (rc == CH_OK)
    rc = ch__int(r, idx, p, "num_episodes_between_training", &hp->num_episodes_between_training);
  if (rc == CH_OK) rc = ch__string(r, idx, p, "loss_type", loss, sizeof loss);
  if (rc != CH_OK || !loss[0]) return rc;
  if (strcmp(loss, "huber") == 0)
    hp->loss_type = CH_LOSS_HUBER;
  else if (strcmp(loss, "mean squared error") == 0 || strcmp(loss, "mse") == 0)
    hp->loss_type = CH_LOSS_MSE;
  else
    return ch__bad(r, p, "loss_type", "must be \"huber\" or \"mean squared error\"");
  return CH_OK;
}

static int ch__read_stop(ch__reader *r, int idx, ch_stop_conditions *s) {
  static const char *const keys[] = {"max_seconds",  "max_episodes", "max_iterations",
                                     "avg_progress", "eval_laps",    NULL};
  int rc = ch__check_keys(r, idx, "stop", keys);
  if (rc == CH_OK) rc = ch__number(r, idx, "stop", "max_seconds", &s->max_seconds);
  if (rc == CH_OK) rc = ch__integer(r, idx, "stop", "max_episodes", &s->max_episodes);
  if (rc == CH_OK) rc = ch__integer(r, idx, "stop", "max_iterations", &s->max_iterations);
  if (rc == CH_OK) rc = ch__number(r, idx, "stop", "avg_progress", &s->avg_progress);
  if (rc == CH_OK) rc = ch__int(r, idx, "stop", "eval_laps", &s->eval_laps);
  return rc;
}

static int ch__read_plugins(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"env", "network", "buffer", "storage", NULL};
  int rc = ch__check_keys(r, idx, "plugins", keys);
  if (rc == CH_OK) rc = ch__string(r, idx, "plugins", "env", c->env_plugin, sizeof c->env_plugin);
  if (rc == CH_OK)
    rc = ch__string(r, idx, "plugins", "network", c->network_plugin, sizeof c->network_plugin);
  if (rc == CH_OK)
    rc = ch__string(r, idx, "plugins", "buffer", c->buffer_plugin, sizeof c->buffer_plugin);
  if (rc == CH_OK)
    rc = ch__string(r, idx, "plugins", "storage", c->storage_plugin, sizeof c->storage_plugin);
  return rc;
}

/* A sub-table reader: pushes t[key], runs fn on it, pops. */
typedef int (*ch__sub_fn)(ch__reader *, int, void *);

static int ch__sub(ch__reader *r, int idx, const char *key, ch__sub_fn fn, void *arg) {
  int pushed = 0, rc = ch__table(r, idx, "", key, &pushed);
  if (rc != CH_OK || !pushed) return rc;
  rc = fn(r, lua_gettop(r->L), arg);
  lua_pop(r->L, 1);
  return rc;
}

static int ch__sub_actions(ch__reader *r, int i, void *c) {
  return ch__read_actions(r, i, c);
}
static int ch__sub_network(ch__reader *r, int i, void *c) {
  return ch__read_network(r, i, c);
}
static int ch__sub_hp(ch__reader *r, int i, void *c) {
  return ch__read_hp(r, i, &((ch_train_config *)c)->hp);
}
static int ch__sub_stop(ch__reader *r, int i, void *c) {
  return ch__read_stop(r, i, &((ch_train_config *)c)->stop);
}
static int ch__sub_plugins(ch__reader *r, int i, void *c) {
  return ch__read_plugins(r, i, c);
}

static int ch__read_top(ch__reader *r, int idx, ch_train_config *c, char *reward, size_t rn) {
  static const char *const keys[] = {
      "model",           "track",         "reward",  "action_space",    "network",
      "hyperparameters", "stop",          "workers", "cars_per_worker", "segment_steps",
      "max_steps",       "start_advance", "seed",    "plugins",         NULL};
  int64_t seed = (int64_t)c->seed;
  int rc = ch__check_keys(r, idx, "", keys);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "model", c->model, sizeof c->model);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "track", c->track, sizeof c->track);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "reward", reward, rn);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "workers", &c->workers);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "cars_per_worker", &c->cars_per_worker);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "segment_steps", &c->segment_steps);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "max_steps", &c->max_steps);
  if (rc == CH_OK) rc = ch__number(r, idx, "", "start_advance", &c->start_advance);
  if (rc == CH_OK) rc = ch__integer(r, idx, "", "seed", &seed);
  if (rc == CH_OK) rc = ch__sub(r, idx, "action_space", ch__sub_actions, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "network", ch__sub_network, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "hyperparameters", ch__sub_hp, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "stop", ch__sub_stop, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "plugins", ch__sub_plugins, c);
  c->seed = (uint64_t)seed;
  return rc;
}

/* Helpers every training script may call. */
static const char ch__prelude[] =
    "function action_grid(steering, speeds)\n"
    "  local t = {}\n"
    "  for _, v in ipairs(speeds) do for _, s in ipairs(steering) do\n"
    "    t[#t + 1] = {steering_angle = s, speed = v}\n"
    "  end end\n"
    "  return t\n"
    "end\n";

static int ch__run_script(ch_sandbox *sb, const char *script, ch_error *err) {
  if (luaL_loadbufferx(sb->L, ch__prelude, sizeof ch__prelude - 1, "=prelude", "t") != LUA_OK)
    return ch_error_set(err, CH_ESCRIPT, "internal prelude failed to load");
  int rc = ch_sandbox_call(sb, 0, 0, err);
  if (rc == CH_OK) rc = ch_sandbox_dofile(sb, script, 1, err);
  if (rc == CH_OK && !lua_istable(sb->L, -1)) {
    lua_pop(sb->L, 1);
    rc = ch_error_set(err, CH_EINVAL, "%s: the script must return a table of settings", script);
  }
  return rc;
}

int ch_config_load(const char *script, ch_train_config *c, ch_error *err) {
  ch_config_defaults(c);
  snprintf(c->script, sizeof c->script, "%s", script);
  ch_sandbox sb;
  int rc = ch_sandbox_open(&sb, 0, 0, err);
  if (rc != CH_OK) return rc;
  char reward[CH_PATH_MAX] = "";
  rc = ch__run_script(&sb, script, err);
  if (rc == CH_OK) {
    ch__reader r = {sb.L, script, err};
    rc = ch__read_top(&r, lua_gettop(sb.L), c, reward, sizeof reward);
  }
  ch_sandbox_close(&sb);
  if (rc == CH_OK && !reward[0])
    rc = ch_error_set(err, CH_EINVAL, "%s: reward: missing (the reward script to use)", script);
  if (rc == CH_OK && c->num_actions == 0)
    rc = ch_error_set(err, CH_EINVAL, "%s: action_space: missing", script);
  char dir[CH_PATH_MAX];
  ch_dirname(script, dir, sizeof dir);
  ch_error e;
  if (rc == CH_OK && ch_file_resolve(reward, dir, c->reward, sizeof c->reward, &e) != CH_OK)
    rc = ch_error_set(err, CH_ENOTFOUND, "%s: reward: %s", script, e.message);
  if (rc == CH_OK && ch_resolve_track(c->track, c->track_path, sizeof c->track_path, &e) != CH_OK)
    rc = ch_error_set(err, CH_ENOTFOUND, "%s: track: %s", script, e.message);
  return rc == CH_OK ? ch_config_validate(c, err) : rc;
}

static int ch__valid_model_name(const char *s) {
  if (!*s || strlen(s) > 100) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '-' || *s == '_' || *s == '.'))
      return 0;
  return 1;
}

#define CH__RANGE(cond, key, what)                                                                 \
  if (!(cond)) return ch_error_set(err, CH_EINVAL, "%s: %s: %s", c->script, key, what)

static int ch__validate_actions(const ch_train_config *c, ch_error *err) {
  for (int i = 0; i < c->num_actions; i++) {
    const ch_action *a = &c->actions[i];
    char key[64];
    snprintf(key, sizeof key, "action_space[%d]", i + 1);
    CH__RANGE(a->steering_angle >= -30 && a->steering_angle <= 30, key,
              "steering_angle must be within [-30, 30] degrees");
    CH__RANGE(a->speed >= 0.1 && a->speed <= 4.0, key, "speed must be within [0.1, 4] m/s");
    for (int j = 0; j < i; j++)
      CH__RANGE(c->actions[j].steering_angle != a->steering_angle ||
                    c->actions[j].speed != a->speed,
                key, "duplicates an earlier action");
  }
  return CH_OK;
}

int ch_config_validate(const ch_train_config *c, ch_error *err) {
  CH__RANGE(ch__valid_model_name(c->model), "model", "must be 1-100 of [A-Za-z0-9._-]");
  CH__RANGE(c->num_actions >= 1 && c->num_actions <= CH_MAX_ACTIONS, "action_space",
            "needs 1 to 64 actions");
  int rc = ch__validate_actions(c, err);
  if (rc != CH_OK) return rc;
  for (int i = 0; i < c->num_hidden; i++)
    CH__RANGE(c->hidden[i] >= 1 && c->hidden[i] <= 4096, "network.hidden", "sizes 1..4096");
  CH__RANGE(strcmp(c->activation, "tanh") == 0 || strcmp(c->activation, "relu") == 0,
            "network.activation", "must be \"tanh\" or \"relu\"");
  const ch_hyperparameters *hp = &c->hp;
  CH__RANGE(hp->batch_size >= 1 && hp->batch_size <= 65536, "hyperparameters.batch_size",
            "1..65536");
  CH__RANGE(hp->num_epochs >= 1 && hp->num_epochs <= 100, "hyperparameters.num_epochs", "1..100");
  CH__RANGE(hp->lr > 0 && hp->lr <= 1, "hyperparameters.lr", "must be in (0, 1]");
  CH__RANGE(hp->beta_entropy >= 0 && hp->beta_entropy <= 1, "hyperparameters.beta_entropy",
            "must be in [0, 1]");
  CH__RANGE(hp->discount_factor > 0 && hp->discount_factor <= 1, "hyperparameters.discount_factor",
            "must be in (0, 1]");
  CH__RANGE(hp->num_episodes_between_training >= 1 && hp->num_episodes_between_training <= 100000,
            "hyperparameters.num_episodes_between_training", "1..100000");
  CH__RANGE(c->workers >= 1 && c->workers <= 64, "workers", "1..64");
  CH__RANGE(c->cars_per_worker >= 1 && c->cars_per_worker <= 1024, "cars_per_worker", "1..1024");
  CH__RANGE(c->segment_steps >= 1 && c->segment_steps <= 100000, "segment_steps", "1..100000");
  CH__RANGE(c->max_steps >= 1 && c->max_steps <= 1000000, "max_steps", "1..1000000");
  CH__RANGE(c->start_advance >= 0 && c->start_advance < 1, "start_advance", "must be in [0, 1)");
  CH__RANGE(c->stop.max_seconds >= 0 && c->stop.max_episodes >= 0 && c->stop.max_iterations >= 0,
            "stop", "limits must be >= 0");
  CH__RANGE(c->stop.avg_progress >= 0 && c->stop.avg_progress <= 100, "stop.avg_progress",
            "must be in [0, 100]");
  CH__RANGE(c->stop.eval_laps >= 0 && c->stop.eval_laps <= 3, "stop.eval_laps", "0..3");
  CH__RANGE(c->stop.max_seconds > 0 || c->stop.max_episodes > 0 || c->stop.max_iterations > 0 ||
                c->stop.avg_progress > 0 || c->stop.eval_laps > 0,
            "stop", "needs at least one stop condition");
  return CH_OK;
}

cJSON *ch_config_actions_json(const ch_train_config *c) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < c->num_actions; i++) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "steering_angle", c->actions[i].steering_angle);
    cJSON_AddNumberToObject(a, "speed", c->actions[i].speed);
    cJSON_AddNumberToObject(a, "index", i);
    cJSON_AddItemToArray(arr, a);
  }
  return arr;
}

int ch_config_actions_from_json(const cJSON *arr, ch_action *out, int *count, ch_error *err) {
  int n = cJSON_GetArraySize(arr);
  if (!cJSON_IsArray(arr) || n < 1 || n > CH_MAX_ACTIONS)
    return ch_error_set(err, CH_ECORRUPT, "action_space: expected an array of 1..64 actions");
  for (int i = 0; i < n; i++) {
    const cJSON *a = cJSON_GetArrayItem(arr, i);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(a, "steering_angle");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "speed");
    if (!cJSON_IsNumber(s) || !cJSON_IsNumber(v))
      return ch_error_set(err, CH_ECORRUPT, "action_space[%d]: needs steering_angle and speed", i);
    out[i] = (ch_action){s->valuedouble, v->valuedouble};
  }
  *count = n;
  return CH_OK;
}

cJSON *ch_config_hyperparameters_json(const ch_train_config *c) {
  const ch_hyperparameters *hp = &c->hp;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "batch_size", hp->batch_size);
  cJSON_AddNumberToObject(o, "beta_entropy", hp->beta_entropy);
  cJSON_AddNumberToObject(o, "discount_factor", hp->discount_factor);
  cJSON_AddStringToObject(o, "loss_type",
                          hp->loss_type == CH_LOSS_MSE ? "mean squared error" : "huber");
  cJSON_AddNumberToObject(o, "lr", hp->lr);
  cJSON_AddNumberToObject(o, "num_episodes_between_training", hp->num_episodes_between_training);
  cJSON_AddNumberToObject(o, "num_epochs", hp->num_epochs);
  return o;
}

cJSON *ch_config_network_json(const ch_train_config *c, uint32_t input_size) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "input_size", input_size);
  cJSON_AddNumberToObject(o, "num_actions", c->num_actions);
  cJSON *h = cJSON_AddArrayToObject(o, "hidden");
  for (int i = 0; i < c->num_hidden; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(c->hidden[i]));
  cJSON_AddStringToObject(o, "activation", c->activation);
  cJSON_AddNumberToObject(o, "seed", (double)(c->seed & 0xffffffffu));
  return o;
}

cJSON *ch_config_json(const ch_train_config *c) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "script", c->script);
  cJSON_AddStringToObject(o, "model", c->model);
  cJSON_AddStringToObject(o, "track", c->track);
  cJSON_AddStringToObject(o, "reward", c->reward);
  cJSON_AddItemToObject(o, "action_space", ch_config_actions_json(c));
  cJSON *net = cJSON_AddObjectToObject(o, "network");
  cJSON *h = cJSON_AddArrayToObject(net, "hidden");
  for (int i = 0; i < c->num_hidden; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(c->hidden[i]));
  cJSON_AddStringToObject(net, "activation", c->activation);
  cJSON_AddItemToObject(o, "hyperparameters", ch_config_hyperparameters_json(c));
  cJSON *s = cJSON_AddObjectToObject(o, "stop");
  cJSON_AddNumberToObject(s, "max_seconds", c->stop.max_seconds);
  cJSON_AddNumberToObject(s, "max_episodes", (double)c->stop.max_episodes);
  cJSON_AddNumberToObject(s, "max_iterations", (double)c->stop.max_iterations);
  cJSON_AddNumberToObject(s, "avg_progress", c->stop.avg_progress);
  cJSON_AddNumberToObject(s, "eval_laps", c->stop.eval_laps);
  cJSON_AddNumberToObject(o, "workers", c->workers);
  cJSON_AddNumberToObject(o, "cars_per_worker", c->cars_per_worker);
  cJSON_AddNumberToObject(o, "segment_steps", c->segment_steps);
  cJSON_AddNumberToObject(o, "max_steps", c->max_steps);
  cJSON_AddNumberToObject(o, "start_advance", c->start_advance);
  cJSON_AddNumberToObject(o, "seed", (double)c->seed);
  cJSON *p = cJSON_AddObjectToObject(o, "plugins");
  cJSON_AddStringToObject(p, "env", c->env_plugin);
  cJSON_AddStringToObject(p, "network", c->network_plugin);
  cJSON_AddStringToObject(p, "buffer", c->buffer_plugin);
  cJSON_AddStringToObject(p, "storage", c->storage_plugin);
  return o;
}
