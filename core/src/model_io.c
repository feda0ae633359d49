/* model_io.c -- whole models: export, import, clone, delete, and the catalog from storage. */
#include "model_io.h"

#include "clock.h"

#include "evaluate.h"
#include "log.h"
#include "model.h"
#include "paths.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CH__KEY_MAX 1024

/* ---- storage helpers ------------------------------------------------------------------- */

/* A whole object as a malloc'd, NUL-terminated copy. */
static int ch__get(ch_session *s, const char *key, char **out, size_t *len, ch_error *err) {
  void *data = NULL;
  size_t n = 0;
  *out = NULL;
  int rc = s->st->get(s->st_h, key, &data, &n, err);
  if (rc != CH_OK) return rc;
  char *copy = malloc(n + 1);
  if (copy) {
    memcpy(copy, data, n);
    copy[n] = '\0';
  }
  s->st->free_data(s->st_h, data);
  if (!copy) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", key);
  *out = copy;
  if (len) *len = n;
  return CH_OK;
}

static int ch__get_json(ch_session *s, const char *key, cJSON **out, ch_error *err) {
  char *text = NULL;
  *out = NULL;
  int rc = ch__get(s, key, &text, NULL, err);
  if (rc != CH_OK) return rc;
  *out = cJSON_Parse(text);
  free(text);
  if (!*out) return ch_error_set(err, CH_ECORRUPT, "%s in %s is not JSON", key, s->storage_desc);
  return CH_OK;
}

static int ch__put_text(ch_session *s, const char *key, const char *text, ch_error *err) {
  return s->st->put(s->st_h, key, text, strlen(text), err);
}

/*
** cJSON prints a number with 15 significant digits whenever those read back within an epsilon
** of it, so a double could change in its last bit on the way through a stored object. Numbers
** that 15 digits do not reproduce exactly become raw text with 17 digits (always exact).
*/
static void ch__exact_numbers(cJSON *j) {
  for (cJSON *c = j ? j->child : NULL; c; c = c->next) ch__exact_numbers(c);
  if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return;
  char buf[40];
  snprintf(buf, sizeof buf, "%.15g", j->valuedouble);
  if (strtod(buf, NULL) == j->valuedouble) return;
  snprintf(buf, sizeof buf, "%.17g", j->valuedouble);
  char *raw = strdup(buf);
  if (!raw) return; /* stays a number: a last-bit difference, not a failure */
  j->type = cJSON_Raw;
  j->valuestring = raw;
}

static int ch__put_json(ch_session *s, const char *key, cJSON *j, ch_error *err) {
  ch__exact_numbers(j);
  char *text = cJSON_Print(j);
  if (!text) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", key);
  int rc = ch__put_text(s, key, text, err);
  cJSON_free(text);
  return rc;
}

/* Keys under a prefix, in byte order. */
typedef struct ch__keys {
  char **key;
  uint64_t *size;
  int n, cap, oom;
} ch__keys;

static int ch__collect(const char *key, uint64_t size, void *user) {
  ch__keys *k = user;
  if (k->n == k->cap) {
    int cap = k->cap ? 2 * k->cap : 64;
    char **nk = realloc(k->key, (size_t)cap * sizeof *nk);
    if (nk) k->key = nk;
    uint64_t *ns = realloc(k->size, (size_t)cap * sizeof *ns);
    if (ns) k->size = ns;
    if (!nk || !ns) return k->oom = 1;
    k->cap = cap;
  }
  if (!(k->key[k->n] = strdup(key))) return k->oom = 1;
  k->size[k->n++] = size;
  return 0;
}

static void ch__keys_free(ch__keys *k) {
  for (int i = 0; i < k->n; i++) free(k->key[i]);
  free(k->key);
  free(k->size);
  memset(k, 0, sizeof *k);
}

static int ch__list(ch_session *s, const char *prefix, ch__keys *k, ch_error *err) {
  memset(k, 0, sizeof *k);
  int rc = s->st->list(s->st_h, prefix, ch__collect, k, err);
  if (rc == CH_OK && k->oom) rc = ch_error_set(err, CH_ENOMEM, "listing %s: out of memory", prefix);
  if (rc != CH_OK) ch__keys_free(k);
  return rc;
}

static int ch__copy_object(ch_session *s, const char *from, const char *to, ch_error *err) {
  void *data = NULL;
  size_t n = 0;
  int rc = s->st->get(s->st_h, from, &data, &n, err);
  if (rc != CH_OK) return rc;
  rc = s->st->put(s->st_h, to, data, n, err);
  s->st->free_data(s->st_h, data);
  return rc;
}

