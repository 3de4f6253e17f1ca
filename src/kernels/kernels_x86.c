/* AVX2 (+FMA, F16C) and AVX-512 (F/BW/VL/DQ) implementations. Each function carries its own
 * target attribute; the file is compiled without -march flags and only called after run-time
 * detection (isa.c). Decoding is bit-exact with the scalar reference; arithmetic kernels agree
 * with it to float rounding. */
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/tensor.h"

#define T2 __attribute__((target("avx2,fma,f16c")))
#define T5 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

/* Shuffle controls for decoding 16 (AVX-512) / 8 (AVX2) codes of `bits` bits from a broadcast
 * 16-byte chunk: lane i takes bytes (i*bits)/8 and the next, then shifts right by (i*bits)%8. */
static uint8_t g_ctrl[9][64];
static uint32_t g_shift[9][16];
static void init_tables(void) {
  static int done;
  if (done) return;
  for (int bits = 2; bits <= 8; bits++) {
    int nbytes = 2 * bits;
    for (int i = 0; i < 16; i++) {
      int o = i * bits, b = o / 8;
      g_shift[bits][i] = (uint32_t)(o % 8);
      g_ctrl[bits][4 * i + 0] = (uint8_t)b;
      g_ctrl[bits][4 * i + 1] = (uint8_t)(b + 1 < nbytes ? b + 1 : 0x80);
      g_ctrl[bits][4 * i + 2] = 0x80;
      g_ctrl[bits][4 * i + 3] = 0x80;
    }
  }
  done = 1;
}

static inline float scale_val(mp_dtype dt, const void *p, int64_t i) {
  switch (dt) {
  case MP_F16: return mp_f16_to_f32(((const uint16_t *)p)[i]);
  case MP_BF16: return mp_bf16_to_f32(((const uint16_t *)p)[i]);
  default: return ((const float *)p)[i];
  }
}

/* ======================================================================================
 * AVX2 */

T2 static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
T2 static inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

T2 static inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* erf via 1 - erfc, erfc(z) = t exp(-z^2 + P(t)), t = 1/(1+z/2) (fractional error < 1.2e-7) */
T2 static inline __m256 erf8(__m256 x) {
  __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
  static const float c[10] = {-1.26551223f, 1.00002368f,  0.37409196f, 0.09678418f,  -0.18628806f,
                              0.27886807f,  -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
  __m256 p = _mm256_set1_ps(c[9]);
  for (int i = 8; i >= 0; i--)
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
  __m256 ec = _mm256_mul_ps(t, exp8(_mm256_sub_ps(p, _mm256_mul_ps(z, z))));
  return _mm256_or_ps(sign, _mm256_sub_ps(_mm256_set1_ps(1.0f), ec));
}

T2 static inline __m256 tanh8(__m256 x) {
  __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  __m256 e = exp8(_mm256_mul_ps(z, _mm256_set1_ps(-2.0f))); /* in (0, 1] */
  __m256 r = _mm256_div_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), e), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  return _mm256_or_ps(sign, r);
}

T2 static inline __m256 act8(mp_act act, __m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
  switch (act) {
  case MP_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
  case MP_ACT_GELU_ERF:
    return _mm256_mul_ps(_mm256_mul_ps(half, x),
                         _mm256_add_ps(one, erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)))));
  case MP_ACT_GELU_TANH: {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286536f), _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x));
    return _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, tanh8(u)));
  }
  case MP_ACT_TANH: return tanh8(x);
  case MP_ACT_SILU: return _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
  case MP_ACT_SIGMOID: return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
  default: return x;
  }
}

T2 static void act_row_avx2(mp_act act, float *x, int64_t n) {
  if (act == MP_ACT_NONE) return;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, act8(act, _mm256_loadu_ps(x + i)));
  if (i < n) {
    float t[8] = {0};
    memcpy(t, x + i, (size_t)(n - i) * 4);
    _mm256_storeu_ps(t, act8(act, _mm256_loadu_ps(t)));
    memcpy(x + i, t, (size_t)(n - i) * 4);
  }
}

