/* data_parallel.h -- one minibatch split over network replicas on several cores. */
#ifndef CHICANE_DATA_PARALLEL_H
#define CHICANE_DATA_PARALLEL_H

#include "runtime.h"

#include <stdint.h>

/* A PPO minibatch of 64 rows through a 64x64 MLP takes tens of microseconds: too little for
** BLAS's own threads, enough to share out by rows. The main network keeps the rows of the
** first share and steps the optimizer; each replica (same plugin and config) takes the next
** share on its own thread, with the main network's parameters copied in before its forward,
** and its gradients are added to the main network's after its backward. Gradients are sums
** over rows, so the step is the one a single network would take (up to the order in which
** floats are added). The threads spin briefly between minibatches and sleep between updates. */
typedef struct ch_dp ch_dp;

/* threads (>= 2) counts the main network too; the replicas are made by main's plugin from
** net_json, main's own config. main must outlive the ch_dp. CH_EUNSUPPORTED when the network
** plugin lacks add_grads. */
int ch_dp_create(ch_net *main, const char *net_json, int threads, ch_dp **out, ch_error *err);
void ch_dp_destroy(ch_dp *dp);

/* As the network's forward on m rows (input m * input_size floats, policy m * policy_size,
** value m; either output may be NULL), shared out over the threads. */
int ch_dp_forward(ch_dp *dp, const float *input, uint32_t m, float *policy, float *value,
                  ch_error *err);

/* As the network's backward after ch_dp_forward: the main network's gradient accumulator gets
** the gradients of all m rows ADDED (zero it first, as with backward). */
int ch_dp_backward(ch_dp *dp, const float *dpolicy, const float *dvalue, ch_error *err);

#endif
