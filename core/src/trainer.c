/* trainer.c -- the training loop: workers (threads here, or processes anywhere) fill the
** buffer, PPO updates the policy, each iteration is checkpointed to storage and indexed in the
** catalog, and the new policy is handed back to the workers. */
#include "trainer.h"

#include "clock.h"
#include "data_parallel.h"

#include "channel.h"
#include "log.h"
#include "model.h"
#include "model_io.h"
#include "obs.h"
#include "paths.h"
#include "policy.h"
#include "ppo.h"
#include "procs.h"
#include "rng.h"
#include "rollout.h"
#include "sac_learner.h"
#include "schedule.h"
#include "segment.h"
#include "train_log.h"
#include "worker.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CH__MAX_GRAD_NORM  0.5f
#define CH__VALUE_COEF     0.5
#define CH__STALL_SECONDS  3.0   /* no new segment this long: ask the workers for more episodes */
#define CH__OUTAGE_SECONDS 120.0 /* an unreachable buffer is waited for this long, then fatal */

/* Training samples of one iteration, with advantages and returns already computed. */
typedef struct ch__batch {
  int n, cap, obs_size, image_size, act_size;
  float *obs, *logp, *adv, *ret, *val; /* val: V(s) when acting, for value clipping */
  uint8_t *image;
  float *act; /* act_size floats per sample: a discrete index, or a continuous raw sample */
} ch__batch;

/* Records taken from the buffer and used, acknowledged only once the checkpoint that learned
** from them is stored: a trainer that dies before then gets them again when it restarts. */
typedef struct ch__held {
  ch_record *rec;
  int n, cap;
} ch__held;

/* (worker, episode, segment) keys accepted this iteration, so a redelivered record counts once. */
typedef struct ch__seen {
  uint64_t *keys; /* open addressing; 0 = empty */
  size_t cap, n;
} ch__seen;

typedef struct ch__trainer {
  ch_train_config *cfg; /* the caller's, copied: on_iteration changes lr, tracks and reward */
  const ch_train_options *opt;
  ch_policy_space space;
  ch_sac_learner *sac; /* algorithm "sac": the critics and the replay memory; NULL for PPO */
  ch_schedule *schedule;
  char *net_json;        /* the network config, for workers started again */
  int spec_revision;     /* bumped when on_iteration changes tracks or reward */
  ch_rollout_time times; /* the worker threads' totals at the last iteration */
  int registered;        /* the model's catalog row is ours to mark ready or failed */
  ch_model_run run;
  int run_started;
  ch_train_log *log; /* sim-traces and metrics lines in storage */
  int tty;           /* stdout is a terminal: a live status line while collecting */
  double last_status;
  ch_session session;
  ch_plugin *env_p, *net_p;
  ch_env eval_env;
  ch_net net;
  ch_dp *dp;      /* PPO minibatches split over cores; NULL: one thread */
  int dp_decided; /* whether the update's thread count has been settled */
  ch_buffer buffer;
  ch_rollout *rollout;
  int distributed; /* worker processes through a shared buffer, instead of threads */
  ch_workers procs;
  ch_policy_note note; /* the last announcement to worker processes */
  int64_t first_iteration;
  ch_iteration_stats resumed; /* totals carried over from the checkpoint resumed */
  ch__held held;
  ch__seen seen;
  double *waypoints;
  float *params;
  ch__batch batch;
  float *mb_obs, *mb_logits, *mb_value, *mb_dlogits, *mb_dvalue, *mb_logp, *mb_adv, *mb_ret;
  float *mb_val;
  float *mb_act;     /* act_size floats per sample */
  int32_t *mb_index; /* discrete: the action indices */
  int *perm;
  float *scaled_reward;
  double return_scale; /* value targets are returns / return_scale (running std) */
  uint64_t rng;
  double t0;
  double t_published;  /* when the workers got the policy being collected */
  double outage_since; /* when the buffer became unreachable; 0 while it answers */
} ch__trainer;

static int ch__batch_reserve(ch__batch *b, int more) {
  if (b->n + more <= b->cap) return CH_OK;
  int cap = b->cap ? b->cap : 4096;
  while (cap < b->n + more) cap *= 2;
  float *obs = realloc(b->obs, sizeof(float) * (size_t)cap * (size_t)(b->obs_size + 1));
  if (obs) b->obs = obs;
  float *logp = realloc(b->logp, sizeof(float) * (size_t)cap);
  if (logp) b->logp = logp;
  float *adv = realloc(b->adv, sizeof(float) * (size_t)cap);
  if (adv) b->adv = adv;
  float *ret = realloc(b->ret, sizeof(float) * (size_t)cap);
  if (ret) b->ret = ret;
  float *val = realloc(b->val, sizeof(float) * (size_t)cap);
  if (val) b->val = val;
  float *act = realloc(b->act, sizeof(float) * (size_t)cap * (size_t)b->act_size);
  if (act) b->act = act;
  uint8_t *image = b->image_size ? realloc(b->image, (size_t)cap * (size_t)b->image_size) : NULL;
  if (image) b->image = image;
  if (!obs || !logp || !adv || !ret || !val || !act || (b->image_size && !image)) return CH_ENOMEM;
  b->cap = cap;
  return CH_OK;
}

static void ch__batch_free(ch__batch *b) {
  free(b->image);
  free(b->obs);
  free(b->logp);
  free(b->adv);
  free(b->ret);
  free(b->val);
  free(b->act);
}

/* ---------------------------------------------------------------- setup and teardown */

/* The env config of the training script (sensors, race type, objects), as JSON text. */
static char *ch__env_json(const ch_train_config *c, int num_cars) {
  cJSON *o = ch_config_env_json(c, c->track_path, (uint32_t)num_cars);
  char *s = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return s;
}

/* The evaluation options of the training script's first track: its sensors, race type and
** objects, one car, greedy actions of the script's action space. */
static void ch__eval_options(const ch__trainer *t, ch_eval_options *eo, char **env_json) {
  ch_eval_defaults(eo);
  eo->max_seconds = 90;
  eo->space = &t->space;
  *env_json = ch__env_json(t->cfg, 1);
  eo->env_json = *env_json;
}

/* The env the trainer evaluates with (and reads the track's waypoints and shapes from). */
static int ch__open_eval_env(ch__trainer *t, ch_error *err) {
  const ch_train_config *c = t->cfg;
  ch_eval_options eo;
  char *env_json = NULL;
  ch__eval_options(t, &eo, &env_json);
  char *json = env_json ? ch_eval_env_config(c->track_path, &eo) : NULL;
  free(env_json);
  int rc = json ? ch_env_create(t->env_p, json, &t->eval_env, err) : CH_ENOMEM;
  free(json);
  if (rc != CH_OK) return rc;
  uint32_t n = t->eval_env.spec.num_waypoints;
  t->waypoints = calloc((size_t)n * 2 + 2, sizeof(double));
  if (!t->waypoints) return ch_error_set(err, CH_ENOMEM, "out of memory");
  rc = t->eval_env.vt->waypoints(t->eval_env.h, t->waypoints, n);
  return rc < 0 ? ch_error_set(err, rc, "env: cannot read the waypoints") : CH_OK;
}

static int ch__open_plugins(ch__trainer *t, ch_error *err) {
  const ch_train_config *c = t->cfg;
  int rc = ch_plugin_find(CH_PLUGIN_ENV, c->env_plugin, &t->env_p, err);
  if (rc == CH_OK) rc = ch_plugin_find(CH_PLUGIN_NETWORK, c->network_plugin, &t->net_p, err);
  return rc == CH_OK ? ch__open_eval_env(t, err) : rc;
}

