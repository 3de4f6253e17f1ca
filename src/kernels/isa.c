/* Run-time CPU feature detection and ISA selection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "kernels/kernels_internal.h"

static int g_detected = -1; /* best ISA the CPU supports */
static int g_cap = -1;      /* cap from MP_ISA / mp_kernels_set_isa */
static char g_features[256];
static int g_vnni, g_bf16; /* AVX-512 VNNI / BF16 usable (with AVX-512 F/BW/VL/DQ) */

static void detect_once(void) {
  int best = MP_ISA_SCALAR;
  g_features[0] = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  int f16c = 0, bf16 = 0, vnni = 0;
  unsigned a, b, c, d;
  if (__get_cpuid(1, &a, &b, &c, &d)) f16c = (c >> 29) & 1;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) vnni = (c >> 11) & 1;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) bf16 = (a >> 5) & 1;
  int a512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  g_vnni = a512 && vnni;
  g_bf16 = a512 && bf16;
  if (avx2 && f16c) best = MP_ISA_AVX2;
  if (best == MP_ISA_AVX2 && a512) best = MP_ISA_AVX512;
  snprintf(g_features, sizeof g_features, "%s%s%s%s%s%s", avx2 ? "avx2 fma " : "", f16c ? "f16c " : "",
           a512 ? "avx512f avx512bw avx512vl avx512dq " : "", (a512 && vnni) ? "avx512vnni " : "",
           (a512 && bf16) ? "avx512bf16 " : "", best == MP_ISA_SCALAR ? "(no usable SIMD)" : "");
#else
  snprintf(g_features, sizeof g_features, "(non-x86: scalar only)");
#endif
  size_t l = strlen(g_features);
  if (l && g_features[l - 1] == ' ') g_features[l - 1] = 0;
  if (best == MP_ISA_AVX2 && !mp_impl_avx2()) best = MP_ISA_SCALAR;
  if (best == MP_ISA_AVX512 && !mp_impl_avx512()) best = mp_impl_avx2() ? MP_ISA_AVX2 : MP_ISA_SCALAR;
  g_detected = best;
  if (g_cap < 0) {
    g_cap = MP_ISA_AVX512;
    const char *e = getenv("MP_ISA");
    if (e && *e) {
      if (!strcmp(e, "scalar"))
        g_cap = MP_ISA_SCALAR;
      else if (!strcmp(e, "avx2"))
        g_cap = MP_ISA_AVX2;
    }
  }
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void detect(void) { pthread_once(&g_once, detect_once); }

int mp_cpu_avx512_vnni(void) {
  detect();
  return g_vnni;
}

int mp_cpu_avx512_bf16(void) {
  detect();
  return g_bf16;
}

mp_isa mp_kernels_isa(void) {
  detect();
  return (mp_isa)(g_detected < g_cap ? g_detected : g_cap);
}

mp_isa mp_kernels_set_isa(mp_isa max) {
  detect();
  g_cap = (int)max;
  return mp_kernels_isa();
}

const char *mp_isa_name(mp_isa isa) {
  switch (isa) {
  case MP_ISA_SCALAR: return "scalar";
  case MP_ISA_AVX2: return "avx2";
  case MP_ISA_AVX512: return "avx512";
  }
  return "?";
}

const char *mp_kernels_features(void) {
  detect();
  return g_features;
}

const mp_isa_impl *mp_impl_current(void) {
  switch (mp_kernels_isa()) {
  case MP_ISA_AVX512: return mp_impl_avx512();
  case MP_ISA_AVX2: return mp_impl_avx2();
  default: return mp_impl_scalar();
  }
}
