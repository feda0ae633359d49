/* camera.c -- sim2d cameras: the ground as a mip-mapped texture, seen row by row, and objects. */
#include <chicane/plugin_util.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim2d.h"

/* Grey levels (what DeepRacer's RGB frames turn into after its grey filter, roughly). */
#define CH__SKY    255 /* brighter than anything on the ground */
#define CH__GROUND 96  /* off the track: grass */
#define CH__ROAD   48  /* the track surface */
#define CH__BORDER 250 /* white border lines */
#define CH__CENTRE 180 /* the dashed yellow centre line */

static const uint8_t ch__box_shade[3] = {205, 225, 240}; /* ends, sides, top */
static const uint8_t ch__bot_shade[3] = {60, 80, 110};

#define CH__BORDER_WIDTH 0.05 /* metres, inside the track edge */
#define CH__CENTRE_WIDTH 0.04
#define CH__DASH         0.15 /* metres of line, then as much gap */
#define CH__TEXEL        0.01 /* metres, level 0, unless the track is too large for it */
#define CH__MARGIN       0.5
#define CH__MAX_TEXELS   (1 << 24)
#define CH__MAX_SIDE     16384 /* keeps 16.16 fixed-point texel coordinates in range */

/* ------------------------------------------------------------------------------------------ */
/* The ground texture                                                                          */
/* ------------------------------------------------------------------------------------------ */

static void ch__bounds(const ch_track *t, double *lo_x, double *lo_y, double *hi_x, double *hi_y) {
  *lo_x = *lo_y = HUGE_VAL, *hi_x = *hi_y = -HUGE_VAL;
  const double *xs[3] = {t->cx, t->lx, t->rx}, *ys[3] = {t->cy, t->ly, t->ry};
  for (int a = 0; a < 3; a++)
    for (int i = 0; i < t->n; i++) {
      *lo_x = fmin(*lo_x, xs[a][i]), *hi_x = fmax(*hi_x, xs[a][i]);
      *lo_y = fmin(*lo_y, ys[a][i]), *hi_y = fmax(*hi_y, ys[a][i]);
    }
}

static int ch__texture_alloc(ch_sim2d_texture *tx, const ch_track *t, ch_error *err) {
  double lo_x, lo_y, hi_x, hi_y;
  ch__bounds(t, &lo_x, &lo_y, &hi_x, &hi_y);
  tx->x0 = lo_x - CH__MARGIN, tx->y0 = lo_y - CH__MARGIN;
  double wm = hi_x - lo_x + 2 * CH__MARGIN, hm = hi_y - lo_y + 2 * CH__MARGIN;
  tx->size = CH__TEXEL;
  while (ceil(wm / tx->size) * ceil(hm / tx->size) > CH__MAX_TEXELS ||
         ceil(wm / tx->size) > CH__MAX_SIDE || ceil(hm / tx->size) > CH__MAX_SIDE)
    tx->size *= 2;
  size_t total = 0;
  int w = (int)ceil(wm / tx->size), h = (int)ceil(hm / tx->size), k = 0;
  for (; k < CH_SIM2D_MIP_LEVELS; k++) {
    tx->w[k] = w, tx->h[k] = h;
    total += (size_t)w * (size_t)h;
    if (w == 1 && h == 1) break;
    w = (w + 1) / 2, h = (h + 1) / 2;
  }
  tx->levels = k < CH_SIM2D_MIP_LEVELS ? k + 1 : CH_SIM2D_MIP_LEVELS;
  tx->block = malloc(total);
  if (!tx->block)
    return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory for the camera's %dx%d texture",
                        tx->w[0], tx->h[0]);
  uint8_t *p = tx->block;
  for (k = 0; k < tx->levels; k++) tx->texel[k] = p, p += (size_t)tx->w[k] * (size_t)tx->h[k];
  memset(tx->block, CH__GROUND, total);
  return CH_OK;
}

/* Crossings of the horizontal line y with the closed polyline (x, y)[0..n), appended to xs. */
static int ch__crossings(const double *px, const double *py, int n, double y, double *xs,
                         int count) {
  for (int i = 0; i < n; i++) {
    int j = (i + 1) % n;
    if ((py[i] <= y) == (py[j] <= y)) continue;
    xs[count++] = px[i] + (y - py[i]) * (px[j] - px[i]) / (py[j] - py[i]);
  }
  return count;
}

