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

static double ch__wrap_angle(double a) {
  if (a > CH_SIM2D_PI) a -= 2 * CH_SIM2D_PI;
  if (a <= -CH_SIM2D_PI) a += 2 * CH_SIM2D_PI;
  return a;
}

static double ch__progress(const ch_sim2d_cars *c, uint32_t i) {
  return ch__clamp(100 * c->travelled[i] / c->span[i], 0, 100);
}

/* The unwrapped centre-line heading at s + ch__edges[e] for every edge, in one walk forward
** from segment i (where s lies); the same values as ch_track_theta. */
static void ch__thetas(const ch_track *t, double s, int i, double theta[8]) {
  double lap = 0, turn = 0;
  for (int e = 0; e < 8; e++) {
    double q = s + ch__edges[e];
    if (t->is_loop) {
      while (q - lap >= t->s[i + 1]) {
        if (++i < t->nseg) continue;
        i = 0, lap += t->length, turn += t->total_turn;
      }
    } else {
      q = q < 0 ? 0 : q > t->length ? t->length : q;
      while (i < t->nseg - 1 && q >= t->s[i + 1]) i++;
    }
    double f = (q - lap - t->s[i]) / t->ulen[i];
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    theta[e] = t->theta[i] + (t->theta[i + 1] - t->theta[i]) * f + turn;
  }
}

static void ch__state(const ch_sim2d *sim, uint32_t i, const ch_track_proj *p, float *obs) {
  const ch_sim2d_cars *c = &sim->cars;
  double side = p->offset >= 0 ? p->half_left : p->half_right;
  double cs = c->cyaw[i], sn = c->syaw[i];
  obs[0] = (float)(c->v[i] / CH_SIM2D_MAX_SPEED);
  obs[1] = (float)(c->steer[i] / CH_SIM2D_MAX_STEER_DEG);
  obs[2] = (float)(p->offset / side);
  obs[3] = (float)(sn * p->tan_x - cs * p->tan_y); /* sin(yaw - track heading) */
  obs[4] = (float)(cs * p->tan_x + sn * p->tan_y); /* cos(yaw - track heading) */
  /* Curvature over a 0.5 m window is the heading change / 0.5; times 0.5 leaves the change. */
  double theta[8];
  ch__thetas(ch_sim2d_track(sim, i), p->s, p->segment, theta);
  for (int k = 0; k < 6; k++) obs[5 + k] = (float)(theta[ch__window[k] + 1] - theta[ch__window[k]]);
}

/* Point j of the driving track as an index into the file's points. */
static int32_t ch__file_index(const ch_track *t, int reversed, int j) {
  if (!reversed) return j;
  return t->is_loop ? (t->n - j) % t->n : t->n - 1 - j;
}

static void ch__params(const ch_sim2d *sim, uint32_t i, const ch_track_proj *p, int wheels_on,
                       ch_env_params *par) {
  const ch_sim2d_cars *c = &sim->cars;
  const ch_track *t = ch_sim2d_track(sim, i);
  double heading = c->yaw[i] * (180 / CH_SIM2D_PI);
  par->x = c->x[i];
  par->y = c->y[i];
  par->heading = heading <= -180 ? heading + 360 : heading;
  par->distance_from_center = p->distance;
  par->progress = ch__progress(c, i);
  par->speed = c->speed[i];
  par->steering_angle = c->steer[i];
  par->track_width = p->half_left + p->half_right;
  par->track_length = t->length;
  par->steps = c->steps[i];
  par->closest_waypoints[0] = ch__file_index(t, c->dir[i], p->segment);
  par->closest_waypoints[1] = ch__file_index(t, c->dir[i], (p->segment + 1) % t->n);
  par->all_wheels_on_track = wheels_on == 4;
  par->is_left_of_center = p->offset > 0;
  par->is_offtrack = wheels_on == 0;
  par->is_crashed = c->crashed[i];
  par->is_reversed = c->dir[i];
  par->episode_status = c->status[i];
  par->num_objects = (uint32_t)c->nobj[i];
  ch_sim2d_objects_closest(sim, i, p->s, par->closest_objects);
  par->objects = sim->max_objects ? sim->objects + (size_t)i * sim->max_objects : NULL;
}

