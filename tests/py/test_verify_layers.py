"""mlxport verify-layers against transformers' hidden states.

A copy of the real all-MiniLM-L6-v2 has one encoder layer's feed-forward output damaged (made
with the safetensors library). transformers computes the hidden states of every layer for both
folders on the same texts; the per-layer mean/min token cosines and max |d| that mlxport reports
must equal those (within float tolerance), the first layer below the threshold must be the
damaged one, and the exit status must say so. A model against itself and against its q8
conversion (threshold 0.99) exits 0.
"""
import json
import os
import shutil

import numpy as np
import pytest
from conftest import run_cli

TEXTS = ["A man is playing a large flute.", "hello world",
         "The quick brown fox jumps over the lazy dog near the river bank at dawn.",
         "Three children are playing in the snow.", "A woman slices an onion into thin rings."]
DAMAGED = 3  # encoder layer index (0-based): hidden_states[DAMAGED + 1] is its output


@pytest.fixture
def damaged(minilm, tmp_path_factory):
    from safetensors.numpy import load_file, save_file
    out = tmp_path_factory.mktemp("damaged") / "minilm-damaged"
    shutil.copytree(minilm, out)
    w = load_file(os.path.join(minilm, "model.safetensors"))
    name = next(k for k in w if k.endswith(f"layer.{DAMAGED}.output.dense.weight"))
    rng = np.random.default_rng(0)
    w[name] = (w[name] + rng.normal(0, 0.2, w[name].shape)).astype(np.float32)
    os.remove(out / "model.safetensors")
    save_file(w, str(out / "model.safetensors"), metadata={"format": "pt"})
    return str(out)


def hf_hidden(folder):
    import torch
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    m = AutoModel.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for t in TEXTS:
            enc = tok([t], truncation=True, max_length=128, return_tensors="pt")
            hs = m(**enc, output_hidden_states=True).hidden_states
            out.append([h[0].numpy().astype(np.float64) for h in hs])
    return out  # [text][layer] -> [tokens, H]


def reference(a, b):
    rows = []
    for layer in range(len(a[0])):
        cos, diff = [], 0.0
        for ta, tb in zip(a, b):
            x, y = ta[layer], tb[layer]
            cos += list((x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)))
            diff = max(diff, float(np.abs(x - y).max()))
        rows.append((float(np.mean(cos)), float(np.min(cos)), diff))
    return rows


def verify(a, b, threshold=0.99, check=True):
    p = run_cli("verify-layers", a, b, "--dataset", "-", "--json", "--threshold", str(threshold),
                input="".join(t + "\n" for t in TEXTS), check=False)
    assert p.returncode in (0, 1), p.stderr
    return p.returncode, json.loads(p.stdout)


def test_damaged_layer_is_found_and_numbers_match_transformers(minilm, damaged):
    rc, r = verify(minilm, damaged)
    ref = reference(hf_hidden(minilm), hf_hidden(damaged))
    assert r["inputs"] == len(TEXTS)
    assert [x["layer"] for x in r["layers"]] == list(range(len(ref)))
    for got, (mean, mn, diff) in zip(r["layers"], ref):
        assert abs(got["mean_cosine"] - mean) <= 1e-5, (got, mean)
        assert abs(got["min_cosine"] - mn) <= 1e-5, (got, mn)
        assert abs(got["max_abs_diff"] - diff) <= 1e-4 * max(1.0, diff), (got, diff)
    # untouched layers agree exactly; the damaged one falls below the threshold
    assert all(x["min_cosine"] > 0.99999 for x in r["layers"][:DAMAGED + 1])
    expected_first = next(i for i, (_, mn, _) in enumerate(ref) if mn < 0.99)
    assert expected_first == DAMAGED + 1
    assert r["first_layer_below"] == expected_first
    assert rc == 1


def test_model_against_itself_and_q8(minilm, tmp_path):
    rc, r = verify(minilm, minilm)
    assert rc == 0 and r["first_layer_below"] is None
    assert all(x["min_cosine"] == 1 and x["max_abs_diff"] == 0 for x in r["layers"])
    q8 = str(tmp_path / "q8")
    run_cli("convert", "--hf-path", minilm, "--mlx-path", q8, "-q", "--q-bits", "8")
    rc, r = verify(minilm, q8)
    assert rc == 0, r
    assert all(x["min_cosine"] > 0.99 for x in r["layers"])
    assert r["layers"][-1]["max_abs_diff"] > 0  # quantization does change the numbers


def test_errors(minilm, tmp_path):
    p = run_cli("verify-layers", minilm, check=False)
    assert p.returncode == 2 and "ORIGINAL and CONVERTED" in p.stderr
    p = run_cli("verify-layers", minilm, str(tmp_path / "nope"), "--dataset", "-", input="x\n", check=False)
    assert p.returncode == 3 and "nope" in p.stderr
