/* The delimited-text dataset reader: GLUE TSV (tab, header, no quoting), TSV and CSV (RFC 4180
 * quoting when on), columns by header name or index, errors naming file:line:column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "core/utf8.h"
#include "eval/dataset_internal.h"

typedef struct field {
  const char *s;
  size_t len;
  char *owned; /* unescaped copy when quoted */
} field;

typedef struct row {
  field *f;
  size_t n, cap;
} row;

static void row_clear(row *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->f[i].owned);
  r->n = 0;
}

static int row_push(row *r, const char *s, size_t len, char *owned) {
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 16;
    if (nc > 1u << 20) {
      free(owned);
      return -1;
    }
    field *nf = realloc(r->f, nc * sizeof *nf);
    if (!nf) {
      free(owned);
      return -1;
    }
    r->f = nf;
    r->cap = nc;
  }
  r->f[r->n].s = s;
  r->f[r->n].len = len;
  r->f[r->n].owned = owned;
  r->n++;
  return 0;
}

/* Reads one record starting at *pos. Returns 1 with a record, 0 at end, -1 on error (set).
 * *line is the record's first line; *next_line is updated past it. */
static int read_record(mp_ds_loader *L, const char *buf, size_t n, size_t *pos, char delim, int quoting, uint32_t *line,
                       row *r) {
  row_clear(r);
  size_t p = *pos;
  if (p >= n) return 0;
  uint32_t start_line = *line;
  for (;;) {
    if (quoting && p < n && buf[p] == '"') {
      /* quoted field */
      mp_sb sb;
      mp_sb_init(&sb);
      size_t q = p + 1;
      uint32_t ln = *line;
      for (;;) {
        if (q >= n) {
          mp_sb_free(&sb);
          mp_err(MP_ERR_FORMAT,
                 "%s:%u: column %zu: quoted field never closed (unbalanced '\"'); fix the quote or read the "
                 "file with quoting off",
                 L->file, start_line, r->n + 1);
          return -1;
        }
        if (buf[q] == '"') {
          if (q + 1 < n && buf[q + 1] == '"') {
            mp_sb_putc(&sb, '"');
            q += 2;
            continue;
          }
          q++;
          break;
        }
        if (buf[q] == '\n') ln++;
        mp_sb_putc(&sb, buf[q]);
        q++;
      }
      if (q < n && buf[q] != delim && buf[q] != '\n' && !(buf[q] == '\r' && (q + 1 == n || buf[q + 1] == '\n'))) {
        mp_sb_free(&sb);
        mp_err(MP_ERR_FORMAT, "%s:%u: column %zu: unexpected character after a closing quote; fix the quoting", L->file,
               ln, r->n + 1);
        return -1;
      }
      *line = ln;
      if (sb.oom) {
        mp_sb_free(&sb);
        mp_err(MP_ERR_NOMEM, "%s: out of memory", L->file);
        return -1;
      }
      size_t len = sb.len;
      char *owned = mp_sb_steal(&sb);
      if (!owned) owned = calloc(1, 1);
      if (!owned || row_push(r, owned, len, owned) != 0) {
        mp_err(MP_ERR_NOMEM, "%s:%u: out of memory or too many columns", L->file, start_line);
        return -1;
      }
      p = q;
    } else {
      size_t q = p;
      while (q < n && buf[q] != delim && buf[q] != '\n')
        q++;
      size_t len = q - p;
      if (q < n && buf[q] == '\n' && len && buf[q - 1] == '\r')
        len--;
      else if (q == n && len && buf[q - 1] == '\r')
        len--;
      if (row_push(r, buf + p, len, NULL) != 0) {
        mp_err(MP_ERR_NOMEM, "%s:%u: out of memory or too many columns", L->file, start_line);
        return -1;
      }
      p = q;
    }
    if (p < n && buf[p] == '\r' && (p + 1 == n || buf[p + 1] == '\n')) p++;
    if (p >= n) break;
    if (buf[p] == delim) {
      p++;
      continue;
    }
    /* newline */
    p++;
    break;
  }
  *pos = p;
  (*line)++;
  return 1;
}

static int resolve_header_field(const row *hdr, const char *spec, int *col) {
  const char *alt[8];
  size_t lens[8];
  size_t na = mp_ds_split_alts(spec, alt, lens);
  for (size_t a = 0; a < na; a++)
    for (size_t i = 0; i < hdr->n; i++)
      if (mp_ds_name_eq(hdr->f[i].s, hdr->f[i].len, alt[a], lens[a])) {
        *col = (int)i;
        return 1;
      }
  return 0;
}

static mp_status missing_column(mp_ds_loader *L, const row *hdr, const char *what, const char *spec) {
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < hdr->n && i < 40; i++) {
    mp_sb_printf(&sb, "%s'", i ? ", " : "");
    mp_sb_append(&sb, hdr->f[i].s, hdr->f[i].len > 60 ? 60 : hdr->f[i].len);
    mp_sb_putc(&sb, '\'');
  }
  mp_status s = mp_err(MP_ERR_FORMAT,
                       "%s:1: no %s column '%s' in the header (columns: %s); set the dataset's field names or "
                       "format",
                       L->file, what, spec, sb.buf ? sb.buf : "");
  mp_sb_free(&sb);
  return s;
}

