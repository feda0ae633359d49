/* model.c -- writes and reads a model's objects in storage and its rows in the catalog. */
#include "model.h"

#include "metadata.h"
#include "model_io.h"
#include "paths.h"

#include <chicane/plugin_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int ch__put_json(ch_session *s, const char *key, cJSON *obj, ch_error *err) {
  char *text = cJSON_Print(obj);
  if (!text) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", key);
  int rc = s->st->put(s->st_h, key, text, strlen(text), err);
  cJSON_free(text);
  return rc;
}

typedef struct ch__key_list {
  char **keys;
  int n, cap;
} ch__key_list;

static int ch__collect_key(const char *key, uint64_t size, void *user) {
  (void)size;
  ch__key_list *l = user;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 64;
    char **k = realloc(l->keys, (size_t)cap * sizeof *k);
    if (!k) return 1;
    l->keys = k;
    l->cap = cap;
  }
  l->keys[l->n] = strdup(key);
  if (l->keys[l->n]) l->n++;
  return 0;
}

/* Remove every stored object of a model (for --replace). */
static int ch__remove_objects(ch_session *s, const char *model, ch_error *err) {
  char prefix[256];
  snprintf(prefix, sizeof prefix, "models/%s/", model);
  ch__key_list l = {NULL, 0, 0};
  int rc = s->st->list(s->st_h, prefix, ch__collect_key, &l, err);
  for (int i = 0; i < l.n; i++) {
    if (rc == CH_OK) rc = s->st->remove(s->st_h, l.keys[i], err);
    free(l.keys[i]);
  }
  free(l.keys);
  return rc;
}

static int ch__write_metadata(ch_session *s, const ch_train_config *c, cJSON *full,
                              const char *reward_text, ch_error *err) {
  char key[256];
  cJSON *meta = ch_metadata_model_json(c), *hp = ch_config_hyperparameters_json(c);
  snprintf(key, sizeof key, "models/%s/model_metadata.json", c->model);
  int rc = ch__put_json(s, key, meta, err);
  snprintf(key, sizeof key, "models/%s/hyperparameters.json", c->model);
  if (rc == CH_OK) rc = ch__put_json(s, key, hp, err);
  snprintf(key, sizeof key, "models/%s/training_config.json", c->model);
  if (rc == CH_OK) rc = ch__put_json(s, key, full, err);
  snprintf(key, sizeof key, "models/%s/reward_function.lua", c->model);
  if (rc == CH_OK) rc = s->st->put(s->st_h, key, reward_text, strlen(reward_text), err);
  cJSON_Delete(meta);
  cJSON_Delete(hp);
  return rc;
}

static int ch__check_new(ch_session *s, const char *model, int replace, ch_error *err) {
  ch_model_info old;
  int rc = ch_catalog_get_model(s->cat, model, &old, NULL);
  if (rc == CH_OK) {
    ch_model_info_free(&old);
    if (!replace)
      return ch_error_set(err, CH_ESTATE,
                          "model '%s' already exists in %s (train under another name with "
                          "--name, or start it over with --replace)",
                          model, s->catalog_path);
    rc = ch_catalog_delete_model(s->cat, model, err);
    if (rc != CH_OK) return rc;
  } else if (rc != CH_ENOTFOUND) {
    return ch_catalog_get_model(s->cat, model, &old, err);
  }
  return replace ? ch__remove_objects(s, model, err) : CH_OK;
}

int ch_model_create(ch_session *s, const ch_train_config *c, const cJSON *network_config,
                    int replace, ch_error *err) {
  int rc = ch__check_new(s, c->model, replace, err);
  if (rc != CH_OK) return rc;
  char *reward_text = NULL, sha[65];
  rc = ch_read_file(c->reward, &reward_text, NULL, err);
  if (rc != CH_OK) return rc;
  ch_sha256_hex(reward_text, strlen(reward_text), sha);
  cJSON *full = ch_config_json(c);
  cJSON_AddItemToObject(full, "network_config", cJSON_Duplicate(network_config, 1));
  rc = ch__write_metadata(s, c, full, reward_text, err);
  char *actions = cJSON_PrintUnformatted(cJSON_GetObjectItem(full, "action_space"));
  char *hp = cJSON_PrintUnformatted(cJSON_GetObjectItem(full, "hyperparameters"));
  char *cfg = cJSON_PrintUnformatted(full);
  ch_model_info m = {(char *)c->model, (char *)c->track, (char *)c->reward,  sha, actions, hp, cfg,
                     s->storage_desc,  "training",       (int64_t)time(NULL)};
  if (rc == CH_OK) rc = ch_catalog_put_model(s->cat, &m, err);
  cJSON_free(actions);
  cJSON_free(hp);
  cJSON_free(cfg);
  cJSON_Delete(full);
  free(reward_text);
  return rc;
}

