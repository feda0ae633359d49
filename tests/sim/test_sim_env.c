/* test_sim_env.c -- the sim2d env plugin through its vtable: physics, episode rules, batching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plugin_open.h"

#define PI  3.14159265358979323846
#define OBS 11

#define expect_near(a, b, eps)                                                                     \
  do {                                                                                             \
    double a_ = (a), b_ = (b);                                                                     \
    if (!(fabs(a_ - b_) <= (eps)))                                                                 \
      fail_msg("%s = %.12g, expected %.12g (+- %g)", #a, a_, b_, (double)(eps));                   \
  } while (0)

#define expect_contains(hay, needle)                                                               \
  do {                                                                                             \
    if (!strstr((hay), (needle))) fail_msg("message \"%s\" lacks \"%s\"", (hay), (needle));        \
  } while (0)

static const ch_env_vtable *vt;

/* ------------------------------------------------------------------------------------------ */
/* Fixtures: hand-built tracks in temporary files, handles, stepping one car                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct fixture {
  char straight[64];   /* 20 m straight along +x from (0, 0), width 0.6 */
  char narrow[64];     /* 20 m straight, width 0.5 */
  char wide[64];       /* 60 m straight, width 8 */
  char circle[64];     /* loop: circle of radius 3, width 1.2, counter-clockwise */
  char big_circle[64]; /* loop: circle of radius 10, width 6 */
  char bayside[1024];  /* the shipped default track */
} fixture;

static fixture fx;

static void write_track(char *path, const char *head, int n, double (*pt)(int, int)) {
  strcpy(path, "/tmp/chicane_simXXXXXX.track");
  int fd = mkstemps(path, 6);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  fputs(head, f);
  for (int i = 0; i < n; i++) fprintf(f, "%.9f %.9f\n", pt(i, 0), pt(i, 1));
  fclose(f);
}

static double line_pt(int i, int axis) {
  return axis ? 0 : 0.25 * i;
}
static double long_pt(int i, int axis) {
  return axis ? 0 : 0.5 * i;
}
static double circle3_pt(int i, int axis) {
  double a = 2 * PI * i / 150;
  return axis ? 3 * sin(a) : 3 * cos(a);
}
static double circle10_pt(int i, int axis) {
  double a = 2 * PI * i / 400;
  return axis ? 10 * sin(a) : 10 * cos(a);
}

static int setup(void **state) {
  (void)state;
  vt = test_plugin_open("env_sim2d.so");
  write_track(fx.straight, "chicane-track 1\nname line\nloop no\nwidth 0.6\n", 81, line_pt);
  write_track(fx.narrow, "chicane-track 1\nname narrow\nloop no\nwidth 0.5\n", 81, line_pt);
  write_track(fx.wide, "chicane-track 1\nname wide\nloop no\nwidth 8\n", 121, long_pt);
  write_track(fx.circle, "chicane-track 1\nname circle\nloop yes\nwidth 1.2\n", 150, circle3_pt);
  write_track(fx.big_circle, "chicane-track 1\nname big\nloop yes\nwidth 6\n", 400, circle10_pt);
  snprintf(fx.bayside, sizeof fx.bayside, "%s/tracks/bayside.track", CHICANE_SOURCE_DIR);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(fx.straight), unlink(fx.narrow), unlink(fx.wide), unlink(fx.circle);
  unlink(fx.big_circle);
  return 0;
}

/* A handle on track with extra config keys (a JSON fragment starting with ',' or ""). */
static void *make_env(const char *track, const char *extra) {
  char cfg[2048];
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\"%s}", track, extra);
  void *env = NULL;
  ch_error err = {0};
  int rc = vt->create(cfg, &test_host, &env, &err);
  if (rc) fail_msg("create %s: %d %s", cfg, rc, err.message);
  return env;
}

typedef struct car_out {
  float obs[OBS];
  ch_env_params p;
  int32_t status;
} car_out;

static void reset1(void *env, double fraction, car_out *o) {
  ch_error err;
  int rc = vt->reset(env, 0, &(ch_env_reset){fraction, 0, 0, 0, 0}, o->obs, NULL, &o->p, &err);
  if (rc) fail_msg("reset: %d %s", rc, err.message);
  o->status = o->p.episode_status;
}

static void step1(void *env, double steer, double speed, car_out *o) {
  float st = (float)steer, sp = (float)speed;
  ch_error err;
  int rc = vt->step(env, &st, &sp, NULL, o->obs, NULL, &o->p, &o->status, &err);
  if (rc) fail_msg("step: %d %s", rc, err.message);
  assert_int_equal(o->status, o->p.episode_status);
}

/* ------------------------------------------------------------------------------------------ */

