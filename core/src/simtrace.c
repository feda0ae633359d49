/* simtrace.c -- writes and reads DeepRacer's sim-trace CSV (see simtrace.h for the columns). */
#include "simtrace.h"

#include <chicane/plugin_util.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH__MAX_COLUMNS 64 /* a line with more fields than this is not a sim-trace */
#define CH__ROW_MAX     512

struct ch_simtrace {
  char *buf;
  size_t len, cap, header_len, rows;
};

static const char *const ch__status_names[] = {
    "in_progress", "lap_complete", "off_track", "crashed", "immobilized", "reversed", "time_up"};

#define CH__NUM_STATUS ((int32_t)(sizeof ch__status_names / sizeof ch__status_names[0]))

const char *ch_simtrace_status_name(int32_t status) {
  if (status == CH_SIMTRACE_PREPARE) return "prepare";
  return status >= 0 && status < CH__NUM_STATUS ? ch__status_names[status] : NULL;
}

int ch_simtrace_status_parse(const char *name, int32_t *out) {
  if (strcmp(name, "prepare") == 0) {
    *out = CH_SIMTRACE_PREPARE;
    return CH_OK;
  }
  for (int32_t i = 0; i < CH__NUM_STATUS; i++)
    if (strcmp(name, ch__status_names[i]) == 0) {
      *out = i;
      return CH_OK;
    }
  return CH_EINVAL;
}

/* ---- writer ---------------------------------------------------------------------------- */

static int ch__reserve(ch_simtrace *t, size_t more) {
  if (t->len + more + 1 <= t->cap) return CH_OK;
  size_t cap = t->cap ? t->cap : 4096;
  while (cap < t->len + more + 1) cap *= 2;
  char *b = realloc(t->buf, cap);
  if (!b) return CH_ENOMEM;
  t->buf = b;
  t->cap = cap;
  return CH_OK;
}

ch_simtrace *ch_simtrace_new(void) {
  ch_simtrace *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  static const char header[] = CH_SIMTRACE_HEADER "\n";
  if (ch__reserve(t, sizeof header) != CH_OK) {
    free(t);
    return NULL;
  }
  memcpy(t->buf, header, sizeof header);
  t->len = t->header_len = sizeof header - 1;
  return t;
}

static int ch__row_finite(const ch_simtrace_row *r) {
  const double v[] = {r->x,      r->y,        r->yaw_deg,   r->steer_deg, r->throttle,
                      r->reward, r->progress, r->track_len, r->tstamp,    r->pause_duration};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    if (!isfinite(v[i])) return 0;
  return 1;
}

static const char *ch__bool(int b) {
  return b ? "True" : "False";
}

int ch_simtrace_add(ch_simtrace *t, const ch_simtrace_row *r) {
  const char *status = ch_simtrace_status_name(r->status);
  if (!status || !ch__row_finite(r)) return CH_EINVAL;
  char line[CH__ROW_MAX];
  int n = snprintf(line, sizeof line,
                   "%lld,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%d,%.4f,%s,%s,%.4f,%d,%.2f,%.3f,%s,%.4f\n",
                   (long long)r->episode, (int)r->steps, r->x, r->y, r->yaw_deg, r->steer_deg,
                   r->throttle, (int)r->action, r->reward, ch__bool(r->done),
                   ch__bool(r->all_wheels_on_track), r->progress, (int)r->closest_waypoint,
                   r->track_len, r->tstamp, status, r->pause_duration);
  /* Huge (finite) values could overflow the line; they are not positions a car reaches. */
  if (n < 0 || (size_t)n >= sizeof line) return CH_EINVAL;
  if (ch__reserve(t, (size_t)n) != CH_OK) return CH_ENOMEM;
  memcpy(t->buf + t->len, line, (size_t)n + 1);
  t->len += (size_t)n;
  t->rows++;
  return CH_OK;
}

const char *ch_simtrace_data(const ch_simtrace *t, size_t *len) {
  if (len) *len = t->len;
  return t->buf;
}