int ch_model_save_checkpoint(ch_session *s, const char *model, const ch_checkpoint_info *info,
                             const void *blob, size_t len, ch_error *err) {
  char key[256], sha[65];
  ch_model_checkpoint_key(model, info->iteration, key, sizeof key);
  ch_sha256_hex(blob, len, sha);
  int rc = s->st->put(s->st_h, key, blob, len, err);
  if (rc != CH_OK) return rc;
  cJSON *latest = cJSON_CreateObject();
  cJSON_AddNumberToObject(latest, "iteration", (double)info->iteration);
  cJSON_AddStringToObject(latest, "key", key);
  cJSON_AddStringToObject(latest, "sha256", sha);
  char lkey[256];
  snprintf(lkey, sizeof lkey, "models/%s/latest.json", model);
  rc = ch__put_json(s, lkey, latest, err);
  cJSON_Delete(latest);
  if (rc != CH_OK) return rc;
  ch_checkpoint_info row = *info;
  row.model = (char *)model;
  row.storage_key = key;
  row.sha256 = sha;
  row.created = (int64_t)time(NULL);
  /* storage holds the record too: `chicane models rebuild` reads it back */
  rc = ch_model_store_checkpoint_record(s, &row, err);
  return rc == CH_OK ? ch_catalog_add_checkpoint(s->cat, &row, err) : rc;
}

void ch_model_checkpoint_key(const char *model, int64_t iteration, char *out, size_t cap) {
  snprintf(out, cap, "models/%s/checkpoints/%06lld.ckpt", model, (long long)iteration);
}

static int ch__load_blob(ch_session *s, ch_loaded_model *m, const ch_checkpoint_info *ck,
                         ch_error *err) {
  int rc = s->st->get(s->st_h, ck->storage_key, &m->blob, &m->blob_len, err);
  if (rc != CH_OK) return rc;
  char sha[65];
  ch_sha256_hex(m->blob, m->blob_len, sha);
  if (ck->sha256 && strcmp(sha, ck->sha256) != 0)
    return ch_error_set(err, CH_ECORRUPT, "%s in %s is corrupt: sha256 %s, the catalog recorded %s",
                        ck->storage_key, s->storage_desc, sha, ck->sha256);
  m->iteration = ck->iteration;
  return CH_OK;
}

/* The model's action space from its configuration: a list (discrete) or ranges (continuous). */
static int ch__load_action_space(ch_loaded_model *m, ch_error *err) {
  const cJSON *v = cJSON_GetObjectItem(m->config, "action_space");
  const char *algorithm = cJSON_GetStringValue(cJSON_GetObjectItem(m->config, "algorithm"));
  ch_policy_space *sp = &m->space;
  if (!cJSON_IsObject(v)) {
    int rc = ch_config_actions_from_json(v, m->actions, &m->num_actions, err);
    sp->num_actions = m->num_actions;
    sp->actions = m->actions;
    return rc;
  }
  ch_action_ranges r;
  int rc = ch_action_space_ranges_from_json(v, "action_space", &r, err);
  if (rc != CH_OK) return err->code = CH_ECORRUPT;
  sp->continuous = 1;
  sp->num_actions = CH_POLICY_DIMS;
  sp->low[0] = r.steering_angle.low;
  sp->high[0] = r.steering_angle.high;
  sp->low[1] = r.speed.low;
  sp->high[1] = r.speed.high;
  sp->squash = algorithm && strcmp(algorithm, "sac") == 0;
  return CH_OK;
}

int ch_model_load(ch_session *s, const char *model, ch_loaded_model *m, ch_error *err) {
  memset(m, 0, sizeof *m);
  int rc = ch_catalog_get_model(s->cat, model, &m->info, err);
  if (rc != CH_OK) return rc;
  m->config = cJSON_Parse(m->info.config_json ? m->info.config_json : "");
  if (!m->config)
    return ch_error_set(err, CH_ECORRUPT, "model '%s': configuration in %s is not JSON", model,
                        s->catalog_path);
  rc = ch__load_action_space(m, err);
  if (rc != CH_OK) return rc;
  ch_checkpoint_info ck;
  rc = ch_catalog_latest_checkpoint(s->cat, model, &ck, err);
  if (rc == CH_ENOTFOUND)
    return ch_error_set(err, CH_ENOTFOUND, "model '%s' has no checkpoint yet", model);
  if (rc != CH_OK) return rc;
  rc = ch__load_blob(s, m, &ck, err);
  ch_checkpoint_info_free(&ck);
  return rc;
}

void ch_loaded_model_free(ch_session *s, ch_loaded_model *m) {
  if (m->blob) s->st->free_data(s->st_h, m->blob);
  cJSON_Delete(m->config);
  ch_model_info_free(&m->info);
  memset(m, 0, sizeof *m);
}
