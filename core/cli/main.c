/* main.c -- the chicane command: dispatches to train, evaluate, models and plugins. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: chicane COMMAND [options]\n"
    "\n"
    "Train autonomous race cars with reinforcement learning (DeepRacer-style).\n"
    "\n"
    "commands:\n"
    "  train SCRIPT       train a model as the Lua training script says\n"
    "  evaluate MODEL     drive a trained model round a track: laps, lap times, off-tracks\n"
    "  models [show NAME] list the models in the catalog, or show one\n"
    "  plugins            list the plugins found on the search path\n"
    "\n"
    "`chicane COMMAND --help` explains each. Environment: CHICANE_HOME (where models live),\n"
    "CHICANE_PLUGIN_PATH (more plugin directories), CHICANE_DATA_DIR (tracks, rewards,\n"
    "scripts), CHICANE_LOG (debug|info|warn|error).\n";

typedef struct ch__command {
  const char *name;
  int (*run)(int argc, char **argv);
} ch__command;

static const ch__command commands[] = {{"train", ch_cmd_train},
                                       {"evaluate", ch_cmd_evaluate},
                                       {"models", ch_cmd_models},
                                       {"plugins", ch_cmd_plugins}};

int main(int argc, char **argv) {
  /* The rollout threads already use every core; BLAS threads on top of them only contend. */
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "chicane: unknown command '%s'\n\n%s", argv[1], usage);
  return 2;
}
