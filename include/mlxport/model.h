/* mlxport public API: models. Open an original Hugging Face model or a converted MLX folder
 * (float or MLX-quantized) and compute sentence embeddings, classification logits, zero-shot
 * scores or token embeddings, natively, with no Python.
 *
 *   mlxport_model *m;
 *   if (mlxport_model_open("sentence-transformers/all-MiniLM-L6-v2", NULL, &m)) fail();
 *   float *emb = malloc(n * mlxport_model_dim(m) * sizeof *emb);
 *   mlxport_model_embed(m, n, texts, 1, emb);
 *   mlxport_model_close(m);
 */
#ifndef MLXPORT_MODEL_H
#define MLXPORT_MODEL_H

#include "mlxport/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxport_model mlxport_model;

/* How MLX affine-quantized layers are computed (float models compute the same either way).
 * FAST: integer kernels (int8 activations); FAITHFUL: what MLX computes (dequantized weights,
 * float accumulation). docs/runtime.md. */
typedef enum mlxport_compute { MLXPORT_COMPUTE_FAST = 0, MLXPORT_COMPUTE_FAITHFUL = 1 } mlxport_compute;

typedef struct mlxport_model_options {
  size_t struct_size;       /* sizeof(mlxport_model_options); set by mlxport_model_options_init */
  int threads;              /* compute threads; 0 = all cores */
  mlxport_compute compute;  /* default MLXPORT_COMPUTE_FAST */
  size_t batch_size;        /* texts per forward pass; 0 = 32 */
  size_t max_length;        /* tokens per text (longer ones are truncated); 0 = the model's default
                               (sentence-transformers max_seq_length, else the tokenizer's) */
  const char *device;       /* where the model runs: NULL or "cpu" (default), "cuda", "cuda:N" (a library
                               built with CUDA, docs/cuda.md; else mlxport_model_open fails with
                               MLXPORT_ERR_UNSUPPORTED saying so). Added in 0.1: callers built with an
                               older header keep the default through struct_size */
  const char *device_dtype; /* compute dtype on a GPU: NULL or "float16" (default), "bfloat16",
                               "float32" ("fp16", "bf16", "fp32" too); not used on the CPU; anything
                               else fails with MLXPORT_ERR_INVALID_ARG. Added in 0.1 after device */
} mlxport_model_options;

/** mlxport_model_options_init: fills o with the defaults (all cores, fast compute, batch 32,
 * the model's max length) and sets o->struct_size.
 * o: the options to fill (not NULL).
 * Thread-safety: any thread. */
MLXPORT_API void mlxport_model_options_init(mlxport_model_options *o);

/** mlxport_model_open: loads a model: config.json, weights (memory-mapped), tokenizer, pooling.
 * path_or_repo: a model folder (Hugging Face or MLX), or a repo id ("org/name[@revision]") in the
 *   Hugging Face cache (HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface/hub); a repo id that is not
 *   cached is downloaded from HF_ENDPOINT first unless HF_HUB_OFFLINE=1.
 * options: NULL for the defaults, else initialised by mlxport_model_options_init.
 * out: receives the handle; *out is NULL on failure.
 * Ownership: the caller closes the handle with mlxport_model_close.
 * Errors: MLXPORT_ERR_NOT_FOUND (no such folder / repo), MLXPORT_ERR_FORMAT (a bad config or
 *   weights file, a tensor with the wrong shape: the message names it), MLXPORT_ERR_UNSUPPORTED
 *   (an architecture mlxport does not run), MLXPORT_ERR_INVALID_ARG.
 * Thread-safety: any thread; handles are independent of each other. */
MLXPORT_API mlxport_status mlxport_model_open(const char *path_or_repo, const mlxport_model_options *options,
                                              mlxport_model **out);

/** mlxport_model_close: releases a model and everything it holds.
 * model: the handle, or NULL (nothing happens).
 * Thread-safety: no other call may be using the handle. */
MLXPORT_API void mlxport_model_close(mlxport_model *model);

/** mlxport_model_dim: the embedding dimension (hidden size): the row length of
 * mlxport_model_embed's output and of the token embeddings.
 * Thread-safety: any thread (read-only). */
MLXPORT_API size_t mlxport_model_dim(const mlxport_model *model);

/** mlxport_model_num_labels: number of classes of the model's classification head (the row
 * length of mlxport_model_classify's output); 0 when the model has no head.
 * Thread-safety: any thread (read-only). */
MLXPORT_API size_t mlxport_model_num_labels(const mlxport_model *model);

