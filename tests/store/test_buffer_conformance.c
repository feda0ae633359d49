/* test_buffer_conformance.c -- one suite of buffer cases run against every buffer plugin. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugin_open.h"
#include "servers.h"

/*
** The common cases run against buffer `memory` (config {}) and buffer `redis` (a redis-server of
** its own per group, a fresh stream per test). The redis group adds the cases only a server can
** have: redelivery after a handle dies, a server killed and restarted, a server down, foreign
** entries in the stream, passwords and URLs.
*/

enum { BACKEND_MEMORY, BACKEND_REDIS };

typedef struct backend {
  int kind;
  const char *file; /* the plugin's .so */
  const char *name; /* its header name */
  const ch_buffer_vtable *vt;
  int skip; /* the server program is not installed */
  int test_no;
  ch_test_server server;  /* redis: no password */
  ch_test_server guarded; /* redis: with PASSWORD */
} backend;

#define PASSWORD "s3cret-pw@:/"

/* ---- a host that keeps what the plugin logs ----------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[256 * 1024];
static size_t log_len;

static void capture_log(int level, const char *source, const char *message) {
  pthread_mutex_lock(&log_lock);
  int n = snprintf(log_text + log_len, sizeof log_text - log_len, "%d [%s] %s\n", level, source,
                   message);
  if (n > 0 && (size_t)n < sizeof log_text - log_len) log_len += (size_t)n;
  pthread_mutex_unlock(&log_lock);
}

static const ch_host_api capture_host = {CH_PLUGIN_ABI_VERSION, sizeof(ch_host_api), capture_log};

static void log_reset(void) {
  pthread_mutex_lock(&log_lock);
  log_len = 0;
  log_text[0] = '\0';
  pthread_mutex_unlock(&log_lock);
}

static int log_has(const char *needle) {
  pthread_mutex_lock(&log_lock);
  int found = strstr(log_text, needle) != NULL;
  pthread_mutex_unlock(&log_lock);
  return found;
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* The config for this backend and test: memory {extra}; redis adds url, a per-test stream and
** a replay ring, so that sample behaves as the memory buffer's for records not pulled. */
static void make_config(const backend *be, const char *extra, char *out, size_t cap) {
  const char *sep = extra && extra[0] ? ", " : "";
  if (be->kind == BACKEND_MEMORY)
    snprintf(out, cap, "{%s}", extra ? extra : "");
  else
    snprintf(out, cap,
             "{\"url\": \"%s\", \"stream\": \"conformance-%d\", \"replay_capacity\": 100000%s%s}",
             be->server.url, be->test_no, sep, extra ? extra : "");
}

static void *open_with(const backend *be, const char *config) {
  void *buf = NULL;
  ch_error err = {0};
  int rc = be->vt->open(config, &capture_host, &buf, &err);
  if (rc != CH_OK) fail_msg("open(%s): %s", config, err.message);
  assert_non_null(buf);
  return buf;
}

static void *open_buffer(const backend *be, const char *extra) {
  char config[1024];
  make_config(be, extra, config, sizeof config);
  return open_with(be, config);
}

static void push_bytes(const backend *be, void *buf, uint64_t version, const void *data,
                       size_t len) {
  ch_error err = {0};
  int rc = be->vt->push(buf, version, data, len, &err);
  if (rc != CH_OK) fail_msg("push of %zu bytes: %s", len, err.message);
}

static void push_text(const backend *be, void *buf, uint64_t version, const char *text) {
  push_bytes(be, buf, version, text, strlen(text));
}

static void pull_one(const backend *be, void *buf, int timeout_ms, ch_record *r) {
  ch_error err = {0};
  int rc = be->vt->pull(buf, timeout_ms, r, &err);
  if (rc != 1) fail_msg("pull(%d ms) gave %d, want a record: %s", timeout_ms, rc, err.message);
}

static void assert_text(const ch_record *r, const char *text) {
  if (r->len != strlen(text) || memcmp(r->data, text, r->len) != 0)
    fail_msg("record %llu is '%.*s', want '%s'", (unsigned long long)r->id, (int)r->len,
             (const char *)r->data, text);
}

static void assert_nothing(const backend *be, void *buf, int timeout_ms) {
  ch_record r;
  ch_error err = {0};
  int rc = be->vt->pull(buf, timeout_ms, &r, &err);
  if (rc == 1) {
    fail_msg("pull gave record %llu '%.*s', want none", (unsigned long long)r.id, (int)r.len,
             (const char *)r.data);
  }
  if (rc != 0) fail_msg("pull gave %d: %s", rc, err.message);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A cmocka per-test setup: skip when the server is absent, else a fresh stream. */
static int fresh(void **state) {
  backend *be = *state;
  be->test_no++;
  log_reset();
  return 0;
}

#define BACKEND(state)                                                                             \
  backend *be = *(state);                                                                          \
  if (be->skip) skip()

/* ---- common cases --------------------------------------------------------------------------- */

static void test_header(void **state) {
  BACKEND(state);
  assert_int_equal(be->vt->header.abi_version, CH_PLUGIN_ABI_VERSION);
  assert_int_equal(be->vt->header.kind, CH_PLUGIN_BUFFER);
  assert_int_equal(be->vt->header.struct_size, sizeof(ch_buffer_vtable));
  assert_string_equal(be->vt->header.name, be->name);
  assert_non_null(be->vt->meta_set);
  assert_non_null(be->vt->meta_get);
}

static void test_fifo_ids_versions(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  char text[32];
  const uint64_t versions[5] = {0, 1, 100, 1ull << 40, UINT64_MAX};
  for (int i = 0; i < 5; i++) {
    snprintf(text, sizeof text, "record-%d", i);
    push_text(be, buf, versions[i], text);
  }
  assert_int_equal(be->vt->size(buf), 5);
  for (int i = 0; i < 5; i++) {
    ch_record r;
    pull_one(be, buf, 0, &r);
    snprintf(text, sizeof text, "record-%d", i);
    assert_text(&r, text);
    assert_int_equal(r.id, (uint64_t)i + 1);
    if (r.policy_version != versions[i])
      fail_msg("record %d: policy version %llu, want %llu", i, (unsigned long long)r.policy_version,
               (unsigned long long)versions[i]);
    be->vt->ack(buf, &r);
    assert_null(r.internal);
  }
  assert_int_equal(be->vt->size(buf), 0);
  assert_nothing(be, buf, 0);
  be->vt->close(buf);
}

static void test_pull_timeout_returns(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  assert_nothing(be, buf, 0);
  assert_nothing(be, buf, 50);   /* returns, empty-handed; no timing asserted */
  assert_nothing(be, buf, 1200); /* longer than one blocking slice of the redis plugin */
  be->vt->close(buf);
}

typedef struct late_push {
  const backend *be;
  void *buf;
  int rc;
} late_push;

static void *late_push_main(void *arg) {
  late_push *lp = arg;
  sleep_ms(50); /* let the consumer block first (the test passes either way) */
  ch_error err = {0};
  lp->rc = lp->be->vt->push(lp->buf, 3, "late", 4, &err);
  return NULL;
}

/* A consumer blocked in pull must not hold up a producer on the same handle. */
static void test_pull_wakes_on_push(void **state) {
  BACKEND(state);
  late_push lp = {be, open_buffer(be, NULL), -100};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, late_push_main, &lp), 0);
  ch_record r;
  pull_one(be, lp.buf, 600000, &r);
  assert_text(&r, "late");
  assert_int_equal(r.policy_version, 3);
  be->vt->ack(lp.buf, &r);
  pthread_join(t, NULL);
  assert_int_equal(lp.rc, CH_OK);
  be->vt->close(lp.buf);
}

