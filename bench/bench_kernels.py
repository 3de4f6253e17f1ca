#!/usr/bin/env python3
"""Kernel benchmark table: mlxport mp_linear (f32 / bf16 / q8 / q4 weights, the faithful float path)
mp_qlinear_act (q8-int / q4-int, the fast integer path) and mp_bflinear_act (bf16-amx / f16-amx,
the fast path for 16-bit float weights on AMX-BF16, where the CPU has it) beside numpy, torch and
ONNX Runtime (MatMul, MLAS) on the same shapes and thread counts, against the measured fp32 FMA and
int8 VPDPBUSD peaks.

Usage: bench/bench_kernels.py [--bin build/bench_kernels] [--threads 1,2] [--quick]
Runs the C benchmark (JSON lines), then numpy (x @ W.T), torch (F.linear, f32 and bf16) and ONNX
Runtime (a one-node MatMul model, f32) in a
subprocess per thread count (BLAS thread counts are fixed at import). One run, ratios printed.
Timings are best-of-N wall clock; on a shared machine they are noisy."""
import argparse
import json
import os
import subprocess
import sys
import time

REF_SNIPPET = r"""
import json, sys, time
import numpy as np
shapes = json.loads(sys.argv[1]); t = int(sys.argv[2])
out = []
def best(fn, budget=1.0):
    fn(); b = 1e30; tot = 0; n = 0
    while (tot < budget or n < 3) and n < 50:
        t0 = time.perf_counter(); fn(); d = time.perf_counter() - t0
        tot += d; n += 1; b = min(b, d)
    return b
rng = np.random.default_rng(0)
for M, K, N in shapes:
    x = rng.standard_normal((M, K), dtype=np.float32); w = rng.standard_normal((N, K), dtype=np.float32)
    out.append(dict(lib="numpy", enc="f32", M=M, K=K, N=N, threads=t, best_s=best(lambda: x @ w.T)))
    try:
        import torch
        torch.set_num_threads(t)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        with torch.no_grad():
            out.append(dict(lib="torch", enc="f32", M=M, K=K, N=N, threads=t,
                            best_s=best(lambda: torch.nn.functional.linear(tx, tw))))
            bx, bw = tx.bfloat16(), tw.bfloat16()
            out.append(dict(lib="torch", enc="bf16", M=M, K=K, N=N, threads=t,
                            best_s=best(lambda: torch.nn.functional.linear(bx, bw))))
    except ImportError:
        pass
    try:  # ONNX Runtime's MatMul (MLAS) with the weight as an initializer, as an exported model has it
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        g = helper.make_graph([helper.make_node("MatMul", ["x", "wt"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])],
                              [numpy_helper.from_array(np.ascontiguousarray(w.T), "wt")])
        mo = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        mo.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = t, 1
        sess = ort.InferenceSession(mo.SerializeToString(), so, providers=["CPUExecutionProvider"])
        out.append(dict(lib="ort", enc="f32", M=M, K=K, N=N, threads=t, best_s=best(lambda: sess.run(None, {"x": x}))))
    except ImportError:
        pass
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "bench_kernels"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--python", default=sys.executable, help="interpreter with numpy/torch")
    a = ap.parse_args()
    cmd = [a.bin, "--threads", a.threads] + (["--quick"] if a.quick else [])
    res = [json.loads(l) for l in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
    peak = next(r for r in res if r["kind"] == "peak")
    ours = [r for r in res if r["kind"] == "linear"]
    shapes = sorted({(r["M"], r["K"], r["N"]) for r in ours}, key=lambda s: [r["M"] for r in ours].index(s[0]))
    shapes = []
    for r in ours:
        s = (r["M"], r["K"], r["N"])
        if s not in shapes:
            shapes.append(s)
    refs = []
    for t in a.threads.split(","):
        env = dict(os.environ, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t)
        p = subprocess.run([a.python, "-c", REF_SNIPPET, json.dumps(shapes), t], env=env,
                           capture_output=True, text=True)
        if p.returncode == 0:
            refs += json.loads(p.stdout)
        else:
            print("reference run failed:", p.stderr.strip().splitlines()[-1:], file=sys.stderr)

    def ref(lib, enc, M, K, N, t):
        for r in refs:
            if (r["lib"], r["enc"], r["M"], r["K"], r["N"], r["threads"]) == (lib, enc, M, K, N, t):
                return r["best_s"]
        return None

    pk, pi = peak["gflops_per_core"], peak.get("int8_gops_per_core", 0)
    print(f"ISA {peak['isa']} ({peak['features']}); integer kernel {peak.get('int_kernel', '-')}; measured peaks per "
          f"core: fp32 FMA {pk:.1f} GFLOP/s, int8 VPDPBUSD {pi:.1f} Gop/s\n")
    print("| shape M×K→N | weights | threads | mlxport GFLOP/s | % of peak | numpy f32 | torch f32 | torch bf16 "
          "| ORT f32 | × numpy | × torch f32 | × ORT f32 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in ours:
        M, K, N, t = r["M"], r["K"], r["N"], r["threads"]
        fl = 2.0 * M * K * N
        g = fl / r["best_s"] / 1e9
        nn, tf, tb = ref("numpy", "f32", M, K, N, t), ref("torch", "f32", M, K, N, t), ref("torch", "bf16", M, K, N, t)
        ox = ref("ort", "f32", M, K, N, t)
        f = lambda s: f"{fl / s / 1e9:.1f}" if s else "-"
        rr = lambda s: f"{s / r['best_s']:.2f}x" if s else "-"
        integer = r["enc"].endswith("-int")
        ref_peak = (pi if integer else pk) * t
        pct = f"{100 * g / ref_peak:.0f}% {'int8' if integer else 'fp32'}" if ref_peak else "-"
        print(f"| {M}×{K}→{N} | {r['enc']} | {t} | {g:.1f} | {pct} | {f(nn)} | {f(tf)} | {f(tb)} | {f(ox)} | {rr(nn)} "
              f"| {rr(tf)} | {rr(ox)} |")
    print("GFLOP/s = 2*M*K*N / best wall time; 'x numpy'/'x torch f32'/'x ORT f32' = mlxport speed / theirs "
          "(>1: mlxport faster); '% of peak' for the -amx rows is against the fp32 FMA peak too.")


if __name__ == "__main__":
    main()
