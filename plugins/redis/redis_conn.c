/* redis_conn.c -- the redis buffer's URL parsing and its connections: AUTH, SELECT, retries. */

#include "redis.h"

#include <chicane/plugin_util.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RDS_DEFAULT_PORT   6379
#define RDS_BACKOFF_MS     100
#define RDS_BACKOFF_MAX_MS 10000

/* ---- URL ------------------------------------------------------------------------------- */

/* The URL as given but with the password replaced by ***, so that no message leaks it. */
static void rds_mask(const char *text, char *out, size_t cap) {
  const char *auth = strstr(text, "://");
  auth = auth ? auth + 3 : text;
  size_t alen = strcspn(auth, "/");
  const char *at = NULL;
  for (const char *s = auth; s < auth + alen; s++)
    if (*s == '@') at = s;
  const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (!colon)
    snprintf(out, cap, "%s", text);
  else
    snprintf(out, cap, "%.*s:***%s", (int)(colon - text), text, at);
}

static int rds_hex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode [s, s+n) into a new string; NULL with *bad set on a broken %XX escape. */
static char *rds_decode(const char *s, size_t n, int *bad) {
  char *out = malloc(n + 1), *o = out;
  *bad = 0;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      *o++ = s[i];
      continue;
    }
    int hi = i + 2 < n ? rds_hex((unsigned char)s[i + 1]) : -1;
    int lo = i + 2 < n ? rds_hex((unsigned char)s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      *bad = 1;
      free(out);
      return NULL;
    }
    *o++ = (char)(hi * 16 + lo);
    i += 2;
  }
  *o = '\0';
  return out;
}

static int rds_bad_url(ch_error *err, const char *shown, const char *reason) {
  return ch_error_set(err, CH_EINVAL, "buffer redis: bad url '%s': %s", shown, reason);
}

/* userinfo [s, at): "user:password" or ":password". */
static int rds_parse_userinfo(const char *s, const char *at, rds_url *u, const char *shown,
                              ch_error *err) {
  const char *colon = memchr(s, ':', (size_t)(at - s));
  if (!colon) return rds_bad_url(err, shown, "user info must be ':password' or 'user:password'");
  int bad = 0;
  if (colon > s && !(u->user = rds_decode(s, (size_t)(colon - s), &bad)))
    return bad ? rds_bad_url(err, shown, "broken %XX escape in the user name")
               : ch_error_set(err, CH_ENOMEM, "buffer redis: out of memory");
  if (!(u->password = rds_decode(colon + 1, (size_t)(at - colon - 1), &bad)))
    return bad ? rds_bad_url(err, shown, "broken %XX escape in the password")
               : ch_error_set(err, CH_ENOMEM, "buffer redis: out of memory");
  return CH_OK;
}

/* A decimal number of [s, s+n) in [lo, hi]; -1 when it is not one. */
static long rds_number(const char *s, size_t n, long lo, long hi) {
  if (n == 0 || n > 10) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v >= lo && v <= hi ? v : -1;
}

/* host[:port] or [v6]:port in [s, end). */
static int rds_parse_hostport(const char *s, const char *end, rds_url *u, const char *shown,
                              ch_error *err) {
  const char *host = s, *host_end, *port = NULL;
  if (*s == '[') {
    host = s + 1;
    host_end = memchr(host, ']', (size_t)(end - host));
    if (!host_end) return rds_bad_url(err, shown, "'[' of an IPv6 address without ']'");
    if (host_end + 1 < end && host_end[1] != ':')
      return rds_bad_url(err, shown, "junk after the IPv6 address");
    if (host_end + 1 < end) port = host_end + 2;
  } else {
    host_end = memchr(s, ':', (size_t)(end - s));
    if (host_end)
      port = host_end + 1;
    else
      host_end = end;
  }
  size_t hn = (size_t)(host_end - host);
  if (hn == 0) return rds_bad_url(err, shown, "no host");
  if (hn >= RDS_HOST_MAX) return rds_bad_url(err, shown, "host name longer than 255 bytes");
  memcpy(u->host, host, hn);
  u->host[hn] = '\0';
  u->port = RDS_DEFAULT_PORT;
  if (port && (u->port = (int)rds_number(port, (size_t)(end - port), 1, 65535)) < 0)
    return rds_bad_url(err, shown, "the port is not a number in 1..65535");
  return CH_OK;
}

