/* plugin.h -- the one ABI between the chicane core and its plugins (env, network, buffer, storage).
 */
#ifndef CHICANE_PLUGIN_H
#define CHICANE_PLUGIN_H

/*
** Self-contained: this header needs only <stdint.h> and <stddef.h>, so a third-party plugin
** builds against it alone. Rules every plugin follows:
**
**  - It exports exactly one symbol, CH_PLUGIN_ENTRY_NAME, of type ch_plugin_entry_fn. The entry
**    returns a pointer to a const vtable whose first member is a ch_plugin_header. Build with
**    -fvisibility=hidden and mark only the entry with CH_PLUGIN_EXPORT.
**  - The vtable is append-only: header.struct_size is sizeof(the vtable) as the plugin was
**    built, so a newer core can tell which members an older plugin has.
**  - Instances are opaque handles from create/open and are released by destroy/close. A plugin
**    keeps no global mutable state: many handles may live in one process at once.
**  - Every fallible call returns 0 (CH_OK) or a negative ch_status and, when the caller passed
**    a non-NULL ch_error, writes a one-line message there. No longjmp and no C++ exception ever
**    crosses this boundary.
**  - Configuration arrives as a JSON object in a NUL-terminated string ("{}" for defaults).
**    Unknown keys are an error that names the key.
**  - Ownership: pointers passed in are borrowed for the duration of the call; memory handed out
**    is released with the release member named on each call.
**  - Handles are not thread-safe unless a member says so (the buffer is; see below).
*/

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CH_PLUGIN_ABI_VERSION 2
#define CH_PLUGIN_ENTRY_NAME  "chicane_plugin_entry"

#if defined(__GNUC__)
#define CH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define CH_PLUGIN_EXPORT
#endif

/* Status codes: 0 or negative. */
typedef enum ch_status {
  CH_OK = 0,
  CH_EINVAL = -1,       /* bad argument or configuration */
  CH_ENOMEM = -2,       /* out of memory */
  CH_EIO = -3,          /* file or network I/O failed */
  CH_ENOTFOUND = -4,    /* no such key, file or object */
  CH_ECORRUPT = -5,     /* data failed validation (checksum, magic, sizes) */
  CH_ERANGE = -6,       /* a value outside its allowed range */
  CH_ESTATE = -7,       /* call not valid in the handle's current state */
  CH_ECONN = -8,        /* a server could not be reached */
  CH_ETIMEDOUT = -9,    /* a wait ran out */
  CH_EPLUGIN = -10,     /* a plugin could not be loaded or is malformed */
  CH_ESCRIPT = -11,     /* a Lua script failed */
  CH_EUNSUPPORTED = -12 /* the plugin does not offer this optional member */
} ch_status;

#define CH_ERROR_MESSAGE_MAX 512

/* Caller-owned error report. The callee fills code and a NUL-terminated message. */
typedef struct ch_error {
  int code;
  char message[CH_ERROR_MESSAGE_MAX];
} ch_error;

typedef enum ch_plugin_kind {
  CH_PLUGIN_ENV = 1,
  CH_PLUGIN_NETWORK = 2,
  CH_PLUGIN_BUFFER = 3,
  CH_PLUGIN_STORAGE = 4
} ch_plugin_kind;

typedef enum ch_log_level {
  CH_LOG_DEBUG = 0,
  CH_LOG_INFO = 1,
  CH_LOG_WARN = 2,
  CH_LOG_ERROR = 3
} ch_log_level;

/* Services of the host, passed to the entry point. Valid for the life of the process. */
typedef struct ch_host_api {
  uint32_t abi_version; /* CH_PLUGIN_ABI_VERSION of the host */
  uint32_t struct_size; /* sizeof(ch_host_api) as the host was built */
  /* Log one line. source is the plugin's name. Thread-safe. */
  void (*log)(int level, const char *source, const char *message);
} ch_host_api;

/* First member of every vtable. */
typedef struct ch_plugin_header {
  uint32_t abi_version; /* CH_PLUGIN_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(the whole vtable) */
  uint32_t kind;        /* ch_plugin_kind */
  uint32_t reserved;    /* 0 */
  const char *name;     /* short name, [a-z0-9_]+, e.g. "sim2d" */
  const char *version;  /* the plugin's own version, e.g. "1.0.0" */
  const char *summary;  /* one line for `chicane plugins` */
} ch_plugin_header;

