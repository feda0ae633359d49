/* sim2d.h -- internal interfaces between the sim2d files: config, car, episode, objects, sensors.
 */
#ifndef CHICANE_SIM2D_H
#define CHICANE_SIM2D_H

#include <chicane/plugin.h>
#include <stdint.h>

#include "track.h"

#define CH_SIM2D_STATE_SIZE    11
#define CH_SIM2D_STEP_SECONDS  (1.0 / 15.0)
#define CH_SIM2D_WHEELBASE     0.164 /* metres, front to rear axle */
#define CH_SIM2D_WHEEL_TRACK   0.162 /* metres, left to right wheel */
#define CH_SIM2D_CAR_LENGTH    0.324 /* footprint, metres */
#define CH_SIM2D_CAR_WIDTH     0.196
#define CH_SIM2D_CAR_HEIGHT    0.16 /* of a bot car, as the camera sees it */
#define CH_SIM2D_BOX_HEIGHT    0.25 /* of an obstacle box */
#define CH_SIM2D_MAX_SPEED     4.0  /* m/s, commanded */
#define CH_SIM2D_MAX_STEER_DEG 30.0
#define CH_SIM2D_ACCEL         4.0 /* m/s^2, speeding up */
#define CH_SIM2D_DECEL         6.0 /* m/s^2, slowing down */
#define CH_SIM2D_MU_G          (0.5 * 9.81)
#define CH_SIM2D_STILL         0.0003 /* metres per step below which a car counts as still */
#define CH_SIM2D_PATIENCE      15     /* still or backward steps that end an episode */
#define CH_SIM2D_PI            3.14159265358979323846
#define CH_SIM2D_MAX_OBJECTS   32

/* Sensors (config "sensors"), a bit each. */
#define CH_SIM2D_STATE        1u
#define CH_SIM2D_CAMERA       2u
#define CH_SIM2D_STEREO       4u
#define CH_SIM2D_LIDAR        8u
#define CH_SIM2D_SECTOR_LIDAR 16u

/* Lidar as DeepRacer defines it (markov/sensors/constants.py, environments/constants.py). */
#define CH_SIM2D_LIDAR_BEAMS     64
#define CH_SIM2D_LIDAR_HALF_FOV  150.0 /* degrees either side of straight ahead */
#define CH_SIM2D_LIDAR_MIN_RANGE 0.15
#define CH_SIM2D_LIDAR_MAX_RANGE 12.0
#define CH_SIM2D_SECTORS         8
#define CH_SIM2D_SECTOR_CLIP     0.5 /* metres: a sector reads 1 when anything is nearer */

/* Camera: DeepRacer's front camera (deepracer_description URDF: camera link 0.145 m ahead of
** the chassis origin, 0.13 m above base_link whose wheels touch the ground 9 mm lower, pitched
** down 0.2618 rad; horizontal field of view 1.13 rad, 4:3 image). Stereo: two of them 0.06 m
** apart (the URDF's +-0.03 m). */
#define CH_SIM2D_CAM_FORWARD   0.145
#define CH_SIM2D_CAM_HEIGHT    0.12
#define CH_SIM2D_CAM_PITCH     0.2618
#define CH_SIM2D_CAM_HFOV      1.13
#define CH_SIM2D_CAM_BASELINE  0.06
#define CH_SIM2D_CAM_WIDTH     160
#define CH_SIM2D_CAM_HEIGHT_PX 120
#define CH_SIM2D_MIP_LEVELS    16

enum { CH_SIM2D_TIME_TRIAL = 0, CH_SIM2D_OBJECT_AVOIDANCE = 1, CH_SIM2D_HEAD_TO_HEAD = 2 };

typedef struct ch_sim2d_objects_config {
  int count;
  int fixed;                             /* placement "fixed" (else "random") */
  double progress[CH_SIM2D_MAX_OBJECTS]; /* fixed: percent of the length from the start line */
  int lane[CH_SIM2D_MAX_OBJECTS];        /* fixed: +1 left lane, -1 right lane */
  double min_spacing, start_clearance;   /* metres along the track */
  double width, length;                  /* box footprint: across and along the track */
} ch_sim2d_objects_config;

typedef struct ch_sim2d_bots_config {
  int count;
  double speed; /* m/s */
  int lane_changes;
  double min_interval, max_interval; /* seconds between lane changes */
  double change_distance;            /* metres driven during a lane change */
  double min_spacing, start_clearance;
} ch_sim2d_bots_config;

typedef struct ch_sim2d_config {
  char *track; /* path, owned */
  uint32_t num_cars;
  int32_t max_steps;
  int32_t substeps;
  double min_speed;
  int64_t seed;
  double start_heading; /* degrees added to the track heading at reset */
  unsigned sensors;     /* CH_SIM2D_STATE | ... */
  int downscale;        /* camera: 1, 2 or 4 */
  int stack_size;       /* camera: frames stacked as channels, 1..8 */
  double lidar_max_range;
  int race_type;
  ch_sim2d_objects_config objects;
  ch_sim2d_bots_config bots;
} ch_sim2d_config;

