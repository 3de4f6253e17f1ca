/* Models: config.json -> family -> weights bound from an HF folder (safetensors, shards,
 * pytorch_model.bin) or an MLX folder (float or affine-quantized), one code path for all.
 * The forward pass never knows how a weight is encoded (kernels/kernels.h does). */
#ifndef MP_MODEL_MODEL_H
#define MP_MODEL_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

typedef struct mp_model mp_model;

/* How MLX affine-quantized layers are computed.
 * FAST (the default): integer kernels (activations quantized per row and group to int8, exact
 *   integer dot products with the weight codes; kernels.h mp_qlinear_act). Faster; results
 *   differ from MLX's by the activation rounding.
 * FAITHFUL: what MLX computes (the weights dequantized exactly as mx.dequantize, float
 *   accumulation): the reference for "how will this model behave in MLX".
 * Float weights (F32/F16/BF16) are computed the same way in both modes. */
typedef enum mp_compute { MP_COMPUTE_FAST = 0, MP_COMPUTE_FAITHFUL = 1 } mp_compute;
const char *mp_compute_name(mp_compute c); /* "fast", "faithful" */
/* "fast" / "faithful" -> *out; MP_ERR_INVALID_ARG naming the accepted values otherwise. */
mp_status mp_compute_parse(const char *s, mp_compute *out);

typedef struct mp_model_options {
  int threads;        /* 0 = all cores */
  mp_compute compute; /* default (0) MP_COMPUTE_FAST */
  /* Optional (the --q-auto recipe search): called for every float matrix the model binds
   * (module = tensor name without ".weight", [out, in] of dtype dt). A non-NULL result (out*in
   * float32 values, valid until the model is closed) replaces the weights; NULL keeps them. */
  const float *(*weight_hook)(void *ctx, const char *module, int64_t out, int64_t in, mp_dtype dt, const void *data);
  void *weight_hook_ctx;
  /* Where the forward pass runs: NULL / "cpu" (the CPU kernels), "cuda" or "cuda:N" (the CUDA
   * backend, docs/cuda.md; MP_ERR_UNSUPPORTED without the CUDA build, without a usable GPU, or
   * for a family not on CUDA yet). */
  const char *device;
  mp_dtype device_dtype; /* CUDA compute dtype: MP_F16 (default when 0), MP_BF16, MP_F32 */
} mp_model_options;

/* `ref`: folder or repo id in the HF cache (see format/hf.h). Loads config, weights (memory
 * mapped), tokenizer; checks every tensor the family needs (name, shape) with errors naming
 * the tensor. */
mp_status mp_model_open(const char *ref, const mp_model_options *opt, mp_model **out);
void mp_model_close(mp_model *m);
/* Parameter count of the model folder `dir` from its config.json alone (no weights needed):
 * what transformers' num_parameters() gives for AutoModel, or AutoModelForSequenceClassification
 * when `architectures` names a *ForSequenceClassification class. *cls_head tells which.
 * MP_ERR_UNSUPPORTED when the family has no count. */
mp_status mp_model_config_param_count(const char *dir, int64_t *n, int *cls_head);
const mp_model_config *mp_model_get_config(const mp_model *m);
const mp_tokenizer *mp_model_get_tokenizer(const mp_model *m);
const char *mp_model_path(const mp_model *m);
/* Longest input the model accepts (position table size; RoBERTa: minus padding_idx + 1). */
size_t mp_model_max_positions(const mp_model *m);
/* Default max_length for encoding: sentence-transformers max_seq_length, else min(tokenizer
 * model_max_length, max positions). */
size_t mp_model_default_max_length(const mp_model *m);

/* One padded batch of token ids [n, seq] (row-major). types may be NULL (all 0). */
typedef struct mp_model_batch {
  size_t n, seq;
  const int32_t *ids, *mask, *types;
} mp_model_batch;

/* Called after the embeddings (layer 0) and after each encoder layer l (1..layers) with the
 * hidden states [n, seq, hidden]. For layer-level comparisons. */
