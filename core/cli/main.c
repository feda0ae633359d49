/* main.c -- the chicane command: dispatches to the subcommands of commands.h. */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ch__usage(FILE *out) {
  fputs("usage: chicane COMMAND [options]\n"
        "\n"
        "Train autonomous race cars with reinforcement learning (DeepRacer-style).\n"
        "\n"
        "commands:\n",
        out);
  for (size_t i = 0; i < sizeof ch_cli_commands / sizeof ch_cli_commands[0]; i++) {
    const char *s = ch_cli_commands[i].summary, *tab = strchr(s, '\t');
    int w = tab ? (int)(tab - s) : (int)strlen(s);
    fprintf(out, "  %-24.*s %s\n", w, s, tab ? tab + 1 : "");
  }
  fputs("\n"
        "`chicane COMMAND --help` explains each. Environment: CHICANE_HOME (where models live),\n"
        "CHICANE_PLUGIN_PATH (more plugin directories), CHICANE_DATA_DIR (tracks, rewards,\n"
        "scripts), CHICANE_LOG (debug|info|warn|error).\n",
        out);
}

/* OpenBLAS's own (its cblas.h also pulls in complex.h, whose I clashes). */
void openblas_set_num_threads(int num_threads);

int main(int argc, char **argv) {
  /* The rollout threads already use every core; BLAS threads on top of them only contend.
  ** (libopenblas is linked in and has read the environment before main: set it directly.) */
  if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    ch__usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof ch_cli_commands / sizeof ch_cli_commands[0]; i++)
    if (strcmp(argv[1], ch_cli_commands[i].name) == 0)
      return ch_cli_commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "chicane: unknown command '%s'\n\n", argv[1]);
  ch__usage(stderr);
  return 2;
}
