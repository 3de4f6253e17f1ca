/* The AVX-512 (F/BW/VL/DQ) instance of the vector kernels (kernels_simd.h over simd.h): 16
 * lanes, a 12 x 32 micro-kernel, and a panel packer with 16 x 16 register transposes.
 * Functions carry target attributes; called only after run-time detection (isa.c). */
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MP_SIMD_AVX512
#include "kernels/simd.h"

/* Packs 32 rows into a k-major panel: dst[k*32 + j] = src[j][k], 16x16 register transposes. */
VT static void pack_panel_avx512(const float *const *src, int64_t kc, float *dst) {
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

#define UKR_MR 12
#define UKR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define SIMD_PACK_PANEL pack_panel_avx512
#include "kernels/kernels_simd.h"

const mp_isa_impl *mp_impl_avx512(void) { return &simd_impl; }
#else
const mp_isa_impl *mp_impl_avx512(void) { return NULL; }
#endif
