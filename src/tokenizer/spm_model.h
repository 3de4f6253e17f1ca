/* SentencePiece `.model` files (ModelProto, protobuf wire format), read by our own reader.
 *
 * What is read: pieces {piece, score, type}, trainer_spec {model_type, vocab_size, unk/bos/eos/
 * pad ids and pieces, byte_fallback, treat_whitespace_as_suffix, ...}, normalizer_spec {name,
 * precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces}.
 * Unknown fields are skipped as protobuf requires; malformed input (truncated varints or
 * lengths, wrong wire types, groups, bad enum values) is rejected with the file, the field
 * path and the byte offset.
 *
 * Three uses:
 *   - mp_spm_to_hf_json: the tokenizer.json transformers' slow->fast converter
 *     (DebertaV2Converter / SpmConverter) would build, so the tokenizer loader can treat a
 *     folder with only spm.model like one with tokenizer.json (what AutoTokenizer does);
 *   - mp_spm_unigram: the Unigram model of the pieces (HF or SentencePiece flavour);
 *   - mp_spm_processor: SentencePiece's own pipeline (its normalizer + EncodeOptimized +
 *     unknown/byte-fallback handling), i.e. what `sentencepiece.SentencePieceProcessor.encode`
 *     returns; used to check the pieces against the sentencepiece package. */
#ifndef MP_TOKENIZER_SPM_MODEL_H
#define MP_TOKENIZER_SPM_MODEL_H
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/strbuf.h"
#include "mlxport.h"
#include "tokenizer/precompiled.h"
#include "tokenizer/unigram.h"

typedef struct mp_spm_piece {
  const char *piece; /* NUL-terminated (pieces with NUL bytes keep their full len) */
  size_t len;
  float score;
  int type; /* mp_spm_piece_type; absent = NORMAL */
} mp_spm_piece;

typedef struct mp_spm_normalizer_spec {
  const char *name;        /* "" when absent */
  const uint8_t *charsmap; /* precompiled_charsmap bytes (NULL / 0 when absent) */
  size_t charsmap_len;
  int add_dummy_prefix;         /* default 1 */
  int remove_extra_whitespaces; /* default 1 */
  int escape_whitespaces;       /* default 1 */
  int has_rule_tsv;             /* normalization_rule_tsv present (not used for encoding) */
} mp_spm_normalizer_spec;

typedef struct mp_spm_model {
  size_t n_pieces;
  mp_spm_piece *pieces;
  /* trainer_spec */
  int model_type; /* 1 UNIGRAM (default), 2 BPE, 3 WORD, 4 CHAR */
  int64_t vocab_size;
  int byte_fallback, treat_whitespace_as_suffix, split_digits;
  int64_t unk_id, bos_id, eos_id, pad_id; /* defaults 0, 1, 2, -1 */
  const char *unk_piece, *bos_piece, *eos_piece, *pad_piece, *unk_surface;
  mp_spm_normalizer_spec normalizer;
  int has_denormalizer;
  mp_spm_normalizer_spec denormalizer;
  mp_arena arena; /* internal: owns every string and array above */
} mp_spm_model;

/* Parses a ModelProto held in memory (copied). `what` names it in error messages. */
mp_status mp_spm_model_parse(const uint8_t *data, size_t n, const char *what, mp_spm_model **out);
/* Reads and parses a .model file. */
mp_status mp_spm_model_load(const char *path, mp_spm_model **out);
void mp_spm_model_free(mp_spm_model *m);

/* The Unigram model of the pieces. HF flavour: vocab = every piece with its score (as
 * transformers' SpmConverter passes them), unk_id = trainer_spec.unk_id, byte_fallback as given
 * (transformers' DeBERTa converter uses 0). SPM flavour: SentencePiece's own rules (types,
 * byte_fallback from trainer_spec). Fails with MP_ERR_UNSUPPORTED for non-Unigram models. */
mp_status mp_spm_unigram(const mp_spm_model *m, mp_unigram_flavor flavor, int hf_byte_fallback, const char *what,
                         mp_unigram **out);

/* Options of transformers' DebertaV2Tokenizer that change the converted tokenizer
 * (tokenizer_config.json: do_lower_case, split_by_punct; add_prefix_space is always true there). */
/* One added token of tokenizer.json. */
typedef struct mp_spm_added {
  const char *content;
  size_t len;
  int64_t id;
  int single_word, lstrip, rstrip, normalized, special;
} mp_spm_added;

typedef struct mp_spm_hf_opts {
  int do_lower_case;
  int split_by_punct;
  int deberta; /* 1: DebertaV2Converter (Strip, Precompiled, Replace " {2,}"->" ", [CLS]/[SEP]
                * template); 0: plain SpmConverter (Precompiled, Strip right, Replace " {2,}"->"▁",
                * no post-processor) */
  /* When `added` is not NULL it replaces the converter's own added tokens (written sorted by
   * id as given) and cls_id / sep_id (>= 0) the template's [CLS] / [SEP] ids. */
  const mp_spm_added *added;
  size_t n_added;
  int64_t cls_id, sep_id;
} mp_spm_hf_opts;

/* Appends to `out` a tokenizer.json (HF `tokenizers` 0.20 serialization) equivalent to what
 * transformers 4.46 `convert_slow_tokenizer` builds from this model: Unigram model, the
 * normalizer / Metaspace pre-tokenizer / decoder / post-processor of the chosen converter, and
 * CONTROL / USER_DEFINED pieces as added tokens (normalized false; CONTROL ones special).
 * Special tokens from tokenizer_config.json / added_tokens.json are the caller's business. */
mp_status mp_spm_to_hf_json(const mp_spm_model *m, const mp_spm_hf_opts *o, mp_sb *out);

/* The tokenizer.json transformers 4.46 AutoTokenizer builds for a model folder whose tokenizer
 * is `spm_path` (DebertaV2TokenizerFast converted from the slow tokenizer): the converter's
 * output plus the special tokens and added tokens of tokenizer_config.json (do_lower_case,
 * split_by_punct, added_tokens_decoder, *_token), special_tokens_map.json and
 * added_tokens.json in `dir`, resolved the way transformers does (ids from the vocabulary, new
 * ids after it). A tokenizer_class other than DebertaV2Tokenizer(Fast) is MP_ERR_UNSUPPORTED. */
mp_status mp_spm_folder_to_hf_json(const char *spm_path, const char *dir, mp_sb *out);

/* SentencePiece's own encoder (sentencepiece Python `encode(text, out_type=int/str)`). */
typedef struct mp_spm_processor mp_spm_processor;
mp_status mp_spm_processor_create(const mp_spm_model *m, const char *what, mp_spm_processor **out);
void mp_spm_processor_free(mp_spm_processor *p);
/* SentencePiece `Normalizer::Normalize` (longest-match charsmap, whitespace rules, "▁"). */
mp_status mp_spm_normalize(const mp_spm_processor *p, const char *in, size_t n, mp_sb *out);
/* Normalize + Unigram EncodeOptimized + unknown fusing / byte fallback; tokens appended (spans
 * refer to the NORMALIZED text, which is left in `normalized` when it is not NULL). */
mp_status mp_spm_encode(const mp_spm_processor *p, mp_unigram_scratch *scratch, const char *in, size_t n,
                        mp_sb *normalized, mp_unigram_tokens *out);
const mp_unigram *mp_spm_processor_model(const mp_spm_processor *p);

#endif
