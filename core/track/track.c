/* track.c -- reads and validates .track files and answers spatial queries on the centre line. */
#include "track.h"
#include "track_impl.h"

#include <chicane/plugin_util.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH_TRACK_PI 3.14159265358979323846

/* ------------------------------------------------------------------------------------------ */
/* Allocation                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Doubles per point in the single array block: 13 arrays of n, then s and theta of n + 1. */
#define CH__TRACK_PER_POINT 15

ch_track *ch_track__alloc(int n) {
  ch_track *t = calloc(1, sizeof *t);
  double *b = calloc((size_t)CH__TRACK_PER_POINT * (size_t)n + 2, sizeof *b);
  if (!t || !b) {
    free(t);
    free(b);
    return NULL;
  }
  t->n = n;
  double **arrays[] = {&t->cx, &t->cy, &t->lx, &t->ly, &t->rx, &t->ry,  &t->tx,
                       &t->ty, &t->hl, &t->hr, &t->ux, &t->uy, &t->ulen};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) *arrays[i] = b + i * (size_t)n;
  /* s and theta come last and get one extra entry each for the closing point of a loop. */
  t->s = b + 13 * (size_t)n;
  t->theta = t->s + n + 1;
  return t;
}

void ch_track_free(ch_track *t) {
  if (!t) return;
  free(t->cx); /* the start of the array block */
  ch_track__grid_free(t->grid);
  free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Geometry from centre and border points (shared by the parser and ch_track_reverse)         */
/* ------------------------------------------------------------------------------------------ */

const char *ch_track__at(const ch_track__where *w, int i, char *buf, size_t size) {
  int k = w->line ? w->line[i] : i;
  if (strcmp(w->unit, "line") == 0)
    snprintf(buf, size, "%s:%d", w->source, k);
  else
    snprintf(buf, size, "%s: %s %d", w->source, w->unit, k);
  return buf;
}

static int ch__segments(ch_track *t, const ch_track__where *w, ch_error *err) {
  char at[300];
  for (int i = 0; i < t->nseg; i++) {
    int j = (i + 1) % t->n;
    double dx = t->cx[j] - t->cx[i], dy = t->cy[j] - t->cy[i];
    double len = sqrt(dx * dx + dy * dy);
    if (len < CH_TRACK_MIN_SPACING) {
      if (j == 0)
        return ch_error_set(err, CH_ECORRUPT,
                            "%s: last point is %.6g m from the first (a loop does not repeat "
                            "its first point; minimum spacing %g m)",
                            ch_track__at(w, i, at, sizeof at), len, CH_TRACK_MIN_SPACING);
      return ch_error_set(err, CH_ECORRUPT,
                          "%s: point is %.6g m from the previous point (minimum %g m)",
                          ch_track__at(w, j, at, sizeof at), len, CH_TRACK_MIN_SPACING);
    }
    t->ux[i] = dx / len;
    t->uy[i] = dy / len;
    t->ulen[i] = len;
  }
  return CH_OK;
}

/* Tangent at a point: the bisector of the directions of the segments that meet there. */
static int ch__tangents(ch_track *t, const ch_track__where *w, ch_error *err) {
  char at[300];
  for (int i = 0; i < t->n; i++) {
    int in = t->is_loop ? (i + t->n - 1) % t->n : i - 1;
    int outs = (t->is_loop || i < t->nseg) ? i : -1;
    double x = 0, y = 0;
    if (in >= 0) x += t->ux[in], y += t->uy[in];
    if (outs >= 0) x += t->ux[outs], y += t->uy[outs];
    double len = sqrt(x * x + y * y);
    if (len < 1e-9)
      return ch_error_set(err, CH_ECORRUPT, "%s: centre line turns back on itself at this point",
                          ch_track__at(w, i, at, sizeof at));
    t->tx[i] = x / len;
    t->ty[i] = y / len;
  }
  return CH_OK;
}

/* Half widths from explicit borders, or borders from width where a row gave none (has[i] 0). */
static int ch__borders(ch_track *t, const unsigned char *has, double width,
                       const ch_track__where *w, ch_error *err) {
  char at[300];
  for (int i = 0; i < t->n; i++) {
    double nx = -t->ty[i], ny = t->tx[i]; /* left normal */
    if (!has[i]) {
      t->hl[i] = t->hr[i] = width / 2;
      t->lx[i] = t->cx[i] + nx * width / 2, t->ly[i] = t->cy[i] + ny * width / 2;
      t->rx[i] = t->cx[i] - nx * width / 2, t->ry[i] = t->cy[i] - ny * width / 2;
      continue;
    }
    t->hl[i] = (t->lx[i] - t->cx[i]) * nx + (t->ly[i] - t->cy[i]) * ny;
    t->hr[i] = -((t->rx[i] - t->cx[i]) * nx + (t->ry[i] - t->cy[i]) * ny);
    if (!(t->hl[i] > 0))
      return ch_error_set(err, CH_ECORRUPT,
                          "%s: %s border point (%g, %g) is not left of the centre line",
                          ch_track__at(w, i, at, sizeof at), w->left, t->lx[i], t->ly[i]);
    if (!(t->hr[i] > 0))
      return ch_error_set(err, CH_ECORRUPT,
                          "%s: %s border point (%g, %g) is not right of the centre line",
                          ch_track__at(w, i, at, sizeof at), w->right, t->rx[i], t->ry[i]);
  }
  return CH_OK;
}

/* Distance from centre point i to segment k of the polyline (x, y). */
static double ch__point_seg(const ch_track *t, int i, const double *x, const double *y, int k) {
  int e = (k + 1) % t->n;
  double ex = x[e] - x[k], ey = y[e] - y[k], px = t->cx[i] - x[k], py = t->cy[i] - y[k];
  double l2 = ex * ex + ey * ey, f = l2 > 0 ? (px * ex + py * ey) / l2 : 0;
  f = f < 0 ? 0 : f > 1 ? 1 : f;
  return hypot(px - f * ex, py - f * ey);
}

/* Distance along the unit direction (nx, ny) from centre point i to the nearest crossing with
** the border polyline (bx, by), or 0 if there is none nearby. The border's own point i may lie
** well ahead of or behind the normal (DeepRacer's inner rows run up to half a metre ahead in
** some corners), so the search walks the border both ways from segment i for as long as its
** segments stay within reach: twice the distance to border point i, or the best hit so far. */
static double ch__normal_hit(const ch_track *t, const double *bx, const double *by, int i,
                             double nx, double ny) {
  double reach = 2 * hypot(bx[i] - t->cx[i], by[i] - t->cy[i]), best = 0;
  for (int dir = 0; dir < 2; dir++) {
    for (int k = 0; k < t->nseg; k++) {
      int a = dir ? i + k : i - 1 - k;
      if (t->is_loop)
        a = ((a % t->nseg) + t->nseg) % t->nseg;
      else if (a < 0 || a >= t->nseg)
        break;
      if (ch__point_seg(t, i, bx, by, a) > (best > 0 ? best : reach)) break;
      int b = (a + 1) % t->n;
      double ex = bx[b] - bx[a], ey = by[b] - by[a];
      double wx = bx[a] - t->cx[i], wy = by[a] - t->cy[i];
      double den = nx * ey - ny * ex;
      if (den == 0) continue;
      double h = (wx * ey - wy * ex) / den, f = (wx * ny - wy * nx) / den;
      if (f >= 0 && f <= 1 && h > 0 && (best == 0 || h < best)) best = h;
    }
  }
  return best;
}

/* Move given border points along their border onto the normal of their centre point. Files
** such as DeepRacer's sample each border on its own, so in corners a row's border point is not
** across from its centre point, and projecting it onto the normal would make the track look
** narrower there than its borders are; after this, half widths and borders agree. */
static int ch__snap_borders(ch_track *t, const unsigned char *has, const ch_track__where *w,
                            ch_error *err) {
  double *nb = malloc(4 * (size_t)t->n * sizeof *nb);
  if (!nb) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", w->source);
  for (int i = 0; i < t->n; i++) {
    double nx = -t->ty[i], ny = t->tx[i];
    double hl = has[i] ? ch__normal_hit(t, t->lx, t->ly, i, nx, ny) : 0;
    double hr = has[i] ? ch__normal_hit(t, t->rx, t->ry, i, -nx, -ny) : 0;
    nb[4 * i] = hl > 0 ? t->cx[i] + hl * nx : t->lx[i];
    nb[4 * i + 1] = hl > 0 ? t->cy[i] + hl * ny : t->ly[i];
    nb[4 * i + 2] = hr > 0 ? t->cx[i] - hr * nx : t->rx[i];
    nb[4 * i + 3] = hr > 0 ? t->cy[i] - hr * ny : t->ry[i];
  }
  for (int i = 0; i < t->n; i++) {
    t->lx[i] = nb[4 * i], t->ly[i] = nb[4 * i + 1];
    t->rx[i] = nb[4 * i + 2], t->ry[i] = nb[4 * i + 3];
  }
  free(nb);
  return CH_OK;
}

static double ch__wrap_angle(double a) {
  while (a > CH_TRACK_PI) a -= 2 * CH_TRACK_PI;
  while (a <= -CH_TRACK_PI) a += 2 * CH_TRACK_PI;
  return a;
}

static void ch__arc_and_heading(ch_track *t) {
  t->s[0] = 0;
  t->theta[0] = atan2(t->ty[0], t->tx[0]);
  for (int i = 0; i < t->nseg; i++) {
    int j = (i + 1) % t->n;
    t->s[i + 1] = t->s[i] + t->ulen[i];
    t->theta[i + 1] = t->theta[i] + ch__wrap_angle(atan2(t->ty[j], t->tx[j]) - t->theta[i]);
  }
  t->length = t->s[t->nseg];
  t->total_turn = t->is_loop ? t->theta[t->n] - t->theta[0] : 0;
}

static int ch__cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int ch__median_width(ch_track *t, ch_error *err) {
  double *w = malloc((size_t)t->n * sizeof *w);
  if (!w) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", t->name);
  for (int i = 0; i < t->n; i++) w[i] = t->hl[i] + t->hr[i];
  qsort(w, (size_t)t->n, sizeof *w, ch__cmp_double);
  t->width = t->n % 2 ? w[t->n / 2] : 0.5 * (w[t->n / 2 - 1] + w[t->n / 2]);
  free(w);
  return CH_OK;
}

int ch_track__finish(ch_track *t, const unsigned char *has, double width, int snap,
                     const ch_track__where *w, ch_error *err) {
  int need = t->is_loop ? 3 : 2;
  if (t->n < need)
    return ch_error_set(err, CH_ECORRUPT, "%s: a %s track needs at least %d points, got %d",
                        w->source, t->is_loop ? "loop" : "straight", need, t->n);
  t->nseg = t->is_loop ? t->n : t->n - 1;
  int rc;
  if ((rc = ch__segments(t, w, err)) || (rc = ch__tangents(t, w, err)) ||
      (snap && (rc = ch__snap_borders(t, has, w, err))) ||
      (rc = ch__borders(t, has, width, w, err)))
    return rc;
  ch__arc_and_heading(t);
  if ((rc = ch__median_width(t, err)) || (rc = ch_track__grid_build(t, err)) ||
      (rc = ch_track__check_crossings(t, w, err)))
    return rc;
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The text format                                                                             */
/* ------------------------------------------------------------------------------------------ */

#define CH__MAX_TOKENS 8

typedef struct ch__row {
  double v[6];
  int count; /* 2 or 6 */
  int line;
} ch__row;

typedef struct ch__parser {
  const char *src;
  int line;
  int have_header;
  int name_line, loop_line, width_line;
  char name[CH_TRACK_NAME_MAX];
  int is_loop;
  double width;
  ch__row *rows;
  int nrows, cap;
  ch_error *err;
} ch__parser;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
ch__fail(ch__parser *p, const char *fmt, ...) {
  char msg[CH_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ch_error_set(p->err, CH_ECORRUPT, "%s:%d: %s", p->src, p->line, msg);
}

/* Split one line (comment removed) into whitespace-separated tokens, NUL-terminated in buf. */
static int ch__tokenize(char *buf, char **tok) {
  char *hash = strchr(buf, '#');
  if (hash) *hash = '\0';
  int n = 0;
  for (char *c = buf; *c;) {
    while (*c && isspace((unsigned char)*c)) *c++ = '\0';
    if (!*c) break;
    if (n < CH__MAX_TOKENS) tok[n] = c;
    n++;
    while (*c && !isspace((unsigned char)*c)) c++;
  }
  return n;
}

static int ch__number(ch__parser *p, const char *tok, double *out) {
  char *end;
  double v = strtod(tok, &end);
  if (end == tok || *end) return ch__fail(p, "'%s' is not a number", tok);
  if (!isfinite(v)) return ch__fail(p, "'%s' is not a finite number", tok);
  *out = v;
  return CH_OK;
}

/* A row of numbers starts like a number, or is one in full (so "inf" and "nan" are numbers,
** reported as not finite, while a directive such as "information" stays a directive). */
static int ch__looks_numeric(const char *tok) {
  char *end;
  if (isdigit((unsigned char)tok[0]) || strchr("+-.", tok[0])) return 1;
  strtod(tok, &end);
  return end != tok && !*end;
}

static int ch__point_row(ch__parser *p, char **tok, int ntok) {
  if (ntok != 2 && ntok != 6) return ch__fail(p, "expected 2 or 6 numbers, got %d", ntok);
  if (p->nrows == p->cap) {
    int cap = p->cap ? 2 * p->cap : 256;
    ch__row *rows = realloc(p->rows, (size_t)cap * sizeof *rows);
    if (!rows) return ch_error_set(p->err, CH_ENOMEM, "%s: out of memory", p->src);
    p->rows = rows, p->cap = cap;
  }
  ch__row *r = &p->rows[p->nrows];
  for (int i = 0; i < ntok; i++) {
    int rc = ch__number(p, tok[i], &r->v[i]);
    if (rc) return rc;
  }
  r->count = ntok;
  r->line = p->line;
  p->nrows++;
  return CH_OK;
}

static int ch__once(ch__parser *p, int *seen, const char *key, int nargs, int want) {
  if (*seen) return ch__fail(p, "duplicate '%s' (first at line %d)", key, *seen);
  if (nargs != want) return ch__fail(p, "'%s' takes exactly %d value, got %d", key, want, nargs);
  *seen = p->line;
  return CH_OK;
}

static int ch__name(ch__parser *p, char **tok, int ntok) {
  int rc = ch__once(p, &p->name_line, "name", ntok - 1, 1);
  if (rc) return rc;
  size_t len = strlen(tok[1]);
  if (len >= CH_TRACK_NAME_MAX)
    return ch__fail(p, "name '%s' is longer than %d characters", tok[1], CH_TRACK_NAME_MAX - 1);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)tok[1][i];
    if (!isalnum(c) && c != '_' && c != '-')
      return ch__fail(p, "name '%s' has characters outside [A-Za-z0-9_-]", tok[1]);
  }
  memcpy(p->name, tok[1], len + 1);
  return CH_OK;
}

static int ch__directive(ch__parser *p, char **tok, int ntok) {
  int rc;
  if (strcmp(tok[0], "name") == 0) return ch__name(p, tok, ntok);
  if (strcmp(tok[0], "loop") == 0) {
    if ((rc = ch__once(p, &p->loop_line, "loop", ntok - 1, 1))) return rc;
    if (strcmp(tok[1], "yes") && strcmp(tok[1], "no"))
      return ch__fail(p, "loop must be 'yes' or 'no', got '%s'", tok[1]);
    p->is_loop = strcmp(tok[1], "yes") == 0;
    return CH_OK;
  }
  if (strcmp(tok[0], "width") == 0) {
    if ((rc = ch__once(p, &p->width_line, "width", ntok - 1, 1))) return rc;
    if ((rc = ch__number(p, tok[1], &p->width))) return rc;
    if (!(p->width > 0)) return ch__fail(p, "width must be > 0, got %s", tok[1]);
    return CH_OK;
  }
  return ch__fail(p, "unknown directive '%s'", tok[0]);
}

static int ch__header(ch__parser *p, char **tok, int ntok) {
  if (strcmp(tok[0], "chicane-track") != 0)
    return ch__fail(p, "expected the header 'chicane-track 1', got '%s'", tok[0]);
  if (ntok != 2 || strcmp(tok[1], "1") != 0)
    return ch__fail(p, "unsupported format version '%s' (this library reads 1)",
                    ntok > 1 ? tok[1] : "");
  p->have_header = 1;
  return CH_OK;
}

static int ch__line(ch__parser *p, char *buf) {
  char *tok[CH__MAX_TOKENS];
  int ntok = ch__tokenize(buf, tok);
  if (ntok == 0) return CH_OK;
  if (!p->have_header) return ch__header(p, tok, ntok);
  if (ch__looks_numeric(tok[0])) return ch__point_row(p, tok, ntok);
  return ch__directive(p, tok, ntok);
}

static int ch__lines(ch__parser *p, const char *text) {
  char buf[1024];
  for (const char *c = text; *c;) {
    const char *eol = strchr(c, '\n');
    size_t len = eol ? (size_t)(eol - c) : strlen(c);
    p->line++;
    if (len >= sizeof buf)
      return ch__fail(p, "line longer than %d characters", (int)sizeof buf - 1);
    memcpy(buf, c, len);
    buf[len] = '\0';
    int rc = ch__line(p, buf);
    if (rc) return rc;
    c += len + (eol != NULL);
  }
  return CH_OK;
}

static int ch__check_directives(ch__parser *p) {
  if (!p->have_header)
    return ch_error_set(p->err, CH_ECORRUPT, "%s: no 'chicane-track 1' header (empty file)",
                        p->src);
  if (!p->name_line) return ch_error_set(p->err, CH_ECORRUPT, "%s: missing 'name'", p->src);
  if (!p->loop_line)
    return ch_error_set(p->err, CH_ECORRUPT, "%s: missing 'loop yes' or 'loop no'", p->src);
  for (int i = 0; i < p->nrows && !p->width_line; i++)
    if (p->rows[i].count == 2)
      return ch_error_set(p->err, CH_ECORRUPT,
                          "%s:%d: row gives only a centre point but no 'width' is set", p->src,
                          p->rows[i].line);
  return CH_OK;
}

static int ch__build(ch__parser *p, ch_track **out) {
  int n = p->nrows;
  ch_track *t = ch_track__alloc(n > 0 ? n : 1);
  unsigned char *has = malloc((size_t)(n > 0 ? n : 1));
  int *line = malloc((size_t)(n > 0 ? n : 1) * sizeof *line);
  if (!t || !has || !line) {
    ch_track_free(t), free(has), free(line);
    return ch_error_set(p->err, CH_ENOMEM, "%s: out of memory", p->src);
  }
  t->n = n;
  t->is_loop = p->is_loop;
  memcpy(t->name, p->name, sizeof t->name);
  for (int i = 0; i < n; i++) {
    const double *v = p->rows[i].v;
    t->cx[i] = v[0], t->cy[i] = v[1];
    has[i] = p->rows[i].count == 6;
    if (has[i]) t->lx[i] = v[2], t->ly[i] = v[3], t->rx[i] = v[4], t->ry[i] = v[5];
    line[i] = p->rows[i].line;
  }
  ch_track__where w = {p->src, line, "line", "left", "right"};
  int rc = ch_track__finish(t, has, p->width, 0, &w, p->err);
  free(has), free(line);
  if (rc) {
    ch_track_free(t);
    return rc;
  }
  *out = t;
  return CH_OK;
}

int ch_track_parse(const char *text, const char *source_name, ch_track **out, ch_error *err) {
  *out = NULL;
  ch_error_clear(err);
  ch__parser p = {0};
  p.src = source_name ? source_name : "<track>";
  p.err = err;
  int rc = ch__lines(&p, text);
  if (!rc) rc = ch__check_directives(&p);
  if (!rc) rc = ch__build(&p, out);
  free(p.rows);
  return rc;
}

int ch_track__read_file(const char *path, char **data, size_t *size, ch_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return ch_error_set(err, errno == ENOENT ? CH_ENOTFOUND : CH_EIO, "%s: %s", path,
                        strerror(errno));
  size_t len = 0, cap = 1 << 16;
  char *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - len - 1, f);
    if (len < cap - 1) break;
    char *bigger = realloc(buf, cap *= 2);
    if (!bigger) free(buf);
    buf = bigger;
  }
  int failed = ferror(f) ? errno : 0;
  fclose(f);
  if (!buf) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  if (failed) {
    free(buf);
    return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(failed));
  }
  buf[len] = '\0';
  *data = buf;
  *size = len;
  return CH_OK;
}

