#include "eval/parquet.h"
#include "core/error.h"
struct mp_parquet { int unused; };
const char *mp_pq_type_name(mp_pq_type t) { (void)t; return "?"; }
mp_status mp_parquet_open(const char *path, mp_parquet **out) { *out = 0; return mp_err(MP_ERR_UNSUPPORTED, "%s: Parquet reader not built yet", path); }
mp_status mp_parquet_open_mem(const void *d, size_t n, const char *what, mp_parquet **out) { (void)d; (void)n; *out = 0; return mp_err(MP_ERR_UNSUPPORTED, "%s: Parquet reader not built yet", what); }
void mp_parquet_close(mp_parquet *pq) { (void)pq; }
int64_t mp_parquet_num_rows(const mp_parquet *pq) { (void)pq; return 0; }
size_t mp_parquet_num_columns(const mp_parquet *pq) { (void)pq; return 0; }
const mp_pq_column_info *mp_parquet_column(const mp_parquet *pq, size_t i) { (void)pq; (void)i; return 0; }
int mp_parquet_find_column(const mp_parquet *pq, const char *name) { (void)pq; (void)name; return -1; }
mp_status mp_parquet_read_column(mp_parquet *pq, size_t i, mp_pq_values *out) { (void)pq; (void)i; (void)out; return mp_err(MP_ERR_UNSUPPORTED, "Parquet reader not built yet"); }
