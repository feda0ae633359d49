/* cmd_reward.c -- `chicane reward check FILE`: try a reward function around a track first. */
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "reward.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char reward_usage[] =
    "usage: chicane reward check FILE [--track T] [--json]\n"
    "\n"
    "Like the DeepRacer console's Validate button: load the reward script FILE in the sandbox\n"
    "training uses, then call reward_function on the params of a real simulation (the sim2d\n"
    "env) from positions all around track T: both directions, on the centre line, off centre\n"
    "and driving off the track, at several speeds and steering angles, in a time trial and\n"
    "with objects (boxes, bot cars). Prints the range of the values (min, max, mean, overall\n"
    "and by situation), or the first error with the file, line and the params that caused it.\n"
    "Exit status 0 when every call returned a valid reward, 1 on the first error.\n"
    "\n"
    "options:\n"
    "  --track T        a track name or .track file (default bayside)\n"
    "  --json           print JSON instead of text\n"
    "  --help           this text\n";

#define CH__POSITIONS 24 /* start positions around the track, per direction */

/* Commands tried from each on-track start: straight and slow to full lock and fast. */
static const double ch__commands[][2] = {{0, 1.0}, {15, 2.5}, {-30, 0.5}, {30, 4.0}};
#define CH__NCOMMANDS (sizeof ch__commands / sizeof ch__commands[0])

/* The situations the summary reports separately. */
enum { CH__ALL, CH__ON, CH__OFF, CH__REVERSED, CH__OBJECTS, CH__NGROUPS };
static const char *const ch__group_names[CH__NGROUPS] = {"all", "on_track", "wheels_off",
                                                         "reversed", "with_objects"};

typedef struct ch__range {
  long calls;
  double min, max, sum;
} ch__range;

typedef struct ch__check {
  const char *file, *track;
  char track_path[CH_PATH_MAX];
  int json;
  ch_plugin *env_plugin;
  ch__range group[CH__NGROUPS];
  ch_error err;          /* the first failure */
  int failed_in_script;  /* the failure is the script's (else the env's or ours) */
  ch_env_params bad;     /* the params of the failing call */
  const char *race_type; /* of the env being tried */
} ch__check;

static void ch__count(ch__check *k, const ch_env_params *p, double v) {
  int in[CH__NGROUPS] = {1, p->all_wheels_on_track, !p->all_wheels_on_track, p->is_reversed,
                         p->num_objects > 0};
  for (int g = 0; g < CH__NGROUPS; g++) {
    if (!in[g]) continue;
    ch__range *r = &k->group[g];
    if (r->calls == 0 || v < r->min) r->min = v;
    if (r->calls == 0 || v > r->max) r->max = v;
    r->sum += v;
    r->calls++;
  }
}

/* One reward call; 0 to go on. */
static int ch__call(ch__check *k, ch_reward *r, const ch_env_params *p) {
  double v;
  if (ch_reward_call(r, p, &v, &k->err) != CH_OK) {
    k->failed_in_script = 1;
    k->bad = *p;
    return -1;
  }
  ch__count(k, p, v);
  return 0;
}

/* An episode from opt: step with (steer, speed) up to max_steps times, calling the reward
** after every step. */
static int ch__drive(ch__check *k, ch_env *env, ch_reward *r, const ch_env_reset *opt, double steer,
                     double speed, int max_steps) {
  ch_env_params p;
  float st = (float)steer, sp = (float)speed;
  int32_t status = CH_EPISODE_IN_PROGRESS;
  int rc = env->vt->reset(env->h, 0, opt, NULL, NULL, &p, &k->err);
  if (rc == CH_ERANGE) return 0; /* the track is narrower here than the offset: skip it */
  for (int i = 0; rc == CH_OK && i < max_steps && status == CH_EPISODE_IN_PROGRESS; i++) {
    rc = env->vt->step(env->h, &st, &sp, NULL, NULL, NULL, &p, &status, &k->err);
    if (rc == CH_OK && ch__call(k, r, &p) != 0) return -1;
  }
  return rc == CH_OK ? 0 : -1;
}

