/* The pipeline (see pipeline.h): configuration -> plan of convert / eval jobs -> parallel,
 * resumable, crash-safe execution in forked children in a managed work folder -> reports. */
#include "pipeline/pipeline.h"
#include "core/clock.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/strbuf.h"
#include "eval/data_dirs.h"
#include "eval/eval_job.h"
#include "eval/evaluate.h"
#include "eval/qsearch.h"
#include "eval/report.h"
#include "format/hf.h"
#include "hub/hub.h"
#include "model/config.h"
#include "model/device.h"
#include "model/model.h"
#include "quant/convert.h"
#include "quant/mlx_affine.h"
#include "quant/mlx_fp.h"

struct mp_pipeline {
  const mp_pl_config *cfg;
  mp_pipeline_options o;
  char *workdir;
  mp_job *jobs;
  size_t n;
  int lock_fd;
  /* GPU memory budget per CUDA ordinal used by the plan's GPU jobs (resolve_gpu_budgets) */
  double *gpu_budget;
  size_t n_gpu_budget;
  int gpu_from_device; /* the default: 0.9 x the device's memory */
};

const char *mp_job_kind_name(mp_job_kind k) {
  return k == MP_JOB_CONVERT ? "convert" : k == MP_JOB_EVAL ? "eval" : "download";
}

const char *mp_job_state_name(mp_job_state s) {
  static const char *n[] = {"pending", "running", "done", "gate failed", "failed", "skipped"};
  return (unsigned)s < 6 ? n[s] : "?";
}

size_t mp_pipeline_job_count(const mp_pipeline *p) { return p->n; }
mp_job *mp_pipeline_job(mp_pipeline *p, size_t i) { return &p->jobs[i]; }
const char *mp_pipeline_workdir(const mp_pipeline *p) { return p->workdir; }

char *mp_pipeline_default_workdir(void) {
  const char *e = getenv("MLX_TEMP_DIR");
  if (e && *e) return mp_path_join(e, "mlx_conversion");
  e = getenv("TMPDIR");
  return mp_path_join(e && *e ? e : "/tmp", "mlx_conversion");
}

static int in_filter(const char *filter, const char *name) {
  if (!filter) return 1;
  size_t n = strlen(name);
  for (const char *s = filter; *s;) {
    const char *e = strchr(s, ',');
    size_t l = e ? (size_t)(e - s) : strlen(s);
    if (l == n && !strncmp(s, name, n)) return 1;
    if (!e) break;
    s = e + 1;
  }
  return 0;
}

/* Original-schema dataset names -> built-in keys. */
static const char *builtin_key_for(const mp_pl_dataset *d) {
  static const struct {
    const char *name, *subset, *key;
  } map[] = {{"glue", "sst2", "sst2"},
             {"glue", "stsb", "stsb"},
             {"glue", "mnli", "mnli"},
             {"glue", "qnli", "qnli"},
             {"glue", "mrpc", "mrpc"},
             {"glue", "rte", "rte"},
             {"super_glue", "rte", "rte"},
             {"multi_nli", NULL, "mnli"},
             {"nyu-mll/multi_nli", NULL, "mnli"},
             {"snli", NULL, "snli"},
             {"stanfordnlp/snli", NULL, "snli"},
             {"sst2", NULL, "sst2"},
             {"stanfordnlp/sst2", NULL, "sst2"},
             {"anli", NULL, "anli"},
             {"facebook/anli", NULL, "anli"},
             {"fever", NULL, "fever_nli"},
             {"pietrolesci/nli_fever", NULL, "fever_nli"},
             {"nli_fever", NULL, "fever_nli"},
             {"mteb/stsbenchmark-sts", NULL, "stsb"},
             {"stsb_multi_mt", NULL, "stsb"},
             {"sentence-transformers/stsb", NULL, "stsb"}};
  if (!d->name) return mp_data_relpath(d->key) ? d->key : NULL;
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (!strcmp(map[i].name, d->name) && (!map[i].subset || (d->subset && !strcmp(map[i].subset, d->subset))))
      return map[i].key;
  return mp_data_relpath(d->key) ? d->key : NULL;
}

static void q_suffix(const mp_pl_model *m, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s%s", m->quant.variant[0] ? m->quant.variant : "q8g64", m->quant.dtype ? "-" : "",
           m->quant.dtype ? m->quant.dtype : "");
}

static double dir_weights_mb(const char *dir) {
  static const char *names[] = {"model.safetensors", "pytorch_model.bin"};
  double mb = 0;
  for (size_t i = 0; i < 2; i++) {
    char *p = mp_path_join(dir, names[i]);
    int64_t s = p ? mp_file_size(p) : -1;
    if (s > 0) mb += (double)s / (1024.0 * 1024.0);
    free(p);
  }
  if (mb == 0) mb = (double)mp_tree_size(dir) / (1024.0 * 1024.0);
  return mb;
}

/* ---------------------------------------------------------------- GPU jobs */

/* tokenizer_config.json's model_max_length (0 when absent or the "very large" placeholder). */
static long tokenizer_max_length(const char *dir) {
  char *path = mp_path_join(dir, "tokenizer_config.json");
  long r = 0;
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *doc;
  if (path && mp_is_file(path) && mp_json_parse_file(path, &a, &doc) == MP_OK) {
    const mp_json *m = mp_json_get(doc, "model_max_length");
    if (m && m->type == MP_JSON_NUMBER && m->num > 0 && m->num < 1e9) r = (long)m->num;
  }
  mp_err_clear();
  mp_arena_free(&a);
  free(path);
  return r;
}

double mp_pipeline_gpu_estimate_mb(const char *dir, long batch, long max_length, int esize) {
  int64_t params = 0;
  int cls = 0;
  mp_model_config c;
  if (mp_model_config_param_count(dir, &params, &cls) != MP_OK || mp_model_config_load(dir, &c) != MP_OK) return -1;
  /* the sequence length eval pads to at most: mp_model_default_max_length without opening the model */
  int64_t pos = c.max_positions;
  if (c.family == MP_FAMILY_ROBERTA) pos -= c.pad_token_id + 1;
  if (c.family == MP_FAMILY_MPNET) pos -= 2;
  if (pos <= 0) pos = 512;
  int64_t seq = pos;
  long tm = tokenizer_max_length(dir);
  if (c.st_max_seq_length > 0 && c.st_max_seq_length < seq)
    seq = c.st_max_seq_length;
  else if (tm > 0 && tm < seq)
    seq = tm;
  if (max_length > 0) seq = max_length < pos ? max_length : pos;
  if (batch <= 0) batch = 32; /* mp_eval_options' default batch size; the pipeline passes none */
  if (esize <= 0) {
    const char *dt = getenv("MP_CUDA_DTYPE");
    esize = dt && (!strcmp(dt, "float32") || !strcmp(dt, "fp32")) ? 4 : 2;
  }
  int64_t layers = c.layers > 0 ? c.layers : 1;
  if (c.family == MP_FAMILY_BART && c.hook_points > c.layers + 2) layers = c.hook_points - 2; /* + decoder_layers */
  const double MB = 1024.0 * 1024.0;
  double weights = (double)params * esize / MB;
  double act =
      (double)batch * (double)seq * (double)layers * (8.0 * (double)c.hidden + 2.0 * (double)c.intermediate) * 2.0 / MB;
  double staging = (double)c.vocab_size * (double)c.hidden * 4.0 / MB;
  double workspace = 32.0;
  mp_model_config_free(&c);
  double sub = weights + act + staging + workspace;
  return sub + 512.0 + 0.10 * sub;
}

/* Total memory of CUDA device `index` in MB, asked from a short-lived child process (CUDA must
 * not be initialized in the pipeline's process: its forked jobs could not use it); 0 when it
 * cannot be known (a build without CUDA, no driver, no such device). */
static double query_gpu_total_mb(int index) {
  if (!mp_device_cuda_built()) return 0;
  int fds[2];
  if (pipe(fds) != 0) return 0;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    close(fds[0]);
    size_t tot = 0;
    if (mp_device_memory(index, NULL, &tot) != MP_OK) tot = 0;
    ssize_t w = write(fds[1], &tot, sizeof tot);
    _exit(w == (ssize_t)sizeof tot ? 0 : 3);
  }
  close(fds[1]);
  size_t tot = 0;
  ssize_t r;
  while ((r = read(fds[0], &tot, sizeof tot)) < 0 && errno == EINTR) {
  }
  if (r != (ssize_t)sizeof tot) tot = 0;
  close(fds[0]);
  int wst;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  return (double)tot / (1024.0 * 1024.0);
}

/* The budget of every CUDA ordinal the plan's GPU jobs use: --gpu-memory-mb, else the
 * configuration's gpu_memory_mb, else 0.9 x the device's memory, else unknown (0: one GPU job at a
 * time on that device). */