/* A DeepRacer file loads wherever a .track file does: its magic cannot start a text file. */
static int ch__is_npy(const char *data, size_t size) {
  return size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0;
}

int ch_track_load(const char *path, ch_track **out, ch_error *err) {
  char *text = NULL;
  size_t size = 0;
  *out = NULL;
  ch_error_clear(err);
  int rc = ch_track__read_file(path, &text, &size, err);
  if (rc) return rc;
  if (ch__is_npy(text, size))
    rc = ch_track_parse_npy(text, size, path, NULL, out, err);
  else if (memchr(text, '\0', size))
    rc = ch_error_set(err, CH_ECORRUPT, "%s: binary data in a .track file (a NUL byte at %zu)",
                      path, (size_t)((char *)memchr(text, '\0', size) - text));
  else
    rc = ch_track_parse(text, path, out, err);
  free(text);
  return rc;
}

int ch_track_reverse(const ch_track *src, ch_track **out, ch_error *err) {
  *out = NULL;
  ch_track *t = ch_track__alloc(src->n);
  unsigned char *has = malloc((size_t)src->n);
  if (!t || !has) {
    ch_track_free(t), free(has);
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", src->name);
  }
  memcpy(t->name, src->name, sizeof t->name);
  t->is_loop = src->is_loop;
  for (int i = 0; i < src->n; i++) {
    int j = src->is_loop ? (src->n - i) % src->n : src->n - 1 - i;
    t->cx[i] = src->cx[j], t->cy[i] = src->cy[j];
    t->lx[i] = src->rx[j], t->ly[i] = src->ry[j];
    t->rx[i] = src->lx[j], t->ry[i] = src->ly[j];
    has[i] = 1;
  }
  ch_track__where w = {src->name, NULL, "point", "left", "right"};
  int rc = ch_track__finish(t, has, 0, 0, &w, err);
  free(has);
  if (rc) {
    ch_track_free(t);
    return rc;
  }
  *out = t;
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Queries                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static int ch__next_seg(const ch_track *t, int i, int dir) {
  i += dir;
  if (t->is_loop) return (i + t->nseg) % t->nseg;
  return i >= 0 && i < t->nseg ? i : -1;
}

/* No point of segment i is nearer to (x, y) than this (triangle inequality at either end). */
static double ch__lower_bound(const ch_track *t, int i, double x, double y) {
  int j = (i + 1) % t->n;
  double ax = x - t->cx[i], ay = y - t->cy[i], bx = x - t->cx[j], by = y - t->cy[j];
  double a2 = ax * ax + ay * ay, b2 = bx * bx + by * by;
  return sqrt(a2 > b2 ? a2 : b2) - t->ulen[i];
}

/* Walk from segment i in direction dir, past segments farther than the best so far, until one
** is too far away to matter: inside a corner the distance has a local minimum on each side,
** so stopping at the first rise could miss the nearer one. */
static void ch__walk(const ch_track *t, double x, double y, int i, int dir, double *best,
                     int *found) {
  for (int k = 0; k < t->nseg; k++) {
    int j = ch__next_seg(t, i, dir);
    if (j < 0) break;
    double d = ch_track__seg_d2(t, j, x, y);
    if (d < *best) {
      *best = d, *found = j;
    } else {
      double lb = ch__lower_bound(t, j, x, y);
      if (lb > 0 && lb * lb >= *best) break;
    }
    i = j;
  }
}

static int ch__closest_segment(const ch_track *t, double x, double y, int hint) {
  if (hint < 0 || hint >= t->nseg) return ch_track__grid_closest(t, x, y);
  double best = ch_track__seg_d2(t, hint, x, y);
  int found = hint;
  ch__walk(t, x, y, hint, +1, &best, &found);
  ch__walk(t, x, y, hint, -1, &best, &found);
  return found;
}

/* The closest point of segment i to (x, y): along-segment distance a (unclamped) and ac
** (clamped, except at the open ends of a straight), interpolation fraction f in [0, 1]. */
typedef struct ch__foot {
  double a, ac, f;
  double qx, qy; /* the point itself */
  double dist;   /* distance from (x, y) */
  double offset; /* signed: + = left */
} ch__foot;

static void ch__foot_of(const ch_track *t, int i, double x, double y, ch__foot *o) {
  int j = (i + 1) % t->n;
  double px = x - t->cx[i], py = y - t->cy[i], len = t->ulen[i];
  double a = px * t->ux[i] + py * t->uy[i], ac = a;
  if (ac < 0 && (t->is_loop || i > 0)) ac = 0;
  if (ac > len && (t->is_loop || i < t->nseg - 1)) ac = len;
  o->a = a, o->ac = ac;
  o->f = a <= 0 ? 0 : a >= len ? 1 : a / len;
  o->qx = t->cx[i] + ac * t->ux[i], o->qy = t->cy[i] + ac * t->uy[i];
  double dx = x - o->qx, dy = y - o->qy;
  /* Past a vertex the side comes from the vertex tangent, which is right for any corner. */
  double sx = ac == a ? t->ux[i] : ac == 0 ? t->tx[i] : t->tx[j];
  double sy = ac == a ? t->uy[i] : ac == 0 ? t->ty[i] : t->ty[j];
  o->dist = sqrt(dx * dx + dy * dy);
  o->offset = sx * dy - sy * dx >= 0 ? o->dist : -o->dist;
}

int ch_track_project(const ch_track *t, double x, double y, int hint, ch_track_proj *out) {
  int i = ch__closest_segment(t, x, y, hint), j = (i + 1) % t->n;
  ch__foot ft;
  ch__foot_of(t, i, x, y, &ft);
  double f = ft.f;
  double tx = t->tx[i] + (t->tx[j] - t->tx[i]) * f, ty = t->ty[i] + (t->ty[j] - t->ty[i]) * f;
  double tl = sqrt(tx * tx + ty * ty);
  out->segment = i;
  out->t = ft.ac / t->ulen[i];
  out->s = t->s[i] + ft.ac;
  if (t->is_loop && out->s >= t->length) out->s -= t->length;
  out->offset = ft.offset;
  out->distance = ft.dist;
  out->half_left = t->hl[i] + (t->hl[j] - t->hl[i]) * f;
  out->half_right = t->hr[i] + (t->hr[j] - t->hr[i]) * f;
  out->tan_x = tx / tl, out->tan_y = ty / tl;
  out->heading = atan2(out->tan_y, out->tan_x);
  out->px = ft.qx, out->py = ft.qy;
  return i;
}

int ch_track_lateral(const ch_track *t, double x, double y, int hint, double *offset,
                     double *half_left, double *half_right) {
  int i = ch__closest_segment(t, x, y, hint), j = (i + 1) % t->n;
  ch__foot ft;
  ch__foot_of(t, i, x, y, &ft);
  *offset = ft.offset;
  *half_left = t->hl[i] + (t->hl[j] - t->hl[i]) * ft.f;
  *half_right = t->hr[i] + (t->hr[j] - t->hr[i]) * ft.f;
  return i;
}

double ch_track_wrap_s(const ch_track *t, double s) {
  if (!t->is_loop) return s < 0 ? 0 : s > t->length ? t->length : s;
  s = fmod(s, t->length);
  if (s < 0) s += t->length;
  return s >= t->length ? 0 : s;
}

int ch_track_segment_at(const ch_track *t, double s) {
  int lo = 0, hi = t->nseg - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (t->s[mid] <= s)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

void ch_track_point_at(const ch_track *t, double s, double *x, double *y, double *heading) {
  s = ch_track_wrap_s(t, s);
  int i = ch_track_segment_at(t, s), j = (i + 1) % t->n;
  double a = s - t->s[i];
  double f = a / t->ulen[i];
  f = f < 0 ? 0 : f > 1 ? 1 : f;
  if (x) *x = t->cx[i] + a * t->ux[i];
  if (y) *y = t->cy[i] + a * t->uy[i];
  if (heading) {
    double tx = t->tx[i] + (t->tx[j] - t->tx[i]) * f, ty = t->ty[i] + (t->ty[j] - t->ty[i]) * f;
    *heading = atan2(ty, tx);
  }
}

/* Does segment i hold arc position s (already within [0, length])? */
static int ch__holds(const ch_track *t, int i, double s) {
  return t->s[i] <= s && (s < t->s[i + 1] || i == t->nseg - 1);
}

double ch_track_theta(const ch_track *t, double s, int *hint) {
  double laps = 0;
  if (t->is_loop) {
    laps = floor(s / t->length);
    s -= laps * t->length;
    if (s >= t->length) s = 0, laps += 1;
  } else {
    s = s < 0 ? 0 : s > t->length ? t->length : s;
  }
  /* Forward from the hint, a few segments at most; otherwise a binary search. */
  int i = hint && *hint >= 0 && *hint < t->nseg ? *hint : -1;
  for (int k = 0; i >= 0 && k < 8 && !ch__holds(t, i, s); k++) i = (i + 1) % t->nseg;
  if (i < 0 || !ch__holds(t, i, s)) i = ch_track_segment_at(t, s);
  if (hint) *hint = i;
  double f = (s - t->s[i]) / t->ulen[i];
  f = f < 0 ? 0 : f > 1 ? 1 : f;
  return t->theta[i] + (t->theta[i + 1] - t->theta[i]) * f + laps * t->total_turn;
}

double ch_track_curvature(const ch_track *t, double s, double a, double b) {
  return (ch_track_theta(t, s + b, NULL) - ch_track_theta(t, s + a, NULL)) / (b - a);
}

/* ------------------------------------------------------------------------------------------ */
/* Facts                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void ch__bbox(const ch_track *t, const double *x, const double *y, ch_track_info *o) {
  for (int i = 0; i < t->n; i++) {
    o->x0 = fmin(o->x0, x[i]), o->x1 = fmax(o->x1, x[i]);
    o->y0 = fmin(o->y0, y[i]), o->y1 = fmax(o->y1, y[i]);
  }
}

void ch_track_describe(const ch_track *t, ch_track_info *out) {
  out->x0 = out->y0 = INFINITY;
  out->x1 = out->y1 = -INFINITY;
  ch__bbox(t, t->cx, t->cy, out);
  ch__bbox(t, t->lx, t->ly, out);
  ch__bbox(t, t->rx, t->ry, out);
  out->width_min = INFINITY, out->width_max = 0;
  for (int i = 0; i < t->n; i++) {
    out->width_min = fmin(out->width_min, t->hl[i] + t->hr[i]);
    out->width_max = fmax(out->width_max, t->hl[i] + t->hr[i]);
  }
  /* A window of 0.2 m spans a couple of points on any real track, so one sharp vertex of a
  ** coarse polyline does not read as a tiny radius. A straight's ends count as straight. */
  double kmax = 0;
  for (int i = 0; i < t->n; i++) {
    double a = t->is_loop ? -0.1 : fmax(-0.1, -t->s[i]);
    double b = t->is_loop ? 0.1 : fmin(0.1, t->length - t->s[i]);
    if (b - a > 1e-9) kmax = fmax(kmax, fabs(ch_track_curvature(t, t->s[i], a, b)));
  }
  out->min_radius = kmax > 1e-9 ? 1 / kmax : INFINITY;
  out->direction = !t->is_loop ? 0 : t->total_turn > 0 ? 1 : -1;
}
