/* Strict JSON (RFC 8259) parser into an arena-allocated DOM with line:column errors, and DOM
 * lookups (see json.h). */
#include "core/json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "core/utf8.h"

typedef struct {
  const char *s, *end, *what;
  const char *line_start;
  uint32_t line;
  mp_arena *arena;
  int depth, max_depth;
} jp;

static mp_status jerr(jp *p, const char *at, const char *msg) {
  /* compute column from line_start (p->line tracks newlines consumed before `at`) */
  uint32_t col = (uint32_t)(at - p->line_start) + 1;
  return mp_err(MP_ERR_FORMAT, "%s:%u:%u: invalid JSON: %s", p->what, p->line, col, msg);
}

static void skip_ws(jp *p) {
  while (p->s < p->end) {
    char c = *p->s;
    if (c == '\n') {
      p->line++;
      p->s++;
      p->line_start = p->s;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      p->s++;
    } else {
      break;
    }
  }
}

static mp_json *new_node(jp *p, mp_json_type t) {
  mp_json *j = mp_arena_alloc(p->arena, sizeof *j);
  if (!j) return NULL;
  j->type = t;
  j->line = p->line;
  j->col = (uint32_t)(p->s - p->line_start) + 1;
  return j;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_hex4(const char *s, const char *end, unsigned *out) {
  if (end - s < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(s[i]);
    if (h < 0) return 0;
    v = v * 16 + (unsigned)h;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Parses a string starting at the opening quote. */
static mp_status parse_string(jp *p, const char **out, size_t *out_len) {
  const char *start = p->s;
  p->s++; /* quote */
  /* first pass: find the end and whether escapes exist */
  const char *q = p->s;
  int has_esc = 0;
  while (q < p->end && *q != '"') {
    if (*q == '\\') {
      has_esc = 1;
      q++;
      if (q >= p->end) break;
    }
    q++;
  }
  if (q >= p->end) return jerr(p, start, "unterminated string");
  size_t raw = (size_t)(q - p->s);
  char *o = mp_arena_alloc(p->arena, raw + 1);
  if (!o) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
  size_t n = 0;
  const char *s = p->s;
  while (s < q) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20) return jerr(p, s, "control character in string (must be escaped)");
    if (c == '\\') {
      s++;
      char e = *s++;
      switch (e) {
      case '"': o[n++] = '"'; break;
      case '\\': o[n++] = '\\'; break;
      case '/': o[n++] = '/'; break;
      case 'b': o[n++] = '\b'; break;
      case 'f': o[n++] = '\f'; break;
      case 'n': o[n++] = '\n'; break;
      case 'r': o[n++] = '\r'; break;
      case 't': o[n++] = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!read_hex4(s, q, &cp)) return jerr(p, s - 2, "bad \\u escape");
        s += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (q - s >= 6 && s[0] == '\\' && s[1] == 'u' && read_hex4(s + 2, q, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            s += 6;
          } else {
            cp = 0xFFFD; /* lone high surrogate */
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD; /* lone low surrogate */
        }
        n += put_utf8(o + n, cp); /* escape is >= 6 bytes, output <= 4: fits */
        break;
      }
      default: return jerr(p, s - 2, "unknown escape sequence");
      }
      continue;
    }
    if (c < 0x80) {
      o[n++] = (char)c;
      s++;
      continue;
    }
    size_t l = mp_utf8_seq_len(s, (size_t)(q - s));
    if (!l) return jerr(p, s, "invalid UTF-8 in string");
    memcpy(o + n, s, l);
    n += l;
    s += l;
  }
  (void)has_esc;
  o[n] = 0;
  *out = o;
  *out_len = n;
  p->s = q + 1;
  return MP_OK;
}

static mp_status parse_value(jp *p, mp_json **out);

static mp_status parse_number(jp *p, mp_json *j) {
  const char *s = p->s, *start = s;
  int is_int = 1;
  if (s < p->end && *s == '-') s++;
  if (s >= p->end) return jerr(p, start, "bad number");
  if (*s == '0') {
    s++;
  } else if (*s >= '1' && *s <= '9') {
    while (s < p->end && *s >= '0' && *s <= '9')
      s++;
  } else {
    return jerr(p, start, "bad number");
  }
  if (s < p->end && *s == '.') {
    is_int = 0;
    s++;
    if (s >= p->end || !(*s >= '0' && *s <= '9')) return jerr(p, start, "bad number (digit expected after '.')");
    while (s < p->end && *s >= '0' && *s <= '9')
      s++;
  }
  if (s < p->end && (*s == 'e' || *s == 'E')) {
    is_int = 0;
    s++;
    if (s < p->end && (*s == '+' || *s == '-')) s++;
    if (s >= p->end || !(*s >= '0' && *s <= '9')) return jerr(p, start, "bad number (digit expected in exponent)");
    while (s < p->end && *s >= '0' && *s <= '9')
      s++;
  }
  char buf[512];
  size_t len = (size_t)(s - start);
  char *tmp = len < sizeof buf ? buf : mp_arena_alloc(p->arena, len + 1);
  if (!tmp) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
  memcpy(tmp, start, len);
  tmp[len] = 0;
  j->num = strtod(tmp, NULL);
  if (is_int) {
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == 0) {
      j->is_int = 1;
      j->i = v;
    }
  }
  p->s = s;
  return MP_OK;
}

