/* s3.h -- internals of the s3 storage plugin: the store handle and its signed HTTP requests. */
#ifndef CHICANE_S3_H
#define CHICANE_S3_H

#include <chicane/plugin.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define S3_POOL_MAX   8  /* idle curl handles kept for reuse (their connections stay open) */
#define S3_SHA256_HEX 65 /* 64 hex digits and a NUL */

typedef struct s3_store {
  char *bucket;
  char *prefix;      /* "" or "dir/sub/" (always ending in '/'), prepended to every key */
  char *where;       /* "s3://bucket" or "s3://bucket/dir/sub", for messages */
  char *origin;      /* scheme://host[:port] requests go to */
  char *bucket_path; /* "/bucket" (path style) or "" (virtual-hosted style) */
  char *sigv4;       /* "aws:amz:REGION:s3" for CURLOPT_AWS_SIGV4 */
  char *access_key, *secret_key;
  char *token_header; /* "x-amz-security-token: ..." or NULL */
  long timeout_ms;
  int retries;
  size_t part_size; /* multipart_threshold */
  const ch_host_api *host;
  pthread_mutex_t pool_lock;
  CURL *pool[S3_POOL_MAX];
  int pool_n;
  int curl_ready, lock_ready;
} s3_store;

typedef struct s3_request {
  const char *method; /* GET, HEAD, PUT, POST or DELETE */
  const char *path;   /* after the bucket: "" (the bucket) or "/" + prefix + key */
  const char *query;  /* canonical (sorted, encoded) query string, or NULL */
  const void *body;   /* PUT and POST only */
  size_t body_len;
  const char *body_sha256;  /* hex SHA-256 of the body if the caller has it, else NULL */
  const char *content_type; /* or NULL */
  const char *meta_sha256;  /* value of x-amz-meta-chicane-sha256 to send, or NULL */
  const char *what;         /* for messages: "put", "get", ... */
  const char *key;          /* for messages: the key, or a prefix */
} s3_request;

typedef struct s3_response {
  long status;
  unsigned char *body;
  size_t len, cap;
  char meta_sha256[S3_SHA256_HEX]; /* x-amz-meta-chicane-sha256, "" when absent */
  char etag[128];
} s3_response;

/* Hex SHA-256 of data (OpenSSL EVP) into hex (65 bytes). */
int s3_sha256_hex(const void *data, size_t len, char *hex);

/* Perform a signed request. Connection errors and HTTP 5xx are retried `retries` times with
** backoff (each logged at WARN); CH_OK means an HTTP response is in rs (any status: 5xx only
** once the retries are spent), CH_ECONN that the server could not be reached. Free rs with
** s3_response_free. */
int s3_perform(s3_store *st, const s3_request *rq, s3_response *rs, ch_error *err);
void s3_response_free(s3_response *rs);

/* Sleep before retry number attempt+1: 200 ms doubling, at most 5 s. */
void s3_backoff(int attempt);

/* The error for a response that is not a success: the status, the S3 error Code and Message
** from the XML body, the key and where. 404 NoSuchKey (or a bodiless 404) is CH_ENOTFOUND,
** 401/403 and NoSuchBucket are CH_EINVAL (configuration), anything else CH_EIO. */
int s3_http_error(const s3_store *st, const s3_request *rq, const s3_response *rs, ch_error *err);

/* Text of the first element named `name` under the root of an XML body, into out (cap bytes);
** 1 found, 0 not. Used for UploadId and errors. */
int s3_xml_find(const unsigned char *xml, size_t len, const char *name, char *out, size_t cap);

/* Append "name=value" to a query in canonical SigV4 form (value URI-encoded). */
void s3_query_add(char *q, size_t cap, const char *name, const char *value);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void s3_log(const s3_store *st, int level, const char *fmt, ...);

#endif
