/* safetensors: validating mmap reader and atomic writer (single file and sharded).
 * Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]},
 * "__metadata__": {str: str}}, then the data block; offsets are relative to the data block. */
#ifndef MP_FORMAT_SAFETENSORS_H
#define MP_FORMAT_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "mlxport.h"

typedef struct mp_safetensors mp_safetensors;

/* Maps and fully validates a file (header bound, JSON, dtype whitelist, shape x dtype size ==
 * byte span, offsets in bounds, no overlap, every byte of the data block accounted for). */
mp_status mp_safetensors_open(const char *path, mp_safetensors **out);
/* Same validation over a buffer the caller keeps alive (used by the fuzzer and tests). */
mp_status mp_safetensors_open_memory(const void *data, size_t size, const char *what, mp_safetensors **out);
void mp_safetensors_close(mp_safetensors *st);
size_t mp_safetensors_count(const mp_safetensors *st);
/* Tensors in file order (ascending data offset). Views point into the mapping. */
const mp_tensor *mp_safetensors_at(const mp_safetensors *st, size_t i);
const mp_tensor *mp_safetensors_find(const mp_safetensors *st, const char *name);
size_t mp_safetensors_metadata_count(const mp_safetensors *st);
void mp_safetensors_metadata_at(const mp_safetensors *st, size_t i, const char **key, const char **value);
const char *mp_safetensors_metadata(const mp_safetensors *st, const char *key); /* NULL if absent */
const char *mp_safetensors_path(const mp_safetensors *st);
/* Byte offset of the data block in the file (8 + header length); tensor data of a view t lives
 * at file offset data_offset + ((const uint8_t *)t->data - data_block_start). */
uint64_t mp_safetensors_data_offset(const mp_safetensors *st);
/* Size of the file (or buffer) in bytes. */
uint64_t mp_safetensors_file_size(const mp_safetensors *st);
/* Note: the format does not align tensors; files written by other tools may place a tensor at
 * any byte offset, so view data is only guaranteed 1-byte aligned (use memcpy or unaligned
 * loads). Files written by mp_st_writer are aligned to the element size (see below). */

/* Writer: add tensors (data copied or referenced until finish), then finish writes the file
 * atomically (temp + fsync + rename). The header is padded with spaces to a multiple of 8 bytes
 * as the reference implementation does. The format forbids gaps between tensors, so data is laid
 * out in insertion order within each element size, larger element sizes first (8, 4, 2, 1
 * bytes): every tensor then starts at a multiple of its element size. Header entries follow the
 * data order, "__metadata__" (if any) first. */
typedef struct mp_st_writer mp_st_writer;
mp_status mp_st_writer_create(mp_st_writer **out);
mp_status mp_st_writer_set_metadata(mp_st_writer *w, const char *key, const char *value);
/* `data` must stay valid until finish/free (no copy); nbytes must equal numel x dtype size. */
mp_status mp_st_writer_add(mp_st_writer *w, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                           const void *data, size_t nbytes);
/* Like add, but the writer keeps its own copy of the data. */
mp_status mp_st_writer_add_copy(mp_st_writer *w, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                                const void *data, size_t nbytes);
mp_status mp_st_writer_finish(mp_st_writer *w, const char *path);
/* Sharded output: when the total exceeds max_shard_bytes (0 = never shard), writes
 * <stem>-00001-of-0000N.safetensors ... and <stem>.safetensors.index.json
 * ({"metadata": {"total_size": N}, "weight_map": {name: file}}) into dir; otherwise a single
 * <stem>.safetensors. out_files (optional) receives the number of weight files written.
 * Shards are split exactly as huggingface_hub does (insertion order, a tensor larger than the
 * limit alone in its shard); every shard carries the metadata. After success, weight files of an
 * earlier write with the same stem that the new output does not contain (<stem>.safetensors,
 * the index, <stem>-DDDDD-of-DDDDD.safetensors) are removed from dir. */
mp_status mp_st_writer_finish_sharded(mp_st_writer *w, const char *dir, const char *stem, uint64_t max_shard_bytes,
                                      int *out_files);
uint64_t mp_st_writer_total_bytes(const mp_st_writer *w);
void mp_st_writer_free(mp_st_writer *w);
#endif
