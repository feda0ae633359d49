/* render.c -- draws what a car's sensors see, or a map of its track, into a PNG with cairo. */
#include "render.h"

#include "loader.h"
#include "paths.h"
#include "runtime.h"
#include "track.h"

#include <cairo.h>
#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CH__PI         3.14159265358979323846
#define CH__LIDAR_VIEW 8.0  /* metres across the lidar picture */
#define CH__LIDAR_PPM  50.0 /* its pixels per metre */
#define CH__MAP_PPM    100.0
#define CH__MAP_W      1600
#define CH__MAP_H      1200

/* Footprints of what the env reports (sim2d's defaults), metres: length along, width across. */
#define CH__CAR_LENGTH 0.324
#define CH__CAR_WIDTH  0.196
#define CH__BOX_LENGTH 0.5
#define CH__BOX_WIDTH  0.4

void ch_render_defaults(ch_render_options *o) {
  memset(o, 0, sizeof *o);
  o->sensor = "camera";
  o->race_type = "time_trial";
  o->seed = 1;
  o->scale = 4;
}

/* Everything one picture needs: the env after the reset, and the track for drawing. */
typedef struct ch__scene {
  ch_plugin *plugin;
  ch_env env;
  ch_track *track;
  float *obs;
  uint8_t *image;
  ch_env_params par;
  double lidar_range; /* metres that a lidar reading of 1 stands for */
} ch__scene;

static void ch__scene_free(ch__scene *s) {
  ch_env_destroy(&s->env);
  ch_plugin_close(s->plugin);
  ch_track_free(s->track);
  free(s->obs);
  free(s->image);
}

static int ch__check(const ch_render_options *o, ch_error *err) {
  static const char *const sensors[] = {"camera", "stereo", "lidar", "top", NULL};
  const char *const *s = sensors;
  if (!o->track || !o->track[0]) return ch_error_set(err, CH_EINVAL, "render: no track given");
  while (*s && (!o->sensor || strcmp(*s, o->sensor) != 0)) s++;
  if (!*s)
    return ch_error_set(err, CH_EINVAL,
                        "render: sensor '%s' is not one of camera, stereo, lidar, top",
                        o->sensor ? o->sensor : "(null)");
  if (!(o->progress >= 0 && o->progress <= 100))
    return ch_error_set(err, CH_EINVAL, "render: progress %g%% is outside 0..100", o->progress);
  if (!isfinite(o->offset))
    return ch_error_set(err, CH_EINVAL, "render: offset %g m is not a number", o->offset);
  if (!(o->heading_offset >= -180 && o->heading_offset <= 180))
    return ch_error_set(err, CH_EINVAL, "render: heading offset %g degrees is outside -180..180",
                        o->heading_offset);
  if (o->scale < 1 || o->scale > 16)
    return ch_error_set(err, CH_EINVAL, "render: scale %d is outside 1..16", o->scale);
  return CH_OK;
}

/* Add the members of the JSON object text to cfg, replacing keys it already has. */
static int ch__merge_extra(cJSON *cfg, const char *text, ch_error *err) {
  cJSON *extra = cJSON_Parse(text);
  if (!cJSON_IsObject(extra)) {
    cJSON_Delete(extra);
    return ch_error_set(err, CH_EINVAL, "render: extra env config is not a JSON object: %.60s",
                        text);
  }
  while (extra->child) {
    cJSON *m = cJSON_DetachItemViaPointer(extra, extra->child);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, m->string);
    cJSON_AddItemToObject(cfg, m->string, m);
  }
  cJSON_Delete(extra);
  return CH_OK;
}

