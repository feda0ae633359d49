/* loader.h -- finds, opens and validates plugins (.so) through the search path. */
#ifndef CHICANE_LOADER_H
#define CHICANE_LOADER_H

#include <chicane/plugin.h>

typedef struct ch_plugin {
  char *path;                     /* the file that was opened */
  void *so;                       /* dlopen handle */
  const ch_plugin_header *header; /* the plugin's vtable (cast by kind) */
} ch_plugin;

/* "env", "network", "buffer", "storage" (or "?"), and back (0 when unknown). */
const char *ch_plugin_kind_name(int kind);
int ch_plugin_kind_from_name(const char *name);

/* Open the .so at path and validate it: the entry symbol, ABI version, kind (expected_kind, or
** any when 0), vtable size and required members. On failure *out is NULL and err names the path
** and the reason (dlerror text where there is one). */
int ch_plugin_open(const char *path, int expected_kind, ch_plugin **out, ch_error *err);

/* Find KIND_NAME.so on the search path and open it. */
int ch_plugin_find(int kind, const char *name, ch_plugin **out, ch_error *err);

void ch_plugin_close(ch_plugin *p);

/* The search path, in order: the build's plugin dir, the install dir, then each entry of
** CHICANE_PLUGIN_PATH (':'-separated). Calls fn for each directory; fn returning non-zero
** stops the walk. */
void ch_plugin_search_path(int (*fn)(const char *dir, void *user), void *user);

/* One entry of a scan: header is NULL (and error set) for a file that failed to load. */
typedef struct ch_plugin_entry_info {
  const char *path;
  const ch_plugin_header *header;
  const ch_error *error;
  int shadowed; /* an earlier directory already had a plugin of this kind and name */
} ch_plugin_entry_info;

/* Open every *.so in every search directory (sorted by name within a directory) and report
** it. Used by `chicane plugins`. */
void ch_plugin_scan(void (*fn)(const ch_plugin_entry_info *info, void *user), void *user);

#endif
