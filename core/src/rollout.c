/* rollout.c -- worker threads: step a batch of cars with the policy, cut episodes into segments. */
#include "rollout.h"

#include "clock.h"

#include "log.h"
#include "obs.h"
#include "paths.h"
#include "policy.h"
#include "reward.h"
#include "rng.h"
#include "segment.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ch__worker {
  ch_rollout *r;
  uint32_t id;
  pthread_t thread;
  int started_thread;
  ch_env env;
  ch_net net;
  ch_reward **reward; /* one Lua state per car: a script's globals belong to one episode stream */
  double *waypoints;
  ch_policy_space space;
  /* cars, vector obs floats, image bytes, network input floats, policy outputs, action floats,
  ** segment steps */
  int K, O, I, IN, A, AS, T;
  float *obs, *input, *policy, *values, *steer, *speed;
  uint8_t *image, *active;
  int32_t *status;
  ch_env_params *params;
  /* per-car segment under construction: K rows of T steps */
  float *seg_obs, *seg_act, *seg_rew, *seg_logp, *seg_val, *seg_trace;
  uint8_t *seg_img;
  int *seg_len;
  uint32_t *seg_seq;
  uint64_t *episode_id;
  double *ep_reward;
  uint64_t episodes_begun;
  /* cars whose segment waits for a bootstrap value: their network input */
  float *boot_input, *boot_val;
  int *boot_car, *boot_end;
  unsigned char *scratch;
  size_t scratch_cap;
  uint64_t rng;
  uint64_t version;
  int random_actions;
  int quota;
} ch__worker;

struct ch_rollout {
  const ch_train_config *cfg;
  ch_buffer *buffer;
  int nworkers;
  int alternate_direction;
  double start_offset;
  ch__worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t version;
  uint64_t round; /* bumped by every publish, so a repeated version runs again */
  int have_policy;
  float *params;
  uint64_t param_count;
  int random_actions;
  int episodes;
  atomic_int stop;
  atomic_int failed;
  ch_error error;
  atomic_llong start_counter;
  atomic_llong episodes_done;
  atomic_llong steps_done; /* env steps of every car: e-greedy's epsilon decays with them */
  /* where the workers' time goes, nanoseconds summed over threads (ch_rollout_times) */
  atomic_llong ns_policy, ns_env, ns_reward;
};

#define CH__OUTAGE_SECONDS 120.0 /* an unreachable buffer is waited for this long */

static void ch__fail(ch_rollout *r, const ch_error *e) {
  pthread_mutex_lock(&r->mu);
  if (!atomic_load(&r->failed)) {
    r->error = *e;
    atomic_store(&r->failed, e->code ? e->code : CH_ESTATE);
  }
  pthread_mutex_unlock(&r->mu);
}

static void *ch__alloc_zero(size_t n, size_t size, int *ok) {
  void *p = calloc(n ? n : 1, size);
  if (!p) *ok = 0;
  return p;
}

