/* Integer ("fast") matmul for MLX affine-quantized weights: weight repacking, the call driver
 * (activation quantization, tiling over threads, bias + activation epilogue) and the scalar
 * reference of the per-ISA pieces. The semantics are stated in kernels.h (mp_qlinear_act);
 * qlinear_x86.c holds the AVX2 and AVX-512 VNNI versions, qlinear_neon.c the NEON and SDOT ones,
 * all bit-identical to the scalar ones here. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels_internal.h"

#ifndef MP_QBLOCK
#define MP_QBLOCK 32 /* largest activation quantization block */
#endif

struct mp_qweight {
  char name[128];
  int64_t out, in, groups, npan;
  int bits, gsize;
  int pair;       /* weight groups of 2 or more blocks: the per-pair epilogue (kernels_internal.h) */
  uint8_t *codes; /* [npan][in/4][MP_QNR][4] */
  float *sb;      /* [npan][groups][3][MP_QNR]: scales, biases, scale * sum of the block's codes */
  size_t bytes;
};

static const char *qname(const mp_qweight *w) { return w->name[0] ? w->name : "(weight)"; }

static float scale_at(mp_dtype dt, const void *p, int64_t i) {
  switch (dt) {
  case MP_F16: return mp_f16_to_f32(((const uint16_t *)p)[i]);
  case MP_BF16: return mp_bf16_to_f32(((const uint16_t *)p)[i]);
  default: return ((const float *)p)[i];
  }
}

void mp_weight_row_codes(const mp_linear_weight *w, int64_t o, uint8_t *out) {
  const int bits = w->bits;
  const uint32_t maskv = (1u << bits) - 1;
  const uint8_t *row = (const uint8_t *)w->data + o * (w->in * bits / 8);
  for (int64_t i = 0; i < w->in; i++) { /* code i at bit i * bits, little-endian */
    const int64_t bit = i * bits, byte = bit >> 3;
    const int sh = (int)(bit & 7);
    uint32_t v = row[byte];
    if (sh + bits > 8) v |= (uint32_t)row[byte + 1] << 8;
    out[i] = (uint8_t)((v >> sh) & maskv);
  }
}

mp_status mp_qweight_pack(const mp_linear_weight *w, mp_qweight **out) {
  *out = NULL;
  MP_TRY(mp_linear_weight_check(w));
  const char *nm = w->name ? w->name : "(weight)";
  if (w->bits == 0) return mp_err(MP_ERR_UNSUPPORTED, "%s: integer kernels need an MLX-quantized weight", nm);
  if (w->group_size % 4 != 0)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: group size %d is not a multiple of 4", nm, w->group_size);
  mp_qweight *q = calloc(1, sizeof *q);
  if (!q) return mp_err(MP_ERR_NOMEM, "%s: out of memory packing the weight", nm);
  snprintf(q->name, sizeof q->name, "%s", nm);
  q->out = w->out;
  q->in = w->in;
  q->bits = w->bits;
  /* activation blocks of at most MP_QBLOCK inputs: a larger weight group is split, its scale and
   * bias repeated per block (finer activation scales, same weights) */
  q->gsize = w->group_size > MP_QBLOCK && w->group_size % MP_QBLOCK == 0 ? MP_QBLOCK : w->group_size;
  q->groups = w->in / q->gsize;
  const int64_t wgroups = w->in / w->group_size, split = w->group_size / q->gsize;
  q->pair = split >= 2 && split % 2 == 0;
  q->npan = (w->out + MP_QNR - 1) / MP_QNR;
  size_t ncodes = (size_t)q->npan * MP_QNR * (size_t)w->in;
  size_t nsb = (size_t)q->npan * (size_t)q->groups * 3 * MP_QNR;
  void *c = NULL, *s = NULL;
  if (posix_memalign(&c, 64, ncodes) || posix_memalign(&s, 64, nsb * sizeof(float))) {
    free(c);
    free(q);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory packing the weight (%zu bytes)", nm, ncodes);
  }
  q->codes = c;
  q->sb = s;
  q->bytes = ncodes + nsb * sizeof(float) + sizeof *q;
  memset(q->codes, 0, ncodes);
  memset(q->sb, 0, nsb * sizeof(float));
  const int64_t K = w->in;
  uint8_t *row = malloc((size_t)K);
  if (!row) {
    mp_qweight_free(q);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory packing the weight", nm);
  }
  for (int64_t o = 0; o < w->out; o++) {
    int64_t p = o / MP_QNR, j = o % MP_QNR;
    uint8_t *dst = q->codes + (size_t)p * MP_QNR * K + (size_t)j * 4;
    mp_weight_row_codes(w, o, row);
    for (int64_t i = 0; i < K; i++)
      dst[(i / 4) * (MP_QNR * 4) + (i % 4)] = row[i];
    for (int64_t g = 0; g < q->groups; g++) {
      float *sb = q->sb + ((size_t)p * q->groups + g) * 3 * MP_QNR;
      float sc = scale_at(w->scale_dtype, w->scales, o * wgroups + g / split);
      int32_t qs = 0;
      for (int64_t i = g * q->gsize; i < (g + 1) * q->gsize; i++)
        qs += dst[(i / 4) * (MP_QNR * 4) + (i % 4)];
      sb[j] = sc;
      sb[MP_QNR + j] = scale_at(w->scale_dtype, w->biases, o * wgroups + g / split);
      sb[2 * MP_QNR + j] = sc * (float)qs;
    }
  }
  free(row);
  *out = q;
  return MP_OK;
}

