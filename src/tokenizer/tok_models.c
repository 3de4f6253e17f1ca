/* Tokenizer models: WordPiece, BPE (merge ranks, heap merge loop), WordLevel; Unigram through
 * the adapter in tok_glue.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

#define MP_MAX_VOCAB_ID (1 << 24) /* ids beyond 16M are certainly a broken file */

mp_status mp_tmodel_add_token(mp_tmodel *m, const char *tok, size_t n, int32_t id) {
  if (id < 0 || id >= MP_MAX_VOCAB_ID)
    return mp_err(MP_ERR_FORMAT, "token id %d out of range [0, %d)", (int)id, MP_MAX_VOCAB_ID);
  if ((size_t)id >= m->n_ids) {
    size_t nn = m->n_ids ? m->n_ids : 1024;
    while (nn <= (size_t)id)
      nn *= 2;
    char **nt = realloc(m->id_tok, nn * sizeof *nt);
    if (!nt) return mp_err(MP_ERR_NOMEM, "out of memory (vocabulary)");
    m->id_tok = nt;
    uint32_t *nl = realloc(m->id_tok_len, nn * sizeof *nl);
    if (!nl) return mp_err(MP_ERR_NOMEM, "out of memory (vocabulary)");
    m->id_tok_len = nl;
    memset(m->id_tok + m->n_ids, 0, (nn - m->n_ids) * sizeof *nt);
    memset(m->id_tok_len + m->n_ids, 0, (nn - m->n_ids) * sizeof *nl);
    m->n_ids = nn;
  }
  int32_t old = mp_strmap_get(&m->vocab, tok, n);
  MP_TRY(mp_strmap_put(&m->vocab, tok, n, id));
  if (old < 0) m->vocab_size++;
  if (!m->id_tok[id]) {
    char *c = mp_arena_strndup(&m->vocab.arena, tok, n);
    if (!c) return mp_err(MP_ERR_NOMEM, "out of memory (vocabulary)");
    m->id_tok[id] = c;
    m->id_tok_len[id] = (uint32_t)n;
  }
  return MP_OK;
}

void mp_tmodel_free(mp_tmodel *m) {
  if (!m) return;
  mp_strmap_free(&m->vocab);
  free(m->id_tok);
  free(m->id_tok_len);
  free(m->unk_token);
  free(m->prefix);
  free(m->suffix);
  mp_pairmap_free(&m->merges);
  if (m->unigram) mp_glue_unigram_free(m->unigram);
  free(m);
}

static char *dup_n(const char *s, size_t n) {
  char *c = malloc(n + 1);
  if (c) {
    memcpy(c, s, n);
    c[n] = 0;
  }
  return c;
}

