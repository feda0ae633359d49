/* test_track_grid.c -- the spatial index against brute force: closest segment and ray casts. */
#include "track_test.h"

/* Distance from (x, y) to centre segment i, its ends included. */
static double seg_distance(const ch_track *t, int i, double x, double y) {
  int j = (i + 1) % t->n;
  double ax = t->cx[i], ay = t->cy[i], bx = t->cx[j], by = t->cy[j];
  double l2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay);
  double f = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / l2;
  f = f < 0 ? 0 : f > 1 ? 1 : f;
  return hypot(x - ax - f * (bx - ax), y - ay - f * (by - ay));
}

/* The smallest distance from (x, y) to any centre segment, scanning them all. */
static double brute_closest(const ch_track *t, double x, double y, int *seg) {
  double best = INFINITY;
  for (int i = 0; i < t->nseg; i++) {
    double d = seg_distance(t, i, x, y);
    if (d < best) best = d, *seg = i;
  }
  return best;
}

/* First hit of a ray with either border, scanning every border segment (Cramer's rule). */
static int brute_ray(const ch_track *t, double x, double y, double dx, double dy, double max,
                     double *dist) {
  double l = hypot(dx, dy), ux = dx / l, uy = dy / l, best = INFINITY;
  for (int side = 0; side < 2; side++) {
    const double *bx = side ? t->rx : t->lx, *by = side ? t->ry : t->ly;
    for (int i = 0; i < t->nseg; i++) {
      int j = (i + 1) % t->n;
      /* x + s ux = bx[i] + f (bx[j] - bx[i]), likewise for y */
      double a = ux, b = -(bx[j] - bx[i]), c = uy, d = -(by[j] - by[i]);
      double e = bx[i] - x, g = by[i] - y, det = a * d - b * c;
      if (det == 0) continue;
      double s = (e * d - b * g) / det, f = (a * g - c * e) / det;
      if (s >= 0 && f >= 0 && f <= 1 && s < best) best = s;
    }
  }
  if (!(best <= max)) return 0;
  *dist = best;
  return 1;
}

static void bbox(const ch_track *t, double *x0, double *y0, double *x1, double *y1) {
  ch_track_info in;
  ch_track_describe(t, &in);
  *x0 = in.x0, *y0 = in.y0, *x1 = in.x1, *y1 = in.y1;
}

/* Points all over (and well beyond) the track's box, near the track, and far away. */
static void random_point(const ch_track *t, int k, double *x, double *y) {
  double x0, y0, x1, y1;
  bbox(t, &x0, &y0, &x1, &y1);
  if (k % 3 == 0) {
    double s = rnd() * t->length, h, off = (2 * rnd() - 1) * 0.8;
    ch_track_point_at(t, s, x, y, &h);
    *x -= sin(h) * off, *y += cos(h) * off;
  } else if (k % 50 == 1) {
    double a = 2 * PI * rnd();
    *x = 1e4 * cos(a), *y = 1e4 * sin(a);
  } else {
    *x = x0 - 3 + (x1 - x0 + 6) * rnd(), *y = y0 - 3 + (y1 - y0 + 6) * rnd();
  }
}

/* The grid's segment is as close as the closest of a full scan (the straight's projection
** measures past its open ends perpendicularly, so the segment is what is compared). */
static void check_closest(const ch_track *t, int trials) {
  for (int k = 0; k < trials; k++) {
    double x, y;
    random_point(t, k, &x, &y);
    int seg;
    double d = brute_closest(t, x, y, &seg);
    ch_track_proj p;
    int got = ch_track_project(t, x, y, -1, &p);
    double dg = seg_distance(t, got, x, y);
    if (!(fabs(dg - d) <= 1e-9 * fmax(1, d)))
      fail_msg("%s: (%.9g, %.9g): grid says segment %d at %.12g, brute force %d at %.12g", t->name,
               x, y, got, dg, seg, d);
    if (t->is_loop) expect_near(p.distance, d, 1e-9 * fmax(1, d));
    double off, hl, hr;
    assert_int_equal(ch_track_lateral(t, x, y, -1, &off, &hl, &hr), got);
    expect_near(fabs(off), p.distance, 1e-12);
  }
}

