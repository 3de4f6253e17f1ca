/* Task metrics, bootstrap intervals, comparison metrics and percentiles (see metrics.h). */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "eval/dataset.h"

/* ---------------------------------------------------------------- classification */

mp_status mp_cls_metrics_compute(const int *gold, const int *pred, size_t n, size_t k, mp_cls_metrics *out) {
  memset(out, 0, sizeof *out);
  if (k == 0 || k > 65536) return mp_err(MP_ERR_INVALID_ARG, "metrics: number of classes %zu out of range", k);
  for (size_t i = 0; i < n; i++) {
    if (gold[i] < 0 || (size_t)gold[i] >= k)
      return mp_err(MP_ERR_INVALID_ARG, "metrics: gold label %d of example %zu outside 0..%zu", gold[i], i, k - 1);
    if (pred[i] < 0 || (size_t)pred[i] >= k)
      return mp_err(MP_ERR_INVALID_ARG, "metrics: predicted label %d of example %zu outside 0..%zu", pred[i], i, k - 1);
  }
  out->n = n;
  out->k = k;
  out->precision = calloc(k, sizeof(double));
  out->recall = calloc(k, sizeof(double));
  out->f1 = calloc(k, sizeof(double));
  out->support = calloc(k, sizeof(uint64_t));
  out->confusion = calloc(k * k, sizeof(uint64_t));
  if (!out->precision || !out->recall || !out->f1 || !out->support || !out->confusion) {
    mp_cls_metrics_free(out);
    return mp_err(MP_ERR_NOMEM, "metrics: out of memory for %zu classes", k);
  }
  uint64_t correct = 0;
  for (size_t i = 0; i < n; i++) {
    out->confusion[(size_t)gold[i] * k + (size_t)pred[i]]++;
    out->support[gold[i]]++;
    correct += gold[i] == pred[i];
  }
  out->accuracy = n ? (double)correct / (double)n : NAN;
  double sp = 0, sr = 0, sf = 0;
  for (size_t c = 0; c < k; c++) {
    uint64_t tp = out->confusion[c * k + c], pred_c = 0;
    for (size_t g = 0; g < k; g++)
      pred_c += out->confusion[g * k + c];
    double p = pred_c ? (double)tp / (double)pred_c : 0.0;
    double r = out->support[c] ? (double)tp / (double)out->support[c] : 0.0;
    /* sklearn: F1 = 2 tp / (2 tp + fp + fn), 0 when the denominator is 0 */
    uint64_t denom = 2 * tp + (pred_c - tp) + (out->support[c] - tp);
    double f = denom ? 2.0 * (double)tp / (double)denom : 0.0;
    out->precision[c] = p;
    out->recall[c] = r;
    out->f1[c] = f;
    sp += p;
    sr += r;
    sf += f;
  }
  out->macro_precision = sp / (double)k;
  out->macro_recall = sr / (double)k;
  out->macro_f1 = sf / (double)k;
  return MP_OK;
}

void mp_cls_metrics_free(mp_cls_metrics *m) {
  if (!m) return;
  free(m->precision);
  free(m->recall);
  free(m->f1);
  free(m->support);
  free(m->confusion);
  memset(m, 0, sizeof *m);
}

double mp_accuracy(const int *gold, const int *pred, size_t n) {
  if (n == 0) return NAN;
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += gold[i] == pred[i];
  return (double)c / (double)n;
}

double mp_macro_f1(const int *gold, const int *pred, size_t n, size_t k) {
  mp_cls_metrics m;
  if (mp_cls_metrics_compute(gold, pred, n, k, &m) != MP_OK) return NAN;
  double f = m.macro_f1;
  mp_cls_metrics_free(&m);
  return f;
}

/* ---------------------------------------------------------------- correlation */

double mp_pearson(const double *x, const double *y, size_t n) {
  if (n < 2) return NAN;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= (double)n;
  my /= (double)n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; i++) {
    double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return NAN;
  double r = sxy / (sqrt(sxx) * sqrt(syy));
  if (r > 1) r = 1;
  if (r < -1) r = -1;
  return r;
}

typedef struct {
  double v;
  size_t i;
} mp_vi;

