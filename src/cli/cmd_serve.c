/* mlxport serve: an HTTP server (libmicrohttpd) for embeddings (OpenAI /v1/embeddings, TEI /embed),
 * sequence classification (/predict), reranking (/rerank) and zero-shot classification
 * (/zero-shot), over the public library API (the headers in include/mlxport/), with dynamic batching: one
 * worker thread per model merges the queued requests of many clients into batches under a token
 * budget, sorted by length, and hands each request its own rows. docs/serve.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/strbuf.h"
#include "model/device.h"
#include "serve/serve_request.h"

const char mp_cmd_serve_summary[] =
    "HTTP server: OpenAI/TEI embeddings, classification, rerank, zero-shot, with dynamic batching";

static const char *k_help =
    "usage: mlxport serve --model REF [--model REF ...] [--host 127.0.0.1] [--port 8080] [--api-key K]\n"
    "                     [--max-batch-tokens N] [--max-client-batch N] [--threads N] [options]\n"
    "\n"
    "Serves every model given (folder or Hugging Face repo id; original or MLX-converted) over HTTP.\n"
    "Routes (docs/serve.md):\n"
    "  POST /v1/embeddings   OpenAI embeddings (input: string | [string] | token ids; encoding_format\n"
    "                        float|base64; usage)\n"
    "  POST /embed           text-embeddings-inference embeddings {inputs, normalize, truncate}\n"
    "  POST /predict         TEI sequence classification {inputs: text | [a, b] | [...], raw_scores}\n"
    "  POST /rerank          TEI rerank {query, texts, raw_scores, return_text} (pair classifiers)\n"
    "  POST /zero-shot       {inputs, candidate_labels, hypothesis_template, multi_label} ->\n"
    "                        {sequence, labels, scores} (transformers pipeline)\n"
    "  GET  /info /health /metrics /v1/models\n"
    "Every POST body may name \"model\" (its REF as given, or the folder's last component); the\n"
    "default is the first model able to answer the route. An input longer than the model's\n"
    "max_length gets 413 unless the request says \"truncate\": true (then X-Truncated-Inputs says\n"
    "how many were cut).\n"
    "\n"
    "  --model REF              model to serve (repeatable; at least one)\n"
    "  --host H                 address to bind (default 127.0.0.1; 0.0.0.0 for every interface)\n"
    "  --port P                 TCP port (default 8080; 0 = any free port, printed in the start-up log)\n"
    "  --api-key K              require `Authorization: Bearer K` (all routes but /health);\n"
    "                           also read from MLXPORT_API_KEY\n"
    "  --max-batch-tokens N     token budget of one batch, and the most tokens of one request\n"
    "                           (default 16384)\n"
    "  --max-client-batch N     most inputs per request (default 64)\n"
    "  --max-queue N            most requests waiting per model; beyond it 429 + Retry-After (default 256)\n"
    "  --max-body-bytes N       largest request body (default 2097152)\n"
    "  --max-labels N           most zero-shot candidate labels (default 64)\n"
    "  --max-connections N      most open connections (default 512)\n"
    "  --max-connections-per-ip N  most open connections from one address (default 0: no limit)\n"
    "  --timeout S              connection idle timeout, slow-client protection (default 10)\n"
    "  --header-timeout S       a request head (line and headers) must arrive within S seconds of\n"
    "                           connecting or of the previous answer, however it trickles (default 10)\n"
    "  --request-timeout S      longest queue wait before 503, and longest body upload before 408\n"
    "                           (default 60)\n"
    "  --drain-timeout S        on SIGTERM/SIGINT, longest wait for in-flight requests (default 30)\n"
    "  --threads N              compute threads per model (default: all cores)\n"
    "  --compute fast|faithful  MLX-quantized compute mode (default fast; docs/runtime.md)\n"
    "  --device D               cpu (default), cuda or cuda:N: every model on that GPU (docs/cuda.md)\n"
    "  --device-dtype T         compute dtype on the GPU: float16 (default), bfloat16, float32\n"
    "  --access-log FILE        JSON-lines access log (default stderr; `-` for stderr, `off`)\n"
    "\n"
    "Start-up and access logs are JSON lines. SIGTERM stops accepting, answers the requests in\n"
    "flight, then exits 0.\n";

/* ------------------------------------------------------------------ configuration, models */

typedef struct {
  const char *host;
  int port;
  const char *api_key;
  size_t max_batch_tokens, max_client_batch, max_queue, max_body, max_labels, max_conn, max_conn_ip;
  double header_timeout_s;
  unsigned timeout_s;
  double request_timeout_s, drain_timeout_s;
  int threads;
  mlxport_compute compute;
  const char *device;       /* --device (NULL = cpu) */
  const char *device_dtype; /* --device-dtype (NULL = float16) */
} serve_cfg;

enum { K_EMBED, K_CLASSIFY, K_ZERO_SHOT };

typedef struct job job;
struct job {
  int kind;
  size_t n;
  const char **texts, **pairs;
  size_t *ntok; /* tokens per input (after truncation), for sorting and the budget */
  size_t tokens;
  float *out;
  size_t n_labels; /* zero-shot */
  const char **labels;
  const char *tpl;
  int multi;
  int started, done;
  mlxport_status st;
  char err[512];
  double t_enq, t_start, t_end;
  job *next;
};

typedef struct {
  const char *ref;
  const char *short_id;
  mlxport_model *m;
  mlxport_tokenizer *tok;
  size_t dim, n_labels, max_len;
  int quantized;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  job *head, *tail;
  size_t queued;
  int stop;
} served;

/* ------------------------------------------------------------------ metrics */

static const char *k_routes[] = {"/v1/embeddings", "/embed",  "/predict", "/rerank",    "/zero-shot",
                                 "/info",          "/health", "/metrics", "/v1/models", "other"};
