/* The model card (README.md of an MLX folder) as the Hub expects it (docs/card.md): YAML front
 * matter (library_name: mlx, tags, base_model + base_model_relation: quantized, pipeline_tag,
 * the source card's license, model-index results per evaluated dataset) and a body with how the
 * model was converted, how to use it, and the evaluation (original vs converted, gates).
 *
 * `mlxport convert` writes the card; `mlxport eval` (and the pipeline) add evaluations: each
 * comparison document is kept in <folder>/mlxport_evaluations.json (one per dataset, the last
 * one wins) and the card's model-index and the section between the markers
 *   <!-- mlxport:evaluation:start --> ... <!-- mlxport:evaluation:end -->
 * are rebuilt from them. Writes are atomic (temp + fsync + rename) under a flock of the folder. */
#ifndef MP_HUB_CARD_H
#define MP_HUB_CARD_H
#include <stddef.h>

#include "core/json.h"
#include "core/strbuf.h"
#include "mlxport.h"

#define MP_CARD_EVAL_START "<!-- mlxport:evaluation:start -->"
#define MP_CARD_EVAL_END "<!-- mlxport:evaluation:end -->"

typedef struct mp_card_info {
  const char *title;                                 /* the folder name */
  const char *base_model;                            /* the source repo id, or NULL for a local source */
  const char *source;                                /* what was converted (repo id or path) */
  const char *source_commit;                         /* the source snapshot's commit, or NULL */
  const char *license, *license_name, *license_link; /* from the source card (NULL: none) */
  const char *pipeline_tag;  /* sentence-similarity, feature-extraction, text-classification, ... */
  int sentence_transformers; /* the source has modules.json (pooling modules copied) */
  int quantized, bits, group_size;
  const char *mode;    /* MLX quantization mode of the default: affine, mxfp4, nvfp4, mxfp8 */
  const char *recipe;  /* per-layer recipe (JSON) when layers differ from the default, else NULL */
  int recipe_searched; /* the recipe was found by convert --q-auto */
  const char *dtype;   /* float dtype of the other tensors */
  size_t n_quantized, n_float_layers;
  double source_mb, output_mb;
  const char *command; /* the exact command line, or NULL */
} mp_card_info;

/* The whole card as convert writes it (evaluation section: "not evaluated yet"). */
void mp_card_render(mp_sb *sb, const mp_card_info *ci);
/* license / license_name / license_link of a card's front matter (a source README.md); the
 * strings live in `arena`. Missing file or field: NULL, no error. */
void mp_card_source_license(const char *readme_path, mp_arena *arena, const char **license, const char **name,
                            const char **link);

/* Records an evaluation (a comparison document as `mlxport eval --json` prints it) in a
 * converted folder and rebuilds its card. `command` is shown in the card; `note` (may be NULL)
 * replaces the publishing note (e.g. "uploaded although a gate failed"). A folder without an
 * mlxport card (no markers) is left alone: *updated = 0. */
mp_status mp_card_add_evaluation(const char *model_dir, const mp_json *comparison, const char *command, int *updated);
/* Sets (or clears, note = NULL) the publishing note shown in the evaluation section. */
mp_status mp_card_set_note(const char *model_dir, const char *note);
/* 1 when every recorded evaluation passed its gates (0 when one failed, -1 when none is recorded). */
int mp_card_gates_passed(const char *model_dir);

/* Rebuilds README text `card` from recorded evaluations `evals` (JSON object {"evaluations":
 * [...], "note": ...}): the model-index block of the front matter and the marked section. */
mp_status mp_card_rebuild(const char *card, size_t n, const mp_json *evals, const char *title, mp_sb *out);
#endif