/* Floats of network input per sample: the image (as floats) and the vector observation. */
static size_t ch__input_size(const ch__trainer *t) {
  return (size_t)t->batch.image_size + (size_t)t->batch.obs_size;
}

static int ch__alloc_minibatch(ch__trainer *t) {
  size_t B = (size_t)t->cfg->hp.batch_size, IN = ch__input_size(t);
  size_t A = ch_policy_output_size(&t->space), AS = (size_t)t->batch.act_size;
  t->mb_obs = malloc(sizeof(float) * B * IN);
  t->mb_logits = malloc(sizeof(float) * B * A);
  t->mb_dlogits = malloc(sizeof(float) * B * A);
  t->mb_value = malloc(sizeof(float) * B);
  t->mb_dvalue = malloc(sizeof(float) * B);
  t->mb_logp = malloc(sizeof(float) * B);
  t->mb_adv = malloc(sizeof(float) * B);
  t->mb_ret = malloc(sizeof(float) * B);
  t->mb_val = malloc(sizeof(float) * B);
  t->mb_act = malloc(sizeof(float) * B * AS);
  t->mb_index = malloc(sizeof(int32_t) * B);
  t->scaled_reward = malloc(sizeof(float) * (size_t)t->cfg->segment_steps);
  t->params = malloc(sizeof(float) * t->net.spec.param_count);
  return t->mb_obs && t->mb_logits && t->mb_dlogits && t->mb_value && t->mb_dvalue && t->mb_logp &&
                 t->mb_adv && t->mb_ret && t->mb_val && t->mb_act && t->mb_index &&
                 t->scaled_reward && t->params
             ? CH_OK
             : CH_ENOMEM;
}

static int ch__create_network(ch__trainer *t, cJSON **netcfg, ch_error *err) {
  const ch_env_spec *sp = &t->eval_env.spec;
  t->batch.obs_size = (int)sp->obs_size;
  t->batch.image_size = (int)(sp->image_width * sp->image_height * sp->image_channels);
  t->batch.act_size = (int)ch_policy_action_size(&t->space);
  *netcfg = ch_config_network_json_for(t->cfg, sp, err);
  if (!*netcfg) return err->code ? err->code : CH_EINVAL;
  t->net_json = cJSON_PrintUnformatted(*netcfg);
  int rc = t->net_json ? ch_net_create(t->net_p, t->net_json, &t->net, err) : CH_ENOMEM;
  size_t want = ch_policy_output_size(&t->space);
  if (rc == CH_OK && t->net.spec.policy_size != want)
    rc = ch_error_set(err, CH_EPLUGIN,
                      "network plugin gives %u policy outputs; the %s action "
                      "space needs %zu",
                      t->net.spec.policy_size, t->space.continuous ? "continuous" : "discrete",
                      want);
  if (rc == CH_OK && ch__alloc_minibatch(t) != CH_OK)
    rc = ch_error_set(err, CH_ENOMEM, "out of memory");
  if (rc == CH_OK && strcmp(t->cfg->algorithm, "sac") == 0)
    rc = ch_sac_learner_create(t->cfg, t->net_p, &t->net, (uint32_t)t->batch.obs_size,
                               (uint32_t)t->batch.image_size, &t->sac, err);
  return rc;
}

static int ch__open_buffer(ch__trainer *t, ch_error *err) {
  const ch_train_options *o = t->opt;
  char stream[300];
  snprintf(stream, sizeof stream, "chicane:%s:segments", t->cfg->model);
  t->distributed = o->buffer && *o->buffer && strcmp(o->buffer, "memory") != 0;
  if (!t->distributed && o->worker_processes > 0)
    return ch_error_set(err, CH_EINVAL,
                        "worker processes need a buffer they can share: --buffer redis://...");
  /* One consumer name per model: a restarted trainer takes back what it held unacknowledged. */
  int rc = ch_buffer_open_spec(t->distributed ? o->buffer : "memory", stream, "trainer", &t->buffer,
                               err);
  if (rc == CH_OK && t->distributed && !ch_buffer_has_meta(&t->buffer))
    rc = ch_error_set(err, CH_EUNSUPPORTED, "buffer plugin '%s' cannot announce policies",
                      t->buffer.vt->header.name);
  return rc;
}

/* The env config of every track in force (num_cars = cars per worker); caller frees each. */
static int ch__env_configs(const ch__trainer *t, char **envs, int *n, ch_error *err) {
  const ch_train_config *c = t->cfg;
  *n = c->num_tracks > 0 ? c->num_tracks : 1;
  int rc = CH_OK;
  for (int i = 0; i < *n; i++) {
    cJSON *o = ch_config_env_json(c, c->track_paths[i][0] ? c->track_paths[i] : c->track_path,
                                  (uint32_t)c->cars_per_worker);
    envs[i] = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!envs[i]) rc = ch_error_set(err, CH_ENOMEM, "out of memory");
  }
  return rc;
}

/* Start worker threads on the tracks and reward in force; worker i drives track i % tracks.
** (Worker processes start from the spec ch__store_spec writes.) */
static int ch__start_rollout(ch__trainer *t, ch_error *err) {
  const ch_train_config *c = t->cfg;
  char *envs[CH_MAX_TRACKS] = {NULL};
  int n = 0, rc = ch__env_configs(t, envs, &n, err);
  if (rc == CH_OK && !t->distributed) {
    ch_rollout_setup s = {c,
                          t->env_p,
                          t->net_p,
                          (const char *const *)envs,
                          n,
                          t->net_json,
                          &t->buffer,
                          c->workers,
                          0,
                          c->alternate_direction,
                          c->start_offset};
    rc = ch_rollout_start(&s, &t->rollout, err);
  }
  for (int i = 0; i < n; i++) cJSON_free(envs[i]);
  return rc;
}

/* What worker processes read from storage: env configs, tracks, network, actions. */
static int ch__store_spec(ch__trainer *t, ch_error *err) {
  const ch_train_config *c = t->cfg;
  char *envs[CH_MAX_TRACKS] = {NULL};
  int n = 0, rc = ch__env_configs(t, envs, &n, err);
  if (rc == CH_OK)
    rc = ch_worker_spec_store(&t->session, c, (const char *const *)envs, n, t->net_json,
                              c->alternate_direction, c->start_offset, err);
  for (int i = 0; i < n; i++) cJSON_free(envs[i]);
  return rc;
}

/* Put context in front of err's message (copied first: vsnprintf must not read what it
** writes). */
static int ch__error_context(ch_error *err, int rc, const char *context) {
  char inner[sizeof err->message];
  snprintf(inner, sizeof inner, "%s", err->message);
  return ch_error_set(err, rc, "%s: %s", context, inner);
}

static void ch__critics_key(const ch__trainer *t, int64_t iteration, char *key, size_t cap);

/* SAC's critics of the checkpoint resumed (its replay memory starts empty again). */
static int ch__load_critics(ch__trainer *t, int64_t iteration, ch_error *err) {
  char key[512];
  void *blob = NULL;
  size_t len = 0;
  ch__critics_key(t, iteration, key, sizeof key);
  int rc = t->session.st->get(t->session.st_h, key, &blob, &len, err);
  if (rc == CH_OK) rc = ch_sac_learner_load(t->sac, blob, len, err);
  if (blob) t->session.st->free_data(t->session.st_h, blob);
  return rc == CH_OK ? rc : ch__error_context(err, rc, key);
}

