/* The CUDA backend (docs/cuda.md): mp_device_ops (model/device.h) on one NVIDIA GPU. Weights are
 * uploaded once in the compute dtype (fp16, bf16 or fp32; with MP_CUDA_QGEMM=1 MLX affine matrices
 * stay quantized instead, qgemm.cuh); GEMMs run on cuBLASLt with the bias
 * (and ReLU / tanh-GELU) in its epilogue, and everything else in this file's kernels: fused
 * embeddings gather + LayerNorm, LayerNorm(+residual), encoder attention with a padding mask
 * (online softmax, no [T, T] scores in memory), pooling, row gather. Activations live in an
 * arena of device memory that is recycled at each forward pass. cuBLASLt algorithms are autotuned
 * at the first use of a shape, and a forward pass whose op sequence was seen before replays as one
 * CUDA graph (the ops are recorded per pass and compared). cudart is linked statically and
 * finds the driver at run time, so a machine without a GPU or driver gets a clear error here,
 * and the library loads and runs on the CPU as before. */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/error.h"
}
#include "model/device.h"

/* ------------------------------------------------------------------ element types */

template <typename T> struct elem;
template <> struct elem<float> {
  static __device__ __forceinline__ float load(float v) { return v; }
  static __device__ __forceinline__ float store(float v) { return v; }
};
template <> struct elem<__half> {
  static __device__ __forceinline__ float load(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half store(float v) { return __float2half_rn(v); }
};
template <> struct elem<__nv_bfloat16> {
  static __device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};
template <typename T> __device__ __forceinline__ float ld(const T *p, int64_t i) { return elem<T>::load(p[i]); }
template <typename T> __device__ __forceinline__ void st(T *p, int64_t i, float v) { p[i] = elem<T>::store(v); }
__device__ __forceinline__ float act_f(float x, int act); /* the activations (below) */
#include "cuda/fp8gemm.cuh"

/* ------------------------------------------------------------------ state */

typedef struct chunk {
  char *base;
  size_t size, used;
} chunk;

/* an MLX affine matrix kept quantized (qgemm.cuh): packed codes [npad / 8][in / 64][32][16 bytes],
 * (scale, bias) pairs [npad][G] as __half2 (sb_half) or float2 */
typedef struct qweight {
  const void *codes, *sb;
  int sb_half, group;
  int64_t out, in, npad, G;
} qweight;
#define QG_ROWS_DEFAULT 256
/* an MLX affine matrix in the fast mode (fp8gemm.cuh): E4M3 codes [out, in], f32 scales [out] */
typedef struct f8weight {
  const void *q;
  const float *s;
  int64_t out, in;
} f8weight;
#define ARENA_STEP ((size_t)256 << 20) /* the largest activation chunk allocated beyond a request's own size */

typedef struct lt_algo {
  int64_t m, n, k;
  int epi;
  int ok;
  int64_t lda, ldb;          /* the operands' leading dimensions (a strided view, e.g. q of fused q|k|v rows) */
  uint32_t al_a, al_b, al_c; /* the operands' pointer alignments (bytes, up to 256) the algorithm was chosen for */
  cublasLtMatmulAlgo_t algo;
} lt_algo;

#define N_ALGO 128
#define N_GRAPHS 8 /* forward passes (op sequences) kept as CUDA graphs, least recently used replaced */

struct op_rec;
/* a recorded op sequence of one forward pass (begin to its first download) and its graph */
typedef struct graph_slot {
  struct op_rec *ops;
  int n, cap;           /* n 0: an empty slot */
  cudaGraphExec_t exec; /* NULL until the sequence is seen a second time (then captured) */
  int failed;           /* capture or instantiation failed: the sequence runs as plain launches */
  unsigned long used;   /* for least-recently-used replacement */
} graph_slot;
enum { GR_OFF = 0, GR_LOG = 1, GR_DEFER = 2 };
#define WORKSPACE_BYTES ((size_t)32 << 20)

typedef struct cuda_ctx {
  int dev;
  mp_dtype dt;
  size_t esize;
  cudaStream_t stream;
  cublasLtHandle_t lt;
  void *workspace;
  chunk *chunks;
  int n_chunks;
  void **params;
  size_t n_params, cap_params;
  lt_algo algos[N_ALGO];
  int n_algos;
  char desc[400];
  size_t cur_bytes, peak_bytes; /* device memory this context holds (cudaMalloc), its high-water mark */
  void *rel_buf;                /* DeBERTa's c2p / p2c score tables (flash attention), reused by every layer */
  size_t rel_cap;
  int attention_simple; /* MP_CUDA_ATTENTION=simple: the CUDA-core reference kernel for every attention */
  int attention_mma;    /* the mma.sync flash kernel (flash_mma.cuh), the default; MP_CUDA_ATTENTION=wmma: WMMA */
  int flash_blocks;     /* 4: the mma kernel built for 4 blocks per SM (head_dim 64); MP_CUDA_FLASH_BLOCKS=1: not */
  int flash_plain;      /* 1: the mma kernel's plain form where no causal mask, window or relative term applies
                         * (MP_CUDA_FLASH_PLAIN=0: the general form everywhere) */
  uint64_t flash_configured; /* bit per flash-attention instance whose shared-memory limit is set on this device */
  int vec;       /* the 16-byte vector forms of LayerNorm, embeddings and activations (MP_CUDA_VEC_KERNELS=0: off) */
  int autotune;  /* cuBLASLt algorithms timed among the heuristic's candidates (MP_CUDA_AUTOTUNE=0: off; 2: logged) */
  int capturing; /* a CUDA graph is being captured on the stream: nothing may synchronize it */
  /* CUDA graphs (MP_CUDA_GRAPHS, on by default; off while profiling). From begin to the pass's first
   * download every op is recorded (kind + arguments) in log. GR_LOG: ops run as they come, and a
   * clean pass's log is kept in a slot at the download. GR_DEFER: the pass so far matches the
   * recorded sequence of at least one slot (live): ops are only recorded; at the download a slot
   * whose whole sequence matched runs as one graph (captured from the log the first time), and at
   * the first mismatch the deferred ops run as plain launches and the pass goes on in GR_LOG. */
  int graphs, gmode, gclean, direct;
  struct op_rec *log;
  int log_n, log_cap;
  unsigned live;
  unsigned long gtick;
  graph_slot gslots[N_GRAPHS];
  long g_replayed, g_captured, g_plain; /* passes run as a graph (captured ones included), captures, and
                                         * passes whose prefix ran as plain launches (MP_CUDA_GRAPHS=2 prints them) */
  /* MP_CUDA_PROFILE=1: an event after every operation on the stream; the time between two events is
   * charged to the later operation (idle gaps included), summed per (operation, shape) and printed to
   * stderr when the context closes */
  int prof;
  int prof_skip;    /* MP_CUDA_PROFILE_SKIP=N: the first N passes (warm-up: uploads, cuBLASLt start-up, autotuning)
                     * are left out of the sums */
  long prof_passes; /* passes begun */
  cudaEvent_t *prof_ev;
  struct prof_mark {
    const char *what;
    int64_t n, k;
  } * prof_at;
  int prof_n;
  struct prof_sum {
    const char *what;
    int64_t n, k;
    double ms;
    long calls;
  } * prof_sum;
  int prof_nsum;
  /* Pinned host staging for the per-pass inputs (ids, masks, index tables): a copy from pageable
   * memory may wait for the stream, which would stall the GPU between layers. Bump-allocated, reset
   * at begin (after the stream is idle). */
  char *pin;
  size_t pin_cap, pin_used;
  /* MLX affine weights kept quantized (qgemm.cuh; MP_CUDA_QGEMM=1, else dequantized at upload):
   * the matrices by their codes' device address, the split-K partial sums and the many-rows path's
   * scratch matrix (both grown on first use, outside graph capture), rows up to which the
   * dequantize-in-GEMM kernel runs (MP_CUDA_QGEMM_ROWS) */
  struct qweight *qw;
  int n_qw, cap_qw;
  int qgemm, qgemm_rows, sms, qgemm_blocks;
  unsigned qg_configured;
  void *qws, *qscr;
  size_t qws_cap, qscr_cap;
  /* the fast mode's matrices (fp8gemm.cuh) by their codes' device address, and the per-call E4M3
   * activations + row scales (grown on first use, outside graph capture); fast8 0: MP_CUDA_FAST8=0 */
  struct f8weight *f8w;
  int n_f8w, cap_f8w, fast8;
  void *x8;
  size_t x8_cap;
  /* The E4M3 copy (+ row scales) of an output written by the kernel that made it (a LayerNorm or the
   * embeddings' LayerNorm in a model with fp8 GEMMs, ln_warp_row; with MP_CUDA_FAST8_RAW=1 an fp8
   * GEMM's erf GELU, k_quant_rows_f8), in x8b: the next fp8 GEMM reading exactly that output
   * [sh_rows, sh_cols] takes it instead of quantizing again, if no other operation was queued in
   * between (marks: prof_mark's count of queued operations; an fp8 GEMM that took it and wrote
   * elsewhere hands it on to the next one, as ModernBERT's two halves of mlp.Wi read one input).
   * MP_CUDA_FAST8_FUSE=0: off. */
  void *x8b;
  size_t x8b_cap;
  const void *sh_ptr;
  int64_t sh_rows, sh_cols;
  unsigned long marks, sh_mark;
  int f8_fuse;
  /* f8_raw (MP_CUDA_FAST8_RAW=1): layers whose input has no E4M3 copy (mp_dense.raw_input) go on
   * fp8 too, with a quantizing pass of their own; by default they stay faithful (fp16 / bf16
   * weights), which is faster. gelu_erf (MP_CUDA_FAST_GELU=erf): in the fast mode the erf GELU
   * still runs exactly, as its own pass, instead of as cuBLASLt's tanh-form epilogue (cuda_fast_act). */
  int f8_raw, gelu_erf;
  /* The E4M3 copy of an output several fp8 GEMMs read before it changes (mp_device_ops.keep_copy:
   * BART's encoder output, the input of every decoder layer's cross-attention keys and values), in
   * x8k, for [kp_rows, kp_cols] at kp_ptr: valid until the next keep_copy or begin. */
  void *x8k;
  size_t x8k_cap;
  const void *kp_ptr;
  int64_t kp_rows, kp_cols;
} cuda_ctx;
#define PIN_BYTES ((size_t)8 << 20)

static void track(cuda_ctx *c, size_t add, size_t sub) {
  c->cur_bytes += add;
  if (c->cur_bytes > c->peak_bytes) c->peak_bytes = c->cur_bytes;
  c->cur_bytes -= sub < c->cur_bytes ? sub : c->cur_bytes;
}

static mp_status cuda_fail(cudaError_t e, const char *what) {
  mp_status s = e == cudaErrorMemoryAllocation ? MP_ERR_NOMEM : MP_ERR_INTERNAL;
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice ||
      e == cudaErrorDevicesUnavailable || e == cudaErrorNoKernelImageForDevice || e == cudaErrorStubLibrary ||
      e == cudaErrorSystemDriverMismatch || e == cudaErrorCompatNotSupportedOnDevice)
    s = MP_ERR_UNSUPPORTED;
  return mp_err(s, "CUDA: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
#define CU(expr, what)                                                                                                 \
  do {                                                                                                                 \
    cudaError_t e_ = (expr);                                                                                           \
    if (e_ != cudaSuccess) return cuda_fail(e_, what);                                                                 \
  } while (0)
static mp_status lt_fail(cublasStatus_t s, const char *what) {
  return mp_err(s == CUBLAS_STATUS_ALLOC_FAILED ? MP_ERR_NOMEM : MP_ERR_INTERNAL, "cuBLASLt: %s: status %d", what,
                (int)s);
}
#define LT(expr, what)                                                                                                 \
  do {                                                                                                                 \
    cublasStatus_t s_ = (expr);                                                                                        \
    if (s_ != CUBLAS_STATUS_SUCCESS) return lt_fail(s_, what);                                                         \
  } while (0)
/* ------------------------------------------------------------------ profile (MP_CUDA_PROFILE=1) */

#define PROF_MARKS 4096
#define PROF_SUMS 256
/* the intervals between the recorded events, added to the sums; the last event starts the next run */
static void prof_flush(struct cuda_ctx *c) {
  if (c->prof_n < 2) return;
  cudaEventSynchronize(c->prof_ev[c->prof_n - 1]);
  for (int i = 1; i < c->prof_n; i++) {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, c->prof_ev[i - 1], c->prof_ev[i]) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    const struct cuda_ctx::prof_mark *m = &c->prof_at[i];
    int k = 0;
    while (k < c->prof_nsum &&
           !(c->prof_sum[k].what == m->what && c->prof_sum[k].n == m->n && c->prof_sum[k].k == m->k))
      k++;
    if (k == c->prof_nsum) {
      if (k == PROF_SUMS) continue;
      c->prof_nsum++;
      c->prof_sum[k].what = m->what, c->prof_sum[k].n = m->n, c->prof_sum[k].k = m->k;
      c->prof_sum[k].ms = 0, c->prof_sum[k].calls = 0;
    }
    c->prof_sum[k].ms += ms, c->prof_sum[k].calls++;
  }
  cudaEvent_t first = c->prof_ev[0];
  c->prof_ev[0] = c->prof_ev[c->prof_n - 1], c->prof_ev[c->prof_n - 1] = first;
  c->prof_at[0] = c->prof_at[c->prof_n - 1];
  c->prof_n = 1;
}
/* an event after the operation just queued (what: a static label; n, k: its shape, 0 if none) */
static void prof_mark(struct cuda_ctx *c, const char *what, int64_t n, int64_t k) {
  c->marks++; /* every queued operation passes here (the fast mode's shadow checks nothing ran since) */
  if (!c->prof) return;
  if (c->prof_n == PROF_MARKS) prof_flush(c);
  if (cudaEventRecord(c->prof_ev[c->prof_n], c->stream) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  c->prof_at[c->prof_n].what = what, c->prof_at[c->prof_n].n = n, c->prof_at[c->prof_n].k = k;
  c->prof_n++;
}
static int prof_cmp(const void *x, const void *y) {
  double a = ((const struct cuda_ctx::prof_sum *)x)->ms, b = ((const struct cuda_ctx::prof_sum *)y)->ms;
  return a < b ? 1 : a > b ? -1 : 0;
}
static void prof_report(struct cuda_ctx *c) {
  prof_flush(c);
  double total = 0;
  for (int k = 0; k < c->prof_nsum; k++)
    total += c->prof_sum[k].ms;
  qsort(c->prof_sum, (size_t)c->prof_nsum, sizeof *c->prof_sum, prof_cmp);
  fprintf(stderr,
          "mlxport CUDA profile (%s): %.3f ms in all (%ld passes, the first %d left out)\n  %-22s %12s %8s %10s %6s\n",
          c->desc, total, c->prof_passes, c->prof_skip < c->prof_passes ? c->prof_skip : (int)c->prof_passes,
          "operation", "shape", "calls", "ms", "share");
  for (int k = 0; k < c->prof_nsum; k++) {
    char shape[48] = "";
    if (c->prof_sum[k].n || c->prof_sum[k].k)
      snprintf(shape, sizeof shape, "%lldx%lld", (long long)c->prof_sum[k].n, (long long)c->prof_sum[k].k);
    fprintf(stderr, "  %-22s %12s %8ld %10.3f %5.1f%%\n", c->prof_sum[k].what, shape, c->prof_sum[k].calls,
            c->prof_sum[k].ms, total > 0 ? 100.0 * c->prof_sum[k].ms / total : 0.0);
  }
}

/* after a kernel launch (c: the context in scope) */
#define LAUNCHED(what)                                                                                                 \
  do {                                                                                                                 \
    CU(cudaGetLastError(), what);                                                                                      \
    prof_mark(c, what, 0, 0);                                                                                          \
  } while (0)

/* ------------------------------------------------------------------ kernels */

/* block-wide sum of one float per thread (blockDim.x a multiple of 32, <= 1024) */
__device__ float block_sum(float v, float *red) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) red[w] = v;
  __syncthreads();
  float t = 0;
  for (int i = 0; i < nw; i++)
    t += red[i];
  return t;
}

template <typename T> __global__ void k_f32_to(const float *in, T *out, int64_t n) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) st(out, i, in[i]);
}
template <typename T> __global__ void k_to_f32(const T *in, float *out, int64_t n) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = ld(in, i);
}

