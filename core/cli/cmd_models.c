/* cmd_models.c -- `chicane models`: list, show, clone, delete, export, import, rebuild. */
#include "cli.h"
#include "commands.h"
#include "model_io.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char models_usage[] =
    "usage: chicane models [COMMAND ARGS] [options]\n"
    "\n"
    "The models in the catalog and in storage.\n"
    "\n"
    "commands:\n"
    "  (none)             list every model: name, track, status, iterations, best progress of\n"
    "                     an iteration, best evaluated lap, and when it was created\n"
    "  show NAME          one model's whole record: configuration, checkpoints, evaluations\n"
    "                     (per trial), training runs\n"
    "  clone SRC DST      a new model DST with SRC's configuration and latest weights (status\n"
    "                     ready): training or evaluating DST starts from SRC's weights\n"
    "  delete NAME --yes  remove the model's stored objects and catalog rows (refuses without\n"
    "                     --yes)\n"
    "  export NAME DIR    write a DeepRacer-style folder: model_metadata.json,\n"
    "                     hyperparameters.json, reward_function.lua, training_config.json,\n"
    "                     model.ckpt + checkpoint.json (iteration, sha256), metrics.json,\n"
    "                     evaluations and sim-traces\n"
    "  import DIR         read such a folder back (the weights' sha256 is checked)\n"
    "  rebuild            recreate the catalog's rows from storage alone\n"
    "\n"
    "options:\n"
    "  --json             print JSON instead of text\n"
    "  --yes              confirm `delete`\n"
    "  --name N           `import` under this name (default: the folder's model "
    "name)\n" CH_CLI_COMMON_HELP;

typedef struct ch__models_args {
  ch_cli cli;
  int json, yes;
  const char *name;
  const char *cmd; /* NULL: list */
  char **args;
  int nargs;
} ch__models_args;

static void ch__time(int64_t t, char *out, size_t n) {
  time_t tt = (time_t)t;
  struct tm tm;
  localtime_r(&tt, &tm);
  strftime(out, n, "%Y-%m-%d %H:%M", &tm);
}

static void ch__print_json(cJSON *j) {
  char *text = cJSON_Print(j);
  printf("%s\n", text ? text : "null");
  cJSON_free(text);
  cJSON_Delete(j);
}

/* A number, or null when it is 0 (unknown). */
static void ch__add_known(cJSON *o, const char *key, double v) {
  if (v != 0)
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static void ch__add_str(cJSON *o, const char *key, const char *v) {
  cJSON_AddStringToObject(o, key, v ? v : "");
}

/* ---- list ------------------------------------------------------------------------------ */

typedef struct ch__list_ctx {
  ch_session *s;
  cJSON *json; /* array when --json */
  int count, rc;
  ch_error err;
} ch__list_ctx;

static int ch__list_one(const ch_model_info *m, void *user) {
  ch__list_ctx *c = user;
  double progress = 0, lap = 0;
  int64_t checkpoints = 0;
  ch_checkpoint_info ck;
  int have = ch_catalog_latest_checkpoint(c->s->cat, m->name, &ck, NULL) == CH_OK;
  long long iters = have ? (long long)ck.iteration + 1 : 0, steps = have ? ck.env_steps : 0;
  if (have) ch_checkpoint_info_free(&ck);
  c->rc = ch_catalog_model_summary(c->s->cat, m->name, &progress, &lap, &checkpoints, &c->err);
  char when[32], best[32];
  ch__time(m->created, when, sizeof when);
  snprintf(best, sizeof best, lap > 0 ? "%.2fs" : "-", lap);
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    ch__add_str(o, "name", m->name);
    ch__add_str(o, "track", m->track);
    ch__add_str(o, "status", m->status);
    cJSON_AddNumberToObject(o, "iterations", (double)iters);
    cJSON_AddNumberToObject(o, "env_steps", (double)steps);
    cJSON_AddNumberToObject(o, "best_progress", progress);
    ch__add_known(o, "best_lap_time", lap);
    cJSON_AddNumberToObject(o, "created", (double)m->created);
    cJSON_AddItemToArray(c->json, o);
  } else {
    printf("%-24s %-14s %-9s %10lld %8.1f%% %9s  %s\n", m->name, m->track ? m->track : "",
           m->status ? m->status : "", iters, progress, best, when);
  }
  c->count++;
  return c->rc != CH_OK;
}

