/* ModernBERT encoders (model_type "modernbert") with ModernBertForSequenceClassification's head,
 * computed as transformers 4.48 does (eager attention, the path used on CPU):
 *   embeddings: tok_embeddings -> LayerNorm(norm_eps, bias when norm_bias) (no positions);
 *   pre-norm layers: x += Wo(attn(attn_norm(x))) (attn_norm is the identity in layer 0);
 *     x += mlp.Wo(act(in) * gate) with [in | gate] = mlp.Wi(mlp_norm(x)) (GeGLU);
 *   attention: fused Wqkv -> rotary embeddings on q and k (rotate_half convention, theta =
 *     global_rope_theta on global layers, local_rope_theta on local ones) -> softmax(q k^T /
 *     sqrt(d)) v; layer l is global when l % global_attn_every_n_layers == 0, else local
 *     (5.x schema: layer_types[l] "full_attention" / "sliding_attention"; rope_parameters'
 *     per-type rope_theta, see read_rope):
 *     a query i sees keys j with |i - j| <= local_attention / 2 (and the padding mask);
 *   final_norm; head: classifier_pooling ("cls": token 0, "mean": mean over the attention
 *     mask) -> head.dense (+bias when classifier_bias) -> classifier_activation -> head.norm
 *     -> classifier (with bias).
 * Long inputs: attention never materializes T x T scores for all heads. It runs one head and
 * one block of queries at a time (GLOBAL_QB rows against all T keys on global layers, LOCAL_QB
 * rows against only the LOCAL_QB + 2 half keys their windows reach on local layers), with the
 * GEMM kernel for Q K^T and P V and a row softmax in between; scratch is O(GLOBAL_QB * T) and
 * activations O(T * (hidden + intermediate)). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/layers.h"
#include "model/model_internal.h"

#define LOCAL_QB 128    /* query rows per block in local layers */
#define GLOBAL_QB 256   /* query rows per block in global layers */
#define CHUNK_ROWS 4096 /* rows per Wqkv/attention group (whole sequences) and per MLP chunk */

typedef struct mlayer {
  int has_attn_norm, local;
  mp_lnorm attn_norm, mlp_norm;
  mp_dense wqkv, wo;
  mp_dense wi_in, wi_gate; /* the two halves of mlp.Wi */
  mp_dense mlp_wo;
} mlayer;

typedef struct modernbert {
  char prefix[16]; /* "model." or "" */
  mp_linear_weight tok;
  mp_lnorm emb_norm, final_norm;
  mlayer *layers;
  float eps;
  mp_act act, head_act;
  int64_t half; /* local_attention / 2 */
  double theta_global, theta_local;
  double factor_global, factor_local; /* rope_type "linear": inv_freq / factor; else 1 */
  int pool_mean;
  mp_dense head_dense, classifier;
  mp_lnorm head_norm;
} modernbert;

/* A dense layer whose bias exists exactly when `has_bias` (transformers' *_bias flags). */
static mp_status bind_lin(mp_model *m, const char *name, int64_t out, int64_t in, int has_bias, mp_dense *d) {
  MP_TRY(mp_bind_dense(m, name, out, in, 1, d));
  if (!has_bias) {
    d->b = NULL;
  } else if (!d->b) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s.bias", name);
    return mp_model_missing(m, buf);
  }
  return MP_OK;
}

static mp_status bind_norm(mp_model *m, const char *name, int64_t n, int has_bias, mp_lnorm *ln) {
  MP_TRY(mp_bind_ln(m, name, n, 1, ln));
  if (!has_bias) {
    ln->b = NULL;
  } else if (!ln->b) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s.bias", name);
    return mp_model_missing(m, buf);
  }
  return MP_OK;
}

/* Rows [r0, r0 + n) of a dense layer (float or MLX-quantized) as a dense layer of its own. */
static mp_status split_rows(mp_model *m, const mp_dense *src, int64_t r0, int64_t n, mp_dense *dst) {
  *dst = *src;
  mp_linear_weight *w = &dst->w;
  w->out = n;
  if (w->bits) {
    int64_t words = w->in * w->bits / 32, groups = w->in / w->group_size;
    size_t ss = mp_dtype_size(w->scale_dtype);
    w->data = (const uint32_t *)w->data + r0 * words;
    w->scales = (const char *)w->scales + (size_t)(r0 * groups) * ss;
    w->biases = (const char *)w->biases + (size_t)(r0 * groups) * ss;
  } else {
    w->data = (const char *)w->data + (size_t)(r0 * w->in) * mp_dtype_size(w->dtype);
  }
  if (dst->b) dst->b = (const char *)dst->b + (size_t)r0 * mp_dtype_size(dst->bdt);
  mp_status st = mp_linear_weight_check(w);
  if (st) return mp_err_prefix(st, "%s", m->path);
  return mp_dense_pack(m, dst); /* the slice's own integer form (fast mode) */
}

