/* metadata.c -- reads and writes DeepRacer's model_metadata.json and hyperparameters.json. */
#include "metadata.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ch__sensors[][2] = {{"camera", "FRONT_FACING_CAMERA"},
                                             {"stereo", "STEREO_CAMERAS"},
                                             {"lidar", "LIDAR"},
                                             {"sector_lidar", "SECTOR_LIDAR"},
                                             {"state", "STATE"}};
#define CH__NSENSORS (sizeof ch__sensors / sizeof ch__sensors[0])

static const char *const ch__networks[][2] = {{"shallow", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"},
                                              {"deep", "DEEP_CONVOLUTIONAL_NETWORK"},
                                              {"deeper", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"}};
#define CH__NNETWORKS (sizeof ch__networks / sizeof ch__networks[0])

const char *ch_metadata_sensor_name(const char *env_sensor) {
  for (size_t i = 0; i < CH__NSENSORS; i++)
    if (strcmp(ch__sensors[i][0], env_sensor) == 0) return ch__sensors[i][1];
  return NULL;
}

const char *ch_metadata_env_sensor(const char *deepracer_sensor) {
  for (size_t i = 0; i < CH__NSENSORS; i++)
    if (strcmp(ch__sensors[i][1], deepracer_sensor) == 0) return ch__sensors[i][0];
  return NULL;
}

void ch_metadata_network_name(const ch_train_config *c, char *out, size_t n) {
  if (strcmp(c->network_plugin, "cnn") == 0) {
    for (size_t i = 0; i < CH__NNETWORKS; i++)
      if (strcmp(ch__networks[i][0], c->architecture) == 0) {
        snprintf(out, n, "%s", ch__networks[i][1]);
        return;
      }
  }
  size_t len = (size_t)snprintf(out, n, "MLP");
  for (int i = 0; i < c->num_hidden && len < n; i++)
    len += (size_t)snprintf(out + len, n - len, "_%d", c->hidden[i]);
}

/* ---- writing ---------------------------------------------------------------------------- */

cJSON *ch_metadata_model_json(const ch_train_config *c) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddItemToObject(m, "action_space", ch_config_actions_json(c));
  cJSON_AddStringToObject(m, "action_space_type", ch_action_space_type_name(c->action_space_type));
  cJSON *sensor = cJSON_AddArrayToObject(m, "sensor");
  for (int i = 0; i < c->num_sensors; i++) {
    const char *name = ch_metadata_sensor_name(c->sensors[i]);
    cJSON_AddItemToArray(sensor, cJSON_CreateString(name ? name : c->sensors[i]));
  }
  char nn[128];
  ch_metadata_network_name(c, nn, sizeof nn);
  cJSON_AddStringToObject(m, "neural_network", nn);
  cJSON_AddStringToObject(m, "training_algorithm", c->algorithm);
  cJSON_AddStringToObject(m, "version", "5");
  return m;
}

cJSON *ch_metadata_hyperparameters_json(const ch_train_config *c) {
  const ch_hyperparameters *hp = &c->hp;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "batch_size", hp->batch_size);
  cJSON_AddNumberToObject(o, "beta_entropy", hp->beta_entropy);
  cJSON_AddNumberToObject(o, "discount_factor", hp->discount_factor);
  cJSON_AddNumberToObject(o, "e_greedy_value", hp->e_greedy_value);
  cJSON_AddNumberToObject(o, "epsilon_steps", hp->epsilon_steps);
  cJSON_AddStringToObject(o, "exploration_type",
                          hp->exploration_type == CH_EXPLORATION_E_GREEDY ? "e-greedy"
                                                                          : "categorical");
  cJSON_AddStringToObject(o, "loss_type",
                          hp->loss_type == CH_LOSS_MSE ? "mean squared error" : "huber");
  cJSON_AddNumberToObject(o, "lr", hp->lr);
  cJSON_AddNumberToObject(o, "num_episodes_between_training", hp->num_episodes_between_training);
  cJSON_AddNumberToObject(o, "num_epochs", hp->num_epochs);
  cJSON_AddNumberToObject(o, "stack_size", hp->stack_size);
  cJSON_AddNumberToObject(o, "term_cond_avg_score", hp->term_cond_avg_score);
  cJSON_AddNumberToObject(o, "term_cond_max_episodes", (double)hp->term_cond_max_episodes);
  cJSON_AddNumberToObject(o, "sac_alpha", hp->sac_alpha);
  /* chicane's PPO extras, only when set: DeepRacer's files stay DeepRacer's otherwise */
  if (hp->value_clip > 0) cJSON_AddNumberToObject(o, "value_clip", hp->value_clip);
  if (hp->target_kl > 0) cJSON_AddNumberToObject(o, "target_kl", hp->target_kl);
  return o;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int ch__parse(const char *text, const char *source, cJSON **out, ch_error *err) {
  const char *end = NULL;
  *out = cJSON_ParseWithOpts(text, &end, 1);
  if (!*out) {
    int line = 1;
    for (const char *p = text; end && p < end; p++) line += *p == '\n';
    return ch_error_set(err, CH_EINVAL, "%s:%d: not valid JSON near '%.20s'", source, line,
                        end ? end : "");
  }
  if (!cJSON_IsObject(*out)) {
    cJSON_Delete(*out);
    *out = NULL;
    return ch_error_set(err, CH_EINVAL, "%s: must hold a JSON object", source);
  }
  return CH_OK;
}

static int ch__unknown_keys(const cJSON *o, const char *source, const char *const *keys,
                            ch_error *err) {
  for (const cJSON *m = o->child; m; m = m->next) {
    const char *const *k = keys;
    while (*k && strcmp(*k, m->string) != 0) k++;
    if (!*k) return ch_error_set(err, CH_EINVAL, "%s: %s: unknown key", source, m->string);
  }
  return CH_OK;
}

static int ch__read_sensors(const cJSON *v, const char *source, ch_train_config *c, ch_error *err) {
  int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  if (n < 1 || n > CH_MAX_SENSORS)
    return ch_error_set(err, CH_EINVAL, "%s: sensor: expected a list of 1 to %d sensor names",
                        source, CH_MAX_SENSORS);
  int i = 0;
  for (const cJSON *e = v->child; e; e = e->next, i++) {
    const char *name = cJSON_IsString(e) ? ch_metadata_env_sensor(e->valuestring) : NULL;
    if (!name)
      return ch_error_set(err, CH_EINVAL,
                          "%s: sensor[%d]: %s%s%s is not a sensor chicane simulates (known: "
                          "FRONT_FACING_CAMERA, STEREO_CAMERAS, LIDAR, SECTOR_LIDAR, STATE)",
                          source, i, cJSON_IsString(e) ? "\"" : "",
                          cJSON_IsString(e) ? e->valuestring : "a non-string",
                          cJSON_IsString(e) ? "\"" : "");
    snprintf(c->sensors[i], sizeof c->sensors[i], "%s", name);
  }
  c->num_sensors = n;
  return CH_OK;
}

/* "MLP" then "_N" (or "xN", as early chicane models wrote it) per hidden layer. */
static int ch__read_mlp_name(const char *s, ch_train_config *c) {
  if (strncmp(s, "MLP", 3) != 0) return 0;
  int n = 0, hidden[CH_MAX_HIDDEN];
  for (s += 3; *s; n++) {
    if ((*s != '_' && *s != 'x') || n == CH_MAX_HIDDEN) return 0;
    char *end;
    long w = strtol(s + 1, &end, 10);
    if (end == s + 1 || w < 1 || w > 4096) return 0;
    hidden[n] = (int)w;
    s = end;
  }
  c->num_hidden = n;
  memcpy(c->hidden, hidden, sizeof(int) * (size_t)n);
  snprintf(c->network_plugin, sizeof c->network_plugin, "mlp");
  return 1;
}

static int ch__read_network(const cJSON *v, const char *source, ch_train_config *c, ch_error *err) {
  const char *s = cJSON_GetStringValue(v);
  if (s && ch__read_mlp_name(s, c)) return CH_OK;
  for (size_t i = 0; s && i < CH__NNETWORKS; i++)
    if (strcmp(ch__networks[i][1], s) == 0) {
      snprintf(c->network_plugin, sizeof c->network_plugin, "cnn");
      snprintf(c->architecture, sizeof c->architecture, "%s", ch__networks[i][0]);
      c->shared = 1;
      return CH_OK;
    }
  return ch_error_set(err, CH_EINVAL,
                      "%s: neural_network: %s%s%s is not a known network (known: "
                      "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, DEEP_CONVOLUTIONAL_NETWORK, "
                      "DEEP_CONVOLUTIONAL_NETWORK_DEEP, MLP_<width>_<width>...)",
                      source, s ? "\"" : "", s ? s : "a non-string", s ? "\"" : "");
}

static int ch__read_algorithm(const cJSON *v, const char *source, ch_train_config *c,
                              ch_error *err) {
  const char *s = cJSON_GetStringValue(v);
  if (!s || (strcmp(s, "clipped_ppo") != 0 && strcmp(s, "sac") != 0))
    return ch_error_set(err, CH_EINVAL,
                        "%s: training_algorithm: must be \"clipped_ppo\" or \"sac\"", source);
  snprintf(c->algorithm, sizeof c->algorithm, "%s", s);
  return CH_OK;
}

static int ch__read_action_space(const cJSON *m, const char *source, ch_train_config *c,
                                 ch_error *err) {
  const cJSON *as = cJSON_GetObjectItemCaseSensitive(m, "action_space");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "action_space_type");
  char where[600];
  snprintf(where, sizeof where, "%s: action_space", source);
  int type = cJSON_IsObject(as) ? CH_ACTION_SPACE_CONTINUOUS : CH_ACTION_SPACE_DISCRETE;
  if (t) {
    const char *s = cJSON_GetStringValue(t);
    int named = s ? ch_action_space_type_from_name(s) : -1;
    if (named < 0)
      return ch_error_set(err, CH_EINVAL,
                          "%s: action_space_type: must be \"discrete\" or \"continuous\"", source);
    if (as && named != type)
      return ch_error_set(err, CH_EINVAL,
                          "%s: action_space: is %s but action_space_type says \"%s\"", source,
                          type == CH_ACTION_SPACE_CONTINUOUS ? "an object of ranges" : "a list", s);
  }
  if (!as) return CH_OK;
  if (type == CH_ACTION_SPACE_CONTINUOUS) {
    int rc = ch_action_space_ranges_from_json(as, where, &c->action_ranges, err);
    if (rc != CH_OK) return rc;
    c->num_actions = 0;
  } else {
    int rc = ch_action_space_discrete_from_json(as, where, c->actions, &c->num_actions, err);
    if (rc != CH_OK) return rc;
  }
  c->action_space_type = type;
  return CH_OK;
}

static int ch__read_model(const cJSON *m, const char *source, ch_train_config *c, ch_error *err) {
  static const char *const keys[] = {"action_space",    "action_space_type",   "sensor",
                                     "neural_network",  "training_algorithm",  "version",
                                     "preprocess_type", "regional_parameters", NULL};
  int rc = ch__unknown_keys(m, source, keys, err);
  if (rc != CH_OK) return rc;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "version");
  if (v && !cJSON_IsString(v) && !cJSON_IsNumber(v))
    return ch_error_set(err, CH_EINVAL, "%s: version: must be a string or a number", source);
  v = cJSON_GetObjectItemCaseSensitive(m, "preprocess_type");
  if (v && (!cJSON_IsString(v) || strcmp(v->valuestring, "GREY_SCALE") != 0))
    return ch_error_set(err, CH_EINVAL,
                        "%s: preprocess_type: chicane's camera is grayscale, so only "
                        "\"GREY_SCALE\" is supported",
                        source);
  rc = ch__read_action_space(m, source, c, err);
  if (rc == CH_OK && (v = cJSON_GetObjectItemCaseSensitive(m, "sensor")))
    rc = ch__read_sensors(v, source, c, err);
  if (rc == CH_OK && (v = cJSON_GetObjectItemCaseSensitive(m, "neural_network")))
    rc = ch__read_network(v, source, c, err);
  if (rc == CH_OK && (v = cJSON_GetObjectItemCaseSensitive(m, "training_algorithm")))
    rc = ch__read_algorithm(v, source, c, err);
  return rc;
}

