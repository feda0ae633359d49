/* s3_http.c -- the s3 storage plugin's HTTP: SigV4-signed curl requests, retries, error XML. */

#include "s3.h"

#include <chicane/plugin_util.h>

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S3_BACKOFF_MS     200
#define S3_BACKOFF_MAX_MS 5000
#define S3_XML_TEXT_MAX   300 /* of an error Code or Message in a message */

void s3_log(const s3_store *st, int level, const char *fmt, ...) {
  const ch_host_api *h = st->host;
  if (!h || h->struct_size < sizeof(ch_host_api) || !h->log) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  h->log(level, "s3", msg);
}

int s3_sha256_hex(const void *data, size_t len, char *hex) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
    return CH_ENOMEM;
  for (unsigned i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return CH_OK;
}

/* ---- query strings --------------------------------------------------------------------- */

static int s3_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

/* Callers add names in sorted order, and every value is encoded as SigV4's canonical query
** wants, so the string libcurl signs is already canonical whatever its version does. */
void s3_query_add(char *q, size_t cap, const char *name, const char *value) {
  size_t n = strlen(q);
  n += (size_t)snprintf(q + n, n < cap ? cap - n : 0, "%s%s=", n ? "&" : "", name);
  for (const unsigned char *v = (const unsigned char *)value; *v && n + 4 < cap; v++) {
    if (s3_unreserved(*v))
      q[n++] = (char)*v;
    else
      n += (size_t)snprintf(q + n, cap - n, "%%%02X", *v);
  }
  if (n < cap) q[n] = '\0';
}

/* ---- XML ------------------------------------------------------------------------------- */

static const xmlNode *s3_xml_child(const xmlNode *node, const char *name) {
  for (const xmlNode *c = node ? node->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0) return c;
  return NULL;
}

int s3_xml_find(const unsigned char *xml, size_t len, const char *name, char *out, size_t cap) {
  if (cap) out[0] = '\0';
  if (!xml || len == 0 || len > INT32_MAX) return 0;
  xmlDoc *doc = xmlReadMemory((const char *)xml, (int)len, NULL, NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) return 0;
  const xmlNode *node = s3_xml_child(xmlDocGetRootElement(doc), name);
  xmlChar *text = node ? xmlNodeGetContent(node) : NULL;
  if (text) snprintf(out, cap, "%s", (const char *)text);
  xmlFree(text);
  xmlFreeDoc(doc);
  return text != NULL;
}

/* ---- curl handles ---------------------------------------------------------------------- */

/* An easy handle from the pool (reset, but with its open connections), or a new one. */
static CURL *s3_take(s3_store *st) {
  pthread_mutex_lock(&st->pool_lock);
  CURL *c = st->pool_n > 0 ? st->pool[--st->pool_n] : NULL;
  pthread_mutex_unlock(&st->pool_lock);
  if (c)
    curl_easy_reset(c);
  else
    c = curl_easy_init();
  return c;
}

static void s3_give(s3_store *st, CURL *c) {
  pthread_mutex_lock(&st->pool_lock);
  if (st->pool_n < S3_POOL_MAX) {
    st->pool[st->pool_n++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&st->pool_lock);
  if (c) curl_easy_cleanup(c);
}

/* ---- callbacks ------------------------------------------------------------------------- */

typedef struct s3_upload {
  const unsigned char *data;
  size_t len, pos;
} s3_upload;

typedef struct s3_sink {
  s3_response *rs;
  int head; /* HEAD: a Content-Length announces no body */
  int oom;
} s3_sink;

static size_t s3_read_cb(char *buf, size_t size, size_t n, void *user) {
  s3_upload *u = user;
  size_t room = size * n, left = u->len - u->pos;
  size_t take = left < room ? left : room;
  if (take) memcpy(buf, u->data + u->pos, take);
  u->pos += take;
  return take;
}

/* curl rewinds an upload when it must send it again (a reused connection that was closed). */
static int s3_seek_cb(void *user, curl_off_t offset, int origin) {
  s3_upload *u = user;
  if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > u->len) return CURL_SEEKFUNC_FAIL;
  u->pos = (size_t)offset;
  return CURL_SEEKFUNC_OK;
}

static int s3_reserve(s3_response *rs, size_t need) {
  if (need <= rs->cap) return 1;
  size_t cap = rs->cap ? rs->cap : 4096;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  unsigned char *body = realloc(rs->body, cap);
  if (!body) return 0;
  rs->body = body;
  rs->cap = cap;
  return 1;
}

static size_t s3_write_cb(char *data, size_t size, size_t n, void *user) {
  s3_sink *s = user;
  size_t len = size * n;
  if (!s3_reserve(s->rs, s->rs->len + len + 1)) {
    s->oom = 1;
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  }
  memcpy(s->rs->body + s->rs->len, data, len);
  s->rs->len += len;
  s->rs->body[s->rs->len] = '\0'; /* so an XML body is also a C string */
  return len;
}