static void test_ack_and_size(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  push_text(be, buf, 1, "a");
  push_text(be, buf, 1, "b");
  push_text(be, buf, 1, "c");
  ch_record ra, rb, rc;
  pull_one(be, buf, 0, &ra);
  assert_int_equal(be->vt->size(buf), 2); /* in flight, not held */
  pull_one(be, buf, 0, &rb);
  assert_int_equal(be->vt->size(buf), 1);
  be->vt->ack(buf, &ra);
  assert_int_equal(be->vt->size(buf), 1); /* ack does not bring it back */
  assert_text(&rb, "b");
  be->vt->ack(buf, &rb);
  pull_one(be, buf, 0, &rc);
  assert_text(&rc, "c");
  be->vt->ack(buf, &rc);
  assert_int_equal(be->vt->size(buf), 0);
  assert_nothing(be, buf, 0);
  be->vt->close(buf);
}

static void test_clear(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  push_text(be, buf, 1, "in flight");
  push_text(be, buf, 1, "held 1");
  push_text(be, buf, 1, "held 2");
  ch_record r;
  pull_one(be, buf, 0, &r);
  ch_error err = {0};
  assert_int_equal(be->vt->clear(buf, &err), CH_OK);
  assert_int_equal(be->vt->size(buf), 0);
  assert_text(&r, "in flight"); /* still valid: ASan would flag a use after free */
  be->vt->ack(buf, &r);
  assert_nothing(be, buf, 0);
  uint64_t rng = 5;
  assert_int_equal(be->vt->sample(buf, &rng, &r, &err), 0);
  push_text(be, buf, 1, "after");
  pull_one(be, buf, 0, &r);
  assert_text(&r, "after");
  assert_int_equal(r.id, 4); /* ids go on after a clear */
  be->vt->ack(buf, &r);
  be->vt->close(buf);
}

#define SAMPLE_RECORDS 10
#define SAMPLE_DRAWS   8000

static void test_sample_uniform(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  ch_error err = {0};
  uint64_t rng = 0; /* a zero seed must work too */
  ch_record r;
  assert_int_equal(be->vt->sample(buf, &rng, &r, &err), 0);
  char text[16];
  for (int i = 0; i < SAMPLE_RECORDS; i++) {
    snprintf(text, sizeof text, "s%d", i);
    push_text(be, buf, 9, text);
  }
  long counts[SAMPLE_RECORDS + 1] = {0};
  for (int i = 0; i < SAMPLE_DRAWS; i++) {
    int rc = be->vt->sample(buf, &rng, &r, &err);
    if (rc != 1) fail_msg("sample %d gave %d: %s", i, rc, err.message);
    if (r.id < 1 || r.id > SAMPLE_RECORDS)
      fail_msg("sample returned id %llu, not one pushed", (unsigned long long)r.id);
    snprintf(text, sizeof text, "s%d", (int)r.id - 1);
    assert_text(&r, text);
    assert_int_equal(r.policy_version, 9);
    counts[r.id]++;
    be->vt->ack(buf, &r);
  }
  assert_int_equal(be->vt->size(buf), SAMPLE_RECORDS); /* sampling removes nothing */
  /* Chi-square with 9 degrees of freedom: 45 has p < 1e-6, and the seed is fixed. */
  double expected = (double)SAMPLE_DRAWS / SAMPLE_RECORDS, chi2 = 0;
  for (int id = 1; id <= SAMPLE_RECORDS; id++)
    chi2 += (counts[id] - expected) * (counts[id] - expected) / expected;
  if (chi2 > 45.0) fail_msg("sample is not uniform: chi-square %.2f > 45", chi2);
  be->vt->close(buf);
}

#define PRODUCERS     4
#define CONSUMERS     2
#define PER_PRODUCER  500
#define TOTAL_RECORDS (PRODUCERS * PER_PRODUCER)

typedef struct payload {
  uint32_t producer;
  uint32_t seq;
} payload;

typedef struct traffic {
  const backend *be;
  void *buf;
  atomic_int taken;
  atomic_int failures;
  unsigned char seen[PRODUCERS][PER_PRODUCER];
  uint64_t last_id;
  pthread_mutex_t seen_lock;
  char first_failure[CH_ERROR_MESSAGE_MAX];
} traffic;

typedef struct producer_arg {
  traffic *t;
  uint32_t producer;
} producer_arg;

static void traffic_fail(traffic *t, const char *what) {
  pthread_mutex_lock(&t->seen_lock);
  if (!t->first_failure[0]) snprintf(t->first_failure, sizeof t->first_failure, "%s", what);
  pthread_mutex_unlock(&t->seen_lock);
  atomic_fetch_add(&t->failures, 1);
}