static int ch__worker_buffers(ch__worker *w) {
  size_t K = (size_t)w->K, O = (size_t)w->O, I = (size_t)w->I, T = (size_t)w->T;
  size_t IN = (size_t)w->IN, AS = (size_t)w->AS;
  int ok = 1;
  w->obs = ch__alloc_zero(K * O, sizeof(float), &ok);
  w->image = ch__alloc_zero(K * I, 1, &ok);
  w->input = I ? ch__alloc_zero(K * IN, sizeof(float), &ok) : w->obs;
  w->policy = ch__alloc_zero(K * (size_t)w->A, sizeof(float), &ok);
  w->values = ch__alloc_zero(K, sizeof(float), &ok);
  w->steer = ch__alloc_zero(K, sizeof(float), &ok);
  w->speed = ch__alloc_zero(K, sizeof(float), &ok);
  w->active = ch__alloc_zero(K, 1, &ok);
  w->status = ch__alloc_zero(K, sizeof(int32_t), &ok);
  w->params = ch__alloc_zero(K, sizeof(ch_env_params), &ok);
  w->seg_obs = ch__alloc_zero(K * T * O, sizeof(float), &ok);
  w->seg_img = ch__alloc_zero(K * T * I, 1, &ok);
  w->seg_act = ch__alloc_zero(K * T * AS, sizeof(float), &ok);
  w->seg_rew = ch__alloc_zero(K * T, sizeof(float), &ok);
  w->seg_logp = ch__alloc_zero(K * T, sizeof(float), &ok);
  w->seg_val = ch__alloc_zero(K * T, sizeof(float), &ok);
  w->seg_trace = ch__alloc_zero(K * T * CH_TRACE_FLOATS, sizeof(float), &ok);
  w->seg_len = ch__alloc_zero(K, sizeof(int), &ok);
  w->seg_seq = ch__alloc_zero(K, sizeof(uint32_t), &ok);
  w->episode_id = ch__alloc_zero(K, sizeof(uint64_t), &ok);
  w->ep_reward = ch__alloc_zero(K, sizeof(double), &ok);
  w->boot_input = ch__alloc_zero(K * IN, sizeof(float), &ok);
  w->boot_val = ch__alloc_zero(K, sizeof(float), &ok);
  w->boot_car = ch__alloc_zero(K, sizeof(int), &ok);
  w->boot_end = ch__alloc_zero(K, sizeof(int), &ok);
  ch_segment biggest = {.num_steps = (uint32_t)T,
                        .obs_size = (uint32_t)O,
                        .image_size = (uint32_t)I,
                        .action_size = (uint32_t)AS};
  w->scratch_cap = ch_segment_encoded_size(&biggest);
  w->scratch = ch__alloc_zero(w->scratch_cap, 1, &ok);
  return ok ? CH_OK : CH_ENOMEM;
}

static void ch__worker_free(ch__worker *w) {
  void *bufs[] = {w->obs,        w->image,    w->policy,   w->values,     w->steer,
                  w->speed,      w->active,   w->status,   w->params,     w->seg_obs,
                  w->seg_img,    w->seg_act,  w->seg_rew,  w->seg_logp,   w->seg_val,
                  w->seg_trace,  w->seg_len,  w->seg_seq,  w->episode_id, w->ep_reward,
                  w->boot_input, w->boot_val, w->boot_car, w->boot_end,   w->scratch,
                  w->waypoints};
  if (w->input != w->obs) free(w->input);
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  for (int k = 0; w->reward && k < w->K; k++) ch_reward_close(w->reward[k]);
  free(w->reward);
  ch_net_destroy(&w->net);
  ch_env_destroy(&w->env);
}

/* A reward script that mentions racing_line gets the track's reference line (computing it takes
** a moment, so scripts that do not read it do not pay for it). */
static int ch__racing_line(const char *env_json, const char *reward, ch_reward_extra *x,
                           ch_error *err) {
  char *text = NULL;
  memset(x, 0, sizeof *x);
  if (ch_read_file(reward, &text, NULL, NULL) != CH_OK) return CH_OK; /* open reports it */
  int wanted = strstr(text, "racing_line") != NULL;
  free(text);
  if (!wanted) return CH_OK;
  cJSON *env = cJSON_Parse(env_json);
  const char *track = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(env, "track"));
  double *xy = NULL, *speed = NULL;
  uint32_t n = 0;
  int rc = track ? ch_reward_racing_line(track, 0, &xy, &speed, &n, err) : CH_OK;
  cJSON_Delete(env);
  x->racing_line = xy;
  x->racing_line_speed = speed;
  x->num_racing_line = n;
  return rc;
}

/* Each car's reward state sees the centre line of this worker's own track. */
static int ch__open_rewards(ch__worker *w, const ch_train_config *cfg, const char *env_json,
                            ch_error *err) {
  uint32_t n = w->env.spec.num_waypoints;
  w->waypoints = calloc((size_t)n * 2 + 2, sizeof(double));
  w->reward = calloc((size_t)w->K, sizeof *w->reward);
  if (!w->waypoints || !w->reward) return ch_error_set(err, CH_ENOMEM, "worker: out of memory");
  int got = w->env.vt->waypoints(w->env.h, w->waypoints, n);
  if (got < 0) return ch_error_set(err, got, "worker %u: env cannot list its waypoints", w->id);
  ch_reward_options ro = {w->waypoints, (uint32_t)got, 0, 0};
  ch_reward_extra x;
  int rc = ch__racing_line(env_json, cfg->reward, &x, err);
  for (int k = 0; rc == CH_OK && k < w->K; k++)
    rc = ch_reward_open_extra(cfg->reward, &ro, &x, &w->reward[k], err);
  free((void *)x.racing_line);
  free((void *)x.racing_line_speed);
  return rc;
}

