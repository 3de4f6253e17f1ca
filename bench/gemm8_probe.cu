/* gemm8_probe: which 8-bit GEMMs cuBLASLt offers on this GPU, how fast they are beside the fp16
 * GEMM mlxport uses, and how close they stay to a double reference (bench/README.md, "8-bit GEMMs
 * on the GPU"). It answers, per transformer shape, for y[rows, out] = x[rows, in] · W[out, in]ᵀ +
 * bias:
 *   f16          fp16 x, fp16 W, fp32 accumulation, bias epilogue (mlxport's GEMM today)
 *   e4m3-tensor  FP8 E4M3 x and W, one fp32 scale each, fp16 out, bias epilogue
 *   e4m3-outer   FP8 E4M3, a scale per row of x and per output channel of W (OUTER_VEC_32F)
 *   i8-i32       int8 x and W, int32 out (COMPUTE_32I); the scales would need a second pass
 *   i8-f16       int8 in, fp16 out with fp32 scale (asked for; cuBLASLt may not offer it)
 *   i8-i8vec     int8 in, int8 out, a device vector of alphas (one per output channel)
 * Each offered variant runs up to 8 heuristic candidates (3 warm-up + REPS timed runs each) and
 * reports the fastest. Usage: gemm8_probe [rows...] (default 16384 6144 2048 128 48); JSON lines
 * on stdout, one per (shape, variant). A research tool for the GPU machine, not a test. */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPS 20
#define CANDIDATES 8
#define WS_BYTES (32u << 20)

