/* Kernels: every ISA path (scalar reference, AVX2, AVX-512 where the CPU has them) against an
 * independent double-precision reference written here; thread counts 1 and 2 bit-identical. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tensor.h"
#include "kernels/kernels.h"
#include "testlib.h"
#include "tweight.h"

static mp_isa isas[3];
static int n_isas;
static void find_isas(void) {
  mp_kernels_set_isa(MP_ISA_BEST);
  n_isas = mp_kernels_isas(isas);
  fprintf(stderr, "features: %s; testing %d ISA paths\n", mp_kernels_features(), n_isas);
}

static double ref_act(mp_act a, double x) {
  switch (a) {
  case MP_ACT_NONE: return x;
  case MP_ACT_RELU: return x > 0 ? x : 0;
  case MP_ACT_GELU_ERF: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case MP_ACT_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  case MP_ACT_TANH: return tanh(x);
  case MP_ACT_SILU: return x / (1 + exp(-x));
  case MP_ACT_SIGMOID: return 1 / (1 + exp(-x));
  }
  return x;
}

/* Checks mp_linear_act for one weight on every ISA, 1 and 2 threads. */
static void check_linear(tw *t, int64_t rows, mp_act act, int with_bias, mp_pool *p2) {
  int64_t N = t->w.out, K = t->w.in;
  float *x = malloc((size_t)(rows * K) * 4), *y1 = malloc((size_t)(rows * N) * 4), *y2 = malloc((size_t)(rows * N) * 4),
        *bias = malloc((size_t)N * 4);
  double *ref = malloc((size_t)(rows * N) * 8);
  for (int64_t i = 0; i < rows * K; i++)
    x[i] = frand();
  for (int64_t i = 0; i < N; i++)
    bias[i] = frand();
  for (int64_t m = 0; m < rows; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0, sa = 0;
      for (int64_t k = 0; k < K; k++) {
        s += (double)x[m * K + k] * t->ref[n * K + k];
        sa += fabs((double)x[m * K + k] * t->ref[n * K + k]);
      }
      (void)sa;
      if (with_bias) s += bias[n];
      ref[m * N + n] = ref_act(act, s);
    }
  for (int ii = 0; ii < n_isas; ii++) {
    mp_kernels_set_isa(isas[ii]);
    CHECK_OK(mp_linear_act(NULL, x, rows, &t->w, with_bias ? bias : NULL, MP_F32, act, y1));
    CHECK_OK(mp_linear_act(p2, x, rows, &t->w, with_bias ? bias : NULL, MP_F32, act, y2));
    CHECKF(memcmp(y1, y2, (size_t)(rows * N) * 4) == 0,
           "%s: 1 and 2 threads differ (rows %lld out %lld in %lld bits %d)", mp_isa_name(isas[ii]), (long long)rows,
           (long long)N, (long long)K, t->w.bits);
    double worst = 0;
    for (int64_t i = 0; i < rows * N; i++) {
      double e = fabs(y1[i] - ref[i]) / (1.0 + fabs(ref[i]));
      if (!(e <= worst)) worst = e;
    }
    CHECKF(worst < 2e-5 * sqrt((double)K), "%s: error %g (rows %lld out %lld in %lld bits %d dt %s)",
           mp_isa_name(isas[ii]), worst, (long long)rows, (long long)N, (long long)K, t->w.bits,
           mp_dtype_name(t->w.bits ? t->w.scale_dtype : t->w.dtype));
  }
  mp_kernels_set_isa(MP_ISA_BEST);
  free(x);
  free(y1);
  free(y2);
  free(bias);
  free(ref);
}

static mp_pool *pool2;

static void test_linear_float(void) {
  const int64_t shapes[][3] = {{1, 1, 1},    {3, 5, 7},      {7, 33, 17},   {13, 50, 130},
                               {32, 96, 64}, {29, 130, 257}, {64, 40, 384}, {100, 70, 200}};
  mp_dtype dts[] = {MP_F32, MP_F16, MP_BF16};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int d = 0; d < 3; d++) {
      tw t;
      tw_make(&t, shapes[s][1], shapes[s][2], dts[d], 0, 0);
      check_linear(&t, shapes[s][0], (mp_act)(s % 7), s & 1, pool2);
      tw_free(&t);
    }
}

