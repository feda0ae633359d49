/* cmd_evaluate.c -- `chicane evaluate MODEL`: evaluation laps, stored, as text, JSON or GIF. */
#include "cli.h"
#include "commands.h"
#include "evaluate.h"
#include "paths.h"
#include "viz.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char evaluate_usage[] =
    "usage: chicane evaluate MODEL [options]\n"
    "\n"
    "Drive MODEL's latest checkpoint round a track as DeepRacer's evaluation does: every trial\n"
    "starts at the start line, the policy acts greedily, and a car that leaves the track (or\n"
    "hits an object) is put back with a time penalty. Reports progress, lap time, its ratio to\n"
    "the track's reference lap (the racing line's), off-tracks and crashes per trial. The\n"
    "result is stored in storage (models/MODEL/evaluations/<stamp>.json, the sim-trace CSV in\n"
    "models/MODEL/evaluation-simtrace/<stamp>.csv) and in the catalog.\n"
    "\n"
    "options:\n"
    "  --track T          evaluate on track T (name or .track file; default: the model's)\n"
    "  --trials N         number of trials (default 3)\n"
    "  --race-type R      time_trial, object_avoidance or head_to_head (default: the model's)\n"
    "  --objects JSON     the env's objects options, e.g. '{\"count\": 4}'\n"
    "  --bots JSON        the env's bots options, e.g. '{\"count\": 2, \"speed\": 1.2}'\n"
    "  --env JSON         more env config keys (a JSON object), merged last\n"
    "  --seed N           trial i uses episode seed N + i - 1 (object placement; default 1)\n"
    "  --penalty S        seconds added per off-track (default 5)\n"
    "  --crash-penalty S  seconds added per crash into an object (default 5)\n"
    "  --max-seconds S    a trial still running after S simulated seconds is incomplete (180)\n"
    "  --require-laps N   exit with status 3 unless at least N trials complete the lap\n"
    "  --gif FILE         also write an animated GIF of the first trial\n"
    "  --gif-width PX     its width in pixels (default 480)\n"
    "  --json             print the stored results object instead of text\n" CH_CLI_COMMON_HELP;

typedef struct ch__eval_args {
  ch_cli cli;
  const char *model, *track, *gif, *objects, *bots, *env;
  ch_eval_options eo;
  int json, require_laps, gif_width;
} ch__eval_args;