static int cmp_vi(const void *a, const void *b) {
  const mp_vi *x = a, *y = b;
  if (x->v < y->v) return -1;
  if (x->v > y->v) return 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

mp_status mp_rank_average(const double *x, size_t n, double *ranks) {
  if (n == 0) return MP_OK;
  mp_vi *v = malloc(n * sizeof *v);
  if (!v) return mp_err(MP_ERR_NOMEM, "metrics: out of memory ranking %zu values", n);
  for (size_t i = 0; i < n; i++) {
    if (isnan(x[i])) {
      free(v);
      return mp_err(MP_ERR_INVALID_ARG, "metrics: NaN at position %zu cannot be ranked", i);
    }
    v[i].v = x[i];
    v[i].i = i;
  }
  qsort(v, n, sizeof *v, cmp_vi);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && v[j + 1].v == v[i].v)
      j++;
    double r = ((double)(i + 1) + (double)(j + 1)) / 2.0;
    for (size_t t = i; t <= j; t++)
      ranks[v[t].i] = r;
    i = j + 1;
  }
  free(v);
  return MP_OK;
}

double mp_spearman(const double *x, const double *y, size_t n) {
  if (n < 2) return NAN;
  double *rx = malloc(n * sizeof(double)), *ry = malloc(n * sizeof(double));
  double r = NAN;
  if (rx && ry && mp_rank_average(x, n, rx) == MP_OK && mp_rank_average(y, n, ry) == MP_OK) r = mp_pearson(rx, ry, n);
  free(rx);
  free(ry);
  return r;
}

/* ---------------------------------------------------------------- percentiles */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct_sorted(const double *s, size_t n, double q) {
  if (n == 0 || isnan(q)) return NAN;
  if (q <= 0) return s[0];
  if (q >= 100) return s[n - 1];
  double h = (double)(n - 1) * (q / 100.0);
  double fl = floor(h);
  size_t lo = (size_t)fl;
  if (lo >= n - 1) return s[n - 1];
  double g = h - fl;
  /* numpy's _lerp: a + (b - a) * t, switched to b - (b - a) * (1 - t) when t >= 0.5 */
  double a = s[lo], b = s[lo + 1], d = b - a;
  return g >= 0.5 ? b - d * (1.0 - g) : a + d * g;
}

mp_status mp_percentiles(const double *x, size_t n, const double *q, size_t nq, double *out) {
  if (n == 0) {
    for (size_t i = 0; i < nq; i++)
      out[i] = NAN;
    return MP_OK;
  }
  double *s = malloc(n * sizeof(double));
  if (!s) return mp_err(MP_ERR_NOMEM, "metrics: out of memory sorting %zu values", n);
  memcpy(s, x, n * sizeof(double));
  qsort(s, n, sizeof(double), cmp_double);
  for (size_t i = 0; i < nq; i++)
    out[i] = pct_sorted(s, n, q[i]);
  free(s);
  return MP_OK;
}

double mp_percentile(const double *x, size_t n, double q) {
  double r = NAN;
  if (mp_percentiles(x, n, &q, 1, &r) != MP_OK) return NAN;
  return r;
}

mp_status mp_latency_summary(const double *ms, size_t n, mp_latency_stats *out) {
  memset(out, 0, sizeof *out);
  out->n = n;
  double q[3] = {50, 95, 99}, r[3];
  MP_TRY(mp_percentiles(ms, n, q, 3, r));
  out->p50 = r[0];
  out->p95 = r[1];
  out->p99 = r[2];
  if (n == 0) {
    out->mean = out->min = out->max = NAN;
    return MP_OK;
  }
  double s = 0, mn = ms[0], mx = ms[0];
  for (size_t i = 0; i < n; i++) {
    s += ms[i];
    if (ms[i] < mn) mn = ms[i];
    if (ms[i] > mx) mx = ms[i];
  }
  out->mean = s / (double)n;
  out->min = mn;
  out->max = mx;
  return MP_OK;
}

/* ---------------------------------------------------------------- bootstrap */

