/* evaluate.c -- evaluation trials, their sim-traces, reference-lap ratios and stored results. */
#include "evaluate.h"

#include "log.h"
#include "model.h"
#include "model_io.h"
#include "obs.h"
#include "paths.h"
#include "policy.h"
#include "reward.h"
#include "track.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

void ch_eval_defaults(ch_eval_options *o) {
  memset(o, 0, sizeof *o);
  o->trials = 3;
  o->penalty_seconds = 5.0;
  o->max_seconds = 180.0;
  o->crash_penalty_seconds = 5.0;
  o->seed = 1;
}

/* Copy every item of extra into cfg, replacing items of the same name. */
static void ch__merge(cJSON *cfg, const cJSON *extra) {
  const cJSON *item;
  cJSON_ArrayForEach(item, extra) {
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, item->string);
    cJSON_AddItemToObject(cfg, item->string, cJSON_Duplicate(item, 1));
  }
}

char *ch_eval_env_config(const char *track_path, const ch_eval_options *o) {
  cJSON *extra = NULL;
  if (o->env_json && !cJSON_IsObject(extra = cJSON_Parse(o->env_json))) {
    cJSON_Delete(extra);
    return NULL;
  }
  cJSON *cfg = cJSON_CreateObject();
  if (o->race_type) cJSON_AddStringToObject(cfg, "race_type", o->race_type);
  ch__merge(cfg, extra);
  /* What makes this an evaluation env wins over any model or user key. */
  static const char *const own[] = {"track", "num_cars", "max_steps"};
  for (int i = 0; i < 3; i++) cJSON_DeleteItemFromObjectCaseSensitive(cfg, own[i]);
  cJSON_AddStringToObject(cfg, "track", track_path);
  cJSON_AddNumberToObject(cfg, "num_cars", 1);
  cJSON_AddNumberToObject(cfg, "max_steps", ceil(o->max_seconds * 15.0));
  char *json = cJSON_PrintUnformatted(cfg);
  cJSON_Delete(cfg);
  cJSON_Delete(extra);
  return json;
}

/* ---- the trials ------------------------------------------------------------------------ */

/* State of one ch_eval_run: buffers sized from the env and network specs. */
typedef struct ch__evaluator {
  ch_env *env;
  ch_net *net;
  const ch_action *actions;
  int num_actions;
  const ch_eval_options *o;
  uint32_t image_size;
  float *obs, *input, *policy;
  uint8_t *image;
  double *waypoints;
  uint32_t num_waypoints;
  double clock; /* simulated seconds since the evaluation began, pauses included */
} ch__evaluator;

static void ch__evaluator_free(ch__evaluator *ev) {
  free(ev->obs);
  free(ev->input);
  free(ev->policy);
  free(ev->image);
  free(ev->waypoints);
}

static int ch__evaluator_init(ch__evaluator *ev, ch_env *env, ch_net *net, ch_error *err) {
  const ch_env_spec *sp = &env->spec;
  ev->image_size = sp->image_width * sp->image_height * sp->image_channels;
  if (net->spec.input_size != ev->image_size + sp->obs_size)
    return ch_error_set(
        err, CH_EINVAL, "the network takes %u inputs, the env gives %u (image %u + vector %u)",
        net->spec.input_size, ev->image_size + sp->obs_size, ev->image_size, sp->obs_size);
  size_t outputs = ev->o->space ? ch_policy_output_size(ev->o->space) : (size_t)ev->num_actions;
  if (outputs < 1 || net->spec.policy_size < outputs)
    return ch_error_set(err, CH_EINVAL, "the network gives %u policy outputs, the actions need %zu",
                        net->spec.policy_size, outputs);
  int n = env->vt->waypoints(env->h, NULL, 0);
  ev->obs = malloc(sizeof(float) * (sp->obs_size + 1));
  ev->input = malloc(sizeof(float) * (net->spec.input_size + 1));
  ev->policy = malloc(sizeof(float) * (net->spec.policy_size + 1));
  ev->image = malloc(ev->image_size + 1);
  ev->waypoints = malloc(sizeof(double) * 2 * (size_t)(n > 0 ? n : 1));
  if (!ev->obs || !ev->input || !ev->policy || !ev->image || !ev->waypoints)
    return ch_error_set(err, CH_ENOMEM, "evaluation: out of memory");
  int got = n > 0 ? env->vt->waypoints(env->h, ev->waypoints, (uint32_t)n) : n;
  if (got < 0) return ch_error_set(err, got, "evaluation: the env cannot list its waypoints");
  ev->num_waypoints = (uint32_t)got;
  return CH_OK;
}

