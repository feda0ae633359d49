/* mlp_blob.c -- mlp plugin: the self-describing little-endian model blob (save and load). */
#include "mlp.h"

#include <chicane/plugin_util.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC   "CHMLP001"
#define BLOB_VERSION 2u
/* Version 2: magic, version, input_size, num_actions, activation, shared, head, number of
** hidden layers. Version 1 lacks the head field (its networks are all categorical). */
#define BLOB_FIXED_HEAD(version) (8 + ((version) == 1 ? 6 : 7) * 4)
/* The smallest blob of any version: no hidden layers, no parameters (then rejected for
** other reasons). */
#define BLOB_MIN (BLOB_FIXED_HEAD(1) + CH_NET_BLOB_TAIL)

/* ---- save --------------------------------------------------------------------------------- */

int ch__mlp_save(void *net, void **blob, size_t *len, ch_error *err) {
  const ch_mlp *n = net;
  const ch_mlp_arch *a = &n->arch;
  uint32_t words[7 + CH_MLP_MAX_HIDDEN] = {BLOB_VERSION,  a->input_size, a->num_actions,
                                           a->activation, a->shared,     a->head,
                                           a->num_hidden};
  memcpy(words + 7, a->hidden, a->num_hidden * sizeof *words);
  return ch__net_blob_save(&n->core, BLOB_MAGIC, words, 7 + a->num_hidden, blob, len, err);
}

/* ---- load --------------------------------------------------------------------------------- */

/* The architecture in a blob whose checksum matched; CH_ECORRUPT if it is not one this plugin
** can build or the length disagrees with it. *at becomes the offset of the parameter count. */
static int read_arch(const unsigned char *p, size_t len, ch_mlp_arch *a, size_t *at,
                     ch_error *err) {
  uint32_t version = ch__net_get_u32(p + 8);
  if (version != 1 && version != BLOB_VERSION)
    return ch_error_set(err, CH_ECORRUPT,
                        "model blob format version %u is not supported (this plugin reads 1 and "
                        "%u)",
                        version, BLOB_VERSION);
  memset(a, 0, sizeof *a);
  a->input_size = ch__net_get_u32(p + 12);
  a->num_actions = ch__net_get_u32(p + 16);
  a->activation = ch__net_get_u32(p + 20);
  a->shared = ch__net_get_u32(p + 24);
  a->head = version == 1 ? CH_NET_CATEGORICAL : ch__net_get_u32(p + 28);
  size_t fixed = BLOB_FIXED_HEAD(version);
  a->num_hidden = ch__net_get_u32(p + fixed - 4);
  int ok = a->input_size >= 1 && a->input_size <= CH_MLP_MAX_INPUT && a->num_actions >= 1 &&
           a->num_actions <= CH_MLP_MAX_ACTIONS && a->activation <= CH_MLP_RELU && a->shared <= 1 &&
           a->head <= CH_NET_GAUSSIAN && a->num_hidden <= CH_MLP_MAX_HIDDEN &&
           len >= fixed + 4 * (size_t)a->num_hidden + CH_NET_BLOB_TAIL;
  for (uint32_t i = 0; ok && i < a->num_hidden; i++) {
    a->hidden[i] = ch__net_get_u32(p + fixed + 4 * (size_t)i);
    ok = a->hidden[i] >= 1 && a->hidden[i] <= CH_MLP_MAX_WIDTH;
  }
  if (!ok) return ch_error_set(err, CH_ECORRUPT, "model blob is corrupt: invalid architecture");
  *at = fixed + 4 * (size_t)a->num_hidden;
  return ch__net_blob_check_count(p, *at, len, ch__mlp_param_count(a), err);
}

static int same_arch(const ch_mlp_arch *a, const ch_mlp_arch *b) {
  if (a->input_size != b->input_size || a->num_actions != b->num_actions ||
      a->activation != b->activation || a->shared != b->shared || a->head != b->head ||
      a->num_hidden != b->num_hidden)
    return 0;
  for (uint32_t i = 0; i < a->num_hidden; i++)
    if (a->hidden[i] != b->hidden[i]) return 0;
  return 1;
}

int ch__mlp_load(void *net, const void *blob, size_t len, ch_error *err) {
  ch_mlp *n = net;
  const unsigned char *p = blob;
  ch_error_clear(err);
  int rc = ch__net_blob_open(&n->core, p, len, BLOB_MAGIC, BLOB_MIN, err);
  if (rc) return rc;
  ch_mlp_arch arch;
  size_t at = 0;
  rc = read_arch(p, len, &arch, &at, err);
  if (rc) return rc;
  if (!same_arch(&arch, &n->arch)) {
    char have[256], want[256];
    ch__mlp_arch_describe(&arch, have, sizeof have);
    ch__mlp_arch_describe(&n->arch, want, sizeof want);
    return ch_error_set(err, CH_EINVAL,
                        "mlp load: the blob's architecture (%s) differs from this network's (%s)",
                        have, want);
  }
  ch__net_blob_restore(&n->core, p, at);
  return CH_OK;
}
