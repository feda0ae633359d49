/* train_test.h -- what the whole-loop tests share: a temp home, scripts in it, training, storage.
 */
#ifndef CHICANE_TRAIN_TEST_H
#define CHICANE_TRAIN_TEST_H

#include "config.h"
#include "model.h"
#include "trainer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The test program's temporary home: scripts, storage/ and catalog.db live in it. */
static char home[256];

static inline void make_home(void) {
  snprintf(home, sizeof home, "/tmp/chicane-train-XXXXXX");
  assert_non_null(mkdtemp(home));
}

/* A cmocka group teardown: the home and everything in it go. */
static inline int remove_home(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  return system(cmd) == 0 ? 0 : -1;
}

static inline void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Write text to home/name. */
static inline void write_home_file(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", home, name);
  write_file(path, text);
}

enum { TRAIN_REPLACE = 1, TRAIN_RESUME = 2 };

/* Load home/script_name and train it with local storage in home; quiet. flags: TRAIN_*. */
static inline int train(const char *script_name, int flags, ch_train_summary *sum, ch_error *err) {
  char path[512], storage[512], catalog[512];
  snprintf(path, sizeof path, "%s/%s", home, script_name);
  snprintf(storage, sizeof storage, "%s/storage", home);
  snprintf(catalog, sizeof catalog, "%s/catalog.db", home);
  ch_train_config *cfg = malloc(sizeof *cfg);
  assert_non_null(cfg);
  int rc = ch_config_load(path, cfg, err);
  if (rc == CH_OK) {
    ch_train_options o = {.storage = "local",
                          .storage_root = storage,
                          .catalog_path = catalog,
                          .replace = (flags & TRAIN_REPLACE) != 0,
                          .resume = (flags & TRAIN_RESUME) != 0,
                          .quiet = 1,
                          .command_line = "chicane train (test)"};
    rc = ch_train(cfg, &o, sum, err);
  }
  free(cfg);
  return rc;
}

static inline void open_session(ch_session *s) {
  char storage[512], catalog[512];
  ch_error err;
  snprintf(storage, sizeof storage, "%s/storage", home);
  snprintf(catalog, sizeof catalog, "%s/catalog.db", home);
  int rc = ch_session_open("local", storage, catalog, s, &err);
  if (rc != CH_OK) fail_msg("session: %s", err.message);
}

static inline int count_checkpoint(const ch_checkpoint_info *c, void *user) {
  (void)c;
  (*(int *)user)++;
  return 0;
}

static inline int checkpoints(ch_session *s, const char *model) {
  int n = 0;
  assert_int_equal(ch_catalog_list_checkpoints(s->cat, model, count_checkpoint, &n, NULL), CH_OK);
  return n;
}

/* A stored object as a NUL-terminated string (caller frees); fails the test when missing. */
static inline char *get_object(ch_session *s, const char *key) {
  void *data = NULL;
  size_t len = 0;
  ch_error err;
  if (s->st->get(s->st_h, key, &data, &len, &err) != CH_OK) fail_msg("%s: %s", key, err.message);
  char *text = malloc(len + 1);
  assert_non_null(text);
  memcpy(text, data, len);
  text[len] = 0;
  s->st->free_data(s->st_h, data);
  return text;
}

#endif
