/* bench_rollout_buffer.c -- `chicane bench buffer`, rollout section: real workers, memory vs redis.
 */
#include "bench_rollout_buffer.h"

#include "clock.h"
#include "config.h"
#include "loader.h"
#include "paths.h"
#include "rollout.h"
#include "runtime.h"
#include "segment.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CH__R_STREAM     "chicane:bench:rollout"
#define CH__R_WARMUP     0.3       /* seconds after the first record before counting */
#define CH__R_FIRST_WAIT 60.0      /* for the first record: workers build env, network, reward */
#define CH__R_CHECK      0.1       /* seconds between checks that the producers still run */
#define CH__R_EPISODES   (1 << 30) /* "never stop": the measurement ends first */
#define CH__R_MAX_PROCS  4

/* ------------------------------------------------------------------------------------------ */
/* What every worker of one payload is built from                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch__rsetup {
  const char *name, *url;
  ch_train_config *cfg; /* heap: the struct is large */
  ch_plugin *env_p, *net_p;
  char *env_json, *net_json;
  float *params; /* a freshly initialised network's, as the first policy */
  uint64_t param_count;
} ch__rsetup;

static void ch__rsetup_close(ch__rsetup *s) {
  cJSON_free(s->env_json);
  cJSON_free(s->net_json);
  free(s->params);
  ch_plugin_close(s->env_p);
  ch_plugin_close(s->net_p);
  free(s->cfg);
  memset(s, 0, sizeof *s);
}

/* The network config for the env's observation, and the initial parameters of that network. */
static int ch__rsetup_network(ch__rsetup *s, ch_error *err) {
  ch_env e;
  int rc = ch_env_create(s->env_p, s->env_json, &e, err);
  if (rc != CH_OK) return rc;
  cJSON *n = ch_config_network_json_for(s->cfg, &e.spec, err);
  ch_env_destroy(&e);
  if (!n) return err->code ? err->code : CH_EINVAL;
  s->net_json = cJSON_PrintUnformatted(n);
  cJSON_Delete(n);
  ch_net net;
  rc = s->net_json ? ch_net_create(s->net_p, s->net_json, &net, err)
                   : ch_error_set(err, CH_ENOMEM, "out of memory");
  if (rc != CH_OK) return rc;
  s->param_count = net.spec.param_count;
  s->params = malloc(sizeof(float) * (s->param_count ? s->param_count : 1));
  rc = s->params ? net.vt->get_params(net.h, s->params, s->param_count) : CH_ENOMEM;
  ch_net_destroy(&net);
  return rc < 0 ? ch_error_set(err, rc, "network: cannot read the initial parameters") : CH_OK;
}

/* Load the training script (found as bench train finds its default) and build from it. */
static int ch__rsetup_open(ch__rsetup *s, const char *name, const char *script_name,
                           const char *url, ch_error *err) {
  *s = (ch__rsetup){.name = name, .url = url};
  char script[CH_PATH_MAX];
  s->cfg = malloc(sizeof *s->cfg);
  int rc = s->cfg ? ch_file_resolve(script_name, ".", script, sizeof script, err)
                  : ch_error_set(err, CH_ENOMEM, "out of memory");
  if (rc == CH_OK) rc = ch_config_load(script, s->cfg, err);
  if (rc == CH_OK) rc = ch_plugin_find(CH_PLUGIN_ENV, s->cfg->env_plugin, &s->env_p, err);
  if (rc == CH_OK) rc = ch_plugin_find(CH_PLUGIN_NETWORK, s->cfg->network_plugin, &s->net_p, err);
  if (rc != CH_OK) return rc;
  cJSON *o = ch_config_env_json(s->cfg, s->cfg->track_path, (uint32_t)s->cfg->cars_per_worker);
  s->env_json = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!s->env_json) return ch_error_set(err, CH_ENOMEM, "out of memory");
  return ch__rsetup_network(s, err);
}

