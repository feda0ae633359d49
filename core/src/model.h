/* model.h -- a model in storage and in the catalog: metadata files, checkpoints, latest pointer. */
#ifndef CHICANE_MODEL_H
#define CHICANE_MODEL_H

#include "config.h"
#include "policy.h"
#include "runtime.h"

#include <cjson/cJSON.h>

/* Storage layout of model NAME:
**   models/NAME/model_metadata.json     DeepRacer's format (action space, sensor, algorithm)
**   models/NAME/hyperparameters.json    DeepRacer's names
**   models/NAME/reward_function.lua     the reward script as trained
**   models/NAME/training_config.json    everything needed to rebuild the env and network
**   models/NAME/checkpoints/NNNNNN.ckpt the network plugin's blob after iteration N
**   models/NAME/latest.json             {"iteration", "key", "sha256"}, written after the blob */

/* Register a new model: refuse an existing name unless replace (then its catalog rows and
** stored objects are removed first), write the metadata objects, add the catalog row. */
int ch_model_create(ch_session *s, const ch_train_config *c, const cJSON *network_config,
                    int replace, ch_error *err);

/* Store one checkpoint blob, then the latest pointer, then the catalog row. */
int ch_model_save_checkpoint(ch_session *s, const char *model, const ch_checkpoint_info *info,
                             const void *blob, size_t len, ch_error *err);

/* The storage key of a checkpoint: models/NAME/checkpoints/NNNNNN.ckpt. */
void ch_model_checkpoint_key(const char *model, int64_t iteration, char *out, size_t cap);

/* A model loaded for acting. */
typedef struct ch_loaded_model {
  ch_model_info info;
  cJSON *config;   /* parsed info.config_json */
  int num_actions; /* discrete: the actions; 0 for a continuous space */
  ch_action actions[CH_MAX_ACTIONS];
  ch_policy_space space; /* either kind, as policy.h acts with it (actions point into this) */
  int64_t iteration;
  void *blob; /* release with ch_loaded_model_free */
  size_t blob_len;
} ch_loaded_model;

/* Load the latest checkpoint of a model, checking its SHA-256 against the catalog. */
int ch_model_load(ch_session *s, const char *model, ch_loaded_model *out, ch_error *err);
void ch_loaded_model_free(ch_session *s, ch_loaded_model *m);

#endif