#define CK(x)                                                                                                          \
  do {                                                                                                                 \
    cudaError_t e_ = (x);                                                                                              \
    if (e_ != cudaSuccess) {                                                                                           \
      fprintf(stderr, "gemm8_probe: %s: %s (line %d)\n", #x, cudaGetErrorString(e_), __LINE__);                        \
      exit(1);                                                                                                         \
    }                                                                                                                  \
  } while (0)

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float gauss(void) {
  double u = 0, v = 0;
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  u = ((rng >> 11) + 0.5) / 9007199254740992.0;
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  v = ((rng >> 11) + 0.5) / 9007199254740992.0;
  return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

typedef struct {
  const char *name;
  cublasComputeType_t compute;
  cudaDataType_t scale_t, ab_t, d_t, bias_t;
  int outer;     /* OUTER_VEC_32F scales on A and B */
  int tensor;    /* scalar scale pointers on A and B */
  int alpha_vec; /* ALPHA_DEVICE_VECTOR_BETA_ZERO */
  int bias;      /* 1: BIAS epilogue, 2: GELU_BIAS (tanh GELU) */
} variant;

static const variant VARIANTS[] = {
    {"f16", CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16F, CUDA_R_16F, CUDA_R_16F, 0, 0, 0, 1},
    {"e4m3-tensor", CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_8F_E4M3, CUDA_R_16F, CUDA_R_16F, 0, 1, 0, 1},
    {"e4m3-outer", CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_8F_E4M3, CUDA_R_16F, CUDA_R_16F, 1, 0, 0, 1},
    {"e4m3-outer-gelu", CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_8F_E4M3, CUDA_R_16F, CUDA_R_16F, 1, 0, 0, 2},
    {"e4m3-outer-bf16", CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, 1, 0, 0, 1},
    {"i8-i32", CUBLAS_COMPUTE_32I, CUDA_R_32I, CUDA_R_8I, CUDA_R_32I, CUDA_R_32I, 0, 0, 0, 0},
    {"i8-f16", CUBLAS_COMPUTE_32I, CUDA_R_32F, CUDA_R_8I, CUDA_R_16F, CUDA_R_16F, 0, 0, 0, 0},
    {"i8-i8vec", CUBLAS_COMPUTE_32I, CUDA_R_32F, CUDA_R_8I, CUDA_R_8I, CUDA_R_8I, 0, 0, 1, 0},
};

static size_t tsize(cudaDataType_t t) {
  return (t == CUDA_R_16F || t == CUDA_R_16BF) ? 2 : (t == CUDA_R_32I || t == CUDA_R_32F) ? 4 : 1;
}

/* the host data of one shape, quantized per variant */
typedef struct {
  int64_t rows, out, in;
  float *x, *w, *bias; /* float originals */
  double *ref;         /* sampled double reference: NS entries */
  int64_t *si;         /* sample (row, col) pairs, flattened row*out+col */
} shape;

#define NS 512

static void quant_rows(const float *a, int64_t n, int64_t k, int mode, int per_row, void *q, float *scale) {
  /* mode 0: int8 symmetric; mode 1: e4m3. per_row: one scale per row, else one for all */
  const float qmax = mode ? 448.0f : 127.0f;
  float gmax = 0;
  for (int64_t i = 0; i < n * k; i++)
    gmax = fmaxf(gmax, fabsf(a[i]));
  for (int64_t r = 0; r < n; r++) {
    float m = 0;
    if (per_row)
      for (int64_t j = 0; j < k; j++)
        m = fmaxf(m, fabsf(a[r * k + j]));
    else
      m = gmax;
    const float s = m > 0 ? m / qmax : 1.0f;
    if (per_row || r == 0) scale[per_row ? r : 0] = s;
    for (int64_t j = 0; j < k; j++) {
      const float v = a[r * k + j] / s;
      if (mode)
        ((__nv_fp8_e4m3 *)q)[r * k + j] = __nv_fp8_e4m3(v);
      else
        ((int8_t *)q)[r * k + j] = (int8_t)lrintf(fmaxf(-127.0f, fminf(127.0f, v)));
    }
  }
}

static void run_variant(cublasLtHandle_t lt, void *ws, const shape *sh, const variant *v) {
  const int64_t M = sh->out, N = sh->rows, K = sh->in; /* column-major view: D[out, rows] */
  const int mode = v->ab_t == CUDA_R_8F_E4M3;
  void *hw = malloc((size_t)(M * K * tsize(v->ab_t))), *hx = malloc((size_t)(N * K * tsize(v->ab_t)));
  float *sw = (float *)malloc(sizeof(float) * M), *sx = (float *)malloc(sizeof(float) * N);
  if (v->ab_t == CUDA_R_16F) {
    for (int64_t i = 0; i < M * K; i++)
      ((__half *)hw)[i] = __float2half(sh->w[i]);
    for (int64_t i = 0; i < N * K; i++)
      ((__half *)hx)[i] = __float2half(sh->x[i]);
    sw[0] = sx[0] = 1;
  } else {
    /* weights per output channel unless the variant takes one scale; activations per row for
     * outer, one scale otherwise (int8 variants: per row, applied on the host for the check) */
    const int wrow = v->outer || v->ab_t == CUDA_R_8I, xrow = v->outer || v->compute == CUBLAS_COMPUTE_32I;
    quant_rows(sh->w, M, K, mode, wrow, hw, sw);
    quant_rows(sh->x, N, K, mode, xrow, hx, sx);
    if (!wrow)
      for (int64_t i = 1; i < M; i++)
        sw[i] = sw[0];
    if (!xrow)
      for (int64_t i = 1; i < N; i++)
        sx[i] = sx[0];
  }
  void *dw, *dx, *dd, *dbias = NULL, *dsw, *dsx, *dalpha = NULL;
  CK(cudaMalloc(&dw, (size_t)(M * K * tsize(v->ab_t))));
  CK(cudaMalloc(&dx, (size_t)(N * K * tsize(v->ab_t))));
  CK(cudaMalloc(&dd, (size_t)(M * N * tsize(v->d_t))));
  CK(cudaMalloc(&dsw, sizeof(float) * M));
  CK(cudaMalloc(&dsx, sizeof(float) * N));
  CK(cudaMemcpy(dw, hw, (size_t)(M * K * tsize(v->ab_t)), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dx, hx, (size_t)(N * K * tsize(v->ab_t)), cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dsw, sw, sizeof(float) * M, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dsx, sx, sizeof(float) * N, cudaMemcpyHostToDevice));
  if (v->bias) {
    __half *hb = (__half *)malloc(2 * M);
    for (int64_t i = 0; i < M; i++)
      if (v->bias_t == CUDA_R_16BF) {
        __nv_bfloat16 b = __float2bfloat16(sh->bias[i]);
        memcpy((void *)&hb[i], (const void *)&b, 2);
      } else
        hb[i] = __float2half(sh->bias[i]);
    CK(cudaMalloc(&dbias, 2 * M));
    CK(cudaMemcpy(dbias, hb, 2 * M, cudaMemcpyHostToDevice));
    free(hb);
  }
  if (v->alpha_vec) { /* alpha per output channel: sw · sx[0] (int8 out: only the speed is probed) */
    float *al = (float *)malloc(sizeof(float) * M);
    for (int64_t i = 0; i < M; i++)
      al[i] = sw[i] * sx[0] * 8.0f;
    CK(cudaMalloc(&dalpha, sizeof(float) * M));
    CK(cudaMemcpy(dalpha, al, sizeof(float) * M, cudaMemcpyHostToDevice));
    free(al);
  }

  cublasLtMatmulDesc_t md = NULL;
  cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasStatus_t s = cublasLtMatmulDescCreate(&md, v->compute, v->scale_t);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (!s && v->bias) {
    cublasLtEpilogue_t epi = v->bias == 2 ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &dbias, sizeof dbias);
    if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &v->bias_t, sizeof v->bias_t);
  }
  if (!s && (v->tensor || v->outer)) {
    s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &dsw, sizeof dsw);
    if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &dsx, sizeof dsx);
  }
  if (!s && v->outer) {
    int32_t m = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &m, sizeof m);
    if (!s) s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &m, sizeof m);
  }
  if (!s && v->alpha_vec) {
    int32_t pm = CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO;
    s = cublasLtMatmulDescSetAttribute(md, CUBLASLT_MATMUL_DESC_POINTER_MODE, &pm, sizeof pm);
  }
  if (!s) s = cublasLtMatrixLayoutCreate(&la, v->ab_t, (uint64_t)K, (uint64_t)M, K);
  if (!s) s = cublasLtMatrixLayoutCreate(&lb, v->ab_t, (uint64_t)K, (uint64_t)N, K);
  if (!s) s = cublasLtMatrixLayoutCreate(&lc, v->d_t, (uint64_t)M, (uint64_t)N, M);
  cublasLtMatmulPreference_t pref = NULL;
  size_t wsb = WS_BYTES;
  if (!s) s = cublasLtMatmulPreferenceCreate(&pref);
  if (!s) s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
  cublasLtMatmulHeuristicResult_t res[CANDIDATES];
  int got = 0;
  if (!s) s = cublasLtMatmulAlgoGetHeuristic(lt, md, la, lb, lc, lc, pref, CANDIDATES, res, &got);
  printf("{\"rows\": %lld, \"out\": %lld, \"in\": %lld, \"variant\": \"%s\"", (long long)N, (long long)M, (long long)K,
         v->name);
  if (s || got == 0) {
    printf(", \"offered\": false, \"status\": %d}\n", (int)s);
  } else {
    float one = 1.0f, zero = 0.0f;
    int32_t ione = 1, izero = 0;
    const void *alpha = v->alpha_vec ? dalpha : v->scale_t == CUDA_R_32I ? (const void *)&ione : (const void *)&one;
    const void *beta = v->scale_t == CUDA_R_32I ? (const void *)&izero : (const void *)&zero;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float best = -1;
    int best_i = -1, ran = 0;
    for (int c = 0; c < got; c++) {
      cublasStatus_t r = CUBLAS_STATUS_SUCCESS;
      for (int i = 0; i < 3 && !r; i++)
        r = cublasLtMatmul(lt, md, alpha, dw, la, dx, lb, beta, dd, lc, dd, lc, &res[c].algo, ws, WS_BYTES, 0);
      if (r) continue;
      CK(cudaEventRecord(e0, 0));
      for (int i = 0; i < REPS; i++)
        cublasLtMatmul(lt, md, alpha, dw, la, dx, lb, beta, dd, lc, dd, lc, &res[c].algo, ws, WS_BYTES, 0);
      CK(cudaEventRecord(e1, 0));
      CK(cudaEventSynchronize(e1));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      ran++;
      if (best < 0 || ms < best) best = ms, best_i = c;
    }
    double err = -1;
    if (best_i >= 0 && !v->alpha_vec &&
        !(v->compute == CUBLAS_COMPUTE_32I &&
          v->d_t != CUDA_R_32I)) { /* accuracy of the fastest candidate against the double reference */
      cublasLtMatmul(lt, md, alpha, dw, la, dx, lb, beta, dd, lc, dd, lc, &res[best_i].algo, ws, WS_BYTES, 0);
      void *hd = malloc((size_t)(M * N * tsize(v->d_t)));
      CK(cudaMemcpy(hd, dd, (size_t)(M * N * tsize(v->d_t)), cudaMemcpyDeviceToHost));
      double num = 0, den = 0;
      for (int i = 0; i < NS; i++) {
        const int64_t row = sh->si[i] / M, col = sh->si[i] % M, at = row * M + col;
        double y;
        if (v->d_t == CUDA_R_16F)
          y = __half2float(((__half *)hd)[at]);
        else if (v->d_t == CUDA_R_16BF)
          y = __bfloat162float(((__nv_bfloat16 *)hd)[at]);
        else
          y = (double)((int32_t *)hd)[at];
        if (v->compute == CUBLAS_COMPUTE_32I) y = y * sw[col] * sx[row] + sh->bias[col];
        double ref = sh->ref[i];
        if (v->bias == 2) ref = 0.5 * ref * (1.0 + tanh(0.7978845608028654 * (ref + 0.044715 * ref * ref * ref)));
        num += (y - ref) * (y - ref), den += ref * ref;
      }
      err = sqrt(num / den);
      free(hd);
    }
    const double us = best / REPS * 1000.0, tflops = 2.0 * M * N * K / (us * 1e-6) / 1e12;
    printf(", \"offered\": true, \"candidates\": %d, \"ran\": %d, \"best\": %d, \"us\": %.2f, \"tflops\": %.1f, "
           "\"rel_err\": %.3g}\n",
           got, ran, best_i + 1, us, tflops, err);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
  }
  fflush(stdout);
  cudaGetLastError();
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (md) cublasLtMatmulDescDestroy(md);
  cudaFree(dw), cudaFree(dx), cudaFree(dd), cudaFree(dsw), cudaFree(dsx);
  if (dbias) cudaFree(dbias);
  if (dalpha) cudaFree(dalpha);
  free(hw), free(hx), free(sw), free(sx);
}