static void *producer_main(void *arg) {
  producer_arg *pa = arg;
  for (uint32_t i = 0; i < PER_PRODUCER; i++) {
    payload p = {pa->producer, i};
    ch_error err = {0};
    if (pa->t->be->vt->push(pa->t->buf, pa->producer, &p, sizeof p, &err) != CH_OK)
      traffic_fail(pa->t, err.message);
  }
  return NULL;
}

/* Note one pulled record; returns 0 if it is a duplicate, malformed or out of order. */
static int consume_one(traffic *t, const ch_record *r, int64_t *last_seq) {
  payload p;
  if (r->len != sizeof p || r->id == 0 || r->id > TOTAL_RECORDS) return 0;
  memcpy(&p, r->data, sizeof p);
  if (p.producer >= PRODUCERS || p.seq >= PER_PRODUCER || r->policy_version != p.producer) return 0;
  /* FIFO: one consumer sees each producer's records in the order they were pushed. */
  if ((int64_t)p.seq <= last_seq[p.producer]) return 0;
  last_seq[p.producer] = p.seq;
  pthread_mutex_lock(&t->seen_lock);
  int fresh_one = !t->seen[p.producer][p.seq];
  t->seen[p.producer][p.seq] = 1;
  pthread_mutex_unlock(&t->seen_lock);
  return fresh_one;
}

static void *consumer_main(void *arg) {
  traffic *t = arg;
  int64_t last_seq[PRODUCERS] = {-1, -1, -1, -1};
  while (atomic_load(&t->taken) < TOTAL_RECORDS && atomic_load(&t->failures) < 10) {
    ch_record r;
    ch_error err = {0};
    int got = t->be->vt->pull(t->buf, 20, &r, &err);
    if (got < 0) traffic_fail(t, err.message);
    if (got != 1) continue;
    if (!consume_one(t, &r, last_seq)) traffic_fail(t, "duplicate, malformed or reordered");
    t->be->vt->ack(t->buf, &r);
    atomic_fetch_add(&t->taken, 1);
  }
  return NULL;
}

static void test_threads_move_everything_once(void **state) {
  BACKEND(state);
  traffic *t = calloc(1, sizeof *t);
  assert_non_null(t);
  t->be = be;
  t->buf = open_buffer(be, NULL);
  pthread_mutex_init(&t->seen_lock, NULL);
  pthread_t prod[PRODUCERS], cons[CONSUMERS];
  producer_arg pa[PRODUCERS];
  for (int i = 0; i < CONSUMERS; i++)
    assert_int_equal(pthread_create(&cons[i], NULL, consumer_main, t), 0);
  for (int i = 0; i < PRODUCERS; i++) {
    pa[i] = (producer_arg){t, (uint32_t)i};
    assert_int_equal(pthread_create(&prod[i], NULL, producer_main, &pa[i]), 0);
  }
  for (int i = 0; i < PRODUCERS; i++) pthread_join(prod[i], NULL);
  for (int i = 0; i < CONSUMERS; i++) pthread_join(cons[i], NULL);
  if (atomic_load(&t->failures) > 0)
    fail_msg("%d failures, first: %s", atomic_load(&t->failures), t->first_failure);
  assert_int_equal(atomic_load(&t->taken), TOTAL_RECORDS);
  for (int p = 0; p < PRODUCERS; p++)
    for (int s = 0; s < PER_PRODUCER; s++)
      if (!t->seen[p][s]) fail_msg("record %d of producer %d was lost", s, p);
  assert_int_equal(be->vt->size(t->buf), 0);
  assert_nothing(be, t->buf, 0);
  pthread_mutex_destroy(&t->seen_lock);
  be->vt->close(t->buf);
  free(t);
}

static void test_binary_with_nul_bytes(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  unsigned char bytes[512];
  for (int i = 0; i < 512; i++) bytes[i] = (unsigned char)(i % 3 == 0 ? 0 : i * 7);
  push_bytes(be, buf, 77, bytes, sizeof bytes);
  push_bytes(be, buf, 78, "", 0);
  push_bytes(be, buf, 79, "\0\0\0", 3);
  ch_record r;
  pull_one(be, buf, 0, &r);
  assert_int_equal(r.len, sizeof bytes);
  assert_memory_equal(r.data, bytes, sizeof bytes);
  assert_int_equal(r.policy_version, 77);
  assert_int_equal((uintptr_t)r.data % 4, 0); /* segments are decoded in place */
  be->vt->ack(buf, &r);
  pull_one(be, buf, 0, &r);
  assert_int_equal(r.len, 0);
  assert_int_equal(r.policy_version, 78);
  be->vt->ack(buf, &r);
  pull_one(be, buf, 0, &r);
  assert_int_equal(r.len, 3);
  assert_memory_equal(r.data, "\0\0\0", 3);
  be->vt->ack(buf, &r);
  ch_error err = {0};
  assert_int_equal(be->vt->push(buf, 1, NULL, 3, &err), CH_EINVAL);
  be->vt->close(buf);
}

#define LARGE_SIZE    (1024 * 1024)
#define LARGE_RECORDS 4

static void test_large_records(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  unsigned char *blob = malloc(LARGE_SIZE);
  assert_non_null(blob);
  for (int k = 0; k < LARGE_RECORDS; k++) {
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    for (size_t i = 0; i < LARGE_SIZE; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      blob[i] = (unsigned char)x;
    }
    push_bytes(be, buf, (uint64_t)k, blob, LARGE_SIZE);
  }
  for (int k = 0; k < LARGE_RECORDS; k++) {
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    for (size_t i = 0; i < LARGE_SIZE; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      blob[i] = (unsigned char)x;
    }
    ch_record r;
    pull_one(be, buf, 0, &r);
    assert_int_equal(r.len, LARGE_SIZE);
    assert_int_equal(r.policy_version, (uint64_t)k);
    if (memcmp(r.data, blob, LARGE_SIZE) != 0) fail_msg("large record %d differs", k);
    be->vt->ack(buf, &r);
  }
  free(blob);
  be->vt->close(buf);
}

