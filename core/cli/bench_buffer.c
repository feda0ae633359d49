/* bench_buffer.c -- `chicane bench buffer`: push+pull throughput, rollout env steps/s; memory vs
 * redis. */
#include "bench.h"
#include "bench_rollout_buffer.h"

#include "cli.h"
#include "clock.h"
#include "loader.h"
#include "paths.h"
#include "rng.h"
#include "runtime.h"
#include "segment.h"

#include <arpa/inet.h>
#include <chicane/plugin_util.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char bench_buffer_usage[] =
    "usage: chicane bench buffer [--seconds S] [--steps N] [--redis URL]\n"
    "                            [--only transport|rollout]\n"
    "\n"
    "Measure the experience buffers, memory against redis, in two sections of the JSON.\n"
    "\n"
    "transport (\"results\"): how many encoded segments per second (and MB/s) go through a\n"
    "buffer: producers encode canned ch_segment records of N steps and push them as fast as\n"
    "they can, one consumer pulls, decodes (checking the CRC) and acks them, as the trainer\n"
    "does. Two payloads: the state sensor (\"state\") and state + a 160x120 front camera\n"
    "(\"camera_160x120\"), their sizes taken from the sim2d env. For each payload:\n"
    "  memory      the in-process memory buffer, one producer thread\n"
    "  redis_1     redis with 1 producer process (fork) and the consumer in this process\n"
    "  redis_2     ... 2 producer processes\n"
    "  redis_4     ... 4 producer processes\n"
    "Each redis figure carries its ratio to memory. The backlog is capped (max_records, about\n"
    "32 MB of records) so producers cannot run ahead of the consumer by more than a real\n"
    "trainer would let them.\n"
    "\n"
    "rollout (\"rollout\"): env steps/s of training's experience flow: the producers are real\n"
    "simulation workers (the sim2d env, the script's network with freshly initialised\n"
    "parameters, its Lua reward, its cars_per_worker and segment_steps), the consumer pulls,\n"
    "decodes and acks as above and counts env steps and segments. Payloads \"state\"\n"
    "(scripts/default.lua: state sensor, mlp) and \"camera\" (scripts/camera.lua: 80x60\n"
    "camera, shallow cnn), each with its full record's bytes and, for N = 1, 2, 4:\n"
    "  memory_N    N worker threads in this process, the memory buffer\n"
    "  redis_N     N worker processes (fork) of one thread each, redis, the consumer here;\n"
    "              with its env steps/s ratio to memory_N\n"
    "The target of every ratio is >= 0.8.\n"
    "\n"
    "options:\n"
    "  --seconds S   per measurement, after 0.3 s of warm-up (default 1.5)\n"
    "  --steps N     steps per segment of the transport section (default 20; the rollout\n"
    "                section uses the scripts' segment_steps)\n"
    "  --redis URL   use this redis://host:port server (its streams chicane:bench:segments\n"
    "                and chicane:bench:rollout are cleared) instead of starting a\n"
    "                redis-server on a free loopback port\n"
    "  --only WHICH  run only the transport or only the rollout section (default both)\n"
    "  --help        this text\n";

#define CH__BACKLOG_BYTES (32.0 * 1024 * 1024)
#define CH__WARMUP        0.3
#define CH__STREAM        "chicane:bench:segments"

/* ------------------------------------------------------------------------------------------ */
/* Payloads                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* One segment's arrays, filled with varied values so nothing compresses or short-cuts. */
typedef struct ch__payload {
  const char *name;
  uint32_t steps, obs_size, image_size;
  float *floats; /* obs, action, reward, logp, value, trace back to back */
  uint8_t *image;
  size_t encoded; /* bytes of one record */
  int64_t max_records;
} ch__payload;

static void ch__payload_free(ch__payload *p) {
  free(p->floats);
  free(p->image);
  p->floats = NULL;
  p->image = NULL;
}

