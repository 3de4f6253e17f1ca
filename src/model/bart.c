/* BART (model_type "bart"): the encoder-decoder BartModel and BartForSequenceClassification's
 * head, computed as transformers 4.46.3 does (eager attention, eval mode):
 *   embeddings (encoder and decoder alike): shared token table (model.shared, the same tensor
 *     as encoder/decoder.embed_tokens: a checkpoint may hold any of the three names) times
 *     embed_scale (sqrt(d_model) when scale_embedding, else 1) + learned positions at
 *     position + 2 (BartLearnedPositionalEmbedding's offset), then layernorm_embedding;
 *   encoder layers (post-LN): x = LN(x + SelfAttn(x)); x = LN(x + fc2(act(fc1(x)))), keys
 *     masked by the attention mask;
 *   decoder input ids = shift_tokens_right(input_ids, pad_token_id, decoder_start_token_id):
 *     [decoder_start, ids[0], ..., ids[T-2]]; decoder layers (post-LN): causal self-attention
 *     (no padding mask: transformers passes decoder_attention_mask = None), cross-attention
 *     over the encoder output with the encoder padding mask, then the feed-forward block;
 *   q is scaled by head_dim^-0.5 after its projection, before Q K^T (as BartAttention does).
 * The hidden states this family returns (encode, token embeddings, mean pooling of `embed`)
 * are BartModel's last_hidden_state, i.e. the DECODER output. Right padding never changes the
 * states of real tokens: the decoder is causal and its real positions only see real inputs.
 * Head: the decoder state at the last eos_token_id of each row -> dense -> tanh -> out_proj.
 * transformers raises when rows of a batch hold different numbers of eos tokens; so do we,
 * with a message (a row without any eos token is an error too).
 * Layer hooks: 0 = encoder embeddings, 1..Le = encoder layers, Le+1 = decoder embeddings,
 * Le+1+l = decoder layer l (verify-layers compares the first layers+1 = the encoder). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/layers.h"
#include "model/model_internal.h"

typedef struct battn {
  mp_dense q, k, v, o;
  mp_lnorm ln; /* the LayerNorm after the residual add */
} battn;

typedef struct blayer {
  battn self, cross; /* cross: decoder layers only */
  mp_dense fc1, fc2;
  mp_lnorm ln_ffn; /* final_layer_norm */
} blayer;

typedef struct bart {
  char prefix[16]; /* "model." or "" */
  mp_linear_weight word, enc_pos, dec_pos;
  float embed_scale;
  mp_lnorm enc_ln_emb, dec_ln_emb;
  int64_t dec_layers, dec_heads, dec_ffn;
  int32_t dec_start, eos;
  blayer *enc, *dec;
  mp_dense head_dense, head_out;
} bart;

static mp_status bind_attn(mp_model *m, const char *base, const char *attn, const char *ln, int64_t H, battn *a) {
  char n[256];
  const int cross = !strcmp(attn, "encoder_attn");
  /* the encoder's output: its 8-bit copy is kept for all decoder layers where the device can */
  a->k.raw_input = a->v.raw_input = cross ? MP_INPUT_KEPT : MP_INPUT_COPIED;
  a->o.raw_input = MP_INPUT_RAW; /* the attention's output */
  snprintf(n, sizeof n, "%s%s.q_proj", base, attn);
  MP_TRY(mp_bind_dense(m, n, H, H, 0, &a->q));
  snprintf(n, sizeof n, "%s%s.k_proj", base, attn);
  MP_TRY(mp_bind_dense(m, n, H, H, 0, &a->k));
  snprintf(n, sizeof n, "%s%s.v_proj", base, attn);
  MP_TRY(mp_bind_dense(m, n, H, H, 0, &a->v));
  snprintf(n, sizeof n, "%s%s.out_proj", base, attn);
  MP_TRY(mp_bind_dense(m, n, H, H, 0, &a->o));
  snprintf(n, sizeof n, "%s%s", base, ln);
  return mp_bind_ln(m, n, H, 0, &a->ln);
}

