/* One row's values -> one example, for every reader: field-name candidates, label mapping
 * (aliases, names, indices; "no gold label" rows dropped), scores, UTF-8 validated texts copied
 * into the dataset's arena. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "eval/dataset_internal.h"

/* Splits "a|b|c" candidates; returns the number written (max 8). */
size_t mp_ds_split_alts(const char *spec, const char *out[8], size_t lens[8]) {
  size_t n = 0;
  const char *p = spec;
  while (p && n < 8) {
    const char *bar = strchr(p, '|');
    out[n] = p;
    lens[n] = bar ? (size_t)(bar - p) : strlen(p);
    n++;
    p = bar ? bar + 1 : NULL;
  }
  return n;
}

int mp_ds_name_eq(const char *a, size_t alen, const char *b, size_t blen) {
  return alen == blen && memcmp(a, b, alen) == 0;
}

static int parse_int_str(const char *s, size_t len, int64_t *out) {
  size_t i = 0;
  int neg = 0;
  if (len == 0) return 0;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == len) return 0;
  int64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    if (v > (INT64_MAX - 9) / 10) return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = neg ? -v : v;
  return 1;
}

/* returns 1 = label index in *idx, 0 = drop (no gold), -1 = error set */
static int map_label(mp_ds_loader *L, const mp_ds_val *v, uint32_t line, const char *where, int *idx) {
  const mp_dataset_def *d = &L->d;
  if (v->kind == MP_DSV_NULL) return 0;
  char num[32];
  const char *s = v->s;
  size_t len = v->len;
  if (v->kind == MP_DSV_INT) {
    snprintf(num, sizeof num, "%lld", (long long)v->i);
    s = num;
    len = strlen(num);
  } else if (v->kind == MP_DSV_BOOL) {
    s = v->i ? "true" : "false";
    len = strlen(s);
  } else if (v->kind == MP_DSV_NUM) {
    if (v->d == floor(v->d) && fabs(v->d) < 1e15) {
      snprintf(num, sizeof num, "%lld", (long long)v->d);
      s = num;
      len = strlen(num);
    } else {
      snprintf(num, sizeof num, "%g", v->d);
      s = num;
      len = strlen(num);
    }
  }
  for (size_t i = 0; i < d->n_aliases; i++)
    if (mp_ds_name_eq(s, len, d->aliases[i].value, strlen(d->aliases[i].value))) {
      if (d->aliases[i].index < 0) return 0;
      if ((size_t)d->aliases[i].index >= L->ds->n_labels) break;
      *idx = d->aliases[i].index;
      return 1;
    }
  for (size_t i = 0; i < L->ds->n_labels; i++)
    if (mp_ds_name_eq(s, len, L->ds->labels[i], strlen(L->ds->labels[i]))) {
      *idx = (int)i;
      return 1;
    }
  int64_t k;
  if (d->numeric_labels != 0 && parse_int_str(s, len, &k)) {
    if (k < 0) return 0;
    if ((uint64_t)k < L->ds->n_labels) {
      *idx = (int)k;
      return 1;
    }
  }
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < L->ds->n_labels; i++)
    mp_sb_printf(&sb, "%s%s", i ? ", " : "", L->ds->labels[i]);
  for (size_t i = 0; i < d->n_aliases; i++)
    mp_sb_printf(&sb, ", %s", d->aliases[i].value);
  mp_err(MP_ERR_FORMAT,
         "%s:%u: %s: unknown label value '%.*s' (known: %s%s); fix the row or declare the value in the "
         "dataset's label names/aliases",
         L->file, line, where, (int)(len > 80 ? 80 : len), s, sb.buf ? sb.buf : "",
         d->numeric_labels != 0 ? ", or an index 0..n-1" : "");
  mp_sb_free(&sb);
  return -1;
}

