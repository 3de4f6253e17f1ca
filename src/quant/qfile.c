/* `mlxport quantize`: one safetensors file quantized, dequantized or cast into another (see
 * qfile.h). */
#include "quant/qfile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/tensor.h"
#include "format/safetensors.h"
#include "quant/st_stream.h"

void mp_quant_release_pages(const void *p, size_t n) {
  if (!p || !n) return;
  long pg = sysconf(_SC_PAGESIZE);
  if (pg <= 0) return;
  uintptr_t a = (uintptr_t)p, e = a + n;
  a = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1); /* only whole pages inside the range */
  e &= ~((uintptr_t)pg - 1);
  if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

char *mp_quant_companion_name(const char *w, const char *suffix) {
  size_t n = strlen(w);
  size_t base = n;
  if (n > 7 && strcmp(w + n - 7, ".weight") == 0) base = n - 7;
  size_t sl = strlen(suffix);
  char *out = malloc(base + 1 + sl + 1);
  if (!out) return NULL;
  memcpy(out, w, base);
  out[base] = '.';
  memcpy(out + base + 1, suffix, sl + 1);
  return out;
}

typedef enum { ACT_COPY, ACT_CAST, ACT_QUANT, ACT_DEQUANT, ACT_CONSUMED } act_t;

typedef struct {
  const mp_tensor *t;
  act_t act;
  mp_dtype out_dt;
  size_t idx[3];
  const mp_tensor *sc, *bi; /* dequantize: companions */
} plan_t;

static int is_companion(const mp_safetensors *st, const char *name) {
  /* "X.scales"/"X.biases" whose weight exists */
  size_t n = strlen(name);
  const char *suf = NULL;
  if (n > 7 && strcmp(name + n - 7, ".scales") == 0) suf = ".scales";
  if (n > 7 && strcmp(name + n - 7, ".biases") == 0) suf = ".biases";
  if (!suf) return 0;
  char buf[1024];
  if (n - 7 + 8 > sizeof buf) return 0;
  memcpy(buf, name, n - 7);
  strcpy(buf + n - 7, ".weight");
  if (mp_safetensors_find(st, buf)) return 1;
  buf[n - 7] = 0;
  return mp_safetensors_find(st, buf) != NULL;
}

