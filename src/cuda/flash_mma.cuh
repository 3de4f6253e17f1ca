/* The tensor-core attention kernel of the CUDA backend, the default (included by cuda_backend.cu
 * after flash_attention.cuh, whose flash_rel it shares; docs/cuda.md; MP_CUDA_ATTENTION=wmma
 * selects the older WMMA kernel, and the GPU suite compares both with the reference kernel): flash
 * attention on fp16 / bf16 activations written on the mma.sync m16n8k16 instruction with float
 * accumulation, the scores and the output kept in registers (the flash-attention-2 layout). One
 * block = 4 warps = 64 queries of one (sequence, head); each warp owns 16 queries. Keys go by in
 * tiles of 64, double-buffered in shared memory by cp.async (the next tile loads while this one is
 * computed). Per tile each warp computes its 16 x 64 scores S = Q Kᵀ, adds the score terms in float
 * (scale, DeBERTa's c2p / p2c from precomputed tables, MPNet's relative bias), applies the key
 * padding mask, causal mask and local window exactly, keeps an online softmax per row (running max
 * and sum, base-2 exponentials), and accumulates O += P V with P taken straight from the score
 * registers. No [T, T] score buffer exists. Key tiles that the causal mask or the window rule out
 * entirely are skipped. A query with no reachable key gets zeros, as the reference kernel gives. */
#ifndef MP_CUDA_FLASH_MMA_CUH
#define MP_CUDA_FLASH_MMA_CUH

/* shared memory: Q [64][DP], then two buffers of K [64][DP] and V [64][DP] (16-bit elements), then
 * two buffers of the plain kernel's key terms [64] (f32). Rows are padded by 8 elements so that the
 * 8 row addresses of an ldmatrix fall in distinct banks. */
template <int D> struct mma_shape {
  static constexpr int DP = D + 8;
  static constexpr size_t tile = (size_t)FA_K * DP, kb_off = (size_t)5 * FA_K * DP * 2,
                          bytes = kb_off + (size_t)2 * FA_K * 4;
};

/* one m16n8k16 tensor-core product, c += a b (a: 4 registers of 2 x 16 bits, b: 2, c: 4 floats) */
template <typename T> __device__ __forceinline__ void fa_mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void fa_mma<__half>(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void fa_mma<__nv_bfloat16>(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* two floats as one register of two 16-bit values, the first in the low half */
template <typename T> __device__ __forceinline__ uint32_t fa_pack(float x, float y);
template <> __device__ __forceinline__ uint32_t fa_pack<__half>(float x, float y) {
  __half2 v = __floats2half2_rn(x, y);
  return *(uint32_t *)&v;
}
template <> __device__ __forceinline__ uint32_t fa_pack<__nv_bfloat16>(float x, float y) {
  __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
  return *(uint32_t *)&v;
}

/* four 8x8 matrices of 16-bit values from shared memory; lane l gives the address of row l % 8 of
 * matrix l / 8. Plain: register k holds row lane / 4, columns 2 (lane % 4) + {0, 1} of matrix k.
 * Transposed: rows 2 (lane % 4) + {0, 1}, column lane / 4. */
__device__ __forceinline__ void fa_ldsm(uint32_t *r, const void *p) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void fa_ldsm_t(uint32_t *r, const void *p) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

/* rows [r0, r0 + 64) of one head (D values at column h * D, row stride ld) into shared memory with
 * stride DP by asynchronous 16-byte copies, zeros past `rows` (the launcher checks the alignment) */
template <typename T, int D>
__device__ __forceinline__ void fa_load(T *dst, const T *src, int64_t ld, int64_t r0, int64_t rows) {
  constexpr int V = 8, PER_ROW = D / V;
#pragma unroll
  for (int e = threadIdx.x; e < FA_K * PER_ROW; e += FA_THREADS) {
    const int r = e / PER_ROW, c = (e % PER_ROW) * V;
    const bool in = r0 + r < rows;
    const T *s = src + (in ? r0 + r : 0) * ld + c; /* a valid address even when nothing is read */
    const uint32_t d = (uint32_t)__cvta_generic_to_shared(dst + r * mma_shape<D>::DP + c);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(s), "r"(in ? 16 : 0));
  }
}
/* 2^x on the special-function unit (2^-inf = 0) */
__device__ __forceinline__ float fa_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ void fa_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void fa_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* The plain kernel's key terms of the tile at key j0 (0 for a real key, -inf for padding or past
 * seq_k), one per thread of the first FA_K; read after the barrier that follows the tile's copies. */
__device__ __forceinline__ void fa_key_terms(float *kb, const uint8_t *km, int64_t j0, int64_t seq_k) {
  if (threadIdx.x < FA_K) {
    const int64_t j = j0 + threadIdx.x;
    kb[threadIdx.x] = j < seq_k && (!km || km[j]) ? 0.0f : -INFINITY;
  }
}

