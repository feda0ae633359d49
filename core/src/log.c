/* log.c -- the core's logger (stderr, one line per message, thread-safe) and the host API. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int log_level = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int ch__level_from_env(void) {
  const char *v = getenv("CHICANE_LOG");
  if (!v) return CH_LOG_INFO;
  if (strcmp(v, "debug") == 0) return CH_LOG_DEBUG;
  if (strcmp(v, "warn") == 0) return CH_LOG_WARN;
  if (strcmp(v, "error") == 0) return CH_LOG_ERROR;
  return CH_LOG_INFO;
}

void ch_log_set_level(int level) {
  log_level = level;
}

int ch_log_threshold(void) {
  if (log_level < 0) log_level = ch__level_from_env();
  return log_level;
}

static const char *ch__level_name(int level) {
  switch (level) {
  case CH_LOG_DEBUG:
    return "debug";
  case CH_LOG_INFO:
    return "info";
  case CH_LOG_WARN:
    return "warning";
  default:
    return "error";
  }
}

static void ch__log_line(int level, const char *source, const char *message) {
  if (level < ch_log_threshold()) return;
  pthread_mutex_lock(&log_lock);
  fprintf(stderr, "chicane: %s: %s%s%s\n", ch__level_name(level), source ? source : "",
          source ? ": " : "", message);
  pthread_mutex_unlock(&log_lock);
}

void ch_log(int level, const char *source, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ch__log_line(level, source, buf);
}

static const ch_host_api host_api = {CH_PLUGIN_ABI_VERSION, sizeof(ch_host_api), ch__log_line};

const ch_host_api *ch_host(void) {
  return &host_api;
}

const char *ch_strerror(int code) {
  switch (code) {
  case CH_OK:
    return "success";
  case CH_EINVAL:
    return "invalid argument";
  case CH_ENOMEM:
    return "out of memory";
  case CH_EIO:
    return "input/output error";
  case CH_ENOTFOUND:
    return "not found";
  case CH_ECORRUPT:
    return "corrupt data";
  case CH_ERANGE:
    return "value out of range";
  case CH_ESTATE:
    return "invalid state";
  case CH_ECONN:
    return "connection failed";
  case CH_ETIMEDOUT:
    return "timed out";
  case CH_EPLUGIN:
    return "plugin error";
  case CH_ESCRIPT:
    return "script error";
  case CH_EUNSUPPORTED:
    return "unsupported";
  default:
    return "unknown error";
  }
}