#define N_ROUTES (sizeof k_routes / sizeof *k_routes)
static const int k_codes[] = {200, 400, 401, 404, 405, 408, 413, 429, 500, 503};
#define N_CODES (sizeof k_codes / sizeof *k_codes)
static const double k_lat_b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_LAT (sizeof k_lat_b / sizeof *k_lat_b)
static const double k_bs_b[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define N_BS (sizeof k_bs_b / sizeof *k_bs_b)
static const double k_tok_b[] = {16, 64, 256, 1024, 4096, 16384, 65536};
#define N_TOK (sizeof k_tok_b / sizeof *k_tok_b)

typedef struct {
  unsigned long long b[16]; /* cumulative buckets filled at export; here per-bucket counts */
  unsigned long long count;
  double sum;
} histo;

static struct {
  pthread_mutex_t mu;
  unsigned long long req[N_ROUTES][N_CODES + 1];
  histo latency[N_ROUTES];
  histo queue_time, batch_size, batch_tokens;
  unsigned long long tokens_total, inputs_total, truncated_total, batches_total;
} g_met = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void histo_add(histo *h, const double *bounds, size_t nb, double v) {
  size_t i = 0;
  while (i < nb && v > bounds[i])
    i++;
  h->b[i]++; /* i == nb: +Inf */
  h->count++;
  h->sum += v;
}

static void histo_write(mp_sb *sb, const char *name, const char *labels, const histo *h, const double *bounds,
                        size_t nb) {
  unsigned long long cum = 0;
  for (size_t i = 0; i <= nb; i++) {
    cum += h->b[i];
    if (i < nb)
      mp_sb_printf(sb, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[i], cum);
    else
      mp_sb_printf(sb, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", cum);
  }
  mp_sb_printf(sb, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels, h->count);
}

/* ------------------------------------------------------------------ server state */

static serve_cfg g_cfg;
static served *g_models;
static size_t g_n_models;
static atomic_int g_draining;
static atomic_long g_inflight;
static atomic_ullong g_req_id;
static atomic_ullong g_cut_slow; /* connections cut by the header watchdog */
static FILE *g_access;           /* NULL: off */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static double g_t_start;

static void log_line(FILE *f, const char *line) {
  if (!f) return;
  pthread_mutex_lock(&g_log_mu);
  fputs(line, f);
  fputc('\n', f);
  fflush(f);
  pthread_mutex_unlock(&g_log_mu);
}

static void iso_time(char *buf, size_t cap) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* ------------------------------------------------------------------ batching worker */

typedef struct {
  job *j;
  size_t i, ntok;
} item;

static int cmp_item(const void *a, const void *b) {
  const item *x = a, *y = b;
  return x->ntok < y->ntok ? -1 : x->ntok > y->ntok;
}

static void run_batch(served *s, job **jobs, size_t nj) {
  if (jobs[0]->kind == K_ZERO_SHOT) { /* jobs with the same labels, template and mode: one call */
    size_t n = 0, L = jobs[0]->n_labels;
    for (size_t k = 0; k < nj; k++)
      n += jobs[k]->n;
    const char **tx = calloc(n ? n : 1, sizeof *tx);
    float *sc = malloc(n * L * sizeof *sc);
    mlxport_status st = MLXPORT_ERR_NOMEM;
    char err[512] = "out of memory";
    if (tx && sc) {
      size_t c = 0;
      for (size_t k = 0; k < nj; k++)
        for (size_t i = 0; i < jobs[k]->n; i++)
          tx[c++] = jobs[k]->texts[i];
      st = mlxport_model_zero_shot(s->m, n, tx, L, jobs[0]->labels, jobs[0]->tpl, jobs[0]->multi, sc);
      if (st) snprintf(err, sizeof err, "%s", mlxport_last_error());
      c = 0;
      for (size_t k = 0; !st && k < nj; k++) {
        memcpy(jobs[k]->out, sc + c * L, jobs[k]->n * L * sizeof *sc);
        c += jobs[k]->n;
      }
    }
    for (size_t k = 0; k < nj; k++) {
      jobs[k]->st = st;
      if (st) snprintf(jobs[k]->err, sizeof jobs[k]->err, "%s", err);
    }
    free(tx);
    free(sc);
    return;
  }
  size_t total = 0;
  for (size_t k = 0; k < nj; k++)
    total += jobs[k]->n;
  int has_pairs = jobs[0]->pairs != NULL;
  item *it = malloc(total * sizeof *it);
  const char **tx = malloc(total * sizeof *tx), **px = has_pairs ? malloc(total * sizeof *px) : NULL;
  size_t row = jobs[0]->kind == K_EMBED ? s->dim : s->n_labels;
  float *out = malloc(total * row * sizeof *out);
  mlxport_status st = MLXPORT_ERR_NOMEM;
  char err[512] = "out of memory";
  if (it && tx && out && (!has_pairs || px)) {
    size_t c = 0;
    for (size_t k = 0; k < nj; k++)
      for (size_t i = 0; i < jobs[k]->n; i++)
        it[c++] = (item){jobs[k], i, jobs[k]->ntok[i]};
    qsort(it, total, sizeof *it, cmp_item); /* similar lengths share a padded batch */
    for (size_t c2 = 0; c2 < total; c2++) {
      tx[c2] = it[c2].j->texts[it[c2].i];
      if (px) px[c2] = it[c2].j->pairs[it[c2].i];
    }
    st = jobs[0]->kind == K_EMBED ? mlxport_model_embed(s->m, total, tx, 0, out)
                                  : mlxport_model_classify(s->m, total, tx, px, out);
    if (st)
      snprintf(err, sizeof err, "%s", mlxport_last_error());
    else
      for (size_t c2 = 0; c2 < total; c2++)
        memcpy(it[c2].j->out + it[c2].i * row, out + c2 * row, row * sizeof *out);
  }
  for (size_t k = 0; k < nj; k++) {
    jobs[k]->st = st;
    if (st) snprintf(jobs[k]->err, sizeof jobs[k]->err, "%s", err);
  }
  free(it);
  free(tx);
  free(px);
  free(out);
}

/* zero-shot requests merge only when they ask the same question: labels, template, mode */
static int same_zero_shot(const job *a, const job *b) {
  if (a->n_labels != b->n_labels || a->multi != b->multi || strcmp(a->tpl, b->tpl)) return 0;
  for (size_t i = 0; i < a->n_labels; i++)
    if (strcmp(a->labels[i], b->labels[i])) return 0;
  return 1;
}

static void *worker(void *arg) {
  served *s = arg;
  size_t cap = 64;
  job **batch = malloc(cap * sizeof *batch);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->head && !s->stop)
      pthread_cond_wait(&s->cv_work, &s->mu);
    if (!s->head) break; /* stop and nothing queued */
    /* take the first job, then every queued job of the same kind (and pair-ness) that fits the
       token budget, in arrival order */
    size_t nb = 0, tokens = 0;
    job *first = s->head;
    for (job **pp = &s->head; *pp;) {
      job *j = *pp;
      int same = j->kind == first->kind && (j->pairs != NULL) == (first->pairs != NULL) &&
                 (j->kind != K_ZERO_SHOT || same_zero_shot(j, first));
      if (j == first || (same && tokens + j->tokens <= g_cfg.max_batch_tokens)) {
        if (nb == cap) {
          job **nbatch = realloc(batch, 2 * cap * sizeof *batch);
          if (!nbatch) break;
          batch = nbatch;
          cap *= 2;
        }
        batch[nb++] = j;
        tokens += j->tokens;
        *pp = j->next;
        if (s->tail == j) {
          s->tail = NULL;
          for (job *t = s->head; t; t = t->next)
            s->tail = t;
        }
        j->next = NULL;
        j->started = 1;
        s->queued--;
      } else {
        pp = &j->next;
      }
    }
    double now = mp_now_s();
    size_t items = 0;
    for (size_t k = 0; k < nb; k++) {
      batch[k]->t_start = now;
      items += batch[k]->n;
    }
    pthread_mutex_unlock(&s->mu);
    run_batch(s, batch, nb);
    double t_end = mp_now_s();
    pthread_mutex_lock(&g_met.mu);
    g_met.batches_total++;
    histo_add(&g_met.batch_size, k_bs_b, N_BS, (double)items);
    histo_add(&g_met.batch_tokens, k_tok_b, N_TOK, (double)tokens);
    for (size_t k = 0; k < nb; k++)
      histo_add(&g_met.queue_time, k_lat_b, N_LAT, now - batch[k]->t_enq);
    pthread_mutex_unlock(&g_met.mu);
    pthread_mutex_lock(&s->mu);
    for (size_t k = 0; k < nb; k++) {
      batch[k]->t_end = t_end;
      batch[k]->done = 1;
    }
    pthread_cond_broadcast(&s->cv_done);
  }
  pthread_mutex_unlock(&s->mu);
  free(batch);
  return NULL;
}

/* Queues j on s and waits for its answer. Returns 0, 429 (queue full) or 503 (waited longer than
 * --request-timeout before starting, or the server is stopping). */
