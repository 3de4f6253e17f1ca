/* AVX2 and AVX-512 implementations (compiled with per-function target attributes). */
#include "kernels/kernels_internal.h"

const mp_isa_impl *mp_impl_avx2(void) { return NULL; }
const mp_isa_impl *mp_impl_avx512(void) { return NULL; }