/* Remember the projection as the hint and the arc position, and fill the outputs. */
static void ch__report(ch_sim2d *sim, uint32_t i, const ch_track_proj *p, int wheels_on, int fresh,
                       float *obs, uint8_t *image, ch_env_params *par) {
  unsigned sensors = sim->cfg.sensors;
  sim->cars.seg[i] = p->segment;
  sim->cars.s[i] = p->s;
  if (obs) {
    if (sensors & CH_SIM2D_STATE) ch__state(sim, i, p, obs), obs += CH_SIM2D_STATE_SIZE;
    if (sensors & (CH_SIM2D_LIDAR | CH_SIM2D_SECTOR_LIDAR)) ch_sim2d_lidar_observe(sim, i, obs);
  }
  if (sensors & (CH_SIM2D_CAMERA | CH_SIM2D_STEREO)) ch_sim2d_camera_observe(sim, i, fresh, image);
  if (par) ch__params(sim, i, p, wheels_on, par);
}

/* Put the car at rest at arc position s, offset metres left of the centre line, heading along
** the track turned by turn radians. */
static void ch__place(ch_sim2d *sim, uint32_t i, double s, double offset, double turn,
                      ch_track_proj *p) {
  ch_sim2d_cars *c = &sim->cars;
  const ch_track *t = ch_sim2d_track(sim, i);
  double heading;
  ch_track_point_at(t, s, &c->x[i], &c->y[i], &heading);
  c->x[i] -= sin(heading) * offset;
  c->y[i] += cos(heading) * offset;
  c->yaw[i] = ch__wrap_angle(heading + turn);
  c->cyaw[i] = cos(c->yaw[i]), c->syaw[i] = sin(c->yaw[i]);
  c->v[i] = c->steer[i] = c->speed[i] = c->curv[i] = 0;
  c->still[i] = c->backward[i] = 0;
  c->status[i] = CH_EPISODE_IN_PROGRESS;
  c->crashed[i] = 0;
  int hint = ch_track_segment_at(t, ch_track_wrap_s(t, s));
  ch_track_project(t, c->x[i], c->y[i], hint, p);
}