/* The kernel's body; the kernels below differ only in their register budget. PLAIN: no causal
 * mask, window or relative terms (the launcher checks), so a score is one multiply-add with its
 * key's term (fa_key_terms) instead of the general per-score rules. */
template <typename T, int D, bool PLAIN>
__device__ __forceinline__ void flash_mma_body(const mp_dev_attention &a, const flash_rel &rel) {
  typedef mma_shape<D> S;
  constexpr int DP = S::DP, NT = FA_K / 8, ND = D / 8;
  constexpr float LOG2E = 1.4426950408889634f;
  extern __shared__ __align__(128) unsigned char fsm[];
  T *qs = (T *)fsm, *kvs = qs + S::tile;   /* kvs: buffer k at kvs + 2k * tile (K), + (2k + 1) * tile (V) */
  float *kbs = (float *)(fsm + S::kb_off); /* PLAIN: buffer k's key terms at kbs + k * FA_K */
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = (int64_t)blockIdx.x * FA_Q;
  const int64_t H = a.heads;
  const flash_head<T, D> hd(a, b, h);

  int64_t j_lo, j_hi;
  flash_key_range(a, i0, &j_lo, &j_hi);

  fa_load<T, D>(qs, hd.q, hd.ldq, i0, a.seq_q);
  if (j_lo < j_hi) {
    fa_load<T, D>(kvs, hd.k, hd.ldk, j_lo, a.seq_k);
    fa_load<T, D>(kvs + S::tile, hd.v, hd.ldv, j_lo, a.seq_k);
    if constexpr (PLAIN) fa_key_terms(kbs, hd.km, j_lo, a.seq_k);
  }
  fa_commit();
  fa_wait<0>();
  __syncthreads();

  /* this warp's 16 queries as A fragments, one per 16 columns of D */
  uint32_t qf[D / 16][4];
  {
    const T *qw = qs + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * DP + (lane >> 4) * 8;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
      fa_ldsm(qf[kk], qw + kk * 16);
  }
  /* this thread's two rows: g and g + 8 of the warp's 16 */
  const int64_t row[2] = {i0 + warp * 16 + g, i0 + warp * 16 + g + 8};
  const bool rok[2] = {row[0] < a.seq_q, row[1] < a.seq_q};
  const int has_rel = rel.c2p || rel.p2c || a.bias_tab;
  const float sl = a.scale * LOG2E;
  float o[ND][4];
#pragma unroll
  for (int d = 0; d < ND; d++)
    o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  int buf = 0;
  for (int64_t j0 = j_lo; j0 < j_hi; j0 += FA_K, buf ^= 1) {
    /* the next tile loads into the other buffer while this one is computed */
    if (j0 + FA_K < j_hi) {
      fa_load<T, D>(kvs + 2 * (buf ^ 1) * S::tile, hd.k, hd.ldk, j0 + FA_K, a.seq_k);
      fa_load<T, D>(kvs + (2 * (buf ^ 1) + 1) * S::tile, hd.v, hd.ldv, j0 + FA_K, a.seq_k);
      if constexpr (PLAIN) fa_key_terms(kbs + (buf ^ 1) * FA_K, hd.km, j0 + FA_K, a.seq_k);
    }
    fa_commit();
    fa_wait<1>();
    __syncthreads();
    const T *ks = kvs + 2 * buf * S::tile, *vs = ks + S::tile;

    /* S[16, 64] = Q Kᵀ: n-tile nt holds keys nt * 8 + 2 tq + {0, 1} of rows g (s[nt][0..1]) and
     * g + 8 (s[nt][2..3]) */
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      const T *kr = ks + (nt * 8 + (lane & 7)) * DP + (lane >> 3) * 8;
#pragma unroll
      for (int k2 = 0; k2 < D / 32; k2++) {
        uint32_t kb[4];
        fa_ldsm(kb, kr + k2 * 32);
        fa_mma<T>(s[nt], qf[2 * k2], kb[0], kb[1]);
        fa_mma<T>(s[nt], qf[2 * k2 + 1], kb[2], kb[3]);
      }
    }
    /* scores in base-2 units, masked to -inf */
    float mx[2] = {-INFINITY, -INFINITY};
    if constexpr (PLAIN) {
      const float *kb = kbs + buf * FA_K + 2 * tq;
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        const float2 t = *(const float2 *)(kb + nt * 8);
        s[nt][0] = fmaf(s[nt][0], sl, t.x), s[nt][1] = fmaf(s[nt][1], sl, t.y);
        s[nt][2] = fmaf(s[nt][2], sl, t.x), s[nt][3] = fmaf(s[nt][3], sl, t.y);
        mx[0] = fmaxf(mx[0], fmaxf(s[nt][0], s[nt][1]));
        mx[1] = fmaxf(mx[1], fmaxf(s[nt][2], s[nt][3]));
      }
    } else {
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int rr = e >> 1;
          const int64_t i = row[rr], j = j0 + nt * 8 + 2 * tq + (e & 1);
          bool ok = j < a.seq_k && (!hd.km || hd.km[j]);
          if (a.causal) ok = ok && j <= i;
          if (a.window > 0) ok = ok && i - j <= a.window && j - i <= a.window;
          float v = -INFINITY;
          if (ok) {
            v = s[nt][e] * sl;
            if (has_rel && rok[rr]) {
              const int64_t dd = i - j + a.seq_k - 1;
              float t = 0.0f;
              if (rel.c2p) t += rel.c2p[((h * a.batch + b) * a.seq_q + i) * rel.n_pos + (a.cix[dd] - rel.lo)];
              if (rel.p2c) t += rel.p2c[((h * a.batch + b) * a.seq_k + j) * rel.n_pos + (a.pix[dd] - rel.lo)];
              v += t * sl;
              if (a.bias_tab) v += a.bias_tab[(int64_t)a.bidx[dd] * H + h] * LOG2E;
            }
          }
          s[nt][e] = v;
          mx[rr] = fmaxf(mx[rr], v);
        }
      }
    }
    /* the online softmax: the four lanes of a quad share a row */
    float corr[2], mb[2];
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 1));
      mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 2));
      const float m_new = fmaxf(m[rr], mx[rr]);
      corr[rr] = m_new == -INFINITY ? 1.0f : fa_exp2(m[rr] - m_new); /* m = -inf: 0 */
      m[rr] = m_new;
      mb[rr] = m_new == -INFINITY ? 0.0f : m_new; /* no key yet: every score is -inf, and exp2(-inf) = 0 */
      l[rr] *= corr[rr];
    }
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int rr = e >> 1;
        const float p = fa_exp2(s[nt][e] - mb[rr]); /* masked: exp2(-inf) = 0 */
        s[nt][e] = p;
        l[rr] += p;
      }
    }
