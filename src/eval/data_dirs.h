/* Locating built-in datasets (sst2, stsb, mnli, ...) on this machine: --data-dir, then
 * $MLXPORT_DATA (colon-separated folders), then the test data folder's datasets/ by the rule of
 * docs/testing.md ($MLXPORT_TEST_DATA, the shared data folder beside the checkout
 * <checkout>/../shared/datasets, ./../shared/datasets, ./shared/datasets, the copy `make test`
 * fetched into $MP_CACHE/test-data, default <checkout>/.cache/test-data), and LAST the
 * small demo evaluation set shipped in the checkout (<checkout>/data/demo: mnli, stsb, sst2 only;
 * see data/demo/README.md), a fallback for machines without the real benchmarks. <checkout> is
 * the folder above the one holding the library's code (dladdr: <checkout>/build/mlxport, which links
 * it statically, or <checkout>/build/libmlxport.so.N), else above /proc/self/exe. Each key has a fixed relative path in
 * those folders (e.g. mnli -> mnli/validation_matched/dev.jsonl). */
#ifndef MP_EVAL_DATA_DIRS_H
#define MP_EVAL_DATA_DIRS_H
#include <stddef.h>

#include "mlxport.h"

const char *mp_data_relpath(const char *key);
size_t mp_data_dirs(const char *explicit_dir, char dirs[][1024], size_t cap);
/* Malloc'd path of the key's file, or MP_ERR_NOT_FOUND saying where it looked and what to do.
 * Before the demo set (the last resort), the key's Hugging Face Hub dataset is used: from the
 * Hugging Face cache, else downloaded (mp_data_find_ex with download = 0: cache only; never
 * downloaded when HF_HUB_OFFLINE is set). */
mp_status mp_data_find(const char *key, const char *explicit_dir, char **out);
mp_status mp_data_find_ex(const char *key, const char *explicit_dir, int download, char **out);
/* The public Hub dataset repo of a built-in key and the glob of its split's Parquet file inside
 * it ("mnli" -> "nyu-mll/glue", "mnli/validation_matched-*.parquet"); 0 when it has none. */
int mp_data_hub_source(const char *key, const char **repo, const char **pattern);
/* That Parquet file in the Hugging Face cache (download = 1: downloaded when absent). */
mp_status mp_data_find_hub(const char *key, int download, char **out);

/* The demo set's folder, relative to the checkout. */
#define MP_DATA_DEMO_DIR "data/demo"
/* 1 when path (e.g. one mp_data_find returned) lies under a data/demo folder, i.e. the embedded
 * demo set was used instead of a real benchmark: callers should say so ("using the embedded demo
 * set <path>; real datasets are preferred when present"). 0 otherwise, and for NULL. */
int mp_data_find_is_fallback(const char *path);
#endif
