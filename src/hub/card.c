/* Model card writer and updater (README.md of an MLX folder); see card.h and docs/card.md. */
#include "hub/card.h"

#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/yaml.h"

#define EVALS_FILE "mlxport_evaluations.json"

/* ------------------------------------------------------------------ YAML output (JSON: mp_json_write, core/json.h) */

/* A YAML scalar: plain when it is a simple token, else a double-quoted (JSON-escaped) string,
 * which YAML reads the same way. */
static void yq(mp_sb *sb, const char *s) {
  int plain = *s && (isalnum((unsigned char)s[0]));
  for (const char *p = s; plain && *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' || *p == '/')) plain = 0;
  /* words YAML would read as booleans / null / numbers */
  static const char *const special[] = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"};
  for (size_t i = 0; plain && i < sizeof special / sizeof *special; i++)
    if (!strcasecmp(s, special[i])) plain = 0;
  if (plain) {
    char *end;
    strtod(s, &end);
    if (!*end) plain = 0;
  }
  if (plain)
    mp_sb_puts(sb, s);
  else
    mp_sb_json_str(sb, s, strlen(s));
}

static int simple_token(const char *s) {
  if (!s || !*s || strlen(s) > 100) return 0;
  for (const char *p = s; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_')) return 0;
  return 1;
}

/* ------------------------------------------------------------------ the card convert writes */

void mp_card_source_license(const char *readme_path, mp_arena *arena, const char **license, const char **name,
                            const char **link) {
  *license = *name = *link = NULL;
  char *text = NULL;
  size_t n = 0;
  if (mp_read_file(readme_path, &text, &n, (size_t)4 << 20) != MP_OK) {
    mp_err_clear();
    return;
  }
  if (n >= 4 && !strncmp(text, "---", 3) && (text[3] == '\n' || text[3] == '\r')) {
    char *end = strstr(text + 3, "\n---");
    if (end) {
      mp_json *fm = NULL;
      if (mp_yaml_parse(text + 4, (size_t)(end - text - 3), readme_path, arena, &fm) == MP_OK && fm &&
          fm->type == MP_JSON_OBJECT) {
        const char *l = mp_json_get_str(fm, "license", NULL);
        if (simple_token(l)) *license = l;
        const char *ln = mp_json_get_str(fm, "license_name", NULL), *ll = mp_json_get_str(fm, "license_link", NULL);
        if (simple_token(ln)) *name = ln;
        if (ll && strlen(ll) < 500 && !strpbrk(ll, "\n\r")) *link = ll;
      }
      mp_err_clear();
    }
  }
  free(text);
}

static void eval_placeholder(mp_sb *sb, const char *title, const char *source) {
  mp_sb_puts(sb, MP_CARD_EVAL_START "\n## Evaluation\n\nNot evaluated yet. `mlxport eval --model ");
  mp_sb_puts(sb, title);
  mp_sb_puts(sb, " --baseline ");
  mp_sb_puts(sb, source);
  mp_sb_puts(sb, " --dataset KEY` compares it with the original and records the result here (and in the metadata "
                 "above).\n" MP_CARD_EVAL_END "\n");
}

void mp_card_render(mp_sb *sb, const mp_card_info *ci) {
  const char *tag = ci->pipeline_tag ? ci->pipeline_tag : "feature-extraction";
  mp_sb_puts(sb, "---\nlibrary_name: mlx\n");
  if (ci->license) {
    mp_sb_puts(sb, "license: ");
    yq(sb, ci->license);
    mp_sb_putc(sb, '\n');
    if (!strcmp(ci->license, "other") && ci->license_name) {
      mp_sb_puts(sb, "license_name: ");
      yq(sb, ci->license_name);
      mp_sb_putc(sb, '\n');
    }
    if (!strcmp(ci->license, "other") && ci->license_link) {
      mp_sb_puts(sb, "license_link: ");
      yq(sb, ci->license_link);
      mp_sb_putc(sb, '\n');
    }
  }
  if (ci->base_model) {
    mp_sb_puts(sb, "base_model: ");
    yq(sb, ci->base_model);
    mp_sb_putc(sb, '\n');
    if (ci->quantized) mp_sb_puts(sb, "base_model_relation: quantized\n");
  }
  mp_sb_printf(sb, "pipeline_tag: %s\ntags:\n- mlx\n- mlxport\n- %s\n", tag, tag);
  if (ci->quantized && ci->recipe)
    mp_sb_puts(sb, "- mixed-precision\n- quantized\n");
  else if (ci->quantized)
    mp_sb_printf(sb, "- %d-bit\n- quantized\n", ci->bits);
  if (ci->sentence_transformers && strcmp(tag, "sentence-transformers")) mp_sb_puts(sb, "- sentence-transformers\n");
  mp_sb_printf(sb, "---\n\n# %s\n\n", ci->title);
  if (ci->base_model)
    mp_sb_printf(sb, "[`%s`](https://huggingface.co/%s) converted to [MLX](https://github.com/ml-explore/mlx) format",
                 ci->base_model, ci->base_model);
  else
    mp_sb_printf(sb, "`%s` converted to [MLX](https://github.com/ml-explore/mlx) format", ci->source);
  if (ci->quantized && ci->recipe)
    mp_sb_printf(sb, " and quantized with a per-layer mixed-precision recipe%s (default %d bits)",
                 ci->recipe_searched ? " found by `--q-auto`" : "", ci->bits);
  else if (ci->quantized)
    mp_sb_printf(sb, " and quantized to %d bits", ci->bits);
  mp_sb_printf(sb, " by mlxport %s. The evaluation below compares it with the original.\n\n", MP_VERSION_STRING);
  mp_sb_puts(sb, "## Conversion\n\n");
  mp_sb_printf(sb, "- Source: `%s`", ci->source);
  if (ci->source_commit) mp_sb_printf(sb, " at commit `%s`", ci->source_commit);
  mp_sb_puts(sb, "\n");
  if (ci->quantized) {
    mp_sb_printf(sb,
                 "- Quantization: %sMLX %s (`mode: %s`), %d bits, group size %d, on %zu Linear/Embedding weights; "
                 "%s elsewhere.",
                 ci->recipe ? "by default " : "", ci->mode ? ci->mode : "affine", ci->mode ? ci->mode : "affine",
                 ci->bits, ci->group_size, ci->n_quantized, ci->dtype);
    if (ci->n_float_layers)
      mp_sb_printf(sb, " %zu layer(s) kept in float (listed as `false` in `config.json` \"quantization\").",
                   ci->n_float_layers);
    mp_sb_puts(sb, "\n- Packed weights, scales and biases are bit-identical to `mx.quantize` (MLX CPU backend).\n");
    if (ci->recipe)
      mp_sb_puts(sb, "- Mixed precision: some layers differ from the default (per-layer entries in `config.json` "
                     "\"quantization\"); the recipe is below and in `conversion_metadata.json` (`mlxport convert "
                     "--q-recipe-file conversion_metadata.json` re-applies it).\n");
  } else {
    mp_sb_printf(sb, "- Weights: %s (not quantized).\n", ci->dtype);
  }
  mp_sb_printf(sb, "- Size: %.1f MB of weights (source: %.1f MB, %.2fx smaller).\n", ci->output_mb, ci->source_mb,
               ci->output_mb > 0 ? ci->source_mb / ci->output_mb : 0.0);
  mp_sb_printf(sb, "- Converter: mlxport %s", MP_VERSION_STRING);
  if (ci->command) {
    mp_sb_puts(sb, ", command:\n\n  ```bash\n  ");
    mp_sb_puts(sb, ci->command);
    mp_sb_puts(sb, "\n  ```\n");
  } else {
    mp_sb_puts(sb, ".\n");
  }
  mp_sb_puts(sb, "- Per-tensor details and quantization errors: `conversion_metadata.json`.\n\n");
  if (ci->quantized && ci->recipe) {
    mp_sb_puts(sb, "## Quantization recipe\n\n```json\n");
    mp_sb_puts(sb, ci->recipe);
    mp_sb_puts(sb, "\n```\n\n");
    if (ci->recipe_searched)
      mp_sb_puts(sb, "Found by `mlxport convert --q-auto`: the calibration and held-out metric drops are under "
                     "`recipe.search` in `conversion_metadata.json`.\n\n");
  }
  eval_placeholder(sb, ci->title, ci->source);
  mp_sb_puts(sb, "\n## Use with MLX\n\n```bash\npip install mlx\n```\n\n```python\nimport json\nimport mlx.core as "
                 "mx\nimport mlx.nn as nn\n\nweights = mx.load(\"model.safetensors\")\nconfig = "
                 "json.load(open(\"config.json\"))\nmodel = ...  # an MLX module tree with the Hugging Face parameter "
                 "names (mlx-embeddings / mlx-lm style)\n");
  if (ci->quantized)
    mp_sb_puts(sb, "q = config[\"quantization\"]\nnn.quantize(\n    model,\n    group_size=q[\"group_size\"],\n"
                   "    bits=q[\"bits\"],\n    mode=q.get(\"mode\", \"affine\"),\n"
                   "    class_predicate=lambda p, m: q[p] if p in q else hasattr(m, \"to_quantized\") and "
                   "f\"{p}.scales\" in weights,\n)\n");
  mp_sb_puts(sb, "model.load_weights(list(weights.items()), strict=True)\n```\n\n");
  if (ci->sentence_transformers || !strcmp(tag, "sentence-similarity") || !strcmp(tag, "feature-extraction"))
    mp_sb_puts(sb,
               "Sentence embeddings as sentence-transformers computes them (the pooling of `1_Pooling/config.json`; "
               "mean pooling shown, then L2 normalisation when the source has a `Normalize` module):\n\n```python\n"
               "hidden = model(input_ids, attention_mask=attention_mask)  # [batch, tokens, hidden]\n"
               "mask = attention_mask[..., None].astype(hidden.dtype)\n"
               "emb = (hidden * mask).sum(axis=1) / mx.maximum(mask.sum(axis=1), 1e-9)\n"
               "emb = emb / mx.linalg.norm(emb, axis=-1, keepdims=True)\n```\n\n");
  mp_sb_puts(sb, "## Use with mlxport\n\n```bash\nmlxport inspect ");
  mp_sb_puts(sb, ci->title);
  if (!strcmp(tag, "text-classification") || !strcmp(tag, "zero-shot-classification")) {
    mp_sb_puts(sb, "\necho 'A soccer game with multiple males playing.' | mlxport classify --model ");
    mp_sb_puts(sb, ci->title);
  } else {
    mp_sb_puts(sb, "\necho 'A man is playing a guitar.' | mlxport embed --model ");
    mp_sb_puts(sb, ci->title);
  }
  mp_sb_puts(sb, "\nmlxport verify-weights ");
  mp_sb_puts(sb, ci->source);
  mp_sb_putc(sb, ' ');
  mp_sb_puts(sb, ci->title);
  mp_sb_puts(sb, "\n```\n");
}

/* ------------------------------------------------------------------ evaluation rendering */

static const char *task_type(const char *t) {
  if (!t) return "feature-extraction";
  if (!strcmp(t, "semantic-similarity") || !strcmp(t, "sentence-similarity")) return "sentence-similarity";
  if (!strcmp(t, "zero-shot-classification")) return "zero-shot-classification";
  if (!strcmp(t, "nli") || strstr(t, "classification")) return "text-classification";
  return "feature-extraction";
}

static int num(const mp_json *o, const char *k, double *v) {
  const mp_json *x = mp_json_get(o, k);
  if (!x || x->type != MP_JSON_NUMBER || !isfinite(x->num)) return 0;
  *v = x->num;
  return 1;
}

static void fmt_metric(mp_sb *sb, const mp_json *res, const char *metric) {
  double v;
  if (!res || !num(res, metric, &v)) {
    mp_sb_puts(sb, "–");
    return;
  }
  mp_sb_printf(sb, "%.4f", v);
  char k[80];
  snprintf(k, sizeof k, "%s_ci95", metric);
  const mp_json *ci = mp_json_get(res, k);
  if (ci && ci->type == MP_JSON_ARRAY && ci->len == 2 && ci->items[0]->type == MP_JSON_NUMBER &&
      ci->items[1]->type == MP_JSON_NUMBER)
    mp_sb_printf(sb, " [%.4f, %.4f]", ci->items[0]->num, ci->items[1]->num);
}

static void md_cell(mp_sb *sb, const char *s) {
  for (const char *p = s ? s : ""; *p; p++) {
    if (*p == '|')
      mp_sb_puts(sb, "\\|");
    else if (*p == '\n' || *p == '\r')
      mp_sb_putc(sb, ' ');
    else
      mp_sb_putc(sb, *p);
  }
}

static void render_section(mp_sb *sb, const mp_json *evals) {
  const mp_json *list = mp_json_get(evals, "evaluations");
  mp_sb_puts(sb, MP_CARD_EVAL_START "\n## Evaluation\n\n");
  const mp_json *first = list && list->len ? mp_json_get(list->items[0], "comparison") : NULL;
  const mp_json *fc = first ? mp_json_get(first, "converted") : NULL;
  mp_sb_printf(sb, "Compared with the original model by `mlxport eval` (mlxport %s)", MP_VERSION_STRING);
  if (fc) {
    double th;
    mp_sb_printf(sb, " on %s (%s", mp_json_get_str(fc, "cpu", "?"), mp_json_get_str(fc, "isa", "?"));
    if (num(fc, "threads", &th)) mp_sb_printf(sb, ", %.0f threads", th);
    mp_sb_printf(sb,
                 "). Metrics come from the `%s` compute mode, speed from the `%s` mode; brackets give the 95%% "
                 "interval.",
                 mp_json_get_str(fc, "metric_compute", "?"), mp_json_get_str(fc, "perf_compute", "?"));
  }
  mp_sb_puts(sb, "\n\n| dataset | examples | metric | original | converted | drop | agreement (similarity: largest "
                 "cosine difference) | weights MB (orig / conv) | "
                 "queries/min (orig / conv) | gates |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
  int all = 1, any = 0;
  for (size_t i = 0; list && i < list->len; i++) {
    const mp_json *cmp = mp_json_get(list->items[i], "comparison");
    if (!cmp) continue;
    any = 1;
    const mp_json *cv = mp_json_get(cmp, "converted"), *og = mp_json_get(cmp, "original"),
                  *cm = mp_json_get(cmp, "comparison"), *g = mp_json_get(cmp, "quality_gates");
    const char *metric = mp_json_get_str(cmp, "main_metric", "accuracy");
    int passed = mp_json_get_bool(g, "passed", 0);
    all &= passed;
    double v, w;
    mp_sb_puts(sb, "| ");
    md_cell(sb, mp_json_get_str(cmp, "dataset", "?"));
    mp_sb_printf(sb, " | %.0f | ", num(cv, "n_examples", &v) ? v : 0.0);
    md_cell(sb, metric);
    mp_sb_puts(sb, " | ");
    fmt_metric(sb, og, metric);
    mp_sb_puts(sb, " | ");
    fmt_metric(sb, cv, metric);
    mp_sb_puts(sb, " | ");
    if (num(cm, "accuracy_drop", &v))
      mp_sb_printf(sb, "%+.4f", v);
    else
      mp_sb_puts(sb, "–");
    mp_sb_puts(sb, " | ");
    if (num(cm, "agreement", &v))
      mp_sb_printf(sb, "%.4f", v);
    else if (num(cm, "max_abs_logit_diff", &v))
      mp_sb_printf(sb, "max \\|Δcos\\| %.3g", v); /* similarity */
    else
      mp_sb_puts(sb, "–");
    mp_sb_puts(sb, " | ");
    if (num(og, "size_mb", &v))
      mp_sb_printf(sb, "%.1f / ", v);
    else
      mp_sb_puts(sb, "– / ");
    if (num(cv, "size_mb", &w)) mp_sb_printf(sb, "%.1f", w);
    mp_sb_puts(sb, " | ");
    if (num(og, "qpm", &v))
      mp_sb_printf(sb, "%.0f / ", v);
    else
      mp_sb_puts(sb, "– / ");
    if (num(cv, "qpm", &w)) mp_sb_printf(sb, "%.0f", w);
    if (num(cm, "speedup", &v)) mp_sb_printf(sb, " (%.2fx)", v);
    mp_sb_printf(sb, " | %s |\n", passed ? "pass" : "**FAIL**");
  }
  if (!any) mp_sb_puts(sb, "| (none recorded) | | | | | | | | | |\n");
  mp_sb_puts(sb, "\n### Quality gates\n\n");
  for (size_t i = 0; list && i < list->len; i++) {
    const mp_json *cmp = mp_json_get(list->items[i], "comparison");
    const mp_json *gs = mp_json_get(mp_json_get(cmp, "quality_gates"), "gates");
    for (size_t k = 0; gs && gs->type == MP_JSON_ARRAY && k < gs->len; k++) {
      const mp_json *gt = gs->items[k];
      double v = 0;
      num(gt, "value", &v);
      mp_sb_puts(sb, "- ");
      md_cell(sb, mp_json_get_str(cmp, "dataset", "?"));
      mp_sb_puts(sb, ": ");
      md_cell(sb, mp_json_get_str(gt, "name", "?"));
      mp_sb_printf(sb, " = %.4f (rule: ", v);
      md_cell(sb, mp_json_get_str(gt, "rule", "?"));
      mp_sb_printf(sb, "): %s\n", mp_json_get_bool(gt, "passed", 0) ? "pass" : "**FAIL**");
    }
  }
  if (any) mp_sb_puts(sb, all ? "\n**Every quality gate passed.**\n" : "\n**A quality gate failed** (see above).\n");
  const char *note = mp_json_get_str(evals, "note", NULL);
  if (note) {
    mp_sb_puts(sb, "\n> **Note:** ");
    md_cell(sb, note);
    mp_sb_puts(sb, "\n");
  }
  int cmd_header = 0;
  for (size_t i = 0; list && i < list->len; i++) {
    const char *c = mp_json_get_str(list->items[i], "command", NULL);
    if (!c) continue;
    if (!cmd_header) mp_sb_puts(sb, "\nCommands:\n\n```bash\n"), cmd_header = 1;
    for (const char *p = c; *p; p++)
      mp_sb_putc(sb, *p == '\n' ? ' ' : *p);
    mp_sb_putc(sb, '\n');
  }
  if (cmd_header) mp_sb_puts(sb, "```\n");
  mp_sb_puts(sb, MP_CARD_EVAL_END "\n");
}

static void render_model_index(mp_sb *sb, const mp_json *evals, const char *title) {
  const mp_json *list = mp_json_get(evals, "evaluations");
  size_t n = 0;
  for (size_t i = 0; list && i < list->len; i++)
    n += mp_json_get(list->items[i], "comparison") != NULL;
  if (!n) return;
  mp_sb_puts(sb, "model-index:\n- name: ");
  yq(sb, title);
  mp_sb_puts(sb, "\n  results:\n");
  static const char *const metrics[] = {"accuracy", "f1", "pearson", "spearman"};
  for (size_t i = 0; i < list->len; i++) {
    const mp_json *cmp = mp_json_get(list->items[i], "comparison");
    const mp_json *cv = mp_json_get(cmp, "converted");
    if (!cmp || !cv) continue;
    const char *ds = mp_json_get_str(cmp, "dataset", "unknown");
    const char *task = mp_json_get_str(cv, "task", NULL);
    mp_sb_printf(sb, "  - task:\n      type: %s\n    dataset:\n      name: ", task_type(task));
    yq(sb, ds);
    mp_sb_puts(sb, "\n      type: ");
    yq(sb, ds);
    mp_sb_puts(sb, "\n    metrics:\n");
    int any = 0;
    for (size_t k = 0; k < sizeof metrics / sizeof *metrics; k++) {
      double v;
      if (!num(cv, metrics[k], &v)) continue;
      /* a similarity task reports its correlation also as "accuracy": not repeated */
      if (!strcmp(metrics[k], "accuracy") && task_type(task)[0] == 's' && mp_json_get(cv, "spearman")) continue;
      mp_sb_printf(sb, "    - type: %s\n      value: %.6g\n      name: %s (converted, mlxport)\n", metrics[k], v,
                   metrics[k]);
      any = 1;
    }
    if (!any) mp_sb_puts(sb, "    - type: accuracy\n      value: 0\n      name: no metric recorded\n");
  }
}

mp_status mp_card_rebuild(const char *card, size_t n, const mp_json *evals, const char *title, mp_sb *out) {
  if (n < 4 || strncmp(card, "---\n", 4) != 0) return mp_err(MP_ERR_FORMAT, "README.md has no YAML front matter");
  const char *fm_end = strstr(card + 3, "\n---\n");
  if (!fm_end) return mp_err(MP_ERR_FORMAT, "README.md: the front matter is not closed by a '---' line");
  const char *s = strstr(fm_end, MP_CARD_EVAL_START), *e = s ? strstr(s, MP_CARD_EVAL_END) : NULL;
  if (!s || !e) return mp_err(MP_ERR_FORMAT, "README.md has no mlxport evaluation markers");
  /* front matter without its model-index block (top-level key plus indented / "- " lines) */
  const char *p = card + 4, *end = fm_end + 1;
  int skipping = 0;
  mp_sb_puts(out, "---\n");
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);
    if (!strncmp(p, "model-index:", 12))
      skipping = 1;
    else if (skipping && !(p[0] == ' ' || p[0] == '-' || p[0] == '\n'))
      skipping = 0;
    if (!skipping) mp_sb_append(out, p, len);
    p += len;
  }
  render_model_index(out, evals, title);
  mp_sb_puts(out, "---\n");
  const char *body = fm_end + 5;
  mp_sb_append(out, body, (size_t)(s - body));
  render_section(out, evals);
  const char *after = e + strlen(MP_CARD_EVAL_END);
  if (*after == '\n') after++;
  mp_sb_append(out, after, strlen(after));
  return out->oom ? mp_err(MP_ERR_NOMEM, "out of memory") : MP_OK;
}

/* ------------------------------------------------------------------ updates in a folder */

static int lock_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0)
    while (flock(fd, LOCK_EX) != 0) {
    }
  return fd;
}

