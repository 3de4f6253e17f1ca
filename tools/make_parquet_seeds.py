"""Writes the small seed corpus of fuzz/fuzz_parquet.c (fuzz/corpus/fuzz_parquet/) with pyarrow:
every supported compression, dictionary on/off, data page v1/v2, nulls, every physical type.
Usage: python tools/make_parquet_seeds.py [OUT_DIR]"""
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "fuzz_parquet")
os.makedirs(out, exist_ok=True)
n = 40
t = pa.table({
    "s": pa.array([None if i % 7 == 0 else "x" * (i % 4) + str(i % 3) for i in range(n)], pa.string()),
    "i32": pa.array([None if i % 5 == 0 else i - 20 for i in range(n)], pa.int32()),
    "i64": pa.array([i * 1000003 for i in range(n)], pa.int64()),
    "f32": pa.array([i / 4 for i in range(n)], pa.float32()),
    "f64": pa.array([None if i % 3 == 0 else i / 3 for i in range(n)], pa.float64()),
    "b": pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
})
k = 0
for comp in ("none", "snappy", "gzip", "zstd"):
    for dic in (True, False):
        for ver in ("1.0", "2.0"):
            if (comp, dic, ver) not in {("none", True, "1.0"), ("snappy", False, "2.0"), ("gzip", True, "2.0"),
                                        ("zstd", False, "1.0"), ("zstd", True, "2.0"), ("none", False, "1.0")}:
                continue
            pq.write_table(t, os.path.join(out, f"seed_{comp}_{'dict' if dic else 'plain'}_v{ver[0]}.parquet"),
                           compression=comp, use_dictionary=dic, data_page_version=ver, row_group_size=25,
                           data_page_size=256, write_statistics=False)
            k += 1
print(f"wrote {k} seeds to {out}")