static void test_spec_and_waypoints(void **state) {
  (void)state;
  void *env = make_env(fx.circle, ", \"num_cars\": 3");
  ch_env_spec s;
  vt->spec(env, &s);
  assert_int_equal(s.num_cars, 3);
  assert_int_equal(s.obs_size, OBS);
  assert_int_equal(s.num_waypoints, 150);
  assert_int_equal(s.is_loop, 1);
  expect_near(s.track_width, 1.2, 1e-12);
  expect_near(s.track_length, 150 * 2 * 3 * sin(PI / 150), 1e-9);
  expect_near(s.step_seconds, 1.0 / 15, 1e-15);
  assert_int_equal(vt->waypoints(env, NULL, 0), 150);
  double xy[300];
  assert_int_equal(vt->waypoints(env, xy, 149), CH_ERANGE);
  assert_int_equal(vt->waypoints(env, xy, 150), 150);
  expect_near(xy[2 * 10], circle3_pt(10, 0), 1e-9);
  expect_near(xy[2 * 10 + 1], circle3_pt(10, 1), 1e-9);
  vt->destroy(env);
}

static void test_reset_state(void **state) {
  (void)state;
  void *env = make_env(fx.circle, "");
  car_out o;
  reset1(env, 0.25, &o);
  expect_near(o.p.x, 0, 0.01);
  expect_near(o.p.y, 3, 1e-3);
  expect_near(o.p.heading, 180, 0.5);
  assert_int_equal(o.p.steps, 0);
  expect_near(o.p.progress, 0, 0);
  expect_near(o.p.speed, 0, 0);
  assert_int_equal(o.p.all_wheels_on_track, 1);
  assert_int_equal(o.p.is_offtrack, 0);
  assert_int_equal(o.p.is_reversed, 0);
  assert_int_equal(o.p.episode_status, CH_EPISODE_IN_PROGRESS);
  assert_int_equal(o.p.closest_waypoints[0], 37);
  assert_int_equal(o.p.closest_waypoints[1], 38);
  expect_near(o.p.track_width, 1.2, 1e-12);
  expect_near(o.obs[0], 0, 0);
  expect_near(o.obs[2], 0, 1e-6);
  expect_near(o.obs[3], 0, 1e-6);
  expect_near(o.obs[4], 1, 1e-6);
  for (int k = 5; k < OBS; k++) expect_near(o.obs[k], 0.5 / 3, 1e-3); /* curvature 1/3, * 0.5 */
  vt->destroy(env);
}

static void test_straight_reaches_far_end(void **state) {
  (void)state;
  void *env = make_env(fx.straight, "");
  car_out o;
  reset1(env, 0, &o);
  double last = 0;
  int n = 0;
  while (o.status == CH_EPISODE_IN_PROGRESS && n < 200) {
    step1(env, 0, 4, &o);
    n++;
    assert_int_equal(o.p.all_wheels_on_track, 1);
    if (o.status == CH_EPISODE_IN_PROGRESS) expect_near(o.p.progress, 100 * o.p.x / 20, 1e-9);
    assert_true(o.p.progress > last);
    last = o.p.progress;
  }
  assert_int_equal(o.status, CH_EPISODE_LAP_COMPLETE);
  expect_near(o.p.progress, 100, 0);
  assert_true(o.p.x >= 20 && o.p.x < 20 + 4.0 / 15);
  /* Past the end the curvature sensor reads 0. */
  for (int k = 5; k < OBS; k++) expect_near(o.obs[k], 0, 0);
  /* Starting half way, progress counts the remaining half. */
  reset1(env, 0.5, &o);
  step1(env, 0, 4, &o);
  expect_near(o.p.progress, 100 * (o.p.x - 10) / 10, 1e-9);
  vt->destroy(env);
}

static void test_full_steering_goes_off_track(void **state) {
  (void)state;
  void *env = make_env(fx.narrow, "");
  car_out o;
  reset1(env, 0.1, &o);
  int partly_off = 0, n = 0;
  while (o.status == CH_EPISODE_IN_PROGRESS && n++ < 100) {
    step1(env, 30, 2, &o);
    if (o.status == CH_EPISODE_IN_PROGRESS && !o.p.all_wheels_on_track) partly_off = 1;
  }
  assert_int_equal(o.status, CH_EPISODE_OFF_TRACK);
  assert_true(partly_off); /* some wheels off alone does not end the episode */
  assert_int_equal(o.p.is_offtrack, 1);
  assert_int_equal(o.p.all_wheels_on_track, 0);
  assert_int_equal(o.p.is_left_of_center, 1);
  assert_true(o.p.distance_from_center > 0.25);
  assert_true(o.obs[2] > 1);
  /* An ended car must be reset or recovered before it steps again. */
  float st = 0, sp = 1;
  int32_t status;
  ch_error err;
  assert_int_equal(vt->step(env, &st, &sp, NULL, NULL, NULL, NULL, &status, &err), CH_ESTATE);
  expect_contains(err.message, "car 0 ended its episode (off_track)");
  vt->destroy(env);
}