/* LayerNorm of one row held in shared memory v[dim] (two passes: mean, then centred variance). */
template <typename T>
__device__ void ln_row(const float *v, int64_t dim, const float *g, const float *b, float eps, T *out, float *red) {
  float s = 0;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    s += v[d];
  float mean = block_sum(s, red) / (float)dim;
  float q = 0;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float c = v[d] - mean;
    q += c * c;
  }
  float var = block_sum(q, red) / (float)dim;
  float r = rsqrtf(var + eps);
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float y = (v[d] - mean) * r;
    if (g) y = y * g[d] + (b ? b[d] : 0.0f);
    st(out, d, y);
  }
}

template <typename T>
__global__ void k_layernorm(const T *x, const T *res, int64_t dim, const float *g, const float *b, float eps, T *out) {
  extern __shared__ float sh[];
  float *red = sh, *v = sh + 32;
  int64_t r = blockIdx.x;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    v[d] = ld(x, r * dim + d) + (res ? ld(res, r * dim + d) : 0.0f);
  __syncthreads();
  ln_row(v, dim, g, b, eps, out + r * dim, red);
}

#define MAX_TABLES 4
struct embed_args {
  const void *tables[MAX_TABLES];
  const int32_t *ids[MAX_TABLES];
  int n;
};
template <typename T>
__global__ void k_embed_ln(embed_args a, int64_t dim, float scale0, const float *g, const float *b, float eps, T *out) {
  extern __shared__ float sh[];
  float *red = sh, *v = sh + 32;
  int64_t r = blockIdx.x;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float s = ld((const T *)a.tables[0], (int64_t)a.ids[0][r] * dim + d) * scale0;
    for (int t = 1; t < a.n; t++)
      s += ld((const T *)a.tables[t], (int64_t)a.ids[t][r] * dim + d);
    v[d] = s;
  }
  __syncthreads();
  if (g) {
    ln_row(v, dim, g, b, eps, out + r * dim, red);
  } else {
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
      st(out, r * dim + d, v[d]);
  }
}

/* ---- 16-byte vector forms (MP_CUDA_VEC_KERNELS=0 turns them off): the same arithmetic per value
 * as the kernels above, with each thread moving 16 bytes (8 fp16/bf16 or 4 f32 values) at a time.
 * The callers check that rows are whole vectors and every pointer is 16-byte aligned. */
template <typename T> struct vec16 { static constexpr int n = 16 / (int)sizeof(T); };
template <typename T> __device__ __forceinline__ void load16(const T *p, float *f) {
  const uint4 u = *(const uint4 *)p;
  const T *e = (const T *)&u;
#pragma unroll
  for (int i = 0; i < vec16<T>::n; i++)
    f[i] = elem<T>::load(e[i]);
}
template <typename T> __device__ __forceinline__ void store16(T *p, const float *f) {
  uint4 u;
  T *e = (T *)&u;
#pragma unroll
  for (int i = 0; i < vec16<T>::n; i++)
    e[i] = elem<T>::store(f[i]);
  *(uint4 *)p = u;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/* LayerNorm of one row per warp, the row in registers: lane l holds the vectors l, l + 32, ... (CH
 * of them, dim <= 32 * CH * vector width). v: the row's values (vector c of this lane at v[c]);
 * ok[c]: that vector is inside the row. The same two passes as ln_row (the mean, then the centred
 * variance, fp32), reduced by warp shuffles instead of shared memory. */
template <typename T, int CH>
__device__ __forceinline__ void ln_warp_row(float (&v)[CH][vec16<T>::n], int64_t dim, const float *g, const float *b,
                                            float eps, T *out, unsigned char *q8 = nullptr, float *qs = nullptr) {
  constexpr int V = vec16<T>::n;
  const int lane = threadIdx.x & 31;
  float s = 0;
#pragma unroll
  for (int c = 0; c < CH; c++)
    if ((int64_t)(c * 32 + lane) * V < dim)
#pragma unroll
      for (int j = 0; j < V; j++)
        s += v[c][j];
  const float mean = warp_sum(s) / (float)dim;
  float q = 0;
#pragma unroll
  for (int c = 0; c < CH; c++)
    if ((int64_t)(c * 32 + lane) * V < dim)
#pragma unroll
      for (int j = 0; j < V; j++) {
        const float d = v[c][j] - mean;
        q += d * d;
      }
  const float var = warp_sum(q) / (float)dim;
  const float r = rsqrtf(var + eps);
#pragma unroll
  for (int c = 0; c < CH; c++) {
    const int64_t d0 = (int64_t)(c * 32 + lane) * V;
    if (d0 >= dim) continue;
    /* the lane's V weights and biases as 16-byte loads (a warp's scalar load of g spans 32
     * vectors' worth of cache lines, 2V such loads per vector) */
    float gv[V], bv[V];
#pragma unroll
    for (int j = 0; j < V; j += 4) {
      const float4 g4 = g ? *(const float4 *)(g + d0 + j) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
      const float4 b4 = g && b ? *(const float4 *)(b + d0 + j) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      gv[j] = g4.x, gv[j + 1] = g4.y, gv[j + 2] = g4.z, gv[j + 3] = g4.w;
      bv[j] = b4.x, bv[j + 1] = b4.y, bv[j + 2] = b4.z, bv[j + 3] = b4.w;
    }
    float y[V];
#pragma unroll
    for (int j = 0; j < V; j++) {
      y[j] = (v[c][j] - mean) * r;
      if (g) y[j] = y[j] * gv[j] + bv[j];
      if (q8) v[c][j] = elem<T>::load(elem<T>::store(y[j])); /* the stored value, for the E4M3 copy */
    }
    store16(out + d0, y);
  }
  if (!q8) return;
  /* the E4M3 copy of the stored row, exactly as k_quant_rows_f8 makes it from `out` (fp8gemm.cuh) */
  float amax = 0;
#pragma unroll
  for (int c = 0; c < CH; c++)
    if ((int64_t)(c * 32 + lane) * V < dim)
#pragma unroll
      for (int j = 0; j < V; j++)
        amax = fmaxf(amax, fabsf(v[c][j]));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float sc = amax > 0.0f && amax < INFINITY ? amax / F8_MAX : 1.0f, inv = 1.0f / sc;
  if (lane == 0) *qs = sc;
#pragma unroll
  for (int c = 0; c < CH; c++) {
    const int64_t d0 = (int64_t)(c * 32 + lane) * V;
    if (d0 >= dim) continue;
    unsigned int w[2] = {0, 0};
#pragma unroll
    for (int j = 0; j < V; j++)
      w[j / 4] |= (unsigned int)f8_encode(v[c][j] * inv) << (8 * (j % 4));
    if (V == 8)
      *(uint2 *)(q8 + d0) = make_uint2(w[0], w[1]);
    else
      *(unsigned int *)(q8 + d0) = w[0];
  }
}

#define LN_WARPS 4 /* rows (warps) per block of the vector kernels */
#define LN_MAXCH 4 /* vectors per lane: rows up to 1024 fp16/bf16 or 512 f32 values */
template <typename T, int CH>
__global__ void k_layernorm_vec(const T *x, const T *res, int64_t rows, int64_t dim, const float *g, const float *b,
                                float eps, T *out, unsigned char *q, float *qs) {
  constexpr int V = vec16<T>::n;
  const int lane = threadIdx.x & 31;
  const int64_t r = (int64_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
  if (r >= rows) return; /* the whole warp */
  float v[CH][V];
#pragma unroll
  for (int c = 0; c < CH; c++) {
    const int64_t d0 = (int64_t)(c * 32 + lane) * V;
    if (d0 >= dim) continue;
    load16(x + r * dim + d0, v[c]);
    if (res) {
      float t[V];
      load16(res + r * dim + d0, t);
#pragma unroll
      for (int j = 0; j < V; j++)
        v[c][j] += t[j];
    }
  }
  ln_warp_row<T, CH>(v, dim, g, b, eps, out + r * dim, q ? q + r * dim : nullptr, q ? qs + r : nullptr);
}

template <typename T, int CH>
__global__ void k_embed_ln_vec(embed_args a, int64_t rows, int64_t dim, float scale0, const float *g, const float *b,
                               float eps, T *out, unsigned char *q, float *qs) {
  constexpr int V = vec16<T>::n;
  const int lane = threadIdx.x & 31;
  const int64_t r = (int64_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
  if (r >= rows) return;
  float v[CH][V];
#pragma unroll
  for (int c = 0; c < CH; c++) {
    const int64_t d0 = (int64_t)(c * 32 + lane) * V;
    if (d0 >= dim) continue;
    load16((const T *)a.tables[0] + (int64_t)a.ids[0][r] * dim + d0, v[c]);
#pragma unroll
    for (int j = 0; j < V; j++)
      v[c][j] = v[c][j] * scale0;
#pragma unroll
    for (int t = 1; t < MAX_TABLES; t++) { /* a constant bound: the tables stay in parameter space */
      if (t >= a.n) break;
      float u[V];
      load16((const T *)a.tables[t] + (int64_t)a.ids[t][r] * dim + d0, u);
#pragma unroll
      for (int j = 0; j < V; j++)
        v[c][j] += u[j];
    }
  }
  if (g) {
    ln_warp_row<T, CH>(v, dim, g, b, eps, out + r * dim, q ? q + r * dim : nullptr, q ? qs + r : nullptr);
  } else {
#pragma unroll
    for (int c = 0; c < CH; c++) {
      const int64_t d0 = (int64_t)(c * 32 + lane) * V;
      if (d0 < dim) store16(out + r * dim + d0, v[c]);
    }
  }
}

__device__ __forceinline__ float act_f(float x, int act) {
  switch (act) {
  case MP_ACT_RELU: return x > 0 ? x : 0;
  case MP_ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case MP_ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  case MP_ACT_TANH: return tanhf(x);
  case MP_ACT_SILU: return x / (1.0f + expf(-x));
  case MP_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
  default: return x;
  }
}
template <typename T> __global__ void k_act(T *x, int64_t n, int act) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) st(x, i, act_f(ld(x, i), act));
}
/* k_binary over nv vectors of 16 bytes */
template <typename T> __global__ void k_binary_vec(T *x, const T *y, int64_t nv, int op) {
  constexpr int V = vec16<T>::n;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= nv) return;
  float a[V], b[V];
  load16(x + i * V, a);
  load16(y + i * V, b);
#pragma unroll
  for (int j = 0; j < V; j++)
    a[j] = op ? a[j] * b[j] : a[j] + b[j];
  store16(x + i * V, a);
}
/* k_act over nv vectors of 16 bytes */
template <typename T> __global__ void k_act_vec(T *x, int64_t nv, int act) {
  constexpr int V = vec16<T>::n;
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= nv) return;
  float f[V];
  load16(x + i * V, f);
#pragma unroll
  for (int j = 0; j < V; j++)
    f[j] = act_f(f[j], act);
  store16(x + i * V, f);
}

template <typename T> __global__ void k_gather_rows(const T *x, int64_t stride, int64_t dim, T *out) {
  int64_t r = blockIdx.x;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    out[r * dim + d] = x[r * stride * dim + d];
}

/* one thread per (row, head, i < d/2) */
template <typename T>
__global__ void k_rope_split(const T *qkv, int64_t rows, int64_t seq, int64_t H, int64_t d, const float *cs, T *q, T *k,
                             T *v) {
  const int64_t half = d / 2, nh = H / d;
  int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= rows * nh * half) return;
  const int64_t i = t % half, h = (t / half) % nh, r = t / (half * nh), p = r % seq;
  const float c = cs[p * half + i], s = cs[(seq + p) * half + i];
  const T *src = qkv + r * 3 * H + h * d;
  const int64_t o = r * H + h * d;
  for (int qk = 0; qk < 2; qk++) {
    float x1 = ld(src + qk * H, i), x2 = ld(src + qk * H, i + half);
    T *dst = qk ? k : q;
    st(dst, o + i, x1 * c + (-x2 * s));
    st(dst, o + i + half, x2 * c + x1 * s);
  }
  v[o + i] = src[2 * H + i];
  v[o + i + half] = src[2 * H + i + half];
}

template <typename T> __global__ void k_binary(T *x, const T *y, int64_t n, int op) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) st(x, i, op ? ld(x, i) * ld(y, i) : ld(x, i) + ld(y, i));
}

template <typename T> __global__ void k_mean_rows(const T *x, int64_t seq, int64_t dim, const int32_t *mask, T *out) {
  int64_t r = blockIdx.x;
  const T *xr = x + r * seq * dim;
  const int32_t *mk = mask ? mask + r * seq : NULL;
  float cnt = 0;
  for (int64_t t = 0; t < seq; t++)
    cnt += (!mk || mk[t]) ? 1.0f : 0.0f;
  if (cnt < 1.0f) cnt = 1.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float e = 0;
    for (int64_t t = 0; t < seq; t++)
      if (!mk || mk[t]) e += ld(xr, t * dim + d);
    st(out, r * dim + d, e / cnt);
  }
}

template <typename T> __global__ void k_gather_idx(const T *x, const int32_t *idx, int64_t dim, T *out) {
  int64_t r = blockIdx.x;
  const int64_t i = idx[r]; /* < 0: a row of zeros (MobileBERT's trigram rows past a sequence's ends) */
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    out[r * dim + d] = i < 0 ? elem<T>::store(0.0f) : x[i * dim + d];
}

/* out = (x + res) * g + b elementwise over rows of dim values (MobileBERT's NoNorm): the product
 * rounded before the add, as torch (and the CPU path) computes it. */
template <typename T>
__global__ void k_affine(const T *x, const T *res, int64_t n, int64_t dim, const float *g, const float *b, T *out) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t d = i % dim;
  float v = ld(x, i);
  if (res) v = __fadd_rn(v, ld(res, i));
  st(out, i, __fadd_rn(__fmul_rn(v, g[d]), b ? b[d] : 0.0f));
}

template <typename T> __global__ void k_zero_rows(T *x, int64_t dim, const uint8_t *keep) {
  int64_t r = blockIdx.x;
  if (keep[r]) return;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    st(x, r * dim + d, 0.0f);
}

/* mean pooling's divisor for cnt real tokens (clamped as sentence-transformers does), or its square
 * root (mean_sqrt_len, pooling 4) */
__device__ __forceinline__ float pool_div(float cnt, int pooling) {
  const float c = cnt < 1e-9f ? 1e-9f : cnt;
  return pooling == 4 ? sqrtf(c) : c;
}
/* the pooled row v [dim] (shared memory, complete: after a barrier) into out, L2-normalized when
 * asked (the norm clamped at 1e-12); every thread of the block calls it */
__device__ void pool_store(const float *v, int64_t dim, int normalize, float *red, float *out) {
  float nrm = 1;
  if (normalize) {
    float s = 0;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
      s += v[d] * v[d];
    nrm = sqrtf(block_sum(s, red));
    if (nrm < 1e-12f) nrm = 1e-12f;
  }
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    out[d] = v[d] / nrm;
}

/* pooling: 1 cls, 2 mean, 3 max, 4 mean_sqrt_len; one block per sequence */
template <typename T>
__global__ void k_pool(const T *x, int64_t seq, int64_t dim, const int32_t *mask, int pooling, int normalize,
                       float *out) {
  extern __shared__ float sh[];
  float *red = sh, *v = sh + 32;
  int64_t r = blockIdx.x;
  const T *xr = x + r * seq * dim;
  const int32_t *mk = mask ? mask + r * seq : NULL;
  float cnt = 0;
  for (int64_t t = 0; t < seq; t++)
    cnt += (!mk || mk[t]) ? 1.0f : 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float e;
    if (pooling == 1) {
      e = ld(xr, d);
    } else if (pooling == 3) {
      e = -INFINITY;
      for (int64_t t = 0; t < seq; t++)
        if (!mk || mk[t]) e = fmaxf(e, ld(xr, t * dim + d));
      if (cnt == 0) e = 0;
    } else {
      e = 0;
      for (int64_t t = 0; t < seq; t++)
        if (!mk || mk[t]) e += ld(xr, t * dim + d);
      e /= pool_div(cnt, pooling);
    }
    v[d] = e;
  }
  __syncthreads();
  pool_store(v, dim, normalize, red, out + r * dim);
}

/* The same pooling (2 mean, 3 max, 4 mean_sqrt_len) with 16-byte loads, for rows of whole vectors:
 * thread t takes vector t % nv (nv = dim / vector width) of the tokens g, g + G, ... (g = t / nv,
 * G groups; threads past G nv only help reduce), so a block reads its sequence with many independent loads in flight;
 * the groups' partial sums / maxima and token counts meet in shared memory ([G][dim] floats, then
 * the pooled row, then G counts), then pool_store. */