/* The nearer of the two closest waypoints the env reports. */
static int32_t ch__closest_waypoint(const ch__evaluator *ev, const ch_env_params *p) {
  int32_t best = p->closest_waypoints[0];
  double bd = INFINITY;
  for (int k = 0; k < 2; k++) {
    int32_t i = p->closest_waypoints[k];
    if (i < 0 || (uint32_t)i >= ev->num_waypoints) continue;
    double dx = ev->waypoints[2 * i] - p->x, dy = ev->waypoints[2 * i + 1] - p->y;
    if (dx * dx + dy * dy < bd) {
      bd = dx * dx + dy * dy;
      best = i;
    }
  }
  return best;
}

/* One sim-trace row: appended to the trace and handed to on_step. */
typedef struct ch__row_args {
  int trial;
  int32_t action, status;
  double steer, speed, reward, pause;
  int done;
} ch__row_args;

static int ch__emit(ch__evaluator *ev, const ch_env_params *p, const ch__row_args *a,
                    ch_error *err) {
  const ch_eval_options *o = ev->o;
  if (!o->trace && !o->on_step) return CH_OK;
  ch_simtrace_row r = {a->trial - 1,
                       a->status == CH_SIMTRACE_PREPARE ? 0 : p->steps,
                       p->x,
                       p->y,
                       p->heading,
                       a->steer,
                       a->speed,
                       a->action,
                       a->reward,
                       a->done,
                       p->all_wheels_on_track != 0,
                       p->progress,
                       ch__closest_waypoint(ev, p),
                       p->track_length,
                       ev->clock,
                       a->status,
                       a->pause};
  if (o->trace) {
    int rc = ch_simtrace_add(o->trace, &r);
    if (rc != CH_OK)
      return ch_error_set(err, rc, "evaluation trial %d step %d: cannot write the sim-trace row",
                          a->trial, (int)r.steps);
  }
  if (o->on_step) o->on_step(o->on_step_user, a->trial, &r, p);
  return CH_OK;
}

/* Forward the current observation and pick the greedy action. */
static int ch__act(ch__evaluator *ev, int32_t *index, float *steer, float *speed, ch_error *err) {
  const ch_env_spec *sp = &ev->env->spec;
  ch_obs_input(ev->obs, sp->obs_size, ev->image, ev->image_size, ev->input);
  int rc = ev->net->vt->forward(ev->net->h, ev->input, 1, ev->policy, NULL, err);
  if (rc != CH_OK) return rc;
  const ch_policy_space *space = ev->o->space;
  if (space) {
    float action[CH_POLICY_DIMS], logp;
    double st, sp;
    uint64_t rng = 0; /* greedy acting draws nothing */
    ch_policy_act(space, ev->policy, CH_ACT_GREEDY, 0, &rng, action, &logp, &st, &sp);
    *index = space->continuous ? -1 : (int32_t)action[0];
    *steer = (float)st;
    *speed = (float)sp;
    return CH_OK;
  }
  *index = ch_policy_argmax(ev->policy, ev->num_actions);
  *steer = (float)ev->actions[*index].steering_angle;
  *speed = (float)ev->actions[*index].speed;
  return CH_OK;
}

static uint8_t *ch__image_out(ch__evaluator *ev) {
  return ev->image_size ? ev->image : NULL;
}

/* What a step's status costs and whether the car is put back: the evaluation rules. */
static double ch__pause_for(const ch__evaluator *ev, int32_t status, ch_eval_trial *t) {
  if (status == CH_EPISODE_OFF_TRACK) {
    t->off_track++;
    return ev->o->penalty_seconds;
  }
  if (status == CH_EPISODE_CRASHED) {
    t->crashes++;
    return ev->o->crash_penalty_seconds;
  }
  return 0; /* immobilized or reversed: put back without a penalty */
}

