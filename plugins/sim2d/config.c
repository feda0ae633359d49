/* config.c -- sim2d configuration: the JSON object documented in sim2d.c's USAGE block. */
#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim2d.h"

static const char *const ch__keys[] = {"track",   "num_cars",  "max_steps", "substeps",
                                       "reverse", "min_speed", "seed"};
#define CH__NKEYS (sizeof ch__keys / sizeof ch__keys[0])

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

static int ch__integer(const cJSON *v, double lo, double hi, double *out, ch_error *err) {
  char shown[64];
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
      v->valuedouble > hi)
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key '%s' must be an integer in %.0f..%.0f, got %s",
                        v->string, lo, hi, ch__show(v, shown, sizeof shown));
  *out = v->valuedouble;
  return CH_OK;
}

static int ch__track(const cJSON *v, ch_sim2d_config *cfg, ch_error *err) {
  char shown[64];
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'track' must be a non-empty path, got %s",
                        ch__show(v, shown, sizeof shown));
  free(cfg->track);
  cfg->track = strdup(v->valuestring);
  if (!cfg->track) return ch_error_set(err, CH_ENOMEM, "sim2d: out of memory");
  return CH_OK;
}

static int ch__min_speed(const cJSON *v, ch_sim2d_config *cfg, ch_error *err) {
  char shown[64];
  if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= CH_SIM2D_MAX_SPEED))
    return ch_error_set(err, CH_EINVAL,
                        "sim2d: config key 'min_speed' must be a number in [0, %g], got %s",
                        CH_SIM2D_MAX_SPEED, ch__show(v, shown, sizeof shown));
  cfg->min_speed = v->valuedouble;
  return CH_OK;
}

static int ch__reverse(const cJSON *v, ch_sim2d_config *cfg, ch_error *err) {
  char shown[64];
  if (!cJSON_IsBool(v))
    return ch_error_set(err, CH_EINVAL, "sim2d: config key 'reverse' must be true or false, got %s",
                        ch__show(v, shown, sizeof shown));
  cfg->reverse = cJSON_IsTrue(v);
  return CH_OK;
}

/* Apply one key, known to be in ch__keys at index k. */
static int ch__apply(size_t k, const cJSON *v, ch_sim2d_config *cfg, ch_error *err) {
  double n = 0;
  int rc = CH_OK;
  switch (k) {
  case 0:
    return ch__track(v, cfg, err);
  case 1:
    if (!(rc = ch__integer(v, 1, 4096, &n, err))) cfg->num_cars = (uint32_t)n;
    return rc;
  case 2:
    if (!(rc = ch__integer(v, 1, INT32_MAX, &n, err))) cfg->max_steps = (int32_t)n;
    return rc;
  case 3:
    if (!(rc = ch__integer(v, 1, 1000, &n, err))) cfg->substeps = (int32_t)n;
    return rc;
  case 4:
    return ch__reverse(v, cfg, err);
  case 5:
    return ch__min_speed(v, cfg, err);
  default:
    /* Integers beyond 2^53 do not survive a JSON double, so that is the seed's range. */
    if (!(rc = ch__integer(v, -9007199254740992.0, 9007199254740992.0, &n, err)))
      cfg->seed = (int64_t)n;
    return rc;
  }
}

static int ch__keys_of(const cJSON *root, ch_sim2d_config *cfg, ch_error *err) {
  unsigned seen = 0;
  for (const cJSON *v = root->child; v; v = v->next) {
    size_t k = 0;
    while (k < CH__NKEYS && strcmp(v->string, ch__keys[k]) != 0) k++;
    if (k == CH__NKEYS)
      return ch_error_set(err, CH_EINVAL,
                          "sim2d: unknown config key '%s' (known: track, num_cars, max_steps, "
                          "substeps, reverse, min_speed, seed)",
                          v->string);
    if (seen & (1u << k))
      return ch_error_set(err, CH_EINVAL, "sim2d: config key '%s' appears twice", v->string);
    seen |= 1u << k;
    int rc = ch__apply(k, v, cfg, err);
    if (rc) return rc;
  }
  if (!cfg->track) return ch_error_set(err, CH_EINVAL, "sim2d: config key 'track' is required");
  return CH_OK;
}

int ch_sim2d_config_parse(const char *json, ch_sim2d_config *cfg, ch_error *err) {
  *cfg = (ch_sim2d_config){NULL, 1, 1500, 4, 0, 0.1, 1};
  if (!json) return ch_error_set(err, CH_EINVAL, "sim2d: config is NULL (pass \"{}\" at least)");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root)
    return ch_error_set(err, CH_EINVAL, "sim2d: config is not valid JSON near '%.30s'",
                        end ? end : "");
  int rc = cJSON_IsObject(root)
               ? ch__keys_of(root, cfg, err)
               : ch_error_set(err, CH_EINVAL, "sim2d: config must be a JSON object");
  cJSON_Delete(root);
  if (rc) ch_sim2d_config_free(cfg);
  return rc;
}

void ch_sim2d_config_free(ch_sim2d_config *cfg) {
  free(cfg->track);
  cfg->track = NULL;
}
