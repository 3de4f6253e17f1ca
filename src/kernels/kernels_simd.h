/* The vector kernels (the mp_isa_impl functions), written once over the vector abstraction of
 * simd.h and compiled once per instruction set: kernels_avx2.c, kernels_avx512.c,
 * kernels_neon.c include simd.h and then this file, after defining
 *
 *   UKR_MR, UKR_ROWS(X)   micro-kernel rows and the list X(0) X(1) ... X(UKR_MR-1)
 *   SIMD_PACK_PANEL       an ISA-specific pack_panel function, or NULL (scalar interleave)
 *
 * and get `static const mp_isa_impl simd_impl`. Bodies process full vectors, then one partial
 * vector (v_loadn/v_storen) for the tail, so every element of a row goes through the same
 * vector operations. Decoding is bit-exact with the scalar reference; arithmetic kernels agree
 * with it to float rounding (tests/c/test_kernels.c). */
#ifndef MP_KERNELS_SIMD_BODY_H
#define MP_KERNELS_SIMD_BODY_H
#include "core/tensor.h"
#include "kernels/simd.h"

#define UKR_NR (2 * VN) /* micro-kernel: UKR_MR rows x 2 vectors */

static inline float simd_scale_val(mp_dtype dt, const void *p, int64_t i) {
  switch (dt) {
  case MP_F16: return mp_f16_to_f32(((const uint16_t *)p)[i]);
  case MP_BF16: return mp_bf16_to_f32(((const uint16_t *)p)[i]);
  default: return ((const float *)p)[i];
  }
}

/* ---------------------------------------------------------------- elementary functions */

/* exp: Cephes polynomial on x - n ln2 (ln2 split in two), times 2^n */
VT static inline V v_exp(V x) {
  x = V_MIN(V_MAX(x, V_SET1(-87.3f)), V_SET1(88.0f));
  V n = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
  V r = V_FNMA(n, V_SET1(0.693359375f), x);
  r = V_FNMA(n, V_SET1(-2.12194440e-4f), r);
  V p = V_SET1(1.9875691500E-4f);
  p = V_FMA(p, r, V_SET1(1.3981999507E-3f));
  p = V_FMA(p, r, V_SET1(8.3334519073E-3f));
  p = V_FMA(p, r, V_SET1(4.1665795894E-2f));
  p = V_FMA(p, r, V_SET1(1.6666665459E-1f));
  p = V_FMA(p, r, V_SET1(5.0000001201E-1f));
  p = V_FMA(V_MUL(p, r), r, V_ADD(r, V_SET1(1.0f)));
  return v_scale2(p, n);
}

/* erf(x) = c P(c^2) / Q(c^2) with c = x clamped to [-4, 4] (erf(4) rounds to 1 in float): a
 * rational fit of degrees 6 / 5 made by tools/fit_erf.py (max abs error 3.9e-7 in float32,
 * Horner steps as FMAs, the division as a refined reciprocal), clamped to [-1, 1] */
VT static inline V v_erf(V x) {
  static const float p[7] = {1.12837923e+00f, 1.84100643e-01f, 5.38657494e-02f, 3.76551342e-03f,
                             3.65372456e-04f, 4.32389925e-06f, -1.12147429e-08f};
  static const float q[6] = {1.0f, 4.96488422e-01f, 1.13232762e-01f, 1.52434604e-02f, 1.27145683e-03f, 5.97163926e-05f};
  V c = V_MIN(V_MAX(x, V_SET1(-4.0f)), V_SET1(4.0f));
  V u = V_MUL(c, c);
  V pv = V_SET1(p[6]);
  for (int i = 5; i >= 0; i--)
    pv = V_FMA(pv, u, V_SET1(p[i]));
  V qv = V_SET1(q[5]);
  for (int i = 4; i >= 0; i--)
    qv = V_FMA(qv, u, V_SET1(q[i]));
  V r = V_MUL(V_MUL(c, pv), v_recip(qv));
  return V_MIN(V_MAX(r, V_SET1(-1.0f)), V_SET1(1.0f));
}

VT static inline V v_tanh(V x) {
  V e = v_exp(V_MUL(V_ABS(x), V_SET1(-2.0f))); /* in (0, 1] */
  V r = V_DIV(V_SUB(V_SET1(1.0f), e), V_ADD(V_SET1(1.0f), e));
  return v_copysign(r, x);
}

