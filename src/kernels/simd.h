/* A thin vector-of-f32 abstraction: the vocabulary the kernel bodies of kernels_simd.h are written
 * in, instantiated once per instruction set. Define exactly one of MP_SIMD_AVX2, MP_SIMD_AVX512,
 * MP_SIMD_NEON, then include this file (once per translation unit). It provides:
 *
 *   V, VN        the vector type and its lane count (8, 16, 4)
 *   VT           the function attribute every function using V carries (x86: target(...); the
 *                build has no -march flags and these functions run only after detection)
 *   V_ZERO() V_SET1(x) V_BCAST(p)                  constants, broadcast of *p
 *   V_LOAD(p) V_STORE(p, v)                        unaligned, VN lanes
 *   v_loadn(p, n) v_loadn_or(p, n, fill) v_storen(p, v, n)
 *                                                  lanes i < n only (n may be <= 0 or >= VN);
 *                                                  other lanes 0 / fill / untouched in memory
 *   V_ADD V_SUB V_MUL V_DIV V_MIN V_MAX            lane-wise, IEEE rounding
 *   V_FMA(a, b, c) = a*b + c, V_FNMA(a, b, c) = c - a*b     fused (one rounding)
 *   V_ROUND(x)                                     to nearest integer, ties to even
 *   v_scale2(p, n)                                 p * 2^n for integral n in [-126, 127]
 *   v_recip(x)                                     1/x (AVX-512: 14-bit estimate + Newton, ~1 ulp)
 *   V_ABS(x), v_copysign(r, x)                     |x|; r (sign clear) with the sign of x
 *   VM, V_CMP_GE(a, b), V_CMP_NEQ(a, b), V_MASKZ(m, v)
 *                                                  lane masks (ordered compares: NaN is false)
 *                                                  and v where m, else +0
 *   v_hsum(v), v_hmax(v)                           horizontal sum / max in a fixed order
 *   v_load_f16(p), v_load_bf16(p)                  VN halves / bfloat16 values to f32 (exact)
 *   DEC_N, v_dec_codes(row, byte, row_bytes, bits, q)
 *                                                  DEC_N consecutive `bits`-bit codes starting at
 *                                                  byte `byte` of a packed row (byte aligned),
 *                                                  as f32 in DEC_N / VN vectors q[]
 *
 * Each ISA keeps the exact operations the hand-written versions used (e.g. AVX-512's scalef and
 * rcp14 + Newton step, AVX2's exponent shift and division), so one body gives, per ISA, the same
 * results as before. */
#ifndef MP_KERNELS_SIMD_H
#define MP_KERNELS_SIMD_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels_internal.h"

#if defined(MP_SIMD_AVX2) + defined(MP_SIMD_AVX512) + defined(MP_SIMD_NEON) != 1
#error "define exactly one of MP_SIMD_AVX2, MP_SIMD_AVX512, MP_SIMD_NEON before including simd.h"
#endif

/* ====================================================================================== AVX2 */
#if defined(MP_SIMD_AVX2)
#include <immintrin.h>
#define VT __attribute__((target("avx2,fma,f16c")))
#define VN 8
typedef __m256 V;
typedef __m256 VM;
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_BCAST(p) _mm256_broadcast_ss(p)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define V_ROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_ABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x)
#define V_CMP_GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define V_CMP_NEQ(a, b) _mm256_cmp_ps(a, b, _CMP_NEQ_OQ)
#define V_MASKZ(m, v) _mm256_and_ps(m, v)

