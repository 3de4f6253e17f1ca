/* Whole-buffer UTF-8 validation over mp_utf8_check (see utf8.h). */
#include "core/utf8.h"

size_t mp_utf8_invalid_at(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    int k = mp_utf8_check(s + i, n - i);
    if (k < 0) return i;
    i += (size_t)k;
  }
  return (size_t)-1;
}

int mp_utf8_valid(const char *s, size_t n) { return mp_utf8_invalid_at(s, n) == (size_t)-1; }