VT static inline V v_act(mp_act act, V x) {
  const V one = V_SET1(1.0f), half = V_SET1(0.5f);
  switch (act) {
  case MP_ACT_RELU: return V_MAX(x, V_ZERO());
  case MP_ACT_GELU_ERF: return V_MUL(V_MUL(half, x), V_ADD(one, v_erf(V_MUL(x, V_SET1(0.70710678118654752f)))));
  case MP_ACT_GELU_TANH: {
    V x3 = V_MUL(V_MUL(x, x), x);
    V u = V_MUL(V_SET1(0.79788456080286536f), V_FMA(x3, V_SET1(0.044715f), x));
    return V_MUL(V_MUL(half, x), V_ADD(one, v_tanh(u)));
  }
  case MP_ACT_TANH: return v_tanh(x);
  case MP_ACT_SILU: return V_DIV(x, V_ADD(one, v_exp(V_SUB(V_ZERO(), x))));
  case MP_ACT_SIGMOID: return V_DIV(one, V_ADD(one, v_exp(V_SUB(V_ZERO(), x))));
  default: return x;
  }
}

/* ---------------------------------------------------------------- rows */

VT static void act_row(mp_act act, float *x, int64_t n) {
  if (act == MP_ACT_NONE) return;
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    V_STORE(x + i, v_act(act, V_LOAD(x + i)));
  if (i < n) v_storen(x + i, v_act(act, v_loadn(x + i, n - i)), n - i);
}

VT static void f16_row(const uint16_t *s, int64_t n, float *d) {
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    V_STORE(d + i, v_load_f16(s + i));
  for (; i < n; i++) /* exact either way */
    d[i] = mp_f16_to_f32(s[i]);
}
VT static void bf16_row(const uint16_t *s, int64_t n, float *d) {
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    V_STORE(d + i, v_load_bf16(s + i));
  for (; i < n; i++)
    d[i] = mp_bf16_to_f32(s[i]);
}

VT static void decode_row(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst) {
  if (w->bits == 0) {
    if (w->dtype == MP_F32)
      memcpy(dst, (const float *)w->data + o * w->in + k0, (size_t)n * 4);
    else if (w->dtype == MP_F16)
      f16_row((const uint16_t *)w->data + o * w->in + k0, n, dst);
    else
      bf16_row((const uint16_t *)w->data + o * w->in + k0, n, dst);
    return;
  }
  if ((k0 % DEC_N) || (n % DEC_N)) {
    mp_decode_row_scalar(w, o, k0, n, dst);
    return;
  }
  const int bits = w->bits, g = w->group_size;
  const int64_t row_bytes = w->in * bits / 8, ng = w->in / g;
  const uint8_t *row = (const uint8_t *)w->data + o * row_bytes;
  for (int64_t i = 0; i < n; i += DEC_N) {
    int64_t j = k0 + i, gi = o * ng + j / g; /* a step never crosses a group (g % DEC_N == 0) */
    V q[DEC_N / VN];
    v_dec_codes(row, j * bits / 8, row_bytes, bits, q);
    V s = V_SET1(simd_scale_val(w->scale_dtype, w->scales, gi));
    V b = V_SET1(simd_scale_val(w->scale_dtype, w->biases, gi));
    for (int h = 0; h < DEC_N / VN; h++) /* rounded product, then rounded sum: no FMA (mx.dequantize) */
      V_STORE(dst + i + h * VN, V_ADD(V_MUL(q[h], s), b));
  }
}

/* ---------------------------------------------------------------- matmul */

/* UKR_MR x (2 VN) micro-kernel: c[r][j] (+)= sum_k a[r*lda + k] * b[k*UKR_NR + j] */
VT static void ukr(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, int accumulate) {
  /* rows 4g..4g+3 are addressed from one base pointer per 4 rows */
  const float *a0 = a, *a4 = a + 4 * (UKR_MR > 4 ? lda : 0), *a8 = a + 8 * (UKR_MR > 8 ? lda : 0);
#define UKR_A(r) ((r) < 4 ? a0 + (r)*lda : (r) < 8 ? a4 + ((r)-4) * lda : a8 + ((r)-8) * lda)
  /* statement macros expanded in a row: clang-format does not settle on them */
  // clang-format off
#define UKR_DECL(r) V c##r##_0, c##r##_1;
  UKR_ROWS(UKR_DECL)
#undef UKR_DECL
  if (accumulate) {
#define UKR_LD(r) c##r##_0 = V_LOAD(c + (r) * ldc); c##r##_1 = V_LOAD(c + (r) * ldc + VN);
    UKR_ROWS(UKR_LD)
#undef UKR_LD
  } else {
#define UKR_Z(r) c##r##_0 = V_ZERO(); c##r##_1 = V_ZERO();
    UKR_ROWS(UKR_Z)
#undef UKR_Z
  }
  for (int64_t k = 0; k < kc; k++) {
    V b0 = V_LOAD(b), b1 = V_LOAD(b + VN), av;
#define UKR_F(r) av = V_BCAST(UKR_A(r)); c##r##_0 = V_FMA(av, b0, c##r##_0); c##r##_1 = V_FMA(av, b1, c##r##_1);
    UKR_ROWS(UKR_F)
#undef UKR_F
    a0++;
    a4++;
    a8++;
    b += UKR_NR;
  }
#define UKR_ST(r) V_STORE(c + (r) * ldc, c##r##_0); V_STORE(c + (r) * ldc + VN, c##r##_1);
  UKR_ROWS(UKR_ST)
#undef UKR_ST
  // clang-format on
#undef UKR_A
}

