#!/usr/bin/env python3
"""The speedup gate on the original configuration's eleven models: full-size random-weight twins
(each model's real config.json and tokenizer from ../shared/models, weights drawn by transformers'
own initialisation: speed does not depend on the weight values), saved as the fp32 original,
converted by mlxport to MLX q8 (group 64) and, with --formats q8,float16, to float16 (the default
`mlxport convert` dtype, no quantization: the fast mode runs it on AMX-BF16 tiles where the CPU has
them), then

    mlxport eval --model CONVERTED --baseline FP32 --dataset <the model's benchmark> --max-samples N

with the default min_speedup 1.2 gate: throughput and batch-1 latency of the q8 model in the fast
mode against the fp32 original, on real dev-set inputs (MNLI-matched pairs for the NLI / zero-shot
models, STS-B pairs for the embedders), plus the fast mode's agreement with the MLX-faithful mode
(random weights: logits are noise, so agreement here only shows the modes compute the same thing,
not model quality). Prints a Markdown table.

    python bench/bench_models.py prepare [--formats q8,float16]   # twins + conversions into $MP_CACHE/bench-twins
    python bench/bench_models.py run [--formats q8,float16] [--samples 96] [--latency 20] [--threads 2] [--only a,b]

ModernBERT's twin needs transformers >= 4.48 ($MP_CACHE/venv-modernbert, scripts/setup.sh test).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("MP_BIN", os.path.join(ROOT, "build", "mlxport"))
SHARED = os.environ.get("MP_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
CACHE = os.environ.get("MP_CACHE", os.path.join(ROOT, ".cache"))
OUT = os.path.join(CACHE, "bench-twins")

# model folder in ../shared/models -> the dataset its eval uses
MODELS = {
    "distilbert-base-uncased-mnli": "mnli",
    "all-MiniLM-L6-v2": "stsb",
    "deberta-v3-base-mnli-fever-anli": "mnli",
    "bart-large-mnli": "mnli",
    "all-MiniLM-L12-v2": "stsb",
    "all-mpnet-base-v2": "stsb",
    "deberta-v3-xsmall-mnli-binary": "mnli",
    "mobilebert-uncased-mnli": "mnli",
    "modernbert-large-zeroshot-v2": "mnli",
    "roberta-large-mnli": "mnli",
    "xtremedistil-l6-h256-nli-binary": "mnli",
}

TWIN = r"""
import json, os, sys, torch
sys.path.insert(0, sys.argv[3])
import modernbert_ref  # torch-1.13 shims for transformers' ModernBERT (no-ops for the other families)
transformers = modernbert_ref.compat() if "modernbert" in sys.argv[1] else __import__("transformers")
src, dst = sys.argv[1], sys.argv[2]
cfg = transformers.AutoConfig.from_pretrained(src)
torch.manual_seed(0)
arch = (cfg.architectures or ["AutoModel"])[0]
if sys.argv[4] != "stsb" and not arch.endswith("ForSequenceClassification"):
    # a config saved without its head (xtremedistil's shared config is a bare BertModel): the
    # binary NLI head of the real model
    arch = type(transformers.AutoModelForSequenceClassification.from_config(cfg)).__name__
    cfg.architectures = [arch]
    cfg.id2label, cfg.label2id = {0: "entailment", 1: "not_entailment"}, {"entailment": 0, "not_entailment": 1}