static mp_status map_score(mp_ds_loader *L, const mp_ds_val *v, uint32_t line, const char *where, double *out) {
  if (v->kind == MP_DSV_INT) {
    *out = (double)v->i;
    return MP_OK;
  }
  if (v->kind == MP_DSV_NUM) {
    *out = v->d;
    if (!isfinite(*out)) return mp_err(MP_ERR_FORMAT, "%s:%u: %s: score is not finite", L->file, line, where);
    return MP_OK;
  }
  if (v->kind == MP_DSV_STR && v->len > 0 && v->len < 64) {
    char buf[64];
    memcpy(buf, v->s, v->len);
    buf[v->len] = 0;
    char *end;
    errno = 0;
    double x = strtod(buf, &end);
    while (*end == ' ')
      end++;
    if (end != buf && !*end && errno == 0 && isfinite(x) && buf[0] != ' ') {
      *out = x;
      return MP_OK;
    }
  }
  return mp_err(MP_ERR_FORMAT, "%s:%u: %s: score '%.*s' is not a number; fix the row or pick the right score column",
                L->file, line, where, (int)(v->kind == MP_DSV_STR ? (v->len > 40 ? 40 : v->len) : 4),
                v->kind == MP_DSV_STR ? v->s : "null");
}

static mp_status text_value(mp_ds_loader *L, const mp_ds_val *v, uint32_t line, const char *where, const char **out) {
  if (v->kind != MP_DSV_STR)
    return mp_err(MP_ERR_FORMAT, "%s:%u: %s: expected text, found %s; check the text field names", L->file, line, where,
                  v->kind == MP_DSV_NULL   ? "null"
                  : v->kind == MP_DSV_BOOL ? "a boolean"
                  : v->kind == MP_DSV_NONE ? "nothing"
                                           : "a number");
  size_t bad = mp_utf8_invalid_at(v->s, v->len);
  if (bad != (size_t)-1)
    return mp_err(MP_ERR_FORMAT,
                  "%s:%u: %s: invalid UTF-8 at byte %zu of the field (0x%02x); re-encode the file as UTF-8 "
                  "(e.g. iconv -f latin1 -t utf-8)",
                  L->file, line, where, bad, (unsigned char)v->s[bad]);
  if (memchr(v->s, 0, v->len))
    return mp_err(MP_ERR_FORMAT, "%s:%u: %s: text contains a NUL byte; fix the file", L->file, line, where);
  char *c = mp_arena_strndup(&L->ds->arena, v->s, v->len);
  if (!c) return mp_err(MP_ERR_NOMEM, "%s: out of memory", L->file);
  *out = c;
  return MP_OK;
}

mp_status mp_ds_push_example(mp_ds_loader *L, const mp_ds_val *a, const mp_ds_val *b, const mp_ds_val *lab,
                             const mp_ds_val *sc, uint32_t line, const char *where_a, const char *where_b,
                             const char *where_l, const char *where_s) {
  mp_example e;
  memset(&e, 0, sizeof e);
  e.label = -1;
  e.score = NAN;
  e.line = line;
  if (L->need_label) {
    int idx = -1;
    int r = map_label(L, lab, line, where_l, &idx);
    if (r < 0) return MP_ERR_FORMAT;
    if (r == 0) {
      L->ds->n_dropped++;
      return MP_OK;
    }
    e.label = idx;
  }
  if (L->need_score) MP_TRY(map_score(L, sc, line, where_s, &e.score));
  MP_TRY(text_value(L, a, line, where_a, &e.text_a));
  if (L->need_b) MP_TRY(text_value(L, b, line, where_b, &e.text_b));
  mp_dataset *ds = L->ds;
  if (ds->n >= UINT32_MAX) return mp_err(MP_ERR_UNSUPPORTED, "%s: more than 2^32 examples", L->file);
  if (ds->n == L->cap) {
    size_t nc = L->cap ? L->cap * 2 : 1024;
    mp_example *nx = realloc(ds->ex, nc * sizeof *nx);
    if (!nx) return mp_err(MP_ERR_NOMEM, "%s: out of memory (%zu examples)", L->file, ds->n);
    ds->ex = nx;
    L->cap = nc;
  }
  e.index = (uint32_t)ds->n;
  ds->ex[ds->n++] = e;
  return MP_OK;
}