/* The value of header line `line` if it is named `name` (case-insensitive), trimmed. */
static int s3_header_value(const char *line, size_t n, const char *name, char *out, size_t cap) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') return 0;
  const char *v = line + k + 1, *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
  snprintf(out, cap, "%.*s", (int)(end - v), v);
  return 1;
}

static size_t s3_header_cb(char *line, size_t size, size_t n, void *user) {
  s3_sink *s = user;
  size_t len = size * n;
  char value[128];
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* A new response (after a 100 Continue, say): forget the previous one's headers. */
    s->rs->meta_sha256[0] = '\0';
    s->rs->etag[0] = '\0';
  } else if (s3_header_value(line, len, "x-amz-meta-chicane-sha256", value, sizeof value)) {
    snprintf(s->rs->meta_sha256, sizeof s->rs->meta_sha256, "%s", value);
  } else if (s3_header_value(line, len, "ETag", value, sizeof value)) {
    snprintf(s->rs->etag, sizeof s->rs->etag, "%s", value);
  } else if (!s->head && s3_header_value(line, len, "Content-Length", value, sizeof value)) {
    unsigned long long want = strtoull(value, NULL, 10);
    /* Room for the whole body at once; a failure here shows up in the write callback. */
    if (want > 0 && want < SIZE_MAX - 1) s3_reserve(s->rs, (size_t)want + 1);
  }
  return len;
}

/* ---- requests -------------------------------------------------------------------------- */

static struct curl_slist *s3_headers(const s3_store *st, const s3_request *rq,
                                     const char *payload_sha, int *ok) {
  char line[256];
  struct curl_slist *h = NULL, *t;
  *ok = 1;
#define S3_ADD(text)                                                                               \
  do {                                                                                             \
    if (!(t = curl_slist_append(h, (text))))                                                       \
      *ok = 0;                                                                                     \
    else                                                                                           \
      h = t;                                                                                       \
  } while (0)
  /* S3 wants the payload hash in a header with SigV4, and libcurl signs with it. */
  snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload_sha);
  S3_ADD(line);
  if (rq->meta_sha256) {
    snprintf(line, sizeof line, "x-amz-meta-chicane-sha256: %s", rq->meta_sha256);
    S3_ADD(line);
  }
  if (st->token_header) S3_ADD(st->token_header);
  if (rq->content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
    S3_ADD(line);
  }
  /* No "Expect:" or "Content-Type:" lines that remove curl's own headers: libcurl 7.88 signs
  ** such a line as an empty header that is never sent, and S3 would reject the signature. */
#undef S3_ADD
  return h;
}

static void s3_set_method(CURL *c, const s3_request *rq, s3_upload *up) {
  if (strcmp(rq->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (strcmp(rq->method, "PUT") == 0) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, s3_read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, up);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, s3_seek_cb);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->len);
  } else if (strcmp(rq->method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, up->len ? (const char *)up->data : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up->len);
  } else if (strcmp(rq->method, "DELETE") == 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  }
}

/* One attempt; *status is 0 when no HTTP response came back. */
static CURLcode s3_attempt(s3_store *st, const s3_request *rq, const char *url,
                           struct curl_slist *headers, s3_sink *sink, long *status, char *errbuf) {
  CURL *c = s3_take(st);
  if (!c) return CURLE_OUT_OF_MEMORY;
  s3_upload up = {rq->body, rq->body ? rq->body_len : 0, 0};
  errbuf[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, st->timeout_ms);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, st->sigv4);
  curl_easy_setopt(c, CURLOPT_USERNAME, st->access_key);
  curl_easy_setopt(c, CURLOPT_PASSWORD, st->secret_key);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s3_header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, sink);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3_write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
  s3_set_method(c, rq, &up);
  CURLcode cc = curl_easy_perform(c);
  *status = 0;
  if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  s3_give(st, c);
  return cc;
}

static void s3_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int s3_backoff_ms(int attempt) {
  long ms = S3_BACKOFF_MS;
  for (int i = 0; i < attempt && ms < S3_BACKOFF_MAX_MS; i++) ms *= 2;
  return ms < S3_BACKOFF_MAX_MS ? (int)ms : S3_BACKOFF_MAX_MS;
}

void s3_backoff(int attempt) {
  s3_sleep_ms(s3_backoff_ms(attempt));
}

static void s3_response_reset(s3_response *rs) {
  rs->status = 0;
  rs->len = 0;
  rs->meta_sha256[0] = '\0';
  rs->etag[0] = '\0';
}

void s3_response_free(s3_response *rs) {
  free(rs->body);
  memset(rs, 0, sizeof *rs);
}

