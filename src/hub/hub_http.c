/* HTTP layer of the Hub client: one libcurl easy handle per thread, the response headers the
 * Hub protocol reads, redirects followed by hand (so the Authorization header is sent only to
 * the endpoint's origin), timeouts as "no data for N seconds", and error mapping of the Hub's
 * X-Error-Code answers. */
#include "core/clock.h"
#include "hub/hub_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/error.h"

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static int g_curl_ok;
static void curl_init_once(void) { g_curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

static const char *const k_header_names[HH_N] = {
    "location",       "etag",          "x-linked-etag", "x-linked-size",
    "content-length", "x-repo-commit", "x-error-code",  "x-error-message",
    "retry-after",    "link",          "content-range",
};

mp_status hh_init(hh_conn *c, const mp_hub_settings *s) {
  memset(c, 0, sizeof *c);
  pthread_once(&g_curl_once, curl_init_once);
  if (!g_curl_ok) return mp_err(MP_ERR_INTERNAL, "libcurl initialisation failed");
  c->curl = curl_easy_init();
  if (!c->curl) return mp_err(MP_ERR_NOMEM, "libcurl: cannot create a handle");
  c->s = s;
  c->endpoint_origin = hh_origin(s->endpoint);
  if (!c->endpoint_origin) {
    curl_easy_cleanup(c->curl);
    c->curl = NULL;
    return mp_err(MP_ERR_INVALID_ARG, "HF_ENDPOINT '%s' is not a valid URL", s->endpoint);
  }
  return MP_OK;
}

void hh_free(hh_conn *c) {
  if (c->curl) curl_easy_cleanup(c->curl);
  free(c->endpoint_origin);
  memset(c, 0, sizeof *c);
}

void hh_resp_reset(hh_resp *r) {
  for (int i = 0; i < HH_N; i++) {
    free(r->h[i]);
    r->h[i] = NULL;
  }
  mp_sb_clear(&r->body);
  r->status = 0;
}

void hh_resp_free(hh_resp *r) {
  hh_resp_reset(r);
  mp_sb_free(&r->body);
  free(r->url);
  r->url = NULL;
}

char *hh_origin(const char *url) {
  CURLU *u = curl_url();
  if (!u) return NULL;
  char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "%s://%s:%s", scheme, host, port);
    for (size_t i = 0; i < sb.len; i++)
      sb.buf[i] = (char)tolower((unsigned char)sb.buf[i]);
    out = sb.oom ? NULL : mp_sb_steal(&sb);
    mp_sb_free(&sb);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

char *hh_resolve_url(const char *base, const char *loc) {
  CURLU *u = curl_url();
  if (!u) return NULL;
  char *s = NULL, *out = NULL;
  if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK && curl_url_set(u, CURLUPART_URL, loc, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
    out = strdup(s);
  curl_free(s);
  curl_url_cleanup(u);
  return out;
}

int hh_same_origin_as_endpoint(const hh_conn *c, const char *url) {
  char *o = hh_origin(url);
  int same = o && strcmp(o, c->endpoint_origin) == 0;
  free(o);
  return same;
}

/* A Location without scheme and host ("/x", "x", "?q") is relative (urlparse netloc == ""). */
static int is_relative_location(const char *loc) {
  if (loc[0] == '/' && loc[1] == '/') return 0;
  const char *p = loc;
  if (isalpha((unsigned char)*p)) {
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
      p++;
    if (*p == ':' && p[1] == '/' && p[2] == '/') return 0;
  }
  return 1;
}

typedef struct cb_ctx {
  hh_resp *r;
  const hh_body *body; /* request body (uploads), NULL for GET/HEAD */
  int64_t body_pos;
  hh_sink sink;
  void *user;
  size_t body_max;
  int body_overflow;
  long timeout;        /* seconds without a received byte */
  curl_off_t last_now; /* bytes received at last_t */
  double last_t;
  int stalled;
} cb_ctx;

/* requests' read timeout: no byte for `timeout` seconds ends the transfer (libcurl's low-speed
 * limit averages over a window, so a server that sends a burst and then stalls would pass it). */
static int on_progress(void *u, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)ultotal;
  cb_ctx *x = u;
  double t = mp_now_s();
  if (x->body && x->body->on_sent) x->body->on_sent(x->body->sent_user, (int64_t)ulnow);
  if (dlnow + ulnow != x->last_now) { /* bytes moving in either direction keep the transfer alive */
    x->last_now = dlnow + ulnow;
    x->last_t = t;
    return 0;
  }
  if (t - x->last_t > (double)x->timeout) {
    x->stalled = 1;
    return 1;
  }
  return 0;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *u) {
  cb_ctx *x = u;
  size_t n = sz * nm;
  hh_resp *r = x->r;
  size_t len = n;
  while (len && (p[len - 1] == '\r' || p[len - 1] == '\n'))
    len--;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (redirect hop or 100 Continue) */
    hh_resp_reset(r);
    const char *sp = memchr(p, ' ', len);
    if (sp) r->status = strtol(sp + 1, NULL, 10);
    return n;
  }
  const char *colon = memchr(p, ':', len);
  if (!colon) return n;
  size_t nl = (size_t)(colon - p);
  for (int i = 0; i < HH_N; i++) {
    if (strlen(k_header_names[i]) == nl && strncasecmp(p, k_header_names[i], nl) == 0) {
      const char *v = colon + 1, *e = p + len;
      while (v < e && (*v == ' ' || *v == '\t'))
        v++;
      while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
      free(r->h[i]);
      r->h[i] = strndup(v, (size_t)(e - v));
      break;
    }
  }
  return n;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *u) {
  cb_ctx *x = u;
  size_t n = sz * nm;
  long st = x->r->status;
  if (st >= 300 && st < 400) return n; /* redirect bodies are discarded */
  if (st >= 200 && st < 300 && x->sink) return x->sink(x->user, p, n, x->r) ? n : 0;
  if (x->r->body.len + n > x->body_max) {
    x->body_overflow = 1;
    return 0;
  }
  mp_sb_append(&x->r->body, p, n);
  return x->r->body.oom ? 0 : n;
}