/* The track surface: even-odd fill of the border outlines at texel centres. A loop is the
** ring between its two closed borders; a straight track is one outline, left then right. */
static int ch__fill_road(ch_sim2d_texture *tx, const ch_track *t, ch_error *err) {
  int n = t->n, outline = t->is_loop ? n : 2 * n;
  double *xs = malloc(sizeof(double) * (size_t)(2 * n + 2));
  double *ox = t->is_loop ? NULL : malloc(sizeof(double) * (size_t)outline);
  double *oy = t->is_loop ? NULL : malloc(sizeof(double) * (size_t)outline);
  if (!xs || (!t->is_loop && (!ox || !oy))) {
    free(xs), free(ox), free(oy);
    return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory drawing the camera's texture");
  }
  for (int i = 0; !t->is_loop && i < n; i++) {
    ox[i] = t->lx[i], oy[i] = t->ly[i];
    ox[outline - 1 - i] = t->rx[i], oy[outline - 1 - i] = t->ry[i];
  }
  int w = tx->w[0];
  for (int row = 0; row < tx->h[0]; row++) {
    double y = tx->y0 + (row + 0.5) * tx->size;
    int m = t->is_loop
                ? ch__crossings(t->rx, t->ry, n, y, xs, ch__crossings(t->lx, t->ly, n, y, xs, 0))
                : ch__crossings(ox, oy, outline, y, xs, 0);
    for (int a = 1; a < m; a++)
      for (int b = a; b > 0 && xs[b - 1] > xs[b]; b--) {
        double tmp = xs[b];
        xs[b] = xs[b - 1], xs[b - 1] = tmp;
      }
    uint8_t *line = tx->texel[0] + (size_t)row * (size_t)w;
    for (int a = 0; a + 1 < m; a += 2) {
      int c0 = (int)ceil((xs[a] - tx->x0) / tx->size - 0.5);
      int c1 = (int)ceil((xs[a + 1] - tx->x0) / tx->size - 0.5);
      c0 = c0 < 0 ? 0 : c0, c1 = c1 > w ? w : c1;
      if (c1 > c0) memset(line + c0, CH__ROAD, (size_t)(c1 - c0));
    }
  }
  free(xs), free(ox), free(oy);
  return CH_OK;
}

/* Paint the texels within half_width of segment a-b. A border line only covers the track (so
** it lies inside the edge); a centre line is dashed by arc position (s0 at a). */
static void ch__stamp(ch_sim2d_texture *tx, double ax, double ay, double bx, double by,
                      double half_width, uint8_t colour, int dashed, double s0) {
  double dx = bx - ax, dy = by - ay, len = sqrt(dx * dx + dy * dy);
  if (len <= 0) return;
  dx /= len, dy /= len;
  int c0 = (int)floor((fmin(ax, bx) - half_width - tx->x0) / tx->size);
  int c1 = (int)ceil((fmax(ax, bx) + half_width - tx->x0) / tx->size);
  int r0 = (int)floor((fmin(ay, by) - half_width - tx->y0) / tx->size);
  int r1 = (int)ceil((fmax(ay, by) + half_width - tx->y0) / tx->size);
  c0 = c0 < 0 ? 0 : c0, r0 = r0 < 0 ? 0 : r0;
  c1 = c1 > tx->w[0] ? tx->w[0] : c1, r1 = r1 > tx->h[0] ? tx->h[0] : r1;
  for (int r = r0; r < r1; r++)
    for (int c = c0; c < c1; c++) {
      double px = tx->x0 + (c + 0.5) * tx->size - ax, py = tx->y0 + (r + 0.5) * tx->size - ay;
      double a = px * dx + py * dy;
      a = a < 0 ? 0 : a > len ? len : a;
      double ex = px - a * dx, ey = py - a * dy;
      if (ex * ex + ey * ey > half_width * half_width) continue;
      uint8_t *texel = tx->texel[0] + (size_t)r * (size_t)tx->w[0] + c;
      if (dashed ? fmod(s0 + a, 2 * CH__DASH) < CH__DASH : *texel != CH__GROUND) *texel = colour;
    }
}

