/* Normalizers and pre-tokenizers of HF `tokenizers`, on UTF-8 strings. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

/* GPT-2 byte -> printable code point map (bytes_to_unicode). */
const uint32_t mp_bytelevel_map[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277,
    278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 33,  34,  35,  36,  37,  38,  39,  40,  41,  42,  43,
    44,  45,  46,  47,  48,  49,  50,  51,  52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  62,  63,  64,  65,
    66,  67,  68,  69,  70,  71,  72,  73,  74,  75,  76,  77,  78,  79,  80,  81,  82,  83,  84,  85,  86,  87,
    88,  89,  90,  91,  92,  93,  94,  95,  96,  97,  98,  99,  100, 101, 102, 103, 104, 105, 106, 107, 108, 109,
    110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289, 290, 291, 292, 293,
    294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313, 314, 315,
    316, 317, 318, 319, 320, 321, 322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197,
    198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219,
    220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241,
    242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char WS_RE[] =
    "[\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200c}\\x{200d}]+|[^\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200c}\\x{200d}\\s]+";

/* ---- normalizers ------------------------------------------------------------------------- */

static int all_ascii(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] >= 0x80) return 0;
  return 1;
}

/* utf8proc normalization forms; ASCII is invariant under all four. */
static mp_status unicode_form(const char *s, size_t n, int opts, mp_sb *out) {
  mp_sb_clear(out);
  if (all_ascii(s, n)) {
    mp_sb_append(out, s, n);
    return MP_OK;
  }
  utf8proc_uint8_t *dst = NULL;
  utf8proc_ssize_t r =
      utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)(UTF8PROC_STABLE | opts));
  if (r < 0) {
    free(dst);
    return mp_err(MP_ERR_FORMAT, "Unicode normalization failed: %s", utf8proc_errmsg(r));
  }
  mp_sb_append(out, dst, (size_t)r);
  free(dst);
  return MP_OK;
}

static void do_lower(const char *s, size_t n, mp_sb *out) {
  mp_sb_clear(out);
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    i += (size_t)mp_u8_dec(u + i, n - i, &cp);
    mp_uc_lower_put(out, cp);
  }
}

static void filter_marks(const char *s, size_t n, int all_marks, mp_sb *out) {
  mp_sb_clear(out);
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int k = mp_u8_dec(u + i, n - i, &cp);
    int drop;
    if (cp < 0x300)
      drop = 0;
    else if (all_marks) {
      utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
      drop = cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
    } else
      drop = mp_uc_is_mn(cp);
    if (!drop) mp_sb_append(out, s + i, (size_t)k);
    i += (size_t)k;
  }
}

static void do_strip(const char *s, size_t n, int left, int right, mp_sb *out) {
  const unsigned char *u = (const unsigned char *)s;
  size_t a = 0, b = n;
  if (left) {
    while (a < b) {
      uint32_t cp;
      int k = mp_u8_dec(u + a, b - a, &cp);
      if (!mp_uc_is_whitespace(cp)) break;
      a += (size_t)k;
    }
  }
  if (right) {
    while (b > a) {
      size_t st = b - 1;
      while (st > a && (u[st] & 0xC0) == 0x80)
        st--;
      uint32_t cp;
      mp_u8_dec(u + st, b - st, &cp);
      if (!mp_uc_is_whitespace(cp)) break;
      b = st;
    }
  }
  mp_sb_clear(out);
  mp_sb_append(out, s + a, b - a);
}

