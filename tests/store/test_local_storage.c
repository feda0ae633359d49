/* test_local_storage.c -- the local storage plugin: round trips, keys, list order, crashes. */

#define _XOPEN_SOURCE 700 /* nftw, to clean up the scratch directory */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_open.h"

static const ch_storage_vtable *vt;

typedef struct fixture {
  char dir[64];   /* the test's scratch directory */
  char root[128]; /* the store's root inside it (created by open) */
  void *st;
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void rm_rf(const char *path) {
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void *open_store(const char *config) {
  void *st = NULL;
  ch_error err = {0};
  int rc = vt->open(config, &test_host, &st, &err);
  if (rc != CH_OK) fail_msg("open(%s): %s", config, err.message);
  return st;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  strcpy(f->dir, "/tmp/chicane-local-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  /* Two levels that do not exist yet: open must create the root with its parents. */
  snprintf(f->root, sizeof f->root, "%s/deep/store", f->dir);
  char config[256];
  snprintf(config, sizeof config, "{\"root\": \"%s\", \"fsync\": true}", f->root);
  f->st = open_store(config);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  vt->close(f->st);
  rm_rf(f->dir);
  free(f);
  return 0;
}

static void put_bytes(void *st, const char *key, const void *data, size_t len) {
  ch_error err = {0};
  int rc = vt->put(st, key, data, len, &err);
  if (rc != CH_OK) fail_msg("put(%s): %s", key, err.message);
}

static void put_text(void *st, const char *key, const char *text) {
  put_bytes(st, key, text, strlen(text));
}

static void assert_object(void *st, const char *key, const void *want, size_t want_len) {
  void *data = NULL;
  size_t len = 0;
  ch_error err = {0};
  int rc = vt->get(st, key, &data, &len, &err);
  if (rc != CH_OK) fail_msg("get(%s): %s", key, err.message);
  assert_non_null(data);
  assert_int_equal(len, want_len);
  if (want_len > 0) assert_memory_equal(data, want, want_len);
  vt->free_data(st, data);
}

static void assert_text(void *st, const char *key, const char *text) {
  assert_object(st, key, text, strlen(text));
}

static void assert_absent(void *st, const char *key) {
  void *data = (void *)&data;
  size_t len = 1;
  ch_error err = {0};
  assert_int_equal(vt->get(st, key, &data, &len, &err), CH_ENOTFOUND);
  assert_null(data);
  char want[300];
  snprintf(want, sizeof want, "no object '%s' in ", key);
  if (!strstr(err.message, want)) fail_msg("message '%s' lacks '%s'", err.message, want);
}

static void test_local_header(void **state) {
  (void)state;
  assert_int_equal(vt->header.kind, CH_PLUGIN_STORAGE);
  assert_int_equal(vt->header.struct_size, sizeof(ch_storage_vtable));
  assert_string_equal(vt->header.name, "local");
}

static void test_local_round_trip(void **state) {
  fixture *f = *state;
  put_text(f->st, "hello.txt", "hello, track");
  assert_text(f->st, "hello.txt", "hello, track");
  put_bytes(f->st, "empty", "", 0);
  assert_object(f->st, "empty", "", 0);
  size_t big = 5u * 1024 * 1024;
  unsigned char *blob = malloc(big);
  assert_non_null(blob);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < big; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    blob[i] = (unsigned char)x;
  }
  put_bytes(f->st, "big.bin", blob, big);
  assert_object(f->st, "big.bin", blob, big);
  free(blob);
}

static void test_local_overwrite(void **state) {
  fixture *f = *state;
  put_text(f->st, "k", "first");
  put_text(f->st, "k", "a second, longer value");
  assert_text(f->st, "k", "a second, longer value");
  put_text(f->st, "k", "3");
  assert_text(f->st, "k", "3");
  /* No temp file is left behind: the root holds exactly "k". */
  DIR *d = opendir(f->root);
  assert_non_null(d);
  int entries = 0;
  for (struct dirent *de; (de = readdir(d));) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    assert_string_equal(de->d_name, "k");
    entries++;
  }
  closedir(d);
  assert_int_equal(entries, 1);
}

static void test_local_nested_keys(void **state) {
  fixture *f = *state;
  put_text(f->st, "models/run-1/checkpoints/000001.bin", "weights");
  assert_text(f->st, "models/run-1/checkpoints/000001.bin", "weights");
  char path[300];
  snprintf(path, sizeof path, "%s/models/run-1/checkpoints/000001.bin", f->root);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_size, 7);
  /* A key whose parent is an object, and a key that names a directory, hold nothing. */
  assert_absent(f->st, "models/run-1/checkpoints/000001.bin/x");
  assert_absent(f->st, "models/run-1");
}