cls = getattr(transformers, arch, None) if arch.endswith("ForSequenceClassification") else None
m = (cls(cfg) if cls else transformers.AutoModel.from_config(cfg)).eval()
m.save_pretrained(dst, safe_serialization=True)
print(type(m).__name__, sum(p.numel() for p in m.parameters()))
"""


def modernbert_python():
    for c in (os.environ.get("MP_MODERNBERT_PYTHON"), os.path.join(CACHE, "venv-modernbert", "bin", "python")):
        if c and os.path.exists(c):
            return c
    return None


# converted formats: the convert arguments of each
FORMATS = {"q8": ["-q", "--q-bits", "8", "--q-group-size", "64", "--dtype", "float32"], "float16": ["--dtype", "float16"]}


def prepare(names, formats):
    os.makedirs(OUT, exist_ok=True)
    for name in names:
        src, fp32 = os.path.join(SHARED, "models", name), os.path.join(OUT, name)
        if not os.path.exists(os.path.join(fp32, "model.safetensors")) and not os.path.exists(
                os.path.join(fp32, "model.safetensors.index.json")):
            py = modernbert_python() if "modernbert" in name else sys.executable
            if not py:
                sys.exit(f"{name}: no Python with transformers >= 4.48 (run scripts/setup.sh test)")
            tmp = fp32 + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src, tmp)  # the real config and tokenizer files
            p = subprocess.run([py, "-c", TWIN, src, tmp, os.path.join(ROOT, "tools"), MODELS[name]], capture_output=True,
                               text=True)
            if p.returncode:
                sys.exit(f"{name}: twin failed:\n{p.stderr[-2000:]}")
            print(f"{name}: {p.stdout.strip()}", flush=True)
            shutil.rmtree(fp32, ignore_errors=True)
            os.rename(tmp, fp32)
        for fmt in formats:
            dst = os.path.join(OUT, f"{name}-{fmt}")
            if not os.path.exists(os.path.join(dst, "config.json")):
                subprocess.run([BIN, "convert", "--hf-path", fp32, "--mlx-path", dst, *FORMATS[fmt]], check=True,
                               capture_output=True)
                print(f"{name}: converted to {fmt}", flush=True)


def run(names, samples, latency, threads, fmt):
    rows = []
    for name in names:
        fp32, q8 = os.path.join(OUT, name), os.path.join(OUT, f"{name}-{fmt}")
        ds = MODELS[name]
        data = ["--dataset", "stsb", "--data-dir", os.path.join(SHARED, "datasets")] if ds == "stsb" else \
            ["--dataset", "mnli", "--data-dir", os.path.join(SHARED, "datasets")]
        cmd = [BIN, "eval", "--model", q8, "--baseline", fp32, *data, "--max-samples", str(samples),
               "--latency-requests", str(latency), "--threads", str(threads), "--min-speedup", "1.2", "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode not in (0, 1):
            print(f"{name}: eval failed ({p.returncode}): {p.stderr[-600:]}", file=sys.stderr)
            rows.append((name, None))
            continue
        rows.append((name, json.loads(p.stdout)))
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(f"\n{fmt} (fast mode) vs fp32 original, {samples} examples per model, batch 32, {threads} threads; "
          f"latency at batch 1 over {latency} requests\n")
    print(f"| model | dataset | tokens/example | fp32 ex/s | {fmt} ex/s | speedup | p50 ms fp32 / {fmt} | p50 ratio "
          "| speedup gate (>= 1.2) | fast vs faithful: agreement, max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, r in rows:
        if r is None:
            print(f"| {name} | | | | | | | | eval failed | |")
            continue
        b, c, cmp = r["original"], r["converted"], r["comparison"]
        gate = next((g for g in r["quality_gates"]["gates"] if g["name"] == "speedup"), None)
        fm = c.get("fast_mode", {})
        agree = fm.get("agreement_with_faithful")
        diff = fm.get("max_abs_logit_diff", fm.get("max_abs_cosine_diff"))
        print(f"| {name} | {MODELS[name]} | {c['tokens'] / max(1, c['n_examples']):.0f} | "
              f"{b['qpm'] / 60:.1f} | {c['qpm'] / 60:.1f} | {cmp['speedup']:.2f}x | "
              f"{b['latency_p50_ms']:.1f} / {c['latency_p50_ms']:.1f} | {cmp['speedup_p50']:.2f}x | "
              f"{'pass' if gate and gate['passed'] else 'FAIL'} | "
              f"{'' if agree is None else f'{agree:.3f}, '}{diff:.3g} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["prepare", "run", "all"])
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--latency", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None)
    ap.add_argument("--formats", default="q8", help="converted formats, comma-separated: q8, float16")
    a = ap.parse_args()
    names = [n for n in MODELS if not a.only or n in a.only.split(",")]
    formats = [f for f in a.formats.split(",") if f]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        ap.error(f"unknown format(s) {', '.join(bad)}: use {', '.join(FORMATS)}")
    if a.what in ("prepare", "all"):
        prepare(names, formats)
    if a.what in ("run", "all"):
        for fmt in formats:
            run(names, a.samples, a.latency, a.threads, fmt)


if __name__ == "__main__":
    main()