static int ch__worker_init(ch__worker *w, const ch_rollout_setup *s, int index, ch_error *err) {
  const char *env_json = s->env_json[index % s->num_env_json];
  int rc = ch_env_create(s->env_plugin, env_json, &w->env, err);
  if (rc == CH_OK) rc = ch_net_create(s->net_plugin, s->net_json, &w->net, err);
  if (rc != CH_OK) return rc;
  const ch_env_spec *sp = &w->env.spec;
  w->K = (int)sp->num_cars;
  w->O = (int)sp->obs_size;
  w->I = (int)(sp->image_width * sp->image_height * sp->image_channels);
  w->IN = w->I + w->O;
  ch_policy_space_from_config(s->cfg, &w->space);
  w->A = (int)w->net.spec.policy_size;
  w->AS = (int)ch_policy_action_size(&w->space);
  w->T = s->cfg->segment_steps;
  w->rng = s->cfg->seed * 1000003u + (uint64_t)w->id;
  if (w->net.spec.input_size != (uint32_t)w->IN)
    return ch_error_set(err, CH_EPLUGIN, "worker %u: network takes %u inputs, the env gives %d",
                        w->id, w->net.spec.input_size, w->IN);
  if ((size_t)w->A != ch_policy_output_size(&w->space))
    return ch_error_set(err, CH_EPLUGIN,
                        "worker %u: network gives %d policy outputs, the %s "
                        "action space needs %zu",
                        w->id, w->A, w->space.continuous ? "continuous" : "discrete",
                        ch_policy_output_size(&w->space));
  if (ch__worker_buffers(w) != CH_OK) return ch_error_set(err, CH_ENOMEM, "worker: out of memory");
  return ch__open_rewards(w, s->cfg, env_json, err);
}

static void ch__make_input(ch__worker *w, int k) {
  if (w->I)
    ch_obs_input(w->obs + (size_t)k * w->O, (uint32_t)w->O, w->image + (size_t)k * w->I,
                 (uint32_t)w->I, w->input + (size_t)k * w->IN);
}

static int ch__start_car(ch__worker *w, int k, ch_error *err) {
  ch_rollout *r = w->r;
  long long idx = atomic_fetch_add(&r->start_counter, 1);
  double frac = fmod((double)idx * r->cfg->start_advance, 1.0);
  /* Alternating cars go the other way round, so both directions appear in every iteration. */
  int reversed = r->alternate_direction && (idx & 1);
  ch_env_reset start = {frac, r->start_offset, reversed, 0, w->rng ^ ((uint64_t)idx << 17)};
  int rc = w->env.vt->reset(w->env.h, (uint32_t)k, &start, w->obs + (size_t)k * w->O,
                            w->I ? w->image + (size_t)k * w->I : NULL, &w->params[k], err);
  ch__make_input(w, k);
  w->active[k] = 1;
  w->seg_len[k] = 0;
  w->seg_seq[k] = 0;
  w->ep_reward[k] = 0;
  w->episode_id[k] = w->episodes_begun++;
  return rc;
}

/* Push an encoded segment. A buffer that cannot be reached (a redis restart) is waited for, as
** the trainer waits, up to CH__OUTAGE_SECONDS; the segment then goes through. */
static int ch__push_record(ch__worker *w, uint64_t version, size_t len, ch_error *err) {
  ch_buffer *b = w->r->buffer;
  long long since = 0;
  for (;;) {
    int rc = b->vt->push(b->h, version, w->scratch, len, err);
    if (rc != CH_ECONN && rc != CH_EIO && rc != CH_ETIMEDOUT) return rc;
    long long now = ch_clock_ns();
    if (!since) {
      since = now;
      ch_log(CH_LOG_WARN, "worker", "%s; waiting for the buffer", err->message);
    }
    if (now - since > (long long)(CH__OUTAGE_SECONDS * 1e9) || atomic_load(&w->r->stop)) return rc;
    ch_clock_sleep(0.5);
  }
}

