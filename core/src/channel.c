/* channel.c -- policy announcements as JSON in the buffer's meta values. */
#include "channel.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ch__key(const char *model, char *key, size_t cap) {
  snprintf(key, cap, "chicane/%s/policy", model);
}

static int ch__need_meta(const ch_buffer *b, ch_error *err) {
  if (ch_buffer_has_meta(b)) return CH_OK;
  return ch_error_set(err, CH_EUNSUPPORTED,
                      "buffer plugin '%s' has no meta values (meta_set/meta_get), which "
                      "training with worker processes needs",
                      b->vt->header.name);
}

int ch_channel_announce(ch_buffer *b, const char *model, const ch_policy_note *n, ch_error *err) {
  int rc = ch__need_meta(b, err);
  if (rc != CH_OK) return rc;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "version", (double)n->version);
  cJSON_AddNumberToObject(o, "round", (double)n->round);
  cJSON_AddBoolToObject(o, "random", n->random);
  cJSON_AddNumberToObject(o, "episodes", n->episodes);
  cJSON_AddBoolToObject(o, "done", n->done);
  cJSON_AddNumberToObject(o, "spec", n->spec);
  cJSON_AddStringToObject(o, "checkpoint", n->checkpoint);
  cJSON_AddStringToObject(o, "sha256", n->sha256);
  char *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!json) return ch_error_set(err, CH_ENOMEM, "out of memory");
  char key[300];
  ch__key(model, key, sizeof key);
  rc = b->vt->meta_set(b->h, key, json, err);
  cJSON_free(json);
  return rc;
}

static uint64_t ch__u64(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : 0;
}

static void ch__str(const cJSON *o, const char *name, char *out, size_t cap) {
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
  snprintf(out, cap, "%s", v ? v : "");
}

int ch_channel_read(ch_buffer *b, const char *model, ch_policy_note *n, ch_error *err) {
  int rc = ch__need_meta(b, err);
  if (rc != CH_OK) return rc;
  char key[300], value[2048];
  ch__key(model, key, sizeof key);
  rc = b->vt->meta_get(b->h, key, value, sizeof value, err);
  if (rc < 0) return rc;
  cJSON *o = cJSON_Parse(value);
  if (!cJSON_IsObject(o) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "version"))) {
    cJSON_Delete(o);
    return ch_error_set(err, CH_ECORRUPT, "buffer meta '%s' is not a policy announcement: %.200s",
                        key, value);
  }
  memset(n, 0, sizeof *n);
  n->version = ch__u64(o, "version");
  n->round = ch__u64(o, "round");
  n->random = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "random"));
  n->episodes = (int)ch__u64(o, "episodes");
  n->done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "done"));
  n->spec = (int)ch__u64(o, "spec");
  ch__str(o, "checkpoint", n->checkpoint, sizeof n->checkpoint);
  ch__str(o, "sha256", n->sha256, sizeof n->sha256);
  cJSON_Delete(o);
  return CH_OK;
}
