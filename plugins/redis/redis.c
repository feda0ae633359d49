/* redis.c -- the Redis buffer plugin: experience records in a Redis Stream, a consumer group. */

/*
** USAGE
**
**   buffer_redis.so, config JSON ("url" is required, every other key optional):
**
**     {"url": "redis://:secret@10.0.0.5:6379/0", "stream": "chicane:segments",
**      "group": "trainers", "replay_capacity": 100000}
**
**   url                 string, required. redis://[[user]:password@]host[:port][/db], port 6379
**                       and db 0 by default; percent-encode '@', ':' and '/' in a password. AUTH
**                       (and SELECT when db is not 0) run on every (re)connect. Needs Redis 6.2
**                       or later (XAUTOCLAIM) and a single server or primary (not Cluster). A
**                       malformed url is CH_EINVAL naming it (password masked) and the fault.
**   stream              string, default "chicane:segments". The stream key. The plugin also
**                       keeps "<stream>:ids" (the id counter), "<stream>:replay" (the replay
**                       ring) and "<stream>:meta" (a hash of the meta_set values).
**   group               string, default "trainers". The consumer group that pulls; open creates
**                       it (reading from the start of the stream) when it is missing.
**   consumer            string, default "<hostname>-<pid>-<8 random hex digits>", new for each
**                       handle. Two live handles must not share a name. A handle opened under the
**                       name of one that died gets the dead one's unacked records back at once.
**   max_records         integer >= 1, default 1000000. The most records held (pushed and not
**                       yet pulled); a push beyond it fails with CH_ERANGE
**                       "buffer full (max_records N)".
**   claim_idle_ms       integer >= 1, default 30000. A record pulled and not acked for this long
**                       (its puller died, or is that slow) is delivered again to a pulling handle.
**   replay_capacity     integer 0..1000000000, default 0. When > 0, every push also stores the
**                       record in a ring of that many slots and sample draws uniformly from the
**                       last replay_capacity records pushed (pulled or not). 0: sample fails
**                       with CH_EUNSUPPORTED. Every handle of one stream must use the same value.
**   connect_timeout_ms  integer >= 1, default 2000. Per connection attempt.
**   command_timeout_ms  integer >= 1, default 10000. A reply slower than this counts as a lost
**                       connection.
**   retries             integer 0..30, default 5. A lost connection, a timeout or a server still
**                       loading its data is tried again this many times, with backoff from 100 ms
**                       doubling, each retry logged at WARN with the url and the error; then the
**                       call fails with CH_ECONN "redis at host:port: <reason>". A refused
**                       AUTH, SELECT or missing password is CH_EINVAL at once.
**   pull_batch          integer 1..1000, default 128. The most entries one read takes for the
**                       following pulls (see Behaviour), capped to about 256 kB of records:
**                       the server sends a big reply in 64 kB steps between other clients'
**                       commands, so large records (camera segments) go one per read.
**   ack_batch           integer 1..1000, default 128. Acks gathered before they are sent.
**
** Records in the stream: fields v (policy version, decimal), i (the record id, decimal) and d
** (the bytes). push runs one script that checks the limit, takes the id from "<stream>:ids"
** (INCR), XADDs the entry and fills the replay slot, so ids start at 1 and grow by one per push
** across all handles of a stream, and go on after clear. Other producers must write the same
** fields; any entry without well-formed v, i and d is acked and deleted, counted, and logged at
** WARN with its stream id, never returned.
**
** Behaviour:
**  - pull looks, in order, at this consumer's own pending entries (left by a dead handle of the
**    same name, or lost in transit when a connection broke), at entries idle past claim_idle_ms
**    in any consumer (XAUTOCLAIM, looked at every claim_idle_ms/2, clamped to 10 ms..1 s), and
**    at new entries (XREADGROUP ... BLOCK). It blocks in slices of at most that interval, so a
**    long wait also picks up the records of a consumer that dies meanwhile. Blocking reads use
**    a second connection: pushes and acks from other threads never wait behind them.
**  - timeout_ms < 0 waits until a record arrives (or the server is unreachable: CH_ECONN).
**  - Reads ahead: a read takes up to pull_batch entries, which the following pulls hand out one
**    by one without a round trip. They are pending for this consumer from the read on, so a
**    crash loses none: a handle of the same name gets them back at once, others after
**    claim_idle_ms. Each read asks for twice as many as the last while reads come back full,
**    and for one again once the stream is drained, so consumers share a trickle record by record.
**    Entries read ahead longer than claim_idle_ms/2 (clamped to 10 ms..1 s) ago are read again
**    from the pending list first (which restarts their idle time).
**  - A record from pull or sample is a private copy, valid until its ack whatever happens to the
**    stream meanwhile. Acks of pulled records are gathered and sent as one XACK+XDEL script when
**    ack_batch gather, before every read of a pull, when the oldest waited claim_idle_ms/2
**    (checked by pull), and by size, clear and close. A handle never hands out an entry whose ack
**    it still holds; a process that dies holding acks gets those records delivered again. A push
**    retried after a lost connection may store the record twice (delivery is at least once).
**  - size is XLEN minus the group's pending count plus this handle's entries read ahead: records
**    pushed and not yet pulled. Records pulled and not acked, those of dead consumers awaiting a
**    claim included, are excluded, and so are (for other handles) up to pull_batch entries per
**    consumer read ahead. max_records counts the same way.
**  - After a push found the buffer full, the next push of the handle first asks whether there
**    is room (without sending its record) and fails at once while there is none.
**  - clear deletes the stream and the replay ring and recreates the group in one script.
**  - meta_set / meta_get are HSET / HGET on "<stream>:meta": every process that opens the
**    stream sees them, and they survive clear and server restarts (with persistence on).
**  - close frees the records never acked (logged: pulled ones return to the group after
**    claim_idle_ms) and removes the consumer from the group when it has nothing pending.
*/

#include "redis.h"

#include <chicane/plugin.h>
#include <chicane/plugin_util.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RDS_SID_MAX        48   /* a stream id "ms-seq" of two 64-bit numbers */
#define RDS_NAME_MAX       1024 /* stream, group and consumer names */
#define RDS_CLAIM_SCAN     8    /* XAUTOCLAIM steps per pull before the rest of the scan waits */
#define RDS_AGAIN          2    /* a pull step skipped an entry: look again at once */
#define RDS_META_KEY_MAX   200
#define RDS_META_VALUE_MAX (64 * 1024)
#define RDS_BATCH_MAX      1000         /* pull_batch and ack_batch; Lua unpacks the acks */
#define RDS_PULL_BYTES     (256 * 1024) /* a read asks for about this much (see USAGE) */