static int64_t cfg_int(const mp_json *cj, const char *key, int64_t dflt) { return mp_json_get_int(cj, key, dflt); }

/* One layer type's rotary parameters of the 5.x schema: {"rope_type": T, "rope_theta": x, ...}
 * ("type" is the older spelling of rope_type), as transformers 5.x's rope functions read them:
 *   "default": inv_freq = 1 / theta^(2i/d);
 *   "linear":  the default inv_freq / "factor";
 *   "dynamic": dynamic NTK, which changes theta only for inputs longer than
 *              max_position_embeddings; mlxport never runs those, so it is the default here.
 * Other types (yarn, longrope, llama3, ...) and partial rotary embeddings are refused. */
static mp_status rope_params_of(const char *path, const mp_json *rp, const char *layer_type, double *theta,
                                double *factor) {
  const mp_json *p = mp_json_get(rp, layer_type);
  if (!p || p->type == MP_JSON_NULL) return MP_OK; /* the 4.x key or the default applies */
  if (p->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s/config.json:%u: rope_parameters.%s must be an object", path, p->line, layer_type);
  const mp_json *t = mp_json_get(p, "rope_type");
  const char *tkey = "rope_type";
  if (!t || t->type == MP_JSON_NULL) t = mp_json_get(p, "type"), tkey = "type";
  const char *type = "default";
  if (t && t->type != MP_JSON_NULL) {
    if (t->type != MP_JSON_STRING ||
        (strcmp(t->str, "default") && strcmp(t->str, "linear") && strcmp(t->str, "dynamic")))
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s/config.json:%u: rope_parameters.%s.%s \"%s\" is not implemented (only \"default\", "
                    "\"linear\" and \"dynamic\" rotary embeddings are); the model cannot be run by mlxport",
                    path, t->line, layer_type, tkey, t->type == MP_JSON_STRING ? t->str : "?");
    type = t->str;
  }
  for (size_t i = 0; i < p->len; i++) {
    const char *k = p->keys[i];
    const mp_json *v = p->items[i];
    if (!strcmp(k, "rope_type") || !strcmp(k, "type")) continue;
    if (!strcmp(k, "rope_theta")) {
      if (v->type != MP_JSON_NUMBER || !(v->num > 0))
        return mp_err(MP_ERR_FORMAT, "%s/config.json:%u: rope_parameters.%s.rope_theta must be a positive number", path,
                      v->line, layer_type);
      *theta = v->num;
    } else if (!strcmp(k, "factor") && strcmp(type, "default") != 0) {
      if (v->type != MP_JSON_NUMBER || !(v->num > 0))
        return mp_err(MP_ERR_FORMAT, "%s/config.json:%u: rope_parameters.%s.factor must be a positive number", path,
                      v->line, layer_type);
      if (!strcmp(type, "linear")) *factor = v->num;
    } else {
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s/config.json:%u: rope_parameters.%s.%s is not understood by mlxport for rope_type \"%s\" "
                    "(rope_theta, and factor for linear / dynamic, are); it may change the rotary embeddings, so the "
                    "model is not loaded",
                    path, v->line, layer_type, k, type);
    }
  }
  if (strcmp(type, "default") != 0 && !mp_json_get(p, "factor"))
    return mp_err(MP_ERR_FORMAT, "%s/config.json:%u: rope_parameters.%s: rope_type \"%s\" needs a \"factor\"", path,
                  p->line, layer_type, type);
  return MP_OK;
}

/* Rotary thetas of global (full_attention) and local (sliding_attention) layers. 4.x schema:
 * global_rope_theta (default 160000), local_rope_theta (default 10000; null: the global theta).
 * 5.x schema: rope_parameters.{full_attention,sliding_attention}.rope_theta, which take precedence
 * over the 4.x keys (transformers 5.x reads the 4.x keys only where rope_parameters has no theta).
 * rope_scaling (the 4.x spelling of a scaled rope), a per-type rope_type that rope_params_of does
 * not implement and a head_dim other than hidden_size / num_attention_heads are refused. */
