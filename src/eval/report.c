/* Evaluation reports (see report.h): JSON documents of results and comparisons, the Markdown
 * summary and the self-contained HTML report. */
#include "eval/report.h"

#include <math.h>
#include <string.h>

static void kv_num(mp_sb *sb, const char *k, double v, int *first) {
  mp_sb_printf(sb, "%s\"%s\":", *first ? "" : ",", k);
  mp_sb_json_f64(sb, v);
  *first = 0;
}
static void kv_str(mp_sb *sb, const char *k, const char *v, int *first) {
  mp_sb_printf(sb, "%s\"%s\":", *first ? "" : ",", k);
  if (v)
    mp_sb_json_str(sb, v, strlen(v));
  else
    mp_sb_puts(sb, "null");
  *first = 0;
}
static void ci_json(mp_sb *sb, const char *k, mp_ci ci, int *first) {
  mp_sb_printf(sb, "%s\"%s\":[", *first ? "" : ",", k);
  mp_sb_json_f64(sb, ci.lo);
  mp_sb_putc(sb, ',');
  mp_sb_json_f64(sb, ci.hi);
  mp_sb_putc(sb, ']');
  *first = 0;
}

void mp_report_result_json(mp_sb *sb, const char *name, const mp_eval_result *r, int with_predictions) {
  int f = 1;
  mp_sb_putc(sb, '{');
  kv_str(sb, "name", name, &f);
  kv_str(sb, "model_path", r->model, &f);
  kv_str(sb, "dataset", r->dataset, &f);
  kv_str(sb, "data_file", r->data_file, &f);
  mp_sb_printf(sb, ",\"demo_data\":%s", r->demo_data ? "true" : "false");
  kv_str(sb, "task", mp_task_name(r->task), &f);
  kv_num(sb, "n_examples", (double)r->n, &f);
  if (r->task == MP_TASK_SIMILARITY) {
    kv_num(sb, "pearson", r->pearson, &f);
    kv_num(sb, "spearman", r->spearman, &f);
    ci_json(sb, "pearson_ci95", r->pearson_ci, &f);
    ci_json(sb, "spearman_ci95", r->spearman_ci, &f);
    kv_num(sb, "accuracy", r->spearman, &f); /* the task's main metric under the original's key */
  } else {
    kv_num(sb, "accuracy", r->accuracy, &f);
    ci_json(sb, "accuracy_ci95", r->accuracy_ci, &f);
    kv_num(sb, "macro_f1", r->macro_f1, &f);
    ci_json(sb, "macro_f1_ci95", r->macro_f1_ci, &f);
    mp_sb_puts(sb, ",\"labels\":[");
    for (size_t j = 0; j < r->k && j < 16; j++) {
      if (j) mp_sb_putc(sb, ',');
      mp_sb_json_str(sb, r->labels[j], strlen(r->labels[j]));
    }
    mp_sb_puts(sb, "],\"f1_per_class\":{");
    for (size_t j = 0; j < r->k && j < 16; j++) {
      if (j) mp_sb_putc(sb, ',');
      mp_sb_json_str(sb, r->labels[j], strlen(r->labels[j]));
      mp_sb_putc(sb, ':');
      mp_sb_json_f64(sb, r->f1_per_class[j]);
    }
    mp_sb_puts(sb, "},\"confusion_matrix\":[");
    for (size_t g = 0; g < r->k && g < 16; g++) {
      mp_sb_puts(sb, g ? ",[" : "[");
      for (size_t q = 0; q < r->k && q < 16; q++)
        mp_sb_printf(sb, q ? ",%llu" : "%llu", (unsigned long long)r->confusion[g * 16 + q]);
      mp_sb_putc(sb, ']');
    }
    mp_sb_putc(sb, ']');
  }
  kv_num(sb, "qpm", r->qpm, &f);
  kv_num(sb, "size_mb", r->weights_mb, &f);
  kv_num(sb, "folder_size_mb", r->folder_mb, &f);
  kv_num(sb, "tokens_per_sec", r->tokens_per_sec, &f);
  kv_num(sb, "tokens", (double)r->tokens, &f);
  kv_num(sb, "memory_avg_mb", r->mem_avg_mb, &f);
  kv_num(sb, "memory_peak_mb", r->mem_peak_mb, &f);
  kv_num(sb, "memory_peak_os_mb", r->rss_peak_os_mb, &f);
  kv_num(sb, "latency_p50_ms", r->latency_ms.p50, &f);
  kv_num(sb, "latency_p95_ms", r->latency_ms.p95, &f);
  kv_num(sb, "latency_p99_ms", r->latency_ms.p99, &f);
  kv_num(sb, "latency_mean_ms", r->latency_ms.mean, &f);
  kv_num(sb, "latency_requests", (double)r->latency_ms.n, &f);
  kv_num(sb, "load_time_s", r->load_s, &f);
  kv_num(sb, "run_time_s", r->run_s, &f);
  kv_num(sb, "threads", r->threads, &f);
  kv_str(sb, "cpu", r->cpu, &f);
  kv_str(sb, "isa", r->isa, &f);
  kv_str(sb, "device", r->device, &f);
  if (r->device_peak_mb > 0) kv_num(sb, "device_peak_mb", r->device_peak_mb, &f);
  kv_str(sb, "metric_compute", r->metric_compute, &f);
  kv_str(sb, "perf_compute", r->perf_compute, &f);
  kv_num(sb, "integer_layers", r->int_layers, &f);
  kv_num(sb, "bf16_tile_layers", r->bf16_layers, &f);
  if (r->fast_pass) {
    mp_sb_puts(sb, ",\"fast_mode\":{");
    int g = 1;
    kv_num(sb, r->task == MP_TASK_SIMILARITY ? "spearman" : "accuracy", r->fast_metric, &g);
    if (r->task != MP_TASK_SIMILARITY) kv_num(sb, "agreement_with_faithful", r->fast_agreement, &g);
    kv_num(sb, r->task == MP_TASK_SIMILARITY ? "max_abs_cosine_diff" : "max_abs_logit_diff", r->fast_max_abs_diff, &g);
    mp_sb_putc(sb, '}');
  }
  if (with_predictions && r->pred) {
    mp_sb_puts(sb, ",\"predictions\":[");
    for (size_t i = 0; i < r->n; i++)
      mp_sb_printf(sb, i ? ",%d" : "%d", r->pred[i]);
    mp_sb_putc(sb, ']');
  }
  mp_sb_putc(sb, '}');
}