/* Limit, id, entry and replay slot in one step, so concurrent pushers never overshoot. ARGV[6]:
** the entries this handle read ahead, pending yet not pulled. */
static const char RDS_PUSH_LUA[] =
    "local held = redis.call('XLEN', KEYS[1])\n"
    "local limit = tonumber(ARGV[4])\n"
    "if held >= limit then\n"
    "  local p = redis.pcall('XPENDING', KEYS[1], ARGV[3])\n"
    "  if type(p) == 'table' and type(p[1]) == 'number' then held = held - p[1] + ARGV[6] end\n"
    "  if held >= limit then return redis.error_reply('CHICANE_FULL buffer full') end\n"
    "end\n"
    "local id = string.format('%d', redis.call('INCR', KEYS[2]))\n"
    "redis.call('XADD', KEYS[1], '*', 'v', ARGV[1], 'i', id, 'd', ARGV[2])\n"
    "local cap = tonumber(ARGV[5])\n"
    "if cap > 0 then\n"
    "  local slot = string.format('%d', (redis.call('HINCRBY', KEYS[3], 'n', 1) - 1) % cap)\n"
    "  redis.call('HSET', KEYS[3], 'v' .. slot, ARGV[1], 'i' .. slot, id, 'd' .. slot, ARGV[2])\n"
    "end\n"
    "return tonumber(id)\n";

/* 1 while the buffer is full: a producer waiting for room asks this, not sending its record. */
static const char RDS_FULL_LUA[] =
    "local held = redis.call('XLEN', KEYS[1])\n"
    "local limit = tonumber(ARGV[2])\n"
    "if held < limit then return 0 end\n"
    "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])\n"
    "if type(p) == 'table' and type(p[1]) == 'number' then held = held - p[1] + ARGV[3] end\n"
    "if held >= limit then return 1 end\n"
    "return 0\n";

/* ARGV[1] is a uniform number in [0, 1) drawn by the caller's rng. */
static const char RDS_SAMPLE_LUA[] =
    "local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')\n"
    "if n == 0 then return false end\n"
    "local held = math.min(n, tonumber(ARGV[2]))\n"
    "local slot = math.floor(tonumber(ARGV[1]) * held)\n"
    "if slot >= held then slot = held - 1 end\n"
    "slot = string.format('%d', slot)\n"
    "return redis.call('HMGET', KEYS[1], 'v' .. slot, 'i' .. slot, 'd' .. slot)\n";

static const char RDS_SIZE_LUA[] =
    "local n = redis.call('XLEN', KEYS[1])\n"
    "if n == 0 then return 0 end\n"
    "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])\n"
    "if type(p) == 'table' and type(p[1]) == 'number' then n = n - p[1] + ARGV[2] end\n"
    "if n < 0 then n = 0 end\n"
    "return n\n";

/* XACK and XDEL together, so an entry is never acked yet left behind in the stream. ARGV: the
** group, then the ids. */
static const char RDS_ACK_LUA[] = "redis.pcall('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))\n"
                                  "return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))\n";

static const char RDS_CLEAR_LUA[] =
    "redis.call('DEL', KEYS[1], KEYS[2])\n"
    "redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')\n"
    "return 1\n";

/* Deleting a consumer drops its pending entries, so only one with none goes. */
static const char RDS_RETIRE_LUA[] =
    "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])\n"
    "if type(p) ~= 'table' or p.err or #p > 0 then return 0 end\n"
    "return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n";

/* A record handed out by pull or sample. */
typedef struct rds_rec {
  struct rds_rec *prev, *next;
  redisReply *reply;     /* the reply the bytes point into */
  void *copy;            /* the bytes, when the reply's were not aligned enough */
  char sid[RDS_SID_MAX]; /* stream id of a pulled record; "" for a sampled one */
} rds_rec;

typedef struct rds_buffer {
  rds_server srv;
  char *stream, *group, *consumer, *ids_key, *replay_key, *meta_key;
  char max_records[24], replay_capacity[24], claim_idle[24]; /* as script arguments */
  int64_t replay_cap;
  char push_sha[48];   /* SHA1 of RDS_PUSH_LUA in the server's script cache; "" to send it whole */
  atomic_int was_full; /* the last push found the buffer full */
  int claim_every_ms;
  int sync_ready;
  pthread_mutex_t cmd_lock; /* guards cmd: push, ack, sample, size, clear */
  rds_conn cmd;
  pthread_mutex_t pull_lock; /* guards blk and the pull state below */
  rds_conn blk;
  unsigned blk_generation;
  int recovering; /* own pending entries may be waiting */
  char recover_from[RDS_SID_MAX];
  char claim_from[RDS_SID_MAX];
  double next_claim_ms;
  uint64_t skipped;
  /* Entries read ahead (pending for this consumer already, so a crash loses none), handed out
  ** one per pull: one read serves up to pull_batch pulls. */
  int pull_batch, pull_count; /* the most per read; how many the next read asks for */
  redisReply *q_reply;        /* the reply holding them */
  redisReply *q_entries;      /* its entries array; handed-out elements are NULLed */
  size_t q_next;
  int q_check;                /* they came from a pending list: some may be out with the caller */
  double q_time;              /* when they were read */
  unsigned q_epoch;           /* clear_epoch when they were read */
  size_t last_len;            /* bytes of the last record handed out, to size the next read */
  atomic_int queued;          /* entries read ahead and not handed out, for size and push */
  atomic_uint clear_epoch;    /* bumped by clear: entries read ahead before it are gone */
  pthread_mutex_t flush_lock; /* one ack flush at a time */
  pthread_mutex_t rec_lock;   /* guards live and the acks below */
  rds_rec live;               /* sentinel of the records handed out */
  /* Stream ids acked by the caller and not yet XACKed: sent as one command when ack_batch
  ** gather, before every read of the pull, and on size, clear and close. */
  int ack_batch;
  char (*acks)[RDS_SID_MAX];
  size_t acks_n, acks_cap;
  double acks_since; /* when the oldest of them was acked */
} rds_buffer;

typedef struct rds_config {
  char *url, *stream, *group, *consumer;
  int64_t max_records, claim_idle_ms, replay_capacity, connect_timeout_ms, command_timeout_ms,
      retries, pull_batch, ack_batch;
} rds_config;

static void rds_flush_acks(rds_buffer *b);
static void rds_queue_drop(rds_buffer *b);

static double rds_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int rds_oom(ch_error *err) {
  return ch_error_set(err, CH_ENOMEM, "buffer redis: out of memory");
}

/* ---- configuration --------------------------------------------------------------------- */

static int rds_cfg_string(const cJSON *it, char **out, ch_error *err) {
  if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > RDS_NAME_MAX)
    return ch_error_set(err, CH_EINVAL,
                        "buffer redis: config key '%s' must be a non-empty string of at most "
                        "%d bytes",
                        it->string, RDS_NAME_MAX);
  free(*out);
  return (*out = strdup(it->valuestring)) ? CH_OK : rds_oom(err);
}

static int rds_cfg_int(const cJSON *it, double lo, double hi, int64_t *out, ch_error *err) {
  double v = cJSON_IsNumber(it) ? it->valuedouble : lo - 1;
  if (!(v >= lo && v <= hi) || (double)(int64_t)v != v)
    return ch_error_set(err, CH_EINVAL,
                        "buffer redis: config key '%s' must be an integer in [%.0f, %.0f]",
                        it->string, lo, hi);
  *out = (int64_t)v;
  return CH_OK;
}

