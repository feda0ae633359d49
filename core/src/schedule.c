/* schedule.c -- runs a training script's on_iteration(stats, training) between iterations. */
#include "schedule.h"

#include "reward.h"
#include "sandbox.h"

#include <chicane/plugin_util.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ch_schedule {
  ch_sandbox sb;
  char script[CH_PATH_MAX];
  char dir[CH_PATH_MAX];        /* the script's directory: reward paths start there */
  int fn_ref;                   /* on_iteration */
  int fn_line;                  /* where it is defined */
  int training_ref;             /* the training object */
  ch_schedule_actions *pending; /* requests of the call under way */
  /* The settings in force, as training.* shows them. */
  double lr, beta_entropy;
  int num_tracks;
  char tracks[CH_MAX_TRACKS][256];
  char reward[CH_PATH_MAX];
  char model[128];
};

/* ---- requests: checked here, whether they come from calls or from the returned table ---- */

typedef char ch__msg[CH_ERROR_MESSAGE_MAX];

static int ch__req_lr(ch_schedule *s, double x, ch__msg msg) {
  if (!(x > 0 && x <= 1)) return snprintf(msg, sizeof(ch__msg), "lr %g is outside (0, 1]", x);
  s->pending->set_lr = 1;
  s->pending->lr = x;
  return 0;
}

static int ch__req_beta(ch_schedule *s, double x, ch__msg msg) {
  if (!(x >= 0 && x <= 1))
    return snprintf(msg, sizeof(ch__msg), "beta_entropy %g is outside [0, 1]", x);
  s->pending->set_beta_entropy = 1;
  s->pending->beta_entropy = x;
  return 0;
}

/* Track k of a set_tracks request. */
static int ch__req_track(ch_schedule *s, int k, const char *name, ch__msg msg) {
  ch_schedule_actions *a = s->pending;
  ch_error e;
  if (strlen(name) >= sizeof a->tracks[k])
    return snprintf(msg, sizeof(ch__msg), "track name too long");
  if (ch_resolve_track(name, a->track_paths[k], sizeof a->track_paths[k], &e) != CH_OK)
    return snprintf(msg, sizeof(ch__msg), "%s", e.message);
  snprintf(a->tracks[k], sizeof a->tracks[k], "%s", name);
  return 0;
}

static int ch__req_reward(ch_schedule *s, const char *name, ch__msg msg) {
  ch_schedule_actions *a = s->pending;
  ch_error e;
  if (ch_file_resolve(name, s->dir, a->reward, sizeof a->reward, &e) != CH_OK)
    return snprintf(msg, sizeof(ch__msg), "%s", e.message);
  /* Load it once now, so that a broken script is reported at the line that switches to it. */
  ch_reward_options opt = {NULL, 0, 0, 0};
  ch_reward *r = NULL;
  if (ch_reward_open(a->reward, &opt, &r, &e) != CH_OK)
    return snprintf(msg, sizeof(ch__msg), "%s", e.message);
  ch_reward_close(r);
  a->set_reward = 1;
  return 0;
}

static int ch__req_checkpoint(ch_schedule *s, const char *name, ch__msg msg) {
  size_t n = strlen(name);
  int ok = n >= 1 && n <= 100 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789._-") == n;
  if (!ok)
    return snprintf(msg, sizeof(ch__msg),
                    "checkpoint name \"%.100s\" must be 1-100 of [A-Za-z0-9._-]", name);
  s->pending->save_checkpoint = 1;
  snprintf(s->pending->checkpoint_name, sizeof s->pending->checkpoint_name, "%s", name);
  return 0;
}

static void ch__req_stop(ch_schedule *s, const char *reason) {
  s->pending->stop = 1;
  snprintf(s->pending->stop_reason, sizeof s->pending->stop_reason, "%s",
           reason && reason[0] ? reason : "on_iteration asked to stop");
}

/* ---- the training object ---------------------------------------------------------------- */

