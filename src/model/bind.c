/* Binding checkpoint tensors to the runtime's weight descriptors: matrices (float, MLX-quantized
 * affine, fp modes expanded at load), vectors, dense layers with their integer form for the fast
 * mode, LayerNorms, and the tensor-name patterns several families share. The math that runs
 * them is in layers.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "core/tensor.h"
#include "model/model_internal.h"
#include "quant/mlx_fp.h"

const mp_tensor *mp_model_tensor(const mp_model *m, const char *name) { return mp_weights_find(m->w, name); }

mp_status mp_model_missing(const mp_model *m, const char *name) {
  return mp_err(MP_ERR_FORMAT, "%s: tensor \"%s\" is missing (model_type %s, architecture %s)", m->path, name,
                m->cfg.model_type, m->cfg.architecture[0] ? m->cfg.architecture : "?");
}

static mp_status bad_shape(const mp_model *m, const mp_tensor *t, const char *expect) {
  char shp[96];
  mp_shape_str(t->shape, t->ndim, shp, sizeof shp);
  return mp_err(MP_ERR_FORMAT, "%s: tensor \"%s\" has shape %s %s, expected %s", m->path, t->name, shp,
                mp_dtype_name(t->dtype), expect);
}

/* An MLX fp-mode matrix (mxfp4 / nvfp4 / mxfp8: U32 codes + U8 scales, no biases), expanded
 * to bfloat16: every code x scale is exact in bfloat16, so this is mx.dequantize's value. */
static mp_status bind_fp_matrix(mp_model *m, const char *name, const mp_tensor *t, const mp_tensor *s, int64_t out,
                                int64_t in, mp_linear_weight *lw) {
  if (t->ndim != 2 || t->shape[0] != out || s->ndim != 2 || s->shape[0] != out || s->shape[1] <= 0 ||
      in % s->shape[1] != 0 || (t->shape[1] * 32) % in != 0)
    return bad_shape(m, t, "an MLX fp-quantized matrix (mxfp4/nvfp4/mxfp8) matching its uint8 scales");
  int64_t group = in / s->shape[1], bits = t->shape[1] * 32 / in;
  mp_qmode mode;
  if (bits == 4 && group == 32)
    mode = MP_QMODE_MXFP4;
  else if (bits == 4 && group == 16)
    mode = MP_QMODE_NVFP4;
  else if (bits == 8 && group == 32)
    mode = MP_QMODE_MXFP8;
  else
    return mp_err(MP_ERR_FORMAT,
                  "%s: \"%s\" has uint8 scales and no biases (an MLX fp mode) but %lld bits / group %lld is none "
                  "of mxfp4 (4/32), nvfp4 (4/16), mxfp8 (8/32)",
                  m->path, t->name, (long long)bits, (long long)group);
  uint16_t *w = mp_arena_alloc_aligned(&m->params, (size_t)(out * in) * 2, 64);
  if (!w) return mp_err(MP_ERR_NOMEM, "out of memory");
  const uint8_t *codes = t->data, *sc = s->data;
  for (int64_t r = 0; r < out; r++)
    for (int64_t i = 0; i < in; i++)
      w[r * in + i] =
          mp_mlx_f32_to_bf16(mp_mlx_fp_value(codes + r * (in * bits / 8), sc + r * (in / group), mode, (size_t)i));
  lw->dtype = MP_BF16;
  lw->data = w;
  m->n_quant++;
  m->n_fp++;
  mp_status st = mp_linear_weight_check(lw);
  if (st) return mp_err_prefix(st, "%s", m->path);
  return MP_OK;
}

