/* trackmap.c -- the track seen from above with driven laps coloured by speed, as PNG. */
#include "viz.h"
#include "viz_draw.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>

/* Rows after which the car drives on continuously (not put back elsewhere). */
static int ch__continues(const ch_simtrace_row *r) {
  return r->status == CH_EPISODE_IN_PROGRESS || r->status == CH_SIMTRACE_PREPARE;
}

void ch_viz_trace_speeds(const ch_simtrace_row *rows, size_t n, double *speed) {
  for (size_t i = 0; i < n; i++) {
    speed[i] = rows[i].throttle;
    if (i == 0 || rows[i].episode != rows[i - 1].episode || !ch__continues(&rows[i - 1])) continue;
    double dt = rows[i].tstamp - rows[i - 1].tstamp - rows[i - 1].pause_duration;
    if (dt > 1e-6) speed[i] = hypot(rows[i].x - rows[i - 1].x, rows[i].y - rows[i - 1].y) / dt;
  }
}

static void ch__speed_range(const double *speed, size_t n, double *lo, double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    *lo = fmin(*lo, speed[i]);
    *hi = fmax(*hi, speed[i]);
  }
  if (!(*lo <= *hi)) {
    *lo = 0;
    *hi = 4;
  }
  if (*hi - *lo < 0.2) {
    *lo = fmax(0, *lo - 0.1);
    *hi = *lo + 0.2;
  }
}

static void ch__draw_line(cairo_t *cr, const ch_viz_view *v, const ch_racing_line *rl) {
  double dash[] = {3, 4};
  cairo_set_dash(cr, dash, 2, 0);
  cairo_set_line_width(cr, 1.2);
  ch_viz_rgba(cr, 0xffffff, 0.55);
  cairo_move_to(cr, ch_viz_px(v, rl->x[0]), ch_viz_py(v, rl->y[0]));
  for (int i = 1; i < rl->n; i++) cairo_line_to(cr, ch_viz_px(v, rl->x[i]), ch_viz_py(v, rl->y[i]));
  cairo_close_path(cr);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
}

/* Each step of every episode as a short segment in the colour of its speed. */
static void ch__draw_laps(cairo_t *cr, const ch_viz_view *v, const ch_simtrace_row *rows, size_t n,
                          const double *speed, double lo, double hi) {
  cairo_set_line_width(cr, fmax(2.5, 0.045 * v->scale));
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t i = 1; i < n; i++) {
    if (rows[i].episode != rows[i - 1].episode || !ch__continues(&rows[i - 1])) continue;
    ch_viz_rgba(cr, ch_viz_speed_rgb(speed[i], lo, hi), 0.9);
    cairo_move_to(cr, ch_viz_px(v, rows[i - 1].x), ch_viz_py(v, rows[i - 1].y));
    cairo_line_to(cr, ch_viz_px(v, rows[i].x), ch_viz_py(v, rows[i].y));
    cairo_stroke(cr);
  }
  /* Where the car left the track or crashed (and was put back). */
  for (size_t i = 0; i < n; i++) {
    if (rows[i].status != CH_EPISODE_OFF_TRACK && rows[i].status != CH_EPISODE_CRASHED) continue;
    ch_viz_rgb(cr, 0xff3b30);
    cairo_arc(cr, ch_viz_px(v, rows[i].x), ch_viz_py(v, rows[i].y), 5, 0, 2 * M_PI);
    cairo_set_line_width(cr, 2);
    cairo_stroke(cr);
  }
}

int ch_viz_track_png(const ch_track *t, const ch_simtrace_row *rows, size_t n, const ch_viz_map *o,
                     const char *path, ch_error *err) {
  ch_viz_view v;
  int legend = n > 0;
  ch_viz_view_fit(&v, t, o && o->width > 0 ? o->width : 1000, 30, 44, legend ? 56 : 0);
  double *speed = malloc(sizeof(double) * (n + 1));
  if (!speed) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  ch_viz_trace_speeds(rows, n, speed);
  double lo, hi;
  ch__speed_range(speed, n, &lo, &hi);
  cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, v.width, v.height);
  cairo_t *cr = cairo_create(sf);
  ch_viz_draw_track(cr, &v, t);
  if (o && o->line && o->line->n > 1) ch__draw_line(cr, &v, o->line);
  ch__draw_laps(cr, &v, rows, n, speed, lo, hi);
  const char *title = o && o->title ? o->title : t->name;
  ch_viz_text(cr, v.width / 2.0, 24, title, 17, 0xf0f0f0, 0.5, 0.5);
  if (legend) ch_viz_draw_speed_bar(cr, v.width * 0.35, v.height - 40, v.width * 0.45, lo, hi);
  cairo_destroy(cr);
  free(speed);
  return ch_viz_write_png(sf, path, err);
}
