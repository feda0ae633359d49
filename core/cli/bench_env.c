/* bench_env.c -- `chicane bench env`: env plugin steps/s per sensor and race type, as JSON. */
#include "bench.h"

#include "cli.h"
#include "clock.h"
#include "loader.h"
#include "paths.h"
#include "reward.h"
#include "runtime.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char bench_env_usage[] =
    "usage: chicane bench env [--seconds S] [--repeat R] [--cars N] [--track T] [--plugin NAME]\n"
    "\n"
    "Measure on one thread, each for S seconds, in car-steps per second (one step of one car);\n"
    "each figure is the best of R runs, since other processes can only slow a run down:\n"
    "  kinematics        a plain kinematic-bicycle loop (4 substeps, no track queries): the\n"
    "                    baseline every other figure is divided by (ratio)\n"
    "  state_reward      state sensor + rewards/follow_center_line.lua per car-step (target 1e6)\n"
    "  state             the env alone with the state sensor\n"
    "  camera_160x120    state + front camera, frames/s (target 20000); camera_80x60 likewise\n"
    "  stereo_160x120    state + stereo cameras (two frames per step)\n"
    "  lidar_objects     state + lidar, object avoidance with 3 boxes (target 200000)\n"
    "  reward_call_us    microseconds (thread CPU time) per reward_function call, for each file\n"
    "                    in rewards/, on time-trial params and on object-avoidance params (3\n"
    "                    boxes); the four official DeepRacer examples have a target of 1 us\n"
    "  state_reward_2_threads  state_reward on two threads (one env and one Lua state each) and\n"
    "                    its scaling over one thread\n"
    "\n"
    "options:\n"
    "  --seconds S   per measurement (default 1)\n"
    "  --repeat R    runs of each measurement, the best counts (default 3)\n"
    "  --cars N      cars per env handle (default 64)\n"
    "  --track T     track name or path (default bayside)\n"
    "  --plugin NAME env plugin (default sim2d)\n"
    "  --help        this text\n";

/* CPU time of this thread: a call's cost without the time other processes take the core. */
static double ch__cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------ */
/* The baseline: the car model alone                                                           */
/* ------------------------------------------------------------------------------------------ */

/* The same kinematic bicycle as sim2d's car.c (ramps, grip limit, 4 substeps, the heading's
** cosine and sine turned by half-turn rotations), written out here because a plugin's
** internals are not callable: what is left of a step when the track is taken away. */
typedef struct ch__car {
  double x, y, yaw, cs, sn, v;
} ch__car;

static void ch__bicycle(ch__car *c, double k, double target) {
  const double dt = 1.0 / 15 / 4, mu_g = 0.5 * 9.81, pi = 3.14159265358979323846;
  for (int n = 0; n < 4; n++) {
    double dv = target - c->v;
    c->v += dv < -6 * dt ? -6 * dt : dv > 4 * dt ? 4 * dt : dv;
    double kk = c->v * c->v * fabs(k) > mu_g ? copysign(mu_g / (c->v * c->v), k) : k;
    double h = 0.5 * c->v * kk * dt, h2 = h * h;
    double hc = 1 - h2 * (1.0 / 2 - h2 * (1.0 / 24 - h2 * (1.0 / 720 - h2 * (1.0 / 40320))));
    double hs = h * (1 - h2 * (1.0 / 6 - h2 * (1.0 / 120 - h2 * (1.0 / 5040 - h2 / 362880))));
    double mc = c->cs * hc - c->sn * hs, ms = c->sn * hc + c->cs * hs;
    c->x += c->v * dt * mc;
    c->y += c->v * dt * ms;
    c->cs = mc * hc - ms * hs, c->sn = ms * hc + mc * hs;
    c->yaw += 2 * h;
  }
  double norm = 1.5 - 0.5 * (c->cs * c->cs + c->sn * c->sn);
  c->cs *= norm, c->sn *= norm;
  if (c->yaw > pi) c->yaw -= 2 * pi;
  if (c->yaw <= -pi) c->yaw += 2 * pi;
}