/* Drive ahead, turn round, drive back: the episode ends exactly at the 15th falling step. */
static void test_u_turn_is_reversed(void **state) {
  (void)state;
  void *env = make_env(fx.big_circle, "");
  double steer = atan(0.164 / 10) * 180 / PI, prog[200];
  int m = 0;
  car_out o;
  reset1(env, 0.5, &o);
  for (int k = 0; k < 30; k++) step1(env, steer, 2, &o), prog[m++] = o.p.progress;
  double ahead = o.p.progress;
  assert_true(ahead > 5);
  while (o.obs[4] > -0.95 && m < 100) step1(env, 30, 1, &o), prog[m++] = o.p.progress;
  assert_int_equal(o.status, CH_EPISODE_IN_PROGRESS);
  while (o.status == CH_EPISODE_IN_PROGRESS && m < 200)
    step1(env, 0, 1, &o), prog[m++] = o.p.progress;
  assert_int_equal(o.status, CH_EPISODE_REVERSED);
  assert_int_equal(o.p.all_wheels_on_track, 1);
  for (int k = m - 15; k < m; k++)
    if (!(prog[k] < prog[k - 1])) fail_msg("progress did not fall at step %d of %d", k + 1, m);
  assert_true(prog[m - 16] >= prog[m - 17]);
  assert_true(o.p.progress > 0 && o.p.progress < ahead);
  /* Turning round at the start line and crossing it backwards is no lap: progress stays 0. */
  reset1(env, 0, &o);
  for (int k = 0; k < 14; k++) step1(env, 30, 1, &o);
  int n = 0;
  while (o.status == CH_EPISODE_IN_PROGRESS && n++ < 60) {
    step1(env, 0, 1, &o);
    assert_true(o.p.progress < 1);
  }
  assert_int_equal(o.status, CH_EPISODE_REVERSED);
  assert_true(o.p.closest_waypoints[0] > 300); /* behind the start line */
  expect_near(o.p.progress, 0, 0);
  vt->destroy(env);
}

static void test_stopped_car_is_immobilized(void **state) {
  (void)state;
  void *env = make_env(fx.straight, ", \"min_speed\": 0");
  car_out o;
  reset1(env, 0.2, &o);
  for (int k = 1; k <= 14; k++) {
    step1(env, 0, 0, &o);
    assert_int_equal(o.status, CH_EPISODE_IN_PROGRESS);
    assert_int_equal(o.p.steps, k);
  }
  step1(env, 0, 0, &o);
  assert_int_equal(o.status, CH_EPISODE_IMMOBILIZED);
  assert_int_equal(o.p.steps, 15);
  vt->destroy(env);
  /* With the default min_speed of 0.1 a command of 0 still creeps forward. */
  env = make_env(fx.straight, "");
  reset1(env, 0.2, &o);
  for (int k = 0; k < 30; k++) step1(env, 0, 0, &o);
  assert_int_equal(o.status, CH_EPISODE_IN_PROGRESS);
  expect_near(o.p.speed, 0.1, 1e-12);
  vt->destroy(env);
}

static void test_max_steps_is_time_up(void **state) {
  (void)state;
  void *env = make_env(fx.straight, ", \"max_steps\": 10");
  car_out o;
  reset1(env, 0, &o);
  for (int k = 1; k < 10; k++) {
    step1(env, 0, 0.5, &o);
    assert_int_equal(o.status, CH_EPISODE_IN_PROGRESS);
  }
  step1(env, 0, 0.5, &o);
  assert_int_equal(o.status, CH_EPISODE_TIME_UP);
  assert_int_equal(o.p.steps, 10);
  vt->destroy(env);
}

/* Constant steering that puts the car on a circle of radius 3: the track's own centre line. */
static void test_progress_wraps_at_start_line(void **state) {
  (void)state;
  void *env = make_env(fx.circle, "");
  double steer = atan(0.164 / 3) * 180 / PI, last = 0;
  car_out o;
  reset1(env, 0.95, &o);
  int crossed = 0, prev_wp = o.p.closest_waypoints[0], n = 0;
  while (o.status == CH_EPISODE_IN_PROGRESS && n++ < 1000) {
    step1(env, steer, 1.5, &o);
    assert_true(o.p.progress >= last);
    assert_true(o.p.progress - last < 100 * 0.11 / 18.85); /* 1.5 m/s / 15 per step, no jump */
    assert_true(o.p.distance_from_center < 0.01);
    if (o.p.closest_waypoints[0] < prev_wp) crossed++;
    prev_wp = o.p.closest_waypoints[0];
    last = o.p.progress;
    if (o.status == CH_EPISODE_IN_PROGRESS) assert_true(o.p.progress < 100);
  }
  assert_int_equal(crossed, 1);
  assert_int_equal(o.status, CH_EPISODE_LAP_COMPLETE);
  expect_near(o.p.progress, 100, 0);
  /* Back at the start fraction, give or take one step. */
  expect_near(o.p.x, 3 * cos(2 * PI * 0.95), 0.12);
  vt->destroy(env);
}