int ch_metadata_read_model(const char *text, const char *source, ch_train_config *c,
                           ch_error *err) {
  cJSON *m;
  int rc = ch__parse(text, source, &m, err);
  if (rc != CH_OK) return rc;
  rc = ch__read_model(m, source, c, err);
  cJSON_Delete(m);
  return rc;
}

/* A number, or a string holding one (SageMaker passes hyperparameters as strings), in
** [lo, hi] ((lo, hi] when open_low). */
static int ch__hp_number(const cJSON *v, const char *source, double lo, double hi, int open_low,
                         int integer, double *out, ch_error *err) {
  double d = NAN;
  if (cJSON_IsNumber(v)) {
    d = v->valuedouble;
  } else if (cJSON_IsString(v) && v->valuestring[0]) {
    char *end;
    d = strtod(v->valuestring, &end);
    if (*end) d = NAN;
  }
  if (!(d >= lo && d <= hi) || (open_low && d == lo) || (integer && d != floor(d)))
    return ch_error_set(err, CH_EINVAL, "%s: %s: must be %s in %c%g, %g]", source, v->string,
                        integer ? "an integer" : "a number", open_low ? '(' : '[', lo, hi);
  *out = d;
  return CH_OK;
}

static int ch__hp_choice(const cJSON *v, const char *source, const char *a, const char *b, int *out,
                         ch_error *err) {
  const char *s = cJSON_GetStringValue(v);
  if (s && strcmp(s, a) == 0)
    *out = 0;
  else if (s && strcmp(s, b) == 0)
    *out = 1;
  else
    return ch_error_set(err, CH_EINVAL, "%s: %s: must be \"%s\" or \"%s\"", source, v->string, a,
                        b);
  return CH_OK;
}

