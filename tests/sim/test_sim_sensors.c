/* test_sim_sensors.c -- sim2d sensors: camera, stereo, frame stacks, lidar and sector lidar. */
#include "sim_test.h"

#define W      160
#define H      120
#define SKY    255
#define GROUND 96
#define ROAD   48
#define BORDER 250
#define CENTRE 180

static char straight[64]; /* 20 m along +x, width 0.6 */
static char wide[64];     /* 20 m along +x, width 8 */
static char bayside[1024];

static int setup(void **state) {
  (void)state;
  vt = test_plugin_open("env_sim2d.so");
  sim_write_track(straight, "chicane-track 1\nname line\nloop no\nwidth 0.6\n", 81, sim_line_pt);
  sim_write_track(wide, "chicane-track 1\nname wide\nloop no\nwidth 8\n", 81, sim_line_pt);
  snprintf(bayside, sizeof bayside, "%s/tracks/bayside.track", CHICANE_SOURCE_DIR);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(straight), unlink(wide);
  return 0;
}

static void expect_spec(const char *sensors_and_more, uint32_t obs, uint32_t w, uint32_t h,
                        uint32_t channels) {
  char fmt[512];
  snprintf(fmt, sizeof fmt, "{\"track\": \"%%s\", %s}", sensors_and_more);
  void *env = sim_env(fmt, straight);
  ch_env_spec s;
  vt->spec(env, &s);
  if (s.obs_size != obs || s.image_width != w || s.image_height != h ||
      s.image_channels != channels)
    fail_msg("%s: obs %u image %ux%ux%u, expected %u %ux%ux%u", sensors_and_more, s.obs_size,
             s.image_width, s.image_height, s.image_channels, obs, w, h, channels);
  assert_int_equal(s.max_objects, 0);
  vt->destroy(env);
}

static void test_spec_per_sensor(void **state) {
  (void)state;
  expect_spec("\"sensors\": [\"state\"]", 11, 0, 0, 0);
  expect_spec("\"sensors\": [\"camera\"]", 0, 160, 120, 1);
  expect_spec("\"sensors\": [\"FRONT_FACING_CAMERA\"], \"camera\": {\"downscale\": 2}", 0, 80, 60,
              1);
  expect_spec("\"sensors\": [\"camera\"], \"camera\": {\"downscale\": 4, \"stack_size\": 3}", 0, 40,
              30, 3);
  expect_spec("\"sensors\": [\"STEREO_CAMERAS\", \"state\"]", 11, 160, 120, 2);
  expect_spec("\"sensors\": [\"stereo\"], \"camera\": {\"stack_size\": 4}", 0, 160, 120, 8);
  expect_spec("\"sensors\": [\"state\", \"lidar\"]", 75, 0, 0, 0);
  expect_spec("\"sensors\": [\"LIDAR\"]", 64, 0, 0, 0);
  expect_spec("\"sensors\": [\"sector_lidar\", \"state\"]", 19, 0, 0, 0);
  expect_spec("\"sensors\": [\"FRONT_FACING_CAMERA\", \"SECTOR_LIDAR\"]", 8, 160, 120, 1);
}

/* One frame of car 0 at start_fraction f, offset off, after a reset. */
static void frame_at(void *env, double f, double off, uint8_t *img) {
  sim_reset(env, 0, (ch_env_reset){f, off, 0, 0, 0}, NULL, img, NULL);
}

static int count(const uint8_t *img, int r0, int r1, int c0, int c1, uint8_t v) {
  int n = 0;
  for (int r = r0; r < r1; r++)
    for (int c = c0; c < c1; c++) n += img[r * W + c] == v;
  return n;
}

/* How many pixels differ from their mirror image across the middle column. */
static int asymmetry(const uint8_t *img, int w, int h) {
  int n = 0;
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w / 2; c++) n += img[r * w + c] != img[r * w + w - 1 - c];
  return n;
}

