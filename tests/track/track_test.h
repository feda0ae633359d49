/* track_test.h -- what the track tests share: assertions that print both sides, track files. */
#ifndef CHICANE_TRACK_TEST_H
#define CHICANE_TRACK_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "track.h"

#define PI 3.14159265358979323846

#include <unistd.h>

#define DEEPRACER_DIR CHICANE_SHARED_DIR "/tracks/deepracer"

/* The DeepRacer files live beside the checkout (../shared), never in it: skip loudly without. */
#define REQUIRE_DEEPRACER()                                                                        \
  do {                                                                                             \
    if (access(DEEPRACER_DIR "/NOTICE.md", R_OK) != 0) {                                           \
      fprintf(stderr, "SKIPPED: %s is absent (DeepRacer tracks beside the checkout)\n",            \
              DEEPRACER_DIR);                                                                      \
      skip();                                                                                      \
    }                                                                                              \
  } while (0)

#define expect_near(a, b, eps)                                                                     \
  do {                                                                                             \
    double a_ = (a), b_ = (b);                                                                     \
    if (!(fabs(a_ - b_) <= (eps)))                                                                 \
      fail_msg("%s = %.12g, expected %.12g (+- %g)", #a, a_, b_, (double)(eps));                   \
  } while (0)

#define expect_between(v, lo, hi)                                                                  \
  do {                                                                                             \
    double v_ = (v);                                                                               \
    if (!(v_ >= (lo) && v_ <= (hi))) fail_msg("%s = %.12g, expected in [%g, %g]", #v, v_, lo, hi); \
  } while (0)

#define expect_contains(hay, needle)                                                               \
  do {                                                                                             \
    if (!strstr((hay), (needle))) fail_msg("message \"%s\" lacks \"%s\"", (hay), (needle));        \
  } while (0)

/* The DeepRacer files of the shared folder (see NOTICE.md there). */
static const char *const deepracer_files[] = {"reinvent_base.npy", "Oval_track.npy",
                                              "Bowtie_track.npy", "reInvent2019_wide.npy",
                                              "Straight_track.npy"};
#define DEEPRACER_COUNT ((int)(sizeof deepracer_files / sizeof deepracer_files[0]))

/* The tracks the project ships. */
static const char *const shipped_tracks[] = {"bayside", "oval", "straight", "narrows"};
#define SHIPPED_COUNT ((int)(sizeof shipped_tracks / sizeof shipped_tracks[0]))

/* Deterministic xorshift so failures reproduce. */
static uint64_t test_rng = 0x9e3779b97f4a7c15ull;
static inline double rnd(void) {
  test_rng ^= test_rng << 13, test_rng ^= test_rng >> 7, test_rng ^= test_rng << 17;
  return (double)(test_rng >> 11) / 9007199254740992.0;
}

static inline ch_track *load_path(const char *path) {
  ch_track *t = NULL;
  ch_error err;
  int rc = ch_track_load(path, &t, &err);
  if (rc) fail_msg("%s: %d %s", path, rc, err.message);
  return t;
}

static inline ch_track *load_shipped(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tracks/%s.track", CHICANE_SOURCE_DIR, name);
  return load_path(path);
}

static inline ch_track *load_deepracer(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", DEEPRACER_DIR, file);
  return load_path(path);
}

/* Every track the tests know: shipped first, then DeepRacer's; index < all_track_count(). */
static inline int all_track_count(void) {
  /* without the shared folder beside the checkout, the shipped tracks alone (said loudly) */
  if (access(DEEPRACER_DIR "/NOTICE.md", R_OK) != 0) {
    fprintf(stderr, "SKIPPED: DeepRacer tracks (%s absent); shipped tracks only\n", DEEPRACER_DIR);
    return SHIPPED_COUNT;
  }
  return SHIPPED_COUNT + DEEPRACER_COUNT;
}

static inline ch_track *load_any(int i) {
  return i < SHIPPED_COUNT ? load_shipped(shipped_tracks[i])
                           : load_deepracer(deepracer_files[i - SHIPPED_COUNT]);
}

#endif
