/* YAML files (libyaml) into the JSON DOM with line:column per node, YAML 1.2 core-schema
 * scalars, anchors, merge keys (see yaml.h). */
#include "core/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/error.h"
#include "core/fs.h"

typedef struct anchor {
  const char *name;
  mp_json *node;
  struct anchor *next;
} anchor;

typedef struct {
  yaml_parser_t p;
  const char *what;
  mp_arena *arena;
  anchor *anchors;
  int depth;
} yp;

static mp_status perr(yp *y) {
  return mp_err(MP_ERR_FORMAT, "%s:%zu:%zu: invalid YAML: %s%s%s", y->what, y->p.problem_mark.line + 1,
                y->p.problem_mark.column + 1, y->p.problem ? y->p.problem : "parse error", y->p.context ? " " : "",
                y->p.context ? y->p.context : "");
}

static mp_json *node(yp *y, mp_json_type t, yaml_mark_t mk) {
  mp_json *j = mp_arena_alloc(y->arena, sizeof *j);
  if (!j) return NULL;
  j->type = t;
  j->line = (uint32_t)mk.line + 1;
  j->col = (uint32_t)mk.column + 1;
  return j;
}

static int is_int_str(const char *s) {
  if (*s == '+' || *s == '-') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

/* YAML 1.2 core schema resolution of a plain scalar */
static void type_plain(mp_json *j, const char *s, size_t len) {
  if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) {
    j->type = MP_JSON_NULL;
    return;
  }
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
    j->type = MP_JSON_BOOL, j->boolean = 1;
    return;
  }
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
    j->type = MP_JSON_BOOL, j->boolean = 0;
    return;
  }
  if (is_int_str(s)) {
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (!errno) {
      j->type = MP_JSON_NUMBER, j->is_int = 1, j->i = v, j->num = (double)v;
      return;
    }
  }
  char *end;
  if ((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || s[0] == '.') {
    double d = strtod(s, &end);
    if (*end == 0 && end != s) {
      j->type = MP_JSON_NUMBER, j->num = d;
      return;
    }
    if (!strcasecmp(s, ".inf") || !strcasecmp(s, "+.inf")) {
      j->type = MP_JSON_NUMBER, j->num = INFINITY;
      return;
    }
    if (!strcasecmp(s, "-.inf")) {
      j->type = MP_JSON_NUMBER, j->num = -INFINITY;
      return;
    }
    if (!strcasecmp(s, ".nan")) {
      j->type = MP_JSON_NUMBER, j->num = NAN;
      return;
    }
  }
  j->type = MP_JSON_STRING;
}

static mp_status parse_node(yp *y, yaml_event_t *ev, mp_json **out);

static mp_status add_anchor(yp *y, const yaml_char_t *name, mp_json *j) {
  if (!name) return MP_OK;
  anchor *a = mp_arena_alloc(y->arena, sizeof *a);
  if (!a) return mp_err(MP_ERR_NOMEM, "out of memory");
  a->name = mp_arena_strdup(y->arena, (const char *)name);
  a->node = j;
  a->next = y->anchors;
  y->anchors = a;
  return MP_OK;
}

static mp_status next_event(yp *y, yaml_event_t *ev) {
  if (!yaml_parser_parse(&y->p, ev)) return perr(y);
  return MP_OK;
}

typedef struct {
  mp_json **items;
  const char **keys;
  size_t *klens;
  size_t n, cap;
} vec;