template <typename T>
__global__ void k_pool_vec(const T *x, int64_t seq, int64_t dim, const int32_t *mask, int pooling, int normalize, int G,
                           float *out) {
  constexpr int V = vec16<T>::n;
  extern __shared__ float sh[];
  const int nv = (int)(dim / V), tid = threadIdx.x, c = tid % nv, g = tid / nv;
  float *part = sh, *v = sh + (int64_t)G * dim, *cnts = v + dim, *red = cnts + G;
  const int64_t r = blockIdx.x;
  const T *xr = x + r * seq * dim;
  const int32_t *mk = mask ? mask + r * seq : NULL;
  const bool mx = pooling == 3;
  float acc[V];
#pragma unroll
  for (int i = 0; i < V; i++)
    acc[i] = mx ? -INFINITY : 0.0f;
  float cnt = 0;
  if (g < G) {
    for (int64_t t = g; t < seq; t += G) {
      if (mk && !mk[t]) continue;
      float f[V];
      load16(xr + t * dim + (int64_t)c * V, f);
#pragma unroll
      for (int i = 0; i < V; i++)
        acc[i] = mx ? fmaxf(acc[i], f[i]) : acc[i] + f[i];
      cnt += 1.0f;
    }
#pragma unroll
    for (int i = 0; i < V; i++)
      part[(int64_t)g * dim + (int64_t)c * V + i] = acc[i];
    if (c == 0) cnts[g] = cnt;
  }
  __syncthreads();
  float total = 0;
  for (int k = 0; k < G; k++)
    total += cnts[k];
  for (int64_t d = tid; d < dim; d += blockDim.x) {
    float e = mx ? -INFINITY : 0.0f;
    for (int k = 0; k < G; k++)
      e = mx ? fmaxf(e, part[(int64_t)k * dim + d]) : e + part[(int64_t)k * dim + d];
    if (mx)
      e = total == 0 ? 0.0f : e;
    else
      e /= pool_div(total, pooling);
    v[d] = e;
  }
  __syncthreads();
  pool_store(v, dim, normalize, red, out + r * dim);
}

/* Encoder attention with a key padding mask. One warp per query row, ATT_WARPS queries per block,
 * keys in tiles of 32 staged in shared memory as f32: lane j scores key j of the tile, the warp
 * keeps an online softmax (running max and sum), and each lane accumulates the output dims
 * d = lane + 32 i. Masked keys are excluded exactly; a query with no key gets zeros. */
#define ATT_WARPS 8
#define ATT_MAXD 128
template <typename T> __global__ void k_attention(mp_dev_attention a) {
  extern __shared__ float sh[];
  const int D = (int)a.head_dim, DP = D + 1;
  float *ks = sh, *vs = ks + 32 * DP, *qs = vs + 32 * DP;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t b = blockIdx.z, h = blockIdx.y, i = (int64_t)blockIdx.x * ATT_WARPS + warp;
  const int64_t ldq = a.ldq ? a.ldq : a.heads * D, ldk = a.ldk ? a.ldk : a.heads * D;
  const int64_t ldv = a.ldv ? a.ldv : a.heads * D, ldo = a.ldo ? a.ldo : a.heads * D;
  const int64_t ldp = a.ldp ? a.ldp : a.heads * D;
  const T *Q = (const T *)a.q, *K = (const T *)a.k, *V = (const T *)a.v;
  const bool active = i < a.seq_q;
  float *q = qs + warp * D;
  if (active)
    for (int d = lane; d < D; d += 32)
      q[d] = ld(Q, (b * a.seq_q + i) * ldq + h * D + d) * a.scale;
  float acc[ATT_MAXD / 32];
  for (int c = 0; c < ATT_MAXD / 32; c++)
    acc[c] = 0;
  float m = -INFINITY, l = 0;
  for (int64_t j0 = 0; j0 < a.seq_k; j0 += 32) {
    __syncthreads();
    for (int e = threadIdx.x; e < 32 * D; e += blockDim.x) {
      int j = e / D, d = e % D;
      int64_t jj = j0 + j;
      float kv = 0, vv = 0;
      if (jj < a.seq_k) {
        kv = ld(K, (b * a.seq_k + jj) * ldk + h * D + d);
        vv = ld(V, (b * a.seq_k + jj) * ldv + h * D + d);
      }
      ks[j * DP + d] = kv;
      vs[j * DP + d] = vv;
    }
    __syncthreads();
    if (!active) continue;
    int64_t jj = j0 + lane;
    bool ok = jj < a.seq_k && (!a.key_mask || a.key_mask[b * a.seq_k + jj]) && (!a.causal || jj <= i);
    float s = -INFINITY;
    if (ok) {
      s = 0;
      const float *kr = ks + lane * DP;
      for (int d = 0; d < D; d++)
        s += q[d] * kr[d];
      const int64_t dd = i - jj + a.seq_k - 1; /* relative terms (q is already scaled) */
      if (a.pos_k && a.cix) {
        const T *pr = (const T *)a.pos_k + (int64_t)a.cix[dd] * ldp + h * D;
        for (int d = 0; d < D; d++)
          s += q[d] * ld(pr, d);
      }
      if (a.pos_q && a.pix) {
        const T *pr = (const T *)a.pos_q + (int64_t)a.pix[dd] * ldp + h * D;
        float t = 0;
        for (int d = 0; d < D; d++)
          t += kr[d] * ld(pr, d);
        s += t * a.scale;
      }
      if (a.bias_tab) s += a.bias_tab[(int64_t)a.bidx[dd] * a.heads + h];
      if (a.window > 0 && (i - jj > a.window || jj - i > a.window)) s = -INFINITY, ok = false;
    }
    float tm = s;
    for (int o = 16; o > 0; o >>= 1)
      tm = fmaxf(tm, __shfl_xor_sync(0xffffffffu, tm, o));
    float nm = fmaxf(m, tm);
    if (nm == -INFINITY) continue; /* every key so far masked */
    float corr = __expf(m - nm);   /* m = -inf: 0 */
    float p = ok ? __expf(s - nm) : 0.0f;
    float ps = p;
    for (int o = 16; o > 0; o >>= 1)
      ps += __shfl_xor_sync(0xffffffffu, ps, o);
    l = l * corr + ps;
    m = nm;
#pragma unroll
    for (int c = 0; c < ATT_MAXD / 32; c++)
      acc[c] *= corr;
    int nj = (int)(a.seq_k - j0 < 32 ? a.seq_k - j0 : 32);
    for (int j = 0; j < nj; j++) {
      float pj = __shfl_sync(0xffffffffu, p, j);
      const float *vr = vs + j * DP;
#pragma unroll
      for (int c = 0; c < ATT_MAXD / 32; c++) {
        int d = lane + 32 * c;
        if (d < D) acc[c] += pj * vr[d];
      }
    }
  }
  if (!active) return;
  T *O = (T *)a.out + (b * a.seq_q + i) * ldo + h * D;
  float inv = l > 0 ? 1.0f / l : 0.0f;
#pragma unroll
  for (int c = 0; c < ATT_MAXD / 32; c++) {
    int d = lane + 32 * c;
    if (d < D) st(O, d, acc[c] * inv);
  }
}

#include "cuda/flash_attention.cuh"
#include "cuda/flash_mma.cuh"
#include "cuda/qgemm.cuh"

/* ------------------------------------------------------------------ dispatch on the compute dtype */

#define DISPATCH(c, F, ...)                                                                                            \
  do {                                                                                                                 \
    if ((c)->dt == MP_F16)                                                                                             \
      F<__half> __VA_ARGS__;                                                                                           \
    else if ((c)->dt == MP_BF16)                                                                                       \
      F<__nv_bfloat16> __VA_ARGS__;                                                                                    \
    else                                                                                                               \
      F<float> __VA_ARGS__;                                                                                            \
  } while (0)

static unsigned blocks(int64_t n, int t) { return (unsigned)((n + t - 1) / t); }
static int row_threads(int64_t dim) { return dim >= 512 ? 256 : dim >= 128 ? 128 : 32; }

template <typename T> static void launch_f32_to(cuda_ctx *c, const float *in, void *out, int64_t n);

/* ------------------------------------------------------------------ CUDA graphs: recorded ops */

/* One op of a forward pass with all its arguments (memset to 0 first, so that two records compare
 * with memcmp). Every pointer in it is device memory (weights, the arena, the pinned staging buffer
 * for OP_H2D's source): the ops' results depend on nothing else, except DeBERTa's table buffer
 * (rel_buf), whose reallocation drops every graph. */
enum {
  OP_H2D = 1,
  OP_DENSE,
  OP_LN,
  OP_EMBED,
  OP_ATT,
  OP_GATHER,
  OP_POOL,
  OP_GIDX,
  OP_ZERO,
  OP_TOF32,
  OP_ROPE,
  OP_BINARY,
  OP_MUL_ROWS,
  OP_KEEP,
  OP_MEAN,
  OP_AFFINE
};
struct op_rec {
  int kind;
  union {
    struct {
      void *d;
      const void *src;
      size_t bytes;
    } h2d;
    struct {
      const void *x, *w, *bias;
      int64_t rows, out, in;
      int act;
      void *y;
    } dense;
    struct { /* layernorm and affine (NoNorm) */
      const void *x, *res, *g, *b;
      int64_t rows, dim;
      float eps;
      void *out;
    } ln;
    struct {
      embed_args a;
      int64_t rows, dim;
      float scale0, eps;
      const void *g, *b;
      void *out;
    } embed;
    mp_dev_attention att;
    struct { /* gather_rows, gather_idx */
      const void *x;
      int64_t n, stride, dim;
      const int32_t *idx;
      void *out;
    } gather;
    struct { /* pool, mean_rows */
      const void *x;
      int64_t batch, seq, dim;
      const int32_t *mask;
      int pooling, normalize;
      void *out;
    } pool;
    struct {
      void *x;
      int64_t rows, dim;
      const uint8_t *keep;
    } zero;
    struct {
      const void *x;
      float *out;
      int64_t n;
    } tof32;
    struct {
      const void *qkv;
      int64_t rows, seq, hidden, d;
      const float *cs;
      void *q, *k, *v;
    } rope;
    struct {
      void *x;
      const void *y;
      int64_t n;
      int op;
      int64_t dim; /* OP_MUL_ROWS, OP_KEEP (x in y): n = rows x dim */
    } binary;
  } u;
};
static mp_status gr_submit(cuda_ctx *c, const op_rec *r);
static mp_status gr_flush(cuda_ctx *c);
static mp_status gr_undefer(cuda_ctx *c);
/* the op is to be recorded (a pass is being logged or deferred, and this is not a replay of a record) */
static int gr_recording(const cuda_ctx *c) { return c->gmode != GR_OFF && !c->direct; }
static void gr_drop_all(cuda_ctx *c) {
  for (int i = 0; i < N_GRAPHS; i++) {
    if (c->gslots[i].exec) cudaGraphExecDestroy(c->gslots[i].exec);
    c->gslots[i].exec = NULL, c->gslots[i].n = 0, c->gslots[i].failed = 0;
  }
  c->live = 0;
}

/* ------------------------------------------------------------------ context */

static void cuda_close(void *p) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (!c) return;
  cudaSetDevice(c->dev);
  if (c->stream) cudaStreamSynchronize(c->stream);
  if (c->prof) {
    prof_report(c);
    for (int i = 0; i < PROF_MARKS; i++)
      cudaEventDestroy(c->prof_ev[i]);
  }
  free(c->prof_ev), free(c->prof_at), free(c->prof_sum);
  if (c->graphs > 1)
    fprintf(stderr, "mlxport CUDA graphs (%s): %ld passes replayed as graphs (%ld captures), %ld as plain launches\n",
            c->desc, c->g_replayed, c->g_captured, c->g_plain);
  gr_drop_all(c);
  for (int i = 0; i < N_GRAPHS; i++)
    free(c->gslots[i].ops);
  free(c->log);
  for (int i = 0; i < c->n_chunks; i++)
    cudaFree(c->chunks[i].base);
  free(c->chunks);
  for (size_t i = 0; i < c->n_params; i++)
    cudaFree(c->params[i]);
  free(c->params);
  if (c->workspace) cudaFree(c->workspace);
  if (c->rel_buf) cudaFree(c->rel_buf);
  if (c->qws) cudaFree(c->qws);
  if (c->qscr) cudaFree(c->qscr);
  for (int i = 0; i < c->n_qw; i++)
    cudaFree((void *)c->qw[i].codes), cudaFree((void *)c->qw[i].sb);
  free(c->qw);
  for (int i = 0; i < c->n_f8w; i++)
    cudaFree((void *)c->f8w[i].q), cudaFree((void *)c->f8w[i].s);
  free(c->f8w);
  if (c->x8) cudaFree(c->x8);
  if (c->x8b) cudaFree(c->x8b);
  if (c->x8k) cudaFree(c->x8k);
  if (c->pin) cudaFreeHost(c->pin);
  if (c->lt) cublasLtDestroy(c->lt);
  if (c->stream) cudaStreamDestroy(c->stream);
  free(c);
}

static const char *cuda_describe(void *p) { return ((cuda_ctx *)p)->desc; }

/* cudaGetDeviceCount, its error named ("no usable GPU") and cleared (so later calls start clean) */
static mp_status device_count(int *n) {
  *n = 0;
  cudaError_t e = cudaGetDeviceCount(n);
  if (e == cudaSuccess) return MP_OK;
  mp_status s = cuda_fail(e, "no usable GPU");
  cudaGetLastError();
  return s;
}

static int f8_available(cuda_ctx *c); /* the fast mode's GEMM exists here (below) */

extern "C" mp_status mp_cuda_open(int index, mp_dtype dt, void **out) {
  *out = NULL;
  if (dt != MP_F16 && dt != MP_BF16 && dt != MP_F32)
    return mp_err(MP_ERR_INVALID_ARG, "CUDA compute dtype must be float16, bfloat16 or float32");
  int n = 0;
  MP_TRY(device_count(&n));
  cudaError_t e = cudaSuccess;
  if (index < 0 || index >= n)
    return mp_err(MP_ERR_UNSUPPORTED, "CUDA: device cuda:%d does not exist (%d device%s visible)", index, n,
                  n == 1 ? "" : "s");
  cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
  if (!c) return mp_err(MP_ERR_NOMEM, "out of memory");
  c->dev = index;
  c->dt = dt;
  c->esize = dt == MP_F32 ? 4 : 2;
  const char *att = getenv("MP_CUDA_ATTENTION");
  c->attention_simple = att && !strcmp(att, "simple");
  c->attention_mma = !(att && !strcmp(att, "wmma"));
  const char *fb = getenv("MP_CUDA_FLASH_BLOCKS");
  c->flash_blocks = fb && !strcmp(fb, "1") ? 1 : 4;
  const char *fpl = getenv("MP_CUDA_FLASH_PLAIN");
  c->flash_plain = !(fpl && !strcmp(fpl, "0"));
  const char *vec = getenv("MP_CUDA_VEC_KERNELS");
  c->vec = !(vec && !strcmp(vec, "0"));
  const char *tune = getenv("MP_CUDA_AUTOTUNE");
  c->autotune = !tune || !*tune ? 1 : !strcmp(tune, "0") ? 0 : !strcmp(tune, "2") ? 2 : 1;
  const char *gr = getenv("MP_CUDA_GRAPHS");
  c->graphs = !gr || !*gr ? 1 : !strcmp(gr, "0") ? 0 : !strcmp(gr, "2") ? 2 : 1;
  const char *qg = getenv("MP_CUDA_QGEMM"), *qr = getenv("MP_CUDA_QGEMM_ROWS");
  c->qgemm = qg && *qg && strcmp(qg, "0") && dt != MP_F32; /* opt-in: slower than fp16 weights on an H100 */
  c->qgemm_rows = qr && *qr ? atoi(qr) : QG_ROWS_DEFAULT;
  const char *qb = getenv("MP_CUDA_QGEMM_BLOCKS"); /* blocks per SM the split of K aims at (0: no split) */
  c->qgemm_blocks = qb && *qb ? atoi(qb) : 2;
  const char *f8 = getenv("MP_CUDA_FAST8"); /* MP_CUDA_FAST8=0: no fast mode (the model computes faithfully) */
  c->fast8 = !(f8 && !strcmp(f8, "0")) && dt != MP_F32;
  const char *f8f = getenv("MP_CUDA_FAST8_FUSE"), *f8r = getenv("MP_CUDA_FAST8_RAW"), *fg = getenv("MP_CUDA_FAST_GELU");
  c->f8_fuse = !(f8f && !strcmp(f8f, "0"));
  c->f8_raw = f8r && !strcmp(f8r, "1");
  c->gelu_erf = fg && !strcmp(fg, "erf");
  mp_status st = MP_OK;
  cudaDeviceProp prop;
  e = cudaSetDevice(index);
  if (!e) e = cudaGetDeviceProperties(&prop, index);
  if (!e) c->sms = prop.multiProcessorCount;
  if (!e) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
  if (!e) e = cudaMalloc(&c->workspace, WORKSPACE_BYTES);
  if (!e) track(c, WORKSPACE_BYTES, 0);
  if (e) st = cuda_fail(e, "opening the device");
  if (!st && prop.major < 9)
    st = mp_err(MP_ERR_UNSUPPORTED,
                "CUDA: cuda:%d (%s) has compute capability %d.%d; this build targets sm_90 (Hopper) and newer", index,
                prop.name, prop.major, prop.minor);
  if (!st) {
    cublasStatus_t ls = cublasLtCreate(&c->lt);
    if (ls != CUBLAS_STATUS_SUCCESS) st = lt_fail(ls, "creating the handle");
  }
  if (!st && c->fast8 && !f8_available(c)) {
    c->fast8 = 0;
    mp_log(MP_LOG_INFO,
           "CUDA: cuda:%d (%s): cuBLASLt offers no FP8 GEMM with per-row scales here; MLX-quantized "
           "layers compute faithfully (dequantized weights)",
           index, prop.name);
  }
  const char *prof = getenv("MP_CUDA_PROFILE");
  if (!st && prof && *prof && strcmp(prof, "0")) {
    c->prof_ev = (cudaEvent_t *)calloc(PROF_MARKS, sizeof *c->prof_ev);
    c->prof_at = (struct cuda_ctx::prof_mark *)calloc(PROF_MARKS, sizeof *c->prof_at);
    c->prof_sum = (struct cuda_ctx::prof_sum *)calloc(PROF_SUMS, sizeof *c->prof_sum);
    if (!c->prof_ev || !c->prof_at || !c->prof_sum) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < PROF_MARKS; i++)
      if ((e = cudaEventCreate(&c->prof_ev[i])) != cudaSuccess) st = cuda_fail(e, "creating profile events");
    c->prof = !st;
    const char *skip = getenv("MP_CUDA_PROFILE_SKIP");
    c->prof_skip = skip ? atoi(skip) : 0;
    if (c->prof_skip < 0) c->prof_skip = 0;
    c->graphs = 0; /* the profile times every launch: no graphs */
  }
  if (st) {
    cuda_close(c);
    return st;
  }
  snprintf(c->desc, sizeof c->desc, "cuda:%d %s, %s", index, prop.name,
           dt == MP_F16    ? "float16"
           : dt == MP_BF16 ? "bfloat16"
                           : "float32");
  *out = c;
  return MP_OK;
}