/* The env config for the view; the lidar range is read back from it. */
static char *ch__env_config(const ch_render_options *o, const char *track_path, double *range,
                            ch_error *err) {
  const char *sensor = strcmp(o->sensor, "top") == 0 ? "state" : o->sensor;
  cJSON *cfg = cJSON_CreateObject();
  cJSON_AddStringToObject(cfg, "track", track_path);
  cJSON_AddNumberToObject(cfg, "num_cars", 1);
  cJSON_AddItemToObject(cfg, "sensors", cJSON_CreateStringArray(&sensor, 1));
  cJSON_AddStringToObject(cfg, "race_type", o->race_type ? o->race_type : "time_trial");
  if (o->heading_offset != 0)
    cJSON_AddNumberToObject(cfg, "start_heading_offset", o->heading_offset);
  if (o->env_extra && ch__merge_extra(cfg, o->env_extra, err) != CH_OK) {
    cJSON_Delete(cfg);
    return NULL;
  }
  const cJSON *lidar = cJSON_GetObjectItemCaseSensitive(cfg, "lidar");
  const cJSON *max = cJSON_GetObjectItemCaseSensitive(lidar, "max_range");
  *range = cJSON_IsNumber(max) ? max->valuedouble : 12.0;
  char *json = cJSON_PrintUnformatted(cfg);
  cJSON_Delete(cfg);
  if (!json) ch_error_set(err, CH_ENOMEM, "render: out of memory");
  return json;
}

static int ch__scene_open(const ch_render_options *o, ch__scene *s, ch_error *err) {
  char path[CH_PATH_MAX];
  memset(s, 0, sizeof *s);
  int rc = ch_resolve_track(o->track, path, sizeof path, err);
  if (rc == CH_OK)
    rc = ch_plugin_find(CH_PLUGIN_ENV, o->env_plugin ? o->env_plugin : "sim2d", &s->plugin, err);
  if (rc != CH_OK) return rc;
  char *json = ch__env_config(o, path, &s->lidar_range, err);
  if (!json) return err ? err->code : CH_ENOMEM;
  rc = ch_env_create(s->plugin, json, &s->env, err);
  free(json);
  if (rc == CH_OK) rc = ch_track_load(path, &s->track, err);
  if (rc != CH_OK) return rc;
  const ch_env_spec *sp = &s->env.spec;
  s->obs = calloc((size_t)sp->obs_size + 1, sizeof(float));
  s->image = calloc((size_t)sp->image_width * sp->image_height * sp->image_channels + 1, 1);
  if (!s->obs || !s->image) return ch_error_set(err, CH_ENOMEM, "render: out of memory");
  ch_env_reset start = {o->progress / 100, o->offset, o->reversed ? 1 : 0, 0, o->seed};
  return s->env.vt->reset(s->env.h, 0, &start, s->obs, s->image, &s->par, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Camera images                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Every plane of the image side by side, each pixel a scale x scale block. */
static cairo_surface_t *ch__camera(const ch__scene *s, int scale) {
  const ch_env_spec *sp = &s->env.spec;
  int w = (int)sp->image_width * scale, h = (int)sp->image_height * scale;
  int planes = (int)sp->image_channels, gap = 4 * scale;
  cairo_surface_t *surf =
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, planes * w + (planes - 1) * gap, h);
  if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) return surf;
  unsigned char *data = cairo_image_surface_get_data(surf);
  int stride = cairo_image_surface_get_stride(surf);
  memset(data, 0x40, (size_t)stride * (size_t)h);
  for (int p = 0; p < planes; p++) {
    const uint8_t *plane = s->image + (size_t)p * sp->image_width * sp->image_height;
    for (int y = 0; y < h; y++) {
      uint32_t *row = (uint32_t *)(void *)(data + (size_t)y * (size_t)stride) + p * (w + gap);
      for (int x = 0; x < w; x++) {
        uint32_t g = plane[(size_t)(y / scale) * sp->image_width + (size_t)(x / scale)];
        row[x] = g << 16 | g << 8 | g;
      }
    }
  }
  cairo_surface_mark_dirty(surf);
  return surf;
}

/* ------------------------------------------------------------------------------------------ */
/* Top-down pictures                                                                           */
/* ------------------------------------------------------------------------------------------ */