static void test_linear_quant(void) {
  int bits[] = {2, 3, 4, 5, 6, 8}, gss[] = {32, 64, 128};
  mp_dtype dts[] = {MP_F32, MP_F16, MP_BF16};
  int i = 0;
  for (int b = 0; b < 6; b++)
    for (int g = 0; g < 3; g++) {
      int64_t in = gss[g] * (1 + (i % 3)), out = 1 + (int64_t)(rnd() % 70), rows = 1 + rnd() % 40;
      tw t;
      tw_make(&t, out, in, dts[i % 3], bits[b], gss[g]);
      /* decoding is exact */
      float *dec = malloc((size_t)(out * in) * 4);
      for (int ii = 0; ii < n_isas; ii++) {
        mp_kernels_set_isa(isas[ii]);
        CHECK_OK(mp_weight_rows_f32(&t.w, 0, out, dec));
        CHECKF(memcmp(dec, t.ref, (size_t)(out * in) * 4) == 0, "%s: dequantized %d-bit g%d differs",
               mp_isa_name(isas[ii]), bits[b], gss[g]);
      }
      free(dec);
      check_linear(&t, rows, (mp_act)(i % 7), i & 1, pool2);
      tw_free(&t);
      i++;
    }
}

/* mp_linear_multi: the same values as one mp_linear per weight (batch-1 sizes run as one job,
 * larger ones one after another), float and quantized weights, with and without biases, 1 and 2
 * threads, on every ISA; mismatched inputs are refused. */
static void test_linear_multi(void) {
  tw t[3];
  tw_make(&t[0], 40, 96, MP_F32, 0, 0);
  tw_make(&t[1], 24, 96, MP_F16, 0, 0);
  tw_make(&t[2], 64, 96, MP_BF16, 4, 32);
  const mp_linear_weight *w[3] = {&t[0].w, &t[1].w, &t[2].w};
  float x[40 * 96], bias[64], want[3][40 * 64], got[3][40 * 64];
  for (int i = 0; i < 40 * 96; i++)
    x[i] = frand();
  for (int i = 0; i < 64; i++)
    bias[i] = frand();
  const void *b[3] = {bias, NULL, bias};
  const mp_dtype bd[3] = {MP_F32, MP_F32, MP_F32};
  float *ys[3] = {got[0], got[1], got[2]};
  mp_pool *p2 = NULL;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  mp_isa best = mp_kernels_set_isa(MP_ISA_BEST); /* isas: found by main */
  const int64_t rows[3] = {1, 7, 40};
  for (int ii = 0; ii < n_isas; ii++) {
    mp_kernels_set_isa(isas[ii]);
    for (int ri = 0; ri < 3; ri++)
      for (int th = 0; th < 2; th++) {
        mp_pool *p = th ? p2 : NULL;
        for (int i = 0; i < 3; i++)
          CHECK_OK(mp_linear(p, x, rows[ri], w[i], b[i], MP_F32, want[i]));
        CHECK_OK(mp_linear_multi(p, x, rows[ri], 3, w, b, bd, ys));
        for (int i = 0; i < 3; i++)
          CHECKF(!memcmp(want[i], got[i], (size_t)(rows[ri] * w[i]->out) * 4), "ISA %s rows %lld weight %d differs",
                 mp_isa_name(isas[ii]), (long long)rows[ri], i);
      }
  }
  mp_kernels_set_isa(best);
  tw other;
  tw_make(&other, 8, 64, MP_F32, 0, 0);
  const mp_linear_weight *bad[2] = {&t[0].w, &other.w};
  CHECK(mp_linear_multi(p2, x, 1, 2, bad, NULL, NULL, ys) == MP_ERR_INVALID_ARG);
  CHECK(mp_linear_multi(p2, x, 1, 5, w, NULL, NULL, ys) == MP_ERR_INVALID_ARG);
  tw_free(&other);
  for (int i = 0; i < 3; i++)
    tw_free(&t[i]);
  mp_pool_free(p2);
}

