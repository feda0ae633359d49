/* cmd_render.c -- `chicane render`: a PNG of what a car's sensor sees at a place on a track. */
#include "cli.h"
#include "render.h"

#include <chicane/plugin_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char render_usage[] =
    "usage: chicane render TRACK --out FILE.png [options]\n"
    "\n"
    "Reset one car on TRACK (a name such as bayside, or a .track path) and write a PNG of what\n"
    "its sensor sees: the camera image scaled up (stereo: both side by side), the lidar beams\n"
    "from above, or a map of the whole track with the car and the objects.\n"
    "\n"
    "options:\n"
    "  --out FILE            the PNG to write (required)\n"
    "  --sensor S            camera (default), stereo, lidar or top\n"
    "  --at P                the car's place: P percent of the track from the start line, in\n"
    "                        the driving direction (0..100, a trailing %% is fine; default 0)\n"
    "  --offset M            metres left (+) or right (-) of the centre line (default 0)\n"
    "  --heading-offset DEG  turn the car this many degrees from the track's direction\n"
    "  --race-type T         time_trial (default), object_avoidance or head_to_head\n"
    "  --seed N              the episode's seed: where random boxes and bots go (default 1)\n"
    "  --reversed            drive the track the other way\n"
    "  --scale N             camera pixels become N x N blocks, 1..16 (default 4)\n"
    "  --env JSON            more env config keys, e.g. '{\"objects\": {\"count\": 5}}'\n"
    "  --help                this text\n";

const char ch_cmd_render_summary[] = "render TRACK\twrite a PNG of what a sensor sees (camera, "
                                     "stereo, lidar, top)";

/* A number in [lo, hi] from s, which may end with suffix (or not); 0 when it is not one. */
static int ch__number(const char *s, const char *suffix, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || (*end && strcmp(end, suffix) != 0) || !(v >= lo && v <= hi)) return 0;
  *out = v;
  return 1;
}

typedef struct ch__render_args {
  ch_render_options o;
  const char *out;
} ch__render_args;

/* One option; 0 when taken, else the exit status of a usage error (or -1 after --help). */
static int ch__option(ch__render_args *a, int c, const char *arg) {
  double v;
  switch (c) {
  case 'o':
    a->out = arg;
    return 0;
  case 's':
    a->o.sensor = arg;
    return 0;
  case 'a':
    return ch__number(arg, "%", 0, 100, &a->o.progress)
               ? 0
               : ch_cli_usage_error("render", "--at needs a percentage in 0..100");
  case 'f':
    return ch__number(arg, "", -100, 100, &a->o.offset)
               ? 0
               : ch_cli_usage_error("render", "--offset needs metres");
  case 'd':
    return ch__number(arg, "", -180, 180, &a->o.heading_offset)
               ? 0
               : ch_cli_usage_error("render", "--heading-offset needs degrees in -180..180");
  case 't':
    a->o.race_type = arg;
    return 0;
  case 'e':
    if (!ch__number(arg, "", 0, 9007199254740992.0, &v) || v != (double)(uint64_t)v)
      return ch_cli_usage_error("render", "--seed needs a whole number >= 0");
    a->o.seed = (uint64_t)v;
    return 0;
  case 'r':
    a->o.reversed = 1;
    return 0;
  case 'x':
    if (!ch__number(arg, "", 1, 16, &v) || v != (int)v)
      return ch_cli_usage_error("render", "--scale needs a whole number in 1..16");
    a->o.scale = (int)v;
    return 0;
  case 'j':
    a->o.env_extra = arg;
    return 0;
  case 'h':
    fputs(render_usage, stdout);
    return -1;
  default:
    return ch_cli_usage_error("render", "unknown option");
  }
}

int ch_cmd_render(int argc, char **argv) {
  static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                       {"sensor", required_argument, NULL, 's'},
                                       {"at", required_argument, NULL, 'a'},
                                       {"offset", required_argument, NULL, 'f'},
                                       {"heading-offset", required_argument, NULL, 'd'},
                                       {"race-type", required_argument, NULL, 't'},
                                       {"seed", required_argument, NULL, 'e'},
                                       {"reversed", no_argument, NULL, 'r'},
                                       {"scale", required_argument, NULL, 'x'},
                                       {"env", required_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  ch__render_args a = {.out = NULL};
  ch_render_defaults(&a.o);
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    int rc = ch__option(&a, c, optarg);
    if (rc) return rc < 0 ? 0 : rc;
  }
  if (optind != argc - 1) return ch_cli_usage_error("render", "needs exactly one TRACK");
  if (!a.out) return ch_cli_usage_error("render", "--out FILE is required");
  a.o.track = argv[optind];
  ch_error err = {0, ""};
  if (ch_render_png(&a.o, a.out, &err) != CH_OK) return ch_cli_fail(err.message);
  printf("%s\n", a.out);
  return 0;
}