static mp_status load_vocab_dict(mp_tmodel *m, const mp_json *v, const char *what) {
  if (!v || v->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s: model.vocab must be an object {token: id}", what);
  for (size_t i = 0; i < v->len; i++) {
    const mp_json *id = v->items[i];
    if (id->type != MP_JSON_NUMBER || !id->is_int || id->i < 0 || id->i >= MP_MAX_VOCAB_ID)
      return mp_err(MP_ERR_FORMAT, "%s:%u:%u: vocab id of '%s' must be an integer in [0, %d)", what, id->line, id->col,
                    v->keys[i], MP_MAX_VOCAB_ID);
    MP_TRY(mp_tmodel_add_token(m, v->keys[i], v->key_lens[i], (int32_t)id->i));
  }
  return MP_OK;
}

/* optional string member: NULL when absent or null; error when another type */
static mp_status opt_str(const mp_json *j, const char *key, const char *what, const mp_json **out) {
  const mp_json *v = mp_json_get(j, key);
  *out = NULL;
  if (!v || v->type == MP_JSON_NULL) return MP_OK;
  if (v->type != MP_JSON_STRING)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: model.%s must be a string or null", what, v->line, v->col, key);
  *out = v;
  return MP_OK;
}

static mp_status load_bpe(mp_tmodel *m, const mp_json *j, const char *what) {
  const mp_json *d = mp_json_get(j, "dropout");
  if (d && d->type == MP_JSON_NUMBER && d->num != 0.0)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: BPE dropout %g is not supported (random); set it to null", what, d->num);
  const mp_json *s;
  MP_TRY(opt_str(j, "continuing_subword_prefix", what, &s));
  if (s) {
    m->has_prefix = 1;
    m->prefix = dup_n(s->str, s->len);
    m->prefix_len = s->len;
  }
  MP_TRY(opt_str(j, "end_of_word_suffix", what, &s));
  if (s) {
    m->has_suffix = 1;
    m->suffix = dup_n(s->str, s->len);
    m->suffix_len = s->len;
  }
  MP_TRY(opt_str(j, "unk_token", what, &s));
  if (s) m->unk_token = dup_n(s->str, s->len);
  m->fuse_unk = mp_json_get_bool(j, "fuse_unk", 0);
  m->byte_fallback = mp_json_get_bool(j, "byte_fallback", 0);
  m->ignore_merges = mp_json_get_bool(j, "ignore_merges", 0);
  if ((m->has_prefix && !m->prefix) || (m->has_suffix && !m->suffix)) return mp_err(MP_ERR_NOMEM, "out of memory");
  MP_TRY(load_vocab_dict(m, mp_json_get(j, "vocab"), what));
  m->unk_id = m->unk_token ? mp_strmap_get(&m->vocab, m->unk_token, strlen(m->unk_token)) : -1;
  for (int b = 0; b < 256; b++) {
    char code[8];
    snprintf(code, sizeof code, "<0x%02X>", b);
    m->byte_ids[b] = mp_strmap_get(&m->vocab, code, 6);
  }
  const mp_json *mg = mp_json_get(j, "merges");
  if (!mg || mg->type != MP_JSON_ARRAY) return mp_err(MP_ERR_FORMAT, "%s: BPE model.merges must be an array", what);
  mp_sb tmp;
  mp_sb_init(&tmp);
  mp_status st = MP_OK;
  for (size_t i = 0; i < mg->len && st == MP_OK; i++) {
    const mp_json *e = mg->items[i];
    const char *a, *b;
    size_t al, bl;
    if (e->type == MP_JSON_STRING) {
      const char *sp = memchr(e->str, ' ', e->len);
      if (!sp) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: merge '%s' is not two tokens separated by a space", what, e->line, e->col,
                    e->str);
        break;
      }
      a = e->str;
      al = (size_t)(sp - e->str);
      b = sp + 1;
      bl = e->len - al - 1;
    } else if (e->type == MP_JSON_ARRAY && e->len == 2 && e->items[0]->type == MP_JSON_STRING &&
               e->items[1]->type == MP_JSON_STRING) {
      a = e->items[0]->str;
      al = e->items[0]->len;
      b = e->items[1]->str;
      bl = e->items[1]->len;
    } else {
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: a merge must be \"a b\" or [\"a\", \"b\"]", what, e->line, e->col);
      break;
    }
    int32_t ia = mp_strmap_get(&m->vocab, a, al), ib = mp_strmap_get(&m->vocab, b, bl);
    if (ia < 0 || ib < 0) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: merge #%zu uses a token that is not in the vocab ('%.*s')", what, e->line,
                  e->col, i, (int)(ia < 0 ? al : bl), ia < 0 ? a : b);
      break;
    }
    size_t pl = m->has_prefix ? m->prefix_len : 0;
    if (bl < pl) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: merge #%zu: second token shorter than continuing_subword_prefix", what,
                  e->line, e->col, i);
      break;
    }
    mp_sb_clear(&tmp);
    mp_sb_append(&tmp, a, al);
    mp_sb_append(&tmp, b + pl, bl - pl);
    if (tmp.oom) {
      st = mp_err(MP_ERR_NOMEM, "out of memory");
      break;
    }
    int32_t in = mp_strmap_get(&m->vocab, tmp.buf, tmp.len);
    if (in < 0) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: merge #%zu result '%.*s' is not in the vocab", what, e->line, e->col, i,
                  (int)(tmp.len > 100 ? 100 : tmp.len), tmp.buf);
      break;
    }
    st = mp_pairmap_put(&m->merges, ia, ib, (int32_t)i, in);
  }
  mp_sb_free(&tmp);
  return st;
}