static void test_closest_matches_brute_force(void **state) {
  (void)state;
  for (int i = 0; i < all_track_count(); i++) {
    ch_track *t = load_any(i), *r = NULL;
    check_closest(t, 3000);
    ch_error err;
    assert_int_equal(ch_track_reverse(t, &r, &err), CH_OK);
    check_closest(r, 1000);
    ch_track_free(r);
    ch_track_free(t);
  }
}

static void check_rays(const ch_track *t, int trials) {
  double x0, y0, x1, y1;
  bbox(t, &x0, &y0, &x1, &y1);
  int hits = 0;
  for (int k = 0; k < trials; k++) {
    double x, y;
    random_point(t, k % 50 == 1 ? k + 1 : k, &x, &y); /* no rays from 10 km away */
    if (k % 7 == 0) x = x0 - 2 - 3 * rnd();           /* from outside the box, towards it or not */
    double a = 2 * PI * rnd(), len = 0.1 + 3 * rnd(), max = k % 5 ? 15 * rnd() : 100;
    double dx = len * cos(a), dy = len * sin(a), want = -1, got = -1;
    int bh = brute_ray(t, x, y, dx, dy, max, &want);
    int gh = ch_track_raycast(t, x, y, dx, dy, max, &got);
    if (bh != gh || (bh && !(fabs(want - got) <= 1e-9)))
      fail_msg("%s: ray (%.9g, %.9g) dir (%.9g, %.9g) max %g: grid %d %.12g, brute force %d "
               "%.12g",
               t->name, x, y, dx, dy, max, gh, got, bh, want);
    hits += bh;
  }
  /* The sample is worth something only if it hits and misses. */
  expect_between(hits, trials / 10, trials - trials / 10);
}

static void test_raycast_matches_brute_force(void **state) {
  (void)state;
  for (int i = 0; i < all_track_count(); i++) {
    ch_track *t = load_any(i);
    check_rays(t, 3000);
    ch_track_free(t);
  }
}

/* Known answers on the straight (borders at y = 1.567 and 0.5, from x = 0.5 to 8.5). */
static void test_raycast_known(void **state) {
  (void)state;
  ch_track *t = load_shipped("straight");
  double d;
  assert_int_equal(ch_track_raycast(t, 1, 1.0335, 0, 1, 5, &d), 1);
  expect_near(d, 0.5335, 1e-9);
  assert_int_equal(ch_track_raycast(t, 1, 1.0335, 0, -7, 5, &d), 1); /* any length of direction */
  expect_near(d, 0.5335, 1e-9);
  assert_int_equal(ch_track_raycast(t, 1, 1.0335, 0, 1, 0.5, &d), 0); /* beyond max_dist */
  assert_int_equal(ch_track_raycast(t, 1, 1.0335, 1, 0, 100, &d), 0); /* along the track */
  assert_int_equal(ch_track_raycast(t, 1, 3, 0, -1, 100, &d), 1);     /* from outside */
  expect_near(d, 3 - 1.567, 1e-9);
  assert_int_equal(ch_track_raycast(t, -5, 1, 1, 0, 100, &d), 0); /* the open ends are open */
  assert_int_equal(ch_track_raycast(t, 1, 1, 0, 0, 100, &d), 0);  /* no direction */
  assert_int_equal(ch_track_raycast(t, NAN, 1, 0, 1, 100, &d), 0);
  ch_track_free(t);
}

/* Far away or not a number: still an answer, and the right one. */
static void test_closest_far_and_odd(void **state) {
  (void)state;
  ch_track *t = load_shipped("bayside");
  ch_track_proj p;
  int seg;
  double d = brute_closest(t, 1e12, -3e11, &seg);
  assert_int_equal(ch_track_project(t, 1e12, -3e11, -1, &p), seg);
  expect_near(p.distance, d, 1e-3);
  int got = ch_track_project(t, NAN, 0, -1, &p);
  expect_between(got, 0, t->nseg - 1);
  ch_track_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_closest_matches_brute_force),
      cmocka_unit_test(test_raycast_matches_brute_force),
      cmocka_unit_test(test_raycast_known),
      cmocka_unit_test(test_closest_far_and_odd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
