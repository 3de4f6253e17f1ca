/* libFuzzer target: the Parquet reader (footer Thrift decoding, pages, levels, encodings,
 * decompression) on arbitrary bytes. Seeds: fuzz/corpus/fuzz_parquet/ (small pyarrow files made
 * by tools/make_parquet_seeds.py). */
#include <stddef.h>
#include <stdint.h>

#include "format/parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mp_parquet *pq = NULL;
  if (mp_parquet_open_mem(data, size, "fuzz", &pq) != MP_OK) return 0;
  for (size_t i = 0; i < mp_parquet_num_columns(pq); i++) {
    mp_pq_values v;
    if (mp_parquet_read_column(pq, i, &v) == MP_OK) {
      volatile size_t sink = 0;
      for (size_t r = 0; r < v.n; r++) {
        sink += v.is_null[r];
        if (!v.is_null[r] && v.type == MP_PQ_BYTE_ARRAY) sink += v.str_len[r] ? (unsigned char)v.str[r][0] : 0;
      }
      (void)sink;
    }
    mp_parquet_find_column(pq, mp_parquet_column(pq, i)->name);
  }
  mp_parquet_close(pq);
  return 0;
}
