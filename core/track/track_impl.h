/* track_impl.h -- what the files of the track library share with each other and nobody else. */
#ifndef CHICANE_TRACK_IMPL_H
#define CHICANE_TRACK_IMPL_H

#include "track.h"

#include <stddef.h>

/* Where a message points. unit "line": "file:N" (the .track format); any other unit: "file:
** <unit> N" (e.g. "row" for .npy files, "point" for computed tracks). line maps a point to N,
** or is NULL when N is the point's index. left and right are what messages call the borders
** ("inner" and "outer" for a DeepRacer file). */
typedef struct ch_track__where {
  const char *source;
  const int *line;
  const char *unit;
  const char *left, *right;
} ch_track__where;

/* "file:N" or "file: unit N" for point i. */
const char *ch_track__at(const ch_track__where *w, int i, char *buf, size_t size);

/* A track with room for n points (arrays uninitialised, grid NULL). */
ch_track *ch_track__alloc(int n);

/* Fill everything derived from the centre points and borders, build the grid and validate.
** has[i] says whether row i gave its border points (else they come from width); with snap,
** given border points are first moved along their border polyline onto the point's normal. */
int ch_track__finish(ch_track *t, const unsigned char *has, double width, int snap,
                     const ch_track__where *w, ch_error *err);

/* Read a whole file; *data is NUL-terminated and *size excludes the NUL. */
int ch_track__read_file(const char *path, char **data, size_t *size, ch_error *err);

/* Squared distance from (x, y) to centre segment i (shared so that every search agrees). */
static inline double ch_track__seg_d2(const ch_track *t, int i, double x, double y) {
  double px = x - t->cx[i], py = y - t->cy[i];
  double a = px * t->ux[i] + py * t->uy[i];
  a = a < 0 ? 0 : a > t->ulen[i] ? t->ulen[i] : a;
  double dx = px - a * t->ux[i], dy = py - a * t->uy[i];
  return dx * dx + dy * dy;
}

/* grid.c: build the index (after the geometry is complete), free it, query it. */
int ch_track__grid_build(ch_track *t, ch_error *err);
void ch_track__grid_free(struct ch_track_grid *g);
int ch_track__grid_closest(const ch_track *t, double x, double y);

/* grid.c: borders that cross themselves, each other or the centre line; names the first. */
int ch_track__check_crossings(const ch_track *t, const ch_track__where *w, ch_error *err);

#endif