static int ch__number_arg(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int ch__json_arg(const char *s, const char *option) {
  cJSON *j = cJSON_Parse(s);
  int ok = cJSON_IsObject(j);
  cJSON_Delete(j);
  if (ok) return 0;
  char msg[96];
  snprintf(msg, sizeof msg, "%s needs a JSON object", option);
  return ch_cli_usage_error("evaluate", msg);
}

/* One option; 0 when taken, else the exit status of a usage error. */
static int ch__option(ch__eval_args *a, int c, const char *arg) {
  double v;
  switch (c) {
  case 't':
    a->track = arg;
    return 0;
  case 'n':
    if (!ch__number_arg(arg, 1, CH_EVAL_MAX_TRIALS, &v))
      return ch_cli_usage_error("evaluate", "--trials needs 1..100");
    a->eo.trials = (int)v;
    return 0;
  case 'p':
    return ch__number_arg(arg, 0, 3600, &a->eo.penalty_seconds)
               ? 0
               : ch_cli_usage_error("evaluate", "--penalty needs seconds in [0, 3600]");
  case 'c':
    return ch__number_arg(arg, 0, 3600, &a->eo.crash_penalty_seconds)
               ? 0
               : ch_cli_usage_error("evaluate", "--crash-penalty needs seconds in [0, 3600]");
  case 'm':
    return ch__number_arg(arg, 1, 36000, &a->eo.max_seconds)
               ? 0
               : ch_cli_usage_error("evaluate", "--max-seconds needs seconds in [1, 36000]");
  case 'r':
    if (!ch__number_arg(arg, 0, CH_EVAL_MAX_TRIALS, &v))
      return ch_cli_usage_error("evaluate", "--require-laps needs 0..100");
    a->require_laps = (int)v;
    return 0;
  case 's':
    if (!ch__number_arg(arg, 0, 9007199254740992.0, &v))
      return ch_cli_usage_error("evaluate", "--seed needs a whole number >= 0");
    a->eo.seed = (uint64_t)v;
    return 0;
  case 'R':
    a->eo.race_type = arg;
    return 0;
  case 'o':
    a->objects = arg;
    return ch__json_arg(arg, "--objects");
  case 'b':
    a->bots = arg;
    return ch__json_arg(arg, "--bots");
  case 'e':
    a->env = arg;
    return ch__json_arg(arg, "--env");
  case 'g':
    a->gif = arg;
    return 0;
  case 'w':
    if (!ch__number_arg(arg, 64, 4096, &v))
      return ch_cli_usage_error("evaluate", "--gif-width needs 64..4096 pixels");
    a->gif_width = (int)v;
    return 0;
  case 'j':
    a->json = 1;
    return 0;
  default:
    return ch_cli_usage_error("evaluate", "unknown option");
  }
}

static int ch__parse(int argc, char **argv, ch__eval_args *a) {
  static const struct option opts[] = {{"track", required_argument, NULL, 't'},
                                       {"trials", required_argument, NULL, 'n'},
                                       {"penalty", required_argument, NULL, 'p'},
                                       {"crash-penalty", required_argument, NULL, 'c'},
                                       {"max-seconds", required_argument, NULL, 'm'},
                                       {"require-laps", required_argument, NULL, 'r'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"race-type", required_argument, NULL, 'R'},
                                       {"objects", required_argument, NULL, 'o'},
                                       {"bots", required_argument, NULL, 'b'},
                                       {"env", required_argument, NULL, 'e'},
                                       {"gif", required_argument, NULL, 'g'},
                                       {"gif-width", required_argument, NULL, 'w'},
                                       {"json", no_argument, NULL, 'j'},
                                       CH_CLI_COMMON_OPTIONS,
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (ch_cli_common_option(&a->cli, c, optarg)) continue;
    if (c == 'h') return fputs(evaluate_usage, stdout), -1;
    int rc = ch__option(a, c, optarg);
    if (rc) return rc;
  }
  if (optind != argc - 1) return ch_cli_usage_error("evaluate", "needs exactly one MODEL");
  a->model = argv[optind];
  return 0;
}

/* --objects, --bots and --env as one JSON object of env keys (NULL when none); caller frees. */
static char *ch__env_json(const ch__eval_args *a) {
  if (!a->objects && !a->bots && !a->env) return NULL;
  cJSON *env = a->env ? cJSON_Parse(a->env) : cJSON_CreateObject();
  if (a->objects) {
    cJSON_DeleteItemFromObjectCaseSensitive(env, "objects");
    cJSON_AddItemToObject(env, "objects", cJSON_Parse(a->objects));
  }
  if (a->bots) {
    cJSON_DeleteItemFromObjectCaseSensitive(env, "bots");
    cJSON_AddItemToObject(env, "bots", cJSON_Parse(a->bots));
  }
  char *json = cJSON_PrintUnformatted(env);
  cJSON_Delete(env);
  return json;
}

/* ---- the GIF --------------------------------------------------------------------------- */

/* The first trial's rows and objects, as on_step reports them. */
typedef struct ch__lap {
  ch_simtrace_row *rows;
  size_t n, cap;
  ch_viz_object *objects;
  size_t *offset; /* n + 1 */
  size_t offcap, nobj, objcap;
  int oom;
} ch__lap;

/* p grown to hold need items (*oom set, p kept, when that fails). */
static void *ch__grow(void *p, size_t *cap, size_t need, size_t size, int *oom) {
  if (need <= *cap) return p;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  void *np = realloc(p, c * size);
  if (!np) {
    *oom = 1;
    return p;
  }
  *cap = c;
  return np;
}

static void ch__collect_step(void *user, int trial, const ch_simtrace_row *row,
                             const ch_env_params *p) {
  ch__lap *l = user;
  if (trial != 1 || l->oom) return;
  l->rows = ch__grow(l->rows, &l->cap, l->n + 1, sizeof *l->rows, &l->oom);
  l->offset = ch__grow(l->offset, &l->offcap, l->n + 2, sizeof *l->offset, &l->oom);
  l->objects =
      ch__grow(l->objects, &l->objcap, l->nobj + p->num_objects + 1, sizeof *l->objects, &l->oom);
  if (l->oom) return;
  if (l->n == 0) l->offset[0] = 0;
  l->rows[l->n++] = *row;
  for (uint32_t k = 0; k < p->num_objects; k++) {
    const ch_env_object *o = &p->objects[k];
    int bot = o->kind == CH_OBJECT_BOT_CAR;
    l->objects[l->nobj++] =
        (ch_viz_object){o->x, o->y, o->heading, bot ? 0.324 : 0.5, bot ? 0.196 : 0.4, o->kind};
  }
  l->offset[l->n] = l->nobj;
}

static int ch__write_gif(const ch__eval_args *a, const char *track_name, const ch__lap *l,
                         ch_error *err) {
  if (l->oom) return ch_error_set(err, CH_ENOMEM, "%s: out of memory", a->gif);
  char path[CH_PATH_MAX], title[300];
  ch_track *t = NULL;
  int rc = ch_resolve_track(track_name, path, sizeof path, err);
  if (rc == CH_OK) rc = ch_track_load(path, &t, err);
  snprintf(title, sizeof title, "%s on %s", a->model, track_name);
  ch_viz_gif o = {title, a->gif_width, 2, l->objects, l->offset};
  if (rc == CH_OK) rc = ch_viz_lap_gif(t, l->rows, l->n, &o, a->gif, err);
  ch_track_free(t);
  return rc;
}

/* ---- output ---------------------------------------------------------------------------- */

static void ch__print_text(const ch__eval_args *a, const ch_eval_stored *st,
                           const ch_eval_result *r) {
  printf("evaluation of '%s' (iteration %lld) on %s, %s\n", a->model, (long long)st->iteration,
         st->track, st->race_type);
  printf("trial  progress  lap time   ratio  off-track  crashes\n");
  for (int i = 0; i < r->trials; i++) {
    const ch_eval_trial *t = &r->trial[i];
    char lap[32] = "-", ratio[32] = "-";
    if (t->completed) snprintf(lap, sizeof lap, "%.2fs", t->lap_time);
    if (t->ratio > 0) snprintf(ratio, sizeof ratio, "%.3f", t->ratio);
    printf("%5d  %7.1f%%  %8s  %6s  %9d  %7d\n", i + 1, t->progress, lap, ratio, t->off_track,
           t->crashes);
  }
  printf("completed laps: %d of %d", r->completed_laps, r->trials);
  if (r->best_lap_time > 0) printf("; best lap %.2fs", r->best_lap_time);
  if (r->reference_lap > 0) printf("; reference lap %.2fs", r->reference_lap);
  if (r->best_ratio > 0) printf(" (ratio %.3f)", r->best_ratio);
  printf("\nstored as %s (sim-trace %s)\n", st->key, st->simtrace_key);
}

static void ch__print_json(ch_session *s, const ch_eval_stored *st) {
  void *data = NULL;
  size_t len = 0;
  /* Exactly what was stored, with where it went. */
  cJSON *j = NULL;
  if (s->st->get(s->st_h, st->key, &data, &len, NULL) == CH_OK) {
    j = cJSON_ParseWithLength(data, len);
    s->st->free_data(s->st_h, data);
  }
  if (!j) j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "id", (double)st->id);
  cJSON_AddStringToObject(j, "storage_key", st->key);
  char *text = cJSON_PrintUnformatted(j);
  printf("%s\n", text ? text : "{}");
  cJSON_free(text);
  cJSON_Delete(j);
}

