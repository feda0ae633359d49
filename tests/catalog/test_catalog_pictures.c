/* test_catalog_pictures.c -- PNG charts and track maps, the lap GIF: written, decoded, checked. */
#include "catalog_test.h"

#include <cairo.h>
#include <gif_lib.h>
#include <math.h>

#include "paths.h"
#include "viz.h"

static int group_setup(void **state) {
  (void)state;
  test_make_home("pictures");
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ch_viz_release();
  test_rm_tree(test_home);
  return 0;
}

/* ---- decoding -------------------------------------------------------------------------- */

typedef struct png_facts {
  int width, height;
  int colours;    /* distinct colours (counted up to 4096) */
  long matching;  /* pixels near the colour asked for */
  long saturated; /* pixels of a strong colour (max - min channel > 100) */
} png_facts;

static int near(uint32_t a, uint32_t b, int tol) {
  for (int s = 0; s < 24; s += 8)
    if (abs((int)((a >> s) & 0xff) - (int)((b >> s) & 0xff)) > tol) return 0;
  return 1;
}

static png_facts read_png(const char *path, uint32_t rgb) {
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
    fail_msg("%s: %s", path, cairo_status_to_string(cairo_surface_status(s)));
  png_facts f = {cairo_image_surface_get_width(s), cairo_image_surface_get_height(s), 0, 0, 0};
  const unsigned char *data = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  static uint32_t seen[4096];
  for (int y = 0; y < f.height; y++)
    for (int x = 0; x < f.width; x++) {
      uint32_t p = ((const uint32_t *)(const void *)(data + (size_t)y * stride))[x] & 0xffffff;
      int known = 0;
      for (int i = 0; i < f.colours && !known; i++) known = seen[i] == p;
      if (!known && f.colours < 4096) seen[f.colours++] = p;
      f.matching += near(p, rgb, 40);
      int r = p >> 16, g = (p >> 8) & 0xff, b = p & 0xff;
      int hi = r > g ? (r > b ? r : b) : (g > b ? g : b),
          lo = r < g ? (r < b ? r : b) : (g < b ? g : b);
      f.saturated += hi - lo > 100;
    }
  cairo_surface_destroy(s);
  return f;
}

typedef struct gif_facts {
  int width, height, frames;
  int delay_cs;       /* sum of the frames' delays */
  int colours_first;  /* distinct palette entries in the first frame */
  int full_first;     /* the first frame covers the screen */
  int changed_frames; /* frames after the first with at least 100 pixels */
} gif_facts;

static gif_facts read_gif(const char *path) {
  int code = 0;
  GifFileType *g = DGifOpenFileName(path, &code);
  if (!g) fail_msg("%s: %s", path, GifErrorString(code));
  if (DGifSlurp(g) != GIF_OK) fail_msg("%s: %s", path, GifErrorString(g->Error));
  gif_facts f = {g->SWidth, g->SHeight, g->ImageCount, 0, 0, 0, 0};
  for (int i = 0; i < g->ImageCount; i++) {
    GraphicsControlBlock gcb;
    if (DGifSavedExtensionToGCB(g, i, &gcb) == GIF_OK) f.delay_cs += gcb.DelayTime;
    const GifImageDesc *d = &g->SavedImages[i].ImageDesc;
    if (i > 0 && d->Width * d->Height >= 100) f.changed_frames++;
  }
  const SavedImage *first = &g->SavedImages[0];
  f.full_first = first->ImageDesc.Width == g->SWidth && first->ImageDesc.Height == g->SHeight;
  int used[256] = {0};
  for (long i = 0; i < (long)first->ImageDesc.Width * first->ImageDesc.Height; i++)
    used[first->RasterBits[i]] = 1;
  for (int i = 0; i < 256; i++) f.colours_first += used[i];
  DGifCloseFile(g, &code);
  return f;
}

/* ---- the library ----------------------------------------------------------------------- */

