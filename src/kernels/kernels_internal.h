/* Internal interfaces between the kernel driver and its per-ISA implementations. */
#ifndef MP_KERNELS_INTERNAL_H
#define MP_KERNELS_INTERNAL_H
#include "kernels/kernels.h"

/* GEMM blocking shared by every vector path (see linear.c). */
#define MP_KC 128

/* Micro-kernel: c[r*ldc + j] (+)= sum_k a[r*lda + k] * b[k*nr + j] for the ISA's full MR x NR
 * tile; a is MR rows of activations, b a packed weight panel of kc steps. accumulate = 0
 * overwrites c. */
typedef void (*mp_ukr_fn)(int64_t kc, const float *a, int64_t lda, const float *b, float *c,
                          int64_t ldc, int accumulate);

/* Small-M block: y[m*ldy + j] = sum_k x[m*ldx + k] * w[j*ldw + k] for m < mr, j < nr (both
 * <= 4), lane-wise partial sums then a fixed reduction (used when few rows are multiplied). */
typedef void (*mp_dotblk_fn)(int64_t K, const float *x, int64_t ldx, int mr, const float *w,
                             int64_t ldw, int nr, float *y, int64_t ldy);

typedef struct mp_isa_impl {
  int mr, nr;
  mp_ukr_fn ukr;
  mp_dotblk_fn dotblk;
  /* Optional: dst[k*nr + j] = src[j][k] for k < kc, j < nr (one weight panel); NULL = scalar */
  void (*pack_panel)(const float *const *src, int64_t kc, float *dst);
  /* Decodes w row o, inputs [k0, k0+n), to f32 (bit-exact with the scalar decoder). */
  void (*decode_row)(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst);
  /* x[i] = act(x[i]) */
  void (*act_row)(mp_act act, float *x, int64_t n);
  void (*f16_row)(const uint16_t *src, int64_t n, float *dst);
  void (*bf16_row)(const uint16_t *src, int64_t n, float *dst);
  /* LayerNorm of one row (see mp_layernorm). */
  void (*layernorm_row)(const float *x, const float *res, int64_t dim, const float *gamma,
                        const float *beta, float eps, float *out);
  /* softmax of one row in place with optional additive mask */
  void (*softmax_row)(float *x, int64_t n, const float *mask);
  /* dot product and axpy (y += a*x) used by attention */
  float (*dot)(const float *a, const float *b, int64_t n);
  void (*axpy)(float a, const float *x, float *y, int64_t n);
  void (*scale)(float a, float *y, int64_t n);
} mp_isa_impl;

const mp_isa_impl *mp_impl_scalar(void);
const mp_isa_impl *mp_impl_avx2(void);   /* NULL when not compiled for x86 */
const mp_isa_impl *mp_impl_avx512(void); /* NULL when not compiled for x86 */
const mp_isa_impl *mp_impl_current(void);

/* Scalar reference pieces shared by every ISA (exact semantics live here). */
void mp_decode_row_scalar(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst);
float mp_act_scalar(mp_act act, float x);
#endif
