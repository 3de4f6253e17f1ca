/* Test weights for the kernel tests: random float or MLX affine-quantized matrices, built
 * with an independent bit packer, with their decoded f32 values as the reference. Header-only
 * (static functions) so that each test executable stays one file. */
#ifndef MP_TEST_TWEIGHT_H
#define MP_TEST_TWEIGHT_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/kernels.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static inline uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}
static inline float frand(void) { return (float)((double)(rnd() & 0xFFFFFF) / 16777216.0 * 2.0 - 1.0); }

/* A test weight: float values (the reference) and the encoded form handed to the kernels. */
typedef struct tw {
  mp_linear_weight w;
  float *ref; /* [out, in] decoded values in f32 */
  void *data, *scales, *biases;
} tw;

static inline void put_scale(mp_dtype dt, void *p, int64_t i, float v, float *back) {
  if (dt == MP_F16) {
    ((uint16_t *)p)[i] = mp_f32_to_f16(v);
    *back = mp_f16_to_f32(((uint16_t *)p)[i]);
  } else if (dt == MP_BF16) {
    ((uint16_t *)p)[i] = mp_f32_to_bf16(v);
    *back = mp_bf16_to_f32(((uint16_t *)p)[i]);
  } else {
    ((float *)p)[i] = v;
    *back = v;
  }
}

/* bits == 0: float weight of dtype dt; else quantized with scales of dtype dt. */
static inline void tw_make(tw *t, int64_t out, int64_t in, mp_dtype dt, int bits, int gs) {
  memset(t, 0, sizeof *t);
  t->w.name = "test.weight";
  t->w.out = out;
  t->w.in = in;
  t->w.bits = bits;
  t->ref = malloc((size_t)(out * in) * sizeof(float));
  if (bits == 0) {
    t->w.dtype = dt;
    t->data = malloc((size_t)(out * in) * mp_dtype_size(dt));
    for (int64_t i = 0; i < out * in; i++)
      put_scale(dt, t->data, i, frand(), &t->ref[i]);
  } else {
    t->w.dtype = MP_U32;
    t->w.group_size = gs;
    t->w.scale_dtype = dt;
    int64_t ng = in / gs, rowbytes = in * bits / 8;
    t->data = calloc((size_t)(out * rowbytes + 8), 1);
    t->scales = malloc((size_t)(out * ng) * 4);
    t->biases = malloc((size_t)(out * ng) * 4);
    uint8_t *bytes = t->data;
    for (int64_t o = 0; o < out; o++) {
      for (int64_t g = 0; g < ng; g++) {
        float s, b;
        put_scale(dt, t->scales, o * ng + g, frand() * 0.1f, &s);
        put_scale(dt, t->biases, o * ng + g, frand(), &b);
        for (int64_t j = g * gs; j < (g + 1) * gs; j++) {
          uint32_t q = rnd() & ((1u << bits) - 1);
          /* LSB-first bit stream, written one bit at a time (independent of the decoder) */
          for (int bb = 0; bb < bits; bb++) {
            int64_t bit = j * bits + bb;
            if ((q >> bb) & 1) bytes[o * rowbytes + bit / 8] |= (uint8_t)(1u << (bit % 8));
          }
          float p = (float)q * s;
          t->ref[o * in + j] = p + b;
        }
      }
    }
  }
  t->w.data = t->data;
  t->w.scales = t->scales;
  t->w.biases = t->biases;
}
static inline void tw_free(tw *t) {
  free(t->ref);
  free(t->data);
  free(t->scales);
  free(t->biases);
}

#endif