/* The float path's batch-composition invariance: every row count takes the GEMM, so a row's
 * outputs are the same bits alone, in a batch of 1..16 rows (the old dot-product range) and in a
 * large batch; pre-packed F32 panels (mp_linear_prepack) give the same bits as packing per call;
 * 1 and 2 threads; every vector ISA; F32, F16 and q8 weights, odd output counts. */
static void test_linear_batch_invariance(void) {
  tw t[3];
  tw_make(&t[0], 70, 200, MP_F32, 0, 0);
  tw_make(&t[1], 33, 200, MP_F16, 0, 0);
  tw_make(&t[2], 45, 192, MP_F32, 8, 64);
  enum { R = 40 };
  float x[R * 200], bias[70], full[R * 70], part[R * 70], one[70];
  for (int i = 0; i < R * 200; i++)
    x[i] = frand();
  for (int i = 0; i < 70; i++)
    bias[i] = frand();
  mp_pool *p2 = NULL;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  mp_isa best = mp_kernels_set_isa(MP_ISA_BEST);
  for (int ii = 0; ii < n_isas; ii++) {
    mp_kernels_set_isa(isas[ii]);
    for (int i = 0; i < 3; i++) {
      mp_linear_weight w = t[i].w;
      const int64_t N = w.out;
      CHECK_OK(mp_linear_act(p2, x, R, &w, bias, MP_F32, MP_ACT_GELU_ERF, full));
      const int64_t counts[] = {1, 2, 5, 11, 16, 17};
      for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        memset(part, 0xFF, sizeof part);
        CHECK_OK(mp_linear_act(c % 2 ? p2 : NULL, x + 3 * w.in, counts[c], &w, bias, MP_F32, MP_ACT_GELU_ERF, part));
        CHECKF(!memcmp(part, full + 3 * N, (size_t)(counts[c] * N) * 4),
               "ISA %s weight %d: %lld rows differ from the batch", mp_isa_name(isas[ii]), i, (long long)counts[c]);
      }
      size_t pb = mp_linear_panels_bytes(&w);
      CHECK((pb > 0) == (i == 0 && isas[ii] != MP_ISA_SCALAR));
      if (!pb) continue;
      float *pan = aligned_alloc(64, (pb + 63) / 64 * 64);
      REQUIRE(pan);
      CHECK_OK(mp_linear_prepack(&w, pan));
      CHECK(w.panels == pan && w.panel_nr > 0);
      memset(part, 0xFF, sizeof part);
      CHECK_OK(mp_linear_act(p2, x, R, &w, bias, MP_F32, MP_ACT_GELU_ERF, part));
      CHECKF(!memcmp(part, full, (size_t)(R * N) * 4), "ISA %s: pre-packed panels differ", mp_isa_name(isas[ii]));
      memset(one, 0xFF, sizeof one);
      CHECK_OK(mp_linear_act(NULL, x + 7 * w.in, 1, &w, bias, MP_F32, MP_ACT_GELU_ERF, one));
      CHECKF(!memcmp(one, full + 7 * N, (size_t)N * 4), "ISA %s: one row on the panels differs", mp_isa_name(isas[ii]));
      free(pan);
    }
  }
  /* a weight that is not F32 has no panels */
  CHECK(mp_linear_panels_bytes(&t[1].w) == 0);
  float dummy[64] __attribute__((aligned(64)));
  CHECK(mp_linear_prepack(&t[1].w, dummy) == MP_ERR_UNSUPPORTED);
  mp_kernels_set_isa(best);
  mp_pool_free(p2);
  for (int i = 0; i < 3; i++)
    tw_free(&t[i]);
}