static mp_status read_rope(const char *path, const mp_json *cj, int64_t d, modernbert *f) {
  const mp_json *rs = mp_json_get(cj, "rope_scaling");
  if (rs && rs->type != MP_JSON_NULL)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s/config.json:%u: rope_scaling (scaled rotary embeddings) is not "
                  "implemented; only the default rotary embeddings are",
                  path, rs->line);
  const mp_json *hd = mp_json_get(cj, "head_dim");
  if (hd && hd->type != MP_JSON_NULL && !(hd->type == MP_JSON_NUMBER && hd->is_int && hd->i == d))
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s/config.json:%u: head_dim other than hidden_size / num_attention_heads "
                  "(%lld) is not supported",
                  path, hd->line, (long long)d);
  f->factor_global = f->factor_local = 1.0;
  f->theta_global = mp_json_get_num(cj, "global_rope_theta", 160000.0);
  const mp_json *lt = mp_json_get(cj, "local_rope_theta");
  f->theta_local = (lt && lt->type == MP_JSON_NUMBER) ? lt->num : (lt ? f->theta_global : 10000.0);
  const mp_json *rp = mp_json_get(cj, "rope_parameters");
  if (rp && rp->type != MP_JSON_NULL) {
    if (rp->type != MP_JSON_OBJECT)
      return mp_err(MP_ERR_FORMAT, "%s/config.json:%u: rope_parameters must be an object", path, rp->line);
    for (size_t i = 0; i < rp->len; i++)
      if (strcmp(rp->keys[i], "full_attention") && strcmp(rp->keys[i], "sliding_attention"))
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s/config.json:%u: rope_parameters.%s: ModernBERT's rope_parameters map the layer types "
                      "\"full_attention\" and \"sliding_attention\" to {rope_type, rope_theta}; other keys are "
                      "not understood",
                      path, rp->items[i]->line, rp->keys[i]);
    MP_TRY(rope_params_of(path, rp, "full_attention", &f->theta_global, &f->factor_global));
    MP_TRY(rope_params_of(path, rp, "sliding_attention", &f->theta_local, &f->factor_local));
  }
  if (!(f->theta_global > 0) || !(f->theta_local > 0))
    return mp_err(MP_ERR_FORMAT, "%s/config.json: the global and local rope thetas must be positive", path);
  return MP_OK;
}

