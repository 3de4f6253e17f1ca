/* Hugging Face-exact tokenizers (WordPiece, byte-level BPE, Unigram) for the whole library.
 *
 * One mp_tokenizer is loaded from a model folder and is then immutable: every encode function
 * takes it `const` and may be called from several threads at once (each call uses its own
 * scratch memory). The outputs are exactly what Hugging Face `tokenizers` (the Rust library
 * behind transformers' fast tokenizers) produces for the same text, options and files:
 * input_ids, attention_mask and token_type_ids, truncation with stride 0 on the right, padding
 * on the right with the tokenizer's pad token and pad type id 0.
 *
 * Typical use (model / eval code):
 *
 *   mp_tokenizer *tok;
 *   MP_TRY(mp_tokenizer_open(dir, &tok));
 *   mp_tok_options o;
 *   mp_tok_options_init(&o);            // add special tokens, no truncation, no padding
 *   o.max_length = 128; o.truncation = MP_TRUNC_LONGEST_FIRST; o.padding = MP_PAD_LONGEST;
 *   mp_tok_batch b;
 *   MP_TRY(mp_tokenizer_encode_batch(tok, n, premises, hypotheses, &o, &b));
 *   // b.input_ids[i * b.seq_len + j], b.attention_mask[...], b.token_type_ids[...]
 *   mp_tok_batch_free(&b);
 *   mp_tokenizer_close(tok);
 *
 * Text is UTF-8. Invalid UTF-8 is not an error: every maximal invalid subsequence is replaced
 * by U+FFFD exactly as Python's bytes.decode("utf-8", errors="replace") does, so the ids equal
 * what HF gives for the text decoded that way.
 */
#ifndef MP_TOKENIZER_TOKENIZER_H
#define MP_TOKENIZER_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mlxport.h"

typedef struct mp_tokenizer mp_tokenizer;

/* Truncation strategies (HF TruncationStrategy; stride is always 0, direction right). */
typedef enum mp_trunc_strategy {
  MP_TRUNC_NONE = 0,          /* never truncate (max_length only matters for padding) */
  MP_TRUNC_LONGEST_FIRST = 1, /* HF "longest_first" (transformers' truncation=True) */
  MP_TRUNC_ONLY_FIRST = 2,    /* HF "only_first": only the first text loses tokens */
  MP_TRUNC_ONLY_SECOND = 3,   /* HF "only_second": only the second text (pairs only) */
} mp_trunc_strategy;

/* Padding strategies (HF PaddingStrategy; always on the right). */
typedef enum mp_pad_strategy {
  MP_PAD_NONE = 0,       /* no padding: each encoding keeps its own length */
  MP_PAD_LONGEST = 1,    /* batch: pad every row to the longest row of the batch */
  MP_PAD_MAX_LENGTH = 2, /* pad to max_length (rows already longer are left as they are) */
} mp_pad_strategy;

typedef struct mp_tok_options {
  int add_special_tokens;       /* 1 (default): apply the post-processor ([CLS] … [SEP], <s> … </s>) */
  size_t max_length;            /* 0 = unlimited; with truncation != NONE the total length, special
                                 * tokens included, is cut to this; MP_PAD_MAX_LENGTH pads to it */
  mp_trunc_strategy truncation; /* default MP_TRUNC_NONE */
  mp_pad_strategy padding;      /* default MP_PAD_NONE */
} mp_tok_options;

/* Defaults: add_special_tokens = 1, max_length = 0, no truncation, no padding. */
void mp_tok_options_init(mp_tok_options *o);
/* Parses "longest_first" | "only_first" | "only_second" | "none" (also "do_not_truncate");
 * MP_ERR_INVALID_ARG when unknown. */
mp_status mp_trunc_strategy_parse(const char *s, mp_trunc_strategy *out);
/* Parses "none" (also "do_not_pad") | "longest" | "max_length"; MP_ERR_INVALID_ARG when unknown. */
mp_status mp_pad_strategy_parse(const char *s, mp_pad_strategy *out);

/* ---- loading ---------------------------------------------------------------------------- */

/* Loads the tokenizer of a model folder, in transformers' order of preference:
 *   1. tokenizer.json (HF `tokenizers` serialization: normalizer, pre-tokenizer, model,
 *      post-processor, decoder, added tokens);
 *   2. legacy files, converted the way transformers' slow->fast converters do:
 *      vocab.txt (+ tokenizer_config.json: do_lower_case, strip_accents, tokenize_chinese_chars;
 *      BERT-style [CLS] A [SEP] B [SEP]; tokenizer_class MPNet/Roberta-like gives <s> A </s></s> B </s>),
 *      vocab.json + merges.txt (byte-level BPE, RoBERTa/BART processing, add_prefix_space from
 *      tokenizer_config.json), spm.model (SentencePiece Unigram, DeBERTa-v2/v3 processing).
 * Special tokens (cls/sep/pad/mask/unk) come from special_tokens_map.json and
 * tokenizer_config.json when present, else from the post-processor and the usual spellings.
 * tokenizer.json's own "truncation"/"padding" sections are ignored: options are per call.
 * Errors name the file (and line:column for JSON) and what is wrong. */
mp_status mp_tokenizer_open(const char *dir, mp_tokenizer **out);

/* Loads a tokenizer.json held in memory (`what` names it in error messages). Special tokens
 * are then inferred from the post-processor / added tokens only. */
mp_status mp_tokenizer_from_json(const char *json, size_t n, const char *what, mp_tokenizer **out);

/* Frees a tokenizer (NULL is fine). */
void mp_tokenizer_close(mp_tokenizer *tok);

/* ---- encoding ----------------------------------------------------------------------------- */

