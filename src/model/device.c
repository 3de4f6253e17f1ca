/* Device selection ("cpu", "cuda[:N]") and the model side of the device backends: opening the
 * backend for a model, the upload-once cache of its weights (dequantized MLX matrices included),
 * and the messages for a build without CUDA. The per-operation dispatch is in layers.c. */
#include "model/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model_internal.h"

mp_status mp_device_parse(const char *s, mp_device_spec *out) {
  out->kind = MP_DEVICE_CPU, out->index = 0;
  if (!s || !*s || !strcmp(s, "cpu")) return MP_OK;
  if (!strncmp(s, "cuda", 4) && (s[4] == 0 || s[4] == ':')) {
    out->kind = MP_DEVICE_CUDA;
    if (s[4] == ':') {
      char *end;
      long v = strtol(s + 5, &end, 10);
      if (end == s + 5 || *end || v < 0 || v > 1023)
        return mp_err(MP_ERR_INVALID_ARG, "device '%s': the CUDA device number must be 0..1023 (cuda:N)", s);
      out->index = (int)v;
    }
    return MP_OK;
  }
  return mp_err(MP_ERR_INVALID_ARG, "device '%s': use cpu, cuda or cuda:N", s);
}

mp_status mp_device_dtype_parse(const char *s, mp_dtype *out) {
  if (s && (!strcmp(s, "float16") || !strcmp(s, "fp16")))
    *out = MP_F16;
  else if (s && (!strcmp(s, "bfloat16") || !strcmp(s, "bf16")))
    *out = MP_BF16;
  else if (s && (!strcmp(s, "float32") || !strcmp(s, "fp32")))
    *out = MP_F32;
  else
    return mp_err(MP_ERR_INVALID_ARG, "device dtype '%s': use float16, bfloat16 or float32", s ? s : "");
  return MP_OK;
}

int mp_device_cuda_built(void) {
#ifdef MP_HAVE_CUDA
  return 1;
#else
  return 0;
#endif
}

mp_status mp_device_info(int index, int *count, char *name, size_t n, size_t *total_b) {
  *count = 0;
  if (name && n) name[0] = 0;
  if (total_b) *total_b = 0;
#ifdef MP_HAVE_CUDA
  return mp_cuda_device_info(index, count, name, n, total_b);
#else
  (void)index;
  return mp_err(MP_ERR_UNSUPPORTED, "this mlxport was built without CUDA (cmake -DMP_CUDA=ON)");
#endif
}

mp_status mp_device_memory(int index, size_t *free_b, size_t *total_b) {
  if (free_b) *free_b = 0;
  if (total_b) *total_b = 0;
#ifdef MP_HAVE_CUDA
  return mp_cuda_memory(index, free_b, total_b);
#else
  (void)index;
  return mp_err(MP_ERR_UNSUPPORTED, "GPU memory: this mlxport was built without CUDA (cmake -DMP_CUDA=ON)");
#endif
}

/* ---------------------------------------------------------------- upload-once cache */

struct mp_dev_cache {
  const void **keys;
  int64_t *ns;
  int *kinds;
  const void **vals;
  size_t cap, used;
};

static size_t slot_of(const void *k, int64_t n, int kind, size_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ull ^ (uint64_t)n * 0xC2B2AE3D27D4EB4Full ^ (uint64_t)kind;
  return (size_t)(h >> 17) & (cap - 1);
}

static const void *cache_get(mp_dev_cache *c, const void *k, int64_t n, int kind) {
  if (!c || !c->cap) return NULL;
  for (size_t i = slot_of(k, n, kind, c->cap);; i = (i + 1) & (c->cap - 1)) {
    if (!c->keys[i]) return NULL;
    if (c->keys[i] == k && c->ns[i] == n && c->kinds[i] == kind) return c->vals[i];
  }
}

