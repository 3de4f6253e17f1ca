/* x86 versions of the integer matmul pieces (see qlinear.c for the driver and the scalar
 * reference): activation quantization and the MP_QNR-wide micro-kernel, for AVX2 (VPMADDUBSW +
 * VPMADDWD) and AVX-512 VNNI (VPDPBUSD). Integer sums are exact and the float epilogue uses the
 * same operations in the same order as the scalar code, so all three are bit-identical. Each
 * function carries its own target attribute and runs only after run-time detection. */
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define T2 __attribute__((target("avx2,fma,f16c")))
#define T5V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma")))

static inline int32_t ld32(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* ======================================================================================
 * AVX2: one row x 32 outputs per call. VPMADDUBSW multiplies unsigned weight codes by signed
 * activations into saturating 16-bit pair sums: codes below 64 (2..6 bits) cannot saturate
 * (2*63*127 < 32767); 8-bit codes are recentred to q-128 and multiplied as |q-128| times the
 * activation with q-128's sign (2*128*127 < 32767), and 128*sum(xq) is added back. */

T2 static void quant_row_avx2(const float *x, int64_t K, int g, int8_t *xq, float *d, float *xs, float *z,
                              int32_t *isx) {
  /* AVX2 has no masked narrowing store; the scalar reference is cheap next to the matmul and
   * defines the result */
  mp_qquant_row_scalar(x, K, g, xq, d, xs, z, isx);
}

T2 static void qukr_avx2(const mp_qukr_args *a) {
  const int64_t G = a->K / a->gsize;
  const int qs = a->gsize / 4, b8 = a->bits == 8;
  const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
  for (int r = 0; r < a->mr; r++) {
    const int8_t *x = a->xq + r * a->ldx;
    __m256 f0 = _mm256_setzero_ps(), f1 = f0, f2 = f0, f3 = f0, t0 = f0, t1 = f0, t2 = f0, t3 = f0;
    if (a->bias) {
      f0 = _mm256_loadu_ps(a->bias);
      f1 = _mm256_loadu_ps(a->bias + 8);
      f2 = _mm256_loadu_ps(a->bias + 16);
      f3 = _mm256_loadu_ps(a->bias + 24);
    }
    const uint8_t *w = a->w;
    for (int64_t g = 0; g < G; g++) {
      __m256i i0 = _mm256_setzero_si256(), i1 = i0, i2 = i0, i3 = i0;
      const int8_t *xg = x + g * a->gsize;
      for (int q = 0; q < qs; q++, w += 4 * MP_QNR) {
        __m256i b = _mm256_set1_epi32(ld32(xg + 4 * q));
        __m256i w0 = _mm256_load_si256((const __m256i *)w), w1 = _mm256_load_si256((const __m256i *)(w + 32));
        __m256i w2 = _mm256_load_si256((const __m256i *)(w + 64)), w3 = _mm256_load_si256((const __m256i *)(w + 96));
        if (b8) {
#define SGN(wv, iv)                                                                                                    \
  do {                                                                                                                 \
    __m256i s_ = _mm256_xor_si256(wv, flip);                                                                           \
    iv = _mm256_add_epi32(                                                                                             \
        iv, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(s_, s_), _mm256_sign_epi8(b, s_)), ones));         \
  } while (0)
          SGN(w0, i0);
          SGN(w1, i1);
          SGN(w2, i2);
          SGN(w3, i3);
#undef SGN
        } else {
          i0 = _mm256_add_epi32(i0, _mm256_madd_epi16(_mm256_maddubs_epi16(w0, b), ones));
          i1 = _mm256_add_epi32(i1, _mm256_madd_epi16(_mm256_maddubs_epi16(w1, b), ones));
          i2 = _mm256_add_epi32(i2, _mm256_madd_epi16(_mm256_maddubs_epi16(w2, b), ones));
          i3 = _mm256_add_epi32(i3, _mm256_madd_epi16(_mm256_maddubs_epi16(w3, b), ones));
        }
      }
      if (b8) {
        __m256i c = _mm256_set1_epi32(128 * a->isx[r * a->ldg + g]);
        i0 = _mm256_add_epi32(i0, c);
        i1 = _mm256_add_epi32(i1, c);
        i2 = _mm256_add_epi32(i2, c);
        i3 = _mm256_add_epi32(i3, c);
      }
      const float *sb = a->sb + g * 3 * MP_QNR;
      const int64_t o = r * a->ldg + g;
      __m256 dr = _mm256_set1_ps(a->d[o]);
      if (!a->pair) {
        __m256 xr = _mm256_set1_ps(a->xs[o]), zr = _mm256_set1_ps(a->z[o]);
#define EPI(fv, iv, j)                                                                                                 \
  fv = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iv), _mm256_mul_ps(_mm256_loadu_ps(sb + (j)), dr), fv);                      \
  fv = _mm256_fmadd_ps(_mm256_loadu_ps(sb + MP_QNR + (j)), xr, fv);                                                    \
  fv = _mm256_fmadd_ps(_mm256_loadu_ps(sb + 2 * MP_QNR + (j)), zr, fv)
        EPI(f0, i0, 0);
        EPI(f1, i1, 8);
        EPI(f2, i2, 16);
        EPI(f3, i3, 24);
#undef EPI
      } else if (!(g & 1)) { /* the pair's first block: t = float(isum) * d */
        t0 = _mm256_mul_ps(_mm256_cvtepi32_ps(i0), dr);
        t1 = _mm256_mul_ps(_mm256_cvtepi32_ps(i1), dr);
        t2 = _mm256_mul_ps(_mm256_cvtepi32_ps(i2), dr);
        t3 = _mm256_mul_ps(_mm256_cvtepi32_ps(i3), dr);
      } else {
        __m256 xr = _mm256_set1_ps(a->xs[o - 1] + a->xs[o]), za = _mm256_set1_ps(a->z[o - 1]);
        __m256 zb = _mm256_set1_ps(a->z[o]);
#define EPI(fv, tv, iv, j)                                                                                             \
  tv = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iv), dr, tv);                                                                \
  fv = _mm256_fmadd_ps(_mm256_loadu_ps(sb + (j)), tv, fv);                                                             \
  fv = _mm256_fmadd_ps(_mm256_loadu_ps(sb + MP_QNR + (j)), xr, fv);                                                    \
  fv = _mm256_fmadd_ps(_mm256_loadu_ps(sb - MP_QNR + (j)), za, fv);                                                    \
  fv = _mm256_fmadd_ps(_mm256_loadu_ps(sb + 2 * MP_QNR + (j)), zb, fv)
        EPI(f0, t0, i0, 0);
        EPI(f1, t1, i1, 8);
        EPI(f2, t2, i2, 16);
        EPI(f3, t3, i3, 24);