static int rds_cfg_key(const cJSON *it, rds_config *c, ch_error *err) {
  const char *k = it->string;
  if (strcmp(k, "url") == 0) return rds_cfg_string(it, &c->url, err);
  if (strcmp(k, "stream") == 0) return rds_cfg_string(it, &c->stream, err);
  if (strcmp(k, "group") == 0) return rds_cfg_string(it, &c->group, err);
  if (strcmp(k, "consumer") == 0) return rds_cfg_string(it, &c->consumer, err);
  if (strcmp(k, "max_records") == 0) return rds_cfg_int(it, 1, 1e15, &c->max_records, err);
  if (strcmp(k, "claim_idle_ms") == 0) return rds_cfg_int(it, 1, 1e12, &c->claim_idle_ms, err);
  if (strcmp(k, "replay_capacity") == 0) return rds_cfg_int(it, 0, 1e9, &c->replay_capacity, err);
  if (strcmp(k, "connect_timeout_ms") == 0)
    return rds_cfg_int(it, 1, 3600000, &c->connect_timeout_ms, err);
  if (strcmp(k, "command_timeout_ms") == 0)
    return rds_cfg_int(it, 1, 3600000, &c->command_timeout_ms, err);
  if (strcmp(k, "retries") == 0) return rds_cfg_int(it, 0, 30, &c->retries, err);
  if (strcmp(k, "pull_batch") == 0) return rds_cfg_int(it, 1, RDS_BATCH_MAX, &c->pull_batch, err);
  if (strcmp(k, "ack_batch") == 0) return rds_cfg_int(it, 1, RDS_BATCH_MAX, &c->ack_batch, err);
  return ch_error_set(err, CH_EINVAL, "buffer redis: unknown config key '%s'", k);
}

static void rds_config_free(rds_config *c) {
  free(c->url);
  free(c->stream);
  free(c->group);
  free(c->consumer);
}

static int rds_parse_config(const char *json, rds_config *c, ch_error *err) {
  *c = (rds_config){NULL, NULL, NULL, NULL, 1000000, 30000, 0, 2000, 10000, 5, 128, 128};
  if (!json) return ch_error_set(err, CH_EINVAL, "buffer redis: config is NULL (needs 'url')");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root)
    return ch_error_set(err, CH_EINVAL, "buffer redis: config is not valid JSON (at byte %ld)",
                        end ? (long)(end - json) : 0L);
  int rc = cJSON_IsObject(root)
               ? CH_OK
               : ch_error_set(err, CH_EINVAL, "buffer redis: config must be a JSON object");
  for (const cJSON *it = root->child; rc == CH_OK && it; it = it->next)
    rc = rds_cfg_key(it, c, err);
  cJSON_Delete(root);
  if (rc == CH_OK && !c->url)
    rc = ch_error_set(err, CH_EINVAL, "buffer redis: config key 'url' is required");
  if (rc != CH_OK) rds_config_free(c);
  return rc;
}

/* "<hostname>-<pid>-<random>": unique per handle, so handles never share pending entries. */
static char *rds_default_consumer(const void *salt) {
  char host[256] = "host";
  if (gethostname(host, sizeof host) != 0) strcpy(host, "host");
  host[sizeof host - 1] = '\0';
  uint32_t r = 0;
  if (getentropy(&r, sizeof r) != 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)salt;
  }
  char name[320];
  snprintf(name, sizeof name, "%s-%ld-%08" PRIx32, host, (long)getpid(), r);
  return strdup(name);
}

static char *rds_concat(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = malloc(na + nb + 1);
  if (!s) return NULL;
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  return s;
}

/* Move the parsed config into the handle (taking its strings). */
static int rds_apply_config(rds_buffer *b, rds_config *c, ch_error *err) {
  int rc = rds_url_parse(c->url, &b->srv.url, err);
  if (rc != CH_OK) return rc;
  b->srv.connect_timeout_ms = (int)c->connect_timeout_ms;
  b->srv.retries = (int)c->retries;
  b->stream = c->stream ? c->stream : strdup("chicane:segments");
  b->group = c->group ? c->group : strdup("trainers");
  b->consumer = c->consumer ? c->consumer : rds_default_consumer(b);
  c->stream = c->group = c->consumer = NULL;
  if (!b->stream || !b->group || !b->consumer) return rds_oom(err);
  if (!(b->ids_key = rds_concat(b->stream, ":ids"))) return rds_oom(err);
  if (!(b->replay_key = rds_concat(b->stream, ":replay"))) return rds_oom(err);
  if (!(b->meta_key = rds_concat(b->stream, ":meta"))) return rds_oom(err);
  snprintf(b->max_records, sizeof b->max_records, "%" PRId64, c->max_records);
  snprintf(b->replay_capacity, sizeof b->replay_capacity, "%" PRId64, c->replay_capacity);
  snprintf(b->claim_idle, sizeof b->claim_idle, "%" PRId64, c->claim_idle_ms);
  b->replay_cap = c->replay_capacity;
  int64_t every = c->claim_idle_ms / 2;
  b->claim_every_ms = every < 10 ? 10 : every > 1000 ? 1000 : (int)every;
  b->pull_batch = (int)c->pull_batch;
  b->ack_batch = (int)c->ack_batch;
  b->pull_count = 1;
  b->cmd.io_timeout_ms = (int)c->command_timeout_ms;
  /* A blocking read legitimately waits a whole slice before its reply. */
  b->blk.io_timeout_ms = (int)c->command_timeout_ms + b->claim_every_ms;
  return CH_OK;
}

/* ---- handle lifetime ------------------------------------------------------------------- */

static int rds_init_sync(rds_buffer *b, ch_error *err) {
  if (pthread_mutex_init(&b->cmd_lock, NULL) != 0) goto fail0;
  if (pthread_mutex_init(&b->pull_lock, NULL) != 0) goto fail1;
  if (pthread_mutex_init(&b->rec_lock, NULL) != 0) goto fail2;
  if (pthread_mutex_init(&b->flush_lock, NULL) != 0) goto fail3;
  b->sync_ready = 1;
  return CH_OK;
fail3:
  pthread_mutex_destroy(&b->rec_lock);
fail2:
  pthread_mutex_destroy(&b->pull_lock);
fail1:
  pthread_mutex_destroy(&b->cmd_lock);
fail0:
  return ch_error_set(err, CH_ENOMEM, "buffer redis: cannot create a mutex");
}

static void rds_rec_free(rds_rec *r) {
  freeReplyObject(r->reply);
  free(r->copy);
  free(r);
}

static void rds_free_handle(rds_buffer *b) {
  rds_conn_close(&b->cmd);
  rds_conn_close(&b->blk);
  if (b->sync_ready) {
    pthread_mutex_destroy(&b->cmd_lock);
    pthread_mutex_destroy(&b->pull_lock);
    pthread_mutex_destroy(&b->rec_lock);
    pthread_mutex_destroy(&b->flush_lock);
  }
  freeReplyObject(b->q_reply);
  free(b->acks);
  rds_url_free(&b->srv.url);
  free(b->stream);
  free(b->group);
  free(b->consumer);
  free(b->ids_key);
  free(b->replay_key);
  free(b->meta_key);
  free(b);
}

static size_t rds_lens(const char **argv, size_t *lens, int argc) {
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  return (size_t)argc;
}

/* One command on the command connection, under its lock. */
static int rds_cmd_run(rds_buffer *b, int argc, const char **argv, const size_t *lens,
                       redisReply **reply, int retries, ch_error *err) {
  rds_cmd cmd = {argc, argv, lens};
  pthread_mutex_lock(&b->cmd_lock);
  int rc = rds_run(&b->srv, &b->cmd, &cmd, 1, reply, retries, err);
  pthread_mutex_unlock(&b->cmd_lock);
  return rc;
}

