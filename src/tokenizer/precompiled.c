/* SentencePiece precompiled_charsmap normalizer: see precompiled.h for the format and the two
 * matching disciplines (HF grapheme/shortest-key vs SentencePiece longest-key). */
#include "tokenizer/precompiled.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"

struct mp_precompiled {
  uint32_t *units; /* darts-clone double array */
  size_t n_units;
  char *pool; /* replacement strings, NUL separated (pool[pool_len] = 0 added) */
  size_t pool_len;
  /* Fast path for a lone ASCII character (its own grapheme cluster): -2 = not computed / no
   * match, else the pool offset of its replacement; ascii_len[b] its length. */
  int32_t ascii_off[128];
  uint32_t ascii_len[128];
};

/* ---- darts-clone unit accessors ---------------------------------------------------------- */
static inline int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline size_t unit_offset(uint32_t u) { return (size_t)(u >> 10) << ((u & (1u << 9)) >> 6); }

/* Common-prefix search over key[0..n) (stops at a NUL byte, as spm_precompiled does).
 * shortest = 1: stops at the first key found (HF); else keeps the longest (SentencePiece).
 * Returns 1 when a key matched (value, length set), else 0. */
static int trie_search(const mp_precompiled *p, const uint8_t *key, size_t n, int shortest, uint32_t *value,
                       size_t *length) {
  if (p->n_units == 0) return 0;
  size_t pos = unit_offset(p->units[0]);
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = key[i];
    if (c == 0) break;
    pos ^= c;
    if (pos >= p->n_units) break;
    uint32_t u = p->units[pos];
    if (unit_label(u) != c) break;
    pos ^= unit_offset(u);
    if (unit_has_leaf(u)) {
      if (pos >= p->n_units) break;
      *value = unit_value(p->units[pos]);
      *length = i + 1;
      found = 1;
      if (shortest) return 1;
    }
  }
  return found;
}

/* Replacement string at pool offset v (up to the next NUL). -1 when v is outside the pool or
 * not at a character boundary (HF would panic there; we report a malformed blob). */