/* Worker threads on buffer b, ids from base, driving with the initial policy at once. */
static int ch__rollout_begin(const ch__rsetup *s, ch_buffer *b, int threads, uint32_t base,
                             ch_rollout **r, ch_error *err) {
  const char *envs[1] = {s->env_json};
  ch_rollout_setup rs = {s->cfg,
                         s->env_p,
                         s->net_p,
                         envs,
                         1,
                         s->net_json,
                         b,
                         threads,
                         base,
                         s->cfg->alternate_direction,
                         s->cfg->start_offset};
  int rc = ch_rollout_start(&rs, r, err);
  if (rc == CH_OK) ch_rollout_publish(*r, 1, s->params, s->param_count, 0, CH__R_EPISODES);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The consumer                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* What one measurement counted after its warm-up. */
typedef struct ch__flow {
  int64_t segments, steps;
  double bytes, seconds;
  size_t full_bytes; /* one record of segment_steps steps */
} ch__flow;

/* CH_OK while the producers run, else why not (with err). */
typedef int (*ch__alive_fn)(void *ctx, ch_error *err);

/* The size a segment like seg has when it holds steps steps. */
static size_t ch__full_bytes(const ch_segment *seg, int steps) {
  ch_segment full = *seg;
  full.num_steps = (uint32_t)steps;
  return ch_segment_encoded_size(&full);
}

/* Count one pulled record (decoded with its CRC checked, then acked) once `counting`. */
static int ch__take(ch_buffer *b, ch_record *rec, int counting, ch_segment *seg, ch__flow *f,
                    ch_error *err) {
  ch_error e = {0, ""};
  int rc = ch_segment_decode(rec->data, rec->len, seg, &e);
  size_t len = rec->len;
  uint32_t steps = rc == CH_OK ? seg->num_steps : 0;
  b->vt->ack(b->h, rec);
  if (rc != CH_OK) return ch_error_set(err, rc, "a record did not decode: %s", e.message);
  if (counting) f->segments++, f->steps += steps, f->bytes += (double)len;
  return CH_OK;
}

/* Pull as the trainer does for `seconds`, counted from CH__R_WARMUP after the first record
** (the workers' set-up time is not the buffer's). */
static int ch__consume_flow(ch_buffer *b, int seg_steps, double seconds, ch__alive_fn alive,
                            void *ctx, ch__flow *f, ch_error *err) {
  double t0 = ch_clock_now(), checked = t0, start = INFINITY, end = INFINITY, now;
  *f = (ch__flow){0, 0, 0, 0, 0};
  while ((now = ch_clock_now()) < end) {
    if (now - checked >= CH__R_CHECK) {
      int rc = alive(ctx, err);
      if (rc != CH_OK) return rc;
      checked = now;
    }
    ch_record rec;
    int got = b->vt->pull(b->h, 100, &rec, err);
    if (got < 0) return got;
    if (got == 0 && isinf(start) && now - t0 > CH__R_FIRST_WAIT)
      return ch_error_set(err, CH_ETIMEDOUT, "no record arrived within %.0f s", CH__R_FIRST_WAIT);
    if (got == 0) continue;
    ch_segment seg;
    int rc = ch__take(b, &rec, ch_clock_now() >= start, &seg, f, err);
    if (rc != CH_OK) return rc;
    if (isinf(start)) {
      start = ch_clock_now() + CH__R_WARMUP;
      end = start + seconds;
      f->full_bytes = ch__full_bytes(&seg, seg_steps);
    }
  }
  f->seconds = now - start;
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Memory: worker threads in this process                                                      */
/* ------------------------------------------------------------------------------------------ */

static int ch__rollout_alive(void *ctx, ch_error *err) {
  int code = ch_rollout_failed(ctx, err);
  return code ? code : CH_OK;
}

static int ch__flow_memory(const ch__rsetup *s, int threads, double seconds, ch__flow *f,
                           ch_error *err) {
  ch_buffer b;
  int rc = ch_buffer_open_spec("memory", NULL, NULL, &b, err); /* the trainer's: default size */
  if (rc != CH_OK) return rc;
  ch_rollout *r = NULL;
  rc = ch__rollout_begin(s, &b, threads, 1, &r, err);
  if (rc == CH_OK)
    rc = ch__consume_flow(&b, s->cfg->segment_steps, seconds, ch__rollout_alive, r, f, err);
  ch_rollout_stop(r);
  ch_buffer_close(&b);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Redis: forked worker processes of one thread each                                           */
/* ------------------------------------------------------------------------------------------ */

/* Set by SIGTERM in a worker process: stop the rollout and leave. */
static atomic_int ch__rstop;

static void ch__rstop_on_term(int sig) {
  (void)sig;
  atomic_store(&ch__rstop, 1);
}

/* A worker process: its own redis handle and one rollout thread, until SIGTERM (also sent when
** the bench dies). Never returns. */
static void ch__worker_process(const ch__rsetup *s, pid_t parent, uint32_t id) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  ch_error err = {0, ""};
  int rc = getppid() == parent ? CH_OK : ch_error_set(&err, CH_EIO, "the bench has ended");
  ch_buffer b = {0};
  ch_rollout *r = NULL;
  if (rc == CH_OK) rc = ch_buffer_open_spec(s->url, CH__R_STREAM, NULL, &b, &err);
  if (rc == CH_OK) rc = ch__rollout_begin(s, &b, 1, id, &r, &err);
  while (rc == CH_OK && !atomic_load(&ch__rstop)) {
    rc = ch__rollout_alive(r, &err);
    ch_clock_sleep(0.01);
  }
  ch_rollout_stop(r);
  if (b.plugin) ch_buffer_close(&b);
  if (rc != CH_OK)
    fprintf(stderr, "chicane bench buffer: rollout worker %u: %s\n", id, err.message);
  fflush(stderr);
  _exit(rc == CH_OK ? 0 : 1);
}

typedef struct ch__procs {
  pid_t pids[CH__R_MAX_PROCS];
  int n;
} ch__procs;

static int ch__procs_alive(void *ctx, ch_error *err) {
  ch__procs *p = ctx;
  for (int i = 0; i < p->n; i++) {
    int status;
    if (p->pids[i] > 0 && waitpid(p->pids[i], &status, WNOHANG) == p->pids[i]) {
      p->pids[i] = 0;
      return ch_error_set(err, CH_EIO, "rollout worker process %d ended early (status %d)", i + 1,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
  }
  return CH_OK;
}

static void ch__procs_stop(ch__procs *p) {
  for (int i = 0; i < p->n; i++)
    if (p->pids[i] > 0) kill(p->pids[i], SIGTERM);
  for (int i = 0; i < p->n; i++)
    if (p->pids[i] > 0) waitpid(p->pids[i], NULL, 0);
}

/* Fork n workers; the SIGTERM handler is theirs from the start, so an early stop is clean. */
static int ch__procs_start(const ch__rsetup *s, ch__procs *p, int n, ch_error *err) {
  *p = (ch__procs){{0}, n};
  atomic_store(&ch__rstop, 0);
  void (*old)(int) = signal(SIGTERM, ch__rstop_on_term);
  pid_t parent = getpid();
  fflush(stdout);
  fflush(stderr);
  int rc = CH_OK;
  for (int i = 0; rc == CH_OK && i < n; i++) {
    p->pids[i] = fork();
    if (p->pids[i] == 0) ch__worker_process(s, parent, (uint32_t)i + 1);
    if (p->pids[i] < 0) rc = ch_error_set(err, CH_EIO, "fork failed");
  }
  signal(SIGTERM, old);
  return rc;
}

static int ch__flow_redis(const ch__rsetup *s, int procs, double seconds, ch__flow *f,
                          ch_error *err) {
  ch_buffer b;
  int rc = ch_buffer_open_spec(s->url, CH__R_STREAM, "bench", &b, err);
  if (rc != CH_OK) return rc;
  rc = b.vt->clear(b.h, err); /* the backlog of the previous measurement */
  ch__procs p = {{0}, 0};
  if (rc == CH_OK) rc = ch__procs_start(s, &p, procs, err);
  if (rc == CH_OK)
    rc = ch__consume_flow(&b, s->cfg->segment_steps, seconds, ch__procs_alive, &p, f, err);
  ch__procs_stop(&p);
  ch_error ignored;
  b.vt->clear(b.h, &ignored); /* leave no backlog in a server that is not ours */
  ch_buffer_close(&b);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The report                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static double ch__per_s(double n, const ch__flow *f) {
  return f->seconds > 0 ? n / f->seconds : 0;
}

/* One measurement's figures, with the env steps/s ratio to base unless base is NULL. */
static void ch__flow_json(cJSON *into, const char *name, const ch__flow *f, const ch__flow *base) {
  double sps = ch__per_s((double)f->steps, f);
  cJSON *o = cJSON_AddObjectToObject(into, name);
  cJSON_AddNumberToObject(o, "env_steps_per_s", round(sps));
  cJSON_AddNumberToObject(o, "segments_per_s", round(10 * ch__per_s((double)f->segments, f)) / 10);
  cJSON_AddNumberToObject(o, "mb_per_s", round(10 * ch__per_s(f->bytes / 1e6, f)) / 10);
  cJSON_AddNumberToObject(o, "segments", (double)f->segments);
  cJSON_AddNumberToObject(o, "env_steps", (double)f->steps);
  cJSON_AddNumberToObject(o, "seconds", round(1e3 * f->seconds) / 1e3);
  if (!base) return;
  double bsps = ch__per_s((double)base->steps, base), ratio = bsps > 0 ? sps / bsps : 0;
  cJSON_AddNumberToObject(o, "ratio", round(1e3 * ratio) / 1e3);
  cJSON_AddNumberToObject(o, "target", 0.8);
  cJSON_AddBoolToObject(o, "met", ratio >= 0.8);
}

static void ch__payload_json(const ch__rsetup *s, const ch__flow *mem1, cJSON *r) {
  const ch_train_config *c = s->cfg;
  cJSON_AddStringToObject(r, "script", c->script);
  cJSON_AddStringToObject(r, "network", c->network_plugin);
  cJSON_AddNumberToObject(r, "cars_per_worker", c->cars_per_worker);
  cJSON_AddNumberToObject(r, "segment_steps", c->segment_steps);
  cJSON_AddNumberToObject(r, "record_bytes", (double)mem1->full_bytes);
  cJSON_AddNumberToObject(r, "mean_record_bytes",
                          mem1->segments ? round(mem1->bytes / (double)mem1->segments) : 0);
}

/* memory_N then redis_N for N = 1, 2, 4: neighbours in time, so load changes hit both. */
static int ch__rollout_payload(const ch__rsetup *s, double seconds, cJSON *r, ch_error *err) {
  static const int counts[] = {1, 2, CH__R_MAX_PROCS};
  int rc = CH_OK;
  for (size_t k = 0; rc == CH_OK && k < sizeof counts / sizeof counts[0]; k++) {
    ch__flow mem, red;
    char name[16];
    rc = ch__flow_memory(s, counts[k], seconds, &mem, err);
    if (rc == CH_OK) rc = ch__flow_redis(s, counts[k], seconds, &red, err);
    if (rc != CH_OK) break;
    if (k == 0) ch__payload_json(s, &mem, r);
    snprintf(name, sizeof name, "memory_%d", counts[k]);
    ch__flow_json(r, name, &mem, NULL);
    snprintf(name, sizeof name, "redis_%d", counts[k]);
    ch__flow_json(r, name, &red, &mem);
  }
  return rc;
}

/* OpenBLAS's own (its cblas.h declares it, but also pulls in complex.h, whose I clashes). */
void openblas_set_num_threads(int num_threads);

int ch__bench_rollout(const char *url, double seconds, cJSON *into, ch_error *err) {
  static const struct {
    const char *name, *script;
  } kinds[] = {{"state", "scripts/default.lua"}, {"camera", "scripts/camera.lua"}};
  /* As the trainer has it while workers roll out: one BLAS thread per worker. (main's
  ** OPENBLAS_NUM_THREADS comes too late: OpenBLAS, linked into the executable, read the
  ** environment before main and started a thread per core, whose spinning halves camera
  ** workers.) The worker processes inherit the setting. */
  openblas_set_num_threads(1);
  int rc = CH_OK;
  for (size_t k = 0; rc == CH_OK && k < sizeof kinds / sizeof kinds[0]; k++) {
    ch__rsetup s;
    rc = ch__rsetup_open(&s, kinds[k].name, kinds[k].script, url, err);
    if (rc == CH_OK)
      rc = ch__rollout_payload(&s, seconds, cJSON_AddObjectToObject(into, kinds[k].name), err);
    ch__rsetup_close(&s);
  }
  return rc;
}
