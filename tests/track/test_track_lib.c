/* test_track_lib.c -- the track library: format errors, crossings, geometry, queries. */
#include "track_test.h"

/* Track text with a header block and "x y" rows. */
static char *track_text(const char *head, int n, const double *x, const double *y) {
  size_t cap = strlen(head) + (size_t)n * 64 + 1, len;
  char *buf = malloc(cap);
  assert_non_null(buf);
  len = (size_t)snprintf(buf, cap, "%s", head);
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%.9g %.9g\n", x[i], y[i]);
  return buf;
}

static ch_track *parse_ok(const char *text) {
  ch_track *t = NULL;
  ch_error err;
  int rc = ch_track_parse(text, "hand.track", &t, &err);
  if (rc) fail_msg("parse failed: %d %s", rc, err.message);
  assert_non_null(t);
  return t;
}

/* A 4 x 4 m square loop, counter-clockwise, points every 0.5 m. */
static ch_track *square_loop(double width) {
  double x[32], y[32];
  for (int i = 0; i < 32; i++) {
    double d = 0.5 * (i % 8);
    int side = i / 8;
    x[i] = side == 0 ? d : side == 1 ? 4 : side == 2 ? 4 - d : 0;
    y[i] = side == 0 ? 0 : side == 1 ? d : side == 2 ? 4 : 4 - d;
  }
  char head[128];
  snprintf(head, sizeof head, "chicane-track 1\nname square\nloop yes\nwidth %g\n", width);
  char *text = track_text(head, 32, x, y);
  ch_track *t = parse_ok(text);
  free(text);
  return t;
}

static ch_track *circle_loop(double r, int n) {
  double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
  assert_true(x && y);
  for (int i = 0; i < n; i++) x[i] = r * cos(2 * PI * i / n), y[i] = r * sin(2 * PI * i / n);
  char *text = track_text("chicane-track 1\nname circle\nloop yes\nwidth 0.5\n", n, x, y);
  ch_track *t = parse_ok(text);
  free(text), free(x), free(y);
  return t;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct bad_case {
  const char *text;
  const char *message; /* expected substring, including the line number */
} bad_case;

#define HDR "chicane-track 1\nname bad\nloop yes\nwidth 0.5\n"
#define TRI "0 0\n1 0\n0 1\n"

static const bad_case bad_cases[] = {
    {"", "hand.track: no 'chicane-track 1' header"},
    {"# only a comment\n\n", "hand.track: no 'chicane-track 1' header"},
    {"name x\nloop yes\n", "hand.track:1: expected the header 'chicane-track 1', got 'name'"},
    {"# c\nchicane-track 2\n", "hand.track:2: unsupported format version '2'"},
    {"chicane-track\n", "hand.track:1: unsupported format version ''"},
    {HDR "colour red\n" TRI, "hand.track:5: unknown directive 'colour'"},
    {HDR "0 0\n1 zero\n0 1\n", "hand.track:6: 'zero' is not a number"},
    {HDR "0 0\n1 2x\n0 1\n", "hand.track:6: '2x' is not a number"},
    {HDR "0 0\n1 inf\n0 1\n", "hand.track:6: 'inf' is not a finite number"},
    {HDR "0 0\nnan 1\n0 1\n", "hand.track:6: 'nan' is not a finite number"},
    {HDR "0 0\n1 0 2\n0 1\n", "hand.track:6: expected 2 or 6 numbers, got 3"},
    {HDR "0 0\n1 0 2 3 4 5 6\n0 1\n", "hand.track:6: expected 2 or 6 numbers, got 7"},
    {HDR "0 0\n1 0\n", "hand.track: a loop track needs at least 3 points, got 2"},
    {"chicane-track 1\nname s\nloop no\nwidth 1\n0 0\n",
     "a straight track needs at least 2 points, got 1"},
    {HDR "0 0\n1 0\n1.0005 0\n0 1\n", "hand.track:7: point is 0.0005 m from the previous point"},
    {HDR TRI "0 0\n", "hand.track:8: last point is 0 m from the first (a loop does not repeat"},
    {"chicane-track 1\nname w\nloop yes\nwidth 0\n" TRI, "hand.track:4: width must be > 0, got 0"},
    {"chicane-track 1\nname w\nloop yes\nwidth -1\n" TRI,
     "hand.track:4: width must be > 0, got -1"},
    {"chicane-track 1\nname w\nloop yes\n0 0 0 1 0 -1\n1 0\n0 1\n",
     "hand.track:5: row gives only a centre point but no 'width' is set"},
    {"chicane-track 1\nname w\nloop no\n0 0 0 0.5 0 -0.5\n1 0 1 -0.5 1 -0.6\n",
     "hand.track:5: left border point (1, -0.5) is not left of the centre line"},
    {"chicane-track 1\nname w\nloop no\n0 0 0 0.5 0 0.1\n1 0 1 0.5 1 -0.5\n",
     "hand.track:4: right border point (0, 0.1) is not right of the centre line"},
    {"chicane-track 1\nloop yes\nwidth 1\n" TRI, "hand.track: missing 'name'"},
    {"chicane-track 1\nname a\nwidth 1\n" TRI, "hand.track: missing 'loop yes' or 'loop no'"},
    {"chicane-track 1\nname a b\n", "hand.track:2: 'name' takes exactly 1 value, got 2"},
    {"chicane-track 1\nname a/b\n", "hand.track:2: name 'a/b' has characters outside"},
    {"chicane-track 1\nname a\nname b\n", "hand.track:3: duplicate 'name' (first at line 2)"},
    {"chicane-track 1\nloop maybe\n", "hand.track:2: loop must be 'yes' or 'no', got 'maybe'"},
    {"chicane-track 1\nname w\nloop no\nwidth 1\n0 0\n1 0\n0 0\n",
     "hand.track:6: centre line turns back on itself at this point"},
};

static void test_parse_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    ch_track *t = (ch_track *)1;
    ch_error err = {0};
    int rc = ch_track_parse(bad_cases[i].text, "hand.track", &t, &err);
    if (rc != CH_ECORRUPT)
      fail_msg("case %zu: rc %d (%s), expected CH_ECORRUPT", i, rc, err.message);
    assert_null(t);
    assert_int_equal(err.code, CH_ECORRUPT);
    expect_contains(err.message, bad_cases[i].message);
  }
}