T2 static void f16_row_avx2(const uint16_t *s, int64_t n, float *d) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
  for (; i < n; i++)
    d[i] = mp_f16_to_f32(s[i]);
}
T2 static void bf16_row_avx2(const uint16_t *s, int64_t n, float *d) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
    _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
  }
  for (; i < n; i++)
    d[i] = mp_bf16_to_f32(s[i]);
}

T2 static void decode_row_avx2(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst) {
  if (w->bits == 0) {
    if (w->dtype == MP_F32)
      memcpy(dst, (const float *)w->data + o * w->in + k0, (size_t)n * 4);
    else if (w->dtype == MP_F16)
      f16_row_avx2((const uint16_t *)w->data + o * w->in + k0, n, dst);
    else
      bf16_row_avx2((const uint16_t *)w->data + o * w->in + k0, n, dst);
    return;
  }
  const int bits = w->bits, g = w->group_size;
  const int64_t row_bytes = w->in * bits / 8, ng = w->in / g;
  const uint8_t *row = (const uint8_t *)w->data + o * row_bytes;
  if ((k0 & 7) || (n & 7)) {
    mp_decode_row_scalar(w, o, k0, n, dst);
    return;
  }
  init_tables();
  const __m256i ctrl = _mm256_loadu_si256((const __m256i *)g_ctrl[bits]);
  const __m256i sh = _mm256_loadu_si256((const __m256i *)g_shift[bits]);
  const __m256i mask = _mm256_set1_epi32((1 << bits) - 1);
  for (int64_t i = 0; i < n; i += 8) {
    int64_t j = k0 + i, byte = j * bits / 8;
    __m128i chunk;
    if (byte + 16 <= row_bytes) {
      chunk = _mm_loadu_si128((const __m128i *)(row + byte));
    } else {
      uint8_t tmp[16] = {0};
      memcpy(tmp, row + byte, (size_t)bits); /* 8 codes = `bits` bytes */
      chunk = _mm_loadu_si128((const __m128i *)tmp);
    }
    __m256i v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(chunk), ctrl);
    __m256i q = _mm256_and_si256(_mm256_srlv_epi32(v, sh), mask);
    int64_t gi = o * ng + j / g;
    __m256 s = _mm256_set1_ps(scale_val(w->scale_dtype, w->scales, gi));
    __m256 b = _mm256_set1_ps(scale_val(w->scale_dtype, w->biases, gi));
    _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), s), b));
  }
}

/* 6 x 16 micro-kernel */
T2 static void ukr_avx2(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                        int accumulate) {
  const float *a0 = a, *a3 = a + 3 * lda;
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
#define L2(r)                                                                                                          \
  c##r##0 = _mm256_loadu_ps(c + r * ldc);                                                                              \
  c##r##1 = _mm256_loadu_ps(c + r * ldc + 8);
    L2(0) L2(1) L2(2) L2(3) L2(4) L2(5)
#undef L2
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
  }
  /* statement macros expanded in a row: clang-format 14 does not settle on them */
  // clang-format off
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), av;
#define F2(r)                                                                  \
  av = _mm256_broadcast_ss(r < 3 ? a0 + r * lda : a3 + (r - 3) * lda);         \
  c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                                  \
  c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);
    F2(0) F2(1) F2(2) F2(3) F2(4) F2(5)
#undef F2
    a0++;
    a3++;
    b += 16;
  }
