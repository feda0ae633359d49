/* lapgif.c -- an animated GIF of one lap from above: cairo frames, a fixed palette, giflib. */
#include "viz.h"
#include "viz_draw.h"

#include <chicane/plugin_util.h>
#include <errno.h>
#include <fcntl.h>
#include <gif_lib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CH__CAR_LENGTH 0.324 /* DeepRacer footprint, metres */
#define CH__CAR_WIDTH  0.196
#define CH__GREYS      40  /* palette: a 6x6x6 colour cube, then this many greys */
#define CH__MAX_HOLD   1.0 /* seconds a frame is held at most (a penalty would freeze it) */

/* ---- palette --------------------------------------------------------------------------- */

static ColorMapObject *ch__palette(void) {
  ColorMapObject *map = GifMakeMapObject(256, NULL);
  if (!map) return NULL;
  for (int i = 0; i < 216; i++) {
    map->Colors[i].Red = (GifByteType)(51 * (i / 36));
    map->Colors[i].Green = (GifByteType)(51 * (i / 6 % 6));
    map->Colors[i].Blue = (GifByteType)(51 * (i % 6));
  }
  for (int i = 0; i < CH__GREYS; i++) {
    GifByteType v = (GifByteType)lround(i * 255.0 / (CH__GREYS - 1));
    map->Colors[216 + i].Red = map->Colors[216 + i].Green = map->Colors[216 + i].Blue = v;
  }
  return map;
}

/* Near-greys (the track, the text) go to the fine grey ramp, colours to the cube. */
static GifByteType ch__quantise(uint32_t argb) {
  int r = (argb >> 16) & 0xff, g = (argb >> 8) & 0xff, b = argb & 0xff;
  int hi = r > g ? (r > b ? r : b) : (g > b ? g : b),
      lo = r < g ? (r < b ? r : b) : (g < b ? g : b);
  if (hi - lo <= 24) return (GifByteType)(216 + ((r + g + b) * (CH__GREYS - 1) + 382) / 765);
  return (GifByteType)(((r * 5 + 127) / 255) * 36 + ((g * 5 + 127) / 255) * 6 +
                       (b * 5 + 127) / 255);
}

/* ---- drawing a frame ------------------------------------------------------------------- */

/* A rectangle of length x width metres centred on (x, y), turned heading degrees. */
static void ch__box(cairo_t *cr, const ch_viz_view *v, double x, double y, double heading,
                    double length, double width) {
  double h = heading * M_PI / 180, c = cos(h), s = sin(h);
  const double corner[4][2] = {{1, 1}, {1, -1}, {-1, -1}, {-1, 1}};
  for (int k = 0; k < 4; k++) {
    double a = corner[k][0] * length / 2, b = corner[k][1] * width / 2;
    double px = ch_viz_px(v, x + a * c - b * s), py = ch_viz_py(v, y + a * s + b * c);
    if (k == 0)
      cairo_move_to(cr, px, py);
    else
      cairo_line_to(cr, px, py);
  }
  cairo_close_path(cr);
}

static void ch__car(cairo_t *cr, const ch_viz_view *v, const ch_simtrace_row *r) {
  /* At least a few pixels, so that a small picture of a big track still shows the car. */
  double grow = fmax(1, 7 / (CH__CAR_LENGTH * v->scale));
  ch__box(cr, v, r->x, r->y, r->yaw_deg, CH__CAR_LENGTH * grow, CH__CAR_WIDTH * grow);
  ch_viz_rgb(cr, 0xff9f1c);
  cairo_fill_preserve(cr);
  cairo_set_line_width(cr, 1.2);
  ch_viz_rgb(cr, 0x101010);
  cairo_stroke(cr);
  double h = r->yaw_deg * M_PI / 180, nose = CH__CAR_LENGTH * grow * 0.35;
  cairo_arc(cr, ch_viz_px(v, r->x + nose * cos(h)), ch_viz_py(v, r->y + nose * sin(h)),
            fmax(1.5, 0.03 * grow * v->scale), 0, 2 * M_PI);
  cairo_fill(cr);
}

static void ch__objects(cairo_t *cr, const ch_viz_view *v, const ch_viz_gif *o, size_t row) {
  if (!o || !o->objects || !o->offset) return;
  for (size_t k = o->offset[row]; k < o->offset[row + 1]; k++) {
    const ch_viz_object *b = &o->objects[k];
    ch__box(cr, v, b->x, b->y, b->heading_deg, b->length, b->width);
    ch_viz_rgb(cr, b->kind == CH_OBJECT_BOT_CAR ? 0x3a86ff : 0xe0e0e0);
    cairo_fill(cr);
  }
}

