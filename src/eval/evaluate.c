/* Evaluation of one model on one dataset (see evaluate.h): task plans, batched runs in a child
 * process, task metrics with bootstrap intervals, the six performance metrics, comparison with
 * the baseline and quality gates. */
#include "eval/evaluate.h"
#include "core/clock.h"
#include "eval/data_dirs.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "format/weights.h"
#include "kernels/kernels.h"
#include "model/model.h"

const char *mp_task_name(mp_task t) {
  switch (t) {
  case MP_TASK_NLI: return "nli";
  case MP_TASK_ZERO_SHOT: return "zero-shot-classification";
  case MP_TASK_TEXT_CLS: return "text-classification";
  case MP_TASK_SIMILARITY: return "semantic-similarity";
  default: return "auto";
  }
}

mp_status mp_task_parse(const char *s, mp_task *out) {
  if (!strcmp(s, "auto"))
    *out = MP_TASK_AUTO;
  else if (!strcmp(s, "nli") || !strcmp(s, "binary-nli"))
    *out = MP_TASK_NLI;
  else if (!strcmp(s, "zero-shot-classification") || !strcmp(s, "zero-shot"))
    *out = MP_TASK_ZERO_SHOT;
  else if (!strcmp(s, "text-classification") || !strcmp(s, "sentiment-analysis"))
    *out = MP_TASK_TEXT_CLS;
  else if (!strcmp(s, "semantic-similarity") || !strcmp(s, "sentence-similarity") || !strcmp(s, "feature-extraction"))
    *out = MP_TASK_SIMILARITY;
  else
    return mp_err(MP_ERR_INVALID_ARG,
                  "unknown task \"%s\" (nli, binary-nli, zero-shot-classification, text-classification, "
                  "semantic-similarity, auto)",
                  s);
  return MP_OK;
}

void mp_eval_options_init(mp_eval_options *o) {
  memset(o, 0, sizeof *o);
  o->batch_size = 32;
  o->truncation = MP_TRUNC_LONGEST_FIRST;
  o->template_ = "This example is {}.";
  o->latency_requests = 100;
  o->warmup = 3;
  o->bootstrap = 1000;
  o->seed = 42;
  o->compute = -1;
}

/* ---------------------------------------------------------------- memory sampler */

typedef struct sampler {
  pthread_t th;
  volatile int stop;
  double sum_mb, peak_mb;
  uint64_t count;
} sampler;

static double rss_mb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long size, res;
  int ok = fscanf(f, "%ld %ld", &size, &res) == 2;
  fclose(f);
  return ok ? (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0) : 0;
}