static int ch__step(ch__evaluator *ev, int trial, ch_eval_trial *t, ch_env_params *p,
                    int32_t *status, ch_error *err) {
  int32_t a;
  float steer, speed;
  int rc = ch__act(ev, &a, &steer, &speed, err);
  if (rc == CH_OK)
    rc = ev->env->vt->step(ev->env->h, &steer, &speed, NULL, ev->obs, ch__image_out(ev), p, status,
                           err);
  if (rc != CH_OK) return rc;
  double reward = 0;
  if (ev->o->reward && (rc = ch_reward_call(ev->o->reward, p, &reward, err)) != CH_OK) return rc;
  ev->clock += ev->env->spec.step_seconds;
  t->progress = p->progress;
  t->steps = p->steps;
  t->status = *status;
  int done = *status == CH_EPISODE_LAP_COMPLETE || *status == CH_EPISODE_TIME_UP;
  double pause = done || *status == CH_EPISODE_IN_PROGRESS ? 0 : ch__pause_for(ev, *status, t);
  ch__row_args r = {trial, a, *status, steer, speed, reward, pause, done};
  rc = ch__emit(ev, p, &r, err);
  ev->clock += pause;
  if (rc == CH_OK && !done && *status != CH_EPISODE_IN_PROGRESS)
    rc = ev->env->vt->recover(ev->env->h, 0, ev->obs, ch__image_out(ev), p, err);
  return rc;
}

/* One trial from the start line; the car is put back whenever an episode rule would end it. */
static int ch__trial(ch__evaluator *ev, int trial, ch_eval_trial *t, ch_error *err) {
  const ch_eval_options *o = ev->o;
  ch_env_params p;
  int32_t status = CH_EPISODE_IN_PROGRESS;
  memset(t, 0, sizeof *t);
  ch_env_reset start = {0.0, 0.0, 0, 0, o->seed + (uint64_t)(trial - 1)};
  int rc = ev->env->vt->reset(ev->env->h, 0, &start, ev->obs, ch__image_out(ev), &p, err);
  ch__row_args prep = {trial, -1, CH_SIMTRACE_PREPARE, 0, 0, 0, 0, 0};
  if (rc == CH_OK) rc = ch__emit(ev, &p, &prep, err);
  while (rc == CH_OK && status != CH_EPISODE_LAP_COMPLETE && status != CH_EPISODE_TIME_UP)
    rc = ch__step(ev, trial, t, &p, &status, err);
  t->completed = status == CH_EPISODE_LAP_COMPLETE;
  t->drive_seconds = t->steps * ev->env->spec.step_seconds;
  t->lap_time =
      t->drive_seconds + t->off_track * o->penalty_seconds + t->crashes * o->crash_penalty_seconds;
  t->ratio = t->completed && o->reference_lap > 0 ? t->lap_time / o->reference_lap : 0;
  return rc;
}

static void ch__summarise(ch_eval_result *r, double reference_lap) {
  r->reference_lap = reference_lap > 0 ? reference_lap : 0;
  for (int i = 0; i < r->trials; i++) {
    const ch_eval_trial *t = &r->trial[i];
    r->off_track += t->off_track;
    r->crashes += t->crashes;
    if (t->completed && (r->best_lap_time == 0 || t->lap_time < r->best_lap_time))
      r->best_lap_time = t->lap_time;
  }
  r->best_ratio =
      r->best_lap_time > 0 && r->reference_lap > 0 ? r->best_lap_time / r->reference_lap : 0;
}

int ch_eval_run(ch_env *env, ch_net *net, const ch_action *actions, int num_actions,
                const ch_eval_options *o, ch_eval_result *out, ch_error *err) {
  memset(out, 0, sizeof *out);
  if (o->trials < 1 || o->trials > CH_EVAL_MAX_TRIALS)
    return ch_error_set(err, CH_EINVAL, "trials must be 1..%d", CH_EVAL_MAX_TRIALS);
  ch__evaluator ev;
  memset(&ev, 0, sizeof ev);
  ev.env = env;
  ev.net = net;
  ev.actions = actions;
  ev.num_actions = num_actions;
  ev.o = o;
  int rc = ch__evaluator_init(&ev, env, net, err);
  for (int i = 0; rc == CH_OK && i < o->trials; i++) {
    rc = ch__trial(&ev, i + 1, &out->trial[i], err);
    if (rc != CH_OK) break;
    out->completed_laps += out->trial[i].completed;
    out->trials = i + 1;
  }
  ch__evaluator_free(&ev);
  ch__summarise(out, o->reference_lap);
  return rc;
}

/* ---- evaluating a stored model --------------------------------------------------------- */

