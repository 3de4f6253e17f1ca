/* libFuzzer target: tokenizer.json loading (mp_tokenizer_from_json) from arbitrary bytes; every
 * tokenizer that loads is then used: encode of fixed texts and of the input itself (single and
 * pair, with truncation and padding), decode of the ids, and the vocabulary queries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static void exercise(const mp_tokenizer *tok, const char *a, size_t an, const char *b, size_t bn, size_t max_len,
                     mp_trunc_strategy tr) {
  mp_tok_options o;
  mp_tok_options_init(&o);
  o.max_length = max_len;
  o.truncation = tr;
  o.padding = MP_PAD_MAX_LENGTH;
  mp_tok_encoding e;
  if (mp_tokenizer_encode(tok, a, an, b, bn, &o, &e) == MP_OK) {
    if (max_len && tr != MP_TRUNC_NONE && e.len != max_len && e.n_real > max_len) abort();
    mp_sb s;
    mp_sb_init(&s);
    (void)mp_tokenizer_decode(tok, e.input_ids, e.len, 1, &s);
    mp_sb_free(&s);
    for (size_t i = 0; i < e.len; i++) {
      size_t l;
      (void)mp_tokenizer_id_to_token(tok, e.input_ids[i], &l);
    }
    mp_tok_encoding_free(&e);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  mp_tokenizer *tok = NULL;
  if (mp_tokenizer_from_json(buf, size, "fuzz/tokenizer.json", &tok) == MP_OK) {
    static const char *texts[] = {"Hello, world! The quick brown fox.",
                                  "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac  [MASK] <mask> 123", "", " \t\xef\xbf\xbd\xff",
                                  "hello world <s></s>"};
    for (size_t i = 0; i < 5; i++) {
      exercise(tok, texts[i], strlen(texts[i]), NULL, 0, 0, MP_TRUNC_NONE);
      exercise(tok, texts[i], strlen(texts[i]), texts[(i + 1) % 5], strlen(texts[(i + 1) % 5]), 8,
               (mp_trunc_strategy)(i % 4));
    }
    size_t n = size < 512 ? size : 512;
    exercise(tok, buf, n, buf, n / 2, 16, MP_TRUNC_LONGEST_FIRST);
    (void)mp_tokenizer_vocab_size(tok);
    for (int s = 0; s < MP_TOK_SPECIAL_COUNT; s++)
      (void)mp_tokenizer_special_id(tok, (mp_tok_special)s);
    (void)mp_tokenizer_token_to_id(tok, "the", 3);
    mp_tokenizer_close(tok);
  }
  free(buf);
  return 0;
}