#define S2(r)                                                                  \
  _mm256_storeu_ps(c + r * ldc, c##r##0);                                      \
  _mm256_storeu_ps(c + r * ldc + 8, c##r##1);
  S2(0) S2(1) S2(2) S2(3) S2(4) S2(5)
#undef S2
  // clang-format on
}

/* Small-M path: 4 x 4 dot-product blocks, y[m*ldy + j] = sum_k x[m*ldx + k] * w[j*ldw + k]
 * for m < mr (<= 4), j < nr (<= 4); lane-wise partial sums, then a fixed reduction. */
#define DOT_ALL(M)                                                                                                     \
  M(0, 0)                                                                                                              \
  M(0, 1)                                                                                                              \
  M(0, 2) M(0, 3) M(1, 0) M(1, 1) M(1, 2) M(1, 3) M(2, 0) M(2, 1) M(2, 2) M(2, 3) M(3, 0) M(3, 1) M(3, 2) M(3, 3)

T2 static void dotblk_avx2(int64_t K, const float *x, int64_t ldx, int mr, const float *w, int64_t ldw, int nr,
                           float *y, int64_t ldy) {
#define DZ(m, j) __m256 a##m##j = _mm256_setzero_ps();
  DOT_ALL(DZ)
#undef DZ
  const float *x0 = x, *x1 = x + (mr > 1 ? 1 : 0) * ldx, *x2 = x + (mr > 2 ? 2 : 0) * ldx,
              *x3 = x + (mr > 3 ? 3 : 0) * ldx;
  const float *w0 = w, *w1 = w + (nr > 1 ? 1 : 0) * ldw, *w2 = w + (nr > 2 ? 2 : 0) * ldw,
              *w3 = w + (nr > 3 ? 3 : 0) * ldw;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k), v2 = _mm256_loadu_ps(w2 + k),
           v3 = _mm256_loadu_ps(w3 + k);
    __m256 u0 = _mm256_loadu_ps(x0 + k), u1 = _mm256_loadu_ps(x1 + k), u2 = _mm256_loadu_ps(x2 + k),
           u3 = _mm256_loadu_ps(x3 + k);
#define DF(m, j) a##m##j = _mm256_fmadd_ps(u##m, v##j, a##m##j);
    DOT_ALL(DF)
#undef DF
  }
  float r[16];
#define DS(m, j) r[m * 4 + j] = hsum8(a##m##j);
  DOT_ALL(DS)
#undef DS
  for (; k < K; k++) { /* scalar tail, same order for every element */
    const float *xs[4] = {x0, x1, x2, x3}, *ws[4] = {w0, w1, w2, w3};
    for (int m = 0; m < 4; m++)
      for (int j = 0; j < 4; j++)
        r[m * 4 + j] += xs[m][k] * ws[j][k];
  }
  for (int m = 0; m < mr; m++)
    for (int j = 0; j < nr; j++)
      y[m * ldy + j] = r[m * 4 + j];
}

T2 static void layernorm_row_avx2(const float *x, const float *res, int64_t dim, const float *gamma, const float *beta,
                                  float eps, float *out) {
  const float *v = x;
  if (res) {
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8)
      _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(res + i)));
    for (; i < dim; i++)
      out[i] = x[i] + res[i];
    v = out;
  }
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8)
    acc = _mm256_add_ps(acc, _mm256_loadu_ps(v + i));
  float sum = hsum8(acc);
  for (; i < dim; i++)
    sum += v[i];
  float mean = sum / (float)dim;
  __m256 mv = _mm256_set1_ps(mean);
  acc = _mm256_setzero_ps();
  for (i = 0; i + 8 <= dim; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(v + i), mv);
    acc = _mm256_fmadd_ps(d, d, acc);
  }
  float var = hsum8(acc);
  for (; i < dim; i++)
    var += (v[i] - mean) * (v[i] - mean);
  var /= (float)dim;
  float rstd = 1.0f / sqrtf(var + eps);
  __m256 rv = _mm256_set1_ps(rstd);
  for (i = 0; i + 8 <= dim; i += 8) {
    __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(v + i), mv), rv);
    if (gamma) y = _mm256_mul_ps(y, _mm256_loadu_ps(gamma + i));
    if (beta) y = _mm256_add_ps(y, _mm256_loadu_ps(beta + i));
    _mm256_storeu_ps(out + i, y);
  }
  for (; i < dim; i++) {
    float y = (v[i] - mean) * rstd;
    if (gamma) y *= gamma[i];
    if (beta) y += beta[i];
    out[i] = y;
  }
}

