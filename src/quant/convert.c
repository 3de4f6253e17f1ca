/* mlxport convert: Hugging Face checkpoint -> MLX folder. See convert.h and docs/convert.md. */
#include "quant/convert.h"
#include "hub/card.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/str.h"
#include "core/strbuf.h"
#include "core/tensor.h"
#include "format/hf.h"
#include "format/weights.h"
#include "quant/mlx_fp.h"
#include "quant/qfile.h"
#include "quant/recipe.h"
#include "quant/st_stream.h"

#define DEFAULT_SHARD_BYTES (5ull << 30) /* mlx-lm: MAX_FILE_SIZE_GB = 5 */
#define ERR_CHUNK 65536                  /* values dequantized at a time for the error stats */

void mp_convert_opts_init(mp_convert_opts *o) {
  memset(o, 0, sizeof *o);
  o->bits = 4;
  o->group_size = 64;
  o->dtype = MP_DTYPE_INVALID;
  o->compat = MP_QCOMPAT_CPU;
}

void mp_convert_result_free(mp_convert_result *r) {
  if (!r) return;
  free(r->json);
  r->json = NULL;
}

int mp_convert_is_layer_weight(const char *name, mp_dtype dt, int ndim) {
  size_t n = strlen(name);
  return ndim == 2 && mp_mlx_is_float(dt) && n > 7 && strcmp(name + n - 7, ".weight") == 0;
}

/* ---------------------------------------------------------------- JSON writing of a DOM */

static void json_num(mp_sb *sb, const mp_json *v) {
  if (v->is_int) {
    mp_sb_printf(sb, "%lld", (long long)v->i);
    return;
  }
  double d = v->num;
  if (!isfinite(d)) {
    mp_sb_puts(sb, "null");
    return;
  }
  char buf[40];
  for (int p = 1; p <= 17; p++) { /* shortest text that reads back to the same double (Python repr) */
    snprintf(buf, sizeof buf, "%.*g", p, d);
    if (strtod(buf, NULL) == d) break;
  }
  mp_sb_puts(sb, buf);
  if (!strpbrk(buf, ".eEn")) mp_sb_puts(sb, ".0");
}

static void indent(mp_sb *sb, int level) {
  mp_sb_putc(sb, '\n');
  for (int i = 0; i < level * 4; i++)
    mp_sb_putc(sb, ' ');
}

static void json_write(mp_sb *sb, const mp_json *v, int level);

static void json_write_members(mp_sb *sb, const mp_json *v, const size_t *order, int level) {
  if (!v->len) {
    mp_sb_puts(sb, "{}");
    return;
  }
  mp_sb_putc(sb, '{');
  for (size_t k = 0; k < v->len; k++) {
    size_t i = order ? order[k] : k;
    if (k) mp_sb_putc(sb, ',');
    indent(sb, level + 1);
    mp_sb_json_str(sb, v->keys[i], v->key_lens[i]);
    mp_sb_puts(sb, ": ");
    json_write(sb, v->items[i], level + 1);
  }
  indent(sb, level);
  mp_sb_putc(sb, '}');
}

static void json_write(mp_sb *sb, const mp_json *v, int level) {
  switch (v->type) {
  case MP_JSON_NULL: mp_sb_puts(sb, "null"); break;
  case MP_JSON_BOOL: mp_sb_puts(sb, v->boolean ? "true" : "false"); break;
  case MP_JSON_NUMBER: json_num(sb, v); break;
  case MP_JSON_STRING: mp_sb_json_str(sb, v->str, v->len); break;
  case MP_JSON_ARRAY:
    if (!v->len) {
      mp_sb_puts(sb, "[]");
      break;
    }
    mp_sb_putc(sb, '[');
    for (size_t i = 0; i < v->len; i++) {
      if (i) mp_sb_putc(sb, ',');
      indent(sb, level + 1);
      json_write(sb, v->items[i], level + 1);
    }
    indent(sb, level);
    mp_sb_putc(sb, ']');
    break;
  case MP_JSON_OBJECT: json_write_members(sb, v, NULL, level); break;
  }
}

/* ---------------------------------------------------------------- plan */

typedef enum { A_COPY, A_CAST, A_QUANT, A_DROP } action_t;
static const char *action_name(action_t a) {
  static const char *n[] = {"copy", "cast", "quantize", "drop"};
  return n[a];
}

typedef struct cv_t {
  const mp_tensor *t;
  action_t act;
  mp_dtype out_dt;
  int layer;        /* Linear/Embedding weight */
  const char *why;  /* why a layer weight stays in float */
  mp_qspec spec;    /* A_QUANT: how */
  const char *rule; /* the recipe rule (glob) that decided, NULL: the default */
  char *module;     /* layer path (name without ".weight") */
  char *sname, *bname;
  uint64_t out_bytes; /* all outputs of this tensor */
  int shard;
  size_t idx[3];
  mp_qerr err;
  int has_err;
} cv_t;

typedef struct conv {
  const mp_convert_opts *o;
  mp_arena arena;
  char *src_path, *src_dir, *repo_id, *out_abs, *parent, *base;
  mp_json *config;
  mp_dtype dtype;
  mp_weights *w;
  cv_t *cv;
  size_t n;
  int n_shards;
  char **shard_names;
  char (*hashes)[65];
  uint64_t *file_sizes;
  size_t n_files;
  uint64_t source_bytes;
  char *settings_json;
  char *tmpdir;
  mp_qrecipe recipe;
  mp_qspec dflt;
  const char *model_type;
  char *layers_sig; /* "module=spec;..." for layers that differ from the default (settings) */
  double t_start, t_hash, t_convert;
  mp_sb dropped;
} conv;

static int skip_match(const mp_convert_opts *o, const char *module, const char *name) {
  for (size_t i = 0; i < o->n_q_skip; i++)
    if ((module && fnmatch(o->q_skip[i], module, 0) == 0) || fnmatch(o->q_skip[i], name, 0) == 0) return 1;
  return 0;
}