static mp_status bind_layer(mp_model *m, const char *base, int64_t H, int64_t F, int decoder, blayer *L) {
  char n[256];
  MP_TRY(bind_attn(m, base, "self_attn", "self_attn_layer_norm", H, &L->self));
  if (decoder) MP_TRY(bind_attn(m, base, "encoder_attn", "encoder_attn_layer_norm", H, &L->cross));
  snprintf(n, sizeof n, "%sfc1", base);
  MP_TRY(mp_bind_dense(m, n, F, H, 0, &L->fc1));
  snprintf(n, sizeof n, "%sfc2", base);
  L->fc2.raw_input = MP_INPUT_RAW; /* the activation's output */
  MP_TRY(mp_bind_dense(m, n, H, F, 0, &L->fc2));
  snprintf(n, sizeof n, "%sfinal_layer_norm", base);
  return mp_bind_ln(m, n, H, 0, &L->ln_ffn);
}

/* A positive integer field of config.json, BartConfig's default when absent. */
static mp_status cfg_int(const mp_model *m, const char *key, int64_t def, int64_t *out) {
  const mp_json *v = mp_json_get(m->cfg_json, key);
  if (!v || v->type == MP_JSON_NULL) {
    *out = def;
    return MP_OK;
  }
  if (v->type != MP_JSON_NUMBER || !v->is_int || v->i < 0 || v->i > (1 << 30))
    return mp_err(MP_ERR_FORMAT, "%s/config.json:%u: field \"%s\" must be a non-negative integer", m->path, v->line,
                  key);
  *out = v->i;
  return MP_OK;
}

static mp_status bart_bind(mp_model *m) {
  const mp_model_config *c = &m->cfg;
  bart *f = calloc(1, sizeof *f);
  if (!f) return mp_err(MP_ERR_NOMEM, "out of memory");
  m->fam = f;
  const int64_t H = c->hidden;
  char n[256];
  if (mp_model_tensor(m, "model.encoder.embed_positions.weight")) snprintf(f->prefix, sizeof f->prefix, "model.");
  const char *P = f->prefix;
  int64_t v;
  MP_TRY(cfg_int(m, "decoder_layers", 12, &f->dec_layers));
  MP_TRY(cfg_int(m, "decoder_attention_heads", 16, &f->dec_heads));
  MP_TRY(cfg_int(m, "decoder_ffn_dim", 4096, &f->dec_ffn));
  if (f->dec_layers > 4096)
    return mp_err(MP_ERR_FORMAT, "%s/config.json: decoder_layers %lld is not plausible (at most 4096)", m->path,
                  (long long)f->dec_layers);
  if (f->dec_heads <= 0 || H % f->dec_heads || f->dec_ffn <= 0)
    return mp_err(MP_ERR_FORMAT,
                  "%s/config.json: d_model %lld must be divisible by decoder_attention_heads %lld (> 0) and "
                  "decoder_ffn_dim must be positive",
                  m->path, (long long)H, (long long)f->dec_heads);
  MP_TRY(cfg_int(m, "decoder_start_token_id", 2, &v));
  f->dec_start = (int32_t)v;
  MP_TRY(cfg_int(m, "eos_token_id", 2, &v));
  f->eos = (int32_t)v;
  f->embed_scale = mp_json_get_bool(m->cfg_json, "scale_embedding", 0) ? (float)sqrt((double)H) : 1.0f;

  /* the shared token table: whichever of the tied names the checkpoint holds */
  static const char *const word_names[] = {"shared", "encoder.embed_tokens", "decoder.embed_tokens"};
  const char *wn = NULL;
  for (int i = 0; i < 3 && !wn; i++) {
    snprintf(n, sizeof n, "%s%s.weight", P, word_names[i]);
    if (mp_model_tensor(m, n)) wn = word_names[i];
  }
  if (!wn) {
    snprintf(n, sizeof n, "%sshared.weight", P);
    return mp_err(MP_ERR_FORMAT,
                  "%s: tensor \"%s\" is missing (nor %sencoder.embed_tokens.weight / "
                  "%sdecoder.embed_tokens.weight, its tied names)",
                  m->path, n, P, P);
  }
  snprintf(n, sizeof n, "%s%s", P, wn);
  MP_TRY(mp_bind_matrix(m, n, c->vocab_size, H, &f->word));
  snprintf(n, sizeof n, "%sencoder.embed_positions", P);
  MP_TRY(mp_bind_matrix(m, n, c->max_positions + 2, H, &f->enc_pos));
  snprintf(n, sizeof n, "%sdecoder.embed_positions", P);
  MP_TRY(mp_bind_matrix(m, n, c->max_positions + 2, H, &f->dec_pos));
  snprintf(n, sizeof n, "%sencoder.layernorm_embedding", P);
  MP_TRY(mp_bind_ln(m, n, H, 0, &f->enc_ln_emb));
  snprintf(n, sizeof n, "%sdecoder.layernorm_embedding", P);
  MP_TRY(mp_bind_ln(m, n, H, 0, &f->dec_ln_emb));

  f->enc = calloc((size_t)c->layers, sizeof *f->enc);
  f->dec = calloc((size_t)(f->dec_layers ? f->dec_layers : 1), sizeof *f->dec);
  if (!f->enc || !f->dec) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int64_t l = 0; l < c->layers; l++) {
    char base[96];
    snprintf(base, sizeof base, "%sencoder.layers.%lld.", P, (long long)l);
    MP_TRY(bind_layer(m, base, H, c->intermediate, 0, &f->enc[l]));
  }
  for (int64_t l = 0; l < f->dec_layers; l++) {
    char base[96];
    snprintf(base, sizeof base, "%sdecoder.layers.%lld.", P, (long long)l);
    MP_TRY(bind_layer(m, base, H, f->dec_ffn, 1, &f->dec[l]));
  }
  if (c->head == MP_HEAD_SEQ_CLS) {
    MP_TRY(mp_bind_dense(m, "classification_head.dense", H, H, 0, &f->head_dense));
    MP_TRY(mp_bind_dense(m, "classification_head.out_proj", c->num_labels, H, 0, &f->head_out));
    m->has_head = 1;
  }
  return MP_OK;
}

