/* config.c -- reads a Lua training script into a ch_train_config, with precise errors. */
#include "config.h"

#include "loader.h"
#include "metadata.h"
#include "runtime.h"
#include "sandbox.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ch_config_defaults(ch_train_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->model, sizeof c->model, "model");
  snprintf(c->track, sizeof c->track, "bayside");
  c->num_hidden = 2;
  c->hidden[0] = c->hidden[1] = 64;
  snprintf(c->activation, sizeof c->activation, "tanh");
  c->hp = (ch_hyperparameters){.batch_size = 64,
                               .num_epochs = 10,
                               .lr = 0.0003,
                               .beta_entropy = 0.01,
                               .discount_factor = 0.999,
                               .loss_type = CH_LOSS_HUBER,
                               .num_episodes_between_training = 20,
                               .e_greedy_value = 0.05,
                               .epsilon_steps = 10000,
                               .exploration_type = CH_EXPLORATION_CATEGORICAL,
                               .stack_size = 1,
                               .term_cond_avg_score = 0,
                               .term_cond_max_episodes = 0,
                               .sac_alpha = 0.2};
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
  c->num_tracks = 1;
  snprintf(c->tracks[0], sizeof c->tracks[0], "bayside");
  c->action_space_type = CH_ACTION_SPACE_DISCRETE;
  c->num_sensors = 1;
  snprintf(c->sensors[0], sizeof c->sensors[0], "state");
  c->camera_downscale = 1;
  snprintf(c->architecture, sizeof c->architecture, "shallow");
  snprintf(c->algorithm, sizeof c->algorithm, "clipped_ppo");
  snprintf(c->race_type, sizeof c->race_type, "time_trial");
}

int ch_config_has_sensor(const ch_train_config *c, const char *name) {
  for (int i = 0; i < c->num_sensors; i++)
    if (strcmp(c->sensors[i], name) == 0) return 1;
  return 0;
}

static int ch__has_camera(const ch_train_config *c) {
  return ch_config_has_sensor(c, "camera") || ch_config_has_sensor(c, "stereo");
}

/* ---- reading a Lua table with errors of the form "script: prefix.key: problem" ----------- */

typedef struct ch__reader {
  lua_State *L;
  const char *script;
  ch_error *err;
  char dir[CH_PATH_MAX]; /* the script's directory: relative file names start there */
  int set_plugin;        /* the network plugin was named (script or DeepRacer file) */
  int set_shared;        /* network.shared was given */
  int set_actions;       /* an action space was given */
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

static int ch__bool(ch__reader *r, int idx, const char *prefix, const char *key, int *out) {
  int t = ch__field(r, idx, key);
  int rc = CH_OK;
  if (t == LUA_TBOOLEAN)
    *out = lua_toboolean(r->L, -1);
  else if (t != LUA_TNIL)
    rc = ch__bad(r, prefix, key, "must be true or false");
  lua_pop(r->L, 1);
  return rc;
}

/* The string on top of the stack into out (n bytes). */
static int ch__copy_string(ch__reader *r, const char *prefix, const char *key, char *out,
                           size_t n) {
  size_t len;
  const char *s = lua_tolstring(r->L, -1, &len);
  if (len >= n || strlen(s) != len) return ch__bad(r, prefix, key, "string too long or has NUL");
  memcpy(out, s, len + 1);
  return CH_OK;
}

static int ch__string(ch__reader *r, int idx, const char *prefix, const char *key, char *out,
                      size_t n) {
  int t = ch__field(r, idx, key);
  int rc = CH_OK;
  if (t == LUA_TSTRING)
    rc = ch__copy_string(r, prefix, key, out, n);
  else if (t != LUA_TNIL)
    rc = ch__bad(r, prefix, key, "must be a string");
  lua_pop(r->L, 1);
  return rc;
}

/* Push the sub-table t[key] (or nothing when absent: *pushed = 0). */
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

/* A string or a list of 1..max strings at t[key]: each into out[i] (size n each). */
static int ch__string_list(ch__reader *r, int idx, const char *key, char *out, size_t n, int max,
                           int *count) {
  int t = ch__field(r, idx, key), rc = CH_OK;
  if (t == LUA_TSTRING) {
    rc = ch__copy_string(r, "", key, out, n);
    if (rc == CH_OK) *count = 1;
  } else if (t == LUA_TTABLE) {
    lua_Integer len = (lua_Integer)lua_rawlen(r->L, -1);
    if (len < 1 || len > max) {
      char what[96];
      snprintf(what, sizeof what, "must list 1 to %d names", max);
      rc = ch__bad(r, "", key, what);
    }
    for (int i = 1; rc == CH_OK && i <= len; i++) {
      char at[64];
      snprintf(at, sizeof at, "%s[%d]", key, i);
      if (lua_rawgeti(r->L, -1, i) != LUA_TSTRING)
        rc = ch__bad(r, "", at, "must be a string");
      else
        rc = ch__copy_string(r, "", at, out + (size_t)(i - 1) * n, n);
      lua_pop(r->L, 1);
    }
    if (rc == CH_OK) *count = (int)len;
  } else if (t != LUA_TNIL) {
    rc = ch__bad(r, "", key, "must be a string or a list of strings");
  }
  lua_pop(r->L, 1);
  return rc;
}

/* ---- Lua values passed to the env as JSON (objects, bots, lidar) ------------------------- */

static cJSON *ch__to_json(ch__reader *r, int idx, const char *path, int depth, int *rc);

/* Lua visits a table's names in no fixed order; sorted, the same script gives the same JSON. */
static void ch__sort_members(cJSON *o) {
  cJSON *sorted = NULL;
  while (o->child) {
    cJSON *m = o->child;
    o->child = m->next;
    cJSON **at = &sorted;
    while (*at && strcmp((*at)->string, m->string) < 0) at = &(*at)->next;
    m->next = *at;
    *at = m;
  }
  cJSON *prev = NULL;
  for (cJSON *m = sorted; m; prev = m, m = m->next) m->prev = prev;
  if (sorted) sorted->prev = prev; /* cJSON keeps the last item in the first one's prev */
  o->child = sorted;
}

static cJSON *ch__table_to_json(ch__reader *r, int idx, const char *path, int depth, int *rc) {
  lua_State *L = r->L;
  size_t len = lua_rawlen(L, idx), count = 0;
  int strings = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    count++;
    strings |= lua_type(L, -1) == LUA_TSTRING;
  }
  if ((strings && count != len) || count == 0) {
    cJSON *o = cJSON_CreateObject();
    lua_pushnil(L);
    while (*rc == CH_OK && lua_next(L, idx) != 0) {
      char sub[512];
      if (lua_type(L, -2) != LUA_TSTRING) {
        *rc = ch_error_set(r->err, CH_EINVAL, "%s: %s: mixes list entries and named keys",
                           r->script, path);
        lua_pop(L, 2);
        break;
      }
      snprintf(sub, sizeof sub, "%s.%s", path, lua_tostring(L, -2));
      cJSON *v = ch__to_json(r, lua_gettop(L), sub, depth + 1, rc);
      if (v) cJSON_AddItemToObject(o, lua_tostring(L, -2), v);
      lua_pop(L, 1);
      if (*rc != CH_OK) lua_pop(L, 1);
    }
    ch__sort_members(o);
    return o;
  }
  if (count != len) {
    *rc = ch_error_set(r->err, CH_EINVAL, "%s: %s: a list must have keys 1..n and no holes",
                       r->script, path);
    return NULL;
  }
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 1; *rc == CH_OK && i <= len; i++) {
    char sub[512];
    snprintf(sub, sizeof sub, "%s[%zu]", path, i);
    lua_rawgeti(L, idx, (lua_Integer)i);
    cJSON *v = ch__to_json(r, lua_gettop(L), sub, depth + 1, rc);
    if (v) cJSON_AddItemToArray(a, v);
    lua_pop(L, 1);
  }
  return a;
}