static const int32_t simd_lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
VT static inline __m256i v_lanemask(int64_t n) {
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_loadu_si256((const __m256i *)(simd_lanes + 8 - n));
}
VT static inline V v_loadn(const float *p, int64_t n) { return _mm256_maskload_ps(p, v_lanemask(n)); }
VT static inline V v_loadn_or(const float *p, int64_t n, V fill) {
  __m256i m = v_lanemask(n);
  return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
VT static inline void v_storen(float *p, V v, int64_t n) { _mm256_maskstore_ps(p, v_lanemask(n), v); }
VT static inline V v_scale2(V p, V n) {
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
VT static inline V v_recip(V x) { return _mm256_div_ps(_mm256_set1_ps(1.0f), x); }
VT static inline V v_copysign(V r, V x) { return _mm256_or_ps(_mm256_and_ps(x, _mm256_set1_ps(-0.0f)), r); }
VT static inline float v_hsum(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
VT static inline float v_hmax(V v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
VT static inline V v_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
VT static inline V v_load_bf16(const uint16_t *p) {
  __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
/* 8 codes = `bits` bytes: each lane gathers its two bytes from the broadcast chunk (pshufb) and
 * shifts them into place (tables: mp_dec_tables) */
#define DEC_N 8
VT static inline void v_dec_codes(const uint8_t *row, int64_t byte, int64_t row_bytes, int bits, V *q) {
  __m128i chunk;
  if (byte + 16 <= row_bytes) {
    chunk = _mm_loadu_si128((const __m128i *)(row + byte));
  } else {
    uint8_t tmp[16] = {0};
    memcpy(tmp, row + byte, (size_t)bits);
    chunk = _mm_loadu_si128((const __m128i *)tmp);
  }
  const __m256i ctrl = _mm256_loadu_si256((const __m256i *)mp_dec_ctrl[bits]);
  const __m256i sh = _mm256_loadu_si256((const __m256i *)mp_dec_shift[bits]);
  __m256i v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(chunk), ctrl);
  __m256i c = _mm256_and_si256(_mm256_srlv_epi32(v, sh), _mm256_set1_epi32((1 << bits) - 1));
  q[0] = _mm256_cvtepi32_ps(c);
}

/* ==================================================================================== AVX-512 */
#elif defined(MP_SIMD_AVX512)
#include <immintrin.h>
#define VT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define VN 16
typedef __m512 V;
typedef __mmask16 VM;
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_BCAST(p) _mm512_set1_ps(*(p))
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_FNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define V_ROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_ABS(x) _mm512_abs_ps(x)
#define V_CMP_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define V_CMP_NEQ(a, b) _mm512_cmp_ps_mask(a, b, _CMP_NEQ_OQ)
#define V_MASKZ(m, v) _mm512_maskz_mov_ps(m, v)

VT static inline __mmask16 v_lanemask(int64_t n) { return (__mmask16)(n <= 0 ? 0 : n >= 16 ? 0xFFFF : (1u << n) - 1); }
VT static inline V v_loadn(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(v_lanemask(n), p); }
VT static inline V v_loadn_or(const float *p, int64_t n, V fill) {
  return _mm512_mask_loadu_ps(fill, v_lanemask(n), p);
}
VT static inline void v_storen(float *p, V v, int64_t n) { _mm512_mask_storeu_ps(p, v_lanemask(n), v); }
VT static inline V v_scale2(V p, V n) { return _mm512_scalef_ps(p, n); }
VT static inline V v_recip(V x) {
  V t = _mm512_rcp14_ps(x);
  return _mm512_mul_ps(t, _mm512_fnmadd_ps(x, t, _mm512_set1_ps(2.0f)));
}
VT static inline V v_copysign(V r, V x) {
  return _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
}
VT static inline float v_hsum(V v) { return _mm512_reduce_add_ps(v); }
VT static inline float v_hmax(V v) { return _mm512_reduce_max_ps(v); }
/* out[i] = the sum of a[i]'s lanes for i < 16, as one transposing add tree (45 operations rather
 * than 16 separate reductions): pairs of vectors, then pairs of 128-bit halves, then lanes */
#define V_HAVE_HSUM16 1
VT static inline void v_hsum16(const V *a, float *out) {
  V c[8], e[4];
  for (int i = 0; i < 8; i++)
    c[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  for (int j = 0; j < 4; j++)
    e[j] =
        _mm512_add_ps(_mm512_shuffle_ps(c[2 * j], c[2 * j + 1], 0x44), _mm512_shuffle_ps(c[2 * j], c[2 * j + 1], 0xEE));
  V f0 = _mm512_add_ps(_mm512_shuffle_f32x4(e[0], e[1], 0x88), _mm512_shuffle_f32x4(e[0], e[1], 0xDD));
  V f1 = _mm512_add_ps(_mm512_shuffle_f32x4(e[2], e[3], 0x88), _mm512_shuffle_f32x4(e[2], e[3], 0xDD));
  _mm512_storeu_ps(out, _mm512_add_ps(_mm512_shuffle_f32x4(f0, f1, 0x88), _mm512_shuffle_f32x4(f0, f1, 0xDD)));
}
VT static inline V v_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
VT static inline V v_load_bf16(const uint16_t *p) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
#define DEC_N 16 /* 16 codes = 2*bits bytes, loaded under a byte mask */
VT static inline void v_dec_codes(const uint8_t *row, int64_t byte, int64_t row_bytes, int bits, V *q) {
  (void)row_bytes;
  __m128i chunk = _mm_maskz_loadu_epi8((__mmask16)((1u << (2 * bits)) - 1), row + byte);
  const __m512i ctrl = _mm512_loadu_si512(mp_dec_ctrl[bits]);
  const __m512i sh = _mm512_loadu_si512(mp_dec_shift[bits]);
  __m512i v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(chunk), ctrl);
  __m512i c = _mm512_and_si512(_mm512_srlv_epi32(v, sh), _mm512_set1_epi32((1 << bits) - 1));
  q[0] = _mm512_cvtepi32_ps(c);
}

/* ======================================================================= NEON (aarch64 ASIMD) */
#elif defined(MP_SIMD_NEON)
#include <arm_neon.h>
#define VT /* Advanced SIMD is part of the aarch64 base architecture */
#define VN 4
typedef float32x4_t V;
typedef uint32x4_t VM;
#define V_ZERO() vdupq_n_f32(0.0f)
#define V_SET1(x) vdupq_n_f32(x)
#define V_BCAST(p) vld1q_dup_f32(p)
#define V_LOAD(p) vld1q_f32(p)
#define V_STORE(p, v) vst1q_f32(p, v)
#define V_ADD(a, b) vaddq_f32(a, b)
#define V_SUB(a, b) vsubq_f32(a, b)
#define V_MUL(a, b) vmulq_f32(a, b)
#define V_DIV(a, b) vdivq_f32(a, b)
#define V_MIN(a, b) vminq_f32(a, b)
#define V_MAX(a, b) vmaxq_f32(a, b)
#define V_FMA(a, b, c) vfmaq_f32(c, a, b)
#define V_FNMA(a, b, c) vfmsq_f32(c, a, b)
#define V_ROUND(x) vrndnq_f32(x)
#define V_ABS(x) vabsq_f32(x)
#define V_CMP_GE(a, b) vcgeq_f32(a, b)
#define V_CMP_NEQ(a, b) vorrq_u32(vcltq_f32(a, b), vcgtq_f32(a, b))
#define V_MASKZ(m, v) vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(v)))

static inline V v_loadn_or(const float *p, int64_t n, V fill) {
  float t[4];
  vst1q_f32(t, fill);
  for (int64_t i = 0; i < n && i < 4; i++)
    t[i] = p[i];
  return vld1q_f32(t);
}
static inline V v_loadn(const float *p, int64_t n) { return v_loadn_or(p, n, vdupq_n_f32(0.0f)); }
static inline void v_storen(float *p, V v, int64_t n) {
  float t[4];
  vst1q_f32(t, v);
  for (int64_t i = 0; i < n && i < 4; i++)
    p[i] = t[i];
}
static inline V v_scale2(V p, V n) {
  int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(e));
}
static inline V v_recip(V x) { return vdivq_f32(vdupq_n_f32(1.0f), x); }
static inline V v_copysign(V r, V x) {
  uint32x4_t s = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
  return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(r), s));
}
static inline float v_hsum(V v) { return vaddvq_f32(v); }
static inline float v_hmax(V v) { return vmaxvq_f32(v); }
static inline V v_load_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline V v_load_bf16(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
/* 8 codes = `bits` bytes: TBL gathers each lane's two bytes, USHL (negative count) shifts them
 * down; the same tables as x86 (the first 8 lanes) */
#define DEC_N 8
static inline void v_dec_codes(const uint8_t *row, int64_t byte, int64_t row_bytes, int bits, V *q) {
  uint8x16_t chunk;
  if (byte + 16 <= row_bytes) {
    chunk = vld1q_u8(row + byte);
  } else {
    uint8_t tmp[16] = {0};
    memcpy(tmp, row + byte, (size_t)bits);
    chunk = vld1q_u8(tmp);
  }
  const uint32x4_t mask = vdupq_n_u32((1u << bits) - 1);
  for (int h = 0; h < 2; h++) {
    uint8x16_t ctrl = vld1q_u8(mp_dec_ctrl[bits] + 16 * h);
    int32x4_t sh = vnegq_s32(vreinterpretq_s32_u32(vld1q_u32(mp_dec_shift[bits] + 4 * h)));
    uint32x4_t v = vreinterpretq_u32_u8(vqtbl1q_u8(chunk, ctrl));
    q[h] = vcvtq_f32_u32(vandq_u32(vshlq_u32(v, sh), mask));
  }
}
#endif

#endif