static mp_status parse_value(jp *p, mp_json **out) {
  skip_ws(p);
  if (p->s >= p->end) return jerr(p, p->s, "unexpected end of input");
  mp_json *j = NULL;
  char c = *p->s;
  mp_status st;
  if (c == '{' || c == '[') {
    if (++p->depth > p->max_depth) return jerr(p, p->s, "nesting too deep");
    int is_obj = c == '{';
    j = new_node(p, is_obj ? MP_JSON_OBJECT : MP_JSON_ARRAY);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    p->s++;
    size_t cap = 0, n = 0;
    mp_json **items = NULL;
    const char **keys = NULL;
    size_t *klens = NULL;
    skip_ws(p);
    if (p->s < p->end && *p->s == (is_obj ? '}' : ']')) {
      p->s++;
    } else {
      for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        if (is_obj) {
          skip_ws(p);
          if (p->s >= p->end || *p->s != '"') return jerr(p, p->s, "object key (string) expected");
          if ((st = parse_string(p, &key, &klen))) return st;
          skip_ws(p);
          if (p->s >= p->end || *p->s != ':') return jerr(p, p->s, "':' expected after object key");
          p->s++;
        }
        mp_json *v;
        if ((st = parse_value(p, &v))) return st;
        if (n == cap) {
          size_t nc = cap ? cap * 2 : 8;
          mp_json **ni = mp_arena_alloc(p->arena, nc * sizeof *ni);
          const char **nk = is_obj ? mp_arena_alloc(p->arena, nc * sizeof *nk) : NULL;
          size_t *nl = is_obj ? mp_arena_alloc(p->arena, nc * sizeof *nl) : NULL;
          if (!ni || (is_obj && (!nk || !nl))) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
          if (n) {
            memcpy(ni, items, n * sizeof *ni);
            if (is_obj) {
              memcpy(nk, keys, n * sizeof *nk);
              memcpy(nl, klens, n * sizeof *nl);
            }
          }
          items = ni, keys = nk, klens = nl, cap = nc;
        }
        items[n] = v;
        if (is_obj) keys[n] = key, klens[n] = klen;
        n++;
        skip_ws(p);
        if (p->s >= p->end) return jerr(p, p->s, is_obj ? "unterminated object" : "unterminated array");
        if (*p->s == ',') {
          p->s++;
          continue;
        }
        if (*p->s == (is_obj ? '}' : ']')) {
          p->s++;
          break;
        }
        return jerr(p, p->s, is_obj ? "',' or '}' expected" : "',' or ']' expected");
      }
    }
    j->items = items;
    j->keys = keys;
    j->key_lens = klens;
    j->len = n;
    p->depth--;
  } else if (c == '"') {
    j = new_node(p, MP_JSON_STRING);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    if ((st = parse_string(p, &j->str, &j->len))) return st;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    j = new_node(p, MP_JSON_NUMBER);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    if ((st = parse_number(p, j))) return st;
  } else if (p->end - p->s >= 4 && memcmp(p->s, "true", 4) == 0) {
    j = new_node(p, MP_JSON_BOOL);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    j->boolean = 1;
    p->s += 4;
  } else if (p->end - p->s >= 5 && memcmp(p->s, "false", 5) == 0) {
    j = new_node(p, MP_JSON_BOOL);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    p->s += 5;
  } else if (p->end - p->s >= 4 && memcmp(p->s, "null", 4) == 0) {
    j = new_node(p, MP_JSON_NULL);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    p->s += 4;
  } else if (p->end - p->s >= 3 && (memcmp(p->s, "NaN", 3) == 0 || memcmp(p->s, "Inf", 3) == 0)) {
    /* Python's json writes NaN/Infinity; accept them as numbers (config files do this). */
    j = new_node(p, MP_JSON_NUMBER);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    if (memcmp(p->s, "NaN", 3) == 0)
      j->num = NAN, p->s += 3;
    else if (p->end - p->s >= 8 && memcmp(p->s, "Infinity", 8) == 0)
      j->num = INFINITY, p->s += 8;
    else
      return jerr(p, p->s, "unexpected character");
  } else if (p->end - p->s >= 9 && memcmp(p->s, "-Infinity", 9) == 0) {
    j = new_node(p, MP_JSON_NUMBER);
    if (!j) return mp_err(MP_ERR_NOMEM, "%s: out of memory parsing JSON", p->what);
    j->num = -INFINITY;
    p->s += 9;
  } else {
    return jerr(p, p->s, "unexpected character");
  }
  *out = j;
  return MP_OK;
}

