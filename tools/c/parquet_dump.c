/* parquet_dump FILE: prints a Parquet file read by src/format/parquet.c as JSON:
 *   {"num_rows":N,"columns":[{"name":..,"type":..,"optional":0|1,"values":[...]}]}
 * null for null cells; strings as JSON strings; floats with 17 significant digits.
 * Exit 0 ok, 3 with the error on stderr. Used by tests/py/test_parquet.py. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/strbuf.h"
#include "format/parquet.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: parquet_dump FILE\n");
    return 2;
  }
  mp_parquet *pq = NULL;
  if (mp_parquet_open(argv[1], &pq) != MP_OK) {
    fprintf(stderr, "%s\n", mp_last_error());
    return 3;
  }
  mp_sb sb;
  mp_sb_init(&sb);
  mp_sb_printf(&sb, "{\"num_rows\":%" PRId64 ",\"columns\":[", mp_parquet_num_rows(pq));
  for (size_t c = 0; c < mp_parquet_num_columns(pq); c++) {
    const mp_pq_column_info *ci = mp_parquet_column(pq, c);
    mp_pq_values v;
    if (mp_parquet_read_column(pq, c, &v) != MP_OK) {
      fprintf(stderr, "%s\n", mp_last_error());
      mp_sb_free(&sb);
      mp_parquet_close(pq);
      return 3;
    }
    mp_sb_printf(&sb, "%s{\"name\":", c ? "," : "");
    mp_sb_json_str(&sb, ci->name, strlen(ci->name));
    mp_sb_printf(&sb, ",\"type\":\"%s\",\"optional\":%d,\"values\":[", mp_pq_type_name(ci->type), ci->optional);
    for (size_t r = 0; r < v.n; r++) {
      if (r) mp_sb_putc(&sb, ',');
      if (v.is_null[r]) {
        mp_sb_puts(&sb, "null");
        continue;
      }
      switch (v.type) {
      case MP_PQ_BOOLEAN: mp_sb_puts(&sb, v.i64[r] ? "true" : "false"); break;
      case MP_PQ_INT32:
      case MP_PQ_INT64: mp_sb_printf(&sb, "%" PRId64, v.i64[r]); break;
      case MP_PQ_FLOAT:
      case MP_PQ_DOUBLE: mp_sb_json_f64(&sb, v.f64[r]); break;
      case MP_PQ_BYTE_ARRAY: mp_sb_json_str(&sb, v.str[r], v.str_len[r]); break;
      default: mp_sb_puts(&sb, "null");
      }
    }
    mp_sb_puts(&sb, "]}");
  }
  mp_sb_puts(&sb, "]}\n");
  fwrite(sb.buf, 1, sb.len, stdout);
  mp_sb_free(&sb);
  mp_parquet_close(pq);
  return 0;
}
