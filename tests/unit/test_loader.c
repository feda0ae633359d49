/* test_loader.c -- the plugin loader: validation of fixture plugins, the search path, the scan. */
#include "unit_test.h"

#include "loader.h"
#include "runtime.h"

#define FIXTURE(file) CH_FIXTURE_DIR "/" file

/* Open path expecting failure rc; the message must name the path and contain reason. */
static void expect_open_fails(const char *path, int kind, int rc, const char *reason) {
  ch_plugin *p = (ch_plugin *)&p; /* not NULL, so the test sees open reset it */
  ch_error err = {0, ""};
  unit_expect(ch_plugin_open(path, kind, &p, &err), rc, err);
  assert_null(p);
  assert_int_equal(err.code, rc);
  unit_assert_contains(err.message, path);
  unit_assert_contains(err.message, reason);
}

static ch_plugin *open_ok(const char *path, int kind) {
  ch_plugin *p = NULL;
  ch_error err = {0, ""};
  unit_check(ch_plugin_open(path, kind, &p, &err), err);
  assert_non_null(p);
  return p;
}

static void test_open_valid_env(void **state) {
  (void)state;
  ch_plugin *p = open_ok(FIXTURE("env_fixture.so"), CH_PLUGIN_ENV);
  assert_string_equal(p->path, FIXTURE("env_fixture.so"));
  assert_int_equal(p->header->kind, CH_PLUGIN_ENV);
  assert_int_equal(p->header->abi_version, CH_PLUGIN_ABI_VERSION);
  assert_int_equal(p->header->struct_size, sizeof(ch_env_vtable));
  assert_string_equal(p->header->name, "fixture");
  assert_string_equal(p->header->version, "1.0.0");

  /* The vtable is live: drive one episode step through it. */
  const ch_env_vtable *vt = (const ch_env_vtable *)p->header;
  ch_error err = {0, ""};
  void *env = NULL;
  unit_expect(vt->create("{\"x\":1}", NULL, &env, &err), CH_EINVAL, err);
  unit_assert_contains(err.message, "{\"x\":1}");
  unit_check(vt->create("{}", NULL, &env, &err), err);
  ch_env_spec spec;
  vt->spec(env, &spec);
  assert_int_equal(spec.num_cars, 1);
  assert_int_equal(spec.obs_size, 2);
  double xy[2 * 16];
  assert_int_equal(vt->waypoints(env, xy, 16), 11);
  unit_assert_near(xy[2 * 10], 10.0, 0.0);
  float obs[2];
  ch_env_params prm;
  int32_t status = -1;
  unit_check(vt->reset(env, 0, &(ch_env_reset){0.5, 0, 0, 0, 0}, obs, NULL, &prm, &err), err);
  unit_assert_near(prm.progress, 50.0, 1e-12);
  const float steer = 0.0f, speed = 3.0f;
  unit_check(vt->step(env, &steer, &speed, NULL, obs, NULL, &prm, &status, &err), err);
  unit_assert_near(prm.x, 5.2, 1e-6);
  assert_int_equal(prm.steps, 2);
  assert_int_equal(status, CH_EPISODE_IN_PROGRESS);
  vt->destroy(env);
  ch_plugin_close(p);

  /* Any kind (0) accepts it too. */
  ch_plugin_close(open_ok(FIXTURE("env_fixture.so"), 0));
}

static void test_open_bad_abi(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_badabi.so"), CH_PLUGIN_ENV, CH_EPLUGIN, "ABI version 99");
}

static void test_open_no_entry(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_noentry.so"), CH_PLUGIN_ENV, CH_EPLUGIN,
                    "no symbol 'chicane_plugin_entry'");
}

static void test_open_wrong_kind(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_wrongkind.so"), CH_PLUGIN_ENV, CH_EPLUGIN,
                    "is a storage plugin, expected a env plugin");
}

static int list_count(const char *key, uint64_t size, void *user) {
  char *seen = user;
  size_t n = strlen(seen);
  snprintf(seen + n, 128 - n, "%s=%llu;", key, (unsigned long long)size);
  return 0;
}

