/* Fast-mode products for 16-bit float weights (F16, BF16) on AMX-BF16 tiles (x86-64 Linux).
 *
 * The faithful path (linear.c) widens F16/BF16 weights to f32 per panel and runs the f32 GEMM.
 * Here the weights are repacked once, at load, into AMX's bf16 B-tile layout, and the products
 * run on TDPBF16PS (16 x 16 outputs x 32 inputs per instruction, f32 accumulation) at a precision
 * close to f32:
 *   - activations are split per element into two bf16 terms, x = xh + xl + e with
 *     xh = bf16(x), xl = bf16(x - xh) (both round-to-nearest-even), |e| <= 2^-16 |x|;
 *   - BF16 weights are exact in one term; F16 weights are exact in two, w = wh + wl with
 *     wh = bf16(w) and wl = w - wh (an f16 value has 11 significant bits, wh keeps 8, the rest
 *     fits in bf16 exactly);
 *   - y = xh.w + xl.w for BF16 weights (2 tile products per step), xh.wh + xl.wh + xh.wl for F16
 *     (3; the xl.wl term, below 2^-24 |x w|, is left out);
 * so the error is the activation split's 2^-16 relative plus f32 accumulation, against 2^-24 per
 * product for the f32 path. Each output is computed by the same tile operations in the same
 * order whatever the tiling, thread count or other rows of the batch, so results do not depend
 * on them. Bias and activation are applied per finished tile by the same vector functions as the
 * f32 path's epilogue.
 *
 * Weight layout: tiles of 16 outputs x 32 inputs, 1 KB each, [term][panel][step][pair][16][2]
 * (pair = 2 consecutive inputs of one output: AMX's B layout, 64-byte rows). Outputs and inputs
 * are zero-padded to multiples of 16 and 32. Memory: 2 bytes per weight and term (F16 weights:
 * 4 bytes, the size of the f32 matrix; BF16: 2). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#define MP_HAVE_BFAMX 1
#endif

struct mp_bfweight {
  int64_t out, in;
  int64_t np, ns; /* panels of 16 outputs, steps of 32 inputs */
  int terms;      /* 1 (BF16 weights) or 2 (F16: hi + lo) */
  uint16_t *w;    /* [terms][np][ns][16][32] bf16 */
};

#define BF_TILE 512 /* bf16 values per weight tile: 16 pairs x 16 outputs x 2 */

int mp_bflinear_available(void) {
#if MP_HAVE_BFAMX
  return mp_cpu_amx_bf16() && mp_kernels_isa() == MP_ISA_AVX512;
#else
  return 0;
#endif
}

static uint16_t bf16_rne(float f) { return mp_f32_to_bf16(f); }

mp_status mp_bfweight_pack(const mp_linear_weight *w, mp_bfweight **out) {
  *out = NULL;
  MP_TRY(mp_linear_weight_check(w));
  const char *nm = w->name ? w->name : "(weight)";
  if (w->bits != 0 || (w->dtype != MP_F16 && w->dtype != MP_BF16))
    return mp_err(MP_ERR_UNSUPPORTED, "%s: the bf16 tile path takes F16 or BF16 weights, not %s", nm,
                  w->bits ? "quantized ones" : mp_dtype_name(w->dtype));
  if (!mp_bflinear_available())
    return mp_err(MP_ERR_UNSUPPORTED, "%s: this CPU (or MP_AMX=0 / MP_ISA) gives no AMX-BF16 tiles", nm);
  mp_bfweight *b = calloc(1, sizeof *b);
  if (!b) return mp_err(MP_ERR_NOMEM, "%s: out of memory", nm);
  b->out = w->out, b->in = w->in;
  b->np = (w->out + 15) / 16, b->ns = (w->in + 31) / 32;
  b->terms = w->dtype == MP_F16 ? 2 : 1;
  const size_t per_term = (size_t)(b->np * b->ns) * BF_TILE;
  b->w = aligned_alloc(64, per_term * (size_t)b->terms * sizeof(uint16_t));
  if (!b->w) {
    const size_t want = per_term * (size_t)b->terms * 2;
    free(b);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory packing the bf16 tiles (%zu bytes)", nm, want);
  }
  const uint16_t *src = w->data;
  for (int64_t p = 0; p < b->np; p++)
    for (int64_t s = 0; s < b->ns; s++) {
      uint16_t *hi = b->w + (size_t)(p * b->ns + s) * BF_TILE, *lo = hi + per_term;
      for (int i = 0; i < 16; i++)      /* input pair */
        for (int o = 0; o < 16; o++)    /* output */
          for (int e = 0; e < 2; e++) { /* input within the pair */
            const int64_t n = p * 16 + o, k = s * 32 + 2 * i + e;
            const size_t at = (size_t)i * 32 + (size_t)o * 2 + (size_t)e;
            uint16_t h = 0, l = 0;
            if (n < w->out && k < w->in) {
              const uint16_t v = src[n * w->in + k];
              if (b->terms == 1) {
                h = v;
              } else {
                const float f = mp_f16_to_f32(v);
                h = bf16_rne(f);
                l = bf16_rne(f - mp_bf16_to_f32(h)); /* exact: see the top of the file */
              }
            }
            hi[at] = h;
            if (b->terms == 2) lo[at] = l;
          }
    }
  *out = b;
  return MP_OK;
}

