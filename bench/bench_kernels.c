/* Kernel benchmark: GFLOP/s of mp_linear for f32 / bf16 / f16 / q8 / q4 weights (the faithful float
 * path), of mp_qlinear_act for q8 / q4 (the fast integer path, "q8-int" / "q4-int") and of
 * mp_bflinear_act for bf16 / f16 (the fast AMX-BF16 path, "bf16-amx" / "f16-amx", where usable) at
 * BERT-like shapes on 1 and 2 threads, and the machine's measured peaks per core: fp32 FMA and
 * int8 VPDPBUSD (2 ops per multiply-add, as GFLOP/s counts them).
 * Usage: bench_kernels [--threads 1,2] [--isa scalar|avx2|avx512|neon|neon-dotprod] [--quick]
 * Output: one JSON object per line (bench/bench_kernels.py turns it into a table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/tensor.h"
#include "kernels/kernels.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(getenv("MP_BENCH_CPUTIME") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
/* 12 independent FMA chains, enough to cover latency x throughput on current x86 cores. */
#define PEAK_BODY(V, FMA, SET1)                                                                                        \
  /* distinct start values: identical chains could be merged by the compiler */                                        \
  V a0 = SET1(1.0f), a1 = SET1(1.01f), a2 = SET1(1.02f), a3 = SET1(1.03f), a4 = SET1(1.04f), a5 = SET1(1.05f),         \
    a6 = SET1(1.06f), a7 = SET1(1.07f), a8 = SET1(1.08f), a9 = SET1(1.09f), a10 = SET1(1.10f), a11 = SET1(1.11f);      \
  const V m = SET1(0.999999f), c = SET1(1e-7f);                                                                        \
  for (long i = 0; i < iters; i++) {                                                                                   \
    a0 = FMA(a0, m, c);                                                                                                \
    a1 = FMA(a1, m, c);                                                                                                \
    a2 = FMA(a2, m, c);                                                                                                \
    a3 = FMA(a3, m, c);                                                                                                \
    a4 = FMA(a4, m, c);                                                                                                \
    a5 = FMA(a5, m, c);                                                                                                \
    a6 = FMA(a6, m, c);                                                                                                \
    a7 = FMA(a7, m, c);                                                                                                \
    a8 = FMA(a8, m, c);                                                                                                \
    a9 = FMA(a9, m, c);                                                                                                \
    a10 = FMA(a10, m, c);                                                                                              \
    a11 = FMA(a11, m, c);                                                                                              \
  }                                                                                                                    \
  V s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;                                                   \
  float out[sizeof(V) / 4];                                                                                            \
  memcpy(out, &s, sizeof out);                                                                                         \
  return out[0];

__attribute__((target("avx2,fma"))) static float peak_avx2(long iters) {
  PEAK_BODY(__m256, _mm256_fmadd_ps, _mm256_set1_ps)
}
__attribute__((target("avx512f"))) static float peak_avx512(long iters) {
  PEAK_BODY(__m512, _mm512_fmadd_ps, _mm512_set1_ps)
}
/* 12 independent VPDPBUSD chains: 64 u8 x s8 multiply-adds each */
__attribute__((target("avx512f,avx512vnni"))) static int peak_vnni(long iters) {
  __m512i a[12];
  for (int j = 0; j < 12; j++)
    a[j] = _mm512_set1_epi32(j);
  const __m512i u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(-2);
  for (long i = 0; i < iters; i++) {
    a[0] = _mm512_dpbusd_epi32(a[0], u, v), a[1] = _mm512_dpbusd_epi32(a[1], u, v);
    a[2] = _mm512_dpbusd_epi32(a[2], u, v), a[3] = _mm512_dpbusd_epi32(a[3], u, v);
    a[4] = _mm512_dpbusd_epi32(a[4], u, v), a[5] = _mm512_dpbusd_epi32(a[5], u, v);
    a[6] = _mm512_dpbusd_epi32(a[6], u, v), a[7] = _mm512_dpbusd_epi32(a[7], u, v);
    a[8] = _mm512_dpbusd_epi32(a[8], u, v), a[9] = _mm512_dpbusd_epi32(a[9], u, v);
    a[10] = _mm512_dpbusd_epi32(a[10], u, v), a[11] = _mm512_dpbusd_epi32(a[11], u, v);
  }
  __m512i t = a[0];
  for (int j = 1; j < 12; j++)
    t = _mm512_add_epi32(t, a[j]);
  return _mm512_reduce_add_epi32(t);
}
#endif

