/* s3.c -- the S3 storage plugin: objects in an S3-compatible bucket, through libcurl's SigV4. */

/*
** USAGE
**
**   storage_s3.so, config JSON ("url" is required, every other key optional):
**
**     {"url": "s3://my-bucket/chicane/run-1", "region": "eu-west-1"}
**     {"url": "s3://models", "endpoint": "http://127.0.0.1:4568",
**      "access_key": "S3RVER", "secret_key": "S3RVER"}
**
**   url                  string, required. s3://bucket[/prefix]. Key "k" is the object
**                        "prefix/k"; the prefix follows the key rules below.
**   endpoint             string, default env CHICANE_S3_ENDPOINT, else env AWS_ENDPOINT_URL,
**                        else https://s3.REGION.amazonaws.com. http:// or https://, no query.
**   region               string, default env AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
**                        Signs the requests (SigV4 scope).
**   access_key           string, default env AWS_ACCESS_KEY_ID.
**   secret_key           string, default env AWS_SECRET_ACCESS_KEY. Missing credentials are
**                        CH_EINVAL at open. (s3rver accepts S3RVER / S3RVER.)
**   session_token        string, default env AWS_SESSION_TOKEN; sent as x-amz-security-token.
**   path_style           boolean, default true when an endpoint is given (by config or env),
**                        else false. true: ENDPOINT/bucket/key; false: bucket.HOST/key.
**   timeout_ms           integer 1..86400000, default 30000. Per HTTP request (each part of a
**                        multipart upload is one).
**   retries              integer 0..20, default 3. A request that cannot connect, times out or
**                        gets HTTP 5xx is sent again this many times, with backoff from 200 ms
**                        doubling (logged at WARN); then CH_ECONN (no connection) or CH_EIO.
**   multipart_threshold  integer 5242880..5368709120, default 16777216 (16 MiB). Larger objects
**                        go up as a multipart upload in parts of this size (more when 10000
**                        parts would not do).
**
** Keys: '/'-separated segments of [A-Za-z0-9._-], no empty segment, no "." or "..", no leading
** or trailing '/', at most 1024 bytes in all and 255 bytes per segment: the local plugin's
** rules and messages, so a key valid for one store is valid for the other.
**
** Behaviour:
**  - Requests are signed by libcurl (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3") with the payload's
**    SHA-256 (OpenSSL) in x-amz-content-sha256. Handles keep up to 8 idle connections; one
**    store may be used from many threads at once.
**  - put sends x-amz-meta-chicane-sha256 (hex SHA-256 of the whole object) with the object: one
**    PUT, or CreateMultipartUpload / UploadPart / CompleteMultipartUpload, all atomic in S3; a
**    failed multipart upload is aborted (best effort, logged when that fails too).
**  - get checks the bytes against x-amz-meta-chicane-sha256 when the object has it. A mismatch
**    is read again up to `retries` times (servers such as s3rver replace objects in place, so a
**    read racing a put can see a mix) and then is CH_ECORRUPT "object 'key' in s3://bucket/
**    prefix: checksum mismatch". A missing object is CH_ENOTFOUND "no object 'key' in ...".
**  - list runs ListObjectsV2 with the prefix and continuation tokens, skips objects whose names
**    are not valid keys, and reports keys relative to the url's prefix sorted by byte value
**    (sorted here, so servers that list in another order give the same result).
**  - remove sends HEAD first (absent: CH_ENOTFOUND), then DELETE.
**  - Errors name the operation, the key, s3://bucket/prefix, the HTTP status and the S3 error
**    Code and Message. 401/403 and NoSuchBucket are CH_EINVAL (credentials, permissions or
**    configuration); other HTTP errors CH_EIO.
**  - libxml2 is initialised at open: open the first store before starting threads that use
**    libxml2 themselves.
*/

#include "s3.h"

#include <chicane/plugin.h>
#include <chicane/plugin_util.h>

#include <cjson/cJSON.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S3_KEY_MAX       1024
#define S3_SEGMENT_MAX   255
#define S3_MAX_PARTS     10000
#define S3_MIN_PART      (5ull * 1024 * 1024)
#define S3_MAX_PART      (5ull * 1024 * 1024 * 1024)
#define S3_DEFAULT_PART  (16ull * 1024 * 1024)
#define S3_BUCKET_MAX    255
#define S3_REGION_MAX    63
#define S3_UPLOAD_ID_MAX 1024

static int s3_oom(ch_error *err) {
  return ch_error_set(err, CH_ENOMEM, "storage s3: out of memory");
}

