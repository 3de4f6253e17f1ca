/* y = x·Wᵀ + b for float and MLX affine-quantized weights; weight row decoding; embeddings.
 *
 * Scalar path: for each output element a plain dot product in input order (the reference).
 * Vector paths: a packed GEMM (GotoBLAS-style): tasks are (row block, column block) tiles of y;
 * inside a task, for each K block (<= MP_KC inputs), the weight tile is decoded/transposed into
 * NR-wide panels and the activation rows into MR-tall panels (per-thread scratch), and an
 * MR x NR register-blocked micro-kernel accumulates into y. Every y element is produced by the
 * same sequence of FMAs in K order whatever the tiling or thread count, so results do not
 * depend on the number of threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels_internal.h"

/* Rows up to which the dot-product path (dot_task) runs instead of the GEMM: 0, so every row
 * count takes the GEMM and its one summation order (an output's value does not depend on the
 * other rows of the batch); MP_SMALL_M > 0 brings the dot-product path back (benchmarks). */
#ifndef MP_SMALL_M_DEFAULT
#define MP_SMALL_M_DEFAULT 0
#endif

static const char *wname(const mp_linear_weight *w) { return w && w->name ? w->name : "(weight)"; }

mp_status mp_linear_weight_check(const mp_linear_weight *w) {
  if (!w) return mp_err(MP_ERR_INVALID_ARG, "linear: weight descriptor is NULL");
  if (w->out <= 0 || w->in <= 0 || w->out > ((int64_t)1 << 40) / w->in)
    return mp_err(MP_ERR_INVALID_ARG, "%s: bad weight shape [%lld, %lld]", wname(w), (long long)w->out,
                  (long long)w->in);
  if (!w->data) return mp_err(MP_ERR_INVALID_ARG, "%s: weight data is NULL", wname(w));
  if (w->bits == 0) {
    if (w->dtype != MP_F32 && w->dtype != MP_F16 && w->dtype != MP_BF16)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: weight dtype %s is not F32, F16 or BF16", wname(w),
                    mp_dtype_name(w->dtype));
    return MP_OK;
  }
  int b = w->bits;
  if (b != 2 && b != 3 && b != 4 && b != 5 && b != 6 && b != 8)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: %d-bit quantization is not supported (2,3,4,5,6,8)", wname(w), b);
  if (w->dtype != MP_U32)
    return mp_err(MP_ERR_FORMAT, "%s: quantized weight must be U32, got %s", wname(w), mp_dtype_name(w->dtype));
  int g = w->group_size;
  if (g != 32 && g != 64 && g != 128)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: group size %d is not supported (32, 64, 128)", wname(w), g);
  if (w->in % g != 0)
    return mp_err(MP_ERR_FORMAT, "%s: input size %lld is not a multiple of the group size %d", wname(w),
                  (long long)w->in, g);
  if (!w->scales || !w->biases)
    return mp_err(MP_ERR_INVALID_ARG, "%s: quantized weight needs scales and biases", wname(w));
  if (w->scale_dtype != MP_F32 && w->scale_dtype != MP_F16 && w->scale_dtype != MP_BF16)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: scales dtype %s is not F32, F16 or BF16", wname(w),
                  mp_dtype_name(w->scale_dtype));
  return MP_OK;
}

static float bias_at(const void *bias, mp_dtype dt, int64_t i) {
  switch (dt) {
  case MP_F16: return mp_f16_to_f32(((const uint16_t *)bias)[i]);
  case MP_BF16: return mp_bf16_to_f32(((const uint16_t *)bias)[i]);
  default: return ((const float *)bias)[i];
  }
}

typedef struct lin_ctx {
  const mp_isa_impl *impl;
  mp_pool *pool;
  const float *x;
  int64_t M, N, K;
  const mp_linear_weight *w;
  const void *bias;
  mp_dtype bias_dtype;
  const float *fbias; /* the bias as f32 (the vector paths), or NULL */
  mp_act act;
  float *y;
  int64_t mb, nb;   /* tile sizes of a task */
  int64_t n_mtiles; /* tasks = n_mtiles * n_ntiles */
  int oom;          /* set when scratch could not be allocated */
} lin_ctx;

