/* car.c -- sim2d car physics: a kinematic bicycle with speed ramps and a grip limit. */
#include <math.h>

#include "sim2d.h"

static double ch__clamp(double v, double lo, double hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/*
** One step (1/15 s) in equal substeps. Speed moves toward the command within the ramp limits
** first, then the car turns and moves with that speed. The path curvature asked for by the
** steering, tan(steer) / wheelbase, is limited so that v^2 * curvature <= mu * g: past the grip
** limit the car runs wide instead of turning as commanded. The reference point is the centre
** of the footprint, moved along the heading at the substep's mid-point heading.
*/
void ch_sim2d_car_advance(ch_sim2d_cars *c, uint32_t i, int substeps) {
  double dt = CH_SIM2D_STEP_SECONDS / substeps;
  double x = c->x[i], y = c->y[i], yaw = c->yaw[i], v = c->v[i], target = c->speed[i];
  double k = tan(c->steer[i] * (CH_SIM2D_PI / 180)) / CH_SIM2D_WHEELBASE;
  for (int n = 0; n < substeps; n++) {
    v += ch__clamp(target - v, -CH_SIM2D_DECEL * dt, CH_SIM2D_ACCEL * dt);
    double kk = k;
    if (v * v * fabs(kk) > CH_SIM2D_MU_G) kk = copysign(CH_SIM2D_MU_G / (v * v), k);
    double turn = v * kk * dt, mid = yaw + 0.5 * turn;
    x += v * dt * cos(mid);
    y += v * dt * sin(mid);
    yaw += turn;
  }
  if (yaw > CH_SIM2D_PI) yaw -= 2 * CH_SIM2D_PI;
  if (yaw <= -CH_SIM2D_PI) yaw += 2 * CH_SIM2D_PI;
  c->x[i] = x, c->y[i] = y, c->yaw[i] = yaw, c->v[i] = v;
}

/* How many of the four wheels touch the track: a wheel is on when its lateral offset lies
** within the half width on its side. The car's own segment is the hint for each wheel. */
int ch_sim2d_car_wheels_on(const ch_track *t, double x, double y, double yaw, int hint) {
  static const double fx[4] = {0.5 * CH_SIM2D_WHEELBASE, 0.5 * CH_SIM2D_WHEELBASE,
                               -0.5 * CH_SIM2D_WHEELBASE, -0.5 * CH_SIM2D_WHEELBASE};
  static const double fy[4] = {0.5 * CH_SIM2D_WHEEL_TRACK, -0.5 * CH_SIM2D_WHEEL_TRACK,
                               0.5 * CH_SIM2D_WHEEL_TRACK, -0.5 * CH_SIM2D_WHEEL_TRACK};
  double cs = cos(yaw), sn = sin(yaw);
  int on = 0;
  for (int w = 0; w < 4; w++) {
    double off, hl, hr;
    ch_track_lateral(t, x + fx[w] * cs - fy[w] * sn, y + fx[w] * sn + fy[w] * cs, hint, &off, &hl,
                     &hr);
    on += off >= 0 ? off <= hl : -off <= hr;
  }
  return on;
}
