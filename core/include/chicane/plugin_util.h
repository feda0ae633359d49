/* plugin_util.h -- small header-only helpers that plugins and the core share (error filling). */
#ifndef CHICANE_PLUGIN_UTIL_H
#define CHICANE_PLUGIN_UTIL_H

#include <chicane/plugin.h>
#include <stdarg.h>
#include <stdio.h>

/* Fill err (if not NULL) with code and a printf-style message; return code, so that a
** failure path reads `return ch_error_set(err, CH_EINVAL, "...", ...);`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int
ch_error_set(ch_error *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Reset err to "no error". */
static inline void ch_error_clear(ch_error *err) {
  if (err) {
    err->code = CH_OK;
    err->message[0] = '\0';
  }
}

#endif