static cJSON *ch__to_json(ch__reader *r, int idx, const char *path, int depth, int *rc) {
  lua_State *L = r->L;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return cJSON_CreateBool(lua_toboolean(L, idx));
  case LUA_TSTRING:
    return cJSON_CreateString(lua_tostring(L, idx));
  case LUA_TNUMBER:
    if (isfinite(lua_tonumber(L, idx))) return cJSON_CreateNumber(lua_tonumber(L, idx));
    *rc = ch_error_set(r->err, CH_EINVAL, "%s: %s: must be a finite number", r->script, path);
    return NULL;
  case LUA_TTABLE:
    if (depth < 8) return ch__table_to_json(r, idx, path, depth, rc);
    *rc = ch_error_set(r->err, CH_EINVAL, "%s: %s: nested too deeply", r->script, path);
    return NULL;
  default:
    *rc = ch_error_set(r->err, CH_EINVAL, "%s: %s: a %s cannot be passed to the env", r->script,
                       path, luaL_typename(L, idx));
    return NULL;
  }
}

/* t[key] (a table) as JSON text into out; "" when absent. */
static int ch__json_field(ch__reader *r, int idx, const char *key, char *out, size_t n) {
  int pushed = 0, rc = ch__table(r, idx, "", key, &pushed);
  if (rc != CH_OK || !pushed) return rc;
  cJSON *j = ch__to_json(r, lua_gettop(r->L), key, 0, &rc);
  lua_pop(r->L, 1);
  char *text = rc == CH_OK && j ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  if (rc == CH_OK && (!text || strlen(text) >= n)) rc = ch__bad(r, "", key, "too large");
  if (rc == CH_OK) snprintf(out, n, "%s", text);
  cJSON_free(text);
  return rc;
}

/* ---- the sections of a training script --------------------------------------------------- */

static int ch__read_network(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"hidden",       "activation", "plugin",
                                     "architecture", "shared",     NULL};
  const char *p = "network";
  char plugin[64] = "";
  int rc = ch__check_keys(r, idx, p, keys), pushed = 0, shared = -1;
  if (rc == CH_OK) rc = ch__string(r, idx, p, "activation", c->activation, sizeof c->activation);
  if (rc == CH_OK) rc = ch__string(r, idx, p, "plugin", plugin, sizeof plugin);
  if (rc == CH_OK)
    rc = ch__string(r, idx, p, "architecture", c->architecture, sizeof c->architecture);
  if (rc == CH_OK) rc = ch__bool(r, idx, p, "shared", &shared);
  if (rc == CH_OK && plugin[0]) {
    snprintf(c->network_plugin, sizeof c->network_plugin, "%s", plugin);
    r->set_plugin = 1;
  }
  if (rc == CH_OK && shared >= 0) c->shared = shared, r->set_shared = 1;
  if (rc == CH_OK) rc = ch__table(r, idx, p, "hidden", &pushed);
  if (rc != CH_OK || !pushed) return rc;
  int n = (int)lua_rawlen(r->L, -1);
  if (n > CH_MAX_HIDDEN) rc = ch__bad(r, p, "hidden", "at most 8 layers");
  for (int i = 0; rc == CH_OK && i < n; i++) {
    lua_rawgeti(r->L, -1, i + 1);
    if (!lua_isinteger(r->L, -1))
      rc = ch__bad(r, p, "hidden", "must list integers");
    else
      c->hidden[i] = (int)lua_tointeger(r->L, -1);
    lua_pop(r->L, 1);
  }
  if (rc == CH_OK) c->num_hidden = n;
  lua_pop(r->L, 1);
  return rc;
}

static int ch__choice(ch__reader *r, const char *prefix, const char *key, const char *value,
                      const char *a, const char *b, int *out) {
  if (!value[0]) return CH_OK;
  if (strcmp(value, a) == 0 || strcmp(value, b) == 0) {
    *out = strcmp(value, b) == 0;
    return CH_OK;
  }
  char what[160];
  snprintf(what, sizeof what, "must be \"%s\" or \"%s\"", a, b);
  return ch__bad(r, prefix, key, what);
}