/* ---- keys (the local plugin's rules and messages) -------------------------------------- */

static int s3_key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

static int s3_bad_key(ch_error *err, const char *key, const char *reason) {
  size_t n = strlen(key);
  return ch_error_set(err, CH_EINVAL, "invalid storage key '%.200s%s': %s", key,
                      n > 200 ? "..." : "", reason);
}

static const char *s3_segment_problem(const char *s, size_t n, int complete) {
  if (n == 0) return "empty segment";
  if (n > S3_SEGMENT_MAX) return "segment longer than 255 bytes";
  for (size_t i = 0; i < n; i++)
    if (!s3_key_char((unsigned char)s[i])) return "character outside [A-Za-z0-9._-] in a segment";
  if (complete && n == 1 && s[0] == '.') return "segment '.'";
  if (complete && n == 2 && s[0] == '.' && s[1] == '.') return "segment '..'";
  return NULL;
}

/* A key, or (as_prefix) a list prefix: empty, may end in '/' or inside a segment. */
static int s3_check_key(const char *key, int as_prefix, ch_error *err) {
  if (!key) return ch_error_set(err, CH_EINVAL, "invalid storage key: NULL");
  size_t len = strlen(key);
  if (len == 0 && !as_prefix) return s3_bad_key(err, key, "empty key");
  if (len > S3_KEY_MAX) return s3_bad_key(err, key, "longer than 1024 bytes");
  if (key[0] == '/') return s3_bad_key(err, key, "leading '/'");
  if (!as_prefix && key[len - 1] == '/') return s3_bad_key(err, key, "trailing '/'");
  const char *s = key;
  while (*s) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    const char *why = s3_segment_problem(s, n, slash || !as_prefix);
    if (why) return s3_bad_key(err, key, why);
    if (!slash) break;
    s = slash + 1;
  }
  return CH_OK;
}

/* "/" + prefix + key, malloc'd. */
static char *s3_object_path(const s3_store *st, const char *key) {
  size_t np = strlen(st->prefix), nk = strlen(key);
  char *p = malloc(np + nk + 2);
  if (!p) return NULL;
  p[0] = '/';
  memcpy(p + 1, st->prefix, np);
  memcpy(p + 1 + np, key, nk + 1);
  return p;
}

/* ---- configuration --------------------------------------------------------------------- */

typedef struct s3_config {
  char *url, *endpoint, *region, *access_key, *secret_key, *session_token;
  int path_style; /* -1: not given */
  int64_t timeout_ms, retries, multipart_threshold;
} s3_config;

static void s3_config_free(s3_config *c) {
  free(c->url);
  free(c->endpoint);
  free(c->region);
  free(c->access_key);
  free(c->secret_key);
  free(c->session_token);
}

static int s3_cfg_string(const cJSON *it, char **out, ch_error *err) {
  if (!cJSON_IsString(it) || strlen(it->valuestring) > 4096)
    return ch_error_set(err, CH_EINVAL, "storage s3: config key '%s' must be a string", it->string);
  free(*out);
  return (*out = strdup(it->valuestring)) ? CH_OK : s3_oom(err);
}

static int s3_cfg_int(const cJSON *it, double lo, double hi, int64_t *out, ch_error *err) {
  double v = cJSON_IsNumber(it) ? it->valuedouble : lo - 1;
  if (!(v >= lo && v <= hi) || (double)(int64_t)v != v)
    return ch_error_set(err, CH_EINVAL,
                        "storage s3: config key '%s' must be an integer in [%.0f, %.0f]",
                        it->string, lo, hi);
  *out = (int64_t)v;
  return CH_OK;
}

static int s3_cfg_key(const cJSON *it, s3_config *c, ch_error *err) {
  const char *k = it->string;
  if (strcmp(k, "url") == 0) return s3_cfg_string(it, &c->url, err);
  if (strcmp(k, "endpoint") == 0) return s3_cfg_string(it, &c->endpoint, err);
  if (strcmp(k, "region") == 0) return s3_cfg_string(it, &c->region, err);
  if (strcmp(k, "access_key") == 0) return s3_cfg_string(it, &c->access_key, err);
  if (strcmp(k, "secret_key") == 0) return s3_cfg_string(it, &c->secret_key, err);
  if (strcmp(k, "session_token") == 0) return s3_cfg_string(it, &c->session_token, err);
  if (strcmp(k, "timeout_ms") == 0) return s3_cfg_int(it, 1, 86400000, &c->timeout_ms, err);
  if (strcmp(k, "retries") == 0) return s3_cfg_int(it, 0, 20, &c->retries, err);
  if (strcmp(k, "multipart_threshold") == 0)
    return s3_cfg_int(it, (double)S3_MIN_PART, (double)S3_MAX_PART, &c->multipart_threshold, err);
  if (strcmp(k, "path_style") == 0) {
    if (!cJSON_IsBool(it))
      return ch_error_set(err, CH_EINVAL, "storage s3: config key 'path_style' must be a boolean");
    c->path_style = cJSON_IsTrue(it);
    return CH_OK;
  }
  return ch_error_set(err, CH_EINVAL, "storage s3: unknown config key '%s'", k);
}