void mp_bfweight_free(mp_bfweight *b) {
  if (!b) return;
  free(b->w);
  free(b);
}

size_t mp_bfweight_bytes(const mp_bfweight *b) {
  return b ? sizeof *b + (size_t)(b->np * b->ns) * BF_TILE * (size_t)b->terms * sizeof(uint16_t) : 0;
}

void mp_bfweight_shape(const mp_bfweight *b, int64_t *out, int64_t *in) {
  *out = b ? b->out : 0;
  *in = b ? b->in : 0;
}

#if MP_HAVE_BFAMX
#define TBF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,amx-tile,amx-bf16")))

typedef struct bf_ctx {
  const mp_isa_impl *impl;
  const float *x;
  int64_t M, K, Mp, Kp; /* Mp: rows rounded up to 16; Kp: inputs rounded up to 32 */
  const mp_bfweight *w;
  const float *fbias;
  mp_act act;
  float *y;
  uint16_t *xh, *xl; /* [Mp][Kp] bf16: the activation split */
  int64_t rows_per_task, cols_per_task, n_rtasks;
} bf_ctx;

/* rows [16 t, 16 t + 16) of x into xh / xl (zero-padded rows and inputs) */
TBF static void split_task(void *vc, int64_t t, int thread) {
  (void)thread;
  bf_ctx *c = vc;
  for (int64_t r = t * 16; r < t * 16 + 16 && r < c->Mp; r++) {
    uint16_t *h = c->xh + r * c->Kp, *l = c->xl + r * c->Kp;
    const float *xr = c->x + r * c->K;
    for (int64_t k = 0; k < c->Kp; k += 32) {
      __m512 a = _mm512_setzero_ps(), b = a;
      if (r < c->M) {
        const int64_t n = c->K - k;
        const __mmask16 ma = n >= 16 ? 0xFFFF : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
        const __mmask16 mb = n >= 32 ? 0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
        a = _mm512_maskz_loadu_ps(ma, xr + k);
        b = _mm512_maskz_loadu_ps(mb, xr + k + 16);
      }
      /* VCVTNE2PS2BF16 rounds to nearest even; its second operand fills the low half */
      __m512bh hv = _mm512_cvtne2ps_pbh(b, a);
      __m512i hb = (__m512i)hv;
      /* the high terms back in f32 (a bf16 is the top half of an f32) */
      __m512 ah = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hb)), 16));
      __m512 bh = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hb, 1)), 16));
      __m512bh lv = _mm512_cvtne2ps_pbh(_mm512_sub_ps(b, bh), _mm512_sub_ps(a, ah));
      _mm512_storeu_si512(h + k, hb);
      _mm512_storeu_si512(l + k, (__m512i)lv);
    }
  }
}

typedef struct bf_cfg {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} bf_cfg;

/* tiles: C 0..3 (16 rows x 16 f32), A 4, 5 (16 rows x 32 bf16), B 6, 7 (16 pairs x 16 outputs) */
TBF static void bf_config(void) {
  if (mp_amx_cfg_key == MP_AMX_KEY_BF16) return;
  bf_cfg g;
  memset(&g, 0, sizeof g);
  g.palette = 1;
  for (int i = 0; i < 8; i++)
    g.rows[i] = 16, g.colsb[i] = 64;
  _tile_loadconfig(&g);
  mp_amx_cfg_key = MP_AMX_KEY_BF16;
}