/* Scratch of one forward pass (activation arena). */
typedef struct bufs {
  float *q, *k, *v, *ctx, *big;
  float *qkv; /* a device with fused projections: [N, 3H] compute values (q|k|v, or k|v of cross-attention) */
} bufs;

/* out = attention block of xq over xkv (B rows of T tokens each), before the residual. */
static mp_status attn_run(mp_model *m, const battn *A, const float *xq, const float *xkv, int64_t B, int64_t T,
                          int64_t heads, const uint8_t *kmask, const float *causal, bufs *s, float *out) {
  const int64_t H = m->cfg.hidden, N = B * T, d = H / heads;
  const float *pq = s->q, *pk = s->k, *pv = s->v;
  int64_t ld = 0;
  if (s->qkv && xq == xkv) { /* a device: one GEMM of the stacked q, k, v weights */
    const mp_dense *qkv[3] = {&A->q, &A->k, &A->v};
    float *p[3];
    MP_TRY(mp_dense_fused_run(m, xq, N, 3, qkv, s->qkv, p));
    pq = p[0], pk = p[1], pv = p[2], ld = 3 * H;
  } else if (s->qkv) { /* cross-attention on a device: q, then k and v of the encoder output as one GEMM */
    MP_TRY(mp_dense_run(m, xq, N, &A->q, MP_ACT_NONE, s->q));
    const mp_dense *kv[2] = {&A->k, &A->v};
    float *p[2];
    MP_TRY(mp_dense_fused_run(m, xkv, N, 2, kv, s->qkv, p));
    pk = p[0], pv = p[1], ld = 2 * H;
  } else if (xq == xkv) { /* self-attention: one quantized input for the three projections */
    const mp_dense *qkv[3] = {&A->q, &A->k, &A->v};
    float *const ys[3] = {s->q, s->k, s->v};
    MP_TRY(mp_dense_run_many(m, xq, N, 3, qkv, ys));
  } else {
    MP_TRY(mp_dense_run(m, xq, N, &A->q, MP_ACT_NONE, s->q));
    const mp_dense *kv[2] = {&A->k, &A->v};
    float *const ys[2] = {s->k, s->v};
    MP_TRY(mp_dense_run_many(m, xkv, N, 2, kv, ys));
  }
  const float scaling = (float)pow((double)d, -0.5); /* BartAttention: q_proj(x) * head_dim**-0.5 */
  if (!m->dev)                                       /* on a device the attention scales q as it loads it */
    for (int64_t i = 0; i < N * H; i++)
      s->q[i] *= scaling;
  mp_attention_args aa = {.batch = B,
                          .seq_q = T,
                          .seq_k = T,
                          .heads = heads,
                          .head_dim = d,
                          .q = pq,
                          .k = pk,
                          .v = pv,
                          .ldq = s->qkv && xq == xkv ? ld : 0,
                          .ldk = ld,
                          .ldv = ld,
                          .out = s->ctx,
                          .scale = m->dev ? scaling : 1.0f,
                          .key_mask = kmask};
  if (m->dev) {
    mp_attn_rel rel = {.causal = causal != NULL};
    MP_TRY(mp_attention_rel_run(m, &aa, &rel));
    return mp_dense_run(m, s->ctx, N, &A->o, MP_ACT_NONE, out);
  }
  if (causal) aa.bias = causal, aa.bias_stride_b = 0, aa.bias_stride_h = 0, aa.bias_stride_q = T;
  MP_TRY(mp_attention(m->pool, &aa));
  return mp_dense_run(m, s->ctx, N, &A->o, MP_ACT_NONE, out);
}

