/* Tensor-core encoder attention for the CUDA backend (included by cuda_backend.cu; docs/cuda.md):
 * a flash-attention kernel on fp16 / bf16 activations with WMMA 16x16x16 tiles and float
 * accumulation. One block = 4 warps = 64 queries of one (sequence, head); keys go by in tiles of
 * 64 staged in shared memory. Per tile each warp computes its 16 x 64 scores S = Q Kᵀ on tensor
 * cores, adds the score terms in float (scale, DeBERTa's c2p / p2c from precomputed tables, MPNet's
 * relative bias), applies the key padding mask, causal mask and local window exactly, keeps an
 * online softmax per row (running max and sum), writes P = exp(S - max) in the compute dtype, and
 * accumulates O += P V on tensor cores into a float tile in shared memory. No [T, T] score buffer
 * exists. Key tiles that the causal mask or the window rule out entirely are skipped. A query
 * with no reachable key gets zeros, as the reference kernel gives. */
#ifndef MP_CUDA_FLASH_ATTENTION_CUH
#define MP_CUDA_FLASH_ATTENTION_CUH
#include <mma.h>

#define FA_Q 64 /* queries per block: 4 warps x 16 rows */
#define FA_K 64 /* keys per tile */
#define FA_THREADS 128

/* Precomputed DeBERTa score terms: c2p[(h * batch * seq_q + b * seq_q + i) * n_pos + (cix[dd] - lo)]
 * = Q_i . pos_k[cix[dd]] and p2c[(h * batch * seq_k + b * seq_k + j) * n_pos + (pix[dd] - lo)] =
 * K_j . pos_q[pix[dd]] (f32, NULL = no such term). */
struct flash_rel {
  const float *c2p, *p2c;
  int64_t n_pos, lo;
};

/* shared-memory strides (elements): 16-bit rows padded by 8, float rows by 4 (WMMA wants ld a multiple
 * of 8 / 4 and 32-byte aligned fragment pointers; every offset below keeps that for D % 16 == 0) */
template <int D> struct flash_shape {
  static constexpr int DP = D + 8, SP = FA_K + 4, PP = FA_K + 8, OP = D + 4;
  static constexpr size_t q_off = 0, k_off = q_off + (size_t)FA_Q * DP * 2, v_off = k_off + (size_t)FA_K * DP * 2,
                          s_off = v_off + (size_t)FA_K * DP * 2, p_off = s_off + (size_t)FA_Q * SP * 4,
                          o_off = p_off + (size_t)FA_Q * PP * 2, m_off = o_off + (size_t)FA_Q * OP * 4,
                          bytes = m_off + (size_t)3 * FA_Q * 4;
};

/* One (sequence b, head h) of an attention call: its Q, K, V and output columns and row strides
 * (0 in the call = heads x D) and its key padding mask (NULL = none). */
template <typename T, int D> struct flash_head {
  int64_t ldq, ldk, ldv, ldo;
  const T *q, *k, *v;
  T *o;
  const uint8_t *km;
  __device__ flash_head(const mp_dev_attention &a, int64_t b, int64_t h) {
    const int64_t HD = a.heads * D;
    ldq = a.ldq ? a.ldq : HD, ldk = a.ldk ? a.ldk : HD, ldv = a.ldv ? a.ldv : HD, ldo = a.ldo ? a.ldo : HD;
    q = (const T *)a.q + b * a.seq_q * ldq + h * D;
    k = (const T *)a.k + b * a.seq_k * ldk + h * D;
    v = (const T *)a.v + b * a.seq_k * ldv + h * D;
    o = (T *)a.out + b * a.seq_q * ldo + h * D;
    km = a.key_mask ? a.key_mask + b * a.seq_k : NULL;
  }
};

/* The keys [*lo, *hi) that some query of the block starting at query i0 can reach (the causal mask
 * and the local window rule out the rest), lo rounded down to a key tile. */
__device__ __forceinline__ void flash_key_range(const mp_dev_attention &a, int64_t i0, int64_t *lo, int64_t *hi) {
  int64_t j_lo = 0, j_hi = a.seq_k;
  const int64_t i_last = (i0 + FA_Q < a.seq_q ? i0 + FA_Q : a.seq_q) - 1;
  if (a.causal && i_last + 1 < j_hi) j_hi = i_last + 1;
  if (a.window > 0) {
    if (i0 - a.window > j_lo) j_lo = i0 - a.window;
    if (i_last + a.window + 1 < j_hi) j_hi = i_last + a.window + 1;
  }
  *lo = j_lo / FA_K * FA_K;
  *hi = j_hi;
}

/* rows [r0, r0 + 64) of one head (D values at column h * D, row stride ld) into shared memory with
 * stride DP, zeros past `rows`; 16-byte vector copies (the launcher checks the alignment) */
template <typename T, int D>
__device__ __forceinline__ void flash_load(T *dst, const T *src, int64_t ld, int64_t r0, int64_t rows) {
  constexpr int V = 8, PER_ROW = D / V;
  for (int e = threadIdx.x; e < FA_K * PER_ROW; e += FA_THREADS) {
    const int r = e / PER_ROW, c = (e % PER_ROW) * V;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) v = *(const uint4 *)(src + (r0 + r) * ld + c);
    *(uint4 *)(dst + r * flash_shape<D>::DP + c) = v;
  }
}

