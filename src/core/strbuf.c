/* Growable byte strings (mp_sb) and JSON string/number writing (see strbuf.h). */
#include "core/strbuf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

void mp_sb_init(mp_sb *sb) { memset(sb, 0, sizeof *sb); }
void mp_sb_free(mp_sb *sb) {
  free(sb->buf);
  memset(sb, 0, sizeof *sb);
}
void mp_sb_clear(mp_sb *sb) {
  sb->len = 0;
  if (sb->buf) sb->buf[0] = 0;
}

static int sb_grow(mp_sb *sb, size_t extra) {
  if (sb->oom) return 0;
  if (extra > SIZE_MAX / 2 - sb->len) {
    sb->oom = 1;
    return 0;
  }
  size_t need = sb->len + extra + 1;
  if (need <= sb->cap) return 1;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < need)
    cap *= 2;
  char *nb = realloc(sb->buf, cap);
  if (!nb) {
    sb->oom = 1;
    return 0;
  }
  sb->buf = nb;
  sb->cap = cap;
  return 1;
}

void mp_sb_append(mp_sb *sb, const void *data, size_t n) {
  if (!sb_grow(sb, n)) return;
  if (n) memcpy(sb->buf + sb->len, data, n);
  sb->len += n;
  sb->buf[sb->len] = 0;
}
void mp_sb_puts(mp_sb *sb, const char *s) { mp_sb_append(sb, s, strlen(s)); }
void mp_sb_putc(mp_sb *sb, char c) { mp_sb_append(sb, &c, 1); }

void mp_sb_vprintf(mp_sb *sb, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0 || !sb_grow(sb, (size_t)n)) return;
  vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
  sb->len += (size_t)n;
}
void mp_sb_printf(mp_sb *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  mp_sb_vprintf(sb, fmt, ap);
  va_end(ap);
}

void mp_sb_json_str(mp_sb *sb, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  mp_sb_putc(sb, '"');
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      size_t j = i;
      while (j < n && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\')
        j++;
      mp_sb_append(sb, s + i, j - i);
      i = j;
      continue;
    }
    switch (c) {
    case '"':
      mp_sb_puts(sb, "\\\"");
      i++;
      continue;
    case '\\':
      mp_sb_puts(sb, "\\\\");
      i++;
      continue;
    case '\n':
      mp_sb_puts(sb, "\\n");
      i++;
      continue;
    case '\r':
      mp_sb_puts(sb, "\\r");
      i++;
      continue;
    case '\t':
      mp_sb_puts(sb, "\\t");
      i++;
      continue;
    default: break;
    }
    if (c < 0x20) {
      mp_sb_printf(sb, "\\u%04x", c);
      i++;
      continue;
    }
    size_t l = mp_utf8_seq_len(s + i, n - i);
    if (l == 0) {
      mp_sb_puts(sb, "\xEF\xBF\xBD");
      i++;
    } else {
      mp_sb_append(sb, s + i, l);
      i += l;
    }
  }
  mp_sb_putc(sb, '"');
}

void mp_sb_json_f32(mp_sb *sb, float v) {
  if (!isfinite(v)) {
    mp_sb_puts(sb, "null");
    return;
  }
  mp_sb_printf(sb, "%.9g", (double)v);
}
void mp_sb_json_f64(mp_sb *sb, double v) {
  if (!isfinite(v)) {
    mp_sb_puts(sb, "null");
    return;
  }
  mp_sb_printf(sb, "%.17g", v);
}

char *mp_sb_steal(mp_sb *sb) {
  char *b = sb->buf;
  if (!b) b = calloc(1, 1);
  memset(sb, 0, sizeof *sb);
  return b;
}