static void test_lateral_acceleration_cap(void **state) {
  (void)state;
  void *env = make_env(fx.wide, "");
  car_out o;
  reset1(env, 0, &o);
  for (int k = 0; k < 20; k++) step1(env, 0, 4, &o);
  expect_near(o.obs[0] * 4, 4, 1e-6);
  double x0 = o.p.x, y0 = o.p.y, h0 = o.p.heading;
  double limit = 4.0 * 4.0 / (0.5 * 9.81);
  for (int k = 0; k < 8; k++) {
    step1(env, 30, 4, &o);
    double chord = hypot(o.p.x - x0, o.p.y - y0), turn = (o.p.heading - h0) * PI / 180;
    double radius = chord / (2 * sin(turn / 2));
    if (!(radius >= limit * 0.999 && radius <= limit * 1.01))
      fail_msg("step %d: turn radius %.4f m, expected v^2/(mu g) = %.4f m", k, radius, limit);
    x0 = o.p.x, y0 = o.p.y, h0 = o.p.heading;
  }
  assert_int_equal(o.status, CH_EPISODE_IN_PROGRESS);
  vt->destroy(env);
  /* Slowly, the same steering turns on the geometric radius wheelbase / tan(30): heading
  ** change = path length * tan(30) / wheelbase. */
  env = make_env(fx.wide, ", \"min_speed\": 0");
  reset1(env, 0, &o);
  double h = o.p.heading, px = o.p.x, py = o.p.y, path = 0;
  for (int k = 0; k < 3; k++) {
    step1(env, 30, 0.5, &o);
    path += hypot(o.p.x - px, o.p.y - py), px = o.p.x, py = o.p.y;
  }
  double dh = (o.p.heading - h) * PI / 180, want = path * tan(PI / 6) / 0.164;
  expect_near(dh, want, 1e-3 * want);
  vt->destroy(env);
}

static void test_speed_ramps(void **state) {
  (void)state;
  void *env = make_env(fx.wide, "");
  car_out o;
  reset1(env, 0, &o);
  for (int k = 1; k <= 20; k++) {
    step1(env, 0, 4, &o);
    expect_near(o.obs[0] * 4, fmin(4, 4.0 * k / 15), 1e-5);
    expect_near(o.p.speed, 4, 0);
  }
  for (int k = 1; k <= 4; k++) {
    step1(env, 0, 1, &o);
    expect_near(o.obs[0] * 4, 4 - 6.0 * k / 15, 1e-5);
    expect_near(o.p.speed, 1, 0);
  }
  /* Commands are clipped: 10 m/s to 4, 45 degrees to 30. */
  step1(env, 45, 10, &o);
  expect_near(o.p.speed, 4, 0);
  expect_near(o.p.steering_angle, 30, 0);
  expect_near(o.obs[1], 1, 0);
  step1(env, -90, -3, &o);
  expect_near(o.p.speed, 0.1, 1e-12);
  expect_near(o.p.steering_angle, -30, 0);
  vt->destroy(env);
}

static void test_recover_keeps_progress(void **state) {
  (void)state;
  void *env = make_env(fx.narrow, "");
  car_out o;
  reset1(env, 0, &o);
  for (int k = 0; k < 10; k++) step1(env, 0, 2, &o);
  while (o.status == CH_EPISODE_IN_PROGRESS) step1(env, -30, 2, &o);
  assert_int_equal(o.status, CH_EPISODE_OFF_TRACK);
  double progress = o.p.progress;
  int steps = o.p.steps;
  ch_error err;
  car_out r;
  assert_int_equal(vt->recover(env, 0, r.obs, NULL, &r.p, &err), CH_OK);
  expect_near(r.p.progress, progress, 1e-9);
  assert_int_equal(r.p.steps, steps);
  assert_int_equal(r.p.episode_status, CH_EPISODE_IN_PROGRESS);
  assert_int_equal(r.p.all_wheels_on_track, 1);
  expect_near(r.p.distance_from_center, 0, 1e-9);
  expect_near(r.p.y, 0, 1e-9);
  expect_near(r.p.heading, 0, 1e-9);
  expect_near(r.obs[0], 0, 0);
  expect_near(r.obs[4], 1, 1e-6);
  step1(env, 0, 2, &o);
  assert_int_equal(o.status, CH_EPISODE_IN_PROGRESS);
  assert_int_equal(o.p.steps, steps + 1);
  assert_true(o.p.progress > progress);
  vt->destroy(env);
}

