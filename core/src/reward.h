/* reward.h -- runs a user's Lua reward_function(params) in a sandbox, one state per car. */
#ifndef CHICANE_REWARD_H
#define CHICANE_REWARD_H

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

/*
** The params table a reward function gets has DeepRacer's names, types and units (DESIGN.md
** section 4): numbers x, y, heading, distance_from_center, progress, speed, steering_angle,
** track_width, track_length; integer steps; booleans all_wheels_on_track, is_left_of_center,
** is_offtrack, is_crashed, is_reversed; waypoints {{x, y}, ...}; closest_waypoints {prev, next};
** closest_objects {behind, ahead}; objects_location {{x, y}, ...}; objects_left_of_center
** {bool, ...}; objects_distance, objects_heading, objects_speed {number, ...}.
**
** Indices are 1-based, as Lua counts: closest_waypoints index waypoints, closest_objects index
** the objects_* lists, and 0 in closest_objects means "no such object" (time trials, or
** nothing behind / ahead on a straight track).
**
** chicane's extension: racing_line {{x, y}, ...} and racing_line_speed {number, ...} (m/s, one
** per point), the track's reference racing line in driving order, when ch_reward_open_extra
** gets one (ch_reward_racing_line computes it), else empty tables. rewards/README.md documents
** all of it for script authors.
**
** The table and its sub-tables are built once per state and updated in place at each call
** (the object lists grow and shrink with the count), so a call allocates nothing in the steady
** state. Every per-step value is written again at each call; waypoints and the racing line
** are not, nor are the objects_* lists while the objects stay where they are (boxes), so a
script that modifies those lists changes what its later calls see.
*/

typedef struct ch_reward ch_reward;

#define CH_REWARD_LIMIT 1e5 /* a reward outside [-1e5, 1e5] is an error */

typedef struct ch_reward_options {
  const double *waypoints; /* centre line, 2 doubles per point (params.waypoints) */
  uint32_t num_waypoints;
  size_t memory_limit; /* bytes; 0 = CH_SANDBOX_DEFAULT_MEMORY */
  uint64_t budget;     /* instructions per call; 0 = CH_SANDBOX_DEFAULT_BUDGET */
} ch_reward_options;

/* What chicane adds to DeepRacer's params, for ch_reward_open_extra. (A separate struct because
** callers initialise ch_reward_options positionally, so it cannot grow without warnings.) */
typedef struct ch_reward_extra {
  /* The reference racing line (params.racing_line): 2 doubles per point in driving order, and
  ** the speed at each point (params.racing_line_speed; may be NULL). NULL/0: empty tables.
  ** Copied into the state at open, so the caller may free them afterwards. */
  const double *racing_line;
  const double *racing_line_speed;
  uint32_t num_racing_line;
} ch_reward_extra;

/* Load the script at path in a fresh sandbox and check that it defines reward_function. */
int ch_reward_open(const char *path, const ch_reward_options *opt, ch_reward **out, ch_error *err);

/* The same with chicane's extra params (extra may be NULL: as ch_reward_open). */
int ch_reward_open_extra(const char *path, const ch_reward_options *opt,
                         const ch_reward_extra *extra, ch_reward **out, ch_error *err);
void ch_reward_close(ch_reward *r);

/* Call reward_function with params (the table is reused between calls). A Lua error, a
** non-number, NaN, infinity or a value outside [-1e5, 1e5] is CH_ESCRIPT with a message that
** names the script, a line (where Lua raised the error, or where reward_function is defined
** for a bad value) and the step. */
int ch_reward_call(ch_reward *r, const ch_env_params *p, double *out, ch_error *err);

/* The reference racing line of the .track file at track_path (ch_track_racing_line with the
** default car), driven reversed or not, for ch_reward_extra: *xy gets 2 doubles per point in
** driving order, *speed one per point (m/s), *n the count. Release both with free(). The
** optimisation takes a while, so compute it once per track and direction and share it among
** the reward states. */
int ch_reward_racing_line(const char *track_path, int reversed, double **xy, double **speed,
                          uint32_t *n, ch_error *err);

#endif
