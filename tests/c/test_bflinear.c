/* The bf16-tile path for F16 / BF16 weights (mp_bflinear_act, AMX-BF16): against a double
 * reference of the exact weight values within the split-precision bound; exact cases that fail
 * if a term of the split is dropped (activations that bf16 cannot hold, F16 weights that bf16
 * cannot hold); the same results with 1 and 2 threads and whatever the other rows of the batch;
 * odd shapes (M = 1, K not a multiple of 32, N = 1..7); the faithful f32 path as a second
 * reference; clear MP_ERR_UNSUPPORTED for other weights and where the tiles are not usable. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/kernels.h"
#include "testlib.h"
#include "tweight.h"

/* 1 when the tiles are usable; else checks that packing is refused clearly (what callers fall
 * back on) and returns 0 */
static int have_tiles(void) {
  if (mp_bflinear_available()) return 1;
  tw t;
  tw_make(&t, 2, 32, MP_BF16, 0, 0);
  mp_bfweight *b = NULL;
  CHECK(mp_bfweight_pack(&t.w, &b) == MP_ERR_UNSUPPORTED && b == NULL);
  tw_free(&t);
  return 0;
}

/* a random F16 / BF16 weight whose values are exactly representable: tw_make's float weight */
static void make_w(tw *t, int64_t N, int64_t K, mp_dtype dt) { tw_make(t, N, K, dt, 0, 0); }

static double gelu_d(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

static void check_case(int64_t M, int64_t N, int64_t K, mp_dtype dt, int with_bias, mp_act act, mp_pool *p2) {
  tw t;
  make_w(&t, N, K, dt);
  mp_bfweight *b = NULL;
  CHECK_OK(mp_bfweight_pack(&t.w, &b));
  if (!b) {
    tw_free(&t);
    return;
  }
  int64_t po, pi;
  mp_bfweight_shape(b, &po, &pi);
  CHECK(po == N && pi == K);
  CHECK(mp_bfweight_bytes(b) >= (size_t)(N * K) * (dt == MP_F16 ? 4 : 2));
  float *x = malloc((size_t)(M * K) * 4), *bias = malloc((size_t)N * 4);
  float *y1 = malloc((size_t)(M * N) * 4), *y2 = malloc((size_t)(M * N) * 4), *yf = malloc((size_t)(M * N) * 4);
  float *yr = malloc((size_t)N * 4);
  for (int64_t i = 0; i < M * K; i++)
    x[i] = frand() * 3.0f;
  for (int64_t i = 0; i < N; i++)
    bias[i] = frand();
  const void *bp = with_bias ? bias : NULL;
  /* outputs start as NaN: an output the kernels do not write cannot pass */
  memset(y1, 0xFF, (size_t)(M * N) * 4), memset(y2, 0xFF, (size_t)(M * N) * 4);
  CHECK_OK(mp_bflinear_act(NULL, x, M, b, bp, MP_F32, act, y1));
  CHECK_OK(mp_bflinear_act(p2, x, M, b, bp, MP_F32, act, y2));
  CHECKF(memcmp(y1, y2, (size_t)(M * N) * 4) == 0, "1 vs 2 threads differ (M=%lld N=%lld K=%lld)", (long long)M,
         (long long)N, (long long)K);
  /* each row alone: the same bits as in the batch */
  int same_rows = 1;
  for (int64_t m = 0; m < M; m += (M > 8 ? 5 : 1)) {
    memset(yr, 0xFF, (size_t)N * 4);
    CHECK_OK(mp_bflinear_act(p2, x + m * K, 1, b, bp, MP_F32, act, yr));
    if (memcmp(yr, y1 + m * N, (size_t)N * 4) != 0) same_rows = 0;
  }
  CHECKF(same_rows, "a row alone differs from the same row in the batch (M=%lld N=%lld K=%lld)", (long long)M,
         (long long)N, (long long)K);
  CHECK_OK(mp_linear_act(p2, x, M, &t.w, bp, MP_F32, act, yf));
  double worst = 0, worst_f = 0;
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < K; k++) {
        s += (double)x[m * K + k] * t.ref[n * K + k];
        a += fabs((double)x[m * K + k] * t.ref[n * K + k]);
      }
      if (with_bias) s += bias[n], a += fabs(bias[n]);
      if (act == MP_ACT_GELU_ERF) s = gelu_d(s);
      const double scale = a + 1e-30;
      const double e = fabs(y1[m * N + n] - s) / scale, ef = fabs(y1[m * N + n] - yf[m * N + n]) / scale;
      if (!(e <= worst)) worst = e; /* NaN sticks */
      if (!(ef <= worst_f)) worst_f = ef;
    }
  /* split bound 2^-16 (activations) + 2^-18 (F16's dropped lo x lo) + f32 accumulation; GELU's
   * slope is <= 1.13 and its own error (the vector erf) ~4e-7 absolute */
  const double bound = 3e-5 + (act == MP_ACT_GELU_ERF ? 1e-6 : 0);
  CHECKF(worst <= bound, "M=%lld N=%lld K=%lld %s: max error %.3g of sum|x w| (bound %.3g)", (long long)M, (long long)N,
         (long long)K, mp_dtype_name(dt), worst, bound);
  CHECKF(worst_f <= bound, "M=%lld N=%lld K=%lld %s: vs the f32 path %.3g of sum|x w|", (long long)M, (long long)N,
         (long long)K, mp_dtype_name(dt), worst_f);
  free(x), free(bias), free(y1), free(y2), free(yf), free(yr);
  mp_bfweight_free(b);
  tw_free(&t);
}

