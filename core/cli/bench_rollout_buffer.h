/* bench_rollout_buffer.h -- the "rollout" section of `chicane bench buffer`: env steps/s. */
#ifndef CHICANE_BENCH_ROLLOUT_BUFFER_H
#define CHICANE_BENCH_ROLLOUT_BUFFER_H

#include <chicane/plugin.h>
#include <cjson/cJSON.h>

/*
** Real simulation workers (ch_rollout with a training script's env, network and reward) push
** into the memory buffer (N threads in this process) or into redis at url (N forked worker
** processes of one thread each); this process consumes as the trainer does. For N in 1, 2, 4
** and the payloads "state" (scripts/default.lua) and "camera" (scripts/camera.lua), adds
** into[payload] = {..., "memory_N": {...}, "redis_N": {..., "ratio": to memory_N}}.
** Each measurement runs `seconds` after a warm-up. Call it while this process runs no other
** threads: it forks.
*/
int ch__bench_rollout(const char *url, double seconds, cJSON *into, ch_error *err);

#endif