extern "C" mp_status mp_cuda_device_info(int index, int *count, char *name, size_t n, size_t *total_b) {
  int k = 0;
  MP_TRY(device_count(&k));
  *count = k;
  if (index < 0 || index >= k) return MP_OK;
  cudaDeviceProp prop;
  CU(cudaGetDeviceProperties(&prop, index), "querying the device");
  if (name && n) snprintf(name, n, "%s (compute capability %d.%d)", prop.name, prop.major, prop.minor);
  if (total_b) *total_b = prop.totalGlobalMem;
  return MP_OK;
}

extern "C" mp_status mp_cuda_memory(int index, size_t *free_b, size_t *total_b) {
  int n = 0;
  MP_TRY(device_count(&n));
  if (index < 0 || index >= n)
    return mp_err(MP_ERR_UNSUPPORTED, "CUDA: device cuda:%d does not exist (%d device%s visible)", index, n,
                  n == 1 ? "" : "s");
  size_t fr = 0, tot = 0;
  CU(cudaSetDevice(index), "selecting the device");
  CU(cudaMemGetInfo(&fr, &tot), "querying the device memory");
  if (free_b) *free_b = fr;
  if (total_b) *total_b = tot;
  return MP_OK;
}

static mp_status cuda_begin(void *p) {
  cuda_ctx *c = (cuda_ctx *)p;
  CU(cudaSetDevice(c->dev), "selecting the device");
  if (c->prof && ++c->prof_passes == (long)c->prof_skip + 1 && c->prof_skip > 0) {
    prof_flush(c); /* the warm-up passes' intervals are summed, then dropped */
    c->prof_nsum = 0;
  }
  prof_mark(c, "(idle between passes)", 0, 0);
  c->kp_ptr = NULL;  /* a kept E4M3 copy lives one pass */
  if (c->pin_used) { /* the staged copies of the previous pass are done before the buffer is reused */
    CU(cudaStreamSynchronize(c->stream), "waiting for the stream");
    c->pin_used = 0;
  }
  if (c->n_chunks > 1) { /* one chunk that holds exactly what the previous pass allocated (the same
                          * allocations in the same order pack into the sum of the chunks' used bytes;
                          * the tails a chunk could not fit are not needed) */
    size_t total = 0, held = 0;
    CU(cudaStreamSynchronize(c->stream), "waiting for the stream");
    for (int i = 0; i < c->n_chunks; i++)
      total += c->chunks[i].used, held += c->chunks[i].size, cudaFree(c->chunks[i].base);
    track(c, 0, held);
    c->n_chunks = 0;
    void *b = NULL;
    CU(cudaMalloc(&b, total), "allocating activation memory");
    track(c, total, 0);
    c->chunks[0].base = (char *)b, c->chunks[0].size = total;
    c->n_chunks = 1;
  }
  if (c->n_chunks) c->chunks[0].used = 0;
  /* ops deferred by a pass that never reached a download are dropped: nothing read their results */
  c->log_n = 0, c->gclean = 1, c->live = 0;
  for (int i = 0; i < N_GRAPHS; i++)
    if (c->gslots[i].n > 0) c->live |= 1u << i;
  c->gmode = !c->graphs ? GR_OFF : c->live ? GR_DEFER : GR_LOG;
  return MP_OK;
}

static void *cuda_alloc_bytes(cuda_ctx *c, size_t bytes) {
  bytes = (bytes + 255) & ~(size_t)255;
  if (!bytes) bytes = 256;
  if (c->n_chunks) {
    chunk *k = &c->chunks[c->n_chunks - 1];
    if (k->size - k->used >= bytes) {
      void *r = k->base + k->used;
      k->used += bytes;
      return r;
    }
  }
  /* a new chunk: twice the last one, at most ARENA_STEP beyond the request (the first pass's peak
   * stays near what it uses; the next begin merges the chunks into one of the bytes used) */
  size_t sz = c->n_chunks ? 2 * c->chunks[c->n_chunks - 1].size : ((size_t)64 << 20);
  if (sz > ARENA_STEP) sz = ARENA_STEP;
  if (sz < bytes) sz = bytes;
  chunk *nc = (chunk *)realloc(c->chunks, (size_t)(c->n_chunks + 1) * sizeof *nc);
  if (!nc) {
    mp_err(MP_ERR_NOMEM, "out of memory");
    return NULL;
  }
  c->chunks = nc;
  void *b = NULL;
  cudaError_t e = cudaMalloc(&b, sz);
  if (!e) track(c, sz, 0);
  if (e) {
    cudaGetLastError();
    cuda_fail(e, "allocating activation memory");
    return NULL;
  }
  chunk *k = &c->chunks[c->n_chunks++];
  k->base = (char *)b, k->size = sz, k->used = bytes;
  c->gclean = 0; /* the next begin merges the chunks: this pass's addresses do not come again */
  return b;
}

static void *cuda_alloc(void *p, size_t n) { return cuda_alloc_bytes((cuda_ctx *)p, n * 4); }

static void *cuda_upload_act(void *p, const void *host, size_t bytes) {
  cuda_ctx *c = (cuda_ctx *)p;
  void *d = cuda_alloc_bytes(c, bytes);
  if (!d) return NULL;
  if (!c->pin && cudaHostAlloc((void **)&c->pin, PIN_BYTES, cudaHostAllocDefault) == cudaSuccess)
    c->pin_cap = PIN_BYTES;
  else if (!c->pin)
    cudaGetLastError(); /* no pinned memory: the pageable copy below */
  const size_t padded = (bytes + 63) & ~(size_t)63;
  int pinned = 0;
  if (c->pin && padded <= c->pin_cap - c->pin_used) {
    memcpy(c->pin + c->pin_used, host, bytes);
    host = c->pin + c->pin_used;
    c->pin_used += padded;
    pinned = 1;
  }
  if (gr_recording(c)) {
    if (!pinned) { /* a pageable source may change after this call: copied now, never in a graph */
      c->gclean = 0;
      if (c->gmode == GR_DEFER && gr_undefer(c)) return NULL;
    }
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_H2D, r.u.h2d.d = d, r.u.h2d.src = host, r.u.h2d.bytes = bytes;
    return gr_submit(c, &r) ? NULL : d;
  }
  cudaError_t e = cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, c->stream);
  if (e) {
    cuda_fail(e, "copying inputs to the device");
    return NULL;
  }
  prof_mark(c, "copy to device", 0, 0);
  return d;
}

static void *cuda_upload_param(void *p, const float *host, int64_t n, int as_compute) {
  cuda_ctx *c = (cuda_ctx *)p;
  size_t es = as_compute ? c->esize : 4;
  void *d = NULL, *tmp = NULL;
  cudaError_t e = cudaSuccess;
  if (c->n_params == c->cap_params) {
    size_t cap = c->cap_params ? 2 * c->cap_params : 256;
    void **np = (void **)realloc(c->params, cap * sizeof *np);
    if (!np) {
      mp_err(MP_ERR_NOMEM, "out of memory");
      return NULL;
    }
    c->params = np, c->cap_params = cap;
  }
  e = cudaMalloc(&d, (size_t)n * es);
  if (!e) track(c, (size_t)n * es, 0);
  if (!e && (es == 4 || c->dt == MP_F32)) {
    e = cudaMemcpyAsync(d, host, (size_t)n * 4, cudaMemcpyHostToDevice, c->stream);
    if (!e) e = cudaStreamSynchronize(c->stream);
  } else if (!e) { /* f32 staging on the device, converted there */
    e = cudaMalloc(&tmp, (size_t)n * 4);
    if (!e) track(c, (size_t)n * 4, (size_t)n * 4); /* the staging buffer counts at the peak only */
    if (!e) e = cudaMemcpyAsync(tmp, host, (size_t)n * 4, cudaMemcpyHostToDevice, c->stream);
    if (!e) DISPATCH(c, launch_f32_to, (c, (const float *)tmp, d, n));
    if (!e) e = cudaGetLastError();
    if (!e) e = cudaStreamSynchronize(c->stream);
    if (tmp) cudaFree(tmp), tmp = NULL;
  }
  if (e) {
    cudaGetLastError();
    if (d) cudaFree(d);
    if (tmp) cudaFree(tmp);
    cuda_fail(e, "uploading weights");
    return NULL;
  }
  c->params[c->n_params++] = d;
  return d;
}

/* ------------------------------------------------------------------ operations */

template <typename T> static void launch_f32_to(cuda_ctx *c, const float *in, void *out, int64_t n) {
  k_f32_to<T><<<blocks(n, 256), 256, 0, c->stream>>>(in, (T *)out, n);
}

static cudaDataType_t cu_type(mp_dtype dt) {
  return dt == MP_F16 ? CUDA_R_16F : dt == MP_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static int aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

template <typename T> static void launch_act(cuda_ctx *c, void *y, int64_t n, int act) {
  constexpr int V = vec16<T>::n;
  if (c->vec && n % V == 0 && aligned16(y))
    k_act_vec<T><<<blocks(n / V, 256), 256, 0, c->stream>>>((T *)y, n / V, act);
  else
    k_act<T><<<blocks(n, 256), 256, 0, c->stream>>>((T *)y, n, act);
}

/* The largest power of two (up to 256) that divides a device address: cuBLASLt's heuristic assumes
 * 256-byte aligned operands unless told otherwise. */
static uint32_t ptr_align(const void *p) {
  uint32_t a = 256;
  while (a > 1 && (uintptr_t)p % a)
    a >>= 1;
  return a;
}

/* Autotuning (MP_CUDA_AUTOTUNE, on by default): the heuristic's first AUTOTUNE_CANDIDATES algorithms
 * that fit the workspace are each run AUTOTUNE_WARMUP + AUTOTUNE_REPS times on the real operands
 * (D is written, never read: beta is 0, so the product after the choice overwrites it), timed
 * with events, and the fastest is kept. The heuristic's own first choice stays unless another is
 * more than AUTOTUNE_MARGIN faster (timing noise). MP_CUDA_AUTOTUNE=0: the heuristic's first
 * choice (the earlier behaviour); =2: also print each choice to stderr. */
#define AUTOTUNE_CANDIDATES 8
#define AUTOTUNE_WARMUP 1
#define AUTOTUNE_REPS 5
#define AUTOTUNE_MARGIN 0.03f
static int lt_autotune(cuda_ctx *c, cublasLtMatmulDesc_t md, cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                       cublasLtMatrixLayout_t lc, const cublasLtMatmulHeuristicResult_t *res, int got, const void *pa,
                       const void *pb, void *pd, float *best_ms, float *first_ms) {
  cudaEvent_t e0 = NULL, e1 = NULL;
  int best = 0;
  *best_ms = *first_ms = -1.0f;
  if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
    cudaGetLastError();
    if (e0) cudaEventDestroy(e0);
    return 0;
  }
  const float alpha = 1.0f, beta = 0.0f;
  for (int i = 0; i < got; i++) {
    if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > WORKSPACE_BYTES) continue;
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    for (int r = 0; !s && r < AUTOTUNE_WARMUP; r++)
      s = cublasLtMatmul(c->lt, md, &alpha, pa, la, pb, lb, &beta, pd, lc, pd, lc, &res[i].algo, c->workspace,
                         WORKSPACE_BYTES, c->stream);
    if (!s && cudaEventRecord(e0, c->stream) != cudaSuccess) s = CUBLAS_STATUS_EXECUTION_FAILED;
    for (int r = 0; !s && r < AUTOTUNE_REPS; r++)
      s = cublasLtMatmul(c->lt, md, &alpha, pa, la, pb, lb, &beta, pd, lc, pd, lc, &res[i].algo, c->workspace,
                         WORKSPACE_BYTES, c->stream);
    float ms = -1.0f;
    if (!s && cudaEventRecord(e1, c->stream) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess)
      cudaEventElapsedTime(&ms, e0, e1);
    cudaGetLastError();
    if (s || ms < 0) continue; /* this candidate cannot run here: skipped */
    if (*first_ms < 0 && i == 0) *first_ms = ms;
    if (*best_ms < 0 || ms < *best_ms) *best_ms = ms, best = i;
  }
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  if (*first_ms >= 0 && *best_ms >= *first_ms * (1.0f - AUTOTUNE_MARGIN)) best = 0, *best_ms = *first_ms;
  return *best_ms < 0 ? 0 : best;
}

/* The algorithm for one GEMM shape, epilogue, operand strides and alignments, chosen once (by the
 * heuristic, or autotuned among its candidates) and cached. */