static const char *ch__json_string(const cJSON *o, const char *key, const char *fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : fallback;
}

static int ch__is_camera(const char *sensor) {
  static const char *const names[] = {"camera", "stereo", "FRONT_FACING_CAMERA", "STEREO_CAMERAS"};
  for (int i = 0; i < 4; i++)
    if (strcmp(sensor, names[i]) == 0) return 1;
  return 0;
}

/* The env keys of a training configuration, as the training script's front end gives them to
** the env: only what differs from the env's defaults. */
static cJSON *ch__config_env(const cJSON *config) {
  cJSON *out = cJSON_CreateObject();
  const cJSON *sensors = cJSON_GetObjectItemCaseSensitive(config, "sensor"), *v;
  int camera = 0, plain = cJSON_GetArraySize(sensors) == 1;
  cJSON_ArrayForEach(v, sensors) {
    camera |= cJSON_IsString(v) && ch__is_camera(v->valuestring);
    plain &= cJSON_IsString(v) && strcmp(v->valuestring, "state") == 0;
  }
  if (cJSON_IsArray(sensors) && !plain)
    cJSON_AddItemToObject(out, "sensors", cJSON_Duplicate(sensors, 1));
  static const char *const keys[] = {"camera", "lidar", "objects", "bots"};
  for (int i = 0; i < 4; i++) {
    v = cJSON_GetObjectItemCaseSensitive(config, keys[i]);
    if (cJSON_IsObject(v) && (i != 0 || camera))
      cJSON_AddItemToObject(out, keys[i], cJSON_Duplicate(v, 1));
  }
  const char *race = ch__json_string(config, "race_type", "time_trial");
  if (strcmp(race, "time_trial") != 0) cJSON_AddStringToObject(out, "race_type", race);
  return out;
}

/*
** The env keys a model was trained with that an evaluation must keep (its sensors, race type,
** objects, bots): those of the first env config the trainer stored for its workers
** (models/NAME/worker.json), else derived from its training configuration.
*/
static cJSON *ch__model_env(ch_session *s, const ch_loaded_model *m) {
  char key[512];
  void *data = NULL;
  size_t len = 0;
  snprintf(key, sizeof key, "models/%s/worker.json", m->info.name);
  cJSON *spec = NULL, *env = NULL;
  if (s->st->get(s->st_h, key, &data, &len, NULL) == CH_OK) {
    spec = cJSON_ParseWithLength(data, len);
    s->st->free_data(s->st_h, data);
  }
  const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "envs"), 0);
  env = cJSON_IsObject(first) ? cJSON_Duplicate(first, 1) : ch__config_env(m->config);
  cJSON_Delete(spec);
  return env;
}

/* The evaluation's env options: the model's env keys, then the caller's race type and keys. */
static char *ch__env_options(ch_session *s, const ch_loaded_model *m, const ch_eval_options *o,
                             ch_error *err) {
  cJSON *env = ch__model_env(s, m), *extra = NULL;
  if (o->env_json && !cJSON_IsObject(extra = cJSON_Parse(o->env_json))) {
    cJSON_Delete(env);
    cJSON_Delete(extra);
    ch_error_set(err, CH_EINVAL, "evaluation env options are not a JSON object: %.200s",
                 o->env_json);
    return NULL;
  }
  if (o->race_type) {
    /* Another race type than the model's: its objects or bots do not belong to it. */
    cJSON_DeleteItemFromObjectCaseSensitive(env, "race_type");
    if (strcmp(o->race_type, "object_avoidance") != 0)
      cJSON_DeleteItemFromObjectCaseSensitive(env, "objects");
    if (strcmp(o->race_type, "head_to_head") != 0)
      cJSON_DeleteItemFromObjectCaseSensitive(env, "bots");
    cJSON_AddStringToObject(env, "race_type", o->race_type);
  }
  ch__merge(env, extra);
  char *json = cJSON_PrintUnformatted(env);
  cJSON_Delete(env);
  cJSON_Delete(extra);
  if (!json) ch_error_set(err, CH_ENOMEM, "out of memory");
  return json;
}

/* Plugins, instances and options for acting with a loaded model. */
typedef struct ch__actor {
  ch_plugin *env_p, *net_p;
  ch_env env;
  ch_net net;
  ch_reward *reward;
  ch_eval_options o; /* the caller's, with env_json, race_type, reference and reward set */
  char *env_json;
  char race_type[32];
} ch__actor;