/** mlxport_model_label: name of class `index` (config.json id2label, e.g. "entailment").
 * Returns: a string owned by the model (valid until mlxport_model_close), or NULL when index is
 *   out of range.
 * Thread-safety: any thread (read-only). */
MLXPORT_API const char *mlxport_model_label(const mlxport_model *model, size_t index);

/** mlxport_model_max_length: the number of tokens per text (or pair) the model computes on:
 * options.max_length when it was set, else the model's default (sentence-transformers
 * max_seq_length, else the tokenizer's model_max_length bounded by the position embeddings).
 * Longer inputs are truncated by mlxport_model_embed / _classify / _zero_shot; a caller that must
 * not cut silently (mlxport serve) counts tokens with mlxport_tokenizer_encode first.
 * Thread-safety: any thread (read-only). */
MLXPORT_API size_t mlxport_model_max_length(const mlxport_model *model);

/** mlxport_model_is_quantized: 1 when the model holds MLX affine-quantized weights, else 0.
 * Thread-safety: any thread (read-only). */
MLXPORT_API int mlxport_model_is_quantized(const mlxport_model *model);

/** mlxport_model_embed: sentence embeddings with the model's sentence-transformers pooling
 * (mean / CLS / max, and its Normalize module when it has one), in input order.
 * texts: n NUL-terminated UTF-8 strings (invalid UTF-8 is replaced by U+FFFD, as Python does).
 * normalize: 1 = L2-normalize every row (sentence-transformers normalize_embeddings=True).
 * out: caller-owned, n * mlxport_model_dim(model) floats, row-major.
 * Errors: MLXPORT_ERR_INVALID_ARG (NULL arguments), MLXPORT_ERR_NOMEM.
 * Thread-safety: one call at a time per handle (the handle holds the work buffers); use one
 *   handle per thread for parallel calls. The call itself uses options.threads threads. */
MLXPORT_API mlxport_status mlxport_model_embed(mlxport_model *model, size_t n, const char *const *texts, int normalize,
                                               float *out);

/** mlxport_model_classify: logits of the model's sequence-classification head for n texts, or n
 * (text, text_pair) pairs such as (premise, hypothesis) for an NLI model.
 * texts: n strings; pairs: NULL for single texts, else n second texts.
 * logits: caller-owned, n * mlxport_model_num_labels(model) floats, row-major; label names
 *   from mlxport_model_label.
 * Errors: MLXPORT_ERR_UNSUPPORTED (the model has no classification head),
 *   MLXPORT_ERR_INVALID_ARG, MLXPORT_ERR_NOMEM.
 * Thread-safety: one call at a time per handle. */
MLXPORT_API mlxport_status mlxport_model_classify(mlxport_model *model, size_t n, const char *const *texts,
                                                  const char *const *pairs, float *logits);

/** mlxport_model_zero_shot: zero-shot classification through an NLI model, with the semantics of
 * transformers' ZeroShotClassificationPipeline: each (text, template with the label) pair is
 * classified; single-label: softmax of the entailment logits over the labels; multi-label (or
 * one label): softmax of entailment vs contradiction per label.
 * texts: n_texts strings; labels: n_labels candidate labels.
 * hypothesis_template: contains "{}" (NULL: "This example is {}.").
 * scores: caller-owned, n_texts * n_labels floats, in the order of `labels` (not sorted).
 * Errors: MLXPORT_ERR_UNSUPPORTED (not an NLI classifier), MLXPORT_ERR_INVALID_ARG (no labels,
 *   a template without "{}").
 * Thread-safety: one call at a time per handle. */
MLXPORT_API mlxport_status mlxport_model_zero_shot(mlxport_model *model, size_t n_texts, const char *const *texts,
                                                   size_t n_labels, const char *const *labels,
                                                   const char *hypothesis_template, int multi_label, float *scores);

/** mlxport_model_token_embeddings: the last hidden states of the real (non-padding) tokens of
 * one text, special tokens included (sentence-transformers output_value="token_embeddings").
 * out: receives a library-allocated array of *n_tokens * mlxport_model_dim(model) floats.
 * Ownership: free *out with mlxport_free.
 * Errors: MLXPORT_ERR_INVALID_ARG, MLXPORT_ERR_NOMEM.
 * Thread-safety: one call at a time per handle. */
MLXPORT_API mlxport_status mlxport_model_token_embeddings(mlxport_model *model, const char *text, float **out,
                                                          size_t *n_tokens);

#ifdef __cplusplus
}
#endif
#endif /* MLXPORT_MODEL_H */