static mp_status do_bert(const mp_tnorm *nz, const char *s, size_t n, mp_sb *out, mp_sb *tmp) {
  mp_sb_clear(out);
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int k = mp_u8_dec(u + i, n - i, &cp);
    i += (size_t)k;
    if (nz->clean_text) {
      if (cp == 0 || cp == 0xFFFD || mp_uc_is_control_bert(cp)) continue;
      if (mp_uc_is_bert_ws(cp)) cp = ' ';
    }
    if (nz->chinese && cp >= 0x3400 && mp_uc_is_chinese(cp)) {
      mp_sb_putc(out, ' ');
      mp_u8_put(out, cp);
      mp_sb_putc(out, ' ');
    } else if (cp < 0x80) {
      mp_sb_putc(out, (char)cp);
    } else {
      mp_sb_append(out, u + i - k, (size_t)k);
    }
  }
  int strip = nz->strip_accents < 0 ? nz->lowercase : nz->strip_accents;
  if (strip) {
    MP_TRY(unicode_form(out->buf, out->len, UTF8PROC_DECOMPOSE, tmp));
    filter_marks(tmp->buf, tmp->len, 0, out);
  }
  if (nz->lowercase) {
    do_lower(out->buf, out->len, tmp);
    mp_sb_clear(out);
    mp_sb_append(out, tmp->buf, tmp->len);
  }
  return out->oom ? mp_err(MP_ERR_NOMEM, "out of memory (normalizer)") : MP_OK;
}

static mp_status do_replace(const mp_tnorm *nz, mp_tok_ctx *c, const char *s, size_t n, mp_sb *out) {
  mp_spanv sp = {0};
  mp_status st = mp_tregex_find(&nz->re, c, s, n, &sp);
  if (st == MP_OK) {
    mp_sb_clear(out);
    for (size_t i = 0; i < sp.n; i++) {
      if (sp.v[i].match)
        mp_sb_append(out, nz->content, nz->content_len);
      else
        mp_sb_append(out, s + sp.v[i].start, sp.v[i].end - sp.v[i].start);
    }
  }
  free(sp.v);
  return st;
}

mp_status mp_tnorm_apply(const mp_tnorm *nz, mp_tok_ctx *c, const char *s, size_t n, mp_sb *out) {
  mp_sb tmp;
  mp_sb_init(&tmp);
  mp_status st = MP_OK;
  switch (nz->type) {
  case MP_N_BERT: st = do_bert(nz, s, n, out, &tmp); break;
  case MP_N_LOWER: do_lower(s, n, out); break;
  case MP_N_STRIP_ACCENTS: filter_marks(s, n, 1, out); break;
  case MP_N_NFC: st = unicode_form(s, n, UTF8PROC_COMPOSE, out); break;
  case MP_N_NFD: st = unicode_form(s, n, UTF8PROC_DECOMPOSE, out); break;
  case MP_N_NFKC: st = unicode_form(s, n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out); break;
  case MP_N_NFKD: st = unicode_form(s, n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out); break;
  case MP_N_REPLACE: st = do_replace(nz, c, s, n, out); break;
  case MP_N_PREPEND:
    mp_sb_clear(out);
    if (n) mp_sb_append(out, nz->content, nz->content_len);
    mp_sb_append(out, s, n);
    break;
  case MP_N_STRIP: do_strip(s, n, nz->strip_left, nz->strip_right, out); break;
  case MP_N_BYTELEVEL:
    mp_sb_clear(out);
    for (size_t i = 0; i < n; i++)
      mp_u8_put(out, mp_bytelevel_map[(unsigned char)s[i]]);
    break;
  case MP_N_PRECOMPILED: st = mp_glue_precompiled_normalize(nz->precompiled, s, n, out); break;
  case MP_N_SEQ: {
    mp_sb a;
    mp_sb_init(&a);
    mp_sb_clear(out);
    mp_sb_append(out, s, n);
    for (size_t i = 0; i < nz->n_kids && st == MP_OK; i++) {
      st = mp_tnorm_apply(nz->kids[i], c, out->buf, out->len, &a);
      if (st == MP_OK) {
        mp_sb t = *out;
        *out = a;
        a = t;
      }
    }
    mp_sb_free(&a);
    break;
  }
  }
  mp_sb_free(&tmp);
  if (st == MP_OK && out->oom) st = mp_err(MP_ERR_NOMEM, "out of memory (normalizer)");
  return st;
}

void mp_tnorm_free(mp_tnorm *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n_kids; i++)
    mp_tnorm_free(n->kids[i]);
  free(n->kids);
  free(n->content);
  mp_tregex_free(&n->re);
  mp_glue_precompiled_free(n->precompiled);
  free(n);
}