/* Continue a model from its latest checkpoint: weights, optimizer state, counters. */
static int ch__resume(ch__trainer *t, ch_error *err) {
  ch_loaded_model m;
  int rc = ch_model_load(&t->session, t->cfg->model, &m, err);
  if (rc == CH_OK) rc = t->net.vt->load(t->net.h, m.blob, m.blob_len, err);
  ch_checkpoint_info ck;
  if (rc == CH_OK && ch_catalog_latest_checkpoint(t->session.cat, t->cfg->model, &ck, err) == 0) {
    t->first_iteration = ck.iteration + 1;
    t->resumed.total_episodes = ck.episodes;
    t->resumed.total_steps = ck.env_steps;
    cJSON *metrics = cJSON_Parse(ck.metrics_json ? ck.metrics_json : "");
    const cJSON *scale = cJSON_GetObjectItem(metrics, "return_scale");
    if (cJSON_IsNumber(scale) && scale->valuedouble > 0) t->return_scale = scale->valuedouble;
    cJSON_Delete(metrics);
    snprintf(t->note.checkpoint, sizeof t->note.checkpoint, "%s", ck.storage_key);
    snprintf(t->note.sha256, sizeof t->note.sha256, "%s", ck.sha256 ? ck.sha256 : "");
    if (t->sac) rc = ch__load_critics(t, ck.iteration, err);
    ch_checkpoint_info_free(&ck);
  }
  ch_loaded_model_free(&t->session, &m);
  if (rc == CH_OK)
    ch_log(CH_LOG_INFO, "trainer", "resuming '%s' at iteration %lld", t->cfg->model,
           (long long)t->first_iteration);
  return rc;
}

/* clone_from: start a new model from another model's latest weights (no random warm-up). */
static int ch__clone_weights(ch__trainer *t, ch_error *err) {
  const char *src = t->cfg->clone_from;
  ch_loaded_model m;
  int rc = ch_model_load(&t->session, src, &m, err), loaded = rc == CH_OK;
  if (rc == CH_OK) {
    rc = t->net.vt->load(t->net.h, m.blob, m.blob_len, err);
    if (rc != CH_OK) {
      char context[256];
      snprintf(context, sizeof context, "clone_from '%s': its weights do not fit this network",
               src);
      ch__error_context(err, rc, context);
    }
  }
  ch_checkpoint_info ck;
  if (rc == CH_OK && ch_catalog_latest_checkpoint(t->session.cat, src, &ck, err) == CH_OK) {
    /* worker processes fetch the weights the announcement names */
    snprintf(t->note.checkpoint, sizeof t->note.checkpoint, "%s", ck.storage_key);
    snprintf(t->note.sha256, sizeof t->note.sha256, "%s", ck.sha256 ? ck.sha256 : "");
    ch_checkpoint_info_free(&ck);
  }
  if (loaded) ch_loaded_model_free(&t->session, &m);
  if (rc == CH_OK)
    ch_log(CH_LOG_INFO, "trainer", "'%s' starts from the weights of '%s'", t->cfg->model, src);
  return rc;
}

static int ch__register(ch__trainer *t, const cJSON *netcfg, ch_error *err) {
  ch_model_info info;
  int exists = ch_catalog_get_model(t->session.cat, t->cfg->model, &info, NULL) == CH_OK;
  if (exists) ch_model_info_free(&info);
  if (t->opt->resume && exists) {
    int rc = ch__resume(t, err);
    if (rc == CH_OK) rc = ch_catalog_set_status(t->session.cat, t->cfg->model, "training", err);
    t->registered = rc == CH_OK;
    return rc;
  }
  int rc = ch_model_create(&t->session, t->cfg, netcfg, t->opt->replace, err);
  t->registered = rc == CH_OK;
  if (rc == CH_OK && t->cfg->clone_from[0]) rc = ch__clone_weights(t, err);
  return rc;
}

static int ch__open_session(ch__trainer *t, ch_error *err) {
  const ch_train_options *o = t->opt;
  if (o->storage && *o->storage)
    return ch_session_open(o->storage, o->storage_root, o->catalog_path, &t->session, err);
  return ch_session_open_spec(o->storage_root, o->catalog_path, &t->session, err);
}

static int ch__setup(ch__trainer *t, ch_error *err) {
  int rc = ch__open_session(t, err);
  if (rc == CH_OK) rc = ch__open_plugins(t, err);
  cJSON *netcfg = NULL;
  if (rc == CH_OK) rc = ch__create_network(t, &netcfg, err);
  if (rc == CH_OK) rc = ch__open_buffer(t, err);
  /* Worker threads (and so every reward script) and the on_iteration callback start before
  ** the model is registered, so that a broken script leaves the catalog untouched. */
  if (rc == CH_OK) rc = ch__start_rollout(t, err);
  if (rc == CH_OK && t->cfg->has_on_iteration) rc = ch_schedule_open(t->cfg, &t->schedule, err);
  if (rc == CH_OK) rc = ch__register(t, netcfg, err);
  if (rc == CH_OK) rc = ch__store_spec(t, err);
  if (rc == CH_OK) rc = ch_model_store_record(&t->session, t->cfg->model, err);
  if (rc == CH_OK) rc = ch_train_log_open(&t->session, t->cfg->model, t->opt->resume, &t->log, err);
  if (rc == CH_OK) {
    rc = ch_model_run_begin(&t->session, t->cfg->model, t->opt->command_line, &t->run, err);
    t->run_started = rc == CH_OK;
  }
  cJSON_Delete(netcfg);
  return rc;
}

static void ch__ack_held(ch__trainer *t) {
  for (int i = 0; i < t->held.n; i++) t->buffer.vt->ack(t->buffer.h, &t->held.rec[i]);
  t->held.n = 0;
}