/* Turn an unexpected reply (an error reply, or one of the wrong shape) into CH_EIO. */
static int rds_bad_reply(const rds_buffer *b, const char *what, const redisReply *r,
                         ch_error *err) {
  const char *why = r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
  return ch_error_set(err, CH_EIO, "buffer redis: %s on stream '%s' at redis %s: %s", what,
                      b->stream, b->srv.url.where, why);
}

static int rds_is_error(const redisReply *r, const char *needle) {
  return r && r->type == REDIS_REPLY_ERROR && r->str && strstr(r->str, needle) != NULL;
}

/* XGROUP CREATE ... MKSTREAM, from the start of the stream; an existing group is fine. */
static int rds_create_group(rds_buffer *b, rds_conn *c, ch_error *err) {
  const char *argv[] = {"XGROUP", "CREATE", b->stream, b->group, "0", "MKSTREAM"};
  size_t lens[6];
  rds_lens(argv, lens, 6);
  rds_cmd cmd = {6, argv, lens};
  redisReply *r;
  int rc = rds_run(&b->srv, c, &cmd, 1, &r, b->srv.retries, err);
  if (rc != CH_OK) return rc;
  if (r->type == REDIS_REPLY_ERROR && !rds_is_error(r, "BUSYGROUP"))
    rc = ch_error_set(err, rds_is_error(r, "WRONGTYPE") ? CH_EINVAL : CH_EIO,
                      "buffer redis: create group '%s' on stream '%s' at redis %s: %s", b->group,
                      b->stream, b->srv.url.where, r->str);
  freeReplyObject(r);
  return rc;
}

/* Cache the push script in the server, so a push sends its SHA1 (EVALSHA) and not its text,
** which the server would hash again every time. Optional: without it pushes send the text. */
static void rds_load_push_script(rds_buffer *b) {
  const char *argv[] = {"SCRIPT", "LOAD", RDS_PUSH_LUA};
  size_t lens[3];
  rds_lens(argv, lens, 3);
  redisReply *r = NULL;
  if (rds_cmd_run(b, 3, argv, lens, &r, 0, NULL) != CH_OK) return;
  if (r->type == REDIS_REPLY_STRING && r->len < sizeof b->push_sha)
    memcpy(b->push_sha, r->str, r->len + 1);
  freeReplyObject(r);
}

static int rds_open(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "buffer redis: open: out is NULL");
  *out = NULL;
  rds_config cfg;
  int rc = rds_parse_config(config_json, &cfg, err);
  if (rc != CH_OK) return rc;
  rds_buffer *b = calloc(1, sizeof *b);
  if (!b) {
    rds_config_free(&cfg);
    return rds_oom(err);
  }
  b->srv.host = host;
  b->live.prev = b->live.next = &b->live;
  b->recovering = 1;
  strcpy(b->recover_from, "0-0");
  strcpy(b->claim_from, "0-0");
  rc = rds_apply_config(b, &cfg, err);
  rds_config_free(&cfg);
  if (rc == CH_OK) rc = rds_init_sync(b, err);
  if (rc == CH_OK) rc = rds_create_group(b, &b->cmd, err);
  if (rc == CH_OK) rds_load_push_script(b);
  if (rc != CH_OK) {
    rds_free_handle(b);
    return rc;
  }
  *out = b;
  return CH_OK;
}

static void rds_close(void *buf) {
  rds_buffer *b = buf;
  if (!b) return;
  rds_flush_acks(b);
  rds_queue_drop(b); /* pending for this consumer: a successor of the same name gets them */
  size_t pulled = 0, sampled = 0;
  for (rds_rec *r = b->live.next, *next; r != &b->live; r = next) {
    next = r->next;
    if (r->sid[0])
      pulled++;
    else
      sampled++;
    rds_rec_free(r);
  }
  if (pulled || sampled)
    rds_log(&b->srv, CH_LOG_WARN,
            "stream '%s': closed with %zu pulled and %zu sampled records never acked; the "
            "pulled ones return to group '%s' after claim_idle_ms",
            b->stream, pulled, sampled, b->group);
  if (b->cmd.ctx) {
    /* Best effort and without retries: close must not stall on a server that went away. */
    const char *argv[] = {"EVAL", RDS_RETIRE_LUA, "1", b->stream, b->group, b->consumer};
    size_t lens[6];
    rds_lens(argv, lens, 6);
    redisReply *r = NULL;
    if (rds_cmd_run(b, 6, argv, lens, &r, 0, NULL) == CH_OK) freeReplyObject(r);
  }
  rds_free_handle(b);
}

/* Entries this handle read ahead, as a script argument: they are pending, yet not pulled. */
static void rds_queued_arg(rds_buffer *b, char *out, size_t cap) {
  int n = atomic_load(&b->queued);
  snprintf(out, cap, "%d", n > 0 ? n : 0);
}

/* ---- push ------------------------------------------------------------------------------ */

static int rds_full_error(const rds_buffer *b, ch_error *err) {
  return ch_error_set(err, CH_ERANGE, "buffer redis: buffer full (max_records %s) in stream '%s'",
                      b->max_records, b->stream);
}

/* After a push found the buffer full: 1 while it still is, 0, or a ch_status. Producers retry
** a full buffer in a tight loop, and a record sent only to be refused (a camera segment is
** ~400 kB) costs the server more than the consumer's work. */
static int rds_still_full(rds_buffer *b, ch_error *err) {
  char queued[24];
  rds_queued_arg(b, queued, sizeof queued);
  const char *argv[] = {"EVAL", RDS_FULL_LUA, "1", b->stream, b->group, b->max_records, queued};
  size_t lens[7];
  rds_lens(argv, lens, 7);
  redisReply *r;
  int rc = rds_cmd_run(b, 7, argv, lens, &r, b->srv.retries, err);
  if (rc != CH_OK) return rc;
  if (r->type == REDIS_REPLY_INTEGER)
    rc = r->integer != 0;
  else
    rc = rds_bad_reply(b, "push", r, err);
  freeReplyObject(r);
  return rc;
}