static mp_status build_plan(conv *c) {
  const mp_convert_opts *o = c->o;
  c->n = mp_weights_count(c->w);
  c->cv = calloc(c->n ? c->n : 1, sizeof *c->cv);
  if (!c->cv) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < c->n; i++) {
    const mp_tensor *t = mp_weights_at(c->w, i);
    cv_t *v = &c->cv[i];
    v->t = t;
    v->out_dt = t->dtype;
    v->act = A_COPY;
    if (mp_str_ends_with(t->name, ".scales") || mp_str_ends_with(t->name, ".biases")) {
      char *wn = mp_arena_strdup(&c->arena, t->name);
      if (!wn) return mp_err(MP_ERR_NOMEM, "out of memory");
      strcpy(wn + strlen(wn) - 7, ".weight");
      if (mp_weights_find(c->w, wn))
        return mp_err(MP_ERR_UNSUPPORTED,
                      "%s: tensor %s: the checkpoint is already MLX-quantized; convert the original float "
                      "checkpoint instead",
                      c->src_path, t->name);
    }
    int is_f = mp_mlx_is_float(t->dtype) || t->dtype == MP_F64;
    if (!is_f) {
      /* integer buffers that transformers recomputes (position ids): not model parameters */
      if (mp_str_ends_with(t->name, "position_ids") || mp_str_ends_with(t->name, "token_type_ids")) {
        v->act = A_DROP;
        c->cv[i].out_bytes = 0;
        continue;
      }
      v->out_bytes = t->nbytes;
      continue;
    }
    if (t->dtype == MP_F64)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: tensor %s is float64: not supported by MLX conversion", c->src_path,
                    t->name);
    v->out_dt = c->dtype;
    v->act = t->dtype == c->dtype ? A_COPY : A_CAST;
    size_t numel = (size_t)mp_tensor_numel(t);
    v->out_bytes = numel * mp_dtype_size(c->dtype);
    if (mp_convert_is_layer_weight(t->name, t->dtype, t->ndim)) {
      v->layer = 1;
      v->module = mp_arena_strndup(&c->arena, t->name, strlen(t->name) - 7);
      if (!v->module) return mp_err(MP_ERR_NOMEM, "out of memory");
      if (!o->quantize) continue;
      const mp_qrule *rule =
          skip_match(o, v->module, t->name) ? NULL : mp_qrecipe_match(&c->recipe, v->module, t->name);
      v->spec = rule ? rule->spec : c->dflt;
      v->rule = rule ? rule->glob : NULL;
      if (skip_match(o, v->module, t->name)) {
        v->why = "--q-skip";
      } else if (!v->spec.quant) {
        v->why = rule ? "recipe rule (float)" : "not quantized";
      } else if (t->shape[1] % v->spec.group_size != 0) {
        v->why = "last dimension not a multiple of the group size";
      } else {
        v->act = A_QUANT;
        char *sn = mp_quant_companion_name(t->name, "scales"), *bn = mp_quant_companion_name(t->name, "biases");
        v->sname = sn ? mp_arena_strdup(&c->arena, sn) : NULL;
        v->bname = bn ? mp_arena_strdup(&c->arena, bn) : NULL;
        free(sn), free(bn);
        if (!v->sname || !v->bname) return mp_err(MP_ERR_NOMEM, "out of memory");
        size_t ng = mp_mlx_affine_groups(numel, v->spec.group_size);
        v->out_bytes = mp_mlx_affine_packed_bytes(numel, v->spec.bits) +
                       (v->spec.mode == MP_QMODE_AFFINE ? 2 * ng * mp_dtype_size(c->dtype) : ng);
      }
      if (v->act != A_QUANT) v->spec.quant = 0;
    }
  }
  /* shards, filled in order like mlx-lm's make_shards */
  uint64_t max = o->max_shard_bytes ? o->max_shard_bytes : DEFAULT_SHARD_BYTES, cur = 0;
  int shard = 0, used = 0;
  for (size_t i = 0; i < c->n; i++) {
    cv_t *v = &c->cv[i];
    if (v->act == A_DROP) continue;
    if (used && cur + v->out_bytes > max) {
      shard++;
      cur = 0;
    }
    v->shard = shard;
    cur += v->out_bytes;
    used = 1;
  }
  c->n_shards = shard + 1;
  c->shard_names = mp_arena_alloc(&c->arena, (size_t)c->n_shards * sizeof(char *));
  if (!c->shard_names) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (int s = 0; s < c->n_shards; s++) {
    char buf[64];
    if (c->n_shards == 1)
      snprintf(buf, sizeof buf, "model.safetensors");
    else
      snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", s + 1, c->n_shards);
    c->shard_names[s] = mp_arena_strdup(&c->arena, buf);
    if (!c->shard_names[s]) return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  return MP_OK;
}

/* The recipe: overrides, recipe file, caller's rules, preset, predicate (first match wins). */
static mp_status build_recipe(conv *c) {
  const mp_convert_opts *o = c->o;
  c->dflt.quant = 1;
  c->dflt.bits = o->bits, c->dflt.group_size = o->group_size, c->dflt.mode = o->mode;
  if (!o->quantize) {
    if (o->n_q_override || o->q_recipe || o->q_recipe_file || o->quant_predicate || (o->recipe && o->recipe->n))
      return mp_err(MP_ERR_INVALID_ARG,
                    "--q-override / --q-recipe / --q-recipe-file / --quant-predicate need -q (quantization)");
    return MP_OK;
  }
  mp_qrecipe file;
  mp_qrecipe_init(&file);
  mp_status s = MP_OK;
  for (size_t i = 0; i < o->n_q_override && !s; i++)
    s = mp_qrecipe_add_override(&c->recipe, o->q_override[i], o->mode == MP_QMODE_AFFINE ? o->group_size : 64);
  if (!s && o->q_recipe_file) {
    s = mp_qrecipe_load_file(&file, o->q_recipe_file, c->model_type);
    if (!s && file.has_default) c->dflt = file.dflt;
    for (size_t i = 0; !s && i < file.n; i++)
      s = mp_qrecipe_add(&c->recipe, file.rules[i].glob, &file.rules[i].spec, o->q_recipe_file);
  }
  for (size_t i = 0; !s && o->recipe && i < o->recipe->n; i++)
    s = mp_qrecipe_add(&c->recipe, o->recipe->rules[i].glob, &o->recipe->rules[i].spec, o->recipe->rules[i].origin);
  mp_qrecipe_free(&file);
  if (s) return s;
  if (!mp_mlx_quant_supported(c->dflt.mode, c->dflt.bits, c->dflt.group_size)) {
    char allowed[128];
    mp_qmode_allowed(c->dflt.mode, allowed, sizeof allowed);
    return mp_err(MP_ERR_INVALID_ARG, "--q-mode %s --q-bits %d --q-group-size %d: %s", mp_qmode_name(c->dflt.mode),
                  c->dflt.bits, c->dflt.group_size, allowed);
  }
  if (!o->q_recipe && !o->quant_predicate) return MP_OK;
  size_t n = mp_weights_count(c->w), k = 0;
  const char **mods = calloc(n ? n : 1, sizeof *mods);
  if (!mods) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n && !s; i++) {
    const mp_tensor *t = mp_weights_at(c->w, i);
    if (!mp_convert_is_layer_weight(t->name, t->dtype, t->ndim)) continue;
    mods[k] = mp_arena_strndup(&c->arena, t->name, strlen(t->name) - 7);
    if (!mods[k++]) s = mp_err(MP_ERR_NOMEM, "out of memory");
  }
  if (!s && o->q_recipe) s = mp_qrecipe_add_preset(&c->recipe, o->q_recipe, mods, k, c->model_type, &c->dflt);
  if (!s && o->quant_predicate) {
    s = mp_qrecipe_add_preset(&c->recipe, o->quant_predicate, mods, k, c->model_type, &c->dflt);
    if (s && strncmp(o->quant_predicate, "mixed_", 6) != 0)
      s = mp_err(MP_ERR_INVALID_ARG,
                 "--quant-predicate %s: mlxport maps mlx-lm's mixed_2_6, mixed_3_4, mixed_3_6 and mixed_4_6 onto "
                 "encoder modules; other predicates are Python functions of decoder module names and do not apply",
                 o->quant_predicate);
  }
  free(mods);
  return s;
}

/* After the plan: rules that matched nothing are reported, the per-layer signature is made. */
static mp_status finish_recipe(conv *c) {
  const char *example = "?";
  for (size_t i = 0; i < c->n; i++)
    if (c->cv[i].layer) {
      example = c->cv[i].module;
      break;
    }
  for (size_t i = 0; i < c->recipe.n; i++)
    if (!c->recipe.rules[i].matched &&
        (!strcmp(c->recipe.rules[i].origin, "--q-override") ||
         (c->o->q_recipe_file && !strcmp(c->recipe.rules[i].origin, c->o->q_recipe_file))))
      mp_log(MP_LOG_WARN,
             "%s '%s' matches no Linear/Embedding layer of %s that an earlier rule had not decided (layer paths "
             "look like '%s'; 'mlxport convert --dry-run' lists them); nothing changed for it",
             c->recipe.rules[i].origin, c->recipe.rules[i].glob, c->src_path, example);
  mp_sb sb;
  mp_sb_init(&sb);
  for (size_t i = 0; i < c->n; i++) {
    const cv_t *v = &c->cv[i];
    if (!v->layer || !c->o->quantize || (v->act == A_QUANT && mp_qspec_equal(&v->spec, &c->dflt))) continue;
    if (v->why && !strcmp(v->why, "last dimension not a multiple of the group size") && !v->rule) continue;
    char b[64];
    mp_qspec sp = v->spec;
    if (v->act != A_QUANT) sp.quant = 0;
    mp_sb_printf(&sb, "%s%s=%s", sb.len ? ";" : "", v->module, mp_qspec_str(&sp, b, sizeof b));
  }
  if (sb.oom) return mp_err(MP_ERR_NOMEM, "out of memory");
  c->layers_sig = sb.buf ? mp_sb_steal(&sb) : strdup("");
  return c->layers_sig ? MP_OK : mp_err(MP_ERR_NOMEM, "out of memory");
}