/* Binds "<name>.weight" (+ .scales/.biases when MLX-quantized) as a [out, in] matrix. */
mp_status mp_bind_matrix(mp_model *m, const char *name, int64_t out, int64_t in, mp_linear_weight *lw) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s.weight", name);
  const mp_tensor *t = mp_model_tensor(m, buf);
  if (!t) return mp_model_missing(m, buf);
  memset(lw, 0, sizeof *lw);
  lw->name = t->name;
  lw->out = out;
  lw->in = in;
  char expect[96];
  snprintf(expect, sizeof expect, "[%lld, %lld]", (long long)out, (long long)in);
  if (t->dtype == MP_U32) {
    snprintf(buf, sizeof buf, "%s.scales", name);
    const mp_tensor *s = mp_model_tensor(m, buf);
    snprintf(buf, sizeof buf, "%s.biases", name);
    const mp_tensor *b = mp_model_tensor(m, buf);
    if (s && !b && s->dtype == MP_U8) return bind_fp_matrix(m, name, t, s, out, in, lw);
    if (!s || !b)
      return mp_err(MP_ERR_FORMAT, "%s: \"%s\" is packed (U32) but \"%s.scales\"/\"%s.biases\" are missing", m->path,
                    t->name, name, name);
    if (t->ndim != 2 || t->shape[0] != out || s->ndim != 2 || s->shape[0] != out || b->ndim != 2 ||
        b->shape[0] != out || b->shape[1] != s->shape[1] || s->shape[1] <= 0 || in % s->shape[1] != 0)
      return bad_shape(m, t, "an MLX-quantized matrix matching its scales/biases");
    int64_t group = in / s->shape[1];
    int64_t bits = t->shape[1] * 32 / in;
    if (t->shape[1] * 32 != bits * in) return bad_shape(m, t, "packed columns = in * bits / 32");
    if (s->dtype != b->dtype)
      return mp_err(MP_ERR_FORMAT, "%s: scales and biases of \"%s\" differ in dtype", m->path, name);
    lw->dtype = MP_U32;
    lw->data = t->data;
    m->n_quant++;
    lw->bits = (int)bits;
    lw->group_size = (int)group;
    lw->scale_dtype = s->dtype;
    lw->scales = s->data;
    lw->biases = b->data;
  } else {
    if (t->ndim != 2 || t->shape[0] != out || t->shape[1] != in) return bad_shape(m, t, expect);
    if (t->dtype != MP_F32 && t->dtype != MP_F16 && t->dtype != MP_BF16)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s (F32, F16, BF16 or MLX-quantized U32 expected)",
                    m->path, t->name, mp_dtype_name(t->dtype));
    lw->dtype = t->dtype;
    lw->data = t->data;
    if (m->weight_hook) {
      const float *rep = m->weight_hook(m->weight_hook_ctx, name, out, in, t->dtype, t->data);
      if (rep) lw->dtype = MP_F32, lw->data = rep;
    }
  }
  mp_status st = mp_linear_weight_check(lw);
  if (st) return mp_err_prefix(st, "%s", m->path);
  return MP_OK;
}

mp_status mp_bind_vector(mp_model *m, const char *name, int64_t n, const void **data, mp_dtype *dt) {
  const mp_tensor *t = mp_model_tensor(m, name);
  if (!t) return mp_model_missing(m, name);
  if (t->ndim != 1 || t->shape[0] != n || (t->dtype != MP_F32 && t->dtype != MP_F16 && t->dtype != MP_BF16)) {
    char e[64];
    snprintf(e, sizeof e, "[%lld] float", (long long)n);
    return bad_shape(m, t, e);
  }
  *data = t->data;
  *dt = t->dtype;
  return MP_OK;
}

/* The whole pages of [p, p + bytes) (a tensor in the mapped weights file that the model now reads
 * from a copy) are given back to the OS; a later read, if any, maps them in again. */
static void release_pages(const void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_PAGEOUT)
  const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), lo = ((uintptr_t)p + pg - 1) & ~(pg - 1);
  const uintptr_t hi = ((uintptr_t)p + bytes) & ~(pg - 1);
  if (pg > 0 && hi > lo) (void)madvise((void *)lo, hi - lo, MADV_PAGEOUT);
#else
  (void)p, (void)bytes;
#endif
}

