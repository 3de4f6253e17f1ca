/* mlxport pipeline: the whole job from YAML configuration files. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "eval/data_dirs.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
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
    "  --threads N         total compute threads (default: all cores)\n"
    "  --workdir DIR       work folder (default $MLX_TEMP_DIR/mlx_conversion, else $TMPDIR/mlx_conversion)\n"
    "  --data-dir DIR      where built-in datasets are found (see mlxport eval --help)\n"
    "  --max-samples N     evaluate at most N examples per dataset (overrides the configs)\n"
    "  --seed S            sampling and bootstrap seed (default 42)\n"
    "  --latency-requests N  batch-1 requests timed per evaluation (default: eval's, 100)\n"
    "  --json              print the summary as JSON on stdout\n"
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
        o += (size_t)snprintf(line + o, sizeof line - o, " %s (%.0fs)", x->id, mp_now_s() - pr->t0 - (x->started - pr->t0));
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
  for (size_t i = 0; i < mp_pipeline_job_count(p); i++) {
    const mp_job *j = mp_pipeline_job(p, i);
    int skip = j->state == MP_JOB_SKIPPED;
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
              j->data_path[0] && mp_data_find_is_fallback(j->data_path) ? " (embedded demo set: real benchmark not found)" : "");
    fprintf(f, "%s%s%s\n", skip ? "  [skip: " : "", skip ? j->reason : "", skip ? "]" : "");
  }
}

int mp_cmd_pipeline(int argc, char **argv) {
  const char *configs[64];
  size_t nc = 0;
  mp_pipeline_options o;
  memset(&o, 0, sizeof o);
  o.jobs = 1;
  o.seed = 42;
  o.latency_requests = -1;
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
      if (!v || mp_cli_parse_int("pipeline", "-j", v, 1, 256, &x)) return MP_EXIT_USAGE;
      o.jobs = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--threads", &v)) {
      if (!v || mp_cli_parse_int("pipeline", "--threads", v, 0, 1024, &x)) return MP_EXIT_USAGE;
      o.threads = (int)x;
    } else if (mp_cli_opt(argc, argv, &i, "--max-samples", &v)) {
      if (!v || mp_cli_parse_int("pipeline", "--max-samples", v, 1, 1LL << 40, &x)) return MP_EXIT_USAGE;
      o.max_samples_override = (long)x;
    } else if (mp_cli_opt(argc, argv, &i, "--latency-requests", &v)) {
      if (!v || mp_cli_parse_int("pipeline", "--latency-requests", v, 0, 1 << 20, &x)) return MP_EXIT_USAGE;
      o.latency_requests = (long)x;
    } else if (mp_cli_opt(argc, argv, &i, "--seed", &v)) {
      if (!v || mp_cli_parse_int("pipeline", "--seed", v, 0, 1LL << 62, &x)) return MP_EXIT_USAGE;
      o.seed = (unsigned long)x;
    } else if (!strcmp(a, "--dry-run")) {
      o.dry_run = 1;
    } else if (!strcmp(a, "--no-skip")) {
      o.no_skip = 1;
    } else if (!strcmp(a, "--json")) {
      o.json = 1;
    } else if (!strncmp(a, "-j", 2) && a[2]) {
      if (mp_cli_parse_int("pipeline", "-j", a + 2, 1, 256, &x)) return MP_EXIT_USAGE;
      o.jobs = (int)x;
    } else {
      return mp_cli_usage_error("pipeline", "unknown option or argument '%s'", a);
    }
  }
  if (!nc) return mp_cli_usage_error("pipeline", "at least one --config is required");
  static char exe[PATH_MAX];
  ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (l <= 0) return mp_cli_fail("pipeline", mp_err(MP_ERR_IO, "cannot find the mlxport executable (/proc/self/exe)"));
  exe[l] = 0;
  o.self_exe = exe;
  mp_pl_config *cfg;
  mp_status st = mp_pl_config_load(configs, nc, &cfg);
  if (st) return mp_cli_fail("pipeline", st);
  for (size_t i = 0; i < cfg->n_warnings; i++) fprintf(stderr, "mlxport pipeline: warning: %s\n", cfg->warnings[i]);
  mp_pipeline *p;
  st = mp_pipeline_plan(cfg, &o, &p);
  if (st) {
    mp_pl_config_free(cfg);
    return mp_cli_fail("pipeline", st);
  }
  if (o.dry_run) {
    print_plan(p, stdout);
    printf("dry run: nothing was changed on disk\n");
    mp_pipeline_free(p);
    mp_pl_config_free(cfg);
    return MP_EXIT_OK;
  }
  print_plan(p, stderr);
  progress pr = {.tty = isatty(2) && !getenv("NO_COLOR") ? 1 : isatty(2), .total = mp_pipeline_job_count(p), .t0 = mp_now_s()};
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
  mp_status rs = mp_pipeline_report(p, &gates_failed, &errors); /* finished results are reported even when interrupted */
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
    if (errors) fprintf(stderr, "mlxport pipeline: %d job(s) failed: see `mlxport status --workdir %s`\n", errors, mp_pipeline_workdir(p));
  }
  mp_pipeline_free(p);
  mp_pl_config_free(cfg);
  return rc;
}
