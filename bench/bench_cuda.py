#!/usr/bin/env python3
"""Issue #20's GPU benchmark, run on the GPU machine in one call: the original configuration's
eleven models as full-size random-weight twins (each model's real config.json and tokenizer; weights
drawn by transformers' own initialisation on this machine, saved in float16: speed does not depend on
the weight values), converted by mlxport to MLX q8 and q4 (group 64), then forward-pass throughput
(sequences/s, every token real, no padding) at fixed lengths for

    mlxport fp16, bf16 (the HF twin), q8, q4 (the MLX folders)   bench/bench_device.c
    PyTorch float16 (transformers, SDPA attention where the family has it, eager otherwise)

on the same GPU in the same run, one after the other, plus the memory targets: roberta-large at batch
64 x 512 tokens and ModernBERT-large at 8,192 tokens, with peak GPU memory (mlxport: its allocator's
high-water mark; PyTorch: torch.cuda.max_memory_allocated). Prints Markdown tables and writes every
measurement as JSON lines.

    tests/gpu/prepare.sh build-cuda bench-carry bench   # here: bin/mlxport, bin/bench_device, tokenizers
    python3 bench/bench_cuda.py --carry bench-carry [--out DIR] [--batch 128] [--seq 48,128]
                                [--seconds 1.0] [--only a,b] [--no-torch] [--no-memory]
                                [--variants fp16,bf16,q8,q4[,fp16-mma,fp16-wmma,fp16-unfused,fp16-nograph,fp16-prev,q8-faithful,q4-faithful,q8-nofuse,q8-allfp8,q8-erf,q8-raw,fp16-erf,fp16-noplain,fp16-fa1,q8-fa1,q8-qgemm,q4-qgemm,mlx-fp16,mlx-q8,mlx-q4]]
                                [--mlx-site DIR]
                                [--profile]

fp16-mma is fp16 with the mma.sync flash-attention kernel (MP_CUDA_ATTENTION=mma, the default since
2026-12-05), fp16-wmma fp16 with the earlier WMMA kernel (MP_CUDA_ATTENTION=wmma), fp16-unfused fp16
without the fused Q/K/V GEMM and the vector kernels (MP_CUDA_FUSED_QKV=0 MP_CUDA_VEC_KERNELS=0),
fp16-nograph fp16 without CUDA graphs (MP_CUDA_GRAPHS=0), fp16-prev fp16 without graphs and without
cuBLASLt autotuning (MP_CUDA_GRAPHS=0 MP_CUDA_AUTOTUNE=0: the code path before 2026-12-06's second run);
q8-qgemm / q4-qgemm the MLX folders with their weights kept quantized on the device (MP_CUDA_QGEMM=1:
the kernels of src/cuda/qgemm.cuh; q8 / q4 dequantize them to fp16 at upload); mlx-fp16, mlx-q8 and
mlx-q4 are MLX itself (mlx-cuda, installed with --mlx-site) running the float16 / q8 / q4 MLX folders
through bench/bench_mlx_peer.py (BERT, RoBERTa and DistilBERT models only: tools/mlx_bert.py);
--profile writes mlxport fp16's time per operation (MP_CUDA_PROFILE=1) to OUT/profile-MODEL-SEQ.txt,
and each q8 variant's to OUT/profile-MODEL-VARIANT-SEQ.txt.
"""
import argparse
import json
import lzma
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> kind: "cls" (a sequence-classification head; zero-shot/NLI models) or "embed" (sentence
# embedders, the bare encoder)
MODELS = {
    "all-MiniLM-L6-v2": "embed",
    "all-MiniLM-L12-v2": "embed",
    "all-mpnet-base-v2": "embed",
    "xtremedistil-l6-h256-nli-binary": "cls",
    "deberta-v3-xsmall-mnli-binary": "cls",
    "mobilebert-uncased-mnli": "cls",
    "distilbert-base-uncased-mnli": "cls",
    "deberta-v3-base-mnli-fever-anli": "cls",
    "roberta-large-mnli": "cls",
    "bart-large-mnli": "cls",
    "modernbert-large-zeroshot-v2": "cls",
}
SMALL = {"all-MiniLM-L6-v2", "all-MiniLM-L12-v2", "all-mpnet-base-v2", "xtremedistil-l6-h256-nli-binary",
         "deberta-v3-xsmall-mnli-binary", "mobilebert-uncased-mnli"}  # issue #20's "six small models"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def twin_files(src):
    """the files a twin of src holds besides its weights and config: src's, the .xz ones unpacked"""
    return {f[:-3] if f.endswith(".xz") else f for f in os.listdir(src)} - {"config.json"}


def make_twin(torch, transformers, src, dst, kind, device):
    """Full-size random-weight twin of the model whose config and tokenizer are in src. A twin made
    earlier in dst is kept when it holds every file of src; one made from a carry without some of
    them (a suite carry has no tokenizer for the models without tokenizer.json) is made again, and
    the folders converted from it are dropped."""
    if os.path.exists(os.path.join(dst, "config.json")):
        missing = sorted(f for f in twin_files(src) if not os.path.exists(os.path.join(dst, f)))
        if not missing:
            return
        log(f"{os.path.basename(dst)}: the twin made earlier lacks {', '.join(missing)}: making it again")
        for d in (dst, dst + "-q8", dst + "-q4", dst + "-mlx16"):
            shutil.rmtree(d, ignore_errors=True)
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for f in os.listdir(src):
        p = os.path.join(src, f)
        if f.endswith(".xz"):
            with lzma.open(p) as a, open(os.path.join(tmp, f[:-3]), "wb") as b:
                shutil.copyfileobj(a, b)
        elif os.path.isdir(p):
            shutil.copytree(p, os.path.join(tmp, f))
        elif f != "config.json":
            shutil.copy(p, tmp)
    cfg = transformers.AutoConfig.from_pretrained(src)
    torch.manual_seed(0)
    arch = (cfg.architectures or ["AutoModel"])[0]
    if kind == "cls" and not arch.endswith("ForSequenceClassification"):
        # a config saved without its head (xtremedistil's is a bare BertModel): the binary NLI head
        arch = type(transformers.AutoModelForSequenceClassification.from_config(cfg)).__name__
        cfg.architectures = [arch]
        cfg.id2label, cfg.label2id = {0: "entailment", 1: "not_entailment"}, {"entailment": 0, "not_entailment": 1}
    cls = getattr(transformers, arch, None) if kind == "cls" else None
    with torch.device(device):
        m = cls(cfg) if cls else transformers.AutoModel.from_config(cfg)
    m = m.half().eval()
    m.save_pretrained(tmp, safe_serialization=True)
    del m
    if device != "cpu":
        torch.cuda.empty_cache()
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(tmp, dst)


# variants that are fp16 with another attention kernel, without the fused Q/K/V GEMM and the
# vector LayerNorm / activation kernels, without CUDA graphs, or without graphs and cuBLASLt
# autotuning (docs/cuda.md)
VARIANT_ENV = {"fp16-mma": {"MP_CUDA_ATTENTION": "mma"}, "fp16-wmma": {"MP_CUDA_ATTENTION": "wmma"},
               "fp16-unfused": {"MP_CUDA_FUSED_QKV": "0", "MP_CUDA_VEC_KERNELS": "0"},
               "fp16-nograph": {"MP_CUDA_GRAPHS": "0"}, "fp16-fa1": {"MP_CUDA_FLASH_BLOCKS": "1"},
               "q8-fa1": {"MP_CUDA_FLASH_BLOCKS": "1"}, "fp16-vec0": {"MP_CUDA_VEC_KERNELS": "0"},
               "fp16-prev": {"MP_CUDA_GRAPHS": "0", "MP_CUDA_AUTOTUNE": "0"},
               "q8-qgemm": {"MP_CUDA_QGEMM": "1", "MP_CUDA_FAST8": "0"},
               "q4-qgemm": {"MP_CUDA_QGEMM": "1", "MP_CUDA_FAST8": "0"},
               "q8-faithful": {"MP_CUDA_FAST8": "0"}, "q4-faithful": {"MP_CUDA_FAST8": "0"},
               "q8-nofuse": {"MP_CUDA_FAST8_FUSE": "0"},
               # the fast mode of the fourth session: every quantized layer on FP8, the erf GELU exact
               "q8-allfp8": {"MP_CUDA_FAST8_RAW": "1", "MP_CUDA_FAST_GELU": "erf"},
               "q8-erf": {"MP_CUDA_FAST_GELU": "erf"},
               # every quantized layer on FP8 (a quantizing pass of its own where no kernel wrote the
               # copy), the GELU in the GEMM's epilogue
               "q8-raw": {"MP_CUDA_FAST8_RAW": "1"},
               # fp16 weights in the fast mode with the erf GELU exact (its own pass after the GEMM)
               "fp16-erf": {"MP_CUDA_FAST_GELU": "erf"},
               # the attention kernel's general form where its plain form applies (no mask rules but padding)
               "fp16-noplain": {"MP_CUDA_FLASH_PLAIN": "0"}}


def mlxport_bench(bench, folder, dtype, seqs, batch, seconds, device, dump=None, env=None):
    p = subprocess.run([bench, "--model", folder, "--device", device, "--dtype", dtype, "--seq",
                        ",".join(map(str, seqs)), "--batch", str(batch), "--seconds", str(seconds)] +
                       (["--dump", dump] if dump else []), capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    rows = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    err = None if p.returncode == 0 else (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
    return {r["seq"]: r for r in rows}, err


def mlx_bench(folder, seqs, batch, seconds, site, device, dump=None):
    """MLX itself on an MLX folder (bench/bench_mlx_peer.py, in its own process: mlx-cuda installed with
    `pip install --target SITE`, the CUDA libraries it links taken from this machine's nvidia-* packages,
    the ones torch uses); the same JSON rows as bench_device"""
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        import glob
        import site as pysite
        libs = sorted({os.path.dirname(p) for d in pysite.getsitepackages()
                       for p in glob.glob(os.path.join(d, "nvidia", "*", "lib", "*.so*"))})
        env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")])
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_mlx_peer.py"), "--model", folder, "--seq",
                        ",".join(map(str, seqs)), "--batch", str(batch), "--seconds", str(seconds)] +
                       (["--dump", dump] if dump else []) + (["--cpu"] if device == "cpu" else []),
                       capture_output=True, text=True, env=env)
    rows = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    err = None if p.returncode == 0 else (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1][:300]
    return {r["seq"]: r for r in rows}, err


def torch_out(torch, m, kind, ids):
    """the output mlxport gives: logits, or the mean-pooled embedding (float32, on the host)"""
    mask = torch.ones_like(ids)
    r = m(input_ids=ids, attention_mask=mask)
    if kind == "cls":
        return r.logits.float().cpu()
    h = r.last_hidden_state * mask[..., None]
    return (h.sum(1) / mask.sum(1, keepdim=True)).float().cpu()


def compare(torch, kind, mine, ref):
    """mlxport's outputs against PyTorch's on the same ids: min cosine over rows (embedders), max |diff|
    and argmax agreement (classifiers)"""
    if kind == "embed":
        cos = torch.nn.functional.cosine_similarity(mine, ref, dim=1)
        return {"min_cos": float(cos.min())}
    return {"max_abs": float((mine - ref).abs().max()), "argmax": float((mine.argmax(1) == ref.argmax(1)).float().mean())}


def torch_bench(torch, transformers, folder, kind, seqs, batch, seconds, device, checks=()):
    """PyTorch float16 forward passes: SDPA attention where transformers has it for the family.
    checks: (key, ids file, mlxport output file) triples compared with PyTorch on those ids."""
    auto = transformers.AutoModelForSequenceClassification if kind == "cls" else transformers.AutoModel
    impl = "sdpa"
    try:
        m = auto.from_pretrained(folder, dtype=torch.float16, attn_implementation="sdpa")
    except (ValueError, ImportError, TypeError):
        impl = "eager"
        m = auto.from_pretrained(folder, dtype=torch.float16, attn_implementation="eager")
    m = m.to(device).eval()
    vocab = m.config.vocab_size
    out = {}
    for seq in seqs:
        g = torch.Generator(device=device).manual_seed(0)
        ids = torch.randint(min(1000, vocab - 1), vocab, (batch, seq), device=device, generator=g)
        bos, eos = getattr(m.config, "bos_token_id", None), getattr(m.config, "eos_token_id", None)
        if isinstance(bos, int):  # special tokens at both ends, as bench_device puts them (BART's head
            ids[:, 0] = bos       # reads the state at the last eos)
        if isinstance(eos, int):
            ids[:, -1] = eos
        mask = torch.ones_like(ids)
        if device != "cpu":
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            for _ in range(3):
                m(input_ids=ids, attention_mask=mask)
            if device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            it = 0
            while it < 3 or time.perf_counter() - t0 < seconds:
                r = m(input_ids=ids, attention_mask=mask)
                if kind == "cls":
                    r.logits.float().cpu()  # results to the host, as mlxport gives them
                else:  # mean pooling, as the embedders' sentence-transformers module
                    h = r.last_hidden_state * mask[..., None]
                    (h.sum(1) / mask.sum(1, keepdim=True)).float().cpu()
                it += 1
            dt = time.perf_counter() - t0
        out[seq] = {"seqs_per_s": it * batch / dt, "iters": it, "seconds": dt, "attn": impl,
                    "peak_mb": torch.cuda.max_memory_allocated() / 1048576 if device != "cpu" else 0.0}
    import numpy as np
    out["checks"] = {}
    with torch.inference_mode():
        for key, ids_f, out_f in checks:
            if not (os.path.exists(ids_f) and os.path.exists(out_f)):
                continue
            ids = torch.from_numpy(np.fromfile(ids_f, dtype=np.int32).astype(np.int64)).reshape(batch, -1).to(device)
            ref = torch_out(torch, m, kind, ids)
            mine = torch.from_numpy(np.fromfile(out_f, dtype=np.float32)).reshape(ref.shape)
            out["checks"][key] = compare(torch, kind, mine, ref)
    del m
    if device != "cpu":
        torch.cuda.empty_cache()
    return out


def sps(d, seq):
    return d.get(seq, {}).get("seqs_per_s") if isinstance(d, dict) and "error" not in d else None


def fmt(x):
    return "—" if x is None else f"{x:,.0f}"


def ratio(x, y):
    return "—" if x is None or not y else f"{x / y:.2f}x"


def report(res, names, seqs, variants, title):
    """the throughput and correctness tables of res[name][variant][seq] (and res[name]["checks"])"""
    print(f"\n## Sequences/s, {title}\n")
    for seq in seqs:
        print(f"\n### {seq} tokens\n")
        extra = [v for v in variants if v not in ("fp16", "bf16", "q8", "q4")]  # e.g. fp16-mma
        print("| model | PyTorch fp16 (attn) | mlxport fp16 | bf16 | q8 | q4 | fp16 / PyTorch | q8 / own fp16 |" +
              "".join(f" {v} | {v} / PyTorch |" for v in extra))
        print("|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(extra))
        for name in names:
            r = res.get(name, {})
            t = sps(r.get("torch", {}), seq)
            attn = r.get("torch", {}).get(seq, {}).get("attn", "") if t else "failed"
            f16 = sps(r.get("fp16", {}), seq)
            cells = [fmt(sps(r.get(v, {}), seq)) for v in ("fp16", "bf16", "q8", "q4")]
            tag = " (small)" if name in SMALL else ""
            print(f"| {name}{tag} | {fmt(t)} ({attn}) | " + " | ".join(cells) +
                  f" | {ratio(f16, t)} | {ratio(sps(r.get('q8', {}), seq), f16)} |" +
                  "".join(f" {fmt(sps(r.get(v, {}), seq))} | {ratio(sps(r.get(v, {}), seq), t)} |" for v in extra))
    print("\n## mlxport on CUDA against PyTorch float16 on the same ids (embedders: min cosine over the batch; "
          "classifiers: max |logit diff|, argmax agreement)\n")
    print("| model | tokens | " + " | ".join(variants) + " |")
    print("|---|---:|" + "---|" * len(variants))
    for name in names:
        ch = res.get(name, {}).get("checks", {})
        for seq in seqs:
            cells = []
            for v in variants:
                c = ch.get((v, seq))
                cells.append("—" if not c else f"{c['min_cos']:.6f}" if "min_cos" in c else
                             f"{c['max_abs']:.2g}, {100 * c['argmax']:.0f}%")
            print(f"| {name} | {seq} | " + " | ".join(cells) + " |")
    errs = [(n, v, r[v]["error"]) for n, r in res.items() for v in r
            if v != "checks" and isinstance(r[v], dict) and "error" in r[v]]
    for n, v, e in errs:
        print(f"- {n} {v}: {e}")


def report_jsonl(path):
    """the tables again from a run's bench_cuda.jsonl (also one cut short)"""
    res, seqs, variants, batch = {}, [], [], None
    mem = []
    for line in open(path):
        row = json.loads(line)
        if "memory_target" in row:
            mem.append(row)
            continue
        name = row["model"]
        if "/" in name:  # the first runs wrote the folder here: .../NAME[-q8|-q4]
            name = os.path.basename(name).removesuffix("-q8").removesuffix("-q4")
        r = res.setdefault(name, {})
        if "check" in row:
            r.setdefault("checks", {})[(row["check"], row["seq"])] = row
            continue
        key = "torch" if row["runtime"] == "torch" else row["variant"]
        r.setdefault(key, {})[row["seq"]] = row
        batch = row.get("batch", batch)
        if row["seq"] not in seqs:
            seqs.append(row["seq"])
        if row["runtime"] == "mlxport" and row["variant"] not in variants:
            variants.append(row["variant"])
    names = [n for n in MODELS if n in res]
    report(res, names, sorted(seqs), variants, f"batch {batch}, every token real (from {path})")
    if mem:
        print("\n## Memory targets (peak GPU memory)\n")
        print("| model | shape | mlxport fp16 seqs/s | mlxport peak MB | PyTorch fp16 seqs/s | PyTorch peak MB |")
        print("|---|---|---:|---:|---:|---:|")
        for m in mem:
            a, t = m["mlxport"], m["torch"]
            print(f"| {m['memory_target']} | {m['batch']} x {m['seq']} | {fmt(a.get('seqs_per_s'))} | "
                  f"{fmt(a.get('peak_mb'))} | {fmt(t.get('seqs_per_s'))} | {fmt(t.get('peak_mb'))} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--carry", default="bench-carry")
    ap.add_argument("--work", default="/tmp/mlxport-bench-cuda")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", default="48,128")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--only", default=None)
    ap.add_argument("--variants", default="fp16,bf16,q8,q4",
                    help="of fp16, bf16, q8, q4, fp16-mma and fp16-wmma (fp16 with MP_CUDA_ATTENTION=mma / wmma), "
                         "fp16-unfused (MP_CUDA_FUSED_QKV=0 MP_CUDA_VEC_KERNELS=0), fp16-nograph (MP_CUDA_GRAPHS=0), "
                         "fp16-prev (MP_CUDA_GRAPHS=0 MP_CUDA_AUTOTUNE=0), q8-qgemm / q4-qgemm (MP_CUDA_QGEMM=1: the MLX "
                         "weights kept quantized on the device, src/cuda/qgemm.cuh)")
    ap.add_argument("--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke test of this script)")
    ap.add_argument("--mlx-site", default=None,
                    help="folder where mlx and mlx-cuda are installed (pip install --no-deps --target DIR ...), for "
                         "the mlx-fp16 / mlx-q8 / mlx-q4 variants: MLX itself on the same MLX folders "
                         "(bench/bench_mlx_peer.py; BERT, RoBERTa and DistilBERT models only)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="also write $OUT/profile-MODEL-SEQ.txt: mlxport fp16's time per operation (MP_CUDA_PROFILE=1)")
    ap.add_argument("--report", metavar="JSONL", help="print the tables of an earlier run's bench_cuda.jsonl")
    a = ap.parse_args()
    if a.report:
        return report_jsonl(a.report)
    import torch
    import transformers

    carry = os.path.abspath(a.carry)
    mlxport, bench = os.path.join(carry, "bin", "mlxport"), os.path.join(carry, "bin", "bench_device")
    os.environ["LD_LIBRARY_PATH"] = os.path.join(carry, "lib") + ":" + os.environ.get("LD_LIBRARY_PATH", "")
    for f in os.listdir(os.path.join(carry, "lib")):  # prepare.sh xz-compresses them: unpacked in place once
        if f.endswith(".xz"):
            with lzma.open(os.path.join(carry, "lib", f)) as x, open(os.path.join(carry, "lib", f[:-3]), "wb") as y:
                shutil.copyfileobj(x, y)
            os.remove(os.path.join(carry, "lib", f))
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    jl = open(os.path.join(a.out, "bench_cuda.jsonl"), "w")
    seqs = [int(s) for s in a.seq.split(",")]
    names = a.only.split(",") if a.only else list(MODELS)
    variants = a.variants.split(",")
    gpu = torch.cuda.get_device_name(0) if a.device != "cpu" else "cpu"
    log(f"== {gpu}; torch {torch.__version__}, transformers {transformers.__version__}; batch {a.batch}")
    res = {}
    t_start = time.time()
    for name in names:
        kind = MODELS[name]
        twin = os.path.join(a.work, name)
        t0 = time.time()
        make_twin(torch, transformers, os.path.join(carry, "shared", "models", name), twin, kind, a.device)
        folders = {"bf16": (twin, "bfloat16")}
        for v in ["fp16"] + [v for v in variants if v.startswith("fp16-")]:
            folders[v] = (twin, "float16")  # fp16, fp16-mma, fp16-nograph, ...
        convs = []
        for bits in (8, 4):  # the two conversions side by side
            q = f"{twin}-q{bits}"
            if any(f"q{bits}" in v.split("-") for v in variants) and not os.path.exists(os.path.join(q, "config.json")):
                convs.append(subprocess.Popen([mlxport, "convert", "--hf-path", twin, "--mlx-path", q, "-q", "--q-bits",
                                               str(bits), "--q-group-size", "64", "--dtype", "float16"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            for v in [f"q{bits}"] + [v for v in variants if v.startswith(f"q{bits}-")]:
                folders[v] = (q, "float16")  # q8, q8-qgemm, q8-faithful, q8-nofuse, ...
        f16 = f"{twin}-mlx16"  # the unquantized MLX folder MLX itself runs (mlx-fp16)
        if "mlx-fp16" in variants and not os.path.exists(os.path.join(f16, "config.json")):
            convs.append(subprocess.Popen([mlxport, "convert", "--hf-path", twin, "--mlx-path", f16, "--dtype",
                                           "float16"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        folders["mlx-fp16"] = (f16, "float16")
        folders["mlx-q8"], folders["mlx-q4"] = folders["q8"], folders["q4"]
        for p in convs:
            if p.wait():
                log(f"{name}: conversion failed: {p.stderr.read().decode()[-400:]}")
        log(f"{name}: twin + conversions {time.time() - t0:.0f}s")
        r = res[name] = {}
        for v in variants:
            if v.startswith("mlx-"):
                rows, err = mlx_bench(folders[v][0], seqs, a.batch, a.seconds, a.mlx_site, a.device,
                                      dump=os.path.join(a.work, f"dump-{name}-{v}"))
            else:
                rows, err = mlxport_bench(bench, folders[v][0], folders[v][1], seqs, a.batch, a.seconds, a.device,
                                          dump=os.path.join(a.work, f"dump-{name}-{v}"),
                                          env=VARIANT_ENV.get(v))
            r[v] = rows if not err else {"error": err}
            for seq, row in rows.items():
                jl.write(json.dumps({**row, "folder": row["model"], "model": name, "runtime": "mlxport", "variant": v}) + "\n")
            if err:
                log(f"{name} {v}: {err}")
        # where the time goes, per operation (MP_CUDA_PROFILE), without bench_device's 3 warm-up
        # passes (weight uploads, cuBLASLt start-up, autotuning): fp16, and each q8 variant measured
        if a.profile and a.device != "cpu":
            for v in ["fp16"] + [v for v in variants if v == "q8" or v.startswith("q8-")]:
                for seq in seqs:
                    p = subprocess.run([bench, "--model", folders[v][0], "--device", a.device, "--dtype", "float16",
                                        "--seq", str(seq), "--batch", str(a.batch), "--seconds", str(a.seconds)],
                                       capture_output=True, text=True,
                                       env={**os.environ, **VARIANT_ENV.get(v, {}), "MP_CUDA_PROFILE": "1",
                                            "MP_CUDA_PROFILE_SKIP": "3"})
                    tag = "" if v == "fp16" else f"-{v}"
                    with open(os.path.join(a.out, f"profile-{name}{tag}-{seq}.txt"), "w") as f:
                        f.write(p.stdout + p.stderr)
        if not a.no_torch:
            try:
                checks = [((v, seq), os.path.join(a.work, f"dump-{name}-{v}-{seq}.ids"),
                           os.path.join(a.work, f"dump-{name}-{v}-{seq}.out")) for v in variants for seq in seqs]
                r["torch"] = torch_bench(torch, transformers, twin, kind, seqs, a.batch, a.seconds, a.device, checks)
                r["checks"] = r["torch"].pop("checks")
                for (v, seq), c in r["checks"].items():
                    jl.write(json.dumps({"model": name, "check": v, "seq": seq, **c}) + "\n")
                for seq, row in r["torch"].items():
                    jl.write(json.dumps({"model": name, "runtime": "torch", "variant": "fp16", "seq": seq,
                                         "batch": a.batch, **row}) + "\n")
            except Exception as e:  # a family transformers cannot run: named in the table
                r["torch"] = {"error": f"{type(e).__name__}: {e}"[:200]}
                log(f"{name} torch: {r['torch']['error']}")
        jl.flush()
        log(f"{name}: done ({time.time() - t0:.0f}s)")

    report(res, names, seqs, variants, f"batch {a.batch}, every token real ({gpu}; torch {torch.__version__}, "
           f"transformers {transformers.__version__})")

    if not a.no_memory:
        print("\n## Memory targets (peak GPU memory)\n")
        print("| model | shape | mlxport fp16 seqs/s | mlxport peak MB | PyTorch fp16 seqs/s | PyTorch peak MB |")
        print("|---|---|---:|---:|---:|---:|")
        for name, batch, seq in (("roberta-large-mnli", 64, 512), ("modernbert-large-zeroshot-v2", 1, 8192)):
            twin = os.path.join(a.work, name)
            if not os.path.exists(twin):
                make_twin(torch, transformers, os.path.join(carry, "shared", "models", name), twin, MODELS[name], a.device)
            rows, err = mlxport_bench(bench, twin, "float16", [seq], batch, a.seconds, a.device)
            m = rows.get(seq, {})
            try:
                t = torch_bench(torch, transformers, twin, MODELS[name], [seq], batch, a.seconds, a.device)[seq]
            except Exception as e:
                t = {"error": f"{type(e).__name__}: {e}"[:200]}
            jl.write(json.dumps({"memory_target": name, "batch": batch, "seq": seq, "mlxport": m or {"error": err},
                                 "torch": t}) + "\n")
            print(f"| {name} | {batch} x {seq} | {fmt(m.get('seqs_per_s'))} | {fmt(m.get('peak_mb'))}"
                  f"{'' if not err else ' (' + err + ')'} | {fmt(t.get('seqs_per_s'))} | {fmt(t.get('peak_mb'))} |")
    jl.close()
    log(f"== total {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