/* Whether storage holds any object of model. */
static int ch__has_objects(ch_session *s, const char *model, int *any, ch_error *err) {
  char prefix[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/", model);
  ch__keys k;
  int rc = ch__list(s, prefix, &k, err);
  *any = rc == CH_OK && k.n > 0;
  ch__keys_free(&k);
  return rc;
}

static int ch__remove_objects(ch_session *s, const char *model, int *removed, ch_error *err) {
  char prefix[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/", model);
  ch__keys k;
  int rc = ch__list(s, prefix, &k, err);
  for (int i = 0; rc == CH_OK && i < k.n; i++) rc = s->st->remove(s->st_h, k.key[i], err);
  if (removed) *removed = rc == CH_OK ? k.n : 0;
  ch__keys_free(&k);
  return rc;
}

static int ch__check_name(const char *name, ch_error *err) {
  size_t n = name ? strlen(name) : 0;
  int ok = n > 0 && n <= 255 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
  for (size_t i = 0; ok && i < n; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
  }
  return ok ? CH_OK
            : ch_error_set(err, CH_EINVAL,
                           "invalid model name '%.255s': use 1 to 255 of [A-Za-z0-9._-], not '.' "
                           "or '..'",
                           name ? name : "(null)");
}

/* A model name that neither the catalog nor storage knows yet. */
static int ch__check_new(ch_session *s, const char *name, ch_error *err) {
  int rc = ch__check_name(name, err);
  ch_model_info m;
  if (rc == CH_OK && ch_catalog_get_model(s->cat, name, &m, NULL) == CH_OK) {
    ch_model_info_free(&m);
    return ch_error_set(err, CH_ESTATE, "model '%s' already exists in catalog %s", name,
                        s->catalog_path);
  }
  int any = 0;
  if (rc == CH_OK) rc = ch__has_objects(s, name, &any, err);
  if (rc == CH_OK && any)
    rc = ch_error_set(err, CH_ESTATE,
                      "storage %s already holds objects of a model '%s' (not in the catalog: "
                      "`chicane models rebuild` indexes them, `chicane models delete %s --yes` "
                      "removes them)",
                      s->storage_desc, name, name);
  return rc;
}

/* ---- JSON helpers ---------------------------------------------------------------------- */

static const char *ch__str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double ch__num(const cJSON *o, const char *key, double fallback) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static void ch__add_str(cJSON *o, const char *key, const char *v) {
  if (v)
    cJSON_AddStringToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

/* A malloc'd copy of a string member, NULL when absent. */
static char *ch__dup(const cJSON *o, const char *key) {
  const char *v = ch__str(o, key);
  return v ? strdup(v) : NULL;
}

static void ch__set_str(cJSON *o, const char *key, const char *v) {
  cJSON_DeleteItemFromObjectCaseSensitive(o, key);
  ch__add_str(o, key, v);
}

/* ---- records --------------------------------------------------------------------------- */

static cJSON *ch__model_record(const ch_model_info *m) {
  cJSON *o = cJSON_CreateObject();
  ch__add_str(o, "name", m->name);
  ch__add_str(o, "track", m->track);
  ch__add_str(o, "reward_script", m->reward_script);
  ch__add_str(o, "reward_sha256", m->reward_sha256);
  ch__add_str(o, "status", m->status);
  cJSON_AddNumberToObject(o, "created", (double)m->created);
  return o;
}

int ch_model_store_record(ch_session *s, const char *model, ch_error *err) {
  ch_model_info m;
  int rc = ch_catalog_get_model(s->cat, model, &m, err);
  if (rc != CH_OK) return rc;
  char key[CH__KEY_MAX];
  snprintf(key, sizeof key, "models/%s/model.json", model);
  cJSON *j = ch__model_record(&m);
  rc = ch__put_json(s, key, j, err);
  cJSON_Delete(j);
  ch_model_info_free(&m);
  return rc;
}

static cJSON *ch__checkpoint_record(const ch_checkpoint_info *c) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "iteration", (double)c->iteration);
  cJSON_AddNumberToObject(o, "episodes", (double)c->episodes);
  cJSON_AddNumberToObject(o, "env_steps", (double)c->env_steps);
  cJSON_AddNumberToObject(o, "wall_seconds", c->wall_seconds);
  ch__add_str(o, "metrics_json", c->metrics_json);
  ch__add_str(o, "storage_key", c->storage_key);
  ch__add_str(o, "sha256", c->sha256);
  cJSON_AddNumberToObject(o, "created", (double)c->created);
  return o;
}

static void ch__record_key(const char *model, int64_t iteration, char *out, size_t cap) {
  snprintf(out, cap, "models/%s/checkpoints/%06lld.json", model, (long long)iteration);
}

int ch_model_store_checkpoint_record(ch_session *s, const ch_checkpoint_info *c, ch_error *err) {
  if (!c || !c->model) return ch_error_set(err, CH_EINVAL, "checkpoint record: NULL argument");
  char key[CH__KEY_MAX];
  ch__record_key(c->model, c->iteration, key, sizeof key);
  cJSON *j = ch__checkpoint_record(c);
  int rc = ch__put_json(s, key, j, err);
  cJSON_Delete(j);
  return rc;
}

/* Read a checkpoint record back; strings malloc'd (ch_checkpoint_info_free). */
static int ch__parse_checkpoint(const cJSON *j, const char *model, ch_checkpoint_info *c,
                                const char *key, ch_error *err) {
  memset(c, 0, sizeof *c);
  if (!cJSON_IsObject(j) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "iteration")))
    return ch_error_set(err, CH_ECORRUPT, "%s: not a checkpoint record (no iteration)", key);
  c->model = strdup(model);
  c->iteration = (int64_t)ch__num(j, "iteration", 0);
  c->episodes = (int64_t)ch__num(j, "episodes", 0);
  c->env_steps = (int64_t)ch__num(j, "env_steps", 0);
  c->wall_seconds = ch__num(j, "wall_seconds", 0);
  c->metrics_json = ch__dup(j, "metrics_json");
  c->storage_key = ch__dup(j, "storage_key");
  c->sha256 = ch__dup(j, "sha256");
  c->created = (int64_t)ch__num(j, "created", 0);
  return c->model ? CH_OK : ch_error_set(err, CH_ENOMEM, "out of memory");
}

typedef struct ch__sync {
  ch_session *s;
  ch__keys have;
  int rc;
  ch_error *err;
} ch__sync;

static int ch__has_key(const ch__keys *k, const char *key) {
  for (int i = 0; i < k->n; i++)
    if (strcmp(k->key[i], key) == 0) return 1;
  return 0;
}

static int ch__sync_checkpoint(const ch_checkpoint_info *c, void *user) {
  ch__sync *y = user;
  char key[CH__KEY_MAX];
  ch__record_key(c->model, c->iteration, key, sizeof key);
  if (!ch__has_key(&y->have, key)) y->rc = ch_model_store_checkpoint_record(y->s, c, y->err);
  return y->rc != CH_OK;
}

