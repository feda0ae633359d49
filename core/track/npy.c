/* npy.c -- imports DeepRacer route files (NumPy .npy, N x 6 float64) as tracks. */
#include "track.h"
#include "track_impl.h"

#include <chicane/plugin_util.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
** The .npy format (numpy.org, "NEP 1"): the magic "\x93NUMPY", a major and a minor version
** byte, the header length (2 bytes little-endian in version 1, 4 bytes in version 2), then the
** header: a Python dict literal such as {'descr': '<f8', 'fortran_order': False, 'shape': (119,
** 6), } padded with spaces and a newline, then the array's bytes. DeepRacer's routes are
** float64 little-endian, C order, one row per waypoint: centre x, y, inner x, y, outer x, y.
*/

#define CH__NPY_COLUMNS 6

static const char *const ch__column[CH__NPY_COLUMNS] = {"centre x", "centre y", "inner x",
                                                        "inner y",  "outer x",  "outer y"};

typedef struct ch__npy {
  const char *src; /* for messages */
  ch_error *err;
  const char *start, *p, *end; /* header text and cursor */
  char descr[32];
  int fortran;
  long shape[8];
  int ndim;
  int seen; /* bit 0 descr, 1 fortran_order, 2 shape */
} ch__npy;

/* ------------------------------------------------------------------------------------------ */
/* The header dict                                                                             */
/* ------------------------------------------------------------------------------------------ */

static int ch__bad_header(ch__npy *h, const char *what) {
  return ch_error_set(h->err, CH_ECORRUPT, "%s: .npy header: %s (at header byte %ld)", h->src, what,
                      (long)(h->p - h->start));
}

static void ch__ws(ch__npy *h) {
  while (h->p < h->end && isspace((unsigned char)*h->p)) h->p++;
}

static int ch__eat(ch__npy *h, char c) {
  ch__ws(h);
  if (h->p < h->end && *h->p == c) {
    h->p++;
    return 1;
  }
  return 0;
}

/* A quoted Python string without escapes (what NumPy writes) into out. */
static int ch__string(ch__npy *h, char *out, size_t size) {
  ch__ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return 0;
  char q = *h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q) {
    if (n + 1 < size) out[n++] = *h->p;
    h->p++;
  }
  if (h->p >= h->end) return 0;
  h->p++;
  out[n] = '\0';
  return 1;
}

static int ch__word(ch__npy *h, const char *w) {
  size_t n = strlen(w);
  ch__ws(h);
  if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return 0;
  h->p += n;
  return 1;
}

/* A size in the header, read only up to the header's end (the bytes need not end in a NUL). */
static int ch__size(ch__npy *h, long *out) {
  ch__ws(h);
  long v = 0;
  const char *start = h->p;
  while (h->p < h->end && *h->p >= '0' && *h->p <= '9' && v < 1000000000L)
    v = 10 * v + (*h->p++ - '0');
  if (h->p == start || (h->p < h->end && *h->p >= '0' && *h->p <= '9')) return 0;
  *out = v;
  return 1;
}

static int ch__shape(ch__npy *h) {
  if (!ch__eat(h, '(')) return ch__bad_header(h, "'shape' is not a tuple");
  h->ndim = 0;
  while (!ch__eat(h, ')')) {
    long v;
    if (!ch__size(h, &v)) return ch__bad_header(h, "'shape' holds something other than sizes");
    if (h->ndim < 8) h->shape[h->ndim] = v;
    h->ndim++;
    if (!ch__eat(h, ',') && !(ch__ws(h), h->p < h->end && *h->p == ')'))
      return ch__bad_header(h, "'shape' tuple is not closed");
  }
  return CH_OK;
}

