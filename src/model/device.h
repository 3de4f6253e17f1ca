/* The compute-device backend interface (docs/cuda.md): what a model family's forward pass needs
 * from a device other than the CPU (the CUDA backend, src/cuda/, implements it). The family code
 * stays one forward per family: it calls the layer helpers of layers.h (mp_act_alloc,
 * mp_dense_run, mp_ln_run, mp_attention_run, mp_embed_sum_ln, ...), which run the CPU kernels
 * or, when the model was opened on a device, these operations on device buffers. On a device
 * the float pointers the helpers hand out are device memory in the backend's compute dtype: the
 * family code never dereferences them (host copies come from mp_layer_report / the pooling and
 * head helpers). */
#ifndef MP_MODEL_DEVICE_H
#define MP_MODEL_DEVICE_H
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "mlxport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which device a model runs on: "cpu" (the default), "cuda" (= cuda:0) or "cuda:N". */
typedef struct mp_device_spec {
  int kind;  /* MP_DEVICE_CPU or MP_DEVICE_CUDA */
  int index; /* CUDA device ordinal */
} mp_device_spec;
enum { MP_DEVICE_CPU = 0, MP_DEVICE_CUDA = 1 };

/* "cpu" / "cuda" / "cuda:N" (NULL or "" = cpu). MP_ERR_INVALID_ARG naming the accepted forms;
 * the build-without-CUDA error comes at open, not here. */
mp_status mp_device_parse(const char *s, mp_device_spec *out);
/* --device-dtype: float16|fp16, bfloat16|bf16, float32|fp32 -> MP_F16/MP_BF16/MP_F32
 * (MP_ERR_INVALID_ARG naming the accepted values). */
mp_status mp_device_dtype_parse(const char *s, mp_dtype *out);
/* 1 when this library was built with the CUDA backend (cmake -DMP_CUDA=ON). */
int mp_device_cuda_built(void);
/* Free and total memory of CUDA device `index` in bytes (cudaMemGetInfo; either pointer may be
 * NULL). MP_ERR_UNSUPPORTED in a build without CUDA or when no such device / driver exists.
 * Note: it initializes CUDA in the calling process, and a process that forked after that cannot
 * use CUDA in the child: a program that forks GPU workers (the pipeline) asks from a short-lived
 * child of its own. */
mp_status mp_device_memory(int index, size_t *free_b, size_t *total_b);
/* The GPUs this build can use: *count of them (0 with an error when there is no usable GPU or
 * driver, MP_ERR_UNSUPPORTED without the CUDA build) and, for index < *count, the name of device
 * `index` (into name, n bytes) and its memory in bytes. For `mlxport version`. */
mp_status mp_device_info(int index, int *count, char *name, size_t n, size_t *total_b);

/* Attention on device buffers: mp_attention_args' meaning (kernels.h), with q/k/v/out device
 * pointers and key_mask a device copy ([batch, seq_k] bytes, NULL = all keys). */
typedef struct mp_dev_attention {
  int64_t batch, seq_q, seq_k, heads, head_dim;
  const void *q, *k, *v;
  int64_t ldq, ldk, ldv, ldo; /* row strides in elements (0 = heads*head_dim) */
  void *out;
  float scale;
  const uint8_t *key_mask;
  /* Relative-position score terms, indexed per (query i, key j) by dd = i - j + seq_k - 1
   * (seq_q == seq_k); all NULL = none.
   * DeBERTa's disentangled attention: score += scale * (Q_i . pos_k[cix[dd]] + K_j . pos_q[pix[dd]])
   * per head, pos_k/pos_q device rows of heads*head_dim values (compute dtype, row stride ldp, 0 =
   * heads*head_dim), cix/pix device int32 [2 seq_k - 1] (either pair may be NULL).
   * MPNet's relative position bias: score += bias_tab[bidx[dd] * heads + h] (device f32 table,
   * device int32 bidx [2 seq_k - 1]). */
  const void *pos_k, *pos_q;
  const int32_t *cix, *pix;
  int64_t ldp;
  const float *bias_tab;
  const int32_t *bidx;
  int causal;     /* keys j > i are masked (decoder self-attention) */
  int64_t window; /* > 0: keys with |i - j| > window are masked (ModernBERT local layers) */
  /* The rows of pos_k / pos_q that cix / pix reach: [pos_lo, pos_lo + n_pos) (n_pos 0 = unknown;
   * the backend then computes the terms per pair instead of as a table product). */
  int64_t pos_lo, n_pos;
} mp_dev_attention;