static mp_status resolve_gpu_budgets(mp_pipeline *p) {
  int max_dev = -1;
  for (size_t i = 0; i < p->n; i++)
    if (p->jobs[i].gpu_device > max_dev) max_dev = p->jobs[i].gpu_device;
  if (max_dev < 0) return MP_OK;
  p->n_gpu_budget = (size_t)max_dev + 1;
  p->gpu_budget = calloc(p->n_gpu_budget, sizeof *p->gpu_budget);
  if (!p->gpu_budget) return mp_err(MP_ERR_NOMEM, "out of memory");
  double set = p->o.gpu_memory_mb > 0 ? p->o.gpu_memory_mb : p->cfg->gpu_memory_mb;
  p->gpu_from_device = !(set > 0);
  for (int d = 0; d <= max_dev; d++) {
    int used = 0;
    for (size_t i = 0; i < p->n && !used; i++)
      used = p->jobs[i].gpu_device == d && p->jobs[i].state == MP_JOB_PENDING;
    if (!used) continue;
    p->gpu_budget[d] = set > 0 ? set : 0.9 * query_gpu_total_mb(d);
  }
  return MP_OK;
}

mp_job_admit mp_pipeline_admit(const mp_job *jobs, size_t n_jobs, size_t i, int max_jobs, const mp_gpu_budget *b,
                               char *why, size_t cap) {
  if (why && cap) why[0] = 0;
  const mp_job *j = &jobs[i];
  int running = 0, on_dev = 0, unknown_on_dev = 0;
  double used = 0;
  for (size_t k = 0; k < n_jobs; k++) {
    const mp_job *x = &jobs[k];
    if (x->state != MP_JOB_RUNNING) continue;
    running++;
    if (j->gpu_device >= 0 && x->gpu_device == j->gpu_device) {
      on_dev++;
      if (x->est_gpu_mb > 0)
        used += x->est_gpu_mb;
      else
        unknown_on_dev = 1;
    }
  }
  if (j->gpu_device < 0) return running < max_jobs ? MP_ADMIT_START : MP_ADMIT_WAIT;
  double budget = b && (size_t)j->gpu_device < b->n ? b->mb[j->gpu_device] : 0;
  if (budget > 0 && j->est_gpu_mb > budget) {
    if (why && cap)
      snprintf(why, cap, "needs about %.0f MB of GPU memory on cuda:%d, the budget is %.0f MB (gpu_memory_mb%s)",
               j->est_gpu_mb, j->gpu_device, budget,
               b->from_device ? "; by default 0.9 x the device's memory: set gpu_memory_mb or --gpu-memory-mb" : "");
    return MP_ADMIT_NEVER;
  }
  if (running >= max_jobs) return MP_ADMIT_WAIT;
  /* no budget, or no estimate of its own or of a running one: alone on its device */
  if (budget <= 0 || j->est_gpu_mb <= 0 || unknown_on_dev) return on_dev ? MP_ADMIT_WAIT : MP_ADMIT_START;
  return used + j->est_gpu_mb <= budget ? MP_ADMIT_START : MP_ADMIT_WAIT;
}

/* The GPU estimate of an eval job from its source model's (or, failing that, its converted
 * model's) config.json; 0 when neither can be read yet. */
static void gpu_estimate(mp_job *j) {
  if (j->gpu_device < 0 || j->est_gpu_mb > 0) return;
  const char *dirs[2] = {NULL, j->out_dir};
  char *src = NULL;
  if (mp_is_dir(j->source))
    dirs[0] = j->source;
  else if (j->source[0] && mp_hf_resolve_cached(j->source, &src) == MP_OK)
    dirs[0] = src;
  for (int k = 0; k < 2 && j->est_gpu_mb <= 0; k++) {
    if (!dirs[k] || !mp_is_dir(dirs[k])) continue;
    double e = mp_pipeline_gpu_estimate_mb(dirs[k], 0, j->dataset ? j->dataset->max_length : 0, 0);
    if (e > 0) j->est_gpu_mb = e;
  }
  mp_err_clear();
  free(src);
}

