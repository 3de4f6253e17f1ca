/* BERT-family encoders (BERT, RoBERTa/XLM-R, DistilBERT) with their heads. The post-LayerNorm
 * encoder layer is the same in all three; they differ in tensor names, position ids, token
 * types and the classification head. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/layers.h"
#include "model/model_internal.h"

typedef struct layer {
  mp_dense q, k, v, o, inter, out;
  mp_lnorm ln_attn, ln_out;
} layer;

typedef enum head_kind { HK_NONE, HK_BERT_POOLER, HK_ROBERTA, HK_DISTILBERT } head_kind;

typedef struct bert {
  char prefix[32]; /* "bert." / "roberta." / "distilbert." / "" */
  mp_linear_weight word, pos, type;
  int has_type;
  mp_lnorm ln_emb;
  layer *layers;
  head_kind hk;
  mp_dense head1,
      head2; /* BERT: pooler, classifier; RoBERTa: dense, out_proj; DistilBERT: pre_classifier, classifier */
} bert;

static mp_status bert_bind(mp_model *m) {
  const mp_model_config *c = &m->cfg;
  bert *f = calloc(1, sizeof *f);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  m->fam = f;
  const char *root = c->family == MP_FAMILY_DISTILBERT ? "distilbert."
                     : c->family == MP_FAMILY_ROBERTA  ? "roberta."
                                                       : "bert.";
  /* a base model saved alone (sentence-transformers, BertModel) has no prefix */
  char probe[128];
  snprintf(probe, sizeof probe, "%sembeddings.word_embeddings.weight", root);
  if (mp_model_tensor(m, probe)) snprintf(f->prefix, sizeof f->prefix, "%s", root);
  const char *P = f->prefix;
  char n[256];
  int64_t H = c->hidden, I = c->intermediate;
  snprintf(n, sizeof n, "%sembeddings.word_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->vocab_size, H, &f->word));
  snprintf(n, sizeof n, "%sembeddings.position_embeddings", P);
  MP_TRY(mp_bind_matrix(m, n, c->max_positions, H, &f->pos));
  if (c->family != MP_FAMILY_DISTILBERT && c->type_vocab_size > 0) {
    snprintf(n, sizeof n, "%sembeddings.token_type_embeddings", P);
    MP_TRY(mp_bind_matrix(m, n, c->type_vocab_size, H, &f->type));
    f->has_type = 1;
  }
  snprintf(n, sizeof n, "%sembeddings.LayerNorm", P);
  MP_TRY(mp_bind_ln(m, n, H, 0, &f->ln_emb));
  f->layers = calloc((size_t)c->layers, sizeof *f->layers);
  if (!f->layers) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    layer *L = &f->layers[l];
    char base[128];
    if (c->family == MP_FAMILY_DISTILBERT) {
      snprintf(base, sizeof base, "%stransformer.layer.%lld.", P, (long long)l);
      static const char *const qkvo[4] = {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"};
      MP_TRY(mp_bind_qkvo(m, base, qkvo, H, &L->q, &L->k, &L->v, &L->o));
      snprintf(n, sizeof n, "%ssa_layer_norm", base);
      MP_TRY(mp_bind_ln(m, n, H, 0, &L->ln_attn));
      snprintf(n, sizeof n, "%sffn.lin1", base);
      MP_TRY(mp_bind_dense(m, n, I, H, 0, &L->inter));
      snprintf(n, sizeof n, "%sffn.lin2", base);
      MP_TRY(mp_bind_dense(m, n, H, I, 0, &L->out));
      snprintf(n, sizeof n, "%soutput_layer_norm", base);
      MP_TRY(mp_bind_ln(m, n, H, 0, &L->ln_out));
    } else {
      snprintf(base, sizeof base, "%sencoder.layer.%lld.", P, (long long)l);
      static const char *const qkvo[4] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                          "attention.output.dense"};
      MP_TRY(mp_bind_qkvo(m, base, qkvo, H, &L->q, &L->k, &L->v, &L->o));
      snprintf(n, sizeof n, "%sattention.output.LayerNorm", base);
      MP_TRY(mp_bind_ln(m, n, H, 0, &L->ln_attn));
      MP_TRY(mp_bind_bert_ffn(m, base, H, I, &L->inter, &L->out, &L->ln_out));
    }
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    int64_t NL = c->num_labels;
    if (c->family == MP_FAMILY_BERT) {
      f->hk = HK_BERT_POOLER;
      snprintf(n, sizeof n, "%spooler.dense", P);
      MP_TRY(mp_bind_dense(m, n, H, H, 0, &f->head1));
      MP_TRY(mp_bind_dense(m, "classifier", NL, H, 0, &f->head2));
    } else if (c->family == MP_FAMILY_ROBERTA) {
      f->hk = HK_ROBERTA;
      MP_TRY(mp_bind_dense(m, "classifier.dense", H, H, 0, &f->head1));
      MP_TRY(mp_bind_dense(m, "classifier.out_proj", NL, H, 0, &f->head2));
    } else {
      f->hk = HK_DISTILBERT;
      MP_TRY(mp_bind_dense(m, "pre_classifier", H, H, 0, &f->head1));
      MP_TRY(mp_bind_dense(m, "classifier", NL, H, 0, &f->head2));
    }
    m->has_head = 1;
  }
  return MP_OK;
}

