"""The fast compute mode (integer kernels for MLX-quantized layers, `--compute fast`, the default of
embed / classify / zero-shot) against the MLX-faithful mode (`--compute faithful`, what MLX
computes):

* every family's random-weight twin (real configs, shrunk; tools/make_model_fixtures.py) converted
  to q8 and q4: the fast logits differ from the faithful ones (the integer path ran) by at most a
  bounded relative amount; the max relative difference per family is printed in the parity table;
* real all-MiniLM-L6-v2 on the STS-B dev set: Spearman of the fast mode within 0.002 of the faithful
  mode for q8 and 0.005 for q4 (through `mlxport eval`, which reports both);
* the project's NLI classifier on MNLI-matched: fast predictions agree with the faithful ones on at
  least 99% of the pairs for q8;
* fast mode is bit-identical with 1 or 2 threads and whatever else is in the batch, and so is the
  faithful mode;
* float16 / bfloat16 conversions (the default `convert` dtype) in the fast mode run on AMX-BF16 tiles
  where the CPU has them (`mlxport version --json`: "bf16_tiles"), within 1e-4 relative of the
  faithful logits on every family's twin and of the faithful STS-B Spearman (0.0005) on the real
  MiniLM; where it has none, the fast mode is the faithful one, bit for bit."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, SOURCE_DIR, minilm_dir, record_parity, run_cli
from parity_util import modernbert_python

CACHE = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
SANITIZED = os.environ.get("MP_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")
MNLI = os.path.join(SHARED, "datasets", "mnli", "validation_matched", "dev.jsonl")
STSB_DIR = os.path.join(SHARED, "datasets")
FAMILIES = ["bert-cls", "roberta-cls", "distilbert-cls", "deberta-wp-cls", "bart-cls", "mobilebert-cls", "mpnet-cls",
            "modernbert-cls"]
PAIRS = [("A man is playing a guitar.", "Someone plays music."),
         ("The cat sat on the mat.", "A dog is running in the park."),
         ("Quantization keeps the model small.", "The model is large."),
         ("It rained all day in the city and the streets were flooded by the evening.", "The weather was dry."),
         ("short", "a somewhat longer hypothesis with more words in it than the premise has")]


def require(path, what):
    if not os.path.exists(path):
        raise AssertionError(f"{path} is absent ({what}); run scripts/setup.sh")
    return path


@pytest.fixture(scope="module")
def family_models(tmp_path_factory):
    require(SHARED, "shared data folder")
    out = tmp_path_factory.mktemp("fastfam")
    mb_py = modernbert_python()
    assert mb_py, "no Python with transformers >= 4.48 for the ModernBERT twin: run scripts/setup.sh test"
    for py, names in ((sys.executable, [f for f in FAMILIES if not f.startswith("modernbert")]),
                      (mb_py, [f for f in FAMILIES if f.startswith("modernbert")])):
        subprocess.run([py, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out), "--shared", SHARED,
                        "--only", ",".join(names)], check=True, capture_output=True)
    models = {}
    for name in FAMILIES:
        for bits in (8, 4):
            dst = out / f"{name}-q{bits}"
            run_cli("convert", "--hf-path", str(out / f"{name}-st"), "--mlx-path", str(dst), "-q", "--q-bits", str(bits),
                    "--q-group-size", "32")
            models[(name, bits)] = str(dst)
        for dt in ("float16", "bfloat16"):
            dst = out / f"{name}-{dt}"
            run_cli("convert", "--hf-path", str(out / f"{name}-st"), "--mlx-path", str(dst), "--dtype", dt)
            models[(name, dt)] = str(dst)
    return models


def bf16_tiles():
    return json.loads(run_cli("version", "--json").stdout)["bf16_tiles"]


def classify(model, pairs, mode, *extra):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", model, "--pair", "--json", "--compute", mode, *extra, input=lines)
    return np.array([json.loads(l)["logits"] for l in p.stdout.splitlines()])


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_fast_vs_faithful(family_models, name, bits):
    m = family_models[(name, bits)]
    fast, faithful = classify(m, PAIRS, "fast"), classify(m, PAIRS, "faithful")
    assert fast.shape == faithful.shape == (len(PAIRS), fast.shape[1])
    assert np.all(np.isfinite(fast))
    rel = float(np.abs(fast - faithful).max() / max(1.0, np.abs(faithful).max()))
    record_parity(name, f"q{bits} fast", "logits", rel)
    assert rel > 0, "fast mode gave the faithful logits: the integer kernels did not run"
    assert rel <= (0.03 if bits == 8 else 0.04), f"{name} q{bits}: fast vs faithful relative difference {rel}"


def check_invariance(model, mode, which=range(len(PAIRS))):
    """Bit-identical logits for each pair alone (1 and 2 threads) and in one padded batch."""
    lines = "".join(f"{p}\t{h}\n" for p, h in PAIRS)
    batch = run_cli("classify", "--model", model, "--pair", "--json", "--compute", mode, "--batch-size", "8",
                    input=lines).stdout.splitlines()
    for threads in ("1", "2"):
        for i in which:
            alone = run_cli("classify", "--model", model, "--pair", "--json", "--compute", mode, "--threads", threads,
                            input=f"{PAIRS[i][0]}\t{PAIRS[i][1]}\n").stdout.strip()
            assert json.loads(alone)["logits"] == json.loads(batch[i])["logits"], (model, mode, threads, i)


def test_fast_mode_thread_and_batch_invariance(family_models):
    """Bit-identical outputs alone and in a padded batch, with 1 and 2 threads (fast mode)."""
    check_invariance(family_models[("bert-cls", 8)], "fast")


@pytest.fixture(scope="module")
def minilm_q(tmp_path_factory):
    minilm = minilm_dir()
    assert minilm, "all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models"
    out = tmp_path_factory.mktemp("fastminilm")
    paths = {}
    for bits in (8, 4):
        paths[bits] = str(out / f"q{bits}")
        run_cli("convert", "--hf-path", minilm, "--mlx-path", paths[bits], "-q", "--q-bits", str(bits))
    return paths


@pytest.mark.parametrize("bits,tol", [(8, 0.002), (4, 0.005)])
def test_minilm_stsb_fast_within_faithful(minilm_q, bits, tol):
    require(os.path.join(STSB_DIR, "stsb", "dev.tsv"), "STS-B dev set")
    args = ["eval", "--model", minilm_q[bits], "--dataset", "stsb", "--data-dir", STSB_DIR, "--latency-requests", "0",
            "--json"]
    if SANITIZED:  # the sanitizer build checks the mechanics on a sample; the bound is for the full set
        args += ["--max-samples", "300"]
    r = json.loads(run_cli(*args).stdout)["converted"]
    assert r["metric_compute"] == "faithful" and r["perf_compute"] == "fast" and r["integer_layers"] == 36
    sp, fsp = r["spearman"], r["fast_mode"]["spearman"]
    record_parity("all-MiniLM-L6-v2", f"q{bits} fast", "spearman", abs(sp - fsp))
    print(f"\nSTS-B dev q{bits}: faithful Spearman {sp:.5f}, fast {fsp:.5f} (|diff| {abs(sp - fsp):.5f}), "
          f"max |dcos| {r['fast_mode']['max_abs_cosine_diff']:.4g}")
    if not SANITIZED:
        assert r["n_examples"] == 1500
        assert abs(sp - fsp) <= tol
    assert 0 < r["fast_mode"]["max_abs_cosine_diff"] < 0.05


def test_nli_q8_fast_agrees_with_faithful(tmp_path):
    d = require(os.path.join(CACHE, "models", "nli-minilm-l6-snli", "model.safetensors"), "the project's NLI model")
    rows = [json.loads(l) for l in open(require(MNLI, "MNLI-matched dev set"))]
    rows = [r for r in rows if r["label"] in ("entailment", "neutral", "contradiction")][:200 if SANITIZED else 2000]
    q8 = str(tmp_path / "q8")
    run_cli("convert", "--hf-path", os.path.dirname(d), "--mlx-path", q8, "-q", "--q-bits", "8")
    pairs = [(r["premise"], r["hypothesis"]) for r in rows]
    fast, faithful = classify(q8, pairs, "fast"), classify(q8, pairs, "faithful")
    agree = float(np.mean(fast.argmax(1) == faithful.argmax(1)))
    record_parity("nli-minilm-l6-snli", "q8 fast", "disagree", 1 - agree)
    print(f"\nMNLI-m {len(pairs)} pairs, q8: fast/faithful prediction agreement {agree:.4f}")
    assert agree >= 0.99


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_float16_tiles(family_models, name, dtype):
    m = family_models[(name, dtype)]
    fast, faithful = classify(m, PAIRS, "fast"), classify(m, PAIRS, "faithful")
    assert fast.shape == faithful.shape and np.all(np.isfinite(fast))
    rel = float(np.abs(fast - faithful).max() / max(1.0, np.abs(faithful).max()))
    if not bf16_tiles():  # no AMX-BF16 here: the fast mode is the faithful computation
        assert rel == 0, f"{name} {dtype}: fast mode differs without bf16 tiles"
        return
    record_parity(name, f"{dtype} tiles", "logits", rel)
    assert 0 < rel <= 1e-4, f"{name} {dtype}: bf16-tile vs faithful relative difference {rel}"


@pytest.mark.parametrize("fmt", [8, "float16"])
def test_faithful_mode_thread_and_batch_invariance(family_models, fmt):
    """The faithful mode too: every row count takes the same GEMM (no separate small-batch path),
    so a pair gives the same bits alone and in a padded batch, with 1 and 2 threads."""
    check_invariance(family_models[("bert-cls", fmt)], "faithful")


def test_float16_tiles_thread_and_batch_invariance(family_models):
    check_invariance(family_models[("roberta-cls", "float16")], "fast", (0, 3))


def test_minilm_float16_stsb(tmp_path):
    """The default conversion (float16) of the real MiniLM: eval's fast pass on bf16 tiles, its
    Spearman against the faithful pass's."""
    require(os.path.join(STSB_DIR, "stsb", "dev.tsv"), "STS-B dev set")
    minilm = minilm_dir()
    assert minilm, "all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models"
    f16 = str(tmp_path / "f16")
    run_cli("convert", "--hf-path", minilm, "--mlx-path", f16, "--dtype", "float16")
    args = ["eval", "--model", f16, "--dataset", "stsb", "--data-dir", STSB_DIR, "--latency-requests", "0", "--json"]
    if SANITIZED:
        args += ["--max-samples", "300"]
    r = json.loads(run_cli(*args).stdout)["converted"]
    if not bf16_tiles():
        assert r["bf16_tile_layers"] == 0 and r["perf_compute"] == "float" and "fast_mode" not in r
        return
    assert r["bf16_tile_layers"] == 36 and r["integer_layers"] == 0
    assert r["metric_compute"] == "faithful" and r["perf_compute"] == "fast"
    sp, fsp = r["spearman"], r["fast_mode"]["spearman"]
    record_parity("all-MiniLM-L6-v2", "float16 tiles", "spearman", abs(sp - fsp))
    print(f"\nSTS-B dev float16: faithful Spearman {sp:.6f}, bf16 tiles {fsp:.6f}, "
          f"max |dcos| {r['fast_mode']['max_abs_cosine_diff']:.3g}")
    assert abs(sp - fsp) <= 0.0005
    assert 0 < r["fast_mode"]["max_abs_cosine_diff"] < 1e-4