mp_status mp_json_parse(const char *text, size_t n, const char *what, mp_arena *arena, mp_json **out) {
  jp p = {.s = text,
          .end = text + n,
          .what = what ? what : "<json>",
          .line_start = text,
          .line = 1,
          .arena = arena,
          .max_depth = 256};
  *out = NULL;
  /* tolerate a UTF-8 BOM */
  if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.s += 3, p.line_start = p.s;
  mp_json *root;
  mp_status st = parse_value(&p, &root);
  if (st) return st;
  skip_ws(&p);
  if (p.s != p.end) return jerr(&p, p.s, "trailing characters after the JSON value");
  *out = root;
  return MP_OK;
}

mp_status mp_json_parse_file(const char *path, mp_arena *arena, mp_json **out) {
  char *buf;
  size_t n;
  MP_TRY(mp_read_file(path, &buf, &n, (size_t)1 << 31));
  mp_status st = mp_json_parse(buf, n, path, arena, out);
  free(buf);
  return st;
}

const mp_json *mp_json_get(const mp_json *obj, const char *key) {
  if (!obj || obj->type != MP_JSON_OBJECT) return NULL;
  size_t kl = strlen(key);
  for (size_t i = 0; i < obj->len; i++)
    if (obj->key_lens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return obj->items[i];
  return NULL;
}

const char *mp_json_get_str(const mp_json *obj, const char *key, const char *dflt) {
  const mp_json *v = mp_json_get(obj, key);
  return v && v->type == MP_JSON_STRING ? v->str : dflt;
}
int64_t mp_json_get_int(const mp_json *obj, const char *key, int64_t dflt) {
  const mp_json *v = mp_json_get(obj, key);
  return v && v->type == MP_JSON_NUMBER && v->is_int ? v->i : dflt;
}
double mp_json_get_num(const mp_json *obj, const char *key, double dflt) {
  const mp_json *v = mp_json_get(obj, key);
  return v && v->type == MP_JSON_NUMBER ? v->num : dflt;
}
int mp_json_get_bool(const mp_json *obj, const char *key, int dflt) {
  const mp_json *v = mp_json_get(obj, key);
  return v && v->type == MP_JSON_BOOL ? v->boolean : dflt;
}
const char *mp_json_type_name(mp_json_type t) {
  static const char *n[] = {"null", "boolean", "number", "string", "array", "object"};
  return (unsigned)t < 6 ? n[t] : "?";
}

int mp_json_equal(const mp_json *a, const mp_json *b) {
  if (a == b) return 1;
  if (!a || !b || a->type != b->type) return 0;
  switch (a->type) {
  case MP_JSON_NULL: return 1;
  case MP_JSON_BOOL: return a->boolean == b->boolean;
  case MP_JSON_NUMBER: return a->num == b->num;
  case MP_JSON_STRING: return a->len == b->len && !memcmp(a->str, b->str, a->len);
  case MP_JSON_ARRAY:
    if (a->len != b->len) return 0;
    for (size_t i = 0; i < a->len; i++)
      if (!mp_json_equal(a->items[i], b->items[i])) return 0;
    return 1;
  case MP_JSON_OBJECT:
    if (a->len != b->len) return 0;
    for (size_t i = 0; i < a->len; i++) {
      const mp_json *o = mp_json_get(b, a->keys[i]);
      if (!o || !mp_json_equal(a->items[i], o)) return 0;
    }
    return 1;
  }
  return 0;
}

void mp_json_write(mp_sb *sb, const mp_json *v) {
  if (!v) {
    mp_sb_puts(sb, "null");
    return;
  }
  switch (v->type) {
  case MP_JSON_NULL: mp_sb_puts(sb, "null"); break;
  case MP_JSON_BOOL: mp_sb_puts(sb, v->boolean ? "true" : "false"); break;
  case MP_JSON_NUMBER:
    if (v->is_int)
      mp_sb_printf(sb, "%lld", (long long)v->i);
    else
      mp_sb_json_f64(sb, v->num);
    break;
  case MP_JSON_STRING: mp_sb_json_str(sb, v->str, v->len); break;
  case MP_JSON_ARRAY:
    mp_sb_putc(sb, '[');
    for (size_t i = 0; i < v->len; i++) {
      if (i) mp_sb_puts(sb, ", ");
      mp_json_write(sb, v->items[i]);
    }
    mp_sb_putc(sb, ']');
    break;
  case MP_JSON_OBJECT:
    mp_sb_putc(sb, '{');
    for (size_t i = 0; i < v->len; i++) {
      if (i) mp_sb_puts(sb, ", ");
      mp_sb_json_str(sb, v->keys[i], v->key_lens[i]);
      mp_sb_puts(sb, ": ");
      mp_json_write(sb, v->items[i]);
    }
    mp_sb_putc(sb, '}');
    break;
  }
}