mp_status mp_pipeline_plan(const mp_pl_config *cfg, const mp_pipeline_options *o, mp_pipeline **out) {
  *out = NULL;
  mp_pipeline *p = calloc(1, sizeof *p);
  if (!p) return mp_err(MP_ERR_NOMEM, "out of memory");
  p->cfg = cfg;
  p->o = *o;
  p->lock_fd = -1;
  p->workdir = o->workdir ? strdup(o->workdir) : mp_pipeline_default_workdir();
  size_t cap = 16;
  p->jobs = calloc(cap, sizeof *p->jobs);
  if (!p->workdir || !p->jobs) {
    mp_pipeline_free(p);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  if (o->models_filter)
    for (const char *s = o->models_filter; *s;) {
      const char *e = strchr(s, ',');
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
      if (!mp_pl_config_model(cfg, name)) {
        mp_pipeline_free(p);
        return mp_err(MP_ERR_INVALID_ARG, "--models: no model named \"%s\" in the configuration", name);
      }
      if (!e) break;
      s = e + 1;
    }
  for (size_t mi = 0; mi < cfg->n_models; mi++) {
    const mp_pl_model *m = &cfg->models[mi];
    if (!in_filter(o->models_filter, m->name)) continue;
    /* a model whose source+quant equals an earlier one's is converted/evaluated under that one */
    int alias_of_other = 0;
    for (size_t k = 0; k < mi; k++)
      for (size_t a = 0; a < cfg->models[k].n_aliases; a++)
        if (!strcmp(cfg->models[k].aliases[a], m->name) && in_filter(o->models_filter, cfg->models[k].name))
          alias_of_other = 1;
    if (alias_of_other) continue;
    if (p->n + 3 + m->n_benchmarks >= cap) { /* a download, the conversion, the evaluations */
      cap = (p->n + 3 + m->n_benchmarks) * 2;
      mp_job *nj = realloc(p->jobs, cap * sizeof *nj);
      if (!nj) {
        mp_pipeline_free(p);
        return mp_err(MP_ERR_NOMEM, "out of memory");
      }
      p->jobs = nj;
    }
    char *src = NULL;
    char ref[1200];
    int is_path = m->hf_name[0] == '.' || m->hf_name[0] == '/';
    if (m->hf_name[0] == '.' && m->where.file) {
      /* a relative folder path is relative to the configuration file that names it */
      char *dir = mp_path_dirname(m->where.file);
      snprintf(ref, sizeof ref, "%s/%s", dir ? dir : ".", m->hf_name);
      free(dir);
    } else {
      snprintf(ref, sizeof ref, "%s%s%s", m->hf_name, m->revision ? "@" : "", m->revision ? m->revision : "");
    }
    /* A repo id that is not in the cache gets a download job of its own (one per repo id and
     * revision, shared by every model that names it), which the conversion waits for; planning
     * itself never touches the network. Offline, it stays "not available locally". */
    char why[900] = "";
    int dl = -1;
    if (mp_hf_resolve_cached(ref, &src) != MP_OK) {
      snprintf(why, sizeof why, "%s", mp_last_error());
      mp_err_clear();
      if (!is_path && mp_hub_valid_repo_id(m->hf_name) && (!m->revision || mp_hub_valid_revision(m->revision)) &&
          !mp_hub_offline()) {
        char id[200];
        size_t o2 = (size_t)snprintf(id, sizeof id, "download-");
        for (const char *c = ref; *c && o2 + 3 < sizeof id; c++) { /* a file name: '/' -> "--" */
          if (*c == '/')
            id[o2++] = '-', id[o2++] = '-';
          else
            id[o2++] = *c;
        }
        id[o2] = 0;
        for (size_t k = 0; k < p->n && dl < 0; k++)
          if (p->jobs[k].kind == MP_JOB_DOWNLOAD && !strcmp(p->jobs[k].id, id)) dl = (int)k;
        if (dl < 0) {
          dl = (int)p->n++;
          mp_job *dj = &p->jobs[dl];
          memset(dj, 0, sizeof *dj);
          dj->kind = MP_JOB_DOWNLOAD;
          dj->model = m;
          dj->dep = dj->dep2 = -1;
          dj->gpu_device = -1;
          dj->est_mb = 64;
          snprintf(dj->id, sizeof dj->id, "%s", id);
          snprintf(dj->source, sizeof dj->source, "%.1000s", ref);
        }
      }
    }
    char qs[160];
    q_suffix(m, qs, sizeof qs);
    size_t ci = p->n++;
    mp_job *cj = &p->jobs[ci];
    memset(cj, 0, sizeof *cj);
    cj->kind = MP_JOB_CONVERT;
    cj->model = m;
    cj->dep = dl;
    cj->dep2 = -1;
    cj->gpu_device = -1;
    snprintf(cj->id, sizeof cj->id, "convert-%s-%s", m->name, qs);
    snprintf(cj->out_dir, sizeof cj->out_dir, "%s/models/%s-%s", p->workdir, m->name, qs);
    if (src) {
      snprintf(cj->source, sizeof cj->source, "%s", src);
      cj->est_mb = 2.5 * dir_weights_mb(src) + 150;
    } else if (dl >= 0) {
      snprintf(cj->source, sizeof cj->source, "%.1000s", ref); /* resolved from the cache once downloaded */
      cj->est_mb = 1024;
    } else {
      cj->state = MP_JOB_SKIPPED;
      snprintf(cj->reason, sizeof cj->reason, "not available locally: %s", why);
    }
    free(src);
    for (size_t b = 0; b < m->n_benchmarks; b++) {
      const mp_pl_dataset *d = mp_pl_config_dataset(cfg, m->benchmarks[b]);
      if (!d || !in_filter(o->datasets_filter, d->key)) continue;
      /* same data under another key: evaluated once (under the first key) */
      if (d->same_as) {
        int dup = 0;
        for (size_t b2 = 0; b2 < m->n_benchmarks; b2++)
          if (!strcmp(m->benchmarks[b2], d->same_as) && in_filter(o->datasets_filter, d->same_as)) dup = 1;
        if (dup) continue;
      }
      mp_job *ej = &p->jobs[p->n++];
      memset(ej, 0, sizeof *ej);
      ej->kind = MP_JOB_EVAL;
      ej->model = m;
      ej->dataset = d;
      ej->dep = (int)ci;
      ej->dep2 = -1;
      ej->gpu_device = -1;
      mp_device_spec dspec;
      if (m->device && mp_device_parse(m->device, &dspec) == MP_OK && dspec.kind == MP_DEVICE_CUDA)
        ej->gpu_device = dspec.index;
      mp_err_clear();
      snprintf(ej->id, sizeof ej->id, "eval-%s-%s-%s", m->name, qs, d->key);
      snprintf(ej->out_dir, sizeof ej->out_dir, "%s", cj->out_dir);
      snprintf(ej->source, sizeof ej->source, "%s", cj->source);
      ej->est_mb = 2 * cj->est_mb;
      /* dataset file */
      char *path = NULL;
      mp_status ds_st;
      if (d->path) {
        if (d->path[0] == '/' || !d->where.file) {
          path = strdup(d->path);
        } else {
          char *dir = mp_path_dirname(d->where.file);
          path = dir ? mp_path_join(dir, d->path) : NULL;
          free(dir);
        }
        ds_st = path && mp_path_exists(path)
                    ? MP_OK
                    : mp_err(MP_ERR_NOT_FOUND, "dataset \"%s\": %s does not exist", d->key, path ? path : d->path);
      } else {
        const char *key = builtin_key_for(d);
        const char *hrepo = NULL, *hpat = NULL;
        ds_st = key ? mp_data_find_ex(key, o->data_dir, 0, &path)
                    : mp_err(MP_ERR_NOT_FOUND,
                             "dataset \"%s\" (%s%s%s) has no local copy: add `path:` to its definition, or place the "
                             "file where --data-dir points",
                             d->key, d->name ? d->name : "?", d->subset ? "/" : "", d->subset ? d->subset : "");
        /* no real copy here or in the Hugging Face cache: a download job for the key's Hub Parquet
         * file (preferred to the demo set), which the evaluation waits for */
        if (key && (ds_st || mp_data_find_is_fallback(path)) && mp_data_hub_source(key, &hrepo, &hpat) &&
            !mp_hub_offline()) {
          if (p->n + 1 >= cap) {
            mp_job *nj = realloc(p->jobs, (cap *= 2) * sizeof *nj);
            if (!nj) {
              free(path);
              mp_pipeline_free(p);
              return mp_err(MP_ERR_NOMEM, "out of memory");
            }
            p->jobs = nj;
            ej = &p->jobs[p->n - 1];
            cj = &p->jobs[ci];
          }
          char id[200];
          snprintf(id, sizeof id, "download-dataset-%s", key);
          int dd = -1;
          for (size_t k = 0; k < p->n && dd < 0; k++)
            if (p->jobs[k].kind == MP_JOB_DOWNLOAD && !strcmp(p->jobs[k].id, id)) dd = (int)k;
          if (dd < 0) { /* placed before the eval: swap so that the plan reads in order */
            mp_job tmp = *ej;
            mp_job *dj = ej;
            memset(dj, 0, sizeof *dj);
            dj->kind = MP_JOB_DOWNLOAD;
            dj->model = m;
            dj->dataset = d;
            dj->dep = dj->dep2 = -1;
            dj->gpu_device = -1;
            dj->est_mb = 64;
            snprintf(dj->id, sizeof dj->id, "%s", id);
            snprintf(dj->source, sizeof dj->source, "dataset:%s:%s", hrepo, hpat);
            dd = (int)(p->n - 1);
            ej = &p->jobs[p->n++];
            *ej = tmp;
          }
          ej->dep2 = dd;
          free(path);
          path = NULL;
          ds_st = MP_OK;
          mp_err_clear();
        }
      }
      if (ds_st) {
        ej->state = MP_JOB_SKIPPED;
        snprintf(ej->reason, sizeof ej->reason, "not available locally: %s", mp_last_error());
        mp_err_clear();
      } else if (!path) {
        ej->data_path[0] = 0; /* found by eval in the Hugging Face cache once downloaded */
      } else {
        snprintf(ej->data_path, sizeof ej->data_path, "%s", path);
      }
      free(path);
      if (cj->state == MP_JOB_SKIPPED && ej->state != MP_JOB_SKIPPED) {
        ej->state = MP_JOB_SKIPPED;
        snprintf(ej->reason, sizeof ej->reason, "model not available locally");
      }
      if (ej->state != MP_JOB_SKIPPED) gpu_estimate(ej);
    }
  }
  mp_status bst = resolve_gpu_budgets(p);
  if (bst) {
    mp_pipeline_free(p);
    return bst;
  }
  *out = p;
  return MP_OK;
}

double mp_pipeline_gpu_budget_mb(const mp_pipeline *p, int device, int *from_device) {
  if (from_device) *from_device = p->gpu_from_device;
  return device >= 0 && (size_t)device < p->n_gpu_budget ? p->gpu_budget[device] : 0;
}

void mp_pipeline_free(mp_pipeline *p) {
  if (!p) return;
  if (p->lock_fd >= 0) close(p->lock_fd);
  free(p->gpu_budget);
  free(p->jobs);
  free(p->workdir);
  free(p);
}

/* ---------------------------------------------------------------- execution */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static mp_status take_lock(mp_pipeline *p) {
  char *lp = mp_path_join(p->workdir, ".lock");
  if (!lp) return mp_err(MP_ERR_NOMEM, "out of memory");
  int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    mp_status s = mp_err_errno(MP_ERR_IO, "%s: cannot open the lock file", lp);
    free(lp);
    return s;
  }
  /* `mlxport status` takes a shared lock for an instant to see whether a pipeline runs: retry
   * briefly so that it never makes a starting pipeline fail */
  int locked = 0;
  for (int attempt = 0; attempt < 20 && !(locked = flock(fd, LOCK_EX | LOCK_NB) == 0); attempt++) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (!locked) {
    char buf[32] = "";
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    buf[r > 0 ? r : 0] = 0;
    close(fd);
    mp_status s = mp_err(MP_ERR_IO,
                         "another mlxport pipeline (pid %s) is running on the work folder %s; wait for it to finish or "
                         "use another --workdir",
                         buf[0] ? buf : "?", p->workdir);
    free(lp);
    return s;
  }
  char pid[32];
  int l = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)l, 0) < 0) { /* best effort */
  }
  free(lp);
  p->lock_fd = fd;
  return MP_OK;
}

static void job_state_write(mp_pipeline *p, const mp_job *j) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_puts(&sb, "{\"id\":");
  mp_sb_json_str(&sb, j->id, strlen(j->id));
  mp_sb_printf(&sb, ",\"kind\":\"%s\",\"state\":\"%s\",\"model\":", mp_job_kind_name(j->kind),
               mp_job_state_name(j->state));
  mp_sb_json_str(&sb, j->model->name, strlen(j->model->name));
  mp_sb_puts(&sb, ",\"dataset\":");
  if (j->dataset)
    mp_sb_json_str(&sb, j->dataset->key, strlen(j->dataset->key));
  else
    mp_sb_puts(&sb, "null");
  mp_sb_puts(&sb, ",\"reason\":");
  mp_sb_json_str(&sb, j->reason, strlen(j->reason));
  if (j->gpu_device >= 0) { /* an evaluation on a GPU: its device and estimated GPU memory */
    mp_sb_printf(&sb, ",\"device\":\"cuda:%d\",\"est_gpu_mb\":", j->gpu_device);
    if (j->est_gpu_mb > 0)
      mp_sb_printf(&sb, "%.0f", j->est_gpu_mb);
    else
      mp_sb_puts(&sb, "null");
  }
  mp_sb_printf(&sb, ",\"seconds\":%.3f,\"exit_code\":%d,\"finished_at\":%lld}\n", j->seconds, j->exit_code,
               (long long)time(NULL));
  char rel[300];
  snprintf(rel, sizeof rel, "jobs/%s.json", j->id);
  char *path = mp_path_join(p->workdir, rel);
  if (path && !sb.oom) mp_write_file_atomic(path, sb.buf, sb.len);
  mp_err_clear();
  free(path);
  mp_sb_free(&sb);
}