/* The single exported symbol. Returns NULL if the host is unacceptable. */
typedef const ch_plugin_header *(*ch_plugin_entry_fn)(const ch_host_api *host);

/* ------------------------------------------------------------------------------------------ */
/* env: a batched simulator. One handle steps num_cars independent cars.                      */
/* ------------------------------------------------------------------------------------------ */

/* Why an episode ended (or that it has not). Same names as DeepRacer's episode_status. */
typedef enum ch_episode_status {
  CH_EPISODE_IN_PROGRESS = 0,
  CH_EPISODE_LAP_COMPLETE = 1,
  CH_EPISODE_OFF_TRACK = 2,
  CH_EPISODE_CRASHED = 3,
  CH_EPISODE_IMMOBILIZED = 4,
  CH_EPISODE_REVERSED = 5,
  CH_EPISODE_TIME_UP = 6
} ch_episode_status;

typedef struct ch_env_spec {
  uint32_t num_cars;      /* cars stepped by one call */
  uint32_t obs_size;      /* floats of vector observation per car (state, lidar); may be 0 */
  uint32_t num_waypoints; /* centre-line points (a loop does not repeat the first) */
  uint32_t is_loop;       /* 1 for a closed track */
  double track_length;    /* centre-line length, metres */
  double track_width;     /* median width, metres */
  double step_seconds;    /* simulated time per step (1/15) */
  /* Camera observation per car: image_channels planes of image_height rows of image_width
  ** uint8 pixels (channel-major: stacked frames, then cameras). All 0 without a camera. */
  uint32_t image_width, image_height, image_channels;
  uint32_t max_objects; /* most objects (boxes, bot cars) an episode holds; 0 in time trials */
} ch_env_spec;

/* How a car starts an episode (reset). */
typedef struct ch_env_reset {
  double start_fraction; /* 0..1 of the track length from the start line, in driving order */
  double start_offset;   /* metres left (+) or right (-) of the centre line */
  int32_t reversed;      /* 1: drive this episode against the file's point order */
  int32_t reserved;      /* 0 */
  uint64_t seed;         /* randomness of the episode: object positions, bot lane changes */
} ch_env_reset;

typedef enum ch_object_kind { CH_OBJECT_BOX = 1, CH_OBJECT_BOT_CAR = 2 } ch_object_kind;

/* An object on the track, as the reward parameters objects_* describe it. */
typedef struct ch_env_object {
  double x, y;
  double heading;  /* degrees, like the car's */
  double speed;    /* m/s; 0 for a box */
  double distance; /* arc position along the centre line from the start line, metres */
  int32_t is_left_of_center;
  int32_t kind; /* ch_object_kind */
} ch_env_object;

/*
** DeepRacer's reward parameters for one car after one step, names as in the console. Angles in
** degrees, distances in metres. closest_waypoints and closest_objects are 0-based here (Lua
** shows them 1-based). closest_waypoints index the waypoints in the file's order and are
** {behind, ahead} in the driving direction, so in a reversed episode the second is the
** lower index (modulo the wrap of a loop), and "heading from prev to next" holds both ways.
*/
typedef struct ch_env_params {
  double x, y;
  double heading;              /* degrees, (-180, 180], 0 = +x, counter-clockwise positive */
  double distance_from_center; /* metres, >= 0 */
  double progress;             /* 0..100 */
  double speed;                /* commanded, m/s */
  double steering_angle;       /* commanded, degrees, + = left */
  double track_width;          /* at the car's position */
  double track_length;
  int32_t steps; /* from 1 */
  int32_t closest_waypoints[2];
  int32_t all_wheels_on_track;
  int32_t is_left_of_center;
  int32_t is_offtrack;
  int32_t is_crashed;
  int32_t is_reversed;    /* this episode drives against the file's point order */
  int32_t episode_status; /* ch_episode_status */
  /* Objects of this car's episode (object avoidance, head-to-head). objects points into the
  ** env and stays valid until the next reset, step or recover of this car. closest_objects
  ** are the objects just behind and just ahead of the car along the track (-1: none). */
  uint32_t num_objects;
  int32_t closest_objects[2];
  const ch_env_object *objects;
} ch_env_params;