mp_status mp_ds_read_delimited(mp_ds_loader *L, const char *buf, size_t n, char delim) {
  const mp_dataset_def *d = &L->d;
  size_t pos = 0;
  if (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
    pos = 3; /* UTF-8 byte-order mark (MRPC) */
  int quoting = d->quoting == MP_DS_UNSET ? (delim == ',') : d->quoting;
  int header = d->header == MP_DS_UNSET ? 1 : d->header;
  uint32_t line = 1;
  row r = {0};
  mp_status st = MP_OK;
  int ca = d->text_a_col, cb = d->text_b_col, cl = d->label_col, cs = d->score_col;
  size_t expect = 0; /* exact column count (header files) */
  size_t minc = d->min_columns > 0 ? (size_t)d->min_columns : 0;
  char wa[160], wb[160], wl[160], ws[160];
  if (header) {
    int k = read_record(L, buf, n, &pos, delim, quoting, &line, &r);
    if (k < 0) {
      st = MP_ERR_FORMAT;
      goto done;
    }
    if (k == 0) {
      st = mp_err(MP_ERR_FORMAT, "%s: empty file (no header line); give a file with a header and data rows", L->file);
      goto done;
    }
    for (size_t i = 0; i < r.n; i++) {
      size_t bad = mp_utf8_invalid_at(r.f[i].s, r.f[i].len);
      if (bad != (size_t)-1) {
        st = mp_err(MP_ERR_FORMAT, "%s:1: column %zu: header is not valid UTF-8; re-encode the file as UTF-8", L->file,
                    i + 1);
        goto done;
      }
    }
    expect = r.n;
    if (d->text_a && !resolve_header_field(&r, d->text_a, &ca)) {
      st = missing_column(L, &r, "text", d->text_a);
      goto done;
    }
    if (d->text_b && !resolve_header_field(&r, d->text_b, &cb)) {
      st = missing_column(L, &r, "second text", d->text_b);
      goto done;
    }
    if (L->need_label && d->label && !resolve_header_field(&r, d->label, &cl)) {
      st = missing_column(L, &r, "label", d->label);
      goto done;
    }
    if (L->need_score && d->score && !resolve_header_field(&r, d->score, &cs)) {
      st = missing_column(L, &r, "score", d->score);
      goto done;
    }
  }
  if (ca < 0 || (L->need_b && cb < 0) || (L->need_label && cl < 0) || (L->need_score && cs < 0)) {
    st = mp_err(MP_ERR_INVALID_ARG,
                "%s: header-less file needs column indices for text%s%s; set them in the dataset definition", L->file,
                L->need_b ? ", second text" : "",
                L->need_label   ? ", label"
                : L->need_score ? ", score"
                                : "");
    goto done;
  }
  int maxc = ca;
  if (L->need_b && cb > maxc) maxc = cb;
  if (L->need_label && cl > maxc) maxc = cl;
  if (L->need_score && cs > maxc) maxc = cs;
  if ((size_t)maxc + 1 > minc) minc = (size_t)maxc + 1;
  snprintf(wa, sizeof wa, "column %d", ca + 1);
  snprintf(wb, sizeof wb, "column %d", cb + 1);
  snprintf(wl, sizeof wl, "column %d", cl + 1);
  snprintf(ws, sizeof ws, "column %d", cs + 1);
  size_t rows = 0;
  for (;;) {
    size_t save = pos;
    uint32_t rec_line = line;
    int k = read_record(L, buf, n, &pos, delim, quoting, &line, &r);
    if (k < 0) {
      st = MP_ERR_FORMAT;
      goto done;
    }
    if (k == 0) break;
    if (r.n == 1 && r.f[0].len == 0) {
      /* empty line: allowed only as trailing lines */
      size_t q = save;
      while (q < n && (buf[q] == '\n' || buf[q] == '\r'))
        q++;
      if (q >= n) break;
      st = mp_err(MP_ERR_FORMAT, "%s:%u: empty line inside the data; remove it", L->file, rec_line);
      goto done;
    }
    if ((expect && r.n != expect) || r.n < minc) {
      st = mp_err(MP_ERR_FORMAT, "%s:%u: wrong column count: expected %s%zu, found %zu; fix the row%s", L->file,
                  rec_line, expect ? "" : "at least ", expect ? expect : minc, r.n,
                  quoting ? "" : " (or the delimiter / quoting setting)");
      goto done;
    }
    mp_ds_val va = {MP_DSV_STR, r.f[ca].s, r.f[ca].len, 0, 0}, vb = {MP_DSV_NONE, NULL, 0, 0, 0}, vl = vb, vs = vb;
    if (L->need_b) vb = (mp_ds_val){MP_DSV_STR, r.f[cb].s, r.f[cb].len, 0, 0};
    if (L->need_label) vl = (mp_ds_val){MP_DSV_STR, r.f[cl].s, r.f[cl].len, 0, 0};
    if (L->need_score) vs = (mp_ds_val){MP_DSV_STR, r.f[cs].s, r.f[cs].len, 0, 0};
    st = mp_ds_push_example(L, &va, &vb, &vl, &vs, rec_line, wa, wb, wl, ws);
    if (st != MP_OK) goto done;
    rows++;
  }
  if (rows == 0 && L->ds->n_dropped == 0)
    st = mp_err(MP_ERR_FORMAT, "%s: empty file (%s); give a file with data rows", L->file,
                header ? "a header but no data rows" : "no data rows");
done:
  row_clear(&r);
  free(r.f);
  return st;
}