static int s3_parse_config(const char *json, s3_config *c, ch_error *err) {
  memset(c, 0, sizeof *c);
  c->path_style = -1;
  c->timeout_ms = 30000;
  c->retries = 3;
  c->multipart_threshold = (int64_t)S3_DEFAULT_PART;
  if (!json) return ch_error_set(err, CH_EINVAL, "storage s3: config is NULL (needs 'url')");
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root)
    return ch_error_set(err, CH_EINVAL, "storage s3: config is not valid JSON (at byte %ld)",
                        end ? (long)(end - json) : 0L);
  int rc = cJSON_IsObject(root)
               ? CH_OK
               : ch_error_set(err, CH_EINVAL, "storage s3: config must be a JSON object");
  for (const cJSON *it = root->child; rc == CH_OK && it; it = it->next) rc = s3_cfg_key(it, c, err);
  cJSON_Delete(root);
  if (rc == CH_OK && !c->url)
    rc = ch_error_set(err, CH_EINVAL, "storage s3: config key 'url' is required");
  if (rc != CH_OK) s3_config_free(c);
  return rc;
}

/* The first of: the config's value, then each environment variable that is set and not empty. */
static int s3_default(char **value, const char *env1, const char *env2, ch_error *err) {
  if (*value) return CH_OK;
  const char *v = env1 ? getenv(env1) : NULL;
  if ((!v || !v[0]) && env2) v = getenv(env2);
  if (!v || !v[0]) return CH_OK;
  return (*value = strdup(v)) ? CH_OK : s3_oom(err);
}

static int s3_bad_url(ch_error *err, const char *url, const char *reason) {
  return ch_error_set(err, CH_EINVAL, "storage s3: bad url '%s': %s", url, reason);
}

/* s3://bucket[/prefix] into bucket, prefix ("" or ending in '/') and where. */
static int s3_parse_url(s3_store *st, const char *url, ch_error *err) {
  if (strncmp(url, "s3://", 5) != 0) return s3_bad_url(err, url, "it must start with s3://");
  const char *b = url + 5, *slash = strchr(b, '/');
  size_t nb = slash ? (size_t)(slash - b) : strlen(b);
  if (nb == 0) return s3_bad_url(err, url, "no bucket");
  if (nb > S3_BUCKET_MAX) return s3_bad_url(err, url, "bucket name longer than 255 bytes");
  for (size_t i = 0; i < nb; i++)
    if (!s3_key_char((unsigned char)b[i]))
      return s3_bad_url(err, url, "character outside [A-Za-z0-9._-] in the bucket name");
  const char *p = slash ? slash + 1 : "";
  size_t np = strlen(p);
  while (np > 0 && p[np - 1] == '/') np--; /* "s3://b/dir/" is "s3://b/dir" */
  char *prefix = strndup(p, np);
  if (!prefix) return s3_oom(err);
  ch_error inner = {0};
  if (np > 0 && s3_check_key(prefix, 0, &inner) != CH_OK) {
    int rc = s3_bad_url(err, url, inner.message);
    free(prefix);
    return rc;
  }
  st->bucket = strndup(b, nb);
  st->prefix = malloc(np + 2);
  st->where = malloc(nb + np + 8);
  if (!st->bucket || !st->prefix || !st->where) {
    free(prefix);
    return s3_oom(err);
  }
  snprintf(st->prefix, np + 2, "%s%s", prefix, np ? "/" : "");
  snprintf(st->where, nb + np + 8, "s3://%s%s%s", st->bucket, np ? "/" : "", prefix);
  free(prefix);
  return CH_OK;
}

