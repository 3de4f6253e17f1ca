/* The device path of the model families without a GPU: a device backend of this file keeps its
 * "device" buffers in host memory in f32 and runs every operation of mp_device_ops with plain
 * loops (or the CPU kernels), and is attached to models opened on the CPU
 * (mp_model_device_attach). The device-side logic of the families then runs as on CUDA: the fused
 * Q/K/V projection (stacked weights, column offsets, row strides 3H in the attention), the
 * separate projections of MP_CUDA_FUSED_QKV=0, the per-pass index uploads. Embeddings and logits
 * must match the CPU path to float rounding, and the fused GEMM must really have run. (The CUDA
 * kernels themselves are checked on a GPU by tests/gpu/run.sh.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "mlxport/convert.h"
#include "model/model.h"
#include "model/model_internal.h"
#include "quant/mlx_fp.h"
#include "testlib.h"

#define MINILM "sentence-transformers/all-MiniLM-L6-v2"

/* ---------------------------------------------------------------- the host backend */

typedef struct host_dev {
  void **acts, **params;
  size_t n_acts, n_params;
  int64_t hidden;
  long dense_calls, fused3, fused2; /* GEMMs, of which [3H, H] / [2H, H] stacked */
  int quant;                        /* 1: MLX affine matrices stay "quantized" (qweight_ok says yes) */
  long q_uploads, q_dense;          /* matrices uploaded through upload_qweight, GEMMs that used one */
  const void *qmats[512];           /* those matrices (the dense op's w) */
  int fast8;                        /* 1: the fast mode (fast8_ok says yes for multiples of 16), 2: raw inputs too */
  long f8_uploads, f8_dense;        /* matrices uploaded through upload_fast8, GEMMs that used one */
  long keeps;                       /* keep_copy calls with an input */
  int fast_gelu;                    /* fast_act turns the erf GELU into its tanh form (the CUDA backend's default) */
  long gelu_erf, gelu_tanh;         /* GEMMs that asked for each GELU */
  const void *f8mats[512];
} host_dev;

static void *keep(void ***list, size_t *n, void *p) {
  if (!p) return NULL;
  void **l = realloc(*list, (*n + 1) * sizeof *l);
  if (!l) {
    free(p);
    return NULL;
  }
  *list = l, l[(*n)++] = p;
  return p;
}

static void hd_close(void *p) {
  host_dev *c = p;
  for (size_t i = 0; i < c->n_acts; i++)
    free(c->acts[i]);
  for (size_t i = 0; i < c->n_params; i++)
    free(c->params[i]);
  free(c->acts), free(c->params), free(c);
}
static const char *hd_describe(void *p) {
  (void)p;
  return "host test device, float32";
}
static mp_status hd_begin(void *p) {
  host_dev *c = p;
  for (size_t i = 0; i < c->n_acts; i++)
    free(c->acts[i]);
  c->n_acts = 0;
  return MP_OK;
}
static void *hd_alloc(void *p, size_t n) {
  host_dev *c = p;
  return keep(&c->acts, &c->n_acts, calloc(n ? n : 1, sizeof(float)));
}
static void *hd_upload_act(void *p, const void *host, size_t bytes) {
  host_dev *c = p;
  void *d = keep(&c->acts, &c->n_acts, malloc(bytes ? bytes : 1));
  if (d) memcpy(d, host, bytes);
  return d;
}
static void *hd_upload_param(void *p, const float *host, int64_t n, int as_compute) {
  (void)as_compute; /* f32 either way */
  host_dev *c = p;
  void *d = keep(&c->params, &c->n_params, malloc((size_t)n * sizeof(float)));
  if (d) memcpy(d, host, (size_t)n * sizeof(float));
  return d;
}
/* upload_qweight as the CUDA backend's contract says: codes [out, in] bytes, scales / biases f32
 * [out, in / group]; kept here as the f32 matrix mx.dequantize gives (product rounded, then sum) */
static int hd_qweight_ok(void *p, int64_t out, int64_t in, int group) {
  host_dev *c = p;
  return c->quant && out > 0 && in % group == 0;
}
static void *hd_upload_qweight(void *p, const uint8_t *codes, const float *scales, const float *biases, int64_t out,
                               int64_t in, int group) {
  host_dev *c = p;
  float *w = malloc((size_t)(out * in) * sizeof *w);
  if (!w || c->q_uploads >= (long)(sizeof c->qmats / sizeof *c->qmats)) {
    free(w);
    mp_err(MP_ERR_NOMEM, "host device: out of memory");
    return NULL;
  }
  const int64_t G = in / group;
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < in; i++) {
      const float prod = scales[o * G + i / group] * (float)codes[o * in + i];
      w[o * in + i] = prod + biases[o * G + i / group];
    }
  c->qmats[c->q_uploads++] = w;
  return keep(&c->params, &c->n_params, w);
}
/* the fast mode as the CUDA backend's contract says (fp8gemm.cuh): each row of n values rounded to
 * E4M3 with the scale max|row| / 448, kept here dequantized (code × scale) in f32 */
