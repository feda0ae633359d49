/* cmd_tracks.c -- `chicane tracks`: list, show, import (DeepRacer .npy) and racing lines. */
#include "cli.h"
#include "commands.h"
#include "paths.h"
#include "track.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char tracks_usage[] =
    "usage: chicane tracks [--json] [--home DIR]\n"
    "       chicane tracks show TRACK [--json]\n"
    "       chicane tracks import FILE.npy [--name NAME] [--force]\n"
    "       chicane tracks line TRACK [--json] [--out FILE.csv]\n"
    "\n"
    "Without a subcommand, list the tracks found: the shipped ones (DATA/tracks) and your own\n"
    "(HOME/tracks), with length, median width, whether they loop, and the file.\n"
    "\n"
    "  show TRACK     facts about one track: length, width (median, min, max), loop, points,\n"
    "                 bounding box, direction, smallest radius and the reference lap time.\n"
    "  import FILE    convert a DeepRacer route (.npy, N x 6 float64: centre, inner, outer) into\n"
    "                 HOME/tracks/NAME.track; NAME defaults to the file's stem.\n"
    "  line TRACK     compute the racing line and its speed profile; print its length, lap time,\n"
    "                 the centre line's lap time and the improvement.\n"
    "\n"
    "TRACK is a name (looked up in DATA/tracks, then HOME/tracks) or a path to a .track or .npy\n"
    "file. Lap times are for sim2d's car (4 m/s, 0.5 g lateral, +4/-6 m/s^2): a flying lap, and\n"
    "from rest at the start line (the reference lap that evaluation compares with).\n"
    "\n"
    "options:\n"
    "  --json           print JSON instead of text\n"
    "  --home DIR       your chicane home (default $CHICANE_HOME or .)\n"
    "  --name NAME      import: the track's name, [A-Za-z0-9_-], at most 63 characters\n"
    "  --force          import: replace HOME/tracks/NAME.track if it exists\n"
    "  --out FILE       line: write the line as CSV rows x,y,v,t\n"
    "  --help           this text\n";

typedef struct ch__opts {
  ch_cli cli;
  int json, force;
  const char *name, *out;
} ch__opts;

static int ch__fail_err(const ch_error *err) {
  return ch_cli_fail(err->message);
}

static void ch__print_json(cJSON *o) {
  char *text = cJSON_Print(o);
  printf("%s\n", text ? text : "null");
  cJSON_free(text);
  cJSON_Delete(o);
}

/* ------------------------------------------------------------------------------------------ */
/* List                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static int ch__cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ch__is_track_file(const char *name) {
  size_t n = strlen(name);
  return n > 6 && strcmp(name + n - 6, ".track") == 0 && name[0] != '.';
}

/* The .track files of dir, sorted; *count of them (0 if the directory does not exist). */
static char **ch__scan(const char *dir, int *count) {
  *count = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **names = NULL;
  int cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!ch__is_track_file(e->d_name)) continue;
    if (*count == cap) {
      char **more = realloc(names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *more);
      if (!more) break;
      names = more;
    }
    if (!(names[*count] = strdup(e->d_name))) break;
    (*count)++;
  }
  closedir(d);
  if (names) qsort(names, (size_t)*count, sizeof *names, ch__cmp_str);
  return names;
}

static void ch__list_one(const char *path, const char *source, cJSON *arr) {
  ch_track *t;
  ch_error err;
  int rc = ch_track_load(path, &t, &err);
  if (arr) {
    cJSON *o = cJSON_CreateObject();
    if (rc == CH_OK) {
      cJSON_AddStringToObject(o, "name", t->name);
      cJSON_AddNumberToObject(o, "length", t->length);
      cJSON_AddNumberToObject(o, "width", t->width);
      cJSON_AddBoolToObject(o, "loop", t->is_loop);
    } else {
      cJSON_AddStringToObject(o, "error", err.message);
    }
    cJSON_AddStringToObject(o, "file", path);
    cJSON_AddStringToObject(o, "source", source);
    cJSON_AddItemToArray(arr, o);
  } else if (rc == CH_OK) {
    printf("%-20s %8.3f %7.3f  %-4s  %s\n", t->name, t->length, t->width, t->is_loop ? "yes" : "no",
           path);
  } else {
    printf("%-20s %8s %7s  %-4s  %s\n%20s error: %s\n", "?", "-", "-", "-", path, "", err.message);
  }
  if (rc == CH_OK) ch_track_free(t);
}

