/* Quantization recipes: rules, presets, mlx-lm predicate names, recipe files (see recipe.h). */
#include "quant/recipe.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/str.h"

void mp_qrecipe_init(mp_qrecipe *r) {
  memset(r, 0, sizeof *r);
  mp_arena_init(&r->arena, 0);
}

void mp_qrecipe_free(mp_qrecipe *r) {
  free(r->rules);
  mp_arena_free(&r->arena);
  memset(r, 0, sizeof *r);
}

int mp_qspec_equal(const mp_qspec *a, const mp_qspec *b) {
  if (!a->quant || !b->quant) return a->quant == b->quant;
  return a->bits == b->bits && a->group_size == b->group_size && a->mode == b->mode;
}

const char *mp_qspec_str(const mp_qspec *s, char *buf, size_t n) {
  if (!s->quant)
    snprintf(buf, n, "float");
  else if (s->mode == MP_QMODE_AFFINE)
    snprintf(buf, n, "%d-bit affine g%d", s->bits, s->group_size);
  else
    snprintf(buf, n, "%s", mp_qmode_name(s->mode));
  return buf;
}

static mp_status check_spec(const mp_qspec *s, const char *what) {
  if (!s->quant || mp_mlx_quant_supported(s->mode, s->bits, s->group_size)) return MP_OK;
  char allowed[128];
  mp_qmode_allowed(s->mode, allowed, sizeof allowed);
  return mp_err(MP_ERR_INVALID_ARG, "%s: %d bits, group size %d, mode %s is not something MLX can load: %s", what,
                s->bits, s->group_size, mp_qmode_name(s->mode), allowed);
}

mp_status mp_qspec_parse(const char *s, int dflt_group, const char *what, mp_qspec *out) {
  memset(out, 0, sizeof *out);
  if (!strcmp(s, "none") || !strcmp(s, "float")) return MP_OK;
  char buf[64];
  if (strlen(s) >= sizeof buf) return mp_err(MP_ERR_INVALID_ARG, "%s: '%s' is too long", what, s);
  strcpy(buf, s);
  char *f[3] = {buf, NULL, NULL};
  int nf = 1;
  for (char *p = buf; *p; p++)
    if (*p == ':') {
      if (nf == 3) return mp_err(MP_ERR_INVALID_ARG, "%s: '%s': expected BITS[:GROUP[:MODE]] or none", what, s);
      *p = 0;
      f[nf++] = p + 1;
    }
  out->quant = 1;
  out->mode = MP_QMODE_AFFINE;
  if (nf == 3 && mp_qmode_parse(f[2], &out->mode))
    return mp_err(MP_ERR_INVALID_ARG, "%s: mode '%s' in '%s': expected affine, mxfp4, nvfp4 or mxfp8", what, f[2], s);
  /* a bare mode name ("mxfp4") is accepted as BITS too: the mode with its own bits and group */
  if (nf == 1 && mp_qmode_parse(f[0], &out->mode) == MP_OK) {
    out->bits = mp_qmode_default_bits(out->mode);
    out->group_size = mp_qmode_default_group(out->mode);
    return check_spec(out, what);
  }
  char *end;
  long b = strtol(f[0], &end, 10);
  if (!*f[0] || *end || b <= 0 || b > 64)
    return mp_err(MP_ERR_INVALID_ARG,
                  "%s: bits '%s' in '%s': expected BITS[:GROUP[:MODE]] (e.g. 4, 8:32, 4:32:mxfp4) "
                  "or none",
                  what, f[0], s);
  out->bits = (int)b;
  out->group_size = out->mode == MP_QMODE_AFFINE ? dflt_group : mp_qmode_default_group(out->mode);
  if (nf >= 2 && *f[1]) {
    long g = strtol(f[1], &end, 10);
    if (*end || g <= 0 || g > 4096)
      return mp_err(MP_ERR_INVALID_ARG, "%s: group size '%s' in '%s' is not a number", what, f[1], s);
    out->group_size = (int)g;
  }
  return check_spec(out, what);
}

mp_status mp_qrecipe_add(mp_qrecipe *r, const char *glob, const mp_qspec *spec, const char *origin) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    mp_qrule *nr = realloc(r->rules, cap * sizeof *nr);
    if (!nr) return mp_err(MP_ERR_NOMEM, "out of memory");
    r->rules = nr;
    r->cap = cap;
  }
  mp_qrule *q = &r->rules[r->n];
  memset(q, 0, sizeof *q);
  q->glob = mp_arena_strdup(&r->arena, glob);
  q->origin = mp_arena_strdup(&r->arena, origin ? origin : "");
  if (!q->glob || !q->origin) return mp_err(MP_ERR_NOMEM, "out of memory");
  q->spec = *spec;
  r->n++;
  return MP_OK;
}

