/* loader.c -- finds, opens and validates plugins: dlopen, one entry symbol, header checks. */
#include "loader.h"

#include "log.h"

#include <chicane/plugin_util.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CHICANE_PLUGIN_BUILD_DIR
#define CHICANE_PLUGIN_BUILD_DIR ""
#endif
#ifndef CHICANE_PLUGIN_INSTALL_DIR
#define CHICANE_PLUGIN_INSTALL_DIR ""
#endif

static const char *const kind_names[] = {"?", "env", "network", "buffer", "storage"};

const char *ch_plugin_kind_name(int kind) {
  return (kind >= CH_PLUGIN_ENV && kind <= CH_PLUGIN_STORAGE) ? kind_names[kind] : "?";
}

int ch_plugin_kind_from_name(const char *name) {
  for (int k = CH_PLUGIN_ENV; k <= CH_PLUGIN_STORAGE; k++)
    if (strcmp(name, kind_names[k]) == 0) return k;
  return 0;
}

/* The smallest vtable of each kind that this core accepts: members appended later are optional
** and checked where they are used. */
static size_t ch__min_vtable_size(int kind) {
  switch (kind) {
  case CH_PLUGIN_ENV:
    return sizeof(ch_env_vtable);
  case CH_PLUGIN_NETWORK:
    return offsetof(ch_network_vtable, add_grads);
  case CH_PLUGIN_BUFFER:
    return offsetof(ch_buffer_vtable, meta_set);
  case CH_PLUGIN_STORAGE:
    return sizeof(ch_storage_vtable);
  default:
    return 0;
  }
}

/* Name of the first required member that is NULL, or NULL when all are present. */
static const char *ch__missing_member(const ch_plugin_header *h) {
#define CH__REQUIRE(vt, member)                                                                    \
  if (!((const vt *)h)->member) return #member
  switch (h->kind) {
  case CH_PLUGIN_ENV:
    CH__REQUIRE(ch_env_vtable, create);
    CH__REQUIRE(ch_env_vtable, destroy);
    CH__REQUIRE(ch_env_vtable, spec);
    CH__REQUIRE(ch_env_vtable, waypoints);
    CH__REQUIRE(ch_env_vtable, reset);
    CH__REQUIRE(ch_env_vtable, step);
    CH__REQUIRE(ch_env_vtable, recover);
    break;
  case CH_PLUGIN_NETWORK:
    CH__REQUIRE(ch_network_vtable, create);
    CH__REQUIRE(ch_network_vtable, destroy);
    CH__REQUIRE(ch_network_vtable, spec);
    CH__REQUIRE(ch_network_vtable, forward);
    CH__REQUIRE(ch_network_vtable, backward);
    CH__REQUIRE(ch_network_vtable, zero_grad);
    CH__REQUIRE(ch_network_vtable, optimizer_step);
    CH__REQUIRE(ch_network_vtable, get_params);
    CH__REQUIRE(ch_network_vtable, set_params);
    CH__REQUIRE(ch_network_vtable, get_grads);
    CH__REQUIRE(ch_network_vtable, save);
    CH__REQUIRE(ch_network_vtable, free_blob);
    CH__REQUIRE(ch_network_vtable, load);
    break;
  case CH_PLUGIN_BUFFER:
    CH__REQUIRE(ch_buffer_vtable, open);
    CH__REQUIRE(ch_buffer_vtable, close);
    CH__REQUIRE(ch_buffer_vtable, push);
    CH__REQUIRE(ch_buffer_vtable, pull);
    CH__REQUIRE(ch_buffer_vtable, ack);
    CH__REQUIRE(ch_buffer_vtable, sample);
    CH__REQUIRE(ch_buffer_vtable, size);
    CH__REQUIRE(ch_buffer_vtable, clear);
    break;
  case CH_PLUGIN_STORAGE:
    CH__REQUIRE(ch_storage_vtable, open);
    CH__REQUIRE(ch_storage_vtable, close);
    CH__REQUIRE(ch_storage_vtable, put);
    CH__REQUIRE(ch_storage_vtable, get);
    CH__REQUIRE(ch_storage_vtable, free_data);
    CH__REQUIRE(ch_storage_vtable, list);
    CH__REQUIRE(ch_storage_vtable, remove);
    break;
  }
#undef CH__REQUIRE
  return NULL;
}

