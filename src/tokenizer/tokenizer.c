/* mp_tokenizer: loading tokenizer.json, added vocabulary, encode pipeline, post-processing,
 * truncation and padding, exactly as HF `tokenizers` 0.20 does. */
#include "tokenizer/tokenizer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "tokenizer/tok_decode.h"
#include "tokenizer/tok_internal.h"

/* ---- added vocabulary ------------------------------------------------------------------- */

typedef struct mp_added_tok {
  char *content;
  size_t len;
  int32_t id;
  int single_word, lstrip, rstrip, normalized, special;
} mp_added_tok;

typedef struct mp_trie_node {
  int32_t child, sibling; /* first child, next sibling (-1 none) */
  int32_t tok;            /* index in tok->added of the token ending here, -1 none */
  uint8_t byte;
} mp_trie_node;

typedef struct mp_trie {
  mp_trie_node *v;
  size_t n, cap;
  uint8_t first[256];
  int empty;
} mp_trie;

/* ---- post-processor ------------------------------------------------------------------------ */

typedef struct mp_tpiece {
  int kind; /* 0 = sequence A, 1 = sequence B, 2 = special */
  int32_t type_id;
  int32_t *ids;
  size_t n_ids;
} mp_tpiece;

typedef enum { MP_POST_NONE, MP_POST_TEMPLATE, MP_POST_BERT, MP_POST_ROBERTA } mp_post_kind;

typedef struct mp_tpost {
  mp_post_kind kind;
  mp_tpiece *single, *pair;
  size_t n_single, n_pair;
  size_t added_single, added_pair;
} mp_tpost;

struct mp_tokenizer {
  mp_tnorm *norm;
  mp_tpretok *pretok;
  mp_tmodel *model;
  mp_tpost post;
  mp_tdecoder *dec;
  mp_added_tok *added; /* specials first, then the others (HF order) */
  size_t n_added;
  mp_strmap added_map; /* content -> id */
  mp_trie trie_raw, trie_norm;
  char **norm_pat; /* normalized pattern per added token (normalized ones) */
  size_t *norm_pat_len;
  /* id -> token for added ids outside the model vocab; special flag per id */
  size_t n_ids;
  uint8_t *is_special;
  char **added_by_id;
  uint32_t *added_by_id_len;
  int32_t special[MP_TOK_SPECIAL_COUNT];
  size_t model_max_length;
  int needs_first; /* a Metaspace pre-tokenizer with prepend_scheme "first" */
};

static int pretok_needs_first(const mp_tpretok *p) {
  if (!p) return 0;
  if (p->type == MP_P_METASPACE && p->prepend == MP_PREPEND_FIRST) return 1;
  for (size_t i = 0; i < p->n_kids; i++)
    if (pretok_needs_first(p->kids[i])) return 1;
  return 0;
}

void mp_tok_options_init(mp_tok_options *o) {
  memset(o, 0, sizeof *o);
  o->add_special_tokens = 1;
}

mp_status mp_trunc_strategy_parse(const char *s, mp_trunc_strategy *out) {
  if (!strcmp(s, "longest_first"))
    *out = MP_TRUNC_LONGEST_FIRST;
  else if (!strcmp(s, "only_first"))
    *out = MP_TRUNC_ONLY_FIRST;
  else if (!strcmp(s, "only_second"))
    *out = MP_TRUNC_ONLY_SECOND;
  else if (!strcmp(s, "none") || !strcmp(s, "do_not_truncate"))
    *out = MP_TRUNC_NONE;
  else
    return mp_err(MP_ERR_INVALID_ARG, "unknown truncation '%s' (longest_first, only_first, only_second or none)", s);
  return MP_OK;
}

mp_status mp_pad_strategy_parse(const char *s, mp_pad_strategy *out) {
  if (!strcmp(s, "none") || !strcmp(s, "do_not_pad"))
    *out = MP_PAD_NONE;
  else if (!strcmp(s, "longest"))
    *out = MP_PAD_LONGEST;
  else if (!strcmp(s, "max_length"))
    *out = MP_PAD_MAX_LENGTH;
  else
    return mp_err(MP_ERR_INVALID_ARG, "unknown padding '%s' (none, longest or max_length)", s);
  return MP_OK;
}

/* ---- trie -------------------------------------------------------------------------------- */

static mp_status trie_add(mp_trie *t, const char *s, size_t n, int32_t tok) {
  if (!t->v) {
    t->cap = 64;
    t->v = malloc(t->cap * sizeof *t->v);
    if (!t->v) return mp_err(MP_ERR_NOMEM, "out of memory (added tokens)");
    t->v[0] = (mp_trie_node){-1, -1, -1, 0};
    t->n = 1;
  }
  if (n == 0) return MP_OK;
  t->first[(unsigned char)s[0]] = 1;
  int32_t cur = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t b = (uint8_t)s[i];
    int32_t ch = t->v[cur].child;
    while (ch >= 0 && t->v[ch].byte != b)
      ch = t->v[ch].sibling;
    if (ch < 0) {
      if (t->n == t->cap) {
        mp_trie_node *nv = realloc(t->v, 2 * t->cap * sizeof *nv);
        if (!nv) return mp_err(MP_ERR_NOMEM, "out of memory (added tokens)");
        t->v = nv;
        t->cap *= 2;
      }
      ch = (int32_t)t->n++;
      t->v[ch] = (mp_trie_node){-1, t->v[cur].child, -1, b};
      t->v[cur].child = ch;
    }
    cur = ch;
  }
  if (t->v[cur].tok < 0) t->v[cur].tok = tok; /* first pattern wins on duplicates */
  return MP_OK;
}

/* Longest pattern starting at s[i]; returns its token index or -1, *end = match end. */
static int32_t trie_longest(const mp_trie *t, const char *s, size_t n, size_t i, size_t *end) {
  int32_t best = -1, cur = 0;
  for (size_t k = i; k < n; k++) {
    uint8_t b = (uint8_t)s[k];
    int32_t ch = t->v[cur].child;
    while (ch >= 0 && t->v[ch].byte != b)
      ch = t->v[ch].sibling;
    if (ch < 0) break;
    cur = ch;
    if (t->v[cur].tok >= 0) {
      best = t->v[cur].tok;
      *end = k + 1;
    }
  }
  return best;
}

static int ends_with_word(const char *s, size_t n) {
  if (!n) return 0;
  size_t st = n - 1;
  while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80)
    st--;
  uint32_t cp;
  mp_u8_dec((const unsigned char *)s + st, n - st, &cp);
  return mp_uc_is_word(cp);
}

static int starts_with_word(const char *s, size_t n) {
  if (!n) return 0;
  uint32_t cp;
  mp_u8_dec((const unsigned char *)s, n, &cp);
  return mp_uc_is_word(cp);
}

