/* runtime.h -- live instances of plugins (env, network, storage, buffer) and the catalog. */
#ifndef CHICANE_RUNTIME_H
#define CHICANE_RUNTIME_H

#include "catalog.h"
#include "loader.h"

#include <chicane/plugin.h>

typedef struct ch_env {
  const ch_env_vtable *vt;
  void *h;
  ch_env_spec spec;
} ch_env;

typedef struct ch_net {
  const ch_network_vtable *vt;
  void *h;
  ch_network_spec spec;
} ch_net;

typedef struct ch_buffer {
  ch_plugin *plugin;
  const ch_buffer_vtable *vt;
  void *h;
} ch_buffer;

/* Where models live: a storage plugin instance and the catalog. */
typedef struct ch_session {
  ch_plugin *storage_plugin;
  const ch_storage_vtable *st;
  void *st_h;
  char storage_desc[1024]; /* "local:/path" for messages and the catalog */
  ch_catalog *cat;
  char catalog_path[1024];
} ch_session;

int ch_env_create(const ch_plugin *p, const char *config_json, ch_env *out, ch_error *err);
void ch_env_destroy(ch_env *e);

int ch_net_create(const ch_plugin *p, const char *config_json, ch_net *out, ch_error *err);
void ch_net_destroy(ch_net *n);
/* Whether the network plugin offers add_grads (needed to split an update over cores). */
int ch_net_has_add_grads(const ch_net *n);

int ch_buffer_open(const char *name, const char *config_json, ch_buffer *out, ch_error *err);
/* spec: "memory" (or NULL/empty) for the in-process buffer, or redis://[:password@]host:port[/db]
** with the stream key and consumer name given (NULL: the plugin's defaults). */
int ch_buffer_open_spec(const char *spec, const char *stream, const char *consumer, ch_buffer *out,
                        ch_error *err);
void ch_buffer_close(ch_buffer *b);
/* Whether the buffer plugin offers meta_set/meta_get (needed by distributed training). */
int ch_buffer_has_meta(const ch_buffer *b);

/* Open the storage plugin `storage` on root ("local": a directory; other plugins: their url)
** and the catalog file (catalog_path NULL: storage only, as workers need). */
int ch_session_open(const char *storage, const char *root, const char *catalog_path, ch_session *s,
                    ch_error *err);
/* spec: s3://bucket[/prefix] (plugin s3), file://DIR or a plain DIR (plugin local). */
int ch_session_open_spec(const char *spec, const char *catalog_path, ch_session *s, ch_error *err);
void ch_session_close(ch_session *s);

#endif
