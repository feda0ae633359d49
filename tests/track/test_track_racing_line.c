/* test_track_racing_line.c -- the racing line and speed profile: sanity against the centre line. */
#include "track_test.h"

#include <time.h>

static ch_racing_line *line_of(const ch_track *t, const ch_car_limits *car) {
  ch_racing_line *rl = NULL;
  ch_error err;
  int rc = ch_track_racing_line(t, car, &rl, &err);
  if (rc) fail_msg("%s: %d %s", t->name, rc, err.message);
  return rl;
}

static ch_racing_line *centre_of(const ch_track *t, const ch_car_limits *car) {
  ch_racing_line *rl = NULL;
  ch_error err;
  int rc = ch_track_centre_line(t, car, &rl, &err);
  if (rc) fail_msg("%s: %d %s", t->name, rc, err.message);
  return rl;
}

static double max_abs_kappa(const ch_racing_line *rl) {
  double m = 0;
  for (int i = 0; i < rl->n; i++) m = fmax(m, fabs(rl->kappa[i]));
  return m;
}

/* Distance from (x, y) to the polyline (bx, by) of the track's points. */
static double border_distance(const ch_track *t, const double *bx, const double *by, double x,
                              double y) {
  double best = INFINITY;
  for (int i = 0; i < t->nseg; i++) {
    int j = (i + 1) % t->n;
    double ex = bx[j] - bx[i], ey = by[j] - by[i], l2 = ex * ex + ey * ey;
    double f = l2 > 0 ? ((x - bx[i]) * ex + (y - by[i]) * ey) / l2 : 0;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    best = fmin(best, hypot(x - bx[i] - f * ex, y - by[i] - f * ey));
  }
  return best;
}

/* Every point of the line keeps the margin from both borders: by its offset along the normal
** (exactly), and by its distance to either border polyline and where it projects onto the
** track (to 5 mm: between points, borders and interpolated half widths are chords). */
static void check_inside(const ch_track *t, const ch_racing_line *rl, double margin) {
  assert_int_equal(rl->n, t->n);
  for (int i = 0; i < t->n; i++) {
    double lo = -(t->hr[i] - margin), hi = t->hl[i] - margin;
    if (lo > hi) lo = hi = 0.5 * (t->hl[i] - t->hr[i]);
    if (!(rl->offset[i] >= lo - 1e-12 && rl->offset[i] <= hi + 1e-12))
      fail_msg("%s: point %d offset %.9g outside [%.9g, %.9g]", t->name, i, rl->offset[i], lo, hi);
    expect_near(rl->x[i], t->cx[i] - rl->offset[i] * t->ty[i], 1e-12);
    expect_near(rl->y[i], t->cy[i] + rl->offset[i] * t->tx[i], 1e-12);
    double dl = border_distance(t, t->lx, t->ly, rl->x[i], rl->y[i]);
    double dr = border_distance(t, t->rx, t->ry, rl->x[i], rl->y[i]);
    if (!(fmin(dl, dr) >= margin - 5e-3))
      fail_msg("%s: point %d is %.4g m from the left border, %.4g m from the right", t->name, i, dl,
               dr);
    ch_track_proj p;
    ch_track_project(t, rl->x[i], rl->y[i], -1, &p);
    if (!(p.offset <= p.half_left - margin + 5e-3 && -p.offset <= p.half_right - margin + 5e-3))
      fail_msg("%s: point %d is %.4g m from the centre, half widths %.4g / %.4g", t->name, i,
               p.offset, p.half_left, p.half_right);
  }
}

/* The speed profile obeys the car: limit speed, gain and loss over each segment. */
static void check_profile(const ch_track *t, const ch_racing_line *rl, const ch_car_limits *car) {
  int nseg = t->is_loop ? rl->n : rl->n - 1;
  double sum = 0;
  for (int i = 0; i < nseg; i++) {
    int j = (i + 1) % rl->n;
    double ds = hypot(rl->x[j] - rl->x[i], rl->y[j] - rl->y[i]);
    expect_near(rl->s[i + 1] - rl->s[i], ds, 1e-12);
    assert_true(rl->v[j] * rl->v[j] <= rl->v[i] * rl->v[i] + 2 * car->a_accel * ds + 1e-9);
    assert_true(rl->v[i] * rl->v[i] <= rl->v[j] * rl->v[j] + 2 * fabs(car->a_brake) * ds + 1e-9);
    expect_near(rl->t[i + 1] - rl->t[i], 2 * ds / (rl->v[i] + rl->v[j]), 1e-12);
    sum += ds;
  }
  for (int i = 0; i < rl->n; i++) {
    assert_true(rl->v[i] <= car->v_max + 1e-12);
    if (i > 0 || t->is_loop)
      assert_true(rl->v[i] * rl->v[i] * fabs(rl->kappa[i]) <= car->a_lat * (1 + 1e-9) ||
                  rl->v[i] <= car->v_min + 1e-12);
  }
  expect_near(rl->length, sum, 1e-9);
  expect_near(rl->lap_time, rl->t[nseg], 1e-12);
}

