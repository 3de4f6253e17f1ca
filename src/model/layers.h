/* Layer math shared by the model families (src/model/<family>.c): running dense layers, the
 * activation arena, the encode prologue every family starts with (key mask, position ids, token
 * types), the post-LayerNorm layer tail and the first-token classification head. Tensor binding
 * is in model_internal.h (bind.c). */
#ifndef MP_MODEL_LAYERS_H
#define MP_MODEL_LAYERS_H
#include <stdint.h>

#include "model/model_internal.h"

/* Allocates n floats (64-byte aligned) from the activation arena. On a device (model/device.h)
 * this is device memory the family code passes to the helpers below but never reads. */
float *mp_act_alloc(mp_model *m, size_t n);
/* Room for n values of the compute dtype: n floats on the CPU; on a device n values of its
 * compute dtype (half the bytes of mp_act_alloc in fp16/bf16). For buffers that only the device
 * helpers below read and write (the fused Q/K/V rows). */
float *mp_act_alloc_compute(mp_model *m, size_t n);
/* out = LayerNorm(x + residual) (residual may be NULL); out may alias x. */
void mp_ln_run_cpu(mp_model *m, const float *x, const float *residual, int64_t rows, const mp_lnorm *ln, float eps,
                   float *out);
mp_status mp_ln_run(mp_model *m, const float *x, const float *residual, int64_t rows, const mp_lnorm *ln, float eps,
                    float *out);
/* out = norm(x + residual) over rows of dim values (residual may be NULL; out may alias x; g, b f32
 * [dim]): LayerNorm with eps, or, with no_norm, MobileBERT's NoNorm (x + residual) * g + b
 * elementwise (no mean / variance). */
mp_status mp_norm_run(mp_model *m, const float *x, const float *residual, int64_t rows, int64_t dim, const float *g,
                      const float *b, float eps, int no_norm, float *out);
/* x = LayerNorm(tables[0][ids[0]] + tables[1][ids[1]] + ...) over N tokens (n 1..4 tables of
 * m->cfg.hidden columns, summed in that order; ln NULL: no LayerNorm). Ids are checked against
 * each table (MP_ERR_INVALID_ARG naming it). */
mp_status mp_embed_sum_ln(mp_model *m, int n, const mp_linear_weight *const *tables, const int32_t *const *ids,
                          int64_t N, const mp_lnorm *ln, float eps, float *x);
/* mp_embed_sum_ln over tables of dim columns (ln only when dim == cfg.hidden). */
mp_status mp_embed_sum(mp_model *m, int n, const mp_linear_weight *const *tables, const int32_t *const *ids, int64_t N,
                       int64_t dim, const mp_lnorm *ln, float eps, float *x);
/* mp_embed_sum with table 0 times scale0 (device only: the CPU families scale in their own order). */
mp_status mp_embed_sum_scaled(mp_model *m, int n, const mp_linear_weight *const *tables, const int32_t *const *ids,
                              int64_t N, int64_t dim, float scale0, const mp_lnorm *ln, float eps, float *x);
/* out[r] = x[rows[r]] for r < n (rows: host int32 row indices, < 0: a row of zeros; rows of dim
 * values). */
mp_status mp_gather_rows_at(mp_model *m, const float *x, int64_t n, const int32_t *rows, int64_t dim, float *out);
/* n activation values -> host f32 (a copy on the CPU unless x == host). */
mp_status mp_logits_to_host(mp_model *m, const float *x, int64_t n, float *host);
/* x[r] = 0 for the rows r < rows with keep[r] == 0 (keep: host bytes, the forward's key mask). */
mp_status mp_zero_rows(mp_model *m, float *x, int64_t rows, int64_t dim, const uint8_t *keep);
/* Relative-position attention terms on a device (model/device.h mp_dev_attention): pos_k / pos_q
 * device rows (DeBERTa c2p / p2c, ldp their row stride), cix / pix host int32 [2T-1]; bias_tab a
 * device f32 [buckets, heads] table with host bidx [2T-1] (MPNet). Unused members NULL. */
