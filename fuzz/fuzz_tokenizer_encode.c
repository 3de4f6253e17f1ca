/* libFuzzer target: encoding arbitrary bytes (invalid UTF-8 included) with real tokenizers:
 * BERT WordPiece (all-MiniLM-L6-v2) and byte-level BPE (roberta-large-mnli) from
 * $MP_SHARED_DIR/models (default ../shared/models, relative to the working folder), plus the
 * committed synthetic byte-level BPE tokenizer fuzz/synthetic_tokenizer.json (always loaded; the
 * target still works without the shared folder). The DeBERTa-v3 Unigram tokenizer is left out:
 * converting its 128k-piece spm.model takes most of a 30 s fuzz run under ASan; Unigram encoding
 * is fuzzed by fuzz_spm.c and, through this pipeline, by fuzz_tokenizer_load's Unigram seed.
 * Input: byte 0 selects options (tokenizer, pair or not, truncation, max_length, specials); the
 * rest is the text, split at its first TAB into a pair when the pair bit is set. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static mp_tokenizer *toks[4];
static int n_toks = -1;

static void load_all(void) {
  n_toks = 0;
  const char *shared = getenv("MP_SHARED_DIR");
  char path[4096];
  static const char *models[] = {"all-MiniLM-L6-v2", "roberta-large-mnli"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/models/%s", shared ? shared : "../shared", models[i]);
    mp_tokenizer *t = NULL;
    if (mp_tokenizer_open(path, &t) == MP_OK) toks[n_toks++] = t;
  }
  const char *src = getenv("MP_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/fuzz/synthetic_tokenizer.json", src ? src : ".");
  FILE *f = fopen(path, "rb");
  if (f) {
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    mp_tokenizer *t = NULL;
    if (mp_tokenizer_from_json(buf, n, path, &t) == MP_OK) toks[n_toks++] = t;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (n_toks < 0) load_all();
  if (n_toks == 0 || size == 0) return 0;
  unsigned sel = data[0];
  const mp_tokenizer *tok = toks[sel % (unsigned)n_toks];
  char *text = malloc(size);
  if (!text) return 0;
  memcpy(text, data + 1, size - 1);
  size_t n = size - 1;
  const char *b = NULL;
  size_t an = n, bn = 0;
  if (sel & 4) {
    char *tab = memchr(text, '\t', n);
    if (tab) {
      an = (size_t)(tab - text);
      b = tab + 1;
      bn = n - an - 1;
    }
  }
  mp_tok_options o;
  mp_tok_options_init(&o);
  o.truncation = (mp_trunc_strategy)((sel >> 3) & 3);
  static const size_t lens[4] = {0, 5, 64, 512};
  o.max_length = lens[(sel >> 5) & 3];
  o.add_special_tokens = !(sel & 128);
  o.padding = (sel & 2) ? MP_PAD_MAX_LENGTH : MP_PAD_NONE;
  mp_tok_encoding e;
  if (mp_tokenizer_encode(tok, text, an, b, bn, &o, &e) == MP_OK) {
    size_t vs = mp_tokenizer_vocab_size(tok);
    for (size_t i = 0; i < e.len; i++)
      if (e.input_ids[i] < 0 || (size_t)e.input_ids[i] >= vs || (e.attention_mask[i] != 0 && e.attention_mask[i] != 1))
        abort();
    if (o.truncation != MP_TRUNC_NONE && o.max_length && e.n_real > o.max_length) abort();
    mp_tok_encoding_free(&e);
  }
  /* the batch path must agree with the single path */
  const char *ta[1] = {text};
  size_t tl[1] = {an};
  const char *pb[1] = {b};
  size_t pl[1] = {bn};
  mp_tok_batch bt;
  o.padding = MP_PAD_LONGEST;
  if (mp_tokenizer_encode_batch_n(tok, 1, ta, tl, b ? pb : NULL, b ? pl : NULL, &o, 1, &bt) == MP_OK)
    mp_tok_batch_free(&bt);
  free(text);
  return 0;
}
