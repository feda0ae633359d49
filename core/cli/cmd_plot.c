/* cmd_plot.c -- `chicane plot NAME`: PNG pictures of a model's training and evaluation. */
#include "cli.h"
#include "commands.h"
#include "viz.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static const char plot_usage[] =
    "usage: chicane plot NAME [options]\n"
    "\n"
    "Write PNG pictures of model NAME:\n"
    "  NAME-reward.png      mean reward and mean progress of each training iteration, with the\n"
    "                       progress of its evaluations (like DeepRacer's reward graph)\n"
    "  NAME-completion.png  the share of episodes (training) and trials (evaluation) that\n"
    "                       completed the lap, per iteration\n"
    "  NAME-track.png       the track with the last evaluation's laps coloured by speed and the\n"
    "                       racing line dashed\n"
    "\n"
    "options:\n"
    "  --out DIR        where to write them (default: the current directory)\n"
    "  --json           print the paths written as JSON\n" CH_CLI_COMMON_HELP;

static int ch__parse(int argc, char **argv, ch_cli *cli, const char **out, int *json) {
  static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                       {"json", no_argument, NULL, 'j'},
                                       CH_CLI_COMMON_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(cli, c, optarg)) continue;
    if (c == 'o')
      *out = optarg;
    else if (c == 'j')
      *json = 1;
    else if (c == 'h')
      return fputs(plot_usage, stdout), -1;
    else
      return ch_cli_usage_error("plot", "unknown option");
  }
  if (optind != argc - 1) return ch_cli_usage_error("plot", "needs exactly one model NAME");
  return 0;
}

static void ch__print(const ch_viz_plot_result *r, int json) {
  if (!json) {
    printf("wrote %s (%d iterations, %d evaluations)\nwrote %s\nwrote %s (%d laps drawn)\n",
           r->reward_png, r->iterations, r->evaluations, r->completion_png, r->track_png,
           r->laps_drawn);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "reward", r->reward_png);
  cJSON_AddStringToObject(o, "completion", r->completion_png);
  cJSON_AddStringToObject(o, "track", r->track_png);
  cJSON_AddNumberToObject(o, "iterations", r->iterations);
  cJSON_AddNumberToObject(o, "evaluations", r->evaluations);
  cJSON_AddNumberToObject(o, "laps_drawn", r->laps_drawn);
  char *text = cJSON_Print(o);
  printf("%s\n", text ? text : "{}");
  cJSON_free(text);
  cJSON_Delete(o);
}

const char ch_cmd_plot_summary[] =
    "plot NAME [--out DIR]\tPNG charts of a model's training and its laps on the track";

int ch_cmd_plot(int argc, char **argv) {
  ch_cli cli;
  ch_cli_init(&cli);
  const char *out = ".";
  int json = 0;
  int rc = ch__parse(argc, argv, &cli, &out, &json);
  if (rc) return rc < 0 ? 0 : rc;
  ch_session s;
  if (ch_cli_open_session(&cli, &s)) return 1;
  ch_viz_plot_result r;
  ch_error err = {0, ""};
  rc = ch_viz_plot_model(&s, argv[optind], out, &r, &err);
  ch_viz_release();
  ch_session_close(&s);
  if (rc != CH_OK) return ch_cli_fail(err.message);
  ch__print(&r, json);
  return 0;
}
