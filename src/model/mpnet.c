/* MPNet encoders (model_type "mpnet": all-mpnet-base-v2, microsoft/mpnet-base) with
 * MPNetForSequenceClassification's head, computed as transformers 4.46.3 does:
 *   embeddings: word + position (no token types), LayerNorm. Position ids are RoBERTa-style
 *     from padding_idx = 1 (hard-coded in MPNetEmbeddings, whatever pad_token_id says):
 *     pos = cumsum(id != 1) * (id != 1) + 1, so real tokens start at 2 and pads sit at 1;
 *   relative position bias: MPNetEncoder.compute_position_bias, computed once per forward and
 *     shared by every layer: bias[h][i][j] = relative_attention_bias[bucket(j - i)][h] with
 *     relative_position_bucket(num_buckets = 32, max_distance = 128) (the encoder always
 *     passes its default 32, not config.relative_attention_num_buckets): bidirectional, 8
 *     exact distances per direction, then log-spaced up to 15, plus 16 when the key is after
 *     the query (j > i); float32 like torch (rp_bucket);
 *   scores = Q K^T / sqrt(d) + bias (+ the padding mask); post-LayerNorm layers like BERT
 *     (attention.attn.{q,k,v,o}, attention.LayerNorm, intermediate.dense, output.dense,
 *     output.LayerNorm);
 *   head: MPNetClassificationHead on token 0: classifier.dense, tanh, classifier.out_proj.
 * Sentence-transformers pooling / Normalize are the shared ones (model.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/layers.h"
#include "model/model_internal.h"

#define MPNET_PADDING_IDX 1
#define MPNET_BUCKETS 32 /* MPNetEncoder.compute_position_bias's default, used by forward */
#define MPNET_MAX_DISTANCE 128

typedef struct mlayer {
  mp_dense q, k, v, o, inter, out;
  mp_lnorm ln_attn, ln_out;
} mlayer;

typedef struct mpnet {
  char prefix[16]; /* "mpnet." or "" (a bare MPNetModel / sentence-transformers folder) */
  mp_linear_weight word, pos;
  mp_lnorm ln_emb;
  float *rel_bias; /* [MPNET_BUCKETS, heads] f32 */
  mlayer *layers;
  mp_dense head1, head2; /* classifier.dense, classifier.out_proj */
} mpnet;

/* MPNetEncoder.relative_position_bucket for rel = memory - context (j - i), float32 like torch:
 * n = -rel; ret = 16 when n < 0; |n| < 8 exact, else 8 + trunc(log(|n| / 8) / log(16) * 8)
 * capped at 15. */
static int32_t rp_bucket(int64_t rel) {
  const int64_t half = MPNET_BUCKETS / 2, max_exact = half / 2;
  int64_t n = -rel;
  int32_t ret = n < 0 ? (int32_t)half : 0;
  if (n < 0) n = -n;
  if (n < max_exact) return ret + (int32_t)n;
  volatile float ratio = (float)n / (float)max_exact;
  volatile float lg = logf(ratio);
  volatile float t = lg / (float)log((double)MPNET_MAX_DISTANCE / (double)max_exact);
  volatile float u = t * (float)(half - max_exact);
  int64_t large = max_exact + (int64_t)u;
  if (large > half - 1) large = half - 1;
  return ret + (int32_t)large;
}

