/* worker.c -- simulation worker processes: model spec from storage, policy from the channel. */
#include "worker.h"

#include "clock.h"

#include "channel.h"
#include "log.h"
#include "paths.h"
#include "rollout.h"

#include <chicane/plugin_util.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CH__MAX_ENVS       16
#define CH__OUTAGE_SECONDS 120.0 /* as the trainer: an unreachable buffer is waited for */

static volatile sig_atomic_t ch__stop_requested;

void ch_worker_request_stop(void) {
  ch__stop_requested = 1;
}

/* ---------------------------------------------------------------- the spec (trainer side) */

static int ch__put_text(ch_session *s, const char *key, const char *text, size_t len,
                        ch_error *err) {
  return s->st->put(s->st_h, key, text, len, err);
}

/* Store env config i's track file as models/NAME/tracks/i-BASENAME and name it in the spec. */
static int ch__store_env(ch_session *s, const ch_train_config *c, int i, const char *env_json,
                         cJSON *envs, cJSON *tracks, ch_error *err) {
  cJSON *env = cJSON_Parse(env_json);
  const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(env, "track"));
  if (!path) {
    cJSON_Delete(env);
    return ch_error_set(err, CH_EINVAL, "env config %d has no track", i);
  }
  char *text = NULL, key[CH_PATH_MAX];
  size_t len = 0;
  int rc = ch_read_file(path, &text, &len, err);
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  snprintf(key, sizeof key, "models/%s/tracks/%d-%s", c->model, i, base);
  if (rc == CH_OK) rc = ch__put_text(s, key, text, len, err);
  free(text);
  cJSON_DeleteItemFromObjectCaseSensitive(env, "track");
  cJSON_AddItemToArray(envs, env);
  cJSON_AddItemToArray(tracks, cJSON_CreateString(key));
  return rc;
}

int ch_worker_spec_store(ch_session *s, const ch_train_config *c, const char *const *env_json,
                         int num_env, const char *network_json, int alternate_direction,
                         double start_offset, ch_error *err) {
  cJSON *o = cJSON_CreateObject(), *envs = cJSON_AddArrayToObject(o, "envs");
  cJSON *tracks = cJSON_AddArrayToObject(o, "tracks");
  cJSON_AddStringToObject(o, "env_plugin", c->env_plugin);
  cJSON_AddStringToObject(o, "network_plugin", c->network_plugin);
  cJSON_AddItemToObject(o, "network", cJSON_Parse(network_json));
  char key[CH_PATH_MAX];
  snprintf(key, sizeof key, "models/%s/reward_function.lua", c->model);
  cJSON_AddStringToObject(o, "reward", key);
  cJSON_AddItemToObject(o, "actions", ch_config_actions_json(c));
  cJSON_AddNumberToObject(o, "segment_steps", c->segment_steps);
  cJSON_AddNumberToObject(o, "start_advance", c->start_advance);
  cJSON_AddNumberToObject(o, "start_offset", start_offset);
  cJSON_AddBoolToObject(o, "alternate_direction", alternate_direction);
  cJSON_AddNumberToObject(o, "seed", (double)c->seed);
  cJSON_AddStringToObject(o, "algorithm", c->algorithm);
  cJSON *x = cJSON_AddObjectToObject(o, "exploration");
  cJSON_AddStringToObject(
      x, "type", c->hp.exploration_type == CH_EXPLORATION_E_GREEDY ? "e-greedy" : "categorical");
  cJSON_AddNumberToObject(x, "e_greedy_value", c->hp.e_greedy_value);
  cJSON_AddNumberToObject(x, "epsilon_steps", c->hp.epsilon_steps);
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < num_env; i++)
    rc = ch__store_env(s, c, i, env_json[i], envs, tracks, err);
  char *text = rc == CH_OK ? cJSON_Print(o) : NULL;
  snprintf(key, sizeof key, "models/%s/worker.json", c->model);
  if (text) rc = ch__put_text(s, key, text, strlen(text), err);
  cJSON_free(text);
  cJSON_Delete(o);
  return rc;
}

/* ---------------------------------------------------------------- the worker process */

typedef struct ch__worker_proc {
  const ch_worker_options *o;
  ch_session store;
  ch_buffer buffer;
  ch_plugin *env_p, *net_p;
  ch_net net; /* loads checkpoints; its parameters are handed to the threads */
  float *params;
  ch_train_config *cfg;
  cJSON *spec;
  char *env_json[CH__MAX_ENVS];
  int num_env;
  char temp[CH__MAX_ENVS + 1][64]; /* temporary files: tracks, then the reward */
  int num_temp;
  ch_rollout *rollout;
} ch__worker_proc;

