/* Tensor views (element counts, contiguity, shape strings) and f16/bf16 <-> f32 conversion
 * (see tensor.h). */
#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

int64_t mp_tensor_numel(const mp_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0) return -1;
    if (t->shape[i] && n > INT64_MAX / t->shape[i]) return -1;
    n *= t->shape[i];
  }
  return n;
}

void mp_tensor_set_contiguous(mp_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    t->strides[i] = s;
    s *= t->shape[i];
  }
}

int mp_tensor_is_contiguous(const mp_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != s) return 0;
    s *= t->shape[i];
  }
  return 1;
}

const char *mp_shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
  size_t o = 0;
  o += (size_t)snprintf(buf + o, cap - o, "[");
  for (int i = 0; i < ndim && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (o < cap) snprintf(buf + o, cap - o, "]");
  return buf;
}

static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float mp_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  if (exp == 0) {
    if (man == 0) return u2f(sign);
    /* subnormal: man * 2^-24 */
    float v = (float)man * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  if (exp == 31) return u2f(sign | 0x7F800000u | (man << 13));
  return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t mp_f32_to_f16(float f) {
  uint32_t u = f2u(f);
  uint32_t sign = (u >> 16) & 0x8000;
  uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF)); /* NaN, keep quiet */
  if (a >= 0x477FF000) return (uint16_t)(sign | 0x7C00);                      /* overflow (>= 65520 rounds to inf) */
  if (a < 0x38800000) {                                                       /* result subnormal or zero */
    /* value = a as float; scale to units of 2^-24 and round to nearest even */
    if (a < 0x33000000) return (uint16_t)sign; /* < 2^-25: rounds to 0 (2^-25 exact tie -> 0 even) */
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e; /* 14 + (112 - (e - 127)) ... gives mantissa in units of 2^-24 */
    /* value = m * 2^(e-150); units of 2^-24 -> m * 2^(e-126) -> right shift by (126-e) */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t r = a + 0xFFF + ((a >> 13) & 1); /* round to nearest even at bit 13 */
  r -= 112u << 23;
  return (uint16_t)(sign | (r >> 13));
}

float mp_bf16_to_f32(uint16_t b) { return u2f((uint32_t)b << 16); }

uint16_t mp_f32_to_bf16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7FFF + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}
