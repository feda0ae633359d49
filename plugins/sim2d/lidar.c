/* lidar.c -- sim2d lidar: 64 beams over +-150 degrees that hit the episode's objects. */
#include <math.h>

#include "sim2d.h"

void ch_sim2d_lidar_init(ch_sim2d *sim) {
  for (int k = 0; k < CH_SIM2D_LIDAR_BEAMS; k++) {
    double deg =
        -CH_SIM2D_LIDAR_HALF_FOV + 2 * CH_SIM2D_LIDAR_HALF_FOV * k / (CH_SIM2D_LIDAR_BEAMS - 1);
    sim->beam[k][0] = cos(deg * (CH_SIM2D_PI / 180));
    sim->beam[k][1] = sin(deg * (CH_SIM2D_PI / 180));
  }
}

/* Narrow [t0, t1] to where p + t q lies within [-h, h]; 0 when it never does. */
static int ch__slab(double p, double q, double h, double *t0, double *t1) {
  if (fabs(q) < 1e-15) return fabs(p) <= h;
  double a = (-h - p) / q, b = (h - p) / q;
  if (a > b) {
    double tmp = a;
    a = b, b = tmp;
  }
  if (a > *t0) *t0 = a;
  if (b < *t1) *t1 = b;
  return *t0 <= *t1;
}

/* Distance from (ox, oy) along the unit direction (dx, dy) to the footprint of o (0 from
** inside it), or HUGE_VAL when the ray misses. */
static double ch__ray_rect(double ox, double oy, double dx, double dy, const ch_sim2d_obj *o) {
  double px = ox - o->x, py = oy - o->y;
  double lx = px * o->cs + py * o->sn, ly = -px * o->sn + py * o->cs;
  double qx = dx * o->cs + dy * o->sn, qy = -dx * o->sn + dy * o->cs;
  double t0 = 0, t1 = HUGE_VAL;
  if (!ch__slab(lx, qx, o->half_length, &t0, &t1) || !ch__slab(ly, qy, o->half_width, &t0, &t1))
    return HUGE_VAL;
  return t0;
}

/* Test the beams whose angles (relative to the heading, from -150 degrees) fall in [lo, hi]. */
static void ch__beams(const ch_sim2d *sim, double lo, double hi, double x, double y, double cs,
                      double sn, const ch_sim2d_obj *o, double *range) {
  double first = -CH_SIM2D_LIDAR_HALF_FOV * (CH_SIM2D_PI / 180);
  double step = 2 * CH_SIM2D_LIDAR_HALF_FOV * (CH_SIM2D_PI / 180) / (CH_SIM2D_LIDAR_BEAMS - 1);
  int k0 = (int)ceil((lo - first) / step), k1 = (int)floor((hi - first) / step);
  if (k0 < 0) k0 = 0;
  if (k1 > CH_SIM2D_LIDAR_BEAMS - 1) k1 = CH_SIM2D_LIDAR_BEAMS - 1;
  for (int k = k0; k <= k1; k++) {
    double bx = sim->beam[k][0], by = sim->beam[k][1];
    double d = ch__ray_rect(x, y, cs * bx - sn * by, sn * bx + cs * by, o);
    if (d < range[k]) range[k] = d;
  }
}

/*
** Only the beams within an object's angular extent are cast at it: its bounding circle seen
** from the car spans beta +- asin(r / distance). From inside that circle every beam is cast.
*/
void ch_sim2d_lidar_scan(const ch_sim2d *sim, uint32_t i, double range[CH_SIM2D_LIDAR_BEAMS]) {
  for (int k = 0; k < CH_SIM2D_LIDAR_BEAMS; k++) range[k] = CH_SIM2D_LIDAR_MAX_RANGE;
  int n = sim->cars.nobj[i];
  if (n == 0) return;
  const ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  double x = sim->cars.x[i], y = sim->cars.y[i], yaw = sim->cars.yaw[i];
  double cs = sim->cars.cyaw[i], sn = sim->cars.syaw[i], pi = CH_SIM2D_PI;
  for (int j = 0; j < n; j++) {
    double dx = o[j].x - x, dy = o[j].y - y, dc = sqrt(dx * dx + dy * dy);
    double r = sqrt(o[j].half_length * o[j].half_length + o[j].half_width * o[j].half_width);
    if (dc - r > CH_SIM2D_LIDAR_MAX_RANGE) continue;
    if (dc <= r) {
      ch__beams(sim, -pi, pi, x, y, cs, sn, &o[j], range);
      continue;
    }
    double beta = remainder(atan2(dy, dx) - yaw, 2 * pi), delta = asin(r / dc);
    for (int w = -1; w <= 1; w++)
      ch__beams(sim, beta - delta + w * 2 * pi, beta + delta + w * 2 * pi, x, y, cs, sn, &o[j],
                range);
  }
}

void ch_sim2d_lidar_observe(const ch_sim2d *sim, uint32_t i, float *out) {
  double range[CH_SIM2D_LIDAR_BEAMS];
  ch_sim2d_lidar_scan(sim, i, range);
  for (int k = 0; k < CH_SIM2D_LIDAR_BEAMS; k++)
    range[k] = range[k] < CH_SIM2D_LIDAR_MIN_RANGE ? CH_SIM2D_LIDAR_MIN_RANGE : range[k];
  if (sim->cfg.sensors & CH_SIM2D_LIDAR) {
    double max = sim->cfg.lidar_max_range;
    for (int k = 0; k < CH_SIM2D_LIDAR_BEAMS; k++)
      out[k] = (float)((range[k] > max ? max : range[k]) / max);
    return;
  }
  /* DeepRacer's ObservationBinarySectorFilter: the minimum of each 8 consecutive beams, 1 when
  ** nearer than the clipping distance. */
  int per = CH_SIM2D_LIDAR_BEAMS / CH_SIM2D_SECTORS;
  for (int s = 0; s < CH_SIM2D_SECTORS; s++) {
    double m = HUGE_VAL;
    for (int k = s * per; k < (s + 1) * per; k++) m = range[k] < m ? range[k] : m;
    out[s] = m < CH_SIM2D_SECTOR_CLIP ? 1.0f : 0.0f;
  }
}
