/* config.c -- sim2d configuration: the JSON object documented in sim2d.c's USAGE block. */
#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim2d.h"

/* What a parse has seen beyond the values themselves, for the checks across keys. */
typedef struct ch__ctx {
  ch_sim2d_config *cfg;
  const char *prefix; /* "" at the top level, else the enclosing key */
  char key[96];       /* full name of the key being applied, e.g. "objects.count" */
  int has_camera, has_lidar, has_objects, has_bots, has_count, has_positions, has_sensors;
} ch__ctx;

typedef int (*ch__apply_fn)(const cJSON *v, ch__ctx *x, ch_error *err);

typedef struct ch__key {
  const char *name;
  ch__apply_fn apply;
} ch__key;

/* A short rendering of a JSON value for messages. */
static const char *ch__show(const cJSON *v, char *buf, size_t size) {
  if (cJSON_IsNumber(v))
    snprintf(buf, size, "%.17g", v->valuedouble);
  else if (cJSON_IsString(v))
    snprintf(buf, size, "\"%.40s\"", v->valuestring);
  else
    snprintf(buf, size, "%s",
             cJSON_IsBool(v)    ? (cJSON_IsTrue(v) ? "true" : "false")
             : cJSON_IsNull(v)  ? "null"
             : cJSON_IsArray(v) ? "an array"
                                : "an object");
  return buf;
}

static int ch__integer(const cJSON *v, ch__ctx *x, double lo, double hi, double *out,
                       ch_error *err) {
  char shown[64];
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
      v->valuedouble > hi)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key '%s' must be an integer in %.0f..%.0f, got %s", x->key,
                        lo, hi, ch__show(v, shown, sizeof shown));
  *out = v->valuedouble;
  return CH_OK;
}

static int ch__number(const cJSON *v, ch__ctx *x, double lo, double hi, double *out,
                      ch_error *err) {
  char shown[64];
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key '%s' must be a number in [%g, %g], got %s", x->key, lo,
                        hi, ch__show(v, shown, sizeof shown));
  *out = v->valuedouble;
  return CH_OK;
}

static int ch__bool(const cJSON *v, ch__ctx *x, int *out, ch_error *err) {
  char shown[64];
  if (!cJSON_IsBool(v))
    return ch_error_set(err, CH_EINVAL, "sim2d: config key '%s' must be true or false, got %s",
                        x->key, ch__show(v, shown, sizeof shown));
  *out = cJSON_IsTrue(v);
  return CH_OK;
}

