/* Internal structures of the tokenizer (not for use outside src/tokenizer/). */
#ifndef MP_TOKENIZER_TOK_INTERNAL_H
#define MP_TOKENIZER_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "tokenizer/tokenizer.h"

/* ---- UTF-8 and Unicode properties (tok_util.c) ---------------------------------------- */

/* Decodes one code point at s[0..n) (n >= 1), assuming valid UTF-8; returns its byte length. */
static inline int mp_u8_dec(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned c = s[0];
  if (c < 0x80 || n < 2) {
    *cp = c;
    return 1;
  }
  if (c < 0xE0) {
    *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    return 2;
  }
  if (c < 0xF0 || n < 4) {
    if (n < 3) {
      *cp = c;
      return 1;
    }
    *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    return 3;
  }
  *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
  return 4;
}
/* Length of the UTF-8 character starting with byte c (valid UTF-8 assumed). */
static inline int mp_u8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }
/* Appends the UTF-8 encoding of cp. */
void mp_u8_put(mp_sb *sb, uint32_t cp);
/* Copies s[0..n) to out (cleared first) replacing ill-formed sequences with U+FFFD exactly like
 * Python's bytes.decode("utf-8", "replace"). Returns 1 when something was replaced. */
int mp_u8_sanitize(const char *s, size_t n, mp_sb *out);

int mp_uc_is_whitespace(uint32_t c);   /* Rust char::is_whitespace (White_Space) */
int mp_uc_is_bert_ws(uint32_t c);      /* \t \n \r or White_Space */
int mp_uc_is_other(uint32_t c);        /* Cc Cf Co Cs (HF is_other; not Cn) */
int mp_uc_is_control_bert(uint32_t c); /* BERT is_control: C* except \t \n \r */
int mp_uc_is_punct(uint32_t c);        /* ASCII punctuation or P* */
int mp_uc_is_mn(uint32_t c);           /* Mn */
int mp_uc_is_numeric(uint32_t c);      /* Nd Nl No (Rust char::is_numeric) */
int mp_uc_is_word(uint32_t c);         /* Rust regex \w */
int mp_uc_is_chinese(uint32_t c);      /* BERT CJK ranges */
/* Rust char::to_lowercase (full mapping, U+0130 -> "i̇"); appends UTF-8 to out. */
void mp_uc_lower_put(mp_sb *out, uint32_t c);

/* ---- hash maps (tok_util.c) ----------------------------------------------------------- */

/* String -> int32 map, open addressing; keys are copied into the map's arena. */
typedef struct mp_strmap {
  uint32_t *slots; /* entry index + 1, 0 = empty */
  size_t cap;      /* power of two */
  const char **keys;
  uint32_t *klen;
  uint32_t *khash;
  int32_t *vals;
  size_t n, ecap;
  mp_arena arena;
} mp_strmap;
void mp_strmap_init(mp_strmap *m);
void mp_strmap_free(mp_strmap *m);
/* Inserts or overwrites; returns MP_OK or MP_ERR_NOMEM. */
mp_status mp_strmap_put(mp_strmap *m, const char *k, size_t n, int32_t v);
/* Returns the value or -1. */
int32_t mp_strmap_get(const mp_strmap *m, const char *k, size_t n);
uint32_t mp_hash_bytes(const void *p, size_t n);

