/* Unigram language-model tokenizer (SentencePiece / HF `tokenizers` Unigram).
 *
 * The model is a scored vocabulary; encoding one normalized, pre-tokenized piece picks the
 * segmentation with the best total score (Viterbi over the byte positions, as HF's
 * `Unigram::encode_optimized` and SentencePiece's `EncodeOptimized` do). Characters no piece
 * covers become the unknown token, scored min_score - 10.
 *
 * Two flavours:
 *   - MP_UNIGRAM_HF (default): exactly HF `tokenizers` 0.20 `Unigram::tokenize`: scores in
 *     double precision, min over every piece, a repeated piece string resolves to its LAST id,
 *     consecutive unknown characters fused into one token (fuse_unk), which then becomes the
 *     unk id — or, with byte_fallback, the `<0xXX>` pieces of its bytes when all exist.
 *   - MP_UNIGRAM_SPM: SentencePiece's own `unigram::Model::EncodeOptimized` + the processor's
 *     unknown handling: float scores, min/max over NORMAL pieces, only NORMAL / USER_DEFINED /
 *     UNUSED pieces in the trie, UNUSED pieces never emitted, USER_DEFINED pieces scored
 *     len * max_score - 0.1, each unknown character on its own in the lattice, then
 *     byte-fallback (every byte of each unknown character) or fusing of adjacent unknowns.
 *
 * A model is immutable after creation and may be shared by threads; each thread passes its
 * own mp_unigram_scratch (reused between calls, so the hot path does not allocate once warm). */
#ifndef MP_TOKENIZER_UNIGRAM_H
#define MP_TOKENIZER_UNIGRAM_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef struct mp_unigram mp_unigram;

/* SentencePiece piece types (ModelProto.SentencePiece.Type). */
typedef enum mp_spm_piece_type {
  MP_SPM_NORMAL = 1,
  MP_SPM_UNKNOWN = 2,
  MP_SPM_CONTROL = 3,
  MP_SPM_USER_DEFINED = 4,
  MP_SPM_UNUSED = 5,
  MP_SPM_BYTE = 6,
} mp_spm_piece_type;

typedef enum mp_unigram_flavor { MP_UNIGRAM_HF = 0, MP_UNIGRAM_SPM = 1 } mp_unigram_flavor;

typedef struct mp_unigram_opts {
  mp_unigram_flavor flavor; /* default MP_UNIGRAM_HF */
  int64_t unk_id;           /* -1 = none (HF unk_id null): an uncovered character is an error */
  int byte_fallback;        /* 0/1 */
  const char *what;         /* names the source in error messages (e.g. a file path) */
} mp_unigram_opts;

void mp_unigram_opts_init(mp_unigram_opts *o); /* HF, unk_id -1, no byte fallback */

/* Builds a model from n pieces: piece i is pieces[i][0..lens[i]) with score scores[i] and type
 * types[i] (types may be NULL = all NORMAL; types only matter for MP_UNIGRAM_SPM).
 * The strings are copied. Errors (MP_ERR_FORMAT): empty vocabulary with an unk id, unk_id out
 * of range; in SPM flavour also the checks SentencePiece makes (empty or duplicate piece, no or
 * two UNKNOWN pieces, BYTE pieces without byte_fallback, missing <0xXX> pieces). */
mp_status mp_unigram_create(size_t n, const char *const *pieces, const size_t *lens, const double *scores,
                            const uint8_t *types, const mp_unigram_opts *opts, mp_unigram **out);
void mp_unigram_free(mp_unigram *m);

/* Builds the HF flavour from a tokenizer.json "model" object {"type": "Unigram", "unk_id": N |
 * null, "vocab": [[piece, score], ...], "byte_fallback": bool}. Errors name `what` and the
 * JSON line:column. */
struct mp_json;
mp_status mp_unigram_from_json(const struct mp_json *model, const char *what, mp_unigram **out);

size_t mp_unigram_size(const mp_unigram *m);
/* Id of a piece string (the last one in HF flavour, the only one in SPM flavour), or -1. */
int64_t mp_unigram_piece_to_id(const mp_unigram *m, const char *s, size_t n);
/* Piece string of an id (NULL when out of range); *len (optional) gets its length. */
const char *mp_unigram_id_to_piece(const mp_unigram *m, int64_t id, size_t *len);
double mp_unigram_score(const mp_unigram *m, int64_t id);
int64_t mp_unigram_unk_id(const mp_unigram *m);
int mp_unigram_byte_fallback(const mp_unigram *m);

/* Reusable per-thread working memory. Zero-initialise ({0}) before first use; free with
 * mp_unigram_scratch_free. */
typedef struct mp_unigram_scratch {
  void *nodes;
  size_t cap;   /* bytes at nodes */
  int borrowed; /* 1: nodes is caller memory (e.g. a stack buffer): never realloc'd or freed;
                 * a longer input switches to a malloc'd buffer (then freed by _scratch_free) */
} mp_unigram_scratch;
/* Bytes of scratch an input of n bytes needs (to size a borrowed buffer). */
size_t mp_unigram_scratch_need(size_t n);
void mp_unigram_scratch_free(mp_unigram_scratch *s);

/* One output token: its id and the byte span [start, end) of the input it covers (byte-fallback
 * tokens all carry the span of their unknown piece). */
typedef struct mp_unigram_token {
  int32_t id;
  uint32_t start, end;
} mp_unigram_token;

/* Growable token vector (malloc'd; the caller frees `v`). Tokens are appended. */
typedef struct mp_unigram_tokens {
  mp_unigram_token *v;
  size_t n, cap;
} mp_unigram_tokens;

/* Encodes s[0..n) (one pre-tokenized, normalized piece; empty gives no tokens), appending to
 * `out`. Fails with MP_ERR_NOT_FOUND when a character is not covered and there is no unk id
 * (HF: "Encountered an unknown token but `unk_id` is missing"), MP_ERR_NOMEM on OOM. */
mp_status mp_unigram_encode(const mp_unigram *m, mp_unigram_scratch *scratch, const char *s, size_t n,
                            mp_unigram_tokens *out);

/* Same, handing each token to emit(user, id, start, end) in order instead of a vector; a non-zero
 * return from emit stops the encoding with MP_ERR_NOMEM (its message set by the callback or
 * here). */
typedef int (*mp_unigram_emit_fn)(void *user, int32_t id, uint32_t start, uint32_t end);
mp_status mp_unigram_encode_fn(const mp_unigram *m, mp_unigram_scratch *scratch, const char *s, size_t n,
                               mp_unigram_emit_fn emit, void *user);

#endif
