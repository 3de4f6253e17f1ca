/* Minimal Apache Parquet reader for flat evaluation tables (the Hugging Face hub's dataset
 * files): own Thrift compact-protocol decoder for the footer, row groups, column chunks, data
 * pages v1 and v2, dictionary pages, PLAIN and RLE_DICTIONARY / PLAIN_DICTIONARY encodings,
 * RLE/bit-packed definition levels (optional flat columns), UNCOMPRESSED / SNAPPY / GZIP / ZSTD
 * pages. Physical types BOOLEAN, INT32, INT64, FLOAT, DOUBLE, BYTE_ARRAY. Nested schemas are
 * refused (MP_ERR_UNSUPPORTED). Every offset and length is bounds-checked. */
#ifndef MP_FORMAT_PARQUET_H
#define MP_FORMAT_PARQUET_H
#include <stddef.h>
#include <stdint.h>

#include "mlxport.h"

typedef enum mp_pq_type {
  MP_PQ_BOOLEAN = 0,
  MP_PQ_INT32 = 1,
  MP_PQ_INT64 = 2,
  MP_PQ_INT96 = 3,
  MP_PQ_FLOAT = 4,
  MP_PQ_DOUBLE = 5,
  MP_PQ_BYTE_ARRAY = 6,
  MP_PQ_FIXED_LEN_BYTE_ARRAY = 7,
} mp_pq_type;
const char *mp_pq_type_name(mp_pq_type t);

typedef struct mp_pq_column_info {
  const char *name;
  mp_pq_type type;
  int optional; /* repetition OPTIONAL (may hold nulls) */
} mp_pq_column_info;

/* A whole column read across all row groups. Arrays are owned by the mp_parquet. For each row
 * r < n: is_null[r]; INT32/INT64/BOOLEAN in i64[r]; FLOAT/DOUBLE in f64[r]; BYTE_ARRAY in
 * str[r] (NUL-terminated copy, may contain NULs) / str_len[r]. */
typedef struct mp_pq_values {
  mp_pq_type type;
  size_t n;
  const uint8_t *is_null;
  const int64_t *i64;
  const double *f64;
  const char *const *str;
  const uint32_t *str_len;
} mp_pq_values;

typedef struct mp_parquet mp_parquet;

mp_status mp_parquet_open(const char *path, mp_parquet **out);
/* Reads from memory (copied); `what` names the source in messages. */
mp_status mp_parquet_open_mem(const void *data, size_t n, const char *what, mp_parquet **out);
void mp_parquet_close(mp_parquet *pq);

int64_t mp_parquet_num_rows(const mp_parquet *pq);
size_t mp_parquet_num_columns(const mp_parquet *pq);
const mp_pq_column_info *mp_parquet_column(const mp_parquet *pq, size_t i);
/* Index of the column named `name`, or -1. */
int mp_parquet_find_column(const mp_parquet *pq, const char *name);
/* Decodes column i of every row group. Errors name the file, column, row group and page. */
mp_status mp_parquet_read_column(mp_parquet *pq, size_t i, mp_pq_values *out);
#endif