static void spec_json(mp_sb *sb, const mp_qspec *sp) {
  if (!sp->quant)
    mp_sb_puts(sb, "\"float\": true");
  else
    mp_sb_printf(sb, "\"bits\": %d, \"group_size\": %d, \"mode\": \"%s\"", sp->bits, sp->group_size,
                 mp_qmode_name(sp->mode));
}

/* The applied recipe as a recipe object (--q-recipe-file reads it back): the default and one
 * exact rule per layer that differs from it. */
static void recipe_json(conv *c, mp_sb *sb, const char *ind, int with_search) {
  mp_sb_puts(sb, "{\"mlxport_recipe\": 1, \"model_type\": ");
  mp_sb_json_str(sb, c->model_type ? c->model_type : "", strlen(c->model_type ? c->model_type : ""));
  mp_sb_puts(sb, ", \"default\": {");
  spec_json(sb, &c->dflt);
  mp_sb_puts(sb, "}, \"rules\": [");
  int first = 1;
  for (size_t i = 0; i < c->n; i++) {
    const cv_t *v = &c->cv[i];
    if (!v->layer || (v->act == A_QUANT && mp_qspec_equal(&v->spec, &c->dflt))) continue;
    if (v->act != A_QUANT && !v->rule && !(v->why && !strcmp(v->why, "--q-skip"))) continue;
    mp_qspec sp = v->spec;
    if (v->act != A_QUANT) sp.quant = 0;
    mp_sb_printf(sb, "%s%s  {\"match\": ", first ? "\n" : ",\n", ind);
    first = 0;
    mp_sb_json_str(sb, v->module, strlen(v->module));
    mp_sb_puts(sb, ", ");
    spec_json(sb, &sp);
    mp_sb_putc(sb, '}');
  }
  mp_sb_printf(sb, "%s%s]", first ? "" : "\n", first ? "" : ind);
  if (c->o->search_json && with_search) {
    mp_sb_puts(sb, ", \"search\": ");
    mp_sb_puts(sb, c->o->search_json);
  }
  mp_sb_putc(sb, '}');
}

static int has_mixed(const conv *c) { return c->layers_sig && *c->layers_sig; }

/* ---------------------------------------------------------------- settings, hashes, skip */

static mp_status make_settings(conv *c) {
  const mp_convert_opts *o = c->o;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "{\"dtype\": \"%s\", \"quantize\": %s", mp_mlx_dtype_name(c->dtype),
               o->quantize ? "true" : "false");
  if (o->quantize) {
    mp_sb_printf(&sb, ", \"bits\": %d, \"group_size\": %d, \"mode\": \"%s\", \"q_compat\": \"%s\", \"q_skip\": [",
                 c->dflt.bits, c->dflt.group_size, mp_qmode_name(c->dflt.mode),
                 o->compat == MP_QCOMPAT_METAL ? "metal" : "cpu");
    for (size_t i = 0; i < o->n_q_skip; i++) {
      if (i) mp_sb_puts(&sb, ", ");
      mp_sb_json_str(&sb, o->q_skip[i], strlen(o->q_skip[i]));
    }
    mp_sb_putc(&sb, ']');
    if (c->layers_sig && *c->layers_sig) {
      mp_sb_puts(&sb, ", \"layers\": ");
      mp_sb_json_str(&sb, c->layers_sig, strlen(c->layers_sig));
    }
  }
  mp_sb_printf(&sb, ", \"max_shard_size\": %llu}",
               (unsigned long long)(o->max_shard_bytes ? o->max_shard_bytes : DEFAULT_SHARD_BYTES));
  if (sb.oom) {
    mp_sb_free(&sb);
    return mp_err(MP_ERR_NOMEM, "out of memory");
  }
  c->settings_json = mp_sb_steal(&sb);
  return MP_OK;
}

static mp_status hash_sources(conv *c) {
  c->n_files = mp_weights_file_count(c->w);
  c->hashes = calloc(c->n_files ? c->n_files : 1, sizeof *c->hashes);
  c->file_sizes = calloc(c->n_files ? c->n_files : 1, sizeof *c->file_sizes);
  if (!c->hashes || !c->file_sizes) return mp_err(MP_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < c->n_files; i++) {
    const char *f = mp_weights_file(c->w, i);
    MP_TRY(mp_sha256_file(f, c->hashes[i]));
    int64_t sz = mp_file_size(f);
    c->file_sizes[i] = sz > 0 ? (uint64_t)sz : 0;
    c->source_bytes += c->file_sizes[i];
  }
  return MP_OK;
}

/* Serializes the settings object of an earlier metadata file the way make_settings does, so a
 * plain string comparison decides. */
static char *settings_of(const mp_json *s) {
  if (!s || s->type != MP_JSON_OBJECT) return NULL;
  mp_sb sb;
  mp_sb_init(&sb);
  const char *dt = mp_json_get_str(s, "dtype", "?");
  int q = mp_json_get_bool(s, "quantize", 0);
  mp_sb_printf(&sb, "{\"dtype\": \"%s\", \"quantize\": %s", dt, q ? "true" : "false");
  if (q) {
    mp_sb_printf(&sb, ", \"bits\": %lld, \"group_size\": %lld, \"mode\": \"%s\", \"q_compat\": \"%s\", \"q_skip\": [",
                 (long long)mp_json_get_int(s, "bits", -1), (long long)mp_json_get_int(s, "group_size", -1),
                 mp_json_get_str(s, "mode", "?"), mp_json_get_str(s, "q_compat", "?"));
    const mp_json *a = mp_json_get(s, "q_skip");
    for (size_t i = 0; a && a->type == MP_JSON_ARRAY && i < a->len; i++) {
      if (i) mp_sb_puts(&sb, ", ");
      if (a->items[i]->type == MP_JSON_STRING) mp_sb_json_str(&sb, a->items[i]->str, a->items[i]->len);
    }
    mp_sb_putc(&sb, ']');
    const mp_json *ly = mp_json_get(s, "layers");
    if (ly && ly->type == MP_JSON_STRING) {
      mp_sb_puts(&sb, ", \"layers\": ");
      mp_sb_json_str(&sb, ly->str, ly->len);
    }
  }
  mp_sb_printf(&sb, ", \"max_shard_size\": %lld}", (long long)mp_json_get_int(s, "max_shard_size", -1));
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

/* 1 when c->out_abs holds a finished conversion of the same sources with the same settings. */
static int already_converted(conv *c) {
  char *mp = mp_path_join(c->out_abs, "conversion_metadata.json");
  if (!mp) return 0;
  mp_arena a;
  mp_arena_init(&a, 0);
  mp_json *m = NULL;
  int same = 0;
  if (mp_json_parse_file(mp, &a, &m) == MP_OK) {
    const mp_json *src = mp_json_get(m, "source");
    const mp_json *files = mp_json_get(src, "files");
    char *st = settings_of(mp_json_get(m, "settings"));
    same = files && files->type == MP_JSON_ARRAY && files->len == c->n_files && st && strcmp(st, c->settings_json) == 0;
    for (size_t i = 0; same && i < c->n_files; i++)
      same = strcmp(mp_json_get_str(files->items[i], "sha256", ""), c->hashes[i]) == 0;
    free(st);
    /* the outputs it lists must still be there, with their sizes */
    const mp_json *outs = mp_json_get(mp_json_get(m, "output"), "files");
    same = same && outs && outs->type == MP_JSON_ARRAY && outs->len > 0;
    for (size_t i = 0; same && i < outs->len; i++) {
      const char *nm = mp_json_get_str(outs->items[i], "name", NULL);
      char *p = nm && !strchr(nm, '/') ? mp_path_join(c->out_abs, nm) : NULL;
      same = p && mp_file_size(p) == mp_json_get_int(outs->items[i], "bytes", -2);
      free(p);
    }
  }
  mp_arena_free(&a);
  free(mp);
  mp_err_clear();
  return same;
}

/* ---------------------------------------------------------------- temp folders */

static int pid_alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

/* Removes ".<base>.tmp-<pid>-*" and ".<base>.old-<pid>-*" folders of conversions that died. */
static void clean_stale(conv *c) {
  DIR *d = opendir(c->parent);
  if (!d) return;
  char p1[512], p2[512];
  snprintf(p1, sizeof p1, ".%s.tmp-", c->base);
  snprintf(p2, sizeof p2, ".%s.old-", c->base);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *rest = NULL;
    if (strncmp(e->d_name, p1, strlen(p1)) == 0)
      rest = e->d_name + strlen(p1);
    else if (strncmp(e->d_name, p2, strlen(p2)) == 0)
      rest = e->d_name + strlen(p2);
    if (!rest) continue;
    long pid = strtol(rest, NULL, 10);
    if (pid_alive(pid)) continue;
    char *full = mp_path_join(c->parent, e->d_name);
    if (full) {
      mp_log(MP_LOG_INFO, "removing %s (left by an interrupted conversion)", full);
      mp_remove_tree(full);
      mp_err_clear();
    }
    free(full);
  }
  closedir(d);
}