static void test_embedding(void) {
  tw t;
  tw_make(&t, 50, 64, MP_BF16, 4, 32);
  int32_t ids[] = {3, 0, 49, 3};
  float out[4 * 64];
  CHECK_OK(mp_embedding_rows(&t.w, ids, 4, out));
  for (int i = 0; i < 4; i++)
    CHECK(memcmp(out + i * 64, t.ref + ids[i] * 64, 64 * 4) == 0);
  int32_t bad[] = {1, 50};
  CHECK(mp_embedding_rows(&t.w, bad, 2, out) == MP_ERR_INVALID_ARG);
  CHECK(strstr(mp_last_error(), "test.weight") != NULL);
  t.w.bits = 7;
  CHECK(mp_linear_weight_check(&t.w) == MP_ERR_UNSUPPORTED);
  t.w.bits = 4;
  t.w.in = 48;
  CHECK(mp_linear_weight_check(&t.w) == MP_ERR_FORMAT);
  tw_free(&t);
}

static void test_rowops(void) {
  const int64_t dims[] = {1, 7, 16, 33, 384, 1000};
  for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
    int64_t D = dims[di], R = 5;
    float *x = malloc((size_t)(R * D) * 4), *res = malloc((size_t)(R * D) * 4), *g = malloc((size_t)D * 4),
          *b = malloc((size_t)D * 4), *o1 = malloc((size_t)(R * D) * 4), *o2 = malloc((size_t)(R * D) * 4),
          *mask = malloc((size_t)D * 4);
    for (int64_t i = 0; i < R * D; i++) {
      x[i] = frand() * 3 + 0.5f;
      res[i] = frand();
    }
    for (int64_t i = 0; i < D; i++) {
      g[i] = frand();
      b[i] = frand();
      mask[i] = (i % 3 == 1) ? -INFINITY : 0.0f;
    }
    for (int ii = 0; ii < n_isas; ii++) {
      mp_kernels_set_isa(isas[ii]);
      const char *nm = mp_isa_name(isas[ii]);
      /* LayerNorm with residual, gamma, beta */
      mp_layernorm(NULL, x, res, R, D, g, b, 1e-12f, o1);
      mp_layernorm(pool2, x, res, R, D, g, b, 1e-12f, o2);
      CHECKF(memcmp(o1, o2, (size_t)(R * D) * 4) == 0, "%s layernorm thread counts differ", nm);
      double worst = 0;
      for (int64_t r = 0; r < R; r++) {
        double mu = 0, var = 0;
        for (int64_t i = 0; i < D; i++)
          mu += (double)x[r * D + i] + res[r * D + i];
        mu /= D;
        for (int64_t i = 0; i < D; i++) {
          double d = (double)x[r * D + i] + res[r * D + i] - mu;
          var += d * d;
        }
        var /= D;
        for (int64_t i = 0; i < D; i++) {
          double v = ((double)x[r * D + i] + res[r * D + i] - mu) / sqrt(var + 1e-12) * g[i] + b[i];
          double e = fabs(v - o1[r * D + i]);
          if (!(e <= worst)) worst = e;
        }
      }
      CHECKF(D == 1 || worst < 1e-5, "%s layernorm D=%lld error %g", nm, (long long)D, worst);
      /* softmax with mask */
      memcpy(o1, x, (size_t)(R * D) * 4);
      mp_softmax_rows(pool2, o1, R, D, mask);
      worst = 0;
      for (int64_t r = 0; r < R; r++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < D; i++)
          if (mask[i] == 0 && x[r * D + i] > mx) mx = x[r * D + i];
        for (int64_t i = 0; i < D; i++)
          if (mask[i] == 0) sum += exp(x[r * D + i] - mx);
        for (int64_t i = 0; i < D; i++) {
          double v = mask[i] == 0 ? exp(x[r * D + i] - mx) / sum : 0.0;
          double e = fabs(v - o1[r * D + i]);
          if (!(e <= worst)) worst = e;
        }
      }
      CHECKF(worst < 1e-6, "%s softmax D=%lld error %g", nm, (long long)D, worst);
      /* activations over a wide range */
      for (int a = 1; a <= MP_ACT_SIGMOID; a++) {
        for (int64_t i = 0; i < R * D; i++)
          o1[i] = x[i] * 4 - 2 + (float)(i % 13) - 6;
        memcpy(o2, o1, (size_t)(R * D) * 4);
        mp_activation(pool2, (mp_act)a, o1, R * D);
        worst = 0;
        for (int64_t i = 0; i < R * D; i++) {
          double e = fabs(ref_act((mp_act)a, o2[i]) - o1[i]);
          if (!(e <= worst)) worst = e;
        }
        CHECKF(worst < 2e-6, "%s activation %d error %g", nm, a, worst);
      }
    }
    mp_kernels_set_isa(MP_ISA_BEST);
    free(x);
    free(res);
    free(g);
    free(b);
    free(o1);
    free(o2);
    free(mask);
  }
}

