/* redis.h -- internals of the redis buffer plugin: the server URL and retried connections. */
#ifndef CHICANE_REDIS_H
#define CHICANE_REDIS_H

#include <chicane/plugin.h>

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define RDS_HOST_MAX 256

/* A parsed redis://[[user]:password@]host[:port][/db] URL. */
typedef struct rds_url {
  char host[RDS_HOST_MAX];
  int port;
  int db;
  char *user;                    /* NULL: AUTH with the password alone */
  char *password;                /* NULL: no AUTH */
  char where[RDS_HOST_MAX + 16]; /* "host:port" (IPv6 in brackets), for messages */
  char shown[RDS_HOST_MAX + 64]; /* the URL with the password masked, for messages */
} rds_url;

/* What every connection of one handle shares. */
typedef struct rds_server {
  rds_url url;
  int connect_timeout_ms;
  int retries;
  const ch_host_api *host;
} rds_server;

/* One connection; not thread-safe (each is guarded by a mutex of its owner). */
typedef struct rds_conn {
  redisContext *ctx;   /* NULL while disconnected */
  int io_timeout_ms;   /* socket read/write timeout once connected */
  unsigned generation; /* bumped by every successful (re)connect */
} rds_conn;

/* One command of a pipeline: argc arguments, binary-safe. */
typedef struct rds_cmd {
  int argc;
  const char **argv;
  const size_t *lens;
} rds_cmd;

int rds_url_parse(const char *text, rds_url *out, ch_error *err);
void rds_url_free(rds_url *u);

/* Log one line through the host, printf-style. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void rds_log(const rds_server *srv, int level, const char *fmt, ...);

/* Send n commands in one pipeline and read their n replies into replies[] (free each with
** freeReplyObject). Connects first if needed (AUTH and SELECT on every connect). A lost
** connection, a timeout or a LOADING server is retried up to `retries` times with exponential
** backoff from 100 ms, each retry logged at WARN; then CH_ECONN. Error replies of the commands
** themselves are returned as replies, for the caller to judge. */
int rds_run(const rds_server *srv, rds_conn *c, const rds_cmd *cmds, int n, redisReply **replies,
            int retries, ch_error *err);

void rds_conn_close(rds_conn *c);

#endif