static mp_status lt_algo_for(cuda_ctx *c, cublasLtMatmulDesc_t md, cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                             cublasLtMatrixLayout_t lc, int64_t m, int64_t n, int64_t k, int epi, int64_t lda,
                             int64_t ldb, const void *pa, const void *pb, void *pc, const cublasLtMatmulAlgo_t **algo) {
  const uint32_t al_a = ptr_align(pa), al_b = ptr_align(pb), al_c = ptr_align(pc);
  for (int i = 0; i < c->n_algos; i++) {
    lt_algo *a = &c->algos[i];
    if (a->m == m && a->n == n && a->k == k && a->epi == epi && a->lda == lda && a->ldb == ldb && a->al_a == al_a &&
        a->al_b == al_b && a->al_c == al_c) {
      *algo = &a->algo;
      return MP_OK;
    }
  }
  cublasLtMatmulPreference_t pref;
  LT(cublasLtMatmulPreferenceCreate(&pref), "preference");
  size_t ws = WORKSPACE_BYTES;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c);
  /* no timing while a graph is being captured (it would synchronize the stream) */
  const int tune = c->autotune && !c->capturing;
  cublasLtMatmulHeuristicResult_t res[AUTOTUNE_CANDIDATES];
  int got = 0;
  cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(c->lt, md, la, lb, lc, lc, pref, tune ? AUTOTUNE_CANDIDATES : 1, res, &got);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || got == 0)
    return mp_err(MP_ERR_UNSUPPORTED, "cuBLASLt: no algorithm for a [%lld x %lld] x [%lld] GEMM (status %d)",
                  (long long)n, (long long)k, (long long)m, (int)s);
  int pick = 0;
  if (tune && got > 1) {
    float best_ms, first_ms;
    pick = lt_autotune(c, md, la, lb, lc, res, got, pa, pb, pc, &best_ms, &first_ms);
    if (c->autotune > 1)
      fprintf(stderr,
              "mlxport CUDA autotune: %lldx%lld x %lld rows (epilogue %d): %d candidates, heuristic #1 %.1f us, "
              "picked #%d %.1f us\n",
              (long long)m, (long long)k, (long long)n, epi, got, first_ms * 1000.0f / AUTOTUNE_REPS, pick + 1,
              best_ms * 1000.0f / AUTOTUNE_REPS);
  }
  int slot = c->n_algos < N_ALGO ? c->n_algos++ : (int)((m + n + k) % N_ALGO);
  lt_algo *a = &c->algos[slot];
  a->m = m, a->n = n, a->k = k, a->epi = epi, a->ok = 1, a->algo = res[pick].algo;
  a->lda = lda, a->ldb = ldb, a->al_a = al_a, a->al_b = al_b, a->al_c = al_c;
  *algo = &a->algo;
  return MP_OK;
}

/* The common tail of a cuBLASLt product whose descriptors were built with status s: the cached
 * algorithm for (m, n, k, key, the leading dimensions lda / ldb of A and B, the pointers'
 * alignments), D = A · B (alpha 1, beta 0) on the stream, then the descriptors destroyed whatever
 * happened. */
static mp_status lt_run(cuda_ctx *c, cublasStatus_t s, cublasLtMatmulDesc_t md, cublasLtMatrixLayout_t la,
                        cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc, int64_t m, int64_t n, int64_t k, int key,
                        int64_t lda, int64_t ldb, const void *a, const void *b, void *d, const char *what) {
  mp_status st = s ? lt_fail(s, what) : MP_OK;
  const cublasLtMatmulAlgo_t *algo = NULL;
  if (!st) st = lt_algo_for(c, md, la, lb, lc, m, n, k, key, lda, ldb, a, b, d, &algo);
  if (!st) {
    float alpha = 1.0f, beta = 0.0f;
    s = cublasLtMatmul(c->lt, md, &alpha, a, la, b, lb, &beta, d, lc, d, lc, algo, c->workspace, WORKSPACE_BYTES,
                       c->stream);
    if (s) st = lt_fail(s, what);
    prof_mark(c, what, m, k);
  }
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (md) cublasLtMatmulDescDestroy(md);
  return st;
}

/* y = act(x · Wᵀ + bias) on cuBLASLt, W [out, in] in the compute dtype */
static mp_status lt_dense(cuda_ctx *c, const void *x, int64_t rows, const void *w, int64_t out, int64_t in,
                          const void *bias, mp_act act, void *y) {
  cudaDataType_t t = cu_type(c->dt);
  cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  int post = act;
  if (act == MP_ACT_RELU)
    epi = bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU, post = MP_ACT_NONE;
  else if (act == MP_ACT_GELU_TANH) /* cuBLASLt's GELU is the tanh form; erf GELU runs after */
    epi = bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU, post = MP_ACT_NONE;
  cublasLtMatmulDesc_t md = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  /* column-major view: D[out, rows] = W[in, out]ᵀ · X[in, rows] */
  cublasStatus_t s = cublasLtMatmulDescCreate(&md, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
  if (!s && bias) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  if (!s) s = cublasLtMatrixLayoutCreate(&la, t, (uint64_t)in, (uint64_t)out, in);
  if (!s) s = cublasLtMatrixLayoutCreate(&lb, t, (uint64_t)in, (uint64_t)rows, in);
  if (!s) s = cublasLtMatrixLayoutCreate(&lc, t, (uint64_t)out, (uint64_t)rows, out);
  MP_TRY(lt_run(c, s, md, la, lb, lc, out, rows, in, (int)epi, in, in, w, x, y, "matmul"));
  if (post != MP_ACT_NONE) {
    DISPATCH(c, launch_act, (c, y, rows * out, post));
    LAUNCHED("activation");
  }
  return MP_OK;
}

/* The fast mode's activations (mp_device_ops.fast_act): the erf GELU as cuBLASLt's tanh-form GELU
 * epilogue, fused into the GEMM instead of a pass of its own over [rows, out] after it. The two
 * differ by less than 4.8e-4 (at x = 2.70, where GELU is 2.69 and an fp16 ulp is 2^-9), under the
 * 16-bit output's rounding; E4M3 GEMMs round to 2^-4. MP_CUDA_FAST_GELU=erf keeps the exact
 * form; fp32 compute has no fast mode. */
static mp_act cuda_fast_act(void *p, mp_act act) {
  const cuda_ctx *c = (const cuda_ctx *)p;
  return act == MP_ACT_GELU_ERF && !c->gelu_erf && c->dt != MP_F32 ? MP_ACT_GELU_TANH : act;
}

/* ------------------------------------------------------------------ quantized weights (qgemm.cuh) */

/* the entry of a[0..n) (sorted by the device address in member key) whose address is w, or NULL */
template <typename S> static const S *find_by_addr(const S *a, int n, const void *w, const void *S::*key) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    const int mid = (lo + hi) / 2;
    const uintptr_t x = (uintptr_t)(a[mid].*key), y = (uintptr_t)w;
    if (x == y) return &a[mid];
    if (x < y)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NULL;
}
/* room for one more entry in a registry of n entries and capacity *cap (doubled when full); 0 when
 * out of memory */
template <typename S> static int reserve_one(S **a, int n, int *cap) {
  if (n < *cap) return 1;
  const int nc = *cap ? 2 * *cap : 64;
  S *na = (S *)realloc(*a, (size_t)nc * sizeof *na);
  if (!na) return 0;
  *a = na, *cap = nc;
  return 1;
}
/* a[n] = e, keeping a sorted by member key (room for one more entry is there) */
template <typename S> static void insert_by_addr(S *a, int n, const S &e, const void *S::*key) {
  int at = n;
  while (at > 0 && (uintptr_t)(a[at - 1].*key) > (uintptr_t)(e.*key)) {
    a[at] = a[at - 1];
    at--;
  }
  a[at] = e;
}
static const qweight *qw_find(const cuda_ctx *c, const void *w) {
  return find_by_addr(c->qw, c->n_qw, w, &qweight::codes);
}

static int cuda_qweight_ok(void *p, int64_t out, int64_t in, int group) {
  const cuda_ctx *c = (const cuda_ctx *)p;
  return c->qgemm && out > 0 && out % 8 == 0 && in > 0 && in % QG_KC == 0 &&
         (group == 32 || group == 64 || group == 128);
}

static void *cuda_upload_qweight(void *p, const uint8_t *codes, const float *scales, const float *biases, int64_t out,
                                 int64_t in, int group) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (!cuda_qweight_ok(p, out, in, group)) {
    mp_err(MP_ERR_INTERNAL, "CUDA: a quantized [%lld, %lld] matrix of group %d cannot stay quantized", (long long)out,
           (long long)in, group);
    return NULL;
  }
  const int64_t npad = (out + QG_BN - 1) / QG_BN * QG_BN, G = in / group, kchunks = in / QG_KC;
  int half = 1; /* (scale, bias) as __half2 when every value is exactly a float16 */
  for (int64_t i = 0; half && i < out * G; i++)
    half = (float)__float2half_rn(scales[i]) == scales[i] && (float)__float2half_rn(biases[i]) == biases[i];
  const size_t cbytes = (size_t)(npad * in), sbytes = (size_t)(npad * G) * (half ? 4 : 8);
  uint8_t *hc = (uint8_t *)calloc(cbytes, 1);
  unsigned char *hs = (unsigned char *)calloc(sbytes, 1);
  void *dc = NULL, *ds = NULL;
  if (!hc || !hs || !reserve_one(&c->qw, c->n_qw, &c->cap_qw)) {
    free(hc), free(hs);
    mp_err(MP_ERR_NOMEM, "out of memory packing a quantized matrix for the device");
    return NULL;
  }
  for (int64_t n = 0; n < out; n++)
    for (int64_t k = 0; k < in; k++)
      hc[qg_code_index(n, k, kchunks)] = codes[n * in + k];
  for (int64_t i = 0; i < out * G; i++) {
    if (half) {
      __half2 v = __halves2half2(__float2half_rn(scales[i]), __float2half_rn(biases[i]));
      memcpy(hs + (size_t)i * 4, &v, 4);
    } else {
      float2 v = make_float2(scales[i], biases[i]);
      memcpy(hs + (size_t)i * 8, &v, 8);
    }
  }
  cudaError_t e = cudaMalloc(&dc, cbytes);
  if (!e) track(c, cbytes, 0), e = cudaMalloc(&ds, sbytes);
  if (!e) track(c, sbytes, 0), e = cudaMemcpy(dc, hc, cbytes, cudaMemcpyHostToDevice);
  if (!e) e = cudaMemcpy(ds, hs, sbytes, cudaMemcpyHostToDevice);
  free(hc), free(hs);
  if (e) {
    if (dc) cudaFree(dc), track(c, 0, cbytes);
    if (ds) cudaFree(ds), track(c, 0, sbytes);
    cudaGetLastError();
    cuda_fail(e, "uploading a quantized matrix");
    return NULL;
  }
  qweight q;
  q.codes = dc, q.sb = ds, q.sb_half = half, q.group = group;
  q.out = out, q.in = in, q.npad = npad, q.G = G;
  insert_by_addr(c->qw, c->n_qw++, q, &qweight::codes);
  return dc;
}

/* a device buffer of the context of at least `need` bytes (grown outside graph capture only) */
static mp_status grow(cuda_ctx *c, void **buf, size_t *cap, size_t need, const char *what) {
  if (need <= *cap) return MP_OK;
  if (c->capturing) return mp_err(MP_ERR_INTERNAL, "CUDA: %s would grow during graph capture", what);
  if (*buf) {
    CU(cudaStreamSynchronize(c->stream), what);
    cudaFree(*buf), track(c, 0, *cap);
    *buf = NULL, *cap = 0;
  }
  gr_drop_all(c); /* the graphs use the old address */
  CU(cudaMalloc(buf, need), what);
  track(c, need, 0);
  *cap = need;
  return MP_OK;
}

template <typename T, typename SB, int MT>
static void launch_qgemm_mt(cuda_ctx *c, const qweight *q, const void *x, int64_t rows, const void *bias, int act,
                            void *y, dim3 grid, int cps) {
  k_qgemm<T, SB, MT><<<grid, QG_WARPS * 32, 0, c->stream>>>((const T *)x, rows, q->in, (const uint4 *)q->codes,
                                                            (const SB *)q->sb, q->G, q->group, q->out, cps,
                                                            (const T *)bias, act, (T *)y, (float *)c->qws);
}
template <typename T, typename SB>
static void launch_qgemm_sb(cuda_ctx *c, const qweight *q, const void *x, int64_t rows, const void *bias, int act,
                            void *y, int mt, dim3 grid, int cps) {
  switch (mt) {
  case 1: launch_qgemm_mt<T, SB, 1>(c, q, x, rows, bias, act, y, grid, cps); break;
  case 2: launch_qgemm_mt<T, SB, 2>(c, q, x, rows, bias, act, y, grid, cps); break;
  case 3: launch_qgemm_mt<T, SB, 3>(c, q, x, rows, bias, act, y, grid, cps); break;
  default: launch_qgemm_mt<T, SB, 4>(c, q, x, rows, bias, act, y, grid, cps); break;
  }
}
template <typename T>
static void launch_qgemm(cuda_ctx *c, const qweight *q, const void *x, int64_t rows, const void *bias, int act, void *y,
                         int mt, dim3 grid, int cps) {
  if (q->sb_half)
    launch_qgemm_sb<T, __half2>(c, q, x, rows, bias, act, y, mt, grid, cps);
  else
    launch_qgemm_sb<T, float2>(c, q, x, rows, bias, act, y, mt, grid, cps);
  if (grid.y > 1) {
    const int64_t pairs = rows * q->out / 2;
    k_qreduce<T><<<blocks(pairs, 256), 256, 0, c->stream>>>((const float *)c->qws, (int)grid.y, rows, q->out,
                                                            (const T *)bias, act, (T *)y);
  }
}
template <typename T> static void launch_qdequant(cuda_ctx *c, const qweight *q) {
  const int64_t lanes = q->npad / 8 * (q->in / QG_KC) * 32;
  if (q->sb_half)
    k_qdequant<T, __half2><<<blocks(lanes, 256), 256, 0, c->stream>>>((const uint4 *)q->codes, (const __half2 *)q->sb,
                                                                      q->G, q->group, q->in, lanes, (T *)c->qscr);
  else
    k_qdequant<T, float2><<<blocks(lanes, 256), 256, 0, c->stream>>>((const uint4 *)q->codes, (const float2 *)q->sb,
                                                                     q->G, q->group, q->in, lanes, (T *)c->qscr);
}

/* y = act(x · Wᵀ + bias) for a quantized W: the dequantize-in-GEMM kernel up to qgemm_rows rows,
 * else the matrix dequantized into the scratch buffer and cuBLASLt */
static mp_status q_dense(cuda_ctx *c, const qweight *q, const void *x, int64_t rows, const void *bias, mp_act act,
                         void *y) {
  if (rows > c->qgemm_rows || !aligned16(x)) {
    MP_TRY(grow(c, &c->qscr, &c->qscr_cap, (size_t)(q->npad * q->in) * c->esize, "allocating the dequantize scratch"));
    if (c->dt == MP_F16)
      launch_qdequant<__half>(c, q);
    else
      launch_qdequant<__nv_bfloat16>(c, q);
    LAUNCHED("dequantize");
    return lt_dense(c, x, rows, c->qscr, q->out, q->in, bias, act, y);
  }
  const int mt = rows <= 16 ? 1 : rows <= 32 ? 2 : rows <= 48 ? 3 : 4;
  const int64_t bm = 16 * mt, X = q->npad / QG_BN, Z = (rows + bm - 1) / bm, kchunks = q->in / QG_KC;
  /* split K until the grid holds about 4 blocks per SM, keeping 2 or more chunks per block */
  int64_t S = ((int64_t)c->qgemm_blocks * c->sms + X * Z - 1) / (X * Z);
  if (S > kchunks / 2) S = kchunks / 2;
  if (S < 1) S = 1;
  const int64_t cps = (kchunks + S - 1) / S;
  S = (kchunks + cps - 1) / cps;
  if (S > 1)
    MP_TRY(grow(c, &c->qws, &c->qws_cap, (size_t)(S * rows * q->out) * 4, "allocating the split-K partial sums"));
  dim3 grid((unsigned)X, (unsigned)S, (unsigned)Z);
  if (c->dt == MP_F16)
    launch_qgemm<__half>(c, q, x, rows, bias, (int)act, y, mt, grid, (int)cps);
  else
    launch_qgemm<__nv_bfloat16>(c, q, x, rows, bias, (int)act, y, mt, grid, (int)cps);
  CU(cudaGetLastError(), "quantized matmul");
  prof_mark(c, "qmatmul", q->out, q->in);
  return MP_OK;
}

/* ------------------------------------------------------------------ the fast mode (fp8gemm.cuh) */

static const f8weight *f8_find(const cuda_ctx *c, const void *w) {
  return find_by_addr(c->f8w, c->n_f8w, w, &f8weight::q);
}

static int cuda_fast8_ok(void *p, int64_t out, int64_t in, int raw_input) {
  const cuda_ctx *c = (const cuda_ctx *)p;
  return c->fast8 && (!raw_input || c->f8_raw) && out > 0 && in > 0 && out % F8_ALIGN == 0 && in % F8_ALIGN == 0;
}

