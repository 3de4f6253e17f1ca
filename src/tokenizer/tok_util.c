/* UTF-8, Unicode properties (utf8proc), hash maps and PCRE2 regexes for the tokenizer. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

/* ---- UTF-8 ------------------------------------------------------------------------------ */

void mp_u8_put(mp_sb *sb, uint32_t cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  mp_sb_append(sb, b, n);
}

int mp_u8_sanitize(const char *s, size_t n, mp_sb *out) {
  mp_sb_clear(out);
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run = 0;
  int replaced = 0;
  while (i < n) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    int k = mp_utf8_check(u + i, n - i);
    if (k > 0) {
      i += (size_t)k;
      continue;
    }
    mp_sb_append(out, s + run, i - run);
    mp_sb_append(out, "\xEF\xBF\xBD", 3);
    i += (size_t)(-k);
    run = i;
    replaced = 1;
  }
  mp_sb_append(out, s + run, n - run);
  return replaced;
}

/* ---- Unicode properties ------------------------------------------------------------------ */

int mp_uc_is_whitespace(uint32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return 0;
  switch (c) {
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000: return 1;
  default: return c >= 0x2000 && c <= 0x200A;
  }
}

int mp_uc_is_bert_ws(uint32_t c) { return c == '\t' || c == '\n' || c == '\r' || mp_uc_is_whitespace(c); }

int mp_uc_is_other(uint32_t c) {
  if (c < 0x20) return 1;
  if (c < 0x7F) return 0;
  if (c >= 0xD800 && c <= 0xDFFF) return 1;
  utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
  /* HF's unicode_categories::is_other has no table for Cn: unassigned code points are kept */
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
         k == UTF8PROC_CATEGORY_CS;
}

int mp_uc_is_control_bert(uint32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return 0;
  return mp_uc_is_other(c);
}

int mp_uc_is_punct(uint32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

int mp_uc_is_mn(uint32_t c) {
  if (c < 0x300) return 0;
  return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN;
}

int mp_uc_is_numeric(uint32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

int mp_uc_is_word(uint32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (c == 0x200C || c == 0x200D) return 1;
  utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
  switch (k) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
  case UTF8PROC_CATEGORY_MN:
  case UTF8PROC_CATEGORY_MC:
  case UTF8PROC_CATEGORY_ME:
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_PC: return 1;
  default: return 0;
  }
}

int mp_uc_is_chinese(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void mp_uc_lower_put(mp_sb *out, uint32_t c) {
  if (c < 0x80) {
    mp_sb_putc(out, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  if (c == 0x130) { /* SpecialCasing: İ -> i + combining dot above */
    mp_sb_append(out, "i\xCC\x87", 3);
    return;
  }
  mp_u8_put(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)c));
}

/* ---- hash maps --------------------------------------------------------------------------- */

uint32_t mp_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9E3779B97F4A7C15ull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, n);
  h = (h ^ w) * 0x100000001b3ull;
  h ^= h >> 32;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return (uint32_t)h;
}

void mp_strmap_init(mp_strmap *m) {
  memset(m, 0, sizeof *m);
  mp_arena_init(&m->arena, 1 << 16);
}

void mp_strmap_free(mp_strmap *m) {
  if (!m) return;
  free(m->slots);
  free(m->keys);
  free(m->klen);
  free(m->khash);
  free(m->vals);
  mp_arena_free(&m->arena);
  memset(m, 0, sizeof *m);
}

static int32_t strmap_find(const mp_strmap *m, const char *k, size_t n, uint32_t h, size_t *slot) {
  size_t mask = m->cap - 1, i = h & mask;
  for (;;) {
    uint32_t e = m->slots[i];
    if (!e) {
      *slot = i;
      return -1;
    }
    e--;
    if (m->khash[e] == h && m->klen[e] == n && memcmp(m->keys[e], k, n) == 0) {
      *slot = i;
      return (int32_t)e;
    }
    i = (i + 1) & mask;
  }
}

