/* Unigram model, Precompiled normalizer and SentencePiece .model reader.
 * Expected values come from HF tokenizers' own unit tests (models/unigram/model.rs,
 * normalizers/precompiled.rs) and from HF / sentencepiece runs noted next to them; the
 * exhaustive parity checks live in tests/py/test_unigram.py. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "testlib.h"
#include "tokenizer/precompiled.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/unigram.h"

static mp_unigram *make(const char **p, const double *s, size_t n, int64_t unk, int bf) {
  size_t lens[64];
  for (size_t i = 0; i < n; i++)
    lens[i] = strlen(p[i]);
  mp_unigram_opts o;
  mp_unigram_opts_init(&o);
  o.unk_id = unk;
  o.byte_fallback = bf;
  mp_unigram *m = NULL;
  CHECK_OK(mp_unigram_create(n, p, lens, s, NULL, &o, &m));
  return m;
}

/* encodes and renders "piece|piece|..." from the token spans */
static const char *enc(const mp_unigram *m, const char *s) {
  static char buf[512];
  static mp_unigram_scratch sc;
  mp_unigram_tokens t = {0};
  buf[0] = 0;
  if (mp_unigram_encode(m, &sc, s, strlen(s), &t) != MP_OK) {
    snprintf(buf, sizeof buf, "ERROR");
    free(t.v);
    return buf;
  }
  size_t o = 0;
  for (size_t i = 0; i < t.n; i++) {
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%.*s", i ? "|" : "", (int)(t.v[i].end - t.v[i].start),
                          s + t.v[i].start);
  }
  free(t.v);
  return buf;
}

static void test_hf_examples(void) {
  /* model.rs doc test + test_encode */
  const char *p1[] = {"<unk>", "a", "b", "c", "d", "cd", "ab", "abc", "abcd"};
  const double s1[] = {0, 0, 0, 0, 0, 1, 2, 5, 10};
  mp_unigram *m = make(p1, s1, 9, 0, 0);
  REQUIRE(m);
  CHECK_STREQ(enc(m, "abcdacdxx"), "abcd|a|cd|xx");
  CHECK_STREQ(enc(m, "abcd"), "abcd");
  CHECK_STREQ(enc(m, ""), "");
  mp_unigram_free(m);
  /* test_encode2 (fuse_unk = true, the only mode HF exposes) */
  const char *p2[] = {"<unk>", "ab", "cd", "abc", "a", "b", "c", "ABC", "abcdabcd", "q", "r", "qr"};
  const double s2[] = {0, 0, -0.1, -0.2, -0.3, -0.4, -0.5, -0.5, 20.0, 20.5, 20.5, -0.5};
  m = make(p2, s2, 12, 0, 0);
  REQUIRE(m);
  CHECK_STREQ(enc(m, "abc"), "abc");
  CHECK_STREQ(enc(m, "AB"), "AB");
  CHECK_STREQ(enc(m, "abcd"), "ab|cd");
  CHECK_STREQ(enc(m, "abcc"), "abc|c");
  CHECK_STREQ(enc(m, "xabcabaabcdd"), "x|abc|ab|a|ab|cd|d");
  CHECK_STREQ(enc(m, "xyz\xe6\x9d\xb1\xe4\xba\xac"), "xyz\xe6\x9d\xb1\xe4\xba\xac");
  CHECK_STREQ(enc(m, "ABC"), "ABC");
  CHECK_STREQ(enc(m, "abABCcd"), "ab|ABC|cd");
  CHECK_STREQ(enc(m, "ababcdabcdcd"), "ab|abcdabcd|cd");
  CHECK_STREQ(enc(m, "abqrcd"), "ab|q|r|cd");
  /* ids: fused unknowns become the unk id */
  mp_unigram_scratch sc = {0};
  mp_unigram_tokens t = {0};
  CHECK_OK(mp_unigram_encode(m, &sc, "xyab", 4, &t));
  CHECK(t.n == 2 && t.v[0].id == 0 && t.v[1].id == 1);
  CHECK(mp_unigram_piece_to_id(m, "qr", 2) == 11 && mp_unigram_piece_to_id(m, "zz", 2) == -1);
  free(t.v);
  mp_unigram_scratch_free(&sc);
  mp_unigram_free(m);
}

static int collect(void *user, int32_t id, uint32_t a, uint32_t b) {
  mp_unigram_tokens *t = user;
  if (t->n == t->cap) return 1;
  t->v[t->n++] = (mp_unigram_token){id, a, b};
  return 0;
}

