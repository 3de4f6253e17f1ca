/* Decoders of HF `tokenizers` (ids -> text), enough to round-trip in tests. Internal. */
#ifndef MP_TOKENIZER_TOK_DECODE_H
#define MP_TOKENIZER_TOK_DECODE_H
#include "core/json.h"
#include "core/strbuf.h"
#include "tokenizer/tokenizer.h"

typedef struct mp_tdecoder mp_tdecoder;
/* NULL json / null -> *out = NULL (tokens joined with " ", HF's default). */
mp_status mp_tdecoder_from_json(const mp_json *j, const char *what, mp_tdecoder **out);
void mp_tdecoder_free(mp_tdecoder *d);
mp_status mp_tdecoder_decode(const mp_tdecoder *d, const mp_tokenizer *tok, const int32_t *ids, size_t n,
                             int skip_special, mp_sb *out);
/* 1 when id is a special added token. */
int mp_tokenizer_is_special_id(const mp_tokenizer *tok, int32_t id);
/* Legacy files (vocab.txt / vocab.json+merges.txt / spm.model) -> equivalent tokenizer.json text,
 * built the way transformers' slow->fast converters do. *label names the source files. */
mp_status mp_tok_legacy_json(const char *dir, mp_sb *out, char **label);
#endif