/* Request body: from memory or from a region of a file (pread, so a retry starts over). */
static size_t on_read(char *p, size_t sz, size_t nm, void *u) {
  cb_ctx *x = u;
  const hh_body *b = x->body;
  int64_t total = b->fd >= 0 ? b->length : (int64_t)b->len;
  int64_t left = total - x->body_pos;
  size_t n = sz * nm;
  if (left <= 0) return 0;
  if ((int64_t)n > left) n = (size_t)left;
  if (b->fd >= 0) {
    ssize_t got = pread(b->fd, p, n, (off_t)(b->offset + x->body_pos));
    if (got <= 0) return CURL_READFUNC_ABORT; /* the file shrank or cannot be read */
    n = (size_t)got;
  } else {
    memcpy(p, b->data + x->body_pos, n);
  }
  x->body_pos += (int64_t)n;
  return n;
}

/* libcurl rewinds the body when it resends a request (e.g. on a reused connection the server had
 * closed). */
static int on_seek(void *u, curl_off_t offset, int origin) {
  cb_ctx *x = u;
  const hh_body *b = x->body;
  int64_t total = b->fd >= 0 ? b->length : (int64_t)b->len;
  if (origin != SEEK_SET || offset < 0 || offset > total) return CURL_SEEKFUNC_CANTSEEK;
  x->body_pos = offset;
  return CURL_SEEKFUNC_OK;
}