static int submit(served *s, job *j) {
  pthread_mutex_lock(&s->mu);
  if (s->queued >= g_cfg.max_queue) {
    pthread_mutex_unlock(&s->mu);
    return 429;
  }
  j->t_enq = mp_now_s();
  j->next = NULL;
  if (s->tail)
    s->tail->next = j;
  else
    s->head = j;
  s->tail = j;
  s->queued++;
  pthread_cond_signal(&s->cv_work);
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  double secs = g_cfg.request_timeout_s;
  dl.tv_sec += (time_t)secs;
  dl.tv_nsec += (long)((secs - floor(secs)) * 1e9);
  if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
  while (!j->done) {
    int rc = j->started ? pthread_cond_wait(&s->cv_done, &s->mu) : pthread_cond_timedwait(&s->cv_done, &s->mu, &dl);
    if (rc == ETIMEDOUT && !j->started) { /* still queued: take it back */
      job **pp = &s->head;
      while (*pp && *pp != j)
        pp = &(*pp)->next;
      if (*pp) *pp = j->next;
      s->tail = NULL;
      for (job *t = s->head; t; t = t->next)
        s->tail = t;
      s->queued--;
      pthread_mutex_unlock(&s->mu);
      return 503;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}

/* ------------------------------------------------------------------ HTTP plumbing */

typedef struct {
  unsigned long long id;
  double t0;
  mp_sb body;
  int too_big;
  int status;
  int route;
  const char *method;
  char path[128];
  const char *model;
  size_t inputs, tokens, truncated;
  char err[512];
  int answered;
} conn;

static int route_index(const char *url) {
  for (size_t i = 0; i + 1 < N_ROUTES; i++)
    if (!strcmp(url, k_routes[i])) return (int)i;
  return (int)N_ROUTES - 1;
}

static enum MHD_Result send_body(struct MHD_Connection *c, conn *cx, int status, char *buf, size_t len,
                                 const char *ctype, const char *retry_after) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(buf);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", ctype);
  char idb[32];
  snprintf(idb, sizeof idb, "req-%llu", cx->id);
  MHD_add_response_header(r, "X-Request-Id", idb);
  if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
  if (cx->truncated) {
    char tb[32];
    snprintf(tb, sizeof tb, "%zu", cx->truncated);
    MHD_add_response_header(r, "X-Truncated-Inputs", tb);
  }
  if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  cx->status = status;
  cx->answered = 1;
  enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, conn *cx, int status, mp_sb *sb) {
  if (sb->oom) {
    mp_sb_free(sb);
    mp_sb_puts(sb, "{\"error\":\"out of memory\",\"error_type\":\"Backend\"}");
    status = 500;
  }
  size_t len = sb->len;
  char *buf = mp_sb_steal(sb);
  return send_body(c, cx, status, buf, len, "application/json", NULL);
}

/* OpenAI routes answer {"error": {...}}, the others TEI's {"error", "error_type"} */
static enum MHD_Result send_error(struct MHD_Connection *c, conn *cx, int status, const char *msg) {
  mp_sb sb;
  mp_sb_init(&sb);
  if (msg != cx->err) snprintf(cx->err, sizeof cx->err, "%s", msg);
  const char *type = status == 413 || status == 400   ? "Validation"
                     : status == 429 || status == 503 ? "Overloaded"
                     : status == 401                  ? "Unauthorized"
                     : status == 404 || status == 405 ? "NotFound"
                                                      : "Backend";
  if (cx->route == 0 || cx->route == 8) {
    mp_sb_puts(&sb, "{\"error\":{\"message\":");
    mp_sb_json_str(&sb, msg, strlen(msg));
    mp_sb_printf(&sb, ",\"type\":\"%s\",\"code\":%d}}",
                 status == 400 || status == 413 ? "invalid_request_error"
                 : status == 401                ? "authentication_error"
                                                : "server_error",
                 status);
  } else {
    mp_sb_puts(&sb, "{\"error\":");
    mp_sb_json_str(&sb, msg, strlen(msg));
    mp_sb_printf(&sb, ",\"error_type\":\"%s\"}", type);
  }
  if (status == 429 || status == 503) {
    size_t len = sb.len;
    char *buf = mp_sb_steal(&sb);
    return send_body(c, cx, status, buf, len, "application/json", "1");
  }
  return send_json(c, cx, status, &sb);
}

/* constant-time comparison of the Authorization header with "Bearer KEY" */
static int auth_ok(struct MHD_Connection *c) {
  if (!g_cfg.api_key) return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  static const char prefix[] = "Bearer ";
  size_t kl = strlen(g_cfg.api_key), pl = sizeof prefix - 1;
  size_t hl = h ? strlen(h) : 0;
  volatile unsigned char diff = (unsigned char)(hl != pl + kl);
  for (size_t i = 0; i < pl + kl; i++) {
    unsigned char want = i < pl ? (unsigned char)prefix[i] : (unsigned char)g_cfg.api_key[i - pl];
    unsigned char got = h && i < hl ? (unsigned char)h[i] : 0;
    diff |= want ^ got;
  }
  return diff == 0;
}

static served *find_model(const char *name, int need_head) {
  for (size_t i = 0; i < g_n_models; i++) {
    served *s = &g_models[i];
    if (name ? (!strcmp(name, s->ref) || !strcmp(name, s->short_id)) : (!need_head || s->n_labels >= (size_t)need_head))
      return s;
  }
  return NULL;
}

/* ------------------------------------------------------------------ route handlers */

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static void put_b64(mp_sb *sb, const unsigned char *p, size_t n) {
  mp_sb_putc(sb, '"');
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    char q[4] = {k_b64[v >> 18 & 63], k_b64[v >> 12 & 63], i + 1 < n ? k_b64[v >> 6 & 63] : '=',
                 i + 2 < n ? k_b64[v & 63] : '='};
    mp_sb_append(sb, q, 4);
  }
  mp_sb_putc(sb, '"');
}

static void put_floats(mp_sb *sb, const float *v, size_t n) {
  mp_sb_putc(sb, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) mp_sb_putc(sb, ',');
    mp_sb_json_f32(sb, v[i]);
  }
  mp_sb_putc(sb, ']');
}

typedef struct {
  float s;
  size_t i;
} scored;
static int cmp_scored(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->s != y->s) return x->s < y->s ? 1 : -1;
  return x->i < y->i ? -1 : x->i > y->i;
}

static void softmax(const float *in, float *out, size_t n) {
  float mx = in[0];
  for (size_t i = 1; i < n; i++)
    if (in[i] > mx) mx = in[i];
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += exp((double)in[i] - mx);
  for (size_t i = 0; i < n; i++)
    out[i] = (float)(exp((double)in[i] - mx) / sum);
}

static int entailment_index(const served *s) {
  for (size_t i = 0; i < s->n_labels; i++) {
    const char *l = mlxport_model_label(s->m, i);
    if (l && !strncasecmp(l, "entail", 6)) return (int)i;
  }
  return -1;
}

/* counts the tokens of every input (pairs, or zero-shot hypotheses), enforcing max_length and the
 * request budget; fills j->ntok / j->tokens. Returns 0 or an HTTP status with cx->err set. */
static int count_tokens(served *s, const mp_serve_req *r, job *j, conn *cx, mp_arena *a) {
  j->ntok = mp_arena_alloc(a, r->n * sizeof *j->ntok);
  if (!j->ntok) return snprintf(cx->err, sizeof cx->err, "out of memory"), 500;
  int32_t ids[8];
  size_t total = 0;
  char *hyp = NULL;
  size_t hyp_cap = 0;
  for (size_t i = 0; i < r->n; i++) {
    size_t nt = 0;
    if (r->route == MP_ROUTE_ZERO_SHOT) { /* the longest (text, hypothesis) pair */
      const char *tp = strstr(r->hypothesis_template, "{}");
      for (size_t l = 0; l < r->n_labels; l++) {
        size_t need = strlen(r->hypothesis_template) + strlen(r->labels[l]) + 1;
        if (need > hyp_cap) {
          hyp = mp_arena_alloc(a, need);
          hyp_cap = hyp ? need : 0;
          if (!hyp) return snprintf(cx->err, sizeof cx->err, "out of memory"), 500;
        }
        snprintf(hyp, need, "%.*s%s%s", (int)(tp - r->hypothesis_template), r->hypothesis_template, r->labels[l],
                 tp + 2);
        size_t n1;
        if (mlxport_tokenizer_encode(s->tok, r->texts[i], hyp, NULL, ids, 8, &n1))
          return snprintf(cx->err, sizeof cx->err, "inputs[%zu]: %s", i, mlxport_last_error()), 400;
        if (n1 > nt) nt = n1;
      }
    } else if (mlxport_tokenizer_encode(s->tok, r->texts[i], r->pairs ? r->pairs[i] : NULL, NULL, ids, 8, &nt)) {
      return snprintf(cx->err, sizeof cx->err, "input %zu: %s", i, mlxport_last_error()), 400;
    }
    if (nt > s->max_len) {
      if (!r->truncate)
        return snprintf(cx->err, sizeof cx->err,
                        "input %zu has %zu tokens; the model's limit is %zu tokens (max_length): shorten it or "
                        "send \"truncate\": true",
                        i, nt, s->max_len),
               413;
      nt = s->max_len;
      cx->truncated++;
    }
    j->ntok[i] = nt;
    total += nt * (r->route == MP_ROUTE_ZERO_SHOT ? r->n_labels : 1);
  }
  if (total > g_cfg.max_batch_tokens)
    return snprintf(cx->err, sizeof cx->err,
                    "the request has %zu tokens; the limit is %zu per request (--max-batch-tokens): split it", total,
                    g_cfg.max_batch_tokens),
           413;
  j->tokens = total;
  cx->tokens = total;
  return 0;
}