/* bias + activation on a tile of y: y += 1 * bias is one FMA with an exact product, i.e. the
 * correctly rounded sum y + bias, as the scalar loop computes it */
static void epilogue(const lin_ctx *c, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t m = m0; m < m1; m++) {
    float *yr = c->y + m * c->N;
    if (c->fbias)
      c->impl->axpy(1.0f, c->fbias + n0, yr + n0, n1 - n0);
    else if (c->bias)
      for (int64_t n = n0; n < n1; n++)
        yr[n] += bias_at(c->bias, c->bias_dtype, n);
    c->impl->act_row(c->act, yr + n0, n1 - n0);
  }
}

/* ---- scalar reference: tasks are column blocks of 16 outputs x a row block */
#define REF_NB 16
static void ref_task(void *vctx, int64_t task, int thread) {
  lin_ctx *c = vctx;
  int64_t mt = task % c->n_mtiles, nt = task / c->n_mtiles;
  int64_t m0 = mt * c->mb, m1 = m0 + c->mb < c->M ? m0 + c->mb : c->M;
  int64_t n0 = nt * c->nb, n1 = n0 + c->nb < c->N ? n0 + c->nb : c->N;
  float *wrow = mp_pool_scratch(c->pool, thread, (size_t)c->K * sizeof(float));
  if (!wrow) {
    c->oom = 1;
    return;
  }
  for (int64_t n = n0; n < n1; n++) {
    mp_decode_row_scalar(c->w, n, 0, c->K, wrow);
    for (int64_t m = m0; m < m1; m++) {
      const float *xr = c->x + m * c->K;
      float s = 0.0f;
      for (int64_t k = 0; k < c->K; k++)
        s += xr[k] * wrow[k];
      c->y[m * c->N + n] = s;
    }
  }
  epilogue(c, m0, m1, n0, n1);
}

