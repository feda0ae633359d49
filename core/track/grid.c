/* grid.c -- the track's spatial index: closest segment, ray casts and crossing borders. */
#include "track.h"
#include "track_impl.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
** A uniform grid over the bounding box of the centre line and both borders. Each cell lists the
** segments whose bounding boxes overlap it, in two compressed rows: centre segments (item =
** segment index) and border segments (item = 2 * segment + side, side 0 left, 1 right). A segment
** crosses only cells its bounding box overlaps, so a region of cells holds every segment that
** passes through it; the searches below rely on exactly that. The cell size makes the number of
** cells about the number of segments, but never smaller than a mean segment, so a cell holds a
** few segments of each kind wherever the track passes.
*/
struct ch_track_grid {
  double x0, y0;       /* corner of cell (0, 0) */
  double cell, inv;    /* cell size, metres, and its inverse */
  int nx, ny;          /* cells across and up */
  int *cstart, *citem; /* centre segments of cell c: citem[cstart[c] .. cstart[c + 1]) */
  int *bstart, *bitem; /* border segments, likewise */
};

#define CH__GRID_MAX_CELLS (1 << 24)

void ch_track__grid_free(struct ch_track_grid *g) {
  if (!g) return;
  free(g->cstart);
  free(g->citem);
  free(g->bstart);
  free(g->bitem);
  free(g);
}

static int ch__clampi(long v, int hi) {
  return v < 0 ? 0 : v > hi ? hi : (int)v;
}

static int ch__cell_x(const struct ch_track_grid *g, double x) {
  return ch__clampi((long)floor((x - g->x0) * g->inv), g->nx - 1);
}

static int ch__cell_y(const struct ch_track_grid *g, double y) {
  return ch__clampi((long)floor((y - g->y0) * g->inv), g->ny - 1);
}

/* The polylines of a track: 0 centre, 1 left, 2 right. */
static void ch__poly(const ch_track *t, int k, const double **x, const double **y) {
  *x = k == 0 ? t->cx : k == 1 ? t->lx : t->rx;
  *y = k == 0 ? t->cy : k == 1 ? t->ly : t->ry;
}

/* Count (items NULL) or fill the cell lists of polylines k0..k1; start[] holds running offsets. */
static void ch__bucket(const struct ch_track_grid *g, const ch_track *t, int k0, int k1, int *start,
                       int *items) {
  for (int k = k0; k <= k1; k++) {
    const double *x, *y;
    ch__poly(t, k, &x, &y);
    for (int i = 0; i < t->nseg; i++) {
      int j = (i + 1) % t->n;
      int ax = ch__cell_x(g, fmin(x[i], x[j])), bx = ch__cell_x(g, fmax(x[i], x[j]));
      int ay = ch__cell_y(g, fmin(y[i], y[j])), by = ch__cell_y(g, fmax(y[i], y[j]));
      for (int cy = ay; cy <= by; cy++)
        for (int cx = ax; cx <= bx; cx++) {
          int c = cy * g->nx + cx;
          if (items)
            items[start[c]++] = k == 0 ? i : 2 * i + (k - 1);
          else
            start[c + 1]++;
        }
    }
  }
}

/* Compressed rows for polylines k0..k1: count, prefix sums, fill, then shift the offsets back. */
static int ch__rows(const struct ch_track_grid *g, const ch_track *t, int k0, int k1, int **start,
                    int **items) {
  int ncell = g->nx * g->ny;
  int *st = calloc((size_t)ncell + 1, sizeof *st);
  if (!st) return CH_ENOMEM;
  ch__bucket(g, t, k0, k1, st, NULL);
  for (int c = 0; c < ncell; c++) st[c + 1] += st[c];
  int *it = malloc((size_t)(st[ncell] > 0 ? st[ncell] : 1) * sizeof *it);
  if (!it) {
    free(st);
    return CH_ENOMEM;
  }
  ch__bucket(g, t, k0, k1, st, it);
  for (int c = ncell; c > 0; c--) st[c] = st[c - 1];
  st[0] = 0;
  *start = st, *items = it;
  return CH_OK;
}

