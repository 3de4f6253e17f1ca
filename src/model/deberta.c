/* DeBERTa-v2/v3 encoders (model_type "deberta-v2") with DebertaV2ForSequenceClassification's
 * head, computed as transformers 4.46.3 does:
 *   embeddings: word (+ absolute positions when position_biased_input) (+ token types when
 *     type_vocab_size > 0) (-> embed_proj when embedding_size != hidden), LayerNorm, times the
 *     attention mask;
 *   disentangled self-attention: scores = (Q K^T + c2p + p2c) / sqrt(d * scale_factor) with
 *     scale_factor = 1 + |pos_att_type|, where
 *       c2p[i,j] = Q_i . Kr[clamp(bucket(i-j) + span, 0, 2 span - 1)]
 *       p2c[i,j] = K_j . Qr[clamp(-bucket(j-i) + span, 0, 2 span - 1)]
 *     Kr/Qr = key/query projections (share_att_key) or pos_key_proj/pos_query_proj of the
 *     relative embeddings (LayerNorm'ed when norm_rel_ebd has "layer_norm"); bucket() is
 *     make_log_bucket_position (float32 like torch) when position_buckets > 0;
 *   post-LayerNorm layers like BERT; ContextPooler (dense on token 0 + pooler_hidden_act) and
 *     the classifier.
 * The c2p + p2c terms are built per sequence as an additive bias [heads, T, T] for
 * mp_attention. Only the relative-embedding rows that T tokens can reach are projected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "model/layers.h"
#include "model/model_internal.h"

typedef struct dlayer {
  mp_dense q, k, v, o, inter, out;
  mp_dense pos_k, pos_q; /* !share_att_key only */
  mp_lnorm ln_attn, ln_out;
} dlayer;

typedef struct deberta {
  char prefix[16]; /* "deberta." or "" */
  int64_t emb_size;
  mp_linear_weight word, pos, type;
  int has_pos, has_type, has_proj;
  mp_dense proj; /* embed_proj (no bias) */
  mp_lnorm ln_emb;
  dlayer *layers;
  /* relative attention */
  int rel, c2p, p2c, share;
  int64_t span;      /* att_span = pos_ebd_size */
  int64_t buckets;   /* position_buckets (<= 0: none) */
  int64_t max_rel;   /* max_relative_positions */
  float *rel_emb;    /* [2 span, H] f32, LayerNorm applied when norm_rel_ebd has layer_norm */
  float score_scale; /* 1 / sqrt(d * scale_factor) */
  /* head */
  mp_dense pooler, classifier;
  mp_act pooler_act;
} deberta;

/* make_log_bucket_position for one relative distance, in float32 like torch. */
static int64_t log_bucket(int64_t rel, int64_t bucket_size, int64_t max_position) {
  int64_t mid = bucket_size / 2;
  int64_t sign = rel > 0 ? 1 : rel < 0 ? -1 : 0;
  int64_t abs_pos = (rel < mid && rel > -mid) ? mid - 1 : (rel < 0 ? -rel : rel);
  if (abs_pos <= mid) return rel;
  volatile float ratio = (float)abs_pos / (float)mid;
  volatile float denom = logf((float)((double)(max_position - 1) / (double)mid));
  volatile float t = logf(ratio) / denom;
  volatile float u = t * (float)(mid - 1);
  float log_pos = ceilf(u) + (float)mid;
  return (int64_t)(log_pos * (float)sign);
}

static int64_t rel_bucket(const deberta *f, int64_t rel) {
  return (f->buckets > 0 && f->max_rel > 0) ? log_bucket(rel, f->buckets, f->max_rel) : rel;
}

static int has_word(const mp_json *cfg, const char *key, const char *word) {
  const mp_json *v = mp_json_get(cfg, key);
  if (!v) return 0;
  if (v->type == MP_JSON_ARRAY) {
    for (size_t i = 0; i < v->len; i++)
      if (v->items[i]->type == MP_JSON_STRING && !strcmp(v->items[i]->str, word)) return 1;
    return 0;
  }
  if (v->type == MP_JSON_STRING) { /* "p2c|c2p" */
    const char *s = v->str;
    size_t n = strlen(word);
    while (*s) {
      while (*s == '|' || *s == ' ')
        s++;
      const char *e = s;
      while (*e && *e != '|')
        e++;
      const char *te = e;
      while (te > s && te[-1] == ' ')
        te--;
      if ((size_t)(te - s) == n && !strncasecmp(s, word, n)) return 1;
      s = e;
    }
  }
  return 0;
}

