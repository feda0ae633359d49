/* test_memory_buffer.c -- the memory buffer plugin: FIFO, ack, sampling, limits, threads. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugin_open.h"

static const ch_buffer_vtable *vt;

static void *open_buffer(const char *config) {
  void *buf = NULL;
  ch_error err = {0};
  int rc = vt->open(config, &test_host, &buf, &err);
  if (rc != CH_OK) fprintf(stderr, "open(%s): %s\n", config, err.message);
  assert_int_equal(rc, CH_OK);
  assert_non_null(buf);
  return buf;
}

static void push_text(void *buf, uint64_t version, const char *text) {
  ch_error err = {0};
  int rc = vt->push(buf, version, text, strlen(text), &err);
  if (rc != CH_OK) fprintf(stderr, "push: %s\n", err.message);
  assert_int_equal(rc, CH_OK);
}

static void assert_record_text(const ch_record *r, const char *text) {
  assert_int_equal(r->len, strlen(text));
  assert_memory_equal(r->data, text, r->len);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_memory_header(void **state) {
  (void)state;
  assert_int_equal(vt->header.abi_version, CH_PLUGIN_ABI_VERSION);
  assert_int_equal(vt->header.kind, CH_PLUGIN_BUFFER);
  assert_int_equal(vt->header.struct_size, sizeof(ch_buffer_vtable));
  assert_string_equal(vt->header.name, "memory");
  const ch_host_api future = {CH_PLUGIN_ABI_VERSION + 1, sizeof(ch_host_api), NULL};
  ch_plugin_entry_fn entry;
  void *so = dlopen(CHICANE_PLUGIN_BUILD_DIR "/buffer_memory.so", RTLD_NOW | RTLD_LOCAL);
  assert_non_null(so);
  *(void **)&entry = dlsym(so, CH_PLUGIN_ENTRY_NAME);
  assert_non_null(entry);
  assert_null(entry(&future)); /* a host of another ABI is refused */
  dlclose(so);
}

static void test_memory_fifo_ids_versions(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  char text[32];
  for (int i = 0; i < 5; i++) {
    snprintf(text, sizeof text, "record-%d", i);
    push_text(buf, 100 + (uint64_t)i, text);
  }
  assert_int_equal(vt->size(buf), 5);
  for (int i = 0; i < 5; i++) {
    ch_record r;
    ch_error err = {0};
    assert_int_equal(vt->pull(buf, 0, &r, &err), 1);
    snprintf(text, sizeof text, "record-%d", i);
    assert_record_text(&r, text);
    assert_int_equal(r.id, (uint64_t)i + 1);
    assert_int_equal(r.policy_version, 100 + (uint64_t)i);
    vt->ack(buf, &r);
  }
  assert_int_equal(vt->size(buf), 0);
  vt->close(buf);
}

static void test_memory_zero_length_record(void **state) {
  (void)state;
  void *buf = open_buffer(NULL);
  ch_error err = {0};
  assert_int_equal(vt->push(buf, 7, NULL, 0, &err), CH_OK);
  assert_int_equal(vt->push(buf, 7, NULL, 3, &err), CH_EINVAL);
  ch_record r;
  assert_int_equal(vt->pull(buf, 0, &r, &err), 1);
  assert_int_equal(r.len, 0);
  assert_int_equal(r.id, 1);
  assert_int_equal(r.policy_version, 7);
  vt->ack(buf, &r);
  vt->close(buf);
}

static void test_memory_pull_timeout(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  ch_record r;
  ch_error err = {0};
  assert_int_equal(vt->pull(buf, 0, &r, &err), 0);
  double t0 = now_ms();
  assert_int_equal(vt->pull(buf, 50, &r, &err), 0);
  double waited = now_ms() - t0;
  /* A lower bound only: it must have waited, however slow the machine. */
  if (waited < 49.0) fail_msg("pull(50 ms) returned after %.2f ms", waited);
  vt->close(buf);
}

typedef struct late_push {
  void *buf;
  int rc;
} late_push;

static void *late_push_main(void *arg) {
  late_push *lp = arg;
  ch_error err = {0};
  lp->rc = vt->push(lp->buf, 3, "late", 4, &err);
  return NULL;
}