/* one step of 32 inputs for a block of 2 x 2 tiles; the row / panel tails use fewer */
#define BF_DP(A0, A1, B0, B1)                                                                                          \
  do {                                                                                                                 \
    _tile_dpbf16ps(0, A0, B0);                                                                                         \
    if (two_p) _tile_dpbf16ps(1, A0, B1);                                                                              \
    if (two_r) {                                                                                                       \
      _tile_dpbf16ps(2, A1, B0);                                                                                       \
      if (two_p) _tile_dpbf16ps(3, A1, B1);                                                                            \
    }                                                                                                                  \
  } while (0)

/* y rows [r0, r0 + 16 (two_r ? 2 : 1)) x outputs of panels p, p + two_p: the full K */
TBF static void bf_block(const bf_ctx *c, int64_t r0, int64_t p, int two_r, int two_p) {
  const mp_bfweight *w = c->w;
  const size_t ts = (size_t)w->ns * BF_TILE, lo = (size_t)(w->np * w->ns) * BF_TILE;
  const uint16_t *b0 = w->w + (size_t)p * ts, *b1 = b0 + ts;
  const int64_t lda = c->Kp * 2; /* bytes */
  const uint16_t *h0 = c->xh + r0 * c->Kp, *h1 = h0 + 16 * c->Kp, *l0 = c->xl + r0 * c->Kp, *l1 = l0 + 16 * c->Kp;
  /* the block's output lines, requested for writing before the products: y is usually far
   * larger than the caches, and the tile stores would wait for each line's read otherwise */
  for (int64_t i = 0; i < (two_r ? 32 : 16) && r0 + i < c->M; i++) {
    const float *yr = c->y + (r0 + i) * w->out + p * 16;
    _mm_prefetch((const char *)yr, _MM_HINT_ET0);
    if (two_p) _mm_prefetch((const char *)(yr + 16), _MM_HINT_ET0);
  }
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < w->ns; s++) {
    const size_t wo = (size_t)s * BF_TILE;
    const int64_t xo = s * 32;
    _tile_loadd(6, b0 + wo, 64);
    if (two_p) _tile_loadd(7, b1 + wo, 64);
    _tile_loadd(4, h0 + xo, lda);
    if (two_r) _tile_loadd(5, h1 + xo, lda);
    BF_DP(4, 5, 6, 7);
    _tile_loadd(4, l0 + xo, lda);
    if (two_r) _tile_loadd(5, l1 + xo, lda);
    BF_DP(4, 5, 6, 7);
    if (w->terms == 2) {
      _tile_loadd(6, b0 + lo + wo, 64);
      if (two_p) _tile_loadd(7, b1 + lo + wo, 64);
      _tile_loadd(4, h0 + xo, lda);
      if (two_r) _tile_loadd(5, h1 + xo, lda);
      BF_DP(4, 5, 6, 7);
    }
  }
  /* out: full 16 x 16 tiles straight into y, tails through a buffer */
  const int64_t N = w->out;
  for (int t = 0; t < 4; t++) {
    const int tr = t >> 1, tp = t & 1;
    if ((tr && !two_r) || (tp && !two_p)) continue;
    const int64_t rr = r0 + 16 * tr, n0 = (p + tp) * 16;
    const int64_t nr = c->M - rr < 16 ? c->M - rr : 16, nn = N - n0 < 16 ? N - n0 : 16;
    float *yt = c->y + rr * N + n0;
    if (nr == 16 && nn == 16) {
      switch (t) { /* tile numbers are immediates */
      case 0: _tile_stored(0, yt, N * 4); break;
      case 1: _tile_stored(1, yt, N * 4); break;
      case 2: _tile_stored(2, yt, N * 4); break;
      default: _tile_stored(3, yt, N * 4); break;
      }
      continue;
    }
    float buf[256] __attribute__((aligned(64)));
    switch (t) {
    case 0: _tile_stored(0, buf, 64); break;
    case 1: _tile_stored(1, buf, 64); break;
    case 2: _tile_stored(2, buf, 64); break;
    default: _tile_stored(3, buf, 64); break;
    }
    for (int64_t i = 0; i < nr; i++)
      memcpy(yt + i * N, buf + i * 16, (size_t)nn * sizeof(float));
  }
}