/* the callback interface and a borrowed (stack) scratch give the same tokens as the vector API */
static void test_callback_and_borrowed_scratch(void) {
  const char *p2[] = {"<unk>", "ab", "cd", "abc", "a", "b", "c", "ABC", "abcdabcd", "q", "r", "qr"};
  const double s2[] = {0, 0, -0.1, -0.2, -0.3, -0.4, -0.5, -0.5, 20.0, 20.5, 20.5, -0.5};
  mp_unigram *m = make(p2, s2, 12, 0, 0);
  REQUIRE(m);
  const char *texts[] = {"xabcabaabcdd", "abqrcd", "xyzxyzabABCcdxyz", "ababcdabcdcdababcdabcdcdababcdabcdcd"};
  for (size_t k = 0; k < 4; k++) {
    mp_unigram_scratch sc = {0};
    mp_unigram_tokens ref = {0};
    CHECK_OK(mp_unigram_encode(m, &sc, texts[k], strlen(texts[k]), &ref));
    unsigned char stackbuf[256];
    mp_unigram_scratch bs = {stackbuf, sizeof stackbuf, 1};
    CHECK(mp_unigram_scratch_need(8) <= sizeof stackbuf);
    mp_unigram_token buf[64];
    mp_unigram_tokens got = {buf, 0, 64};
    CHECK_OK(mp_unigram_encode_fn(m, &bs, texts[k], strlen(texts[k]), collect, &got));
    CHECK(got.n == ref.n && memcmp(got.v, ref.v, ref.n * sizeof *ref.v) == 0);
    /* a long text outgrew the borrowed buffer: now malloc'd and owned */
    if (strlen(texts[k]) > 12) CHECK(bs.borrowed == 0 && bs.nodes != stackbuf);
    mp_unigram_scratch_free(&bs);
    mp_unigram_scratch_free(&sc);
    free(ref.v);
  }
  mp_unigram_free(m);
}

static void test_byte_fallback(void) {
  /* test_unigram_bytefallback: "é" -> <0xC3> <0xA9> both spanning (0, 2); "?é" -> unk first */
  const char *p[] = {"<unk>", "<0xC3>", "<0xA9>"};
  const double s[] = {0, -0.01, -0.03};
  mp_unigram *m = make(p, s, 3, 0, 1);
  REQUIRE(m);
  mp_unigram_scratch sc = {0};
  mp_unigram_tokens t = {0};
  CHECK_OK(mp_unigram_encode(m, &sc, "\xc3\xa9", 2, &t));
  CHECK(t.n == 2 && t.v[0].id == 1 && t.v[1].id == 2 && t.v[0].start == 0 && t.v[0].end == 2 && t.v[1].end == 2);
  t.n = 0;
  CHECK_OK(mp_unigram_encode(m, &sc, "?\xc3\xa9", 3, &t));
  CHECK(t.n >= 1 && t.v[0].id == 0);
  free(t.v);
  mp_unigram_scratch_free(&sc);
  mp_unigram_free(m);
}

static void test_errors(void) {
  const char *p[] = {"a", "b"};
  const double s[] = {-1, -2};
  size_t lens[] = {1, 1};
  mp_unigram_opts o;
  mp_unigram_opts_init(&o);
  o.unk_id = 5;
  mp_unigram *m = NULL;
  CHECK(mp_unigram_create(2, p, lens, s, NULL, &o, &m) == MP_ERR_FORMAT && !m);
  CHECK(strstr(mp_last_error(), "unk_id") != NULL);
  o.unk_id = 0;
  CHECK(mp_unigram_create(0, p, lens, s, NULL, &o, &m) == MP_ERR_FORMAT);
  /* no unk id: an uncovered character is an error (HF MissingUnkId) */
  m = make(p, s, 2, -1, 0);
  REQUIRE(m);
  CHECK_STREQ(enc(m, "ab"), "a|b");
  CHECK_STREQ(enc(m, "abc"), "ERROR");
  mp_unigram_free(m);
  mp_unigram_free(NULL);
}

static void test_base64(void) {
  uint8_t data[256];
  for (int i = 0; i < 256; i++)
    data[i] = (uint8_t)(i * 37 + 11);
  for (size_t n = 0; n < 40; n++) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_base64_encode(&sb, data, n);
    uint8_t *back;
    size_t bl;
    CHECK_OK(mp_base64_decode(sb.buf ? sb.buf : "", sb.len, "t", &back, &bl));
    CHECK(bl == n && memcmp(back, data, n) == 0);
    free(back);
    mp_sb_free(&sb);
  }
  uint8_t *b;
  size_t bl;
  CHECK(mp_base64_decode("QUJD*", 5, "t", &b, &bl) == MP_ERR_FORMAT);
  CHECK(mp_base64_decode("QUJDR", 5, "t", &b, &bl) == MP_ERR_FORMAT);
  CHECK_OK(mp_base64_decode("QUJD", 4, "t", &b, &bl));
  CHECK(bl == 3 && memcmp(b, "ABC", 3) == 0);
  free(b);
}