/* A figure-eight centre line: each border must cross itself where the centre line does. */
static void test_self_intersecting_border(void **state) {
  (void)state;
  double x[60], y[60];
  for (int i = 0; i < 60; i++) {
    double a = 2 * PI * i / 60;
    x[i] = 3 * sin(a), y[i] = 1.5 * sin(2 * a);
  }
  char *text = track_text("chicane-track 1\nname eight\nloop yes\nwidth 0.3\n", 60, x, y);
  ch_track *t = NULL;
  ch_error err;
  int rc = ch_track_parse(text, "eight.track", &t, &err);
  free(text);
  assert_int_equal(rc, CH_ECORRUPT);
  assert_null(t);
  expect_contains(err.message, "eight.track:");
  expect_contains(err.message, "left border crosses itself (segments starting at lines");
}

/* Borders given for every row are used as they are; the median width comes from them. */
static void test_explicit_borders_and_comments(void **state) {
  (void)state;
  const char *text = "# header comment\r\n"
                     "chicane-track 1   # trailing comment\r\n"
                     "\n"
                     "name straight_1\n"
                     "loop no\n"
                     "0 0  0 0.5  0 -0.3\n"
                     "5 0  5 0.5  5 -0.3\n"
                     "10 0 10 0.7 10 -0.3\n";
  ch_track *t = parse_ok(text);
  assert_string_equal(t->name, "straight_1");
  assert_int_equal(t->is_loop, 0);
  assert_int_equal(t->n, 3);
  assert_int_equal(t->nseg, 2);
  expect_near(t->length, 10, 1e-12);
  expect_near(t->s[2], 10, 1e-12);
  expect_near(t->hl[0], 0.5, 1e-12);
  expect_near(t->hl[2], 0.7, 1e-12);
  expect_near(t->hr[1], 0.3, 1e-12);
  expect_near(t->width, 0.8, 1e-12);
  ch_track_free(t);
}

