/* `mlxport verify-weights`: per-tensor error of a converted model against its original
 * checkpoint (max abs, RMS, relative RMS, SNR; see verify.h). */
#include "quant/verify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "core/tensor.h"
#include "format/hf.h"
#include "format/weights.h"
#include "quant/mlx_affine.h"
#include "quant/mlx_fp.h"
#include "quant/qfile.h"

#define CHUNK 65536

void mp_verify_report_free(mp_verify_report *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++)
    free(r->t[i].name);
  free(r->t);
  memset(r, 0, sizeof *r);
}

static int worse(const mp_verify_tensor *a, const mp_verify_tensor *b) {
  if (a->pass != b->pass) return !a->pass;
  double x = isnan(a->rel_rms) ? INFINITY : a->rel_rms, y = isnan(b->rel_rms) ? INFINITY : b->rel_rms;
  if (x != y) return x > y;
  return strcmp(a->name, b->name) < 0;
}

static int cmp_t(const void *pa, const void *pb) {
  const mp_verify_tensor *a = pa, *b = pb;
  return worse(a, b) ? -1 : (worse(b, a) ? 1 : 0);
}

static mp_status open_model(const char *ref, char **dir, mp_weights **w) {
  char *p = NULL;
  MP_TRY(mp_hf_resolve(ref, &p));
  *dir = mp_is_dir(p) ? strdup(p) : mp_path_dirname(p);
  mp_status s = *dir ? mp_weights_open(p, w) : mp_err(MP_ERR_NOMEM, "out of memory");
  free(p);
  return s;
}

/* Quantization parameters of a layer from config["quantization"]: per-layer dict or false,
 * else the global values. Returns 0 when the layer is marked false. */
static int layer_params(const mp_json *q, const char *module, int *bits, int *gs) {
  *bits = (int)mp_json_get_int(q, "bits", 4);
  *gs = (int)mp_json_get_int(q, "group_size", 64);
  const mp_json *e = mp_json_get(q, module);
  if (e && e->type == MP_JSON_BOOL) return e->boolean;
  if (e && e->type == MP_JSON_OBJECT) {
    *bits = (int)mp_json_get_int(e, "bits", *bits);
    *gs = (int)mp_json_get_int(e, "group_size", *gs);
  }
  return 1;
}

static void finish(mp_verify_tensor *v, const mp_qerr *e, const mp_verify_opts *o) {
  v->max_abs = e->max_abs, v->rms = e->rms, v->rel_rms = e->rel_rms, v->snr_db = e->snr_db;
  double lim = o->max_rel_rms > 0 ? o->max_rel_rms : 0.2;
  v->pass = !(isnan(v->max_abs) || isnan(v->rel_rms)) && v->rel_rms <= lim &&
            (o->min_snr_db == 0 || v->snr_db >= o->min_snr_db);
}