static mp_status modernbert_bind(mp_model *m) {
  char path_cfg[4200];
  snprintf(path_cfg, sizeof path_cfg, "%s/config.json", m->path);
  const mp_model_config *c = &m->cfg;
  const mp_json *cj = m->cfg_json;
  modernbert *f = calloc(1, sizeof *f);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  m->fam = f;
  if (mp_model_tensor(m, "model.embeddings.tok_embeddings.weight")) snprintf(f->prefix, sizeof f->prefix, "model.");
  const char *P = f->prefix;
  char n[256];
  const int64_t H = c->hidden, I = c->intermediate, NH = c->heads, d = H / NH;
  if (d % 2)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s/config.json: head size %lld (hidden_size / num_attention_heads) is odd; "
                  "rotary embeddings need an even head size",
                  m->path, (long long)d);
  MP_TRY(read_rope(m->path, cj, H / NH, f));
  f->eps = (float)mp_json_get_num(cj, "norm_eps", 1e-5);
  const int norm_bias = mp_json_get_bool(cj, "norm_bias", 0), attn_bias = mp_json_get_bool(cj, "attention_bias", 0),
            mlp_bias = mp_json_get_bool(cj, "mlp_bias", 0), cls_bias = mp_json_get_bool(cj, "classifier_bias", 0);
  MP_TRY(mp_act_from_config(path_cfg, "hidden_activation", mp_json_get_str(cj, "hidden_activation", "gelu"), &f->act));
  int64_t every = cfg_int(cj, "global_attn_every_n_layers", 3);
  int64_t local = cfg_int(cj, "local_attention", 128);
  if (every < 1 || local < 0)
    return mp_err(MP_ERR_FORMAT,
                  "%s/config.json: global_attn_every_n_layers must be >= 1 and local_attention >= 0 "
                  "(got %lld and %lld)",
                  m->path, (long long)every, (long long)local);
  /* 5.x: sliding_window is the half window (local_attention / 2); setting it sets local_attention */
  const mp_json *sw = mp_json_get(cj, "sliding_window");
  if (sw && sw->type != MP_JSON_NULL) {
    if (sw->type != MP_JSON_NUMBER || !sw->is_int || sw->i < 0)
      return mp_err(MP_ERR_FORMAT, "%s/config.json: sliding_window must be a non-negative integer", m->path);
    if (mp_json_get(cj, "local_attention") && local / 2 != sw->i)
      return mp_err(MP_ERR_FORMAT,
                    "%s/config.json: sliding_window %lld disagrees with local_attention %lld (it must "
                    "be local_attention / 2); keep one of the two",
                    m->path, (long long)sw->i, (long long)local);
    local = 2 * sw->i;
  }
  f->half = local / 2;
  /* 5.x: layer_types ("full_attention" / "sliding_attention" per layer) takes precedence over
   * global_attn_every_n_layers, as in transformers 5.x; 4.x ignores layer_types */
  const mp_json *lts = mp_json_get(cj, "layer_types");
  if (lts && lts->type != MP_JSON_NULL) {
    if (lts->type != MP_JSON_ARRAY || (int64_t)lts->len != c->layers)
      return mp_err(MP_ERR_FORMAT,
                    "%s/config.json:%u: layer_types must list one of \"full_attention\" / "
                    "\"sliding_attention\" per layer (%lld layers)",
                    m->path, lts->line, (long long)c->layers);
    for (size_t i = 0; i < lts->len; i++) {
      const mp_json *e = lts->items[i];
      if (e->type != MP_JSON_STRING || (strcmp(e->str, "full_attention") && strcmp(e->str, "sliding_attention")))
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s/config.json:%u: layer_types[%zu] is not \"full_attention\" or "
                      "\"sliding_attention\" (the only ModernBERT layer types)",
                      m->path, e->line, i);
    }
  }

  snprintf(n, sizeof n, "%sembeddings.tok_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->vocab_size, H, &f->tok));
  snprintf(n, sizeof n, "%sembeddings.norm", P);
  MP_TRY(bind_norm(m, n, H, norm_bias, &f->emb_norm));
  f->layers = calloc((size_t)c->layers, sizeof *f->layers);
  if (!f->layers) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    mlayer *L = &f->layers[l];
    char base[96];
    snprintf(base, sizeof base, "%slayers.%lld.", P, (long long)l);
    L->local = lts && lts->type == MP_JSON_ARRAY ? !strcmp(lts->items[l]->str, "sliding_attention") : (l % every) != 0;
    if (l > 0) {
      snprintf(n, sizeof n, "%sattn_norm", base);
      MP_TRY(bind_norm(m, n, H, norm_bias, &L->attn_norm));
      L->has_attn_norm = 1;
    }
    snprintf(n, sizeof n, "%sattn.Wqkv", base);
    MP_TRY(bind_lin(m, n, 3 * H, H, attn_bias, &L->wqkv));
    snprintf(n, sizeof n, "%sattn.Wo", base);
    L->wo.raw_input = MP_INPUT_RAW; /* the attention's output */
    MP_TRY(bind_lin(m, n, H, H, attn_bias, &L->wo));
    snprintf(n, sizeof n, "%smlp_norm", base);
    MP_TRY(bind_norm(m, n, H, norm_bias, &L->mlp_norm));
    mp_dense wi;
    memset(&wi, 0, sizeof wi);
    snprintf(n, sizeof n, "%smlp.Wi", base);
    MP_TRY(bind_lin(m, n, 2 * I, H, mlp_bias, &wi));
    MP_TRY(split_rows(m, &wi, 0, I, &L->wi_in));
    MP_TRY(split_rows(m, &wi, I, I, &L->wi_gate));
    mp_dense_drop_pack(m, &wi); /* only the halves run */
    snprintf(n, sizeof n, "%smlp.Wo", base);
    /* the GeGLU product: its 8-bit copy comes from the device's mul_rows where it has one */
    L->mlp_wo.raw_input = MP_INPUT_MUL_ROWS;
    MP_TRY(bind_lin(m, n, H, I, mlp_bias, &L->mlp_wo));
  }
  snprintf(n, sizeof n, "%sfinal_norm", P);
  MP_TRY(bind_norm(m, n, H, norm_bias, &f->final_norm));
  if (c->head == MP_HEAD_SEQ_CLS) {
    const char *pool = mp_json_get_str(cj, "classifier_pooling", "cls");
    if (!strcmp(pool, "mean"))
      f->pool_mean = 1;
    else if (strcmp(pool, "cls") != 0)
      return mp_err(MP_ERR_UNSUPPORTED, "%s/config.json: classifier_pooling \"%s\" is not supported (cls, mean)",
                    m->path, pool);
    MP_TRY(mp_act_from_config(path_cfg, "classifier_activation", mp_json_get_str(cj, "classifier_activation", "gelu"),
                              &f->head_act));
    MP_TRY(bind_lin(m, "head.dense", H, H, cls_bias, &f->head_dense));
    MP_TRY(bind_norm(m, "head.norm", H, norm_bias, &f->head_norm));
    MP_TRY(bind_lin(m, "classifier", c->num_labels, H, 1, &f->classifier));
    m->has_head = 1;
  }
  return MP_OK;
}