mp_status mp_qrecipe_add_override(mp_qrecipe *r, const char *arg, int dflt_group) {
  const char *eq = strrchr(arg, '=');
  if (!eq || eq == arg || !eq[1])
    return mp_err(MP_ERR_INVALID_ARG,
                  "--q-override '%s': expected GLOB=BITS[:GROUP[:MODE]] or GLOB=none (e.g. 'classifier=none', "
                  "'*.attention.*=8', '*=4:32:mxfp4')",
                  arg);
  char glob[512], what[600];
  size_t gl = (size_t)(eq - arg);
  if (gl >= sizeof glob) return mp_err(MP_ERR_INVALID_ARG, "--q-override: glob too long");
  memcpy(glob, arg, gl);
  glob[gl] = 0;
  snprintf(what, sizeof what, "--q-override '%s'", arg);
  mp_qspec s;
  MP_TRY(mp_qspec_parse(eq + 1, dflt_group, what, &s));
  return mp_qrecipe_add(r, glob, &s, "--q-override");
}

const mp_qrule *mp_qrecipe_match(mp_qrecipe *r, const char *module, const char *tensor_name) {
  for (size_t i = 0; i < r->n; i++) {
    mp_qrule *q = &r->rules[i];
    if ((module && fnmatch(q->glob, module, 0) == 0) || (tensor_name && fnmatch(q->glob, tensor_name, 0) == 0)) {
      q->matched++;
      return q;
    }
  }
  return NULL;
}

/* ---- module kinds */

static int has_component(const char *m, const char *c) {
  size_t l = strlen(c);
  for (const char *p = m; (p = strstr(p, c)) != NULL; p++)
    if ((p == m || p[-1] == '.') && (p[l] == 0 || p[l] == '.')) return 1;
  return 0;
}

int mp_qmodule_kind(const char *module, int *layer, size_t *stack_len) {
  *layer = -1;
  *stack_len = 0;
  for (const char *p = module; *p; p++) {
    const char *q = NULL;
    if ((p == module || p[-1] == '.') && !strncmp(p, "layer.", 6))
      q = p + 6;
    else if ((p == module || p[-1] == '.') && !strncmp(p, "layers.", 7))
      q = p + 7;
    if (q && isdigit((unsigned char)*q)) {
      *layer = atoi(q);
      *stack_len = (size_t)(p - module);
      return 'l';
    }
  }
  if (strstr(module, "embeddings") || strstr(module, "embed_tokens") || strstr(module, "embed_positions") ||
      has_component(module, "shared") || strstr(module, "rel_embeddings") || strstr(module, "relative_attention_bias"))
    return 'e';
  if (has_component(module, "pooler") || has_component(module, "classifier") ||
      has_component(module, "pre_classifier") || has_component(module, "classification_head") ||
      has_component(module, "head"))
    return 'h';
  return 'o';
}

/* first and last layer index of the stack (prefix of length sl) of module m */
static void stack_range(const char *const *mods, size_t n, const char *m, size_t sl, int *lo, int *hi) {
  *lo = 1 << 30, *hi = -1;
  for (size_t i = 0; i < n; i++) {
    int l;
    size_t s;
    if (mp_qmodule_kind(mods[i], &l, &s) == 'l' && s == sl && !strncmp(mods[i], m, sl)) {
      if (l < *lo) *lo = l;
      if (l > *hi) *hi = l;
    }
  }
}

static int is_value_proj(const char *m) {
  return strstr(m, "attention.self.value") || strstr(m, ".v_lin") || strstr(m, "self_attn.v_proj") ||
         strstr(m, "attn.v") || strstr(m, ".value_proj");
}
static int is_ffn_out(const char *m) {
  int out_dense = mp_str_ends_with(m, "output.dense") && !strstr(m, "attention.output") && !strstr(m, "bottleneck");
  return out_dense || strstr(m, "ffn.lin2") || mp_str_ends_with(m, ".fc2") || mp_str_ends_with(m, "mlp.Wo");
}
static int is_head_out(const char *m) {
  return !strcmp(m, "classifier") || !strcmp(m + (strlen(m) > 11 ? strlen(m) - 11 : 0), ".classifier") ||
         strstr(m, "classifier.out_proj") || strstr(m, "classification_head.out_proj");
}