static int ch__actor_plugins(ch__actor *a, const ch_loaded_model *m, const char *track_path,
                             ch_error *err) {
  const cJSON *plugins = cJSON_GetObjectItem(m->config, "plugins");
  const cJSON *netcfg = cJSON_GetObjectItem(m->config, "network_config");
  if (!cJSON_IsObject(netcfg))
    return ch_error_set(err, CH_ECORRUPT, "model '%s': no network_config in its configuration",
                        m->info.name);
  int rc = ch_plugin_find(CH_PLUGIN_ENV, ch__json_string(plugins, "env", "sim2d"), &a->env_p, err);
  if (rc == CH_OK)
    rc = ch_plugin_find(CH_PLUGIN_NETWORK, ch__json_string(plugins, "network", "mlp"), &a->net_p,
                        err);
  char *env_json = rc == CH_OK ? ch_eval_env_config(track_path, &a->o) : NULL;
  if (rc == CH_OK && !env_json) rc = ch_error_set(err, CH_ENOMEM, "out of memory");
  if (rc == CH_OK) rc = ch_env_create(a->env_p, env_json, &a->env, err);
  free(env_json);
  char *net_json = rc == CH_OK ? cJSON_PrintUnformatted(netcfg) : NULL;
  if (rc == CH_OK) rc = ch_net_create(a->net_p, net_json, &a->net, err);
  cJSON_free(net_json);
  if (rc == CH_OK) rc = a->net.vt->load(a->net.h, m->blob, m->blob_len, err);
  return rc;
}

/* The track's racing-line lap time; 0 (with a warning) when it cannot be computed. */
static double ch__reference_lap(const char *track_path) {
  ch_track *t = NULL;
  ch_error e = {0, ""};
  double seconds = 0;
  int rc = ch_track_load(track_path, &t, &e);
  if (rc == CH_OK) rc = ch_track_reference_lap(t, &seconds, &e);
  ch_track_free(t);
  if (rc == CH_OK) return seconds;
  ch_log(CH_LOG_WARN, "evaluate", "no reference lap for %s: %s", track_path, e.message);
  return 0;
}

/* The track's racing line for params.racing_line, in one block: x, y pairs then speeds (empty
** when it cannot be computed: a reward script then sees empty tables, as the env documents). */
static double *ch__racing_line(const char *track_path, ch_reward_extra *x) {
  ch_track *t = NULL;
  ch_racing_line *rl = NULL;
  ch_car_limits car;
  ch_car_limits_default(&car);
  memset(x, 0, sizeof *x);
  double *block = NULL;
  if (ch_track_load(track_path, &t, NULL) == CH_OK &&
      ch_track_racing_line(t, &car, &rl, NULL) == CH_OK &&
      (block = malloc(sizeof(double) * 3 * (size_t)rl->n))) {
    for (int i = 0; i < rl->n; i++) {
      block[2 * i] = rl->x[i];
      block[2 * i + 1] = rl->y[i];
      block[2 * rl->n + i] = rl->v[i];
    }
    x->racing_line = block;
    x->racing_line_speed = block + 2 * rl->n;
    x->num_racing_line = (uint32_t)rl->n;
  }
  ch_racing_line_free(rl);
  ch_track_free(t);
  return block;
}

