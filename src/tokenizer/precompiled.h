/* SentencePiece `precompiled_charsmap` normalizer (HF tokenizers' `Precompiled`).
 *
 * The blob is what SentencePiece stores in NormalizerSpec.precompiled_charsmap (raw bytes in a
 * .model file, base64 in tokenizer.json):
 *
 *   u32 little-endian trie_size | trie_size bytes: darts-clone double array (u32 units)
 *   | the pool of replacement strings, each ended by a NUL byte.
 *
 * A trie key is a UTF-8 source sequence; its value is the offset in the pool of the replacement.
 *
 * Two matching disciplines exist and both are provided:
 *   - mp_precompiled_normalize: HF `tokenizers` (crate spm_precompiled) semantics. The text is
 *     cut into extended grapheme clusters; a cluster shorter than 6 bytes whose bytes start with
 *     a key is replaced by the replacement of the SHORTEST matching key (the rest of the cluster
 *     is dropped, as HF does); otherwise each character is looked up alone and replaced when it
 *     starts with a key, else copied.
 *   - mp_precompiled_prefix: one step of SentencePiece's own normalizer (LONGEST key that
 *     prefixes the input), used by the sentencepiece-compatible path in spm_model.h.
 *
 * A loaded mp_precompiled is immutable and may be shared by threads. All reads of the trie and
 * pool are bounds-checked: a malformed blob gives MP_ERR_FORMAT, never a crash. */
#ifndef MP_TOKENIZER_PRECOMPILED_H
#define MP_TOKENIZER_PRECOMPILED_H
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mlxport.h"

typedef struct mp_precompiled mp_precompiled;

/* Parses a raw charsmap blob (copied; the caller keeps its buffer). `what` names the source in
 * error messages (e.g. "spm.model: normalizer_spec.precompiled_charsmap"); NULL = "charsmap". */
mp_status mp_precompiled_load(const uint8_t *blob, size_t n, const char *what, mp_precompiled **out);
/* Same from the base64 text tokenizer.json stores (standard alphabet, '=' padding optional). */
mp_status mp_precompiled_load_base64(const char *b64, size_t n, const char *what, mp_precompiled **out);
void mp_precompiled_free(mp_precompiled *p);
/* From a tokenizer.json normalizer object {"type": "Precompiled", "precompiled_charsmap": B64}. */
struct mp_json;
mp_status mp_precompiled_from_json(const struct mp_json *obj, const char *what, mp_precompiled **out);

/* HF `Precompiled::normalize`: appends the normalized form of in[0..n) to `out`.
 * When `align` is not NULL, for every byte appended to `out` one uint32_t is appended to `align`
 * (as raw bytes): the offset in `in` of the start of the source unit (grapheme cluster or
 * character) that produced it; units replaced by an empty string leave no trace.
 * Input should be valid UTF-8; stray invalid bytes are copied through unchanged.
 * Fails only with MP_ERR_FORMAT (a trie value outside the pool) or MP_ERR_NOMEM. */
mp_status mp_precompiled_normalize(const mp_precompiled *p, const char *in, size_t n, mp_sb *out, mp_sb *align);

/* SentencePiece `Normalizer::NormalizePrefix` core: finds the LONGEST key that is a prefix of
 * in[0..n). Returns 1 and sets *consumed (key length) and *rep / *rep_len (replacement, not
 * NUL-terminated, inside the charsmap) when found; 0 when no key matches; -1 when the trie
 * points outside the pool (malformed blob; error message set). */
int mp_precompiled_prefix(const mp_precompiled *p, const char *in, size_t n, size_t *consumed, const char **rep,
                          size_t *rep_len);

/* Number of double-array units and pool bytes (for inspection / tests). */
size_t mp_precompiled_trie_units(const mp_precompiled *p);
size_t mp_precompiled_pool_size(const mp_precompiled *p);

/* Decodes standard base64 (whitespace not allowed, '=' padding optional). Returns a malloc'd
 * buffer in *out (caller frees) or MP_ERR_FORMAT naming `what` and the offending offset. */
mp_status mp_base64_decode(const char *b64, size_t n, const char *what, uint8_t **out, size_t *out_len);
/* Appends the standard base64 encoding (with '=' padding) of data[0..n) to sb. */
void mp_base64_encode(mp_sb *sb, const uint8_t *data, size_t n);

#endif
