/* Internal interfaces between the kernel driver and its per-ISA implementations. */
#ifndef MP_KERNELS_INTERNAL_H
#define MP_KERNELS_INTERNAL_H
#include "kernels/kernels.h"

/* GEMM blocking shared by every vector path (see linear.c). */
#ifndef MP_KC
#define MP_KC 384
#endif

/* Micro-kernel: c[r*ldc + j] (+)= sum_k a[r*lda + k] * b[k*nr + j] for the ISA's full MR x NR
 * tile; a is MR rows of activations, b a packed weight panel of kc steps. accumulate = 0
 * overwrites c. */
typedef void (*mp_ukr_fn)(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                          int accumulate);

/* Small-M block: y[m*ldy + j] = sum_k x[m*ldx + k] * w[j*ldw + k] for m < mr, j < nr (both
 * <= 4), lane-wise partial sums then a fixed reduction (used when few rows are multiplied). */
typedef void (*mp_dotblk_fn)(int64_t K, const float *x, int64_t ldx, int mr, const float *w, int64_t ldw, int nr,
                             float *y, int64_t ldy);

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
  void (*layernorm_row)(const float *x, const float *res, int64_t dim, const float *gamma, const float *beta, float eps,
                        float *out);
  /* softmax of one row in place with optional additive mask */
  void (*softmax_row)(float *x, int64_t n, const float *mask);
  /* dot product and axpy (y += a*x) used by attention */
  float (*dot)(const float *a, const float *b, int64_t n);
  void (*axpy)(float a, const float *x, float *y, int64_t n);
  void (*scale)(float a, float *y, int64_t n);
  /* attention blocks (ops.c): s[j] = sum_d q[d] * kt[d*ldkt + j] for j < nk (d in order) */
  void (*att_scores)(const float *q, const float *kt, int64_t D, int64_t ldkt, int64_t nk, float *s);
  /* s[j] = s[j] * scale, + bias[j] (bias may be NULL), then by the key mask madd[j] (0: + 0.0f,
   * -inf: exactly -inf; madd may be NULL) for j < n, in that order; returns the largest s[j] (-inf when n == 0; NaN
   * scores are not counted) */
  float (*att_prep)(float *s, int64_t n, float scale, const float *bias, const float *madd);
  /* s[j] = exp(s[j] - m) (0 where s[j] is -inf) for j < n; returns the sum */
  float (*exp_sub)(float *s, int64_t n, float m);
  /* o[d] += sum_j p[j] * v[j*ldv + d] for d < D, j < nk in order, skipping p[j] == 0 */
  void (*att_pv)(const float *p, int64_t nk, const float *v, int64_t ldv, float *o, int64_t D);
} mp_isa_impl;

const mp_isa_impl *mp_impl_scalar(void);
const mp_isa_impl *mp_impl_avx2(void);   /* NULL when not compiled for x86 */
const mp_isa_impl *mp_impl_avx512(void); /* NULL when not compiled for x86 */
const mp_isa_impl *mp_impl_neon(void);   /* NULL when not compiled for aarch64 */
const mp_isa_impl *mp_impl_current(void);
/* aarch64 CPU has the dot-product instructions (SDOT, HWCAP_ASIMDDP); detected once. */
int mp_cpu_neon_dotprod(void);

/* Code decoding tables shared by the vector decoders (kernels_scalar.c): for `bits`-bit codes,
 * lane i of a 16-code step takes bytes (i*bits)/8 and the next (0x80: none) of the step's bytes
 * (control bytes 4i..4i+3, pshufb/TBL layout) and shifts them right by (i*bits)%8. */
extern const uint8_t mp_dec_ctrl[9][64];
extern const uint32_t mp_dec_shift[9][16];
/* CPU has AVX-512 VNNI / AVX-512 BF16 (besides AVX-512 F/BW/VL/DQ); detected once. */
int mp_cpu_avx512_vnni(void);
int mp_cpu_avx512_bf16(void);
/* AMX-INT8 usable (CPU, OS, permission) and not turned off (MP_AMX=0, mp_kernels_set_amx). */
int mp_cpu_amx_int8(void);
/* AMX-BF16 usable (CPU, OS, permission) and not turned off (MP_AMX=0, mp_kernels_set_amx). */
int mp_cpu_amx_bf16(void);
/* The AMX tile configuration this thread has loaded (-1: none): the integer kernels (qlinear_x86.c)
 * and the bf16 kernels (bflinear.c) each load their own, so both check and set this one key. */