/* A float32 weight is packed once into the GEMM's panels (mp_linear_prepack) on the CPU path:
 * every product then reads them instead of packing the matrix per call, whatever the row count
 * (batch-1 passes included, which used a dot-product path with another summation order), so an
 * output does not depend on the other rows of its batch. The source pages are then handed back
 * to the kernel (MADV_PAGEOUT: file pages of the mapping are dropped and re-read if ever touched,
 * e.g. by the scalar path; memory that is not file-backed keeps its contents), so the weight is
 * resident once. */
static mp_status prepack_f32_weight(mp_model *m, mp_linear_weight *w) {
  w->panels = NULL;
  w->panel_nr = 0;
  const size_t bytes = m->dev ? 0 : mp_linear_panels_bytes(w);
  if (!bytes) return MP_OK;
  float *panels = mp_arena_alloc_uninit(&m->params, bytes, 64);
  if (!panels) return mp_err(MP_ERR_NOMEM, "%s: out of memory packing %s (%zu bytes)", m->path, w->name, bytes);
  MP_TRY(mp_linear_prepack(w, panels));
  release_pages(w->data, (size_t)(w->out * w->in) * sizeof(float));
  return MP_OK;
}

/* Room for one more entry in a model-owned array of pointers to packed forms: arrp is the address
 * of the array pointer (any object-pointer element type), n its used count, *cap its capacity. */
static mp_status grow_packs(void *arrp, size_t n, size_t *cap) {
  if (n < *cap) return MP_OK;
  void *a, *na;
  memcpy(&a, arrp, sizeof a);
  size_t nc = *cap ? 2 * *cap : 64;
  if (!(na = realloc(a, nc * sizeof(void *)))) return mp_err(MP_ERR_NOMEM, "out of memory");
  memcpy(arrp, &na, sizeof na);
  *cap = nc;
  return MP_OK;
}

/* F16/BF16 weights into bf16 tiles where the CPU has them (fast mode, not on a device) */
static mp_status pack_bf16(mp_model *m, mp_dense *d) {
  if (m->dev || m->compute != MP_COMPUTE_FAST || d->w.bits != 0 || (d->w.dtype != MP_F16 && d->w.dtype != MP_BF16) ||
      !mp_bflinear_available())
    return MP_OK;
  MP_TRY(grow_packs(&m->bpacks, m->n_bpacks, &m->cap_bpacks));
  mp_bfweight *b;
  mp_status st = mp_bfweight_pack(&d->w, &b);
  if (st) return mp_err_prefix(st, "%s", m->path);
  m->bpacks[m->n_bpacks++] = b;
  d->bw = b;
  release_pages(d->w.data, (size_t)(d->w.out * d->w.in) * 2); /* the tiles are read from now on */
  return MP_OK;
}

mp_status mp_dense_pack(mp_model *m, mp_dense *d) {
  d->qw = NULL;
  d->bw = NULL;
  MP_TRY(prepack_f32_weight(m, &d->w));
  if (d->w.bits == 0) return pack_bf16(m, d);
  if (m->compute != MP_COMPUTE_FAST) return MP_OK;
  if (m->dev) { /* the device's fast mode (8-bit tensor cores) where the backend takes the shape */
    if (mp_dev_fast8(m, d)) m->n_dev8++;
    return MP_OK;
  }
  MP_TRY(grow_packs(&m->packs, m->n_packs, &m->cap_packs));
  mp_qweight *q;
  mp_status st = mp_qweight_pack(&d->w, &q);
  if (st) return mp_err_prefix(st, "%s", m->path);
  m->packs[m->n_packs++] = q;
  d->qw = q;
  return MP_OK;
}

void mp_dense_drop_pack(mp_model *m, mp_dense *d) {
  for (size_t i = 0; d->qw && i < m->n_packs; i++)
    if (m->packs[i] == d->qw) {
      mp_qweight_free(m->packs[i]);
      m->packs[i] = m->packs[--m->n_packs];
      break;
    }
  for (size_t i = 0; d->bw && i < m->n_bpacks; i++)
    if (m->bpacks[i] == d->bw) {
      mp_bfweight_free(m->bpacks[i]);
      m->bpacks[i] = m->bpacks[--m->n_bpacks];
      break;
    }
  if (m->dev && m->n_dev8 && mp_dev_fast8(m, d)) m->n_dev8--;
  d->qw = NULL;
  d->bw = NULL;
}

