/* mlxport public API: the evaluator. Load a dataset once (built-in key or file, seeded
 * sample), run models over it (task metric with a bootstrap interval, throughput, latency,
 * memory), compare a converted model with its original and apply quality gates
 * (docs/metrics.md).
 *
 *   mlxport_eval_options o;
 *   mlxport_eval_options_init(&o);
 *   o.dataset = "snli"; o.max_samples = 200;
 *   mlxport_evaluator *ev;
 *   mlxport_evaluator_open(&o, &ev);
 *   mlxport_eval_result *base, *conv;
 *   mlxport_evaluator_run(ev, "original", &base);
 *   mlxport_evaluator_run(ev, "converted", &conv);
 *   mlxport_comparison *c;
 *   mlxport_evaluator_compare(ev, base, conv, &c);   // gates from o
 *   printf("%s\n", mlxport_comparison_json(c));
 *   ... _free / _close
 *
 * or in one call, exactly what `mlxport eval --json` does: mlxport_evaluate(&o, &json, &passed).
 */
#ifndef MLXPORT_EVAL_H
#define MLXPORT_EVAL_H

#include "mlxport/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxport_evaluator mlxport_evaluator;
typedef struct mlxport_eval_result mlxport_eval_result;
typedef struct mlxport_comparison mlxport_comparison;

typedef struct mlxport_eval_options {
  size_t struct_size; /* sizeof(mlxport_eval_options); set by _init */
  /* the dataset */
  const char *dataset;     /* built-in key (sst2 stsb qnli mrpc rte mnli snli anli fever_nli ...) or a
                              .tsv .csv .jsonl .parquet file; required */
  const char *data_file;   /* with a built-in key: read that layout from this file */
  const char *data_dir;    /* where built-in datasets are looked up first (NULL: the usual places) */
  const char *task;        /* "nli", "binary-nli", "zero-shot-classification", "text-classification",
                              "semantic-similarity" or NULL/"auto" */
  const char *text_fields; /* "a" or "a,b": column names / JSON keys (NULL: the task's usual ones) */
  const char *label_field, *score_field;
  const char *label_names; /* "a,b,c": the labels in the dataset's order */
  const char *format;      /* "glue_tsv", "tsv", "csv", "jsonl", "parquet" (NULL: by key/extension) */
  size_t max_samples;      /* seeded sample size; 0 = all */
  uint64_t seed;           /* sampling and bootstrap seed (default 42) */
  /* running */
  size_t batch_size;       /* default 32 */
  size_t max_length;       /* 0: the model's */
  size_t latency_requests; /* batch-1 requests timed (default 100; 0 = no latency) */
  int threads;             /* 0: all cores */
  const char *compute;     /* "both" (default), "fast" or "faithful" (MLX-quantized models) */
  const char *template_;   /* zero-shot hypothesis template (NULL: "This example is {}.") */
  int in_process;          /* 1: run models in this process (default 0: a child process each,
                              so that memory figures are the model's own) */
  /* gates (NaN: no gate) */
  double max_accuracy_drop; /* baseline metric - converted metric <= this (default NaN) */
  double min_speedup;       /* converted / baseline throughput >= this (default 1.2) */
  double target_size_mb;    /* converted weights <= 1.1 x this (default NaN) */
  /* mlxport_evaluate only */
  const char *model;    /* the (converted) model; required by mlxport_evaluate */
  const char *baseline; /* its original (NULL: no comparison, no gates that need it) */
  const char *name;     /* model name in the document (default: the folder's name) */
  int update_card;      /* 1: record the comparison in an mlxport folder's model card (default 0) */
} mlxport_eval_options;

/** mlxport_eval_options_init: fills o with the defaults listed beside each field and sets
 * o->struct_size.
 * Thread-safety: any thread. */
MLXPORT_API void mlxport_eval_options_init(mlxport_eval_options *o);

/** mlxport_evaluator_open: loads and samples the dataset options->dataset; the evaluator keeps
 * every option for the runs and the comparison.
 * out: receives the handle (NULL on failure). The strings of options are copied.
 * Ownership: close it with mlxport_evaluator_close.
 * Errors: MLXPORT_ERR_NOT_FOUND (no such dataset: the message lists where it looked),
 *   MLXPORT_ERR_FORMAT (file:line:column of a bad row), MLXPORT_ERR_INVALID_ARG.
 * Thread-safety: any thread. */
MLXPORT_API mlxport_status mlxport_evaluator_open(const mlxport_eval_options *options, mlxport_evaluator **out);

/** mlxport_evaluator_close: releases an evaluator (NULL is fine). Results and comparisons made
 * with it stay valid.
 * Thread-safety: no other call may be using the handle. */
MLXPORT_API void mlxport_evaluator_close(mlxport_evaluator *ev);

/** mlxport_evaluator_size: the number of examples evaluated (after sampling).
 * Thread-safety: any thread. */
MLXPORT_API size_t mlxport_evaluator_size(const mlxport_evaluator *ev);

