/* Name -> index hash map (open addressing, FNV-1a) used by the safetensors reader, the writer
 * and the weights table for O(1) tensor lookups. Keys are borrowed: they must stay valid (and
 * unchanged) while the index is used. Internal to src/format/. */
#ifndef MP_FORMAT_NAME_INDEX_H
#define MP_FORMAT_NAME_INDEX_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef struct mp_name_index {
  const char **keys; /* slot -> key (NULL = empty) */
  size_t *vals;
  size_t cap; /* power of two */
  size_t count;
} mp_name_index;

void mp_name_index_init(mp_name_index *ix);
void mp_name_index_free(mp_name_index *ix);
/* Inserts key -> val. When the key is already present, leaves the map unchanged, stores the
 * existing value in *existing (if not NULL) and returns MP_ERR_INVALID_ARG without setting an
 * error message (callers word the duplicate for their context). MP_ERR_NOMEM on OOM. */
mp_status mp_name_index_put(mp_name_index *ix, const char *key, size_t val, size_t *existing);
/* 1 and *val when found, 0 otherwise. */
int mp_name_index_get(const mp_name_index *ix, const char *key, size_t *val);
#endif