static void gates_json(mp_sb *sb, const mp_gate *gates, size_t n, int all_passed) {
  mp_sb_puts(sb, "{\"passed\":");
  mp_sb_puts(sb, all_passed ? "true" : "false");
  mp_sb_puts(sb, ",\"gates\":[");
  for (size_t i = 0; i < n; i++) {
    int f = 1;
    if (i) mp_sb_putc(sb, ',');
    mp_sb_putc(sb, '{');
    kv_str(sb, "name", gates[i].name, &f);
    kv_num(sb, "value", gates[i].value, &f);
    kv_num(sb, "threshold", gates[i].threshold, &f);
    kv_str(sb, "rule", gates[i].rule, &f);
    mp_sb_printf(sb, ",\"passed\":%s}", gates[i].passed ? "true" : "false");
  }
  mp_sb_puts(sb, "]}");
}

void mp_report_comparison_json(mp_sb *sb, const char *model_name, const char *dataset, int bits,
                               const mp_eval_result *base, const mp_eval_result *conv, const mp_comparison *cmp,
                               const mp_gate *gates, size_t n_gates, int all_passed) {
  int f = 1;
  mp_sb_putc(sb, '{');
  kv_str(sb, "model", model_name, &f);
  kv_str(sb, "dataset", dataset, &f);
  if (bits) kv_num(sb, "bits", bits, &f);
  kv_str(sb, "main_metric", mp_eval_main_metric_name(conv), &f);
  mp_sb_puts(sb, ",\"converted\":");
  mp_report_result_json(sb, model_name, conv, 0);
  if (base) {
    mp_sb_puts(sb, ",\"original\":");
    mp_report_result_json(sb, "original", base, 0);
    mp_sb_puts(sb, ",\"comparison\":{");
    int g = 1;
    kv_num(sb, "accuracy_drop", cmp->metric_drop, &g);
    kv_num(sb, "speedup", cmp->speedup_throughput, &g);
    kv_num(sb, "speedup_p50", cmp->speedup_p50, &g);
    kv_num(sb, "size_ratio", cmp->size_ratio, &g);
    kv_num(sb, "agreement", cmp->agreement, &g);
    kv_num(sb, "mean_kl", cmp->mean_kl, &g);
    kv_num(sb, "max_abs_logit_diff", cmp->max_abs_logit_diff, &g);
    mp_sb_putc(sb, '}');
  }
  mp_sb_puts(sb, ",\"quality_gates\":");
  gates_json(sb, gates, n_gates, all_passed);
  mp_sb_putc(sb, '}');
}

