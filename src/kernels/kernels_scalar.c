/* Scalar reference implementations: the semantics every vector path is tested against. */
#include <math.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/kernels_internal.h"

static float scale_at(const mp_linear_weight *w, const void *p, int64_t idx) {
  switch (w->scale_dtype) {
  case MP_F16: return mp_f16_to_f32(((const uint16_t *)p)[idx]);
  case MP_BF16: return mp_bf16_to_f32(((const uint16_t *)p)[idx]);
  default: return ((const float *)p)[idx];
  }
}

void mp_decode_row_scalar(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst) {
  if (w->bits == 0) {
    if (w->dtype == MP_F32) {
      memcpy(dst, (const float *)w->data + o * w->in + k0, (size_t)n * sizeof(float));
    } else {
      const uint16_t *s = (const uint16_t *)w->data + o * w->in + k0;
      if (w->dtype == MP_F16)
        for (int64_t i = 0; i < n; i++)
          dst[i] = mp_f16_to_f32(s[i]);
      else
        for (int64_t i = 0; i < n; i++)
          dst[i] = mp_bf16_to_f32(s[i]);
    }
    return;
  }
  const int bits = w->bits, g = w->group_size;
  const int64_t row_bytes = w->in * bits / 8;
  const uint8_t *row = (const uint8_t *)w->data + o * row_bytes;
  const int64_t ng = w->in / g;
  const uint32_t maskv = (1u << bits) - 1;
  for (int64_t i = 0; i < n; i++) {
    int64_t j = k0 + i;
    int64_t bit = j * bits;
    int64_t byte = bit >> 3;
    int sh = (int)(bit & 7);
    uint32_t v = row[byte];
    if (sh + bits > 8) v |= (uint32_t)row[byte + 1] << 8;
    uint32_t q = (v >> sh) & maskv;
    float s = scale_at(w, w->scales, o * ng + j / g);
    float b = scale_at(w, w->biases, o * ng + j / g);
    float t = (float)q * s; /* separate statements: no fused multiply-add, like mx.dequantize */
    dst[i] = t + b;
  }
}

float mp_act_scalar(mp_act act, float x) {
  switch (act) {
  case MP_ACT_NONE: return x;
  case MP_ACT_RELU: return x > 0.0f ? x : 0.0f;
  case MP_ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case MP_ACT_GELU_TANH: {
    float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
  }
  case MP_ACT_TANH: return tanhf(x);
  case MP_ACT_SILU: return x / (1.0f + expf(-x));
  case MP_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
  }
  return x;
}

static void act_row(mp_act act, float *x, int64_t n) {
  if (act == MP_ACT_NONE) return;
  for (int64_t i = 0; i < n; i++)
    x[i] = mp_act_scalar(act, x[i]);
}

static void f16_row(const uint16_t *s, int64_t n, float *d) {
  for (int64_t i = 0; i < n; i++)
    d[i] = mp_f16_to_f32(s[i]);
}
static void bf16_row(const uint16_t *s, int64_t n, float *d) {
  for (int64_t i = 0; i < n; i++)
    d[i] = mp_bf16_to_f32(s[i]);
}

static void layernorm_row(const float *x, const float *res, int64_t dim, const float *gamma, const float *beta,
                          float eps, float *out) {
  double sum = 0.0;
  for (int64_t i = 0; i < dim; i++)
    sum += (double)x[i] + (res ? (double)res[i] : 0.0);
  double mean = sum / (double)dim;
  double var = 0.0;
  for (int64_t i = 0; i < dim; i++) {
    double d = (double)x[i] + (res ? (double)res[i] : 0.0) - mean;
    var += d * d;
  }
  var /= (double)dim;
  double rstd = 1.0 / sqrt(var + (double)eps);
  for (int64_t i = 0; i < dim; i++) {
    double v = ((double)x[i] + (res ? (double)res[i] : 0.0) - mean) * rstd;
    if (gamma) v *= (double)gamma[i];
    if (beta) v += (double)beta[i];
    out[i] = (float)v;
  }
}

