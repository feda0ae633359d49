/* write.c -- writes a track as .track text that reads back to the same geometry. */
#include "track.h"
#include "track_impl.h"

#include <chicane/plugin_util.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ch__buf {
  char *p;
  size_t len, cap;
  int failed;
} ch__buf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
ch__put(ch__buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = b->failed ? 0 : vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (b->failed || n < 0) {
      b->failed = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = 2 * b->cap + (size_t)n + 1;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
}

/* Each line of comment as a '#' line. */
static void ch__comment(ch__buf *b, const char *comment) {
  for (const char *c = comment; c && *c;) {
    const char *eol = strchr(c, '\n');
    int len = eol ? (int)(eol - c) : (int)strlen(c);
    ch__put(b, "#%s%.*s\n", len ? " " : "", len, c);
    c += len + (eol != NULL);
  }
}

char *ch_track_format(const ch_track *t, const char *comment) {
  ch__buf b = {malloc(4096), 0, 4096, 0};
  if (!b.p) return NULL;
  b.p[0] = '\0';
  ch__comment(&b, comment);
  ch__put(&b, "chicane-track 1\nname %s\nloop %s\n", t->name, t->is_loop ? "yes" : "no");
  ch__put(&b, "# x y left-x left-y right-x right-y (metres), in driving order\n");
  /* 17 significant digits print every double exactly, so reading gives the same numbers. */
  for (int i = 0; i < t->n; i++)
    ch__put(&b, "%.17g %.17g %.17g %.17g %.17g %.17g\n", t->cx[i], t->cy[i], t->lx[i], t->ly[i],
            t->rx[i], t->ry[i]);
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* The whole text to f, flushed to the disk; 0 or an errno. */
static int ch__write_all(FILE *f, const char *text) {
  size_t len = strlen(text);
  errno = 0;
  if (fwrite(text, 1, len, f) != len) return errno ? errno : EIO;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) return errno ? errno : EIO;
  return 0;
}

int ch_track_write(const ch_track *t, const char *path, ch_error *err) {
  char comment[256];
  snprintf(comment, sizeof comment,
           "%s.track -- written by chicane.\ncentre length %.3f m, median width %.3f m, %d "
           "points, %s.",
           t->name, t->length, t->width, t->n, t->is_loop ? "a loop" : "not a loop");
  return ch_track_write_comment(t, path, comment, err);
}

int ch_track_write_comment(const ch_track *t, const char *path, const char *comment,
                           ch_error *err) {
  char *text = ch_track_format(t, comment);
  if (!text) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    free(text);
    return ch_error_set(err, e == ENOENT ? CH_ENOTFOUND : CH_EIO, "%s: %s", tmp, strerror(e));
  }
  int e = ch__write_all(f, text);
  free(text);
  if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
  /* Renaming only a complete file means a reader never sees half a track. */
  if (!e && rename(tmp, path) != 0) e = errno;
  if (e) {
    remove(tmp);
    return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(e));
  }
  return CH_OK;
}
