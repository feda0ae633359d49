/* config.h -- the training configuration: read from a Lua training script, validated, as JSON. */
#ifndef CHICANE_CONFIG_H
#define CHICANE_CONFIG_H

#include "action_space.h"
#include "paths.h"

#include <chicane/plugin.h>
#include <cjson/cJSON.h>
#include <stdint.h>

/*
** A training script is a Lua file (run in the sandbox, see sandbox.h) that returns a table of
** settings; scripts/default.lua shows them all with comments. Keys (all optional except reward
** and action_space, which a deepracer model_metadata file may supply instead):
**
**   model            string   "model"        the model's name, [A-Za-z0-9._-], 1..100
**   track | tracks   string | {string, ...}  one track, or up to 8 trained at once (names of
**                                            tracks/ or paths to .track files); "bayside"
**   reward           string                  the reward script, relative to the script's
**                                            directory, else to the data directory
**   action_space     table                   a list of {steering_angle = , speed = } (1..64,
**                                            discrete) or {steering_angle = {low, high},
**                                            speed = {low, high}} (continuous); helpers:
**                                            action_grid, console_actions, linspace,
**                                            mirror_actions (action_space.h)
**   sensor           {string, ...}  {"state"} "state", "camera", "stereo", "lidar",
**                                            "sector_lidar" (as the env's "sensors")
**   camera           {downscale = 1|2|4}     camera image 160x120 / downscale
**   lidar            {max_range = metres}    passed to the env
**   network          {plugin = "mlp"|"cnn", hidden = {64, 64}, activation = "tanh"|"relu",
**                     architecture = "shallow"|"deep"|"deeper", shared = bool}
**                                            plugin defaults to "cnn" with a camera, else
**                                            "mlp"; architecture is the cnn's
**   algorithm        "clipped_ppo" | "sac"   sac needs a continuous action space
**   hyperparameters  {DeepRacer names}       see ch_hyperparameters
**   race_type        "time_trial" | "object_avoidance" | "head_to_head"
**   objects, bots    tables as the env takes them (plugins/sim2d/sim2d.c USAGE); objects
**                    need object_avoidance, bots head_to_head
**   start            {advance = 0.05, offset = 0, alternate_direction = false}
**   stop             {max_seconds, max_episodes, max_iterations, avg_progress, eval_laps}
**   clone_from       string                  start from that model's latest weights
**   on_iteration     function(stats, training) called after each iteration (schedule.h)
**   deepracer        {model_metadata = "path.json", hyperparameters = "path.json"}: take the
**                    action space, sensor, network, algorithm and hyperparameters from a
**                    DeepRacer model's files; the script's own keys override them
**   workers, cars_per_worker, segment_steps, max_steps, seed   as below
**   start_advance    number                  the same as start.advance (older scripts)
**   plugins          {env =, network =, buffer =, storage =}   plugin names
**
** Every error names the script and the key ("train.lua: hyperparameters.lr: must be > 0"),
** and is reported by ch_config_load before any training starts.
*/

#define CH_MAX_HIDDEN   8
#define CH_MAX_TRACKS   8
#define CH_MAX_SENSORS  4
#define CH_ENV_JSON_MAX 4096 /* bytes of the objects / bots / lidar JSON kept in the config */

typedef enum ch_loss_type { CH_LOSS_HUBER = 0, CH_LOSS_MSE = 1 } ch_loss_type;

typedef enum ch_exploration_type {
  CH_EXPLORATION_CATEGORICAL = 0, /* sample from the policy (PPO's own exploration) */
  CH_EXPLORATION_E_GREEDY = 1     /* DeepRacer's "e-greedy": a random action with e_greedy_value */
} ch_exploration_type;