/* Small-M path: 4 x 4 dot-product blocks, y[m*ldy + j] = sum_k x[m*ldx + k] * w[j*ldw + k]
 * for m < mr (<= 4), j < nr (<= 4); lane-wise partial sums, then a fixed reduction. */
#define DOT_ALL(M)                                                                                                     \
  M(0, 0)                                                                                                              \
  M(0, 1)                                                                                                              \
  M(0, 2) M(0, 3) M(1, 0) M(1, 1) M(1, 2) M(1, 3) M(2, 0) M(2, 1) M(2, 2) M(2, 3) M(3, 0) M(3, 1) M(3, 2) M(3, 3)

VT static void dotblk(int64_t K, const float *x, int64_t ldx, int mr, const float *w, int64_t ldw, int nr, float *y,
                      int64_t ldy) {
#define DZ(m, j) V a##m##j = V_ZERO();
  DOT_ALL(DZ)
#undef DZ
  const float *x0 = x, *x1 = x + (mr > 1 ? 1 : 0) * ldx, *x2 = x + (mr > 2 ? 2 : 0) * ldx,
              *x3 = x + (mr > 3 ? 3 : 0) * ldx;
  const float *w0 = w, *w1 = w + (nr > 1 ? 1 : 0) * ldw, *w2 = w + (nr > 2 ? 2 : 0) * ldw,
              *w3 = w + (nr > 3 ? 3 : 0) * ldw;
#define DF(m, j) a##m##j = V_FMA(u##m, v##j, a##m##j);
  int64_t k = 0;
  for (; k + VN <= K; k += VN) {
    V v0 = V_LOAD(w0 + k), v1 = V_LOAD(w1 + k), v2 = V_LOAD(w2 + k), v3 = V_LOAD(w3 + k);
    V u0 = V_LOAD(x0 + k), u1 = V_LOAD(x1 + k), u2 = V_LOAD(x2 + k), u3 = V_LOAD(x3 + k);
    DOT_ALL(DF)
  }
  if (k < K) {
    int64_t r = K - k;
    V v0 = v_loadn(w0 + k, r), v1 = v_loadn(w1 + k, r), v2 = v_loadn(w2 + k, r), v3 = v_loadn(w3 + k, r);
    V u0 = v_loadn(x0 + k, r), u1 = v_loadn(x1 + k, r), u2 = v_loadn(x2 + k, r), u3 = v_loadn(x3 + k, r);
    DOT_ALL(DF)
  }
#undef DF
  float res[16];
#ifdef V_HAVE_HSUM16
#define DS(m, j) a##m##j,
  const V all[16] = {DOT_ALL(DS)};
#undef DS
  v_hsum16(all, res);
#else
#define DS(m, j) res[m * 4 + j] = v_hsum(a##m##j);
  DOT_ALL(DS)
#undef DS
#endif
  for (int m = 0; m < mr; m++)
    for (int j = 0; j < nr; j++)
      y[m * ldy + j] = res[m * 4 + j];
}

/* ---------------------------------------------------------------- normalization, softmax */