static mp_status deberta_bind(mp_model *m) {
  char path_cfg[4200];
  snprintf(path_cfg, sizeof path_cfg, "%s/config.json", m->path);
  const mp_model_config *c = &m->cfg;
  const mp_json *cj = m->cfg_json;
  deberta *f = calloc(1, sizeof *f);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  m->fam = f;
  if (mp_model_tensor(m, "deberta.embeddings.word_embeddings.weight"))
    snprintf(f->prefix, sizeof f->prefix, "deberta.");
  const char *P = f->prefix;
  char n[256];
  const int64_t H = c->hidden, I = c->intermediate, NH = c->heads;
  if (mp_json_get_int(cj, "conv_kernel_size", 0) > 0)
    return mp_err(MP_ERR_UNSUPPORTED, "%s/config.json: conv_kernel_size > 0 (DeBERTa ConvLayer) is not supported",
                  m->path);
  int64_t ahs = mp_json_get_int(cj, "attention_head_size", H / NH);
  if (ahs != H / NH)
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s/config.json: attention_head_size %lld != hidden_size / heads is not supported", m->path,
                  (long long)ahs);
  f->emb_size = mp_json_get_int(cj, "embedding_size", H);
  if (f->emb_size <= 0) return mp_err(MP_ERR_FORMAT, "%s/config.json: embedding_size must be positive", m->path);
  snprintf(n, sizeof n, "%sembeddings.word_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->vocab_size, f->emb_size, &f->word));
  if (mp_json_get_bool(cj, "position_biased_input", 1)) {
    snprintf(n, sizeof n, "%sembeddings.position_embeddings", P);
    MP_TRY(mp_bind_matrix(m, n, c->max_positions, f->emb_size, &f->pos));
    f->has_pos = 1;
  }
  if (c->type_vocab_size > 0) {
    snprintf(n, sizeof n, "%sembeddings.token_type_embeddings", P);
    MP_TRY(mp_bind_matrix(m, n, c->type_vocab_size, f->emb_size, &f->type));
    f->has_type = 1;
  }
  if (f->emb_size != H) {
    snprintf(n, sizeof n, "%sembeddings.embed_proj", P);
    MP_TRY(mp_bind_dense(m, n, H, f->emb_size, 1, &f->proj));
    f->has_proj = 1;
  }
  snprintf(n, sizeof n, "%sembeddings.LayerNorm", P);
  MP_TRY(mp_bind_ln(m, n, H, 0, &f->ln_emb));

  /* relative attention */
  f->rel = mp_json_get_bool(cj, "relative_attention", 0);
  f->c2p = has_word(cj, "pos_att_type", "c2p");
  f->p2c = has_word(cj, "pos_att_type", "p2c");
  f->share = mp_json_get_bool(cj, "share_att_key", 0);
  int scale_factor = 1 + f->c2p + f->p2c;
  f->score_scale = 1.0f / sqrtf((float)(H / NH) * (float)scale_factor);
  if (f->rel) {
    f->max_rel = mp_json_get_int(cj, "max_relative_positions", -1);
    if (f->max_rel < 1) f->max_rel = c->max_positions;
    f->buckets = mp_json_get_int(cj, "position_buckets", -1);
    f->span = f->buckets > 0 ? f->buckets : f->max_rel;
    if (f->span > (1 << 20))
      return mp_err(MP_ERR_FORMAT, "%s/config.json: position_buckets/max_relative_positions too large", m->path);
    mp_linear_weight re;
    snprintf(n, sizeof n, "%sencoder.rel_embeddings", P);
    MP_TRY(mp_bind_matrix(m, n, 2 * f->span, H, &re));
    f->rel_emb = mp_arena_alloc_aligned(&m->params, (size_t)(2 * f->span * H) * sizeof(float), 64);
    if (!f->rel_emb) return mp_err(MP_ERR_NOMEM, "out of memory");
    MP_TRY(mp_weight_rows_f32(&re, 0, 2 * f->span, f->rel_emb));
    if (has_word(cj, "norm_rel_ebd", "layer_norm")) {
      mp_lnorm ln;
      snprintf(n, sizeof n, "%sencoder.LayerNorm", P);
      MP_TRY(mp_bind_ln(m, n, H, 0, &ln));
      mp_layernorm(NULL, f->rel_emb, NULL, 2 * f->span, H, ln.g, ln.b, c->layer_norm_eps, f->rel_emb);
    }
  } else {
    f->c2p = f->p2c = 0;
  }

  f->layers = calloc((size_t)c->layers, sizeof *f->layers);
  if (!f->layers) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    dlayer *L = &f->layers[l];
    char base[96];
    snprintf(base, sizeof base, "%sencoder.layer.%lld.", P, (long long)l);
    static const char *const qkvo[4] = {"attention.self.query_proj", "attention.self.key_proj",
                                        "attention.self.value_proj", "attention.output.dense"};
    MP_TRY(mp_bind_qkvo(m, base, qkvo, H, &L->q, &L->k, &L->v, &L->o));
    if (f->rel && !f->share) {
      if (f->c2p) {
        snprintf(n, sizeof n, "%sattention.self.pos_key_proj", base);
        MP_TRY(mp_bind_dense(m, n, H, H, 1, &L->pos_k));
      }
      if (f->p2c) {
        snprintf(n, sizeof n, "%sattention.self.pos_query_proj", base);
        MP_TRY(mp_bind_dense(m, n, H, H, 1, &L->pos_q));
      }
    }
    snprintf(n, sizeof n, "%sattention.output.LayerNorm", base);
    MP_TRY(mp_bind_ln(m, n, H, 0, &L->ln_attn));
    MP_TRY(mp_bind_bert_ffn(m, base, H, I, &L->inter, &L->out, &L->ln_out));
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    int64_t PH = mp_json_get_int(cj, "pooler_hidden_size", H);
    if (PH != H)
      return mp_err(MP_ERR_UNSUPPORTED, "%s/config.json: pooler_hidden_size %lld != hidden_size is not supported",
                    m->path, (long long)PH);
    MP_TRY(mp_act_from_config(path_cfg, "pooler_hidden_act", mp_json_get_str(cj, "pooler_hidden_act", "gelu"),
                              &f->pooler_act));
    MP_TRY(mp_bind_dense(m, "pooler.dense", H, H, 0, &f->pooler));
    MP_TRY(mp_bind_dense(m, "classifier", c->num_labels, H, 0, &f->classifier));
    m->has_head = 1;
  }
  return MP_OK;
}