static int ch__list(ch_session *s, int json) {
  ch__list_ctx c = {s, json ? cJSON_CreateArray() : NULL, 0, CH_OK, {0, ""}};
  if (!json)
    printf("%-24s %-14s %-9s %10s %9s %9s  %s\n", "NAME", "TRACK", "STATUS", "ITERATIONS",
           "PROGRESS", "BEST LAP", "CREATED");
  int rc = ch_catalog_list_models(s->cat, ch__list_one, &c, &c.err);
  if (rc == CH_OK) rc = c.rc;
  if (json)
    ch__print_json(c.json);
  else if (c.count == 0)
    printf("(no models yet: chicane train scripts/default.lua)\n");
  return rc == CH_OK ? 0 : ch_cli_fail(c.err.message);
}

/* ---- show ------------------------------------------------------------------------------ */

static int ch__add_checkpoint(const ch_checkpoint_info *ck, void *user) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "iteration", (double)ck->iteration);
  cJSON_AddNumberToObject(o, "episodes", (double)ck->episodes);
  cJSON_AddNumberToObject(o, "env_steps", (double)ck->env_steps);
  cJSON_AddNumberToObject(o, "wall_seconds", ck->wall_seconds);
  ch__add_str(o, "storage_key", ck->storage_key);
  ch__add_str(o, "sha256", ck->sha256);
  cJSON_AddNumberToObject(o, "created", (double)ck->created);
  cJSON *m = cJSON_Parse(ck->metrics_json ? ck->metrics_json : "{}");
  cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateObject());
  cJSON_AddItemToArray(user, o);
  return 0;
}

static cJSON *ch__trials_json(const ch_evaluation_info *e) {
  cJSON *arr = cJSON_CreateArray();
  for (int64_t i = 0; i < e->num_trial_info; i++) {
    const ch_trial_info *t = &e->trial_info[i];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "trial", (double)t->trial);
    cJSON_AddNumberToObject(j, "progress", t->progress);
    ch__add_known(j, "lap_time", t->completed ? t->lap_time : 0);
    ch__add_known(j, "ratio",
                  t->completed && e->reference_lap > 0 ? t->lap_time / e->reference_lap : 0);
    cJSON_AddNumberToObject(j, "off_track", (double)t->off_track);
    cJSON_AddNumberToObject(j, "crashes", (double)t->crashes);
    cJSON_AddNumberToObject(j, "steps", (double)t->steps);
    cJSON_AddBoolToObject(j, "completed", t->completed);
    cJSON_AddItemToArray(arr, j);
  }
  return arr;
}

static int ch__add_evaluation(const ch_evaluation_info *e, void *user) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "id", (double)e->id);
  cJSON_AddNumberToObject(o, "iteration", (double)e->iteration);
  ch__add_str(o, "track", e->track);
  ch__add_str(o, "race_type", e->race_type ? e->race_type : "time_trial");
  cJSON_AddNumberToObject(o, "trials", (double)e->trials);
  cJSON_AddNumberToObject(o, "completed_laps", (double)e->completed_laps);
  ch__add_known(o, "best_lap_time", e->best_lap_time);
  ch__add_known(o, "reference_lap", e->reference_lap);
  ch__add_known(o, "reference_ratio", e->reference_ratio);
  cJSON_AddNumberToObject(o, "off_track", (double)e->off_track);
  cJSON_AddNumberToObject(o, "crashes", (double)e->crashes);
  cJSON_AddNumberToObject(o, "penalty_seconds", e->penalty_seconds);
  cJSON_AddNumberToObject(o, "crash_penalty_seconds", e->crash_penalty_seconds);
  cJSON_AddNumberToObject(o, "created", (double)e->created);
  ch__add_str(o, "storage_key", e->storage_key);
  ch__add_str(o, "simtrace_key", e->simtrace_key);
  cJSON_AddItemToObject(o, "trial_results", ch__trials_json(e));
  cJSON_AddItemToArray(user, o);
  return 0;
}