T2 static void softmax_row_avx2(float *x, int64_t n, const float *mask) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (mask) v = _mm256_add_ps(v, _mm256_loadu_ps(mask + i));
    _mm256_storeu_ps(x + i, v);
    mx = _mm256_max_ps(mx, v);
  }
  float m = hmax8(mx);
  for (; i < n; i++) {
    if (mask) x[i] += mask[i];
    if (x[i] > m) m = x[i];
  }
  if (m == -INFINITY) {
    memset(x, 0, (size_t)n * 4);
    return;
  }
  __m256 mv = _mm256_set1_ps(m), acc = _mm256_setzero_ps(), lo = _mm256_set1_ps(-87.0f);
  for (i = 0; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
    __m256 e = _mm256_and_ps(exp8(d), _mm256_cmp_ps(d, lo, _CMP_GE_OQ));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum8(acc);
  for (; i < n; i++) {
    float d = x[i] - m;
    x[i] = d >= -87.0f ? expf(d) : 0.0f;
    sum += x[i];
  }
  __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; i++)
    x[i] *= 1.0f / sum;
}

T2 static float dot_avx2(const float *a, const float *b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float s = hsum8(acc);
  for (; i < n; i++)
    s += a[i] * b[i];
  return s;
}
T2 static void axpy_avx2(float al, const float *x, float *y, int64_t n) {
  __m256 av = _mm256_set1_ps(al);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] += al * x[i];
}
T2 static void scale_avx2(float al, float *y, int64_t n) {
  __m256 av = _mm256_set1_ps(al);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] *= al;
}

T2 static void att_scores_avx2(const float *q, const float *kt, int64_t D, int64_t ldkt, int64_t nk, float *s) {
  int64_t j = 0;
  for (; j + 16 <= nk; j += 16) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int64_t d = 0; d < D; d++) {
      __m256 qd = _mm256_set1_ps(q[d]);
      a0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + d * ldkt + j), a0);
      a1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps(kt + d * ldkt + j + 8), a1);
    }
    _mm256_storeu_ps(s + j, a0);
    _mm256_storeu_ps(s + j + 8, a1);
  }
  for (; j < nk; j++) {
    float a = 0.0f;
    for (int64_t d = 0; d < D; d++)
      a = fmaf(q[d], kt[d * ldkt + j], a);
    s[j] = a;
  }
}
T2 static float exp_sub_avx2(float *s, int64_t n, float mval) {
  __m256 mv = _mm256_set1_ps(mval), acc = _mm256_setzero_ps(), ninf = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(s + i);
    __m256 e = _mm256_and_ps(_mm256_cmp_ps(x, ninf, _CMP_NEQ_OQ), exp8(_mm256_sub_ps(x, mv)));
    _mm256_storeu_ps(s + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float l = hsum8(acc);
  for (; i < n; i++) {
    s[i] = s[i] == -INFINITY ? 0.0f : expf(s[i] - mval);
    l += s[i];
  }
  return l;
}
T2 static void att_pv_avx2(const float *p, int64_t nk, const float *v, int64_t ldv, float *o, int64_t D) {
  for (int64_t j = 0; j < nk; j++)
    if (p[j] != 0.0f) axpy_avx2(p[j], v + j * ldv, o, D);
}

static const mp_isa_impl impl_avx2 = {
    .mr = 6,
    .nr = 16,
    .ukr = ukr_avx2,
    .dotblk = dotblk_avx2,
    .decode_row = decode_row_avx2,
    .act_row = act_row_avx2,
    .f16_row = f16_row_avx2,
    .bf16_row = bf16_row_avx2,
    .layernorm_row = layernorm_row_avx2,
    .softmax_row = softmax_row_avx2,
    .dot = dot_avx2,
    .axpy = axpy_avx2,
    .scale = scale_avx2,
    .att_scores = att_scores_avx2,
    .exp_sub = exp_sub_avx2,
    .att_pv = att_pv_avx2,
};

/* ======================================================================================
 * AVX-512 */

T5 static inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

T5 static inline __m512 erf16(__m512 x) {
  __m512 z = _mm512_abs_ps(x);
  /* t = 1 / (1 + z/2): 14-bit reciprocal estimate + one Newton step (~1 ulp), cheaper than a divide */
  __m512 den = _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)), t = _mm512_rcp14_ps(den);
  t = _mm512_mul_ps(t, _mm512_fnmadd_ps(den, t, _mm512_set1_ps(2.0f)));
  static const float c[10] = {-1.26551223f, 1.00002368f,  0.37409196f, 0.09678418f,  -0.18628806f,
                              0.27886807f,  -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
  __m512 p = _mm512_set1_ps(c[9]);
  for (int i = 8; i >= 0; i--)
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c[i]));
  __m512 ec = _mm512_mul_ps(t, exp16(_mm512_sub_ps(p, _mm512_mul_ps(z, z))));
  __m512 r = _mm512_sub_ps(_mm512_set1_ps(1.0f), ec);
  return _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
}