static int ch__read_hp(ch__reader *r, int idx, ch_hyperparameters *hp) {
  static const char *const keys[] = {"batch_size",
                                     "num_epochs",
                                     "lr",
                                     "beta_entropy",
                                     "discount_factor",
                                     "loss_type",
                                     "num_episodes_between_training",
                                     "e_greedy_value",
                                     "epsilon_steps",
                                     "exploration_type",
                                     "stack_size",
                                     "term_cond_avg_score",
                                     "term_cond_max_episodes",
                                     "sac_alpha",
                                     "value_clip",
                                     "target_kl",
                                     NULL};
  const char *p = "hyperparameters";
  char loss[32] = "", explore[32] = "";
  int rc = ch__check_keys(r, idx, p, keys);
  if (rc == CH_OK) rc = ch__int(r, idx, p, "batch_size", &hp->batch_size);
  if (rc == CH_OK) rc = ch__int(r, idx, p, "num_epochs", &hp->num_epochs);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "lr", &hp->lr);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "beta_entropy", &hp->beta_entropy);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "discount_factor", &hp->discount_factor);
  if (rc == CH_OK)
    rc = ch__int(r, idx, p, "num_episodes_between_training", &hp->num_episodes_between_training);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "e_greedy_value", &hp->e_greedy_value);
  if (rc == CH_OK) rc = ch__int(r, idx, p, "epsilon_steps", &hp->epsilon_steps);
  if (rc == CH_OK) rc = ch__int(r, idx, p, "stack_size", &hp->stack_size);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "term_cond_avg_score", &hp->term_cond_avg_score);
  if (rc == CH_OK)
    rc = ch__integer(r, idx, p, "term_cond_max_episodes", &hp->term_cond_max_episodes);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "sac_alpha", &hp->sac_alpha);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "value_clip", &hp->value_clip);
  if (rc == CH_OK) rc = ch__number(r, idx, p, "target_kl", &hp->target_kl);
  if (rc == CH_OK) rc = ch__string(r, idx, p, "loss_type", loss, sizeof loss);
  if (rc == CH_OK) rc = ch__string(r, idx, p, "exploration_type", explore, sizeof explore);
  if (rc == CH_OK && strcmp(loss, "mse") == 0) snprintf(loss, sizeof loss, "mean squared error");
  if (rc == CH_OK)
    rc = ch__choice(r, p, "loss_type", loss, "huber", "mean squared error", &hp->loss_type);
  if (rc == CH_OK)
    rc = ch__choice(r, p, "exploration_type", explore, "categorical", "e-greedy",
                    &hp->exploration_type);
  return rc;
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

static int ch__read_start(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"advance", "offset", "alternate_direction", NULL};
  int rc = ch__check_keys(r, idx, "start", keys);
  if (rc == CH_OK) rc = ch__number(r, idx, "start", "advance", &c->start_advance);
  if (rc == CH_OK) rc = ch__number(r, idx, "start", "offset", &c->start_offset);
  if (rc == CH_OK) rc = ch__bool(r, idx, "start", "alternate_direction", &c->alternate_direction);
  return rc;
}

static int ch__read_camera(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"downscale", NULL};
  int rc = ch__check_keys(r, idx, "camera", keys);
  if (rc == CH_OK) rc = ch__int(r, idx, "camera", "downscale", &c->camera_downscale);
  return rc;
}

static int ch__read_plugins(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"env", "network", "buffer", "storage", NULL};
  char network[64] = "";
  int rc = ch__check_keys(r, idx, "plugins", keys);
  if (rc == CH_OK) rc = ch__string(r, idx, "plugins", "env", c->env_plugin, sizeof c->env_plugin);
  if (rc == CH_OK) rc = ch__string(r, idx, "plugins", "network", network, sizeof network);
  if (rc == CH_OK)
    rc = ch__string(r, idx, "plugins", "buffer", c->buffer_plugin, sizeof c->buffer_plugin);
  if (rc == CH_OK)
    rc = ch__string(r, idx, "plugins", "storage", c->storage_plugin, sizeof c->storage_plugin);
  if (rc == CH_OK && network[0]) {
    snprintf(c->network_plugin, sizeof c->network_plugin, "%s", network);
    r->set_plugin = 1;
  }
  return rc;
}

/* deepracer = {model_metadata = , hyperparameters = }: files relative to the script. */
static int ch__read_deepracer(ch__reader *r, int idx, ch_train_config *c) {
  static const char *const keys[] = {"model_metadata", "hyperparameters", NULL};
  char meta[CH_PATH_MAX] = "", hp[CH_PATH_MAX] = "";
  ch_error e;
  int rc = ch__check_keys(r, idx, "deepracer", keys);
  if (rc == CH_OK) rc = ch__string(r, idx, "deepracer", "model_metadata", meta, sizeof meta);
  if (rc == CH_OK) rc = ch__string(r, idx, "deepracer", "hyperparameters", hp, sizeof hp);
  char *paths[2] = {c->deepracer_model_metadata, c->deepracer_hyperparameters};
  const char *names[2] = {meta, hp}, *keys2[2] = {"model_metadata", "hyperparameters"};
  for (int i = 0; rc == CH_OK && i < 2; i++) {
    if (!names[i][0]) continue;
    if (ch_file_resolve(names[i], r->dir, paths[i], CH_PATH_MAX, &e) != CH_OK)
      return ch_error_set(r->err, CH_ENOTFOUND, "%s: deepracer.%s: %s", r->script, keys2[i],
                          e.message);
    if (i == 0) {
      /* Cleared, so that what the file names (if anything) shows. */
      c->network_plugin[0] = '\0';
      c->num_actions = 0;
      rc = ch_metadata_load_model(paths[i], c, &e);
      r->set_plugin = c->network_plugin[0] != '\0';
      r->set_shared = strcmp(c->network_plugin, "cnn") == 0;
      r->set_actions = c->num_actions > 0 || c->action_space_type == CH_ACTION_SPACE_CONTINUOUS;
      if (!r->set_plugin) snprintf(c->network_plugin, sizeof c->network_plugin, "mlp");
    } else {
      rc = ch_metadata_load_hyperparameters(paths[i], c, &e);
    }
    if (rc != CH_OK)
      return ch_error_set(r->err, rc, "%s: deepracer.%s: %s", r->script, keys2[i], e.message);
  }
  return rc;
}

/* track = "name" or tracks = {"a", "b"}. */
static int ch__read_tracks(ch__reader *r, int idx, ch_train_config *c) {
  int t1 = ch__field(r, idx, "track"), t2 = ch__field(r, idx, "tracks");
  lua_pop(r->L, 2);
  if (t1 != LUA_TNIL && t2 != LUA_TNIL)
    return ch__bad(r, "", "tracks", "give track or tracks, not both");
  int n = 0;
  int rc = ch__string_list(r, idx, t2 != LUA_TNIL ? "tracks" : "track", c->tracks[0],
                           sizeof c->tracks[0], CH_MAX_TRACKS, &n);
  if (rc == CH_OK && n > 0) c->num_tracks = n;
  if (rc == CH_OK) snprintf(c->track, sizeof c->track, "%s", c->tracks[0]);
  return rc;
}

