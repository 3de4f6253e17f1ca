/* Compute kernels for transformer encoders on CPU (src/kernels/).
 *
 * Everything works on float32 activations. Weights keep their stored encoding (F32, F16, BF16
 * or MLX affine-quantized, usually memory-mapped) and are read through an mp_linear_weight
 * descriptor, so model code never branches on how a weight is encoded.
 *
 * Dispatch: every kernel has a scalar reference path and vector paths (x86: AVX2+FMA+F16C,
 * AVX-512 F/BW/VL/DQ; aarch64: NEON, NEON + dot product) chosen once at run time from CPU
 * features (see mp_kernels_isa). The environment variable
 * MP_ISA=scalar|avx2|avx512|neon|neon-dotprod caps the choice (tests and benchmarks).
 *
 * Threads: kernels take an mp_pool (NULL = run on the calling thread). Work is split into
 * tasks whose shape does not depend on the number of threads, and every output element is
 * computed by the same sequence of float operations whatever thread runs it, so results are
 * bit-identical for 1, 2 or N threads (for a given ISA path).
 *
 * Memory: kernels never keep state between calls; scratch needed by a call (a few packed
 * weight tiles per thread) is taken from the pool's per-thread scratch buffers, which grow
 * once and are reused, so steady-state calls do not allocate.
 *
 * Errors: functions returning mp_status validate their arguments (shapes, encodings, ids) and
 * set mp_err() with the weight's name; void functions have no failure mode besides
 * programming errors (NULL pointers), which they do not check.
 */
#ifndef MP_KERNELS_H
#define MP_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

/* ---------------------------------------------------------------------------------------
 * CPU feature dispatch */
typedef enum mp_isa {
  MP_ISA_SCALAR = 0,       /* portable C reference */
  MP_ISA_AVX2 = 1,         /* x86: AVX2 + FMA + F16C */
  MP_ISA_AVX512 = 2,       /* x86: AVX-512 F/BW/VL/DQ (+ BF16/VNNI noted in mp_kernels_features) */
  MP_ISA_NEON = 3,         /* aarch64: Advanced SIMD (float kernels, integer kernels on SMULL) */
  MP_ISA_NEON_DOTPROD = 4, /* aarch64: NEON + the dot-product extension (integer kernels on SDOT) */
  MP_ISA_BEST = 5,         /* as a cap: no cap */
} mp_isa;

/* ISAs are ranked per architecture: scalar < AVX2 < AVX-512 on x86, scalar < NEON <
 * NEON-dotprod on aarch64. A cap names a level (scalar 0; AVX2 and NEON 1; AVX-512 and
 * NEON-dotprod 2; MP_ISA_BEST no cap), so MP_ISA=avx2 means "first vector level" on either
 * architecture. */

/* ISA the kernels use now: the best the CPU supports, capped by MP_ISA in the environment
 * (read once) and by mp_kernels_set_isa. */
mp_isa mp_kernels_isa(void);
/* Caps the ISA (for tests and benchmarks; not thread-safe against running kernels).
 * Returns the ISA actually in effect (the best this CPU has at or below the cap's level). */
mp_isa mp_kernels_set_isa(mp_isa max);
/* The paths this CPU can run, scalar first, in rank order (what tests iterate); returns how
 * many (1 to 3). */
int mp_kernels_isas(mp_isa out[3]);
const char *mp_isa_name(mp_isa isa); /* "scalar", "avx2", "avx512", "neon", "neon-dotprod" */
/* Human-readable list of detected features, e.g. "avx2 fma f16c avx512f avx512bw ...". */
const char *mp_kernels_features(void);
/* AMX-INT8 (x86-64 Linux: CPU, OS tile state, arch_prctl permission): whether this machine can use
 * it, and whether the integer kernels on the AVX-512 level may (default yes; MP_AMX=0 in the
 * environment turns it off). mp_kernels_set_amx returns the previous setting (for tests and
 * benchmarks; not thread-safe against running kernels). The AMX and VNNI kernels are
 * bit-identical. */
int mp_kernels_has_amx(void);
int mp_kernels_set_amx(int on);

/* ---------------------------------------------------------------------------------------
 * Thread pool: a parallel-for. */
typedef struct mp_pool mp_pool;