/* token table * embed_scale + positions (offset 2), layernorm_embedding -> x */
static mp_status embed(mp_model *m, const int32_t *ids, const int32_t *pos, int64_t N, const mp_linear_weight *pos_tab,
                       const mp_lnorm *ln, float *tmp, float *x) {
  bart *f = m->fam;
  const int64_t H = m->cfg.hidden;
  if (m->dev) {
    const mp_linear_weight *tabs[2] = {&f->word, pos_tab};
    const int32_t *tids[2] = {ids, pos};
    return mp_embed_sum_scaled(m, 2, tabs, tids, N, H, f->embed_scale, ln, m->cfg.layer_norm_eps, x);
  }
  MP_TRY(mp_embedding_rows(&f->word, ids, N, x));
  if (f->embed_scale != 1.0f)
    for (int64_t i = 0; i < N * H; i++)
      x[i] *= f->embed_scale;
  MP_TRY(mp_embedding_rows(pos_tab, pos, N, tmp));
  mp_add_inplace(x, tmp, N * H);
  mp_layernorm(m->pool, x, NULL, N, H, ln->g, ln->b, m->cfg.layer_norm_eps, x);
  return MP_OK;
}

/* x <- LN(o + x) (o is overwritten; the buffers are swapped) */
static mp_status residual_ln(mp_model *m, float **x, float **o, int64_t N, const mp_lnorm *ln) {
  MP_TRY(mp_ln_run(m, *o, *x, N, ln, m->cfg.layer_norm_eps, *o));
  float *t = *x;
  *x = *o, *o = t;
  return MP_OK;
}

static mp_status ffn(mp_model *m, const blayer *L, float **x, float **o, int64_t N, bufs *s) {
  MP_TRY(mp_dense_run_chain(m, *x, N, &L->fc1, m->cfg.act, &L->fc2, s->big, *o));
  return residual_ln(m, x, o, N, &L->ln_ffn);
}