static void *sampler_main(void *arg) {
  sampler *s = arg;
  while (!s->stop) {
    double r = rss_mb();
    s->sum_mb += r;
    s->count++;
    if (r > s->peak_mb) s->peak_mb = r;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void sampler_start(sampler *s) {
  memset(s, 0, sizeof *s);
  if (pthread_create(&s->th, NULL, sampler_main, s) != 0) s->count = (uint64_t)-1;
}

static void sampler_stop(sampler *s, double *avg, double *peak) {
  if (s->count == (uint64_t)-1) {
    *avg = *peak = rss_mb();
    return;
  }
  s->stop = 1;
  pthread_join(s->th, NULL);
  double r = rss_mb();
  s->sum_mb += r, s->count++;
  if (r > s->peak_mb) s->peak_mb = r;
  *avg = s->sum_mb / (double)s->count;
  *peak = s->peak_mb;
}

static void cpu_name(char *out, size_t cap) {
  snprintf(out, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10)) {
      char *c = strchr(line, ':');
      if (c) {
        c++;
        while (*c == ' ')
          c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(out, cap, "%s", c);
      }
      break;
    }
  fclose(f);
}

/* ---------------------------------------------------------------- label mapping */

static int name_eq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static int find_label(const char *const *names, size_t n, const char *want) {
  for (size_t i = 0; i < n; i++)
    if (names[i] && name_eq(names[i], want)) return (int)i;
  return -1;
}

/* The task's evaluation label space and how model outputs map to it. */
typedef struct plan {
  mp_task task;
  size_t k; /* evaluation labels */
  const char *labels[16];
  int model_to_eval[64]; /* NLI / text-cls: model label index -> eval label (-1 unmapped) */
  int gold_map[16];      /* dataset label -> eval label */
  int ent;               /* zero-shot: entailment index */
} plan;

static mp_status make_plan(const mp_model_config *c, const mp_dataset *ds, const mp_eval_options *o, plan *p) {
  memset(p, 0, sizeof *p);
  mp_task t = o->task;
  int ent = mp_model_config_entailment_id(c);
  int has_head = c->head == MP_HEAD_SEQ_CLS;
  if (t == MP_TASK_AUTO) {
    if (ds->has_score)
      t = MP_TASK_SIMILARITY;
    else if (has_head && ent >= 0 && ds->has_pairs)
      t = MP_TASK_NLI;
    else if (has_head && ent >= 0 && !ds->has_pairs)
      t = MP_TASK_ZERO_SHOT;
    else if (has_head)
      t = MP_TASK_TEXT_CLS;
    else if (!has_head && ds->has_pairs && ds->has_score)
      t = MP_TASK_SIMILARITY;
    else
      return mp_err(MP_ERR_INVALID_ARG,
                    "cannot choose a task for model %s (architecture %s) on dataset %s: pass --task", c->model_type,
                    c->architecture, ds->name);
  }
  p->task = t;
  if (t == MP_TASK_SIMILARITY) {
    if (!ds->has_score || !ds->has_pairs)
      return mp_err(MP_ERR_INVALID_ARG, "dataset %s has no sentence pairs with similarity scores", ds->name);
    return MP_OK;
  }
  if (!has_head)
    return mp_err(MP_ERR_INVALID_ARG, "task %s needs a model with a classification head (this is %s)", mp_task_name(t),
                  c->architecture[0] ? c->architecture : c->model_type);
  if (ds->n_labels == 0 || ds->n_labels > 16)
    return mp_err(MP_ERR_INVALID_ARG, "dataset %s has %zu labels (1..16 supported for classification)", ds->name,
                  ds->n_labels);
  for (size_t i = 0; i < ds->n_labels; i++)
    p->gold_map[i] = (int)i;
  for (int j = 0; j < 64; j++)
    p->model_to_eval[j] = -1;
  if (t == MP_TASK_ZERO_SHOT) {
    if (ent < 0)
      return mp_err(MP_ERR_INVALID_ARG, "zero-shot needs an NLI model: no id2label entry of %s starts with \"entail\"",
                    c->architecture);
    p->ent = ent;
    p->k = ds->n_labels;
    for (size_t i = 0; i < ds->n_labels; i++)
      p->labels[i] = ds->labels[i];
    return MP_OK;
  }
  if (t == MP_TASK_NLI) {
    if (!ds->has_pairs)
      return mp_err(MP_ERR_INVALID_ARG, "task nli needs premise/hypothesis pairs; %s has single texts", ds->name);
    if (ent < 0)
      return mp_err(MP_ERR_INVALID_ARG, "task nli needs an id2label entry starting with \"entail\" (model %s)",
                    c->architecture);
    int ds_ent = find_label(ds->labels, ds->n_labels, "entailment");
    if (ds_ent < 0) return mp_err(MP_ERR_INVALID_ARG, "dataset %s has no \"entailment\" label", ds->name);
    int model_binary = c->num_labels == 2;
    int ds_binary = ds->n_labels == 2;
    if (model_binary || ds_binary) {
      /* evaluate in {entailment, not_entailment}: fold neutral + contradiction */
      p->k = 2;
      p->labels[0] = "entailment";
      p->labels[1] = "not_entailment";
      for (size_t i = 0; i < ds->n_labels; i++)
        p->gold_map[i] = (int)i == ds_ent ? 0 : 1;
      for (int j = 0; j < c->num_labels; j++)
        p->model_to_eval[j] = j == ent ? 0 : 1;
      return MP_OK;
    }
    p->k = ds->n_labels;
    for (size_t i = 0; i < ds->n_labels; i++)
      p->labels[i] = ds->labels[i];
    for (int j = 0; j < c->num_labels; j++) {
      int e = find_label(ds->labels, ds->n_labels, c->id2label[j]);
      if (e < 0)
        return mp_err(MP_ERR_INVALID_ARG, "model label \"%s\" has no counterpart among the dataset's labels of %s",
                      c->id2label[j], ds->name);
      p->model_to_eval[j] = e;
    }
    return MP_OK;
  }
  /* text classification: match labels by name, else by position when the model's are generic */
  p->k = ds->n_labels;
  for (size_t i = 0; i < ds->n_labels; i++)
    p->labels[i] = ds->labels[i];
  int generic = 1;
  for (int j = 0; j < c->num_labels; j++)
    generic &= !strncmp(c->id2label[j], "LABEL_", 6);
  for (int j = 0; j < c->num_labels; j++) {
    int e = generic && (size_t)c->num_labels == ds->n_labels ? j : find_label(ds->labels, ds->n_labels, c->id2label[j]);
    if (e < 0)
      return mp_err(MP_ERR_INVALID_ARG, "model label \"%s\" matches no label of dataset %s; pass --task",
                    c->id2label[j], ds->name);
    p->model_to_eval[j] = e;
  }
  return MP_OK;
}

/* ---------------------------------------------------------------- running */

typedef struct runctx {
  mp_model *m;
  const mp_dataset *ds;
  const plan *p;
  const mp_eval_options *o;
  char **hyp; /* zero-shot hypotheses */
} runctx;

/* on a device: a batch may hold up to this many times the batch size in rows (see run_examples) */
#define DEVICE_ROWS 16

/* Runs examples [i0, i0+cnt) (indices into ds->ex via idx[] when given), filling logits/sim. */
static mp_status run_examples(runctx *r, const size_t *idx, size_t cnt, size_t batch, float *logits, double *sim,
                              uint64_t *tokens) {
  const mp_dataset *ds = r->ds;
  const mp_model_config *c = mp_model_get_config(r->m);
  mp_run_options ro;
  mp_run_options_init(&ro);
  ro.batch_size = batch;
  ro.max_length = r->o->max_length;
  ro.truncation = r->o->truncation;
  if (strcmp(mp_model_device_name(r->m), "cpu") != 0) {
    /* On a GPU, batches of `batch` rows leave it mostly idle on short inputs: keep the token (and
     * device memory) budget of `batch` inputs at the maximum length, and let shorter inputs (the
     * dataset sorted longest first) fill up to DEVICE_ROWS x as many rows. */
    size_t ml = ro.max_length ? ro.max_length : mp_model_default_max_length(r->m);
    ro.max_batch_tokens = batch * (ml ? ml : 1);
    ro.batch_size = batch * DEVICE_ROWS;
  }
  mp_status st = MP_OK;
  if (tokens) *tokens = 0;
  if (r->p->task == MP_TASK_SIMILARITY) {
    size_t H = mp_model_hidden(r->m);
    const char **texts = malloc(2 * cnt * sizeof *texts);
    float *emb = malloc(2 * cnt * H * sizeof(float));
    if (!texts || !emb) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < cnt; i++) {
      const mp_example *e = &ds->ex[idx ? idx[i] : i];
      texts[2 * i] = e->text_a, texts[2 * i + 1] = e->text_b;
    }
    if (!st) st = mp_model_embed(r->m, 2 * cnt, texts, &ro, emb, tokens);
    for (size_t i = 0; !st && i < cnt; i++) {
      const float *a = emb + 2 * i * H, *b = a + H;
      double ab = 0, aa = 0, bb = 0;
      for (size_t d = 0; d < H; d++)
        ab += (double)a[d] * b[d], aa += (double)a[d] * a[d], bb += (double)b[d] * b[d];
      double den = sqrt(aa) * sqrt(bb);
      sim[i] = den > 0 ? ab / den : 0;
    }
    free(texts), free(emb);
    return st;
  }
  int L = c->num_labels;
  if (r->p->task == MP_TASK_ZERO_SHOT) {
    size_t k = r->p->k, np = cnt * k;
    const char **a = malloc(np * sizeof *a), **b = malloc(np * sizeof *b);
    float *lg = malloc(np * (size_t)L * sizeof(float));
    if (!a || !b || !lg) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < cnt; i++)
      for (size_t j = 0; j < k; j++)
        a[i * k + j] = ds->ex[idx ? idx[i] : i].text_a, b[i * k + j] = r->hyp[j];
    ro.truncation = MP_TRUNC_ONLY_FIRST;
    if (!st) st = mp_model_classify(r->m, np, a, b, &ro, lg, tokens);
    for (size_t i = 0; !st && i < cnt; i++)
      for (size_t j = 0; j < k; j++)
        logits[i * k + j] = lg[(i * k + j) * (size_t)L + r->p->ent];
    free(a), free(b), free(lg);
    return st;
  }
  const char **a = malloc(cnt * sizeof *a), **b = ds->has_pairs ? malloc(cnt * sizeof *b) : NULL;
  if (!a || (ds->has_pairs && !b)) st = mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t i = 0; !st && i < cnt; i++) {
    const mp_example *e = &ds->ex[idx ? idx[i] : i];
    a[i] = e->text_a;
    if (b) b[i] = e->text_b;
  }
  if (!st) st = mp_model_classify(r->m, cnt, a, r->p->task == MP_TASK_NLI ? b : NULL, &ro, logits, tokens);
  free(a), free(b);
  return st;
}