/* n_threads = 0 uses every online core; 1 creates no worker threads. */
mp_status mp_pool_create(int n_threads, mp_pool **out);
void mp_pool_free(mp_pool *pool);         /* accepts NULL */
int mp_pool_threads(const mp_pool *pool); /* 1 for NULL */

/* fn(ctx, task, thread) for task in [0, n_tasks), spread over the pool's threads (the caller
 * is thread 0 and takes part). Returns when every task has finished. thread is in
 * [0, mp_pool_threads). Must not be called from inside a task of the same pool, nor from two
 * threads at once on the same pool. pool NULL runs every task on the calling thread. */
typedef void (*mp_task_fn)(void *ctx, int64_t task, int thread);
void mp_pool_run(mp_pool *pool, int64_t n_tasks, mp_task_fn fn, void *ctx);

/* Per-thread scratch owned by the pool, 64-byte aligned, at least `bytes` long; valid until
 * the next call with the same thread index. Use only inside a task (thread = the task's
 * thread argument) or, with thread 0, outside any run. NULL when out of memory or pool is
 * NULL (kernels called with a NULL pool use a temporary single-thread pool internally). */
void *mp_pool_scratch(mp_pool *pool, int thread, size_t bytes);
/* One more pool-owned buffer, shared by all threads: taken outside a run (it may move when it
 * grows), then read or written by the tasks of the next run (each task its own part). Same
 * alignment and lifetime rules as mp_pool_scratch. NULL for a NULL pool or out of memory. */
void *mp_pool_shared(mp_pool *pool, size_t bytes);

/* ---------------------------------------------------------------------------------------
 * Weight matrices: y = x·Wᵀ (+ b), W logically [out, in] float. */
typedef struct mp_linear_weight {
  const char *name; /* for error messages (may be NULL) */
  int64_t out, in;  /* logical shape [out, in] */
  /* Float weights (bits == 0): dtype is MP_F32, MP_F16 or MP_BF16 and data is row-major
   * [out, in] of that type.
   * MLX affine-quantized weights (bits in 2,3,4,5,6,8): dtype is MP_U32 and data is MLX's
   * packed uint32 matrix [out, in*bits/32]: each row is a little-endian bit stream of
   * `in` unsigned `bits`-bit codes (code j at bit j*bits of the row's bytes; for 2/4/8 bits
   * this is the usual nibble/byte packing in uint32 words). */
  mp_dtype dtype;
  const void *data;
  int bits;       /* 0 = float weight */
  int group_size; /* 32, 64 or 128 (quantized only) */
  /* Quantized only: scales and biases [out, in/group_size] of scale_dtype (F32/F16/BF16);
   * element w[o][i] = scale[o][i/g] * q[o][i] + bias[o][i/g] (computed as a product rounded
   * to float, then a sum rounded to float, exactly as mx.dequantize). */
  mp_dtype scale_dtype;
  const void *scales;
  const void *biases;
  /* Optional, F32 weights only: the matrix packed once (mp_linear_prepack) into the GEMM's
   * panels of panel_nr outputs, [ceil(out / panel_nr)][in][panel_nr] zero-padded, read instead of
   * packing data per call when panel_nr is the current vector path's width. data stays the
   * row-major reference (the scalar path reads it). NULL / 0: none. */
  const float *panels;
  int panel_nr;
} mp_linear_weight;

/* Bytes the pre-packed panels of an F32 weight take for the current vector path (0: not F32, or
 * the scalar path, which has no panels). */
size_t mp_linear_panels_bytes(const mp_linear_weight *w);
/* Packs w's panels into out (64-byte aligned, mp_linear_panels_bytes(w) bytes) and points
 * w->panels / w->panel_nr at them. Results are bit-identical with and without panels. */
mp_status mp_linear_prepack(mp_linear_weight *w, float *out);

/* Checks a descriptor (shapes, dtypes, bits, group size, in % group_size, non-NULL data).
 * Model code should call it once when binding weights; mp_linear calls it too. */
mp_status mp_linear_weight_check(const mp_linear_weight *w);