/* ---- vector GEMM driver */
static const float zero_row[MP_KC];
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static void gemm_task(void *vctx, int64_t task, int thread) {
  lin_ctx *c = vctx;
  const mp_isa_impl *im = c->impl;
  const int MR = im->mr, NR = im->nr;
  /* column tiles inner: consecutive tasks share their activation rows, which stay in L2 while
   * the weight tiles go by (the rows are usually the larger operand; a stand-alone harness of
   * this loop nest at 4096 x 384 -> 1536 on one core: 150 -> 160 GFLOP/s) */
  int64_t n_ntiles = cdiv(c->N, c->nb);
  int64_t nt = task % n_ntiles, mt = task / n_ntiles;
  int64_t m0 = mt * c->mb, m1 = m0 + c->mb < c->M ? m0 + c->mb : c->M;
  int64_t n0 = nt * c->nb, n1 = n0 + c->nb < c->N ? n0 + c->nb : c->N;
  int64_t mlen = m1 - m0, nlen = n1 - n0;
  int64_t mpan = (mlen + MR - 1) / MR, npan = (nlen + NR - 1) / NR;
  size_t bsz = (size_t)(npan * NR) * MP_KC, asz = (size_t)MR * MP_KC;
  size_t tsz = (size_t)MP_KC * NR + (size_t)MR * NR;
  float *buf = mp_pool_scratch(c->pool, thread, (bsz + asz + tsz) * sizeof(float) + 64);
  if (!buf) {
    c->oom = 1;
    return;
  }
  float *bp = buf, *ap = buf + bsz, *rows = ap + asz, *tile = rows + MP_KC * NR;
  const mp_linear_weight *w = c->w;
  /* K blocks of equal size, at most MP_KC (640 inputs: two of 320, not 384 + 256), starting at
   * multiples of 32 (the quantized decoders step 8 or 16 inputs within a group of >= 32) */
  const int64_t kb = cdiv(cdiv(c->K, cdiv(c->K, MP_KC)), 32) * 32;
  for (int64_t k0 = 0; k0 < c->K; k0 += kb) {
    int64_t kc = c->K - k0 < kb ? c->K - k0 : kb;
    /* pack weight rows n0..n1 (columns of y) into NR-wide panels bp[p][k][j]; rows are
     * decoded NR at a time into `rows` and then interleaved with contiguous writes */
    const int pre = w->panels && w->panel_nr == NR && w->bits == 0 && w->dtype == MP_F32;
    for (int64_t p = 0; p < npan && !pre; p++) {
      const float *src[64];
      int64_t nn = nlen - p * NR < NR ? nlen - p * NR : NR;
      for (int64_t j = 0; j < nn; j++) {
        if (w->bits == 0 && w->dtype == MP_F32) {
          src[j] = (const float *)w->data + (n0 + p * NR + j) * c->K + k0;
        } else {
          im->decode_row(w, n0 + p * NR + j, k0, kc, rows + j * MP_KC);
          src[j] = rows + j * MP_KC;
        }
      }
      for (int64_t j = nn; j < NR; j++)
        src[j] = zero_row; /* padding columns */
      float *dst = bp + p * (kc * NR);
      if (im->pack_panel) {
        im->pack_panel(src, kc, dst);
      } else {
        for (int64_t k = 0; k < kc; k++)
          for (int64_t j = 0; j < NR; j++)
            dst[k * NR + j] = src[j][k];
      }
    }
    int acc = k0 > 0;
    /* row panels outer: the MR activation rows stay in L1 while the packed weight panels (read
     * in order, one stream) go by */
    for (int64_t ip = 0; ip < mpan; ip++) {
      int64_t mm = mlen - ip * MR < MR ? mlen - ip * MR : MR;
      const float *xa = c->x + (m0 + ip * MR) * c->K + k0;
      int64_t lda = c->K;
      if (mm < MR) { /* edge rows: copy into a zero-padded MR-row block */
        for (int64_t r = 0; r < MR; r++) {
          if (r < mm)
            memcpy(ap + r * kc, xa + r * c->K, (size_t)kc * 4);
          else
            memset(ap + r * kc, 0, (size_t)kc * 4);
        }
        xa = ap;
        lda = kc;
      }
      for (int64_t jp = 0; jp < npan; jp++) {
        int64_t nn = nlen - jp * NR < NR ? nlen - jp * NR : NR;
        float *cy = c->y + (m0 + ip * MR) * c->N + n0 + jp * NR;
        const float *bj = pre ? w->panels + ((n0 / NR + jp) * c->K + k0) * NR : bp + jp * kc * NR;
        if (mm == MR && nn == NR) {
          im->ukr(kc, xa, lda, bj, cy, c->N, acc);
        } else {
          if (acc)
            for (int64_t r = 0; r < mm; r++)
              memcpy(tile + r * NR, cy + r * c->N, (size_t)nn * 4);
          im->ukr(kc, xa, lda, bj, tile, NR, acc);
          for (int64_t r = 0; r < mm; r++)
            memcpy(cy + r * c->N, tile + r * NR, (size_t)nn * 4);
        }
      }
    }
  }
  epilogue(c, m0, m1, n0, n1);
}

/* ---- small-M path: tasks are blocks of DOT_NB weight rows (decoded once into scratch unless
 * F32) against every activation row, in 4 x 4 dot-product blocks. */