const char ch_cmd_evaluate_summary[] =
    "evaluate MODEL\tdrive a trained model round a track: laps, lap times, off-tracks";

static int ch__run(ch__eval_args *a, ch_session *s, ch_eval_result *r, ch_error *err) {
  ch__lap lap;
  memset(&lap, 0, sizeof lap);
  if (a->gif) {
    a->eo.on_step = ch__collect_step;
    a->eo.on_step_user = &lap;
  }
  char *env = ch__env_json(a);
  a->eo.env_json = env;
  ch_eval_stored st;
  int rc = ch_evaluate_store(s, a->model, a->track, &a->eo, r, &st, err);
  if (rc == CH_OK && a->gif) {
    rc = ch__write_gif(a, st.track, &lap, err);
    ch_viz_release();
  }
  if (rc == CH_OK && a->json) ch__print_json(s, &st);
  if (rc == CH_OK && !a->json) ch__print_text(a, &st, r);
  if (rc == CH_OK && a->gif && !a->json) printf("lap animation written to %s\n", a->gif);
  free(env);
  free(lap.rows);
  free(lap.objects);
  free(lap.offset);
  return rc;
}

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
  ch_error err = {0, ""};
  rc = r ? ch__run(&a, &s, r, &err) : ch_error_set(&err, CH_ENOMEM, "out of memory");
  int laps = rc == CH_OK ? r->completed_laps : 0;
  free(r);
  ch_session_close(&s);
  if (rc != CH_OK) return ch_cli_fail(err.message);
  if (laps < a.require_laps) {
    fprintf(stderr, "chicane: %d of %d required laps completed\n", laps, a.require_laps);
    return 3;
  }
  return 0;
}
