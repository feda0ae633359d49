/* net_config.c -- network plugins: reading config JSON values with messages naming the key. */
#include "netcommon.h"

#include <chicane/plugin_util.h>
#include <math.h>

const char *ch__net_json_kind(const cJSON *item) {
  if (cJSON_IsNumber(item)) return "a number";
  if (cJSON_IsString(item)) return "a string";
  if (cJSON_IsBool(item)) return "a boolean";
  if (cJSON_IsArray(item)) return "an array";
  if (cJSON_IsObject(item)) return "an object";
  return "null";
}

static int is_integer_in(const cJSON *item, double lo, double hi) {
  if (!cJSON_IsNumber(item)) return 0;
  double v = item->valuedouble;
  return v >= lo && v <= hi && v == floor(v);
}

int ch__net_config_int(const char *who, const cJSON *item, const char *what, double lo, double hi,
                       double *out, ch_error *err) {
  if (is_integer_in(item, lo, hi)) {
    *out = item->valuedouble;
    return CH_OK;
  }
  if (cJSON_IsNumber(item))
    return ch_error_set(err, CH_EINVAL,
                        "%s config key %s: expected an integer in %.0f..%.0f, got %g", who, what,
                        lo, hi, item->valuedouble);
  return ch_error_set(err, CH_EINVAL, "%s config key %s: expected an integer in %.0f..%.0f, got %s",
                      who, what, lo, hi, ch__net_json_kind(item));
}

int ch__net_config_bool(const char *who, const cJSON *item, const char *what, uint32_t *out,
                        ch_error *err) {
  if (!cJSON_IsBool(item))
    return ch_error_set(err, CH_EINVAL, "%s config key %s: expected true or false, got %s", who,
                        what, ch__net_json_kind(item));
  *out = cJSON_IsTrue(item) ? 1 : 0;
  return CH_OK;
}

int ch__net_config_head(const char *who, const cJSON *item, uint32_t *out, ch_error *err) {
  const char *s = cJSON_GetStringValue(item);
  if (s && !strcmp(s, "categorical"))
    *out = CH_NET_CATEGORICAL;
  else if (s && !strcmp(s, "gaussian"))
    *out = CH_NET_GAUSSIAN;
  else if (s)
    return ch_error_set(
        err, CH_EINVAL,
        "%s config key 'head': expected \"categorical\" or \"gaussian\", got \"%s\"", who, s);
  else
    return ch_error_set(err, CH_EINVAL,
                        "%s config key 'head': expected \"categorical\" or \"gaussian\", got %s",
                        who, ch__net_json_kind(item));
  return CH_OK;
}

int ch__net_config_log_std(const char *who, const cJSON *item, double *out, ch_error *err) {
  double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
  if (!(v >= CH_NET_LOG_STD_MIN && v <= CH_NET_LOG_STD_MAX)) {
    if (cJSON_IsNumber(item))
      return ch_error_set(err, CH_EINVAL,
                          "%s config key 'log_std_init': expected a number in %g..%g, got %g", who,
                          CH_NET_LOG_STD_MIN, CH_NET_LOG_STD_MAX, v);
    return ch_error_set(err, CH_EINVAL,
                        "%s config key 'log_std_init': expected a number in %g..%g, got %s", who,
                        CH_NET_LOG_STD_MIN, CH_NET_LOG_STD_MAX, ch__net_json_kind(item));
  }
  *out = v;
  return CH_OK;
}

int ch__net_config_seed(const char *who, const cJSON *item, uint64_t *out, ch_error *err) {
  double v = 0;
  int rc =
      ch__net_config_int(who, item, "'seed'", -9007199254740992.0, 9007199254740992.0, &v, err);
  if (rc == CH_OK) *out = (uint64_t)(int64_t)v;
  return rc;
}

int ch__net_config_parse(const char *who, const char *json, cJSON **out, ch_error *err) {
  *out = NULL;
  if (!json) return ch_error_set(err, CH_EINVAL, "%s config: config_json is NULL", who);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root)
    return ch_error_set(err, CH_EINVAL, "%s config: invalid JSON at offset %td near '%.24s'", who,
                        end ? end - json : (ptrdiff_t)0, end ? end : "");
  if (!cJSON_IsObject(root)) {
    int rc = ch_error_set(err, CH_EINVAL, "%s config: expected a JSON object, got %s", who,
                          ch__net_json_kind(root));
    cJSON_Delete(root);
    return rc;
  }
  *out = root;
  return CH_OK;
}

int ch__net_config_walk(const char *who, const char *json, const ch_net_keys *keys, void *net,
                        int *seen, ch_error *err) {
  cJSON *root;
  int rc = ch__net_config_parse(who, json, &root, err);
  for (const cJSON *it = root ? root->child : NULL; it && !rc; it = it->next) {
    int key = 0;
    while (key < keys->count && strcmp(it->string, keys->names[key])) key++;
    if (key == keys->count)
      rc = ch_error_set(err, CH_EINVAL, "%s config: unknown key '%s' (known: %s)", who, it->string,
                        keys->known);
    else if (seen[key]++)
      rc = ch_error_set(err, CH_EINVAL, "%s config: key '%s' given twice", who, it->string);
    else
      rc = keys->read(key, it, net, err);
  }
  cJSON_Delete(root);
  return rc;
}
