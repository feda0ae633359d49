/* cmd_evaluate.c -- `chicane evaluate MODEL`: DeepRacer-style evaluation laps, text or JSON. */
#include "cli.h"
#include "commands.h"
#include "evaluate.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char evaluate_usage[] =
    "usage: chicane evaluate MODEL [options]\n"
    "\n"
    "Drive MODEL's latest checkpoint round a track as DeepRacer's evaluation does: every trial\n"
    "starts at the start line, the policy acts greedily, and a car that leaves the track is put\n"
    "back with a time penalty. Reports progress, lap time and off-track count per trial and\n"
    "records the result in the catalog.\n"
    "\n"
    "options:\n"
    "  --track T          evaluate on track T (name or .track file; default: the model's)\n"
    "  --trials N         number of trials (default 3)\n"
    "  --penalty S        seconds added per off-track (default 5)\n"
    "  --max-seconds S    a trial still running after S simulated seconds is incomplete (180)\n"
    "  --require-laps N   exit with status 3 unless at least N trials complete the lap\n"
    "  --json             print one JSON object instead of text\n" CH_CLI_COMMON_HELP;

typedef struct ch__eval_args {
  ch_cli cli;
  const char *model, *track;
  ch_eval_options eo;
  int json, require_laps;
} ch__eval_args;

static int ch__number_arg(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int ch__parse(int argc, char **argv, ch__eval_args *a) {
  static const struct option opts[] = {{"track", required_argument, NULL, 't'},
                                       {"trials", required_argument, NULL, 'n'},
                                       {"penalty", required_argument, NULL, 'p'},
                                       {"max-seconds", required_argument, NULL, 'm'},
                                       {"require-laps", required_argument, NULL, 'r'},
                                       {"json", no_argument, NULL, 'j'},
                                       CH_CLI_COMMON_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  int c;
  double v;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(&a->cli, c, optarg)) continue;
    switch (c) {
    case 't':
      a->track = optarg;
      break;
    case 'n':
      if (!ch__number_arg(optarg, 1, CH_EVAL_MAX_TRIALS, &v))
        return ch_cli_usage_error("evaluate", "--trials needs 1..100");
      a->eo.trials = (int)v;
      break;
    case 'p':
      if (!ch__number_arg(optarg, 0, 3600, &a->eo.penalty_seconds))
        return ch_cli_usage_error("evaluate", "--penalty needs seconds in [0, 3600]");
      break;
    case 'm':
      if (!ch__number_arg(optarg, 1, 36000, &a->eo.max_seconds))
        return ch_cli_usage_error("evaluate", "--max-seconds needs seconds in [1, 36000]");
      break;
    case 'r':
      if (!ch__number_arg(optarg, 0, CH_EVAL_MAX_TRIALS, &v))
        return ch_cli_usage_error("evaluate", "--require-laps needs 0..100");
      a->require_laps = (int)v;
      break;
    case 'j':
      a->json = 1;
      break;
    case 'h':
      fputs(evaluate_usage, stdout);
      return -1;
    default:
      return ch_cli_usage_error("evaluate", "unknown option");
    }
  }
  if (optind != argc - 1) return ch_cli_usage_error("evaluate", "needs exactly one MODEL");
  a->model = argv[optind];
  return 0;
}

static cJSON *ch__result_json(const char *model, const char *track, const ch_eval_options *o,
                              const ch_eval_result *r) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", model);
  cJSON_AddStringToObject(root, "track", track);
  cJSON_AddNumberToObject(root, "penalty_seconds", o->penalty_seconds);
  cJSON *trials = cJSON_AddArrayToObject(root, "trials");
  for (int i = 0; i < r->trials; i++) {
    const ch_eval_trial *t = &r->trial[i];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "trial", i + 1);
    cJSON_AddNumberToObject(j, "progress", t->progress);
    if (t->completed)
      cJSON_AddNumberToObject(j, "lap_time", t->lap_time);
    else
      cJSON_AddNullToObject(j, "lap_time");
    cJSON_AddNumberToObject(j, "off_track", t->off_track);
    cJSON_AddBoolToObject(j, "completed", t->completed);
    cJSON_AddNumberToObject(j, "steps", t->steps);
    cJSON_AddItemToArray(trials, j);
  }
  cJSON_AddNumberToObject(root, "completed_laps", r->completed_laps);
  return root;
}

static void ch__print_text(const char *model, const char *track, const ch_eval_result *r) {
  printf("evaluation of '%s' on %s\n", model, track);
  printf("trial  progress  lap time  off-track\n");
  for (int i = 0; i < r->trials; i++) {
    const ch_eval_trial *t = &r->trial[i];
    if (t->completed)
      printf("%5d  %7.1f%%  %7.2fs  %9d\n", i + 1, t->progress, t->lap_time, t->off_track);
    else
      printf("%5d  %7.1f%%  %8s  %9d\n", i + 1, t->progress, "-", t->off_track);
  }
  printf("completed laps: %d of %d\n", r->completed_laps, r->trials);
}

static void ch__record(ch_session *s, const char *model, const char *track, const char *json,
                       const ch_eval_result *r) {
  ch_checkpoint_info ck;
  int64_t iteration = -1;
  if (ch_catalog_latest_checkpoint(s->cat, model, &ck, NULL) == CH_OK) {
    iteration = ck.iteration;
    ch_checkpoint_info_free(&ck);
  }
  ch_evaluation_info e = {(char *)model,     iteration,    (char *)track,      r->trials,
                          r->completed_laps, (char *)json, (int64_t)time(NULL)};
  ch_error err;
  if (ch_catalog_add_evaluation(s->cat, &e, &err) != CH_OK)
    fprintf(stderr, "chicane: warning: evaluation not recorded: %s\n", err.message);
}

const char ch_cmd_evaluate_summary[] =
    "evaluate MODEL\tdrive a trained model round a track: laps, lap times, off-tracks";

int ch_cmd_evaluate(int argc, char **argv) {
  ch__eval_args a;
  memset(&a, 0, sizeof a);
  ch_cli_init(&a.cli);
  ch_eval_defaults(&a.eo);
  int rc = ch__parse(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  ch_session s;
  if (ch_cli_open_session(&a.cli, &s)) return 1;
  ch_eval_result *r = malloc(sizeof *r);
  char track[256];
  ch_error err = {0, ""};
  rc = r ? ch_evaluate_model(&s, a.model, a.track, &a.eo, r, track, sizeof track, &err) : CH_ENOMEM;
  if (rc == CH_OK) {
    cJSON *j = ch__result_json(a.model, track, &a.eo, r);
    char *text = cJSON_PrintUnformatted(j);
    if (a.json)
      printf("%s\n", text);
    else
      ch__print_text(a.model, track, r);
    ch__record(&s, a.model, track, text, r);
    cJSON_free(text);
    cJSON_Delete(j);
  }
  int laps = rc == CH_OK ? r->completed_laps : 0;
  free(r);
  ch_session_close(&s);
  if (rc != CH_OK) return ch_cli_fail(rc == CH_ENOMEM ? "out of memory" : err.message);
  if (laps < a.require_laps) {
    fprintf(stderr, "chicane: %d of %d required laps completed\n", laps, a.require_laps);
    return 3;
  }
  return 0;
}