static void ch__paint_lines(ch_sim2d_texture *tx, const ch_track *t) {
  for (int i = 0; i < t->nseg; i++) {
    int j = (i + 1) % t->n;
    ch__stamp(tx, t->lx[i], t->ly[i], t->lx[j], t->ly[j], CH__BORDER_WIDTH, CH__BORDER, 0, 0);
    ch__stamp(tx, t->rx[i], t->ry[i], t->rx[j], t->ry[j], CH__BORDER_WIDTH, CH__BORDER, 0, 0);
  }
  for (int i = 0; i < t->nseg; i++) {
    int j = (i + 1) % t->n;
    ch__stamp(tx, t->cx[i], t->cy[i], t->cx[j], t->cy[j], 0.5 * CH__CENTRE_WIDTH, CH__CENTRE, 1,
              t->s[i]);
  }
  /* The start line across the track at point 0, as wide as a border line. */
  ch__stamp(tx, t->lx[0], t->ly[0], t->rx[0], t->ry[0], 0.5 * CH__BORDER_WIDTH, CH__BORDER, 0, 0);
}

/* Level k + 1 averages 2x2 texels of level k; texels past an odd edge count as ground. */
static void ch__mipmap(ch_sim2d_texture *tx) {
  for (int k = 0; k + 1 < tx->levels; k++) {
    const uint8_t *src = tx->texel[k];
    int sw = tx->w[k], sh = tx->h[k];
    for (int r = 0; r < tx->h[k + 1]; r++)
      for (int c = 0; c < tx->w[k + 1]; c++) {
        int sum = 2;
        for (int q = 0; q < 4; q++) {
          int rr = 2 * r + (q >> 1), cc = 2 * c + (q & 1);
          sum += rr < sh && cc < sw ? src[(size_t)rr * (size_t)sw + cc] : CH__GROUND;
        }
        tx->texel[k + 1][(size_t)r * (size_t)tx->w[k + 1] + c] = (uint8_t)(sum / 4);
      }
  }
}

