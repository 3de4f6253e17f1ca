/* Hugging Face checkpoint -> MLX model folder (`mlxport convert`), see docs/convert.md.
 *
 * The output folder holds model.safetensors (or shards + model.safetensors.index.json) with
 * metadata {"format": "mlx"}, config.json (with mlx-lm's "quantization" block and its
 * "quantization_config" mirror when quantized), the tokenizer and sentence-transformers files,
 * a README.md model card and conversion_metadata.json. It is assembled in a temporary folder
 * beside the output and renamed into place at the end: the output appears whole or not at all.
 * Tensors are converted one at a time and streamed into the output file. */
#ifndef MP_QUANT_CONVERT_H
#define MP_QUANT_CONVERT_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"
#include "quant/mlx_affine.h"
#include "quant/recipe.h"

typedef struct mp_convert_opts {
  const char *hf_path;  /* folder, weights file, or repo id in the HF cache */
  const char *mlx_path; /* output folder */
  int quantize;         /* -q */
  int bits;             /* default 4 */
  int group_size;       /* default 64 */
  mp_qmode mode;        /* default affine; bits/group_size must be the mode's own for fp modes */
  /* Per-layer control (docs/quantization.md, "Mixed precision"); the first matching rule wins,
   * in this order: q_override, the recipe file, `recipe`, the q_recipe preset, quant_predicate. */
  const char *const *q_override; /* "GLOB=BITS[:GROUP[:MODE]]" or "GLOB=none" */
  size_t n_q_override;
  const char *q_recipe_file;   /* recipe file or conversion_metadata.json (its "default" replaces
                                  bits/group_size/mode); refused for another model_type */
  const mp_qrecipe *recipe;    /* rules from the caller (the --q-auto search), may be NULL */
  const char *q_recipe;        /* preset: keep-edges, keep-edges-float */
  const char *quant_predicate; /* mlx-lm names: mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6 */
  const char *search_json;     /* recorded as the recipe's "search" object (a JSON object), may be NULL */
  mp_dtype dtype;              /* MP_DTYPE_INVALID: config torch_dtype, else float16 */
  const char *const *q_skip;   /* glob patterns of layers (module paths or tensor names) kept in float */
  size_t n_q_skip;
  int no_skip;              /* reconvert even when OUT already holds this conversion */
  int dry_run;              /* plan only: nothing is written */
  uint64_t max_shard_bytes; /* 0: 5 GiB like mlx-lm */
  mp_qcompat compat;
  const char *command;           /* the command line, shown in the model card (NULL: none) */
  volatile sig_atomic_t *cancel; /* optional: set to non-zero (e.g. by a signal) to stop cleanly */
  /* optional: called before each tensor is written (done counts from 1 to total) */
  void (*progress)(void *user, size_t done, size_t total, const char *tensor);
  void *progress_user;
} mp_convert_opts;

void mp_convert_opts_init(mp_convert_opts *o);

typedef struct mp_convert_result {
  const char *status; /* "converted", "skipped" or "planned" */
  size_t n_tensors, n_quantized, n_cast, n_copied, n_dropped, n_float_layers;
  uint64_t source_bytes, output_bytes;
  double seconds;
  char *json; /* malloc'd summary (with the plan for a dry run), one JSON object */
} mp_convert_result;

mp_status mp_convert(const mp_convert_opts *o, mp_convert_result *r);
void mp_convert_result_free(mp_convert_result *r);

/* Is this tensor the weight of a Linear or Embedding layer (what mlx.nn.quantize quantizes)?
 * Rule for Hugging Face checkpoints: a 2-D float tensor whose name ends in ".weight" (LayerNorm
 * weights are 1-D, convolutions 3-D). Exposed for verify-weights and tests. */
int mp_convert_is_layer_weight(const char *name, mp_dtype dt, int ndim);
#endif
