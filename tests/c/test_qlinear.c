/* Integer (fast-mode) matmul, mp_qlinear_act: every ISA path (scalar reference, AVX2, AVX-512
 * VNNI where the CPU has them) bit-identical to each other; against an independent double
 * reference of the stated semantics (activations quantized per row and group here, in the
 * test, in blocks of 32 inputs); within the activation-rounding bound of the float (MLX-faithful) result; the same
 * with 1 and 2 threads and whatever the other rows of the batch are; every bit width, group
 * sizes 32/64/128, odd shapes (M = 1, K not a multiple of 64, N = 1..7); mp_qlinear_chain against
 * the two products it fuses. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "kernels/kernels.h"
#include "testlib.h"
#include "tweight.h"

/* Independent quantization of one row (double arithmetic where it cannot change the result):
 * per block z = (max+min)/2, d = (max-min)/254, xq = round-half-even((x - z) * (254/(max-min)))
 * in float; xhat = d*xq + z. *dmax: the largest d (the rounding bound is d/2 per element). */
static void ref_quant(const float *x, int64_t K, int g, double *xhat, double *dblk) {
  for (int64_t k0 = 0; k0 < K; k0 += g) {
    float mx = -FLT_MAX, mn = FLT_MAX;
    for (int i = 0; i < g; i++)
      mx = fmaxf(mx, x[k0 + i]), mn = fminf(mn, x[k0 + i]);
    if (mx == mn) {
      for (int i = 0; i < g; i++)
        xhat[k0 + i] = mx;
      dblk[k0 / g] = 0;
      continue;
    }
    float z = (mx + mn) * 0.5f, inv = 254.0f / (mx - mn), d = (mx - mn) / 254.0f;
    for (int i = 0; i < g; i++)
      xhat[k0 + i] = (double)d * (double)nearbyintf((x[k0 + i] - z) * inv) + z;
    dblk[k0 / g] = d;
  }
}

static int max_ulp_ok(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], 4) != 0) return 0;
  return 1;
}