static int ch__add_run(const ch_run_info *r, void *user) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "id", (double)r->id);
  cJSON_AddNumberToObject(o, "started", (double)r->started);
  ch__add_known(o, "ended", (double)r->ended);
  ch__add_str(o, "stop_reason", r->stop_reason);
  cJSON_AddNumberToObject(o, "iterations", (double)r->iterations);
  cJSON_AddNumberToObject(o, "env_steps", (double)r->env_steps);
  cJSON_AddNumberToObject(o, "wall_seconds", r->wall_seconds);
  ch__add_str(o, "host", r->host);
  ch__add_str(o, "command_line", r->command_line);
  cJSON_AddItemToArray(user, o);
  return 0;
}

static cJSON *ch__model_json(ch_session *s, const ch_model_info *m, ch_error *err) {
  cJSON *o = cJSON_CreateObject();
  ch__add_str(o, "name", m->name);
  ch__add_str(o, "track", m->track);
  ch__add_str(o, "status", m->status);
  ch__add_str(o, "reward_script", m->reward_script);
  ch__add_str(o, "reward_sha256", m->reward_sha256);
  ch__add_str(o, "storage", m->storage);
  cJSON_AddNumberToObject(o, "created", (double)m->created);
  cJSON *cfg = cJSON_Parse(m->config_json ? m->config_json : "{}");
  cJSON_AddItemToObject(o, "config", cfg ? cfg : cJSON_CreateObject());
  cJSON *cks = cJSON_AddArrayToObject(o, "checkpoints");
  cJSON *evs = cJSON_AddArrayToObject(o, "evaluations");
  cJSON *runs = cJSON_AddArrayToObject(o, "runs");
  if (ch_catalog_list_checkpoints(s->cat, m->name, ch__add_checkpoint, cks, err) != CH_OK ||
      ch_catalog_list_evaluations(s->cat, m->name, ch__add_evaluation, evs, err) != CH_OK ||
      ch_catalog_list_runs(s->cat, m->name, ch__add_run, runs, err) != CH_OK) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static double ch__get_num(const cJSON *o, const char *key) {
  return cJSON_GetNumberValue(cJSON_GetObjectItem(o, key));
}

static const char *ch__get_str(const cJSON *o, const char *key) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
  return s ? s : "";
}

#define CH__SHOWN_CHECKPOINTS 10

static void ch__show_checkpoints(const cJSON *cks) {
  int n = cJSON_GetArraySize(cks);
  if (n == 0) {
    printf("checkpoints    none\n");
    return;
  }
  const cJSON *last = cJSON_GetArrayItem(cks, n - 1);
  printf("checkpoints    %d (iterations %.0f..%.0f), %.0f episodes, %.0f env steps, %.1f s\n", n,
         ch__get_num(cJSON_GetArrayItem(cks, 0), "iteration"), ch__get_num(last, "iteration"),
         ch__get_num(last, "episodes"), ch__get_num(last, "env_steps"),
         ch__get_num(last, "wall_seconds"));
  printf("  %9s %9s %11s %8s %10s %9s %6s%s\n", "ITERATION", "EPISODES", "ENV STEPS", "SECONDS",
         "REWARD", "PROGRESS", "LAPS", n > CH__SHOWN_CHECKPOINTS ? "   (the last 10)" : "");
  for (int i = n > CH__SHOWN_CHECKPOINTS ? n - CH__SHOWN_CHECKPOINTS : 0; i < n; i++) {
    const cJSON *ck = cJSON_GetArrayItem(cks, i), *m = cJSON_GetObjectItem(ck, "metrics");
    printf("  %9.0f %9.0f %11.0f %8.1f %10.2f %8.1f%% %5.0f%%\n", ch__get_num(ck, "iteration"),
           ch__get_num(ck, "episodes"), ch__get_num(ck, "env_steps"),
           ch__get_num(ck, "wall_seconds"), ch__get_num(m, "mean_reward"),
           ch__get_num(m, "mean_progress"), 100 * ch__get_num(m, "completion_rate"));
  }
}

