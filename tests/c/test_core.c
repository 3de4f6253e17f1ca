/* Core services: JSON parser, SHA-256, float conversions, arena, atomic files. */
#include <stdlib.h>

#include "core/arena.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/strbuf.h"
#include "core/tensor.h"
#include "testlib.h"
#include <stdint.h>

static void sha256_vectors(void);
/* Known answers with both implementations (SHA extensions where the CPU has them, and the
 * portable one), and the two agree on every length 0..1100 and on pieces of random sizes. */
static void test_sha256(void) {
  sha256_vectors();
  mp_sha256_force_scalar(1);
  sha256_vectors();
  mp_sha256_force_scalar(0);
  static uint8_t data[1100];
  uint32_t r = 12345;
  for (size_t i = 0; i < sizeof data; i++)
    r = r * 1103515245u + 12345u, data[i] = (uint8_t)(r >> 16);
  for (size_t n = 0; n <= sizeof data; n++) {
    char a[65], b[65];
    mp_sha256_hex(data, n, a);
    mp_sha256_force_scalar(1);
    mp_sha256_hex(data, n, b);
    mp_sha256_force_scalar(0);
    CHECK_STREQ(a, b);
  }
  mp_sha256 c1, c2;
  uint8_t d1[32], d2[32];
  mp_sha256_init(&c1);
  mp_sha256_init(&c2);
  for (size_t off = 0, k = 1; off < sizeof data; off += k, k = k * 7 % 191 + 1) {
    size_t m = off + k > sizeof data ? sizeof data - off : k;
    mp_sha256_update(&c1, data + off, m);
    mp_sha256_force_scalar(1);
    mp_sha256_update(&c2, data + off, m);
    mp_sha256_force_scalar(0);
  }
  mp_sha256_final(&c1, d1);
  mp_sha256_final(&c2, d2);
  CHECK(memcmp(d1, d2, 32) == 0);
}

static void sha256_vectors(void) {
  char hex[65];
  mp_sha256_hex("", 0, hex);
  CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  mp_sha256_hex("abc", 3, hex);
  CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  mp_sha256_hex(m, strlen(m), hex);
  CHECK_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* one million 'a' fed in odd-sized pieces */
  mp_sha256 c;
  mp_sha256_init(&c);
  char buf[997];
  memset(buf, 'a', sizeof buf);
  size_t left = 1000000;
  while (left) {
    size_t k = left < sizeof buf ? left : sizeof buf;
    mp_sha256_update(&c, buf, k);
    left -= k;
  }
  uint8_t d[32];
  mp_sha256_final(&c, d);
  CHECK(d[0] == 0xcd && d[1] == 0xc7 && d[31] == 0xd0);
}

static void test_json_ok(void) {
  mp_arena a;
  mp_arena_init(&a, 0);
  const char *t = "{\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"n\": {}}";
  mp_json *j;
  CHECK_OK(mp_json_parse(t, strlen(t), "t", &a, &j));
  const mp_json *arr = mp_json_get(j, "a");
  REQUIRE(arr && arr->type == MP_JSON_ARRAY && arr->len == 5);
  CHECK(arr->items[0]->is_int && arr->items[0]->i == 1);
  CHECK(!arr->items[1]->is_int && arr->items[1]->num == -2500.0);
  CHECK(arr->items[2]->boolean == 1 && arr->items[3]->type == MP_JSON_BOOL && arr->items[4]->type == MP_JSON_NULL);
  CHECK_STREQ(mp_json_get_str(j, "s", ""), "x\xc3\xa9\xf0\x9f\x98\x80\n");
  CHECK(mp_json_get(j, "n")->type == MP_JSON_OBJECT);
  mp_arena_free(&a);
}

static void test_json_errors(void) {
  const char *bad[] = {"",    "{",     "[1,]",     "{\"a\" 1}", "\"abc",      "01", "1.",
                       "tru", "[1] x", "\"\x01\"", "\"\xff\"",  "{\"a\":1,}", "-",  "\"\\q\""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mp_arena a;
    mp_arena_init(&a, 0);
    mp_json *j;
    mp_status s = mp_json_parse(bad[i], strlen(bad[i]), "bad.json", &a, &j);
    CHECKF(s == MP_ERR_FORMAT, "input #%zu accepted", i);
    CHECKF(strstr(mp_last_error(), "bad.json:1:") != NULL, "message lacks position: %s", mp_last_error());
    mp_arena_free(&a);
  }
  /* deep nesting is bounded */
  char deep[2000];
  memset(deep, '[', sizeof deep);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j;
  CHECK(mp_json_parse(deep, sizeof deep, "deep", &a, &j) == MP_ERR_FORMAT);
  mp_arena_free(&a);
  /* line numbers */
  mp_arena_init(&a, 0);
  const char *t = "{\n  \"a\": 1,\n  \"b\": ?\n}";
  CHECK(mp_json_parse(t, strlen(t), "f.json", &a, &j) == MP_ERR_FORMAT);
  CHECKF(strstr(mp_last_error(), "f.json:3:8") != NULL, "%s", mp_last_error());
  mp_arena_free(&a);
}