/* One weight, one input: every ISA bit-identical, double reference, faithful bound, threads. */
static void check_case(int64_t M, int64_t N, int64_t K, int bits, int gs, mp_dtype sdt, int with_bias, mp_act act,
                       mp_pool *p2) {
  tw t;
  tw_make(&t, N, K, sdt, bits, gs);
  mp_qweight *q = NULL;
  CHECK_OK(mp_qweight_pack(&t.w, &q));
  if (!q) {
    tw_free(&t);
    return;
  }
  float *x = malloc((size_t)(M * K) * 4), *bias = malloc((size_t)N * 4);
  float *y[3], *y2 = malloc((size_t)(M * N) * 4), *yf = malloc((size_t)(M * N) * 4);
  double *xhat = malloc((size_t)K * sizeof(double)), *dblk = malloc((size_t)K * sizeof(double));
  for (int64_t i = 0; i < M * K; i++)
    x[i] = frand() * (1 + (i % 7 == 0) * 8);  /* a few larger values */
  if (M > 2) memset(x + K, 0, (size_t)K * 4); /* an all-zero row */
  for (int64_t i = 0; i < N; i++)
    bias[i] = frand();
  mp_isa best = mp_kernels_set_isa(MP_ISA_BEST), isas[3];
  int n = 0, n_isas = mp_kernels_isas(isas);
  for (int ii = 0; ii < n_isas; ii++) {
    mp_isa isa = isas[ii];
    mp_kernels_set_isa(isa);
    y[n] = malloc((size_t)(M * N) * 4);
    CHECK_OK(mp_qlinear_act(NULL, x, M, q, with_bias ? bias : NULL, MP_F32, act, y[n]));
    if (n > 0 && act != MP_ACT_NONE) { /* the fused activation is the float kernels' (2e-6) */
      double e = 0;
      for (int64_t i = 0; i < M * N; i++)
        e = fmax(e, fabs((double)y[0][i] - y[n][i]));
      CHECKF(e < 4e-6, "ISA %s: activation differs from scalar by %.3g", mp_isa_name(isa), e);
    } else if (n > 0)
      CHECKF(max_ulp_ok(y[0], y[n], M * N), "ISA %s (%s) differs from scalar: M=%lld N=%lld K=%lld bits=%d g=%d",
             mp_isa_name(isa), mp_qlinear_path(), (long long)M, (long long)N, (long long)K, bits, gs);
    n++;
  }
  mp_kernels_set_isa(best);
  /* with AMX-INT8 the best level's integer kernel is AMX: the VNNI kernel beside it, same bits */
  if (mp_kernels_has_amx() && best == MP_ISA_AVX512) {
    float *yv = malloc((size_t)(M * N) * 4);
    int was = mp_kernels_set_amx(0);
    CHECK_OK(mp_qlinear_act(NULL, x, M, q, with_bias ? bias : NULL, MP_F32, act, yv));
    mp_kernels_set_amx(was);
    CHECKF((act != MP_ACT_NONE || max_ulp_ok(y[0], yv, M * N)) && max_ulp_ok(y[n - 1], yv, M * N),
           "VNNI and AMX / scalar differ: M=%lld N=%lld K=%lld bits=%d g=%d", (long long)M, (long long)N, (long long)K,
           bits, gs);
    free(yv);
  }
  /* 2 threads */
  CHECK_OK(mp_qlinear_act(p2, x, M, q, with_bias ? bias : NULL, MP_F32, act, y2));
  CHECKF(max_ulp_ok(y[n - 1], y2, M * N), "2 threads differ: M=%lld N=%lld K=%lld bits=%d g=%d", (long long)M,
         (long long)N, (long long)K, bits, gs);
  /* batch composition: the last row alone equals the last row of the batch */
  if (M > 1) {
    float *yl = malloc((size_t)N * 4);
    CHECK_OK(mp_qlinear_act(p2, x + (M - 1) * K, 1, q, with_bias ? bias : NULL, MP_F32, act, yl));
    CHECK(max_ulp_ok(yl, y[n - 1] + (M - 1) * N, N));
    free(yl);
  }
  /* the float (faithful) result, for the error bound */
  CHECK_OK(mp_linear_act(p2, x, M, &t.w, with_bias ? bias : NULL, MP_F32, MP_ACT_NONE, yf));
  double worst_ref = 0, worst_bound = 0;
  const int ab = gs > 32 ? 32 : gs; /* activation blocks: at most 32 inputs (kernels.h) */
  for (int64_t r = 0; r < M; r++) {
    ref_quant(x + r * K, K, ab, xhat, dblk);
    for (int64_t o = 0; o < N; o++) {
      double s = 0, mag = 0, bound = 0;
      for (int64_t k = 0; k < K; k++) {
        double wv = t.ref[o * K + k];
        s += wv * xhat[k];
        mag += fabs(wv * xhat[k]);
      }
      for (int64_t k = 0; k < K; k++) /* |x - xhat| <= d/2 per element */
        bound += fabs(t.ref[o * K + k]) * dblk[k / ab] * 0.5000001;
      if (with_bias) s += bias[o];
      double got = y[0][r * N + o];
      if (act == MP_ACT_NONE) {
        double e = fabs(got - s) / (mag + fabs(with_bias ? bias[o] : 0) + 1e-30);
        if (e > worst_ref) worst_ref = e;
        double ef = fabs(got - yf[r * N + o]) - bound - 1e-5 * (mag + 1);
        if (ef > worst_bound) worst_bound = ef;
      }
    }
  }
  CHECKF(worst_ref < 1e-6, "vs double reference: relative error %.3g (M=%lld N=%lld K=%lld bits=%d g=%d)", worst_ref,
         (long long)M, (long long)N, (long long)K, bits, gs);
  CHECKF(worst_bound <= 0, "vs float result: exceeds the activation-rounding bound by %.3g (bits=%d g=%d)", worst_bound,
         bits, gs);
  for (int i = 0; i < n; i++)
    free(y[i]);
  free(y2);
  free(yf);
  free(xhat);
  free(dblk);
  free(x);
  free(bias);
  mp_qweight_free(q);
  tw_free(&t);
}