/* A string among names (NULL-terminated); *out is its index. */
static int ch__choice(const cJSON *v, ch__ctx *x, const char *const *names, int *out,
                      ch_error *err) {
  char shown[64], list[200] = "";
  for (int k = 0; cJSON_IsString(v) && names[k]; k++)
    if (strcmp(v->valuestring, names[k]) == 0) return *out = k, CH_OK;
  for (int k = 0; names[k]; k++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", k ? ", " : "", names[k]);
  return ch_error_set(err, CH_EINVAL, "sim2d: config key '%s' must be one of %s, got %s", x->key,
                      list, ch__show(v, shown, sizeof shown));
}

/* Apply every member of the object v through keys; unknown and repeated keys are errors. */
static int ch__members(const cJSON *v, ch__ctx *x, const ch__key *keys, size_t nkeys,
                       ch_error *err) {
  char shown[64], known[300] = "";
  const char *prefix = x->prefix;
  if (!cJSON_IsObject(v))
    return ch_error_set(err, CH_EINVAL, "sim2d: config%s%s%s must be a JSON object, got %s",
                        prefix[0] ? " key '" : "", prefix, prefix[0] ? "'" : "",
                        ch__show(v, shown, sizeof shown));
  uint64_t seen = 0;
  for (const cJSON *m = v->child; m; m = m->next) {
    size_t k = 0;
    while (k < nkeys && strcmp(m->string, keys[k].name) != 0) k++;
    snprintf(x->key, sizeof x->key, "%s%s%s", prefix, prefix[0] ? "." : "", m->string);
    if (k == nkeys) {
      for (size_t j = 0; j < nkeys; j++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "",
                 keys[j].name);
      if (!prefix[0] && strcmp(m->string, "reverse") == 0)
        return ch_error_set(err, CH_EINVAL,
                            "sim2d: unknown config key 'reverse' (the direction is chosen per "
                            "episode: ch_env_reset.reversed)");
      return ch_error_set(err, CH_EINVAL, "sim2d: unknown config key '%s' (known: %s)", x->key,
                          known);
    }
    if (seen & (1ull << k))
      return ch_error_set(err, CH_EINVAL, "sim2d: config key '%s' appears twice", x->key);
    seen |= 1ull << k;
    int rc = keys[k].apply(m, x, err);
    x->prefix = prefix;
    if (rc) return rc;
  }
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Top-level scalars                                                                           */
/* ------------------------------------------------------------------------------------------ */

static int ch__track(const cJSON *v, ch__ctx *x, ch_error *err) {
  char shown[64];
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'track' must be a non-empty path, got %s",
                        ch__show(v, shown, sizeof shown));
  free(x->cfg->track);
  x->cfg->track = strdup(v->valuestring);
  if (!x->cfg->track) return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory");
  return CH_OK;
}

static int ch__num_cars(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  int rc = ch__integer(v, x, 1, 4096, &n, err);
  if (!rc) x->cfg->num_cars = (uint32_t)n;
  return rc;
}

static int ch__max_steps(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  int rc = ch__integer(v, x, 1, INT32_MAX, &n, err);
  if (!rc) x->cfg->max_steps = (int32_t)n;
  return rc;
}

static int ch__substeps(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  int rc = ch__integer(v, x, 1, 1000, &n, err);
  if (!rc) x->cfg->substeps = (int32_t)n;
  return rc;
}

static int ch__min_speed(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, CH_SIM2D_MAX_SPEED, &x->cfg->min_speed, err);
}

static int ch__seed(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  /* Integers beyond 2^53 do not survive a JSON double, so that is the seed's range. */
  int rc = ch__integer(v, x, -9007199254740992.0, 9007199254740992.0, &n, err);
  if (!rc) x->cfg->seed = (int64_t)n;
  return rc;
}

static int ch__start_heading(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, -180, 180, &x->cfg->start_heading, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Sensors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const char *const ch__sensor_names[] = {
    "state",          "camera", "stereo",       "lidar", "sector_lidar", "FRONT_FACING_CAMERA",
    "STEREO_CAMERAS", "LIDAR",  "SECTOR_LIDAR", NULL};
static const unsigned ch__sensor_bits[] = {
    CH_SIM2D_STATE,  CH_SIM2D_CAMERA, CH_SIM2D_STEREO, CH_SIM2D_LIDAR,       CH_SIM2D_SECTOR_LIDAR,
    CH_SIM2D_CAMERA, CH_SIM2D_STEREO, CH_SIM2D_LIDAR,  CH_SIM2D_SECTOR_LIDAR};

static int ch__sensors(const cJSON *v, ch__ctx *x, ch_error *err) {
  char shown[64];
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'sensors' must be a non-empty array of sensor names, "
                        "got %s",
                        ch__show(v, shown, sizeof shown));
  unsigned bits = 0;
  int k = 0;
  for (const cJSON *e = v->child; e; e = e->next) {
    int rc = ch__choice(e, x, ch__sensor_names, &k, err);
    if (rc) return rc;
    if (bits & ch__sensor_bits[k])
      return ch_error_set(err, CH_EINVAL, "sim2d: config key 'sensors' names the %s sensor twice",
                          ch__sensor_names[k < 5 ? k : k - 4]);
    bits |= ch__sensor_bits[k];
  }
  if ((bits & CH_SIM2D_CAMERA) && (bits & CH_SIM2D_STEREO))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'sensors' has both camera and stereo (one camera at "
                        "most, as in DeepRacer)");
  if ((bits & CH_SIM2D_LIDAR) && (bits & CH_SIM2D_SECTOR_LIDAR))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'sensors' has both lidar and sector_lidar (one lidar "
                        "at most, as in DeepRacer)");
  x->cfg->sensors = bits;
  x->has_sensors = 1;
  return CH_OK;
}

