/* mlp_test.h -- helpers the mlp plugin tests share: the generic ones under mlp_ names. */
#ifndef CH_MLP_TEST_H
#define CH_MLP_TEST_H

#include "net_test.h"

#define mlp_check           net_check
#define mlp_assert_contains net_assert_contains
#define mlp_new             net_new
#define mlp_count           net_count
#define mlp_params          net_params
#define mlp_grads           net_grads
#define mlp_randomize       net_randomize
#define mlp_grad_step       net_grad_step

static inline const ch_network_vtable *mlp_open(void) {
  return net_open("network_mlp.so");
}

#endif
