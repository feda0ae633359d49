/* mlp_init.c -- mlp plugin: orthogonal initial weights, a pure function of the seed. */
#include "mlp.h"

#include <chicane/plugin_util.h>

int ch__mlp_init_params(void *net, ch_error *err) {
  ch_mlp *n = net;
  ch_net_rng r;
  ch__net_rng_seed(&r, n->core.init.seed);
  for (uint32_t i = 0; i < n->num_layers; i++) {
    const ch_net_dense *L = &n->layer[i];
    int rc = ch__net_orthogonal("mlp", n->core.params + L->w, L->out, L->in, L->gain, &r, err);
    if (rc) return rc;
    memset(n->core.params + L->b, 0, L->out * sizeof *n->core.params);
  }
  return CH_OK;
}
