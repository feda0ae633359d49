/* test_sim_race.c -- sim2d race types: boxes, bot cars, crashes, objects in params, determinism. */
#include "sim_test.h"

static char straight[64]; /* 20 m along +x, width 0.6 */
static char circle[64];   /* loop: radius 10, width 6, counter-clockwise, 62.83 m */
static char bayside[1024];

static int setup(void **state) {
  (void)state;
  vt = test_plugin_open("env_sim2d.so");
  sim_write_track(straight, "chicane-track 1\nname line\nloop no\nwidth 0.6\n", 81, sim_line_pt);
  sim_write_track(circle, "chicane-track 1\nname big\nloop yes\nwidth 6\n", 400, sim_circle10_pt);
  snprintf(bayside, sizeof bayside, "%s/tracks/bayside.track", CHICANE_SOURCE_DIR);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(straight), unlink(circle);
  return 0;
}

static double wrap(double d, double len) {
  d = fmod(d, len);
  return d < 0 ? d + len : d;
}

/* ------------------------------------------------------------------------------------------ */
/* Boxes                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void test_random_boxes(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
                    "{\"count\": 5, \"min_spacing\": 3, \"start_clearance\": 4}}";
  void *env = sim_env(fmt, circle), *twin = sim_env(fmt, circle);
  ch_env_spec sp;
  vt->spec(env, &sp);
  assert_int_equal(sp.max_objects, 5);
  double len = sp.track_length, first[2] = {0, 0};
  int lanes[2] = {0, 0};
  for (uint64_t seed = 1; seed <= 60; seed++) {
    ch_env_params p, q;
    double start = (double)(seed % 7) / 7;
    sim_reset(env, 0, (ch_env_reset){start, 0, 0, 0, seed}, NULL, NULL, &p);
    sim_reset(twin, 0, (ch_env_reset){start, 0, 0, 0, seed}, NULL, NULL, &q);
    assert_int_equal(p.num_objects, 5);
    assert_memory_equal(p.objects, q.objects, 5 * sizeof(ch_env_object)); /* seeded */
    for (int k = 0; k < 5; k++) {
      const ch_env_object *o = &p.objects[k];
      assert_int_equal(o->kind, CH_OBJECT_BOX);
      expect_near(o->speed, 0, 0);
      /* In a lane: half way to the border (3 m), inside = left when driving anticlockwise. */
      expect_near(hypot(o->x, o->y), o->is_left_of_center ? 8.5 : 11.5, 2e-3);
      lanes[o->is_left_of_center]++;
      expect_near(remainder(atan2(o->y, o->x) * 10 - o->distance, len), 0, 5e-3);
      expect_near(fabs(remainder(o->heading - (atan2(o->y, o->x) * 180 / PI + 90), 360)), 0, 0.5);
      /* Clear of the start, ahead and behind. */
      double d = wrap(o->distance - start * len, len);
      if (d < 4 - 1e-9 || d > len - 4 + 1e-9)
        fail_msg("seed %llu: box %d is %g m from the start", (unsigned long long)seed, k, d);
      for (int m = 0; m < k; m++) {
        double gap = wrap(o->distance - p.objects[m].distance, len);
        if (fmin(gap, len - gap) < 3 - 1e-9)
          fail_msg("seed %llu: boxes %d and %d are %g m apart", (unsigned long long)seed, m, k,
                   fmin(gap, len - gap));
      }
    }
    if (seed <= 2) first[seed - 1] = p.objects[0].distance;
  }
  assert_true(first[0] != first[1]); /* another seed, other places */
  assert_true(lanes[0] > 50 && lanes[1] > 50);
  vt->destroy(env), vt->destroy(twin);
}