/* HF AddedVocabulary::find_matches: pieces of s as (start, end, token id or -1). */
static mp_status find_added(const mp_tokenizer *tok, const mp_trie *t, const char *s, size_t n, mp_spanv *out,
                            mp_i32v *ids) {
  out->n = 0;
  ids->n = 0;
  if (!t->v || t->v[0].child < 0 || n == 0) {
    MP_TRY(mp_spanv_push(out, 0, (uint32_t)n, 0));
    return mp_i32v_push(ids, -1);
  }
  size_t start_offset = 0, i = 0;
  const unsigned char *u = (const unsigned char *)s;
  while (i < n) {
    if (!t->first[u[i]]) {
      i++;
      continue;
    }
    size_t stop = 0;
    int32_t k = trie_longest(t, s, n, i, &stop);
    if (k < 0) {
      i++;
      continue;
    }
    size_t start = i;
    i = stop; /* the scan resumes after the match, kept or not */
    const mp_added_tok *a = &tok->added[k];
    if (a->single_word) {
      int start_space = start == 0 || !ends_with_word(s, start);
      int stop_space = stop == n || !starts_with_word(s + stop, n - stop);
      if (!start_space || !stop_space) continue;
    }
    if (a->lstrip) {
      size_t ns = start;
      while (ns > 0) {
        size_t st = ns - 1;
        while (st > 0 && (u[st] & 0xC0) == 0x80)
          st--;
        uint32_t cp;
        mp_u8_dec(u + st, ns - st, &cp);
        if (!mp_uc_is_whitespace(cp)) break;
        ns = st;
      }
      start = ns > start_offset ? ns : start_offset;
    }
    if (a->rstrip) {
      while (stop < n) {
        uint32_t cp;
        int kk = mp_u8_dec(u + stop, n - stop, &cp);
        if (!mp_uc_is_whitespace(cp)) break;
        stop += (size_t)kk;
      }
      i = stop;
    }
    if (start_offset < start) {
      MP_TRY(mp_spanv_push(out, (uint32_t)start_offset, (uint32_t)start, 0));
      MP_TRY(mp_i32v_push(ids, -1));
    }
    MP_TRY(mp_spanv_push(out, (uint32_t)start, (uint32_t)stop, 1));
    MP_TRY(mp_i32v_push(ids, a->id));
    start_offset = stop;
  }
  if (start_offset != n) {
    MP_TRY(mp_spanv_push(out, (uint32_t)start_offset, (uint32_t)n, 0));
    MP_TRY(mp_i32v_push(ids, -1));
  }
  return MP_OK;
}

/* ---- encoding one sequence ------------------------------------------------------------------ */

/* Encodes one text into ids (appended to out). */
static mp_status encode_seq(const mp_tokenizer *tok, mp_tok_ctx *c, const char *text, size_t len, mp_i32v *out) {
  mp_u8_sanitize(text, len, &c->text);
  if (c->text.oom) return mp_err(MP_ERR_NOMEM, "out of memory (text of %zu bytes)", len);
  const char *s = c->text.buf ? c->text.buf : "";
  size_t n = c->text.len;
  mp_spanv raw = {0}, sub = {0};
  mp_i32v raw_ids = {0}, sub_ids = {0};
  mp_status st = find_added(tok, &tok->trie_raw, s, n, &raw, &raw_ids);
  c->pa.n = 0;
  mp_sb_clear(&c->pool_a);
  for (size_t i = 0; st == MP_OK && i < raw.n; i++) {
    const char *ps = s + raw.v[i].start;
    size_t pn = raw.v[i].end - raw.v[i].start;
    if (raw_ids.v[i] >= 0) {
      mp_piece p = {(uint32_t)c->pool_a.len, (uint32_t)pn, raw_ids.v[i], 0};
      mp_sb_append(&c->pool_a, ps, pn);
      st = mp_piecev_push(&c->pa, p);
      continue;
    }
    const char *ns = ps;
    size_t nn = pn;
    /* HF's "first" (Metaspace prepend_scheme first) is "the normalized piece starts at original
     * offset 0": false when normalization deleted the first character (Strip, clean_text...) */
    int first = raw.v[i].start == 0;
    if (first && tok->needs_first && tok->norm && pn) {
      st = mp_tnorm_apply(tok->norm, c, ps,
                          (size_t)mp_u8_len((unsigned char)ps[0]) <= pn ? (size_t)mp_u8_len((unsigned char)ps[0]) : pn,
                          &c->norm);
      if (st != MP_OK) break;
      if (c->norm.len == 0) first = 0;
    }
    if (tok->norm) {
      st = mp_tnorm_apply(tok->norm, c, ps, pn, &c->norm);
      if (st != MP_OK) break;
      ns = c->norm.buf ? c->norm.buf : "";
      nn = c->norm.len;
    }
    st = find_added(tok, &tok->trie_norm, ns, nn, &sub, &sub_ids);
    for (size_t k = 0; st == MP_OK && k < sub.n; k++) {
      size_t a = sub.v[k].start, b = sub.v[k].end;
      if (a == b) continue;
      if (c->pool_a.len + (b - a) > UINT32_MAX) {
        st = mp_err(MP_ERR_NOMEM, "text too long to tokenize (over 4 GiB)");
        break;
      }
      mp_piece p = {(uint32_t)c->pool_a.len, (uint32_t)(b - a), sub_ids.v[k], first && a == 0};
      mp_sb_append(&c->pool_a, ns + a, b - a);
      st = mp_piecev_push(&c->pa, p);
    }
  }
  free(raw.v);
  free(sub.v);
  free(raw_ids.v);
  free(sub_ids.v);
  if (st != MP_OK) return st;
  if (c->pool_a.oom) return mp_err(MP_ERR_NOMEM, "out of memory");
  const mp_piecev *pv = &c->pa;
  const mp_sb *pool = &c->pool_a;
  if (tok->pretok) {
    MP_TRY(mp_tpretok_apply(tok->pretok, c, &c->pa, &c->pool_a, &c->pb, &c->pool_b));
    pv = &c->pb;
    pool = &c->pool_b;
  }
  for (size_t i = 0; i < pv->n; i++) {
    const mp_piece *p = &pv->v[i];
    if (p->added_id >= 0)
      MP_TRY(mp_i32v_push(out, p->added_id));
    else if (p->len)
      MP_TRY(mp_tmodel_tokenize(tok->model, c, pool->buf + p->off, p->len, out));
  }
  return MP_OK;
}

/* ---- truncation, post-processing, padding ------------------------------------------------------ */

size_t mp_tokenizer_num_special_tokens(const mp_tokenizer *tok, int pair) {
  return pair ? tok->post.added_pair : tok->post.added_single;
}

