/* MLX affine quantization, reproducing MLX's CPU kernel (mlx/backend/cpu/quantized.cpp,
 * `quantize<T, U>`) operation by operation in float32, so results are bit-identical.
 * Written from a reading of MLX's source; see docs/quantization.md for the algorithm. */
#include "quant/mlx_affine.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"

/* Every product below must be rounded before the following add, as MLX does (separate ops).
 * GCC in ISO C mode (-std=c11) never contracts to FMA; clang needs the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

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

int mp_mlx_affine_supported(int bits, int group_size) {
  int bits_ok = bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
  int gs_ok = group_size == 32 || group_size == 64 || group_size == 128;
  return bits_ok && gs_ok;
}

int mp_mlx_is_float(mp_dtype dt) { return dt == MP_F32 || dt == MP_F16 || dt == MP_BF16; }

mp_status mp_mlx_dtype_parse(const char *v, mp_dtype *out) {
  if (!strcmp(v, "float16") || !strcmp(v, "f16") || !strcmp(v, "F16") || !strcmp(v, "half"))
    *out = MP_F16;
  else if (!strcmp(v, "bfloat16") || !strcmp(v, "bf16") || !strcmp(v, "BF16"))
    *out = MP_BF16;
  else if (!strcmp(v, "float32") || !strcmp(v, "f32") || !strcmp(v, "F32") || !strcmp(v, "float"))
    *out = MP_F32;
  else
    return MP_ERR_INVALID_ARG;
  return MP_OK;
}

const char *mp_mlx_dtype_name(mp_dtype dt) {
  switch (dt) {
  case MP_F16: return "float16";
  case MP_BF16: return "bfloat16";
  case MP_F32: return "float32";
  default: return mp_dtype_name(dt);
  }
}

/* ---- casts */

static float f16_slow(uint16_t h) {
  if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) /* NaN: MLX (hardware cvt) quiets it */
    return u2f(((uint32_t)(h & 0x8000) << 16) | 0x7FC00000u | ((uint32_t)(h & 0x3FF) << 13));
  return mp_f16_to_f32(h);
}

/* float16 -> float32 for all 65536 halves, built once from f16_slow */
static float g_f16[65536];
static pthread_once_t g_f16_once = PTHREAD_ONCE_INIT;
static void f16_init(void) {
  for (uint32_t h = 0; h < 65536; h++)
    g_f16[h] = f16_slow((uint16_t)h);
}
static const float *f16_table(void) {
  pthread_once(&g_f16_once, f16_init);
  return g_f16;
}

float mp_mlx_f16_to_f32(uint16_t h) { return f16_table()[h]; }

uint16_t mp_mlx_f32_to_f16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)(((u >> 16) & 0x8000) | 0x7D00);
  return mp_f32_to_f16(f);
}

float mp_mlx_bf16_to_f32(uint16_t b) { return u2f((uint32_t)b << 16); }

uint16_t mp_mlx_f32_to_bf16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return 0x7FC0;
  return mp_f32_to_bf16(f);
}

float mp_mlx_load_f32(const void *src, mp_dtype sdt, size_t i) {
  switch (sdt) {
  case MP_F32: {
    float f;
    memcpy(&f, (const uint8_t *)src + 4 * i, 4);
    return f;
  }
  case MP_F16: {
    uint16_t h;
    memcpy(&h, (const uint8_t *)src + 2 * i, 2);
    return mp_mlx_f16_to_f32(h);
  }
  case MP_BF16: {
    uint16_t h;
    memcpy(&h, (const uint8_t *)src + 2 * i, 2);
    return mp_mlx_bf16_to_f32(h);
  }
  default: return NAN;
  }
}

static void store_f32(void *dst, mp_dtype ddt, size_t i, float f) {
  uint16_t h;
  switch (ddt) {
  case MP_F32: memcpy((uint8_t *)dst + 4 * i, &f, 4); break;
  case MP_F16:
    h = mp_mlx_f32_to_f16(f);
    memcpy((uint8_t *)dst + 2 * i, &h, 2);
    break;
  case MP_BF16:
    h = mp_mlx_f32_to_bf16(f);
    memcpy((uint8_t *)dst + 2 * i, &h, 2);
    break;
  default: break;
  }
}