/* Deterministic pseudo-random actions, a function of car and step only. */
static void action(uint32_t car, uint32_t step, float *steer, float *speed) {
  uint64_t h = (uint64_t)car * 0x9e3779b97f4a7c15ull ^ (uint64_t)(step / 5) * 0xbf58476d1ce4e5b9ull;
  h ^= h >> 31, h *= 0x94d049bb133111ebull, h ^= h >> 29;
  *steer = (float)((double)(h & 0xffff) / 65535 * 60 - 30);
  *speed = (float)(0.5 + (double)((h >> 16) & 0xffff) / 65535 * 3);
}

/* Step every car of env for `steps` steps, resetting ended cars at i / num_cars. */
static void run_cars(void *env, uint32_t cars, uint32_t first_car, int steps, float *obs,
                     ch_env_params *par, int32_t *status, float *trace) {
  float steer[64], speed[64];
  ch_error err;
  for (uint32_t i = 0; i < cars; i++)
    assert_int_equal(vt->reset(env, i, &(ch_env_reset){(double)(first_car + i) / 64, 0, 0, 0, 0},
                               obs + i * OBS, NULL, par + i, &err),
                     CH_OK);
  for (int k = 0; k < steps; k++) {
    for (uint32_t i = 0; i < cars; i++) action(first_car + i, (uint32_t)k, &steer[i], &speed[i]);
    int rc = vt->step(env, steer, speed, NULL, obs, NULL, par, status, &err);
    if (rc) fail_msg("step %d: %s", k, err.message);
    for (uint32_t i = 0; i < cars; i++) {
      memcpy(trace + ((size_t)(first_car + i) * steps + k) * OBS, obs + i * OBS, OBS * sizeof *obs);
      if (status[i] != CH_EPISODE_IN_PROGRESS)
        assert_int_equal(vt->reset(env, i,
                                   &(ch_env_reset){(double)(first_car + i) / 64, 0, 0, 0, 0}, NULL,
                                   NULL, NULL, &err),
                         CH_OK);
    }
  }
}

static void test_determinism(void **state) {
  (void)state;
  enum { CARS = 4, STEPS = 400 };
  void *a = make_env(fx.bayside, ", \"num_cars\": 4"),
       *b = make_env(fx.bayside, ", \"num_cars\": 4");
  float obs[CARS * OBS];
  ch_env_params par[CARS];
  int32_t status[CARS];
  float *ta = calloc((size_t)CARS * STEPS * OBS, sizeof *ta);
  float *tb = calloc((size_t)CARS * STEPS * OBS, sizeof *tb);
  assert_true(ta && tb);
  run_cars(a, CARS, 0, STEPS, obs, par, status, ta);
  run_cars(b, CARS, 0, STEPS, obs, par, status, tb);
  assert_memory_equal(ta, tb, (size_t)CARS * STEPS * OBS * sizeof *ta);
  free(ta), free(tb);
  vt->destroy(a), vt->destroy(b);
}

static void test_batched_equals_single(void **state) {
  (void)state;
  enum { CARS = 64, STEPS = 200 };
  size_t n = (size_t)CARS * STEPS * OBS;
  float *batched = calloc(n, sizeof(float)), *single = calloc(n, sizeof(float));
  float obs[CARS * OBS];
  ch_env_params par[CARS];
  int32_t status[CARS];
  assert_true(batched && single);
  void *env = make_env(fx.bayside, ", \"num_cars\": 64");
  run_cars(env, CARS, 0, STEPS, obs, par, status, batched);
  vt->destroy(env);
  for (uint32_t i = 0; i < CARS; i++) {
    env = make_env(fx.bayside, "");
    run_cars(env, 1, i, STEPS, obs, par, status, single);
    vt->destroy(env);
  }
  assert_memory_equal(batched, single, n * sizeof(float));
  /* Some episodes ended on the way, so resets inside a batch were exercised. */
  free(batched), free(single);
}

static void test_active_mask(void **state) {
  (void)state;
  void *env = make_env(fx.bayside, ", \"num_cars\": 2");
  float obs[2 * OBS], before[OBS], steer[2] = {5, 5}, speed[2] = {2, 2};
  ch_env_params par[2];
  int32_t status[2] = {-1, -1};
  uint8_t active[2] = {1, 0};
  ch_error err;
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0, 0, 0, 0, 0}, obs, NULL, par, &err), CH_OK);
  assert_int_equal(
      vt->reset(env, 1, &(ch_env_reset){0, 0, 0, 0, 0}, obs + OBS, NULL, par + 1, &err), CH_OK);
  memcpy(before, obs + OBS, sizeof before);
  assert_int_equal(vt->step(env, steer, speed, active, obs, NULL, par, status, &err), CH_OK);
  assert_int_equal(status[0], CH_EPISODE_IN_PROGRESS);
  assert_int_equal(status[1], -1); /* not written */
  assert_int_equal(par[0].steps, 1);
  assert_int_equal(par[1].steps, 0);
  assert_memory_equal(before, obs + OBS, sizeof before);
  /* Stepping car 1 now gives what car 0 got. */
  active[0] = 0, active[1] = 1;
  assert_int_equal(vt->step(env, steer, speed, active, obs, NULL, par, status, &err), CH_OK);
  assert_memory_equal(obs, obs + OBS, sizeof before);
  vt->destroy(env);
}