/* HF utils::truncation::truncate_encodings with stride 0, direction right. */
static mp_status truncate_ids(size_t *na, size_t *nb, int has_b, size_t max_len, mp_trunc_strategy s) {
  size_t total = *na + (has_b ? *nb : 0);
  if (total <= max_len) return MP_OK;
  size_t to_remove = total - max_len;
  if (s == MP_TRUNC_LONGEST_FIRST) {
    if (has_b) {
      size_t n1 = *na, n2 = *nb;
      int swap = 0;
      if (n1 > n2) {
        swap = 1;
        size_t t = n1;
        n1 = n2;
        n2 = t;
      }
      if (n1 > max_len)
        n2 = n1;
      else
        n2 = n1 > max_len - n1 ? n1 : max_len - n1;
      if (n1 + n2 > max_len) {
        n1 = max_len / 2;
        n2 = n1 + max_len % 2;
      }
      if (swap) {
        size_t t = n1;
        n1 = n2;
        n2 = t;
      }
      if (*na > n1) *na = n1;
      if (*nb > n2) *nb = n2;
    } else {
      *na = total - to_remove;
    }
    return MP_OK;
  }
  size_t *target;
  if (s == MP_TRUNC_ONLY_FIRST)
    target = na;
  else if (has_b)
    target = nb;
  else
    return mp_err(MP_ERR_INVALID_ARG, "truncation error: second sequence not provided (only_second needs a text pair)");
  if (*target > to_remove)
    *target -= to_remove;
  else
    return mp_err(MP_ERR_INVALID_ARG,
                  "truncation error: sequence to truncate too short to respect the provided max_length");
  return MP_OK;
}

static mp_status enc_alloc(mp_tok_encoding *e, size_t n) {
  size_t cap = n ? n : 1;
  e->input_ids = malloc(cap * sizeof(int32_t));
  e->attention_mask = malloc(cap * sizeof(int32_t));
  e->token_type_ids = malloc(cap * sizeof(int32_t));
  if (!e->input_ids || !e->attention_mask || !e->token_type_ids) {
    mp_tok_encoding_free(e);
    return mp_err(MP_ERR_NOMEM, "out of memory (encoding of %zu tokens)", n);
  }
  return MP_OK;
}

/* Builds the final encoding (before padding) from the two id lists. */
static mp_status post_process(const mp_tokenizer *tok, const int32_t *a, size_t na, const int32_t *b, size_t nb,
                              int has_b, int add_special, mp_tok_encoding *e) {
  const mp_tpost *pp = &tok->post;
  int use_template = add_special && pp->kind != MP_POST_NONE;
  const mp_tpiece *tpl = has_b ? pp->pair : pp->single;
  size_t ntpl = has_b ? pp->n_pair : pp->n_single;
  size_t total = na + (has_b ? nb : 0);
  if (use_template) total += has_b ? pp->added_pair : pp->added_single;
  MP_TRY(enc_alloc(e, total));
  size_t w = 0;
  int32_t ta = 0, tb = 1;
  if (pp->kind == MP_POST_ROBERTA) tb = 0;
  if (pp->kind == MP_POST_TEMPLATE) {
    /* type ids of the sequences come from the template even without special tokens */
    for (size_t i = 0; i < ntpl; i++) {
      if (tpl[i].kind == 0) ta = tpl[i].type_id;
      if (tpl[i].kind == 1) tb = tpl[i].type_id;
    }
  }
  if (!use_template) {
    for (size_t i = 0; i < na; i++, w++)
      e->input_ids[w] = a[i], e->token_type_ids[w] = ta;
    if (has_b)
      for (size_t i = 0; i < nb; i++, w++)
        e->input_ids[w] = b[i], e->token_type_ids[w] = tb;
  } else {
    for (size_t i = 0; i < ntpl; i++) {
      const mp_tpiece *p = &tpl[i];
      if (p->kind == 2) {
        for (size_t k = 0; k < p->n_ids; k++, w++)
          e->input_ids[w] = p->ids[k], e->token_type_ids[w] = p->type_id;
      } else {
        const int32_t *src = p->kind == 0 ? a : b;
        size_t ns = p->kind == 0 ? na : nb;
        for (size_t k = 0; k < ns; k++, w++)
          e->input_ids[w] = src[k], e->token_type_ids[w] = p->type_id;
      }
    }
  }
  for (size_t i = 0; i < w; i++)
    e->attention_mask[i] = 1;
  e->len = w;
  e->n_real = w;
  return MP_OK;
}

static mp_status pad_to(const mp_tokenizer *tok, mp_tok_encoding *e, size_t target) {
  if (e->len >= target) return MP_OK;
  int32_t *ni = realloc(e->input_ids, target * sizeof(int32_t));
  if (ni) e->input_ids = ni;
  int32_t *nm = realloc(e->attention_mask, target * sizeof(int32_t));
  if (nm) e->attention_mask = nm;
  int32_t *nt = realloc(e->token_type_ids, target * sizeof(int32_t));
  if (nt) e->token_type_ids = nt;
  if (!ni || !nm || !nt) return mp_err(MP_ERR_NOMEM, "out of memory (padding to %zu)", target);
  int32_t pad = tok->special[MP_TOK_PAD] >= 0 ? tok->special[MP_TOK_PAD] : 0;
  for (size_t i = e->len; i < target; i++) {
    e->input_ids[i] = pad;
    e->attention_mask[i] = 0;
    e->token_type_ids[i] = 0;
  }
  e->len = target;
  return MP_OK;
}

/* Encode without padding (truncation + post-processing). */
static mp_status encode_one(const mp_tokenizer *tok, mp_tok_ctx *c, const char *a, size_t an, const char *b, size_t bn,
                            const mp_tok_options *o, mp_tok_encoding *out) {
  memset(out, 0, sizeof *out);
  mp_i32v ia = {0}, ib = {0};
  mp_status st = encode_seq(tok, c, a ? a : "", a ? an : 0, &ia);
  if (st == MP_OK && b) st = encode_seq(tok, c, b, bn, &ib);
  size_t na = ia.n, nb = ib.n;
  if (st == MP_OK && o->truncation != MP_TRUNC_NONE && o->max_length > 0) {
    size_t max_len = o->max_length;
    size_t added = o->add_special_tokens ? mp_tokenizer_num_special_tokens(tok, b != NULL) : 0;
    if (added > max_len)
      st = mp_err(MP_ERR_INVALID_ARG, "max_length %zu is smaller than the %zu special tokens the tokenizer adds",
                  max_len, added);
    else
      st = truncate_ids(&na, &nb, b != NULL, max_len - added, o->truncation);
  }
  if (st == MP_OK) st = post_process(tok, ia.v, na, ib.v, nb, b != NULL, o->add_special_tokens, out);
  free(ia.v);
  free(ib.v);
  return st;
}

