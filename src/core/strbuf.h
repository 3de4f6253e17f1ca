/* Growable byte string. All functions keep the buffer NUL-terminated; on OOM the buffer is
 * marked failed (sb->oom) and further appends are ignored, so callers check once at the end. */
#ifndef MP_CORE_STRBUF_H
#define MP_CORE_STRBUF_H
#include <stdarg.h>
#include <stddef.h>

#include "core/error.h"

typedef struct mp_sb {
  char *buf;
  size_t len, cap;
  int oom;
} mp_sb;

void mp_sb_init(mp_sb *sb);
void mp_sb_free(mp_sb *sb);
void mp_sb_clear(mp_sb *sb);
void mp_sb_append(mp_sb *sb, const void *data, size_t n);
void mp_sb_puts(mp_sb *sb, const char *s);
void mp_sb_putc(mp_sb *sb, char c);
void mp_sb_printf(mp_sb *sb, const char *fmt, ...) MP_PRINTF(2, 3);
void mp_sb_vprintf(mp_sb *sb, const char *fmt, va_list ap);
/* JSON string literal with quotes; invalid UTF-8 bytes become U+FFFD. */
void mp_sb_json_str(mp_sb *sb, const char *s, size_t n);
/* JSON number: shortest round-trip for a float32 (%.9g) or double (%.17g); NaN/Inf -> null. */
void mp_sb_json_f32(mp_sb *sb, float v);
void mp_sb_json_f64(mp_sb *sb, double v);
/* Takes ownership of the buffer (caller frees); the sb is reset. */
char *mp_sb_steal(mp_sb *sb);
#endif