/* Every car's state, struct of arrays: entry i of each array belongs to car i. */
typedef struct ch_sim2d_cars {
  double *x, *y;       /* centre of the footprint, metres */
  double *yaw;         /* radians, (-pi, pi] */
  double *cyaw, *syaw; /* its cosine and sine, kept along with it */
  double *curv;        /* path curvature asked for by the steering: tan(steer) / wheelbase */
  double *v;           /* actual speed, m/s */
  double *steer;       /* commanded steering after clipping, degrees */
  double *speed;       /* commanded speed after clipping, m/s */
  double *s;           /* arc position on the driving track at the last report */
  double *travelled;   /* arc distance driven since the start, metres (signed) */
  double *span;        /* distance that completes the episode: a lap, or start to far end */
  uint64_t *rng;       /* the episode's random state (bot lane changes) */
  int32_t *seg;        /* projection hint: the car's segment at the last report */
  int32_t *steps, *still, *backward, *status;
  int32_t *dir;   /* 0: the file's order, 1: reversed (index into ch_sim2d.tracks) */
  int32_t *nobj;  /* objects in this episode */
  int32_t *frame; /* newest slot of the camera frame stack */
  uint8_t *ready; /* reset at least once */
  uint8_t *crashed;
} ch_sim2d_cars;

/* An object of one car's episode: a box, or a bot car moving along a lane. */
typedef struct ch_sim2d_obj {
  double s;                  /* arc position on the driving track */
  double lane;               /* lateral place: fraction of the half width, + = left */
  double lane_from, lane_to; /* a lane change in progress goes from one to the other */
  double change_left;        /* metres of the lane change still to drive (0: none) */
  double next_change;        /* episode time, seconds, of the next lane change */
  double half_length, half_width, height;
  double speed;
  double x, y, cs, sn; /* footprint centre and heading */
  int32_t seg;         /* segment hint for track look-ups */
  int32_t kind;        /* ch_object_kind */
} ch_sim2d_obj;

/* The ground as a top-down texture with a mip chain, drawn once per handle. */
typedef struct ch_sim2d_texture {
  int levels;
  int w[CH_SIM2D_MIP_LEVELS], h[CH_SIM2D_MIP_LEVELS];
  uint8_t *texel[CH_SIM2D_MIP_LEVELS]; /* level k: w[k] * h[k] grey levels, row-major */
  double x0, y0;                       /* world position of the corner of texel (0, 0) */
  double size;                         /* edge of a level-0 texel, metres */
  uint8_t *block;
} ch_sim2d_texture;

typedef struct ch_sim2d_camera {
  int width, height; /* pixels of one plane */
  int cams;          /* 1, or 2 for stereo */
  int stack;
  double fx; /* focal length, pixels */
  ch_sim2d_texture tex;
  uint8_t *frames; /* stack > 1: per car, stack slots of cams planes */
  float *depth;    /* width * height, the z-buffer of objects */
} ch_sim2d_camera;

typedef struct ch_sim2d {
  ch_sim2d_config cfg;
  const ch_host_api *host;
  ch_track *tracks[2]; /* the file's order and reversed */
  uint32_t obs_size;
  uint32_t max_objects;
  ch_sim2d_cars cars;
  ch_sim2d_obj *obj;      /* num_cars * max_objects */
  ch_env_object *objects; /* the same as params report them */
  ch_sim2d_camera cam;
  double *min_half[2]; /* per segment of each direction: the least half width near it */
  double beam[CH_SIM2D_LIDAR_BEAMS][2]; /* lidar beam directions in the car's frame */
  void *block;                          /* the single allocation behind cars */
} ch_sim2d;

static inline const ch_track *ch_sim2d_track(const ch_sim2d *sim, uint32_t i) {
  return sim->tracks[sim->cars.dir[i]];
}

/* config.c */
int ch_sim2d_config_parse(const char *json, ch_sim2d_config *cfg, ch_error *err);
void ch_sim2d_config_free(ch_sim2d_config *cfg);

/* car.c */
void ch_sim2d_car_advance(ch_sim2d_cars *c, uint32_t i, int substeps);
int ch_sim2d_car_margins(ch_sim2d *sim, ch_error *err);
int ch_sim2d_car_wheels_on(const ch_sim2d *sim, uint32_t i, const ch_track_proj *p);
int ch_sim2d_rects_overlap(double ax, double ay, double acs, double asn, double ahl, double ahw,
                           double bx, double by, double bcs, double bsn, double bhl, double bhw);

/* episode.c */
void ch_sim2d_episode_start(ch_sim2d *sim, uint32_t i, const ch_env_reset *opt, float *obs,
                            uint8_t *image, ch_env_params *par);
void ch_sim2d_episode_step(ch_sim2d *sim, uint32_t i, double steer_deg, double speed, float *obs,
                           uint8_t *image, ch_env_params *par);
void ch_sim2d_episode_recover(ch_sim2d *sim, uint32_t i, float *obs, uint8_t *image,
                              ch_env_params *par);

/* objects.c */
int ch_sim2d_objects_fit(const ch_sim2d *sim, ch_error *err);
void ch_sim2d_objects_place(ch_sim2d *sim, uint32_t i, double start_s);
void ch_sim2d_objects_move(ch_sim2d *sim, uint32_t i);
int ch_sim2d_objects_hit(const ch_sim2d *sim, uint32_t i, double x, double y, double cs, double sn,
                         double margin);
void ch_sim2d_objects_closest(const ch_sim2d *sim, uint32_t i, double s, int32_t out[2]);

/* lidar.c */
void ch_sim2d_lidar_init(ch_sim2d *sim);
void ch_sim2d_lidar_scan(const ch_sim2d *sim, uint32_t i, double range[CH_SIM2D_LIDAR_BEAMS]);
void ch_sim2d_lidar_observe(const ch_sim2d *sim, uint32_t i, float *out);

/* camera.c */
int ch_sim2d_camera_create(ch_sim2d *sim, ch_error *err);
void ch_sim2d_camera_free(ch_sim2d_camera *cam);
size_t ch_sim2d_camera_image_size(const ch_sim2d *sim);
void ch_sim2d_camera_observe(ch_sim2d *sim, uint32_t i, int fresh, uint8_t *image);

#endif