static void f8_rows(const float *x, int64_t rows, int64_t n, float *out) {
  for (int64_t r = 0; r < rows; r++) {
    float amax = 0;
    for (int64_t k = 0; k < n; k++)
      amax = fmaxf(amax, fabsf(x[r * n + k]));
    const float sc = amax > 0 && amax < INFINITY ? amax / 448.0f : 1.0f, inv = 1.0f / sc;
    for (int64_t k = 0; k < n; k++)
      out[r * n + k] = mp_fp8_e4m3_to_f32(mp_fp8_e4m3_from_f32(x[r * n + k] * inv)) * sc;
  }
}
/* the CUDA backend's policy: layers with a raw input (no E4M3 copy from their producer) stay
 * faithful unless fast8 == 2 (MP_CUDA_FAST8_RAW=1) */
static int hd_fast8_ok(void *p, int64_t out, int64_t in, int raw_input) {
  host_dev *c = p;
  return c->fast8 && (!raw_input || c->fast8 == 2) && out > 0 && in > 0 && out % 16 == 0 && in % 16 == 0;
}
static void *hd_upload_fast8(void *p, const float *w, int64_t out, int64_t in) {
  host_dev *c = p;
  float *q = malloc((size_t)(out * in) * sizeof *q);
  if (!q || c->f8_uploads >= (long)(sizeof c->f8mats / sizeof *c->f8mats)) {
    free(q);
    mp_err(MP_ERR_NOMEM, "host device: out of memory");
    return NULL;
  }
  f8_rows(w, out, in, q);
  c->f8mats[c->f8_uploads++] = q;
  return keep(&c->params, &c->n_params, q);
}
static mp_status hd_dense(void *p, const void *x, int64_t rows, const void *w, int64_t out, int64_t in,
                          const void *bias, mp_act act, void *y) {
  host_dev *c = p;
  c->dense_calls++;
  c->gelu_erf += act == MP_ACT_GELU_ERF, c->gelu_tanh += act == MP_ACT_GELU_TANH;
  for (long i = 0; i < c->q_uploads; i++)
    if (c->qmats[i] == w) c->q_dense++;
  if (out == 3 * c->hidden && in == c->hidden) c->fused3++;
  if (out == 2 * c->hidden && in == c->hidden) c->fused2++;
  for (long i = 0; i < c->f8_uploads; i++)
    if (c->f8mats[i] == w) {
      c->f8_dense++;
      float *xq = malloc((size_t)(rows * in) * sizeof *xq);
      if (!xq) return mp_err(MP_ERR_NOMEM, "host device: out of memory");
      f8_rows(x, rows, in, xq);
      mp_linear_weight lw = {.name = "host device fp8 weight", .out = out, .in = in, .dtype = MP_F32, .data = w};
      mp_status st = mp_linear_act(NULL, xq, rows, &lw, bias, MP_F32, act, y);
      free(xq);
      return st;
    }
  mp_linear_weight lw = {.name = "host device weight", .out = out, .in = in, .dtype = MP_F32, .data = w};
  return mp_linear_act(NULL, x, rows, &lw, bias, MP_F32, act, y);
}
static mp_status hd_layernorm(void *p, const void *x, const void *res, int64_t rows, int64_t dim, const void *g,
                              const void *b, float eps, void *out) {
  (void)p;
  mp_layernorm(NULL, x, res, rows, dim, g, b, eps, out);
  return MP_OK;
}
static mp_status hd_embed(void *p, int n, const void *const *tables, const int32_t *const *ids, int64_t rows,
                          int64_t dim, float scale0, const void *g, const void *b, float eps, void *out) {
  (void)p;
  float *o = out;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t d = 0; d < dim; d++) {
      float s = ((const float *)tables[0])[(int64_t)ids[0][r] * dim + d] * scale0;
      for (int t = 1; t < n; t++)
        s += ((const float *)tables[t])[(int64_t)ids[t][r] * dim + d];
      o[r * dim + d] = s;
    }
  if (g) mp_layernorm(NULL, o, NULL, rows, dim, g, b, eps, o);
  return MP_OK;
}
/* every term of mp_dev_attention, one score at a time */
static mp_status hd_attention(void *p, const mp_dev_attention *a) {
  (void)p;
  const int64_t D = a->head_dim, HD = a->heads * D;
  const int64_t ldq = a->ldq ? a->ldq : HD, ldk = a->ldk ? a->ldk : HD, ldv = a->ldv ? a->ldv : HD;
  const int64_t ldo = a->ldo ? a->ldo : HD, ldp = a->ldp ? a->ldp : HD;
  const float *Q = a->q, *K = a->k, *V = a->v, *PK = a->pos_k, *PQ = a->pos_q;
  float *s = malloc((size_t)a->seq_k * sizeof *s);
  if (!s) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t b = 0; b < a->batch; b++)
    for (int64_t h = 0; h < a->heads; h++)
      for (int64_t i = 0; i < a->seq_q; i++) {
        const float *q = Q + (b * a->seq_q + i) * ldq + h * D;
        float mx = -INFINITY;
        for (int64_t j = 0; j < a->seq_k; j++) {
          const float *k = K + (b * a->seq_k + j) * ldk + h * D;
          const int64_t dd = i - j + a->seq_k - 1;
          int ok = (!a->key_mask || a->key_mask[b * a->seq_k + j]) && (!a->causal || j <= i) &&
                   (a->window <= 0 || (i - j <= a->window && j - i <= a->window));
          float v = 0;
          for (int64_t d = 0; d < D; d++)
            v += q[d] * k[d];
          v *= a->scale;
          if (PK && a->cix)
            for (int64_t d = 0; d < D; d++)
              v += a->scale * q[d] * PK[(int64_t)a->cix[dd] * ldp + h * D + d];
          if (PQ && a->pix)
            for (int64_t d = 0; d < D; d++)
              v += a->scale * k[d] * PQ[(int64_t)a->pix[dd] * ldp + h * D + d];
          if (a->bias_tab) v += a->bias_tab[(int64_t)a->bidx[dd] * a->heads + h];
          s[j] = ok ? v : -INFINITY;
          mx = s[j] > mx ? s[j] : mx;
        }
        float sum = 0;
        for (int64_t j = 0; j < a->seq_k; j++) {
          s[j] = mx == -INFINITY ? 0.0f : expf(s[j] - mx);
          sum += s[j];
        }
        float *o = (float *)a->out + (b * a->seq_q + i) * ldo + h * D;
        for (int64_t d = 0; d < D; d++) {
          float acc = 0;
          for (int64_t j = 0; j < a->seq_k; j++)
            acc += s[j] * V[(b * a->seq_k + j) * ldv + h * D + d];
          o[d] = sum > 0 ? acc / sum : 0.0f;
        }
      }
  free(s);
  return MP_OK;
}
static mp_status hd_gather_rows(void *p, const void *x, int64_t n, int64_t stride, int64_t dim, void *out) {
  (void)p;
  for (int64_t r = 0; r < n; r++)
    memcpy((float *)out + r * dim, (const float *)x + r * stride * dim, (size_t)dim * sizeof(float));
  return MP_OK;
}
static mp_status hd_pool(void *p, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                         int pooling, int normalize, float *out) {
  (void)p;
  for (int64_t r = 0; r < batch; r++) {
    const float *xr = (const float *)x + r * seq * dim;
    float *e = out + r * dim, cnt = 0;
    for (int64_t t = 0; t < seq; t++)
      cnt += !mask || mask[r * seq + t];
    for (int64_t d = 0; d < dim; d++) {
      float v = pooling == 3 ? -INFINITY : 0.0f;
      for (int64_t t = 0; t < seq && pooling != 1; t++)
        if (!mask || mask[r * seq + t]) v = pooling == 3 ? fmaxf(v, xr[t * dim + d]) : v + xr[t * dim + d];
      if (pooling == 1) v = xr[d];
      if (pooling == 2 || pooling == 4) v /= pooling == 4 ? sqrtf(fmaxf(cnt, 1e-9f)) : fmaxf(cnt, 1e-9f);
      e[d] = v;
    }
    if (normalize) {
      float n2 = 0;
      for (int64_t d = 0; d < dim; d++)
        n2 += e[d] * e[d];
      float nrm = fmaxf(sqrtf(n2), 1e-12f);
      for (int64_t d = 0; d < dim; d++)
        e[d] /= nrm;
    }
  }
  return MP_OK;
}
static mp_status hd_gather_idx(void *p, const void *x, int64_t n, const int32_t *idx, int64_t dim, void *out) {
  (void)p;
  for (int64_t r = 0; r < n; r++) {
    if (idx[r] < 0)
      memset((float *)out + r * dim, 0, (size_t)dim * sizeof(float));
    else
      memcpy((float *)out + r * dim, (const float *)x + (int64_t)idx[r] * dim, (size_t)dim * sizeof(float));
  }
  return MP_OK;
}
static mp_status hd_zero_rows(void *p, void *x, int64_t rows, int64_t dim, const uint8_t *keep_row) {
  (void)p;
  for (int64_t r = 0; r < rows; r++)
    if (!keep_row[r]) memset((float *)x + r * dim, 0, (size_t)dim * sizeof(float));
  return MP_OK;
}
static mp_status hd_download(void *p, const void *x, size_t n, float *host) {
  (void)p;
  memcpy(host, x, n * sizeof(float));
  return MP_OK;
}
static mp_status hd_rope_split(void *p, const void *qkv, int64_t rows, int64_t seq, int64_t hidden, int64_t d,
                               const float *cs, void *q, void *k, void *v) {
  (void)p, (void)qkv, (void)rows, (void)seq, (void)hidden, (void)d, (void)cs, (void)q, (void)k, (void)v;
  return mp_err(MP_ERR_UNSUPPORTED, "host test device: no rotary embeddings");
}
static mp_status hd_binary(void *p, void *x, const void *y, int64_t n, int op) {
  (void)p;
  float *a = x;
  const float *b = y;
  for (int64_t i = 0; i < n; i++)
    a[i] = op ? a[i] * b[i] : a[i] + b[i];
  return MP_OK;
}
/* the host device rounds every fast-mode GEMM's input itself: a kept copy changes nothing but the count */
static mp_status hd_keep_copy(void *p, const void *x, int64_t rows, int64_t dim) {
  host_dev *c = p;
  if (x && rows > 0 && dim > 0) c->keeps++;
  return MP_OK;
}
static mp_status hd_mean_rows(void *p, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                              void *out) {
  (void)p, (void)x, (void)batch, (void)seq, (void)dim, (void)mask, (void)out;
  return mp_err(MP_ERR_UNSUPPORTED, "host test device: no mean rows");
}
static size_t hd_peak(void *p) {
  (void)p;
  return 0;
}
static mp_status hd_affine(void *p, const void *x, const void *res, int64_t rows, int64_t dim, const void *g,
                           const void *b, void *out) {
  (void)p;
  const float *xf = x, *rf = res, *gf = g, *bf = b;
  float *o = out;
  for (int64_t i = 0; i < rows * dim; i++) {
    float v = rf ? xf[i] + rf[i] : xf[i];
    float pr = v * gf[i % dim];
    o[i] = pr + (bf ? bf[i % dim] : 0.0f);
  }
  return MP_OK;
}

