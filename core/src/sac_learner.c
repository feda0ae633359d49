/* sac_learner.c -- SAC's side of the trainer: the critics, the replay memory, the updates. */
#include "sac_learner.h"

#include "loader.h"
#include "obs.h"
#include "rng.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH__REPLAY_BYTES (1u << 30)  /* a camera's transitions are big: keep at most 1 GiB */
#define CH__BLOB_MAGIC   0x43534143u /* "CASC": the critics' blob */

static const char *const ch__critic_name[4] = {"q1", "q2", "q1_target", "q2_target"};

struct ch_sac_learner {
  ch_plugin *mlp;
  ch_net q[4]; /* q1, q2, q1_target, q2_target */
  ch_sac *sac;
  int D, B;
  uint32_t O, I, IN; /* vector floats, image bytes, network input floats */
  int64_t cap, size, head;
  float *obs, *next, *act, *rew, *done; /* the replay ring */
  float *mb_obs, *mb_next, *mb_act, *mb_rew, *mb_done;
};

/* The critics read the observation and the action; hidden layers as the actor's. */
static char *ch__critic_json(const ch_train_config *c, uint32_t inputs, int k) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "input_size", inputs);
  cJSON_AddNumberToObject(o, "num_actions", 1);
  cJSON *h = cJSON_AddArrayToObject(o, "hidden");
  for (int i = 0; i < c->num_hidden; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(c->hidden[i]));
  cJSON_AddStringToObject(o, "activation", c->activation[0] ? c->activation : "tanh");
  cJSON_AddBoolToObject(o, "shared", 1);
  cJSON_AddNumberToObject(o, "seed", (double)((c->seed + 101u * (uint64_t)(k + 1)) & 0xffffffu));
  char *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return json;
}

static int ch__alloc(ch_sac_learner *l) {
  size_t IN = l->IN, D = (size_t)l->D, B = (size_t)l->B;
  size_t per = sizeof(float) * (2 * IN + D + 2);
  l->cap =
      CH__REPLAY_BYTES / per < CH_SAC_REPLAY ? (int64_t)(CH__REPLAY_BYTES / per) : CH_SAC_REPLAY;
  size_t cap = (size_t)l->cap;
  l->obs = malloc(sizeof(float) * cap * IN);
  l->next = malloc(sizeof(float) * cap * IN);
  l->act = malloc(sizeof(float) * cap * D);
  l->rew = malloc(sizeof(float) * cap);
  l->done = malloc(sizeof(float) * cap);
  l->mb_obs = malloc(sizeof(float) * B * IN);
  l->mb_next = malloc(sizeof(float) * B * IN);
  l->mb_act = malloc(sizeof(float) * B * D);
  l->mb_rew = malloc(sizeof(float) * B);
  l->mb_done = malloc(sizeof(float) * B);
  return l->obs && l->next && l->act && l->rew && l->done && l->mb_obs && l->mb_next && l->mb_act &&
                 l->mb_rew && l->mb_done
             ? CH_OK
             : CH_ENOMEM;
}

int ch_sac_learner_create(const ch_train_config *c, const ch_plugin *net_plugin, ch_net *actor,
                          uint32_t obs_size, uint32_t image_size, ch_sac_learner **out,
                          ch_error *err) {
  (void)net_plugin; /* the critics read flat vectors: always mlp */
  ch_sac_learner *l = calloc(1, sizeof *l);
  if (!l) return ch_error_set(err, CH_ENOMEM, "sac: out of memory");
  *out = l;
  l->D = (int)actor->spec.policy_size / 2;
  l->B = c->hp.batch_size;
  l->O = obs_size;
  l->I = image_size;
  l->IN = obs_size + image_size;
  int rc = ch_plugin_find(CH_PLUGIN_NETWORK, "mlp", &l->mlp, err);
  for (int k = 0; rc == CH_OK && k < 4; k++) {
    char *json = ch__critic_json(c, l->IN + (uint32_t)l->D, k);
    rc = json ? ch_net_create(l->mlp, json, &l->q[k], err) : CH_ENOMEM;
    cJSON_free(json);
  }
  ch_sac_config sc;
  ch_sac_config_defaults(&sc, l->D);
  sc.gamma = c->hp.discount_factor;
  sc.alpha = c->hp.sac_alpha;
  sc.lr_actor = sc.lr_critic = c->hp.lr;
  sc.batch_size = l->B;
  if (rc == CH_OK)
    rc = ch_sac_create(&sc, actor, &l->q[0], &l->q[1], &l->q[2], &l->q[3], l->IN, &l->sac, err);
  if (rc == CH_OK && ch__alloc(l) != CH_OK) rc = ch_error_set(err, CH_ENOMEM, "sac: out of memory");
  return rc;
}

/* One transition into the ring: network inputs of s and s'. */
static void ch__push(ch_sac_learner *l, const ch_segment *s, uint32_t i, uint32_t j, float done) {
  int64_t at = l->head;
  l->head = (l->head + 1) % l->cap;
  if (l->size < l->cap) l->size++;
  size_t IN = l->IN, D = (size_t)l->D;
  ch_obs_input(s->obs + (size_t)i * l->O, l->O, l->I ? s->image + (size_t)i * l->I : NULL, l->I,
               l->obs + (size_t)at * IN);
  ch_obs_input(s->obs + (size_t)j * l->O, l->O, l->I ? s->image + (size_t)j * l->I : NULL, l->I,
               l->next + (size_t)at * IN);
  memcpy(l->act + (size_t)at * D, s->action + (size_t)i * D, sizeof(float) * D);
  l->rew[at] = s->reward[i];
  l->done[at] = done;
}