/* The oval: shorter and faster than its centre line, inside the borders, in both timings. */
static void test_oval_sanity(void **state) {
  (void)state;
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_track *t = load_shipped("oval");
  ch_racing_line *rl = line_of(t, &car), *cl = centre_of(t, &car);
  assert_true(rl->length < cl->length);
  assert_true(rl->lap_time < cl->lap_time);
  assert_true(rl->standing_lap_time < cl->standing_lap_time);
  assert_true(rl->standing_lap_time > rl->lap_time); /* a standing start costs time */
  expect_near(cl->length, t->length, 1e-9);
  for (int i = 0; i < cl->n; i++) expect_near(cl->offset[i], 0, 0);
  check_inside(t, rl, car.margin);
  check_profile(t, rl, &car);
  check_profile(t, cl, &car);
  ch_racing_line_free(rl);
  ch_racing_line_free(cl);
  ch_track_free(t);
}

/* Where the centre line has tight corners, the line's sharpest bend is gentler than the centre
** line's. (Not on the oval: there the fastest line for this car clips the inside kerb, since
** the car brakes and accelerates hard for its top speed, so length beats radius.) */
static void test_lower_max_curvature(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  ch_car_limits car;
  ch_car_limits_default(&car);
  const char *names[] = {"bayside", "narrows"};
  for (int k = 0; k < 2; k++) {
    ch_track *t = load_shipped(names[k]);
    ch_racing_line *rl = line_of(t, &car), *cl = centre_of(t, &car);
    if (!(max_abs_kappa(rl) < max_abs_kappa(cl)))
      fail_msg("%s: line max curvature %.4g, centre %.4g", t->name, max_abs_kappa(rl),
               max_abs_kappa(cl));
    ch_racing_line_free(rl);
    ch_racing_line_free(cl);
    ch_track_free(t);
  }
  const char *files[] = {"reinvent_base.npy", "reInvent2019_wide.npy", "Oval_track.npy"};
  for (int k = 0; k < 3; k++) {
    ch_track *t = load_deepracer(files[k]);
    ch_racing_line *rl = line_of(t, &car), *cl = centre_of(t, &car);
    if (!(max_abs_kappa(rl) < max_abs_kappa(cl)))
      fail_msg("%s: line max curvature %.4g, centre %.4g", t->name, max_abs_kappa(rl),
               max_abs_kappa(cl));
    ch_racing_line_free(rl);
    ch_racing_line_free(cl);
    ch_track_free(t);
  }
}

static double ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-6;
}

/* Every known track: inside, a valid profile, faster than the centre line; time printed. */
static void test_every_track(void **state) {
  (void)state;
  ch_car_limits car;
  ch_car_limits_default(&car);
  for (int i = 0; i < all_track_count(); i++) {
    ch_track *t = load_any(i);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ch_racing_line *rl = line_of(t, &car);
    double ms = ms_since(&t0);
    ch_racing_line *cl = centre_of(t, &car);
    check_inside(t, rl, car.margin);
    check_profile(t, rl, &car);
    if (t->is_loop) {
      assert_true(rl->lap_time < cl->lap_time);
      assert_true(rl->standing_lap_time < cl->standing_lap_time);
    } else {
      assert_true(rl->lap_time <= cl->lap_time + 1e-12);
    }
    printf("# %-18s %4d points  line %7.3f m  lap %6.3f s (from rest %6.3f s)  centre %6.3f s  "
           "%5.1f ms\n",
           t->name, t->n, rl->length, rl->lap_time, rl->standing_lap_time, cl->lap_time, ms);
    ch_racing_line_free(rl);
    ch_racing_line_free(cl);
    ch_track_free(t);
  }
}

/* From rest to the far end: accelerate at a_accel up to v_max, then cruise. */
static double closed_form(double length, const ch_car_limits *car) {
  double d = car->v_max * car->v_max / (2 * car->a_accel);
  if (length <= d) return sqrt(2 * length / car->a_accel);
  return car->v_max / car->a_accel + (length - d) / car->v_max;
}