/* the CUDA backend's: in the fast mode the erf GELU is asked for in its tanh form */
static mp_act hd_fast_act(void *p, mp_act act) {
  const host_dev *c = p;
  return c->fast_gelu && act == MP_ACT_GELU_ERF ? MP_ACT_GELU_TANH : act;
}

static const mp_device_ops host_ops = {.name = "host",
                                       .close = hd_close,
                                       .describe = hd_describe,
                                       .begin = hd_begin,
                                       .alloc = hd_alloc,
                                       .upload_act = hd_upload_act,
                                       .upload_param = hd_upload_param,
                                       .dense = hd_dense,
                                       .layernorm = hd_layernorm,
                                       .embed_sum_ln = hd_embed,
                                       .attention = hd_attention,
                                       .gather_rows = hd_gather_rows,
                                       .pool = hd_pool,
                                       .gather_idx = hd_gather_idx,
                                       .zero_rows = hd_zero_rows,
                                       .download = hd_download,
                                       .rope_split = hd_rope_split,
                                       .binary = hd_binary,
                                       .mean_rows = hd_mean_rows,
                                       .peak_bytes = hd_peak,
                                       .affine = hd_affine,
                                       .qweight_ok = hd_qweight_ok,
                                       .upload_qweight = hd_upload_qweight,
                                       .fast8_ok = hd_fast8_ok,
                                       .upload_fast8 = hd_upload_fast8,
                                       .keep_copy = hd_keep_copy,
                                       .fast_act = hd_fast_act};