static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d) return 0;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      empty = 0;
      break;
    }
  closedir(d);
  return empty;
}

/* ---------------------------------------------------------------- writing the weights */

static int cancelled(const conv *c) { return c->o->cancel && *c->o->cancel; }

static mp_status write_weights(conv *c, uint64_t *out_bytes) {
  const mp_convert_opts *o = c->o;
  mp_status s = MP_OK;
  mp_st_stream **ws = calloc((size_t)c->n_shards, sizeof *ws);
  void *buf = NULL, *sbuf = NULL, *bbuf = NULL;
  if (!ws) return mp_err(MP_ERR_NOMEM, "out of memory");
  int release = mp_weights_get_format(c->w) == MP_WEIGHTS_SAFETENSORS ||
                mp_weights_get_format(c->w) == MP_WEIGHTS_SAFETENSORS_SHARDED;
  *out_bytes = 0;
  size_t n_done = 0; /* tensors written, for o->progress */
  /* one shard at a time: declare its tensors (the header), then stream their data */
  for (int k = 0; k < c->n_shards && !s; k++) {
    s = mp_st_stream_create(&ws[k]);
    if (!s) s = mp_st_stream_set_metadata(ws[k], "format", "mlx");
    for (size_t i = 0; i < c->n && !s; i++) {
      cv_t *v = &c->cv[i];
      const mp_tensor *t = v->t;
      if (v->act == A_DROP || v->shard != k) continue;
      if (v->act == A_QUANT) {
        int fp = v->spec.mode != MP_QMODE_AFFINE;
        int64_t shp[2] = {t->shape[0], t->shape[1] * v->spec.bits / 32};
        s = mp_st_stream_add(ws[k], t->name, MP_U32, 2, shp, &v->idx[0]);
        shp[1] = t->shape[1] / v->spec.group_size;
        if (!s) s = mp_st_stream_add(ws[k], v->sname, fp ? MP_U8 : v->out_dt, 2, shp, &v->idx[1]);
        if (!s && !fp) s = mp_st_stream_add(ws[k], v->bname, v->out_dt, 2, shp, &v->idx[2]);
      } else {
        s = mp_st_stream_add(ws[k], t->name, v->out_dt, t->ndim, t->shape, &v->idx[0]);
      }
    }
    char *shard_path = mp_path_join(c->tmpdir, c->shard_names[k]);
    if (!s) s = shard_path ? mp_st_stream_begin(ws[k], shard_path) : mp_err(MP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n && !s; i++) {
      cv_t *v = &c->cv[i];
      const mp_tensor *t = v->t;
      mp_st_stream *w = ws[k];
      size_t numel = (size_t)mp_tensor_numel(t);
      if (v->shard != k) continue;
      if (cancelled(c)) {
        s = mp_err(MP_ERR_CANCELLED, "conversion interrupted");
        break;
      }
      if (o->progress) o->progress(o->progress_user, ++n_done, c->n, t->name);
      free(buf), free(sbuf), free(bbuf);
      buf = sbuf = bbuf = NULL;
      switch (v->act) {
      case A_DROP: break;
      case A_COPY:
        s = mp_st_stream_put(w, v->idx[0], 0, t->data, t->nbytes);
        if (mp_mlx_is_float(t->dtype)) {
          mp_qerr_init(&v->err);
          v->err.n = numel;
          mp_qerr_finish(&v->err);
          v->has_err = 1;
        }
        break;
      case A_CAST: {
        size_t nb = numel * mp_dtype_size(v->out_dt);
        buf = malloc(nb + 1);
        if (!buf) s = mp_err(MP_ERR_NOMEM, "%s: out of memory", t->name);
        if (!s) s = mp_mlx_astype(t->data, t->dtype, buf, v->out_dt, numel);
        if (!s) s = mp_st_stream_put(w, v->idx[0], 0, buf, nb);
        if (!s) {
          mp_qerr_init(&v->err);
          mp_qerr_add(&v->err, t->data, t->dtype, buf, v->out_dt, numel);
          mp_qerr_finish(&v->err);
          v->has_err = 1;
        }
        break;
      }
      case A_QUANT: {
        int fp = v->spec.mode != MP_QMODE_AFFINE;
        size_t ng = mp_mlx_affine_groups(numel, v->spec.group_size), es = fp ? 1 : mp_dtype_size(v->out_dt);
        size_t pb = mp_mlx_affine_packed_bytes(numel, v->spec.bits);
        buf = malloc(pb + 1), sbuf = malloc(ng * es + 1), bbuf = malloc(ng * es + 1);
        if (!buf || !sbuf || !bbuf) s = mp_err(MP_ERR_NOMEM, "%s: out of memory", t->name);
        mp_qerr_init(&v->err);
        /* the error of the dequantized weight against the source is accumulated while quantizing */
        if (!s && fp)
          s = mp_mlx_fp_quantize(t->data, t->dtype, numel, v->out_dt, v->spec.mode, t->name, buf, sbuf, &v->err);
        else if (!s)
          s = mp_mlx_affine_quantize_ex(t->data, t->dtype, numel, v->out_dt, v->spec.bits, v->spec.group_size,
                                        o->compat, t->name, buf, sbuf, bbuf, &v->err);
        if (!s) s = mp_st_stream_put(w, v->idx[0], 0, buf, pb);
        if (!s) s = mp_st_stream_put(w, v->idx[1], 0, sbuf, ng * es);
        if (!s && !fp) s = mp_st_stream_put(w, v->idx[2], 0, bbuf, ng * es);
        if (s) break;
        mp_qerr_finish(&v->err);
        v->has_err = 1;
        break;
      }
      }
      if (!s && release) mp_quant_release_pages(t->data, t->nbytes);
    }
    if (!s) s = mp_st_stream_finish(ws[k]);
    if (!s) *out_bytes += (uint64_t)mp_file_size(shard_path);
    free(shard_path);
    mp_st_stream_free(ws[k]);
    ws[k] = NULL;
  }
  for (int k = 0; k < c->n_shards; k++)
    mp_st_stream_free(ws[k]);
  free(ws);
  free(buf), free(sbuf), free(bbuf);
  if (!s && c->n_shards > 1) {
    /* model.safetensors.index.json like huggingface / mlx-lm: sorted weight_map */
    size_t nn = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < c->n; i++)
      if (c->cv[i].act != A_DROP) {
        nn += c->cv[i].act == A_QUANT ? (c->cv[i].spec.mode == MP_QMODE_AFFINE ? 3 : 2) : 1;
        total += c->cv[i].out_bytes;
      }
    const char **names = malloc(nn * sizeof *names);
    int *shard = malloc(nn * sizeof *shard);
    if (!names || !shard) s = mp_err(MP_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; !s && i < c->n; i++) {
      cv_t *v = &c->cv[i];
      if (v->act == A_DROP) continue;
      names[k] = v->t->name, shard[k++] = v->shard;
      if (v->act == A_QUANT) names[k] = v->sname, shard[k++] = v->shard;
      if (v->act == A_QUANT && v->spec.mode == MP_QMODE_AFFINE) names[k] = v->bname, shard[k++] = v->shard;
    }
    /* insertion sort by name (n is small: a few thousand at most) */
    for (size_t i = 1; !s && i < nn; i++)
      for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
        const char *tn = names[j];
        names[j] = names[j - 1], names[j - 1] = tn;
        int ts = shard[j];
        shard[j] = shard[j - 1], shard[j - 1] = ts;
      }
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "{\n    \"metadata\": {\n        \"total_size\": %llu\n    },\n    \"weight_map\": {",
                 (unsigned long long)total);
    for (size_t i = 0; !s && i < nn; i++) {
      mp_sb_puts(&sb, i ? ",\n        " : "\n        ");
      mp_sb_json_str(&sb, names[i], strlen(names[i]));
      mp_sb_puts(&sb, ": ");
      mp_sb_json_str(&sb, c->shard_names[shard[i]], strlen(c->shard_names[shard[i]]));
    }
    mp_sb_puts(&sb, "\n    }\n}\n");
    if (!s) {
      char *p = mp_path_join(c->tmpdir, "model.safetensors.index.json");
      s = (p && !sb.oom) ? mp_write_file_atomic(p, sb.buf, sb.len) : mp_err(MP_ERR_NOMEM, "out of memory");
      if (!s) *out_bytes += sb.len;
      free(p);
    }
    mp_sb_free(&sb);
    free(names);
    free(shard);
  }
  return s;
}

