/* MobileBERT encoders (model_type "mobilebert") with MobileBertForSequenceClassification's head,
 * one forward for the CPU and a device (the layer helpers of layers.h; docs/cuda.md), computed as
 * transformers 4.46.3 does:
 *   embeddings: word embeddings (embedding_size wide); with trigram_input the row of token t
 *     becomes [E(x[t+1]), E(x[t]), E(x[t-1])] (zeros past either end of the padded sequence;
 *     padding tokens are embedded like any token, as in transformers), then
 *     embedding_transformation to hidden_size (when trigram_input or embedding_size !=
 *     hidden_size), + position + token-type embeddings, then the embedding norm;
 *   norms: normalization_type "no_norm" (NoNorm: x * weight + bias, elementwise) or
 *     "layer_norm" (nn.LayerNorm; the embedding norm and output.LayerNorm use torch's default
 *     eps 1e-5 because transformers does not pass layer_norm_eps there, the others use
 *     layer_norm_eps);
 *   each layer, with true = intra_bottleneck_size when use_bottleneck else hidden_size:
 *     li = norm(bottleneck.input.dense(x))                        [true]   (x when !use_bottleneck)
 *     q_in = k_in = norm(bottleneck.attention.dense(x))           (key_query_shared_bottleneck)
 *            | li (use_bottleneck_attention, also v_in) | x
 *     v_in = x (hidden_size wide) unless use_bottleneck_attention
 *     a = norm(attention.output.dense(MHA(query(q_in), key(k_in), value(v_in))) + li)
 *     a = norm(ffn.i.output.dense(act(ffn.i.intermediate.dense(a))) + a) for the
 *         num_feedforward_networks - 1 stacked FFNs
 *     o = norm(output.dense(act(intermediate.dense(a))) + a)
 *     x = norm(output.bottleneck.dense(o) + x)                    (o when !use_bottleneck)
 *   pooler: the first token's hidden state, through dense + tanh only when
 *     classifier_activation; then the classifier. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/layers.h"
#include "model/model_internal.h"

/* NoNorm (weight, bias elementwise) or LayerNorm (eps) */
typedef struct mnorm {
  float *g, *b;
  float eps;
  int layer_norm;
} mnorm;

typedef struct mffn {
  mp_dense inter, out;
  mnorm norm;
} mffn;

typedef struct mlayer {
  mp_dense bn_in, bn_attn; /* bottleneck.input / bottleneck.attention */
  mnorm bn_in_norm, bn_attn_norm;
  mp_dense q, k, v, o;
  mnorm attn_norm;
  mffn *ffn; /* num_feedforward_networks - 1 */
  mp_dense inter, out, out_bn;
  mnorm out_norm, out_bn_norm;
} mlayer;

typedef struct mobilebert {
  int64_t emb, true_h, nffn;
  int trigram, use_bn, bn_attention, kq_shared, pool_act, has_transform;
  mp_act act;
  mp_linear_weight word, pos, type;
  mp_dense transform; /* embedding_transformation */
  mnorm emb_norm;
  mlayer *layers;
  mp_dense pooler, classifier;
} mobilebert;

static mp_status bind_norm(mp_model *m, const char *name, int64_t n, int layer_norm, float eps, mnorm *nm) {
  mp_lnorm ln;
  MP_TRY(mp_bind_ln(m, name, n, 0, &ln));
  nm->g = ln.g, nm->b = ln.b, nm->eps = eps, nm->layer_norm = layer_norm;
  return MP_OK;
}

/* x = norm(x + res) in place (res may be NULL): on the CPU kernels or the model's device. */
static mp_status norm_run(mp_model *m, const mnorm *nm, float *x, const float *res, int64_t rows, int64_t dim) {
  return mp_norm_run(m, x, res, rows, dim, nm->g, nm->b, nm->eps, !nm->layer_norm, x);
}

