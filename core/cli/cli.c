/* cli.c -- shared pieces of the chicane subcommands: home directory, session, error output. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ch__derive_paths(ch_cli *cli) {
  snprintf(cli->storage_root, sizeof cli->storage_root, "%s/storage", cli->home);
  snprintf(cli->catalog, sizeof cli->catalog, "%s/catalog.db", cli->home);
}

void ch_cli_init(ch_cli *cli) {
  const char *home = getenv("CHICANE_HOME");
  snprintf(cli->home, sizeof cli->home, "%s", home && *home ? home : ".");
  ch__derive_paths(cli);
}

int ch_cli_common_option(ch_cli *cli, int opt, const char *arg) {
  switch (opt) {
  case 'H':
    snprintf(cli->home, sizeof cli->home, "%s", arg);
    ch__derive_paths(cli);
    return 1;
  case 'S':
    snprintf(cli->storage_root, sizeof cli->storage_root, "%s", arg);
    return 1;
  case 'C':
    snprintf(cli->catalog, sizeof cli->catalog, "%s", arg);
    return 1;
  default:
    return 0;
  }
}

int ch_cli_open_session(const ch_cli *cli, ch_session *s) {
  ch_error err = {0, ""};
  if (ch_session_open_spec(cli->storage_root, cli->catalog, s, &err) != CH_OK)
    return ch_cli_fail(err.message);
  return 0;
}

int ch_cli_fail(const char *message) {
  fprintf(stderr, "chicane: error: %s\n", message);
  return 1;
}

int ch_cli_usage_error(const char *command, const char *message) {
  fprintf(stderr, "chicane %s: %s (see chicane %s --help)\n", command, message, command);
  return 2;
}

int ch_cli_parse_json_options(int argc, char **argv, const char *command, const char *usage,
                              ch_cli *cli, int *json) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'}, CH_CLI_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
  int c;
  *json = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(cli, c, optarg)) continue;
    if (c == 'j')
      *json = 1;
    else if (c == 'h')
      return fputs(usage, stdout), -1;
    else
      return ch_cli_usage_error(command, "unknown option");
  }
  return 0;
}
