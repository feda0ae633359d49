/* chart.c -- line charts as PNG with cairo: two y axes, grid, ticks, legend. */
#include "viz.h"
#include "viz_draw.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct ch__axis {
  double lo, hi; /* data range shown */
  double step;   /* tick spacing */
} ch__axis;

typedef struct ch__frame {
  double x0, y0, x1, y1; /* plot area in pixels (y0 top) */
  ch__axis x, left, right;
  int has_right;
} ch__frame;

/* 1, 2 or 5 times a power of ten, near range / ticks. */
static double ch__nice_step(double range, int ticks) {
  double raw = range / ticks, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Widen [lo, hi] to whole ticks (or use the fixed range when given). */
static void ch__fit_axis(ch__axis *a, double lo, double hi, double fixed_lo, double fixed_hi,
                         int ticks) {
  if (fixed_lo < fixed_hi) {
    lo = fixed_lo;
    hi = fixed_hi;
  } else if (!(lo <= hi)) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  a->step = ch__nice_step(hi - lo, ticks);
  a->lo = fixed_lo < fixed_hi ? lo : floor(lo / a->step) * a->step;
  a->hi = fixed_lo < fixed_hi ? hi : ceil(hi / a->step) * a->step;
}

static void ch__data_range(const ch_viz_series *s, int n, int axis, int use_x, double *lo,
                           double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int k = 0; k < n; k++) {
    if (!use_x && s[k].right_axis != axis) continue;
    for (int i = 0; i < s[k].n; i++) {
      double v = use_x ? s[k].x[i] : s[k].y[i];
      if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
      if (v < *lo) *lo = v;
      if (v > *hi) *hi = v;
    }
  }
}

static void ch__fit_frame(ch__frame *f, const ch_viz_chart *c, const ch_viz_series *s, int n, int w,
                          int h) {
  double lo, hi;
  f->has_right = c->right_label != NULL;
  f->x0 = 80;
  f->x1 = w - (f->has_right ? 80 : 30);
  f->y0 = 60;
  f->y1 = h - 90;
  ch__data_range(s, n, 0, 1, &lo, &hi);
  ch__fit_axis(&f->x, lo, hi, 0, 0, 8);
  ch__data_range(s, n, 0, 0, &lo, &hi);
  ch__fit_axis(&f->left, lo, hi, c->left_min, c->left_max, 6);
  ch__data_range(s, n, 1, 0, &lo, &hi);
  ch__fit_axis(&f->right, lo, hi, c->right_min, c->right_max, 6);
}

static double ch__px(const ch__frame *f, double x) {
  return f->x0 + (x - f->x.lo) / (f->x.hi - f->x.lo) * (f->x1 - f->x0);
}

static double ch__py(const ch__frame *f, const ch__axis *a, double y) {
  return f->y1 - (y - a->lo) / (a->hi - a->lo) * (f->y1 - f->y0);
}

static void ch__tick_label(double v, double step, char *out, size_t cap) {
  int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
  snprintf(out, cap, "%.*f", decimals, fabs(v) < step * 1e-6 ? 0.0 : v);
}

static void ch__draw_grid(cairo_t *cr, const ch__frame *f) {
  char label[32];
  cairo_set_line_width(cr, 1);
  for (double v = f->left.lo; v <= f->left.hi + f->left.step * 1e-6; v += f->left.step) {
    double y = floor(ch__py(f, &f->left, v)) + 0.5;
    ch_viz_rgb(cr, 0xe4e4e4);
    cairo_move_to(cr, f->x0, y);
    cairo_line_to(cr, f->x1, y);
    cairo_stroke(cr);
    ch__tick_label(v, f->left.step, label, sizeof label);
    ch_viz_text(cr, f->x0 - 8, y, label, 12, 0x333333, 1.0, 0.5);
  }
  for (double v = f->x.lo; v <= f->x.hi + f->x.step * 1e-6; v += f->x.step) {
    double x = floor(ch__px(f, v)) + 0.5;
    ch_viz_rgb(cr, 0xeeeeee);
    cairo_move_to(cr, x, f->y0);
    cairo_line_to(cr, x, f->y1);
    cairo_stroke(cr);
    ch__tick_label(v, f->x.step, label, sizeof label);
    ch_viz_text(cr, x, f->y1 + 16, label, 12, 0x333333, 0.5, 0.5);
  }
  if (!f->has_right) return;
  for (double v = f->right.lo; v <= f->right.hi + f->right.step * 1e-6; v += f->right.step) {
    ch__tick_label(v, f->right.step, label, sizeof label);
    ch_viz_text(cr, f->x1 + 8, ch__py(f, &f->right, v), label, 12, 0x333333, 0.0, 0.5);
  }
}