static int rds_push(void *buf, uint64_t policy_version, const void *data, size_t len,
                    ch_error *err) {
  rds_buffer *b = buf;
  if (!b) return ch_error_set(err, CH_EINVAL, "buffer redis: push: buffer is NULL");
  if (!data && len > 0) return ch_error_set(err, CH_EINVAL, "buffer redis: push: data is NULL");
  if (atomic_load(&b->was_full)) {
    int full = rds_still_full(b, err);
    if (full < 0) return full;
    if (full) return rds_full_error(b, err);
  }
  char version[24], queued[24];
  snprintf(version, sizeof version, "%" PRIu64, policy_version);
  rds_queued_arg(b, queued, sizeof queued);
  int by_sha = b->push_sha[0] != '\0';
  const char *argv[] = {by_sha ? "EVALSHA" : "EVAL",
                        by_sha ? b->push_sha : RDS_PUSH_LUA,
                        "3",
                        b->stream,
                        b->ids_key,
                        b->replay_key,
                        version,
                        data ? (const char *)data : "",
                        b->group,
                        b->max_records,
                        b->replay_capacity,
                        queued};
  size_t lens[12];
  rds_lens(argv, lens, 12);
  lens[7] = len;
  redisReply *r;
  int rc = rds_cmd_run(b, 12, argv, lens, &r, b->srv.retries, err);
  if (rc == CH_OK && by_sha && rds_is_error(r, "NOSCRIPT")) {
    /* The server lost its script cache (a restart, SCRIPT FLUSH): EVAL caches it again. */
    freeReplyObject(r);
    argv[0] = "EVAL";
    argv[1] = RDS_PUSH_LUA;
    lens[0] = 4;
    lens[1] = strlen(RDS_PUSH_LUA);
    rc = rds_cmd_run(b, 12, argv, lens, &r, b->srv.retries, err);
  }
  if (rc != CH_OK) return rc;
  atomic_store(&b->was_full, rds_is_error(r, "CHICANE_FULL"));
  if (rds_is_error(r, "CHICANE_FULL"))
    rc = rds_full_error(b, err);
  else if (r->type != REDIS_REPLY_INTEGER)
    rc = rds_bad_reply(b, "push", r, err);
  freeReplyObject(r);
  return rc;
}

/* ---- records --------------------------------------------------------------------------- */

typedef struct rds_fields {
  const redisReply *v, *i, *d;
} rds_fields;

/* A decimal uint64 with nothing else in it. */
static int rds_u64(const redisReply *r, uint64_t *out) {
  if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20) return 0;
  uint64_t v = 0;
  for (size_t k = 0; k < r->len; k++) {
    unsigned digit = (unsigned)(r->str[k] - '0');
    if (digit > 9 || v > (UINT64_MAX - digit) / 10) return 0;
    v = v * 10 + digit;
  }
  *out = v;
  return 1;
}

/* Why fields (a flat [name, value, ...] array) are not a record of ours, or NULL. */
static const char *rds_fields_problem(const redisReply *f, rds_fields *out) {
  *out = (rds_fields){NULL, NULL, NULL};
  if (!f || f->type != REDIS_REPLY_ARRAY) return "the entry was deleted";
  if (f->elements % 2) return "an odd number of field items";
  for (size_t k = 0; k + 1 < f->elements; k += 2) {
    const redisReply *name = f->element[k], *value = f->element[k + 1];
    if (name->type != REDIS_REPLY_STRING || name->len != 1 || value->type != REDIS_REPLY_STRING)
      continue;
    if (name->str[0] == 'v' && !out->v) out->v = value;
    if (name->str[0] == 'i' && !out->i) out->i = value;
    if (name->str[0] == 'd' && !out->d) out->d = value;
  }
  if (!out->v) return "no field 'v'";
  if (!out->i) return "no field 'i'";
  if (!out->d) return "no field 'd'";
  uint64_t n;
  if (!rds_u64(out->v, &n)) return "field 'v' is not a decimal policy version";
  if (!rds_u64(out->i, &n) || n == 0) return "field 'i' is not a decimal id";
  return NULL;
}

/* Hand out a record whose bytes live in reply (which the record now owns). */
static int rds_hand_out(rds_buffer *b, redisReply *reply, const rds_fields *f, const char *sid,
                        ch_record *out, ch_error *err) {
  rds_rec *r = calloc(1, sizeof *r);
  if (!r) {
    freeReplyObject(reply);
    return rds_oom(err);
  }
  r->reply = reply;
  const void *data = f->d->str;
  /* Decoders read the bytes in place as 4-byte words; hiredis mallocs each string, but do not
  ** depend on it. */
  if (((uintptr_t)data & 7u) != 0) {
    if (!(r->copy = malloc(f->d->len + 1))) {
      rds_rec_free(r);
      return rds_oom(err);
    }
    data = memcpy(r->copy, data, f->d->len);
  }
  snprintf(r->sid, sizeof r->sid, "%s", sid ? sid : "");
  out->data = data;
  out->len = f->d->len;
  rds_u64(f->v, &out->policy_version);
  rds_u64(f->i, &out->id);
  out->internal = r;
  pthread_mutex_lock(&b->rec_lock);
  r->next = &b->live;
  r->prev = b->live.prev;
  r->prev->next = r;
  b->live.prev = r;
  pthread_mutex_unlock(&b->rec_lock);
  return 1;
}

static void rds_unlink(rds_buffer *b, rds_rec *r) {
  pthread_mutex_lock(&b->rec_lock);
  r->prev->next = r->next;
  r->next->prev = r->prev;
  pthread_mutex_unlock(&b->rec_lock);
}

/* Whether the entry sid is out with the caller right now or acked and not yet XACKed (so must
** not be handed out again). */
static int rds_in_flight(rds_buffer *b, const char *sid) {
  pthread_mutex_lock(&b->rec_lock);
  const rds_rec *r = b->live.next;
  while (r != &b->live && strcmp(r->sid, sid) != 0) r = r->next;
  int found = r != &b->live;
  for (size_t k = 0; !found && k < b->acks_n; k++) found = strcmp(b->acks[k], sid) == 0;
  pthread_mutex_unlock(&b->rec_lock);
  return found;
}

/* ---- acks ------------------------------------------------------------------------------ */

/* XACK and XDEL of ids[0..n) in one script; a failure is logged (the entries come back). */
static void rds_send_acks(rds_buffer *b, const char *const *ids, size_t n) {
  const char **argv = malloc((n + 5) * sizeof *argv);
  size_t *lens = malloc((n + 5) * sizeof *lens);
  ch_error err = {0};
  int rc = argv && lens ? CH_OK : rds_oom(&err);
  redisReply *reply = NULL;
  if (rc == CH_OK) {
    argv[0] = "EVAL", argv[1] = RDS_ACK_LUA, argv[2] = "1", argv[3] = b->stream;
    argv[4] = b->group;
    memcpy(argv + 5, ids, n * sizeof *argv);
    rds_lens(argv, lens, (int)n + 5);
    rc = rds_cmd_run(b, (int)n + 5, argv, lens, &reply, b->srv.retries, &err);
  }
  if (rc == CH_OK && reply->type == REDIS_REPLY_ERROR) rc = rds_bad_reply(b, "ack", reply, &err);
  if (rc != CH_OK)
    rds_log(&b->srv, CH_LOG_ERROR,
            "ack of %zu entries from %s failed (%s); they will be delivered again after "
            "claim_idle_ms",
            n, ids[0], err.message);
  freeReplyObject(reply);
  free(argv);
  free(lens);
}

/* Note sid as acked (rec_lock held); 0 when out of memory. */
static int rds_acks_add(rds_buffer *b, const char *sid) {
  if (b->acks_n == b->acks_cap) {
    size_t cap = b->acks_cap ? 2 * b->acks_cap : 64;
    void *grown = realloc(b->acks, cap * sizeof *b->acks);
    if (!grown) return 0;
    b->acks = grown;
    b->acks_cap = cap;
  }
  if (b->acks_n == 0) b->acks_since = rds_now_ms();
  snprintf(b->acks[b->acks_n++], RDS_SID_MAX, "%s", sid);
  return 1;
}

