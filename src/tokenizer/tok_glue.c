/* Adapters between the tokenizer pipeline and the Unigram / SentencePiece code (unigram.c,
 * precompiled.c, spm_model.c, written separately). Until that code is integrated these
 * report MP_ERR_UNSUPPORTED with a clear message. */
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

mp_status mp_glue_precompiled_from_base64(const char *b64, size_t n, const char *what, void **out) {
  (void)b64;
  (void)n;
  *out = NULL;
  return mp_err(MP_ERR_UNSUPPORTED, "%s: the SentencePiece 'Precompiled' normalizer is not integrated yet", what);
}
mp_status mp_glue_precompiled_from_bytes(const void *data, size_t n, const char *what, void **out) {
  (void)data;
  (void)n;
  *out = NULL;
  return mp_err(MP_ERR_UNSUPPORTED, "%s: the SentencePiece 'Precompiled' normalizer is not integrated yet", what);
}
mp_status mp_glue_precompiled_normalize(const void *pc, const char *s, size_t n, mp_sb *out) {
  (void)pc;
  mp_sb_clear(out);
  mp_sb_append(out, s, n);
  return MP_OK;
}
void mp_glue_precompiled_free(void *pc) { (void)pc; }
mp_status mp_glue_unigram_from_json(mp_tmodel *m, const mp_json *j, const char *what) {
  (void)m;
  (void)j;
  return mp_err(MP_ERR_UNSUPPORTED, "%s: Unigram models are not integrated yet", what);
}
mp_status mp_glue_unigram_tokenize(const mp_tmodel *m, const char *w, size_t n, mp_i32v *ids) {
  (void)m;
  (void)w;
  (void)n;
  (void)ids;
  return mp_err(MP_ERR_UNSUPPORTED, "Unigram models are not integrated yet");
}
void mp_glue_unigram_free(void *u) { (void)u; }
mp_status mp_glue_spm_to_json(const char *spm_path, const char *dir, mp_sb *out) {
  (void)dir;
  (void)out;
  return mp_err(MP_ERR_UNSUPPORTED, "%s: SentencePiece models are not integrated yet", spm_path);
}
