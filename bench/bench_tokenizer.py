#!/usr/bin/env python3
"""Tokenizer throughput: mlxport vs Hugging Face `tokenizers` (Rust) on all MNLI validation_matched
pairs (premise, hypothesis), one model per family:
  WordPiece  all-MiniLM-L6-v2 (tokenizer.json)
  BPE        roberta-large-mnli (byte-level BPE, tokenizer.json)
  Unigram    deberta-v3-base-mnli-fever-anli (spm.model; HF side: transformers' converted fast
             tokenizer, saved as tokenizer.json)
Both sides encode the same pairs with special tokens, no truncation, no padding, in one batch
call: mlxport through `mlxport tokenize --pair --stats --no-output --threads N` (the time of
the library batch call only, reported by the CLI), HF through `Tokenizer.encode_batch` in a fresh
process with RAYON_NUM_THREADS=N and TOKENIZERS_PARALLELISM=true. Each measurement is the best of
--reps runs. Reported per family: tokens/s by wall clock and by process CPU time (CPU time is
what to trust on a loaded machine), and the ratio mlxport / HF (> 1: mlxport faster).

usage: bench/bench_tokenizer.py [--bin build/mlxport] [--shared ../shared] [--threads 1,2] [--reps 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")

HF_SCRIPT = r"""
import json, sys, time
from tokenizers import Tokenizer
tj, pairs_path, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs = []
with open(pairs_path, encoding="utf-8") as f:
    for line in f:
        a, b = line.rstrip("\n").split("\t", 1)
        pairs.append((a, b))
tk = Tokenizer.from_file(tj)
tk.no_truncation(); tk.no_padding()
best = None
for _ in range(reps):
    w0, c0 = time.perf_counter(), time.process_time()
    enc = tk.encode_batch(pairs, add_special_tokens=True)
    w1, c1 = time.perf_counter(), time.process_time()
    n = sum(len(e.ids) for e in enc)
    r = (w1 - w0, c1 - c0, n)
    best = r if best is None or r[0] < best[0] else best
print(json.dumps({"seconds": best[0], "cpu_seconds": best[1], "tokens": best[2]}))
"""


def load_pairs(shared):
    pairs = []
    with open(os.path.join(shared, "datasets", "mnli", "validation_matched", "dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                a, b = r["premise"], r["hypothesis"]
                if "\n" in a + b or "\t" in a + b:
                    continue
                pairs.append((a, b))
    return pairs


def hf_tokenizer_json(model_dir, tmp):
    tj = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(tj):
        return tj
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    out = os.path.join(tmp, os.path.basename(model_dir) + ".tokenizer.json")
    tok.backend_tokenizer.save(out)
    return out


def run_mlxport(binp, model_dir, pairs_path, threads, reps):
    best = None
    for _ in range(reps):
        with open(pairs_path, "rb") as f:
            p = subprocess.run([binp, "tokenize", "--model", model_dir, "--pair", "--stats", "--no-output", "--threads", str(threads)],
                               stdin=f, capture_output=True, check=True)
        r = json.loads(p.stderr.decode().strip().splitlines()[-1])
        best = r if best is None or r["seconds"] < best["seconds"] else best
    return best


def run_hf(py, tj, pairs_path, threads, reps):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    p = subprocess.run([py, "-c", HF_SCRIPT, tj, pairs_path, str(reps)], env=env, capture_output=True, check=True)
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "mlxport"))
    ap.add_argument("--shared", default=os.environ.get("MP_SHARED_DIR", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args()
    models = [("WordPiece", "all-MiniLM-L6-v2"), ("BPE", "roberta-large-mnli"), ("Unigram", "deberta-v3-base-mnli-fever-anli")]
    pairs = load_pairs(a.shared)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs_path = os.path.join(tmp, "mnli_pairs.tsv")
        with open(pairs_path, "w", encoding="utf-8") as f:
            for x, y in pairs:
                f.write(f"{x}\t{y}\n")
        for fam, name in models:
            d = os.path.join(a.shared, "models", name)
            tj = hf_tokenizer_json(d, tmp)
            for th in [int(t) for t in a.threads.split(",")]:
                ours = run_mlxport(a.bin, d, pairs_path, th, a.reps)
                hf = run_hf(sys.executable, tj, pairs_path, th, a.reps)
                if ours["tokens"] != hf["tokens"]:
                    print(f"warning: {name}: token counts differ (mlxport {ours['tokens']}, HF {hf['tokens']})", file=sys.stderr)
                r = dict(family=fam, model=name, threads=th, pairs=len(pairs), tokens=ours["tokens"],
                         mlx_tok_s_wall=ours["tokens"] / ours["seconds"], hf_tok_s_wall=hf["tokens"] / hf["seconds"],
                         mlx_tok_s_cpu=ours["tokens"] / max(ours["cpu_seconds"], 1e-9), hf_tok_s_cpu=hf["tokens"] / max(hf["cpu_seconds"], 1e-9))
                r["ratio_wall"] = r["mlx_tok_s_wall"] / r["hf_tok_s_wall"]
                r["ratio_cpu"] = r["mlx_tok_s_cpu"] / r["hf_tok_s_cpu"]
                results.append(r)
                print(f"{fam:9s} {name:32s} threads={th}  mlxport {r['mlx_tok_s_wall']/1e6:6.2f}M tok/s wall "
                      f"{r['mlx_tok_s_cpu']/1e6:6.2f}M tok/s cpu | HF {r['hf_tok_s_wall']/1e6:6.2f}M wall {r['hf_tok_s_cpu']/1e6:6.2f}M cpu"
                      f" | ratio wall {r['ratio_wall']:.2f}x cpu {r['ratio_cpu']:.2f}x", flush=True)
    if a.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