/* Send every ack gathered so far. The ids stay in the list (so a pull still sees them as out)
** until their XACK is done. */
static void rds_flush_acks(rds_buffer *b) {
  pthread_mutex_lock(&b->flush_lock);
  for (;;) {
    pthread_mutex_lock(&b->rec_lock);
    size_t n = b->acks_n < RDS_BATCH_MAX ? b->acks_n : RDS_BATCH_MAX;
    char(*ids)[RDS_SID_MAX] = n ? malloc(n * sizeof *ids) : NULL;
    const char **ptrs = n ? malloc(n * sizeof *ptrs) : NULL;
    if (ids) memcpy(ids, b->acks, n * sizeof *ids);
    pthread_mutex_unlock(&b->rec_lock);
    if (!ids || !ptrs) { /* nothing to send, or no memory now: the next flush tries again */
      free(ids);
      free(ptrs);
      break;
    }
    for (size_t k = 0; k < n; k++) ptrs[k] = ids[k];
    rds_send_acks(b, ptrs, n);
    pthread_mutex_lock(&b->rec_lock);
    memmove(b->acks, b->acks + n, (b->acks_n - n) * sizeof *b->acks);
    b->acks_n -= n;
    b->acks_since = rds_now_ms();
    pthread_mutex_unlock(&b->rec_lock);
    free(ids);
    free(ptrs);
  }
  pthread_mutex_unlock(&b->flush_lock);
}

/* Whether acks have waited longer than claim_every_ms. */
static int rds_acks_due(rds_buffer *b) {
  pthread_mutex_lock(&b->rec_lock);
  int due = b->acks_n > 0 && rds_now_ms() - b->acks_since >= b->claim_every_ms;
  pthread_mutex_unlock(&b->rec_lock);
  return due;
}

/* ---- pull ------------------------------------------------------------------------------ */

/* One command on the blocking connection (pull_lock held). A reconnect may have lost replies
** in transit, whose entries then sit in this consumer's pending list: look there again. */
static int rds_blk_run(rds_buffer *b, int argc, const char **argv, redisReply **reply,
                       ch_error *err) {
  size_t lens[16];
  rds_lens(argv, lens, argc);
  rds_cmd cmd = {argc, argv, lens};
  int rc = rds_run(&b->srv, &b->blk, &cmd, 1, reply, b->srv.retries, err);
  if (b->blk.generation != b->blk_generation) {
    b->blk_generation = b->blk.generation;
    b->recovering = 1;
    strcpy(b->recover_from, "0-0");
  }
  if (rc != CH_OK) return rc;
  if (rds_is_error(*reply, "NOGROUP")) {
    /* The stream was deleted behind our back (a clear elsewhere, or by hand): make it again. */
    freeReplyObject(*reply);
    *reply = NULL;
    rc = rds_create_group(b, &b->blk, err);
    return rc == CH_OK ? RDS_AGAIN : rc;
  }
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    rc = rds_bad_reply(b, argv[0], *reply, err);
    freeReplyObject(*reply);
    *reply = NULL;
  }
  return rc;
}

/* Ack and delete (with the next flush) an entry that is not a record of ours, and say so. */
static int rds_skip_foreign(rds_buffer *b, const char *sid, const char *problem) {
  pthread_mutex_lock(&b->rec_lock);
  int noted = rds_acks_add(b, sid);
  pthread_mutex_unlock(&b->rec_lock);
  if (!noted) rds_send_acks(b, &sid, 1);
  b->skipped++;
  rds_log(&b->srv, CH_LOG_WARN,
          "stream '%s': skipped foreign entry %s (%s); %" PRIu64 " skipped by this handle",
          b->stream, sid, problem, b->skipped);
  return RDS_AGAIN;
}

/* Take entry e (an [id, fields] pair, owned): 1 handed out (e now owned by the record),
** RDS_AGAIN skipped, or a ch_status. check: it may be out with the caller already. */
static int rds_take_entry(rds_buffer *b, redisReply *e, int check, ch_record *out, ch_error *err) {
  if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
      e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= RDS_SID_MAX) {
    int rc = rds_bad_reply(b, "read entry", NULL, err);
    freeReplyObject(e);
    return rc;
  }
  char sid[RDS_SID_MAX];
  snprintf(sid, sizeof sid, "%s", e->element[0]->str);
  rds_fields f;
  const char *problem = rds_fields_problem(e->element[1], &f);
  if (problem) {
    freeReplyObject(e);
    return rds_skip_foreign(b, sid, problem);
  }
  if (check && rds_in_flight(b, sid)) {
    freeReplyObject(e);
    return RDS_AGAIN;
  }
  b->last_len = f.d->len;
  return rds_hand_out(b, e, &f, sid, out, err);
}

/* The entries array of an XREADGROUP reply ([[stream, entries]]), or NULL for none. */
static redisReply *rds_read_entries(const redisReply *r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) return NULL;
  const redisReply *s = r->element[0];
  if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) return NULL;
  redisReply *entries = s->element[1];
  return entries->type == REDIS_REPLY_ARRAY && entries->elements > 0 ? entries : NULL;
}

/* Forget the entries read ahead: they stay pending for this consumer. */
static void rds_queue_drop(rds_buffer *b) {
  freeReplyObject(b->q_reply);
  b->q_reply = b->q_entries = NULL;
  b->q_next = 0;
  atomic_store(&b->queued, 0);
}

/* Keep reply's entries for the next pulls; returns 1. A full read means a backlog, so the next
** read asks for twice as many (up to pull_batch): an idle stream is shared record by record
** among consumers, a busy one in batches. */
static int rds_queue_fill(rds_buffer *b, redisReply *reply, redisReply *entries, int check) {
  rds_queue_drop(b);
  b->q_reply = reply;
  b->q_entries = entries;
  b->q_check = check;
  b->q_time = rds_now_ms();
  b->q_epoch = atomic_load(&b->clear_epoch);
  atomic_store(&b->queued, (int)entries->elements);
  if (entries->elements >= (size_t)b->pull_count)
    b->pull_count = 2 * b->pull_count < b->pull_batch ? 2 * b->pull_count : b->pull_batch;
  return 1;
}

/* COUNT of the next read: the ramp, capped to about RDS_PULL_BYTES of records. */
static void rds_read_count(const rds_buffer *b, char *out, size_t cap) {
  size_t n = (size_t)b->pull_count;
  if (b->last_len > 0 && n > RDS_PULL_BYTES / b->last_len) n = RDS_PULL_BYTES / b->last_len;
  snprintf(out, cap, "%zu", n > 0 ? n : 1);
}

/* Hand out the next entry read ahead: 1, 0 (none left), or a ch_status. */
static int rds_take_queued(rds_buffer *b, ch_record *out, ch_error *err) {
  while (b->q_reply) {
    if (b->q_epoch != atomic_load(&b->clear_epoch) || b->q_next >= b->q_entries->elements) {
      rds_queue_drop(b); /* cleared meanwhile, or all handed out */
      break;
    }
    if (rds_now_ms() - b->q_time > b->claim_every_ms) {
      /* Read long ago, so soon claimable by others: read them again from the pending list,
      ** which restarts their idle time. */
      rds_queue_drop(b);
      b->recovering = 1;
      strcpy(b->recover_from, "0-0");
      break;
    }
    redisReply *e = b->q_entries->element[b->q_next];
    b->q_entries->element[b->q_next++] = NULL; /* the record owns it now */
    atomic_fetch_sub(&b->queued, 1);
    int rc = rds_take_entry(b, e, b->q_check, out, err);
    if (rc != RDS_AGAIN) return rc;
  }
  return 0;
}

