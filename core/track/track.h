/* track.h -- race track geometry: the .track text format, validation and fast spatial queries. */
#ifndef CHICANE_TRACK_H
#define CHICANE_TRACK_H

#include <chicane/plugin.h>

/*
** A track is a centre line of n points in driving order with a left and a right border point
** for each (left = left of the driving direction). A loop joins point n-1 back to point 0 and
** has n segments; a straight (non-loop) track has n-1 segments. Segment i runs from point i to
** point i+1 (mod n). The format is described in tracks/README.md.
**
** All arrays are owned by the track and freed by ch_track_free. A track is immutable after
** loading, so any number of threads may query one track at once.
*/

#define CH_TRACK_NAME_MAX    64
#define CH_TRACK_MIN_SPACING 0.001 /* metres between consecutive centre points, at least */

/* The spatial index of a track (grid.c): a uniform grid of cells, each listing the centre and
** border segments whose bounding boxes touch it. Built when a track is loaded; read-only. */
struct ch_track_grid;

typedef struct ch_track {
  char name[CH_TRACK_NAME_MAX];
  int is_loop;
  int n;                      /* centre-line points (a loop does not repeat the first) */
  int nseg;                   /* segments: n for a loop, n - 1 for a straight */
  double length;              /* centre-line length, metres */
  double width;               /* median over the points of half_left + half_right */
  double *cx, *cy;            /* centre line, n each */
  double *lx, *ly, *rx, *ry;  /* left and right border points, n each */
  double *s;                  /* arc position of each point; a loop has n + 1 (s[n] = length) */
  double *tx, *ty;            /* unit tangent at each point (bisector of its two segments) */
  double *hl, *hr;            /* half widths: border distance along the normal, > 0 */
  double *theta;              /* unwrapped tangent heading, radians; n + 1 for a loop */
  double *ux, *uy, *ulen;     /* per segment: unit direction and length */
  double total_turn;          /* theta[n] - theta[0] for a loop (+-2 pi for a simple loop) */
  struct ch_track_grid *grid; /* spatial index over the segments, owned by the track */
} ch_track;

/* Where a point lies relative to the track, from ch_track_project. */
typedef struct ch_track_proj {
  int segment;       /* closest segment */
  double t;          /* position along it, 0..1 (beyond at the open ends of a straight) */
  double s;          /* arc position, metres; [0, length) for a loop */
  double offset;     /* signed lateral offset from the centre line, + = left */
  double distance;   /* distance to the centre line (|offset|), metres */
  double half_left;  /* left half width at this point, interpolated */
  double half_right; /* right half width at this point */
  double heading;    /* direction of the track here, radians, (-pi, pi] */
  double tan_x;      /* unit tangent here (cos and sin of heading) */
  double tan_y;
  double px, py; /* the closest point of the centre line */
} ch_track_proj;

/* Read a .track file (or a DeepRacer .npy file, recognised by its magic bytes and imported as by
** ch_track_import_npy with the name taken from the file name). On failure *out is NULL and err
** says why: CH_ENOTFOUND or CH_EIO with "path: <strerror>", CH_ECORRUPT with "path:line: reason"
** for bad content, CH_ENOMEM. */
int ch_track_load(const char *path, ch_track **out, ch_error *err);

/* Parse track text; source_name is used in messages only (e.g. the file name). */
int ch_track_parse(const char *text, const char *source_name, ch_track **out, ch_error *err);

/* A copy of t driven the other way: points in reverse order, borders swapped. A loop keeps
** point 0 (the start line) as point 0; a straight starts at the old far end. */
int ch_track_reverse(const ch_track *t, ch_track **out, ch_error *err);

void ch_track_free(ch_track *t);