static void ch__teardown(ch__trainer *t) {
  ch_rollout_stop(t->rollout);
  if (t->procs.n) ch_workers_stop(&t->procs);
  if (t->buffer.h) {
    ch__ack_held(t); /* records of an iteration never checkpointed come back on redis */
    ch_buffer_close(&t->buffer);
  }
  ch_dp_destroy(t->dp);
  ch_net_destroy(&t->net);
  ch_env_destroy(&t->eval_env);
  ch_plugin_close(t->net_p);
  ch_plugin_close(t->env_p);
  ch_session_close(&t->session);
  ch_schedule_close(t->schedule);
  ch_sac_learner_free(t->sac);
  ch_train_log_free(t->log);
  ch__batch_free(&t->batch);
  cJSON_free(t->net_json);
  void *bufs[] = {t->waypoints,     t->params,    t->mb_obs,   t->mb_logits, t->mb_value,
                  t->mb_dlogits,    t->mb_dvalue, t->mb_logp,  t->mb_adv,    t->mb_ret,
                  t->mb_val,        t->mb_act,    t->mb_index, t->perm,      t->held.rec,
                  t->scaled_reward, t->seen.keys};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

/* ---------------------------------------------------------------- collection */

/* A 64-bit hash of (worker, episode, segment): two records collide with odds of 2^-63. The
** low bit is forced to 1 because 0 marks an empty slot of the set. */
static uint64_t ch__segment_key(const ch_segment *s) {
  uint64_t k = ((uint64_t)s->worker_id << 32 | s->seq) + 0x9e3779b97f4a7c15ull;
  k = ch_rng_next(&k) ^ s->episode_id;
  return ch_rng_next(&k) | 1u;
}

/* Insert key; 0 if it was there already, 1 if new, < 0 out of memory. */
static int ch__seen_insert(ch__seen *set, uint64_t key) {
  if (2 * (set->n + 1) > set->cap) {
    size_t cap = set->cap ? 2 * set->cap : 1024;
    uint64_t *keys = calloc(cap, sizeof *keys);
    if (!keys) return CH_ENOMEM;
    for (size_t i = 0; i < set->cap; i++)
      if (set->keys[i])
        for (size_t j = set->keys[i] & (cap - 1);; j = (j + 1) & (cap - 1))
          if (!keys[j]) {
            keys[j] = set->keys[i];
            break;
          }
    free(set->keys);
    set->keys = keys;
    set->cap = cap;
  }
  for (size_t j = key & (set->cap - 1);; j = (j + 1) & (set->cap - 1)) {
    if (set->keys[j] == key) return 0;
    if (!set->keys[j]) {
      set->keys[j] = key;
      set->n++;
      return 1;
    }
  }
}

static void ch__seen_clear(ch__seen *set) {
  if (set->keys) memset(set->keys, 0, set->cap * sizeof *set->keys);
  set->n = 0;
}

static int ch__hold(ch__trainer *t, const ch_record *rec) {
  if (t->held.n == t->held.cap) {
    int cap = t->held.cap ? 2 * t->held.cap : 256;
    ch_record *r = realloc(t->held.rec, sizeof *r * (size_t)cap);
    if (!r) return CH_ENOMEM;
    t->held.rec = r;
    t->held.cap = cap;
  }
  t->held.rec[t->held.n++] = *rec;
  return CH_OK;
}

/* CH_OK when a decoded segment has the model's shapes and valid actions. */
static int ch__segment_fits(const ch__trainer *t, const ch_segment *s) {
  int T = (int)s->num_steps, AS = t->batch.act_size;
  if (T > t->cfg->segment_steps || s->obs_size != (uint32_t)t->batch.obs_size ||
      s->image_size != (uint32_t)t->batch.image_size || s->action_size != (uint32_t)AS)
    return CH_ECORRUPT;
  for (int i = 0; i < T * AS; i++)
    if (t->space.continuous ? !isfinite(s->action[i])
                            : !(s->action[i] >= 0 && s->action[i] < (float)t->cfg->num_actions))
      return CH_ECORRUPT;
  return CH_OK;
}

/* Learn from a segment: PPO appends it to the batch with its advantages and returns (in
** scaled units); SAC keeps its transitions in the replay memory. */
static int ch__add_segment(ch__trainer *t, const ch_segment *s, const ch_record *rec,
                           ch_iteration_stats *st) {
  int T = (int)s->num_steps, n = t->batch.n, AS = t->batch.act_size;
  if (ch__segment_fits(t, s) != CH_OK) return CH_ECORRUPT;
  if (t->sac) {
    ch_error e;
    int rc = ch_sac_learner_add_record(t->sac, rec->data, rec->len, &e);
    if (rc != CH_OK) return rc == CH_ENOMEM ? rc : CH_ECORRUPT;
    st->steps += T;
    return CH_OK;
  }
  if (ch__batch_reserve(&t->batch, T) != CH_OK) return CH_ENOMEM;
  for (int i = 0; i < T; i++) t->scaled_reward[i] = (float)(s->reward[i] / t->return_scale);
  ch_gae(T, t->scaled_reward, s->value, s->bootstrap_value, (s->flags & CH_SEGMENT_TERMINAL) != 0,
         t->cfg->hp.discount_factor, CH_PPO_GAE_LAMBDA, t->batch.adv + n, t->batch.ret + n);
  if (s->obs_size)
    memcpy(t->batch.obs + (size_t)n * s->obs_size, s->obs, sizeof(float) * (size_t)T * s->obs_size);
  if (s->image_size)
    memcpy(t->batch.image + (size_t)n * s->image_size, s->image, (size_t)T * s->image_size);
  memcpy(t->batch.act + (size_t)n * AS, s->action, sizeof(float) * (size_t)T * AS);
  memcpy(t->batch.logp + n, s->logp, sizeof(float) * (size_t)T);
  memcpy(t->batch.val + n, s->value, sizeof(float) * (size_t)T);
  t->batch.n += T;
  return CH_OK;
}

static void ch__count_episode(const ch_segment *s, ch_iteration_stats *st) {
  st->episodes++;
  st->mean_reward += s->episode_reward;
  st->mean_progress += s->episode_progress;
  st->completion_rate += s->episode_status == CH_EPISODE_LAP_COMPLETE;
}

/* Judge one record: < 0 a fatal error, 0 rejected (ack it now), 1 accepted (hold it). */
static int ch__judge(ch__trainer *t, const ch_record *rec, uint64_t version, ch_iteration_stats *st,
                     ch_error *err) {
  ch_segment s;
  ch_error e;
  if (ch_segment_decode(rec->data, rec->len, &s, &e) != CH_OK) {
    st->corrupt_segments++;
    ch_log(CH_LOG_WARN, "trainer", "buffer record %llu rejected: %s", (unsigned long long)rec->id,
           e.message);
    return 0;
  }
  if (s.policy_version != version && !t->sac) {
    st->stale_segments++; /* on-policy PPO learns only from the current policy's experience */
    return 0;
  }
  int fresh = ch__seen_insert(&t->seen, ch__segment_key(&s));
  if (fresh < 0) return ch_error_set(err, CH_ENOMEM, "trainer: out of memory");
  if (!fresh) {
    st->duplicate_segments++;
    return 0;
  }
  int rc = ch__add_segment(t, &s, rec, st);
  if (rc == CH_ENOMEM) return ch_error_set(err, rc, "trainer: out of memory for the batch");
  if (rc != CH_OK) {
    st->corrupt_segments++;
    ch_log(CH_LOG_WARN, "trainer", "buffer record %llu rejected: shapes differ from the model's",
           (unsigned long long)rec->id);
    return 0;
  }
  const ch_env_spec *sp = &t->eval_env.spec;
  if (ch_train_log_segment(t->log, &s, t->cfg->segment_steps, t->space.continuous, sp->track_length,
                           sp->step_seconds) != CH_OK)
    return ch_error_set(err, CH_ENOMEM, "trainer: out of memory for the sim-trace");
  if (s.flags & CH_SEGMENT_EPISODE_END) ch__count_episode(&s, st);
  return 1;
}

/* A buffer call failed with rc. A connection failure is waited out (a redis restart, a network
** blip): CH_OK means "try again" until the buffer has been unreachable for CH__OUTAGE_SECONDS;
** then, or for any other error, rc. */
static int ch__outage(ch__trainer *t, int rc, const ch_error *err) {
  if (rc != CH_ECONN && rc != CH_EIO && rc != CH_ETIMEDOUT) return rc;
  double now = ch_clock_now();
  if (t->outage_since == 0) {
    t->outage_since = now;
    ch_log(CH_LOG_WARN, "trainer", "%s; waiting up to %.0f s for the buffer to come back",
           err->message, CH__OUTAGE_SECONDS);
  }
  if (now - t->outage_since > CH__OUTAGE_SECONDS) return rc;
  ch_clock_sleep(0.5);
  return CH_OK;
}

static void ch__outage_over(ch__trainer *t) {
  if (t->outage_since == 0) return;
  ch_log(CH_LOG_INFO, "trainer", "the buffer answers again after %.1f s",
         ch_clock_now() - t->outage_since);
  t->outage_since = 0;
}

/* Take one record from the buffer: 1 = used, 0 = nothing yet or rejected, < 0 = error. */
static int ch__take_record(ch__trainer *t, uint64_t version, ch_iteration_stats *st,
                           ch_error *err) {
  ch_record rec;
  int got = t->buffer.vt->pull(t->buffer.h, 100, &rec, err);
  if (got < 0) return ch__outage(t, got, err) == CH_OK ? 0 : got;
  ch__outage_over(t);
  if (got == 0) return 0;
  int verdict = ch__judge(t, &rec, version, st, err);
  if (verdict == 1 && ch__hold(t, &rec) != CH_OK)
    verdict = ch_error_set(err, CH_ENOMEM, "trainer: out of memory");
  if (verdict != 1) t->buffer.vt->ack(t->buffer.h, &rec);
  return verdict;
}

/* Tell the worker processes about a policy (or a new round of the same one). */
static int ch__announce(ch__trainer *t, ch_error *err) {
  int per = t->opt->worker_processes > 0 ? t->opt->worker_processes : t->cfg->workers;
  int want = t->cfg->hp.num_episodes_between_training;
  t->note.episodes = (want + per - 1) / (per > 0 ? per : 1);
  return ch_channel_announce(&t->buffer, t->cfg->model, &t->note, err);
}

/* Nothing arrived for a while: keep the worker processes alive and busy. */
static int ch__on_idle(ch__trainer *t, double *last_progress, ch_error *err) {
  if (!t->distributed) {
    int failed = ch_rollout_failed(t->rollout, err);
    return failed ? failed : CH_OK;
  }
  if (t->procs.n) ch_workers_supervise(&t->procs);
  if (ch_clock_now() - *last_progress < CH__STALL_SECONDS) return CH_OK;
  /* Episodes lost with a dead worker are run again by the living ones. */
  t->note.round++;
  *last_progress = ch_clock_now();
  int rc = ch__announce(t, err);
  return rc < 0 ? ch__outage(t, rc, err) : CH_OK;
}

/* In a terminal, one line that shows the iteration being collected, redrawn in place. */
static void ch__status_line(ch__trainer *t, const ch_iteration_stats *st) {
  double now = ch_clock_now();
  if (!t->tty || t->opt->quiet || now - t->last_status < 0.1) return;
  t->last_status = now;
  printf("\r\033[Kiter %4lld | collecting: %d of %d episodes, %d steps | %.1f s",
         (long long)st->iteration, st->episodes, t->cfg->hp.num_episodes_between_training,
         t->batch.n, now - t->t0);
  fflush(stdout);
}

static int ch__collect(ch__trainer *t, uint64_t version, ch_iteration_stats *st, ch_error *err) {
  int want = t->cfg->hp.num_episodes_between_training;
  double last_progress = ch_clock_now();
  t->batch.n = 0;
  ch__seen_clear(&t->seen);
  ch_train_log_begin(t->log, st->total_episodes);
  while (st->episodes < want) {
    int rc = ch__take_record(t, version, st, err);
    if (rc < 0) return rc;
    if (rc == 1)
      last_progress = ch_clock_now();
    else if ((rc = ch__on_idle(t, &last_progress, err)) != CH_OK)
      return rc;
    ch__status_line(t, st);
  }
  st->mean_reward /= st->episodes;
  st->mean_progress /= st->episodes;
  st->completion_rate /= st->episodes;
  if (!t->sac) st->steps = t->batch.n;
  return CH_OK;
}

/* ---------------------------------------------------------------- update */

static void ch__normalize_advantages(ch__batch *b) {
  double mean = 0, var = 0;
  for (int i = 0; i < b->n; i++) mean += b->adv[i];
  mean /= b->n;
  for (int i = 0; i < b->n; i++) var += (b->adv[i] - mean) * (b->adv[i] - mean);
  double inv = 1.0 / (sqrt(var / b->n) + 1e-8);
  for (int i = 0; i < b->n; i++) b->adv[i] = (float)((b->adv[i] - mean) * inv);
}

/* Follow the spread of the returns so that value targets stay near unit scale. */
static void ch__update_return_scale(ch__trainer *t) {
  double mean = 0, var = 0;
  ch__batch *b = &t->batch;
  for (int i = 0; i < b->n; i++) mean += b->ret[i] * t->return_scale;
  mean /= b->n;
  for (int i = 0; i < b->n; i++) {
    double d = b->ret[i] * t->return_scale - mean;
    var += d * d;
  }
  double sd = sqrt(var / b->n);
  if (sd > 1e-6) t->return_scale = 0.8 * t->return_scale + 0.2 * sd;
}

static void ch__gather(ch__trainer *t, const int *idx, int m) {
  size_t O = (size_t)t->batch.obs_size, I = (size_t)t->batch.image_size, IN = O + I;
  size_t AS = (size_t)t->batch.act_size;
  for (int i = 0; i < m; i++) {
    int j = idx[i];
    ch_obs_input(t->batch.obs + (size_t)j * O, (uint32_t)O,
                 I ? t->batch.image + (size_t)j * I : NULL, (uint32_t)I,
                 t->mb_obs + (size_t)i * IN);
    memcpy(t->mb_act + (size_t)i * AS, t->batch.act + (size_t)j * AS, sizeof(float) * AS);
    t->mb_index[i] = (int32_t)t->batch.act[(size_t)j * AS];
    t->mb_logp[i] = t->batch.logp[j];
    t->mb_adv[i] = t->batch.adv[j];
    t->mb_ret[i] = t->batch.ret[j];
    t->mb_val[i] = t->batch.val[j];
  }
}

/* One PPO step on the samples idx; *kl_stop is set (and the step skipped) when target-KL early
** stopping says the policy has moved far enough this update. */
static int ch__minibatch(ch__trainer *t, const int *idx, int m, ch_ppo_stats *sum,
                         ch_iteration_stats *times, int *kl_stop, ch_error *err) {
  const ch_train_config *c = t->cfg;
  ch_ppo_params pp = {CH_PPO_CLIP, c->hp.beta_entropy, CH__VALUE_COEF, c->hp.loss_type};
  ch_ppo_extras x = {c->hp.value_clip, c->hp.target_kl};
  const float *old_value = x.value_clip > 0 ? t->mb_val : NULL;
  ch_optimizer_config oc = {(float)c->hp.lr, 0.9f, 0.999f, (float)CH_PPO_ADAM_EPS,
                            CH__MAX_GRAD_NORM};
  ch_ppo_stats st;
  ch__gather(t, idx, m);
  double t0 = ch_clock_now();
  int rc =
      t->dp ? ch_dp_forward(t->dp, t->mb_obs, (uint32_t)m, t->mb_logits, t->mb_value, err)
            : t->net.vt->forward(t->net.h, t->mb_obs, (uint32_t)m, t->mb_logits, t->mb_value, err);
  if (rc != CH_OK) return rc;
  double t1 = ch_clock_now();
  if (t->space.continuous)
    ch_ppo_loss_gaussian(&pp, &x, m, t->space.num_actions, t->mb_logits, t->mb_value, t->mb_act,
                         t->mb_logp, t->mb_adv, t->mb_ret, old_value, t->mb_dlogits, t->mb_dvalue,
                         &st);
  else
    ch_ppo_loss_categorical(&pp, &x, m, c->num_actions, t->mb_logits, t->mb_value, t->mb_index,
                            t->mb_logp, t->mb_adv, t->mb_ret, old_value, t->mb_dlogits,
                            t->mb_dvalue, &st);
  double t2 = ch_clock_now();
  if (ch_ppo_kl_exceeded(&x, st.approx_kl)) {
    *kl_stop = 1; /* SB3's order: judged before this minibatch's step, which is not taken */
    return CH_OK;
  }
  t->net.vt->zero_grad(t->net.h);
  rc = t->dp ? ch_dp_backward(t->dp, t->mb_dlogits, t->mb_dvalue, err)
             : t->net.vt->backward(t->net.h, t->mb_dlogits, t->mb_dvalue, err);
  double t3 = ch_clock_now();
  if (rc == CH_OK) rc = t->net.vt->optimizer_step(t->net.h, &oc, err);
  times->forward_seconds += t1 - t0;
  times->loss_seconds += t2 - t1;
  times->backward_seconds += t3 - t2;
  times->optimizer_seconds += ch_clock_now() - t3;
  sum->policy_loss += st.policy_loss;
  sum->value_loss += st.value_loss;
  sum->entropy += st.entropy;
  sum->approx_kl += st.approx_kl;
  sum->clip_fraction += st.clip_fraction;
  sum->loss += 1; /* counts minibatches */
  return rc;
}

/* SAC: one update per env step collected, from the replay memory. */
static int ch__update_sac(ch__trainer *t, ch_iteration_stats *st, ch_error *err) {
  ch_sac_stats ss;
  ch_sac_learner *l = t->sac;
  int rc = ch_sac_learner_update(l, st->steps, &t->rng, &ss, err);
  st->policy_loss = ss.actor_loss;
  st->value_loss = ss.critic_loss;
  st->entropy = ss.entropy;
  return rc;
}

static int ch__learn(ch__trainer *t, ch_iteration_stats *st, ch_error *err) {
  if (t->sac) return ch__update_sac(t, st, err);
  int n = t->batch.n, B = t->cfg->hp.batch_size, rc = CH_OK;
  int *perm = realloc(t->perm, sizeof(int) * (size_t)n);
  if (!perm) return ch_error_set(err, CH_ENOMEM, "trainer: out of memory");
  t->perm = perm;
  for (int i = 0; i < n; i++) perm[i] = i;
  ch__normalize_advantages(&t->batch);
  ch_ppo_stats sum = {0, 0, 0, 0, 0, 0};
  int kl_stop = 0;
  for (int e = 0; rc == CH_OK && !kl_stop && e < t->cfg->hp.num_epochs; e++) {
    for (int i = n - 1; i > 0; i--) {
      int j = (int)(ch_rng_next(&t->rng) % (uint64_t)(i + 1)), tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    for (int s = 0; rc == CH_OK && !kl_stop && s < n; s += B)
      rc = ch__minibatch(t, perm + s, n - s < B ? n - s : B, &sum, st, &kl_stop, err);
  }
  double k = sum.loss > 0 ? 1.0 / sum.loss : 0;
  st->policy_loss = sum.policy_loss * k;
  st->value_loss = sum.value_loss * k;
  st->entropy = sum.entropy * k;
  st->approx_kl = sum.approx_kl * k;
  st->clip_fraction = sum.clip_fraction * k;
  st->minibatches = (int64_t)sum.loss;
  ch__update_return_scale(t);
  return rc;
}

/* OpenBLAS's own (its cblas.h declares it, but also pulls in complex.h, whose I clashes). */
void openblas_set_num_threads(int num_threads);

/* During an in-process update the worker threads wait for the new policy, so the update may
** use every core for BLAS. Worker processes keep the trainer to its own share. */
static void ch__blas_threads(const ch__trainer *t, int updating) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  /* Only camera networks: an MLP's matrices are too small to share, and OpenBLAS's threads
  ** spin a while after each call, taking time from the rollout threads. */
  int big = t->batch.image_size > 0;
  int n = updating && big && !t->distributed && cores > 1 ? (int)cores : 1;
  openblas_set_num_threads(n);
}

/* update_threads; 0 (automatic) is one thread: measured on 2 cores, a 64-row minibatch of the
** 64x64 MLP is done in ~75 us on one core, and splitting it costs as much in copies and
** synchronisation as it saves (75k update steps/s with 2 threads, 79k with 1). */
static int ch__update_thread_count(const ch__trainer *t) {
  return t->cfg->update_threads > 0 ? t->cfg->update_threads : 1;
}

/* Split PPO minibatches over replicas when the script asks for more than one update thread
** (a network plugin without add_grads is then an error naming the script). */
static int ch__decide_update_threads(ch__trainer *t, ch_error *err) {
  if (t->dp_decided || t->sac) return CH_OK;
  t->dp_decided = 1;
  int n = ch__update_thread_count(t);
  if (n < 2) return CH_OK;
  int rc = ch_dp_create(&t->net, t->net_json, n, &t->dp, err);
  if (rc == CH_OK) return rc;
  char context[CH_PATH_MAX + 64];
  snprintf(context, sizeof context, "%s: update_threads = %d", t->cfg->script, n);
  return ch__error_context(err, rc, context);
}

static int ch__update(ch__trainer *t, ch_iteration_stats *st, ch_error *err) {
  int rc = ch__decide_update_threads(t, err);
  if (rc != CH_OK) return rc;
  ch__blas_threads(t, 1);
  rc = ch__learn(t, st, err);
  ch__blas_threads(t, 0);
  return rc;
}

/* ---------------------------------------------------------------- checkpoints and progress */

static char *ch__metrics_json(const ch_iteration_stats *s, double return_scale) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "episodes", s->episodes);
  cJSON_AddNumberToObject(o, "steps", (double)s->steps);
  cJSON_AddNumberToObject(o, "mean_reward", s->mean_reward);
  cJSON_AddNumberToObject(o, "mean_progress", s->mean_progress);
  cJSON_AddNumberToObject(o, "completion_rate", s->completion_rate);
  cJSON_AddNumberToObject(o, "policy_loss", s->policy_loss);
  cJSON_AddNumberToObject(o, "value_loss", s->value_loss);
  cJSON_AddNumberToObject(o, "entropy", s->entropy);
  cJSON_AddNumberToObject(o, "approx_kl", s->approx_kl);
  cJSON_AddNumberToObject(o, "clip_fraction", s->clip_fraction);
  cJSON_AddNumberToObject(o, "minibatches", (double)s->minibatches);
  cJSON_AddNumberToObject(o, "return_scale", return_scale);
  cJSON_AddNumberToObject(o, "stale_segments", (double)s->stale_segments);
  cJSON_AddNumberToObject(o, "duplicate_segments", (double)s->duplicate_segments);
  cJSON_AddNumberToObject(o, "corrupt_segments", (double)s->corrupt_segments);
  cJSON_AddNumberToObject(o, "rollout_seconds", s->rollout_seconds);
  cJSON_AddNumberToObject(o, "update_seconds", s->update_seconds);
  /* flat, like every other metric: exports and charts read numbers at the top level */
  cJSON_AddNumberToObject(o, "act_seconds", s->act_seconds);
  cJSON_AddNumberToObject(o, "env_seconds", s->env_seconds);
  cJSON_AddNumberToObject(o, "reward_seconds", s->reward_seconds);
  cJSON_AddNumberToObject(o, "forward_seconds", s->forward_seconds);
  cJSON_AddNumberToObject(o, "loss_seconds", s->loss_seconds);
  cJSON_AddNumberToObject(o, "backward_seconds", s->backward_seconds);
  cJSON_AddNumberToObject(o, "optimizer_seconds", s->optimizer_seconds);
  if (s->eval_laps >= 0) {
    cJSON_AddNumberToObject(o, "eval_laps", s->eval_laps);
    cJSON_AddNumberToObject(o, "eval_lap_time", s->eval_lap_time);
  }
  char *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return json;
}