/* out = the rows ids[0..N) of one embedding table of dim columns (on the CPU or the device). */
static mp_status embed1(mp_model *m, const mp_linear_weight *table, const int32_t *ids, int64_t N, int64_t dim,
                        float *out) {
  const mp_linear_weight *const tabs[1] = {table};
  const int32_t *const tids[1] = {ids};
  return mp_embed_sum(m, 1, tabs, tids, N, dim, NULL, 0.0f, out);
}

static mp_status mobilebert_bind(mp_model *m) {
  char path_cfg[4200];
  snprintf(path_cfg, sizeof path_cfg, "%s/config.json", m->path);
  const mp_model_config *c = &m->cfg;
  const mp_json *cj = m->cfg_json;
  mobilebert *f = calloc(1, sizeof *f);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  m->fam = f;
  /* NoNorm writes no 8-bit copy of its output, and MobileBERT's GEMMs (128 to 512 wide) are too
   * small for a device's 8-bit GEMM to repay a quantizing pass of its own (CUDA's fast mode ran
   * MobileBERT at 0.54-0.58x of its fp16 speed, bench/README.md): every dense layer is raw_input */
  m->dense_all_raw = 1;
  const char *P = mp_model_tensor(m, "mobilebert.embeddings.word_embeddings.weight") ? "mobilebert." : "";
  char n[256];
  const int64_t H = c->hidden, I = c->intermediate, NH = c->heads;
  const float eps = c->layer_norm_eps;
  f->emb = mp_json_get_int(cj, "embedding_size", 128);
  f->trigram = mp_json_get_bool(cj, "trigram_input", 1);
  f->use_bn = mp_json_get_bool(cj, "use_bottleneck", 1);
  f->bn_attention = mp_json_get_bool(cj, "use_bottleneck_attention", 0);
  f->kq_shared = mp_json_get_bool(cj, "key_query_shared_bottleneck", 1);
  f->nffn = mp_json_get_int(cj, "num_feedforward_networks", 4);
  f->pool_act = mp_json_get_bool(cj, "classifier_activation", 1);
  /* transformers derives true_hidden_size from use_bottleneck (the stored value is ignored) */
  f->true_h = f->use_bn ? mp_json_get_int(cj, "intra_bottleneck_size", 128) : H;
  const int64_t TH = f->true_h, E = f->emb;
  MP_TRY(mp_act_from_config(path_cfg, "hidden_act", mp_json_get_str(cj, "hidden_act", "relu"), &f->act));
  const char *nt = mp_json_get_str(cj, "normalization_type", "no_norm");
  int ln;
  if (!strcmp(nt, "no_norm"))
    ln = 0;
  else if (!strcmp(nt, "layer_norm"))
    ln = 1;
  else
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s/config.json: normalization_type \"%s\" is not supported (no_norm, layer_norm)", m->path, nt);
  if (E <= 0 || E > (1 << 20) || TH <= 0 || TH > (1 << 20) || f->nffn < 1 || f->nffn > 64)
    return mp_err(MP_ERR_FORMAT,
                  "%s/config.json: embedding_size, intra_bottleneck_size and num_feedforward_networks (1..64) must be "
                  "positive",
                  m->path);
  if (TH % NH)
    return mp_err(MP_ERR_FORMAT, "%s/config.json: true hidden size %lld is not divisible by the number of heads %lld",
                  m->path, (long long)TH, (long long)NH);
  if (f->use_bn && !f->bn_attention && !f->kq_shared && TH != H)
    return mp_err(MP_ERR_FORMAT,
                  "%s/config.json: use_bottleneck without key_query_shared_bottleneck or use_bottleneck_attention "
                  "feeds hidden_size %lld into query/key of width intra_bottleneck_size %lld (transformers fails too)",
                  m->path, (long long)H, (long long)TH);

  /* embeddings */
  snprintf(n, sizeof n, "%sembeddings.word_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->vocab_size, E, &f->word));
  snprintf(n, sizeof n, "%sembeddings.position_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->max_positions, H, &f->pos));
  snprintf(n, sizeof n, "%sembeddings.token_type_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->type_vocab_size, H, &f->type));
  f->has_transform = f->trigram || E != H;
  if (f->has_transform) {
    snprintf(n, sizeof n, "%sembeddings.embedding_transformation", P);
    MP_TRY(mp_bind_dense(m, n, H, f->trigram ? 3 * E : E, 0, &f->transform));
  }
  snprintf(n, sizeof n, "%sembeddings.LayerNorm", P);
  MP_TRY(bind_norm(m, n, H, ln, 1e-5f, &f->emb_norm));

  f->layers = calloc((size_t)c->layers, sizeof *f->layers);
  if (!f->layers) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    mlayer *L = &f->layers[l];
    char base[96];
    snprintf(base, sizeof base, "%sencoder.layer.%lld.", P, (long long)l);
    if (f->use_bn) {
      snprintf(n, sizeof n, "%sbottleneck.input.dense", base);
      MP_TRY(mp_bind_dense(m, n, TH, H, 0, &L->bn_in));
      snprintf(n, sizeof n, "%sbottleneck.input.LayerNorm", base);
      MP_TRY(bind_norm(m, n, TH, ln, eps, &L->bn_in_norm));
      if (f->kq_shared && !f->bn_attention) {
        snprintf(n, sizeof n, "%sbottleneck.attention.dense", base);
        MP_TRY(mp_bind_dense(m, n, TH, H, 0, &L->bn_attn));
        snprintf(n, sizeof n, "%sbottleneck.attention.LayerNorm", base);
        MP_TRY(bind_norm(m, n, TH, ln, eps, &L->bn_attn_norm));
      }
    }
    snprintf(n, sizeof n, "%sattention.self.query", base);
    MP_TRY(mp_bind_dense(m, n, TH, TH, 0, &L->q));
    snprintf(n, sizeof n, "%sattention.self.key", base);
    MP_TRY(mp_bind_dense(m, n, TH, TH, 0, &L->k));
    snprintf(n, sizeof n, "%sattention.self.value", base);
    MP_TRY(mp_bind_dense(m, n, TH, f->bn_attention ? TH : H, 0, &L->v));
    snprintf(n, sizeof n, "%sattention.output.dense", base);
    MP_TRY(mp_bind_dense(m, n, TH, TH, 0, &L->o));
    snprintf(n, sizeof n, "%sattention.output.LayerNorm", base);
    MP_TRY(bind_norm(m, n, TH, ln, eps, &L->attn_norm));
    if (f->nffn > 1) {
      L->ffn = calloc((size_t)(f->nffn - 1), sizeof *L->ffn);
      if (!L->ffn) return mp_err(MP_ERR_NOMEM, "out of memory");
      for (int64_t i = 0; i < f->nffn - 1; i++) {
        snprintf(n, sizeof n, "%sffn.%lld.intermediate.dense", base, (long long)i);
        MP_TRY(mp_bind_dense(m, n, I, TH, 0, &L->ffn[i].inter));
        snprintf(n, sizeof n, "%sffn.%lld.output.dense", base, (long long)i);
        MP_TRY(mp_bind_dense(m, n, TH, I, 0, &L->ffn[i].out));
        snprintf(n, sizeof n, "%sffn.%lld.output.LayerNorm", base, (long long)i);
        MP_TRY(bind_norm(m, n, TH, ln, eps, &L->ffn[i].norm));
      }
    }
    snprintf(n, sizeof n, "%sintermediate.dense", base);
    MP_TRY(mp_bind_dense(m, n, I, TH, 0, &L->inter));
    snprintf(n, sizeof n, "%soutput.dense", base);
    MP_TRY(mp_bind_dense(m, n, TH, I, 0, &L->out));
    snprintf(n, sizeof n, "%soutput.LayerNorm", base);
    MP_TRY(bind_norm(m, n, TH, ln, 1e-5f, &L->out_norm));
    if (f->use_bn) {
      snprintf(n, sizeof n, "%soutput.bottleneck.dense", base);
      MP_TRY(mp_bind_dense(m, n, H, TH, 0, &L->out_bn));
      snprintf(n, sizeof n, "%soutput.bottleneck.LayerNorm", base);
      MP_TRY(bind_norm(m, n, H, ln, eps, &L->out_bn_norm));
    }
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    if (f->pool_act) {
      snprintf(n, sizeof n, "%spooler.dense", P);
      MP_TRY(mp_bind_dense(m, n, H, H, 0, &f->pooler));
    }
    MP_TRY(mp_bind_dense(m, "classifier", c->num_labels, H, 0, &f->classifier));
    m->has_head = 1;
  }
  return MP_OK;
}

static mp_status mobilebert_encode(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden) {
  mobilebert *f = m->fam;
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, I = c->intermediate, N = B * T;
  const int64_t NH = c->heads, TH = f->true_h, d = TH / NH, E = f->emb;
  const int64_t EW = f->trigram ? 3 * E : E;
  float *x = mp_act_alloc(m, (size_t)(N * H));
  float *x2 = mp_act_alloc(m, (size_t)(N * H));
  float *li = mp_act_alloc(m, (size_t)(N * TH));
  float *sa = mp_act_alloc(m, (size_t)(N * TH));
  float *q = mp_act_alloc(m, (size_t)(N * TH));
  float *k = mp_act_alloc(m, (size_t)(N * TH));
  float *v = mp_act_alloc(m, (size_t)(N * TH));
  float *ctx = mp_act_alloc(m, (size_t)(N * TH));
  float *a = mp_act_alloc(m, (size_t)(N * TH));
  float *big = mp_act_alloc(m, (size_t)(N * I));
  float *e = mp_act_alloc(m, (size_t)(N * E));
  float *e3 = mp_act_alloc(m, (size_t)(N * EW));
  /* on a device: q and k (and v, when it has the same input) as one fused GEMM into qkv */
  const int fused = c->layers > 0 && mp_qkv_fusable(m, &f->layers[0].q, &f->layers[0].k, NULL);
  float *qkv = fused ? mp_act_alloc_compute(m, (size_t)(N * 3 * TH)) : NULL;
  if (!x || !x2 || !li || !sa || !q || !k || !v || !ctx || !a || !big || !e || !e3 || (fused && !qkv))
    return mp_batch_nomem(b);
  mp_enc_inputs in;
  MP_TRY(mp_encode_inputs(m, b, MP_POS_INDEX, 0, MP_ENC_TYPES, &in));
  uint8_t *kmask = in.kmask;
  /* embeddings: [E(x[t+1]), E(x[t]), E(x[t-1])] per sequence, zeros past its ends: e3 seen as
   * [3N, E] rows gathered from e (row index -1: zeros) */
  if (f->has_transform) {
    MP_TRY(embed1(m, &f->word, b->ids, N, E, e));
    const float *ein = e;
    if (f->trigram) {
      int32_t *rows = mp_arena_alloc(&m->act, (size_t)(3 * N) * 4);
      if (!rows) return mp_batch_nomem(b);
      for (int64_t i = 0; i < N; i++) {
        const int64_t t = i % T;
        rows[3 * i] = t + 1 < T ? (int32_t)(i + 1) : -1;
        rows[3 * i + 1] = (int32_t)i;
        rows[3 * i + 2] = t > 0 ? (int32_t)(i - 1) : -1;
      }
      MP_TRY(mp_gather_rows_at(m, e, 3 * N, rows, E, e3));
      ein = e3;
    }
    MP_TRY(mp_dense_run(m, ein, N, &f->transform, MP_ACT_NONE, x));
  } else { /* embedding_size == hidden_size, no trigram: the word embeddings as they are */
    MP_TRY(embed1(m, &f->word, b->ids, N, E, x));
  }
  /* + position, then + token type (in that order, as transformers adds them) */
  MP_TRY(embed1(m, &f->pos, in.pos, N, H, x2));
  MP_TRY(mp_binary_run(m, x, x2, N * H, 0));
  MP_TRY(embed1(m, &f->type, in.types, N, H, x2));
  MP_TRY(mp_binary_run(m, x, x2, N * H, 0));
  MP_TRY(norm_run(m, &f->emb_norm, x, NULL, N, H));
  MP_TRY(mp_layer_report(m, out, 0, x, b, H));

  for (int64_t l = 0; l < c->layers; l++) {
    const mlayer *L = &f->layers[l];
    const float *qin = x, *vin = x, *res = x;
    if (f->use_bn) {
      MP_TRY(mp_dense_run(m, x, N, &L->bn_in, MP_ACT_NONE, li));
      MP_TRY(norm_run(m, &L->bn_in_norm, li, NULL, N, TH));
      res = li;
      if (f->bn_attention) {
        qin = vin = li;
      } else if (f->kq_shared) {
        MP_TRY(mp_dense_run(m, x, N, &L->bn_attn, MP_ACT_NONE, sa));
        MP_TRY(norm_run(m, &L->bn_attn_norm, sa, NULL, N, TH));
        qin = sa;
      }
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
                            .key_mask = kmask};
    if (qkv && qin == vin && mp_qkv_fusable(m, &L->q, &L->k, &L->v)) {
      MP_TRY(mp_qkv_run(m, qin, N, &L->q, &L->k, &L->v, qkv, q, k, v, &aa));
    } else if (qkv) { /* the shared key/query bottleneck: q and k as one GEMM, v of the layer input */
      const mp_dense *qk[2] = {&L->q, &L->k};
      float *p[2];
      MP_TRY(mp_dense_fused_run(m, qin, N, 2, qk, qkv, p));
      MP_TRY(mp_dense_run(m, vin, N, &L->v, MP_ACT_NONE, v));
      aa.q = p[0], aa.k = p[1], aa.ldq = aa.ldk = 2 * TH;
    } else {
      MP_TRY(mp_dense_run(m, qin, N, &L->q, MP_ACT_NONE, q));
      MP_TRY(mp_dense_run(m, qin, N, &L->k, MP_ACT_NONE, k));
      MP_TRY(mp_dense_run(m, vin, N, &L->v, MP_ACT_NONE, v));
    }
    MP_TRY(mp_attention_run(m, &aa));
    MP_TRY(mp_dense_run(m, ctx, N, &L->o, MP_ACT_NONE, a));
    MP_TRY(norm_run(m, &L->attn_norm, a, res, N, TH));
    for (int64_t i = 0; i + 1 < f->nffn; i++) {
      const mffn *F = &L->ffn[i];
      MP_TRY(mp_dense_run_chain(m, a, N, &F->inter, f->act, &F->out, big, q));
      MP_TRY(norm_run(m, &F->norm, q, a, N, TH));
      float *t = a;
      a = q, q = t;
    }
    if (f->use_bn) {
      MP_TRY(mp_dense_run_chain(m, a, N, &L->inter, f->act, &L->out, big, q));
      MP_TRY(norm_run(m, &L->out_norm, q, a, N, TH));
      MP_TRY(mp_dense_run(m, q, N, &L->out_bn, MP_ACT_NONE, x2));
      MP_TRY(norm_run(m, &L->out_bn_norm, x2, x, N, H));
    } else { /* true hidden size == hidden size */
      MP_TRY(mp_dense_run_chain(m, a, N, &L->inter, f->act, &L->out, big, x2));
      MP_TRY(norm_run(m, &L->out_norm, x2, a, N, H));
    }
    float *t = x;
    x = x2, x2 = t;
    MP_TRY(mp_layer_report(m, out, (int)l + 1, x, b, H));
  }
  *hidden = x;
  return MP_OK;
}

/* The first token's hidden state, through the pooler (dense + tanh) when classifier_activation,
 * then the classifier; on a device the logits are copied to the host at the end. */
static mp_status mobilebert_classify(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits) {
  mobilebert *f = m->fam;
  if (f->pool_act) return mp_first_token_head(m, b, hidden, &f->pooler, MP_ACT_TANH, &f->classifier, logits);
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = m->cfg.hidden, NL = f->classifier.w.out;
  float *cls = mp_act_alloc(m, (size_t)(B * H));
  float *dl = m->dev ? mp_act_alloc(m, (size_t)(B * NL)) : logits;
  int32_t *rows = mp_arena_alloc(&m->act, (size_t)B * 4);
  if (!cls || !dl || !rows) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t r = 0; r < B; r++)
    rows[r] = (int32_t)(r * T); /* first token */
  MP_TRY(mp_gather_rows_at(m, hidden, B, rows, H, cls));
  MP_TRY(mp_dense_run(m, cls, B, &f->classifier, MP_ACT_NONE, dl));
  return mp_logits_to_host(m, dl, B * NL, logits);
}

