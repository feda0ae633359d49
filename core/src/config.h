/* config.h -- the training configuration: read from a Lua training script, validated, as JSON. */
#ifndef CHICANE_CONFIG_H
#define CHICANE_CONFIG_H

#include "paths.h"

#include <chicane/plugin.h>
#include <cjson/cJSON.h>
#include <stdint.h>

#define CH_MAX_ACTIONS 64
#define CH_MAX_HIDDEN  8

typedef struct ch_action {
  double steering_angle; /* degrees, + = left, [-30, 30] */
  double speed;          /* m/s, [0.1, 4] */
} ch_action;

typedef enum ch_loss_type { CH_LOSS_HUBER = 0, CH_LOSS_MSE = 1 } ch_loss_type;

/* DeepRacer's hyperparameters.json names and console defaults. */
typedef struct ch_hyperparameters {
  int batch_size;                    /* 64: PPO minibatch */
  int num_epochs;                    /* 10 */
  double lr;                         /* 0.0003 */
  double beta_entropy;               /* 0.01 */
  double discount_factor;            /* 0.999 */
  int loss_type;                     /* huber */
  int num_episodes_between_training; /* 20 */
} ch_hyperparameters;

typedef struct ch_stop_conditions {
  double max_seconds;   /* wall time; 0 = none */
  int64_t max_episodes; /* 0 = none */
  int64_t max_iterations;
  double avg_progress; /* stop when an iteration's mean progress reaches it; 0 = none */
  int eval_laps;       /* stop when a greedy evaluation completes this many of 3 trials */
} ch_stop_conditions;

typedef struct ch_train_config {
  char script[CH_PATH_MAX]; /* the training script */
  char model[128];
  char track[256]; /* as written in the script */
  char track_path[CH_PATH_MAX];
  char reward[CH_PATH_MAX]; /* resolved path of the reward script */
  int num_actions;
  ch_action actions[CH_MAX_ACTIONS];
  int num_hidden;
  int hidden[CH_MAX_HIDDEN];
  char activation[16];
  ch_hyperparameters hp;
  ch_stop_conditions stop;
  int workers;          /* rollout threads */
  int cars_per_worker;  /* cars stepped together by one env handle */
  int segment_steps;    /* an episode is cut into segments of at most this many steps */
  int max_steps;        /* per training episode */
  double start_advance; /* start line moves by this fraction of the track each episode */
  uint64_t seed;
  char env_plugin[64], network_plugin[64], buffer_plugin[64], storage_plugin[64];
} ch_train_config;

/* The defaults used for every key a script leaves out. */
void ch_config_defaults(ch_train_config *c);

/* Run the training script (sandboxed) and validate what it returns. Errors name the script and
** the key ("scripts/x.lua: hyperparameters.lr: must be > 0"). */
int ch_config_load(const char *script, ch_train_config *c, ch_error *err);

/* Check ranges of an already filled config; same error style. */
int ch_config_validate(const ch_train_config *c, ch_error *err);

/* JSON views (caller deletes): the action space as DeepRacer's model_metadata action_space,
** the hyperparameters with DeepRacer names, and the whole configuration. */
cJSON *ch_config_actions_json(const ch_train_config *c);
cJSON *ch_config_hyperparameters_json(const ch_train_config *c);
cJSON *ch_config_json(const ch_train_config *c);

/* The network plugin's configuration for this training (input size from the env). */
cJSON *ch_config_network_json(const ch_train_config *c, uint32_t input_size);

/* Read back the action space from ch_config_actions_json's form. */
int ch_config_actions_from_json(const cJSON *arr, ch_action *out, int *count, ch_error *err);

#endif
