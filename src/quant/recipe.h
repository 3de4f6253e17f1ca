/* Per-tensor quantization recipes for `mlxport convert`: --q-override rules, the encoder
 * presets (--q-recipe keep-edges, keep-edges-float), mlx-lm's --quant-predicate names mapped
 * to encoder modules, and recipe files (--q-recipe-file; written by --q-auto into
 * conversion_metadata.json). See docs/quantization.md ("Mixed precision").
 *
 * A recipe is an ordered list of rules "GLOB -> spec"; the first rule whose glob (fnmatch)
 * matches a layer's module path (e.g. "encoder.layer.3.attention.self.query") or its tensor
 * name ("...query.weight") decides; layers no rule matches take the default spec. */
#ifndef MP_QUANT_RECIPE_H
#define MP_QUANT_RECIPE_H
#include <stddef.h>

#include "core/arena.h"
#include "mlxport.h"
#include "quant/mlx_fp.h"

typedef struct mp_qspec {
  int quant; /* 0: keep the layer in float */
  int bits, group_size;
  mp_qmode mode;
} mp_qspec;

typedef struct mp_qrule {
  const char *glob;
  mp_qspec spec;
  const char *origin; /* "--q-override", "keep-edges", "mixed_3_6", the recipe file, ... */
  size_t matched;     /* layers this rule decided (filled by mp_qrecipe_match) */
} mp_qrule;

typedef struct mp_qrecipe {
  mp_qrule *rules;
  size_t n, cap;
  const char *model_type; /* recipe files: the architecture the recipe was made for */
  int has_default;        /* recipe files: a "default" spec was given */
  mp_qspec dflt;
  mp_arena arena; /* owns every string */
} mp_qrecipe;

void mp_qrecipe_init(mp_qrecipe *r);
void mp_qrecipe_free(mp_qrecipe *r);

/* "none" or "BITS[:GROUP[:MODE]]" -> spec. GROUP left out (or empty) takes the mode's default
 * when MODE is an fp mode, else dflt_group; MODE left out is affine. Errors (MP_ERR_INVALID_ARG)
 * name `what` and say what MLX allows. */
mp_status mp_qspec_parse(const char *s, int dflt_group, const char *what, mp_qspec *out);
/* "8-bit affine g64", "float", "mxfp4" ... (static buffer per call site: buf) */
const char *mp_qspec_str(const mp_qspec *s, char *buf, size_t n);
int mp_qspec_equal(const mp_qspec *a, const mp_qspec *b);

/* Appends one rule. */
mp_status mp_qrecipe_add(mp_qrecipe *r, const char *glob, const mp_qspec *spec, const char *origin);
/* --q-override GLOB=SPEC (see mp_qspec_parse). */
mp_status mp_qrecipe_add_override(mp_qrecipe *r, const char *arg, int dflt_group);

/* Presets over the model's layer modules (module paths, e.g. from the checkpoint's 2-D
 * weights): "keep-edges" (embeddings, first and last encoder layer of each stack, pooler and
 * classifier head at 8-bit affine, group dflt->group_size if affine else 64), "keep-edges-float"
 * (the same kept in float), and mlx-lm's predicates "mixed_2_6", "mixed_3_4", "mixed_3_6",
 * "mixed_4_6" (value projection and feed-forward output of the first/last eighth and every
 * third layer, and the classifier output, at the high bits; the rest at the low bits; affine,
 * group dflt->group_size). Unknown names and predicates that do not map onto the model (no
 * separate value projection, e.g. ModernBERT's fused Wqkv) are MP_ERR_INVALID_ARG with the
 * reason and what to use instead. */
mp_status mp_qrecipe_add_preset(mp_qrecipe *r, const char *name, const char *const *modules, size_t n_modules,
                                const char *model_type, const mp_qspec *dflt);

/* Parses a recipe (a recipe object, or a conversion_metadata.json holding one under
 * "recipe"); `what` names the source in errors. A recipe for another model_type than
 * `model_type` (when non-NULL) is refused. */
mp_status mp_qrecipe_parse(mp_qrecipe *r, const char *text, size_t len, const char *what, const char *model_type);
mp_status mp_qrecipe_load_file(mp_qrecipe *r, const char *path, const char *model_type);

/* First rule matching module or tensor name (NULL: none); counts the match. */
const mp_qrule *mp_qrecipe_match(mp_qrecipe *r, const char *module, const char *tensor_name);

/* Which group of the encoder a module belongs to, for presets and the recipe search:
 * returns 'e' (embeddings), 'h' (pooler / classifier head), 'l' (inside encoder layer *layer of
 * the stack named by the prefix before "layer(s).N."; *stack_len its length), 'o' (other). */
int mp_qmodule_kind(const char *module, int *layer, size_t *stack_len);
#endif