/* The episode's random state: the config seed and the reset seed, mixed so that nearby seeds
** give unrelated sequences. */
static uint64_t ch__episode_seed(int64_t config_seed, uint64_t seed) {
  uint64_t z = (uint64_t)config_seed * 0x9e3779b97f4a7c15ull ^ seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void ch_sim2d_episode_start(ch_sim2d *sim, uint32_t i, const ch_env_reset *opt, float *obs,
                            uint8_t *image, ch_env_params *par) {
  ch_sim2d_cars *c = &sim->cars;
  ch_track_proj p;
  c->dir[i] = opt->reversed != 0;
  const ch_track *t = ch_sim2d_track(sim, i);
  ch__place(sim, i, opt->start_fraction * t->length, opt->start_offset,
            sim->cfg.start_heading * (CH_SIM2D_PI / 180), &p);
  c->travelled[i] = 0;
  c->span[i] = t->is_loop ? t->length : t->length - p.s;
  c->steps[i] = 0;
  c->ready[i] = 1;
  c->rng[i] = ch__episode_seed(sim->cfg.seed, opt->seed);
  ch_sim2d_objects_place(sim, i, p.s);
  int on = ch_sim2d_car_wheels_on(sim, i, &p);
  ch__report(sim, i, &p, on, 1, obs, image, par);
}

/* Signed arc distance from one arc position to another; a loop wraps it into (-L/2, L/2]. */
static double ch__delta_s(const ch_track *t, double from, double to) {
  double d = to - from;
  if (t->is_loop) {
    if (d > 0.5 * t->length) d -= t->length;
    if (d <= -0.5 * t->length) d += t->length;
  }
  return d;
}

/* The first arc position from s on along the centre line where the car, heading along the
** track, is clear of every object; a bot gets a second of its travel as room to spare. */
static double ch__clear_of_objects(const ch_sim2d *sim, uint32_t i, double s) {
  const ch_track *t = ch_sim2d_track(sim, i);
  const ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  for (int tries = 0; tries <= 2 * sim->cars.nobj[i]; tries++) {
    double x, y, heading;
    ch_track_point_at(t, s, &x, &y, &heading);
    int k = ch_sim2d_objects_hit(sim, i, x, y, cos(heading), sin(heading), 0.05);
    if (k < 0) break;
    s += ch__delta_s(t, ch_track_wrap_s(t, s), o[k].s) + o[k].half_length +
         0.5 * CH_SIM2D_CAR_LENGTH + 0.1 + o[k].speed * 1.0;
    if (!t->is_loop && s > t->length) s = t->length;
  }
  return s;
}

void ch_sim2d_episode_recover(ch_sim2d *sim, uint32_t i, float *obs, uint8_t *image,
                              ch_env_params *par) {
  ch_sim2d_cars *c = &sim->cars;
  const ch_track *t = ch_sim2d_track(sim, i);
  ch_track_proj p;
  ch_track_project(t, c->x[i], c->y[i], c->seg[i], &p);
  /* Past any object there (the one it crashed into, or one at its closest point). Progress
  ** follows the position, as in DeepRacer: the distance skipped counts. */
  double s = ch__clear_of_objects(sim, i, p.s);
  c->travelled[i] += s - p.s;
  ch__place(sim, i, s, 0, 0, &p);
  int on = ch_sim2d_car_wheels_on(sim, i, &p);
  ch__report(sim, i, &p, on, 0, obs, image, par);
}

/* The end rules, in DeepRacer's order of precedence. */
static int32_t ch__status(const ch_sim2d *sim, uint32_t i, int wheels_on) {
  const ch_sim2d_cars *c = &sim->cars;
  if (c->travelled[i] >= c->span[i]) return CH_EPISODE_LAP_COMPLETE;
  if (wheels_on == 0) return CH_EPISODE_OFF_TRACK;
  if (c->crashed[i]) return CH_EPISODE_CRASHED;
  if (c->still[i] >= CH_SIM2D_PATIENCE) return CH_EPISODE_IMMOBILIZED;
  if (c->backward[i] >= CH_SIM2D_PATIENCE) return CH_EPISODE_REVERSED;
  if (c->steps[i] >= sim->cfg.max_steps) return CH_EPISODE_TIME_UP;
  return CH_EPISODE_IN_PROGRESS;
}

void ch_sim2d_episode_step(ch_sim2d *sim, uint32_t i, double steer_deg, double speed, float *obs,
                           uint8_t *image, ch_env_params *par) {
  ch_sim2d_cars *c = &sim->cars;
  const ch_track *t = ch_sim2d_track(sim, i);
  double x0 = c->x[i], y0 = c->y[i];
  ch_sim2d_objects_move(sim, i);
  double steer = ch__clamp(steer_deg, -CH_SIM2D_MAX_STEER_DEG, CH_SIM2D_MAX_STEER_DEG);
  if (steer != c->steer[i]) c->curv[i] = tan(steer * (CH_SIM2D_PI / 180)) / CH_SIM2D_WHEELBASE;
  c->steer[i] = steer;
  c->speed[i] = ch__clamp(speed, sim->cfg.min_speed, CH_SIM2D_MAX_SPEED);
  ch_sim2d_car_advance(c, i, sim->cfg.substeps);

  ch_track_proj p;
  ch_track_project(t, c->x[i], c->y[i], c->seg[i], &p);
  double ds = ch__delta_s(t, c->s[i], p.s);
  double mx = c->x[i] - x0, my = c->y[i] - y0, moved = sqrt(mx * mx + my * my);
  c->travelled[i] += ds;
  c->steps[i] += 1;
  c->still[i] = moved < CH_SIM2D_STILL ? c->still[i] + 1 : 0;
  c->backward[i] = ds < 0 ? c->backward[i] + 1 : 0;
  c->crashed[i] = ch_sim2d_objects_hit(sim, i, c->x[i], c->y[i], c->cyaw[i], c->syaw[i], 0) >= 0;
  int on = ch_sim2d_car_wheels_on(sim, i, &p);
  c->status[i] = ch__status(sim, i, on);
  ch__report(sim, i, &p, on, 0, obs, image, par);
}