static void test_chart_png(void **state) {
  (void)state;
  double x[20], reward[20], progress[20], ex[2] = {5, 15}, ey[2] = {40, 100};
  for (int i = 0; i < 20; i++) {
    x[i] = i;
    reward[i] = 10 + 3 * i + (i % 3);
    progress[i] = fmin(100, 5 * i);
  }
  reward[7] = NAN; /* a gap, not a failure */
  ch_viz_series s[3] = {{"reward", x, reward, 20, 0x2ca02c, 0, 0},
                        {"progress", x, progress, 20, 0x1f77b4, 1, 0},
                        {"evaluation", ex, ey, 2, 0xd62728, 1, 1}};
  ch_viz_chart c = {"test chart", "iteration", "reward", "progress (%)", 0, 0, 0, 100, 800, 450};
  char path[512];
  snprintf(path, sizeof path, "%s/chart.png", test_home);
  ch_error err = {0, ""};
  if (ch_viz_chart_png(&c, s, 3, path, &err) != CH_OK) fail_msg("%s", err.message);
  png_facts green = read_png(path, 0x2ca02c), blue = read_png(path, 0x1f77b4),
            red = read_png(path, 0xd62728);
  assert_int_equal(green.width, 800);
  assert_int_equal(green.height, 450);
  assert_true(green.colours > 20); /* text, lines, anti-aliasing */
  assert_true(green.matching > 300);
  assert_true(blue.matching > 300);
  assert_true(red.matching > 40); /* two markers and a line between them */
  /* An unwritable path names the file. */
  assert_int_equal(ch_viz_chart_png(&c, s, 3, "/nonexistent/dir/chart.png", &err), CH_EIO);
  assert_non_null(strstr(err.message, "/nonexistent/dir/chart.png"));
}

static ch_track *load_track(const char *name) {
  char path[4096];
  ch_track *t = NULL;
  ch_error err = {0, ""};
  if (ch_resolve_track(name, path, sizeof path, &err) != CH_OK ||
      ch_track_load(path, &t, &err) != CH_OK)
    fail_msg("track %s: %s", name, err.message);
  return t;
}

/* A car going round the centre line at a speed that varies along the lap. */
static ch_simtrace_row *centre_lap(const ch_track *t, size_t *n) {
  size_t cap = 2000, k = 0;
  ch_simtrace_row *rows = calloc(cap, sizeof *rows);
  double s = 0, clock = 0;
  while (s < t->length && k < cap) {
    double x, y, h, v = 1 + 2 * (0.5 + 0.5 * sin(s));
    ch_track_point_at(t, s, &x, &y, &h);
    ch_simtrace_row *r = &rows[k];
    r->steps = (int32_t)k;
    r->x = x;
    r->y = y;
    r->yaw_deg = h * 180 / M_PI;
    r->throttle = v;
    r->progress = 100 * s / t->length;
    r->tstamp = clock;
    r->status = k == 0 ? CH_SIMTRACE_PREPARE : CH_EPISODE_IN_PROGRESS;
    s += v / 15;
    clock += 1.0 / 15;
    k++;
  }
  rows[k - 1].status = CH_EPISODE_LAP_COMPLETE;
  rows[k - 1].done = 1;
  *n = k;
  return rows;
}

static void test_track_png_with_laps(void **state) {
  (void)state;
  ch_track *t = load_track("bayside");
  size_t n;
  ch_simtrace_row *rows = centre_lap(t, &n);
  char bare[512], laps[512];
  snprintf(bare, sizeof bare, "%s/track-bare.png", test_home);
  snprintf(laps, sizeof laps, "%s/track-laps.png", test_home);
  ch_viz_map o = {"bayside", 900, NULL};
  ch_error err = {0, ""};
  if (ch_viz_track_png(t, NULL, 0, &o, bare, &err) != CH_OK) fail_msg("%s", err.message);
  if (ch_viz_track_png(t, rows, n, &o, laps, &err) != CH_OK) fail_msg("%s", err.message);
  png_facts b = read_png(bare, 0xf2f2f2), l = read_png(laps, 0xf2f2f2);
  assert_int_equal(b.width, 900);
  assert_int_equal(l.width, 900);
  assert_true(b.height > 200 && b.height < 900);
  assert_true(b.matching > 2000);                /* the white borders */
  assert_true(l.saturated > b.saturated + 2000); /* the lap in speed colours, and its scale */
  assert_true(l.colours > 100);
  /* The colour scale: slow is blue, fast is red. */
  uint32_t slow = ch_viz_speed_rgb(0, 0, 4), fast = ch_viz_speed_rgb(4, 0, 4);
  assert_true((slow & 0xff) > 200 && (slow >> 16) < 100);
  assert_true((fast >> 16) > 200 && (fast & 0xff) < 100);
  free(rows);
  ch_track_free(t);
}