int ch_model_sync_records(ch_session *s, const char *model, ch_error *err) {
  int rc = ch_model_store_record(s, model, err);
  char prefix[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/checkpoints/", model);
  ch__sync y = {s, {NULL, NULL, 0, 0, 0}, CH_OK, err};
  if (rc == CH_OK) rc = ch__list(s, prefix, &y.have, err);
  if (rc == CH_OK) rc = ch_catalog_list_checkpoints(s->cat, model, ch__sync_checkpoint, &y, err);
  if (rc == CH_OK) rc = y.rc;
  ch__keys_free(&y.have);
  return rc;
}

/* ---- runs ------------------------------------------------------------------------------ */

static cJSON *ch__run_record(const ch_run_info *r) {
  cJSON *o = cJSON_CreateObject();
  ch__add_str(o, "model", r->model);
  cJSON_AddNumberToObject(o, "started", (double)r->started);
  cJSON_AddNumberToObject(o, "ended", (double)r->ended);
  ch__add_str(o, "stop_reason", r->stop_reason);
  cJSON_AddNumberToObject(o, "iterations", (double)r->iterations);
  cJSON_AddNumberToObject(o, "env_steps", (double)r->env_steps);
  cJSON_AddNumberToObject(o, "wall_seconds", r->wall_seconds);
  ch__add_str(o, "host", r->host);
  ch__add_str(o, "command_line", r->command_line);
  return o;
}

static int ch__store_run(ch_session *s, const char *key, const ch_run_info *r, ch_error *err) {
  cJSON *j = ch__run_record(r);
  int rc = ch__put_json(s, key, j, err);
  cJSON_Delete(j);
  return rc;
}

int ch_model_run_begin(ch_session *s, const char *model, const char *command_line,
                       ch_model_run *run, ch_error *err) {
  memset(run, 0, sizeof *run);
  snprintf(run->model, sizeof run->model, "%s", model);
  run->t0 = ch_clock_now();
  run->started = (int64_t)time(NULL);
  if (gethostname(run->host, sizeof run->host - 1) != 0) snprintf(run->host, sizeof run->host, "?");
  run->command_line = command_line ? strdup(command_line) : NULL;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  snprintf(run->key, sizeof run->key, "models/%s/runs/%lld-%06ld.json", model,
           (long long)run->started, (long)tv.tv_usec);
  ch_run_info r = {0, run->model, run->started, 0, NULL, 0, 0, 0.0, run->host, run->command_line};
  int rc = ch__store_run(s, run->key, &r, err);
  if (rc == CH_OK) rc = ch_catalog_start_run(s->cat, &r, &run->id, err);
  return rc;
}

int ch_model_run_end(ch_session *s, ch_model_run *run, const char *stop_reason, int64_t iterations,
                     int64_t env_steps, ch_error *err) {
  int64_t ended = (int64_t)time(NULL);
  double seconds = ch_clock_now() - run->t0;
  ch_run_info r = {run->id,    run->model, run->started, ended,     (char *)stop_reason,
                   iterations, env_steps,  seconds,      run->host, run->command_line};
  int rc = ch__store_run(s, run->key, &r, err);
  if (rc == CH_OK)
    rc = ch_catalog_finish_run(s->cat, run->id, stop_reason, iterations, env_steps, seconds, ended,
                               err);
  free(run->command_line);
  run->command_line = NULL;
  return rc;
}

static int ch__plain_arg(const char *a) {
  if (!*a) return 0;
  for (; *a; a++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *a))
      return 0;
  return 1;
}

char *ch_model_command_line(int argc, char **argv) {
  size_t cap = 1;
  for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 3;
  char *out = malloc(cap), *p = out;
  if (!out) return NULL;
  for (int i = 0; i < argc; i++) {
    if (i) *p++ = ' ';
    if (ch__plain_arg(argv[i])) {
      p += sprintf(p, "%s", argv[i]);
      continue;
    }
    *p++ = '\'';
    for (const char *a = argv[i]; *a; a++)
      p += *a == '\'' ? sprintf(p, "'\\''") : sprintf(p, "%c", *a);
    *p++ = '\'';
  }
  *p = '\0';
  return out;
}

/* ---- indexing a model from storage ----------------------------------------------------- */

typedef struct ch__indexer {
  ch_session *s;
  const char *model;
  ch_rebuild_stats *stats;
  ch__keys keys; /* every object of the model */
  int64_t first_created;
  int checkpoints;
  int need_status, need_created; /* model.json did not say */
} ch__indexer;

static int ch__ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The model row from training_config.json, reward_function.lua and model.json. */
static int ch__model_row(ch__indexer *x, ch_model_info *m, ch_error *err) {
  char key[CH__KEY_MAX];
  cJSON *cfg = NULL, *rec = NULL;
  snprintf(key, sizeof key, "models/%s/training_config.json", x->model);
  int rc = ch__get_json(x->s, key, &cfg, err);
  snprintf(key, sizeof key, "models/%s/model.json", x->model);
  if (rc == CH_OK && ch__has_key(&x->keys, key)) rc = ch__get_json(x->s, key, &rec, err);
  char *reward = NULL;
  size_t reward_len = 0;
  snprintf(key, sizeof key, "models/%s/reward_function.lua", x->model);
  if (rc == CH_OK && ch__has_key(&x->keys, key)) rc = ch__get(x->s, key, &reward, &reward_len, err);
  memset(m, 0, sizeof *m);
  if (rc == CH_OK) {
    char sha[65];
    if (reward) ch_sha256_hex(reward, reward_len, sha);
    m->name = strdup(x->model);
    m->track = ch__dup(ch__str(rec, "track") ? rec : cfg, "track");
    m->reward_script = rec ? ch__dup(rec, "reward_script") : ch__dup(cfg, "reward");
    m->reward_sha256 = reward ? strdup(sha) : ch__dup(rec, "reward_sha256");
    m->action_space_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(cfg, "action_space"));
    m->hyperparameters_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(cfg, "hyperparameters"));
    m->config_json = cJSON_PrintUnformatted(cfg);
    m->storage = strdup(x->s->storage_desc);
    m->status = ch__dup(rec, "status");
    m->created = (int64_t)ch__num(rec, "created", 0);
    x->need_status = !m->status;
    x->need_created = !m->created;
  }
  free(reward);
  cJSON_Delete(cfg);
  cJSON_Delete(rec);
  return rc;
}

static int ch__index_checkpoint(ch__indexer *x, const char *key, ch_error *err) {
  cJSON *j = NULL;
  ch_checkpoint_info c;
  int rc = ch__get_json(x->s, key, &j, err);
  if (rc == CH_OK) rc = ch__parse_checkpoint(j, x->model, &c, key, err);
  cJSON_Delete(j);
  if (rc != CH_OK) return rc;
  rc = ch_catalog_add_checkpoint(x->s->cat, &c, err);
  if (rc == CH_OK && (x->first_created == 0 || c.created < x->first_created))
    x->first_created = c.created;
  ch_checkpoint_info_free(&c);
  x->checkpoints++;
  return rc;
}

/* A blob without a record: what can be known from the blob itself. */
static int ch__index_blob(ch__indexer *x, const char *key, ch_error *err) {
  const char *base = strrchr(key, '/') + 1;
  char *end;
  long long iteration = strtoll(base, &end, 10);
  if (end == base || strcmp(end, ".ckpt") != 0) {
    ch_log(CH_LOG_WARN, "rebuild", "%s: not a checkpoint name (NNNNNN.ckpt), skipped", key);
    return CH_OK;
  }
  void *data = NULL;
  size_t len = 0;
  int rc = x->s->st->get(x->s->st_h, key, &data, &len, err);
  if (rc != CH_OK) return rc;
  char sha[65];
  ch_sha256_hex(data, len, sha);
  x->s->st->free_data(x->s->st_h, data);
  ch_checkpoint_info c = {(char *)x->model, iteration, 0, 0, 0.0, NULL, (char *)key, sha, 0};
  x->checkpoints++;
  return ch_catalog_add_checkpoint(x->s->cat, &c, err);
}