static void test_memory_pull_wakes_on_push(void **state) {
  (void)state;
  late_push lp = {open_buffer("{}"), -100};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, late_push_main, &lp), 0);
  ch_record r;
  ch_error err = {0};
  assert_int_equal(vt->pull(lp.buf, 600000, &r, &err), 1);
  assert_record_text(&r, "late");
  vt->ack(lp.buf, &r);
  pthread_join(t, NULL);
  assert_int_equal(lp.rc, CH_OK);
  vt->close(lp.buf);
}

#define PRODUCERS     4
#define CONSUMERS     2
#define PER_PRODUCER  2500
#define TOTAL_RECORDS (PRODUCERS * PER_PRODUCER)

typedef struct payload {
  uint32_t producer;
  uint32_t seq;
} payload;

typedef struct traffic {
  void *buf;
  atomic_int taken;
  atomic_int failures;
  unsigned char seen_id[TOTAL_RECORDS + 1];
  unsigned char seen_payload[PRODUCERS][PER_PRODUCER];
  pthread_mutex_t seen_lock;
} traffic;

typedef struct producer_arg {
  traffic *t;
  uint32_t producer;
} producer_arg;

static void *producer_main(void *arg) {
  producer_arg *pa = arg;
  for (uint32_t i = 0; i < PER_PRODUCER; i++) {
    payload p = {pa->producer, i};
    ch_error err = {0};
    if (vt->push(pa->t->buf, pa->producer, &p, sizeof p, &err) != CH_OK)
      atomic_fetch_add(&pa->t->failures, 1);
  }
  return NULL;
}

/* Record one pulled record; returns 0 if it is a duplicate, out of range or out of order. */
static int consume_one(traffic *t, const ch_record *r, int64_t *last_seq) {
  payload p;
  if (r->len != sizeof p || r->id == 0 || r->id > TOTAL_RECORDS) return 0;
  memcpy(&p, r->data, sizeof p);
  if (p.producer >= PRODUCERS || p.seq >= PER_PRODUCER || r->policy_version != p.producer) return 0;
  /* FIFO: one consumer sees each producer's records in the order they were pushed. */
  if ((int64_t)p.seq <= last_seq[p.producer]) return 0;
  last_seq[p.producer] = p.seq;
  pthread_mutex_lock(&t->seen_lock);
  int fresh = !t->seen_id[r->id] && !t->seen_payload[p.producer][p.seq];
  t->seen_id[r->id] = 1;
  t->seen_payload[p.producer][p.seq] = 1;
  pthread_mutex_unlock(&t->seen_lock);
  return fresh;
}

static void *consumer_main(void *arg) {
  traffic *t = arg;
  int64_t last_seq[PRODUCERS] = {-1, -1, -1, -1};
  while (atomic_load(&t->taken) < TOTAL_RECORDS) {
    ch_record r;
    ch_error err = {0};
    int got = vt->pull(t->buf, 20, &r, &err);
    if (got < 0) atomic_fetch_add(&t->failures, 1);
    if (got != 1) continue;
    if (!consume_one(t, &r, last_seq)) atomic_fetch_add(&t->failures, 1);
    vt->ack(t->buf, &r);
    atomic_fetch_add(&t->taken, 1);
  }
  return NULL;
}

static void test_memory_threads_move_everything_once(void **state) {
  (void)state;
  traffic *t = calloc(1, sizeof *t);
  assert_non_null(t);
  t->buf = open_buffer("{}");
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
  assert_int_equal(atomic_load(&t->failures), 0);
  assert_int_equal(atomic_load(&t->taken), TOTAL_RECORDS);
  for (int id = 1; id <= TOTAL_RECORDS; id++)
    if (!t->seen_id[id]) fail_msg("record id %d was lost", id);
  assert_int_equal(vt->size(t->buf), 0);
  pthread_mutex_destroy(&t->seen_lock);
  vt->close(t->buf);
  free(t);
}