static int ch__downscale(const cJSON *v, ch__ctx *x, ch_error *err) {
  char shown[64];
  if (!cJSON_IsNumber(v) || (v->valuedouble != 1 && v->valuedouble != 2 && v->valuedouble != 4))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'camera.downscale' must be 1, 2 or 4 (160x120, 80x60, "
                        "40x30), got %s",
                        ch__show(v, shown, sizeof shown));
  x->cfg->downscale = (int)v->valuedouble;
  return CH_OK;
}

static int ch__stack_size(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  int rc = ch__integer(v, x, 1, 8, &n, err);
  if (!rc) x->cfg->stack_size = (int)n;
  return rc;
}

static int ch__camera(const cJSON *v, ch__ctx *x, ch_error *err) {
  static const ch__key keys[] = {{"downscale", ch__downscale}, {"stack_size", ch__stack_size}};
  x->has_camera = 1;
  x->prefix = "camera";
  return ch__members(v, x, keys, sizeof keys / sizeof keys[0], err);
}

static int ch__max_range(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0.5, CH_SIM2D_LIDAR_MAX_RANGE, &x->cfg->lidar_max_range, err);
}

static int ch__lidar(const cJSON *v, ch__ctx *x, ch_error *err) {
  static const ch__key keys[] = {{"max_range", ch__max_range}};
  x->has_lidar = 1;
  x->prefix = "lidar";
  return ch__members(v, x, keys, sizeof keys / sizeof keys[0], err);
}

/* ------------------------------------------------------------------------------------------ */
/* Race types, objects and bots                                                                */
/* ------------------------------------------------------------------------------------------ */

static int ch__race_type(const cJSON *v, ch__ctx *x, ch_error *err) {
  static const char *const names[] = {"time_trial", "object_avoidance", "head_to_head", NULL};
  return ch__choice(v, x, names, &x->cfg->race_type, err);
}

static int ch__obj_count(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  int rc = ch__integer(v, x, 1, CH_SIM2D_MAX_OBJECTS, &n, err);
  if (!rc) x->cfg->objects.count = (int)n, x->has_count = 1;
  return rc;
}

static int ch__placement(const cJSON *v, ch__ctx *x, ch_error *err) {
  static const char *const names[] = {"random", "fixed", NULL};
  return ch__choice(v, x, names, &x->cfg->objects.fixed, err);
}

/* One entry of objects.positions: {progress: 0..100, lane: "left" | "right"}. */
static int ch__position(const cJSON *e, int k, ch__ctx *x, ch_error *err) {
  char shown[64];
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "progress");
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "lane");
  if (!cJSON_IsObject(e) || cJSON_GetArraySize(e) != 2 || !p || !l)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.positions[%d]' must be an object "
                        "{\"progress\": 0..100, \"lane\": \"left\"|\"right\"}, got %s",
                        k, ch__show(e, shown, sizeof shown));
  if (!cJSON_IsNumber(p) || !(p->valuedouble >= 0 && p->valuedouble <= 100))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.positions[%d].progress' must be a number in "
                        "[0, 100], got %s",
                        k, ch__show(p, shown, sizeof shown));
  if (!cJSON_IsString(l) || (strcmp(l->valuestring, "left") && strcmp(l->valuestring, "right")))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.positions[%d].lane' must be \"left\" or "
                        "\"right\", got %s",
                        k, ch__show(l, shown, sizeof shown));
  x->cfg->objects.progress[k] = p->valuedouble;
  x->cfg->objects.lane[k] = strcmp(l->valuestring, "left") == 0 ? 1 : -1;
  return CH_OK;
}