static void test_precompiled_bad_blobs(void) {
  mp_precompiled *p;
  const uint8_t tiny[] = {1, 2};
  CHECK(mp_precompiled_load(tiny, 2, "t", &p) == MP_ERR_FORMAT && !p);
  const uint8_t big[] = {0xff, 0, 0, 0, 1, 2, 3};
  CHECK(mp_precompiled_load(big, sizeof big, "t", &p) == MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "trie") != NULL);
  const uint8_t odd[] = {3, 0, 0, 0, 1, 2, 3, 'a', 0};
  CHECK(mp_precompiled_load(odd, sizeof odd, "t", &p) == MP_ERR_FORMAT);
  const uint8_t badpool[] = {4, 0, 0, 0, 0, 0, 0, 0, 0xff, 0};
  CHECK(mp_precompiled_load(badpool, sizeof badpool, "t", &p) == MP_ERR_FORMAT);
  /* an empty trie is an identity normalizer */
  const uint8_t empty[] = {0, 0, 0, 0, 'x', 0};
  CHECK_OK(mp_precompiled_load(empty, sizeof empty, "t", &p));
  mp_sb o;
  mp_sb_init(&o);
  CHECK_OK(mp_precompiled_normalize(p, "a\xcc\x81 \xff!", 6, &o, NULL));
  CHECK(o.len == 6 && memcmp(o.buf, "a\xcc\x81 \xff!", 6) == 0);
  mp_sb_free(&o);
  mp_precompiled_free(p);
  mp_precompiled_free(NULL);
}

static const char *norm(const mp_precompiled *p, const char *s) {
  static mp_sb o;
  mp_sb_clear(&o);
  if (mp_precompiled_normalize(p, s, strlen(s), &o, NULL) != MP_OK) return "ERROR";
  return o.buf ? o.buf : "";
}

/* The real nmt_nfkc charsmap of DeBERTa-v3. Expected strings: HF tokenizers 0.20.3
 * `normalizers.Precompiled(charsmap).normalize_str` (see docs/tokenizers.md). */
static void test_real_charsmap(void) {
  const char *sh = mp_test_shared_dir();
  char path[1024];
  snprintf(path, sizeof path, "%s/models/deberta-v3-base-mnli-fever-anli/spm.model", sh);
  mp_spm_model *m;
  CHECK_OK(mp_spm_model_load(path, &m));
  if (!m) return;
  CHECK(m->n_pieces == 128000 && m->model_type == 1 && m->unk_id == 3 && m->byte_fallback == 1);
  CHECK_STREQ(m->normalizer.name, "nmt_nfkc");
  CHECK(m->normalizer.charsmap_len == 237539);
  CHECK(m->pieces[3].type == MP_SPM_UNKNOWN && strcmp(m->pieces[3].piece, "[UNK]") == 0);
  mp_precompiled *p;
  CHECK_OK(mp_precompiled_load(m->normalizer.charsmap, m->normalizer.charsmap_len, path, &p));
  if (p) {
    CHECK_STREQ(norm(p, "Hello world, this is a test."), "Hello world, this is a test.");
    CHECK_STREQ(norm(p, "\xef\xbc\xa1\xcc\x81x"), "Ax");                          /* Ａ́x */
    CHECK_STREQ(norm(p, "a\r\nb"), "a b");                                        /* CR LF */
    CHECK_STREQ(norm(p, "\xef\xac\x81"), "fi");                                   /* ﬁ */
    CHECK_STREQ(norm(p, "\xe2\x91\xa0\xe2\x91\xa1"), "12");                       /* ①② */
    CHECK_STREQ(norm(p, "\xef\xbd\xb6\xef\xbe\x9e"), "\xe3\x82\xab\xe3\x82\x99"); /* ｶﾞ -> ガ */
    CHECK_STREQ(norm(p, "x\xe2\x80\x8by"), "x y");                                /* ZWSP */
    CHECK_STREQ(norm(p, "a\tb"), "a b");
    CHECK_STREQ(norm(p, "\xe3\x80\x80"), " "); /* U+3000 */
    /* SentencePiece's own normalizer on the same model: sentencepiece 0.2.0 normalize() */
    mp_spm_processor *proc;
    CHECK_OK(mp_spm_processor_create(m, path, &proc));
    if (proc) {
      mp_sb o;
      mp_sb_init(&o);
      const char *in = "  \xef\xbc\xa1\xcc\x81x  \xf0\x9f\x98\x80 yes";
      CHECK_OK(mp_spm_normalize(proc, in, strlen(in), &o));
      CHECK_STREQ(o.buf, "\xe2\x96\x81\xc3\x81x\xe2\x96\x81\xf0\x9f\x98\x80\xe2\x96\x81yes");
      mp_unigram_scratch sc = {0};
      mp_unigram_tokens t = {0};
      CHECK_OK(mp_spm_encode(proc, &sc, "Hello world, this is a test.", 28, NULL, &t));
      const int32_t want[] = {5365, 447, 261, 291, 269, 266, 1010, 260}; /* sp.encode(...) */
      CHECK(t.n == 8);
      for (size_t i = 0; i < t.n && i < 8; i++)
        CHECK(t.v[i].id == want[i]);
      free(t.v);
      mp_unigram_scratch_free(&sc);
      mp_sb_free(&o);
      mp_spm_processor_free(proc);
    }
    /* corrupt copies of the real blob: loads or fails cleanly, never crashes */
    uint8_t *blob = malloc(m->normalizer.charsmap_len);
    uint32_t rng = 12345;
    for (int round = 0; round < 200 && blob; round++) {
      memcpy(blob, m->normalizer.charsmap, m->normalizer.charsmap_len);
      for (int k = 0; k < 64; k++) {
        rng = rng * 1103515245u + 12345u;
        size_t at = 4 + (rng >> 8) % (m->normalizer.charsmap_len - 4);
        blob[at] ^= (uint8_t)(1u << (rng & 7));
      }
      size_t len = round % 3 == 0 ? 4 + (rng >> 4) % (m->normalizer.charsmap_len - 4) : m->normalizer.charsmap_len;
      mp_precompiled *q;
      if (mp_precompiled_load(blob, len, "corrupt", &q) == MP_OK) {
        mp_sb o;
        mp_sb_init(&o);
        mp_status st =
            mp_precompiled_normalize(q, "\xef\xbc\xa1\xcc\x81x a\r\nb \xe2\x91\xa0 caf\xc3\xa9", 20, &o, NULL);
        CHECK(st == MP_OK || st == MP_ERR_FORMAT);
        mp_sb_free(&o);
        mp_precompiled_free(q);
      }
    }
    free(blob);
    mp_precompiled_free(p);
  }
  mp_spm_model_free(m);
}

