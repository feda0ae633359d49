/* sim2d.h -- internal interfaces between the sim2d files: config, car physics, episode rules. */
#ifndef CHICANE_SIM2D_H
#define CHICANE_SIM2D_H

#include <chicane/plugin.h>
#include <stdint.h>

#include "track.h"

#define CH_SIM2D_OBS_SIZE      11
#define CH_SIM2D_STEP_SECONDS  (1.0 / 15.0)
#define CH_SIM2D_WHEELBASE     0.164 /* metres, front to rear axle */
#define CH_SIM2D_WHEEL_TRACK   0.162 /* metres, left to right wheel */
#define CH_SIM2D_MAX_SPEED     4.0   /* m/s, commanded */
#define CH_SIM2D_MAX_STEER_DEG 30.0
#define CH_SIM2D_ACCEL         4.0 /* m/s^2, speeding up */
#define CH_SIM2D_DECEL         6.0 /* m/s^2, slowing down */
#define CH_SIM2D_MU_G          (0.5 * 9.81)
#define CH_SIM2D_STILL         0.0003 /* metres per step below which a car counts as still */
#define CH_SIM2D_PATIENCE      15     /* still or backward steps that end an episode */
#define CH_SIM2D_PI            3.14159265358979323846

typedef struct ch_sim2d_config {
  char *track; /* path, owned */
  uint32_t num_cars;
  int32_t max_steps;
  int32_t substeps;
  int reverse;
  double min_speed;
  int64_t seed;
} ch_sim2d_config;

/* Every car's state, struct of arrays: entry i of each array belongs to car i. */
typedef struct ch_sim2d_cars {
  double *x, *y;     /* centre of the footprint, metres */
  double *yaw;       /* radians, (-pi, pi] */
  double *v;         /* actual speed, m/s */
  double *steer;     /* commanded steering after clipping, degrees */
  double *speed;     /* commanded speed after clipping, m/s */
  double *s;         /* arc position at the last report */
  double *travelled; /* arc distance driven since the start, metres (signed) */
  double *span;      /* distance that completes the episode: a lap, or start to far end */
  int32_t *seg;      /* projection hint: the car's segment at the last report */
  int32_t *steps, *still, *backward, *status;
  uint8_t *ready; /* reset at least once */
} ch_sim2d_cars;

typedef struct ch_sim2d {
  ch_sim2d_config cfg;
  const ch_host_api *host;
  ch_track *track; /* in driving order (already reversed when cfg.reverse) */
  ch_sim2d_cars cars;
  void *block; /* the single allocation behind cars */
} ch_sim2d;

/* config.c */
int ch_sim2d_config_parse(const char *json, ch_sim2d_config *cfg, ch_error *err);
void ch_sim2d_config_free(ch_sim2d_config *cfg);

/* car.c */
void ch_sim2d_car_advance(ch_sim2d_cars *c, uint32_t i, int substeps);
int ch_sim2d_car_wheels_on(const ch_track *t, double x, double y, double yaw, int hint);

/* episode.c */
void ch_sim2d_episode_start(ch_sim2d *sim, uint32_t i, double s, float *obs, ch_env_params *par);
void ch_sim2d_episode_step(ch_sim2d *sim, uint32_t i, double steer_deg, double speed, float *obs,
                           ch_env_params *par);
void ch_sim2d_episode_recover(ch_sim2d *sim, uint32_t i, float *obs, ch_env_params *par);

#endif