typedef struct listing {
  char keys[32][64];
  uint64_t sizes[32];
  int n;
  int stop_after; /* 0: never */
} listing;

static int collect(const char *key, uint64_t size, void *user) {
  listing *l = user;
  if (l->n < 32) {
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    l->sizes[l->n] = size;
  }
  l->n++;
  return l->stop_after && l->n >= l->stop_after;
}

static void list_into(void *st, const char *prefix, listing *l, int stop_after) {
  memset(l, 0, sizeof *l);
  l->stop_after = stop_after;
  ch_error err = {0};
  int rc = vt->list(st, prefix, collect, l, &err);
  if (rc != CH_OK) fail_msg("list(%s): %s", prefix ? prefix : "NULL", err.message);
}

static void assert_listing(const listing *l, const char *const *want, int n) {
  if (l->n != n) {
    for (int i = 0; i < l->n && i < 32; i++) fprintf(stderr, "  listed %s\n", l->keys[i]);
    fail_msg("listed %d keys, want %d", l->n, n);
  }
  for (int i = 0; i < n; i++) assert_string_equal(l->keys[i], want[i]);
}

static void test_local_list(void **state) {
  fixture *f = *state;
  /* Put in a scrambled order; byte order puts '-' < '.' < '/' < '0' < 'A' < 'a'. */
  const char *keys[] = {"x0", "x/2/3", "Y", "x-1", "x/1.5", "x.1", "x/1", "z", "x/2-0"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) put_text(f->st, keys[i], keys[i]);
  const char *all[] = {"Y", "x-1", "x.1", "x/1", "x/1.5", "x/2-0", "x/2/3", "x0", "z"};
  listing l;
  list_into(f->st, "", &l, 0);
  assert_listing(&l, all, 9);
  for (int i = 0; i < 9; i++) assert_int_equal(l.sizes[i], strlen(all[i]));
  list_into(f->st, NULL, &l, 0);
  assert_listing(&l, all, 9);

  const char *under_x_slash[] = {"x/1", "x/1.5", "x/2-0", "x/2/3"};
  list_into(f->st, "x/", &l, 0);
  assert_listing(&l, under_x_slash, 4);
  const char *x_prefix[] = {"x-1", "x.1", "x/1", "x/1.5", "x/2-0", "x/2/3", "x0"};
  list_into(f->st, "x", &l, 0);
  assert_listing(&l, x_prefix, 7);
  const char *x_1[] = {"x/1", "x/1.5"};
  list_into(f->st, "x/1", &l, 0);
  assert_listing(&l, x_1, 2);
  const char *x_2[] = {"x/2-0", "x/2/3"};
  list_into(f->st, "x/2", &l, 0);
  assert_listing(&l, x_2, 2);
  list_into(f->st, "nothing/here/", &l, 0);
  assert_int_equal(l.n, 0);
  list_into(f->st, "x0/", &l, 0); /* x0 is an object, not a directory */
  assert_int_equal(l.n, 0);

  list_into(f->st, "", &l, 3); /* the callback stops the walk */
  assert_listing(&l, all, 3);
  list_into(f->st, "x/", &l, 1);
  assert_listing(&l, under_x_slash, 1);

  ch_error err = {0};
  assert_int_equal(vt->list(f->st, "../", collect, &l, &err), CH_EINVAL);
  assert_non_null(strstr(err.message, "invalid storage key '../'"));
  assert_int_equal(vt->list(f->st, "/x", collect, &l, &err), CH_EINVAL);
}