/* Closest segment to (x, y) and the point's position relative to the track; returns the
** segment index. With hint >= 0 (a segment near the point, e.g. the previous answer) the
** search walks locally from the hint and costs a few segments; hint < 0 searches the track's
** grid outwards from the point's cell, so it looks at the segments near the point only (a
** point far outside the track costs more). Either way the answer is the segment a scan of the
** whole track would find (the lowest index among equally close ones with hint < 0). The open ends
*of a straight extend as straight lines, so s may fall outside
** [0, length] there and offset stays perpendicular to the track. */
int ch_track_project(const ch_track *t, double x, double y, int hint, ch_track_proj *out);

/* The cheap part of ch_track_project for many points per step (a car's wheels): signed
** lateral offset (+ = left) and the half widths there. Returns the segment. */
int ch_track_lateral(const ch_track *t, double x, double y, int hint, double *offset,
                     double *half_left, double *half_right);

/* Arc position s wrapped into [0, length) for a loop, clamped to [0, length] otherwise. */
double ch_track_wrap_s(const ch_track *t, double s);

/* Segment that contains arc position s (after ch_track_wrap_s). */
int ch_track_segment_at(const ch_track *t, double s);

/* Centre-line point at arc position s, and the track heading there (radians, (-pi, pi]);
** any output pointer may be NULL. */
void ch_track_point_at(const ch_track *t, double s, double *x, double *y, double *heading);

/* Unwrapped heading of the centre line at arc position s, radians: continuous along the
** track, each lap of a loop adding total_turn (a straight keeps its end headings beyond its
** ends), so the heading change over an interval is a difference of two calls. hint may be
** NULL; otherwise it is a segment to search forward from and receives the segment found, so
** increasing positions cost a few steps each. */
double ch_track_theta(const ch_track *t, double s, int *hint);

/* Average curvature of the centre line over [s + a, s + b] (b > a): heading change divided by
** b - a, 1/metres, + = turning left. Past the ends of a straight the track counts as straight. */
double ch_track_curvature(const ch_track *t, double s, double a, double b);

/* ------------------------------------------------------------------------------------------ */
/* Import, export and facts                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Import a DeepRacer route file: NumPy .npy, version 1.0 or 2.0, dtype '<f8', C order, shape
** (N, 6): centre x, y, inner x, y, outer x, y in metres. Consecutive rows whose centre points
** are closer than CH_TRACK_MIN_SPACING are dropped; a file whose last centre point repeats the
** first is a loop. Inner and outer become left and right by the driving direction, and border
** points are moved along their border onto the normal of their centre point (see npy.c). name
** may be NULL: the file name's stem, sanitised (ch_track_name_from_path). Errors are
** CH_ECORRUPT "path: reason" or "path: row R: reason" (R counts from 0, as NumPy does),
** CH_ENOTFOUND / CH_EIO / CH_ENOMEM. */
int ch_track_import_npy(const char *path, const char *name, ch_track **out, ch_error *err);

/* The same from the bytes of a .npy file; source names the data in messages. */
int ch_track_parse_npy(const void *data, size_t size, const char *source, const char *name,
                       ch_track **out, ch_error *err);

/* A track name from a file path: the base name without its extension, with every character
** outside [A-Za-z0-9_-] replaced by '_', cut to CH_TRACK_NAME_MAX - 1 ("track" if empty). */
void ch_track_name_from_path(const char *path, char out[CH_TRACK_NAME_MAX]);

/* The track as .track text with every row explicit ("x y lx ly rx ry", 17 significant digits),
** so parsing it gives the same geometry. comment (may be NULL, may hold several lines) goes
** first as '#' lines. Returns a malloc'd string, or NULL when out of memory. */
char *ch_track_format(const ch_track *t, const char *comment);

/* Write ch_track_format(t) to path, through a temporary file renamed into place, with a comment
** naming the track and its length, width and points. */
int ch_track_write(const ch_track *t, const char *path, ch_error *err);

/* The same with the caller's comment (NULL for none). */
int ch_track_write_comment(const ch_track *t, const char *path, const char *comment, ch_error *err);

