/* Row-wise ops (LayerNorm, activations, softmax), conversions and attention. */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels_internal.h"

/* ---- conversions */
void mp_f16_to_f32_row(const uint16_t *src, int64_t n, float *dst) { mp_impl_current()->f16_row(src, n, dst); }
void mp_bf16_to_f32_row(const uint16_t *src, int64_t n, float *dst) { mp_impl_current()->bf16_row(src, n, dst); }
mp_status mp_to_f32(mp_dtype dtype, const void *src, int64_t n, float *dst) {
  if (n < 0) return mp_err(MP_ERR_INVALID_ARG, "mp_to_f32: negative count");
  switch (dtype) {
  case MP_F32: memmove(dst, src, (size_t)n * sizeof(float)); return MP_OK;
  case MP_F16: mp_f16_to_f32_row(src, n, dst); return MP_OK;
  case MP_BF16: mp_bf16_to_f32_row(src, n, dst); return MP_OK;
  default:
    return mp_err(MP_ERR_UNSUPPORTED, "cannot convert %s values to F32 (expected F32, F16 or BF16)",
                  mp_dtype_name(dtype));
  }
}

void mp_add_inplace(float *y, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] += x[i];
}

/* ---- row-parallel helpers: tasks are fixed blocks of rows */
#define ROWS_PER_TASK 16
typedef struct row_ctx {
  const mp_isa_impl *im;
  const float *x, *res, *gamma, *beta, *mask;
  float *out;
  int64_t rows, dim;
  float eps;
  mp_act act;
} row_ctx;

static void ln_task(void *v, int64_t t, int thread) {
  (void)thread;
  row_ctx *c = v;
  int64_t r1 = (t + 1) * ROWS_PER_TASK < c->rows ? (t + 1) * ROWS_PER_TASK : c->rows;
  for (int64_t r = t * ROWS_PER_TASK; r < r1; r++)
    c->im->layernorm_row(c->x + r * c->dim, c->res ? c->res + r * c->dim : NULL, c->dim, c->gamma, c->beta, c->eps,
                         c->out + r * c->dim);
}