static void test_local_remove(void **state) {
  fixture *f = *state;
  ch_error err = {0};
  put_text(f->st, "gone", "soon");
  assert_int_equal(vt->remove(f->st, "gone", &err), CH_OK);
  assert_absent(f->st, "gone");
  assert_int_equal(vt->remove(f->st, "gone", &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, "no object 'gone' in "));
  assert_non_null(strstr(err.message, f->root));

  /* Empty directories go with their last object, up to the first one still in use. */
  put_text(f->st, "p/q/r", "1");
  put_text(f->st, "p/s", "2");
  assert_int_equal(vt->remove(f->st, "p/q/r", &err), CH_OK);
  char path[300];
  struct stat sb;
  snprintf(path, sizeof path, "%s/p/q", f->root);
  assert_int_equal(stat(path, &sb), -1);
  snprintf(path, sizeof path, "%s/p", f->root);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(vt->remove(f->st, "p", &err), CH_ENOTFOUND); /* a directory, not an object */
  assert_int_equal(vt->remove(f->st, "p/s", &err), CH_OK);
  assert_int_equal(stat(path, &sb), -1);
  assert_int_equal(stat(f->root, &sb), 0); /* never the root */
  put_text(f->st, "p/q/r", "again");       /* and the pruned path is usable again */
  assert_text(f->st, "p/q/r", "again");
}

static void test_local_not_found(void **state) {
  fixture *f = *state;
  assert_absent(f->st, "missing");
  assert_absent(f->st, "missing/deeper/still");
  void *data;
  size_t len;
  ch_error err = {0};
  assert_int_equal(vt->get(f->st, "missing", &data, &len, &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, f->root));
}

static void expect_bad_key(void *st, const char *key, const char *reason) {
  ch_error err = {0};
  char want[128];
  snprintf(want, sizeof want, "invalid storage key '");
  void *data = NULL;
  size_t len = 0;
  int rcs[3] = {vt->put(st, key, "x", 1, &err), 0, 0};
  if (!strstr(err.message, want) || !strstr(err.message, reason))
    fail_msg("put: message '%s' lacks '%s' or '%s'", err.message, want, reason);
  rcs[1] = vt->get(st, key, &data, &len, &err);
  rcs[2] = vt->remove(st, key, &err);
  for (int i = 0; i < 3; i++)
    if (rcs[i] != CH_EINVAL)
      fail_msg("key '%.40s': call %d gave %d, not CH_EINVAL", key, i, rcs[i]);
  assert_int_equal(err.code, CH_EINVAL);
}

