/* simtrace.h -- DeepRacer's sim-trace CSV: build one in memory, parse one back into rows. */
#ifndef CHICANE_SIMTRACE_H
#define CHICANE_SIMTRACE_H

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

/*
** The format deepracer-utils and the log-analysis notebooks read (one file per iteration,
** training-simtrace/<N>-iteration.csv, or per evaluation): this header line, then one line
** per step, '\n'-terminated, no quoting (no field contains a comma):
**
**   episode            integer   episode number within the file (evaluation: the trial, from 0)
**   steps              integer   step of the episode; 0 on a "prepare" row, then from 1
**   X, Y               %.4f      car position, metres
**   yaw                %.4f      heading, degrees
**   steer              %.2f      commanded steering, degrees (+ = left)
**   throttle           %.2f      commanded speed, m/s
**   action             integer   index into a discrete action space; -1 for continuous
**   reward             %.4f
**   done               True/False  the episode ended on this step
**   all_wheels_on_track True/False
**   progress           %.4f      0..100
**   closest_waypoint   integer   0-based index of the centre-line point nearest the car
**   track_len          %.2f      metres
**   tstamp             %.3f      simulated seconds (DeepRacer writes the simulation clock)
**   episode_status     name      prepare, in_progress, off_track, crashed, immobilized,
**                                reversed, lap_complete, time_up
**   pause_duration     %.4f      seconds the car is held after this step (evaluation's
**                                off-track penalty), else 0
**
** The reader maps columns by their header names, so files of older DeepRacer versions (no
** episode_status / pause_duration: in_progress and 0 are assumed) and a trailing '\r' are
** accepted; unknown extra columns are ignored.
*/

#define CH_SIMTRACE_HEADER                                                                         \
  "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,progress,"          \
  "closest_waypoint,track_len,tstamp,episode_status,pause_duration"

/* episode_status of a row: a ch_episode_status (plugin.h), or this for "prepare". */
#define CH_SIMTRACE_PREPARE (-1)

typedef struct ch_simtrace_row {
  int64_t episode;
  int32_t steps;
  double x, y, yaw_deg, steer_deg, throttle;
  int32_t action; /* -1: continuous */
  double reward;
  int done, all_wheels_on_track;
  double progress;
  int32_t closest_waypoint;
  double track_len, tstamp;
  int32_t status; /* ch_episode_status or CH_SIMTRACE_PREPARE */
  double pause_duration;
} ch_simtrace_row;

/* DeepRacer's name of a status ("lap_complete"), NULL for a value that has none. */
const char *ch_simtrace_status_name(int32_t status);
/* The status of a name; CH_EINVAL for an unknown name. */
int ch_simtrace_status_parse(const char *name, int32_t *out);

typedef struct ch_simtrace ch_simtrace; /* a CSV being built in memory */

/* A trace holding just the header; NULL when out of memory. */
ch_simtrace *ch_simtrace_new(void);
/* Append one row. CH_EINVAL (nothing appended) for a non-finite number or an unknown status,
** CH_ENOMEM. */
int ch_simtrace_add(ch_simtrace *t, const ch_simtrace_row *row);
/* The CSV text so far (header included), NUL-terminated; valid until the next add or free. */
const char *ch_simtrace_data(const ch_simtrace *t, size_t *len);
/* Rows added since new or the last clear. */
size_t ch_simtrace_count(const ch_simtrace *t);
/* Drop the rows, keep the header (to start the next file with the same buffer). */
void ch_simtrace_clear(ch_simtrace *t);
void ch_simtrace_free(ch_simtrace *t);

/* Parse CSV text (len bytes, NUL not required). On success *rows (release with free) holds *n
** rows. Errors (CH_ECORRUPT) name the line and column: "sim-trace line 7, column progress:
** 'x' is not a number"; a missing required column is named too. */
int ch_simtrace_parse(const char *csv, size_t len, ch_simtrace_row **rows, size_t *n,
                      ch_error *err);

#endif