mp_status mp_bind_dense(mp_model *m, const char *name, int64_t out, int64_t in, int bias_optional, mp_dense *d) {
  MP_TRY(mp_bind_matrix(m, name, out, in, &d->w));
  MP_TRY(mp_dense_pack(m, d));
  char buf[256];
  snprintf(buf, sizeof buf, "%s.bias", name);
  d->b = NULL;
  if (mp_model_tensor(m, buf)) return mp_bind_vector(m, buf, out, &d->b, &d->bdt);
  return bias_optional ? MP_OK : mp_model_missing(m, buf);
}

mp_status mp_bind_f32(mp_model *m, const char *name, int64_t n, float **out) {
  const void *d;
  mp_dtype dt;
  MP_TRY(mp_bind_vector(m, name, n, &d, &dt));
  float *f = mp_arena_alloc_aligned(&m->params, (size_t)n * sizeof(float), 64);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  MP_TRY(mp_to_f32(dt, d, n, f));
  *out = f;
  return MP_OK;
}

/* LayerNorm "name.weight"/"name.bias" (old checkpoints: "name.gamma"/"name.beta"). */
mp_status mp_bind_ln(mp_model *m, const char *name, int64_t n, int bias_optional, mp_lnorm *ln) {
  char w[256], bb[256];
  snprintf(w, sizeof w, "%s.weight", name);
  snprintf(bb, sizeof bb, "%s.bias", name);
  if (!mp_model_tensor(m, w)) {
    char g[256];
    snprintf(g, sizeof g, "%s.gamma", name);
    if (mp_model_tensor(m, g)) {
      snprintf(w, sizeof w, "%s.gamma", name);
      snprintf(bb, sizeof bb, "%s.beta", name);
    }
  }
  MP_TRY(mp_bind_f32(m, w, n, &ln->g));
  ln->b = NULL;
  if (bias_optional && !mp_model_tensor(m, bb)) return MP_OK;
  return mp_bind_f32(m, bb, n, &ln->b);
}

/* "<base>intermediate.dense", "<base>output.dense", "<base>output.LayerNorm": the feed-forward half
 * of a BERT-style layer (BERT, RoBERTa, DeBERTa, MPNet names). */
mp_status mp_bind_bert_ffn(mp_model *m, const char *base, int64_t H, int64_t I, mp_dense *inter, mp_dense *out,
                           mp_lnorm *ln_out) {
  char n[320];
  snprintf(n, sizeof n, "%sintermediate.dense", base);
  MP_TRY(mp_bind_dense(m, n, I, H, 0, inter));
  snprintf(n, sizeof n, "%soutput.dense", base);
  out->raw_input = MP_INPUT_RAW; /* the activation's output */
  MP_TRY(mp_bind_dense(m, n, H, I, 0, out));
  snprintf(n, sizeof n, "%soutput.LayerNorm", base);
  return mp_bind_ln(m, n, H, 0, ln_out);
}

/* Four [H, H] projections with biases named "<base><q>", "<base><k>", "<base><v>", "<base><o>"
 * (attention query/key/value/output of a BERT-style layer, under each family's names). */
mp_status mp_bind_qkvo(mp_model *m, const char *base, const char *const names[4], int64_t H, mp_dense *q, mp_dense *k,
                       mp_dense *v, mp_dense *o) {
  mp_dense *d[4] = {q, k, v, o};
  char n[320];
  o->raw_input = MP_INPUT_RAW; /* the attention's output */
  for (int i = 0; i < 4; i++) {
    snprintf(n, sizeof n, "%s%s", base, names[i]);
    MP_TRY(mp_bind_dense(m, n, H, H, 0, d[i]));
  }
  return MP_OK;
}