static int ch__get(ch__worker_proc *w, const char *key, char **text, size_t *len, ch_error *err) {
  void *data = NULL;
  size_t n = 0;
  int rc = w->store.st->get(w->store.st_h, key, &data, &n, err);
  if (rc != CH_OK) return rc;
  *text = malloc(n + 1);
  if (*text) {
    memcpy(*text, data, n);
    (*text)[n] = 0;
  }
  w->store.st->free_data(w->store.st_h, data);
  if (len) *len = n;
  return *text ? CH_OK : ch_error_set(err, CH_ENOMEM, "out of memory");
}

/* Copy a storage object into a temporary file (the env and the reward sandbox read paths). */
static int ch__fetch_to_temp(ch__worker_proc *w, const char *key, const char *suffix,
                             ch_error *err) {
  char *text = NULL;
  size_t len = 0;
  int rc = ch__get(w, key, &text, &len, err);
  if (rc != CH_OK) return rc;
  const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char *path = w->temp[w->num_temp];
  snprintf(path, sizeof w->temp[0], "%.40s/chw-XXXXXX%s", dir, suffix);
  int fd = mkstemps(path, (int)strlen(suffix));
  if (fd < 0 || write(fd, text, len) != (ssize_t)len) rc = CH_EIO;
  if (fd >= 0) close(fd);
  free(text);
  if (rc != CH_OK) return ch_error_set(err, rc, "worker: cannot write temporary file %s", path);
  w->num_temp++;
  return CH_OK;
}

static int ch__spec_number(const cJSON *spec, const char *name, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, name);
  if (!cJSON_IsNumber(v)) return 0;
  *out = v->valuedouble;
  return 1;
}

/* The part of a training configuration that the rollout threads read. */
static int ch__config_from_spec(ch__worker_proc *w, ch_error *err) {
  ch_train_config *c = w->cfg;
  ch_config_defaults(c);
  snprintf(c->model, sizeof c->model, "%s", w->o->model);
  snprintf(c->reward, sizeof c->reward, "%s", w->temp[w->num_temp - 1]);
  double v;
  if (ch__spec_number(w->spec, "segment_steps", &v)) c->segment_steps = (int)v;
  if (ch__spec_number(w->spec, "start_advance", &v)) c->start_advance = v;
  if (ch__spec_number(w->spec, "seed", &v)) c->seed = (uint64_t)v;
  c->workers = w->o->threads > 0 ? w->o->threads : 1;
  const char *env = cJSON_GetStringValue(cJSON_GetObjectItem(w->spec, "env_plugin"));
  const char *net = cJSON_GetStringValue(cJSON_GetObjectItem(w->spec, "network_plugin"));
  snprintf(c->env_plugin, sizeof c->env_plugin, "%s", env ? env : "sim2d");
  snprintf(c->network_plugin, sizeof c->network_plugin, "%s", net ? net : "mlp");
  const char *algorithm = cJSON_GetStringValue(cJSON_GetObjectItem(w->spec, "algorithm"));
  if (algorithm) snprintf(c->algorithm, sizeof c->algorithm, "%s", algorithm);
  const cJSON *x = cJSON_GetObjectItem(w->spec, "exploration");
  const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(x, "type"));
  if (type && strcmp(type, "e-greedy") == 0) c->hp.exploration_type = CH_EXPLORATION_E_GREEDY;
  if (ch__spec_number(x, "e_greedy_value", &v)) c->hp.e_greedy_value = v;
  if (ch__spec_number(x, "epsilon_steps", &v)) c->hp.epsilon_steps = (int)v;
  return ch_config_action_space_from_json(cJSON_GetObjectItem(w->spec, "actions"), c, err);
}

/* Does env config i drive the track the worker was asked to drive? */
static int ch__track_wanted(const ch__worker_proc *w, const char *key) {
  if (!w->o->track) return 1;
  const char *base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
  const char *dash = strchr(base, '-');
  const char *name = dash ? dash + 1 : base;
  size_t n = strlen(w->o->track);
  return strncmp(name, w->o->track, n) == 0 && (name[n] == 0 || strcmp(name + n, ".track") == 0);
}