static void test_fixed_boxes(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
                    "{\"placement\": \"fixed\", \"positions\": [{\"progress\": 25, \"lane\": "
                    "\"left\"}, {\"progress\": 60, \"lane\": \"right\"}]}}";
  void *env = sim_env(fmt, straight);
  ch_env_params p;
  for (uint64_t seed = 0; seed < 3; seed++) {
    sim_reset(env, 0, (ch_env_reset){0, 0, 0, 0, seed}, NULL, NULL, &p);
    assert_int_equal(p.num_objects, 2);
    expect_near(p.objects[0].x, 5, 1e-9);
    expect_near(p.objects[0].y, 0.15, 1e-9);
    expect_near(p.objects[1].x, 12, 1e-9);
    expect_near(p.objects[1].y, -0.15, 1e-9);
    assert_int_equal(p.objects[0].is_left_of_center, 1);
    assert_int_equal(p.objects[1].is_left_of_center, 0);
    expect_near(p.objects[1].distance, 12, 1e-9);
    expect_near(p.objects[1].heading, 0, 1e-9);
  }
  /* Positions are in the driving direction: reversed, progress 25 is 5 m from the far end and
  ** the left lane is on the other side. */
  sim_reset(env, 0, (ch_env_reset){0, 0, 1, 0, 0}, NULL, NULL, &p);
  expect_near(p.objects[0].x, 15, 1e-9);
  expect_near(p.objects[0].y, -0.15, 1e-9);
  expect_near(p.objects[0].distance, 5, 1e-9);
  expect_near(fabs(p.objects[0].heading), 180, 1e-9);
  vt->destroy(env);
}

/* On a straight track random boxes go ahead of the start, as many as fit. */
static void test_random_boxes_straight(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
                    "{\"count\": 4, \"min_spacing\": 2, \"start_clearance\": 1}}";
  void *env = sim_env(fmt, straight);
  ch_env_params p;
  sim_reset(env, 0, (ch_env_reset){0.5, 0, 0, 0, 3}, NULL, NULL, &p);
  assert_int_equal(p.num_objects, 4);
  for (int k = 0; k < 4; k++) {
    assert_true(p.objects[k].x >= 11 - 1e-9 && p.objects[k].x <= 20);
    if (k) assert_true(p.objects[k].x - p.objects[k - 1].x >= 2 - 1e-9);
  }
  sim_reset(env, 0, (ch_env_reset){0.8, 0, 0, 0, 3}, NULL, NULL, &p);
  assert_int_equal(p.num_objects, 2); /* 16 + 1 .. 20: room for two 2 m apart */
  sim_reset(env, 0, (ch_env_reset){0.96, 0, 0, 0, 3}, NULL, NULL, &p);
  assert_int_equal(p.num_objects, 0);
  vt->destroy(env);
}

static const char *one_box = "{\"track\": \"%s\", \"race_type\": \"object_avoidance\", "
                             "\"objects\": {\"placement\": \"fixed\", \"size\": [0.3, 0.5], "
                             "\"positions\": [{\"progress\": 25, \"lane\": \"left\"}]}}";

/* Driving into a box in the car's lane ends the episode the step the footprints touch. */
static void test_crash_into_box(void **state) {
  (void)state;
  void *env = sim_env(one_box, straight);
  ch_env_params p;
  sim_reset(env, 0, (ch_env_reset){0, 0.15, 0, 0, 0}, NULL, NULL, &p);
  double last_x = p.x;
  int32_t status = CH_EPISODE_IN_PROGRESS;
  int n = 0;
  while (status == CH_EPISODE_IN_PROGRESS && n++ < 100) {
    last_x = p.x;
    status = sim_step1(env, 0, 2, NULL, NULL, &p);
  }
  assert_int_equal(status, CH_EPISODE_CRASHED);
  assert_int_equal(p.episode_status, CH_EPISODE_CRASHED);
  assert_int_equal(p.is_crashed, 1);
  assert_true(p.x + 0.162 >= 4.75);   /* the front reached the box */
  assert_true(last_x + 0.162 < 4.75); /* and had not a step before */
  assert_int_equal(p.all_wheels_on_track, 1);
  int steps = p.steps;
  double progress = p.progress;
  /* recover puts it on the centre line past the box; progress counts the skip. */
  ch_error err;
  ch_env_params r;
  assert_int_equal(vt->recover(env, 0, NULL, NULL, &r, &err), CH_OK);
  assert_int_equal(r.episode_status, CH_EPISODE_IN_PROGRESS);
  assert_int_equal(r.is_crashed, 0);
  assert_int_equal(r.steps, steps);
  expect_near(r.y, 0, 1e-9);
  assert_true(r.x - 0.162 > 5.25);
  expect_near(r.progress, progress + 100 * (r.x - p.x) / 20, 1e-6);
  status = sim_step1(env, 0, 2, NULL, NULL, &p);
  assert_int_equal(status, CH_EPISODE_IN_PROGRESS);
  vt->destroy(env);
}

