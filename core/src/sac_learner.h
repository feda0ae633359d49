/* sac_learner.h -- SAC's side of the trainer: the critics, the replay memory, the updates. */
#ifndef CHICANE_SAC_LEARNER_H
#define CHICANE_SAC_LEARNER_H

#include "config.h"
#include "sac.h"
#include "segment.h"

#include <stdint.h>

/*
** PPO learns from the current policy's segments only; SAC is off-policy: every segment's
** transitions go into a replay memory (a ring of CH_SAC_REPLAY transitions, oldest dropped),
** and each iteration takes as many gradient steps as it collected env steps (one update per
** step, as DeepRacer's SAC), on minibatches of hp.batch_size drawn uniformly from the memory.
**
** A transition is (s, u, r, s', done) inside one segment: its last step has no s' in the
** segment, so it is kept only when the episode ended there in a terminal state (done = 1);
** a step cut by the segment length or the time limit is dropped (1 in segment_steps).
**
** The actor is the trainer's network (gaussian head; its value head is unused). The critics
** q1, q2 and their targets are mlp networks with the actor's hidden layers over the
** observation and the action, made by the same network plugin. Their weights and alpha's
** state are one blob (ch_sac_learner_save) that the trainer stores beside each checkpoint, so
** that --resume continues exactly.
*/

#define CH_SAC_REPLAY 200000 /* transitions kept */

typedef struct ch_sac_learner ch_sac_learner;

/* Create the critics for an actor that reads input_size floats (image then vector, obs.h)
** from segments with obs_size vector floats and image_size image bytes. */
int ch_sac_learner_create(const ch_train_config *c, const ch_plugin *net_plugin, ch_net *actor,
                          uint32_t obs_size, uint32_t image_size, ch_sac_learner **out,
                          ch_error *err);

/* Copy a segment's transitions into the replay memory. */
void ch_sac_learner_add(ch_sac_learner *l, const ch_segment *s);

/* Transitions held now. */
int64_t ch_sac_learner_size(const ch_sac_learner *l);

/* steps updates (none until the memory holds a minibatch); avg gets the mean stats. */
int ch_sac_learner_update(ch_sac_learner *l, int64_t steps, uint64_t *rng, ch_sac_stats *avg,
                          ch_error *err);

/* The critics' weights and alpha's state as one blob (free with free()), and back. */
int ch_sac_learner_save(ch_sac_learner *l, void **blob, size_t *len, ch_error *err);
int ch_sac_learner_load(ch_sac_learner *l, const void *blob, size_t len, ch_error *err);

void ch_sac_learner_free(ch_sac_learner *l);

#endif