static const char *jtype(const mp_json *j) { return mp_json_get_str(j, "type", ""); }

static mp_status parse_pattern(const mp_json *pat, const char *what, mp_tregex *re) {
  if (!pat || pat->type != MP_JSON_OBJECT || pat->len != 1)
    return mp_err(MP_ERR_FORMAT, "%s: 'pattern' must be {\"String\": ...} or {\"Regex\": ...}", what);
  const mp_json *v = pat->items[0];
  if (v->type != MP_JSON_STRING)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: pattern value must be a string", what, v->line, v->col);
  if (strcmp(pat->keys[0], "String") == 0) return mp_tregex_compile(re, v->str, v->len, 1, what);
  if (strcmp(pat->keys[0], "Regex") == 0) return mp_tregex_compile(re, v->str, v->len, 0, what);
  return mp_err(MP_ERR_FORMAT, "%s:%u:%u: unknown pattern kind '%s'", what, pat->line, pat->col, pat->keys[0]);
}

static int json_bool_or_null(const mp_json *o, const char *key, int dflt) {
  const mp_json *v = mp_json_get(o, key);
  if (!v || v->type == MP_JSON_NULL) return dflt;
  if (v->type == MP_JSON_BOOL) return v->boolean;
  return dflt;
}

mp_status mp_tnorm_from_json(const mp_json *j, const char *what, mp_tnorm **out) {
  *out = NULL;
  if (!j || j->type == MP_JSON_NULL) return MP_OK;
  if (j->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: normalizer must be an object", what, j->line, j->col);
  mp_tnorm *n = calloc(1, sizeof *n);
  if (!n) return mp_err(MP_ERR_NOMEM, "out of memory");
  const char *t = jtype(j);
  mp_status st = MP_OK;
  if (!strcmp(t, "BertNormalizer")) {
    n->type = MP_N_BERT;
    n->clean_text = json_bool_or_null(j, "clean_text", 1);
    n->chinese = json_bool_or_null(j, "handle_chinese_chars", 1);
    n->strip_accents = json_bool_or_null(j, "strip_accents", -1);
    n->lowercase = json_bool_or_null(j, "lowercase", 1);
  } else if (!strcmp(t, "Lowercase"))
    n->type = MP_N_LOWER;
  else if (!strcmp(t, "StripAccents"))
    n->type = MP_N_STRIP_ACCENTS;
  else if (!strcmp(t, "NFC"))
    n->type = MP_N_NFC;
  else if (!strcmp(t, "NFD"))
    n->type = MP_N_NFD;
  else if (!strcmp(t, "NFKC"))
    n->type = MP_N_NFKC;
  else if (!strcmp(t, "NFKD"))
    n->type = MP_N_NFKD;
  else if (!strcmp(t, "ByteLevel"))
    n->type = MP_N_BYTELEVEL;
  else if (!strcmp(t, "Strip")) {
    n->type = MP_N_STRIP;
    n->strip_left = json_bool_or_null(j, "strip_left", 1);
    n->strip_right = json_bool_or_null(j, "strip_right", 1);
  } else if (!strcmp(t, "Replace") || !strcmp(t, "Prepend")) {
    int rep = t[0] == 'R';
    n->type = rep ? MP_N_REPLACE : MP_N_PREPEND;
    const mp_json *cv = mp_json_get(j, rep ? "content" : "prepend");
    if (!cv || cv->type != MP_JSON_STRING)
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: %s normalizer needs a string '%s'", what, j->line, j->col, t,
                  rep ? "content" : "prepend");
    else {
      n->content = malloc(cv->len + 1);
      if (!n->content)
        st = mp_err(MP_ERR_NOMEM, "out of memory");
      else {
        memcpy(n->content, cv->str, cv->len + 1);
        n->content_len = cv->len;
      }
    }
    if (st == MP_OK && rep) st = parse_pattern(mp_json_get(j, "pattern"), what, &n->re);
  } else if (!strcmp(t, "Sequence")) {
    n->type = MP_N_SEQ;
    const mp_json *arr = mp_json_get(j, "normalizers");
    if (!arr || arr->type != MP_JSON_ARRAY)
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: Sequence normalizer needs 'normalizers'", what, j->line, j->col);
    else {
      n->kids = calloc(arr->len ? arr->len : 1, sizeof *n->kids);
      if (!n->kids) st = mp_err(MP_ERR_NOMEM, "out of memory");
      for (size_t i = 0; st == MP_OK && i < arr->len; i++) {
        st = mp_tnorm_from_json(arr->items[i], what, &n->kids[n->n_kids]);
        if (st == MP_OK && n->kids[n->n_kids]) n->n_kids++;
      }
    }
  } else if (!strcmp(t, "Precompiled")) {
    n->type = MP_N_PRECOMPILED;
    const mp_json *cm = mp_json_get(j, "precompiled_charsmap");
    void *pc = NULL;
    if (!cm || cm->type == MP_JSON_NULL)
      st = mp_glue_precompiled_from_base64(NULL, 0, what, &pc);
    else if (cm->type != MP_JSON_STRING)
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: precompiled_charsmap must be a base64 string", what, cm->line, cm->col);
    else
      st = mp_glue_precompiled_from_base64(cm->str, cm->len, what, &pc);
    n->precompiled = pc;
  } else {
    st = mp_err(MP_ERR_UNSUPPORTED, "%s:%u:%u: normalizer type '%s' is not supported", what, j->line, j->col, t);
  }
  if (st != MP_OK) {
    mp_tnorm_free(n);
    return st;
  }
  *out = n;
  return MP_OK;
}