/* int8 multiply-add peak of one core in Gop/s (2 ops per multiply-add); 0 without VNNI */
static double measure_vnni_peak(void) {
#if defined(__x86_64__)
  if (!strstr(mp_kernels_features(), "avx512vnni")) return 0;
  long iters = 20000000;
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    volatile int sink = peak_vnni(iters);
    (void)sink;
    double t = now() - t0, ops = (double)iters * 12 * 64 * 2;
    if (ops / t > best) best = ops / t;
  }
  return best / 1e9;
#else
  return 0;
#endif
}

static double measure_peak(mp_isa isa) {
#if defined(__x86_64__)
  long iters = 20000000;
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now();
    volatile float sink = isa == MP_ISA_AVX512 ? peak_avx512(iters) : peak_avx2(iters);
    (void)sink;
    double t = now() - t0;
    double flops = (double)iters * 12 * 2 * (isa == MP_ISA_AVX512 ? 16 : 8);
    if (flops / t > best) best = flops / t;
  }
  return best / 1e9;
#else
  (void)isa;
  return 0;
#endif
}

typedef struct enc {
  const char *name;
  int bits; /* 0 float */
  mp_dtype dtype;
  int tiles; /* the fast path for F16 / BF16 weights (mp_bflinear_act, AMX-BF16) */
} enc;