static void ch__polyline(cairo_t *cr, const double *x, const double *y, int n, int closed) {
  cairo_move_to(cr, x[0], y[0]);
  for (int i = 1; i < n; i++) cairo_line_to(cr, x[i], y[i]);
  if (closed) cairo_close_path(cr);
}

/* The track in world coordinates (the caller's transform): grass, road, lines, start line. */
static void ch__draw_track(cairo_t *cr, const ch_track *t) {
  cairo_set_source_rgb(cr, 0.36, 0.52, 0.32);
  cairo_paint(cr);
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
  if (t->is_loop) {
    ch__polyline(cr, t->lx, t->ly, t->n, 1);
    ch__polyline(cr, t->rx, t->ry, t->n, 1);
  } else {
    ch__polyline(cr, t->lx, t->ly, t->n, 0);
    for (int i = t->n - 1; i >= 0; i--) cairo_line_to(cr, t->rx[i], t->ry[i]);
    cairo_close_path(cr);
  }
  cairo_set_source_rgb(cr, 0.19, 0.19, 0.2);
  cairo_fill(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, 0.05);
  ch__polyline(cr, t->lx, t->ly, t->n, t->is_loop);
  cairo_stroke(cr);
  ch__polyline(cr, t->rx, t->ry, t->n, t->is_loop);
  cairo_stroke(cr);
  cairo_move_to(cr, t->lx[0], t->ly[0]);
  cairo_line_to(cr, t->rx[0], t->ry[0]);
  cairo_stroke(cr);
  static const double dash[2] = {0.15, 0.15};
  cairo_set_dash(cr, dash, 2, 0);
  cairo_set_source_rgb(cr, 0.95, 0.8, 0.15);
  cairo_set_line_width(cr, 0.04);
  ch__polyline(cr, t->cx, t->cy, t->n, t->is_loop);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
}

/* A footprint length x width centred at (x, y) turned heading degrees, with a dark outline. */
static void ch__footprint(cairo_t *cr, double x, double y, double heading, double length,
                          double width, double r, double g, double b) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, heading * CH__PI / 180);
  cairo_rectangle(cr, -0.5 * length, -0.5 * width, length, width);
  cairo_set_source_rgb(cr, r, g, b);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
  cairo_set_line_width(cr, 0.015);
  cairo_stroke(cr);
  /* The front: a pale wedge, so the heading shows. */
  cairo_move_to(cr, 0.5 * length, 0);
  cairo_line_to(cr, 0.5 * length - 0.4 * width, 0.3 * width);
  cairo_line_to(cr, 0.5 * length - 0.4 * width, -0.3 * width);
  cairo_close_path(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_fill(cr);
  cairo_restore(cr);
}

static void ch__draw_objects_and_car(cairo_t *cr, const ch_env_params *p) {
  for (uint32_t k = 0; k < p->num_objects; k++) {
    const ch_env_object *o = &p->objects[k];
    if (o->kind == CH_OBJECT_BOX)
      ch__footprint(cr, o->x, o->y, o->heading, CH__BOX_LENGTH, CH__BOX_WIDTH, 0.86, 0.76, 0.55);
    else
      ch__footprint(cr, o->x, o->y, o->heading, CH__CAR_LENGTH, CH__CAR_WIDTH, 0.85, 0.15, 0.12);
  }
  ch__footprint(cr, p->x, p->y, p->heading, CH__CAR_LENGTH, CH__CAR_WIDTH, 0.15, 0.35, 0.9);
}

/* World to pixels: scale ppm, world y up, world point (cx, cy) at pixel (px, py). */
static void ch__world(cairo_t *cr, double ppm, double cx, double cy, double px, double py) {
  cairo_translate(cr, px, py);
  cairo_scale(cr, ppm, -ppm);
  cairo_translate(cr, -cx, -cy);
}

