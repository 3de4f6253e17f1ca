/* GPU test of the CUDA backend's quantized-weight matmul (src/cuda/qgemm.cuh), run by
 * tests/gpu/run.sh on a machine with an NVIDIA GPU (built with -DMP_CUDA=ON, staged by prepare.sh).
 * For random MLX affine matrices (2, 4 and 8 bits; groups 32, 64 and 128; scales exactly float16
 * and not) and activations in float16 and bfloat16, y = act(x · Wᵀ + bias) from the device's dense
 * op with the matrix kept quantized is checked against a double-precision reference on the same
 * rounded values (W = fl(fl(s·q) + b) rounded to the compute dtype, as the upload always stored it),
 * for row counts on both sides of every kernel choice: the dequantize-in-GEMM kernel with and
 * without split K (MP_CUDA_QGEMM=1, the opt-in that keeps matrices quantized) and the
 * dequantize-then-cuBLASLt path (MP_CUDA_QGEMM_ROWS=0).
 * Error bound per output: 2e-4 · (Σ|x·w| + |bias|) + one rounding of the output (the inputs are the
 * same rounded values on both sides: what is left is float accumulation order). Prints one line
 * per failing case (at most 20) and a summary; exits 1 on any failure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MP_HAVE_CUDA 1 /* mp_cuda_open: the library of this build has the CUDA backend */
#include "core/error.h"
#include "model/device.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() & 0xFFFFFF) / 16777216.0f; }

/* round to float16 / bfloat16 (nearest even), as values */
static float to_f16(float v) { return (float)(_Float16)v; }
static float to_bf16(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  u &= 0xFFFF0000u;
  memcpy(&v, &u, 4);
  return v;
}
static float round_dt(mp_dtype dt, float v) { return dt == MP_F16 ? to_f16(v) : to_bf16(v); }

static double act_ref(double x, int act) {
  if (act == MP_ACT_GELU_ERF) return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
  return x;
}

static int failures = 0, checks = 0;

/* one case on one context: returns 0 when every output is within the bound */
static int run_case(const mp_device_ops *ops, void *ctx, mp_dtype dt, const char *path, int64_t M, int64_t N, int64_t K,
                    int group, int bits, int half_scales, int act, int with_bias) {
  const int64_t G = K / group;
  uint8_t *codes = malloc((size_t)(N * K));
  float *sc = malloc((size_t)(N * G) * 4), *bi = malloc((size_t)(N * G) * 4), *w = malloc((size_t)(N * K) * 4);
  float *x = malloc((size_t)(M * K) * 4), *bias = malloc((size_t)N * 4), *y = malloc((size_t)(M * N) * 4);
  int bad = 0;
  if (!codes || !sc || !bi || !w || !x || !bias || !y) {
    fprintf(stderr, "test_qgemm: out of memory\n");
    exit(1);
  }
  for (int64_t i = 0; i < N * K; i++)
    codes[i] = (uint8_t)(next_u32() & ((1u << bits) - 1));
  for (int64_t i = 0; i < N * G; i++) {
    float s = uniform(0.002f, 0.03f) * (float)(256 >> bits), b = uniform(-1.0f, 0.2f) * s * (float)(1 << bits) / 2;
    if (half_scales)
      s = to_f16(s), b = to_f16(b);
    else /* more mantissa than float16 has: the float2 path */
      s = s * (1.0f + 1.0f / 4096.0f) + 1e-9f, b = b + s * (1.0f / 8192.0f);
    sc[i] = s, bi[i] = b;
  }
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < K; k++) { /* mx.dequantize's rounding, then the compute dtype */
      const float s = sc[n * G + k / group], b = bi[n * G + k / group];
      const float p = s * (float)codes[n * K + k];
      w[n * K + k] = round_dt(dt, p + b);
    }
  for (int64_t i = 0; i < M * K; i++)
    x[i] = round_dt(dt, uniform(-1.0f, 1.0f));
  for (int64_t n = 0; n < N; n++)
    bias[n] = round_dt(dt, uniform(-0.5f, 0.5f));

  const void *qw = ops->upload_qweight(ctx, codes, sc, bi, N, K, group);
  const void *dx = ops->upload_param(ctx, x, M * K, 1);
  const void *db = with_bias ? ops->upload_param(ctx, bias, N, 1) : NULL;
  mp_status st = qw && dx && (!with_bias || db) ? ops->begin(ctx) : MP_ERR_NOMEM;
  void *dy = st ? NULL : ops->alloc(ctx, (size_t)(M * N));
  if (!st && !dy) st = MP_ERR_NOMEM;
  if (!st) st = ops->dense(ctx, dx, M, qw, N, K, db, (mp_act)act, dy);
  if (!st) st = ops->download(ctx, dy, (size_t)(M * N), y);
  checks++;
  if (st) {
    printf("FAIL %s %s M=%lld N=%lld K=%lld g=%d bits=%d: %s\n", path, dt == MP_F16 ? "f16" : "bf16", (long long)M,
           (long long)N, (long long)K, group, bits, mlxport_last_error());
    failures++;
    bad = 1;
  }
  double worst = 0;
  for (int64_t m = 0; !bad && m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = with_bias ? bias[n] : 0.0, mag = with_bias ? fabs(bias[n]) : 0.0;
      for (int64_t k = 0; k < K; k++) {
        const double p = (double)x[m * K + k] * (double)w[n * K + k];
        s += p, mag += fabs(p);
      }
      const double ref = act_ref(s, act), got = y[m * N + n];
      const double tol = 2e-4 * mag + fabs(ref) * (dt == MP_F16 ? 1.0 / 1024 : 1.0 / 128) + 1e-6;
      const double err = fabs(got - ref);
      if (err / tol > worst) worst = err / tol;
      if (!(err <= tol)) {
        if (failures < 20)
          printf("FAIL %s %s M=%lld N=%lld K=%lld g=%d bits=%d half=%d act=%d: y[%lld][%lld] = %.6g, reference %.6g "
                 "(tolerance %.3g)\n",
                 path, dt == MP_F16 ? "f16" : "bf16", (long long)M, (long long)N, (long long)K, group, bits,
                 half_scales, act, (long long)m, (long long)n, got, ref, tol);
        failures++;
        bad = 1;
        break;
      }
    }
  free(codes), free(sc), free(bi), free(w), free(x), free(bias), free(y);
  return bad;
}

