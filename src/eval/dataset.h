/* Evaluation datasets: GLUE TSV, TSV/CSV, JSON Lines and Parquet (Hugging Face hub cache) files
 * loaded into a flat list of examples with the dataset's ordered label names, plus a seeded,
 * reproducible sub-sampling. Formats, built-in defaults and the sampling algorithm are documented
 * in docs/datasets.md.
 *
 * Usage:
 *   mp_dataset_def def;
 *   mp_dataset_def_init(&def);                 // everything "default"
 *   def.key = "sst2";                          // built-in layout (or fill the fields yourself)
 *   def.path = "/work/shared/datasets/sst2/dev.tsv";
 *   mp_dataset *ds;
 *   MP_TRY(mp_dataset_load(&def, &ds));        // errors name file:line[:column] and the fix
 *   MP_TRY(mp_dataset_sample(ds, 500, 42));    // keep a seeded subset (0 = all)
 *   for (size_t i = 0; i < ds->n; i++) ... ds->ex[i].text_a, ds->labels[ds->ex[i].label] ...
 *   mp_dataset_free(ds);
 */
#ifndef MP_EVAL_DATASET_H
#define MP_EVAL_DATASET_H
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "mlxport.h"

typedef enum mp_ds_format {
  MP_DS_AUTO = 0, /* by the key's default, then by extension (.tsv .csv .jsonl/.json .parquet)
                     and known layouts (GLUE folders, HF hub cache snapshots) */
  MP_DS_GLUE_TSV, /* tab-separated, header row, quoting off (GLUE's own files) */
  MP_DS_TSV,      /* tab-separated; header and quoting per the definition */
  MP_DS_CSV,      /* comma-separated; RFC 4180 quoting on by default */
  MP_DS_JSONL,    /* one JSON object per line */
  MP_DS_PARQUET,  /* Apache Parquet, flat schema (one file, or every *.parquet of a split) */
} mp_ds_format;

const char *mp_ds_format_name(mp_ds_format f); /* "auto", "glue_tsv", "tsv", "csv", "jsonl", "parquet" */
/* Parses a format name; MP_ERR_INVALID_ARG for an unknown one. */
mp_status mp_ds_format_parse(const char *name, mp_ds_format *out);

/* Tri-state for flags of a definition: unset fields take the key's / format's default. */
#define MP_DS_UNSET (-1)

/* A raw label value in the file and the label index it means (e.g. "e" -> entailment,
 * "SUPPORTS" -> entailment, "0" -> negative). index < 0 means "no gold label: drop the row". */
typedef struct mp_label_alias {
  const char *value;
  int index;
} mp_label_alias;

/* Where a dataset is and how to read it. The YAML config layer fills this; every pointer is
 * borrowed (must outlive mp_dataset_load only). Fields left at their init value take the
 * built-in default of `key` (see mp_dataset_builtin), then the format's default. */
typedef struct mp_dataset_def {
  const char *key;        /* built-in defaults: "sst2", "stsb", "stsb_original", "qnli", "mrpc",
                             "rte", "mnli", "snli", "anli", "fever_nli" (NULL = none) */
  const char *path;       /* file or folder; a folder is searched for the split's file (see docs) */
  const char *hf_dataset; /* "ORG/NAME" in the HF hub cache when path is NULL (HF_HUB_CACHE,
                             else HF_HOME/hub, else ~/.cache/huggingface/hub) */
  const char *config;     /* HF config / GLUE subset folder (e.g. "sst2"), NULL = none or the only one */
  const char *split;      /* "validation" (default), "test", "train", "validation_matched", ... */
  mp_ds_format format;

  /* Field names: header column names (TSV/CSV with header), JSON keys, Parquet column names.
   * Several candidates may be given separated by '|' (first present wins), e.g. "premise|context". */
  const char *text_a; /* required (default from key) */
  const char *text_b; /* NULL = single-text dataset */
  const char *label;  /* label field; NULL when the dataset is scored (score field) */
  const char *score;  /* similarity score field (float), NULL = none */
  /* Column indices (0-based) for files without a header; -1 = unused. */
  int text_a_col, text_b_col, label_col, score_col;

  /* Ordered label names: index i of an example's label means label_names[i]. This order is the
   * dataset's definition (SST-2: negative, positive) and is what tasks present to models. */
  const char *const *label_names;
  size_t n_label_names;
  /* Raw value -> index table consulted first (exact, case-sensitive). */
  const mp_label_alias *aliases;
  size_t n_aliases;
  /* After the aliases: a raw value equal to a label name maps to it; an integer value k maps to
   * label k when 0 <= k < n (numeric_labels != 0) and a negative integer means "no gold label"
   * (row dropped). Anything else is MP_ERR_FORMAT (unknown label value). */
  int numeric_labels; /* MP_DS_UNSET = on */

  int header;      /* 1 = first line is a header (TSV/CSV); MP_DS_UNSET = per format/key */
  int quoting;     /* 1 = RFC 4180 double quotes; 0 = a quote is an ordinary character */
  int min_columns; /* rows with fewer columns are an error; 0 = as many as the header */
} mp_dataset_def;