static void test_max_records(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, "\"max_records\": 3");
  push_text(be, buf, 1, "1");
  push_text(be, buf, 1, "2");
  push_text(be, buf, 1, "3");
  ch_error err = {0};
  assert_int_equal(be->vt->push(buf, 1, "4", 1, &err), CH_ERANGE);
  assert_int_equal(err.code, CH_ERANGE);
  if (!strstr(err.message, "buffer full (max_records 3)"))
    fail_msg("message '%s' lacks 'buffer full (max_records 3)'", err.message);
  assert_int_equal(be->vt->size(buf), 3);
  ch_record r;
  pull_one(be, buf, 0, &r);
  push_text(be, buf, 1, "4"); /* the pulled record no longer counts */
  assert_int_equal(be->vt->push(buf, 1, "5", 1, &err), CH_ERANGE);
  be->vt->ack(buf, &r);
  for (int i = 2; i <= 4; i++) {
    pull_one(be, buf, 0, &r);
    assert_int_equal(r.id, (uint64_t)i); /* a refused push uses no id */
    be->vt->ack(buf, &r);
  }
  be->vt->close(buf);
}

static void expect_open_error(const backend *be, const char *config, int code, const char *needle) {
  void *buf = (void *)&buf;
  ch_error err = {0};
  int rc = be->vt->open(config, &capture_host, &buf, &err);
  if (rc != code) fail_msg("open(%s) gave %d (%s), want %d", config, rc, err.message, code);
  assert_null(buf);
  assert_int_equal(err.code, code);
  if (!strstr(err.message, needle))
    fail_msg("open(%s): message '%s' lacks '%s'", config, err.message, needle);
}

static void test_config_errors(void **state) {
  BACKEND(state);
  char config[1024];
  make_config(be, "\"max_recrods\": 5", config, sizeof config);
  expect_open_error(be, config, CH_EINVAL, "unknown config key 'max_recrods'");
  make_config(be, "\"max_records\": 0", config, sizeof config);
  expect_open_error(be, config, CH_EINVAL, "max_records");
  make_config(be, "\"max_records\": 2.5", config, sizeof config);
  expect_open_error(be, config, CH_EINVAL, "max_records");
  expect_open_error(be, "{\"max_records\": 10", CH_EINVAL, "not valid JSON");
  expect_open_error(be, "[1]", CH_EINVAL, "JSON object");
}

static void test_meta(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  ch_error err = {0};
  char out[64];
  assert_int_equal(be->vt->meta_get(buf, "policy/latest", out, sizeof out, &err), CH_ENOTFOUND);
  assert_non_null(strstr(err.message, "policy/latest"));
  assert_int_equal(be->vt->meta_set(buf, "policy/latest", "7", &err), CH_OK);
  assert_int_equal(be->vt->meta_get(buf, "policy/latest", out, sizeof out, &err), 1);
  assert_string_equal(out, "7");
  assert_int_equal(be->vt->meta_set(buf, "policy/latest", "models/v0012.bin", &err), CH_OK);
  assert_int_equal(be->vt->meta_get(buf, "policy/latest", out, sizeof out, &err), 16);
  assert_string_equal(out, "models/v0012.bin");
  assert_int_equal(be->vt->meta_get(buf, "policy/latest", out, 16, &err), CH_ERANGE);
  assert_int_equal(be->vt->meta_set(buf, "bad key", "x", &err), CH_EINVAL);
  assert_int_equal(be->vt->meta_get(buf, "", out, sizeof out, &err), CH_EINVAL);
  assert_int_equal(be->vt->meta_set(buf, "empty", "", &err), CH_OK);
  assert_int_equal(be->vt->meta_get(buf, "empty", out, sizeof out, &err), 0);
  assert_string_equal(out, "");
  /* Meta values are not records: clear leaves them alone. */
  assert_int_equal(be->vt->clear(buf, &err), CH_OK);
  assert_int_equal(be->vt->meta_get(buf, "policy/latest", out, sizeof out, &err), 16);
  be->vt->close(buf);
}

/* ---- redis only --------------------------------------------------------------------------- */

/* One command straight to a server, around the plugin (to plant foreign data, to look). */
static redisReply *raw_command(const ch_test_server *s, const char *fmt, ...) {
  redisContext *c = redisConnect("127.0.0.1", s->port);
  if (!c || c->err) fail_msg("raw connect to port %d: %s", s->port, c ? c->errstr : "no memory");
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r) fail_msg("raw command '%s': %s", fmt, c->errstr);
  redisFree(c);
  return r;
}

static long long raw_integer(const ch_test_server *s, const char *fmt, const char *arg) {
  redisReply *r = raw_command(s, fmt, arg);
  if (r->type != REDIS_REPLY_INTEGER) fail_msg("'%s %s' did not give an integer", fmt, arg);
  long long n = r->integer;
  freeReplyObject(r);
  return n;
}

static void current_stream(const backend *be, char *out, size_t cap) {
  snprintf(out, cap, "conformance-%d", be->test_no);
}

/* A handle closed without ack: its record goes to the next handle once idle long enough. */
static void test_redis_redelivery_after_close(void **state) {
  BACKEND(state);
  void *a = open_buffer(be, "\"claim_idle_ms\": 100");
  push_text(be, a, 1, "taken by a, never acked");
  push_text(be, a, 2, "still queued");
  ch_record r;
  pull_one(be, a, 0, &r);
  assert_text(&r, "taken by a, never acked");
  be->vt->close(a); /* logs the unacked record; LeakSanitizer checks it was freed */
  assert_true(log_has("never acked"));

  void *b = open_buffer(be, "\"claim_idle_ms\": 100");
  int seen[3] = {0, 0, 0};
  for (int i = 0; i < 2; i++) {
    pull_one(be, b, 10000, &r);
    assert_true(r.id == 1 || r.id == 2);
    seen[r.id]++;
    assert_text(&r, r.id == 1 ? "taken by a, never acked" : "still queued");
    assert_int_equal(r.policy_version, r.id);
    be->vt->ack(b, &r);
  }
  assert_int_equal(seen[1], 1);
  assert_int_equal(seen[2], 1);
  assert_nothing(be, b, 300); /* acked for good: no third delivery after the idle time */
  assert_int_equal(be->vt->size(b), 0);
  be->vt->close(b);
}

