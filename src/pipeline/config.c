/* Pipeline configuration (see config.h): YAML files of models and datasets merged, validated with
 * file:line:column messages and de-duplicated. */
#include "pipeline/config.h"

#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/str.h"
#include "core/strbuf.h"
#include "core/yaml.h"
#include "hub/hub.h"
#include "model/device.h"
#include "quant/recipe.h"

/* ---------------------------------------------------------------- validation context */

typedef struct {
  mp_pl_config *c;
  mp_sb errs;
  int n_errs;
  const char *file; /* current file */
} vctx;

static void verr(vctx *v, const mp_json *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verr(vctx *v, const mp_json *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (v->n_errs) mp_sb_putc(&v->errs, '\n');
  mp_sb_printf(&v->errs, "%s:%u:%u: ", v->file, at ? at->line : 1, at ? at->col : 1);
  mp_sb_vprintf(&v->errs, fmt, ap);
  va_end(ap);
  v->n_errs++;
}

static void warn(mp_pl_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(mp_pl_config *c, const char *fmt, ...) {
  mp_sb sb;
  mp_sb_init(&sb);
  va_list ap;
  va_start(ap, fmt);
  mp_sb_vprintf(&sb, fmt, ap);
  va_end(ap);
  char **nw = realloc(c->warnings, (c->n_warnings + 1) * sizeof *nw);
  if (!nw) {
    mp_sb_free(&sb);
    return;
  }
  c->warnings = nw;
  c->warnings[c->n_warnings++] = mp_sb_steal(&sb);
}

static void unknown_keys(vctx *v, const mp_json *obj, const char *const *allowed, const char *what) {
  for (size_t i = 0; i < obj->len; i++) {
    int ok = 0;
    for (const char *const *k = allowed; *k; k++)
      if (!strcmp(obj->keys[i], *k)) ok = 1;
    if (ok) continue;
    const char *best = NULL;
    size_t bd = 99;
    for (const char *const *k = allowed; *k; k++) {
      size_t d = mp_str_edit_distance(obj->keys[i], *k);
      if (d < bd) bd = d, best = *k;
    }
    if (best && bd <= 2 + strlen(obj->keys[i]) / 4)
      verr(v, obj->items[i], "unknown key \"%s\" in %s (did you mean \"%s\"?)", obj->keys[i], what, best);
    else
      verr(v, obj->items[i], "unknown key \"%s\" in %s", obj->keys[i], what);
  }
}

static const char *get_str(vctx *v, const mp_json *obj, const char *key, int required, const char *what) {
  const mp_json *j = mp_json_get(obj, key);
  if (!j || j->type == MP_JSON_NULL) {
    if (required) verr(v, obj, "%s: required key \"%s\" is missing", what, key);
    return NULL;
  }
  if (j->type == MP_JSON_NUMBER || j->type == MP_JSON_BOOL) {
    /* numbers where a string is expected: accept their text (e.g. revision: 2024) */
    if (j->str) return j->str;
    verr(v, j, "%s: \"%s\" must be a string", what, key);
    return NULL;
  }
  if (j->type != MP_JSON_STRING) {
    verr(v, j, "%s: \"%s\" must be a string, not a %s", what, key, mp_json_type_name(j->type));
    return NULL;
  }
  return j->str;
}

/* A path value with environment references expanded: ${VAR}, or ${VAR:-default} when VAR is unset or
 * empty (e.g. hf_name: ${MP_CACHE:-../.cache}/models/x). An unset VAR without a default, or an
 * unterminated ${, is a configuration error naming the key. The result lives in the config's arena. */
static const char *get_path(vctx *v, const mp_json *obj, const char *key, int required, const char *what) {
  const char *s = get_str(v, obj, key, required, what);
  if (!s || !strstr(s, "${")) return s;
  mp_sb out = {0};
  const char *p = s;
  while (*p) {
    if (p[0] != '$' || p[1] != '{') {
      mp_sb_append(&out, p++, 1);
      continue;
    }
    const char *end = strchr(p + 2, '}');
    if (!end) {
      verr(v, mp_json_get(obj, key), "%s: \"%s\": unterminated \"${\" in \"%s\" (write ${VAR} or ${VAR:-default})",
           what, key, s);
      mp_sb_free(&out);
      return NULL;
    }
    char name[256];
    size_t n = (size_t)(end - (p + 2));
    const char *dflt = NULL;
    const char *colon = memchr(p + 2, ':', n);
    size_t nn = colon ? (size_t)(colon - (p + 2)) : n;
    if (colon && colon + 1 < end && colon[1] == '-') dflt = colon + 2;
    if (nn == 0 || nn >= sizeof name || (colon && !dflt)) {
      verr(v, mp_json_get(obj, key), "%s: \"%s\": bad reference \"%.*s\" in \"%s\" (write ${VAR} or ${VAR:-default})",
           what, key, (int)(end - p + 1), p, s);
      mp_sb_free(&out);
      return NULL;
    }
    memcpy(name, p + 2, nn);
    name[nn] = 0;
    const char *val = getenv(name);
    if (val && *val)
      mp_sb_append(&out, val, strlen(val));
    else if (dflt)
      mp_sb_append(&out, dflt, (size_t)(end - dflt));
    else {
      verr(v, mp_json_get(obj, key),
           "%s: \"%s\": environment variable %s is not set (in \"%s\"); set it or write "
           "${%s:-default}",
           what, key, name, s, name);
      mp_sb_free(&out);
      return NULL;
    }
    p = end + 1;
  }
  const char *r = mp_arena_strdup(&v->c->arena, out.buf ? out.buf : "");
  mp_sb_free(&out);
  return r;
}

static double get_num(vctx *v, const mp_json *obj, const char *key, double dflt, const char *what) {
  const mp_json *j = mp_json_get(obj, key);
  if (!j || j->type == MP_JSON_NULL) return dflt;
  if (j->type != MP_JSON_NUMBER || !isfinite(j->num)) {
    verr(v, j, "%s: \"%s\" must be a number", what, key);
    return dflt;
  }
  return j->num;
}

static const char **get_str_list(vctx *v, const mp_json *obj, const char *key, size_t *n, const char *what) {
  *n = 0;
  const mp_json *j = mp_json_get(obj, key);
  if (!j || j->type == MP_JSON_NULL) return NULL;
  if (j->type == MP_JSON_STRING) { /* a single string is a one-element list */
    const char **l = mp_arena_alloc(&v->c->arena, sizeof *l);
    if (l) l[0] = j->str, *n = 1;
    return l;
  }
  if (j->type != MP_JSON_ARRAY) {
    verr(v, j, "%s: \"%s\" must be a list of strings", what, key);
    return NULL;
  }
  const char **l = mp_arena_alloc(&v->c->arena, (j->len ? j->len : 1) * sizeof *l);
  if (!l) return NULL;
  for (size_t i = 0; i < j->len; i++) {
    if (j->items[i]->type != MP_JSON_STRING) {
      verr(v, j->items[i], "%s: \"%s\" must contain only strings", what, key);
      continue;
    }
    l[(*n)++] = j->items[i]->str;
  }
  return l;
}

/* A name becomes a folder: it must be one plain path component. */
static int safe_name(const char *s) {
  if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 128) return 0;
  for (const char *p = s; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.'))
      return 0;
  }
  return s[0] != '.';
}

static void suggest_name(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (const char *p = s; *p && o + 3 < cap; p++) {
    char c = *p;
    if (c == '/') {
      out[o++] = '-', out[o++] = '-';
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.') {
      out[o++] = c;
    } else {
      out[o++] = '_';
    }
  }
  out[o] = 0;
  while (out[0] == '.')
    memmove(out, out + 1, strlen(out));
}

/* ---------------------------------------------------------------- models */

static const char *const k_model_keys[] = {"name",         "hf_name",    "task",        "revision",
                                           "quantization", "benchmarks", "description", "enabled",
                                           "upload",       "device",     NULL};
static const char *const k_quant_keys[] = {"bits",        "dtype",  "group_size", "target_size_mb", "max_accuracy_drop",
                                           "min_speedup", "method", "mode",       "overrides",      "recipe",
                                           "auto",        NULL};
static const char *const k_auto_keys[] = {"max_drop", "calibration",  "calibration_samples",
                                          "eval",     "eval_samples", NULL};

static uint32_t fnv1a(uint32_t h, const char *s) {
  for (; s && *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

/* mode, overrides, recipe, auto: checked here so a bad spec is reported with its line */
static void parse_quant_ext(vctx *v, const mp_json *q, mp_pl_quant *qq, int bits_given, int gs_given) {
  qq->auto_max_drop = -1;
  qq->mode = get_str(v, q, "mode", 0, "quantization");
  mp_qmode mode = MP_QMODE_AFFINE;
  if (qq->mode && mp_qmode_parse(qq->mode, &mode)) {
    verr(v, mp_json_get(q, "mode"), "quantization.mode \"%s\" must be affine, mxfp4, nvfp4 or mxfp8", qq->mode);
    return;
  }
  if (mode != MP_QMODE_AFFINE) {
    if (!bits_given) qq->bits = mp_qmode_default_bits(mode);
    if (!gs_given) qq->group_size = mp_qmode_default_group(mode);
    if (!mp_mlx_quant_supported(mode, qq->bits, qq->group_size)) {
      char allowed[128];
      mp_qmode_allowed(mode, allowed, sizeof allowed);
      verr(v, mp_json_get(q, "mode"), "quantization: %d bits, group size %d with mode %s: %s", qq->bits, qq->group_size,
           qq->mode, allowed);
    }
  }
  qq->overrides = get_str_list(v, q, "overrides", &qq->n_overrides, "quantization");
  for (size_t i = 0; i < qq->n_overrides; i++) {
    mp_qrecipe r;
    mp_qrecipe_init(&r);
    if (mp_qrecipe_add_override(&r, qq->overrides[i], mode == MP_QMODE_AFFINE ? qq->group_size : 64))
      verr(v, mp_json_get(q, "overrides"), "quantization.overrides: %s", mp_last_error());
    mp_qrecipe_free(&r);
    mp_err_clear();
  }
  qq->recipe = get_str(v, q, "recipe", 0, "quantization");
  if (qq->recipe && strcmp(qq->recipe, "keep-edges") && strcmp(qq->recipe, "keep-edges-float") &&
      strncmp(qq->recipe, "mixed_", 6) && !strstr(qq->recipe, ".json"))
    verr(v, mp_json_get(q, "recipe"),
         "quantization.recipe \"%s\": expected keep-edges, keep-edges-float, an mlx-lm predicate (mixed_2_6, "
         "mixed_3_4, mixed_3_6, mixed_4_6) or a recipe file (*.json)",
         qq->recipe);
  const mp_json *a = mp_json_get(q, "auto");
  if (a && a->type == MP_JSON_OBJECT) {
    unknown_keys(v, a, k_auto_keys, "quantization.auto");
    qq->auto_max_drop = get_num(v, a, "max_drop", -1, "quantization.auto");
    qq->auto_calibration = get_str(v, a, "calibration", 1, "quantization.auto");
    qq->auto_eval = get_str(v, a, "eval", 0, "quantization.auto");
    qq->auto_calibration_samples = get_num(v, a, "calibration_samples", 0, "quantization.auto");
    qq->auto_eval_samples = get_num(v, a, "eval_samples", 0, "quantization.auto");
    if (!(qq->auto_max_drop >= 0 && qq->auto_max_drop <= 1))
      verr(v, a, "quantization.auto.max_drop is required, in [0, 1] (metric points: 0.01 = 1 point)");
    if (qq->overrides || qq->recipe || qq->mode)
      verr(v, a, "quantization.auto searches the whole recipe: leave mode, overrides and recipe out");
  } else if (a && a->type != MP_JSON_NULL) {
    verr(v, a, "quantization.auto must be a mapping (max_drop, calibration, calibration_samples, eval, eval_samples)");
  }
  /* the variant label: folder names, report labels, "same quantization" detection */
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < qq->n_overrides; i++)
    h = fnv1a(fnv1a(h, qq->overrides[i]), "\n");
  h = fnv1a(h, qq->recipe);
  if (qq->auto_max_drop >= 0) {
    char b[64];
    snprintf(b, sizeof b, "%g/%g/%g", qq->auto_max_drop, qq->auto_calibration_samples, qq->auto_eval_samples);
    h = fnv1a(fnv1a(fnv1a(h, b), qq->auto_calibration), qq->auto_eval);
    snprintf(qq->variant, sizeof qq->variant, "auto%g-%08x", qq->auto_max_drop, h);
  } else if (mode != MP_QMODE_AFFINE) {
    snprintf(qq->variant, sizeof qq->variant, "%s", qq->mode);
  } else {
    snprintf(qq->variant, sizeof qq->variant, "q%dg%d", qq->bits, qq->group_size);
  }
  if (qq->auto_max_drop < 0 && (qq->n_overrides || qq->recipe)) {
    size_t l = strlen(qq->variant);
    snprintf(qq->variant + l, sizeof qq->variant - l, "+mixed-%08x", h);
  }
}

/* upload: {repo: org/name (may contain "{name}"), private: bool}, or false / null = not published.
 * *set = 1 when the node decides (a model's own `upload: false` overrides the file's default). */
static void parse_upload(vctx *v, const mp_json *u, const char *model_name, const char **repo, int *priv, int *set) {
  *set = 0;
  if (!u) return;
  *set = 1;
  *repo = NULL;
  *priv = 0;
  if (u->type == MP_JSON_NULL || (u->type == MP_JSON_BOOL && !u->boolean)) return;
  if (u->type != MP_JSON_OBJECT) {
    verr(v, u, "\"upload\" must be a mapping {repo: org/name, private: true|false} (or false)");
    return;
  }
  static const char *const keys[] = {"repo", "private", NULL};
  unknown_keys(v, u, keys, "upload");
  const char *r = get_str(v, u, "repo", 1, "upload");
  const mp_json *pv = mp_json_get(u, "private");
  if (pv && pv->type != MP_JSON_BOOL) verr(v, pv, "upload.private must be true or false");
  *priv = pv && pv->type == MP_JSON_BOOL && pv->boolean;
  if (!r) return;
  mp_sb sb;
  mp_sb_init(&sb);
  for (const char *p = r; *p; p++) {
    if (!strncmp(p, "{name}", 6) && model_name) {
      mp_sb_puts(&sb, model_name);
      p += 5;
    } else {
      mp_sb_putc(&sb, *p);
    }
  }
  if (!sb.oom && model_name && !mp_hub_valid_repo_id(sb.buf))
    verr(v, mp_json_get(u, "repo"),
         "upload.repo \"%s\" is not a Hub repo id (org/name of letters, digits, '-', '_', '.'; "
         "\"{name}\" stands for the model's name)",
         sb.buf);
  *repo = sb.oom ? NULL : mp_arena_strdup(&v->c->arena, sb.buf);
  mp_sb_free(&sb);
}

static void parse_model(vctx *v, const mp_json *mj, mp_pl_model *m) {
  memset(m, 0, sizeof *m);
  m->where = (mp_pl_where){v->file, mj->line, mj->col};
  m->node = mj;
  if (mj->type != MP_JSON_OBJECT) {
    verr(v, mj, "each entry of \"models\" must be a mapping (name, hf_name, quantization, benchmarks)");
    return;
  }
  unknown_keys(v, mj, k_model_keys, "a model entry");
  m->name = get_str(v, mj, "name", 1, "model");
  m->hf_name = get_path(v, mj, "hf_name", 1, m->name ? m->name : "model");
  m->revision = get_str(v, mj, "revision", 0, "model");
  m->task = get_str(v, mj, "task", 0, "model");
  m->device = get_str(v, mj, "device", 0, "model");
  mp_device_spec dspec;
  if (m->device && mp_device_parse(m->device, &dspec)) {
    verr(v, mp_json_get(mj, "device"), "device \"%s\": use cpu, cuda or cuda:N", m->device);
    mp_err_clear();
  }
  if (m->name && !safe_name(m->name)) {
    char sug[160];
    suggest_name(m->name, sug, sizeof sug);
    verr(v, mp_json_get(mj, "name"),
         "model name \"%s\" cannot be used as a folder name (it must be one path component of letters, digits, "
         "'-', '_', '.'); use e.g. \"%s\"",
         m->name, sug);
  }
  m->quant = (mp_pl_quant){.bits = 8, .group_size = 64, .max_accuracy_drop = -1, .min_speedup = 1.2};
  const mp_json *q = mp_json_get(mj, "quantization");
  if (q && q->type == MP_JSON_OBJECT) {
    unknown_keys(v, q, k_quant_keys, "quantization");
    double bits = get_num(v, q, "bits", 8, "quantization");
    if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8 &&
        !(mp_json_get(q, "mode") && bits == 4))
      verr(v, mp_json_get(q, "bits"),
           "quantization.bits %g is not supported by MLX affine quantization (2, 3, 4, 5, 6, 8)", bits);
    m->quant.bits = (int)bits;
    double gs = get_num(v, q, "group_size", 64, "quantization");
    if (gs != 32 && gs != 64 && gs != 128)
      verr(v, mp_json_get(q, "group_size"), "quantization.group_size %g is not supported (32, 64, 128)", gs);
    m->quant.group_size = (int)gs;
    m->quant.dtype = get_str(v, q, "dtype", 0, "quantization");
    if (m->quant.dtype && strcmp(m->quant.dtype, "float16") && strcmp(m->quant.dtype, "bfloat16") &&
        strcmp(m->quant.dtype, "float32"))
      verr(v, mp_json_get(q, "dtype"), "quantization.dtype \"%s\" must be float16, bfloat16 or float32",
           m->quant.dtype);
    m->quant.target_size_mb = get_num(v, q, "target_size_mb", 0, "quantization");
    m->quant.max_accuracy_drop = get_num(v, q, "max_accuracy_drop", -1, "quantization");
    m->quant.min_speedup = get_num(v, q, "min_speedup", 1.2, "quantization");
    parse_quant_ext(v, q, &m->quant, mp_json_get(q, "bits") != NULL, mp_json_get(q, "group_size") != NULL);
    if (m->quant.target_size_mb < 0) verr(v, mp_json_get(q, "target_size_mb"), "target_size_mb must be >= 0");
    if (mp_json_get(q, "max_accuracy_drop") && (m->quant.max_accuracy_drop < 0 || m->quant.max_accuracy_drop > 1))
      verr(v, mp_json_get(q, "max_accuracy_drop"), "max_accuracy_drop must be in [0, 1] (a fraction: 0.02 = 2 points)");
  } else if (q && q->type != MP_JSON_NULL) {
    verr(v, q, "\"quantization\" must be a mapping");
  }
  if (!q || q->type != MP_JSON_OBJECT) {
    m->quant.auto_max_drop = -1;
    snprintf(m->quant.variant, sizeof m->quant.variant, "q%dg%d", m->quant.bits, m->quant.group_size);
  }
  m->benchmarks = get_str_list(v, mj, "benchmarks", &m->n_benchmarks, "model");
  int set = 0;
  parse_upload(v, mp_json_get(mj, "upload"), m->name, &m->upload_repo, &m->upload_private, &set);
  m->upload_set = set;
}

/* ---------------------------------------------------------------- datasets */

static const char *const k_dataset_keys[] = {
    "name",        "subset",   "splits",      "split",       "metrics",          "preprocessing",
    "path",        "format",   "task",        "text_fields", "label_field",      "label_names",
    "score_field", "template", "max_samples", "description", "candidate_labels", NULL};
static const char *const k_pre_keys[] = {"max_length", "truncation", "padding", NULL};

static void parse_dataset(vctx *v, const char *key, const mp_json *dj, mp_pl_dataset *d) {
  memset(d, 0, sizeof *d);
  d->key = key;
  d->where = (mp_pl_where){v->file, dj->line, dj->col};
  d->node = dj;
  if (dj->type != MP_JSON_OBJECT) {
    verr(v, dj, "dataset \"%s\" must be a mapping", key);
    return;
  }
  unknown_keys(v, dj, k_dataset_keys, "a dataset entry");
  d->name = get_str(v, dj, "name", 0, key);
  d->subset = get_str(v, dj, "subset", 0, key);
  d->splits = get_str_list(v, dj, "splits", &d->n_splits, key);
  if (!d->n_splits) d->splits = get_str_list(v, dj, "split", &d->n_splits, key);
  d->metrics = get_str_list(v, dj, "metrics", &d->n_metrics, key);
  const mp_json *pre = mp_json_get(dj, "preprocessing");
  if (pre && pre->type == MP_JSON_OBJECT) {
    unknown_keys(v, pre, k_pre_keys, "preprocessing");
    double ml = get_num(v, pre, "max_length", 0, "preprocessing");
    if (ml < 0 || ml > 1e6 || ml != floor(ml))
      verr(v, mp_json_get(pre, "max_length"), "max_length must be a positive integer");
    d->max_length = (long)ml;
    const mp_json *t = mp_json_get(pre, "truncation");
    if (t && t->type == MP_JSON_BOOL)
      d->truncation = t->boolean ? "longest_first" : "none";
    else
      d->truncation = get_str(v, pre, "truncation", 0, "preprocessing");
    const mp_json *p = mp_json_get(pre, "padding");
    if (p && p->type == MP_JSON_BOOL)
      d->padding = p->boolean ? "longest" : "none";
    else
      d->padding = get_str(v, pre, "padding", 0, "preprocessing");
  }
  d->path = get_str(v, dj, "path", 0, key);
  d->format = get_str(v, dj, "format", 0, key);
  d->task = get_str(v, dj, "task", 0, key);
  d->score_field = get_str(v, dj, "score_field", 0, key);
  d->label_field = get_str(v, dj, "label_field", 0, key);
  d->template_ = get_str(v, dj, "template", 0, key);
  size_t nt = 0;
  const char **tf = get_str_list(v, dj, "text_fields", &nt, key);
  if (nt > 2) verr(v, mp_json_get(dj, "text_fields"), "text_fields takes one or two field names");
  if (nt >= 1) d->text_a = tf[0];
  if (nt >= 2) d->text_b = tf[1];
  d->label_names = get_str_list(v, dj, "label_names", &d->n_label_names, key);
  if (!d->n_label_names) d->label_names = get_str_list(v, dj, "candidate_labels", &d->n_label_names, key);
  double ms = get_num(v, dj, "max_samples", 0, key);
  if (ms < 0 || ms != floor(ms)) verr(v, mp_json_get(dj, "max_samples"), "max_samples must be a non-negative integer");
  d->max_samples = (long)ms;
  if (d->template_ && !strstr(d->template_, "{}"))
    verr(v, mp_json_get(dj, "template"), "template must contain {} where the label goes");
  if (!safe_name(key))
    verr(v, dj, "dataset key \"%s\" cannot be used in file names (letters, digits, '-', '_', '.')", key);
}

/* Two dataset definitions describe the same evaluation when everything but the key, the
 * description and the metrics list agree. */
static int same_data(const mp_pl_dataset *a, const mp_pl_dataset *b) {
  static const char *const ignore[] = {"description", "metrics", NULL};
  const mp_json *x = a->node, *y = b->node;
  size_t nx = 0, ny = 0;
  for (size_t i = 0; i < x->len; i++) {
    int ig = 0;
    for (const char *const *k = ignore; *k; k++)
      ig |= !strcmp(x->keys[i], *k);
    if (ig) continue;
    nx++;
    if (!mp_json_equal(x->items[i], mp_json_get(y, x->keys[i]))) return 0;
  }
  for (size_t i = 0; i < y->len; i++) {
    int ig = 0;
    for (const char *const *k = ignore; *k; k++)
      ig |= !strcmp(y->keys[i], *k);
    if (!ig) ny++;
  }
  return nx == ny;
}

static int same_source(const mp_pl_model *a, const mp_pl_model *b) {
  const char *ra = a->revision ? a->revision : "main", *rb = b->revision ? b->revision : "main";
  const char *da = a->quant.dtype ? a->quant.dtype : "", *db = b->quant.dtype ? b->quant.dtype : "";
  return a->hf_name && b->hf_name && !strcmp(a->hf_name, b->hf_name) && !strcmp(ra, rb) &&
         a->quant.bits == b->quant.bits && a->quant.group_size == b->quant.group_size && !strcmp(da, db) &&
         !strcmp(a->quant.variant, b->quant.variant);
}

/* `gpu_memory_mb:` at the top level or under `defaults:` (not both): a positive number of MB. */
static void parse_gpu_memory(vctx *v, const mp_json *root) {
  const mp_json *top = mp_json_get(root, "gpu_memory_mb");
  const mp_json *defs = mp_json_get(root, "defaults");
  const mp_json *dj = defs && defs->type == MP_JSON_OBJECT ? mp_json_get(defs, "gpu_memory_mb") : NULL;
  if (top && dj) {
    verr(v, dj, "gpu_memory_mb is set both at the top level and under defaults: keep one");
    return;
  }
  const mp_json *j = top ? top : dj;
  if (!j || j->type == MP_JSON_NULL) return;
  const char *name = top ? "gpu_memory_mb" : "defaults.gpu_memory_mb";
  if (j->type != MP_JSON_NUMBER || !isfinite(j->num)) {
    verr(v, j, "%s must be a number of megabytes (the GPU memory budget per device, e.g. 70000), not %s%s%s", name,
         j->type == MP_JSON_STRING ? "\"" : "a ", j->type == MP_JSON_STRING ? j->str : mp_json_type_name(j->type),
         j->type == MP_JSON_STRING ? "\"" : "");
    return;
  }
  if (!(j->num > 0) || j->num > 1e9) {
    verr(v, j, "%s must be a positive number of megabytes (the GPU memory budget per device), not %g", name, j->num);
    return;
  }
  mp_pl_config *c = v->c;
  if (c->gpu_memory_mb > 0 && c->gpu_memory_mb != j->num) {
    verr(v, j, "%s: %g differs from %g set in %s:%u; the files must agree", name, j->num, c->gpu_memory_mb,
         c->gpu_memory_where.file, c->gpu_memory_where.line);
    return;
  }
  c->gpu_memory_mb = j->num;
  c->gpu_memory_where = (mp_pl_where){v->file, j->line, j->col};
}

/* ---------------------------------------------------------------- load */

mp_status mp_pl_config_load(const char *const *patterns, size_t n, mp_pl_config **out) {
  *out = NULL;
  mp_pl_config *c = calloc(1, sizeof *c);
  if (!c) return mp_err(MP_ERR_NOMEM, "out of memory");
  mp_arena_init(&c->arena, 1 << 16);
  vctx v = {.c = c};
  mp_sb_init(&v.errs);
  mp_status st = MP_OK;
  /* expand globs (sorted, de-duplicated) */
  for (size_t i = 0; i < n && !st; i++) {
    glob_t g;
    int r = glob(patterns[i], GLOB_NOCHECK | GLOB_BRACE | GLOB_TILDE, NULL, &g);
    if (r != 0) {
      st = mp_err(MP_ERR_INVALID_ARG, "config pattern '%s' could not be expanded", patterns[i]);
      break;
    }
    size_t matched = 0;
    for (size_t k = 0; k < g.gl_pathc; k++) {
      const char *p = g.gl_pathv[k];
      if (!mp_is_file(p)) continue;
      matched++;
      int dup = 0;
      for (size_t f = 0; f < c->n_files; f++)
        dup |= !strcmp(c->files[f], p);
      if (dup) continue;
      char **nf = realloc(c->files, (c->n_files + 1) * sizeof *nf);
      if (!nf) {
        st = mp_err(MP_ERR_NOMEM, "out of memory");
        break;
      }
      c->files = nf;
      c->files[c->n_files++] = strdup(p);
    }
    globfree(&g);
    if (!st && matched == 0)
      st = mp_err(MP_ERR_NOT_FOUND, "config '%s': no such file (or the pattern matches no file)", patterns[i]);
  }
  if (!st && c->n_files == 0) st = mp_err(MP_ERR_INVALID_ARG, "no configuration file given");
  /* parse + validate each file */
  size_t cap_m = 0, cap_d = 0;
  for (size_t f = 0; !st && f < c->n_files; f++) {
    mp_json *root;
    st = mp_yaml_parse_file(c->files[f], &c->arena, &root);
    if (st) break;
    v.file = c->files[f];
    if (root->type == MP_JSON_NULL) {
      warn(c, "%s: empty configuration file", v.file);
      continue;
    }
    if (root->type != MP_JSON_OBJECT) {
      verr(&v, root, "the top level must be a mapping with \"models\" and/or \"datasets\"");
      continue;
    }
    static const char *const top[] = {"models", "datasets", "defaults", "version", "upload", "gpu_memory_mb", NULL};
    unknown_keys(&v, root, top, "the top level");
    parse_gpu_memory(&v, root);
    const mp_json *ms = mp_json_get(root, "models");
    /* the file's default upload (top-level `upload:` or `defaults: {upload: ...}`) */
    const mp_json *dflt_up = mp_json_get(root, "upload");
    if (!dflt_up) dflt_up = mp_json_get(mp_json_get(root, "defaults"), "upload");
    size_t first_model = c->n_models;
    if (ms && ms->type == MP_JSON_ARRAY) {
      for (size_t i = 0; i < ms->len; i++) {
        if (c->n_models == cap_m) {
          cap_m = cap_m ? cap_m * 2 : 16;
          mp_pl_model *nm = realloc(c->models, cap_m * sizeof *nm);
          if (!nm) return mp_err(MP_ERR_NOMEM, "out of memory");
          c->models = nm;
        }
        parse_model(&v, ms->items[i], &c->models[c->n_models++]);
      }
    } else if (ms && ms->type != MP_JSON_NULL) {
      verr(&v, ms, "\"models\" must be a list");
    }
    if (dflt_up) {
      const char *r0;
      int p0, s0;
      parse_upload(&v, dflt_up, NULL, &r0, &p0, &s0); /* shape errors once */
      for (size_t i = first_model; i < c->n_models; i++) {
        mp_pl_model *m = &c->models[i];
        if (m->upload_set) continue;
        parse_upload(&v, dflt_up, m->name, &m->upload_repo, &m->upload_private, &s0);
      }
    }
    const mp_json *ds = mp_json_get(root, "datasets");
    if (ds && ds->type == MP_JSON_OBJECT) {
      for (size_t i = 0; i < ds->len; i++) {
        if (c->n_datasets == cap_d) {
          cap_d = cap_d ? cap_d * 2 : 16;
          mp_pl_dataset *nd = realloc(c->datasets, cap_d * sizeof *nd);
          if (!nd) return mp_err(MP_ERR_NOMEM, "out of memory");
          c->datasets = nd;
        }
        parse_dataset(&v, ds->keys[i], ds->items[i], &c->datasets[c->n_datasets++]);
      }
    } else if (ds && ds->type != MP_JSON_NULL) {
      verr(&v, ds, "\"datasets\" must be a mapping of key -> definition");
    }
  }
  if (!st) {
    /* duplicate datasets: same key in two places -> error unless identical */
    for (size_t i = 0; i < c->n_datasets; i++) {
      mp_pl_dataset *d = &c->datasets[i];
      for (size_t j = 0; j < i; j++) {
        mp_pl_dataset *e = &c->datasets[j];
        if (!e->key || strcmp(e->key, d->key)) continue;
        if (mp_json_equal(e->node, d->node)) {
          warn(c, "%s:%u: dataset \"%s\" is defined again identically (first at %s:%u); keeping one", d->where.file,
               d->where.line, d->key, e->where.file, e->where.line);
          d->key = NULL; /* dropped below */
        } else {
          v.file = d->where.file;
          verr(&v, d->node, "dataset \"%s\" is defined twice with different settings (also at %s:%u)", d->key,
               e->where.file, e->where.line);
        }
        break;
      }
    }
    size_t w = 0;
    for (size_t i = 0; i < c->n_datasets; i++)
      if (c->datasets[i].key) c->datasets[w++] = c->datasets[i];
    c->n_datasets = w;
    /* two keys, same data -> evaluate once */
    for (size_t i = 0; i < c->n_datasets; i++)
      for (size_t j = 0; j < i; j++)
        if (!c->datasets[j].same_as && same_data(&c->datasets[j], &c->datasets[i])) {
          c->datasets[i].same_as = c->datasets[j].key;
          warn(c,
               "%s:%u: dataset \"%s\" describes the same data as \"%s\" (%s:%u): evaluated once, reported under both",
               c->datasets[i].where.file, c->datasets[i].where.line, c->datasets[i].key, c->datasets[j].key,
               c->datasets[j].where.file, c->datasets[j].where.line);
          break;
        }
    /* duplicate model names */
    for (size_t i = 0; i < c->n_models; i++) {
      mp_pl_model *m = &c->models[i];
      if (!m->name) continue;
      for (size_t j = 0; j < i; j++) {
        mp_pl_model *e = &c->models[j];
        if (!e->name || strcmp(e->name, m->name)) continue;
        if (mp_json_equal(e->node, m->node)) {
          warn(c, "%s:%u: model \"%s\" is defined again identically (first at %s:%u); keeping one", m->where.file,
               m->where.line, m->name, e->where.file, e->where.line);
          m->name = NULL;
        } else {
          v.file = m->where.file;
          verr(&v, m->node, "model \"%s\" is defined twice with different settings (also at %s:%u)", m->name,
               e->where.file, e->where.line);
        }
        break;
      }
    }
    w = 0;
    for (size_t i = 0; i < c->n_models; i++)
      if (c->models[i].name) c->models[w++] = c->models[i];
    c->n_models = w;
    /* benchmarks must name defined datasets */
    for (size_t i = 0; i < c->n_models; i++) {
      mp_pl_model *m = &c->models[i];
      for (size_t b = 0; b < m->n_benchmarks; b++)
        if (!mp_pl_config_dataset(c, m->benchmarks[b])) {
          const char *best = NULL;
          size_t bd = 99;
          for (size_t k = 0; k < c->n_datasets; k++) {
            size_t d = mp_str_edit_distance(m->benchmarks[b], c->datasets[k].key);
            if (d < bd) bd = d, best = c->datasets[k].key;
          }
          v.file = m->where.file;
          const mp_json *bn = mp_json_get(m->node, "benchmarks");
          if (best && bd <= 3)
            verr(&v, bn, "model \"%s\": benchmark \"%s\" is not a defined dataset (did you mean \"%s\"?)",
                 m->name ? m->name : "?", m->benchmarks[b], best);
          else
            verr(&v, bn, "model \"%s\": benchmark \"%s\" is not a defined dataset", m->name ? m->name : "?",
                 m->benchmarks[b]);
        }
    }
    /* same source + revision + quantization under two names -> convert once */
    for (size_t i = 0; i < c->n_models; i++)
      for (size_t j = 0; j < i; j++)
        if (same_source(&c->models[j], &c->models[i])) {
          mp_pl_model *e = &c->models[j];
          const char **na = mp_arena_alloc(&c->arena, (e->n_aliases + 1) * sizeof *na);
          if (!na) break;
          if (e->n_aliases) memcpy(na, e->aliases, e->n_aliases * sizeof *na);
          na[e->n_aliases++] = c->models[i].name;
          e->aliases = na;
          warn(c,
               "%s:%u: model \"%s\" converts the same source and quantization as \"%s\" (%s:%u): converted once, "
               "reported under both",
               c->models[i].where.file, c->models[i].where.line, c->models[i].name, e->name, e->where.file,
               e->where.line);
          break;
        }
  }
  if (!st && v.n_errs) {
    st = mp_err(MP_ERR_INVALID_ARG, "%d problem%s in the configuration:\n%s", v.n_errs, v.n_errs > 1 ? "s" : "",
                v.errs.buf);
  }
  mp_sb_free(&v.errs);
  if (st) {
    mp_pl_config_free(c);
    return st;
  }
  *out = c;
  return MP_OK;
}

void mp_pl_config_free(mp_pl_config *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n_files; i++)
    free(c->files[i]);
  for (size_t i = 0; i < c->n_warnings; i++)
    free(c->warnings[i]);
  free(c->files);
  free(c->warnings);
  free(c->models);
  free(c->datasets);
  mp_arena_free(&c->arena);
  free(c);
}

const mp_pl_dataset *mp_pl_config_dataset(const mp_pl_config *c, const char *key) {
  for (size_t i = 0; i < c->n_datasets; i++)
    if (c->datasets[i].key && !strcmp(c->datasets[i].key, key)) return &c->datasets[i];
  return NULL;
}

const mp_pl_model *mp_pl_config_model(const mp_pl_config *c, const char *name) {
  for (size_t i = 0; i < c->n_models; i++)
    if (c->models[i].name && !strcmp(c->models[i].name, name)) return &c->models[i];
  return NULL;
}
