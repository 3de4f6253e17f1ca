/* mlxport public API, the umbrella header: include this one.
 *
 * libmlxport converts Hugging Face encoder models to MLX format, runs original and converted
 * models natively, evaluates and compares them. Areas, one header each:
 *   mlxport/common.h     versions, mlxport_status, errors, logging, mlxport_free
 *   mlxport/model.h      mlxport_model: embed, classify, zero-shot, token embeddings
 *   mlxport/tokenizer.h  mlxport_tokenizer: encode (single, batch), decode, vocabulary
 *   mlxport/convert.h    mlxport_convert: Hugging Face -> MLX folder, progress, cancel
 *   mlxport/eval.h       mlxport_evaluator: datasets, metrics, comparison, gates
 * Reference: docs/api/ (one page per function). Build: pkg-config --cflags --libs mlxport, or
 * find_package(mlxport) and target_link_libraries(app mlxport::mlxport).
 */
#ifndef MLXPORT_H
#define MLXPORT_H

#include "mlxport/common.h"
#include "mlxport/convert.h"
#include "mlxport/eval.h"
#include "mlxport/model.h"
#include "mlxport/tokenizer.h"

/* The library's own sources (and its CLI, tests and tools, built from the source tree) also get
 * the internal base definitions; an installed program never defines MLXPORT_BUILDING. */
#if defined(MLXPORT_BUILDING)
#include "core/base.h"
#endif

#endif /* MLXPORT_H */