/* Settings key of an eval job: what its result depends on. */
static void eval_key(mp_pipeline *p, mp_job *j) {
  mp_sb sb;
  mp_sb_init(&sb);
  const mp_pl_model *m = j->model;
  mp_sb_printf(&sb, "v1|%ld|%s|%s|%s|%d|%d|%s|%g|%g|%g|%s|%s|%ld|%lu|", p->o.latency_requests, m->hf_name,
               m->revision ? m->revision : "", m->task ? m->task : "", m->quant.bits, m->quant.group_size,
               m->quant.dtype ? m->quant.dtype : "", m->quant.target_size_mb, m->quant.max_accuracy_drop,
               m->quant.min_speedup, j->dataset->key, j->data_path,
               p->o.max_samples_override > 0 ? p->o.max_samples_override : j->dataset->max_samples, p->o.seed);
  /* the converted model's metadata (changes when the conversion does) and the data file */
  char *meta = mp_path_join(j->out_dir, "conversion_metadata.json");
  char hex[65];
  if (meta && mp_sha256_file(meta, hex) == MP_OK) mp_sb_puts(&sb, hex);
  free(meta);
  if (mp_sha256_file(j->data_path, hex) == MP_OK) mp_sb_puts(&sb, hex);
  mp_err_clear();
  const mp_pl_dataset *d = j->dataset;
  mp_sb_printf(&sb, "|%s|%s|%s|%s|%s|%s|%ld", d->task ? d->task : "", d->template_ ? d->template_ : "",
               d->text_a ? d->text_a : "", d->text_b ? d->text_b : "", d->label_field ? d->label_field : "",
               d->score_field ? d->score_field : "", d->max_length);
  for (size_t i = 0; i < d->n_label_names; i++)
    mp_sb_printf(&sb, "|%s", d->label_names[i]);
  mp_sha256_hex(sb.buf, sb.len, j->key);
  mp_sb_free(&sb);
}

static int result_up_to_date(mp_pipeline *p, const mp_job *j) {
  char rel[300];
  snprintf(rel, sizeof rel, "results/%s.json", j->id);
  char *path = mp_path_join(p->workdir, rel);
  int ok = 0;
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *doc;
  if (path && mp_is_file(path) && mp_json_parse_file(path, &a, &doc) == MP_OK) {
    const char *k = mp_json_get_str(doc, "settings_key", "");
    ok = !strcmp(k, j->key);
  }
  mp_err_clear();
  mp_arena_free(&a);
  free(path);
  return ok;
}

static const char *task_for(const mp_job *j) {
  const char *t = j->dataset->task ? j->dataset->task : j->model->task;
  if (!t) return "auto";
  mp_task x;
  if (mp_task_parse(t, &x) != MP_OK) {
    mp_err_clear();
    return "auto";
  }
  return t;
}

/* ---- the job itself, run in the forked child through the library (no program is executed).
 * argv is the equivalent `mlxport` command line: the log's first line, the command recorded in
 * model cards (as `mlxport convert` / `mlxport eval` record theirs), and what each job does. */

static volatile sig_atomic_t g_child_cancel;
static void child_on_signal(int sig) {
  (void)sig;
  g_child_cancel = 1;
}

static void child_log(mp_log_level level, const char *msg, void *user) {
  (void)user;
  static const char *names[] = {"debug", "info", "warning", "error"};
  if (level == MP_LOG_INFO)
    fprintf(stderr, "%s\n", msg);
  else
    fprintf(stderr, "%s: %s\n", names[level], msg);
}

static int child_fail(const char *cmd, mp_status s) {
  const char *m = mp_last_error();
  fprintf(stderr, "mlxport %s: error: %s\n", cmd, (m && *m) ? m : mp_status_name(s));
  return s == MP_ERR_INVALID_ARG ? 2 : 3;
}

/* "mlxport ARGS..." quoted for a shell, as the CLI writes its command into cards; the value
 * after `base_flag` is reduced to its base name (a card names the folder, not a local path). */
static char *command_line(const char *const *argv, const char *base_flag) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_puts(&sb, "mlxport");
  for (int i = 1; argv[i]; i++) {
    const char *a = argv[i];
    if (i > 1 && base_flag && !strcmp(argv[i - 1], base_flag)) a = mp_path_basename(a);
    int plain = *a != 0;
    for (const char *c = a; *c; c++)
      if (!(isalnum((unsigned char)*c) || strchr("-_./=:@,+%", *c))) plain = 0;
    mp_sb_putc(&sb, ' ');
    if (plain) {
      mp_sb_puts(&sb, a);
      continue;
    }
    mp_sb_putc(&sb, '\'');
    for (const char *c = a; *c; c++) {
      if (*c == '\'')
        mp_sb_puts(&sb, "'\\''");
      else if (*c == '\n')
        mp_sb_putc(&sb, ' ');
      else
        mp_sb_putc(&sb, *c);
    }
    mp_sb_putc(&sb, '\'');
  }
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

/* The value following `flag` in argv, or NULL. */
static const char *arg_of(const char *const *argv, const char *flag) {
  for (int i = 1; argv[i] && argv[i + 1]; i++)
    if (!strcmp(argv[i], flag)) return argv[i + 1];
  return NULL;
}

static int run_download(const char *const *argv) {
  mp_hub_request rq = {0};
  const char *inc = arg_of(argv, "--include");
  rq.repo_id = argv[2];
  rq.repo_type = arg_of(argv, "--repo-type");
  rq.revision = arg_of(argv, "--revision");
  if (inc) rq.include = &inc, rq.n_include = 1;
  mp_hub_result res;
  mp_status st = mp_hub_download(&rq, &res);
  if (st) return child_fail("download", st);
  printf("%s\n", res.path);
  mp_hub_result_free(&res);
  return 0;
}

static int run_convert(mp_pipeline *p, const mp_job *j, const char *const *argv) {
  mp_convert_opts o;
  mp_convert_opts_init(&o);
  o.hf_path = j->source;
  o.mlx_path = j->out_dir;
  /* the same options the job's command line (argv, shown in the log and the card) gives
   * `mlxport convert`: bits, group size, mode, overrides, recipe, or the --q-auto search */
  const mp_pl_quant *qq = &j->model->quant;
  o.quantize = 1;
  o.bits = qq->bits;
  o.group_size = qq->group_size;
  o.no_skip = p->o.no_skip;
  if (qq->mode && mp_qmode_parse(qq->mode, &o.mode))
    return child_fail("convert", mp_err(MP_ERR_INVALID_ARG,
                                        "quantization.mode \"%s\" must be affine, mxfp4, nvfp4 "
                                        "or mxfp8",
                                        qq->mode));
  o.q_override = qq->overrides;
  o.n_q_override = qq->n_overrides;
  if (qq->recipe) {
    if (strstr(qq->recipe, ".json"))
      o.q_recipe_file = qq->recipe;
    else if (!strncmp(qq->recipe, "mixed_", 6))
      o.quant_predicate = qq->recipe;
    else
      o.q_recipe = qq->recipe;
  }
  int qauto = qq->auto_max_drop >= 0;
  mp_qauto_opts qa;
  mp_qauto_opts_init(&qa);
  if (qauto) {
    qa.max_drop = qq->auto_max_drop;
    qa.calibration = qq->auto_calibration;
    qa.eval = qq->auto_eval;
    if (qq->auto_calibration_samples > 0) qa.calibration_samples = (size_t)qq->auto_calibration_samples;
    if (qq->auto_eval_samples > 0) qa.eval_samples = (size_t)qq->auto_eval_samples;
    qa.data_dir = p->o.data_dir;
  } else if (!mp_mlx_quant_supported(o.mode, o.bits, o.group_size)) {
    char allowed[128];
    mp_qmode_allowed(o.mode, allowed, sizeof allowed);
    return child_fail("convert", mp_err(MP_ERR_INVALID_ARG, "--q-mode %s --q-bits %d --q-group-size %d: %s",
                                        mp_qmode_name(o.mode), o.bits, o.group_size, allowed));
  }
  if (j->model->quant.dtype && mp_mlx_dtype_parse(j->model->quant.dtype, &o.dtype))
    return child_fail("convert", MP_ERR_INVALID_ARG);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = child_on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  o.cancel = &g_child_cancel;
  char *cmd = command_line(argv, "--mlx-path");
  o.command = cmd;
  mp_convert_result r;
  memset(&r, 0, sizeof r);
  mp_status st = qauto ? mp_qauto_convert(&o, &qa, &r) : mp_convert(&o, &r);
  free(cmd);
  if (st) {
    mp_convert_result_free(&r);
    return child_fail("convert", st);
  }
  printf("%s: %s: %zu tensors (%zu quantized, %zu cast, %zu copied, %zu dropped, %zu layers kept float), "
         "%.2fs\n",
         r.status, o.mlx_path, r.n_tensors, r.n_quantized, r.n_cast, r.n_copied, r.n_dropped, r.n_float_layers,
         r.seconds);
  mp_convert_result_free(&r);
  return 0;
}

static double num_arg(const char *const *argv, const char *flag, double dflt) {
  const char *v = arg_of(argv, flag);
  return v ? strtod(v, NULL) : dflt;
}