typedef struct ch_env_vtable {
  ch_plugin_header header; /* kind CH_PLUGIN_ENV */

  /* Create a simulator from a JSON config (see the plugin's USAGE). *out owned by the caller,
  ** released with destroy. */
  int (*create)(const char *config_json, const ch_host_api *host, void **out, ch_error *err);
  void (*destroy)(void *env);

  void (*spec)(void *env, ch_env_spec *out);

  /* Copy the centre line into xy (2 doubles per point), in the file's point order; returns
  ** the count or a ch_status. xy NULL: returns the count. */
  int (*waypoints)(void *env, double *xy, uint32_t max_points);

  /* Start a new episode for one car as opt says. Writes that car's first observation:
  ** obs_size floats to obs and the image (image_channels * height * width bytes) to image;
  ** obs, image and params may each be NULL to skip them. */
  int (*reset)(void *env, uint32_t car, const ch_env_reset *opt, float *obs, uint8_t *image,
               ch_env_params *params, ch_error *err);

  /* Step all cars whose active[i] != 0 (active may be NULL: all) by one step with commanded
  ** steering (degrees) and speed (m/s), each num_cars long. Writes obs (num_cars * obs_size),
  ** image (num_cars * image bytes), params (num_cars) and status (num_cars) for the stepped
  ** cars; any output may be NULL. A car whose status is not IN_PROGRESS must be reset (or
  ** recovered) before it is stepped again. */
  int (*step)(void *env, const float *steering_deg, const float *speed, const uint8_t *active,
              float *obs, uint8_t *image, ch_env_params *params, int32_t *status, ch_error *err);

  /* Evaluation rule: put an off-track (or crashed) car back on the centre line at its closest
  ** point (past the object it hit), heading along the track, at rest, keeping its progress and
  ** step count, so the episode goes on. Writes the car's observation, image and params. */
  int (*recover)(void *env, uint32_t car, float *obs, uint8_t *image, ch_env_params *params,
                 ch_error *err);
} ch_env_vtable;

/* ------------------------------------------------------------------------------------------ */
/* network: a differentiable function approximator with a policy head and a value head.       */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch_network_spec {
  uint32_t input_size;  /* floats per sample in */
  uint32_t policy_size; /* floats per sample out of the policy head (logits for discrete) */
  uint64_t param_count; /* trainable floats */
} ch_network_spec;

typedef struct ch_optimizer_config {
  float lr;            /* Adam learning rate */
  float beta1, beta2;  /* Adam moments (0.9, 0.999) */
  float eps;           /* Adam epsilon (1e-5 for PPO) */
  float max_grad_norm; /* clip the global gradient norm to this; <= 0 disables */
} ch_optimizer_config;

typedef struct ch_network_vtable {
  ch_plugin_header header; /* kind CH_PLUGIN_NETWORK */

  int (*create)(const char *config_json, const ch_host_api *host, void **out, ch_error *err);
  void (*destroy)(void *net);
  void (*spec)(void *net, ch_network_spec *out);

  /* Forward a batch: input is batch * input_size floats; writes batch * policy_size floats to
  ** policy and batch floats to value (either may be NULL to skip). The handle remembers what
  ** backward needs from the most recent forward. */
  int (*forward)(void *net, const float *input, uint32_t batch, float *policy, float *value,
                 ch_error *err);

  /* Back-propagate gradients of the loss with respect to the outputs of the most recent
  ** forward (same batch; either may be NULL for zero) and ADD the parameter gradients to the
  ** handle's gradient accumulator. */
  int (*backward)(void *net, const float *dpolicy, const float *dvalue, ch_error *err);

  void (*zero_grad)(void *net);

  /* One optimizer step from the accumulated gradients (which it then leaves as they are). */
  int (*optimizer_step)(void *net, const ch_optimizer_config *cfg, ch_error *err);

  /* Flat parameter and gradient access, param_count floats, in a fixed documented order. */
  int (*get_params)(void *net, float *out, uint64_t count);
  int (*set_params)(void *net, const float *in, uint64_t count, ch_error *err);
  int (*get_grads)(void *net, float *out, uint64_t count);

  /* Serialise the architecture and parameters (and optimizer state) into a self-describing
  ** blob; release it with free_blob. load checks magic, sizes and checksum before touching
  ** the handle (a corrupt blob leaves the handle unchanged) and returns CH_ECORRUPT or
  ** CH_EINVAL (architecture differs) with a message saying what differs. */
  int (*save)(void *net, void **blob, size_t *len, ch_error *err);
  void (*free_blob)(void *net, void *blob);
  int (*load)(void *net, const void *blob, size_t len, ch_error *err);

  /* Optional (NULL, or absent when header.struct_size ends before it): ADD count floats to the
  ** gradient accumulator, in get_grads' order. With it the trainer splits a minibatch over
  ** replicas on several cores and sums their gradients into the network that steps. */
  int (*add_grads)(void *net, const float *in, uint64_t count, ch_error *err);
} ch_network_vtable;

