#!/usr/bin/env python3
"""DeBERTa-v3-base-shaped model (real config of DeBERTa-v3-base-mnli-fever-anli, random weights,
float32 safetensors) on one premise/hypothesis pair of 512 tokens, batch 1: mlxport classify
(wall time and peak RSS of the whole process, load included, plus the forward alone from a
second input count) beside transformers' DebertaV2ForSequenceClassification in torch (CPU).

    .cache/venv/bin/python bench/bench_deberta.py --dir /tmp/debbench [--threads N]

The tokenizer is a WordPiece one (all-MiniLM-L6-v2) so the bench runs whatever tokenizer
support mlxport has; the model math is the same. Needs ../shared/models."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/debbench")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "mlxport"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    import torch
    import transformers
    model_dir = os.path.join(a.dir, "deberta-v3-base-random")
    src = os.path.join(a.shared, "models", "deberta-v3-base-mnli-fever-anli")
    if not os.path.exists(os.path.join(model_dir, "model.safetensors")):
        cfg = transformers.AutoConfig.from_pretrained(src)
        torch.manual_seed(0)
        m = transformers.DebertaV2ForSequenceClassification(cfg).eval()
        m.save_pretrained(model_dir, safe_serialization=True)
        mini = os.path.join(a.shared, "models", "all-MiniLM-L6-v2")
        for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            shutil.copy(os.path.join(mini, fn), model_dir)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    words = open(os.path.join(a.shared, "datasets", "mnli", "validation_matched", "dev.jsonl")).read().split()
    prem = " ".join(w for w in words if w.isalpha())[:20000]
    hyp = "The text talks about something."
    enc = tok([prem], [hyp], truncation=True, max_length=512, return_tensors="pt")
    assert enc["input_ids"].shape[1] == 512
    line = f"{prem}\t{hyp}\n"

    def run(n_lines):
        cmd = ["/usr/bin/time", "-v", a.bin, "classify", "--model", model_dir, "--pair", "--json",
               "--max-length", "512", "--batch-size", "1"]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, input=line * n_lines, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
        return wall, rss, [json.loads(l)["logits"] for l in p.stdout.splitlines()]

    run(1)  # warm the page cache
    one = sorted(run(1) for _ in range(a.reps))[a.reps // 2]
    three = sorted(run(3) for _ in range(a.reps))[a.reps // 2]
    fwd = (three[0] - one[0]) / 2

    model = transformers.DebertaV2ForSequenceClassification.from_pretrained(model_dir).eval()
    if a.threads:
        torch.set_num_threads(a.threads)
    with torch.no_grad():
        ref = model(**enc).logits[0].tolist()
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            model(**enc)
            ts.append(time.perf_counter() - t0)
    tt = sorted(ts)[a.reps // 2]
    err = max(abs(x - y) for x, y in zip(one[2][0], ref))
    print(f"threads: {a.threads or os.cpu_count()}  tokens: 512  batch: 1")
    print(f"mlxport classify, 1 pair (load + tokenize + forward): {one[0]:.3f} s, peak RSS {one[1]:.0f} MiB")
    print(f"mlxport forward alone (from 3 pairs - 1 pair): {fwd:.3f} s; peak RSS with 3 pairs {three[1]:.0f} MiB")
    print(f"torch forward (transformers 4.46.3): {tt:.3f} s  -> torch / mlxport = {tt / fwd:.2f}x")
    print(f"max |logit delta| vs torch: {err:.2e}")


if __name__ == "__main__":
    sys.exit(main())
