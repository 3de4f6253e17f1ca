#!/usr/bin/env python3
"""Conversion benchmark: mlxport vs MLX's own quantization from Python, same weights, same machine.

    python bench/bench_convert.py [--bin build/mlxport] [--model DIR] [--repeats 3] [--json OUT]

For all-MiniLM-L6-v2 (float32 safetensors) -> 8-bit and 4-bit (group 64, float16 elsewhere):
  mlxport convert   the full command: hash sources, quantize + stream, per-tensor error stats,
                    config/tokenizer/card/metadata, fsync, atomic rename
  mlxport quantize  the same tensors, raw file to raw file (no hashing, metadata, copies)
  MLX (Python)      mx.load -> mx.quantize each Linear/Embedding weight (astype float16 first),
                    astype(float16) the rest -> mx.save_safetensors   (bench/mlx_quantize_ref.py)
Each run is a fresh process measured with GNU time: wall time, CPU time (user+sys) and peak RSS.
Reports the median of --repeats runs and the ratios MLX / mlxport. The outputs of mlxport and MLX
are also compared tensor by tensor (they must be bit-identical).
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def default_model():
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("MP_CACHE", os.path.join(ROOT, ".cache")), "huggingface", "hub")
    s = glob.glob(os.path.join(cache, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*"))
    return s[0] if s else None


def measure(cmd):
    """Runs cmd under GNU time: wall, user+sys CPU and peak RSS of that process alone. (os.wait4
    from this Python would report at least this interpreter's RSS: a forked child's high-water
    mark starts at its parent's.)"""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name, *cmd], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
        wall, user, sys_, rss_kb = tf.read().split()[-4:]
    return {"wall_s": float(wall), "cpu_s": float(user) + float(sys_), "peak_rss_mb": float(rss_kb) / 1024.0}


def median_of(runs):
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def same_tensors(a, b):
    import mlx.core as mx
    import numpy as np
    x, y = mx.load(a), mx.load(b)
    if set(x) != set(y):
        return False
    for k in x:
        u, v = x[k], y[k]
        if u.dtype != v.dtype or u.shape != v.shape:
            return False
        if u.dtype in (mx.float16, mx.bfloat16):
            u, v = u.view(mx.uint16), v.view(mx.uint16)
        if not np.array_equal(np.array(u), np.array(v)):
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "mlxport"))
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    if not a.model:
        raise SystemExit("all-MiniLM-L6-v2 not found in the HF cache; pass --model DIR")
    src = os.path.join(a.model, "model.safetensors")
    work = tempfile.mkdtemp(prefix="mp-bench-")
    results = []
    try:
        for bits in (8, 4):
            rows = {}
            tools = {
                "mlxport convert": lambda i: [a.bin, "convert", "--hf-path", a.model, "--mlx-path",
                                              os.path.join(work, f"c{bits}-{i}"), "-q", "--q-bits", str(bits),
                                              "--q-group-size", "64", "--dtype", "float16", "--no-skip"],
                "mlxport quantize": lambda i: [a.bin, "quantize", src, os.path.join(work, f"q{bits}-{i}.safetensors"),
                                               "--bits", str(bits), "--group-size", "64", "--dtype", "float16"],
                "MLX (Python)": lambda i: [sys.executable, os.path.join(HERE, "mlx_quantize_ref.py"), src,
                                           os.path.join(work, f"m{bits}-{i}.safetensors"), str(bits), "64", "float16"],
            }
            for name, mk in tools.items():
                runs = []
                for i in range(a.repeats):  # interleaving would be fairer; a fresh process each time
                    runs.append(measure(mk(i)))
                rows[name] = median_of(runs)
            ok = same_tensors(os.path.join(work, f"c{bits}-0", "model.safetensors"),
                              os.path.join(work, f"m{bits}-0.safetensors"))
            mlx, conv, quant = rows["MLX (Python)"], rows["mlxport convert"], rows["mlxport quantize"]
            res = {"bits": bits, "group_size": 64, "dtype": "float16", "repeats": a.repeats, "runs": rows,
                   "identical_to_mlx": ok,
                   "ratio_mlx_over_convert": {k: mlx[k] / conv[k] for k in mlx},
                   "ratio_mlx_over_quantize": {k: mlx[k] / quant[k] for k in mlx}}
            results.append(res)
            print(f"\nall-MiniLM-L6-v2 fp32 -> q{bits} (g64, float16), median of {a.repeats}; "
                  f"outputs bit-identical to MLX: {ok}")
            print(f"  {'':18} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}")
            for n, r in rows.items():
                print(f"  {n:18} {r['wall_s']:8.3f} {r['cpu_s']:8.3f} {r['peak_rss_mb']:12.1f}")
            for lbl, rr in (("MLX / convert", res["ratio_mlx_over_convert"]),
                            ("MLX / quantize", res["ratio_mlx_over_quantize"])):
                print(f"  {lbl:18} {rr['wall_s']:8.2f}x {rr['cpu_s']:7.2f}x {rr['peak_rss_mb']:11.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "load_avg": os.getloadavg(), "cpus": os.cpu_count(), "results": results},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
