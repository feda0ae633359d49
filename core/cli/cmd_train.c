/* cmd_train.c -- `chicane train SCRIPT`: run a training script to a stop condition. */
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "model_io.h"
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char train_usage[] =
    "usage: chicane train SCRIPT [options]\n"
    "\n"
    "Train a model as the Lua training script SCRIPT says (track, reward, action space,\n"
    "network, hyperparameters, stop conditions; see scripts/default.lua). Prints one line per\n"
    "iteration; each iteration is checkpointed to storage and recorded in the catalog.\n"
    "\n"
    "options:\n"
    "  --name NAME        train under this model name instead of the script's\n"
    "  --replace          if the model exists, delete it (catalog rows and stored objects) first\n"
    "  --max-seconds S    stop after S seconds of wall time (overrides stop.max_seconds)\n"
    "  --quiet            no per-iteration lines\n"
    "  --resume           continue the model from its latest checkpoint (weights, optimizer,\n"
    "                     counters) instead of refusing an existing name\n"
    "  --buffer URL       redis://[:password@]host:port[/db]: train with worker processes\n"
    "                     (`chicane worker`, on any machine) that meet the trainer there\n"
    "  --workers N        start N worker processes on this machine (needs "
    "--buffer)\n" CH_CLI_COMMON_HELP;

typedef struct ch__train_args {
  ch_cli cli;
  const char *script, *name;
  int replace, quiet, resume, workers;
  const char *buffer;
  double max_seconds;
} ch__train_args;

static int ch__parse(int argc, char **argv, ch__train_args *a) {
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"replace", no_argument, NULL, 'r'},
                                       {"max-seconds", required_argument, NULL, 'm'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"resume", no_argument, NULL, 'R'},
                                       {"buffer", required_argument, NULL, 'b'},
                                       {"workers", required_argument, NULL, 'w'},
                                       CH_CLI_COMMON_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(&a->cli, c, optarg)) continue;
    switch (c) {
    case 'n':
      a->name = optarg;
      break;
    case 'r':
      a->replace = 1;
      break;
    case 'q':
      a->quiet = 1;
      break;
    case 'R':
      a->resume = 1;
      break;
    case 'b':
      a->buffer = optarg;
      break;
    case 'w':
      a->workers = atoi(optarg);
      if (a->workers < 1 || a->workers > 64)
        return ch_cli_usage_error("train", "--workers needs a number in 1..64");
      break;
    case 'm':
      a->max_seconds = strtod(optarg, NULL);
      if (a->max_seconds <= 0)
        return ch_cli_usage_error("train", "--max-seconds needs a number > 0");
      break;
    case 'h':
      fputs(train_usage, stdout);
      return -1;
    default:
      return ch_cli_usage_error("train", "unknown option");
    }
  }
  if (optind != argc - 1) return ch_cli_usage_error("train", "needs exactly one SCRIPT");
  a->script = argv[optind];
  return 0;
}

static int ch__load_config(const ch__train_args *a, ch_train_config *cfg) {
  ch_error err = {0, ""};
  if (ch_config_load(a->script, cfg, &err) != CH_OK) return ch_cli_fail(err.message);
  if (a->name) snprintf(cfg->model, sizeof cfg->model, "%s", a->name);
  if (a->max_seconds > 0) cfg->stop.max_seconds = a->max_seconds;
  if (ch_config_validate(cfg, &err) != CH_OK) return ch_cli_fail(err.message);
  return 0;
}

const char ch_cmd_train_summary[] = "train SCRIPT\ttrain a model as the Lua training script says";

int ch_cmd_train(int argc, char **argv) {
  ch__train_args a;
  memset(&a, 0, sizeof a);
  ch_cli_init(&a.cli);
  /* "chicane train ...", taken before getopt reorders argv */
  char *args = ch_model_command_line(argc, argv);
  char *command_line = args ? malloc(strlen(args) + 9) : NULL;
  if (command_line) sprintf(command_line, "chicane %s", args);
  free(args);
  int rc = ch__parse(argc, argv, &a);
  if (rc) {
    free(command_line);
    return rc < 0 ? 0 : rc;
  }
  ch_train_config *cfg = malloc(sizeof *cfg);
  if (!cfg) {
    free(command_line);
    return ch_cli_fail("out of memory");
  }
  rc = ch__load_config(&a, cfg);
  if (rc) {
    free(command_line);
    free(cfg);
    return rc;
  }
  char space[64], tracks[32] = "";
  if (cfg->action_space_type == CH_ACTION_SPACE_CONTINUOUS)
    snprintf(space, sizeof space, "continuous actions");
  else
    snprintf(space, sizeof space, "%d actions", cfg->num_actions);
  if (cfg->num_tracks > 1) snprintf(tracks, sizeof tracks, " and %d more", cfg->num_tracks - 1);
  printf("training '%s' on %s%s with %s (%s, %s, %d workers x %d cars); storage %s, catalog %s\n",
         cfg->model, cfg->track, tracks, cfg->reward, space, cfg->algorithm, cfg->workers,
         cfg->cars_per_worker, a.cli.storage_root, a.cli.catalog);
  fflush(stdout);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = 0;
  ch_train_options o = {.storage_root = a.cli.storage_root,
                        .catalog_path = a.cli.catalog,
                        .replace = a.replace,
                        .quiet = a.quiet,
                        .buffer = a.buffer,
                        .worker_processes = a.workers,
                        .worker_command = exe[0] ? exe : NULL,
                        .resume = a.resume,
                        .command_line = command_line};
  ch_train_summary sum;
  ch_error err = {0, ""};
  rc = ch_train(cfg, &o, &sum, &err);
  if (rc == CH_OK)
    printf("trained '%s': %lld iterations, %lld episodes, %lld env steps in %.1f s (%s); "
           "last checkpoint: iteration %lld\n",
           cfg->model, (long long)sum.iterations, (long long)sum.episodes, (long long)sum.env_steps,
           sum.seconds, sum.stop_reason, (long long)sum.last.iteration);
  free(cfg);
  free(command_line);
  return rc == CH_OK ? 0 : ch_cli_fail(err.message);
}
