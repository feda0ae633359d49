/* sac_learner.h -- SAC's side of the trainer: the critics, the replay memory, the updates. */
#ifndef CHICANE_SAC_LEARNER_H
#define CHICANE_SAC_LEARNER_H

#include "config.h"
#include "sac.h"
#include "segment.h"

#include <stdint.h>

/*
** PPO learns from the current policy's segments only; SAC is off-policy: every segment goes
** into a replay memory, and each iteration takes as many gradient steps as it collected env
** steps (one update per step, as DeepRacer's SAC), on minibatches of hp.batch_size drawn
** uniformly from the memory.
**
** A transition is (s, u, r, s', done) inside one segment: its last step has no s' in the
** segment, so it is kept only when the episode ended there in a terminal state (done = 1);
** a step cut by the segment length or the time limit is dropped (1 in segment_steps).
**
** The replay memory is a buffer of the memory plugin owned by the learner, holding the
** encoded segment records as they came (a step's observation is stored once, its image as
** bytes). It is a FIFO of the last records: before a record goes in, the oldest are pulled
** out until the held transitions and record bytes stay within CH_SAC_REPLAY and
** CH_SAC_REPLAY_BYTES. A minibatch row samples a record uniformly (the plugin's sample),
** then a step j uniformly in [0, M) with M the most transitions any record added held, and
** draws again when j is not a transition of that record: this rejection makes every held
** transition equally likely although an episode's last segment is shorter. The row gets the
** network inputs of s and s' (obs.h), the action, the reward and done.
**
** The actor is the trainer's network (gaussian head; its value head is unused). The critics
** q1, q2 and their targets are mlp networks with the actor's hidden layers over the
** observation and the action, made by the same network plugin. Their weights and alpha's
** state are one blob (ch_sac_learner_save) that the trainer stores beside each checkpoint, so
** that --resume continues exactly. The replay memory is not saved: a resumed run refills it.
*/

#define CH_SAC_REPLAY       200000     /* transitions kept */
#define CH_SAC_REPLAY_BYTES (1u << 30) /* a camera's records are big: keep at most 1 GiB */

typedef struct ch_sac_learner ch_sac_learner;

/* Create the critics for an actor that reads input_size floats (image then vector, obs.h)
** from segments with obs_size vector floats and image_size image bytes. */
int ch_sac_learner_create(const ch_train_config *c, const ch_plugin *net_plugin, ch_net *actor,
                          uint32_t obs_size, uint32_t image_size, ch_sac_learner **out,
                          ch_error *err);

/* Keep a copy of an encoded segment record (as ch_segment_encode wrote it; 4-byte aligned) in
** the replay memory, evicting the oldest records beyond the caps. A record without transitions
** is not kept. CH_ECORRUPT when the bytes are not a segment with this learner's shapes (nothing
** held changes then), CH_ERANGE when one record alone exceeds a cap, CH_ENOMEM. */
int ch_sac_learner_add_record(ch_sac_learner *l, const void *record, size_t len, ch_error *err);

/* Transitions held now. */
int64_t ch_sac_learner_size(const ch_sac_learner *l);

/* Lower the caps (transitions in [1, CH_SAC_REPLAY], bytes in [1, CH_SAC_REPLAY_BYTES]); they
** take effect at the next add. For tests, which cannot fill 200000 transitions cheaply. */
int ch_sac_learner_set_caps(ch_sac_learner *l, int64_t transitions, size_t bytes, ch_error *err);

/* One minibatch: n rows, views into the learner valid until its next draw or update. */
typedef struct ch_sac_minibatch {
  int n;
  const float *obs, *next; /* n * input_size network inputs */
  const float *act;        /* n * action dims */
  const float *rew, *done;
} ch_sac_minibatch;

/* Draw a minibatch of hp.batch_size transitions, as update does (tests look at it). CH_EINVAL
** when the memory is empty. */
int ch_sac_learner_sample(ch_sac_learner *l, uint64_t *rng, ch_sac_minibatch *mb, ch_error *err);

/* steps updates (none until the memory holds a minibatch); avg gets the mean stats. */
int ch_sac_learner_update(ch_sac_learner *l, int64_t steps, uint64_t *rng, ch_sac_stats *avg,
                          ch_error *err);

/* The critics' weights and alpha's state as one blob (free with free()), and back. */
int ch_sac_learner_save(ch_sac_learner *l, void **blob, size_t *len, ch_error *err);
int ch_sac_learner_load(ch_sac_learner *l, const void *blob, size_t len, ch_error *err);

void ch_sac_learner_free(ch_sac_learner *l);

#endif
