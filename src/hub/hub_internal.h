/* Internal HTTP layer of the Hub client (hub_http.c), used by hub.c. */
#ifndef MP_HUB_INTERNAL_H
#define MP_HUB_INTERNAL_H
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "core/strbuf.h"
#include "hub/hub.h"

enum {
  HH_LOCATION,
  HH_ETAG,
  HH_LINKED_ETAG,
  HH_LINKED_SIZE,
  HH_CONTENT_LENGTH,
  HH_REPO_COMMIT,
  HH_ERROR_CODE,
  HH_ERROR_MESSAGE,
  HH_RETRY_AFTER,
  HH_LINK,
  HH_CONTENT_RANGE,
  HH_N
};

typedef struct hh_resp {
  long status;   /* of the last hop */
  char *h[HH_N]; /* headers of the last hop (NULL when absent) */
  mp_sb body;    /* non-2xx bodies, or every body when no sink is given (bounded) */
  int curl_code; /* CURLcode */
  char curl_err[CURL_ERROR_SIZE];
  char *url; /* URL of the last hop */
} hh_resp;

typedef struct hh_conn {
  CURL *curl;
  const mp_hub_settings *s;
  char *endpoint_origin; /* "scheme://host:port" */
} hh_conn;

/* Receives 2xx body bytes; returns 0 to abort the transfer (CURLE_WRITE_ERROR). */
typedef int (*hh_sink)(void *user, const char *data, size_t n, const hh_resp *r);

enum { HH_FOLLOW_NONE, HH_FOLLOW_RELATIVE, HH_FOLLOW_ALL };

mp_status hh_init(hh_conn *c, const mp_hub_settings *s);
void hh_free(hh_conn *c);
void hh_resp_reset(hh_resp *r);
void hh_resp_free(hh_resp *r);
/* One request. follow: HH_FOLLOW_RELATIVE follows only relative Locations (huggingface_hub's HEAD).
 * range_from > 0 sends "Range: bytes=N-". body_max bounds collected bodies (0 = 1 MiB). */
void hh_perform(hh_conn *c, const char *method, const char *url, int follow, long timeout, int64_t range_from,
                hh_sink sink, void *user, size_t body_max, hh_resp *r);
/* A request body (POST/PUT): `data`/`len` from memory, or `length` bytes of the file `fd` from
 * `offset` when fd >= 0 (read with pread, so a retry sends it again from the start). */
typedef struct hh_body {
  const char *data;
  size_t len;
  int fd;
  int64_t offset, length;
  const char *content_type;                        /* NULL: none */
  const char *accept;                              /* NULL: none */
  void (*on_sent)(void *user, int64_t bytes_sent); /* upload progress of this request (may be NULL) */
  void *sent_user;
} hh_body;

/* One request with a body; redirects are not followed (a 3xx is an answer). The Authorization
 * header goes only to the endpoint's origin (presigned storage URLs never see the token).
 * Every answer body is collected into r->body (up to body_max; 0 = 1 MiB). */
void hh_perform_body(hh_conn *c, const char *method, const char *url, const hh_body *body, long timeout,
                     size_t body_max, hh_resp *r);
/* 408/429/5xx or a broken transfer (timeout, connection dropped mid-body). */
int hh_retryable(const hh_resp *r);
/* Sleeps before retry `attempt` (0-based): Retry-After seconds when given (capped at 60), else
 * 0.5 s * 2^attempt capped at 8 s. */
void hh_backoff(int attempt, const hh_resp *r);
/* Sets the error for a failed response (X-Error-Code, 401/403/404, transport errors). */
mp_status hh_error(const hh_conn *c, const hh_resp *r, const char *url, const char *repo_type, const char *repo_id,
                   const char *revision);
/* malloc'd "scheme://host:port" of a URL (NULL if unparsable). */
char *hh_origin(const char *url);
char *hh_resolve_url(const char *base, const char *loc);
int hh_same_origin_as_endpoint(const hh_conn *c, const char *url);
#endif
