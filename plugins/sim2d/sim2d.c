/* sim2d.c -- the sim2d env plugin: a fast batched 2-D simulator of DeepRacer cars on a track. */

/*
** USAGE
**
**   Config (JSON object; every key but "track" is optional; unknown keys are an error):
**
**     track      string   (required)  path of a .track file (see tracks/README.md), relative
**                                      to the working directory or absolute
**     num_cars   integer  1           cars stepped together by one handle, 1..4096
**     max_steps  integer  1500        step cap of an episode: at this many steps it ends with
**                                      TIME_UP
**     substeps   integer  4           equal physics substeps per step (1/15 s), 1..1000
**     reverse    boolean  false       drive the track in the opposite direction (waypoints
**                                      and closest_waypoints follow that order; params
**                                      is_reversed = 1)
**     min_speed  number   0.1         lower clip of the commanded speed, m/s, 0..4 (0 lets a
**                                      car stop, which the immobilized rule then ends)
**     seed       integer  1           reserved for randomised options; the simulation itself
**                                      is deterministic and does not use it
**
**   Car: DeepRacer 1/18 scale. Wheelbase 0.164 m, wheel track 0.162 m. Commanded speed is
**   clipped to [min_speed, 4] m/s, steering to [-30, 30] degrees (+ = left) and applied at
**   once. The actual speed follows the command at most +4 m/s^2 and -6 m/s^2. Kinematic
**   bicycle about the centre of the footprint: path curvature tan(steer) / wheelbase, limited
**   so that the lateral acceleration stays within mu * g (mu = 0.5, g = 9.81); past that the
**   car runs wide. A wheel (at +-wheelbase/2, +-track/2) is on the track when its lateral
**   offset lies within the half width on its side.
**
**   Episode: reset puts a car at rest on the centre line at start_fraction of the length from
**   the start line (point 0), heading along the track. Progress is the arc distance driven
**   (step by step, so a loop's start line is crossed smoothly) over the lap length, or on a
**   straight track over the distance from the start to the far end, as 0..100. An episode ends
**   with, checked in this order: LAP_COMPLETE (progress reaches 100), OFF_TRACK (all four
**   wheels off), IMMOBILIZED (15 steps in a row each moving < 0.3 mm), REVERSED (15 steps in
**   a row of falling progress), TIME_UP (max_steps steps). recover puts a car back on the
**   centre line at its closest point, at rest, keeping progress and steps.
**
**   Observation, 11 floats per car:
**     [0]      actual speed / 4
**     [1]      commanded steering (after clipping) / 30
**     [2]      lateral offset from the centre line / the half width on that side (+ = left;
**              beyond +-1 the car's centre is outside the border)
**     [3], [4] sin and cos of the heading error (car heading - track heading)
**     [5..10]  0.5 * mean curvature of the centre line (1/m, + = left) over [d, d + 0.5] m
**              ahead of the car, for d = 0, 0.5, 1, 1.5, 2, 3 m (0 past the end of a
**              straight track)
**
**   Outputs: obs, params and status may each be NULL in reset, step and recover to skip
**   them. waypoints(env, NULL, 0) returns the count; a buffer smaller than the count is
**   CH_ERANGE. Handles are not thread-safe; separate handles are independent.
*/

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>

#include "sim2d.h"

static const char *const ch__status_names[] = {
    "in_progress", "lap_complete", "off_track", "crashed", "immobilized", "reversed", "time_up"};

/* One block for the cars: the double arrays first, then int32, then uint8, so each array is
** aligned for its type. */
static int ch__alloc_cars(ch_sim2d *sim, ch_error *err) {
  size_t n = sim->cfg.num_cars;
  char *b = calloc(1, n * (9 * sizeof(double) + 5 * sizeof(int32_t) + 1));
  if (!b) return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory for %zu cars", n);
  ch_sim2d_cars *c = &sim->cars;
  double **d[] = {&c->x,     &c->y, &c->yaw,       &c->v,   &c->steer,
                  &c->speed, &c->s, &c->travelled, &c->span};
  for (size_t k = 0; k < 9; k++) *d[k] = (double *)(void *)(b + k * n * sizeof(double));
  char *ib = b + 9 * n * sizeof(double);
  int32_t **in[] = {&c->seg, &c->steps, &c->still, &c->backward, &c->status};
  for (size_t k = 0; k < 5; k++) *in[k] = (int32_t *)(void *)(ib + k * n * sizeof(int32_t));
  c->ready = (uint8_t *)(ib + 5 * n * sizeof(int32_t));
  sim->block = b;
  return CH_OK;
}

static void ch__destroy(void *env) {
  ch_sim2d *sim = env;
  if (!sim) return;
  ch_track_free(sim->track);
  ch_sim2d_config_free(&sim->cfg);
  free(sim->block);
  free(sim);
}

static int ch__load_track(ch_sim2d *sim, ch_error *err) {
  ch_track *t;
  int rc = ch_track_load(sim->cfg.track, &t, err);
  if (rc || !sim->cfg.reverse) {
    sim->track = t;
    return rc;
  }
  rc = ch_track_reverse(t, &sim->track, err);
  ch_track_free(t);
  return rc;
}

