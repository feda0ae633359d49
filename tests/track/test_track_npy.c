/* test_track_npy.c -- importing DeepRacer .npy routes: shared files, broken files, round trips. */
#include "track_test.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/chicane-npy-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Fixtures                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct npy_spec {
  const char *magic;   /* default "\x93NUMPY" */
  int major, minor;    /* default 1.0 */
  const char *descr;   /* default "<f8" */
  const char *fortran; /* default "False" */
  const char *shape;   /* default "(rows, cols)" from the data */
  const char *header;  /* replaces the whole dict when set */
  const double *data;
  int rows, cols;
  size_t cut;   /* bytes left off the end */
  size_t extra; /* zero bytes added at the end */
} npy_spec;

static void put_f64le(FILE *f, double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  for (int i = 0; i < 8; i++) fputc((int)(u >> (8 * i)) & 0xff, f);
}

/* A .npy file as NumPy writes it: the header padded with spaces and '\n' to 64 bytes. */
static void write_npy(const char *path, const npy_spec *s) {
  char dict[512], shape[64];
  snprintf(shape, sizeof shape, "(%d, %d)", s->rows, s->cols);
  if (s->header)
    snprintf(dict, sizeof dict, "%s", s->header);
  else
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
             s->descr ? s->descr : "<f8", s->fortran ? s->fortran : "False",
             s->shape ? s->shape : shape);
  int major = s->major ? s->major : 1;
  size_t pre = major == 1 ? 10 : 12, len = strlen(dict) + 1;
  while ((pre + len) % 64) len++;
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(s->magic ? s->magic : "\x93NUMPY", 1, 6, f);
  fputc(major, f), fputc(s->minor, f);
  for (size_t i = 0; i < pre - 8; i++) fputc((int)(len >> (8 * i)) & 0xff, f);
  fputs(dict, f);
  for (size_t i = strlen(dict); i < len - 1; i++) fputc(' ', f);
  fputc('\n', f);
  size_t n = (size_t)s->rows * (size_t)s->cols;
  for (size_t i = 0; i < n; i++) put_f64le(f, s->data[i]);
  for (size_t i = 0; i < s->extra; i++) fputc(0, f);
  long size = ftell(f);
  fclose(f);
  if (s->cut) assert_int_equal(truncate(path, size - (long)s->cut), 0);
}

/* A circle of radius 2 driven counter-clockwise, 0.6 m wide, as DeepRacer stores it: rows of
** centre, inner (radius 1.7) and outer (2.3), the first row repeated at the end. */
#define CIRCLE_ROWS 41
static void circle_rows(double *v) {
  for (int i = 0; i < CIRCLE_ROWS; i++) {
    double a = 2 * PI * (i % (CIRCLE_ROWS - 1)) / (CIRCLE_ROWS - 1), c = cos(a), s = sin(a);
    double *r = v + 6 * i;
    r[0] = 2 * c, r[1] = 2 * s, r[2] = 1.7 * c, r[3] = 1.7 * s, r[4] = 2.3 * c, r[5] = 2.3 * s;
  }
}

static void fixture_path(const char *name, char *path, size_t size) {
  snprintf(path, size, "%s/%s", tmpdir, name);
}

/* Import path, expecting failure with code CH_ECORRUPT and each of the given substrings. */
static void expect_import_error(const char *path, const char *a, const char *b) {
  ch_track *t = (ch_track *)1;
  ch_error err;
  int rc = ch_track_import_npy(path, NULL, &t, &err);
  if (rc != CH_ECORRUPT) fail_msg("%s: rc %d (%s), expected CH_ECORRUPT", path, rc, err.message);
  assert_null(t);
  expect_contains(err.message, path);
  expect_contains(err.message, a);
  if (b) expect_contains(err.message, b);
}

