/* Public API (include/mlxport/eval.h): the evaluator handle (a loaded, sampled dataset and the
 * run options), results, comparisons with gates, and mlxport_evaluate, the whole job, over
 * eval/eval_job.h, eval/evaluate.h and eval/report.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/strbuf.h"
#include "eval/eval_job.h"
#include "eval/report.h"
#include "mlxport.h"
#include "model/model.h"

struct mlxport_evaluator {
  mp_eval_job_opts jo;
  char *strs[16]; /* copies of the option strings jo points to */
  size_t n_strs;
  mp_dataset *ds;
};

struct mlxport_eval_result {
  mp_eval_result r;
  char name[256];
  char *json;
};

struct mlxport_comparison {
  mp_comparison cmp;
  mp_gate gates[4];
  size_t n_gates;
  int all_passed;
  char *json;
};

MLXPORT_API void mlxport_eval_options_init(mlxport_eval_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->seed = 42;
  o->batch_size = 32;
  o->latency_requests = 100;
  o->max_accuracy_drop = NAN;
  o->min_speedup = 1.2;
  o->target_size_mb = NAN;
}

/* public options -> the job's options (strings borrowed) */
static mp_status to_job(const mlxport_eval_options *in, mp_eval_job_opts *jo) {
  if (!in) return mp_err(MP_ERR_INVALID_ARG, "evaluation options are NULL");
  mlxport_eval_options o;
  mlxport_eval_options_init(&o);
  if (in->struct_size < offsetof(mlxport_eval_options, dataset) || in->struct_size > sizeof o)
    return mp_err(MP_ERR_INVALID_ARG,
                  "evaluation options: struct_size %zu is not valid: initialise them with "
                  "mlxport_eval_options_init",
                  in->struct_size);
  memcpy(&o, in, in->struct_size);
  mp_eval_job_opts_init(jo);
  jo->model = o.model;
  jo->baseline = o.baseline;
  jo->dataset = o.dataset;
  jo->data_dir = o.data_dir;
  jo->data_file = o.data_file;
  jo->format = o.format;
  jo->text_fields = o.text_fields;
  jo->label_field = o.label_field;
  jo->label_names = o.label_names;
  jo->score_field = o.score_field;
  jo->name = o.name;
  jo->max_samples = o.max_samples;
  jo->update_card = o.update_card != 0;
  if (o.task && strcmp(o.task, "auto")) {
    MP_TRY(mp_task_parse(o.task, &jo->eo.task));
    jo->task = o.task;
  }
  jo->eo.seed = o.seed;
  if (o.batch_size) jo->eo.batch_size = o.batch_size;
  jo->eo.max_length = o.max_length;
  jo->eo.latency_requests = o.latency_requests;
  if (o.threads < 0) return mp_err(MP_ERR_INVALID_ARG, "evaluation options: threads must be >= 0");
  jo->eo.threads = o.threads;
  if (o.template_) jo->eo.template_ = o.template_;
  if (!strstr(jo->eo.template_, "{}"))
    return mp_err(MP_ERR_INVALID_ARG, "evaluation options: the template \"%s\" has no {}", jo->eo.template_);
  jo->eo.in_process = o.in_process != 0;
  if (o.compute && strcmp(o.compute, "both")) {
    mp_compute c;
    if (mp_compute_parse(o.compute, &c))
      return mp_err(MP_ERR_INVALID_ARG, "evaluation options: compute must be both, fast or faithful, got '%s'",
                    o.compute);
    jo->eo.compute = (int)c;
  }
  jo->go.max_accuracy_drop = o.max_accuracy_drop;
  jo->go.min_speedup = o.min_speedup == 0 ? NAN : o.min_speedup;
  jo->go.target_size_mb = o.target_size_mb;
  return MP_OK;
}

static const char *keep(mlxport_evaluator *ev, const char *s) {
  if (!s || ev->n_strs == sizeof ev->strs / sizeof *ev->strs) return NULL;
  return ev->strs[ev->n_strs++] = strdup(s);
}

