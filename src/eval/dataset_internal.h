/* Internals shared by the dataset files of src/eval/ (not part of the library's interface):
 * where a dataset's files are (dataset_files.c), the built-in keys (dataset_keys.c), the row
 * values the readers hand over and the loader state that turns them into examples
 * (dataset_rows.c), and the three readers: delimited text (dataset_tsv.c: GLUE TSV, TSV, CSV),
 * JSON Lines (dataset_jsonl.c) and Parquet (dataset_parquet.c). mp_dataset_load (dataset.c) ties
 * them together. */
#ifndef MP_EVAL_DATASET_INTERNAL_H
#define MP_EVAL_DATASET_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "eval/dataset.h"

/* ---- dataset_keys.c */

/* The built-in key that `key` names (tolerated spellings included: "sst-2" -> "sst2"), NULL when
 * none; *format (may be NULL) gets that key's default format. */
const char *mp_ds_builtin_key(const char *key, mp_ds_format *format);

/* ---- dataset_files.c */

typedef struct mp_ds_files {
  char **v; /* malloc'd paths, in reading order */
  size_t n, cap;
} mp_ds_files;
/* The files to read for def: def->path itself, the split's file(s) when it is a folder, or those
 * of the HF cache snapshot of def->hf_dataset (format/hf.h). MP_ERR_NOT_FOUND saying where it
 * looked. */
mp_status mp_ds_list_files(const mp_dataset_def *def, mp_ds_files *out);
void mp_ds_files_free(mp_ds_files *f);
/* The format a file name implies (.tsv/.txt, .csv, .jsonl/.json/.ndjson, .parquet); MP_DS_AUTO. */
mp_ds_format mp_ds_format_from_ext(const char *path);

/* ---- dataset_rows.c: one row's values -> one example */

/* A value as a reader found it (a TSV/CSV field is always a string). */
typedef enum { MP_DSV_NONE, MP_DSV_NULL, MP_DSV_STR, MP_DSV_INT, MP_DSV_NUM, MP_DSV_BOOL } mp_ds_vkind;
typedef struct mp_ds_val {
  mp_ds_vkind kind;
  const char *s;
  size_t len;
  int64_t i;
  double d;
} mp_ds_val;

typedef struct mp_ds_loader {
  mp_dataset_def d;
  mp_dataset *ds;
  const char *file; /* current file (for messages) */
  size_t cap;
  int need_label, need_score, need_b;
} mp_ds_loader;

/* Splits "a|b|c" field-name candidates; returns the number written (max 8). */
size_t mp_ds_split_alts(const char *spec, const char *out[8], size_t lens[8]);
int mp_ds_name_eq(const char *a, size_t alen, const char *b, size_t blen);
/* Maps the label / score, validates the texts (UTF-8, no NUL) and appends the example; a row with
 * no gold label is counted in ds->n_dropped instead. where_* name the field in messages. */
mp_status mp_ds_push_example(mp_ds_loader *L, const mp_ds_val *a, const mp_ds_val *b, const mp_ds_val *lab,
                             const mp_ds_val *sc, uint32_t line, const char *where_a, const char *where_b,
                             const char *where_l, const char *where_s);

/* ---- the readers: append the examples of one file (L->file) */

/* dataset_tsv.c: GLUE TSV, TSV and CSV (delim '\t' or ','), header and quoting per L->d. */
mp_status mp_ds_read_delimited(mp_ds_loader *L, const char *buf, size_t n, char delim);
/* dataset_jsonl.c: one JSON object per line. */
mp_status mp_ds_read_jsonl(mp_ds_loader *L, const char *buf, size_t n);
/* dataset_parquet.c: a flat Parquet table (format/parquet.h). */
mp_status mp_ds_read_parquet(mp_ds_loader *L, const char *path);
#endif