static void test_local_invalid_keys(void **state) {
  fixture *f = *state;
  expect_bad_key(f->st, "", "empty key");
  expect_bad_key(f->st, "/abs", "leading '/'");
  expect_bad_key(f->st, "dir/", "trailing '/'");
  expect_bad_key(f->st, "a//b", "empty segment");
  expect_bad_key(f->st, "a/./b", "segment '.'");
  expect_bad_key(f->st, ".", "segment '.'");
  expect_bad_key(f->st, "../etc/passwd", "segment '..'");
  expect_bad_key(f->st, "a/..", "segment '..'");
  expect_bad_key(f->st, "with space", "character");
  expect_bad_key(f->st, "back\\slash", "character");
  expect_bad_key(f->st, "tilde~", "character");
  expect_bad_key(f->st, "caf\xc3\xa9", "character");
  char key[1100];
  memset(key, 'k', 1025);
  for (int i = 100; i < 1025; i += 100) key[i] = '/';
  key[1025] = '\0';
  expect_bad_key(f->st, key, "longer than 1024 bytes");
  key[1024] = '\0'; /* exactly 1024 bytes is fine */
  put_text(f->st, key, "at the limit");
  assert_text(f->st, key, "at the limit");
  memset(key, 's', 256);
  key[256] = '\0';
  expect_bad_key(f->st, key, "segment longer than 255 bytes");
  ch_error err = {0};
  assert_int_equal(vt->put(f->st, NULL, "x", 1, &err), CH_EINVAL);
  /* Fine keys: dots and dashes inside segments, a leading dot, "..." */
  put_text(f->st, ".hidden/...", "ok");
  assert_text(f->st, ".hidden/...", "ok");
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void test_local_orphan_temp_file(void **state) {
  fixture *f = *state;
  char path[400];
  snprintf(path, sizeof path, "%s/m", f->root);
  assert_int_equal(mkdir(path, 0777), 0);
  /* What a writer that died before its rename leaves: a temp file beside the target. The
  ** names are the ones this process's handle would pick next, so put must step past them. */
  for (int n = 0; n < 3; n++) {
    snprintf(path, sizeof path, "%s/m/.tmp~%ld~%d~obj", f->root, (long)getpid(), n);
    write_file(path, "half-writ");
  }
  snprintf(path, sizeof path, "%s/.tmp~1~7~ghost", f->root);
  write_file(path, "never renamed");
  listing l;
  list_into(f->st, "", &l, 0);
  assert_int_equal(l.n, 0);
  assert_absent(f->st, "ghost");
  assert_absent(f->st, "m/obj");
  put_text(f->st, "m/obj", "the real thing");
  assert_text(f->st, "m/obj", "the real thing");
  const char *only[] = {"m/obj"};
  list_into(f->st, "", &l, 0);
  assert_listing(&l, only, 1);
  list_into(f->st, "m/", &l, 0);
  assert_listing(&l, only, 1);
  /* Other stray things a key cannot name are skipped too. */
  snprintf(path, sizeof path, "%s/m/not a key", f->root);
  write_file(path, "stray");
  snprintf(path, sizeof path, "%s/m/link", f->root);
  assert_int_equal(symlink("obj", path), 0);
  list_into(f->st, "", &l, 0);
  assert_listing(&l, only, 1);
}

#define SWAP_SIZE   (256 * 1024)
#define SWAP_PUTS   100
#define RACE_ROUNDS 300

typedef struct swapper {
  void *st;
  atomic_int done;
  atomic_int failures;
  unsigned char *blobs[2];
} swapper;

static void *swap_writer(void *arg) {
  swapper *s = arg;
  for (int i = 0; i < SWAP_PUTS; i++) {
    ch_error err = {0};
    if (vt->put(s->st, "swap/obj", s->blobs[i & 1], SWAP_SIZE, &err) != CH_OK)
      atomic_fetch_add(&s->failures, 1);
  }
  atomic_store(&s->done, 1);
  return NULL;
}

/* Every read must be one blob whole: all 'A' or all 'B', never a mix or a short file. */
static void *swap_reader(void *arg) {
  swapper *s = arg;
  while (!atomic_load(&s->done)) {
    void *data;
    size_t len;
    ch_error err = {0};
    if (vt->get(s->st, "swap/obj", &data, &len, &err) != CH_OK) {
      atomic_fetch_add(&s->failures, 1);
      continue;
    }
    const unsigned char *p = data;
    int whole = len == SWAP_SIZE && (p[0] == 'A' || p[0] == 'B');
    for (size_t i = 1; whole && i < len; i++) whole = p[i] == p[0];
    if (!whole) atomic_fetch_add(&s->failures, 1);
    vt->free_data(s->st, data);
  }
  return NULL;
}

static void test_local_atomic_replace(void **state) {
  fixture *f = *state;
  char config[300];
  snprintf(config, sizeof config, "{\"root\": \"%s\", \"fsync\": false}", f->root);
  swapper s = {open_store(config), 0, 0, {malloc(SWAP_SIZE), malloc(SWAP_SIZE)}};
  assert_non_null(s.blobs[0]);
  assert_non_null(s.blobs[1]);
  memset(s.blobs[0], 'A', SWAP_SIZE);
  memset(s.blobs[1], 'B', SWAP_SIZE);
  put_bytes(s.st, "swap/obj", s.blobs[1], SWAP_SIZE);
  pthread_t w, r;
  assert_int_equal(pthread_create(&r, NULL, swap_reader, &s), 0);
  assert_int_equal(pthread_create(&w, NULL, swap_writer, &s), 0);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  assert_int_equal(atomic_load(&s.failures), 0);
  assert_object(s.st, "swap/obj", s.blobs[(SWAP_PUTS - 1) & 1], SWAP_SIZE);
  free(s.blobs[0]);
  free(s.blobs[1]);
  vt->close(s.st);
}

typedef struct racer {
  void *st;
  const char *key;
  int failures;
  char message[CH_ERROR_MESSAGE_MAX];
} racer;

/* Put and remove one key over and over while a sibling does the same: each remove prunes the
** shared directories whenever they happen to be empty, right under the other's put. */
static void *race_main(void *arg) {
  racer *r = arg;
  for (int i = 0; i < RACE_ROUNDS; i++) {
    ch_error err = {0};
    int rc = vt->put(r->st, r->key, "x", 1, &err);
    if (rc == CH_OK) rc = vt->remove(r->st, r->key, &err);
    if (rc != CH_OK) {
      r->failures++;
      memcpy(r->message, err.message, sizeof r->message);
    }
  }
  return NULL;
}

static void test_local_put_remove_race(void **state) {
  fixture *f = *state;
  void *st = f->st; /* fsync on: the directory flushes race with the pruning too */
  racer a = {st, "race/shared/dir/a", 0, ""}, b = {st, "race/shared/dir/b", 0, ""};
  pthread_t ta, tb;
  assert_int_equal(pthread_create(&ta, NULL, race_main, &a), 0);
  assert_int_equal(pthread_create(&tb, NULL, race_main, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  if (a.failures || b.failures)
    fail_msg("%d + %d failures, e.g. '%s'", a.failures, b.failures,
             a.failures ? a.message : b.message);
  char path[300];
  struct stat sb;
  snprintf(path, sizeof path, "%s/race", f->root);
  assert_int_equal(stat(path, &sb), -1); /* all pruned at the end */
}

static void expect_open_failure(const char *root, int code) {
  char config[512];
  snprintf(config, sizeof config, "{\"root\": \"%s\"}", root);
  void *st = (void *)&st;
  ch_error err = {0};
  assert_int_equal(vt->open(config, &test_host, &st, &err), code);
  assert_null(st);
  if (!strstr(err.message, root)) fail_msg("message '%s' does not name %s", err.message, root);
}

static void test_local_unwritable_root(void **state) {
  fixture *f = *state;
  char file[200], root[300];
  snprintf(file, sizeof file, "%s/plain-file", f->dir);
  write_file(file, "not a directory");
  /* Below a regular file nothing can be created, whoever runs the test (root included). */
  snprintf(root, sizeof root, "%s/store", file);
  expect_open_failure(root, CH_EIO);
  snprintf(root, sizeof root, "%s/store/deeper", file);
  expect_open_failure(root, CH_EIO);
  expect_open_failure(file, CH_EIO); /* the root itself is a file */
  if (geteuid() == 0) {
    fprintf(stderr, "NOTE: running as root: permission bits do not stop root; the read-only "
                    "directory case is skipped (the regular-file cases above ran)\n");
    return;
  }
  char ro[200];
  snprintf(ro, sizeof ro, "%s/read-only", f->dir);
  assert_int_equal(mkdir(ro, 0555), 0);
  expect_open_failure(ro, CH_EIO);
  snprintf(root, sizeof root, "%s/store", ro);
  expect_open_failure(root, CH_EIO);
  chmod(ro, 0755);
}

static void test_local_put_error_names_path(void **state) {
  fixture *f = *state;
  /* "blocker" is an object, so nothing can be stored below it. */
  put_text(f->st, "blocker", "x");
  ch_error err = {0};
  assert_int_equal(vt->put(f->st, "blocker/child", "y", 1, &err), CH_EIO);
  char want[300];
  snprintf(want, sizeof want, "%s/blocker/", f->root);
  if (!strstr(err.message, want) || !strstr(err.message, strerror(ENOTDIR)))
    fail_msg("message '%s' lacks '%s' and strerror", err.message, want);
}

static void expect_config_error(const char *config, const char *needle) {
  void *st = (void *)&st;
  ch_error err = {0};
  assert_int_equal(vt->open(config, &test_host, &st, &err), CH_EINVAL);
  assert_null(st);
  if (!strstr(err.message, needle))
    fail_msg("open(%s): message '%s' lacks '%s'", config, err.message, needle);
}

static void test_local_config(void **state) {
  fixture *f = *state;
  expect_config_error("{\"root\": \"/tmp/x\", \"fsnyc\": false}", "unknown config key 'fsnyc'");
  expect_config_error("{}", "'root' is required");
  expect_config_error("{\"root\": 5}", "'root'");
  expect_config_error("{\"root\": \"\"}", "'root'");
  expect_config_error("{\"root\": \"/tmp/x\", \"fsync\": 1}", "'fsync'");
  expect_config_error("{\"root\": ", "not valid JSON");
  expect_config_error(NULL, "root");
  /* fsync off, and a second handle on the same root sees the first one's objects. */
  char config[300];
  snprintf(config, sizeof config, "{\"root\": \"%s/\", \"fsync\": false}", f->root);
  void *other = open_store(config);
  put_text(other, "from/other", "shared");
  assert_text(f->st, "from/other", "shared");
  vt->close(other);
}

int main(void) {
  vt = test_plugin_open("storage_local.so");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_local_header),
      cmocka_unit_test_setup_teardown(test_local_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_overwrite, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_nested_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_not_found, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_invalid_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_orphan_temp_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_atomic_replace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_put_remove_race, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_unwritable_root, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_put_error_names_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_local_config, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
