/* trainer.c -- the training loop: workers (threads here, or processes anywhere) fill the
** buffer, PPO updates the policy, each iteration is checkpointed to storage and indexed in the
** catalog, and the new policy is handed back to the workers. */
#include "trainer.h"

#include "channel.h"
#include "log.h"
#include "model.h"
#include "obs.h"
#include "ppo.h"
#include "procs.h"
#include "rng.h"
#include "rollout.h"
#include "segment.h"
#include "worker.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CH__MAX_GRAD_NORM 0.5f
#define CH__VALUE_COEF    0.5
#define CH__STALL_SECONDS 3.0 /* no new segment this long: ask the workers for more episodes */

/* Training samples of one iteration, with advantages and returns already computed. */
typedef struct ch__batch {
  int n, cap, obs_size, image_size;
  float *obs, *logp, *adv, *ret;
  uint8_t *image;
  int32_t *act;
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
  const ch_train_config *cfg;
  const ch_train_options *opt;
  ch_session session;
  ch_plugin *env_p, *net_p;
  ch_env eval_env;
  ch_net net;
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
  int32_t *mb_act;
  int *perm;
  float *scaled_reward;
  double return_scale; /* value targets are returns / return_scale (running std) */
  uint64_t rng;
  double t0;
  double t_published; /* when the workers got the policy being collected */
} ch__trainer;

static double ch__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

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
  int32_t *act = realloc(b->act, sizeof(int32_t) * (size_t)cap);
  if (act) b->act = act;
  uint8_t *image = b->image_size ? realloc(b->image, (size_t)cap * (size_t)b->image_size) : NULL;
  if (image) b->image = image;
  if (!obs || !logp || !adv || !ret || !act || (b->image_size && !image)) return CH_ENOMEM;
  b->cap = cap;
  return CH_OK;
}