static ch_schedule *ch__self(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* Index of the first real argument: 2 for training:method(...), else 1. */
static int ch__arg(lua_State *L) {
  return lua_rawequal(L, 1, lua_upvalueindex(2)) ? 2 : 1;
}

static int ch__raise(lua_State *L, const char *fn, const ch__msg msg) {
  return luaL_error(L, "training.%s: %s", fn, msg);
}

static int ch__set_lr(lua_State *L) {
  ch__msg msg;
  if (ch__req_lr(ch__self(L), luaL_checknumber(L, ch__arg(L)), msg)) ch__raise(L, "set_lr", msg);
  return 0;
}

static int ch__set_beta_entropy(lua_State *L) {
  ch__msg msg;
  if (ch__req_beta(ch__self(L), luaL_checknumber(L, ch__arg(L)), msg))
    ch__raise(L, "set_beta_entropy", msg);
  return 0;
}

static int ch__set_track(lua_State *L) {
  ch_schedule *s = ch__self(L);
  ch__msg msg;
  if (ch__req_track(s, 0, luaL_checkstring(L, ch__arg(L)), msg)) ch__raise(L, "set_track", msg);
  s->pending->set_tracks = 1;
  s->pending->num_tracks = 1;
  return 0;
}

static int ch__set_tracks(lua_State *L) {
  ch_schedule *s = ch__self(L);
  int a = ch__arg(L);
  luaL_checktype(L, a, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, a);
  if (n < 1 || n > CH_MAX_TRACKS)
    return luaL_error(L, "training.set_tracks: needs a list of 1 to %d track names", CH_MAX_TRACKS);
  for (int k = 0; k < (int)n; k++) {
    ch__msg msg;
    if (lua_rawgeti(L, a, k + 1) != LUA_TSTRING)
      return luaL_error(L, "training.set_tracks: entry %d is not a track name", k + 1);
    if (ch__req_track(s, k, lua_tostring(L, -1), msg)) ch__raise(L, "set_tracks", msg);
    lua_pop(L, 1);
  }
  s->pending->set_tracks = 1;
  s->pending->num_tracks = (int)n;
  return 0;
}

static int ch__set_reward(lua_State *L) {
  ch__msg msg;
  if (ch__req_reward(ch__self(L), luaL_checkstring(L, ch__arg(L)), msg))
    ch__raise(L, "set_reward", msg);
  return 0;
}

static int ch__save_checkpoint(lua_State *L) {
  ch__msg msg;
  if (ch__req_checkpoint(ch__self(L), luaL_checkstring(L, ch__arg(L)), msg))
    ch__raise(L, "save_checkpoint", msg);
  return 0;
}

static int ch__stop(lua_State *L) {
  ch__req_stop(ch__self(L), luaL_optstring(L, ch__arg(L), NULL));
  return 0;
}

static void ch__make_training(ch_schedule *s) {
  static const luaL_Reg fns[] = {{"set_lr", ch__set_lr},
                                 {"set_beta_entropy", ch__set_beta_entropy},
                                 {"set_track", ch__set_track},
                                 {"set_tracks", ch__set_tracks},
                                 {"set_reward", ch__set_reward},
                                 {"save_checkpoint", ch__save_checkpoint},
                                 {"stop", ch__stop},
                                 {NULL, NULL}};
  lua_State *L = s->sb.L;
  lua_createtable(L, 0, 12);
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushlightuserdata(L, s);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, f->func, 2);
    lua_setfield(L, -2, f->name);
  }
  lua_pushvalue(L, -1);
  lua_setglobal(L, "training");
  s->training_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* training.lr, .beta_entropy, .tracks, .reward, .model as they are now. */