static void test_missing_file(void **state) {
  (void)state;
  ch_track *t = (ch_track *)1;
  ch_error err;
  int rc = ch_track_load("/nonexistent-dir/x.track", &t, &err);
  assert_int_equal(rc, CH_ENOTFOUND);
  assert_null(t);
  assert_string_equal(err.message, "/nonexistent-dir/x.track: No such file or directory");
}

static void test_square_loop(void **state) {
  (void)state;
  ch_track *t = square_loop(0.6);
  assert_int_equal(t->is_loop, 1);
  assert_int_equal(t->n, 32);
  assert_int_equal(t->nseg, 32);
  expect_near(t->length, 16, 1e-12);
  expect_near(t->s[32], 16, 1e-12);
  expect_near(t->s[9], 4.5, 1e-12);
  expect_near(t->width, 0.6, 1e-12);
  expect_near(t->hl[5], 0.3, 1e-12);
  expect_near(t->hr[8], 0.3, 1e-12);
  expect_near(t->total_turn, 2 * PI, 1e-9);
  /* Mid-edge tangents follow the edge; the corner tangent is the 45 degree bisector. */
  expect_near(t->tx[2], 1, 1e-12);
  expect_near(t->ty[12], 1, 1e-12);
  expect_near(atan2(t->ty[8], t->tx[8]), PI / 4, 1e-12);
  /* Borders from the width: left is inside a counter-clockwise loop. */
  expect_near(t->ly[2], 0.3, 1e-12);
  expect_near(t->ry[2], -0.3, 1e-12);
  ch_track_free(t);
}

static void test_straight_lengths(void **state) {
  (void)state;
  double x[21], y[21];
  for (int i = 0; i < 21; i++) x[i] = 0.5 * i, y[i] = 2;
  char *text = track_text("chicane-track 1\nname line\nloop no\nwidth 1.2\n", 21, x, y);
  ch_track *t = parse_ok(text);
  free(text);
  assert_int_equal(t->nseg, 20);
  expect_near(t->length, 10, 1e-12);
  expect_near(t->width, 1.2, 1e-12);
  expect_near(ch_track_curvature(t, 3, 0, 0.5), 0, 1e-12);
  /* The open ends extend straight: before the start and past the end. */
  ch_track_proj p;
  ch_track_project(t, -1.5, 2.25, -1, &p);
  assert_int_equal(p.segment, 0);
  expect_near(p.s, -1.5, 1e-12);
  expect_near(p.offset, 0.25, 1e-12);
  ch_track_project(t, 11, 1.9, 3, &p);
  assert_int_equal(p.segment, 19);
  expect_near(p.s, 11, 1e-12);
  expect_near(p.offset, -0.1, 1e-12);
  expect_near(p.half_left, 0.6, 1e-12);
  expect_near(ch_track_wrap_s(t, 12), 10, 0);
  expect_near(ch_track_wrap_s(t, -1), 0, 0);
  ch_track_free(t);
}

/* Brute force: the smallest distance from (x, y) to any segment. */
static double brute_distance(const ch_track *t, double x, double y, int *seg) {
  double best = INFINITY;
  for (int i = 0; i < t->nseg; i++) {
    int j = (i + 1) % t->n;
    double ax = t->cx[i], ay = t->cy[i], bx = t->cx[j], by = t->cy[j];
    double l2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay);
    double f = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / l2;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    double d = hypot(x - ax - f * (bx - ax), y - ay - f * (by - ay));
    if (d < best) best = d, *seg = i;
  }
  return best;
}

