/* cmd_models.c -- `chicane models [show NAME]`: the catalog's models and their checkpoints. */
#include "cli.h"
#include "commands.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char models_usage[] =
    "usage: chicane models [show NAME] [options]\n"
    "\n"
    "Without arguments, list every model in the catalog: name, track, status, iterations,\n"
    "env steps, the last iteration's mean progress, and when it was created. `show NAME` prints\n"
    "one model's whole record: configuration, checkpoints (with metrics) and evaluations.\n"
    "\n"
    "options:\n"
    "  --json           print JSON instead of text\n" CH_CLI_COMMON_HELP;

static void ch__time(int64_t t, char *out, size_t n) {
  time_t tt = (time_t)t;
  struct tm tm;
  localtime_r(&tt, &tm);
  strftime(out, n, "%Y-%m-%d %H:%M", &tm);
}

static double ch__metric(const char *metrics_json, const char *key) {
  cJSON *m = cJSON_Parse(metrics_json ? metrics_json : "");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
  double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
  cJSON_Delete(m);
  return d;
}

typedef struct ch__list_ctx {
  ch_session *s;
  cJSON *json; /* array when --json */
  int count;
} ch__list_ctx;

static int ch__list_one(const ch_model_info *m, void *user) {
  ch__list_ctx *c = user;
  ch_checkpoint_info ck;
  int have = ch_catalog_latest_checkpoint(c->s->cat, m->name, &ck, NULL) == CH_OK;
  double progress = have ? ch__metric(ck.metrics_json, "mean_progress") : 0;
  long long iters = have ? (long long)ck.iteration + 1 : 0, steps = have ? ck.env_steps : 0;
  char when[32];
  ch__time(m->created, when, sizeof when);
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "track", m->track ? m->track : "");
    cJSON_AddStringToObject(o, "status", m->status ? m->status : "");
    cJSON_AddNumberToObject(o, "iterations", (double)iters);
    cJSON_AddNumberToObject(o, "env_steps", (double)steps);
    cJSON_AddNumberToObject(o, "mean_progress", progress);
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddItemToArray(c->json, o);
  } else {
    printf("%-24s %-14s %-9s %10lld %12lld %8.1f%%  %s\n", m->name, m->track ? m->track : "",
           m->status ? m->status : "", iters, steps, progress, when);
  }
  if (have) ch_checkpoint_info_free(&ck);
  c->count++;
  return 0;
}

static int ch__list(ch_session *s, int json) {
  ch__list_ctx c = {s, json ? cJSON_CreateArray() : NULL, 0};
  if (!json)
    printf("%-24s %-14s %-9s %10s %12s %9s  %s\n", "NAME", "TRACK", "STATUS", "ITERATIONS",
           "ENV STEPS", "PROGRESS", "CREATED");
  ch_error err = {0, ""};
  int rc = ch_catalog_list_models(s->cat, ch__list_one, &c, &err);
  if (json) {
    char *text = cJSON_Print(c.json);
    printf("%s\n", text);
    cJSON_free(text);
    cJSON_Delete(c.json);
  } else if (c.count == 0) {
    printf("(no models yet: chicane train scripts/default.lua)\n");
  }
  return rc == CH_OK ? 0 : ch_cli_fail(err.message);
}

static int ch__add_checkpoint(const ch_checkpoint_info *ck, void *user) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "iteration", (double)ck->iteration);
  cJSON_AddNumberToObject(o, "episodes", (double)ck->episodes);
  cJSON_AddNumberToObject(o, "env_steps", (double)ck->env_steps);
  cJSON_AddNumberToObject(o, "wall_seconds", ck->wall_seconds);
  cJSON_AddStringToObject(o, "storage_key", ck->storage_key ? ck->storage_key : "");
  cJSON_AddStringToObject(o, "sha256", ck->sha256 ? ck->sha256 : "");
  cJSON_AddItemToObject(o, "metrics", cJSON_Parse(ck->metrics_json ? ck->metrics_json : "{}"));
  cJSON_AddItemToArray(user, o);
  return 0;
}

static int ch__add_evaluation(const ch_evaluation_info *e, void *user) {
  cJSON *o = cJSON_Parse(e->results_json ? e->results_json : "{}");
  if (!o) o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "iteration", (double)e->iteration);
  cJSON_AddNumberToObject(o, "created", (double)e->created);
  cJSON_AddItemToArray(user, o);
  return 0;
}

