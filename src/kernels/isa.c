/* Run-time CPU feature detection and ISA selection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

#include "kernels/kernels_internal.h"

/* This machine's paths in rank order (index = level); g_n of them. */
static mp_isa g_ladder[3] = {MP_ISA_SCALAR};
static int g_n = 1;
static int g_cap = -1; /* level cap from MP_ISA / mp_kernels_set_isa */
static char g_features[256];
static int g_vnni, g_bf16; /* AVX-512 VNNI / BF16 usable (with AVX-512 F/BW/VL/DQ) */
static int g_dotprod;      /* aarch64 SDOT usable */
static int g_amx;          /* AMX-INT8 usable: CPU, OS state and the kernel's permission (x86-64 Linux) */
static int g_amx_bf16;     /* AMX-BF16 usable, the same way */
static int g_amx_on = 1;   /* the kernels may use AMX (MP_AMX=0 / mp_kernels_set_amx(0): not) */
__thread int mp_amx_cfg_key = -1;

#if defined(__x86_64__) || defined(__i386__)
/* AMX-TILE + AMX-INT8 on the CPU, the tile state enabled by the OS (XCR0 bits 17, 18), and the
 * process's permission to use it (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). */
/* Returns a bit set: 1 AMX-INT8, 2 AMX-BF16 (each with AMX-TILE). */
static int detect_amx(void) {
#if defined(__x86_64__) && defined(__linux__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0; /* OSXSAVE: xgetbv usable */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1)) return 0;
  const int kinds = ((d >> 25) & 1) | (((d >> 22) & 1) << 1);
  if (!kinds) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return 0;
  return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0 ? kinds : 0;
#else
  return 0;
#endif
}
#endif

static int level_of(mp_isa isa) {
  switch (isa) {
  case MP_ISA_SCALAR: return 0;
  case MP_ISA_AVX2:
  case MP_ISA_NEON: return 1;
  case MP_ISA_AVX512:
  case MP_ISA_NEON_DOTPROD: return 2;
  default: return 2;
  }
}

static void detect_once(void) {
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
  const int amx = detect_amx();
  g_amx = g_vnni && (amx & 1);
  g_amx_bf16 = g_bf16 && (amx & 2);
  const char *amx_env = getenv("MP_AMX");
  if (amx_env && !strcmp(amx_env, "0")) g_amx_on = 0;
  if (avx2 && f16c && mp_impl_avx2()) {
    g_ladder[g_n++] = MP_ISA_AVX2;
    if (a512 && mp_impl_avx512()) g_ladder[g_n++] = MP_ISA_AVX512;
  }
  snprintf(g_features, sizeof g_features, "%s%s%s%s%s%s%s%s", avx2 ? "avx2 fma " : "", f16c ? "f16c " : "",
           a512 ? "avx512f avx512bw avx512vl avx512dq " : "", (a512 && vnni) ? "avx512vnni " : "",
           (a512 && bf16) ? "avx512bf16 " : "", g_amx ? "amx-int8 " : "", g_amx_bf16 ? "amx-bf16 " : "",
           g_n == 1 ? "(no usable SIMD)" : "");
#elif defined(__aarch64__)
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  int asimd = (hw & HWCAP_ASIMD) != 0, dp = (hw & HWCAP_ASIMDDP) != 0;
#else
  int asimd = 1, dp = 0; /* ASIMD is architectural; dotprod unknown without HWCAP */
#endif
  g_dotprod = asimd && dp && mp_qimpl_neon_dot();
  if (asimd && mp_impl_neon()) {
    g_ladder[g_n++] = MP_ISA_NEON;
    if (g_dotprod) g_ladder[g_n++] = MP_ISA_NEON_DOTPROD;
  }
  snprintf(g_features, sizeof g_features, "%s%s", asimd ? "asimd " : "(no usable SIMD)", dp ? "asimddp " : "");
#else
  snprintf(g_features, sizeof g_features, "(no SIMD path for this architecture: scalar only)");
#endif
  size_t l = strlen(g_features);
  if (l && g_features[l - 1] == ' ') g_features[l - 1] = 0;
  if (g_cap < 0) {
    g_cap = 2;
    const char *e = getenv("MP_ISA");
    if (e && *e) {
      if (!strcmp(e, "scalar"))
        g_cap = 0;
      else if (!strcmp(e, "avx2") || !strcmp(e, "neon"))
        g_cap = 1;
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

int mp_cpu_amx_int8(void) {
  detect();
  return g_amx && g_amx_on;
}

int mp_cpu_amx_bf16(void) {
  detect();
  return g_amx_bf16 && g_amx_on;
}

int mp_kernels_set_amx(int on) {
  detect();
  int was = g_amx_on;
  g_amx_on = on != 0;
  return was;
}

int mp_kernels_has_amx(void) {
  detect();
  return g_amx;
}

int mp_cpu_neon_dotprod(void) {
  detect();
  return g_dotprod;
}

mp_isa mp_kernels_isa(void) {
  detect();
  int l = g_n - 1 < g_cap ? g_n - 1 : g_cap;
  return g_ladder[l];
}

mp_isa mp_kernels_set_isa(mp_isa max) {
  detect();
  g_cap = level_of(max);
  return mp_kernels_isa();
}

int mp_kernels_isas(mp_isa out[3]) {
  detect();
  for (int i = 0; i < g_n; i++)
    out[i] = g_ladder[i];
  return g_n;
}

const char *mp_isa_name(mp_isa isa) {
  switch (isa) {
  case MP_ISA_SCALAR: return "scalar";
  case MP_ISA_AVX2: return "avx2";
  case MP_ISA_AVX512: return "avx512";
  case MP_ISA_NEON: return "neon";
  case MP_ISA_NEON_DOTPROD: return "neon-dotprod";
  case MP_ISA_BEST: return "best";
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
  case MP_ISA_NEON:
  case MP_ISA_NEON_DOTPROD: return mp_impl_neon();
  default: return mp_impl_scalar();
  }
}