static void ch__extent(const ch_track *t, double *x0, double *y0, double *x1, double *y1) {
  *x0 = *y0 = INFINITY, *x1 = *y1 = -INFINITY;
  for (int k = 0; k < 3; k++) {
    const double *x, *y;
    ch__poly(t, k, &x, &y);
    for (int i = 0; i < t->n; i++) {
      *x0 = fmin(*x0, x[i]), *x1 = fmax(*x1, x[i]);
      *y0 = fmin(*y0, y[i]), *y1 = fmax(*y1, y[i]);
    }
  }
}

int ch_track__grid_build(ch_track *t, ch_error *err) {
  struct ch_track_grid *g = calloc(1, sizeof *g);
  if (!g) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", t->name);
  double x0, y0, x1, y1;
  ch__extent(t, &x0, &y0, &x1, &y1);
  double w = x1 - x0, h = y1 - y0, mean = t->length / t->nseg;
  double cell = fmax(sqrt(w * h / t->nseg), mean);
  if (!(cell > 0)) cell = fmax(fmax(w, h), 1e-3);
  /* A thin, long track (a straight) could ask for too many cells; coarser cells still work. */
  while ((w / cell + 1) * (h / cell + 1) > fmin(4.0 * t->nseg + 64, CH__GRID_MAX_CELLS))
    cell *= 1.5;
  g->cell = cell, g->inv = 1 / cell;
  g->nx = (int)(w / cell) + 1, g->ny = (int)(h / cell) + 1;
  /* Centre the cells on the track so points on its edge do not sit on a cell boundary. */
  g->x0 = x0 - 0.5 * (g->nx * cell - w), g->y0 = y0 - 0.5 * (g->ny * cell - h);
  t->grid = g;
  if (ch__rows(g, t, 0, 0, &g->cstart, &g->citem) || ch__rows(g, t, 1, 2, &g->bstart, &g->bitem))
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", t->name);
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Closest centre segment                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch__best {
  double d2;
  int seg;
} ch__best;

static void ch__consider(const ch_track *t, int seg, double x, double y, ch__best *b) {
  double d = ch_track__seg_d2(t, seg, x, y);
  if (d < b->d2 || (d == b->d2 && seg < b->seg)) b->d2 = d, b->seg = seg;
}

static void ch__cell_closest(const ch_track *t, long cx, long cy, double x, double y, ch__best *b) {
  const struct ch_track_grid *g = t->grid;
  if (cx < 0 || cy < 0 || cx >= g->nx || cy >= g->ny) return;
  int c = (int)cy * g->nx + (int)cx;
  for (int k = g->cstart[c]; k < g->cstart[c + 1]; k++) ch__consider(t, g->citem[k], x, y, b);
}

/* The cells at Chebyshev distance r from (ix, iy), clipped to the grid. */
static void ch__ring(const ch_track *t, long ix, long iy, long r, double x, double y, ch__best *b) {
  const struct ch_track_grid *g = t->grid;
  if (r == 0) {
    ch__cell_closest(t, ix, iy, x, y, b);
    return;
  }
  long xa = ix - r < 0 ? 0 : ix - r, xb = ix + r >= g->nx ? g->nx - 1 : ix + r;
  long ya = iy - r + 1 < 0 ? 0 : iy - r + 1, yb = iy + r - 1 >= g->ny ? g->ny - 1 : iy + r - 1;
  for (long cx = xa; cx <= xb; cx++) {
    ch__cell_closest(t, cx, iy - r, x, y, b);
    ch__cell_closest(t, cx, iy + r, x, y, b);
  }
  for (long cy = ya; cy <= yb; cy++) {
    ch__cell_closest(t, ix - r, cy, x, y, b);
    ch__cell_closest(t, ix + r, cy, x, y, b);
  }
}

static long ch__maxl(long a, long b) {
  return a > b ? a : b;
}

static int ch__scan_all(const ch_track *t, double x, double y) {
  ch__best b = {INFINITY, 0};
  for (int i = 0; i < t->nseg; i++) ch__consider(t, i, x, y, &b);
  return b.seg;
}

/* Rings of cells around the point's cell, nearest first. After ring r every segment not yet
** seen lies outside the square of cells searched, so once the best distance is within the
** point's distance to that square's edge, no other segment can be closer. */
int ch_track__grid_closest(const ch_track *t, double x, double y) {
  const struct ch_track_grid *g = t->grid;
  double fx = (x - g->x0) * g->inv, fy = (y - g->y0) * g->inv;
  /* Far away (or not a number), a scan is as good as any search and never overflows. */
  if (!(fabs(fx) < 1e9 && fabs(fy) < 1e9)) return ch__scan_all(t, x, y);
  long ix = (long)floor(fx), iy = (long)floor(fy);
  long dx = ix < 0 ? -ix : ix >= g->nx ? ix - (g->nx - 1) : 0;
  long dy = iy < 0 ? -iy : iy >= g->ny ? iy - (g->ny - 1) : 0;
  long r0 = ch__maxl(dx, dy);
  long rmax = ch__maxl(ch__maxl(ix, g->nx - 1 - ix), ch__maxl(iy, g->ny - 1 - iy));
  ch__best b = {INFINITY, -1};
  for (long r = r0; r <= rmax; r++) {
    ch__ring(t, ix, iy, r, x, y, &b);
    double edge = fmin(fmin(fx - (double)(ix - r), (double)(ix + r + 1) - fx),
                       fmin(fy - (double)(iy - r), (double)(iy + r + 1) - fy)) *
                  g->cell;
    if (b.seg >= 0 && edge * edge >= b.d2) break;
  }
  return b.seg >= 0 ? b.seg : ch__scan_all(t, x, y);
}

/* ------------------------------------------------------------------------------------------ */
/* Ray cast                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static double ch__cross(double ax, double ay, double bx, double by) {
  return ax * by - ay * bx;
}

/* Distance along the unit ray (ox, oy) + t (ux, uy), t >= 0, to segment (ax, ay)-(bx, by), or
** INFINITY. A segment lying along the ray is hit where it starts (or at the origin). */
static double ch__ray_segment(double ox, double oy, double ux, double uy, double ax, double ay,
                              double bx, double by) {
  double ex = bx - ax, ey = by - ay, wx = ax - ox, wy = ay - oy;
  double den = ch__cross(ux, uy, ex, ey);
  if (den == 0) {
    if (ch__cross(wx, wy, ux, uy) != 0) return INFINITY;
    double ta = wx * ux + wy * uy, tb = (bx - ox) * ux + (by - oy) * uy;
    if (ta < 0 && tb < 0) return INFINITY;
    return ta < 0 || tb < 0 ? 0 : fmin(ta, tb);
  }
  double t = ch__cross(wx, wy, ex, ey) / den, f = ch__cross(wx, wy, ux, uy) / den;
  return t >= 0 && f >= 0 && f <= 1 ? t : INFINITY;
}

static double ch__cell_hit(const ch_track *t, int cx, int cy, double ox, double oy, double ux,
                           double uy, double best) {
  const struct ch_track_grid *g = t->grid;
  int c = cy * g->nx + cx;
  for (int k = g->bstart[c]; k < g->bstart[c + 1]; k++) {
    int item = g->bitem[k], i = item >> 1, j = (i + 1) % t->n;
    const double *x = item & 1 ? t->rx : t->lx, *y = item & 1 ? t->ry : t->ly;
    best = fmin(best, ch__ray_segment(ox, oy, ux, uy, x[i], y[i], x[j], y[j]));
  }
  return best;
}

/* Clip the ray's parameter range [*t0, *t1] to the grid along one axis. */
static int ch__slab(double o, double u, double lo, double hi, double *t0, double *t1) {
  if (u == 0) return o >= lo && o <= hi;
  double a = (lo - o) / u, b = (hi - o) / u;
  if (a > b) {
    double s = a;
    a = b, b = s;
  }
  *t0 = fmax(*t0, a), *t1 = fmin(*t1, b);
  return *t0 <= *t1;
}

/* One axis of the cell walk (Amanatides and Woo): the step, and the ray parameter at which the
** next cell boundary is crossed and between boundaries. */
static void ch__walk_axis(double o, double u, double origin, double cell, int c, int *step,
                          double *next, double *delta) {
  if (u > 0) {
    *step = 1, *delta = cell / u;
    *next = (origin + (c + 1) * cell - o) / u;
  } else if (u < 0) {
    *step = -1, *delta = -cell / u;
    *next = (origin + c * cell - o) / u;
  } else {
    *step = 0, *delta = INFINITY, *next = INFINITY;
  }
}

int ch_track_raycast(const ch_track *t, double x, double y, double dx, double dy, double max_dist,
                     double *dist) {
  const struct ch_track_grid *g = t->grid;
  double len = sqrt(dx * dx + dy * dy);
  if (!(len > 0) || !(max_dist >= 0) || !isfinite(x) || !isfinite(y)) return 0;
  double ux = dx / len, uy = dy / len, t0 = 0, t1 = max_dist;
  if (!ch__slab(x, ux, g->x0, g->x0 + g->nx * g->cell, &t0, &t1) ||
      !ch__slab(y, uy, g->y0, g->y0 + g->ny * g->cell, &t0, &t1))
    return 0;
  int cx = ch__cell_x(g, x + t0 * ux), cy = ch__cell_y(g, y + t0 * uy), sx, sy;
  double nx, ny, ddx, ddy, best = INFINITY;
  ch__walk_axis(x, ux, g->x0, g->cell, cx, &sx, &nx, &ddx);
  ch__walk_axis(y, uy, g->y0, g->cell, cy, &sy, &ny, &ddy);
  for (;;) {
    best = ch__cell_hit(t, cx, cy, x, y, ux, uy, best);
    double exit = fmin(nx, ny);
    /* Every segment the ray meets before leaving this cell is in a cell walked so far. */
    if (best <= exit || exit > t1) break;
    if (nx < ny)
      cx += sx, nx += ddx;
    else
      cy += sy, ny += ddy;
    if (cx < 0 || cy < 0 || cx >= g->nx || cy >= g->ny) break;
  }
  if (!(best <= max_dist)) return 0;
  *dist = best;
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Crossings                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int ch__orient(double ax, double ay, double bx, double by, double cx, double cy) {
  double v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
  return (v > 0) - (v < 0);
}

/* Segment a of polyline p and segment b of polyline q intersect or touch. */
static int ch__crosses(const ch_track *t, int p, int a, int q, int b) {
  const double *px, *py, *qx, *qy;
  ch__poly(t, p, &px, &py);
  ch__poly(t, q, &qx, &qy);
  int a2 = (a + 1) % t->n, b2 = (b + 1) % t->n;
  if (fmax(px[a], px[a2]) < fmin(qx[b], qx[b2]) || fmax(qx[b], qx[b2]) < fmin(px[a], px[a2]) ||
      fmax(py[a], py[a2]) < fmin(qy[b], qy[b2]) || fmax(qy[b], qy[b2]) < fmin(py[a], py[a2]))
    return 0;
  int o1 = ch__orient(px[a], py[a], px[a2], py[a2], qx[b], qy[b]);
  int o2 = ch__orient(px[a], py[a], px[a2], py[a2], qx[b2], qy[b2]);
  int o3 = ch__orient(qx[b], qy[b], qx[b2], qy[b2], px[a], py[a]);
  int o4 = ch__orient(qx[b], qy[b], qx[b2], qy[b2], px[a2], py[a2]);
  return o1 * o2 <= 0 && o3 * o4 <= 0;
}

/* Segments of one polyline that meet where they join: neighbours, or (with zero-length border
** segments between them, where border points coincide) segments that share a vertex position. */
static int ch__joined(const ch_track *t, int p, int a, int b) {
  int d = abs(a - b);
  if (d <= 1 || (t->is_loop && d == t->nseg - 1)) return 1;
  const double *x, *y;
  ch__poly(t, p, &x, &y);
  int a2 = (a + 1) % t->n, b2 = (b + 1) % t->n;
  return (x[a2] == x[b] && y[a2] == y[b]) || (x[b2] == x[a] && y[b2] == y[a]);
}

/* The kinds of crossing, in the order they are reported. */
enum { CH__LL, CH__RR, CH__LC, CH__RC, CH__LR, CH__KINDS };

typedef struct ch__pair {
  int a, b; /* a: the first polyline's segment, b: the second's; a < 0 when none found */
} ch__pair;

static void ch__note(ch__pair *p, int a, int b) {
  if (p->a < 0 || a < p->a || (a == p->a && b < p->b)) p->a = a, p->b = b;
}

/* Border items x and y of one cell (2 * segment + side). */
static void ch__border_pair(const ch_track *t, int x, int y, ch__pair *found) {
  int sx = x & 1, sy = y & 1, a = x >> 1, b = y >> 1;
  if (sx == sy) {
    if (a == b || ch__joined(t, 1 + sx, a, b) || !ch__crosses(t, 1 + sx, a, 1 + sy, b)) return;
    ch__note(&found[sx ? CH__RR : CH__LL], a < b ? a : b, a < b ? b : a);
  } else {
    int l = sx ? b : a, r = sx ? a : b;
    if (ch__crosses(t, 1, l, 2, r)) ch__note(&found[CH__LR], l, r);
  }
}

static void ch__cell_crossings(const ch_track *t, int c, ch__pair *found) {
  const struct ch_track_grid *g = t->grid;
  for (int i = g->bstart[c]; i < g->bstart[c + 1]; i++) {
    int x = g->bitem[i], side = x & 1;
    for (int k = i + 1; k < g->bstart[c + 1]; k++) ch__border_pair(t, x, g->bitem[k], found);
    for (int k = g->cstart[c]; k < g->cstart[c + 1]; k++)
      if (ch__crosses(t, 1 + side, x >> 1, 0, g->citem[k]))
        ch__note(&found[side ? CH__RC : CH__LC], x >> 1, g->citem[k]);
  }
}

/* The crossing of kind found at segments p.a and p.b, named by line, row or point. */
static int ch__report(const ch_track__where *w, int kind, ch__pair p, ch_error *err) {
  char at[300], units[32];
  snprintf(units, sizeof units, "%ss", w->unit); /* "lines", "rows", "points" */
  int la = w->line ? w->line[p.a] : p.a, lb = w->line ? w->line[p.b] : p.b;
  ch_track__at(w, p.a, at, sizeof at);
  switch (kind) {
  case CH__LL:
  case CH__RR:
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: %s border crosses itself (segments starting at %s %d and %d)", at,
                        kind == CH__LL ? w->left : w->right, units, la, lb);
  case CH__LC:
  case CH__RC:
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: %s border crosses the centre line (the border segment starting at "
                        "%s %d meets the centre segment starting at %s %d)",
                        at, kind == CH__LC ? w->left : w->right, w->unit, la, w->unit, lb);
  default:
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: the %s and %s borders cross (the %s segment starting at %s %d meets "
                        "the %s segment starting at %s %d)",
                        at, w->left, w->right, w->left, w->unit, la, w->right, w->unit, lb);
  }
}

int ch_track__check_crossings(const ch_track *t, const ch_track__where *w, ch_error *err) {
  const struct ch_track_grid *g = t->grid;
  ch__pair found[CH__KINDS];
  for (int k = 0; k < CH__KINDS; k++) found[k].a = found[k].b = -1;
  for (int c = 0; c < g->nx * g->ny; c++) ch__cell_crossings(t, c, found);
  for (int k = 0; k < CH__KINDS; k++)
    if (found[k].a >= 0) return ch__report(w, k, found[k], err);
  return CH_OK;
}
