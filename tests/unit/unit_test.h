/* unit_test.h -- helpers the core unit tests share: checked calls, substring asserts, temp files.
 */
#ifndef CH_UNIT_TEST_H
#define CH_UNIT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <chicane/plugin.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fail with the callee's message when rc is not CH_OK. */
#define unit_check(rc, err)                                                                        \
  do {                                                                                             \
    int unit__rc = (rc);                                                                           \
    if (unit__rc != CH_OK) fail_msg("%s -> %d: %s", #rc, unit__rc, (err).message);                 \
  } while (0)

/* Fail unless rc equals want, printing both codes and the message. */
#define unit_expect(rc, want, err)                                                                 \
  do {                                                                                             \
    int unit__rc = (rc);                                                                           \
    if (unit__rc != (want))                                                                        \
      fail_msg("%s -> %d, expected %d (%s); message: %s", #rc, unit__rc, (want), #want,            \
               (err).message);                                                                     \
  } while (0)

/* Fail unless msg contains part, printing both. */
#define unit_assert_contains(msg, part)                                                            \
  do {                                                                                             \
    const char *unit__m = (msg), *unit__p = (part);                                                \
    if (!strstr(unit__m, unit__p))                                                                 \
      fail_msg("message \"%s\" does not contain \"%s\"", unit__m, unit__p);                        \
  } while (0)

/* Fail unless |got - want| <= tol, printing both. */
#define unit_assert_near(got, want, tol)                                                           \
  do {                                                                                             \
    double unit__g = (got), unit__w = (want);                                                      \
    if (!(fabs(unit__g - unit__w) <= (tol)))                                                       \
      fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #got, unit__g, unit__w,                \
               (double)(tol));                                                                     \
  } while (0)

/* A fresh directory under $TMPDIR (or /tmp), written to out. */
static inline void unit_mkdtemp(char *out, size_t n, const char *tag) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, n, "%s/chicane-%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", tag);
  if (!mkdtemp(out)) fail_msg("mkdtemp(%s) failed", out);
}

/* Write text to dir/name and put the full path in out. */
static inline void unit_write(const char *dir, const char *name, const char *text, char *out,
                              size_t n) {
  snprintf(out, n, "%s/%s", dir, name);
  FILE *f = fopen(out, "w");
  if (!f) fail_msg("cannot create %s", out);
  fputs(text, f);
  if (fclose(f) != 0) fail_msg("cannot write %s", out);
}

/* Remove a flat directory of files made by these tests. */
static inline void unit_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char path[4096];
  for (struct dirent *de; (de = readdir(d));) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* Deterministic uniform numbers in [0, 1) (splitmix64), so runs repeat exactly. */
static inline double unit_uniform(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

#endif