#undef EPI
      }
    }
    float *y = a->y + r * a->ldy;
    _mm256_storeu_ps(y, f0);
    _mm256_storeu_ps(y + 8, f1);
    _mm256_storeu_ps(y + 16, f2);
    _mm256_storeu_ps(y + 24, f3);
  }
}

static const mp_qimpl g_qavx2 = {.name = "avx2", .mr = 1, .quant_row = quant_row_avx2, .ukr = qukr_avx2};

const mp_qimpl *mp_qimpl_avx2(void) { return __builtin_cpu_supports("avx2") ? &g_qavx2 : NULL; }

/* ======================================================================================
 * AVX-512 VNNI: 6 rows x 32 outputs per call; VPDPBUSD takes the unsigned codes and the signed
 * activations directly (4 products per 32-bit lane, no saturation). */

/* Per block (g is 32, 64 or 128: whole vectors): max and min in one pass (non-finite values found
 * by VFPCLASSPS), both reduced together (the max of the maxima and of the negated minima), then the
 * scalar reference's operations per value; 64 codes at a time are narrowed by two saturating packs
 * and one dword permutation (the values are already within [-127, 127]). */
T5V static void quant_row_avx512(const float *x, int64_t K, int g, int8_t *xq, float *d, float *xs, float *z,
                                 int32_t *isx) {
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int64_t k0 = 0, gi = 0; k0 < K; k0 += g, gi++) {
    const float *xg = x + k0;
    __m512 vmx = _mm512_loadu_ps(xg), vmn = vmx;
    __mmask16 bad = _mm512_fpclass_ps_mask(vmx, 0x99); /* QNaN, +inf, -inf, SNaN */
    for (int i = 16; i < g; i += 16) {
      __m512 v = _mm512_loadu_ps(xg + i);
      bad |= _mm512_fpclass_ps_mask(v, 0x99);
      vmx = _mm512_max_ps(vmx, v);
      vmn = _mm512_min_ps(vmn, v);
    }
    /* lanes 0..7: the maxima, 8..15: the negated minima; then pairwise down to lane 0 and 8 */
    __m512 nm = _mm512_sub_ps(_mm512_setzero_ps(), vmn);
    __m512 c = _mm512_max_ps(_mm512_shuffle_f32x4(vmx, nm, 0x44), _mm512_shuffle_f32x4(vmx, nm, 0xEE));
    c = _mm512_max_ps(c, _mm512_shuffle_f32x4(c, c, 0xB1));
    c = _mm512_max_ps(c, _mm512_permute_ps(c, 0x4E));
    c = _mm512_max_ps(c, _mm512_permute_ps(c, 0xB1));
    float mx = _mm512_cvtss_f32(c), mn = -_mm512_cvtss_f32(_mm512_shuffle_f32x4(c, c, 0x02));
    int32_t sum = 0;
    if (bad || mx == mn) {
      memset(xq + k0, 0, (size_t)g);
      d[gi] = bad ? NAN : 0.0f;
      z[gi] = bad ? NAN : mx;
    } else {
      float zz = (mx + mn) * 0.5f;
      const __m512 inv = _mm512_set1_ps(254.0f / (mx - mn)), zv = _mm512_set1_ps(zz);
      d[gi] = (mx - mn) / 254.0f;
      z[gi] = zz;
      __m512i s = _mm512_setzero_si512();
#define QV(i)                                                                                                          \
  _mm512_min_epi32(                                                                                                    \
      _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xg + (i)), zv), inv)), lo), hi)
      int i = 0;
      for (; i + 64 <= g; i += 64) {
        __m512i q0 = QV(i), q1 = QV(i + 16), q2 = QV(i + 32), q3 = QV(i + 48);
        s = _mm512_add_epi32(_mm512_add_epi32(s, _mm512_add_epi32(q0, q1)), _mm512_add_epi32(q2, q3));
        __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(q0, q1), _mm512_packs_epi32(q2, q3));
        _mm512_storeu_si512((void *)(xq + k0 + i), _mm512_permutexvar_epi32(order, b));
      }
      for (; i < g; i += 16) {
        __m512i q = QV(i);
        s = _mm512_add_epi32(s, q);
        _mm_storeu_si128((__m128i *)(xq + k0 + i), _mm512_cvtepi32_epi8(q));
      }