static cJSON *ch__model_json(ch_session *s, const ch_model_info *m, ch_error *err) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", m->name);
  cJSON_AddStringToObject(o, "track", m->track ? m->track : "");
  cJSON_AddStringToObject(o, "status", m->status ? m->status : "");
  cJSON_AddStringToObject(o, "reward_script", m->reward_script ? m->reward_script : "");
  cJSON_AddStringToObject(o, "reward_sha256", m->reward_sha256 ? m->reward_sha256 : "");
  cJSON_AddStringToObject(o, "storage", m->storage ? m->storage : "");
  cJSON_AddNumberToObject(o, "created", (double)m->created);
  cJSON_AddItemToObject(o, "config", cJSON_Parse(m->config_json ? m->config_json : "{}"));
  cJSON *cks = cJSON_AddArrayToObject(o, "checkpoints");
  cJSON *evs = cJSON_AddArrayToObject(o, "evaluations");
  if (ch_catalog_list_checkpoints(s->cat, m->name, ch__add_checkpoint, cks, err) != CH_OK ||
      ch_catalog_list_evaluations(s->cat, m->name, ch__add_evaluation, evs, err) != CH_OK) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static void ch__show_text(const cJSON *o) {
  static const char *const fields[] = {"name",          "track",   "status", "reward_script",
                                       "reward_sha256", "storage", NULL};
  for (const char *const *f = fields; *f; f++)
    printf("%-14s %s\n", *f, cJSON_GetObjectItem(o, *f)->valuestring);
  char *cfg = cJSON_Print(cJSON_GetObjectItem(o, "config"));
  printf("config         %s\n", cfg ? cfg : "{}");
  cJSON_free(cfg);
  const cJSON *ck;
  printf("\n%9s %9s %11s %8s %10s %9s %6s\n", "ITERATION", "EPISODES", "ENV STEPS", "SECONDS",
         "REWARD", "PROGRESS", "LAPS");
  cJSON_ArrayForEach(ck, cJSON_GetObjectItem(o, "checkpoints")) {
    const cJSON *m = cJSON_GetObjectItem(ck, "metrics");
    printf("%9.0f %9.0f %11.0f %8.1f %10.2f %8.1f%% %5.0f%%\n",
           cJSON_GetObjectItem(ck, "iteration")->valuedouble,
           cJSON_GetObjectItem(ck, "episodes")->valuedouble,
           cJSON_GetObjectItem(ck, "env_steps")->valuedouble,
           cJSON_GetObjectItem(ck, "wall_seconds")->valuedouble,
           cJSON_GetNumberValue(cJSON_GetObjectItem(m, "mean_reward")),
           cJSON_GetNumberValue(cJSON_GetObjectItem(m, "mean_progress")),
           100 * cJSON_GetNumberValue(cJSON_GetObjectItem(m, "completion_rate")));
  }
  const cJSON *ev;
  cJSON_ArrayForEach(ev, cJSON_GetObjectItem(o, "evaluations")) {
    char *t = cJSON_PrintUnformatted(ev);
    printf("evaluation     %s\n", t ? t : "");
    cJSON_free(t);
  }
}

static int ch__show(ch_session *s, const char *name, int json) {
  ch_model_info m;
  ch_error err = {0, ""};
  if (ch_catalog_get_model(s->cat, name, &m, &err) != CH_OK) return ch_cli_fail(err.message);
  cJSON *o = ch__model_json(s, &m, &err);
  ch_model_info_free(&m);
  if (!o) return ch_cli_fail(err.message);
  if (json) {
    char *text = cJSON_Print(o);
    printf("%s\n", text);
    cJSON_free(text);
  } else {
    ch__show_text(o);
  }
  cJSON_Delete(o);
  return 0;
}

const char ch_cmd_models_summary[] =
    "models [show NAME]\tlist the models in the catalog, or show one";

int ch_cmd_models(int argc, char **argv) {
  ch_cli cli;
  ch_cli_init(&cli);
  int json = 0;
  int parsed = ch_cli_parse_json_options(argc, argv, "models", models_usage, &cli, &json);
  if (parsed) return parsed < 0 ? 0 : parsed;
  int nargs = argc - optind;
  if (nargs != 0 && !(nargs == 2 && strcmp(argv[optind], "show") == 0))
    return ch_cli_usage_error("models", "expected no arguments or `show NAME`");
  ch_session s;
  if (ch_cli_open_session(&cli, &s)) return 1;
  int rc = nargs == 0 ? ch__list(&s, json) : ch__show(&s, argv[optind + 1], json);
  ch_session_close(&s);
  return rc;
}
