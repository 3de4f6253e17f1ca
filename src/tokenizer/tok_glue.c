/* Adapters between the tokenizer pipeline and the Unigram / SentencePiece code (unigram.c,
 * precompiled.c, spm_model.c), so that the generic tokenizer code needs none of their headers. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

#include "tokenizer/precompiled.h"
#include "tokenizer/spm_model.h"
#include "tokenizer/unigram.h"

mp_status mp_glue_precompiled_from_base64(const char *b64, size_t n, const char *what, void **out) {
  mp_precompiled *p = NULL;
  *out = NULL;
  MP_TRY(mp_precompiled_load_base64(b64 ? b64 : "", b64 ? n : 0, what, &p));
  *out = p;
  return MP_OK;
}
mp_status mp_glue_precompiled_from_bytes(const void *data, size_t n, const char *what, void **out) {
  mp_precompiled *p = NULL;
  *out = NULL;
  MP_TRY(mp_precompiled_load((const uint8_t *)data, n, what, &p));
  *out = p;
  return MP_OK;
}
mp_status mp_glue_precompiled_normalize(const void *pc, const char *s, size_t n, mp_sb *out) {
  mp_sb_clear(out);
  if (!pc) {
    mp_sb_append(out, s, n);
    return MP_OK;
  }
  return mp_precompiled_normalize((const mp_precompiled *)pc, s, n, out, NULL);
}
void mp_glue_precompiled_free(void *pc) { mp_precompiled_free((mp_precompiled *)pc); }

mp_status mp_glue_unigram_from_json(mp_tmodel *m, const mp_json *j, const char *what) {
  mp_unigram *u = NULL;
  MP_TRY(mp_unigram_from_json(j, what, &u));
  m->unigram = u;
  size_t n = mp_unigram_size(u);
  for (size_t i = 0; i < n; i++) {
    size_t len = 0;
    const char *p = mp_unigram_id_to_piece(u, (int64_t)i, &len);
    if (p) MP_TRY(mp_tmodel_add_token(m, p, len, (int32_t)i));
  }
  m->vocab_size = n; /* HF: vocab.len(), duplicates included */
  int64_t unk = mp_unigram_unk_id(u);
  m->unk_id = unk >= 0 && unk < INT32_MAX ? (int32_t)unk : -1;
  if (m->unk_id >= 0 && (size_t)m->unk_id < m->n_ids && m->id_tok[m->unk_id]) {
    m->unk_token = malloc(m->id_tok_len[m->unk_id] + 1);
    if (!m->unk_token) return mp_err(MP_ERR_NOMEM, "out of memory");
    memcpy(m->unk_token, m->id_tok[m->unk_id], m->id_tok_len[m->unk_id]);
    m->unk_token[m->id_tok_len[m->unk_id]] = 0;
  }
  return MP_OK;
}

typedef struct uni_scratch {
  mp_unigram_scratch s;
  mp_unigram_tokens toks;
} uni_scratch;

mp_status mp_glue_unigram_tokenize(const mp_tmodel *m, mp_tok_ctx *c, const char *w, size_t n, mp_i32v *ids) {
  if (!c->uni_scratch) {
    c->uni_scratch = calloc(1, sizeof(uni_scratch));
    if (!c->uni_scratch) return mp_err(MP_ERR_NOMEM, "out of memory (Unigram scratch)");
  }
  uni_scratch *u = c->uni_scratch;
  u->toks.n = 0;
  MP_TRY(mp_unigram_encode((const mp_unigram *)m->unigram, &u->s, w, n, &u->toks));
  for (size_t i = 0; i < u->toks.n; i++)
    MP_TRY(mp_i32v_push(ids, u->toks.v[i].id));
  return MP_OK;
}
void mp_glue_scratch_free(void *scratch) {
  if (!scratch) return;
  uni_scratch *u = scratch;
  mp_unigram_scratch_free(&u->s);
  free(u->toks.v);
  free(u);
}
void mp_glue_unigram_free(void *u) { mp_unigram_free((mp_unigram *)u); }
