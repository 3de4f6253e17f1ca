#!/usr/bin/env python3
"""MLX itself as the peer column of bench/bench_cuda.py: one MLX folder written by `mlxport convert`
(float16, q8 or q4) run by MLX (mlx-cuda on the GPU machine, mlx[cpu] elsewhere) through
tools/mlx_bert.py's models, which load the folder strictly as mlx-lm's loader would (the
quantized layers through nn.quantize and mx.quantized_matmul). Timed like bench/bench_device.c:
random ids between [CLS] and [SEP] (fixed seed), every token real, [batch, seq], three warm-up
passes, then passes until --seconds (at least 3), each ending in mx.eval of the logits or the
mean-pooled embedding. One JSON line per length in bench_device's format (peak_mb: MLX's own
peak-memory counter), so bench_cuda.py reads both alike; --dump writes PREFIX-SEQ.ids / .out as
bench_device does, for bench_cuda.py's check against PyTorch on the same ids.

    python3 bench/bench_mlx_peer.py --model FOLDER [--seq 48,128] [--batch 128] [--seconds 1]
                                    [--dump PREFIX] [--cpu]

BERT, RoBERTa / XLM-RoBERTa and DistilBERT folders only (what tools/mlx_bert.py implements): any
other model_type exits 2 with the reason. Test/benchmark tool: mlxport itself never runs Python.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--seq", default="48,128")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--dump", default=None)
    ap.add_argument("--cpu", action="store_true", help="run on MLX's CPU device")
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    import mlx.core as mx
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import mlx_bert
    from tokenizers import Tokenizer

    if cfg.get("model_type") not in mlx_bert.MODEL_TYPES:
        print(f"bench_mlx_peer: {a.model}: model_type {cfg.get('model_type')!r}: tools/mlx_bert.py runs "
              f"{', '.join(mlx_bert.MODEL_TYPES)} only", file=sys.stderr)
        return 2
    mx.set_default_device(mx.cpu if a.cpu else mx.gpu)
    model, c, _ = mlx_bert.load(a.model)
    classify = mlx_bert.is_classifier(model)
    first, last = ("<s>", "</s>") if cfg.get("model_type") in mlx_bert.ROBERTA_TYPES else ("[CLS]", "[SEP]")
    if os.path.exists(os.path.join(a.model, "tokenizer.json")):
        tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
        cls_id, sep_id = tok.token_to_id(first), tok.token_to_id(last)
    else:  # a WordPiece model with vocab.txt only: the line numbers are the ids
        with open(os.path.join(a.model, "vocab.txt"), encoding="utf-8") as f:
            vocab_ids = {line.rstrip("\n"): i for i, line in enumerate(f)}
        cls_id, sep_id = vocab_ids.get(first), vocab_ids.get(last)
    vocab = c["vocab_size"]
    device = f"mlx {mx.__version__} {mx.default_device()}"
    rng = np.random.default_rng(1234)
    for seq in [int(s) for s in a.seq.split(",")]:
        ids = rng.integers(min(1000, vocab - 1), vocab, (a.batch, seq)).astype(np.int32)
        if cls_id is not None:
            ids[:, 0] = cls_id
        if sep_id is not None:
            ids[:, -1] = sep_id
        x = mx.array(ids)
        types = mx.zeros_like(x)
        attn = mx.ones_like(x)

        def step():
            if classify:
                out = model(x, types, attn)
            else:
                h, _ = model(x, types, attn)
                out = h.mean(axis=1)
            out = out.astype(mx.float32)
            mx.eval(out)
            return out

        for _ in range(3):
            out = step()
        mx.reset_peak_memory()
        iters, t0 = 0, time.perf_counter()
        while True:
            out = step()
            iters += 1
            t = time.perf_counter() - t0
            if iters >= 3 and t >= a.seconds:
                break
        if a.dump:
            ids.tofile(f"{a.dump}-{seq}.ids")
            np.array(out).astype(np.float32).tofile(f"{a.dump}-{seq}.out")
        print(json.dumps({"model": a.model, "device": device, "seq": seq, "batch": a.batch, "iters": iters,
                          "seconds": round(t, 4), "seqs_per_s": iters * a.batch / t,
                          "tokens_per_s": iters * a.batch * seq / t, "peak_mb": mx.get_peak_memory() / 2**20}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