/* origin and bucket_path from the endpoint and the addressing style. */
static int s3_set_origin(s3_store *st, const char *endpoint, int path_style, ch_error *err) {
  const char *rest = strncmp(endpoint, "https://", 8) == 0  ? endpoint + 8
                     : strncmp(endpoint, "http://", 7) == 0 ? endpoint + 7
                                                            : NULL;
  if (!rest || !rest[0] || strpbrk(endpoint, "?# "))
    return ch_error_set(err, CH_EINVAL,
                        "storage s3: bad endpoint '%s': want http(s)://host[:port][/path]",
                        endpoint);
  size_t scheme = (size_t)(rest - endpoint), n = strlen(endpoint);
  while (n > scheme && endpoint[n - 1] == '/') n--;
  size_t cap = n + strlen(st->bucket) + 4;
  if (!(st->origin = malloc(cap)) || !(st->bucket_path = malloc(strlen(st->bucket) + 2)))
    return s3_oom(err);
  if (path_style) {
    snprintf(st->origin, cap, "%.*s", (int)n, endpoint);
    snprintf(st->bucket_path, strlen(st->bucket) + 2, "/%s", st->bucket);
  } else {
    snprintf(st->origin, cap, "%.*s%s.%.*s", (int)scheme, endpoint, st->bucket, (int)(n - scheme),
             rest);
    st->bucket_path[0] = '\0';
  }
  return CH_OK;
}

static int s3_check_region(const char *region, ch_error *err) {
  size_t n = strlen(region);
  int ok = n > 0 && n <= S3_REGION_MAX;
  for (size_t i = 0; ok && i < n; i++)
    ok = s3_key_char((unsigned char)region[i]) && region[i] != '.';
  return ok ? CH_OK
            : ch_error_set(err, CH_EINVAL, "storage s3: bad region '%s': want [A-Za-z0-9_-]+",
                           region);
}