mp_status mp_qrecipe_add_preset(mp_qrecipe *r, const char *name, const char *const *mods, size_t n,
                                const char *model_type, const mp_qspec *dflt) {
  char origin[64];
  snprintf(origin, sizeof origin, "%s", name);
  if (!strcmp(name, "keep-edges") || !strcmp(name, "keep-edges-float")) {
    mp_qspec keep = {0, 0, 0, MP_QMODE_AFFINE};
    if (!strcmp(name, "keep-edges")) {
      keep.quant = 1;
      keep.bits = 8;
      keep.group_size = dflt->quant && dflt->mode == MP_QMODE_AFFINE ? dflt->group_size : 64;
    }
    for (size_t i = 0; i < n; i++) {
      int l, lo, hi;
      size_t sl;
      int k = mp_qmodule_kind(mods[i], &l, &sl);
      int edge = k == 'e' || k == 'h';
      if (k == 'l') {
        stack_range(mods, n, mods[i], sl, &lo, &hi);
        edge = l == lo || l == hi;
      }
      if (edge) MP_TRY(mp_qrecipe_add(r, mods[i], &keep, origin));
    }
    return MP_OK;
  }
  int low = 0, high = 6;
  if (!strcmp(name, "mixed_2_6"))
    low = 2;
  else if (!strcmp(name, "mixed_3_4"))
    low = 3, high = 4;
  else if (!strcmp(name, "mixed_3_6"))
    low = 3;
  else if (!strcmp(name, "mixed_4_6"))
    low = 4;
  else
    return mp_err(MP_ERR_INVALID_ARG,
                  "recipe '%s' is not known: the presets are keep-edges, keep-edges-float, and mlx-lm's "
                  "--quant-predicate names mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 (mapped to encoder modules); "
                  "use --q-override or --q-recipe-file for anything else",
                  name);
  int gs = dflt->quant && dflt->mode == MP_QMODE_AFFINE ? dflt->group_size : 64;
  size_t nv = 0;
  for (size_t i = 0; i < n; i++)
    nv += is_value_proj(mods[i]) != 0;
  if (!nv)
    return mp_err(MP_ERR_INVALID_ARG,
                  "--quant-predicate %s: mlx-lm's mixed recipes give more bits to the value projection (v_proj) and "
                  "the feed-forward output (down_proj) of some layers, but this %s model has no separate value "
                  "projection (e.g. ModernBERT fuses Q/K/V in attn.Wqkv); use --q-recipe keep-edges or "
                  "--q-override instead",
                  name, model_type ? model_type : "");
  mp_qspec hs = {1, high, gs, MP_QMODE_AFFINE}, ls = {1, low, gs, MP_QMODE_AFFINE};
  for (size_t i = 0; i < n; i++) {
    int l, lo, hi;
    size_t sl;
    int k = mp_qmodule_kind(mods[i], &l, &sl);
    int more = 0;
    if (k == 'l' && (is_value_proj(mods[i]) || is_ffn_out(mods[i]))) {
      stack_range(mods, n, mods[i], sl, &lo, &hi);
      int L = hi - lo + 1, idx = l - lo;
      more = idx < L / 8 || idx >= 7 * L / 8 || (idx - L / 8) % 3 == 2;
    } else if (k == 'h' && is_head_out(mods[i])) {
      more = 1;
    }
    MP_TRY(mp_qrecipe_add(r, mods[i], more ? &hs : &ls, origin));
  }
  return MP_OK;
}

/* ---- recipe files */

static mp_status spec_of(const mp_json *o, const char *what, int allow_float, mp_qspec *s, const char **match) {
  if (!o || o->type != MP_JSON_OBJECT) return mp_err(MP_ERR_FORMAT, "%s:%u: expected an object", what, o ? o->line : 0);
  memset(s, 0, sizeof *s);
  s->quant = 1;
  s->mode = MP_QMODE_AFFINE;
  int has_bits = 0, is_float = 0;
  for (size_t i = 0; i < o->len; i++) {
    const char *k = o->keys[i];
    const mp_json *v = o->items[i];
    if (match && !strcmp(k, "match")) {
      if (v->type != MP_JSON_STRING || !v->len || strlen(v->str) != v->len)
        return mp_err(MP_ERR_FORMAT, "%s:%u: \"match\" must be a non-empty string (a module path or glob)", what,
                      v->line);
      *match = v->str;
    } else if (!strcmp(k, "bits") || !strcmp(k, "group_size")) {
      if (v->type != MP_JSON_NUMBER || !v->is_int || v->i <= 0 || v->i > 4096)
        return mp_err(MP_ERR_FORMAT, "%s:%u: \"%s\" must be a positive integer", what, v->line, k);
      if (!strcmp(k, "bits"))
        s->bits = (int)v->i, has_bits = 1;
      else
        s->group_size = (int)v->i;
    } else if (!strcmp(k, "mode")) {
      if (v->type != MP_JSON_STRING || mp_qmode_parse(v->str, &s->mode))
        return mp_err(MP_ERR_FORMAT, "%s:%u: \"mode\" must be affine, mxfp4, nvfp4 or mxfp8", what, v->line);
    } else if (allow_float && !strcmp(k, "float")) {
      if (v->type != MP_JSON_BOOL || !v->boolean)
        return mp_err(MP_ERR_FORMAT, "%s:%u: \"float\" can only be true (leave it out to quantize)", what, v->line);
      is_float = 1;
    } else {
      return mp_err(MP_ERR_FORMAT, "%s:%u: key \"%s\" is not part of a recipe rule (match, bits, group_size, mode%s)",
                    what, v->line, k, allow_float ? ", float" : "");
    }
  }
  if (match && !*match) return mp_err(MP_ERR_FORMAT, "%s:%u: a rule needs \"match\"", what, o->line);
  if (is_float) {
    if (has_bits || s->group_size) return mp_err(MP_ERR_FORMAT, "%s:%u: a float rule takes no bits", what, o->line);
    s->quant = 0;
    return MP_OK;
  }
  if (!has_bits) s->bits = mp_qmode_default_bits(s->mode);
  if (!s->group_size) s->group_size = mp_qmode_default_group(s->mode);
  char w[600];
  snprintf(w, sizeof w, "%s:%u", what, o->line);
  return check_spec(s, w) ? MP_ERR_FORMAT : MP_OK;
}

