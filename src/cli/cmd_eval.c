/* mlxport eval: evaluate a (converted) model on a dataset, optionally against its original. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "eval/data_dirs.h"
#include "eval/dataset.h"
#include "eval/eval_job.h"
#include "eval/evaluate.h"
#include "eval/report.h"
#include "format/hf.h"
#include "hub/card.h"
#include "model/device.h"
#include "model/model.h"

const char mp_cmd_eval_summary[] = "evaluate a model on a dataset, compare with its original, apply quality gates";

static const char *k_help =
    "usage: mlxport eval --model CONVERTED --dataset KEY|FILE [--baseline ORIGINAL] [options]\n"
    "\n"
    "Runs the model (and the baseline, on the same examples) over the dataset and reports the task\n"
    "metric with a 95% bootstrap interval and six performance metrics: accuracy (or Spearman),\n"
    "queries per minute, size on disk, tokens per second, memory (sampled average and peak, and the\n"
    "OS peak RSS), latency p50/p95/p99 at batch size 1. Load time is reported apart; warm-up runs\n"
    "are excluded. Each model runs in its own process so its memory figures are its own.\n"
    "\n"
    "  --model REF           model to evaluate (folder or HF cache repo id; HF or MLX)\n"
    "  --baseline REF        original model to compare against (same examples)\n"
    "  --dataset KEY|FILE    built-in key (sst2 stsb stsb_original qnli mrpc rte mnli snli anli fever_nli)\n"
    "                        found under --data-dir / $MLXPORT_DATA / the test data folder\n"
    "                        ($MLXPORT_TEST_DATA, ../shared beside the checkout, $MP_CACHE/test-data;\n"
    "                        docs/testing.md), else its Hugging Face Hub Parquet file (from the cache, downloaded\n"
    "                        when absent unless HF_HUB_OFFLINE=1; docs/hub.md), or a dataset file\n"
    "                        (.tsv .csv .jsonl .parquet); a file without field options is read by\n"
    "                        the usual columns of --task: premise|sentence1|question,\n"
    "                        hypothesis|sentence2|sentence, label (nli, binary-nli);\n"
    "                        sentence1, sentence2, score (semantic-similarity); sentence|text,\n"
    "                        label (text-classification, zero-shot-classification)\n"
    "  --data-dir DIR        folder holding the built-in datasets\n"
    "  --data-file PATH      with a built-in KEY: read its layout from PATH instead of the default place\n"
    "  --format F            glue_tsv | tsv | csv | jsonl | parquet (default: by key / extension)\n"
    "  --text-fields A[,B]   text field(s) (column names / JSON keys)\n"
    "  --label-field L       label field;  --label-names a,b,c  the labels in the dataset's order\n"
    "  --score-field S       similarity score field (semantic-similarity datasets)\n"
    "  --task T              nli | binary-nli | zero-shot-classification | text-classification |\n"
    "                        semantic-similarity | auto (default: from the model and the data)\n"
    "  --template T          zero-shot hypothesis template (default \"This example is {}.\")\n"
    "  --max-samples N|all   seeded sample of N examples (default all)\n"
    "  --seed S              sampling and bootstrap seed (default 42)\n"
    "  --batch-size B        batch size of the throughput run (default 32)\n"
    "  --max-length N        truncate inputs to N tokens (default: model's)\n"
    "  --latency-requests N  batch-1 requests timed for latency (default 100; 0 = skip)\n"
    "  --threads N           compute threads (default: all cores)\n"
    "  --compute MODE        for MLX-quantized models: both (default): the task metric, drop and\n"
    "                        accuracy gate from the MLX-faithful mode (what MLX computes), speed,\n"
    "                        latency, memory and the speedup gate from the fast mode (integer\n"
    "                        kernels; FP8 tensor cores on a GPU), plus the fast mode's metric\n"
    "                        and agreement; fast or\n"
    "                        faithful: every figure from that one mode\n"
    "  --device D            cpu (default), cuda or cuda:N: both models on that device (a\n"
    "                        -DMP_CUDA=ON build; recorded as `device` in the results; docs/cuda.md)\n"
    "  --device-dtype T      float16 (default), bfloat16 or float32 compute on the GPU\n"
    "  --max-accuracy-drop X gate: metric drop (baseline - converted) <= X (e.g. 0.02)\n"
    "  --min-speedup X       gate: converted/baseline throughput >= X (default 1.2; 0 = no gate)\n"
    "  --target-size-mb X    gate: converted weights <= 1.1 x X MiB\n"
    "  --name NAME           model name used in file names (default: folder name)\n"
    "  --report-dir DIR      write comparisons/, test_results/, testing_summary.json, summary.md,\n"
    "                        report.html there (atomically)\n"
    "  --json                print the comparison as JSON on stdout\n"
    "  --no-card             do not record the comparison in the model folder's card (README.md\n"
    "                        and mlxport_evaluations.json; done by default for an mlxport folder\n"
    "                        evaluated against a --baseline)\n"
    "  --predictions FILE    write one JSON line per example (written atomically): index (0-based\n"
    "                        position in the file's kept examples), gold, pred, logits (and\n"
    "                        baseline_pred / baseline_logits with --baseline); similarity: gold\n"
    "                        score and cosine\n"
    "\n"
    "Exit status: 0 every gate passed, 1 a gate failed, 2 usage error, 3 other error.\n";

static int write_doc(const char *dir, const char *rel, const mp_sb *sb) {
  char *p = mp_path_join(dir, rel);
  char *d = p ? mp_path_dirname(p) : NULL;
  mp_status st = !p || !d ? MP_ERR_NOMEM : mp_mkdirs(d);
  if (!st) st = mp_write_file_atomic(p, sb->buf ? sb->buf : "", sb->len);
  free(p), free(d);
  return st ? mp_cli_fail("eval", st) : 0;
}

static void put_logits(mp_sb *sb, const char *key, const mp_eval_result *r, size_t i) {
  if (!r->logits || !r->kc) return;
  mp_sb_printf(sb, ",\"%s\":[", key);
  for (size_t j = 0; j < r->kc; j++) {
    if (j) mp_sb_putc(sb, ',');
    mp_sb_json_f32(sb, r->logits[i * r->kc + j]);
  }
  mp_sb_putc(sb, ']');
}

static void put_label(mp_sb *sb, const char *key, const mp_eval_result *r, int v) {
  mp_sb_printf(sb, ",\"%s\":", key);
  if (v >= 0 && (size_t)v < r->k)
    mp_sb_json_str(sb, r->labels[v], strlen(r->labels[v]));
  else
    mp_sb_puts(sb, "null");
}

/* --predictions: one JSON object per evaluated example, in evaluation order. */
static int write_predictions(const char *path, const mp_dataset *ds, const mp_eval_result *base,
                             const mp_eval_result *conv) {
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < conv->n && i < ds->n; i++) {
    mp_sb_printf(&sb, "{\"index\":%u", (unsigned)ds->ex[i].index);
    if (conv->task == MP_TASK_SIMILARITY) {
      mp_sb_puts(&sb, ",\"gold\":");
      mp_sb_json_f64(&sb, ds->ex[i].score);
      mp_sb_puts(&sb, ",\"cosine\":");
      mp_sb_json_f64(&sb, conv->sim[i]);
      if (base && base->sim) {
        mp_sb_puts(&sb, ",\"baseline_cosine\":");
        mp_sb_json_f64(&sb, base->sim[i]);
      }
    } else {
      put_label(&sb, "gold", conv, conv->gold[i]);
      put_label(&sb, "pred", conv, conv->pred[i]);
      put_logits(&sb, "logits", conv, i);
      if (base && base->pred) {
        put_label(&sb, "baseline_pred", base, base->pred[i]);
        put_logits(&sb, "baseline_logits", base, i);
      }
    }
    mp_sb_puts(&sb, "}\n");
  }
  mp_status st = mp_write_file_atomic(path, sb.buf ? sb.buf : "", sb.len);
  mp_sb_free(&sb);
  if (st) return mp_cli_fail("eval", st);
  fprintf(stderr, "mlxport eval: predictions written to %s\n", path);
  return 0;
}