int main(int argc, char **argv) {
  int threads[4] = {1, 2}, nthr = 2, quick = 0, peak_only = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      nthr = 0;
      for (char *s = argv[++i]; *s && nthr < 4;) {
        threads[nthr++] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
      }
    } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
      const char *v = argv[++i];
      mp_kernels_set_isa(!strcmp(v, "scalar")                       ? MP_ISA_SCALAR
                         : !strcmp(v, "avx2") || !strcmp(v, "neon") ? MP_ISA_AVX2 /* first vector level */
                                                                    : MP_ISA_BEST);
    } else if (!strcmp(argv[i], "--quick")) {
      quick = 1;
    } else if (!strcmp(argv[i], "--peak")) {
      peak_only = 1;
    } else {
      fprintf(stderr,
              "usage: bench_kernels [--threads 1,2] [--isa scalar|avx2|avx512|neon|neon-dotprod] [--quick] [--peak]\n");
      return 2;
    }
  }
  mp_isa isa = mp_kernels_isa();
  printf("{\"kind\":\"peak\",\"isa\":\"%s\",\"features\":\"%s\",\"gflops_per_core\":%.2f,"
         "\"int8_gops_per_core\":%.2f,\"int_kernel\":\"%s\"}\n",
         mp_isa_name(isa), mp_kernels_features(), measure_peak(isa == MP_ISA_SCALAR ? MP_ISA_AVX2 : isa),
         measure_vnni_peak(), mp_qlinear_path());
  fflush(stdout);
  if (peak_only) return 0;
  /* BERT-like: 32 sentences x 128 tokens; MiniLM (384) attention out / FFN up / FFN down */
  const int64_t shapes[][3] = {{4096, 384, 1536}, {4096, 1536, 384}, {4096, 384, 384}, {128, 384, 1536}};
  int nshapes = quick ? 1 : 4;
  const enc encs[] = {{"f32", 0, MP_F32, 0},   {"bf16", 0, MP_BF16, 0},     {"f16", 0, MP_F16, 0},
                      {"q8", 8, MP_F32, 0},    {"q4", 4, MP_F32, 0},        {"q8-int", 8, MP_U8, 0},
                      {"q4-int", 4, MP_U8, 0}, {"bf16-amx", 0, MP_BF16, 1}, {"f16-amx", 0, MP_F16, 1}};
  srand(1);
  for (int si = 0; si < nshapes; si++) {
    int64_t M = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
    float *x = malloc((size_t)(M * K) * 4), *y = malloc((size_t)(M * N) * 4);
    for (int64_t i = 0; i < M * K; i++)
      x[i] = (float)((double)rand() / (double)RAND_MAX) - 0.5f;
    for (size_t ei = 0; ei < sizeof encs / sizeof encs[0]; ei++) {
      const enc *e = &encs[ei];
      if (e->tiles && !mp_bflinear_available()) continue; /* no AMX-BF16 here: no row */
      mp_linear_weight w = {.name = e->name, .out = N, .in = K, .bits = e->bits};
      void *data, *sc = NULL, *bi = NULL;
      if (e->bits == 0) {
        w.dtype = e->dtype;
        size_t es = mp_dtype_size(e->dtype);
        data = malloc((size_t)(N * K) * es);
        for (int64_t i = 0; i < N * K; i++) {
          float v = (float)((double)rand() / (double)RAND_MAX) - 0.5f;
          if (es == 4)
            ((float *)data)[i] = v;
          else
            ((uint16_t *)data)[i] = e->dtype == MP_F16 ? mp_f32_to_f16(v) : mp_f32_to_bf16(v);
        }
      } else {
        w.dtype = MP_U32;
        w.group_size = 64;
        w.scale_dtype = MP_F32;
        size_t nb = (size_t)(N * K * e->bits / 8);
        data = malloc(nb);
        for (size_t i = 0; i < nb; i++)
          ((uint8_t *)data)[i] = (uint8_t)rand();
        sc = malloc((size_t)(N * K / 64) * 4);
        bi = malloc((size_t)(N * K / 64) * 4);
        for (int64_t i = 0; i < N * K / 64; i++) {
          ((float *)sc)[i] = 0.01f;
          ((float *)bi)[i] = -0.05f;
        }
      }
      w.data = data;
      w.scales = sc;
      w.biases = bi;
      mp_qweight *qw = NULL; /* the integer path (enc dtype MP_U8 marks it) */
      if (e->dtype == MP_U8 && mp_qweight_pack(&w, &qw) != MP_OK) {
        fprintf(stderr, "%s\n", mp_last_error());
        return 3;
      }
      mp_bfweight *bw = NULL;
      if (e->tiles && mp_bfweight_pack(&w, &bw) != MP_OK) {
        fprintf(stderr, "%s\n", mp_last_error());
        return 3;
      }
#define RUN_ONCE()                                                                                                     \
  (qw   ? mp_qlinear_act(pool, x, M, qw, NULL, MP_F32, MP_ACT_NONE, y)                                                 \
   : bw ? mp_bflinear_act(pool, x, M, bw, NULL, MP_F32, MP_ACT_NONE, y)                                                \
        : mp_linear(pool, x, M, &w, NULL, MP_F32, y))
      for (int ti = 0; ti < nthr; ti++) {
        mp_pool *pool;
        if (mp_pool_create(threads[ti], &pool) != MP_OK) return 3;
        if (RUN_ONCE() != MP_OK) {
          fprintf(stderr, "%s\n", mp_last_error());
          return 3;
        }
        double flops = 2.0 * M * N * K, best = 1e30, total = 0;
        int reps = 0;
        while ((total < (quick ? 0.3 : 1.0) || reps < 3) && reps < 50) {
          double t0 = now();
          RUN_ONCE();
          double t = now() - t0;
          total += t;
          reps++;
          if (t < best) best = t;
        }
        printf("{\"kind\":\"linear\",\"isa\":\"%s\",\"enc\":\"%s\",\"M\":%lld,\"K\":%lld,\"N\":%lld,"
               "\"threads\":%d,\"best_s\":%.6f,\"gflops\":%.2f}\n",
               mp_isa_name(isa), e->name, (long long)M, (long long)K, (long long)N, threads[ti], best,
               flops / best / 1e9);
        fflush(stdout);
        mp_pool_free(pool);
      }
      mp_qweight_free(qw);
      mp_bfweight_free(bw);
      free(data);
      free(sc);
      free(bi);
    }
    free(x);
    free(y);
  }
  return 0;
}