/* SAC's critics beside checkpoint N (models/NAME/checkpoints/NNNNNN.critics), stored before
** the checkpoint itself so that every checkpoint in the catalog has them. */
static void ch__critics_key(const ch__trainer *t, int64_t iteration, char *key, size_t cap) {
  ch_model_checkpoint_key(t->cfg->model, iteration, key, cap);
  char *dot = strrchr(key, '.');
  if (dot) snprintf(dot, cap - (size_t)(dot - key), ".critics");
}

static int ch__store_critics(ch__trainer *t, int64_t iteration, ch_error *err) {
  if (!t->sac) return CH_OK;
  void *blob = NULL;
  size_t len = 0;
  char key[512];
  int rc = ch_sac_learner_save(t->sac, &blob, &len, err);
  ch__critics_key(t, iteration, key, sizeof key);
  if (rc == CH_OK) rc = t->session.st->put(t->session.st_h, key, blob, len, err);
  free(blob);
  return rc;
}

static int ch__checkpoint(ch__trainer *t, const ch_iteration_stats *st, ch_error *err) {
  void *blob = NULL;
  size_t len = 0;
  int rc = ch__store_critics(t, st->iteration, err);
  if (rc == CH_OK) rc = t->net.vt->save(t->net.h, &blob, &len, err);
  if (rc != CH_OK) return rc;
  char *metrics = ch__metrics_json(st, t->return_scale);
  ch_checkpoint_info ck = {NULL,
                           st->iteration,
                           st->total_episodes,
                           st->total_steps,
                           st->elapsed_seconds,
                           metrics,
                           NULL,
                           NULL,
                           0};
  rc = ch_model_save_checkpoint(&t->session, t->cfg->model, &ck, blob, len, err);
  if (rc == CH_OK) rc = ch_train_log_store(t->log, st->iteration, st->total_episodes, metrics, err);
  if (rc == CH_OK) {
    /* what worker processes fetch: announced only once it is stored whole */
    ch_model_checkpoint_key(t->cfg->model, st->iteration, t->note.checkpoint,
                            sizeof t->note.checkpoint);
    ch_sha256_hex(blob, len, t->note.sha256);
  }
  cJSON_free(metrics);
  t->net.vt->free_blob(t->net.h, blob);
  /* The records this iteration learned from are safe in the checkpoint now. */
  if (rc == CH_OK) ch__ack_held(t);
  return rc;
}