/* ---- pre-tokenizers ----------------------------------------------------------------------- */

static mp_status emit(mp_piecev *out, mp_sb *pool, const char *s, size_t n, int first) {
  if (!n) return MP_OK;
  if (pool->len + n > UINT32_MAX)
    return mp_err(MP_ERR_NOMEM, "text too long to tokenize (over 4 GiB after pre-tokenization)");
  mp_piece p = {(uint32_t)pool->len, (uint32_t)n, -1, first};
  mp_sb_append(pool, s, n);
  if (pool->oom) return mp_err(MP_ERR_NOMEM, "out of memory (pre-tokenizer)");
  return mp_piecev_push(out, p);
}

/* Per-character pattern (Rust `Fn(char) -> bool` Pattern::find_matches). */
static mp_status char_matches(const char *s, size_t n, int (*pred)(uint32_t, const void *), const void *arg,
                              mp_spanv *sp) {
  sp->n = 0;
  if (!n) return mp_spanv_push(sp, 0, 0, 0);
  const unsigned char *u = (const unsigned char *)s;
  size_t last = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int k = mp_u8_dec(u + i, n - i, &cp);
    if (pred(cp, arg)) {
      if (last < i) MP_TRY(mp_spanv_push(sp, (uint32_t)last, (uint32_t)i, 0));
      MP_TRY(mp_spanv_push(sp, (uint32_t)i, (uint32_t)(i + (size_t)k), 1));
      last = i + (size_t)k;
    }
    i += (size_t)k;
  }
  if (last < n) MP_TRY(mp_spanv_push(sp, (uint32_t)last, (uint32_t)n, 0));
  return MP_OK;
}