static int run_eval(const char *const *argv) {
  mp_eval_job_opts jo;
  mp_eval_job_opts_init(&jo);
  jo.model = arg_of(argv, "--model");
  jo.baseline = arg_of(argv, "--baseline");
  jo.dataset = arg_of(argv, "--dataset");
  jo.data_file = arg_of(argv, "--data-file");
  jo.name = arg_of(argv, "--name");
  jo.text_fields = arg_of(argv, "--text-fields");
  jo.label_field = arg_of(argv, "--label-field");
  jo.score_field = arg_of(argv, "--score-field");
  jo.format = arg_of(argv, "--format");
  jo.label_names = arg_of(argv, "--label-names");
  jo.task = arg_of(argv, "--task");
  if (jo.task && mp_task_parse(jo.task, &jo.eo.task)) return child_fail("eval", MP_ERR_INVALID_ARG);
  if (arg_of(argv, "--template")) jo.eo.template_ = arg_of(argv, "--template");
  jo.eo.threads = (int)num_arg(argv, "--threads", 0);
  jo.eo.device = arg_of(argv, "--device");
  jo.max_samples = (size_t)num_arg(argv, "--max-samples", 0);
  jo.eo.seed = (uint64_t)strtoull(arg_of(argv, "--seed") ? arg_of(argv, "--seed") : "42", NULL, 10);
  jo.eo.latency_requests = (size_t)num_arg(argv, "--latency-requests", (double)jo.eo.latency_requests);
  jo.eo.max_length = (size_t)num_arg(argv, "--max-length", 0);
  jo.go.max_accuracy_drop = num_arg(argv, "--max-accuracy-drop", jo.go.max_accuracy_drop);
  jo.go.min_speedup = num_arg(argv, "--min-speedup", jo.go.min_speedup);
  jo.go.target_size_mb = num_arg(argv, "--target-size-mb", jo.go.target_size_mb);
  char *cmd = command_line(argv, "--model");
  jo.update_card = 1;
  jo.card_command = cmd;
  mp_eval_job_out out;
  mp_status st = mp_eval_job_run(&jo, &out);
  free(cmd);
  int rc;
  if (st) {
    rc = child_fail("eval", st);
  } else {
    fwrite(out.doc.buf, 1, out.doc.len, stdout);
    rc = out.all_passed ? 0 : 1;
  }
  mp_eval_job_out_free(&out);
  return rc;
}

/* One job in this (forked) process through the library; returns the exit status of the
 * equivalent command: 0 done, 1 a gate failed, 2 bad settings, 3 error. */
static int run_job(mp_pipeline *p, const mp_job *j, const char *const *argv) {
  mp_set_log_callback(child_log, NULL, MP_LOG_INFO);
  mp_err_clear();
  if (j->kind == MP_JOB_DOWNLOAD) return run_download(argv);
  if (j->kind == MP_JOB_CONVERT) return run_convert(p, j, argv);
  return run_eval(argv);
}

/* Starts a job as a forked child process running it through the library (run_job); stdout goes
 * to `out_path` (eval JSON), stderr to the log. */
static int spawn(mp_pipeline *p, mp_job *j, int threads) {
  char logp[1200], outp[1200];
  snprintf(logp, sizeof logp, "%s/logs/%s.log", p->workdir, j->id);
  snprintf(outp, sizeof outp, "%s/results/.%s.json.tmp", p->workdir, j->id);
  char th[16], bits[16], gs[16], ms[32], seed[32], drop[32], sp[32], size[32];
  snprintf(th, sizeof th, "%d", threads);
  snprintf(bits, sizeof bits, "%d", j->model->quant.bits);
  snprintf(gs, sizeof gs, "%d", j->model->quant.group_size);
  const char *argv[96];
  char adrop[32], acs[32], aes[32];
  int a = 0;
  argv[a++] = "mlxport";
  if (j->kind == MP_JOB_DOWNLOAD && !strncmp(j->source, "dataset:", 8)) { /* dataset:REPO:PATTERN */
    static _Thread_local char repo[512], pat[512];
    const char *r = j->source + 8, *c = strchr(r, ':');
    snprintf(repo, sizeof repo, "%.*s", c ? (int)(c - r) : (int)strlen(r), r);
    snprintf(pat, sizeof pat, "%s", c ? c + 1 : "*");
    argv[a++] = "download";
    argv[a++] = repo;
    argv[a++] = "--repo-type", argv[a++] = "dataset";
    argv[a++] = "--include", argv[a++] = pat;
    argv[a++] = "--quiet";
  } else if (j->kind == MP_JOB_DOWNLOAD) {
    static _Thread_local char id[1024], rev[1024];
    const char *at = strchr(j->source, '@');
    snprintf(id, sizeof id, "%.*s", (int)(at ? (size_t)(at - j->source) : strlen(j->source)), j->source);
    argv[a++] = "download";
    argv[a++] = id;
    if (at) snprintf(rev, sizeof rev, "%s", at + 1), argv[a++] = "--revision", argv[a++] = rev;
    argv[a++] = "--quiet";
  } else if (j->kind == MP_JOB_CONVERT) {
    argv[a++] = "convert";
    argv[a++] = "--hf-path", argv[a++] = j->source;
    argv[a++] = "--mlx-path", argv[a++] = j->out_dir;
    const mp_pl_quant *qq = &j->model->quant;
    if (qq->auto_max_drop >= 0) {
      snprintf(adrop, sizeof adrop, "%g", qq->auto_max_drop);
      argv[a++] = "--q-auto", argv[a++] = "--max-drop", argv[a++] = adrop;
      argv[a++] = "--calibration", argv[a++] = qq->auto_calibration;
      if (qq->auto_eval) argv[a++] = "--eval", argv[a++] = qq->auto_eval;
      if (qq->auto_calibration_samples > 0)
        snprintf(acs, sizeof acs, "%.0f", qq->auto_calibration_samples), argv[a++] = "--calibration-samples",
                                                                         argv[a++] = acs;
      if (qq->auto_eval_samples > 0)
        snprintf(aes, sizeof aes, "%.0f", qq->auto_eval_samples), argv[a++] = "--eval-samples", argv[a++] = aes;
      if (p->o.data_dir) argv[a++] = "--data-dir", argv[a++] = p->o.data_dir;
    } else {
      argv[a++] = "-q";
      argv[a++] = "--q-bits", argv[a++] = bits;
      argv[a++] = "--q-group-size", argv[a++] = gs;
      if (qq->mode) argv[a++] = "--q-mode", argv[a++] = qq->mode;
      for (size_t k = 0; k < qq->n_overrides && a < 80; k++)
        argv[a++] = "--q-override", argv[a++] = qq->overrides[k];
      if (qq->recipe)
        argv[a++] = strstr(qq->recipe, ".json")         ? "--q-recipe-file"
                    : !strncmp(qq->recipe, "mixed_", 6) ? "--quant-predicate"
                                                        : "--q-recipe",
        argv[a++] = qq->recipe;
    }
    if (j->model->quant.dtype) argv[a++] = "--dtype", argv[a++] = j->model->quant.dtype;
    if (p->o.no_skip) argv[a++] = "--no-skip";
  } else {
    const mp_pl_dataset *d = j->dataset;
    long msamp = p->o.max_samples_override > 0 ? p->o.max_samples_override : d->max_samples;
    argv[a++] = "eval";
    argv[a++] = "--model", argv[a++] = j->out_dir;
    argv[a++] = "--baseline", argv[a++] = j->source;
    const char *bk = builtin_key_for(d);
    if (bk && !d->path && !j->data_path[0])
      argv[a++] = "--dataset", argv[a++] = bk; /* from the Hub cache */
    else if (bk && !d->path)
      argv[a++] = "--dataset", argv[a++] = bk, argv[a++] = "--data-file", argv[a++] = j->data_path;
    else
      argv[a++] = "--dataset", argv[a++] = j->data_path;
    argv[a++] = "--task", argv[a++] = task_for(j);
    argv[a++] = "--name", argv[a++] = j->model->name;
    argv[a++] = "--threads", argv[a++] = th;
    if (msamp > 0) snprintf(ms, sizeof ms, "%ld", msamp), argv[a++] = "--max-samples", argv[a++] = ms;
    snprintf(seed, sizeof seed, "%lu", p->o.seed);
    argv[a++] = "--seed", argv[a++] = seed;
    static _Thread_local char lat[32];
    if (p->o.latency_requests >= 0)
      snprintf(lat, sizeof lat, "%ld", p->o.latency_requests), argv[a++] = "--latency-requests", argv[a++] = lat;
    if (j->model->quant.max_accuracy_drop >= 0)
      snprintf(drop, sizeof drop, "%g", j->model->quant.max_accuracy_drop), argv[a++] = "--max-accuracy-drop",
                                                                            argv[a++] = drop;
    snprintf(sp, sizeof sp, "%g", j->model->quant.min_speedup);
    argv[a++] = "--min-speedup", argv[a++] = sp;
    if (j->model->quant.target_size_mb > 0)
      snprintf(size, sizeof size, "%g", j->model->quant.target_size_mb), argv[a++] = "--target-size-mb",
                                                                         argv[a++] = size;
    if (d->template_) argv[a++] = "--template", argv[a++] = d->template_;
    if (j->model->device) argv[a++] = "--device", argv[a++] = j->model->device;
    if (d->max_length > 0) {
      static _Thread_local char ml[32];
      snprintf(ml, sizeof ml, "%ld", d->max_length);
      argv[a++] = "--max-length", argv[a++] = ml;
    }
    static _Thread_local char tf[600], ln[1024];
    if (d->text_a) {
      snprintf(tf, sizeof tf, "%s%s%s", d->text_a, d->text_b ? "," : "", d->text_b ? d->text_b : "");
      argv[a++] = "--text-fields", argv[a++] = tf;
    }
    if (d->label_field) argv[a++] = "--label-field", argv[a++] = d->label_field;
    if (d->score_field) argv[a++] = "--score-field", argv[a++] = d->score_field;
    if (d->format) argv[a++] = "--format", argv[a++] = d->format;
    if (d->n_label_names) {
      size_t o = 0;
      ln[0] = 0;
      for (size_t i = 0; i < d->n_label_names && o < sizeof ln; i++)
        o += (size_t)snprintf(ln + o, sizeof ln - o, "%s%s", i ? "," : "", d->label_names[i]);
      argv[a++] = "--label-names", argv[a++] = ln;
    }
    argv[a++] = "--json";
  }
  argv[a] = NULL;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setpgid(0, 0);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with the parent, even when it is SIGKILLed */
    if (getppid() != parent) _exit(3);
#endif
    int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int of = j->kind == MP_JOB_EVAL ? open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : lf;
    if (lf < 0 || of < 0) _exit(3);
    dup2(of, 1);
    dup2(lf, 2);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    /* the log starts with the command */
    for (int i = 0; argv[i]; i++)
      dprintf(2, "%s%s", i ? " " : "$ ", argv[i]);
    dprintf(2, "\n");
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int rc = run_job(p, j, argv);
    fflush(NULL);
    _exit(rc); /* never the host program's exit handlers: this is a copy of it */
  }
  setpgid(pid, pid);
  j->pid = (int)pid;
  return 0;
}

