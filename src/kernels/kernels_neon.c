/* The aarch64 Advanced SIMD (NEON) instance of the vector kernels (kernels_simd.h over simd.h):
 * 4 lanes, a 12 x 8 micro-kernel (24 accumulators of the 32 vector registers). NEON is part of
 * the aarch64 base architecture, so no target attributes are needed; isa.c still selects this
 * path at run time, like the x86 ones. */
#include "kernels/kernels_internal.h"

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define MP_SIMD_NEON
#define UKR_MR 12
#define UKR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define SIMD_PACK_PANEL pack_panel_neon

/* Packs 8 rows into a k-major panel, dst[k*8 + j] = src[j][k], with 4 x 4 register transposes. */
#include <arm_neon.h>
static void pack_panel_neon(const float *const *src, int64_t kc, float *dst) {
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
    for (int h = 0; h < 2; h++) {
      float32x4_t r0 = vld1q_f32(src[4 * h] + k), r1 = vld1q_f32(src[4 * h + 1] + k);
      float32x4_t r2 = vld1q_f32(src[4 * h + 2] + k), r3 = vld1q_f32(src[4 * h + 3] + k);
      float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1), t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
      float64x2_t u0 = vreinterpretq_f64_f32(t0), u1 = vreinterpretq_f64_f32(t1);
      float64x2_t u2 = vreinterpretq_f64_f32(t2), u3 = vreinterpretq_f64_f32(t3);
      float *d = dst + k * 8 + 4 * h;
      vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(u0, u2)));
      vst1q_f32(d + 8, vreinterpretq_f32_f64(vtrn1q_f64(u1, u3)));
      vst1q_f32(d + 16, vreinterpretq_f32_f64(vtrn2q_f64(u0, u2)));
      vst1q_f32(d + 24, vreinterpretq_f32_f64(vtrn2q_f64(u1, u3)));
    }
  }
  for (; k < kc; k++)
    for (int j = 0; j < 8; j++)
      dst[k * 8 + j] = src[j][k];
}
#include "kernels/kernels_simd.h"

const mp_isa_impl *mp_impl_neon(void) { return &simd_impl; }
#else
const mp_isa_impl *mp_impl_neon(void) { return NULL; }
#endif