/* ---------------------------------------------------------------- the checks */

static const char *g_a[] = {"A man is playing a guitar on the street.", "The weather is lovely today", "Three dogs run",
                            "an unusually long sentence about nothing much at all, with commas"};
static const char *g_b[] = {"Someone plays music.", "It is raining heavily", "Animals are moving", "a short one"};
#define N_IN 4

static double max_diff(const float *x, const float *y, size_t n) {
  double w = 0;
  for (size_t i = 0; i < n; i++)
    w = fmax(w, fabs((double)x[i] - y[i]));
  return w;
}

/* out = embeddings ([N_IN, hidden]) or logits ([N_IN, num_labels]) of the model as it runs now */
static mp_status run(mp_model *m, int logits, float *out) {
  mp_run_options ro;
  mp_run_options_init(&ro);
  if (logits) return mp_model_classify(m, N_IN, g_a, g_b, &ro, out, NULL);
  return mp_model_embed(m, N_IN, g_a, &ro, out, NULL);
}

/* CPU, then the host device with fused Q/K/V, then with MP_CUDA_FUSED_QKV=0. tol is relative to
 * the largest |value| of the CPU output (at least 1). stacked: the [3H, H] GEMMs a pass must run
 * fused (-1: only fewer GEMMs than unfused, for families with other shapes). */
