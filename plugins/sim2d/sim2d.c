/* sim2d.c -- the sim2d env plugin: a fast batched 2-D simulator of DeepRacer cars on a track. */

/*
** USAGE
**
**   Config (JSON object; every key but "track" is optional; unknown keys are an error that
**   names the key; nested keys are named "camera.downscale" and so on; there is no "reverse"
**   key: ch_env_reset.reversed chooses the direction of each episode):
**
**     track       string   (required)  path of a .track file (see tracks/README.md), relative
**                                       to the working directory or absolute
**     num_cars    integer  1           cars stepped together by one handle, 1..4096
**     max_steps   integer  1500        step cap of an episode: at this many steps it ends with
**                                       TIME_UP
**     substeps    integer  4           equal physics substeps per step (1/15 s), 1..1000
**     min_speed   number   0.1         lower clip of the commanded speed, m/s, 0..4 (0 lets a
**                                       car stop, which the immobilized rule then ends)
**     seed        integer  1           mixed with each reset's seed into the episode's random
**                                       state (object positions, bot lane changes)
**     start_heading_offset
**                 number   0           degrees, -180..180, added to the track's heading when a
**                                       car is reset (e.g. to look around with `chicane render`)
**     sensors     array    ["state"]   what a car observes, any of "state", "camera",
**                                       "stereo", "lidar", "sector_lidar", or DeepRacer's names
**                                       FRONT_FACING_CAMERA, STEREO_CAMERAS, LIDAR, SECTOR_LIDAR;
**                                       at most one of camera/stereo and one of
**                                       lidar/sector_lidar, each named once
**     camera      object   {}          camera/stereo options (needs one of them in sensors):
**       downscale   integer 1            1, 2 or 4: images of 160x120, 80x60 or 40x30
**       stack_size  integer 1            1..8 most recent frames stacked as channels
**     lidar       object   {}          lidar options (needs "lidar" in sensors):
**       max_range   number  12           metres, 0.5..12: readings are clipped to
**                                         [0.15, max_range] and divided by it (1 is
**                                         DeepRacer's clip: its network sees [0.15, 1] m)
**     race_type   string   "time_trial"  "time_trial", "object_avoidance" or "head_to_head"
**     objects     object   {}          boxes of object_avoidance (only with that race type):
**       count       integer 3            1..32 boxes
**       placement   string  "random"     "random": drawn anew each episode from its seed;
**                                         "fixed": at positions
**       positions   array   -            fixed only: [{"progress": 0..100, "lane": "left" or
**                                         "right"}, ...], percent of the track length from the
**                                         start line in the driving direction (count, if
**                                         given, must match)
**       min_spacing number  2.0          random only: metres along the track between boxes
**       start_clearance number 2.0       random only: no box within this many metres of the
**                                         car's start, ahead or (on a loop) behind
**       size        array   [0.4, 0.5]   [width across, length along the track], metres
**     bots        object   {}          bot cars of head_to_head (only with that race type):
**       count       integer 3            1..32 bot cars (DeepRacer's footprint, 0.196 x 0.324 m)
**       speed       number  1.0          m/s along their lane, 0..4
**       lane_changes boolean false       change lanes at random (seeded) times
**       min_lane_change_interval number 3.0  seconds between lane changes, at least...
**       max_lane_change_interval number 5.0  ...and at most (uniform in between)
**       lane_change_distance number 1.0  metres driven while changing lanes (a smoothstep)
**       min_spacing number  2.0          metres along the track between bots at the start
**       start_clearance number 2.0       no bot within this many metres of the car's start
**
**   Car: DeepRacer 1/18 scale. Wheelbase 0.164 m, wheel track 0.162 m, footprint 0.196 m wide
**   and 0.324 m long about the reference point. Commanded speed is clipped to [min_speed, 4]
**   m/s, steering to [-30, 30] degrees (+ = left) and applied at once. The actual speed follows
**   the command at most +4 m/s^2 and -6 m/s^2. Kinematic bicycle about the centre of the
**   footprint: path curvature tan(steer) / wheelbase, limited so that the lateral acceleration
**   stays within mu * g (mu = 0.5, g = 9.81); past that the car runs wide. A wheel (at
**   +-wheelbase/2, +-track/2) is on the track when its lateral offset lies within the half
**   width on its side.
**
**   Episode: reset (ch_env_reset) puts a car at rest at start_fraction of the length from the
**   start line in the driving direction, start_offset metres left of the centre line (it must
**   stay inside the borders), heading along the track (plus start_heading_offset). reversed = 1
**   drives that episode against the file's point order: the handle keeps both orders; a loop
**   keeps its start line. Progress is the arc distance driven (step by step, so a loop's start
**   line is crossed smoothly) over the lap length, or on a straight track over the distance
**   from the start to the far end, as 0..100. An episode ends with, checked in this order:
**   LAP_COMPLETE (progress reaches 100), OFF_TRACK (all four wheels off), CRASHED (the
**   footprint overlaps an object), IMMOBILIZED (15 steps in a row each moving < 0.3 mm),
**   REVERSED (15 steps in a row of falling progress), TIME_UP (max_steps steps). recover puts a
**   car back on the centre line at its closest point, at rest, keeping steps and progress; when
**   that point is at an object (after a crash) it goes on along the track until the car is clear
**   of it (a bot: plus a second of the bot's travel), and progress counts the distance skipped,
**   as DeepRacer's position-based progress does.
**
**   Objects: a box stands in a lane: its centre half way between the centre line and the border
**   on its side, turned along the track, 0.25 m tall for the camera. Random boxes on a loop are
**   spread over the track outside start_clearance of the start; on a straight track only ahead
**   of the start, and as many as fit there. A bot car starts like a random box (both lanes
**   random) and moves speed / 15 m along the centre line's arc each step, in its lane, before
**   the car moves; on a straight track it parks at the far end. With lane_changes, after a
**   uniform random interval it moves to the other lane over lane_change_distance. params report
**   the objects in placement order: x, y, heading, speed, distance (arc position from the start
**   line in the driving direction), is_left_of_center, kind; closest_objects are the nearest
**   behind and ahead along the track (on a loop both exist once there is one object).
**
**   Observation (obs_size floats per car: the state vector if chosen, then the lidar's):
**     state, 11 floats:
**       [0]      actual speed / 4
**       [1]      commanded steering (after clipping) / 30
**       [2]      lateral offset from the centre line / the half width on that side (+ = left;
**                beyond +-1 the car's centre is outside the border)
**       [3], [4] sin and cos of the heading error (car heading - track heading)
**       [5..10]  0.5 * mean curvature of the centre line (1/m, + = left) over [d, d + 0.5] m
**                ahead of the car, for d = 0, 0.5, 1, 1.5, 2, 3 m (0 past the end of a
**                straight track)
**     lidar, 64 floats: beam k points (-150 + 300 k / 63) degrees from the heading (+ = left),
**       from the car's reference point; the distance to the nearest object (the track has no
**       walls) clipped to [0.15, max_range], divided by max_range (1: nothing in range).
**     sector_lidar, 8 floats: DeepRacer's binary sectors: sector j is 1 when the nearest hit
**       among beams 8j..8j+7 is closer than 0.5 m, else 0.
**
**   Image (image_channels planes of image_height x image_width uint8, row 0 at the top): the
**   front camera of the DeepRacer car: 0.145 m ahead of the reference point, 0.12 m above the
**   ground, pitched down 15 degrees (0.2618 rad), horizontal field of view 1.13 rad, square
**   pixels. Grey levels: sky 255, ground off the track 96, track 48, white border lines (5 cm,
**   inside the edge, and the start line across point 0) 250, dashed centre line (4 cm, 0.15 m
*dashes and gaps) 180, boxes
**   205/225/240 (ends/sides/top), bot cars 60/80/110. stereo adds a second camera: the two are
**   0.06 m apart (left first). Planes are ordered by stacked frame (oldest first), then camera;
**   at reset the whole stack holds the first frame. A stack of 1 is only rendered when image
**   is given; a deeper stack is rendered every step so that it stays whole.
**
**   Outputs: obs, image, params and status may each be NULL in reset, step and recover to skip
**   them. waypoints(env, NULL, 0) returns the count; the points are in the file's order in
**   either direction; closest_waypoints index them and are {behind, ahead} in the driving
**   direction. A buffer smaller than the count is CH_ERANGE. Handles are not thread-safe;
**   separate handles are independent. Same config, same resets (seeds) and same commands give
**   bit-identical observations, images and params. Nothing is allocated after create.
*/

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>