mp_status mp_tmodel_from_json(const mp_json *j, const char *what, mp_tmodel **out) {
  *out = NULL;
  if (!j || j->type != MP_JSON_OBJECT) return mp_err(MP_ERR_FORMAT, "%s: 'model' must be an object", what);
  mp_tmodel *m = calloc(1, sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_strmap_init(&m->vocab);
  m->unk_id = -1;
  for (int b = 0; b < 256; b++)
    m->byte_ids[b] = -1;
  const char *t = mp_json_get_str(j, "type", NULL);
  if (!t) { /* old files omit the type */
    if (mp_json_get(j, "merges"))
      t = "BPE";
    else if (mp_json_get(j, "max_input_chars_per_word"))
      t = "WordPiece";
    else {
      const mp_json *v = mp_json_get(j, "vocab");
      t = v && v->type == MP_JSON_ARRAY ? "Unigram" : "WordLevel";
    }
  }
  mp_status st = MP_OK;
  if (!strcmp(t, "WordPiece")) {
    m->type = MP_M_WORDPIECE;
    const char *unk = mp_json_get_str(j, "unk_token", "[UNK]");
    const char *pre = mp_json_get_str(j, "continuing_subword_prefix", "##");
    int64_t mx = mp_json_get_int(j, "max_input_chars_per_word", 100);
    m->unk_token = dup_n(unk, strlen(unk));
    m->prefix = dup_n(pre, strlen(pre));
    m->prefix_len = strlen(pre);
    m->max_chars = mx < 0 ? 0 : (size_t)mx;
    if (!m->unk_token || !m->prefix) st = mp_err(MP_ERR_NOMEM, "out of memory");
    if (st == MP_OK) st = load_vocab_dict(m, mp_json_get(j, "vocab"), what);
    if (st == MP_OK) m->unk_id = mp_strmap_get(&m->vocab, m->unk_token, strlen(m->unk_token));
  } else if (!strcmp(t, "BPE")) {
    m->type = MP_M_BPE;
    st = load_bpe(m, j, what);
  } else if (!strcmp(t, "WordLevel")) {
    m->type = MP_M_WORDLEVEL;
    const char *unk = mp_json_get_str(j, "unk_token", "<unk>");
    m->unk_token = dup_n(unk, strlen(unk));
    if (!m->unk_token) st = mp_err(MP_ERR_NOMEM, "out of memory");
    if (st == MP_OK) st = load_vocab_dict(m, mp_json_get(j, "vocab"), what);
    if (st == MP_OK) m->unk_id = mp_strmap_get(&m->vocab, m->unk_token, strlen(m->unk_token));
  } else if (!strcmp(t, "Unigram")) {
    m->type = MP_M_UNIGRAM;
    st = mp_glue_unigram_from_json(m, j, what);
  } else {
    st = mp_err(MP_ERR_UNSUPPORTED, "%s:%u:%u: model type '%s' is not supported", what, j->line, j->col, t);
  }
  if (st != MP_OK) {
    mp_tmodel_free(m);
    return st;
  }
  *out = m;
  return MP_OK;
}

/* ---- WordPiece ---------------------------------------------------------------------------- */

static mp_status wordpiece(const mp_tmodel *m, mp_tok_ctx *c, const char *w, size_t n, mp_i32v *ids) {
  size_t nchars = 0;
  for (size_t i = 0; i < n; i++)
    nchars += ((unsigned char)w[i] & 0xC0) != 0x80;
  if (nchars > m->max_chars) goto unk;
  size_t mark = ids->n;
  mp_sb *b = &c->wbuf;
  size_t start = 0;
  while (start < n) {
    size_t end = n;
    int32_t found = -1;
    while (start < end) {
      int32_t id;
      if (start > 0) {
        mp_sb_clear(b);
        mp_sb_append(b, m->prefix, m->prefix_len);
        mp_sb_append(b, w + start, end - start);
        if (b->oom) return mp_err(MP_ERR_NOMEM, "out of memory (WordPiece)");
        id = mp_strmap_get(&m->vocab, b->buf, b->len);
      } else {
        id = mp_strmap_get(&m->vocab, w, end);
      }
      if (id >= 0) {
        found = id;
        break;
      }
      /* drop the last character */
      end--;
      while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80)
        end--;
    }
    if (found < 0) {
      ids->n = mark;
      goto unk;
    }
    MP_TRY(mp_i32v_push(ids, found));
    start = end;
  }
  return MP_OK;
unk:
  if (m->unk_id < 0) return mp_err(MP_ERR_FORMAT, "WordPiece: unk token '%s' is not in the vocabulary", m->unk_token);
  return mp_i32v_push(ids, m->unk_id);
}