static void test_camera_straight_is_symmetric(void **state) {
  (void)state;
  void *env = sim_env("{\"track\": \"%s\", \"sensors\": [\"camera\"]}", straight);
  uint8_t img[W * H];
  frame_at(env, 0.25, 0, img);
  int bad = asymmetry(img, W, H);
  if (bad > W * H / 100) fail_msg("%d of %d pixels differ from their mirror image", bad, W * H / 2);
  /* The mount: pitched 15 degrees down with a 1.13 rad field, the horizon falls between rows
  ** 25 and 26 (ground 47 m away at row 26). */
  assert_int_equal(count(img, 0, 26, 0, W, SKY), 26 * W);
  assert_int_equal(count(img, 26, 27, 0, W, SKY), 0);
  /* Near the car: track, the centre line in the middle, borders and grass to either side. */
  uint8_t mid = img[(H - 1) * W + W / 2];
  assert_true(mid == ROAD || mid == CENTRE);
  assert_true(count(img, 60, H, W / 2 - 8, W / 2 + 8, CENTRE) > 20);
  assert_true(count(img, 40, H, 0, W / 2, BORDER) > 50);
  assert_true(count(img, 40, H, W / 2, W, BORDER) > 50);
  assert_true(count(img, 26, 60, 0, W / 2, GROUND) > 500);
  assert_true(count(img, 26, 60, W / 2, W, GROUND) > 500);
  assert_true(count(img, 40, H, 0, W, ROAD) > 2000);
  /* Moved left of the centre line, the picture is no longer symmetric. */
  frame_at(env, 0.25, 0.12, img);
  assert_true(asymmetry(img, W, H) > W * H / 20);
  vt->destroy(env);
}

/* Turned left of the track's direction, the track lies right of the middle. */
static void test_camera_turned(void **state) {
  (void)state;
  void *env =
      sim_env("{\"track\": \"%s\", \"sensors\": [\"camera\"], \"start_heading_offset\": 20}", wide);
  uint8_t img[W * H];
  frame_at(env, 0.1, 0, img);
  /* The centre line (the dashes) is the only CENTRE-coloured thing. */
  long sum = 0, n = 0;
  for (int r = 30; r < H; r++)
    for (int c = 0; c < W; c++)
      if (img[r * W + c] == CENTRE) sum += c, n++;
  assert_true(n > 20);
  assert_true((double)sum / n > W / 2 + 20);
  vt->destroy(env);
}

static int is_box(uint8_t v) {
  return v == 205 || v == 225 || v == 240;
}

static void test_camera_sees_box(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"sensors\": [\"camera\"], \"race_type\": "
                    "\"object_avoidance\", \"objects\": {\"placement\": \"fixed\", "
                    "\"positions\": [{\"progress\": 15, \"lane\": \"left\"}]}}";
  void *env = sim_env(fmt, straight),
       *plain = sim_env("{\"track\": \"%s\", \"sensors\": [\"camera\"]}", straight);
  uint8_t img[W * H], ref[W * H];
  frame_at(env, 0, 0, img);
  frame_at(plain, 0, 0, ref);
  int left = 0, right = 0, changed = 0;
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++) {
      int k = r * W + c;
      if (is_box(img[k])) *(c < W / 2 ? &left : &right) += 1;
      if (img[k] != ref[k]) {
        changed++;
        if (!is_box(img[k]))
          fail_msg("pixel (%d, %d) changed to %d, not a box shade", r, c, img[k]);
      }
    }
  /* A box 3 m ahead (0.4 m wide, 0.25 m tall) in the left lane: some dozens of pixels, most of
  ** them left of the middle, and the box stands above the horizon too (taller than the camera). */
  assert_true(changed > 30);
  assert_true(left > 3 * right);
  assert_true(count(img, 0, 26, 0, W, SKY) < 26 * W);
  vt->destroy(env), vt->destroy(plain);
}