#undef QV
      sum = _mm512_reduce_add_epi32(s);
    }
    isx[gi] = sum;
    xs[gi] = fmaf(z[gi], (float)g, d[gi] * (float)sum);
  }
}

/* quant_row_avx512 on mr rows of one 32-input block at once: each row's extremes reduced as there,
 * the scale and zero point of all rows in one vector pass (same IEEE operations, so the same
 * values), and the code sums of all rows by one transposing add tree. */
T5V static void quant_tile_avx512(const float *t, int mr, int8_t *xq, int64_t ldq, float *d, float *xs, float *z,
                                  int32_t *isx, int64_t ldg) {
  float mxa[16] __attribute__((aligned(64))), mna[16] __attribute__((aligned(64)));
  unsigned badm = 0;
  for (int r = 0; r < 16; r++) {
    if (r >= mr) {
      mxa[r] = 1.0f, mna[r] = 0.0f;
      continue;
    }
    const __m512 v0 = _mm512_loadu_ps(t + r * 32), v1 = _mm512_loadu_ps(t + r * 32 + 16);
    if (_mm512_fpclass_ps_mask(v0, 0x99) | _mm512_fpclass_ps_mask(v1, 0x99)) badm |= 1u << r;
    const __m512 vmx = _mm512_max_ps(v0, v1), vmn = _mm512_min_ps(v0, v1);
    __m512 nm = _mm512_sub_ps(_mm512_setzero_ps(), vmn);
    __m512 c = _mm512_max_ps(_mm512_shuffle_f32x4(vmx, nm, 0x44), _mm512_shuffle_f32x4(vmx, nm, 0xEE));
    c = _mm512_max_ps(c, _mm512_shuffle_f32x4(c, c, 0xB1));
    c = _mm512_max_ps(c, _mm512_permute_ps(c, 0x4E));
    c = _mm512_max_ps(c, _mm512_permute_ps(c, 0xB1));
    mxa[r] = _mm512_cvtss_f32(c), mna[r] = -_mm512_cvtss_f32(_mm512_shuffle_f32x4(c, c, 0x02));
  }
  const __m512 mx = _mm512_load_ps(mxa), mn = _mm512_load_ps(mna), rg = _mm512_sub_ps(mx, mn);
  /* constant rows (max == min) and rows with a non-finite value get no codes */
  const __mmask16 skip = _mm512_cmp_ps_mask(mx, mn, _CMP_EQ_OQ) | (__mmask16)badm;
  const __m512 nan = _mm512_set1_ps(NAN), zero = _mm512_setzero_ps();
  const __m512 inv = _mm512_div_ps(_mm512_set1_ps(254.0f), rg);
  __m512 dv = _mm512_div_ps(rg, _mm512_set1_ps(254.0f));
  __m512 zv = _mm512_mul_ps(_mm512_add_ps(mx, mn), _mm512_set1_ps(0.5f));
  dv = _mm512_mask_mov_ps(dv, skip, zero), zv = _mm512_mask_mov_ps(zv, skip, mx);
  dv = _mm512_mask_mov_ps(dv, (__mmask16)badm, nan), zv = _mm512_mask_mov_ps(zv, (__mmask16)badm, nan);
  float inva[16] __attribute__((aligned(64))), za[16] __attribute__((aligned(64)));
  _mm512_store_ps(inva, inv), _mm512_store_ps(za, zv);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  __m512i s[16];
  for (int r = 0; r < 16; r++) {
    if (r >= mr || ((skip >> r) & 1)) {
      s[r] = _mm512_setzero_si512();
      if (r < mr) memset(xq + r * ldq, 0, 32);
      continue;
    }
    const __m512 iv = _mm512_set1_ps(inva[r]), zz = _mm512_set1_ps(za[r]);
    __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + r * 32), zz), iv));
    __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + r * 32 + 16), zz), iv));
    q0 = _mm512_min_epi32(_mm512_max_epi32(q0, lo), hi), q1 = _mm512_min_epi32(_mm512_max_epi32(q1, lo), hi);
    s[r] = _mm512_add_epi32(q0, q1);
    _mm_storeu_si128((__m128i *)(xq + r * ldq), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(xq + r * ldq + 16), _mm512_cvtepi32_epi8(q1));
  }
  /* lane r of the result = the sum of s[r]'s lanes: pairs of vectors, 128-bit halves, lanes */
  __m512i c[8], e[4];
  for (int i = 0; i < 8; i++)
    c[i] =
        _mm512_add_epi32(_mm512_unpacklo_epi32(s[2 * i], s[2 * i + 1]), _mm512_unpackhi_epi32(s[2 * i], s[2 * i + 1]));
  for (int j = 0; j < 4; j++)
    e[j] =
        _mm512_add_epi32(_mm512_unpacklo_epi64(c[2 * j], c[2 * j + 1]), _mm512_unpackhi_epi64(c[2 * j], c[2 * j + 1]));
  const __m512i f0 = _mm512_add_epi32(_mm512_shuffle_i32x4(e[0], e[1], 0x88), _mm512_shuffle_i32x4(e[0], e[1], 0xDD));
  const __m512i f1 = _mm512_add_epi32(_mm512_shuffle_i32x4(e[2], e[3], 0x88), _mm512_shuffle_i32x4(e[2], e[3], 0xDD));
  const __m512i sum = _mm512_add_epi32(_mm512_shuffle_i32x4(f0, f1, 0x88), _mm512_shuffle_i32x4(f0, f1, 0xDD));
  const __m512 xsv = _mm512_fmadd_ps(zv, _mm512_set1_ps(32.0f), _mm512_mul_ps(dv, _mm512_cvtepi32_ps(sum)));
  int32_t sa[16] __attribute__((aligned(64)));
  float da[16] __attribute__((aligned(64))), xa[16] __attribute__((aligned(64)));
  _mm512_store_si512((void *)sa, sum), _mm512_store_ps(da, dv), _mm512_store_ps(xa, xsv), _mm512_store_ps(za, zv);
  for (int r = 0; r < mr; r++)
    d[r * ldg] = da[r], xs[r * ldg] = xa[r], z[r * ldg] = za[r], isx[r * ldg] = sa[r];
}

