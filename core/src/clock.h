/* clock.h -- monotonic time and sleeping: timing loops, benchmarks, waiting out failures. */
#ifndef CHICANE_CLOCK_H
#define CHICANE_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock (only differences mean anything). */
static inline double ch_clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The same in nanoseconds, for sums of many short intervals. */
static inline long long ch_clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void ch_clock_sleep(double seconds) {
  if (seconds <= 0) return;
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
}

#endif
