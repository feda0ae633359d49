/* memory.c -- the in-process buffer plugin: a thread-safe FIFO of experience records. */

/*
** USAGE
**
**   buffer_memory.so, config JSON (every key optional; "{}" or NULL for the defaults):
**
**     {"max_records": 1000000}
**
**   max_records   integer >= 1, default 1000000. The most records held at once. Records that
**                 were pulled and await their ack are not held and do not count, so a slow
**                 trainer cannot wedge the producers on records it already took. A push
**                 beyond the limit fails with CH_ERANGE "buffer full (max_records N)".
**
** Behaviour:
**  - push copies the bytes; ids start at 1 and grow by one per push, in push order.
**  - pull takes the oldest held record. timeout_ms 0 does not wait, a positive value waits up
**    to that many milliseconds (CLOCK_MONOTONIC, so wall-clock jumps do not matter) and a
**    negative value waits until a record arrives.
**  - sample hands out a view of a uniformly random held record without removing it, drawn
**    with splitmix64 on the caller's rng_state (any seed works, 0 included).
**  - A record handed out by pull or sample stays valid until its ack, whatever other threads
**    pull or clear meanwhile: records are reference counted, and the holder of the last
**    reference frees it.
**  - clear drops the held records; records out for pull or sample stay valid until acked.
**  - close frees everything, records never acked included (a caller bug; it is logged).
**  - meta_set / meta_get keep small named values (the trainer's policy announcements) for the
**    life of the handle; threads of one process share them, other processes cannot see them.
*/

#include <chicane/plugin.h>
#include <chicane/plugin_util.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEM_DEFAULT_MAX_RECORDS 1000000
#define MEM_MIN_RING            64

/* One pushed record. Alive while refs > 0: the ring holds one reference while the record is
** held, and every record handed out by pull or sample holds one until its ack. */
typedef struct mem_rec {
  struct mem_rec *prev, *next; /* the list of live records, so close can free them all */
  uint64_t id;
  uint64_t policy_version;
  size_t refs;
  size_t len;
  unsigned char data[];
} mem_rec;

typedef struct mem_buffer {
  pthread_mutex_t lock;
  pthread_cond_t arrived; /* signalled by push; clock is CLOCK_MONOTONIC */
  mem_rec **ring;         /* held records, oldest at ring[head] */
  size_t cap, head, count;
  size_t max_records;
  uint64_t next_id;
  mem_rec live; /* sentinel of the live list */
  struct mem_meta *meta;
  const ch_host_api *host;
} mem_buffer;

/* A named value of meta_set; few of them, so a list will do. */
typedef struct mem_meta {
  struct mem_meta *next;
  char *key, *value;
} mem_meta;

#define MEM_META_KEY_MAX   200
#define MEM_META_VALUE_MAX (64 * 1024)

static void mem_log(const mem_buffer *b, int level, const char *message) {
  if (b->host && b->host->struct_size >= sizeof(ch_host_api) && b->host->log)
    b->host->log(level, "memory", message);
}

/* ---- configuration --------------------------------------------------------------------- */

static int mem_parse_max_records(const cJSON *item, size_t *out, ch_error *err) {
  /* The ring is an array of pointers, so the limit must fit an allocation. */
  double limit = (double)(SIZE_MAX / sizeof(mem_rec *) / 2);
  double v = cJSON_IsNumber(item) ? item->valuedouble : 0;
  if (!(v >= 1 && v <= limit) || (double)(size_t)v != v)
    return ch_error_set(err, CH_EINVAL,
                        "buffer memory: config key 'max_records' must be an integer in [1, %.0f]",
                        limit);
  *out = (size_t)v;
  return CH_OK;
}

static int mem_parse_config(const char *json, size_t *max_records, ch_error *err) {
  *max_records = MEM_DEFAULT_MAX_RECORDS;
  if (!json) return CH_OK;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root)
    return ch_error_set(err, CH_EINVAL, "buffer memory: config is not valid JSON (at byte %ld)",
                        end ? (long)(end - json) : 0L);
  int rc = CH_OK;
  if (!cJSON_IsObject(root))
    rc = ch_error_set(err, CH_EINVAL, "buffer memory: config must be a JSON object");
  for (const cJSON *it = root->child; rc == CH_OK && it; it = it->next) {
    if (strcmp(it->string, "max_records") == 0)
      rc = mem_parse_max_records(it, max_records, err);
    else
      rc = ch_error_set(err, CH_EINVAL, "buffer memory: unknown config key '%s'", it->string);
  }
  cJSON_Delete(root);
  return rc;
}