/* Encode car k's segment and push it to the buffer. */
static int ch__push(ch__worker *w, int k, uint32_t flags, float bootstrap, ch_error *err) {
  size_t T = (size_t)w->T, base = (size_t)k * T;
  const ch_env_params *p = &w->params[k];
  ch_segment seg = {.policy_version = w->version,
                    .episode_id = w->episode_id[k],
                    .worker_id = w->id,
                    .seq = w->seg_seq[k]++,
                    .num_steps = (uint32_t)w->seg_len[k],
                    .obs_size = (uint32_t)w->O,
                    .image_size = (uint32_t)w->I,
                    .action_size = (uint32_t)w->AS,
                    .flags = flags | (w->random_actions ? CH_SEGMENT_RANDOM : 0),
                    .bootstrap_value = bootstrap,
                    .episode_status = p->episode_status,
                    .episode_steps = p->steps,
                    .episode_reward = (float)w->ep_reward[k],
                    .episode_progress = (float)p->progress,
                    .obs = w->seg_obs + base * (size_t)w->O,
                    .image = w->seg_img + base * (size_t)w->I,
                    .action = w->seg_act + base * (size_t)w->AS,
                    .reward = w->seg_rew + base,
                    .logp = w->seg_logp + base,
                    .value = w->seg_val + base,
                    .trace = w->seg_trace + base * CH_TRACE_FLOATS};
  size_t len = ch_segment_encoded_size(&seg);
  ch_segment_encode(&seg, w->scratch);
  w->seg_len[k] = 0;
  return ch__push_record(w, seg.policy_version, len, err);
}

/* How this step's actions are chosen: the warm-up acts at random; DeepRacer's e-greedy
** exploration mixes in random actions with a decaying epsilon; else the policy is sampled. */
static ch_act_mode ch__act_mode(ch__worker *w, double *epsilon) {
  const ch_hyperparameters *hp = &w->r->cfg->hp;
  *epsilon = 0;
  if (w->random_actions) return CH_ACT_RANDOM;
  if (hp->exploration_type != CH_EXPLORATION_E_GREEDY) return CH_ACT_SAMPLE;
  *epsilon =
      ch_policy_epsilon(hp->e_greedy_value, hp->epsilon_steps, atomic_load(&w->r->steps_done));
  return CH_ACT_EGREEDY;
}

/* Choose every active car's action and record the decision in its segment. */
static int ch__act(ch__worker *w, ch_error *err) {
  int rc = w->net.vt->forward(w->net.h, w->input, (uint32_t)w->K, w->policy, w->values, err);
  double epsilon;
  ch_act_mode mode = ch__act_mode(w, &epsilon);
  int stepped = 0;
  for (int k = 0; rc == CH_OK && k < w->K; k++) {
    if (!w->active[k]) continue;
    size_t i = (size_t)k * w->T + (size_t)w->seg_len[k]++;
    float logp;
    double steer, speed;
    ch_policy_act(&w->space, w->policy + (size_t)k * w->A, mode, epsilon, &w->rng,
                  w->seg_act + i * w->AS, &logp, &steer, &speed);
    memcpy(w->seg_obs + i * w->O, w->obs + (size_t)k * w->O, sizeof(float) * (size_t)w->O);
    if (w->I) memcpy(w->seg_img + i * w->I, w->image + (size_t)k * w->I, (size_t)w->I);
    w->seg_logp[i] = logp;
    w->seg_val[i] = w->values[k];
    w->steer[k] = (float)steer;
    w->speed[k] = (float)speed;
    stepped++;
  }
  atomic_fetch_add(&w->r->steps_done, stepped);
  return rc;
}

/* Forward the queued bootstrap states at once and push their segments. */
static int ch__flush_bootstraps(ch__worker *w, int n, ch_error *err) {
  if (n == 0) return CH_OK;
  int rc = w->net.vt->forward(w->net.h, w->boot_input, (uint32_t)n, NULL, w->boot_val, err);
  for (int i = 0; rc == CH_OK && i < n; i++)
    rc = ch__push(w, w->boot_car[i], w->boot_end[i] ? CH_SEGMENT_EPISODE_END : 0, w->boot_val[i],
                  err);
  return rc;
}