/* ---- BPE ------------------------------------------------------------------------------------ */

typedef struct mp_bpe_heap_item {
  int32_t rank;
  uint32_t pos;
  int32_t new_id;
} mp_bpe_heap_item;

static inline int heap_less(const mp_bpe_heap_item *a, const mp_bpe_heap_item *b) {
  return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(mp_bpe_heap_item *h, size_t *n, mp_bpe_heap_item x) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(&x, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = x;
}

static mp_bpe_heap_item heap_pop(mp_bpe_heap_item *h, size_t *n) {
  mp_bpe_heap_item top = h[0], x = h[--(*n)];
  size_t i = 0, m = *n;
  for (;;) {
    size_t l = 2 * i + 1;
    if (l >= m) break;
    size_t r = l + 1, s = (r < m && heap_less(&h[r], &h[l])) ? r : l;
    if (!heap_less(&h[s], &x)) break;
    h[i] = h[s];
    i = s;
  }
  if (m) h[i] = x;
  return top;
}

static mp_status bpe_reserve(mp_tok_ctx *c, size_t n) {
  if (n <= c->sym_cap) return MP_OK;
  size_t nc = c->sym_cap ? c->sym_cap : 64;
  while (nc < n)
    nc *= 2;
  int32_t *a = realloc(c->sym_id, nc * sizeof *a);
  if (a) c->sym_id = a;
  int32_t *b = realloc(c->sym_prev, nc * sizeof *b);
  if (b) c->sym_prev = b;
  int32_t *d = realloc(c->sym_next, nc * sizeof *d);
  if (d) c->sym_next = d;
  uint32_t *e = realloc(c->sym_len, nc * sizeof *e);
  if (e) c->sym_len = e;
  /* each merge pushes at most 2 items; initial n - 1 */
  mp_bpe_heap_item *h = realloc(c->heap, 3 * nc * sizeof *h);
  if (h) c->heap = h;
  if (!a || !b || !d || !e || !h) return mp_err(MP_ERR_NOMEM, "out of memory (BPE)");
  c->sym_cap = nc;
  c->heap_cap = 3 * nc;
  return MP_OK;
}

static mp_status bpe(const mp_tmodel *m, mp_tok_ctx *c, const char *w, size_t n, mp_i32v *ids) {
  if (n == 0) return MP_OK;
  if (m->ignore_merges) {
    int32_t id = mp_strmap_get(&m->vocab, w, n);
    if (id >= 0) return mp_i32v_push(ids, id);
  }
  /* worst case: every byte a byte-fallback symbol, plus one unk per char */
  MP_TRY(bpe_reserve(c, 2 * n + 2));
  size_t ns = 0;
  int32_t unk_id = -1;
  uint32_t unk_len = 0;
  int have_unk = 0;
  mp_sb *b = &c->wbuf;
  const unsigned char *u = (const unsigned char *)w;
#define ADD(ID, LEN)                                                                                                   \
  do {                                                                                                                 \
    c->sym_id[ns] = (ID);                                                                                              \
    c->sym_len[ns] = (LEN);                                                                                            \
    ns++;                                                                                                              \
  } while (0)
  for (size_t i = 0; i < n;) {
    size_t k = (size_t)mp_u8_len(u[i]);
    if (i + k > n) k = n - i;
    int is_first = i == 0, is_last = i + k >= n;
    const char *s = w + i;
    size_t sl = k;
    if ((!is_first && m->has_prefix) || (is_last && m->has_suffix)) {
      mp_sb_clear(b);
      if (!is_first && m->has_prefix) mp_sb_append(b, m->prefix, m->prefix_len);
      mp_sb_append(b, w + i, k);
      if (is_last && m->has_suffix) mp_sb_append(b, m->suffix, m->suffix_len);
      if (b->oom) return mp_err(MP_ERR_NOMEM, "out of memory (BPE)");
      s = b->buf;
      sl = b->len;
    }
    int32_t id = mp_strmap_get(&m->vocab, s, sl);
    if (id >= 0) {
      if (have_unk) {
        ADD(unk_id, unk_len);
        have_unk = 0;
      }
      ADD(id, (uint32_t)k);
    } else {
      int done = 0;
      if (m->byte_fallback) {
        int ok = 1;
        for (size_t q = 0; q < sl; q++)
          if (m->byte_ids[(unsigned char)s[q]] < 0) ok = 0;
        if (ok) {
          MP_TRY(bpe_reserve(c, ns + sl + 2));
          for (size_t q = 0; q < sl; q++)
            ADD(m->byte_ids[(unsigned char)s[q]], 1);
          done = 1;
        }
      }
      if (!done && m->unk_token) {
        if (m->unk_id < 0) return mp_err(MP_ERR_FORMAT, "BPE: unk token '%s' is not in the vocabulary", m->unk_token);
        if (have_unk && m->fuse_unk)
          unk_len += (uint32_t)k;
        else {
          if (have_unk) ADD(unk_id, unk_len);
          unk_id = m->unk_id;
          unk_len = (uint32_t)k;
          have_unk = 1;
        }
      }
    }
    i += k;
  }
  if (have_unk) ADD(unk_id, unk_len);
#undef ADD
  if (ns == 0) return MP_OK;
  for (size_t i = 0; i < ns; i++) {
    c->sym_prev[i] = (int32_t)i - 1;
    c->sym_next[i] = i + 1 < ns ? (int32_t)(i + 1) : -1;
  }
  size_t hn = 0;
  mp_bpe_heap_item *h = c->heap;
  for (size_t i = 0; i + 1 < ns; i++) {
    int32_t r, nid;
    if (mp_pairmap_get(&m->merges, c->sym_id[i], c->sym_id[i + 1], &r, &nid))
      heap_push(h, &hn, (mp_bpe_heap_item){r, (uint32_t)i, nid});
  }
  while (hn) {
    mp_bpe_heap_item top = heap_pop(h, &hn);
    uint32_t p = top.pos;
    if (c->sym_len[p] == 0) continue;
    int32_t nx = c->sym_next[p];
    if (nx < 0) continue;
    int32_t r, nid;
    if (!mp_pairmap_get(&m->merges, c->sym_id[p], c->sym_id[nx], &r, &nid) || nid != top.new_id) continue;
    c->sym_id[p] = top.new_id;
    c->sym_len[p] += c->sym_len[nx];
    c->sym_len[nx] = 0;
    int32_t nn = c->sym_next[nx];
    c->sym_next[p] = nn;
    if (nn >= 0) c->sym_prev[nn] = (int32_t)p;
    if (hn + 2 > c->heap_cap) return mp_err(MP_ERR_INTERNAL, "BPE heap overflow");
    int32_t pv = c->sym_prev[p];
    if (pv >= 0 && mp_pairmap_get(&m->merges, c->sym_id[pv], c->sym_id[p], &r, &nid))
      heap_push(h, &hn, (mp_bpe_heap_item){r, (uint32_t)pv, nid});
    if (nn >= 0 && mp_pairmap_get(&m->merges, c->sym_id[p], c->sym_id[nn], &r, &nid))
      heap_push(h, &hn, (mp_bpe_heap_item){r, p, nid});
  }
  for (int32_t i = 0; i >= 0; i = c->sym_next[i])
    MP_TRY(mp_i32v_push(ids, c->sym_id[i]));
  return MP_OK;
}

mp_status mp_tmodel_tokenize(const mp_tmodel *m, mp_tok_ctx *c, const char *w, size_t n, mp_i32v *ids) {
  switch (m->type) {
  case MP_M_WORDPIECE: return wordpiece(m, c, w, n, ids);
  case MP_M_BPE: return bpe(m, c, w, n, ids);
  case MP_M_UNIGRAM: return mp_glue_unigram_tokenize(m, c, w, n, ids);
  case MP_M_WORDLEVEL: {
    int32_t id = mp_strmap_get(&m->vocab, w, n);
    if (id < 0) id = m->unk_id;
    if (id < 0) return mp_err(MP_ERR_FORMAT, "WordLevel: unk token '%s' is not in the vocabulary", m->unk_token);
    return mp_i32v_push(ids, id);
  }
  }
  return mp_err(MP_ERR_INTERNAL, "unknown model type");
}