/* ---- records --------------------------------------------------------------------------- */

static void mem_unlink_free(mem_rec *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  free(r);
}

/* Drop one reference; the caller holds the lock. */
static void mem_release(mem_rec *r) {
  if (--r->refs == 0) mem_unlink_free(r);
}

static void mem_fill(ch_record *out, mem_rec *r) {
  out->data = r->data;
  out->len = r->len;
  out->policy_version = r->policy_version;
  out->id = r->id;
  out->internal = r;
}

/* Make room for one more held record, growing the ring by doubling (and unwrapping it). */
static int mem_reserve(mem_buffer *b) {
  if (b->count < b->cap) return CH_OK;
  size_t cap = b->cap ? b->cap * 2 : MEM_MIN_RING;
  mem_rec **ring = malloc(cap * sizeof *ring);
  if (!ring) return CH_ENOMEM;
  for (size_t i = 0; i < b->count; i++) ring[i] = b->ring[(b->head + i) % b->cap];
  free(b->ring);
  b->ring = ring;
  b->cap = cap;
  b->head = 0;
  return CH_OK;
}

/* splitmix64: fine statistical quality and, unlike xorshift, no bad seed. */
static uint64_t mem_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias: reject the short tail of the 64-bit range. */
static size_t mem_uniform(uint64_t *state, size_t n) {
  uint64_t bound = (uint64_t)n;
  uint64_t threshold = (0 - bound) % bound;
  uint64_t r;
  do r = mem_splitmix64(state);
  while (r < threshold);
  return (size_t)(r % bound);
}

/* ---- vtable members -------------------------------------------------------------------- */

static int mem_init_sync(mem_buffer *b, ch_error *err) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc == 0) {
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&b->arrived, &attr);
    pthread_condattr_destroy(&attr);
  }
  if (rc != 0)
    return ch_error_set(err, CH_ENOMEM, "buffer memory: condition variable: %s", strerror(rc));
  rc = pthread_mutex_init(&b->lock, NULL);
  if (rc != 0) {
    pthread_cond_destroy(&b->arrived);
    return ch_error_set(err, CH_ENOMEM, "buffer memory: mutex: %s", strerror(rc));
  }
  return CH_OK;
}

static int mem_open(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "buffer memory: open: out is NULL");
  *out = NULL;
  size_t max_records;
  int rc = mem_parse_config(config_json, &max_records, err);
  if (rc != CH_OK) return rc;
  mem_buffer *b = calloc(1, sizeof *b);
  if (!b) return ch_error_set(err, CH_ENOMEM, "buffer memory: out of memory");
  rc = mem_init_sync(b, err);
  if (rc != CH_OK) {
    free(b);
    return rc;
  }
  b->max_records = max_records;
  b->next_id = 1;
  b->live.prev = b->live.next = &b->live;
  b->host = host;
  *out = b;
  return CH_OK;
}

static void mem_close(void *buf) {
  mem_buffer *b = buf;
  if (!b) return;
  size_t leaked = 0;
  for (mem_rec *r = b->live.next, *next; r != &b->live; r = next) {
    next = r->next;
    leaked += r->refs;
    free(r);
  }
  leaked -= b->count; /* the ring's own references are not a caller's fault */
  if (leaked > 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "closed with %zu pulled or sampled records never acked", leaked);
    mem_log(b, CH_LOG_WARN, msg);
  }
  for (mem_meta *m = b->meta, *next; m; m = next) {
    next = m->next;
    free(m->key);
    free(m->value);
    free(m);
  }
  free(b->ring);
  pthread_cond_destroy(&b->arrived);
  pthread_mutex_destroy(&b->lock);
  free(b);
}

