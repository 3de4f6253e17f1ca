/* MLX affine quantization core: hand-derived cases, packing layout, error bounds, rejection of
 * non-finite values. Bit-exactness against real MLX is checked in tests/py/test_quant_mlx.py. */
#include <float.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "quant/mlx_affine.h"
#include "testlib.h"

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

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 16);
}
static float frand(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; }

static void test_casts(void) {
  /* f16 -> f32 -> f16 is the identity for every non-NaN half */
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;
    if (mp_mlx_f32_to_f16(mp_mlx_f16_to_f32((uint16_t)h)) != h) bad++;
  }
  CHECK(bad == 0);
  /* MLX's NaN conventions (see the header) */
  CHECK(mp_mlx_f32_to_f16(u2f(0x7F800001u)) == 0x7D00);
  CHECK(mp_mlx_f32_to_f16(u2f(0xFFC00000u)) == 0xFD00);
  CHECK(mp_mlx_f32_to_bf16(u2f(0xFFC12345u)) == 0x7FC0);
  CHECK(f2u(mp_mlx_f16_to_f32(0x7C01)) == 0x7FC02000u);
  CHECK(f2u(mp_mlx_bf16_to_f32(0x7F81)) == 0x7F810000u);
  /* ties to even */
  CHECK(mp_mlx_f32_to_bf16(u2f(0x3F808000u)) == 0x3F80); /* halfway, even stays */
  CHECK(mp_mlx_f32_to_bf16(u2f(0x3F818000u)) == 0x3F82); /* halfway, odd rounds up */
  CHECK(mp_mlx_f32_to_f16(65520.0f) == 0x7C00);          /* rounds to inf */
  CHECK(mp_mlx_f32_to_f16(65519.99f) == 0x7BFF);
  CHECK(mp_mlx_f32_to_f16(u2f(0x33000000u)) == 0x0000); /* 2^-25: tie to even zero */
  CHECK(mp_mlx_f32_to_f16(u2f(0x33000001u)) == 0x0001);
  /* astype through buffers, f16 <-> bf16 via f32 */
  uint16_t h[3] = {0x3C00, 0xC000, 0x0001}, b[3], h2[3];
  CHECK_OK(mp_mlx_astype(h, MP_F16, b, MP_BF16, 3));
  CHECK(b[0] == 0x3F80 && b[1] == 0xC000 && b[2] == 0x3380);
  CHECK_OK(mp_mlx_astype(b, MP_BF16, h2, MP_F16, 3));
  CHECK(memcmp(h, h2, sizeof h) == 0);
  int64_t i64 = 0;
  CHECK(mp_mlx_astype(&i64, MP_I64, b, MP_F16, 1) == MP_ERR_UNSUPPORTED);
}

/* 0..31 with 4 bits: max anchors (|min| = 0 is not > |max|), so the scale is negative,
 * scale = 31 / rint(31 / -(31/15)) = 31 / -15, bias = 31, q_j = 15 - j/2 rounded half-even. */
static void test_hand_case(void) {
  float w[32];
  for (int j = 0; j < 32; j++)
    w[j] = (float)j;
  uint8_t q[16];
  float s, b;
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 4, 32, MP_QCOMPAT_CPU, "w", q, &s, &b));
  CHECK(s == 31.0f / -15.0f);
  CHECK(b == 31.0f);
  for (int j = 0; j < 32; j++) {
    float expect = rintf(((float)j - 31.0f) / (31.0f / -15.0f));
    CHECKF(mp_mlx_affine_q_at(q, (size_t)j, 4) == (unsigned)expect, "j=%d q=%u expect=%g", j,
           mp_mlx_affine_q_at(q, (size_t)j, 4), (double)expect);
  }
  CHECK(mp_mlx_affine_q_at(q, 0, 4) == 15 && mp_mlx_affine_q_at(q, 31, 4) == 0);
  /* nibble order: value 0 in the low nibble of byte 0 */
  CHECK((q[0] & 0xF) == 15);

  /* all-negative group: |min| > |max| -> min anchors, positive scale, bias = min */
  for (int j = 0; j < 32; j++)
    w[j] = -1.0f - (float)j;
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 4, 32, MP_QCOMPAT_CPU, "w", q, &s, &b));
  CHECK(b == -32.0f && s > 0);
  CHECK(mp_mlx_affine_q_at(q, 31, 4) == 0 && mp_mlx_affine_q_at(q, 0, 4) == 15);

  /* constant zero group: q0 == 0 -> bias 0, scale = -eps */
  memset(w, 0, sizeof w);
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 8, 32, MP_QCOMPAT_CPU, "w", (uint8_t[32]){0}, &s, &b));
  CHECK(s == -1e-7f && b == 0.0f && !signbit(b));

  /* constant group c: edge = c, scale = c / q0, every q = 0 (at the anchor) */
  for (int j = 0; j < 32; j++)
    w[j] = 0.75f;
  uint8_t q8[32];
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 8, 32, MP_QCOMPAT_CPU, "w", q8, &s, &b));
  CHECK(b == 0.75f);
  for (int j = 0; j < 32; j++)
    CHECK(q8[j] == 0);
}