static int ch__entry(ch__npy *h) {
  char key[32];
  if (!ch__string(h, key, sizeof key)) return ch__bad_header(h, "expected a quoted key");
  if (!ch__eat(h, ':')) return ch__bad_header(h, "expected ':' after a key");
  if (strcmp(key, "descr") == 0) {
    if (!ch__string(h, h->descr, sizeof h->descr))
      return ch__bad_header(h, "'descr' is not a string (structured dtypes are not routes)");
    h->seen |= 1;
  } else if (strcmp(key, "fortran_order") == 0) {
    if (ch__word(h, "True"))
      h->fortran = 1;
    else if (ch__word(h, "False"))
      h->fortran = 0;
    else
      return ch__bad_header(h, "'fortran_order' is neither True nor False");
    h->seen |= 2;
  } else if (strcmp(key, "shape") == 0) {
    int rc = ch__shape(h);
    if (rc) return rc;
    h->seen |= 4;
  } else {
    char msg[96];
    snprintf(msg, sizeof msg, "unknown key '%s'", key);
    return ch__bad_header(h, msg);
  }
  return CH_OK;
}

static int ch__dict(ch__npy *h) {
  if (!ch__eat(h, '{')) return ch__bad_header(h, "expected '{'");
  while (!ch__eat(h, '}')) {
    int rc = ch__entry(h);
    if (rc) return rc;
    if (!ch__eat(h, ',') && !(ch__ws(h), h->p < h->end && *h->p == '}'))
      return ch__bad_header(h, "expected ',' or '}'");
  }
  ch__ws(h);
  if (h->p != h->end) return ch__bad_header(h, "text after the dict");
  static const char *const keys[] = {"descr", "fortran_order", "shape"};
  for (int k = 0; k < 3; k++)
    if (!(h->seen & (1 << k))) {
      char msg[64];
      snprintf(msg, sizeof msg, "no '%s'", keys[k]);
      return ch__bad_header(h, msg);
    }
  return CH_OK;
}

/* Magic, version and header length; sets *data_at to the first byte of the array. */
static int ch__preamble(ch__npy *h, const unsigned char *b, size_t size, size_t *data_at) {
  if (size < 8 || memcmp(b, "\x93NUMPY", 6) != 0)
    return ch_error_set(h->err, CH_ECORRUPT,
                        "%s: bad magic: not a NumPy .npy file (it must start with \\x93NUMPY)",
                        h->src);
  int major = b[6], minor = b[7];
  if ((major != 1 && major != 2) || minor != 0)
    return ch_error_set(h->err, CH_ECORRUPT,
                        "%s: unsupported .npy version %d.%d (this reader takes 1.0 and 2.0)",
                        h->src, major, minor);
  size_t at = major == 1 ? 10 : 12;
  if (size < at)
    return ch_error_set(h->err, CH_ECORRUPT, "%s: truncated: the file ends inside the preamble",
                        h->src);
  size_t hlen = major == 1
                    ? (size_t)b[8] | (size_t)b[9] << 8
                    : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
  if (hlen > size - at)
    return ch_error_set(h->err, CH_ECORRUPT,
                        "%s: truncated: the header is %zu bytes but only %zu follow the preamble",
                        h->src, hlen, size - at);
  h->start = h->p = (const char *)b + at;
  h->end = h->p + hlen;
  *data_at = at + hlen;
  return CH_OK;
}