static void mobilebert_release(mp_model *m) {
  mobilebert *f = m->fam;
  if (!f) return;
  for (int64_t l = 0; f->layers && l < m->cfg.layers; l++)
    free(f->layers[l].ffn);
  free(f->layers);
  free(f);
  m->fam = NULL;
}

/* MobileBertModel (with its pooler) + the classifier when cfg->head is SEQ_CLS. */
static int64_t mobilebert_param_count(const mp_model_config *c, const mp_json *cj) {
  const int64_t H = c->hidden, I = c->intermediate, V = c->vocab_size, P = c->max_positions, TV = c->type_vocab_size;
  if (H <= 0 || I <= 0 || V <= 0 || P <= 0 || TV < 0 || c->layers <= 0) return -1;
  const int64_t E = mp_json_get_int(cj, "embedding_size", 128);
  const int trigram = mp_json_get_bool(cj, "trigram_input", 1), use_bn = mp_json_get_bool(cj, "use_bottleneck", 1);
  const int bn_attention = mp_json_get_bool(cj, "use_bottleneck_attention", 0);
  const int kq_shared = mp_json_get_bool(cj, "key_query_shared_bottleneck", 1);
  const int64_t nffn = mp_json_get_int(cj, "num_feedforward_networks", 4);
  const int64_t TH = use_bn ? mp_json_get_int(cj, "intra_bottleneck_size", 128) : H;
  if (E <= 0 || TH <= 0 || nffn < 1) return -1;
  int64_t n = V * E + P * H + TV * H + 2 * H;
  n += (trigram ? 3 * E : E) * H + H; /* embedding_transformation exists even when unused */
  int64_t layer = 3 * TH + TH * TH * 2 + (bn_attention ? TH : H) * TH; /* query, key, value */
  layer += TH * TH + TH + 2 * TH;                                      /* attention.output */
  layer += TH * I + I + I * TH + TH + 2 * TH;                          /* intermediate, output */
  if (use_bn) {
    layer += TH * H + H + 2 * H;                           /* output.bottleneck */
    layer += (H * TH + TH + 2 * TH) * (kq_shared ? 2 : 1); /* bottleneck.input (+ .attention) */
  }
  layer += (nffn - 1) * (TH * I + I + I * TH + TH + 2 * TH);
  n += c->layers * layer;
  if (mp_json_get_bool(cj, "classifier_activation", 1)) n += H * H + H; /* pooler.dense */
  if (c->head == MP_HEAD_SEQ_CLS) n += H * c->num_labels + c->num_labels;
  return n;
}

const mp_family_ops mp_family_mobilebert = {.name = "mobilebert",
                                            .bind = mobilebert_bind,
                                            .encode = mobilebert_encode,
                                            .classify = mobilebert_classify,
                                            .release = mobilebert_release,
                                            .param_count = mobilebert_param_count,
                                            .cuda = 1};