static void ch__list_dir(const char *dir, const char *source, cJSON *arr) {
  int count;
  char **names = ch__scan(dir, &count);
  for (int i = 0; i < count; i++) {
    char path[CH_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    ch__list_one(path, source, arr);
    free(names[i]);
  }
  free(names);
}

/* Two names for one directory (HOME may be the data directory, e.g. the source tree). */
static int ch__same_dir(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int ch__list(const ch__opts *o) {
  char shipped[CH_PATH_MAX], mine[CH_PATH_MAX];
  snprintf(shipped, sizeof shipped, "%s/tracks", ch_data_dir());
  snprintf(mine, sizeof mine, "%s/tracks", o->cli.home);
  cJSON *arr = o->json ? cJSON_CreateArray() : NULL;
  if (!arr) printf("%-20s %8s %7s  %-4s  %s\n", "NAME", "LENGTH", "WIDTH", "LOOP", "FILE");
  ch__list_dir(shipped, "data", arr);
  if (!ch__same_dir(shipped, mine)) ch__list_dir(mine, "home", arr);
  if (arr) ch__print_json(arr);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Show                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static int ch__open(const char *arg, char *path, size_t size, ch_track **t, ch_error *err) {
  int rc = ch_resolve_track(arg, path, size, err);
  return rc ? rc : ch_track_load(path, t, err);
}

static const char *ch__direction(int d) {
  return d > 0 ? "counter-clockwise" : d < 0 ? "clockwise" : "none (not a loop)";
}

static cJSON *ch__facts_json(const ch_track *t, const char *path, const ch_track_info *in,
                             double lap) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", t->name);
  cJSON_AddStringToObject(o, "file", path);
  cJSON_AddNumberToObject(o, "length", t->length);
  cJSON_AddNumberToObject(o, "width", t->width);
  cJSON_AddNumberToObject(o, "width_min", in->width_min);
  cJSON_AddNumberToObject(o, "width_max", in->width_max);
  cJSON_AddBoolToObject(o, "loop", t->is_loop);
  cJSON_AddNumberToObject(o, "points", t->n);
  cJSON *bb = cJSON_AddObjectToObject(o, "bbox");
  cJSON_AddNumberToObject(bb, "x0", in->x0);
  cJSON_AddNumberToObject(bb, "y0", in->y0);
  cJSON_AddNumberToObject(bb, "x1", in->x1);
  cJSON_AddNumberToObject(bb, "y1", in->y1);
  cJSON_AddStringToObject(o, "direction",
                          in->direction > 0   ? "counter-clockwise"
                          : in->direction < 0 ? "clockwise"
                                              : "none");
  if (isfinite(in->min_radius))
    cJSON_AddNumberToObject(o, "min_radius", in->min_radius);
  else
    cJSON_AddNullToObject(o, "min_radius");
  cJSON_AddNumberToObject(o, "reference_lap", lap);
  return o;
}

static void ch__facts_text(const ch_track *t, const char *path, const ch_track_info *in,
                           double lap) {
  printf("name            %s\n", t->name);
  printf("file            %s\n", path);
  printf("length          %.3f m (centre line)\n", t->length);
  printf("width           %.3f m median (min %.3f, max %.3f)\n", t->width, in->width_min,
         in->width_max);
  printf("loop            %s\n", t->is_loop ? "yes" : "no");
  printf("points          %d\n", t->n);
  printf("bounding box    x %.3f .. %.3f, y %.3f .. %.3f (%.2f x %.2f m)\n", in->x0, in->x1, in->y0,
         in->y1, in->x1 - in->x0, in->y1 - in->y0);
  printf("direction       %s\n", ch__direction(in->direction));
  if (isfinite(in->min_radius))
    printf("min radius      %.2f m\n", in->min_radius);
  else
    printf("min radius      none (straight)\n");
  printf("reference lap   %.3f s (racing line, from rest%s)\n", lap,
         t->is_loop ? " at the start line" : " to the far end");
}

static int ch__show(const ch__opts *o, const char *arg) {
  char path[CH_PATH_MAX];
  ch_track *t;
  ch_error err;
  if (ch__open(arg, path, sizeof path, &t, &err)) return ch__fail_err(&err);
  ch_track_info info;
  ch_track_describe(t, &info);
  double lap;
  int rc = ch_track_reference_lap(t, &lap, &err);
  if (rc == CH_OK && o->json)
    ch__print_json(ch__facts_json(t, path, &info, lap));
  else if (rc == CH_OK)
    ch__facts_text(t, path, &info, lap);
  ch_track_free(t);
  return rc ? ch__fail_err(&err) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Import                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static int ch__mkdir(const char *dir) {
  return mkdir(dir, 0777) == 0 || errno == EEXIST ? 0 : -1;
}

static int ch__valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= CH_TRACK_NAME_MAX) return 0;
  return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* Where the import goes, or why it may not: names resolve to the shipped tracks first. */
static int ch__import_target(const ch__opts *o, const char *name, char *out, size_t size) {
  char shipped[CH_PATH_MAX], dir[CH_PATH_MAX], msg[2 * CH_PATH_MAX];
  struct stat st;
  snprintf(shipped, sizeof shipped, "%s/tracks/%s.track", ch_data_dir(), name);
  snprintf(dir, sizeof dir, "%s/tracks", o->cli.home);
  snprintf(out, size, "%s/%s.track", dir, name);
  if (stat(shipped, &st) == 0) {
    snprintf(msg, sizeof msg,
             "a shipped track is named '%s' (%s) and names find it first; choose another --name",
             name, shipped);
    return ch_cli_fail(msg);
  }
  if (ch__mkdir(o->cli.home) || ch__mkdir(dir)) {
    snprintf(msg, sizeof msg, "%s: %s", dir, strerror(errno));
    return ch_cli_fail(msg);
  }
  if (!o->force && stat(out, &st) == 0) {
    snprintf(msg, sizeof msg, "%s exists (use --force to replace it)", out);
    return ch_cli_fail(msg);
  }
  return 0;
}

static void ch__imported(const ch__opts *o, const ch_track *t, const char *from, const char *to) {
  if (o->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", t->name);
    cJSON_AddStringToObject(j, "file", to);
    cJSON_AddStringToObject(j, "source", from);
    cJSON_AddNumberToObject(j, "length", t->length);
    cJSON_AddNumberToObject(j, "width", t->width);
    cJSON_AddBoolToObject(j, "loop", t->is_loop);
    cJSON_AddNumberToObject(j, "points", t->n);
    ch__print_json(j);
    return;
  }
  printf("imported %s as '%s'\nwrote %s: length %.3f m, width %.3f m, %s, %d points\n", from,
         t->name, to, t->length, t->width, t->is_loop ? "a loop" : "not a loop", t->n);
}

static int ch__import(const ch__opts *o, const char *file) {
  char name[CH_TRACK_NAME_MAX], target[CH_PATH_MAX], comment[CH_PATH_MAX + 256];
  if (o->name && !ch__valid_name(o->name))
    return ch_cli_usage_error("tracks", "--name takes 1 to 63 characters of [A-Za-z0-9_-]");
  if (o->name)
    snprintf(name, sizeof name, "%s", o->name);
  else
    ch_track_name_from_path(file, name);
  ch_track *t;
  ch_error err;
  if (ch_track_import_npy(file, name, &t, &err)) return ch__fail_err(&err);
  int rc = ch__import_target(o, name, target, sizeof target);
  snprintf(comment, sizeof comment,
           "%s.track -- imported from %s by chicane tracks import.\ncentre length %.3f m, "
           "median width %.3f m, %d points, %s.",
           name, file, t->length, t->width, t->n, t->is_loop ? "a loop" : "not a loop");
  if (rc == 0 && ch_track_write_comment(t, target, comment, &err)) rc = ch__fail_err(&err);
  if (rc == 0) ch__imported(o, t, file, target);
  ch_track_free(t);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Racing line                                                                                 */
/* ------------------------------------------------------------------------------------------ */

static int ch__write_csv(const ch_racing_line *rl, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "x,y,v,t\n");
  for (int i = 0; i < rl->n; i++)
    fprintf(f, "%.6f,%.6f,%.6f,%.6f\n", rl->x[i], rl->y[i], rl->v[i], rl->t[i]);
  return fclose(f) == 0 ? 0 : -1;
}

static double ch__ms_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-6;
}

static void ch__line_json(const ch_track *t, const char *path, const ch_racing_line *rl,
                          const ch_racing_line *cl, double ms, const char *out) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", t->name);
  cJSON_AddStringToObject(o, "file", path);
  cJSON_AddNumberToObject(o, "points", rl->n);
  cJSON_AddNumberToObject(o, "length", rl->length);
  cJSON_AddNumberToObject(o, "lap_time", rl->lap_time);
  cJSON_AddNumberToObject(o, "reference_lap", rl->standing_lap_time);
  cJSON_AddNumberToObject(o, "centre_length", cl->length);
  cJSON_AddNumberToObject(o, "centre_lap_time", cl->lap_time);
  cJSON_AddNumberToObject(o, "centre_reference_lap", cl->standing_lap_time);
  cJSON_AddNumberToObject(o, "improvement_percent", 100 * (1 - rl->lap_time / cl->lap_time));
  cJSON_AddNumberToObject(o, "beta", rl->beta);
  cJSON_AddNumberToObject(o, "iterations", rl->iterations);
  cJSON_AddNumberToObject(o, "compute_ms", ms);
  if (out) cJSON_AddStringToObject(o, "out", out);
  ch__print_json(o);
}

