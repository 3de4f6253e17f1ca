/* Locating built-in datasets (sst2, stsb, mnli, ...) on this machine: --data-dir, then
 * $MLXPORT_DATA (colon-separated folders), then the shared data folder beside the checkout
 * (<checkout>/../shared/datasets), then ./../shared/datasets and ./shared/datasets. Each key has
 * a fixed relative path in those folders (e.g. mnli -> mnli/validation_matched/dev.jsonl). */
#ifndef MP_EVAL_DATA_DIRS_H
#define MP_EVAL_DATA_DIRS_H
#include <stddef.h>

#include "mlxport.h"

const char *mp_data_relpath(const char *key);
size_t mp_data_dirs(const char *explicit_dir, char dirs[][1024], size_t cap);
/* Malloc'd path of the key's file, or MP_ERR_NOT_FOUND saying where it looked and what to do. */
mp_status mp_data_find(const char *key, const char *explicit_dir, char **out);
#endif