/* A private temporary copy of an object (the sandbox loads scripts by path). */
static int ch__temp_copy(ch_session *s, const char *key, char *path, size_t cap, ch_error *err) {
  void *text = NULL;
  size_t len = 0;
  int rc = s->st->get(s->st_h, key, &text, &len, err);
  if (rc != CH_OK) return rc;
  const char *tmp = getenv("TMPDIR");
  snprintf(path, cap, "%.200s/chicane-reward-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(path);
  int ok = fd >= 0 && write(fd, text, len) == (ssize_t)len;
  if (fd >= 0) close(fd);
  s->st->free_data(s->st_h, text);
  if (ok) return CH_OK;
  if (fd >= 0) unlink(path);
  return ch_error_set(err, CH_EIO, "%s: cannot write a temporary copy of %s", path, key);
}

/* The model's stored reward script with the params a trainer's workers give it; a model that
** has none evaluates with rewards of 0. */
static int ch__open_reward(ch_session *s, ch__actor *a, const ch_loaded_model *m,
                           const char *track_path, ch_error *err) {
  char key[512], path[256];
  snprintf(key, sizeof key, "models/%s/reward_function.lua", m->info.name);
  void *probe = NULL;
  size_t len = 0;
  if (s->st->get(s->st_h, key, &probe, &len, NULL) == CH_ENOTFOUND) return CH_OK;
  if (probe) s->st->free_data(s->st_h, probe);
  int rc = ch__temp_copy(s, key, path, sizeof path, err);
  if (rc != CH_OK) return rc;
  ch_reward_options ro;
  memset(&ro, 0, sizeof ro);
  int n = a->env.vt->waypoints(a->env.h, NULL, 0);
  double *wp = n > 0 ? malloc(sizeof(double) * 2 * (size_t)n) : NULL;
  if (wp && a->env.vt->waypoints(a->env.h, wp, (uint32_t)n) == n) {
    ro.waypoints = wp;
    ro.num_waypoints = (uint32_t)n;
  }
  ch_reward_extra extra;
  double *line = ch__racing_line(track_path, &extra);
  rc = ch_reward_open_extra(path, &ro, &extra, &a->reward, err);
  unlink(path);
  free(line);
  free(wp);
  return rc;
}

static int ch__actor_open(ch_session *s, ch__actor *a, const ch_loaded_model *m,
                          const char *track_path, const ch_eval_options *o, ch_error *err) {
  a->o = *o;
  a->env_json = ch__env_options(s, m, o, err);
  if (!a->env_json) return err ? err->code : CH_EINVAL;
  a->o.env_json = a->env_json;
  a->o.race_type = NULL; /* already in env_json */
  cJSON *env = cJSON_Parse(a->env_json);
  snprintf(a->race_type, sizeof a->race_type, "%s",
           ch__json_string(env, "race_type", "time_trial"));
  cJSON_Delete(env);
  int rc = ch__actor_plugins(a, m, track_path, err);
  if (rc == CH_OK && a->o.reference_lap <= 0) a->o.reference_lap = ch__reference_lap(track_path);
  if (rc == CH_OK && o->trace && !o->reward) rc = ch__open_reward(s, a, m, track_path, err);
  if (a->reward) a->o.reward = a->reward;
  return rc;
}

static void ch__actor_close(ch__actor *a) {
  ch_reward_close(a->reward);
  ch_net_destroy(&a->net);
  ch_env_destroy(&a->env);
  ch_plugin_close(a->net_p);
  ch_plugin_close(a->env_p);
  free(a->env_json);
}

/* What ch_evaluate_model found out besides the result. */
typedef struct ch__evaluated {
  int64_t iteration;
  char race_type[32];
} ch__evaluated;

static int ch__evaluate(ch_session *s, const char *model, const char *track,
                        const ch_eval_options *o, ch_eval_result *out, char *track_out,
                        size_t track_out_len, ch__evaluated *info, ch_error *err) {
  memset(out, 0, sizeof *out);
  ch_loaded_model m;
  int rc = ch_model_load(s, model, &m, err);
  if (rc != CH_OK) {
    ch_loaded_model_free(s, &m);
    return rc;
  }
  const char *name = track ? track : m.info.track ? m.info.track : "";
  char path[CH_PATH_MAX];
  snprintf(track_out, track_out_len, "%s", name);
  ch__actor a;
  memset(&a, 0, sizeof a);
  rc = ch_resolve_track(name, path, sizeof path, err);
  if (rc == CH_OK) rc = ch__actor_open(s, &a, &m, path, o, err);
  if (!a.o.space) a.o.space = &m.space; /* continuous models act with their ranges */
  if (rc == CH_OK) rc = ch_eval_run(&a.env, &a.net, m.actions, m.num_actions, &a.o, out, err);
  if (info) {
    info->iteration = m.iteration;
    snprintf(info->race_type, sizeof info->race_type, "%s", a.race_type);
  }
  ch__actor_close(&a);
  ch_loaded_model_free(s, &m);
  return rc;
}

int ch_evaluate_model(ch_session *s, const char *model, const char *track, const ch_eval_options *o,
                      ch_eval_result *out, char *track_out, size_t track_out_len, ch_error *err) {
  return ch__evaluate(s, model, track, o, out, track_out, track_out_len, NULL, err);
}

/* ---- results as JSON ------------------------------------------------------------------- */

static void ch__add_known(cJSON *o, const char *key, double v) {
  if (v > 0)
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static cJSON *ch__trial_json(int i, const ch_eval_trial *t) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "trial", i + 1);
  cJSON_AddNumberToObject(j, "progress", t->progress);
  ch__add_known(j, "lap_time", t->completed ? t->lap_time : 0);
  ch__add_known(j, "ratio", t->ratio);
  cJSON_AddNumberToObject(j, "off_track", t->off_track);
  cJSON_AddNumberToObject(j, "crashes", t->crashes);
  cJSON_AddBoolToObject(j, "completed", t->completed);
  cJSON_AddNumberToObject(j, "steps", t->steps);
  const char *status = ch_simtrace_status_name(t->status);
  cJSON_AddStringToObject(j, "status", status ? status : "in_progress");
  return j;
}