static int ch__positions(const cJSON *v, ch__ctx *x, ch_error *err) {
  char shown[64];
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  if (n < 1 || n > CH_SIM2D_MAX_OBJECTS)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.positions' must be an array of 1..%d "
                        "positions, got %s",
                        CH_SIM2D_MAX_OBJECTS, ch__show(v, shown, sizeof shown));
  int k = 0;
  for (const cJSON *e = v->child; e; e = e->next, k++) {
    int rc = ch__position(e, k, x, err);
    if (rc) return rc;
  }
  x->has_positions = n;
  return CH_OK;
}

static int ch__obj_spacing(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, 1000, &x->cfg->objects.min_spacing, err);
}

static int ch__obj_clearance(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, 1000, &x->cfg->objects.start_clearance, err);
}

static int ch__size(const cJSON *v, ch__ctx *x, ch_error *err) {
  char shown[64];
  const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) ||
      !(a->valuedouble >= 0.05 && a->valuedouble <= 2) ||
      !(b->valuedouble >= 0.05 && b->valuedouble <= 2))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.size' must be [width, length] in metres, "
                        "each in [0.05, 2], got %s",
                        ch__show(v, shown, sizeof shown));
  x->cfg->objects.width = a->valuedouble;
  x->cfg->objects.length = b->valuedouble;
  return CH_OK;
}

static int ch__objects(const cJSON *v, ch__ctx *x, ch_error *err) {
  static const ch__key keys[] = {{"count", ch__obj_count},
                                 {"placement", ch__placement},
                                 {"positions", ch__positions},
                                 {"min_spacing", ch__obj_spacing},
                                 {"start_clearance", ch__obj_clearance},
                                 {"size", ch__size}};
  x->has_objects = 1;
  x->prefix = "objects";
  return ch__members(v, x, keys, sizeof keys / sizeof keys[0], err);
}

static int ch__bot_count(const cJSON *v, ch__ctx *x, ch_error *err) {
  double n = 0;
  int rc = ch__integer(v, x, 1, CH_SIM2D_MAX_OBJECTS, &n, err);
  if (!rc) x->cfg->bots.count = (int)n;
  return rc;
}

static int ch__bot_speed(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, CH_SIM2D_MAX_SPEED, &x->cfg->bots.speed, err);
}

static int ch__lane_changes(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__bool(v, x, &x->cfg->bots.lane_changes, err);
}

static int ch__min_interval(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, 1e6, &x->cfg->bots.min_interval, err);
}

static int ch__max_interval(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, 1e6, &x->cfg->bots.max_interval, err);
}

static int ch__change_distance(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0.1, 100, &x->cfg->bots.change_distance, err);
}

static int ch__bot_spacing(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, 1000, &x->cfg->bots.min_spacing, err);
}

static int ch__bot_clearance(const cJSON *v, ch__ctx *x, ch_error *err) {
  return ch__number(v, x, 0, 1000, &x->cfg->bots.start_clearance, err);
}

static int ch__bots(const cJSON *v, ch__ctx *x, ch_error *err) {
  static const ch__key keys[] = {{"count", ch__bot_count},
                                 {"speed", ch__bot_speed},
                                 {"lane_changes", ch__lane_changes},
                                 {"min_lane_change_interval", ch__min_interval},
                                 {"max_lane_change_interval", ch__max_interval},
                                 {"lane_change_distance", ch__change_distance},
                                 {"min_spacing", ch__bot_spacing},
                                 {"start_clearance", ch__bot_clearance}};
  x->has_bots = 1;
  x->prefix = "bots";
  return ch__members(v, x, keys, sizeof keys / sizeof keys[0], err);
}

/* ------------------------------------------------------------------------------------------ */
/* Checks across keys                                                                          */
/* ------------------------------------------------------------------------------------------ */

