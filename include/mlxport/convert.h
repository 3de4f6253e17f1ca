/* mlxport public API: the converter. A Hugging Face checkpoint (folder, weights file or cached
 * repo id) becomes an MLX model folder: safetensors with format=mlx, MLX affine quantization
 * bit-exact with mx.quantize, mlx-lm's quantization config, tokenizer, model card
 * (docs/convert.md). The folder is assembled beside the output and renamed into place: it
 * appears whole or not at all.
 *
 *   mlxport_convert_options o;
 *   mlxport_convert_options_init(&o);
 *   o.source = "sentence-transformers/all-MiniLM-L6-v2"; o.output = "minilm-4bit"; o.quantize = 1;
 *   if (mlxport_convert(&o, NULL)) fprintf(stderr, "%s\n", mlxport_last_error());
 */
#ifndef MLXPORT_CONVERT_H
#define MLXPORT_CONVERT_H

#include "mlxport/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress: called before each tensor is written, done = 1..total. Return nothing; to stop,
 * set *options.cancel from anywhere (a signal handler included). */
typedef void (*mlxport_progress_fn)(void *user, size_t done, size_t total, const char *tensor);

typedef struct mlxport_convert_options {
  size_t struct_size;      /* sizeof(mlxport_convert_options); set by _init. Fields beyond the
                              caller's struct_size take their defaults (newer library, older program) */
  const char *source;      /* folder, weights file, or repo id ("org/name[@revision]"); required */
  const char *output;      /* output folder; required */
  int quantize;            /* 1: MLX affine quantization of Linear and Embedding weights */
  int bits;                /* 2, 3, 4, 5, 6 or 8 (default 4) */
  int group_size;          /* 32, 64 or 128 (default 64) */
  const char *dtype;       /* "float16", "bfloat16", "float32"; NULL: config torch_dtype, else float16 */
  const char *const *skip; /* glob patterns of layers kept in float (module paths or tensor names) */
  size_t n_skip;
  int force;                    /* 1: convert again even when output holds this conversion */
  int dry_run;                  /* 1: plan only, nothing written */
  mlxport_progress_fn progress; /* optional */
  void *progress_user;
  volatile int *cancel; /* optional: set to non-zero to stop cleanly (MLXPORT_ERR_CANCELLED) */
} mlxport_convert_options;

/** mlxport_convert_options_init: fills o with the defaults (no quantization, 4 bits, group size
 * 64, dtype from the config) and sets o->struct_size.
 * Thread-safety: any thread. */
MLXPORT_API void mlxport_convert_options_init(mlxport_convert_options *o);

/** mlxport_convert: converts options->source into the MLX folder options->output.
 * summary_json: optional (NULL: not wanted); receives a library-allocated JSON object with
 *   "status" ("converted", "skipped" when output already holds this conversion, or "planned"
 *   for a dry run), tensor counts, sizes and, for a dry run, the plan.
 * Ownership: free *summary_json with mlxport_free.
 * Errors: MLXPORT_ERR_INVALID_ARG (missing source/output, bits or group size MLX does not
 *   support, a bad dtype), MLXPORT_ERR_NOT_FOUND, MLXPORT_ERR_FORMAT (the message names the file
 *   and tensor), MLXPORT_ERR_IO, MLXPORT_ERR_CANCELLED (nothing is left half-written).
 * Thread-safety: any thread; two conversions to the same output folder at once are not
 *   supported. The progress callback runs on the calling thread. */
MLXPORT_API mlxport_status mlxport_convert(const mlxport_convert_options *options, char **summary_json);

#ifdef __cplusplus
}
#endif
#endif /* MLXPORT_CONVERT_H */