/* Random points within band of the centre line; offsets are compared where the track is smooth
** (smooth != 0), since at a polygon corner the offset along the bisector is not the distance. */
static void check_projection(const ch_track *t, int trials, double band, int smooth) {
  for (int k = 0; k < trials; k++) {
    double s = rnd() * t->length, off = (2 * rnd() - 1) * band, x, y, h;
    ch_track_point_at(t, s, &x, &y, &h);
    x -= sin(h) * off, y += cos(h) * off;
    int seg;
    double d = brute_distance(t, x, y, &seg);
    ch_track_proj p;
    ch_track_project(t, x, y, -1, &p);
    expect_near(p.distance, d, 1e-12);
    /* From a nearby hint the local walk must find the same distance. */
    int hint = (seg + (int)(rnd() * 9) - 4 + t->nseg) % t->nseg;
    ch_track_proj q;
    ch_track_project(t, x, y, hint, &q);
    expect_near(q.distance, d, 1e-12);
    expect_near(hypot(q.px - x, q.py - y), d, 1e-12);
    if (fabs(off) > 0.01 && fabs(off) < 0.3) {
      if ((q.offset > 0) != (off > 0)) fail_msg("offset %g has the wrong side (%g)", q.offset, off);
      if (smooth) expect_near(q.offset, off, 0.01);
    }
  }
}

static void test_projection_vs_brute_force(void **state) {
  (void)state;
  ch_track *sq = square_loop(0.6);
  check_projection(sq, 5000, 0.6, 0);
  ch_track_free(sq);
  ch_track *b = load_shipped("bayside");
  check_projection(b, 20000, 0.6, 1);
  ch_track_free(b);
}

/* A point moving along the track, each query hinted with the previous answer. */
static void test_projection_follows_motion(void **state) {
  (void)state;
  ch_track *t = load_shipped("bayside");
  int hint = -1, seg;
  for (int k = 0; k < 3000; k++) {
    double s = 0.03 * k, x, y, h, off = 0.3 * sin(0.05 * k);
    ch_track_point_at(t, s, &x, &y, &h);
    x -= sin(h) * off, y += cos(h) * off;
    ch_track_proj p;
    hint = ch_track_project(t, x, y, hint, &p);
    expect_near(p.distance, brute_distance(t, x, y, &seg), 1e-12);
    double ds = fabs(p.s - ch_track_wrap_s(t, s));
    if (ds > t->length / 2) ds = t->length - ds;
    assert_true(ds < 0.2);
  }
  ch_track_free(t);
}

static void test_point_at_round_trip(void **state) {
  (void)state;
  ch_track *t = load_shipped("bayside");
  for (int k = 0; k < 5000; k++) {
    double s = (rnd() * 3 - 1) * t->length, x, y, h;
    ch_track_point_at(t, s, &x, &y, &h);
    ch_track_proj p;
    ch_track_project(t, x, y, -1, &p);
    expect_near(p.distance, 0, 1e-9);
    double ds = fabs(p.s - ch_track_wrap_s(t, s));
    expect_near(fmin(ds, t->length - ds), 0, 1e-9);
    double dh = remainder(p.heading - h, 2 * PI);
    expect_near(dh, 0, 1e-9);
  }
  /* The start line is point 0, and the heading there is the point's tangent. */
  double x, y, h;
  ch_track_point_at(t, t->length, &x, &y, &h);
  expect_near(x, t->cx[0], 1e-9);
  expect_near(y, t->cy[0], 1e-9);
  expect_near(h, atan2(t->ty[0], t->tx[0]), 1e-9);
  ch_track_free(t);
}

static void test_curvature_circle_and_reverse(void **state) {
  (void)state;
  ch_track *c = circle_loop(2, 120);
  for (double s = -5; s < 30; s += 0.37) expect_near(ch_track_curvature(c, s, 0, 0.5), 0.5, 0.01);
  expect_near(ch_track_curvature(c, 1, 0, 2 * c->length), 0.5, 0.005);
  ch_track *r = NULL;
  ch_error err;
  assert_int_equal(ch_track_reverse(c, &r, &err), CH_OK);
  expect_near(r->length, c->length, 1e-9);
  expect_near(r->cx[0], c->cx[0], 0);
  expect_near(r->cy[1], c->cy[119], 0);
  expect_near(r->hl[3], c->hr[117], 1e-12);
  expect_near(r->total_turn, -2 * PI, 1e-9);
  expect_near(ch_track_curvature(r, 3, 0.5, 1), -0.5, 0.01);
  ch_track_free(r);
  ch_track_free(c);
}

