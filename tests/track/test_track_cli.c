/* test_track_cli.c -- `chicane tracks`: list, show, import and line, run as a user would. */
#include "track_test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char home[256];

static int setup(void **state) {
  (void)state;
  snprintf(home, sizeof home, "/tmp/chicane-tracks-XXXXXX");
  assert_non_null(mkdtemp(home));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  return system(cmd) == 0 ? 0 : -1;
}

/* Run `chicane tracks ARGS --home HOME` (stderr too when merge); returns the exit status. */
static int run(const char *args, char *out, size_t outlen, int merge) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s/chicane tracks %s --home %s %s", CHICANE_BINARY_DIR, args, home,
           merge ? "2>&1" : "2>/dev/null");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static cJSON *run_json(const char *args) {
  static char out[1 << 16];
  int rc = run(args, out, sizeof out, 0);
  if (rc != 0) fail_msg("chicane tracks %s: exit %d: %s", args, rc, out);
  cJSON *j = cJSON_Parse(out);
  if (!j) fail_msg("chicane tracks %s: not JSON: %s", args, out);
  return j;
}

static double num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", key);
  return v->valuedouble;
}

static const cJSON *find_track(const cJSON *arr, const char *name) {
  const cJSON *o;
  cJSON_ArrayForEach(o, arr) {
    const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(o, "name"));
    if (n && strcmp(n, name) == 0) return o;
  }
  return NULL;
}

static void test_list_json(void **state) {
  (void)state;
  cJSON *arr = run_json("--json");
  assert_true(cJSON_IsArray(arr));
  for (int i = 0; i < SHIPPED_COUNT; i++) {
    const cJSON *o = find_track(arr, shipped_tracks[i]);
    if (!o) fail_msg("%s missing from the list", shipped_tracks[i]);
    ch_track *t = load_shipped(shipped_tracks[i]);
    expect_near(num(o, "length"), t->length, 1e-9);
    expect_near(num(o, "width"), t->width, 1e-9);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(o, "loop")), t->is_loop);
    expect_contains(cJSON_GetStringValue(cJSON_GetObjectItem(o, "file")), "/tracks/");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")), "data");
    ch_track_free(t);
  }
  cJSON_Delete(arr);
  static char out[1 << 16];
  assert_int_equal(run("", out, sizeof out, 0), 0);
  expect_contains(out, "NAME");
  expect_contains(out, "bayside");
  expect_contains(out, "straight");
}

static void test_show_json(void **state) {
  (void)state;
  cJSON *o = run_json("show bayside --json");
  ch_track *t = load_shipped("bayside");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "name")), "bayside");
  expect_near(num(o, "length"), t->length, 1e-9);
  expect_near(num(o, "width"), 0.76, 1e-9);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "loop")));
  assert_int_equal((int)num(o, "points"), t->n);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "direction")),
                      "counter-clockwise");
  expect_between(num(o, "min_radius"), 0.7, 0.9);
  double ref;
  assert_int_equal(ch_track_reference_lap(t, &ref, NULL), CH_OK);
  expect_near(num(o, "reference_lap"), ref, 1e-9);
  const cJSON *bb = cJSON_GetObjectItem(o, "bbox");
  expect_near(num(bb, "x0"), 0.5, 1e-3);
  expect_near(num(bb, "y0"), 0.5, 1e-3);
  cJSON_Delete(o);
  ch_track_free(t);

  o = run_json("show straight --json");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "loop")));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "min_radius")));
  expect_near(num(o, "reference_lap"), 2.5, 0.01);
  cJSON_Delete(o);

  static char out[1 << 16];
  assert_int_equal(run("show oval", out, sizeof out, 0), 0);
  expect_contains(out, "reference lap");
  expect_contains(out, "counter-clockwise");
  assert_int_equal(run("show no_such_track", out, sizeof out, 1), 1);
  expect_contains(out, "no track 'no_such_track' (looked for ");
  expect_contains(out, home);
}