/* A handle reopened under the name of a dead one gets its pending records back at once. */
static void test_redis_same_consumer_recovers(void **state) {
  BACKEND(state);
  const char *extra = "\"consumer\": \"trainer-1\", \"claim_idle_ms\": 3600000";
  void *a = open_buffer(be, extra);
  push_text(be, a, 1, "one");
  push_text(be, a, 1, "two");
  ch_record r1, r2;
  pull_one(be, a, 0, &r1);
  pull_one(be, a, 0, &r2);
  be->vt->ack(a, &r2);
  be->vt->close(a);
  void *b = open_buffer(be, extra);
  pull_one(be, b, 0, &r1); /* no idle wait: it is this consumer's own */
  assert_text(&r1, "one");
  assert_nothing(be, b, 0); /* and it is not handed out twice while out */
  be->vt->ack(b, &r1);
  assert_nothing(be, b, 0);
  be->vt->close(b);
}

/* A record out with the caller longer than claim_idle_ms is not handed out again by the same
** handle (it knows the record is out). */
static void test_redis_no_self_redelivery(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, "\"claim_idle_ms\": 20");
  push_text(be, buf, 1, "held long");
  ch_record r;
  pull_one(be, buf, 0, &r);
  sleep_ms(100);
  assert_nothing(be, buf, 200);
  be->vt->ack(buf, &r);
  be->vt->close(buf);
}

/* A handle that leaves nothing pending removes its consumer from the group on close. */
static void test_redis_consumer_retired(void **state) {
  BACKEND(state);
  char stream[64];
  current_stream(be, stream, sizeof stream);
  void *a = open_buffer(be, "\"consumer\": \"done-with-it\"");
  void *b = open_buffer(be, "\"consumer\": \"still-holding\"");
  push_text(be, a, 1, "x");
  push_text(be, a, 1, "y");
  ch_record ra, rb;
  pull_one(be, a, 0, &ra);
  pull_one(be, b, 0, &rb);
  be->vt->ack(a, &ra);
  be->vt->close(a);
  be->vt->close(b); /* closed holding rb: its consumer stays, so the record can be claimed */
  redisReply *r = raw_command(&be->server, "XINFO CONSUMERS %s trainers", stream);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 1);
  const redisReply *c = r->element[0];
  int named = 0;
  for (size_t i = 0; i + 1 < c->elements; i += 2)
    if (strcmp(c->element[i]->str, "name") == 0)
      named = strcmp(c->element[i + 1]->str, "still-holding") == 0;
  assert_true(named);
  freeReplyObject(r);
}

typedef struct blocked_pull {
  const backend *be;
  void *buf;
  int rc;
  ch_record r;
  ch_error err;
} blocked_pull;

static void *blocked_pull_main(void *arg) {
  blocked_pull *bp = arg;
  bp->rc = bp->be->vt->pull(bp->buf, 60000, &bp->r, &bp->err);
  return NULL;
}

/* SIGKILL the server mid-run, restart it: the AOF kept the data, the handles reconnect. */
static void test_redis_server_restart(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, "\"claim_idle_ms\": 100, \"retries\": 8");
  char text[32];
  for (int i = 0; i < 10; i++) {
    snprintf(text, sizeof text, "r%d", i);
    push_text(be, buf, (uint64_t)i, text);
  }
  ch_record r, kept;
  pull_one(be, buf, 0, &r);
  be->vt->ack(buf, &r);
  pull_one(be, buf, 0, &r);
  be->vt->ack(buf, &r);
  pull_one(be, buf, 0, &kept); /* out with us across the crash */
  assert_text(&kept, "r2");

  ch_test_server_kill(&be->server);
  assert_int_equal(ch_test_server_restart(&be->server), 0);
  push_text(be, buf, 10, "r10"); /* reconnects */
  assert_int_equal(be->vt->size(buf), 8);
  for (int i = 3; i <= 10; i++) {
    pull_one(be, buf, 1000, &r);
    snprintf(text, sizeof text, "r%d", i);
    assert_text(&r, text);
    assert_int_equal(r.id, (uint64_t)i + 1);
    be->vt->ack(buf, &r);
  }
  be->vt->ack(buf, &kept); /* acked after the restart: gone for good */
  sleep_ms(150);
  assert_nothing(be, buf, 300);

  /* Now with a consumer blocked in pull while the server dies and comes back. */
  blocked_pull bp = {be, buf, -100, {0}, {0}};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, blocked_pull_main, &bp), 0);
  sleep_ms(100);
  ch_test_server_kill(&be->server);
  sleep_ms(100);
  assert_int_equal(ch_test_server_restart(&be->server), 0);
  push_text(be, buf, 11, "after the second crash");
  pthread_join(t, NULL);
  if (bp.rc != 1) fail_msg("blocked pull gave %d: %s", bp.rc, bp.err.message);
  assert_text(&bp.r, "after the second crash");
  be->vt->ack(buf, &bp.r);
  assert_true(log_has("retry 1 of 8"));
  be->vt->close(buf);
}

static void test_redis_server_down(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, "\"retries\": 2, \"connect_timeout_ms\": 500");
  push_text(be, buf, 1, "before");
  ch_test_server_kill(&be->server);
  ch_error err = {0};
  char where[64];
  snprintf(where, sizeof where, "redis at 127.0.0.1:%d", be->server.port);
  int rc = be->vt->push(buf, 1, "x", 1, &err);
  if (rc != CH_ECONN || !strstr(err.message, where) || !strstr(err.message, "gave up after 2"))
    fail_msg("push to a dead server gave %d '%s', want CH_ECONN naming '%s'", rc, err.message,
             where);
  char url_in_log[128];
  snprintf(url_in_log, sizeof url_in_log, "url redis://127.0.0.1:%d: retry 2 of 2",
           be->server.port);
  if (!log_has(url_in_log)) fail_msg("no WARN '%s' in the log:\n%s", url_in_log, log_text);
  ch_record r;
  assert_int_equal(be->vt->pull(buf, 0, &r, &err), CH_ECONN);
  assert_non_null(strstr(err.message, where));
  assert_true(be->vt->size(buf) == CH_ECONN);
  char config[1024];
  make_config(be, "\"retries\": 1", config, sizeof config);
  void *other = (void *)&other;
  assert_int_equal(be->vt->open(config, &capture_host, &other, &err), CH_ECONN);
  assert_null(other);
  assert_non_null(strstr(err.message, where));

  assert_int_equal(ch_test_server_restart(&be->server), 0);
  pull_one(be, buf, 1000, &r); /* the same handle works again */
  assert_text(&r, "before");
  be->vt->ack(buf, &r);
  be->vt->close(buf);
}