/* ---------------------------------------------------------------- config.json */

static void quant_block(conv *c, mp_sb *sb, int level) {
  const mp_convert_opts *o = c->o;
  mp_sb_putc(sb, '{');
  indent(sb, level + 1);
  (void)o;
  mp_sb_printf(sb, "\"group_size\": %d,", c->dflt.group_size);
  indent(sb, level + 1);
  mp_sb_printf(sb, "\"bits\": %d,", c->dflt.bits);
  indent(sb, level + 1);
  mp_sb_printf(sb, "\"mode\": \"%s\"", mp_qmode_name(c->dflt.mode));
  /* per-path entries as mlx-lm's loader reads them: false (float) or the layer's own params */
  for (size_t i = 0; i < c->n; i++) {
    const cv_t *v = &c->cv[i];
    if (!v->layer || (v->act == A_QUANT && mp_qspec_equal(&v->spec, &c->dflt))) continue;
    mp_sb_putc(sb, ',');
    indent(sb, level + 1);
    mp_sb_json_str(sb, v->module, strlen(v->module));
    if (v->act != A_QUANT) {
      mp_sb_puts(sb, ": false");
      continue;
    }
    mp_sb_putc(sb, ':');
    mp_sb_putc(sb, ' ');
    mp_sb_putc(sb, '{');
    indent(sb, level + 2);
    mp_sb_printf(sb, "\"group_size\": %d,", v->spec.group_size);
    indent(sb, level + 2);
    mp_sb_printf(sb, "\"bits\": %d,", v->spec.bits);
    indent(sb, level + 2);
    mp_sb_printf(sb, "\"mode\": \"%s\"", mp_qmode_name(v->spec.mode));
    indent(sb, level + 1);
    mp_sb_putc(sb, '}');
  }
  indent(sb, level);
  mp_sb_putc(sb, '}');
}

/* Like mlx-lm's save_config: drops "_name_or_path", adds "quantization" and its mirror
 * "quantization_config" when quantized, sorts the top-level keys, indent 4. */
static mp_status write_config(conv *c) {
  const mp_json *cfg = c->config;
  size_t n = cfg->len;
  /* member list: existing keys (minus dropped / replaced ones) + the quantization pair */
  typedef struct {
    const char *key;
    size_t klen;
    const mp_json *val; /* NULL: quantization block */
  } mem_t;
  mem_t *m = calloc(n + 2, sizeof *m);
  if (!m) return mp_err(MP_ERR_NOMEM, "out of memory");
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *key = cfg->keys[i];
    if (!strcmp(key, "_name_or_path")) continue;
    if (c->o->quantize && (!strcmp(key, "quantization") || !strcmp(key, "quantization_config"))) continue;
    m[k].key = key, m[k].klen = cfg->key_lens[i], m[k].val = cfg->items[i];
    k++;
  }
  if (c->o->quantize) {
    m[k].key = "quantization", m[k].klen = 12, m[k++].val = NULL;
    m[k].key = "quantization_config", m[k].klen = 19, m[k++].val = NULL;
  }
  for (size_t i = 1; i < k; i++) /* insertion sort by key bytes, stable */
    for (size_t j = i; j > 0; j--) {
      size_t la = m[j - 1].klen, lb = m[j].klen;
      int r = memcmp(m[j - 1].key, m[j].key, la < lb ? la : lb);
      if (r < 0 || (r == 0 && la <= lb)) break;
      mem_t t = m[j];
      m[j] = m[j - 1], m[j - 1] = t;
    }
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_putc(&sb, '{');
  for (size_t i = 0; i < k; i++) {
    if (i) mp_sb_putc(&sb, ',');
    indent(&sb, 1);
    mp_sb_json_str(&sb, m[i].key, m[i].klen);
    mp_sb_puts(&sb, ": ");
    if (m[i].val)
      json_write(&sb, m[i].val, 1);
    else
      quant_block(c, &sb, 1);
  }
  mp_sb_puts(&sb, k ? "\n}" : "}");
  free(m);
  char *p = mp_path_join(c->tmpdir, "config.json");
  mp_status s = (p && !sb.oom) ? mp_write_file_atomic(p, sb.buf, sb.len) : mp_err(MP_ERR_NOMEM, "out of memory");
  free(p);
  mp_sb_free(&sb);
  return s;
}

/* ---------------------------------------------------------------- other files */

static const char *const k_copy_files[] = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spm.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
};

static mp_status copy_tree(const char *src, const char *dst) {
  if (!mp_is_dir(src)) return mp_copy_file(src, dst);
  MP_TRY(mp_mkdirs(dst));
  DIR *d = opendir(src);
  if (!d) return mp_err_errno(MP_ERR_IO, "%s: cannot open folder", src);
  struct dirent *e;
  mp_status s = MP_OK;
  while (!s && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *a = mp_path_join(src, e->d_name), *b = mp_path_join(dst, e->d_name);
    s = (a && b) ? copy_tree(a, b) : mp_err(MP_ERR_NOMEM, "out of memory");
    free(a), free(b);
  }
  closedir(d);
  return s;
}

