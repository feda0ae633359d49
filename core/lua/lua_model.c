/* lua_model.c -- the catalog from Lua (models, checkpoints, evaluations) and loaded models that
** act on observations and drive evaluation laps. */
#include "lua_internal.h"

#include "evaluate.h"
#include "loader.h"
#include "model.h"
#include "paths.h"
#include "policy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ch__lmodel {
  ch_plugin *net_p;
  ch_net net;
  float *logits, *input;
  char name[256];
  char track[256];
  int num_actions;
  ch_action actions[CH_MAX_ACTIONS];
  int64_t iteration;
} ch__lmodel;

/* ------------------------------------------------------------------------ catalog rows */

static void ch__set_string(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void ch__set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void ch__set_json(lua_State *L, const char *k, const char *json) {
  cJSON *j = cJSON_Parse(json ? json : "");
  if (!j) return;
  ch_lua_push_json(L, j);
  cJSON_Delete(j);
  lua_setfield(L, -2, k);
}

static void ch__append(lua_State *L) {
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int ch__push_checkpoint(const ch_checkpoint_info *c, void *user) {
  lua_State *L = user;
  lua_createtable(L, 0, 8);
  ch__set_int(L, "iteration", c->iteration);
  ch__set_int(L, "episodes", c->episodes);
  ch__set_int(L, "env_steps", c->env_steps);
  lua_pushnumber(L, c->wall_seconds);
  lua_setfield(L, -2, "wall_seconds");
  ch__set_string(L, "storage_key", c->storage_key);
  ch__set_string(L, "sha256", c->sha256);
  ch__set_int(L, "created", c->created);
  ch__set_json(L, "metrics", c->metrics_json);
  ch__append(L);
  return 0;
}

static int ch__push_evaluation(const ch_evaluation_info *e, void *user) {
  lua_State *L = user;
  lua_createtable(L, 0, 6);
  ch__set_int(L, "iteration", e->iteration);
  ch__set_string(L, "track", e->track);
  ch__set_int(L, "trials", e->trials);
  ch__set_int(L, "completed_laps", e->completed_laps);
  ch__set_int(L, "created", e->created);
  ch__set_json(L, "results", e->results_json);
  ch__append(L);
  return 0;
}

typedef struct ch__models_ctx {
  lua_State *L;
  ch_session *s;
} ch__models_ctx;

static int ch__push_model(const ch_model_info *m, void *user) {
  ch__models_ctx *c = user;
  lua_State *L = c->L;
  lua_createtable(L, 0, 10);
  ch__set_string(L, "name", m->name);
  ch__set_string(L, "track", m->track);
  ch__set_string(L, "status", m->status);
  ch__set_string(L, "reward_script", m->reward_script);
  ch__set_int(L, "created", m->created);
  ch_checkpoint_info ck;
  int have = ch_catalog_latest_checkpoint(c->s->cat, m->name, &ck, NULL) == CH_OK;
  ch__set_int(L, "iterations", have ? ck.iteration + 1 : 0);
  ch__set_int(L, "env_steps", have ? ck.env_steps : 0);
  if (have) {
    cJSON *metrics = cJSON_Parse(ck.metrics_json ? ck.metrics_json : "");
    static const char *const keep[] = {"mean_progress", "completion_rate", "mean_reward", NULL};
    for (int i = 0; keep[i]; i++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(metrics, keep[i]);
      if (!cJSON_IsNumber(v)) continue;
      lua_pushnumber(L, v->valuedouble);
      lua_setfield(L, -2, keep[i]);
    }
    cJSON_Delete(metrics);
    ch_checkpoint_info_free(&ck);
  }
  ch__append(L);
  return 0;
}

/* chicane.models() -> list of {name, track, status, iterations, env_steps, ...} */
static int ch__models(lua_State *L) {
  ch__models_ctx c = {L, ch_lua_session(L, "chicane.models")};
  ch_error err = {0, ""};
  lua_newtable(L);
  if (ch_catalog_list_models(c.s->cat, ch__push_model, &c, &err) != CH_OK)
    return ch_lua_fail(L, "chicane.models", &err);
  return 1;
}

static int ch__list_checkpoints(lua_State *L, ch_session *s, const char *fn, const char *model) {
  ch_error err = {0, ""};
  lua_newtable(L);
  if (ch_catalog_list_checkpoints(s->cat, model, ch__push_checkpoint, L, &err) != CH_OK)
    return ch_lua_fail(L, fn, &err);
  return 1;
}

static int ch__list_evaluations(lua_State *L, ch_session *s, const char *fn, const char *model) {
  ch_error err = {0, ""};
  lua_newtable(L);
  if (ch_catalog_list_evaluations(s->cat, model, ch__push_evaluation, L, &err) != CH_OK)
    return ch_lua_fail(L, fn, &err);
  return 1;
}

/* chicane.checkpoints(name) -> list */
static int ch__checkpoints(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  return ch__list_checkpoints(L, ch_lua_session(L, "chicane.checkpoints"), "chicane.checkpoints",
                              name);
}

/* chicane.evaluations(name) -> list */
static int ch__evaluations(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  return ch__list_evaluations(L, ch_lua_session(L, "chicane.evaluations"), "chicane.evaluations",
                              name);
}

/* ------------------------------------------------------------------------ model objects */

static ch__lmodel *ch__check(lua_State *L) {
  ch__lmodel *m = luaL_checkudata(L, 1, CH_LUA_MODEL);
  if (!m->net.h) luaL_error(L, "model is closed");
  return m;
}

/* The session the model was loaded from (user value 2 of the model at index 1). */
static ch_session *ch__session(lua_State *L) {
  lua_getiuservalue(L, 1, 2);
  ch_session *s = lua_touserdata(L, -1);
  lua_pop(L, 1); /* the model keeps it */
  return s;
}

static int ch__gc(lua_State *L) {
  ch__lmodel *m = luaL_checkudata(L, 1, CH_LUA_MODEL);
  ch_net_destroy(&m->net);
  ch_plugin_close(m->net_p);
  m->net_p = NULL;
  free(m->logits);
  free(m->input);
  m->logits = m->input = NULL;
  return 0;
}

static int ch__tostring(lua_State *L) {
  ch__lmodel *m = luaL_checkudata(L, 1, CH_LUA_MODEL);
  if (!m->net.h)
    lua_pushfstring(L, "<chicane.model %s (closed)>", m->name);
  else
    lua_pushfstring(L, "<chicane.model %s: iteration %d, %d actions, trained on %s>", m->name,
                    (int)m->iteration, m->num_actions, m->track);
  return 1;
}

static const char *ch__json_string(const cJSON *o, const char *key, const char *fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : fallback;
}

/* Create the network of a loaded model and give it the checkpoint's weights. */
static int ch__open_net(ch__lmodel *lm, const ch_loaded_model *m, ch_error *err) {
  const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(m->config, "plugins");
  const cJSON *netcfg = cJSON_GetObjectItemCaseSensitive(m->config, "network_config");
  if (!cJSON_IsObject(netcfg))
    return ch_error_set(err, CH_ECORRUPT, "model '%s': no network_config in its configuration",
                        m->info.name);
  int rc = ch_plugin_find(CH_PLUGIN_NETWORK, ch__json_string(plugins, "network", "mlp"), &lm->net_p,
                          err);
  char *json = rc == CH_OK ? cJSON_PrintUnformatted(netcfg) : NULL;
  if (rc == CH_OK) rc = ch_net_create(lm->net_p, json, &lm->net, err);
  cJSON_free(json);
  if (rc == CH_OK) rc = lm->net.vt->load(lm->net.h, m->blob, m->blob_len, err);
  if (rc == CH_OK && lm->net.spec.policy_size < (uint32_t)m->num_actions)
    rc = ch_error_set(err, CH_ECORRUPT, "model '%s': the network has %u outputs for %d actions",
                      m->info.name, lm->net.spec.policy_size, m->num_actions);
  if (rc != CH_OK) return rc;
  lm->logits = calloc(lm->net.spec.policy_size + 1, sizeof *lm->logits);
  lm->input = calloc(lm->net.spec.input_size + 1, sizeof *lm->input);
  return lm->logits && lm->input ? CH_OK : ch_error_set(err, CH_ENOMEM, "out of memory");
}

static void ch__copy(ch__lmodel *lm, const ch_loaded_model *m) {
  snprintf(lm->name, sizeof lm->name, "%s", m->info.name);
  snprintf(lm->track, sizeof lm->track, "%s", m->info.track ? m->info.track : "");
  lm->num_actions = m->num_actions;
  memcpy(lm->actions, m->actions, sizeof lm->actions);
  lm->iteration = m->iteration;
}

/* The user value: what the catalog says of the model, as a table. */
static void ch__info(lua_State *L, const ch_loaded_model *m) {
  lua_createtable(L, 0, 6);
  ch__set_string(L, "status", m->info.status);
  ch__set_string(L, "reward_script", m->info.reward_script);
  ch__set_string(L, "storage", m->info.storage);
  ch__set_int(L, "created", m->info.created);
  ch_lua_push_json(L, m->config);
  lua_setfield(L, -2, "config");
  lua_createtable(L, m->num_actions, 0);
  for (int i = 0; i < m->num_actions; i++) {
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, m->actions[i].steering_angle);
    lua_setfield(L, -2, "steering_angle");
    lua_pushnumber(L, m->actions[i].speed);
    lua_setfield(L, -2, "speed");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "actions");
}

/* chicane.model(name) -> model (its latest checkpoint) */
static int ch__new(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  ch_session *s = ch_lua_push_session(L, "chicane.model");
  ch__lmodel *lm = lua_newuserdatauv(L, sizeof *lm, 2);
  memset(lm, 0, sizeof *lm);
  luaL_setmetatable(L, CH_LUA_MODEL);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 2);
  ch_loaded_model m;
  ch_error err = {0, ""};
  int rc = ch_model_load(s, name, &m, &err);
  if (rc == CH_OK) rc = ch__open_net(lm, &m, &err);
  if (rc == CH_OK) {
    ch__copy(lm, &m);
    ch__info(L, &m);
    lua_setiuservalue(L, -2, 1);
  }
  /* The weights now live in the network, so the storage's copy can go. */
  ch_loaded_model_free(s, &m);
  if (rc != CH_OK) return ch_lua_fail(L, "chicane.model", &err);
  return 1;
}

