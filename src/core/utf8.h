/* The one UTF-8 validator of the project: well-formed means RFC 3629 / Unicode table 3-7 (no
 * overlong forms, no surrogates, nothing above U+10FFFF). Every reader that checks or repairs
 * UTF-8 (JSON, datasets, tokenizer files, JSON writing) goes through these. */
#ifndef MP_CORE_UTF8_H
#define MP_CORE_UTF8_H
#include <stddef.h>

/* The sequence at s[0..n) (n >= 1): its length 1..4 when well-formed, else -k where k >= 1 is the
 * length of its maximal ill-formed subpart (Unicode's "maximal subpart" rule: what Python's
 * bytes.decode("utf-8", "replace") turns into one U+FFFD). Inline: it runs per character in the
 * JSON parser and the tokenizer. */
static inline int mp_utf8_check(const void *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  unsigned c = s[0];
  if (c < 0x80) return 1;
  int need;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF)
    need = 1;
  else if (c == 0xE0) {
    need = 2;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
    need = 2;
  else if (c == 0xED) {
    need = 2;
    hi = 0x9F;
  } else if (c == 0xF0) {
    need = 3;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3)
    need = 3;
  else if (c == 0xF4) {
    need = 3;
    hi = 0x8F;
  } else
    return -1;
  for (int k = 1; k <= need; k++) {
    if ((size_t)k >= n) return -k;
    unsigned d = s[k];
    unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (d < l || d > h) return -k;
  }
  return need + 1;
}

/* Length (1..4) of the well-formed sequence at s[0..n) (n >= 1), or 0 when it is ill-formed. */
static inline size_t mp_utf8_seq_len(const void *s, size_t n) {
  int k = mp_utf8_check(s, n);
  return k > 0 ? (size_t)k : 0;
}

/* Byte offset of the first ill-formed sequence of s[0..n), or (size_t)-1 when all is valid. */
size_t mp_utf8_invalid_at(const char *s, size_t n);
/* 1 when s[0..n) is valid UTF-8. */
int mp_utf8_valid(const char *s, size_t n);
#endif
