/* mlp_init.c -- mlp plugin: orthogonal initial weights, a pure function of the seed. */
#include "mlp.h"

#include <chicane/plugin_util.h>

int ch__mlp_init_params(ch_mlp *n, uint64_t seed, double log_std_init, ch_error *err) {
  ch_net_rng r;
  ch__net_rng_seed(&r, seed);
  for (uint32_t i = 0; i < n->num_layers; i++) {
    const ch_net_dense *L = &n->layer[i];
    int rc = ch__net_orthogonal("mlp", n->params + L->w, L->out, L->in, L->gain, &r, err);
    if (rc) return rc;
    memset(n->params + L->b, 0, L->out * sizeof *n->params);
  }
  if (n->arch.head == CH_NET_GAUSSIAN)
    for (uint32_t j = 0; j < n->arch.num_actions; j++)
      n->params[n->log_std + j] = (float)log_std_init;
  return CH_OK;
}
