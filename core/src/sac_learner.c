/* sac_learner.c -- SAC's side of the trainer: the critics, the replay memory, the updates. */
#include "sac_learner.h"

#include "loader.h"
#include "obs.h"
#include "rng.h"
#include "runtime.h"

#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH__BLOB_MAGIC 0x43534143u /* "CASC": the critics' blob */

static const char *const ch__critic_name[4] = {"q1", "q2", "q1_target", "q2_target"};

struct ch_sac_learner {
  ch_plugin *mlp;
  ch_net q[4]; /* q1, q2, q1_target, q2_target */
  ch_sac *sac;
  int D, B;
  uint32_t O, I, IN; /* vector floats, image bytes, network input floats */
  ch_buffer replay;  /* the memory plugin: the held records, oldest pulled first */
  int64_t cap, size; /* transitions: the cap and those held */
  size_t cap_bytes, bytes;
  uint32_t most; /* the most transitions a record added held: j is drawn in [0, most) */
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

/* The minibatch arrays, and the replay buffer: a memory plugin that never refuses a push the
** caps allow (every held record has a transition, so records <= transitions). */
static int ch__alloc(ch_sac_learner *l, ch_error *err) {
  size_t IN = l->IN, D = (size_t)l->D, B = (size_t)l->B;
  l->cap = CH_SAC_REPLAY;
  l->cap_bytes = CH_SAC_REPLAY_BYTES;
  l->mb_obs = malloc(sizeof(float) * B * IN);
  l->mb_next = malloc(sizeof(float) * B * IN);
  l->mb_act = malloc(sizeof(float) * B * D);
  l->mb_rew = malloc(sizeof(float) * B);
  l->mb_done = malloc(sizeof(float) * B);
  if (!(l->mb_obs && l->mb_next && l->mb_act && l->mb_rew && l->mb_done))
    return ch_error_set(err, CH_ENOMEM, "sac: out of memory");
  char json[64];
  snprintf(json, sizeof json, "{\"max_records\": %d}", CH_SAC_REPLAY);
  return ch_buffer_open("memory", json, &l->replay, err);
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
  if (rc == CH_OK) rc = ch__alloc(l, err);
  return rc;
}

/* Transitions in a segment: each step followed by one in it, and the last step when the
** episode ended there in a terminal state (without a future its s' does not matter). */
static uint32_t ch__transitions(const ch_segment *s) {
  return s->num_steps - 1 + ((s->flags & CH_SEGMENT_TERMINAL) != 0);
}

/* Pull the oldest held record out and forget its transitions and bytes. */
static int ch__evict(ch_sac_learner *l, ch_error *err) {
  ch_record rec;
  int got = l->replay.vt->pull(l->replay.h, 0, &rec, err);
  if (got < 0) return got;
  if (got == 0)
    return ch_error_set(err, CH_EINVAL, "sac replay: %lld transitions counted, none held",
                        (long long)l->size);
  ch_segment s;
  int rc = ch_segment_view(rec.data, rec.len, &s, err);
  if (rc == CH_OK) {
    l->size -= ch__transitions(&s);
    l->bytes -= rec.len;
  }
  l->replay.vt->ack(l->replay.h, &rec);
  return rc;
}

/* CH_OK when the record is a valid segment with the learner's shapes; s views it. */
static int ch__check(const ch_sac_learner *l, const void *record, size_t len, ch_segment *s,
                     ch_error *err) {
  ch_error e = {0, ""};
  if (ch_segment_decode(record, len, s, &e) != CH_OK)
    return ch_error_set(err, CH_ECORRUPT, "sac replay: record rejected: %s", e.message);
  if (s->obs_size != l->O || s->image_size != l->I || s->action_size != (uint32_t)l->D)
    return ch_error_set(err, CH_ECORRUPT,
                        "sac replay: record rejected: %u obs floats, %u image bytes, %u action "
                        "floats; the model has %u, %u, %d",
                        s->obs_size, s->image_size, s->action_size, l->O, l->I, l->D);
  return CH_OK;
}

int ch_sac_learner_add_record(ch_sac_learner *l, const void *record, size_t len, ch_error *err) {
  ch_segment s;
  int rc = ch__check(l, record, len, &s, err);
  if (rc != CH_OK) return rc;
  uint32_t n = ch__transitions(&s);
  if (n == 0) return CH_OK;
  if (n > l->cap || len > l->cap_bytes)
    return ch_error_set(err, CH_ERANGE,
                        "sac replay: a record of %u transitions and %zu bytes exceeds the caps "
                        "(%lld transitions, %zu bytes)",
                        n, len, (long long)l->cap, l->cap_bytes);
  while (rc == CH_OK && l->size > 0 && (l->size + n > l->cap || l->bytes + len > l->cap_bytes))
    rc = ch__evict(l, err);
  if (rc == CH_OK) rc = l->replay.vt->push(l->replay.h, s.policy_version, record, len, err);
  if (rc != CH_OK) return rc;
  l->size += n;
  l->bytes += len;
  if (n > l->most) l->most = n;
  return CH_OK;
}

int64_t ch_sac_learner_size(const ch_sac_learner *l) {
  return l->size;
}

int ch_sac_learner_set_caps(ch_sac_learner *l, int64_t transitions, size_t bytes, ch_error *err) {
  if (transitions < 1 || transitions > CH_SAC_REPLAY || bytes < 1 || bytes > CH_SAC_REPLAY_BYTES)
    return ch_error_set(err, CH_EINVAL,
                        "sac replay: caps must be 1..%d transitions and 1..%u bytes", CH_SAC_REPLAY,
                        CH_SAC_REPLAY_BYTES);
  l->cap = transitions;
  l->cap_bytes = bytes;
  return CH_OK;
}

/* Row b of the minibatch from transition j of segment s. */
static void ch__copy(ch_sac_learner *l, const ch_segment *s, uint32_t j, int b) {
  size_t IN = l->IN, D = (size_t)l->D;
  uint32_t k = j + 1 < s->num_steps ? j + 1 : j; /* the terminal step's s' is never used */
  ch_obs_input(s->obs + (size_t)j * l->O, l->O, l->I ? s->image + (size_t)j * l->I : NULL, l->I,
               l->mb_obs + b * IN);
  ch_obs_input(s->obs + (size_t)k * l->O, l->O, l->I ? s->image + (size_t)k * l->I : NULL, l->I,
               l->mb_next + b * IN);
  memcpy(l->mb_act + b * D, s->action + (size_t)j * D, sizeof(float) * D);
  l->mb_rew[b] = s->reward[j];
  l->mb_done[b] = k == j ? 1.0f : 0.0f;
}

/* Row b: a uniform record, a uniform j in [0, most), again until j is one of its transitions. */
static int ch__draw(ch_sac_learner *l, uint64_t *rng, int b, ch_error *err) {
  for (;;) {
    ch_record rec;
    int got = l->replay.vt->sample(l->replay.h, rng, &rec, err);
    if (got < 0) return got;
    if (got == 0) return ch_error_set(err, CH_EINVAL, "sac replay: the memory is empty");
    ch_segment s;
    int rc = ch_segment_view(rec.data, rec.len, &s, err);
    uint32_t j = (uint32_t)(ch_rng_next(rng) % l->most);
    int hit = rc == CH_OK && j < ch__transitions(&s);
    if (hit) ch__copy(l, &s, j, b);
    l->replay.vt->ack(l->replay.h, &rec);
    if (rc != CH_OK || hit) return rc;
  }
}

int ch_sac_learner_sample(ch_sac_learner *l, uint64_t *rng, ch_sac_minibatch *mb, ch_error *err) {
  int rc = CH_OK;
  for (int b = 0; rc == CH_OK && b < l->B; b++) rc = ch__draw(l, rng, b, err);
  *mb = (ch_sac_minibatch){l->B, l->mb_obs, l->mb_next, l->mb_act, l->mb_rew, l->mb_done};
  return rc;
}

int ch_sac_learner_update(ch_sac_learner *l, int64_t steps, uint64_t *rng, ch_sac_stats *avg,
                          ch_error *err) {
  memset(avg, 0, sizeof *avg);
  if (l->size < l->B) return CH_OK;
  int64_t n = 0;
  for (; n < steps; n++) {
    ch_sac_stats st;
    ch_sac_minibatch mb;
    int rc = ch_sac_learner_sample(l, rng, &mb, err);
    if (rc != CH_OK) return rc;
    rc = ch_sac_update(l->sac, l->B, l->mb_obs, l->mb_act, l->mb_rew, l->mb_next, l->mb_done, rng,
                       &st, err);
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
  if (l->replay.vt) ch_buffer_close(&l->replay);
  void *bufs[] = {l->mb_obs, l->mb_next, l->mb_act, l->mb_rew, l->mb_done};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(l);
}