/* ------------------------------------------------------------------------------------------ */
/* buffer: experience records (encoded segments) between simulation workers and the trainer.  */
/* Every member is thread-safe: many producers and consumers may share one handle.            */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch_record {
  const void *data; /* the bytes as pushed */
  size_t len;
  uint64_t policy_version; /* tag given at push */
  uint64_t id;             /* buffer-assigned, increasing per buffer */
  void *internal;          /* the plugin's; do not touch */
} ch_record;

typedef struct ch_buffer_vtable {
  ch_plugin_header header; /* kind CH_PLUGIN_BUFFER */

  int (*open)(const char *config_json, const ch_host_api *host, void **out, ch_error *err);
  void (*close)(void *buf);

  /* Append a copy of data, tagged with the policy version that produced it. */
  int (*push)(void *buf, uint64_t policy_version, const void *data, size_t len, ch_error *err);

  /* Take the oldest record, waiting up to timeout_ms (0: do not wait). Returns 1 with *out
  ** filled, 0 if none arrived in time, or a ch_status. The record stays owned by the buffer
  ** until ack, which must be called exactly once for every record returned. */
  int (*pull)(void *buf, int timeout_ms, ch_record *out, ch_error *err);
  void (*ack)(void *buf, ch_record *rec);

  /* A uniformly random record of those held, not removed (replay sampling). rng_state is the
  ** caller's; returns 1, 0 when empty, or a ch_status. Release with ack. */
  int (*sample)(void *buf, uint64_t *rng_state, ch_record *out, ch_error *err);

  int64_t (*size)(void *buf); /* records held (pulled but unacknowledged ones excluded) */
  int (*clear)(void *buf, ch_error *err);

  /* Optional (NULL, or absent when header.struct_size ends before them): small named values
  ** shared by every process that opens the same buffer, for distributed training - the trainer
  ** announces each new policy version there and the workers watch it. key is [A-Za-z0-9._/:-]+,
  ** at most 200 bytes; value a NUL-terminated string of at most 64 KiB. meta_set replaces the
  ** value atomically. meta_get copies the value with its NUL into out (cap bytes) and returns
  ** its length, CH_ENOTFOUND when the key was never set, CH_ERANGE when cap is too small. */
  int (*meta_set)(void *buf, const char *key, const char *value, ch_error *err);
  int (*meta_get)(void *buf, const char *key, char *out, size_t cap, ch_error *err);
} ch_buffer_vtable;

/* ------------------------------------------------------------------------------------------ */
/* storage: objects by key. Keys are '/'-separated, [A-Za-z0-9._-] segments, no "." or "..".   */
/* ------------------------------------------------------------------------------------------ */

typedef int (*ch_storage_list_fn)(const char *key, uint64_t size, void *user); /* non-0 stops */

typedef struct ch_storage_vtable {
  ch_plugin_header header; /* kind CH_PLUGIN_STORAGE */

  int (*open)(const char *config_json, const ch_host_api *host, void **out, ch_error *err);
  void (*close)(void *st);

  /* Store data under key, replacing any previous object atomically: a reader sees the old or
  ** the new object whole, never a mix, even if the writer dies midway. */
  int (*put)(void *st, const char *key, const void *data, size_t len, ch_error *err);

  /* Read a whole object. CH_ENOTFOUND when absent. Release *data with free_data. */
  int (*get)(void *st, const char *key, void **data, size_t *len, ch_error *err);
  void (*free_data)(void *st, void *data);

  /* Call fn for every key that starts with prefix, in byte order of the key. */
  int (*list)(void *st, const char *prefix, ch_storage_list_fn fn, void *user, ch_error *err);

  /* Remove a key. CH_ENOTFOUND when absent. */
  int (*remove)(void *st, const char *key, ch_error *err);
} ch_storage_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CHICANE_PLUGIN_H */