static enum MHD_Result handle_post(struct MHD_Connection *c, conn *cx, mp_serve_route route) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_serve_req r;
  mp_serve_limits lim = {g_cfg.max_client_batch, g_cfg.max_labels, g_cfg.max_body};
  char err[512];
  enum MHD_Result ret;
  int code = mp_serve_decode(route, cx->body.buf ? cx->body.buf : "", cx->body.len, &lim, &a, &r, err, sizeof err);
  if (code) {
    ret = send_error(c, cx, code, err);
    goto done;
  }
  cx->inputs = r.n;
  int need = route == MP_ROUTE_ZERO_SHOT ? 2 : route == MP_ROUTE_PREDICT || route == MP_ROUTE_RERANK ? 1 : 0;
  served *s = find_model(r.model, need);
  if (!s) {
    snprintf(err, sizeof err,
             r.model ? "model \"%s\" is not served (GET /v1/models lists them)"
                     : "no served model can answer %s: it needs a classification head%s",
             r.model ? r.model : k_routes[cx->route], route == MP_ROUTE_ZERO_SHOT ? " with 2 or more labels" : "");
    ret = send_error(c, cx, r.model ? 404 : 400, err);
    goto done;
  }
  cx->model = s->ref;
  if (need && s->n_labels < (size_t)need) {
    snprintf(err, sizeof err, "model \"%s\" has no classification head with %d or more labels", s->ref, need);
    ret = send_error(c, cx, 400, err);
    goto done;
  }
  if (route == MP_ROUTE_RERANK && s->n_labels > 1 && entailment_index(s) < 0) {
    snprintf(err, sizeof err, "model \"%s\" is not a reranker: one logit or an entailment label is needed", s->ref);
    ret = send_error(c, cx, 400, err);
    goto done;
  }
  if (route == MP_ROUTE_OPENAI_EMBED && r.dimensions >= 0 && (size_t)r.dimensions != s->dim) {
    snprintf(err, sizeof err,
             "field dimensions: model \"%s\" was not trained for reduced dimensions (Matryoshka); it gives %zu", s->ref,
             s->dim);
    ret = send_error(c, cx, 400, err);
    goto done;
  }
  if (r.ids) { /* token ids: decoded to text, which the model tokenizes again */
    size_t vocab = mlxport_tokenizer_vocab_size(s->tok);
    for (size_t i = 0; i < r.n; i++) {
      for (size_t k = 0; k < r.n_ids[i]; k++)
        if ((size_t)r.ids[i][k] >= vocab) {
          snprintf(err, sizeof err, "field input[%zu][%zu]: token id %d is outside the vocabulary (%zu)", i, k,
                   r.ids[i][k], vocab);
          ret = send_error(c, cx, 400, err);
          goto done;
        }
      char *t;
      if (mlxport_tokenizer_decode(s->tok, r.ids[i], r.n_ids[i], 1, &t)) {
        ret = send_error(c, cx, 400, mlxport_last_error());
        goto done;
      }
      r.texts[i] = mp_arena_strdup(&a, t);
      mlxport_free(t);
      if (!r.texts[i]) {
        ret = send_error(c, cx, 500, "out of memory");
        goto done;
      }
    }
  }
  job j = {0};
  j.kind = route == MP_ROUTE_ZERO_SHOT                             ? K_ZERO_SHOT
           : route == MP_ROUTE_PREDICT || route == MP_ROUTE_RERANK ? K_CLASSIFY
                                                                   : K_EMBED;
  j.n = r.n;
  j.texts = r.texts;
  j.pairs = r.pairs;
  j.labels = r.labels;
  j.n_labels = r.n_labels;
  j.tpl = r.hypothesis_template;
  j.multi = r.multi_label;
  code = count_tokens(s, &r, &j, cx, &a);
  if (code) {
    ret = send_error(c, cx, code, cx->err);
    goto done;
  }
  size_t row = j.kind == K_EMBED ? s->dim : j.kind == K_CLASSIFY ? s->n_labels : r.n_labels;
  j.out = mp_arena_alloc(&a, r.n * row * sizeof(float));
  if (!j.out) {
    ret = send_error(c, cx, 500, "out of memory");
    goto done;
  }
  code = submit(s, &j);
  if (code == 429) {
    ret = send_error(c, cx, 429, "the queue is full; retry later");
    goto done;
  }
  if (code == 503) {
    ret = send_error(c, cx, 503, "the request waited longer than --request-timeout in the queue; retry later");
    goto done;
  }
  if (j.st) {
    ret = send_error(c, cx, 500, j.err);
    goto done;
  }
  pthread_mutex_lock(&g_met.mu);
  g_met.tokens_total += j.tokens;
  g_met.inputs_total += r.n;
  g_met.truncated_total += cx->truncated;
  pthread_mutex_unlock(&g_met.mu);

  mp_sb sb;
  mp_sb_init(&sb);
  if (route == MP_ROUTE_EMBED || route == MP_ROUTE_OPENAI_EMBED) {
    int norm = route == MP_ROUTE_EMBED && r.normalize;
    for (size_t i = 0; norm && i < r.n; i++) { /* as mlxport_model_embed(normalize=1) does */
      float *v = j.out + i * s->dim;
      double ss = 0;
      for (size_t k = 0; k < s->dim; k++)
        ss += (double)v[k] * v[k];
      double nrm = sqrt(ss);
      if (nrm < 1e-12) nrm = 1e-12;
      for (size_t k = 0; k < s->dim; k++)
        v[k] = (float)(v[k] / nrm);
    }
    if (route == MP_ROUTE_EMBED) {
      mp_sb_putc(&sb, '[');
      for (size_t i = 0; i < r.n; i++) {
        if (i) mp_sb_putc(&sb, ',');
        put_floats(&sb, j.out + i * s->dim, s->dim);
      }
      mp_sb_putc(&sb, ']');
    } else {
      mp_sb_puts(&sb, "{\"object\":\"list\",\"data\":[");
      for (size_t i = 0; i < r.n; i++) {
        mp_sb_printf(&sb, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        if (r.base64)
          put_b64(&sb, (const unsigned char *)(j.out + i * s->dim), s->dim * sizeof(float));
        else
          put_floats(&sb, j.out + i * s->dim, s->dim);
        mp_sb_putc(&sb, '}');
      }
      mp_sb_puts(&sb, "],\"model\":");
      mp_sb_json_str(&sb, s->ref, strlen(s->ref));
      mp_sb_printf(&sb, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}", j.tokens, j.tokens);
      if (cx->truncated) {
        mp_sb_puts(&sb, ",\"truncated_inputs\":[");
        int first = 1;
        for (size_t i = 0; i < r.n; i++)
          if (j.ntok[i] == s->max_len) {
            mp_sb_printf(&sb, "%s%zu", first ? "" : ",", i);
            first = 0;
          }
        mp_sb_putc(&sb, ']');
      }
      mp_sb_putc(&sb, '}');
    }
  } else if (route == MP_ROUTE_PREDICT) {
    size_t L = s->n_labels;
    float *p = mp_arena_alloc(&a, L * sizeof *p);
    scored *sc = mp_arena_alloc(&a, L * sizeof *sc);
    if (r.batched) mp_sb_putc(&sb, '[');
    for (size_t i = 0; p && sc && i < r.n; i++) {
      const float *lg = j.out + i * L;
      if (r.raw_scores)
        memcpy(p, lg, L * sizeof *p);
      else if (L == 1)
        p[0] = (float)(1.0 / (1.0 + exp(-(double)lg[0])));
      else
        softmax(lg, p, L);
      for (size_t k = 0; k < L; k++)
        sc[k] = (scored){p[k], k};
      qsort(sc, L, sizeof *sc, cmp_scored);
      mp_sb_puts(&sb, i ? ",[" : "[");
      for (size_t k = 0; k < L; k++) {
        const char *lab = mlxport_model_label(s->m, sc[k].i);
        mp_sb_puts(&sb, k ? ",{\"score\":" : "{\"score\":");
        mp_sb_json_f32(&sb, sc[k].s);
        mp_sb_puts(&sb, ",\"label\":");
        mp_sb_json_str(&sb, lab ? lab : "", lab ? strlen(lab) : 0);
        mp_sb_putc(&sb, '}');
      }
      mp_sb_putc(&sb, ']');
    }
    if (r.batched) mp_sb_putc(&sb, ']');
    if (!p || !sc) sb.oom = 1;
  } else if (route == MP_ROUTE_RERANK) {
    size_t L = s->n_labels;
    int ent = L > 1 ? entailment_index(s) : 0;
    scored *sc = mp_arena_alloc(&a, r.n * sizeof *sc);
    float *p = mp_arena_alloc(&a, L * sizeof *p);
    if (!sc || !p) sb.oom = 1;
    for (size_t i = 0; sc && p && i < r.n; i++) {
      const float *lg = j.out + i * L;
      float v;
      if (r.raw_scores)
        v = lg[ent];
      else if (L == 1)
        v = (float)(1.0 / (1.0 + exp(-(double)lg[0])));
      else {
        softmax(lg, p, L);
        v = p[ent];
      }
      sc[i] = (scored){v, i};
    }
    if (sc && p) {
      qsort(sc, r.n, sizeof *sc, cmp_scored);
      mp_sb_putc(&sb, '[');
      for (size_t k = 0; k < r.n; k++) {
        mp_sb_printf(&sb, "%s{\"index\":%zu,\"score\":", k ? "," : "", sc[k].i);
        mp_sb_json_f32(&sb, sc[k].s);
        if (r.return_text) {
          mp_sb_puts(&sb, ",\"text\":");
          mp_sb_json_str(&sb, r.pairs[sc[k].i], strlen(r.pairs[sc[k].i]));
        }
        mp_sb_putc(&sb, '}');
      }
      mp_sb_putc(&sb, ']');
    }
  } else { /* zero-shot */
    size_t L = r.n_labels;
    scored *sc = mp_arena_alloc(&a, L * sizeof *sc);
    if (!sc) sb.oom = 1;
    if (r.batched) mp_sb_putc(&sb, '[');
    for (size_t i = 0; sc && i < r.n; i++) {
      for (size_t k = 0; k < L; k++)
        sc[k] = (scored){j.out[i * L + k], k};
      qsort(sc, L, sizeof *sc, cmp_scored);
      mp_sb_puts(&sb, i ? ",{\"sequence\":" : "{\"sequence\":");
      mp_sb_json_str(&sb, r.texts[i], strlen(r.texts[i]));
      mp_sb_puts(&sb, ",\"labels\":[");
      for (size_t k = 0; k < L; k++) {
        if (k) mp_sb_putc(&sb, ',');
        mp_sb_json_str(&sb, r.labels[sc[k].i], strlen(r.labels[sc[k].i]));
      }
      mp_sb_puts(&sb, "],\"scores\":[");
      for (size_t k = 0; k < L; k++) {
        if (k) mp_sb_putc(&sb, ',');
        mp_sb_json_f32(&sb, sc[k].s);
      }
      mp_sb_putc(&sb, ']');
      if (r.truncate) mp_sb_printf(&sb, ",\"truncated\":%s", j.ntok[i] == s->max_len ? "true" : "false");
      mp_sb_putc(&sb, '}');
    }
    if (r.batched) mp_sb_putc(&sb, ']');
  }
  ret = send_json(c, cx, 200, &sb);
done:
  mp_arena_free(&a);
  return ret;
}