static mp_status mpnet_bind(mp_model *m) {
  const mp_model_config *c = &m->cfg;
  const mp_json *cj = m->cfg_json;
  mpnet *f = calloc(1, sizeof *f);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  m->fam = f;
  if (mp_model_tensor(m, "mpnet.embeddings.word_embeddings.weight")) snprintf(f->prefix, sizeof f->prefix, "mpnet.");
  const char *P = f->prefix;
  char n[256];
  const int64_t H = c->hidden, I = c->intermediate, NH = c->heads;
  if (c->max_positions <= MPNET_PADDING_IDX + 1)
    return mp_err(MP_ERR_FORMAT, "%s/config.json: max_position_embeddings %lld leaves no position after padding_idx 1",
                  m->path, (long long)c->max_positions);
  int64_t nb = mp_json_get_int(cj, "relative_attention_num_buckets", 32);
  if (nb < MPNET_BUCKETS)
    return mp_err(
        MP_ERR_UNSUPPORTED,
        "%s/config.json: relative_attention_num_buckets %lld < 32 is not supported (transformers' MPNetEncoder "
        "always computes 32 buckets and would index past the table)",
        m->path, (long long)nb);
  snprintf(n, sizeof n, "%sembeddings.word_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->vocab_size, H, &f->word));
  snprintf(n, sizeof n, "%sembeddings.position_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->max_positions, H, &f->pos));
  snprintf(n, sizeof n, "%sembeddings.LayerNorm", P);
  MP_TRY(mp_bind_ln(m, n, H, 0, &f->ln_emb));
  /* relative_attention_bias [num_buckets, heads]: only the first 32 rows are ever used */
  mp_linear_weight rb;
  snprintf(n, sizeof n, "%sencoder.relative_attention_bias", P);
  MP_TRY(mp_bind_matrix(m, n, nb, NH, &rb));
  f->rel_bias = mp_arena_alloc_aligned(&m->params, (size_t)(MPNET_BUCKETS * NH) * sizeof(float), 64);
  if (!f->rel_bias) return mp_err(MP_ERR_NOMEM, "out of memory");
  MP_TRY(mp_weight_rows_f32(&rb, 0, MPNET_BUCKETS, f->rel_bias));

  f->layers = calloc((size_t)c->layers, sizeof *f->layers);
  if (!f->layers) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    mlayer *L = &f->layers[l];
    char base[96];
    snprintf(base, sizeof base, "%sencoder.layer.%lld.", P, (long long)l);
    static const char *const qkvo[4] = {"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o"};
    MP_TRY(mp_bind_qkvo(m, base, qkvo, H, &L->q, &L->k, &L->v, &L->o));
    snprintf(n, sizeof n, "%sattention.LayerNorm", base);
    MP_TRY(mp_bind_ln(m, n, H, 0, &L->ln_attn));
    MP_TRY(mp_bind_bert_ffn(m, base, H, I, &L->inter, &L->out, &L->ln_out));
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    MP_TRY(mp_bind_dense(m, "classifier.dense", H, H, 0, &f->head1));
    MP_TRY(mp_bind_dense(m, "classifier.out_proj", c->num_labels, H, 0, &f->head2));
    m->has_head = 1;
  }
  return MP_OK;
}

typedef struct bias_task {
  int64_t T, NH;
  const int32_t *bucket; /* [2T-1] indexed by (j - i) + T - 1 */
  const float *table;    /* [32, NH] */
  float *bias;           /* [NH, T, T] */
} bias_task;

static void bias_fill(void *ctx, int64_t task, int thread) {
  (void)thread;
  const bias_task *a = ctx;
  const int64_t T = a->T, h = task / T, i = task % T;
  float *out = a->bias + (h * T + i) * T;
  const int32_t *bk = a->bucket + (T - 1 - i);
  for (int64_t j = 0; j < T; j++)
    out[j] = a->table[(int64_t)bk[j] * a->NH + h];
}

static mp_status mpnet_encode(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden) {
  mpnet *f = m->fam;
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, I = c->intermediate, N = B * T;
  const int64_t NH = c->heads, d = H / NH;
  /* on a device: one fused GEMM for q, k, v into qkv [N, 3H] (then no separate k, v) */
  const int fused = c->layers > 0 && mp_qkv_fusable(m, &f->layers[0].q, &f->layers[0].k, &f->layers[0].v);
  float *x = mp_act_alloc(m, (size_t)(N * H));
  float *q = mp_act_alloc(m, (size_t)(N * H));
  float *k = fused ? NULL : mp_act_alloc(m, (size_t)(N * H));
  float *v = fused ? NULL : mp_act_alloc(m, (size_t)(N * H));
  float *qkv = fused ? mp_act_alloc_compute(m, (size_t)(N * 3 * H)) : NULL;
  float *ctx = mp_act_alloc(m, (size_t)(N * H));
  float *big = mp_act_alloc(m, (size_t)(N * (I > H ? I : H)));
  float *bias = m->dev ? NULL : mp_act_alloc(m, (size_t)(NH * T * T)); /* CPU: the bias as a tensor */
  int32_t *bucket = mp_arena_alloc(&m->act, (size_t)(2 * T - 1) * 4);
  int32_t *bidx = m->dev ? mp_arena_alloc(&m->act, (size_t)(2 * T - 1) * 4) : NULL;
  if (!x || !q || (!fused && (!k || !v)) || (fused && !qkv) || !ctx || !big || (!m->dev && !bias) || !bucket ||
      (m->dev && !bidx))
    return mp_batch_nomem(b);
  /* create_position_ids_from_input_ids with padding_idx 1 */
  mp_enc_inputs in;
  MP_TRY(mp_encode_inputs(m, b, MP_POS_FROM_IDS, MPNET_PADDING_IDX, 0, &in));
  uint8_t *kmask = in.kmask;
  const mp_linear_weight *tabs[2] = {&f->word, &f->pos};
  const int32_t *tids[2] = {b->ids, in.pos};
  MP_TRY(mp_embed_sum_ln(m, 2, tabs, tids, N, &f->ln_emb, c->layer_norm_eps, x));
  MP_TRY(mp_layer_report(m, out, 0, x, b, H));

  /* position bias [NH, T, T], the same for every sequence and every layer */
  for (int64_t dd = 0; dd < 2 * T - 1; dd++)
    bucket[dd] = rp_bucket(dd - (T - 1));
  mp_attn_rel rel = {0};
  if (m->dev) { /* the bias inside the fused attention: bidx by (i - j) + T - 1, the table on the device */
    for (int64_t dd = 0; dd < 2 * T - 1; dd++)
      bidx[dd] = bucket[2 * T - 2 - dd];
    rel.bidx = bidx;
    if (!(rel.bias_tab = mp_dev_vector(m, f->rel_bias, MP_F32, MPNET_BUCKETS * NH, 0))) return MP_ERR_NOMEM;
  } else {
    bias_task bt = {.T = T, .NH = NH, .bucket = bucket, .table = f->rel_bias, .bias = bias};
    mp_pool_run(m->pool, NH * T, bias_fill, &bt);
  }

  mp_attention_args aa = {.batch = B,
                          .seq_q = T,
                          .seq_k = T,
                          .heads = NH,
                          .head_dim = d,
                          .q = q,
                          .k = k,
                          .v = v,
                          .out = ctx,
                          .scale = 1.0f / sqrtf((float)d),
                          .key_mask = kmask,
                          .bias = bias,
                          .bias_stride_b = 0,
                          .bias_stride_h = T * T,
                          .bias_stride_q = T};
  for (int64_t l = 0; l < c->layers; l++) {
    const mlayer *L = &f->layers[l];
    MP_TRY(mp_qkv_run(m, x, N, &L->q, &L->k, &L->v, qkv, q, k, v, &aa));
    if (m->dev) {
      mp_attention_args ad = aa;
      ad.bias = NULL;
      MP_TRY(mp_attention_rel_run(m, &ad, &rel));
    } else {
      MP_TRY(mp_attention(m->pool, &aa));
    }
    mp_post_ln_layer pl = {&L->o, &L->ln_attn, &L->inter, &L->out, &L->ln_out};
    MP_TRY(mp_post_ln_ffn(m, N, ctx, &pl, c->act, c->layer_norm_eps, &x, &q, big));
    MP_TRY(mp_layer_report(m, out, (int)l + 1, x, b, H));
  }
  *hidden = x;
  return MP_OK;
}

static mp_status mpnet_classify(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits) {
  mpnet *f = m->fam;
  return mp_first_token_head(m, b, hidden, &f->head1, MP_ACT_TANH, &f->head2, logits); /* <s> token */
}

static void mpnet_release(mp_model *m) {
  mpnet *f = m->fam;
  if (!f) return;
  free(f->layers);
  free(f);
  m->fam = NULL;
}

/* Parameters of the class transformers would build:
 *   base  = MPNetModel without pooler: word + position embeddings, embeddings LayerNorm,
 *           relative_attention_bias [num_buckets, heads], layers x (4 H(H+1) + 2 LN + FFN);
 *   MPNetModel (bare, the default; what sentence-transformers loads):   base + pooler H(H+1);
 *   MPNetForMaskedLM (architectures of a plain checkpoint, no modules.json): base +
 *           lm_head.dense H(H+1) + lm_head.layer_norm 2H + lm_head.bias V (decoder.weight is
 *           tied to the word embeddings, counted once);
 *   MPNetForSequenceClassification: base + classifier.dense H(H+1) + out_proj (H+1) labels.
 * A sentence-transformers folder (modules.json) whose architectures says MPNetForMaskedLM is
 * counted as MPNetModel: that is the class its weights are and the one it is run as. Other
 * heads (ForMultipleChoice, ForTokenClassification, ForQuestionAnswering) are not counted (-1),
 * nor sizes above 2^31 or a count that overflows int64. */
static int64_t mpnet_param_count(const mp_model_config *c, const mp_json *cj) {
  const int64_t V = c->vocab_size, H = c->hidden, I = c->intermediate, L = c->layers, NH = c->heads;
  const int64_t P = c->max_positions, nb = mp_json_get_int(cj, "relative_attention_num_buckets", 32);
  const int64_t K = c->num_labels;
  if (V <= 0 || H <= 0 || I <= 0 || L <= 0 || NH <= 0 || P <= 0 || nb <= 0) return -1;
  const char *arch = c->architecture;
  enum { BARE, MLM, CLS } kind = c->head == MP_HEAD_SEQ_CLS ? CLS : BARE;
  if (kind == BARE && !c->has_st && arch[0] && strcmp(arch, "MPNetModel") != 0) {
    if (strcmp(arch, "MPNetForMaskedLM") != 0) return -1; /* other heads are not counted */
    kind = MLM;
  }
  const int64_t lim = INT64_C(1) << 31; /* bounds the small sums below; products are checked */
  if (V > lim || H > lim || I > lim || L > lim || NH > lim || P > lim || nb > lim || K > lim) return -1;
  int ok = 1;
  int64_t layer = 0, n = 0;
  mp_count_mac(&layer, 4 * H, H + 1, &ok); /* attn.{q,k,v,o} */
  mp_count_mac(&layer, 4, H, &ok);         /* attention.LayerNorm, output.LayerNorm */
  mp_count_mac(&layer, H + 1, I, &ok);     /* intermediate.dense */
  mp_count_mac(&layer, I + 1, H, &ok);     /* output.dense */
  mp_count_mac(&n, V + P + 2, H, &ok);     /* word + position embeddings, embeddings.LayerNorm */
  mp_count_mac(&n, nb, NH, &ok);           /* encoder.relative_attention_bias */
  mp_count_mac(&n, L, layer, &ok);
  if (kind == BARE) mp_count_mac(&n, H + 1, H, &ok);                             /* pooler.dense */
  if (kind == MLM) mp_count_mac(&n, H + 3, H, &ok), mp_count_mac(&n, V, 1, &ok); /* lm_head.dense + layer_norm, bias */
  if (kind == CLS) mp_count_mac(&n, H + 1, H, &ok), mp_count_mac(&n, H + 1, K, &ok); /* classifier.dense, out_proj */
  return ok ? n : -1;
}

const mp_family_ops mp_family_mpnet = {.name = "mpnet",
                                       .bind = mpnet_bind,
                                       .encode = mpnet_encode,
                                       .classify = mpnet_classify,
                                       .release = mpnet_release,
                                       .param_count = mpnet_param_count,
                                       .cuda = 1};