/* One request without following redirects. */
static void perform_once(hh_conn *c, const char *method, const char *url, int auth, long timeout, int64_t range_from,
                         cb_ctx *x) {
  CURL *h = c->curl;
  hh_resp *r = x->r;
  curl_easy_reset(h);
  hh_resp_reset(r);
  r->curl_code = CURLE_OK;
  r->curl_err[0] = 0;
  struct curl_slist *hdrs = NULL;
  char line[4200];
  if (auth && c->s->token) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", c->s->token);
    hdrs = curl_slist_append(hdrs, line);
  }
  if (range_from > 0) {
    snprintf(line, sizeof line, "Range: bytes=%lld-", (long long)range_from);
    hdrs = curl_slist_append(hdrs, line);
  }
  hdrs = curl_slist_append(hdrs, "Accept-Encoding: identity");
  const hh_body *b = x->body;
  if (b) {
    if (b->content_type) {
      snprintf(line, sizeof line, "Content-Type: %s", b->content_type);
      hdrs = curl_slist_append(hdrs, line);
    }
    if (b->accept) {
      snprintf(line, sizeof line, "Accept: %s", b->accept);
      hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "mlxport/" MP_VERSION "; hf_hub-protocol");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024); /* fewer write() calls per file */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout > 0 ? timeout : 10L);
  x->timeout = timeout > 0 ? timeout : 10L;
  x->last_now = 0;
  x->last_t = mp_now_s();
  x->stalled = 0;
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  if (b) {
    curl_off_t total = b->fd >= 0 ? (curl_off_t)b->length : (curl_off_t)b->len;
    x->body_pos = 0;
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, x);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
    if (!strcmp(method, "PUT")) {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, total);
    } else {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, total);
      if (strcmp(method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
  } else if (!strcmp(method, "HEAD")) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  r->curl_code = (int)curl_easy_perform(h);
  if (r->curl_code == CURLE_ABORTED_BY_CALLBACK && x->stalled) {
    r->curl_code = CURLE_OPERATION_TIMEDOUT;
    snprintf(r->curl_err, sizeof r->curl_err, "no data received for %ld seconds", x->timeout);
  }
  if (r->curl_code != CURLE_OK && !r->curl_err[0])
    snprintf(r->curl_err, sizeof r->curl_err, "%s", curl_easy_strerror((CURLcode)r->curl_code));
  long code = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code) r->status = code;
  curl_slist_free_all(hdrs);
}

void hh_perform(hh_conn *c, const char *method, const char *url, int follow, long timeout, int64_t range_from,
                hh_sink sink, void *user, size_t body_max, hh_resp *r) {
  cb_ctx x = {r, NULL, 0, sink, user, body_max ? body_max : (1u << 20), 0, 0, 0, 0, 0};
  char *cur = strdup(url);
  for (int hop = 0; cur; hop++) {
    /* credentials only to the endpoint's origin (a CDN URL is signed; it must not see the token) */
    int auth = hh_same_origin_as_endpoint(c, cur);
    perform_once(c, method, cur, auth, timeout, range_from, &x);
    free(r->url);
    r->url = cur;
    cur = NULL;
    if (r->curl_code == CURLE_WRITE_ERROR && x.body_overflow)
      snprintf(r->curl_err, sizeof r->curl_err, "answer larger than %zu bytes", x.body_max);
    if (r->curl_code != CURLE_OK || r->status < 300 || r->status > 399 || !r->h[HH_LOCATION]) break;
    if (follow == HH_FOLLOW_NONE) break;
    if (follow == HH_FOLLOW_RELATIVE && !is_relative_location(r->h[HH_LOCATION])) break;
    if (hop >= 10) {
      r->curl_code = CURLE_TOO_MANY_REDIRECTS;
      snprintf(r->curl_err, sizeof r->curl_err, "more than 10 redirects");
      break;
    }
    cur = hh_resolve_url(r->url, r->h[HH_LOCATION]);
    if (!cur) {
      r->curl_code = CURLE_URL_MALFORMAT;
      snprintf(r->curl_err, sizeof r->curl_err, "bad redirect Location '%.200s'", r->h[HH_LOCATION]);
    }
  }
  free(cur);
}

void hh_perform_body(hh_conn *c, const char *method, const char *url, const hh_body *body, long timeout,
                     size_t body_max, hh_resp *r) {
  /* no redirects: a request body is not replayed to another URL (the Hub answers uploads in place) */
  cb_ctx x = {r, body, 0, NULL, NULL, body_max ? body_max : (1u << 20), 0, 0, 0, 0, 0};
  char *cur = strdup(url);
  if (!cur) {
    r->curl_code = CURLE_OUT_OF_MEMORY;
    snprintf(r->curl_err, sizeof r->curl_err, "out of memory");
    return;
  }
  perform_once(c, method, cur, hh_same_origin_as_endpoint(c, cur), timeout, -1, &x);
  free(r->url);
  r->url = cur;
  if (r->curl_code == CURLE_WRITE_ERROR && x.body_overflow)
    snprintf(r->curl_err, sizeof r->curl_err, "answer larger than %zu bytes", x.body_max);
}