static int ch__read_sensors(ch__reader *r, int idx, ch_train_config *c) {
  char names[CH_MAX_SENSORS][32]; /* room for DeepRacer's names */
  int n = 0, rc = ch__string_list(r, idx, "sensor", names[0], sizeof names[0], CH_MAX_SENSORS, &n);
  if (rc != CH_OK || n == 0) return rc;
  for (int i = 0; i < n; i++) {
    const char *canon = ch_metadata_env_sensor(names[i]); /* DeepRacer's names work too */
    char key[32];
    snprintf(key, sizeof key, "sensor[%d]", i + 1);
    if (!canon && strlen(names[i]) >= sizeof c->sensors[i])
      return ch__bad(r, "", key,
                     "must be \"state\", \"camera\", \"stereo\", \"lidar\" or "
                     "\"sector_lidar\"");
    snprintf(c->sensors[i], sizeof c->sensors[i], "%s", canon ? canon : names[i]);
  }
  c->num_sensors = n;
  return CH_OK;
}

static int ch__read_on_iteration(ch__reader *r, int idx, ch_train_config *c) {
  int t = ch__field(r, idx, "on_iteration");
  lua_pop(r->L, 1);
  if (t != LUA_TNIL && t != LUA_TFUNCTION)
    return ch__bad(r, "", "on_iteration", "must be a function(stats, training)");
  c->has_on_iteration = t == LUA_TFUNCTION;
  return CH_OK;
}

static int ch__read_action_space(ch__reader *r, int idx, ch_train_config *c) {
  if (ch__field(r, idx, "action_space") == LUA_TNIL) {
    lua_pop(r->L, 1);
    return CH_OK;
  }
  char where[CH_PATH_MAX + 32];
  snprintf(where, sizeof where, "%s: action_space", r->script);
  int rc = ch_action_space_from_lua(r->L, lua_gettop(r->L), where, &c->action_space_type,
                                    c->actions, &c->num_actions, &c->action_ranges, r->err);
  lua_pop(r->L, 1);
  if (rc == CH_OK && c->action_space_type == CH_ACTION_SPACE_CONTINUOUS) c->num_actions = 0;
  if (rc == CH_OK) r->set_actions = 1;
  return rc;
}

/* A sub-table reader: pushes t[key], runs fn on it, pops. */
typedef int (*ch__sub_fn)(ch__reader *, int, ch_train_config *);

static int ch__sub(ch__reader *r, int idx, const char *key, ch__sub_fn fn, ch_train_config *c) {
  int pushed = 0, rc = ch__table(r, idx, "", key, &pushed);
  if (rc != CH_OK || !pushed) return rc;
  rc = fn(r, lua_gettop(r->L), c);
  lua_pop(r->L, 1);
  return rc;
}

static int ch__sub_hp(ch__reader *r, int i, ch_train_config *c) {
  return ch__read_hp(r, i, &c->hp);
}
static int ch__sub_stop(ch__reader *r, int i, ch_train_config *c) {
  return ch__read_stop(r, i, &c->stop);
}

static const char *const ch__top_keys[] = {"model",           "track",
                                           "tracks",          "reward",
                                           "action_space",    "sensor",
                                           "camera",          "lidar",
                                           "network",         "algorithm",
                                           "hyperparameters", "race_type",
                                           "objects",         "bots",
                                           "start",           "stop",
                                           "clone_from",      "on_iteration",
                                           "deepracer",       "workers",
                                           "update_threads",  "cars_per_worker",
                                           "segment_steps",   "max_steps",
                                           "start_advance",   "seed",
                                           "plugins",         NULL};

/* Scalars and strings of the top level. */
static int ch__read_scalars(ch__reader *r, int idx, ch_train_config *c, char *reward, size_t rn) {
  int64_t seed = (int64_t)c->seed;
  int rc = ch__string(r, idx, "", "model", c->model, sizeof c->model);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "reward", reward, rn);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "algorithm", c->algorithm, sizeof c->algorithm);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "race_type", c->race_type, sizeof c->race_type);
  if (rc == CH_OK) rc = ch__string(r, idx, "", "clone_from", c->clone_from, sizeof c->clone_from);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "workers", &c->workers);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "update_threads", &c->update_threads);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "cars_per_worker", &c->cars_per_worker);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "segment_steps", &c->segment_steps);
  if (rc == CH_OK) rc = ch__int(r, idx, "", "max_steps", &c->max_steps);
  if (rc == CH_OK) rc = ch__number(r, idx, "", "start_advance", &c->start_advance);
  if (rc == CH_OK) rc = ch__integer(r, idx, "", "seed", &seed);
  if (rc == CH_OK && seed < 0) rc = ch__bad(r, "", "seed", "must be >= 0");
  c->seed = (uint64_t)seed;
  return rc;
}

/* start_advance (older scripts) and start.advance say the same: only one may be given. */
static int ch__check_start_advance(ch__reader *r, int idx) {
  int top = ch__field(r, idx, "start_advance") != LUA_TNIL;
  int both = top && ch__field(r, idx, "start") == LUA_TTABLE &&
             lua_getfield(r->L, -1, "advance") != LUA_TNIL;
  lua_settop(r->L, idx);
  return both ? ch__bad(r, "", "start_advance", "give start.advance or start_advance, not both")
              : CH_OK;
}

static int ch__read_top(ch__reader *r, int idx, ch_train_config *c, char *reward, size_t rn) {
  int rc = ch__check_keys(r, idx, "", ch__top_keys);
  /* The DeepRacer files first: every key of the script overrides what they say. */
  if (rc == CH_OK) rc = ch__sub(r, idx, "deepracer", ch__read_deepracer, c);
  if (rc == CH_OK) rc = ch__check_start_advance(r, idx);
  if (rc == CH_OK) rc = ch__read_scalars(r, idx, c, reward, rn);
  if (rc == CH_OK) rc = ch__read_tracks(r, idx, c);
  if (rc == CH_OK) rc = ch__read_action_space(r, idx, c);
  if (rc == CH_OK) rc = ch__read_sensors(r, idx, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "camera", ch__read_camera, c);
  if (rc == CH_OK) rc = ch__json_field(r, idx, "lidar", c->lidar_json, sizeof c->lidar_json);
  if (rc == CH_OK) rc = ch__sub(r, idx, "network", ch__read_network, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "hyperparameters", ch__sub_hp, c);
  if (rc == CH_OK) rc = ch__json_field(r, idx, "objects", c->objects_json, sizeof c->objects_json);
  if (rc == CH_OK) rc = ch__json_field(r, idx, "bots", c->bots_json, sizeof c->bots_json);
  if (rc == CH_OK) rc = ch__sub(r, idx, "start", ch__read_start, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "stop", ch__sub_stop, c);
  if (rc == CH_OK) rc = ch__sub(r, idx, "plugins", ch__read_plugins, c);
  if (rc == CH_OK) rc = ch__read_on_iteration(r, idx, c);
  return rc;
}