template <typename T, int D> __global__ void __launch_bounds__(FA_THREADS) k_flash(mp_dev_attention a, flash_rel rel) {
  using namespace nvcuda;
  typedef flash_shape<D> S;
  extern __shared__ __align__(128) unsigned char fsm[];
  T *qs = (T *)(fsm + S::q_off), *ks = (T *)(fsm + S::k_off), *vs = (T *)(fsm + S::v_off);
  float *ss = (float *)(fsm + S::s_off), *os = (float *)(fsm + S::o_off);
  T *ps = (T *)(fsm + S::p_off);
  float *ms = (float *)(fsm + S::m_off), *ls = ms + FA_Q, *cs = ls + FA_Q;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t b = blockIdx.z, h = blockIdx.y, i0 = (int64_t)blockIdx.x * FA_Q;
  const int64_t H = a.heads;
  const flash_head<T, D> hd(a, b, h);

  flash_load<T, D>(qs, hd.q, hd.ldq, i0, a.seq_q);
  for (int e = threadIdx.x; e < FA_Q * S::OP; e += FA_THREADS)
    os[e] = 0.0f;
  if (threadIdx.x < FA_Q) ms[threadIdx.x] = -INFINITY, ls[threadIdx.x] = 0.0f;

  int64_t j_lo, j_hi;
  flash_key_range(a, i0, &j_lo, &j_hi);

  float *sw = ss + warp * 16 * S::SP, *ow = os + warp * 16 * S::OP;
  T *pw = ps + warp * 16 * S::PP;
  const T *qw = qs + warp * 16 * S::DP;
  for (int64_t j0 = j_lo; j0 < j_hi; j0 += FA_K) {
    __syncthreads(); /* the previous tile's K / V are no longer read */
    flash_load<T, D>(ks, hd.k, hd.ldk, j0, a.seq_k);
    flash_load<T, D>(vs, hd.v, hd.ldv, j0, a.seq_k);
    __syncthreads();
    /* S_w[16, 64] = Q_w Kᵀ */
#pragma unroll
    for (int n = 0; n < FA_K / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, qw + kk * 16, S::DP);
        wmma::load_matrix_sync(fb, ks + n * 16 * S::DP + kk * 16, S::DP);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(sw + n * 16, acc, S::SP, wmma::mem_row_major);
    }
    __syncwarp();
    /* scores -> online softmax: lane pair (2r, 2r + 1) takes row r, the even / odd columns (fewer
     * shared-memory bank conflicts than halves) */
    {
      const int r = lane >> 1, c0 = lane & 1;
      const int64_t i = i0 + warp * 16 + r;
      float *srow = sw + r * S::SP + c0;
      T *prow = pw + r * S::PP + c0;
      float tmax = -INFINITY;
      const bool qok = i < a.seq_q;
      const float *c2p_row = rel.c2p && qok ? rel.c2p + ((h * a.batch + b) * a.seq_q + i) * rel.n_pos - rel.lo : NULL;
      for (int t = 0; t < 32; t++) {
        const int64_t j = j0 + c0 + 2 * t;
        const bool ok = qok && j < a.seq_k && (!hd.km || hd.km[j]) && (!a.causal || j <= i) &&
                        !(a.window > 0 && (i - j > a.window || j - i > a.window));
        float s = -INFINITY;
        if (ok) {
          s = srow[2 * t] * a.scale;
          const int64_t dd = i - j + a.seq_k - 1;
          if (c2p_row) s += c2p_row[a.cix[dd]] * a.scale;
          if (rel.p2c) s += rel.p2c[((h * a.batch + b) * a.seq_k + j) * rel.n_pos + (a.pix[dd] - rel.lo)] * a.scale;
          if (a.bias_tab) s += a.bias_tab[(int64_t)a.bidx[dd] * H + h];
        }
        srow[2 * t] = s;
        tmax = fmaxf(tmax, s);
      }
      tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
      const float m_old = ms[warp * 16 + r], m_new = fmaxf(m_old, tmax);
      float psum = 0.0f;
      for (int t = 0; t < 32; t++) {
        const float pv = m_new == -INFINITY ? 0.0f : __expf(srow[2 * t] - m_new); /* masked: exp(-inf) = 0 */
        psum += pv;
        prow[2 * t] = elem<T>::store(pv);
      }
      psum += __shfl_xor_sync(0xffffffffu, psum, 1);
      const float corr = m_new == -INFINITY ? 1.0f : __expf(m_old - m_new); /* m_old = -inf: 0 */
      __syncwarp();
      if (!(lane & 1)) {
        ls[warp * 16 + r] = ls[warp * 16 + r] * corr + psum;
        ms[warp * 16 + r] = m_new;
        cs[warp * 16 + r] = corr;
      }
    }
    __syncwarp();
    /* O_w = O_w * corr + P_w V */
    for (int e = lane; e < 16 * D; e += 32) {
      const int r = e / D, d = e % D;
      ow[r * S::OP + d] *= cs[warp * 16 + r];
    }
    __syncwarp();
#pragma unroll
    for (int n = 0; n < D / 16; n++) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, ow + n * 16, S::OP, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < FA_K / 16; kk++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, pw + kk * 16, S::PP);
        wmma::load_matrix_sync(fb, vs + kk * 16 * S::DP + n * 16, S::DP);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(ow + n * 16, acc, S::OP, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncthreads();
  /* out = O / l */
  T *O = hd.o;
  for (int e = threadIdx.x; e < FA_Q * D; e += FA_THREADS) {
    const int r = e / D, d = e % D;
    const int64_t i = i0 + r;
    if (i >= a.seq_q) continue;
    const float l = ls[r];
    O[i * hd.ldo + d] = elem<T>::store(l > 0 ? os[r * S::OP + d] / l : 0.0f);
  }
}

#endif
