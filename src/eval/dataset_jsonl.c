/* The JSON Lines dataset reader: one JSON object per line, fields by key (first candidate
 * present), errors naming file:line:column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/json.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "eval/dataset_internal.h"

static const mp_json *json_field(const mp_json *obj, const char *spec, const char **which, size_t *wlen) {
  const char *alt[8];
  size_t lens[8];
  size_t na = mp_ds_split_alts(spec, alt, lens);
  for (size_t a = 0; a < na; a++)
    for (size_t i = 0; i < obj->len; i++)
      if (mp_ds_name_eq(obj->keys[i], obj->key_lens[i], alt[a], lens[a])) {
        *which = alt[a];
        *wlen = lens[a];
        return obj->items[i];
      }
  return NULL;
}

static mp_ds_val json_val(const mp_json *j) {
  mp_ds_val v = {MP_DSV_NONE, NULL, 0, 0, 0};
  switch (j->type) {
  case MP_JSON_NULL: v.kind = MP_DSV_NULL; break;
  case MP_JSON_BOOL:
    v.kind = MP_DSV_BOOL;
    v.i = j->boolean;
    break;
  case MP_JSON_NUMBER:
    if (j->is_int) {
      v.kind = MP_DSV_INT;
      v.i = j->i;
    } else {
      v.kind = MP_DSV_NUM;
      v.d = j->num;
    }
    break;
  case MP_JSON_STRING:
    v.kind = MP_DSV_STR;
    v.s = j->str;
    v.len = j->len;
    break;
  default: v.kind = MP_DSV_NONE; break;
  }
  return v;
}

mp_status mp_ds_read_jsonl(mp_ds_loader *L, const char *buf, size_t n) {
  const mp_dataset_def *d = &L->d;
  size_t pos = 0;
  if (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
    pos = 3;
  uint32_t line = 0;
  mp_arena scratch;
  mp_arena_init(&scratch, 1 << 16);
  mp_status st = MP_OK;
  size_t rows = 0;
  while (pos < n) {
    line++;
    const char *ls = buf + pos;
    const char *nl = memchr(ls, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - ls) : n - pos;
    pos += len + (nl ? 1 : 0);
    size_t t = len;
    while (t && (ls[t - 1] == '\r' || ls[t - 1] == ' ' || ls[t - 1] == '\t'))
      t--;
    size_t h = 0;
    while (h < t && (ls[h] == ' ' || ls[h] == '\t'))
      h++;
    if (h == t) {
      size_t q = pos;
      while (q < n && (buf[q] == '\n' || buf[q] == '\r' || buf[q] == ' ' || buf[q] == '\t'))
        q++;
      if (q >= n) break;
      st = mp_err(MP_ERR_FORMAT, "%s:%u: empty line inside the data; remove it", L->file, line);
      goto done;
    }
    size_t bad = mp_utf8_invalid_at(ls, t);
    if (bad != (size_t)-1) {
      st = mp_err(MP_ERR_FORMAT,
                  "%s:%u:%zu: invalid UTF-8 (byte 0x%02x); re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                  L->file, line, bad + 1, (unsigned char)ls[bad]);
      goto done;
    }
    mp_arena_reset(&scratch);
    mp_json *j = NULL;
    if (mp_json_parse(ls, t, "line", &scratch, &j) != MP_OK) {
      const char *m = mp_last_error();
      unsigned jl = 0, jc = 0;
      const char *msg = strstr(m, "invalid JSON: ");
      if (sscanf(m, "line:%u:%u:", &jl, &jc) != 2) jc = 0;
      char copy[256];
      snprintf(copy, sizeof copy, "%s", msg ? msg + 14 : m);
      st = mp_err(MP_ERR_FORMAT, "%s:%u:%u: malformed JSON line (%s); each line must be one JSON object", L->file, line,
                  jc, copy);
      goto done;
    }
    if (j->type != MP_JSON_OBJECT) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u: expected a JSON object, found %s; each line must be one JSON object", L->file,
                  line, mp_json_type_name(j->type));
      goto done;
    }
    const char *w;
    size_t wl;
    char wa[96], wb[96], wlb[96], ws[96];
    const mp_json *ja = json_field(j, d->text_a, &w, &wl);
    if (!ja) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u: missing field '%s'; set the dataset's text field names", L->file, line,
                  d->text_a);
      goto done;
    }
    snprintf(wa, sizeof wa, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
    mp_ds_val va = json_val(ja), vb = {MP_DSV_NONE, NULL, 0, 0, 0}, vl = vb, vs = vb;
    wb[0] = wlb[0] = ws[0] = 0;
    if (L->need_b) {
      const mp_json *jb = json_field(j, d->text_b, &w, &wl);
      if (!jb) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: missing field '%s'; set the dataset's text field names", L->file, line,
                    d->text_b);
        goto done;
      }
      snprintf(wb, sizeof wb, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
      vb = json_val(jb);
    }
    if (L->need_label) {
      const mp_json *jlb = json_field(j, d->label, &w, &wl);
      if (!jlb) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: missing label field '%s'; set the dataset's label field", L->file, line,
                    d->label);
        goto done;
      }
      snprintf(wlb, sizeof wlb, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
      vl = json_val(jlb);
      if (vl.kind == MP_DSV_NONE) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: %s: label must be a string or an integer", L->file, line, wlb);
        goto done;
      }
    }
    if (L->need_score) {
      const mp_json *js = json_field(j, d->score, &w, &wl);
      if (!js) {
        st = mp_err(MP_ERR_FORMAT, "%s:%u: missing score field '%s'; set the dataset's score field", L->file, line,
                    d->score);
        goto done;
      }
      snprintf(ws, sizeof ws, "field '%.*s'", (int)(wl > 60 ? 60 : wl), w);
      vs = json_val(js);
    }
    st = mp_ds_push_example(L, &va, &vb, &vl, &vs, line, wa, wb, wlb, ws);
    if (st != MP_OK) goto done;
    rows++;
  }
  if (rows == 0 && L->ds->n_dropped == 0)
    st = mp_err(MP_ERR_FORMAT, "%s: empty file (no JSON lines); give a file with one JSON object per line", L->file);
done:
  mp_arena_free(&scratch);
  return st;
}
