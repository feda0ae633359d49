/* test_catalog_simtrace.c -- the sim-trace CSV: exact text, round trip, old files, errors. */
#include "catalog_test.h"

#include <math.h>

#include "simtrace.h"

static ch_simtrace_row sample_row(int64_t episode, int32_t steps, int32_t status) {
  ch_simtrace_row r = {episode, steps,  3.14159, -0.5,    -84.31651,
                       30,      2.5,    7,       1.23456, status == CH_EPISODE_LAP_COMPLETE,
                       1,       42.125, 17,      17.4159, 12.3456789,
                       status,  0};
  return r;
}

static void test_simtrace_writes_deepracer_text(void **state) {
  (void)state;
  ch_simtrace *t = ch_simtrace_new();
  assert_non_null(t);
  size_t len;
  assert_string_equal(ch_simtrace_data(t, &len),
                      "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,"
                      "all_wheels_on_track,progress,closest_waypoint,track_len,tstamp,"
                      "episode_status,pause_duration\n");
  ch_simtrace_row r = sample_row(0, 0, CH_SIMTRACE_PREPARE);
  assert_int_equal(ch_simtrace_add(t, &r), CH_OK);
  r = sample_row(2, 15, CH_EPISODE_OFF_TRACK);
  r.all_wheels_on_track = 0;
  r.pause_duration = 5;
  r.action = -1;
  r.steer_deg = -12.3456;
  assert_int_equal(ch_simtrace_add(t, &r), CH_OK);
  r = sample_row(2, 16, CH_EPISODE_LAP_COMPLETE);
  assert_int_equal(ch_simtrace_add(t, &r), CH_OK);
  const char *text = ch_simtrace_data(t, &len);
  const char *rows = strchr(text, '\n') + 1;
  assert_string_equal(
      rows,
      "0,0,3.1416,-0.5000,-84.3165,30.00,2.50,7,1.2346,False,True,42.1250,17,17.42,12.346,"
      "prepare,0.0000\n"
      "2,15,3.1416,-0.5000,-84.3165,-12.35,2.50,-1,1.2346,False,False,42.1250,17,17.42,12.346,"
      "off_track,5.0000\n"
      "2,16,3.1416,-0.5000,-84.3165,30.00,2.50,7,1.2346,True,True,42.1250,17,17.42,12.346,"
      "lap_complete,0.0000\n");
  assert_int_equal(len, strlen(text));
  assert_int_equal(ch_simtrace_count(t), 3);

  /* Non-finite values and unknown statuses are refused, and leave the text as it was. */
  r.reward = NAN;
  assert_int_equal(ch_simtrace_add(t, &r), CH_EINVAL);
  r = sample_row(3, 1, 99);
  assert_int_equal(ch_simtrace_add(t, &r), CH_EINVAL);
  assert_int_equal(ch_simtrace_count(t), 3);
  assert_string_equal(ch_simtrace_data(t, NULL), text);

  ch_simtrace_clear(t);
  assert_int_equal(ch_simtrace_count(t), 0);
  assert_string_equal(ch_simtrace_data(t, NULL), CH_SIMTRACE_HEADER "\n");
  ch_simtrace_free(t);
}

static void test_simtrace_round_trip(void **state) {
  (void)state;
  ch_simtrace *t = ch_simtrace_new();
  const int32_t statuses[] = {CH_SIMTRACE_PREPARE, CH_EPISODE_IN_PROGRESS, CH_EPISODE_OFF_TRACK,
                              CH_EPISODE_CRASHED,  CH_EPISODE_IMMOBILIZED, CH_EPISODE_REVERSED,
                              CH_EPISODE_TIME_UP,  CH_EPISODE_LAP_COMPLETE};
  for (int i = 0; i < 8; i++) {
    ch_simtrace_row r = sample_row(i / 3, i, statuses[i]);
    r.x = i * 0.25;
    r.progress = i * 12.5;
    assert_int_equal(ch_simtrace_add(t, &r), CH_OK);
  }
  size_t len, n;
  const char *text = ch_simtrace_data(t, &len);
  ch_simtrace_row *rows;
  ch_error err = {0, ""};
  if (ch_simtrace_parse(text, len, &rows, &n, &err) != CH_OK) fail_msg("%s", err.message);
  assert_int_equal(n, 8);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(rows[i].episode, i / 3);
    assert_int_equal(rows[i].steps, i);
    assert_int_equal(rows[i].status, statuses[i]);
    assert_true(rows[i].x == i * 0.25);
    assert_true(rows[i].progress == i * 12.5);
    assert_true(fabs(rows[i].yaw_deg + 84.3165) < 1e-9);
    assert_int_equal(rows[i].action, 7);
    assert_int_equal(rows[i].done, statuses[i] == CH_EPISODE_LAP_COMPLETE);
    assert_int_equal(rows[i].all_wheels_on_track, 1);
    assert_int_equal(rows[i].closest_waypoint, 17);
    assert_true(fabs(rows[i].tstamp - 12.346) < 1e-9);
    const char *name = ch_simtrace_status_name(statuses[i]);
    int32_t back;
    assert_int_equal(ch_simtrace_status_parse(name, &back), CH_OK);
    assert_int_equal(back, statuses[i]);
  }
  free(rows);
  ch_simtrace_free(t);
}