/* DeepRacer's hyperparameters.json names and console defaults. */
typedef struct ch_hyperparameters {
  int batch_size;                    /* 64: PPO minibatch */
  int num_epochs;                    /* 10 */
  double lr;                         /* 0.0003 */
  double beta_entropy;               /* 0.01 */
  double discount_factor;            /* 0.999 */
  int loss_type;                     /* huber */
  int num_episodes_between_training; /* 20 */
  /* The rest of DeepRacer's names (added for the full hyperparameters.json): */
  double e_greedy_value; /* 0.05: with exploration_type e-greedy, the chance of a random action */
  int epsilon_steps;     /* 10000: steps over which e-greedy's epsilon decays to the value */
  int exploration_type;  /* ch_exploration_type; "categorical" */
  int stack_size;        /* 1: camera frames stacked per observation (the env's camera) */
  double term_cond_avg_score;     /* stop when an iteration's mean episode reward reaches it;
                                  ** 0 = no such condition (DeepRacer's templates use 350) */
  int64_t term_cond_max_episodes; /* stop after this many episodes; 0 = none (DeepRacer's
                                  ** templates use 1000) */
  double sac_alpha;               /* 0.2: SAC's entropy coefficient */
  /* chicane's PPO extras (not DeepRacer names; 0 turns each off, the default): */
  double value_clip; /* value clipping range, SB3's clip_range_vf (in scaled return units) */
  double target_kl;  /* stop an update early once approx_kl passes 1.5 x target_kl */
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
  char track[256]; /* as written in the script: tracks[0] */
  char track_path[CH_PATH_MAX];
  char reward[CH_PATH_MAX]; /* resolved path of the reward script */
  int num_actions;          /* discrete: 1..64; continuous: 0 */
  ch_action actions[CH_MAX_ACTIONS];
  int num_hidden;
  int hidden[CH_MAX_HIDDEN];
  char activation[16];
  ch_hyperparameters hp;
  ch_stop_conditions stop;
  int workers; /* rollout threads */
  /* PPO update threads: each minibatch is split over network replicas and their gradients
  ** summed (data_parallel.h). 0 = automatic, which is 1 today: for batch 64 the split does not
  ** pay on 2 cores (see trainer.c); wider networks or bigger batches may gain from 2..16. */
  int update_threads;
  int cars_per_worker;  /* cars stepped together by one env handle */
  int segment_steps;    /* an episode is cut into segments of at most this many steps */
  int max_steps;        /* per training episode */
  double start_advance; /* start line moves by this fraction of the track each episode */
  uint64_t seed;
  char env_plugin[64], network_plugin[64], buffer_plugin[64], storage_plugin[64];

  /* ---- added with the full front end (issue 4); the trainer wires them in ---------------- */

  /* Tracks trained at once (tracks = {...}); tracks[0] and track_paths[0] equal track and
  ** track_path. Worker w drives tracks[w % num_tracks]. */
  int num_tracks; /* 1..CH_MAX_TRACKS */
  char tracks[CH_MAX_TRACKS][256];
  char track_paths[CH_MAX_TRACKS][CH_PATH_MAX];

  /* Action space: ch_action_space_type. Continuous: num_actions is 0, the policy outputs two
  ** numbers in [-1, 1] that ch_action_space_scale maps onto action_ranges. */
  int action_space_type;
  ch_action_ranges action_ranges;

  /* Sensors as the env names them ("state", "camera", "stereo", "lidar", "sector_lidar"). */
  int num_sensors;
  char sensors[CH_MAX_SENSORS][16];
  int camera_downscale; /* 1, 2 or 4: camera images of 160x120 / downscale */

  /* Network: architecture of the cnn plugin ("shallow", "deep"; "deeper" names DeepRacer's
  ** third network, which the cnn plugin does not offer); shared: one trunk for the policy and
  ** value heads (mlp default 0, cnn default 1). */
  char architecture[16];
  int shared;

  char algorithm[16]; /* "clipped_ppo" (default) or "sac" */

  /* Race: "time_trial" (default), "object_avoidance" or "head_to_head"; objects_json,
  ** bots_json and lidar_json hold the env's "objects", "bots" and "lidar" values as JSON text
  ** ("" = the env's defaults), converted from the script's tables. */
  char race_type[32];
  char objects_json[CH_ENV_JSON_MAX];
  char bots_json[CH_ENV_JSON_MAX];
  char lidar_json[CH_ENV_JSON_MAX];

  /* Start positions: start_advance above is start.advance. offset is metres left (+) of the
  ** centre line (ch_env_reset.start_offset); alternate_direction makes every other episode
  ** drive the track the other way (ch_env_reset.reversed). */
  double start_offset;
  int alternate_direction;

  char clone_from[128]; /* a model whose latest weights training starts from; "" = none */
  int has_on_iteration; /* the script defines on_iteration (run it with schedule.h) */

  /* The DeepRacer files the script named (resolved paths; "" = none). */
  char deepracer_model_metadata[CH_PATH_MAX];
  char deepracer_hyperparameters[CH_PATH_MAX];
} ch_train_config;

