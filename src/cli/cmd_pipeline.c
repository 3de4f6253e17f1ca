/* mlxport pipeline: the whole job from YAML configuration files. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "eval/data_dirs.h"
#include "hub/card.h"
#include "hub/upload.h"
#include "pipeline/config.h"
#include "pipeline/pipeline.h"

const char mp_cmd_pipeline_summary[] = "convert, evaluate, compare and gate every model of YAML configs, with reports";

static const char *k_help =
    "usage: mlxport pipeline --config FILE|GLOB [--config ...] [options]\n"
    "\n"
    "Turns model and dataset definitions (YAML; several files and quoted glob patterns are merged:\n"
    "models lists concatenated, dataset maps merged) into a plan of convert and eval jobs, runs it in\n"
    "a managed work folder, and writes comparisons/, test_results/, testing_summary.json, summary.md\n"
    "and reports/report.html. Stopped or killed runs resume: finished work is skipped.\n"
    "A model's hf_name that is a repo id not in the Hugging Face cache becomes a download job\n"
    "(mlxport download, from HF_ENDPOINT; one per repo id, run before its conversions); with\n"
    "HF_HUB_OFFLINE=1 it is skipped as not available locally. See docs/hub.md.\n"
    "An hf_name may name environment variables: ${VAR}, or ${VAR:-default} when VAR is unset\n"
    "(config/default.yaml: ${MP_CACHE:-../.cache}/models/...); a relative folder is relative to\n"
    "the configuration file.\n"
    "\n"
    "  --config F          configuration file or glob pattern (repeatable)\n"
    "  --models a,b        only these models\n"
    "  --datasets x,y      only these datasets\n"
    "  --dry-run           print the plan; change nothing on disk\n"
    "  --no-skip           redo conversions and evaluations that are up to date\n"
    "  -j N, --jobs N      jobs in parallel (default 1); threads are divided among them\n"
    "  --threads N         total compute threads (default: all cores); an evaluation on a GPU\n"
    "                      takes 2 host threads, not a share\n"
    "  --gpu-memory-mb MB  GPU memory budget per CUDA device for the evaluations of models with\n"
    "                      `device: cuda[:N]` (wins over the configs' gpu_memory_mb; default: the\n"
    "                      device's memory x 0.9). A GPU evaluation starts only when its estimate\n"
    "                      plus those of the GPU jobs running on its device fit; meanwhile CPU jobs\n"
    "                      keep starting. With no budget and no GPU to ask, one GPU job at a time\n"
    "                      per device. See docs/cuda.md (Pipeline)\n"
    "  --workdir DIR       work folder (default $MLX_TEMP_DIR/mlx_conversion, else $TMPDIR/mlx_conversion)\n"
    "  --data-dir DIR      where built-in datasets are found (see mlxport eval --help)\n"
    "  --max-samples N     evaluate at most N examples per dataset (overrides the configs)\n"
    "  --seed S            sampling and bootstrap seed (default 42)\n"
    "  --latency-requests N  batch-1 requests timed per evaluation (default: eval's, 100)\n"
    "  --json              print the summary as JSON on stdout\n"
    "  --upload-even-if-gates-fail  publish models with `upload:` although a quality gate failed\n"
    "                      (the model card says so)\n"
    "\n"
    "Publishing: a model with `upload: {repo: org/name, private: false}` (or a file's top-level\n"
    "`upload:` default, where \"{name}\" stands for the model's name) is uploaded after the run with\n"
    "its model card carrying the evaluation, only when every one of its evaluations finished and\n"
    "passed its quality gates. --dry-run lists what would be published and why. See docs/upload.md.\n"
    "\n"
    "Exit status: 0 all gates passed, 1 a quality gate failed, 2 usage error, 3 a job failed or other error.\n";

typedef struct {
  int tty;
  size_t done, total;
  double t0;
} progress;

static void on_event(void *user, mp_pipeline_event ev, const mp_pipeline *p, const mp_job *j) {
  progress *pr = user;
  if (ev == MP_EV_TICK) {
    if (!pr->tty) return;
    /* one status line: running jobs with elapsed time, counts and a rough ETA */
    char line[400];
    size_t o = 0;
    double el = mp_now_s() - pr->t0;
    double eta = pr->done ? el / (double)pr->done * (double)(pr->total - pr->done) : NAN;
    o += (size_t)snprintf(line + o, sizeof line - o, "[%zu/%zu", pr->done, pr->total);
    if (!isnan(eta)) o += (size_t)snprintf(line + o, sizeof line - o, " ETA %.0fs", eta);
    o += (size_t)snprintf(line + o, sizeof line - o, "] running:");
    for (size_t i = 0; i < mp_pipeline_job_count(p) && o < sizeof line - 1; i++) {
      const mp_job *x = mp_pipeline_job((mp_pipeline *)p, i);
      if (x->state == MP_JOB_RUNNING)
        o += (size_t)snprintf(line + o, sizeof line - o, " %s (%.0fs)", x->id,
                              mp_now_s() - pr->t0 - (x->started - pr->t0));
    }
    fprintf(stderr, "\r\033[K%.*s", 150, line);
    return;
  }
  if (pr->tty) fputs("\r\033[K", stderr);
  if (ev == MP_EV_START) {
    fprintf(stderr, "start  %s\n", j->id);
  } else {
    pr->done++;
    fprintf(stderr, "[%zu/%zu] %-7s %s %s%s%s\n", pr->done, pr->total, mp_job_state_name(j->state), j->id,
            j->seconds > 0 ? "" : "", j->reason[0] ? "- " : "", j->reason);
  }
}

