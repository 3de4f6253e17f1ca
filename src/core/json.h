/* Strict JSON (RFC 8259) parser into an arena-allocated DOM, with line:column errors. */
#ifndef MP_CORE_JSON_H
#define MP_CORE_JSON_H
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/strbuf.h"
#include "mlxport.h"

typedef enum { MP_JSON_NULL, MP_JSON_BOOL, MP_JSON_NUMBER, MP_JSON_STRING, MP_JSON_ARRAY, MP_JSON_OBJECT } mp_json_type;

typedef struct mp_json mp_json;
struct mp_json {
  mp_json_type type;
  int is_int;         /* NUMBER written without fraction/exponent and fits int64 */
  int boolean;        /* BOOL */
  int64_t i;          /* NUMBER when is_int */
  double num;         /* NUMBER */
  const char *str;    /* STRING (NUL-terminated; may contain NULs, see len) */
  size_t len;         /* STRING byte length; ARRAY/OBJECT element count */
  mp_json **items;    /* ARRAY elements or OBJECT values */
  const char **keys;  /* OBJECT keys (NUL-terminated) */
  size_t *key_lens;   /* OBJECT key byte lengths */
  uint32_t line, col; /* position of the value in the source (1-based) */
};

/* Parses text[0..n). `what` names the source in error messages (e.g. a file path).
 * max_depth bounds nesting (0 = default 256). The DOM lives in `arena`. */
mp_status mp_json_parse(const char *text, size_t n, const char *what, mp_arena *arena, mp_json **out);
/* Reads and parses a whole file. */
mp_status mp_json_parse_file(const char *path, mp_arena *arena, mp_json **out);

/* Object member lookup (linear; NULL if absent or obj is not an object). */
const mp_json *mp_json_get(const mp_json *obj, const char *key);
/* Convenience getters with defaults (type mismatch -> default). */
const char *mp_json_get_str(const mp_json *obj, const char *key, const char *dflt);
int64_t mp_json_get_int(const mp_json *obj, const char *key, int64_t dflt);
double mp_json_get_num(const mp_json *obj, const char *key, double dflt);
int mp_json_get_bool(const mp_json *obj, const char *key, int dflt);
const char *mp_json_type_name(mp_json_type t);
/* Structural equality of two DOM nodes (positions ignored). */
int mp_json_equal(const mp_json *a, const mp_json *b);
/* Writes a DOM back as compact JSON text (", " and ": " separators). */
void mp_json_write(mp_sb *sb, const mp_json *v);
#endif
