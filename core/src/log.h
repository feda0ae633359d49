/* log.h -- the core's logger and the host API handed to plugins. */
#ifndef CHICANE_LOG_H
#define CHICANE_LOG_H

#include <chicane/plugin.h>

/* Lowest level printed (CH_LOG_INFO by default; CHICANE_LOG=debug|info|warn|error). */
void ch_log_set_level(int level);
int ch_log_threshold(void);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void ch_log(int level, const char *source, const char *fmt, ...);

/* The services given to every plugin's entry point. */
const ch_host_api *ch_host(void);

/* Human name of a ch_status code ("CH_EINVAL: invalid argument"). */
const char *ch_strerror(int code);

#endif
