/* aarch64 versions of the integer matmul micro-kernel (see qlinear.c for the driver and the
 * scalar reference): SDOT (the dot-product extension, HWCAP_ASIMDDP) and a plain NEON fallback
 * (SMULL + SADALP). Both multiply signed bytes by signed bytes, while the packed codes are
 * unsigned (0..2^bits-1): codes below 128 (2..6 bits) are used as they are; 8-bit codes are
 * recentred to q-128 (an XOR with 0x80) and 128*sum(xq) is added back to the block's integer
 * sum. Integer sums are exact, and the float epilogue is the scalar reference's operations in
 * its order (per block or per pair of blocks, kernels_internal.h), so both are bit-identical to
 * the scalar kernel. Activation quantization uses the scalar reference. */
#include "kernels/kernels_internal.h"

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#include <arm_neon.h>
#include <string.h>

#if defined(__clang__)
#define TDP __attribute__((target("dotprod")))
#if !defined(__ARM_FEATURE_DOTPROD) /* clang's arm_neon.h declares vdotq_s32 only for -march=...+dotprod */
TDP static inline int32x4_t sdot_asm(int32x4_t acc, int8x16_t a, int8x16_t b) {
  __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
  return acc;
}
#define vdotq_s32 sdot_asm
#endif
#else
/* the form arm_neon.h itself uses for vdotq_s32 (GCC 12 rejects "+dotprod" for it); every CPU
 * with the dot-product extension implements ARMv8.2-A */
#define TDP __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

#define QMR 4 /* rows per micro-kernel call */

static inline int8x16_t bcast4(const int8_t *p) { /* 4 activation bytes in every 32-bit lane */
  int32_t v;
  memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

/* Float epilogue of one block for one row: f[v] (4 outputs each) from the 8 integer sums; with
 * pairs of blocks (a->pair) the first block leaves float(isum) * d in t and the second runs the
 * pair's epilogue (kernels_internal.h). */
static inline void epilogue(const mp_qukr_args *a, int r, int64_t g, const int32x4_t *is, float *f, float *t) {
  const float *sb = a->sb + g * 3 * MP_QNR;
  const int64_t o = r * a->ldg + g;
  const float32x4_t dr = vdupq_n_f32(a->d[o]);
  if (a->pair && !(g & 1)) {
    for (int v = 0; v < MP_QNR / 4; v++)
      vst1q_f32(t + 4 * v, vmulq_f32(vcvtq_f32_s32(is[v]), dr));
    return;
  }
  if (a->pair) {
    const float32x4_t xr = vdupq_n_f32(a->xs[o - 1] + a->xs[o]), za = vdupq_n_f32(a->z[o - 1]);
    const float32x4_t zb = vdupq_n_f32(a->z[o]);
    for (int v = 0; v < MP_QNR / 4; v++) {
      const float32x4_t tv = vfmaq_f32(vld1q_f32(t + 4 * v), vcvtq_f32_s32(is[v]), dr);
      float32x4_t acc = vfmaq_f32(vld1q_f32(f + 4 * v), vld1q_f32(sb + 4 * v), tv);
      acc = vfmaq_f32(acc, vld1q_f32(sb + MP_QNR + 4 * v), xr);
      acc = vfmaq_f32(acc, vld1q_f32(sb - MP_QNR + 4 * v), za);
      acc = vfmaq_f32(acc, vld1q_f32(sb + 2 * MP_QNR + 4 * v), zb);
      vst1q_f32(f + 4 * v, acc);
    }
    return;
  }
  const float32x4_t xr = vdupq_n_f32(a->xs[o]), zr = vdupq_n_f32(a->z[o]);
  for (int v = 0; v < MP_QNR / 4; v++) {
    float32x4_t acc = vld1q_f32(f + 4 * v);
    acc = vfmaq_f32(acc, vcvtq_f32_s32(is[v]), vmulq_f32(vld1q_f32(sb + 4 * v), dr));
    acc = vfmaq_f32(acc, vld1q_f32(sb + MP_QNR + 4 * v), xr);
    acc = vfmaq_f32(acc, vld1q_f32(sb + 2 * MP_QNR + 4 * v), zr);
    vst1q_f32(f + 4 * v, acc);
  }
}

/* Shared frame: float accumulators of mr rows in an L1 tile, started from the bias; per block,
 * the block code (the macro's argument) fills the 8 integer sums `is` of row r; then the epilogue; then y. */
#define QKERNEL_FRAME(...)                                                                                             \
  const int64_t G = a->K / a->gsize;                                                                                   \
  const int qs = a->gsize / 4, b8 = a->bits == 8, mr = a->mr;                                                          \
  float acc[QMR][MP_QNR] __attribute__((aligned(16))), tt[QMR][MP_QNR] __attribute__((aligned(16)));                   \
  for (int r = 0; r < mr; r++)                                                                                         \
    for (int j = 0; j < MP_QNR; j++)                                                                                   \
      acc[r][j] = a->bias ? a->bias[j] : 0.0f;                                                                         \
  for (int64_t g = 0; g < G; g++) {                                                                                    \
    const uint8_t *wg = a->w + g * qs * 4 * MP_QNR;                                                                    \
    for (int r = 0; r < mr; r++) {                                                                                     \
      const int8_t *x = a->xq + r * a->ldx + g * a->gsize;                                                             \
      int32x4_t is[MP_QNR / 4];                                                                                        \
      __VA_ARGS__                                                                                                      \
      if (b8) {                                                                                                        \
        const int32x4_t c = vdupq_n_s32(128 * a->isx[r * a->ldg + g]);                                                 \
        for (int v = 0; v < MP_QNR / 4; v++)                                                                           \
          is[v] = vaddq_s32(is[v], c);                                                                                 \
      }                                                                                                                \
      epilogue(a, r, g, is, acc[r], tt[r]);                                                                            \
    }                                                                                                                  \
  }                                                                                                                    \
  for (int r = 0; r < mr; r++)                                                                                         \
    memcpy(a->y + r * a->ldy, acc[r], MP_QNR * sizeof(float));

/* 8 vectors of 16 code bytes (4 outputs x 4 inputs each) of one step, as signed bytes */
#define QLOAD_W(w)                                                                                                     \
  int8x16_t w0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w), flip)),                                                     \
            w1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 16), flip)),                                                \
            w2 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 32), flip)),                                                \
            w3 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 48), flip)),                                                \
            w4 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 64), flip)),                                                \
            w5 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 80), flip)),                                                \
            w6 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 96), flip)),                                                \
            w7 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(w + 112), flip));