#define DOT_NB 16
static void dot_task(void *vctx, int64_t task, int thread) {
  lin_ctx *c = vctx;
  const mp_isa_impl *im = c->impl;
  const mp_linear_weight *w = c->w;
  int64_t n0 = task * DOT_NB, n1 = n0 + DOT_NB < c->N ? n0 + DOT_NB : c->N, K = c->K;
  const float *wr;
  if (w->bits == 0 && w->dtype == MP_F32) {
    wr = (const float *)w->data + n0 * K;
  } else {
    float *buf = mp_pool_scratch(c->pool, thread, (size_t)(DOT_NB * K) * sizeof(float));
    if (!buf) {
      c->oom = 1;
      return;
    }
    for (int64_t n = n0; n < n1; n++)
      im->decode_row(w, n, 0, K, buf + (n - n0) * K);
    wr = buf;
  }
  for (int64_t m = 0; m < c->M; m += 4) {
    int mr = c->M - m < 4 ? (int)(c->M - m) : 4;
    for (int64_t n = n0; n < n1; n += 4) {
      int nr = n1 - n < 4 ? (int)(n1 - n) : 4;
      im->dotblk(K, c->x + m * K, K, mr, wr + (n - n0) * K, K, nr, c->y + m * c->N + n, c->N);
    }
  }
  epilogue(c, 0, c->M, n0, n1);
}

/* Rows up to which the small-M path is used (MP_SMALL_M in the environment overrides it, for
 * benchmarks). The choice depends only on the row count, never on the thread count. */
static int64_t small_m_limit(void) {
  static int64_t lim = -1;
  if (lim < 0) {
    const char *e = getenv("MP_SMALL_M");
    lim = e && *e ? atoll(e) : MP_SMALL_M_DEFAULT;
  }
  return lim;
}

/* The argument checks of mp_linear_act. */
static mp_status lin_check(const float *x, int64_t rows, const mp_linear_weight *w, const void *bias,
                           mp_dtype bias_dtype, const float *y) {
  MP_TRY(mp_linear_weight_check(w));
  if (rows < 0) return mp_err(MP_ERR_INVALID_ARG, "%s: negative row count", wname(w));
  if (rows > 0 && (!x || !y)) return mp_err(MP_ERR_INVALID_ARG, "%s: NULL input or output", wname(w));
  if (bias && bias_dtype != MP_F32 && bias_dtype != MP_F16 && bias_dtype != MP_BF16)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: bias dtype %s is not F32, F16 or BF16", wname(w), mp_dtype_name(bias_dtype));
  return MP_OK;
}

/* A context for one product; *fb receives the widened bias to free afterwards (NULL if none). */
static lin_ctx lin_make(mp_pool *pool, const float *x, int64_t rows, const mp_linear_weight *w, const void *bias,
                        mp_dtype bias_dtype, mp_act act, float *y, float **fb) {
  lin_ctx c = {.impl = mp_impl_current(),
               .pool = pool,
               .x = x,
               .M = rows,
               .N = w->out,
               .K = w->in,
               .w = w,
               .bias = bias,
               .bias_dtype = bias_dtype,
               .act = act,
               .y = y};
  *fb = NULL;
  if (bias && c.impl->ukr) { /* the bias widened once for the vector epilogue */
    if (bias_dtype == MP_F32) {
      c.fbias = bias;
    } else if ((*fb = malloc((size_t)c.N * sizeof(float)))) {
      for (int64_t n = 0; n < c.N; n++)
        (*fb)[n] = bias_at(bias, bias_dtype, n);
      c.fbias = *fb;
    }
  }
  return c;
}

static int lin_small(const lin_ctx *c) { return c->impl->ukr && c->M <= small_m_limit() && c->impl->dotblk; }

/* Runs one product (its own parallel job). */
static void lin_run(mp_pool *pool, lin_ctx *c) {
  int threads = mp_pool_threads(pool);
  const int64_t rows = c->M;
  if (!c->impl->ukr) {
    c->nb = REF_NB;
    c->mb = rows < 64 ? rows : 64;
    c->n_mtiles = cdiv(rows, c->mb);
    mp_pool_run(pool, c->n_mtiles * cdiv(c->N, c->nb), ref_task, c);
  } else if (lin_small(c)) {
    mp_pool_run(pool, cdiv(c->N, DOT_NB), dot_task, c);
  } else {
    const int MR = c->impl->mr, NR = c->impl->nr;
    /* Tiles: up to 32 row panels x 4 column panels; smaller column tiles when there would be
     * too few tasks to keep every thread busy. (Tiling never changes the results.) */
    /* row tiles of at most 32 row panels, equal in size (a short last tile leaves a thread idle) */
    int64_t mb = cdiv(cdiv(rows, cdiv(rows, (int64_t)MR * 32)), MR) * MR;
    int64_t nb = (int64_t)NR * 4;
    while (nb > NR && cdiv(rows, mb) * cdiv(c->N, nb) < 4 * threads)
      nb -= NR;
    c->mb = mb;
    c->nb = nb;
    c->n_mtiles = cdiv(rows, mb);
    mp_pool_run(pool, c->n_mtiles * cdiv(c->N, nb), gemm_task, c);
  }
}

