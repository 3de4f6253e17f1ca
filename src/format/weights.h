/* The weights table: one name -> tensor view map over whatever a checkpoint is made of
 * (model.safetensors, sharded safetensors + index, pytorch_model.bin, sharded .bin + index).
 * Convert, run, eval and inspect all read weights through this. Views are row-major
 * contiguous and stay valid until mp_weights_close. */
#ifndef MP_FORMAT_WEIGHTS_H
#define MP_FORMAT_WEIGHTS_H
#include <stddef.h>

#include "core/tensor.h"
#include "mlxport.h"

typedef struct mp_weights mp_weights;

typedef enum mp_weights_format {
  MP_WEIGHTS_SAFETENSORS = 1,
  MP_WEIGHTS_SAFETENSORS_SHARDED,
  MP_WEIGHTS_TORCH,
  MP_WEIGHTS_TORCH_SHARDED,
} mp_weights_format;

/* `path`: a weights file or a model folder. In a folder, the preference is model.safetensors,
 * model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json. */
mp_status mp_weights_open(const char *path, mp_weights **out);
void mp_weights_close(mp_weights *w);
mp_weights_format mp_weights_get_format(const mp_weights *w);
size_t mp_weights_count(const mp_weights *w);
const mp_tensor *mp_weights_at(const mp_weights *w, size_t i);
const mp_tensor *mp_weights_find(const mp_weights *w, const char *name);
/* The weight files the table was read from (for hashing and size on disk). */
size_t mp_weights_file_count(const mp_weights *w);
const char *mp_weights_file(const mp_weights *w, size_t i);
/* The file that holds table entry i (one of mp_weights_file). */
const char *mp_weights_file_of(const mp_weights *w, size_t i);
/* safetensors __metadata__ of the first file (NULL if absent). */
const char *mp_weights_metadata(const mp_weights *w, const char *key);
#endif