static mp_status eval_here(const char *ref, const mp_dataset *ds, const mp_eval_options *o, mp_eval_result *res) {
  memset(res, 0, sizeof *res);
  double t0 = mp_now_s();
  mp_model *m;
  /* the perf pass: fast unless a mode is forced; a second (faithful) pass below gives the task
   * metrics when the model has layers on the integer kernels */
  mp_compute perf_mode = o->compute == MP_COMPUTE_FAITHFUL ? MP_COMPUTE_FAITHFUL : MP_COMPUTE_FAST;
  mp_model_options mo = {.threads = o->threads,
                         .compute = perf_mode,
                         .device = o->device,
                         .device_dtype = o->device_dtype,
                         .weight_hook = o->weight_hook,
                         .weight_hook_ctx = o->weight_hook_ctx};
  MP_TRY(mp_model_open(ref, &mo, &m));
  res->load_s = mp_now_s() - t0;
  size_t n_int = 0;
  mp_model_compute(m, &n_int);
  res->int_layers = (int)n_int;
  res->bf16_layers = (int)mp_model_bf16_layers(m);
  n_int += (size_t)res->bf16_layers; /* layers whose fast computation differs from the faithful one */
  int two_pass = n_int > 0 && o->compute < 0;
  int quantized = n_int > 0 || mp_model_has_quantized(m);
  snprintf(res->perf_compute, sizeof res->perf_compute, "%s", quantized ? mp_compute_name(perf_mode) : "float");
  snprintf(res->metric_compute, sizeof res->metric_compute, "%s",
           !quantized                 ? "float"
           : (two_pass || n_int == 0) ? "faithful" /* no integer layers (fp modes): fast == faithful */
                                      : mp_compute_name(perf_mode));
  const mp_model_config *c = mp_model_get_config(m);
  snprintf(res->model, sizeof res->model, "%s", mp_model_path(m));
  snprintf(res->dataset, sizeof res->dataset, "%s", ds->name);
  snprintf(res->data_file, sizeof res->data_file, "%s", ds->path ? ds->path : "");
  res->demo_data = mp_data_find_is_fallback(ds->path);
  res->threads = o->threads ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  cpu_name(res->cpu, sizeof res->cpu);
  snprintf(res->isa, sizeof res->isa, "%s", mp_isa_name(mp_kernels_isa()));
  snprintf(res->device, sizeof res->device, "%s", mp_model_device_name(m));
  plan p;
  mp_status st = make_plan(c, ds, o, &p);
  runctx rc = {.m = m, .ds = ds, .p = &p, .o = o};
  char *hyp[16] = {0};
  if (!st && p.task == MP_TASK_ZERO_SHOT) {
    const char *tp = strstr(o->template_, "{}");
    if (!tp) st = mp_err(MP_ERR_INVALID_ARG, "template \"%s\" has no {}", o->template_);
    for (size_t j = 0; !st && j < p.k; j++) {
      mp_sb sb;
      mp_sb_init(&sb);
      mp_sb_append(&sb, o->template_, (size_t)(tp - o->template_));
      mp_sb_puts(&sb, p.labels[j]);
      mp_sb_puts(&sb, tp + 2);
      hyp[j] = mp_sb_steal(&sb);
    }
    rc.hyp = hyp;
  }
  size_t n = ds->n;
  res->task = p.task;
  res->n = n;
  res->k = p.k;
  for (size_t j = 0; j < p.k && j < 16; j++)
    snprintf(res->labels[j], sizeof res->labels[j], "%s", p.labels[j]);
  size_t kc = p.task == MP_TASK_ZERO_SHOT ? p.k : p.task == MP_TASK_SIMILARITY ? 0 : (size_t)c->num_labels;
  res->kc = kc;
  if (!st) {
    if (kc) res->logits = malloc((n ? n : 1) * kc * sizeof(float));
    if (p.task == MP_TASK_SIMILARITY)
      res->sim = malloc((n ? n : 1) * sizeof(double));
    else
      res->gold = malloc((n ? n : 1) * sizeof(int)), res->pred = malloc((n ? n : 1) * sizeof(int));
    if ((kc && !res->logits) || (p.task == MP_TASK_SIMILARITY ? !res->sim : (!res->gold || !res->pred)))
      st = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  size_t bs = o->batch_size ? o->batch_size : 32;
  /* warm-up (untimed): one batch */
  if (!st && n) {
    size_t w = n < bs ? n : bs;
    float *wl = kc ? malloc(w * kc * sizeof(float)) : NULL;
    double *ws = malloc(w * sizeof(double));
    st = (kc && !wl) || !ws ? mp_err(MP_ERR_NOMEM, "out of memory") : run_examples(&rc, NULL, w, bs, wl, ws, NULL);
    free(wl), free(ws);
  }
  /* timed throughput run over every example */
  if (!st) {
    sampler smp;
    sampler_start(&smp);
    double t1 = mp_now_s();
    st = run_examples(&rc, NULL, n, bs, res->logits, res->sim, &res->tokens);
    res->run_s = mp_now_s() - t1;
    sampler_stop(&smp, &res->mem_avg_mb, &res->mem_peak_mb);
    res->qpm = res->run_s > 0 ? (double)n / res->run_s * 60.0 : 0;
    res->tokens_per_sec = res->run_s > 0 ? (double)res->tokens / res->run_s : 0;
  }
  /* latency at batch size 1 */
  if (!st && n && o->latency_requests) {
    size_t R = o->latency_requests;
    double *ms = malloc(R * sizeof(double));
    float *one = malloc((kc ? kc : 1) * sizeof(float));
    double sim1;
    if (!ms || !one) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < o->warmup; i++) {
      size_t ix = i % n;
      st = run_examples(&rc, &ix, 1, 1, one, &sim1, NULL);
    }
    for (size_t i = 0; !st && i < R; i++) {
      size_t ix = i % n;
      double t1 = mp_now_s();
      st = run_examples(&rc, &ix, 1, 1, one, &sim1, NULL);
      ms[i] = (mp_now_s() - t1) * 1000.0;
    }
    if (!st) st = mp_latency_summary(ms, R, &res->latency_ms);
    free(ms), free(one);
  }
  /* two modes: the timed pass above was fast; keep its outputs and rerun faithful for the metrics */
  float *fast_logits = NULL;
  double *fast_sim = NULL;
  if (!st && two_pass && n) {
    fast_logits = res->logits, fast_sim = res->sim;
    res->logits = kc ? malloc(n * kc * sizeof(float)) : NULL;
    res->sim = p.task == MP_TASK_SIMILARITY ? malloc(n * sizeof(double)) : NULL;
    if ((kc && !res->logits) || (p.task == MP_TASK_SIMILARITY && !res->sim)) st = mp_err(MP_ERR_NOMEM, "out of memory");
    mp_model *mf = NULL;
    /* on a device: the fast model's memory freed first (its timed passes are done) */
    if ((double)mp_model_device_peak_bytes(m) / 1048576.0 > res->device_peak_mb)
      res->device_peak_mb = (double)mp_model_device_peak_bytes(m) / 1048576.0;
    mp_model_release_device(m);
    mp_model_options fo = {.threads = o->threads,
                           .compute = MP_COMPUTE_FAITHFUL,
                           .device = o->device,
                           .device_dtype = o->device_dtype,
                           .weight_hook = o->weight_hook,
                           .weight_hook_ctx = o->weight_hook_ctx};
    if (!st) st = mp_model_open(ref, &fo, &mf);
    if (!st) {
      rc.m = mf;
      st = run_examples(&rc, NULL, n, bs, res->logits, res->sim, NULL);
      rc.m = m;
    }
    if ((double)mp_model_device_peak_bytes(mf) / 1048576.0 > res->device_peak_mb)
      res->device_peak_mb = (double)mp_model_device_peak_bytes(mf) / 1048576.0;
    mp_model_close(mf);
    if (!st) {
      res->fast_pass = 1;
      res->fast_max_abs_diff = 0;
      if (kc)
        for (size_t i = 0; i < n * kc; i++) {
          double d = fabs((double)fast_logits[i] - res->logits[i]);
          if (!(d <= res->fast_max_abs_diff)) res->fast_max_abs_diff = d; /* NaN wins */
        }
      if (p.task == MP_TASK_SIMILARITY)
        for (size_t i = 0; i < n; i++) {
          double d = fabs(fast_sim[i] - res->sim[i]);
          if (!(d <= res->fast_max_abs_diff)) res->fast_max_abs_diff = d;
        }
    }
  }
  /* predictions and metrics */
  if (!st && p.task != MP_TASK_SIMILARITY) {
    int L = c->num_labels;
    for (size_t i = 0; i < n; i++) {
      int g = ds->ex[i].label;
      res->gold[i] = g >= 0 && g < 16 ? p.gold_map[g] : -1;
      const float *lg = res->logits + i * kc;
      int arg = 0;
      for (size_t j = 1; j < kc; j++)
        if (lg[j] > lg[arg]) arg = (int)j;
      res->pred[i] = p.task == MP_TASK_ZERO_SHOT ? arg : (arg < L ? p.model_to_eval[arg] : -1);
      if (res->gold[i] < 0 || res->pred[i] < 0) {
        st = mp_err(MP_ERR_INTERNAL, "example %zu: unmapped label", i);
        break;
      }
    }
    mp_cls_metrics cm;
    if (!st) st = mp_cls_metrics_compute(res->gold, res->pred, n, p.k, &cm);
    if (!st) {
      res->accuracy = cm.accuracy;
      res->macro_f1 = cm.macro_f1;
      for (size_t j = 0; j < p.k && j < 16; j++)
        res->f1_per_class[j] = cm.f1[j];
      for (size_t g = 0; g < p.k; g++)
        for (size_t q = 0; q < p.k; q++)
          res->confusion[g * 16 + q] = cm.confusion[g * p.k + q];
      mp_cls_metrics_free(&cm);
      st = mp_bootstrap_cls(res->gold, res->pred, n, p.k, MP_STAT_ACCURACY, o->bootstrap, 0.95, o->seed,
                            &res->accuracy_ci);
      if (!st)
        st = mp_bootstrap_cls(res->gold, res->pred, n, p.k, MP_STAT_MACRO_F1, o->bootstrap, 0.95, o->seed,
                              &res->macro_f1_ci);
    }
  } else if (!st) {
    double *gold = malloc((n ? n : 1) * sizeof(double));
    if (!gold) st = mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n; i++)
      gold[i] = ds->ex[i].score;
    if (!st) {
      res->pearson = mp_pearson(res->sim, gold, n);
      res->spearman = mp_spearman(res->sim, gold, n);
      st = mp_bootstrap_corr(res->sim, gold, n, MP_STAT_PEARSON, o->bootstrap, 0.95, o->seed, &res->pearson_ci);
      if (!st)
        st = mp_bootstrap_corr(res->sim, gold, n, MP_STAT_SPEARMAN, o->bootstrap, 0.95, o->seed, &res->spearman_ci);
      if (!st && res->fast_pass) res->fast_metric = mp_spearman(fast_sim, gold, n);
    }
    free(gold);
  }
  /* the fast pass's predictions against gold and against the faithful ones */
  if (!st && res->fast_pass && p.task != MP_TASK_SIMILARITY) {
    size_t agree = 0, correct = 0;
    for (size_t i = 0; i < n; i++) {
      const float *lg = fast_logits + i * kc;
      int arg = 0;
      for (size_t j = 1; j < kc; j++)
        if (lg[j] > lg[arg]) arg = (int)j;
      int pr = p.task == MP_TASK_ZERO_SHOT ? arg : (arg < c->num_labels ? p.model_to_eval[arg] : -1);
      agree += pr == res->pred[i];
      correct += pr == res->gold[i];
    }
    res->fast_agreement = n ? (double)agree / (double)n : NAN;
    res->fast_metric = n ? (double)correct / (double)n : NAN;
  }
  free(fast_logits);
  free(fast_sim);
  /* size on disk */
  if (!st) {
    mp_weights *w;
    if (mp_weights_open(res->model, &w) == MP_OK) {
      int64_t tot = 0;
      for (size_t i = 0; i < mp_weights_file_count(w); i++) {
        int64_t s = mp_file_size(mp_weights_file(w, i));
        if (s > 0) tot += s;
      }
      res->weights_mb = (double)tot / (1024.0 * 1024.0);
      mp_weights_close(w);
    }
    mp_err_clear();
    res->folder_mb = (double)mp_tree_size(res->model) / (1024.0 * 1024.0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    res->rss_peak_os_mb = (double)ru.ru_maxrss / 1024.0;
  }
  for (size_t j = 0; j < 16; j++)
    free(hyp[j]);
  if ((double)mp_model_device_peak_bytes(m) / 1048576.0 > res->device_peak_mb)
    res->device_peak_mb = (double)mp_model_device_peak_bytes(m) / 1048576.0;
  mp_model_close(m);
  if (st) mp_eval_result_free(res);
  return st;
}