static int ch__index_checkpoints(ch__indexer *x, ch_error *err) {
  char prefix[CH__KEY_MAX], record[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/checkpoints/", x->model);
  size_t plen = strlen(prefix);
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < x->keys.n; i++) {
    const char *k = x->keys.key[i];
    if (strncmp(k, prefix, plen) != 0 || strchr(k + plen, '/')) continue;
    if (ch__ends_with(k, ".json")) {
      rc = ch__index_checkpoint(x, k, err);
    } else if (ch__ends_with(k, ".ckpt")) {
      snprintf(record, sizeof record, "%.*s.json", (int)(strlen(k) - 5), k);
      if (!ch__has_key(&x->keys, record)) rc = ch__index_blob(x, k, err);
    }
  }
  if (x->stats) x->stats->checkpoints += x->checkpoints;
  return rc;
}

static int ch__index_evaluation(ch__indexer *x, const char *key, ch_error *err) {
  char *text = NULL;
  int rc = ch__get(x->s, key, &text, NULL, err);
  cJSON *j = rc == CH_OK ? cJSON_Parse(text) : NULL;
  if (rc == CH_OK && !j) rc = ch_error_set(err, CH_ECORRUPT, "%s is not JSON", key);
  ch_evaluation_info e;
  memset(&e, 0, sizeof e);
  if (rc == CH_OK) rc = ch_eval_results_parse(j, &e, err);
  if (rc == CH_OK) {
    e.model = (char *)x->model; /* the folder names the model, whatever the object says */
    e.results_json = text;
    e.storage_key = (char *)key;
    rc = ch_catalog_add_evaluation(x->s->cat, &e, err);
  }
  if (rc != CH_OK && err) {
    char msg[CH_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "%s", err->message);
    ch_error_set(err, rc, "%s: %s", key, msg);
  }
  free(e.trial_info);
  cJSON_Delete(j);
  free(text);
  if (rc == CH_OK && x->stats) x->stats->evaluations++;
  return rc;
}

static int ch__index_run(ch__indexer *x, const char *key, ch_error *err) {
  cJSON *j = NULL;
  int rc = ch__get_json(x->s, key, &j, err);
  if (rc != CH_OK) return rc;
  ch_run_info r = {0,
                   (char *)x->model,
                   (int64_t)ch__num(j, "started", 0),
                   (int64_t)ch__num(j, "ended", 0),
                   (char *)ch__str(j, "stop_reason"),
                   (int64_t)ch__num(j, "iterations", 0),
                   (int64_t)ch__num(j, "env_steps", 0),
                   ch__num(j, "wall_seconds", 0),
                   (char *)ch__str(j, "host"),
                   (char *)ch__str(j, "command_line")};
  rc = ch_catalog_start_run(x->s->cat, &r, NULL, err);
  cJSON_Delete(j);
  if (rc == CH_OK && x->stats) x->stats->runs++;
  return rc;
}

/* Index the objects under models/NAME/<folder>/ with fn. */
static int ch__index_folder(ch__indexer *x, const char *folder,
                            int (*fn)(ch__indexer *, const char *, ch_error *), ch_error *err) {
  char prefix[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/%s/", x->model, folder);
  size_t plen = strlen(prefix);
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < x->keys.n; i++) {
    const char *k = x->keys.key[i];
    if (strncmp(k, prefix, plen) == 0 && !strchr(k + plen, '/') && ch__ends_with(k, ".json"))
      rc = fn(x, k, err);
  }
  return rc;
}

/* What model.json would have said, where it is missing. */
static int ch__fill_model_gaps(ch__indexer *x, ch_error *err) {
  if (!x->need_status && !x->need_created) return CH_OK;
  ch_model_info m;
  int rc = ch_catalog_get_model(x->s->cat, x->model, &m, err);
  if (rc != CH_OK) return rc;
  if (x->need_status) {
    free(m.status);
    m.status = strdup(x->checkpoints ? "ready" : "stopped");
  }
  if (x->need_created && x->first_created) m.created = x->first_created;
  rc = ch_catalog_put_model(x->s->cat, &m, err);
  ch_model_info_free(&m);
  return rc;
}