static int pool_string(const mp_precompiled *p, uint32_t v, const char **s, size_t *len) {
  if (v > p->pool_len || (v < p->pool_len && ((uint8_t)p->pool[v] & 0xC0) == 0x80)) {
    mp_err(MP_ERR_FORMAT,
           "precompiled_charsmap: trie value %u points outside the replacement pool (%zu bytes) "
           "or inside a character; the charsmap is corrupt",
           v, p->pool_len);
    return -1;
  }
  *s = p->pool + v;
  *len = strlen(p->pool + v); /* pool is NUL-terminated at pool_len */
  return 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

mp_status mp_precompiled_load(const uint8_t *blob, size_t n, const char *what, mp_precompiled **out) {
  *out = NULL;
  if (!what) what = "charsmap";
  if (!blob || n < 4)
    return mp_err(MP_ERR_FORMAT, "%s: precompiled_charsmap is %zu bytes, too short for its 4-byte header", what, n);
  uint32_t trie_size = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
  if (trie_size > n - 4)
    return mp_err(MP_ERR_FORMAT, "%s: precompiled_charsmap says its trie has %u bytes but only %zu follow the header",
                  what, trie_size, n - 4);
  if (trie_size % 4 != 0)
    return mp_err(MP_ERR_FORMAT, "%s: precompiled_charsmap trie size %u is not a multiple of 4", what, trie_size);
  size_t pool_len = n - 4 - trie_size;
  size_t bad = mp_utf8_invalid_at((const char *)blob + 4 + trie_size, pool_len);
  if (bad != (size_t)-1)
    return mp_err(MP_ERR_FORMAT, "%s: precompiled_charsmap replacement pool is not valid UTF-8 (byte %zu of the blob)",
                  what, 4 + trie_size + bad);
  mp_precompiled *p = calloc(1, sizeof *p);
  if (!p) return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  p->n_units = trie_size / 4;
  p->units = malloc(p->n_units ? p->n_units * 4 : 1);
  p->pool = malloc(pool_len + 1);
  if (!p->units || !p->pool) {
    mp_precompiled_free(p);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory for a %zu-byte charsmap", what, n);
  }
  for (size_t i = 0; i < p->n_units; i++) {
    const uint8_t *b = blob + 4 + 4 * i;
    p->units[i] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  }
  memcpy(p->pool, blob + 4 + trie_size, pool_len);
  p->pool[pool_len] = 0;
  p->pool_len = pool_len;
  for (int b = 0; b < 128; b++) {
    p->ascii_off[b] = -2;
    p->ascii_len[b] = 0;
    uint8_t key = (uint8_t)b;
    uint32_t v;
    size_t l;
    if (b != 0 && trie_search(p, &key, 1, 1, &v, &l)) {
      const char *s;
      size_t sl;
      if (pool_string(p, v, &s, &sl) == 0) {
        p->ascii_off[b] = (int32_t)v;
        p->ascii_len[b] = (uint32_t)sl;
      } else {
        p->ascii_off[b] = -3; /* corrupt: reported when used */
      }
    }
  }
  mp_err_clear();
  *out = p;
  return MP_OK;
}

void mp_precompiled_free(mp_precompiled *p) {
  if (!p) return;
  free(p->units);
  free(p->pool);
  free(p);
}

size_t mp_precompiled_trie_units(const mp_precompiled *p) { return p ? p->n_units : 0; }
size_t mp_precompiled_pool_size(const mp_precompiled *p) { return p ? p->pool_len : 0; }

/* ---- base64 --------------------------------------------------------------------------------- */

static int b64_val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

mp_status mp_base64_decode(const char *b64, size_t n, const char *what, uint8_t **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (!what) what = "base64";
  size_t m = n;
  while (m > 0 && b64[m - 1] == '=' && n - m < 2)
    m--;
  if (m % 4 == 1) return mp_err(MP_ERR_FORMAT, "%s: base64 text has an impossible length (%zu characters)", what, n);
  uint8_t *buf = malloc(m / 4 * 3 + 3);
  if (!buf) return mp_err(MP_ERR_NOMEM, "%s: out of memory decoding %zu base64 characters", what, n);
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < m; i++) {
    int v = b64_val((unsigned char)b64[i]);
    if (v < 0) {
      free(buf);
      return mp_err(MP_ERR_FORMAT, "%s: invalid base64 character 0x%02x at offset %zu", what, (unsigned char)b64[i], i);
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  *out = buf;
  *out_len = o;
  return MP_OK;
}

void mp_base64_encode(mp_sb *sb, const uint8_t *d, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char q[4];
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    q[0] = tab[v >> 18], q[1] = tab[(v >> 12) & 63], q[2] = tab[(v >> 6) & 63], q[3] = tab[v & 63];
    mp_sb_append(sb, q, 4);
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)d[i] << 16;
    q[0] = tab[v >> 18], q[1] = tab[(v >> 12) & 63], q[2] = '=', q[3] = '=';
    mp_sb_append(sb, q, 4);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
    q[0] = tab[v >> 18], q[1] = tab[(v >> 12) & 63], q[2] = tab[(v >> 6) & 63], q[3] = '=';
    mp_sb_append(sb, q, 4);
  }
}

mp_status mp_precompiled_load_base64(const char *b64, size_t n, const char *what, mp_precompiled **out) {
  *out = NULL;
  uint8_t *blob;
  size_t len;
  MP_TRY(mp_base64_decode(b64, n, what ? what : "precompiled_charsmap", &blob, &len));
  mp_status s = mp_precompiled_load(blob, len, what, out);
  free(blob);
  return s;
}

/* ---- normalization -------------------------------------------------------------------------- */

/* Decodes one character; invalid bytes count as one-byte characters (code point -1). */
static inline size_t next_char(const uint8_t *s, size_t n, int32_t *cp) {
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  utf8proc_int32_t c;
  utf8proc_ssize_t l = utf8proc_iterate(s, (utf8proc_ssize_t)n, &c);
  if (l <= 0) {
    *cp = -1;
    return 1;
  }
  *cp = c;
  return (size_t)l;
}