TBF static void bf_task(void *vc, int64_t task, int thread) {
  (void)thread;
  const bf_ctx *c = vc;
  bf_config();
  const int64_t rt = task % c->n_rtasks, ct = task / c->n_rtasks;
  const int64_t r0 = rt * c->rows_per_task, r1 = r0 + c->rows_per_task < c->M ? r0 + c->rows_per_task : c->M;
  const int64_t p0 = ct * c->cols_per_task / 16, np = c->w->np;
  const int64_t p1 = p0 + c->cols_per_task / 16 < np ? p0 + c->cols_per_task / 16 : np;
  for (int64_t p = p0; p < p1; p += 2) /* panel pairs outer: their weights stay in L1 / L2 */
    for (int64_t r = r0; r < r1; r += 32)
      bf_block(c, r, p, r + 16 < r1, p + 1 < p1);
  /* bias and activation on the task's outputs, as the f32 path's epilogue does them */
  const int64_t n0 = p0 * 16, n1 = p1 * 16 < c->w->out ? p1 * 16 : c->w->out;
  if (!c->fbias && c->act == MP_ACT_NONE) return;
  for (int64_t r = r0; r < r1; r++) {
    float *yr = c->y + r * c->w->out + n0;
    if (c->fbias) c->impl->axpy(1.0f, c->fbias + n0, yr, n1 - n0);
    c->impl->act_row(c->act, yr, n1 - n0);
  }
}
#endif

mp_status mp_bflinear_act(mp_pool *pool, const float *x, int64_t rows, const mp_bfweight *w, const void *bias,
                          mp_dtype bias_dtype, mp_act act, float *y) {
  if (!w) return mp_err(MP_ERR_INVALID_ARG, "bf16 linear: weight is NULL");
  if (rows < 0) return mp_err(MP_ERR_INVALID_ARG, "bf16 linear: negative row count");
  if (rows == 0) return MP_OK;
  if (!x || !y) return mp_err(MP_ERR_INVALID_ARG, "bf16 linear: NULL input or output");
  if (bias && bias_dtype != MP_F32 && bias_dtype != MP_F16 && bias_dtype != MP_BF16)
    return mp_err(MP_ERR_UNSUPPORTED, "bf16 linear: bias dtype %s is not F32, F16 or BF16", mp_dtype_name(bias_dtype));
#if MP_HAVE_BFAMX
  if (!mp_bflinear_available())
    return mp_err(MP_ERR_UNSUPPORTED, "bf16 linear: AMX-BF16 is not usable now (MP_AMX=0 or a lower MP_ISA)");
  mp_pool *tmp = NULL;
  if (!pool) {
    MP_TRY(mp_pool_create(1, &tmp));
    pool = tmp;
  }
  bf_ctx c = {.impl = mp_impl_current(), .x = x, .M = rows, .K = w->in, .w = w, .act = act, .y = y};
  c.Mp = (rows + 15) / 16 * 16;
  c.Kp = w->ns * 32;
  float *fb = NULL;
  mp_status st = MP_OK;
  if (bias && bias_dtype != MP_F32) {
    if (!(fb = malloc((size_t)w->out * sizeof(float)))) {
      st = mp_err(MP_ERR_NOMEM, "bf16 linear: out of memory");
      goto done;
    }
    if ((st = mp_to_f32(bias_dtype, bias, w->out, fb))) goto done;
    c.fbias = fb;
  } else {
    c.fbias = bias;
  }
  const size_t half = (size_t)(c.Mp * c.Kp);
  uint16_t *xs = mp_pool_shared(pool, 2 * half * sizeof(uint16_t) + 64);
  if (!xs) {
    st = mp_err(MP_ERR_NOMEM, "bf16 linear: out of memory for %lld x %lld activations", (long long)rows,
                (long long)w->in);
    goto done;
  }
  c.xh = (uint16_t *)(((uintptr_t)xs + 63) & ~(uintptr_t)63);
  c.xl = c.xh + half;
  mp_pool_run(pool, c.Mp / 16, split_task, &c);
  /* tasks: up to 256 rows x 128 outputs, narrower when there are too few for the threads */
  const int threads = mp_pool_threads(pool);
  c.rows_per_task = rows < 256 ? c.Mp : 256;
  c.n_rtasks = (rows + c.rows_per_task - 1) / c.rows_per_task;
  c.cols_per_task = 128;
  while (c.cols_per_task > 32 && c.n_rtasks * ((w->out + c.cols_per_task - 1) / c.cols_per_task) < 4 * threads)
    c.cols_per_task -= 32;
  mp_pool_run(pool, c.n_rtasks * ((w->np * 16 + c.cols_per_task - 1) / c.cols_per_task), bf_task, &c);
done:
  free(fb);
  mp_pool_free(tmp);
  return st;
#else
  (void)pool, (void)act;
  return mp_err(MP_ERR_UNSUPPORTED, "bf16 linear: AMX-BF16 tiles are only used on x86-64 Linux");
#endif
}