mp_status mp_tokenizer_encode(const mp_tokenizer *tok, const char *a, size_t a_len, const char *b, size_t b_len,
                              const mp_tok_options *opt, mp_tok_encoding *out) {
  mp_tok_options dflt;
  if (!opt) {
    mp_tok_options_init(&dflt);
    opt = &dflt;
  }
  if (!tok || !out) return mp_err(MP_ERR_INVALID_ARG, "mp_tokenizer_encode: NULL argument");
  mp_tok_ctx c;
  mp_tok_ctx_init(&c);
  mp_status st = encode_one(tok, &c, a, a_len, b, b_len, opt, out);
  if (st == MP_OK && opt->padding == MP_PAD_MAX_LENGTH && opt->max_length > 0) st = pad_to(tok, out, opt->max_length);
  mp_tok_ctx_free(&c);
  if (st != MP_OK) mp_tok_encoding_free(out);
  return st;
}

void mp_tok_encoding_free(mp_tok_encoding *e) {
  if (!e) return;
  free(e->input_ids);
  free(e->attention_mask);
  free(e->token_type_ids);
  memset(e, 0, sizeof *e);
}

mp_status mp_tokenizer_tokenize(const mp_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids) {
  *ids = NULL;
  *n_ids = 0;
  mp_tok_ctx c;
  mp_tok_ctx_init(&c);
  mp_i32v v = {0};
  mp_status st = encode_seq(tok, &c, text ? text : "", text ? len : 0, &v);
  mp_tok_ctx_free(&c);
  if (st != MP_OK) {
    free(v.v);
    return st;
  }
  *ids = v.v;
  *n_ids = v.n;
  return MP_OK;
}

/* ---- batch ------------------------------------------------------------------------------------ */

typedef struct batch_job {
  const mp_tokenizer *tok;
  size_t n;
  const char *const *texts;
  const size_t *tlens;
  const char *const *pairs;
  const size_t *plens;
  const mp_tok_options *o;
  mp_tok_encoding *encs;
  mp_status *sts;
  char **errs;
  size_t next;
  pthread_mutex_t mu;
} batch_job;

static void *batch_worker(void *arg) {
  batch_job *j = arg;
  mp_tok_ctx c;
  mp_tok_ctx_init(&c);
  for (;;) {
    pthread_mutex_lock(&j->mu);
    size_t i = j->next;
    size_t end = i + 16 < j->n ? i + 16 : j->n;
    j->next = end;
    pthread_mutex_unlock(&j->mu);
    if (i >= j->n) break;
    for (; i < end; i++) {
      const char *a = j->texts[i], *b = j->pairs ? j->pairs[i] : NULL;
      size_t an = a ? (j->tlens ? j->tlens[i] : strlen(a)) : 0;
      size_t bn = b ? (j->plens ? j->plens[i] : strlen(b)) : 0;
      if (j->pairs && !b) b = "";
      j->sts[i] = encode_one(j->tok, &c, a, an, b, bn, j->o, &j->encs[i]);
      if (j->sts[i] != MP_OK) {
        const char *m = mp_last_error();
        j->errs[i] = strdup(m ? m : "");
      }
    }
  }
  mp_tok_ctx_free(&c);
  return NULL;
}

void mp_tok_batch_free(mp_tok_batch *b) {
  if (!b) return;
  free(b->input_ids);
  free(b->attention_mask);
  free(b->token_type_ids);
  free(b->lens);
  free(b->n_real);
  memset(b, 0, sizeof *b);
}

mp_status mp_tokenizer_encode_batch_n(const mp_tokenizer *tok, size_t n, const char *const *texts,
                                      const size_t *text_lens, const char *const *pairs, const size_t *pair_lens,
                                      const mp_tok_options *opt, int threads, mp_tok_batch *out) {
  memset(out, 0, sizeof *out);
  mp_tok_options dflt;
  if (!opt) {
    mp_tok_options_init(&dflt);
    opt = &dflt;
  }
  if (!tok || (n && !texts)) return mp_err(MP_ERR_INVALID_ARG, "mp_tokenizer_encode_batch: NULL argument");
  batch_job j = {tok, n, texts, text_lens, pairs, pair_lens, opt, NULL, NULL, NULL, 0, PTHREAD_MUTEX_INITIALIZER};
  size_t cap = n ? n : 1;
  j.encs = calloc(cap, sizeof *j.encs);
  j.sts = calloc(cap, sizeof *j.sts);
  j.errs = calloc(cap, sizeof *j.errs);
  mp_status st = MP_OK;
  if (!j.encs || !j.sts || !j.errs) st = mp_err(MP_ERR_NOMEM, "out of memory (batch of %zu)", n);
  if (st == MP_OK) {
    if (threads < 1) threads = 1;
    if ((size_t)threads > (n + 15) / 16) threads = (int)((n + 15) / 16);
    if (threads < 1) threads = 1;
    pthread_t th[64];
    int started = 0;
    for (int t = 1; t < threads && t < 64; t++)
      if (pthread_create(&th[started], NULL, batch_worker, &j) == 0) started++;
    batch_worker(&j);
    for (int t = 0; t < started; t++)
      pthread_join(th[t], NULL);
    for (size_t i = 0; i < n; i++) {
      if (j.sts[i] != MP_OK) {
        st = mp_err(j.sts[i], "batch row %zu: %s", i, j.errs[i] ? j.errs[i] : "");
        break;
      }
    }
  }
  size_t seq = 0;
  if (st == MP_OK) {
    for (size_t i = 0; i < n; i++)
      if (j.encs[i].len > seq) seq = j.encs[i].len;
    if (opt->padding == MP_PAD_MAX_LENGTH && opt->max_length > seq) seq = opt->max_length;
    out->n = n;
    out->seq_len = seq;
    size_t cells = n * seq;
    if (cells == 0) cells = 1;
    if (seq && n > SIZE_MAX / 4 / seq)
      st = mp_err(MP_ERR_NOMEM, "batch too large");
    else {
      out->input_ids = malloc(cells * sizeof(int32_t));
      out->attention_mask = malloc(cells * sizeof(int32_t));
      out->token_type_ids = malloc(cells * sizeof(int32_t));
      out->lens = malloc(cap * sizeof(size_t));
      out->n_real = malloc(cap * sizeof(size_t));
      if (!out->input_ids || !out->attention_mask || !out->token_type_ids || !out->lens || !out->n_real)
        st = mp_err(MP_ERR_NOMEM, "out of memory (batch %zu x %zu)", n, seq);
    }
  }
  if (st == MP_OK) {
    int32_t pad = tok->special[MP_TOK_PAD] >= 0 ? tok->special[MP_TOK_PAD] : 0;
    for (size_t i = 0; i < n; i++) {
      mp_tok_encoding *e = &j.encs[i];
      int32_t *ri = out->input_ids + i * seq, *rm = out->attention_mask + i * seq, *rt = out->token_type_ids + i * seq;
      memcpy(ri, e->input_ids, e->len * sizeof(int32_t));
      memcpy(rm, e->attention_mask, e->len * sizeof(int32_t));
      memcpy(rt, e->token_type_ids, e->len * sizeof(int32_t));
      for (size_t k = e->len; k < seq; k++)
        ri[k] = pad, rm[k] = 0, rt[k] = 0;
      out->n_real[i] = e->len;
      size_t target = e->len;
      if (opt->padding == MP_PAD_LONGEST)
        target = seq;
      else if (opt->padding == MP_PAD_MAX_LENGTH && opt->max_length > target)
        target = opt->max_length;
      out->lens[i] = target;
    }
  }
  for (size_t i = 0; j.encs && i < n; i++)
    mp_tok_encoding_free(&j.encs[i]);
  for (size_t i = 0; j.errs && i < n; i++)
    free(j.errs[i]);
  free(j.encs);
  free(j.sts);
  free(j.errs);
  pthread_mutex_destroy(&j.mu);
  if (st != MP_OK) mp_tok_batch_free(out);
  return st;
}