/* First hit of the ray from (x, y) in direction (dx, dy) (any length > 0) with a border
** polyline, within max_dist metres: returns 1 and sets *dist, or returns 0. Walks the grid
** cells the ray crosses; allocates nothing. */
int ch_track_raycast(const ch_track *t, double x, double y, double dx, double dy, double max_dist,
                     double *dist);

/* Facts about a track for people (chicane tracks show). */
typedef struct ch_track_info {
  double width_min, width_max; /* of hl + hr over the points (width is the median) */
  double x0, y0, x1, y1;       /* bounding box of centre line and borders */
  double min_radius;           /* smallest radius of the centre line, metres (INFINITY: none) */
  int direction;               /* +1 counter-clockwise, -1 clockwise, 0 not a loop */
} ch_track_info;

/* min_radius is the heading change over 0.2 m windows centred on each point. */
void ch_track_describe(const ch_track *t, ch_track_info *out);

/* ------------------------------------------------------------------------------------------ */
/* Racing line (racing_line.c)                                                                */
/* ------------------------------------------------------------------------------------------ */

/* The car the speed profile is computed for. */
typedef struct ch_car_limits {
  double v_max, v_min; /* speed range, m/s (v_min floors the cornering limit) */
  double a_lat;        /* largest lateral acceleration, m/s^2 */
  double a_accel;      /* largest speed gain, m/s^2 (> 0) */
  double a_brake;      /* largest speed loss, m/s^2 (its magnitude counts; -6 and 6 agree) */
  double margin;       /* distance the line keeps from each border, metres */
  int friction_circle; /* 0: the limits hold independently (sim2d's car); 1: they share grip
                       ** as an ellipse (longitudinal limit scaled by sqrt(1 - (a_y/a_lat)^2)) */
} ch_car_limits;

/* DeepRacer's car as sim2d models it: 4 m/s, 0.1 m/s, mu*g = 0.5*9.81, +4 m/s^2, -6 m/s^2,
** margin 0.13 m (half the car's width, 0.098 m, and 3 cm), independent limits. */
void ch_car_limits_default(ch_car_limits *out);

typedef struct ch_racing_line {
  int n;                   /* points (a loop does not repeat the first); one per centre point */
  double *x, *y;           /* the line */
  double *s;               /* arc position along the line, n (+1 for a loop: s[n] = length) */
  double *kappa;           /* curvature, 1/m, + = left */
  double *v;               /* speed profile, m/s (a loop: a flying lap; a straight: from rest) */
  double *t;               /* time at each point from the start line, s (n + 1 for a loop) */
  double length, lap_time; /* metres, seconds (the flying lap of a loop) */
  double *offset;          /* lateral offset from the centre line at each centre point (+ = left) */
  double standing_lap_time; /* from rest at the start line to the finish, seconds */
  int iterations;           /* Gauss-Newton steps over all the solves (0 for the centre line) */
  double beta;              /* weight of the length term in the line chosen, 1/m^2 (see
                            ** racing_line.c); 0 for the centre line */
} ch_racing_line;

/* The racing line inside the borders (less the margin) and its speed profile: least squared
** curvature plus a length term whose weight is chosen by lap time (the method is described at
** the top of racing_line.c). Fails with CH_EINVAL for bad limits and CH_ENOMEM. A track of
** fewer than 5 points gets its centre line. */
int ch_track_racing_line(const ch_track *t, const ch_car_limits *car, ch_racing_line **out,
                         ch_error *err);

/* The centre line with the same speed profile: what the racing line is compared with. */
int ch_track_centre_line(const ch_track *t, const ch_car_limits *car, ch_racing_line **out,
                         ch_error *err);

void ch_racing_line_free(ch_racing_line *rl);

/* Reference lap time only (what evaluation compares with): the racing line of the default car
** from rest at the start line (standing_lap_time), as an evaluation trial starts; for a
** straight, the time from rest to the far end. Deterministic. */
int ch_track_reference_lap(const ch_track *t, double *seconds, ch_error *err);

#endif