static enum MHD_Result handle_get(struct MHD_Connection *c, conn *cx, int route) {
  mp_sb sb;
  mp_sb_init(&sb);
  if (route == 6) { /* /health */
    if (atomic_load(&g_draining)) return send_error(c, cx, 503, "the server is shutting down");
    mp_sb_puts(&sb, "{\"status\":\"ok\"}");
    return send_json(c, cx, 200, &sb);
  }
  if (route == 8) { /* /v1/models */
    mp_sb_puts(&sb, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < g_n_models; i++) {
      mp_sb_puts(&sb, i ? ",{\"id\":" : "{\"id\":");
      mp_sb_json_str(&sb, g_models[i].ref, strlen(g_models[i].ref));
      mp_sb_printf(&sb, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"mlxport\"}", (long long)g_t_start);
    }
    mp_sb_puts(&sb, "]}");
    return send_json(c, cx, 200, &sb);
  }
  if (route == 5) { /* /info: text-embeddings-inference's Info of the first model */
    const served *s = &g_models[0];
    mp_sb_puts(&sb, "{\"model_id\":");
    mp_sb_json_str(&sb, s->ref, strlen(s->ref));
    mp_sb_printf(&sb,
                 ",\"model_sha\":null,\"model_dtype\":\"%s\",\"model_type\":", s->quantized ? "mlx-affine" : "float32");
    if (s->n_labels) {
      mp_sb_puts(&sb, "{\"classifier\":{\"id2label\":{");
      for (size_t k = 0; k < s->n_labels; k++) {
        const char *l = mlxport_model_label(s->m, k);
        mp_sb_printf(&sb, "%s\"%zu\":", k ? "," : "", k);
        mp_sb_json_str(&sb, l ? l : "", l ? strlen(l) : 0);
      }
      mp_sb_puts(&sb, "},\"label2id\":{");
      for (size_t k = 0; k < s->n_labels; k++) {
        const char *l = mlxport_model_label(s->m, k);
        if (k) mp_sb_putc(&sb, ',');
        mp_sb_json_str(&sb, l ? l : "", l ? strlen(l) : 0);
        mp_sb_printf(&sb, ":%zu", k);
      }
      mp_sb_puts(&sb, "}}}");
    } else {
      mp_sb_puts(&sb, "{\"embedding\":{\"pooling\":\"model\"}}");
    }
    mp_sb_printf(&sb,
                 ",\"max_concurrent_requests\":%zu,\"max_input_length\":%zu,\"max_batch_tokens\":%zu,"
                 "\"max_batch_requests\":null,\"max_client_batch_size\":%zu,\"auto_truncate\":false,"
                 "\"tokenization_workers\":%zu,\"version\":\"%s\",\"sha\":null,\"docker_label\":null,"
                 "\"models\":[",
                 g_cfg.max_queue, s->max_len, g_cfg.max_batch_tokens, g_cfg.max_client_batch, g_cfg.max_conn,
                 mlxport_version());
    for (size_t i = 0; i < g_n_models; i++) {
      const served *m = &g_models[i];
      mp_sb_puts(&sb, i ? ",{\"id\":" : "{\"id\":");
      mp_sb_json_str(&sb, m->ref, strlen(m->ref));
      mp_sb_printf(&sb, ",\"dim\":%zu,\"num_labels\":%zu,\"max_input_length\":%zu,\"quantized\":%s}", m->dim,
                   m->n_labels, m->max_len, m->quantized ? "true" : "false");
    }
    mp_sb_puts(&sb, "]}");
    return send_json(c, cx, 200, &sb);
  }
  /* /metrics */
  pthread_mutex_lock(&g_met.mu);
  mp_sb_puts(&sb, "# HELP mlxport_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE mlxport_requests_total counter\n");
  for (size_t r = 0; r < N_ROUTES; r++)
    for (size_t k = 0; k <= N_CODES; k++)
      if (g_met.req[r][k]) {
        if (k < N_CODES)
          mp_sb_printf(&sb, "mlxport_requests_total{route=\"%s\",status=\"%d\"} %llu\n", k_routes[r], k_codes[k],
                       g_met.req[r][k]);
        else
          mp_sb_printf(&sb, "mlxport_requests_total{route=\"%s\",status=\"other\"} %llu\n", k_routes[r],
                       g_met.req[r][k]);
      }
  mp_sb_puts(&sb, "# HELP mlxport_request_duration_seconds Time from request to response, by route.\n"
                  "# TYPE mlxport_request_duration_seconds histogram\n");
  for (size_t r = 0; r < N_ROUTES; r++)
    if (g_met.latency[r].count) {
      char lab[64];
      snprintf(lab, sizeof lab, "route=\"%s\"", k_routes[r]);
      histo_write(&sb, "mlxport_request_duration_seconds", lab, &g_met.latency[r], k_lat_b, N_LAT);
    }
  mp_sb_puts(&sb, "# HELP mlxport_queue_duration_seconds Time a request waited for its batch.\n"
                  "# TYPE mlxport_queue_duration_seconds histogram\n");
  histo_write(&sb, "mlxport_queue_duration_seconds", "", &g_met.queue_time, k_lat_b, N_LAT);
  mp_sb_puts(&sb, "# HELP mlxport_batch_size Inputs per computed batch.\n# TYPE mlxport_batch_size histogram\n");
  histo_write(&sb, "mlxport_batch_size", "", &g_met.batch_size, k_bs_b, N_BS);
  mp_sb_puts(&sb, "# HELP mlxport_batch_tokens Tokens per computed batch.\n# TYPE mlxport_batch_tokens histogram\n");
  histo_write(&sb, "mlxport_batch_tokens", "", &g_met.batch_tokens, k_tok_b, N_TOK);
  mp_sb_printf(
      &sb,
      "# HELP mlxport_tokens_total Tokens computed.\n# TYPE mlxport_tokens_total counter\n"
      "mlxport_tokens_total %llu\n"
      "# HELP mlxport_inputs_total Inputs (texts, pairs) computed.\n# TYPE mlxport_inputs_total counter\n"
      "mlxport_inputs_total %llu\n"
      "# HELP mlxport_truncated_inputs_total Inputs truncated on request.\n"
      "# TYPE mlxport_truncated_inputs_total counter\nmlxport_truncated_inputs_total %llu\n"
      "# HELP mlxport_batches_total Batches computed.\n# TYPE mlxport_batches_total counter\n"
      "mlxport_batches_total %llu\n"
      "# HELP mlxport_slow_clients_cut_total Connections cut for not sending a request head within "
      "--header-timeout.\n# TYPE mlxport_slow_clients_cut_total counter\nmlxport_slow_clients_cut_total %llu\n",
      g_met.tokens_total, g_met.inputs_total, g_met.truncated_total, g_met.batches_total,
      (unsigned long long)atomic_load(&g_cut_slow));
  pthread_mutex_unlock(&g_met.mu);
  mp_sb_puts(&sb, "# HELP mlxport_queue_depth Requests waiting, by model.\n# TYPE mlxport_queue_depth gauge\n");
  for (size_t i = 0; i < g_n_models; i++) {
    pthread_mutex_lock(&g_models[i].mu);
    size_t q = g_models[i].queued;
    pthread_mutex_unlock(&g_models[i].mu);
    mp_sb_puts(&sb, "mlxport_queue_depth{model=");
    mp_sb_json_str(&sb, g_models[i].ref, strlen(g_models[i].ref));
    mp_sb_printf(&sb, "} %zu\n", q);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  mp_sb_printf(&sb,
               "# HELP mlxport_inflight_requests Requests being answered.\n# TYPE mlxport_inflight_requests gauge\n"
               "mlxport_inflight_requests %ld\n"
               "# HELP mlxport_peak_rss_bytes Peak resident set size.\n# TYPE mlxport_peak_rss_bytes gauge\n"
               "mlxport_peak_rss_bytes %lld\n",
               atomic_load(&g_inflight), (long long)ru.ru_maxrss * 1024);
  size_t len = sb.len;
  char *buf = mp_sb_steal(&sb);
  if (!buf) return MHD_NO;
  return send_body(c, cx, 200, buf, len, "text/plain; version=0.0.4", NULL);
}

/* Slowloris protection beyond MHD's idle timeout: every connection is registered with the time it
 * started waiting for a request head (connect, or the previous answer); a watchdog thread shuts
 * down the socket of any connection whose head has not arrived within --header-timeout, however
 * slowly it trickles bytes. */
typedef struct slot slot;
struct slot {
  MHD_socket fd;
  double since; /* waiting for a head since; 0 while a request is being handled */
  slot *prev, *next;
};
static pthread_mutex_t g_slots_mu = PTHREAD_MUTEX_INITIALIZER;
static slot *g_slots;
static atomic_int g_watch_stop;

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  (void)cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    slot *sl = calloc(1, sizeof *sl);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!sl || !ci) {
      free(sl);
      return;
    }
    sl->fd = ci->connect_fd;
    sl->since = mp_now_s();
    pthread_mutex_lock(&g_slots_mu);
    sl->next = g_slots;
    if (g_slots) g_slots->prev = sl;
    g_slots = sl;
    pthread_mutex_unlock(&g_slots_mu);
    *socket_context = sl;
  } else if (*socket_context) { /* closed: before MHD closes the socket */
    slot *sl = *socket_context;
    pthread_mutex_lock(&g_slots_mu);
    if (sl->prev)
      sl->prev->next = sl->next;
    else
      g_slots = sl->next;
    if (sl->next) sl->next->prev = sl->prev;
    pthread_mutex_unlock(&g_slots_mu);
    free(sl);
    *socket_context = NULL;
  }
}