/* This consumer's own pending entries, oldest first: 1 (read ahead), 0 (none), or an error. */
static int rds_read_own(rds_buffer *b, ch_error *err) {
  char count[24];
  rds_read_count(b, count, sizeof count);
  const char *argv[] = {"XREADGROUP", "GROUP",   b->group,  b->consumer,    "COUNT",
                        count,        "STREAMS", b->stream, b->recover_from};
  redisReply *r = NULL;
  int rc = rds_blk_run(b, 9, argv, &r, err);
  if (rc != CH_OK) return rc;
  redisReply *entries = rds_read_entries(r);
  if (!entries) {
    b->recovering = 0;
    freeReplyObject(r);
    return 0;
  }
  const redisReply *last = entries->element[entries->elements - 1];
  if (last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
      last->element[0]->type == REDIS_REPLY_STRING && last->element[0]->len < RDS_SID_MAX)
    snprintf(b->recover_from, RDS_SID_MAX, "%s", last->element[0]->str);
  else
    b->recovering = 0; /* no id to go on from */
  return rds_queue_fill(b, r, entries, 1);
}

/* Entries idle past claim_idle_ms in any consumer (dead ones, mostly), via XAUTOCLAIM. */
static int rds_read_idle(rds_buffer *b, ch_error *err) {
  char count[24];
  rds_read_count(b, count, sizeof count);
  for (int step = 0; step < RDS_CLAIM_SCAN; step++) {
    const char *argv[] = {"XAUTOCLAIM",  b->stream,     b->group, b->consumer,
                          b->claim_idle, b->claim_from, "COUNT",  count};
    redisReply *r = NULL;
    int rc = rds_blk_run(b, 8, argv, &r, err);
    if (rc != CH_OK) return rc == RDS_AGAIN ? 0 : rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= RDS_SID_MAX ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      rc = rds_bad_reply(b, "XAUTOCLAIM", r, err);
      freeReplyObject(r);
      return rc;
    }
    snprintf(b->claim_from, RDS_SID_MAX, "%s", r->element[0]->str);
    if (r->element[1]->elements > 0) return rds_queue_fill(b, r, r->element[1], 1);
    freeReplyObject(r);
    if (strcmp(b->claim_from, "0-0") == 0) break; /* the scan went round */
  }
  b->next_claim_ms = rds_now_ms() + b->claim_every_ms;
  return 0;
}

/* New entries; block_ms 0 does not wait. 1 (read ahead), 0 (none), or an error. */
static int rds_read_new(rds_buffer *b, int block_ms, ch_error *err) {
  char block[16], count[24];
  snprintf(block, sizeof block, "%d", block_ms);
  rds_read_count(b, count, sizeof count);
  const char *argv[11] = {"XREADGROUP", "GROUP", b->group, b->consumer, "COUNT", count};
  int argc = 6;
  if (block_ms > 0) {
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
  }
  argv[argc++] = "STREAMS";
  argv[argc++] = b->stream;
  argv[argc++] = ">";
  redisReply *r = NULL;
  int rc = rds_blk_run(b, argc, argv, &r, err);
  if (rc != CH_OK) return rc;
  redisReply *entries = rds_read_entries(r);
  if (!entries) {
    freeReplyObject(r);
    b->pull_count = 1; /* caught up: share what comes next */
    return 0;
  }
  return rds_queue_fill(b, r, entries, 0);
}

/* One round: entries read ahead, else (acks sent first) own pending, idle ones when due, then
** new ones for at most one slice. Returns 1, 0 (nothing before the deadline), RDS_AGAIN, or a
** ch_status. */
static int rds_pull_step(rds_buffer *b, int timeout_ms, double deadline, ch_record *out,
                         ch_error *err) {
  int rc = rds_take_queued(b, out, err);
  if (rc != 0) return rc;
  rds_flush_acks(b); /* acks never wait behind a read, nor are they read back as pending */
  if (b->recovering && (rc = rds_read_own(b, err)) != 0) return rc == 1 ? RDS_AGAIN : rc;
  if (rds_now_ms() >= b->next_claim_ms && (rc = rds_read_idle(b, err)) != 0)
    return rc == 1 ? RDS_AGAIN : rc;
  int block = 0;
  if (timeout_ms != 0) {
    double left = timeout_ms < 0 ? b->claim_every_ms : deadline - rds_now_ms();
    if (left < 1) return 0;
    block = left < b->claim_every_ms ? (int)left : b->claim_every_ms;
  }
  rc = rds_read_new(b, block, err);
  if (rc == 1) return RDS_AGAIN;
  if (rc != 0 || timeout_ms == 0) return rc;
  return timeout_ms < 0 || rds_now_ms() < deadline ? RDS_AGAIN : 0;
}

/* Another consumer of this handle may hold the blocking connection for a slice: wait for it
** no longer than the caller's timeout. */
static int rds_lock_pull(rds_buffer *b, int timeout_ms) {
  if (timeout_ms < 0) return pthread_mutex_lock(&b->pull_lock) == 0;
  if (timeout_ms == 0) return pthread_mutex_trylock(&b->pull_lock) == 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return pthread_mutex_timedlock(&b->pull_lock, &ts) == 0;
}

static int rds_pull(void *buf, int timeout_ms, ch_record *out, ch_error *err) {
  rds_buffer *b = buf;
  if (!b || !out) return ch_error_set(err, CH_EINVAL, "buffer redis: pull: NULL argument");
  double deadline = rds_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  if (!rds_lock_pull(b, timeout_ms)) return 0;
  if (rds_acks_due(b)) rds_flush_acks(b); /* a caller living off read-ahead still acks soon */
  int rc;
  do rc = rds_pull_step(b, timeout_ms, deadline, out, err);
  while (rc == RDS_AGAIN);
  pthread_mutex_unlock(&b->pull_lock);
  return rc;
}

/* The XACK waits for the next flush: ack_batch acks gathered, the next read, size, clear or
** close. Until then the id stays listed, so no pull of this handle hands the entry out again. */
static void rds_ack(void *buf, ch_record *rec) {
  rds_buffer *b = buf;
  if (!b || !rec || !rec->internal) return;
  rds_rec *r = rec->internal;
  pthread_mutex_lock(&b->rec_lock);
  int noted = !r->sid[0] || rds_acks_add(b, r->sid);
  if (noted) {
    r->prev->next = r->next;
    r->next->prev = r->prev;
  }
  int full = b->acks_n >= (size_t)b->ack_batch;
  pthread_mutex_unlock(&b->rec_lock);
  if (!noted) { /* no memory to list it: ack it now, and only then unlink */
    const char *sid = r->sid;
    rds_send_acks(b, &sid, 1);
    rds_unlink(b, r);
  }
  if (full) rds_flush_acks(b);
  rds_rec_free(r);
  memset(rec, 0, sizeof *rec); /* a use after ack fails loudly */
}

/* ---- sample, size, clear --------------------------------------------------------------- */

