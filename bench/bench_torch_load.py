#!/usr/bin/env python3
"""Loading a pytorch_model.bin: mlxport's reader (tools/c/torch_read) vs torch.load.

    bench/bench_torch_load.py [--build build] [--dir DIR] [--runs 3] [--layers 12]

Writes a randomly initialised bert-base-sized BertModel (hidden 768, 12 layers, vocab 30522:
~110 M parameters, ~440 MB of F32) as pytorch_model.bin in the zip layout (torch.save default)
and in the legacy layout (_use_new_zipfile_serialization=False), then times, each in a fresh
process, on a warm page cache (one untimed run first), the median of --runs:
  - mlxport open:  mp_torch_open alone (zip: lazy mmap views; legacy: misaligned storages copied)
  - mlxport all:   open + reading every byte of every tensor once (a checksum pass)
  - torch.load:    torch.load(path, map_location="cpu") (reads every storage into memory)
Reports seconds and the ratio torch.load / mlxport all. Timings on a shared machine are noisy.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TORCH_LOAD = r"""
import sys, time, torch
t = time.perf_counter()
sd = torch.load(sys.argv[1], map_location="cpu")
print(time.perf_counter() - t)
"""


def run_ours(tool, path):
    r = subprocess.run([tool, path], capture_output=True, text=True, check=True)
    j = json.loads(r.stdout)
    return j["open_s"], j["open_s"] + j["read_s"], j["tensors"], j["bytes"]


def run_torch(path):
    r = subprocess.run([sys.executable, "-c", TORCH_LOAD, path], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "build"))
    ap.add_argument("--dir", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layers", type=int, default=12)
    a = ap.parse_args()
    tool = os.path.join(a.build, "torch_read")
    if not os.path.exists(tool):
        sys.exit("build tools/c/torch_read first (cmake --build %s)" % a.build)
    d = a.dir or tempfile.mkdtemp(prefix="mp-bench-torch-")
    os.makedirs(d, exist_ok=True)
    import torch
    from transformers import BertConfig, BertModel

    files = {"zip": os.path.join(d, "zip.bin"), "legacy": os.path.join(d, "legacy.bin")}
    if not all(os.path.exists(f) for f in files.values()):
        torch.manual_seed(0)
        m = BertModel(BertConfig(num_hidden_layers=a.layers))
        sd = m.state_dict()
        torch.save(sd, files["zip"])
        torch.save(sd, files["legacy"], _use_new_zipfile_serialization=False)
        del m, sd
    print("%-7s %8s %7s | %12s %12s %12s | %s" % ("layout", "tensors", "MB", "mlxport open", "mlxport all",
                                                  "torch.load", "torch.load / mlxport all"))
    for name, f in files.items():
        run_ours(tool, f), run_torch(f)  # warm the page cache
        ours = [run_ours(tool, f) for _ in range(a.runs)]
        theirs = [run_torch(f) for _ in range(a.runs)]
        o_open = statistics.median(x[0] for x in ours)
        o_all = statistics.median(x[1] for x in ours)
        t = statistics.median(theirs)
        print("%-7s %8d %7.0f | %11.3fs %11.3fs %11.3fs | %.1fx" % (name, ours[0][2], ours[0][3] / 1e6, o_open, o_all,
                                                                   t, t / o_all))


if __name__ == "__main__":
    main()