#pragma unroll
    for (int d = 0; d < ND; d++) {
      o[d][0] *= corr[0], o[d][1] *= corr[0];
      o[d][2] *= corr[1], o[d][3] *= corr[1];
    }
    /* O += P V, 16 keys at a time: P's A fragment is two score n-tiles; V's B fragments come
     * transposed out of shared memory, two d-tiles per ldmatrix */
#pragma unroll
    for (int kk = 0; kk < FA_K / 16; kk++) {
      uint32_t pa[4];
      pa[0] = fa_pack<T>(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = fa_pack<T>(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = fa_pack<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = fa_pack<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      const T *vr = vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * DP + (lane >> 4) * 8;
#pragma unroll
      for (int d2 = 0; d2 < D / 16; d2++) {
        uint32_t vb[4];
        fa_ldsm_t(vb, vr + d2 * 16);
        fa_mma<T>(o[2 * d2], pa, vb[0], vb[1]);
        fa_mma<T>(o[2 * d2 + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads(); /* this buffer is refilled by the next iteration's prefetch */
  }
  fa_wait<0>(); /* no copy may still target shared memory when the block exits */

  /* out = O / l; l is summed over the quad */
  T *O = hd.o;
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    float lt = l[rr];
    lt += __shfl_xor_sync(0xffffffffu, lt, 1);
    lt += __shfl_xor_sync(0xffffffffu, lt, 2);
    if (!rok[rr]) continue;
    const float inv = lt > 0 ? 1.0f / lt : 0.0f;
    T *orow = O + row[rr] * hd.ldo + 2 * tq;
#pragma unroll
    for (int d = 0; d < ND; d++)
      *(uint32_t *)(orow + d * 8) = fa_pack<T>(o[d][2 * rr] * inv, o[d][2 * rr + 1] * inv);
  }
}

/* The compiler's own register choice (132 for D = 64: 3 blocks of 4 warps per SM;
 * MP_CUDA_FLASH_BLOCKS=1), and the default for head_dim <= 64: at most 128 registers, 4 blocks per
 * SM (a few bytes spill to the stack), used for head_dim 64 (for 32 the first already fits 4) */
template <typename T, int D, bool PLAIN>
__global__ void __launch_bounds__(FA_THREADS) k_flash_mma(mp_dev_attention a, flash_rel rel) {
  flash_mma_body<T, D, PLAIN>(a, rel);
}
template <typename T, int D, bool PLAIN>
__global__ void __launch_bounds__(FA_THREADS, 4) k_flash_mma4(mp_dev_attention a, flash_rel rel) {
  flash_mma_body<T, D, PLAIN>(a, rel);
}

#endif