static void test_redis_foreign_entries(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  char stream[64];
  current_stream(be, stream, sizeof stream);
  push_text(be, buf, 1, "good 1");
  redisReply *f1 = raw_command(&be->server, "XADD %s * foo bar", stream);
  redisReply *f2 = raw_command(&be->server, "XADD %s * v abc i 9 d payload", stream);
  redisReply *f3 = raw_command(&be->server, "XADD %s * v 1 d no-id", stream);
  assert_int_equal(f1->type, REDIS_REPLY_STRING);
  push_text(be, buf, 2, "good 2");
  ch_record r;
  pull_one(be, buf, 0, &r);
  assert_text(&r, "good 1");
  be->vt->ack(buf, &r);
  pull_one(be, buf, 0, &r); /* the three foreign entries are skipped, not returned */
  assert_text(&r, "good 2");
  assert_int_equal(r.id, 2);
  be->vt->ack(buf, &r);
  const redisReply *ids[3] = {f1, f2, f3};
  for (int i = 0; i < 3; i++) {
    char want[128];
    snprintf(want, sizeof want, "skipped foreign entry %s", ids[i]->str);
    if (!log_has(want)) fail_msg("no '%s' in the log:\n%s", want, log_text);
  }
  assert_true(log_has("no field 'v'"));
  assert_true(log_has("field 'v' is not a decimal policy version"));
  assert_true(log_has("no field 'i'"));
  assert_true(log_has("3 skipped by this handle"));
  for (int i = 0; i < 3; i++) freeReplyObject((redisReply *)ids[i]);
  be->vt->close(buf); /* acks are sent in batches; close sends what is left */
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 0); /* acked and deleted */
}

static void test_redis_password(void **state) {
  BACKEND(state);
  char config[1024];
  /* The right password: the server's url carries it. */
  snprintf(config, sizeof config, "{\"url\": \"%s\", \"stream\": \"pw-%d\"}", be->guarded.url,
           be->test_no);
  void *buf = open_with(be, config);
  push_text(be, buf, 1, "behind a password");
  ch_record r;
  pull_one(be, buf, 0, &r);
  assert_text(&r, "behind a password");
  be->vt->ack(buf, &r);
  be->vt->close(buf);
  /* A wrong one, and none at all: clear errors, no retries, the password never shown. */
  snprintf(config, sizeof config, "{\"url\": \"redis://:wrong-pw@127.0.0.1:%d\"}",
           be->guarded.port);
  expect_open_error(be, config, CH_EINVAL, "AUTH failed: WRONGPASS");
  ch_error err = {0};
  void *h = NULL;
  assert_int_equal(be->vt->open(config, &capture_host, &h, &err), CH_EINVAL);
  if (strstr(err.message, "wrong-pw")) fail_msg("message '%s' shows the password", err.message);
  snprintf(config, sizeof config, "{\"url\": \"redis://127.0.0.1:%d\"}", be->guarded.port);
  expect_open_error(be, config, CH_EINVAL, "NOAUTH");
  expect_open_error(be, config, CH_EINVAL, "needs a password");
  assert_false(log_has("retry"));
}

static void test_redis_bad_urls(void **state) {
  BACKEND(state);
  static const struct {
    const char *url, *why;
  } bad[] = {
      {"http://127.0.0.1:6379", "must start with redis://"},
      {"rediss://127.0.0.1:6379", "TLS"},
      {"redis://", "no host"},
      {"redis://:6379", "no host"},
      {"redis://host:0", "port"},
      {"redis://host:65536", "port"},
      {"redis://host:12ab", "port"},
      {"redis://host:", "port"},
      {"redis://host:6379/db1", "database"},
      {"redis://host:6379?timeout=1", "query"},
      {"redis://justuser@host:6379", "user info"},
      {"redis://:p%zzw@host:6379", "escape in the password"},
      {"redis://[::1:6379", "without ']'"},
  };
  char config[512];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(config, sizeof config, "{\"url\": \"%s\"}", bad[i].url);
    expect_open_error(be, config, CH_EINVAL, bad[i].why);
    expect_open_error(be, config, CH_EINVAL, "bad url '");
  }
  /* The password is masked in the message. */
  expect_open_error(be, "{\"url\": \"redis://:hunter2@host:99999\"}", CH_EINVAL,
                    "bad url 'redis://:***@host:99999'");
  expect_open_error(be, "{}", CH_EINVAL, "'url' is required");
  expect_open_error(be, "{\"url\": 5}", CH_EINVAL, "'url'");
  expect_open_error(be, "{\"url\": \"redis://h\", \"retries\": 31}", CH_EINVAL, "'retries'");
}

static void test_redis_url_forms(void **state) {
  BACKEND(state);
  char config[512];
  /* db 3, and a percent-encoded password with '@' and ':' in it. */
  snprintf(config, sizeof config, "{\"url\": \"redis://127.0.0.1:%d/3\", \"stream\": \"db3\"}",
           be->server.port);
  void *buf = open_with(be, config);
  push_text(be, buf, 1, "in db 3");
  be->vt->close(buf);
  assert_int_equal(raw_integer(&be->server, "EXISTS %s", "db3"), 0); /* not in db 0 */
  redisReply *r = raw_command(&be->server, "EVAL %s 1 %s",
                              "redis.call('SELECT', 3) return redis.call('XLEN', KEYS[1])", "db3");
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  snprintf(config, sizeof config, "{\"url\": \"redis://default:%s@127.0.0.1:%d\"}",
           "s3cret%2Dpw%40%3A%2F", be->guarded.port);
  buf = open_with(be, config); /* user "default"; '-', '@', ':' and '/' percent-encoded */
  be->vt->close(buf);
}