static int ch__check_sensors(const ch__ctx *x, ch_error *err) {
  unsigned s = x->cfg->sensors;
  if (x->has_camera && !(s & (CH_SIM2D_CAMERA | CH_SIM2D_STEREO)))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'camera' needs a camera or stereo sensor in 'sensors'");
  if (x->has_lidar && !(s & CH_SIM2D_LIDAR))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'lidar' needs the lidar sensor in "
                        "'sensors'");
  return CH_OK;
}

static int ch__check_race(const ch__ctx *x, ch_error *err) {
  ch_sim2d_config *c = x->cfg;
  if (x->has_objects && c->race_type != CH_SIM2D_OBJECT_AVOIDANCE)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects' needs race_type \"object_avoidance\"");
  if (x->has_bots && c->race_type != CH_SIM2D_HEAD_TO_HEAD)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'bots' needs race_type "
                        "\"head_to_head\"");
  if (c->objects.fixed && !x->has_positions)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.placement' is \"fixed\" but "
                        "'objects.positions' is missing");
  if (!c->objects.fixed && x->has_positions)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.positions' needs 'objects.placement' "
                        "\"fixed\"");
  if (x->has_positions && x->has_count && c->objects.count != x->has_positions)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'objects.count' is %d but 'objects.positions' lists %d",
                        c->objects.count, x->has_positions);
  if (x->has_positions) c->objects.count = x->has_positions;
  if (c->bots.max_interval < c->bots.min_interval)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'bots.max_lane_change_interval' (%g s) is below "
                        "'bots.min_lane_change_interval' (%g s)",
                        c->bots.max_interval, c->bots.min_interval);
  return CH_OK;
}

static int ch__top(const cJSON *root, ch__ctx *x, ch_error *err) {
  static const ch__key keys[] = {{"track", ch__track},
                                 {"num_cars", ch__num_cars},
                                 {"max_steps", ch__max_steps},
                                 {"substeps", ch__substeps},
                                 {"min_speed", ch__min_speed},
                                 {"seed", ch__seed},
                                 {"start_heading_offset", ch__start_heading},
                                 {"sensors", ch__sensors},
                                 {"camera", ch__camera},
                                 {"lidar", ch__lidar},
                                 {"race_type", ch__race_type},
                                 {"objects", ch__objects},
                                 {"bots", ch__bots}};
  x->prefix = "";
  int rc = ch__members(root, x, keys, sizeof keys / sizeof keys[0], err);
  if (rc) return rc;
  if (!x->cfg->track) return ch_error_set(err, CH_EINVAL, "sim2d: config key 'track' is required");
  if ((rc = ch__check_sensors(x, err))) return rc;
  return ch__check_race(x, err);
}

static void ch__defaults(ch_sim2d_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->num_cars = 1;
  cfg->max_steps = 1500;
  cfg->substeps = 4;
  cfg->min_speed = 0.1;
  cfg->seed = 1;
  cfg->sensors = CH_SIM2D_STATE;
  cfg->downscale = 1;
  cfg->stack_size = 1;
  cfg->lidar_max_range = CH_SIM2D_LIDAR_MAX_RANGE;
  cfg->objects = (ch_sim2d_objects_config){
      .count = 3, .min_spacing = 2.0, .start_clearance = 2.0, .width = 0.4, .length = 0.5};
  cfg->bots = (ch_sim2d_bots_config){3, 1.0, 0, 3.0, 5.0, 1.0, 2.0, 2.0};
}

int ch_sim2d_config_parse(const char *json, ch_sim2d_config *cfg, ch_error *err) {
  ch__defaults(cfg);
  if (!json) return ch_error_set(err, CH_EINVAL, "sim2d: config is NULL (pass \"{}\" at least)");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root)
    return ch_error_set(err, CH_EINVAL, "sim2d: config is not valid JSON near '%.30s'",
                        end ? end : "");
  ch__ctx x = {.cfg = cfg};
  int rc = ch__top(root, &x, err);
  cJSON_Delete(root);
  if (rc) ch_sim2d_config_free(cfg);
  return rc;
}

void ch_sim2d_config_free(ch_sim2d_config *cfg) {
  free(cfg->track);
  cfg->track = NULL;
}