typedef struct mp_attn_rel {
  const float *pos_k, *pos_q;
  int64_t ldp;
  const int32_t *cix, *pix;
  const float *bias_tab;
  const int32_t *bidx;
  int causal;     /* mask keys after the query (decoder self-attention) */
  int64_t window; /* > 0: mask keys with |i - j| > window (local attention) */
} mp_attn_rel;
/* x += y (op 0) or x *= y (op 1) over n values (the CPU loops the families always ran). */
mp_status mp_binary_run(mp_model *m, float *x, const float *y, int64_t n, int op);
/* x *= y over [rows, dim] (mp_device_ops.mul_rows where the device has it, else binary's product) */
mp_status mp_mul_rows_run(mp_model *m, float *x, const float *y, int64_t rows, int64_t dim);
/* x [rows, dim] stays unchanged for the rest of the pass and feeds several dense layers
 * (mp_device_ops.keep_copy where the device has it; else nothing to do) */
mp_status mp_keep_copy_run(mp_model *m, const float *x, int64_t rows, int64_t dim);
/* mp_attention_run with relative terms; device only (the CPU builds a score bias instead). */
mp_status mp_attention_rel_run(mp_model *m, const mp_attention_args *a, const mp_attn_rel *r);
/* Multi-head attention (kernels.h mp_attention_args) on the model's device. Score biases are
 * CPU-only for now (MP_ERR_UNSUPPORTED on a device). */
mp_status mp_attention_run(mp_model *m, const mp_attention_args *a);
/* Reports the hidden states x [n, seq, H] after layer `layer` to out->hook (copied to the host
 * first when x is device memory). */
mp_status mp_layer_report(mp_model *m, const mp_forward_out *out, int layer, const float *x, const mp_model_batch *b,
                          int64_t H);
/* Runs a dense layer on rows of x. */
mp_status mp_dense_run(mp_model *m, const float *x, int64_t rows, const mp_dense *d, mp_act act, float *y);
/* y = d2(act(d1(x))) (a feed-forward block): on the integer kernels as one chain that never
 * stores the intermediate in f32 when both layers allow it (mp_qlinear_chain_ok), else through
 * big ([rows, d1 outputs]). */
mp_status mp_dense_run_chain(mp_model *m, const float *x, int64_t rows, const mp_dense *d1, mp_act act,
                             const mp_dense *d2, float *big, float *y);
/* Runs n (1..4) dense layers over the same rows of x (no activation): one quantization of x and
 * one parallel job when all are on the integer kernels, else one after another. */
mp_status mp_dense_run_many(mp_model *m, const float *x, int64_t rows, int n, const mp_dense *const *d,
                            float *const *y);

/* Fused projections on a device (docs/cuda.md): n (2..4) dense layers over the same input run as
 * one GEMM of their stacked weights [n * out, in] (uploaded once) into y [rows, n * out] (room for
 * rows * n * out compute values: mp_act_alloc_compute). mp_dense_fusable: 1 on a device when
 * MP_CUDA_FUSED_QKV is not 0 and the layers share in and out, with out a multiple of 8 (every part
 * 16-byte aligned); 0 on the CPU, which always runs the layers separately. mp_dense_fused_run sets
 * parts[i] to the first column of layer i in y (row stride n * out values); MP_ERR_INTERNAL when
 * the layers are not fusable. */
int mp_dense_fusable(mp_model *m, int n, const mp_dense *const *d);
mp_status mp_dense_fused_run(mp_model *m, const float *x, int64_t rows, int n, const mp_dense *const *d, float *y,
                             float **parts);