/* Packing: write a known pattern through the quantizer (values chosen so q_j = j mod 2^bits)
 * and check the bit stream byte by byte against an independent bit-by-bit packer. */
static void test_packing(void) {
  static const int bitss[] = {2, 3, 4, 5, 6, 8};
  for (size_t bi = 0; bi < 6; bi++) {
    int bits = bitss[bi];
    unsigned nb = (1u << bits) - 1;
    float w[64];
    /* bias anchored at min = 0 needs |min| > |max|: use negative values -(nb - q) so the
     * group is all-negative with min = -nb (q = 0 there) and max <= 0 */
    for (int j = 0; j < 64; j++)
      w[j] = -(float)nb + (float)((unsigned)j % (nb + 1));
    w[0] = -(float)nb;
    w[1] = 0.0f; /* max = 0 -> range = nb -> scale = 1, bias = -nb */
    uint8_t q[64], ref[64];
    float s, b;
    CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F32, bits, 64, MP_QCOMPAT_CPU, "w", q, &s, &b));
    CHECK(s == 1.0f && b == -(float)nb);
    memset(ref, 0, sizeof ref);
    for (int j = 0; j < 64; j++) {
      unsigned v = (unsigned)(w[j] + (float)nb);
      for (int k = 0; k < bits; k++) {
        size_t bit = (size_t)j * (size_t)bits + (size_t)k;
        if (v >> k & 1) ref[bit / 8] |= (uint8_t)(1u << (bit % 8));
      }
    }
    CHECKF(memcmp(q, ref, (size_t)(64 * bits / 8)) == 0, "bits=%d", bits);
    CHECK(mp_mlx_affine_packed_bytes(64, bits) == (size_t)(64 * bits / 8));
  }
}

static void test_roundtrip_bound(void) {
  static const int bitss[] = {2, 3, 4, 5, 6, 8};
  static const int gss[] = {32, 64, 128};
  static const mp_dtype dts[] = {MP_F32, MP_F16, MP_BF16};
  enum { ROWS = 6, K = 256, N = ROWS * K };
  float *w = malloc(N * 4);
  for (int i = 0; i < N; i++)
    w[i] = frand() * (i < K ? 1e-3f : (i < 2 * K ? 10.0f : 0.1f));
  for (int i = 3 * K; i < 4 * K; i++)
    w[i] = -fabsf(w[i]); /* an all-negative row */
  uint8_t *q = malloc(N);
  uint8_t *s = malloc(N), *b = malloc(N), *d = malloc(N * 4), *wc = malloc(N * 4);
  for (size_t di = 0; di < 3; di++)
    for (size_t bi = 0; bi < 6; bi++)
      for (size_t gi = 0; gi < 3; gi++) {
        mp_dtype dt = dts[di];
        int bits = bitss[bi], gs = gss[gi];
        CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, N, dt, bits, gs, MP_QCOMPAT_CPU, "w", q, s, b));
        CHECK_OK(mp_mlx_affine_dequantize(q, s, b, dt, N, bits, gs, d));
        CHECK_OK(mp_mlx_astype(w, MP_F32, wc, dt, N));
        int bad = 0, near = 0;
        for (int g = 0; g < N / gs; g++) {
          float sc = fabsf(mp_mlx_load_f32(s, dt, (size_t)g)), bs = fabsf(mp_mlx_load_f32(b, dt, (size_t)g));
          float u = dt == MP_F32 ? 0x1p-23f : (dt == MP_F16 ? 0x1p-10f : 0x1p-7f);
          for (int j = 0; j < gs; j++) {
            size_t i = (size_t)(g * gs + j);
            float x = mp_mlx_load_f32(wc, dt, i), y = mp_mlx_load_f32(d, dt, i);
            /* Half a step, plus the rounding of scale, bias and result to the dtype. MLX anchors
             * the grid at the group's larger-magnitude end (scale = edge / rint(edge / s0)), so
             * the other end may fall up to ~1.5 steps short and clip: allow 2.5 steps there,
             * but require most values (85% at 2-3 bits, 96% above) within half a step. */
            float r = ((float)((1 << bits) - 1) * sc + fabsf(x) + bs) * u + 1e-7f;
            float e = fabsf(x - y);
            if (!(e <= sc * 0.5f * 1.01f + r)) near++;
            if (!(e <= sc * 2.5f + r)) bad++;
          }
        }
        CHECKF(bad == 0, "dt=%s bits=%d gs=%d: %d values beyond 2.5 steps", mp_dtype_name(dt), bits, gs, bad);
        CHECKF(near <= N * (bits <= 3 ? 15 : 4) / 100, "dt=%s bits=%d gs=%d: %d values beyond half a step",
               mp_dtype_name(dt), bits, gs, near);
        mp_qerr e;
        mp_qerr_init(&e);
        mp_qerr_add(&e, w, MP_F32, d, dt, N);
        mp_qerr_finish(&e);
        CHECK(e.rel_rms > 0 && e.rel_rms < (bits >= 4 ? 0.1 : 0.6));
      }
  free(w), free(q), free(s), free(b), free(d), free(wc);
}