/* In the other lane the car passes the same box. */
static void test_pass_box_in_other_lane(void **state) {
  (void)state;
  void *env = sim_env(one_box, straight);
  ch_env_params p;
  sim_reset(env, 0, (ch_env_reset){0, -0.15, 0, 0, 0}, NULL, NULL, &p);
  assert_int_equal(p.closest_objects[0], -1);
  assert_int_equal(p.closest_objects[1], 0);
  int32_t status = CH_EPISODE_IN_PROGRESS;
  while (status == CH_EPISODE_IN_PROGRESS && p.x < 8) status = sim_step1(env, 0, 2, NULL, NULL, &p);
  assert_int_equal(status, CH_EPISODE_IN_PROGRESS);
  assert_int_equal(p.is_crashed, 0);
  assert_int_equal(p.closest_objects[0], 0);
  assert_int_equal(p.closest_objects[1], -1);
  vt->destroy(env);
}

/* On a loop every box is ahead and behind: the nearer way round counts. */
static void test_closest_objects_loop(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
                    "{\"placement\": \"fixed\", \"positions\": [{\"progress\": 20, \"lane\": "
                    "\"left\"}, {\"progress\": 50, \"lane\": \"right\"}, {\"progress\": 80, "
                    "\"lane\": \"left\"}]}}";
  void *env = sim_env(fmt, circle);
  ch_env_params p;
  sim_reset(env, 0, (ch_env_reset){0.3, 0, 0, 0, 0}, NULL, NULL, &p);
  assert_int_equal(p.closest_objects[0], 0);
  assert_int_equal(p.closest_objects[1], 1);
  sim_reset(env, 0, (ch_env_reset){0.9, 0, 0, 0, 0}, NULL, NULL, &p);
  assert_int_equal(p.closest_objects[0], 2);
  assert_int_equal(p.closest_objects[1], 0);
  sim_reset(env, 0, (ch_env_reset){0.05, 0, 0, 0, 0}, NULL, NULL, &p);
  assert_int_equal(p.closest_objects[0], 2);
  assert_int_equal(p.closest_objects[1], 0);
  vt->destroy(env);
}

/* ------------------------------------------------------------------------------------------ */
/* Bot cars                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void test_bots_move_at_their_speed(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"head_to_head\", "
                    "\"bots\": {\"count\": 3, \"speed\": 1.5, \"min_spacing\": 5}}";
  void *env = sim_env(fmt, circle);
  ch_env_spec sp;
  vt->spec(env, &sp);
  assert_int_equal(sp.max_objects, 3);
  ch_env_params p;
  ch_env_object before[3];
  sim_reset(env, 0, (ch_env_reset){0, 0, 0, 0, 11}, NULL, NULL, &p);
  assert_int_equal(p.num_objects, 3);
  for (int n = 1; n <= 40; n++) {
    memcpy(before, p.objects, sizeof before);
    assert_int_equal(sim_step1(env, 0, 0.1, NULL, NULL, &p), CH_EPISODE_IN_PROGRESS);
    for (int k = 0; k < 3; k++) {
      const ch_env_object *o = &p.objects[k];
      assert_int_equal(o->kind, CH_OBJECT_BOT_CAR);
      expect_near(o->speed, 1.5, 0);
      expect_near(wrap(o->distance - before[k].distance, sp.track_length), 0.1, 1e-9);
      expect_near(hypot(o->x, o->y), o->is_left_of_center ? 8.5 : 11.5, 2e-3);
      assert_int_equal(o->is_left_of_center, before[k].is_left_of_center); /* no lane changes */
      if (k)
        assert_true(wrap(o->distance - p.objects[k - 1].distance, sp.track_length) >= 5 - 1e-9);
    }
  }
  vt->destroy(env);
}