mp_status mp_qrecipe_parse(mp_qrecipe *r, const char *text, size_t len, const char *what, const char *model_type) {
  mp_json *root = NULL;
  MP_TRY(mp_json_parse(text, len, what, &r->arena, &root));
  const mp_json *o = root;
  if (o->type == MP_JSON_OBJECT && mp_json_get(o, "recipe") && !mp_json_get(o, "mlxport_recipe"))
    o = mp_json_get(o, "recipe"); /* a conversion_metadata.json */
  if (!o || o->type != MP_JSON_OBJECT || !mp_json_get(o, "mlxport_recipe"))
    return mp_err(MP_ERR_FORMAT,
                  "%s: not an mlxport recipe (expected an object with \"mlxport_recipe\": 1, or a "
                  "conversion_metadata.json with a \"recipe\")",
                  what);
  for (size_t i = 0; i < o->len; i++) {
    const char *k = o->keys[i];
    const mp_json *v = o->items[i];
    if (!strcmp(k, "mlxport_recipe")) {
      if (v->type != MP_JSON_NUMBER || !v->is_int || v->i != 1)
        return mp_err(MP_ERR_FORMAT, "%s:%u: \"mlxport_recipe\" version must be 1", what, v->line);
    } else if (!strcmp(k, "model_type")) {
      if (v->type != MP_JSON_STRING || strlen(v->str) != v->len)
        return mp_err(MP_ERR_FORMAT, "%s:%u: \"model_type\" must be a string", what, v->line);
      r->model_type = v->str;
    } else if (!strcmp(k, "default")) {
      MP_TRY(spec_of(v, what, 0, &r->dflt, NULL));
      r->has_default = 1;
    } else if (!strcmp(k, "rules")) {
      if (v->type != MP_JSON_ARRAY) return mp_err(MP_ERR_FORMAT, "%s:%u: \"rules\" must be an array", what, v->line);
      for (size_t j = 0; j < v->len; j++) {
        mp_qspec s;
        const char *m = NULL;
        MP_TRY(spec_of(v->items[j], what, 1, &s, &m));
        MP_TRY(mp_qrecipe_add(r, m, &s, what));
      }
    } else if (!strcmp(k, "search") || !strcmp(k, "note") || !strcmp(k, "source")) {
      /* informational (what the search measured, where the recipe came from) */
    } else {
      return mp_err(MP_ERR_FORMAT,
                    "%s:%u: key \"%s\" is not part of a recipe (mlxport_recipe, model_type, default, rules, search, "
                    "note, source)",
                    what, v->line, k);
    }
  }
  if (!r->model_type) return mp_err(MP_ERR_FORMAT, "%s: the recipe has no \"model_type\"", what);
  if (model_type && strcmp(model_type, r->model_type))
    return mp_err(MP_ERR_INVALID_ARG,
                  "%s: this recipe was made for model_type \"%s\" but the model is \"%s\": module names and "
                  "sensitivities differ between architectures; make a recipe for this model (--q-auto or "
                  "--q-override)",
                  what, r->model_type, model_type);
  return MP_OK;
}

mp_status mp_qrecipe_load_file(mp_qrecipe *r, const char *path, const char *model_type) {
  FILE *f = fopen(path, "rb");
  if (!f) return mp_err_errno(MP_ERR_NOT_FOUND, "%s: cannot open the recipe file", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 65536 > cap) {
      cap = cap ? 2 * cap : 131072;
      if (cap > (64u << 20)) {
        free(buf);
        fclose(f);
        return mp_err(MP_ERR_FORMAT, "%s: recipe file larger than 64 MB", path);
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return mp_err(MP_ERR_NOMEM, "out of memory");
      }
      buf = nb;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0) break;
  }
  fclose(f);
  mp_status s = mp_qrecipe_parse(r, buf, n, path, model_type);
  free(buf);
  return s;
}
