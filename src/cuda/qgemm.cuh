/* MLX affine-quantized weights kept quantized on the CUDA device (included by cuda_backend.cu;
 * docs/cuda.md, "Quantized weights on the device"). An opt-in (MP_CUDA_QGEMM=1) for memory: by
 * default the backend dequantizes them to the compute dtype at upload, which is faster on an H100
 * at every batch measured. Kept quantized, a matrix is stored as its codes widened to one
 * byte each (2- to 8-bit codes alike) in the order the mma.sync m16n8k16 instruction reads its B
 * operand, and one (scale, bias) pair per output and group, as __half2 when every value is exactly
 * a float16 (the usual case: MLX stores them in the model's float dtype), else as float2.
 *
 * y = act(x · Wᵀ + bias) then runs in one of two ways:
 *  - few rows (up to MP_CUDA_QGEMM_ROWS, default 256): k_qgemm, the dequantize-in-GEMM kernel.
 *    Each lane loads 16 codes of one output per 16-byte load, turns them into w = fl(fl(s·q) + b)
 *    in float (mx.dequantize's exact rounding), rounds to the compute dtype (what the default
 *    upload stores) and feeds them to the tensor cores beside activations read from shared memory
 *    by ldmatrix; float accumulation. The weights are therefore the same values the dense path
 *    multiplies, read at half (8-bit) the bytes.
 *  - many rows (compute-bound): k_qdequant writes the matrix in the compute dtype into a scratch
 *    buffer of the context and the float GEMM (cuBLASLt) runs on it; the dequantization reads 1
 *    byte and writes 2 per weight, small beside the product at those sizes.
 *
 * Code layout: outputs in tiles of 8 (nt), inputs in chunks of 64 (kc); chunk (nt, kc) is 512
 * bytes: lane l = 4 g + t holds the 16 codes of output 8 nt + g, its byte 4 s + r being input
 * 64 kc + 16 s + 2 t + (r & 1) + 8 (r >> 1), i.e. the two B registers of the k16 step s. Outputs
 * are padded to a multiple of 64 with zero codes and zero scales. Inputs must be a multiple of 64.
 *
 * k_qgemm: a block is 4 warps of 16 outputs (2 n-tiles) each on 16·MT rows. Its chunks of the
 * inputs (a slice of them when the grid splits K) go by one at a time: the activation chunk is
 * double-buffered in shared memory (cp.async, shared by the 4 warps), each lane's codes and scales
 * of the next chunk are loaded into registers while this one is computed. With the inputs split
 * over several blocks (to keep every SM busy on the small output counts of batch-1 layers), each
 * block writes float partial sums and k_qreduce adds them in a fixed order: results do not depend
 * on timing. */
#ifndef MP_CUDA_QGEMM_CUH
#define MP_CUDA_QGEMM_CUH

#define QG_KC 64       /* inputs per chunk */
#define QG_BN 64       /* outputs per block: 4 warps of 2 n-tiles */
#define QG_WARPS 4     /* warps per block */
#define QG_AP (64 + 8) /* shared row stride of an activation chunk (16-bit values): ldmatrix rows in distinct banks */

/* host: the byte of the packed codes that holds code (n, k) of a matrix with kchunks chunks */
static inline size_t qg_code_index(int64_t n, int64_t k, int64_t kchunks) {
  const int64_t nt = n >> 3, g = n & 7, kc = k >> 6, s = (k & 63) >> 4, w = k & 15;
  const int64_t t = (w & 7) >> 1, r = (w & 1) | ((w >> 3) << 1);
  return (size_t)((((nt * kchunks + kc) * 32 + g * 4 + t) * 16) + s * 4 + r);
}

__device__ __forceinline__ float2 qg_sb(const __half2 *p) { return __half22float2(*p); }
__device__ __forceinline__ float2 qg_sb(const float2 *p) { return *p; }

/* code byte k of word w as an exact float (the byte under 2^23's exponent, minus 2^23) */
template <int k> __device__ __forceinline__ float qg_code(uint32_t w) {
  return __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440 | k)) - 8388608.0f;
}
/* mx.dequantize's rounding: the product rounded to float, then the sum */
__device__ __forceinline__ float qg_deq(float q, float2 sb) { return __fadd_rn(__fmul_rn(sb.x, q), sb.y); }