/* Activation applied elementwise (fused into mp_linear_act, or by mp_activation). */
typedef enum mp_act {
  MP_ACT_NONE = 0,
  MP_ACT_RELU,      /* max(x, 0) */
  MP_ACT_GELU_ERF,  /* 0.5 x (1 + erf(x / sqrt 2)): HF "gelu" */
  MP_ACT_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): "gelu_new", "gelu_pytorch_tanh" */
  MP_ACT_TANH,
  MP_ACT_SILU, /* x * sigmoid(x): "silu", "swish" */
  MP_ACT_SIGMOID,
} mp_act;

/* y[r][o] = act(sum_i x[r][i] * W[o][i] + bias[o]) for r < rows.
 * x: [rows, in] contiguous f32; y: [rows, out] contiguous f32 (must not alias x).
 * bias: NULL or `out` values of bias_dtype (MP_F32/MP_F16/MP_BF16).
 * Quantized weights are used in their packed form (small tiles are decoded into per-thread
 * scratch); the arithmetic is float (no activation quantization). */
mp_status mp_linear_act(mp_pool *pool, const float *x, int64_t rows, const mp_linear_weight *w, const void *bias,
                        mp_dtype bias_dtype, mp_act act, float *y);
/* y[i] = x·W[i]ᵀ + bias[i] for n (1..4) weights that read the same input (the query, key and value
 * projections): at batch-1 sizes one parallel job for all of them, else one after another.
 * bias may be NULL or hold NULLs. Results are identical to n calls of mp_linear. */
mp_status mp_linear_multi(mp_pool *pool, const float *x, int64_t rows, int n, const mp_linear_weight *const *w,
                          const void *const *bias, const mp_dtype *bias_dtype, float *const *y);
/* Same with MP_ACT_NONE. */
mp_status mp_linear(mp_pool *pool, const float *x, int64_t rows, const mp_linear_weight *w, const void *bias,
                    mp_dtype bias_dtype, float *y);

/* ---------------------------------------------------------------------------------------
 * Integer ("fast") compute for MLX affine-quantized weights (qlinear.c, qlinear_x86.c, qlinear_neon.c).
 *
 * A quantized mp_linear_weight is repacked once (mp_qweight_pack) into the layout of the
 * integer micro-kernels: the codes widened to bytes in panels of MP_QNR outputs x 4 inputs,
 * scales and biases as f32 per panel and group. Memory: 1 byte per weight + 8 bytes per group
 * of outputs; never an f32 copy of the matrix.
 *
 * At each call the activations are quantized per row and per block of at most 32 inputs (a
 * weight group of 64 or 128 is split into blocks of 32, each with its own activation scale and
 * the group's weight scale and bias) to int8 with a zero point at the block's centre:
 * z = (max + min) / 2, d = (max - min) / 254, xq = round-half-even((x - z) * 254 / (max - min)) in
 * [-127, 127], so x ~ d * xq + z. With q the weight codes, s and b the group's scale and bias,
 *   y[r][o] = bias[o] + sum_g ( s[o][g] * d[r][g] * isum + b[o][g] * xs[r][g]
 *                               + s[o][g] * (sum_{i in g} q[o][i]) * z[r][g] )        (g: blocks)
 * with isum = sum_{i in g} xq[r][i] * q[o][i] exact and xs = d * sum(xq) + n z (n: the block size), accumulated from
 * acc = bias with fma, per block in that order, or, where a weight group spans two or more blocks,
 * per pair of blocks a, b of one group: t = isum_a * d_a, t = fma(isum_b, d_b, t), then
 * acc += s * t, b * (xs_a + xs_b), sq_a * z_a, sq_b * z_b (kernels_internal.h). Integer sums are exact, so every path
 * (scalar reference, AVX2, AVX-512 VNNI and AMX, NEON) gives bit-identical results, whatever the thread count or the
 * other rows of the batch. This approximates the MLX ("faithful") semantics of mp_linear_act: the error is that of the
 * 8-bit activation rounding (at most 1/254 of each block's range per input). */
#define MP_QNR 32 /* outputs per packed panel */
typedef struct mp_qweight mp_qweight;

/* Repacks a quantized weight (bits 2..8, any group size that is a multiple of 4). The packed
 * form does not reference w's buffers. MP_ERR_UNSUPPORTED for float weights. */
