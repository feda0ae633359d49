/* test_sim_render.c -- ch_render_png and `chicane render`: valid PNGs of each view, and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "render.h"

#define expect_contains(hay, needle)                                                               \
  do {                                                                                             \
    if (!strstr((hay), (needle))) fail_msg("message \"%s\" lacks \"%s\"", (hay), (needle));        \
  } while (0)

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/chicane_renderXXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* The file starts with the PNG signature and cairo reads it back at w x h; returns the image
** (the caller destroys it). */
static cairo_surface_t *expect_png(const char *path, int w, int h) {
  unsigned char sig[8] = {0};
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fread(sig, 1, 8, f), 8);
  fclose(f);
  assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  if (w && cairo_image_surface_get_width(s) != w)
    fail_msg("%s: width %d, expected %d", path, cairo_image_surface_get_width(s), w);
  if (h && cairo_image_surface_get_height(s) != h)
    fail_msg("%s: height %d, expected %d", path, cairo_image_surface_get_height(s), h);
  return s;
}

/* Grey level of pixel (x, y) of an RGB image whose channels must be equal. */
static int grey_at(cairo_surface_t *s, int x, int y) {
  cairo_surface_flush(s);
  const unsigned char *d = cairo_image_surface_get_data(s);
  uint32_t px =
      *(const uint32_t *)(const void *)(d + (size_t)y * cairo_image_surface_get_stride(s) +
                                        4 * (size_t)x);
  int r = (px >> 16) & 255, g = (px >> 8) & 255, b = px & 255;
  assert_int_equal(r, g);
  assert_int_equal(g, b);
  return g;
}

static void render(ch_render_options *o, const char *name, char *path) {
  sprintf(path, "%s/%s", dir, name);
  ch_error err = {0, ""};
  int rc = ch_render_png(o, path, &err);
  if (rc) fail_msg("render %s: %d %s", name, rc, err.message);
}

static void test_camera_png(void **state) {
  (void)state;
  ch_render_options o;
  ch_render_defaults(&o);
  o.track = "bayside";
  char path[128];
  render(&o, "camera.png", path);
  cairo_surface_t *s = expect_png(path, 640, 480);
  assert_int_equal(grey_at(s, 0, 0), 255); /* sky */
  assert_int_equal(grey_at(s, 3, 3), 255);
  int mid = grey_at(s, 320, 470); /* just ahead of the car: track or the centre line */
  assert_true(mid == 48 || mid == 180);
  /* Nearest-neighbour blocks of 4: a 4x4 block has one value. */
  for (int y = 400; y < 404; y++)
    for (int x = 100; x < 104; x++) assert_int_equal(grey_at(s, x, y), grey_at(s, 100, 400));
  cairo_surface_destroy(s);
  o.scale = 2;
  render(&o, "camera2.png", path);
  cairo_surface_destroy(expect_png(path, 320, 240));
}

static void test_stereo_lidar_top_png(void **state) {
  (void)state;
  ch_render_options o;
  ch_render_defaults(&o);
  o.track = "bayside";
  o.sensor = "stereo";
  o.progress = 20;
  o.race_type = "object_avoidance";
  char path[128];
  render(&o, "stereo.png", path);
  cairo_surface_destroy(expect_png(path, 2 * 640 + 16, 480));
  o.sensor = "lidar";
  render(&o, "lidar.png", path);
  cairo_surface_destroy(expect_png(path, 400, 400));
  o.sensor = "top";
  o.reversed = 1;
  o.race_type = "head_to_head";
  render(&o, "top.png", path);
  cairo_surface_t *s = expect_png(path, 0, 0);
  /* bayside is 7.3 m x 3.7 m with its borders; the map has 0.5 m around it at 100 px/m. */
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
  assert_true(w >= 820 && w <= 850 && h >= 460 && h <= 480);
  cairo_surface_destroy(s);
}

static void test_render_errors(void **state) {
  (void)state;
  ch_render_options o;
  ch_render_defaults(&o);
  ch_error err = {0, ""};
  char path[128];
  snprintf(path, sizeof path, "%s/x.png", dir);
  o.track = "bayside";
  o.sensor = "radar";
  assert_int_equal(ch_render_png(&o, path, &err), CH_EINVAL);
  expect_contains(err.message, "sensor 'radar' is not one of camera, stereo, lidar, top");
  o.sensor = "camera";
  o.progress = 120;
  assert_int_equal(ch_render_png(&o, path, &err), CH_EINVAL);
  expect_contains(err.message, "progress 120% is outside 0..100");
  o.progress = 0;
  o.track = "no_such_track";
  assert_int_equal(ch_render_png(&o, path, &err), CH_ENOTFOUND);
  expect_contains(err.message, "no track 'no_such_track'");
  o.track = "bayside";
  o.race_type = "rally";
  assert_int_equal(ch_render_png(&o, path, &err), CH_EINVAL);
  expect_contains(err.message, "config key 'race_type'");
  o.race_type = "time_trial";
  o.env_extra = "[1]";
  assert_int_equal(ch_render_png(&o, path, &err), CH_EINVAL);
  expect_contains(err.message, "extra env config is not a JSON object");
  o.env_extra = NULL;
  o.offset = 2;
  assert_int_equal(ch_render_png(&o, path, &err), CH_ERANGE);
  expect_contains(err.message, "start_offset 2 m");
  o.offset = 0;
  assert_int_equal(ch_render_png(&o, "/nonexistent/dir/x.png", &err), CH_EIO);
  expect_contains(err.message, "/nonexistent/dir/x.png");
  assert_int_equal(access(path, F_OK), -1); /* nothing written on errors */
}

static int run(const char *args) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s/chicane' render %s >/dev/null 2>&1", CHICANE_BINARY_DIR, args);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_render_command(void **state) {
  (void)state;
  char args[512], path[128];
  snprintf(path, sizeof path, "%s/cli.png", dir);
  snprintf(args, sizeof args,
           "bayside --out '%s' --sensor camera --at 40%% --offset 0.1 --heading-offset -10 "
           "--race-type object_avoidance --seed 4 --reversed --scale 3",
           path);
  assert_int_equal(run(args), 0);
  cairo_surface_destroy(expect_png(path, 480, 360));
  snprintf(args, sizeof args,
           "bayside --out '%s' --sensor lidar --env '{\"lidar\": {\"max_range\": 4}}'", path);
  assert_int_equal(run(args), 0);
  cairo_surface_destroy(expect_png(path, 400, 400));
  snprintf(args, sizeof args, "bayside --out '%s' --at 150", path);
  assert_int_equal(run(args), 2);
  assert_int_equal(run("bayside"), 2); /* --out is required */
  snprintf(args, sizeof args, "no_such_track --out '%s'", path);
  assert_int_equal(run(args), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_camera_png),
      cmocka_unit_test(test_stereo_lidar_top_png),
      cmocka_unit_test(test_render_errors),
      cmocka_unit_test(test_render_command),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