/* ---- rotary embeddings: q and k of every row, in place in the fused [N, 3H] qkv buffer */
typedef struct rope_task {
  float *qkv;
  int64_t T, H, NH, d;
  const float *cs; /* [T][d/2] cos then [T][d/2] sin */
} rope_task;

static void rope_rows(void *ctx, int64_t row, int thread) {
  (void)thread;
  const rope_task *a = ctx;
  const int64_t half = a->d / 2, p = row % a->T;
  const float *cosr = a->cs + p * half, *sinr = a->cs + (a->T + p) * half;
  float *base = a->qkv + row * 3 * a->H;
  for (int qk = 0; qk < 2; qk++)
    for (int64_t h = 0; h < a->NH; h++) {
      float *v = base + qk * a->H + h * a->d;
      for (int64_t i = 0; i < half; i++) {
        /* q * cos + rotate_half(q) * sin, rotate_half(q) = [-q2, q1] */
        float x1 = v[i], x2 = v[i + half];
        float a1 = x1 * cosr[i], b1 = -x2 * sinr[i];
        float a2 = x2 * cosr[i], b2 = x1 * sinr[i];
        v[i] = a1 + b1;
        v[i + half] = a2 + b2;
      }
    }
}

/* cos/sin tables [T][d/2] for one theta, in float32 like transformers' default rope:
 * inv_freq = 1 / theta^(2i/d) (divided by the linear rope factor), angle = inv_freq * position. */
static void rope_table(double theta, double factor, int64_t T, int64_t d, float *cs) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; i++) {
    float e = (float)(2 * i) / (float)d;
    float inv = 1.0f / powf((float)theta, e);
    if (factor != 1.0) inv /= (float)factor;
    for (int64_t p = 0; p < T; p++) {
      float ang = inv * (float)p;
      cs[p * half + i] = cosf(ang);
      cs[(T + p) * half + i] = sinf(ang);
    }
  }
}

/* ---- attention without T x T scores: per (sequence, head, block of queries), scores
 * S = (scale Q) K^T against the keys the block can reach (all keys on global layers, the
 * window span on local ones) with the GEMM kernel, -inf outside the window and on padded
 * keys, row softmax, then S V. Scratch: one head's K [T, d] and V^T [d, T], one block. */
typedef struct att_bufs {
  int64_t nseq, T, H, NH, d, half;
  float *kh, *vt, *vtb, *qh, *oh, *s, *madd;
} att_bufs;