/* value after casting to dt, as float32 (what MLX's kernel reads: (float)T(x)) */
static float round_to(float f, mp_dtype dt) {
  switch (dt) {
  case MP_F16: return mp_mlx_f16_to_f32(mp_mlx_f32_to_f16(f));
  case MP_BF16: return mp_mlx_bf16_to_f32(mp_mlx_f32_to_bf16(f));
  default: return f;
  }
}

/* n values of src starting at element `start`, as float32 */
static void load_block(const void *src, mp_dtype sdt, size_t start, size_t n, float *out) {
  const uint8_t *p = src;
  switch (sdt) {
  case MP_F32: memcpy(out, p + 4 * start, 4 * n); break;
  case MP_F16: {
    const float *t = f16_table();
    p += 2 * start;
    for (size_t i = 0; i < n; i++)
      out[i] = t[(uint16_t)(p[2 * i] | (p[2 * i + 1] << 8))];
    break;
  }
  case MP_BF16:
    p += 2 * start;
    for (size_t i = 0; i < n; i++)
      out[i] = u2f((uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16);
    break;
  default:
    for (size_t i = 0; i < n; i++)
      out[i] = NAN;
  }
}

/* v[i] = (float)dt(v[i]) */
static void round_block(float *v, size_t n, mp_dtype dt) {
  if (dt == MP_F16) {
    const float *t = f16_table();
    for (size_t i = 0; i < n; i++)
      v[i] = t[mp_mlx_f32_to_f16(v[i])];
  } else if (dt == MP_BF16) {
    for (size_t i = 0; i < n; i++)
      v[i] = mp_mlx_bf16_to_f32(mp_mlx_f32_to_bf16(v[i]));
  }
}

/* rint() in the default rounding mode (half to even), without a libm call: for |x| < 2^23 the
 * addition rounds x to an integer; larger magnitudes are integers already. */
static inline float rne(float x) {
  float a = fabsf(x);
  if (a < 0x1p23f) return copysignf((a + 0x1p23f) - 0x1p23f, x);
  return x;
}

mp_status mp_mlx_astype(const void *src, mp_dtype sdt, void *dst, mp_dtype ddt, size_t n) {
  if (!mp_mlx_is_float(sdt) || !mp_mlx_is_float(ddt))
    return mp_err(MP_ERR_UNSUPPORTED, "cast %s -> %s is not supported (float32/float16/bfloat16 only)",
                  mp_dtype_name(sdt), mp_dtype_name(ddt));
  if (sdt == ddt) {
    if (src != dst) memmove(dst, src, n * mp_dtype_size(sdt));
    return MP_OK;
  }
  for (size_t i = 0; i < n; i++)
    store_f32(dst, ddt, i, mp_mlx_load_f32(src, sdt, i));
  return MP_OK;
}

/* ---- sizes */

size_t mp_mlx_affine_packed_bytes(size_t numel, int bits) { return numel / 8 * (size_t)bits; }
size_t mp_mlx_affine_groups(size_t numel, int group_size) { return group_size > 0 ? numel / (size_t)group_size : 0; }

static const char *nonfinite_name(float f) { return isnan(f) ? "NaN" : (f > 0 ? "+inf" : "-inf"); }

/* ---- quantize */

mp_status mp_mlx_affine_quantize(const void *src, mp_dtype sdt, size_t numel, mp_dtype dt, int bits, int group_size,
                                 mp_qcompat compat, const char *name, uint8_t *wq, void *scales, void *biases) {
  return mp_mlx_affine_quantize_ex(src, sdt, numel, dt, bits, group_size, compat, name, wq, scales, biases, NULL);
}

mp_status mp_mlx_affine_quantize_ex(const void *src, mp_dtype sdt, size_t numel, mp_dtype dt, int bits, int group_size,
                                    mp_qcompat compat, const char *name, uint8_t *wq, void *scales, void *biases,
                                    mp_qerr *err) {
  if (!name) name = "tensor";
  if (!mp_mlx_affine_supported(bits, group_size))
    return mp_err(MP_ERR_INVALID_ARG,
                  "%s: unsupported quantization bits=%d group_size=%d (MLX affine supports bits 2, 3, 4, 5, 6, 8 "
                  "and group sizes 32, 64, 128)",
                  name, bits, group_size);
  if (!mp_mlx_is_float(sdt) || !mp_mlx_is_float(dt))
    return mp_err(MP_ERR_UNSUPPORTED, "%s: cannot quantize %s to %s (float32/float16/bfloat16 only)", name,
                  mp_dtype_name(sdt), mp_dtype_name(dt));
  if (numel % (size_t)group_size)
    return mp_err(MP_ERR_INVALID_ARG, "%s: %zu values are not a multiple of the group size %d", name, numel,
                  group_size);
  const float n_bins = (float)((1 << bits) - 1);
  const float eps = 1e-7f;
  const size_t gs = (size_t)group_size, n_groups = numel / gs;
  const size_t group_bytes = gs * (size_t)bits / 8;
  float lim_max = dt == MP_F16 ? 65504.0f : (dt == MP_BF16 ? mp_mlx_bf16_to_f32(0x7F7F) : FLT_MAX);
  float v[128], orig[128];

  for (size_t g = 0; g < n_groups; g++) {
    size_t base = g * gs;
    load_block(src, sdt, base, gs, orig);
    memcpy(v, orig, gs * sizeof *v);
    if (dt != sdt) round_block(v, gs, dt);
    for (size_t j = 0; j < gs; j++) {
      float x = v[j];
      if (!isfinite(x)) {
        float o0 = orig[j];
        if (isfinite(o0))
          return mp_err(MP_ERR_FORMAT,
                        "%s: value %g at flat index %zu overflows %s (becomes %s): the weight cannot be "
                        "quantized in that dtype; choose --dtype float32 or bfloat16, or skip this tensor",
                        name, (double)o0, base + j, dt == MP_F16 ? "float16" : "the output dtype", nonfinite_name(x));
        return mp_err(MP_ERR_FORMAT,
                      "%s: %s at flat index %zu: tensors with NaN or infinite values cannot be quantized "
                      "(fix the checkpoint or keep this tensor in float with --q-skip)",
                      name, nonfinite_name(x), base + j);
      }
    }
    float w_min, w_max;
    if (compat == MP_QCOMPAT_METAL) {
      w_min = lim_max;
      w_max = 0.0f;
      for (size_t j = 0; j < gs; j++) {
        w_min = fminf(w_min, v[j]);
        w_max = fmaxf(w_max, v[j]);
      }
    } else {
      /* std::max(a, b) is (a < b) ? b : a, std::min(a, b) is (b < a) ? b : a */
      w_min = INFINITY;
      w_max = -INFINITY;
      for (size_t j = 0; j < gs; j++) {
        if (w_max < v[j]) w_max = v[j];
        if (v[j] < w_min) w_min = v[j];
      }
    }
    int mask = fabsf(w_min) > fabsf(w_max);
    float scale = (w_max - w_min) / n_bins;
    if (scale < eps) scale = eps;
    if (!isfinite(scale))
      return mp_err(MP_ERR_FORMAT,
                    "%s: the values of group %zu (flat index %zu..%zu) span more than float32 can hold "
                    "(min %g, max %g): the scale would be infinite and MLX would dequantize to NaN; keep this "
                    "tensor in float with --q-skip",
                    name, g, base, base + gs - 1, (double)w_min, (double)w_max);
    scale = mask ? scale : -scale;
    float edge = mask ? w_min : w_max;
    float q0 = compat == MP_QCOMPAT_METAL ? roundf(edge / scale) : rne(edge / scale);
    float bias = 0.0f;
    if (q0 != 0.0f) {
      scale = edge / q0;
      bias = edge;
    }
    uint8_t *out = wq + g * group_bytes;
    uint64_t acc = 0;
    int nacc = 0;
    size_t o = 0;
    float st = round_to(scale, dt), bt = round_to(bias, dt); /* as stored, for the error */
    for (size_t j = 0; j < gs; j++) {
      float q = (v[j] - bias) / scale;
      q = compat == MP_QCOMPAT_METAL ? roundf(q) : rne(q);
      if (q < 0.0f) q = 0.0f; /* std::max(q, 0.0f) */
      if (n_bins < q) q = n_bins;
      if (err) { /* dequantized exactly like mx.dequantize, against the source value */
        float d = round_to(round_to(q * st, dt) + bt, dt);
        double e = fabs((double)orig[j] - (double)d);
        if (!(e <= err->max_abs)) err->max_abs = e;
        err->sum_sq_err += e * e;
        err->sum_sq_ref += (double)orig[j] * (double)orig[j];
      }
      acc |= (uint64_t)(unsigned)q << nacc;
      nacc += bits;
      while (nacc >= 8) {
        out[o++] = (uint8_t)acc;
        acc >>= 8;
        nacc -= 8;
      }
    }
    store_f32(scales, dt, g, scale);
    store_f32(biases, dt, g, bias);
  }
  if (err) err->n += numel;
  return MP_OK;
}

/* ---- dequantize */

unsigned mp_mlx_affine_q_at(const uint8_t *wq, size_t i, int bits) {
  size_t bit = i * (size_t)bits;
  size_t byte = bit >> 3;
  unsigned shift = (unsigned)(bit & 7);
  unsigned v = wq[byte];
  if (shift + (unsigned)bits > 8) v |= (unsigned)wq[byte + 1] << 8;
  return (v >> shift) & ((1u << bits) - 1);
}

mp_status mp_mlx_affine_dequantize(const uint8_t *wq, const void *scales, const void *biases, mp_dtype dt, size_t numel,
                                   int bits, int group_size, void *out) {
  if (!mp_mlx_affine_supported(bits, group_size))
    return mp_err(MP_ERR_INVALID_ARG, "unsupported quantization bits=%d group_size=%d", bits, group_size);
  if (!mp_mlx_is_float(dt)) return mp_err(MP_ERR_UNSUPPORTED, "cannot dequantize to %s", mp_dtype_name(dt));
  if (numel % (size_t)group_size)
    return mp_err(MP_ERR_INVALID_ARG, "%zu values are not a multiple of the group size %d", numel, group_size);
  const size_t gs = (size_t)group_size;
  for (size_t g = 0; g < numel / gs; g++) {
    float s = mp_mlx_load_f32(scales, dt, g), b = mp_mlx_load_f32(biases, dt, g);
    for (size_t j = 0; j < gs; j++) {
      size_t i = g * gs + j;
      float p = round_to((float)mp_mlx_affine_q_at(wq, i, bits) * s, dt);
      store_f32(out, dt, i, p + b);
    }
  }
  return MP_OK;
}

/* ---- error statistics */

void mp_qerr_init(mp_qerr *e) { memset(e, 0, sizeof *e); }

void mp_qerr_add(mp_qerr *e, const void *a, mp_dtype adt, const void *b, mp_dtype bdt, size_t n) {
  float xa[256], xb[256];
  for (size_t off = 0; off < n; off += 256) {
    size_t m = n - off < 256 ? n - off : 256;
    load_block(a, adt, off, m, xa);
    load_block(b, bdt, off, m, xb);
    for (size_t i = 0; i < m; i++) {
      double x = xa[i], d = fabs(x - (double)xb[i]);
      if (!(d <= e->max_abs)) e->max_abs = d; /* NaN propagates */
      e->sum_sq_err += d * d;
      e->sum_sq_ref += x * x;
    }
  }
  e->n += n;
}

void mp_qerr_finish(mp_qerr *e) {
  if (!e->n) return;
  e->rms = sqrt(e->sum_sq_err / (double)e->n);
  double ref_rms = sqrt(e->sum_sq_ref / (double)e->n);
  e->rel_rms = ref_rms > 0 ? e->rms / ref_rms : (e->rms > 0 ? INFINITY : 0.0);
  if (e->sum_sq_err == 0)
    e->snr_db = 999.0;
  else if (e->sum_sq_ref == 0)
    e->snr_db = -999.0;
  else
    e->snr_db = 10.0 * log10(e->sum_sq_ref / e->sum_sq_err);
}