static void last_log_line(mp_pipeline *p, const mp_job *j, char *out, size_t cap) {
  char path[1200];
  snprintf(path, sizeof path, "%s/logs/%s.log", p->workdir, j->id);
  char *buf = NULL;
  size_t n = 0;
  out[0] = 0;
  if (mp_read_file(path, &buf, &n, 64 << 20) != MP_OK) {
    mp_err_clear();
    return;
  }
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = 0;
  char *s = strrchr(buf, '\n');
  snprintf(out, cap, "%s", s ? s + 1 : buf);
  free(buf);
}

/* Finalizes an eval's JSON: adds the settings key and moves it into place atomically. */
static mp_status finish_result(mp_pipeline *p, const mp_job *j) {
  char tmp[1200], fin[1200];
  snprintf(tmp, sizeof tmp, "%s/results/.%s.json.tmp", p->workdir, j->id);
  snprintf(fin, sizeof fin, "%s/results/%s.json", p->workdir, j->id);
  char *buf = NULL;
  size_t n = 0;
  MP_TRY(mp_read_file(tmp, &buf, &n, 256 << 20));
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = 0;
  mp_status st = MP_OK;
  if (n < 2 || buf[0] != '{' || buf[n - 1] != '}') {
    st = mp_err(MP_ERR_FORMAT, "%s: the evaluation printed no JSON document", j->id);
  } else {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "{\"settings_key\":\"%s\",\"job\":", j->key);
    mp_sb_json_str(&sb, j->id, strlen(j->id));
    mp_sb_puts(&sb, ",\"evaluation\":");
    mp_sb_append(&sb, buf, n);
    mp_sb_puts(&sb, "}\n");
    st = sb.oom ? mp_err(MP_ERR_NOMEM, "out of memory") : mp_write_file_atomic(fin, sb.buf, sb.len);
    mp_sb_free(&sb);
  }
  free(buf);
  unlink(tmp);
  return st;
}

static double mem_available_mb(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 1e12;
  char line[256];
  double kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
  fclose(f);
  return kb > 0 ? kb / 1024.0 : 1e12;
}

static void remove_temp_leftovers(mp_pipeline *p) {
  size_t n = 0;
  mp_pipeline_clean(p->workdir, &n);
  mp_err_clear();
}