static void test_conversions(void) {
  uint16_t h[37], bf[37];
  float a[37], b[37];
  for (int i = 0; i < 37; i++) {
    h[i] = (uint16_t)rnd();
    bf[i] = (uint16_t)rnd();
  }
  h[0] = 0x7C00;
  h[1] = 0x0001;
  h[2] = 0x8000;
  for (int ii = 0; ii < n_isas; ii++) {
    mp_kernels_set_isa(isas[ii]);
    mp_f16_to_f32_row(h, 37, a);
    mp_bf16_to_f32_row(bf, 37, b);
    for (int i = 0; i < 37; i++) {
      float r1 = mp_f16_to_f32(h[i]), r2 = mp_bf16_to_f32(bf[i]);
      CHECKF((isnan(r1) && isnan(a[i])) || memcmp(&r1, &a[i], 4) == 0, "f16 %04x", h[i]);
      CHECKF((isnan(r2) && isnan(b[i])) || memcmp(&r2, &b[i], 4) == 0, "bf16 %04x", bf[i]);
    }
  }
  mp_kernels_set_isa(MP_ISA_BEST);
}

static void test_attention(void) {
  const int64_t cfg[][5] = {{2, 5, 2, 8, 0}, {1, 37, 3, 32, 1}, {3, 70, 2, 64, 1}, {1, 130, 1, 16, 2}};
  for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
    int64_t B = cfg[ci][0], S = cfg[ci][1], H = cfg[ci][2], D = cfg[ci][3], mode = cfg[ci][4];
    int64_t HD = H * D, ld = HD + (mode == 2 ? 5 : 0);
    float *q = malloc((size_t)(B * S * ld) * 4), *k = malloc((size_t)(B * S * ld) * 4),
          *v = malloc((size_t)(B * S * ld) * 4), *o1 = calloc((size_t)(B * S * HD), 4),
          *o2 = calloc((size_t)(B * S * HD), 4), *bias = malloc((size_t)(H * S * S) * 4);
    uint8_t *mask = malloc((size_t)(B * S));
    for (int64_t i = 0; i < B * S * ld; i++) {
      q[i] = frand() * 2;
      k[i] = frand() * 2;
      v[i] = frand();
    }
    for (int64_t i = 0; i < H * S * S; i++)
      bias[i] = frand();
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < S; j++)
        mask[b * S + j] = (uint8_t)(j < S - b * 3); /* padding */
    mp_attention_args a = {.batch = B,
                           .seq_q = S,
                           .seq_k = S,
                           .heads = H,
                           .head_dim = D,
                           .q = q,
                           .k = k,
                           .v = v,
                           .ldq = ld,
                           .ldk = ld,
                           .ldv = ld,
                           .out = o1,
                           .scale = 1.0f / sqrtf((float)D),
                           .key_mask = mode ? mask : NULL};
    if (mode == 2) {
      a.bias = bias;
      a.bias_stride_h = S * S;
      a.bias_stride_q = S;
    }
    double *sc = malloc((size_t)S * 8);
    for (int ii = 0; ii < n_isas; ii++) {
      mp_kernels_set_isa(isas[ii]);
      a.out = o1;
      CHECK_OK(mp_attention(NULL, &a));
      a.out = o2;
      CHECK_OK(mp_attention(pool2, &a));
      CHECKF(memcmp(o1, o2, (size_t)(B * S * HD) * 4) == 0, "attention thread counts differ");
      double worst = 0;
      for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
          for (int64_t i = 0; i < S; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < S; j++) {
              double s = 0;
              for (int64_t d = 0; d < D; d++)
                s += (double)q[(b * S + i) * ld + h * D + d] * k[(b * S + j) * ld + h * D + d];
              s *= 1.0 / sqrt((double)D);
              if (mode == 2) s += bias[h * S * S + i * S + j];
              if (mode && !mask[b * S + j]) s = -INFINITY;
              sc[j] = s;
              if (s > mx) mx = s;
            }
            for (int64_t j = 0; j < S; j++)
              sum += sc[j] == -INFINITY ? 0 : exp(sc[j] - mx);
            for (int64_t d = 0; d < D; d++) {
              double acc = 0;
              for (int64_t j = 0; j < S; j++)
                if (sc[j] != -INFINITY) acc += exp(sc[j] - mx) / sum * v[(b * S + j) * ld + h * D + d];
              double e = fabs(acc - o1[(b * S + i) * HD + h * D + d]);
              if (!(e <= worst)) worst = e;
            }
          }
      CHECKF(worst < 1e-5, "%s attention cfg %zu error %g", mp_isa_name(isas[ii]), ci, worst);
    }
    mp_kernels_set_isa(MP_ISA_BEST);
    free(sc);
    free(q);
    free(k);
    free(v);
    free(o1);
    free(o2);
    free(bias);
    free(mask);
  }
}