/* Applies a SplitDelimiterBehavior to spans (in place); match = 1 afterwards means "remove". */
static void apply_behavior(mp_spanv *sp, mp_split_behavior b, int invert) {
  if (invert)
    for (size_t i = 0; i < sp->n; i++)
      sp->v[i].match = !sp->v[i].match;
  size_t w = 0;
  int prev = 0;
  switch (b) {
  case MP_B_REMOVED: break;
  case MP_B_ISOLATED:
    for (size_t i = 0; i < sp->n; i++)
      sp->v[i].match = 0;
    break;
  case MP_B_CONTIGUOUS:
    for (size_t i = 0; i < sp->n; i++) {
      mp_span x = sp->v[i];
      if (x.match == prev && w > 0)
        sp->v[w - 1].end = x.end;
      else
        sp->v[w++] = (mp_span){x.start, x.end, 0};
      prev = x.match;
    }
    sp->n = w;
    break;
  case MP_B_MERGED_PREV:
    for (size_t i = 0; i < sp->n; i++) {
      mp_span x = sp->v[i];
      if (x.match && !prev && w > 0)
        sp->v[w - 1].end = x.end;
      else
        sp->v[w++] = (mp_span){x.start, x.end, 0};
      prev = x.match;
    }
    sp->n = w;
    break;
  case MP_B_MERGED_NEXT: {
    /* fold from the right, building the result reversed at the end of the array */
    size_t r = sp->n; /* write position (exclusive) from the right */
    for (size_t ii = sp->n; ii-- > 0;) {
      mp_span x = sp->v[ii];
      if (x.match && !prev && r < sp->n)
        sp->v[r].start = x.start;
      else
        sp->v[--r] = (mp_span){x.start, x.end, 0};
      prev = x.match;
    }
    size_t cnt = sp->n - r;
    memmove(sp->v, sp->v + r, cnt * sizeof *sp->v);
    sp->n = cnt;
    break;
  }
  }
}

static mp_status emit_spans(const mp_spanv *sp, const char *s, int first, mp_piecev *out, mp_sb *pool) {
  for (size_t i = 0; i < sp->n; i++) {
    if (sp->v[i].match) continue;
    MP_TRY(emit(out, pool, s + sp->v[i].start, sp->v[i].end - sp->v[i].start, first && sp->v[i].start == 0));
  }
  return MP_OK;
}

static int pred_ws(uint32_t c, const void *a) {
  (void)a;
  return mp_uc_is_whitespace(c);
}
static int pred_punct(uint32_t c, const void *a) {
  (void)a;
  return mp_uc_is_punct(c);
}
static int pred_num(uint32_t c, const void *a) {
  (void)a;
  return mp_uc_is_numeric(c);
}
static int pred_eq(uint32_t c, const void *a) { return c == *(const uint32_t *)a; }