int main(void) {
  static const int64_t rows[] = {1, 5, 16, 17, 33, 48, 64, 65, 130, 256, 300};
  static const struct {
    int64_t n, k;
  } shapes[] = {{8, 64}, {24, 128}, {64, 64}, {72, 192}, {200, 1024}, {1024, 4096}, {3072, 1024}};
  int cases = 0;
  setenv("MP_CUDA_QGEMM", "1", 1); /* matrices kept quantized: opt-in */
  for (int d = 0; d < 2; d++) {
    const mp_dtype dt = d ? MP_BF16 : MP_F16;
    for (int p = 0; p < 2; p++) { /* p 1: every row count through dequantize + cuBLASLt */
      if (p)
        setenv("MP_CUDA_QGEMM_ROWS", "0", 1);
      else
        unsetenv("MP_CUDA_QGEMM_ROWS");
      void *ctx = NULL;
      if (mp_cuda_open(0, dt, &ctx) != MP_OK) {
        printf("FAIL opening cuda:0: %s\n", mlxport_last_error());
        return 1;
      }
      const mp_device_ops *ops = mp_cuda_ops();
      if (!ops->qweight_ok || !ops->qweight_ok(ctx, 64, 64, 64)) {
        printf("FAIL the CUDA backend does not keep quantized weights (MP_CUDA_QGEMM=1 is set)\n");
        return 1;
      }
      const char *path = p ? "dequantize+cublaslt" : "qgemm";
      for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
          const int64_t N = shapes[s].n, K = shapes[s].k, M = rows[r];
          if (N * K >= 1024 * 1024 && M > 65 && r % 2) continue; /* the large shapes at fewer row counts */
          const int group = (int)(32 << ((r + s) % 3));
          if (K % group) continue;
          const int bits = (r + s + d) % 3 == 0 ? 4 : (r + s) % 5 == 0 ? 2 : 8;
          run_case(ops, ctx, dt, path, M, N, K, group, bits, (r + s) % 4 != 1, (r % 2) ? MP_ACT_GELU_ERF : MP_ACT_NONE,
                   s % 3 != 2);
          cases++;
        }
      ops->close(ctx);
    }
  }
  printf("%s test_qgemm: %d cases, %d failed\n", failures ? "FAIL" : "PASS", cases, failures);
  return failures ? 1 : 0;
}