/* mp_arena_reset keeps one block as large as all of a pass's blocks: the next pass of the same
 * sizes gets its buffers from it (the same addresses every pass after the first reset); zeroed
 * and uninitialized allocations are aligned and usable. */
static void test_arena_reuse(void) {
  mp_arena a;
  mp_arena_init(&a, 4096);
  unsigned char *p[3][3];
  for (int pass = 0; pass < 3; pass++) {
    for (int i = 0; i < 3; i++) {
      p[pass][i] = i == 1 ? mp_arena_alloc_uninit(&a, 100000, 64) : mp_arena_alloc_aligned(&a, 50000, 64);
      REQUIRE(p[pass][i] != NULL);
      CHECK(((uintptr_t)p[pass][i] & 63) == 0);
      if (i != 1) CHECK(p[pass][i][0] == 0 && p[pass][i][49999] == 0);
      memset(p[pass][i], 0x5a, i == 1 ? 100000 : 50000);
    }
    mp_arena_reset(&a);
  }
  for (int i = 0; i < 3; i++)
    CHECK(p[1][i] == p[2][i]);
  CHECK(p[1][1] == p[1][0] + 50048 || p[1][1] > p[1][0]); /* one block: increasing addresses */
  mp_arena_free(&a);
}

static void test_half(void) {
  /* exhaustive f16 round trip: every finite half converts to f32 and back unchanged */
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* NaN payloads */
    if (mp_f32_to_f16(mp_f16_to_f32((uint16_t)h)) != h) bad++;
  }
  CHECK(bad == 0);
  CHECK(mp_f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(mp_f32_to_f16(65520.0f) == 0x7C00); /* rounds to inf */
  CHECK(mp_f32_to_f16(65519.996f) == 0x7BFF);
  CHECK(mp_f32_to_f16(1.0f + 1.0f / 2048) == 0x3C00); /* tie -> even */
  CHECK(mp_f32_to_f16(1.0f + 3.0f / 2048) == 0x3C02); /* tie -> even (up) */
  CHECK(mp_f32_to_f16(5.9604645e-08f) == 0x0001);     /* smallest subnormal */
  CHECK(mp_f32_to_f16(2.9802322e-08f) == 0x0000);     /* half of it: tie -> 0 */
  CHECK(mp_f32_to_f16(4.4703484e-08f) == 0x0001);     /* 0.75 ulp -> 1 */
  CHECK(mp_f32_to_bf16(1.0f) == 0x3F80);
  CHECK(mp_f32_to_bf16(1.00390625f) == 0x3F80); /* tie -> even */
  CHECK(mp_f32_to_bf16(1.01171875f) == 0x3F82); /* tie -> even (up) */
  CHECK(mp_bf16_to_f32(0x3F80) == 1.0f);
}

static void test_arena_and_sb(void) {
  mp_arena a;
  mp_arena_init(&a, 128);
  for (int i = 0; i < 1000; i++) {
    char *p = mp_arena_alloc(&a, (size_t)(i % 300) + 1);
    REQUIRE(p != NULL);
    CHECK(((uintptr_t)p & 15) == 0);
  }
  void *big = mp_arena_alloc_aligned(&a, 1 << 20, 64);
  CHECK(big && ((uintptr_t)big & 63) == 0);
  mp_arena_reset(&a);
  CHECK(mp_arena_alloc(&a, 10) != NULL);
  mp_arena_free(&a);
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_json_str(&sb, "a\"b\\\n\x01\xff", 7);
  CHECK_STREQ(sb.buf, "\"a\\\"b\\\\\\n\\u0001\xEF\xBF\xBD\"");
  mp_sb_free(&sb);
}

static void test_atomic(void) {
  const char *d = mp_test_tmpdir();
  char *p = mp_path_join(d, "x.txt");
  CHECK_OK(mp_write_file_atomic(p, "hello", 5));
  mp_afile f;
  CHECK_OK(mp_afile_open(&f, p));
  CHECK_OK(mp_afile_write(&f, "partial", 7));
  mp_afile_abort(&f); /* original must survive */
  char *buf;
  size_t n;
  CHECK_OK(mp_read_file(p, &buf, &n, 100));
  CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
  free(buf);
  char hex[65];
  CHECK_OK(mp_sha256_file(p, hex));
  CHECK_STREQ(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  free(p);
}

int main(void) {
  RUN(test_sha256);
  RUN(test_json_ok);
  RUN(test_json_errors);
  RUN(test_half);
  RUN(test_arena_and_sb);
  RUN(test_arena_reuse);
  RUN(test_atomic);
  return mp_test_done();
}
