/* Streaming safetensors writer for conversions that must not hold the model in memory.
 *
 * mp_st_writer (format/safetensors.h) keeps every tensor until finish. This writer is told the
 * names, dtypes and shapes first (the header is fully determined by them), writes the header,
 * and then accepts each tensor's bytes in any order, written in place with pwrite: memory stays
 * at the size of the tensor being produced. Layout is the same as mp_st_writer's: header padded
 * with spaces to a multiple of 8 bytes, "__metadata__" first, data ordered by element size
 * (8, 4, 2, 1 bytes) then by insertion order, so every tensor is aligned to its element size and
 * the data block has no gaps. The file is written atomically (temp name + fsync + rename). */
#ifndef MP_QUANT_ST_STREAM_H
#define MP_QUANT_ST_STREAM_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef struct mp_st_stream mp_st_stream;

mp_status mp_st_stream_create(mp_st_stream **out);
void mp_st_stream_free(mp_st_stream *s); /* aborts an unfinished file (the temp file is removed) */
mp_status mp_st_stream_set_metadata(mp_st_stream *s, const char *key, const char *value);
/* Declares a tensor; *index receives its handle for put. Only before begin. */
mp_status mp_st_stream_add(mp_st_stream *s, const char *name, mp_dtype dtype, int ndim, const int64_t *shape,
                           size_t *index);
size_t mp_st_stream_count(const mp_st_stream *s);
/* Bytes of the data block, and of the whole file (header included); valid before begin. */
uint64_t mp_st_stream_data_bytes(const mp_st_stream *s);
uint64_t mp_st_stream_file_bytes(const mp_st_stream *s);
/* Creates the (temporary) file and writes the header. */
mp_status mp_st_stream_begin(mp_st_stream *s, const char *path);
/* Writes bytes [offset, offset+n) of tensor `index` (each byte exactly once overall). */
mp_status mp_st_stream_put(mp_st_stream *s, size_t index, uint64_t offset, const void *data, size_t n);
/* Checks that every byte was written, then fsyncs and renames the file into place. */
mp_status mp_st_stream_finish(mp_st_stream *s);
#endif