/* Why an attempt failed, for the retry log and the final error. */
static void s3_reason(const s3_response *rs, CURLcode cc, const char *errbuf, char *out,
                      size_t cap) {
  if (cc != CURLE_OK) {
    snprintf(out, cap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    return;
  }
  char code[S3_XML_TEXT_MAX];
  s3_xml_find(rs->body, rs->len, "Code", code, sizeof code);
  snprintf(out, cap, "HTTP %ld%s%s", rs->status, code[0] ? " " : "", code);
}

static int s3_loop(s3_store *st, const s3_request *rq, const char *url, struct curl_slist *headers,
                   s3_response *rs, ch_error *err) {
  char errbuf[CURL_ERROR_SIZE], reason[CURL_ERROR_SIZE + 64];
  for (int attempt = 0;; attempt++) {
    s3_sink sink = {rs, strcmp(rq->method, "HEAD") == 0, 0};
    s3_response_reset(rs);
    CURLcode cc = s3_attempt(st, rq, url, headers, &sink, &rs->status, errbuf);
    if (sink.oom || cc == CURLE_OUT_OF_MEMORY)
      return ch_error_set(err, CH_ENOMEM, "storage s3: %s '%s' in %s: out of memory", rq->what,
                          rq->key, st->where);
    if (cc == CURLE_OK && rs->status < 500) return CH_OK;
    s3_reason(rs, cc, errbuf, reason, sizeof reason);
    if (attempt >= st->retries) {
      if (cc == CURLE_OK) return CH_OK; /* a 5xx: the caller reports it with the S3 error */
      return ch_error_set(err, CH_ECONN, "storage s3: %s '%s' in %s: %s: %s (gave up after %d %s)",
                          rq->what, rq->key, st->where, st->origin, reason, st->retries,
                          st->retries == 1 ? "retry" : "retries");
    }
    int delay = s3_backoff_ms(attempt);
    s3_log(st, CH_LOG_WARN, "%s '%s' in %s: endpoint %s: %s; retry %d of %d in %d ms", rq->what,
           rq->key, st->where, st->origin, reason, attempt + 1, st->retries, delay);
    s3_sleep_ms(delay);
  }
}

int s3_perform(s3_store *st, const s3_request *rq, s3_response *rs, ch_error *err) {
  memset(rs, 0, sizeof *rs);
  char payload_sha[S3_SHA256_HEX];
  if (rq->body_sha256)
    snprintf(payload_sha, sizeof payload_sha, "%s", rq->body_sha256);
  else if (s3_sha256_hex(rq->body, rq->body ? rq->body_len : 0, payload_sha) != CH_OK)
    return ch_error_set(err, CH_ENOMEM, "storage s3: sha256: out of memory");
  size_t n = strlen(st->origin) + strlen(st->bucket_path) + strlen(rq->path) +
             (rq->query ? strlen(rq->query) : 0) + 4;
  char *url = malloc(n);
  int ok = 0;
  struct curl_slist *headers = url ? s3_headers(st, rq, payload_sha, &ok) : NULL;
  int rc = CH_OK;
  if (!url || !ok) {
    rc = ch_error_set(err, CH_ENOMEM, "storage s3: out of memory");
  } else {
    /* The bucket itself is "/" in virtual-hosted style. */
    const char *path = rq->path[0] || st->bucket_path[0] ? rq->path : "/";
    snprintf(url, n, "%s%s%s%s%s", st->origin, st->bucket_path, path, rq->query ? "?" : "",
             rq->query ? rq->query : "");
    rc = s3_loop(st, rq, url, headers, rs, err);
  }
  curl_slist_free_all(headers);
  free(url);
  if (rc != CH_OK) s3_response_free(rs);
  return rc;
}

int s3_http_error(const s3_store *st, const s3_request *rq, const s3_response *rs, ch_error *err) {
  char code[S3_XML_TEXT_MAX], message[S3_XML_TEXT_MAX];
  s3_xml_find(rs->body, rs->len, "Code", code, sizeof code);
  s3_xml_find(rs->body, rs->len, "Message", message, sizeof message);
  int status = (int)rs->status;
  if (status == 404 && (!code[0] || strcmp(code, "NoSuchKey") == 0))
    return ch_error_set(err, CH_ENOTFOUND, "no object '%s' in %s (HTTP 404%s%s)", rq->key,
                        st->where, code[0] ? " " : "", code);
  int rc = status == 401 || status == 403 || strcmp(code, "NoSuchBucket") == 0 ? CH_EINVAL : CH_EIO;
  if (!code[0] && !message[0] && strcmp(rq->method, "HEAD") == 0)
    snprintf(message, sizeof message, "(a HEAD response carries no error body)");
  return ch_error_set(err, rc, "storage s3: %s '%s' in %s: HTTP %d%s%s%s%s", rq->what, rq->key,
                      st->where, status, code[0] ? " " : "", code, message[0] ? ": " : "", message);
}