static void check_model(const char *ref, int logits, double tol, long stacked) {
  mp_model *m = NULL;
  mp_model_options mo;
  memset(&mo, 0, sizeof mo);
  mo.threads = 1;
  mp_status s = mp_model_open(ref, &mo, &m);
  CHECKF(s == MP_OK, "%s: %s", ref, mp_last_error());
  if (s) return;
  const int64_t H = m->cfg.hidden, L = m->cfg.layers;
  const size_t n = (size_t)N_IN * (size_t)(logits ? m->cfg.num_labels : H);
  float *cpu = calloc(n, 4), *dev = calloc(n, 4);
  REQUIRE(cpu && dev);
  CHECK_OK(run(m, logits, cpu));
  double scale = 1;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs((double)cpu[i]));
  tol *= scale;
  host_dev *c = calloc(1, sizeof *c);
  REQUIRE(c);
  c->hidden = H;
  CHECK_OK(mp_model_device_attach(m, &host_ops, c, MP_F32));
  long calls_fused = 0;
  for (int fuse = 1; fuse >= 0; fuse--) {
    m->dev_fuse = fuse;
    c->dense_calls = c->fused3 = c->fused2 = 0;
    memset(dev, 0, n * 4);
    s = run(m, logits, dev);
    CHECKF(s == MP_OK, "%s on the host device (fused %d): %s", ref, fuse, mp_last_error());
    double d = max_diff(cpu, dev, n);
    CHECKF(d <= tol, "%s: the device path (fused %d) differs from the CPU by %g (> %g)", ref, fuse, d, tol);
    /* one stacked [3H, H] GEMM per layer and forward pass (the texts go in one batch), none unfused */
    if (stacked >= 0)
      CHECKF(fuse ? c->fused3 == stacked : c->fused3 == 0, "%s (fused %d): %ld stacked q/k/v GEMMs for %lld layers",
             ref, fuse, c->fused3, (long long)L);
    if (fuse)
      calls_fused = c->dense_calls;
    else
      CHECKF(calls_fused < c->dense_calls, "%s: %ld GEMMs fused, %ld unfused", ref, calls_fused, c->dense_calls);
    fprintf(stderr, "%s, fused %d: max |device - cpu| %g, %ld GEMMs (%ld stacked q/k/v)\n", ref, fuse, d,
            c->dense_calls, c->fused3);
  }
  free(cpu), free(dev);
  mp_model_close(m);
}

static char g_nli[4200], g_mpnet[4200];

static void test_bert_embed(void) { check_model(MINILM, 0, 1e-5, 6); }
static void test_bert_classify(void) { check_model(g_nli, 1, 1e-4, 6); }
static void test_mpnet_embed(void) { check_model(g_mpnet, 0, 1e-5, 12); }

/* MP_TEST_DEVICE_FIXTURES=DIR: the random-weight twins of tools/make_model_fixtures.py in DIR
 * (DIR/<name>-st) as well, every family with separate q/k/v (tests/py/test_device_host_twins.py) */
static void test_fixtures(void) {
  const char *dir = getenv("MP_TEST_DEVICE_FIXTURES");
  static const char *const names[] = {"roberta-cls",    "distilbert-cls",     "mpnet-cls",
                                      "deberta-wp-cls", "deberta-bin-wp-cls", "bart-cls",
                                      "mobilebert-cls", "mobilebert-var-cls", "mobilebert-nobn-cls"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s-st", dir, names[i]);
    check_model(p, 1, 1e-4, -1);
  }
}

/* src converted to MLX affine `bits` / `group` at out (1), or a failed check (0) */
static int convert_q(const char *src, const char *out, int bits, int group) {
  mlxport_convert_options o;
  mlxport_convert_options_init(&o);
  o.source = src, o.output = out, o.quantize = 1, o.bits = bits, o.group_size = group;
  if (mlxport_convert(&o, NULL) == MLXPORT_OK) return 1;
  CHECKF(0, "converting %s to %d bits: %s", src, bits, mlxport_last_error());
  return 0;
}
/* path opened on the CPU, one thread, in the faithful mode (no CPU integer packs: a device's mode
 * is set after attaching it); NULL after a failed check */
static mp_model *open_faithful(const char *path) {
  mp_model *m = NULL;
  mp_model_options mo;
  memset(&mo, 0, sizeof mo);
  mo.threads = 1;
  mo.compute = MP_COMPUTE_FAITHFUL;
  mp_status s = mp_model_open(path, &mo, &m);
  CHECKF(s == MP_OK, "%s: %s", path, mp_last_error());
  return s ? NULL : m;
}

/* The fast mode's per-family policy on the twins, converted to MLX q8 (classification logits):
 * BART's decoder layers take the encoder output's kept copy (keep_copy, once per pass), so its
 * cross-attention keys / values go on the 8-bit path only on a device that has keep_copy (exactly
 * one stacked k|v matrix per decoder layer more); MobileBERT's layers all count as raw_input (NoNorm
 * writes no copy): none goes on it unless raw inputs are allowed (fast8 == 2). The logits stay
 * within 0.1 of the largest CPU faithful logit (0.3 with every layer on E4M3; measured 0.0017 and
 * 0.14). */