/* The sim-trace columns of the step car k just took. */
static void ch__trace(ch__worker *w, int k) {
  const ch_env_params *p = &w->params[k];
  float *t = w->seg_trace + ((size_t)k * w->T + (size_t)w->seg_len[k] - 1) * CH_TRACE_FLOATS;
  t[CH_TRACE_X] = (float)p->x;
  t[CH_TRACE_Y] = (float)p->y;
  t[CH_TRACE_YAW] = (float)p->heading;
  t[CH_TRACE_STEER] = (float)p->steering_angle;
  t[CH_TRACE_THROTTLE] = (float)p->speed;
  t[CH_TRACE_PROGRESS] = (float)p->progress;
  t[CH_TRACE_WAYPOINT] = (float)p->closest_waypoints[1];
  t[CH_TRACE_STATUS] = (float)w->status[k];
  t[CH_TRACE_ON_TRACK] = (float)p->all_wheels_on_track;
}

/* After a step: rewards, episode ends and segment cuts. Returns episodes finished, or < 0. */
static int ch__after_step(ch__worker *w, ch_error *err) {
  int finished = 0, nboot = 0, rc = CH_OK;
  for (int k = 0; rc == CH_OK && k < w->K; k++) {
    if (!w->active[k]) continue;
    double rew;
    rc = ch_reward_call(w->reward[k], &w->params[k], &rew, err);
    if (rc != CH_OK) break;
    ch__make_input(w, k);
    ch__trace(w, k);
    w->seg_rew[(size_t)k * w->T + (size_t)w->seg_len[k] - 1] = (float)rew;
    w->ep_reward[k] += rew;
    int ended = w->status[k] != CH_EPISODE_IN_PROGRESS;
    if (ended && w->status[k] != CH_EPISODE_TIME_UP) {
      rc = ch__push(w, k, CH_SEGMENT_EPISODE_END | CH_SEGMENT_TERMINAL, 0.0f, err);
    } else if (ended || w->seg_len[k] == w->T) {
      memcpy(w->boot_input + (size_t)nboot * w->IN, w->input + (size_t)k * w->IN,
             sizeof(float) * (size_t)w->IN);
      w->boot_car[nboot] = k;
      w->boot_end[nboot++] = ended;
    }
    if (ended) {
      w->active[k] = 0;
      finished++;
    }
  }
  if (rc == CH_OK) rc = ch__flush_bootstraps(w, nboot, err);
  return rc == CH_OK ? finished : rc;
}

/* Run this worker's quota of episodes with the policy it holds. */
static int ch__run_episodes(ch__worker *w, ch_error *err) {
  int started = 0, finished = 0, rc = CH_OK;
  memset(w->active, 0, (size_t)w->K);
  for (int k = 0; rc == CH_OK && k < w->K && started < w->quota; k++, started++)
    rc = ch__start_car(w, k, err);
  while (rc == CH_OK && finished < w->quota && !atomic_load(&w->r->stop)) {
    long long t0 = ch_clock_ns();
    rc = ch__act(w, err);
    long long t1 = ch_clock_ns();
    if (rc == CH_OK)
      rc = w->env.vt->step(w->env.h, w->steer, w->speed, w->active, w->obs, w->I ? w->image : NULL,
                           w->params, w->status, err);
    long long t2 = ch_clock_ns();
    int n = rc == CH_OK ? ch__after_step(w, err) : rc;
    atomic_fetch_add(&w->r->ns_policy, t1 - t0);
    atomic_fetch_add(&w->r->ns_env, t2 - t1);
    atomic_fetch_add(&w->r->ns_reward, ch_clock_ns() - t2);
    if (n < 0) return n;
    finished += n;
    atomic_fetch_add(&w->r->episodes_done, n);
    for (int k = 0; rc == CH_OK && n > 0 && k < w->K && started < w->quota; k++)
      if (!w->active[k]) {
        rc = ch__start_car(w, k, err);
        started++;
      }
  }
  return rc;
}