static void ch__fmt_known(const cJSON *o, const char *key, const char *fmt, char *out, size_t n) {
  const cJSON *v = cJSON_GetObjectItem(o, key);
  if (cJSON_IsNumber(v))
    snprintf(out, n, fmt, v->valuedouble);
  else
    snprintf(out, n, "-");
}

static void ch__show_evaluations(const cJSON *evs) {
  if (cJSON_GetArraySize(evs) == 0) {
    printf("evaluations    none\n");
    return;
  }
  printf("evaluations    %d\n", cJSON_GetArraySize(evs));
  printf("  %5s %9s %-14s %-16s %5s %9s %9s %6s %4s %5s  %s\n", "ID", "ITERATION", "TRACK",
         "RACE TYPE", "LAPS", "BEST LAP", "REFERENCE", "RATIO", "OFF", "CRASH", "WHEN");
  const cJSON *e;
  cJSON_ArrayForEach(e, evs) {
    char best[32], ref[32], ratio[32], laps[32], when[32];
    ch__fmt_known(e, "best_lap_time", "%.2fs", best, sizeof best);
    ch__fmt_known(e, "reference_lap", "%.2fs", ref, sizeof ref);
    ch__fmt_known(e, "reference_ratio", "%.3f", ratio, sizeof ratio);
    snprintf(laps, sizeof laps, "%.0f/%.0f", ch__get_num(e, "completed_laps"),
             ch__get_num(e, "trials"));
    ch__time((int64_t)ch__get_num(e, "created"), when, sizeof when);
    printf("  %5.0f %9.0f %-14s %-16s %5s %9s %9s %6s %4.0f %5.0f  %s\n", ch__get_num(e, "id"),
           ch__get_num(e, "iteration"), ch__get_str(e, "track"), ch__get_str(e, "race_type"), laps,
           best, ref, ratio, ch__get_num(e, "off_track"), ch__get_num(e, "crashes"), when);
  }
}

static void ch__show_runs(const cJSON *runs) {
  if (cJSON_GetArraySize(runs) == 0) {
    printf("runs           none recorded\n");
    return;
  }
  printf("runs           %d\n", cJSON_GetArraySize(runs));
  const cJSON *r;
  cJSON_ArrayForEach(r, runs) {
    char when[32];
    ch__time((int64_t)ch__get_num(r, "started"), when, sizeof when);
    printf("  %s  %.0f iterations, %.0f env steps, %.1f s on %s: %s\n    %s\n", when,
           ch__get_num(r, "iterations"), ch__get_num(r, "env_steps"),
           ch__get_num(r, "wall_seconds"), ch__get_str(r, "host"),
           cJSON_IsNumber(cJSON_GetObjectItem(r, "ended")) ? ch__get_str(r, "stop_reason")
                                                           : "(running, or interrupted)",
           ch__get_str(r, "command_line"));
  }
}