static long fast8_uploads(const char *q8, const mp_device_ops *ops, int fast8, long *keeps, const float *cpu,
                          size_t n) {
  mp_model *m = open_faithful(q8);
  if (!m) return -1;
  host_dev *c = calloc(1, sizeof *c);
  float *dev = calloc(n, 4);
  if (!c || !dev) {
    CHECKF(0, "out of memory");
    free(c), free(dev);
    mp_model_close(m);
    return -1;
  }
  c->hidden = m->cfg.hidden, c->fast8 = fast8, c->fast_gelu = 1;
  CHECK_OK(mp_model_device_attach(m, ops, c, MP_F32));
  m->dev_fuse = 1;
  m->compute = MP_COMPUTE_FAST;
  CHECK_OK(run(m, 1, dev));
  double d = max_diff(cpu, dev, n), scale = 1;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs((double)cpu[i]));
  /* every layer on E4M3 (fast8 2) in a random-weight twin moves the logits more */
  const double bound = fast8 == 2 ? 0.3 : 0.1;
  CHECKF(d <= bound * scale, "%s (fast8 %d): logits differ from the CPU faithful path by %g (> %g)", q8, fast8, d,
         bound * scale);
  const long up = c->f8_uploads;
  *keeps = c->keeps;
  fprintf(stderr, "%s: fast8 %d%s: %ld fast matrices, %ld kept copies, max |logit diff| %g\n", q8, fast8,
          ops->keep_copy ? "" : " (no keep_copy)", up, c->keeps, d);
  free(dev);
  mp_model_close(m);
  return up;
}
static void test_fast8_policy(const char *dir) {
  static const char *const names[] = {"bart-cls", "mobilebert-cls"};
  mp_device_ops nokeep = host_ops;
  nokeep.keep_copy = NULL;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char src[4200], q8[4200];
    snprintf(src, sizeof src, "%s/%s-st", dir, names[i]);
    snprintf(q8, sizeof q8, "%s/%s-f8-q8", mp_test_tmpdir(), names[i]);
    mp_model *m = convert_q(src, q8, 8, 32) ? open_faithful(q8) : NULL;
    if (!m) continue;
    const size_t n = (size_t)N_IN * (size_t)m->cfg.num_labels;
    const long dec_layers = (long)mp_json_get_int(m->cfg_json, "decoder_layers", 0); /* BART */
    float *cpu = calloc(n, 4);
    REQUIRE(cpu);
    CHECK_OK(run(m, 1, cpu));
    mp_model_close(m);
    long k_keep = 0, k_nokeep = 0, k_raw = 0;
    const long with = fast8_uploads(q8, &host_ops, 1, &k_keep, cpu, n);
    const long without = fast8_uploads(q8, &nokeep, 1, &k_nokeep, cpu, n);
    const long raw = fast8_uploads(q8, &host_ops, 2, &k_raw, cpu, n);
    if (i == 0) { /* BART */
      /* one stacked k|v matrix per decoder layer more */
      CHECKF(dec_layers > 0 && with == without + dec_layers && without > 0,
             "%s: %ld fast matrices with keep_copy, %ld without, %ld decoder layers", q8, with, without, dec_layers);
      CHECKF(k_keep == 1 && k_nokeep == 0, "%s: %ld kept copies a pass (1 expected), %ld without keep_copy", q8, k_keep,
             k_nokeep);
      CHECKF(raw > with, "%s: %ld fast matrices with raw inputs allowed, %ld without", q8, raw, with);
    } else { /* MobileBERT */
      CHECKF(with == 0 && without == 0, "%s: %ld / %ld fast matrices by default (0 expected: all raw_input)", q8, with,
             without);
      CHECKF(raw > 0, "%s: no fast matrix with raw inputs allowed", q8);
    }
    free(cpu);
  }
}

static void test_fast8_fixtures(void) { test_fast8_policy(getenv("MP_TEST_DEVICE_FIXTURES")); }

/* the stacked weight is keyed by the first part and cached: a second pass uploads nothing */
static void test_upload_once(void) {
  mp_model *m = NULL;
  mp_model_options mo;
  memset(&mo, 0, sizeof mo);
  mo.threads = 1;
  mp_status s = mp_model_open(MINILM, &mo, &m);
  CHECKF(s == MP_OK, "%s", mp_last_error());
  if (s) return;
  host_dev *c = calloc(1, sizeof *c);
  REQUIRE(c);
  c->hidden = m->cfg.hidden;
  CHECK_OK(mp_model_device_attach(m, &host_ops, c, MP_F32));
  m->dev_fuse = 1;
  float *e = calloc((size_t)N_IN * (size_t)m->cfg.hidden, 4);
  REQUIRE(e);
  CHECK_OK(run(m, 0, e));
  size_t params = c->n_params;
  CHECK_OK(run(m, 0, e));
  CHECKF(c->n_params == params, "the second pass uploaded %zu more parameters", c->n_params - params);
  /* the separate q, k, v weights were never uploaded: per layer the stacked weight and bias, o,
   * intermediate, output (weight + bias each) and two LayerNorms (g + b) = 12; embeddings: 3
   * tables + LayerNorm g, b = 5 */
  CHECKF(params == (size_t)(12 * m->cfg.layers + 5), "%zu parameters uploaded for %lld layers", params,
         (long long)m->cfg.layers);
  free(e);
  mp_model_close(m);
}