static mp_status pretok_one(const mp_tpretok *p, mp_tok_ctx *c, const char *s, size_t n, int first, mp_piecev *out,
                            mp_sb *pool) {
  mp_spanv *sp = &c->spans;
  switch (p->type) {
  case MP_P_BERT: {
    /* whitespace (removed), then punctuation (isolated) */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, word = 0;
    int in_word = 0;
    while (i < n) {
      uint32_t cp;
      int k = mp_u8_dec(u + i, n - i, &cp);
      if (mp_uc_is_whitespace(cp)) {
        if (in_word) MP_TRY(emit(out, pool, s + word, i - word, first && word == 0));
        in_word = 0;
      } else if (mp_uc_is_punct(cp)) {
        if (in_word) MP_TRY(emit(out, pool, s + word, i - word, first && word == 0));
        in_word = 0;
        MP_TRY(emit(out, pool, s + i, (size_t)k, first && i == 0));
      } else if (!in_word) {
        in_word = 1;
        word = i;
      }
      i += (size_t)k;
    }
    if (in_word) MP_TRY(emit(out, pool, s + word, n - word, first && word == 0));
    return MP_OK;
  }
  case MP_P_WHITESPACE_SPLIT:
    MP_TRY(char_matches(s, n, pred_ws, NULL, sp));
    apply_behavior(sp, MP_B_REMOVED, 0);
    return emit_spans(sp, s, first, out, pool);
  case MP_P_PUNCT:
    MP_TRY(char_matches(s, n, pred_punct, NULL, sp));
    apply_behavior(sp, p->behavior, 0);
    return emit_spans(sp, s, first, out, pool);
  case MP_P_DIGITS:
    MP_TRY(char_matches(s, n, pred_num, NULL, sp));
    apply_behavior(sp, p->individual_digits ? MP_B_ISOLATED : MP_B_CONTIGUOUS, 0);
    return emit_spans(sp, s, first, out, pool);
  case MP_P_CHARDELIM:
    MP_TRY(char_matches(s, n, pred_eq, &p->delim, sp));
    apply_behavior(sp, MP_B_REMOVED, 0);
    return emit_spans(sp, s, first, out, pool);
  case MP_P_WHITESPACE:
    MP_TRY(mp_tregex_find(&p->re, c, s, n, sp));
    apply_behavior(sp, MP_B_REMOVED, 1);
    return emit_spans(sp, s, first, out, pool);
  case MP_P_SPLIT:
    MP_TRY(mp_tregex_find(&p->re, c, s, n, sp));
    apply_behavior(sp, p->behavior, p->invert);
    return emit_spans(sp, s, first, out, pool);
  case MP_P_BYTELEVEL: {
    mp_sb *t = &c->t3;
    mp_sb_clear(t);
    if (p->add_prefix_space && (n == 0 || s[0] != ' ')) mp_sb_putc(t, ' ');
    mp_sb_append(t, s, n);
    if (t->oom) return mp_err(MP_ERR_NOMEM, "out of memory (pre-tokenizer)");
    if (p->use_regex) {
      MP_TRY(mp_tregex_find(&p->re, c, t->buf, t->len, sp));
    } else {
      sp->n = 0;
      MP_TRY(mp_spanv_push(sp, 0, (uint32_t)t->len, 0));
    }
    for (size_t i = 0; i < sp->n; i++) {
      size_t a = sp->v[i].start, b = sp->v[i].end;
      if (a == b) continue;
      size_t off = pool->len;
      for (size_t k = a; k < b; k++)
        mp_u8_put(pool, mp_bytelevel_map[(unsigned char)t->buf[k]]);
      if (pool->oom || pool->len > UINT32_MAX) return mp_err(MP_ERR_NOMEM, "out of memory (pre-tokenizer)");
      mp_piece pc = {(uint32_t)off, (uint32_t)(pool->len - off), -1, first && a == 0};
      MP_TRY(mp_piecev_push(out, pc));
    }
    return MP_OK;
  }
  case MP_P_METASPACE: {
    mp_sb *t = &c->t3;
    mp_sb_clear(t);
    int starts = n >= p->replacement_len && memcmp(s, p->replacement, p->replacement_len) == 0;
    /* replace(' ', rep) first, then prepend: a leading ' ' becomes rep, so no prepend */
    if (n > 0 && s[0] == ' ') starts = 1;
    if (!starts && (p->prepend == MP_PREPEND_ALWAYS || (p->prepend == MP_PREPEND_FIRST && first)))
      mp_sb_append(t, p->replacement, p->replacement_len);
    for (size_t i = 0; i < n; i++) {
      if (s[i] == ' ')
        mp_sb_append(t, p->replacement, p->replacement_len);
      else
        mp_sb_putc(t, s[i]);
    }
    if (t->oom) return mp_err(MP_ERR_NOMEM, "out of memory (pre-tokenizer)");
    if (!p->split) return emit(out, pool, t->buf, t->len, first);
    MP_TRY(char_matches(t->buf, t->len, pred_eq, &p->replacement_cp, sp));
    apply_behavior(sp, MP_B_MERGED_NEXT, 0);
    return emit_spans(sp, t->buf, first, out, pool);
  }
  case MP_P_SEQ: break;
  }
  return mp_err(MP_ERR_INTERNAL, "pre-tokenizer type %d not handled here", (int)p->type);
}

