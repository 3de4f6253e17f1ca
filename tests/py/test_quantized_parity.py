"""MLX-converted models run natively by mlxport agree with real MLX computing the same forward
(tools/mlx_bert.py: the BERT, RoBERTa and DistilBERT modules rebuilt with mlx.nn, nn.quantize from
our config, our weights loaded strictly), and q8 embeddings of the real MiniLM stay close to float."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, SOURCE_DIR, run_cli

sys.path.insert(0, os.path.join(SOURCE_DIR, "tools"))


def texts(shared, n=24):
    out = []
    with open(os.path.join(shared, "datasets", "stsb", "dev.tsv")) as f:
        next(f)
        for line in f:
            c = line.rstrip("\n").split("\t")
            out += [c[7], c[8]]
            if len(out) >= n:
                break
    return out



def convert(src, dst, bits, group=64, dtype="float32"):
    run_cli("convert", "--hf-path", str(src), "--mlx-path", str(dst), "-q", "--q-bits", str(bits),
            "--q-group-size", str(group), "--dtype", dtype)


def mlx_forward(folder, sents, pairs=None):
    import mlx.core as mx
    import mlx_bert
    from tokenizers import Tokenizer
    model, c, _ = mlx_bert.load(str(folder))
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_padding()
    tok.enable_truncation(128)
    enc = tok.encode_batch(list(zip(sents, pairs)) if pairs else sents)
    ids = mx.array([e.ids for e in enc])
    types = mx.array([e.type_ids for e in enc])
    attn = mx.array([e.attention_mask for e in enc])
    if mlx_bert.is_classifier(model):
        return np.array(model(ids, types, attn).astype(mx.float32))
    h, _ = model(ids, types, attn)
    m = attn[..., None].astype(h.dtype)
    return np.array(((h * m).sum(axis=1) / m.sum(axis=1)).astype(mx.float32))


def rel(a, b):
    return float(np.abs(a - b).max() / max(1e-12, np.abs(b).max()))


@pytest.mark.parametrize("bits", [8, 4])
def test_minilm_vs_mlx(minilm, shared_dir, tmp_path, bits):
    out = tmp_path / f"minilm-q{bits}"
    convert(minilm, out, bits)
    sents = texts(shared_dir)
    ref = mlx_forward(out, sents)
    # our embed applies the folder's Normalize module; compare before it with the mean-pooled MLX output
    ours = np.array([json.loads(l)["token_embeddings"] for l in run_cli(
        "embed", "--model", str(out), "--token-embeddings", "--max-length", "128",
        input="".join(s + "\n" for s in sents)).stdout.splitlines()], dtype=object)
    pooled = np.array([np.mean(np.array(t), axis=0) for t in ours])
    assert rel(pooled, ref) <= 1e-3


def test_minilm_q8_close_to_float(minilm, shared_dir, tmp_path):
    out = tmp_path / "minilm-q8"
    convert(minilm, out, 8)
    sents = texts(shared_dir, 64)
    inp = "".join(s + "\n" for s in sents)
    f = np.array([json.loads(l)["embedding"] for l in run_cli("embed", "--model", minilm, input=inp).stdout.splitlines()])
    q = np.array([json.loads(l)["embedding"] for l in run_cli("embed", "--model", str(out), input=inp).stdout.splitlines()])
    cos = (f * q).sum(1) / np.linalg.norm(f, axis=1) / np.linalg.norm(q, axis=1)
    assert cos.min() >= 0.999, cos.min()


@pytest.mark.parametrize("family", ["bert-cls", "roberta-cls", "distilbert-cls"])
@pytest.mark.parametrize("bits", [8, 4])
def test_classifier_vs_mlx(shared_dir, tmp_path, bits, family):
    """the three BERT-architecture classifier families (RoBERTa: positions from pad + 1 and its own
    head; DistilBERT: its own module names, no token types) as MLX runs their converted folders"""
    fx = tmp_path / "fx"
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(fx),
                    "--shared", SHARED, "--only", family], check=True, capture_output=True)
    out = tmp_path / f"cls-q{bits}"
    convert(fx / f"{family}-st", out, bits)
    ref_in = json.load(open(fx / family / "reference.json"))
    prem = [p for p, _ in ref_in["pairs"]]
    hyp = [h for _, h in ref_in["pairs"]]
    ref = mlx_forward(out, prem, hyp)
    p = run_cli("classify", "--model", str(out), "--pair", "--json", "--max-length", "128",
                input="".join(f"{a}\t{b}\n" for a, b in zip(prem, hyp)))
    ours = np.array([json.loads(l)["logits"] for l in p.stdout.splitlines()])
    assert rel(ours, ref) <= 1e-3