cJSON *ch_eval_results_json(const char *model, int64_t iteration, const char *track,
                            const char *race_type, int64_t created, const ch_eval_options *o,
                            const ch_eval_result *r, const char *simtrace_key) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", model);
  cJSON_AddNumberToObject(root, "iteration", (double)iteration);
  cJSON_AddStringToObject(root, "track", track);
  cJSON_AddStringToObject(root, "race_type", race_type ? race_type : "time_trial");
  cJSON_AddNumberToObject(root, "created", (double)created);
  cJSON *trials = cJSON_AddArrayToObject(root, "trials");
  for (int i = 0; i < r->trials; i++) cJSON_AddItemToArray(trials, ch__trial_json(i, &r->trial[i]));
  cJSON_AddNumberToObject(root, "completed_laps", r->completed_laps);
  ch__add_known(root, "best_lap_time", r->best_lap_time);
  ch__add_known(root, "reference_lap", r->reference_lap);
  ch__add_known(root, "best_ratio", r->best_ratio);
  cJSON_AddNumberToObject(root, "off_track", r->off_track);
  cJSON_AddNumberToObject(root, "crashes", r->crashes);
  cJSON_AddNumberToObject(root, "penalty_seconds", o->penalty_seconds);
  cJSON_AddNumberToObject(root, "crash_penalty_seconds", o->crash_penalty_seconds);
  cJSON_AddNumberToObject(root, "max_seconds", o->max_seconds);
  cJSON_AddNumberToObject(root, "seed", (double)o->seed);
  if (simtrace_key)
    cJSON_AddStringToObject(root, "simtrace_key", simtrace_key);
  else
    cJSON_AddNullToObject(root, "simtrace_key");
  return root;
}

static double ch__num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static char *ch__str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int ch__parse_trials(const cJSON *arr, ch_evaluation_info *e, ch_error *err) {
  int n = cJSON_GetArraySize(arr);
  e->trial_info = calloc((size_t)(n > 0 ? n : 1), sizeof *e->trial_info);
  if (!e->trial_info) return ch_error_set(err, CH_ENOMEM, "out of memory");
  const cJSON *t;
  cJSON_ArrayForEach(t, arr) {
    if (!cJSON_IsObject(t))
      return ch_error_set(err, CH_ECORRUPT, "evaluation results: trials[%lld] is not an object",
                          (long long)e->num_trial_info);
    ch_trial_info *ti = &e->trial_info[e->num_trial_info++];
    ti->trial = (int64_t)ch__num(t, "trial");
    ti->progress = ch__num(t, "progress");
    ti->lap_time = ch__num(t, "lap_time");
    ti->off_track = (int64_t)ch__num(t, "off_track");
    ti->crashes = (int64_t)ch__num(t, "crashes");
    ti->steps = (int64_t)ch__num(t, "steps");
    ti->completed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "completed"));
  }
  return CH_OK;
}

