/* evaluate.c -- runs evaluation trials: greedy actions, put back on the track after leaving it. */
#include "evaluate.h"

#include "model.h"
#include "paths.h"
#include "ppo.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ch_eval_defaults(ch_eval_options *o) {
  *o = (ch_eval_options){3, 5.0, 180.0};
}

char *ch_eval_env_config(const char *track_path, const ch_eval_options *o) {
  cJSON *cfg = cJSON_CreateObject();
  cJSON_AddStringToObject(cfg, "track", track_path);
  cJSON_AddNumberToObject(cfg, "num_cars", 1);
  cJSON_AddNumberToObject(cfg, "max_steps", ceil(o->max_seconds * 15.0));
  char *json = cJSON_PrintUnformatted(cfg);
  cJSON_Delete(cfg);
  return json;
}

/* One trial from the start line; the car is put back whenever an episode rule would end it. */
static int ch__trial(ch_env *env, ch_net *net, const ch_action *actions, int A,
                     const ch_eval_options *o, ch_eval_trial *t, ch_error *err) {
  float obs[1024], logits[CH_MAX_ACTIONS], steer, speed;
  ch_env_params p;
  int32_t status = 0;
  if (env->spec.obs_size > 1024)
    return ch_error_set(err, CH_EINVAL, "observation of %u floats too large for evaluation",
                        env->spec.obs_size);
  ch_env_reset start = {0.0, 0.0, 0, 0, 0};
  int rc = env->vt->reset(env->h, 0, &start, obs, NULL, &p, err);
  memset(t, 0, sizeof *t);
  while (rc == CH_OK) {
    rc = net->vt->forward(net->h, obs, 1, logits, NULL, err);
    if (rc != CH_OK) break;
    const ch_action *a = &actions[ch_policy_argmax(logits, A)];
    steer = (float)a->steering_angle;
    speed = (float)a->speed;
    rc = env->vt->step(env->h, &steer, &speed, NULL, obs, NULL, &p, &status, err);
    if (rc != CH_OK) break;
    t->progress = p.progress;
    t->steps = p.steps;
    if (status == CH_EPISODE_LAP_COMPLETE || status == CH_EPISODE_TIME_UP) break;
    if (status != CH_EPISODE_IN_PROGRESS) {
      t->off_track += status == CH_EPISODE_OFF_TRACK || status == CH_EPISODE_CRASHED;
      rc = env->vt->recover(env->h, 0, obs, NULL, &p, err);
    }
  }
  t->completed = status == CH_EPISODE_LAP_COMPLETE;
  t->lap_time = t->steps * env->spec.step_seconds + t->off_track * o->penalty_seconds;
  return rc;
}

int ch_eval_run(ch_env *env, ch_net *net, const ch_action *actions, int num_actions,
                const ch_eval_options *o, ch_eval_result *out, ch_error *err) {
  memset(out, 0, sizeof *out);
  if (o->trials < 1 || o->trials > CH_EVAL_MAX_TRIALS)
    return ch_error_set(err, CH_EINVAL, "trials must be 1..%d", CH_EVAL_MAX_TRIALS);
  for (int i = 0; i < o->trials; i++) {
    int rc = ch__trial(env, net, actions, num_actions, o, &out->trial[i], err);
    if (rc != CH_OK) return rc;
    out->completed_laps += out->trial[i].completed;
    out->trials = i + 1;
  }
  return CH_OK;
}

static const char *ch__json_string(const cJSON *o, const char *key, const char *fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : fallback;
}

/* Plugins and instances for acting with a loaded model. */
typedef struct ch__actor {
  ch_plugin *env_p, *net_p;
  ch_env env;
  ch_net net;
} ch__actor;

static int ch__actor_open(ch__actor *a, const ch_loaded_model *m, const char *track_path,
                          const ch_eval_options *o, ch_error *err) {
  const cJSON *plugins = cJSON_GetObjectItem(m->config, "plugins");
  const cJSON *netcfg = cJSON_GetObjectItem(m->config, "network_config");
  if (!cJSON_IsObject(netcfg))
    return ch_error_set(err, CH_ECORRUPT, "model '%s': no network_config in its configuration",
                        m->info.name);
  int rc = ch_plugin_find(CH_PLUGIN_ENV, ch__json_string(plugins, "env", "sim2d"), &a->env_p, err);
  if (rc == CH_OK)
    rc = ch_plugin_find(CH_PLUGIN_NETWORK, ch__json_string(plugins, "network", "mlp"), &a->net_p,
                        err);
  char *env_json = rc == CH_OK ? ch_eval_env_config(track_path, o) : NULL;
  if (rc == CH_OK) rc = ch_env_create(a->env_p, env_json, &a->env, err);
  free(env_json);
  char *net_json = rc == CH_OK ? cJSON_PrintUnformatted(netcfg) : NULL;
  if (rc == CH_OK) rc = ch_net_create(a->net_p, net_json, &a->net, err);
  cJSON_free(net_json);
  if (rc == CH_OK) rc = a->net.vt->load(a->net.h, m->blob, m->blob_len, err);
  if (rc == CH_OK && a->net.spec.input_size != a->env.spec.obs_size)
    rc = ch_error_set(err, CH_EINVAL, "model '%s' expects %u inputs, the env gives %u",
                      m->info.name, a->net.spec.input_size, a->env.spec.obs_size);
  return rc;
}

static void ch__actor_close(ch__actor *a) {
  ch_net_destroy(&a->net);
  ch_env_destroy(&a->env);
  ch_plugin_close(a->net_p);
  ch_plugin_close(a->env_p);
}

int ch_evaluate_model(ch_session *s, const char *model, const char *track, const ch_eval_options *o,
                      ch_eval_result *out, char *track_out, size_t track_out_len, ch_error *err) {
  ch_loaded_model m;
  int rc = ch_model_load(s, model, &m, err);
  if (rc != CH_OK) {
    ch_loaded_model_free(s, &m);
    return rc;
  }
  const char *name = track ? track : m.info.track;
  char path[CH_PATH_MAX];
  snprintf(track_out, track_out_len, "%s", name);
  ch__actor a;
  memset(&a, 0, sizeof a);
  rc = ch_resolve_track(name, path, sizeof path, err);
  if (rc == CH_OK) rc = ch__actor_open(&a, &m, path, o, err);
  if (rc == CH_OK) rc = ch_eval_run(&a.env, &a.net, m.actions, m.num_actions, o, out, err);
  ch__actor_close(&a);
  ch_loaded_model_free(s, &m);
  return rc;
}