static void test_redis_replay_ring(void **state) {
  BACKEND(state);
  char config[1024];
  snprintf(config, sizeof config,
           "{\"url\": \"%s\", \"stream\": \"ring-%d\", \"replay_capacity\": 5}", be->server.url,
           be->test_no);
  void *buf = open_with(be, config);
  char text[16];
  for (int i = 1; i <= 20; i++) {
    snprintf(text, sizeof text, "n%d", i);
    push_text(be, buf, (uint64_t)i, text);
  }
  ch_record pulled;
  pull_one(be, buf, 0, &pulled); /* pulling does not take records out of the ring */
  uint64_t rng = 99;
  int counts[21] = {0};
  ch_error err = {0};
  for (int i = 0; i < 2000; i++) {
    ch_record r;
    assert_int_equal(be->vt->sample(buf, &rng, &r, &err), 1);
    if (r.id < 16 || r.id > 20)
      fail_msg("sampled id %llu, outside the last 5", (unsigned long long)r.id);
    snprintf(text, sizeof text, "n%d", (int)r.id);
    assert_text(&r, text);
    assert_int_equal(r.policy_version, r.id);
    counts[r.id]++;
    be->vt->ack(buf, &r);
  }
  for (int id = 16; id <= 20; id++)
    if (counts[id] < 300) fail_msg("id %d sampled only %d times of 2000", id, counts[id]);
  be->vt->ack(buf, &pulled);
  be->vt->close(buf);
  /* No ring configured: sample says so. */
  snprintf(config, sizeof config, "{\"url\": \"%s\", \"stream\": \"ring-%d\"}", be->server.url,
           be->test_no);
  buf = open_with(be, config);
  ch_record r;
  assert_int_equal(be->vt->sample(buf, &rng, &r, &err), CH_EUNSUPPORTED);
  assert_non_null(strstr(err.message, "replay_capacity"));
  be->vt->close(buf);
}

static void test_redis_meta_shared(void **state) {
  BACKEND(state);
  void *a = open_buffer(be, NULL), *b = open_buffer(be, NULL);
  ch_error err = {0};
  char out[32];
  assert_int_equal(be->vt->meta_set(a, "policy", "v42", &err), CH_OK);
  assert_int_equal(be->vt->meta_get(b, "policy", out, sizeof out, &err), 3);
  assert_string_equal(out, "v42");
  be->vt->close(a);
  be->vt->close(b);
}

/* ---- redis: reads ahead and batched acks -------------------------------------------------- */

/* Push r1..r10, then in a child process pull r1..r4 without acking and die without close: the
** plugin reads ahead (r5..r7 are pending for the child, never handed out). Returns the pending
** count the child left. */
static long long batch_child_dies(const backend *be, const char *extra) {
  char stream[64];
  current_stream(be, stream, sizeof stream);
  void *buf = open_buffer(be, NULL);
  char text[16];
  for (int i = 1; i <= 10; i++) {
    snprintf(text, sizeof text, "r%d", i);
    push_text(be, buf, (uint64_t)i, text);
  }
  be->vt->close(buf);
  fflush(NULL);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    char config[1024];
    make_config(be, extra, config, sizeof config);
    void *c = NULL;
    ch_error err = {0};
    int ok = be->vt->open(config, &capture_host, &c, &err) == CH_OK;
    ch_record r;
    for (int i = 0; ok && i < 4; i++) ok = be->vt->pull(c, 0, &r, &err) == 1;
    _exit(ok ? 0 : 1); /* a crash: no ack, no close */
  }
  int status = 0;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  redisReply *p = raw_command(&be->server, "XPENDING %s trainers", stream);
  assert_int_equal(p->type, REDIS_REPLY_ARRAY);
  long long pending = p->element[0]->integer;
  freeReplyObject(p);
  return pending;
}

/* Every record r1..r10 exactly once from buf, in any order, then nothing. */
static void expect_each_once(const backend *be, void *buf) {
  int seen[11] = {0};
  for (int i = 0; i < 10; i++) {
    ch_record r;
    pull_one(be, buf, 5000, &r);
    assert_true(r.id >= 1 && r.id <= 10);
    char text[16];
    snprintf(text, sizeof text, "r%d", (int)r.id);
    assert_text(&r, text);
    seen[r.id]++;
    be->vt->ack(buf, &r);
  }
  for (int i = 1; i <= 10; i++)
    if (seen[i] != 1) fail_msg("record %d delivered %d times", i, seen[i]);
  assert_nothing(be, buf, 300);
}

/* A consumer that read a batch ahead and died: its successor of the same name gets the pulled
** and the read-ahead records at once, in order, each once. */
static void test_redis_batch_dies_same_name(void **state) {
  BACKEND(state);
  const char *extra = "\"consumer\": \"batcher\", \"claim_idle_ms\": 3600000";
  long long pending = batch_child_dies(be, extra);
  if (pending <= 4) fail_msg("the child left %lld pending: it read nothing ahead", pending);
  void *buf = open_buffer(be, extra);
  for (int i = 1; i <= 10; i++) {
    ch_record r;
    pull_one(be, buf, 0, &r);
    assert_int_equal(r.id, (uint64_t)i);
    be->vt->ack(buf, &r);
  }
  assert_nothing(be, buf, 0);
  be->vt->close(buf);
}

/* ... and a consumer of another name gets them once they are idle past claim_idle_ms. */
static void test_redis_batch_dies_other_name(void **state) {
  BACKEND(state);
  long long pending = batch_child_dies(be, "\"consumer\": \"died\", \"claim_idle_ms\": 100");
  if (pending <= 4) fail_msg("the child left %lld pending: it read nothing ahead", pending);
  void *buf = open_buffer(be, "\"consumer\": \"heir\", \"claim_idle_ms\": 100");
  expect_each_once(be, buf);
  be->vt->close(buf);
}