static void ch__refresh_training(ch_schedule *s) {
  lua_State *L = s->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->training_ref);
  lua_pushnumber(L, s->lr);
  lua_setfield(L, -2, "lr");
  lua_pushnumber(L, s->beta_entropy);
  lua_setfield(L, -2, "beta_entropy");
  lua_createtable(L, s->num_tracks, 0);
  for (int i = 0; i < s->num_tracks; i++) {
    lua_pushstring(L, s->tracks[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "tracks");
  lua_pushstring(L, s->reward);
  lua_setfield(L, -2, "reward");
  lua_pushstring(L, s->model);
  lua_setfield(L, -2, "model");
  lua_pop(L, 1);
}

/* ---- open, call, close --------------------------------------------------------------------- */

int ch_schedule_open(const ch_train_config *c, ch_schedule **out, ch_error *err) {
  *out = NULL;
  if (!c->has_on_iteration) return CH_OK;
  ch_schedule *s = calloc(1, sizeof *s);
  if (!s) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", c->script);
  snprintf(s->script, sizeof s->script, "%s", c->script);
  ch_dirname(c->script, s->dir, sizeof s->dir);
  s->lr = c->hp.lr;
  s->beta_entropy = c->hp.beta_entropy;
  s->num_tracks = c->num_tracks;
  memcpy(s->tracks, c->tracks, sizeof s->tracks);
  snprintf(s->reward, sizeof s->reward, "%s", c->reward);
  snprintf(s->model, sizeof s->model, "%s", c->model);
  int rc = ch_sandbox_open(&s->sb, 0, CH_SCHEDULE_BUDGET, err);
  if (rc == CH_OK) rc = ch_config_run_script(&s->sb, c->script, err);
  if (rc == CH_OK) {
    lua_State *L = s->sb.L;
    lua_getfield(L, -1, "on_iteration");
    if (!lua_isfunction(L, -1))
      rc = ch_error_set(err, CH_EINVAL, "%s: on_iteration: must be a function(stats, training)",
                        c->script);
    lua_Debug ar;
    lua_pushvalue(L, -1);
    if (rc == CH_OK && lua_getinfo(L, ">S", &ar)) s->fn_line = ar.linedefined;
    s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    ch__make_training(s);
  }
  if (rc != CH_OK) {
    ch_schedule_close(s);
    return rc;
  }
  *out = s;
  return CH_OK;
}

void ch_schedule_close(ch_schedule *s) {
  if (!s) return;
  ch_sandbox_close(&s->sb);
  free(s);
}

static void ch__push_stats(lua_State *L, const ch_iteration_stats *st) {
  lua_createtable(L, 0, 24);
#define CH__INT(f)                                                                                 \
  lua_pushinteger(L, (lua_Integer)st->f);                                                          \
  lua_setfield(L, -2, #f)
#define CH__NUM(f)                                                                                 \
  lua_pushnumber(L, st->f);                                                                        \
  lua_setfield(L, -2, #f)
  CH__INT(iteration);
  CH__INT(episodes);
  CH__INT(total_episodes);
  CH__INT(steps);
  CH__INT(total_steps);
  CH__NUM(mean_reward);
  CH__NUM(mean_progress);
  CH__NUM(completion_rate);
  CH__NUM(rollout_seconds);
  CH__NUM(update_seconds);
  CH__NUM(elapsed_seconds);
  CH__NUM(policy_loss);
  CH__NUM(value_loss);
  CH__NUM(entropy);
  CH__NUM(approx_kl);
  CH__NUM(clip_fraction);
  CH__INT(stale_segments);
  CH__INT(corrupt_segments);
  CH__INT(duplicate_segments);
  CH__INT(eval_laps);
  CH__NUM(eval_lap_time);
#undef CH__INT
#undef CH__NUM
}

/* One key of the returned table (key at -2, value at -1): 0, or a message. */
static int ch__returned(ch_schedule *s, lua_State *L, ch__msg msg) {
  const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
  int t = lua_type(L, -1);
  if (!k) return snprintf(msg, sizeof(ch__msg), "returned a table with a non-name key");
  if ((strcmp(k, "lr") == 0 || strcmp(k, "beta_entropy") == 0) && t != LUA_TNUMBER)
    return snprintf(msg, sizeof(ch__msg), "returned %s = a %s, not a number", k,
                    lua_typename(L, t));
  if (strcmp(k, "lr") == 0) return ch__req_lr(s, lua_tonumber(L, -1), msg);
  if (strcmp(k, "beta_entropy") == 0) return ch__req_beta(s, lua_tonumber(L, -1), msg);
  if (strcmp(k, "stop") == 0) {
    if (t != LUA_TSTRING && t != LUA_TBOOLEAN)
      return snprintf(msg, sizeof(ch__msg), "returned stop = a %s: give a reason or true",
                      lua_typename(L, t));
    if (t == LUA_TSTRING || lua_toboolean(L, -1))
      ch__req_stop(s, t == LUA_TSTRING ? lua_tostring(L, -1) : NULL);
    return 0;
  }
  if (strcmp(k, "tracks") == 0 && t == LUA_TTABLE) {
    int n = (int)lua_rawlen(L, -1);
    if (n < 1 || n > CH_MAX_TRACKS)
      return snprintf(msg, sizeof(ch__msg), "returned tracks: needs 1 to %d names", CH_MAX_TRACKS);
    for (int i = 0; i < n; i++) {
      int bad = lua_rawgeti(L, -1, i + 1) != LUA_TSTRING;
      int r = bad ? snprintf(msg, sizeof(ch__msg), "returned tracks[%d]: not a name", i + 1)
                  : ch__req_track(s, i, lua_tostring(L, -1), msg);
      lua_pop(L, 1);
      if (r) return r;
    }
    s->pending->set_tracks = 1;
    s->pending->num_tracks = n;
    return 0;
  }
  static const char *const strings[] = {"track", "reward", "checkpoint", NULL};
  int w = 0;
  while (strings[w] && strcmp(strings[w], k) != 0) w++;
  if (!strings[w])
    return snprintf(msg, sizeof(ch__msg),
                    "returned an unknown key %s (known: lr, beta_entropy, track, tracks, reward, "
                    "checkpoint, stop)",
                    k);
  if (t != LUA_TSTRING)
    return snprintf(msg, sizeof(ch__msg), "returned %s = a %s, not a string", k,
                    lua_typename(L, t));
  const char *v = lua_tostring(L, -1);
  if (w == 0) {
    int r = ch__req_track(s, 0, v, msg);
    if (!r) s->pending->set_tracks = 1, s->pending->num_tracks = 1;
    return r;
  }
  return w == 1 ? ch__req_reward(s, v, msg) : ch__req_checkpoint(s, v, msg);
}

/* The callback's return value, on top of the stack (popped). */
static int ch__take_result(ch_schedule *s, const ch_iteration_stats *st, ch_error *err) {
  lua_State *L = s->sb.L;
  int t = lua_type(L, -1), r = 0;
  ch__msg msg = "";
  if (t == LUA_TTABLE) {
    lua_pushnil(L);
    while (!r && lua_next(L, -2) != 0) {
      r = ch__returned(s, L, msg);
      lua_pop(L, r ? 2 : 1);
    }
  } else if (t != LUA_TNIL) {
    r = snprintf(msg, sizeof msg, "returned a %s: return nothing or a table of requests",
                 lua_typename(L, t));
  }
  lua_pop(L, 1);
  if (!r) return CH_OK;
  return ch_error_set(err, CH_ESCRIPT, "%s:%d: on_iteration %s (iteration %lld)", s->script,
                      s->fn_line, msg, (long long)st->iteration);
}

/* The trainer applies what was asked: show it as the settings in force from now on. */
static void ch__apply(ch_schedule *s, const ch_schedule_actions *a) {
  if (a->set_lr) s->lr = a->lr;
  if (a->set_beta_entropy) s->beta_entropy = a->beta_entropy;
  if (a->set_tracks) {
    s->num_tracks = a->num_tracks;
    memcpy(s->tracks, a->tracks, sizeof s->tracks);
  }
  if (a->set_reward) snprintf(s->reward, sizeof s->reward, "%s", a->reward);
}

int ch_schedule_on_iteration(ch_schedule *s, const ch_iteration_stats *st, ch_schedule_actions *out,
                             ch_error *err) {
  lua_State *L = s->sb.L;
  memset(out, 0, sizeof *out);
  s->pending = out;
  ch__refresh_training(s);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->fn_ref);
  ch__push_stats(L, st);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->training_ref);
  ch_error e;
  int rc = ch_sandbox_call(&s->sb, 2, 1, &e);
  if (rc != CH_OK)
    rc = ch_error_set(err, CH_ESCRIPT, "%s (on_iteration at iteration %lld)", e.message,
                      (long long)st->iteration);
  else
    rc = ch__take_result(s, st, err);
  s->pending = NULL;
  if (rc != CH_OK) {
    memset(out, 0, sizeof *out);
    return rc;
  }
  ch__apply(s, out);
  return CH_OK;
}
