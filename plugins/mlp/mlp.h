/* mlp.h -- internal to the mlp network plugin: the handle layout its source files share. */
#ifndef CH_MLP_H
#define CH_MLP_H

#include "netcommon.h"

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

#define CH_MLP_MAX_HIDDEN  8
#define CH_MLP_MAX_WIDTH   4096
#define CH_MLP_MAX_INPUT   (1u << 20)
#define CH_MLP_MAX_ACTIONS (1u << 16)
/* Two trunks of hidden layers plus the two heads. */
#define CH_MLP_MAX_LAYERS (2 * CH_MLP_MAX_HIDDEN + 2)

enum { CH_MLP_TANH = 0, CH_MLP_RELU = 1 };
enum { CH_MLP_POLICY = 0, CH_MLP_VALUE = 1 };

/* Everything that decides the parameter layout; two networks with equal arch can swap blobs. */
typedef struct ch_mlp_arch {
  uint32_t input_size;
  uint32_t num_actions; /* logits, or action dimensions of the Gaussian head */
  uint32_t num_hidden;
  uint32_t hidden[CH_MLP_MAX_HIDDEN];
  uint32_t activation; /* CH_MLP_TANH or CH_MLP_RELU */
  uint32_t shared;     /* 1: one trunk feeds both heads */
  uint32_t head;       /* CH_NET_CATEGORICAL or CH_NET_GAUSSIAN */
} ch_mlp_arch;

/* A run of consecutive hidden layers; count 0 means the head reads the input itself. */
typedef struct ch_mlp_trunk {
  uint32_t first, count;
} ch_mlp_trunk;

typedef struct ch_mlp {
  ch_net_core core; /* first: the shared vtable members take the handle as its core */
  ch_mlp_arch arch;
  uint32_t num_layers;
  ch_net_dense layer[CH_MLP_MAX_LAYERS];
  ch_mlp_trunk trunk[2];  /* indexed by CH_MLP_POLICY / CH_MLP_VALUE; equal when shared */
  uint32_t head_layer[2]; /* layer index of each head */
  /* Work area rows (core.work): the input copy, each hidden layer's output, two gradient
  ** buffers. */
  size_t work_row; /* floats per row of the work area */
  uint32_t max_width;
  float *x;
  float *act[CH_MLP_MAX_LAYERS];
  float *dbuf[2];
} ch_mlp;

/* Parameters of an architecture (weights and biases of every layer, the log std). */
uint64_t ch__mlp_param_count(const ch_mlp_arch *a);

/* "input 5, 4 actions, hidden [7,6], tanh, separate trunks" into buf. */
void ch__mlp_arch_describe(const ch_mlp_arch *a, char *buf, size_t size);

/* Orthogonal weights and zero biases, a pure function of arch and core.init.seed (net is a
** ch_mlp; create sets the log stds after it). */
int ch__mlp_init_params(void *net, ch_error *err);

/* The save and load vtable members (net is a ch_mlp). */
int ch__mlp_save(void *net, void **blob, size_t *len, ch_error *err);
int ch__mlp_load(void *net, const void *blob, size_t len, ch_error *err);

#endif