/* The two stereo cameras sit symmetrically about the car's axis on the centre line. */
static void test_stereo_mirror(void **state) {
  (void)state;
  void *env = sim_env("{\"track\": \"%s\", \"sensors\": [\"stereo\"]}", straight);
  uint8_t img[2 * W * H];
  frame_at(env, 0.25, 0, img);
  const uint8_t *left = img, *right = img + W * H;
  int differ = 0, unmirrored = 0;
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++) {
      differ += left[r * W + c] != right[r * W + c];
      unmirrored += left[r * W + c] != right[r * W + W - 1 - c];
    }
  assert_true(differ > 100); /* 6 cm apart: the near lines move */
  if (unmirrored > W * H / 100)
    fail_msg("%d pixels differ from the mirrored other camera", unmirrored);
  /* The left camera sees the centre line right of its middle. */
  long sum = 0, n = 0;
  for (int r = 80; r < H; r++)
    for (int c = 0; c < W; c++)
      if (left[r * W + c] == CENTRE) sum += c, n++;
  assert_true(n > 0 && (double)sum / n > W / 2);
  vt->destroy(env);
}

static void test_downscale(void **state) {
  (void)state;
  void *env = sim_env(
      "{\"track\": \"%s\", \"sensors\": [\"camera\"], \"camera\": {\"downscale\": 2}}", straight);
  uint8_t img[80 * 60];
  frame_at(env, 0.25, 0, img);
  int sky = 0;
  for (int k = 0; k < 80 * 60; k++) sky += img[k] == SKY;
  assert_int_equal(sky, 13 * 80); /* the horizon at the same height: 26 of 120 rows */
  assert_true(asymmetry(img, 80, 60) < 80 * 60 / 50);
  vt->destroy(env);
}

/* A deeper stack holds the newest frames, oldest first, each as a stack of one renders it. */
static void test_frame_stack(void **state) {
  (void)state;
  const char *cfg1 =
      "{\"track\": \"%s\", \"sensors\": [\"camera\"], \"camera\": {\"downscale\": 2}}";
  const char *cfg3 =
      "{\"track\": \"%s\", \"sensors\": [\"camera\"], \"camera\": {\"downscale\": 2, "
      "\"stack_size\": 3}}";
  enum { P = 80 * 60 };
  void *one = sim_env(cfg1, straight), *three = sim_env(cfg3, straight);
  uint8_t frames[6][P], stack[3 * P];
  sim_reset(one, 0, (ch_env_reset){0.1, 0, 0, 0, 0}, NULL, frames[0], NULL);
  sim_reset(three, 0, (ch_env_reset){0.1, 0, 0, 0, 0}, NULL, stack, NULL);
  for (int k = 0; k < 3; k++) assert_memory_equal(stack + k * P, frames[0], P);
  for (int n = 1; n < 6; n++) {
    sim_step1(one, 0, 4, NULL, frames[n], NULL);
    /* Skipping the image now and then must not break the stack. */
    sim_step1(three, 0, 4, NULL, n == 2 ? NULL : stack, NULL);
    if (n == 2) continue;
    for (int k = 0; k < 3; k++) {
      int want = n - 2 + k < 0 ? 0 : n - 2 + k;
      if (memcmp(stack + k * P, frames[want], P) != 0)
        fail_msg("after step %d, plane %d is not frame %d", n, k, want);
    }
  }
  assert_true(memcmp(frames[5], frames[0], P) != 0); /* the car did move */
  vt->destroy(one), vt->destroy(three);
}