static void test_import(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  static char out[1 << 16];
  char args[1024], path[512];
  snprintf(args, sizeof args, "import %s/reinvent_base.npy", DEEPRACER_DIR);
  assert_int_equal(run(args, out, sizeof out, 0), 0);
  expect_contains(out, "wrote ");
  snprintf(path, sizeof path, "%s/tracks/reinvent_base.track", home);
  expect_contains(out, path);
  ch_track *mine = load_path(path), *src = load_deepracer("reinvent_base.npy");
  assert_int_equal(mine->n, src->n);
  expect_near(mine->length, src->length, 1e-9);
  ch_track_free(mine);
  ch_track_free(src);

  /* Again: refused without --force, done with it. */
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  expect_contains(out, "exists (use --force to replace it)");
  snprintf(args, sizeof args, "import %s/reinvent_base.npy --force --json", DEEPRACER_DIR);
  cJSON *o = run_json(args);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "file")), path);
  cJSON_Delete(o);

  /* A name of one's own, then found by name, listed as one's own. */
  snprintf(args, sizeof args, "import %s/Bowtie_track.npy --name bow-tie", DEEPRACER_DIR);
  assert_int_equal(run(args, out, sizeof out, 0), 0);
  o = run_json("show bow-tie --json");
  expect_near(num(o, "length"), 17.428, 0.0006);
  cJSON_Delete(o);
  cJSON *arr = run_json("--json");
  const cJSON *b = find_track(arr, "bow-tie");
  assert_non_null(b);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(b, "source")), "home");
  cJSON_Delete(arr);

  /* Shipped names come first, so taking one is refused; bad names and files too. */
  snprintf(args, sizeof args, "import %s/Oval_track.npy --name oval", DEEPRACER_DIR);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  expect_contains(out, "a shipped track is named 'oval'");
  snprintf(args, sizeof args, "import %s/Oval_track.npy --name a/b", DEEPRACER_DIR);
  assert_int_equal(run(args, out, sizeof out, 1), 2);
  snprintf(args, sizeof args, "import %s/NOTICE.md", DEEPRACER_DIR);
  assert_int_equal(run(args, out, sizeof out, 1), 1);
  expect_contains(out, "NOTICE.md: bad magic");
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int n = 0;
  for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
  fclose(f);
  return n;
}

static void test_line(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  char args[1024], csv[512];
  snprintf(csv, sizeof csv, "%s/oval-line.csv", home);
  snprintf(args, sizeof args, "line oval --json --out %s", csv);
  cJSON *o = run_json(args);
  ch_track *t = load_shipped("oval");
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_racing_line *rl;
  assert_int_equal(ch_track_racing_line(t, &car, &rl, NULL), CH_OK);
  expect_near(num(o, "lap_time"), rl->lap_time, 1e-9);
  expect_near(num(o, "reference_lap"), rl->standing_lap_time, 1e-9);
  expect_near(num(o, "length"), rl->length, 1e-9);
  assert_true(num(o, "centre_lap_time") > num(o, "lap_time"));
  expect_near(num(o, "improvement_percent"),
              100 * (1 - num(o, "lap_time") / num(o, "centre_lap_time")), 1e-9);
  assert_int_equal(count_lines(csv), t->n + 1);
  FILE *f = fopen(csv, "r");
  char header[64];
  assert_non_null(fgets(header, sizeof header, f));
  assert_string_equal(header, "x,y,v,t\n");
  double x, y, v, tt;
  assert_int_equal(fscanf(f, "%lf,%lf,%lf,%lf", &x, &y, &v, &tt), 4);
  expect_near(x, rl->x[0], 1e-6);
  expect_near(v, rl->v[0], 1e-6);
  expect_near(tt, 0, 0);
  fclose(f);
  ch_racing_line_free(rl);
  ch_track_free(t);
  cJSON_Delete(o);

  static char out[1 << 16];
  snprintf(args, sizeof args, "line %s/Straight_track.npy", DEEPRACER_DIR);
  assert_int_equal(run(args, out, sizeof out, 0), 0);
  expect_contains(out, "lap time");
  expect_contains(out, "from rest to the far end");
  expect_contains(out, "improvement");
  assert_int_equal(run("line oval --name x", out, sizeof out, 1), 2);
  expect_contains(out, "--name and --force belong to `tracks import`");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_json),
      cmocka_unit_test(test_show_json),
      cmocka_unit_test(test_import),
      cmocka_unit_test(test_line),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