static void test_straight_closed_form(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_track *tracks[] = {load_shipped("straight"), load_deepracer("Straight_track.npy")};
  for (int k = 0; k < 2; k++) {
    ch_track *t = tracks[k];
    ch_racing_line *rl = line_of(t, &car);
    for (int i = 0; i < rl->n; i++) expect_near(rl->offset[i], 0, 1e-12);
    expect_near(rl->v[0], 0, 0);
    expect_near(rl->lap_time, closed_form(t->length, &car), 2e-3 * closed_form(t->length, &car));
    expect_near(rl->standing_lap_time, rl->lap_time, 0);
    double ref;
    assert_int_equal(ch_track_reference_lap(t, &ref, NULL), CH_OK);
    expect_near(ref, rl->lap_time, 0);
    ch_racing_line_free(rl);
    ch_track_free(t);
  }
  /* Too short to reach top speed: all acceleration, and exact (constant acceleration). */
  const char *text = "chicane-track 1\nname short\nloop no\nwidth 1\n0 0\n0.5 0\n1 0\n1.5 0\n";
  ch_track *t;
  assert_int_equal(ch_track_parse(text, "short.track", &t, NULL), CH_OK);
  ch_racing_line *rl = line_of(t, &car);
  expect_near(rl->lap_time, sqrt(2 * 1.5 / car.a_accel), 1e-12);
  ch_racing_line_free(rl);
  ch_track_free(t);
}

/* The reference lap is the racing line's standing lap with the default car, every time. */
static void test_reference_lap_deterministic(void **state) {
  REQUIRE_DEEPRACER();
  (void)state;
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_track *t = load_deepracer("Bowtie_track.npy");
  ch_racing_line *a = line_of(t, &car), *b = line_of(t, &car);
  assert_int_equal(a->n, b->n);
  assert_memory_equal(a->x, b->x, (size_t)a->n * sizeof *a->x);
  assert_memory_equal(a->v, b->v, (size_t)a->n * sizeof *a->v);
  double ref;
  ch_error err;
  assert_int_equal(ch_track_reference_lap(t, &ref, &err), CH_OK);
  expect_near(ref, a->standing_lap_time, 0);
  ch_racing_line_free(a);
  ch_racing_line_free(b);
  ch_track_free(t);
}

/* Sharing grip between braking and cornering can only cost time; a wider margin too. */
static void test_friction_circle_and_margin(void **state) {
  (void)state;
  ch_car_limits car, circle, wide;
  ch_car_limits_default(&car);
  circle = car, circle.friction_circle = 1;
  wide = car, wide.margin = 0.3;
  ch_track *t = load_shipped("bayside");
  ch_racing_line *a = line_of(t, &car), *b = line_of(t, &circle), *c = line_of(t, &wide);
  assert_true(b->lap_time > a->lap_time);
  assert_true(c->lap_time > a->lap_time);
  check_inside(t, c, 0.3);
  ch_racing_line_free(a);
  ch_racing_line_free(b);
  ch_racing_line_free(c);
  ch_track_free(t);
}

static void test_bad_limits(void **state) {
  (void)state;
  ch_track *t = load_shipped("oval");
  ch_car_limits car;
  ch_racing_line *rl = (ch_racing_line *)1;
  ch_error err;
  ch_car_limits_default(&car);
  car.a_lat = 0;
  assert_int_equal(ch_track_racing_line(t, &car, &rl, &err), CH_EINVAL);
  assert_null(rl);
  expect_contains(err.message, "car limits: a_lat must be > 0");
  ch_car_limits_default(&car);
  car.v_min = 5;
  assert_int_equal(ch_track_centre_line(t, &car, &rl, &err), CH_EINVAL);
  expect_contains(err.message, "v_min must be in [0, v_max]");
  ch_track_free(t);
}

/* A track narrower than twice the margin: the line keeps to its middle there. */
static void test_narrower_than_the_car(void **state) {
  (void)state;
  char text[8192];
  int n = snprintf(text, sizeof text, "chicane-track 1\nname tight\nloop yes\nwidth 0.2\n");
  for (int i = 0; i < 60; i++)
    n += snprintf(text + n, sizeof text - (size_t)n, "%.9f %.9f\n", 3 * cos(2 * PI * i / 60),
                  2 * sin(2 * PI * i / 60));
  ch_track *t;
  assert_int_equal(ch_track_parse(text, "tight.track", &t, NULL), CH_OK);
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_racing_line *rl = line_of(t, &car);
  for (int i = 0; i < rl->n; i++) expect_near(rl->offset[i], 0, 1e-12);
  ch_racing_line_free(rl);
  ch_track_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oval_sanity),
      cmocka_unit_test(test_lower_max_curvature),
      cmocka_unit_test(test_every_track),
      cmocka_unit_test(test_straight_closed_form),
      cmocka_unit_test(test_reference_lap_deterministic),
      cmocka_unit_test(test_friction_circle_and_margin),
      cmocka_unit_test(test_bad_limits),
      cmocka_unit_test(test_narrower_than_the_car),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