/* ---------------------------------------------------------------- SDOT */
TDP static void qukr_dot(const mp_qukr_args *a) {
  // clang-format off
  QKERNEL_FRAME({
    const uint8x16_t flip = vdupq_n_u8(b8 ? 0x80 : 0);
    int32x4_t i0 = vdupq_n_s32(0), i1 = i0, i2 = i0, i3 = i0, i4 = i0, i5 = i0, i6 = i0, i7 = i0;
    const uint8_t *w = wg;
    for (int q = 0; q < qs; q++, w += 4 * MP_QNR) {
      QLOAD_W(w)
      const int8x16_t xb = bcast4(x + 4 * q);
      i0 = vdotq_s32(i0, w0, xb); i1 = vdotq_s32(i1, w1, xb); i2 = vdotq_s32(i2, w2, xb); i3 = vdotq_s32(i3, w3, xb);
      i4 = vdotq_s32(i4, w4, xb); i5 = vdotq_s32(i5, w5, xb); i6 = vdotq_s32(i6, w6, xb); i7 = vdotq_s32(i7, w7, xb);
    }
    is[0] = i0; is[1] = i1; is[2] = i2; is[3] = i3; is[4] = i4; is[5] = i5; is[6] = i6; is[7] = i7;
  })
  // clang-format on
}

/* ---------------------------------------------------------------- SMULL + SADALP
 * Products of signed bytes fit 16 bits (|q-128| <= 128, |xq| <= 127); SADALP adds their
 * pairs into 32-bit lanes [out0 k01, out0 k23, out1 k01, out1 k23] (low half of a code
 * vector) and likewise for the high half; ADDP of the two gives the 4 outputs' sums. */
#define QMAC(v)                                                                                                        \
  l[v] = vpadalq_s16(l[v], vmull_s8(vget_low_s8(w##v), xl));                                                           \
  h[v] = vpadalq_s16(h[v], vmull_high_s8(w##v, xb));
static void qukr_neon(const mp_qukr_args *a) {
  // clang-format off
  QKERNEL_FRAME({
    const uint8x16_t flip = vdupq_n_u8(b8 ? 0x80 : 0);
    int32x4_t l[8], h[8];
    for (int v = 0; v < 8; v++)
      l[v] = h[v] = vdupq_n_s32(0);
    const uint8_t *w = wg;
    for (int q = 0; q < qs; q++, w += 4 * MP_QNR) {
      QLOAD_W(w)
      const int8x16_t xb = bcast4(x + 4 * q);
      const int8x8_t xl = vget_low_s8(xb);
      QMAC(0) QMAC(1) QMAC(2) QMAC(3) QMAC(4) QMAC(5) QMAC(6) QMAC(7)
    }
    for (int v = 0; v < 8; v++)
      is[v] = vpaddq_s32(l[v], h[v]);
  })
  // clang-format on
}

static const mp_qimpl g_qneon = {.name = "neon", .mr = QMR, .quant_row = mp_qquant_row_scalar, .ukr = qukr_neon};
static const mp_qimpl g_qdot = {.name = "neon-dotprod", .mr = QMR, .quant_row = mp_qquant_row_scalar, .ukr = qukr_dot};

const mp_qimpl *mp_qimpl_neon(void) { return &g_qneon; }
/* compiled in; isa.c offers MP_ISA_NEON_DOTPROD only where HWCAP_ASIMDDP says the CPU has SDOT */
const mp_qimpl *mp_qimpl_neon_dot(void) { return &g_qdot; }
#else
const mp_qimpl *mp_qimpl_neon(void) { return NULL; }
const mp_qimpl *mp_qimpl_neon_dot(void) { return NULL; }
#endif