mp_status mp_strmap_put(mp_strmap *m, const char *k, size_t n, int32_t v) {
  if (n > UINT32_MAX) return mp_err(MP_ERR_NOMEM, "token of %zu bytes is too long", n);
  if ((m->n + 1) * 2 > m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    uint32_t *ns = calloc(nc, sizeof *ns);
    if (!ns) return mp_err(MP_ERR_NOMEM, "out of memory (vocabulary map)");
    for (size_t e = 0; e < m->n; e++) {
      size_t i = m->khash[e] & (nc - 1);
      while (ns[i])
        i = (i + 1) & (nc - 1);
      ns[i] = (uint32_t)e + 1;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = nc;
  }
  uint32_t h = mp_hash_bytes(k, n);
  size_t slot;
  int32_t e = strmap_find(m, k, n, h, &slot);
  if (e >= 0) {
    m->vals[e] = v;
    return MP_OK;
  }
  if (m->n == m->ecap) {
    size_t nc = m->ecap ? m->ecap * 2 : 64;
    const char **nk = realloc(m->keys, nc * sizeof *nk);
    if (nk) m->keys = nk;
    uint32_t *nl = realloc(m->klen, nc * sizeof *nl);
    if (nl) m->klen = nl;
    uint32_t *nh = realloc(m->khash, nc * sizeof *nh);
    if (nh) m->khash = nh;
    int32_t *nv = realloc(m->vals, nc * sizeof *nv);
    if (nv) m->vals = nv;
    if (!nk || !nl || !nh || !nv) return mp_err(MP_ERR_NOMEM, "out of memory (vocabulary map)");
    m->ecap = nc;
  }
  char *copy = mp_arena_strndup(&m->arena, k, n);
  if (!copy) return mp_err(MP_ERR_NOMEM, "out of memory (vocabulary map)");
  m->keys[m->n] = copy;
  m->klen[m->n] = (uint32_t)n;
  m->khash[m->n] = h;
  m->vals[m->n] = v;
  m->slots[slot] = (uint32_t)m->n + 1;
  m->n++;
  return MP_OK;
}

int32_t mp_strmap_get(const mp_strmap *m, const char *k, size_t n) {
  if (!m->cap) return -1;
  size_t slot;
  int32_t e = strmap_find(m, k, n, mp_hash_bytes(k, n), &slot);
  return e < 0 ? -1 : m->vals[e];
}

mp_status mp_pairmap_put(mp_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id) {
  if ((m->n + 1) * 2 > m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 1024;
    uint64_t *nk = malloc(nc * sizeof *nk);
    int32_t *nr = malloc(nc * sizeof *nr), *ni = malloc(nc * sizeof *ni);
    if (!nk || !nr || !ni) {
      free(nk);
      free(nr);
      free(ni);
      return mp_err(MP_ERR_NOMEM, "out of memory (merges map)");
    }
    memset(nk, 0xFF, nc * sizeof *nk);
    for (size_t i = 0; i < m->cap; i++) {
      if (m->keys[i] == UINT64_MAX) continue;
      size_t j = (size_t)((m->keys[i] * 0x9E3779B97F4A7C15ull) >> 32) & (nc - 1);
      while (nk[j] != UINT64_MAX)
        j = (j + 1) & (nc - 1);
      nk[j] = m->keys[i];
      nr[j] = m->rank[i];
      ni[j] = m->id[i];
    }
    free(m->keys);
    free(m->rank);
    free(m->id);
    m->keys = nk;
    m->rank = nr;
    m->id = ni;
    m->cap = nc;
  }
  uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  size_t mask = m->cap - 1, i = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & mask;
  while (m->keys[i] != UINT64_MAX && m->keys[i] != k)
    i = (i + 1) & mask;
  if (m->keys[i] == k) { /* HF collects into a HashMap: a later duplicate overwrites */
    m->rank[i] = rank;
    m->id[i] = id;
    return MP_OK;
  }
  m->keys[i] = k;
  m->rank[i] = rank;
  m->id[i] = id;
  m->n++;
  return MP_OK;
}

void mp_pairmap_free(mp_pairmap *m) {
  free(m->keys);
  free(m->rank);
  free(m->id);
  memset(m, 0, sizeof *m);
}

/* ---- regexes ------------------------------------------------------------------------------ */

mp_status mp_tregex_compile(mp_tregex *re, const char *pat, size_t n, int literal, const char *what) {
  memset(re, 0, sizeof *re);
  mp_sb p;
  mp_sb_init(&p);
  if (literal) {
    for (size_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)pat[i];
      if (ch < 0x80 && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))) {
        if (ch == 0)
          mp_sb_puts(&p, "\\x{0}");
        else if (ch < 0x20 || ch == 0x7F)
          mp_sb_printf(&p, "\\x{%x}", ch);
        else {
          mp_sb_putc(&p, '\\');
          mp_sb_putc(&p, (char)ch);
        }
      } else {
        mp_sb_putc(&p, (char)ch);
      }
    }
  } else {
    /* \s in Oniguruma/Rust also matches U+0085 (White_Space); PCRE2 10.42's \s does not. */
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
      char ch = pat[i];
      if (ch == '\\' && i + 1 < n) {
        char d = pat[i + 1];
        if (d == 's')
          mp_sb_puts(&p, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]");
        else if (d == 'S' && !in_class)
          mp_sb_puts(&p, "[^\\s\\x{85}]");
        else {
          mp_sb_putc(&p, ch);
          mp_sb_putc(&p, d);
        }
        i++;
        continue;
      }
      if (ch == '[') {
        if (in_class)
          in_class++;
        else {
          in_class = 1;
          mp_sb_putc(&p, ch);
          /* a ']' right after '[' or '[^' is literal */
          if (i + 1 < n && pat[i + 1] == '^') mp_sb_putc(&p, pat[++i]);
          if (i + 1 < n && pat[i + 1] == ']') mp_sb_putc(&p, pat[++i]);
          continue;
        }
      } else if (ch == ']' && in_class) {
        in_class--;
      }
      mp_sb_putc(&p, ch);
    }
  }
  if (p.oom) {
    mp_sb_free(&p);
    return mp_err(MP_ERR_NOMEM, "out of memory compiling a regex");
  }
  int errcode;
  PCRE2_SIZE erroff;
  re->code =
      pcre2_compile((PCRE2_SPTR)p.buf, p.len, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &errcode, &erroff, NULL);
  if (!re->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(errcode, msg, sizeof msg);
    mp_status s = mp_err(MP_ERR_UNSUPPORTED, "%s: regex '%.*s' cannot be compiled (PCRE2: %s at offset %zu)", what,
                         (int)(n > 200 ? 200 : n), pat, (const char *)msg, (size_t)erroff);
    mp_sb_free(&p);
    return s;
  }
  mp_sb_free(&p);
  pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
  re->literal = literal;
  return MP_OK;
}