static void slot_mark(struct MHD_Connection *c, double since) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (!ci || !ci->socket_context) return;
  pthread_mutex_lock(&g_slots_mu);
  ((slot *)ci->socket_context)->since = since;
  pthread_mutex_unlock(&g_slots_mu);
}

static void *watchdog(void *arg) {
  (void)arg;
  while (!atomic_load(&g_watch_stop)) {
    usleep(200000);
    double now = mp_now_s();
    pthread_mutex_lock(&g_slots_mu);
    for (slot *sl = g_slots; sl; sl = sl->next)
      if (sl->since > 0 && now - sl->since > g_cfg.header_timeout_s) {
        shutdown(sl->fd, SHUT_RDWR); /* the connection's thread sees EOF and MHD closes it */
        sl->since = 0;
        atomic_fetch_add(&g_cut_slow, 1);
      }
    pthread_mutex_unlock(&g_slots_mu);
  }
  return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)cls;
  (void)version;
  conn *cx = *con_cls;
  if (!cx) { /* first call: headers only */
    cx = calloc(1, sizeof *cx);
    if (!cx) return MHD_NO;
    cx->id = atomic_fetch_add(&g_req_id, 1) + 1;
    cx->t0 = mp_now_s();
    cx->method = !strcmp(method, "POST") ? "POST" : !strcmp(method, "GET") ? "GET" : "OTHER";
    snprintf(cx->path, sizeof cx->path, "%s", url);
    cx->route = route_index(url);
    if (!strcmp(url, "/") && !strcmp(method, "POST")) /* TEI's POST /: the first model's task */
      cx->route = g_models[0].n_labels ? MP_ROUTE_PREDICT : MP_ROUTE_EMBED;
    mp_sb_init(&cx->body);
    *con_cls = cx;
    atomic_fetch_add(&g_inflight, 1);
    slot_mark(c, 0); /* the head arrived */
    if (cx->route != 6 && !auth_ok(c))
      return send_error(c, cx, 401, "missing or wrong bearer key (Authorization: Bearer KEY)");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > g_cfg.max_body) {
      char m[128];
      snprintf(m, sizeof m, "the request body is larger than the limit of %zu bytes (--max-body-bytes)",
               g_cfg.max_body);
      return send_error(c, cx, 413, m);
    }
    return MHD_YES;
  }
  if (cx->answered) { /* an early answer (401/413) was queued: discard what still comes */
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (mp_now_s() - cx->t0 > g_cfg.request_timeout_s) { /* a body trickled in too slowly */
      *upload_data_size = 0;
      return send_error(c, cx, 408, "the request body took longer than --request-timeout to arrive");
    }
    if (cx->body.len + *upload_data_size > g_cfg.max_body)
      cx->too_big = 1;
    else
      mp_sb_append(&cx->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (cx->too_big || cx->body.oom) {
    char m[128];
    snprintf(m, sizeof m, "the request body is larger than the limit of %zu bytes (--max-body-bytes)", g_cfg.max_body);
    return send_error(c, cx, 413, m);
  }
  int post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  if (cx->route <= 4) {
    if (!post) return send_error(c, cx, 405, "use POST for this route");
    if (atomic_load(&g_draining)) return send_error(c, cx, 503, "the server is shutting down");
    return handle_post(c, cx, (mp_serve_route)cx->route);
  }
  if (cx->route < (int)N_ROUTES - 1) {
    if (!get) return send_error(c, cx, 405, "use GET for this route");
    return handle_get(c, cx, cx->route);
  }
  char m[200];
  snprintf(m, sizeof m, "no route %.120s (see GET /info, docs/serve.md)", url);
  return send_error(c, cx, 404, m);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)cls;
  slot_mark(c, mp_now_s()); /* waiting for the next head (keep-alive) */
  conn *cx = *con_cls;
  if (!cx) return;
  double dt = mp_now_s() - cx->t0;
  pthread_mutex_lock(&g_met.mu);
  size_t k = 0;
  while (k < N_CODES && k_codes[k] != cx->status)
    k++;
  if (cx->answered) {
    g_met.req[cx->route][k]++;
    histo_add(&g_met.latency[cx->route], k_lat_b, N_LAT, dt);
  }
  pthread_mutex_unlock(&g_met.mu);
  if (g_access) {
    char ts[40];
    iso_time(ts, sizeof ts);
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "{\"ts\":\"%s\",\"event\":\"access\",\"id\":\"req-%llu\",\"method\":\"%s\",\"path\":", ts, cx->id,
                 cx->method);
    mp_sb_json_str(&sb, cx->path, strlen(cx->path));
    mp_sb_printf(&sb, ",\"status\":%d,\"duration_ms\":%.3f,\"bytes_in\":%zu", cx->answered ? cx->status : 0, dt * 1e3,
                 cx->body.len);
    if (cx->model) {
      mp_sb_puts(&sb, ",\"model\":");
      mp_sb_json_str(&sb, cx->model, strlen(cx->model));
    }
    if (cx->inputs) mp_sb_printf(&sb, ",\"inputs\":%zu,\"tokens\":%zu", cx->inputs, cx->tokens);
    if (cx->truncated) mp_sb_printf(&sb, ",\"truncated\":%zu", cx->truncated);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
      mp_sb_printf(&sb, ",\"terminated\":\"%s\"",
                   toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED   ? "timeout"
                   : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT    ? "client_abort"
                   : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
                   : toe == MHD_REQUEST_TERMINATED_READ_ERROR      ? "read_error"
                                                                   : "error");
    if (cx->err[0]) {
      mp_sb_puts(&sb, ",\"error\":");
      mp_sb_json_str(&sb, cx->err, strlen(cx->err));
    }
    mp_sb_putc(&sb, '}');
    if (!sb.oom) log_line(g_access, sb.buf);
    mp_sb_free(&sb);
  }
  mp_sb_free(&cx->body);
  free(cx);
  *con_cls = NULL;
  atomic_fetch_sub(&g_inflight, 1);
}