static void ch__line_text(const ch_track *t, const char *path, const ch_racing_line *rl,
                          const ch_racing_line *cl, double ms, const char *out) {
  const char *flying = t->is_loop ? "flying lap" : "from rest to the far end";
  printf("track           %s (%s)\n", t->name, path);
  printf("line length     %.3f m (centre line %.3f m)\n", rl->length, cl->length);
  printf("lap time        %.3f s %s", rl->lap_time, flying);
  if (t->is_loop) printf(", %.3f s from rest (the reference lap)", rl->standing_lap_time);
  printf("\ncentre line     %.3f s %s", cl->lap_time, flying);
  if (t->is_loop) printf(", %.3f s from rest", cl->standing_lap_time);
  printf("\nimprovement     %.1f%%\n", 100 * (1 - rl->lap_time / cl->lap_time));
  printf("computed in     %.1f ms (%d Gauss-Newton steps, length weight %.3g)\n", ms,
         rl->iterations, rl->beta);
  if (out) printf("wrote           %s (x,y,v,t for %d points)\n", out, rl->n);
}

static int ch__line(const ch__opts *o, const char *arg) {
  char path[CH_PATH_MAX];
  ch_track *t;
  ch_error err;
  if (ch__open(arg, path, sizeof path, &t, &err)) return ch__fail_err(&err);
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_racing_line *rl = NULL, *cl = NULL;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = ch_track_racing_line(t, &car, &rl, &err);
  double ms = ch__ms_since(&t0);
  if (rc == CH_OK) rc = ch_track_centre_line(t, &car, &cl, &err);
  if (rc) {
    rc = ch__fail_err(&err);
  } else if (o->out && ch__write_csv(rl, o->out)) {
    snprintf(err.message, sizeof err.message, "%s: %s", o->out, strerror(errno));
    rc = ch__fail_err(&err);
  } else if (o->json) {
    ch__line_json(t, path, rl, cl, ms, o->out);
  } else {
    ch__line_text(t, path, rl, cl, ms, o->out);
  }
  ch_racing_line_free(rl);
  ch_racing_line_free(cl);
  ch_track_free(t);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The command                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Options; returns 0 to go on, -1 after --help, 2 on a usage error. */
static int ch__options(int argc, char **argv, ch__opts *o) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"home", required_argument, NULL, 'H'},
                                       {"name", required_argument, NULL, 'n'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'j':
      o->json = 1;
      break;
    case 'H':
      ch_cli_common_option(&o->cli, c, optarg);
      break;
    case 'n':
      o->name = optarg;
      break;
    case 'f':
      o->force = 1;
      break;
    case 'o':
      o->out = optarg;
      break;
    case 'h':
      fputs(tracks_usage, stdout);
      return -1;
    default:
      return ch_cli_usage_error("tracks", "unknown option");
    }
  }
  return 0;
}