MLXPORT_API mlxport_status mlxport_evaluator_open(const mlxport_eval_options *options, mlxport_evaluator **out) {
  if (!out) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluator_open: out is NULL");
  *out = NULL;
  mlxport_evaluator *ev = calloc(1, sizeof *ev);
  if (!ev) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status s = to_job(options, &ev->jo);
  if (!s) { /* keep private copies of every string the evaluator uses later */
    mp_eval_job_opts *j = &ev->jo;
    j->dataset = keep(ev, j->dataset), j->data_dir = keep(ev, j->data_dir), j->data_file = keep(ev, j->data_file);
    j->format = keep(ev, j->format), j->text_fields = keep(ev, j->text_fields);
    j->label_field = keep(ev, j->label_field), j->label_names = keep(ev, j->label_names);
    j->score_field = keep(ev, j->score_field), j->task = keep(ev, j->task), j->name = keep(ev, j->name);
    j->eo.template_ = keep(ev, j->eo.template_);
    j->model = j->baseline = NULL;
    if (!j->eo.template_) s = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  if (!s && !ev->jo.dataset) s = mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluator_open: no dataset given");
  if (!s) s = mp_eval_job_dataset(&ev->jo, &ev->ds);
  if (s) {
    mlxport_evaluator_close(ev);
    return s;
  }
  *out = ev;
  return MP_OK;
}

MLXPORT_API void mlxport_evaluator_close(mlxport_evaluator *ev) {
  if (!ev) return;
  mp_dataset_free(ev->ds);
  for (size_t i = 0; i < ev->n_strs; i++)
    free(ev->strs[i]);
  free(ev);
}

MLXPORT_API size_t mlxport_evaluator_size(const mlxport_evaluator *ev) { return ev && ev->ds ? ev->ds->n : 0; }

MLXPORT_API mlxport_status mlxport_evaluator_run(mlxport_evaluator *ev, const char *model, mlxport_eval_result **out) {
  if (!out) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluator_run: out is NULL");
  *out = NULL;
  if (!ev || !model || !*model) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluator_run: no evaluator or model");
  mlxport_eval_result *r = calloc(1, sizeof *r);
  if (!r) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status s = mp_eval_run(model, ev->ds, &ev->jo.eo, &r->r);
  if (s) {
    mp_err_prefix(s, "model %s", model);
    mlxport_eval_result_free(r);
    return s;
  }
  snprintf(r->name, sizeof r->name, "%s",
           ev->jo.name ? ev->jo.name : mp_path_basename(mp_path_exists(model) ? r->r.model : model));
  mp_sb sb;
  mp_sb_init(&sb);
  mp_report_result_json(&sb, r->name, &r->r, 0);
  r->json = sb.oom ? NULL : mp_sb_steal(&sb);
  mp_sb_free(&sb);
  *out = r;
  return MP_OK;
}

MLXPORT_API double mlxport_eval_result_metric(const mlxport_eval_result *r) {
  return r ? mp_eval_main_metric(&r->r) : NAN;
}

MLXPORT_API const char *mlxport_eval_result_metric_name(const mlxport_eval_result *r) {
  return r ? mp_eval_main_metric_name(&r->r) : NULL;
}

MLXPORT_API const char *mlxport_eval_result_json(const mlxport_eval_result *r) { return r ? r->json : NULL; }

MLXPORT_API void mlxport_eval_result_free(mlxport_eval_result *r) {
  if (!r) return;
  mp_eval_result_free(&r->r);
  free(r->json);
  free(r);
}

MLXPORT_API mlxport_status mlxport_evaluator_compare(const mlxport_evaluator *ev, const mlxport_eval_result *baseline,
                                                     const mlxport_eval_result *converted, mlxport_comparison **out) {
  if (!out) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluator_compare: out is NULL");
  *out = NULL;
  if (!ev || !baseline || !converted) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluator_compare: NULL argument");
  mlxport_comparison *c = calloc(1, sizeof *c);
  if (!c) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status s = mp_eval_compare(&baseline->r, &converted->r, &c->cmp);
  if (s) {
    free(c);
    return s;
  }
  c->all_passed = 1;
  c->n_gates = mp_eval_gates(&baseline->r, &converted->r, &c->cmp, &ev->jo.go, c->gates, &c->all_passed);
  mp_sb sb;
  mp_sb_init(&sb);
  mp_report_comparison_json(&sb, converted->name, ev->ds->name, mp_eval_model_bits(converted->r.model), &baseline->r,
                            &converted->r, &c->cmp, c->gates, c->n_gates, c->all_passed);
  mp_err_clear();
  c->json = sb.oom ? NULL : mp_sb_steal(&sb);
  mp_sb_free(&sb);
  *out = c;
  return MP_OK;
}

MLXPORT_API int mlxport_comparison_passed(const mlxport_comparison *c) { return c ? c->all_passed : 0; }

MLXPORT_API double mlxport_comparison_metric_drop(const mlxport_comparison *c) { return c ? c->cmp.metric_drop : NAN; }

MLXPORT_API size_t mlxport_comparison_gate_count(const mlxport_comparison *c) { return c ? c->n_gates : 0; }

MLXPORT_API mlxport_status mlxport_comparison_gate(const mlxport_comparison *c, size_t index, const char **name,
                                                   double *value, double *threshold, int *passed) {
  if (!c || index >= c->n_gates)
    return mp_err(MP_ERR_INVALID_ARG, "mlxport_comparison_gate: no gate %zu (there are %zu)", index,
                  c ? c->n_gates : 0);
  const mp_gate *g = &c->gates[index];
  if (name) *name = g->name;
  if (value) *value = g->value;
  if (threshold) *threshold = g->threshold;
  if (passed) *passed = g->passed;
  return MP_OK;
}

MLXPORT_API const char *mlxport_comparison_json(const mlxport_comparison *c) { return c ? c->json : NULL; }

MLXPORT_API void mlxport_comparison_free(mlxport_comparison *c) {
  if (!c) return;
  free(c->json);
  free(c);
}

MLXPORT_API mlxport_status mlxport_evaluate(const mlxport_eval_options *options, char **json, int *all_passed) {
  if (!json) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluate: json is NULL");
  *json = NULL;
  if (all_passed) *all_passed = 0;
  mp_eval_job_opts jo;
  MP_TRY(to_job(options, &jo));
  if (!jo.model || !*jo.model) return mp_err(MP_ERR_INVALID_ARG, "mlxport_evaluate: no model given");
  mp_eval_job_out out;
  mp_status s = mp_eval_job_run(&jo, &out);
  if (!s) {
    *json = mp_sb_steal(&out.doc);
    if (!*json) s = mp_err(MP_ERR_NOMEM, "out of memory");
    if (all_passed) *all_passed = out.all_passed;
  }
  mp_eval_job_out_free(&out);
  return s;
}