/* the two B registers of one k16 step from 4 codes */
template <typename T> __device__ __forceinline__ void qg_b(uint32_t w, float2 sb, uint32_t &b0, uint32_t &b1) {
  b0 = fa_pack<T>(qg_deq(qg_code<0>(w), sb), qg_deq(qg_code<1>(w), sb));
  b1 = fa_pack<T>(qg_deq(qg_code<2>(w), sb), qg_deq(qg_code<3>(w), sb));
}

/* rows [m0, m0 + BM) of inputs [k0, k0 + 64) into dst (stride QG_AP) by the block's threads,
 * zeros past M; one cp.async group */
template <typename T, int BM>
__device__ __forceinline__ void qg_load_a(T *dst, const T *x, int64_t M, int64_t K, int64_t m0, int64_t k0) {
#pragma unroll
  for (int e = threadIdx.x; e < BM * 8; e += QG_WARPS * 32) {
    const int r = e >> 3, cc = (e & 7) * 8;
    const bool in = m0 + r < M;
    const T *s = x + (in ? m0 + r : 0) * K + k0 + cc;
    const uint32_t d = (uint32_t)__cvta_generic_to_shared(dst + r * QG_AP + cc);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(s), "r"(in ? 16 : 0));
  }
  asm volatile("cp.async.commit_group;\n" ::);
}

/* grid (Npad / 64, splits, ceil(M / (16 MT))): 4 warps of 16 outputs each; this block's chunks are
 * [y cps, min((y + 1) cps, K / 64)). splits == 1: y = act(sum + bias) in T; else
 * ws[split][M][N] = sum (k_qreduce finishes). */