static int s3_set_credentials(s3_store *st, s3_config *c, ch_error *err) {
  int rc = s3_default(&c->access_key, "AWS_ACCESS_KEY_ID", NULL, err);
  if (rc == CH_OK) rc = s3_default(&c->secret_key, "AWS_SECRET_ACCESS_KEY", NULL, err);
  if (rc == CH_OK) rc = s3_default(&c->session_token, "AWS_SESSION_TOKEN", NULL, err);
  if (rc != CH_OK) return rc;
  if (!c->access_key || !c->secret_key || !c->access_key[0])
    return ch_error_set(err, CH_EINVAL,
                        "storage s3: no credentials for %s: set config keys 'access_key' and "
                        "'secret_key', or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                        st->where);
  st->access_key = c->access_key;
  st->secret_key = c->secret_key;
  c->access_key = c->secret_key = NULL;
  if (c->session_token && c->session_token[0]) {
    size_t n = strlen(c->session_token) + 32;
    if (!(st->token_header = malloc(n))) return s3_oom(err);
    snprintf(st->token_header, n, "x-amz-security-token: %s", c->session_token);
  }
  return CH_OK;
}

static int s3_apply_config(s3_store *st, s3_config *c, ch_error *err) {
  int rc = s3_parse_url(st, c->url, err);
  if (rc == CH_OK) rc = s3_default(&c->region, "AWS_REGION", "AWS_DEFAULT_REGION", err);
  if (rc == CH_OK && !c->region && !(c->region = strdup("us-east-1"))) rc = s3_oom(err);
  if (rc == CH_OK) rc = s3_check_region(c->region, err);
  if (rc != CH_OK) return rc;
  size_t n = strlen(c->region) + 32;
  if (!(st->sigv4 = malloc(n))) return s3_oom(err);
  snprintf(st->sigv4, n, "aws:amz:%s:s3", c->region);
  int given = c->endpoint != NULL;
  rc = s3_default(&c->endpoint, "CHICANE_S3_ENDPOINT", "AWS_ENDPOINT_URL", err);
  if (rc != CH_OK) return rc;
  given = given || c->endpoint != NULL;
  char aws[128];
  snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com", c->region);
  rc = s3_set_origin(st, c->endpoint ? c->endpoint : aws,
                     c->path_style >= 0 ? c->path_style : given, err);
  if (rc == CH_OK) rc = s3_set_credentials(st, c, err);
  st->timeout_ms = (long)c->timeout_ms;
  st->retries = (int)c->retries;
  st->part_size = (size_t)c->multipart_threshold;
  return rc;
}

/* ---- handle lifetime ------------------------------------------------------------------- */

static void s3_free_store(s3_store *st) {
  for (int i = 0; i < st->pool_n; i++) curl_easy_cleanup(st->pool[i]);
  if (st->lock_ready) pthread_mutex_destroy(&st->pool_lock);
  if (st->curl_ready) curl_global_cleanup();
  free(st->bucket);
  free(st->prefix);
  free(st->where);
  free(st->origin);
  free(st->bucket_path);
  free(st->sigv4);
  free(st->access_key);
  free(st->secret_key);
  free(st->token_header);
  free(st);
}

static int s3_open(const char *config_json, const ch_host_api *host, void **out, ch_error *err) {
  ch_error_clear(err);
  if (!out) return ch_error_set(err, CH_EINVAL, "storage s3: open: out is NULL");
  *out = NULL;
  s3_config cfg;
  int rc = s3_parse_config(config_json, &cfg, err);
  if (rc != CH_OK) return rc;
  s3_store *st = calloc(1, sizeof *st);
  if (!st) {
    s3_config_free(&cfg);
    return s3_oom(err);
  }
  st->host = host;
  rc = s3_apply_config(st, &cfg, err);
  s3_config_free(&cfg);
  if (rc == CH_OK && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    rc = ch_error_set(err, CH_ENOMEM, "storage s3: libcurl would not initialise");
  st->curl_ready = rc == CH_OK;
  if (rc == CH_OK && pthread_mutex_init(&st->pool_lock, NULL) != 0)
    rc = ch_error_set(err, CH_ENOMEM, "storage s3: cannot create a mutex");
  st->lock_ready = rc == CH_OK;
  if (rc != CH_OK) {
    s3_free_store(st);
    return rc;
  }
  xmlInitParser();
  *out = st;
  return CH_OK;
}

static void s3_close(void *h) {
  if (h) s3_free_store(h);
}

/* ---- put ------------------------------------------------------------------------------- */

/* Run rq and turn any status other than `want` into the S3 error. */
static int s3_expect(s3_store *st, const s3_request *rq, long want, s3_response *rs,
                     ch_error *err) {
  int rc = s3_perform(st, rq, rs, err);
  if (rc == CH_OK && rs->status != want) {
    rc = s3_http_error(st, rq, rs, err);
    s3_response_free(rs);
  }
  return rc;
}

static int s3_put_single(s3_store *st, const char *key, const char *path, const void *data,
                         size_t len, const char *sha, ch_error *err) {
  s3_request rq = {"PUT", path, NULL, data, len, sha, "application/octet-stream", sha, "put", key};
  s3_response rs;
  int rc = s3_expect(st, &rq, 200, &rs, err);
  if (rc == CH_OK) s3_response_free(&rs);
  return rc;
}

static void s3_abort_upload(s3_store *st, const char *key, const char *path, const char *id) {
  char query[S3_UPLOAD_ID_MAX * 3 + 32] = "";
  s3_query_add(query, sizeof query, "uploadId", id);
  s3_request rq = {"DELETE", path, query, NULL, 0, NULL, NULL, NULL, "abort multipart upload", key};
  s3_response rs;
  ch_error err = {0};
  int rc = s3_perform(st, &rq, &rs, &err);
  if (rc == CH_OK && rs.status != 204 && rs.status != 200) rc = s3_http_error(st, &rq, &rs, &err);
  if (rc != CH_OK)
    s3_log(st, CH_LOG_WARN, "%s; upload %s stays until a lifecycle rule removes it", err.message,
           id);
  s3_response_free(&rs);
}

static int s3_start_upload(s3_store *st, const char *key, const char *path, const char *sha,
                           char *id, ch_error *err) {
  char query[32] = "";
  s3_query_add(query, sizeof query, "uploads", "");
  s3_request rq = {"POST",
                   path,
                   query,
                   NULL,
                   0,
                   NULL,
                   "application/octet-stream",
                   sha,
                   "put (start multipart upload)",
                   key};
  s3_response rs;
  int rc = s3_expect(st, &rq, 200, &rs, err);
  if (rc != CH_OK) return rc;
  if (!s3_xml_find(rs.body, rs.len, "UploadId", id, S3_UPLOAD_ID_MAX) || !id[0])
    rc = ch_error_set(err, CH_EIO, "storage s3: put '%s' in %s: no UploadId in the reply", key,
                      st->where);
  s3_response_free(&rs);
  return rc;
}

static int s3_put_part(s3_store *st, const char *key, const char *path, const char *id, int number,
                       const unsigned char *data, size_t len, char *etag, ch_error *err) {
  char query[S3_UPLOAD_ID_MAX * 3 + 64] = "", num[16];
  snprintf(num, sizeof num, "%d", number);
  s3_query_add(query, sizeof query, "partNumber", num);
  s3_query_add(query, sizeof query, "uploadId", id);
  s3_request rq = {
      "PUT", path, query, data, len, NULL, "application/octet-stream", NULL, "put (upload part)",
      key};
  s3_response rs;
  int rc = s3_expect(st, &rq, 200, &rs, err);
  if (rc != CH_OK) return rc;
  if (!rs.etag[0] || strpbrk(rs.etag, "<>&"))
    rc = ch_error_set(err, CH_EIO, "storage s3: put '%s' in %s: part %d came back without an ETag",
                      key, st->where, number);
  else
    snprintf(etag, 128, "%s", rs.etag);
  s3_response_free(&rs);
  return rc;
}

static int s3_finish_upload(s3_store *st, const char *key, const char *path, const char *id,
                            char (*etags)[128], int parts, ch_error *err) {
  size_t cap = (size_t)parts * 192 + 128, n = 0;
  char *xml = malloc(cap);
  if (!xml) return s3_oom(err);
  n += (size_t)snprintf(xml, cap, "<CompleteMultipartUpload>");
  for (int i = 0; i < parts; i++)
    n += (size_t)snprintf(xml + n, cap - n,
                          "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i + 1,
                          etags[i]);
  n += (size_t)snprintf(xml + n, cap - n, "</CompleteMultipartUpload>");
  char query[S3_UPLOAD_ID_MAX * 3 + 32] = "";
  s3_query_add(query, sizeof query, "uploadId", id);
  s3_request rq = {
      "POST", path, query, xml, n, NULL, "application/xml", NULL, "put (complete multipart upload)",
      key};
  s3_response rs;
  int rc = s3_expect(st, &rq, 200, &rs, err);
  char code[8];
  /* S3 may answer 200 and still fail the completion: the body is then an <Error>. */
  if (rc == CH_OK && s3_xml_find(rs.body, rs.len, "Code", code, sizeof code))
    rc = s3_http_error(st, &rq, &rs, err);
  s3_response_free(&rs); /* s3_perform initialised it whatever happened */
  free(xml);
  return rc;
}

static int s3_put_multipart(s3_store *st, const char *key, const char *path,
                            const unsigned char *data, size_t len, const char *sha, ch_error *err) {
  size_t part = st->part_size;
  if ((len + part - 1) / part > S3_MAX_PARTS) part = (len + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
  int parts = (int)((len + part - 1) / part);
  char id[S3_UPLOAD_ID_MAX];
  int rc = s3_start_upload(st, key, path, sha, id, err);
  if (rc != CH_OK) return rc;
  char(*etags)[128] = calloc((size_t)parts, sizeof *etags);
  if (!etags) rc = s3_oom(err);
  for (int i = 0; rc == CH_OK && i < parts; i++) {
    size_t off = (size_t)i * part, n = len - off < part ? len - off : part;
    rc = s3_put_part(st, key, path, id, i + 1, data + off, n, etags[i], err);
  }
  if (rc == CH_OK) rc = s3_finish_upload(st, key, path, id, etags, parts, err);
  if (rc != CH_OK) s3_abort_upload(st, key, path, id);
  free(etags);
  return rc;
}

static int s3_put(void *h, const char *key, const void *data, size_t len, ch_error *err) {
  s3_store *st = h;
  int rc = s3_check_key(key, 0, err);
  if (rc != CH_OK) return rc;
  if (!data && len > 0)
    return ch_error_set(err, CH_EINVAL, "storage s3: put '%s': data is NULL", key);
  char sha[S3_SHA256_HEX];
  if (s3_sha256_hex(data, len, sha) != CH_OK) return s3_oom(err);
  char *path = s3_object_path(st, key);
  if (!path) return s3_oom(err);
  rc = len > st->part_size ? s3_put_multipart(st, key, path, data, len, sha, err)
                           : s3_put_single(st, key, path, data, len, sha, err);
  free(path);
  return rc;
}

/* ---- get ------------------------------------------------------------------------------- */

/* One GET; 1 when the bytes failed their checksum (and *data is unset). */
static int s3_get_once(s3_store *st, const s3_request *rq, void **data, size_t *len, char *got_sha,
                       char *want_sha, ch_error *err) {
  s3_response rs;
  int rc = s3_expect(st, rq, 200, &rs, err);
  if (rc != CH_OK) return rc;
  if (rs.meta_sha256[0]) {
    if (s3_sha256_hex(rs.body, rs.len, got_sha) != CH_OK) {
      s3_response_free(&rs);
      return s3_oom(err);
    }
    snprintf(want_sha, S3_SHA256_HEX, "%s", rs.meta_sha256);
    if (strcasecmp(got_sha, want_sha) != 0) {
      s3_response_free(&rs);
      return 1;
    }
  }
  if (!rs.body && !(rs.body = malloc(1))) return s3_oom(err); /* empty object: not NULL */
  *data = rs.body;
  *len = rs.len;
  return CH_OK;
}

static int s3_get(void *h, const char *key, void **data, size_t *len, ch_error *err) {
  s3_store *st = h;
  int rc = s3_check_key(key, 0, err);
  if (rc != CH_OK) return rc;
  if (!data || !len) return ch_error_set(err, CH_EINVAL, "storage s3: get: NULL argument");
  *data = NULL;
  *len = 0;
  char *path = s3_object_path(st, key);
  if (!path) return s3_oom(err);
  s3_request rq = {"GET", path, NULL, NULL, 0, NULL, NULL, NULL, "get", key};
  char got[S3_SHA256_HEX], want[S3_SHA256_HEX];
  for (int attempt = 0;; attempt++) {
    rc = s3_get_once(st, &rq, data, len, got, want, err);
    if (rc != 1) break;
    if (attempt >= st->retries) {
      rc = ch_error_set(err, CH_ECORRUPT,
                        "storage s3: object '%s' in %s: checksum mismatch (x-amz-meta-chicane-"
                        "sha256 %.16s..., the bytes read hash to %.16s...)",
                        key, st->where, want, got);
      break;
    }
    s3_log(st, CH_LOG_WARN, "object '%s' in %s: checksum mismatch; reading again (%d of %d)", key,
           st->where, attempt + 1, st->retries);
    s3_backoff(attempt);
  }
  free(path);
  return rc;
}

static void s3_free_data(void *h, void *data) {
  (void)h;
  free(data);
}

/* ---- list ------------------------------------------------------------------------------ */

typedef struct s3_entry {
  char *key; /* relative to the store's prefix */
  uint64_t size;
} s3_entry;

typedef struct s3_listing {
  s3_entry *v;
  size_t n, cap;
  char *token; /* NextContinuationToken, or NULL when the listing is complete */
} s3_listing;

static void s3_listing_free(s3_listing *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].key);
  free(l->v);
  free(l->token);
}

static char *s3_node_text(const xmlNode *node) {
  xmlChar *t = node ? xmlNodeGetContent(node) : NULL;
  char *s = t ? strdup((const char *)t) : NULL;
  xmlFree(t);
  return s;
}

static const xmlNode *s3_child(const xmlNode *node, const char *name) {
  for (const xmlNode *c = node ? node->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0) return c;
  return NULL;
}

/* Keep one <Contents> if its name is under the listed prefix and a valid key. */
static int s3_listing_add(const s3_store *st, s3_listing *l, const xmlNode *contents,
                          const char *full) {
  char *name = s3_node_text(s3_child(contents, "Key"));
  char *size = s3_node_text(s3_child(contents, "Size"));
  size_t np = strlen(st->prefix);
  int keep =
      name && strncmp(name, full, strlen(full)) == 0 && s3_check_key(name + np, 0, NULL) == 0;
  int rc = CH_OK;
  if (keep && l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    s3_entry *v = realloc(l->v, cap * sizeof *v);
    if (v)
      l->v = v, l->cap = cap;
    else
      rc = CH_ENOMEM;
  }
  if (keep && rc == CH_OK) {
    if (!(l->v[l->n].key = strdup(name + np)))
      rc = CH_ENOMEM;
    else
      l->v[l->n++].size = size ? strtoull(size, NULL, 10) : 0;
  }
  free(name);
  free(size);
  return rc;
}

/* Parse one ListObjectsV2 page into l (appending) and l->token. */
static int s3_parse_page(const s3_store *st, const s3_response *rs, s3_listing *l, const char *full,
                         const char *prefix, ch_error *err) {
  xmlDoc *doc = rs->len < INT32_MAX
                    ? xmlReadMemory((const char *)rs->body, (int)rs->len, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
                    : NULL;
  const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!root || strcmp((const char *)root->name, "ListBucketResult") != 0) {
    xmlFreeDoc(doc);
    return ch_error_set(err, CH_EIO, "storage s3: list '%s' in %s: the reply is not a listing",
                        prefix, st->where);
  }
  int rc = CH_OK;
  for (const xmlNode *c = root->children; rc == CH_OK && c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "Contents") == 0)
      rc = s3_listing_add(st, l, c, full);
  char *truncated = s3_node_text(s3_child(root, "IsTruncated"));
  free(l->token);
  l->token = truncated && strcmp(truncated, "true") == 0
                 ? s3_node_text(s3_child(root, "NextContinuationToken"))
                 : NULL;
  if (rc == CH_OK && truncated && strcmp(truncated, "true") == 0 && !l->token)
    rc = ch_error_set(err, CH_EIO,
                      "storage s3: list '%s' in %s: truncated listing without a continuation "
                      "token",
                      prefix, st->where);
  else if (rc == CH_ENOMEM)
    rc = s3_oom(err);
  free(truncated);
  xmlFreeDoc(doc);
  return rc;
}