int rds_url_parse(const char *text, rds_url *u, ch_error *err) {
  memset(u, 0, sizeof *u);
  if (!text) return ch_error_set(err, CH_EINVAL, "buffer redis: config key 'url' is required");
  char shown[sizeof u->shown];
  rds_mask(text, shown, sizeof shown);
  if (strncmp(text, "rediss://", 9) == 0)
    return rds_bad_url(err, shown, "TLS (rediss://) is not supported; use redis://");
  if (strncmp(text, "redis://", 8) != 0)
    return rds_bad_url(err, shown, "it must start with redis://");
  const char *p = text + 8;
  if (strpbrk(p, "?#")) return rds_bad_url(err, shown, "query strings are not supported");
  const char *end = p + strcspn(p, "/"), *at = NULL;
  for (const char *s = p; s < end; s++)
    if (*s == '@') at = s;
  int rc = at ? rds_parse_userinfo(p, at, u, shown, err) : CH_OK;
  if (rc == CH_OK) rc = rds_parse_hostport(at ? at + 1 : p, end, u, shown, err);
  if (rc == CH_OK && *end == '/' && end[1] != '\0' &&
      (u->db = (int)rds_number(end + 1, strlen(end + 1), 0, INT_MAX)) < 0)
    rc = rds_bad_url(err, shown, "the database after '/' is not a number");
  if (rc != CH_OK) {
    rds_url_free(u);
    return rc;
  }
  int v6 = strchr(u->host, ':') != NULL;
  snprintf(u->where, sizeof u->where, "%s%s%s:%d", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
  snprintf(u->shown, sizeof u->shown, "redis://%s%s%s", u->user ? u->user : "",
           u->password ? ":***@" : "", u->where);
  if (u->db) {
    size_t n = strlen(u->shown);
    snprintf(u->shown + n, sizeof u->shown - n, "/%d", u->db);
  }
  return CH_OK;
}

void rds_url_free(rds_url *u) {
  free(u->user);
  free(u->password);
  u->user = u->password = NULL;
}

/* ---- logging --------------------------------------------------------------------------- */

void rds_log(const rds_server *srv, int level, const char *fmt, ...) {
  const ch_host_api *h = srv->host;
  if (!h || h->struct_size < sizeof(ch_host_api) || !h->log) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  h->log(level, "redis", msg);
}

/* ---- SIGPIPE --------------------------------------------------------------------------- */

/* hiredis writes with write(2), so a server that went away raises SIGPIPE, whose default
** action kills the process. A plugin may not change the process-wide disposition, so the
** calling thread blocks it around each exchange and swallows one it caused. */
typedef struct rds_pipe_guard {
  sigset_t old;
  int was_pending;
} rds_pipe_guard;

static void rds_pipe_block(rds_pipe_guard *g) {
  sigset_t pipe_set, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  g->was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

static void rds_pipe_restore(rds_pipe_guard *g) {
  sigset_t pipe_set, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- connections ----------------------------------------------------------------------- */

static struct timeval rds_tv(int ms) {
  struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000L};
  return tv;
}

static void rds_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int rds_is_error(const redisReply *r, const char *prefix) {
  return r && r->type == REDIS_REPLY_ERROR && r->str &&
         strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* One step of the handshake (AUTH, SELECT or PING). A refused one is a configuration error,
** not worth retrying, except while the server is still loading its data. */
static int rds_hello(const rds_server *srv, redisContext *ctx, int argc, const char **argv,
                     const char *what, int *transient, ch_error *err) {
  redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
  if (!r) {
    *transient = 1;
    return ch_error_set(err, CH_ECONN, "buffer redis: redis at %s: %s: %s", srv->url.where, what,
                        ctx->errstr);
  }
  int rc = CH_OK;
  if (r->type == REDIS_REPLY_ERROR) {
    *transient = rds_is_error(r, "LOADING");
    const char *hint = rds_is_error(r, "NOAUTH")
                           ? " (the server needs a password: redis://:PASSWORD@host:port)"
                           : "";
    rc = ch_error_set(err, *transient ? CH_ECONN : CH_EINVAL,
                      "buffer redis: redis at %s: %s failed: %s%s", srv->url.where, what, r->str,
                      hint);
  }
  freeReplyObject(r);
  return rc;
}

static int rds_handshake(const rds_server *srv, redisContext *ctx, int *transient, ch_error *err) {
  const rds_url *u = &srv->url;
  int rc = CH_OK;
  if (u->password) {
    const char *auth[3] = {"AUTH", u->user ? u->user : u->password, u->password};
    rc = rds_hello(srv, ctx, u->user ? 3 : 2, auth, "AUTH", transient, err);
  }
  if (rc != CH_OK) return rc;
  char db[16];
  snprintf(db, sizeof db, "%d", u->db);
  const char *select[2] = {"SELECT", db}, *ping[1] = {"PING"};
  /* PING when there is nothing to select, so a missing password shows up here, clearly. */
  return u->db ? rds_hello(srv, ctx, 2, select, "SELECT", transient, err)
               : rds_hello(srv, ctx, 1, ping, "PING", transient, err);
}

static int rds_connect(const rds_server *srv, rds_conn *c, int *transient, ch_error *err) {
  *transient = 1;
  redisContext *ctx =
      redisConnectWithTimeout(srv->url.host, srv->url.port, rds_tv(srv->connect_timeout_ms));
  if (!ctx)
    return ch_error_set(err, CH_ECONN, "buffer redis: redis at %s: cannot allocate a connection",
                        srv->url.where);
  if (ctx->err) {
    int rc =
        ch_error_set(err, CH_ECONN, "buffer redis: redis at %s: %s", srv->url.where, ctx->errstr);
    redisFree(ctx);
    return rc;
  }
  redisSetTimeout(ctx, rds_tv(c->io_timeout_ms));
  redisEnableKeepAlive(ctx);
  int rc = rds_handshake(srv, ctx, transient, err);
  if (rc != CH_OK) {
    redisFree(ctx);
    return rc;
  }
  c->ctx = ctx;
  c->generation++;
  return CH_OK;
}

void rds_conn_close(rds_conn *c) {
  if (c->ctx) redisFree(c->ctx);
  c->ctx = NULL;
}

static void rds_free_replies(redisReply **replies, int n) {
  for (int i = 0; i < n; i++) {
    freeReplyObject(replies[i]);
    replies[i] = NULL;
  }
}

/* Send the pipeline and read every reply; 0 or the index+1 of the first that failed on I/O. */
static int rds_exchange(redisContext *ctx, const rds_cmd *cmds, int n, redisReply **replies,
                        int *got) {
  rds_pipe_guard g;
  rds_pipe_block(&g);
  int failed = 0;
  for (int i = 0; i < n && !failed; i++)
    if (redisAppendCommandArgv(ctx, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
      failed = 1;
  while (!failed && *got < n) {
    void *r = NULL;
    if (redisGetReply(ctx, &r) != REDIS_OK || !r)
      failed = 1;
    else
      replies[(*got)++] = r;
  }
  rds_pipe_restore(&g);
  return failed;
}

/* One attempt; *transient says whether trying again could help. */
static int rds_try(const rds_server *srv, rds_conn *c, const rds_cmd *cmds, int n,
                   redisReply **replies, int *transient, ch_error *err) {
  *transient = 0;
  if (!c->ctx) {
    int rc = rds_connect(srv, c, transient, err);
    if (rc != CH_OK) return rc;
  }
  int got = 0;
  if (rds_exchange(c->ctx, cmds, n, replies, &got)) {
    int rc = ch_error_set(err, CH_ECONN, "buffer redis: redis at %s: %s", srv->url.where,
                          c->ctx->errstr[0] ? c->ctx->errstr : "connection failed");
    rds_free_replies(replies, got);
    rds_conn_close(c); /* a half-read pipeline leaves the connection unusable */
    *transient = 1;
    return rc;
  }
  for (int i = 0; i < n; i++) {
    /* A restarted server answers LOADING until its data is back; NOAUTH means it now wants a
    ** password (restarted with another configuration). */
    if (!rds_is_error(replies[i], "LOADING") && !rds_is_error(replies[i], "NOAUTH")) continue;
    *transient = rds_is_error(replies[i], "LOADING");
    int rc = ch_error_set(err, *transient ? CH_ECONN : CH_EINVAL, "buffer redis: redis at %s: %s",
                          srv->url.where, replies[i]->str);
    rds_free_replies(replies, n);
    if (!*transient) rds_conn_close(c);
    return rc;
  }
  return CH_OK;
}

static int rds_backoff_ms(int attempt) {
  long ms = RDS_BACKOFF_MS;
  for (int i = 0; i < attempt && ms < RDS_BACKOFF_MAX_MS; i++) ms *= 2;
  return ms < RDS_BACKOFF_MAX_MS ? (int)ms : RDS_BACKOFF_MAX_MS;
}

int rds_run(const rds_server *srv, rds_conn *c, const rds_cmd *cmds, int n, redisReply **replies,
            int retries, ch_error *err) {
  for (int i = 0; i < n; i++) replies[i] = NULL;
  ch_error last = {0};
  for (int attempt = 0;; attempt++) {
    int transient = 0;
    int rc = rds_try(srv, c, cmds, n, replies, &transient, &last);
    if (rc == CH_OK) return CH_OK;
    if (!transient) return ch_error_set(err, rc, "%s", last.message);
    if (attempt >= retries)
      return ch_error_set(err, CH_ECONN, "%s (gave up after %d %s)", last.message, retries,
                          retries == 1 ? "retry" : "retries");
    int delay = rds_backoff_ms(attempt);
    rds_log(srv, CH_LOG_WARN, "%s; url %s: retry %d of %d in %d ms", last.message, srv->url.shown,
            attempt + 1, retries, delay);
    rds_sleep_ms(delay);
  }
}