typedef void (*mp_layer_hook)(void *user, int layer, const float *hidden, size_t n, size_t seq, size_t dim);

typedef struct mp_forward_out {
  float *hidden;    /* optional [n, seq, hidden]: last hidden states */
  float *embedding; /* optional [n, hidden]: pooled sentence embedding (ST pooling + Normalize) */
  float *logits;    /* optional [n, num_labels] (needs a classification head) */
  mp_layer_hook hook;
  void *hook_user;
} mp_forward_out;

mp_status mp_model_forward(mp_model *m, const mp_model_batch *b, const mp_forward_out *out);

/* High level: encode texts (pairs when b != NULL), run in length-sorted batches, results in
 * input order. max_length 0 = mp_model_default_max_length. */
typedef struct mp_run_options {
  size_t batch_size;            /* default 32 */
  size_t max_length;            /* 0 = default */
  mp_trunc_strategy truncation; /* default longest_first */
  /* 0 (default): batches of batch_size rows. Else a batch also ends before rows x its longest input
   * would pass this many tokens (a batch holds at least one row): with the inputs sorted longest
   * first, short inputs go by in batches of up to batch_size rows while long ones stay within the
   * same token (and device memory) budget. */
  size_t max_batch_tokens;
} mp_run_options;
void mp_run_options_init(mp_run_options *o);
/* The rows of the next batch: min(remaining, batch_size), then fewer while rows x longest (the
 * batch's longest input, in tokens) passes max_batch_tokens (0 = no budget); at least one row. */
size_t mp_batch_rows(size_t remaining, size_t batch_size, size_t longest, size_t max_batch_tokens);

/* emb: [n, hidden]. n_tokens (optional): real tokens processed in total. */
mp_status mp_model_embed(mp_model *m, size_t n, const char *const *texts, const mp_run_options *o, float *emb,
                         uint64_t *n_tokens);
/* logits: [n, num_labels]. */
mp_status mp_model_classify(mp_model *m, size_t n, const char *const *a, const char *const *b, const mp_run_options *o,
                            float *logits, uint64_t *n_tokens);
/* Last hidden states of the real (non-padding) tokens of each text: out[i] is malloc'd
 * [lens[i], hidden] (caller frees each). */
mp_status mp_model_token_embeddings(mp_model *m, size_t n, const char *const *texts, const mp_run_options *o,
                                    float **out, size_t *lens);
/* The compute mode the model was opened with, and how many of its layers it applies to (the
 * MLX-quantized linear layers that run on the integer kernels; 0 in faithful mode or for a
 * float model). */
mp_compute mp_model_compute(const mp_model *m, size_t *n_int_layers);
/* How many F16/BF16 linear layers run on the bf16 tiles (fast mode, AMX-BF16 CPUs; else 0). */
size_t mp_model_bf16_layers(const mp_model *m);
/* 1 when the model has MLX-quantized weights (whatever the compute mode). */
int mp_model_has_quantized(const mp_model *m);
/* Matrices in MLX's floating-point modes (mxfp4, nvfp4, mxfp8). They are expanded once at load
 * to bfloat16, which holds every fp4/fp8 code x scale exactly (so the faithful semantics), and
 * run on the float kernels in both compute modes (the integer kernels do not apply to them). */
int mp_model_fp_quantized(const mp_model *m);
/* "cpu", or the device the model runs on ("cuda:0 NVIDIA H200, float16"). */
const char *mp_model_device_name(const mp_model *m);
/* The model's peak device memory so far (weights + activations + workspace) in bytes; 0 on the CPU. */
size_t mp_model_device_peak_bytes(const mp_model *m);
/* Frees m's device memory (weights, activations: the backend is closed) while the host side stays
 * (config, tokenizer). m must not run a forward pass again. For eval, which opens the faithful
 * model once the fast one has done its timed passes: one model resident on the GPU at a time. */
void mp_model_release_device(mp_model *m);
/* Hidden size (embedding dimension). */
size_t mp_model_hidden(const mp_model *m);
#endif