size_t ch_simtrace_count(const ch_simtrace *t) {
  return t->rows;
}

void ch_simtrace_clear(ch_simtrace *t) {
  t->len = t->header_len;
  t->buf[t->len] = '\0';
  t->rows = 0;
}

void ch_simtrace_free(ch_simtrace *t) {
  if (!t) return;
  free(t->buf);
  free(t);
}

/* ---- reader ---------------------------------------------------------------------------- */

typedef enum { CH__INT64, CH__INT32, CH__DOUBLE, CH__BOOL, CH__STATUS } ch__kind;

typedef struct ch__column {
  const char *name;
  ch__kind kind;
  size_t offset;
  int required;
} ch__column;

#define CH__COL(name, kind, field, req)                                                            \
  { name, kind, offsetof(ch_simtrace_row, field), req }

static const ch__column ch__columns[] = {
    CH__COL("episode", CH__INT64, episode, 1),
    CH__COL("steps", CH__INT32, steps, 1),
    CH__COL("X", CH__DOUBLE, x, 1),
    CH__COL("Y", CH__DOUBLE, y, 1),
    CH__COL("yaw", CH__DOUBLE, yaw_deg, 1),
    CH__COL("steer", CH__DOUBLE, steer_deg, 1),
    CH__COL("throttle", CH__DOUBLE, throttle, 1),
    CH__COL("action", CH__INT32, action, 1),
    CH__COL("reward", CH__DOUBLE, reward, 1),
    CH__COL("done", CH__BOOL, done, 1),
    CH__COL("all_wheels_on_track", CH__BOOL, all_wheels_on_track, 1),
    CH__COL("progress", CH__DOUBLE, progress, 1),
    CH__COL("closest_waypoint", CH__INT32, closest_waypoint, 1),
    CH__COL("track_len", CH__DOUBLE, track_len, 1),
    CH__COL("tstamp", CH__DOUBLE, tstamp, 1),
    CH__COL("episode_status", CH__STATUS, status, 0),
    CH__COL("pause_duration", CH__DOUBLE, pause_duration, 0),
};

#define CH__NUM_COLUMNS (sizeof ch__columns / sizeof ch__columns[0])

/* One line split in place into fields; the line is a private copy. */
typedef struct ch__line {
  char text[CH__ROW_MAX * 2];
  char *field[CH__MAX_COLUMNS];
  int n;
} ch__line;

/* Copy [p, end) without its line ending and split at commas; 0 when the line is too long. */
static int ch__split(const char *p, const char *end, ch__line *l) {
  size_t len = (size_t)(end - p);
  if (len > 0 && p[len - 1] == '\r') len--;
  if (len >= sizeof l->text) return 0;
  memcpy(l->text, p, len);
  l->text[len] = '\0';
  l->n = 0;
  for (char *f = l->text;;) {
    if (l->n == CH__MAX_COLUMNS) return 0;
    l->field[l->n++] = f;
    char *comma = strchr(f, ',');
    if (!comma) return 1;
    *comma = '\0';
    f = comma + 1;
  }
}

static int ch__parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int ch__parse_field(const ch__column *c, const char *s, ch_simtrace_row *row) {
  char *dst = (char *)row + c->offset;
  long long i;
  switch (c->kind) {
  case CH__INT64:
    if (!ch__parse_int(s, INT64_MIN, INT64_MAX, &i)) return 0;
    *(int64_t *)(void *)dst = (int64_t)i;
    return 1;
  case CH__INT32:
    if (!ch__parse_int(s, INT32_MIN, INT32_MAX, &i)) return 0;
    *(int32_t *)(void *)dst = (int32_t)i;
    return 1;
  case CH__DOUBLE: {
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end || !isfinite(d)) return 0;
    *(double *)(void *)dst = d;
    return 1;
  }
  case CH__BOOL: {
    int b = strcmp(s, "True") == 0 || strcmp(s, "true") == 0 || strcmp(s, "1") == 0;
    if (!b && strcmp(s, "False") != 0 && strcmp(s, "false") != 0 && strcmp(s, "0") != 0) return 0;
    *(int *)(void *)dst = b;
    return 1;
  }
  case CH__STATUS:
    return ch_simtrace_status_parse(s, (int32_t *)(void *)dst) == CH_OK;
  }
  return 0;
}

