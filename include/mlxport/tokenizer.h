/* mlxport public API: tokenizers. Hugging Face-exact tokenization (WordPiece, byte-level BPE,
 * Unigram; tokenizer.json or the legacy files) of texts and text pairs, and decoding.
 *
 *   mlxport_tokenizer *t;
 *   mlxport_tokenizer_open("sentence-transformers/all-MiniLM-L6-v2", &t);
 *   mlxport_encoding *e;
 *   mlxport_tokenizer_encode_batch(t, n, texts, NULL, NULL, &e);  // e->input_ids[i * e->seq_len + j]
 *   mlxport_encoding_free(e);
 *   mlxport_tokenizer_close(t);
 */
#ifndef MLXPORT_TOKENIZER_H
#define MLXPORT_TOKENIZER_H

#include "mlxport/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxport_tokenizer mlxport_tokenizer;

typedef enum mlxport_truncation {
  MLXPORT_TRUNCATE_NONE = 0,
  MLXPORT_TRUNCATE_LONGEST_FIRST = 1, /* transformers' truncation=True */
  MLXPORT_TRUNCATE_ONLY_FIRST = 2,
  MLXPORT_TRUNCATE_ONLY_SECOND = 3,
} mlxport_truncation;

typedef enum mlxport_padding {
  MLXPORT_PAD_LONGEST = 0,    /* every row padded to the longest row of the batch (default) */
  MLXPORT_PAD_MAX_LENGTH = 1, /* every row padded to max_length */
} mlxport_padding;

typedef struct mlxport_encode_options {
  size_t struct_size;            /* sizeof(mlxport_encode_options); set by _init */
  int add_special_tokens;        /* 1 (default): [CLS] ... [SEP] / <s> ... </s> */
  size_t max_length;             /* 0 = unlimited */
  mlxport_truncation truncation; /* default MLXPORT_TRUNCATE_NONE (needs max_length) */
  mlxport_padding padding;       /* default MLXPORT_PAD_LONGEST */
} mlxport_encode_options;

/* A batch of encodings as dense row-major [n][seq_len] matrices, padding on the right with the
 * tokenizer's pad id (attention_mask 0, token_type_ids 0). Allocated by the library. */
typedef struct mlxport_encoding {
  size_t n, seq_len;
  int32_t *input_ids;      /* n * seq_len */
  int32_t *attention_mask; /* n * seq_len: 1 for real tokens */
  int32_t *token_type_ids; /* n * seq_len */
  size_t *n_tokens;        /* n: real tokens of each row */
} mlxport_encoding;

/** mlxport_encode_options_init: fills o with the defaults (special tokens, no truncation,
 * padding to the longest row) and sets o->struct_size.
 * Thread-safety: any thread. */
MLXPORT_API void mlxport_encode_options_init(mlxport_encode_options *o);

/** mlxport_tokenizer_open: loads the tokenizer of a model folder or cached repo id
 * (tokenizer.json first, else vocab.txt / vocab.json + merges.txt / spm.model, as transformers).
 * out: receives the handle (NULL on failure).
 * Ownership: close it with mlxport_tokenizer_close.
 * Errors: MLXPORT_ERR_NOT_FOUND (no tokenizer files), MLXPORT_ERR_FORMAT (the message names the
 *   file and line:column), MLXPORT_ERR_UNSUPPORTED.
 * Thread-safety: any thread. */
MLXPORT_API mlxport_status mlxport_tokenizer_open(const char *path_or_repo, mlxport_tokenizer **out);

/** mlxport_tokenizer_close: releases a tokenizer (NULL is fine).
 * Thread-safety: no other call may be using the handle. */
MLXPORT_API void mlxport_tokenizer_close(mlxport_tokenizer *tok);

/** mlxport_tokenizer_encode_batch: token ids of n texts, or n (text, pair) pairs, identical to
 * Hugging Face tokenizers' encode_batch with the same options.
 * pairs: NULL for single texts.
 * options: NULL for the defaults.
 * out: receives the encoding (NULL on failure).
 * Ownership: free *out with mlxport_encoding_free.
 * Errors: MLXPORT_ERR_INVALID_ARG where Hugging Face fails too (only_second without pairs, a
 *   max_length shorter than the special tokens); the message names the row.
 * Thread-safety: a tokenizer is immutable: any number of threads may encode with it at once. */
MLXPORT_API mlxport_status mlxport_tokenizer_encode_batch(const mlxport_tokenizer *tok, size_t n,
                                                          const char *const *texts, const char *const *pairs,
                                                          const mlxport_encode_options *options,
                                                          mlxport_encoding **out);

/** mlxport_tokenizer_encode: one text (or pair when pair != NULL) into caller-owned ids.
 * ids: caller-owned buffer of capacity `cap`; *n_ids receives the number of ids even when it is
 *   larger than cap (call again with a larger buffer; nothing beyond cap is written).
 * options: NULL for the defaults (no padding is applied to a single text).
 * Errors: as mlxport_tokenizer_encode_batch.
 * Thread-safety: any number of threads at once. */
MLXPORT_API mlxport_status mlxport_tokenizer_encode(const mlxport_tokenizer *tok, const char *text, const char *pair,
                                                    const mlxport_encode_options *options, int32_t *ids, size_t cap,
                                                    size_t *n_ids);

/** mlxport_encoding_free: releases an encoding from mlxport_tokenizer_encode_batch (NULL is fine).
 * Thread-safety: any thread, once per encoding. */
MLXPORT_API void mlxport_encoding_free(mlxport_encoding *enc);

/** mlxport_tokenizer_decode: text of token ids (Hugging Face decode).
 * skip_special_tokens: 1 drops special tokens such as [CLS].
 * text: receives a NUL-terminated library-allocated string.
 * Ownership: free *text with mlxport_free.
 * Errors: MLXPORT_ERR_INVALID_ARG, MLXPORT_ERR_NOMEM.
 * Thread-safety: any number of threads at once. */
MLXPORT_API mlxport_status mlxport_tokenizer_decode(const mlxport_tokenizer *tok, const int32_t *ids, size_t n,
                                                    int skip_special_tokens, char **text);

/** mlxport_tokenizer_vocab_size: vocabulary size including added tokens (one more than the
 * largest id).
 * Thread-safety: any thread. */
MLXPORT_API size_t mlxport_tokenizer_vocab_size(const mlxport_tokenizer *tok);

/** mlxport_tokenizer_token_to_id: id of a token string ("[CLS]", "hello"), or -1.
 * Thread-safety: any thread. */
MLXPORT_API int32_t mlxport_tokenizer_token_to_id(const mlxport_tokenizer *tok, const char *token);

/** mlxport_tokenizer_id_to_token: token string of an id, or NULL when out of range.
 * Returns: a string owned by the tokenizer (valid until mlxport_tokenizer_close); byte-level BPE
 *   tokens are in their byte alphabet ("Ġthe"), SentencePiece ones with "▁".
 * Thread-safety: any thread. */
MLXPORT_API const char *mlxport_tokenizer_id_to_token(const mlxport_tokenizer *tok, int32_t id);

#ifdef __cplusplus
}
#endif
#endif /* MLXPORT_TOKENIZER_H */