/* ---- disentangled bias for one sequence: bias[h][i][j] */
typedef struct bias_task {
  int64_t T, R;
  const float *c2p, *p2c;   /* [heads][T][R] or NULL */
  const int32_t *cix, *pix; /* [2T-1] indexed by (i - j) + T - 1: row of c2p / p2c in [0, R) */
  float scale;
  float *bias;
} bias_task;

static void bias_fill(void *ctx, int64_t task, int thread) {
  (void)thread;
  const bias_task *a = ctx;
  const int64_t T = a->T, R = a->R, h = task / T, i = task % T;
  float *out = a->bias + (h * T + i) * T;
  const float *cr = a->c2p ? a->c2p + (h * T + i) * R : NULL;
  const float *ph = a->p2c ? a->p2c + h * T * R : NULL;
  for (int64_t j = 0; j < T; j++) {
    const int64_t dd = i - j + T - 1;
    float s = 0.0f;
    if (cr) s += cr[a->cix[dd]] * a->scale;
    if (ph) s += ph[j * R + a->pix[dd]] * a->scale;
    out[j] = s;
  }
}

/* Copies head h of rows [T, heads*d] into a contiguous [T, d] block. */
static void head_slice(const float *x, int64_t T, int64_t H, int64_t d, int64_t h, float *out) {
  for (int64_t t = 0; t < T; t++)
    memcpy(out + t * d, x + t * H + h * d, (size_t)d * sizeof(float));
}

