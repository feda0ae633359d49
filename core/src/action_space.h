/* action_space.h -- DeepRacer action spaces: a discrete list or continuous ranges, validated. */
#ifndef CHICANE_ACTION_SPACE_H
#define CHICANE_ACTION_SPACE_H

#include <chicane/plugin.h>
#include <cjson/cJSON.h>
#include <lua.h>
#include <stdint.h>

/*
** Discrete: 1..64 actions, each a commanded {steering_angle, speed}; the policy picks one by
** index. Continuous: a range for each, {steering_angle = {low, high}, speed = {low, high}}; the
** policy outputs two numbers in [-1, 1] that map linearly onto the ranges, as DeepRacer's
** ScalableBoxActionSpace does (ch_action_space_scale).
**
** Limits (the car's): steering_angle in [-30, 30] degrees (+ = left), speed in [0.1, 4] m/s.
** A discrete list may not repeat an action; a range needs low < high.
**
** In Lua (training scripts) the forms are:
**   action_space = { {steering_angle = -30, speed = 1}, ... }        (index = i - 1 allowed)
**   action_space = { steering_angle = {-30, 30}, speed = {0.5, 4} }  ({low = , high = } too)
** plus the helpers of ch_action_space_lua_helpers (action_grid, console_actions, linspace,
** mirror_actions).
*/

#define CH_MAX_ACTIONS  64
#define CH_STEERING_MAX 30.0 /* degrees either way */
#define CH_SPEED_MIN    0.1  /* m/s */
#define CH_SPEED_MAX    4.0

typedef struct ch_action {
  double steering_angle; /* degrees, + = left, [-30, 30] */
  double speed;          /* m/s, [0.1, 4] */
} ch_action;

typedef enum ch_action_space_type {
  CH_ACTION_SPACE_DISCRETE = 0,
  CH_ACTION_SPACE_CONTINUOUS = 1
} ch_action_space_type;

typedef struct ch_action_range {
  double low, high;
} ch_action_range;

/* The ranges of a continuous action space. */
typedef struct ch_action_ranges {
  ch_action_range steering_angle; /* degrees */
  ch_action_range speed;          /* m/s */
} ch_action_ranges;

/* "discrete" / "continuous" (DeepRacer's action_space_type) and back (-1 when neither). */
const char *ch_action_space_type_name(int type);
int ch_action_space_type_from_name(const char *name);

/* Check a discrete list: count 1..64, ranges, no duplicates. where prefixes every message
** ("train.lua: action_space"), which then names the entry: "...[3]: duplicates [1] ...". */
int ch_action_space_check_discrete(const ch_action *a, int n, const char *where, ch_error *err);

/* Check continuous ranges: low < high, each within the car's limits ("where.speed: ..."). */
int ch_action_space_check_ranges(const ch_action_ranges *r, const char *where, ch_error *err);

/* A continuous policy's output (u_steer, u_speed), each clipped to [-1, 1], mapped linearly:
** -1 -> low, +1 -> high. */
ch_action ch_action_space_scale(const ch_action_ranges *r, double u_steer, double u_speed);

/* The same for n cars at once: u holds n pairs (steer, speed); writes steer[n] and speed[n]
** as the env's step takes them. */
void ch_action_space_scale_batch(const ch_action_ranges *r, const float *u, uint32_t n,
                                 float *steer, float *speed);

/* The inverse of ch_action_space_scale (an action within the ranges -> [-1, 1]^2). */
void ch_action_space_unscale(const ch_action_ranges *r, ch_action a, double *u_steer,
                             double *u_speed);

/* DeepRacer's model_metadata.json forms: [{"steering_angle", "speed", "index"}, ...] and
** {"steering_angle": {"low", "high"}, "speed": {"low", "high"}}. Caller deletes. */
cJSON *ch_action_space_discrete_json(const ch_action *a, int n);
cJSON *ch_action_space_ranges_json(const ch_action_ranges *r);

/* Read those forms back (unknown keys are an error naming the key; where prefixes messages);
** the values are checked as above. Entries are named by their 0-based "index" here, as the
** file counts them ("...action_space[0]: speed 9 must be within [0.1, 4] m/s"). */
int ch_action_space_discrete_from_json(const cJSON *arr, const char *where, ch_action *out, int *n,
                                       ch_error *err);
int ch_action_space_ranges_from_json(const cJSON *obj, const char *where, ch_action_ranges *out,
                                     ch_error *err);

/* Read a Lua action_space value (at idx of L) in either form: sets *type and fills out/n or
** ranges, checked as above. where prefixes messages ("train.lua: action_space"). */
int ch_action_space_from_lua(lua_State *L, int idx, const char *where, int *type, ch_action *out,
                             int *n, ch_action_ranges *ranges, ch_error *err);

/* Lua source defining the helpers every training script may call:
**   action_grid(steerings, speeds)   every combination, speeds outer, steerings inner
**   console_actions(max_steering, steering_granularity, max_speed, speed_granularity)
**                                    the DeepRacer console's generator: steering from -max to
**                                    +max in granularity steps (outer), speeds max*k/g (inner)
**   linspace(a, b, n)                n evenly spaced numbers from a to b
**   mirror_actions(list)             list plus the mirror image (-steering) of each action
**                                    that lacks one, in order */
extern const char ch_action_space_lua_helpers[];

#endif