int ch_eval_results_parse(const cJSON *j, ch_evaluation_info *e, ch_error *err) {
  memset(e, 0, sizeof *e);
  const cJSON *trials = cJSON_GetObjectItemCaseSensitive(j, "trials");
  if (!cJSON_IsObject(j) || !ch__str(j, "model") || !cJSON_IsArray(trials))
    return ch_error_set(err, CH_ECORRUPT,
                        "evaluation results: not an object with model and trials");
  e->model = ch__str(j, "model");
  e->track = ch__str(j, "track");
  e->race_type = ch__str(j, "race_type");
  e->simtrace_key = ch__str(j, "simtrace_key");
  e->iteration = (int64_t)ch__num(j, "iteration");
  e->created = (int64_t)ch__num(j, "created");
  e->trials = cJSON_GetArraySize(trials);
  e->completed_laps = (int64_t)ch__num(j, "completed_laps");
  e->off_track = (int64_t)ch__num(j, "off_track");
  e->crashes = (int64_t)ch__num(j, "crashes");
  e->best_lap_time = ch__num(j, "best_lap_time");
  e->reference_lap = ch__num(j, "reference_lap");
  e->reference_ratio = ch__num(j, "best_ratio");
  e->penalty_seconds = ch__num(j, "penalty_seconds");
  e->crash_penalty_seconds = ch__num(j, "crash_penalty_seconds");
  int rc = ch__parse_trials(trials, e, err);
  if (rc != CH_OK) {
    free(e->trial_info);
    e->trial_info = NULL;
    e->num_trial_info = 0;
  }
  return rc;
}

/* ---- storing --------------------------------------------------------------------------- */

/* A sortable UTC stamp with microseconds (20261122-050303-123456), unique enough per model. */
static int64_t ch__stamp(char *out, size_t cap) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  time_t now = tv.tv_sec;
  struct tm tm;
  gmtime_r(&now, &tm);
  char day[32];
  strftime(day, sizeof day, "%Y%m%d-%H%M%S", &tm);
  snprintf(out, cap, "%s-%06ld", day, (long)tv.tv_usec);
  return (int64_t)now;
}

static int ch__put_results(ch_session *s, const ch_eval_stored *st, const char *model,
                           const ch_eval_options *o, const ch_eval_result *r, char **json,
                           ch_error *err) {
  cJSON *j = ch_eval_results_json(model, st->iteration, st->track, st->race_type, st->created, o, r,
                                  st->simtrace_key);
  *json = cJSON_Print(j);
  cJSON_Delete(j);
  if (!*json) return ch_error_set(err, CH_ENOMEM, "out of memory");
  return s->st->put(s->st_h, st->key, *json, strlen(*json), err);
}

static int ch__add_row(ch_session *s, ch_eval_stored *st, char *json, ch_error *err) {
  cJSON *j = cJSON_Parse(json);
  ch_evaluation_info e;
  int rc = ch_eval_results_parse(j, &e, err);
  e.results_json = json;
  e.storage_key = st->key;
  if (rc == CH_OK) rc = ch_catalog_add_evaluation_id(s->cat, &e, &st->id, err);
  free(e.trial_info);
  cJSON_Delete(j);
  return rc;
}

int ch_evaluate_store(ch_session *s, const char *model, const char *track, const ch_eval_options *o,
                      ch_eval_result *out, ch_eval_stored *stored, ch_error *err) {
  ch_eval_stored local;
  ch_eval_stored *st = stored ? stored : &local;
  memset(st, 0, sizeof *st);
  ch_eval_options opt = *o;
  ch_simtrace *own = o->trace ? NULL : ch_simtrace_new();
  if (!o->trace && !own) return ch_error_set(err, CH_ENOMEM, "out of memory");
  if (own) opt.trace = own;
  ch__evaluated info;
  memset(&info, 0, sizeof info);
  int rc = ch__evaluate(s, model, track, &opt, out, st->track, sizeof st->track, &info, err);
  char stamp[64], *json = NULL;
  st->created = ch__stamp(stamp, sizeof stamp);
  st->iteration = info.iteration;
  snprintf(st->race_type, sizeof st->race_type, "%s", info.race_type);
  snprintf(st->key, sizeof st->key, "models/%s/evaluations/%s.json", model, stamp);
  snprintf(st->simtrace_key, sizeof st->simtrace_key, "models/%s/evaluation-simtrace/%s.csv", model,
           stamp);
  size_t len = 0;
  const char *csv = ch_simtrace_data(opt.trace, &len);
  /* Storage first (it is the truth), the catalog row last. */
  if (rc == CH_OK) rc = s->st->put(s->st_h, st->simtrace_key, csv, len, err);
  if (rc == CH_OK) rc = ch__put_results(s, st, model, &opt, out, &json, err);
  if (rc == CH_OK) rc = ch__add_row(s, st, json, err);
  /* The model's own rows too, for a trainer that did not store them (rebuild reads them). */
  if (rc == CH_OK) rc = ch_model_sync_records(s, model, err);
  cJSON_free(json);
  ch_simtrace_free(own);
  return rc;
}