/* One hyperparameter, by name; CH_ENOTFOUND for a name that is not one. */
static int ch__hp_one(const cJSON *v, const char *source, ch_hyperparameters *hp, ch_error *err) {
  const char *k = v->string;
  double d = 0;
  int rc = CH_OK;
#define CH__NUM(name, lo, hi, open, integer, assign)                                               \
  if (strcmp(k, name) == 0) {                                                                      \
    if ((rc = ch__hp_number(v, source, lo, hi, open, integer, &d, err)) == CH_OK) assign;          \
    return rc;                                                                                     \
  }
  CH__NUM("batch_size", 1, 65536, 0, 1, hp->batch_size = (int)d)
  CH__NUM("beta_entropy", 0, 1, 0, 0, hp->beta_entropy = d)
  CH__NUM("discount_factor", 0, 1, 1, 0, hp->discount_factor = d)
  CH__NUM("e_greedy_value", 0, 1, 0, 0, hp->e_greedy_value = d)
  CH__NUM("epsilon_steps", 0, 1e9, 0, 1, hp->epsilon_steps = (int)d)
  CH__NUM("lr", 0, 1, 1, 0, hp->lr = d)
  CH__NUM("num_episodes_between_training", 1, 100000, 0, 1,
          hp->num_episodes_between_training = (int)d)
  CH__NUM("num_epochs", 1, 100, 0, 1, hp->num_epochs = (int)d)
  CH__NUM("stack_size", 1, 8, 0, 1, hp->stack_size = (int)d)
  CH__NUM("term_cond_avg_score", -1e9, 1e9, 0, 0, hp->term_cond_avg_score = d)
  CH__NUM("term_cond_max_episodes", 0, 1e15, 0, 1, hp->term_cond_max_episodes = (int64_t)d)
  CH__NUM("sac_alpha", 0, 1e3, 1, 0, hp->sac_alpha = d)
  CH__NUM("value_clip", 0, 1e3, 0, 0, hp->value_clip = d)
  CH__NUM("target_kl", 0, 10, 0, 0, hp->target_kl = d)
#undef CH__NUM
  if (strcmp(k, "loss_type") == 0)
    return ch__hp_choice(v, source, "huber", "mean squared error", &hp->loss_type, err);
  if (strcmp(k, "exploration_type") == 0)
    return ch__hp_choice(v, source, "categorical", "e-greedy", &hp->exploration_type, err);
  return ch_error_set(err, CH_ENOTFOUND, "%s: %s: unknown key", source, k);
}