static mp_status deberta_encode(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden) {
  deberta *f = m->fam;
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, I = c->intermediate, N = B * T;
  const int64_t NH = c->heads, d = H / NH, E = f->emb_size;
  /* on a device: one fused GEMM for q, k, v into qkv [N, 3H] (then no separate k, v) */
  const int fused = c->layers > 0 && mp_qkv_fusable(m, &f->layers[0].q, &f->layers[0].k, &f->layers[0].v);
  float *x = mp_act_alloc(m, (size_t)(N * H));
  float *q = mp_act_alloc(m, (size_t)(N * H));
  float *k = fused ? NULL : mp_act_alloc(m, (size_t)(N * H));
  float *v = fused ? NULL : mp_act_alloc(m, (size_t)(N * H));
  float *qkv = fused ? mp_act_alloc_compute(m, (size_t)(N * 3 * H)) : NULL;
  float *ctx = mp_act_alloc(m, (size_t)(N * H));
  float *big = mp_act_alloc(m, (size_t)(N * (I > H ? I : H)));
  float *e = mp_act_alloc(m, (size_t)(N * E));
  if (!x || !q || (!fused && (!k || !v)) || (fused && !qkv) || !ctx || !big || !e) return mp_batch_nomem(b);
  mp_enc_inputs in;
  MP_TRY(mp_encode_inputs(m, b, MP_POS_INDEX, 0, MP_ENC_TYPES | (f->has_type ? MP_ENC_CHECK_TYPES : 0), &in));
  uint8_t *kmask = in.kmask;
  /* embeddings: word (+ positions) (+ types) (-> embed_proj), LayerNorm, times the mask */
  const mp_linear_weight *tabs[3] = {&f->word};
  const int32_t *tids[3] = {b->ids};
  int nt = 1;
  if (f->has_pos) tabs[nt] = &f->pos, tids[nt++] = in.pos;
  if (f->has_type) tabs[nt] = &f->type, tids[nt++] = in.types;
  if (f->has_proj) {
    MP_TRY(mp_embed_sum(m, nt, tabs, tids, N, E, NULL, 0, e));
    MP_TRY(mp_dense_run(m, e, N, &f->proj, MP_ACT_NONE, x));
    MP_TRY(mp_ln_run(m, x, NULL, N, &f->ln_emb, c->layer_norm_eps, x));
  } else {
    MP_TRY(mp_embed_sum(m, nt, tabs, tids, N, H, &f->ln_emb, c->layer_norm_eps, x));
  }
  MP_TRY(mp_zero_rows(m, x, N, H, kmask));
  MP_TRY(mp_layer_report(m, out, 0, x, b, H));

  /* relative positions reachable by T tokens: rows [lo, lo + R) of the relative embeddings */
  int64_t lo = 0, R = 0;
  int32_t *cix = NULL, *pix = NULL;
  float *pk = NULL, *pq = NULL, *pkh = NULL, *pqh = NULL, *qh = NULL, *kh = NULL, *c2p = NULL, *p2c = NULL,
        *bias = NULL;
  const int use_rel = f->rel && (f->c2p || f->p2c);
  if (use_rel) {
    const int64_t D = 2 * T - 1, top = 2 * f->span - 1;
    cix = mp_arena_alloc(&m->act, (size_t)D * 4);
    pix = mp_arena_alloc(&m->act, (size_t)D * 4);
    if (!cix || !pix) return mp_err(MP_ERR_NOMEM, "out of memory");
    int64_t mn = top, mx = 0;
    for (int64_t dd = 0; dd < D; dd++) {
      int64_t delta = dd - (T - 1); /* i - j */
      int64_t cr = rel_bucket(f, delta) + f->span;
      int64_t pr = -rel_bucket(f, -delta) + f->span; /* p2c row for key j, query i */
      cr = cr < 0 ? 0 : cr > top ? top : cr;
      pr = pr < 0 ? 0 : pr > top ? top : pr;
      cix[dd] = (int32_t)cr, pix[dd] = (int32_t)pr;
      if (f->c2p) mn = cr < mn ? cr : mn, mx = cr > mx ? cr : mx;
      if (f->p2c) mn = pr < mn ? pr : mn, mx = pr > mx ? pr : mx;
    }
    lo = mn, R = mx - mn + 1;
    if (m->dev) lo = 0, R = top + 1; /* all rows: the device copy of rel_emb is not offset */
    for (int64_t dd = 0; dd < D; dd++)
      cix[dd] -= (int32_t)lo, pix[dd] -= (int32_t)lo;
    pk = mp_act_alloc(m, (size_t)(R * H));
    pq = mp_act_alloc(m, (size_t)(R * H));
  }
  if (use_rel && !m->dev) {
    pkh = mp_act_alloc(m, (size_t)(R * H));
    pqh = mp_act_alloc(m, (size_t)(R * H));
    qh = mp_act_alloc(m, (size_t)(T * d));
    kh = mp_act_alloc(m, (size_t)(T * d));
    c2p = mp_act_alloc(m, (size_t)(NH * T * R));
    p2c = mp_act_alloc(m, (size_t)(NH * T * R));
    bias = mp_act_alloc(m, (size_t)(NH * T * T));
    if (!pk || !pq || !pkh || !pqh || !qh || !kh || !c2p || !p2c || !bias)
      return mp_err(MP_ERR_NOMEM, "out of memory for the relative attention of %lld tokens", (long long)T);
  }
  const float *relx = use_rel ? f->rel_emb + lo * H : NULL;
  if (use_rel && m->dev) {
    if (!pk || !pq)
      return mp_err(MP_ERR_NOMEM, "out of memory for the relative attention of %lld tokens", (long long)T);
    if (!(relx = mp_dev_vector(m, f->rel_emb, MP_F32, 2 * f->span * H, 1))) return MP_ERR_NOMEM;
  }

  for (int64_t l = 0; l < c->layers; l++) {
    const dlayer *L = &f->layers[l];
    mp_attention_args aa = {.batch = B,
                            .seq_q = T,
                            .seq_k = T,
                            .heads = NH,
                            .head_dim = d,
                            .out = ctx,
                            .scale = f->score_scale,
                            .key_mask = kmask};
    MP_TRY(mp_qkv_run(m, x, N, &L->q, &L->k, &L->v, qkv, q, k, v, &aa));
    if (!use_rel) {
      MP_TRY(mp_attention_run(m, &aa));
    } else if (m->dev) { /* the c2p / p2c terms inside the fused attention */
      if (f->c2p) MP_TRY(mp_dense_run(m, relx, R, f->share ? &L->k : &L->pos_k, MP_ACT_NONE, pk));
      if (f->p2c) MP_TRY(mp_dense_run(m, relx, R, f->share ? &L->q : &L->pos_q, MP_ACT_NONE, pq));
      mp_attn_rel rel = {.pos_k = f->c2p ? pk : NULL,
                         .pos_q = f->p2c ? pq : NULL,
                         .cix = f->c2p ? cix : NULL,
                         .pix = f->p2c ? pix : NULL};
      MP_TRY(mp_attention_rel_run(m, &aa, &rel));
    } else {
      /* position keys / queries [R, H], regrouped per head [NH][R][d] */
      if (f->c2p) {
        MP_TRY(mp_dense_run(m, relx, R, f->share ? &L->k : &L->pos_k, MP_ACT_NONE, pk));
        for (int64_t h = 0; h < NH; h++)
          head_slice(pk, R, H, d, h, pkh + h * R * d);
      }
      if (f->p2c) {
        MP_TRY(mp_dense_run(m, relx, R, f->share ? &L->q : &L->pos_q, MP_ACT_NONE, pq));
        for (int64_t h = 0; h < NH; h++)
          head_slice(pq, R, H, d, h, pqh + h * R * d);
      }
      for (int64_t r = 0; r < B; r++) {
        const float *qr = q + r * T * H, *kr = k + r * T * H;
        for (int64_t h = 0; h < NH; h++) {
          if (f->c2p) {
            mp_linear_weight w = {
                .name = "c2p position keys", .out = R, .in = d, .dtype = MP_F32, .data = pkh + h * R * d};
            head_slice(qr, T, H, d, h, qh);
            MP_TRY(mp_linear(m->pool, qh, T, &w, NULL, MP_F32, c2p + h * T * R));
          }
          if (f->p2c) {
            mp_linear_weight w = {
                .name = "p2c position queries", .out = R, .in = d, .dtype = MP_F32, .data = pqh + h * R * d};
            head_slice(kr, T, H, d, h, kh);
            MP_TRY(mp_linear(m->pool, kh, T, &w, NULL, MP_F32, p2c + h * T * R));
          }
        }
        bias_task bt = {.T = T,
                        .R = R,
                        .c2p = f->c2p ? c2p : NULL,
                        .p2c = f->p2c ? p2c : NULL,
                        .cix = cix,
                        .pix = pix,
                        .scale = f->score_scale,
                        .bias = bias};
        mp_pool_run(m->pool, NH * T, bias_fill, &bt);
        mp_attention_args ar = aa;
        ar.batch = 1;
        ar.q = qr, ar.k = kr, ar.v = v + r * T * H, ar.out = ctx + r * T * H, ar.key_mask = kmask + r * T;
        ar.bias = bias, ar.bias_stride_b = 0, ar.bias_stride_h = T * T, ar.bias_stride_q = T;
        MP_TRY(mp_attention(m->pool, &ar));
      }
    }
    /* XSoftmax masks whole rows of padded queries: their context is zero */
    MP_TRY(mp_zero_rows(m, ctx, N, H, kmask));
    mp_post_ln_layer pl = {&L->o, &L->ln_attn, &L->inter, &L->out, &L->ln_out};
    MP_TRY(mp_post_ln_ffn(m, N, ctx, &pl, c->act, c->layer_norm_eps, &x, &q, big));
    MP_TRY(mp_layer_report(m, out, (int)l + 1, x, b, H));
  }
  *hidden = x;
  return MP_OK;
}