/* Opened for any kind, the storage fixture loads and works as a storage plugin. */
static void test_open_wrong_kind_as_any(void **state) {
  (void)state;
  ch_plugin *p = open_ok(FIXTURE("env_wrongkind.so"), 0);
  assert_int_equal(p->header->kind, CH_PLUGIN_STORAGE);
  assert_string_equal(p->header->name, "wrongkind");
  const ch_storage_vtable *st = (const ch_storage_vtable *)p->header;
  ch_error err = {0, ""};
  void *h = NULL, *data = NULL;
  size_t len = 0;
  char seen[128] = "";
  unit_check(st->open("{}", NULL, &h, &err), err);
  unit_check(st->put(h, "b/two", "22", 2, &err), err);
  unit_check(st->put(h, "a/one", "1", 1, &err), err);
  unit_check(st->get(h, "b/two", &data, &len, &err), err);
  assert_int_equal(len, 2);
  assert_memory_equal(data, "22", 2);
  st->free_data(h, data);
  unit_check(st->list(h, "", list_count, seen, &err), err);
  assert_string_equal(seen, "a/one=1;b/two=2;");
  unit_check(st->remove(h, "a/one", &err), err);
  unit_expect(st->remove(h, "a/one", &err), CH_ENOTFOUND, err);
  st->close(h);
  ch_plugin_close(p);
}

static void test_open_null_member(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_nullstep.so"), CH_PLUGIN_ENV, CH_EPLUGIN,
                    "lacks required member 'step'");
}

static void test_open_small_vtable(void **state) {
  (void)state;
  char reason[128];
  snprintf(reason, sizeof reason, "env vtable is %zu bytes, at least %zu required",
           sizeof(ch_env_vtable) - sizeof(void *), sizeof(ch_env_vtable));
  expect_open_fails(FIXTURE("env_small.so"), CH_PLUGIN_ENV, CH_EPLUGIN, reason);
}

static void test_open_entry_null(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_nullentry.so"), CH_PLUGIN_ENV, CH_EPLUGIN,
                    "entry point returned NULL");
}

static void test_open_bad_name(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_badname.so"), CH_PLUGIN_ENV, CH_EPLUGIN,
                    "plugin name 'Bad-Name!' is not [a-z0-9_]+");
}

static void test_open_missing_file(void **state) {
  (void)state;
  expect_open_fails(FIXTURE("env_nonexistent.so"), CH_PLUGIN_ENV, CH_EPLUGIN, "cannot load plugin");
}

static void use_fixture_path(void) {
  assert_int_equal(setenv("CHICANE_PLUGIN_PATH", CH_FIXTURE_DIR, 1), 0);
}

static void test_find_fixture(void **state) {
  (void)state;
  use_fixture_path();
  ch_plugin *p = NULL;
  ch_error err = {0, ""};
  unit_check(ch_plugin_find(CH_PLUGIN_ENV, "fixture", &p, &err), err);
  assert_string_equal(p->path, FIXTURE("env_fixture.so"));
  assert_string_equal(p->header->name, "fixture");
  ch_plugin_close(p);
}

static void test_find_absent(void **state) {
  (void)state;
  use_fixture_path();
  ch_plugin *p = NULL;
  ch_error err = {0, ""};
  unit_expect(ch_plugin_find(CH_PLUGIN_ENV, "absent", &p, &err), CH_ENOTFOUND, err);
  assert_null(p);
  unit_assert_contains(err.message, "env_absent.so");
  unit_assert_contains(err.message, CHICANE_PLUGIN_BUILD_DIR);
  unit_assert_contains(err.message, CH_FIXTURE_DIR);
  /* The storage fixture lives in an env_ file, so as a storage plugin it is not there. */
  unit_expect(ch_plugin_find(CH_PLUGIN_STORAGE, "wrongkind", &p, &err), CH_ENOTFOUND, err);
  unit_assert_contains(err.message, "storage_wrongkind.so");
}