static double min_radius(const ch_track *t) {
  double m = INFINITY;
  for (double s = 0; s < t->length; s += 0.02) {
    double k = fabs(ch_track_curvature(t, s, -0.1, 0.1));
    if (k > 0) m = fmin(m, 1 / k);
  }
  return m;
}

static void check_bbox(const ch_track *t, double w, double h) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int i = 0; i < t->n; i++) {
    x0 = fmin(x0, fmin(t->lx[i], t->rx[i])), x1 = fmax(x1, fmax(t->lx[i], t->rx[i]));
    y0 = fmin(y0, fmin(t->ly[i], t->ry[i])), y1 = fmax(y1, fmax(t->ly[i], t->ry[i]));
  }
  expect_between(x1 - x0, 1.0, w);
  expect_between(y1 - y0, 1.0, h);
}

static void test_shipped_tracks(void **state) {
  (void)state;
  ch_track *b = load_shipped("bayside");
  assert_string_equal(b->name, "bayside");
  assert_int_equal(b->is_loop, 1);
  expect_between(b->length, 17.0, 18.0);
  expect_near(b->width, 0.76, 1e-9);
  expect_near(b->total_turn, 2 * PI, 1e-6); /* closed, counter-clockwise */
  expect_between(min_radius(b), 0.7, 0.9);
  check_bbox(b, 8.0, 5.0);
  for (int i = 0; i < b->nseg; i++) expect_between(b->ulen[i], 0.1, 0.15);
  ch_track *o = load_shipped("oval");
  assert_string_equal(o->name, "oval");
  assert_int_equal(o->is_loop, 1);
  expect_between(o->length, 15.0, 20.0);
  expect_near(o->width, 1.067, 1e-9);
  expect_near(o->total_turn, 2 * PI, 1e-6);
  expect_between(min_radius(o), 1.2, 2.0);
  check_bbox(o, 9.0, 5.0);
  ch_track_free(b);
  ch_track_free(o);
}

/* A left border point pushed far along the track past a left bend: every border point is on
** its side, the border does not cross itself, but its segments cut across the centre line. */
static void test_border_crosses_centre_line(void **state) {
  (void)state;
  const char *text = "chicane-track 1\n"
                     "name bend\n"
                     "loop no\n"
                     "width 0.6\n"
                     "0 0\n"
                     "1 0\n"
                     "2 0 2.8 0.5 2.115 -0.277\n" /* line 7 */
                     "2.7 0.7\n"
                     "2.7 1.7\n";
  ch_track *t = (ch_track *)1;
  ch_error err;
  int rc = ch_track_parse(text, "bend.track", &t, &err);
  assert_int_equal(rc, CH_ECORRUPT);
  assert_null(t);
  expect_contains(err.message, "bend.track:6: left border crosses the centre line");
  expect_contains(err.message, "the border segment starting at line 6 meets the centre segment "
                               "starting at line 7");
}

/* Two legs of a loop lying across each other: the borders of one cross those of the other. */
static void test_overlapping_legs(void **state) {
  (void)state;
  double x[40], y[40];
  for (int i = 0; i < 40; i++) { /* a thin ellipse 0.3 m high: its halves overlap at 0.5 m wide */
    double a = 2 * PI * i / 40;
    x[i] = 3 * cos(a), y[i] = 0.15 * sin(a);
  }
  char *text = track_text("chicane-track 1\nname thin\nloop yes\nwidth 0.5\n", 40, x, y);
  ch_track *t = (ch_track *)1;
  ch_error err;
  int rc = ch_track_parse(text, "thin.track", &t, &err);
  free(text);
  assert_int_equal(rc, CH_ECORRUPT);
  assert_null(t);
  expect_contains(err.message, "thin.track:");
  expect_contains(err.message, "border cross");
}