static void *cuda_upload_fast8(void *p, const float *w, int64_t out, int64_t in) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (!cuda_fast8_ok(p, out, in, 0)) {
    mp_err(MP_ERR_INTERNAL, "CUDA: a [%lld, %lld] matrix cannot take the fast (FP8) mode", (long long)out,
           (long long)in);
    return NULL;
  }
  unsigned char *hq = (unsigned char *)malloc((size_t)(out * in));
  float *hs = (float *)malloc((size_t)out * sizeof *hs);
  if (!hq || !hs || !reserve_one(&c->f8w, c->n_f8w, &c->cap_f8w)) {
    free(hq), free(hs);
    mp_err(MP_ERR_NOMEM, "out of memory converting a matrix to FP8 for the device");
    return NULL;
  }
  for (int64_t o = 0; o < out; o++) { /* per output channel: s = max|w| / 448, codes E4M3(w / s) */
    const float *r = w + o * in;
    float amax = 0.0f;
    for (int64_t k = 0; k < in; k++)
      amax = fmaxf(amax, fabsf(r[k]));
    const float sc = amax > 0.0f && amax < INFINITY ? amax / F8_MAX : 1.0f, inv = 1.0f / sc;
    hs[o] = sc;
    for (int64_t k = 0; k < in; k++)
      hq[o * in + k] = f8_encode(r[k] * inv);
  }
  void *dq = NULL, *ds = NULL;
  cudaError_t e = cudaMalloc(&dq, (size_t)(out * in));
  if (!e) track(c, (size_t)(out * in), 0), e = cudaMalloc(&ds, (size_t)out * 4);
  if (!e) track(c, (size_t)out * 4, 0), e = cudaMemcpy(dq, hq, (size_t)(out * in), cudaMemcpyHostToDevice);
  if (!e) e = cudaMemcpy(ds, hs, (size_t)out * 4, cudaMemcpyHostToDevice);
  free(hq), free(hs);
  if (e) {
    if (dq) cudaFree(dq), track(c, 0, (size_t)(out * in));
    if (ds) cudaFree(ds), track(c, 0, (size_t)out * 4);
    cudaGetLastError();
    cuda_fail(e, "uploading an FP8 matrix");
    return NULL;
  }
  f8weight f;
  f.q = dq, f.s = (const float *)ds, f.out = out, f.in = in;
  insert_by_addr(c->f8w, c->n_f8w++, f, &f8weight::q);
  return dq;
}

/* The cuBLASLt descriptors of an fp8 GEMM D[out, rows] = s_w[out] s_x[rows] (W[in, out]ᵀ · X[in,
 * rows]) + bias, epilogue epi, D in the compute dtype: E4M3 operands, per-row / per-channel scales
 * (OUTER_VEC_32F). The first failing status, or 0. */
static cublasStatus_t f8_desc(const cuda_ctx *c, int64_t out, int64_t rows, int64_t in, cublasLtEpilogue_t epi,
                              const void *bias, const void *sw, const void *sx, cublasLtMatmulDesc_t *md,
                              cublasLtMatrixLayout_t *la, cublasLtMatrixLayout_t *lb, cublasLtMatrixLayout_t *lc) {
  cudaDataType_t t = cu_type(c->dt), t8 = CUDA_R_8F_E4M3;
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  int32_t outer = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
  cublasStatus_t s = cublasLtMatmulDescCreate(md, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
  if (!s && bias) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
  if (!s && bias) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof t);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sw, sizeof sw);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sx, sizeof sx);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &outer, sizeof outer);
  if (!s) s = cublasLtMatmulDescSetAttribute(*md, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &outer, sizeof outer);
  if (!s) s = cublasLtMatrixLayoutCreate(la, t8, (uint64_t)in, (uint64_t)out, in);
  if (!s) s = cublasLtMatrixLayoutCreate(lb, t8, (uint64_t)in, (uint64_t)rows, in);
  if (!s) s = cublasLtMatrixLayoutCreate(lc, t, (uint64_t)out, (uint64_t)rows, out);
  return s;
}

/* Whether this GPU and cuBLASLt run the fast mode's GEMM: the heuristic asked for a small one with
 * a bias (the scale and bias pointers are the workspace's address: nothing runs) */
static int f8_available(cuda_ctx *c) {
  cublasLtMatmulDesc_t md = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasLtMatmulPreference_t pref = NULL;
  cublasLtMatmulHeuristicResult_t res;
  int got = 0;
  size_t ws = WORKSPACE_BYTES;
  cublasStatus_t s =
      f8_desc(c, 64, 64, 64, CUBLASLT_EPILOGUE_BIAS, c->workspace, c->workspace, c->workspace, &md, &la, &lb, &lc);
  if (!s) s = cublasLtMatmulPreferenceCreate(&pref);
  if (!s) s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  if (!s) s = cublasLtMatmulAlgoGetHeuristic(c->lt, md, la, lb, lc, lc, pref, 1, &res, &got);
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (md) cublasLtMatmulDescDestroy(md);
  return !s && got > 0;
}

/* k_quant_rows_f8 over rows of dim values of the compute dtype (fp16 / bf16): x (act(x) where act
 * >= 0, then x * y where y is given, in place) and its E4M3 codes q with row scales qs */
static void quant_rows(cuda_ctx *c, void *x, const void *y, int64_t rows, int64_t dim, int act, unsigned char *q,
                       float *qs) {
  if (c->dt == MP_F16)
    k_quant_rows_f8<__half>
        <<<(unsigned)rows, F8_THREADS, 0, c->stream>>>((__half *)x, (const __half *)y, dim, act, q, qs);
  else
    k_quant_rows_f8<__nv_bfloat16>
        <<<(unsigned)rows, F8_THREADS, 0, c->stream>>>((__nv_bfloat16 *)x, (const __nv_bfloat16 *)y, dim, act, q, qs);
}

/* y = act(x · Wᵀ + bias) in the fast mode: x quantized per row to E4M3 (k_quant_rows_f8) or its
 * copy taken from the kernel that wrote x, then cuBLASLt's FP8 GEMM with the row and channel
 * scales, bias and ReLU / tanh-form GELU in its epilogue (the model asks for the erf GELU in that
 * form in the fast mode: cuda_fast_act). */
static mp_status f8_dense(cuda_ctx *c, const f8weight *f, const void *x, int64_t rows, const void *bias, mp_act act,
                          void *y) {
  if (!aligned16(x)) return mp_err(MP_ERR_INTERNAL, "CUDA: the fast mode's input is not 16-byte aligned");
  const size_t qbytes = ((size_t)(rows * f->in) + 255) / 256 * 256;
  unsigned char *xq;
  float *xs;
  const int shadow = c->sh_ptr == x && c->sh_rows == rows && c->sh_cols == f->in && c->sh_mark == c->marks;
  if (shadow) {
    xq = (unsigned char *)c->x8b, xs = (float *)(xq + qbytes); /* written by x's producer */
  } else if (c->kp_ptr == x && c->kp_rows == rows && c->kp_cols == f->in) {
    xq = (unsigned char *)c->x8k, xs = (float *)(xq + qbytes); /* kept by keep_copy */
  } else {
    MP_TRY(grow(c, &c->x8, &c->x8_cap, qbytes + (size_t)rows * 4, "allocating the FP8 activations"));
    xq = (unsigned char *)c->x8, xs = (float *)(xq + qbytes);
    quant_rows(c, (void *)x, NULL, rows, f->in, -1, xq, xs);
    LAUNCHED("quantize (fp8)");
  }
  c->sh_ptr = NULL;
  cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  int post = act;
  if (act == MP_ACT_RELU)
    epi = bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU, post = MP_ACT_NONE;
  else if (act == MP_ACT_GELU_TANH)
    epi = bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU, post = MP_ACT_NONE;
  cublasLtMatmulDesc_t md = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasStatus_t s = f8_desc(c, f->out, rows, f->in, epi, bias, f->s, xs, &md, &la, &lb, &lc);
  MP_TRY(lt_run(c, s, md, la, lb, lc, f->out, rows, f->in, (int)epi | F8_ALGO_KEY, f->in, f->in, f->q, xq, y,
                "matmul (fp8)"));
  const uintptr_t x0 = (uintptr_t)x, x1 = x0 + (uintptr_t)(rows * f->in) * c->esize, y0 = (uintptr_t)y,
                  y1 = y0 + (uintptr_t)(rows * f->out) * c->esize;
  if (shadow && (y1 <= x0 || x1 <= y0)) /* x is unchanged: its copy serves the next GEMM on it too */
    c->sh_ptr = x, c->sh_mark = c->marks;
  if (post != MP_ACT_NONE && c->f8_fuse && c->f8_raw && f->out % 8 == 0 && aligned16(y)) {
    /* the activation and the E4M3 copy for the next fp8 GEMM in one pass (that GEMM's input is raw:
     * it runs on fp8 only with MP_CUDA_FAST8_RAW=1) */
    const size_t ybytes = ((size_t)(rows * f->out) + 255) / 256 * 256;
    MP_TRY(grow(c, &c->x8b, &c->x8b_cap, ybytes + (size_t)rows * 4, "allocating the FP8 activations"));
    unsigned char *yq = (unsigned char *)c->x8b;
    quant_rows(c, y, NULL, rows, f->out, post, yq, (float *)(yq + ybytes));
    LAUNCHED("activation + quantize (fp8)");
    c->sh_ptr = y, c->sh_rows = rows, c->sh_cols = f->out, c->sh_mark = c->marks;
    return MP_OK;
  }
  if (post != MP_ACT_NONE) {
    DISPATCH(c, launch_act, (c, y, rows * f->out, post));
    LAUNCHED("activation");
  }
  return MP_OK;
}

static mp_status cuda_dense(void *p, const void *x, int64_t rows, const void *w, int64_t out, int64_t in,
                            const void *bias, mp_act act, void *y) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_DENSE, r.u.dense.x = x, r.u.dense.w = w, r.u.dense.bias = bias, r.u.dense.rows = rows;
    r.u.dense.out = out, r.u.dense.in = in, r.u.dense.act = (int)act, r.u.dense.y = y;
    return gr_submit(c, &r);
  }
  const f8weight *f = c->n_f8w ? f8_find(c, w) : NULL;
  if (f) {
    if (f->out != out || f->in != in)
      return mp_err(MP_ERR_INTERNAL, "CUDA: an FP8 [%lld, %lld] matrix used as [%lld, %lld]", (long long)f->out,
                    (long long)f->in, (long long)out, (long long)in);
    return f8_dense(c, f, x, rows, bias, act, y);
  }
  const qweight *q = c->n_qw ? qw_find(c, w) : NULL;
  if (q) {
    if (q->out != out || q->in != in)
      return mp_err(MP_ERR_INTERNAL, "CUDA: a quantized [%lld, %lld] matrix used as [%lld, %lld]", (long long)q->out,
                    (long long)q->in, (long long)out, (long long)in);
    return q_dense(c, q, x, rows, bias, act, y);
  }
  return lt_dense(c, x, rows, w, out, in, bias, act, y);
}

/* The vectors per lane of a warp-per-row kernel for rows of dim values (0: the block-per-row
 * kernel instead: vectors off, dim not whole vectors or too wide, or a pointer not 16-byte aligned). */
template <typename T> static int vec_chunks(const cuda_ctx *c, int64_t dim, uintptr_t ptrs) {
  constexpr int V = vec16<T>::n;
  if (!c->vec || dim <= 0 || dim % V || ptrs % 16) return 0;
  const int64_t ch = (dim + 32 * V - 1) / (32 * V);
  return ch <= LN_MAXCH ? (int)ch : 0;
}
/* A LayerNorm's E4M3 copy of its output [rows, dim] in a model with fp8 GEMMs, for the next one to
 * take: the buffer (codes q + row scales qs in x8b; NULL: none wanted), whether the kernel wrote
 * it (wrote), and f8_copy_done to offer it (the shadow of cuda_ctx) */
struct f8_copy {
  unsigned char *q;
  float *qs;
  int wrote;
};
static mp_status f8_copy_buffer(cuda_ctx *c, int64_t rows, int64_t dim, f8_copy *cp) {
  cp->q = NULL, cp->qs = NULL, cp->wrote = 0;
  if (!c->n_f8w || !c->f8_fuse || c->dt == MP_F32 || dim % 8) return MP_OK;
  const size_t qbytes = ((size_t)(rows * dim) + 255) / 256 * 256;
  MP_TRY(grow(c, &c->x8b, &c->x8b_cap, qbytes + (size_t)rows * 4, "allocating the FP8 activations"));
  cp->q = (unsigned char *)c->x8b, cp->qs = (float *)(cp->q + qbytes);
  return MP_OK;
}
static void f8_copy_done(cuda_ctx *c, const f8_copy &cp, const void *out, int64_t rows, int64_t dim) {
  if (cp.wrote) c->sh_ptr = out, c->sh_rows = rows, c->sh_cols = dim, c->sh_mark = c->marks;
}

template <typename T>
static void launch_ln(cuda_ctx *c, const void *x, const void *res, int64_t rows, int64_t dim, const void *g,
                      const void *b, float eps, void *out, unsigned char *q, float *qs, int *wrote_q) {
  const int ch = vec_chunks<T>(c, dim, (uintptr_t)x | (uintptr_t)res | (uintptr_t)out | (uintptr_t)g | (uintptr_t)b);
  const unsigned grid = blocks(rows, LN_WARPS), th = 32 * LN_WARPS;
  const T *xt = (const T *)x, *rt = (const T *)res;
  const float *gf = (const float *)g, *bf = (const float *)b;
  *wrote_q = ch > 0 && q;
  switch (ch) {
  case 1: k_layernorm_vec<T, 1><<<grid, th, 0, c->stream>>>(xt, rt, rows, dim, gf, bf, eps, (T *)out, q, qs); break;
  case 2: k_layernorm_vec<T, 2><<<grid, th, 0, c->stream>>>(xt, rt, rows, dim, gf, bf, eps, (T *)out, q, qs); break;
  case 3: k_layernorm_vec<T, 3><<<grid, th, 0, c->stream>>>(xt, rt, rows, dim, gf, bf, eps, (T *)out, q, qs); break;
  case 4: k_layernorm_vec<T, 4><<<grid, th, 0, c->stream>>>(xt, rt, rows, dim, gf, bf, eps, (T *)out, q, qs); break;
  default:
    k_layernorm<T>
        <<<(unsigned)rows, row_threads(dim), (size_t)(32 + dim) * 4, c->stream>>>(xt, rt, dim, gf, bf, eps, (T *)out);
  }
}
static mp_status cuda_layernorm(void *p, const void *x, const void *res, int64_t rows, int64_t dim, const void *g,
                                const void *b, float eps, void *out) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (rows <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_LN, r.u.ln.x = x, r.u.ln.res = res, r.u.ln.g = g, r.u.ln.b = b, r.u.ln.rows = rows;
    r.u.ln.dim = dim, r.u.ln.eps = eps, r.u.ln.out = out;
    return gr_submit(c, &r);
  }
  f8_copy cp;
  MP_TRY(f8_copy_buffer(c, rows, dim, &cp));
  DISPATCH(c, launch_ln, (c, x, res, rows, dim, g, b, eps, out, cp.q, cp.qs, &cp.wrote));
  LAUNCHED(cp.wrote ? "layernorm + quantize (fp8)" : "layernorm");
  f8_copy_done(c, cp, out, rows, dim);
  return MP_OK;
}

template <typename T>
static void launch_embed(cuda_ctx *c, const embed_args &a, int64_t rows, int64_t dim, float scale0, const void *g,
                         const void *b, float eps, void *out, unsigned char *q, float *qs, int *wrote_q) {
  uintptr_t ptrs = (uintptr_t)out | (uintptr_t)g | (uintptr_t)b;
  for (int t = 0; t < a.n; t++)
    ptrs |= (uintptr_t)a.tables[t];
  const int ch = vec_chunks<T>(c, dim, ptrs);
  const unsigned grid = blocks(rows, LN_WARPS), th = 32 * LN_WARPS;
  const float *gf = (const float *)g, *bf = (const float *)b;
  T *o = (T *)out;
  *wrote_q = ch > 0 && q && g;
  switch (ch) {
  case 1: k_embed_ln_vec<T, 1><<<grid, th, 0, c->stream>>>(a, rows, dim, scale0, gf, bf, eps, o, q, qs); break;
  case 2: k_embed_ln_vec<T, 2><<<grid, th, 0, c->stream>>>(a, rows, dim, scale0, gf, bf, eps, o, q, qs); break;
  case 3: k_embed_ln_vec<T, 3><<<grid, th, 0, c->stream>>>(a, rows, dim, scale0, gf, bf, eps, o, q, qs); break;
  case 4: k_embed_ln_vec<T, 4><<<grid, th, 0, c->stream>>>(a, rows, dim, scale0, gf, bf, eps, o, q, qs); break;
  default:
    k_embed_ln<T><<<(unsigned)rows, row_threads(dim), (size_t)(32 + dim) * 4, c->stream>>>(a, dim, scale0, gf, bf, eps,
                                                                                           (T *)out);
  }
}
static mp_status cuda_embed_sum_ln(void *p, int n, const void *const *tables, const int32_t *const *ids, int64_t rows,
                                   int64_t dim, float scale0, const void *g, const void *b, float eps, void *out) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (n < 1 || n > MAX_TABLES) return mp_err(MP_ERR_INTERNAL, "embeddings: %d tables (1..%d)", n, MAX_TABLES);
  embed_args a;
  memset(&a, 0, sizeof a);
  a.n = n;
  for (int i = 0; i < n; i++)
    a.tables[i] = tables[i], a.ids[i] = ids[i];
  if (rows <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_EMBED, r.u.embed.a = a, r.u.embed.rows = rows, r.u.embed.dim = dim, r.u.embed.scale0 = scale0;
    r.u.embed.eps = eps, r.u.embed.g = g, r.u.embed.b = b, r.u.embed.out = out;
    return gr_submit(c, &r);
  }
  f8_copy cp;
  MP_TRY(f8_copy_buffer(c, rows, dim, &cp));
  DISPATCH(c, launch_embed, (c, a, rows, dim, scale0, g, b, eps, out, cp.q, cp.qs, &cp.wrote));
  LAUNCHED(cp.wrote ? "embeddings + quantize (fp8)" : "embeddings");
  f8_copy_done(c, cp, out, rows, dim);
  return MP_OK;
}

