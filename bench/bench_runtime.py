#!/usr/bin/env python3
"""Runtime benchmark: all-MiniLM-L6-v2 sentence embeddings on STS-B dev sentences.

mlxport (fp32 HF checkpoint; MLX q8 and q4 conversions in the fast integer mode and in the
MLX-faithful mode; the float16 conversion in the fast mode, AMX-BF16 tiles where the CPU has them,
and in the faithful f32 mode) beside PyTorch (fp32), ONNX Runtime (fp32 and its dynamic int8 quantization) and
MLX itself (mlx[cpu] running the same q8/q4 folders through tools/mlx_bert.py, the project's MLX
BertModel with nn.quantize as mlx-lm's loader applies it), same inputs, in one run:
  - throughput: sentences/s at batch 32 over all sentences (tokenization included for everyone,
    model loading excluded);
  - latency: p50/p95 ms at batch size 1 over the first N sentences after a warm-up;
  - mlxport's achieved GFLOP/s against the machine's measured fp32 peak (bench_kernels' FMA loop).
Prints a Markdown table with ratios vs PyTorch. Usage:

    python bench/bench_runtime.py [--threads 2] [--sentences 3000] [--latency 200] [--mlx-sentences 320]

MLX's CPU backend is two orders of magnitude slower here, so it runs the first --mlx-sentences
sentences and --mlx-latency latency requests (its own thread pool; it has no thread setting).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MP_BIN", os.path.join(ROOT, "build", "mlxport"))
SHARED = os.environ.get("MP_SHARED_DIR", os.path.join(ROOT, "..", "shared"))


def minilm():
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(os.environ.get("MP_CACHE", os.path.join(ROOT, ".cache")),
                                                         "huggingface", "hub")
    found = glob.glob(os.path.join(hub, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*"))
    if not found:
        sys.exit(f"bench_runtime: all-MiniLM-L6-v2 is not in the hub cache {hub}: run scripts/setup.sh models "
                 "(or set HF_HUB_CACHE / MP_CACHE)")
    return found[0]


def sentences(n):
    out = []
    with open(os.path.join(SHARED, "datasets", "stsb", "dev.tsv")) as f:
        next(f)
        for line in f:
            c = line.rstrip("\n").split("\t")
            out += [c[7], c[8]]
    return out[:n]


def pct(ms):
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def bench_mlxport(model, sents, threads, n_lat, compute="fast"):
    p = subprocess.run([BIN, "embed", "--model", model, "--threads", str(threads), "--batch-size", "32",
                        "--max-length", "256", "--benchmark", str(n_lat), "--compute", compute],
                       input="".join(s + "\n" for s in sents),
                       capture_output=True, text=True, check=True)
    r = json.loads(p.stdout)
    return r["sentences_per_sec"], r["latency_p50_ms"], r["latency_p95_ms"], r["tokens"], r["seconds"]


def time_runner(run, sents, n_lat):
    """Throughput of run() over batches of 32 (after one warm-up batch), then batch-1 latency:
    (sentences/s, p50 ms, p95 ms)."""
    run(sents[:32])
    t = time.perf_counter()
    for i in range(0, len(sents), 32):
        run(sents[i:i + 32])
    sps = len(sents) / (time.perf_counter() - t)
    ms = []
    for i in range(n_lat):
        t = time.perf_counter()
        run([sents[i % len(sents)]])
        ms.append((time.perf_counter() - t) * 1e3)
    return (sps, *pct(ms))


def bench_torch(model, sents, threads, n_lat):
    import torch
    from transformers import AutoModel, AutoTokenizer
    # Debian's torch runs its GEMMs through OpenBLAS (OPENBLAS_NUM_THREADS, set in main before torch
    # is imported) and its other ops through OpenMP; with both pools at `threads` they oversubscribe
    # the cores (measured 95 vs 224 sentences/s on 2 cores), so torch's own pool gets 1 thread.
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(model)
    m = AutoModel.from_pretrained(model).eval()

    def run(batch):
        enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            h = m(**enc).last_hidden_state
        mk = enc["attention_mask"].unsqueeze(-1).float()
        e = (h * mk).sum(1) / mk.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(e, dim=1)

    return time_runner(run, sents, n_lat)


def bench_onnx(model, sents, threads, n_lat, tmp, int8):
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model)
    path = os.path.join(tmp, "minilm.onnx")
    if not os.path.exists(path):
        m = AutoModel.from_pretrained(model).eval()
        enc = tok(["hello world"], return_tensors="pt")
        torch.onnx.export(m, (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), path,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={k: {0: "b", 1: "t"} for k in ["input_ids", "attention_mask", "token_type_ids",
                                                                     "last_hidden_state"]}, opset_version=14)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        q = os.path.join(tmp, "minilm-int8.onnx")
        if not os.path.exists(q):
            quantize_dynamic(path, q, weight_type=QuantType.QInt8)
        path = q
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run(batch):
        enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
        h = sess.run(None, {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")})[0]
        mk = enc["attention_mask"][..., None].astype(np.float32)
        e = (h * mk).sum(1) / np.maximum(mk.sum(1), 1e-9)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    return time_runner(run, sents, n_lat)


def bench_mlx(folder, sents, n_lat):
    """MLX (mlx[cpu]) on an mlxport MLX folder: tools/mlx_bert.py's BertModel, quantized layers
    through mx.quantized_matmul; tokenization by HF tokenizers (the folder's tokenizer.json)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import mlx.core as mx
    import mlx_bert
    from tokenizers import Tokenizer
    model, _, _ = mlx_bert.load(folder)
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding()

    def run(batch):
        enc = tok.encode_batch(batch)
        ids = mx.array([e.ids for e in enc])
        att = mx.array([e.attention_mask for e in enc])
        h, _ = model(ids, mx.zeros_like(ids), att)
        mk = att[..., None].astype(mx.float32)
        e = (h * mk).sum(1) / mx.maximum(mk.sum(1), 1e-9)
        e = e / mx.linalg.norm(e, axis=1, keepdims=True)
        mx.eval(e)
        return e

    return time_runner(run, sents, n_lat)


def fp32_peak_gflops(threads):
    """The machine's fp32 FMA peak for `threads` cores: bench_kernels' per-core figure x threads."""
    exe = os.path.join(os.path.dirname(BIN), "bench_kernels")
    if not os.path.exists(exe):
        return None
    p = subprocess.run([exe, "--peak"], capture_output=True, text=True)
    for line in p.stdout.splitlines():
        r = json.loads(line)
        if r.get("kind") == "peak":
            return r["gflops_per_core"] * threads
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=3000)
    ap.add_argument("--latency", type=int, default=200)
    # MLX's CPU backend runs about 2 sentences/s here: it gets the first N sentences (same order)
    ap.add_argument("--mlx-sentences", type=int, default=320)
    ap.add_argument("--mlx-latency", type=int, default=20)
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    model = minilm()
    sents = sentences(a.sentences)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (8, 4):
            subprocess.run([BIN, "convert", "--hf-path", model, "--mlx-path", os.path.join(tmp, f"q{bits}"), "-q",
                            "--q-bits", str(bits), "--q-group-size", "64", "--dtype", "float32"], check=True,
                           capture_output=True)
        # the default conversion: float16, no quantization (fast mode: AMX-BF16 tiles where the CPU has them)
        subprocess.run([BIN, "convert", "--hf-path", model, "--mlx-path", os.path.join(tmp, "f16"), "--dtype",
                        "float16"], check=True, capture_output=True)
        sps, p50, p95, tokens, secs = bench_mlxport(model, sents, a.threads, a.latency)
        rows.append(("mlxport fp32", sps, p50, p95))
        # FLOPs of the timed pass: per real token ~ 2 * params_per_token_matmuls; attention extra ignored
        L, H, I = 6, 384, 1536
        flops = tokens * L * (2 * (4 * H * H + 2 * H * I))
        gflops = flops / secs / 1e9
        for bits in (8, 4):
            for compute in ("fast", "faithful"):
                r = bench_mlxport(os.path.join(tmp, f"q{bits}"), sents, a.threads, a.latency, compute)
                rows.append((f"mlxport MLX q{bits} {compute}", r[0], r[1], r[2]))
        for compute in ("fast", "faithful"):
            r = bench_mlxport(os.path.join(tmp, "f16"), sents, a.threads, a.latency, compute)
            rows.append((f"mlxport MLX float16 {compute}", r[0], r[1], r[2]))
        rows.append(("PyTorch fp32", *bench_torch(model, sents, a.threads, a.latency)))
        try:
            rows.append(("ONNX Runtime fp32", *bench_onnx(model, sents, a.threads, a.latency, tmp, False)))
            rows.append(("ONNX Runtime int8 (dynamic)", *bench_onnx(model, sents, a.threads, a.latency, tmp, True)))
        except ImportError as e:
            print(f"ONNX Runtime not installed ({e}); skipping it", file=sys.stderr)
        try:
            for bits in (8, 4):
                rows.append((f"MLX (mlx[cpu]) q{bits}", *bench_mlx(os.path.join(tmp, f"q{bits}"),
                                                                    sents[:a.mlx_sentences], a.mlx_latency)))
        except ImportError as e:
            print(f"MLX not installed ({e}); skipping it", file=sys.stderr)
    base = next(r for r in rows if r[0] == "PyTorch fp32")
    print(f"all-MiniLM-L6-v2, {len(sents)} STS-B dev sentences, batch 32, {a.threads} threads; latency batch 1 "
          f"over {a.latency} requests\n")
    print("| runtime | sentences/s | vs PyTorch | p50 ms | p95 ms | p50 vs PyTorch |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, sps, p50, p95 in rows:
        print(f"| {name} | {sps:.1f} | {sps / base[1]:.2f}x | {p50:.2f} | {p95:.2f} | {base[2] / p50:.2f}x |")
    by = {r[0]: r for r in rows}

    def ratio(a_, b_):
        if a_ in by and b_ in by:
            print(f"- {a_} / {b_}: throughput {by[a_][1] / by[b_][1]:.2f}x, p50 {by[b_][2] / by[a_][2]:.2f}x "
                  "(> 1 = mlxport faster)")
    print("\nRatios (the speed goals):")
    ratio("mlxport MLX q8 fast", "ONNX Runtime int8 (dynamic)")
    ratio("mlxport MLX q4 fast", "ONNX Runtime int8 (dynamic)")
    ratio("mlxport fp32", "ONNX Runtime fp32")
    ratio("mlxport fp32", "PyTorch fp32")
    ratio("mlxport MLX q8 fast", "mlxport fp32")
    ratio("mlxport MLX float16 fast", "mlxport fp32")
    ratio("mlxport MLX float16 fast", "mlxport MLX float16 faithful")
    ratio("mlxport MLX q8 fast", "MLX (mlx[cpu]) q8")
    ratio("mlxport MLX q4 fast", "MLX (mlx[cpu]) q4")
    peak = fp32_peak_gflops(a.threads)
    print(f"\nmlxport fp32 achieved ~{gflops:.1f} GFLOP/s in the linear layers"
          + (f" = {100 * gflops / peak:.0f}% of the measured fp32 peak {peak:.1f} GFLOP/s" if peak else ""))


if __name__ == "__main__":
    main()