/** mlxport_evaluator_run: runs one model over the examples: task metric with its 95% bootstrap
 * interval, queries per minute, tokens per second, latency p50/p95/p99, memory, size.
 * model: folder or cached repo id.
 * out: receives the result (NULL on failure).
 * Ownership: free it with mlxport_eval_result_free.
 * Errors: those of mlxport_model_open; MLXPORT_ERR_UNSUPPORTED (the model cannot do the task).
 * Thread-safety: one run at a time per evaluator (timings would interfere anyway). The run forks
 *   a child process unless options.in_process is 1. */
MLXPORT_API mlxport_status mlxport_evaluator_run(mlxport_evaluator *ev, const char *model, mlxport_eval_result **out);

/** mlxport_eval_result_metric: the main task metric (accuracy, or Spearman for similarity).
 * Thread-safety: any thread (read-only). */
MLXPORT_API double mlxport_eval_result_metric(const mlxport_eval_result *r);

/** mlxport_eval_result_metric_name: "accuracy" or "spearman"; owned by the result.
 * Thread-safety: any thread (read-only). */
MLXPORT_API const char *mlxport_eval_result_metric_name(const mlxport_eval_result *r);

/** mlxport_eval_result_json: every figure of the result as one JSON object (the format of
 * test_results/NAME_results.json, docs/metrics.md).
 * Returns: a string owned by the result (valid until mlxport_eval_result_free), NULL on
 *   out-of-memory.
 * Thread-safety: any thread (read-only). */
MLXPORT_API const char *mlxport_eval_result_json(const mlxport_eval_result *r);

/** mlxport_eval_result_free: releases a result (NULL is fine).
 * Thread-safety: any thread, once per result. */
MLXPORT_API void mlxport_eval_result_free(mlxport_eval_result *r);

/** mlxport_evaluator_compare: compares a converted model's result with its original's on the
 * same examples (metric drop, speedup, size ratio, agreement, KL) and applies the gates of the
 * evaluator's options.
 * baseline, converted: results of mlxport_evaluator_run on this evaluator.
 * out: receives the comparison (NULL on failure).
 * Ownership: free it with mlxport_comparison_free.
 * Errors: MLXPORT_ERR_INVALID_ARG (results of different tasks or sizes).
 * Thread-safety: any thread (reads the evaluator and results only). */
MLXPORT_API mlxport_status mlxport_evaluator_compare(const mlxport_evaluator *ev, const mlxport_eval_result *baseline,
                                                     const mlxport_eval_result *converted, mlxport_comparison **out);

/** mlxport_comparison_passed: 1 when every gate passed (or there is none), else 0.
 * Thread-safety: any thread (read-only). */
MLXPORT_API int mlxport_comparison_passed(const mlxport_comparison *c);

/** mlxport_comparison_metric_drop: baseline main metric minus converted main metric.
 * Thread-safety: any thread (read-only). */
MLXPORT_API double mlxport_comparison_metric_drop(const mlxport_comparison *c);

/** mlxport_comparison_gate_count: the number of gates applied.
 * Thread-safety: any thread (read-only). */
MLXPORT_API size_t mlxport_comparison_gate_count(const mlxport_comparison *c);

/** mlxport_comparison_gate: gate `index`: its name ("accuracy_drop" or "spearman_drop", "speedup", "size_mb"), the
 * measured value, the threshold and whether it passed. Any output pointer may be NULL.
 * Returns: MLXPORT_ERR_INVALID_ARG when index is out of range. *name is owned by the comparison.
 * Thread-safety: any thread (read-only). */
MLXPORT_API mlxport_status mlxport_comparison_gate(const mlxport_comparison *c, size_t index, const char **name,
                                                   double *value, double *threshold, int *passed);

/** mlxport_comparison_json: the comparison document (both results, the comparison, the gates),
 * the format of comparisons/NAME_comparison.json and `mlxport eval --json`.
 * Returns: a string owned by the comparison, NULL on out-of-memory.
 * Thread-safety: any thread (read-only). */
MLXPORT_API const char *mlxport_comparison_json(const mlxport_comparison *c);

/** mlxport_comparison_free: releases a comparison (NULL is fine).
 * Thread-safety: any thread, once per comparison. */
MLXPORT_API void mlxport_comparison_free(mlxport_comparison *c);

/** mlxport_evaluate: the whole evaluation job of `mlxport eval --json` in one call: the dataset,
 * options->baseline (when set) and options->model on the same examples, comparison, gates, the
 * model card update (options->update_card).
 * json: receives the comparison document (library-allocated; free with mlxport_free).
 * all_passed: optional; receives 1 when every gate passed.
 * Errors: those of mlxport_evaluator_open and mlxport_evaluator_run; a failed gate is not an
 *   error (see *all_passed).
 * Thread-safety: any thread; runs each model in a child process unless options->in_process. */
MLXPORT_API mlxport_status mlxport_evaluate(const mlxport_eval_options *options, char **json, int *all_passed);

#ifdef __cplusplus
}
#endif
#endif /* MLXPORT_EVAL_H */
