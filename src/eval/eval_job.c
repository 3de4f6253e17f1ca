/* One evaluation job (eval_job.h): dataset resolution and loading, baseline and model runs,
 * comparison, gates, the comparison document and the model card. Moved here from the CLI so
 * that the pipeline and the public API run the very same job without the mlxport program. */
#include "eval/eval_job.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "eval/data_dirs.h"
#include "eval/report.h"
#include "format/hf.h"
#include "hub/card.h"

void mp_eval_job_opts_init(mp_eval_job_opts *o) {
  memset(o, 0, sizeof *o);
  mp_eval_options_init(&o->eo);
  mp_gate_options_init(&o->go);
}

mp_status mp_eval_job_dataset(const mp_eval_job_opts *o, mp_dataset **out) {
  *out = NULL;
  if (!o->dataset) return mp_err(MP_ERR_INVALID_ARG, "no dataset given (a built-in key or a file)");
  mp_dataset_def def;
  mp_dataset_def_init(&def);
  char *found = NULL;
  mp_status st = MP_OK;
  char tf_buf[512] = "", ln_buf[1024] = "";
  const char *lnames[16];
  if (o->data_file) {
    def.key = o->dataset;
    def.path = o->data_file;
  } else if (mp_path_exists(o->dataset)) {
    def.path = o->dataset;
  } else {
    def.key = o->dataset;
    st = mp_data_find(o->dataset, o->data_dir, &found);
    def.path = found;
  }
  if (!st && o->format && mp_ds_format_parse(o->format, &def.format)) st = MP_ERR_INVALID_ARG;
  if (!st && o->text_fields) {
    snprintf(tf_buf, sizeof tf_buf, "%s", o->text_fields);
    char *comma = strchr(tf_buf, ',');
    if (comma) *comma = 0, def.text_b = comma + 1;
    def.text_a = tf_buf;
  }
  /* a file by path, no key, no fields: the task's usual column names */
  if (!st && !def.key && !o->text_fields && o->task && mp_dataset_task_fields(&def, o->task) != MP_OK)
    st = MP_ERR_INVALID_ARG;
  if (o->label_field) def.label = o->label_field;
  if (o->score_field) def.score = o->score_field;
  if (o->label_names) {
    snprintf(ln_buf, sizeof ln_buf, "%s", o->label_names);
    size_t nl = 0;
    for (char *save = NULL, *t = strtok_r(ln_buf, ",", &save); t && nl < 16; t = strtok_r(NULL, ",", &save))
      lnames[nl++] = t;
    def.label_names = lnames;
    def.n_label_names = nl;
  }
  mp_dataset *ds = NULL;
  if (!st) st = mp_dataset_load(&def, &ds);
  if (!st) st = mp_dataset_sample(ds, o->max_samples, o->eo.seed);
  free(found);
  if (st) {
    mp_dataset_free(ds);
    return st;
  }
  *out = ds;
  return MP_OK;
}

int mp_eval_model_bits(const char *model_path) {
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *cfg;
  int bits = 0;
  if (mp_hf_load_config(model_path, &a, &cfg) == MP_OK)
    bits = (int)mp_json_get_int(mp_json_get(cfg, "quantization"), "bits", 0);
  mp_err_clear();
  mp_arena_free(&a);
  return bits;
}

mp_status mp_eval_job_run(const mp_eval_job_opts *o, mp_eval_job_out *out) {
  memset(out, 0, sizeof *out);
  mp_sb_init(&out->doc);
  out->all_passed = 1;
  if (!o->model) return out->usage = 1, mp_err(MP_ERR_INVALID_ARG, "no model given");
  mp_eval_options eo = o->eo;
  mp_gate_options go = o->go;
  if (go.min_speedup == 0) go.min_speedup = NAN;
  if (!o->baseline) go.min_speedup = NAN, go.max_accuracy_drop = NAN;
  if (!eo.template_ || !strstr(eo.template_, "{}"))
    return out->usage = 1, mp_err(MP_ERR_INVALID_ARG, "the zero-shot template must contain {}");
  mp_status st = mp_eval_job_dataset(o, &out->ds);
  if (st) {
    out->usage = st == MP_ERR_INVALID_ARG;
    return st;
  }
  mp_dataset *ds = out->ds;
  mp_log(MP_LOG_INFO, "mlxport eval: %s: %zu examples%s (of %zu) from %s", ds->name, ds->n,
         ds->n < ds->n_total ? " sampled" : "", ds->n_total, ds->path);
  if (mp_data_find_is_fallback(ds->path))
    mp_log(MP_LOG_INFO,
           "mlxport eval: note: %s is the small embedded demo set, not the real benchmark: its figures "
           "show the tool works, not the model's benchmark accuracy",
           ds->path);
  if (o->baseline) {
    mp_log(MP_LOG_INFO, "mlxport eval: running baseline %s", o->baseline);
    st = mp_eval_run(o->baseline, ds, &eo, &out->base);
    if (st) return mp_err_prefix(st, "baseline %s", o->baseline);
    out->have_base = 1;
  }
  mp_log(MP_LOG_INFO, "mlxport eval: running %s", o->model);
  st = mp_eval_run(o->model, ds, &eo, &out->conv);
  if (st) return mp_err_prefix(st, "model %s", o->model);
  if (out->have_base) MP_TRY(mp_eval_compare(&out->base, &out->conv, &out->cmp));
  out->n_gates =
      mp_eval_gates(out->have_base ? &out->base : NULL, &out->conv, &out->cmp, &go, out->gates, &out->all_passed);
  /* default name: the repo's name for a hub id, else the folder's name */
  snprintf(out->name, sizeof out->name, "%s",
           o->name                    ? o->name
           : mp_path_exists(o->model) ? mp_path_basename(out->conv.model)
                                      : mp_path_basename(o->model));
  out->bits = mp_eval_model_bits(out->conv.model);
  mp_report_comparison_json(&out->doc, out->name, ds->name, out->bits, out->have_base ? &out->base : NULL, &out->conv,
                            &out->cmp, out->gates, out->n_gates, out->all_passed);
  mp_sb_putc(&out->doc, '\n');
  if (out->doc.oom) return mp_err(MP_ERR_NOMEM, "out of memory");
  if (o->update_card && out->have_base && mp_is_dir(o->model)) { /* an mlxport card in the folder records it */
    mp_arena ca;
    mp_arena_init(&ca, 0);
    mp_json *cj = NULL;
    int updated = 0;
    if (mp_json_parse(out->doc.buf, out->doc.len, "comparison", &ca, &cj) != MP_OK ||
        mp_card_add_evaluation(o->model, cj, o->card_command, &updated) != MP_OK)
      mp_log(MP_LOG_WARN, "mlxport eval: the model card was not updated: %s", mp_last_error());
    else if (updated)
      mp_log(MP_LOG_INFO, "mlxport eval: recorded in %s/README.md (model card)", o->model);
    mp_err_clear();
    mp_arena_free(&ca);
  }
  return MP_OK;
}

void mp_eval_job_out_free(mp_eval_job_out *out) {
  if (!out) return;
  mp_eval_result_free(&out->base);
  mp_eval_result_free(&out->conv);
  mp_dataset_free(out->ds);
  mp_sb_free(&out->doc);
  memset(out, 0, sizeof *out);
}