extern __thread int mp_amx_cfg_key;
#define MP_AMX_KEY_BF16 (1 << 30)

/* Scalar reference pieces shared by every ISA (exact semantics live here). */
void mp_decode_row_scalar(const mp_linear_weight *w, int64_t o, int64_t k0, int64_t n, float *dst);
float mp_act_scalar(mp_act act, float x);

/* ---- integer kernels (qlinear.c): one micro-kernel call computes mr <= MP_QMR_MAX rows x
 * MP_QNR outputs of one packed panel: acc = bias[j] (or 0), then in block order (s, b the
 * block's weight scale and bias, sq = s * the block's code sum; d, xs, z the row's block values)
 *   pair == 0 (each block its own weight group), per block:
 *     acc = fma(float(isum), s*d, acc), acc = fma(b, xs, acc), acc = fma(sq, z, acc)
 *   pair == 1 (blocks 2j and 2j+1 share one weight group: s, b equal), per pair a, b:
 *     t = float(isum_a) * d_a, t = fma(float(isum_b), d_b, t), acc = fma(s, t, acc),
 *     acc = fma(b, xs_a + xs_b, acc), acc = fma(sq_a, z_a, acc), acc = fma(sq_b, z_b, acc)
 * then y[r*ldy + j] = acc (kernels.h). */
#define MP_QMR_MAX 16
typedef struct mp_qukr_args {
  int64_t K;
  int gsize, bits, mr;
  int pair;         /* blocks come in pairs of one weight group (an even number of blocks; above) */
  const int8_t *xq; /* [mr][ldx] quantized activations */
  int64_t ldx;
  const float *d, *xs, *z; /* [mr][ldg] per-block activation scale, d*sum(xq) + z*block, zero point */
  const int32_t *isx;      /* [mr][ldg] per-group sum(xq) */
  int64_t ldg;
  const uint8_t *w;  /* panel codes [K/4][MP_QNR][4] */
  const float *sb;   /* panel [groups][3][MP_QNR] scales, biases, scale * sum of the block's codes */
  const float *bias; /* MP_QNR start values of the accumulators (the layer's bias), or NULL = 0 */
  float *y;
  int64_t ldy;
} mp_qukr_args;

typedef struct mp_qimpl {
  const char *name;
  int mr; /* rows per micro-kernel call (<= MP_QMR_MAX) */
  /* per block of g inputs of one row: xq, d, xs, z, isx (bit-identical to scalar; qlinear.c) */
  void (*quant_row)(const float *x, int64_t K, int g, int8_t *xq, float *d, float *xs, float *z, int32_t *isx);
  void (*ukr)(const mp_qukr_args *a);
  /* mr (<= 16) rows of one block of MP_QNR inputs, t[r * MP_QNR + i]: row r's xq to xq + r * ldq, its
   * d, xs, z, isx to [r * ldg]; the same values as quant_row on each row. NULL: quant_row per row. */
  void (*quant_tile)(const float *t, int mr, int8_t *xq, int64_t ldq, float *d, float *xs, float *z, int32_t *isx,
                     int64_t ldg);
} mp_qimpl;

void mp_qquant_row_scalar(const float *x, int64_t K, int g, int8_t *xq, float *d, float *xs, float *z, int32_t *isx);
void mp_qukr_scalar(const mp_qukr_args *a);
const mp_qimpl *mp_qimpl_avx2(void);     /* NULL when not compiled for x86 or no AVX2 */
const mp_qimpl *mp_qimpl_avx512(void);   /* NULL without AVX-512 VNNI */
const mp_qimpl *mp_qimpl_neon(void);     /* NULL when not compiled for aarch64 */
const mp_qimpl *mp_qimpl_neon_dot(void); /* NULL without the dot-product instructions */
#endif