/* splitmix64 on the caller's state, as the memory buffer draws. */
static uint64_t rds_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int rds_sample(void *buf, uint64_t *rng_state, ch_record *out, ch_error *err) {
  rds_buffer *b = buf;
  if (!b || !rng_state || !out)
    return ch_error_set(err, CH_EINVAL, "buffer redis: sample: NULL argument");
  if (b->replay_cap == 0)
    return ch_error_set(err, CH_EUNSUPPORTED,
                        "buffer redis: sample on stream '%s' needs config key "
                        "'replay_capacity' > 0",
                        b->stream);
  char u[40];
  snprintf(u, sizeof u, "%.17g", (double)(rds_splitmix64(rng_state) >> 11) * 0x1.0p-53);
  const char *argv[] = {"EVAL", RDS_SAMPLE_LUA, "1", b->replay_key, u, b->replay_capacity};
  size_t lens[6];
  rds_lens(argv, lens, 6);
  redisReply *r;
  int rc = rds_cmd_run(b, 6, argv, lens, &r, b->srv.retries, err);
  if (rc != CH_OK) return rc;
  if (r->type == REDIS_REPLY_NIL) {
    freeReplyObject(r);
    return 0;
  }
  rds_fields f = {NULL, NULL, NULL};
  uint64_t n;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 3)
    f = (rds_fields){r->element[0], r->element[1], r->element[2]};
  if (!rds_u64(f.v, &n) || !rds_u64(f.i, &n) || !f.d || f.d->type != REDIS_REPLY_STRING) {
    rc = r->type == REDIS_REPLY_ERROR
             ? rds_bad_reply(b, "sample", r, err)
             : ch_error_set(err, CH_ECORRUPT,
                            "buffer redis: replay ring '%s' holds a malformed slot (do all "
                            "handles use the same replay_capacity?)",
                            b->replay_key);
    freeReplyObject(r);
    return rc;
  }
  return rds_hand_out(b, r, &f, NULL, out, err);
}

static int64_t rds_size(void *buf) {
  rds_buffer *b = buf;
  if (!b) return CH_EINVAL;
  char queued[24];
  rds_queued_arg(b, queued, sizeof queued);
  const char *argv[] = {"EVAL", RDS_SIZE_LUA, "1", b->stream, b->group, queued};
  size_t lens[6];
  rds_lens(argv, lens, 6);
  redisReply *r;
  ch_error err = {0};
  int rc = rds_cmd_run(b, 6, argv, lens, &r, b->srv.retries, &err);
  if (rc != CH_OK) {
    rds_log(&b->srv, CH_LOG_ERROR, "size: %s", err.message);
    return rc;
  }
  int64_t n = r->type == REDIS_REPLY_INTEGER ? (int64_t)r->integer : CH_EIO;
  if (n < 0) {
    rds_bad_reply(b, "size", r, &err);
    rds_log(&b->srv, CH_LOG_ERROR, "%s", err.message);
  }
  freeReplyObject(r);
  return n;
}

static int rds_clear(void *buf, ch_error *err) {
  rds_buffer *b = buf;
  if (!b) return ch_error_set(err, CH_EINVAL, "buffer redis: clear: buffer is NULL");
  /* Acks first: a new entry may get the stream id of a deleted one, and a late XDEL of that id
  ** would take it. Entries read ahead are deleted: the next pull drops them. */
  rds_flush_acks(b);
  atomic_fetch_add(&b->clear_epoch, 1);
  atomic_store(&b->queued, 0);
  const char *argv[] = {"EVAL", RDS_CLEAR_LUA, "2", b->stream, b->replay_key, b->group};
  size_t lens[6];
  rds_lens(argv, lens, 6);
  redisReply *r;
  int rc = rds_cmd_run(b, 6, argv, lens, &r, b->srv.retries, err);
  if (rc != CH_OK) return rc;
  if (r->type == REDIS_REPLY_ERROR) rc = rds_bad_reply(b, "clear", r, err);
  freeReplyObject(r);
  return rc;
}

/* ---- named values -------------------------------------------------------------------- */

static int rds_meta_key_ok(const char *key) {
  size_t n = key ? strlen(key) : 0;
  if (n == 0 || n > RDS_META_KEY_MAX) return 0;
  for (const char *c = key; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          strchr("._/:-", *c)))
      return 0;
  return 1;
}

static int rds_meta_bad_key(const char *key, ch_error *err) {
  return ch_error_set(err, CH_EINVAL, "buffer redis: invalid meta key '%.200s'",
                      key ? key : "(null)");
}

static int rds_meta_set(void *buf, const char *key, const char *value, ch_error *err) {
  rds_buffer *b = buf;
  if (!b) return ch_error_set(err, CH_EINVAL, "buffer redis: meta_set: buffer is NULL");
  if (!rds_meta_key_ok(key)) return rds_meta_bad_key(key, err);
  if (!value || strlen(value) > RDS_META_VALUE_MAX)
    return ch_error_set(err, CH_EINVAL, "buffer redis: meta value for '%s' missing or too long",
                        key);
  const char *argv[] = {"HSET", b->meta_key, key, value};
  size_t lens[4];
  rds_lens(argv, lens, 4);
  redisReply *r;
  int rc = rds_cmd_run(b, 4, argv, lens, &r, b->srv.retries, err);
  if (rc != CH_OK) return rc;
  if (r->type != REDIS_REPLY_INTEGER) rc = rds_bad_reply(b, "meta_set", r, err);
  freeReplyObject(r);
  return rc;
}

static int rds_meta_get(void *buf, const char *key, char *out, size_t cap, ch_error *err) {
  rds_buffer *b = buf;
  if (!b) return ch_error_set(err, CH_EINVAL, "buffer redis: meta_get: buffer is NULL");
  if (!rds_meta_key_ok(key)) return rds_meta_bad_key(key, err);
  const char *argv[] = {"HGET", b->meta_key, key};
  size_t lens[3];
  rds_lens(argv, lens, 3);
  redisReply *r;
  int rc = rds_cmd_run(b, 3, argv, lens, &r, b->srv.retries, err);
  if (rc != CH_OK) return rc;
  if (r->type == REDIS_REPLY_NIL)
    rc =
        ch_error_set(err, CH_ENOTFOUND, "buffer redis: no meta key '%s' in '%s'", key, b->meta_key);
  else if (r->type != REDIS_REPLY_STRING || r->len > INT32_MAX)
    rc = rds_bad_reply(b, "meta_get", r, err);
  else if (r->len + 1 > cap || !out)
    rc = ch_error_set(err, CH_ERANGE, "buffer redis: meta '%s' needs %zu bytes, got %zu", key,
                      r->len + 1, cap);
  else {
    memcpy(out, r->str, r->len + 1);
    rc = (int)r->len;
  }
  freeReplyObject(r);
  return rc;
}

static const ch_buffer_vtable rds_vtable = {
    {CH_PLUGIN_ABI_VERSION, sizeof(ch_buffer_vtable), CH_PLUGIN_BUFFER, 0, "redis", "1.0.0",
     "Redis Stream buffer shared by many processes (consumer group, replay ring)"},
    rds_open,
    rds_close,
    rds_push,
    rds_pull,
    rds_ack,
    rds_sample,
    rds_size,
    rds_clear,
    rds_meta_set,
    rds_meta_get,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &rds_vtable.header;
}
