/* runtime.c -- creates and releases plugin instances through their vtables. */
#include "runtime.h"

#include "log.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

int ch_env_create(const ch_plugin *p, const char *config_json, ch_env *out, ch_error *err) {
  memset(out, 0, sizeof *out);
  out->vt = (const ch_env_vtable *)p->header;
  int rc = out->vt->create(config_json, ch_host(), &out->h, err);
  if (rc != CH_OK) return rc;
  out->vt->spec(out->h, &out->spec);
  return CH_OK;
}

void ch_env_destroy(ch_env *e) {
  if (e->h) e->vt->destroy(e->h);
  e->h = NULL;
}

int ch_net_create(const ch_plugin *p, const char *config_json, ch_net *out, ch_error *err) {
  memset(out, 0, sizeof *out);
  out->vt = (const ch_network_vtable *)p->header;
  int rc = out->vt->create(config_json, ch_host(), &out->h, err);
  if (rc != CH_OK) return rc;
  out->vt->spec(out->h, &out->spec);
  return CH_OK;
}

int ch_net_has_add_grads(const ch_net *n) {
  size_t end = offsetof(ch_network_vtable, add_grads) + sizeof n->vt->add_grads;
  return n->vt->header.struct_size >= end && n->vt->add_grads;
}

void ch_net_destroy(ch_net *n) {
  if (n->h) n->vt->destroy(n->h);
  n->h = NULL;
}

int ch_buffer_open(const char *name, const char *config_json, ch_buffer *out, ch_error *err) {
  memset(out, 0, sizeof *out);
  int rc = ch_plugin_find(CH_PLUGIN_BUFFER, name, &out->plugin, err);
  if (rc != CH_OK) return rc;
  out->vt = (const ch_buffer_vtable *)out->plugin->header;
  rc = out->vt->open(config_json, ch_host(), &out->h, err);
  if (rc != CH_OK) {
    ch_plugin_close(out->plugin);
    out->plugin = NULL;
  }
  return rc;
}

void ch_buffer_close(ch_buffer *b) {
  if (b->h) b->vt->close(b->h);
  ch_plugin_close(b->plugin);
  memset(b, 0, sizeof *b);
}

/* A spec that names a URL scheme: "redis://...", "s3://...". */
static int ch__has_scheme(const char *spec, const char *scheme) {
  size_t n = strlen(scheme);
  return strncmp(spec, scheme, n) == 0 && strncmp(spec + n, "://", 3) == 0;
}

int ch_buffer_open_spec(const char *spec, const char *stream, const char *consumer, ch_buffer *out,
                        ch_error *err) {
  if (!spec || !*spec || strcmp(spec, "memory") == 0)
    return ch_buffer_open("memory", "{}", out, err);
  if (!ch__has_scheme(spec, "redis"))
    return ch_error_set(err, CH_EINVAL,
                        "buffer '%s': expected \"memory\" or redis://[:password@]host:port[/db]",
                        spec);
  cJSON *cfg = cJSON_CreateObject();
  cJSON_AddStringToObject(cfg, "url", spec);
  if (stream) cJSON_AddStringToObject(cfg, "stream", stream);
  if (consumer) cJSON_AddStringToObject(cfg, "consumer", consumer);
  char *json = cJSON_PrintUnformatted(cfg);
  cJSON_Delete(cfg);
  int rc = json ? ch_buffer_open("redis", json, out, err)
                : ch_error_set(err, CH_ENOMEM, "out of memory");
  cJSON_free(json);
  return rc;
}

int ch_buffer_has_meta(const ch_buffer *b) {
  size_t end = offsetof(ch_buffer_vtable, meta_get) + sizeof b->vt->meta_get;
  return b->vt->header.struct_size >= end && b->vt->meta_set && b->vt->meta_get;
}

static int ch__open_storage(const char *storage, const char *root, ch_session *s, ch_error *err) {
  int rc = ch_plugin_find(CH_PLUGIN_STORAGE, storage, &s->storage_plugin, err);
  if (rc != CH_OK) return rc;
  s->st = (const ch_storage_vtable *)s->storage_plugin->header;
  cJSON *cfg = cJSON_CreateObject();
  cJSON_AddStringToObject(cfg, strcmp(storage, "local") == 0 ? "root" : "url", root);
  char *json = cJSON_PrintUnformatted(cfg);
  cJSON_Delete(cfg);
  rc = json ? s->st->open(json, ch_host(), &s->st_h, err)
            : ch_error_set(err, CH_ENOMEM, "out of memory");
  cJSON_free(json);
  if (strcmp(storage, "local") == 0)
    snprintf(s->storage_desc, sizeof s->storage_desc, "%s:%s", storage, root);
  else
    snprintf(s->storage_desc, sizeof s->storage_desc, "%s", root);
  return rc;
}

int ch_session_open_spec(const char *spec, const char *catalog_path, ch_session *s, ch_error *err) {
  if (ch__has_scheme(spec, "s3")) return ch_session_open("s3", spec, catalog_path, s, err);
  if (ch__has_scheme(spec, "file")) spec += strlen("file://");
  return ch_session_open("local", spec, catalog_path, s, err);
}

int ch_session_open(const char *storage, const char *root, const char *catalog_path, ch_session *s,
                    ch_error *err) {
  memset(s, 0, sizeof *s);
  snprintf(s->catalog_path, sizeof s->catalog_path, "%s", catalog_path ? catalog_path : "");
  int rc = ch__open_storage(storage, root, s, err);
  if (rc == CH_OK && catalog_path) rc = ch_catalog_open(catalog_path, &s->cat, err);
  if (rc != CH_OK) ch_session_close(s);
  return rc;
}

void ch_session_close(ch_session *s) {
  if (s->cat) ch_catalog_close(s->cat);
  if (s->st_h) s->st->close(s->st_h);
  ch_plugin_close(s->storage_plugin);
  memset(s, 0, sizeof *s);
}
