/* Decoders: WordPiece, ByteLevel, Metaspace, BPEDecoder, ByteFallback, Fuse, Strip, Replace,
 * Sequence (HF `tokenizers` decode_chain semantics). */
#include "tokenizer/tok_decode.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

typedef enum { D_WORDPIECE, D_BYTELEVEL, D_METASPACE, D_BPE, D_BYTEFALLBACK, D_FUSE, D_STRIP, D_REPLACE, D_SEQ } dtype;

struct mp_tdecoder {
  dtype type;
  char *s; /* prefix / suffix / replacement / replace content */
  size_t s_len;
  uint32_t cp; /* Metaspace replacement / Strip content */
  int cleanup, prepend_never;
  size_t start, stop;
  mp_tregex re;
  mp_tdecoder **kids;
  size_t n_kids;
};

typedef struct toklist {
  mp_sb *v;
  size_t n, cap;
} toklist;

static void tl_free(toklist *t) {
  for (size_t i = 0; i < t->n; i++)
    mp_sb_free(&t->v[i]);
  free(t->v);
  memset(t, 0, sizeof *t);
}

static mp_status tl_push(toklist *t, const char *s, size_t n) {
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 16;
    mp_sb *nv = realloc(t->v, nc * sizeof *nv);
    if (!nv) return mp_err(MP_ERR_NOMEM, "out of memory (decode)");
    t->v = nv;
    t->cap = nc;
  }
  mp_sb_init(&t->v[t->n]);
  mp_sb_append(&t->v[t->n], s, n);
  t->n++;
  return MP_OK;
}

void mp_tdecoder_free(mp_tdecoder *d) {
  if (!d) return;
  for (size_t i = 0; i < d->n_kids; i++)
    mp_tdecoder_free(d->kids[i]);
  free(d->kids);
  free(d->s);
  mp_tregex_free(&d->re);
  free(d);
}

static mp_status set_str(mp_tdecoder *d, const char *s) {
  d->s_len = strlen(s);
  d->s = malloc(d->s_len + 1);
  if (!d->s) return mp_err(MP_ERR_NOMEM, "out of memory");
  memcpy(d->s, s, d->s_len + 1);
  return MP_OK;
}

static uint32_t first_cp(const char *s) {
  uint32_t cp = 0;
  size_t n = strlen(s);
  if (n && mp_utf8_valid(s, n)) mp_u8_dec((const unsigned char *)s, n, &cp);
  return cp;
}

mp_status mp_tdecoder_from_json(const mp_json *j, const char *what, mp_tdecoder **out) {
  *out = NULL;
  if (!j || j->type == MP_JSON_NULL) return MP_OK;
  if (j->type != MP_JSON_OBJECT) return mp_err(MP_ERR_FORMAT, "%s: decoder must be an object", what);
  mp_tdecoder *d = calloc(1, sizeof *d);
  if (!d) return mp_err(MP_ERR_NOMEM, "out of memory");
  const char *t = mp_json_get_str(j, "type", "");
  mp_status st = MP_OK;
  if (!strcmp(t, "WordPiece")) {
    d->type = D_WORDPIECE;
    st = set_str(d, mp_json_get_str(j, "prefix", "##"));
    d->cleanup = mp_json_get_bool(j, "cleanup", 1);
  } else if (!strcmp(t, "ByteLevel"))
    d->type = D_BYTELEVEL;
  else if (!strcmp(t, "Metaspace")) {
    d->type = D_METASPACE;
    st = set_str(d, mp_json_get_str(j, "replacement", "\xE2\x96\x81"));
    d->cp = first_cp(d->s ? d->s : "");
    const char *ps = mp_json_get_str(j, "prepend_scheme", NULL);
    d->prepend_never = ps ? !strcmp(ps, "never") : !mp_json_get_bool(j, "add_prefix_space", 1);
  } else if (!strcmp(t, "BPEDecoder")) {
    d->type = D_BPE;
    st = set_str(d, mp_json_get_str(j, "suffix", "</w>"));
  } else if (!strcmp(t, "ByteFallback"))
    d->type = D_BYTEFALLBACK;
  else if (!strcmp(t, "Fuse"))
    d->type = D_FUSE;
  else if (!strcmp(t, "Strip")) {
    d->type = D_STRIP;
    d->cp = first_cp(mp_json_get_str(j, "content", " "));
    int64_t a = mp_json_get_int(j, "start", 0), b = mp_json_get_int(j, "stop", 0);
    d->start = a < 0 ? 0 : (size_t)a;
    d->stop = b < 0 ? 0 : (size_t)b;
  } else if (!strcmp(t, "Replace")) {
    d->type = D_REPLACE;
    st = set_str(d, mp_json_get_str(j, "content", ""));
    const mp_json *p = mp_json_get(j, "pattern");
    if (st == MP_OK) {
      if (!p || p->type != MP_JSON_OBJECT || p->len != 1 || p->items[0]->type != MP_JSON_STRING)
        st = mp_err(MP_ERR_FORMAT, "%s: Replace decoder needs a pattern", what);
      else
        st = mp_tregex_compile(&d->re, p->items[0]->str, p->items[0]->len, strcmp(p->keys[0], "Regex") != 0, what);
    }
  } else if (!strcmp(t, "Sequence")) {
    d->type = D_SEQ;
    const mp_json *arr = mp_json_get(j, "decoders");
    if (!arr || arr->type != MP_JSON_ARRAY)
      st = mp_err(MP_ERR_FORMAT, "%s: Sequence decoder needs 'decoders'", what);
    else {
      d->kids = calloc(arr->len ? arr->len : 1, sizeof *d->kids);
      if (!d->kids) st = mp_err(MP_ERR_NOMEM, "out of memory");
      for (size_t i = 0; st == MP_OK && i < arr->len; i++) {
        st = mp_tdecoder_from_json(arr->items[i], what, &d->kids[d->n_kids]);
        if (st == MP_OK && d->kids[d->n_kids]) d->n_kids++;
      }
    }
  } else {
    /* unknown decoders only matter for decode(); keep loading (encode is unaffected) */
    d->type = D_FUSE;
  }
  if (st != MP_OK) {
    mp_tdecoder_free(d);
    return st;
  }
  *out = d;
  return MP_OK;
}

