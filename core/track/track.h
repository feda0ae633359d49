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

typedef struct ch_track {
  char name[CH_TRACK_NAME_MAX];
  int is_loop;
  int n;                     /* centre-line points (a loop does not repeat the first) */
  int nseg;                  /* segments: n for a loop, n - 1 for a straight */
  double length;             /* centre-line length, metres */
  double width;              /* median over the points of half_left + half_right */
  double *cx, *cy;           /* centre line, n each */
  double *lx, *ly, *rx, *ry; /* left and right border points, n each */
  double *s;                 /* arc position of each point; a loop has n + 1 (s[n] = length) */
  double *tx, *ty;           /* unit tangent at each point (bisector of its two segments) */
  double *hl, *hr;           /* half widths: border distance along the normal, > 0 */
  double *theta;             /* unwrapped tangent heading, radians; n + 1 for a loop */
  double *ux, *uy, *ulen;    /* per segment: unit direction and length */
  double total_turn;         /* theta[n] - theta[0] for a loop (+-2 pi for a simple loop) */
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

/* Read a .track file. On failure *out is NULL and err says why: CH_ENOTFOUND or CH_EIO with
** "path: <strerror>", CH_ECORRUPT with "path:line: reason" for bad content, CH_ENOMEM. */
int ch_track_load(const char *path, ch_track **out, ch_error *err);

/* Parse track text; source_name is used in messages only (e.g. the file name). */
int ch_track_parse(const char *text, const char *source_name, ch_track **out, ch_error *err);

/* A copy of t driven the other way: points in reverse order, borders swapped. A loop keeps
** point 0 (the start line) as point 0; a straight starts at the old far end. */
int ch_track_reverse(const ch_track *t, ch_track **out, ch_error *err);

void ch_track_free(ch_track *t);

/* Closest segment to (x, y) and the point's position relative to the track; returns the
** segment index. With hint >= 0 (a segment near the point, e.g. the previous answer) the
** search walks locally from the hint and costs a few segments; hint < 0 scans the whole
** track. The open ends of a straight extend as straight lines, so s may fall outside
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

#endif