int hh_retryable(const hh_resp *r) {
  if (r->curl_code != CURLE_OK) {
    switch (r->curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return 1;
    default: return 0;
    }
  }
  return r->status == 408 || r->status == 429 || (r->status >= 500 && r->status <= 599);
}

void hh_backoff(int attempt, const hh_resp *r) {
  double d = 0.5 * (double)(1u << (attempt < 5 ? attempt : 5));
  if (d > 8) d = 8;
  if (r && r->h[HH_RETRY_AFTER]) {
    char *end;
    double ra = strtod(r->h[HH_RETRY_AFTER], &end);
    if (end != r->h[HH_RETRY_AFTER] && ra >= 0) d = ra > 60 ? 60 : ra; /* delta-seconds form */
  }
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static const char *short_body(const hh_resp *r, char *buf, size_t cap) {
  if (r->h[HH_ERROR_MESSAGE]) return r->h[HH_ERROR_MESSAGE];
  size_t n = r->body.len < cap - 1 ? r->body.len : cap - 1;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)r->body.buf[i];
    buf[j++] = (ch < 32 || ch == 127) ? ' ' : (char)ch;
  }
  buf[j] = 0;
  return buf;
}

mp_status hh_error(const hh_conn *c, const hh_resp *r, const char *url, const char *repo_type, const char *repo_id,
                   const char *revision) {
  char b[300];
  const char *code = r->h[HH_ERROR_CODE];
  if (r->curl_code != CURLE_OK) {
    if (r->curl_code == CURLE_OPERATION_TIMEDOUT)
      return mp_err(
          MP_ERR_IO,
          "%s: timed out (%s); raise HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT (seconds) for a slow connection",
          url, r->curl_err);
    return mp_err(MP_ERR_IO, "%s: %s (is HF_ENDPOINT=%s reachable? set HF_HUB_OFFLINE=1 to use the cache only)", url,
                  r->curl_err, c->s->endpoint);
  }
  const char *tp = repo_type && !strcmp(repo_type, "dataset") ? "dataset" : "model";
  const char *page_prefix = !strcmp(tp, "dataset") ? "datasets/" : "";
  if (code && !strcmp(code, "GatedRepo"))
    return mp_err(MP_ERR_SECURITY,
                  "%s: %s '%s' is gated: accept the terms on the model page (%s/%s%s), then set HF_TOKEN to a token of "
                  "that account (HTTP %ld)",
                  url, tp, repo_id, c->s->endpoint, page_prefix, repo_id, r->status);
  if (code && !strcmp(code, "RepoNotFound"))
    return mp_err(MP_ERR_NOT_FOUND,
                  "%s: %s repository '%s' not found (HTTP %ld). Check the repo id and --repo-type; a private repo "
                  "needs HF_TOKEN%s",
                  url, tp, repo_id, r->status, c->s->token ? " (a token was sent)" : " (no token is set)");
  if (code && !strcmp(code, "RevisionNotFound"))
    return mp_err(MP_ERR_NOT_FOUND, "%s: revision '%s' not found in %s '%s' (HTTP %ld)", url,
                  revision ? revision : "main", tp, repo_id, r->status);
  if (code && !strcmp(code, "EntryNotFound"))
    return mp_err(MP_ERR_NOT_FOUND, "%s: file not found in %s '%s' at revision '%s' (HTTP %ld)", url, tp, repo_id,
                  revision ? revision : "main", r->status);
  if (r->status == 401)
    return mp_err(MP_ERR_SECURITY,
                  "%s: not authorized (HTTP 401): the %s '%s' is private or gated, or the token is invalid; set "
                  "HF_TOKEN%s",
                  url, tp, repo_id, c->s->token ? " (a token was sent)" : " (no token is set)");
  if (r->status == 403) return mp_err(MP_ERR_SECURITY, "%s: forbidden (HTTP 403): %s", url, short_body(r, b, sizeof b));
  if (r->status == 404)
    return mp_err(MP_ERR_NOT_FOUND, "%s: not found (HTTP 404): %s", url, short_body(r, b, sizeof b));
  return mp_err(MP_ERR_IO, "%s: HTTP %ld%s%s", url, r->status, (code || r->body.len) ? ": " : "",
                short_body(r, b, sizeof b));
}
