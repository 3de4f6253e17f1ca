/* The GPU's fast compute mode for MLX affine weights (included by cuda_backend.cu; docs/cuda.md,
 * "The fast mode: FP8 tensor cores"). What --compute fast means on a CUDA device, as the integer
 * kernels are what it means on the CPU: a second rounding of the numbers for speed, measured
 * against the faithful (MLX) mode by eval's agreement figures.
 *
 *  - Weights: the matrix as mx.dequantize gives it (f32 rows from the host), requantized per output
 *    channel to FP8 E4M3 with a float scale s_o = max|w_o| / 448 (448 is E4M3's largest finite
 *    value), rounded to nearest even with saturation. One byte per weight on the device.
 *  - Activations, per call: each row of x is quantized the same way with its own scale (k_quant_rows_f8:
 *    one block per row, the row's largest magnitude found, then the row converted, as x · (1 / s)).
 *    The LayerNorm kernels write that copy themselves, beside their own output, when the model has
 *    fp8 GEMMs (cuda_backend.cu, ln_warp_row); so do ModernBERT's GeGLU product (cuda_mul_rows:
 *    k_quant_rows_f8 given y) and, with MP_CUDA_FAST8_RAW=1 MP_CUDA_FAST_GELU=erf, the erf GELU
 *    after an fp8 GEMM (k_quant_rows_f8 given the activation). The next fp8 GEMM takes it when it
 *    reads exactly that output with nothing queued in between: the same codes, one pass over the
 *    activations fewer. BART's encoder output is quantized once (cuda_keep_copy) into a copy that
 *    serves every decoder layer's cross-attention keys / values until the pass ends. Layers whose
 *    input no such kernel wrote
 *    (mp_dense.raw_input) stay on fp16 / bf16 weights unless MP_CUDA_FAST8_RAW=1.
 *  - The product runs on cuBLASLt's FP8 GEMM (Hopper's FP8 tensor cores, fp32 accumulation) with
 *    the two scale vectors applied in its epilogue (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F: output
 *    (r, o) times s_x[r] · s_w[o]), then the bias and ReLU / GELU there too, output in the compute
 *    dtype. cuBLASLt's GELU is the tanh form; in the fast mode the model asks for the erf GELU in
 *    that form (cuda_fast_act, |difference| < 4.8e-4) unless MP_CUDA_FAST_GELU=erf, which runs it
 *    exactly after the GEMM.
 *
 * E4M3 keeps 3 mantissa bits: each value down to 2^-6 · s (the smallest normal) is within 2^-4 of
 * itself relative (half a unit in the last place), smaller ones within 2^-10 · s absolute
 * (subnormals), and values below 2^-10 · s (about 2^-19 of the row's largest) become 0. */
#ifndef MP_CUDA_FP8GEMM_CUH
#define MP_CUDA_FP8GEMM_CUH
#include <cuda_fp8.h>

#define F8_MAX 448.0f       /* E4M3's largest finite value */
#define F8_THREADS 128      /* threads per row of k_quant_rows_f8 */
#define F8_ALIGN 16         /* rows and outputs: multiples of this many values (cuBLASLt's FP8 operand alignment) */
#define F8_ALGO_KEY 0x10000 /* marks an FP8 GEMM in the cuBLASLt algorithm cache's key */

/* host and device: one float to E4M3, round to nearest even, saturating to ±448 (NaN stays NaN) */
static __host__ __device__ __forceinline__ unsigned char f8_encode(float v) {
  return (unsigned char)__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
}

/* the E4M3 scale of a row from each thread's largest magnitude (block of F8_THREADS threads, red:
 * shared scratch): s = max / 448, 1 for a row of zeros or a non-finite maximum */
__device__ __forceinline__ float f8_block_scale(float amax, float *red) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x / 32] = amax;
  __syncthreads();
  amax = red[0];
#pragma unroll
  for (int w = 1; w < F8_THREADS / 32; w++)
    amax = fmaxf(amax, red[w]);
  return amax > 0.0f && amax < INFINITY ? amax / F8_MAX : 1.0f;
}

/* 8 values (one 16-byte vector of T) times inv, as 8 E4M3 codes */
template <typename T> __device__ __forceinline__ uint2 f8_pack8(const T *v, float inv) {
  unsigned int lo = 0, hi = 0;
#pragma unroll
  for (int j = 0; j < 4; j++) {
    lo |= (unsigned int)f8_encode(elem<T>::load(v[j]) * inv) << (8 * j);
    hi |= (unsigned int)f8_encode(elem<T>::load(v[j + 4]) * inv) << (8 * j);
  }
  return make_uint2(lo, hi);
}

/* One row per block (F8_THREADS threads), rows of n values, n a multiple of 8 and rows 16-byte
 * aligned (T: __half or __nv_bfloat16). With act < 0 and no y: q[r] = E4M3(x[r] · (1 / s[r])),
 * s[r] = max|x[r]| / 448, x read only. With act >= 0: x[r] = act(x[r]) first, in place; with y:
 * x[r] = x[r] · y[r] (after the activation, if any), in place; and the codes are those of the
 * stored (rounded) values, exactly what the plain form would make of them afterwards: an fp8
 * GEMM's erf GELU, or ModernBERT's GeGLU product, and the next fp8 GEMM's input in one pass. */
template <typename T>
__global__ void __launch_bounds__(F8_THREADS)
    k_quant_rows_f8(T *x, const T *y, int64_t n, int act, unsigned char *q, float *s) {
  __shared__ float red[F8_THREADS / 32];
  const int64_t r = blockIdx.x;
  T *xr = x + r * n;
  const T *yr = y ? y + r * n : nullptr;
  float amax = 0.0f;
  for (int64_t i = (int64_t)threadIdx.x * 8; i < n; i += F8_THREADS * 8) {
    uint4 u = *(const uint4 *)(xr + i);
    T *v = (T *)&u;
    uint4 w = yr ? *(const uint4 *)(yr + i) : make_uint4(0, 0, 0, 0);
    const T *m = (const T *)&w;
#pragma unroll
    for (int j = 0; j < 8; j++) {
      if (act >= 0) v[j] = elem<T>::store(act_f(elem<T>::load(v[j]), act));
      if (yr) v[j] = elem<T>::store(elem<T>::load(v[j]) * elem<T>::load(m[j]));
      amax = fmaxf(amax, fabsf(elem<T>::load(v[j])));
    }
    if (act >= 0 || yr) *(uint4 *)(xr + i) = u;
  }
  const float sc = f8_block_scale(amax, red), inv = 1.0f / sc;
  if (threadIdx.x == 0) s[r] = sc;
  unsigned char *qr = q + r * n;
  /* each thread reads back only the vectors it wrote itself */
  for (int64_t i = (int64_t)threadIdx.x * 8; i < n; i += F8_THREADS * 8) {
    const uint4 u = *(const uint4 *)(xr + i);
    *(uint2 *)(qr + i) = f8_pack8((const T *)&u, inv);
  }
}

#endif