static void test_bot_lane_changes(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"head_to_head\", "
                    "\"bots\": {\"count\": 1, \"speed\": 1, \"lane_changes\": true, "
                    "\"min_lane_change_interval\": 1, \"max_lane_change_interval\": 1, "
                    "\"lane_change_distance\": 1}}";
  void *env = sim_env(fmt, circle);
  ch_env_params p;
  /* The car creeps along near the inner border, out of the bot's way. */
  sim_reset(env, 0, (ch_env_reset){0, 2.6, 0, 0, 5}, NULL, NULL, &p);
  int lane = p.objects[0].is_left_of_center, changes = 0, mid = 0;
  double r0 = hypot(p.objects[0].x, p.objects[0].y);
  for (int n = 1; n <= 90; n++) {
    assert_int_equal(sim_step1(env, 0, 0.1, NULL, NULL, &p), CH_EPISODE_IN_PROGRESS);
    const ch_env_object *o = &p.objects[0];
    double r = hypot(o->x, o->y), tangent = atan2(o->y, o->x) * 180 / PI + 90;
    if (fabs(r - 10) < 0.5) {
      mid++; /* crossing the centre line: the heading turns towards the other lane */
      assert_true(fabs(remainder(o->heading - tangent, 360)) > 3);
    }
    if (o->is_left_of_center != lane) {
      changes++;
      lane = o->is_left_of_center;
      /* 1 s in lane, then a change over 1 m at 1 m/s: it crosses the centre after 1.5 s. */
      if (changes == 1) assert_true(n >= 22 && n <= 24);
    }
    if (n == 30) expect_near(r, r0 < 10 ? 11.5 : 8.5, 2e-3); /* arrived after 2 s */
  }
  assert_int_equal(changes, 3); /* at 1.5, 3.5 and 5.5 s */
  assert_true(mid > 0);
  vt->destroy(env);
}

/* A parked bot (speed 0) in the car's lane on a straight: the car runs into it. */
static void test_crash_into_bot(void **state) {
  (void)state;
  const char *fmt = "{\"track\": \"%s\", \"race_type\": \"head_to_head\", \"bots\": "
                    "{\"count\": 1, \"speed\": 0, \"start_clearance\": 3}}";
  void *env = sim_env(fmt, straight);
  ch_env_params p;
  sim_reset(env, 0, (ch_env_reset){0, 0, 0, 0, 9}, NULL, NULL, &p);
  double lane = p.objects[0].y, bot_x = p.objects[0].x;
  assert_true(bot_x >= 3);
  sim_reset(env, 0, (ch_env_reset){0, lane, 0, 0, 9}, NULL, NULL, &p);
  expect_near(p.objects[0].x, bot_x, 0);
  int32_t status = CH_EPISODE_IN_PROGRESS;
  while (status == CH_EPISODE_IN_PROGRESS) status = sim_step1(env, 0, 3, NULL, NULL, &p);
  assert_int_equal(status, CH_EPISODE_CRASHED);
  assert_true(p.x + 0.162 >= bot_x - 0.162 && p.x < bot_x);
  ch_error err;
  assert_int_equal(vt->recover(env, 0, NULL, NULL, &p, &err), CH_OK);
  assert_true(p.x - 0.162 > bot_x + 0.162);
  vt->destroy(env);
}

/* ------------------------------------------------------------------------------------------ */
/* Determinism and configuration                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Everything a handle gives out over a run of resets and steps, as bytes. */
typedef struct trace {
  unsigned char *data;
  size_t len, cap;
} trace;

static void put(trace *t, const void *p, size_t n) {
  if (t->len + n > t->cap) {
    t->cap = 2 * (t->len + n);
    t->data = realloc(t->data, t->cap);
    assert_non_null(t->data);
  }
  memcpy(t->data + t->len, p, n);
  t->len += n;
}

static void put_params(trace *t, const ch_env_params *p, uint32_t cars) {
  for (uint32_t i = 0; i < cars; i++) {
    ch_env_params q = p[i];
    put(t, q.objects, q.num_objects * sizeof(ch_env_object));
    q.objects = NULL;
    put(t, &q, sizeof q);
  }
}