mp_status mp_tokenizer_encode_batch(const mp_tokenizer *tok, size_t n, const char *const *texts,
                                    const char *const *pairs, const mp_tok_options *opt, mp_tok_batch *out) {
  return mp_tokenizer_encode_batch_n(tok, n, texts, NULL, pairs, NULL, opt, 1, out);
}

/* ---- loading --------------------------------------------------------------------------------- */

void mp_tokenizer_close(mp_tokenizer *tok) {
  if (!tok) return;
  mp_tnorm_free(tok->norm);
  mp_tpretok_free(tok->pretok);
  mp_tmodel_free(tok->model);
  mp_tdecoder_free(tok->dec);
  for (size_t i = 0; i < tok->post.n_single; i++)
    free(tok->post.single[i].ids);
  for (size_t i = 0; i < tok->post.n_pair; i++)
    free(tok->post.pair[i].ids);
  free(tok->post.single);
  free(tok->post.pair);
  for (size_t i = 0; i < tok->n_added; i++) {
    free(tok->added[i].content);
    if (tok->norm_pat) free(tok->norm_pat[i]);
  }
  free(tok->added);
  free(tok->norm_pat);
  free(tok->norm_pat_len);
  mp_strmap_free(&tok->added_map);
  free(tok->trie_raw.v);
  free(tok->trie_norm.v);
  free(tok->is_special);
  free(tok->added_by_id);
  free(tok->added_by_id_len);
  free(tok);
}

static mp_status parse_template(const mp_json *arr, const mp_json *specials, const char *what, mp_tpiece **out,
                                size_t *n_out, size_t *added) {
  *out = NULL;
  *n_out = 0;
  *added = 0;
  if (!arr || arr->type != MP_JSON_ARRAY)
    return mp_err(MP_ERR_FORMAT, "%s: TemplateProcessing single/pair must be arrays", what);
  mp_tpiece *v = calloc(arr->len ? arr->len : 1, sizeof *v);
  if (!v) return mp_err(MP_ERR_NOMEM, "out of memory");
  *out = v;
  for (size_t i = 0; i < arr->len; i++) {
    const mp_json *p = arr->items[i];
    *n_out = i + 1; /* counted before its ids are allocated: an error below still frees them */
    if (p->type != MP_JSON_OBJECT || p->len != 1 || p->items[0]->type != MP_JSON_OBJECT)
      return mp_err(MP_ERR_FORMAT, "%s:%u:%u: template piece must be {\"Sequence\": ...} or {\"SpecialToken\": ...}",
                    what, p->line, p->col);
    const mp_json *body = p->items[0];
    int64_t type_id = mp_json_get_int(body, "type_id", 0);
    if (type_id < 0 || type_id > INT32_MAX)
      return mp_err(MP_ERR_FORMAT, "%s:%u:%u: bad type_id", what, body->line, body->col);
    const char *id = mp_json_get_str(body, "id", NULL);
    if (!id) return mp_err(MP_ERR_FORMAT, "%s:%u:%u: template piece without 'id'", what, body->line, body->col);
    v[i].type_id = (int32_t)type_id;
    if (!strcmp(p->keys[0], "Sequence")) {
      if (!strcmp(id, "A"))
        v[i].kind = 0;
      else if (!strcmp(id, "B"))
        v[i].kind = 1;
      else
        return mp_err(MP_ERR_FORMAT, "%s:%u:%u: template sequence id must be A or B", what, body->line, body->col);
    } else if (!strcmp(p->keys[0], "SpecialToken")) {
      v[i].kind = 2;
      const mp_json *sp = mp_json_get(specials, id);
      const mp_json *ids = sp ? mp_json_get(sp, "ids") : NULL;
      if (!ids || ids->type != MP_JSON_ARRAY)
        return mp_err(MP_ERR_FORMAT, "%s:%u:%u: template special token '%s' is missing from special_tokens", what,
                      body->line, body->col, id);
      v[i].ids = malloc((ids->len ? ids->len : 1) * sizeof(int32_t));
      if (!v[i].ids) return mp_err(MP_ERR_NOMEM, "out of memory");
      for (size_t k = 0; k < ids->len; k++) {
        const mp_json *x = ids->items[k];
        if (x->type != MP_JSON_NUMBER || !x->is_int || x->i < 0 || x->i > INT32_MAX)
          return mp_err(MP_ERR_FORMAT, "%s:%u:%u: special token ids must be non-negative integers", what, x->line,
                        x->col);
        v[i].ids[k] = (int32_t)x->i;
      }
      v[i].n_ids = ids->len;
      *added += ids->len;
    } else {
      return mp_err(MP_ERR_FORMAT, "%s:%u:%u: unknown template piece '%s'", what, p->line, p->col, p->keys[0]);
    }
  }
  return MP_OK;
}

static mp_status tok_pair(const mp_json *j, const char *key, const char *what, int32_t *id) {
  const mp_json *v = mp_json_get(j, key);
  if (!v || v->type != MP_JSON_ARRAY || v->len != 2 || v->items[1]->type != MP_JSON_NUMBER || !v->items[1]->is_int ||
      v->items[1]->i < 0 || v->items[1]->i > INT32_MAX)
    return mp_err(MP_ERR_FORMAT, "%s: post_processor.%s must be [token, id]", what, key);
  *id = (int32_t)v->items[1]->i;
  return MP_OK;
}

