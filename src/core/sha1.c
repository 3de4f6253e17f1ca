/* SHA-1 (FIPS 180-4) for git blob ids; see sha1.h. */
#include "core/sha1.h"

#include <stdio.h>
#include <string.h>

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void block(mp_sha1 *c, const uint8_t *p) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20)
      f = (b & cc) | (~b & d), k = 0x5A827999u;
    else if (i < 40)
      f = b ^ cc ^ d, k = 0x6ED9EBA1u;
    else if (i < 60)
      f = (b & cc) | (b & d) | (cc & d), k = 0x8F1BBCDCu;
    else
      f = b ^ cc ^ d, k = 0xCA62C1D6u;
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d, d = cc, cc = rol(b, 30), b = a, a = t;
  }
  c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e;
}

void mp_sha1_init(mp_sha1 *c) {
  static const uint32_t iv[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  memcpy(c->h, iv, sizeof iv);
  c->len = 0;
  c->n = 0;
}

void mp_sha1_update(mp_sha1 *c, const void *data, size_t n) {
  const uint8_t *p = data;
  c->len += n;
  while (n) {
    size_t k = 64 - c->n < n ? 64 - c->n : n;
    memcpy(c->buf + c->n, p, k);
    c->n += k, p += k, n -= k;
    if (c->n == 64) {
      block(c, c->buf);
      c->n = 0;
    }
  }
}

void mp_sha1_final(mp_sha1 *c, uint8_t out[20]) {
  uint64_t bits = c->len * 8;
  uint8_t pad = 0x80;
  mp_sha1_update(c, &pad, 1);
  pad = 0;
  while (c->n != 56)
    mp_sha1_update(c, &pad, 1);
  uint8_t l[8];
  for (int i = 0; i < 8; i++)
    l[i] = (uint8_t)(bits >> (56 - 8 * i));
  mp_sha1_update(c, l, 8);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++)
      out[4 * i + j] = (uint8_t)(c->h[i] >> (24 - 8 * j));
}

void mp_git_blob_oid(const void *data, size_t n, char out[41]) {
  mp_sha1 c;
  mp_sha1_init(&c);
  char hdr[40];
  int k = snprintf(hdr, sizeof hdr, "blob %zu", n);
  mp_sha1_update(&c, hdr, (size_t)k + 1); /* with the NUL */
  mp_sha1_update(&c, data, n);
  uint8_t d[20];
  mp_sha1_final(&c, d);
  for (int i = 0; i < 20; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}