mp_status mp_qweight_pack(const mp_linear_weight *w, mp_qweight **out);
void mp_qweight_free(mp_qweight *qw);          /* accepts NULL */
size_t mp_qweight_bytes(const mp_qweight *qw); /* memory held by the packed form */
/* The packed weight's logical shape [out, in]. */
void mp_qweight_shape(const mp_qweight *qw, int64_t *out, int64_t *in);

/* y = act(x·Wᵀ + bias) with the integer kernels (same arguments as mp_linear_act). */
mp_status mp_qlinear_act(mp_pool *pool, const float *x, int64_t rows, const mp_qweight *w, const void *bias,
                         mp_dtype bias_dtype, mp_act act, float *y);

/* The same for n (1..4) weights that read the same input (e.g. the query, key and value
 * projections): x is quantized once and the products run as one parallel job. The weights must
 * share `in` and the block size; bias may be NULL (no biases) or hold NULLs. Results are
 * identical to n calls of mp_qlinear_act. */
mp_status mp_qlinear_multi(mp_pool *pool, const float *x, int64_t rows, int n, const mp_qweight *const *w,
                           const void *const *bias, const mp_dtype *bias_dtype, mp_act act, float *const *y);

/* y = act(x·W1ᵀ + b1)·W2ᵀ + b2 with both products on the integer kernels, the intermediate never
 * stored in f32: each finished 32-output panel of the first product (bias, act) is at once one
 * quantized input block of the second. Bit-identical to mp_qlinear_act(W1, act) followed by
 * mp_qlinear_act(W2). Needs mp_qlinear_chain_ok(w1, w2) (else MP_ERR_UNSUPPORTED): W1's outputs
 * are W2's inputs, a multiple of MP_QNR, and W2's activation block is MP_QNR inputs. */
int mp_qlinear_chain_ok(const mp_qweight *w1, const mp_qweight *w2);
mp_status mp_qlinear_chain(mp_pool *pool, const float *x, int64_t rows, const mp_qweight *w1, const void *b1,
                           mp_dtype b1_dtype, mp_act act, const mp_qweight *w2, const void *b2, mp_dtype b2_dtype,
                           float *y);

/* ---------------------------------------------------------------------------------------
 * Fast compute for 16-bit float weights (bflinear.c): F16 / BF16 matrices repacked once into
 * AMX-BF16 tiles; activations split per element into two bf16 terms (x = xh + xl, 16
 * significant bits), F16 weights into two exact ones, so the products keep close to f32
 * precision (relative error ~2^-16 against 2^-24) at the tile units' speed. Results do not
 * depend on the thread count or the other rows of the batch. Available on x86-64 Linux CPUs
 * with AMX-BF16 at the AVX-512 level (MP_AMX=0 or MP_ISA=avx2 turn it off); elsewhere the pack
 * call answers MP_ERR_UNSUPPORTED and callers keep the f32 path (mp_linear_act). */
typedef struct mp_bfweight mp_bfweight;
int mp_bflinear_available(void);
mp_status mp_bfweight_pack(const mp_linear_weight *w, mp_bfweight **out);
void mp_bfweight_free(mp_bfweight *b);          /* accepts NULL */
size_t mp_bfweight_bytes(const mp_bfweight *b); /* memory held by the packed form */
void mp_bfweight_shape(const mp_bfweight *b, int64_t *out, int64_t *in);
/* y = act(x·Wᵀ + bias), same arguments as mp_linear_act. MP_ERR_UNSUPPORTED when the tiles are
 * not usable now. */
mp_status mp_bflinear_act(mp_pool *pool, const float *x, int64_t rows, const mp_bfweight *w, const void *bias,
                          mp_dtype bias_dtype, mp_act act, float *y);

/* Which integer kernel runs now: "scalar", "avx2" (VPMADDUBSW), "avx512-vnni" (VPDPBUSD),
 * "neon" (SMULL + SADALP) or "neon-dotprod" (SDOT); follows mp_kernels_isa (AVX-512 without
 * VNNI uses the AVX2 kernel). */
const char *mp_qlinear_path(void);