static int ch__texture(ch_sim2d_texture *tx, const ch_track *t, ch_error *err) {
  int rc = ch__texture_alloc(tx, t, err);
  if (!rc) rc = ch__fill_road(tx, t, err);
  if (rc) return rc;
  ch__paint_lines(tx, t);
  ch__mipmap(tx);
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* A camera in the world: position and unit forward, right and up vectors. */
typedef struct ch__view {
  double c[3];
  double f[3], r[3], u[3];
} ch__view;

/* The camera lateral metres left of the car's axis, pitched down as mounted. */
static void ch__view_of(double x, double y, double cs, double sn, double lateral, ch__view *v) {
  double cp = cos(CH_SIM2D_CAM_PITCH), sp = sin(CH_SIM2D_CAM_PITCH);
  v->c[0] = x + cs * CH_SIM2D_CAM_FORWARD - sn * lateral;
  v->c[1] = y + sn * CH_SIM2D_CAM_FORWARD + cs * lateral;
  v->c[2] = CH_SIM2D_CAM_HEIGHT;
  v->f[0] = cs * cp, v->f[1] = sn * cp, v->f[2] = -sp;
  v->r[0] = sn, v->r[1] = -cs, v->r[2] = 0;
  v->u[0] = cs * sp, v->u[1] = sn * sp, v->u[2] = cp;
}

/* Narrow [lo, hi] to the pixels c where e <= p + c * d <= size - e. e, a hundredth of a texel,
** is far more than the fixed-point steps can drift over a row, so no fetch leaves the texture
** (the texels that e cuts off are ground anyway: the texture has a margin of it). */
static void ch__clip(double p, double d, double size, double *lo, double *hi) {
  const double e = 0.01;
  if (d == 0) {
    if (!(p >= e && p <= size - e)) *hi = *lo - 1;
    return;
  }
  double a = (e - p) / d, b = (size - e - p) / d;
  if (a > b) {
    double tmp = a;
    a = b, b = tmp;
  }
  *lo = fmax(*lo, a), *hi = fmin(*hi, b);
}

/* One row of n pixels: texel coordinates (u, v) + c * (du, dv) at one mip level, clipped first
** so that the 16.16 fixed-point coordinates stay inside the texture. */
static void ch__span(uint8_t *out, int n, double u, double v, double du, double dv,
                     const uint8_t *tex, int tw, int th) {
  double lo = 0, hi = n - 1;
  ch__clip(u, du, tw, &lo, &hi);
  ch__clip(v, dv, th, &lo, &hi);
  int c0 = hi >= lo ? (int)ceil(lo) : n, c1 = hi >= lo ? (int)floor(hi) + 1 : n;
  c0 = c0 < 0 ? 0 : c0 > n ? n : c0, c1 = c1 < c0 ? c0 : c1 > n ? n : c1;
  memset(out, CH__GROUND, (size_t)c0);
  memset(out + c1, CH__GROUND, (size_t)(n - c1));
  if (c1 == c0) return;
  if (fabs(du) > CH__MAX_SIDE || fabs(dv) > CH__MAX_SIDE) {
    memset(out + c0, CH__GROUND, (size_t)(c1 - c0));
    return;
  }
  int32_t fu = (int32_t)lrint((u + c0 * du) * 65536.0);
  int32_t fv = (int32_t)lrint((v + c0 * dv) * 65536.0);
  int32_t fdu = (int32_t)lrint(du * 65536.0), fdv = (int32_t)lrint(dv * 65536.0);
  for (int c = c0; c < c1; c++) {
    out[c] = tex[(size_t)(fv >> 16) * (size_t)tw + (size_t)(fu >> 16)];
    fu += fdu, fv += fdv;
  }
}

/*
** Rows below the horizon see the ground plane; along one row the ray's height component is
** constant, so the ground point moves by a constant step per pixel. The mip level is the one
** whose texels are about as large as a pixel's footprint across or along the row.
*/
static void ch__ground(const ch_sim2d_camera *cam, const ch__view *v, uint8_t *img) {
  const ch_sim2d_texture *tx = &cam->tex;
  int W = cam->width, H = cam->height;
  double fx = cam->fx, hw = 0.5 * W, hh = 0.5 * H;
  for (int row = 0; row < H; row++) {
    uint8_t *out = img + (size_t)row * (size_t)W;
    double yn = (row + 0.5 - hh) / fx, dz = v->f[2] - yn * v->u[2];
    double yn2 = yn + 1 / fx, dz2 = v->f[2] - yn2 * v->u[2];
    if (dz > -1e-9) {
      memset(out, CH__SKY, (size_t)W);
      continue;
    }
    double t = v->c[2] / -dz, t2 = v->c[2] / -dz2;
    double gx = v->c[0] + t * (v->f[0] - yn * v->u[0]), gy = v->c[1] + t * (v->f[1] - yn * v->u[1]);
    double g2x = v->c[0] + t2 * (v->f[0] - yn2 * v->u[0]);
    double g2y = v->c[1] + t2 * (v->f[1] - yn2 * v->u[1]);
    double sx = t * v->r[0] / fx, sy = t * v->r[1] / fx;
    /* Seen at a grazing angle a pixel's footprint is far longer than wide. Following the
    ** width keeps lines sharp across the row; allowing the length up to 4 texels keeps the
    ** dashes from shimmering along it. */
    double dx = g2x - gx, dy = g2y - gy;
    double across = t / fx / tx->size, along = sqrt(dx * dx + dy * dy) / tx->size;
    double foot = fmax(across, 0.25 * along);
    int level = 0;
    while (foot >= 2 && level + 1 < tx->levels) foot *= 0.5, level++;
    double scale = 1 / ldexp(tx->size, level), x0 = gx + (0.5 - hw) * sx, y0 = gy + (0.5 - hw) * sy;
    ch__span(out, W, (x0 - tx->x0) * scale, (y0 - tx->y0) * scale, sx * scale, sy * scale,
             tx->texel[level], tx->w[level], tx->h[level]);
  }
}

/* Where the ray from the camera along d first meets the box of o: distance in units of d,
** and the face (0: the ends, 1: the sides, 2: the top); HUGE_VAL when it misses. */
static double ch__ray_box(const ch__view *v, const double d[3], const ch_sim2d_obj *o, int *face) {
  double px = v->c[0] - o->x, py = v->c[1] - o->y;
  double p[3] = {px * o->cs + py * o->sn, -px * o->sn + py * o->cs, v->c[2] - 0.5 * o->height};
  double q[3] = {d[0] * o->cs + d[1] * o->sn, -d[0] * o->sn + d[1] * o->cs, d[2]};
  double h[3] = {o->half_length, o->half_width, 0.5 * o->height};
  double t0 = 0, t1 = HUGE_VAL;
  *face = 0;
  for (int k = 0; k < 3; k++) {
    if (fabs(q[k]) < 1e-15) {
      if (fabs(p[k]) > h[k]) return HUGE_VAL;
      continue;
    }
    double a = (-h[k] - p[k]) / q[k], b = (h[k] - p[k]) / q[k];
    if (a > b) {
      double tmp = a;
      a = b, b = tmp;
    }
    if (a > t0) t0 = a, *face = k;
    if (b < t1) t1 = b;
    if (t0 > t1) return HUGE_VAL;
  }
  return t0;
}

typedef struct ch__rect {
  int c0, c1, r0, r1; /* pixels [c0, c1) x [r0, r1) */
} ch__rect;

/* The pixels an object can cover: the bounding rectangle of its projected corners, or the
** whole image when a corner is behind the camera. Returns 0 when it is out of sight. */
static int ch__screen_rect(const ch_sim2d_camera *cam, const ch__view *v, const ch_sim2d_obj *o,
                           ch__rect *out) {
  double lo_x = HUGE_VAL, hi_x = -HUGE_VAL, lo_y = HUGE_VAL, hi_y = -HUGE_VAL;
  int behind = 0;
  for (int k = 0; k < 8; k++) {
    double a = (k & 1 ? 1 : -1) * o->half_length, b = (k & 2 ? 1 : -1) * o->half_width;
    double rel[3] = {o->x + a * o->cs - b * o->sn - v->c[0], o->y + a * o->sn + b * o->cs - v->c[1],
                     (k & 4 ? o->height : 0) - v->c[2]};
    double zc = rel[0] * v->f[0] + rel[1] * v->f[1] + rel[2] * v->f[2];
    double xc = rel[0] * v->r[0] + rel[1] * v->r[1];
    double yc = rel[0] * v->u[0] + rel[1] * v->u[1] + rel[2] * v->u[2];
    if (zc < 1e-3) {
      behind++;
      continue;
    }
    double px = 0.5 * cam->width + cam->fx * xc / zc, py = 0.5 * cam->height - cam->fx * yc / zc;
    lo_x = fmin(lo_x, px), hi_x = fmax(hi_x, px), lo_y = fmin(lo_y, py), hi_y = fmax(hi_y, py);
  }
  if (behind == 8) return 0;
  *out = (ch__rect){0, cam->width, 0, cam->height};
  if (!behind) {
    out->c0 = lo_x < 0 ? 0 : (int)lo_x, out->r0 = lo_y < 0 ? 0 : (int)lo_y;
    out->c1 = hi_x + 1 > cam->width ? cam->width : (int)hi_x + 1;
    out->r1 = hi_y + 1 > cam->height ? cam->height : (int)hi_y + 1;
  }
  return out->c0 < out->c1 && out->r0 < out->r1;
}

static void ch__draw_object(const ch_sim2d_camera *cam, const ch__view *v, const ch_sim2d_obj *o,
                            const ch__rect *rc, uint8_t *img) {
  const uint8_t *shade = o->kind == CH_OBJECT_BOX ? ch__box_shade : ch__bot_shade;
  double hw = 0.5 * cam->width, hh = 0.5 * cam->height;
  for (int row = rc->r0; row < rc->r1; row++) {
    double yn = (row + 0.5 - hh) / cam->fx;
    for (int col = rc->c0; col < rc->c1; col++) {
      double xn = (col + 0.5 - hw) / cam->fx, d[3];
      for (int k = 0; k < 3; k++) d[k] = v->f[k] + xn * v->r[k] - yn * v->u[k];
      int face;
      double t = ch__ray_box(v, d, o, &face);
      size_t at = (size_t)row * (size_t)cam->width + (size_t)col;
      if (t < cam->depth[at]) cam->depth[at] = (float)t, img[at] = shade[face];
    }
  }
}

/* Objects after the ground, nearest wins per pixel (the ground never hides one: the box of
** an object stands on it). */
static void ch__objects(const ch_sim2d *sim, uint32_t i, const ch__view *v, uint8_t *img) {
  const ch_sim2d_camera *cam = &sim->cam;
  const ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  ch__rect rc[CH_SIM2D_MAX_OBJECTS];
  int n = sim->cars.nobj[i], seen[CH_SIM2D_MAX_OBJECTS];
  for (int k = 0; k < n; k++) {
    seen[k] = ch__screen_rect(cam, v, &o[k], &rc[k]);
    for (int row = rc[k].r0; seen[k] && row < rc[k].r1; row++)
      for (int col = rc[k].c0; col < rc[k].c1; col++)
        cam->depth[(size_t)row * (size_t)cam->width + (size_t)col] = FLT_MAX;
  }
  for (int k = 0; k < n; k++)
    if (seen[k]) ch__draw_object(cam, v, &o[k], &rc[k], img);
}

/* All cameras of car i into frame (cams planes). */
static void ch__render(const ch_sim2d *sim, uint32_t i, uint8_t *frame) {
  const ch_sim2d_camera *cam = &sim->cam;
  size_t plane = (size_t)cam->width * (size_t)cam->height;
  for (int k = 0; k < cam->cams; k++) {
    double lateral = cam->cams == 2 ? (k == 0 ? 0.5 : -0.5) * CH_SIM2D_CAM_BASELINE : 0;
    ch__view v;
    ch__view_of(sim->cars.x[i], sim->cars.y[i], sim->cars.cyaw[i], sim->cars.syaw[i], lateral, &v);
    ch__ground(cam, &v, frame + k * plane);
    if (sim->cars.nobj[i]) ch__objects(sim, i, &v, frame + k * plane);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The camera sensor                                                                           */
/* ------------------------------------------------------------------------------------------ */

int ch_sim2d_camera_create(ch_sim2d *sim, ch_error *err) {
  ch_sim2d_camera *cam = &sim->cam;
  unsigned s = sim->cfg.sensors;
  memset(cam, 0, sizeof *cam);
  if (!(s & (CH_SIM2D_CAMERA | CH_SIM2D_STEREO))) return CH_OK;
  cam->width = CH_SIM2D_CAM_WIDTH / sim->cfg.downscale;
  cam->height = CH_SIM2D_CAM_HEIGHT_PX / sim->cfg.downscale;
  cam->cams = s & CH_SIM2D_STEREO ? 2 : 1;
  cam->stack = sim->cfg.stack_size;
  cam->fx = 0.5 * cam->width / tan(0.5 * CH_SIM2D_CAM_HFOV);
  int rc = ch__texture(&cam->tex, sim->tracks[0], err);
  if (rc) return rc;
  size_t plane = (size_t)cam->width * (size_t)cam->height;
  cam->depth = malloc(plane * sizeof(float));
  if (cam->stack > 1)
    cam->frames =
        malloc((size_t)sim->cfg.num_cars * (size_t)cam->stack * (size_t)cam->cams * plane);
  if (!cam->depth || (cam->stack > 1 && !cam->frames))
    return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory for %u cars' camera frames",
                        sim->cfg.num_cars);
  return CH_OK;
}

void ch_sim2d_camera_free(ch_sim2d_camera *cam) {
  free(cam->tex.block);
  free(cam->frames);
  free(cam->depth);
  memset(cam, 0, sizeof *cam);
}

size_t ch_sim2d_camera_image_size(const ch_sim2d *sim) {
  const ch_sim2d_camera *cam = &sim->cam;
  return (size_t)cam->width * (size_t)cam->height * (size_t)cam->cams * (size_t)cam->stack;
}

/*
** A stack of one renders straight into image (or not at all without one). A deeper stack
** keeps every car's frames in a ring, rendered even when image is NULL so that the stack stays
** whole; fresh (a reset) fills the ring with the first frame.
*/
void ch_sim2d_camera_observe(ch_sim2d *sim, uint32_t i, int fresh, uint8_t *image) {
  ch_sim2d_camera *cam = &sim->cam;
  if (cam->stack == 1) {
    if (image) ch__render(sim, i, image);
    return;
  }
  size_t frame = (size_t)cam->width * (size_t)cam->height * (size_t)cam->cams;
  uint8_t *ring = cam->frames + (size_t)i * (size_t)cam->stack * frame;
  int slot = fresh ? 0 : (sim->cars.frame[i] + 1) % cam->stack;
  sim->cars.frame[i] = slot;
  ch__render(sim, i, ring + (size_t)slot * frame);
  for (int k = 1; fresh && k < cam->stack; k++) memcpy(ring + (size_t)k * frame, ring, frame);
  for (int k = 0; image && k < cam->stack; k++)
    memcpy(image + (size_t)k * frame, ring + (size_t)((slot + 1 + k) % cam->stack) * frame, frame);
}