/* Acks go out when ack_batch gather, before the next read, and on close. */
static void test_redis_ack_batches(void **state) {
  BACKEND(state);
  char stream[64];
  current_stream(be, stream, sizeof stream);
  void *buf = open_buffer(be, "\"ack_batch\": 3, \"pull_batch\": 2");
  char text[16];
  for (int i = 1; i <= 8; i++) {
    snprintf(text, sizeof text, "r%d", i);
    push_text(be, buf, (uint64_t)i, text);
  }
  ch_record r[8];
  for (int i = 0; i < 3; i++) pull_one(be, buf, 0, &r[i]); /* reads 1, then 2 (r2, r3) */
  be->vt->ack(buf, &r[0]);
  be->vt->ack(buf, &r[1]);
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 8); /* gathered, not sent */
  be->vt->ack(buf, &r[2]);
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 5); /* a full batch went */
  pull_one(be, buf, 0, &r[3]);
  be->vt->ack(buf, &r[3]);
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 5);
  pull_one(be, buf, 0, &r[4]); /* r5 is read ahead with r4: no read, no flush */
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 5);
  pull_one(be, buf, 0, &r[5]); /* a read: the ack of r4 goes first */
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 4);
  assert_int_equal(be->vt->size(buf), 2); /* r7 (read ahead, still held) and r8 */
  be->vt->ack(buf, &r[4]);
  be->vt->ack(buf, &r[5]);
  be->vt->close(buf);
  assert_int_equal(raw_integer(&be->server, "XLEN %s", stream), 2);
}

/* The push script runs by its SHA1; a server that lost its script cache still takes pushes. */
static void test_redis_script_cache_lost(void **state) {
  BACKEND(state);
  void *buf = open_buffer(be, NULL);
  push_text(be, buf, 1, "cached");
  freeReplyObject(raw_command(&be->server, "SCRIPT FLUSH"));
  push_text(be, buf, 2, "sent whole");
  push_text(be, buf, 3, "cached again");
  for (int i = 1; i <= 3; i++) {
    ch_record r;
    pull_one(be, buf, 0, &r);
    assert_text(&r, i == 1 ? "cached" : i == 2 ? "sent whole" : "cached again");
    be->vt->ack(buf, &r);
  }
  be->vt->close(buf);
}

/* ---- groups ----------------------------------------------------------------------------- */

static int setup_memory(void **state) {
  static backend be;
  be = (backend){.kind = BACKEND_MEMORY, .file = "buffer_memory.so", .name = "memory"};
  be.vt = test_plugin_open(be.file);
  *state = &be;
  return 0;
}

static int setup_redis(void **state) {
  static backend be;
  be = (backend){.kind = BACKEND_REDIS, .file = "buffer_redis.so", .name = "redis"};
  be.vt = test_plugin_open(be.file);
  *state = &be;
  int rc = ch_test_redis_start(&be.server, NULL);
  if (rc == 0) rc = ch_test_redis_start(&be.guarded, PASSWORD);
  if (rc == -1) {
    fprintf(stderr, "\n*** SKIPPED: redis-server is not installed: the redis buffer cases do "
                    "not run ***\n\n");
    be.skip = 1;
    return 0;
  }
  return rc == 0 ? 0 : -1;
}

static int teardown_redis(void **state) {
  backend *be = *state;
  ch_test_server_stop(&be->server);
  ch_test_server_stop(&be->guarded);
  return 0;
}

#define COMMON_CASES                                                                               \
  cmocka_unit_test_setup(test_header, fresh),                                                      \
      cmocka_unit_test_setup(test_fifo_ids_versions, fresh),                                       \
      cmocka_unit_test_setup(test_pull_timeout_returns, fresh),                                    \
      cmocka_unit_test_setup(test_pull_wakes_on_push, fresh),                                      \
      cmocka_unit_test_setup(test_ack_and_size, fresh), cmocka_unit_test_setup(test_clear, fresh), \
      cmocka_unit_test_setup(test_sample_uniform, fresh),                                          \
      cmocka_unit_test_setup(test_threads_move_everything_once, fresh),                            \
      cmocka_unit_test_setup(test_binary_with_nul_bytes, fresh),                                   \
      cmocka_unit_test_setup(test_large_records, fresh),                                           \
      cmocka_unit_test_setup(test_max_records, fresh),                                             \
      cmocka_unit_test_setup(test_config_errors, fresh), cmocka_unit_test_setup(test_meta, fresh)

int main(void) {
  const struct CMUnitTest memory_cases[] = {COMMON_CASES};
  const struct CMUnitTest redis_cases[] = {
      COMMON_CASES,
      cmocka_unit_test_setup(test_redis_redelivery_after_close, fresh),
      cmocka_unit_test_setup(test_redis_same_consumer_recovers, fresh),
      cmocka_unit_test_setup(test_redis_no_self_redelivery, fresh),
      cmocka_unit_test_setup(test_redis_consumer_retired, fresh),
      cmocka_unit_test_setup(test_redis_foreign_entries, fresh),
      cmocka_unit_test_setup(test_redis_password, fresh),
      cmocka_unit_test_setup(test_redis_bad_urls, fresh),
      cmocka_unit_test_setup(test_redis_url_forms, fresh),
      cmocka_unit_test_setup(test_redis_replay_ring, fresh),
      cmocka_unit_test_setup(test_redis_meta_shared, fresh),
      cmocka_unit_test_setup(test_redis_server_restart, fresh),
      cmocka_unit_test_setup(test_redis_server_down, fresh),
      cmocka_unit_test_setup(test_redis_batch_dies_same_name, fresh),
      cmocka_unit_test_setup(test_redis_batch_dies_other_name, fresh),
      cmocka_unit_test_setup(test_redis_ack_batches, fresh),
      cmocka_unit_test_setup(test_redis_script_cache_lost, fresh),
  };
  int failed = cmocka_run_group_tests_name("buffer memory", memory_cases, setup_memory, NULL);
  failed += cmocka_run_group_tests_name("buffer redis", redis_cases, setup_redis, teardown_redis);
  return failed;
}