static mp_status bert_encode(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden) {
  bert *f = m->fam;
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, I = c->intermediate, N = B * T;
  /* on a device: one fused GEMM for q, k, v into qkv [N, 3H] (then no separate k, v) */
  const int fused = c->layers > 0 && mp_qkv_fusable(m, &f->layers[0].q, &f->layers[0].k, &f->layers[0].v);
  float *x = mp_act_alloc(m, (size_t)(N * H));
  float *q = mp_act_alloc(m, (size_t)(N * H));
  float *k = fused ? NULL : mp_act_alloc(m, (size_t)(N * H));
  float *v = fused ? NULL : mp_act_alloc(m, (size_t)(N * H));
  float *qkv = fused ? mp_act_alloc_compute(m, (size_t)(N * 3 * H)) : NULL;
  float *ctx = mp_act_alloc(m, (size_t)(N * H));
  float *big = mp_act_alloc(m, (size_t)(N * (I > H ? I : H)));
  if (!x || !q || (!fused && (!k || !v)) || (fused && !qkv) || !ctx || !big) return mp_batch_nomem(b);
  /* RoBERTa: create_position_ids_from_input_ids (padding_idx = pad_token_id); else 0..T-1 */
  mp_enc_inputs in;
  MP_TRY(mp_encode_inputs(m, b, c->family == MP_FAMILY_ROBERTA ? MP_POS_FROM_IDS : MP_POS_INDEX,
                          c->family == MP_FAMILY_ROBERTA ? c->pad_token_id : 0,
                          MP_ENC_TYPES | (f->has_type ? MP_ENC_CHECK_TYPES : 0), &in));
  /* embeddings: (word + type) + position, then LayerNorm */
  const mp_linear_weight *tabs[3] = {&f->word, &f->type, &f->pos};
  const int32_t *tids[3] = {b->ids, in.types, in.pos};
  if (!f->has_type) tabs[1] = &f->pos, tids[1] = in.pos;
  MP_TRY(mp_embed_sum_ln(m, f->has_type ? 3 : 2, tabs, tids, N, &f->ln_emb, c->layer_norm_eps, x));
  MP_TRY(mp_layer_report(m, out, 0, x, b, H));

  mp_attention_args aa = {.batch = B,
                          .seq_q = T,
                          .seq_k = T,
                          .heads = c->heads,
                          .head_dim = H / c->heads,
                          .k = k,
                          .v = v,
                          .out = ctx,
                          .scale = 1.0f / sqrtf((float)(H / c->heads)),
                          .key_mask = in.kmask};
  for (int64_t l = 0; l < c->layers; l++) {
    const layer *L = &f->layers[l];
    MP_TRY(mp_qkv_run(m, x, N, &L->q, &L->k, &L->v, qkv, q, k, v, &aa));
    MP_TRY(mp_attention_run(m, &aa));
    mp_post_ln_layer pl = {&L->o, &L->ln_attn, &L->inter, &L->out, &L->ln_out};
    MP_TRY(mp_post_ln_ffn(m, N, ctx, &pl, c->act, c->layer_norm_eps, &x, &q, big));
    MP_TRY(mp_layer_report(m, out, (int)l + 1, x, b, H));
  }
  *hidden = x;
  return MP_OK;
}

static mp_status bert_classify(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits) {
  bert *f = m->fam;
  mp_act a1 = f->hk == HK_DISTILBERT ? MP_ACT_RELU : MP_ACT_TANH;
  return mp_first_token_head(m, b, hidden, &f->head1, a1, &f->head2, logits);
}

static void bert_release(mp_model *m) {
  bert *f = m->fam;
  if (!f) return;
  free(f->layers);
  free(f);
  m->fam = NULL;
}

/* transformers' num_parameters() from the config alone: BertModel (with pooler) /
 * RobertaModel (with pooler) / DistilBertModel, or their *ForSequenceClassification. */
static int64_t bert_param_count(const mp_model_config *c, const mp_json *cj) {
  (void)cj;
  const int64_t H = c->hidden, I = c->intermediate, K = c->num_labels;
  const int cls = c->head == MP_HEAD_SEQ_CLS;
  int ok = c->type_vocab_size >= 0, n_ok = 1;
  int64_t n = 0, per_layer = 0;
  mp_count_mac(&n, c->vocab_size + c->max_positions + 2, H, &ok); /* words, positions, LayerNorm */
  if (c->family != MP_FAMILY_DISTILBERT) mp_count_mac(&n, c->type_vocab_size, H, &ok);
  mp_count_mac(&per_layer, 4 * H, H + 1, &ok); /* q, k, v, o */
  mp_count_mac(&per_layer, 4, H, &ok);         /* two LayerNorms */
  mp_count_mac(&per_layer, H + 1, I, &ok);     /* intermediate */
  mp_count_mac(&per_layer, I + 1, H, &ok);     /* output */
  mp_count_mac(&n, c->layers, per_layer, &ok);
  switch (c->family) {
  case MP_FAMILY_BERT: /* pooler (+ classifier) */
    mp_count_mac(&n, H + 1, H, &ok);
    if (cls) mp_count_mac(&n, H + 1, K, &ok);
    break;
  case MP_FAMILY_ROBERTA:    /* head dense + out_proj, or the bare model's pooler */
  case MP_FAMILY_DISTILBERT: /* pre_classifier + classifier (the bare model has no pooler) */
    if (cls || c->family == MP_FAMILY_ROBERTA) mp_count_mac(&n, H + 1, H, &ok);
    if (cls) mp_count_mac(&n, H + 1, K, &ok);
    break;
  default: n_ok = 0;
  }
  return ok && n_ok ? n : -1;
}

const mp_family_ops mp_family_bert = {.name = "bert",
                                      .bind = bert_bind,
                                      .encode = bert_encode,
                                      .classify = bert_classify,
                                      .release = bert_release,
                                      .param_count = bert_param_count,
                                      .cuda = 1};