static void test_shapes(void) {
  if (!have_tiles()) return;
  mp_pool *p2;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  const int64_t shapes[][3] = {{1, 1, 1},    {1, 7, 33},    {3, 5, 64},    {2, 3, 31},   {17, 33, 100},
                               {16, 16, 32}, {33, 48, 384}, {40, 130, 96}, {5, 17, 300}, {64, 64, 1536}};
  const mp_dtype dts[] = {MP_BF16, MP_F16};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int d = 0; d < 2; d++) {
      check_case(shapes[s][0], shapes[s][1], shapes[s][2], dts[d], 0, MP_ACT_NONE, p2);
      check_case(shapes[s][0], shapes[s][1], shapes[s][2], dts[d], 1, MP_ACT_GELU_ERF, p2);
    }
  /* a task split over many row tasks and column tasks */
  check_case(600, 200, 72, MP_BF16, 1, MP_ACT_NONE, p2);
  mp_pool_free(p2);
}

/* Exact cases: 1 + 2^-10 is an f16 value and an f32 value, not a bf16 one. With x = 1 + 2^-10
 * and BF16 weights 1, y = K (1 + 2^-10) exactly only if the activations' second term is used;
 * with x = 1 and F16 weights 1 + 2^-10, only if the weights' second term is; with both, the
 * cross terms (the dropped lo x lo is 2^-20 per product). */