/* The defaults used for every key a script leaves out. */
void ch_config_defaults(ch_train_config *c);

/* Run the training script (sandboxed) and validate what it returns, including creating the
** env once per track with the script's env settings so that the env's own checks (objects,
** bots, sensors) report before training. Errors name the script and the key
** ("scripts/x.lua: hyperparameters.lr: must be in (0, 1]"). */
int ch_config_load(const char *script, ch_train_config *c, ch_error *err);

/* Check ranges and combinations of an already filled config; same error style. */
int ch_config_validate(const ch_train_config *c, ch_error *err);

/* Create the env plugin once for each track with ch_config_env_json and destroy it: the
** env's own validation, reported as "script: key: env message". ch_config_load calls it. */
int ch_config_check_env(const ch_train_config *c, ch_error *err);

/* JSON views (caller deletes): the action space as DeepRacer's model_metadata action_space
** (a list when discrete, the ranges object when continuous), the hyperparameters with
** DeepRacer names (every key; see also metadata.h), and the whole configuration. */
cJSON *ch_config_actions_json(const ch_train_config *c);
cJSON *ch_config_hyperparameters_json(const ch_train_config *c);
cJSON *ch_config_json(const ch_train_config *c);

/* The env plugin's configuration for one env handle of num_cars cars on the track at
** track_path: max_steps, seed, sensors, camera, lidar, race_type, objects, bots. */
cJSON *ch_config_env_json(const ch_train_config *c, const char *track_path, uint32_t num_cars);

/* The network plugin's configuration for the state sensor with the mlp plugin (input size
** from the env). Kept for the trainer; ch_config_network_json_for covers every case. */
cJSON *ch_config_network_json(const ch_train_config *c, uint32_t input_size);

/* The network plugin's configuration for an env with this spec: mlp {input_size, hidden,
** activation, shared, num_actions, head, seed} or cnn {image {width, height, channels},
** vector_size, architecture, shared, num_actions, head, seed}; a continuous action space
** gets the gaussian head with 2 action dimensions. NULL (with err) when the network cannot
** read the env's observation (mlp with a camera, cnn without one). */
cJSON *ch_config_network_json_for(const ch_train_config *c, const ch_env_spec *spec, ch_error *err);

/* Read back the action space from ch_config_actions_json's discrete form. */
int ch_config_actions_from_json(const cJSON *arr, ch_action *out, int *count, ch_error *err);

/* Read back either form into c (action_space_type, actions or action_ranges). */
int ch_config_action_space_from_json(const cJSON *v, ch_train_config *c, ch_error *err);

/* 1 when the sensors include name. */
int ch_config_has_sensor(const ch_train_config *c, const char *name);

/* Push the training script's returned table onto sb's stack: runs the helpers of
** action_space.h, then the script (for schedule.c, which needs its on_iteration). */
struct ch_sandbox;
int ch_config_run_script(struct ch_sandbox *sb, const char *script, ch_error *err);

#endif