VT static void layernorm_row(const float *x, const float *res, int64_t dim, const float *gamma, const float *beta,
                             float eps, float *out) {
  const float *v = x;
  int64_t i;
  if (res) {
    for (i = 0; i + VN <= dim; i += VN)
      V_STORE(out + i, V_ADD(V_LOAD(x + i), V_LOAD(res + i)));
    if (i < dim) v_storen(out + i, V_ADD(v_loadn(x + i, dim - i), v_loadn(res + i, dim - i)), dim - i);
    v = out;
  }
  V acc = V_ZERO();
  for (i = 0; i + VN <= dim; i += VN)
    acc = V_ADD(acc, V_LOAD(v + i));
  if (i < dim) acc = V_ADD(acc, v_loadn(v + i, dim - i));
  float mean = v_hsum(acc) / (float)dim;
  V mv = V_SET1(mean);
  acc = V_ZERO();
  for (i = 0; i + VN <= dim; i += VN) {
    V d = V_SUB(V_LOAD(v + i), mv);
    acc = V_FMA(d, d, acc);
  }
  if (i < dim) { /* lanes past the row read as the mean: their deviation is exactly 0 */
    V d = V_SUB(v_loadn_or(v + i, dim - i, mv), mv);
    acc = V_FMA(d, d, acc);
  }
  float var = v_hsum(acc) / (float)dim;
  V rv = V_SET1(1.0f / sqrtf(var + eps));
  for (i = 0; i < dim; i += VN) {
    int64_t r = dim - i;
    V y;
    if (r >= VN) {
      y = V_MUL(V_SUB(V_LOAD(v + i), mv), rv);
      if (gamma) y = V_MUL(y, V_LOAD(gamma + i));
      if (beta) y = V_ADD(y, V_LOAD(beta + i));
      V_STORE(out + i, y);
    } else {
      y = V_MUL(V_SUB(v_loadn(v + i, r), mv), rv);
      if (gamma) y = V_MUL(y, v_loadn(gamma + i, r));
      if (beta) y = V_ADD(y, v_loadn(beta + i, r));
      v_storen(out + i, y, r);
    }
  }
}

/* entries more than 87 below the row max become exactly 0 */
VT static void softmax_row(float *x, int64_t n, const float *mask) {
  const V ninf = V_SET1(-INFINITY);
  V mx = ninf;
  for (int64_t i = 0; i < n; i += VN) {
    int64_t r = n - i;
    V v = r >= VN ? V_LOAD(x + i) : v_loadn_or(x + i, r, ninf);
    if (mask) v = V_ADD(v, r >= VN ? V_LOAD(mask + i) : v_loadn(mask + i, r));
    if (r >= VN)
      V_STORE(x + i, v);
    else
      v_storen(x + i, v, r);
    mx = V_MAX(mx, v);
  }
  float m = v_hmax(mx);
  if (m == -INFINITY) {
    memset(x, 0, (size_t)n * 4);
    return;
  }
  const V mv = V_SET1(m), lo = V_SET1(-87.0f);
  V acc = V_ZERO();
  for (int64_t i = 0; i < n; i += VN) {
    int64_t r = n - i;
    V d = V_SUB(r >= VN ? V_LOAD(x + i) : v_loadn_or(x + i, r, ninf), mv);
    V e = V_MASKZ(V_CMP_GE(d, lo), v_exp(d));
    if (r >= VN)
      V_STORE(x + i, e);
    else
      v_storen(x + i, e, r);
    acc = V_ADD(acc, e);
  }
  const V inv = V_SET1(1.0f / v_hsum(acc));
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    V_STORE(x + i, V_MUL(V_LOAD(x + i), inv));
  if (i < n) v_storen(x + i, V_MUL(v_loadn(x + i, n - i), inv), n - i);
}

/* ---------------------------------------------------------------- BLAS-1, attention blocks */

VT static float dot(const float *a, const float *b, int64_t n) {
  V acc = V_ZERO();
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    acc = V_FMA(V_LOAD(a + i), V_LOAD(b + i), acc);
  if (i < n) acc = V_FMA(v_loadn(a + i, n - i), v_loadn(b + i, n - i), acc);
  return v_hsum(acc);
}
VT static void axpy(float al, const float *x, float *y, int64_t n) {
  const V av = V_SET1(al);
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    V_STORE(y + i, V_FMA(av, V_LOAD(x + i), V_LOAD(y + i)));
  if (i < n) v_storen(y + i, V_FMA(av, v_loadn(x + i, n - i), v_loadn(y + i, n - i)), n - i);
}
VT static void scale(float al, float *y, int64_t n) {
  const V av = V_SET1(al);
  int64_t i = 0;
  for (; i + VN <= n; i += VN)
    V_STORE(y + i, V_MUL(av, V_LOAD(y + i)));
  if (i < n) v_storen(y + i, V_MUL(av, v_loadn(y + i, n - i)), n - i);
}

