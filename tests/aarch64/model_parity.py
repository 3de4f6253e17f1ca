#!/usr/bin/env python3
"""Model-forward parity of the aarch64 build (NEON kernels, run under qemu-aarch64) against the host
build's scalar reference path (MP_ISA=scalar), on the real all-MiniLM-L6-v2 weights and on MLX q8 / q4
conversions of it made by the host build. Run by CTest in the cross build (aarch64/model_parity;
docs/testing.md); plain python3, no third-party modules.

Checks (sentence embeddings of the inputs below, batches of 4 with padding, 2 threads; the float
runs, the slowest under qemu, which emulates FMA in software, leave out the one long input, which
the fast runs use for the attention kernels' multi-block path):
  float model                     max |aarch64 - host scalar| <= 1e-5
  q8, --compute faithful          max |aarch64 - host scalar| <= 1e-5   (dequantized weights, float)
  q8 / q4, fast (integer kernels) cosine >= 0.9995 per sentence and max abs <= 1e-2: int8
                                  activation rounding turns float-rounding differences of the
                                  float kernels (LayerNorm, GELU, attention) into code flips, as
                                  between the x86 paths (~3e-3)
  q8 fast, Cortex-A57 (no SDOT: the SMULL kernel) bit-identical to the SDOT run: same float
                                  kernels, exact integer sums
Exit 0 when every check passes, 1 otherwise (never 77: a missing model or tool is a failure).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

SENTENCES = [
    "A man is playing a guitar.",
    "hello",
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally gets up.",
    "Quantized models run on integer kernels by default in the fast mode.",
    "Un homme joue de la guitare sous la pluie.",
    "1 2 3 4 5 6 7 8 9 10",
    # longer than one key block of 64 (a full block and a partial one)
    " ".join(["Attention blocks of sixty-four keys with an online softmax keep memory small."] * 5),
    "Why?",
]


def run(cmd, env=None, stdin=None):
    t0 = time.time()
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-4000:]}\n")
        sys.exit(1)
    return p.stdout, time.time() - t0


def embeddings(text, n):
    rows = [json.loads(line)["embedding"] for line in text.splitlines() if line.strip()]
    if len(rows) != n:
        sys.exit(f"expected {n} embeddings, got {len(rows)}")
    return rows


def compare(a, b):
    mx, worst_cos = 0.0, 1.0
    for u, v in zip(a, b):
        if len(u) != len(v):
            sys.exit("embedding sizes differ")
        mx = max(mx, max(abs(x - y) for x, y in zip(u, v)))
        nu, nv = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(y * y for y in v))
        worst_cos = min(worst_cos, sum(x * y for x, y in zip(u, v)) / (nu * nv))
    return mx, worst_cos


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", required=True, help="the host build's mlxport")
    ap.add_argument("--target", required=True, help="the aarch64 build's mlxport")
    ap.add_argument("--emulator", required=True, nargs="+", help="command running aarch64 executables")
    ap.add_argument("--work", required=True, help="scratch folder (recreated)")
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    a = ap.parse_args()
    for what, path in (("--host", a.host), ("--target", a.target)):
        if not (path and os.access(path, os.X_OK)):
            sys.exit(f"{what} {path!r} is not an executable (configure with -DMP_HOST_MLXPORT=<build>/mlxport)")
    if not shutil.which(a.emulator[0]):
        sys.exit(f"emulator {a.emulator[0]} not found (Debian: qemu-user)")
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    t0 = time.time()
    short = [x for x in SENTENCES if len(x) < 200]
    host_env = dict(os.environ, MP_ISA="scalar")
    tgt_env = {k: v for k, v in os.environ.items() if k not in ("MP_ISA", "QEMU_CPU")}
    folders = {"float": a.model}
    for bits in (8, 4):
        out = os.path.join(a.work, f"q{bits}")
        run([a.host, "convert", "--hf-path", a.model, "--mlx-path", out, "-q", "--q-bits", str(bits)], env=host_env)
        folders[f"q{bits}"] = out

    def embed_args(folder, mode):
        return ["embed", "--model", folder, "--compute", mode, "--threads", "2", "--batch-size", "4"]

    def host(folder, mode, texts=SENTENCES):
        return embeddings(run([a.host] + embed_args(folder, mode), env=host_env, stdin="\n".join(texts) + "\n")[0],
                          len(texts))

    def target(folder, mode, env=tgt_env, texts=SENTENCES):
        out, dt = run(a.emulator + [a.target] + embed_args(folder, mode), env=env, stdin="\n".join(texts) + "\n")
        return embeddings(out, len(texts)), dt

    fails = 0

    def report(name, ok, detail, dt):
        nonlocal fails
        fails += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:<44} {detail}  ({dt:.1f}s under qemu)", flush=True)

    for name, folder, mode in (("float model", folders["float"], "faithful"), ("q8 faithful", folders["q8"], "faithful")):
        got, dt = target(folder, mode, texts=short)
        mx, cos = compare(host(folder, mode, texts=short), got)
        report(f"{name}: neon vs host scalar", mx <= 1e-5, f"max abs {mx:.3g} (<= 1e-5), min cosine {cos:.9f}", dt)
    fast = {}
    for q in ("q8", "q4"):
        got, dt = target(folders[q], "fast")
        fast[q] = got
        mx, cos = compare(host(folders[q], "fast"), got)
        report(f"{q} fast: neon-dotprod vs host scalar", cos >= 0.9995 and mx <= 1e-2,
               f"max abs {mx:.3g} (<= 1e-2), min cosine {cos:.6f} (>= 0.9995)", dt)
    got, dt = target(folders["q8"], "fast", env=dict(tgt_env, QEMU_CPU="cortex-a57"))
    mx, _ = compare(fast["q8"], got)
    report("q8 fast: neon (Cortex-A57, no SDOT) vs SDOT", mx == 0.0, f"max abs {mx:.3g} (bit-identical)", dt)
    print(f"{'all checks passed' if not fails else f'{fails} check(s) failed'} in {time.time() - t0:.0f}s")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