static mp_status vec_push(yp *y, vec *v, const char *key, size_t klen, mp_json *item, int with_keys) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 8;
    mp_json **ni = mp_arena_alloc(y->arena, nc * sizeof *ni);
    const char **nk = with_keys ? mp_arena_alloc(y->arena, nc * sizeof *nk) : NULL;
    size_t *nl = with_keys ? mp_arena_alloc(y->arena, nc * sizeof *nl) : NULL;
    if (!ni || (with_keys && (!nk || !nl))) return mp_err(MP_ERR_NOMEM, "out of memory");
    if (v->n) {
      memcpy(ni, v->items, v->n * sizeof *ni);
      if (with_keys) memcpy(nk, v->keys, v->n * sizeof *nk), memcpy(nl, v->klens, v->n * sizeof *nl);
    }
    v->items = ni, v->keys = nk, v->klens = nl, v->cap = nc;
  }
  v->items[v->n] = item;
  if (with_keys) v->keys[v->n] = key, v->klens[v->n] = klen;
  v->n++;
  return MP_OK;
}

static mp_status map_set(yp *y, vec *v, const char *key, size_t klen, mp_json *val, const mp_json *keynode,
                         int merging) {
  for (size_t i = 0; i < v->n; i++)
    if (v->klens[i] == klen && !memcmp(v->keys[i], key, klen)) {
      if (merging) return MP_OK; /* explicit keys win over merged ones */
      return mp_err(MP_ERR_FORMAT, "%s:%u:%u: duplicate key \"%s\" in this mapping", y->what, keynode->line,
                    keynode->col, key);
    }
  return vec_push(y, v, key, klen, val, 1);
}

static mp_status parse_node(yp *y, yaml_event_t *ev, mp_json **out) {
  mp_status st;
  if (++y->depth > 200) return mp_err(MP_ERR_FORMAT, "%s:%zu: YAML nesting too deep", y->what, ev->start_mark.line + 1);
  switch (ev->type) {
  case YAML_ALIAS_EVENT: {
    for (anchor *a = y->anchors; a; a = a->next)
      if (!strcmp(a->name, (const char *)ev->data.alias.anchor)) {
        *out = a->node;
        y->depth--;
        return MP_OK;
      }
    return mp_err(MP_ERR_FORMAT, "%s:%zu:%zu: unknown alias *%s", y->what, ev->start_mark.line + 1,
                  ev->start_mark.column + 1, ev->data.alias.anchor);
  }
  case YAML_SCALAR_EVENT: {
    mp_json *j = node(y, MP_JSON_STRING, ev->start_mark);
    if (!j) return mp_err(MP_ERR_NOMEM, "out of memory");
    j->str = mp_arena_strndup(y->arena, (const char *)ev->data.scalar.value, ev->data.scalar.length);
    j->len = ev->data.scalar.length;
    if (!j->str) return mp_err(MP_ERR_NOMEM, "out of memory");
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag) type_plain(j, j->str, j->len);
    if ((st = add_anchor(y, ev->data.scalar.anchor, j))) return st;
    *out = j;
    break;
  }
  case YAML_SEQUENCE_START_EVENT: {
    mp_json *j = node(y, MP_JSON_ARRAY, ev->start_mark);
    if (!j) return mp_err(MP_ERR_NOMEM, "out of memory");
    if ((st = add_anchor(y, ev->data.sequence_start.anchor, j))) return st;
    vec v = {0};
    for (;;) {
      yaml_event_t e;
      if ((st = next_event(y, &e))) return st;
      if (e.type == YAML_SEQUENCE_END_EVENT) {
        yaml_event_delete(&e);
        break;
      }
      mp_json *item;
      st = parse_node(y, &e, &item);
      yaml_event_delete(&e);
      if (st || (st = vec_push(y, &v, NULL, 0, item, 0))) return st;
    }
    j->items = v.items, j->len = v.n;
    *out = j;
    break;
  }
  case YAML_MAPPING_START_EVENT: {
    mp_json *j = node(y, MP_JSON_OBJECT, ev->start_mark);
    if (!j) return mp_err(MP_ERR_NOMEM, "out of memory");
    if ((st = add_anchor(y, ev->data.mapping_start.anchor, j))) return st;
    vec v = {0};
    mp_json *merges[16];
    int nmerge = 0;
    for (;;) {
      yaml_event_t e;
      if ((st = next_event(y, &e))) return st;
      if (e.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&e);
        break;
      }
      mp_json *k, *val;
      st = parse_node(y, &e, &k);
      yaml_event_delete(&e);
      if (st) return st;
      if (k->type == MP_JSON_OBJECT || k->type == MP_JSON_ARRAY)
        return mp_err(MP_ERR_FORMAT, "%s:%u:%u: mapping keys must be scalars", y->what, k->line, k->col);
      if ((st = next_event(y, &e))) return st;
      st = parse_node(y, &e, &val);
      yaml_event_delete(&e);
      if (st) return st;
      const char *ks = k->str ? k->str : "";
      if (!strcmp(ks, "<<") && k->type == MP_JSON_STRING) {
        if (val->type == MP_JSON_OBJECT && nmerge < 16)
          merges[nmerge++] = val;
        else if (val->type == MP_JSON_ARRAY)
          for (size_t i = 0; i < val->len && nmerge < 16; i++)
            merges[nmerge++] = val->items[i];
        continue;
      }
      if ((st = map_set(y, &v, ks, k->len, val, k, 0))) return st;
    }
    for (int mi = 0; mi < nmerge; mi++) {
      const mp_json *mm = merges[mi];
      if (mm->type != MP_JSON_OBJECT)
        return mp_err(MP_ERR_FORMAT, "%s:%u:%u: merge key value must be a mapping", y->what, mm->line, mm->col);
      for (size_t i = 0; i < mm->len; i++)
        if ((st = map_set(y, &v, mm->keys[i], mm->key_lens[i], mm->items[i], mm, 1))) return st;
    }
    j->items = v.items, j->keys = v.keys, j->key_lens = v.klens, j->len = v.n;
    *out = j;
    break;
  }
  default:
    return mp_err(MP_ERR_FORMAT, "%s:%zu:%zu: unexpected YAML event", y->what, ev->start_mark.line + 1,
                  ev->start_mark.column + 1);
  }
  y->depth--;
  return MP_OK;
}