/* Forward an observation (the env's obs at idx: a list of floats, with .image for a camera)
** through the policy: the network sees the image scaled to [0, 1], then the floats. */
static void ch__forward(lua_State *L, ch__lmodel *m, int idx, const char *fn) {
  luaL_checktype(L, idx, LUA_TTABLE);
  uint32_t w = 0, h = 0, c = 0, n = (uint32_t)lua_rawlen(L, idx);
  const uint8_t *image = NULL;
  if (lua_getfield(L, idx, "image") != LUA_TNIL && !(image = ch_lua_image_data(L, -1, &w, &h, &c)))
    luaL_error(L, "%s: obs.image must be an image, got %s", fn, luaL_typename(L, -1));
  uint32_t image_size = w * h * c;
  if (image_size + n != m->net.spec.input_size)
    luaL_error(L, "%s: the model takes %d inputs, the observation has %d (image %d + %d floats)",
               fn, (int)m->net.spec.input_size, (int)(image_size + n), (int)image_size, (int)n);
  for (uint32_t i = 0; i < image_size; i++) m->input[i] = (float)image[i] * (1.0f / 255.0f);
  lua_pop(L, 1);
  for (uint32_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TNUMBER)
      luaL_error(L, "%s: obs[%d] is not a number", fn, (int)i + 1);
    m->input[image_size + i] = (float)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  ch_error err = {0, ""};
  if (m->net.vt->forward(m->net.h, m->input, 1, m->logits, NULL, &err) != CH_OK)
    ch_lua_fail(L, fn, &err);
}

