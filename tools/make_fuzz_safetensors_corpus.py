#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/fuzz_safetensors.c into fuzz/corpus/fuzz_safetensors/.

Valid seeds come from the reference writer (the `safetensors` package); invalid ones are small
hand-made headers covering each validation rule. Re-run to regenerate (deterministic)."""
import json
import os
import struct
import sys

import numpy as np
from safetensors.numpy import save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "fuzz_safetensors")


def raw(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def T(b, e, dtype="U8", shape=None):
    return {"dtype": dtype, "shape": [e - b] if shape is None else shape, "data_offsets": [b, e]}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    seeds = {
        "valid_mixed": save({"w": rng.standard_normal((3, 4)).astype(np.float32),
                             "b": np.arange(4, dtype=np.float16), "s": np.array(7, dtype=np.int64),
                             "z": np.zeros((0, 3), dtype=np.int32), "m": np.array([True, False])},
                            metadata={"format": "pt"}),
        "valid_all_dtypes": save({d: np.ones(2, dtype=d) for d in
                                  ["float64", "int64", "uint64", "float32", "int32", "uint32", "float16",
                                   "int16", "uint16", "int8", "uint8", "bool"]}),
        "valid_empty": raw({}),
        "valid_meta_null": raw({"__metadata__": None, "a": T(0, 2)}, b"\1\2"),
        "valid_unsorted": raw({"b": T(4, 8), "a": T(0, 4, "F32", [1]), "__metadata__": {"k": "v"}}, b"\0" * 8),
        "bad_gap": raw({"a": T(0, 4), "b": T(6, 8)}, b"\0" * 8),
        "bad_overlap": raw({"a": T(0, 4), "b": T(2, 6)}, b"\0" * 6),
        "bad_trailing": raw({"a": T(0, 4)}, b"\0" * 5),
        "bad_size": raw({"a": T(0, 4, "F32", [2])}, b"\0" * 4),
        "bad_dtype": raw({"a": T(0, 1, "F8_E4M3", [1])}, b"\0"),
        "bad_shape": raw({"a": T(0, 8, "F64", [4294967296, 4294967296])}, b"\0" * 8),
        "bad_json": raw(b'{"a":{"dtype":"F32",', b""),
        "bad_len": raw({"a": T(0, 4)}, b"\0" * 4, length=1 << 40),
        "bad_meta": raw({"__metadata__": {"k": 1}, "a": T(0, 1)}, b"\0"),
        "bad_dup": raw(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                       b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(blob)
    print(f"{len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