/* ---------------------------------------------------------------- child process */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w, n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n) {
    ssize_t r = read(fd, c, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return -1;
    c += r, n -= (size_t)r;
  }
  return 0;
}

mp_status mp_eval_run(const char *model_ref, const mp_dataset *ds, const mp_eval_options *o, mp_eval_result *out) {
  mp_eval_options def;
  if (!o) mp_eval_options_init(&def), o = &def;
  if (o->in_process) return eval_here(model_ref, ds, o, out);
  memset(out, 0, sizeof *out);
  int fds[2];
  if (pipe(fds) != 0) return mp_err_errno(MP_ERR_IO, "pipe");
  fflush(NULL);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]);
    return mp_err_errno(MP_ERR_IO, "fork");
  }
  if (pid == 0) {
    close(fds[0]);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with the parent, even when it is SIGKILLed */
    if (getppid() != parent) _exit(3);
#endif
    mp_eval_result r;
    int32_t s = (int32_t)eval_here(model_ref, ds, o, &r);
    int bad = write_all(fds[1], &s, sizeof s);
    if (s) {
      const char *e = mp_last_error();
      uint32_t l = (uint32_t)strlen(e);
      bad |= write_all(fds[1], &l, sizeof l) || write_all(fds[1], e, l);
    } else {
      bad |= write_all(fds[1], &r, sizeof r);
      if (r.gold) bad |= write_all(fds[1], r.gold, r.n * sizeof(int)) || write_all(fds[1], r.pred, r.n * sizeof(int));
      if (r.logits) bad |= write_all(fds[1], r.logits, r.n * r.kc * sizeof(float));
      if (r.sim) bad |= write_all(fds[1], r.sim, r.n * sizeof(double));
    }
    close(fds[1]);
    _exit(bad ? 3 : 0);
  }
  close(fds[1]);
  int32_t s = MP_ERR_INTERNAL;
  mp_status st = MP_OK;
  if (read_all(fds[0], &s, sizeof s)) {
    st = mp_err(MP_ERR_INTERNAL, "the evaluation of %s died before reporting (killed, or out of memory?)", model_ref);
  } else if (s) {
    uint32_t l = 0;
    char msg[2048] = "";
    if (!read_all(fds[0], &l, sizeof l) && l < sizeof msg) read_all(fds[0], msg, l), msg[l] = 0;
    st = mp_err((mp_status)s, "%s", msg);
  } else if (read_all(fds[0], out, sizeof *out)) {
    st = mp_err(MP_ERR_INTERNAL, "short result from the evaluation of %s", model_ref);
  } else {
    int has_gold = out->gold != NULL, has_logits = out->logits != NULL, has_sim = out->sim != NULL;
    out->gold = out->pred = NULL, out->logits = NULL, out->sim = NULL;
    size_t n = out->n ? out->n : 1;
    if (has_gold) {
      out->gold = malloc(n * sizeof(int)), out->pred = malloc(n * sizeof(int));
      if (!out->gold || !out->pred || read_all(fds[0], out->gold, out->n * sizeof(int)) ||
          read_all(fds[0], out->pred, out->n * sizeof(int)))
        st = mp_err(MP_ERR_INTERNAL, "short result");
    }
    if (!st && has_logits) {
      out->logits = malloc(n * (out->kc ? out->kc : 1) * sizeof(float));
      if (!out->logits || read_all(fds[0], out->logits, out->n * out->kc * sizeof(float)))
        st = mp_err(MP_ERR_INTERNAL, "short result");
    }
    if (!st && has_sim) {
      out->sim = malloc(n * sizeof(double));
      if (!out->sim || read_all(fds[0], out->sim, out->n * sizeof(double)))
        st = mp_err(MP_ERR_INTERNAL, "short result");
    }
  }
  close(fds[0]);
  int wst;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
  }
  if (st) mp_eval_result_free(out);
  return st;
}

