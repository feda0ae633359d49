/* cmd_leaderboard.c -- `chicane leaderboard`: models ranked by their best evaluated lap. */
#include "cli.h"
#include "commands.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char leaderboard_usage[] =
    "usage: chicane leaderboard [options]\n"
    "\n"
    "Models ranked by the fastest lap of their evaluations (`chicane evaluate`), per track. A\n"
    "model counts with its best evaluation that completed at least one lap; the ratio is that\n"
    "lap over the track's reference lap (the racing line's, from a standing start).\n"
    "\n"
    "options:\n"
    "  --track T        only track T\n"
    "  --json           print a JSON array of entries instead of text\n" CH_CLI_COMMON_HELP;

typedef struct ch__board {
  cJSON *json; /* array when --json */
  char track[256];
  int count, tracks;
} ch__board;

static void ch__add_known(cJSON *o, const char *key, double v) {
  if (v > 0)
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static void ch__entry_json(const ch_leaderboard_entry *e, cJSON *arr) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "rank", (double)e->rank);
  cJSON_AddStringToObject(o, "track", e->track ? e->track : "");
  cJSON_AddStringToObject(o, "model", e->model);
  cJSON_AddNumberToObject(o, "iteration", (double)e->iteration);
  cJSON_AddStringToObject(o, "race_type", e->race_type ? e->race_type : "time_trial");
  cJSON_AddNumberToObject(o, "best_lap_time", e->best_lap_time);
  ch__add_known(o, "reference_lap", e->reference_lap);
  ch__add_known(o, "reference_ratio", e->reference_ratio);
  cJSON_AddNumberToObject(o, "completed_laps", (double)e->completed_laps);
  cJSON_AddNumberToObject(o, "trials", (double)e->trials);
  cJSON_AddNumberToObject(o, "off_track", (double)e->off_track);
  cJSON_AddNumberToObject(o, "crashes", (double)e->crashes);
  cJSON_AddNumberToObject(o, "created", (double)e->created);
  cJSON_AddNumberToObject(o, "evaluation_id", (double)e->evaluation_id);
  cJSON_AddItemToArray(arr, o);
}

static void ch__entry_text(const ch_leaderboard_entry *e, ch__board *b) {
  const char *track = e->track ? e->track : "";
  if (b->count == 0 || strcmp(b->track, track) != 0) {
    snprintf(b->track, sizeof b->track, "%s", track);
    if (b->tracks++) printf("\n");
    if (e->reference_lap > 0)
      printf("track %s (reference lap %.2fs)\n", track, e->reference_lap);
    else
      printf("track %s\n", track);
    printf("%4s  %-24s %9s %6s %5s %4s %5s %9s  %-16s %s\n", "RANK", "MODEL", "BEST LAP", "RATIO",
           "LAPS", "OFF", "CRASH", "ITERATION", "RACE TYPE", "WHEN");
  }
  char ratio[32] = "-", laps[32], when[32];
  if (e->reference_ratio > 0) snprintf(ratio, sizeof ratio, "%.3f", e->reference_ratio);
  snprintf(laps, sizeof laps, "%lld/%lld", (long long)e->completed_laps, (long long)e->trials);
  time_t t = (time_t)e->created;
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
  printf("%4lld  %-24s %8.2fs %6s %5s %4lld %5lld %9lld  %-16s %s\n", (long long)e->rank, e->model,
         e->best_lap_time, ratio, laps, (long long)e->off_track, (long long)e->crashes,
         (long long)e->iteration, e->race_type ? e->race_type : "time_trial", when);
}

static int ch__entry(const ch_leaderboard_entry *e, void *user) {
  ch__board *b = user;
  if (b->json)
    ch__entry_json(e, b->json);
  else
    ch__entry_text(e, b);
  b->count++;
  return 0;
}

static int ch__parse(int argc, char **argv, ch_cli *cli, const char **track, int *json) {
  static const struct option opts[] = {{"track", required_argument, NULL, 't'},
                                       {"json", no_argument, NULL, 'j'},
                                       CH_CLI_COMMON_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(cli, c, optarg)) continue;
    if (c == 't')
      *track = optarg;
    else if (c == 'j')
      *json = 1;
    else if (c == 'h')
      return fputs(leaderboard_usage, stdout), -1;
    else
      return ch_cli_usage_error("leaderboard", "unknown option");
  }
  if (optind != argc) return ch_cli_usage_error("leaderboard", "takes no arguments");
  return 0;
}

const char ch_cmd_leaderboard_summary[] =
    "leaderboard [--track T]\tmodels ranked by their best evaluated lap time";

int ch_cmd_leaderboard(int argc, char **argv) {
  ch_cli cli;
  ch_cli_init(&cli);
  const char *track = NULL;
  int json = 0;
  int rc = ch__parse(argc, argv, &cli, &track, &json);
  if (rc) return rc < 0 ? 0 : rc;
  ch_session s;
  if (ch_cli_open_session(&cli, &s)) return 1;
  ch__board b;
  memset(&b, 0, sizeof b);
  b.json = json ? cJSON_CreateArray() : NULL;
  ch_error err = {0, ""};
  rc = ch_catalog_leaderboard(s.cat, track, ch__entry, &b, &err);
  ch_session_close(&s);
  if (json) {
    char *text = cJSON_Print(b.json);
    if (rc == CH_OK) printf("%s\n", text ? text : "[]");
    cJSON_free(text);
    cJSON_Delete(b.json);
  } else if (rc == CH_OK && b.count == 0) {
    printf("(no completed evaluation laps%s%s yet: chicane evaluate MODEL)\n", track ? " on " : "",
           track ? track : "");
  }
  return rc == CH_OK ? 0 : ch_cli_fail(err.message);
}
