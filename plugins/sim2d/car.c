/* car.c -- sim2d car physics: a kinematic bicycle with speed ramps and a grip limit. */
#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>

#include "sim2d.h"

static double ch__clamp(double v, double lo, double hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/* cos and sin of a small angle (|a| < 0.15, a half turn of one substep): Taylor series to the
** 9th power, exact to rounding there, and much cheaper than the library's. */
static void ch__small_sincos(double a, double *c, double *s) {
  double a2 = a * a;
  *c = 1 - a2 * (1.0 / 2 - a2 * (1.0 / 24 - a2 * (1.0 / 720 - a2 * (1.0 / 40320))));
  *s = a * (1 - a2 * (1.0 / 6 - a2 * (1.0 / 120 - a2 * (1.0 / 5040 - a2 * (1.0 / 362880)))));
}

/*
** One step (1/15 s) in equal substeps. Speed moves toward the command within the ramp limits
** first, then the car turns and moves with that speed. The path curvature asked for by the
** steering, tan(steer) / wheelbase, is limited so that v^2 * curvature <= mu * g: past the grip
** limit the car runs wide instead of turning as commanded. The reference point is the centre
** of the footprint, moved along the heading at the substep's mid-point heading. The heading's
** cosine and sine turn with it by half-turn rotations (at most 4.2 rad/s * 1/30 s each: the
** grip limit bounds v * curvature by sqrt(mu g * tan(30 deg) / wheelbase)), renormalised once
** a step so that rounding cannot build up. curv is tan(steer) / wheelbase, kept per car.
*/
void ch_sim2d_car_advance(ch_sim2d_cars *c, uint32_t i, int substeps) {
  double dt = CH_SIM2D_STEP_SECONDS / substeps;
  double x = c->x[i], y = c->y[i], yaw = c->yaw[i], v = c->v[i], target = c->speed[i];
  double cs = c->cyaw[i], sn = c->syaw[i], k = c->curv[i];
  for (int n = 0; n < substeps; n++) {
    v += ch__clamp(target - v, -CH_SIM2D_DECEL * dt, CH_SIM2D_ACCEL * dt);
    double kk = k;
    if (v * v * fabs(kk) > CH_SIM2D_MU_G) kk = copysign(CH_SIM2D_MU_G / (v * v), k);
    double turn = v * kk * dt, hc, hs;
    ch__small_sincos(0.5 * turn, &hc, &hs);
    double mc = cs * hc - sn * hs, ms = sn * hc + cs * hs;
    x += v * dt * mc;
    y += v * dt * ms;
    cs = mc * hc - ms * hs, sn = ms * hc + mc * hs;
    yaw += turn;
  }
  if (yaw > CH_SIM2D_PI) yaw -= 2 * CH_SIM2D_PI;
  if (yaw <= -CH_SIM2D_PI) yaw += 2 * CH_SIM2D_PI;
  double norm = 1.5 - 0.5 * (cs * cs + sn * sn);
  c->x[i] = x, c->y[i] = y, c->yaw[i] = yaw, c->v[i] = v;
  c->cyaw[i] = cs * norm, c->syaw[i] = sn * norm;
}

/* Half the diagonal between the wheels: no wheel is farther than this from the centre. */
#define CH__WHEEL_REACH 0.11526

/* Arc distance either side of a segment over which min_half looks: more than a wheel's
** closest centre-line point can be from the car's (twice its offset plus the reach). */
#define CH__MARGIN_WINDOW 1.5

static int ch__margins_of(const ch_track *t, double **out) {
  double *m = malloc(sizeof(double) * (size_t)t->nseg);
  if (!m) return CH_ENOMEM;
  for (int i = 0; i < t->nseg; i++) {
    double lo = t->s[i] - CH__MARGIN_WINDOW, hi = t->s[i + 1] + CH__MARGIN_WINDOW, best = HUGE_VAL;
    for (int j = 0; j < t->n; j++) {
      double d = t->s[j];
      if (t->is_loop && d < lo) d += t->length;
      if (t->is_loop && d > hi) d -= t->length;
      if (d >= lo && d <= hi) best = fmin(best, fmin(t->hl[j], t->hr[j]));
    }
    m[i] = best;
  }
  *out = m;
  return CH_OK;
}

/* For every segment of either direction, the least half width of the points within
** CH__MARGIN_WINDOW: a car whose offset plus the wheels' reach stays below it has all four
** wheels on, without looking at them. */
int ch_sim2d_car_margins(ch_sim2d *sim, ch_error *err) {
  for (int d = 0; d < 2; d++)
    if (ch__margins_of(sim->tracks[d], &sim->min_half[d]) != CH_OK)
      return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory");
  return CH_OK;
}

/* How many of the four wheels touch the track: a wheel is on when its lateral offset lies
** within the half width on its side. The car's own segment is the hint for each wheel. */
int ch_sim2d_car_wheels_on(const ch_sim2d *sim, uint32_t i, const ch_track_proj *p) {
  static const double fx[4] = {0.5 * CH_SIM2D_WHEELBASE, 0.5 * CH_SIM2D_WHEELBASE,
                               -0.5 * CH_SIM2D_WHEELBASE, -0.5 * CH_SIM2D_WHEELBASE};
  static const double fy[4] = {0.5 * CH_SIM2D_WHEEL_TRACK, -0.5 * CH_SIM2D_WHEEL_TRACK,
                               0.5 * CH_SIM2D_WHEEL_TRACK, -0.5 * CH_SIM2D_WHEEL_TRACK};
  const ch_sim2d_cars *c = &sim->cars;
  if (p->distance + CH__WHEEL_REACH < sim->min_half[c->dir[i]][p->segment]) return 4;
  const ch_track *t = ch_sim2d_track(sim, i);
  double x = c->x[i], y = c->y[i], cs = c->cyaw[i], sn = c->syaw[i];
  int on = 0;
  for (int w = 0; w < 4; w++) {
    double off, hl, hr;
    ch_track_lateral(t, x + fx[w] * cs - fy[w] * sn, y + fx[w] * sn + fy[w] * cs, p->segment, &off,
                     &hl, &hr);
    on += off >= 0 ? off <= hl : -off <= hr;
  }
  return on;
}

/* Half extent of a rectangle (axes (cs, sn) and (-sn, cs), half sizes hl, hw) along (nx, ny). */
static double ch__extent(double cs, double sn, double hl, double hw, double nx, double ny) {
  return hl * fabs(cs * nx + sn * ny) + hw * fabs(-sn * nx + cs * ny);
}

/* Separating axis test of two oriented rectangles: centre, heading (cos, sin), half length
** along the heading and half width across it. Touching counts as overlapping. */
int ch_sim2d_rects_overlap(double ax, double ay, double acs, double asn, double ahl, double ahw,
                           double bx, double by, double bcs, double bsn, double bhl, double bhw) {
  const double axes[4][2] = {{acs, asn}, {-asn, acs}, {bcs, bsn}, {-bsn, bcs}};
  double dx = bx - ax, dy = by - ay;
  for (int k = 0; k < 4; k++) {
    double nx = axes[k][0], ny = axes[k][1];
    double ra = ch__extent(acs, asn, ahl, ahw, nx, ny), rb = ch__extent(bcs, bsn, bhl, bhw, nx, ny);
    if (fabs(dx * nx + dy * ny) > ra + rb) return 0;
  }
  return 1;
}
