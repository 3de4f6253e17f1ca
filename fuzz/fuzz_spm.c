/* libFuzzer target: SentencePiece .model protobuf reader, precompiled_charsmap parser and
 * normalizers, Unigram construction and encoding. The first input byte picks the mode:
 *   0: the rest is a ModelProto -> parse; convert to tokenizer.json; SentencePiece encoder and
 *      HF Unigram on a few texts;
 *   1: u32 length L, L bytes of charsmap, then text -> HF and SentencePiece normalization;
 *   2: '\n'-separated pieces (first is <unk>), the last line is the text -> HF Unigram encode
 *      (with and without byte fallback) and the SentencePiece flavour.
 * Seeds: fuzz/corpus/fuzz_spm (tools/make_spm_fuzz_seeds.py). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "tokenizer/precompiled.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/unigram.h"

static const char *const k_texts[] = {"Hello world", "  \xef\xbc\xa1\xcc\x81x  a\r\nb ",
                                      "\xe2\x96\x81"
                                      "ab\xc3\xa9",
                                      "\xff\xfe"
                                      "abc\x00z",
                                      ""};

static void encode_all(const mp_unigram *u, const char *extra, size_t extra_n) {
  mp_unigram_scratch sc = {0};
  mp_unigram_tokens t = {0};
  for (size_t i = 0; i < sizeof k_texts / sizeof *k_texts; i++) {
    t.n = 0;
    /* k_texts[3] has an embedded NUL: 7 bytes */
    (void)mp_unigram_encode(u, &sc, k_texts[i], i == 3 ? 7 : strlen(k_texts[i]), &t);
  }
  if (extra) {
    t.n = 0;
    (void)mp_unigram_encode(u, &sc, extra, extra_n, &t);
  }
  free(t.v);
  mp_unigram_scratch_free(&sc);
}

static void mode_model(const uint8_t *d, size_t n) {
  mp_spm_model *m;
  if (mp_spm_model_parse(d, n, "fuzz.model", &m) != MP_OK) return;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_spm_hf_opts o = {1, 1, 1, NULL, 0, -1, -1};
  (void)mp_spm_to_hf_json(m, &o, &sb);
  mp_sb_free(&sb);
  mp_spm_processor *p;
  if (mp_spm_processor_create(m, "fuzz.model", &p) == MP_OK) {
    mp_unigram_scratch sc = {0};
    mp_unigram_tokens t = {0};
    mp_sb norm;
    mp_sb_init(&norm);
    for (size_t i = 0; i < sizeof k_texts / sizeof *k_texts; i++) {
      t.n = 0;
      (void)mp_spm_encode(p, &sc, k_texts[i], strlen(k_texts[i]), &norm, &t);
    }
    mp_sb_free(&norm);
    free(t.v);
    mp_unigram_scratch_free(&sc);
    mp_spm_processor_free(p);
  }
  mp_unigram *u;
  if (mp_spm_unigram(m, MP_UNIGRAM_HF, 1, "fuzz.model", &u) == MP_OK) {
    encode_all(u, NULL, 0);
    mp_unigram_free(u);
  }
  mp_spm_model_free(m);
}

static void mode_charsmap(const uint8_t *d, size_t n) {
  if (n < 4) return;
  size_t l = (size_t)d[0] | (size_t)d[1] << 8 | (size_t)d[2] << 16 | (size_t)d[3] << 24;
  d += 4, n -= 4;
  if (l > n) l = n;
  mp_precompiled *p;
  if (mp_precompiled_load(d, l, "fuzz", &p) != MP_OK) return;
  mp_sb out, al;
  mp_sb_init(&out);
  mp_sb_init(&al);
  (void)mp_precompiled_normalize(p, (const char *)d + l, n - l, &out, &al);
  for (size_t i = 0; i < sizeof k_texts / sizeof *k_texts; i++) {
    mp_sb_clear(&out);
    (void)mp_precompiled_normalize(p, k_texts[i], strlen(k_texts[i]), &out, NULL);
  }
  const char *text = (const char *)d + l;
  size_t tn = n - l;
  while (tn > 0) {
    size_t used;
    const char *rep;
    size_t rl;
    int r = mp_precompiled_prefix(p, text, tn, &used, &rep, &rl);
    if (r <= 0) used = 1;
    if (used > tn) abort(); /* the matcher never consumes more than it was given */
    text += used, tn -= used;
  }
  mp_sb_free(&out);
  mp_sb_free(&al);
  mp_precompiled_free(p);
}

static void mode_pieces(const uint8_t *d, size_t n) {
  const char *s = (const char *)d;
  const char *pieces[256];
  size_t lens[256];
  double scores[256];
  uint8_t types[256];
  size_t np = 0, start = 0;
  for (size_t i = 0; i < n && np < 255; i++)
    if (s[i] == '\n') {
      pieces[np] = s + start;
      lens[np] = i - start;
      scores[np] = -(double)((np * 7919) % 23) / 3.0;
      types[np] = np == 0 ? MP_SPM_UNKNOWN : (uint8_t)(1 + (np % 11 == 5 ? 4 : 0));
      np++;
      start = i + 1;
    }
  const char *text = s + start;
  size_t tn = n - start;
  for (int variant = 0; variant < 3; variant++) {
    mp_unigram_opts o;
    mp_unigram_opts_init(&o);
    o.unk_id = variant == 2 ? -1 : 0;
    o.byte_fallback = variant == 1;
    mp_unigram *u;
    if (mp_unigram_create(np, pieces, lens, scores, NULL, &o, &u) == MP_OK) {
      encode_all(u, text, tn);
      mp_unigram_free(u);
    }
  }
  mp_unigram_opts o;
  mp_unigram_opts_init(&o);
  o.flavor = MP_UNIGRAM_SPM;
  mp_unigram *u;
  if (mp_unigram_create(np, pieces, lens, scores, types, &o, &u) == MP_OK) {
    encode_all(u, text, tn);
    mp_unigram_free(u);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  switch (data[0] % 3) {
  case 0: mode_model(data + 1, size - 1); break;
  case 1: mode_charsmap(data + 1, size - 1); break;
  default: mode_pieces(data + 1, size - 1); break;
  }
  return 0;
}
