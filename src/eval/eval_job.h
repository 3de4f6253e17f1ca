/* One evaluation job, as `mlxport eval` runs it: resolve and load the dataset (built-in key,
 * file, Hub cache), sample it, run the baseline and the model on the same examples, compare,
 * apply the gates, build the comparison JSON document and optionally record it in the model
 * card. Used by the CLI (cmd_eval.c), the pipeline's eval jobs (pipeline.c, in a forked child)
 * and the public API (mlxport_evaluate, mlxport_evaluator_open). Prints nothing: progress goes
 * through mp_log. */
#ifndef MP_EVAL_EVAL_JOB_H
#define MP_EVAL_EVAL_JOB_H
#include <stddef.h>

#include "core/strbuf.h"
#include "eval/dataset.h"
#include "eval/evaluate.h"
#include "mlxport.h"

typedef struct mp_eval_job_opts {
  const char *model;    /* required by mp_eval_job_run */
  const char *baseline; /* NULL: no comparison (speed and drop gates off) */
  const char *dataset;  /* built-in key or file; required */
  const char *data_dir, *data_file, *format, *text_fields, *label_field, *label_names, *score_field;
  const char *task; /* task name as given (NULL: auto); sets eo.task too via mp_eval_job_opts_set_task */
  const char *name; /* model name in the document (NULL: folder / repo name) */
  size_t max_samples;
  mp_eval_options eo;
  mp_gate_options go;
  int update_card;          /* record the comparison in an mlxport folder's card */
  const char *card_command; /* the command shown in the card (NULL: none) */
} mp_eval_job_opts;
/* Defaults: those of mp_eval_options_init and mp_gate_options_init, update_card 0. */
void mp_eval_job_opts_init(mp_eval_job_opts *o);

/* Loads and samples the dataset of o (free with mp_dataset_free). MP_ERR_INVALID_ARG for options
 * that cannot be used (unknown format, task fields). */
mp_status mp_eval_job_dataset(const mp_eval_job_opts *o, mp_dataset **out);

typedef struct mp_eval_job_out {
  mp_dataset *ds;
  mp_eval_result base, conv;
  int have_base;
  mp_comparison cmp;
  mp_gate gates[4];
  size_t n_gates;
  int all_passed;
  int bits;       /* the converted model's quantization bits (0: not quantized) */
  char name[256]; /* the model name used in the document */
  mp_sb doc;      /* the comparison document, one JSON object and a newline */
  int usage;      /* 1 when the failure was a bad option (the CLI's exit status 2) */
} mp_eval_job_out;

/* Runs the job; on success out holds everything (free with mp_eval_job_out_free, also after a
 * failure). A failed gate is not an error: out->all_passed. */
mp_status mp_eval_job_run(const mp_eval_job_opts *o, mp_eval_job_out *out);
void mp_eval_job_out_free(mp_eval_job_out *out);
/* The quantization bits in a model folder's config.json (0: none or unreadable). */
int mp_eval_model_bits(const char *model_path);
#endif