int main(int argc, char **argv) {
  int64_t rows_list[16] = {16384, 6144, 2048, 128, 48};
  int n_rows = 5;
  if (argc > 1) {
    n_rows = 0;
    for (int i = 1; i < argc && n_rows < 16; i++)
      rows_list[n_rows++] = atoll(argv[i]);
  }
  /* roberta-large / bart-large layer shapes: Q/K/V stacked, out-projection, FFN up, FFN down */
  const int64_t shapes[4][2] = {{3072, 1024}, {1024, 1024}, {4096, 1024}, {1024, 4096}};
  cublasLtHandle_t lt;
  if (cublasLtCreate(&lt)) return fprintf(stderr, "gemm8_probe: cublasLtCreate failed\n"), 1;
  void *ws;
  CK(cudaMalloc(&ws, WS_BYTES));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  printf("{\"device\": \"%s\", \"cc\": \"%d.%d\", \"cublasLt\": %zu}\n", prop.name, prop.major, prop.minor,
         cublasLtGetVersion());
  for (int r = 0; r < n_rows; r++)
    for (int si = 0; si < 4; si++) {
      shape sh;
      sh.rows = rows_list[r], sh.out = shapes[si][0], sh.in = shapes[si][1];
      sh.x = (float *)malloc(sizeof(float) * sh.rows * sh.in);
      sh.w = (float *)malloc(sizeof(float) * sh.out * sh.in);
      sh.bias = (float *)malloc(sizeof(float) * sh.out);
      /* activations like a LayerNorm output: unit scale, two outlier features ×12 */
      for (int64_t i = 0; i < sh.rows * sh.in; i++) {
        const int64_t j = i % sh.in;
        sh.x[i] = gauss() * ((j == 7 || j == 300) ? 12.0f : 1.0f);
      }
      for (int64_t i = 0; i < sh.out * sh.in; i++)
        sh.w[i] = 0.02f * gauss();
      for (int64_t i = 0; i < sh.out; i++)
        sh.bias[i] = 0.1f * gauss();
      sh.ref = (double *)malloc(sizeof(double) * NS);
      sh.si = (int64_t *)malloc(sizeof(int64_t) * NS);
      for (int i = 0; i < NS; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        const int64_t row = (int64_t)(rng % (uint64_t)sh.rows), col = (int64_t)((rng >> 32) % (uint64_t)sh.out);
        double acc = sh.bias[col];
        for (int64_t k = 0; k < sh.in; k++)
          acc += (double)sh.x[row * sh.in + k] * sh.w[col * sh.in + k];
        sh.si[i] = row * sh.out + col, sh.ref[i] = acc;
      }
      for (size_t v = 0; v < sizeof VARIANTS / sizeof VARIANTS[0]; v++)
        run_variant(lt, ws, &sh, &VARIANTS[v]);
      free(sh.x), free(sh.w), free(sh.bias), free(sh.ref), free(sh.si);
    }
  cudaFree(ws);
  cublasLtDestroy(lt);
  return 0;
}