static void print_plan(mp_pipeline *p, FILE *f) {
  fprintf(f, "plan (%zu jobs, work folder %s):\n", mp_pipeline_job_count(p), mp_pipeline_workdir(p));
  /* the GPU memory budget of each CUDA device the plan uses */
  int max_dev = -1;
  for (size_t i = 0; i < mp_pipeline_job_count(p); i++)
    if (mp_pipeline_job(p, i)->gpu_device > max_dev) max_dev = mp_pipeline_job(p, i)->gpu_device;
  for (int d = 0; d <= max_dev; d++) {
    int used = 0, from_dev = 0;
    for (size_t i = 0; i < mp_pipeline_job_count(p) && !used; i++)
      used = mp_pipeline_job(p, i)->gpu_device == d;
    if (!used) continue;
    double b = mp_pipeline_gpu_budget_mb(p, d, &from_dev);
    if (b > 0)
      fprintf(f, "  GPU cuda:%d: memory budget %.0f MB (%s)\n", d, b,
              from_dev ? "0.9 x the device's memory" : "gpu_memory_mb");
    else
      fprintf(f, "  GPU cuda:%d: no memory budget (gpu_memory_mb not set, no GPU to ask): one GPU job at a time\n", d);
  }
  for (size_t i = 0; i < mp_pipeline_job_count(p); i++) {
    const mp_job *j = mp_pipeline_job(p, i);
    int skip = j->state == MP_JOB_SKIPPED;
    char gpu[160] = "";
    if (j->gpu_device >= 0 && j->est_gpu_mb > 0)
      snprintf(gpu, sizeof gpu, ", on cuda:%d, GPU memory ~%.0f MB (estimate)", j->gpu_device, j->est_gpu_mb);
    else if (j->gpu_device >= 0)
      snprintf(gpu, sizeof gpu, ", on cuda:%d, GPU memory estimated once the model is there", j->gpu_device);
    if (j->kind == MP_JOB_DOWNLOAD)
      fprintf(f, "  %-50s %s from the Hugging Face Hub -> the hub cache", j->id, j->source);
    else if (j->kind == MP_JOB_EVAL && !j->data_path[0] && j->dep2 >= 0)
      fprintf(f, "  %-50s after %s and %s, data from the Hub", j->id, mp_pipeline_job(p, (size_t)j->dep)->id,
              mp_pipeline_job(p, (size_t)j->dep2)->id);
    else if (j->kind == MP_JOB_CONVERT)
      fprintf(f, "  %-50s %s -> %s%s%s", j->id, j->source[0] ? j->source : j->model->hf_name, j->out_dir,
              j->dep >= 0 ? ", after " : "", j->dep >= 0 ? mp_pipeline_job(p, (size_t)j->dep)->id : "");
    else
      fprintf(f, "  %-50s after %s, data %s%s", j->id, j->dep >= 0 ? mp_pipeline_job(p, (size_t)j->dep)->id : "-",
              j->data_path[0] ? j->data_path : "?",
              j->data_path[0] && mp_data_find_is_fallback(j->data_path)
                  ? " (embedded demo set: real benchmark not found)"
                  : "");
    fprintf(f, "%s%s%s%s\n", gpu, skip ? "  [skip: " : "", skip ? j->reason : "", skip ? "]" : "");
  }
}