/* Segment number seq of producer `worker`: views into the payload's arrays. */
static void ch__payload_segment(const ch__payload *p, uint32_t worker, uint32_t seq,
                                ch_segment *seg) {
  size_t T = p->steps;
  const float *f = p->floats;
  *seg = (ch_segment){.policy_version = 0,
                      .episode_id = seq / 8,
                      .worker_id = worker,
                      .seq = seq % 8,
                      .num_steps = p->steps,
                      .obs_size = p->obs_size,
                      .image_size = p->image_size,
                      .action_size = 1,
                      .flags = seq % 8 == 7 ? CH_SEGMENT_EPISODE_END : 0,
                      .bootstrap_value = 0.5f,
                      .obs = f,
                      .image = p->image,
                      .action = f + T * p->obs_size,
                      .reward = f + T * (p->obs_size + 1),
                      .logp = f + T * (p->obs_size + 2),
                      .value = f + T * (p->obs_size + 3),
                      .trace = f + T * (p->obs_size + 4)};
}

static int ch__payload_init(ch__payload *p, const char *name, uint32_t steps, uint32_t obs_size,
                            uint32_t image_size) {
  *p = (ch__payload){name, steps, obs_size, image_size, NULL, NULL, 0, 0};
  size_t nf = (size_t)steps * (obs_size + 4 + CH_TRACE_FLOATS);
  p->floats = malloc(sizeof(float) * nf);
  p->image = image_size ? malloc((size_t)steps * image_size) : NULL;
  if (!p->floats || (image_size && !p->image)) return CH_ENOMEM;
  uint64_t s = 0x5eedull;
  for (size_t i = 0; i < nf; i++) p->floats[i] = (float)(ch_rng_next(&s) >> 40) * 1e-7f;
  for (size_t i = 0; image_size && i < (size_t)steps * image_size; i++)
    p->image[i] = (uint8_t)(ch_rng_next(&s) >> 56);
  /* the actions are discrete indices, as the trainer expects */
  for (uint32_t i = 0; i < steps; i++) p->floats[(size_t)steps * obs_size + i] = (float)(i % 10);
  ch_segment seg;
  ch__payload_segment(p, 0, 0, &seg);
  p->encoded = ch_segment_encoded_size(&seg);
  p->max_records = (int64_t)fmax(16, CH__BACKLOG_BYTES / (double)p->encoded);
  return CH_OK;
}