mp_status mp_pipeline_run(mp_pipeline *p, mp_pipeline_cb cb, void *user) {
  static const char *subdirs[] = {"", "models", "logs", "jobs", "results", "comparisons", "test_results", "reports"};
  for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
    char *d = *subdirs[i] ? mp_path_join(p->workdir, subdirs[i]) : strdup(p->workdir);
    mp_status s = d ? mp_mkdirs(d) : MP_ERR_NOMEM;
    free(d);
    if (s) return s;
  }
  MP_TRY(take_lock(p));
  remove_temp_leftovers(p);
  g_stop = 0;
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  int J = p->o.jobs > 0 ? p->o.jobs : 1;
  int total_threads = p->o.threads > 0 ? p->o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  int per_job = total_threads / J > 0 ? total_threads / J : 1;
  /* a GPU job's host threads only tokenize and feed the device: 2 of them, not a share of `threads`,
   * so that the CPU jobs beside it keep the cores */
  int gpu_threads = total_threads < 2 ? 1 : 2;
  mp_gpu_budget budget = {p->gpu_budget, p->n_gpu_budget, p->gpu_from_device};
  for (size_t d = 0; d < p->n_gpu_budget; d++) {
    int used = 0;
    for (size_t i = 0; i < p->n && !used; i++)
      used = p->jobs[i].gpu_device == (int)d && p->jobs[i].state == MP_JOB_PENDING;
    if (!used) continue;
    if (p->gpu_budget[d] > 0)
      mp_log(MP_LOG_INFO, "mlxport pipeline: GPU memory budget of cuda:%zu: %.0f MB (%s)", d, p->gpu_budget[d],
             p->gpu_from_device ? "0.9 x the device's memory" : "gpu_memory_mb");
    else
      mp_log(MP_LOG_WARN,
             "mlxport pipeline: no GPU memory budget for cuda:%zu (gpu_memory_mb not set and the GPU could not be "
             "queried): its GPU jobs run one at a time",
             d);
  }
  for (size_t i = 0; i < p->n; i++)
    if (p->jobs[i].state == MP_JOB_SKIPPED) job_state_write(p, &p->jobs[i]);
  int running = 0;
  double last_tick = mp_now_s();
  for (;;) {
    if (g_stop) break;
    /* start what can start */
    for (size_t i = 0; i < p->n && running < J && !g_stop; i++) {
      mp_job *j = &p->jobs[i];
      if (j->state != MP_JOB_PENDING) continue;
      int wait = 0, dead = -1;
      for (int k = 0; k < 2; k++) {
        int dep = k ? j->dep2 : j->dep;
        if (dep < 0) continue;
        mp_job_state ds = p->jobs[dep].state;
        if (ds == MP_JOB_PENDING || ds == MP_JOB_RUNNING)
          wait = 1;
        else if ((ds == MP_JOB_FAILED || ds == MP_JOB_SKIPPED) && dead < 0)
          dead = dep;
      }
      if (dead >= 0) {
        mp_job_state ds = p->jobs[dead].state;
        j->state = MP_JOB_SKIPPED;
        snprintf(j->reason, sizeof j->reason, "its %s %s",
                 p->jobs[dead].kind != MP_JOB_DOWNLOAD             ? "conversion"
                 : p->jobs[dead].dataset && j->kind == MP_JOB_EVAL ? "dataset download"
                                                                   : "download",
                 ds == MP_JOB_FAILED ? "failed" : "was skipped");
        job_state_write(p, j);
        if (cb) cb(user, MP_EV_END, p, j);
        continue;
      }
      if (wait) continue;
      if (j->kind == MP_JOB_EVAL) {
        eval_key(p, j);
        if (!p->o.no_skip && result_up_to_date(p, j)) {
          j->state = MP_JOB_SKIPPED;
          snprintf(j->reason, sizeof j->reason, "up to date (results/%s.json)", j->id);
          job_state_write(p, j);
          if (cb) cb(user, MP_EV_END, p, j);
          continue;
        }
      }
      /* GPU memory: the device's budget against the GPU jobs running there */
      gpu_estimate(j); /* a source downloaded by this run: estimated now */
      char why[512];
      mp_job_admit adm = mp_pipeline_admit(p->jobs, p->n, i, J, &budget, why, sizeof why);
      if (adm == MP_ADMIT_NEVER) {
        j->state = MP_JOB_FAILED;
        snprintf(j->reason, sizeof j->reason, "%s", why);
        job_state_write(p, j);
        if (cb) cb(user, MP_EV_END, p, j);
        continue;
      }
      if (adm == MP_ADMIT_WAIT) continue; /* CPU jobs keep starting */
      /* memory check against what is available now */
      double avail = mem_available_mb();
      if (j->est_mb > avail) {
        if (running > 0) continue; /* wait for memory to free up */
        j->state = MP_JOB_FAILED;
        snprintf(j->reason, sizeof j->reason, "needs about %.0f MB of memory, only %.0f MB available", j->est_mb,
                 avail);
        job_state_write(p, j);
        if (cb) cb(user, MP_EV_END, p, j);
        continue;
      }
      j->state = MP_JOB_RUNNING;
      j->started = mp_now_s();
      if (spawn(p, j, j->gpu_device >= 0 ? gpu_threads : per_job) != 0) {
        j->state = MP_JOB_FAILED;
        snprintf(j->reason, sizeof j->reason, "could not start: %s", strerror(errno));
        job_state_write(p, j);
        if (cb) cb(user, MP_EV_END, p, j);
        continue;
      }
      running++;
      job_state_write(p, j);
      if (cb) cb(user, MP_EV_START, p, j);
    }
    if (running == 0) {
      int pending = 0;
      for (size_t i = 0; i < p->n; i++)
        pending |= p->jobs[i].state == MP_JOB_PENDING;
      if (!pending) break;
      continue; /* dependencies resolved this round; loop to start more */
    }
    int wst;
    pid_t pid = waitpid(-1, &wst, WNOHANG);
    if (pid == 0) {
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
      if (cb && mp_now_s() - last_tick > 0.5) {
        last_tick = mp_now_s();
        cb(user, MP_EV_TICK, p, NULL);
      }
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < p->n; i++) {
      mp_job *j = &p->jobs[i];
      if (j->state != MP_JOB_RUNNING || j->pid != pid) continue;
      running--;
      j->seconds = mp_now_s() - j->started;
      j->exit_code = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + (WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
      if (j->exit_code == 0 || (j->kind == MP_JOB_EVAL && j->exit_code == 1)) {
        mp_status s = j->kind == MP_JOB_EVAL ? finish_result(p, j) : MP_OK;
        if (s) {
          j->state = MP_JOB_FAILED;
          snprintf(j->reason, sizeof j->reason, "%s", mp_last_error());
        } else {
          j->state = j->exit_code == 1 ? MP_JOB_GATE_FAILED : MP_JOB_DONE;
          if (j->kind == MP_JOB_DOWNLOAD) {
            snprintf(j->reason, sizeof j->reason, "downloaded");
          } else if (j->kind == MP_JOB_CONVERT) {
            char last[400];
            last_log_line(p, j, last, sizeof last);
            snprintf(j->reason, sizeof j->reason, "%s",
                     strstr(last, "skipped") ? "already converted (skipped)" : "converted");
          }
        }
      } else {
        j->state = MP_JOB_FAILED;
        char last[400];
        last_log_line(p, j, last, sizeof last);
        snprintf(j->reason, sizeof j->reason, "exit %d: %.300s (log: logs/%.150s.log)", j->exit_code, last, j->id);
        char tmp[1200];
        snprintf(tmp, sizeof tmp, "%s/results/.%s.json.tmp", p->workdir, j->id);
        unlink(tmp);
      }
      job_state_write(p, j);
      if (cb) cb(user, MP_EV_END, p, j);
    }
  }
  mp_status st = MP_OK;
  if (g_stop) {
    /* stop the children, remove their temporary outputs, keep finished results */
    for (size_t i = 0; i < p->n; i++)
      if (p->jobs[i].state == MP_JOB_RUNNING && p->jobs[i].pid > 0) kill(-p->jobs[i].pid, SIGTERM);
    for (size_t i = 0; i < p->n; i++) {
      mp_job *j = &p->jobs[i];
      if (j->state != MP_JOB_RUNNING) continue;
      int wst;
      while (waitpid(j->pid, &wst, 0) < 0 && errno == EINTR) {
      }
      j->state = MP_JOB_FAILED;
      snprintf(j->reason, sizeof j->reason, "interrupted");
      job_state_write(p, j);
    }
    remove_temp_leftovers(p);
    st = mp_err(MP_ERR_CANCELLED, "interrupted: finished results are kept in %s; rerun to continue", p->workdir);
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  return st;
}

/* ---------------------------------------------------------------- reports */

/* Rebuilds the parts of an mp_eval_result the reports need from its JSON. */
static void result_from_json(const mp_json *j, mp_eval_result *r) {
  memset(r, 0, sizeof *r);
  const char *task = mp_json_get_str(j, "task", "auto");
  mp_task t = MP_TASK_AUTO;
  if (mp_task_parse(task, &t) != MP_OK) mp_err_clear();
  r->task = t;
  snprintf(r->model, sizeof r->model, "%s", mp_json_get_str(j, "model_path", ""));
  snprintf(r->dataset, sizeof r->dataset, "%s", mp_json_get_str(j, "dataset", ""));
  snprintf(r->data_file, sizeof r->data_file, "%s", mp_json_get_str(j, "data_file", ""));
  r->demo_data = mp_json_get_bool(j, "demo_data", 0);
  r->n = (size_t)mp_json_get_num(j, "n_examples", 0);
  r->accuracy = mp_json_get_num(j, "accuracy", NAN);
  r->spearman = mp_json_get_num(j, "spearman", NAN);
  r->pearson = mp_json_get_num(j, "pearson", NAN);
  r->qpm = mp_json_get_num(j, "qpm", 0);
  r->weights_mb = mp_json_get_num(j, "size_mb", 0);
  r->folder_mb = mp_json_get_num(j, "folder_size_mb", 0);
  r->tokens_per_sec = mp_json_get_num(j, "tokens_per_sec", 0);
  r->mem_avg_mb = mp_json_get_num(j, "memory_avg_mb", 0);
  r->mem_peak_mb = mp_json_get_num(j, "memory_peak_mb", 0);
  r->latency_ms.p50 = mp_json_get_num(j, "latency_p50_ms", 0);
  r->latency_ms.p95 = mp_json_get_num(j, "latency_p95_ms", 0);
  r->latency_ms.p99 = mp_json_get_num(j, "latency_p99_ms", 0);
  snprintf(r->metric_compute, sizeof r->metric_compute, "%s", mp_json_get_str(j, "metric_compute", ""));
  snprintf(r->perf_compute, sizeof r->perf_compute, "%s", mp_json_get_str(j, "perf_compute", ""));
  r->int_layers = (int)mp_json_get_num(j, "integer_layers", 0);
  r->bf16_layers = (int)mp_json_get_num(j, "bf16_tile_layers", 0);
  const mp_json *fm = mp_json_get(j, "fast_mode");
  if (fm) {
    r->fast_pass = 1;
    r->fast_metric = mp_json_get_num(fm, t == MP_TASK_SIMILARITY ? "spearman" : "accuracy", NAN);
    r->fast_agreement = mp_json_get_num(fm, "agreement_with_faithful", NAN);
    r->fast_max_abs_diff =
        mp_json_get_num(fm, t == MP_TASK_SIMILARITY ? "max_abs_cosine_diff" : "max_abs_logit_diff", NAN);
  }
}

static mp_status write_rel(mp_pipeline *p, const char *rel, const mp_sb *sb) {
  char *path = mp_path_join(p->workdir, rel);
  char *dir = path ? mp_path_dirname(path) : NULL;
  mp_status st = !path || !dir ? mp_err(MP_ERR_NOMEM, "out of memory") : mp_mkdirs(dir);
  if (!st) st = mp_write_file_atomic(path, sb->buf ? sb->buf : "", sb->len);
  free(path), free(dir);
  return st;
}

mp_status mp_pipeline_report(mp_pipeline *p, int *gates_failed, int *errors) {
  *gates_failed = 0;
  *errors = 0;
  mp_arena a;
  mp_arena_init(&a, 1 << 16);
  size_t cap = p->n * 4 + 4;
  mp_report_row *rows = calloc(cap, sizeof *rows);
  mp_eval_result *res = calloc(cap * 2, sizeof *res);
  if (!rows || !res) {
    free(rows), free(res);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  size_t nr = 0;
  mp_sb summary, sb;
  mp_sb_init(&summary);
  mp_sb_init(&sb);
  mp_sb_puts(&summary, "{\"results\":[");
  int first = 1;
  mp_status st = MP_OK;
  for (size_t i = 0; i < p->n && !st; i++) {
    mp_job *j = &p->jobs[i];
    if (j->state == MP_JOB_FAILED) (*errors)++;
    if (j->kind != MP_JOB_EVAL) continue;
    char rel[300];
    snprintf(rel, sizeof rel, "results/%s.json", j->id);
    char *path = mp_path_join(p->workdir, rel);
    mp_json *doc = NULL;
    const mp_json *ev = NULL;
    if (path && mp_is_file(path) && mp_json_parse_file(path, &a, &doc) == MP_OK) ev = mp_json_get(doc, "evaluation");
    mp_err_clear();
    free(path);
    /* every name the model and dataset are reported under */
    const char *mnames[17];
    size_t nm = 0;
    mnames[nm++] = j->model->name;
    for (size_t k = 0; k < j->model->n_aliases && nm < 17; k++)
      if (in_filter(p->o.models_filter, j->model->aliases[k]) || !p->o.models_filter)
        mnames[nm++] = j->model->aliases[k];
    const char *dnames[17];
    size_t nd = 0;
    dnames[nd++] = j->dataset->key;
    for (size_t k = 0; k < p->cfg->n_datasets && nd < 17; k++)
      if (p->cfg->datasets[k].same_as && !strcmp(p->cfg->datasets[k].same_as, j->dataset->key)) {
        for (size_t b = 0; b < j->model->n_benchmarks; b++)
          if (!strcmp(j->model->benchmarks[b], p->cfg->datasets[k].key)) dnames[nd++] = p->cfg->datasets[k].key;
      }
    for (size_t mi = 0; mi < nm; mi++)
      for (size_t di = 0; di < nd; di++) {
        if (nr == cap) break;
        mp_report_row *r = &rows[nr];
        memset(r, 0, sizeof *r);
        r->model = mnames[mi];
        r->dataset = dnames[di];
        r->bits = j->model->quant.bits;
        r->source = j->model->hf_name;
        r->variant = j->model->quant.variant[0] ? j->model->quant.variant : NULL;
        if (!ev) {
          r->status = j->state == MP_JOB_SKIPPED ? j->reason : j->state == MP_JOB_FAILED ? j->reason : "no result";
          nr++;
          continue;
        }
        const mp_json *conv = mp_json_get(ev, "converted"), *orig = mp_json_get(ev, "original");
        const mp_json *cmp = mp_json_get(ev, "comparison"), *qg = mp_json_get(ev, "quality_gates");
        result_from_json(conv, &res[2 * nr + 1]);
        r->conv = &res[2 * nr + 1];
        if (orig) result_from_json(orig, &res[2 * nr]), r->base = &res[2 * nr];
        r->cmp.metric_drop = mp_json_get_num(cmp, "accuracy_drop", NAN);
        r->cmp.speedup_throughput = mp_json_get_num(cmp, "speedup", NAN);
        r->cmp.speedup_p50 = mp_json_get_num(cmp, "speedup_p50", NAN);
        r->cmp.size_ratio = mp_json_get_num(cmp, "size_ratio", NAN);
        r->cmp.agreement = mp_json_get_num(cmp, "agreement", NAN);
        r->cmp.mean_kl = mp_json_get_num(cmp, "mean_kl", NAN);
        r->cmp.max_abs_logit_diff = mp_json_get_num(cmp, "max_abs_logit_diff", NAN);
        r->all_passed = mp_json_get_bool(qg, "passed", 1);
        const mp_json *gl = mp_json_get(qg, "gates");
        for (size_t g = 0; gl && gl->type == MP_JSON_ARRAY && g < gl->len && g < 4; g++) {
          mp_gate *x = &r->gates[r->n_gates++];
          snprintf(x->name, sizeof x->name, "%s", mp_json_get_str(gl->items[g], "name", "?"));
          x->value = mp_json_get_num(gl->items[g], "value", NAN);
          x->threshold = mp_json_get_num(gl->items[g], "threshold", NAN);
          x->passed = mp_json_get_bool(gl->items[g], "passed", 0);
          snprintf(x->rule, sizeof x->rule, "%s", mp_json_get_str(gl->items[g], "rule", ""));
        }
        r->status = r->all_passed ? "ok" : "gate failed";
        if (!r->all_passed) (*gates_failed)++;
        nr++;
      }
  }
  /* comparison files: the job's result document, under every name it is reported under */
  for (size_t i = 0; i < p->n && !st; i++) {
    mp_job *j = &p->jobs[i];
    if (j->kind != MP_JOB_EVAL) continue;
    char rel[300];
    snprintf(rel, sizeof rel, "results/%s.json", j->id);
    char *path = mp_path_join(p->workdir, rel);
    char *buf = NULL;
    size_t n = 0;
    if (path && mp_is_file(path) && mp_read_file(path, &buf, &n, 256 << 20) == MP_OK) {
      while (n && (buf[n - 1] == '\n'))
        buf[--n] = 0;
      /* comparisons/<model>_q<bits>_<dataset>_comparison.json under every reported name */
      for (size_t r = 0; r < nr; r++) {
        if (!rows[r].conv) continue;
        int mine = !strcmp(rows[r].model, j->model->name);
        for (size_t k = 0; k < j->model->n_aliases; k++)
          mine |= !strcmp(rows[r].model, j->model->aliases[k]);
        if (!mine) continue;
        int dataset_match = !strcmp(rows[r].dataset, j->dataset->key);
        for (size_t k = 0; k < p->cfg->n_datasets; k++)
          if (p->cfg->datasets[k].same_as && !strcmp(p->cfg->datasets[k].same_as, j->dataset->key) &&
              !strcmp(rows[r].dataset, p->cfg->datasets[k].key))
            dataset_match = 1;
        if (!dataset_match) continue;
        mp_sb_clear(&sb);
        mp_sb_puts(&sb, "{\"model\":");
        mp_sb_json_str(&sb, rows[r].model, strlen(rows[r].model));
        mp_sb_puts(&sb, ",\"dataset\":");
        mp_sb_json_str(&sb, rows[r].dataset, strlen(rows[r].dataset));
        mp_sb_printf(&sb, ",\"bits\":%d,\"result\":", rows[r].bits);
        mp_sb_append(&sb, buf, n);
        mp_sb_puts(&sb, "}\n");
        char crel[700];
        snprintf(crel, sizeof crel, "comparisons/%s_q%d_%s_comparison.json", rows[r].model, rows[r].bits,
                 rows[r].dataset);
        st = write_rel(p, crel, &sb);
        if (!first) mp_sb_putc(&summary, ',');
        first = 0;
        mp_sb_append(&summary, sb.buf, sb.len - 1);
      }
      free(buf);
    }
    mp_err_clear();
    free(path);
  }
  /* test_results/<model>_results.json: every comparison of a model */
  for (size_t r = 0; r < nr && !st; r++) {
    int seen = 0;
    for (size_t q = 0; q < r; q++)
      seen |= !strcmp(rows[q].model, rows[r].model);
    if (seen) continue;
    mp_sb_clear(&sb);
    mp_sb_puts(&sb, "{\"model\":");
    mp_sb_json_str(&sb, rows[r].model, strlen(rows[r].model));
    mp_sb_puts(&sb, ",\"results\":[");
    int f2 = 1;
    for (size_t q = r; q < nr; q++) {
      if (strcmp(rows[q].model, rows[r].model)) continue;
      const mp_report_row *x = &rows[q];
      mp_sb_puts(&sb, f2 ? "{" : ",{");
      f2 = 0;
      mp_sb_puts(&sb, "\"dataset\":");
      mp_sb_json_str(&sb, x->dataset, strlen(x->dataset));
      mp_sb_puts(&sb, ",\"status\":");
      mp_sb_json_str(&sb, x->status ? x->status : "", strlen(x->status ? x->status : ""));
      if (x->conv) {
        mp_sb_printf(&sb, ",\"metric\":\"%s\",\"original\":", mp_eval_main_metric_name(x->conv));
        mp_sb_json_f64(&sb, x->base ? mp_eval_main_metric(x->base) : NAN);
        mp_sb_puts(&sb, ",\"converted\":");
        mp_sb_json_f64(&sb, mp_eval_main_metric(x->conv));
        mp_sb_puts(&sb, ",\"speedup\":");
        mp_sb_json_f64(&sb, x->cmp.speedup_throughput);
        mp_sb_printf(&sb, ",\"quality_gates_passed\":%s", x->all_passed ? "true" : "false");
      }
      mp_sb_putc(&sb, '}');
    }
    mp_sb_puts(&sb, "]}\n");
    char trel[600];
    snprintf(trel, sizeof trel, "test_results/%s_results.json", rows[r].model);
    st = write_rel(p, trel, &sb);
  }
  if (!st) {
    int passed = 0, failed = 0, missing = 0;
    for (size_t r = 0; r < nr; r++) {
      if (!rows[r].conv)
        missing++;
      else if (rows[r].all_passed)
        passed++;
      else
        failed++;
    }
    mp_sb_printf(&summary, "],\"rows\":%zu,\"passed\":%d,\"gate_failed\":%d,\"not_run\":%d,\"job_errors\":%d}\n", nr,
                 passed, failed, missing, *errors);
    st = write_rel(p, "testing_summary.json", &summary);
  }
  if (!st) {
    mp_sb_clear(&sb);
    mp_report_markdown(&sb, "mlxport pipeline summary", rows, nr);
    st = write_rel(p, "summary.md", &sb);
  }
  if (!st) {
    mp_sb_clear(&sb);
    mp_report_html(&sb, "mlxport pipeline report", rows, nr);
    st = write_rel(p, "reports/report.html", &sb);
  }
  mp_sb_free(&sb);
  mp_sb_free(&summary);
  free(rows);
  free(res);
  mp_arena_free(&a);
  return st;
}

/* ---------------------------------------------------------------- clean */

static int is_temp_name(const char *n) { return n[0] == '.' && (strstr(n, ".tmp-") || strstr(n, ".tmp")); }

static void clean_dir(const char *dir, size_t *removed, int depth) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".lock")) continue;
    char *c = mp_path_join(dir, e->d_name);
    if (!c) continue;
    if (is_temp_name(e->d_name)) {
      if (mp_remove_tree(c) == MP_OK) (*removed)++;
    } else if (depth < 2 && mp_is_dir(c)) {
      clean_dir(c, removed, depth + 1);
    }
    free(c);
  }
  closedir(d);
}

mp_status mp_pipeline_clean(const char *workdir, size_t *removed) {
  *removed = 0;
  if (!mp_is_dir(workdir)) return mp_err(MP_ERR_NOT_FOUND, "%s: no such work folder", workdir);
  clean_dir(workdir, removed, 0);
  return MP_OK;
}