static mp_status bart_encode(mp_model *m, const mp_model_batch *b, const mp_forward_out *out, float **hidden) {
  bart *f = m->fam;
  const mp_model_config *c = &m->cfg;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = c->hidden, N = B * T;
  const int64_t F = c->intermediate > f->dec_ffn ? c->intermediate : f->dec_ffn;
  const int Le = (int)c->layers;
  /* on a device: the q, k, v projections as one fused GEMM (k and v of cross-attention as one) */
  const int fused = Le > 0 && f->dec_layers > 0 &&
                    mp_qkv_fusable(m, &f->enc[0].self.q, &f->enc[0].self.k, &f->enc[0].self.v) &&
                    mp_qkv_fusable(m, &f->dec[0].self.q, &f->dec[0].self.k, &f->dec[0].self.v) &&
                    mp_qkv_fusable(m, &f->dec[0].cross.q, &f->dec[0].cross.k, &f->dec[0].cross.v);
  bufs s = {.q = mp_act_alloc(m, (size_t)(N * H)),
            .k = fused ? NULL : mp_act_alloc(m, (size_t)(N * H)),
            .v = fused ? NULL : mp_act_alloc(m, (size_t)(N * H)),
            .ctx = mp_act_alloc(m, (size_t)(N * H)),
            .big = mp_act_alloc(m, (size_t)(N * F)),
            .qkv = fused ? mp_act_alloc_compute(m, (size_t)(N * 3 * H)) : NULL};
  float *x = mp_act_alloc(m, (size_t)(N * H)), *o = mp_act_alloc(m, (size_t)(N * H));
  float *y = mp_act_alloc(m, (size_t)(N * H));
  float *causal = m->dev ? NULL : mp_act_alloc(m, (size_t)(T * T)); /* a device masks in the attention */
  int32_t *dids = mp_arena_alloc(&m->act, (size_t)N * 4);
  if (!s.q || (!fused && (!s.k || !s.v)) || (fused && !s.qkv) || !s.ctx || !s.big || !x || !o || !y ||
      (!m->dev && !causal) || !dids)
    return mp_batch_nomem(b);
  mp_enc_inputs in; /* positions t + 2: BartLearnedPositionalEmbedding's offset */
  MP_TRY(mp_encode_inputs(m, b, MP_POS_INDEX, 2, 0, &in));
  uint8_t *kmask = in.kmask;
  int32_t *pos = in.pos;
  for (int64_t i = 0; i < N; i++) /* shift_tokens_right (labels' -100 never occur in input ids) */
    dids[i] = i % T == 0 ? f->dec_start : b->ids[i - 1];
  for (int64_t i = 0; causal && i < T; i++)
    for (int64_t j = 0; j < T; j++)
      causal[i * T + j] = j <= i ? 0.0f : -INFINITY;
  const float *causal_arg = m->dev ? (const float *)1 : causal; /* attn_run: non-NULL = causal */

  /* encoder */
  MP_TRY(embed(m, b->ids, pos, N, &f->enc_pos, &f->enc_ln_emb, o, x));
  MP_TRY(mp_layer_report(m, out, 0, x, b, H));
  for (int l = 0; l < Le; l++) {
    const blayer *L = &f->enc[l];
    MP_TRY(attn_run(m, &L->self, x, x, B, T, c->heads, kmask, NULL, &s, o));
    MP_TRY(residual_ln(m, &x, &o, N, &L->self.ln));
    MP_TRY(ffn(m, L, &x, &o, N, &s));
    MP_TRY(mp_layer_report(m, out, l + 1, x, b, H));
  }
  /* decoder: y, with the encoder output in x (o is the spare buffer) */
  float *enc_out = x;
  MP_TRY(mp_keep_copy_run(m, enc_out, N, H));
  MP_TRY(embed(m, dids, pos, N, &f->dec_pos, &f->dec_ln_emb, o, y));
  MP_TRY(mp_layer_report(m, out, Le + 1, y, b, H));
  for (int64_t l = 0; l < f->dec_layers; l++) {
    const blayer *L = &f->dec[l];
    MP_TRY(attn_run(m, &L->self, y, y, B, T, f->dec_heads, NULL, causal_arg, &s, o));
    MP_TRY(residual_ln(m, &y, &o, N, &L->self.ln));
    MP_TRY(attn_run(m, &L->cross, y, enc_out, B, T, f->dec_heads, kmask, NULL, &s, o));
    MP_TRY(residual_ln(m, &y, &o, N, &L->cross.ln));
    MP_TRY(ffn(m, L, &y, &o, N, &s));
    MP_TRY(mp_layer_report(m, out, Le + 2 + (int)l, y, b, H));
  }
  *hidden = y;
  return MP_OK;
}

static mp_status bart_classify(mp_model *m, const mp_model_batch *b, const float *hidden, float *logits) {
  bart *f = m->fam;
  const int64_t B = (int64_t)b->n, T = (int64_t)b->seq, H = m->cfg.hidden;
  float *rep = mp_act_alloc(m, (size_t)(B * H)), *h1 = mp_act_alloc(m, (size_t)(B * H));
  const int64_t NL = f->head_out.w.out;
  float *lg = m->dev ? mp_act_alloc(m, (size_t)(B * NL)) : logits;
  int32_t *rows = mp_arena_alloc(&m->act, (size_t)B * 4);
  if (!rep || !h1 || !lg || !rows) return mp_err(MP_ERR_NOMEM, "out of memory");
  int64_t count0 = 0;
  for (int64_t r = 0; r < B; r++) {
    int64_t cnt = 0, last = -1;
    for (int64_t t = 0; t < T; t++) {
      const int64_t i = r * T + t;
      if ((!b->mask || b->mask[i]) && b->ids[i] == f->eos) cnt++, last = t;
    }
    if (cnt == 0)
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s: input row %lld has no eos token (id %d): BartForSequenceClassification classifies the "
                    "decoder state at the last eos token (the tokenizer adds it)",
                    m->path, (long long)r + 1, (int)f->eos);
    if (r == 0)
      count0 = cnt;
    else if (cnt != count0)
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s: the rows of a batch hold different numbers of eos tokens (id %d): %lld in row 1, %lld in row "
                    "%lld (an input text contains the eos text itself, e.g. \"</s>\"); transformers' "
                    "BartForSequenceClassification refuses such a batch too: remove it from the text or run with "
                    "--batch-size 1",
                    m->path, (int)f->eos, (long long)count0, (long long)cnt, (long long)r + 1);
    rows[r] = (int32_t)(r * T + last);
  }
  MP_TRY(mp_gather_rows_at(m, hidden, B, rows, H, rep));
  MP_TRY(mp_dense_run(m, rep, B, &f->head_dense, MP_ACT_TANH, h1));
  MP_TRY(mp_dense_run(m, h1, B, &f->head_out, MP_ACT_NONE, lg));
  return mp_logits_to_host(m, lg, B * NL, logits);
}