/* Observation sizes of the sim2d env with these sensors (a JSON array), so the records are
** the size training makes them. */
static int ch__env_sizes(const char *sensors, uint32_t *obs, uint32_t *image, ch_error *err) {
  ch_plugin *p = NULL;
  char track[CH_PATH_MAX], cfg[CH_PATH_MAX + 200];
  int rc = ch_resolve_track("bayside", track, sizeof track, err);
  if (rc == CH_OK) rc = ch_plugin_find(CH_PLUGIN_ENV, "sim2d", &p, err);
  if (rc != CH_OK) return rc;
  snprintf(cfg, sizeof cfg, "{\"track\": \"%s\", \"num_cars\": 1, \"sensors\": %s}", track,
           sensors);
  ch_env e;
  rc = ch_env_create(p, cfg, &e, err);
  if (rc == CH_OK) {
    *obs = e.spec.obs_size;
    *image = e.spec.image_width * e.spec.image_height * e.spec.image_channels;
    ch_env_destroy(&e);
  }
  ch_plugin_close(p);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Producers and the consumer                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Set by the main thread (memory) or by SIGTERM (a producer process): stop pushing. */
static atomic_int ch__stop;

static void ch__on_term(int sig) {
  (void)sig;
  atomic_store(&ch__stop, 1);
}

/* Encode and push segments until told to stop; a full buffer is waited out, as workers do. */
static int ch__produce(ch_buffer *b, const ch__payload *p, uint32_t worker, ch_error *err) {
  unsigned char *buf = malloc(p->encoded);
  if (!buf) return ch_error_set(err, CH_ENOMEM, "out of memory");
  int rc = CH_OK;
  for (uint32_t seq = 0; rc == CH_OK && !atomic_load(&ch__stop); seq++) {
    ch_segment seg;
    ch__payload_segment(p, worker, seq, &seg);
    ch_segment_encode(&seg, buf);
    while ((rc = b->vt->push(b->h, 0, buf, p->encoded, err)) == CH_ERANGE &&
           !atomic_load(&ch__stop))
      ch_clock_sleep(0.001);
    if (rc == CH_ERANGE) rc = CH_OK; /* stopped while the buffer was full */
  }
  free(buf);
  return rc;
}

/* What one measurement counted. */
typedef struct ch__count {
  int64_t records;
  double bytes, seconds;
} ch__count;

/* Pull, decode (CRC checked) and ack for `seconds` after the warm-up. */
static int ch__consume(ch_buffer *b, double seconds, ch__count *c, ch_error *err) {
  double t0 = ch_clock_now(), start = t0 + CH__WARMUP, end = start + seconds, now = t0;
  *c = (ch__count){0, 0, 0};
  while ((now = ch_clock_now()) < end) {
    ch_record rec;
    int got = b->vt->pull(b->h, 100, &rec, err);
    if (got < 0) return got;
    if (got == 0 && c->records == 0 && now - t0 > 10)
      return ch_error_set(err, CH_ETIMEDOUT, "no record arrived within 10 s");
    if (got == 0) continue;
    ch_segment seg;
    ch_error e = {0, ""};
    int rc = ch_segment_decode(rec.data, rec.len, &seg, &e);
    size_t len = rec.len;
    b->vt->ack(b->h, &rec);
    if (rc != CH_OK) return ch_error_set(err, rc, "a record did not decode: %s", e.message);
    if (ch_clock_now() >= start) c->records++, c->bytes += (double)len;
  }
  c->seconds = now - start;
  return CH_OK;
}

typedef struct ch__thread_arg {
  ch_buffer *b;
  const ch__payload *p;
  int rc;
  ch_error err;
} ch__thread_arg;

static void *ch__producer_thread(void *arg) {
  ch__thread_arg *a = arg;
  a->rc = ch__produce(a->b, a->p, 1, &a->err);
  return NULL;
}

static int ch__measure_memory(const ch__payload *p, double seconds, ch__count *c, ch_error *err) {
  char cfg[64];
  snprintf(cfg, sizeof cfg, "{\"max_records\": %lld}", (long long)p->max_records);
  ch_buffer b;
  int rc = ch_buffer_open("memory", cfg, &b, err);
  if (rc != CH_OK) return rc;
  atomic_store(&ch__stop, 0);
  ch__thread_arg a = {&b, p, CH_OK, {0, ""}};
  pthread_t tid;
  if (pthread_create(&tid, NULL, ch__producer_thread, &a) != 0) {
    ch_buffer_close(&b);
    return ch_error_set(err, CH_ENOMEM, "cannot start a producer thread");
  }
  rc = ch__consume(&b, seconds, c, err);
  atomic_store(&ch__stop, 1);
  pthread_join(tid, NULL);
  if (rc == CH_OK && a.rc != CH_OK) rc = a.rc, *err = a.err;
  ch_buffer_close(&b);
  return rc;
}

/* The redis buffer on the bench stream; consumer NULL: the plugin's per-handle default. */
static int ch__open_redis(const char *url, const ch__payload *p, const char *consumer, int retries,
                          ch_buffer *b, ch_error *err) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "url", url);
  cJSON_AddStringToObject(o, "stream", CH__STREAM);
  if (consumer) cJSON_AddStringToObject(o, "consumer", consumer);
  cJSON_AddNumberToObject(o, "max_records", (double)(p ? p->max_records : 1000));
  cJSON_AddNumberToObject(o, "retries", retries);
  char *json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  int rc =
      json ? ch_buffer_open("redis", json, b, err) : ch_error_set(err, CH_ENOMEM, "out of memory");
  cJSON_free(json);
  return rc;
}

/* A producer process: its own connection, until SIGTERM. Never returns. */
static void ch__producer_process(const char *url, const ch__payload *p, uint32_t worker) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  ch_buffer b;
  ch_error err = {0, ""};
  int rc = ch__open_redis(url, p, NULL, 5, &b, &err);
  if (rc == CH_OK) {
    rc = ch__produce(&b, p, worker, &err);
    ch_buffer_close(&b);
  }
  if (rc != CH_OK) fprintf(stderr, "chicane bench buffer: producer %u: %s\n", worker, err.message);
  fflush(stderr);
  _exit(rc == CH_OK ? 0 : 1);
}

static void ch__stop_producers(pid_t *pids, int n) {
  for (int i = 0; i < n; i++)
    if (pids[i] > 0) kill(pids[i], SIGTERM);
  for (int i = 0; i < n; i++)
    if (pids[i] > 0) waitpid(pids[i], NULL, 0);
}

