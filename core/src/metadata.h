/* metadata.h -- DeepRacer's model files: model_metadata.json and hyperparameters.json. */
#ifndef CHICANE_METADATA_H
#define CHICANE_METADATA_H

#include "config.h"

#include <chicane/plugin.h>
#include <cjson/cJSON.h>
#include <stddef.h>

/*
** model_metadata.json, as the DeepRacer console exports it and the car reads it:
**
**   action_space        discrete: [{"steering_angle": -30, "speed": 0.5, "index": 0}, ...]
**                       continuous: {"steering_angle": {"low": -30, "high": 30},
**                                    "speed": {"low": 0.5, "high": 4}}
**   action_space_type   "discrete" | "continuous" (older files omit it: the form decides)
**   sensor              DeepRacer names: "FRONT_FACING_CAMERA", "STEREO_CAMERAS", "LIDAR",
**                       "SECTOR_LIDAR"; chicane's compact state vector is written "STATE"
**                       (a name DeepRacer does not know, so its tools refuse such a model
**                       rather than misread it). Older files omit it: a front camera.
**   neural_network      "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW" (cnn "shallow"),
**                       "DEEP_CONVOLUTIONAL_NETWORK" (cnn "deep"),
**                       "DEEP_CONVOLUTIONAL_NETWORK_DEEP" (cnn "deeper"); chicane's MLP is
**                       "MLP" followed by "_<width>" per hidden layer, e.g. "MLP_64_64"
**   training_algorithm  "clipped_ppo" | "sac"
**   version             "5" when written; any string or number is read
**   preprocess_type     read: "GREY_SCALE" only (chicane's camera is grayscale)
**   regional_parameters read and ignored (a console detail)
**
** hyperparameters.json: every name of ch_hyperparameters, DeepRacer's spelling ("loss_type":
** "huber" | "mean squared error", "exploration_type": "categorical" | "e-greedy"). Numbers may
** also be numeric strings, as SageMaker passes them. Unknown keys are an error naming the key.
**
** Reading fills only what a file says; the rest of the config stays as it was.
*/

/* The complete files for c (caller deletes). */
cJSON *ch_metadata_model_json(const ch_train_config *c);
cJSON *ch_metadata_hyperparameters_json(const ch_train_config *c);

/* Parse a file's text into c. source names the file in messages ("path: sensor[1]: ..."). */
int ch_metadata_read_model(const char *text, const char *source, ch_train_config *c, ch_error *err);
int ch_metadata_read_hyperparameters(const char *text, const char *source, ch_train_config *c,
                                     ch_error *err);

/* The same from files. */
int ch_metadata_load_model(const char *path, ch_train_config *c, ch_error *err);
int ch_metadata_load_hyperparameters(const char *path, ch_train_config *c, ch_error *err);

/* DeepRacer's name of an env sensor ("camera" -> "FRONT_FACING_CAMERA") and back; NULL when
** there is none. */
const char *ch_metadata_sensor_name(const char *env_sensor);
const char *ch_metadata_env_sensor(const char *deepracer_sensor);

/* The neural_network value for c's network. */
void ch_metadata_network_name(const ch_train_config *c, char *out, size_t n);

#endif
