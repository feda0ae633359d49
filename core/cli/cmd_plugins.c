/* cmd_plugins.c -- `chicane plugins`: every plugin on the search path, or why it failed to load. */
#include "cli.h"
#include "commands.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static const char plugins_usage[] =
    "usage: chicane plugins [--json]\n"
    "\n"
    "List every plugin (*.so) found on the search path: the build's plugin directory, the\n"
    "install directory, then each directory of CHICANE_PLUGIN_PATH (':'-separated). Shows kind,\n"
    "name, version, ABI and path; a file that fails to load is listed with the reason. A plugin\n"
    "shadowed by an earlier one of the same kind and name is marked.\n"
    "\n"
    "options:\n"
    "  --json   print a JSON array instead of text\n"
    "  --help   this text\n";

static void ch__print(const ch_plugin_entry_info *i, void *user) {
  cJSON *arr = user;
  const ch_plugin_header *h = i->header;
  if (arr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", i->path);
    if (h) {
      cJSON_AddStringToObject(o, "kind", ch_plugin_kind_name((int)h->kind));
      cJSON_AddStringToObject(o, "name", h->name);
      cJSON_AddStringToObject(o, "version", h->version);
      cJSON_AddNumberToObject(o, "abi", h->abi_version);
      cJSON_AddStringToObject(o, "summary", h->summary ? h->summary : "");
      cJSON_AddBoolToObject(o, "shadowed", i->shadowed);
    } else {
      cJSON_AddStringToObject(o, "error", i->error->message);
    }
    cJSON_AddItemToArray(arr, o);
  } else if (h) {
    printf("%-8s %-10s %-8s %3u  %s%s\n", ch_plugin_kind_name((int)h->kind), h->name, h->version,
           h->abi_version, i->path, i->shadowed ? "  (shadowed)" : "");
  } else {
    printf("%-8s %-10s %-8s %3s  %s\n         error: %s\n", "?", "?", "?", "-", i->path,
           i->error->message);
  }
}

const char ch_cmd_plugins_summary[] = "plugins\tlist the plugins found on the search path";

int ch_cmd_plugins(int argc, char **argv) {
  ch_cli cli; /* --home and friends are accepted for uniformity; plugins do not live there */
  ch_cli_init(&cli);
  int json = 0;
  int parsed = ch_cli_parse_json_options(argc, argv, "plugins", plugins_usage, &cli, &json);
  if (parsed) return parsed < 0 ? 0 : parsed;
  if (optind != argc) return ch_cli_usage_error("plugins", "takes no arguments");
  cJSON *arr = json ? cJSON_CreateArray() : NULL;
  if (!json) printf("%-8s %-10s %-8s %3s  %s\n", "KIND", "NAME", "VERSION", "ABI", "PATH");
  ch_plugin_scan(ch__print, arr);
  if (json) {
    char *text = cJSON_Print(arr);
    printf("%s\n", text);
    cJSON_free(text);
    cJSON_Delete(arr);
  }
  return 0;
}
