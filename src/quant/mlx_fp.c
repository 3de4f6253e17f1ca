/* MLX floating-point quantization modes (mxfp4, nvfp4, mxfp8), reproducing the operation graph
 * MLX's CPU backend evaluates for mx.quantize / mx.dequantize with mode != "affine" (mlx/ops.cpp,
 * fp_quantize / fp_dequantize: on CPU these run as ordinary ops, each rounded to the weight's
 * dtype). Written from a reading of MLX's source; see docs/quantization.md. */
#include "quant/mlx_fp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

const char *mp_qmode_name(mp_qmode m) {
  switch (m) {
  case MP_QMODE_MXFP4: return "mxfp4";
  case MP_QMODE_NVFP4: return "nvfp4";
  case MP_QMODE_MXFP8: return "mxfp8";
  default: return "affine";
  }
}

mp_status mp_qmode_parse(const char *s, mp_qmode *out) {
  if (!s) return MP_ERR_INVALID_ARG;
  if (!strcmp(s, "affine"))
    *out = MP_QMODE_AFFINE;
  else if (!strcmp(s, "mxfp4"))
    *out = MP_QMODE_MXFP4;
  else if (!strcmp(s, "nvfp4"))
    *out = MP_QMODE_NVFP4;
  else if (!strcmp(s, "mxfp8"))
    *out = MP_QMODE_MXFP8;
  else
    return MP_ERR_INVALID_ARG;
  return MP_OK;
}

int mp_qmode_default_bits(mp_qmode m) { return m == MP_QMODE_MXFP8 ? 8 : 4; }
int mp_qmode_default_group(mp_qmode m) { return m == MP_QMODE_AFFINE ? 64 : (m == MP_QMODE_NVFP4 ? 16 : 32); }

int mp_mlx_quant_supported(mp_qmode m, int bits, int group_size) {
  if (m == MP_QMODE_AFFINE) return mp_mlx_affine_supported(bits, group_size);
  return bits == mp_qmode_default_bits(m) && group_size == mp_qmode_default_group(m);
}

void mp_qmode_allowed(mp_qmode m, char *buf, size_t n) {
  if (m == MP_QMODE_AFFINE)
    snprintf(buf, n, "MLX's affine mode takes bits 2, 3, 4, 5, 6, 8 and group sizes 32, 64, 128");
  else
    snprintf(buf, n, "MLX's %s mode takes exactly %d bits and group size %d", mp_qmode_name(m),
             mp_qmode_default_bits(m), mp_qmode_default_group(m));
}

/* ---- fp8 e4m3 */

uint8_t mp_fp8_e4m3_from_f32(float x) {
  uint32_t u = bits_of(x), sign = (u >> 24) & 0x80u, a = u & 0x7FFFFFFFu;
  uint8_t r;
  if (a > 0x43E00000u) { /* |x| > 448, inf, NaN: the largest finite code (MLX saturates) */
    r = 0x7E;
  } else if (a < 0x3C800000u) { /* below 2^-6: subnormal codes in steps of 2^-9, ties to even,
                                   rounded by one float addition at that granularity */
    float t = from_bits(a) + 16384.0f;
    r = (uint8_t)(bits_of(t) - bits_of(16384.0f));
  } else { /* normal: rebias the exponent (127 -> 7), keep 3 mantissa bits, ties to even */
    uint32_t odd = (a >> 20) & 1u;
    uint32_t v = a - (120u << 23) + 0x7FFFFu + odd;
    r = (uint8_t)(v >> 20);
  }
  return (uint8_t)(r | sign);
}

float mp_fp8_e4m3_to_f32(uint8_t b) {
  int e = (b >> 3) & 15, mnt = b & 7;
  float v = e == 0 ? ldexpf((float)mnt, -9) : ldexpf((float)(8 + mnt), e - 10);
  return (b & 0x80) ? -v : v;
}

/* ---- helpers */

