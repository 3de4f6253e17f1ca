"""Float parity of mlxport's ModernBERT runtime (src/model/modernbert.c) against transformers'
ModernBertForSequenceClassification: random-weight fixtures built from the real config of
modernbert-large-zeroshot-v2 (real tokenizer, real vocabulary, real id2label), shrunk to 3 layers
x 128 wide with an 8-token local window (global, local, local layers; mean pooling, no biases),
plus a variant with every bias flag on, CLS pooling, alternating global/local layers, other rope
thetas and gelu_pytorch_tanh. Saved as safetensors and pytorch_model.bin; MLX float and q8
conversions through `mlxport convert`.

ModernBERT needs transformers >= 4.48, which the project's reference venv (4.46.3, torch 1.13)
does not have: the references run in $MP_CACHE/venv-modernbert (scripts/setup.sh test) through
tools/modernbert_ref.py. Without that venv the tests fail, saying how to make it."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import BIN, SHARED, SOURCE_DIR, require_shared, run_cli
from parity_util import modernbert_python, close, mlx_dequantized_weights

NAMES = ["modernbert-cls", "modernbert-bias-cls"]
REF_TOOL = os.path.join(SOURCE_DIR, "tools", "modernbert_ref.py")
REAL = os.path.join(SHARED, "models", "modernbert-large-zeroshot-v2")


MB_PY = modernbert_python()


def need_env():
    require_shared()
    if not MB_PY:
        pytest.fail("no Python with transformers >= 4.48 (ModernBERT): run scripts/setup.sh test, which makes "
                    "$MP_CACHE/venv-modernbert, or set MP_MODERNBERT_PYTHON", pytrace=False)


def ref_tool(*args):
    p = subprocess.run([MB_PY, REF_TOOL, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    need_env()
    out = tmp_path_factory.mktemp("modernbert")
    p = subprocess.run([MB_PY, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out),
                        "--shared", SHARED, "--only", ",".join(NAMES)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return out




def classify(model, pairs, max_length, *extra):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--max-length", str(max_length), *extra,
                input=lines)
    return [json.loads(l)["logits"] for l in p.stdout.splitlines()]


def token_embeddings(model, texts, max_length):
    p = run_cli("embed", "--model", str(model), "--token-embeddings", "--max-length", str(max_length),
                input="".join(t + "\n" for t in texts))
    return [json.loads(l)["token_embeddings"] for l in p.stdout.splitlines()]


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("kind", ["st", "bin"])
def test_logits(fx, which, kind):
    name = NAMES[which]
    ref = json.load(open(fx / name / "reference.json"))
    model = fx / f"{name}-{kind}"
    for pairs, refl, ml in ((ref["pairs"], ref["logits"], 128), (ref["long_pairs"], ref["long_logits"], 512)):
        logits = classify(model, pairs, ml)
        close(logits, refl)
        assert [int(np.argmax(l)) for l in logits] == [int(np.argmax(l)) for l in refl]
    cfg = json.load(open(model / "config.json"))
    assert len(ref["logits"][0]) == len(cfg["id2label"]) == (2 if which == 0 else 3)
    if which == 0:  # the real head: id2label of modernbert-large-zeroshot-v2
        assert cfg["id2label"] == json.load(open(os.path.join(REAL, "config.json")))["id2label"]


@pytest.mark.parametrize("which", [0, 1])
def test_hidden_states(fx, which):
    name = NAMES[which]
    ref = json.load(open(fx / name / "reference.json"))
    model = fx / f"{name}-st"
    got = token_embeddings(model, ref["texts"], 128)
    assert len(got) == len(ref["hidden"])
    for o, r in zip(got, ref["hidden"]):
        close(o, r)
    # 1024 tokens: 128 local windows, rotary angles far from position 0
    o = token_embeddings(model, [ref["long_text"]], 1024)[0]
    assert len(o) == len(ref["long_hidden"]) == 1024
    close(o, ref["long_hidden"])


def test_window_and_layer_kinds_matter(fx, tmp_path):
    """The fixtures exercise the local windows, the global/local split and both rope thetas:
    changing any of them in config.json moves the logits beyond twice the parity tolerance."""
    ref = json.load(open(fx / NAMES[0] / "reference.json"))
    refl = np.array(ref["logits"][:8])
    tol = 2e-4 * max(1.0, float(np.abs(refl).max()))
    for key, value in (("local_attention", 4096), ("global_attn_every_n_layers", 1), ("local_rope_theta", 10.0), ("global_rope_theta", 10.0)):
        d = tmp_path / key
        shutil.copytree(fx / f"{NAMES[0]}-st", d)
        cfg = json.load(open(d / "config.json"))
        cfg[key] = value
        (d / "config.json").write_text(json.dumps(cfg))
        logits = np.array(classify(d, ref["pairs"][:8], 128))
        assert np.abs(logits - refl).max() > tol, key


def test_batch_and_threads(fx):
    """A pair gives the same logits alone and inside a padded batch, with 1 or 2 threads."""
    ref = json.load(open(fx / NAMES[0] / "reference.json"))
    model = fx / f"{NAMES[0]}-st"
    batch = classify(model, ref["pairs"], 128, "--batch-size", "8")
    for threads in ("1", "2"):
        for i in (0, 7):
            alone = classify(model, [ref["pairs"][i]], 128, "--threads", threads)[0]
            assert np.abs(np.array(alone) - np.array(batch[i])).max() <= 1e-5
    # a batch of 12 x 512 tokens (> 4096 rows): several Wqkv/attention groups and MLP chunks
    pairs = ref["long_pairs"] * 3
    close(classify(model, pairs, 512, "--batch-size", "12"), ref["long_logits"] * 3)


def test_8192_tokens(fx):
    """The longest input ModernBERT accepts runs (attention blocked per head and query block)
    and is independent of the thread count. Parity with transformers at 8,192 tokens is in
    test_8192_tokens_vs_transformers (transformers' eager attention there takes ~35 s and 3 GB)."""
    ref = json.load(open(fx / NAMES[0] / "reference.json"))
    model = fx / f"{NAMES[0]}-st"
    text = ref["long_text"] * 8
    outs = []
    for threads in ("1", "2"):
        p = run_cli("embed", "--model", str(model), "--max-length", "8192", "--threads", threads, input=text + "\n")
        outs.append(np.array(json.loads(p.stdout)["embedding"]))
    assert outs[0].shape == (128,) and np.isfinite(outs[0]).all()
    assert np.array_equal(outs[0], outs[1])
    ids = run_cli("tokenize", "--model", str(model), "--max-length", "8192", input=text + "\n").stdout.split()
    assert len(ids) == 8192


def test_8192_tokens_vs_transformers(fx, tmp_path):
    ref = json.load(open(fx / NAMES[0] / "reference.json"))
    model = fx / f"{NAMES[0]}-st"
    text = ref["long_text"] * 8
    (tmp_path / "in.json").write_text(json.dumps({"texts": [text], "max_length": 8192}))
    ref_tool("hidden", model, tmp_path / "in.json", tmp_path / "out.json")
    r = json.load(open(tmp_path / "out.json"))["hidden"][0]
    o = token_embeddings(model, [text], 8192)[0]
    assert len(o) == len(r) == 8192
    close(o, r)


@pytest.mark.parametrize("which", [0, 1])  # 2 labels (entailment / not_entailment), 3 labels
@pytest.mark.parametrize("multi", [False, True])
def test_zero_shot_vs_pipeline(fx, tmp_path, multi, which):
    name = NAMES[which]
    ref = json.load(open(fx / name / "reference.json"))
    model = fx / f"{name}-st"
    labels = ["politics", "sports", "food and cooking"]
    texts = ref["texts"][:6]
    args = ["zero-shot", "--model", str(model), "--labels", ",".join(labels), "--json"] + (["--multi-label"] if multi else [])
    got = [json.loads(l) for l in run_cli(*args, input="".join(t + "\n" for t in texts)).stdout.splitlines()]
    (tmp_path / "in.json").write_text(json.dumps({"texts": texts, "labels": labels, "multi": multi}))
    ref_tool("zeroshot", model, tmp_path / "in.json", tmp_path / "out.json")
    for g, r in zip(got, json.load(open(tmp_path / "out.json"))):
        assert g["labels"][0] == r["labels"][0]
        mine = dict(zip(g["labels"], g["scores"]))
        for lab, s in zip(r["labels"], r["scores"]):
            assert abs(mine[lab] - s) <= 1e-4


def test_param_count_vs_transformers(fx, tmp_path):
    """param_count (config.json alone, `mlxport inspect`'s config_parameters) equals
    transformers' num_parameters() on the real full-size config and on variants (bias flags on,
    3 labels, the bare ModernBertModel, the fixture). tests/c/test_modernbert.c checks the same
    function without the CLI."""
    base = json.load(open(os.path.join(REAL, "config.json")))
    variants = {"real": base,
                "bias": dict(base, norm_bias=True, attention_bias=True, mlp_bias=True, classifier_bias=True,
                             id2label={"0": "a", "1": "b", "2": "c"}, label2id={"a": 0, "b": 1, "c": 2}),
                "bare": dict(base, architectures=["ModernBertModel"]),
                "fixture": json.load(open(fx / f"{NAMES[1]}-st" / "config.json"))}
    dirs = []
    for k, cfg in variants.items():
        d = tmp_path / k
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
        dirs.append(d)
    counts = [json.loads(l)["num_parameters"] for l in ref_tool("params", *dirs).splitlines()]
    assert len(counts) == len(dirs) and counts[0] == 395833346  # ModernBERT-large + 2-label head
    for d, n in zip(dirs, counts):
        ins = json.loads(run_cli("inspect", "--json", str(d)).stdout)
        assert ins["config_parameters"]["count"] == n, d.name
    ins = json.loads(run_cli("inspect", "--json", REAL).stdout)
    assert ins["config_parameters"]["count"] == counts[0]
    # the fixture's own weights, as inspect counts them, agree too
    ins = json.loads(run_cli("inspect", "--json", str(fx / f"{NAMES[1]}-st")).stdout)
    assert ins["weights"]["parameters"] == ins["config_parameters"]["count"] == counts[3]


def test_errors(fx, tmp_path):
    from safetensors.numpy import load_file, save_file
    src = fx / f"{NAMES[0]}-st"
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    w = load_file(str(bad / "model.safetensors"))
    del w["model.layers.1.attn.Wqkv.weight"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "model.layers.1.attn.Wqkv.weight" in p.stderr
    shutil.copy(src / "model.safetensors", bad / "model.safetensors")
    cfg = json.load(open(src / "config.json"))
    for key, value, word in (("classifier_pooling", "max", "classifier_pooling"),
                             ("rope_scaling", {"rope_type": "linear", "factor": 2.0}, "rope_scaling"),
                             ("global_attn_every_n_layers", 0, "global_attn_every_n_layers"),
                             ("attention_bias", True, "attn.Wqkv.bias"),
                             ("hidden_activation", "mish", "hidden_activation")):
        (bad / "config.json").write_text(json.dumps(dict(cfg, **{key: value})))
        p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
        assert p.returncode == 3 and word in p.stderr, (key, p.stderr)


# ---- MLX conversion (mlxport convert): float and q8

def _has_convert():
    return subprocess.run([BIN, "convert", "--help"], capture_output=True).returncode == 0


def _dequantized_folder(mlx_dir, hf_dir, out):
    """An HF folder (float32 safetensors, the HF folder's config and tokenizer) holding the
    weights of an MLX folder dequantized by MLX itself (mx.dequantize)."""
    from safetensors.numpy import save_file
    sd = mlx_dequantized_weights(mlx_dir)
    shutil.copytree(hf_dir, out)
    os.remove(os.path.join(out, "model.safetensors"))
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    return out


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("mode", ["float32", "q8"])
def test_mlx_conversion(fx, tmp_path, mode, which):
    name = NAMES[which]
    ref = json.load(open(fx / name / "reference.json"))
    src = fx / f"{name}-st"
    dst = tmp_path / f"{name}-{mode}"
    args = ["convert", "--hf-path", str(src), "--mlx-path", str(dst), "--dtype", "float32"]
    if mode == "q8":
        args += ["-q", "--q-bits", "8", "--q-group-size", "64"]
    run_cli(*args)
    pairs = ref["pairs"][:8]
    logits = np.array(classify(dst, pairs, 128))
    if mode == "float32":
        close(logits, np.array(ref["logits"][:8]))
    else:
        cfg = json.load(open(dst / "config.json"))
        assert cfg["quantization"]["bits"] == 8
        # our q8 path vs transformers on the same weights dequantized by MLX
        (tmp_path / "in.json").write_text(json.dumps({"pairs": pairs, "max_length": 128}))
        deq = _dequantized_folder(dst, src, tmp_path / "dequantized")
        ref_tool("logits", deq, tmp_path / "in.json", tmp_path / "out.json")
        close(logits, json.load(open(tmp_path / "out.json"))["logits"])
        # and q8 stays close to the float model
        assert float(np.abs(logits - np.array(ref["logits"][:8])).max()) <= 0.05 * max(1.0, np.abs(logits).max())
