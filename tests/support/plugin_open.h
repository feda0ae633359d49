/* plugin_open.h -- tests: open one plugin .so by path with plain dlopen, no core loader. */
#ifndef CHICANE_TEST_PLUGIN_OPEN_H
#define CHICANE_TEST_PLUGIN_OPEN_H

#include <chicane/plugin.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void test__host_log(int level, const char *source, const char *message) {
  if (level >= CH_LOG_WARN) fprintf(stderr, "[%s] %s\n", source, message);
}

static const ch_host_api test_host = {CH_PLUGIN_ABI_VERSION, sizeof(ch_host_api), test__host_log};

/* Open CHICANE_PLUGIN_BUILD_DIR/<file> (e.g. "env_sim2d.so") and return its vtable, or abort
** with the dlerror text. The handle is left open for the test's lifetime on purpose. */
static inline const void *test_plugin_open(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", CHICANE_PLUGIN_BUILD_DIR, file);
  void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    abort();
  }
  ch_plugin_entry_fn entry;
  *(void **)&entry = dlsym(so, CH_PLUGIN_ENTRY_NAME);
  if (!entry) {
    fprintf(stderr, "dlsym %s in %s: %s\n", CH_PLUGIN_ENTRY_NAME, path, dlerror());
    abort();
  }
  const ch_plugin_header *h = entry(&test_host);
  if (!h) {
    fprintf(stderr, "%s: entry returned NULL\n", path);
    abort();
  }
  return h;
}

#endif