mp_status mp_qfile_run(const char *in_path, const char *out_path, const mp_qfile_opts *o, mp_qfile_report *rep) {
  memset(rep, 0, sizeof *rep);
  if (o->mode != MP_QFILE_CAST && !mp_mlx_quant_supported(o->qmode, o->bits, o->group_size)) {
    char allowed[128];
    mp_qmode_allowed(o->qmode, allowed, sizeof allowed);
    return mp_err(MP_ERR_INVALID_ARG, "bits=%d group_size=%d mode=%s: %s", o->bits, o->group_size,
                  mp_qmode_name(o->qmode), allowed);
  }
  const int fp = o->qmode != MP_QMODE_AFFINE;
  if (o->mode == MP_QFILE_CAST && !mp_mlx_is_float(o->dtype))
    return mp_err(MP_ERR_INVALID_ARG, "cast needs an output dtype (float32, float16 or bfloat16)");
  mp_safetensors *st = NULL;
  mp_st_stream *ws = NULL;
  plan_t *p = NULL;
  void *buf = NULL, *sbuf = NULL, *bbuf = NULL;
  mp_status s = mp_safetensors_open(in_path, &st);
  if (s) return s;
  size_t n = mp_safetensors_count(st);
  rep->n_in = n;
  rep->in_bytes = (uint64_t)mp_file_size(in_path);
  p = calloc(n ? n : 1, sizeof *p);
  if (!p) {
    s = mp_err(MP_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((s = mp_st_stream_create(&ws))) goto done;
  if ((s = mp_st_stream_set_metadata(ws, "format", "mlx"))) goto done;

  for (size_t i = 0; i < n; i++) {
    const mp_tensor *t = mp_safetensors_at(st, i);
    plan_t *q = &p[i];
    q->t = t;
    q->act = ACT_COPY;
    q->out_dt = t->dtype;
    int is_f = mp_mlx_is_float(t->dtype);
    mp_dtype dt = (o->dtype != MP_DTYPE_INVALID) ? o->dtype : t->dtype;
    int64_t shp[MP_MAX_DIMS];
    memcpy(shp, t->shape, sizeof shp);
    if (o->mode == MP_QFILE_QUANTIZE && is_f && t->ndim >= 2 && t->shape[t->ndim - 1] > 0 &&
        t->shape[t->ndim - 1] % o->group_size == 0) {
      q->act = ACT_QUANT;
      q->out_dt = dt;
      int64_t k = t->shape[t->ndim - 1];
      shp[t->ndim - 1] = k * o->bits / 32;
      if ((s = mp_st_stream_add(ws, t->name, MP_U32, t->ndim, shp, &q->idx[0]))) goto done;
      shp[t->ndim - 1] = k / o->group_size;
      char *sn = mp_quant_companion_name(t->name, "scales"), *bn = mp_quant_companion_name(t->name, "biases");
      if (!sn || !bn) s = mp_err(MP_ERR_NOMEM, "out of memory");
      if (!s) s = mp_st_stream_add(ws, sn, fp ? MP_U8 : dt, t->ndim, shp, &q->idx[1]);
      if (!s && !fp) s = mp_st_stream_add(ws, bn, dt, t->ndim, shp, &q->idx[2]);
      free(sn), free(bn);
      if (s) goto done;
      continue;
    }
    if (o->mode == MP_QFILE_DEQUANTIZE) {
      if (is_companion(st, t->name)) {
        q->act = ACT_CONSUMED;
        continue;
      }
      char *sn = mp_quant_companion_name(t->name, "scales"), *bn = mp_quant_companion_name(t->name, "biases");
      if (!sn || !bn) {
        free(sn), free(bn);
        s = mp_err(MP_ERR_NOMEM, "out of memory");
        goto done;
      }
      q->sc = mp_safetensors_find(st, sn);
      q->bi = mp_safetensors_find(st, bn);
      free(sn), free(bn);
      if (q->sc && (q->bi || fp)) {
        const mp_tensor *sc = q->sc;
        int64_t k = t->ndim ? t->shape[t->ndim - 1] : 0;
        int ok = t->dtype == MP_U32 && t->ndim >= 1 && sc->ndim == t->ndim &&
                 (fp ? sc->dtype == MP_U8 && !q->bi
                     : mp_mlx_is_float(sc->dtype) && q->bi->dtype == sc->dtype && q->bi->ndim == t->ndim);
        for (int d = 0; ok && d < t->ndim - 1; d++)
          ok = sc->shape[d] == t->shape[d] && (fp || q->bi->shape[d] == t->shape[d]);
        if (ok)
          ok = k * 32 / o->bits == sc->shape[t->ndim - 1] * o->group_size && (k * 32) % o->bits == 0 &&
               (fp || q->bi->shape[t->ndim - 1] == sc->shape[t->ndim - 1]);
        if (!ok) {
          s = mp_err(MP_ERR_FORMAT,
                     "%s: %s: packed weight, scales and biases do not fit bits=%d group_size=%d (check --bits and "
                     "--group-size)",
                     in_path, t->name, o->bits, o->group_size);
          goto done;
        }
        q->act = ACT_DEQUANT;
        q->out_dt = fp ? (o->dtype != MP_DTYPE_INVALID ? o->dtype : MP_BF16) : sc->dtype;
        shp[t->ndim - 1] = k * 32 / o->bits;
        if ((s = mp_st_stream_add(ws, t->name, q->out_dt, t->ndim, shp, &q->idx[0]))) goto done;
        continue;
      }
    }
    if (is_f && (o->mode == MP_QFILE_CAST || o->mode == MP_QFILE_QUANTIZE) && dt != t->dtype) {
      q->act = ACT_CAST;
      q->out_dt = dt;
    }
    if ((s = mp_st_stream_add(ws, t->name, q->out_dt, t->ndim, t->shape, &q->idx[0]))) goto done;
  }

  if ((s = mp_st_stream_begin(ws, out_path))) goto done;
  for (size_t i = 0; i < n; i++) {
    plan_t *q = &p[i];
    const mp_tensor *t = q->t;
    size_t numel = (size_t)mp_tensor_numel(t);
    free(buf), free(sbuf), free(bbuf);
    buf = sbuf = bbuf = NULL;
    switch (q->act) {
    case ACT_CONSUMED: break;
    case ACT_COPY:
      s = mp_st_stream_put(ws, q->idx[0], 0, t->data, t->nbytes);
      rep->n_copied++;
      break;
    case ACT_CAST:
      buf = malloc(numel * mp_dtype_size(q->out_dt) + 1);
      if (!buf) s = mp_err(MP_ERR_NOMEM, "%s: out of memory", t->name);
      if (!s) s = mp_mlx_astype(t->data, t->dtype, buf, q->out_dt, numel);
      if (!s) s = mp_st_stream_put(ws, q->idx[0], 0, buf, numel * mp_dtype_size(q->out_dt));
      rep->n_cast++;
      break;
    case ACT_QUANT: {
      size_t ng = mp_mlx_affine_groups(numel, o->group_size), es = fp ? 1 : mp_dtype_size(q->out_dt);
      size_t pb = mp_mlx_affine_packed_bytes(numel, o->bits);
      buf = malloc(pb + 1), sbuf = malloc(ng * es + 1), bbuf = malloc(ng * es + 1);
      if (!buf || !sbuf || !bbuf) s = mp_err(MP_ERR_NOMEM, "%s: out of memory", t->name);
      if (!s && fp)
        s = mp_mlx_fp_quantize(t->data, t->dtype, numel, q->out_dt, o->qmode, t->name, buf, sbuf, NULL);
      else if (!s)
        s = mp_mlx_affine_quantize(t->data, t->dtype, numel, q->out_dt, o->bits, o->group_size, o->compat, t->name, buf,
                                   sbuf, bbuf);
      if (!s) s = mp_st_stream_put(ws, q->idx[0], 0, buf, pb);
      if (!s) s = mp_st_stream_put(ws, q->idx[1], 0, sbuf, ng * es);
      if (!s && !fp) s = mp_st_stream_put(ws, q->idx[2], 0, bbuf, ng * es);
      rep->n_quantized++;
      break;
    }
    case ACT_DEQUANT: {
      size_t k = (size_t)t->shape[t->ndim - 1], rows = k ? numel / k : 0;
      size_t out_numel = rows * (k * 32 / (size_t)o->bits);
      size_t es = mp_dtype_size(q->out_dt);
      buf = malloc(out_numel * es + 1);
      if (!buf) s = mp_err(MP_ERR_NOMEM, "%s: out of memory", t->name);
      if (!s && fp)
        s = mp_mlx_fp_dequantize(t->data, q->sc->data, o->qmode, q->out_dt, out_numel, buf);
      else if (!s) /* views may be unaligned: the quant code only does byte loads / memcpy */
        s = mp_mlx_affine_dequantize(t->data, q->sc->data, q->bi->data, q->out_dt, out_numel, o->bits, o->group_size,
                                     buf);
      if (!s) s = mp_st_stream_put(ws, q->idx[0], 0, buf, out_numel * es);
      rep->n_dequantized++;
      break;
    }
    }
    if (s) goto done;
    mp_quant_release_pages(t->data, t->nbytes);
  }
  rep->n_out = mp_st_stream_count(ws);
  if ((s = mp_st_stream_finish(ws))) goto done;
  rep->out_bytes = (uint64_t)mp_file_size(out_path);
done:
  free(buf), free(sbuf), free(bbuf);
  free(p);
  mp_st_stream_free(ws);
  mp_safetensors_close(st);
  return s;
}