/* The header must describe what a DeepRacer route is: N x 6 little-endian float64, C order. */
static int ch__check_layout(ch__npy *h) {
  if (strcmp(h->descr, "<f8") != 0)
    return ch_error_set(h->err, CH_ECORRUPT,
                        "%s: wrong dtype '%s': routes are little-endian float64 ('<f8')", h->src,
                        h->descr);
  if (h->fortran)
    return ch_error_set(h->err, CH_ECORRUPT,
                        "%s: fortran_order is True: routes are stored in C (row-major) order",
                        h->src);
  if (h->ndim != 2 || h->shape[1] != CH__NPY_COLUMNS) {
    char dims[96] = "";
    for (int i = 0, n = 0; i < h->ndim && i < 8; i++)
      n += snprintf(dims + n, sizeof dims - (size_t)n, "%s%ld", i ? ", " : "", h->shape[i]);
    return ch_error_set(h->err, CH_ECORRUPT,
                        "%s: wrong shape (%s): need (N, 6) rows of centre, inner and outer x, y "
                        "(other layouts, such as (N, 4) without borders, are not supported)",
                        h->src, dims);
  }
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Rows to a track                                                                             */
/* ------------------------------------------------------------------------------------------ */

static double ch__f64le(const unsigned char *p) {
  uint64_t u = 0;
  for (int i = 7; i >= 0; i--) u = u << 8 | p[i];
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static int ch__finite_rows(const char *src, const double *v, long nrows, ch_error *err) {
  for (long r = 0; r < nrows; r++)
    for (int c = 0; c < CH__NPY_COLUMNS; c++)
      if (!isfinite(v[r * CH__NPY_COLUMNS + c]))
        return ch_error_set(err, CH_ECORRUPT, "%s: row %ld: %s is %s", src, r, ch__column[c],
                            isnan(v[r * CH__NPY_COLUMNS + c]) ? "NaN" : "infinite");
  return CH_OK;
}

static double ch__gap(const double *v, long a, long b) {
  const double *p = v + a * CH__NPY_COLUMNS, *q = v + b * CH__NPY_COLUMNS;
  return hypot(q[0] - p[0], q[1] - p[1]);
}

/* Rows to keep: each at least CH_TRACK_MIN_SPACING from the previous kept row, and for a loop
** not the closing repeat of the first. Returns how many. */
static int ch__keep(const double *v, long nrows, int is_loop, int *keep) {
  int n = 0;
  for (long r = 0; r < nrows; r++)
    if (n == 0 || ch__gap(v, keep[n - 1], r) >= CH_TRACK_MIN_SPACING) keep[n++] = (int)r;
  while (is_loop && n > 1 && ch__gap(v, keep[0], keep[n - 1]) < CH_TRACK_MIN_SPACING) n--;
  return n;
}

/* Is the inner border on the left of the driving direction? A loop driven counter-clockwise
** (positive shoelace area of its centre line) has its inside on the left, so its inner border
** is the left one; clockwise, the right one. A straight has no inside: its "inner" is whichever
** side the inner points lie on, measured against the direction of travel. */
static int ch__inner_is_left(const double *v, const int *keep, int n, int is_loop, double *area) {
  double a = 0, side = 0;
  for (int i = 0; i < n; i++) {
    const double *p = v + (long)keep[i] * CH__NPY_COLUMNS;
    const double *q = v + (long)keep[(i + 1) % n] * CH__NPY_COLUMNS;
    a += p[0] * q[1] - q[0] * p[1];
    const double *d0 = i + 1 < n ? p : v + (long)keep[i - 1] * CH__NPY_COLUMNS;
    const double *d1 = i + 1 < n ? q : p;
    side += (d1[0] - d0[0]) * (p[3] - p[1]) - (d1[1] - d0[1]) * (p[2] - p[0]);
  }
  *area = 0.5 * a;
  return is_loop ? a > 0 : side > 0;
}

static int ch__valid_name(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len >= CH_TRACK_NAME_MAX) return 0;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') return 0;
  return 1;
}

void ch_track_name_from_path(const char *path, char out[CH_TRACK_NAME_MAX]) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  if (len > CH_TRACK_NAME_MAX - 1) len = CH_TRACK_NAME_MAX - 1;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)base[i];
    out[i] = isalnum(c) || c == '_' || c == '-' ? (char)c : '_';
  }
  out[len] = '\0';
  if (len == 0) snprintf(out, CH_TRACK_NAME_MAX, "track");
}

static int ch__shape_checks(const char *src, const double *v, const int *keep, int n,
                            ch_error *err) {
  if (n == 1)
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: zero-length track: every centre point is at (%g, %g)", src,
                        v[(long)keep[0] * CH__NPY_COLUMNS], v[(long)keep[0] * CH__NPY_COLUMNS + 1]);
  if (n < 3)
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: too few points: %d distinct centre points after dropping repeated "
                        "ones (a track needs at least 3)",
                        src, n);
  return CH_OK;
}

