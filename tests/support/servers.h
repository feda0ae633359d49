/* servers.h -- tests: start and stop real redis-server and s3rver processes on loopback ports. */
#ifndef CHICANE_TEST_SERVERS_H
#define CHICANE_TEST_SERVERS_H

/*
** Each server gets a fresh directory (mkdtemp under $TMPDIR, else /tmp) and a free port on
** 127.0.0.1, and runs as a child of the test with its output in <dir>/server.log. The child
** is killed with SIGKILL if the thread that started it exits (PR_SET_PDEATHSIG), so a test
** that crashes leaves no server behind; start servers from the main thread (cmocka's group
** setup runs there). Stop them in a cmocka group teardown, which runs even when a test fails.
**
** redis:  redis-server --port P --bind 127.0.0.1 --dir DIR --save "" --appendonly yes
**         --appendfsync always [--requirepass PW]; url "redis://127.0.0.1:P", or
**         "redis://:PW@127.0.0.1:P" with a password (percent-encoded), ready for the redis
**         buffer plugin.
** s3rver: CHICANE_SOURCE_DIR/node_modules/.bin/s3rver -d DIR -a 127.0.0.1 -p P --silent
**         --configure-bucket BUCKET; url "http://127.0.0.1:P"; credentials S3RVER/S3RVER.
**         Object "k" of bucket "b" is the file DIR/b/k._S3rver_object.
*/

typedef struct ch_test_server {
  int pid;       /* of the running server, 0 when stopped */
  int port;      /* loopback TCP port, kept across restarts */
  char dir[512]; /* the server's data directory */
  char url[600]; /* how a client reaches it (see above) */
  /* Private to servers.c: what restart needs to run the same server again. */
  int kind;
  char param[128]; /* redis password or s3rver bucket */
} ch_test_server;

/* Start a server. 0 once it serves requests (redis: PING answers PONG, so its data is loaded;
** s3rver: it accepts connections, its bucket made); -1 when its program is not installed (the
** caller skips, loudly); -2 when it would not start within 10 s (the reason and the tail of its
** log are printed to stderr). s is filled only on success. s3rver runs with NODE_OPTIONS=
** --openssl-legacy-provider: its listing continuation tokens use DES. */
int ch_test_redis_start(ch_test_server *s, const char *password /* NULL: none */);
int ch_test_s3rver_start(ch_test_server *s, const char *bucket /* NULL: "chicane" */);

/* SIGTERM, wait for it to exit, then remove its directory. Safe on a stopped server. */
void ch_test_server_stop(ch_test_server *s);

/* SIGKILL (a crash: no shutdown save), wait; the directory stays for restart. */
void ch_test_server_kill(ch_test_server *s);

/* Start the same server again on the same port and directory (redis loads its AOF, s3rver
** keeps its objects). Kills it first if it is running. 0, or -2 as for start. */
int ch_test_server_restart(ch_test_server *s);

#endif