int ch_config_run_script(ch_sandbox *sb, const char *script, ch_error *err) {
  if (luaL_loadbufferx(sb->L, ch_action_space_lua_helpers, strlen(ch_action_space_lua_helpers),
                       "=helpers", "t") != LUA_OK) {
    lua_pop(sb->L, 1);
    return ch_error_set(err, CH_ESCRIPT, "internal helpers failed to load");
  }
  int rc = ch_sandbox_call(sb, 0, 0, err);
  if (rc == CH_OK) rc = ch_sandbox_dofile(sb, script, 1, err);
  if (rc == CH_OK && !lua_istable(sb->L, -1)) {
    lua_pop(sb->L, 1);
    rc = ch_error_set(err, CH_EINVAL, "%s: the script must return a table of settings", script);
  }
  return rc;
}

/* Defaults that depend on other keys: the network follows the sensor unless named. */
static void ch__derive(const ch__reader *r, ch_train_config *c) {
  if (!r->set_plugin)
    snprintf(c->network_plugin, sizeof c->network_plugin, "%s", ch__has_camera(c) ? "cnn" : "mlp");
  if (!r->set_shared) c->shared = strcmp(c->network_plugin, "cnn") == 0;
}

/* Reward and tracks as files. */
static int ch__resolve(const ch__reader *r, ch_train_config *c, const char *reward, ch_error *err) {
  ch_error e;
  if (ch_file_resolve(reward, r->dir, c->reward, sizeof c->reward, &e) != CH_OK)
    return ch_error_set(err, CH_ENOTFOUND, "%s: reward: %s", r->script, e.message);
  for (int i = 0; i < c->num_tracks; i++) {
    if (ch_resolve_track(c->tracks[i], c->track_paths[i], sizeof c->track_paths[i], &e) == CH_OK)
      continue;
    if (c->num_tracks == 1)
      return ch_error_set(err, CH_ENOTFOUND, "%s: track: %s", r->script, e.message);
    return ch_error_set(err, CH_ENOTFOUND, "%s: tracks[%d]: %s", r->script, i + 1, e.message);
  }
  snprintf(c->track_path, sizeof c->track_path, "%s", c->track_paths[0]);
  return CH_OK;
}

int ch_config_load(const char *script, ch_train_config *c, ch_error *err) {
  ch_config_defaults(c);
  snprintf(c->script, sizeof c->script, "%s", script);
  ch_sandbox sb;
  int rc = ch_sandbox_open(&sb, 0, 0, err);
  if (rc != CH_OK) return rc;
  char reward[CH_PATH_MAX] = "";
  ch__reader r = {sb.L, script, err, "", 0, 0, 0};
  ch_dirname(script, r.dir, sizeof r.dir);
  rc = ch_config_run_script(&sb, script, err);
  if (rc == CH_OK) rc = ch__read_top(&r, lua_gettop(sb.L), c, reward, sizeof reward);
  ch_sandbox_close(&sb);
  if (rc == CH_OK && !reward[0])
    rc = ch_error_set(err, CH_EINVAL, "%s: reward: missing (the reward script to use)", script);
  if (rc == CH_OK && !r.set_actions)
    rc = ch_error_set(err, CH_EINVAL,
                      "%s: action_space: missing (a list of {steering_angle = , speed = }, "
                      "continuous ranges, or deepracer.model_metadata)",
                      script);
  if (rc == CH_OK) rc = ch__resolve(&r, c, reward, err);
  if (rc != CH_OK) return rc;
  ch__derive(&r, c);
  rc = ch_config_validate(c, err);
  return rc == CH_OK ? ch_config_check_env(c, err) : rc;
}

/* ---- validation --------------------------------------------------------------------------- */

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

static int ch__one_of(const char *s, const char *const *names) {
  for (; *names; names++)
    if (strcmp(s, *names) == 0) return 1;
  return 0;
}

static int ch__validate_actions(const ch_train_config *c, ch_error *err) {
  char where[CH_PATH_MAX + 32];
  snprintf(where, sizeof where, "%s: action_space", c->script);
  if (c->action_space_type == CH_ACTION_SPACE_CONTINUOUS)
    return ch_action_space_check_ranges(&c->action_ranges, where, err);
  CH__RANGE(c->action_space_type == CH_ACTION_SPACE_DISCRETE, "action_space",
            "unknown action space type");
  return ch_action_space_check_discrete(c->actions, c->num_actions, where, err);
}

static int ch__validate_sensors(const ch_train_config *c, ch_error *err) {
  static const char *const known[] = {"state", "camera", "stereo", "lidar", "sector_lidar", NULL};
  CH__RANGE(c->num_sensors >= 1 && c->num_sensors <= CH_MAX_SENSORS, "sensor",
            "needs 1 to 4 sensors");
  for (int i = 0; i < c->num_sensors; i++) {
    char key[32];
    snprintf(key, sizeof key, "sensor[%d]", i + 1);
    CH__RANGE(ch__one_of(c->sensors[i], known), key,
              "must be \"state\", \"camera\", \"stereo\", \"lidar\" or \"sector_lidar\"");
    for (int j = 0; j < i; j++)
      CH__RANGE(strcmp(c->sensors[j], c->sensors[i]) != 0, key, "names a sensor twice");
  }
  CH__RANGE(!(ch_config_has_sensor(c, "camera") && ch_config_has_sensor(c, "stereo")), "sensor",
            "one camera at most: \"camera\" or \"stereo\" (as in DeepRacer)");
  CH__RANGE(!(ch_config_has_sensor(c, "lidar") && ch_config_has_sensor(c, "sector_lidar")),
            "sensor", "one lidar at most: \"lidar\" or \"sector_lidar\" (as in DeepRacer)");
  CH__RANGE(c->camera_downscale == 1 || c->camera_downscale == 2 || c->camera_downscale == 4,
            "camera.downscale", "must be 1, 2 or 4 (160x120, 80x60 or 40x30 images)");
  CH__RANGE(c->hp.stack_size == 1 || ch__has_camera(c), "hyperparameters.stack_size",
            "stacks camera frames: needs a \"camera\" or \"stereo\" sensor");
  CH__RANGE(!c->lidar_json[0] || ch_config_has_sensor(c, "lidar"), "lidar",
            "needs the \"lidar\" sensor");
  return CH_OK;
}