static void sb_replace_all(mp_sb *s, const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to);
  if (!s->len || fl > s->len) return;
  mp_sb r;
  mp_sb_init(&r);
  size_t i = 0;
  while (i < s->len) {
    if (i + fl <= s->len && !memcmp(s->buf + i, from, fl)) {
      mp_sb_append(&r, to, tl);
      i += fl;
    } else
      mp_sb_putc(&r, s->buf[i++]);
  }
  mp_sb_free(s);
  *s = r;
}

static mp_status chain(const mp_tdecoder *d, toklist *t) {
  switch (d->type) {
  case D_WORDPIECE:
    for (size_t i = 0; i < t->n; i++) {
      mp_sb *s = &t->v[i];
      if (i) {
        if (s->buf && s->len >= d->s_len && !memcmp(s->buf, d->s, d->s_len)) {
          memmove(s->buf, s->buf + d->s_len, s->len - d->s_len);
          s->len -= d->s_len;
          s->buf[s->len] = 0;
        } else {
          mp_sb r;
          mp_sb_init(&r);
          mp_sb_putc(&r, ' ');
          mp_sb_append(&r, s->buf, s->len);
          mp_sb_free(s);
          *s = r;
        }
      }
      if (d->cleanup) {
        static const char *pairs[][2] = {{" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
                                         {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
                                         {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
        for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++)
          sb_replace_all(s, pairs[k][0], pairs[k][1]);
      }
    }
    return MP_OK;
  case D_BYTELEVEL: {
    if (t->n == 0) return MP_OK;
    mp_sb bytes;
    mp_sb_init(&bytes);
    for (size_t i = 0; i < t->n; i++) {
      const unsigned char *u = (const unsigned char *)t->v[i].buf;
      for (size_t k = 0; k < t->v[i].len;) {
        uint32_t cp;
        int l = mp_u8_dec(u + k, t->v[i].len - k, &cp);
        int found = -1;
        for (int b = 0; b < 256; b++)
          if (mp_bytelevel_map[b] == cp) found = b;
        if (found >= 0)
          mp_sb_putc(&bytes, (char)found);
        else
          mp_sb_append(&bytes, u + k, (size_t)l);
        k += (size_t)l;
      }
    }
    mp_sb clean;
    mp_sb_init(&clean);
    mp_u8_sanitize(bytes.buf ? bytes.buf : "", bytes.len, &clean);
    mp_sb_free(&bytes);
    for (size_t i = 0; i < t->n; i++)
      mp_sb_free(&t->v[i]);
    t->n = 1;
    t->v[0] = clean;
    return MP_OK;
  }
  case D_METASPACE:
    for (size_t i = 0; i < t->n; i++) {
      mp_sb r;
      mp_sb_init(&r);
      const unsigned char *u = (const unsigned char *)t->v[i].buf;
      for (size_t k = 0; k < t->v[i].len;) {
        uint32_t cp;
        int l = mp_u8_dec(u + k, t->v[i].len - k, &cp);
        if (cp == d->cp) {
          if (!(i == 0 && !d->prepend_never)) mp_sb_putc(&r, ' ');
        } else
          mp_sb_append(&r, u + k, (size_t)l);
        k += (size_t)l;
      }
      mp_sb_free(&t->v[i]);
      t->v[i] = r;
    }
    return MP_OK;
  case D_BPE:
    for (size_t i = 0; i < t->n; i++)
      sb_replace_all(&t->v[i], d->s, i + 1 == t->n ? "" : " ");
    return MP_OK;
  case D_BYTEFALLBACK: {
    toklist r = {0};
    mp_sb pend;
    mp_sb_init(&pend);
    mp_status st = MP_OK;
    for (size_t i = 0; i <= t->n && st == MP_OK; i++) {
      int is_byte = 0;
      unsigned val = 0;
      if (i < t->n) {
        const mp_sb *s = &t->v[i];
        if (s->len == 6 && !memcmp(s->buf, "<0x", 3) && s->buf[5] == '>') {
          char hx[3] = {s->buf[3], s->buf[4], 0};
          char *e;
          val = (unsigned)strtoul(hx, &e, 16);
          is_byte = *e == 0 && hx[0] != '+' && hx[0] != '-' && hx[0] != ' ';
        }
      }
      if (is_byte) {
        mp_sb_putc(&pend, (char)val);
        continue;
      }
      if (pend.len) {
        if (mp_utf8_valid(pend.buf, pend.len))
          st = tl_push(&r, pend.buf, pend.len);
        else
          for (size_t k = 0; k < pend.len && st == MP_OK; k++)
            st = tl_push(&r, "\xEF\xBF\xBD", 3);
        mp_sb_clear(&pend);
      }
      if (i < t->n && st == MP_OK) st = tl_push(&r, t->v[i].buf ? t->v[i].buf : "", t->v[i].len);
    }
    mp_sb_free(&pend);
    tl_free(t);
    *t = r;
    return st;
  }
  case D_FUSE: {
    if (t->n == 0) return MP_OK;
    mp_sb all;
    mp_sb_init(&all);
    for (size_t i = 0; i < t->n; i++)
      mp_sb_append(&all, t->v[i].buf, t->v[i].len);
    for (size_t i = 0; i < t->n; i++)
      mp_sb_free(&t->v[i]);
    t->n = 1;
    t->v[0] = all;
    return MP_OK;
  }
  case D_STRIP:
    for (size_t i = 0; i < t->n; i++) {
      mp_sb *s = &t->v[i];
      /* work on code points */
      size_t nch = 0;
      for (size_t k = 0; k < s->len; k++)
        nch += ((unsigned char)s->buf[k] & 0xC0) != 0x80;
      uint32_t *cps = malloc((nch ? nch : 1) * sizeof *cps);
      if (!cps) return mp_err(MP_ERR_NOMEM, "out of memory");
      size_t m = 0;
      for (size_t k = 0; k < s->len;)
        k += (size_t)mp_u8_dec((const unsigned char *)s->buf + k, s->len - k, &cps[m++]);
      size_t a = 0, b = m;
      for (size_t k = 0; k < d->start && k < m && cps[k] == d->cp; k++)
        a = k + 1;
      for (size_t k = 0; k < d->stop && k < m; k++) {
        size_t idx = m - k - 1;
        if (cps[idx] == d->cp)
          b = idx;
        else
          break;
      }
      mp_sb r;
      mp_sb_init(&r);
      for (size_t k = a; k < b; k++)
        mp_u8_put(&r, cps[k]);
      free(cps);
      mp_sb_free(s);
      *s = r;
    }
    return MP_OK;
  case D_REPLACE:
    for (size_t i = 0; i < t->n; i++) {
      mp_tok_ctx c;
      mp_tok_ctx_init(&c);
      mp_spanv sp = {0};
      const char *text = t->v[i].buf ? t->v[i].buf : ""; /* an empty token may have no buffer */
      mp_status st = mp_tregex_find(&d->re, &c, text, t->v[i].len, &sp);
      mp_sb r;
      mp_sb_init(&r);
      for (size_t k = 0; st == MP_OK && k < sp.n; k++) {
        if (sp.v[k].match)
          mp_sb_append(&r, d->s, d->s_len);
        else
          mp_sb_append(&r, text + sp.v[k].start, sp.v[k].end - sp.v[k].start);
      }
      free(sp.v);
      mp_tok_ctx_free(&c);
      mp_sb_free(&t->v[i]);
      t->v[i] = r;
      if (st != MP_OK) return st;
    }
    return MP_OK;
  case D_SEQ:
    for (size_t i = 0; i < d->n_kids; i++)
      MP_TRY(chain(d->kids[i], t));
    return MP_OK;
  }
  return MP_OK;
}

mp_status mp_tdecoder_decode(const mp_tdecoder *d, const mp_tokenizer *tok, const int32_t *ids, size_t n,
                             int skip_special, mp_sb *out) {
  toklist t = {0};
  mp_status st = MP_OK;
  for (size_t i = 0; i < n && st == MP_OK; i++) {
    size_t len;
    const char *s = mp_tokenizer_id_to_token(tok, ids[i], &len);
    if (!s) continue;
    if (skip_special && mp_tokenizer_is_special_id(tok, ids[i])) continue;
    st = tl_push(&t, s, len);
  }
  if (st == MP_OK && d) st = chain(d, &t);
  if (st == MP_OK) {
    for (size_t i = 0; i < t.n; i++) {
      if (!d && i) mp_sb_putc(out, ' ');
      mp_sb_append(out, t.v[i].buf, t.v[i].len);
    }
    if (out->oom) st = mp_err(MP_ERR_NOMEM, "out of memory (decode)");
  }
  tl_free(&t);
  return st;
}
