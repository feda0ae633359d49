/* obs.h -- the network input of one observation: the camera image in [0, 1], then the vector. */
#ifndef CHICANE_OBS_H
#define CHICANE_OBS_H

#include <stdint.h>
#include <string.h>

/* Every network plugin sees floats: image_size bytes of image (channel-major, as the env writes
** it) scaled by 1/255, followed by obs_size floats of vector observation (cnn's convention; the
** mlp gets the vector alone since image_size is 0 for it). out holds image_size + obs_size. */
static inline void ch_obs_input(const float *obs, uint32_t obs_size, const uint8_t *image,
                                uint32_t image_size, float *out) {
  for (uint32_t i = 0; i < image_size; i++) out[i] = (float)image[i] * (1.0f / 255.0f);
  if (obs_size) memcpy(out + image_size, obs, sizeof(float) * obs_size);
}

#endif