int ch_model_index(ch_session *s, const char *model, ch_rebuild_stats *stats, ch_error *err) {
  ch__indexer x;
  memset(&x, 0, sizeof x);
  x.s = s;
  x.model = model;
  x.stats = stats;
  char prefix[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/", model);
  int rc = ch__list(s, prefix, &x.keys, err);
  ch_model_info m;
  memset(&m, 0, sizeof m);
  if (rc == CH_OK) rc = ch__model_row(&x, &m, err);
  /* created 0 would mean "now"; a missing time is settled once the checkpoints are read. */
  if (rc == CH_OK) rc = ch_catalog_put_model(s->cat, &m, err);
  ch_model_info_free(&m);
  if (rc == CH_OK) rc = ch__index_checkpoints(&x, err);
  if (rc == CH_OK) rc = ch__index_folder(&x, "evaluations", ch__index_evaluation, err);
  if (rc == CH_OK) rc = ch__index_folder(&x, "runs", ch__index_run, err);
  if (rc == CH_OK) rc = ch__fill_model_gaps(&x, err);
  if (rc == CH_OK && stats) stats->models++;
  ch__keys_free(&x.keys);
  return rc;
}

/* ---- rebuild --------------------------------------------------------------------------- */

static int ch__collect_name(const ch_model_info *m, void *user) {
  return ch__collect(m->name, 0, user);
}

static int ch__delete_all(ch_session *s, ch_error *err) {
  ch__keys names;
  memset(&names, 0, sizeof names);
  int rc = ch_catalog_list_models(s->cat, ch__collect_name, &names, err);
  for (int i = 0; rc == CH_OK && i < names.n; i++)
    rc = ch_catalog_delete_model(s->cat, names.key[i], err);
  ch__keys_free(&names);
  return rc;
}

/* The distinct NAMEs of models/NAME/... keys whose folder holds a training_config.json. Keys
** come sorted, so each folder's keys are contiguous. */
static int ch__stored_models(ch_session *s, ch__keys *names, ch_rebuild_stats *stats,
                             ch_error *err) {
  ch__keys all;
  memset(names, 0, sizeof *names);
  int rc = ch__list(s, "models/", &all, err);
  for (int i = 0, j; rc == CH_OK && i < all.n; i = j) {
    const char *key = all.key[i], *slash = strchr(key + strlen("models/"), '/');
    size_t plen = slash ? (size_t)(slash - key) + 1 : strlen(key);
    int found = 0;
    for (j = i; j < all.n && strncmp(all.key[j], key, plen) == 0; j++)
      found |= slash && strcmp(all.key[j] + plen, "training_config.json") == 0;
    char n[256];
    snprintf(n, sizeof n, "%.*s", (int)(plen - strlen("models/") - (slash ? 1 : 0)),
             key + strlen("models/"));
    if (found) {
      if (ch__collect(n, 0, names)) rc = ch_error_set(err, CH_ENOMEM, "out of memory");
      continue;
    }
    ch_log(CH_LOG_WARN, "rebuild", "models/%s in %s has no training_config.json: skipped", n,
           s->storage_desc);
    if (stats) stats->skipped++;
  }
  ch__keys_free(&all);
  return rc;
}

int ch_models_rebuild(ch_session *s, ch_rebuild_stats *stats, ch_error *err) {
  if (stats) memset(stats, 0, sizeof *stats);
  ch__keys names;
  int rc = ch__stored_models(s, &names, stats, err);
  if (rc != CH_OK) return rc;
  rc = ch_catalog_begin(s->cat, err);
  if (rc == CH_OK) rc = ch__delete_all(s, err);
  for (int i = 0; rc == CH_OK && i < names.n; i++) rc = ch_model_index(s, names.key[i], stats, err);
  if (rc == CH_OK)
    rc = ch_catalog_commit(s->cat, err);
  else
    ch_catalog_rollback(s->cat);
  ch__keys_free(&names);
  return rc;
}

/* ---- delete and clone ------------------------------------------------------------------ */

int ch_model_delete(ch_session *s, const char *model, ch_error *err) {
  int rc = ch__check_name(model, err);
  int removed = 0;
  if (rc == CH_OK) rc = ch__remove_objects(s, model, &removed, err);
  if (rc != CH_OK) return rc;
  ch_error e;
  rc = ch_catalog_delete_model(s->cat, model, &e);
  if (rc == CH_ENOTFOUND && removed > 0) return CH_OK; /* storage only: now gone too */
  if (rc == CH_ENOTFOUND)
    return ch_error_set(err, rc, "no model '%s' in catalog %s or storage %s", model,
                        s->catalog_path, s->storage_desc);
  if (rc != CH_OK && err) *err = e;
  return rc;
}

static int ch__copy_metadata(ch_session *s, const char *src, const char *dst, ch_error *err) {
  static const char *const files[] = {"model_metadata.json", "hyperparameters.json",
                                      "reward_function.lua"};
  char from[CH__KEY_MAX], to[CH__KEY_MAX];
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < 3; i++) {
    snprintf(from, sizeof from, "models/%s/%s", src, files[i]);
    snprintf(to, sizeof to, "models/%s/%s", dst, files[i]);
    rc = ch__copy_object(s, from, to, err);
  }
  cJSON *cfg = NULL;
  snprintf(from, sizeof from, "models/%s/training_config.json", src);
  snprintf(to, sizeof to, "models/%s/training_config.json", dst);
  if (rc == CH_OK) rc = ch__get_json(s, from, &cfg, err);
  if (rc == CH_OK) {
    ch__set_str(cfg, "model", dst);
    rc = ch__put_json(s, to, cfg, err);
  }
  cJSON_Delete(cfg);
  return rc;
}

/* Store blob as model's checkpoint (blob, record, latest pointer) from the row c. */
static int ch__put_checkpoint(ch_session *s, const char *model, const ch_checkpoint_info *c,
                              const void *blob, size_t len, ch_error *err) {
  char key[CH__KEY_MAX], sha[65];
  ch_model_checkpoint_key(model, c->iteration, key, sizeof key);
  ch_sha256_hex(blob, len, sha);
  ch_checkpoint_info row = *c;
  row.model = (char *)model;
  row.storage_key = key;
  row.sha256 = sha;
  if (!row.created) row.created = (int64_t)time(NULL); /* the record and the row must agree */
  int rc = s->st->put(s->st_h, key, blob, len, err);
  if (rc == CH_OK) rc = ch_model_store_checkpoint_record(s, &row, err);
  cJSON *latest = cJSON_CreateObject();
  cJSON_AddNumberToObject(latest, "iteration", (double)c->iteration);
  cJSON_AddStringToObject(latest, "key", key);
  cJSON_AddStringToObject(latest, "sha256", sha);
  char lkey[CH__KEY_MAX];
  snprintf(lkey, sizeof lkey, "models/%s/latest.json", model);
  if (rc == CH_OK) rc = ch__put_json(s, lkey, latest, err);
  cJSON_Delete(latest);
  return rc;
}

/* The model.json of a new model made from row m under name, status ready, created now. */
static int ch__put_new_record(ch_session *s, const char *name, const ch_model_info *m,
                              int64_t created, ch_error *err) {
  ch_model_info r = *m;
  r.name = (char *)name;
  r.status = "ready";
  r.created = created ? created : (int64_t)time(NULL);
  char key[CH__KEY_MAX];
  snprintf(key, sizeof key, "models/%s/model.json", name);
  cJSON *j = ch__model_record(&r);
  int rc = ch__put_json(s, key, j, err);
  cJSON_Delete(j);
  return rc;
}

static int ch__clone_objects(ch_session *s, const char *src, const char *dst, ch_error *err) {
  ch_loaded_model m; /* checks the blob's sha256 against the catalog */
  int rc = ch_model_load(s, src, &m, err);
  ch_checkpoint_info ck;
  memset(&ck, 0, sizeof ck);
  if (rc == CH_OK) rc = ch_catalog_latest_checkpoint(s->cat, src, &ck, err);
  if (rc == CH_OK) rc = ch__copy_metadata(s, src, dst, err);
  if (rc == CH_OK) rc = ch__put_checkpoint(s, dst, &ck, m.blob, m.blob_len, err);
  if (rc == CH_OK) rc = ch__put_new_record(s, dst, &m.info, 0, err);
  ch_checkpoint_info_free(&ck);
  ch_loaded_model_free(s, &m);
  return rc;
}