/* model:act(obs) -> action index (from 1), steering angle, speed: the greedy action */
static int ch__act(lua_State *L) {
  ch__lmodel *m = ch__check(L);
  ch__forward(L, m, 2, "model:act");
  int a = ch_policy_argmax(m->logits, m->num_actions);
  lua_pushinteger(L, a + 1);
  lua_pushnumber(L, m->actions[a].steering_angle);
  lua_pushnumber(L, m->actions[a].speed);
  return 3;
}

/* model:probabilities(obs) -> list of the policy's probability of each action */
static int ch__probabilities(lua_State *L) {
  ch__lmodel *m = ch__check(L);
  ch__forward(L, m, 2, "model:probabilities");
  lua_createtable(L, m->num_actions, 0);
  for (int a = 0; a < m->num_actions; a++) {
    lua_pushnumber(L, exp(ch_policy_logp(m->logits, m->num_actions, a)));
    lua_rawseti(L, -2, a + 1);
  }
  return 1;
}

/* The race type the model was trained for (NULL: the env's default). */
static const char *ch__race_type(lua_State *L) {
  const char *rt = NULL;
  int top = lua_gettop(L);
  lua_getiuservalue(L, 1, 1);
  if (lua_getfield(L, -1, "config") == LUA_TTABLE &&
      lua_getfield(L, -1, "race_type") == LUA_TSTRING)
    rt = lua_tostring(L, -1); /* kept alive by the user value */
  lua_settop(L, top);
  return rt;
}