/* worker.json, the tracks and the reward, then env configs naming the local track copies. */
static int ch__load_spec(ch__worker_proc *w, ch_error *err) {
  char key[CH_PATH_MAX], *text = NULL;
  snprintf(key, sizeof key, "models/%s/worker.json", w->o->model);
  int rc = ch__get(w, key, &text, NULL, err);
  if (rc != CH_OK) return rc;
  w->spec = cJSON_Parse(text);
  free(text);
  cJSON *envs = cJSON_GetObjectItem(w->spec, "envs"),
        *tracks = cJSON_GetObjectItem(w->spec, "tracks");
  if (!cJSON_IsArray(envs) || cJSON_GetArraySize(envs) != cJSON_GetArraySize(tracks))
    return ch_error_set(err, CH_ECORRUPT, "%s: not a worker spec", key);
  for (int i = 0; rc == CH_OK && i < cJSON_GetArraySize(envs) && w->num_env < CH__MAX_ENVS; i++) {
    const char *tk = cJSON_GetStringValue(cJSON_GetArrayItem(tracks, i));
    if (!tk || !ch__track_wanted(w, tk)) continue;
    rc = ch__fetch_to_temp(w, tk, ".track", err);
    if (rc != CH_OK) break;
    cJSON *env = cJSON_Duplicate(cJSON_GetArrayItem(envs, i), 1);
    cJSON_AddStringToObject(env, "track", w->temp[w->num_temp - 1]);
    w->env_json[w->num_env++] = cJSON_PrintUnformatted(env);
    cJSON_Delete(env);
  }
  if (rc == CH_OK && w->num_env == 0)
    return ch_error_set(err, CH_ENOTFOUND, "model '%s' is not trained on track '%s'", w->o->model,
                        w->o->track ? w->o->track : "?");
  const char *rk = cJSON_GetStringValue(cJSON_GetObjectItem(w->spec, "reward"));
  if (rc == CH_OK) rc = ch__fetch_to_temp(w, rk ? rk : "", ".lua", err);
  if (rc == CH_OK) rc = ch__config_from_spec(w, err);
  return rc;
}

static uint32_t ch__default_id(void) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  uint32_t h = 2166136261u;
  for (const char *c = host; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
  return ((h ^ (uint32_t)getpid() * 2654435761u) & 0xffffffu) | 1u;
}

static int ch__start(ch__worker_proc *w, ch_error *err) {
  int rc = w->env_p ? CH_OK : ch_plugin_find(CH_PLUGIN_ENV, w->cfg->env_plugin, &w->env_p, err);
  if (rc == CH_OK && !w->net_p)
    rc = ch_plugin_find(CH_PLUGIN_NETWORK, w->cfg->network_plugin, &w->net_p, err);
  char *net_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(w->spec, "network"));
  if (rc == CH_OK) rc = ch_net_create(w->net_p, net_json ? net_json : "{}", &w->net, err);
  w->params = rc == CH_OK ? malloc(sizeof(float) * (w->net.spec.param_count + 1)) : NULL;
  if (rc == CH_OK && !w->params) rc = ch_error_set(err, CH_ENOMEM, "out of memory");
  uint32_t id = w->o->id ? w->o->id : ch__default_id();
  const cJSON *alt = cJSON_GetObjectItem(w->spec, "alternate_direction");
  double offset = 0;
  ch__spec_number(w->spec, "start_offset", &offset);
  ch_rollout_setup s = {w->cfg,     w->env_p,          w->net_p,   (const char *const *)w->env_json,
                        w->num_env, net_json,          &w->buffer, w->cfg->workers,
                        id << 6,    cJSON_IsTrue(alt), offset};
  if (rc == CH_OK) rc = ch_rollout_start(&s, &w->rollout, err);
  cJSON_free(net_json);
  return rc;
}

/* Fetch and check a checkpoint, then hand its parameters to the threads. */
static int ch__adopt(ch__worker_proc *w, const ch_policy_note *n, ch_error *err) {
  if (n->checkpoint[0]) {
    void *blob = NULL;
    size_t len = 0;
    int rc = w->store.st->get(w->store.st_h, n->checkpoint, &blob, &len, err);
    if (rc != CH_OK) return rc;
    char sha[65];
    ch_sha256_hex(blob, len, sha);
    if (n->sha256[0] && strcmp(sha, n->sha256) != 0)
      rc = ch_error_set(err, CH_ECORRUPT, "checkpoint %s: sha256 %s, announced %s", n->checkpoint,
                        sha, n->sha256);
    if (rc == CH_OK) rc = w->net.vt->load(w->net.h, blob, len, err);
    w->store.st->free_data(w->store.st_h, blob);
    if (rc != CH_OK) return rc;
  }
  w->net.vt->get_params(w->net.h, w->params, w->net.spec.param_count);
  ch_rollout_publish(w->rollout, n->version, w->params, w->net.spec.param_count, n->random,
                     n->episodes * w->cfg->workers);
  if (!w->o->quiet)
    ch_log(CH_LOG_INFO, "worker", "acting with policy version %llu%s (round %llu)",
           (unsigned long long)n->version, n->random ? " (random warm-up)" : "",
           (unsigned long long)n->round);
  return CH_OK;
}

