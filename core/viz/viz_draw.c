/* viz_draw.c -- text, PNG output, the world-to-pixel view and the track drawing core/viz shares. */
#include "viz_draw.h"
#include "viz.h"

#include <chicane/plugin_util.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>

void ch_viz_rgb(cairo_t *cr, uint32_t rgb) {
  ch_viz_rgba(cr, rgb, 1.0);
}

void ch_viz_rgba(cairo_t *cr, uint32_t rgb, double alpha) {
  cairo_set_source_rgba(cr, ((rgb >> 16) & 0xff) / 255.0, ((rgb >> 8) & 0xff) / 255.0,
                        (rgb & 0xff) / 255.0, alpha);
}

double ch_viz_text(cairo_t *cr, double x, double y, const char *text, double size, uint32_t rgb,
                   double ax, double ay) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, text, &e);
  ch_viz_rgb(cr, rgb);
  /* Anchor vertically on the font's cap height, so labels of any text line up. */
  cairo_move_to(cr, x - e.x_bearing - ax * e.width, y + (1 - ay) * size * 0.72);
  cairo_show_text(cr, text);
  return e.x_advance;
}

void ch_viz_text_rotated(cairo_t *cr, double x, double y, const char *text, double size,
                         uint32_t rgb) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, -M_PI / 2);
  ch_viz_text(cr, 0, 0, text, size, rgb, 0.5, 0.5);
  cairo_restore(cr);
}

int ch_viz_write_png(cairo_surface_t *sf, const char *path, ch_error *err) {
  cairo_status_t st = cairo_surface_status(sf);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(sf, path);
  cairo_surface_destroy(sf);
  if (st == CAIRO_STATUS_SUCCESS) return CH_OK;
  return ch_error_set(err, st == CAIRO_STATUS_NO_MEMORY ? CH_ENOMEM : CH_EIO, "%s: %s", path,
                      cairo_status_to_string(st));
}

static void ch__bounds(const ch_track *t, double *x0, double *y0, double *x1, double *y1) {
  *x0 = *y0 = INFINITY;
  *x1 = *y1 = -INFINITY;
  const double *xs[] = {t->lx, t->rx, t->cx}, *ys[] = {t->ly, t->ry, t->cy};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < t->n; i++) {
      *x0 = fmin(*x0, xs[k][i]);
      *x1 = fmax(*x1, xs[k][i]);
      *y0 = fmin(*y0, ys[k][i]);
      *y1 = fmax(*y1, ys[k][i]);
    }
}

void ch_viz_view_fit(ch_viz_view *v, const ch_track *t, int width, double margin, double top,
                     double bottom) {
  double x0, y0, x1, y1;
  ch__bounds(t, &x0, &y0, &x1, &y1);
  double w = fmax(x1 - x0, 1e-3), h = fmax(y1 - y0, 1e-3);
  v->scale = (width - 2 * margin) / w;
  v->width = width;
  v->height = (int)ceil(h * v->scale + 2 * margin + top + bottom);
  v->ox = margin - x0 * v->scale;
  v->oy = top + margin + y1 * v->scale;
}

/* A closed (loop) or open polyline through n points. */
static void ch__path(cairo_t *cr, const ch_viz_view *v, const double *x, const double *y, int n,
                     int closed) {
  cairo_move_to(cr, ch_viz_px(v, x[0]), ch_viz_py(v, y[0]));
  for (int i = 1; i < n; i++) cairo_line_to(cr, ch_viz_px(v, x[i]), ch_viz_py(v, y[i]));
  if (closed) cairo_close_path(cr);
}

static void ch__surface(cairo_t *cr, const ch_viz_view *v, const ch_track *t) {
  ch_viz_rgb(cr, CH_VIZ_SURFACE);
  if (t->is_loop) {
    /* The two borders are nested rings: even-odd fills the road between them. */
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    ch__path(cr, v, t->lx, t->ly, t->n, 1);
    ch__path(cr, v, t->rx, t->ry, t->n, 1);
  } else {
    ch__path(cr, v, t->lx, t->ly, t->n, 0);
    for (int i = t->n - 1; i >= 0; i--)
      cairo_line_to(cr, ch_viz_px(v, t->rx[i]), ch_viz_py(v, t->ry[i]));
    cairo_close_path(cr);
  }
  cairo_fill(cr);
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
}