static cairo_surface_t *ch__top(const ch__scene *s) {
  const ch_track *t = s->track;
  double lo_x = HUGE_VAL, hi_x = -HUGE_VAL, lo_y = HUGE_VAL, hi_y = -HUGE_VAL;
  const double *xs[2] = {t->lx, t->rx}, *ys[2] = {t->ly, t->ry};
  for (int a = 0; a < 2; a++)
    for (int i = 0; i < t->n; i++) {
      lo_x = fmin(lo_x, xs[a][i]), hi_x = fmax(hi_x, xs[a][i]);
      lo_y = fmin(lo_y, ys[a][i]), hi_y = fmax(hi_y, ys[a][i]);
    }
  double wm = hi_x - lo_x + 1, hm = hi_y - lo_y + 1;
  double ppm = fmin(CH__MAP_PPM, fmin(CH__MAP_W / wm, CH__MAP_H / hm));
  int w = (int)ceil(wm * ppm), h = (int)ceil(hm * ppm);
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t *cr = cairo_create(surf);
  ch__world(cr, ppm, 0.5 * (lo_x + hi_x), 0.5 * (lo_y + hi_y), 0.5 * w, 0.5 * h);
  ch__draw_track(cr, t);
  ch__draw_objects_and_car(cr, &s->par);
  cairo_destroy(cr);
  return surf;
}

static cairo_surface_t *ch__lidar(const ch__scene *s) {
  int side = (int)(CH__LIDAR_VIEW * CH__LIDAR_PPM);
  const ch_env_params *p = &s->par;
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, side, side);
  cairo_t *cr = cairo_create(surf);
  ch__world(cr, CH__LIDAR_PPM, p->x, p->y, 0.5 * side, 0.5 * side);
  ch__draw_track(cr, s->track);
  ch__draw_objects_and_car(cr, p);
  /* The lidar's 64 readings end the observation (after the state vector, if any). */
  uint32_t n = s->env.spec.obs_size;
  const float *lidar = n >= 64 ? s->obs + (n - 64) : NULL;
  cairo_set_line_width(cr, 0.012);
  for (int k = 0; lidar && k < 64; k++) {
    double a = (p->heading + (-150 + 300.0 * k / 63)) * CH__PI / 180, v = lidar[k];
    double d = v < 1 ? v * s->lidar_range : CH__LIDAR_VIEW;
    cairo_move_to(cr, p->x, p->y);
    cairo_line_to(cr, p->x + d * cos(a), p->y + d * sin(a));
    if (v < 1)
      cairo_set_source_rgb(cr, 0.95, 0.1, 0.1);
    else
      cairo_set_source_rgba(cr, 0.85, 0.85, 0.85, 0.45);
    cairo_stroke(cr);
    if (v < 1) {
      cairo_arc(cr, p->x + d * cos(a), p->y + d * sin(a), 0.03, 0, 2 * CH__PI);
      cairo_set_source_rgb(cr, 0.95, 0.1, 0.1);
      cairo_fill(cr);
    }
  }
  cairo_destroy(cr);
  return surf;
}

int ch_render_png(const ch_render_options *o, const char *path, ch_error *err) {
  int rc = ch__check(o, err);
  if (rc != CH_OK) return rc;
  ch__scene s;
  rc = ch__scene_open(o, &s, err);
  if (rc == CH_OK && (strcmp(o->sensor, "camera") == 0 || strcmp(o->sensor, "stereo") == 0) &&
      s.env.spec.image_channels == 0)
    rc = ch_error_set(err, CH_EINVAL, "render: the env plugin gives no image for '%s'", o->sensor);
  if (rc != CH_OK) {
    ch__scene_free(&s);
    return rc;
  }
  cairo_surface_t *surf = strcmp(o->sensor, "top") == 0     ? ch__top(&s)
                          : strcmp(o->sensor, "lidar") == 0 ? ch__lidar(&s)
                                                            : ch__camera(&s, o->scale);
  cairo_status_t st = cairo_surface_status(surf);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(surf, path);
  cairo_surface_destroy(surf);
  ch__scene_free(&s);
  if (st != CAIRO_STATUS_SUCCESS)
    return ch_error_set(err, CH_EIO, "render: %s: %s", path, cairo_status_to_string(st));
  return CH_OK;
}
