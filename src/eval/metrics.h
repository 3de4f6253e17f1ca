/* Task metrics, bootstrap intervals, original-vs-converted comparison and latency percentiles.
 * Definitions match scikit-learn / scipy / numpy (checked to 1e-9 by tests/py/test_metrics.py);
 * see docs/metrics.md. All functions are pure (no I/O); NaN means "undefined" (e.g. Pearson of a
 * constant vector) and is written as JSON null by mp_sb_json_f64. */
#ifndef MP_EVAL_METRICS_H
#define MP_EVAL_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

/* Classification metrics over labels 0..k-1 (gold and pred values outside [0,k) are
 * MP_ERR_INVALID_ARG). Per-class precision/recall/F1 follow sklearn with labels=range(k) and
 * zero_division=0; macro = unweighted mean over all k classes. confusion[g*k + p] counts
 * examples with gold g predicted p (sklearn confusion_matrix layout: rows = true). */
typedef struct mp_cls_metrics {
  size_t n, k;
  double accuracy;
  double macro_precision, macro_recall, macro_f1;
  double *precision, *recall, *f1; /* k entries each */
  uint64_t *support;               /* k: number of gold examples per class */
  uint64_t *confusion;             /* k*k */
} mp_cls_metrics;
mp_status mp_cls_metrics_compute(const int *gold, const int *pred, size_t n, size_t k, mp_cls_metrics *out);
void mp_cls_metrics_free(mp_cls_metrics *m);

double mp_accuracy(const int *gold, const int *pred, size_t n); /* NaN when n == 0 */
double mp_macro_f1(const int *gold, const int *pred, size_t n, size_t k);

/* Pearson correlation (scipy.stats.pearsonr); NaN when n < 2 or a vector is constant. */
double mp_pearson(const double *x, const double *y, size_t n);
/* Spearman rho = Pearson of average ranks (scipy.stats.spearmanr, ties by average rank). */
double mp_spearman(const double *x, const double *y, size_t n);
/* 1-based average ranks (scipy.stats.rankdata method="average"); NaNs are not allowed. */
mp_status mp_rank_average(const double *x, size_t n, double *ranks);

/* Percentile with numpy's default "linear" interpolation (method 7): q in [0,100];
 * position h = (n-1) q/100, result x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]) over
 * the sorted values. NaN for n == 0. Does not modify x. */
double mp_percentile(const double *x, size_t n, double q);
/* Several at once (sorts one copy). */
mp_status mp_percentiles(const double *x, size_t n, const double *q, size_t nq, double *out);

typedef struct mp_latency_stats {
  double p50, p95, p99, mean, min, max;
  size_t n;
} mp_latency_stats;
mp_status mp_latency_summary(const double *ms, size_t n, mp_latency_stats *out);

/* Bootstrap percentile confidence interval of a statistic over n paired examples.
 * Resample b (b = 0..n_resamples-1) draws n indices idx[t] = mp_rng_next(rng) % n, t = 0..n-1,
 * from ONE mp_rng seeded with `seed` (draws continue across resamples), evaluates the statistic
 * on the resampled examples, and the interval is the numpy-linear percentiles
 * (100-level*100)/2 and 100-(100-level*100)/2 of the statistics that are not NaN.
 * Returns NaNs when n == 0 or every resample is NaN. Defaults used by eval: n_resamples 1000,
 * level 0.95, seed = the run's --seed. `stat` gets the resampled index list. */
typedef double (*mp_stat_fn)(const size_t *idx, size_t n, void *ctx);
typedef struct mp_ci {
  double lo, hi;
  size_t n_valid; /* resamples whose statistic was not NaN */
} mp_ci;
mp_status mp_bootstrap_ci(size_t n, mp_stat_fn stat, void *ctx, size_t n_resamples, double level, uint64_t seed,
                          mp_ci *out);
/* Ready-made statistics. */
typedef enum mp_cls_stat { MP_STAT_ACCURACY, MP_STAT_MACRO_F1 } mp_cls_stat;
mp_status mp_bootstrap_cls(const int *gold, const int *pred, size_t n, size_t k, mp_cls_stat which, size_t n_resamples,
                           double level, uint64_t seed, mp_ci *out);
typedef enum mp_corr_stat { MP_STAT_PEARSON, MP_STAT_SPEARMAN } mp_corr_stat;
mp_status mp_bootstrap_corr(const double *x, const double *y, size_t n, mp_corr_stat which, size_t n_resamples,
                            double level, uint64_t seed, mp_ci *out);

/* Original-vs-converted. */
/* Fraction of examples with a == b (NaN when n == 0). */
double mp_agreement(const int *a, const int *b, size_t n);
/* Mean over n rows of KL(P || Q) = sum_j p_j (log p_j - log q_j), natural log, where
 * P = softmax(logits_p[i]) (the ORIGINAL / baseline model) and Q = softmax(logits_q[i]) (the
 * converted one); k classes per row, row-major; log-softmax computed stably in double. */
double mp_mean_kl(const float *logits_p, const float *logits_q, size_t n, size_t k);
/* max_i |a_i - b_i| over n values (0 when n == 0; NaN if any input is NaN). */
double mp_max_abs_diff(const float *a, const float *b, size_t n);
/* argmax per row (first maximum wins, like numpy). */
void mp_argmax_rows(const float *logits, size_t n, size_t k, int *out);
#endif