/* Every start of one direction: on the track (three lateral positions, each command for a
** few steps) and off it (from near a border, full lock towards it at full speed). */
static int ch__direction(ch__check *k, ch_env *env, ch_reward *r, int reversed) {
  double half = 0.5 * env->spec.track_width;
  static const double lateral[] = {0.0, 0.5, -0.5};
  for (int pos = 0; pos < CH__POSITIONS; pos++) {
    ch_env_reset opt = {(double)pos / CH__POSITIONS, 0.0, reversed, 0, (uint64_t)pos + 1};
    for (size_t l = 0; l < sizeof lateral / sizeof lateral[0]; l++)
      for (size_t c = 0; c < CH__NCOMMANDS; c++) {
        opt.start_offset = lateral[l] * half;
        if (ch__drive(k, env, r, &opt, ch__commands[c][0], ch__commands[c][1], 3)) return -1;
      }
    for (int side = -1; side <= 1; side += 2) {
      opt.start_offset = side * 0.6 * half;
      if (ch__drive(k, env, r, &opt, side * 30.0, 4.0, 60)) return -1;
    }
  }
  return 0;
}

/* The reward in one env configuration, both directions (each with its own reward state and
** the racing line of that direction). */
static int ch__env_case(ch__check *k, const char *race_type) {
  ch_train_config *c = malloc(sizeof *c);
  if (!c) return ch_error_set(&k->err, CH_ENOMEM, "out of memory"), -1;
  ch_config_defaults(c);
  snprintf(c->race_type, sizeof c->race_type, "%s", race_type);
  cJSON *j = ch_config_env_json(c, k->track_path, 1);
  free(c);
  char *json = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  ch_env env;
  k->race_type = race_type;
  int rc = json ? ch_env_create(k->env_plugin, json, &env, &k->err) : CH_ENOMEM;
  cJSON_free(json);
  if (rc != CH_OK) return -1;
  uint32_t n = env.spec.num_waypoints;
  double *wp = calloc((size_t)n * 2 + 2, sizeof(double));
  int got = wp ? env.vt->waypoints(env.h, wp, n) : CH_ENOMEM;
  rc = got < 0 ? ch_error_set(&k->err, got, "env: cannot read the waypoints") : CH_OK;
  for (int rev = 0; rc == CH_OK && rev < 2; rev++) {
    ch_reward_options ro = {wp, (uint32_t)got, 0, 0};
    double *line = NULL, *speed = NULL;
    uint32_t nl = 0;
    ch_reward *r = NULL;
    rc = ch_reward_racing_line(k->track_path, rev, &line, &speed, &nl, &k->err);
    ch_reward_extra ex = {line, speed, nl};
    if (rc == CH_OK && (rc = ch_reward_open_extra(k->file, &ro, &ex, &r, &k->err)) != CH_OK)
      k->failed_in_script = 1;
    if (rc == CH_OK && ch__direction(k, &env, r, rev) != 0) rc = CH_ESCRIPT;
    ch_reward_close(r);
    free(line);
    free(speed);
  }
  free(wp);
  ch_env_destroy(&env);
  return rc == CH_OK ? 0 : -1;
}

/* ---- output -------------------------------------------------------------------------------- */

static cJSON *ch__params_json(const ch_env_params *p) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "steps", p->steps);
  cJSON_AddNumberToObject(o, "x", p->x);
  cJSON_AddNumberToObject(o, "y", p->y);
  cJSON_AddNumberToObject(o, "heading", p->heading);
  cJSON_AddNumberToObject(o, "speed", p->speed);
  cJSON_AddNumberToObject(o, "steering_angle", p->steering_angle);
  cJSON_AddNumberToObject(o, "progress", p->progress);
  cJSON_AddNumberToObject(o, "distance_from_center", p->distance_from_center);
  cJSON_AddBoolToObject(o, "all_wheels_on_track", p->all_wheels_on_track);
  cJSON_AddBoolToObject(o, "is_offtrack", p->is_offtrack);
  cJSON_AddBoolToObject(o, "is_reversed", p->is_reversed);
  cJSON_AddNumberToObject(o, "num_objects", p->num_objects);
  return o;
}

static void ch__print_json(const ch__check *k, int ok) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "file", k->file);
  cJSON_AddStringToObject(o, "track", k->track);
  cJSON_AddBoolToObject(o, "ok", ok);
  if (!ok) {
    cJSON_AddStringToObject(o, "error", k->err.message);
    if (k->failed_in_script && k->bad.steps > 0) {
      cJSON_AddStringToObject(o, "race_type", k->race_type);
      cJSON_AddItemToObject(o, "params", ch__params_json(&k->bad));
    }
  }
  cJSON_AddNumberToObject(o, "calls", (double)k->group[CH__ALL].calls);
  for (int g = 0; ok && g < CH__NGROUPS; g++) {
    const ch__range *r = &k->group[g];
    cJSON *v = cJSON_AddObjectToObject(o, ch__group_names[g]);
    cJSON_AddNumberToObject(v, "calls", (double)r->calls);
    if (r->calls == 0) continue;
    cJSON_AddNumberToObject(v, "min", r->min);
    cJSON_AddNumberToObject(v, "max", r->max);
    cJSON_AddNumberToObject(v, "mean", r->sum / (double)r->calls);
  }
  char *text = cJSON_Print(o);
  printf("%s\n", text);
  cJSON_free(text);
  cJSON_Delete(o);
}