mp_status mp_linear_act(mp_pool *pool, const float *x, int64_t rows, const mp_linear_weight *w, const void *bias,
                        mp_dtype bias_dtype, mp_act act, float *y) {
  MP_TRY(lin_check(x, rows, w, bias, bias_dtype, y));
  if (rows == 0) return MP_OK;
  mp_pool *tmp = NULL;
  if (!pool) {
    MP_TRY(mp_pool_create(1, &tmp));
    pool = tmp;
  }
  float *fb;
  lin_ctx c = lin_make(pool, x, rows, w, bias, bias_dtype, act, y, &fb);
  lin_run(pool, &c);
  mp_pool_free(tmp);
  free(fb);
  if (c.oom) return mp_err(MP_ERR_NOMEM, "%s: out of memory for kernel scratch", wname(w));
  return MP_OK;
}

/* small-M products of several weights as one job: task t belongs to the weight whose range holds it */
typedef struct lin_multi {
  lin_ctx c[4];
  int64_t t0[5];
} lin_multi;
static void multi_dot_task(void *v, int64_t task, int thread) {
  lin_multi *mc = v;
  int i = 0;
  while (task >= mc->t0[i + 1])
    i++;
  dot_task(&mc->c[i], task - mc->t0[i], thread);
}

mp_status mp_linear_multi(mp_pool *pool, const float *x, int64_t rows, int n, const mp_linear_weight *const *w,
                          const void *const *bias, const mp_dtype *bias_dtype, float *const *y) {
  if (n < 1 || n > 4 || !w || !y) return mp_err(MP_ERR_INVALID_ARG, "linear: 1 to 4 weights per call");
  for (int i = 0; i < n; i++) {
    if (!w[i]) return mp_err(MP_ERR_INVALID_ARG, "linear: weight %d is NULL", i);
    MP_TRY(lin_check(x, rows, w[i], bias ? bias[i] : NULL, bias ? bias_dtype[i] : MP_F32, y[i]));
    if (w[i]->in != w[0]->in)
      return mp_err(MP_ERR_INVALID_ARG, "%s: input size %lld differs from %s's", wname(w[i]), (long long)w[i]->in,
                    wname(w[0]));
  }
  if (rows == 0) return MP_OK;
  mp_pool *tmp = NULL;
  if (!pool) {
    MP_TRY(mp_pool_create(1, &tmp));
    pool = tmp;
  }
  lin_multi mc;
  float *fb[4] = {NULL, NULL, NULL, NULL};
  int small = 1;
  mc.t0[0] = 0;
  for (int i = 0; i < n; i++) {
    mc.c[i] =
        lin_make(pool, x, rows, w[i], bias ? bias[i] : NULL, bias ? bias_dtype[i] : MP_F32, MP_ACT_NONE, y[i], &fb[i]);
    small = small && lin_small(&mc.c[i]);
    mc.t0[i + 1] = mc.t0[i] + cdiv(mc.c[i].N, DOT_NB);
  }
  if (small)
    mp_pool_run(pool, mc.t0[n], multi_dot_task, &mc);
  else
    for (int i = 0; i < n; i++)
      lin_run(pool, &mc.c[i]);
  int oom = 0;
  for (int i = 0; i < n; i++)
    oom |= mc.c[i].oom, free(fb[i]);
  mp_pool_free(tmp);
  if (oom) return mp_err(MP_ERR_NOMEM, "%s: out of memory for kernel scratch", wname(w[0]));
  return MP_OK;
}

