/* metrics_check: reads one command and its numbers on stdin, prints the result of the
 * src/eval/metrics.c functions as JSON on stdout (used by tests/py/test_metrics.py).
 *
 *   cls K N gold[N] pred[N]                   -> classification metrics
 *   corr N x[N] y[N]                          -> pearson, spearman, ranks of x and y
 *   pct NQ q[NQ] N x[N]                       -> percentiles (numpy linear)
 *   latency N x[N]                            -> p50/p95/p99/mean/min/max
 *   boot_cls K N B LEVEL SEED WHICH gold pred -> bootstrap CI (WHICH 0 accuracy, 1 macro F1)
 *   boot_corr N B LEVEL SEED WHICH x y        -> bootstrap CI (WHICH 0 pearson, 1 spearman)
 *   cmp N K p[N*K] q[N*K]                     -> mean KL(P||Q), max |dlogit|, argmax agreement
 *   sample N MAX SEED                         -> sampled indices
 *   rng SEED COUNT                            -> first COUNT outputs of mp_rng
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "eval/dataset.h"
#include "eval/metrics.h"

static double rd(void) {
  double v;
  if (scanf("%lf", &v) != 1) {
    fprintf(stderr, "metrics_check: expected a number\n");
    exit(2);
  }
  return v;
}
static size_t rz(void) { return (size_t)rd(); }
static uint64_t ru64(void) {
  uint64_t v;
  if (scanf("%" SCNu64, &v) != 1) {
    fprintf(stderr, "metrics_check: expected an unsigned integer\n");
    exit(2);
  }
  return v;
}

static void num(mp_sb *sb, const char *key, double v) {
  mp_sb_printf(sb, "\"%s\":", key);
  mp_sb_json_f64(sb, v);
  mp_sb_putc(sb, ',');
}
static void arr(mp_sb *sb, const char *key, const double *v, size_t n) {
  mp_sb_printf(sb, "\"%s\":[", key);
  for (size_t i = 0; i < n; i++) {
    if (i) mp_sb_putc(sb, ',');
    mp_sb_json_f64(sb, v[i]);
  }
  mp_sb_puts(sb, "],");
}
static int *read_ints(size_t n) {
  int *v = malloc((n ? n : 1) * sizeof(int));
  for (size_t i = 0; i < n; i++)
    v[i] = (int)rd();
  return v;
}
static double *read_doubles(size_t n) {
  double *v = malloc((n ? n : 1) * sizeof(double));
  for (size_t i = 0; i < n; i++)
    v[i] = rd();
  return v;
}
static void finish(mp_sb *sb) {
  if (sb->len && sb->buf[sb->len - 1] == ',') sb->buf[--sb->len] = 0;
  mp_sb_puts(sb, "}\n");
  fputs(sb->buf, stdout);
  mp_sb_free(sb);
}

int main(void) {
  char cmd[32];
  if (scanf("%31s", cmd) != 1) return 2;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_putc(&sb, '{');
  if (strcmp(cmd, "cls") == 0) {
    size_t k = rz(), n = rz();
    int *g = read_ints(n), *p = read_ints(n);
    mp_cls_metrics m;
    if (mp_cls_metrics_compute(g, p, n, k, &m) != MP_OK) {
      fprintf(stderr, "%s\n", mp_last_error());
      free(g);
      free(p);
      mp_sb_free(&sb);
      return 3;
    }
    num(&sb, "accuracy", m.accuracy);
    num(&sb, "macro_precision", m.macro_precision);
    num(&sb, "macro_recall", m.macro_recall);
    num(&sb, "macro_f1", m.macro_f1);
    arr(&sb, "precision", m.precision, k);
    arr(&sb, "recall", m.recall, k);
    arr(&sb, "f1", m.f1, k);
    mp_sb_puts(&sb, "\"confusion\":[");
    for (size_t i = 0; i < k * k; i++)
      mp_sb_printf(&sb, "%s%" PRIu64, i ? "," : "", m.confusion[i]);
    mp_sb_puts(&sb, "],");
    mp_cls_metrics_free(&m);
    free(g);
    free(p);
  } else if (strcmp(cmd, "corr") == 0) {
    size_t n = rz();
    double *x = read_doubles(n), *y = read_doubles(n);
    double *rx = malloc((n ? n : 1) * sizeof(double)), *ry = malloc((n ? n : 1) * sizeof(double));
    mp_rank_average(x, n, rx);
    mp_rank_average(y, n, ry);
    num(&sb, "pearson", mp_pearson(x, y, n));
    num(&sb, "spearman", mp_spearman(x, y, n));
    arr(&sb, "rank_x", rx, n);
    arr(&sb, "rank_y", ry, n);
    free(x);
    free(y);
    free(rx);
    free(ry);
  } else if (strcmp(cmd, "pct") == 0) {
    size_t nq = rz();
    double *q = read_doubles(nq);
    size_t n = rz();
    double *x = read_doubles(n), *out = malloc((nq ? nq : 1) * sizeof(double));
    mp_percentiles(x, n, q, nq, out);
    arr(&sb, "percentiles", out, nq);
    free(q);
    free(x);
    free(out);
  } else if (strcmp(cmd, "latency") == 0) {
    size_t n = rz();
    double *x = read_doubles(n);
    mp_latency_stats s;
    mp_latency_summary(x, n, &s);
    num(&sb, "p50", s.p50);
    num(&sb, "p95", s.p95);
    num(&sb, "p99", s.p99);
    num(&sb, "mean", s.mean);
    num(&sb, "min", s.min);
    num(&sb, "max", s.max);
    free(x);
  } else if (strcmp(cmd, "boot_cls") == 0) {
    size_t k = rz(), n = rz(), b = rz();
    double level = rd();
    uint64_t seed = ru64();
    int which = (int)rd();
    int *g = read_ints(n), *p = read_ints(n);
    mp_ci ci;
    if (mp_bootstrap_cls(g, p, n, k, which ? MP_STAT_MACRO_F1 : MP_STAT_ACCURACY, b, level, seed, &ci) != MP_OK) {
      fprintf(stderr, "%s\n", mp_last_error());
      return 3;
    }
    num(&sb, "lo", ci.lo);
    num(&sb, "hi", ci.hi);
    num(&sb, "n_valid", (double)ci.n_valid);
    free(g);
    free(p);
  } else if (strcmp(cmd, "boot_corr") == 0) {
    size_t n = rz(), b = rz();
    double level = rd();
    uint64_t seed = ru64();
    int which = (int)rd();
    double *x = read_doubles(n), *y = read_doubles(n);
    mp_ci ci;
    if (mp_bootstrap_corr(x, y, n, which ? MP_STAT_SPEARMAN : MP_STAT_PEARSON, b, level, seed, &ci) != MP_OK) {
      fprintf(stderr, "%s\n", mp_last_error());
      return 3;
    }
    num(&sb, "lo", ci.lo);
    num(&sb, "hi", ci.hi);
    num(&sb, "n_valid", (double)ci.n_valid);
    free(x);
    free(y);
  } else if (strcmp(cmd, "cmp") == 0) {
    size_t n = rz(), k = rz();
    size_t nk = (n && k) ? n * k : 1;
    float *p = malloc(nk * sizeof(float)), *q = malloc(nk * sizeof(float));
    for (size_t i = 0; i < n * k; i++)
      p[i] = (float)rd();
    for (size_t i = 0; i < n * k; i++)
      q[i] = (float)rd();
    int *ap = malloc((n ? n : 1) * sizeof(int)), *aq = malloc((n ? n : 1) * sizeof(int));
    mp_argmax_rows(p, n, k, ap);
    mp_argmax_rows(q, n, k, aq);
    num(&sb, "mean_kl", mp_mean_kl(p, q, n, k));
    num(&sb, "max_abs_diff", mp_max_abs_diff(p, q, n * k));
    num(&sb, "agreement", mp_agreement(ap, aq, n));
    mp_sb_puts(&sb, "\"argmax_p\":[");
    for (size_t i = 0; i < n; i++)
      mp_sb_printf(&sb, "%s%d", i ? "," : "", ap[i]);
    mp_sb_puts(&sb, "],");
    free(p);
    free(q);
    free(ap);
    free(aq);
  } else if (strcmp(cmd, "sample") == 0) {
    size_t n = rz(), mx = rz();
    uint64_t seed = ru64();
    size_t k = (mx == 0 || mx > n) ? n : mx;
    size_t *idx = malloc((k ? k : 1) * sizeof(size_t));
    mp_sample_indices(n, mx, seed, idx);
    mp_sb_puts(&sb, "\"indices\":[");
    for (size_t i = 0; i < k; i++)
      mp_sb_printf(&sb, "%s%zu", i ? "," : "", idx[i]);
    mp_sb_puts(&sb, "],");
    free(idx);
  } else if (strcmp(cmd, "rng") == 0) {
    uint64_t seed = ru64();
    size_t count = rz();
    mp_rng r;
    mp_rng_seed(&r, seed);
    mp_sb_puts(&sb, "\"values\":[");
    for (size_t i = 0; i < count; i++)
      mp_sb_printf(&sb, "%s%" PRIu64, i ? "," : "", mp_rng_next(&r));
    mp_sb_puts(&sb, "],");
  } else {
    fprintf(stderr, "metrics_check: unknown command '%s'\n", cmd);
    return 2;
  }
  finish(&sb);
  return 0;
}