static int mem_push(void *buf, uint64_t policy_version, const void *data, size_t len,
                    ch_error *err) {
  mem_buffer *b = buf;
  if (!b) return ch_error_set(err, CH_EINVAL, "buffer memory: push: buffer is NULL");
  if (!data && len > 0) return ch_error_set(err, CH_EINVAL, "buffer memory: push: data is NULL");
  if (len > SIZE_MAX - sizeof(mem_rec))
    return ch_error_set(err, CH_ERANGE, "buffer memory: push: record of %zu bytes too large", len);
  mem_rec *r = malloc(sizeof *r + len);
  if (!r) return ch_error_set(err, CH_ENOMEM, "buffer memory: out of memory for %zu bytes", len);
  if (len > 0) memcpy(r->data, data, len);
  r->len = len;
  r->policy_version = policy_version;
  r->refs = 1;

  pthread_mutex_lock(&b->lock);
  int rc = b->count >= b->max_records ? CH_ERANGE : mem_reserve(b);
  if (rc == CH_OK) {
    r->id = b->next_id++;
    b->ring[(b->head + b->count) % b->cap] = r;
    b->count++;
    r->next = &b->live;
    r->prev = b->live.prev;
    r->prev->next = r;
    b->live.prev = r;
    pthread_cond_signal(&b->arrived);
  }
  pthread_mutex_unlock(&b->lock);

  if (rc == CH_OK) return CH_OK;
  free(r);
  if (rc == CH_ERANGE)
    return ch_error_set(err, CH_ERANGE, "buffer memory: buffer full (max_records %zu)",
                        b->max_records);
  return ch_error_set(err, CH_ENOMEM, "buffer memory: out of memory growing the queue");
}

static void mem_deadline(struct timespec *ts, int timeout_ms) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += timeout_ms / 1000;
  ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Wait, lock held, until a record is held or the time is up; returns whether one is held. */
static int mem_wait(mem_buffer *b, int timeout_ms) {
  if (timeout_ms < 0) {
    while (b->count == 0) pthread_cond_wait(&b->arrived, &b->lock);
    return 1;
  }
  if (b->count > 0 || timeout_ms == 0) return b->count > 0;
  struct timespec deadline;
  mem_deadline(&deadline, timeout_ms);
  /* Loop: wake-ups may be spurious, or another consumer may take the record first. */
  while (b->count == 0) {
    if (pthread_cond_timedwait(&b->arrived, &b->lock, &deadline) == ETIMEDOUT) break;
  }
  return b->count > 0;
}

static int mem_pull(void *buf, int timeout_ms, ch_record *out, ch_error *err) {
  mem_buffer *b = buf;
  if (!b || !out) return ch_error_set(err, CH_EINVAL, "buffer memory: pull: NULL argument");
  pthread_mutex_lock(&b->lock);
  int got = mem_wait(b, timeout_ms);
  if (got) {
    /* The ring's reference passes to the caller, who gives it back with ack. */
    mem_rec *r = b->ring[b->head];
    b->head = (b->head + 1) % b->cap;
    b->count--;
    mem_fill(out, r);
  }
  pthread_mutex_unlock(&b->lock);
  return got;
}

static void mem_ack(void *buf, ch_record *rec) {
  mem_buffer *b = buf;
  if (!b || !rec || !rec->internal) return;
  pthread_mutex_lock(&b->lock);
  mem_release(rec->internal);
  pthread_mutex_unlock(&b->lock);
  /* Poison the view so a use after ack fails loudly rather than reading freed bytes. */
  memset(rec, 0, sizeof *rec);
}

static int mem_sample(void *buf, uint64_t *rng_state, ch_record *out, ch_error *err) {
  mem_buffer *b = buf;
  if (!b || !rng_state || !out)
    return ch_error_set(err, CH_EINVAL, "buffer memory: sample: NULL argument");
  pthread_mutex_lock(&b->lock);
  int got = b->count > 0;
  if (got) {
    mem_rec *r = b->ring[(b->head + mem_uniform(rng_state, b->count)) % b->cap];
    r->refs++;
    mem_fill(out, r);
  }
  pthread_mutex_unlock(&b->lock);
  return got;
}