void mp_eval_result_free(mp_eval_result *r) {
  free(r->gold), free(r->pred), free(r->logits), free(r->sim);
  r->gold = r->pred = NULL, r->logits = NULL, r->sim = NULL;
}

double mp_eval_main_metric(const mp_eval_result *r) {
  return r->task == MP_TASK_SIMILARITY ? r->spearman : r->accuracy;
}
const char *mp_eval_main_metric_name(const mp_eval_result *r) {
  return r->task == MP_TASK_SIMILARITY ? "spearman" : "accuracy";
}

/* ---------------------------------------------------------------- comparison and gates */

mp_status mp_eval_compare(const mp_eval_result *b, const mp_eval_result *c, mp_comparison *out) {
  memset(out, 0, sizeof *out);
  if (b->n != c->n || b->task != c->task || b->kc != c->kc)
    return mp_err(MP_ERR_INVALID_ARG,
                  "cannot compare %s with %s: they differ in examples (%zu vs %zu), task (%s vs %s) or outputs "
                  "per example (%zu vs %zu logits; e.g. a 2-label and a 3-label model)",
                  b->model, c->model, b->n, c->n, mp_task_name(b->task), mp_task_name(c->task), b->kc, c->kc);
  out->metric_drop = mp_eval_main_metric(b) - mp_eval_main_metric(c);
  out->speedup_throughput = b->qpm > 0 ? c->qpm / b->qpm : NAN;
  out->speedup_p50 = c->latency_ms.p50 > 0 ? b->latency_ms.p50 / c->latency_ms.p50 : NAN;
  out->size_ratio = b->weights_mb > 0 ? c->weights_mb / b->weights_mb : NAN;
  if (b->task == MP_TASK_SIMILARITY) {
    double mx = 0;
    for (size_t i = 0; i < b->n; i++)
      mx = fmax(mx, fabs(b->sim[i] - c->sim[i]));
    out->max_abs_logit_diff = mx;
    out->agreement = NAN;
    out->mean_kl = NAN;
  } else {
    out->agreement = mp_agreement(b->pred, c->pred, b->n);
    out->mean_kl = mp_mean_kl(b->logits, c->logits, b->n, b->kc);
    out->max_abs_logit_diff = mp_max_abs_diff(b->logits, c->logits, b->n * b->kc);
  }
  return MP_OK;
}