mp_status mp_yaml_parse(const char *text, size_t n, const char *what, mp_arena *arena, mp_json **out) {
  *out = NULL;
  yp y = {.what = what ? what : "<yaml>", .arena = arena};
  if (!yaml_parser_initialize(&y.p)) return mp_err(MP_ERR_NOMEM, "out of memory (YAML parser)");
  yaml_parser_set_input_string(&y.p, (const unsigned char *)text, n);
  mp_status st = MP_OK;
  yaml_event_t e;
  int docs = 0;
  mp_json *root = NULL;
  for (;;) {
    if ((st = next_event(&y, &e))) break;
    yaml_event_type_t t = e.type;
    if (t == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&e);
      break;
    }
    if (t == YAML_DOCUMENT_START_EVENT) {
      if (++docs > 1) {
        st = mp_err(MP_ERR_FORMAT, "%s:%zu: only one YAML document per file is supported", y.what,
                    e.start_mark.line + 1);
        yaml_event_delete(&e);
        break;
      }
      yaml_event_delete(&e);
      if ((st = next_event(&y, &e))) break;
      if (e.type == YAML_DOCUMENT_END_EVENT) {
        yaml_event_delete(&e);
        continue;
      }
      st = parse_node(&y, &e, &root);
      yaml_event_delete(&e);
      if (st) break;
      continue;
    }
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&y.p);
  if (st) return st;
  if (!root) {
    root = mp_arena_alloc(arena, sizeof *root);
    if (!root) return mp_err(MP_ERR_NOMEM, "out of memory");
    root->type = MP_JSON_NULL;
    root->line = 1, root->col = 1;
  }
  *out = root;
  return MP_OK;
}

mp_status mp_yaml_parse_file(const char *path, mp_arena *arena, mp_json **out) {
  char *buf;
  size_t n;
  MP_TRY(mp_read_file(path, &buf, &n, (size_t)64 << 20));
  mp_status st = mp_yaml_parse(buf, n, path, arena, out);
  free(buf);
  return st;
}