static void ch__print_text(const ch__check *k) {
  static const char *const labels[CH__NGROUPS] = {"all calls", "on track", "wheels off", "reversed",
                                                  "with objects"};
  printf("%s on %s: %ld calls (both directions, on and off the track, time trial, objects, "
         "bots)\n",
         k->file, k->track, k->group[CH__ALL].calls);
  printf("  %-13s %8s %12s %12s %12s\n", "", "calls", "min", "max", "mean");
  for (int g = 0; g < CH__NGROUPS; g++) {
    const ch__range *r = &k->group[g];
    if (r->calls == 0) {
      printf("  %-13s %8ld %12s %12s %12s\n", labels[g], 0L, "-", "-", "-");
      continue;
    }
    printf("  %-13s %8ld %12.6g %12.6g %12.6g\n", labels[g], r->calls, r->min, r->max,
           r->sum / (double)r->calls);
  }
  const ch__range *on = &k->group[CH__ON], *off = &k->group[CH__OFF];
  if (on->calls && off->calls && off->max >= on->sum / (double)on->calls)
    printf("note: driving off the track can pay as much as staying on it (off-track max %g >= "
           "on-track mean %g)\n",
           off->max, on->sum / (double)on->calls);
  printf("ok\n");
}

static void ch__print_failure(const ch__check *k) {
  fprintf(stderr, "chicane: error: %s\n", k->err.message);
  if (!k->failed_in_script || k->bad.steps <= 0) return;
  const ch_env_params *p = &k->bad;
  fprintf(stderr,
          "  params (%s on %s%s): x=%.3f y=%.3f heading=%.1f speed=%.2f steering_angle=%.1f "
          "progress=%.2f distance_from_center=%.3f all_wheels_on_track=%s is_offtrack=%s "
          "objects=%u\n",
          k->race_type, k->track, p->is_reversed ? ", reversed" : "", p->x, p->y, p->heading,
          p->speed, p->steering_angle, p->progress, p->distance_from_center,
          p->all_wheels_on_track ? "true" : "false", p->is_offtrack ? "true" : "false",
          p->num_objects);
}

/* ---- the command ----------------------------------------------------------------------- */

static int ch__parse(int argc, char **argv, ch__check *k) {
  static const struct option opts[] = {{"track", required_argument, NULL, 't'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 't') {
      k->track = optarg;
    } else if (c == 'j') {
      k->json = 1;
    } else if (c == 'h') {
      fputs(reward_usage, stdout);
      return -1;
    } else {
      return ch_cli_usage_error("reward check", "unknown option");
    }
  }
  if (optind != argc - 1) return ch_cli_usage_error("reward check", "needs exactly one FILE");
  k->file = argv[optind];
  return 0;
}

static int ch__run_check(ch__check *k) {
  ch_error e;
  if (ch_resolve_track(k->track, k->track_path, sizeof k->track_path, &e) != CH_OK)
    return ch_cli_fail(e.message);
  if (ch_plugin_find(CH_PLUGIN_ENV, "sim2d", &k->env_plugin, &e) != CH_OK)
    return ch_cli_fail(e.message);
  static const char *const races[] = {"time_trial", "object_avoidance", "head_to_head"};
  int failed = 0;
  for (size_t i = 0; !failed && i < sizeof races / sizeof races[0]; i++)
    failed = ch__env_case(k, races[i]) != 0;
  ch_plugin_close(k->env_plugin);
  if (k->json)
    ch__print_json(k, !failed);
  else if (failed)
    ch__print_failure(k);
  else
    ch__print_text(k);
  return failed;
}

const char ch_cmd_reward_summary[] =
    "reward check FILE\ttry a reward function on positions around a track (--track T)";

int ch_cmd_reward(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(reward_usage, stdout);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "check") != 0)
    return ch_cli_usage_error("reward", "the subcommand is `chicane reward check FILE`");
  ch__check *k = calloc(1, sizeof *k);
  if (!k) return ch_cli_fail("out of memory");
  k->track = "bayside";
  int rc = ch__parse(argc - 1, argv + 1, k);
  if (rc == 0) rc = ch__run_check(k);
  free(k);
  return rc < 0 ? 0 : rc;
}