int mp_cmd_eval(int argc, char **argv) {
  const char *report_dir = NULL, *predictions = NULL;
  mp_eval_job_opts jo;
  mp_eval_job_opts_init(&jo);
  mp_eval_options *eo = &jo.eo;
  mp_gate_options *go = &jo.go;
  int json = 0, no_card = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    long long x;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    }
#define STR_OPT(flag, var)                                                                                             \
  else if (mp_cli_opt(argc, argv, &i, flag, &v)) {                                                                     \
    if (!v) return MP_EXIT_USAGE;                                                                                      \
    var = v;                                                                                                           \
  }
#define INT_OPT(flag, lo, hi, stmt)                                                                                    \
  else if (mp_cli_opt(argc, argv, &i, flag, &v)) {                                                                     \
    if (!v || mp_cli_opt_int("eval", flag, v, lo, hi, &x)) return MP_EXIT_USAGE;                                       \
    stmt;                                                                                                              \
  }
#define NUM_OPT(flag, var)                                                                                             \
  else if (mp_cli_opt(argc, argv, &i, flag, &v)) {                                                                     \
    char *end;                                                                                                         \
    if (!v) return MP_EXIT_USAGE;                                                                                      \
    var = strtod(v, &end);                                                                                             \
    if (*end || end == v || !(var >= 0)) return mp_cli_usage_error("eval", "%s expects a number >= 0", flag);          \
  }
    STR_OPT("--model", jo.model)
    STR_OPT("--baseline", jo.baseline)
    STR_OPT("--dataset", jo.dataset)
    STR_OPT("--data-dir", jo.data_dir)
    STR_OPT("--data-file", jo.data_file)
    STR_OPT("--format", jo.format)
    STR_OPT("--text-fields", jo.text_fields)
    STR_OPT("--label-field", jo.label_field)
    STR_OPT("--label-names", jo.label_names)
    STR_OPT("--score-field", jo.score_field)
    STR_OPT("--report-dir", report_dir)
    STR_OPT("--name", jo.name)
    STR_OPT("--predictions", predictions)
    STR_OPT("--template", eo->template_)
    INT_OPT("--seed", 0, (1LL << 62), eo->seed = (uint64_t)x)
    INT_OPT("--batch-size", 1, 1 << 16, eo->batch_size = (size_t)x)
    INT_OPT("--max-length", 1, 1 << 20, eo->max_length = (size_t)x)
    INT_OPT("--latency-requests", 0, 1 << 20, eo->latency_requests = (size_t)x)
    INT_OPT("--threads", 0, 1024, eo->threads = (int)x)
    NUM_OPT("--max-accuracy-drop", go->max_accuracy_drop)
    NUM_OPT("--min-speedup", go->min_speedup)
    NUM_OPT("--target-size-mb", go->target_size_mb)
    else if (mp_cli_opt(argc, argv, &i, "--max-samples", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (!strcmp(v, "all"))
        jo.max_samples = 0;
      else if (mp_cli_opt_int("eval", "--max-samples", v, 1, 1LL << 40, &x))
        return MP_EXIT_USAGE;
      else
        jo.max_samples = (size_t)x;
    }
    else if (mp_cli_opt(argc, argv, &i, "--task", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_task_parse(v, &eo->task)) return mp_cli_usage_error("eval", "%s", mp_last_error());
      jo.task = v;
    }
    else if (mp_cli_opt(argc, argv, &i, "--compute", &v)) {
      mp_compute cm;
      if (!v) return MP_EXIT_USAGE;
      if (!strcmp(v, "both"))
        eo->compute = -1;
      else if (mp_compute_parse(v, &cm))
        return mp_cli_usage_error("eval", "--compute must be both, fast or faithful");
      else
        eo->compute = (int)cm;
    }
    else if (mp_cli_opt(argc, argv, &i, "--device", &v)) {
      mp_device_spec ds;
      if (!v) return MP_EXIT_USAGE;
      if (mp_device_parse(v, &ds))
        return mp_cli_usage_error("eval", "--device must be cpu, cuda or cuda:N, not '%s'", v);
      eo->device = v;
    }
    else if (mp_cli_opt(argc, argv, &i, "--device-dtype", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (mp_device_dtype_parse(v, &eo->device_dtype))
        return mp_cli_usage_error("eval", "--device-dtype must be float16, bfloat16 or float32, not '%s'", v);
    }
    else if (!strcmp(a, "--json")) json = 1;
    else if (!strcmp(a, "--no-card")) no_card = 1;
    else if (!strcmp(a, "--in-process")) eo->in_process = 1;
    else return mp_cli_usage_error("eval", "unknown option or argument '%s'", a);
#undef STR_OPT
#undef INT_OPT
#undef NUM_OPT
  }
  if (!jo.model) return mp_cli_usage_error("eval", "--model is required");
  if (!jo.dataset) return mp_cli_usage_error("eval", "--dataset is required");
  if (!strchr(eo->template_, '{') || !strstr(eo->template_, "{}"))
    return mp_cli_usage_error("eval", "--template must contain {}");
  /* the card names the model folder, not its local path (the card travels with the folder) */
  char *cmdline = NULL;
  if (!no_card && jo.baseline) {
    char **av = calloc((size_t)argc + 1, sizeof *av);
    for (int i = 0; av && i < argc; i++) {
      av[i] = argv[i];
      if (!strcmp(argv[i], "--model") && i + 1 < argc) {
        av[i + 1] = (char *)mp_path_basename(argv[i + 1]);
        i++;
      }
    }
    cmdline = av ? mp_cli_command_line(argc, av) : NULL;
    free(av);
  }
  jo.update_card = !no_card;
  jo.card_command = cmdline;
  mp_eval_job_out out;
  mp_status st = mp_eval_job_run(&jo, &out);
  free(cmdline);
  if (st) {
    int rc = out.usage ? mp_cli_usage_error("eval", "%s", mp_last_error()) : mp_cli_fail("eval", st);
    mp_eval_job_out_free(&out);
    return rc;
  }
  const mp_dataset *ds = out.ds;
  mp_eval_result base = out.base, conv = out.conv;
  int have_base = out.have_base;
  const char *model = jo.model;
  const char *mname = out.name;
  int bits = out.bits;
  mp_sb doc = out.doc;
  int rc = MP_EXIT_OK, all_passed = out.all_passed;
  size_t ng = out.n_gates;
  mp_gate *gates = out.gates;
  mp_comparison cmp = out.cmp;
  (void)model;
  {
    if (json)
      fwrite(doc.buf, 1, doc.len, stdout);
    else {
      printf("%-22s %-14s %-12s %10s %10s\n", "", "metric", "", "original", "converted");
      printf("%-22s %-14s %-12s %10s %10.4f\n", mname, mp_eval_main_metric_name(&conv), ds->name, have_base ? "" : "-",
             mp_eval_main_metric(&conv));
      if (have_base) {
        printf("  %-36s %10.4f %10.4f   (drop %+.4f)\n", mp_eval_main_metric_name(&conv), mp_eval_main_metric(&base),
               mp_eval_main_metric(&conv), cmp.metric_drop);
        printf("  %-36s %10.0f %10.0f   (speedup %.2fx)\n", "queries per minute", base.qpm, conv.qpm,
               cmp.speedup_throughput);
        printf("  %-36s %10.0f %10.0f\n", "tokens per second", base.tokens_per_sec, conv.tokens_per_sec);
        printf("  %-36s %10.2f %10.2f\n", "latency p50 ms (batch 1)", base.latency_ms.p50, conv.latency_ms.p50);
        printf("  %-36s %10.2f %10.2f\n", "latency p95 ms", base.latency_ms.p95, conv.latency_ms.p95);
        printf("  %-36s %10.1f %10.1f   (ratio %.3f)\n", "weights MiB", base.weights_mb, conv.weights_mb,
               cmp.size_ratio);
        printf("  %-36s %10.1f %10.1f\n", "memory peak MiB (sampled)", base.mem_peak_mb, conv.mem_peak_mb);
        printf("  %-36s %10.2f %10.2f\n", "load time s", base.load_s, conv.load_s);
        if (conv.task != MP_TASK_SIMILARITY)
          printf("  agreement %.4f, mean KL %.3g, max |dlogit| %.3g\n", cmp.agreement, cmp.mean_kl,
                 cmp.max_abs_logit_diff);
        else
          printf("  max |dcos| %.3g\n", cmp.max_abs_logit_diff);
      } else {
        printf("  qpm %.0f, tokens/s %.0f, p50 %.2f ms, weights %.1f MiB, peak %.1f MiB\n", conv.qpm,
               conv.tokens_per_sec, conv.latency_ms.p50, conv.weights_mb, conv.mem_peak_mb);
      }
      if (conv.fast_pass) {
        if (conv.task != MP_TASK_SIMILARITY)
          printf("  fast mode: %s %.4f, agreement with faithful %.4f, max |dlogit| %.3g\n",
                 mp_eval_main_metric_name(&conv), conv.fast_metric, conv.fast_agreement, conv.fast_max_abs_diff);
        else
          printf("  fast mode: %s %.4f, max |dcos| vs faithful %.3g\n", mp_eval_main_metric_name(&conv),
                 conv.fast_metric, conv.fast_max_abs_diff);
      }
      printf("  figures: %s from the %s mode, speed/latency/memory from the %s mode\n", mp_eval_main_metric_name(&conv),
             conv.metric_compute, conv.perf_compute);
      for (size_t g = 0; g < ng; g++)
        printf("  gate %-14s %s  (value %.4f, %s)\n", gates[g].name, gates[g].passed ? "pass" : "FAIL", gates[g].value,
               gates[g].rule);
    }
    if (report_dir) {
      char rel[600];
      mp_sb r;
      mp_sb_init(&r);
      if (bits)
        snprintf(rel, sizeof rel, "comparisons/%s_q%d_%s_comparison.json", mname, bits, ds->name);
      else
        snprintf(rel, sizeof rel, "comparisons/%s_%s_comparison.json", mname, ds->name);
      int bad = write_doc(report_dir, rel, &doc);
      mp_report_result_json(&r, mname, &conv, 1);
      mp_sb_putc(&r, '\n');
      snprintf(rel, sizeof rel, "test_results/%s_results.json", mname);
      bad |= write_doc(report_dir, rel, &r);
      mp_sb_clear(&r);
      mp_sb_printf(&r, "{\"models\":1,\"evaluations\":1,\"all_gates_passed\":%s,\"results\":[",
                   all_passed ? "true" : "false");
      mp_sb_append(&r, doc.buf, doc.len - 1);
      mp_sb_puts(&r, "]}\n");
      bad |= write_doc(report_dir, "testing_summary.json", &r);
      mp_report_row row = {.model = mname,
                           .dataset = ds->name,
                           .bits = bits,
                           .base = have_base ? &base : NULL,
                           .conv = &conv,
                           .cmp = cmp,
                           .n_gates = ng,
                           .all_passed = all_passed,
                           .status = "ok"};
      memcpy(row.gates, gates, ng * sizeof *gates);
      mp_sb_clear(&r);
      mp_report_markdown(&r, "mlxport evaluation", &row, 1);
      bad |= write_doc(report_dir, "summary.md", &r);
      mp_sb_clear(&r);
      mp_report_html(&r, "mlxport evaluation", &row, 1);
      bad |= write_doc(report_dir, "report.html", &r);
      mp_sb_free(&r);
      if (bad)
        rc = MP_EXIT_ERROR;
      else
        fprintf(stderr, "mlxport eval: report written to %s/report.html\n", report_dir);
    }
    if (predictions && write_predictions(predictions, ds, have_base ? &base : NULL, &conv)) rc = MP_EXIT_ERROR;
    if (rc == MP_EXIT_OK && !all_passed) rc = MP_EXIT_GATE;
  }
  mp_eval_job_out_free(&out);
  return rc;
}