static void test_qlinear_widths(void) {
  mp_pool *p2 = NULL;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  static const int bits[] = {2, 3, 4, 5, 6, 8};
  static const int gss[] = {32, 64, 128};
  static const mp_dtype sdt[] = {MP_F32, MP_F16, MP_BF16};
  for (int b = 0; b < 6; b++)
    for (int g = 0; g < 3; g++)
      check_case(9, 70, 384, bits[b], gss[g], sdt[(b + g) % 3], (b + g) % 2, MP_ACT_NONE, p2);
  mp_pool_free(p2);
}

static void test_qlinear_shapes(void) {
  mp_pool *p2 = NULL;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  for (int64_t N = 1; N <= 7; N++)
    check_case(1, N, 96, 8, 32, MP_F16, 1, MP_ACT_NONE, p2); /* K = 96 */
  static const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 17, 66};
  for (int i = 0; i < 8; i++)
    check_case(Ms[i], 33, 160, 4, 32, MP_F32, 1, MP_ACT_NONE, p2); /* K = 160 */
  check_case(130, 100, 192, 4, 64, MP_BF16, 1, MP_ACT_NONE, p2);
  check_case(3, 40, 256, 3, 128, MP_F32, 0, MP_ACT_NONE, p2);
  /* fused activations: ISA / thread / batch identity */
  check_case(6, 45, 128, 8, 64, MP_F32, 1, MP_ACT_GELU_ERF, p2);
  check_case(6, 45, 128, 4, 64, MP_F32, 1, MP_ACT_TANH, p2);
  mp_pool_free(p2);
}

/* A non-finite activation poisons only the outputs of its own row. */
static void test_qlinear_nonfinite(void) {
  tw t;
  tw_make(&t, 20, 64, MP_F32, 8, 32);
  mp_qweight *q = NULL;
  REQUIRE(mp_qweight_pack(&t.w, &q) == MP_OK);
  float x[3 * 64], y[3 * 20];
  for (int i = 0; i < 3 * 64; i++)
    x[i] = frand();
  x[64 + 5] = INFINITY;
  mp_isa best = mp_kernels_set_isa(MP_ISA_BEST), isas[3];
  int n_isas = mp_kernels_isas(isas);
  for (int ii = 0; ii < n_isas; ii++) {
    mp_kernels_set_isa(isas[ii]);
    CHECK_OK(mp_qlinear_act(NULL, x, 3, q, NULL, MP_F32, MP_ACT_NONE, y));
    for (int o = 0; o < 20; o++) {
      CHECK(isfinite(y[o]) && isfinite(y[40 + o]));
      CHECK(isnan(y[20 + o]));
    }
  }
  mp_kernels_set_isa(best);
  mp_qweight_free(q);
  tw_free(&t);
}

/* mp_qlinear_multi gives what separate calls give, with and without biases. */
static void test_qlinear_multi(void) {
  tw t[3];
  mp_qweight *q[3];
  const int64_t outs[3] = {40, 64, 7};
  for (int i = 0; i < 3; i++) {
    tw_make(&t[i], outs[i], 128, MP_F16, i == 1 ? 4 : 8, 64);
    REQUIRE(mp_qweight_pack(&t[i].w, &q[i]) == MP_OK);
  }
  mp_pool *p2 = NULL;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  float x[11 * 128], bias[64], y1[3][11 * 64], y2[3][11 * 64];
  for (int i = 0; i < 11 * 128; i++)
    x[i] = frand();
  for (int i = 0; i < 64; i++)
    bias[i] = frand();
  const void *b[3] = {bias, NULL, bias};
  mp_dtype bd[3] = {MP_F32, MP_F32, MP_F32};
  float *ys[3] = {y2[0], y2[1], y2[2]};
  for (int i = 0; i < 3; i++)
    CHECK_OK(mp_qlinear_act(p2, x, 11, q[i], b[i], MP_F32, MP_ACT_NONE, y1[i]));
  CHECK_OK(mp_qlinear_multi(p2, x, 11, 3, (const mp_qweight *const *)q, b, bd, MP_ACT_NONE, ys));
  for (int i = 0; i < 3; i++)
    CHECK(memcmp(y1[i], y2[i], (size_t)(11 * outs[i]) * 4) == 0);
  tw bad;
  tw_make(&bad, 8, 96, MP_F32, 8, 32);
  mp_qweight *qb = NULL;
  REQUIRE(mp_qweight_pack(&bad.w, &qb) == MP_OK);
  const mp_qweight *mixed[2] = {q[0], qb};
  CHECK(mp_qlinear_multi(p2, x, 11, 2, mixed, NULL, NULL, MP_ACT_NONE, ys) == MP_ERR_INVALID_ARG);
  mp_qweight_free(qb);
  tw_free(&bad);
  for (int i = 0; i < 3; i++)
    mp_qweight_free(q[i]), tw_free(&t[i]);
  mp_pool_free(p2);
}