static mp_status copy_side_files(conv *c, mp_sb *list) {
  int first = 1;
  for (size_t i = 0; i < sizeof k_copy_files / sizeof *k_copy_files; i++) {
    char *a = mp_path_join(c->src_dir, k_copy_files[i]), *b = mp_path_join(c->tmpdir, k_copy_files[i]);
    mp_status s = MP_OK;
    if (!a || !b)
      s = mp_err(MP_ERR_NOMEM, "out of memory");
    else if (mp_is_file(a)) {
      s = mp_copy_file(a, b);
      if (!s) {
        mp_sb_puts(list, first ? "" : ", ");
        mp_sb_json_str(list, k_copy_files[i], strlen(k_copy_files[i]));
        first = 0;
      }
    }
    free(a), free(b);
    MP_TRY(s);
  }
  /* sentence-transformers module folders: 1_Pooling, 2_Normalize, 2_Dense, ... (sorted) */
  struct dirent **ents = NULL;
  int ne = scandir(c->src_dir, &ents, NULL, alphasort);
  mp_status s = MP_OK;
  for (int i = 0; i < ne; i++) {
    const char *nm = ents[i]->d_name;
    size_t j = 0;
    while (nm[j] >= '0' && nm[j] <= '9')
      j++;
    if (!s && j > 0 && nm[j] == '_') {
      char *a = mp_path_join(c->src_dir, nm), *b = mp_path_join(c->tmpdir, nm);
      if (a && b && mp_is_dir(a)) {
        s = copy_tree(a, b);
        if (!s) {
          mp_sb_puts(list, first ? "" : ", ");
          mp_sb_json_str(list, nm, strlen(nm));
          first = 0;
        }
      }
      free(a), free(b);
    }
    free(ents[i]);
  }
  free(ents);
  return s;
}

static const char *pipeline_tag(conv *c) {
  char *p = mp_path_join(c->src_dir, "modules.json");
  int st = p && mp_is_file(p);
  free(p);
  if (st) return "sentence-similarity";
  const mp_json *arch = mp_json_get(c->config, "architectures");
  if (arch && arch->type == MP_JSON_ARRAY && arch->len && arch->items[0]->type == MP_JSON_STRING &&
      strstr(arch->items[0]->str, "SequenceClassification"))
    return "text-classification";
  return "feature-extraction";
}

static mp_status write_card(conv *c, uint64_t out_bytes) {
  const mp_convert_opts *o = c->o;
  mp_card_info ci;
  memset(&ci, 0, sizeof ci);
  ci.title = c->base;
  ci.base_model = c->repo_id;
  ci.source = c->repo_id ? c->repo_id : c->src_path;
  char sha[41];
  ci.source_commit = mp_hf_snapshot_commit(c->src_dir, sha);
  mp_arena a;
  mp_arena_init(&a, 0);
  char *src_readme = mp_path_join(c->src_dir, "README.md");
  if (src_readme) mp_card_source_license(src_readme, &a, &ci.license, &ci.license_name, &ci.license_link);
  free(src_readme);
  ci.pipeline_tag = pipeline_tag(c);
  char *mj = mp_path_join(c->src_dir, "modules.json");
  ci.sentence_transformers = mj && mp_is_file(mj);
  free(mj);
  ci.quantized = o->quantize;
  ci.bits = c->dflt.bits;
  ci.group_size = c->dflt.group_size;
  ci.mode = mp_qmode_name(c->dflt.mode);
  ci.dtype = mp_mlx_dtype_name(c->dtype);
  for (size_t i = 0; i < c->n; i++) {
    ci.n_quantized += c->cv[i].act == A_QUANT;
    ci.n_float_layers += c->cv[i].layer && c->cv[i].act != A_QUANT;
  }
  ci.source_mb = (double)c->source_bytes / 1e6;
  ci.output_mb = (double)out_bytes / 1e6;
  ci.command = o->command;
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb recipe;
  mp_sb_init(&recipe);
  if (o->quantize && has_mixed(c)) {
    recipe_json(c, &recipe, "", 0);
    ci.recipe = recipe.buf;
    ci.recipe_searched = c->o->search_json != NULL;
  }
  mp_card_render(&sb, &ci);
  mp_sb_free(&recipe);
  mp_arena_free(&a);
  char *p = mp_path_join(c->tmpdir, "README.md");
  mp_status s = (p && !sb.oom) ? mp_write_file_atomic(p, sb.buf, sb.len) : mp_err(MP_ERR_NOMEM, "out of memory");
  free(p);
  mp_sb_free(&sb);
  return s;
}

static void err_fields(mp_sb *sb, const cv_t *v) {
  mp_sb_puts(sb, ", \"max_abs_err\": ");
  mp_sb_json_f64(sb, v->err.max_abs);
  mp_sb_puts(sb, ", \"rms_err\": ");
  mp_sb_json_f64(sb, v->err.rms);
  mp_sb_puts(sb, ", \"rel_rms_err\": ");
  mp_sb_json_f64(sb, v->err.rel_rms);
  mp_sb_puts(sb, ", \"snr_db\": ");
  mp_sb_json_f64(sb, v->err.snr_db);
}

static void tensor_entry(mp_sb *sb, const conv *c, const cv_t *v, int with_err) {
  char shape[128];
  mp_sb_puts(sb, "{\"name\": ");
  mp_sb_json_str(sb, v->t->name, strlen(v->t->name));
  mp_sb_printf(sb, ", \"shape\": %s, \"source_dtype\": \"%s\", \"action\": \"%s\"",
               mp_shape_str(v->t->shape, v->t->ndim, shape, sizeof shape), mp_dtype_name(v->t->dtype),
               action_name(v->act));
  if (v->act != A_DROP) mp_sb_printf(sb, ", \"dtype\": \"%s\"", mp_dtype_name(v->out_dt));
  if (v->act == A_QUANT)
    mp_sb_printf(sb, ", \"bits\": %d, \"group_size\": %d, \"mode\": \"%s\"", v->spec.bits, v->spec.group_size,
                 mp_qmode_name(v->spec.mode));
  if (v->rule) {
    mp_sb_puts(sb, ", \"rule\": ");
    mp_sb_json_str(sb, v->rule, strlen(v->rule));
  }
  if (v->why) mp_sb_printf(sb, ", \"kept_float\": \"%s\"", v->why);
  mp_sb_printf(sb, ", \"bytes\": %llu", (unsigned long long)v->out_bytes);
  if (c->n_shards > 1 && v->act != A_DROP) mp_sb_printf(sb, ", \"file\": \"%s\"", c->shard_names[v->shard]);
  if (with_err && v->has_err) err_fields(sb, v);
  mp_sb_putc(sb, '}');
}