/* One encoded text or text pair. Arrays are malloc'd and owned by the struct. */
typedef struct mp_tok_encoding {
  int32_t *input_ids;
  int32_t *attention_mask; /* 1 for real tokens, 0 for padding */
  int32_t *token_type_ids; /* segment ids from the post-processor (0 for padding) */
  size_t len;              /* length of the three arrays (padding included) */
  size_t n_real;           /* tokens with attention_mask 1 (= len when not padded) */
} mp_tok_encoding;

/* Encodes `a` (length a_len bytes) or the pair (a, b) when b != NULL, with the given options
 * (NULL = defaults). Follows HF `Tokenizer.encode(..., add_special_tokens)` then truncation
 * (max_length counts the special tokens the post-processor adds) then padding.
 * MP_PAD_LONGEST on a single encoding is no padding.
 * Fails (MP_ERR_INVALID_ARG) exactly where HF fails: only_second without a second text, or a
 * text that is too short to remove enough tokens from with only_first/only_second, or
 * max_length smaller than the number of special tokens. `out` is zeroed on failure. */
mp_status mp_tokenizer_encode(const mp_tokenizer *tok, const char *a, size_t a_len, const char *b, size_t b_len,
                              const mp_tok_options *opt, mp_tok_encoding *out);
/* Frees the arrays of an encoding (NULL / zeroed struct is fine). */
void mp_tok_encoding_free(mp_tok_encoding *e);

/* A batch as one dense row-major matrix [n][seq_len].
 * seq_len = max over rows of their length (= max_length with MP_PAD_MAX_LENGTH unless a row is
 * longer). Row i's HF length is lens[i]: with padding LONGEST / MAX_LENGTH it equals seq_len;
 * with MP_PAD_NONE it is the row's own length and the cells beyond it are filled like padding
 * (pad id, mask 0, type 0) so the matrix is always usable. n_real[i] = real tokens of row i. */
typedef struct mp_tok_batch {
  size_t n, seq_len;
  int32_t *input_ids, *attention_mask, *token_type_ids; /* n * seq_len each */
  size_t *lens, *n_real;                                /* n each */
} mp_tok_batch;

/* Encodes n texts (b == NULL) or n pairs (texts[i], pairs[i]); strings are NUL-terminated
 * (use mp_tokenizer_encode_batch_n for explicit lengths / embedded NULs). Equivalent to HF
 * `Tokenizer.encode_batch` with the same truncation and padding settings. Uses up to
 * `threads` worker threads (0 = 1). On failure the message names the failing row. */
mp_status mp_tokenizer_encode_batch(const mp_tokenizer *tok, size_t n, const char *const *texts,
                                    const char *const *pairs, const mp_tok_options *opt, mp_tok_batch *out);
mp_status mp_tokenizer_encode_batch_n(const mp_tokenizer *tok, size_t n, const char *const *texts,
                                      const size_t *text_lens, const char *const *pairs, const size_t *pair_lens,
                                      const mp_tok_options *opt, int threads, mp_tok_batch *out);
/* Frees a batch (NULL / zeroed struct is fine). */
void mp_tok_batch_free(mp_tok_batch *b);

/* Token ids of `text` from the model alone: added tokens, normalizer, pre-tokenizer and model,
 * no post-processor, no truncation. *ids is malloc'd (caller frees). */
mp_status mp_tokenizer_tokenize(const mp_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids);

/* Number of special tokens the post-processor adds to one text (pair = 0) or a pair (pair = 1)
 * (HF `num_special_tokens_to_add`). */
size_t mp_tokenizer_num_special_tokens(const mp_tokenizer *tok, int pair);

/* ---- vocabulary queries ----------------------------------------------------------------- */

typedef enum mp_tok_special {
  MP_TOK_CLS = 0, /* [CLS] / <s> / BOS that starts a sequence */
  MP_TOK_SEP,     /* [SEP] / </s> */
  MP_TOK_PAD,     /* [PAD] / <pad>; used for padding */
  MP_TOK_MASK,    /* [MASK] / <mask> */
  MP_TOK_UNK,     /* [UNK] / <unk> */
  MP_TOK_SPECIAL_COUNT
} mp_tok_special;

/* Id of a special token, or -1 when the tokenizer has none. */
int32_t mp_tokenizer_special_id(const mp_tokenizer *tok, mp_tok_special which);
/* Vocabulary size including added tokens (HF get_vocab_size(with_added_tokens=True)), i.e. one
 * more than the largest id. */
size_t mp_tokenizer_vocab_size(const mp_tokenizer *tok);
/* Token string of an id (model vocab or added token); NULL when out of range / unused.
 * *len (optional) receives its byte length. Byte-level BPE tokens are returned in their
 * byte-level alphabet ("Ġthe"), SentencePiece ones with "▁". */
const char *mp_tokenizer_id_to_token(const mp_tokenizer *tok, int32_t id, size_t *len);
/* Id of a token string (added tokens first, then the model vocab), or -1. */
int32_t mp_tokenizer_token_to_id(const mp_tokenizer *tok, const char *token, size_t len);
/* Decodes ids to text with the tokenizer's decoder (HF `decode`), appending to `out`.
 * skip_special = 1 drops special added tokens. */
mp_status mp_tokenizer_decode(const mp_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, mp_sb *out);
/* Short description of the model family: "WordPiece", "BPE" or "Unigram". */
const char *mp_tokenizer_model_type(const mp_tokenizer *tok);
/* model_max_length from tokenizer_config.json (0 when absent or absurd, e.g. 1e30). */
size_t mp_tokenizer_model_max_length(const mp_tokenizer *tok);

#endif