static void ch__batch_free(ch__batch *b) {
  free(b->image);
  free(b->obs);
  free(b->logp);
  free(b->adv);
  free(b->ret);
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

static int ch__open_plugins(ch__trainer *t, ch_error *err) {
  const ch_train_config *c = t->cfg;
  int rc = ch_plugin_find(CH_PLUGIN_ENV, c->env_plugin, &t->env_p, err);
  if (rc == CH_OK) rc = ch_plugin_find(CH_PLUGIN_NETWORK, c->network_plugin, &t->net_p, err);
  if (rc != CH_OK) return rc;
  ch_eval_options eo;
  ch_eval_defaults(&eo);
  eo.max_seconds = 90;
  char *json = ch_eval_env_config(c->track_path, &eo);
  rc = json ? ch_env_create(t->env_p, json, &t->eval_env, err) : CH_ENOMEM;
  free(json);
  if (rc != CH_OK) return rc;
  uint32_t n = t->eval_env.spec.num_waypoints;
  t->waypoints = calloc((size_t)n * 2 + 2, sizeof(double));
  if (!t->waypoints) return ch_error_set(err, CH_ENOMEM, "out of memory");
  rc = t->eval_env.vt->waypoints(t->eval_env.h, t->waypoints, n);
  return rc < 0 ? ch_error_set(err, rc, "env: cannot read the waypoints") : CH_OK;
}

/* Floats of network input per sample: the image (as floats) and the vector observation. */
static size_t ch__input_size(const ch__trainer *t) {
  return (size_t)t->batch.image_size + (size_t)t->batch.obs_size;
}

static int ch__alloc_minibatch(ch__trainer *t) {
  size_t B = (size_t)t->cfg->hp.batch_size, IN = ch__input_size(t);
  size_t A = (size_t)t->cfg->num_actions;
  t->mb_obs = malloc(sizeof(float) * B * IN);
  t->mb_logits = malloc(sizeof(float) * B * A);
  t->mb_dlogits = malloc(sizeof(float) * B * A);
  t->mb_value = malloc(sizeof(float) * B);
  t->mb_dvalue = malloc(sizeof(float) * B);
  t->mb_logp = malloc(sizeof(float) * B);
  t->mb_adv = malloc(sizeof(float) * B);
  t->mb_ret = malloc(sizeof(float) * B);
  t->mb_act = malloc(sizeof(int32_t) * B);
  t->scaled_reward = malloc(sizeof(float) * (size_t)t->cfg->segment_steps);
  t->params = malloc(sizeof(float) * t->net.spec.param_count);
  return t->mb_obs && t->mb_logits && t->mb_dlogits && t->mb_value && t->mb_dvalue && t->mb_logp &&
                 t->mb_adv && t->mb_ret && t->mb_act && t->scaled_reward && t->params
             ? CH_OK
             : CH_ENOMEM;
}

static int ch__create_network(ch__trainer *t, cJSON **netcfg, ch_error *err) {
  const ch_env_spec *sp = &t->eval_env.spec;
  t->batch.obs_size = (int)sp->obs_size;
  t->batch.image_size = (int)(sp->image_width * sp->image_height * sp->image_channels);
  *netcfg = ch_config_network_json(t->cfg, (uint32_t)ch__input_size(t));
  char *json = cJSON_PrintUnformatted(*netcfg);
  int rc = json ? ch_net_create(t->net_p, json, &t->net, err) : CH_ENOMEM;
  cJSON_free(json);
  if (rc == CH_OK && t->net.spec.policy_size != (uint32_t)t->cfg->num_actions)
    rc = ch_error_set(err, CH_EPLUGIN, "network plugin gives %u policy outputs for %d actions",
                      t->net.spec.policy_size, t->cfg->num_actions);
  if (rc == CH_OK && ch__alloc_minibatch(t) != CH_OK)
    rc = ch_error_set(err, CH_ENOMEM, "out of memory");
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

static int ch__start_rollout(ch__trainer *t, const cJSON *netcfg, ch_error *err) {
  char *env_json = ch__env_json(t->cfg, t->cfg->cars_per_worker);
  char *net_json = cJSON_PrintUnformatted(netcfg);
  const char *envs[1] = {env_json};
  int rc = CH_OK;
  if (!t->distributed) {
    ch_rollout_setup s = {t->cfg,     t->env_p,        t->net_p, envs, 1,  net_json,
                          &t->buffer, t->cfg->workers, 0,        0,    0.0};
    rc = ch_rollout_start(&s, &t->rollout, err);
  }
  /* Worker processes read everything they need from storage. */
  if (rc == CH_OK) rc = ch_worker_spec_store(&t->session, t->cfg, envs, 1, net_json, 0, 0.0, err);
  free(env_json);
  cJSON_free(net_json);
  return rc;
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
    ch_checkpoint_info_free(&ck);
  }
  ch_loaded_model_free(&t->session, &m);
  if (rc == CH_OK)
    ch_log(CH_LOG_INFO, "trainer", "resuming '%s' at iteration %lld", t->cfg->model,
           (long long)t->first_iteration);
  return rc;
}

static int ch__register(ch__trainer *t, const cJSON *netcfg, ch_error *err) {
  ch_model_info info;
  int exists = ch_catalog_get_model(t->session.cat, t->cfg->model, &info, NULL) == CH_OK;
  if (exists) ch_model_info_free(&info);
  if (t->opt->resume && exists) {
    int rc = ch__resume(t, err);
    if (rc == CH_OK) rc = ch_catalog_set_status(t->session.cat, t->cfg->model, "training", err);
    return rc;
  }
  return ch_model_create(&t->session, t->cfg, netcfg, t->opt->replace, err);
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
  /* Workers (and so every reward script) start before the model is registered, so that a
  ** broken reward script leaves the catalog untouched. */
  if (rc == CH_OK) rc = ch__start_rollout(t, netcfg, err);
  if (rc == CH_OK) rc = ch__register(t, netcfg, err);
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
  ch_net_destroy(&t->net);
  ch_env_destroy(&t->eval_env);
  ch_plugin_close(t->net_p);
  ch_plugin_close(t->env_p);
  ch_session_close(&t->session);
  ch__batch_free(&t->batch);
  void *bufs[] = {t->waypoints,  t->params,    t->mb_obs,   t->mb_logits,     t->mb_value,
                  t->mb_dlogits, t->mb_dvalue, t->mb_logp,  t->mb_adv,        t->mb_ret,
                  t->mb_act,     t->perm,      t->held.rec, t->scaled_reward, t->seen.keys};
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

/* Append a decoded segment to the batch with its advantages and returns (in scaled units). */
static int ch__add_segment(ch__trainer *t, const ch_segment *s) {
  int T = (int)s->num_steps, n = t->batch.n;
  if (T > t->cfg->segment_steps || s->obs_size != (uint32_t)t->batch.obs_size ||
      s->image_size != (uint32_t)t->batch.image_size || s->action_size != 1)
    return CH_ECORRUPT;
  for (int i = 0; i < T; i++)
    if (!(s->action[i] >= 0 && s->action[i] < (float)t->cfg->num_actions)) return CH_ECORRUPT;
  if (ch__batch_reserve(&t->batch, T) != CH_OK) return CH_ENOMEM;
  for (int i = 0; i < T; i++) t->scaled_reward[i] = (float)(s->reward[i] / t->return_scale);
  ch_gae(T, t->scaled_reward, s->value, s->bootstrap_value, (s->flags & CH_SEGMENT_TERMINAL) != 0,
         t->cfg->hp.discount_factor, CH_PPO_GAE_LAMBDA, t->batch.adv + n, t->batch.ret + n);
  if (s->obs_size)
    memcpy(t->batch.obs + (size_t)n * s->obs_size, s->obs, sizeof(float) * (size_t)T * s->obs_size);
  if (s->image_size)
    memcpy(t->batch.image + (size_t)n * s->image_size, s->image, (size_t)T * s->image_size);
  for (int i = 0; i < T; i++) t->batch.act[n + i] = (int32_t)s->action[i];
  memcpy(t->batch.logp + n, s->logp, sizeof(float) * (size_t)T);
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
  if (s.policy_version != version) {
    st->stale_segments++; /* on-policy PPO learns only from the current policy's experience */
    return 0;
  }
  int fresh = ch__seen_insert(&t->seen, ch__segment_key(&s));
  if (fresh < 0) return ch_error_set(err, CH_ENOMEM, "trainer: out of memory");
  if (!fresh) {
    st->duplicate_segments++;
    return 0;
  }
  int rc = ch__add_segment(t, &s);
  if (rc == CH_ENOMEM) return ch_error_set(err, rc, "trainer: out of memory for the batch");
  if (rc != CH_OK) {
    st->corrupt_segments++;
    ch_log(CH_LOG_WARN, "trainer", "buffer record %llu rejected: shapes differ from the model's",
           (unsigned long long)rec->id);
    return 0;
  }
  if (s.flags & CH_SEGMENT_EPISODE_END) ch__count_episode(&s, st);
  return 1;
}

/* Take one record from the buffer: 1 = used, 0 = nothing yet or rejected, < 0 = error. */
static int ch__take_record(ch__trainer *t, uint64_t version, ch_iteration_stats *st,
                           ch_error *err) {
  ch_record rec;
  int got = t->buffer.vt->pull(t->buffer.h, 100, &rec, err);
  if (got <= 0) return got;
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
  if (ch__now() - *last_progress < CH__STALL_SECONDS) return CH_OK;
  /* Episodes lost with a dead worker are run again by the living ones. */
  t->note.round++;
  *last_progress = ch__now();
  return ch__announce(t, err);
}

static int ch__collect(ch__trainer *t, uint64_t version, ch_iteration_stats *st, ch_error *err) {
  int want = t->cfg->hp.num_episodes_between_training;
  double last_progress = ch__now();
  t->batch.n = 0;
  ch__seen_clear(&t->seen);
  while (st->episodes < want) {
    int rc = ch__take_record(t, version, st, err);
    if (rc < 0) return rc;
    if (rc == 1)
      last_progress = ch__now();
    else if ((rc = ch__on_idle(t, &last_progress, err)) != CH_OK)
      return rc;
  }
  st->mean_reward /= st->episodes;
  st->mean_progress /= st->episodes;
  st->completion_rate /= st->episodes;
  st->steps = t->batch.n;
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
  for (int i = 0; i < m; i++) {
    int j = idx[i];
    ch_obs_input(t->batch.obs + (size_t)j * O, (uint32_t)O,
                 I ? t->batch.image + (size_t)j * I : NULL, (uint32_t)I,
                 t->mb_obs + (size_t)i * IN);
    t->mb_act[i] = t->batch.act[j];
    t->mb_logp[i] = t->batch.logp[j];
    t->mb_adv[i] = t->batch.adv[j];
    t->mb_ret[i] = t->batch.ret[j];
  }
}

static int ch__minibatch(ch__trainer *t, const int *idx, int m, ch_ppo_stats *sum, ch_error *err) {
  const ch_train_config *c = t->cfg;
  ch_ppo_params pp = {CH_PPO_CLIP, c->hp.beta_entropy, CH__VALUE_COEF, c->hp.loss_type};
  ch_optimizer_config oc = {(float)c->hp.lr, 0.9f, 0.999f, (float)CH_PPO_ADAM_EPS,
                            CH__MAX_GRAD_NORM};
  ch_ppo_stats st;
  ch__gather(t, idx, m);
  int rc = t->net.vt->forward(t->net.h, t->mb_obs, (uint32_t)m, t->mb_logits, t->mb_value, err);
  if (rc != CH_OK) return rc;
  ch_ppo_loss(&pp, m, c->num_actions, t->mb_logits, t->mb_value, t->mb_act, t->mb_logp, t->mb_adv,
              t->mb_ret, t->mb_dlogits, t->mb_dvalue, &st);
  t->net.vt->zero_grad(t->net.h);
  rc = t->net.vt->backward(t->net.h, t->mb_dlogits, t->mb_dvalue, err);
  if (rc == CH_OK) rc = t->net.vt->optimizer_step(t->net.h, &oc, err);
  sum->policy_loss += st.policy_loss;
  sum->value_loss += st.value_loss;
  sum->entropy += st.entropy;
  sum->approx_kl += st.approx_kl;
  sum->clip_fraction += st.clip_fraction;
  sum->loss += 1; /* counts minibatches */
  return rc;
}

static int ch__update(ch__trainer *t, ch_iteration_stats *st, ch_error *err) {
  int n = t->batch.n, B = t->cfg->hp.batch_size, rc = CH_OK;
  int *perm = realloc(t->perm, sizeof(int) * (size_t)n);
  if (!perm) return ch_error_set(err, CH_ENOMEM, "trainer: out of memory");
  t->perm = perm;
  for (int i = 0; i < n; i++) perm[i] = i;
  ch__normalize_advantages(&t->batch);
  ch_ppo_stats sum = {0, 0, 0, 0, 0, 0};
  for (int e = 0; rc == CH_OK && e < t->cfg->hp.num_epochs; e++) {
    for (int i = n - 1; i > 0; i--) {
      int j = (int)(ch_rng_next(&t->rng) % (uint64_t)(i + 1)), tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    for (int s = 0; rc == CH_OK && s < n; s += B)
      rc = ch__minibatch(t, perm + s, n - s < B ? n - s : B, &sum, err);
  }
  double k = sum.loss > 0 ? 1.0 / sum.loss : 0;
  st->policy_loss = sum.policy_loss * k;
  st->value_loss = sum.value_loss * k;
  st->entropy = sum.entropy * k;
  st->approx_kl = sum.approx_kl * k;
  st->clip_fraction = sum.clip_fraction * k;
  ch__update_return_scale(t);
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
  cJSON_AddNumberToObject(o, "return_scale", return_scale);
  cJSON_AddNumberToObject(o, "stale_segments", (double)s->stale_segments);
  cJSON_AddNumberToObject(o, "duplicate_segments", (double)s->duplicate_segments);
  cJSON_AddNumberToObject(o, "corrupt_segments", (double)s->corrupt_segments);
  cJSON_AddNumberToObject(o, "rollout_seconds", s->rollout_seconds);
  cJSON_AddNumberToObject(o, "update_seconds", s->update_seconds);
  if (s->eval_laps >= 0) {
    cJSON_AddNumberToObject(o, "eval_laps", s->eval_laps);
    cJSON_AddNumberToObject(o, "eval_lap_time", s->eval_lap_time);
  }
  char *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return json;
}

static int ch__checkpoint(ch__trainer *t, const ch_iteration_stats *st, ch_error *err) {
  void *blob = NULL;
  size_t len = 0;
  int rc = t->net.vt->save(t->net.h, &blob, &len, err);
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

static void ch__print_progress(const ch_iteration_stats *s) {
  double sps = s->rollout_seconds > 0 ? s->steps / s->rollout_seconds : 0;
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
  return NULL;
}

/* ---------------------------------------------------------------- the loop */

/* Hand the workers policy `version`: threads get the parameters at once; processes get an
** announcement pointing at the checkpoint, which must be stored first. */
static int ch__publish(ch__trainer *t, uint64_t version, int random_actions, ch_error *err) {
  t->t_published = ch__now();
  if (!t->distributed) {
    t->net.vt->get_params(t->net.h, t->params, t->net.spec.param_count);
    ch_rollout_publish(t->rollout, version, t->params, t->net.spec.param_count, random_actions,
                       t->cfg->hp.num_episodes_between_training);
    return CH_OK;
  }
  t->note.version = version;
  t->note.round = 0;
  t->note.random = random_actions;
  return ch__announce(t, err);
}

static int ch__iteration(ch__trainer *t, ch_iteration_stats *st, ch_error *err) {
  int rc = ch__collect(t, (uint64_t)st->iteration, st, err);
  if (rc != CH_OK) return rc;
  st->total_episodes += st->episodes;
  st->total_steps += st->steps;
  double t_collected = ch__now();
  rc = ch__update(t, st, err);
  if (rc != CH_OK) return rc;
  st->rollout_seconds = t_collected - t->t_published;
  st->update_seconds = ch__now() - t_collected;
  st->elapsed_seconds = ch__now() - t->t0;
  uint64_t next = (uint64_t)st->iteration + 1;
  /* threads drive the new policy while we checkpoint; processes need the checkpoint first */
  if (!t->distributed) rc = ch__publish(t, next, 0, err);
  if (rc == CH_OK) rc = ch__maybe_evaluate(t, st, err);
  if (rc == CH_OK) rc = ch__checkpoint(t, st, err);
  if (rc == CH_OK && t->distributed) rc = ch__publish(t, next, 0, err);
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
  /* The first policy of a fresh model acts at random (DeepRacer's warm-up). A resumed model
  ** acts with its checkpoint, whose key the announcement names. */
  int64_t first = t->first_iteration;
  int rc = ch__publish(t, (uint64_t)first, first == 0, err);
  if (rc == CH_OK) rc = ch__start_workers(t, err);
  for (int64_t it = first; rc == CH_OK; it++) {
    ch_iteration_stats st;
    memset(&st, 0, sizeof st);
    st.iteration = it;
    st.total_episodes = prev.total_episodes;
    st.total_steps = prev.total_steps;
    rc = ch__iteration(t, &st, err);
    if (rc != CH_OK) break;
    if (!t->opt->quiet) ch__print_progress(&st);
    out->stop_reason = ch__stop_reason(t, &st);
    out->iterations = it + 1 - first;
    out->episodes = st.total_episodes;
    out->env_steps = st.total_steps;
    out->last = prev = st;
    if (out->stop_reason) break;
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
  t.cfg = cfg;
  t.opt = o;
  t.return_scale = 1.0;
  t.rng = cfg->seed ^ 0x5eedull;
  t.t0 = ch__now();
  int rc = ch__setup(&t, err);
  int registered = rc == CH_OK;
  /* a resumed run must not replay the shuffles of the first one */
  t.rng ^= (uint64_t)t.first_iteration * 0x9e3779b97f4a7c15ull;
  if (rc == CH_OK) rc = ch__loop(&t, out, err);
  out->seconds = ch__now() - t.t0;
  ch_rollout_stop(t.rollout);
  t.rollout = NULL;
  if (registered)
    ch_catalog_set_status(t.session.cat, cfg->model, rc == CH_OK ? "ready" : "failed", NULL);
  ch__teardown(&t);
  return rc;
}