static mp_status write_metadata(conv *c, uint64_t out_bytes, const char *copied) {
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "{\n  \"tool\": \"mlxport\",\n  \"tool_version\": \"%s\",\n  \"source\": {\n    \"ref\": ",
               MP_VERSION_STRING);
  mp_sb_json_str(&sb, c->o->hf_path, strlen(c->o->hf_path));
  mp_sb_puts(&sb, ",\n    \"path\": ");
  mp_sb_json_str(&sb, c->src_path, strlen(c->src_path));
  mp_sb_puts(&sb, ",\n    \"repo_id\": ");
  if (c->repo_id)
    mp_sb_json_str(&sb, c->repo_id, strlen(c->repo_id));
  else
    mp_sb_puts(&sb, "null");
  mp_sb_puts(&sb, ",\n    \"files\": [");
  for (size_t i = 0; i < c->n_files; i++) {
    const char *f = mp_weights_file(c->w, i);
    mp_sb_puts(&sb, i ? ",\n      {\"name\": " : "\n      {\"name\": ");
    mp_sb_json_str(&sb, mp_path_basename(f), strlen(mp_path_basename(f)));
    mp_sb_printf(&sb, ", \"sha256\": \"%s\", \"bytes\": %llu}", c->hashes[i], (unsigned long long)c->file_sizes[i]);
  }
  mp_sb_puts(&sb, "\n    ]\n  },\n  \"settings\": ");
  mp_sb_puts(&sb, c->settings_json);
  mp_sb_puts(&sb, ",\n  \"output\": {\n    \"files\": [");
  for (int k = 0; k <= c->n_shards; k++) {
    const char *nm = k < c->n_shards ? c->shard_names[k] : (c->n_shards > 1 ? "model.safetensors.index.json" : NULL);
    if (!nm) break;
    char *p = mp_path_join(c->tmpdir, nm);
    char hex[65] = "";
    if (p) mp_sha256_file(p, hex);
    mp_sb_puts(&sb, k ? ",\n      {\"name\": " : "\n      {\"name\": ");
    mp_sb_json_str(&sb, nm, strlen(nm));
    mp_sb_printf(&sb, ", \"sha256\": \"%s\", \"bytes\": %lld}", hex, (long long)(p ? mp_file_size(p) : -1));
    free(p);
  }
  mp_sb_printf(&sb, "\n    ],\n    \"copied\": [%s]\n  },\n", copied);
  size_t nq = 0, nc = 0, ncp = 0, nd = 0;
  for (size_t i = 0; i < c->n; i++) {
    nq += c->cv[i].act == A_QUANT, nc += c->cv[i].act == A_CAST;
    ncp += c->cv[i].act == A_COPY, nd += c->cv[i].act == A_DROP;
  }
  mp_sb_printf(&sb,
               "  \"sizes\": {\"source_weight_bytes\": %llu, \"output_weight_bytes\": %llu, \"compression_ratio\": ",
               (unsigned long long)c->source_bytes, (unsigned long long)out_bytes);
  mp_sb_json_f64(&sb, out_bytes ? (double)c->source_bytes / (double)out_bytes : 0.0);
  mp_sb_printf(
      &sb,
      "},\n  \"counts\": {\"tensors\": %zu, \"quantized\": %zu, \"cast\": %zu, \"copied\": %zu, \"dropped\": %zu},\n",
      c->n, nq, nc, ncp, nd);
  double t_end = mp_now_s();
  mp_sb_printf(&sb, "  \"timings\": {\"hash_s\": %.3f, \"convert_s\": %.3f, \"total_s\": %.3f},\n", c->t_hash,
               c->t_convert, t_end - c->t_start);
  if (c->o->quantize) {
    mp_sb_puts(&sb, "  \"recipe\": ");
    recipe_json(c, &sb, "  ", 1);
    mp_sb_puts(&sb, ",\n");
  }
  mp_sb_puts(&sb, "  \"tensors\": [");
  for (size_t i = 0; i < c->n; i++) {
    mp_sb_puts(&sb, i ? ",\n    " : "\n    ");
    tensor_entry(&sb, c, &c->cv[i], 1);
  }
  mp_sb_puts(&sb, "\n  ]\n}\n");
  char *p = mp_path_join(c->tmpdir, "conversion_metadata.json");
  mp_status s = (p && !sb.oom) ? mp_write_file_atomic(p, sb.buf, sb.len) : mp_err(MP_ERR_NOMEM, "out of memory");
  free(p);
  mp_sb_free(&sb);
  return s;
}

/* ---------------------------------------------------------------- summary */

static char *summary_json(conv *c, const char *status, uint64_t out_bytes, int with_plan) {
  mp_sb sb;
  mp_sb_init(&sb);
  size_t nq = 0, nc = 0, ncp = 0, nd = 0, nf = 0;
  uint64_t planned = 0;
  for (size_t i = 0; i < c->n; i++) {
    nq += c->cv[i].act == A_QUANT, nc += c->cv[i].act == A_CAST;
    ncp += c->cv[i].act == A_COPY, nd += c->cv[i].act == A_DROP;
    nf += c->cv[i].layer && c->cv[i].act != A_QUANT;
    planned += c->cv[i].out_bytes;
  }
  mp_sb_printf(&sb, "{\"status\": \"%s\", \"source\": ", status);
  mp_sb_json_str(&sb, c->src_path, strlen(c->src_path));
  mp_sb_puts(&sb, ", \"output\": ");
  mp_sb_json_str(&sb, c->out_abs, strlen(c->out_abs));
  mp_sb_puts(&sb, ", \"settings\": ");
  mp_sb_puts(&sb, c->settings_json);
  mp_sb_printf(&sb,
               ", \"tensors\": %zu, \"quantized\": %zu, \"cast\": %zu, \"copied\": %zu, \"dropped\": %zu, "
               "\"float_layers\": %zu, \"source_weight_bytes\": %llu, \"output_weight_bytes\": %llu, "
               "\"compression_ratio\": ",
               c->n, nq, nc, ncp, nd, nf, (unsigned long long)c->source_bytes,
               (unsigned long long)(out_bytes ? out_bytes : planned));
  mp_sb_json_f64(&sb, (out_bytes ? out_bytes : planned)
                          ? (double)c->source_bytes / (double)(out_bytes ? out_bytes : planned)
                          : 0.0);
  mp_sb_printf(&sb, ", \"files\": %d, \"seconds\": %.3f", c->n_shards, mp_now_s() - c->t_start);
  if (with_plan) {
    mp_sb_puts(&sb, ", \"plan\": [");
    for (size_t i = 0; i < c->n; i++) {
      mp_sb_puts(&sb, i ? ",\n  " : "\n  ");
      tensor_entry(&sb, c, &c->cv[i], 0);
    }
    mp_sb_puts(&sb, "\n]");
  }
  mp_sb_puts(&sb, "}\n");
  if (sb.oom) {
    mp_sb_free(&sb);
    return NULL;
  }
  return mp_sb_steal(&sb);
}

/* ---------------------------------------------------------------- main entry */

static char *repo_id_of(const char *ref, const char *resolved) {
  if (!mp_path_exists(ref)) { /* resolved through the hub cache: the ref is the id */
    const char *at = strchr(ref, '@');
    return strndup(ref, at ? (size_t)(at - ref) : strlen(ref));
  }
  return mp_hf_snapshot_repo_id(resolved);
}

static void conv_free(conv *c) {
  mp_weights_close(c->w);
  free(c->cv);
  free(c->hashes);
  free(c->file_sizes);
  free(c->settings_json);
  free(c->src_path), free(c->src_dir), free(c->repo_id), free(c->out_abs), free(c->parent);
  free(c->tmpdir);
  free(c->layers_sig);
  mp_qrecipe_free(&c->recipe);
  mp_arena_free(&c->arena);
}

static char *absolute(const char *p) {
  if (p[0] == '/') return strdup(p);
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return strdup(p);
  return mp_path_join(cwd, p);
}