/* Sets every field to "unset" (NULL / MP_DS_UNSET / -1 columns / MP_DS_AUTO). */
void mp_dataset_def_init(mp_dataset_def *def);

/* Copies the built-in defaults of `key` into the fields of def that are still unset.
 * MP_ERR_NOT_FOUND for an unknown key (message lists the known ones). mp_dataset_load calls this
 * itself when def->key is set. */
mp_status mp_dataset_builtin(const char *key, mp_dataset_def *def);
/* A file given by path with no key and no fields: the usual column names (header columns, JSON
 * keys, Parquet columns; the first one present wins) of what `task` needs, set where still unset:
 *   nli, binary-nli            premise|sentence1|question, hypothesis|sentence2|sentence,
 *                              label|gold_label (entailment, neutral, contradiction; binary-nli:
 *                              entailment, not_entailment; "-" = no gold label)
 *   semantic-similarity (sentence-similarity)  sentence1, sentence2, score|label
 *   text-classification, zero-shot-classification  sentence|text, label|gold_label
 * MP_ERR_INVALID_ARG for another task name. */
mp_status mp_dataset_task_fields(mp_dataset_def *def, const char *task);
/* NULL-terminated list of the built-in keys. */
const char *const *mp_dataset_builtin_keys(void);
/* Built-in key for a config's Hugging Face `name` / `subset` (e.g. "glue"/"sst2" -> "sst2",
 * "super_glue"/"rte" -> "rte", "anli" -> "anli", "pietrolesci/nli_fever" -> "fever_nli",
 * "mteb/stsbenchmark-sts" -> "stsb"); NULL when unknown. */
const char *mp_dataset_key_for(const char *name, const char *subset);

typedef struct mp_example {
  const char *text_a; /* UTF-8, NUL-terminated (validated) */
  const char *text_b; /* NULL for single-text datasets */
  int label;          /* index into mp_dataset.labels, or -1 (scored dataset / no label) */
  double score;       /* similarity score (scored datasets), else NAN */
  uint32_t line;      /* 1-based source line (text formats) or 1-based row (Parquet) */
  uint32_t index;     /* 0-based position among the file's kept examples, before sampling */
} mp_example;

typedef struct mp_dataset {
  char *name; /* the key, or the file's base name */
  char *path; /* the file that was read (first file for multi-file Parquet splits) */
  mp_ds_format format;
  mp_example *ex;
  size_t n;
  size_t n_total;      /* examples before sampling */
  size_t n_dropped;    /* rows dropped for "no gold label" (-1, "-", "hidden") */
  const char **labels; /* ordered label names (n_labels == 0 for scored datasets) */
  size_t n_labels;
  int has_score;  /* 1 when examples carry a score instead of a label */
  int has_pairs;  /* 1 when examples carry text_b */
  mp_arena arena; /* owns every string */
} mp_dataset;

/* Loads the whole dataset. Errors (MP_ERR_FORMAT unless noted) name file:line[:column]:
 * missing file (MP_ERR_NOT_FOUND), empty file, missing column/field, wrong column count,
 * unknown label value, bad UTF-8, malformed JSON line, non-numeric score. */
mp_status mp_dataset_load(const mp_dataset_def *def, mp_dataset **out);
void mp_dataset_free(mp_dataset *ds);

/* Keeps a seeded subset of max_samples examples (0, or >= n: keep all, order unchanged).
 * Algorithm (reproducible anywhere, see docs/datasets.md): xoshiro256** seeded through
 * splitmix64(seed); partial forward Fisher-Yates over positions 0..n-1, for i in 0..N-1:
 * j = i + next() % (n - i), swap; the first N positions are then sorted ascending so the subset
 * keeps file order. The same (file, N, seed) gives the same examples for every model. */
mp_status mp_dataset_sample(mp_dataset *ds, size_t max_samples, uint64_t seed);
/* The chosen original positions without a dataset (same algorithm): out[0..k) ascending,
 * k = min(n, max_samples) (max_samples 0 = n). out must hold k entries. */
void mp_sample_indices(size_t n, size_t max_samples, uint64_t seed, size_t *out);

/* Per-label counts of the (sampled) dataset; counts has n_labels entries. */
void mp_dataset_label_counts(const mp_dataset *ds, size_t *counts);

/* Seeded PRNG shared by sampling and bootstrap: xoshiro256** (Blackman & Vigna) whose 4 state
 * words are 4 successive outputs of splitmix64 starting from state = seed. */
typedef struct mp_rng {
  uint64_t s[4];
} mp_rng;
void mp_rng_seed(mp_rng *r, uint64_t seed);
uint64_t mp_rng_next(mp_rng *r);
#endif