/* A file of DeepRacer 2019 (no status columns), with CRLF line ends and an extra column. */
static void test_simtrace_reads_older_files(void **state) {
  (void)state;
  const char csv[] =
      "episode,steps,X,Y,yaw,steer,throttle,action,reward,done,all_wheels_on_track,"
      "progress,closest_waypoint,track_len,tstamp,extra\r\n"
      "0,1,2.5,0.75,-1.5,15.0,1.33,4,0.5,False,True,0.8,1,17.67,1574880000.123,x\r\n"
      "\r\n"
      "0,2,2.6,0.76,-1.4,15.0,1.33,4,0.6,True,False,1.6,2,17.67,1574880000.190,y\r\n";
  ch_simtrace_row *rows;
  size_t n;
  ch_error err = {0, ""};
  if (ch_simtrace_parse(csv, strlen(csv), &rows, &n, &err) != CH_OK) fail_msg("%s", err.message);
  assert_int_equal(n, 2);
  assert_int_equal(rows[0].status, CH_EPISODE_IN_PROGRESS);
  assert_true(rows[0].pause_duration == 0);
  assert_true(rows[1].done && !rows[1].all_wheels_on_track);
  assert_true(rows[1].tstamp == 1574880000.190);
  free(rows);
}

static void expect_parse_error(const char *csv, const char *needle) {
  ch_simtrace_row *rows = (ch_simtrace_row *)1;
  size_t n = 99;
  ch_error err = {0, ""};
  assert_int_equal(ch_simtrace_parse(csv, strlen(csv), &rows, &n, &err), CH_ECORRUPT);
  assert_int_equal(err.code, CH_ECORRUPT);
  if (!strstr(err.message, needle)) fail_msg("message '%s' lacks '%s'", err.message, needle);
  assert_null(rows);
  assert_int_equal(n, 0);
}

static void test_simtrace_errors_name_line_and_column(void **state) {
  (void)state;
  static char csv[4096];
  snprintf(csv, sizeof csv,
           "%s\n0,1,1,1,0,0,1,0,0,False,True,5,0,10,0.1,in_progress,0\n"
           "0,2,1,1,0,0,1,0,0,False,True,abc,0,10,0.2,in_progress,0\n",
           CH_SIMTRACE_HEADER);
  expect_parse_error(csv, "line 3, column progress: 'abc' is not a number");
  snprintf(csv, sizeof csv, "%s\n0,1,1,1,0,0,1,0,0,Maybe,True,5,0,10,0.1,in_progress,0\n",
           CH_SIMTRACE_HEADER);
  expect_parse_error(csv, "line 2, column done: 'Maybe' is not True or False");
  snprintf(csv, sizeof csv, "%s\n0,1,1,1,0,0,1,0,0,False,True,5,0,10,0.1,flying,0\n",
           CH_SIMTRACE_HEADER);
  expect_parse_error(csv, "column episode_status: 'flying' is not an episode status");
  snprintf(csv, sizeof csv, "%s\n0,1,1,1\n", CH_SIMTRACE_HEADER);
  expect_parse_error(csv, "line 2: 4 fields");
  expect_parse_error("episode,steps,X,Y\n0,1,2,3\n", "no column 'yaw' in the header");
  expect_parse_error("", "empty");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simtrace_writes_deepracer_text),
      cmocka_unit_test(test_simtrace_round_trip),
      cmocka_unit_test(test_simtrace_reads_older_files),
      cmocka_unit_test(test_simtrace_errors_name_line_and_column),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
