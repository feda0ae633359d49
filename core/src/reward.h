/* reward.h -- runs a user's Lua reward_function(params) in a sandbox, one state per worker. */
#ifndef CHICANE_REWARD_H
#define CHICANE_REWARD_H

#include <chicane/plugin.h>
#include <stdint.h>

typedef struct ch_reward ch_reward;

#define CH_REWARD_LIMIT 1e5 /* a reward outside [-1e5, 1e5] is an error */

typedef struct ch_reward_options {
  const double *waypoints; /* centre line, 2 doubles per point (params.waypoints) */
  uint32_t num_waypoints;
  size_t memory_limit; /* bytes; 0 = CH_SANDBOX_DEFAULT_MEMORY */
  uint64_t budget;     /* instructions per call; 0 = CH_SANDBOX_DEFAULT_BUDGET */
} ch_reward_options;

/* Load the script at path in a fresh sandbox and check that it defines reward_function. */
int ch_reward_open(const char *path, const ch_reward_options *opt, ch_reward **out, ch_error *err);
void ch_reward_close(ch_reward *r);

/* Call reward_function with params (the table is reused between calls). A Lua error, a
** non-number, NaN, infinity or a value outside [-1e5, 1e5] is CH_ESCRIPT with a message that
** names the script, the line where Lua reports one, and the step. */
int ch_reward_call(ch_reward *r, const ch_env_params *p, double *out, ch_error *err);

#endif