/* The codes of row o of an MLX affine-quantized W (bits 2..8), one byte each, into out [in]. */
void mp_weight_row_codes(const mp_linear_weight *w, int64_t o, uint8_t *out);
/* Decodes rows [row0, row0+n) of W into out ([n, in] f32). For quantized weights the values
 * are bit-identical to mx.dequantize. Also used for embedding tables. */
mp_status mp_weight_rows_f32(const mp_linear_weight *w, int64_t row0, int64_t n, float *out);

/* Embedding lookup: out[t] = table row ids[t] (as f32, [n, table->in]) for any encoding.
 * An id outside [0, table->out) is an error naming the table. */
mp_status mp_embedding_rows(const mp_linear_weight *table, const int32_t *ids, int64_t n, float *out);

/* ---------------------------------------------------------------------------------------
 * Conversions and small helpers */

/* dst[i] = (float)src[i] for src of dtype MP_F32/MP_F16/MP_BF16. MP_ERR_UNSUPPORTED else. */
mp_status mp_to_f32(mp_dtype dtype, const void *src, int64_t n, float *dst);
void mp_f16_to_f32_row(const uint16_t *src, int64_t n, float *dst);
void mp_bf16_to_f32_row(const uint16_t *src, int64_t n, float *dst);

/* ---------------------------------------------------------------------------------------
 * Normalization, activations, softmax. All row-wise on contiguous [rows, dim] f32. */

/* out[r] = LayerNorm(x[r] + residual[r]) * gamma + beta, mean/variance over dim (biased
 * variance, eps inside the sqrt, like torch.nn.LayerNorm). residual, gamma, beta may be NULL
 * (no residual / scale 1 / shift 0). out may alias x (not residual). Statistics are computed
 * in float with a fixed per-row order (double accumulation in the scalar path). */
void mp_layernorm(mp_pool *pool, const float *x, const float *residual, int64_t rows, int64_t dim, const float *gamma,
                  const float *beta, float eps, float *out);

/* x[i] = act(x[i]) for i < n, in place. */
void mp_activation(mp_pool *pool, mp_act act, float *x, int64_t n);

/* Row-wise softmax in place: x[r] = softmax(x[r] + mask) over cols. mask: NULL or `cols`
 * additive values (same for every row; use -INFINITY to exclude). A row whose entries are all
 * -inf becomes all zeros. */
void mp_softmax_rows(mp_pool *pool, float *x, int64_t rows, int64_t cols, const float *mask);

/* y[i] += x[i] (n elements). */
void mp_add_inplace(float *y, const float *x, int64_t n);

/* ---------------------------------------------------------------------------------------
 * Multi-head attention (encoder, non-causal).
 *
 * For each batch b and head h:
 *   O[b, i, h] = sum_j softmax_j(scale * <Q[b,i,h], K[b,j,h]> + bias[b,h,i,j]) V[b,j,h]
 * over keys j < seq_k with key_mask[b*seq_k + j] != 0.
 * Q rows are at q + (b*seq_q + i)*ldq + h*head_dim (likewise K, V with seq_k, and O with
 * seq_q/ldo), i.e. the usual [batch, seq, heads*head_dim] layout when ld = heads*head_dim.
 * Masked keys are excluded exactly (as HF's additive finfo.min mask does after exp); a query
 * whose keys are all masked gets a zero output. Queries are processed in blocks with an
 * online softmax, so memory is O(block) per thread, not O(seq^2). Parallel over
 * batch x heads x query blocks. */
typedef struct mp_attention_args {
  int64_t batch, seq_q, seq_k, heads, head_dim;
  const float *q, *k, *v;
  int64_t ldq, ldk, ldv; /* row strides in floats; 0 means heads*head_dim */
  float *out;
  int64_t ldo;
  float scale;             /* usually 1/sqrt(head_dim) */
  const uint8_t *key_mask; /* [batch, seq_k], nonzero = attend; NULL = all keys */
  /* Optional additive score bias (relative positions): element (b,h,i,j) at
   * bias[b*bias_stride_b + h*bias_stride_h + i*bias_stride_q + j]. NULL = none. Strides may be
   * 0 to broadcast. */
  const float *bias;
  int64_t bias_stride_b, bias_stride_h, bias_stride_q;
} mp_attention_args;

mp_status mp_attention(mp_pool *pool, const mp_attention_args *a);

#endif
