/* Pipeline configuration: many YAML files of models and datasets (the original pipeline's
 * schema plus local-data fields), merged, validated with file:line:column messages and
 * de-duplicated. */
#ifndef MP_PIPELINE_CONFIG_H
#define MP_PIPELINE_CONFIG_H
#include <stddef.h>

#include "core/arena.h"
#include "core/json.h"
#include "mlxport.h"

typedef struct mp_pl_where {
  const char *file;
  unsigned line, col;
} mp_pl_where;

typedef struct mp_pl_quant {
  int bits;                 /* 2,3,4,5,6,8 */
  int group_size;           /* 32,64,128 */
  const char *dtype;        /* float16 / bfloat16 / float32, or NULL = config torch_dtype */
  double target_size_mb;    /* 0 = no size gate */
  double max_accuracy_drop; /* < 0 = no accuracy gate */
  double min_speedup;       /* default 1.2 */
  /* MLX quantization mode and mixed precision (docs/quantization.md): passed to convert */
  const char *mode;       /* affine (NULL) / mxfp4 / nvfp4 / mxfp8 */
  const char **overrides; /* "GLOB=BITS[:GROUP[:MODE]]" / "GLOB=none" */
  size_t n_overrides;
  const char *recipe;   /* keep-edges, keep-edges-float, mixed_* (mlx-lm), or a recipe file */
  double auto_max_drop; /* auto: {max_drop, calibration, ...}; < 0 = no search */
  const char *auto_calibration, *auto_eval;
  double auto_calibration_samples, auto_eval_samples; /* 0 = convert's defaults */
  char variant[96]; /* short label: q8g64, mxfp4, q4g64+mixed-1a2b3c4d, auto-0.01 ... */
} mp_pl_quant;

typedef struct mp_pl_model {
  const char *name;     /* safe folder name */
  const char *hf_name;  /* repo id or local path */
  const char *revision; /* NULL = main */
  const char *task;     /* as written (e.g. zero-shot-classification); may be NULL */
  const char *device;   /* `device:` cpu / cuda / cuda:N for its evaluations; NULL = cpu */
  mp_pl_quant quant;
  const char **benchmarks;
  size_t n_benchmarks;
  mp_pl_where where;
  /* upload: {repo, private} of the model or of its file's default (repo may use "{name}");
   * upload_repo NULL = not published */
  const char *upload_repo;
  int upload_private;
  int upload_set;       /* the model's own `upload:` key decided (else the file's default applies) */
  const char **aliases; /* other names with the same source + revision + quantization */
  size_t n_aliases;
  const mp_json *node;
} mp_pl_model;

typedef struct mp_pl_dataset {
  const char *key;
  /* original schema */
  const char *name, *subset;
  const char **splits;
  size_t n_splits;
  const char **metrics;
  size_t n_metrics;
  long max_length; /* preprocessing.max_length (0 = model default) */
  const char *truncation, *padding;
  /* local data (mlxport extension) */
  const char *path, *format, *task, *text_a, *text_b, *label_field, *score_field, *template_;
  const char **label_names;
  size_t n_label_names;
  long max_samples; /* 0 = all */
  mp_pl_where where;
  const char *same_as; /* key of an earlier dataset with the same data and settings (evaluate once) */
  const mp_json *node;
} mp_pl_dataset;

typedef struct mp_pl_config {
  mp_arena arena;
  mp_pl_model *models;
  size_t n_models;
  mp_pl_dataset *datasets;
  size_t n_datasets;
  char **files; /* the files read, after glob expansion */
  size_t n_files;
  char **warnings;
  size_t n_warnings;
  /* `gpu_memory_mb:` (top level or under `defaults:`): the GPU memory budget per CUDA device, in
   * MB, for the evaluations that run there (docs/cuda.md "Pipeline"); 0 = not set (the device's
   * memory x 0.9). Files that set it must agree. */
  double gpu_memory_mb;
  mp_pl_where gpu_memory_where;
} mp_pl_config;

/* Loads every file matching the patterns (globs are expanded here, so quote them), merges
 * (models concatenated, datasets merged) and validates. All problems found are reported in
 * one message (one per line), each with file:line:column. */
mp_status mp_pl_config_load(const char *const *patterns, size_t n, mp_pl_config **out);
void mp_pl_config_free(mp_pl_config *c);
const mp_pl_dataset *mp_pl_config_dataset(const mp_pl_config *c, const char *key);
const mp_pl_model *mp_pl_config_model(const mp_pl_config *c, const char *name);

#endif