template <typename T, typename SB, int MT>
__global__ void __launch_bounds__(QG_WARPS * 32)
    k_qgemm(const T *__restrict__ x, int64_t M, int64_t K, const uint4 *__restrict__ codes, const SB *__restrict__ sb,
            int64_t G, int group, int64_t N, int cps, const T *__restrict__ bias, int act, T *__restrict__ y,
            float *__restrict__ ws) {
  constexpr int BM = 16 * MT;
  __shared__ __align__(16) T As[2][BM * QG_AP];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t kchunks = K / QG_KC, m0 = (int64_t)blockIdx.z * BM, nt0 = (int64_t)blockIdx.x * 8 + warp * 2;
  const int64_t c0 = (int64_t)blockIdx.y * cps, c1 = min(c0 + cps, kchunks);
  const uint4 *cw0 = codes + nt0 * kchunks * 32 + lane, *cw1 = cw0 + kchunks * 32;
  const SB *s_a = sb + (nt0 * 8 + g) * G, *s_b = s_a + 8 * G; /* this lane's outputs of the two n-tiles */
  float acc[MT][2][4];
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
      for (int e = 0; e < 4; e++)
        acc[i][j][e] = 0.0f;
  qg_load_a<T, BM>(As[0], x, M, K, m0, c0 * QG_KC);
  uint4 wa = cw0[c0 * 32], wb = cw1[c0 * 32];
  int64_t gi = c0 * QG_KC / group, gj = (c0 * QG_KC + 32) / group;
  float2 sa0 = qg_sb(s_a + gi), sa1 = qg_sb(s_a + gj), sb0 = qg_sb(s_b + gi), sb1 = qg_sb(s_b + gj);
  for (int64_t c = c0, st = 0; c < c1; c++, st ^= 1) {
    uint4 na = wa, nb = wb;
    float2 na0 = sa0, na1 = sa1, nb0 = sb0, nb1 = sb1;
    if (c + 1 < c1) { /* the next chunk loads while this one is computed */
      qg_load_a<T, BM>(As[st ^ 1], x, M, K, m0, (c + 1) * QG_KC);
      na = cw0[(c + 1) * 32], nb = cw1[(c + 1) * 32];
      gi = (c + 1) * QG_KC / group, gj = ((c + 1) * QG_KC + 32) / group;
      na0 = qg_sb(s_a + gi), na1 = qg_sb(s_a + gj), nb0 = qg_sb(s_b + gi), nb1 = qg_sb(s_b + gj);
      asm volatile("cp.async.wait_group 1;\n" ::);
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();
    const T *A = As[st];
    const uint32_t wav[4] = {wa.x, wa.y, wa.z, wa.w}, wbv[4] = {wb.x, wb.y, wb.z, wb.w};
#pragma unroll
    for (int s = 0; s < 4; s++) {
      uint32_t ba0, ba1, bb0, bb1;
      qg_b<T>(wav[s], s < 2 ? sa0 : sa1, ba0, ba1);
      qg_b<T>(wbv[s], s < 2 ? sb0 : sb1, bb0, bb1);
#pragma unroll
      for (int i = 0; i < MT; i++) {
        uint32_t a[4];
        fa_ldsm(a, A + (i * 16 + (lane & 15)) * QG_AP + s * 16 + (lane >> 4) * 8);
        fa_mma<T>(acc[i][0], a, ba0, ba1);
        fa_mma<T>(acc[i][1], a, bb0, bb1);
      }
    }
    __syncthreads(); /* every warp is done with this buffer before the chunk after next lands in it */
    wa = na, wb = nb, sa0 = na0, sa1 = na1, sb0 = nb0, sb1 = nb1;
  }
#pragma unroll
  for (int j = 0; j < 2; j++) {
    const int64_t n = (nt0 + j) * 8 + 2 * t;
    if (n >= N) continue;
    float b0 = 0.0f, b1 = 0.0f;
    if (bias && gridDim.y == 1) b0 = ld(bias, n), b1 = ld(bias, n + 1);
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
      for (int h = 0; h < 2; h++) { /* rows g and g + 8 of the m-tile: accumulators 2h, 2h + 1 */
        const int64_t m = m0 + i * 16 + g + 8 * h;
        if (m >= M) continue;
        const float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
        if (gridDim.y > 1)
          *(float2 *)(ws + ((int64_t)blockIdx.y * M + m) * N + n) = make_float2(v0, v1);
        else
          *(uint32_t *)(y + m * N + n) = fa_pack<T>(act_f(v0 + b0, act), act_f(v1 + b1, act));
      }
  }
}

/* y[m][n] = act(sum over splits of ws[split][m][n], in split order, + bias[n]); one thread per pair */
template <typename T>
__global__ void k_qreduce(const float *__restrict__ ws, int splits, int64_t M, int64_t N, const T *__restrict__ bias,
                          int act, T *__restrict__ y) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, pairs = M * N / 2;
  if (i >= pairs) return;
  const int64_t e = 2 * i, n = e % N;
  float v0 = 0.0f, v1 = 0.0f;
  for (int s = 0; s < splits; s++) {
    const float2 p = *(const float2 *)(ws + (int64_t)s * M * N + e);
    v0 += p.x, v1 += p.y;
  }
  if (bias) v0 += ld(bias, n), v1 += ld(bias, n + 1);
  *(uint32_t *)(y + e) = fa_pack<T>(act_f(v0, act), act_f(v1, act));
}

/* the matrix in the compute dtype, row-major [Npad][K] (the many-rows path): one thread per 16
 * codes, i.e. per lane of a chunk */
template <typename T, typename SB>
__global__ void k_qdequant(const uint4 *__restrict__ codes, const SB *__restrict__ sb, int64_t G, int group, int64_t K,
                           int64_t n_lanes, T *__restrict__ w) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_lanes) return;
  const int64_t kchunks = K / QG_KC, lane = i & 31, chunk = i >> 5, nt = chunk / kchunks, kc = chunk % kchunks;
  const int64_t n = nt * 8 + (lane >> 2), t = lane & 3;
  const uint4 c = codes[i];
  const uint32_t wv[4] = {c.x, c.y, c.z, c.w};
  const int64_t k0 = kc * QG_KC;
  const float2 s0 = qg_sb(sb + n * G + k0 / group), s1 = qg_sb(sb + n * G + (k0 + 32) / group);
  T *row = w + n * K + k0 + 2 * t;
#pragma unroll
  for (int s = 0; s < 4; s++) {
    uint32_t b0, b1;
    qg_b<T>(wv[s], s < 2 ? s0 : s1, b0, b1);
    *(uint32_t *)(row + 16 * s) = b0;
    *(uint32_t *)(row + 16 * s + 8) = b1;
  }
}

#endif