#include "sim2d.h"

static const char *const ch__status_names[] = {
    "in_progress", "lap_complete", "off_track", "crashed", "immobilized", "reversed", "time_up"};

/* One block for the cars: the 8-byte arrays first, then int32, then uint8, so each array is
** aligned for its type. */
static int ch__alloc_cars(ch_sim2d *sim, ch_error *err) {
  size_t n = sim->cfg.num_cars;
  ch_sim2d_cars *c = &sim->cars;
  double **d[] = {&c->x, &c->y,     &c->yaw,   &c->cyaw, &c->syaw,      &c->curv,
                  &c->v, &c->steer, &c->speed, &c->s,    &c->travelled, &c->span};
  int32_t **in[] = {&c->seg,    &c->steps, &c->still, &c->backward,
                    &c->status, &c->dir,   &c->nobj,  &c->frame};
  size_t nd = sizeof d / sizeof d[0], ni = sizeof in / sizeof in[0];
  char *b = calloc(1, n * ((nd + 1) * sizeof(double) + ni * sizeof(int32_t) + 2));
  if (!b) return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory for %zu cars", n);
  for (size_t k = 0; k < nd; k++) *d[k] = (double *)(void *)(b + k * n * sizeof(double));
  c->rng = (uint64_t *)(void *)(b + nd * n * sizeof(double));
  char *ib = b + (nd + 1) * n * sizeof(double);
  for (size_t k = 0; k < ni; k++) *in[k] = (int32_t *)(void *)(ib + k * n * sizeof(int32_t));
  c->ready = (uint8_t *)(ib + ni * n * sizeof(int32_t));
  c->crashed = c->ready + n;
  sim->block = b;
  return CH_OK;
}