/* s[j] = sum_d q[d] kt[d][j]: 4 vectors of keys in accumulators, one broadcast FMA per d */
VT static void att_scores(const float *q, const float *kt, int64_t D, int64_t ldkt, int64_t nk, float *s) {
  if (ldkt % VN == 0 && nk <= 2 * VN) {
    /* a short block (the attention panels): whole vectors up to nk rounded up, which the panel's
     * row of ldkt values holds; only s[0..nk) is stored. Same FMAs per lane as below. */
    V a0 = V_ZERO(), a1 = a0;
    if (nk > VN) {
      for (int64_t d = 0; d < D; d++, kt += ldkt) {
        V qd = V_SET1(q[d]);
        a0 = V_FMA(qd, V_LOAD(kt), a0);
        a1 = V_FMA(qd, V_LOAD(kt + VN), a1);
      }
      V_STORE(s, a0);
      v_storen(s + VN, a1, nk - VN);
    } else {
      for (int64_t d = 0; d < D; d++, kt += ldkt)
        a0 = V_FMA(V_SET1(q[d]), V_LOAD(kt), a0);
      v_storen(s, a0, nk);
    }
    return;
  }
  for (int64_t j0 = 0; j0 < nk; j0 += 4 * VN) {
    int64_t n = nk - j0 < 4 * VN ? nk - j0 : 4 * VN;
    V a0 = V_ZERO(), a1 = a0, a2 = a0, a3 = a0;
    const float *k = kt + j0;
    if (n == 4 * VN) {
      for (int64_t d = 0; d < D; d++, k += ldkt) {
        V qd = V_SET1(q[d]);
        a0 = V_FMA(qd, V_LOAD(k), a0);
        a1 = V_FMA(qd, V_LOAD(k + VN), a1);
        a2 = V_FMA(qd, V_LOAD(k + 2 * VN), a2);
        a3 = V_FMA(qd, V_LOAD(k + 3 * VN), a3);
      }
      V_STORE(s + j0, a0);
      V_STORE(s + j0 + VN, a1);
      V_STORE(s + j0 + 2 * VN, a2);
      V_STORE(s + j0 + 3 * VN, a3);
    } else {
      for (int64_t d = 0; d < D; d++, k += ldkt) {
        V qd = V_SET1(q[d]);
        a0 = V_FMA(qd, v_loadn(k, n), a0);
        if (n > VN) a1 = V_FMA(qd, v_loadn(k + VN, n - VN), a1);
        if (n > 2 * VN) a2 = V_FMA(qd, v_loadn(k + 2 * VN, n - 2 * VN), a2);
        if (n > 3 * VN) a3 = V_FMA(qd, v_loadn(k + 3 * VN, n - 3 * VN), a3);
      }
      v_storen(s + j0, a0, n);
      if (n > VN) v_storen(s + j0 + VN, a1, n - VN);
      if (n > 2 * VN) v_storen(s + j0 + 2 * VN, a2, n - 2 * VN);
      if (n > 3 * VN) v_storen(s + j0 + 3 * VN, a3, n - 3 * VN);
    }
  }
}

/* s[j] = s[j] * scale (+ bias[j]), then + 0 or exactly -inf by the key mask madd[j], the same
 * operations as the scalar reference; the
 * largest value (tail lanes read as -inf; a NaN lane keeps the running max) */
VT static float att_prep(float *s, int64_t n, float sc, const float *bias, const float *madd) {
  const V scv = V_SET1(sc), ninf = V_SET1(-INFINITY);
  V mx = ninf;
  for (int64_t i = 0; i < n; i += VN) {
    int64_t r = n - i;
    V v = V_MUL(r >= VN ? V_LOAD(s + i) : v_loadn(s + i, r), scv);
    if (bias) v = V_ADD(v, r >= VN ? V_LOAD(bias + i) : v_loadn(bias + i, r));
    if (madd) { /* kept lanes + 0, masked lanes exactly -inf */
      V mk = r >= VN ? V_LOAD(madd + i) : v_loadn(madd + i, r);
      v = V_ADD(V_MASKZ(V_CMP_NEQ(mk, ninf), v), mk);
    }
    if (r >= VN) {
      V_STORE(s + i, v);
    } else {
      v_storen(s + i, v, r);
      v = v_loadn_or(s + i, r, ninf);
    }
    mx = V_MAX(v, mx);
  }
  return v_hmax(mx);
}

