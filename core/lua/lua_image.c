/* lua_image.c -- camera frames as Lua values: size, pixels, raw bytes, saving as PNG. */
#include "lua_internal.h"

#include <cairo.h>
#include <string.h>

typedef struct ch__image {
  uint32_t width, height, channels;
  uint8_t data[]; /* channels planes of height rows of width bytes */
} ch__image;

void ch_lua_push_image(lua_State *L, uint32_t width, uint32_t height, uint32_t channels,
                       const uint8_t *data) {
  size_t n = (size_t)width * height * channels;
  ch__image *im = lua_newuserdatauv(L, sizeof *im + n, 0);
  im->width = width;
  im->height = height;
  im->channels = channels;
  memcpy(im->data, data, n);
  luaL_setmetatable(L, CH_LUA_IMAGE);
}

const uint8_t *ch_lua_image_data(lua_State *L, int idx, uint32_t *width, uint32_t *height,
                                 uint32_t *channels) {
  const ch__image *im = luaL_testudata(L, idx, CH_LUA_IMAGE);
  if (!im) return NULL;
  *width = im->width;
  *height = im->height;
  *channels = im->channels;
  return im->data;
}

static ch__image *ch__check(lua_State *L) {
  return luaL_checkudata(L, 1, CH_LUA_IMAGE);
}

static int ch__tostring(lua_State *L) {
  const ch__image *im = ch__check(L);
  lua_pushfstring(L, "<chicane.image %dx%d, %d channel%s>", (int)im->width, (int)im->height,
                  (int)im->channels, im->channels == 1 ? "" : "s");
  return 1;
}

static const char *const ch__fields[] = {"width", "height", "channels", "bytes", NULL};

static int ch__get(lua_State *L, const char *key) {
  const ch__image *im = ch__check(L);
  if (strcmp(key, "width") == 0)
    lua_pushinteger(L, im->width);
  else if (strcmp(key, "height") == 0)
    lua_pushinteger(L, im->height);
  else if (strcmp(key, "channels") == 0)
    lua_pushinteger(L, im->channels);
  else if (strcmp(key, "bytes") == 0)
    lua_pushlstring(L, (const char *)im->data, (size_t)im->width * im->height * im->channels);
  else
    return 0;
  return 1;
}

/* image:at(x, y[, channel]) -> 0..255; x, y and channel from 1, y = 1 the top row */
static int ch__at(lua_State *L) {
  const ch__image *im = ch__check(L);
  lua_Integer x = luaL_checkinteger(L, 2), y = luaL_checkinteger(L, 3);
  lua_Integer c = luaL_optinteger(L, 4, 1);
  luaL_argcheck(L, x >= 1 && x <= im->width, 2, "column outside the image");
  luaL_argcheck(L, y >= 1 && y <= im->height, 3, "row outside the image");
  luaL_argcheck(L, c >= 1 && c <= im->channels, 4, "no such channel");
  size_t i = ((size_t)(c - 1) * im->height + (size_t)(y - 1)) * im->width + (size_t)(x - 1);
  lua_pushinteger(L, im->data[i]);
  return 1;
}

/* image:mean() -> the mean pixel value, 0..255 */
static int ch__mean(lua_State *L) {
  const ch__image *im = ch__check(L);
  size_t n = (size_t)im->width * im->height * im->channels;
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += im->data[i];
  lua_pushnumber(L, n ? sum / (double)n : 0.0);
  return 1;
}

/* image:save(path): a grayscale PNG, the channels stacked top to bottom */
static int ch__save(lua_State *L) {
  const ch__image *im = ch__check(L);
  const char *path = luaL_checkstring(L, 2);
  int w = (int)im->width, h = (int)(im->height * im->channels);
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_status_t st = cairo_surface_status(s);
  if (st == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(s);
    unsigned char *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
      uint32_t *row = (uint32_t *)(void *)(px + (size_t)y * (size_t)stride);
      for (int x = 0; x < w; x++) {
        uint32_t g = im->data[(size_t)y * (size_t)w + (size_t)x];
        row[x] = g << 16 | g << 8 | g;
      }
    }
    cairo_surface_mark_dirty(s);
    st = cairo_surface_write_to_png(s, path);
  }
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS)
    return luaL_error(L, "image:save: %s: %s", path, cairo_status_to_string(st));
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg ch__methods[] = {
    {"at", ch__at}, {"mean", ch__mean}, {"save", ch__save}, {NULL, NULL}};

/* No __gc: the pixels live in the userdata itself. */
static const ch_lua_class ch__class = {CH_LUA_IMAGE, ch__methods, ch__fields,
                                       ch__get,      NULL,        ch__tostring};

void ch_lua_open_image(lua_State *L) {
  ch_lua_class_register(L, &ch__class);
}