static int ch__alloc_objects(ch_sim2d *sim, ch_error *err) {
  const ch_sim2d_config *c = &sim->cfg;
  sim->max_objects = c->race_type == CH_SIM2D_OBJECT_AVOIDANCE ? (uint32_t)c->objects.count
                     : c->race_type == CH_SIM2D_HEAD_TO_HEAD   ? (uint32_t)c->bots.count
                                                               : 0;
  if (!sim->max_objects) return CH_OK;
  size_t n = (size_t)c->num_cars * sim->max_objects;
  sim->obj = calloc(n, sizeof *sim->obj);
  sim->objects = calloc(n, sizeof *sim->objects);
  if (!sim->obj || !sim->objects)
    return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory for %zu objects", n);
  return CH_OK;
}

static void ch__destroy(void *env) {
  ch_sim2d *sim = env;
  if (!sim) return;
  ch_track_free(sim->tracks[0]);
  ch_track_free(sim->tracks[1]);
  ch_sim2d_camera_free(&sim->cam);
  free(sim->min_half[0]);
  free(sim->min_half[1]);
  ch_sim2d_config_free(&sim->cfg);
  free(sim->obj);
  free(sim->objects);
  free(sim->block);
  free(sim);
}

static int ch__load_tracks(ch_sim2d *sim, ch_error *err) {
  int rc = ch_track_load(sim->cfg.track, &sim->tracks[0], err);
  if (!rc) rc = ch_track_reverse(sim->tracks[0], &sim->tracks[1], err);
  return rc;
}

static int ch__create(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  *out = NULL;
  ch_error_clear(err);
  ch_sim2d *sim = calloc(1, sizeof *sim);
  if (!sim) return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory");
  sim->host = host;
  int rc = ch_sim2d_config_parse(config_json, &sim->cfg, err);
  if (!rc) rc = ch__load_tracks(sim, err);
  if (!rc) rc = ch_sim2d_car_margins(sim, err);
  if (!rc) rc = ch_sim2d_objects_fit(sim, err);
  if (!rc) rc = ch__alloc_cars(sim, err);
  if (!rc) rc = ch__alloc_objects(sim, err);
  if (!rc) rc = ch_sim2d_camera_create(sim, err);
  if (rc) {
    ch__destroy(sim);
    return rc;
  }
  unsigned s = sim->cfg.sensors;
  sim->obs_size = (s & CH_SIM2D_STATE ? CH_SIM2D_STATE_SIZE : 0) +
                  (s & CH_SIM2D_LIDAR ? CH_SIM2D_LIDAR_BEAMS : 0) +
                  (s & CH_SIM2D_SECTOR_LIDAR ? CH_SIM2D_SECTORS : 0);
  ch_sim2d_lidar_init(sim);
  *out = sim;
  return CH_OK;
}