void mp_tregex_free(mp_tregex *re) {
  if (re && re->code) pcre2_code_free(re->code);
  if (re) re->code = NULL;
}

mp_status mp_tregex_find(const mp_tregex *re, mp_tok_ctx *c, const char *s, size_t n, mp_spanv *out) {
  out->n = 0;
  if (n == 0) return mp_spanv_push(out, 0, 0, 0);
  if (!c->md) {
    c->md = pcre2_match_data_create(32, NULL);
    if (!c->md) return mp_err(MP_ERR_NOMEM, "out of memory (regex match data)");
  }
  size_t prev = 0, pos = 0;
  while (pos <= n) {
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, c->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, c->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      return mp_err(MP_ERR_UNSUPPORTED, "regex match failed: %s", (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    size_t ms = ov[0], me = ov[1];
    if (me < ms) me = ms;
    if (prev != ms) MP_TRY(mp_spanv_push(out, (uint32_t)prev, (uint32_t)ms, 0));
    MP_TRY(mp_spanv_push(out, (uint32_t)ms, (uint32_t)me, 1));
    prev = me;
    if (me == ms) {
      if (me >= n) break;
      pos = me + (size_t)mp_u8_len((unsigned char)s[me]);
    } else {
      pos = me;
    }
  }
  if (prev != n) MP_TRY(mp_spanv_push(out, (uint32_t)prev, (uint32_t)n, 0));
  return MP_OK;
}

/* ---- small vectors and the per-call context --------------------------------------------- */

#define VEC_PUSH(v, x, what)                                                                                           \
  do {                                                                                                                 \
    if ((v)->n == (v)->cap) {                                                                                          \
      size_t nc_ = (v)->cap ? (v)->cap * 2 : 64;                                                                       \
      void *nv_ = realloc((v)->v, nc_ * sizeof *(v)->v);                                                               \
      if (!nv_) return mp_err(MP_ERR_NOMEM, "out of memory (%s)", what);                                               \
      (v)->v = nv_;                                                                                                    \
      (v)->cap = nc_;                                                                                                  \
    }                                                                                                                  \
    (v)->v[(v)->n++] = (x);                                                                                            \
  } while (0)

mp_status mp_i32v_push(mp_i32v *v, int32_t x) {
  VEC_PUSH(v, x, "token ids");
  return MP_OK;
}
mp_status mp_piecev_push(mp_piecev *v, mp_piece p) {
  VEC_PUSH(v, p, "text pieces");
  return MP_OK;
}
mp_status mp_spanv_push(mp_spanv *v, uint32_t s, uint32_t e, int match) {
  mp_span sp = {s, e, match};
  VEC_PUSH(v, sp, "text spans");
  return MP_OK;
}

void mp_tok_ctx_init(mp_tok_ctx *c) {
  memset(c, 0, sizeof *c);
  mp_sb_init(&c->text);
  mp_sb_init(&c->norm);
  mp_sb_init(&c->t1);
  mp_sb_init(&c->t2);
  mp_sb_init(&c->t3);
  mp_sb_init(&c->pool_a);
  mp_sb_init(&c->pool_b);
  mp_sb_init(&c->wbuf);
}

void mp_tok_ctx_free(mp_tok_ctx *c) {
  if (!c) return;
  mp_sb_free(&c->text);
  mp_sb_free(&c->norm);
  mp_sb_free(&c->t1);
  mp_sb_free(&c->t2);
  mp_sb_free(&c->t3);
  mp_sb_free(&c->pool_a);
  mp_sb_free(&c->pool_b);
  mp_sb_free(&c->wbuf);
  free(c->pa.v);
  free(c->pb.v);
  free(c->pc.v);
  free(c->spans.v);
  free(c->spans2.v);
  free(c->ids.v);
  if (c->md) pcre2_match_data_free(c->md);
  free(c->sym_id);
  free(c->sym_prev);
  free(c->sym_next);
  free(c->sym_len);
  free(c->heap);
  mp_glue_scratch_free(c->uni_scratch);
  memset(c, 0, sizeof *c);
}