static int ch__valid_name(const char *s) {
  if (!s || !*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
  return 1;
}

/* Check the header against what this core accepts; message in err. */
static int ch__validate(const char *path, const ch_plugin_header *h, int expected_kind,
                        ch_error *err) {
  if (h->abi_version != CH_PLUGIN_ABI_VERSION)
    return ch_error_set(err, CH_EPLUGIN, "%s: plugin ABI version %u, this chicane needs %u", path,
                        h->abi_version, CH_PLUGIN_ABI_VERSION);
  size_t min = ch__min_vtable_size((int)h->kind);
  if (min == 0) return ch_error_set(err, CH_EPLUGIN, "%s: unknown plugin kind %u", path, h->kind);
  if (expected_kind && (int)h->kind != expected_kind)
    return ch_error_set(err, CH_EPLUGIN, "%s: is a %s plugin, expected a %s plugin", path,
                        ch_plugin_kind_name((int)h->kind), ch_plugin_kind_name(expected_kind));
  if (h->struct_size < min)
    return ch_error_set(err, CH_EPLUGIN, "%s: %s vtable is %u bytes, at least %zu required", path,
                        ch_plugin_kind_name((int)h->kind), h->struct_size, min);
  if (!ch__valid_name(h->name))
    return ch_error_set(err, CH_EPLUGIN, "%s: plugin name '%s' is not [a-z0-9_]+", path,
                        h->name ? h->name : "(null)");
  if (!h->version)
    return ch_error_set(err, CH_EPLUGIN, "%s: plugin '%s' has no version string", path, h->name);
  const char *missing = ch__missing_member(h);
  if (missing)
    return ch_error_set(err, CH_EPLUGIN, "%s: %s plugin '%s' lacks required member '%s'", path,
                        ch_plugin_kind_name((int)h->kind), h->name, missing);
  return CH_OK;
}

int ch_plugin_open(const char *path, int expected_kind, ch_plugin **out, ch_error *err) {
  *out = NULL;
  void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!so) return ch_error_set(err, CH_EPLUGIN, "cannot load plugin: %s", dlerror());
  ch_plugin_entry_fn entry;
  void *sym = dlsym(so, CH_PLUGIN_ENTRY_NAME);
  if (!sym) {
    ch_error_set(err, CH_EPLUGIN, "%s: not a chicane plugin: no symbol '%s' (%s)", path,
                 CH_PLUGIN_ENTRY_NAME, dlerror());
    dlclose(so);
    return CH_EPLUGIN;
  }
  memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer, as POSIX allows */
  const ch_plugin_header *h = entry(ch_host());
  int rc = h ? ch__validate(path, h, expected_kind, err)
             : ch_error_set(err, CH_EPLUGIN, "%s: entry point returned NULL (host refused)", path);
  if (rc != CH_OK) {
    dlclose(so);
    return rc;
  }
  ch_plugin *p = calloc(1, sizeof *p);
  if (!p || !(p->path = strdup(path))) {
    free(p);
    dlclose(so);
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  }
  p->so = so;
  p->header = h;
  *out = p;
  return CH_OK;
}

void ch_plugin_close(ch_plugin *p) {
  if (!p) return;
  dlclose(p->so);
  free(p->path);
  free(p);
}

void ch_plugin_search_path(int (*fn)(const char *dir, void *user), void *user) {
  const char *fixed[] = {CHICANE_PLUGIN_BUILD_DIR, CHICANE_PLUGIN_INSTALL_DIR};
  for (size_t i = 0; i < 2; i++)
    if (fixed[i][0] && fn(fixed[i], user)) return;
  const char *env = getenv("CHICANE_PLUGIN_PATH");
  if (!env) return;
  char *copy = strdup(env), *save = NULL;
  for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
    if (fn(d, user)) break;
  free(copy);
}

typedef struct ch__find_ctx {
  int kind;
  const char *name;
  ch_plugin *found;
  ch_error first_error;
  int tried;
} ch__find_ctx;