/* One handle drives either way, chosen per episode. */
static void test_reversed_episode(void **state) {
  (void)state;
  void *env = make_env(fx.bayside, "");
  ch_env_spec sp;
  vt->spec(env, &sp);
  uint32_t n = sp.num_waypoints;
  double *wp = malloc(2 * n * sizeof *wp);
  assert_non_null(wp);
  assert_int_equal(vt->waypoints(env, wp, n), (int)n);
  car_out of, orv;
  ch_error err;
  reset1(env, 0, &of);
  assert_int_equal(of.p.is_reversed, 0);
  assert_int_equal(of.p.closest_waypoints[0], 0);
  assert_int_equal(of.p.closest_waypoints[1], 1);
  double fwd_heading = of.p.heading;
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0, 0, 1, 0, 0}, orv.obs, NULL, &orv.p, &err),
                   CH_OK);
  assert_int_equal(orv.p.is_reversed, 1);
  expect_near(orv.p.x, wp[0], 1e-9); /* a loop keeps its start line */
  expect_near(orv.p.y, wp[1], 1e-9);
  expect_near(fabs(remainder(orv.p.heading - fwd_heading, 360)), 180, 1);
  /* {behind, ahead} in the driving direction, as indices of the file's points. */
  assert_int_equal(orv.p.closest_waypoints[0], 0);
  assert_int_equal(orv.p.closest_waypoints[1], (int)n - 1);
  for (int k = 0; k < 40; k++) {
    double steer = atan(0.164 * 2 * orv.obs[5]) * 180 / PI - 25 * orv.obs[2] - 40 * orv.obs[3];
    step1(env, steer, 1.5, &orv);
    int b = orv.p.closest_waypoints[0], a = orv.p.closest_waypoints[1];
    assert_int_equal(a, (b + (int)n - 1) % (int)n);
    /* The car lies between them: heading from behind to ahead matches the car's. */
    double h = atan2(wp[2 * a + 1] - wp[2 * b + 1], wp[2 * a] - wp[2 * b]) * 180 / PI;
    assert_true(fabs(remainder(h - orv.p.heading, 360)) < 30);
  }
  assert_int_equal(orv.status, CH_EPISODE_IN_PROGRESS);
  assert_true(orv.p.progress > 5);
  assert_true(orv.p.closest_waypoints[0] > (int)n / 2); /* went down from the last point */
  /* And the next episode goes forward again. */
  reset1(env, 0, &of);
  assert_int_equal(of.p.is_reversed, 0);
  expect_near(of.p.heading, fwd_heading, 0);
  step1(env, 0, 1, &of);
  assert_true(of.p.progress > 0);
  free(wp);
  vt->destroy(env);
}

/* A reversed straight track starts at the file's far end and ends at its first point. */
static void test_reversed_straight(void **state) {
  (void)state;
  void *env = make_env(fx.straight, "");
  car_out o;
  ch_error err;
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0, 0, 1, 0, 0}, o.obs, NULL, &o.p, &err),
                   CH_OK);
  expect_near(o.p.x, 20, 1e-9);
  expect_near(fabs(o.p.heading), 180, 1e-9);
  assert_int_equal(o.p.closest_waypoints[0], 80);
  assert_int_equal(o.p.closest_waypoints[1], 79);
  o.status = CH_EPISODE_IN_PROGRESS;
  int n = 0;
  while (o.status == CH_EPISODE_IN_PROGRESS && n++ < 200) {
    step1(env, 0, 4, &o);
    if (o.status == CH_EPISODE_IN_PROGRESS)
      expect_near(o.p.progress, 100 * (20 - o.p.x) / 20, 1e-9);
  }
  assert_int_equal(o.status, CH_EPISODE_LAP_COMPLETE);
  assert_true(o.p.x <= 0);
  assert_int_equal(o.p.closest_waypoints[1], 0);
  vt->destroy(env);
}

