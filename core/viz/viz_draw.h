/* viz_draw.h -- drawing helpers the pictures of core/viz share (private to the library). */
#ifndef CHICANE_VIZ_DRAW_H
#define CHICANE_VIZ_DRAW_H

#include "track.h"

#include <cairo.h>
#include <chicane/plugin.h>
#include <stdint.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void ch_viz_rgb(cairo_t *cr, uint32_t rgb);
void ch_viz_rgba(cairo_t *cr, uint32_t rgb, double alpha);

/* Text at (x, y) anchored by ax, ay in [0, 1] of its extent (0.5, 0.5: centred); returns the
** width it took. */
double ch_viz_text(cairo_t *cr, double x, double y, const char *text, double size, uint32_t rgb,
                   double ax, double ay);
/* Text turned a quarter to the left, centred on (x, y) (a vertical axis label). */
void ch_viz_text_rotated(cairo_t *cr, double x, double y, const char *text, double size,
                         uint32_t rgb);

/* Write the surface to path as PNG and destroy it. */
int ch_viz_write_png(cairo_surface_t *sf, const char *path, ch_error *err);

/* World (metres, y up) to pixels (y down): px = ox + scale * x, py = oy - scale * y. */
typedef struct ch_viz_view {
  double scale, ox, oy;
  int width, height;
} ch_viz_view;

/* Fit the track's borders into width pixels with margin pixels round them and extra pixels
** above (top) and below (bottom); the height follows the track's shape. */
void ch_viz_view_fit(ch_viz_view *v, const ch_track *t, int width, double margin, double top,
                     double bottom);

static inline double ch_viz_px(const ch_viz_view *v, double x) {
  return v->ox + v->scale * x;
}
static inline double ch_viz_py(const ch_viz_view *v, double y) {
  return v->oy - v->scale * y;
}

/* Background, track surface, white borders, dashed centre line, chequered start line. */
void ch_viz_draw_track(cairo_t *cr, const ch_viz_view *v, const ch_track *t);

/* A horizontal colour bar of the speed scale with its labels, left edge x, centre line y. */
void ch_viz_draw_speed_bar(cairo_t *cr, double x, double y, double width, double lo, double hi);

#define CH_VIZ_BACKGROUND 0x20252b
#define CH_VIZ_SURFACE    0x434a54

#endif