T5 static inline __m512 tanh16(__m512 x) {
  __m512 z = _mm512_abs_ps(x);
  __m512 e = exp16(_mm512_mul_ps(z, _mm512_set1_ps(-2.0f)));
  __m512 r = _mm512_div_ps(_mm512_sub_ps(_mm512_set1_ps(1.0f), e), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  return _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(r), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
}

T5 static inline __m512 act16(mp_act act, __m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
  switch (act) {
  case MP_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
  case MP_ACT_GELU_ERF:
    return _mm512_mul_ps(_mm512_mul_ps(half, x),
                         _mm512_add_ps(one, erf16(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)))));
  case MP_ACT_GELU_TANH: {
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.79788456080286536f), _mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x));
    return _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, tanh16(u)));
  }
  case MP_ACT_TANH: return tanh16(x);
  case MP_ACT_SILU: return _mm512_div_ps(x, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
  case MP_ACT_SIGMOID: return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
  default: return x;
  }
}

T5 static inline __mmask16 tailmask(int64_t r) { return (__mmask16)(r <= 0 ? 0 : r >= 16 ? 0xFFFF : (1u << r) - 1); }

T5 static void act_row_avx512(mp_act act, float *x, int64_t n) {
  if (act == MP_ACT_NONE) return;
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    _mm512_mask_storeu_ps(x + i, m, act16(act, _mm512_maskz_loadu_ps(m, x + i)));
  }
}

T5 static void f16_row_avx512(const uint16_t *s, int64_t n, float *d) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    _mm512_mask_storeu_ps(d + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + i)));
  }
}
T5 static void bf16_row_avx512(const uint16_t *s, int64_t n, float *d) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, s + i));
    _mm512_mask_storeu_ps(d + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
  }
}

T5 static void decode_row_avx512(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst) {
  if (w->bits == 0) {
    if (w->dtype == MP_F32)
      memcpy(dst, (const float *)w->data + o * w->in + k0, (size_t)n * 4);
    else if (w->dtype == MP_F16)
      f16_row_avx512((const uint16_t *)w->data + o * w->in + k0, n, dst);
    else
      bf16_row_avx512((const uint16_t *)w->data + o * w->in + k0, n, dst);
    return;
  }
  const int bits = w->bits, g = w->group_size;
  const int64_t row_bytes = w->in * bits / 8, ng = w->in / g;
  const uint8_t *row = (const uint8_t *)w->data + o * row_bytes;
  if ((k0 & 15) || (n & 15)) {
    mp_decode_row_scalar(w, o, k0, n, dst);
    return;
  }
  init_tables();
  const __m512i ctrl = _mm512_loadu_si512(g_ctrl[bits]);
  const __m512i sh = _mm512_loadu_si512(g_shift[bits]);
  const __m512i mask = _mm512_set1_epi32((1 << bits) - 1);
  const __mmask16 lm = (__mmask16)((1u << (2 * bits)) - 1); /* 16 codes = 2*bits bytes */
  for (int64_t i = 0; i < n; i += 16) {
    int64_t j = k0 + i, byte = j * bits / 8;
    __m128i chunk = _mm_maskz_loadu_epi8(lm, row + byte);
    __m512i v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(chunk), ctrl);
    __m512i q = _mm512_and_si512(_mm512_srlv_epi32(v, sh), mask);
    int64_t gi = o * ng + j / g;
    __m512 s = _mm512_set1_ps(scale_val(w->scale_dtype, w->scales, gi));
    __m512 b = _mm512_set1_ps(scale_val(w->scale_dtype, w->biases, gi));
    _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(q), s), b));
  }
}