static void test_start_offset(void **state) {
  (void)state;
  void *env = make_env(fx.big_circle, "");
  ch_env_params p;
  ch_error err;
  /* Counter-clockwise on a circle of radius 10: left of the centre line is inside. */
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0.25, 1.5, 0, 0, 0}, NULL, NULL, &p, &err),
                   CH_OK);
  expect_near(p.x, 0, 0.01);
  expect_near(p.y, 8.5, 1e-3);
  expect_near(p.distance_from_center, 1.5, 1e-3);
  assert_int_equal(p.is_left_of_center, 1);
  expect_near(fabs(remainder(p.heading - 180, 360)), 0, 0.5);
  expect_near(p.progress, 0, 0);
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0.25, -2, 0, 0, 0}, NULL, NULL, &p, &err),
                   CH_OK);
  expect_near(hypot(p.x, p.y), 12, 1e-3);
  assert_int_equal(p.is_left_of_center, 0);
  /* Reversed, left is outside. */
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0.25, 1, 1, 0, 0}, NULL, NULL, &p, &err),
                   CH_OK);
  expect_near(hypot(p.x, p.y), 11, 1e-3);
  assert_int_equal(p.is_left_of_center, 1);
  expect_near(p.y, -11, 1e-2); /* a quarter of the way clockwise from (10, 0) */
  /* Outside the borders, or not a number, is an error. */
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0.25, 3.2, 0, 0, 0}, NULL, NULL, &p, &err),
                   CH_ERANGE);
  expect_contains(err.message, "start_offset 3.2 m for car 0 is outside the track");
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0.25, NAN, 0, 0, 0}, NULL, NULL, &p, &err),
                   CH_ERANGE);
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0.25, 0, 2, 0, 0}, NULL, NULL, &p, &err),
                   CH_EINVAL);
  expect_contains(err.message, "reversed 2 for car 0 must be 0 or 1");
  vt->destroy(env);
}

static void test_start_heading_offset(void **state) {
  (void)state;
  void *env = make_env(fx.wide, ", \"start_heading_offset\": 30");
  car_out o;
  reset1(env, 0.1, &o);
  expect_near(o.p.heading, 30, 1e-9);
  expect_near(o.obs[3], sin(PI / 6), 1e-6);
  vt->destroy(env);
}

/* A simple line follower laps bayside at 1.8 m/s: the track's corners suit the car model. */
static void test_bayside_lap(void **state) {
  (void)state;
  void *env = make_env(fx.bayside, "");
  car_out o;
  reset1(env, 0, &o);
  int n = 0;
  while (o.status == CH_EPISODE_IN_PROGRESS && n++ < 1500) {
    double ff = atan(0.164 * 2 * o.obs[5]) * 180 / PI; /* obs[5] is curvature / 2 */
    double steer = ff - 25 * o.obs[2] - 40 * o.obs[3];
    step1(env, steer, 1.8, &o);
  }
  assert_int_equal(o.status, CH_EPISODE_LAP_COMPLETE);
  printf("# bayside lap at 1.8 m/s: %d steps (%.2f s)\n", o.p.steps, o.p.steps / 15.0);
  vt->destroy(env);
}

static void expect_bad_config(const char *cfg, int code, const char *needle) {
  void *env = (void *)1;
  ch_error err = {0};
  int rc = vt->create(cfg, &test_host, &env, &err);
  if (rc != code) fail_msg("create %s: rc %d (%s), expected %d", cfg, rc, err.message, code);
  assert_null(env);
  assert_int_equal(err.code, code);
  expect_contains(err.message, needle);
}

static void test_bad_config(void **state) {
  (void)state;
  char cfg[1200];
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"colour\": 1}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "unknown config key 'colour'");
  expect_bad_config("{}", CH_EINVAL, "config key 'track' is required");
  expect_bad_config("{\"num_cars\": 2}", CH_EINVAL, "'track'");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"num_cars\": 0}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "config key 'num_cars' must be an integer in 1..4096, got 0");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"num_cars\": 1.5}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "'num_cars'");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"min_speed\": \"fast\"}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL,
                    "config key 'min_speed' must be a number in [0, 4], got \"fast\"");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"reverse\": true}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "unknown config key 'reverse' (the direction is chosen per");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"substeps\": 0}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "'substeps'");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"max_steps\": -1}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "'max_steps'");
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"seed\": 2, \"seed\": 3}", fx.circle);
  expect_bad_config(cfg, CH_EINVAL, "config key 'seed' appears twice");
  expect_bad_config("{\"track\": 5}", CH_EINVAL, "config key 'track' must be a non-empty path");
  expect_bad_config("[1, 2]", CH_EINVAL, "config must be a JSON object");
  expect_bad_config("{\"track\": ", CH_EINVAL, "config is not valid JSON");
  expect_bad_config("{\"track\": \"/nonexistent/t.track\"}", CH_ENOTFOUND,
                    "/nonexistent/t.track: No such file or directory");
}