static double ch__kinematics(uint32_t cars, double seconds) {
  ch__car *c = calloc(cars, sizeof *c);
  if (!c) return 0;
  for (uint32_t i = 0; i < cars; i++) c[i].cs = 1;
  long long steps = 0;
  double t0 = ch_clock_now(), t = t0;
  while (t - t0 < seconds) {
    for (int n = 0; n < 64; n++)
      for (uint32_t i = 0; i < cars; i++) {
        /* A command that changes every step, as a policy's does: tan() each time. */
        double steer = (double)((i * 7 + (uint32_t)n) % 61) - 30;
        ch__bicycle(&c[i], tan(steer * (3.14159265358979323846 / 180)) / 0.164, 1.5);
      }
    steps += 64LL * cars;
    t = ch_clock_now();
  }
  volatile double sink = c[0].x + c[0].y; /* keeps the loop from being optimised away */
  (void)sink;
  free(c);
  return (double)steps / (t - t0);
}

/* ------------------------------------------------------------------------------------------ */
/* Env runs                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch__run {
  const ch_plugin *plugin;
  const char *config;      /* env JSON */
  const char *reward_path; /* NULL: no reward */
  double seconds;
  pthread_barrier_t *start; /* NULL on one thread */
  int waited;               /* passed the start barrier */
  double steps_per_s;       /* out */
  int rc;
  ch_error err;
} ch__run;

/* Buffers of one run, allocated before the clock starts. */
typedef struct ch__bufs {
  float *obs, *steer, *speed;
  uint8_t *image;
  ch_env_params *par;
  int32_t *status;
  double *waypoints;
} ch__bufs;

static int ch__bufs_alloc(ch__bufs *b, const ch_env_spec *sp) {
  size_t n = sp->num_cars, img = (size_t)sp->image_width * sp->image_height * sp->image_channels;
  b->obs = calloc(n * sp->obs_size + 1, sizeof(float));
  b->steer = calloc(n, sizeof(float));
  b->speed = calloc(n, sizeof(float));
  b->image = calloc(n * img + 1, 1);
  b->par = calloc(n, sizeof(ch_env_params));
  b->status = calloc(n, sizeof(int32_t));
  b->waypoints = calloc(2 * (size_t)sp->num_waypoints + 2, sizeof(double));
  return b->obs && b->steer && b->speed && b->image && b->par && b->status && b->waypoints;
}

static void ch__bufs_free(ch__bufs *b) {
  free(b->obs), free(b->steer), free(b->speed), free(b->image), free(b->par), free(b->status);
  free(b->waypoints);
}

/* A line follower on the state vector: feed-forward from the curvature ahead, feedback from
** the offset and the heading error. Without a state vector the cars go straight. */
static void ch__policy(const ch_env_spec *sp, const float *obs, float *steer, float *speed) {
  for (uint32_t i = 0; i < sp->num_cars; i++) {
    const float *o = obs + (size_t)i * sp->obs_size;
    steer[i] = sp->obs_size >= 11 ? (float)(atan(0.328 * o[5]) * 57.3 - 25 * o[2] - 40 * o[3]) : 0;
    speed[i] = 1.5f;
  }
}

static int ch__reset(ch_env *env, ch__bufs *b, uint32_t i, uint64_t n, ch_error *err) {
  const ch_env_spec *sp = &env->spec;
  size_t img = (size_t)sp->image_width * sp->image_height * sp->image_channels;
  ch_env_reset start = {(double)(n % 20) / 20, 0, 0, 0, n};
  return env->vt->reset(env->h, i, &start, b->obs + (size_t)i * sp->obs_size, b->image + i * img,
                        &b->par[i], err);
}