/* Index a freshly written model; on failure remove what was written. */
static int ch__finish_new(ch_session *s, const char *name, int rc, ch_error *err) {
  if (rc == CH_OK) rc = ch_catalog_begin(s->cat, err);
  if (rc == CH_OK) {
    rc = ch_model_index(s, name, NULL, err);
    if (rc == CH_OK) rc = ch_catalog_commit(s->cat, err);
    if (rc != CH_OK) ch_catalog_rollback(s->cat);
  }
  if (rc != CH_OK) ch__remove_objects(s, name, NULL, NULL);
  return rc;
}

int ch_model_clone(ch_session *s, const char *src, const char *dst, ch_error *err) {
  int rc = ch__check_new(s, dst, err);
  if (rc != CH_OK) return rc;
  return ch__finish_new(s, dst, ch__clone_objects(s, src, dst, err), err);
}

/* ---- files ----------------------------------------------------------------------------- */

static int ch__mkdirs(const char *dir, ch_error *err) {
  char path[CH_PATH_MAX];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1;; p++) {
    int last = *p == '\0';
    if (*p == '/' || last) {
      *p = '\0';
      if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return ch_error_set(err, CH_EIO, "%s: cannot create the directory: %s", path,
                            strerror(errno));
      if (last) return CH_OK;
      *p = '/';
    }
  }
}

static int ch__write_file(const char *dir, const char *name, const void *data, size_t len,
                          ch_error *err) {
  char path[CH_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  int rc = ch__mkdirs(path, err);
  *slash = '/';
  if (rc != CH_OK) return rc;
  FILE *f = fopen(path, "wb");
  if (!f) return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
  int ok = fwrite(data, 1, len, f) == len;
  ok = fclose(f) == 0 && ok;
  return ok ? CH_OK : ch_error_set(err, CH_EIO, "%s: write failed: %s", path, strerror(errno));
}

static int ch__write_json(const char *dir, const char *name, cJSON *j, ch_error *err) {
  ch__exact_numbers(j);
  char *text = cJSON_Print(j);
  if (!text) return ch_error_set(err, CH_ENOMEM, "%s/%s: out of memory", dir, name);
  int rc = ch__write_file(dir, name, text, strlen(text), err);
  cJSON_free(text);
  return rc;
}

static int ch__read_dir_file(const char *dir, const char *name, char **data, size_t *len,
                             ch_error *err) {
  char path[CH_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return ch_read_file(path, data, len, err);
}

static int ch__read_dir_json(const char *dir, const char *name, cJSON **out, ch_error *err) {
  char *text = NULL;
  *out = NULL;
  int rc = ch__read_dir_file(dir, name, &text, NULL, err);
  if (rc != CH_OK) return rc;
  *out = cJSON_Parse(text);
  free(text);
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return ch_error_set(err, CH_ECORRUPT, "%s/%s: not a JSON object", dir, name);
  }
  return CH_OK;
}

/* ---- export ---------------------------------------------------------------------------- */

static int ch__check_empty_dir(const char *dir, ch_error *err) {
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? CH_OK : ch_error_set(err, CH_EIO, "%s: %s", dir, strerror(errno));
  int entries = 0;
  for (struct dirent *e; (e = readdir(d));)
    entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return entries ? ch_error_set(err, CH_ESTATE, "%s is not empty: export into a new folder", dir)
                 : CH_OK;
}

/* Copy the objects under models/NAME/<folder>/ into dir/<folder>/. */
static int ch__export_folder(ch_session *s, const char *model, const char *folder, const char *dir,
                             ch_error *err) {
  char prefix[CH__KEY_MAX];
  snprintf(prefix, sizeof prefix, "models/%s/%s/", model, folder);
  ch__keys k;
  int rc = ch__list(s, prefix, &k, err);
  for (int i = 0; rc == CH_OK && i < k.n; i++) {
    void *data = NULL;
    size_t len = 0;
    rc = s->st->get(s->st_h, k.key[i], &data, &len, err);
    if (rc != CH_OK) break;
    rc = ch__write_file(dir, k.key[i] + strlen(prefix) - strlen(folder) - 1, data, len, err);
    s->st->free_data(s->st_h, data);
  }
  ch__keys_free(&k);
  return rc;
}

static int ch__add_metrics(const ch_checkpoint_info *c, void *user) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "iteration", (double)c->iteration);
  cJSON_AddNumberToObject(o, "episodes", (double)c->episodes);
  cJSON_AddNumberToObject(o, "env_steps", (double)c->env_steps);
  cJSON_AddNumberToObject(o, "wall_seconds", c->wall_seconds);
  cJSON_AddNumberToObject(o, "created", (double)c->created);
  cJSON *m = cJSON_Parse(c->metrics_json ? c->metrics_json : "null");
  cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateNull());
  cJSON_AddItemToArray(user, o);
  return 0;
}

static int ch__export_metrics(ch_session *s, const char *model, const char *dir, ch_error *err) {
  cJSON *root = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(root, "metrics");
  int rc = ch_catalog_list_checkpoints(s->cat, model, ch__add_metrics, arr, err);
  if (rc == CH_OK) rc = ch__write_json(dir, "metrics.json", root, err);
  cJSON_Delete(root);
  return rc;
}

static int ch__export_weights(ch_session *s, const ch_loaded_model *m, const char *dir,
                              ch_error *err) {
  ch_checkpoint_info ck;
  int rc = ch_catalog_latest_checkpoint(s->cat, m->info.name, &ck, err);
  if (rc != CH_OK) return rc;
  char sha[65];
  ch_sha256_hex(m->blob, m->blob_len, sha);
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "iteration", (double)ck.iteration);
  cJSON_AddStringToObject(j, "sha256", sha);
  cJSON_AddNumberToObject(j, "episodes", (double)ck.episodes);
  cJSON_AddNumberToObject(j, "env_steps", (double)ck.env_steps);
  cJSON_AddNumberToObject(j, "wall_seconds", ck.wall_seconds);
  const cJSON *plugins = cJSON_GetObjectItem(m->config, "plugins");
  ch__add_str(j, "network", ch__str(plugins, "network"));
  rc = ch__write_file(dir, "model.ckpt", m->blob, m->blob_len, err);
  if (rc == CH_OK) rc = ch__write_json(dir, "checkpoint.json", j, err);
  cJSON_Delete(j);
  ch_checkpoint_info_free(&ck);
  return rc;
}