static void test_protobuf_errors(void) {
  mp_spm_model *m;
  CHECK(mp_spm_model_parse((const uint8_t *)"", 0, "x.model", &m) == MP_ERR_FORMAT && !m);
  CHECK(strstr(mp_last_error(), "x.model") != NULL);
  const uint8_t trunc[] = {0x0a, 0x05, 0x0a, 0x01};
  CHECK(mp_spm_model_parse(trunc, sizeof trunc, "x.model", &m) == MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "offset 0") != NULL);
  const uint8_t group[] = {0x0b, 0x0c};
  CHECK(mp_spm_model_parse(group, sizeof group, "x.model", &m) == MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "wire type") != NULL);
  /* piece {piece: "a", score: 1.5f, type: 7}: bad enum */
  const uint8_t badtype[] = {0x0a, 0x0a, 0x0a, 0x01, 'a', 0x15, 0x00, 0x00, 0xc0, 0x3f, 0x18, 0x07};
  CHECK(mp_spm_model_parse(badtype, sizeof badtype, "x.model", &m) == MP_ERR_FORMAT);
  CHECK(strstr(mp_last_error(), "pieces[0].type") != NULL);
  /* a minimal valid model: pieces "<unk>"(UNKNOWN) and "a" (score 1.5), unknown field 99 skipped */
  const uint8_t ok[] = {0x0a, 0x09, 0x0a, 0x05, '<',  'u',  'n',  'k',  '>',  0x18, 0x02, 0x0a,
                        0x08, 0x0a, 0x01, 'a',  0x15, 0x00, 0x00, 0xc0, 0x3f, 0x98, 0x06, 0x01};
  CHECK_OK(mp_spm_model_parse(ok, sizeof ok, "x.model", &m));
  if (m) {
    CHECK(m->n_pieces == 2 && m->pieces[1].score == 1.5f && m->pieces[0].type == MP_SPM_UNKNOWN &&
          m->pieces[1].type == MP_SPM_NORMAL && m->normalizer.add_dummy_prefix == 1 && m->pad_id == -1);
    mp_spm_model_free(m);
  }
  mp_spm_model_free(NULL);
}

int main(void) {
  RUN(test_hf_examples);
  RUN(test_callback_and_borrowed_scratch);
  RUN(test_byte_fallback);
  RUN(test_errors);
  RUN(test_base64);
  RUN(test_precompiled_bad_blobs);
  RUN(test_real_charsmap);
  RUN(test_protobuf_errors);
  return mp_test_done();
}