/* mp_qlinear_chain: bit-identical to the two products one after the other (the intermediate
 * quantized tile by tile), on every ISA, with AMX on and off, 1 and 2 threads; rows that are all
 * zero (constant blocks) and rows with a NaN included; a chain it cannot run is refused. */
static void chain_case(int64_t M, int64_t H, int64_t I, int bits, int gs, mp_act act, int with_bias, mp_pool *p2) {
  tw t1, t2;
  tw_make(&t1, I, H, MP_F16, bits, gs);
  tw_make(&t2, 24, I, MP_F16, bits, gs);
  mp_qweight *q1 = NULL, *q2 = NULL;
  REQUIRE(mp_qweight_pack(&t1.w, &q1) == MP_OK && mp_qweight_pack(&t2.w, &q2) == MP_OK);
  CHECK(mp_qlinear_chain_ok(q1, q2));
  float *x = malloc((size_t)(M * H) * 4), *mid = malloc((size_t)(M * I) * 4), *b1 = malloc((size_t)I * 4);
  float *want = malloc((size_t)(M * 24) * 4), *got = malloc((size_t)(M * 24) * 4), b2[24];
  for (int64_t i = 0; i < M * H; i++)
    x[i] = frand() * (1 + (i % 5 == 0) * 6);
  if (M > 2) memset(x + H, 0, (size_t)H * 4); /* with no bias: a constant (zero) intermediate row */
  if (M > 3) x[3 * H + 5] = NAN;              /* a row of NaN outputs */
  for (int64_t i = 0; i < I; i++)
    b1[i] = frand();
  for (int i = 0; i < 24; i++)
    b2[i] = frand();
  const void *bb1 = with_bias ? b1 : NULL, *bb2 = with_bias ? b2 : NULL;
  mp_isa best = mp_kernels_set_isa(MP_ISA_BEST), isas[3];
  int n_isas = mp_kernels_isas(isas);
  for (int ii = 0; ii < n_isas; ii++) {
    for (int amx = 0; amx < 2; amx++) {
      if (amx && !(mp_kernels_has_amx() && isas[ii] == MP_ISA_AVX512)) continue;
      mp_kernels_set_isa(isas[ii]);
      int was = mp_kernels_set_amx(amx);
      for (int th = 0; th < 2; th++) {
        mp_pool *p = th ? p2 : NULL;
        CHECK_OK(mp_qlinear_act(p, x, M, q1, bb1, MP_F32, act, mid));
        CHECK_OK(mp_qlinear_act(p, mid, M, q2, bb2, MP_F32, MP_ACT_NONE, want));
        CHECK_OK(mp_qlinear_chain(p, x, M, q1, bb1, MP_F32, act, q2, bb2, MP_F32, got));
        CHECKF(!memcmp(want, got, (size_t)(M * 24) * 4),
               "chain differs from two products: ISA %s (%s) threads %d M=%lld H=%lld I=%lld bits=%d g=%d act=%d",
               mp_isa_name(isas[ii]), mp_qlinear_path(), th + 1, (long long)M, (long long)H, (long long)I, bits, gs,
               (int)act);
      }
      mp_kernels_set_amx(was);
    }
  }
  mp_kernels_set_isa(best);
  free(x), free(mid), free(b1), free(want), free(got);
  mp_qweight_free(q1), mp_qweight_free(q2);
  tw_free(&t1), tw_free(&t2);
}