/* Reads the recorded evaluations, lets `edit` write the new document, stores it, rebuilds the card. */
typedef void (*edit_fn)(mp_sb *out, const mp_json *old, const void *arg);

static mp_status update(const char *dir, edit_fn edit, const void *arg, int *updated) {
  if (updated) *updated = 0;
  char *readme = mp_path_join(dir, "README.md"), *ev = mp_path_join(dir, EVALS_FILE);
  if (!readme || !ev) {
    free(readme), free(ev);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  struct stat lst;
  if (lstat(readme, &lst) == 0 && S_ISLNK(lst.st_mode)) { /* a Hub cache snapshot: never edited */
    free(readme), free(ev);
    return MP_OK;
  }
  int lfd = lock_dir(dir);
  char *card = NULL;
  size_t n = 0;
  mp_status s = MP_OK;
  mp_arena a;
  mp_arena_init(&a, 0);
  if (mp_read_file(readme, &card, &n, (size_t)4 << 20) != MP_OK || !strstr(card, MP_CARD_EVAL_START)) {
    mp_err_clear(); /* not an mlxport card: left alone */
    goto out;
  }
  mp_json *old = NULL;
  if (mp_is_file(ev) && mp_json_parse_file(ev, &a, &old) != MP_OK) {
    mp_log(MP_LOG_WARN, "%s: unreadable (%s); starting it again", ev, mp_last_error());
    mp_err_clear();
    old = NULL;
  }
  mp_sb doc, out;
  mp_sb_init(&doc);
  mp_sb_init(&out);
  edit(&doc, old, arg);
  mp_json *nev = NULL;
  s = doc.oom ? mp_err(MP_ERR_NOMEM, "out of memory") : mp_json_parse(doc.buf, doc.len, ev, &a, &nev);
  char *title = mp_path_basename(dir)[0] ? strdup(mp_path_basename(dir)) : strdup("model");
  /* the card's own title (its first "# " line) wins over the folder name */
  const char *h = strstr(card, "\n# ");
  if (h) {
    const char *nl = strchr(h + 3, '\n');
    free(title);
    title = strndup(h + 3, nl ? (size_t)(nl - h - 3) : strlen(h + 3));
  }
  if (!s) s = mp_card_rebuild(card, n, nev, title ? title : "model", &out);
  if (!s) s = mp_write_file_atomic(ev, doc.buf, doc.len);
  if (!s) s = mp_write_file_atomic(readme, out.buf, out.len);
  if (!s && updated) *updated = 1;
  free(title);
  mp_sb_free(&doc);
  mp_sb_free(&out);
out:
  if (lfd >= 0) close(lfd);
  mp_arena_free(&a);
  free(card);
  free(readme);
  free(ev);
  return s;
}

typedef struct add_arg {
  const mp_json *cmp;
  const char *command;
} add_arg;

static void edit_add(mp_sb *out, const mp_json *old, const void *argp) {
  const add_arg *arg = argp;
  const char *ds = mp_json_get_str(arg->cmp, "dataset", "");
  mp_sb_puts(out, "{\"evaluations\": [");
  const mp_json *list = mp_json_get(old, "evaluations");
  const char *command = arg->command;
  int first = 1;
  for (size_t i = 0; list && list->type == MP_JSON_ARRAY && i < list->len; i++) {
    const mp_json *c = mp_json_get(list->items[i], "comparison");
    if (c && !strcmp(mp_json_get_str(c, "dataset", ""), ds) && !command) /* re-recorded: keep its command */
      command = mp_json_get_str(list->items[i], "command", NULL);
    if (!c || !strcmp(mp_json_get_str(c, "dataset", ""), ds)) continue; /* replaced */
    if (!first) mp_sb_puts(out, ", ");
    mp_json_write(out, list->items[i]);
    first = 0;
  }
  if (!first) mp_sb_puts(out, ", ");
  mp_sb_puts(out, "{\"command\": ");
  if (command)
    mp_sb_json_str(out, command, strlen(command));
  else
    mp_sb_puts(out, "null");
  mp_sb_puts(out, ", \"comparison\": ");
  mp_json_write(out, arg->cmp);
  mp_sb_puts(out, "}]");
  const mp_json *note = mp_json_get(old, "note");
  if (note && note->type == MP_JSON_STRING) {
    mp_sb_puts(out, ", \"note\": ");
    mp_json_write(out, note);
  }
  mp_sb_puts(out, "}\n");
}

static void edit_note(mp_sb *out, const mp_json *old, const void *argp) {
  const char *note = argp;
  mp_sb_puts(out, "{\"evaluations\": ");
  const mp_json *list = mp_json_get(old, "evaluations");
  if (list && list->type == MP_JSON_ARRAY)
    mp_json_write(out, list);
  else
    mp_sb_puts(out, "[]");
  if (note) {
    mp_sb_puts(out, ", \"note\": ");
    mp_sb_json_str(out, note, strlen(note));
  }
  mp_sb_puts(out, "}\n");
}

mp_status mp_card_add_evaluation(const char *model_dir, const mp_json *comparison, const char *command, int *updated) {
  if (!comparison || comparison->type != MP_JSON_OBJECT)
    return mp_err(MP_ERR_INVALID_ARG, "an evaluation to record must be a comparison object");
  add_arg arg = {comparison, command};
  return update(model_dir, edit_add, &arg, updated);
}

mp_status mp_card_set_note(const char *model_dir, const char *note) { return update(model_dir, edit_note, note, NULL); }

int mp_card_gates_passed(const char *model_dir) {
  char *ev = mp_path_join(model_dir, EVALS_FILE);
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *j = NULL;
  int r = -1;
  if (ev && mp_is_file(ev) && mp_json_parse_file(ev, &a, &j) == MP_OK) {
    const mp_json *list = mp_json_get(j, "evaluations");
    for (size_t i = 0; list && list->type == MP_JSON_ARRAY && i < list->len; i++) {
      const mp_json *g = mp_json_get(mp_json_get(list->items[i], "comparison"), "quality_gates");
      int p = mp_json_get_bool(g, "passed", 0);
      r = (r == -1 ? 1 : r) && p;
    }
  }
  mp_err_clear();
  mp_arena_free(&a);
  free(ev);
  return r;
}