/* ---- publishing: models with `upload:` whose evaluations all finished and passed their gates */

typedef struct pub_row {
  const char *model, *repo;
  char verdict[64];
  char why[1024];
  char commit[48];
} pub_row;

static int same_model(const mp_job *j, const mp_pl_model *m) {
  if (j->model == m) return 1;
  for (size_t k = 0; k < j->model->n_aliases; k++)
    if (!strcmp(j->model->aliases[k], m->name)) return 1;
  return 0;
}

/* Decides (and unless dry_run, performs) the upload of one model; fills row. Returns -1 on an
 * upload error. */
static int publish_one(mp_pipeline *p, const mp_pl_model *m, int even_if_fail, int dry_run, pub_row *row) {
  row->model = m->name;
  row->repo = m->upload_repo;
  const mp_job *conv = NULL;
  size_t n = mp_pipeline_job_count(p), n_eval = 0, n_failed_gate = 0;
  char failed[512] = "", missing[512] = "";
  mp_arena a;
  mp_arena_init(&a, 0);
  const mp_json *docs[64];
  size_t nd = 0;
  for (size_t i = 0; i < n; i++) {
    const mp_job *j = mp_pipeline_job(p, i);
    if (!same_model(j, m)) continue;
    if (j->kind == MP_JOB_CONVERT) conv = j;
    if (j->kind != MP_JOB_EVAL) continue;
    n_eval++;
    char rel[400];
    snprintf(rel, sizeof rel, "%s/results/%s.json", mp_pipeline_workdir(p), j->id);
    mp_json *doc = NULL;
    const mp_json *ev = NULL;
    if (mp_is_file(rel) && mp_json_parse_file(rel, &a, &doc) == MP_OK) ev = mp_json_get(doc, "evaluation");
    mp_err_clear();
    if (!ev) {
      size_t l = strlen(missing);
      snprintf(missing + l, sizeof missing - l, "%s%s (%s%s%.200s)", l ? ", " : "", j->dataset->key,
               mp_job_state_name(j->state), j->reason[0] ? ": " : "", j->reason);
      continue;
    }
    if (nd < 64) docs[nd++] = ev;
    if (!mp_json_get_bool(mp_json_get(ev, "quality_gates"), "passed", 0)) {
      n_failed_gate++;
      size_t l = strlen(failed);
      snprintf(failed + l, sizeof failed - l, "%s%s:", l ? "; " : "", j->dataset->key);
      const mp_json *gs = mp_json_get(mp_json_get(ev, "quality_gates"), "gates");
      for (size_t g = 0; gs && gs->type == MP_JSON_ARRAY && g < gs->len; g++)
        if (!mp_json_get_bool(gs->items[g], "passed", 1)) {
          l = strlen(failed);
          snprintf(failed + l, sizeof failed - l, " %s %.4g (%s)", mp_json_get_str(gs->items[g], "name", "?"),
                   mp_json_get_num(gs->items[g], "value", 0), mp_json_get_str(gs->items[g], "rule", "?"));
        }
    }
  }
  int rc = 0;
  const char *gate_word =
      even_if_fail ? "even if a gate fails (--upload-even-if-gates-fail)" : "only if every gate passes";
  if (dry_run) {
    if (n_eval && !missing[0]) { /* every evaluation has a result in the work folder (from an earlier run) */
      snprintf(row->verdict, sizeof row->verdict, n_failed_gate && !even_if_fail ? "would not upload" : "would upload");
      snprintf(row->why, sizeof row->why,
               "%s%.500s (the results in the work folder; re-evaluated first when out of date)",
               n_failed_gate ? "a quality gate failed: " : "every quality gate passed", n_failed_gate ? failed : "");
    } else {
      snprintf(row->verdict, sizeof row->verdict, "would decide after the run");
      snprintf(row->why, sizeof row->why, "uploaded from %.300s after its %zu evaluation(s), %s",
               conv ? conv->out_dir : "?", n_eval,
               n_eval ? gate_word : "none: nothing would show it matches the original, so it would not be uploaded");
    }
    goto out;
  }
  if (!conv || !mp_is_dir(conv->out_dir)) {
    snprintf(row->verdict, sizeof row->verdict, "not uploaded");
    snprintf(row->why, sizeof row->why, "the conversion did not finish (%s%s%.300s)",
             conv ? mp_job_state_name(conv->state) : "no convert job", conv && conv->reason[0] ? ": " : "",
             conv ? conv->reason : "");
    goto out;
  }
  if (!n_eval) {
    snprintf(row->verdict, sizeof row->verdict, "not uploaded");
    snprintf(row->why, sizeof row->why,
             "no evaluation (the model has no benchmarks): nothing shows it matches the original");
    goto out;
  }
  if (missing[0]) {
    snprintf(row->verdict, sizeof row->verdict, "not uploaded");
    snprintf(row->why, sizeof row->why, "evaluation(s) without a result: %.500s", missing);
    goto out;
  }
  if (n_failed_gate && !even_if_fail) {
    snprintf(row->verdict, sizeof row->verdict, "not uploaded");
    snprintf(row->why, sizeof row->why,
             "a quality gate failed: %.500s (--upload-even-if-gates-fail publishes it anyway)", failed);
    goto out;
  }
  /* the card carries every evaluation (the eval jobs recorded theirs; up-to-date ones again here) */
  for (size_t k = 0; k < nd; k++) {
    int upd = 0;
    if (mp_card_add_evaluation(conv->out_dir, docs[k], NULL, &upd) != MP_OK) {
      snprintf(row->verdict, sizeof row->verdict, "upload failed");
      snprintf(row->why, sizeof row->why, "model card: %.900s", mp_last_error());
      rc = -1;
      goto out;
    }
  }
  char note[800];
  if (n_failed_gate)
    snprintf(note, sizeof note,
             "Published with --upload-even-if-gates-fail although a quality gate failed (%s). Check the evaluation "
             "before use.",
             failed);
  if (mp_card_set_note(conv->out_dir, n_failed_gate ? note : NULL) != MP_OK) {
    snprintf(row->verdict, sizeof row->verdict, "upload failed");
    snprintf(row->why, sizeof row->why, "model card: %.900s", mp_last_error());
    rc = -1;
    goto out;
  }
  mp_hub_upload_request uq = {0};
  uq.folder = conv->out_dir;
  uq.repo_id = m->upload_repo;
  uq.private_ = m->upload_private;
  char msg[300];
  snprintf(msg, sizeof msg, "Upload %s (mlxport pipeline, %s)", m->name,
           n_failed_gate ? "a quality gate failed: uploaded on request" : "every quality gate passed");
  uq.commit_message = msg;
  fprintf(stderr, "mlxport pipeline: uploading %s to %s\n", m->name, m->upload_repo);
  mp_hub_upload_result ur;
  if (mp_hub_upload(&uq, &ur) != MP_OK) {
    snprintf(row->verdict, sizeof row->verdict, "upload failed");
    snprintf(row->why, sizeof row->why, "%.1000s", mp_last_error());
    rc = -1;
  } else {
    snprintf(row->verdict, sizeof row->verdict, ur.committed ? "uploaded" : "up to date");
    snprintf(row->commit, sizeof row->commit, "%s", ur.commit ? ur.commit : "");
    snprintf(row->why, sizeof row->why, "%s; commit %s",
             n_failed_gate ? "a gate failed, published on request (the card says so)" : "every quality gate passed",
             ur.commit ? ur.commit : "?");
  }
  mp_hub_upload_result_free(&ur);
out:
  mp_arena_free(&a);
  return rc;
}