static mp_status set_simple_post(mp_tpost *pp, mp_post_kind kind, int32_t cls, int32_t sep) {
  pp->kind = kind;
  /* Bert:    [CLS]:0 A:0 [SEP]:0 | B:1 [SEP]:1;  Roberta: <s> A </s> | </s> B </s> (all 0) */
  size_t ns = 3, np = kind == MP_POST_BERT ? 5 : 6;
  pp->single = calloc(ns, sizeof *pp->single);
  pp->pair = calloc(np, sizeof *pp->pair);
  if (!pp->single || !pp->pair) return mp_err(MP_ERR_NOMEM, "out of memory");
  int32_t tb = kind == MP_POST_BERT ? 1 : 0;
  int32_t seq[6][3]; /* kind, type, id */
  size_t k = 0;
  seq[k][0] = 2, seq[k][1] = 0, seq[k][2] = cls, k++;
  seq[k][0] = 0, seq[k][1] = 0, seq[k][2] = 0, k++;
  seq[k][0] = 2, seq[k][1] = 0, seq[k][2] = sep, k++;
  if (kind == MP_POST_ROBERTA) seq[k][0] = 2, seq[k][1] = 0, seq[k][2] = sep, k++;
  seq[k][0] = 1, seq[k][1] = tb, seq[k][2] = 0, k++;
  seq[k][0] = 2, seq[k][1] = tb, seq[k][2] = sep, k++;
  for (size_t i = 0; i < np; i++) {
    mp_tpiece *p = &pp->pair[i];
    p->kind = seq[i][0];
    p->type_id = seq[i][1];
    if (p->kind == 2) {
      p->ids = malloc(sizeof(int32_t));
      if (!p->ids) return mp_err(MP_ERR_NOMEM, "out of memory");
      p->ids[0] = seq[i][2];
      p->n_ids = 1;
    }
    if (i < 3) {
      pp->single[i] = *p;
      if (p->kind == 2) {
        pp->single[i].ids = malloc(sizeof(int32_t));
        if (!pp->single[i].ids) return mp_err(MP_ERR_NOMEM, "out of memory");
        pp->single[i].ids[0] = seq[i][2];
      }
    }
  }
  pp->n_single = ns;
  pp->n_pair = np;
  pp->added_single = 2;
  pp->added_pair = np - 2;
  return MP_OK;
}

static mp_status parse_post(mp_tokenizer *tok, const mp_json *j, const char *what) {
  if (!j || j->type == MP_JSON_NULL) return MP_OK;
  if (j->type != MP_JSON_OBJECT) return mp_err(MP_ERR_FORMAT, "%s: post_processor must be an object", what);
  const char *t = mp_json_get_str(j, "type", "");
  if (!strcmp(t, "Sequence")) {
    const mp_json *arr = mp_json_get(j, "processors");
    if (!arr || arr->type != MP_JSON_ARRAY)
      return mp_err(MP_ERR_FORMAT, "%s: Sequence post_processor needs 'processors'", what);
    for (size_t i = 0; i < arr->len; i++) {
      const char *tt = mp_json_get_str(arr->items[i], "type", "");
      if (!strcmp(tt, "ByteLevel")) continue; /* offsets only */
      if (tok->post.kind != MP_POST_NONE)
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s: a Sequence post_processor with more than one token-adding processor is not supported", what);
      MP_TRY(parse_post(tok, arr->items[i], what));
    }
    return MP_OK;
  }
  if (!strcmp(t, "ByteLevel")) return MP_OK;
  if (!strcmp(t, "BertProcessing") || !strcmp(t, "RobertaProcessing")) {
    int32_t cls, sep;
    MP_TRY(tok_pair(j, "cls", what, &cls));
    MP_TRY(tok_pair(j, "sep", what, &sep));
    return set_simple_post(&tok->post, t[0] == 'B' ? MP_POST_BERT : MP_POST_ROBERTA, cls, sep);
  }
  if (!strcmp(t, "TemplateProcessing")) {
    tok->post.kind = MP_POST_TEMPLATE;
    const mp_json *sp = mp_json_get(j, "special_tokens");
    MP_TRY(parse_template(mp_json_get(j, "single"), sp, what, &tok->post.single, &tok->post.n_single,
                          &tok->post.added_single));
    MP_TRY(parse_template(mp_json_get(j, "pair"), sp, what, &tok->post.pair, &tok->post.n_pair, &tok->post.added_pair));
    /* each sequence once: the encoding's size and the truncation budget count one copy of each
     * (HF copies a repeated $A, then exceeds max_length; a $B in the single template makes it panic) */
    size_t sa = 0, sb = 0, pa = 0, pb = 0;
    for (size_t i = 0; i < tok->post.n_single; i++)
      sa += tok->post.single[i].kind == 0, sb += tok->post.single[i].kind == 1;
    for (size_t i = 0; i < tok->post.n_pair; i++)
      pa += tok->post.pair[i].kind == 0, pb += tok->post.pair[i].kind == 1;
    if (sa != 1 || sb != 0 || pa != 1 || pb != 1)
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s: TemplateProcessing: the single template must hold $A once and no $B, and the pair template "
                    "$A and $B once each (here: single %zu x $A, %zu x $B; pair %zu x $A, %zu x $B)",
                    what, sa, sb, pa, pb);
    return MP_OK;
  }
  return mp_err(MP_ERR_UNSUPPORTED, "%s: post_processor type '%s' is not supported", what, t);
}

static int32_t tok_to_id(const mp_tokenizer *tok, const char *s, size_t n) {
  int32_t id = mp_strmap_get(&tok->added_map, s, n);
  if (id >= 0) return id;
  return mp_strmap_get(&tok->model->vocab, s, n);
}