/* Which options make sense where: a misplaced one is a mistake worth saying. */
static int ch__check_options(const ch__opts *o, const char *sub) {
  int import = sub && strcmp(sub, "import") == 0, line = sub && strcmp(sub, "line") == 0;
  if ((o->name || o->force) && !import)
    return ch_cli_usage_error("tracks", "--name and --force belong to `tracks import`");
  if (o->out && !line) return ch_cli_usage_error("tracks", "--out belongs to `tracks line`");
  return 0;
}

const char ch_cmd_tracks_summary[] =
    "tracks [show|import|line]\tlist tracks, show one, import a .npy, racing line";

int ch_cmd_tracks(int argc, char **argv) {
  ch__opts o = {0};
  ch_cli_init(&o.cli);
  int parsed = ch__options(argc, argv, &o);
  if (parsed) return parsed < 0 ? 0 : parsed;
  /* Track names resolve through HOME/tracks, so --home must reach ch_resolve_track. */
  setenv("CHICANE_HOME", o.cli.home, 1);
  int nargs = argc - optind;
  const char *sub = nargs > 0 ? argv[optind] : NULL, *arg = nargs > 1 ? argv[optind + 1] : NULL;
  int bad = ch__check_options(&o, sub);
  if (bad) return bad;
  if (nargs == 0) return ch__list(&o);
  if (nargs != 2)
    return ch_cli_usage_error("tracks", "expected no arguments, or show|import|line and one more");
  if (strcmp(sub, "show") == 0) return ch__show(&o, arg);
  if (strcmp(sub, "import") == 0) return ch__import(&o, arg);
  if (strcmp(sub, "line") == 0) return ch__line(&o, arg);
  return ch_cli_usage_error("tracks", "unknown subcommand (show, import or line)");
}