void mp_gate_options_init(mp_gate_options *g) {
  g->max_accuracy_drop = NAN;
  g->min_speedup = 1.2;
  g->target_size_mb = NAN;
}

size_t mp_eval_gates(const mp_eval_result *b, const mp_eval_result *c, const mp_comparison *cmp,
                     const mp_gate_options *g, mp_gate *gates, int *all_passed) {
  size_t n = 0;
  *all_passed = 1;
  (void)b;
  if (!isnan(g->max_accuracy_drop) && b) {
    mp_gate *x = &gates[n++];
    snprintf(x->name, sizeof x->name, "%s_drop", mp_eval_main_metric_name(c));
    x->value = cmp->metric_drop;
    x->threshold = g->max_accuracy_drop;
    x->passed = x->value <= x->threshold;
    snprintf(x->rule, sizeof x->rule, "drop <= %g", g->max_accuracy_drop);
  }
  if (!isnan(g->min_speedup) && b) {
    mp_gate *x = &gates[n++];
    snprintf(x->name, sizeof x->name, "speedup");
    x->value = cmp->speedup_throughput;
    x->threshold = g->min_speedup;
    x->passed = !isnan(x->value) && x->value >= x->threshold;
    snprintf(x->rule, sizeof x->rule, "throughput ratio >= %g", g->min_speedup);
  }
  if (!isnan(g->target_size_mb)) {
    mp_gate *x = &gates[n++];
    snprintf(x->name, sizeof x->name, "size_mb");
    x->value = c->weights_mb;
    x->threshold = 1.1 * g->target_size_mb;
    x->passed = x->value <= x->threshold;
    snprintf(x->rule, sizeof x->rule, "size <= 1.1 x %g MB", g->target_size_mb);
  }
  for (size_t i = 0; i < n; i++)
    *all_passed &= gates[i].passed;
  return n;
}