static void ch__draw_labels(cairo_t *cr, const ch__frame *f, const ch_viz_chart *c, int w) {
  ch_viz_rgb(cr, 0x555555);
  cairo_rectangle(cr, f->x0 + 0.5, f->y0 + 0.5, f->x1 - f->x0, f->y1 - f->y0);
  cairo_stroke(cr);
  if (c->title) ch_viz_text(cr, w / 2.0, 28, c->title, 18, 0x111111, 0.5, 0.5);
  if (c->x_label)
    ch_viz_text(cr, (f->x0 + f->x1) / 2, f->y1 + 38, c->x_label, 13, 0x333333, 0.5, 0.5);
  if (c->left_label) ch_viz_text_rotated(cr, 22, (f->y0 + f->y1) / 2, c->left_label, 13, 0x333333);
  if (c->right_label && f->has_right)
    ch_viz_text_rotated(cr, w - 18, (f->y0 + f->y1) / 2, c->right_label, 13, 0x333333);
}

static void ch__draw_series(cairo_t *cr, const ch__frame *f, const ch_viz_series *s) {
  const ch__axis *a = s->right_axis ? &f->right : &f->left;
  cairo_save(cr);
  /* A little beyond the frame, so that a marker on an axis limit (100 %) shows whole. */
  cairo_rectangle(cr, f->x0 - 6, f->y0 - 6, f->x1 - f->x0 + 12, f->y1 - f->y0 + 12);
  cairo_clip(cr);
  ch_viz_rgb(cr, s->rgb);
  cairo_set_line_width(cr, 2.2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  int pen = 0;
  for (int i = 0; i < s->n; i++) {
    if (!isfinite(s->x[i]) || !isfinite(s->y[i])) {
      pen = 0;
      continue;
    }
    double x = ch__px(f, s->x[i]), y = ch__py(f, a, s->y[i]);
    if (pen)
      cairo_line_to(cr, x, y);
    else
      cairo_move_to(cr, x, y);
    pen = 1;
  }
  cairo_stroke(cr);
  for (int i = 0; s->markers && i < s->n; i++) {
    if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
    cairo_arc(cr, ch__px(f, s->x[i]), ch__py(f, a, s->y[i]), 4, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  cairo_restore(cr);
}

static void ch__draw_legend(cairo_t *cr, const ch__frame *f, const ch_viz_series *s, int n) {
  double x = f->x0, y = f->y1 + 66;
  for (int k = 0; k < n; k++) {
    ch_viz_rgb(cr, s[k].rgb);
    cairo_set_line_width(cr, 3);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 24, y);
    cairo_stroke(cr);
    if (s[k].markers) {
      cairo_arc(cr, x + 12, y, 4, 0, 2 * M_PI);
      cairo_fill(cr);
    }
    char label[160];
    snprintf(label, sizeof label, "%s%s", s[k].label ? s[k].label : "",
             f->has_right ? (s[k].right_axis ? " (right axis)" : " (left axis)") : "");
    x += 32 + ch_viz_text(cr, x + 30, y, label, 12, 0x222222, 0.0, 0.5) + 24;
  }
}

int ch_viz_chart_png(const ch_viz_chart *c, const ch_viz_series *s, int n, const char *path,
                     ch_error *err) {
  int w = c->width > 0 ? c->width : 960, h = c->height > 0 ? c->height : 540;
  cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create(sf);
  ch_viz_rgb(cr, 0xffffff);
  cairo_paint(cr);
  ch__frame f;
  ch__fit_frame(&f, c, s, n, w, h);
  ch__draw_grid(cr, &f);
  for (int k = 0; k < n; k++) ch__draw_series(cr, &f, &s[k]);
  ch__draw_labels(cr, &f, c, w);
  ch__draw_legend(cr, &f, s, n);
  cairo_destroy(cr);
  return ch_viz_write_png(sf, path, err);
}