static void run(const char *fmt, const char *track, trace *t) {
  enum { CARS = 3, STEPS = 150 };
  void *env = sim_env(fmt, track);
  ch_env_spec sp;
  vt->spec(env, &sp);
  size_t img = (size_t)sp.image_width * sp.image_height * sp.image_channels;
  float *obs = calloc((size_t)CARS * sp.obs_size + 1, sizeof(float));
  uint8_t *image = calloc((size_t)CARS * img + 1, 1);
  ch_env_params par[CARS];
  memset(par, 0, sizeof par);
  int32_t status[CARS];
  assert_true(obs && image);
  for (uint32_t i = 0; i < CARS; i++)
    sim_reset(env, i, (ch_env_reset){0.3 * i, 0.1 * ((int)i - 1), (int32_t)(i & 1), 0, 100 + i},
              obs + i * sp.obs_size, image + i * img, par + i);
  for (int n = 0; n < STEPS; n++) {
    float steer[CARS], speed[CARS];
    for (uint32_t i = 0; i < CARS; i++) {
      steer[i] = (float)(15 * sin(0.1 * n + i) -
                         20 * par[i].distance_from_center * (par[i].is_left_of_center ? 1 : -1));
      speed[i] = (float)(1 + i);
    }
    ch_error err;
    assert_int_equal(vt->step(env, steer, speed, NULL, obs, image, par, status, &err), CH_OK);
    put(t, obs, CARS * sp.obs_size * sizeof(float));
    put(t, image, CARS * img);
    put(t, status, sizeof status);
    put_params(t, par, CARS);
    for (uint32_t i = 0; i < CARS; i++)
      if (status[i] != CH_EPISODE_IN_PROGRESS)
        sim_reset(env, i, (ch_env_reset){0.1 * n / STEPS, 0, (int32_t)(n & 1), 0, (uint64_t)n},
                  obs + i * sp.obs_size, image + i * img, par + i);
  }
  free(obs), free(image);
  vt->destroy(env);
}