/* The end of one row's pair epilogue (kernels_internal.h), shared by the VNNI and AMX kernels:
 * acc[0..31] += s * t, b * (xs_a + xs_b), sq_a * z_a, sq_b * z_b, in that order. w holds the
 * panel's vectors s, b, sq_a, sq_b as pairs (outputs 0-15, 16-31). */
typedef struct pair_w {
  __m512 s0, s1, c0, c1, p0, p1, q0, q1;
} pair_w;
T5V static inline void pair_acc(float *acc, __m512 t0, __m512 t1, const pair_w *w, __m512 xr, __m512 za, __m512 zb) {
  __m512 f0 = _mm512_fmadd_ps(w->s0, t0, _mm512_load_ps(acc)),
         f1 = _mm512_fmadd_ps(w->s1, t1, _mm512_load_ps(acc + 16));
  f0 = _mm512_fmadd_ps(w->c0, xr, f0);
  f1 = _mm512_fmadd_ps(w->c1, xr, f1);
  f0 = _mm512_fmadd_ps(w->p0, za, f0);
  f1 = _mm512_fmadd_ps(w->p1, za, f1);
  f0 = _mm512_fmadd_ps(w->q0, zb, f0);
  f1 = _mm512_fmadd_ps(w->q1, zb, f1);
  _mm512_store_ps(acc, f0), _mm512_store_ps(acc + 16, f1);
}
/* the pair's weight vectors: block sb (the first) and the next block's code-sum term */
T5V static inline pair_w pair_load(const float *sb) {
  pair_w w = {_mm512_load_ps(sb),
              _mm512_load_ps(sb + 16),
              _mm512_load_ps(sb + MP_QNR),
              _mm512_load_ps(sb + MP_QNR + 16),
              _mm512_load_ps(sb + 2 * MP_QNR),
              _mm512_load_ps(sb + 2 * MP_QNR + 16),
              _mm512_load_ps(sb + 5 * MP_QNR),
              _mm512_load_ps(sb + 5 * MP_QNR + 16)};
  return w;
}

