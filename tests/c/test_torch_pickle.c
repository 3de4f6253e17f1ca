/* Torch checkpoint reader: restricted unpickler, ZIP reader, tensor resolution.
 * Hand-built inputs here; tests/py/test_torch_pickle.py checks real torch.save output through
 * the --dump mode of this executable:
 *   test_torch_pickle --dump FILE   prints [{"name","dtype","shape","sha256"}...] as JSON, or on
 *                                   failure {"status","error"} with exit code 10 + status. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/sha256.h"
#include "core/strbuf.h"
#include "format/torch_pickle.h"
#include "format/zip.h"
#include "testlib.h"

/* ---------------------------------------------------------------- dump mode */
static int dump(const char *path) {
  mp_torch_file *tf;
  mp_status s = mp_torch_open(path, &tf);
  mp_sb sb;
  mp_sb_init(&sb);
  if (s != MP_OK) {
    mp_sb_puts(&sb, "{\"status\": ");
    mp_sb_json_str(&sb, mp_status_name(s), strlen(mp_status_name(s)));
    mp_sb_puts(&sb, ", \"error\": ");
    mp_sb_json_str(&sb, mp_last_error(), strlen(mp_last_error()));
    mp_sb_puts(&sb, "}\n");
    fputs(sb.buf, stdout);
    mp_sb_free(&sb);
    return 10 + (int)s;
  }
  mp_sb_puts(&sb, "[");
  for (size_t i = 0; i < mp_torch_count(tf); i++) {
    const mp_tensor *t = mp_torch_at(tf, i);
    char hex[65];
    mp_sha256_hex(t->data, t->nbytes, hex);
    mp_sb_puts(&sb, i ? ",\n {\"name\": " : "\n {\"name\": ");
    mp_sb_json_str(&sb, t->name, strlen(t->name));
    mp_sb_printf(&sb, ", \"dtype\": \"%s\", \"shape\": [", mp_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
      mp_sb_printf(&sb, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    mp_sb_printf(&sb, "], \"nbytes\": %zu, \"contiguous\": %d, \"found\": %d, \"sha256\": \"%s\"}", t->nbytes,
                 mp_tensor_is_contiguous(t), mp_torch_find(tf, t->name) == t, hex);
  }
  mp_sb_puts(&sb, "\n]\n");
  fputs(sb.buf, stdout);
  mp_sb_free(&sb);
  mp_torch_close(tf);
  return 0;
}

/* ---------------------------------------------------------------- pickles */
#define PK(s) (const uint8_t *)(s), sizeof(s) - 1

static mp_status check(const uint8_t *p, size_t n) { return mp_torch_check_pickle(p, n, "test.pkl"); }

static void test_pickle_state_dict_ok(void) {
  /* {'w': _rebuild_tensor_v2(pid('storage', FloatStorage, '0', 'cpu', 4), 0, (2, 2), (2, 1), False, OrderedDict())} */
  static const char ok[] = "\x80\x02}q\x00X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
                           "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                           "0X\x03\x00\x00\x00"
                           "cpuK\x04tQ"
                           "K\x00K\x02K\x02\x86K\x02K\x01\x86\x89"
                           "ccollections\nOrderedDict\n)RtRs.";
  CHECK_OK(check(PK(ok)));
  /* every truncation fails cleanly */
  for (size_t n = 0; n + 1 < sizeof ok - 1; n++)
    CHECK(check((const uint8_t *)ok, n) != MP_OK);
}

static void expect(const char *what, mp_status got, mp_status want, const char *needle) {
  CHECKF(got == want, "%s: got %s (%s), want %s", what, mp_status_name(got), mp_last_error(), mp_status_name(want));
  if (needle)
    CHECKF(strstr(mp_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, mp_last_error(), needle);
}

static void test_pickle_malicious(void) {
  expect("os.system", check(PK("cos\nsystem\n(S'touch /tmp/x'\ntR.")), MP_ERR_SECURITY, "'os.system'");
  expect("posix.system",
         check(PK("\x80\x02"
                  "cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.")),
         MP_ERR_SECURITY, "'posix.system'");
  expect("builtins.eval",
         check(PK("\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x08"
                  "builtins\x94\x8c\x04"
                  "eval\x94\x93\x94"
                  "\x8c\x01"
                  "1\x94\x85\x94R\x94.")),
         MP_ERR_SECURITY, "'builtins.eval'");
  expect("subprocess",
         check(PK("\x80\x02"
                  "csubprocess\nPopen\n.")),
         MP_ERR_SECURITY, "subprocess.Popen");
  expect("INST", check(PK("(S'ls'\nios\nsystem\n.")), MP_ERR_SECURITY, "os.system");
  expect("EXT1", check(PK("\x80\x02\x82\x01.")), MP_ERR_SECURITY, "extension registry");
  expect("torch.load itself",
         check(PK("\x80\x02"
                  "ctorch\nload\n.")),
         MP_ERR_SECURITY, "'torch.load'");
  expect("storage module spoof",
         check(PK("\x80\x02"
                  "cos\nFloatStorage\n.")),
         MP_ERR_SECURITY, "os.FloatStorage");
  expect("message names safetensors",
         check(PK("\x80\x02"
                  "cos\nsystem\n.")),
         MP_ERR_SECURITY, "safetensors");
  expect("quantized",
         check(PK("\x80\x02"
                  "ctorch._utils\n_rebuild_qtensor\n.")),
         MP_ERR_UNSUPPORTED, "quantized");
}

static void test_pickle_malformed(void) {
  expect("empty", check(PK("")), MP_ERR_FORMAT, "STOP");
  expect("no stop", check(PK("\x80\x02}")), MP_ERR_FORMAT, "STOP");
  expect("underflow", check(PK("\x80\x02R.")), MP_ERR_FORMAT, "REDUCE");
  expect("memo miss", check(PK("\x80\x02h\x05.")), MP_ERR_FORMAT, "memo");
  expect("memo huge", check(PK("\x80\x02}r\xff\xff\xff\xff.")), MP_ERR_FORMAT, "memo");
  expect("string past end",
         check(PK("\x80\x02X\xff\xff\xff\x7f"
                  "abc.")),
         MP_ERR_FORMAT, "past the end");
  expect("bytes8 huge", check(PK("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.")), MP_ERR_FORMAT, "past the end");
  expect("frame huge", check(PK("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f.")), MP_ERR_FORMAT, "frame");
  expect("protocol 6", check(PK("\x80\x06}.")), MP_ERR_UNSUPPORTED, "protocol");
  expect("bad opcode", check(PK("\x80\x02\xff.")), MP_ERR_FORMAT, "opcode 0xff");
  expect("not a dict", check(PK("\x80\x02]q\x00.")), MP_ERR_FORMAT, "not a state dict");
  expect("pid not tuple", check(PK("\x80\x02}X\x01\x00\x00\x00wX\x01\x00\x00\x00xQs.")), MP_ERR_FORMAT,
         "persistent id");
  expect("pid bad type",
         check(PK("\x80\x02(X\x07\x00\x00\x00storageK\x01X\x01\x00\x00\x00"
                  "0X\x03\x00\x00\x00"
                  "cpuK\x04tQ.")),
         MP_ERR_FORMAT, "storage type");
  expect("setitem on list", check(PK("\x80\x02]K\x01K\x02s.")), MP_ERR_FORMAT, "SETITEM");
  expect("appends no mark",
         check(PK("\x80\x02]K\x01"
                  "e.")),
         MP_ERR_FORMAT, "MARK");
  expect("reduce non-global", check(PK("\x80\x02K\x01)R.")), MP_ERR_FORMAT, "calls a int");
  expect("odict args",
         check(PK("\x80\x02"
                  "ccollections\nOrderedDict\nK\x01\x85R.")),
         MP_ERR_FORMAT, "OrderedDict");
  /* rebuild with a shape of 9 dimensions */
  static const char nine[] = "\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
                             "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                             "0X\x03\x00\x00\x00"
                             "cpuK\x04tQ"
                             "K\x00(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K"
                             "\x01K\x01t\x89"
                             "ccollections\nOrderedDict\n)RtRs.";
  expect("9 dims", check(PK(nine)), MP_ERR_UNSUPPORTED, "dimensions");
  /* self-referencing list via memo: harmless */
  CHECK(check(PK("\x80\x02]q\x00h\x00"
                 "a}q\x01h\x01h\x00s0h\x01.")) == MP_OK);
}

static void test_pickle_resource_bounds(void) {
  /* 200k MARKs then nothing: bounded, format error */
  size_t n = 200000;
  uint8_t *p = malloc(n + 2);
  REQUIRE(p);
  p[0] = 0x80;
  p[1] = 2;
  memset(p + 2, '(', n);
  CHECK(check(p, n + 2) == MP_ERR_FORMAT);
  /* a list grown by DUP/APPEND pairs (each a byte): linear work */
  p[2] = ']';
  for (size_t i = 3; i + 1 < n + 2; i += 2)
    p[i] = '2', p[i + 1] = 'a';
  CHECK(check(p, n + 2) == MP_ERR_FORMAT); /* no STOP */
  free(p);
  /* more than PK_MAX_STACK pushes of None */
  size_t big = (1u << 20) + 100;
  p = malloc(big + 3);
  REQUIRE(p);
  p[0] = 0x80, p[1] = 2;
  memset(p + 2, 'N', big);
  p[big + 2] = '.';
  expect("stack bound", check(p, big + 3), MP_ERR_FORMAT, "stack deeper");
  free(p);
}

/* ---------------------------------------------------------------- zip builder */
typedef struct {
  const char *name;
  const void *data;
  size_t len;
  int deflate;
} zent;

static void put16(mp_sb *b, unsigned v) {
  uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  mp_sb_append(b, x, 2);
}
static void put32(mp_sb *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  mp_sb_append(b, x, 4);
}

/* Builds a ZIP (stored or raw-deflate entries) into sb. */
static void build_zip(mp_sb *b, const zent *e, size_t n) {
  uint32_t off[16], crc[16], csz[16];
  uint8_t *cdata[16];
  for (size_t i = 0; i < n; i++) {
    crc[i] = (uint32_t)crc32(0, e[i].data, (uInt)e[i].len);
    if (e[i].deflate) {
      z_stream zs;
      memset(&zs, 0, sizeof zs);
      deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
      uLong cap = deflateBound(&zs, e[i].len);
      cdata[i] = malloc(cap);
      zs.next_in = (Bytef *)(uintptr_t)e[i].data;
      zs.avail_in = (uInt)e[i].len;
      zs.next_out = cdata[i];
      zs.avail_out = (uInt)cap;
      deflate(&zs, Z_FINISH);
      csz[i] = (uint32_t)zs.total_out;
      deflateEnd(&zs);
    } else {
      cdata[i] = malloc(e[i].len + 1);
      memcpy(cdata[i], e[i].data, e[i].len);
      csz[i] = (uint32_t)e[i].len;
    }
    off[i] = (uint32_t)b->len;
    put32(b, 0x04034b50);
    put16(b, 20), put16(b, 0), put16(b, e[i].deflate ? 8 : 0), put16(b, 0), put16(b, 0);
    put32(b, crc[i]), put32(b, csz[i]), put32(b, (uint32_t)e[i].len);
    put16(b, (unsigned)strlen(e[i].name)), put16(b, 0);
    mp_sb_puts(b, e[i].name);
    mp_sb_append(b, cdata[i], csz[i]);
  }
  uint32_t cd = (uint32_t)b->len;
  for (size_t i = 0; i < n; i++) {
    put32(b, 0x02014b50);
    put16(b, 20), put16(b, 20), put16(b, 0), put16(b, e[i].deflate ? 8 : 0), put16(b, 0), put16(b, 0);
    put32(b, crc[i]), put32(b, csz[i]), put32(b, (uint32_t)e[i].len);
    put16(b, (unsigned)strlen(e[i].name)), put16(b, 0), put16(b, 0), put16(b, 0), put16(b, 0);
    put32(b, 0), put32(b, off[i]);
    mp_sb_puts(b, e[i].name);
    free(cdata[i]);
  }
  uint32_t cdsize = (uint32_t)b->len - cd;
  put32(b, 0x06054b50);
  put16(b, 0), put16(b, 0), put16(b, (unsigned)n), put16(b, (unsigned)n);
  put32(b, cdsize), put32(b, cd), put16(b, 0);
}

static void test_zip_reader(void) {
  char big[5000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)('a' + i % 7);
  zent ents[] = {{"a/one", "hello", 5, 0}, {"a/two", big, sizeof big, 1}, {"a/empty", "", 0, 0}};
  mp_sb b;
  mp_sb_init(&b);
  build_zip(&b, ents, 3);
  mp_zip *z;
  CHECK_OK(mp_zip_open_memory(b.buf, b.len, "t.zip", &z));
  if (z) {
    CHECK(mp_zip_count(z) == 3);
    const uint8_t *d;
    size_t n;
    void *own;
    const mp_zip_entry *e = mp_zip_find(z, "a/one");
    REQUIRE(e);
    CHECK_OK(mp_zip_read(z, e, 0, 1, &d, &n, &own));
    CHECK(n == 5 && memcmp(d, "hello", 5) == 0 && own == NULL);
    e = mp_zip_find(z, "a/two");
    REQUIRE(e && e->method == 8);
    CHECK_OK(mp_zip_read(z, e, 0, 1, &d, &n, &own));
    CHECK(n == sizeof big && memcmp(d, big, n) == 0 && own != NULL);
    free(own);
    expect("max_size", mp_zip_read(z, e, 100, 1, &d, &n, &own), MP_ERR_FORMAT, "a/two");
    CHECK(mp_zip_find(z, "a/three") == NULL);
    e = mp_zip_find(z, "a/empty");
    CHECK(e && mp_zip_read(z, e, 0, 1, &d, &n, &own) == MP_OK && n == 0);
    mp_zip_close(z);
  }
  /* every truncation fails cleanly (and names the archive) */
  for (size_t n = 0; n < b.len; n++) {
    mp_status s = mp_zip_open_memory(b.buf, n, "t.zip", &z);
    CHECK(s != MP_OK && z == NULL);
    if (s != MP_OK) CHECK(strstr(mp_last_error(), "t.zip") != NULL);
  }
  /* single-byte corruptions: never crash; reading entries either works or fails cleanly */
  for (size_t i = 0; i < b.len; i++) {
    uint8_t *c = malloc(b.len);
    memcpy(c, b.buf, b.len);
    c[i] ^= 0x5a;
    if (mp_zip_open_memory(c, b.len, "c.zip", &z) == MP_OK) {
      for (size_t k = 0; k < mp_zip_count(z); k++) {
        const uint8_t *d;
        size_t n;
        void *own;
        if (mp_zip_read(z, mp_zip_at(z, k), 0, 1, &d, &n, &own) == MP_OK) free(own);
      }
      mp_zip_close(z);
    }
    free(c);
  }
  /* CRC mismatch in a stored entry */
  char *c = malloc(b.len);
  memcpy(c, b.buf, b.len);
  c[30 + 5] ^= 1; /* first byte of "hello" */
  CHECK_OK(mp_zip_open_memory(c, b.len, "crc.zip", &z));
  if (z) {
    const uint8_t *d;
    size_t n;
    void *own;
    expect("crc", mp_zip_read(z, mp_zip_find(z, "a/one"), 0, 1, &d, &n, &own), MP_ERR_FORMAT, "CRC");
    mp_zip_close(z);
  }
  free(c);
  mp_sb_free(&b);
  /* duplicate names and unsupported method */
  zent dup[] = {{"x/a", "1", 1, 0}, {"x/a", "2", 1, 0}};
  mp_sb_init(&b);
  build_zip(&b, dup, 2);
  expect("duplicate", mp_zip_open_memory(b.buf, b.len, "dup.zip", &z), MP_ERR_FORMAT, "twice");
  mp_sb_free(&b);
  zent one[] = {{"x/a", "1", 1, 0}};
  mp_sb_init(&b);
  build_zip(&b, one, 1);
  b.buf[8] = 12;       /* local method bzip2 */
  b.buf[34 + 10] = 12; /* central directory method */
  expect("method", mp_zip_open_memory(b.buf, b.len, "m.zip", &z), MP_ERR_UNSUPPORTED, "method 12");
  b.buf[8] = 0;
  b.buf[34 + 10] = 0;
  b.buf[34 + 8] = 1; /* encrypted flag */
  expect("encrypted", mp_zip_open_memory(b.buf, b.len, "e.zip", &z), MP_ERR_UNSUPPORTED, "encrypted");
  mp_sb_free(&b);
}

/* ---------------------------------------------------------------- torch files built by hand */
/* state dict {"t": transposed view of a [2, 3] float storage, offset 1} and {"c": contiguous} */
static const char k_pkl[] = "\x80\x02"
                            "ccollections\nOrderedDict\nq\x00)Rq\x01("
                            "X\x01\x00\x00\x00tctorch._utils\n_rebuild_tensor_v2\n("
                            "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                            "0X\x03\x00\x00\x00"
                            "cpuK\x07tQ"
                            "K\x01K\x03K\x02\x86K\x01K\x03\x86\x89h\x00)RtR"
                            "X\x01\x00\x00\x00"
                            "cctorch._utils\n_rebuild_tensor_v2\n("
                            "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                            "0X\x03\x00\x00\x00"
                            "cpuK\x07tQ"
                            "K\x01K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)RtR"
                            "u}X\t\x00\x00\x00_metadata}sb.";

static void test_torch_zip_views(void) {
  float st[7] = {99, 0, 1, 2, 3, 4, 5};
  zent ents[] = {{"archive/data.pkl", k_pkl, sizeof k_pkl - 1, 0},
                 {"archive/data/0", st, sizeof st, 0},
                 {"archive/version", "3\n", 2, 0}};
  mp_sb b;
  mp_sb_init(&b);
  build_zip(&b, ents, 3);
  mp_torch_file *tf;
  CHECK_OK(mp_torch_open_memory(b.buf, b.len, "views.bin", &tf));
  if (tf) {
    REQUIRE(mp_torch_count(tf) == 2);
    const mp_tensor *t = mp_torch_find(tf, "t"), *c = mp_torch_find(tf, "c");
    REQUIRE(t && c);
    CHECK(t == mp_torch_at(tf, 0));
    CHECK(t->dtype == MP_F32 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 2);
    CHECK(mp_tensor_is_contiguous(t) && t->nbytes == 24);
    const float *tv = t->data, *cv = c->data;
    /* storage [0..5] at offset 1 seen as [[0,1,2],[3,4,5]]; its transpose is [[0,3],[1,4],[2,5]] */
    float want_t[6] = {0, 3, 1, 4, 2, 5}, want_c[6] = {0, 1, 2, 3, 4, 5};
    CHECK(memcmp(tv, want_t, 24) == 0);
    CHECK(memcmp(cv, want_c, 24) == 0);
    CHECK_OK(mp_torch_verify(tf));
    mp_torch_close(tf);
  }
  /* a flipped bit in tensor data: opening stays lazy, mp_torch_verify finds it */
  {
    uint8_t *bad = malloc(b.len);
    memcpy(bad, b.buf, b.len);
    uint8_t *hit = memmem(bad, b.len, st, sizeof st);
    REQUIRE(hit);
    hit[9] ^= 0x10;
    CHECK_OK(mp_torch_open_memory(bad, b.len, "bitflip.bin", &tf));
    if (tf) expect("verify", mp_torch_verify(tf), MP_ERR_FORMAT, "CRC");
    mp_torch_close(tf);
    free(bad);
  }
  /* every truncation and single-byte corruption is refused or read, never a crash */
  for (size_t n = 0; n < b.len; n++) {
    CHECK(mp_torch_open_memory(b.buf, n, "trunc.bin", &tf) != MP_OK);
    CHECK(tf == NULL);
  }
  uint8_t *c = malloc(b.len);
  for (size_t i = 0; i < b.len; i++) {
    memcpy(c, b.buf, b.len);
    c[i] ^= 0x21;
    if (mp_torch_open_memory(c, b.len, "corrupt.bin", &tf) == MP_OK) {
      for (size_t k = 0; k < mp_torch_count(tf); k++) {
        const mp_tensor *t = mp_torch_at(tf, k);
        volatile uint8_t sink = 0;
        for (size_t j = 0; j < t->nbytes; j++)
          sink ^= ((const uint8_t *)t->data)[j];
        (void)sink;
      }
      mp_torch_close(tf);
    }
  }
  free(c);
  mp_sb_free(&b);
  /* a storage record smaller than the persistent id says */
  zent small[] = {{"archive/data.pkl", k_pkl, sizeof k_pkl - 1, 0}, {"archive/data/0", st, 8, 0}};
  mp_sb_init(&b);
  build_zip(&b, small, 2);
  expect("short storage", mp_torch_open_memory(b.buf, b.len, "short.bin", &tf), MP_ERR_FORMAT, "truncated");
  mp_sb_free(&b);
  /* big-endian byteorder record */
  zent be[] = {{"archive/data.pkl", k_pkl, sizeof k_pkl - 1, 0},
               {"archive/data/0", st, sizeof st, 0},
               {"archive/byteorder", "big", 3, 0}};
  mp_sb_init(&b);
  build_zip(&b, be, 3);
  expect("big endian", mp_torch_open_memory(b.buf, b.len, "be.bin", &tf), MP_ERR_UNSUPPORTED, "big-endian");
  mp_sb_free(&b);
}

/* {"w": _rebuild_tensor_v2(FloatStorage '0' of numel, offset, shape, stride)} in a zip with `nfloats` of data */
static void one_tensor_zip(mp_sb *b, int64_t numel, int64_t offset, int nd, const int64_t *shape, const int64_t *stride,
                           size_t nfloats) {
  mp_sb pk;
  mp_sb_init(&pk);
  mp_sb_append(&pk, PK("\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(("
                       "X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                       "0X\x03\x00\x00\x00"
                       "cpu"));
  /* LONG1 with 8 bytes for every integer */
#define PUT_I64(v)                                                                                                     \
  do {                                                                                                                 \
    int64_t v_ = (v);                                                                                                  \
    mp_sb_append(&pk, "\x8a\x08", 2);                                                                                  \
    mp_sb_append(&pk, &v_, 8);                                                                                         \
  } while (0)
  PUT_I64(numel);
  mp_sb_append(&pk, PK("tQ"));
  PUT_I64(offset);
  mp_sb_putc(&pk, '(');
  for (int d = 0; d < nd; d++)
    PUT_I64(shape[d]);
  mp_sb_append(&pk, PK("t("));
  for (int d = 0; d < nd; d++)
    PUT_I64(stride[d]);
  mp_sb_append(&pk, PK("t\x89"
                       "ccollections\nOrderedDict\n)RtRs."));
#undef PUT_I64
  float *data = calloc(nfloats + 1, sizeof *data);
  for (size_t i = 0; i < nfloats; i++)
    data[i] = (float)i;
  zent e[] = {{"archive/data.pkl", pk.buf, pk.len, 0}, {"archive/data/0", data, nfloats * sizeof *data, 0}};
  build_zip(b, e, 2);
  free(data);
  mp_sb_free(&pk);
}

static void test_torch_hostile_views(void) {
  mp_torch_file *tf;
  mp_sb b;
  /* stride 0 (expand) of a 1-float storage to 2^40 elements: bounds pass, the copy is refused */
  int64_t sh[2] = {1 << 20, 1 << 20}, st0[2] = {0, 0};
  mp_sb_init(&b);
  one_tensor_zip(&b, 1, 0, 2, sh, st0, 1);
  expect("expand bomb", mp_torch_open_memory(b.buf, b.len, "bomb.bin", &tf), MP_ERR_FORMAT, "contiguous");
  mp_sb_free(&b);
  /* element count overflowing int64 */
  int64_t sh3[3] = {(int64_t)1 << 31, (int64_t)1 << 31, (int64_t)1 << 31}, st3[3] = {0, 0, 0};
  mp_sb_init(&b);
  one_tensor_zip(&b, 1, 0, 3, sh3, st3, 1);
  expect("numel overflow", mp_torch_open_memory(b.buf, b.len, "ovf.bin", &tf), MP_ERR_FORMAT, "overflow");
  mp_sb_free(&b);
  /* stride overflow */
  int64_t sh2[2] = {3, 3}, stbig[2] = {INT64_MAX / 2, 1};
  mp_sb_init(&b);
  one_tensor_zip(&b, 9, 0, 2, sh2, stbig, 9);
  expect("stride overflow", mp_torch_open_memory(b.buf, b.len, "ovf.bin", &tf), MP_ERR_FORMAT, "overflow");
  mp_sb_free(&b);
  /* offset past the storage, with a zero-size tensor it is harmless; with one element it is refused */
  int64_t sh1[1] = {1}, st1[1] = {1}, sh0[1] = {0};
  mp_sb_init(&b);
  one_tensor_zip(&b, 4, 4, 1, sh1, st1, 4);
  expect("offset past end", mp_torch_open_memory(b.buf, b.len, "off.bin", &tf), MP_ERR_FORMAT, "needs 20 bytes");
  mp_sb_free(&b);
  mp_sb_init(&b);
  one_tensor_zip(&b, 4, 1000, 1, sh0, st1, 4);
  CHECK_OK(mp_torch_open_memory(b.buf, b.len, "empty.bin", &tf));
  if (tf) CHECK(mp_torch_count(tf) == 1 && mp_torch_at(tf, 0)->nbytes == 0);
  mp_torch_close(tf);
  mp_sb_free(&b);
  /* negative numel in the persistent id */
  mp_sb_init(&b);
  one_tensor_zip(&b, -1, 0, 1, sh1, st1, 4);
  expect("negative numel", mp_torch_open_memory(b.buf, b.len, "neg.bin", &tf), MP_ERR_FORMAT, "element count");
  mp_sb_free(&b);
  /* a legitimate small expand: copied, values repeated */
  int64_t she[2] = {3, 2}, ste[2] = {0, 1};
  mp_sb_init(&b);
  one_tensor_zip(&b, 2, 0, 2, she, ste, 2);
  CHECK_OK(mp_torch_open_memory(b.buf, b.len, "expand.bin", &tf));
  if (tf) {
    const float *v = mp_torch_at(tf, 0)->data;
    CHECK(v[0] == 0 && v[1] == 1 && v[2] == 0 && v[3] == 1 && v[4] == 0 && v[5] == 1);
  }
  mp_torch_close(tf);
  mp_sb_free(&b);
}

static void test_torch_legacy_by_hand(void) {
  /* magic, 1001, sys_info, data pickle (6-field pids), keys, storages */
  mp_sb b;
  mp_sb_init(&b);
  mp_sb_append(&b, PK("\x80\x02\x8a\x0al\xfc\x9c\x46\xf9\x20j\xa8P\x19."));
  mp_sb_append(&b, PK("\x80\x02M\xe9\x03."));
  mp_sb_append(&b, PK("\x80\x02}(X\r\x00\x00\x00little_endian\x88u."));
  mp_sb_append(&b, PK("\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
                      "(X\x07\x00\x00\x00storagectorch\nLongStorage\nX\x03\x00\x00\x00"
                      "123X\x03\x00\x00\x00"
                      "cpuK\x03NtQK\x01K\x02\x85K\x01\x85\x89"
                      "ccollections\nOrderedDict\n)RtRs."));
  mp_sb_append(&b, PK("\x80\x02]X\x03\x00\x00\x00"
                      "123a."));
  int64_t cnt = 3, vals[3] = {7, -8, 9};
  mp_sb_append(&b, &cnt, 8);
  mp_sb_append(&b, vals, sizeof vals);
  mp_torch_file *tf;
  CHECK_OK(mp_torch_open_memory(b.buf, b.len, "legacy.bin", &tf));
  if (tf) {
    const mp_tensor *t = mp_torch_find(tf, "w");
    REQUIRE(t && t->dtype == MP_I64 && t->ndim == 1 && t->shape[0] == 2);
    int64_t got[2];
    memcpy(got, t->data, 16);
    CHECK(got[0] == -8 && got[1] == 9);
    CHECK((uintptr_t)t->data % 8 == 0);
    mp_torch_close(tf);
  }
  for (size_t n = 0; n < b.len; n++)
    CHECK(mp_torch_open_memory(b.buf, n, "trunc.bin", &tf) != MP_OK);
  /* big-endian sys_info */
  char *c = malloc(b.len);
  memcpy(c, b.buf, b.len);
  char *le = memmem(c, b.len, "little_endian\x88", 14);
  REQUIRE(le);
  le[13] = '\x89';
  expect("legacy big endian", mp_torch_open_memory(c, b.len, "be.bin", &tf), MP_ERR_UNSUPPORTED, "big-endian");
  free(c);
  mp_sb_free(&b);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--dump") == 0) return dump(argv[2]);
  RUN(test_pickle_state_dict_ok);
  RUN(test_pickle_malicious);
  RUN(test_pickle_malformed);
  RUN(test_pickle_resource_bounds);
  RUN(test_zip_reader);
  RUN(test_torch_zip_views);
  RUN(test_torch_hostile_views);
  RUN(test_torch_legacy_by_hand);
  return mp_test_done();
}