int ch_metadata_read_hyperparameters(const char *text, const char *source, ch_train_config *c,
                                     ch_error *err) {
  cJSON *o;
  int rc = ch__parse(text, source, &o, err);
  if (rc != CH_OK) return rc;
  ch_hyperparameters hp = c->hp;
  for (const cJSON *v = o->child; v && rc == CH_OK; v = v->next)
    rc = ch__hp_one(v, source, &hp, err);
  cJSON_Delete(o);
  if (rc == CH_ENOTFOUND) rc = CH_EINVAL;
  if (err && rc != CH_OK) err->code = rc;
  if (rc == CH_OK) c->hp = hp;
  return rc;
}

static int ch__load(const char *path, ch_train_config *c,
                    int (*read)(const char *, const char *, ch_train_config *, ch_error *),
                    ch_error *err) {
  char *text = NULL;
  int rc = ch_read_file(path, &text, NULL, err);
  if (rc != CH_OK) return rc;
  rc = read(text, path, c, err);
  free(text);
  return rc;
}

int ch_metadata_load_model(const char *path, ch_train_config *c, ch_error *err) {
  return ch__load(path, c, ch_metadata_read_model, err);
}

int ch_metadata_load_hyperparameters(const char *path, ch_train_config *c, ch_error *err) {
  return ch__load(path, c, ch_metadata_read_hyperparameters, err);
}