static void test_memory_ack_and_size(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  push_text(buf, 1, "a");
  push_text(buf, 1, "b");
  push_text(buf, 1, "c");
  ch_record ra, rb;
  ch_error err = {0};
  assert_int_equal(vt->pull(buf, 0, &ra, &err), 1);
  assert_int_equal(vt->size(buf), 2); /* in flight, not held */
  assert_int_equal(vt->pull(buf, 0, &rb, &err), 1);
  assert_int_equal(vt->size(buf), 1);
  vt->ack(buf, &ra);
  assert_int_equal(vt->size(buf), 1); /* ack does not return it */
  assert_record_text(&rb, "b");
  vt->ack(buf, &rb);
  ch_record rc;
  assert_int_equal(vt->pull(buf, 0, &rc, &err), 1);
  assert_record_text(&rc, "c");
  vt->ack(buf, &rc);
  assert_int_equal(vt->pull(buf, 0, &rc, &err), 0);
  vt->close(buf);
}

static void test_memory_clear_keeps_in_flight(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  push_text(buf, 1, "in flight");
  push_text(buf, 1, "held 1");
  push_text(buf, 1, "held 2");
  ch_record r;
  ch_error err = {0};
  assert_int_equal(vt->pull(buf, 0, &r, &err), 1);
  assert_int_equal(vt->clear(buf, &err), CH_OK);
  assert_int_equal(vt->size(buf), 0);
  assert_record_text(&r, "in flight");
  vt->ack(buf, &r);
  ch_record none;
  assert_int_equal(vt->pull(buf, 0, &none, &err), 0);
  /* ids go on after a clear */
  push_text(buf, 1, "after");
  assert_int_equal(vt->pull(buf, 0, &r, &err), 1);
  assert_int_equal(r.id, 4);
  vt->ack(buf, &r);
  vt->close(buf);
}

#define SAMPLE_RECORDS 10
#define SAMPLE_PULLED  2
#define SAMPLE_DRAWS   16000

static void test_memory_sample_held_and_uniform(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  ch_error err = {0};
  uint64_t rng = 0; /* a zero seed must work too */
  ch_record r;
  assert_int_equal(vt->sample(buf, &rng, &r, &err), 0);
  char text[16];
  for (int i = 0; i < SAMPLE_RECORDS; i++) {
    snprintf(text, sizeof text, "s%d", i);
    push_text(buf, 9, text);
  }
  ch_record pulled[SAMPLE_PULLED];
  for (int i = 0; i < SAMPLE_PULLED; i++) assert_int_equal(vt->pull(buf, 0, &pulled[i], &err), 1);
  long counts[SAMPLE_RECORDS + 1] = {0};
  for (int i = 0; i < SAMPLE_DRAWS; i++) {
    assert_int_equal(vt->sample(buf, &rng, &r, &err), 1);
    if (r.id <= SAMPLE_PULLED || r.id > SAMPLE_RECORDS)
      fail_msg("sample returned id %llu, which is not held", (unsigned long long)r.id);
    snprintf(text, sizeof text, "s%d", (int)r.id - 1);
    assert_record_text(&r, text);
    counts[r.id]++;
    vt->ack(buf, &r);
  }
  assert_int_equal(vt->size(buf), SAMPLE_RECORDS - SAMPLE_PULLED);
  /* Chi-square with 7 degrees of freedom: 40 has p < 1e-5, and the seed is fixed. */
  double expected = (double)SAMPLE_DRAWS / (SAMPLE_RECORDS - SAMPLE_PULLED), chi2 = 0;
  for (int id = SAMPLE_PULLED + 1; id <= SAMPLE_RECORDS; id++)
    chi2 += (counts[id] - expected) * (counts[id] - expected) / expected;
  if (chi2 > 40.0) fail_msg("sample is not uniform: chi-square %.2f > 40", chi2);
  for (int i = 0; i < SAMPLE_PULLED; i++) vt->ack(buf, &pulled[i]);
  vt->close(buf);
}

static void test_memory_sample_survives_pull_and_clear(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  ch_error err = {0};
  uint64_t rng = 42;
  push_text(buf, 5, "kept alive by the sample");
  ch_record s, p;
  assert_int_equal(vt->sample(buf, &rng, &s, &err), 1);
  assert_int_equal(vt->pull(buf, 0, &p, &err), 1);
  assert_int_equal(p.id, s.id);
  vt->ack(buf, &p);
  assert_record_text(&s, "kept alive by the sample"); /* ASan would flag a use after free */
  vt->ack(buf, &s);

  push_text(buf, 5, "cleared under a sample");
  assert_int_equal(vt->sample(buf, &rng, &s, &err), 1);
  assert_int_equal(vt->clear(buf, &err), CH_OK);
  assert_int_equal(vt->size(buf), 0);
  assert_int_equal(vt->sample(buf, &rng, &p, &err), 0);
  assert_record_text(&s, "cleared under a sample");
  vt->ack(buf, &s);
  vt->close(buf);
}

