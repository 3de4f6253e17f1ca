/* A small, defensive ZIP reader (read only). Finds the end of central directory record (and
 * the ZIP64 records when present), reads every central directory entry and checks each local
 * header against it. Every offset and size is bound-checked against the archive size; errors
 * name the archive and the entry. STORED entries are read in place (pointer into the mapping),
 * DEFLATE entries are inflated with zlib. No encryption, no multi-disk archives. */
#ifndef MP_FORMAT_ZIP_H
#define MP_FORMAT_ZIP_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef struct mp_zip mp_zip;

typedef struct mp_zip_entry {
  const char *name; /* NUL-terminated (entries with a NUL inside the name are refused) */
  size_t name_len;
  uint16_t method; /* 0 = stored, 8 = deflate */
  uint32_t crc32;
  uint64_t comp_size;     /* bytes in the archive */
  uint64_t size;          /* bytes once extracted */
  uint64_t header_offset; /* local file header */
  uint64_t data_offset;   /* first byte of the (compressed) data */
} mp_zip_entry;

/* Maps `path` read-only and parses its central directory. */
mp_status mp_zip_open(const char *path, mp_zip **out);
/* Same over a buffer the caller keeps alive until mp_zip_close; `what` names it in errors. */
mp_status mp_zip_open_memory(const void *data, size_t size, const char *what, mp_zip **out);
void mp_zip_close(mp_zip *z);

const char *mp_zip_name(const mp_zip *z); /* the archive's path or `what` */
size_t mp_zip_count(const mp_zip *z);
const mp_zip_entry *mp_zip_at(const mp_zip *z, size_t i);           /* central directory order */
const mp_zip_entry *mp_zip_find(const mp_zip *z, const char *name); /* NULL if absent */

/* The bytes of an entry. STORED: *data points into the archive and *owned is NULL; DEFLATE:
 * the entry is inflated into a malloc'd buffer returned in *owned (free() it) and *data ==
 * *owned. Entries larger than max_size are refused (0 = no limit). Inflated entries are always
 * CRC-32 checked; stored entries only when `verify` is set (so that tensor data stays a lazy
 * view of the mapping: pass verify for small records, call mp_zip_verify later for the rest). */
mp_status mp_zip_read(const mp_zip *z, const mp_zip_entry *e, uint64_t max_size, int verify, const uint8_t **data,
                      size_t *size, void **owned);
/* Checks an entry's CRC-32 (reads all of it; inflates DEFLATE entries into a temporary). */
mp_status mp_zip_verify(const mp_zip *z, const mp_zip_entry *e);
#endif