static int ch__validate_network(const ch_train_config *c, ch_error *err) {
  static const char *const archs[] = {"shallow", "deep", "deeper", NULL};
  for (int i = 0; i < c->num_hidden; i++)
    CH__RANGE(c->hidden[i] >= 1 && c->hidden[i] <= 4096, "network.hidden", "sizes 1..4096");
  CH__RANGE(strcmp(c->activation, "tanh") == 0 || strcmp(c->activation, "relu") == 0,
            "network.activation", "must be \"tanh\" or \"relu\"");
  CH__RANGE(ch__one_of(c->architecture, archs), "network.architecture",
            "must be \"shallow\", \"deep\" or \"deeper\"");
  int cnn = strcmp(c->network_plugin, "cnn") == 0, mlp = strcmp(c->network_plugin, "mlp") == 0;
  CH__RANGE(!mlp || !ch__has_camera(c), "network.plugin",
            "\"mlp\" cannot read camera images: use \"cnn\" (the default with a camera)");
  CH__RANGE(!cnn || ch__has_camera(c), "network.plugin",
            "\"cnn\" needs a \"camera\" or \"stereo\" sensor");
  CH__RANGE(!cnn || strcmp(c->architecture, "deeper") != 0, "network.architecture",
            "\"deeper\" (DeepRacer's DEEP_CONVOLUTIONAL_NETWORK_DEEP) is not offered by the cnn "
            "plugin: use \"shallow\" or \"deep\"");
  CH__RANGE(!cnn || c->camera_downscale < 4 || strcmp(c->architecture, "shallow") != 0,
            "camera.downscale",
            "4 gives 40x30 images, too small for the \"shallow\" cnn (it "
            "needs 36 pixels each way): use 1 or 2, or architecture \"deep\"");
  return CH_OK;
}

static int ch__validate_hp(const ch_train_config *c, ch_error *err) {
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
  CH__RANGE(hp->e_greedy_value >= 0 && hp->e_greedy_value <= 1, "hyperparameters.e_greedy_value",
            "must be in [0, 1]");
  CH__RANGE(hp->epsilon_steps >= 0, "hyperparameters.epsilon_steps", "must be >= 0");
  CH__RANGE(hp->stack_size >= 1 && hp->stack_size <= 8, "hyperparameters.stack_size", "1..8");
  CH__RANGE(hp->term_cond_max_episodes >= 0, "hyperparameters.term_cond_max_episodes",
            "must be >= 0 (0: no such stop condition)");
  CH__RANGE(hp->sac_alpha > 0 && hp->sac_alpha <= 1000, "hyperparameters.sac_alpha",
            "must be in (0, 1000]");
  CH__RANGE(hp->value_clip >= 0 && hp->value_clip <= 1000, "hyperparameters.value_clip",
            "must be in [0, 1000] (0: no value clipping)");
  CH__RANGE(hp->target_kl >= 0 && hp->target_kl <= 10, "hyperparameters.target_kl",
            "must be in [0, 10] (0: no early stop)");
  CH__RANGE(hp->exploration_type != CH_EXPLORATION_E_GREEDY ||
                c->action_space_type == CH_ACTION_SPACE_DISCRETE,
            "hyperparameters.exploration_type",
            "\"e-greedy\" picks among discrete actions: needs a discrete action_space");
  return CH_OK;
}

static int ch__validate_race(const ch_train_config *c, ch_error *err) {
  static const char *const races[] = {"time_trial", "object_avoidance", "head_to_head", NULL};
  CH__RANGE(ch__one_of(c->race_type, races), "race_type",
            "must be \"time_trial\", \"object_avoidance\" or \"head_to_head\"");
  CH__RANGE(!c->objects_json[0] || strcmp(c->race_type, "object_avoidance") == 0, "objects",
            "needs race_type = \"object_avoidance\"");
  CH__RANGE(!c->bots_json[0] || strcmp(c->race_type, "head_to_head") == 0, "bots",
            "needs race_type = \"head_to_head\"");
  return CH_OK;
}

static int ch__validate_run(const ch_train_config *c, ch_error *err) {
  CH__RANGE(c->workers >= 1 && c->workers <= 64, "workers", "1..64");
  CH__RANGE(c->update_threads >= 0 && c->update_threads <= 16, "update_threads",
            "0..16 (0: automatic)");
  CH__RANGE(c->cars_per_worker >= 1 && c->cars_per_worker <= 1024, "cars_per_worker", "1..1024");
  CH__RANGE(c->segment_steps >= 1 && c->segment_steps <= 100000, "segment_steps", "1..100000");
  CH__RANGE(c->max_steps >= 1 && c->max_steps <= 1000000, "max_steps", "1..1000000");
  CH__RANGE(c->start_advance >= 0 && c->start_advance < 1, "start.advance", "must be in [0, 1)");
  CH__RANGE(c->start_offset >= -1 && c->start_offset <= 1, "start.offset",
            "must be in [-1, 1] metres (+ = left of the centre line)");
  CH__RANGE(c->num_tracks >= 1 && c->num_tracks <= CH_MAX_TRACKS, "tracks", "1 to 8 tracks");
  CH__RANGE(!c->clone_from[0] || ch__valid_model_name(c->clone_from), "clone_from",
            "must name a model: 1-100 of [A-Za-z0-9._-]");
  CH__RANGE(strcmp(c->clone_from, c->model) != 0, "clone_from",
            "names the model being trained; clone another model");
  return CH_OK;
}

static int ch__validate_stop(const ch_train_config *c, ch_error *err) {
  const ch_stop_conditions *s = &c->stop;
  CH__RANGE(s->max_seconds >= 0 && s->max_episodes >= 0 && s->max_iterations >= 0, "stop",
            "limits must be >= 0");
  CH__RANGE(s->avg_progress >= 0 && s->avg_progress <= 100, "stop.avg_progress",
            "must be in [0, 100]");
  CH__RANGE(s->eval_laps >= 0 && s->eval_laps <= 3, "stop.eval_laps", "0..3");
  CH__RANGE(s->max_seconds > 0 || s->max_episodes > 0 || s->max_iterations > 0 ||
                s->avg_progress > 0 || s->eval_laps > 0 || c->hp.term_cond_max_episodes > 0 ||
                c->hp.term_cond_avg_score != 0,
            "stop", "needs at least one stop condition");
  return CH_OK;
}