/* A file that exists but fails reports why, not "not found". */
static void test_find_broken(void **state) {
  (void)state;
  use_fixture_path();
  ch_plugin *p = NULL;
  ch_error err = {0, ""};
  unit_expect(ch_plugin_find(CH_PLUGIN_ENV, "badabi", &p, &err), CH_EPLUGIN, err);
  unit_assert_contains(err.message, FIXTURE("env_badabi.so"));
  unit_assert_contains(err.message, "ABI version 99");
  unit_expect(ch_plugin_find(CH_PLUGIN_ENV, "misnamed", &p, &err), CH_EPLUGIN, err);
  unit_assert_contains(err.message,
                       "file is named for 'misnamed' but the plugin calls itself 'fixture'");
  assert_null(p);
  unit_expect(ch_plugin_find(CH_PLUGIN_ENV, "../fixture", &p, &err), CH_EINVAL, err);
  unit_assert_contains(err.message, "'../fixture'");
}

static void test_find_mlp(void **state) {
  (void)state;
  use_fixture_path();
  ch_plugin *p = NULL;
  ch_error err = {0, ""};
  unit_check(ch_plugin_find(CH_PLUGIN_NETWORK, "mlp", &p, &err), err);
  assert_string_equal(p->path, CHICANE_PLUGIN_BUILD_DIR "/network_mlp.so");
  assert_int_equal(p->header->kind, CH_PLUGIN_NETWORK);
  assert_string_equal(p->header->name, "mlp");
  ch_net net;
  unit_check(ch_net_create(p, "{\"input_size\":5,\"num_actions\":4,\"hidden\":[8,8]}", &net, &err),
             err);
  assert_int_equal(net.spec.input_size, 5);
  assert_int_equal(net.spec.policy_size, 4);
  /* two trunks 5-8-8, a 4-logit policy head and a 1-float value head */
  assert_int_equal(net.spec.param_count, 2 * (5 * 8 + 8 + 8 * 8 + 8) + (8 * 4 + 4) + (8 + 1));
  ch_net_destroy(&net);
  ch_plugin_close(p);
}

typedef struct dirs {
  char list[8][256];
  int n, stop_after;
} dirs;

static int collect_dir(const char *dir, void *user) {
  dirs *d = user;
  if (d->n < 8) snprintf(d->list[d->n], sizeof d->list[0], "%s", dir);
  d->n++;
  return d->n == d->stop_after;
}

static void test_search_path(void **state) {
  (void)state;
  assert_int_equal(setenv("CHICANE_PLUGIN_PATH", "/x/one::/x/two", 1), 0);
  dirs d = {.n = 0, .stop_after = 0};
  ch_plugin_search_path(collect_dir, &d);
  assert_int_equal(d.n, 4);
  assert_string_equal(d.list[0], CHICANE_PLUGIN_BUILD_DIR);
  assert_string_equal(d.list[2], "/x/one");
  assert_string_equal(d.list[3], "/x/two");
  dirs first = {.n = 0, .stop_after = 1};
  ch_plugin_search_path(collect_dir, &first);
  assert_int_equal(first.n, 1);
  assert_int_equal(unsetenv("CHICANE_PLUGIN_PATH"), 0);
  dirs fixed = {.n = 0, .stop_after = 0};
  ch_plugin_search_path(collect_dir, &fixed);
  assert_int_equal(fixed.n, 2);
}

typedef struct scan_row {
  char path[512];
  char name[64]; /* "" when the file failed */
  char error[CH_ERROR_MESSAGE_MAX];
  int kind, shadowed;
} scan_row;

typedef struct scan_result {
  scan_row rows[64];
  int n;
} scan_result;

static void scan_collect(const ch_plugin_entry_info *info, void *user) {
  scan_result *r = user;
  if (r->n >= 64) return;
  scan_row *row = &r->rows[r->n++];
  snprintf(row->path, sizeof row->path, "%s", info->path);
  snprintf(row->name, sizeof row->name, "%s", info->header ? info->header->name : "");
  snprintf(row->error, sizeof row->error, "%s", info->header ? "" : info->error->message);
  row->kind = info->header ? (int)info->header->kind : 0;
  row->shadowed = info->shadowed;
}

static const scan_row *scan_find(const scan_result *r, const char *path) {
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->rows[i].path, path) == 0) return &r->rows[i];
  fail_msg("scan did not report %s (%d files reported)", path, r->n);
  return NULL;
}

static void expect_scan_error(const scan_result *r, const char *path, const char *reason) {
  const scan_row *row = scan_find(r, path);
  if (row->name[0]) fail_msg("%s: scan loaded it as '%s', expected: %s", path, row->name, reason);
  unit_assert_contains(row->error, path);
  unit_assert_contains(row->error, reason);
}