/* s[j] = exp(s[j] - m), exactly 0 where s[j] is -inf; returns the sum */
VT static float exp_sub(float *s, int64_t n, float mval) {
  const V mv = V_SET1(mval), ninf = V_SET1(-INFINITY);
  V acc = V_ZERO();
  for (int64_t i = 0; i < n; i += VN) {
    int64_t r = n - i;
    V x = r >= VN ? V_LOAD(s + i) : v_loadn_or(s + i, r, ninf);
    V e = V_MASKZ(V_CMP_NEQ(x, ninf), v_exp(V_SUB(x, mv)));
    if (r >= VN)
      V_STORE(s + i, e);
    else
      v_storen(s + i, e, r);
    acc = V_ADD(acc, e);
  }
  return v_hsum(acc);
}

/* o[d] += sum_j p[j] v[j][d] (j in order, p[j] == 0 skipped): 4 vectors of o in registers */
VT static void att_pv(const float *p, int64_t nk, const float *v, int64_t ldv, float *o, int64_t D) {
  if (D == 2 * VN) { /* a common head size: two whole vectors, the same FMAs per lane as below */
    V a0 = V_LOAD(o), a1 = V_LOAD(o + VN);
    for (int64_t j = 0; j < nk; j++) {
      if (p[j] == 0.0f) continue;
      const float *vr = v + j * ldv;
      V pj = V_SET1(p[j]);
      a0 = V_FMA(pj, V_LOAD(vr), a0);
      a1 = V_FMA(pj, V_LOAD(vr + VN), a1);
    }
    V_STORE(o, a0);
    V_STORE(o + VN, a1);
    return;
  }
  for (int64_t d0 = 0; d0 < D; d0 += 4 * VN) {
    int64_t n = D - d0 < 4 * VN ? D - d0 : 4 * VN;
    float *od = o + d0;
    if (n == 4 * VN) {
      V a0 = V_LOAD(od), a1 = V_LOAD(od + VN), a2 = V_LOAD(od + 2 * VN), a3 = V_LOAD(od + 3 * VN);
      for (int64_t j = 0; j < nk; j++) {
        if (p[j] == 0.0f) continue;
        const float *vr = v + j * ldv + d0;
        V pj = V_SET1(p[j]);
        a0 = V_FMA(pj, V_LOAD(vr), a0);
        a1 = V_FMA(pj, V_LOAD(vr + VN), a1);
        a2 = V_FMA(pj, V_LOAD(vr + 2 * VN), a2);
        a3 = V_FMA(pj, V_LOAD(vr + 3 * VN), a3);
      }
      V_STORE(od, a0);
      V_STORE(od + VN, a1);
      V_STORE(od + 2 * VN, a2);
      V_STORE(od + 3 * VN, a3);
    } else {
      V a0 = v_loadn(od, n), a1 = v_loadn(od + VN, n - VN), a2 = v_loadn(od + 2 * VN, n - 2 * VN),
        a3 = v_loadn(od + 3 * VN, n - 3 * VN);
      for (int64_t j = 0; j < nk; j++) {
        if (p[j] == 0.0f) continue;
        const float *vr = v + j * ldv + d0;
        V pj = V_SET1(p[j]);
        a0 = V_FMA(pj, v_loadn(vr, n), a0);
        if (n > VN) a1 = V_FMA(pj, v_loadn(vr + VN, n - VN), a1);
        if (n > 2 * VN) a2 = V_FMA(pj, v_loadn(vr + 2 * VN, n - 2 * VN), a2);
        if (n > 3 * VN) a3 = V_FMA(pj, v_loadn(vr + 3 * VN, n - 3 * VN), a3);
      }
      v_storen(od, a0, n);
      if (n > VN) v_storen(od + VN, a1, n - VN);
      if (n > 2 * VN) v_storen(od + 2 * VN, a2, n - 2 * VN);
      if (n > 3 * VN) v_storen(od + 3 * VN, a3, n - 3 * VN);
    }
  }
}

static const mp_isa_impl simd_impl = {
    .mr = UKR_MR,
    .nr = UKR_NR,
    .ukr = ukr,
    .dotblk = dotblk,
    .pack_panel = SIMD_PACK_PANEL,
    .decode_row = decode_row,
    .act_row = act_row,
    .f16_row = f16_row,
    .bf16_row = bf16_row,
    .layernorm_row = layernorm_row,
    .softmax_row = softmax_row,
    .dot = dot,
    .axpy = axpy,
    .scale = scale,
    .att_scores = att_scores,
    .att_prep = att_prep,
    .exp_sub = exp_sub,
    .att_pv = att_pv,
};
#endif