template <typename T> static void launch_att(cuda_ctx *c, const mp_dev_attention *a) {
  dim3 grid((unsigned)((a->seq_q + ATT_WARPS - 1) / ATT_WARPS), (unsigned)a->heads, (unsigned)a->batch);
  size_t sh = (size_t)(2 * 32 * (a->head_dim + 1) + ATT_WARPS * a->head_dim) * 4;
  k_attention<T><<<grid, ATT_WARPS * 32, sh, c->stream>>>(*a);
}
/* Batched C[h][rows, n] (f32, row-major) = X_h[rows, k] · P_h[n, k]ᵀ for h < batch, where X_h / P_h are
 * the k columns at h * k of row-major matrices with row strides ldx / ldp (compute dtype): the
 * per-head products of DeBERTa's c2p / p2c tables, one cuBLASLt call. */
static mp_status lt_gemm_heads(cuda_ctx *c, const void *x, int64_t ldx, int64_t rows, const void *pm, int64_t ldp,
                               int64_t n, int64_t k, int64_t batch, float *out) {
  cudaDataType_t t = cu_type(c->dt);
  cublasLtMatmulDesc_t md = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  int32_t nb = (int32_t)batch;
  int64_t sa = k, sb = k, sc = rows * n;
  cublasStatus_t s = cublasLtMatmulDescCreate(&md, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (!s) s = cublasLtMatrixLayoutCreate(&la, t, (uint64_t)k, (uint64_t)n, ldp);
  if (!s) s = cublasLtMatrixLayoutCreate(&lb, t, (uint64_t)k, (uint64_t)rows, ldx);
  if (!s) s = cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, (uint64_t)n, (uint64_t)rows, n);
  if (!s) s = cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &nb, sizeof nb);
  if (!s) s = cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &nb, sizeof nb);
  if (!s) s = cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &nb, sizeof nb);
  if (!s) s = cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa);
  if (!s) s = cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb);
  if (!s) s = cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc);
  /* the algorithm cache key: a batched f32-output product never shares an epilogue code with a dense */
  return lt_run(c, s, md, la, lb, lc, n, rows, k, 0x10000 + (int)batch, ldp, ldx, pm, x, out, "batched matmul");
}

/* the mma kernel stores two outputs per 32-bit write: 16-byte aligned output rows (else WMMA) */
static int mma_fits(const cuda_ctx *c, const mp_dev_attention *a) {
  const int64_t HD = a->heads * a->head_dim;
  return c->attention_mma && (uintptr_t)a->out % 16 == 0 && (a->ldo ? a->ldo : HD) % 8 == 0;
}

template <typename T, int D, bool PLAIN>
static mp_status launch_flash_dp(cuda_ctx *c, const mp_dev_attention *a, const flash_rel &r, int mma) {
  /* the shared-memory limit is a per-device attribute of the kernel: set once per context (device) */
  const int b4 = mma && D == 64 && c->flash_blocks == 4;
  const int idx = (D == 32   ? 0
                   : D == 64 ? 1
                             : 2) +
                  (c->dt == MP_BF16 ? 3 : 0) + (mma ? 6 : 0) + (b4 ? 12 : 0) + (PLAIN ? 24 : 0);
  const uint64_t bit = (uint64_t)1 << idx;
  const size_t sh = mma ? mma_shape<D>::bytes : flash_shape<D>::bytes;
  const void *kern = mma ? (const void *)k_flash_mma<T, D, PLAIN> : (const void *)k_flash<T, D>;
  if constexpr (D == 64) /* the 4-blocks build exists for head_dim 64 only */
    if (b4) kern = (const void *)k_flash_mma4<T, D, PLAIN>;
  if (!(c->flash_configured & bit)) {
    CU(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh),
       "configuring the attention kernel");
    c->flash_configured |= bit;
  }
  dim3 grid((unsigned)((a->seq_q + FA_Q - 1) / FA_Q), (unsigned)a->heads, (unsigned)a->batch);
  if constexpr (D == 64)
    if (b4) {
      k_flash_mma4<T, D, PLAIN><<<grid, FA_THREADS, sh, c->stream>>>(*a, r);
      LAUNCHED(PLAIN ? "flash attention (mma, plain)" : "flash attention (mma)");
      return MP_OK;
    }
  if (mma) {
    k_flash_mma<T, D, PLAIN><<<grid, FA_THREADS, sh, c->stream>>>(*a, r);
    LAUNCHED(PLAIN ? "flash attention (mma, plain)" : "flash attention (mma)");
  } else {
    k_flash<T, D><<<grid, FA_THREADS, sh, c->stream>>>(*a, r);
    LAUNCHED("flash attention");
  }
  return MP_OK;
}
/* the mma kernel's plain form (flash_mma.cuh) when nothing but the key padding mask applies */
template <typename T, int D>
static mp_status launch_flash_d(cuda_ctx *c, const mp_dev_attention *a, const flash_rel &r) {
  const int mma = mma_fits(c, a);
  if (mma && c->flash_plain && !a->causal && a->window <= 0 && !r.c2p && !r.p2c && !a->bias_tab)
    return launch_flash_dp<T, D, true>(c, a, r, mma);
  return launch_flash_dp<T, D, false>(c, a, r, mma);
}
template <typename T> static mp_status launch_flash(cuda_ctx *c, const mp_dev_attention *a, const flash_rel &r) {
  switch (a->head_dim) {
  case 32: return launch_flash_d<T, 32>(c, a, r);
  case 64: return launch_flash_d<T, 64>(c, a, r);
  default: return launch_flash_d<T, 128>(c, a, r);
  }
}

/* The tensor-core kernel takes fp16 / bf16, head_dim 32, 64 or 128, 16-byte aligned rows. */
static int flash_fits(const cuda_ctx *c, const mp_dev_attention *a) {
  const int64_t D = a->head_dim, HD = a->heads * D;
  if (c->attention_simple || c->dt == MP_F32 || (D != 32 && D != 64 && D != 128)) return 0;
  if (((uintptr_t)a->q | (uintptr_t)a->k | (uintptr_t)a->v) % 16) return 0;
  if ((a->ldq ? a->ldq : HD) % 8 || (a->ldk ? a->ldk : HD) % 8 || (a->ldv ? a->ldv : HD) % 8) return 0;
  if ((a->pos_k || a->pos_q) && (a->n_pos <= 0 || a->seq_q != a->seq_k)) return 0;
  return 1;
}

/* DeBERTa's c2p / p2c terms as two batched table products into the reused rel_buf */
static mp_status flash_tables(cuda_ctx *c, const mp_dev_attention *a, flash_rel *r) {
  const int64_t D = a->head_dim, H = a->heads, ldp = a->ldp ? a->ldp : H * D;
  const int64_t nq = a->batch * a->seq_q, nk = a->batch * a->seq_k;
  const int c2p = a->pos_k && a->cix, p2c = a->pos_q && a->pix;
  const size_t need = (size_t)H * a->n_pos * ((c2p ? nq : 0) + (p2c ? nk : 0)) * sizeof(float);
  if (need > c->rel_cap) {
    if (c->rel_buf) {
      CU(cudaStreamSynchronize(c->stream), "waiting for the stream");
      cudaFree(c->rel_buf);
      track(c, 0, c->rel_cap);
      c->rel_buf = NULL, c->rel_cap = 0;
    }
    gr_drop_all(c); /* the graphs read the tables at the old address */
    CU(cudaMalloc(&c->rel_buf, need), "allocating the relative-attention tables");
    track(c, need, 0);
    c->rel_cap = need;
  }
  float *t = (float *)c->rel_buf;
  const size_t es = c->esize;
  r->n_pos = a->n_pos, r->lo = a->pos_lo;
  if (c2p) {
    MP_TRY(lt_gemm_heads(c, a->q, a->ldq ? a->ldq : H * D, nq, (const char *)a->pos_k + a->pos_lo * ldp * es, ldp,
                         a->n_pos, D, H, t));
    r->c2p = t, t += (size_t)H * nq * a->n_pos;
  }
  if (p2c) {
    MP_TRY(lt_gemm_heads(c, a->k, a->ldk ? a->ldk : H * D, nk, (const char *)a->pos_q + a->pos_lo * ldp * es, ldp,
                         a->n_pos, D, H, t));
    r->p2c = t;
  }
  return MP_OK;
}

static mp_status cuda_attention(void *p, const mp_dev_attention *a) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_ATT;
    mp_dev_attention *t = &r.u.att; /* field by field: the caller's padding bytes stay out of the compare */
    t->batch = a->batch, t->seq_q = a->seq_q, t->seq_k = a->seq_k, t->heads = a->heads, t->head_dim = a->head_dim;
    t->q = a->q, t->k = a->k, t->v = a->v, t->ldq = a->ldq, t->ldk = a->ldk, t->ldv = a->ldv, t->ldo = a->ldo;
    t->out = a->out, t->scale = a->scale, t->key_mask = a->key_mask, t->pos_k = a->pos_k, t->pos_q = a->pos_q;
    t->cix = a->cix, t->pix = a->pix, t->ldp = a->ldp, t->bias_tab = a->bias_tab, t->bidx = a->bidx;
    t->causal = a->causal, t->window = a->window, t->pos_lo = a->pos_lo, t->n_pos = a->n_pos;
    return gr_submit(c, &r);
  }
  if (a->batch > 0 && a->seq_q > 0 && a->heads > 0 && a->heads <= 65535 && a->batch <= 65535 && flash_fits(c, a)) {
    flash_rel r = {NULL, NULL, 0, 0};
    if (a->pos_k || a->pos_q) MP_TRY(flash_tables(c, a, &r));
    return c->dt == MP_F16 ? launch_flash<__half>(c, a, r) : launch_flash<__nv_bfloat16>(c, a, r);
  }
  if (a->head_dim < 1 || a->head_dim > ATT_MAXD)
    return mp_err(MP_ERR_UNSUPPORTED, "CUDA attention: head_dim %lld is not supported yet (1..%d)",
                  (long long)a->head_dim, ATT_MAXD);
  if (a->batch <= 0 || a->seq_q <= 0 || a->heads <= 0) return MP_OK;
  if (a->heads > 65535 || a->batch > 65535)
    return mp_err(MP_ERR_UNSUPPORTED, "CUDA attention: %lld heads x %lld sequences is too large for one launch",
                  (long long)a->heads, (long long)a->batch);
  DISPATCH(c, launch_att, (c, a));
  LAUNCHED("attention");
  return MP_OK;
}

template <typename T>
static void launch_gather(cuda_ctx *c, const void *x, int64_t n, int64_t stride, int64_t dim, void *out) {
  k_gather_rows<T><<<(unsigned)n, row_threads(dim), 0, c->stream>>>((const T *)x, stride, dim, (T *)out);
}
static mp_status cuda_gather_rows(void *p, const void *x, int64_t n, int64_t stride, int64_t dim, void *out) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (n <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_GATHER, r.u.gather.x = x, r.u.gather.n = n, r.u.gather.stride = stride, r.u.gather.dim = dim;
    r.u.gather.out = out;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_gather, (c, x, n, stride, dim, out));
  LAUNCHED("gather");
  return MP_OK;
}

template <typename T>
static void launch_pool(cuda_ctx *c, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                        int pooling, int normalize, float *out) {
  constexpr int V = vec16<T>::n;
  const int64_t nv = dim / V;
  if (c->vec && pooling != 1 && dim % V == 0 && aligned16(x) && nv >= 1 && nv <= 512) {
    const int64_t G = 512 / nv < 16 ? 512 / nv : 16; /* token groups: at most 512 threads */
    const size_t smem = (size_t)((G + 1) * dim + G + 32) * 4;
    k_pool_vec<T><<<(unsigned)batch, (unsigned)(((G * nv) + 31) / 32 * 32), smem, c->stream>>>(
        (const T *)x, seq, dim, mask, pooling, normalize, (int)G, out);
    return;
  }
  k_pool<T><<<(unsigned)batch, row_threads(dim), (size_t)(32 + dim) * 4, c->stream>>>((const T *)x, seq, dim, mask,
                                                                                      pooling, normalize, out);
}
static mp_status cuda_pool(void *p, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                           int pooling, int normalize, float *host) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (batch <= 0) return MP_OK;
  float *d = (float *)cuda_alloc_bytes(c, (size_t)(batch * dim) * 4);
  if (!d) return MP_ERR_NOMEM;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_POOL, r.u.pool.x = x, r.u.pool.batch = batch, r.u.pool.seq = seq, r.u.pool.dim = dim;
    r.u.pool.mask = mask, r.u.pool.pooling = pooling, r.u.pool.normalize = normalize, r.u.pool.out = d;
    MP_TRY(gr_submit(c, &r));
    MP_TRY(gr_flush(c));
  } else {
    DISPATCH(c, launch_pool, (c, x, batch, seq, dim, mask, pooling, normalize, d));
    LAUNCHED("pooling");
  }
  CU(cudaMemcpyAsync(host, d, (size_t)(batch * dim) * 4, cudaMemcpyDeviceToHost, c->stream), "copying results");
  prof_mark(c, "copy to host", 0, 0);
  CU(cudaStreamSynchronize(c->stream), "running the forward pass");
  return MP_OK;
}

template <typename T>
static void launch_gidx(cuda_ctx *c, const void *x, int64_t n, const int32_t *idx, int64_t dim, void *out) {
  k_gather_idx<T><<<(unsigned)n, row_threads(dim), 0, c->stream>>>((const T *)x, idx, dim, (T *)out);
}
static mp_status cuda_gather_idx(void *p, const void *x, int64_t n, const int32_t *idx, int64_t dim, void *out) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (n <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_GIDX, r.u.gather.x = x, r.u.gather.n = n, r.u.gather.idx = idx, r.u.gather.dim = dim;
    r.u.gather.out = out;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_gidx, (c, x, n, idx, dim, out));
  LAUNCHED("gather");
  return MP_OK;
}

template <typename T>
static void launch_rope(cuda_ctx *c, const void *qkv, int64_t rows, int64_t seq, int64_t H, int64_t d, const float *cs,
                        void *q, void *k, void *v) {
  int64_t n = rows * (H / d) * (d / 2);
  k_rope_split<T><<<blocks(n, 256), 256, 0, c->stream>>>((const T *)qkv, rows, seq, H, d, cs, (T *)q, (T *)k, (T *)v);
}
static mp_status cuda_rope_split(void *p, const void *qkv, int64_t rows, int64_t seq, int64_t H, int64_t d,
                                 const float *cs, void *q, void *k, void *v) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (rows <= 0) return MP_OK;
  if (d % 2 || H % d) return mp_err(MP_ERR_UNSUPPORTED, "CUDA rotary embeddings: head_dim %lld", (long long)d);
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_ROPE, r.u.rope.qkv = qkv, r.u.rope.rows = rows, r.u.rope.seq = seq, r.u.rope.hidden = H;
    r.u.rope.d = d, r.u.rope.cs = cs, r.u.rope.q = q, r.u.rope.k = k, r.u.rope.v = v;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_rope, (c, qkv, rows, seq, H, d, cs, q, k, v));
  LAUNCHED("rotary embeddings");
  return MP_OK;
}
template <typename T> static void launch_binary(cuda_ctx *c, void *x, const void *y, int64_t n, int op) {
  constexpr int V = vec16<T>::n;
  if (c->vec && n % V == 0 && ((uintptr_t)x | (uintptr_t)y) % 16 == 0)
    k_binary_vec<T><<<blocks(n / V, 256), 256, 0, c->stream>>>((T *)x, (const T *)y, n / V, op);
  else
    k_binary<T><<<blocks(n, 256), 256, 0, c->stream>>>((T *)x, (const T *)y, n, op);
}
static mp_status cuda_binary(void *p, void *x, const void *y, int64_t n, int op) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (n <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_BINARY, r.u.binary.x = x, r.u.binary.y = y, r.u.binary.n = n, r.u.binary.op = op;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_binary, (c, x, y, n, op));
  LAUNCHED("elementwise");
  return MP_OK;
}
/* x *= y over [rows, dim]; in a model with fp8 GEMMs also the product's E4M3 copy for the next one
 * (k_quant_rows_f8 given y), as the LayerNorm writes it */
