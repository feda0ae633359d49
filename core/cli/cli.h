/* cli.h -- what every `chicane` subcommand shares: where models live, option parsing helpers. */
#ifndef CHICANE_CLI_H
#define CHICANE_CLI_H

#include "runtime.h"

#include <getopt.h>

/* Options every subcommand that touches models accepts. */
#define CH_CLI_COMMON_OPTIONS                                                                      \
  {"home", required_argument, NULL, 'H'}, {"storage", required_argument, NULL, 'S'},               \
      {"catalog", required_argument, NULL, 'C'}, {                                                 \
    "help", no_argument, NULL, 'h'                                                                 \
  }

#define CH_CLI_COMMON_HELP                                                                         \
  "  --home DIR       where models live (default $CHICANE_HOME or .): DIR/storage, "               \
  "DIR/catalog.db\n"                                                                               \
  "  --storage WHERE  where models are stored: a directory, or s3://bucket[/prefix]\n"             \
  "                   (default HOME/storage)\n"                                                    \
  "  --catalog FILE   the SQLite catalog (default HOME/catalog.db)\n"                              \
  "  --help           this text\n"

typedef struct ch_cli {
  char home[1024];
  char storage_root[1024];
  char catalog[1024];
} ch_cli;

void ch_cli_init(ch_cli *cli);

/* Handle a common option; returns 1 if it was one. */
int ch_cli_common_option(ch_cli *cli, int opt, const char *arg);

/* Open storage and catalog as the options say. Prints the error and returns non-zero on failure. */
int ch_cli_open_session(const ch_cli *cli, ch_session *s);

/* Parse the options of a command that takes only --json and the common ones: sets *json, and
** leaves optind at the first argument. Returns 0 to go on, -1 after printing usage (--help),
** or 2 after a usage error. */
int ch_cli_parse_json_options(int argc, char **argv, const char *command, const char *usage,
                              ch_cli *cli, int *json);

/* Print "chicane: error: message" to stderr; returns 1 (the exit status). */
int ch_cli_fail(const char *message);

/* Print a usage error with a pointer to --help; returns 2. */
int ch_cli_usage_error(const char *command, const char *message);

#endif
