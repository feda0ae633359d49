/* lua_train.c -- chicane.train(script, opts): run a training script to a stop condition. */
#include "lua_internal.h"

#include "trainer.h"

#include <string.h>

static void ch__num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void ch__int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void ch__push_stats(lua_State *L, const ch_iteration_stats *s) {
  lua_createtable(L, 0, 20);
  ch__int(L, "iteration", s->iteration);
  ch__int(L, "episodes", s->episodes);
  ch__int(L, "total_episodes", s->total_episodes);
  ch__int(L, "steps", s->steps);
  ch__int(L, "total_steps", s->total_steps);
  ch__num(L, "mean_reward", s->mean_reward);
  ch__num(L, "mean_progress", s->mean_progress);
  ch__num(L, "completion_rate", s->completion_rate);
  ch__num(L, "rollout_seconds", s->rollout_seconds);
  ch__num(L, "update_seconds", s->update_seconds);
  ch__num(L, "elapsed_seconds", s->elapsed_seconds);
  ch__num(L, "policy_loss", s->policy_loss);
  ch__num(L, "value_loss", s->value_loss);
  ch__num(L, "entropy", s->entropy);
  ch__num(L, "approx_kl", s->approx_kl);
  ch__num(L, "clip_fraction", s->clip_fraction);
  if (s->eval_laps >= 0) {
    ch__int(L, "eval_laps", s->eval_laps);
    ch__num(L, "eval_lap_time", s->eval_lap_time);
  }
}

/* chicane.train(script[, {name=, max_seconds=, max_iterations=, replace=, quiet=}]) -> summary */
static int ch__train(lua_State *L) {
  static const char *const keys[] = {"name",    "max_seconds", "max_iterations",
                                     "replace", "quiet",       NULL};
  const char *fn = "chicane.train", *script = luaL_checkstring(L, 1);
  ch_lua_check_options(L, 2, fn, keys);
  const char *name = ch_lua_opt_string(L, 2, fn, "name", NULL);
  double max_seconds = ch_lua_opt_number(L, 2, fn, "max_seconds", 0);
  lua_Integer max_iterations = ch_lua_opt_integer(L, 2, fn, "max_iterations", 0);
  if (max_seconds < 0 || max_iterations < 0)
    return luaL_error(L, "%s: max_seconds and max_iterations must be > 0", fn);
  /* The config is large; as a userdata it is freed even when an error unwinds. */
  ch_train_config *cfg = lua_newuserdatauv(L, sizeof *cfg, 0);
  ch_error err = {0, ""};
  if (ch_config_load(script, cfg, &err) != CH_OK) return ch_lua_fail(L, fn, &err);
  if (name) snprintf(cfg->model, sizeof cfg->model, "%s", name);
  if (max_seconds > 0) cfg->stop.max_seconds = max_seconds;
  if (max_iterations > 0) cfg->stop.max_iterations = max_iterations;
  if (ch_config_validate(cfg, &err) != CH_OK) return ch_lua_fail(L, fn, &err);
  const ch_lua_home *h = ch_lua_home_get(L);
  ch_train_options o;
  memset(&o, 0, sizeof o); /* in-process workers, storage given as a spec */
  o.storage_root = h->storage;
  o.catalog_path = h->catalog;
  o.replace = ch_lua_opt_bool(L, 2, fn, "replace", 0);
  o.quiet = ch_lua_opt_bool(L, 2, fn, "quiet", 0);
  ch_train_summary sum;
  memset(&sum, 0, sizeof sum);
  if (ch_train(cfg, &o, &sum, &err) != CH_OK) return ch_lua_fail(L, fn, &err);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, cfg->model);
  lua_setfield(L, -2, "model");
  ch__int(L, "iterations", sum.iterations);
  ch__int(L, "episodes", sum.episodes);
  ch__int(L, "env_steps", sum.env_steps);
  ch__num(L, "seconds", sum.seconds);
  lua_pushstring(L, sum.stop_reason);
  lua_setfield(L, -2, "stop_reason");
  ch__push_stats(L, &sum.last);
  lua_setfield(L, -2, "last");
  return 1;
}

void ch_lua_open_train(lua_State *L) {
  lua_pushcfunction(L, ch__train);
  lua_setfield(L, -2, "train");
}
