/* PyTorch checkpoints (pytorch_model.bin): zip archive + pickle, read WITHOUT executing
 * anything. A restricted unpickler accepts only the opcodes and globals a state dict uses
 * (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage, ...) and refuses
 * anything else with MP_ERR_SECURITY naming the offending global. Also reads the legacy
 * (pre-1.6, non-zip) serialization if present. */
#ifndef MP_FORMAT_TORCH_PICKLE_H
#define MP_FORMAT_TORCH_PICKLE_H
#include <stddef.h>

#include "core/tensor.h"
#include "mlxport.h"

typedef struct mp_torch_file mp_torch_file;

mp_status mp_torch_open(const char *path, mp_torch_file **out);
void mp_torch_close(mp_torch_file *tf);
size_t mp_torch_count(const mp_torch_file *tf);
/* Tensors in state-dict order. Data is row-major contiguous (non-contiguous views are copied
 * into memory owned by tf); names are the state-dict keys. */
const mp_tensor *mp_torch_at(const mp_torch_file *tf, size_t i);
const mp_tensor *mp_torch_find(const mp_torch_file *tf, const char *name);

/* Same over a buffer the caller keeps alive until mp_torch_close (tests, fuzzing); `what`
 * names it in error messages. */
mp_status mp_torch_open_memory(const void *data, size_t size, const char *what, mp_torch_file **out);
/* Checks the CRC-32 of every record of a zip checkpoint (reads the whole file). Opening checks
 * only data.pkl and the small records, so that tensor data stays a lazy view of the mapping;
 * the legacy layout has no checksums (MP_OK). */
mp_status mp_torch_verify(const mp_torch_file *tf);
/* The path (or `what`) the file was opened from. */
const char *mp_torch_path(const mp_torch_file *tf);

/* Unpickle a state dict from a raw pickle stream (for the fuzzer): validates opcodes and
 * globals, resolves storages through `storage_lookup` = NULL (metadata only). */
mp_status mp_torch_check_pickle(const void *data, size_t size, const char *what);
#endif