static void ch__trail(cairo_t *cr, const ch_viz_view *v, const ch_simtrace_row *rows, size_t upto,
                      const double *speed, double lo, double hi) {
  cairo_set_line_width(cr, fmax(2, 0.035 * v->scale));
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t i = 1; i <= upto; i++) {
    const ch_simtrace_row *p = &rows[i - 1];
    if (p->status != CH_EPISODE_IN_PROGRESS && p->status != CH_SIMTRACE_PREPARE) continue;
    ch_viz_rgb(cr, ch_viz_speed_rgb(speed[i], lo, hi));
    cairo_move_to(cr, ch_viz_px(v, p->x), ch_viz_py(v, p->y));
    cairo_line_to(cr, ch_viz_px(v, rows[i].x), ch_viz_py(v, rows[i].y));
    cairo_stroke(cr);
  }
}

static void ch__clock(cairo_t *cr, const ch_viz_view *v, const ch_simtrace_row *rows, size_t i,
                      const int *penalties, const char *title) {
  char text[128];
  int n = snprintf(text, sizeof text, "%6.2f s   %5.1f%%", rows[i].tstamp - rows[0].tstamp,
                   rows[i].progress);
  if (penalties[0]) n += snprintf(text + n, sizeof text - n, "   off-track %d", penalties[0]);
  if (penalties[1]) snprintf(text + n, sizeof text - n, "   crashes %d", penalties[1]);
  ch_viz_text(cr, 10, 17, text, 15, 0xffffff, 0.0, 0.5);
  if (title) ch_viz_text(cr, v->width - 10, 17, title, 13, 0xbbbbbb, 1.0, 0.5);
}

/* ---- the GIF --------------------------------------------------------------------------- */

typedef struct ch__gif {
  GifFileType *gif;
  int w, h;
  GifByteType *cur, *prev;
  int frames;
  double shown; /* seconds of animation emitted so far */
  int shown_cs; /* the same in the GIF's centiseconds */
} ch__gif;

static int ch__gif_error(const char *path, int code, ch_error *err) {
  const char *why = GifErrorString(code);
  return ch_error_set(err, CH_EIO, "%s: giflib: %s", path, why ? why : "unknown error");
}