/* ------------------------------------------------------------------------------------------ */
/* Lidar                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Distance from (ox, oy) along angle a to the rectangle centred at (bx, by), axis-aligned,
** half sizes hx, hy; HUGE_VAL when missed (an independent check of the plugin's ray cast). */
static double ray_box(double ox, double oy, double a, double bx, double by, double hx, double hy) {
  double dx = cos(a), dy = sin(a), t0 = 0, t1 = HUGE_VAL;
  double lo[2] = {bx - hx - ox, by - hy - oy}, hi[2] = {bx + hx - ox, by + hy - oy},
         d[2] = {dx, dy};
  for (int k = 0; k < 2; k++) {
    if (fabs(d[k]) < 1e-15) {
      if (lo[k] > 0 || hi[k] < 0) return HUGE_VAL;
      continue;
    }
    double p = lo[k] / d[k], q = hi[k] / d[k];
    if (p > q) {
      double tmp = p;
      p = q, q = tmp;
    }
    t0 = fmax(t0, p), t1 = fmin(t1, q);
  }
  return t0 <= t1 ? t0 : HUGE_VAL;
}

static double beam_angle(int k) {
  return (-150 + 300.0 * k / 63) * PI / 180;
}

static void test_lidar_box_ahead(void **state) {
  (void)state;
  /* A 0.4 x 0.5 box centred 5 m ahead in the left lane (y = 0.15 on a 0.6 m track). */
  const char *fmt = "{\"track\": \"%s\", \"sensors\": [\"state\", \"lidar\"], \"race_type\": "
                    "\"object_avoidance\", \"objects\": {\"placement\": \"fixed\", "
                    "\"positions\": [{\"progress\": 25, \"lane\": \"left\"}]}}";
  void *env = sim_env(fmt, straight);
  float obs[75];
  ch_env_params p;
  sim_reset(env, 0, (ch_env_reset){0, 0, 0, 0, 0}, obs, NULL, &p);
  assert_int_equal(p.num_objects, 1);
  expect_near(p.objects[0].x, 5, 1e-9);
  expect_near(p.objects[0].y, 0.15, 1e-9);
  const float *lidar = obs + 11;
  /* Beam 32 points 2.38 degrees left: it meets the near face, 4.75 m ahead. */
  expect_near(lidar[32] * 12, 4.75 / cos(beam_angle(32)), 1e-4);
  expect_near(lidar[31], 1, 0); /* 2.38 degrees right passes beside it */
  for (int k = 0; k < 64; k++) {
    double d = ray_box(0, 0, beam_angle(k), 5, 0.15, 0.25, 0.2);
    double want = d > 12 ? 1 : fmax(d, 0.15) / 12;
    if (fabs(lidar[k] - want) > 1e-5) fail_msg("beam %d: %g, expected %g", k, lidar[k], want);
  }
  /* Driving up to it, the reading shrinks by the distance driven. */
  for (int n = 0; n < 10; n++) sim_step1(env, 0, 2, obs, NULL, &p);
  expect_near(p.y, 0, 0);
  assert_true(p.x > 0.5);
  expect_near(lidar[32] * 12, (4.75 - p.x) / cos(beam_angle(32)), 1e-4);
  vt->destroy(env);
}

static void test_lidar_max_range_and_empty(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"sensors\": [\"lidar\"], \"lidar\": {\"max_range\": 1}, "
                    "\"race_type\": \"object_avoidance\", \"objects\": {\"placement\": \"fixed\", "
                    "\"positions\": [{\"progress\": 25, \"lane\": \"left\"}]}}";
  void *env = sim_env(fmt, straight);
  float obs[64];
  /* Box 0.8 m ahead of the car's reference point (near face at 0.55 m): metres, as DeepRacer. */
  sim_reset(env, 0, (ch_env_reset){0.21, 0, 0, 0, 0}, obs, NULL, NULL);
  for (int k = 0; k < 64; k++) {
    double d = ray_box(4.2, 0, beam_angle(k), 5, 0.15, 0.25, 0.2);
    expect_near(obs[k], fmin(fmax(d, 0.15), 1), 1e-5);
  }
  expect_near(obs[32], 0.55 / cos(beam_angle(32)), 1e-5);
  vt->destroy(env);
  /* A time trial has nothing to see. */
  env = sim_env("{\"track\": \"%s\", \"sensors\": [\"lidar\"]}", straight);
  sim_reset(env, 0, (ch_env_reset){0.2, 0, 0, 0, 0}, obs, NULL, NULL);
  for (int k = 0; k < 64; k++) expect_near(obs[k], 1, 0);
  vt->destroy(env);
}