typedef struct cnt_ctx {
  int64_t *hits;
} cnt_ctx;
static void count_task(void *v, int64_t t, int thread) {
  (void)thread;
  ((cnt_ctx *)v)->hits[t]++; /* each task index is run exactly once per mp_pool_run */
}

static void test_pool(void) {
  /* many back-to-back runs (the workers' spin/sleep hand-offs), each task exactly once, with
   * pauses long enough for the workers to fall asleep in between */
  for (int nt = 1; nt <= 4; nt++) {
    mp_pool *pp = NULL;
    REQUIRE(mp_pool_create(nt, &pp) == MP_OK);
    int64_t hits[37];
    cnt_ctx c = {hits};
    int bad = 0;
    for (int run = 0; run < 3000; run++) {
      int64_t n = 1 + run % 37;
      memset(hits, 0, sizeof hits);
      mp_pool_run(pp, n, count_task, &c);
      for (int64_t i = 0; i < n; i++)
        bad += hits[i] != 1;
      if (run % 1000 == 999) {
        struct timespec ts = {0, 3000000};
        nanosleep(&ts, NULL);
      }
    }
    CHECKF(bad == 0, "%d tasks not run exactly once (%d threads)", bad, nt);
    mp_pool_free(pp);
  }
  mp_pool *p = NULL;
  CHECK(mp_pool_create(-1, &p) == MP_ERR_INVALID_ARG);
  CHECK_OK(mp_pool_create(0, &p));
  CHECK(mp_pool_threads(p) >= 1);
  mp_pool_free(p);
  mp_pool_free(NULL);
  CHECK(mp_pool_threads(NULL) == 1);
}

/* The best path is the one the environment says this machine must have (MP_TEST_EXPECT_ISA,
 * set by the aarch64 cross tests under qemu), so that a detection failure cannot pass by testing
 * the scalar path alone. */
static void test_expected_isa(void) {
  const char *want = getenv("MP_TEST_EXPECT_ISA");
  CHECK(n_isas >= 1 && isas[0] == MP_ISA_SCALAR);
  if (want && *want)
    CHECKF(!strcmp(mp_isa_name(isas[n_isas - 1]), want), "best ISA path is %s, expected %s (features: %s)",
           mp_isa_name(isas[n_isas - 1]), want, mp_kernels_features());
}

int main(void) {
  find_isas();
  if (mp_pool_create(2, &pool2) != MP_OK) return 1;
  RUN(test_expected_isa);
  RUN(test_pool);
  RUN(test_conversions);
  RUN(test_linear_float);
  RUN(test_linear_quant);
  RUN(test_linear_multi);
  RUN(test_linear_batch_invariance);
  RUN(test_embedding);
  RUN(test_rowops);
  RUN(test_attention);
  mp_pool_free(pool2);
  return mp_test_done();
}