static mp_status cuda_mul_rows(void *p, void *x, const void *y, int64_t rows, int64_t dim) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (rows <= 0 || dim <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_MUL_ROWS, r.u.binary.x = x, r.u.binary.y = y, r.u.binary.n = rows * dim, r.u.binary.op = 1;
    r.u.binary.dim = dim;
    return gr_submit(c, &r);
  }
  f8_copy cp;
  MP_TRY(f8_copy_buffer(c, rows, dim, &cp));
  if (!cp.q || !aligned16(x) || !aligned16(y)) return cuda_binary(p, x, y, rows * dim, 1);
  quant_rows(c, x, y, rows, dim, -1, cp.q, cp.qs);
  LAUNCHED("elementwise + quantize (fp8)");
  cp.wrote = 1;
  f8_copy_done(c, cp, x, rows, dim);
  return MP_OK;
}

/* keep_copy: x [rows, dim] is read by several dense layers before it changes; in a model with fp8
 * GEMMs its E4M3 copy is made once, into x8k, and serves every fp8 GEMM on exactly that input until
 * the next keep_copy or begin (x NULL: none kept) */
static mp_status cuda_keep_copy(void *p, const void *x, int64_t rows, int64_t dim) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_KEEP, r.u.binary.y = x, r.u.binary.n = rows * dim, r.u.binary.dim = dim;
    return gr_submit(c, &r);
  }
  c->kp_ptr = NULL;
  if (!x || rows <= 0 || dim <= 0 || !c->n_f8w || !c->f8_fuse || c->dt == MP_F32 || dim % 8 || !aligned16(x))
    return MP_OK;
  const size_t qbytes = ((size_t)(rows * dim) + 255) / 256 * 256;
  MP_TRY(grow(c, &c->x8k, &c->x8k_cap, qbytes + (size_t)rows * 4, "allocating the FP8 activations"));
  unsigned char *q = (unsigned char *)c->x8k;
  quant_rows(c, (void *)x, NULL, rows, dim, -1, q, (float *)(q + qbytes));
  LAUNCHED("quantize (fp8), kept");
  c->kp_ptr = x, c->kp_rows = rows, c->kp_cols = dim;
  return MP_OK;
}
template <typename T>
static void launch_mean(cuda_ctx *c, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                        void *out) {
  k_mean_rows<T><<<(unsigned)batch, row_threads(dim), 0, c->stream>>>((const T *)x, seq, dim, mask, (T *)out);
}
static mp_status cuda_mean_rows(void *p, const void *x, int64_t batch, int64_t seq, int64_t dim, const int32_t *mask,
                                void *out) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (batch <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_MEAN, r.u.pool.x = x, r.u.pool.batch = batch, r.u.pool.seq = seq, r.u.pool.dim = dim;
    r.u.pool.mask = mask, r.u.pool.out = out;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_mean, (c, x, batch, seq, dim, mask, out));
  LAUNCHED("mean pooling");
  return MP_OK;
}

template <typename T> static void launch_zero(cuda_ctx *c, void *x, int64_t rows, int64_t dim, const uint8_t *keep) {
  k_zero_rows<T><<<(unsigned)rows, row_threads(dim), 0, c->stream>>>((T *)x, dim, keep);
}
static mp_status cuda_zero_rows(void *p, void *x, int64_t rows, int64_t dim, const uint8_t *keep) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (rows <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_ZERO, r.u.zero.x = x, r.u.zero.rows = rows, r.u.zero.dim = dim, r.u.zero.keep = keep;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_zero, (c, x, rows, dim, keep));
  LAUNCHED("zero rows");
  return MP_OK;
}

template <typename T> static void launch_to_f32(cuda_ctx *c, const void *x, float *out, int64_t n) {
  k_to_f32<T><<<blocks(n, 256), 256, 0, c->stream>>>((const T *)x, out, n);
}
static mp_status cuda_download(void *p, const void *x, size_t n, float *host) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (!n) return MP_OK;
  const void *src = x;
  if (c->dt != MP_F32) {
    float *d = (float *)cuda_alloc_bytes(c, n * 4);
    if (!d) return MP_ERR_NOMEM;
    if (gr_recording(c)) {
      op_rec r;
      memset(&r, 0, sizeof r);
      r.kind = OP_TOF32, r.u.tof32.x = x, r.u.tof32.out = d, r.u.tof32.n = (int64_t)n;
      MP_TRY(gr_submit(c, &r));
    } else {
      DISPATCH(c, launch_to_f32, (c, x, d, (int64_t)n));
      LAUNCHED("conversion");
    }
    src = d;
  }
  if (c->gmode != GR_OFF) MP_TRY(gr_flush(c)); /* the pass so far runs (as a graph where it can) */
  CU(cudaMemcpyAsync(host, src, n * 4, cudaMemcpyDeviceToHost, c->stream), "copying results");
  prof_mark(c, "copy to host", 0, 0);
  CU(cudaStreamSynchronize(c->stream), "running the forward pass");
  return MP_OK;
}

static size_t cuda_peak_bytes(void *p) { return ((cuda_ctx *)p)->peak_bytes; }

template <typename T>
static void launch_affine(cuda_ctx *c, const void *x, const void *res, int64_t n, int64_t dim, const void *g,
                          const void *b, void *out) {
  k_affine<T><<<blocks(n, 256), 256, 0, c->stream>>>((const T *)x, (const T *)res, n, dim, (const float *)g,
                                                     (const float *)b, (T *)out);
}
static mp_status cuda_affine(void *p, const void *x, const void *res, int64_t rows, int64_t dim, const void *g,
                             const void *b, void *out) {
  cuda_ctx *c = (cuda_ctx *)p;
  if (rows <= 0 || dim <= 0) return MP_OK;
  if (gr_recording(c)) {
    op_rec r;
    memset(&r, 0, sizeof r);
    r.kind = OP_AFFINE, r.u.ln.x = x, r.u.ln.res = res, r.u.ln.g = g, r.u.ln.b = b, r.u.ln.rows = rows;
    r.u.ln.dim = dim, r.u.ln.out = out;
    return gr_submit(c, &r);
  }
  DISPATCH(c, launch_affine, (c, x, res, rows * dim, dim, g, b, out));
  LAUNCHED("NoNorm");
  return MP_OK;
}

/* ------------------------------------------------------------------ CUDA graphs: replay */

/* one recorded op, launched now (on the stream, or into the graph being captured) */
static mp_status gr_exec(cuda_ctx *c, const op_rec *r) {
  const int was = c->direct;
  mp_status st = MP_OK;
  c->direct = 1;
  switch (r->kind) {
  case OP_H2D: {
    cudaError_t e = cudaMemcpyAsync(r->u.h2d.d, r->u.h2d.src, r->u.h2d.bytes, cudaMemcpyHostToDevice, c->stream);
    if (e) st = cuda_fail(e, "copying inputs to the device");
    break;
  }
  case OP_DENSE: {
    const auto &a = r->u.dense;
    st = cuda_dense(c, a.x, a.rows, a.w, a.out, a.in, a.bias, (mp_act)a.act, a.y);
    break;
  }
  case OP_LN:
    st = cuda_layernorm(c, r->u.ln.x, r->u.ln.res, r->u.ln.rows, r->u.ln.dim, r->u.ln.g, r->u.ln.b, r->u.ln.eps,
                        r->u.ln.out);
    break;
  case OP_AFFINE:
    st = cuda_affine(c, r->u.ln.x, r->u.ln.res, r->u.ln.rows, r->u.ln.dim, r->u.ln.g, r->u.ln.b, r->u.ln.out);
    break;
  case OP_EMBED: {
    const auto &a = r->u.embed;
    st = cuda_embed_sum_ln(c, a.a.n, a.a.tables, a.a.ids, a.rows, a.dim, a.scale0, a.g, a.b, a.eps, a.out);
    break;
  }
  case OP_ATT: st = cuda_attention(c, &r->u.att); break;
  case OP_GATHER: {
    const auto &a = r->u.gather;
    st = cuda_gather_rows(c, a.x, a.n, a.stride, a.dim, a.out);
    break;
  }
  case OP_GIDX: {
    const auto &a = r->u.gather;
    st = cuda_gather_idx(c, a.x, a.n, a.idx, a.dim, a.out);
    break;
  }
  case OP_POOL: {
    const auto &a = r->u.pool;
    DISPATCH(c, launch_pool, (c, a.x, a.batch, a.seq, a.dim, a.mask, a.pooling, a.normalize, (float *)a.out));
    cudaError_t e = cudaGetLastError();
    if (e) st = cuda_fail(e, "pooling");
    break;
  }
  case OP_MEAN: {
    const auto &a = r->u.pool;
    st = cuda_mean_rows(c, a.x, a.batch, a.seq, a.dim, a.mask, a.out);
    break;
  }
  case OP_ZERO: st = cuda_zero_rows(c, r->u.zero.x, r->u.zero.rows, r->u.zero.dim, r->u.zero.keep); break;
  case OP_TOF32: {
    DISPATCH(c, launch_to_f32, (c, r->u.tof32.x, r->u.tof32.out, r->u.tof32.n));
    cudaError_t e = cudaGetLastError();
    if (e) st = cuda_fail(e, "conversion");
    break;
  }
  case OP_ROPE: {
    const auto &a = r->u.rope;
    st = cuda_rope_split(c, a.qkv, a.rows, a.seq, a.hidden, a.d, a.cs, a.q, a.k, a.v);
    break;
  }
  case OP_BINARY: st = cuda_binary(c, r->u.binary.x, r->u.binary.y, r->u.binary.n, r->u.binary.op); break;
  case OP_MUL_ROWS:
    st = cuda_mul_rows(c, r->u.binary.x, r->u.binary.y, r->u.binary.n / r->u.binary.dim, r->u.binary.dim);
    break;
  case OP_KEEP:
    st = cuda_keep_copy(c, r->u.binary.y, r->u.binary.dim ? r->u.binary.n / r->u.binary.dim : 0, r->u.binary.dim);
    break;
  default: st = mp_err(MP_ERR_INTERNAL, "CUDA graphs: unknown op %d", r->kind);
  }
  c->direct = was;
  return st;
}

/* the deferred ops of this pass run as plain launches; the pass goes on recording (GR_LOG) */
static mp_status gr_undefer(cuda_ctx *c) {
  c->gmode = GR_LOG, c->live = 0;
  for (int i = 0; i < c->log_n; i++) {
    mp_status st = gr_exec(c, &c->log[i]);
    if (st) {
      c->gmode = GR_OFF;
      return st;
    }
  }
  return MP_OK;
}

static mp_status gr_submit(cuda_ctx *c, const op_rec *r) {
  if (c->log_n == c->log_cap) {
    int cap = c->log_cap ? 2 * c->log_cap : 256;
    op_rec *nl = (op_rec *)realloc(c->log, (size_t)cap * sizeof *nl);
    if (!nl) { /* no room to record: plain launches for the rest of the pass */
      mp_status st = c->gmode == GR_DEFER ? gr_undefer(c) : MP_OK;
      c->gmode = GR_OFF;
      return st ? st : gr_exec(c, r);
    }
    c->log = nl, c->log_cap = cap;
  }
  const int i = c->log_n++;
  c->log[i] = *r;
  if (c->gmode == GR_DEFER) {
    for (int s = 0; s < N_GRAPHS; s++)
      if ((c->live >> s & 1) && (c->gslots[s].n <= i || memcmp(&c->gslots[s].ops[i], r, sizeof *r)))
        c->live &= ~(1u << s);
    return c->live ? MP_OK : gr_undefer(c);
  }
  const mp_status st = gr_exec(c, r);
  if (st) c->gclean = 0;
  return st;
}

/* this pass's log into a free or the least recently used slot (its graph comes at the next match) */
static void gr_store(cuda_ctx *c) {
  int s = 0;
  for (int i = 0; i < N_GRAPHS; i++) {
    if (!c->gslots[i].n) {
      s = i;
      break;
    }
    if (c->gslots[i].used < c->gslots[s].used) s = i;
  }
  graph_slot *g = &c->gslots[s];
  if (g->cap < c->log_n) {
    op_rec *no = (op_rec *)realloc(g->ops, (size_t)c->log_n * sizeof *no);
    if (!no) return;
    g->ops = no, g->cap = c->log_n;
  }
  if (g->exec) cudaGraphExecDestroy(g->exec);
  memcpy(g->ops, c->log, (size_t)c->log_n * sizeof *c->log);
  g->n = c->log_n, g->exec = NULL, g->failed = 0, g->used = ++c->gtick;
}

/* slot s's sequence (= this pass's log) on the stream: its graph, captured from the log the first
 * time; plain launches if capture or launch fails */
static mp_status gr_run(cuda_ctx *c, int s) {
  graph_slot *g = &c->gslots[s];
  g->used = ++c->gtick;
  if (!g->exec && !g->failed) {
    cudaGraph_t graph = NULL;
    mp_status st = MP_OK;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (!e) {
      c->capturing = 1;
      for (int i = 0; i < c->log_n && !st; i++)
        st = gr_exec(c, &c->log[i]);
      c->capturing = 0;
      e = cudaStreamEndCapture(c->stream, &graph);
    }
    if (!e && !st && graph) e = cudaGraphInstantiate(&g->exec, graph, 0);
    if (!e && !st && g->exec) c->g_captured++;
    if (graph) cudaGraphDestroy(graph);
    if (e || st || !g->exec) {
      cudaGetLastError();
      mp_err_clear();
      if (g->exec) cudaGraphExecDestroy(g->exec);
      g->exec = NULL, g->failed = 1;
    }
  }
  if (g->exec) {
    cudaError_t e = cudaGraphLaunch(g->exec, c->stream);
    if (!e) {
      c->g_replayed++;
      return MP_OK;
    }
    cudaGetLastError();
    cudaGraphExecDestroy(g->exec);
    g->exec = NULL, g->failed = 1;
  }
  c->g_plain++;
  for (int i = 0; i < c->log_n; i++)
    MP_TRY(gr_exec(c, &c->log[i]));
  return MP_OK;
}

/* at the pass's first download: the deferred ops run (one graph where a slot matched all of them),
 * or a clean logged pass is kept; the rest of the pass runs as plain launches */
static mp_status gr_flush(cuda_ctx *c) {
  mp_status st = MP_OK;
  if (c->gmode == GR_DEFER) {
    for (int s = 0; s < N_GRAPHS; s++)
      if ((c->live >> s & 1) && c->gslots[s].n == c->log_n) {
        c->gmode = GR_OFF;
        return gr_run(c, s);
      }
    st = gr_undefer(c);
  }
  if (c->gmode == GR_LOG && !st && c->gclean && c->log_n > 0) gr_store(c);
  c->g_plain++;
  c->gmode = GR_OFF;
  return st;
}

static const mp_device_ops cuda_ops = {
    "cuda",          cuda_close,        cuda_describe,       cuda_begin,      cuda_alloc,
    cuda_upload_act, cuda_upload_param, cuda_dense,          cuda_layernorm,  cuda_embed_sum_ln,
    cuda_attention,  cuda_gather_rows,  cuda_pool,           cuda_gather_idx, cuda_zero_rows,
    cuda_download,   cuda_rope_split,   cuda_binary,         cuda_mean_rows,  cuda_peak_bytes,
    cuda_affine,     cuda_qweight_ok,   cuda_upload_qweight, cuda_fast8_ok,   cuda_upload_fast8,
    cuda_mul_rows,   cuda_keep_copy,    cuda_fast_act,
};

extern "C" const mp_device_ops *mp_cuda_ops(void) { return &cuda_ops; }
