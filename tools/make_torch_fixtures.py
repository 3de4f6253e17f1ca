#!/usr/bin/env python3
"""Writes PyTorch checkpoint fixtures for the torch reader tests (run by tests/py/test_torch_pickle.py
into a temporary folder; nothing here is committed as binary).

    make_torch_fixtures.py OUTDIR [--marker PATH]

Good files (same weights in every format):
  zip.bin           torch.save default (zip, pickle protocol 2)
  zip_proto4.bin    torch.save(pickle_protocol=4): FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL
  legacy.bin        torch.save(_use_new_zipfile_serialization=False) (pre-1.6 layout)
  zip_deflate.bin   zip.bin re-packed with DEFLATE (exercises the inflate path)
  zip64.bin         zip.bin re-packed with ZIP64 records everywhere
  ref.safetensors   the same weights through the `safetensors` package (contiguous copies)
  manifest.json     {name: {dtype, shape, sha256 of the row-major bytes}} from torch itself
Refused files (listed in refused.json with the status they must get):
  evil_*            pickles whose loading would run code; the payload would create --marker
  bad_*             malformed persistent ids, truncated archives/streams, big-endian byteorder
"""
import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile

import torch
from safetensors.torch import save_file

ST_DTYPE = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


class TinyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.lin = torch.nn.Linear(16, 16)
        self.norm = torch.nn.LayerNorm(16)
        self.head = torch.nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight  # tied weights: one storage, two names
        self.register_buffer("position_ids", torch.arange(20).unsqueeze(0))


def make_state_dict():
    torch.manual_seed(1234)
    m = TinyModel()
    sd = m.state_dict()  # an OrderedDict carrying _metadata, as transformers saves it
    assert hasattr(sd, "_metadata")
    base = torch.randn(12, 10)
    sd["half.weight"] = torch.randn(8, 4).half()
    sd["bf16.weight"] = torch.randn(4, 6).to(torch.bfloat16)
    sd["double.weight"] = torch.randn(3, 2, dtype=torch.float64)
    sd["transposed.weight"] = base.t()  # non-contiguous [10, 12]
    sd["offset_view"] = base[3:5]  # storage offset 30, contiguous
    sd["col_slice"] = base[:, 2:5]  # offset + non-contiguous
    sd["strided_rows"] = base[::3, ::2]  # both dims strided
    sd["expanded"] = torch.randn(1, 5).expand(4, 5)  # stride 0
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["flags"] = torch.tensor([True, False, True])
    sd["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd["i16"] = torch.tensor([-3, 300], dtype=torch.int16)
    sd["i32"] = torch.tensor([[1, -2], [3, 4]], dtype=torch.int32)
    sd["big_i64"] = torch.tensor([2**40, -(2**50)], dtype=torch.int64)
    sd["4d"] = torch.randn(2, 3, 4, 5).permute(3, 1, 0, 2)  # non-contiguous 4-D
    return sd


def rezip(src, dst, compression, force_zip64=False):
    old = (zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT)
    if force_zip64:
        zipfile.ZIP64_LIMIT = 0
        zipfile.ZIP_FILECOUNT_LIMIT = 0
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info.filename), compress_type=compression)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = old


def zip_with_pickle(dst, data_pkl, extra=None):
    """A torch-like zip archive around a hand-written data.pkl."""
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/version", "3\n")
        for name, data in (extra or {}).items():
            z.writestr("archive/" + name, data)


class EvalPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import builtins
        return (builtins.eval, ("open(%r, 'w').write('pwned')" % self.marker,))


class SystemPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch %s" % self.marker,))


class PopenPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import subprocess
        return (subprocess.Popen, (["touch", self.marker],))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--marker", default=None, help="file the malicious payloads would create")
    a = ap.parse_args()
    out = a.outdir
    os.makedirs(out, exist_ok=True)
    marker = a.marker or os.path.join(out, "PWNED")

    sd = make_state_dict()
    torch.save(sd, os.path.join(out, "zip.bin"))
    torch.save(sd, os.path.join(out, "zip_proto4.bin"), pickle_protocol=4)
    torch.save(sd, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)
    rezip(os.path.join(out, "zip.bin"), os.path.join(out, "zip_deflate.bin"), zipfile.ZIP_DEFLATED)
    rezip(os.path.join(out, "zip.bin"), os.path.join(out, "zip64.bin"), zipfile.ZIP_STORED, force_zip64=True)
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, os.path.join(out, "ref.safetensors"))
    manifest = collections.OrderedDict()
    for k, v in sd.items():
        manifest[k] = {"dtype": ST_DTYPE[v.dtype], "shape": list(v.shape),
                       "sha256": hashlib.sha256(tensor_bytes(v)).hexdigest()}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)

    refused = {}
    w = torch.randn(2, 2)
    # Real torch.save output with code-running payloads (GLOBAL posix.system, builtins.eval, ...).
    torch.save({"weight": w, "x": SystemPayload(marker)}, os.path.join(out, "evil_os_system.bin"))
    refused["evil_os_system.bin"] = ("security", "'posix.system'")
    torch.save({"weight": w, "x": EvalPayload(marker)}, os.path.join(out, "evil_eval.bin"))
    refused["evil_eval.bin"] = ("security", "__builtin__.eval'")  # protocol 2 spells builtins so
    torch.save({"weight": w, "x": PopenPayload(marker)}, os.path.join(out, "evil_popen.bin"))
    refused["evil_popen.bin"] = ("security", ".Popen'")
    torch.save({"weight": w, "x": SystemPayload(marker)}, os.path.join(out, "evil_legacy_os_system.bin"),
               _use_new_zipfile_serialization=False)
    refused["evil_legacy_os_system.bin"] = ("security", "'posix.system'")
    torch.save({"weight": w, "x": EvalPayload(marker)}, os.path.join(out, "evil_proto4_eval.bin"),
               pickle_protocol=4)
    refused["evil_proto4_eval.bin"] = ("security", "'builtins.eval'")
    # Hand-written protocol-0 pickle: cos\nsystem\n(S'...'\ntR.
    proto0 = b"cos\nsystem\n(S'touch " + marker.encode() + b"'\ntR."
    zip_with_pickle(os.path.join(out, "evil_proto0_os_system.bin"), proto0)
    refused["evil_proto0_os_system.bin"] = ("security", "'os.system'")
    # A state dict whose persistent ids are malformed.
    pk = io.BytesIO()
    pk.write(b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01")
    pk.write(b"X\x03\x00\x00\x00abcQ")  # persistent id is a string, not a tuple
    pk.write(b"s.")
    zip_with_pickle(os.path.join(out, "bad_pid_str.bin"), pk.getvalue())
    refused["bad_pid_str.bin"] = ("format", "persistent id")
    pk = (b"\x80\x02}q\x00X\x01\x00\x00\x00w"
          b"ctorch._utils\n_rebuild_tensor_v2\n("
          b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ\xff\xff\xff\xfftQ"
          b"K\x00K\x02\x85K\x01\x85\x89ctorch._utils\n_rebuild_tensor_v2\n)Rtq\x01Rs.")
    zip_with_pickle(os.path.join(out, "bad_pid_numel.bin"), pk, {"data/0": b"\0" * 8})
    refused["bad_pid_numel.bin"] = ("format", "element count")
    # persistent id pointing at a record the archive lacks
    pk = (b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
          b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x009X\x03\x00\x00\x00cpuK\x02tQ"
          b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.")
    zip_with_pickle(os.path.join(out, "bad_missing_record.bin"), pk, {"data/0": b"\0" * 8})
    refused["bad_missing_record.bin"] = ("format", "data/9")
    # tensor larger than its storage
    pk = (b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("
          b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ"
          b"K\x01K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.")
    zip_with_pickle(os.path.join(out, "bad_out_of_bounds.bin"), pk, {"data/0": b"\0" * 8})
    refused["bad_out_of_bounds.bin"] = ("format", "needs 12 bytes")
    # big-endian byteorder record
    with zipfile.ZipFile(os.path.join(out, "zip.bin")) as zin, \
            zipfile.ZipFile(os.path.join(out, "bad_big_endian.bin"), "w") as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            if not info.filename.endswith("/byteorder"):
                zout.writestr(info, zin.read(info.filename))
        zout.writestr(prefix + "/byteorder", "big")
    refused["bad_big_endian.bin"] = ("unsupported", "big-endian")
    # truncations of good files
    for src in ("zip.bin", "legacy.bin"):
        data = open(os.path.join(out, src), "rb").read()
        for frac in (0.1, 0.5, 0.97):
            name = "bad_trunc_%d_%s" % (int(frac * 100), src)
            with open(os.path.join(out, name), "wb") as f:
                f.write(data[: int(len(data) * frac)])
            refused[name] = ("format", "")
        name = "bad_trunc_last_%s" % src
        with open(os.path.join(out, name), "wb") as f:
            f.write(data[:-1])
        refused[name] = ("format", "")
    with open(os.path.join(out, "bad_not_torch.bin"), "wb") as f:
        f.write(b"hello, this is not a checkpoint\n")
    refused["bad_not_torch.bin"] = ("format", "not a PyTorch checkpoint")
    with open(os.path.join(out, "refused.json"), "w") as f:
        json.dump(refused, f, indent=1)
    assert not os.path.exists(marker), "the fixture script itself must not run the payloads"


if __name__ == "__main__":
    main()