static void ch__start_line(cairo_t *cr, const ch_viz_view *v, const ch_track *t) {
  double ax = ch_viz_px(v, t->lx[0]), ay = ch_viz_py(v, t->ly[0]);
  double bx = ch_viz_px(v, t->rx[0]), by = ch_viz_py(v, t->ry[0]);
  double w = fmax(4, 0.08 * v->scale);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  cairo_set_line_width(cr, w);
  ch_viz_rgb(cr, 0xffffff);
  cairo_move_to(cr, ax, ay);
  cairo_line_to(cr, bx, by);
  cairo_stroke(cr);
  double dash = fmax(3, 0.06 * v->scale);
  cairo_set_dash(cr, &dash, 1, 0);
  ch_viz_rgb(cr, 0x111111);
  cairo_move_to(cr, ax, ay);
  cairo_line_to(cr, bx, by);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
}

void ch_viz_draw_track(cairo_t *cr, const ch_viz_view *v, const ch_track *t) {
  ch_viz_rgb(cr, CH_VIZ_BACKGROUND);
  cairo_paint(cr);
  ch__surface(cr, v, t);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_width(cr, fmax(1.5, 0.05 * v->scale));
  ch_viz_rgb(cr, 0xf2f2f2);
  ch__path(cr, v, t->lx, t->ly, t->n, t->is_loop);
  cairo_stroke(cr);
  ch__path(cr, v, t->rx, t->ry, t->n, t->is_loop);
  cairo_stroke(cr);
  double dash[] = {fmax(4, 0.15 * v->scale), fmax(4, 0.15 * v->scale)};
  cairo_set_dash(cr, dash, 2, 0);
  cairo_set_line_width(cr, fmax(1, 0.02 * v->scale));
  ch_viz_rgb(cr, 0xc9b458);
  ch__path(cr, v, t->cx, t->cy, t->n, t->is_loop);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  ch__start_line(cr, v, t);
}

uint32_t ch_viz_speed_rgb(double speed, double lo, double hi) {
  /* Blue, cyan, green, yellow, red: slow to fast, readable on the dark track. */
  static const double stops[][3] = {
      {40, 90, 255}, {0, 200, 230}, {40, 210, 60}, {250, 220, 30}, {240, 40, 30}};
  double u = hi > lo ? (speed - lo) / (hi - lo) : 0.5;
  u = fmin(1, fmax(0, isfinite(u) ? u : 0)) * 4;
  int i = u >= 4 ? 3 : (int)u;
  double f = u - i;
  uint32_t c = 0;
  for (int k = 0; k < 3; k++)
    c = (c << 8) | (uint32_t)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
  return c;
}

void ch_viz_draw_speed_bar(cairo_t *cr, double x, double y, double width, double lo, double hi) {
  const int steps = 64;
  double h = 12, w = width / steps;
  for (int i = 0; i < steps; i++) {
    ch_viz_rgb(cr, ch_viz_speed_rgb(lo + (hi - lo) * (i + 0.5) / steps, lo, hi));
    cairo_rectangle(cr, x + i * w, y - h / 2, w + 0.5, h);
    cairo_fill(cr);
  }
  char label[64];
  snprintf(label, sizeof label, "%.1f", lo);
  ch_viz_text(cr, x, y + 18, label, 12, 0xdddddd, 0.0, 0.5);
  snprintf(label, sizeof label, "%.1f", (lo + hi) / 2);
  ch_viz_text(cr, x + width / 2, y + 18, label, 12, 0xdddddd, 0.5, 0.5);
  snprintf(label, sizeof label, "%.1f", hi);
  ch_viz_text(cr, x + width, y + 18, label, 12, 0xdddddd, 1.0, 0.5);
  ch_viz_text(cr, x - 12, y, "speed (m/s)", 13, 0xdddddd, 1.0, 0.5);
}

void ch_viz_release(void) {
  cairo_debug_reset_static_data();
  FcFini();
}