void mp_layernorm(mp_pool *pool, const float *x, const float *residual, int64_t rows, int64_t dim, const float *gamma,
                  const float *beta, float eps, float *out) {
  if (rows <= 0 || dim <= 0) return;
  row_ctx c = {.im = mp_impl_current(),
               .x = x,
               .res = residual,
               .gamma = gamma,
               .beta = beta,
               .out = out,
               .rows = rows,
               .dim = dim,
               .eps = eps};
  mp_pool_run(pool, (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, ln_task, &c);
}

static void sm_task(void *v, int64_t t, int thread) {
  (void)thread;
  row_ctx *c = v;
  int64_t r1 = (t + 1) * ROWS_PER_TASK < c->rows ? (t + 1) * ROWS_PER_TASK : c->rows;
  for (int64_t r = t * ROWS_PER_TASK; r < r1; r++)
    c->im->softmax_row(c->out + r * c->dim, c->dim, c->mask);
}

void mp_softmax_rows(mp_pool *pool, float *x, int64_t rows, int64_t cols, const float *mask) {
  if (rows <= 0 || cols <= 0) return;
  row_ctx c = {.im = mp_impl_current(), .mask = mask, .out = x, .rows = rows, .dim = cols};
  mp_pool_run(pool, (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, sm_task, &c);
}

#define ACT_CHUNK 4096
static void act_task(void *v, int64_t t, int thread) {
  (void)thread;
  row_ctx *c = v;
  int64_t i0 = t * ACT_CHUNK, n = c->rows - i0 < ACT_CHUNK ? c->rows - i0 : ACT_CHUNK;
  c->im->act_row(c->act, c->out + i0, n);
}

void mp_activation(mp_pool *pool, mp_act act, float *x, int64_t n) {
  if (n <= 0 || act == MP_ACT_NONE) return;
  row_ctx c = {.im = mp_impl_current(), .out = x, .rows = n, .act = act};
  mp_pool_run(pool, (n + ACT_CHUNK - 1) / ACT_CHUNK, act_task, &c);
}

/* ---- attention: tasks are (batch, head, block of ATT_BQ queries); keys in blocks of ATT_BK
 * with an online softmax (running max m, running sum l, unnormalized output o). */
#define ATT_BQ 16
#define ATT_BK 64
#define ATT_ZERO 256 /* head sizes up to this use the panel packer (the padding rows read zeros) */
static const float att_zero[ATT_ZERO];
typedef struct att_ctx {
  const mp_isa_impl *im;
  const mp_attention_args *a;
  mp_pool *pool;
  int64_t nqb;
  int oom;
} att_ctx;

static void att_task(void *v, int64_t t, int thread) {
  att_ctx *c = v;
  const mp_attention_args *a = c->a;
  const mp_isa_impl *im = c->im;
  const int64_t D = a->head_dim, Sk = a->seq_k;
  const int64_t NR = im->nr > 0 ? im->nr : ATT_BK; /* keys per transposed panel (divides ATT_BK) */
  int64_t qb = t % c->nqb, bh = t / c->nqb;
  int64_t h = bh % a->heads, b = bh / a->heads;
  int64_t i0 = qb * ATT_BQ, i1 = i0 + ATT_BQ < a->seq_q ? i0 + ATT_BQ : a->seq_q;
  /* scratch: kt [D][ATT_BK], s [ATT_BK], o [ATT_BQ][D], m/l [ATT_BQ], the block's key mask [ATT_BK] */
  size_t need = (size_t)(D * ATT_BK + ATT_BK + ATT_BQ * D + 2 * ATT_BQ + ATT_BK) * sizeof(float);
  float *kt = mp_pool_scratch(c->pool, thread, need);
  if (!kt) {
    c->oom = 1;
    return;
  }
  float *s = kt + D * ATT_BK, *o = s + ATT_BK, *mrun = o + ATT_BQ * D, *lrun = mrun + ATT_BQ, *madd = lrun + ATT_BQ;
  for (int64_t i = 0; i < i1 - i0; i++) {
    mrun[i] = -INFINITY;
    lrun[i] = 0.0f;
  }
  memset(o, 0, (size_t)(ATT_BQ * D) * sizeof(float));
  const uint8_t *km = a->key_mask ? a->key_mask + b * Sk : NULL;
  for (int64_t j0 = 0; j0 < Sk; j0 += ATT_BK) {
    int64_t nk = Sk - j0 < ATT_BK ? Sk - j0 : ATT_BK;
    /* K block transposed in panels of NR keys: kt[p][d][jj] = K[j0 + p*NR + jj][d] (the linear
     * kernels' panel packer where the ISA has one; rows past nk read as zeros) */
    for (int64_t p = 0; p * NR < nk; p++) {
      int64_t np = nk - p * NR < NR ? nk - p * NR : NR;
      float *dst = kt + p * D * NR;
      if (im->pack_panel && D <= ATT_ZERO) {
        const float *src[64];
        for (int64_t jj = 0; jj < NR; jj++)
          src[jj] = jj < np ? a->k + (b * Sk + j0 + p * NR + jj) * a->ldk + h * D : att_zero;
        im->pack_panel(src, D, dst);
      } else {
        for (int64_t jj = 0; jj < NR; jj++) { /* padding columns zeroed: att_scores may read them */
          const float *kr = jj < np ? a->k + (b * Sk + j0 + p * NR + jj) * a->ldk + h * D : NULL;
          for (int64_t d = 0; d < D; d++)
            dst[d * NR + jj] = kr ? kr[d] : 0.0f;
        }
      }
    }
    /* the key mask as an additive row: 0 to attend, -inf not to */
    int masked = 0;
    for (int64_t j = 0; km && j < nk; j++) {
      madd[j] = km[j0 + j] ? 0.0f : -INFINITY;
      masked |= !km[j0 + j];
    }
    const float *vb = a->v + (b * Sk + j0) * a->ldv + h * D;
    for (int64_t i = i0; i < i1; i++) {
      const float *qr = a->q + (b * a->seq_q + i) * a->ldq + h * D;
      for (int64_t p = 0; p * NR < nk; p++)
        im->att_scores(qr, kt + p * D * NR, D, NR, nk - p * NR < NR ? nk - p * NR : NR, s + p * NR);
      const float *br =
          a->bias ? a->bias + b * a->bias_stride_b + h * a->bias_stride_h + i * a->bias_stride_q + j0 : NULL;
      float mx = im->att_prep(s, nk, a->scale, br, masked ? madd : NULL);
      int64_t ii = i - i0;
      if (mx == -INFINITY) continue; /* nothing to attend to in this block */
      float mnew = mx > mrun[ii] ? mx : mrun[ii];
      float corr = expf(mrun[ii] - mnew); /* exp(-inf) = 0 on the first block */
      float *orow = o + ii * D;
      if (corr != 1.0f) im->scale(corr, orow, D);
      lrun[ii] = lrun[ii] * corr + im->exp_sub(s, nk, mnew);
      im->att_pv(s, nk, vb, a->ldv, orow, D);
      mrun[ii] = mnew;
    }
  }
  for (int64_t i = i0; i < i1; i++) {
    int64_t ii = i - i0;
    float *dst = a->out + (b * a->seq_q + i) * a->ldo + h * D;
    if (lrun[ii] > 0.0f) {
      memcpy(dst, o + ii * D, (size_t)D * sizeof(float));
      im->scale(1.0f / lrun[ii], dst, D);
    } else {
      memset(dst, 0, (size_t)D * sizeof(float));
    }
  }
}

mp_status mp_attention(mp_pool *pool, const mp_attention_args *in) {
  if (!in) return mp_err(MP_ERR_INVALID_ARG, "attention: NULL arguments");
  mp_attention_args a = *in;
  if (a.batch < 0 || a.seq_q < 0 || a.seq_k < 0 || a.heads <= 0 || a.head_dim <= 0)
    return mp_err(MP_ERR_INVALID_ARG,
                  "attention: bad shape batch=%lld seq_q=%lld seq_k=%lld "
                  "heads=%lld head_dim=%lld",
                  (long long)a.batch, (long long)a.seq_q, (long long)a.seq_k, (long long)a.heads,
                  (long long)a.head_dim);
  if (a.batch == 0 || a.seq_q == 0) return MP_OK;
  if (!a.q || !a.k || !a.v || !a.out) return mp_err(MP_ERR_INVALID_ARG, "attention: NULL tensor");
  int64_t hd = a.heads * a.head_dim;
  if (!a.ldq) a.ldq = hd;
  if (!a.ldk) a.ldk = hd;
  if (!a.ldv) a.ldv = hd;
  if (!a.ldo) a.ldo = hd;
  if (a.ldq < hd || a.ldk < hd || a.ldv < hd || a.ldo < hd)
    return mp_err(MP_ERR_INVALID_ARG, "attention: row stride smaller than heads*head_dim (%lld)", (long long)hd);
  mp_pool *tmp = NULL;
  if (!pool) {
    MP_TRY(mp_pool_create(1, &tmp));
    pool = tmp;
  }
  att_ctx c = {.im = mp_impl_current(), .a = &a, .pool = pool, .nqb = (a.seq_q + ATT_BQ - 1) / ATT_BQ};
  mp_pool_run(pool, a.batch * a.heads * c.nqb, att_task, &c);
  mp_pool_free(tmp);
  if (c.oom) return mp_err(MP_ERR_NOMEM, "attention: out of memory for scratch");
  return MP_OK;
}