/* Step every car until the time is up; count car-steps. */
static int ch__drive(ch__run *r, ch_env *env, ch__bufs *b, ch_reward *reward, long long *steps,
                     double *elapsed) {
  const ch_env_spec *sp = &env->spec;
  uint64_t episodes = sp->num_cars;
  double t0 = ch_clock_now(), t = t0, sum = 0;
  int rc = CH_OK;
  while (rc == CH_OK && t - t0 < r->seconds) {
    for (int n = 0; rc == CH_OK && n < 16; n++) {
      ch__policy(sp, b->obs, b->steer, b->speed);
      rc = env->vt->step(env->h, b->steer, b->speed, NULL, b->obs, b->image, b->par, b->status,
                         &r->err);
      for (uint32_t i = 0; rc == CH_OK && i < sp->num_cars; i++) {
        double v;
        if (reward && (rc = ch_reward_call(reward, &b->par[i], &v, &r->err)) == CH_OK) sum += v;
        if (rc == CH_OK && b->status[i] != CH_EPISODE_IN_PROGRESS)
          rc = ch__reset(env, b, i, episodes++, &r->err);
      }
      *steps += sp->num_cars;
    }
    t = ch_clock_now();
  }
  *elapsed = t - t0;
  return rc;
}

static int ch__run_once(ch__run *r, ch_env *env, ch__bufs *b, ch_reward **reward) {
  int rc = ch_env_create(r->plugin, r->config, env, &r->err);
  if (rc != CH_OK) return rc;
  if (!ch__bufs_alloc(b, &env->spec)) return ch_error_set(&r->err, CH_ENOMEM, "out of memory");
  env->vt->waypoints(env->h, b->waypoints, env->spec.num_waypoints);
  ch_reward_options ro = {b->waypoints, env->spec.num_waypoints, 0, 0};
  if (r->reward_path && (rc = ch_reward_open(r->reward_path, &ro, reward, &r->err)) != CH_OK)
    return rc;
  for (uint32_t i = 0; rc == CH_OK && i < env->spec.num_cars; i++)
    rc = ch__reset(env, b, i, i, &r->err);
  if (rc != CH_OK) return rc;
  if (r->start) pthread_barrier_wait(r->start);
  r->waited = 1;
  long long steps = 0;
  double elapsed = 0;
  rc = ch__drive(r, env, b, *reward, &steps, &elapsed);
  r->steps_per_s = elapsed > 0 ? (double)steps / elapsed : 0;
  return rc;
}

static void *ch__run_thread(void *arg) {
  ch__run *r = arg;
  ch_env env = {0};
  ch__bufs b = {0};
  ch_reward *reward = NULL;
  r->rc = ch__run_once(r, &env, &b, &reward);
  /* A thread that failed to set up still meets the barrier, so its partner is not stuck. */
  if (r->start && !r->waited) pthread_barrier_wait(r->start);
  ch_reward_close(reward);
  ch__bufs_free(&b);
  ch_env_destroy(&env);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Reward call cost                                                                            */
/* ------------------------------------------------------------------------------------------ */

static int ch__cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .lua files of the data directory's rewards/, sorted; returns the count (names malloc'd). */
static int ch__reward_files(char **names, int max, char *dir, size_t dirlen) {
  snprintf(dir, dirlen, "%s/rewards", ch_data_dir());
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && n < max && (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) names[n++] = strdup(e->d_name);
  }
  if (d) closedir(d);
  qsort(names, (size_t)n, sizeof *names, ch__cmp_str);
  return n;
}

/* Microseconds per call of one file on params p, for about seconds; < 0 when it fails (the
** message in err). */
static double ch__reward_cost(const char *path, const ch_reward_options *ro, const ch_env_params *p,
                              double seconds, ch_error *err) {
  ch_reward *r = NULL;
  int rc = ch_reward_open(path, ro, &r, err);
  long long calls = 0;
  double t0 = ch__cpu_now(), t = t0, v;
  while (rc == CH_OK && t - t0 < seconds) {
    for (int n = 0; rc == CH_OK && n < 1000; n++) rc = ch_reward_call(r, p, &v, err);
    calls += 1000;
    t = ch__cpu_now();
  }
  ch_reward_close(r);
  return rc == CH_OK ? 1e6 * (t - t0) / (double)calls : -1;
}