static void ch__spec(void *env, ch_env_spec *out) {
  const ch_sim2d *sim = env;
  const ch_track *t = sim->tracks[0];
  out->num_cars = sim->cfg.num_cars;
  out->obs_size = sim->obs_size;
  out->num_waypoints = (uint32_t)t->n;
  out->is_loop = (uint32_t)t->is_loop;
  out->track_length = t->length;
  out->track_width = t->width;
  out->step_seconds = CH_SIM2D_STEP_SECONDS;
  out->image_width = (uint32_t)sim->cam.width;
  out->image_height = (uint32_t)sim->cam.height;
  out->image_channels = (uint32_t)(sim->cam.cams * sim->cam.stack);
  out->max_objects = sim->max_objects;
}

static int ch__waypoints(void *env, double *xy, uint32_t max_points) {
  const ch_track *t = ((const ch_sim2d *)env)->tracks[0];
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

/* The reset options must name a start on the track. */
static int ch__check_reset(const ch_sim2d *sim, uint32_t car, const ch_env_reset *opt,
                           ch_error *err) {
  if (!opt) return ch_error_set(err, CH_EINVAL, "sim2d: reset of car %u without options", car);
  if (opt->reversed != 0 && opt->reversed != 1)
    return ch_error_set(err, CH_EINVAL, "sim2d: reversed %d for car %u must be 0 or 1",
                        (int)opt->reversed, car);
  const ch_track *t = sim->tracks[opt->reversed];
  double f = opt->start_fraction;
  int straight = !t->is_loop;
  if (!(f >= 0 && (straight ? f < 1 : f <= 1)))
    return ch_error_set(err, CH_ERANGE, "sim2d: start_fraction %g for car %u is outside %s", f, car,
                        straight ? "[0, 1) on a straight track" : "[0, 1]");
  double x, y, off = opt->start_offset;
  ch_track_point_at(t, f * t->length, &x, &y, NULL);
  ch_track_proj p;
  ch_track_project(t, x, y, ch_track_segment_at(t, ch_track_wrap_s(t, f * t->length)), &p);
  double half = off >= 0 ? p.half_left : p.half_right;
  if (!(fabs(off) < half))
    return ch_error_set(err, CH_ERANGE,
                        "sim2d: start_offset %g m for car %u is outside the track (half width "
                        "%.3f m on that side)",
                        off, car, half);
  return CH_OK;
}

static int ch__reset(void *env, uint32_t car, const ch_env_reset *opt, float *obs, uint8_t *image,
                     ch_env_params *params, ch_error *err) {
  ch_sim2d *sim = env;
  int rc = ch__check_car(sim, car, err);
  if (!rc) rc = ch__check_reset(sim, car, opt, err);
  if (rc) return rc;
  ch_sim2d_episode_start(sim, car, opt, obs, image, params);
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
  int rc = ch__check_step(sim, steering, speed, active, err);
  if (rc) return rc;
  size_t image_size = ch_sim2d_camera_image_size(sim);
  for (uint32_t i = 0; i < sim->cfg.num_cars; i++) {
    if (active && !active[i]) continue;
    ch_sim2d_episode_step(sim, i, steering[i], speed[i],
                          obs ? obs + (size_t)i * sim->obs_size : NULL,
                          image ? image + i * image_size : NULL, params ? params + i : NULL);
    if (status) status[i] = sim->cars.status[i];
  }
  return CH_OK;
}

static int ch__recover(void *env, uint32_t car, float *obs, uint8_t *image, ch_env_params *params,
                       ch_error *err) {
  ch_sim2d *sim = env;
  int rc = ch__check_car(sim, car, err);
  if (rc) return rc;
  if (!sim->cars.ready[car])
    return ch_error_set(err, CH_ESTATE, "sim2d: car %u was never reset", car);
  ch_sim2d_episode_recover(sim, car, obs, image, params);
  return CH_OK;
}

static const ch_env_vtable ch__vtable = {
    {CH_PLUGIN_ABI_VERSION, sizeof(ch_env_vtable), CH_PLUGIN_ENV, 0, "sim2d", "2.0.0",
     "fast batched 2-D simulator of DeepRacer cars: state, camera, stereo, lidar; time trial, "
     "object avoidance, head-to-head"},
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