mp_status mp_verify_weights(const mp_verify_opts *o, mp_verify_report *r) {
  memset(r, 0, sizeof *r);
  char *odir = NULL, *cdir = NULL;
  mp_weights *ow = NULL, *cw = NULL;
  mp_arena arena;
  mp_arena_init(&arena, 0);
  void *buf = NULL;
  mp_status s = open_model(o->original, &odir, &ow);
  if (!s) s = open_model(o->converted, &cdir, &cw);
  const mp_json *q = NULL;
  if (!s) {
    mp_json *cfg = NULL;
    char *cp = mp_path_join(cdir, "config.json");
    if (cp && mp_is_file(cp)) s = mp_json_parse_file(cp, &arena, &cfg);
    free(cp);
    q = cfg ? mp_json_get(cfg, "quantization") : NULL;
    if (!q && cfg) q = mp_json_get(cfg, "quantization_config");
  }
  size_t n = s ? 0 : mp_weights_count(ow);
  if (!s) {
    r->t = calloc(n ? n : 1, sizeof *r->t);
    buf = malloc(CHUNK * 4);
    if (!r->t || !buf) s = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n && !s; i++) {
    const mp_tensor *t = mp_weights_at(ow, i);
    if (!mp_mlx_is_float(t->dtype)) continue; /* integer buffers (position ids) are not compared */
    mp_verify_tensor *v = &r->t[r->n++];
    v->name = strdup(t->name);
    if (!v->name) {
      s = mp_err(MP_ERR_NOMEM, "out of memory");
      break;
    }
    const mp_tensor *c = mp_weights_find(cw, t->name);
    size_t numel = (size_t)mp_tensor_numel(t);
    char *sn = mp_quant_companion_name(t->name, "scales"), *bn = mp_quant_companion_name(t->name, "biases");
    const mp_tensor *sc = sn ? mp_weights_find(cw, sn) : NULL, *bi = bn ? mp_weights_find(cw, bn) : NULL;
    free(sn), free(bn);
    mp_qerr e;
    mp_qerr_init(&e);
    if (!c) {
      v->kind = "missing";
      v->max_abs = v->rms = v->rel_rms = NAN;
      v->snr_db = NAN;
      v->pass = 0;
      continue;
    }
    if (sc && bi && c->dtype == MP_U32) {
      v->kind = "quantized";
      r->n_quantized++;
      char *module = strdup(t->name);
      if (!module) {
        s = mp_err(MP_ERR_NOMEM, "out of memory");
        break;
      }
      size_t ml = strlen(module);
      if (ml > 7 && !strcmp(module + ml - 7, ".weight")) module[ml - 7] = 0;
      int bits = 4, gs = 64;
      if (!q) {
        free(module);
        s = mp_err(MP_ERR_FORMAT, "%s: %s is quantized but config.json has no \"quantization\" block", o->converted,
                   t->name);
        break;
      }
      layer_params(q, module, &bits, &gs);
      free(module);
      v->bits = bits, v->group_size = gs;
      int64_t k = t->ndim ? t->shape[t->ndim - 1] : 0;
      int ok = mp_mlx_affine_supported(bits, gs) && t->ndim >= 1 && c->ndim == t->ndim && sc->ndim == t->ndim &&
               bi->ndim == t->ndim && mp_mlx_is_float(sc->dtype) && bi->dtype == sc->dtype && k % gs == 0 &&
               c->shape[t->ndim - 1] == k * bits / 32 && sc->shape[t->ndim - 1] == k / gs &&
               bi->shape[t->ndim - 1] == k / gs;
      for (int d = 0; ok && d < t->ndim - 1; d++)
        ok = c->shape[d] == t->shape[d] && sc->shape[d] == t->shape[d] && bi->shape[d] == t->shape[d];
      if (!ok) {
        v->kind = "shape mismatch";
        v->max_abs = v->rms = v->rel_rms = v->snr_db = NAN;
        v->pass = 0;
        continue;
      }
      size_t es = mp_dtype_size(sc->dtype), chunk = (CHUNK / (size_t)gs) * (size_t)gs;
      for (size_t off = 0; off < numel && !s; off += chunk) {
        size_t m = numel - off < chunk ? numel - off : chunk, g0 = off / (size_t)gs;
        s = mp_mlx_affine_dequantize((const uint8_t *)c->data + off / 8 * (size_t)bits,
                                     (const uint8_t *)sc->data + g0 * es, (const uint8_t *)bi->data + g0 * es,
                                     sc->dtype, m, bits, gs, buf);
        if (!s) mp_qerr_add(&e, (const uint8_t *)t->data + off * mp_dtype_size(t->dtype), t->dtype, buf, sc->dtype, m);
      }
    } else if (sc && !bi && sc->dtype == MP_U8 && c->dtype == MP_U32) {
      /* an MLX fp mode (mxfp4 / nvfp4 / mxfp8): the mode from the codes' and scales' widths */
      v->kind = "quantized";
      r->n_quantized++;
      int64_t k = t->ndim ? t->shape[t->ndim - 1] : 0;
      int64_t bits = k ? c->shape[c->ndim - 1] * 32 / k : 0,
              gs = sc->shape[sc->ndim - 1] ? k / sc->shape[sc->ndim - 1] : 0;
      mp_qmode mode = bits == 8 ? MP_QMODE_MXFP8 : gs == 16 ? MP_QMODE_NVFP4 : MP_QMODE_MXFP4;
      int ok = c->ndim == t->ndim && sc->ndim == t->ndim && k > 0 && mp_mlx_quant_supported(mode, (int)bits, (int)gs) &&
               c->shape[t->ndim - 1] * 32 == bits * k && sc->shape[t->ndim - 1] * gs == k;
      for (int d = 0; ok && d < t->ndim - 1; d++)
        ok = c->shape[d] == t->shape[d] && sc->shape[d] == t->shape[d];
      if (!ok) {
        v->kind = "shape mismatch";
        v->max_abs = v->rms = v->rel_rms = v->snr_db = NAN;
        v->pass = 0;
        continue;
      }
      v->bits = (int)bits, v->group_size = (int)gs;
      float *fb = buf;
      for (size_t off = 0; off < numel; off += CHUNK) {
        size_t m = numel - off < CHUNK ? numel - off : CHUNK;
        for (size_t i2 = 0; i2 < m; i2++)
          fb[i2] = mp_mlx_fp_value(c->data, sc->data, mode, off + i2);
        mp_qerr_add(&e, (const uint8_t *)t->data + off * mp_dtype_size(t->dtype), t->dtype, fb, MP_F32, m);
      }
    } else {
      v->kind = "float";
      int ok = c->ndim == t->ndim && mp_mlx_is_float(c->dtype);
      for (int d = 0; ok && d < t->ndim; d++)
        ok = c->shape[d] == t->shape[d];
      if (!ok) {
        v->kind = "shape mismatch";
        v->max_abs = v->rms = v->rel_rms = v->snr_db = NAN;
        v->pass = 0;
        continue;
      }
      mp_qerr_add(&e, t->data, t->dtype, c->data, c->dtype, numel);
    }
    mp_qerr_finish(&e);
    finish(v, &e, o);
  }
  /* converted tensors that match nothing in the original */
  for (size_t i = 0; !s && i < mp_weights_count(cw); i++) {
    const char *nm = mp_weights_at(cw, i)->name;
    if (mp_weights_find(ow, nm)) continue;
    size_t l = strlen(nm);
    if (l > 7 && (!strcmp(nm + l - 7, ".scales") || !strcmp(nm + l - 7, ".biases"))) continue;
    r->n_extra++;
  }
  if (!s) {
    qsort(r->t, r->n, sizeof *r->t, cmp_t);
    for (size_t i = 0; i < r->n; i++)
      r->n_failed += !r->t[i].pass;
    r->pass = r->n_failed == 0 && r->n > 0;
  }
  free(buf);
  free(odir), free(cdir);
  mp_weights_close(ow);
  mp_weights_close(cw);
  mp_arena_free(&arena);
  if (s) mp_verify_report_free(r);
  return s;
}

