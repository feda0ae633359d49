/* viz.h -- pictures of training and evaluation: charts, track maps (PNG) and laps (GIF). */
#ifndef CHICANE_VIZ_H
#define CHICANE_VIZ_H

#include "runtime.h"
#include "simtrace.h"
#include "track.h"

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

/*
** Every call writes one file and returns CH_OK or a negative ch_status with a message naming
** the file and the reason (cairo's or giflib's own words where they give some). Inputs are
** borrowed for the call.
*/

/* ---- line charts ----------------------------------------------------------------------- */

typedef struct ch_viz_series {
  const char *label; /* shown in the legend */
  const double *x, *y;
  int n;
  uint32_t rgb;   /* 0xRRGGBB */
  int right_axis; /* 0: scaled on the left axis, 1: on the right one */
  int markers;    /* 1: a dot at each point (for sparse series such as evaluations) */
} ch_viz_series;

typedef struct ch_viz_chart {
  const char *title;
  const char *x_label, *left_label;
  const char *right_label;     /* NULL: no right axis */
  double left_min, left_max;   /* equal: fitted to the data */
  double right_min, right_max; /* equal: fitted to the data */
  int width, height;           /* pixels; 0: 960 x 540 */
} ch_viz_chart;

/* Draw the series (non-finite points are skipped) with axes, grid, ticks and a legend. */
int ch_viz_chart_png(const ch_viz_chart *c, const ch_viz_series *s, int n, const char *path,
                     ch_error *err);

/* ---- track pictures -------------------------------------------------------------------- */

/* Speed at each row of a sim-trace, m/s: the distance to the previous row of the same episode
** over the time between them (pauses excluded); after a put-back (the previous row is not
** "in_progress" or "prepare") and on the first row, the commanded speed (throttle). */
void ch_viz_trace_speeds(const ch_simtrace_row *rows, size_t n, double *speed);

/* The colour of a speed on the map's scale from lo to hi (blue slow ... red fast). */
uint32_t ch_viz_speed_rgb(double speed, double lo, double hi);

typedef struct ch_viz_map {
  const char *title;
  int width;                  /* pixels; 0: 1000 (the height follows the track's shape) */
  const ch_racing_line *line; /* drawn thin and dashed when not NULL */
} ch_viz_map;

/* The track (surface, white borders, dashed centre line, start line) with every episode of
** rows drawn on it coloured by speed, and a colour bar. rows may be NULL (n 0): the map alone. */
int ch_viz_track_png(const ch_track *t, const ch_simtrace_row *rows, size_t n, const ch_viz_map *o,
                     const char *path, ch_error *err);

/* An object on the track at one row (a box or a bot car). */
typedef struct ch_viz_object {
  double x, y, heading_deg; /* centre, degrees */
  double length, width;     /* metres */
  int kind;                 /* ch_object_kind */
} ch_viz_object;

typedef struct ch_viz_gif {
  const char *title;
  int width; /* pixels; 0: 480 */
  int every; /* rows per frame; 0: 2 */
  /* Objects of each row: objects[offset[i] .. offset[i + 1]) belong to rows[i]. NULL: none. */
  const ch_viz_object *objects;
  const size_t *offset; /* n + 1 entries */
} ch_viz_gif;

/* An animated top-down view of rows (one episode: a lap): the car as an oriented rectangle,
** its trail coloured by speed, objects, the lap clock (tstamp since the first row) and the
** progress. Frames hold for the simulated time between them (at most 1 s each), and the GIF
** loops. Colours are quantised to a fixed 256-colour palette. */
int ch_viz_lap_gif(const ch_track *t, const ch_simtrace_row *rows, size_t n, const ch_viz_gif *o,
                   const char *path, ch_error *err);

/* Release the font caches that cairo and fontconfig keep for the whole process (they would
** show as leaks under LeakSanitizer). Call when no picture is being drawn, e.g. before exit;
** a later picture sets them up again. */
void ch_viz_release(void);

/* ---- `chicane plot` ---------------------------------------------------------------------- */

typedef struct ch_viz_plot_result {
  char reward_png[4096];     /* reward and progress per iteration */
  char completion_png[4096]; /* completion rate per iteration */
  char track_png[4096];      /* the track with the last evaluation's laps ("" when none) */
  int iterations, evaluations;
  int laps_drawn; /* episodes of the sim-trace drawn on the track */
} ch_viz_plot_result;

/* Write dir/<model>-reward.png, dir/<model>-completion.png and dir/<model>-track.png from the
** catalog (checkpoint metrics, evaluations) and the last evaluation's sim-trace in storage
** (without one, the track map shows the track alone). dir is created if missing. */
int ch_viz_plot_model(ch_session *s, const char *model, const char *dir, ch_viz_plot_result *out,
                      ch_error *err);

#endif