/* HF AddedVocabulary::add_tokens over the whole "added_tokens" list. */
static mp_status load_added(mp_tokenizer *tok, const mp_json *arr, const char *what) {
  if (!arr || arr->type == MP_JSON_NULL)
    arr = NULL;
  else if (arr->type != MP_JSON_ARRAY)
    return mp_err(MP_ERR_FORMAT, "%s: added_tokens must be an array", what);
  size_t n = arr ? arr->len : 0;
  tok->added = calloc(n ? n : 1, sizeof *tok->added);
  if (!tok->added) return mp_err(MP_ERR_NOMEM, "out of memory");
  /* specials first (HF special_tokens list), then the others, each in file order */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < n; i++) {
      const mp_json *t = arr->items[i];
      if (t->type != MP_JSON_OBJECT)
        return mp_err(MP_ERR_FORMAT, "%s:%u:%u: added token must be an object", what, t->line, t->col);
      const mp_json *c = mp_json_get(t, "content");
      if (!c || c->type != MP_JSON_STRING)
        return mp_err(MP_ERR_FORMAT, "%s:%u:%u: added token without string 'content'", what, t->line, t->col);
      int special = mp_json_get_bool(t, "special", 0);
      if (special != (pass == 0)) continue;
      if (c->len == 0) continue;
      int dup = 0;
      for (size_t k = 0; k < tok->n_added; k++)
        if (tok->added[k].len == c->len && !memcmp(tok->added[k].content, c->str, c->len)) dup = 1;
      if (dup) continue;
      mp_added_tok *a = &tok->added[tok->n_added];
      a->content = malloc(c->len + 1);
      if (!a->content) return mp_err(MP_ERR_NOMEM, "out of memory");
      memcpy(a->content, c->str, c->len + 1);
      a->len = c->len;
      a->special = special;
      a->single_word = mp_json_get_bool(t, "single_word", 0);
      a->lstrip = mp_json_get_bool(t, "lstrip", 0);
      a->rstrip = mp_json_get_bool(t, "rstrip", 0);
      a->normalized = mp_json_get_bool(t, "normalized", !special);
      tok->n_added++;
    }
  }
  /* ids: in file order (HF's second loop goes over the original list) */
  size_t model_vs = tok->model->vocab_size;
  int32_t max_added = -1;
  for (size_t i = 0; i < n; i++) {
    const mp_json *c = mp_json_get(arr->items[i], "content");
    if (!c->len) continue;
    size_t k = 0;
    while (k < tok->n_added && !(tok->added[k].len == c->len && !memcmp(tok->added[k].content, c->str, c->len)))
      k++;
    if (k == tok->n_added || mp_strmap_get(&tok->added_map, c->str, c->len) >= 0) continue;
    int32_t id = tok_to_id(tok, c->str, c->len);
    if (id < 0) {
      if (max_added < 0)
        id = (int32_t)model_vs;
      else
        id = ((size_t)max_added >= model_vs || model_vs == 0) ? max_added + 1 : (int32_t)model_vs;
    }
    MP_TRY(mp_strmap_put(&tok->added_map, c->str, c->len, id));
    if (id > max_added) max_added = id;
    tok->added[k].id = id;
  }
  /* tries */
  tok->norm_pat = calloc(tok->n_added ? tok->n_added : 1, sizeof *tok->norm_pat);
  tok->norm_pat_len = calloc(tok->n_added ? tok->n_added : 1, sizeof *tok->norm_pat_len);
  if (!tok->norm_pat || !tok->norm_pat_len) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_tok_ctx c;
  mp_tok_ctx_init(&c);
  mp_status st = MP_OK;
  for (size_t k = 0; k < tok->n_added && st == MP_OK; k++) {
    mp_added_tok *a = &tok->added[k];
    if (!a->normalized) {
      st = trie_add(&tok->trie_raw, a->content, a->len, (int32_t)k);
      continue;
    }
    const char *p = a->content;
    size_t pl = a->len;
    if (tok->norm) {
      st = mp_tnorm_apply(tok->norm, &c, a->content, a->len, &c.norm);
      if (st != MP_OK) break;
      p = c.norm.buf ? c.norm.buf : "";
      pl = c.norm.len;
    }
    tok->norm_pat[k] = malloc(pl + 1);
    if (!tok->norm_pat[k]) {
      st = mp_err(MP_ERR_NOMEM, "out of memory");
      break;
    }
    memcpy(tok->norm_pat[k], p, pl);
    tok->norm_pat[k][pl] = 0;
    tok->norm_pat_len[k] = pl;
    st = trie_add(&tok->trie_norm, p, pl, (int32_t)k);
  }
  mp_tok_ctx_free(&c);
  return st;
}

static mp_status build_id_tables(mp_tokenizer *tok) {
  size_t n = tok->model->n_ids;
  for (size_t k = 0; k < tok->n_added; k++)
    if ((size_t)tok->added[k].id + 1 > n) n = (size_t)tok->added[k].id + 1;
  size_t maxid = 0;
  for (size_t i = 0; i < tok->model->n_ids; i++)
    if (tok->model->id_tok[i]) maxid = i + 1;
  for (size_t k = 0; k < tok->n_added; k++)
    if ((size_t)tok->added[k].id + 1 > maxid) maxid = (size_t)tok->added[k].id + 1;
  tok->n_ids = maxid;
  tok->is_special = calloc(n ? n : 1, 1);
  tok->added_by_id = calloc(n ? n : 1, sizeof *tok->added_by_id);
  tok->added_by_id_len = calloc(n ? n : 1, sizeof *tok->added_by_id_len);
  if (!tok->is_special || !tok->added_by_id || !tok->added_by_id_len) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t k = 0; k < tok->n_added; k++) {
    int32_t id = tok->added[k].id;
    tok->is_special[id] = (uint8_t)tok->added[k].special;
    tok->added_by_id[id] = tok->added[k].content;
    tok->added_by_id_len[id] = (uint32_t)tok->added[k].len;
  }
  return MP_OK;
}

static void infer_specials(mp_tokenizer *tok) {
  static const char *names[MP_TOK_SPECIAL_COUNT][4] = {{"[CLS]", "<s>", "<|endoftext|>", NULL},
                                                       {"[SEP]", "</s>", "<|endoftext|>", NULL},
                                                       {"[PAD]", "<pad>", "<|padding|>", NULL},
                                                       {"[MASK]", "<mask>", NULL, NULL},
                                                       {"[UNK]", "<unk>", NULL, NULL}};
  const mp_tpost *pp = &tok->post;
  if (pp->kind != MP_POST_NONE) {
    for (size_t i = 0; i < pp->n_single; i++)
      if (pp->single[i].kind == 2 && pp->single[i].n_ids) {
        if (i == 0 && tok->special[MP_TOK_CLS] < 0) tok->special[MP_TOK_CLS] = pp->single[i].ids[0];
        if (i + 1 == pp->n_single && tok->special[MP_TOK_SEP] < 0)
          tok->special[MP_TOK_SEP] = pp->single[i].ids[pp->single[i].n_ids - 1];
      }
  }
  if (tok->special[MP_TOK_UNK] < 0 && tok->model->unk_id >= 0) tok->special[MP_TOK_UNK] = tok->model->unk_id;
  for (int s = 0; s < MP_TOK_SPECIAL_COUNT; s++)
    for (int k = 0; tok->special[s] < 0 && k < 4 && names[s][k]; k++)
      tok->special[s] = tok_to_id(tok, names[s][k], strlen(names[s][k]));
}