static int ch__export_files(ch_session *s, const ch_loaded_model *m, const char *dir,
                            ch_error *err) {
  static const char *const files[] = {"model_metadata.json", "hyperparameters.json",
                                      "reward_function.lua", "training_config.json"};
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < 4; i++) {
    char key[CH__KEY_MAX];
    snprintf(key, sizeof key, "models/%s/%s", m->info.name, files[i]);
    void *data = NULL;
    size_t len = 0;
    rc = s->st->get(s->st_h, key, &data, &len, err);
    if (rc == CH_OK) rc = ch__write_file(dir, files[i], data, len, err);
    if (data) s->st->free_data(s->st_h, data);
  }
  cJSON *rec = ch__model_record(&m->info);
  if (rc == CH_OK) rc = ch__write_json(dir, "model.json", rec, err);
  cJSON_Delete(rec);
  return rc;
}

int ch_model_export(ch_session *s, const char *model, const char *dir, ch_error *err) {
  int rc = ch__check_empty_dir(dir, err);
  ch_loaded_model m;
  memset(&m, 0, sizeof m);
  if (rc == CH_OK) rc = ch_model_load(s, model, &m, err);
  if (rc == CH_OK) rc = ch__mkdirs(dir, err);
  if (rc == CH_OK) rc = ch__export_files(s, &m, dir, err);
  if (rc == CH_OK) rc = ch__export_weights(s, &m, dir, err);
  if (rc == CH_OK) rc = ch__export_metrics(s, model, dir, err);
  static const char *const folders[] = {"evaluations", "evaluation-simtrace", "training-simtrace"};
  for (int i = 0; rc == CH_OK && i < 3; i++) rc = ch__export_folder(s, model, folders[i], dir, err);
  ch_loaded_model_free(s, &m);
  return rc;
}

/* ---- import ---------------------------------------------------------------------------- */

/* What an exported folder holds, validated. */
typedef struct ch__bundle {
  const char *dir;
  cJSON *metadata, *hyper, *config, *checkpoint, *metrics, *record;
  char *reward, *blob;
  size_t reward_len, blob_len;
  int64_t iteration;
} ch__bundle;

static void ch__bundle_free(ch__bundle *b) {
  cJSON *js[] = {b->metadata, b->hyper, b->config, b->checkpoint, b->metrics, b->record};
  for (int i = 0; i < 6; i++) cJSON_Delete(js[i]);
  free(b->reward);
  free(b->blob);
}

static int ch__bundle_check(ch__bundle *b, ch_error *err) {
  if (!cJSON_IsArray(cJSON_GetObjectItem(b->metadata, "action_space")) &&
      !cJSON_IsObject(cJSON_GetObjectItem(b->metadata, "action_space")))
    return ch_error_set(err, CH_ECORRUPT, "%s/model_metadata.json: no action_space", b->dir);
  if (!cJSON_IsObject(cJSON_GetObjectItem(b->config, "network_config")))
    return ch_error_set(err, CH_ECORRUPT, "%s/training_config.json: no network_config", b->dir);
  const char *sha = ch__str(b->checkpoint, "sha256");
  const cJSON *it = cJSON_GetObjectItem(b->checkpoint, "iteration");
  if (!sha || !cJSON_IsNumber(it) || it->valuedouble < 0)
    return ch_error_set(err, CH_ECORRUPT, "%s/checkpoint.json: needs iteration (>= 0) and sha256",
                        b->dir);
  b->iteration = (int64_t)it->valuedouble;
  char got[65];
  ch_sha256_hex(b->blob, b->blob_len, got);
  if (strcmp(got, sha) != 0)
    return ch_error_set(err, CH_ECORRUPT,
                        "%s/model.ckpt is corrupt: sha256 %s, checkpoint.json says %s", b->dir, got,
                        sha);
  if (b->metrics && !cJSON_IsArray(cJSON_GetObjectItem(b->metrics, "metrics")))
    return ch_error_set(err, CH_ECORRUPT, "%s/metrics.json: no \"metrics\" array", b->dir);
  return CH_OK;
}

static int ch__bundle_read(ch__bundle *b, const char *dir, ch_error *err) {
  memset(b, 0, sizeof *b);
  b->dir = dir;
  int rc = ch__read_dir_json(dir, "model_metadata.json", &b->metadata, err);
  if (rc == CH_OK) rc = ch__read_dir_json(dir, "hyperparameters.json", &b->hyper, err);
  if (rc == CH_OK) rc = ch__read_dir_json(dir, "training_config.json", &b->config, err);
  if (rc == CH_OK) rc = ch__read_dir_json(dir, "checkpoint.json", &b->checkpoint, err);
  if (rc == CH_OK)
    rc = ch__read_dir_file(dir, "reward_function.lua", &b->reward, &b->reward_len, err);
  if (rc == CH_OK) rc = ch__read_dir_file(dir, "model.ckpt", &b->blob, &b->blob_len, err);
  /* Optional: metrics.json and model.json. */
  ch_error ignored;
  if (rc == CH_OK && ch__read_dir_json(dir, "metrics.json", &b->metrics, &ignored) == CH_ECORRUPT)
    rc = ch_error_set(err, CH_ECORRUPT, "%s", ignored.message);
  if (rc == CH_OK && ch__read_dir_json(dir, "model.json", &b->record, &ignored) == CH_ECORRUPT)
    rc = ch_error_set(err, CH_ECORRUPT, "%s", ignored.message);
  if (rc == CH_OK) rc = ch__bundle_check(b, err);
  return rc;
}

static void ch__bundle_name(const ch__bundle *b, const char *name, char *out, size_t cap) {
  const char *n = name ? name : ch__str(b->config, "model");
  if (!n) {
    const char *slash = strrchr(b->dir, '/');
    n = slash && slash[1] ? slash + 1 : b->dir;
  }
  snprintf(out, cap, "%s", n);
}

static int ch__import_files(ch_session *s, const ch__bundle *b, const char *name, ch_error *err) {
  char key[CH__KEY_MAX];
  cJSON *cfg = cJSON_Duplicate(b->config, 1);
  ch__set_str(cfg, "model", name);
  const struct {
    const char *file;
    cJSON *j;
  } jsons[] = {{"model_metadata.json", b->metadata},
               {"hyperparameters.json", b->hyper},
               {"training_config.json", cfg}};
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < 3; i++) {
    snprintf(key, sizeof key, "models/%s/%s", name, jsons[i].file);
    rc = ch__put_json(s, key, jsons[i].j, err);
  }
  snprintf(key, sizeof key, "models/%s/reward_function.lua", name);
  if (rc == CH_OK) rc = s->st->put(s->st_h, key, b->reward, b->reward_len, err);
  cJSON_Delete(cfg);
  return rc;
}