static ch_track *import_ok(const char *path, const char *name) {
  ch_track *t = NULL;
  ch_error err;
  int rc = ch_track_import_npy(path, name, &t, &err);
  if (rc) fail_msg("%s: %d %s", path, rc, err.message);
  return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Good fixtures                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void test_circle_fixture(void **state) {
  (void)state;
  double v[6 * CIRCLE_ROWS];
  circle_rows(v);
  char path[512];
  fixture_path("circle.npy", path, sizeof path);
  write_npy(path, &(npy_spec){.data = v, .rows = CIRCLE_ROWS, .cols = 6});
  ch_track *t = import_ok(path, NULL);
  assert_string_equal(t->name, "circle");
  assert_int_equal(t->is_loop, 1);
  assert_int_equal(t->n, CIRCLE_ROWS - 1); /* the repeated first row is dropped */
  expect_near(t->width, 0.6, 1e-9);
  expect_near(t->hl[7], 0.3, 1e-9); /* counter-clockwise: inner is left */
  expect_near(t->length, 40 * 2 * 2 * sin(PI / 40), 1e-9);
  expect_near(t->total_turn, 2 * PI, 1e-9);
  ch_track_free(t);

  /* Version 2.0 headers (4-byte length) read the same; a name may be given. */
  write_npy(path, &(npy_spec){.major = 2, .data = v, .rows = CIRCLE_ROWS, .cols = 6});
  t = import_ok(path, "ring-2");
  assert_string_equal(t->name, "ring-2");
  assert_int_equal(t->n, CIRCLE_ROWS - 1);
  ch_track_free(t);
}

/* Rows in reverse order: a clockwise loop, whose inner border is on the right. */
static void test_clockwise_fixture(void **state) {
  (void)state;
  double v[6 * CIRCLE_ROWS], r[6 * CIRCLE_ROWS];
  circle_rows(v);
  for (int i = 0; i < CIRCLE_ROWS; i++) memcpy(r + 6 * i, v + 6 * (CIRCLE_ROWS - 1 - i), 48);
  char path[512];
  fixture_path("clockwise.npy", path, sizeof path);
  write_npy(path, &(npy_spec){.data = r, .rows = CIRCLE_ROWS, .cols = 6});
  ch_track *t = import_ok(path, NULL);
  ch_track_info in;
  ch_track_describe(t, &in);
  assert_int_equal(in.direction, -1);
  /* Right is the inner border (radius 1.7): its border points are the inner ones. */
  expect_near(hypot(t->rx[3], t->ry[3]), 1.7, 1e-9);
  expect_near(hypot(t->lx[3], t->ly[3]), 2.3, 1e-9);
  ch_track_free(t);
}

/* Consecutive duplicate rows go; a straight (first row != last) is not a loop. */
static void test_duplicates_and_straight(void **state) {
  (void)state;
  double v[6 * 12];
  int rows = 0;
  for (int i = 0; i < 10; i++) {
    double *r = v + 6 * rows++;
    r[0] = 0.5 * i, r[1] = 0, r[2] = 0.5 * i, r[3] = 0.3, r[4] = 0.5 * i, r[5] = -0.3;
    if (i == 3 || i == 6) memcpy(v + 6 * rows, r, 48), rows++;
  }
  char path[512];
  fixture_path("dup straight.npy", path, sizeof path);
  write_npy(path, &(npy_spec){.data = v, .rows = rows, .cols = 6});
  ch_track *t = import_ok(path, NULL);
  assert_string_equal(t->name, "dup_straight");
  assert_int_equal(t->is_loop, 0);
  assert_int_equal(t->n, 10);
  expect_near(t->length, 4.5, 1e-12);
  expect_near(t->width, 0.6, 1e-12);
  ch_track_free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Broken fixtures                                                                             */
/* ------------------------------------------------------------------------------------------ */

static void test_header_errors(void **state) {
  (void)state;
  double v[6 * CIRCLE_ROWS];
  circle_rows(v);
  char path[512];
  fixture_path("broken.npy", path, sizeof path);
  npy_spec base = {.data = v, .rows = CIRCLE_ROWS, .cols = 6};

  npy_spec s = base;
  s.magic = "NOTNPY";
  write_npy(path, &s);
  expect_import_error(path, "bad magic", NULL);

  s = base, s.major = 3;
  write_npy(path, &s);
  expect_import_error(path, "unsupported .npy version 3.0", NULL);

  s = base, s.descr = "<f4";
  write_npy(path, &s);
  expect_import_error(path, "wrong dtype '<f4'", "'<f8'");

  s = base, s.descr = ">f8";
  write_npy(path, &s);
  expect_import_error(path, "wrong dtype '>f8'", NULL);

  s = base, s.fortran = "True";
  write_npy(path, &s);
  expect_import_error(path, "fortran_order is True", NULL);

  double five[5 * 40] = {0};
  s = (npy_spec){.data = five, .rows = 40, .cols = 5};
  write_npy(path, &s);
  expect_import_error(path, "wrong shape (40, 5)", "need (N, 6)");

  s = base, s.shape = "(41,)";
  write_npy(path, &s);
  expect_import_error(path, "wrong shape (41)", NULL);

  s = base, s.cut = 100;
  write_npy(path, &s);
  expect_import_error(path, "truncated", "(41, 6) needs 1968 bytes");

  s = base, s.extra = 16;
  write_npy(path, &s);
  expect_import_error(path, "16 bytes follow the (41, 6) array", NULL);

  s = base, s.header = "{'descr': '<f8', 'fortran_order': False, 'shape': (41, 6), 'x': 1}";
  write_npy(path, &s);
  expect_import_error(path, ".npy header: unknown key 'x'", NULL);

  s = base, s.header = "{'descr': '<f8', 'shape': (41, 6)}";
  write_npy(path, &s);
  expect_import_error(path, ".npy header: no 'fortran_order'", NULL);

  s = base, s.header = "['descr']";
  write_npy(path, &s);
  expect_import_error(path, ".npy header: expected '{'", NULL);

  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("\x93NUM", f);
  fclose(f);
  expect_import_error(path, "bad magic", NULL);
}

static void test_content_errors(void **state) {
  (void)state;
  double v[6 * CIRCLE_ROWS];
  char path[512];
  fixture_path("content.npy", path, sizeof path);

  circle_rows(v);
  v[6 * 7 + 3] = NAN;
  write_npy(path, &(npy_spec){.data = v, .rows = CIRCLE_ROWS, .cols = 6});
  expect_import_error(path, ": row 7: inner y is NaN", NULL);

  circle_rows(v);
  v[6 * 12 + 4] = INFINITY;
  write_npy(path, &(npy_spec){.data = v, .rows = CIRCLE_ROWS, .cols = 6});
  expect_import_error(path, ": row 12: outer x is infinite", NULL);

  circle_rows(v); /* two distinct points */
  write_npy(path, &(npy_spec){.data = v, .rows = 2, .cols = 6});
  expect_import_error(path, "too few points: 2 distinct centre points", NULL);

  for (int i = 0; i < 5; i++) memcpy(v + 6 * i, v, 48); /* one point five times */
  write_npy(path, &(npy_spec){.data = v, .rows = 5, .cols = 6});
  expect_import_error(path, "zero-length track: every centre point is at (2, 0)", NULL);

  write_npy(path, &(npy_spec){.data = v, .rows = 0, .cols = 6});
  expect_import_error(path, "too few points: 0 distinct centre points", NULL);

  /* Inner and outer swapped on a counter-clockwise loop: the inner points lie outside. */
  circle_rows(v);
  for (int i = 0; i < CIRCLE_ROWS; i++)
    for (int k = 2; k < 4; k++) {
      double tmp = v[6 * i + k];
      v[6 * i + k] = v[6 * i + k + 2], v[6 * i + k + 2] = tmp;
    }
  write_npy(path, &(npy_spec){.data = v, .rows = CIRCLE_ROWS, .cols = 6});
  expect_import_error(path, ": row 0: inner border point", "is not left of the centre line");
}

/* A figure eight with unequal lobes (the bigger one counter-clockwise, so inner is left): its
** borders cross where its centre line does. */
static void test_self_intersecting_border(void **state) {
  (void)state;
  enum { N = 81 };
  double v[6 * N];
  for (int i = 0; i < N; i++) {
    double a = 2 * PI * (i % (N - 1)) / (N - 1);
    double x = 3 * sin(a), y = 1.5 * sin(2 * a) * (a < PI ? 1.0 : 1.4);
    double dx = 3 * cos(a), dy = 3 * cos(2 * a) * (a < PI ? 1.0 : 1.4), l = hypot(dx, dy);
    double nx = -dy / l * 0.2, ny = dx / l * 0.2;
    double *r = v + 6 * i;
    r[0] = x, r[1] = y, r[2] = x + nx, r[3] = y + ny, r[4] = x - nx, r[5] = y - ny;
  }
  char path[512];
  fixture_path("eight.npy", path, sizeof path);
  write_npy(path, &(npy_spec){.data = v, .rows = N, .cols = 6});
  ch_track *t = (ch_track *)1;
  ch_error err;
  assert_int_equal(ch_track_import_npy(path, NULL, &t, &err), CH_ECORRUPT);
  assert_null(t);
  expect_contains(err.message, path);
  expect_contains(err.message, ": row ");
  expect_contains(err.message, "border crosses itself (segments starting at rows ");
}

static void test_bad_name_and_missing_file(void **state) {
  (void)state;
  double v[6 * CIRCLE_ROWS];
  circle_rows(v);
  char path[512];
  fixture_path("circle.npy", path, sizeof path);
  write_npy(path, &(npy_spec){.data = v, .rows = CIRCLE_ROWS, .cols = 6});
  ch_track *t = (ch_track *)1;
  ch_error err;
  assert_int_equal(ch_track_import_npy(path, "no/slashes", &t, &err), CH_EINVAL);
  assert_null(t);
  expect_contains(err.message, "track name 'no/slashes'");
  assert_int_equal(ch_track_import_npy("/nonexistent/x.npy", NULL, &t, &err), CH_ENOTFOUND);
  assert_string_equal(err.message, "/nonexistent/x.npy: No such file or directory");
}

static void test_name_from_path(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  char name[CH_TRACK_NAME_MAX];
  ch_track_name_from_path("a/b/Re Invent.2019.npy", name);
  assert_string_equal(name, "Re_Invent_2019");
  ch_track_name_from_path("reinvent_base.npy", name);
  assert_string_equal(name, "reinvent_base");
  ch_track_name_from_path("dir/", name);
  assert_string_equal(name, "track");
  char longname[200];
  memset(longname, 'x', sizeof longname - 5);
  snprintf(longname + sizeof longname - 5, 5, ".npy");
  ch_track_name_from_path(longname, name);
  assert_int_equal((int)strlen(name), CH_TRACK_NAME_MAX - 1);
}

/* ------------------------------------------------------------------------------------------ */
/* The shared DeepRacer files                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct notice_row {
  char file[64];
  int rows;
  double length, wlo, whi;
  int not_loop;
} notice_row;

/* The table of NOTICE.md: "| file | N x 6 | L m | W m or A-B m | note |". */
static int read_notice(notice_row *out, int max) {
  FILE *f = fopen(DEEPRACER_DIR "/NOTICE.md", "r");
  assert_non_null(f);
  char line[512];
  int n = 0;
  while (n < max && fgets(line, sizeof line, f)) {
    char file[64], width[64], note[256] = "";
    int rows;
    double len;
    if (sscanf(line, "| %63s | %d x 6 | %lf m | %63[^|]| %255[^|]|", file, &rows, &len, width,
               note) < 4)
      continue;
    notice_row *r = &out[n++];
    snprintf(r->file, sizeof r->file, "%s", file);
    r->rows = rows, r->length = len;
    if (sscanf(width, "%lf-%lf", &r->wlo, &r->whi) != 2) r->whi = r->wlo;
    r->not_loop = strstr(note, "not a loop") != NULL;
  }
  fclose(f);
  return n;
}

/* Length to the rounding of the table (3 decimals); the median width (across the track, from
** the borders) within the table's figure or range. The range's upper figure is the mean
** distance between inner and outer points of a row, which corner rows stretch (they are not
** across from each other), so the track's true width sits at its lower end. */
static void test_shared_files_match_notice(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  notice_row rows[16];
  int n = read_notice(rows, 16);
  assert_int_equal(n, DEEPRACER_COUNT);
  /* Every .npy in the folder has its row, so a file added there is imported and checked too. */
  DIR *d = opendir(DEEPRACER_DIR);
  assert_non_null(d);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
    int found = 0;
    for (int i = 0; i < n; i++) found |= strcmp(rows[i].file, e->d_name) == 0;
    if (!found) fail_msg("%s/%s has no row in NOTICE.md", DEEPRACER_DIR, e->d_name);
    files++;
  }
  closedir(d);
  assert_int_equal(files, n);
  for (int i = 0; i < n; i++) {
    ch_track *t = load_deepracer(rows[i].file);
    ch_track_info in;
    ch_track_describe(t, &in);
    expect_near(t->length, rows[i].length, 0.0006);
    expect_between(t->width, rows[i].wlo - 0.005, rows[i].whi + 0.005);
    expect_between(in.width_min, rows[i].wlo - 0.01, rows[i].whi + 0.01);
    assert_int_equal(t->is_loop, !rows[i].not_loop);
    /* Every row is a point, less the loop's repeat and a duplicate or two. */
    expect_between(t->n, rows[i].rows - 3, rows[i].rows - (t->is_loop ? 1 : 0));
    if (t->is_loop) assert_int_equal(in.direction, 1);
    ch_track_free(t);
  }
}

static void check_same_geometry(const ch_track *a, const ch_track *b) {
  assert_int_equal(a->n, b->n);
  assert_int_equal(a->is_loop, b->is_loop);
  assert_string_equal(a->name, b->name);
  for (int i = 0; i < a->n; i++) {
    expect_near(a->cx[i], b->cx[i], 1e-9);
    expect_near(a->cy[i], b->cy[i], 1e-9);
    expect_near(a->lx[i], b->lx[i], 1e-9);
    expect_near(a->ly[i], b->ly[i], 1e-9);
    expect_near(a->rx[i], b->rx[i], 1e-9);
    expect_near(a->ry[i], b->ry[i], 1e-9);
    expect_near(a->hl[i], b->hl[i], 1e-9);
    expect_near(a->hr[i], b->hr[i], 1e-9);
  }
  expect_near(a->length, b->length, 1e-9);
  expect_near(a->width, b->width, 1e-9);
}

/* ch_track_write then ch_track_load gives the same geometry, for imported and shipped tracks. */
static void test_write_load_round_trip(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  for (int i = 0; i < all_track_count(); i++) {
    ch_track *t = load_any(i), *back = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.track", tmpdir, t->name);
    ch_error err;
    assert_int_equal(ch_track_write(t, path, &err), CH_OK);
    int rc = ch_track_load(path, &back, &err);
    if (rc) fail_msg("%s: %s", path, err.message);
    check_same_geometry(t, back);
    ch_track_free(back);
    ch_track_free(t);
  }
  ch_track *t = load_shipped("oval");
  ch_error err;
  assert_int_equal(ch_track_write(t, "/nonexistent-dir/oval.track", &err), CH_ENOTFOUND);
  expect_contains(err.message, "/nonexistent-dir/oval.track.tmp.");
  ch_track_free(t);
}

/* The reverse of an imported track: same length, borders swapped, turning the other way; and
** reversing twice gives the track back. */
static void test_reverse_imported(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  for (int k = 0; k < DEEPRACER_COUNT; k++) {
    ch_track *t = load_deepracer(deepracer_files[k]), *r = NULL, *rr = NULL;
    ch_error err;
    assert_int_equal(ch_track_reverse(t, &r, &err), CH_OK);
    assert_int_equal(ch_track_reverse(r, &rr, &err), CH_OK);
    expect_near(r->length, t->length, 1e-9);
    expect_near(r->total_turn, -t->total_turn, 1e-9);
    for (int i = 0; i < t->n; i++) {
      int j = t->is_loop ? (t->n - i) % t->n : t->n - 1 - i;
      expect_near(r->cx[i], t->cx[j], 0);
      expect_near(r->lx[i], t->rx[j], 0);
      expect_near(r->ry[i], t->ly[j], 0);
    }
    check_same_geometry(t, rr);
    ch_track_free(rr);
    ch_track_free(r);
    ch_track_free(t);
  }
}

/* ch_track_load takes a .npy by its magic, named from the file. */
static void test_load_reads_npy(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  ch_track *a = load_deepracer("reinvent_base.npy"), *b = NULL;
  assert_string_equal(a->name, "reinvent_base");
  assert_int_equal(ch_track_import_npy(DEEPRACER_DIR "/reinvent_base.npy", NULL, &b, NULL), CH_OK);
  check_same_geometry(a, b);
  ch_track_free(a);
  ch_track_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_circle_fixture),
      cmocka_unit_test(test_clockwise_fixture),
      cmocka_unit_test(test_duplicates_and_straight),
      cmocka_unit_test(test_header_errors),
      cmocka_unit_test(test_content_errors),
      cmocka_unit_test(test_self_intersecting_border),
      cmocka_unit_test(test_bad_name_and_missing_file),
      cmocka_unit_test(test_name_from_path),
      cmocka_unit_test(test_shared_files_match_notice),
      cmocka_unit_test(test_write_load_round_trip),
      cmocka_unit_test(test_reverse_imported),
      cmocka_unit_test(test_load_reads_npy),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
