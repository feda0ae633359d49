/* test_sim_alloc.c -- sim2d allocates nothing in reset, step and recover, for every sensor. */
#include "sim_test.h"

/*
** The test program defines malloc and its kin, counting calls while `counting` is set and
** handing the work to glibc's own allocator. The plugin, opened with dlopen, binds to these
** (the program's definitions come first in the global scope), so the count sees its
** allocations (each test first checks that creating a handle shows up). Under
** AddressSanitizer the sanitizer owns malloc: the steps still run there, uncounted.
*/
#if defined(__SANITIZE_ADDRESS__)
#define CH_TEST_NO_COUNT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CH_TEST_NO_COUNT 1
#endif
#endif

static int counting;
static long allocations;

#ifndef CH_TEST_NO_COUNT
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) {
  allocations += counting;
  return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
  allocations += counting;
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
  allocations += counting;
  return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n) {
  allocations += counting;
  return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
  allocations += counting;
  *out = __libc_memalign(align, n);
  return *out ? 0 : 12; /* ENOMEM */
}

void free(void *p) {
  __libc_free(p);
}
#endif

#ifdef CH_TEST_NO_COUNT
#define CH_TEST_COUNTS 0
#else
#define CH_TEST_COUNTS 1
#endif

enum { CARS = 8, STEPS = 300 };

static char bayside[1024];

static int setup(void **state) {
  (void)state;
  if (!CH_TEST_COUNTS)
    fprintf(stderr, "SKIPPED (counts only): allocation counting needs glibc's malloc, not "
                    "ASan's; the steps still run\n");
  vt = test_plugin_open("env_sim2d.so");
  snprintf(bayside, sizeof bayside, "%s/tracks/bayside.track", CHICANE_SOURCE_DIR);
  return 0;
}

/* The outputs of one handle, allocated before counting starts. */
typedef struct outs {
  ch_env_spec sp;
  float *obs, steer[CARS], speed[CARS];
  uint8_t *image;
  ch_env_params par[CARS];
  int32_t status[CARS];
  size_t img;
} outs;

static void outs_alloc(void *env, outs *o) {
  vt->spec(env, &o->sp);
  o->img = (size_t)o->sp.image_width * o->sp.image_height * o->sp.image_channels;
  o->obs = calloc((size_t)CARS * o->sp.obs_size + 1, sizeof(float));
  o->image = calloc(CARS * o->img + 1, 1);
  assert_true(o->obs && o->image);
}

static void outs_free(outs *o) {
  free(o->obs), free(o->image);
}

static void reset_car(void *env, outs *o, uint32_t i, uint64_t n) {
  ch_env_reset start = {(double)(n % 20) / 20, 0, (int32_t)(n & 1), 0, n};
  sim_reset(env, i, start, o->obs + (size_t)i * o->sp.obs_size, o->image + i * o->img, &o->par[i]);
}

/* Drive every car with commands that sweep the steering range, reset the cars whose episodes
** end, and put every fifth one back on the track instead (recover); returns episodes ended. */
static long drive(void *env, outs *o) {
  long ended = 0;
  ch_error err;
  for (int n = 0; n < STEPS; n++) {
    for (uint32_t i = 0; i < CARS; i++) {
      o->steer[i] = (float)((int)((i * 13 + (uint32_t)n * 7) % 61) - 30);
      o->speed[i] = (float)(0.5 + (i % 4));
    }
    assert_int_equal(
        vt->step(env, o->steer, o->speed, NULL, o->obs, o->image, o->par, o->status, &err), CH_OK);
    for (uint32_t i = 0; i < CARS; i++) {
      if (o->status[i] == CH_EPISODE_IN_PROGRESS) continue;
      if (++ended % 5 == 0)
        assert_int_equal(vt->recover(env, i, o->obs + (size_t)i * o->sp.obs_size,
                                     o->image + i * o->img, &o->par[i], &err),
                         CH_OK);
      reset_car(env, o, i, (uint64_t)(ended + CARS));
    }
  }
  return ended;
}

/* Create a handle with extra config keys, then count allocations of resets, steps and
** recovers: there must be none. */
static void expect_no_allocation(const char *extra) {
  char fmt[1024];
  snprintf(fmt, sizeof fmt, "{\"track\": \"%%s\", \"num_cars\": %d%s}", CARS, extra);
  allocations = 0, counting = 1;
  void *env = sim_env(fmt, bayside);
  counting = 0;
  /* The counter works: creating a handle allocates, and the plugin's calls were seen. */
  if (CH_TEST_COUNTS && allocations == 0)
    fail_msg("%s: create allocated nothing the counter saw", extra);
  outs o;
  outs_alloc(env, &o);
  allocations = 0, counting = 1;
  for (uint32_t i = 0; i < CARS; i++) reset_car(env, &o, i, i);
  long ended = drive(env, &o);
  counting = 0;
  if (CH_TEST_COUNTS && allocations)
    fail_msg("%s: %ld allocations in reset/step/recover", extra, allocations);
  assert_true(ended > 0); /* resets and recovers happened while counting */
  outs_free(&o);
  vt->destroy(env);
}

static void test_state_lidar_boxes(void **state) {
  (void)state;
  expect_no_allocation(", \"sensors\": [\"state\", \"lidar\"], \"race_type\": "
                       "\"object_avoidance\", \"objects\": {\"count\": 4}");
}

static void test_camera_stack_sector_lidar_bots(void **state) {
  (void)state;
  expect_no_allocation(", \"sensors\": [\"state\", \"camera\", \"sector_lidar\"], \"camera\": "
                       "{\"stack_size\": 3}, \"race_type\": \"head_to_head\", \"bots\": "
                       "{\"count\": 3, \"lane_changes\": true, \"min_lane_change_interval\": 0.5, "
                       "\"max_lane_change_interval\": 1}");
}

static void test_stereo_downscaled_time_trial(void **state) {
  (void)state;
  expect_no_allocation(", \"sensors\": [\"stereo\"], \"camera\": {\"downscale\": 2}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_lidar_boxes),
      cmocka_unit_test(test_camera_stack_sector_lidar_bots),
      cmocka_unit_test(test_stereo_downscaled_time_trial),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
