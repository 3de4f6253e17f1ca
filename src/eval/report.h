/* Evaluation outputs: JSON documents (field names following the original pipeline where they
 * made sense: accuracy, qpm, size_mb, tokens_per_sec, memory_avg_mb, memory_peak_mb,
 * latency_p50_ms, quality_gates ...), a Markdown summary and a self-contained HTML report. */
#ifndef MP_EVAL_REPORT_H
#define MP_EVAL_REPORT_H
#include "core/strbuf.h"
#include "eval/evaluate.h"

/* {"model": ..., "dataset": ..., "task": ..., "n": ..., "accuracy": ..., ...} */
void mp_report_result_json(mp_sb *sb, const char *name, const mp_eval_result *r, int with_predictions);
void mp_report_comparison_json(mp_sb *sb, const char *model_name, const char *dataset, int bits,
                               const mp_eval_result *base, const mp_eval_result *conv, const mp_comparison *cmp,
                               const mp_gate *gates, size_t n_gates, int all_passed);

/* One row of a run's summary (a model x dataset comparison). */
typedef struct mp_report_row {
  const char *model, *dataset;
  int bits;
  const char *source;  /* the original model (hf_name): the Pareto chart groups variants by it; may be NULL */
  const char *variant; /* q8g64, mxfp4, q4g64+mixed-..., auto0.01-...; may be NULL */
  const mp_eval_result *base, *conv; /* base may be NULL */
  mp_comparison cmp;
  mp_gate gates[4];
  size_t n_gates;
  int all_passed;
  const char *status; /* "ok", "gate failed", "error: ...", "skipped: ..." */
} mp_report_row;

void mp_report_markdown(mp_sb *sb, const char *title, const mp_report_row *rows, size_t n);
void mp_report_html(mp_sb *sb, const char *title, const mp_report_row *rows, size_t n);
#endif