static mp_status cache_put(mp_dev_cache *c, const void *k, int64_t n, int kind, const void *v) {
  if (2 * (c->used + 1) > c->cap) {
    mp_dev_cache g = {0};
    g.cap = c->cap ? 2 * c->cap : 256;
    g.keys = calloc(g.cap, sizeof *g.keys), g.ns = calloc(g.cap, sizeof *g.ns);
    g.kinds = calloc(g.cap, sizeof *g.kinds), g.vals = calloc(g.cap, sizeof *g.vals);
    if (!g.keys || !g.ns || !g.kinds || !g.vals) {
      free(g.keys), free(g.ns), free(g.kinds), free(g.vals);
      return mp_err(MP_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->cap; i++)
      if (c->keys[i]) {
        size_t j = slot_of(c->keys[i], c->ns[i], c->kinds[i], g.cap);
        while (g.keys[j])
          j = (j + 1) & (g.cap - 1);
        g.keys[j] = c->keys[i], g.ns[j] = c->ns[i], g.kinds[j] = c->kinds[i], g.vals[j] = c->vals[i];
      }
    g.used = c->used;
    free(c->keys), free(c->ns), free(c->kinds), free(c->vals);
    *c = g;
  }
  size_t j = slot_of(k, n, kind, c->cap);
  while (c->keys[j])
    j = (j + 1) & (c->cap - 1);
  c->keys[j] = k, c->ns[j] = n, c->kinds[j] = kind, c->vals[j] = v;
  c->used++;
  return MP_OK;
}

/* ---------------------------------------------------------------- open / close */

mp_status mp_model_device_open(mp_model *m, const mp_device_spec *spec, mp_dtype dt) {
  m->device = *spec;
  if (spec->kind == MP_DEVICE_CPU) return MP_OK;
#ifndef MP_HAVE_CUDA
  (void)dt;
  return mp_err(MP_ERR_UNSUPPORTED, "--device cuda: this mlxport was built without CUDA (cmake -DMP_CUDA=ON)");
#else
  if (!m->ops->cuda) /* every family runs on CUDA today; a new one is refused until it does */
    return mp_err(MP_ERR_UNSUPPORTED, "%s: model family %s is not supported on CUDA yet; use --device cpu", m->path,
                  mp_family_name(m->cfg.family));
  /* --device-dtype (mp_model_options.device_dtype) wins; MP_CUDA_DTYPE is the older, provisional
   * spelling, read only when no dtype was asked for */
  const char *env = getenv("MP_CUDA_DTYPE");
  if (!dt && env && *env && mp_device_dtype_parse(env, &dt))
    return mp_err(MP_ERR_INVALID_ARG, "MP_CUDA_DTYPE=%s: use float16, bfloat16 or float32", env);
  if (!dt) dt = MP_F16;
  void *ctx = NULL;
  mp_status st = mp_cuda_open(spec->index, dt, &ctx);
  if (st) return mp_err_prefix(st, "--device cuda:%d", spec->index);
  return mp_model_device_attach(m, mp_cuda_ops(), ctx, dt);
#endif
}

mp_status mp_model_device_attach(mp_model *m, const mp_device_ops *ops, void *ctx, mp_dtype dt) {
  m->dev = ops, m->dev_ctx = ctx;
  m->dev_esize = dt == MP_F32 ? 4 : 2;
  /* MP_CUDA_FUSED_QKV=0: the q, k, v projections as three GEMMs (for comparisons) */
  const char *fuse = getenv("MP_CUDA_FUSED_QKV");
  m->dev_fuse = !(fuse && !strcmp(fuse, "0"));
  m->dev_cache = calloc(1, sizeof *m->dev_cache);
  if (!m->dev_cache) return mp_err(MP_ERR_NOMEM, "out of memory");
  return MP_OK;
}

void mp_model_device_close(mp_model *m) {
  if (m->dev) m->dev->close(m->dev_ctx);
  m->dev = NULL, m->dev_ctx = NULL;
  if (m->dev_cache) {
    free(m->dev_cache->keys), free(m->dev_cache->ns), free(m->dev_cache->kinds), free(m->dev_cache->vals);
    free(m->dev_cache);
    m->dev_cache = NULL;
  }
}

void mp_model_release_device(mp_model *m) {
  if (m && m->dev) mp_model_device_close(m);
}

size_t mp_model_device_peak_bytes(const mp_model *m) {
  return m && m->dev && m->dev->peak_bytes ? m->dev->peak_bytes(m->dev_ctx) : 0;
}

const char *mp_model_device_name(const mp_model *m) {
  if (!m->dev) return "cpu";
  return m->dev->describe(m->dev_ctx);
}

/* ---------------------------------------------------------------- weights */

enum {
  KIND_MATRIX = 1,
  KIND_VEC_COMPUTE = 2,
  KIND_VEC_F32 = 3,
  KIND_CAT_MATRIX = 4,
  KIND_CAT_BIAS = 5,
  KIND_QMATRIX = 6,
  KIND_CAT_QMATRIX = 7,
  KIND_F8MATRIX = 8,
  KIND_CAT_F8MATRIX = 9
};

/* whether d's input comes without its 8-bit copy on this device (mp_input_copy) */
static int input_raw(const mp_model *m, const mp_dense *d) {
  if (m->dense_all_raw) return 1;
  switch (d->raw_input) {
  case MP_INPUT_COPIED: return 0;
  case MP_INPUT_KEPT: return !m->dev->keep_copy;
  case MP_INPUT_MUL_ROWS: return !m->dev->mul_rows;
  default: return 1;
  }
}

int mp_dev_fast8(const mp_model *m, const mp_dense *d) {
  return m->dev && m->compute == MP_COMPUTE_FAST && d->w.bits >= 2 && d->w.bits <= 8 && m->dev->fast8_ok &&
         m->dev->upload_fast8 && m->dev->fast8_ok(m->dev_ctx, d->w.out, d->w.in, input_raw(m, d));
}

/* n dense layers in the device's fast mode, uploaded as one stacked matrix: the values
 * mx.dequantize gives, which the backend rounds to its 8-bit form */
static int dev_fast8(const mp_model *m, int n, const mp_dense *const *d) {
  for (int i = 0; i < n; i++)
    if (!mp_dev_fast8(m, d[i]) || d[i]->w.in != d[0]->w.in) return 0;
  return 1;
}
static const void *dev_upload_fast8(mp_model *m, int n, const mp_dense *const *d, int kind) {
  int64_t rows = 0;
  for (int i = 0; i < n; i++)
    rows += d[i]->w.out;
  const int64_t in = d[0]->w.in;
  const void *r = cache_get(m->dev_cache, d[0]->w.data, rows * in, kind);
  if (r) return r;
  float *buf = malloc((size_t)(rows * in) * sizeof *buf);
  if (!buf) {
    mp_err(MP_ERR_NOMEM, "out of memory converting %s for the device", d[0]->w.name ? d[0]->w.name : "a weight");
    return NULL;
  }
  mp_status st = MP_OK;
  int64_t at = 0;
  for (int i = 0; !st && i < n; i++)
    st = mp_weight_rows_f32(&d[i]->w, 0, d[i]->w.out, buf + (size_t)(at * in)), at += d[i]->w.out;
  if (!st) r = m->dev->upload_fast8(m->dev_ctx, buf, rows, in);
  free(buf);
  if (!r) return NULL;
  if (cache_put(m->dev_cache, d[0]->w.data, rows * in, kind, r)) return NULL;
  return r;
}

/* n dense layers' MLX affine weights that can stay quantized on the device as one stacked matrix */
static int dev_quantized(const mp_model *m, int n, const mp_dense *const *d) {
  if (!m->dev->qweight_ok || !m->dev->upload_qweight) return 0;
  for (int i = 0; i < n; i++)
    if (d[i]->w.bits < 2 || d[i]->w.bits > 8 || d[i]->w.group_size != d[0]->w.group_size ||
        d[i]->w.out != d[0]->w.out || d[i]->w.in != d[0]->w.in)
      return 0;
  return m->dev->qweight_ok(m->dev_ctx, n * d[0]->w.out, d[0]->w.in, d[0]->w.group_size);
}

/* w's codes widened to bytes (codes [out, in]), scales and biases in f32 ([out, in / group]) */
static mp_status unpack_codes(const mp_linear_weight *w, uint8_t *codes, float *scales, float *biases) {
  const int64_t G = w->in / w->group_size;
  for (int64_t o = 0; o < w->out; o++)
    mp_weight_row_codes(w, o, codes + o * w->in);
  MP_TRY(mp_to_f32(w->scale_dtype, w->scales, w->out * G, scales));
  return mp_to_f32(w->scale_dtype, w->biases, w->out * G, biases);
}

/* n stacked quantized weights (dev_quantized) uploaded as one matrix kept quantized */
static const void *dev_upload_quantized(mp_model *m, int n, const mp_dense *const *d) {
  const int64_t out = d[0]->w.out, in = d[0]->w.in, G = in / d[0]->w.group_size;
  uint8_t *codes = malloc((size_t)(n * out * in));
  float *sc = malloc((size_t)(n * out * G) * sizeof *sc), *bi = malloc((size_t)(n * out * G) * sizeof *bi);
  const void *r = NULL;
  mp_status st = codes && sc && bi ? MP_OK
                                   : mp_err(MP_ERR_NOMEM, "out of memory converting %s for the device",
                                            d[0]->w.name ? d[0]->w.name : "a weight");
  for (int i = 0; !st && i < n; i++)
    st = unpack_codes(&d[i]->w, codes + (size_t)(i * out * in), sc + (size_t)(i * out * G), bi + (size_t)(i * out * G));
  if (!st) r = m->dev->upload_qweight(m->dev_ctx, codes, sc, bi, n * out, in, d[0]->w.group_size);
  free(codes), free(sc), free(bi);
  return r;
}

const void *mp_dev_dense_weight(mp_model *m, const mp_dense *d) {
  if (dev_fast8(m, 1, &d)) return dev_upload_fast8(m, 1, &d, KIND_F8MATRIX);
  if (!dev_quantized(m, 1, &d)) return mp_dev_weight(m, &d->w);
  const void *r = cache_get(m->dev_cache, d->w.data, d->w.out * d->w.in, KIND_QMATRIX);
  if (r) return r;
  if (!(r = dev_upload_quantized(m, 1, &d))) return NULL;
  if (cache_put(m->dev_cache, d->w.data, d->w.out * d->w.in, KIND_QMATRIX, r)) return NULL;
  return r;
}

const void *mp_dev_weight(mp_model *m, const mp_linear_weight *w) {
  const void *d = cache_get(m->dev_cache, w->data, w->out * w->in, KIND_MATRIX);
  if (d) return d;
  size_t n = (size_t)(w->out * w->in);
  float *buf = malloc(n * sizeof *buf);
  if (!buf) {
    mp_err(MP_ERR_NOMEM, "out of memory converting %s for the device", w->name ? w->name : "a weight");
    return NULL;
  }
  /* MLX-quantized matrices: dequantized exactly as mx.dequantize, then stored in the compute dtype */
  mp_status st = mp_weight_rows_f32(w, 0, w->out, buf);
  if (!st) d = m->dev->upload_param(m->dev_ctx, buf, (int64_t)n, 1);
  free(buf);
  if (!d) return NULL;
  if (cache_put(m->dev_cache, w->data, w->out * w->in, KIND_MATRIX, d)) return NULL;
  return d;
}

const void *mp_dev_vector(mp_model *m, const void *host, mp_dtype dt, int64_t n, int as_compute) {
  int kind = as_compute ? KIND_VEC_COMPUTE : KIND_VEC_F32;
  const void *d = cache_get(m->dev_cache, host, n, kind);
  if (d) return d;
  float *buf = malloc((size_t)n * sizeof *buf);
  if (!buf) {
    mp_err(MP_ERR_NOMEM, "out of memory");
    return NULL;
  }
  mp_status st = mp_to_f32(dt, host, n, buf);
  if (!st) d = m->dev->upload_param(m->dev_ctx, buf, n, as_compute);
  free(buf);
  if (!d) return NULL;
  if (cache_put(m->dev_cache, host, n, kind, d)) return NULL;
  return d;
}

/* Stacked weights of dense layers that share their input (the fused Q/K/V projection). The key is
 * d[0]'s weight with the stacked size: a layer is stacked with the same partners every time. */
const void *mp_dev_weight_cat(mp_model *m, int n, const mp_dense *const *d) {
  const int64_t out = d[0]->w.out, in = d[0]->w.in, total = (int64_t)n * out * in;
  if (dev_fast8(m, n, d)) return dev_upload_fast8(m, n, d, KIND_CAT_F8MATRIX);
  if (dev_quantized(m, n, d)) {
    const void *q = cache_get(m->dev_cache, d[0]->w.data, total, KIND_CAT_QMATRIX);
    if (q) return q;
    if (!(q = dev_upload_quantized(m, n, d))) return NULL;
    if (cache_put(m->dev_cache, d[0]->w.data, total, KIND_CAT_QMATRIX, q)) return NULL;
    return q;
  }
  const void *r = cache_get(m->dev_cache, d[0]->w.data, total, KIND_CAT_MATRIX);
  if (r) return r;
  for (int i = 1; i < n; i++)
    if (d[i]->w.out != out || d[i]->w.in != in) {
      mp_err(MP_ERR_INTERNAL, "stacking %s [%lld, %lld] with %s [%lld, %lld]: the shapes differ",
             d[0]->w.name ? d[0]->w.name : "a weight", (long long)out, (long long)in,
             d[i]->w.name ? d[i]->w.name : "a weight", (long long)d[i]->w.out, (long long)d[i]->w.in);
      return NULL;
    }
  float *buf = malloc((size_t)total * sizeof *buf);
  if (!buf) {
    mp_err(MP_ERR_NOMEM, "out of memory stacking %s for the device", d[0]->w.name ? d[0]->w.name : "a weight");
    return NULL;
  }
  mp_status st = MP_OK;
  for (int i = 0; !st && i < n; i++) /* each part exactly as mp_dev_weight converts it */
    st = mp_weight_rows_f32(&d[i]->w, 0, out, buf + (size_t)i * (size_t)(out * in));
  if (!st) r = m->dev->upload_param(m->dev_ctx, buf, total, 1);
  free(buf);
  if (!r) return NULL;
  if (cache_put(m->dev_cache, d[0]->w.data, total, KIND_CAT_MATRIX, r)) return NULL;
  return r;
}

mp_status mp_dev_bias_cat(mp_model *m, int n, const mp_dense *const *d, const void **out) {
  const int64_t o = d[0]->w.out, total = (int64_t)n * o;
  int any = 0;
  for (int i = 0; i < n; i++)
    any |= d[i]->b != NULL;
  *out = NULL;
  if (!any) return MP_OK;
  if ((*out = cache_get(m->dev_cache, d[0]->w.data, total, KIND_CAT_BIAS))) return MP_OK;
  float *buf = calloc((size_t)total, sizeof *buf);
  if (!buf) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status st = MP_OK;
  for (int i = 0; !st && i < n; i++) /* as mp_dev_vector: f32 on the host, the compute dtype on the device */
    if (d[i]->b) st = mp_to_f32(d[i]->bdt, d[i]->b, o, buf + (size_t)i * (size_t)o);
  const void *r = NULL;
  if (!st && !(r = m->dev->upload_param(m->dev_ctx, buf, total, 1))) st = MP_ERR_NOMEM;
  free(buf);
  if (st) return st;
  MP_TRY(cache_put(m->dev_cache, d[0]->w.data, total, KIND_CAT_BIAS, r));
  *out = r;
  return MP_OK;
}