/* DeepRacer's sectors: 8 groups of 8 beams, 1 when the nearest hit is under 0.5 m. */
static void test_sector_lidar(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"sensors\": [\"SECTOR_LIDAR\", \"state\"], "
                    "\"race_type\": \"object_avoidance\", \"objects\": {\"placement\": \"fixed\", "
                    "\"positions\": [{\"progress\": 25, \"lane\": \"left\"}]}}";
  void *env = sim_env(fmt, straight);
  float obs[19];
  double xs[3] = {4.3, 4.4, 3.0};
  for (int t = 0; t < 3; t++) {
    sim_reset(env, 0, (ch_env_reset){xs[t] / 20, 0, 0, 0, 0}, obs, NULL, NULL);
    int ones = 0;
    for (int s = 0; s < 8; s++) {
      double m = HUGE_VAL;
      for (int k = 8 * s; k < 8 * s + 8; k++)
        m = fmin(m, fmax(0.15, ray_box(xs[t], 0, beam_angle(k), 5, 0.15, 0.25, 0.2)));
      float want = m < 0.5 ? 1.0f : 0.0f;
      if (obs[11 + s] != want)
        fail_msg("car at x %g: sector %d = %g, expected %g", xs[t], s, obs[11 + s], want);
      ones += want == 1.0f;
    }
    if (t == 0) assert_true(ones >= 2); /* the box spans the sectors either side of ahead */
    if (t == 2) assert_int_equal(ones, 0);
  }
  vt->destroy(env);
}

/* Bot cars are seen too, and move. */
static void test_lidar_sees_bots(void **state) {
  (void)state;
  const char *fmt =
      "{\"track\": \"%s\", \"sensors\": [\"lidar\"], \"race_type\": \"head_to_head\", "
      "\"bots\": {\"count\": 1, \"speed\": 0.5}}";
  void *env = sim_env(fmt, wide);
  float obs[64];
  ch_env_params p;
  int seen = 0;
  for (uint64_t seed = 1; seed < 100 && !seen; seed++) {
    sim_reset(env, 0, (ch_env_reset){0, 0, 0, 0, seed}, obs, NULL, &p);
    for (int n = 0; n < 2; n++) {
      assert_int_equal(p.num_objects, 1);
      const ch_env_object *b = &p.objects[0];
      assert_int_equal(b->kind, CH_OBJECT_BOT_CAR);
      for (int k = 0; k < 64; k++) {
        double d = ray_box(p.x, p.y, beam_angle(k), b->x, b->y, 0.162, 0.098);
        expect_near(obs[k] * 12, fmin(fmax(d, 0.15), 12), 1e-5);
        seen += d < 12;
      }
      double was = b->x;
      sim_step1(env, 0, 0.1, obs, NULL, &p); /* the bot moves on at 0.5 m/s */
      expect_near(p.objects[0].x - was, 0.5 / 15, 1e-9);
    }
  }
  assert_true(seen);
  vt->destroy(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_per_sensor),
      cmocka_unit_test(test_camera_straight_is_symmetric),
      cmocka_unit_test(test_camera_turned),
      cmocka_unit_test(test_camera_sees_box),
      cmocka_unit_test(test_stereo_mirror),
      cmocka_unit_test(test_downscale),
      cmocka_unit_test(test_frame_stack),
      cmocka_unit_test(test_lidar_box_ahead),
      cmocka_unit_test(test_lidar_max_range_and_empty),
      cmocka_unit_test(test_sector_lidar),
      cmocka_unit_test(test_lidar_sees_bots),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