/* The kept rows as a track; row numbers in messages are the file's. */
static int ch__build(const char *src, const char *name, const double *v, const int *keep, int n,
                     int is_loop, ch_track **out, ch_error *err) {
  double area;
  int left_inner = ch__inner_is_left(v, keep, n, is_loop, &area);
  if (is_loop && area == 0)
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: the centre line encloses no area, so its driving direction is unknown",
                        src);
  ch_track *t = ch_track__alloc(n);
  unsigned char *has = malloc((size_t)n);
  if (!t || !has) {
    ch_track_free(t), free(has);
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", src);
  }
  snprintf(t->name, sizeof t->name, "%s", name);
  t->is_loop = is_loop;
  for (int i = 0; i < n; i++) {
    const double *r = v + (long)keep[i] * CH__NPY_COLUMNS;
    const double *l = left_inner ? r + 2 : r + 4, *rt = left_inner ? r + 4 : r + 2;
    t->cx[i] = r[0], t->cy[i] = r[1];
    t->lx[i] = l[0], t->ly[i] = l[1], t->rx[i] = rt[0], t->ry[i] = rt[1];
    has[i] = 1;
  }
  ch_track__where w = {src, keep, "row", left_inner ? "inner" : "outer",
                       left_inner ? "outer" : "inner"};
  int rc = ch_track__finish(t, has, 0, 1, &w, err);
  free(has);
  if (rc) {
    ch_track_free(t);
    return rc;
  }
  *out = t;
  return CH_OK;
}

static int ch__to_track(const char *src, const char *name, const double *v, long nrows,
                        ch_track **out, ch_error *err) {
  int is_loop = nrows > 1 && ch__gap(v, 0, nrows - 1) < CH_TRACK_MIN_SPACING;
  int *keep = malloc((size_t)(nrows > 0 ? nrows : 1) * sizeof *keep);
  if (!keep) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", src);
  int n = ch__keep(v, nrows, is_loop, keep);
  int rc = ch__shape_checks(src, v, keep, n, err);
  if (!rc) rc = ch__build(src, name, v, keep, n, is_loop, out, err);
  free(keep);
  return rc;
}

int ch_track_parse_npy(const void *data, size_t size, const char *source, const char *name,
                       ch_track **out, ch_error *err) {
  *out = NULL;
  ch_error_clear(err);
  ch__npy h = {0};
  h.src = source ? source : "<npy>";
  h.err = err;
  char derived[CH_TRACK_NAME_MAX];
  if (!name) ch_track_name_from_path(h.src, derived), name = derived;
  if (!ch__valid_name(name))
    return ch_error_set(err, CH_EINVAL,
                        "%s: track name '%s' must be 1 to %d characters of [A-Za-z0-9_-]", h.src,
                        name, CH_TRACK_NAME_MAX - 1);
  const unsigned char *b = data;
  size_t at = 0;
  int rc;
  if ((rc = ch__preamble(&h, b, size, &at)) || (rc = ch__dict(&h)) || (rc = ch__check_layout(&h)))
    return rc;
  long nrows = h.shape[0];
  size_t need = (size_t)nrows * CH__NPY_COLUMNS * 8, have = size - at;
  if ((size_t)nrows > SIZE_MAX / (CH__NPY_COLUMNS * 8) || have < need)
    return ch_error_set(err, CH_ECORRUPT,
                        "%s: truncated: the header's shape (%ld, 6) needs %zu bytes of data, the "
                        "file has %zu",
                        h.src, nrows, need, have);
  if (have > need)
    return ch_error_set(err, CH_ECORRUPT, "%s: %zu bytes follow the (%ld, 6) array", h.src,
                        have - need, nrows);
  double *v = malloc((need > 0 ? need : 1));
  if (!v) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", h.src);
  for (size_t i = 0; i < (size_t)nrows * CH__NPY_COLUMNS; i++) v[i] = ch__f64le(b + at + 8 * i);
  rc = ch__finite_rows(h.src, v, nrows, err);
  if (!rc) rc = ch__to_track(h.src, name, v, nrows, out, err);
  free(v);
  return rc;
}

int ch_track_import_npy(const char *path, const char *name, ch_track **out, ch_error *err) {
  char *data = NULL;
  size_t size = 0;
  *out = NULL;
  ch_error_clear(err);
  int rc = ch_track__read_file(path, &data, &size, err);
  if (rc) return rc;
  rc = ch_track_parse_npy(data, size, path, name, out, err);
  free(data);
  return rc;
}