/* 12 x 32 micro-kernel */
T5 static void ukr_avx512(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                          int accumulate) {
  const float *a0 = a, *a4 = a + 4 * lda, *a8 = a + 8 * lda;
  __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, c80, c81, c90, c91, ca0, ca1,
      cb0, cb1;
#define ALL(M) M(0, 0) M(1, 1) M(2, 2) M(3, 3) M(4, 4) M(5, 5) M(6, 6) M(7, 7) M(8, 8) M(9, 9) M(a, 10) M(b, 11)
  if (accumulate) {
#define L5(r, i)                                                                                                       \
  c##r##0 = _mm512_loadu_ps(c + i * ldc);                                                                              \
  c##r##1 = _mm512_loadu_ps(c + i * ldc + 16);
    ALL(L5)
#undef L5
  } else {
#define Z5(r, i)                                                                                                       \
  c##r##0 = _mm512_setzero_ps();                                                                                       \
  c##r##1 = _mm512_setzero_ps();
    ALL(Z5)
#undef Z5
  }
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), av;
#define F5(r, i)                                                                                                       \
  av = _mm512_set1_ps(i < 4 ? a0[i * lda] : i < 8 ? a4[(i - 4) * lda] : a8[(i - 8) * lda]);                            \
  c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                                                          \
  c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);
    ALL(F5)
#undef F5
    a0++;
    a4++;
    a8++;
    b += 32;
  }
#define S5(r, i)                                                                                                       \
  _mm512_storeu_ps(c + i * ldc, c##r##0);                                                                              \
  _mm512_storeu_ps(c + i * ldc + 16, c##r##1);
  ALL(S5)
#undef S5
#undef ALL
}

T5 static void dotblk_avx512(int64_t K, const float *x, int64_t ldx, int mr, const float *w, int64_t ldw, int nr,
                             float *y, int64_t ldy) {
#define DZ(m, j) __m512 a##m##j = _mm512_setzero_ps();
  DOT_ALL(DZ)
#undef DZ
  const float *x0 = x, *x1 = x + (mr > 1 ? 1 : 0) * ldx, *x2 = x + (mr > 2 ? 2 : 0) * ldx,
              *x3 = x + (mr > 3 ? 3 : 0) * ldx;
  const float *w0 = w, *w1 = w + (nr > 1 ? 1 : 0) * ldw, *w2 = w + (nr > 2 ? 2 : 0) * ldw,
              *w3 = w + (nr > 3 ? 3 : 0) * ldw;
  for (int64_t k = 0; k < K; k += 16) {
    __mmask16 mk = tailmask(K - k);
    __m512 v0 = _mm512_maskz_loadu_ps(mk, w0 + k), v1 = _mm512_maskz_loadu_ps(mk, w1 + k),
           v2 = _mm512_maskz_loadu_ps(mk, w2 + k), v3 = _mm512_maskz_loadu_ps(mk, w3 + k);
    __m512 u0 = _mm512_maskz_loadu_ps(mk, x0 + k), u1 = _mm512_maskz_loadu_ps(mk, x1 + k),
           u2 = _mm512_maskz_loadu_ps(mk, x2 + k), u3 = _mm512_maskz_loadu_ps(mk, x3 + k);
#define DF(m, j) a##m##j = _mm512_fmadd_ps(u##m, v##j, a##m##j);
    DOT_ALL(DF)
#undef DF
  }
  float r[16];
#define DS(m, j) r[m * 4 + j] = _mm512_reduce_add_ps(a##m##j);
  DOT_ALL(DS)
#undef DS
  for (int m = 0; m < mr; m++)
    for (int j = 0; j < nr; j++)
      y[m * ldy + j] = r[m * 4 + j];
}

/* Packs 32 rows into a k-major panel: dst[k*32 + j] = src[j][k], 16x16 register transposes. */
T5 static void pack_panel_avx512(const float *const *src, int64_t kc, float *dst) {
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    for (int h = 0; h < 2; h++) {
      __m512 r[16], t[16], u[16];
      for (int j = 0; j < 16; j++)
        r[j] = _mm512_loadu_ps(src[h * 16 + j] + k);
      for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 4; i++) {
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
      }
      for (int c = 0; c < 4; c++) {
        __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v2 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 w = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88),
               w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        float *d = dst + k * 32 + h * 16;
        _mm512_storeu_ps(d + (0 + c) * 32, _mm512_shuffle_f32x4(v, w, 0x88));
        _mm512_storeu_ps(d + (8 + c) * 32, _mm512_shuffle_f32x4(v, w, 0xDD));
        _mm512_storeu_ps(d + (4 + c) * 32, _mm512_shuffle_f32x4(v2, w2, 0x88));
        _mm512_storeu_ps(d + (12 + c) * 32, _mm512_shuffle_f32x4(v2, w2, 0xDD));
      }
    }
  }
  for (; k < kc; k++)
    for (int j = 0; j < 32; j++)
      dst[k * 32 + j] = src[j][k];
}