/* A big loop (10^4 points) loads: validation is not quadratic (this would take minutes). */
static void test_big_track(void **state) {
  (void)state;
  int n = 10000;
  double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
  assert_true(x && y);
  for (int i = 0; i < n; i++) {
    double a = 2 * PI * i / n, r = 20 + 3 * sin(5 * a);
    x[i] = r * cos(a), y[i] = r * sin(a);
  }
  char *text = track_text("chicane-track 1\nname big\nloop yes\nwidth 1\n", n, x, y);
  ch_track *t = parse_ok(text);
  free(text), free(x), free(y);
  assert_int_equal(t->n, n);
  expect_near(t->total_turn, 2 * PI, 1e-6);
  for (int k = 0; k < 200; k++) {
    double px = 50 * rnd() - 25, py = 50 * rnd() - 25;
    int seg;
    ch_track_proj p;
    ch_track_project(t, px, py, -1, &p);
    expect_near(p.distance, brute_distance(t, px, py, &seg), 1e-12);
  }
  ch_track_free(t);
}

static void test_describe(void **state) {
  (void)state;
  ch_track *sq = square_loop(0.6);
  ch_track_info in;
  ch_track_describe(sq, &in);
  expect_near(in.width_min, 0.6, 1e-12);
  expect_near(in.width_max, 0.6, 1e-12);
  expect_near(in.x0, -0.3, 1e-12);
  expect_near(in.y1, 4.3, 1e-12);
  assert_int_equal(in.direction, 1);
  ch_track *r = NULL;
  ch_error err;
  assert_int_equal(ch_track_reverse(sq, &r, &err), CH_OK);
  ch_track_describe(r, &in);
  assert_int_equal(in.direction, -1);
  ch_track_free(r);
  ch_track_free(sq);
  ch_track *c = circle_loop(2, 120);
  ch_track_describe(c, &in);
  expect_near(in.min_radius, 2, 0.01);
  ch_track_free(c);
  ch_track *s = load_shipped("straight");
  ch_track_describe(s, &in);
  assert_int_equal(in.direction, 0);
  assert_true(isinf(in.min_radius));
  ch_track_free(s);
}

/* The straight and the loop of varying width that make_tracks.lua adds. */
static void test_shipped_straight_and_narrows(void **state) {
  (void)state;
  ch_track *s = load_shipped("straight");
  assert_string_equal(s->name, "straight");
  assert_int_equal(s->is_loop, 0);
  expect_near(s->length, 8.0, 1e-3);
  expect_near(s->width, 1.067, 1e-9);
  expect_near(s->total_turn, 0, 0);
  ch_track_free(s);
  ch_track *w = load_shipped("narrows");
  ch_track_info in;
  ch_track_describe(w, &in);
  assert_int_equal(w->is_loop, 1);
  expect_near(w->total_turn, 2 * PI, 1e-6);
  expect_near(w->width, 1.067, 1e-3); /* most of the loop keeps the full width */
  expect_near(in.width_min, 0.9, 1e-3);
  expect_near(in.width_max, 1.067, 1e-3);
  expect_between(in.min_radius, 0.8, 1.0);
  /* The narrow part is a stretch, not a point: count the points below 0.95 m. */
  int narrow = 0;
  for (int i = 0; i < w->n; i++) narrow += w->hl[i] + w->hr[i] < 0.95;
  expect_between(narrow, 20, 60);
  ch_track_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_self_intersecting_border),
      cmocka_unit_test(test_explicit_borders_and_comments),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_square_loop),
      cmocka_unit_test(test_straight_lengths),
      cmocka_unit_test(test_projection_vs_brute_force),
      cmocka_unit_test(test_projection_follows_motion),
      cmocka_unit_test(test_point_at_round_trip),
      cmocka_unit_test(test_curvature_circle_and_reverse),
      cmocka_unit_test(test_shipped_tracks),
      cmocka_unit_test(test_border_crosses_centre_line),
      cmocka_unit_test(test_overlapping_legs),
      cmocka_unit_test(test_big_track),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_shipped_straight_and_narrows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