/* MR rows of activations are streamed against one weight panel. Per block the 2*MR integer
 * accumulators live in registers; the float accumulators live in a small tile in L1 (loaded and
 * stored once per block), which leaves the registers to the dot products. */
#define QMR 6
#define QROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
T5V static void qukr_vnni(const mp_qukr_args *a) {
  const int64_t G = a->K / a->gsize;
  const int qs = a->gsize / 4, mr = a->mr;
  const int64_t ldx = a->ldx, ldg = a->ldg;
  int64_t ro[QMR]; /* row offsets; rows past mr repeat row 0 (computed, never stored) */
  for (int r = 0; r < QMR; r++)
    ro[r] = r < mr ? r : 0;
  float acc[QMR][MP_QNR] __attribute__((aligned(64))), tt[QMR][MP_QNR] __attribute__((aligned(64)));
  __m512 b0 = _mm512_setzero_ps(), b1 = b0;
  if (a->bias) b0 = _mm512_loadu_ps(a->bias), b1 = _mm512_loadu_ps(a->bias + 16);
  for (int r = 0; r < QMR; r++) {
    _mm512_store_ps(acc[r], b0), _mm512_store_ps(acc[r] + 16, b1);
    _mm512_store_ps(tt[r], _mm512_setzero_ps()), _mm512_store_ps(tt[r] + 16, _mm512_setzero_ps());
  }
#define XP(R) const int8_t *x##R = a->xq + ro[R] * ldx;
  QROWS(XP)
#undef XP
  const uint8_t *w = a->w;
  for (int64_t g = 0; g < G; g++) {
#define IZ(R) __m512i i##R##0 = _mm512_setzero_si512(), i##R##1 = i##R##0;
    QROWS(IZ)
#undef IZ
    const int64_t kg = g * a->gsize;
#define DP(R)                                                                                                          \
  {                                                                                                                    \
    __m512i bb = _mm512_set1_epi32(ld32(x##R + kg + 4 * q));                                                           \
    i##R##0 = _mm512_dpbusd_epi32(i##R##0, w0, bb);                                                                    \
    i##R##1 = _mm512_dpbusd_epi32(i##R##1, w1, bb);                                                                    \
  }
    if (qs == 8) {
#pragma GCC unroll 8
      for (int q = 0; q < 8; q++, w += 4 * MP_QNR) {
        __m512i w0 = _mm512_load_si512((const void *)w), w1 = _mm512_load_si512((const void *)(w + 64));
        QROWS(DP)
      }
    } else {
      for (int q = 0; q < qs; q++, w += 4 * MP_QNR) {
        __m512i w0 = _mm512_load_si512((const void *)w), w1 = _mm512_load_si512((const void *)(w + 64));
        QROWS(DP)
      }
    }
#undef DP
    const float *sb = a->sb + g * 3 * MP_QNR;
    const __m512 s0 = _mm512_load_ps(sb), s1 = _mm512_load_ps(sb + 16);
    const __m512 c0 = _mm512_load_ps(sb + MP_QNR), c1 = _mm512_load_ps(sb + MP_QNR + 16);
    const __m512 q0 = _mm512_load_ps(sb + 2 * MP_QNR), q1 = _mm512_load_ps(sb + 2 * MP_QNR + 16);
    if (a->pair && !(g & 1)) { /* the pair's first block: t = float(isum) * d */
#define EPA(R)                                                                                                         \
  {                                                                                                                    \
    const __m512 dr = _mm512_set1_ps(a->d[ro[R] * ldg + g]);                                                           \
    _mm512_store_ps(tt[R], _mm512_mul_ps(_mm512_cvtepi32_ps(i##R##0), dr));                                            \
    _mm512_store_ps(tt[R] + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(i##R##1), dr));                                       \
  }
      QROWS(EPA)
#undef EPA
      continue;
    }
    if (a->pair) { /* the second: the pair's whole epilogue */
      const pair_w pw = pair_load(sb - 3 * MP_QNR);
#define EPB(R)                                                                                                         \
  {                                                                                                                    \
    const int64_t o_ = ro[R] * ldg + g;                                                                                \
    const __m512 dr = _mm512_set1_ps(a->d[o_]), xr = _mm512_set1_ps(a->xs[o_ - 1] + a->xs[o_]);                        \
    pair_acc(acc[R], _mm512_fmadd_ps(_mm512_cvtepi32_ps(i##R##0), dr, _mm512_load_ps(tt[R])),                          \
             _mm512_fmadd_ps(_mm512_cvtepi32_ps(i##R##1), dr, _mm512_load_ps(tt[R] + 16)), &pw, xr,                    \
             _mm512_set1_ps(a->z[o_ - 1]), _mm512_set1_ps(a->z[o_]));                                                  \
  }
      QROWS(EPB)
#undef EPB
      continue;
    }
#define EPI(R)                                                                                                         \
  {                                                                                                                    \
    const int64_t o_ = ro[R] * ldg + g;                                                                                \
    __m512 dr = _mm512_set1_ps(a->d[o_]), xr = _mm512_set1_ps(a->xs[o_]), zr = _mm512_set1_ps(a->z[o_]);               \
    __m512 f0 = _mm512_load_ps(acc[R]), f1 = _mm512_load_ps(acc[R] + 16);                                              \
    f0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i##R##0), _mm512_mul_ps(s0, dr), f0);                                      \
    f0 = _mm512_fmadd_ps(c0, xr, f0);                                                                                  \
    f0 = _mm512_fmadd_ps(q0, zr, f0);                                                                                  \
    f1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i##R##1), _mm512_mul_ps(s1, dr), f1);                                      \
    f1 = _mm512_fmadd_ps(c1, xr, f1);                                                                                  \
    f1 = _mm512_fmadd_ps(q1, zr, f1);                                                                                  \
    _mm512_store_ps(acc[R], f0);                                                                                       \
    _mm512_store_ps(acc[R] + 16, f1);                                                                                  \
  }
    QROWS(EPI)
#undef EPI
  }
  for (int r = 0; r < mr; r++) {
    _mm512_storeu_ps(a->y + r * a->ldy, _mm512_load_ps(acc[r]));
    _mm512_storeu_ps(a->y + r * a->ldy + 16, _mm512_load_ps(acc[r] + 16));
  }
}

static const mp_qimpl g_qvnni = {
    .name = "avx512-vnni", .mr = QMR, .quant_row = quant_row_avx512, .ukr = qukr_vnni, .quant_tile = quant_tile_avx512};

/* ======================================================================================
 * AMX-INT8: 16 rows x 32 outputs per call. Per block of g <= 64 inputs one TDPBSUD per 16 outputs
 * (A: the rows' signed activation bytes, B: the panel's unsigned codes, whose [K/4][32][4] layout
 * is AMX's B layout with a 128-byte row stride) gives the block's exact integer sums in a tile;
 * they go through memory to the same float epilogue as the VNNI kernel, in the same order, so the
 * results are bit-identical to it (and to scalar). Blocks wider than 64 bytes take the VNNI
 * kernel.
 *
 * Software pipeline over blocks: block j + 1's tile loads and products are queued on the AMX unit
 * (the other tile set) before block j's sums are stored and its epilogue runs on the vector units,
 * so the AMX latency hides behind the previous block's float work. */
#if defined(__linux__)
#define AMR 16
#define T5A __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,amx-tile,amx-int8")))

typedef struct amx_cfg {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_cfg;

/* two tile sets: C in tiles 0, 1 (set 0) and 5, 6 (set 1), rows x 16 int32; A in 2 (set 0) and 7
 * (set 1), rows x g bytes; B in 3, 4 (shared), g/4 rows x 64 bytes */
T5A static void amx_config(int rows, int g) {
  const int key = rows * 256 + g;
  if (key == mp_amx_cfg_key) return;
  amx_cfg c;
  memset(&c, 0, sizeof c);
  c.palette = 1;
  static const int ct[] = {0, 1, 5, 6}, at[] = {2, 7};
  for (int i = 0; i < 4; i++)
    c.rows[ct[i]] = (uint8_t)rows, c.colsb[ct[i]] = 64;
  for (int i = 0; i < 2; i++)
    c.rows[at[i]] = (uint8_t)rows, c.colsb[at[i]] = (uint16_t)g;
  c.rows[3] = c.rows[4] = (uint8_t)(g / 4);
  c.colsb[3] = c.colsb[4] = 64;
  _tile_loadconfig(&c);
  mp_amx_cfg_key = key;
}

/* block g's integer sums into tile set (C0, C1, A): queued on the AMX unit */
#define AMX_BLOCK(C0, C1, A, g)                                                                                        \
  do {                                                                                                                 \
    const uint8_t *wb_ = a->w + (size_t)(g)*gb * MP_QNR;                                                               \
    _tile_zero(C0);                                                                                                    \
    _tile_zero(C1);                                                                                                    \
    _tile_loadd(A, a->xq + (g)*gb, a->ldx);                                                                            \
    _tile_loadd(3, wb_, 4 * MP_QNR);                                                                                   \
    _tile_loadd(4, wb_ + 64, 4 * MP_QNR);                                                                              \
    _tile_dpbsud(C0, A, 3);                                                                                            \
    _tile_dpbsud(C1, A, 4);                                                                                            \
  } while (0)

T5A static void qukr_amx(const mp_qukr_args *a) {
  const int gb = a->gsize, mr = a->mr;
  if (gb > 64 || gb % 4) { /* not a tile shape: the VNNI kernel, QMR rows at a time */
    for (int r0 = 0; r0 < mr; r0 += QMR) {
      mp_qukr_args b = *a;
      b.mr = mr - r0 < QMR ? mr - r0 : QMR;
      b.xq += r0 * a->ldx, b.d += r0 * a->ldg, b.xs += r0 * a->ldg, b.z += r0 * a->ldg, b.isx += r0 * a->ldg;
      b.y += r0 * a->ldy;
      qukr_vnni(&b);
    }
    return;
  }
  const int64_t G = a->K / gb, ldg = a->ldg;
  amx_config(mr, gb);
  float acc[AMR][MP_QNR] __attribute__((aligned(64)));
  int32_t ib[AMR][MP_QNR] __attribute__((aligned(64)));
  __m512 b0 = _mm512_setzero_ps(), b1 = b0;
  if (a->bias) b0 = _mm512_loadu_ps(a->bias), b1 = _mm512_loadu_ps(a->bias + 16);
  for (int r = 0; r < mr; r++)
    _mm512_store_ps(acc[r], b0), _mm512_store_ps(acc[r] + 16, b1);
  if (a->pair) { /* pairs of blocks: both sets hold one pair, its epilogue runs once */
    int32_t ib2[AMR][MP_QNR] __attribute__((aligned(64)));
    AMX_BLOCK(0, 1, 2, 0);
    AMX_BLOCK(5, 6, 7, 1);
    for (int64_t e = 0; e < G; e += 2) {
      _tile_stored(0, ib[0], 4 * MP_QNR);
      _tile_stored(1, ib[0] + 16, 4 * MP_QNR);
      if (e + 2 < G) AMX_BLOCK(0, 1, 2, e + 2);
      _tile_stored(5, ib2[0], 4 * MP_QNR);
      _tile_stored(6, ib2[0] + 16, 4 * MP_QNR);
      if (e + 3 < G) AMX_BLOCK(5, 6, 7, e + 3);
      const pair_w pw = pair_load(a->sb + e * 3 * MP_QNR);
      const float *dp = a->d + e, *xp = a->xs + e, *zp = a->z + e;
#pragma GCC unroll 4
      for (int r = 0; r < mr; r++) {
        const __m512 da = _mm512_set1_ps(dp[r * ldg]), db = _mm512_set1_ps(dp[r * ldg + 1]);
        __m512 t0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ib[r])), da);
        __m512 t1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ib[r] + 16)), da);
        t0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ib2[r])), db, t0);
        t1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ib2[r] + 16)), db, t1);
        pair_acc(acc[r], t0, t1, &pw, _mm512_set1_ps(xp[r * ldg] + xp[r * ldg + 1]), _mm512_set1_ps(zp[r * ldg]),
                 _mm512_set1_ps(zp[r * ldg + 1]));
      }
    }
  } else {
    AMX_BLOCK(0, 1, 2, 0);
  }
  for (int64_t e = 0; !a->pair && e < G; e++) {
    /* block e + 1 onto the AMX unit, then block e's sums out of its tiles */
    if (!(e & 1)) {
      if (e + 1 < G) AMX_BLOCK(5, 6, 7, e + 1);
      _tile_stored(0, ib[0], 4 * MP_QNR);
      _tile_stored(1, ib[0] + 16, 4 * MP_QNR);
    } else {
      if (e + 1 < G) AMX_BLOCK(0, 1, 2, e + 1);
      _tile_stored(5, ib[0], 4 * MP_QNR);
      _tile_stored(6, ib[0] + 16, 4 * MP_QNR);
    }
    /* block e's epilogue: the VNNI kernel's operations in its order (bit-identical) */
    const float *sb = a->sb + e * 3 * MP_QNR;
    const __m512 s0 = _mm512_load_ps(sb), s1 = _mm512_load_ps(sb + 16);
    const __m512 c0 = _mm512_load_ps(sb + MP_QNR), c1 = _mm512_load_ps(sb + MP_QNR + 16);
    const __m512 q0 = _mm512_load_ps(sb + 2 * MP_QNR), q1 = _mm512_load_ps(sb + 2 * MP_QNR + 16);
    const float *dp = a->d + e, *xp = a->xs + e, *zp = a->z + e;
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
      const __m512 dr = _mm512_set1_ps(dp[r * ldg]), xr = _mm512_set1_ps(xp[r * ldg]), zr = _mm512_set1_ps(zp[r * ldg]);
      __m512 f0 = _mm512_load_ps(acc[r]), f1 = _mm512_load_ps(acc[r] + 16);
      f0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ib[r])), _mm512_mul_ps(s0, dr), f0);
      f0 = _mm512_fmadd_ps(c0, xr, f0);
      f0 = _mm512_fmadd_ps(q0, zr, f0);
      f1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ib[r] + 16)), _mm512_mul_ps(s1, dr), f1);
      f1 = _mm512_fmadd_ps(c1, xr, f1);
      f1 = _mm512_fmadd_ps(q1, zr, f1);
      _mm512_store_ps(acc[r], f0), _mm512_store_ps(acc[r] + 16, f1);
    }
  }
  for (int r = 0; r < mr; r++) {
    _mm512_storeu_ps(a->y + r * a->ldy, _mm512_load_ps(acc[r]));
    _mm512_storeu_ps(a->y + r * a->ldy + 16, _mm512_load_ps(acc[r] + 16));
  }
}
#undef AMX_BLOCK

static const mp_qimpl g_qamx = {
    .name = "avx512-amx", .mr = AMR, .quant_row = quant_row_avx512, .ukr = qukr_amx, .quant_tile = quant_tile_avx512};
#endif

const mp_qimpl *mp_qimpl_avx512(void) {
#if defined(__linux__)
  if (mp_cpu_amx_int8()) return &g_qamx;
#endif
  return mp_cpu_avx512_vnni() ? &g_qvnni : NULL;
}

#else
const mp_qimpl *mp_qimpl_avx2(void) { return NULL; }
const mp_qimpl *mp_qimpl_avx512(void) { return NULL; }
#endif