static int s3_list_page(s3_store *st, const char *full, const char *prefix, s3_listing *l,
                        ch_error *err) {
  size_t cap = 3 * (strlen(full) + (l->token ? strlen(l->token) : 0)) + 64;
  char *query = malloc(cap);
  if (!query) return s3_oom(err);
  query[0] = '\0';
  if (l->token) s3_query_add(query, cap, "continuation-token", l->token);
  s3_query_add(query, cap, "list-type", "2");
  s3_query_add(query, cap, "prefix", full);
  s3_request rq = {"GET", "", query, NULL, 0, NULL, NULL, NULL, "list", prefix};
  s3_response rs;
  int rc = s3_expect(st, &rq, 200, &rs, err);
  if (rc == CH_OK) {
    rc = s3_parse_page(st, &rs, l, full, prefix, err);
    s3_response_free(&rs);
  }
  free(query);
  return rc;
}

static int s3_entry_cmp(const void *a, const void *b) {
  return strcmp(((const s3_entry *)a)->key, ((const s3_entry *)b)->key);
}

static int s3_list(void *h, const char *prefix, ch_storage_list_fn fn, void *user, ch_error *err) {
  s3_store *st = h;
  if (!fn) return ch_error_set(err, CH_EINVAL, "storage s3: list: callback is NULL");
  if (!prefix) prefix = "";
  int rc = s3_check_key(prefix, 1, err);
  if (rc != CH_OK) return rc;
  size_t np = strlen(st->prefix), nq = strlen(prefix);
  char *full = malloc(np + nq + 1);
  if (!full) return s3_oom(err);
  memcpy(full, st->prefix, np);
  memcpy(full + np, prefix, nq + 1);
  s3_listing l = {NULL, 0, 0, NULL};
  do rc = s3_list_page(st, full, prefix, &l, err);
  while (rc == CH_OK && l.token);
  /* strcmp compares as unsigned char: byte order, as the contract says. */
  if (rc == CH_OK && l.n > 1) qsort(l.v, l.n, sizeof *l.v, s3_entry_cmp);
  for (size_t i = 0; rc == CH_OK && i < l.n; i++)
    if (fn(l.v[i].key, l.v[i].size, user) != 0) break;
  s3_listing_free(&l);
  free(full);
  return rc;
}