void ch_sac_learner_add(ch_sac_learner *l, const ch_segment *s) {
  uint32_t T = s->num_steps;
  for (uint32_t i = 0; i + 1 < T; i++) ch__push(l, s, i, i + 1, 0.0f);
  /* the last step: its s' is not here; without a future (terminal) it does not matter */
  if (T > 0 && (s->flags & CH_SEGMENT_TERMINAL)) ch__push(l, s, T - 1, T - 1, 1.0f);
}

int64_t ch_sac_learner_size(const ch_sac_learner *l) {
  return l->size;
}

static void ch__sample(ch_sac_learner *l, uint64_t *rng) {
  size_t IN = l->IN, D = (size_t)l->D;
  for (int b = 0; b < l->B; b++) {
    size_t j = (size_t)(ch_rng_next(rng) % (uint64_t)l->size);
    memcpy(l->mb_obs + b * IN, l->obs + j * IN, sizeof(float) * IN);
    memcpy(l->mb_next + b * IN, l->next + j * IN, sizeof(float) * IN);
    memcpy(l->mb_act + b * D, l->act + j * D, sizeof(float) * D);
    l->mb_rew[b] = l->rew[j];
    l->mb_done[b] = l->done[j];
  }
}

int ch_sac_learner_update(ch_sac_learner *l, int64_t steps, uint64_t *rng, ch_sac_stats *avg,
                          ch_error *err) {
  memset(avg, 0, sizeof *avg);
  if (l->size < l->B) return CH_OK;
  int64_t n = 0;
  for (; n < steps; n++) {
    ch_sac_stats st;
    ch__sample(l, rng);
    int rc = ch_sac_update(l->sac, l->B, l->mb_obs, l->mb_act, l->mb_rew, l->mb_next, l->mb_done,
                           rng, &st, err);
    if (rc != CH_OK) return rc;
    avg->critic_loss += st.critic_loss;
    avg->actor_loss += st.actor_loss;
    avg->entropy += st.entropy;
    avg->q_mean += st.q_mean;
    avg->alpha = st.alpha;
  }
  if (n > 0) {
    avg->critic_loss /= (double)n;
    avg->actor_loss /= (double)n;
    avg->entropy /= (double)n;
    avg->q_mean /= (double)n;
  }
  return CH_OK;
}

/*
** The blob: magic u32, then alpha's state (4 x 8 bytes), then for each critic its length (u64)
** and its network blob. Each network blob carries its own checksum.
*/
int ch_sac_learner_save(ch_sac_learner *l, void **blob, size_t *len, ch_error *err) {
  void *part[4] = {NULL};
  size_t plen[4] = {0}, total = 4 + sizeof(ch_sac_alpha_state);
  int rc = CH_OK;
  for (int k = 0; rc == CH_OK && k < 4; k++) {
    rc = l->q[k].vt->save(l->q[k].h, &part[k], &plen[k], err);
    total += 8 + plen[k];
  }
  unsigned char *out = rc == CH_OK ? malloc(total) : NULL;
  if (rc == CH_OK && !out) rc = ch_error_set(err, CH_ENOMEM, "sac: out of memory");
  if (out) {
    uint32_t magic = CH__BLOB_MAGIC;
    ch_sac_alpha_state a;
    ch_sac_get_alpha_state(l->sac, &a);
    size_t at = 0;
    memcpy(out, &magic, 4), at += 4;
    memcpy(out + at, &a, sizeof a), at += sizeof a;
    for (int k = 0; k < 4; k++) {
      uint64_t n = plen[k];
      memcpy(out + at, &n, 8), at += 8;
      memcpy(out + at, part[k], plen[k]), at += plen[k];
    }
    *blob = out;
    *len = total;
  }
  for (int k = 0; k < 4; k++)
    if (part[k]) l->q[k].vt->free_blob(l->q[k].h, part[k]);
  return rc;
}

int ch_sac_learner_load(ch_sac_learner *l, const void *blob, size_t len, ch_error *err) {
  const unsigned char *in = blob;
  uint32_t magic = 0;
  ch_sac_alpha_state a;
  if (len < 4 + sizeof a || (memcpy(&magic, in, 4), magic != CH__BLOB_MAGIC))
    return ch_error_set(err, CH_ECORRUPT, "sac critics: not a critics blob");
  memcpy(&a, in + 4, sizeof a);
  size_t at = 4 + sizeof a;
  int rc = ch_sac_set_alpha_state(l->sac, &a, err);
  for (int k = 0; rc == CH_OK && k < 4; k++) {
    uint64_t n = 0;
    if (len - at < 8 || (memcpy(&n, in + at, 8), n > len - at - 8))
      return ch_error_set(err, CH_ECORRUPT, "sac critics: %s is cut short", ch__critic_name[k]);
    rc = l->q[k].vt->load(l->q[k].h, in + at + 8, (size_t)n, err);
    at += 8 + (size_t)n;
  }
  return rc;
}

void ch_sac_learner_free(ch_sac_learner *l) {
  if (!l) return;
  ch_sac_free(l->sac);
  for (int k = 0; k < 4; k++) ch_net_destroy(&l->q[k]);
  ch_plugin_close(l->mlp);
  void *bufs[] = {l->obs,    l->next,    l->act,    l->rew,    l->done,
                  l->mb_obs, l->mb_next, l->mb_act, l->mb_rew, l->mb_done};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(l);
}