static mp_status attend(mp_model *m, const att_bufs *a, const float *qkv, const uint8_t *kmask, int local, float *ctx) {
  const int64_t T = a->T, H = a->H, d = a->d;
  const int64_t QB = local ? LOCAL_QB : GLOBAL_QB;
  const float scale = 1.0f / sqrtf((float)d);
  const int64_t nseq = a->nseq;
  for (int64_t r = 0; r < nseq; r++) {
    const float *base = qkv + r * T * 3 * H;
    const uint8_t *km = kmask + r * T;
    for (int64_t j = 0; j < T; j++)
      a->madd[j] = km[j] ? 0.0f : -INFINITY;
    for (int64_t hh = 0; hh < a->NH; hh++) {
      for (int64_t j = 0; j < T; j++) {
        const float *kr = base + j * 3 * H + H + hh * d, *vr = base + j * 3 * H + 2 * H + hh * d;
        memcpy(a->kh + j * d, kr, (size_t)d * sizeof(float));
        for (int64_t e = 0; e < d; e++)
          a->vt[e * T + j] = vr[e];
      }
      for (int64_t q0 = 0; q0 < T; q0 += QB) {
        const int64_t qn = T - q0 < QB ? T - q0 : QB;
        int64_t k0 = 0, k1 = T;
        if (local) {
          k0 = q0 - a->half > 0 ? q0 - a->half : 0;
          k1 = q0 + qn + a->half < T ? q0 + qn + a->half : T;
        }
        const int64_t nk = k1 - k0;
        for (int64_t i = 0; i < qn; i++) {
          const float *qr = base + (q0 + i) * 3 * H + hh * d;
          for (int64_t e = 0; e < d; e++)
            a->qh[i * d + e] = qr[e] * scale;
        }
        mp_linear_weight kw = {.name = "attention keys", .out = nk, .in = d, .dtype = MP_F32, .data = a->kh + k0 * d};
        MP_TRY(mp_linear(m->pool, a->qh, qn, &kw, NULL, MP_F32, a->s));
        const float *vdata = a->vt;
        if (local) {
          for (int64_t i = 0; i < qn;
               i++) { /* key k0 + j is in the window of query q0 + i iff |q0 + i - k0 - j| <= half */
            float *sr = a->s + i * nk;
            const int64_t lo = q0 + i - a->half - k0, hi = q0 + i + a->half - k0;
            for (int64_t j = 0; j < nk; j++)
              if (j < lo || j > hi) sr[j] = -INFINITY;
          }
          if (nk != T) {
            for (int64_t e = 0; e < d; e++)
              memcpy(a->vtb + e * nk, a->vt + e * T + k0, (size_t)nk * sizeof(float));
            vdata = a->vtb;
          }
        }
        mp_softmax_rows(m->pool, a->s, qn, nk, a->madd + k0);
        mp_linear_weight vw = {.name = "attention values", .out = d, .in = nk, .dtype = MP_F32, .data = vdata};
        MP_TRY(mp_linear(m->pool, a->s, qn, &vw, NULL, MP_F32, a->oh));
        for (int64_t i = 0; i < qn; i++)
          memcpy(ctx + (r * T + q0 + i) * H + hh * d, a->oh + i * d, (size_t)d * sizeof(float));
      }
    }
  }
  return MP_OK;
}

