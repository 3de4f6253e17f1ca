/* Evaluation of one model on one dataset: the task adapter (NLI, binary NLI, zero-shot,
 * text classification, semantic similarity), task metrics with bootstrap intervals and the six
 * performance metrics, measured honestly (load time apart, warm-up excluded, memory sampled
 * by a thread, latency at batch size 1). Each model runs in a child process so its peak RSS
 * is its own. */
#ifndef MP_EVAL_EVALUATE_H
#define MP_EVAL_EVALUATE_H
#include <stddef.h>
#include <stdint.h>

#include "eval/dataset.h"
#include "eval/metrics.h"
#include "mlxport.h"
#include "tokenizer/tokenizer.h"

typedef enum mp_task {
  MP_TASK_AUTO = 0,
  MP_TASK_NLI,        /* premise/hypothesis through an NLI classifier (binary models fold) */
  MP_TASK_ZERO_SHOT,  /* dataset label names as candidate labels through an NLI model */
  MP_TASK_TEXT_CLS,   /* the model's own head, labels matched by name */
  MP_TASK_SIMILARITY, /* cosine of sentence embeddings vs gold scores */
} mp_task;
const char *mp_task_name(mp_task t);
mp_status mp_task_parse(const char *s, mp_task *out);

typedef struct mp_eval_options {
  mp_task task;
  size_t batch_size; /* default 32 */
  size_t max_length; /* 0 = model default */
  mp_trunc_strategy truncation;
  int threads;             /* 0 = all cores */
  const char *template_;   /* zero-shot hypothesis template (default "This example is {}.") */
  size_t latency_requests; /* batch-1 requests timed (default 100; 0 = skip latency) */
  size_t warmup;           /* untimed requests before each timed phase (default 3) */
  size_t bootstrap;        /* bootstrap resamples (default 1000) */
  uint64_t seed;           /* bootstrap seed */
  int in_process;          /* 1 = do not fork (tests, debugging) */
  /* Compute mode (model/model.h mp_compute) for a model with MLX-quantized layers:
   * -1 (default): task metrics from the faithful mode (what MLX computes), speed, latency and
   *     memory from the fast mode (integer kernels), plus the fast mode's metric and agreement;
   * MP_COMPUTE_FAST / MP_COMPUTE_FAITHFUL: everything from that one mode.
   * Float models run once (the modes are the same for them). */
  int compute;
  /* Device (model/model.h mp_model_options.device): NULL / "cpu", "cuda", "cuda:N". */
  const char *device;
  mp_dtype device_dtype; /* --device-dtype (0 = float16) */
  /* Optional weight replacement passed to mp_model_open (model/model.h mp_model_options; the
   * --q-auto recipe search): NULL for none. */
  const float *(*weight_hook)(void *ctx, const char *module, int64_t out, int64_t in, mp_dtype dt, const void *data);
  void *weight_hook_ctx;
} mp_eval_options;
void mp_eval_options_init(mp_eval_options *o);

typedef struct mp_eval_result {
  char model[1024];     /* resolved path */
  char dataset[256];    /* dataset name */
  char data_file[1024]; /* the file the examples came from */
  int demo_data;        /* 1: the embedded demo set (data/demo), not the real benchmark */
  mp_task task;
  size_t n;            /* examples evaluated */
  size_t k;            /* classes (classification) / 0 for similarity */
  char labels[16][64]; /* label names of the evaluation space (k of them) */
  /* per-example outputs (malloc'd) */
  int *gold, *pred; /* classification: [n] */
  float *logits;    /* classification: [n, kc] raw scores compared across models: the model's
                       logits (NLI, text classification) or the entailment logit of each
                       candidate label (zero-shot) */
  size_t kc;        /* columns of logits */
  double *sim;      /* similarity: [n] cosine */
  /* task metrics */
  double accuracy, macro_f1;
  mp_ci accuracy_ci, macro_f1_ci;
  double f1_per_class[16];
  uint64_t confusion[16 * 16];
  double pearson, spearman;
  mp_ci pearson_ci, spearman_ci;
  /* performance */
  double load_s, run_s, qpm, tokens_per_sec;
  uint64_t tokens;
  double weights_mb, folder_mb;
  double mem_avg_mb, mem_peak_mb, rss_peak_os_mb;
  mp_latency_stats latency_ms;
  int threads;
  char cpu[128];
  char isa[16];
  char device[128];      /* "cpu" or the GPU the model ran on ("cuda:0 NVIDIA H200, float16") */
  double device_peak_mb; /* on a GPU: the largest device memory one model held (MiB); 0 on the CPU */
  /* where the figures come from: "faithful", "fast" or "float" (a model without quantized
   * layers). metric_compute: task metrics and per-example outputs; perf_compute: throughput,
   * latency, memory. */
  char metric_compute[16], perf_compute[16];
  int int_layers;           /* layers on the integer kernels in the fast pass (0: none) */
  int bf16_layers;          /* F16/BF16 layers on the bf16 tiles in the fast pass (0: none) */
  int fast_pass;            /* 1: a fast pass ran beside the faithful one (the three below) */
  double fast_metric;       /* main metric in fast mode */
  double fast_agreement;    /* classification: predictions equal to the faithful ones (fraction) */
  double fast_max_abs_diff; /* max |Δ logit| (classification) or |Δ cosine| (similarity) */
} mp_eval_result;

/* Runs the model on the dataset (already loaded and sampled). */
mp_status mp_eval_run(const char *model_ref, const mp_dataset *ds, const mp_eval_options *o, mp_eval_result *out);
void mp_eval_result_free(mp_eval_result *r);
/* Main metric of a result: accuracy (classification) or Spearman (similarity). */
double mp_eval_main_metric(const mp_eval_result *r);
const char *mp_eval_main_metric_name(const mp_eval_result *r);

/* Original-vs-converted comparison on identical examples. */
typedef struct mp_comparison {
  double metric_drop;        /* baseline main metric - converted main metric */
  double speedup_throughput; /* converted QPM / baseline QPM */
  double speedup_p50;        /* baseline p50 / converted p50 */
  double size_ratio;         /* converted weights MB / baseline weights MB */
  double agreement;          /* classification: prediction agreement */
  double mean_kl;            /* classification: mean KL(baseline || converted) */
  double max_abs_logit_diff; /* classification: max |Δ score/logit|; similarity: max |Δcos| */
} mp_comparison;
mp_status mp_eval_compare(const mp_eval_result *baseline, const mp_eval_result *converted, mp_comparison *out);

/* Quality gates. Unset thresholds (NaN) are skipped. */
typedef struct mp_gate {
  char name[32];
  double value, threshold;
  int passed;
  char rule[64];
} mp_gate;
typedef struct mp_gate_options {
  double max_accuracy_drop; /* NaN = skip */
  double min_speedup;       /* NaN = skip (default 1.2) */
  double target_size_mb;    /* NaN = skip; passes when size <= 1.1 x target */
} mp_gate_options;
void mp_gate_options_init(mp_gate_options *g);
/* Fills gates[] (up to 3) and returns how many; *all_passed set. */
size_t mp_eval_gates(const mp_eval_result *baseline, const mp_eval_result *converted, const mp_comparison *cmp,
                     const mp_gate_options *g, mp_gate *gates, int *all_passed);
#endif