void mp_qweight_free(mp_qweight *q) {
  if (!q) return;
  free(q->codes);
  free(q->sb);
  free(q);
}

size_t mp_qweight_bytes(const mp_qweight *q) { return q ? q->bytes : 0; }

void mp_qweight_shape(const mp_qweight *q, int64_t *out, int64_t *in) {
  *out = q ? q->out : 0;
  *in = q ? q->in : 0;
}

/* ---------------------------------------------------------------- scalar reference pieces */

/* Quantizes one row of K activations per block of g, asymmetrically: z = (max + min) / 2,
 * d = (max - min) / 254, xq = round-half-even((x - z) * (254 / (max - min))) in [-127, 127], so
 * x ~ d*xq + z; xs = fma(z, g, d*sum(xq)), isx = sum(xq). A constant block has d = 0, z = its
 * value. A block holding a non-finite value gets d = xs = z = NaN (its outputs become NaN). */
void mp_qquant_row_scalar(const float *x, int64_t K, int g, int8_t *xq, float *d, float *xs, float *z, int32_t *isx) {
  if (g <= 0) return;
  for (int64_t k0 = 0, gi = 0; k0 < K; k0 += g, gi++) {
    float mx = -FLT_MAX, mn = FLT_MAX;
    int bad = 0;
    for (int i = 0; i < g; i++) {
      float v = x[k0 + i];
      if (!(fabsf(v) <= FLT_MAX)) bad = 1;
      mx = v > mx ? v : mx;
      mn = v < mn ? v : mn;
    }
    int32_t sum = 0;
    if (bad || mx == mn) {
      for (int i = 0; i < g; i++)
        xq[k0 + i] = 0;
      d[gi] = bad ? NAN : 0.0f;
      z[gi] = bad ? NAN : mx;
    } else {
      float zz = (mx + mn) * 0.5f, inv = 254.0f / (mx - mn);
      d[gi] = (mx - mn) / 254.0f;
      z[gi] = zz;
      for (int i = 0; i < g; i++) {
        long v = lrintf((x[k0 + i] - zz) * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        xq[k0 + i] = (int8_t)v;
        sum += (int32_t)v;
      }
    }
    isx[gi] = sum;
    xs[gi] = fmaf(z[gi], (float)g, d[gi] * (float)sum);
  }
}

/* mr (<= MP_QMR_MAX) rows x MP_QNR outputs of one panel: y[r*ldy + j] (no bias). */
void mp_qukr_scalar(const mp_qukr_args *a) {
  const int64_t K = a->K, G = K / a->gsize;
  for (int r = 0; r < a->mr; r++) {
    const int8_t *x = a->xq + r * a->ldx;
    for (int j = 0; j < MP_QNR; j++) {
      float acc = a->bias ? a->bias[j] : 0.0f;
      float t = 0.0f;
      for (int64_t g = 0; g < G; g++) {
        int32_t is = 0;
        for (int64_t k = g * a->gsize; k < (g + 1) * a->gsize; k++)
          is += (int32_t)x[k] * (int32_t)a->w[(k / 4) * (MP_QNR * 4) + j * 4 + (k % 4)];
        const float *sb = a->sb + g * 3 * MP_QNR;
        const int64_t o = r * a->ldg + g;
        if (!a->pair) {
          acc = fmaf((float)is, sb[j] * a->d[o], acc);
          acc = fmaf(sb[MP_QNR + j], a->xs[o], acc);
          acc = fmaf(sb[2 * MP_QNR + j], a->z[o], acc);
        } else if (!(g & 1)) {
          t = (float)is * a->d[o];
        } else {
          t = fmaf((float)is, a->d[o], t);
          acc = fmaf(sb[j], t, acc);
          acc = fmaf(sb[MP_QNR + j], a->xs[o - 1] + a->xs[o], acc);
          acc = fmaf(sb[-MP_QNR + j], a->z[o - 1], acc); /* the first block's s * code sum */
          acc = fmaf(sb[2 * MP_QNR + j], a->z[o], acc);
        }
      }
      a->y[r * a->ldy + j] = acc;
    }
  }
}

static const mp_qimpl g_qscalar = {.name = "scalar", .mr = 4, .quant_row = mp_qquant_row_scalar, .ukr = mp_qukr_scalar};

static const mp_qimpl *qimpl_current(void) {
  const mp_isa isa = mp_kernels_isa();
  const mp_qimpl *q = NULL;
  if (isa == MP_ISA_AVX512) q = mp_qimpl_avx512();
  if (!q && (isa == MP_ISA_AVX512 || isa == MP_ISA_AVX2)) q = mp_qimpl_avx2(); /* AVX-512 without VNNI */
  if (isa == MP_ISA_NEON_DOTPROD) q = mp_qimpl_neon_dot();
  if (isa == MP_ISA_NEON) q = mp_qimpl_neon();
  return q ? q : &g_qscalar;
}

const char *mp_qlinear_path(void) { return qimpl_current()->name; }

/* ---------------------------------------------------------------- driver */

#define QMAXW 4 /* weights sharing one quantized input (mp_qlinear_multi) */
/* A quantized activation matrix: xq [M][K], then per row and block of g inputs d, xs, z, isx [M][G]
 * (mp_qimpl.quant_row's outputs). */
typedef struct q_input {
  int8_t *xq;
  float *d, *xs, *z;
  int32_t *isx;
  int64_t K, G;
} q_input;

/* Lays out a q_input for M rows of K inputs in blocks of g over the buffer at p (64-byte aligned);
 * returns the bytes it takes (p NULL: only the size). */
static size_t q_input_layout(unsigned char *p, int64_t M, int64_t K, int g, q_input *in) {
  const int64_t G = K / g;
  const size_t xq_bytes = ((size_t)M * (size_t)K + 63) & ~(size_t)63,
               g_bytes = ((size_t)M * (size_t)G * 4 + 63) & ~(size_t)63;
  if (p) {
    in->K = K, in->G = G;
    in->xq = (int8_t *)p;
    in->d = (float *)(p + xq_bytes);
    in->xs = (float *)(p + xq_bytes + g_bytes);
    in->z = (float *)(p + xq_bytes + 2 * g_bytes);
    in->isx = (int32_t *)(p + xq_bytes + 3 * g_bytes);
  }
  return xq_bytes + 4 * g_bytes;
}

typedef struct q_ctx {
  const mp_qimpl *im;
  const mp_qweight *w0; /* the first weight: in, groups, block size shared by all */
  const float *x;
  int64_t M, K, G;
  q_input in; /* the quantized x */
  int nw;
  const mp_qweight *w[QMAXW];
  const void *bias[QMAXW];
  mp_dtype bias_dtype[QMAXW];
  float *y[QMAXW];
  int64_t pb[QMAXW], task0[QMAXW + 1]; /* panels per task, first task of each weight */
  mp_act act;
  int64_t mb, n_mtiles; /* task = mb rows x pb panels of one weight */
  const mp_isa_impl *fimpl;
  q_input *next; /* mp_qlinear_chain's first product: its finished tiles are quantized into *next */
} q_ctx;

#define QROWS_PER_TASK 16
static void quant_task(void *vc, int64_t task, int thread) {
  q_ctx *c = vc;
  int64_t r0 = task * QROWS_PER_TASK, r1 = r0 + QROWS_PER_TASK < c->M ? r0 + QROWS_PER_TASK : c->M;
  for (int64_t r = r0; r < r1; r++)
    c->im->quant_row(c->x + r * c->K, c->K, c->w0->gsize, c->in.xq + r * c->K, c->in.d + r * c->G, c->in.xs + r * c->G,
                     c->in.z + r * c->G, c->in.isx + r * c->G);
}

static float bias_at(const void *bias, mp_dtype dt, int64_t i) {
  switch (dt) {
  case MP_F16: return mp_f16_to_f32(((const uint16_t *)bias)[i]);
  case MP_BF16: return mp_bf16_to_f32(((const uint16_t *)bias)[i]);
  default: return ((const float *)bias)[i];
  }
}

static void gemm_task(void *vc, int64_t task, int thread) {
  q_ctx *c = vc;
  int wi = 0;
  while (task >= c->task0[wi + 1])
    wi++;
  task -= c->task0[wi];
  const mp_qweight *w = c->w[wi];
  const void *bias = c->bias[wi];
  float *y = c->y[wi];
  const int MR = c->im->mr;
  int64_t mt = task % c->n_mtiles, pt = task / c->n_mtiles;
  int64_t m0 = mt * c->mb, m1 = m0 + c->mb < c->M ? m0 + c->mb : c->M;
  int64_t p0 = pt * c->pb[wi], p1 = p0 + c->pb[wi] < w->npan ? p0 + c->pb[wi] : w->npan;
  float tile[MP_QMR_MAX * MP_QNR], bb[MP_QNR];
  for (int64_t p = p0; p < p1; p++) {
    int64_t n0 = p * MP_QNR, nn = w->out - n0 < MP_QNR ? w->out - n0 : MP_QNR;
    mp_qukr_args a = {.K = c->K,
                      .gsize = w->gsize,
                      .bits = w->bits,
                      .pair = w->pair,
                      .ldx = c->K,
                      .ldg = c->G,
                      .w = w->codes + (size_t)p * MP_QNR * c->K,
                      .sb = w->sb + (size_t)p * c->G * 3 * MP_QNR};
    if (bias) {
      for (int64_t j = 0; j < MP_QNR; j++)
        bb[j] = j < nn ? bias_at(bias, c->bias_dtype[wi], n0 + j) : 0.0f;
      a.bias = bb;
    }
    for (int64_t m = m0; m < m1; m += MR) {
      int mr = m1 - m < MR ? (int)(m1 - m) : MR;
      a.mr = mr;
      a.xq = c->in.xq + m * c->K;
      a.d = c->in.d + m * c->G;
      a.xs = c->in.xs + m * c->G;
      a.z = c->in.z + m * c->G;
      a.isx = c->in.isx + m * c->G;
      if (c->next) { /* a whole block of the next layer's input: bias, act, quantize; no f32 output */
        q_input *q = c->next;
        a.y = tile;
        a.ldy = MP_QNR;
        c->im->ukr(&a);
        if (c->act != MP_ACT_NONE) c->fimpl->act_row(c->act, tile, (int64_t)mr * MP_QNR);
        const int64_t gi = m * q->G + p;
        if (c->im->quant_tile && mr <= 16) {
          c->im->quant_tile(tile, mr, q->xq + m * q->K + n0, q->K, q->d + gi, q->xs + gi, q->z + gi, q->isx + gi, q->G);
          continue;
        }
        for (int r = 0; r < mr; r++)
          c->im->quant_row(tile + r * MP_QNR, MP_QNR, MP_QNR, q->xq + (m + r) * q->K + n0, q->d + gi + r * q->G,
                           q->xs + gi + r * q->G, q->z + gi + r * q->G, q->isx + gi + r * q->G);
        continue;
      }
      float *yt = y + m * w->out + n0;
      if (nn == MP_QNR) {
        a.y = yt;
        a.ldy = w->out;
      } else {
        a.y = tile;
        a.ldy = MP_QNR;
      }
      c->im->ukr(&a);
      for (int r = 0; r < mr; r++) {
        float *yr = yt + r * w->out;
        if (nn != MP_QNR) memcpy(yr, tile + r * MP_QNR, (size_t)nn * sizeof(float));
        if (c->act != MP_ACT_NONE) c->fimpl->act_row(c->act, yr, nn);
      }
    }
  }
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The checks shared by the entry points: n weights reading the same input of rows rows. */
static mp_status q_check(const float *x, int64_t rows, int n, const mp_qweight *const *w, const void *const *bias,
                         const mp_dtype *bias_dtype, float *const *y) {
  if (n < 1 || n > QMAXW || !w) return mp_err(MP_ERR_INVALID_ARG, "qlinear: 1 to %d weights per call", QMAXW);
  for (int i = 0; i < n; i++) {
    if (!w[i]) return mp_err(MP_ERR_INVALID_ARG, "qlinear: weight %d is NULL", i);
    if (w[i]->in != w[0]->in || w[i]->gsize != w[0]->gsize)
      return mp_err(MP_ERR_INVALID_ARG, "%s: input size or block differs from %s's", qname(w[i]), qname(w[0]));
    if (bias && bias[i] && bias_dtype[i] != MP_F32 && bias_dtype[i] != MP_F16 && bias_dtype[i] != MP_BF16)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: bias dtype %s is not F32, F16 or BF16", qname(w[i]),
                    mp_dtype_name(bias_dtype[i]));
    if (rows > 0 && y && !y[i]) return mp_err(MP_ERR_INVALID_ARG, "%s: NULL output", qname(w[i]));
  }
  if (rows < 0) return mp_err(MP_ERR_INVALID_ARG, "%s: negative row count", qname(w[0]));
  if (rows > 0 && !x) return mp_err(MP_ERR_INVALID_ARG, "%s: NULL input", qname(w[0]));
  if (rows > ((int64_t)1 << 40) / w[0]->in) return mp_err(MP_ERR_INVALID_ARG, "%s: too many rows", qname(w[0]));
  return MP_OK;
}

/* A context for n weights reading x (quantized into c->in by quant_task). */
static q_ctx q_ctx_make(const float *x, int64_t rows, int n, const mp_qweight *const *w, const void *const *bias,
                        const mp_dtype *bias_dtype, mp_act act, float *const *y) {
  q_ctx c = {.im = qimpl_current(),
             .w0 = w[0],
             .x = x,
             .M = rows,
             .K = w[0]->in,
             .G = w[0]->groups,
             .nw = n,
             .act = act,
             .fimpl = mp_impl_current()};
  for (int i = 0; i < n; i++) {
    c.w[i] = w[i];
    c.bias[i] = bias ? bias[i] : NULL;
    c.bias_dtype[i] = bias ? bias_dtype[i] : MP_F32;
    c.y[i] = y ? y[i] : NULL;
  }
  return c;
}

/* Runs the products of c (its input already quantized). Tiles: up to 64 rows x 4 panels of one
 * weight; fewer panels per task when there would be too few tasks (the tiling never changes a
 * result: each output is one micro-kernel's fixed sequence of operations). */
static void q_run(mp_pool *pool, q_ctx *c) {
  const int threads = mp_pool_threads(pool);
  c->mb = c->M < 64 ? c->M : 64;
  c->n_mtiles = cdiv(c->M, c->mb);
  int64_t npan = 0;
  for (int i = 0; i < c->nw; i++)
    npan += c->w[i]->npan;
  c->task0[0] = 0;
  for (int i = 0; i < c->nw; i++) {
    int64_t pb = 4;
    while (pb > 1 && c->n_mtiles * cdiv(npan, pb) < 4 * threads)
      pb--;
    c->pb[i] = pb;
    c->task0[i + 1] = c->task0[i] + c->n_mtiles * cdiv(c->w[i]->npan, pb);
  }
  mp_pool_run(pool, c->task0[c->nw], gemm_task, c);
}

mp_status mp_qlinear_multi(mp_pool *pool, const float *x, int64_t rows, int n, const mp_qweight *const *w,
                           const void *const *bias, const mp_dtype *bias_dtype, mp_act act, float *const *y) {
  MP_TRY(q_check(x, rows, n, w, bias, bias_dtype, y));
  if (rows > 0 && !y) return mp_err(MP_ERR_INVALID_ARG, "%s: NULL output", qname(w[0]));
  if (rows == 0) return MP_OK;
  mp_pool *tmp = NULL;
  if (!pool) {
    MP_TRY(mp_pool_create(1, &tmp));
    pool = tmp;
  }
  q_ctx c = q_ctx_make(x, rows, n, w, bias, bias_dtype, act, y);
  /* quantized activations in the pool's shared buffer */
  unsigned char *buf = mp_pool_shared(pool, q_input_layout(NULL, rows, c.K, w[0]->gsize, NULL));
  if (!buf) {
    mp_pool_free(tmp);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory for quantized activations", qname(w[0]));
  }
  q_input_layout(buf, rows, c.K, w[0]->gsize, &c.in);
  mp_pool_run(pool, cdiv(rows, QROWS_PER_TASK), quant_task, &c);
  q_run(pool, &c);
  mp_pool_free(tmp);
  return MP_OK;
}

int mp_qlinear_chain_ok(const mp_qweight *w1, const mp_qweight *w2) {
  return w1 && w2 && w1->out == w2->in && w1->out % MP_QNR == 0 && w2->gsize == MP_QNR;
}

mp_status mp_qlinear_chain(mp_pool *pool, const float *x, int64_t rows, const mp_qweight *w1, const void *b1,
                           mp_dtype b1_dtype, mp_act act, const mp_qweight *w2, const void *b2, mp_dtype b2_dtype,
                           float *y) {
  MP_TRY(q_check(x, rows, 1, &w1, &b1, &b1_dtype, NULL));
  MP_TRY(q_check(x, rows, 1, &w2, &b2, &b2_dtype, &y));
  if (!mp_qlinear_chain_ok(w1, w2))
    return mp_err(MP_ERR_UNSUPPORTED, "%s -> %s: not a chain of %d-input blocks (%lld outputs, next input %lld)",
                  qname(w1), qname(w2), MP_QNR, (long long)w1->out, (long long)w2->in);
  if (rows == 0) return MP_OK;
  mp_pool *tmp = NULL;
  if (!pool) {
    MP_TRY(mp_pool_create(1, &tmp));
    pool = tmp;
  }
  q_ctx c1 = q_ctx_make(x, rows, 1, &w1, &b1, &b1_dtype, act, NULL);
  q_ctx c2 = q_ctx_make(NULL, rows, 1, &w2, &b2, &b2_dtype, MP_ACT_NONE, &y);
  const size_t n1 = q_input_layout(NULL, rows, w1->in, w1->gsize, NULL);
  unsigned char *buf = mp_pool_shared(pool, n1 + q_input_layout(NULL, rows, w2->in, w2->gsize, NULL));
  if (!buf) {
    mp_pool_free(tmp);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory for quantized activations", qname(w1));
  }
  q_input_layout(buf, rows, w1->in, w1->gsize, &c1.in);
  q_input_layout(buf + n1, rows, w2->in, w2->gsize, &c2.in);
  c1.next = &c2.in;
  mp_pool_run(pool, cdiv(rows, QROWS_PER_TASK), quant_task, &c1);
  q_run(pool, &c1);
  q_run(pool, &c2);
  mp_pool_free(tmp);
  return MP_OK;
}

mp_status mp_qlinear_act(mp_pool *pool, const float *x, int64_t rows, const mp_qweight *w, const void *bias,
                         mp_dtype bias_dtype, mp_act act, float *y) {
  if (!w) return mp_err(MP_ERR_INVALID_ARG, "qlinear: weight is NULL");
  if (rows > 0 && !y) return mp_err(MP_ERR_INVALID_ARG, "%s: NULL input or output", qname(w));
  return mp_qlinear_multi(pool, x, rows, 1, &w, &bias, &bias_dtype, act, &y);
}