static void test_lap_gif(void **state) {
  (void)state;
  ch_track *t = load_track("bayside");
  size_t n;
  ch_simtrace_row *rows = centre_lap(t, &n);
  /* One box beside the lap, in every row. */
  ch_viz_object *objects = calloc(n, sizeof *objects);
  size_t *offset = calloc(n + 1, sizeof *offset);
  for (size_t i = 0; i < n; i++) {
    objects[i] =
        (ch_viz_object){rows[n / 2].x, rows[n / 2].y, rows[n / 2].yaw_deg, 0.5, 0.4, CH_OBJECT_BOX};
    offset[i + 1] = i + 1;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/lap.gif", test_home);
  ch_viz_gif o = {"test lap", 400, 2, objects, offset};
  ch_error err = {0, ""};
  if (ch_viz_lap_gif(t, rows, n, &o, path, &err) != CH_OK) fail_msg("%s", err.message);
  gif_facts g = read_gif(path);
  assert_int_equal(g.width, 400);
  assert_true(g.height > 100);
  assert_int_equal(g.frames, (int)(n / 2 + 1)); /* every 2nd row, and the finish */
  assert_true(g.full_first);
  assert_true(g.colours_first >= 6);
  assert_true(g.changed_frames >= g.frames - 2); /* the car moves every frame */
  /* The animation lasts the lap's simulated time, plus the 2 s the finish is held. */
  double lap_cs = 100 * (rows[n - 1].tstamp - rows[0].tstamp) + 200;
  if (fabs(g.delay_cs - lap_cs) > 0.03 * lap_cs)
    fail_msg("GIF lasts %d cs, the lap %.0f cs", g.delay_cs, lap_cs);
  assert_int_equal(ch_viz_lap_gif(t, rows, 0, &o, path, &err), CH_EINVAL);
  free(offset);
  free(objects);
  free(rows);
  ch_track_free(t);
}

/* ---- the commands ---------------------------------------------------------------------- */

static void test_plot_and_gif_commands(void **state) {
  (void)state;
  static char out[1 << 16];
  test_train("pic", 40);
  char args[1024], gif[512], dir[512];
  snprintf(gif, sizeof gif, "%s/cli-lap.gif", test_home);
  snprintf(args, sizeof args, "evaluate pic --trials 1 --max-seconds 60 --gif %s", gif);
  if (test_run(args, out, sizeof out, 1) != 0) fail_msg("%s:\n%s", args, out);
  assert_non_null(strstr(out, "lap animation written to"));
  gif_facts g = read_gif(gif);
  assert_int_equal(g.width, 480);
  assert_true(g.frames > 10);
  assert_true(g.colours_first >= 6);

  snprintf(dir, sizeof dir, "%s/plots", test_home);
  snprintf(args, sizeof args, "plot pic --out %s", dir);
  if (test_run(args, out, sizeof out, 1) != 0) fail_msg("%s:\n%s", args, out);
  char path[700];
  snprintf(path, sizeof path, "%s/pic-reward.png", dir);
  png_facts reward = read_png(path, 0x2ca02c);
  assert_int_equal(reward.width, 960);
  assert_int_equal(reward.height, 540);
  assert_true(reward.matching > 100); /* the reward line */
  snprintf(path, sizeof path, "%s/pic-completion.png", dir);
  png_facts completion = read_png(path, 0x1f77b4);
  assert_true(completion.matching > 100);
  snprintf(path, sizeof path, "%s/pic-track.png", dir);
  png_facts track = read_png(path, 0xf2f2f2);
  assert_int_equal(track.width, 1000);
  assert_true(track.saturated > 1500); /* the evaluated lap */
  assert_non_null(strstr(out, "1 laps drawn"));
  assert_int_equal(test_run("plot nosuchmodel", out, sizeof out, 1), 1);
  assert_non_null(strstr(out, "nosuchmodel"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chart_png),
      cmocka_unit_test(test_track_png_with_laps),
      cmocka_unit_test(test_lap_gif),
      cmocka_unit_test(test_plot_and_gif_commands),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