static void test_misuse(void **state) {
  (void)state;
  void *env = make_env(fx.straight, ", \"num_cars\": 2");
  float steer[2] = {0, 0}, speed[2] = {1, 1};
  int32_t status[2];
  ch_error err;
  assert_int_equal(vt->step(env, steer, speed, NULL, NULL, NULL, NULL, status, &err), CH_ESTATE);
  expect_contains(err.message, "car 0 was never reset");
  assert_int_equal(vt->reset(env, 2, &(ch_env_reset){0, 0, 0, 0, 0}, NULL, NULL, NULL, &err),
                   CH_ERANGE);
  expect_contains(err.message, "car 2 out of range (num_cars 2)");
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){1.0, 0, 0, 0, 0}, NULL, NULL, NULL, &err),
                   CH_ERANGE);
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){NAN, 0, 0, 0, 0}, NULL, NULL, NULL, &err),
                   CH_ERANGE);
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){-0.1, 0, 0, 0, 0}, NULL, NULL, NULL, &err),
                   CH_ERANGE);
  assert_int_equal(vt->recover(env, 1, NULL, NULL, NULL, &err), CH_ESTATE);
  assert_int_equal(vt->reset(env, 0, &(ch_env_reset){0, 0, 0, 0, 0}, NULL, NULL, NULL, &err),
                   CH_OK);
  assert_int_equal(vt->reset(env, 1, &(ch_env_reset){0, 0, 0, 0, 0}, NULL, NULL, NULL, &err),
                   CH_OK);
  steer[1] = NAN;
  assert_int_equal(vt->step(env, steer, speed, NULL, NULL, NULL, NULL, status, &err), CH_EINVAL);
  expect_contains(err.message, "car 1");
  assert_int_equal(vt->step(env, NULL, speed, NULL, NULL, NULL, NULL, status, &err), CH_EINVAL);
  steer[1] = 0;
  assert_int_equal(vt->step(env, steer, speed, NULL, NULL, NULL, NULL, NULL, &err), CH_OK);
  vt->destroy(env);
  /* The plugin exports its entry point and nothing else, not even the track library. */
  char path[1024];
  snprintf(path, sizeof path, "%s/env_sim2d.so", CHICANE_PLUGIN_BUILD_DIR);
  void *so = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(so);
  assert_non_null(dlsym(so, CH_PLUGIN_ENTRY_NAME));
  assert_null(dlsym(so, "ch_track_load"));
  assert_null(dlsym(so, "ch_sim2d_episode_step"));
  dlclose(so);
  /* The header names the plugin and its kind. */
  assert_int_equal(vt->header.kind, CH_PLUGIN_ENV);
  assert_int_equal(vt->header.struct_size, sizeof(ch_env_vtable));
  assert_string_equal(vt->header.name, "sim2d");
}

/* Not a timed test: prints a rough throughput figure for the record. */
static void test_throughput_report(void **state) {
  (void)state;
  enum { CARS = 256, STEPS = 2000 };
  void *env = make_env(fx.bayside, ", \"num_cars\": 256");
  float *obs = malloc(sizeof(float) * CARS * OBS), steer[CARS], speed[CARS];
  ch_env_params *par = malloc(sizeof *par * CARS);
  int32_t status[CARS];
  ch_error err;
  assert_true(obs && par);
  for (uint32_t i = 0; i < CARS; i++)
    vt->reset(env, i, &(ch_env_reset){(double)i / CARS, 0, 0, 0, 0}, obs + i * OBS, NULL, par + i,
              &err);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long ended = 0;
  for (int k = 0; k < STEPS; k++) {
    for (uint32_t i = 0; i < CARS; i++) {
      const float *o = obs + i * OBS;
      steer[i] = (float)(atan(0.328 * o[5]) * 57.3 - 25 * o[2] - 40 * o[3]);
      speed[i] = 1.5f;
    }
    assert_int_equal(vt->step(env, steer, speed, NULL, obs, NULL, par, status, &err), CH_OK);
    for (uint32_t i = 0; i < CARS; i++)
      if (status[i])
        ended++, vt->reset(env, i, &(ch_env_reset){(double)i / CARS, 0, 0, 0, 0}, obs + i * OBS,
                           NULL, par + i, &err);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("# sim2d throughput: %.0f car-steps/s (%d cars x %d steps, %ld episodes ended)\n",
         CARS * (double)STEPS / secs, CARS, STEPS, ended);
  free(obs), free(par);
  vt->destroy(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_and_waypoints),
      cmocka_unit_test(test_reset_state),
      cmocka_unit_test(test_straight_reaches_far_end),
      cmocka_unit_test(test_full_steering_goes_off_track),
      cmocka_unit_test(test_u_turn_is_reversed),
      cmocka_unit_test(test_stopped_car_is_immobilized),
      cmocka_unit_test(test_max_steps_is_time_up),
      cmocka_unit_test(test_progress_wraps_at_start_line),
      cmocka_unit_test(test_lateral_acceleration_cap),
      cmocka_unit_test(test_speed_ramps),
      cmocka_unit_test(test_recover_keeps_progress),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_batched_equals_single),
      cmocka_unit_test(test_active_mask),
      cmocka_unit_test(test_reversed_episode),
      cmocka_unit_test(test_reversed_straight),
      cmocka_unit_test(test_start_offset),
      cmocka_unit_test(test_start_heading_offset),
      cmocka_unit_test(test_bayside_lap),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_misuse),
      cmocka_unit_test(test_throughput_report),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
