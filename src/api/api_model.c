/* Public API (include/mlxport/model.h): the model handle over model/model.h. Embedding,
 * classification, zero-shot (transformers' ZeroShotClassificationPipeline arithmetic over the
 * NLI logits) and token embeddings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "mlxport.h"
#include "model/device.h"
#include "model/model.h"

struct mlxport_model {
  mp_model *m;
  mp_run_options run;
  size_t dim;
};

MLXPORT_API void mlxport_model_options_init(mlxport_model_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->compute = MLXPORT_COMPUTE_FAST;
  o->batch_size = 32;
}

MLXPORT_API mlxport_status mlxport_model_open(const char *path_or_repo, const mlxport_model_options *options,
                                              mlxport_model **out) {
  if (!out) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_open: out is NULL");
  *out = NULL;
  if (!path_or_repo || !*path_or_repo) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_open: no model given");
  mlxport_model_options o;
  mlxport_model_options_init(&o);
  if (options) { /* fields beyond the caller's struct_size keep their defaults */
    if (options->struct_size < offsetof(mlxport_model_options, threads) || options->struct_size > sizeof o)
      return mp_err(MP_ERR_INVALID_ARG,
                    "mlxport_model_open: options->struct_size %zu is not valid: initialise "
                    "the options with mlxport_model_options_init",
                    options->struct_size);
    memcpy(&o, options, options->struct_size);
  }
  if (o.compute != MLXPORT_COMPUTE_FAST && o.compute != MLXPORT_COMPUTE_FAITHFUL)
    return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_open: compute must be MLXPORT_COMPUTE_FAST or _FAITHFUL");
  if (o.threads < 0) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_open: threads must be >= 0");
  mp_model_options mo = {.threads = o.threads, .compute = (mp_compute)o.compute, .device = o.device};
  if (o.device_dtype && mp_device_dtype_parse(o.device_dtype, &mo.device_dtype) != MP_OK)
    return mp_err_prefix(MP_ERR_INVALID_ARG, "mlxport_model_open: device_dtype");
  mlxport_model *h = calloc(1, sizeof *h);
  if (!h) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_status s = mp_model_open(path_or_repo, &mo, &h->m);
  if (s) {
    free(h);
    return s;
  }
  mp_run_options_init(&h->run);
  if (o.batch_size) h->run.batch_size = o.batch_size;
  h->run.max_length = o.max_length;
  h->dim = mp_model_hidden(h->m);
  *out = h;
  return MP_OK;
}

MLXPORT_API void mlxport_model_close(mlxport_model *model) {
  if (!model) return;
  mp_model_close(model->m);
  free(model);
}

MLXPORT_API size_t mlxport_model_dim(const mlxport_model *model) { return model ? model->dim : 0; }

MLXPORT_API size_t mlxport_model_num_labels(const mlxport_model *model) {
  if (!model) return 0;
  const mp_model_config *c = mp_model_get_config(model->m);
  return c->head == MP_HEAD_SEQ_CLS && c->num_labels > 0 ? (size_t)c->num_labels : 0;
}

MLXPORT_API const char *mlxport_model_label(const mlxport_model *model, size_t index) {
  if (index >= mlxport_model_num_labels(model)) return NULL;
  return mp_model_get_config(model->m)->id2label[index];
}

MLXPORT_API size_t mlxport_model_max_length(const mlxport_model *model) {
  if (!model) return 0;
  return model->run.max_length ? model->run.max_length : mp_model_default_max_length(model->m);
}

MLXPORT_API int mlxport_model_is_quantized(const mlxport_model *model) {
  return model ? mp_model_has_quantized(model->m) : 0;
}

static mp_status check_texts(const char *fn, const void *model, size_t n, const char *const *texts, const void *out) {
  if (!model) return mp_err(MP_ERR_INVALID_ARG, "%s: model is NULL", fn);
  if (n && (!texts || !out)) return mp_err(MP_ERR_INVALID_ARG, "%s: texts or the output buffer is NULL", fn);
  for (size_t i = 0; i < n; i++)
    if (!texts[i]) return mp_err(MP_ERR_INVALID_ARG, "%s: text %zu is NULL", fn, i);
  return MP_OK;
}

MLXPORT_API mlxport_status mlxport_model_embed(mlxport_model *model, size_t n, const char *const *texts, int normalize,
                                               float *out) {
  MP_TRY(check_texts("mlxport_model_embed", model, n, texts, out));
  if (!n) return MP_OK;
  MP_TRY(mp_model_embed(model->m, n, texts, &model->run, out, NULL));
  if (normalize) {
    for (size_t i = 0; i < n; i++) {
      float *r = out + i * model->dim;
      double ss = 0;
      for (size_t j = 0; j < model->dim; j++)
        ss += (double)r[j] * r[j];
      double nrm = sqrt(ss);
      if (nrm < 1e-12) nrm = 1e-12; /* torch.nn.functional.normalize's eps */
      for (size_t j = 0; j < model->dim; j++)
        r[j] = (float)(r[j] / nrm);
    }
  }
  return MP_OK;
}