mp_status mp_tpretok_apply(const mp_tpretok *p, mp_tok_ctx *c, const mp_piecev *in, const mp_sb *in_pool,
                           mp_piecev *out, mp_sb *out_pool) {
  out->n = 0;
  mp_sb_clear(out_pool);
  if (p->type == MP_P_SEQ) {
    if (p->n_kids == 0) {
      for (size_t i = 0; i < in->n; i++) {
        mp_piece x = in->v[i];
        size_t off = out_pool->len;
        mp_sb_append(out_pool, (in_pool->buf ? in_pool->buf : "") + x.off, x.len);
        x.off = (uint32_t)off;
        MP_TRY(mp_piecev_push(out, x));
      }
      return out_pool->oom ? mp_err(MP_ERR_NOMEM, "out of memory") : MP_OK;
    }
    if (p->n_kids == 1) return mp_tpretok_apply(p->kids[0], c, in, in_pool, out, out_pool);
    mp_piecev va = {0}, vb = {0};
    mp_sb pa, pb;
    mp_sb_init(&pa);
    mp_sb_init(&pb);
    mp_status st = mp_tpretok_apply(p->kids[0], c, in, in_pool, &va, &pa);
    for (size_t k = 1; st == MP_OK && k < p->n_kids; k++) {
      int last = k + 1 == p->n_kids;
      st = mp_tpretok_apply(p->kids[k], c, &va, &pa, last ? out : &vb, last ? out_pool : &pb);
      if (!last) {
        mp_piecev tv = va;
        va = vb;
        vb = tv;
        mp_sb ts = pa;
        pa = pb;
        pb = ts;
      }
    }
    free(va.v);
    free(vb.v);
    mp_sb_free(&pa);
    mp_sb_free(&pb);
    return st;
  }
  for (size_t i = 0; i < in->n; i++) {
    mp_piece x = in->v[i];
    if (x.added_id >= 0) {
      size_t off = out_pool->len;
      mp_sb_append(out_pool, (in_pool->buf ? in_pool->buf : "") + x.off, x.len);
      if (out_pool->oom) return mp_err(MP_ERR_NOMEM, "out of memory (pre-tokenizer)");
      x.off = (uint32_t)off;
      MP_TRY(mp_piecev_push(out, x));
      continue;
    }
    MP_TRY(pretok_one(p, c, (in_pool->buf ? in_pool->buf : "") + x.off, x.len, x.first, out, out_pool));
  }
  return MP_OK;
}

void mp_tpretok_free(mp_tpretok *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n_kids; i++)
    mp_tpretok_free(p->kids[i]);
  free(p->kids);
  mp_tregex_free(&p->re);
  free(p);
}

static mp_status parse_behavior(const mp_json *j, const char *what, mp_split_behavior dflt, mp_split_behavior *out) {
  const char *b = mp_json_get_str(j, "behavior", NULL);
  if (!b) {
    *out = dflt;
    return MP_OK;
  }
  if (!strcmp(b, "Removed"))
    *out = MP_B_REMOVED;
  else if (!strcmp(b, "Isolated"))
    *out = MP_B_ISOLATED;
  else if (!strcmp(b, "MergedWithPrevious"))
    *out = MP_B_MERGED_PREV;
  else if (!strcmp(b, "MergedWithNext"))
    *out = MP_B_MERGED_NEXT;
  else if (!strcmp(b, "Contiguous"))
    *out = MP_B_CONTIGUOUS;
  else
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: unknown split behavior '%s'", what, j->line, j->col, b);
  return MP_OK;
}