static void test_scan(void **state) {
  (void)state;
  use_fixture_path();
  scan_result *r = calloc(1, sizeof *r);
  assert_non_null(r);
  ch_plugin_scan(scan_collect, r);

  const scan_row *mlp = scan_find(r, CHICANE_PLUGIN_BUILD_DIR "/network_mlp.so");
  assert_string_equal(mlp->name, "mlp");
  assert_int_equal(mlp->kind, CH_PLUGIN_NETWORK);

  /* The fixture directory is reported whole and in name order. */
  static const char *const order[] = {"env_badabi.so",   "env_badname.so", "env_fixture.so",
                                      "env_misnamed.so", "env_noentry.so", "env_nullentry.so",
                                      "env_nullstep.so", "env_small.so",   "env_wrongkind.so"};
  int k = 0;
  for (int i = 0; i < r->n; i++) {
    if (strncmp(r->rows[i].path, CH_FIXTURE_DIR "/", strlen(CH_FIXTURE_DIR "/")) != 0) continue;
    const char *file = r->rows[i].path + strlen(CH_FIXTURE_DIR "/");
    if (k >= 9) fail_msg("unexpected extra fixture %s", file);
    assert_string_equal(file, order[k]);
    k++;
  }
  assert_int_equal(k, 9);

  const scan_row *ok = scan_find(r, FIXTURE("env_fixture.so"));
  assert_string_equal(ok->name, "fixture");
  assert_int_equal(ok->kind, CH_PLUGIN_ENV);
  assert_int_equal(ok->shadowed, 0);
  /* env_misnamed.so is also env "fixture", seen after env_fixture.so */
  const scan_row *dup = scan_find(r, FIXTURE("env_misnamed.so"));
  assert_string_equal(dup->name, "fixture");
  assert_int_equal(dup->shadowed, 1);
  const scan_row *st = scan_find(r, FIXTURE("env_wrongkind.so"));
  assert_int_equal(st->kind, CH_PLUGIN_STORAGE);

  expect_scan_error(r, FIXTURE("env_badabi.so"), "ABI version 99");
  expect_scan_error(r, FIXTURE("env_noentry.so"), "no symbol 'chicane_plugin_entry'");
  expect_scan_error(r, FIXTURE("env_nullstep.so"), "lacks required member 'step'");
  expect_scan_error(r, FIXTURE("env_small.so"), "at least");
  expect_scan_error(r, FIXTURE("env_nullentry.so"), "entry point returned NULL");
  expect_scan_error(r, FIXTURE("env_badname.so"), "'Bad-Name!'");
  free(r);
}

static void test_kind_names(void **state) {
  (void)state;
  static const char *const names[] = {"env", "network", "buffer", "storage"};
  for (int k = CH_PLUGIN_ENV; k <= CH_PLUGIN_STORAGE; k++) {
    assert_string_equal(ch_plugin_kind_name(k), names[k - 1]);
    assert_int_equal(ch_plugin_kind_from_name(names[k - 1]), k);
  }
  assert_string_equal(ch_plugin_kind_name(0), "?");
  assert_string_equal(ch_plugin_kind_name(5), "?");
  assert_int_equal(ch_plugin_kind_from_name("envs"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_valid_env),
      cmocka_unit_test(test_open_bad_abi),
      cmocka_unit_test(test_open_no_entry),
      cmocka_unit_test(test_open_wrong_kind),
      cmocka_unit_test(test_open_wrong_kind_as_any),
      cmocka_unit_test(test_open_null_member),
      cmocka_unit_test(test_open_small_vtable),
      cmocka_unit_test(test_open_entry_null),
      cmocka_unit_test(test_open_bad_name),
      cmocka_unit_test(test_open_missing_file),
      cmocka_unit_test(test_find_fixture),
      cmocka_unit_test(test_find_absent),
      cmocka_unit_test(test_find_broken),
      cmocka_unit_test(test_find_mlp),
      cmocka_unit_test(test_search_path),
      cmocka_unit_test(test_scan),
      cmocka_unit_test(test_kind_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