/* Publishes what the configs ask for; appends a "Publishing" section to summary.md and writes
 * uploads.json. Returns the number of failed uploads. */
static int publish(mp_pipeline *p, const mp_pl_config *cfg, const mp_pipeline_options *o, int even_if_fail, FILE *log) {
  size_t nm = 0;
  for (size_t i = 0; i < cfg->n_models; i++)
    if (cfg->models[i].name && cfg->models[i].upload_repo) nm++;
  if (!nm) return 0;
  pub_row *rows = calloc(nm, sizeof *rows);
  if (!rows) return 1;
  int errors = 0;
  size_t r = 0;
  for (size_t i = 0; i < cfg->n_models; i++) {
    const mp_pl_model *m = &cfg->models[i];
    if (!m->name || !m->upload_repo) continue;
    if (o->models_filter) { /* --models a,b */
      size_t ln = strlen(m->name);
      int in = 0;
      for (const char *q = o->models_filter; q && !in; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL)
        in = !strncmp(q, m->name, ln) && (q[ln] == ',' || !q[ln]);
      if (!in) continue;
    }
    if (publish_one(p, m, even_if_fail, o->dry_run, &rows[r]) < 0) errors++;
    fprintf(log, "publish %-28s -> %-30s %s: %s\n", m->name, m->upload_repo, rows[r].verdict, rows[r].why);
    r++;
  }
  if (!o->dry_run) {
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.md", mp_pipeline_workdir(p));
    char *buf = NULL;
    size_t n = 0;
    mp_sb sb, js;
    mp_sb_init(&sb);
    mp_sb_init(&js);
    if (mp_read_file(path, &buf, &n, 64 << 20) == MP_OK) mp_sb_append(&sb, buf, n);
    mp_err_clear();
    free(buf);
    mp_sb_puts(&sb, "\n## Publishing\n\n| model | repo | result | why |\n|---|---|---|---|\n");
    mp_sb_puts(&js, "{\"uploads\": [");
    for (size_t k = 0; k < r; k++) {
      mp_sb_printf(&sb, "| %s | %s | %s | %s |\n", rows[k].model, rows[k].repo, rows[k].verdict, rows[k].why);
      mp_sb_puts(&js, k ? ", {\"model\": " : "{\"model\": ");
      mp_sb_json_str(&js, rows[k].model, strlen(rows[k].model));
      mp_sb_puts(&js, ", \"repo\": ");
      mp_sb_json_str(&js, rows[k].repo, strlen(rows[k].repo));
      mp_sb_puts(&js, ", \"result\": ");
      mp_sb_json_str(&js, rows[k].verdict, strlen(rows[k].verdict));
      mp_sb_puts(&js, ", \"why\": ");
      mp_sb_json_str(&js, rows[k].why, strlen(rows[k].why));
      mp_sb_puts(&js, ", \"commit\": ");
      if (rows[k].commit[0])
        mp_sb_json_str(&js, rows[k].commit, strlen(rows[k].commit));
      else
        mp_sb_puts(&js, "null");
      mp_sb_puts(&js, "}");
    }
    mp_sb_puts(&js, "]}\n");
    if (!sb.oom && mp_write_file_atomic(path, sb.buf, sb.len) != MP_OK) errors++;
    snprintf(path, sizeof path, "%s/uploads.json", mp_pipeline_workdir(p));
    if (!js.oom && mp_write_file_atomic(path, js.buf, js.len) != MP_OK) errors++;
    mp_sb_free(&sb);
    mp_sb_free(&js);
  }
  free(rows);
  return errors;
}

