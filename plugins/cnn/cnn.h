/* cnn.h -- internal to the cnn network plugin: the handle layout its source files share. */
#ifndef CH_CNN_H
#define CH_CNN_H

#include "netcommon.h"

#include <chicane/plugin.h>
#include <stddef.h>
#include <stdint.h>

#define CH_CNN_MAX_CONV     4
#define CH_CNN_MAX_SIDE     1024
#define CH_CNN_MAX_CHANNELS 16
#define CH_CNN_MAX_VECTOR   (1u << 16)
#define CH_CNN_MAX_ACTIONS  (1u << 16)
/* Floats of the im2col buffer above which a batch is convolved in chunks of samples. */
#define CH_CNN_COLS_FLOATS ((size_t)1 << 22)

enum { CH_CNN_SHALLOW = 0, CH_CNN_DEEP = 1, CH_CNN_NUM_ARCHS = 2 };
enum { CH_CNN_POLICY = 0, CH_CNN_VALUE = 1 };

/* Everything that decides the parameter layout; two networks with equal arch can swap blobs. */
typedef struct ch_cnn_arch {
  uint32_t width, height, channels; /* of the image, channel-major (CHW) */
  uint32_t vector_size;             /* floats after the image, joined to the flattened convs */
  uint32_t architecture;            /* CH_CNN_SHALLOW or CH_CNN_DEEP */
  uint32_t head;                    /* CH_NET_CATEGORICAL or CH_NET_GAUSSIAN */
  uint32_t num_actions;             /* logits, or action dimensions of the Gaussian head */
  uint32_t shared;                  /* 1: one tower feeds both heads */
} ch_cnn_arch;

/* One layer of a conv stack as the architecture table gives it. */
typedef struct ch_cnn_conv_spec {
  uint32_t filters, kernel, stride;
} ch_cnn_conv_spec;

typedef struct ch_cnn_arch_spec {
  const char *name;
  uint32_t num_conv;
  ch_cnn_conv_spec conv[CH_CNN_MAX_CONV];
  uint32_t dense; /* width of the dense layer after the flattened convs */
} ch_cnn_arch_spec;

extern const ch_cnn_arch_spec ch__cnn_archs[CH_CNN_NUM_ARCHS];

/* A valid-padding convolution, ReLU after it. */
typedef struct ch_cnn_conv {
  uint32_t in_c, in_h, in_w;
  uint32_t out_c, out_h, out_w;
  uint32_t kernel, stride;
  uint64_t w, b; /* offsets in the flat params of W (out_c x in_c x kernel x kernel) and b */
} ch_cnn_conv;

/* The conv stack and the dense layer feeding the heads, with its cached activations. */
typedef struct ch_cnn_tower {
  ch_cnn_conv conv[CH_CNN_MAX_CONV];
  ch_net_dense dense;
  /* Conv outputs channel-major over the batch: out_c rows of batch * out_h * out_w floats, so
  ** that one GEMM convolves every sample; flat is batch x dense.in, hidden batch x dense.out. */
  float *act[CH_CNN_MAX_CONV];
  float *flat, *hidden;
} ch_cnn_tower;

typedef struct ch_cnn {
  ch_net_core core; /* first: the shared vtable members take the handle as its core */
  ch_cnn_arch arch;
  uint32_t num_conv;
  uint32_t num_towers;   /* 1 shared, 2 separate */
  ch_cnn_tower tower[2]; /* tower[0] feeds the policy head, and the value head when shared */
  ch_net_dense head[2];  /* indexed by CH_CNN_POLICY / CH_CNN_VALUE */
  uint32_t max_plane;    /* largest out_h * out_w of any conv */
  /* Work area (core.work) per sample: the input copy, the towers' activations, two gradient
  ** buffers of grad_row floats; then the im2col buffer of cols_floats. */
  size_t work_row, grad_row, cols_row, cols_floats;
  float *x, *dbuf[2], *cols;
} ch_cnn;

/* Parameters of an architecture, and how it lays out in the handle (n->arch set). */
uint64_t ch__cnn_param_count(const ch_cnn_arch *a);
void ch__cnn_layout(ch_cnn *n);

/* 0 when the image is large enough for the conv stack, else the side (width or height) that
** is too small, with the smallest size that works in *need. */
const char *ch__cnn_too_small(const ch_cnn_arch *a, uint32_t *need);

/* "image 160x120x1, vector 0, shallow, 5 actions, shared tower" into buf. */
void ch__cnn_arch_describe(const ch_cnn_arch *a, char *buf, size_t size);

/* Grow the work area to batch samples (it never shrinks). */
int ch__cnn_reserve(ch_cnn *n, uint32_t batch, ch_error *err);

/* The tower's forward over n->x (n->batch not yet set) and its backward from the gradient of
** its hidden output in dbuf[0], adding to the parameter gradients. */
void ch__cnn_tower_forward(ch_cnn *n, ch_cnn_tower *t, uint32_t batch);
void ch__cnn_tower_backward(ch_cnn *n, ch_cnn_tower *t, uint32_t batch);

/* The save and load vtable members (net is a ch_cnn). */
int ch__cnn_save(void *net, void **blob, size_t *len, ch_error *err);
int ch__cnn_load(void *net, const void *blob, size_t len, ch_error *err);

#endif
