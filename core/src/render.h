/* render.h -- pictures of what a car's sensors see (camera, stereo, lidar) and track maps, as PNG.
 */
#ifndef CHICANE_RENDER_H
#define CHICANE_RENDER_H

#include <chicane/plugin.h>
#include <stdint.h>

/*
** ch_render_png creates an env (through the plugin search path), resets one car where the
** options say, and draws what was asked:
**
**   "camera"  the front camera's image, each pixel a scale x scale block (nearest neighbour),
**             so 160x120 becomes 640x480 at the default scale of 4;
**   "stereo"  both stereo images side by side (left camera first), 4 * scale pixels apart;
**   "lidar"   top-down, 8 m x 8 m around the car (50 pixels per metre, 400x400): the track, the
**             objects, the car and its 64 beams, red up to what they hit, faint grey to the
**             edge where they see nothing;
**   "top"     a map of the whole track (at most 100 pixels per metre and 1600x1200 pixels):
**             track, border and centre lines, the start line, the objects and the car.
**
** Every view works with any race type; boxes are drawn 0.4 x 0.5 m and bot cars with the car's
** footprint (the sim2d defaults). Images with more than one frame (a frame stack from env_extra)
** show every plane side by side. Errors name the track, the plugin or the file and the reason.
*/

typedef struct ch_render_options {
  const char *track;      /* a track name ("bayside") or a .track path; required */
  const char *sensor;     /* "camera" (default), "stereo", "lidar" or "top" */
  double progress;        /* the car's start, percent of the track length from the start line
                          ** in the driving direction: 0..100 (below 100 on a straight track) */
  double offset;          /* metres left (+) or right (-) of the centre line */
  double heading_offset;  /* degrees added to the track's heading, -180..180 */
  const char *race_type;  /* "time_trial" (default), "object_avoidance" or "head_to_head" */
  uint64_t seed;          /* the episode's seed: where random objects go */
  int reversed;           /* 1: drive against the file's point order */
  int scale;              /* camera and stereo: output pixels per image pixel, 1..16 (4) */
  const char *env_plugin; /* env plugin name, NULL for "sim2d" */
  const char *env_extra;  /* a JSON object whose members are added to the env's config (e.g.
                          ** {"objects": {"count": 5}}), or NULL */
} ch_render_options;

/* Defaults: camera, progress 0, no offset, time trial, seed 1, scale 4. track stays NULL. */
void ch_render_defaults(ch_render_options *o);

/* Render as o says into a PNG file at path (replaced if it exists). Returns CH_OK, CH_EINVAL
** (bad options, with the option named), CH_ENOTFOUND (track or plugin), CH_EIO (writing). */
int ch_render_png(const ch_render_options *o, const char *path, ch_error *err);

#endif