size_t mp_linear_panels_bytes(const mp_linear_weight *w) {
  const mp_isa_impl *im = mp_impl_current();
  if (!w || w->bits != 0 || w->dtype != MP_F32 || !im->ukr || w->out <= 0 || w->in <= 0) return 0;
  return (size_t)(cdiv(w->out, im->nr) * im->nr) * (size_t)w->in * sizeof(float);
}

mp_status mp_linear_prepack(mp_linear_weight *w, float *out) {
  MP_TRY(mp_linear_weight_check(w));
  const mp_isa_impl *im = mp_impl_current();
  if (!mp_linear_panels_bytes(w))
    return mp_err(MP_ERR_UNSUPPORTED, "%s: no panels for %s weights on the %s path", wname(w), mp_dtype_name(w->dtype),
                  mp_isa_name(mp_kernels_isa()));
  if (!out || ((uintptr_t)out & 63))
    return mp_err(MP_ERR_INVALID_ARG, "%s: panel buffer not 64-byte aligned", wname(w));
  const int NR = im->nr;
  const int64_t K = w->in, npan = cdiv(w->out, NR);
  for (int64_t p = 0; p < npan; p++) {
    const float *src[64];
    for (int j = 0; j < NR; j++) {
      const int64_t n = p * NR + j;
      src[j] = n < w->out ? (const float *)w->data + n * K : NULL;
    }
    float *dst = out + p * K * NR;
    /* in blocks of MP_KC inputs (pack_panel's limit), the zero row standing in for padding */
    for (int64_t k0 = 0; k0 < K; k0 += MP_KC) {
      const int64_t kc = K - k0 < MP_KC ? K - k0 : MP_KC;
      const float *s[64];
      for (int j = 0; j < NR; j++)
        s[j] = src[j] ? src[j] + k0 : zero_row;
      if (im->pack_panel) {
        im->pack_panel(s, kc, dst + k0 * NR);
      } else {
        for (int64_t k = 0; k < kc; k++)
          for (int j = 0; j < NR; j++)
            dst[(k0 + k) * NR + j] = s[j][k];
      }
    }
  }
  w->panels = out;
  w->panel_nr = NR;
  return MP_OK;
}

mp_status mp_linear(mp_pool *pool, const float *x, int64_t rows, const mp_linear_weight *w, const void *bias,
                    mp_dtype bias_dtype, float *y) {
  return mp_linear_act(pool, x, rows, w, bias, bias_dtype, MP_ACT_NONE, y);
}

mp_status mp_weight_rows_f32(const mp_linear_weight *w, int64_t row0, int64_t n, float *out) {
  MP_TRY(mp_linear_weight_check(w));
  if (row0 < 0 || n < 0 || row0 > w->out - n)
    return mp_err(MP_ERR_INVALID_ARG, "%s: rows [%lld, %lld) outside [0, %lld)", wname(w), (long long)row0,
                  (long long)(row0 + n), (long long)w->out);
  const mp_isa_impl *im = mp_impl_current();
  for (int64_t r = 0; r < n; r++)
    im->decode_row(w, row0 + r, 0, w->in, out + r * w->in);
  return MP_OK;
}

mp_status mp_embedding_rows(const mp_linear_weight *t, const int32_t *ids, int64_t n, float *out) {
  MP_TRY(mp_linear_weight_check(t));
  if (n < 0 || (n > 0 && (!ids || !out)))
    return mp_err(MP_ERR_INVALID_ARG, "%s: bad embedding lookup arguments", wname(t));
  const mp_isa_impl *im = mp_impl_current();
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->out)
      return mp_err(MP_ERR_INVALID_ARG,
                    "%s: token id %d at position %lld is outside the vocabulary [0, %lld); the "
                    "tokenizer does not match the model",
                    wname(t), ids[i], (long long)i, (long long)t->out);
    im->decode_row(t, ids[i], 0, t->in, out + i * t->in);
  }
  return MP_OK;
}