static int ch__find_in_dir(const char *dir, void *user) {
  ch__find_ctx *c = user;
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s_%s.so", dir, ch_plugin_kind_name(c->kind), c->name);
  if (stat(path, &st) != 0) return 0;
  ch_error e;
  if (ch_plugin_open(path, c->kind, &c->found, &e) == CH_OK) {
    if (strcmp(c->found->header->name, c->name) == 0) return 1;
    ch_error_set(&e, CH_EPLUGIN, "%s: file is named for '%s' but the plugin calls itself '%s'",
                 path, c->name, c->found->header->name);
    ch_plugin_close(c->found);
    c->found = NULL;
  }
  if (!c->tried++) c->first_error = e;
  return 0;
}

static int ch__append_dir(const char *dir, void *user) {
  char *list = user;
  size_t n = strlen(list);
  snprintf(list + n, 1024 - n, "%s%s", n ? ", " : "", dir);
  return 0;
}

int ch_plugin_find(int kind, const char *name, ch_plugin **out, ch_error *err) {
  ch__find_ctx c = {kind, name, NULL, {0, ""}, 0};
  *out = NULL;
  if (!ch__valid_name(name))
    return ch_error_set(err, CH_EINVAL, "invalid %s plugin name '%s' (want [a-z0-9_]+)",
                        ch_plugin_kind_name(kind), name);
  ch_plugin_search_path(ch__find_in_dir, &c);
  if (c.found) {
    *out = c.found;
    return CH_OK;
  }
  if (c.tried) {
    if (err) *err = c.first_error;
    return c.first_error.code;
  }
  char dirs[1024] = "";
  ch_plugin_search_path(ch__append_dir, dirs);
  return ch_error_set(err, CH_ENOTFOUND, "no %s plugin '%s' (looked for %s_%s.so in: %s)",
                      ch_plugin_kind_name(kind), name, ch_plugin_kind_name(kind), name, dirs);
}

typedef struct ch__scan_ctx {
  void (*fn)(const ch_plugin_entry_info *, void *);
  void *user;
  char seen[64][96]; /* kind/name pairs already reported, to mark shadowed ones */
  int nseen;
} ch__scan_ctx;

static int ch__ends_with_so(const char *s) {
  size_t n = strlen(s);
  return n > 3 && strcmp(s + n - 3, ".so") == 0;
}

static int ch__cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ch__mark_seen(ch__scan_ctx *c, const ch_plugin_header *h) {
  char key[96];
  snprintf(key, sizeof key, "%u/%s", h->kind, h->name);
  for (int i = 0; i < c->nseen; i++)
    if (strcmp(c->seen[i], key) == 0) return 1;
  if (c->nseen < 64) snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", key);
  return 0;
}

static void ch__scan_file(ch__scan_ctx *c, const char *path) {
  ch_plugin *p = NULL;
  ch_error e = {0, ""};
  ch_plugin_entry_info info = {path, NULL, &e, 0};
  if (ch_plugin_open(path, 0, &p, &e) == CH_OK) {
    info.header = p->header;
    info.shadowed = ch__mark_seen(c, p->header);
  }
  c->fn(&info, c->user);
  ch_plugin_close(p);
}

static int ch__scan_dir(const char *dir, void *user) {
  ch__scan_ctx *c = user;
  DIR *d = opendir(dir);
  if (!d) return 0;
  char *names[512];
  int n = 0;
  for (struct dirent *de; (de = readdir(d)) && n < 512;)
    if (ch__ends_with_so(de->d_name)) names[n++] = strdup(de->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], ch__cmp_str);
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i] ? names[i] : "");
    if (names[i]) ch__scan_file(c, path);
    free(names[i]);
  }
  return 0;
}

void ch_plugin_scan(void (*fn)(const ch_plugin_entry_info *info, void *user), void *user) {
  ch__scan_ctx *c = calloc(1, sizeof *c);
  if (!c) return;
  c->fn = fn;
  c->user = user;
  ch_plugin_search_path(ch__scan_dir, c);
  free(c);
}