static const char *ch__kind_name(ch__kind k) {
  switch (k) {
  case CH__INT64:
  case CH__INT32:
    return "an integer";
  case CH__DOUBLE:
    return "a number";
  case CH__BOOL:
    return "True or False";
  default:
    return "an episode status";
  }
}

/* Column index of each known column in the header (-1: absent). */
static int ch__map_header(const ch__line *h, int *where, ch_error *err) {
  for (size_t c = 0; c < CH__NUM_COLUMNS; c++) {
    where[c] = -1;
    for (int i = 0; i < h->n; i++)
      if (strcmp(h->field[i], ch__columns[c].name) == 0) where[c] = i;
    if (where[c] < 0 && ch__columns[c].required)
      return ch_error_set(err, CH_ECORRUPT, "sim-trace line 1: no column '%s' in the header",
                          ch__columns[c].name);
  }
  return CH_OK;
}

static int ch__parse_row(const ch__line *l, const int *where, long line, ch_simtrace_row *row,
                         ch_error *err) {
  memset(row, 0, sizeof *row);
  row->status = CH_EPISODE_IN_PROGRESS;
  for (size_t c = 0; c < CH__NUM_COLUMNS; c++) {
    if (where[c] < 0) continue;
    if (where[c] >= l->n)
      return ch_error_set(err, CH_ECORRUPT, "sim-trace line %ld: %d fields, column %s missing",
                          line, l->n, ch__columns[c].name);
    const char *s = l->field[where[c]];
    if (!ch__parse_field(&ch__columns[c], s, row))
      return ch_error_set(err, CH_ECORRUPT, "sim-trace line %ld, column %s: '%.40s' is not %s",
                          line, ch__columns[c].name, s, ch__kind_name(ch__columns[c].kind));
  }
  return CH_OK;
}

static int ch__push_row(ch_simtrace_row **rows, size_t *n, size_t *cap, const ch_simtrace_row *r) {
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 256;
    ch_simtrace_row *nr = realloc(*rows, c * sizeof *nr);
    if (!nr) return CH_ENOMEM;
    *rows = nr;
    *cap = c;
  }
  (*rows)[(*n)++] = *r;
  return CH_OK;
}

int ch_simtrace_parse(const char *csv, size_t len, ch_simtrace_row **rows, size_t *n,
                      ch_error *err) {
  *rows = NULL;
  *n = 0;
  const char *p = csv, *end = csv + len;
  int where[CH__NUM_COLUMNS];
  size_t cap = 0;
  int rc = CH_OK;
  ch__line *l = malloc(sizeof *l);
  if (!l) return ch_error_set(err, CH_ENOMEM, "sim-trace: out of memory");
  for (long line = 1; rc == CH_OK && p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    int blank = stop == p || (stop == p + 1 && *p == '\r');
    if (!ch__split(p, stop, l))
      rc = ch_error_set(err, CH_ECORRUPT, "sim-trace line %ld: line too long", line);
    else if (line == 1)
      rc = ch__map_header(l, where, err);
    else if (!blank) {
      ch_simtrace_row r;
      rc = ch__parse_row(l, where, line, &r, err);
      if (rc == CH_OK && ch__push_row(rows, n, &cap, &r) != CH_OK)
        rc = ch_error_set(err, CH_ENOMEM, "sim-trace: out of memory at line %ld", line);
    }
    p = nl ? nl + 1 : end;
  }
  if (rc == CH_OK && len == 0) rc = ch_error_set(err, CH_ECORRUPT, "sim-trace: empty file");
  free(l);
  if (rc != CH_OK) {
    free(*rows);
    *rows = NULL;
    *n = 0;
  }
  return rc;
}