static int ch__create(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  *out = NULL;
  ch_error_clear(err);
  ch_sim2d *sim = calloc(1, sizeof *sim);
  if (!sim) return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory");
  sim->host = host;
  int rc = ch_sim2d_config_parse(config_json, &sim->cfg, err);
  if (!rc) rc = ch__load_track(sim, err);
  if (!rc) rc = ch__alloc_cars(sim, err);
  if (rc) {
    ch__destroy(sim);
    return rc;
  }
  *out = sim;
  return CH_OK;
}

static void ch__spec(void *env, ch_env_spec *out) {
  const ch_sim2d *sim = env;
  out->num_cars = sim->cfg.num_cars;
  out->obs_size = CH_SIM2D_OBS_SIZE;
  out->num_waypoints = (uint32_t)sim->track->n;
  out->is_loop = (uint32_t)sim->track->is_loop;
  out->track_length = sim->track->length;
  out->track_width = sim->track->width;
  out->step_seconds = CH_SIM2D_STEP_SECONDS;
}

static int ch__waypoints(void *env, double *xy, uint32_t max_points) {
  const ch_track *t = ((const ch_sim2d *)env)->track;
  if (!xy) return t->n;
  if (max_points < (uint32_t)t->n) return CH_ERANGE;
  for (int i = 0; i < t->n; i++) xy[2 * i] = t->cx[i], xy[2 * i + 1] = t->cy[i];
  return t->n;
}

static int ch__check_car(const ch_sim2d *sim, uint32_t car, ch_error *err) {
  if (car >= sim->cfg.num_cars)
    return ch_error_set(err, CH_ERANGE, "sim2d: car %u out of range (num_cars %u)", car,
                        sim->cfg.num_cars);
  return CH_OK;
}

static int ch__reset(void *env, uint32_t car, const ch_env_reset *opt, float *obs, uint8_t *image,
                     ch_env_params *params, ch_error *err) {
  ch_sim2d *sim = env;
  double start_fraction = opt->start_fraction;
  (void)image;
  int rc = ch__check_car(sim, car, err);
  if (rc) return rc;
  int straight = !sim->track->is_loop;
  if (!(start_fraction >= 0 && (straight ? start_fraction < 1 : start_fraction <= 1)))
    return ch_error_set(err, CH_ERANGE, "sim2d: start_fraction %g for car %u is outside %s",
                        start_fraction, car, straight ? "[0, 1) on a straight track" : "[0, 1]");
  ch_sim2d_episode_start(sim, car, start_fraction * sim->track->length, obs, params);
  return CH_OK;
}

/* Every active car must be mid-episode and get finite commands, checked before any moves. */
static int ch__check_step(const ch_sim2d *sim, const float *steering, const float *speed,
                          const uint8_t *active, ch_error *err) {
  if (!steering || !speed)
    return ch_error_set(err, CH_EINVAL, "sim2d: step needs steering and speed arrays");
  for (uint32_t i = 0; i < sim->cfg.num_cars; i++) {
    if (active && !active[i]) continue;
    if (!sim->cars.ready[i])
      return ch_error_set(err, CH_ESTATE, "sim2d: car %u was never reset", i);
    int32_t st = sim->cars.status[i];
    if (st != CH_EPISODE_IN_PROGRESS)
      return ch_error_set(err, CH_ESTATE,
                          "sim2d: car %u ended its episode (%s); reset or recover it", i,
                          ch__status_names[st]);
    if (!isfinite(steering[i]) || !isfinite(speed[i]))
      return ch_error_set(err, CH_EINVAL, "sim2d: car %u: steering %g or speed %g is not finite", i,
                          (double)steering[i], (double)speed[i]);
  }
  return CH_OK;
}

static int ch__step(void *env, const float *steering, const float *speed, const uint8_t *active,
                    float *obs, uint8_t *image, ch_env_params *params, int32_t *status,
                    ch_error *err) {
  ch_sim2d *sim = env;
  (void)image;
  int rc = ch__check_step(sim, steering, speed, active, err);
  if (rc) return rc;
  for (uint32_t i = 0; i < sim->cfg.num_cars; i++) {
    if (active && !active[i]) continue;
    ch_sim2d_episode_step(sim, i, steering[i], speed[i],
                          obs ? obs + (size_t)i * CH_SIM2D_OBS_SIZE : NULL,
                          params ? params + i : NULL);
    if (status) status[i] = sim->cars.status[i];
  }
  return CH_OK;
}

static int ch__recover(void *env, uint32_t car, float *obs, uint8_t *image, ch_env_params *params,
                       ch_error *err) {
  ch_sim2d *sim = env;
  (void)image;
  int rc = ch__check_car(sim, car, err);
  if (rc) return rc;
  if (!sim->cars.ready[car])
    return ch_error_set(err, CH_ESTATE, "sim2d: car %u was never reset", car);
  ch_sim2d_episode_recover(sim, car, obs, params);
  return CH_OK;
}

static const ch_env_vtable ch__vtable = {
    {CH_PLUGIN_ABI_VERSION, sizeof(ch_env_vtable), CH_PLUGIN_ENV, 0, "sim2d", "1.0.0",
     "fast batched 2-D simulator: kinematic bicycle cars on a .track file"},
    ch__create,
    ch__destroy,
    ch__spec,
    ch__waypoints,
    ch__reset,
    ch__step,
    ch__recover,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &ch__vtable.header;
}