/* Stop the threads and forget the spec (its temporary files too), to load a new one. */
static void ch__drop_spec(ch__worker_proc *w) {
  ch_rollout_stop(w->rollout);
  w->rollout = NULL;
  ch_net_destroy(&w->net);
  memset(&w->net, 0, sizeof w->net);
  free(w->params);
  w->params = NULL;
  for (int i = 0; i < w->num_env; i++) cJSON_free(w->env_json[i]);
  for (int i = 0; i < w->num_temp; i++) unlink(w->temp[i]);
  w->num_env = w->num_temp = 0;
  cJSON_Delete(w->spec);
  w->spec = NULL;
}

/* Load the spec and start the threads (again, when the trainer changed tracks or reward). */
static int ch__begin(ch__worker_proc *w, ch_error *err) {
  ch__drop_spec(w);
  int rc = ch__load_spec(w, err);
  return rc == CH_OK ? ch__start(w, err) : rc;
}

/* A connection failure while reading announcements: wait for the buffer (1) until it has been
** unreachable for CH__OUTAGE_SECONDS, then give up (0). */
static int ch__wait_out(const ch__worker_proc *w, int rc, const ch_error *e, double *since) {
  if (rc != CH_ECONN && rc != CH_EIO && rc != CH_ETIMEDOUT) return 0;
  double now = ch_clock_now();
  if (*since == 0) {
    *since = now;
    if (!w->o->quiet) ch_log(CH_LOG_WARN, "worker", "%s; waiting for the buffer", e->message);
  }
  if (now - *since > CH__OUTAGE_SECONDS) return 0;
  ch_clock_sleep(0.5);
  return 1;
}

/* Wait for the trainer's first word, then follow its announcements until it is done. */
static int ch__follow(ch__worker_proc *w, ch_error *err) {
  ch_policy_note n, seen = {0};
  int have = 0, rc = CH_OK;
  double waited = 0, patience = w->o->wait_seconds > 0 ? w->o->wait_seconds : 120, outage = 0;
  while (!ch__stop_requested) {
    ch_error e = {0, ""};
    rc = ch_channel_read(&w->buffer, w->o->model, &n, &e);
    if (rc == CH_ENOTFOUND && !have && waited < patience) {
      ch_clock_sleep(0.1);
      waited += 0.1;
      continue;
    }
    if (rc != CH_OK && ch__wait_out(w, rc, &e, &outage)) continue;
    if (rc != CH_OK) return *err = e, rc;
    outage = 0;
    if (n.done) return CH_OK;
    if (!have || n.spec != seen.spec) {
      if (have && !w->o->quiet)
        ch_log(CH_LOG_INFO, "worker", "the trainer changed tracks or reward: reloading");
      rc = ch__begin(w, err);
      if (rc != CH_OK) return rc;
      have = 1;
      seen.spec = n.spec;
      seen.round = n.round + 1; /* differs: adopt this announcement */
    }
    if (n.version != seen.version || n.round != seen.round) {
      rc = ch__adopt(w, &n, err);
      if (rc != CH_OK) return rc;
      seen = n;
    }
    if ((rc = ch_rollout_failed(w->rollout, err)) != 0) return rc;
    ch_clock_sleep(0.02);
  }
  return CH_OK;
}

int ch_worker_run(const ch_worker_options *o, ch_error *err) {
  ch__worker_proc w;
  memset(&w, 0, sizeof w);
  w.o = o;
  w.cfg = malloc(sizeof *w.cfg);
  if (!w.cfg) return ch_error_set(err, CH_ENOMEM, "out of memory");
  char stream[300];
  snprintf(stream, sizeof stream, "chicane:%s:segments", o->model);
  int rc = ch_session_open_spec(o->storage, NULL, &w.store, err);
  if (rc == CH_OK) rc = ch_buffer_open_spec(o->buffer, stream, NULL, &w.buffer, err);
  if (rc == CH_OK) rc = ch__follow(&w, err);
  ch__drop_spec(&w);
  ch_plugin_close(w.net_p);
  ch_plugin_close(w.env_p);
  if (w.buffer.h) ch_buffer_close(&w.buffer);
  ch_session_close(&w.store);
  free(w.cfg);
  return rc;
}