mp_status mp_tpretok_from_json(const mp_json *j, const char *what, mp_tpretok **out) {
  *out = NULL;
  if (!j || j->type == MP_JSON_NULL) return MP_OK;
  if (j->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: pre_tokenizer must be an object", what, j->line, j->col);
  mp_tpretok *p = calloc(1, sizeof *p);
  if (!p) return mp_err(MP_ERR_NOMEM, "out of memory");
  const char *t = jtype(j);
  mp_status st = MP_OK;
  if (!strcmp(t, "BertPreTokenizer"))
    p->type = MP_P_BERT;
  else if (!strcmp(t, "WhitespaceSplit"))
    p->type = MP_P_WHITESPACE_SPLIT;
  else if (!strcmp(t, "Whitespace")) {
    p->type = MP_P_WHITESPACE;
    st = mp_tregex_compile(&p->re, WS_RE, strlen(WS_RE), 0, what);
  } else if (!strcmp(t, "ByteLevel")) {
    p->type = MP_P_BYTELEVEL;
    p->add_prefix_space = json_bool_or_null(j, "add_prefix_space", 1);
    p->use_regex = json_bool_or_null(j, "use_regex", 1);
    st = mp_tregex_compile(&p->re, GPT2_RE, strlen(GPT2_RE), 0, what);
  } else if (!strcmp(t, "Metaspace")) {
    p->type = MP_P_METASPACE;
    const char *r = mp_json_get_str(j, "replacement", "\xE2\x96\x81");
    size_t rl = strlen(r);
    uint32_t cp = 0;
    if (rl == 0 || rl > 4 || !mp_utf8_valid(r, rl) || (size_t)mp_u8_dec((const unsigned char *)r, rl, &cp) != rl)
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: Metaspace replacement must be one character", what, j->line, j->col);
    else {
      memcpy(p->replacement, r, rl);
      p->replacement_len = rl;
      p->replacement_cp = cp;
    }
    p->split = json_bool_or_null(j, "split", 1);
    const char *ps = mp_json_get_str(j, "prepend_scheme", NULL);
    if (ps) {
      if (!strcmp(ps, "always"))
        p->prepend = MP_PREPEND_ALWAYS;
      else if (!strcmp(ps, "first"))
        p->prepend = MP_PREPEND_FIRST;
      else if (!strcmp(ps, "never"))
        p->prepend = MP_PREPEND_NEVER;
      else
        st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: unknown prepend_scheme '%s'", what, j->line, j->col, ps);
    } else {
      p->prepend = json_bool_or_null(j, "add_prefix_space", 1) ? MP_PREPEND_ALWAYS : MP_PREPEND_NEVER;
    }
  } else if (!strcmp(t, "Punctuation")) {
    p->type = MP_P_PUNCT;
    st = parse_behavior(j, what, MP_B_ISOLATED, &p->behavior);
  } else if (!strcmp(t, "Digits")) {
    p->type = MP_P_DIGITS;
    p->individual_digits = json_bool_or_null(j, "individual_digits", 0);
  } else if (!strcmp(t, "CharDelimiterSplit")) {
    p->type = MP_P_CHARDELIM;
    const char *d = mp_json_get_str(j, "delimiter", "");
    size_t dl = strlen(d);
    if (dl == 0 || dl > 4 || !mp_utf8_valid(d, dl))
      st = mp_err(MP_ERR_FORMAT, "%s: CharDelimiterSplit delimiter must be one character", what);
    else
      mp_u8_dec((const unsigned char *)d, dl, &p->delim);
  } else if (!strcmp(t, "Split")) {
    p->type = MP_P_SPLIT;
    st = parse_behavior(j, what, MP_B_REMOVED, &p->behavior);
    p->invert = json_bool_or_null(j, "invert", 0);
    if (st == MP_OK) st = parse_pattern(mp_json_get(j, "pattern"), what, &p->re);
  } else if (!strcmp(t, "Sequence")) {
    p->type = MP_P_SEQ;
    const mp_json *arr = mp_json_get(j, "pretokenizers");
    if (!arr || arr->type != MP_JSON_ARRAY)
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: Sequence pre-tokenizer needs 'pretokenizers'", what, j->line, j->col);
    else {
      p->kids = calloc(arr->len ? arr->len : 1, sizeof *p->kids);
      if (!p->kids) st = mp_err(MP_ERR_NOMEM, "out of memory");
      for (size_t i = 0; st == MP_OK && i < arr->len; i++) {
        st = mp_tpretok_from_json(arr->items[i], what, &p->kids[p->n_kids]);
        if (st == MP_OK && p->kids[p->n_kids]) p->n_kids++;
      }
    }
  } else {
    st = mp_err(MP_ERR_UNSUPPORTED, "%s:%u:%u: pre_tokenizer type '%s' is not supported", what, j->line, j->col, t);
  }
  if (st != MP_OK) {
    mp_tpretok_free(p);
    return st;
  }
  *out = p;
  return MP_OK;
}