int mp_cmd_pipeline(int argc, char **argv) {
  const char *configs[64];
  size_t nc = 0;
  mp_pipeline_options o;
  memset(&o, 0, sizeof o);
  o.jobs = 1;
  o.seed = 42;
  o.latency_requests = -1;
  int even_if_fail = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    long long x;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(k_help, stdout);
      return MP_EXIT_OK;
    } else if (mp_cli_opt(argc, argv, &i, "--config", &v)) {
      if (!v) return MP_EXIT_USAGE;
      if (nc == 64) return mp_cli_usage_error("pipeline", "too many --config");
      configs[nc++] = v;
    } else if (mp_cli_opt(argc, argv, &i, "--models", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o.models_filter = v;
    } else if (mp_cli_opt(argc, argv, &i, "--datasets", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o.datasets_filter = v;
    } else if (mp_cli_opt(argc, argv, &i, "--workdir", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o.workdir = v;
    } else if (mp_cli_opt(argc, argv, &i, "--data-dir", &v)) {
      if (!v) return MP_EXIT_USAGE;
      o.data_dir = v;
    } else if (mp_cli_opt(argc, argv, &i, "--jobs", &v) || mp_cli_opt(argc, argv, &i, "-j", &v)) {
      if (!v || mp_cli_opt_int("pipeline", "-j", v, 1, 256, &x)) return MP_EXIT_USAGE;
      o.jobs = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--threads", &v)) {
      if (!v || mp_cli_opt_int("pipeline", "--threads", v, 0, 1024, &x)) return MP_EXIT_USAGE;
      o.threads = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--gpu-memory-mb", &v)) {
      if (!v || mp_cli_opt_int("pipeline", "--gpu-memory-mb", v, 1, 1000000000, &x)) return MP_EXIT_USAGE;
      o.gpu_memory_mb = (double)x;
    } else if (mp_cli_opt(argc, argv, &i, "--max-samples", &v)) {
      if (!v || mp_cli_opt_int("pipeline", "--max-samples", v, 1, 1LL << 40, &x)) return MP_EXIT_USAGE;
      o.max_samples_override = (long)x;
    } else if (mp_cli_opt(argc, argv, &i, "--latency-requests", &v)) {
      if (!v || mp_cli_opt_int("pipeline", "--latency-requests", v, 0, 1 << 20, &x)) return MP_EXIT_USAGE;
      o.latency_requests = (long)x;
    } else if (mp_cli_opt(argc, argv, &i, "--seed", &v)) {
      if (!v || mp_cli_opt_int("pipeline", "--seed", v, 0, 1LL << 62, &x)) return MP_EXIT_USAGE;
      o.seed = (unsigned long)x;
    } else if (!strcmp(a, "--dry-run")) {
      o.dry_run = 1;
    } else if (!strcmp(a, "--no-skip")) {
      o.no_skip = 1;
    } else if (!strcmp(a, "--json")) {
      o.json = 1;
    } else if (!strcmp(a, "--upload-even-if-gates-fail")) {
      even_if_fail = 1;
    } else if (!strncmp(a, "-j", 2) && a[2]) {
      if (mp_cli_opt_int("pipeline", "-j", a + 2, 1, 256, &x)) return MP_EXIT_USAGE;
      o.jobs = (int)x;
    } else {
      return mp_cli_usage_error("pipeline", "unknown option or argument '%s'", a);
    }
  }
  if (!nc) return mp_cli_usage_error("pipeline", "at least one --config is required");
  mp_pl_config *cfg;
  mp_status st = mp_pl_config_load(configs, nc, &cfg);
  if (st) return mp_cli_fail("pipeline", st);
  for (size_t i = 0; i < cfg->n_warnings; i++)
    fprintf(stderr, "mlxport pipeline: warning: %s\n", cfg->warnings[i]);
  mp_pipeline *p;
  st = mp_pipeline_plan(cfg, &o, &p);
  if (st) {
    mp_pl_config_free(cfg);
    return mp_cli_fail("pipeline", st);
  }
  if (o.dry_run) {
    print_plan(p, stdout);
    publish(p, cfg, &o, even_if_fail, stdout);
    printf("dry run: nothing was changed on disk\n");
    mp_pipeline_free(p);
    mp_pl_config_free(cfg);
    return MP_EXIT_OK;
  }
  print_plan(p, stderr);
  progress pr = {
      .tty = isatty(2) && !getenv("NO_COLOR") ? 1 : isatty(2), .total = mp_pipeline_job_count(p), .t0 = mp_now_s()};
  st = mp_pipeline_run(p, on_event, &pr);
  if (pr.tty) fputs("\r\033[K", stderr);
  if (st && st != MP_ERR_CANCELLED) { /* could not run at all (lock, folder): nothing to report */
    int rc0 = mp_cli_fail("pipeline", st);
    mp_pipeline_free(p);
    mp_pl_config_free(cfg);
    return rc0;
  }
  char run_msg[2048];
  snprintf(run_msg, sizeof run_msg, "%s", mp_last_error());
  int gates_failed = 0, errors = 0;
  mp_status rs =
      mp_pipeline_report(p, &gates_failed, &errors); /* finished results are reported even when interrupted */
  if (!st && !rs) errors += publish(p, cfg, &o, even_if_fail, stderr);
  int rc;
  if (st) {
    mp_err(st, "%s", run_msg);
    rc = mp_cli_fail("pipeline", st);
  } else if (rs) {
    rc = mp_cli_fail("pipeline", rs);
  } else {
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.md", mp_pipeline_workdir(p));
    if (o.json) {
      snprintf(path, sizeof path, "%s/testing_summary.json", mp_pipeline_workdir(p));
    }
    char *buf = NULL;
    size_t n = 0;
    if (mp_read_file(path, &buf, &n, 64 << 20) == MP_OK) fwrite(buf, 1, n, stdout);
    free(buf);
    fprintf(stderr, "\nreport: %s/reports/report.html\nsummary: %s/summary.md\n", mp_pipeline_workdir(p),
            mp_pipeline_workdir(p));
    rc = errors ? MP_EXIT_ERROR : gates_failed ? MP_EXIT_GATE : MP_EXIT_OK;
    if (errors)
      fprintf(stderr, "mlxport pipeline: %d job(s) failed: see `mlxport status --workdir %s`\n", errors,
              mp_pipeline_workdir(p));
  }
  mp_pipeline_free(p);
  mp_pl_config_free(cfg);
  return rc;
}