static void ch__print_progress(const ch__trainer *t, const ch_iteration_stats *s) {
  double sps = s->rollout_seconds > 0 ? s->steps / s->rollout_seconds : 0;
  if (t->tty) printf("\r\033[K"); /* over the status line */
  printf("iter %4lld | episodes %4d (%6lld) | reward %9.2f | progress %5.1f%% | laps %3.0f%% | "
         "steps %7lld | %7.0f steps/s | entropy %.2f",
         (long long)s->iteration, s->episodes, (long long)s->total_episodes, s->mean_reward,
         s->mean_progress, 100 * s->completion_rate, (long long)s->steps, sps, s->entropy);
  if (s->eval_laps >= 0) printf(" | eval %d/3 laps", s->eval_laps);
  printf("\n");
  fflush(stdout);
}

/* Greedy evaluation on the training track, when laps are being completed at all. */
static int ch__maybe_evaluate(ch__trainer *t, ch_iteration_stats *st, ch_error *err) {
  st->eval_laps = -1;
  if (t->cfg->stop.eval_laps <= 0 || st->completion_rate <= 0) return CH_OK;
  ch_eval_options eo;
  ch_eval_defaults(&eo);
  eo.max_seconds = 90;
  ch_eval_result r;
  eo.space = &t->space;
  int rc = ch_eval_run(&t->eval_env, &t->net, t->cfg->actions, t->cfg->num_actions, &eo, &r, err);
  st->eval_laps = r.completed_laps;
  st->eval_lap_time = r.completed_laps ? r.trial[0].lap_time : 0;
  return rc;
}

