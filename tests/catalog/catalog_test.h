/* catalog_test.h -- tests/catalog: a temporary CHICANE_HOME, the chicane binary, a quick model. */
#ifndef CHICANE_CATALOG_TEST_H
#define CHICANE_CATALOG_TEST_H

#define _XOPEN_SOURCE 700 /* nftw */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char test_home[256];

static inline int test__rm_entry(const char *path, const struct stat *sb, int flag,
                                 struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void test_rm_tree(const char *dir) {
  nftw(dir, test__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void test_make_home(const char *tag) {
  snprintf(test_home, sizeof test_home, "/tmp/chicane-%s-XXXXXX", tag);
  if (!mkdtemp(test_home)) fail_msg("mkdtemp %s failed", test_home);
}

/* Run `chicane ARGS --home HOME` (stderr merged when merge); returns the exit status. */
static inline int test_run(const char *args, char *out, size_t outlen, int merge) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s/chicane %s --home %s %s", CHICANE_BINARY_DIR, args, test_home,
           merge ? "2>&1" : "2>/dev/null");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline void test_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) fail_msg("cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

/* Train model `name` on bayside with the CLI until it completes 3 of 3 evaluation laps (or
** `iterations` pass): the settings of scripts/default.lua, which get there in a few seconds. */
static inline void test_train(const char *name, int iterations) {
  char path[512], text[2048], args[1024];
  static char out[1 << 16];
  snprintf(path, sizeof path, "%s/%s.lua", test_home, name);
  snprintf(text, sizeof text,
           "return {\n"
           "  model = '%s', track = 'bayside', reward = '%s/rewards/progress.lua',\n"
           "  action_space = action_grid({-30, -15, 0, 15, 30}, {1.5, 3.0}),\n"
           "  network = { hidden = {64, 64}, activation = 'tanh' },\n"
           "  hyperparameters = { num_episodes_between_training = 32 },\n"
           "  stop = { eval_laps = 3, max_iterations = %d },\n"
           "  workers = 2, cars_per_worker = 8, segment_steps = 128, max_steps = 1500,\n"
           "}\n",
           name, CHICANE_SOURCE_DIR, iterations);
  test_write_file(path, text);
  snprintf(args, sizeof args, "train %s --quiet", path);
  int rc = test_run(args, out, sizeof out, 1);
  if (rc != 0) fail_msg("chicane %s exited %d:\n%s", args, rc, out);
}

#endif