/* An env of one car a few steps into an episode: its params (objects point into the env, so
** it stays open while they are used) and the waypoints the rewards get. */
typedef struct ch__sample {
  ch_env env;
  ch_env_params par;
  double *wp;
  uint32_t nwp;
} ch__sample;

static int ch__sample_open(const ch_plugin *p, const char *track, const char *extra, ch__sample *s,
                           ch_error *err) {
  char cfg[4400];
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\"%s}", track, extra);
  memset(s, 0, sizeof *s);
  int rc = ch_env_create(p, cfg, &s->env, err);
  if (rc != CH_OK) return rc;
  s->nwp = s->env.spec.num_waypoints;
  s->wp = calloc(2 * (size_t)s->nwp + 2, sizeof(double));
  if (!s->wp) return ch_error_set(err, CH_ENOMEM, "out of memory");
  float steer = 0, speed = 1.5f;
  ch_env_reset start = {0.1, 0, 0, 0, 1};
  rc = s->env.vt->reset(s->env.h, 0, &start, NULL, NULL, &s->par, err);
  for (int n = 0; rc == CH_OK && n < 5; n++)
    rc = s->env.vt->step(s->env.h, &steer, &speed, NULL, NULL, NULL, &s->par, NULL, err);
  if (rc == CH_OK) s->env.vt->waypoints(s->env.h, s->wp, s->nwp);
  return rc;
}

static void ch__sample_close(ch__sample *s) {
  free(s->wp);
  if (s->env.h) ch_env_destroy(&s->env);
}