/* (a, b) id pair -> (rank, new id) for BPE merges. */
typedef struct mp_pairmap {
  uint64_t *keys; /* UINT64_MAX = empty */
  int32_t *rank, *id;
  size_t cap, n;
} mp_pairmap;
mp_status mp_pairmap_put(mp_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
/* Returns 1 and fills rank/id when present. */
static inline int mp_pairmap_get(const mp_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
  if (!m->cap) return 0;
  uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  uint64_t h = k * 0x9E3779B97F4A7C15ull;
  size_t mask = m->cap - 1, i = (size_t)(h >> 32) & mask;
  for (;;) {
    uint64_t kk = m->keys[i];
    if (kk == k) {
      *rank = m->rank[i];
      *id = m->id[i];
      return 1;
    }
    if (kk == UINT64_MAX) return 0;
    i = (i + 1) & mask;
  }
}
void mp_pairmap_free(mp_pairmap *m);

/* ---- regexes (tok_util.c) -------------------------------------------------------------- */

typedef struct mp_tregex {
  pcre2_code *code;
  int literal; /* pattern was a plain string (compiled escaped) */
} mp_tregex;
/* Compiles an Oniguruma/Rust-style pattern with PCRE2 (UTF|UCP), translating \s so that it
 * matches Unicode White_Space like Oniguruma does. `literal` escapes the whole pattern. */
mp_status mp_tregex_compile(mp_tregex *re, const char *pat, size_t n, int literal, const char *what);
void mp_tregex_free(mp_tregex *re);

/* A match list: (start, end, is_match) covering s (Rust Pattern::find_matches). */
typedef struct mp_span {
  uint32_t start, end;
  int match;
} mp_span;
typedef struct mp_spanv {
  mp_span *v;
  size_t n, cap;
} mp_spanv;

/* ---- pipeline pieces (tok_pipeline.c) ------------------------------------------------- */

typedef enum {
  MP_N_BERT,
  MP_N_LOWER,
  MP_N_STRIP_ACCENTS,
  MP_N_NFC,
  MP_N_NFD,
  MP_N_NFKC,
  MP_N_NFKD,
  MP_N_REPLACE,
  MP_N_PREPEND,
  MP_N_STRIP,
  MP_N_SEQ,
  MP_N_PRECOMPILED,
  MP_N_BYTELEVEL
} mp_norm_type;

typedef struct mp_tnorm mp_tnorm;
struct mp_tnorm {
  mp_norm_type type;
  int clean_text, chinese, strip_accents, lowercase; /* BERT */
  int strip_left, strip_right;                       /* Strip */
  char *content;                                     /* Replace content / Prepend */
  size_t content_len;
  mp_tregex re; /* Replace */
  mp_tnorm **kids;
  size_t n_kids;
  void *precompiled; /* mp_precompiled* (unigram helper) */
};

typedef enum { MP_B_REMOVED, MP_B_ISOLATED, MP_B_MERGED_PREV, MP_B_MERGED_NEXT, MP_B_CONTIGUOUS } mp_split_behavior;

typedef enum {
  MP_P_BERT,
  MP_P_BYTELEVEL,
  MP_P_METASPACE,
  MP_P_WHITESPACE,
  MP_P_WHITESPACE_SPLIT,
  MP_P_PUNCT,
  MP_P_DIGITS,
  MP_P_SPLIT,
  MP_P_SEQ,
  MP_P_CHARDELIM
} mp_pretok_type;

typedef enum { MP_PREPEND_ALWAYS, MP_PREPEND_FIRST, MP_PREPEND_NEVER } mp_prepend_scheme;

typedef struct mp_tpretok mp_tpretok;
struct mp_tpretok {
  mp_pretok_type type;
  int add_prefix_space, use_regex; /* ByteLevel */
  char replacement[8];             /* Metaspace (UTF-8) */
  size_t replacement_len;
  uint32_t replacement_cp;
  mp_prepend_scheme prepend;
  int split;
  mp_split_behavior behavior; /* Punctuation, Split */
  int individual_digits;
  int invert;
  uint32_t delim; /* CharDelimiterSplit */
  mp_tregex re;   /* Split, ByteLevel */
  mp_tpretok **kids;
  size_t n_kids;
};

/* Text pieces flowing through the pipeline. Strings live in a pool (offsets, since the pool
 * grows). `first` = the piece starts at original offset 0 (Metaspace prepend_scheme first). */
typedef struct mp_piece {
  uint32_t off, len;
  int32_t added_id; /* >= 0: an added token, already final */
  int first;
} mp_piece;
typedef struct mp_piecev {
  mp_piece *v;
  size_t n, cap;
} mp_piecev;

typedef struct mp_i32v {
  int32_t *v;
  size_t n, cap;
} mp_i32v;

/* Per-call scratch memory (reused across calls of one thread). */
typedef struct mp_tok_ctx {
  mp_sb text, norm, t1, t2, t3, pool_a, pool_b, wbuf;
  mp_piecev pa, pb, pc;
  mp_spanv spans, spans2;
  mp_i32v ids;
  pcre2_match_data *md;
  /* BPE work arrays */
  int32_t *sym_id, *sym_prev, *sym_next;
  uint32_t *sym_len;
  size_t sym_cap;
  struct mp_bpe_heap_item *heap;
  size_t heap_cap;
  void *uni_scratch; /* Unigram scratch (tok_glue.c) */
} mp_tok_ctx;
void mp_tok_ctx_init(mp_tok_ctx *c);
void mp_tok_ctx_free(mp_tok_ctx *c);

mp_status mp_i32v_push(mp_i32v *v, int32_t x);
mp_status mp_piecev_push(mp_piecev *v, mp_piece p);
mp_status mp_spanv_push(mp_spanv *v, uint32_t s, uint32_t e, int match);

void mp_tnorm_free(mp_tnorm *n);
void mp_tpretok_free(mp_tpretok *p);
/* Normalizes s[0..n) into out (cleared). */
mp_status mp_tnorm_apply(const mp_tnorm *nz, mp_tok_ctx *c, const char *s, size_t n, mp_sb *out);
/* Pre-tokenizes: reads pieces `in` (strings in `in_pool`), writes `out` (strings in `out_pool`).
 * Pieces with added_id >= 0 pass through unchanged. */
mp_status mp_tpretok_apply(const mp_tpretok *p, mp_tok_ctx *c, const mp_piecev *in, const mp_sb *in_pool,
                           mp_piecev *out, mp_sb *out_pool);
/* Regex find_matches into spans (cleared). */
mp_status mp_tregex_find(const mp_tregex *re, mp_tok_ctx *c, const char *s, size_t n, mp_spanv *out);
mp_status mp_tnorm_from_json(const mp_json *j, const char *what, mp_tnorm **out);
mp_status mp_tpretok_from_json(const mp_json *j, const char *what, mp_tpretok **out);
extern const uint32_t mp_bytelevel_map[256];

/* ---- models (tok_models.c) ------------------------------------------------------------- */

typedef enum { MP_M_WORDPIECE, MP_M_BPE, MP_M_UNIGRAM, MP_M_WORDLEVEL } mp_model_type;

typedef struct mp_tmodel {
  mp_model_type type;
  mp_strmap vocab; /* token -> id */
  char **id_tok;   /* id -> token (NULL for holes) */
  uint32_t *id_tok_len;
  size_t n_ids;      /* max id + 1 */
  size_t vocab_size; /* number of entries (HF get_vocab_size) */
  int32_t unk_id;    /* -1 when none */
  char *unk_token;
  /* WordPiece */
  char *prefix;
  size_t prefix_len;
  size_t max_chars;
  /* BPE */
  mp_pairmap merges;
  char *suffix;
  size_t suffix_len;
  int has_prefix, has_suffix;
  int byte_fallback, fuse_unk, ignore_merges;
  int32_t byte_ids[256]; /* <0xXX> ids for byte fallback (-1 when absent) */
  /* Unigram (unigram helper) */
  void *unigram;
} mp_tmodel;

mp_status mp_tmodel_from_json(const mp_json *j, const char *what, mp_tmodel **out);
void mp_tmodel_free(mp_tmodel *m);
/* Appends the ids of one pre-tokenized word. */
mp_status mp_tmodel_tokenize(const mp_tmodel *m, mp_tok_ctx *c, const char *w, size_t n, mp_i32v *ids);

/* ---- adapters to the Unigram / SentencePiece code (tok_glue.c) ------------------------- */

/* Precompiled (SentencePiece charsmap) normalizer from the base64 text of tokenizer.json
 * (NULL/0 = empty map, identity). */
mp_status mp_glue_precompiled_from_base64(const char *b64, size_t n, const char *what, void **out);
mp_status mp_glue_precompiled_from_bytes(const void *data, size_t n, const char *what, void **out);
mp_status mp_glue_precompiled_normalize(const void *pc, const char *s, size_t n, mp_sb *out);
void mp_glue_precompiled_free(void *pc);
/* Unigram model from tokenizer.json's "model" object (vocab [[piece, score], ...], unk_id,
 * byte_fallback); fills m->vocab / id_tok etc. through mp_tmodel_add_token. */
mp_status mp_glue_unigram_from_json(mp_tmodel *m, const mp_json *j, const char *what);
mp_status mp_glue_unigram_tokenize(const mp_tmodel *m, mp_tok_ctx *c, const char *w, size_t n, mp_i32v *ids);
void mp_glue_scratch_free(void *scratch);
void mp_glue_unigram_free(void *u);
/* Registers token `tok` with id `id` in a model's vocab and reverse table. */
mp_status mp_tmodel_add_token(mp_tmodel *m, const char *tok, size_t n, int32_t id);

#endif