mp_status mp_tokenizer_from_json(const char *json, size_t n, const char *what, mp_tokenizer **out) {
  *out = NULL;
  mp_arena ar;
  mp_arena_init(&ar, 1 << 20);
  mp_json *root = NULL;
  mp_status st = mp_json_parse(json, n, what, &ar, &root);
  if (st != MP_OK) {
    mp_arena_free(&ar);
    return st;
  }
  mp_tokenizer *tok = calloc(1, sizeof *tok);
  if (!tok) {
    mp_arena_free(&ar);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  mp_strmap_init(&tok->added_map);
  for (int s = 0; s < MP_TOK_SPECIAL_COUNT; s++)
    tok->special[s] = -1;
  if (root->type != MP_JSON_OBJECT) st = mp_err(MP_ERR_FORMAT, "%s: top level must be a JSON object", what);
  if (st == MP_OK) {
    const char *ver = mp_json_get_str(root, "version", "1.0");
    if (strcmp(ver, "1.0") != 0)
      st = mp_err(MP_ERR_UNSUPPORTED, "%s: unknown tokenizer version '%s' (expected 1.0)", what, ver);
  }
  if (st == MP_OK) st = mp_tnorm_from_json(mp_json_get(root, "normalizer"), what, &tok->norm);
  if (st == MP_OK) st = mp_tpretok_from_json(mp_json_get(root, "pre_tokenizer"), what, &tok->pretok);
  if (st == MP_OK) {
    const mp_json *m = mp_json_get(root, "model");
    if (!m)
      st = mp_err(MP_ERR_FORMAT, "%s: no 'model' section (is this a tokenizer.json?)", what);
    else
      st = mp_tmodel_from_json(m, what, &tok->model);
  }
  if (st == MP_OK) st = parse_post(tok, mp_json_get(root, "post_processor"), what);
  if (st == MP_OK) st = mp_tdecoder_from_json(mp_json_get(root, "decoder"), what, &tok->dec);
  if (st == MP_OK) st = load_added(tok, mp_json_get(root, "added_tokens"), what);
  if (st == MP_OK) st = build_id_tables(tok);
  mp_arena_free(&ar);
  if (st != MP_OK) {
    mp_tokenizer_close(tok);
    return st;
  }
  infer_specials(tok);
  tok->needs_first = pretok_needs_first(tok->pretok);
  *out = tok;
  return MP_OK;
}

/* special token content from tokenizer_config.json / special_tokens_map.json values */
static const char *special_content(const mp_json *v) {
  if (!v) return NULL;
  if (v->type == MP_JSON_STRING) return v->str;
  if (v->type == MP_JSON_OBJECT) return mp_json_get_str(v, "content", NULL);
  return NULL;
}

static void apply_special_file(mp_tokenizer *tok, const char *path, int set_max_len) {
  if (!mp_is_file(path)) return;
  mp_arena ar;
  mp_arena_init(&ar, 1 << 16);
  mp_json *root = NULL;
  if (mp_json_parse_file(path, &ar, &root) == MP_OK && root->type == MP_JSON_OBJECT) {
    static const char *keys[MP_TOK_SPECIAL_COUNT] = {"cls_token", "sep_token", "pad_token", "mask_token", "unk_token"};
    for (int s = 0; s < MP_TOK_SPECIAL_COUNT; s++) {
      const char *c = special_content(mp_json_get(root, keys[s]));
      if (!c) continue;
      int32_t id = tok_to_id(tok, c, strlen(c));
      if (id >= 0) tok->special[s] = id;
    }
    if (set_max_len) {
      const mp_json *m = mp_json_get(root, "model_max_length");
      if (m && m->type == MP_JSON_NUMBER && m->num > 0 && m->num < 1e9) tok->model_max_length = (size_t)m->num;
    }
  }
  mp_err_clear();
  mp_arena_free(&ar);
}

mp_status mp_tokenizer_open(const char *dir, mp_tokenizer **out) {
  *out = NULL;
  if (!dir) return mp_err(MP_ERR_INVALID_ARG, "mp_tokenizer_open: no folder given");
  if (!mp_is_dir(dir))
    return mp_err(MP_ERR_NOT_FOUND, "%s: not a folder (expected a model folder with tokenizer.json)", dir);
  char *tj = mp_path_join(dir, "tokenizer.json");
  if (!tj) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status st;
  mp_tokenizer *tok = NULL;
  if (mp_is_file(tj)) {
    char *buf = NULL;
    size_t len = 0;
    st = mp_read_file(tj, &buf, &len, (size_t)1 << 31);
    if (st == MP_OK) st = mp_tokenizer_from_json(buf, len, tj, &tok);
    free(buf);
  } else {
    mp_sb js;
    mp_sb_init(&js);
    char *label = NULL;
    st = mp_tok_legacy_json(dir, &js, &label);
    if (st == MP_OK) st = mp_tokenizer_from_json(js.buf, js.len, label, &tok);
    free(label);
    mp_sb_free(&js);
  }
  free(tj);
  if (st != MP_OK) return st;
  char *p = mp_path_join(dir, "tokenizer_config.json");
  if (p) apply_special_file(tok, p, 1);
  free(p);
  p = mp_path_join(dir, "special_tokens_map.json");
  if (p) apply_special_file(tok, p, 0);
  free(p);
  *out = tok;
  return MP_OK;
}

/* ---- queries ------------------------------------------------------------------------------------ */

int32_t mp_tokenizer_special_id(const mp_tokenizer *tok, mp_tok_special which) {
  if (!tok || (int)which < 0 || which >= MP_TOK_SPECIAL_COUNT) return -1;
  return tok->special[which];
}

size_t mp_tokenizer_vocab_size(const mp_tokenizer *tok) { return tok ? tok->n_ids : 0; }

const char *mp_tokenizer_id_to_token(const mp_tokenizer *tok, int32_t id, size_t *len) {
  if (!tok || id < 0 || (size_t)id >= tok->n_ids) return NULL;
  if (tok->added_by_id[id]) {
    if (len) *len = tok->added_by_id_len[id];
    return tok->added_by_id[id];
  }
  if ((size_t)id < tok->model->n_ids && tok->model->id_tok[id]) {
    if (len) *len = tok->model->id_tok_len[id];
    return tok->model->id_tok[id];
  }
  return NULL;
}

int32_t mp_tokenizer_token_to_id(const mp_tokenizer *tok, const char *token, size_t len) {
  if (!tok || !token) return -1;
  return tok_to_id(tok, token, len);
}

int mp_tokenizer_is_special_id(const mp_tokenizer *tok, int32_t id) {
  return tok && id >= 0 && (size_t)id < tok->n_ids && tok->is_special[id];
}

const char *mp_tokenizer_model_type(const mp_tokenizer *tok) {
  if (!tok) return "";
  switch (tok->model->type) {
  case MP_M_WORDPIECE: return "WordPiece";
  case MP_M_BPE: return "BPE";
  case MP_M_UNIGRAM: return "Unigram";
  case MP_M_WORDLEVEL: return "WordLevel";
  }
  return "";
}

size_t mp_tokenizer_model_max_length(const mp_tokenizer *tok) { return tok ? tok->model_max_length : 0; }

mp_status mp_tokenizer_decode(const mp_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, mp_sb *out) {
  return mp_tdecoder_decode(tok->dec, tok, ids, n, skip_special, out);
}
