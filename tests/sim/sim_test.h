/* sim_test.h -- tests/sim: shared fixtures for the sim2d tests (tracks in temp files, handles). */
#ifndef CHICANE_SIM_TEST_H
#define CHICANE_SIM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_open.h"

#define PI 3.14159265358979323846

#define expect_near(a, b, eps)                                                                     \
  do {                                                                                             \
    double a_ = (a), b_ = (b);                                                                     \
    if (!(fabs(a_ - b_) <= (eps)))                                                                 \
      fail_msg("%s = %.12g, expected %.12g (+- %g)", #a, a_, b_, (double)(eps));                   \
  } while (0)

#define expect_contains(hay, needle)                                                               \
  do {                                                                                             \
    if (!strstr((hay), (needle))) fail_msg("message \"%s\" lacks \"%s\"", (hay), (needle));        \
  } while (0)

static const ch_env_vtable *vt;

/* Write a track of n centre points pt(i, axis) under the header head to a new temp file. */
static inline void sim_write_track(char *path, const char *head, int n, double (*pt)(int, int)) {
  strcpy(path, "/tmp/chicane_simXXXXXX.track");
  int fd = mkstemps(path, 6);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  fputs(head, f);
  for (int i = 0; i < n; i++) fprintf(f, "%.9f %.9f\n", pt(i, 0), pt(i, 1));
  fclose(f);
}

/* 20 m along +x from (0, 0) in 81 points. */
static inline double sim_line_pt(int i, int axis) {
  return axis ? 0 : 0.25 * i;
}

/* Circle of radius 10 about the origin, counter-clockwise from (10, 0), 400 points. */
static inline double sim_circle10_pt(int i, int axis) {
  double a = 2 * PI * i / 400;
  return axis ? 10 * sin(a) : 10 * cos(a);
}

/* A handle from a JSON config with "%s" for the track path; fails the test on error. */
static inline void *sim_env(const char *fmt, const char *track) {
  char cfg[4096];
  snprintf(cfg, sizeof cfg, fmt, track);
  void *env = NULL;
  ch_error err = {0};
  int rc = vt->create(cfg, &test_host, &env, &err);
  if (rc) fail_msg("create %s: %d %s", cfg, rc, err.message);
  return env;
}

/* The create error of a config with "%s" for the track path: its code and message. */
static inline int sim_env_error(const char *fmt, const char *track, ch_error *err) {
  char cfg[4096];
  snprintf(cfg, sizeof cfg, fmt, track);
  void *env = (void *)1;
  int rc = vt->create(cfg, &test_host, &env, err);
  if (rc == CH_OK) {
    vt->destroy(env);
    fail_msg("create %s succeeded, expected an error", cfg);
  }
  assert_null(env);
  assert_int_equal(err->code, rc);
  return rc;
}

static inline void sim_reset(void *env, uint32_t car, ch_env_reset opt, float *obs, uint8_t *image,
                             ch_env_params *p) {
  ch_error err;
  int rc = vt->reset(env, car, &opt, obs, image, p, &err);
  if (rc) fail_msg("reset: %d %s", rc, err.message);
}

/* Step car 0 of a one-car handle. */
static inline int32_t sim_step1(void *env, double steer, double speed, float *obs, uint8_t *image,
                                ch_env_params *p) {
  float st = (float)steer, sp = (float)speed;
  int32_t status = -1;
  ch_error err;
  int rc = vt->step(env, &st, &sp, NULL, obs, image, p, &status, &err);
  if (rc) fail_msg("step: %d %s", rc, err.message);
  return status;
}

#endif
