/* episode.c -- sim2d episode rules: progress, end conditions, observations and reward params. */
#include <math.h>

#include "sim2d.h"

/* Edges of the curvature sensor's windows, metres ahead of the car: window k spans
** [ch__edges[ch__window[k]], that + 0.5], for d = 0, 0.5, 1, 1.5, 2 and 3. */
static const double ch__edges[8] = {0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5};
static const int ch__window[6] = {0, 1, 2, 3, 4, 6};

static double ch__clamp(double v, double lo, double hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

static double ch__progress(const ch_sim2d_cars *c, uint32_t i) {
  return ch__clamp(100 * c->travelled[i] / c->span[i], 0, 100);
}

static void ch__observe(const ch_sim2d *sim, uint32_t i, const ch_track_proj *p, float *obs) {
  const ch_sim2d_cars *c = &sim->cars;
  double side = p->offset >= 0 ? p->half_left : p->half_right;
  double cs = cos(c->yaw[i]), sn = sin(c->yaw[i]);
  obs[0] = (float)(c->v[i] / CH_SIM2D_MAX_SPEED);
  obs[1] = (float)(c->steer[i] / CH_SIM2D_MAX_STEER_DEG);
  obs[2] = (float)(p->offset / side);
  obs[3] = (float)(sn * p->tan_x - cs * p->tan_y); /* sin(yaw - track heading) */
  obs[4] = (float)(cs * p->tan_x + sn * p->tan_y); /* cos(yaw - track heading) */
  /* Curvature over a 0.5 m window is the heading change / 0.5; times 0.5 leaves the change. */
  double theta[8];
  int hint = p->segment;
  for (int e = 0; e < 8; e++) theta[e] = ch_track_theta(sim->track, p->s + ch__edges[e], &hint);
  for (int k = 0; k < 6; k++) obs[5 + k] = (float)(theta[ch__window[k] + 1] - theta[ch__window[k]]);
}

static void ch__params(const ch_sim2d *sim, uint32_t i, const ch_track_proj *p, int wheels_on,
                       ch_env_params *par) {
  const ch_sim2d_cars *c = &sim->cars;
  double heading = c->yaw[i] * (180 / CH_SIM2D_PI);
  par->x = c->x[i];
  par->y = c->y[i];
  par->heading = heading <= -180 ? heading + 360 : heading;
  par->distance_from_center = p->distance;
  par->progress = ch__progress(c, i);
  par->speed = c->speed[i];
  par->steering_angle = c->steer[i];
  par->track_width = p->half_left + p->half_right;
  par->track_length = sim->track->length;
  par->steps = c->steps[i];
  par->closest_waypoints[0] = p->segment;
  par->closest_waypoints[1] = (p->segment + 1) % sim->track->n;
  par->all_wheels_on_track = wheels_on == 4;
  par->is_left_of_center = p->offset > 0;
  par->is_offtrack = wheels_on == 0;
  par->is_crashed = 0;
  par->is_reversed = sim->cfg.reverse;
  par->episode_status = c->status[i];
  par->num_objects = 0;
  par->closest_objects[0] = par->closest_objects[1] = -1;
  par->objects = NULL;
}

/* Project the car, remember the hint and the arc position, and fill the outputs. */
static void ch__report(ch_sim2d *sim, uint32_t i, const ch_track_proj *p, int wheels_on, float *obs,
                       ch_env_params *par) {
  sim->cars.seg[i] = p->segment;
  sim->cars.s[i] = p->s;
  if (obs) ch__observe(sim, i, p, obs);
  if (par) ch__params(sim, i, p, wheels_on, par);
}

/* Put the car at rest on the centre line at arc position s, heading along the track. */
static void ch__place(ch_sim2d *sim, uint32_t i, double s, ch_track_proj *p) {
  ch_sim2d_cars *c = &sim->cars;
  ch_track_point_at(sim->track, s, &c->x[i], &c->y[i], &c->yaw[i]);
  c->v[i] = c->steer[i] = c->speed[i] = 0;
  c->still[i] = c->backward[i] = 0;
  c->status[i] = CH_EPISODE_IN_PROGRESS;
  int hint = ch_track_segment_at(sim->track, ch_track_wrap_s(sim->track, s));
  ch_track_project(sim->track, c->x[i], c->y[i], hint, p);
}

void ch_sim2d_episode_start(ch_sim2d *sim, uint32_t i, double s, float *obs, ch_env_params *par) {
  ch_sim2d_cars *c = &sim->cars;
  ch_track_proj p;
  ch__place(sim, i, s, &p);
  c->travelled[i] = 0;
  c->span[i] = sim->track->is_loop ? sim->track->length : sim->track->length - p.s;
  c->steps[i] = 0;
  c->ready[i] = 1;
  int on = ch_sim2d_car_wheels_on(sim->track, c->x[i], c->y[i], c->yaw[i], p.segment);
  ch__report(sim, i, &p, on, obs, par);
}

void ch_sim2d_episode_recover(ch_sim2d *sim, uint32_t i, float *obs, ch_env_params *par) {
  ch_sim2d_cars *c = &sim->cars;
  ch_track_proj p;
  ch_track_project(sim->track, c->x[i], c->y[i], c->seg[i], &p);
  ch__place(sim, i, p.s, &p);
  int on = ch_sim2d_car_wheels_on(sim->track, c->x[i], c->y[i], c->yaw[i], p.segment);
  ch__report(sim, i, &p, on, obs, par);
}

/* Signed arc distance from the last report; a loop wraps it into (-L/2, L/2]. */
static double ch__delta_s(const ch_track *t, double from, double to) {
  double d = to - from;
  if (t->is_loop) {
    if (d > 0.5 * t->length) d -= t->length;
    if (d <= -0.5 * t->length) d += t->length;
  }
  return d;
}

/* The end rules, in DeepRacer's order of precedence. */
static int32_t ch__status(const ch_sim2d *sim, uint32_t i, int wheels_on) {
  const ch_sim2d_cars *c = &sim->cars;
  if (c->travelled[i] >= c->span[i]) return CH_EPISODE_LAP_COMPLETE;
  if (wheels_on == 0) return CH_EPISODE_OFF_TRACK;
  if (c->still[i] >= CH_SIM2D_PATIENCE) return CH_EPISODE_IMMOBILIZED;
  if (c->backward[i] >= CH_SIM2D_PATIENCE) return CH_EPISODE_REVERSED;
  if (c->steps[i] >= sim->cfg.max_steps) return CH_EPISODE_TIME_UP;
  return CH_EPISODE_IN_PROGRESS;
}

void ch_sim2d_episode_step(ch_sim2d *sim, uint32_t i, double steer_deg, double speed, float *obs,
                           ch_env_params *par) {
  ch_sim2d_cars *c = &sim->cars;
  double x0 = c->x[i], y0 = c->y[i];
  c->steer[i] = ch__clamp(steer_deg, -CH_SIM2D_MAX_STEER_DEG, CH_SIM2D_MAX_STEER_DEG);
  c->speed[i] = ch__clamp(speed, sim->cfg.min_speed, CH_SIM2D_MAX_SPEED);
  ch_sim2d_car_advance(c, i, sim->cfg.substeps);

  ch_track_proj p;
  ch_track_project(sim->track, c->x[i], c->y[i], c->seg[i], &p);
  double ds = ch__delta_s(sim->track, c->s[i], p.s);
  double mx = c->x[i] - x0, my = c->y[i] - y0, moved = sqrt(mx * mx + my * my);
  c->travelled[i] += ds;
  c->steps[i] += 1;
  c->still[i] = moved < CH_SIM2D_STILL ? c->still[i] + 1 : 0;
  c->backward[i] = ds < 0 ? c->backward[i] + 1 : 0;
  int on = ch_sim2d_car_wheels_on(sim->track, c->x[i], c->y[i], c->yaw[i], p.segment);
  c->status[i] = ch__status(sim, i, on);
  ch__report(sim, i, &p, on, obs, par);
}