/* ------------------------------------------------------------------ start-up, shutdown */

static void startup_log(const char *event, mp_sb *sb) {
  char ts[40];
  iso_time(ts, sizeof ts);
  mp_sb line;
  mp_sb_init(&line);
  mp_sb_printf(&line, "{\"ts\":\"%s\",\"event\":\"%s\",%s}", ts, event, sb->buf ? sb->buf : "");
  if (!line.oom) log_line(stderr, line.buf);
  mp_sb_free(&line);
}

static void lib_log(mlxport_log_level level, const char *message, void *user) {
  (void)user;
  if (level < MLXPORT_LOG_WARN) return;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "\"level\":\"%s\",\"message\":", level == MLXPORT_LOG_WARN ? "warn" : "error");
  mp_sb_json_str(&sb, message, strlen(message));
  startup_log("library", &sb);
  mp_sb_free(&sb);
}

static int parse_size(const char *v, const char *opt, long long lo, long long hi, size_t *out) {
  long long x;
  if (mp_cli_opt_int("serve", opt, v, lo, hi, &x)) return -1;
  *out = (size_t)x;
  return 0;
}

int mp_cmd_serve(int argc, char **argv) {
  serve_cfg *cfg = &g_cfg;
  *cfg = (serve_cfg){.host = "127.0.0.1",
                     .port = 8080,
                     .max_batch_tokens = 16384,
                     .max_client_batch = 64,
                     .max_queue = 256,
                     .max_body = 2u << 20,
                     .max_labels = 64,
                     .max_conn = 512,
                     .timeout_s = 10,
                     .request_timeout_s = 60,
                     .header_timeout_s = 10,
                     .drain_timeout_s = 30,
                     .threads = 0,
                     .compute = MLXPORT_COMPUTE_FAST};
  cfg->api_key = getenv("MLXPORT_API_KEY");
  if (cfg->api_key && !*cfg->api_key) cfg->api_key = NULL;
  const char **refs = calloc((size_t)argc, sizeof *refs);
  size_t n_refs = 0;
  const char *access = "-";
  if (!refs) return mp_cli_fail("serve", MLXPORT_ERR_NOMEM);
  int rc = MP_EXIT_USAGE;
  for (int i = 1; i < argc; i++) {
    const char *v;
    long long x;
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(k_help, stdout);
      free(refs);
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--model", &v)) {
      if (!v) goto out;
      refs[n_refs++] = v;
    } else if (mp_cli_opt(argc, argv, &i, "--host", &v)) {
      if (!v) goto out;
      cfg->host = v;
    } else if (mp_cli_opt(argc, argv, &i, "--port", &v)) {
      if (!v || mp_cli_opt_int("serve", "--port", v, 0, 65535, &x)) goto out;
      cfg->port = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--api-key", &v)) {
      if (!v) goto out;
      cfg->api_key = *v ? v : NULL;
    } else if (mp_cli_opt(argc, argv, &i, "--max-batch-tokens", &v)) {
      if (!v || parse_size(v, "--max-batch-tokens", 16, 1LL << 24, &cfg->max_batch_tokens)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--max-client-batch", &v)) {
      if (!v || parse_size(v, "--max-client-batch", 1, 1 << 20, &cfg->max_client_batch)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--max-queue", &v)) {
      if (!v || parse_size(v, "--max-queue", 1, 1 << 20, &cfg->max_queue)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--max-body-bytes", &v)) {
      if (!v || parse_size(v, "--max-body-bytes", 64, 1LL << 32, &cfg->max_body)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--max-labels", &v)) {
      if (!v || parse_size(v, "--max-labels", 1, 4096, &cfg->max_labels)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--max-connections-per-ip", &v)) {
      if (!v || parse_size(v, "--max-connections-per-ip", 0, 65536, &cfg->max_conn_ip)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--max-connections", &v)) {
      if (!v || parse_size(v, "--max-connections", 1, 65536, &cfg->max_conn)) goto out;
    } else if (mp_cli_opt(argc, argv, &i, "--timeout", &v)) {
      if (!v || mp_cli_opt_int("serve", "--timeout", v, 1, 3600, &x)) goto out;
      cfg->timeout_s = (unsigned)x;
    } else if (mp_cli_opt(argc, argv, &i, "--header-timeout", &v)) {
      if (!v || mp_cli_opt_int("serve", "--header-timeout", v, 1, 3600, &x)) goto out;
      cfg->header_timeout_s = (double)x;
    } else if (mp_cli_opt(argc, argv, &i, "--request-timeout", &v)) {
      if (!v || mp_cli_opt_int("serve", "--request-timeout", v, 1, 3600, &x)) goto out;
      cfg->request_timeout_s = (double)x;
    } else if (mp_cli_opt(argc, argv, &i, "--drain-timeout", &v)) {
      if (!v || mp_cli_opt_int("serve", "--drain-timeout", v, 0, 3600, &x)) goto out;
      cfg->drain_timeout_s = (double)x;
    } else if (mp_cli_opt(argc, argv, &i, "--threads", &v)) {
      if (!v || mp_cli_opt_int("serve", "--threads", v, 0, 1024, &x)) goto out;
      cfg->threads = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--compute", &v)) {
      if (!v) goto out;
      if (!strcmp(v, "fast"))
        cfg->compute = MLXPORT_COMPUTE_FAST;
      else if (!strcmp(v, "faithful"))
        cfg->compute = MLXPORT_COMPUTE_FAITHFUL;
      else {
        rc = mp_cli_usage_error("serve", "--compute must be fast or faithful, not %s", v);
        goto out;
      }
    } else if (mp_cli_opt(argc, argv, &i, "--device", &v)) {
      if (!v) goto out;
      if (strcmp(v, "cpu") && strcmp(v, "cuda") && strncmp(v, "cuda:", 5)) {
        rc = mp_cli_usage_error("serve", "--device must be cpu, cuda or cuda:N, not %s", v);
        goto out;
      }
      cfg->device = v;
    } else if (mp_cli_opt(argc, argv, &i, "--device-dtype", &v)) {
      mp_dtype dt;
      if (!v) goto out;
      if (mp_device_dtype_parse(v, &dt)) {
        rc = mp_cli_usage_error("serve", "--device-dtype must be float16, bfloat16 or float32, not %s", v);
        goto out;
      }
      cfg->device_dtype = v;
    } else if (mp_cli_opt(argc, argv, &i, "--access-log", &v)) {
      if (!v) goto out;
      access = v;
    } else {
      rc = mp_cli_usage_error("serve", "unknown argument %s", argv[i]);
      goto out;
    }
  }
  if (!n_refs) {
    rc = mp_cli_usage_error("serve", "give at least one --model");
    goto out;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int ipv6 = strchr(cfg->host, ':') != NULL;
  if (ipv6) {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) != 1) {
      rc = mp_cli_usage_error("serve", "--host %s is not an IPv4 or IPv6 address", cfg->host);
      goto out;
    }
  } else {
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) != 1) {
      rc = mp_cli_usage_error("serve", "--host %s is not an IPv4 or IPv6 address", cfg->host);
      goto out;
    }
  }
  if (!strcmp(access, "off"))
    g_access = NULL;
  else if (!strcmp(access, "-"))
    g_access = stderr;
  else if (!(g_access = fopen(access, "a"))) {
    fprintf(stderr, "mlxport serve: error: cannot open the access log %s: %s\n", access, strerror(errno));
    rc = MP_EXIT_ERROR;
    goto out;
  }
  mlxport_set_log_callback(lib_log, NULL, MLXPORT_LOG_WARN);
  g_t_start = (double)time(NULL);

  /* signals: every thread blocks them; the main thread waits for them with sigwait */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  g_models = calloc(n_refs, sizeof *g_models);
  if (!g_models) {
    rc = mp_cli_fail("serve", MLXPORT_ERR_NOMEM);
    goto out;
  }
  mlxport_model_options mo;
  mlxport_model_options_init(&mo);
  mo.threads = cfg->threads;
  mo.compute = cfg->compute;
  mo.device = cfg->device;
  mo.device_dtype = cfg->device_dtype;
  rc = MP_EXIT_ERROR;
  for (size_t i = 0; i < n_refs; i++) {
    served *s = &g_models[i];
    s->ref = refs[i];
    const char *sl = strrchr(refs[i], '/');
    s->short_id = sl && sl[1] ? sl + 1 : refs[i];
    double t0 = mp_now_s();
    mlxport_status st = mlxport_model_open(refs[i], &mo, &s->m);
    if (!st) st = mlxport_tokenizer_open(refs[i], &s->tok);
    if (st) {
      fprintf(stderr, "mlxport serve: error: model %s: %s\n", refs[i], mlxport_last_error());
      g_n_models = i + 1;
      goto stop_models;
    }
    s->dim = mlxport_model_dim(s->m);
    s->n_labels = mlxport_model_num_labels(s->m);
    s->max_len = mlxport_model_max_length(s->m);
    s->quantized = mlxport_model_is_quantized(s->m);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    pthread_cond_init(&s->cv_done, NULL);
    if (pthread_create(&s->th, NULL, worker, s)) {
      fprintf(stderr, "mlxport serve: error: cannot start a worker thread\n");
      mlxport_model_close(s->m);
      s->m = NULL;
      g_n_models = i;
      goto stop_models;
    }
    g_n_models = i + 1;
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_puts(&sb, "\"model\":");
    mp_sb_json_str(&sb, s->ref, strlen(s->ref));
    mp_sb_printf(&sb, ",\"dim\":%zu,\"num_labels\":%zu,\"labels\":[", s->dim, s->n_labels);
    for (size_t k = 0; k < s->n_labels; k++) {
      const char *l = mlxport_model_label(s->m, k);
      if (k) mp_sb_putc(&sb, ',');
      mp_sb_json_str(&sb, l ? l : "", l ? strlen(l) : 0);
    }
    mp_sb_printf(&sb,
                 "],\"max_length\":%zu,\"quantization\":\"%s\",\"compute\":\"%s\",\"threads\":%d,\"device\":\"%s\","
                 "\"load_s\":%.3f",
                 s->max_len, s->quantized ? "mlx-affine" : "none",
                 cfg->compute == MLXPORT_COMPUTE_FAST ? "fast" : "faithful", cfg->threads,
                 cfg->device ? cfg->device : "cpu", mp_now_s() - t0);
    startup_log("model_loaded", &sb);
    mp_sb_free(&sb);
  }

  {
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conn,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_conn_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!d) {
      fprintf(stderr, "mlxport serve: error: cannot listen on %s:%d: %s (is the port in use?)\n", cfg->host, cfg->port,
              strerror(errno));
      goto stop_models;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? (int)di->port : cfg->port;
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_puts(&sb, "\"host\":");
    mp_sb_json_str(&sb, cfg->host, strlen(cfg->host));
    mp_sb_printf(&sb,
                 ",\"port\":%d,\"models\":%zu,\"auth\":%s,\"max_batch_tokens\":%zu,\"max_client_batch\":%zu,"
                 "\"max_queue\":%zu,\"max_body_bytes\":%zu,\"timeout_s\":%u,\"version\":\"%s\"",
                 port, g_n_models, cfg->api_key ? "true" : "false", cfg->max_batch_tokens, cfg->max_client_batch,
                 cfg->max_queue, cfg->max_body, cfg->timeout_s, mlxport_version());
    startup_log("listening", &sb);
    pthread_t wd;
    int wd_ok = pthread_create(&wd, NULL, watchdog, NULL) == 0;
    mp_sb_free(&sb);

    int sig = 0;
    sigwait(&sigs, &sig);
    atomic_store(&g_draining, 1);
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "\"signal\":\"%s\",\"in_flight\":%ld", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 atomic_load(&g_inflight));
    startup_log("draining", &sb);
    mp_sb_free(&sb);
    MHD_socket ls = MHD_quiesce_daemon(d); /* no new connections */
    if (ls != MHD_INVALID_SOCKET) close(ls);
    double t_end = mp_now_s() + cfg->drain_timeout_s;
    while (atomic_load(&g_inflight) > 0 && mp_now_s() < t_end)
      usleep(10000);
    long left = atomic_load(&g_inflight);
    MHD_stop_daemon(d);
    atomic_store(&g_watch_stop, 1);
    if (wd_ok) pthread_join(wd, NULL);
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "\"unfinished\":%ld", left);
    startup_log("stopped", &sb);
    mp_sb_free(&sb);
    rc = MP_EXIT_OK;
  }
stop_models:
  for (size_t i = 0; i < g_n_models; i++) {
    served *s = &g_models[i];
    if (s->m && s->th) {
      pthread_mutex_lock(&s->mu);
      s->stop = 1;
      pthread_cond_broadcast(&s->cv_work);
      pthread_mutex_unlock(&s->mu);
      pthread_join(s->th, NULL);
    }
    mlxport_tokenizer_close(s->tok);
    mlxport_model_close(s->m);
  }
  free(g_models);
  g_models = NULL;
  if (g_access && g_access != stderr) fclose(g_access);
out:
  free(refs);
  return rc;
}
