/* Evaluation dataset loading (dataset.h, docs/datasets.md): the format names and mp_dataset_load,
 * which applies the key's defaults, finds the files (dataset_files.c), picks the format and runs
 * the reader of each file (dataset_tsv.c, dataset_jsonl.c, dataset_parquet.c). */
#include "eval/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "eval/dataset_internal.h"

#define MP_DS_MAX_FILE ((size_t)4 << 30)

static const char *const fmt_names[] = {"auto", "glue_tsv", "tsv", "csv", "jsonl", "parquet"};

const char *mp_ds_format_name(mp_ds_format f) {
  return (unsigned)f < sizeof fmt_names / sizeof *fmt_names ? fmt_names[f] : "?";
}

mp_status mp_ds_format_parse(const char *name, mp_ds_format *out) {
  for (size_t i = 0; i < sizeof fmt_names / sizeof *fmt_names; i++)
    if (name && strcmp(name, fmt_names[i]) == 0) {
      *out = (mp_ds_format)i;
      return MP_OK;
    }
  if (name && strcmp(name, "json") == 0) {
    *out = MP_DS_JSONL;
    return MP_OK;
  }
  return mp_err(MP_ERR_INVALID_ARG, "unknown dataset format '%s' (use auto, glue_tsv, tsv, csv, jsonl or parquet)",
                name ? name : "(null)");
}

void mp_dataset_free(mp_dataset *ds) {
  if (!ds) return;
  free(ds->ex);
  mp_arena_free(&ds->arena);
  free(ds);
}

mp_status mp_dataset_load(const mp_dataset_def *def, mp_dataset **out) {
  *out = NULL;
  mp_ds_loader L;
  memset(&L, 0, sizeof L);
  L.d = *def;
  if (L.d.key) MP_TRY(mp_dataset_builtin(L.d.key, &L.d));
  mp_dataset_def *d = &L.d;
  if (!d->split) d->split = "validation";
  if (!d->text_a && d->text_a_col < 0)
    return mp_err(MP_ERR_INVALID_ARG,
                  "dataset %s: which columns hold the text is not known: give the task (--task nli, "
                  "semantic-similarity, text-classification, ...: its usual column names are used), name the "
                  "fields (--text-fields A[,B], --label-field / --score-field; text_a / text_b in a pipeline "
                  "dataset) or use a built-in key",
                  d->key    ? d->key
                  : d->path ? d->path
                            : "?");
  if (d->label_names && d->n_label_names > 1024)
    return mp_err(MP_ERR_INVALID_ARG, "dataset: too many label names (%zu)", d->n_label_names);
  L.need_b = d->text_b != NULL || d->text_b_col >= 0;
  L.need_score = (d->score != NULL || d->score_col >= 0);
  L.need_label = !L.need_score && (d->label != NULL || d->label_col >= 0);
  if (L.need_label && (!d->label_names || d->n_label_names == 0))
    return mp_err(MP_ERR_INVALID_ARG, "dataset %s: a label field needs the ordered label names",
                  d->key    ? d->key
                  : d->path ? d->path
                            : "?");

  mp_ds_files files;
  MP_TRY(mp_ds_list_files(d, &files));
  mp_status st = MP_OK;

  mp_dataset *ds = calloc(1, sizeof *ds);
  if (!ds) {
    mp_ds_files_free(&files);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  mp_arena_init(&ds->arena, 1 << 20);
  L.ds = ds;
  ds->name = mp_arena_strdup(&ds->arena, d->key ? d->key : mp_path_basename(files.v[0]));
  ds->path = mp_arena_strdup(&ds->arena, files.v[0]);
  ds->has_pairs = L.need_b;
  ds->has_score = L.need_score;
  if (L.need_label) {
    ds->labels = mp_arena_alloc(&ds->arena, d->n_label_names * sizeof(char *));
    if (!ds->labels) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == MP_OK && i < d->n_label_names; i++) {
      ds->labels[i] = mp_arena_strdup(&ds->arena, d->label_names[i] ? d->label_names[i] : "");
      if (!ds->labels[i]) st = mp_err(MP_ERR_NOMEM, "out of memory");
    }
    ds->n_labels = d->n_label_names;
  }
  mp_ds_format fmt = d->format;
  if (fmt == MP_DS_AUTO) {
    fmt = mp_ds_format_from_ext(files.v[0]);
    mp_ds_format kf = MP_DS_AUTO;
    if (d->key) mp_ds_builtin_key(d->key, &kf);
    if (fmt == MP_DS_TSV && (kf == MP_DS_GLUE_TSV || kf == MP_DS_TSV)) fmt = kf;
    if (fmt == MP_DS_AUTO) fmt = kf;
    if (fmt == MP_DS_AUTO && st == MP_OK)
      st = mp_err(MP_ERR_INVALID_ARG, "%s: cannot tell the format from the name; set format (tsv, csv, jsonl, parquet)",
                  files.v[0]);
  }
  ds->format = fmt;
  if (fmt == MP_DS_GLUE_TSV) {
    if (d->quoting == MP_DS_UNSET) d->quoting = 0;
    if (d->header == MP_DS_UNSET) d->header = 1;
  }
  for (size_t f = 0; st == MP_OK && f < files.n; f++) {
    L.file = files.v[f];
    if (fmt == MP_DS_PARQUET) {
      st = mp_ds_read_parquet(&L, files.v[f]);
      continue;
    }
    char *buf = NULL;
    size_t n = 0;
    st = mp_read_file(files.v[f], &buf, &n, MP_DS_MAX_FILE);
    if (st != MP_OK) break;
    if (n == 0)
      st = mp_err(MP_ERR_FORMAT, "%s: empty file (0 bytes); give a file with data", files.v[f]);
    else if (fmt == MP_DS_JSONL)
      st = mp_ds_read_jsonl(&L, buf, n);
    else
      st = mp_ds_read_delimited(&L, buf, n, fmt == MP_DS_CSV ? ',' : '\t');
    free(buf);
  }
  if (st == MP_OK && ds->n == 0)
    st = mp_err(MP_ERR_FORMAT, "%s: no examples with a gold label (%zu rows dropped); check the label field",
                files.v[0], ds->n_dropped);
  /* the file-local index becomes the dataset-wide one (multi-file splits) */
  for (size_t i = 0; st == MP_OK && i < ds->n; i++)
    ds->ex[i].index = (uint32_t)i;
  ds->n_total = ds->n;
  mp_ds_files_free(&files);
  if (st != MP_OK) {
    mp_dataset_free(ds);
    return st;
  }
  *out = ds;
  return MP_OK;
}