/* DeepRacer's four examples, which issue 4 holds to 1 us a call. */
static int ch__official(const char *name) {
  static const char *const names[] = {"follow_center_line.lua", "stay_inside_borders.lua",
                                      "prevent_zigzag.lua", "object_avoidance.lua"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
    if (strcmp(name, names[k]) == 0) return 1;
  return 0;
}

/* Params of the two kinds a reward meets: a time trial (no objects) and object avoidance with
** 3 boxes (every objects_* list filled). */
static const char *const ch__sample_kinds[2][2] = {
    {"time_trial", ""}, {"object_avoidance", ", \"race_type\": \"object_avoidance\""}};

/* Each file of rewards/: microseconds per call on either kind of params, and for the official
** examples the target and whether both stay under it. */
static int ch__reward_costs(const ch_plugin *p, const char *track, double seconds, int repeat,
                            cJSON *out, ch_error *err) {
  ch__sample smp[2];
  int rc = CH_OK, ok = 0;
  for (; ok < 2 && rc == CH_OK; ok++)
    rc = ch__sample_open(p, track, ch__sample_kinds[ok][1], &smp[ok], err);
  char *names[64], dir[CH_PATH_MAX], path[CH_PATH_MAX + 256];
  int n = rc == CH_OK ? ch__reward_files(names, 64, dir, sizeof dir) : 0;
  for (int k = 0; k < n; k++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    cJSON *o = cJSON_AddObjectToObject(out, names[k]);
    double worst = 0;
    for (int j = 0; j < 2; j++) {
      ch_reward_options ro = {smp[j].wp, smp[j].nwp, 0, 0};
      ch_error e = {0, ""};
      double us = INFINITY; /* the best of repeat runs, as for the env figures */
      for (int k = 0; k < repeat && us >= 0; k++)
        us = fmin(us, ch__reward_cost(path, &ro, &smp[j].par, 0.125 * seconds, &e));
      if (us < 0)
        cJSON_AddStringToObject(o, ch__sample_kinds[j][0], e.message);
      else
        cJSON_AddNumberToObject(o, ch__sample_kinds[j][0], round(1e3 * us) / 1e3);
      worst = us < 0 ? INFINITY : fmax(worst, us);
    }
    if (ch__official(names[k])) {
      cJSON_AddNumberToObject(o, "target", 1);
      cJSON_AddBoolToObject(o, "met", worst < 1);
    }
    free(names[k]);
  }
  for (int j = 0; j < ok; j++) ch__sample_close(&smp[j]);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The report                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch__opts {
  double seconds;
  int repeat;
  uint32_t cars;
  const char *track, *plugin;
} ch__opts;

static int ch__parse(int argc, char **argv, ch__opts *o) {
  static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
                                       {"cars", required_argument, NULL, 'c'},
                                       {"repeat", required_argument, NULL, 'r'},
                                       {"track", required_argument, NULL, 't'},
                                       {"plugin", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  *o = (ch__opts){1.0, 3, 64, "bayside", "sim2d"};
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') return fputs(bench_env_usage, stdout), -1;
    if (c == 't') o->track = optarg;
    if (c == 'p') o->plugin = optarg;
    if (c == 's' && (!((o->seconds = strtod(optarg, &end)) > 0 && o->seconds <= 3600) || *end))
      return ch_cli_usage_error("bench env", "--seconds needs a number in (0, 3600]");
    if (c == 'r' && ((o->repeat = (int)strtol(optarg, &end, 10)) < 1 || o->repeat > 100 || *end))
      return ch_cli_usage_error("bench env", "--repeat needs 1..100");
    if (c == 'c' && ((o->cars = (uint32_t)strtoul(optarg, &end, 10)) < 1 || o->cars > 4096 || *end))
      return ch_cli_usage_error("bench env", "--cars needs 1..4096");
    if (c == '?') return ch_cli_usage_error("bench env", "unknown option");
  }
  if (optind != argc) return ch_cli_usage_error("bench env", "takes no arguments");
  return 0;
}

/* One measurement: value in unit, its ratio to the baseline and, with a target, whether met. */
static cJSON *ch__result(cJSON *results, const char *name, const char *unit, double value,
                         double baseline, double target) {
  cJSON *o = cJSON_AddObjectToObject(results, name);
  cJSON_AddNumberToObject(o, unit, round(value));
  cJSON_AddNumberToObject(o, "ratio", baseline > 0 ? round(1e4 * value / baseline) / 1e4 : 0);
  if (target > 0) {
    cJSON_AddNumberToObject(o, "target", target);
    cJSON_AddBoolToObject(o, "met", value >= target);
  }
  return o;
}

/* One env measurement on one thread (or `threads` at once: the sum of their rates). */
static int ch__measure(const ch_plugin *p, const ch__opts *o, const char *extra, int reward,
                       int threads, double *rate, ch_error *err) {
  char cfg[4400], rpath[CH_PATH_MAX];
  char track[CH_PATH_MAX];
  int rc = ch_resolve_track(o->track, track, sizeof track, err);
  if (rc == CH_OK && reward)
    rc = ch_file_resolve("rewards/follow_center_line.lua", ".", rpath, sizeof rpath, err);
  if (rc != CH_OK) return rc;
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"num_cars\": %u%s}", track, o->cars, extra);
  ch__run runs[2];
  pthread_t tid[2];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  for (int k = 0; k < threads; k++) {
    runs[k] = (ch__run){
        p,     cfg,    reward ? rpath : NULL, o->seconds, threads > 1 ? &start : NULL, 0, 0,
        CH_OK, {0, ""}};
    if (threads == 1)
      ch__run_thread(&runs[k]);
    else
      pthread_create(&tid[k], NULL, ch__run_thread, &runs[k]);
  }
  *rate = 0;
  for (int k = 0; k < threads; k++) {
    if (threads > 1) pthread_join(tid[k], NULL);
    if (runs[k].rc != CH_OK && rc == CH_OK) rc = runs[k].rc, *err = runs[k].err;
    *rate += runs[k].steps_per_s;
  }
  pthread_barrier_destroy(&start);
  return rc;
}

typedef struct ch__case {
  const char *name, *unit, *extra;
  int reward, threads, frames; /* frames: images per car-step (0: report steps) */
  double target;
} ch__case;

static const ch__case ch__cases[] = {
    {"state_reward", "steps_per_s", "", 1, 1, 0, 1e6},
    {"state", "steps_per_s", "", 0, 1, 0, 0},
    {"camera_160x120", "frames_per_s", ", \"sensors\": [\"state\", \"camera\"]", 0, 1, 1, 2e4},
    {"camera_80x60", "frames_per_s",
     ", \"sensors\": [\"state\", \"camera\"], \"camera\": {\"downscale\": 2}", 0, 1, 1, 0},
    {"stereo_160x120", "frames_per_s", ", \"sensors\": [\"state\", \"stereo\"]", 0, 1, 2, 0},
    {"lidar_objects", "steps_per_s",
     ", \"sensors\": [\"state\", \"lidar\"], \"race_type\": \"object_avoidance\"", 0, 1, 0, 2e5},
    {"state_reward_2_threads", "steps_per_s", "", 1, 2, 0, 0},
};

static int ch__report(const ch_plugin *p, const ch__opts *o, cJSON *results, ch_error *err) {
  double base = 0, one = 0;
  for (int n = 0; n < o->repeat; n++) base = fmax(base, ch__kinematics(o->cars, o->seconds));
  ch__result(results, "kinematics", "steps_per_s", base, base, 0);
  for (size_t k = 0; k < sizeof ch__cases / sizeof ch__cases[0]; k++) {
    const ch__case *c = &ch__cases[k];
    double rate = 0, run;
    for (int n = 0; n < o->repeat; n++) {
      int rc = ch__measure(p, o, c->extra, c->reward, c->threads, &run, err);
      if (rc != CH_OK) return rc;
      rate = fmax(rate, run);
    }
    double value = c->frames ? rate * c->frames : rate;
    cJSON *r = ch__result(results, c->name, c->unit, value, base, c->target);
    if (c->frames) cJSON_AddNumberToObject(r, "steps_per_s", round(rate));
    if (k == 0) one = rate;
    if (c->threads > 1) cJSON_AddNumberToObject(r, "scaling", round(1e3 * rate / one) / 1e3);
  }
  char track[CH_PATH_MAX];
  int rc = ch_resolve_track(o->track, track, sizeof track, err);
  if (rc == CH_OK)
    rc = ch__reward_costs(p, track, o->seconds, o->repeat,
                          cJSON_AddObjectToObject(results, "reward_call_us"), err);
  return rc;
}

int ch_bench_env(int argc, char **argv) {
  ch__opts o;
  int parsed = ch__parse(argc, argv, &o);
  if (parsed) return parsed < 0 ? 0 : parsed;
  ch_error err = {0, ""};
  ch_plugin *p = NULL;
  if (ch_plugin_find(CH_PLUGIN_ENV, o.plugin, &p, &err) != CH_OK) return ch_cli_fail(err.message);
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "benchmark", "env");
  cJSON_AddStringToObject(root, "plugin", o.plugin);
  cJSON_AddStringToObject(root, "track", o.track);
  cJSON_AddNumberToObject(root, "cars", o.cars);
  cJSON_AddNumberToObject(root, "seconds", o.seconds);
  cJSON_AddNumberToObject(root, "repeat", o.repeat);
  int rc = ch__report(p, &o, cJSON_AddObjectToObject(root, "results"), &err);
  ch_plugin_close(p);
  if (rc == CH_OK) {
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    cJSON_free(text);
  }
  cJSON_Delete(root);
  return rc == CH_OK ? 0 : ch_cli_fail(err.message);
}