MLXPORT_API mlxport_status mlxport_model_classify(mlxport_model *model, size_t n, const char *const *texts,
                                                  const char *const *pairs, float *logits) {
  MP_TRY(check_texts("mlxport_model_classify", model, n, texts, logits));
  if (!mlxport_model_num_labels(model))
    return mp_err(MP_ERR_UNSUPPORTED,
                  "%s: the model has no sequence-classification head (config.json "
                  "architectures names no *ForSequenceClassification)",
                  mp_model_path(model->m));
  for (size_t i = 0; pairs && i < n; i++)
    if (!pairs[i]) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_classify: pair %zu is NULL", i);
  if (!n) return MP_OK;
  return mp_model_classify(model->m, n, texts, pairs, &model->run, logits, NULL);
}

MLXPORT_API mlxport_status mlxport_model_zero_shot(mlxport_model *model, size_t n_texts, const char *const *texts,
                                                   size_t n_labels, const char *const *labels,
                                                   const char *hypothesis_template, int multi_label, float *scores) {
  MP_TRY(check_texts("mlxport_model_zero_shot", model, n_texts, texts, scores));
  const char *tpl = hypothesis_template ? hypothesis_template : "This example is {}.";
  const char *tp = strstr(tpl, "{}");
  if (!tp) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_zero_shot: the template \"%s\" has no {}", tpl);
  if (!n_labels || !labels) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_zero_shot: no candidate labels");
  for (size_t j = 0; j < n_labels; j++)
    if (!labels[j]) return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_zero_shot: label %zu is NULL", j);
  size_t L = mlxport_model_num_labels(model);
  if (L < 2)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: zero-shot classification needs an NLI classifier (2 or more labels)",
                  mp_model_path(model->m));
  if (!n_texts) return MP_OK;
  int ent = mp_model_config_entailment_id(mp_model_get_config(model->m));
  if (ent < 0) {
    mp_log(MP_LOG_WARN, "%s: no label named entailment; using the last label, %s", mp_model_path(model->m),
           mp_model_get_config(model->m)->id2label[L - 1]);
    ent = (int)L - 1;
  }
  int con = ent == 0 ? (int)L - 1 : 0;
  size_t np = n_texts * n_labels;
  char **hyp = calloc(n_labels, sizeof *hyp);
  const char **pa = malloc(np * sizeof *pa), **pb = malloc(np * sizeof *pb);
  float *lg = malloc(np * L * sizeof *lg);
  mp_status s = hyp && pa && pb && lg ? MP_OK : mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t j = 0; !s && j < n_labels; j++) {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_append(&sb, tpl, (size_t)(tp - tpl));
    mp_sb_puts(&sb, labels[j]);
    mp_sb_puts(&sb, tp + 2);
    if (sb.oom) s = mp_err(MP_ERR_NOMEM, "out of memory");
    hyp[j] = mp_sb_steal(&sb);
  }
  if (!s) {
    for (size_t i = 0; i < n_texts; i++)
      for (size_t j = 0; j < n_labels; j++)
        pa[i * n_labels + j] = texts[i], pb[i * n_labels + j] = hyp[j];
    mp_run_options ro = model->run;
    ro.truncation = MP_TRUNC_ONLY_FIRST; /* transformers truncates the sequence, never the hypothesis */
    s = mp_model_classify(model->m, np, pa, pb, &ro, lg, NULL);
  }
  int multi = multi_label || n_labels == 1;
  for (size_t i = 0; !s && i < n_texts; i++) {
    const float *r = lg + i * n_labels * L;
    float *o = scores + i * n_labels;
    if (multi) {
      for (size_t j = 0; j < n_labels; j++) {
        double e = r[j * L + ent], k = r[j * L + con], mx = e > k ? e : k;
        o[j] = (float)(exp(e - mx) / (exp(e - mx) + exp(k - mx)));
      }
    } else {
      double mx = -INFINITY, sum = 0;
      for (size_t j = 0; j < n_labels; j++)
        mx = r[j * L + ent] > mx ? r[j * L + ent] : mx;
      for (size_t j = 0; j < n_labels; j++)
        sum += exp(r[j * L + ent] - mx);
      for (size_t j = 0; j < n_labels; j++)
        o[j] = (float)(exp(r[j * L + ent] - mx) / sum);
    }
  }
  for (size_t j = 0; hyp && j < n_labels; j++)
    free(hyp[j]);
  free(hyp), free(pa), free(pb), free(lg);
  return s;
}

MLXPORT_API mlxport_status mlxport_model_token_embeddings(mlxport_model *model, const char *text, float **out,
                                                          size_t *n_tokens) {
  if (!model || !text || !out || !n_tokens)
    return mp_err(MP_ERR_INVALID_ARG, "mlxport_model_token_embeddings: NULL argument");
  *out = NULL;
  *n_tokens = 0;
  return mp_model_token_embeddings(model->m, 1, &text, &model->run, out, n_tokens);
}