mp_status mp_bootstrap_ci(size_t n, mp_stat_fn stat, void *ctx, size_t n_resamples, double level, uint64_t seed,
                          mp_ci *out) {
  out->lo = out->hi = NAN;
  out->n_valid = 0;
  if (!(level > 0 && level < 1)) return mp_err(MP_ERR_INVALID_ARG, "bootstrap: level %g must be in (0, 1)", level);
  if (n == 0 || n_resamples == 0) return MP_OK;
  size_t *idx = malloc(n * sizeof(size_t));
  double *vals = malloc(n_resamples * sizeof(double));
  if (!idx || !vals) {
    free(idx);
    free(vals);
    return mp_err(MP_ERR_NOMEM, "bootstrap: out of memory (%zu examples, %zu resamples)", n, n_resamples);
  }
  mp_rng rng;
  mp_rng_seed(&rng, seed);
  size_t nv = 0;
  for (size_t b = 0; b < n_resamples; b++) {
    for (size_t t = 0; t < n; t++)
      idx[t] = (size_t)(mp_rng_next(&rng) % (uint64_t)n);
    double v = stat(idx, n, ctx);
    if (!isnan(v)) vals[nv++] = v;
  }
  out->n_valid = nv;
  if (nv) {
    double alpha = (1.0 - level) * 100.0;
    double q[2] = {alpha / 2.0, 100.0 - alpha / 2.0}, r[2];
    mp_status s = mp_percentiles(vals, nv, q, 2, r);
    if (s != MP_OK) {
      free(idx);
      free(vals);
      return s;
    }
    out->lo = r[0];
    out->hi = r[1];
  }
  free(idx);
  free(vals);
  return MP_OK;
}

typedef struct {
  const int *gold, *pred;
  size_t k;
  mp_cls_stat which;
  int *g, *p; /* scratch, n entries */
} cls_ctx;

static double cls_stat(const size_t *idx, size_t n, void *vctx) {
  cls_ctx *c = vctx;
  for (size_t t = 0; t < n; t++) {
    c->g[t] = c->gold[idx[t]];
    c->p[t] = c->pred[idx[t]];
  }
  if (c->which == MP_STAT_ACCURACY) return mp_accuracy(c->g, c->p, n);
  return mp_macro_f1(c->g, c->p, n, c->k);
}

mp_status mp_bootstrap_cls(const int *gold, const int *pred, size_t n, size_t k, mp_cls_stat which, size_t n_resamples,
                           double level, uint64_t seed, mp_ci *out) {
  cls_ctx c = {gold, pred, k, which, NULL, NULL};
  c.g = malloc((n ? n : 1) * sizeof(int));
  c.p = malloc((n ? n : 1) * sizeof(int));
  if (!c.g || !c.p) {
    free(c.g);
    free(c.p);
    return mp_err(MP_ERR_NOMEM, "bootstrap: out of memory");
  }
  mp_status s = mp_bootstrap_ci(n, cls_stat, &c, n_resamples, level, seed, out);
  free(c.g);
  free(c.p);
  return s;
}

typedef struct {
  const double *x, *y;
  mp_corr_stat which;
  double *a, *b;
  /* Spearman: the examples sorted once by x and by y; per resample, the multiplicity of each
   * example gives the average ranks of its copies in O(n) (same value as ranking the expanded
   * resample, without sorting it) */
  size_t *ox, *oy, *cnt;
  double *rx, *ry;
} corr_ctx;

/* average ranks of the resampled copies, per original example (only where cnt > 0); returns
 * the number of distinct values drawn */
static size_t resample_ranks(const double *v, const size_t *order, const size_t *cnt, size_t n, double *r) {
  size_t pos = 0, groups = 0, i = 0;
  while (i < n) {
    size_t j = i, c = 0;
    while (j < n && v[order[j]] == v[order[i]])
      c += cnt[order[j++]];
    if (c) {
      double avg = (double)pos + ((double)c + 1.0) / 2.0;
      for (size_t t = i; t < j; t++)
        r[order[t]] = avg;
      pos += c;
      groups++;
    }
    i = j;
  }
  return groups;
}

static double corr_stat(const size_t *idx, size_t n, void *vctx) {
  corr_ctx *c = vctx;
  if (c->which == MP_STAT_SPEARMAN) {
    memset(c->cnt, 0, n * sizeof(size_t));
    for (size_t t = 0; t < n; t++)
      c->cnt[idx[t]]++;
    size_t gx = resample_ranks(c->x, c->ox, c->cnt, n, c->rx);
    size_t gy = resample_ranks(c->y, c->oy, c->cnt, n, c->ry);
    if (n < 2 || gx < 2 || gy < 2) return NAN;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++)
      if (c->cnt[i]) {
        mx += (double)c->cnt[i] * c->rx[i];
        my += (double)c->cnt[i] * c->ry[i];
      }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++)
      if (c->cnt[i]) {
        double w = (double)c->cnt[i], dx = c->rx[i] - mx, dy = c->ry[i] - my;
        sxy += w * dx * dy;
        sxx += w * dx * dx;
        syy += w * dy * dy;
      }
    if (sxx == 0 || syy == 0) return NAN;
    double r = sxy / (sqrt(sxx) * sqrt(syy));
    return r > 1 ? 1 : r < -1 ? -1 : r;
  }
  for (size_t t = 0; t < n; t++) {
    c->a[t] = c->x[idx[t]];
    c->b[t] = c->y[idx[t]];
  }
  return mp_pearson(c->a, c->b, n);
}