int ch_config_validate(const ch_train_config *c, ch_error *err) {
  CH__RANGE(ch__valid_model_name(c->model), "model", "must be 1-100 of [A-Za-z0-9._-]");
  int rc = ch__validate_actions(c, err);
  if (rc != CH_OK) return rc;
  CH__RANGE(strcmp(c->algorithm, "clipped_ppo") == 0 || strcmp(c->algorithm, "sac") == 0,
            "algorithm", "must be \"clipped_ppo\" or \"sac\"");
  if (strcmp(c->algorithm, "sac") == 0)
    CH__RANGE(c->action_space_type == CH_ACTION_SPACE_CONTINUOUS, "algorithm",
              "\"sac\" needs a continuous action_space {steering_angle = {low, high}, speed = "
              "{low, high}} (as in DeepRacer)");
  rc = ch__validate_sensors(c, err);
  if (rc == CH_OK) rc = ch__validate_network(c, err);
  if (rc == CH_OK) rc = ch__validate_hp(c, err);
  if (rc == CH_OK) rc = ch__validate_race(c, err);
  if (rc == CH_OK) rc = ch__validate_run(c, err);
  if (rc == CH_OK) rc = ch__validate_stop(c, err);
  return rc;
}

/* ---- the env, checked by creating it --------------------------------------------------- */

/* The script key behind an env message "...config key 'objects.count' ...". */
static void ch__env_key(const char *msg, int track, int num_tracks, char *out, size_t n) {
  const char *k = strstr(msg, "config key '");
  char key[64] = "";
  if (k) {
    k += strlen("config key '");
    size_t len = strcspn(k, "'.[");
    snprintf(key, sizeof key, "%.*s", (int)len, k);
  }
  if (strcmp(key, "sensors") == 0)
    snprintf(out, n, "sensor");
  else if (k && strncmp(k, "camera.stack_size", 17) == 0)
    snprintf(out, n, "hyperparameters.stack_size");
  else if (key[0] && strcmp(key, "track") != 0)
    snprintf(out, n, "%s", key);
  else if (num_tracks > 1)
    snprintf(out, n, "tracks[%d]", track + 1);
  else
    snprintf(out, n, "track");
}

int ch_config_check_env(const ch_train_config *c, ch_error *err) {
  ch_plugin *p = NULL;
  ch_error e;
  if (ch_plugin_find(CH_PLUGIN_ENV, c->env_plugin, &p, &e) != CH_OK)
    return ch_error_set(err, e.code, "%s: plugins.env: %s", c->script, e.message);
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < c->num_tracks; i++) {
    cJSON *j = ch_config_env_json(c, c->track_paths[i], 1);
    char *json = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    ch_env env;
    rc = json ? ch_env_create(p, json, &env, &e) : CH_ENOMEM;
    cJSON_free(json);
    if (rc == CH_OK) {
      ch_env_destroy(&env);
    } else {
      char key[64];
      ch__env_key(rc == CH_ENOMEM ? "" : e.message, i, c->num_tracks, key, sizeof key);
      ch_error_set(err, rc, "%s: %s: %s", c->script, key,
                   rc == CH_ENOMEM ? "out of memory" : e.message);
    }
  }
  ch_plugin_close(p);
  return rc;
}

/* ---- JSON views ------------------------------------------------------------------------- */

cJSON *ch_config_actions_json(const ch_train_config *c) {
  if (c->action_space_type == CH_ACTION_SPACE_CONTINUOUS)
    return ch_action_space_ranges_json(&c->action_ranges);
  return ch_action_space_discrete_json(c->actions, c->num_actions);
}

int ch_config_actions_from_json(const cJSON *arr, ch_action *out, int *count, ch_error *err) {
  int rc = ch_action_space_discrete_from_json(arr, "action_space", out, count, err);
  if (rc != CH_OK && err) err->code = rc = CH_ECORRUPT;
  return rc;
}

int ch_config_action_space_from_json(const cJSON *v, ch_train_config *c, ch_error *err) {
  if (cJSON_IsObject(v)) {
    int rc = ch_action_space_ranges_from_json(v, "action_space", &c->action_ranges, err);
    if (rc == CH_OK) c->action_space_type = CH_ACTION_SPACE_CONTINUOUS, c->num_actions = 0;
    return rc;
  }
  int rc = ch_config_actions_from_json(v, c->actions, &c->num_actions, err);
  if (rc == CH_OK) c->action_space_type = CH_ACTION_SPACE_DISCRETE;
  return rc;
}

cJSON *ch_config_hyperparameters_json(const ch_train_config *c) {
  return ch_metadata_hyperparameters_json(c);
}

static cJSON *ch__hidden_json(const ch_train_config *c) {
  cJSON *h = cJSON_CreateArray();
  for (int i = 0; i < c->num_hidden; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(c->hidden[i]));
  return h;
}

/* The policy head: categorical over the actions, or gaussian over (steering, speed). */
static void ch__add_head(cJSON *o, const ch_train_config *c) {
  int continuous = c->action_space_type == CH_ACTION_SPACE_CONTINUOUS;
  cJSON_AddNumberToObject(o, "num_actions", continuous ? 2 : c->num_actions);
  if (continuous) cJSON_AddStringToObject(o, "head", "gaussian");
}

cJSON *ch_config_network_json(const ch_train_config *c, uint32_t input_size) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "input_size", input_size);
  ch__add_head(o, c);
  cJSON_AddItemToObject(o, "hidden", ch__hidden_json(c));
  cJSON_AddStringToObject(o, "activation", c->activation);
  if (c->shared) cJSON_AddBoolToObject(o, "shared", 1);
  cJSON_AddNumberToObject(o, "seed", (double)(c->seed & 0xffffffffu));
  return o;
}