static void test_split_terms(void) {
  if (!have_tiles()) return;
  const int64_t K = 96, N = 3, M = 2;
  const float v = 1.0f + 1.0f / 1024.0f;
  for (int d = 0; d < 2; d++) {
    const mp_dtype dt = d ? MP_F16 : MP_BF16;
    uint16_t *w16 = malloc((size_t)(N * K) * 2);
    float *x = malloc((size_t)(M * K) * 4), y[M * N];
    memset(y, 0xFF, sizeof y);
    for (int64_t i = 0; i < N * K; i++)
      w16[i] = dt == MP_F16 ? mp_f32_to_f16(v) : mp_f32_to_bf16(1.0f);
    for (int64_t i = 0; i < M * K; i++)
      x[i] = dt == MP_F16 ? (i < K ? 1.0f : v) : v;
    mp_linear_weight w = {.name = "split", .out = N, .in = K, .dtype = dt, .data = w16};
    mp_bfweight *b = NULL;
    CHECK_OK(mp_bfweight_pack(&w, &b));
    CHECK_OK(mp_bflinear_act(NULL, x, M, b, NULL, MP_F32, MP_ACT_NONE, y));
    for (int64_t n = 0; n < N; n++) {
      if (dt == MP_BF16) {
        CHECKF(y[n] == (float)K * v, "BF16 weights, x = 1 + 2^-10: %.9g, want %.9g", y[n], (double)K * v);
      } else {
        CHECKF(y[n] == (float)K * v, "F16 weights 1 + 2^-10, x = 1: %.9g, want %.9g", y[n], (double)K * v);
        /* (1 + 2^-10)^2 = 1 + 2^-9 + 2^-20: without lo x lo, K (1 + 2^-9) */
        CHECKF(y[N + n] == (float)K * (1.0f + 1.0f / 512.0f), "F16 weights and x both 1 + 2^-10: %.9g", y[N + n]);
      }
    }
    mp_bfweight_free(b);
    free(w16), free(x);
  }
}

static void test_errors(void) {
  tw t;
  make_w(&t, 4, 32, MP_F32);
  mp_bfweight *b = (mp_bfweight *)&t; /* must be reset to NULL */
  CHECK(mp_bfweight_pack(&t.w, &b) == MP_ERR_UNSUPPORTED && b == NULL);
  CHECK(strstr(mp_last_error(), "F16 or BF16") != NULL);
  tw_free(&t);
  tw_make(&t, 4, 64, MP_F16, 8, 64);
  CHECK(mp_bfweight_pack(&t.w, &b) == MP_ERR_UNSUPPORTED && b == NULL);
  tw_free(&t);
  CHECK(mp_bflinear_act(NULL, NULL, 1, NULL, NULL, MP_F32, MP_ACT_NONE, NULL) == MP_ERR_INVALID_ARG);
  /* available exactly when the CPU reports AMX-BF16 (and the AVX-512 level is on) */
  const int feat = strstr(mp_kernels_features(), "amx-bf16") != NULL;
  CHECKF(mp_bflinear_available() == (feat && mp_kernels_isa() == MP_ISA_AVX512), "available %d, features '%s'",
         mp_bflinear_available(), mp_kernels_features());
  make_w(&t, 4, 32, MP_BF16);
  if (!mp_bflinear_available()) { /* this CPU: the clear refusal callers fall back on */
    CHECK(mp_bfweight_pack(&t.w, &b) == MP_ERR_UNSUPPORTED && b == NULL);
    CHECK(strstr(mp_last_error(), "AMX-BF16") != NULL);
  } else { /* turned off at run time: packing refused, a packed weight refused at call time */
    CHECK_OK(mp_bfweight_pack(&t.w, &b));
    int was = mp_kernels_set_amx(0);
    CHECK(!mp_bflinear_available());
    float x[32] = {0}, y[4];
    CHECK(mp_bflinear_act(NULL, x, 1, b, NULL, MP_F32, MP_ACT_NONE, y) == MP_ERR_UNSUPPORTED);
    mp_bfweight *b2 = NULL;
    CHECK(mp_bfweight_pack(&t.w, &b2) == MP_ERR_UNSUPPORTED && b2 == NULL);
    mp_kernels_set_amx(was);
    CHECK(mp_bflinear_act(NULL, x, 1, b, NULL, MP_F32, MP_ACT_NONE, y) == MP_OK);
    mp_bfweight_free(b);
  }
  tw_free(&t);
}

int main(void) {
  fprintf(stderr, "features: %s; bf16 tiles %s\n", mp_kernels_features(),
          mp_bflinear_available() ? "in use" : "not usable here (only the refusal is checked)");
  RUN(test_errors);
  RUN(test_split_terms);
  RUN(test_shapes);
  return mp_test_done();
}