static void emit(mp_sb *out, mp_sb *align, const char *s, size_t len, size_t src) {
  mp_sb_append(out, s, len);
  if (align) {
    uint32_t a = (uint32_t)src;
    for (size_t i = 0; i < len; i++)
      mp_sb_append(align, &a, sizeof a);
  }
}

mp_status mp_precompiled_normalize(const mp_precompiled *p, const char *in, size_t n, mp_sb *out, mp_sb *align) {
  const uint8_t *s = (const uint8_t *)in;
  size_t pos = 0;
  while (pos < n) {
    /* Fast path: an ASCII character followed by ASCII (or the end) is its own cluster, except
     * CR LF which is one cluster (GB3). */
    uint8_t b = s[pos];
    if (b < 0x80 && (pos + 1 == n || (s[pos + 1] < 0x80 && !(b == '\r' && s[pos + 1] == '\n')))) {
      int32_t off = p->ascii_off[b];
      if (off == -2 || b == 0)
        emit(out, align, (const char *)s + pos, 1, pos);
      else if (off >= 0)
        emit(out, align, p->pool + off, p->ascii_len[b], pos);
      else {
        const char *r;
        size_t rl;
        uint32_t v = 0;
        size_t l;
        trie_search(p, &b, 1, 1, &v, &l);
        if (pool_string(p, v, &r, &rl) < 0) return MP_ERR_FORMAT;
      }
      pos++;
      continue;
    }
    /* Extended grapheme cluster [pos, end). */
    int32_t prev;
    size_t end = pos + next_char(s + pos, n - pos, &prev);
    utf8proc_int32_t state = 0;
    while (end < n) {
      int32_t c;
      size_t l = next_char(s + end, n - end, &c);
      if (prev < 0 || c < 0 || utf8proc_grapheme_break_stateful(prev, c, &state)) break;
      prev = c;
      end += l;
    }
    size_t glen = end - pos;
    uint32_t v;
    size_t ml;
    const char *r;
    size_t rl;
    if (glen < 6 && trie_search(p, s + pos, glen, 1, &v, &ml)) {
      if (pool_string(p, v, &r, &rl) < 0) return MP_ERR_FORMAT;
      emit(out, align, r, rl, pos);
    } else {
      size_t q = pos;
      while (q < end) {
        int32_t c;
        size_t l = next_char(s + q, end - q, &c);
        if (trie_search(p, s + q, l, 1, &v, &ml)) {
          if (pool_string(p, v, &r, &rl) < 0) return MP_ERR_FORMAT;
          emit(out, align, r, rl, q);
        } else {
          emit(out, align, (const char *)s + q, l, q);
        }
        q += l;
      }
    }
    pos = end;
  }
  if (out->oom || (align && align->oom))
    return mp_err(MP_ERR_NOMEM, "precompiled normalizer: out of memory for %zu bytes of text", n);
  return MP_OK;
}

int mp_precompiled_prefix(const mp_precompiled *p, const char *in, size_t n, size_t *consumed, const char **rep,
                          size_t *rep_len) {
  uint32_t v;
  size_t l;
  if (!trie_search(p, (const uint8_t *)in, n, 0, &v, &l)) return 0;
  if (pool_string(p, v, rep, rep_len) < 0) return -1;
  *consumed = l;
  return 1;
}

mp_status mp_precompiled_from_json(const mp_json *obj, const char *what, mp_precompiled **out) {
  *out = NULL;
  if (!what) what = "tokenizer.json";
  const mp_json *cm = mp_json_get(obj, "precompiled_charsmap");
  if (!cm || cm->type != MP_JSON_STRING)
    return mp_err(MP_ERR_FORMAT, "%s:%u:%u: Precompiled normalizer needs a base64 string \"precompiled_charsmap\"",
                  what, obj ? obj->line : 0, obj ? obj->col : 0);
  char w[600];
  snprintf(w, sizeof w, "%s:%u:%u: precompiled_charsmap", what, cm->line, cm->col);
  return mp_precompiled_load_base64(cm->str, cm->len, w, out);
}
