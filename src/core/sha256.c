/* SHA-256 (FIPS 180-4) of buffers and files, hex digests (see sha256.h). */
#include "core/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void block(mp_sha256 *c, const uint8_t *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = h + S1 + ch + K[i] + w[i];
    uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
    uint32_t mj = (a & b) ^ (a & cc) ^ (b & cc);
    uint32_t t2 = S0 + mj;
    h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
  }
  c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void blocks_scalar(mp_sha256 *c, const uint8_t *p, size_t n) {
  for (; n; n--, p += 64)
    block(c, p);
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
/* The x86 SHA extensions (SHA-NI): four rounds per two sha256rnds2, the message schedule by
 * sha256msg1/msg2. State kept as ABEF / CDGH as those instructions want it. */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_shani(mp_sha256 *c, const uint8_t *p, size_t n) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i t = _mm_loadu_si128((const __m128i *)&c->h[0]);  /* A B C D (lane 0 = A) */
  __m128i s1 = _mm_loadu_si128((const __m128i *)&c->h[4]); /* E F G H */
  t = _mm_shuffle_epi32(t, 0xB1);                          /* C D A B -> lanes: B A D C */
  s1 = _mm_shuffle_epi32(s1, 0x1B);                        /* H G F E */
  __m128i s0 = _mm_alignr_epi8(t, s1, 8);                  /* ABEF */
  s1 = _mm_blend_epi16(s1, t, 0xF0);                       /* CDGH */
  for (; n; n--, p += 64) {
    const __m128i save0 = s0, save1 = s1;
    __m128i x[16];
    for (int g = 0; g < 16; g++) {
      if (g < 4)
        x[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
      else
        x[g] = _mm_sha256msg2_epu32(
            _mm_add_epi32(_mm_sha256msg1_epu32(x[g - 4], x[g - 3]), _mm_alignr_epi8(x[g - 1], x[g - 2], 4)), x[g - 1]);
      __m128i msg = _mm_add_epi32(x[g], _mm_loadu_si128((const __m128i *)&K[4 * g]));
      s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
      msg = _mm_shuffle_epi32(msg, 0x0E);
      s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }
  t = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
  s1 = _mm_shuffle_epi32(s1, 0xB1);  /* DCHG */
  s0 = _mm_blend_epi16(t, s1, 0xF0); /* DCBA */
  s1 = _mm_alignr_epi8(s1, t, 8);    /* HGFE */
  _mm_storeu_si128((__m128i *)&c->h[0], s0);
  _mm_storeu_si128((__m128i *)&c->h[4], s1);
}
#endif

static int g_force_scalar;
void mp_sha256_force_scalar(int on) { g_force_scalar = on; }

/* n whole 64-byte blocks, with the SHA extensions when the CPU has them. */
static void blocks(mp_sha256 *c, const uint8_t *p, size_t n) {
#if defined(__x86_64__)
  static int have = -1;
  if (have < 0) {
    /* CPUID leaf 7 EBX bit 29 = SHA extensions (not every compiler knows "sha" for
     * __builtin_cpu_supports); leaf 1 ECX bit 19 = SSE4.1 */
    unsigned ra, rb, rc, rd;
    int sha = __get_cpuid_count(7, 0, &ra, &rb, &rc, &rd) && (rb >> 29 & 1);
    int sse41 = __get_cpuid(1, &ra, &rb, &rc, &rd) && (rc >> 19 & 1);
    have = sha && sse41;
  }
  if (have && !g_force_scalar) {
    blocks_shani(c, p, n);
    return;
  }
#endif
  blocks_scalar(c, p, n);
}

void mp_sha256_init(mp_sha256 *c) {
  static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, H0, sizeof H0);
  c->total = 0;
  c->buf_len = 0;
}

void mp_sha256_update(mp_sha256 *c, const void *data, size_t n) {
  const uint8_t *p = data;
  c->total += n;
  if (c->buf_len) {
    size_t take = 64 - c->buf_len < n ? 64 - c->buf_len : n;
    memcpy(c->buf + c->buf_len, p, take);
    c->buf_len += take, p += take, n -= take;
    if (c->buf_len == 64) blocks(c, c->buf, 1), c->buf_len = 0;
  }
  if (n >= 64) blocks(c, p, n / 64), p += n / 64 * 64, n %= 64;
  if (n) memcpy(c->buf, p, n), c->buf_len = n;
}

void mp_sha256_final(mp_sha256 *c, uint8_t out[32]) {
  uint64_t bits = c->total * 8;
  uint8_t pad = 0x80;
  mp_sha256_update(c, &pad, 1);
  uint8_t z = 0;
  while (c->buf_len != 56)
    mp_sha256_update(c, &z, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (uint8_t)(bits >> (56 - 8 * i));
  mp_sha256_update(c, len, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24), out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8), out[4 * i + 3] = (uint8_t)c->h[i];
  }
}

static void to_hex(const uint8_t d[32], char out[65]) {
  static const char *hx = "0123456789abcdef";
  for (int i = 0; i < 32; i++)
    out[2 * i] = hx[d[i] >> 4], out[2 * i + 1] = hx[d[i] & 15];
  out[64] = 0;
}

void mp_sha256_hex(const void *data, size_t n, char out[65]) {
  mp_sha256 c;
  uint8_t d[32];
  mp_sha256_init(&c);
  mp_sha256_update(&c, data, n);
  mp_sha256_final(&c, d);
  to_hex(d, out);
}

mp_status mp_sha256_file(const char *path, char out[65]) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mp_err_errno(MP_ERR_IO, "%s: cannot open", path);
  mp_sha256 c;
  mp_sha256_init(&c);
  static _Thread_local uint8_t buf[1 << 16];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return mp_err_errno(MP_ERR_IO, "%s: read failed", path);
    }
    if (r == 0) break;
    mp_sha256_update(&c, buf, (size_t)r);
  }
  close(fd);
  uint8_t d[32];
  mp_sha256_final(&c, d);
  to_hex(d, out);
  return MP_OK;
}