/* The operations a device backend provides. ctx is the backend's state (one per model). All
 * activation buffers hold values of the backend's compute dtype; weights are handles returned by
 * the upload functions. Every operation is enqueued in order; download waits for it. */
typedef struct mp_device_ops {
  const char *name; /* "cuda" */
  void (*close)(void *ctx);
  /* "cuda:0 NVIDIA H200, fp16" */
  const char *(*describe)(void *ctx);
  /* Start of a forward pass: activation memory of the previous pass is released. */
  mp_status (*begin)(void *ctx);
  /* Activation memory for n values (room for n f32 whatever the compute dtype). NULL = out of memory
   * (the message is set). */
  void *(*alloc)(void *ctx, size_t n);
  /* Host ints/bytes into activation memory (valid until the next begin). */
  void *(*upload_act)(void *ctx, const void *host, size_t bytes);
  /* A weight or vector given as f32 on the host, stored in the compute dtype (as_compute) or in
   * f32, kept until close. NULL = error set. */
  void *(*upload_param)(void *ctx, const float *host, int64_t n, int as_compute);
  /* y[rows, out] = act(x[rows, in] · W[out, in]ᵀ + bias[out]) (bias may be NULL). */
  mp_status (*dense)(void *ctx, const void *x, int64_t rows, const void *w, int64_t out, int64_t in, const void *bias,
                     mp_act act, void *y);
  /* out = LayerNorm(x + residual) * g + b per row (residual, b may be NULL; g f32 params). */
  mp_status (*layernorm)(void *ctx, const void *x, const void *residual, int64_t rows, int64_t dim, const void *g,
                         const void *b, float eps, void *out);
  /* out[r] = LN(scale0 * tables[0][ids[0][r]] + sum_t>0 tables[t][ids[t][r]]) (g NULL: no LN); ids are
   * device int32 [rows]. */
  mp_status (*embed_sum_ln)(void *ctx, int n_tables, const void *const *tables, const int32_t *const *ids, int64_t rows,
                            int64_t dim, float scale0, const void *g, const void *b, float eps, void *out);
  mp_status (*attention)(void *ctx, const mp_dev_attention *a);
  /* out[r] = x[r * stride] for r < n: rows of dim values (the first token of each sequence). */
  mp_status (*gather_rows)(void *ctx, const void *x, int64_t n, int64_t stride, int64_t dim, void *out);
  /* Sentence-transformers pooling of x [batch, seq, dim] with mask (device int32 [batch, seq], NULL =
   * all real): pooling 1 cls, 2 mean, 3 max, 4 mean_sqrt_len (model/config.h mp_pooling), then L2
   * normalize when asked; out: host f32 [batch, dim]. */
  mp_status (*pool)(void *ctx, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask, int pooling,
                    int normalize, float *out);
  /* out[r] = x[idx[r]] for r < n (idx device int32; idx[r] < 0: a row of zeros): rows of dim values. */
  mp_status (*gather_idx)(void *ctx, const void *x, int64_t n, const int32_t *idx, int64_t dim, void *out);
  /* x[r] = 0 for the rows r < rows whose keep[r] (device bytes) is 0 (rows of dim values). */
  mp_status (*zero_rows)(void *ctx, void *x, int64_t rows, int64_t dim, const uint8_t *keep);
  /* n values of activation memory -> host f32 (waits for the work queued before). */
  mp_status (*download)(void *ctx, const void *x, size_t n, float *host);
  /* Rotary embeddings of fused rows qkv [rows, 3 hidden] (q | k | v, heads of d values; position =
   * row % seq) into separate q, k, v [rows, hidden]: q/k get x * cos + rotate_half(x) * sin from cs
   * (device f32 [2 seq][d/2]: cos rows then sin rows), v is copied. */
  mp_status (*rope_split)(void *ctx, const void *qkv, int64_t rows, int64_t seq, int64_t hidden, int64_t d,
                          const float *cs, void *q, void *k, void *v);
  /* x[i] = x[i] + y[i] (op 0) or x[i] * y[i] (op 1) for i < n. */
  mp_status (*binary)(void *ctx, void *x, const void *y, int64_t n, int op);
  /* out[r] = mean over the real tokens (mask device int32 [batch, seq], NULL = all) of x [batch, seq,
   * dim], in the compute dtype (ModernBERT's mean classifier pooling). */
  mp_status (*mean_rows)(void *ctx, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                         void *out);
  /* The high-water mark of the device memory this context allocated (weights, activations,
   * workspace), in bytes. */
  size_t (*peak_bytes)(void *ctx);
  /* out = (x + residual) * g + b per row of dim values, elementwise (MobileBERT's NoNorm; residual
   * may be NULL; g, b f32 params; out may alias x). */
  mp_status (*affine)(void *ctx, const void *x, const void *residual, int64_t rows, int64_t dim, const void *g,
                      const void *b, void *out);
  /* Whether an MLX affine matrix [out, in] of this group size can stay quantized on the device (0:
   * it is uploaded dequantized, upload_param). May be NULL. */
  int (*qweight_ok)(void *ctx, int64_t out, int64_t in, int group);
  /* An MLX affine matrix kept quantized: codes one byte each [out, in], scales and biases f32 [out,
   * in / group]; element w[o][i] = scale * code + bias as mx.dequantize computes it. The returned
   * handle is accepted by dense as its w. NULL = error set. */
  void *(*upload_qweight)(void *ctx, const uint8_t *codes, const float *scales, const float *biases, int64_t out,
                          int64_t in, int group);
  /* The fast compute mode (--compute fast) for MLX affine matrices (docs/cuda.md, "The fast mode"):
   * whether the backend has it for a matrix [out, in] (0: the model computes faithfully on this
   * device), and the upload of such a matrix given as the f32 values mx.dequantize gives (the
   * backend rounds them a second time, to its 8-bit format). The handle is accepted by dense as its
   * w. Both may be NULL. raw_input: the layer's input comes from no producer that writes its 8-bit
   * copy (mp_dense.raw_input); the backend may keep such a layer faithful, where quantizing its input
   * in a pass of its own would cost more than the 8-bit GEMM saves. */
  int (*fast8_ok)(void *ctx, int64_t out, int64_t in, int raw_input);
  void *(*upload_fast8)(void *ctx, const float *w, int64_t out, int64_t in);
  /* x *= y over [rows, dim]: binary's product with its rows known, so that a backend in its fast
   * mode can write the 8-bit copy of the product for the next dense layer, as its LayerNorm does
   * (ModernBERT's GeGLU before mlp.Wo). May be NULL: binary is used, and that layer counts as
   * raw_input. */
  mp_status (*mul_rows)(void *ctx, void *x, const void *y, int64_t rows, int64_t dim);
  /* x [rows, dim] is the input of several dense layers and does not change until the pass ends
   * (BART's encoder output, read by every decoder layer's cross-attention keys and values): a
   * backend in its fast mode may make its 8-bit copy once and hand it to each of them, as it does a
   * LayerNorm's. Valid until the next keep_copy or begin; x NULL: nothing kept. May be NULL: such
   * layers count as raw_input. */
  mp_status (*keep_copy)(void *ctx, const void *x, int64_t rows, int64_t dim);
  /* The activation a backend in its fast mode computes in place of act after a dense layer: the
   * erf GELU as its tanh form, which it fuses into the GEMM (|difference| < 4.8e-4, a quarter of an
   * fp16 ulp where it peaks), or act itself. May be NULL: act. */
  mp_act (*fast_act)(void *ctx, mp_act act);
} mp_device_ops;

#ifdef MP_HAVE_CUDA
/* The CUDA backend (src/cuda/cuda_backend.cu): opens device `index` with compute dtype dt
 * (MP_F16, MP_BF16 or MP_F32). Errors name the CUDA error (no device, no driver, ...). */
mp_status mp_cuda_open(int index, mp_dtype dt, void **ctx);
const mp_device_ops *mp_cuda_ops(void);
/* cudaGetDeviceCount, and the name and memory of device `index` when it exists (mp_device_info). */
mp_status mp_cuda_device_info(int index, int *count, char *name, size_t n, size_t *total_b);
/* cudaMemGetInfo of device `index` (mp_device_memory). */
mp_status mp_cuda_memory(int index, size_t *free_b, size_t *total_b);
#endif

#ifdef __cplusplus
}
#endif
#endif