/* ---- remove ---------------------------------------------------------------------------- */

static int s3_remove(void *h, const char *key, ch_error *err) {
  s3_store *st = h;
  int rc = s3_check_key(key, 0, err);
  if (rc != CH_OK) return rc;
  char *path = s3_object_path(st, key);
  if (!path) return s3_oom(err);
  /* DELETE of an absent key succeeds in S3, so HEAD tells CH_ENOTFOUND apart. */
  s3_request head = {"HEAD", path, NULL, NULL, 0, NULL, NULL, NULL, "remove", key};
  s3_request del = {"DELETE", path, NULL, NULL, 0, NULL, NULL, NULL, "remove", key};
  s3_response rs;
  rc = s3_expect(st, &head, 200, &rs, err);
  if (rc == CH_OK) {
    s3_response_free(&rs);
    rc = s3_perform(st, &del, &rs, err);
    if (rc == CH_OK && rs.status != 204 && rs.status != 200) rc = s3_http_error(st, &del, &rs, err);
    s3_response_free(&rs);
  }
  free(path);
  return rc;
}

static const ch_storage_vtable s3_vtable = {
    {CH_PLUGIN_ABI_VERSION, sizeof(ch_storage_vtable), CH_PLUGIN_STORAGE, 0, "s3", "1.0.0",
     "objects in an S3-compatible bucket (SigV4 via libcurl, checksummed, multipart)"},
    s3_open,
    s3_close,
    s3_put,
    s3_get,
    s3_free_data,
    s3_list,
    s3_remove,
};

CH_PLUGIN_EXPORT const ch_plugin_header *chicane_plugin_entry(const ch_host_api *host) {
  if (host && host->abi_version != CH_PLUGIN_ABI_VERSION) return NULL;
  return &s3_vtable.header;
}