static const float k_fp4[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* (float)dt(x): the float32 result of an MLX op on dtype dt */
static float rt(float x, mp_dtype dt) {
  if (dt == MP_F16) return mp_mlx_f16_to_f32(mp_mlx_f32_to_f16(x));
  if (dt == MP_BF16) return mp_mlx_bf16_to_f32(mp_mlx_f32_to_bf16(x));
  return x;
}

static void store(void *dst, mp_dtype dt, size_t i, float v) {
  if (dt == MP_F16)
    ((uint16_t *)dst)[i] = mp_mlx_f32_to_f16(v);
  else if (dt == MP_BF16)
    ((uint16_t *)dst)[i] = mp_mlx_f32_to_bf16(v);
  else
    ((float *)dst)[i] = v;
}

static int mode_bits(mp_qmode m) { return mp_qmode_default_bits(m); }

size_t mp_mlx_fp_packed_bytes(size_t numel, mp_qmode m) { return numel * (size_t)mode_bits(m) / 8; }
size_t mp_mlx_fp_groups(size_t numel, mp_qmode m) { return numel / (size_t)mp_qmode_default_group(m); }

static unsigned code_at(const uint8_t *wq, size_t i, int bits) {
  if (bits == 8) return wq[i];
  return (wq[i / 2] >> ((i & 1) * 4)) & 15u;
}

/* the code's value (fp4 table or fp8) as float32 */
static float code_value(unsigned c, mp_qmode m) {
  return m == MP_QMODE_MXFP8 ? mp_fp8_e4m3_to_f32((uint8_t)c) : k_fp4[c];
}

/* the decoded scale in float32 (e8m0: 2^(s-127), computed like power(2.0, s-127)) */
static float scale_value(uint8_t s, mp_qmode m) {
  if (m == MP_QMODE_NVFP4) return mp_fp8_e4m3_to_f32(s);
  return ldexpf(1.0f, (int)s - 127);
}

float mp_mlx_fp_value(const uint8_t *wq, const uint8_t *scales, mp_qmode m, size_t i) {
  size_t g = (size_t)mp_qmode_default_group(m);
  return code_value(code_at(wq, i, mode_bits(m)), m) * scale_value(scales[i / g], m);
}

/* ---- quantize */

mp_status mp_mlx_fp_quantize(const void *src, mp_dtype sdt, size_t numel, mp_dtype dt, mp_qmode m, const char *name,
                             uint8_t *wq, uint8_t *scales, mp_qerr *err) {
  if (!name) name = "tensor";
  if (m == MP_QMODE_AFFINE) return mp_err(MP_ERR_INVALID_ARG, "%s: mp_mlx_fp_quantize called for affine", name);
  if (!mp_mlx_is_float(sdt) || !mp_mlx_is_float(dt))
    return mp_err(MP_ERR_UNSUPPORTED, "%s: cannot quantize %s to %s (float32/float16/bfloat16 only)", name,
                  mp_dtype_name(sdt), mp_dtype_name(dt));
  const size_t gs = (size_t)mp_qmode_default_group(m);
  const int bits = mode_bits(m);
  if (numel % gs)
    return mp_err(MP_ERR_INVALID_ARG, "%s: %zu values are not a multiple of the %s group size %zu", name, numel,
                  mp_qmode_name(m), gs);
  const float maxval = bits == 4 ? 6.0f : 448.0f;
  float v[32], orig[32], x[32];
  memset(wq, 0, mp_mlx_fp_packed_bytes(numel, m));
  for (size_t g = 0; g < numel / gs; g++) {
    size_t base = g * gs;
    float amax = 0.0f;
    for (size_t j = 0; j < gs; j++) {
      orig[j] = mp_mlx_load_f32(src, sdt, base + j);
      v[j] = rt(orig[j], dt);
      if (!isfinite(v[j])) {
        if (isfinite(orig[j]))
          return mp_err(MP_ERR_FORMAT,
                        "%s: value %g at flat index %zu overflows %s: choose --dtype float32 or bfloat16, or keep "
                        "this tensor in float (--q-override '<layer>=none')",
                        name, (double)orig[j], base + j, mp_mlx_dtype_name(dt));
        return mp_err(MP_ERR_FORMAT,
                      "%s: %s at flat index %zu: tensors with NaN or infinite values cannot be quantized (MLX "
                      "would write a saturated or meaningless group); fix the checkpoint or keep this tensor in "
                      "float (--q-override '<layer>=none')",
                      name, isnan(v[j]) ? "NaN" : (v[j] > 0 ? "+inf" : "-inf"), base + j);
      }
      float a = fabsf(v[j]);
      if (amax < a) amax = a;
    }
    /* scales = max|w| / maxval, in dt */
    float s = rt(amax / rt(maxval, dt), dt);
    uint8_t sc;
    if (m == MP_QMODE_NVFP4) {
      /* to e4m3 (the value is promoted to float32 by the x1.0f encode factor), then w / decoded */
      sc = mp_fp8_e4m3_from_f32(s);
      float sd = rt(mp_fp8_e4m3_to_f32(sc), dt);
      for (size_t j = 0; j < gs; j++)
        x[j] = rt(v[j] / sd, dt); /* an all-zero group gives 0/0 = NaN: code 0, as in MLX */
    } else {
      /* e8m0: exponent round(log2(s)) in dt, plus one when 2^e < s (0 for s == 0); w / 2^e in dt */
      float e = 0.0f;
      if (s != 0.0f) {
        int32_t n = (int32_t)rintf(rt(log2f(s), dt));
        if (ldexpf(1.0f, n) < s) n++; /* rounded up so the group maximum stays representable */
        e = (float)n;
      }
      float p = rt(ldexpf(1.0f, (int)e), dt);
      for (size_t j = 0; j < gs; j++)
        x[j] = rt(v[j] / p, dt);
      float biased = rt(e + 127.0f, dt);
      sc = (uint8_t)(int32_t)biased; /* float -> uint8 as the CPU converts it: wraps below 0 */
    }
    scales[g] = sc;
    for (size_t j = 0; j < gs; j++) {
      unsigned c;
      if (bits == 8) {
        c = mp_fp8_e4m3_from_f32(x[j]);
        wq[base + j] = (uint8_t)c;
      } else { /* argmin |x - table| in dt, first minimum wins (NaN: index 0) */
        float best = fabsf(rt(x[j] - rt(k_fp4[0], dt), dt));
        c = 0;
        for (unsigned k = 1; k < 16; k++) {
          float d = fabsf(rt(x[j] - rt(k_fp4[k], dt), dt));
          if (d < best) best = d, c = k;
        }
        wq[(base + j) / 2] |= (uint8_t)(c << (((base + j) & 1) * 4));
      }
      if (err) {
        double d = fabs((double)orig[j] - (double)(code_value(c, m) * scale_value(sc, m)));
        if (!(d <= err->max_abs)) err->max_abs = d;
        err->sum_sq_err += d * d;
        err->sum_sq_ref += (double)orig[j] * orig[j];
      }
    }
    if (err) err->n += gs;
  }
  return MP_OK;
}

/* ---- dequantize */

mp_status mp_mlx_fp_dequantize(const uint8_t *wq, const uint8_t *scales, mp_qmode m, mp_dtype dt, size_t numel,
                               void *out) {
  if (m == MP_QMODE_AFFINE || !mp_mlx_is_float(dt))
    return mp_err(MP_ERR_INVALID_ARG, "fp dequantize: mode %s, dtype %s", mp_qmode_name(m), mp_dtype_name(dt));
  const size_t gs = (size_t)mp_qmode_default_group(m);
  const int bits = mode_bits(m);
  if (numel % gs) return mp_err(MP_ERR_INVALID_ARG, "fp dequantize: %zu values, group %zu", numel, gs);
  for (size_t g = 0; g < numel / gs; g++) {
    float sv;
    if (m == MP_QMODE_NVFP4)
      sv = rt(mp_fp8_e4m3_to_f32(scales[g]), dt);
    else /* power(2, dt(s) - 127) in dt */
      sv = rt(ldexpf(1.0f, (int)rt((float)scales[g] - 127.0f, dt)), dt);
    for (size_t j = 0; j < gs; j++) {
      size_t i = g * gs + j;
      float cv = rt(code_value(code_at(wq, i, bits), m), dt);
      store(out, dt, i, rt(cv * sv, dt));
    }
  }
  return MP_OK;
}