static void bart_release(mp_model *m) {
  bart *f = m->fam;
  if (!f) return;
  free(f->enc);
  free(f->dec);
  free(f);
  m->fam = NULL;
}

/* a*b + c with int64 overflow checks (sets *ok = 0 on overflow) */
static int64_t mac(int64_t a, int64_t b, int64_t c, int *ok) {
  int64_t p, r;
  if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(p, c, &r)) {
    *ok = 0;
    return 0;
  }
  return r;
}

/* BartModel (+ BartClassificationHead for BartForSequenceClassification): the tied token
 * table counts once (transformers' parameters() yields shared tensors once); the position
 * tables have max_position_embeddings + 2 rows; no pooler, no final LayerNorm. -1 when a size
 * is invalid or the count overflows. */
static int64_t bart_param_count(const mp_model_config *c, const mp_json *cj) {
  const int64_t d = c->hidden, V = c->vocab_size, Fe = c->intermediate, Le = c->layers;
  const int64_t Ld = mp_json_get_int(cj, "decoder_layers", 12), Fd = mp_json_get_int(cj, "decoder_ffn_dim", 4096);
  if (d <= 0 || V <= 0 || c->max_positions <= 0 || c->max_positions > INT64_MAX / 4 || Le < 0 || Fe <= 0 || Ld < 0 ||
      Fd <= 0)
    return -1;
  int ok = 1;
  const int64_t ln = mac(2, d, 0, &ok);
  const int64_t attn = mac(4, mac(d, d, d, &ok), 0, &ok);
  const int64_t ffn_e = mac(d, Fe, Fe, &ok), ffn_e2 = mac(Fe, d, d, &ok);
  const int64_t ffn_d = mac(d, Fd, Fd, &ok), ffn_d2 = mac(Fd, d, d, &ok);
  int64_t enc_layer = 0, dec_layer = 0;
  const int64_t enc_parts[] = {attn, ln, ffn_e, ffn_e2, ln}, dec_parts[] = {attn, ln, attn, ln, ffn_d, ffn_d2, ln};
  for (size_t i = 0; i < sizeof enc_parts / sizeof *enc_parts; i++)
    enc_layer = mac(1, enc_parts[i], enc_layer, &ok);
  for (size_t i = 0; i < sizeof dec_parts / sizeof *dec_parts; i++)
    dec_layer = mac(1, dec_parts[i], dec_layer, &ok);
  const int64_t pos = mac(c->max_positions + 2, d, ln, &ok); /* embed_positions + layernorm_embedding */
  int64_t n = mac(V, d, 0, &ok);
  n = mac(2, pos, n, &ok);
  n = mac(Le, enc_layer, n, &ok);
  n = mac(Ld, dec_layer, n, &ok);
  if (c->head == MP_HEAD_SEQ_CLS) {
    n = mac(1, mac(d, d, d, &ok), n, &ok);
    n = mac(1, mac(c->num_labels, d, c->num_labels, &ok), n, &ok);
  }
  return ok ? n : -1;
}

const mp_family_ops mp_family_bart = {.name = "bart",
                                      .bind = bart_bind,
                                      .encode = bart_encode,
                                      .classify = bart_classify,
                                      .release = bart_release,
                                      .param_count = bart_param_count,
                                      .cuda = 1};