static const char *ch__stop_reason(const ch__trainer *t, const ch_iteration_stats *s) {
  const ch_stop_conditions *c = &t->cfg->stop;
  if (c->eval_laps > 0 && s->eval_laps >= c->eval_laps) return "evaluation laps completed";
  if (c->avg_progress > 0 && s->mean_progress >= c->avg_progress) return "average progress reached";
  if (c->max_episodes > 0 && s->total_episodes >= c->max_episodes) return "episode limit";
  if (c->max_iterations > 0 && s->iteration + 1 >= c->max_iterations) return "iteration limit";
  if (c->max_seconds > 0 && s->elapsed_seconds >= c->max_seconds) return "time limit";
  const ch_hyperparameters *hp = &t->cfg->hp;
  if (hp->term_cond_avg_score > 0 && s->mean_reward >= hp->term_cond_avg_score)
    return "average score reached (term_cond_avg_score)";
  if (hp->term_cond_max_episodes > 0 && s->total_episodes >= hp->term_cond_max_episodes)
    return "episode limit (term_cond_max_episodes)";
  return NULL;
}

/* ---------------------------------------------------------------- the loop */

/* Hand the workers policy `version`: threads get the parameters at once; processes get an
** announcement pointing at the checkpoint, which must be stored first. */
static int ch__publish(ch__trainer *t, uint64_t version, int random_actions, ch_error *err) {
  t->t_published = ch_clock_now();
  if (!t->distributed) {
    t->net.vt->get_params(t->net.h, t->params, t->net.spec.param_count);
    ch_rollout_publish(t->rollout, version, t->params, t->net.spec.param_count, random_actions,
                       t->cfg->hp.num_episodes_between_training);
    return CH_OK;
  }
  t->note.version = version;
  t->note.round = 0;
  t->note.random = random_actions;
  int rc;
  while ((rc = ch__announce(t, err)) < 0 && ch__outage(t, rc, err) == CH_OK) continue;
  if (rc == CH_OK) ch__outage_over(t);
  return rc;
}

/* Storage copies the workers read: the reward now in force (worker processes fetch it). */
static int ch__store_reward(ch__trainer *t, ch_error *err) {
  char *text = NULL, key[512];
  int rc = ch_read_file(t->cfg->reward, &text, NULL, err);
  snprintf(key, sizeof key, "models/%s/reward_function.lua", t->cfg->model);
  if (rc == CH_OK) rc = t->session.st->put(t->session.st_h, key, text, strlen(text), err);
  free(text);
  return rc;
}

/* The eval env follows the first track in force. */
static int ch__reopen_eval_env(ch__trainer *t, ch_error *err) {
  ch_env_destroy(&t->eval_env);
  free(t->waypoints);
  t->waypoints = NULL;
  ch_env_spec before = t->eval_env.spec;
  int rc = ch__open_eval_env(t, err);
  if (rc == CH_OK && (t->eval_env.spec.obs_size != before.obs_size ||
                      t->eval_env.spec.image_width != before.image_width))
    rc = ch_error_set(err, CH_EINVAL,
                      "%s: on_iteration: track '%s' gives observations of "
                      "another size than the model takes",
                      t->cfg->script, t->cfg->track);
  return rc;
}

/* Tracks or reward changed: workers start again with them. */
static int ch__restart_workers(ch__trainer *t, ch_error *err) {
  ch_rollout_stop(t->rollout);
  t->rollout = NULL;
  int rc = ch__reopen_eval_env(t, err);
  if (rc == CH_OK) rc = ch__store_reward(t, err);
  if (rc == CH_OK) rc = ch__start_rollout(t, err);
  if (rc == CH_OK) rc = ch__store_spec(t, err);
  t->note.spec = ++t->spec_revision; /* worker processes reload the spec */
  return rc;
}

/* save_checkpoint(name): this iteration's weights as a model of their own, MODEL.name. */
static int ch__save_named(ch__trainer *t, const char *name, ch_error *err) {
  char dst[300];
  snprintf(dst, sizeof dst, "%s.%s", t->cfg->model, name);
  ch_error ignored;
  ch_model_delete(&t->session, dst, &ignored); /* a name saved again keeps the newest */
  int rc = ch_model_clone(&t->session, t->cfg->model, dst, err);
  if (rc == CH_OK) ch_log(CH_LOG_INFO, "trainer", "saved this iteration's weights as '%s'", dst);
  return rc;
}