static mp_status deberta_classify(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits) {
  deberta *f = m->fam;
  return mp_first_token_head(m, b, hidden, &f->pooler, f->pooler_act, &f->classifier, logits);
}

static void deberta_release(mp_model *m) {
  deberta *f = m->fam;
  if (!f) return;
  free(f->layers);
  free(f);
  m->fam = NULL;
}

/* transformers' num_parameters() from the config alone: DebertaV2Model or
 * DebertaV2ForSequenceClassification (ContextPooler + classifier). */
static int64_t deberta_param_count(const mp_model_config *c, const mp_json *cj) {
  const int64_t H = c->hidden, I = c->intermediate, K = c->num_labels;
  if (mp_json_get_int(cj, "conv_kernel_size", 0) > 0) return -1; /* ConvLayer: not supported */
  const int64_t E = mp_json_get_int(cj, "embedding_size", H);
  if (E <= 0 || E > MP_CONFIG_MAX_DIM || c->type_vocab_size < 0 || c->type_vocab_size > MP_CONFIG_MAX_DIM) return -1;
  int ok = 1;
  int64_t n = 0, per_layer = 0;
  mp_count_mac(&n, c->vocab_size, E, &ok); /* words */
  mp_count_mac(&n, 2, H, &ok);             /* embeddings LayerNorm */
  if (mp_json_get_bool(cj, "position_biased_input", 1)) mp_count_mac(&n, c->max_positions, E, &ok);
  if (c->type_vocab_size > 0) mp_count_mac(&n, c->type_vocab_size, E, &ok);
  if (E != H) mp_count_mac(&n, E, H, &ok); /* embed_proj, no bias */
  const int rel = mp_json_get_bool(cj, "relative_attention", 0);
  const int share = mp_json_get_bool(cj, "share_att_key", 0);
  mp_count_mac(&per_layer, 4 * H, H + 1, &ok); /* query/key/value_proj, output.dense */
  mp_count_mac(&per_layer, 4, H, &ok);         /* two LayerNorms */
  mp_count_mac(&per_layer, H + 1, I, &ok);     /* intermediate */
  mp_count_mac(&per_layer, I + 1, H, &ok);     /* output */
  if (rel && !share) {
    if (has_word(cj, "pos_att_type", "c2p")) mp_count_mac(&per_layer, H + 1, H, &ok); /* pos_key_proj */
    if (has_word(cj, "pos_att_type", "p2c")) mp_count_mac(&per_layer, H + 1, H, &ok); /* pos_query_proj */
  }
  mp_count_mac(&n, c->layers, per_layer, &ok);
  if (rel) {
    int64_t max_rel = mp_json_get_int(cj, "max_relative_positions", -1);
    if (max_rel < 1) max_rel = c->max_positions;
    int64_t buckets = mp_json_get_int(cj, "position_buckets", -1);
    int64_t rows = buckets > 0 ? buckets : max_rel;
    if (rows > MP_CONFIG_MAX_DIM) return -1;
    mp_count_mac(&n, 2 * rows, H, &ok); /* rel_embeddings */
    if (has_word(cj, "norm_rel_ebd", "layer_norm")) mp_count_mac(&n, 2, H, &ok);
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    const int64_t PH = mp_json_get_int(cj, "pooler_hidden_size", H);
    if (PH <= 0 || PH > MP_CONFIG_MAX_DIM) return -1;
    mp_count_mac(&n, PH + 1, PH, &ok); /* ContextPooler.dense */
    mp_count_mac(&n, PH + 1, K, &ok);  /* classifier */
  }
  return ok ? n : -1;
}

const mp_family_ops mp_family_deberta = {.name = "deberta-v2",
                                         .bind = deberta_bind,
                                         .encode = deberta_encode,
                                         .classify = deberta_classify,
                                         .release = deberta_release,
                                         .param_count = deberta_param_count,
                                         .cuda = 1};