static void test_rejects(void) {
  float w[64];
  for (int j = 0; j < 64; j++)
    w[j] = (float)j * 0.01f;
  uint8_t q[64];
  float s[2], b[2];
  w[37] = INFINITY;
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F32, 4, 32, MP_QCOMPAT_CPU, "enc.dense.weight", q, s, b) ==
        MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "enc.dense.weight") && strstr(mp_last_error(), "+inf") &&
        strstr(mp_last_error(), "37"));
  w[37] = NAN;
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F32, 4, 32, MP_QCOMPAT_CPU, "x.weight", q, s, b) == MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "NaN") != NULL);
  /* finite in f32 but overflows float16 */
  w[37] = 1e6f;
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F16, 4, 32, MP_QCOMPAT_CPU, "y.weight", q, s, b) == MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "float16") != NULL);
  /* range overflowing float32 */
  w[37] = FLT_MAX;
  w[38] = -FLT_MAX;
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F32, 4, 32, MP_QCOMPAT_CPU, "z.weight", q, s, b) == MP_ERR_FORMAT);
  w[37] = w[38] = 0;
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F32, 7, 32, MP_QCOMPAT_CPU, "w", q, s, b) == MP_ERR_INVALID_ARG);
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 64, MP_F32, 4, 16, MP_QCOMPAT_CPU, "w", q, s, b) == MP_ERR_INVALID_ARG);
  CHECK(mp_mlx_affine_quantize(w, MP_F32, 48, MP_F32, 4, 32, MP_QCOMPAT_CPU, "w", q, s, b) == MP_ERR_INVALID_ARG);
}

/* The Metal kernel rounds half away from zero and starts the group max at 0: on an all-negative
 * group and on exact ties the two differ. */
static void test_metal_compat(void) {
  float w[32];
  for (int j = 0; j < 32; j++)
    w[j] = -2.0f - 0.25f * (float)j; /* all negative, max = -2 */
  uint8_t qc[16], qm[16];
  float sc, bc, sm, bm;
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 4, 32, MP_QCOMPAT_CPU, "w", qc, &sc, &bc));
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 4, 32, MP_QCOMPAT_METAL, "w", qm, &sm, &bm));
  CHECK(bc == bm); /* both anchor at the min */
  CHECK(sm > sc);  /* Metal's range reaches up to 0 */
  /* tie: rint(2.5) = 2, round(2.5) = 3 */
  for (int j = 0; j < 32; j++)
    w[j] = (j == 0) ? 0.0f : (j == 1 ? 15.0f : 2.5f);
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 4, 32, MP_QCOMPAT_CPU, "w", qc, &sc, &bc));
  CHECK_OK(mp_mlx_affine_quantize(w, MP_F32, 32, MP_F32, 4, 32, MP_QCOMPAT_METAL, "w", qm, &sm, &bm));
  CHECK(sc == -1.0f && bc == 15.0f && sm == sc && bm == bc);
  CHECK(mp_mlx_affine_q_at(qc, 2, 4) == 12 && mp_mlx_affine_q_at(qm, 2, 4) == 13); /* 12.5 */
}

int main(void) {
  RUN(test_casts);
  RUN(test_hand_case);
  RUN(test_packing);
  RUN(test_roundtrip_bound);
  RUN(test_rejects);
  RUN(test_metal_compat);
  return mp_test_done();
}