static void ch__apply_tracks(ch_train_config *c, const ch_schedule_actions *a) {
  c->num_tracks = a->num_tracks;
  for (int i = 0; i < a->num_tracks; i++) {
    snprintf(c->tracks[i], sizeof c->tracks[i], "%s", a->tracks[i]);
    snprintf(c->track_paths[i], sizeof c->track_paths[i], "%s", a->track_paths[i]);
  }
  snprintf(c->track, sizeof c->track, "%s", c->tracks[0]);
  snprintf(c->track_path, sizeof c->track_path, "%s", c->track_paths[0]);
}

/* Run on_iteration and apply what it asks for; a stop request fills stop (else untouched). */
static int ch__run_schedule(ch__trainer *t, const ch_iteration_stats *st, char *stop,
                            size_t stop_size, ch_error *err) {
  if (!t->schedule) return CH_OK;
  ch_schedule_actions a;
  int rc = ch_schedule_on_iteration(t->schedule, st, &a, err);
  if (rc != CH_OK) return rc;
  ch_train_config *c = t->cfg;
  if (a.set_lr) c->hp.lr = a.lr;
  if (a.set_beta_entropy) c->hp.beta_entropy = a.beta_entropy;
  if (a.set_tracks) ch__apply_tracks(c, &a);
  if (a.set_reward) snprintf(c->reward, sizeof c->reward, "%s", a.reward);
  if (a.set_tracks || a.set_reward) {
    ch_log(CH_LOG_INFO, "trainer", "on_iteration: now training on %s%s with %s", c->track,
           c->num_tracks > 1 ? " (and more)" : "", c->reward);
    rc = ch__restart_workers(t, err);
  }
  if (rc == CH_OK && a.save_checkpoint) rc = ch__save_named(t, a.checkpoint_name, err);
  if (a.stop) snprintf(stop, stop_size, "%s", a.stop_reason);
  return rc;
}

/* The worker threads' time spent since the last iteration. */
static void ch__worker_times(ch__trainer *t, ch_iteration_stats *st) {
  if (!t->rollout) return;
  ch_rollout_time now;
  ch_rollout_times(t->rollout, &now);
  st->act_seconds = now.policy_seconds - t->times.policy_seconds;
  st->env_seconds = now.env_seconds - t->times.env_seconds;
  st->reward_seconds = now.reward_seconds - t->times.reward_seconds;
  t->times = now;
}

static int ch__iteration(ch__trainer *t, ch_iteration_stats *st, char *stop, size_t stop_size,
                         ch_error *err) {
  int rc = ch__collect(t, (uint64_t)st->iteration, st, err);
  if (rc != CH_OK) return rc;
  st->total_episodes += st->episodes;
  st->total_steps += st->steps;
  double t_collected = ch_clock_now();
  rc = ch__update(t, st, err);
  if (rc != CH_OK) return rc;
  st->rollout_seconds = t_collected - t->t_published;
  ch__worker_times(t, st);
  st->update_seconds = ch_clock_now() - t_collected;
  st->elapsed_seconds = ch_clock_now() - t->t0;
  uint64_t next = (uint64_t)st->iteration + 1;
  /* Threads drive the new policy while we checkpoint; processes need the checkpoint first,
  ** and an on_iteration callback may change what the workers drive. */
  int early = !t->distributed && !t->schedule;
  if (early) rc = ch__publish(t, next, 0, err);
  if (rc == CH_OK) rc = ch__maybe_evaluate(t, st, err);
  if (rc == CH_OK) rc = ch__checkpoint(t, st, err);
  if (rc == CH_OK) rc = ch__run_schedule(t, st, stop, stop_size, err);
  if (rc == CH_OK && !early) rc = ch__publish(t, next, 0, err);
  return rc;
}

static int ch__start_workers(ch__trainer *t, ch_error *err) {
  const ch_train_options *o = t->opt;
  if (!t->distributed || o->worker_processes <= 0) return CH_OK;
  if (!o->worker_command)
    return ch_error_set(err, CH_EINVAL, "worker processes need the chicane executable's path");
  return ch_workers_start(&t->procs, o->worker_processes, o->worker_command, o->buffer,
                          o->storage_root, t->cfg->model, err);
}

static int ch__loop(ch__trainer *t, ch_train_summary *out, ch_error *err) {
  ch_iteration_stats prev = t->resumed;
  /* The first policy of a fresh model acts at random (DeepRacer's warm-up). A resumed or
  ** cloned model acts with its checkpoint, whose key the announcement names. */
  int64_t first = t->first_iteration;
  int warmup = first == 0 && !t->cfg->clone_from[0];
  int rc = ch__publish(t, (uint64_t)first, warmup, err);
  if (rc == CH_OK) rc = ch__start_workers(t, err);
  for (int64_t it = first; rc == CH_OK; it++) {
    ch_iteration_stats st;
    memset(&st, 0, sizeof st);
    st.iteration = it;
    st.total_episodes = prev.total_episodes;
    st.total_steps = prev.total_steps;
    char stop[256] = "";
    rc = ch__iteration(t, &st, stop, sizeof stop, err);
    if (rc != CH_OK) break;
    if (!t->opt->quiet) ch__print_progress(t, &st);
    const char *reason = stop[0] ? stop : ch__stop_reason(t, &st);
    out->iterations = it + 1 - first;
    out->episodes = st.total_episodes;
    out->env_steps = st.total_steps;
    out->last = prev = st;
    if (reason) {
      snprintf(out->stop_reason, sizeof out->stop_reason, "%s", reason);
      break;
    }
  }
  if (t->distributed) {
    t->note.done = 1;
    ch_error ignored;
    ch__announce(t, &ignored); /* workers leave; a dead buffer cannot tell them anyway */
  }
  return rc;
}

int ch_train(const ch_train_config *cfg, const ch_train_options *o, ch_train_summary *out,
             ch_error *err) {
  ch__trainer t;
  memset(&t, 0, sizeof t);
  memset(out, 0, sizeof *out);
  t.cfg = malloc(sizeof *t.cfg);
  if (!t.cfg) return ch_error_set(err, CH_ENOMEM, "out of memory");
  *t.cfg = *cfg;
  ch_policy_space_from_config(t.cfg, &t.space);
  t.opt = o;
  t.tty = isatty(STDOUT_FILENO);
  t.return_scale = 1.0;
  t.rng = cfg->seed ^ 0x5eedull;
  t.t0 = ch_clock_now();
  int rc = ch__setup(&t, err);

  /* a resumed run must not replay the shuffles of the first one */
  t.rng ^= (uint64_t)t.first_iteration * 0x9e3779b97f4a7c15ull;
  if (rc == CH_OK) rc = ch__loop(&t, out, err);
  out->seconds = ch_clock_now() - t.t0;
  ch_rollout_stop(t.rollout);
  t.rollout = NULL;
  if (rc != CH_OK) snprintf(out->stop_reason, sizeof out->stop_reason, "failed: %s", err->message);
  ch_error ignored;
  if (t.registered) {
    ch_catalog_set_status(t.session.cat, cfg->model, rc == CH_OK ? "ready" : "failed", NULL);
    ch_model_store_record(&t.session, cfg->model, &ignored);
  }
  if (t.run_started)
    ch_model_run_end(&t.session, &t.run, out->stop_reason, out->iterations, out->env_steps,
                     &ignored);
  ch__teardown(&t);
  free(t.cfg);
  return rc;
}