cJSON *ch_config_network_json_for(const ch_train_config *c, const ch_env_spec *spec,
                                  ch_error *err) {
  int image = spec->image_width && spec->image_height && spec->image_channels;
  int cnn = strcmp(c->network_plugin, "cnn") == 0, mlp = strcmp(c->network_plugin, "mlp") == 0;
  if (mlp && image) {
    ch_error_set(err, CH_EINVAL,
                 "%s: network.plugin: \"mlp\" cannot read the env's camera "
                 "images; use \"cnn\"",
                 c->script);
    return NULL;
  }
  if (cnn && !image) {
    ch_error_set(err, CH_EINVAL,
                 "%s: network.plugin: \"cnn\" needs camera images, and the env "
                 "gives none",
                 c->script);
    return NULL;
  }
  if (!image) return ch_config_network_json(c, spec->obs_size);
  cJSON *o = cJSON_CreateObject();
  cJSON *img = cJSON_AddObjectToObject(o, "image");
  cJSON_AddNumberToObject(img, "width", spec->image_width);
  cJSON_AddNumberToObject(img, "height", spec->image_height);
  cJSON_AddNumberToObject(img, "channels", spec->image_channels);
  cJSON_AddNumberToObject(o, "vector_size", spec->obs_size);
  cJSON_AddStringToObject(o, "architecture", c->architecture);
  ch__add_head(o, c);
  cJSON_AddBoolToObject(o, "shared", c->shared);
  cJSON_AddNumberToObject(o, "seed", (double)(c->seed & 0xffffffffu));
  return o;
}

/* Add key: the parsed JSON text (a config invariant: it was made by cJSON). */
static void ch__add_json_text(cJSON *o, const char *key, const char *text) {
  cJSON *v = text[0] ? cJSON_Parse(text) : NULL;
  if (v) cJSON_AddItemToObject(o, key, v);
}

cJSON *ch_config_env_json(const ch_train_config *c, const char *track_path, uint32_t num_cars) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "track", track_path);
  cJSON_AddNumberToObject(o, "num_cars", num_cars);
  cJSON_AddNumberToObject(o, "max_steps", c->max_steps);
  /* Only what differs from the env's defaults, so that an env without these keys still takes
  ** a time-trial state-sensor configuration. */
  if (!(c->num_sensors == 1 && strcmp(c->sensors[0], "state") == 0)) {
    cJSON *s = cJSON_AddArrayToObject(o, "sensors");
    for (int i = 0; i < c->num_sensors; i++)
      cJSON_AddItemToArray(s, cJSON_CreateString(c->sensors[i]));
  }
  if (ch__has_camera(c)) {
    cJSON *cam = cJSON_AddObjectToObject(o, "camera");
    cJSON_AddNumberToObject(cam, "downscale", c->camera_downscale);
    cJSON_AddNumberToObject(cam, "stack_size", c->hp.stack_size);
  }
  ch__add_json_text(o, "lidar", c->lidar_json);
  if (strcmp(c->race_type, "time_trial") != 0)
    cJSON_AddStringToObject(o, "race_type", c->race_type);
  ch__add_json_text(o, "objects", c->objects_json);
  ch__add_json_text(o, "bots", c->bots_json);
  return o;
}

static void ch__add_strings(cJSON *o, const char *key, const char *first, size_t stride, int n) {
  cJSON *a = cJSON_AddArrayToObject(o, key);
  for (int i = 0; i < n; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(first + (size_t)i * stride));
}

cJSON *ch_config_json(const ch_train_config *c) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "script", c->script);
  cJSON_AddStringToObject(o, "model", c->model);
  cJSON_AddStringToObject(o, "track", c->track);
  ch__add_strings(o, "tracks", c->tracks[0], sizeof c->tracks[0], c->num_tracks);
  cJSON_AddStringToObject(o, "reward", c->reward);
  cJSON_AddItemToObject(o, "action_space", ch_config_actions_json(c));
  cJSON_AddStringToObject(o, "action_space_type", ch_action_space_type_name(c->action_space_type));
  ch__add_strings(o, "sensor", c->sensors[0], sizeof c->sensors[0], c->num_sensors);
  cJSON *cam = cJSON_AddObjectToObject(o, "camera");
  cJSON_AddNumberToObject(cam, "downscale", c->camera_downscale);
  cJSON *net = cJSON_AddObjectToObject(o, "network");
  cJSON_AddStringToObject(net, "plugin", c->network_plugin);
  cJSON_AddItemToObject(net, "hidden", ch__hidden_json(c));
  cJSON_AddStringToObject(net, "activation", c->activation);
  cJSON_AddStringToObject(net, "architecture", c->architecture);
  cJSON_AddBoolToObject(net, "shared", c->shared);
  cJSON_AddStringToObject(o, "algorithm", c->algorithm);
  cJSON_AddItemToObject(o, "hyperparameters", ch_config_hyperparameters_json(c));
  cJSON_AddStringToObject(o, "race_type", c->race_type);
  ch__add_json_text(o, "objects", c->objects_json);
  ch__add_json_text(o, "bots", c->bots_json);
  ch__add_json_text(o, "lidar", c->lidar_json);
  cJSON *st = cJSON_AddObjectToObject(o, "start");
  cJSON_AddNumberToObject(st, "advance", c->start_advance);
  cJSON_AddNumberToObject(st, "offset", c->start_offset);
  cJSON_AddBoolToObject(st, "alternate_direction", c->alternate_direction);
  cJSON *s = cJSON_AddObjectToObject(o, "stop");
  cJSON_AddNumberToObject(s, "max_seconds", c->stop.max_seconds);
  cJSON_AddNumberToObject(s, "max_episodes", (double)c->stop.max_episodes);
  cJSON_AddNumberToObject(s, "max_iterations", (double)c->stop.max_iterations);
  cJSON_AddNumberToObject(s, "avg_progress", c->stop.avg_progress);
  cJSON_AddNumberToObject(s, "eval_laps", c->stop.eval_laps);
  if (c->clone_from[0]) cJSON_AddStringToObject(o, "clone_from", c->clone_from);
  cJSON_AddBoolToObject(o, "on_iteration", c->has_on_iteration);
  if (c->deepracer_model_metadata[0] || c->deepracer_hyperparameters[0]) {
    cJSON *d = cJSON_AddObjectToObject(o, "deepracer");
    if (c->deepracer_model_metadata[0])
      cJSON_AddStringToObject(d, "model_metadata", c->deepracer_model_metadata);
    if (c->deepracer_hyperparameters[0])
      cJSON_AddStringToObject(d, "hyperparameters", c->deepracer_hyperparameters);
  }
  cJSON_AddNumberToObject(o, "workers", c->workers);
  cJSON_AddNumberToObject(o, "update_threads", c->update_threads);
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
