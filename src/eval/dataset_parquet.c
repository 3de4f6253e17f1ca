/* The Parquet dataset reader: the needed columns of a flat table (format/parquet.h) read whole,
 * row by row into examples; errors name the file, the column and the 1-based row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "eval/dataset_internal.h"
#include "format/parquet.h"

static int pq_find(const mp_parquet *pq, const char *spec, int col_index, const char **which) {
  if (!spec) {
    if (col_index >= 0 && (size_t)col_index < mp_parquet_num_columns(pq)) {
      *which = mp_parquet_column(pq, (size_t)col_index)->name;
      return col_index;
    }
    return -1;
  }
  const char *alt[8];
  size_t lens[8];
  size_t na = mp_ds_split_alts(spec, alt, lens);
  for (size_t a = 0; a < na; a++)
    for (size_t i = 0; i < mp_parquet_num_columns(pq); i++) {
      const char *nm = mp_parquet_column(pq, i)->name;
      if (mp_ds_name_eq(nm, strlen(nm), alt[a], lens[a])) {
        *which = nm;
        return (int)i;
      }
    }
  return -1;
}

static mp_ds_val pq_val(const mp_pq_values *v, size_t r) {
  mp_ds_val x = {MP_DSV_NONE, NULL, 0, 0, 0};
  if (v->is_null[r]) {
    x.kind = MP_DSV_NULL;
    return x;
  }
  switch (v->type) {
  case MP_PQ_BOOLEAN:
    x.kind = MP_DSV_BOOL;
    x.i = v->i64[r];
    break;
  case MP_PQ_INT32:
  case MP_PQ_INT64:
    x.kind = MP_DSV_INT;
    x.i = v->i64[r];
    break;
  case MP_PQ_FLOAT: {
    /* float32 scores (HF glue/stsb): the shortest decimal that round-trips the float, so 2.4f
     * reads as 2.4 like the TSV copy (what Python prints for numpy.float32) */
    x.kind = MP_DSV_NUM;
    x.d = v->f64[r];
    float f = (float)v->f64[r];
    for (int prec = 1; prec <= 9 && isfinite(f); prec++) {
      char b[40];
      snprintf(b, sizeof b, "%.*g", prec, (double)f);
      double d = strtod(b, NULL);
      if ((float)d == f) {
        x.d = d;
        break;
      }
    }
    break;
  }
  case MP_PQ_DOUBLE:
    x.kind = MP_DSV_NUM;
    x.d = v->f64[r];
    break;
  case MP_PQ_BYTE_ARRAY:
    x.kind = MP_DSV_STR;
    x.s = v->str[r];
    x.len = v->str_len[r];
    break;
  default: break;
  }
  return x;
}

static mp_status pq_missing(mp_ds_loader *L, const mp_parquet *pq, const char *what, const char *spec) {
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < mp_parquet_num_columns(pq) && i < 40; i++)
    mp_sb_printf(&sb, "%s'%s'", i ? ", " : "", mp_parquet_column(pq, i)->name);
  mp_status s = mp_err(MP_ERR_FORMAT, "%s: no %s column '%s' (columns: %s); set the dataset's field names", L->file,
                       what, spec ? spec : "(index)", sb.buf ? sb.buf : "");
  mp_sb_free(&sb);
  return s;
}

mp_status mp_ds_read_parquet(mp_ds_loader *L, const char *path) {
  const mp_dataset_def *d = &L->d;
  mp_parquet *pq = NULL;
  MP_TRY(mp_parquet_open(path, &pq));
  mp_status st = MP_OK;
  const char *na = NULL, *nb = NULL, *nl = NULL, *ns = NULL;
  int ca = pq_find(pq, d->text_a, d->text_a_col, &na);
  int cb = L->need_b ? pq_find(pq, d->text_b, d->text_b_col, &nb) : -1;
  int cl = L->need_label ? pq_find(pq, d->label, d->label_col, &nl) : -1;
  int cs = L->need_score ? pq_find(pq, d->score, d->score_col, &ns) : -1;
  if (ca < 0)
    st = pq_missing(L, pq, "text", d->text_a);
  else if (L->need_b && cb < 0)
    st = pq_missing(L, pq, "second text", d->text_b);
  else if (L->need_label && cl < 0)
    st = pq_missing(L, pq, "label", d->label);
  else if (L->need_score && cs < 0)
    st = pq_missing(L, pq, "score", d->score);
  if (st != MP_OK) goto done;
  mp_pq_values va, vb, vl, vs;
  memset(&vb, 0, sizeof vb);
  memset(&vl, 0, sizeof vl);
  memset(&vs, 0, sizeof vs);
  if ((st = mp_parquet_read_column(pq, (size_t)ca, &va)) != MP_OK) goto done;
  if (L->need_b && (st = mp_parquet_read_column(pq, (size_t)cb, &vb)) != MP_OK) goto done;
  if (L->need_label && (st = mp_parquet_read_column(pq, (size_t)cl, &vl)) != MP_OK) goto done;
  if (L->need_score && (st = mp_parquet_read_column(pq, (size_t)cs, &vs)) != MP_OK) goto done;
  char wa[96], wb[96], wl[96], ws[96];
  snprintf(wa, sizeof wa, "column '%s'", na);
  snprintf(wb, sizeof wb, "column '%s'", nb ? nb : "");
  snprintf(wl, sizeof wl, "column '%s'", nl ? nl : "");
  snprintf(ws, sizeof ws, "column '%s'", ns ? ns : "");
  size_t rows = va.n;
  if (rows == 0 && L->ds->n == 0) {
    st = mp_err(MP_ERR_FORMAT, "%s: the Parquet file has no rows; give a file with data", L->file);
    goto done;
  }
  for (size_t r = 0; r < rows; r++) {
    mp_ds_val a = pq_val(&va, r), b = {MP_DSV_NONE, NULL, 0, 0, 0}, l = b, s = b;
    if (L->need_b) b = pq_val(&vb, r);
    if (L->need_label) l = pq_val(&vl, r);
    if (L->need_score) s = pq_val(&vs, r);
    if (r >= UINT32_MAX) {
      st = mp_err(MP_ERR_UNSUPPORTED, "%s: too many rows", L->file);
      goto done;
    }
    st = mp_ds_push_example(L, &a, &b, &l, &s, (uint32_t)(r + 1), wa, wb, wl, ws);
    if (st != MP_OK) goto done;
  }
done:
  mp_parquet_close(pq);
  if (st != MP_OK && strncmp(mp_last_error(), L->file, strlen(L->file)) != 0) mp_err_prefix(st, "%s", L->file);
  return st;
}