T5 static void layernorm_row_avx512(const float *x, const float *res, int64_t dim, const float *gamma,
                                    const float *beta, float eps, float *out) {
  const float *v = x;
  if (res) {
    for (int64_t i = 0; i < dim; i += 16) {
      __mmask16 m = tailmask(dim - i);
      _mm512_mask_storeu_ps(out + i, m,
                            _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, res + i)));
    }
    v = out;
  }
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < dim; i += 16)
    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tailmask(dim - i), v + i));
  float mean = _mm512_reduce_add_ps(acc) / (float)dim;
  __m512 mv = _mm512_set1_ps(mean);
  acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < dim; i += 16) {
    __mmask16 m = tailmask(dim - i);
    __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, v + i), mv);
    acc = _mm512_fmadd_ps(d, d, acc);
  }
  float var = _mm512_reduce_add_ps(acc) / (float)dim;
  __m512 rv = _mm512_set1_ps(1.0f / sqrtf(var + eps));
  for (int64_t i = 0; i < dim; i += 16) {
    __mmask16 m = tailmask(dim - i);
    __m512 y = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + i), mv), rv);
    if (gamma) y = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(m, gamma + i));
    if (beta) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, beta + i));
    _mm512_mask_storeu_ps(out + i, m, y);
  }
}

T5 static void softmax_row_avx512(float *x, int64_t n, const float *mask) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    if (mask) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, mask + i));
    _mm512_mask_storeu_ps(x + i, m, v);
    mx = _mm512_mask_max_ps(mx, m, mx, v);
  }
  float mval = _mm512_reduce_max_ps(mx);
  if (mval == -INFINITY) {
    memset(x, 0, (size_t)n * 4);
    return;
  }
  __m512 mv = _mm512_set1_ps(mval), acc = _mm512_setzero_ps(), lo = _mm512_set1_ps(-87.0f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv);
    __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, lo, _CMP_GE_OQ) & m, exp16(d));
    _mm512_mask_storeu_ps(x + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc));
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

T5 static float dot_avx512(const float *a, const float *b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}
T5 static void axpy_avx512(float al, const float *x, float *y, int64_t n) {
  __m512 av = _mm512_set1_ps(al);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}