/* ---------------------------------------------------------------- Markdown */

static void fmt_pct(mp_sb *sb, double v) {
  if (isnan(v))
    mp_sb_puts(sb, "n/a");
  else
    mp_sb_printf(sb, "%.4f", v);
}

void mp_report_markdown(mp_sb *sb, const char *title, const mp_report_row *rows, size_t n) {
  mp_sb_printf(sb, "# %s\n\n", title);
  mp_sb_puts(sb, "| model | dataset | bits | metric | original | converted | drop | speedup | p50 ms (orig / conv) | "
                 "size MB (orig / conv) | agreement | fast mode | gates |\n");
  mp_sb_puts(sb, "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  size_t n_demo = 0;
  for (size_t i = 0; i < n; i++) {
    const mp_report_row *r = &rows[i];
    int demo = r->conv && r->conv->demo_data;
    n_demo += demo;
    mp_sb_printf(sb, "| %s | %s%s | %d | ", r->model, r->dataset, demo ? " (demo set)" : "", r->bits);
    if (!r->conv) {
      mp_sb_printf(sb, " |  |  |  |  |  |  |  |  | %s |\n", r->status ? r->status : "");
      continue;
    }
    mp_sb_printf(sb, "%s | ", mp_eval_main_metric_name(r->conv));
    if (r->base) fmt_pct(sb, mp_eval_main_metric(r->base));
    mp_sb_puts(sb, " | ");
    fmt_pct(sb, mp_eval_main_metric(r->conv));
    mp_sb_puts(sb, " | ");
    if (r->base) fmt_pct(sb, r->cmp.metric_drop);
    mp_sb_puts(sb, " | ");
    if (r->base) mp_sb_printf(sb, "%.2fx", r->cmp.speedup_throughput);
    mp_sb_printf(sb, " | %.2f / %.2f | %.1f / %.1f | ", r->base ? r->base->latency_ms.p50 : NAN,
                 r->conv->latency_ms.p50, r->base ? r->base->weights_mb : NAN, r->conv->weights_mb);
    if (r->base) fmt_pct(sb, r->cmp.agreement);
    mp_sb_puts(sb, " | ");
    if (r->conv->fast_pass) {
      fmt_pct(sb, r->conv->fast_metric);
      if (r->conv->task != MP_TASK_SIMILARITY) mp_sb_printf(sb, " (%.2f%% agree)", 100.0 * r->conv->fast_agreement);
    } else {
      mp_sb_puts(sb, r->conv->metric_compute);
    }
    mp_sb_puts(sb, " | ");
    for (size_t g = 0; g < r->n_gates; g++)
      mp_sb_printf(sb, "%s%s %s", g ? ", " : "", r->gates[g].name, r->gates[g].passed ? "pass" : "FAIL");
    if (!r->n_gates) mp_sb_puts(sb, r->status ? r->status : "-");
    mp_sb_puts(sb, " |\n");
  }
  mp_sb_puts(
      sb,
      "\nMetrics: accuracy (classification) or Spearman (similarity) with 95% bootstrap intervals in the JSON files; "
      "speedup = converted / original throughput (queries per minute, batched); latency at batch size 1; "
      "size = weight files in MiB.\n"
      "Compute modes: a converted model's task metric, drop and agreement come from the MLX-faithful mode "
      "(dequantized weights, float accumulation: what MLX computes); its speed, latency and memory from the "
      "fast mode (integer kernels with int8 activations for quantized layers; AMX-BF16 tiles with activations "
      "split in two bf16 terms for float16/bfloat16 layers), whose own metric and agreement with the faithful "
      "predictions are in the \"fast mode\" column.\n");
  if (n_demo)
    mp_sb_printf(sb,
                 "\n**%zu evaluation%s used the small embedded demo set (data/demo)**, not the real benchmark: "
                 "those figures show that the pipeline works, not the model's benchmark accuracy. "
                 "Point --data-dir (or $MLXPORT_DATA) at the real datasets.\n",
                 n_demo, n_demo == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- HTML */

static void html_esc(mp_sb *sb, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': mp_sb_puts(sb, "&lt;"); break;
    case '>': mp_sb_puts(sb, "&gt;"); break;
    case '&': mp_sb_puts(sb, "&amp;"); break;
    case '"': mp_sb_puts(sb, "&quot;"); break;
    default: mp_sb_putc(sb, *s);
    }
  }
}

/* Scatter plot: main metric vs weight size, original (circle) and converted (square). */
static void svg_scatter(mp_sb *sb, const mp_report_row *rows, size_t n) {
  double xmax = 1, ymin = 1, ymax = 0;
  for (size_t i = 0; i < n; i++) {
    const mp_eval_result *rs[2] = {rows[i].base, rows[i].conv};
    for (int k = 0; k < 2; k++)
      if (rs[k]) {
        double x = rs[k]->weights_mb, y = mp_eval_main_metric(rs[k]);
        if (x > xmax) xmax = x;
        if (!isnan(y)) ymin = fmin(ymin, y), ymax = fmax(ymax, y);
      }
  }
  if (ymax <= ymin) ymin = 0, ymax = 1;
  double pad = (ymax - ymin) * 0.1 + 1e-3;
  ymin -= pad, ymax += pad;
  const int W = 640, Hh = 360, L = 60, B = 40, T = 20, R = 20;
  mp_sb_printf(sb,
               "<svg id=\"chart-accuracy-size\" role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "xmlns=\"http://www.w3.org/2000/svg\">",
               W, Hh, W, Hh);
  mp_sb_printf(
      sb, "<title>Main metric vs model size</title><rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>", W,
      Hh);
  mp_sb_printf(sb, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>", L, Hh - B, W - R, Hh - B);
  mp_sb_printf(sb, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>", L, T, L, Hh - B);
  for (int t = 0; t <= 4; t++) {
    double yv = ymin + (ymax - ymin) * t / 4;
    double py = (Hh - B) - (double)(Hh - B - T) * t / 4;
    mp_sb_printf(sb, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3f</text>", L - 6, py + 4, yv);
    double xv = xmax * 1.1 * t / 4;
    double px = L + (double)(W - L - R) * t / 4;
    mp_sb_printf(sb, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.0f</text>", px, Hh - B + 16,
                 xv);
  }
  mp_sb_printf(sb, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">weights (MiB)</text>", (W + L) / 2,
               Hh - 6);
  for (size_t i = 0; i < n; i++) {
    const mp_eval_result *rs[2] = {rows[i].base, rows[i].conv};
    for (int k = 0; k < 2; k++) {
      if (!rs[k]) continue;
      double y = mp_eval_main_metric(rs[k]);
      if (isnan(y)) continue;
      double px = L + (W - L - R) * rs[k]->weights_mb / (xmax * 1.1);
      double py = (Hh - B) - (Hh - B - T) * (y - ymin) / (ymax - ymin);
      if (k == 0)
        mp_sb_printf(sb, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#1f77b4\"><title>", px, py);
      else
        mp_sb_printf(sb, "<rect class=\"pt\" x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"#d62728\"><title>",
                     px - 4.5, py - 4.5);
      html_esc(sb, rows[i].model);
      mp_sb_printf(sb, " %s on ", k ? "converted" : "original");
      html_esc(sb, rows[i].dataset);
      mp_sb_printf(sb, ": %.4f, %.1f MiB</title></%s>", y, rs[k]->weights_mb, k ? "rect" : "circle");
    }
  }
  mp_sb_puts(sb, "</svg>");
}

/* Latency bars: p50/p95/p99 per model and row. */
static void svg_latency(mp_sb *sb, const mp_report_row *rows, size_t n) {
  size_t bars = 0;
  double mx = 1e-9;
  for (size_t i = 0; i < n; i++) {
    const mp_eval_result *rs[2] = {rows[i].base, rows[i].conv};
    for (int k = 0; k < 2; k++)
      if (rs[k]) bars++, mx = fmax(mx, rs[k]->latency_ms.p99);
  }
  const int W = 640, rowh = 26, L = 260, R = 60;
  int Hh = (int)bars * rowh + 40;
  mp_sb_printf(sb,
               "<svg id=\"chart-latency\" role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "xmlns=\"http://www.w3.org/2000/svg\">",
               W, Hh, W, Hh);
  mp_sb_puts(sb, "<title>Latency at batch size 1 (p50 / p95 / p99)</title>");
  size_t b = 0;
  for (size_t i = 0; i < n; i++) {
    const mp_eval_result *rs[2] = {rows[i].base, rows[i].conv};
    for (int k = 0; k < 2; k++) {
      if (!rs[k]) continue;
      double y = 10 + (double)b * rowh;
      mp_sb_printf(sb, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">", L - 8, y + 14);
      html_esc(sb, rows[i].model);
      mp_sb_puts(sb, k ? " (conv) " : " (orig) ");
      html_esc(sb, rows[i].dataset);
      mp_sb_puts(sb, "</text>");
      double sc = (W - L - R) / mx;
      const mp_latency_stats *ls = &rs[k]->latency_ms;
      mp_sb_printf(sb,
                   "<rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"#c6dbef\"><title>p99 "
                   "%.2f ms</title></rect>",
                   L, y, ls->p99 * sc, ls->p99);
      mp_sb_printf(sb,
                   "<rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"#6baed6\"><title>p95 "
                   "%.2f ms</title></rect>",
                   L, y, ls->p95 * sc, ls->p95);
      mp_sb_printf(sb,
                   "<rect class=\"bar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"18\" fill=\"%s\"><title>p50 %.2f "
                   "ms</title></rect>",
                   L, y, ls->p50 * sc, k ? "#d62728" : "#1f77b4", ls->p50);
      mp_sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%.1f ms</text>", L + ls->p99 * sc + 4, y + 14,
                   ls->p50);
      b++;
    }
  }
  mp_sb_puts(sb, "</svg>");
}

/* Size-vs-metric chart per original model and dataset over every variant evaluated (q2..q8,
 * fp modes, mixed, auto) plus the original; the Pareto front (no other point both smaller and
 * better) is joined by a line and its points are filled. */
static void svg_pareto(mp_sb *sb, const mp_report_row *rows, size_t n) {
  int any = 0;
  for (size_t g = 0; g < n; g++) {
    const char *src = rows[g].source ? rows[g].source : rows[g].model;
    int first = 1;
    for (size_t h = 0; h < g && first; h++)
      first =
          !(!strcmp(rows[h].source ? rows[h].source : rows[h].model, src) && !strcmp(rows[h].dataset, rows[g].dataset));
    if (!first) continue;
    /* points: the original once, then each converted variant */
    double xs[64], ys[64];
    const char *lab[64];
    size_t np = 0;
    for (size_t i = g; i < n && np < 63; i++) {
      if (strcmp(rows[i].source ? rows[i].source : rows[i].model, src) || strcmp(rows[i].dataset, rows[g].dataset))
        continue;
      if (rows[i].base && np == 0 && !isnan(mp_eval_main_metric(rows[i].base)))
        xs[np] = rows[i].base->weights_mb, ys[np] = mp_eval_main_metric(rows[i].base), lab[np++] = "original";
      if (rows[i].conv && !isnan(mp_eval_main_metric(rows[i].conv)))
        xs[np] = rows[i].conv->weights_mb, ys[np] = mp_eval_main_metric(rows[i].conv),
        lab[np++] = rows[i].variant ? rows[i].variant : rows[i].model;
    }
    if (np < 2) continue;
    if (!any) mp_sb_puts(sb, "<h2>Size vs accuracy per model (Pareto front)</h2>\n");
    any = 1;
    int front[64];
    for (size_t i = 0; i < np; i++) {
      front[i] = 1;
      for (size_t k = 0; k < np && front[i]; k++)
        if (k != i && xs[k] <= xs[i] && ys[k] >= ys[i] && (xs[k] < xs[i] || ys[k] > ys[i])) front[i] = 0;
    }
    double xmax = 0, ymin = 1e300, ymax = -1e300;
    for (size_t i = 0; i < np; i++)
      xmax = fmax(xmax, xs[i]), ymin = fmin(ymin, ys[i]), ymax = fmax(ymax, ys[i]);
    double pad = (ymax - ymin) * 0.1 + 1e-3;
    ymin -= pad, ymax += pad;
    if (xmax <= 0) xmax = 1;
    const int W = 640, Hh = 360, L = 60, B = 40, T = 24, R = 20;
    mp_sb_puts(sb, "<h3>");
    html_esc(sb, src);
    mp_sb_puts(sb, " on ");
    html_esc(sb, rows[g].dataset);
    mp_sb_printf(sb,
                 "</h3>\n<svg class=\"chart-pareto\" role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "xmlns=\"http://www.w3.org/2000/svg\"><title>Size vs metric, every variant</title>",
                 W, Hh, W, Hh);
    mp_sb_printf(sb, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>", L, Hh - B, W - R, Hh - B);
    mp_sb_printf(sb, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>", L, T, L, Hh - B);
    for (int t = 0; t <= 4; t++) {
      double py = (Hh - B) - (double)(Hh - B - T) * t / 4, px = L + (double)(W - L - R) * t / 4;
      mp_sb_printf(sb, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3f</text>", L - 6, py + 4,
                   ymin + (ymax - ymin) * t / 4);
      mp_sb_printf(sb, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.1f</text>", px, Hh - B + 16,
                   xmax * 1.1 * t / 4);
    }
    mp_sb_printf(sb, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">weights (MiB)</text>",
                 (W + L) / 2, Hh - 6);
    double px[64], py[64];
    for (size_t i = 0; i < np; i++) {
      px[i] = L + (W - L - R) * xs[i] / (xmax * 1.1);
      py[i] = (Hh - B) - (Hh - B - T) * (ys[i] - ymin) / (ymax - ymin);
    }
    /* the front, by size */
    size_t ord[64], nf = 0;
    for (size_t i = 0; i < np; i++)
      if (front[i]) ord[nf++] = i;
    for (size_t i = 1; i < nf; i++)
      for (size_t k = i; k > 0 && xs[ord[k - 1]] > xs[ord[k]]; k--) {
        size_t t = ord[k];
        ord[k] = ord[k - 1], ord[k - 1] = t;
      }
    mp_sb_puts(sb, "<polyline class=\"front\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < nf; i++)
      mp_sb_printf(sb, "%s%.1f,%.1f", i ? " " : "", px[ord[i]], py[ord[i]]);
    mp_sb_puts(sb, "\"/>");
    for (size_t i = 0; i < np; i++) {
      mp_sb_printf(sb, "<circle class=\"pt%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"#2ca02c\"><title>",
                   front[i] ? " on-front" : "", px[i], py[i], front[i] ? "#2ca02c" : "#fff");
      html_esc(sb, lab[i]);
      mp_sb_printf(sb, ": %.4f, %.2f MiB%s</title></circle>", ys[i], xs[i], front[i] ? " (Pareto front)" : "");
      mp_sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">", px[i] + 7, py[i] - 6);
      html_esc(sb, lab[i]);
      mp_sb_puts(sb, "</text>");
    }
    mp_sb_puts(sb, "</svg>\n");
  }
  if (any)
    mp_sb_puts(sb, "<p>Filled points and the line: the Pareto front (no other variant is both smaller and at least "
                   "as accurate).</p>\n");
}

void mp_report_html(mp_sb *sb, const char *title, const mp_report_row *rows, size_t n) {
  mp_sb_puts(sb, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
  html_esc(sb, title);
  mp_sb_puts(
      sb,
      "</title><style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
      "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
      ".pass{color:#080;font-weight:bold}.fail{color:#c00;font-weight:bold}</style></head><body>\n<h1>");
  html_esc(sb, title);
  mp_sb_puts(sb, "</h1>\n<h2>Quality gates</h2>\n<table "
                 "id=\"gates\"><tr><th>model</th><th>dataset</th><th>bits</th><th>gate</th><th>value</"
                 "th><th>threshold</th><th>result</th></tr>\n");
  for (size_t i = 0; i < n; i++) {
    const mp_report_row *r = &rows[i];
    if (!r->n_gates) {
      mp_sb_puts(sb, "<tr><td>");
      html_esc(sb, r->model);
      mp_sb_puts(sb, "</td><td>");
      html_esc(sb, r->dataset);
      mp_sb_printf(sb, "</td><td>%d</td><td colspan=\"4\">", r->bits);
      html_esc(sb, r->status ? r->status : "no gates");
      mp_sb_puts(sb, "</td></tr>\n");
    }
    for (size_t g = 0; g < r->n_gates; g++) {
      mp_sb_puts(sb, "<tr><td>");
      html_esc(sb, r->model);
      mp_sb_puts(sb, "</td><td>");
      html_esc(sb, r->dataset);
      mp_sb_printf(sb, "</td><td>%d</td><td>%s</td><td>%.4f</td><td>%.4f</td><td class=\"%s\">%s</td></tr>\n", r->bits,
                   r->gates[g].name, r->gates[g].value, r->gates[g].threshold, r->gates[g].passed ? "pass" : "fail",
                   r->gates[g].passed ? "pass" : "FAIL");
    }
  }
  mp_sb_puts(sb, "</table>\n<h2>Metric vs size</h2>\n");
  svg_scatter(sb, rows, n);
  mp_sb_puts(sb, "\n<p>Circles: original models; squares: MLX conversions.</p>\n<p>Compute modes: a converted model's "
                 "metric, drop and agreement come from the MLX-faithful mode (dequantized weights, float "
                 "accumulation: what MLX computes); its speed, latency and memory from the fast mode (integer "
                 "kernels, int8 activations). The fast mode's own metric and agreement are in the JSON results "
                 "(<code>fast_mode</code>) and in summary.md.</p>\n<h2>Latency (batch size 1)</h2>\n");
  svg_latency(sb, rows, n);
  svg_pareto(sb, rows, n);
  mp_sb_puts(sb,
             "\n<h2>All metrics</h2>\n<table "
             "id=\"metrics\"><tr><th>model</th><th>dataset</th><th>variant</th><th>metric</th><th>value</th><th>QPM</"
             "th><th>tokens/s</th><th>size MiB</th><th>mem avg / peak MiB</th><th>p50 / p95 / p99 ms</th></tr>\n");
  for (size_t i = 0; i < n; i++) {
    const mp_eval_result *rs[2] = {rows[i].base, rows[i].conv};
    for (int k = 0; k < 2; k++) {
      const mp_eval_result *x = rs[k];
      if (!x) continue;
      mp_sb_puts(sb, "<tr><td>");
      html_esc(sb, rows[i].model);
      mp_sb_puts(sb, "</td><td>");
      html_esc(sb, rows[i].dataset);
      mp_sb_printf(sb,
                   "</td><td>%s</td><td>%s</td><td>%.4f</td><td>%.0f</td><td>%.0f</td><td>%.1f</td><td>%.0f / "
                   "%.0f</td><td>%.2f / %.2f / %.2f</td></tr>\n",
                   k ? "converted" : "original", mp_eval_main_metric_name(x), mp_eval_main_metric(x), x->qpm,
                   x->tokens_per_sec, x->weights_mb, x->mem_avg_mb, x->mem_peak_mb, x->latency_ms.p50,
                   x->latency_ms.p95, x->latency_ms.p99);
    }
  }
  mp_sb_puts(sb, "</table>\n<p>Generated by mlxport " MP_VERSION_STRING
                 ". Self-contained: no scripts, no network.</p>\n</body></html>\n");
}
