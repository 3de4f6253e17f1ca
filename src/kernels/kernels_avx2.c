/* The AVX2 (+FMA, F16C) instance of the vector kernels (kernels_simd.h over simd.h): 8 lanes,
 * a 6 x 16 micro-kernel. Functions carry target attributes; called only after run-time
 * detection (isa.c). */
#include "kernels/kernels_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MP_SIMD_AVX2
#define UKR_MR 6
#define UKR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define SIMD_PACK_PANEL NULL
#include "kernels/kernels_simd.h"

const mp_isa_impl *mp_impl_avx2(void) { return &simd_impl; }
#else
const mp_isa_impl *mp_impl_avx2(void) { return NULL; }
#endif