T5 static void scale_avx512(float al, float *y, int64_t n) {
  __m512 av = _mm512_set1_ps(al);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

/* s[j] = sum_d q[d] kt[d][j]: up to 64 keys in 4 accumulators, one broadcast FMA per d */
T5 static void att_scores_avx512(const float *q, const float *kt, int64_t D, int64_t ldkt, int64_t nk, float *s) {
  for (int64_t j0 = 0; j0 < nk; j0 += 64) {
    int64_t n = nk - j0 < 64 ? nk - j0 : 64;
    __mmask16 m0 = tailmask(n), m1 = tailmask(n - 16), m2 = tailmask(n - 32), m3 = tailmask(n - 48);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float *k = kt + j0;
    for (int64_t d = 0; d < D; d++, k += ldkt) {
      __m512 qd = _mm512_set1_ps(q[d]);
      a0 = _mm512_fmadd_ps(qd, _mm512_maskz_loadu_ps(m0, k), a0);
      if (n > 16) a1 = _mm512_fmadd_ps(qd, _mm512_maskz_loadu_ps(m1, k + 16), a1);
      if (n > 32) a2 = _mm512_fmadd_ps(qd, _mm512_maskz_loadu_ps(m2, k + 32), a2);
      if (n > 48) a3 = _mm512_fmadd_ps(qd, _mm512_maskz_loadu_ps(m3, k + 48), a3);
    }
    _mm512_mask_storeu_ps(s + j0, m0, a0);
    if (n > 16) _mm512_mask_storeu_ps(s + j0 + 16, m1, a1);
    if (n > 32) _mm512_mask_storeu_ps(s + j0 + 32, m2, a2);
    if (n > 48) _mm512_mask_storeu_ps(s + j0 + 48, m3, a3);
  }
}
T5 static float exp_sub_avx512(float *s, int64_t n, float mval) {
  __m512 mv = _mm512_set1_ps(mval), acc = _mm512_setzero_ps(), ninf = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailmask(n - i);
    __m512 x = _mm512_maskz_loadu_ps(m, s + i);
    __m512 e = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ) & m, exp16(_mm512_sub_ps(x, mv)));
    _mm512_mask_storeu_ps(s + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}
T5 static void att_pv_avx512(const float *p, int64_t nk, const float *v, int64_t ldv, float *o, int64_t D) {
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    int64_t n = D - d0 < 64 ? D - d0 : 64;
    __mmask16 m0 = tailmask(n), m1 = tailmask(n - 16), m2 = tailmask(n - 32), m3 = tailmask(n - 48);
    __m512 a0 = _mm512_maskz_loadu_ps(m0, o + d0), a1 = _mm512_maskz_loadu_ps(m1, o + d0 + 16);
    __m512 a2 = _mm512_maskz_loadu_ps(m2, o + d0 + 32), a3 = _mm512_maskz_loadu_ps(m3, o + d0 + 48);
    for (int64_t j = 0; j < nk; j++) {
      if (p[j] == 0.0f) continue;
      const float *vr = v + j * ldv + d0;
      __m512 pj = _mm512_set1_ps(p[j]);
      a0 = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m0, vr), a0);
      if (n > 16) a1 = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m1, vr + 16), a1);
      if (n > 32) a2 = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m2, vr + 32), a2);
      if (n > 48) a3 = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m3, vr + 48), a3);
    }
    _mm512_mask_storeu_ps(o + d0, m0, a0);
    if (n > 16) _mm512_mask_storeu_ps(o + d0 + 16, m1, a1);
    if (n > 32) _mm512_mask_storeu_ps(o + d0 + 32, m2, a2);
    if (n > 48) _mm512_mask_storeu_ps(o + d0 + 48, m3, a3);
  }
}

static const mp_isa_impl impl_avx512 = {
    .mr = 12,
    .nr = 32,
    .ukr = ukr_avx512,
    .dotblk = dotblk_avx512,
    .pack_panel = pack_panel_avx512,
    .decode_row = decode_row_avx512,
    .act_row = act_row_avx512,
    .f16_row = f16_row_avx512,
    .bf16_row = bf16_row_avx512,
    .layernorm_row = layernorm_row_avx512,
    .softmax_row = softmax_row_avx512,
    .dot = dot_avx512,
    .axpy = axpy_avx512,
    .scale = scale_avx512,
    .att_scores = att_scores_avx512,
    .exp_sub = exp_sub_avx512,
    .att_pv = att_pv_avx512,
};

const mp_isa_impl *mp_impl_avx2(void) {
  init_tables();
  return &impl_avx2;
}
const mp_isa_impl *mp_impl_avx512(void) {
  init_tables();
  return &impl_avx512;
}
#else
const mp_isa_impl *mp_impl_avx2(void) { return NULL; }
const mp_isa_impl *mp_impl_avx512(void) { return NULL; }
#endif