static mp_status modernbert_encode(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden) {
  modernbert *f = m->fam;
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, I = c->intermediate, N = B * T;
  const int64_t NH = c->heads, d = H / NH;
  const int64_t half = f->half < T ? f->half : T; /* a window wider than the input is the whole input */
  float *x = mp_act_alloc(m, (size_t)(N * H));
  float *h = mp_act_alloc(m, (size_t)(N * H));
  float *ctx = mp_act_alloc(m, (size_t)(N * H));
  /* row chunks bound the large buffers for long batches: whole sequences for Wqkv/attention,
   * CHUNK_ROWS rows for the MLP */
  /* (on a device: one group, one chunk; the attention is fused) */
  const int64_t G = m->dev ? B : T >= CHUNK_ROWS ? 1 : (CHUNK_ROWS / T < B ? CHUNK_ROWS / T : B);
  const int64_t CR = m->dev ? N : N < CHUNK_ROWS ? N : CHUNK_ROWS;
  float *qkv = mp_act_alloc(m, (size_t)(G * T * 3 * H));
  float *ga = mp_act_alloc(m, (size_t)(CR * I));
  float *gb = mp_act_alloc(m, (size_t)(CR * I));
  /* rotary tables on the host (copied to a device) */
  float *cs_g = m->dev ? mp_arena_alloc_aligned(&m->act, (size_t)(T * d) * 4, 64) : mp_act_alloc(m, (size_t)(T * d));
  float *cs_l = m->dev ? mp_arena_alloc_aligned(&m->act, (size_t)(T * d) * 4, 64) : mp_act_alloc(m, (size_t)(T * d));
  att_bufs ab = {.nseq = B, .T = T, .H = H, .NH = NH, .d = d, .half = half};
  const int64_t QB = T < GLOBAL_QB ? T : GLOBAL_QB, W = T < LOCAL_QB + 2 * half ? T : LOCAL_QB + 2 * half;
  ab.kh = mp_act_alloc(m, (size_t)(T * d));
  ab.vt = mp_act_alloc(m, (size_t)(T * d));
  ab.vtb = mp_act_alloc(m, (size_t)(W * d));
  ab.qh = mp_act_alloc(m, (size_t)(QB * d));
  ab.oh = mp_act_alloc(m, (size_t)(QB * d));
  ab.s = mp_act_alloc(m, (size_t)(QB * T));
  ab.madd = mp_act_alloc(m, (size_t)T);
  if (!x || !h || !ctx || !qkv || !ga || !gb || !cs_g || !cs_l || !ab.kh || !ab.vt || !ab.vtb || !ab.qh || !ab.oh ||
      !ab.s || !ab.madd)
    return mp_batch_nomem(b);
  mp_enc_inputs in;
  MP_TRY(mp_encode_inputs(m, b, MP_POS_NONE, 0, 0, &in));
  uint8_t *kmask = in.kmask;
  rope_table(f->theta_global, f->factor_global, T, d, cs_g);
  rope_table(f->theta_local, f->factor_local, T, d, cs_l);
  const float *dcs_g = NULL, *dcs_l = NULL;
  float *dq = NULL, *dk = NULL, *dv = NULL;
  if (m->dev) {
    dcs_g = m->dev->upload_act(m->dev_ctx, cs_g, (size_t)(T * d) * 4);
    dcs_l = m->dev->upload_act(m->dev_ctx, cs_l, (size_t)(T * d) * 4);
    dq = mp_act_alloc(m, (size_t)(N * H)), dk = mp_act_alloc(m, (size_t)(N * H)), dv = mp_act_alloc(m, (size_t)(N * H));
    if (!dcs_g || !dcs_l || !dq || !dk || !dv) return mp_batch_nomem(b);
  }
  const mp_linear_weight *tab = &f->tok;
  const int32_t *ids = b->ids;
  MP_TRY(mp_embed_sum_ln(m, 1, &tab, &ids, N, &f->emb_norm, f->eps, x));
  MP_TRY(mp_layer_report(m, out, 0, x, b, H));

  for (int64_t l = 0; l < c->layers; l++) {
    const mlayer *L = &f->layers[l];
    const float *xin = x;
    if (L->has_attn_norm) {
      MP_TRY(mp_ln_run(m, x, NULL, N, &L->attn_norm, f->eps, h));
      xin = h;
    }
    for (int64_t g0 = 0; g0 < B; g0 += G) {
      const int64_t gn = B - g0 < G ? B - g0 : G, rows = gn * T;
      if (m->dev) { /* G = B: one group */
        MP_TRY(mp_dense_run(m, xin, rows, &L->wqkv, MP_ACT_NONE, qkv));
        MP_TRY(m->dev->rope_split(m->dev_ctx, qkv, rows, T, H, d, L->local ? dcs_l : dcs_g, dq, dk, dv));
        mp_attention_args aa = {.batch = B,
                                .seq_q = T,
                                .seq_k = T,
                                .heads = NH,
                                .head_dim = d,
                                .q = dq,
                                .k = dk,
                                .v = dv,
                                .out = ctx,
                                .scale = 1.0f / sqrtf((float)d),
                                .key_mask = kmask};
        mp_attn_rel rel = {.window = L->local ? half : 0};
        if (L->local && half < 1) rel.window = -1; /* never: half >= 1 when local */
        MP_TRY(mp_attention_rel_run(m, &aa, &rel));
        continue;
      }
      MP_TRY(mp_dense_run(m, xin + g0 * T * H, rows, &L->wqkv, MP_ACT_NONE, qkv));
      rope_task rt = {.qkv = qkv, .T = T, .H = H, .NH = NH, .d = d, .cs = L->local ? cs_l : cs_g};
      mp_pool_run(m->pool, rows, rope_rows, &rt);
      att_bufs ag = ab;
      ag.nseq = gn;
      MP_TRY(attend(m, &ag, qkv, kmask + g0 * T, L->local, ctx + g0 * T * H));
    }
    MP_TRY(mp_dense_run(m, ctx, N, &L->wo, MP_ACT_NONE, h));
    MP_TRY(mp_binary_run(m, x, h, N * H, 0));
    /* GeGLU MLP, CR rows at a time */
    MP_TRY(mp_ln_run(m, x, NULL, N, &L->mlp_norm, f->eps, h));
    for (int64_t r0 = 0; r0 < N; r0 += CR) {
      const int64_t rn = N - r0 < CR ? N - r0 : CR;
      MP_TRY(mp_dense_run(m, h + r0 * H, rn, &L->wi_in, f->act, ga));
      MP_TRY(mp_dense_run(m, h + r0 * H, rn, &L->wi_gate, MP_ACT_NONE, gb));
      MP_TRY(mp_mul_rows_run(m, ga, gb, rn, I));
      MP_TRY(mp_dense_run(m, ga, rn, &L->mlp_wo, MP_ACT_NONE, ctx + r0 * H)); /* r0 = 0 on a device */
    }
    MP_TRY(mp_binary_run(m, x, ctx, N * H, 0));
    /* transformers' hidden_states[l + 1]: the layer output before final_norm */
    MP_TRY(mp_layer_report(m, out, (int)l + 1, x, b, H));
  }
  MP_TRY(mp_ln_run(m, x, NULL, N, &f->final_norm, f->eps, h));
  *hidden = h;
  return MP_OK;
}

