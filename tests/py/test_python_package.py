"""The Python package python/ as a user installs it: `pip install` into a fresh virtual environment
(--system-site-packages over the reference venv for numpy; offline: --no-index --no-build-isolation),
shipping the build tree's libmlxport.so (MLXPORT_PREBUILT_LIB, so the test does not compile the
library a second time), then used from a separate interpreter. Its outputs are checked against the
CLI's (embed, classify, zero-shot, convert, eval) and against the sentence-transformers recipe for
all-MiniLM-L6-v2 (transformers AutoModel, mean pooling over the attention mask, L2 normalization)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SOURCE_DIR, hub_cache, minilm_dir, require_shared, run_cli

BUILD = os.environ.get("MP_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
CACHE = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
NLI = os.path.join(CACHE, "models", "nli-minilm-l6-snli")
SANITIZE = os.environ.get("MP_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")
TEXTS = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
         "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
         "A monkey is playing drums.", "Un homme mange du pain. " * 3]
PAIRS = [("A man is playing a guitar on stage.", "A man is performing music."),
         ("A soccer game with multiple males playing.", "Some men are playing a sport."),
         ("A black race car starts up in front of a crowd of people.", "A man is driving down a lonely road."),
         ("A smiling costumed woman is holding an umbrella.", "A happy woman in a fairy costume holds an umbrella.")]

SCRIPT = r'''
import ctypes, json, sys, threading
import numpy as np
import mlxport
minilm, nli, conv_out, texts, pairs = json.loads(sys.argv[1])
out = {"version": mlxport.version(), "library": mlxport.library_path()}
m = mlxport.Model(minilm)
out["dim"] = m.dim
out["emb"] = m.embed(texts, batch_size=3, normalize_embeddings=True).tolist()
out["emb_raw"] = m.encode(texts).tolist()
out["one"] = list(m.embed(texts[0]).shape)
out["as_list"] = type(m.embed(texts[:2], convert_to_numpy=False)).__name__
out["tok_emb"] = list(m.token_embeddings(texts[0]).shape)
c = mlxport.Model(nli)
out["labels"] = c.labels
out["classify"] = c.classify(pairs)
out["logits"] = c.classify(pairs, return_logits=True).tolist()
out["zero_shot"] = c.zero_shot(texts[:3], ["food", "music", "family"])
t = mlxport.Tokenizer(minilm)
out["ids"] = t.encode(texts[0])
out["batch_ids"] = t.encode_batch(texts[:3])["input_ids"].tolist()
out["decoded"] = t.decode(out["ids"])
ticks = []
out["convert"] = mlxport.convert(minilm, conv_out, quantize=True, bits=8, group_size=64,
                                 progress=lambda d, n, name: ticks.append((d, n)))
out["ticks"] = [len(ticks), ticks[-1][0] == ticks[-1][1]]
q = mlxport.Model(conv_out)
out["q_quantized"] = q.is_quantized
out["q_emb"] = q.embed(texts, normalize_embeddings=True).tolist()
out["eval"] = mlxport.evaluate(conv_out, "stsb", baseline=minilm, max_samples=20, latency_requests=0,
                               in_process=True, min_speedup=None)
try:
    mlxport.Model(conv_out + "-missing")
except mlxport.MlxportError as e:
    out["error"] = [e.status, e.status_name, str(e)]
try:
    m.classify(["x"])
except mlxport.MlxportError as e:
    out["error2"] = str(e)
try:  # the device option reaches the library (this build has no CUDA, or this machine no GPU)
    mlxport.Model(minilm, device="cuda")
except mlxport.MlxportError as e:
    out["error_cuda"] = str(e)
out["cpu_device"] = mlxport.Model(minilm, device="cpu", device_dtype="bfloat16").dim
try:
    mlxport.Model(minilm, device_dtype="float8")
except mlxport.MlxportError as e:
    out["error_dtype"] = str(e)
# the GIL: ctypes.CDLL (not PyDLL) releases it around every foreign call; two models used from
# two threads at once give what one thread gives
out["cdll"] = isinstance(mlxport._lib.lib, ctypes.CDLL) and not isinstance(mlxport._lib.lib, ctypes.PyDLL)
res = {}
m2 = mlxport.Model(minilm)
th = [threading.Thread(target=lambda k, mm: res.__setitem__(k, mm.embed(texts * 4)), args=(k, mm))
      for k, mm in (("a", m), ("b", m2))]
[x.start() for x in th]
[x.join() for x in th]
out["threads_equal"] = bool(np.array_equal(res["a"], res["b"])) and bool(np.allclose(res["a"][:len(texts)], out["emb_raw"], atol=1e-6))
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("pkg")
    # a copy of python/ outside the tree: pip's in-tree build then writes nothing into the checkout
    pkg = root / "python"
    shutil.copytree(os.path.join(SOURCE_DIR, "python"), pkg,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "libmlxport.so*", "__pycache__"))
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env)], check=True)
    ver = open(os.path.join(SOURCE_DIR, "include", "mlxport", "common.h")).read().split(
        '#define MLXPORT_VERSION_STRING "')[1].split('"')[0]
    lib = os.path.join(BUILD, f"libmlxport.so.{ver}")
    assert os.path.isfile(lib), f"{lib} was not built"
    e = dict(os.environ, MLXPORT_PREBUILT_LIB=lib, MLXPORT_SOURCE_DIR=SOURCE_DIR, PIP_DISABLE_PIP_VERSION_CHECK="1")
    p = subprocess.run([str(env / "bin" / "pip"), "install", "--no-index", "--no-build-isolation", "--no-deps", str(pkg)],
                       capture_output=True, text=True, env=e)
    assert p.returncode == 0, p.stdout + p.stderr
    return env, root


def run_script(venv, args):
    env_dir, _ = venv
    e = dict(os.environ, HF_HUB_CACHE=hub_cache(), HF_HUB_OFFLINE="1", MLXPORT_TEST_DATA=require_shared())
    e.pop("MLXPORT_LIBRARY", None)
    if SANITIZE:  # the build tree's library is instrumented: its runtimes must come first
        rt = [subprocess.run(["cc", f"-print-file-name={n}"], capture_output=True, text=True).stdout.strip()
              for n in ("libasan.so", "libubsan.so")]
        e["LD_PRELOAD"] = " ".join(rt)
        e["ASAN_OPTIONS"] = "detect_leaks=0"  # the Python interpreter's own allocations
    p = subprocess.run([str(env_dir / "bin" / "python"), "-c", SCRIPT, json.dumps(args)], capture_output=True,
                       text=True, env=e, cwd=str(venv[1]))
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def result(venv):
    d = minilm_dir()
    assert d, "all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models"
    assert os.path.isfile(os.path.join(NLI, "model.safetensors")), f"the project's NLI model is missing: {NLI}"
    return run_script(venv, [d, NLI, str(venv[1] / "minilm-8bit"), TEXTS, PAIRS])


def test_installed_package_loads_its_library(result, venv):
    assert result["library"].startswith(str(venv[0])) and os.path.basename(result["library"]) == "libmlxport.so.0"
    assert result["version"] == run_cli("--version").stdout.split()[-1]
    assert result["dim"] == 384 and result["one"] == [384] and result["as_list"] == "list"
    assert result["cdll"] and result["threads_equal"]


def test_embed_matches_cli_and_sentence_transformers_recipe(result):
    emb = np.array(result["emb"])
    cli = np.array([json.loads(l)["embedding"] for l in
                    run_cli("embed", "--model", minilm_dir(), "--compute", "fast", input="\n".join(TEXTS) + "\n").stdout.splitlines()])
    assert np.abs(emb - cli).max() < 1e-5
    # sentence-transformers' recipe for this model: mean pooling over the attention mask, normalize
    import torch
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    model = AutoModel.from_pretrained(minilm_dir()).eval()
    with torch.no_grad():
        b = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
        h = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=1).numpy()
    err = np.abs(emb - ref).max()
    assert err < 1e-4, err
    assert np.abs(np.linalg.norm(np.array(result["emb_raw"]), axis=1) - 1).max() < 1e-5  # the model's Normalize
    assert result["tok_emb"][1] == 384 and result["tok_emb"][0] == len(result["ids"])
    assert result["ids"] == tok(TEXTS[0])["input_ids"] and result["batch_ids"][0][:len(result["ids"])] == result["ids"]
    assert result["decoded"] == tok.decode(result["ids"], skip_special_tokens=True)


def test_classify_and_zero_shot_match_cli(result):
    cli = [json.loads(l) for l in run_cli("classify", "--model", NLI, "--pair", "--json", "--compute", "fast",
                                          input="".join(f"{a}\t{b}\n" for a, b in PAIRS)).stdout.splitlines()]
    assert [r["label"] for r in result["classify"]] == [c["label"] for c in cli]
    assert np.abs(np.array(result["logits"]) - np.array([c["logits"] for c in cli])).max() < 1e-5
    assert all(abs(r["score"] - c["score"]) < 1e-5 for r, c in zip(result["classify"], cli))
    zs = [json.loads(l) for l in run_cli("zero-shot", "--model", NLI, "--labels", "food,music,family", "--json",
                                         "--compute", "fast", input="\n".join(TEXTS[:3]) + "\n").stdout.splitlines()]
    for r, c in zip(result["zero_shot"], zs):
        assert r["labels"] == c["labels"] and np.allclose(r["scores"], c["scores"], atol=1e-5)


def test_convert_and_evaluate_match_cli(result, venv, tmp_path):
    assert result["convert"]["status"] == "converted" and result["q_quantized"]
    assert result["ticks"][0] > 50 and result["ticks"][1]  # the progress callback saw every tensor
    # (the same conversion by the CLI is byte-identical: tests/py/test_examples.py checks the C API's)
    meta = json.loads((venv[1] / "minilm-8bit" / "conversion_metadata.json").read_text())
    st = meta["settings"]
    assert (st["quantize"], st["bits"], st["group_size"], st["mode"]) == (True, 8, 64, "affine")
    q, f = np.array(result["q_emb"]), np.array(result["emb"])
    assert (q * f).sum(1).min() > 0.99  # 8-bit stays close to the float model
    ev = result["eval"]
    cli = json.loads(run_cli("eval", "--model", str(venv[1] / "minilm-8bit"), "--baseline", minilm_dir(), "--dataset",
                             "stsb", "--max-samples", "20", "--latency-requests", "0", "--in-process", "--min-speedup",
                             "0", "--no-card", "--json", env={"MLXPORT_TEST_DATA": require_shared()}).stdout)
    assert ev["dataset"] == "stsb" and ev["converted"]["n_examples"] == 20
    for side in ("original", "converted"):
        assert ev[side]["spearman"] == pytest.approx(cli[side]["spearman"], abs=1e-9)
    assert ev["quality_gates"]["passed"] is True and ev["bits"] == 8 and ev["all_gates_passed"] is True


def test_errors_carry_the_c_message(result):
    status, name, msg = result["error"]
    assert status == 5 and name == "not found" and "minilm-8bit-missing" in msg
    assert "no sequence-classification head" in result["error2"]
    assert "CUDA" in result["error_cuda"], result.get("error_cuda")  # a clear error, never a silent CPU run
    assert result["cpu_device"] == 384
    assert "device_dtype" in result["error_dtype"] and "float8" in result["error_dtype"], result.get("error_dtype")