static void ch__show_text(const cJSON *o) {
  static const char *const fields[] = {"name",          "track",   "status", "reward_script",
                                       "reward_sha256", "storage", NULL};
  for (const char *const *f = fields; *f; f++) printf("%-14s %s\n", *f, ch__get_str(o, *f));
  char when[32];
  ch__time((int64_t)ch__get_num(o, "created"), when, sizeof when);
  printf("%-14s %s\n", "created", when);
  const cJSON *cfg = cJSON_GetObjectItem(o, "config");
  char *as = cJSON_PrintUnformatted(cJSON_GetObjectItem(cfg, "action_space"));
  char *hp = cJSON_PrintUnformatted(cJSON_GetObjectItem(cfg, "hyperparameters"));
  printf("%-14s %s\n%-14s %s\n", "action_space", as ? as : "-", "hyperparams", hp ? hp : "-");
  cJSON_free(as);
  cJSON_free(hp);
  ch__show_checkpoints(cJSON_GetObjectItem(o, "checkpoints"));
  ch__show_evaluations(cJSON_GetObjectItem(o, "evaluations"));
  ch__show_runs(cJSON_GetObjectItem(o, "runs"));
}

static int ch__show(ch_session *s, const char *name, int json) {
  ch_model_info m;
  ch_error err = {0, ""};
  if (ch_catalog_get_model(s->cat, name, &m, &err) != CH_OK) return ch_cli_fail(err.message);
  cJSON *o = ch__model_json(s, &m, &err);
  ch_model_info_free(&m);
  if (!o) return ch_cli_fail(err.message);
  if (json) {
    ch__print_json(o);
  } else {
    ch__show_text(o);
    cJSON_Delete(o);
  }
  return 0;
}

/* ---- changes --------------------------------------------------------------------------- */

static int ch__done(int rc, const ch_error *err, int json, cJSON *result, const char *text) {
  if (rc != CH_OK) {
    cJSON_Delete(result);
    return ch_cli_fail(err->message);
  }
  if (json)
    ch__print_json(result);
  else {
    cJSON_Delete(result);
    printf("%s\n", text);
  }
  return 0;
}

static int ch__clone(ch_session *s, const ch__models_args *a) {
  ch_error err = {0, ""};
  int rc = ch_model_clone(s, a->args[0], a->args[1], &err);
  cJSON *j = cJSON_CreateObject();
  ch__add_str(j, "cloned", a->args[0]);
  ch__add_str(j, "name", a->args[1]);
  char text[600];
  snprintf(text, sizeof text, "cloned '%s' as '%s' (status ready)", a->args[0], a->args[1]);
  return ch__done(rc, &err, a->json, j, text);
}

static int ch__delete(ch_session *s, const ch__models_args *a) {
  if (!a->yes) {
    fprintf(stderr,
            "chicane models: deleting '%s' removes its checkpoints, evaluations and "
            "sim-traces for good; run again with --yes to confirm\n",
            a->args[0]);
    return 2;
  }
  ch_error err = {0, ""};
  int rc = ch_model_delete(s, a->args[0], &err);
  cJSON *j = cJSON_CreateObject();
  ch__add_str(j, "deleted", a->args[0]);
  char text[600];
  snprintf(text, sizeof text, "deleted '%s'", a->args[0]);
  return ch__done(rc, &err, a->json, j, text);
}

static int ch__export(ch_session *s, const ch__models_args *a) {
  ch_error err = {0, ""};
  int rc = ch_model_export(s, a->args[0], a->args[1], &err);
  cJSON *j = cJSON_CreateObject();
  ch__add_str(j, "exported", a->args[0]);
  ch__add_str(j, "dir", a->args[1]);
  char text[4200];
  snprintf(text, sizeof text, "exported '%s' to %s", a->args[0], a->args[1]);
  return ch__done(rc, &err, a->json, j, text);
}

static int ch__import(ch_session *s, const ch__models_args *a) {
  ch_error err = {0, ""};
  char name[256] = "";
  int rc = ch_model_import(s, a->args[0], a->name, name, sizeof name, &err);
  cJSON *j = cJSON_CreateObject();
  ch__add_str(j, "imported", a->args[0]);
  ch__add_str(j, "name", name);
  char text[4400];
  snprintf(text, sizeof text, "imported %s as '%s'", a->args[0], name);
  return ch__done(rc, &err, a->json, j, text);
}