/* MLX-quantized models through the device path with the matrices kept quantized
 * (mp_dev_dense_weight / mp_dev_weight_cat -> upload_qweight): the codes unpacked from MLX's bit
 * streams (2, 3, 4, 5, 6 and 8 bits), the scales and biases, the stacked Q/K/V matrix. The host
 * device dequantizes them as mx.dequantize does, so the result must match the CPU faithful path to
 * float rounding; every quantized dense layer must have gone through upload_qweight. */
static void test_quantized(void) {
  static const int bits[] = {2, 3, 4, 5, 6, 8};
  for (size_t b = 0; b < sizeof bits / sizeof *bits; b++) {
    char out[4200];
    snprintf(out, sizeof out, "%s/minilm-q%d", mp_test_tmpdir(), bits[b]);
    mp_model *m = convert_q(MINILM, out, bits[b], b % 2 ? 32 : 64) ? open_faithful(out) : NULL;
    if (!m) continue;
    const size_t n = (size_t)N_IN * (size_t)m->cfg.hidden;
    float *cpu = calloc(n, 4), *dev = calloc(n, 4);
    REQUIRE(cpu && dev);
    CHECK_OK(run(m, 0, cpu));
    host_dev *c = calloc(1, sizeof *c);
    REQUIRE(c);
    c->hidden = m->cfg.hidden, c->quant = 1;
    CHECK_OK(mp_model_device_attach(m, &host_ops, c, MP_F32));
    m->dev_fuse = 1;
    CHECK_OK(run(m, 0, dev));
    const double d = max_diff(cpu, dev, n);
    CHECKF(d <= 1e-5, "%s: the device path with quantized matrices differs from the CPU by %g", out, d);
    /* per layer: stacked q/k/v, o, intermediate, output = 4 matrices, 4 GEMMs per pass */
    CHECKF(c->q_uploads == 4 * m->cfg.layers && c->q_dense == 4 * m->cfg.layers,
           "%s: %ld matrices kept quantized, %ld GEMMs on them, for %lld layers", out, c->q_uploads, c->q_dense,
           (long long)m->cfg.layers);
    CHECKF(c->fused3 == m->cfg.layers, "%s: %ld stacked q/k/v GEMMs", out, c->fused3);
    fprintf(stderr, "%s: max |device - cpu| %g, %ld quantized matrices\n", out, d, c->q_uploads);
    free(cpu), free(dev);
    mp_model_close(m);
  }
}

/* The device's fast mode (--compute fast on a device, mp_dev_fast8 -> upload_fast8): an MLX q8 / q4
 * MiniLM whose quantized dense layers go up through upload_fast8 as the f32 values mx.dequantize
 * gives, and whose GEMMs take E4M3-rounded rows of weights and activations (the host device rounds
 * as the CUDA backend's contract says). By default only the layers fed by a LayerNorm (the stacked
 * Q/K/V, the intermediate layer) take it: the attention output and feed-forward output layers are
 * marked raw_input and stay faithful; with raw inputs allowed (MP_CUDA_FAST8_RAW=1's policy) all
 * four matrices of a layer do. The embeddings must stay close to the CPU faithful path (cosine >=
 * 0.995) yet differ from it by more than float rounding (the second rounding really happened; E4M3
 * keeps 3 mantissa bits: measured 0.9973 for q8 with every layer); with the fast mode off
 * (fast8_ok says no) the same model goes the faithful way. */
static double min_cosine(const float *a, const float *b, size_t rows, size_t dim) {
  double w = 1;
  for (size_t r = 0; r < rows; r++) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < dim; k++)
      ab += (double)a[r * dim + k] * b[r * dim + k], aa += (double)a[r * dim + k] * a[r * dim + k],
          bb += (double)b[r * dim + k] * b[r * dim + k];
    w = fmin(w, ab / sqrt(aa * bb));
  }
  return w;
}
static void test_fast8(void) {
  static const int bits[] = {8, 4};
  for (size_t b = 0; b < sizeof bits / sizeof *bits; b++) {
    char out[4200];
    snprintf(out, sizeof out, "%s/minilm-f8-q%d", mp_test_tmpdir(), bits[b]);
    if (!convert_q(MINILM, out, bits[b], 64)) continue;
    for (int on = 2; on >= 0; on--) {
      mp_model *m = open_faithful(out);
      if (!m) continue;
      const size_t H = (size_t)m->cfg.hidden, n = (size_t)N_IN * H;
      float *cpu = calloc(n, 4), *dev = calloc(n, 4);
      REQUIRE(cpu && dev);
      CHECK_OK(run(m, 0, cpu));
      host_dev *c = calloc(1, sizeof *c);
      REQUIRE(c);
      c->hidden = m->cfg.hidden, c->fast8 = on, c->fast_gelu = on != 0; /* off: the model computes faithfully */
      CHECK_OK(mp_model_device_attach(m, &host_ops, c, MP_F32));
      m->dev_fuse = 1;
      m->compute = MP_COMPUTE_FAST;
      CHECK_OK(run(m, 0, dev));
      const double cs = min_cosine(cpu, dev, N_IN, H), d = max_diff(cpu, dev, n);
      if (on) {
        CHECKF(cs >= 0.995, "%s: fast mode: min cosine %.6f with the CPU faithful path", out, cs);
        CHECKF(d > 1e-4, "%s: fast mode: max |diff| %g: no second rounding happened", out, d);
        const long per_layer = on == 2 ? 4 : 2; /* q/k/v + intermediate (+ attention output, output) */
        CHECKF(c->f8_uploads == per_layer * m->cfg.layers && c->f8_dense == per_layer * m->cfg.layers,
               "%s: mode %d: %ld matrices uploaded in the fast mode, %ld GEMMs on them, for %lld layers", out, on,
               c->f8_uploads, c->f8_dense, (long long)m->cfg.layers);
        CHECKF(c->fused3 == m->cfg.layers, "%s: %ld stacked q/k/v GEMMs", out, c->fused3);
        fprintf(stderr, "%s: fast mode %d (E4M3): min cosine %.6f, max |diff| %g, %ld matrices\n", out, on, cs, d,
                c->f8_uploads);
      } else {
        CHECKF(c->f8_uploads == 0 && d <= 1e-5, "%s: fast mode off: %ld fast uploads, max |diff| %g", out,
               c->f8_uploads, d);
      }
      free(cpu), free(dev);
      mp_model_close(m);
    }
  }
}