mp_status mp_convert(const mp_convert_opts *o, mp_convert_result *r) {
  memset(r, 0, sizeof *r);
  conv c;
  memset(&c, 0, sizeof c);
  c.o = o;
  c.t_start = mp_now_s();
  mp_arena_init(&c.arena, 0);
  mp_status s = MP_OK;
  if (!o->hf_path || !*o->hf_path) return mp_err(MP_ERR_INVALID_ARG, "no source model (--hf-path)");
  if (!o->mlx_path || !*o->mlx_path) return mp_err(MP_ERR_INVALID_ARG, "no output folder (--mlx-path)");
  mp_qrecipe_init(&c.recipe);
  if (o->quantize && !o->q_recipe_file && !mp_mlx_quant_supported(o->mode, o->bits, o->group_size)) {
    char allowed[128];
    mp_qmode_allowed(o->mode, allowed, sizeof allowed);
    mp_qrecipe_free(&c.recipe);
    mp_arena_free(&c.arena);
    return mp_err(MP_ERR_INVALID_ARG, "--q-mode %s --q-bits %d --q-group-size %d: %s", mp_qmode_name(o->mode), o->bits,
                  o->group_size, allowed);
  }

  if ((s = mp_hf_resolve(o->hf_path, &c.src_path))) goto done;
  c.src_dir = mp_is_dir(c.src_path) ? strdup(c.src_path) : mp_path_dirname(c.src_path);
  c.repo_id = repo_id_of(o->hf_path, c.src_path);
  {
    char *oa = absolute(o->mlx_path);
    size_t l = oa ? strlen(oa) : 0;
    while (l > 1 && oa[l - 1] == '/')
      oa[--l] = 0;
    c.out_abs = oa;
  }
  if (!c.src_dir || !c.out_abs) {
    s = mp_err(MP_ERR_NOMEM, "out of memory");
    goto done;
  }
  c.parent = mp_path_dirname(c.out_abs);
  c.base = (char *)mp_path_basename(c.out_abs);
  if (!c.parent || !*c.base) {
    s = mp_err(MP_ERR_INVALID_ARG, "%s: not a usable output folder", o->mlx_path);
    goto done;
  }
  {
    char *sa = absolute(c.src_dir);
    int same = sa && strcmp(sa, c.out_abs) == 0;
    free(sa);
    if (same) {
      s = mp_err(MP_ERR_INVALID_ARG, "--mlx-path %s is the source folder: choose another output folder", o->mlx_path);
      goto done;
    }
  }
  if ((s = mp_hf_load_config(c.src_dir, &c.arena, &c.config))) {
    mp_err_prefix(s, "%s: a model folder needs its config.json", c.src_dir);
    goto done;
  }
  if (c.config->type != MP_JSON_OBJECT) {
    s = mp_err(MP_ERR_FORMAT, "%s/config.json: not a JSON object", c.src_dir);
    goto done;
  }
  if (mp_json_get(c.config, "quantization")) {
    s = mp_err(MP_ERR_UNSUPPORTED, "%s/config.json has a \"quantization\" block: the model is already MLX-quantized",
               c.src_dir);
    goto done;
  }
  c.dtype = o->dtype;
  if (c.dtype == MP_DTYPE_INVALID) {
    const char *td = mp_json_get_str(c.config, "torch_dtype", mp_json_get_str(c.config, "dtype", NULL));
    if (!td || mp_mlx_dtype_parse(td, &c.dtype) != MP_OK) c.dtype = MP_F16;
  }
  if ((s = mp_weights_open(mp_is_dir(c.src_path) ? c.src_dir : c.src_path, &c.w))) goto done;
  c.model_type = mp_json_get_str(c.config, "model_type", NULL);
  if ((s = build_recipe(&c))) goto done;
  if ((s = build_plan(&c))) goto done;
  if ((s = finish_recipe(&c))) goto done;
  if ((s = make_settings(&c))) goto done;
  double th = mp_now_s();
  if ((s = hash_sources(&c))) goto done;
  c.t_hash = mp_now_s() - th;

  if (!o->no_skip && mp_is_dir(c.out_abs) && already_converted(&c)) {
    r->status = "skipped";
    r->json = summary_json(&c, "skipped", (uint64_t)mp_tree_size(c.out_abs), 0);
    goto fill;
  }
  if (o->dry_run) {
    r->status = "planned";
    r->json = summary_json(&c, "planned", 0, 1);
    goto fill;
  }
  int replace = 0;
  if (mp_path_exists(c.out_abs)) {
    char *meta = mp_path_join(c.out_abs, "conversion_metadata.json");
    int ours = meta && mp_is_file(meta);
    free(meta);
    if (!mp_is_dir(c.out_abs) || (!ours && !dir_is_empty(c.out_abs))) {
      s = mp_err(MP_ERR_INVALID_ARG,
                 "%s exists and is not an mlxport conversion: remove it or choose another --mlx-path", o->mlx_path);
      goto done;
    }
    replace = 1;
  }
  if ((s = mp_mkdirs(c.parent))) goto done;
  clean_stale(&c);
  {
    mp_sb sb;
    mp_sb_init(&sb);
    mp_sb_printf(&sb, "%s/.%s.tmp-%ld-XXXXXX", c.parent, c.base, (long)getpid());
    c.tmpdir = mp_sb_steal(&sb);
    if (!c.tmpdir || !mkdtemp(c.tmpdir)) {
      s = mp_err_errno(MP_ERR_IO, "%s: cannot create a temporary folder beside the output", c.parent);
      free(c.tmpdir);
      c.tmpdir = NULL;
      goto done;
    }
    chmod(c.tmpdir, 0755);
  }
  double tc = mp_now_s();
  uint64_t out_bytes = 0;
  mp_sb copied;
  mp_sb_init(&copied);
  s = write_weights(&c, &out_bytes);
  c.t_convert = mp_now_s() - tc;
  if (!s) s = copy_side_files(&c, &copied);
  if (!s) s = write_config(&c);
  if (!s) s = write_card(&c, out_bytes);
  if (!s && cancelled(&c)) s = mp_err(MP_ERR_CANCELLED, "conversion interrupted");
  if (!s) s = write_metadata(&c, out_bytes, copied.buf ? copied.buf : "");
  mp_sb_free(&copied);
  if (!s) {
    mp_fsync_dir(c.tmpdir);
    if (!replace) {
      if (rename(c.tmpdir, c.out_abs) != 0)
        s = mp_err_errno(MP_ERR_IO, "%s: cannot move the new folder into place", o->mlx_path);
    } else {
      /* swap atomically with the earlier conversion, then delete it */
      if (renameat2(AT_FDCWD, c.tmpdir, AT_FDCWD, c.out_abs, RENAME_EXCHANGE) != 0) {
        s = mp_err_errno(MP_ERR_IO, "%s: cannot replace the earlier conversion", o->mlx_path);
      } else {
        mp_sb sb;
        mp_sb_init(&sb);
        mp_sb_printf(&sb, "%s/.%s.old-%ld", c.parent, c.base, (long)getpid());
        char *old = mp_sb_steal(&sb);
        if (old && rename(c.tmpdir, old) == 0) {
          free(c.tmpdir);
          c.tmpdir = old;
        } else {
          free(old);
        }
      }
    }
    if (!s) {
      mp_fsync_dir(c.parent);
      if (replace) mp_remove_tree(c.tmpdir); /* the earlier conversion, now under the temp name */
      mp_err_clear();
      free(c.tmpdir);
      c.tmpdir = NULL;
    }
  }
  if (s) goto done;
  r->status = "converted";
  r->json = summary_json(&c, "converted", out_bytes, 0);
  r->output_bytes = out_bytes;
fill:
  for (size_t i = 0; i < c.n; i++) {
    r->n_quantized += c.cv[i].act == A_QUANT, r->n_cast += c.cv[i].act == A_CAST;
    r->n_copied += c.cv[i].act == A_COPY, r->n_dropped += c.cv[i].act == A_DROP;
    r->n_float_layers += c.cv[i].layer && c.cv[i].act != A_QUANT;
  }
  r->n_tensors = c.n;
  if (!r->output_bytes)
    for (size_t i = 0; i < c.n; i++)
      r->output_bytes += c.cv[i].out_bytes;
  r->source_bytes = c.source_bytes;
  r->seconds = mp_now_s() - c.t_start;
  if (!r->json) s = mp_err(MP_ERR_NOMEM, "out of memory");
done:
  if (c.tmpdir) {
    mp_status keep = s;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", mp_last_error());
    mp_remove_tree(c.tmpdir);
    mp_err(keep, "%s", msg);
  }
  conv_free(&c);
  return s;
}