static int ch__gif_open(ch__gif *g, const char *path, int w, int h, ch_error *err) {
  int code = 0;
  memset(g, 0, sizeof g[0]);
  g->w = w;
  g->h = h;
  g->cur = malloc((size_t)w * h);
  g->prev = malloc((size_t)w * h);
  if (!g->cur || !g->prev) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", path);
  /* Opened here rather than by giflib, which would make the file private (0600). */
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
  if (!(g->gif = EGifOpenFileHandle(fd, &code))) {
    close(fd);
    return ch__gif_error(path, code, err);
  }
  EGifSetGifVersion(g->gif, true);
  ColorMapObject *map = ch__palette();
  int ok = map && EGifPutScreenDesc(g->gif, w, h, 8, 0, map) == GIF_OK;
  GifFreeMapObject(map);
  /* NETSCAPE2.0: loop forever. */
  static const GifByteType loop[] = {1, 0, 0};
  ok = ok && EGifPutExtensionLeader(g->gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
       EGifPutExtensionBlock(g->gif, 11, "NETSCAPE2.0") == GIF_OK &&
       EGifPutExtensionBlock(g->gif, 3, loop) == GIF_OK &&
       EGifPutExtensionTrailer(g->gif) == GIF_OK;
  return ok ? CH_OK : ch__gif_error(path, g->gif->Error, err);
}

static void ch__quantise_surface(cairo_surface_t *sf, GifByteType *out, int w, int h) {
  cairo_surface_flush(sf);
  const unsigned char *data = cairo_image_surface_get_data(sf);
  int stride = cairo_image_surface_get_stride(sf);
  for (int y = 0; y < h; y++) {
    const uint32_t *row = (const uint32_t *)(const void *)(data + (size_t)y * stride);
    for (int x = 0; x < w; x++) out[(size_t)y * w + x] = ch__quantise(row[x]);
  }
}

/* The rectangle where cur differs from prev (the whole frame for the first). */
static void ch__changed(const ch__gif *g, int *x0, int *y0, int *x1, int *y1) {
  *x0 = g->w;
  *y0 = g->h;
  *x1 = *y1 = -1;
  for (int y = 0; y < g->h; y++)
    for (int x = 0; x < g->w; x++)
      if (!g->frames || g->cur[(size_t)y * g->w + x] != g->prev[(size_t)y * g->w + x]) {
        if (x < *x0) *x0 = x;
        if (x > *x1) *x1 = x;
        if (y < *y0) *y0 = y;
        if (y > *y1) *y1 = y;
      }
  if (*x1 < 0) *x0 = *y0 = *x1 = *y1 = 0; /* unchanged: a 1x1 frame still carries the delay */
}

static int ch__gif_frame(ch__gif *g, double hold, const char *path, ch_error *err) {
  g->shown += hold;
  int cs = (int)lround(g->shown * 100), delay = cs - g->shown_cs;
  if (delay < 2) delay = 2; /* viewers stretch shorter delays to 0.1 s anyway */
  g->shown_cs += delay;
  GraphicsControlBlock gcb = {DISPOSE_DO_NOT, false, delay, NO_TRANSPARENT_COLOR};
  GifByteType ext[4];
  size_t n = EGifGCBToExtension(&gcb, ext);
  int x0, y0, x1, y1;
  ch__changed(g, &x0, &y0, &x1, &y1);
  int ok = EGifPutExtension(g->gif, GRAPHICS_EXT_FUNC_CODE, (int)n, ext) == GIF_OK &&
           EGifPutImageDesc(g->gif, x0, y0, x1 - x0 + 1, y1 - y0 + 1, false, NULL) == GIF_OK;
  for (int y = y0; ok && y <= y1; y++)
    ok = EGifPutLine(g->gif, g->cur + (size_t)y * g->w + x0, x1 - x0 + 1) == GIF_OK;
  GifByteType *t = g->prev;
  g->prev = g->cur;
  g->cur = t;
  g->frames++;
  return ok ? CH_OK : ch__gif_error(path, g->gif->Error, err);
}

static int ch__gif_close(ch__gif *g, const char *path, int rc, ch_error *err) {
  int code = 0;
  if (g->gif && EGifCloseFile(g->gif, &code) != GIF_OK && rc == CH_OK)
    rc = ch__gif_error(path, code, err);
  free(g->cur);
  free(g->prev);
  return rc;
}

/* Everything a frame needs. */
typedef struct ch__lap {
  const ch_simtrace_row *rows;
  size_t n;
  const ch_viz_gif *o;
  ch_viz_view v;
  cairo_surface_t *bg, *frame;
  double *speed, lo, hi;
} ch__lap;

static void ch__draw_frame(ch__lap *l, size_t i, const int *penalties) {
  cairo_t *cr = cairo_create(l->frame);
  cairo_set_source_surface(cr, l->bg, 0, 0);
  cairo_paint(cr);
  ch__trail(cr, &l->v, l->rows, i, l->speed, l->lo, l->hi);
  ch__objects(cr, &l->v, l->o, i);
  ch__car(cr, &l->v, &l->rows[i]);
  ch__clock(cr, &l->v, l->rows, i, penalties, l->o ? l->o->title : NULL);
  cairo_destroy(cr);
}

static int ch__lap_setup(ch__lap *l, const ch_track *t, ch_error *err) {
  ch_viz_view_fit(&l->v, t, l->o && l->o->width > 0 ? l->o->width : 480, 12, 34, 0);
  l->speed = malloc(sizeof(double) * (l->n + 1));
  if (!l->speed) return ch_error_set(err, CH_ENOMEM, "lap GIF: out of memory");
  ch_viz_trace_speeds(l->rows, l->n, l->speed);
  l->lo = 0;
  l->hi = 4; /* the car's whole range, so that GIFs of different models compare */
  l->bg = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, l->v.width, l->v.height);
  l->frame = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, l->v.width, l->v.height);
  cairo_t *cr = cairo_create(l->bg);
  ch_viz_draw_track(cr, &l->v, t);
  cairo_destroy(cr);
  if (cairo_surface_status(l->bg) || cairo_surface_status(l->frame))
    return ch_error_set(err, CH_ENOMEM, "lap GIF: cannot make a %dx%d picture", l->v.width,
                        l->v.height);
  return CH_OK;
}

int ch_viz_lap_gif(const ch_track *t, const ch_simtrace_row *rows, size_t n, const ch_viz_gif *o,
                   const char *path, ch_error *err) {
  if (n == 0) return ch_error_set(err, CH_EINVAL, "%s: no sim-trace rows to animate", path);
  ch__lap l = {rows, n, o, {0, 0, 0, 0, 0}, NULL, NULL, NULL, 0, 0};
  ch__gif g;
  memset(&g, 0, sizeof g);
  int rc = ch__lap_setup(&l, t, err);
  if (rc == CH_OK) rc = ch__gif_open(&g, path, l.v.width, l.v.height, err);
  size_t every = o && o->every > 0 ? (size_t)o->every : 2, counted = 0;
  int penalties[2] = {0, 0}; /* off-track, crashed */
  for (size_t i = 0; rc == CH_OK;) {
    /* Every `every`-th row, and always the last one (the finish). */
    size_t next = i + 1 >= n ? n : (i + every < n ? i + every : n - 1);
    for (; counted <= i; counted++) {
      penalties[0] += rows[counted].status == CH_EPISODE_OFF_TRACK;
      penalties[1] += rows[counted].status == CH_EPISODE_CRASHED;
    }
    ch__draw_frame(&l, i, penalties);
    ch__quantise_surface(l.frame, g.cur, g.w, g.h);
    double hold = next < n ? fmin(CH__MAX_HOLD, rows[next].tstamp - rows[i].tstamp) : 2.0;
    rc = ch__gif_frame(&g, hold, path, err);
    if (next >= n) break;
    i = next;
  }
  rc = ch__gif_close(&g, path, rc, err);
  if (l.bg) cairo_surface_destroy(l.bg);
  if (l.frame) cairo_surface_destroy(l.frame);
  free(l.speed);
  return rc;
}