/* indices 0..n-1 ordered by v (ties by index); thread-safe (no global sort key) */
static mp_status order_by(const double *v, size_t n, size_t *order) {
  mp_vi *t = malloc((n ? n : 1) * sizeof *t);
  if (!t) return mp_err(MP_ERR_NOMEM, "bootstrap: out of memory");
  for (size_t i = 0; i < n; i++) {
    t[i].v = v[i];
    t[i].i = i;
  }
  qsort(t, n, sizeof *t, cmp_vi);
  for (size_t i = 0; i < n; i++)
    order[i] = t[i].i;
  free(t);
  return MP_OK;
}

mp_status mp_bootstrap_corr(const double *x, const double *y, size_t n, mp_corr_stat which, size_t n_resamples,
                            double level, uint64_t seed, mp_ci *out) {
  corr_ctx c;
  memset(&c, 0, sizeof c);
  c.x = x;
  c.y = y;
  c.which = which;
  size_t m = n ? n : 1;
  mp_status s = MP_OK;
  if (which == MP_STAT_SPEARMAN) {
    for (size_t i = 0; i < n; i++)
      if (isnan(x[i]) || isnan(y[i])) return mp_err(MP_ERR_INVALID_ARG, "bootstrap: NaN at position %zu", i);
    c.ox = malloc(m * sizeof(size_t));
    c.oy = malloc(m * sizeof(size_t));
    c.cnt = malloc(m * sizeof(size_t));
    c.rx = malloc(m * sizeof(double));
    c.ry = malloc(m * sizeof(double));
    if (!c.ox || !c.oy || !c.cnt || !c.rx || !c.ry) {
      s = mp_err(MP_ERR_NOMEM, "bootstrap: out of memory");
      goto done;
    }
    if ((s = order_by(x, n, c.ox)) != MP_OK || (s = order_by(y, n, c.oy)) != MP_OK) goto done;
  } else {
    c.a = malloc(m * sizeof(double));
    c.b = malloc(m * sizeof(double));
    if (!c.a || !c.b) {
      s = mp_err(MP_ERR_NOMEM, "bootstrap: out of memory");
      goto done;
    }
  }
  s = mp_bootstrap_ci(n, corr_stat, &c, n_resamples, level, seed, out);
done:
  free(c.a);
  free(c.b);
  free(c.ox);
  free(c.oy);
  free(c.cnt);
  free(c.rx);
  free(c.ry);
  return s;
}

/* ---------------------------------------------------------------- comparison */

double mp_agreement(const int *a, const int *b, size_t n) { return mp_accuracy(a, b, n); }

static void log_softmax(const float *z, size_t k, double *out) {
  double m = -INFINITY;
  for (size_t j = 0; j < k; j++)
    if ((double)z[j] > m) m = z[j];
  double s = 0;
  for (size_t j = 0; j < k; j++)
    s += exp((double)z[j] - m);
  double lse = m + log(s);
  for (size_t j = 0; j < k; j++)
    out[j] = (double)z[j] - lse;
}

double mp_mean_kl(const float *logits_p, const float *logits_q, size_t n, size_t k) {
  if (n == 0 || k == 0) return NAN;
  double *lp = malloc(k * sizeof(double)), *lq = malloc(k * sizeof(double));
  if (!lp || !lq) {
    free(lp);
    free(lq);
    return NAN;
  }
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    log_softmax(logits_p + i * k, k, lp);
    log_softmax(logits_q + i * k, k, lq);
    double kl = 0;
    for (size_t j = 0; j < k; j++) {
      double p = exp(lp[j]);
      if (p > 0) kl += p * (lp[j] - lq[j]);
    }
    total += kl;
  }
  free(lp);
  free(lq);
  return total / (double)n;
}

double mp_max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (isnan(d)) return NAN;
    if (d > m) m = d;
  }
  return m;
}

void mp_argmax_rows(const float *logits, size_t n, size_t k, int *out) {
  for (size_t i = 0; i < n; i++) {
    const float *r = logits + i * k;
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
      if (r[j] > r[best]) best = j;
    out[i] = (int)best;
  }
}