static void softmax_row(float *x, int64_t n, const float *mask) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float v = mask ? x[i] + mask[i] : x[i];
    x[i] = v;
    if (v > mx) mx = v;
  }
  if (mx == -INFINITY) {
    for (int64_t i = 0; i < n; i++)
      x[i] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    float e = expf(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  float inv = (float)(1.0 / sum);
  for (int64_t i = 0; i < n; i++)
    x[i] *= inv;
}

static float dot(const float *a, const float *b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; i++)
    s += a[i] * b[i];
  return s;
}
static void axpy(float a, const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] += a * x[i];
}
static void scale(float a, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    y[i] *= a;
}

static void att_scores(const float *q, const float *kt, int64_t D, int64_t ldkt, int64_t nk, float *s) {
  for (int64_t j = 0; j < nk; j++)
    s[j] = 0.0f;
  for (int64_t d = 0; d < D; d++)
    axpy(q[d], kt + d * ldkt, s, nk);
}
static float att_prep(float *s, int64_t n, float sc, const float *bias, const float *madd) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; j++) {
    float v = s[j] * sc;
    if (bias) v += bias[j];
    if (madd) v = madd[j] == 0.0f ? v + 0.0f : -INFINITY;
    s[j] = v;
    if (v > mx) mx = v;
  }
  return mx;
}
static float exp_sub(float *s, int64_t n, float m) {
  float l = 0.0f;
  for (int64_t j = 0; j < n; j++) {
    s[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - m);
    l += s[j];
  }
  return l;
}
static void att_pv(const float *p, int64_t nk, const float *v, int64_t ldv, float *o, int64_t D) {
  for (int64_t j = 0; j < nk; j++)
    if (p[j] != 0.0f) axpy(p[j], v + j * ldv, o, D);
}

static const mp_isa_impl impl = {
    .mr = 0,
    .nr = 0,
    .ukr = NULL, /* the scalar path uses a direct reference loop */
    .decode_row = mp_decode_row_scalar,
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

const mp_isa_impl *mp_impl_scalar(void) { return &impl; }

/* Decoding tables (kernels_internal.h), as constants: lane i of `bits`-bit codes starts at bit
 * i*bits of the step's bytes. */
#define DEC_B0(b, i) ((i) * (b) / 8)
#define DEC_B1(b, i) (DEC_B0(b, i) + 1 < 2 * (b) ? DEC_B0(b, i) + 1 : 0x80)
#define DEC_L(b, i) DEC_B0(b, i), DEC_B1(b, i), 0x80, 0x80
#define DEC_CTRL(b)                                                                                                    \
  {                                                                                                                    \
    DEC_L(b, 0), DEC_L(b, 1), DEC_L(b, 2), DEC_L(b, 3), DEC_L(b, 4), DEC_L(b, 5), DEC_L(b, 6), DEC_L(b, 7),            \
        DEC_L(b, 8), DEC_L(b, 9), DEC_L(b, 10), DEC_L(b, 11), DEC_L(b, 12), DEC_L(b, 13), DEC_L(b, 14), DEC_L(b, 15)   \
  }
#define DEC_S(b)                                                                                                       \
  {                                                                                                                    \
    0 * (b) % 8, 1 * (b) % 8, 2 * (b) % 8, 3 * (b) % 8, 4 * (b) % 8, 5 * (b) % 8, 6 * (b) % 8, 7 * (b) % 8,            \
        8 * (b) % 8, 9 * (b) % 8, 10 * (b) % 8, 11 * (b) % 8, 12 * (b) % 8, 13 * (b) % 8, 14 * (b) % 8, 15 * (b) % 8   \
  }
const uint8_t mp_dec_ctrl[9][64] = {{0},         {0},         DEC_CTRL(2), DEC_CTRL(3), DEC_CTRL(4),
                                    DEC_CTRL(5), DEC_CTRL(6), DEC_CTRL(7), DEC_CTRL(8)};
const uint32_t mp_dec_shift[9][16] = {{0}, {0}, DEC_S(2), DEC_S(3), DEC_S(4), DEC_S(5), DEC_S(6), DEC_S(7), DEC_S(8)};