char *mp_verify_report_json(const mp_verify_opts *o, const mp_verify_report *r) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_puts(&sb, "{\"original\": ");
  mp_sb_json_str(&sb, o->original, strlen(o->original));
  mp_sb_puts(&sb, ", \"converted\": ");
  mp_sb_json_str(&sb, o->converted, strlen(o->converted));
  mp_sb_puts(&sb, ", \"thresholds\": {\"max_rel_rms\": ");
  mp_sb_json_f64(&sb, o->max_rel_rms > 0 ? o->max_rel_rms : 0.2);
  mp_sb_puts(&sb, ", \"min_snr_db\": ");
  if (o->min_snr_db != 0)
    mp_sb_json_f64(&sb, o->min_snr_db);
  else
    mp_sb_puts(&sb, "null");
  mp_sb_printf(&sb,
               "}, \"verdict\": \"%s\", \"tensors_compared\": %zu, \"quantized\": %zu, \"failed\": %zu, "
               "\"extra_in_converted\": %zu, \"tensors\": [",
               r->pass ? "pass" : "fail", r->n, r->n_quantized, r->n_failed, r->n_extra);
  for (size_t i = 0; i < r->n; i++) {
    const mp_verify_tensor *t = &r->t[i];
    mp_sb_puts(&sb, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
    mp_sb_json_str(&sb, t->name, strlen(t->name));
    mp_sb_printf(&sb, ", \"kind\": \"%s\"", t->kind);
    if (t->bits) mp_sb_printf(&sb, ", \"bits\": %d, \"group_size\": %d", t->bits, t->group_size);
    mp_sb_puts(&sb, ", \"max_abs_err\": ");
    mp_sb_json_f64(&sb, t->max_abs);
    mp_sb_puts(&sb, ", \"rms_err\": ");
    mp_sb_json_f64(&sb, t->rms);
    mp_sb_puts(&sb, ", \"rel_rms_err\": ");
    mp_sb_json_f64(&sb, t->rel_rms);
    mp_sb_puts(&sb, ", \"snr_db\": ");
    mp_sb_json_f64(&sb, t->snr_db);
    mp_sb_printf(&sb, ", \"pass\": %s}", t->pass ? "true" : "false");
  }
  mp_sb_puts(&sb, "\n]}\n");
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}