static int ch__measure_redis(const char *url, const ch__payload *p, int producers, double seconds,
                             ch__count *c, ch_error *err) {
  ch_buffer b;
  int rc = ch__open_redis(url, p, "bench", 5, &b, err);
  if (rc != CH_OK) return rc;
  rc = b.vt->clear(b.h, err); /* the backlog of the previous measurement */
  pid_t pids[8] = {0};
  atomic_store(&ch__stop, 0);
  /* the handler is set before fork, so a producer told to stop early still stops cleanly */
  void (*old)(int) = signal(SIGTERM, ch__on_term);
  fflush(stdout);
  fflush(stderr);
  for (int i = 0; rc == CH_OK && i < producers; i++) {
    pids[i] = fork();
    if (pids[i] == 0) ch__producer_process(url, p, (uint32_t)i + 1);
    if (pids[i] < 0) rc = ch_error_set(err, CH_EIO, "fork failed");
  }
  signal(SIGTERM, old);
  if (rc == CH_OK) rc = ch__consume(&b, seconds, c, err);
  ch__stop_producers(pids, producers);
  ch_error ignored;
  b.vt->clear(b.h, &ignored); /* leave no backlog in a server that is not ours */
  ch_buffer_close(&b);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* A redis-server of our own                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* A loopback port nothing listens on now (the kernel's pick). */
static int ch__free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

/* Start redis-server without persistence on a free port and wait until it answers. */
static int ch__start_redis(pid_t *pid, char *url, size_t cap, ch_error *err) {
  int port = ch__free_port();
  if (port <= 0) return ch_error_set(err, CH_EIO, "no free loopback port");
  char port_arg[16];
  snprintf(port_arg, sizeof port_arg, "%d", port);
  snprintf(url, cap, "redis://127.0.0.1:%d", port);
  fflush(stdout);
  fflush(stderr);
  *pid = fork();
  if (*pid < 0) return ch_error_set(err, CH_EIO, "fork failed");
  if (*pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a crashed bench leaves no server behind */
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
    execlp("redis-server", "redis-server", "--port", port_arg, "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", "/tmp", (char *)NULL);
    _exit(127);
  }
  for (double waited = 0; waited < 10; waited += 0.05) {
    int status;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = 0;
      return ch_error_set(err, CH_ECONN, "redis-server %s (not on PATH? use --redis URL)",
                          WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "is not installed"
                                                                          : "exited at start");
    }
    ch_buffer b;
    if (ch__open_redis(url, NULL, "bench", 0, &b, NULL) == CH_OK) {
      ch_buffer_close(&b);
      return CH_OK;
    }
    ch_clock_sleep(0.05);
  }
  return ch_error_set(err, CH_ETIMEDOUT, "redis-server on port %d did not answer within 10 s",
                      port);
}

static void ch__stop_redis(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* The report                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch__opts {
  double seconds;
  uint32_t steps;
  const char *redis;
  int transport, rollout; /* the sections to run */
} ch__opts;

static int ch__parse(int argc, char **argv, ch__opts *o) {
  static const struct option opts[] = {
      {"seconds", required_argument, NULL, 's'}, {"steps", required_argument, NULL, 'n'},
      {"redis", required_argument, NULL, 'r'},   {"only", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
  *o = (ch__opts){1.5, 20, NULL, 1, 1};
  int c;
  char *end;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') return fputs(bench_buffer_usage, stdout), -1;
    if (c == 'r') o->redis = optarg;
    if (c == 'o') {
      o->transport = strcmp(optarg, "transport") == 0;
      o->rollout = strcmp(optarg, "rollout") == 0;
      if (!o->transport && !o->rollout)
        return ch_cli_usage_error("bench buffer", "--only needs transport or rollout");
    }
    if (c == 's' && (!((o->seconds = strtod(optarg, &end)) > 0 && o->seconds <= 3600) || *end))
      return ch_cli_usage_error("bench buffer", "--seconds needs a number in (0, 3600]");
    if (c == 'n' &&
        ((o->steps = (uint32_t)strtoul(optarg, &end, 10)) < 1 || o->steps > 10000 || *end))
      return ch_cli_usage_error("bench buffer", "--steps needs 1..10000");
    if (c == '?') return ch_cli_usage_error("bench buffer", "unknown option");
  }
  if (optind != argc) return ch_cli_usage_error("bench buffer", "takes no arguments");
  return 0;
}

/* One measurement's figures, with the ratio to memory (base) unless it is memory itself. */
static void ch__result(cJSON *into, const char *name, const ch__count *c, const ch__count *base) {
  double rate = c->seconds > 0 ? (double)c->records / c->seconds : 0;
  double mb = c->seconds > 0 ? c->bytes / c->seconds / 1e6 : 0;
  cJSON *o = cJSON_AddObjectToObject(into, name);
  cJSON_AddNumberToObject(o, "segments_per_s", round(rate));
  cJSON_AddNumberToObject(o, "mb_per_s", round(10 * mb) / 10);
  cJSON_AddNumberToObject(o, "segments", (double)c->records);
  if (!base) return;
  double brate = base->seconds > 0 ? (double)base->records / base->seconds : 0;
  double ratio = brate > 0 ? rate / brate : 0;
  cJSON_AddNumberToObject(o, "ratio", round(1e3 * ratio) / 1e3);
  cJSON_AddNumberToObject(o, "target", 0.8);
  cJSON_AddBoolToObject(o, "met", ratio >= 0.8);
}

static int ch__report_payload(const ch__opts *o, const char *url, const ch__payload *p,
                              cJSON *results, ch_error *err) {
  cJSON *r = cJSON_AddObjectToObject(results, p->name);
  cJSON_AddNumberToObject(r, "record_bytes", (double)p->encoded);
  cJSON_AddNumberToObject(r, "obs_size", p->obs_size);
  cJSON_AddNumberToObject(r, "image_bytes", p->image_size);
  cJSON_AddNumberToObject(r, "max_records", (double)p->max_records);
  ch__count mem;
  int rc = ch__measure_memory(p, o->seconds, &mem, err);
  if (rc != CH_OK) return rc;
  ch__result(r, "memory", &mem, NULL);
  const int producers[] = {1, 2, 4};
  for (size_t k = 0; k < sizeof producers / sizeof producers[0]; k++) {
    ch__count c;
    rc = ch__measure_redis(url, p, producers[k], o->seconds, &c, err);
    if (rc != CH_OK) return rc;
    char name[16];
    snprintf(name, sizeof name, "redis_%d", producers[k]);
    ch__result(r, name, &c, &mem);
  }
  return CH_OK;
}

static int ch__report(const ch__opts *o, const char *url, cJSON *results, ch_error *err) {
  static const struct {
    const char *name, *sensors;
  } kinds[] = {{"state", "[\"state\"]"}, {"camera_160x120", "[\"state\", \"camera\"]"}};
  int rc = CH_OK;
  for (size_t k = 0; rc == CH_OK && k < sizeof kinds / sizeof kinds[0]; k++) {
    uint32_t obs = 0, image = 0;
    ch__payload p = {0};
    rc = ch__env_sizes(kinds[k].sensors, &obs, &image, err);
    if (rc == CH_OK && ch__payload_init(&p, kinds[k].name, o->steps, obs, image) != CH_OK)
      rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc == CH_OK) rc = ch__report_payload(o, url, &p, results, err);
    ch__payload_free(&p);
  }
  return rc;
}

int ch_bench_buffer(int argc, char **argv) {
  ch__opts o;
  int parsed = ch__parse(argc, argv, &o);
  if (parsed) return parsed < 0 ? 0 : parsed;
  ch_error err = {0, ""};
  char url[64];
  pid_t server = 0;
  int rc = o.redis ? CH_OK : ch__start_redis(&server, url, sizeof url, &err);
  const char *where = o.redis ? o.redis : url;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "benchmark", "buffer");
  cJSON_AddStringToObject(root, "redis", where);
  cJSON_AddBoolToObject(root, "redis_started", !o.redis);
  cJSON_AddNumberToObject(root, "seconds", o.seconds);
  cJSON_AddNumberToObject(root, "steps", o.steps);
  if (rc == CH_OK && o.transport)
    rc = ch__report(&o, where, cJSON_AddObjectToObject(root, "results"), &err);
  if (rc == CH_OK && o.rollout)
    rc = ch__bench_rollout(where, o.seconds, cJSON_AddObjectToObject(root, "rollout"), &err);
  ch__stop_redis(server);
  if (rc == CH_OK) {
    char *text = cJSON_Print(root);
    printf("%s\n", text);
    cJSON_free(text);
  }
  cJSON_Delete(root);
  return rc == CH_OK ? 0 : ch_cli_fail(err.message);
}