static void test_qlinear_chain(void) {
  mp_pool *p2 = NULL;
  REQUIRE(mp_pool_create(2, &p2) == MP_OK);
  chain_case(1, 64, 64, 8, 64, MP_ACT_GELU_ERF, 1, p2);
  chain_case(5, 96, 128, 4, 32, MP_ACT_GELU_ERF, 0, p2);
  chain_case(17, 128, 256, 8, 128, MP_ACT_RELU, 1, p2);
  chain_case(40, 128, 192, 3, 64, MP_ACT_NONE, 0, p2);
  chain_case(70, 128, 128, 6, 64, MP_ACT_GELU_TANH, 1, p2);
  /* a chain the kernel cannot run: the first product's outputs are not the second's inputs */
  tw a, b;
  tw_make(&a, 64, 64, MP_F16, 8, 64);
  tw_make(&b, 8, 96, MP_F16, 8, 32);
  mp_qweight *qa = NULL, *qb = NULL;
  REQUIRE(mp_qweight_pack(&a.w, &qa) == MP_OK && mp_qweight_pack(&b.w, &qb) == MP_OK);
  float x[64] = {0}, y[8];
  CHECK(!mp_qlinear_chain_ok(qa, qb) && !mp_qlinear_chain_ok(NULL, qb));
  CHECK(mp_qlinear_chain(p2, x, 1, qa, NULL, MP_F32, MP_ACT_NONE, qb, NULL, MP_F32, y) == MP_ERR_UNSUPPORTED);
  mp_qweight_free(qa), mp_qweight_free(qb);
  tw_free(&a), tw_free(&b);
  mp_pool_free(p2);
}

static void test_qlinear_errors(void) {
  tw t;
  tw_make(&t, 8, 64, MP_F32, 0, 0);
  mp_qweight *q = (mp_qweight *)1;
  CHECK(mp_qweight_pack(&t.w, &q) == MP_ERR_UNSUPPORTED && q == NULL);
  CHECK(strstr(mp_last_error(), "test.weight") != NULL);
  tw_free(&t);
  tw_make(&t, 64, 64, MP_F32, 4, 32);
  REQUIRE(mp_qweight_pack(&t.w, &q) == MP_OK);
  CHECK(mp_qweight_bytes(q) >= 64 * 64 && mp_qweight_bytes(q) < 64 * 64 * 2); /* not an f32 copy */
  float x[64] = {0}, y[64];
  CHECK(mp_qlinear_act(NULL, x, -1, q, NULL, MP_F32, MP_ACT_NONE, y) == MP_ERR_INVALID_ARG);
  CHECK(mp_qlinear_act(NULL, x, 1, q, x, MP_U32, MP_ACT_NONE, y) == MP_ERR_UNSUPPORTED);
  CHECK(mp_qlinear_act(NULL, x, 0, q, NULL, MP_F32, MP_ACT_NONE, y) == MP_OK);
  mp_qweight_free(q);
  mp_qweight_free(NULL);
  tw_free(&t);
}

/* The best integer kernel is the one the environment says this machine must have
 * (MP_TEST_EXPECT_ISA, set by the aarch64 cross tests under qemu: "neon-dotprod" or "neon"). */
static void test_expected_path(void) {
  const char *want = getenv("MP_TEST_EXPECT_ISA");
  mp_isa isas[3];
  int n = mp_kernels_isas(isas);
  CHECK(n >= 1 && isas[0] == MP_ISA_SCALAR);
  if (want && *want) {
    mp_kernels_set_isa(MP_ISA_BEST);
    CHECKF(!strcmp(mp_isa_name(isas[n - 1]), want) && !strcmp(mp_qlinear_path(), want),
           "best ISA %s, integer kernel %s, expected %s (features: %s)", mp_isa_name(isas[n - 1]), mp_qlinear_path(),
           want, mp_kernels_features());
  }
}

int main(void) {
  fprintf(stderr, "features: %s; integer kernel: %s%s\n", mp_kernels_features(), mp_qlinear_path(),
          mp_kernels_has_amx() ? " (also compared: the VNNI kernel)" : "");
  RUN(test_expected_path);
  RUN(test_qlinear_widths);
  RUN(test_qlinear_shapes);
  RUN(test_qlinear_nonfinite);
  RUN(test_qlinear_multi);
  RUN(test_qlinear_chain);
  RUN(test_qlinear_errors);
  return mp_test_done();
}