/* model:drive{track=, trials=1, penalty=5, crash_penalty=5, max_seconds=180, race_type=, seed=1}
** -> the evaluation's results, as `chicane evaluate --json` prints them */
static int ch__drive(lua_State *L) {
  static const char *const keys[] = {"track",       "trials",    "penalty", "crash_penalty",
                                     "max_seconds", "race_type", "seed",    NULL};
  const char *fn = "model:drive";
  ch__lmodel *m = ch__check(L);
  ch_lua_check_options(L, 2, fn, keys);
  ch_eval_options o;
  ch_eval_defaults(&o);
  o.trials = (int)ch_lua_opt_integer(L, 2, fn, "trials", 1);
  o.penalty_seconds = ch_lua_opt_number(L, 2, fn, "penalty", o.penalty_seconds);
  o.crash_penalty_seconds = ch_lua_opt_number(L, 2, fn, "crash_penalty", o.crash_penalty_seconds);
  o.max_seconds = ch_lua_opt_number(L, 2, fn, "max_seconds", o.max_seconds);
  o.race_type = ch_lua_opt_string(L, 2, fn, "race_type", NULL);
  o.seed = (uint64_t)ch_lua_opt_integer(L, 2, fn, "seed", (lua_Integer)o.seed);
  if (o.trials < 1 || o.trials > CH_EVAL_MAX_TRIALS)
    return luaL_error(L, "%s: trials must be 1..%d", fn, CH_EVAL_MAX_TRIALS);
  if (!(o.penalty_seconds >= 0) || !(o.crash_penalty_seconds >= 0) || !(o.max_seconds > 0))
    return luaL_error(L, "%s: penalties must be >= 0 and max_seconds > 0", fn);
  char path[CH_PATH_MAX], track[CH_PATH_MAX];
  if (!lua_istable(L, 2) || lua_getfield(L, 2, "track") == LUA_TNIL)
    lua_pushstring(L, m->track);                   /* the track it was trained on */
  ch_lua_track_path(L, -1, fn, path, sizeof path); /* checks it; a name stays a name */
  const char *given = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : path;
  ch_session *s = ch__session(L);
  ch_eval_result *r = lua_newuserdatauv(L, sizeof *r, 0); /* large; collected after the call */
  ch_error err = {0, ""};
  if (ch_evaluate_model(s, m->name, given, &o, r, track, sizeof track, &err) != CH_OK)
    return ch_lua_fail(L, fn, &err);
  const char *race_type = o.race_type ? o.race_type : ch__race_type(L);
  cJSON *j = ch_eval_results_json(m->name, m->iteration, track, race_type, (int64_t)time(NULL), &o,
                                  r, NULL);
  if (!j) return luaL_error(L, "%s: out of memory", fn);
  ch_lua_push_json(L, j);
  cJSON_Delete(j);
  return 1;
}

/* model:checkpoints() and model:evaluations(): the catalog's rows of this model */
static int ch__model_checkpoints(lua_State *L) {
  return ch__list_checkpoints(L, ch__session(L), "model:checkpoints", ch__check(L)->name);
}

static int ch__model_evaluations(lua_State *L) {
  return ch__list_evaluations(L, ch__session(L), "model:evaluations", ch__check(L)->name);
}

static const char *const ch__fields[] = {"name",    "track",         "iteration", "num_actions",
                                         "actions", "input_size",    "status",    "config",
                                         "created", "reward_script", "storage",   NULL};

static int ch__get(lua_State *L, const char *key) {
  ch__lmodel *m = ch__check(L);
  if (strcmp(key, "name") == 0) {
    lua_pushstring(L, m->name);
  } else if (strcmp(key, "track") == 0) {
    lua_pushstring(L, m->track);
  } else if (strcmp(key, "iteration") == 0) {
    lua_pushinteger(L, (lua_Integer)m->iteration);
  } else if (strcmp(key, "num_actions") == 0) {
    lua_pushinteger(L, m->num_actions);
  } else if (strcmp(key, "input_size") == 0) {
    lua_pushinteger(L, m->net.spec.input_size);
  } else {
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, key);
    lua_remove(L, -2);
  }
  return 1;
}

static const luaL_Reg ch__methods[] = {{"act", ch__act},
                                       {"probabilities", ch__probabilities},
                                       {"drive", ch__drive},
                                       {"checkpoints", ch__model_checkpoints},
                                       {"evaluations", ch__model_evaluations},
                                       {"close", ch__gc},
                                       {NULL, NULL}};

static const ch_lua_class ch__class = {CH_LUA_MODEL, ch__methods, ch__fields,
                                       ch__get,      ch__gc,      ch__tostring};

void ch_lua_open_model(lua_State *L) {
  static const luaL_Reg funcs[] = {{"models", ch__models},
                                   {"model", ch__new},
                                   {"checkpoints", ch__checkpoints},
                                   {"evaluations", ch__evaluations},
                                   {NULL, NULL}};
  ch_lua_class_register(L, &ch__class);
  luaL_setfuncs(L, funcs, 0);
}