/* Wait for a policy round newer than seen; returns 0 when told to stop. */
static int ch__wait_policy(ch__worker *w, uint64_t *seen) {
  ch_rollout *r = w->r;
  pthread_mutex_lock(&r->mu);
  while (!atomic_load(&r->stop) && (!r->have_policy || r->round == *seen))
    pthread_cond_wait(&r->cv, &r->mu);
  int go = !atomic_load(&r->stop);
  if (go) {
    *seen = r->round;
    w->version = r->version;
    w->random_actions = r->random_actions;
    int index = (int)(w - r->workers);
    w->quota = r->episodes / r->nworkers + (index < r->episodes % r->nworkers);
    w->net.vt->set_params(w->net.h, r->params, r->param_count, NULL);
  }
  pthread_mutex_unlock(&r->mu);
  return go;
}

static void *ch__worker_main(void *arg) {
  ch__worker *w = arg;
  uint64_t seen = 0;
  while (ch__wait_policy(w, &seen)) {
    ch_error e = {0, ""};
    if (ch__run_episodes(w, &e) != CH_OK) {
      ch__fail(w->r, &e);
      break;
    }
  }
  return NULL;
}

int ch_rollout_start(const ch_rollout_setup *s, ch_rollout **out, ch_error *err) {
  ch_rollout *r = calloc(1, sizeof *r);
  if (!r) return ch_error_set(err, CH_ENOMEM, "rollout: out of memory");
  r->cfg = s->cfg;
  r->buffer = s->buffer;
  r->nworkers = s->threads > 0 ? s->threads : 1;
  r->alternate_direction = s->alternate_direction;
  r->start_offset = s->start_offset;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->workers = calloc((size_t)r->nworkers, sizeof *r->workers);
  int rc = r->workers ? CH_OK : ch_error_set(err, CH_ENOMEM, "rollout: out of memory");
  for (int i = 0; rc == CH_OK && i < r->nworkers; i++) {
    r->workers[i].r = r;
    r->workers[i].id = s->worker_base + (uint32_t)i;
    rc = ch__worker_init(&r->workers[i], s, i, err);
  }
  for (int i = 0; rc == CH_OK && i < r->nworkers; i++) {
    if (pthread_create(&r->workers[i].thread, NULL, ch__worker_main, &r->workers[i]) != 0)
      rc = ch_error_set(err, CH_ENOMEM, "cannot start worker thread %d", i);
    else
      r->workers[i].started_thread = 1;
  }
  if (rc != CH_OK) {
    ch_rollout_stop(r);
    return rc;
  }
  *out = r;
  return CH_OK;
}

void ch_rollout_publish(ch_rollout *r, uint64_t version, const float *params, uint64_t count,
                        int random_actions, int episodes) {
  pthread_mutex_lock(&r->mu);
  if (r->param_count != count) {
    free(r->params);
    r->params = malloc(sizeof(float) * count);
    r->param_count = r->params ? count : 0;
  }
  if (r->params && count) memcpy(r->params, params, sizeof(float) * count);
  r->version = version;
  r->round++;
  r->have_policy = 1;
  r->random_actions = random_actions;
  r->episodes = episodes;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

int ch_rollout_failed(ch_rollout *r, ch_error *err) {
  int code = atomic_load(&r->failed);
  if (code && err) {
    pthread_mutex_lock(&r->mu);
    *err = r->error;
    pthread_mutex_unlock(&r->mu);
  }
  return code;
}

void ch_rollout_times(ch_rollout *r, ch_rollout_time *out) {
  out->policy_seconds = atomic_load(&r->ns_policy) * 1e-9;
  out->env_seconds = atomic_load(&r->ns_env) * 1e-9;
  out->reward_seconds = atomic_load(&r->ns_reward) * 1e-9;
}

int64_t ch_rollout_episodes(ch_rollout *r) {
  return atomic_load(&r->episodes_done);
}

void ch_rollout_stop(ch_rollout *r) {
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  atomic_store(&r->stop, 1);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; r->workers && i < r->nworkers; i++) {
    if (r->workers[i].started_thread) pthread_join(r->workers[i].thread, NULL);
    ch__worker_free(&r->workers[i]);
  }
  free(r->workers);
  free(r->params);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}