static int64_t mem_size(void *buf) {
  mem_buffer *b = buf;
  if (!b) return CH_EINVAL;
  pthread_mutex_lock(&b->lock);
  int64_t n = (int64_t)b->count;
  pthread_mutex_unlock(&b->lock);
  return n;
}

static int mem_clear(void *buf, ch_error *err) {
  mem_buffer *b = buf;
  if (!b) return ch_error_set(err, CH_EINVAL, "buffer memory: clear: buffer is NULL");
  pthread_mutex_lock(&b->lock);
  for (size_t i = 0; i < b->count; i++) mem_release(b->ring[(b->head + i) % b->cap]);
  b->head = 0;
  b->count = 0;
  pthread_mutex_unlock(&b->lock);
  return CH_OK;
}

/* ---- named values -------------------------------------------------------------------- */

static int mem_meta_key_ok(const char *key) {
  size_t n = key ? strlen(key) : 0;
  if (n == 0 || n > MEM_META_KEY_MAX) return 0;
  for (const char *c = key; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("._/:-", *c)))
      return 0;
  return 1;
}

static mem_meta *mem_meta_find(mem_buffer *b, const char *key) {
  for (mem_meta *m = b->meta; m; m = m->next)
    if (strcmp(m->key, key) == 0) return m;
  return NULL;
}

static int mem_meta_set(void *buf, const char *key, const char *value, ch_error *err) {
  mem_buffer *b = buf;
  if (!mem_meta_key_ok(key))
    return ch_error_set(err, CH_EINVAL, "buffer memory: invalid meta key '%.200s'",
                        key ? key : "(null)");
  if (!value || strlen(value) > MEM_META_VALUE_MAX)
    return ch_error_set(err, CH_EINVAL, "buffer memory: meta value for '%s' missing or too long",
                        key);
  char *copy = strdup(value);
  if (!copy) return ch_error_set(err, CH_ENOMEM, "buffer memory: out of memory");
  pthread_mutex_lock(&b->lock);
  mem_meta *m = mem_meta_find(b, key);
  if (!m) {
    m = calloc(1, sizeof *m);
    if (m && !(m->key = strdup(key))) {
      free(m);
      m = NULL;
    }
    if (m) {
      m->next = b->meta;
      b->meta = m;
    }
  }
  if (m) {
    free(m->value);
    m->value = copy;
  }
  pthread_mutex_unlock(&b->lock);
  if (!m) free(copy);
  return m ? CH_OK : ch_error_set(err, CH_ENOMEM, "buffer memory: out of memory");
}

static int mem_meta_get(void *buf, const char *key, char *out, size_t cap, ch_error *err) {
  mem_buffer *b = buf;
  if (!mem_meta_key_ok(key))
    return ch_error_set(err, CH_EINVAL, "buffer memory: invalid meta key '%.200s'",
                        key ? key : "(null)");
  pthread_mutex_lock(&b->lock);
  mem_meta *m = mem_meta_find(b, key);
  size_t n = m ? strlen(m->value) : 0;
  int rc = !m ? CH_ENOTFOUND : n + 1 > cap ? CH_ERANGE : (int)n;
  if (rc >= 0) memcpy(out, m->value, n + 1);
  pthread_mutex_unlock(&b->lock);
  if (rc == CH_ENOTFOUND) return ch_error_set(err, rc, "buffer memory: no meta key '%s'", key);
  if (rc == CH_ERANGE)
    return ch_error_set(err, rc, "buffer memory: meta '%s' needs %zu bytes, got %zu", key, n + 1,
                        cap);
  return rc;
}

static const ch_buffer_vtable mem_vtable = {
    {CH_PLUGIN_ABI_VERSION, sizeof(ch_buffer_vtable), CH_PLUGIN_BUFFER, 0, "memory", "1.0.0",
     "in-process FIFO and replay buffer (thread-safe, reference-counted records)"},
    mem_open,
    mem_close,
    mem_push,
    mem_pull,
    mem_ack,
    mem_sample,
    mem_size,
    mem_clear,
    mem_meta_set,
    mem_meta_get,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &mem_vtable.header;
}