static void test_memory_max_records(void **state) {
  (void)state;
  void *buf = open_buffer("{\"max_records\": 3}");
  push_text(buf, 1, "1");
  push_text(buf, 1, "2");
  push_text(buf, 1, "3");
  ch_error err = {0};
  assert_int_equal(vt->push(buf, 1, "4", 1, &err), CH_ERANGE);
  assert_int_equal(err.code, CH_ERANGE);
  assert_non_null(strstr(err.message, "buffer full (max_records 3)"));
  assert_int_equal(vt->size(buf), 3);
  ch_record r;
  assert_int_equal(vt->pull(buf, 0, &r, &err), 1);
  push_text(buf, 1, "4"); /* the pulled record no longer counts */
  assert_int_equal(vt->push(buf, 1, "5", 1, &err), CH_ERANGE);
  vt->ack(buf, &r);
  /* a failed push uses no id */
  ch_record last;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(vt->pull(buf, 0, &last, &err), 1);
    vt->ack(buf, &last);
  }
  push_text(buf, 1, "5");
  assert_int_equal(vt->pull(buf, 0, &last, &err), 1);
  assert_int_equal(last.id, 5);
  vt->ack(buf, &last);
  vt->close(buf);
}

static void expect_open_error(const char *config, const char *needle) {
  void *buf = (void *)&buf;
  ch_error err = {0};
  assert_int_equal(vt->open(config, &test_host, &buf, &err), CH_EINVAL);
  assert_null(buf);
  assert_int_equal(err.code, CH_EINVAL);
  if (!strstr(err.message, needle))
    fail_msg("open(%s): message '%s' lacks '%s'", config, err.message, needle);
}

static void test_memory_config_errors(void **state) {
  (void)state;
  expect_open_error("{\"max_recrods\": 5}", "unknown config key 'max_recrods'");
  expect_open_error("{\"max_records\": 0}", "max_records");
  expect_open_error("{\"max_records\": -4}", "max_records");
  expect_open_error("{\"max_records\": 1.5}", "max_records");
  expect_open_error("{\"max_records\": \"10\"}", "max_records");
  expect_open_error("{\"max_records\": 10", "not valid JSON");
  expect_open_error("[1, 2]", "JSON object");
  vt->close(open_buffer("{\"max_records\": 1}"));
}

static void test_memory_close_frees_unacked(void **state) {
  (void)state;
  void *buf = open_buffer("{}");
  push_text(buf, 1, "pulled, never acked");
  push_text(buf, 1, "sampled, never acked");
  push_text(buf, 1, "held");
  ch_record p, s;
  ch_error err = {0};
  uint64_t rng = 1;
  assert_int_equal(vt->pull(buf, 0, &p, &err), 1);
  assert_int_equal(vt->sample(buf, &rng, &s, &err), 1);
  /* LeakSanitizer checks that close freed all three. */
  vt->close(buf);
}

int main(void) {
  vt = test_plugin_open("buffer_memory.so");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_header),
      cmocka_unit_test(test_memory_fifo_ids_versions),
      cmocka_unit_test(test_memory_zero_length_record),
      cmocka_unit_test(test_memory_pull_timeout),
      cmocka_unit_test(test_memory_pull_wakes_on_push),
      cmocka_unit_test(test_memory_threads_move_everything_once),
      cmocka_unit_test(test_memory_ack_and_size),
      cmocka_unit_test(test_memory_clear_keeps_in_flight),
      cmocka_unit_test(test_memory_sample_held_and_uniform),
      cmocka_unit_test(test_memory_sample_survives_pull_and_clear),
      cmocka_unit_test(test_memory_max_records),
      cmocka_unit_test(test_memory_config_errors),
      cmocka_unit_test(test_memory_close_frees_unacked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