static int ch__rebuild(ch_session *s, const ch__models_args *a) {
  ch_error err = {0, ""};
  ch_rebuild_stats st;
  int rc = ch_models_rebuild(s, &st, &err);
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "models", st.models);
  cJSON_AddNumberToObject(j, "checkpoints", st.checkpoints);
  cJSON_AddNumberToObject(j, "evaluations", st.evaluations);
  cJSON_AddNumberToObject(j, "runs", st.runs);
  cJSON_AddNumberToObject(j, "skipped", st.skipped);
  char text[1400];
  snprintf(text, sizeof text,
           "rebuilt %s from %s: %d models, %d checkpoints, %d evaluations, %d runs (%d folders "
           "skipped)",
           s->catalog_path, s->storage_desc, st.models, st.checkpoints, st.evaluations, st.runs,
           st.skipped);
  return ch__done(rc, &err, a->json, j, text);
}

/* ---- dispatch -------------------------------------------------------------------------- */

typedef struct ch__subcommand {
  const char *name;
  int nargs;
  int (*run)(ch_session *s, const ch__models_args *a);
  const char *usage;
} ch__subcommand;

static int ch__show_cmd(ch_session *s, const ch__models_args *a) {
  return ch__show(s, a->args[0], a->json);
}

static const ch__subcommand ch__subcommands[] = {
    {"show", 1, ch__show_cmd, "show NAME"},
    {"clone", 2, ch__clone, "clone SRC DST"},
    {"delete", 1, ch__delete, "delete NAME --yes"},
    {"export", 2, ch__export, "export NAME DIR"},
    {"import", 1, ch__import, "import DIR [--name N]"},
    {"rebuild", 0, ch__rebuild, "rebuild"},
};

static int ch__parse(int argc, char **argv, ch__models_args *a) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"yes", no_argument, NULL, 'y'},
                                       {"name", required_argument, NULL, 'n'},
                                       CH_CLI_COMMON_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(&a->cli, c, optarg)) continue;
    if (c == 'j')
      a->json = 1;
    else if (c == 'y')
      a->yes = 1;
    else if (c == 'n')
      a->name = optarg;
    else if (c == 'h')
      return fputs(models_usage, stdout), -1;
    else
      return ch_cli_usage_error("models", "unknown option");
  }
  a->cmd = optind < argc ? argv[optind] : NULL;
  a->args = argv + optind + 1;
  a->nargs = argc - optind - 1;
  return 0;
}

const char ch_cmd_models_summary[] =
    "models [show|clone|delete|export|import|rebuild]\tlist, inspect and move models";

int ch_cmd_models(int argc, char **argv) {
  ch__models_args a;
  memset(&a, 0, sizeof a);
  ch_cli_init(&a.cli);
  int rc = ch__parse(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  const ch__subcommand *sub = NULL;
  for (size_t i = 0; a.cmd && i < sizeof ch__subcommands / sizeof ch__subcommands[0]; i++)
    if (strcmp(a.cmd, ch__subcommands[i].name) == 0) sub = &ch__subcommands[i];
  char msg[128];
  if (a.cmd && !sub) {
    snprintf(msg, sizeof msg, "unknown command '%.40s'", a.cmd);
    return ch_cli_usage_error("models", msg);
  }
  if (sub && a.nargs != sub->nargs) {
    snprintf(msg, sizeof msg, "usage: chicane models %s", sub->usage);
    return ch_cli_usage_error("models", msg);
  }
  ch_session s;
  if (ch_cli_open_session(&a.cli, &s)) return 1;
  rc = sub ? sub->run(&s, &a) : ch__list(&s, a.json);
  ch_session_close(&s);
  return rc;
}