/* A checkpoint row of metrics.json (weights or not). */
static void ch__metrics_row(cJSON *m, const char *name, ch_checkpoint_info *c, char **metrics) {
  memset(c, 0, sizeof *c);
  c->model = (char *)name;
  c->iteration = (int64_t)ch__num(m, "iteration", 0);
  c->episodes = (int64_t)ch__num(m, "episodes", 0);
  c->env_steps = (int64_t)ch__num(m, "env_steps", 0);
  c->wall_seconds = ch__num(m, "wall_seconds", 0);
  c->created = (int64_t)ch__num(m, "created", 0);
  cJSON *mj = cJSON_GetObjectItem(m, "metrics");
  ch__exact_numbers(mj);
  *metrics = mj && !cJSON_IsNull(mj) ? cJSON_PrintUnformatted(mj) : NULL;
  c->metrics_json = *metrics;
}

static int ch__import_checkpoints(ch_session *s, const ch__bundle *b, const char *name,
                                  ch_error *err) {
  ch_checkpoint_info c, weights;
  char *weights_metrics = NULL;
  memset(&weights, 0, sizeof weights);
  weights.model = (char *)name;
  weights.iteration = b->iteration;
  weights.episodes = (int64_t)ch__num(b->checkpoint, "episodes", 0);
  weights.env_steps = (int64_t)ch__num(b->checkpoint, "env_steps", 0);
  weights.wall_seconds = ch__num(b->checkpoint, "wall_seconds", 0);
  cJSON *m;
  int rc = CH_OK;
  cJSON_ArrayForEach(m, cJSON_GetObjectItem(b->metrics, "metrics")) {
    char *metrics = NULL;
    ch__metrics_row(m, name, &c, &metrics);
    if (c.iteration == b->iteration) {
      weights = c;
      weights_metrics = metrics;
      continue;
    }
    if (!c.created) c.created = (int64_t)time(NULL);
    if (rc == CH_OK) rc = ch_model_store_checkpoint_record(s, &c, err);
    cJSON_free(metrics);
  }
  if (rc == CH_OK) rc = ch__put_checkpoint(s, name, &weights, b->blob, b->blob_len, err);
  cJSON_free(weights_metrics);
  return rc;
}

/* An exported evaluation, with its model and sim-trace key renamed to the new model. */
static int ch__import_evaluation(ch_session *s, const char *dir, const char *file, const char *name,
                                 ch_error *err) {
  char rel[CH_PATH_MAX], key[CH__KEY_MAX];
  snprintf(rel, sizeof rel, "evaluations/%s", file);
  cJSON *j = NULL;
  int rc = ch__read_dir_json(dir, rel, &j, err);
  if (rc != CH_OK) return rc;
  ch__set_str(j, "model", name);
  const char *sim = ch__str(j, "simtrace_key");
  const char *base = sim ? strrchr(sim, '/') : NULL;
  if (base) {
    snprintf(key, sizeof key, "models/%s/evaluation-simtrace/%s", name, base + 1);
    ch__set_str(j, "simtrace_key", key);
  }
  snprintf(key, sizeof key, "models/%s/evaluations/%s", name, file);
  rc = ch__put_json(s, key, j, err);
  cJSON_Delete(j);
  return rc;
}

/* Copy the files of dir/<folder> into models/NAME/<folder>/ (evaluations get renamed inside). */
static int ch__import_folder(ch_session *s, const char *dir, const char *folder, const char *name,
                             ch_error *err) {
  char path[CH_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, folder);
  DIR *d = opendir(path);
  if (!d)
    return errno == ENOENT ? CH_OK : ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
  int rc = CH_OK;
  for (struct dirent *e; rc == CH_OK && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    if (strcmp(folder, "evaluations") == 0) {
      rc = ch__import_evaluation(s, dir, e->d_name, name, err);
      continue;
    }
    char rel[CH_PATH_MAX], key[CH__KEY_MAX], *data = NULL;
    size_t len = 0;
    snprintf(rel, sizeof rel, "%s/%s", folder, e->d_name);
    snprintf(key, sizeof key, "models/%s/%s/%s", name, folder, e->d_name);
    rc = ch__read_dir_file(dir, rel, &data, &len, err);
    if (rc == CH_OK) rc = s->st->put(s->st_h, key, data, len, err);
    free(data);
  }
  closedir(d);
  return rc;
}

static int ch__import_objects(ch_session *s, const ch__bundle *b, const char *name, ch_error *err) {
  int rc = ch__import_files(s, b, name, err);
  if (rc == CH_OK) rc = ch__import_checkpoints(s, b, name, err);
  static const char *const folders[] = {"evaluations", "evaluation-simtrace", "training-simtrace"};
  for (int i = 0; rc == CH_OK && i < 3; i++)
    rc = ch__import_folder(s, b->dir, folders[i], name, err);
  if (rc == CH_OK) {
    ch_model_info m;
    memset(&m, 0, sizeof m);
    m.track = (char *)(ch__str(b->record, "track") ? ch__str(b->record, "track")
                                                   : ch__str(b->config, "track"));
    m.reward_script =
        (char *)(ch__str(b->record, "reward_script") ? ch__str(b->record, "reward_script")
                                                     : ch__str(b->config, "reward"));
    rc = ch__put_new_record(s, name, &m, (int64_t)ch__num(b->record, "created", 0), err);
  }
  return rc;
}

int ch_model_import(ch_session *s, const char *dir, const char *name, char *name_out,
                    size_t name_cap, ch_error *err) {
  ch__bundle b;
  char n[256];
  int rc = ch__bundle_read(&b, dir, err);
  if (rc == CH_OK) {
    ch__bundle_name(&b, name, n, sizeof n);
    rc = ch__check_new(s, n, err);
  }
  if (rc == CH_OK) rc = ch__finish_new(s, n, ch__import_objects(s, &b, n, err), err);
  if (rc == CH_OK && name_out) snprintf(name_out, name_cap, "%s", n);
  ch__bundle_free(&b);
  return rc;
}