/* mp_device_ops.fast_act on float weights: in the fast mode every feed-forward GEMM of the real
 * MiniLM asks for the tanh-form GELU (which the CUDA backend fuses into its GEMM), in the faithful
 * mode, or from a backend that keeps the erf form, the erf GELU. The tanh form moves the
 * embeddings (by more than float rounding, so it really ran) but keeps them within cosine 0.99999
 * of the exact ones (|erf - tanh GELU| < 4.8e-4). */
static void test_fast_act(void) {
  for (int mode = 0; mode < 3; mode++) { /* faithful; fast, erf kept; fast, tanh form */
    mp_model *m = open_faithful(MINILM);
    if (!m) return;
    const size_t H = (size_t)m->cfg.hidden, n = (size_t)N_IN * H;
    float *cpu = calloc(n, 4), *dev = calloc(n, 4);
    host_dev *c = calloc(1, sizeof *c);
    REQUIRE(cpu && dev && c);
    CHECK_OK(run(m, 0, cpu));
    c->hidden = m->cfg.hidden, c->fast8 = 1, c->fast_gelu = mode == 2;
    CHECK_OK(mp_model_device_attach(m, &host_ops, c, MP_F32));
    m->dev_fuse = 1;
    m->compute = mode ? MP_COMPUTE_FAST : MP_COMPUTE_FAITHFUL;
    CHECK_OK(run(m, 0, dev));
    const double cs = min_cosine(cpu, dev, N_IN, H), d = max_diff(cpu, dev, n);
    const long L = (long)m->cfg.layers;
    if (mode == 2) {
      CHECKF(c->gelu_tanh == L && c->gelu_erf == 0, "fast mode: %ld tanh-form, %ld erf GELU GEMMs for %ld layers",
             c->gelu_tanh, c->gelu_erf, L);
      CHECKF(cs >= 0.99999 && d > 1e-6, "fast mode, tanh-form GELU: min cosine %.8f, max |diff| %g", cs, d);
    } else {
      CHECKF(c->gelu_erf == L && c->gelu_tanh == 0, "mode %d: %ld erf, %ld tanh-form GELU GEMMs for %ld layers", mode,
             c->gelu_erf, c->gelu_tanh, L);
      CHECKF(d <= 1e-5, "mode %d, erf GELU: max |device - cpu| %g", mode, d);
    }
    fprintf(stderr, "fast_act mode %d: min cosine %.8f, max |diff| %g\n", mode, cs, d);
    free(cpu), free(dev);
    mp_model_close(m);
  }
}

int main(void) {
  const char *cache = mp_test_use_cache();
  snprintf(g_nli, sizeof g_nli, "%s/models/nli-minilm-l6-snli", cache);
  snprintf(g_mpnet, sizeof g_mpnet, "%s/models/all-mpnet-base-v2", cache);
  RUN(test_bert_embed);
  RUN(test_bert_classify);
  RUN(test_mpnet_embed);
  RUN(test_upload_once);
  RUN(test_quantized);
  RUN(test_fast8);
  RUN(test_fast_act);
  /* the twins are made by Python (tools/make_model_fixtures.py): tests/py/test_device_host_twins.py
   * makes them and runs this program again with MP_TEST_DEVICE_FIXTURES set */
  if (getenv("MP_TEST_DEVICE_FIXTURES") && *getenv("MP_TEST_DEVICE_FIXTURES")) {
    RUN(test_fixtures);
    RUN(test_fast8_fixtures);
  }
  return mp_test_done();
}