static mp_status modernbert_classify(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits) {
  modernbert *f = m->fam;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = m->cfg.hidden;
  float *pooled = mp_act_alloc(m, (size_t)(B * H)), *h1 = mp_act_alloc(m, (size_t)(B * H));
  if (!pooled || !h1) return mp_err(MP_ERR_NOMEM, "out of memory");
  if (m->dev) {
    const int64_t NL = f->classifier.w.out;
    float *lg = mp_act_alloc(m, (size_t)(B * NL));
    const int32_t *dmask = b->mask ? m->dev->upload_act(m->dev_ctx, b->mask, (size_t)(B * T) * 4) : NULL;
    if (!lg || (b->mask && !dmask)) return MP_ERR_NOMEM;
    if (f->pool_mean)
      MP_TRY(m->dev->mean_rows(m->dev_ctx, hidden, B, T, H, dmask, pooled));
    else
      MP_TRY(m->dev->gather_rows(m->dev_ctx, hidden, B, T, H, pooled));
    MP_TRY(mp_dense_run(m, pooled, B, &f->head_dense, f->head_act, h1));
    MP_TRY(mp_ln_run(m, h1, NULL, B, &f->head_norm, f->eps, h1));
    MP_TRY(mp_dense_run(m, h1, B, &f->classifier, MP_ACT_NONE, lg));
    return mp_logits_to_host(m, lg, B * NL, logits);
  }
  for (int64_t r = 0; r < B; r++) {
    float *pr = pooled + r * H;
    const float *hr = hidden + r * T * H;
    if (!f->pool_mean) {
      memcpy(pr, hr, (size_t)H * sizeof(float)); /* first token */
      continue;
    }
    memset(pr, 0, (size_t)H * sizeof(float));
    float cnt = 0.0f;
    for (int64_t t = 0; t < T; t++) {
      if (b->mask && !b->mask[r * T + t]) continue;
      cnt += 1.0f;
      for (int64_t j = 0; j < H; j++)
        pr[j] += hr[t * H + j];
    }
    if (cnt < 1.0f) cnt = 1.0f;
    for (int64_t j = 0; j < H; j++)
      pr[j] /= cnt;
  }
  MP_TRY(mp_dense_run(m, pooled, B, &f->head_dense, f->head_act, h1));
  mp_layernorm(m->pool, h1, NULL, B, H, f->head_norm.g, f->head_norm.b, f->eps, h1);
  return mp_dense_run(m, h1, B, &f->classifier, MP_ACT_NONE, logits);
}

static void modernbert_release(mp_model *m) {
  modernbert *f = m->fam;
  if (!f) return;
  free(f->layers);
  free(f);
  m->fam = NULL;
}

/* transformers' num_parameters() of ModernBertForSequenceClassification / ModernBertModel. */
static int64_t modernbert_param_count(const mp_model_config *c, const mp_json *cj) {
  const int64_t V = c->vocab_size, H = c->hidden, I = c->intermediate, L = c->layers;
  if (V <= 0 || H <= 0 || I <= 0 || L <= 0) return -1;
  if ((double)V * H + (double)L * (6.0 * H * H + 4.0 * I * H + 6.0 * H + 3.0 * I) + 4.0 * H * H > 4e18) return -1;
  const int64_t nb = mp_json_get_bool(cj, "norm_bias", 0), ab = mp_json_get_bool(cj, "attention_bias", 0),
                mb = mp_json_get_bool(cj, "mlp_bias", 0), cb = mp_json_get_bool(cj, "classifier_bias", 0);
  const int64_t norm = H * (1 + nb);
  int64_t n = V * H + norm; /* tok_embeddings + embeddings.norm */
  const int64_t attn = 3 * H * H + 3 * H * ab + H * H + H * ab;
  const int64_t mlp = 2 * I * H + 2 * I * mb + I * H + H * mb;
  n += L * (attn + mlp + norm) + (L - 1) * norm; /* mlp_norm in every layer, attn_norm from layer 1 */
  n += norm;                                     /* final_norm */
  if (c->head == MP_HEAD_SEQ_CLS) n += H * H + H * cb + norm + (int64_t)c->num_labels * (H + 1);
  return n;
}

const mp_family_ops mp_family_modernbert = {.name = "modernbert",
                                            .bind = modernbert_bind,
                                            .encode = modernbert_encode,
                                            .classify = modernbert_classify,
                                            .release = modernbert_release,
                                            .param_count = modernbert_param_count,
                                            .cuda = 1};