/* mp_dense_fusable for the q, k (and v, when not NULL) projections of one attention block. */
int mp_qkv_fusable(mp_model *m, const mp_dense *q, const mp_dense *k, const mp_dense *v);
/* The q, k, v projections of x [rows, in] for self-attention, with a->q/k/v and their row strides
 * set to where they are: with qkv (a device, mp_qkv_fusable; room for rows * 3 out compute
 * values) one fused GEMM, a->q/k/v at its columns 0, out, 2 out and a->ldq/ldk/ldv = 3 out;
 * without (qkv NULL: the CPU, or fusion off) the three layers into yq, yk, yv
 * (mp_dense_run_many) with strides 0. */
mp_status mp_qkv_run(mp_model *m, const float *x, int64_t rows, const mp_dense *q, const mp_dense *k, const mp_dense *v,
                     float *qkv, float *yq, float *yk, float *yv, mp_attention_args *a);

/* How an encoder numbers its positions. */
typedef enum mp_pos_ids {
  MP_POS_NONE,     /* no position ids (rotary encoders) */
  MP_POS_INDEX,    /* t + offset within each sequence (BERT, DeBERTa, MobileBERT: 0; BART: 2) */
  MP_POS_FROM_IDS, /* transformers' create_position_ids_from_input_ids: padding_idx + the running
                      count of non-pad tokens, padding_idx on pad tokens (RoBERTa, MPNet) */
} mp_pos_ids;

/* What mp_encode_inputs fills besides the key mask. */
enum {
  MP_ENC_TYPES = 1,       /* token type ids (b->types, 0 without) */
  MP_ENC_CHECK_TYPES = 2, /* ... each checked against cfg.type_vocab_size (MP_ERR_INVALID_ARG) */
};

/* The per-token inputs of a batch [N = n * seq], in the activation arena. */
typedef struct mp_enc_inputs {
  uint8_t *kmask; /* 1 = a real token to attend to (b->mask != 0; all 1 without a mask) */
  int32_t *pos;   /* position ids; NULL with MP_POS_NONE */
  int32_t *types; /* token type ids; NULL without MP_ENC_TYPES */
} mp_enc_inputs;

/* The prologue of every family's encode: key mask, position ids (pos: kind, pos_arg: the offset
 * of MP_POS_INDEX or the padding_idx of MP_POS_FROM_IDS) and token types (flags MP_ENC_*). */
mp_status mp_encode_inputs(mp_model *m, const mp_model_batch *b, mp_pos_ids pos, int64_t pos_arg, int flags,
                           mp_enc_inputs *in);
/* The error of an activation buffer that could not be allocated for batch b. */
mp_status mp_batch_nomem(const mp_model_batch *b);
/* Reports the hidden states x [n, seq, H] after layer `layer` (0 = the embeddings) to out->hook. */
static inline void mp_report_layer(const mp_forward_out *out, int layer, const float *x, const mp_model_batch *b,
                                   int64_t H) {
  if (out->hook) out->hook(out->hook_user, layer, x, b->n, b->seq, (size_t)H);
}

/* The tensors of a post-LayerNorm layer after attention: output projection + LayerNorm, FFN +
 * LayerNorm. */
typedef struct mp_post_ln_layer {
  const mp_dense *o;
  const mp_lnorm *ln_attn;
  const mp_dense *inter, *out;
  const mp_lnorm *ln_out;
} mp_post_ln_layer;
/* x = LN(ctx·Oᵀ + x); x = LN(act(x·Iᵀ)·Outᵀ + x) over N rows; *q is scratch ([N, hidden]) and swaps
 * with *x; big holds [N, intermediate]. */
mp_status mp_post_ln_ffn(mp_model *m, int64_t N, const float *ctx, const mp_post_ln_layer *L, mp_act act, float eps,
                         float **x, float **q, float *big);
/* logits = d2(act(d1(first token's hidden state))) per row: the BERT-style sequence head. */
mp_status mp_first_token_head(mp_model *m, const mp_model_batch *b, const float *hidden, const mp_dense *d1, mp_act act,
                              const mp_dense *d2, float *logits);
#endif