static void test_determinism_across_handles(void **state) {
  (void)state;
  const char *configs[] = {
      "{\"track\": \"%s\", \"num_cars\": 3, \"sensors\": [\"state\", \"stereo\", \"lidar\"], "
      "\"camera\": {\"downscale\": 4, \"stack_size\": 2}, \"race_type\": \"head_to_head\", "
      "\"bots\": {\"count\": 2, \"speed\": 0.8, \"lane_changes\": true, \"min_spacing\": 3, "
      "\"min_lane_change_interval\": 0.5, \"max_lane_change_interval\": 2}}",
      "{\"track\": \"%s\", \"num_cars\": 3, \"sensors\": [\"camera\", \"sector_lidar\"], "
      "\"camera\": {\"downscale\": 2}, \"race_type\": \"object_avoidance\", \"objects\": "
      "{\"count\": 3, \"min_spacing\": 2}}"};
  for (int c = 0; c < 2; c++) {
    trace a = {0}, b = {0};
    run(configs[c], bayside, &a);
    run(configs[c], bayside, &b);
    assert_true(a.len > 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    free(a.data), free(b.data);
  }
}

static void expect_error(const char *fmt, const char *track, int code, const char *needle) {
  ch_error err;
  int rc = sim_env_error(fmt, track, &err);
  if (rc != code) fail_msg("rc %d (%s), expected %d", rc, err.message, code);
  expect_contains(err.message, needle);
}

static void test_config_errors(void **state) {
  (void)state;
  const char *s = straight;
  expect_error("{\"track\": \"%s\", \"sensors\": [\"camera\", \"stereo\"]}", s, CH_EINVAL,
               "both camera and stereo");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"LIDAR\", \"sector_lidar\"]}", s, CH_EINVAL,
               "both lidar and sector_lidar");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"camera\", \"FRONT_FACING_CAMERA\"]}", s,
               CH_EINVAL, "names the camera sensor twice");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"radar\"]}", s, CH_EINVAL,
               "config key 'sensors' must be one of \"state\", \"camera\"");
  expect_error("{\"track\": \"%s\", \"sensors\": []}", s, CH_EINVAL,
               "config key 'sensors' must be a non-empty array");
  expect_error("{\"track\": \"%s\", \"camera\": {\"downscale\": 2}}", s, CH_EINVAL,
               "config key 'camera' needs a camera or stereo sensor");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"camera\"], \"camera\": {\"downscale\": 3}}", s,
               CH_EINVAL, "config key 'camera.downscale' must be 1, 2 or 4");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"camera\"], \"camera\": {\"stack_size\": 9}}", s,
               CH_EINVAL, "config key 'camera.stack_size' must be an integer in 1..8, got 9");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"camera\"], \"camera\": {\"zoom\": 2}}", s,
               CH_EINVAL, "unknown config key 'camera.zoom' (known: downscale, stack_size)");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"sector_lidar\"], \"lidar\": {}}", s, CH_EINVAL,
               "config key 'lidar' needs the lidar sensor");
  expect_error("{\"track\": \"%s\", \"sensors\": [\"lidar\"], \"lidar\": {\"max_range\": 20}}", s,
               CH_EINVAL, "config key 'lidar.max_range' must be a number in [0.5, 12], got 20");
  expect_error("{\"track\": \"%s\", \"race_type\": \"drag\"}", s, CH_EINVAL,
               "config key 'race_type' must be one of \"time_trial\", \"object_avoidance\", "
               "\"head_to_head\", got \"drag\"");
  expect_error("{\"track\": \"%s\", \"objects\": {\"count\": 2}}", s, CH_EINVAL,
               "config key 'objects' needs race_type \"object_avoidance\"");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"bots\": {}}", s,
               CH_EINVAL, "config key 'bots' needs race_type \"head_to_head\"");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"placement\": \"fixed\"}}",
               s, CH_EINVAL, "'objects.positions' is missing");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"positions\": [{\"progress\": 5, \"lane\": \"left\"}]}}",
               s, CH_EINVAL, "config key 'objects.positions' needs 'objects.placement' \"fixed\"");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"placement\": \"fixed\", \"count\": 2, \"positions\": [{\"progress\": 5, "
               "\"lane\": \"left\"}]}}",
               s, CH_EINVAL, "'objects.count' is 2 but 'objects.positions' lists 1");
  expect_error(
      "{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
      "{\"placement\": \"fixed\", \"positions\": [{\"progress\": 5, \"lane\": \"middle\"}]}}",
      s, CH_EINVAL, "config key 'objects.positions[0].lane' must be \"left\" or \"right\"");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"placement\": \"fixed\", \"positions\": [{\"progress\": 5, \"lane\": \"left\"}, "
               "{\"progress\": 101, \"lane\": \"left\"}]}}",
               s, CH_EINVAL,
               "config key 'objects.positions[1].progress' must be a number in [0, 100]");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"size\": [0.4]}}",
               s, CH_EINVAL, "config key 'objects.size' must be [width, length]");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"colour\": \"red\"}}",
               s, CH_EINVAL, "unknown config key 'objects.colour' (known: count, placement,");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"count\": 33}}",
               s, CH_EINVAL, "config key 'objects.count' must be an integer in 1..32, got 33");
  expect_error("{\"track\": \"%s\", \"race_type\": \"object_avoidance\", \"objects\": "
               "{\"count\": 22, \"min_spacing\": 3}}",
               circle, CH_EINVAL,
               "22 objects with objects.min_spacing 3 m and objects.start_clearance 2 m on either "
               "side of the start do not fit on track 'big' (62.83 m)");
  expect_error("{\"track\": \"%s\", \"race_type\": \"head_to_head\", \"bots\": "
               "{\"min_lane_change_interval\": 4, \"max_lane_change_interval\": 2}}",
               s, CH_EINVAL, "'bots.max_lane_change_interval' (2 s) is below");
  expect_error("{\"track\": \"%s\", \"race_type\": \"head_to_head\", \"bots\": "
               "{\"lane_changes\": 1}}",
               s, CH_EINVAL, "config key 'bots.lane_changes' must be true or false, got 1");
  expect_error("{\"track\": \"%s\", \"race_type\": \"head_to_head\", \"bots\": {\"speed\": 5}}", s,
               CH_EINVAL, "config key 'bots.speed' must be a number in [0, 4], got 5");
  expect_error("{\"track\": \"%s\", \"race_type\": \"head_to_head\", \"bots\": [1]}", s, CH_EINVAL,
               "config key 'bots' must be a JSON object, got an array");
  expect_error("{\"track\": \"%s\", \"start_heading_offset\": 190}", s, CH_EINVAL,
               "config key 'start_heading_offset' must be a number in [-180, 180]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_boxes),
      cmocka_unit_test(test_fixed_boxes),
      cmocka_unit_test(test_random_boxes_straight),
      cmocka_unit_test(test_crash_into_box),
      cmocka_unit_test(test_pass_box_in_other_lane),
      cmocka_unit_test(test_closest_objects_loop),
      cmocka_unit_test(test_bots_move_at_their_speed),
      cmocka_unit_test(test_bot_lane_changes),
      cmocka_unit_test(test_crash_into_bot),
      cmocka_unit_test(test_determinism_across_handles),
      cmocka_unit_test(test_config_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
