"""Float parity of mlxport's BERT-family runtime against transformers (random-weight fixtures
built from the real configs and tokenizers) and against sentence-transformers' recipe on the
real all-MiniLM-L6-v2 weights."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, SOURCE_DIR, record_parity, require_shared, run_cli
from parity_util import close

FIXTURES = ["bert-cls", "bert-embed", "roberta-cls", "distilbert-cls"]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    require_shared()
    out = tmp_path_factory.mktemp("fixtures")
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out),
                    "--shared", SHARED], check=True, capture_output=True)
    return out




@pytest.mark.parametrize("name", [f for f in FIXTURES if f.endswith("-cls")])
@pytest.mark.parametrize("kind", ["st", "bin"])
def test_logits(fixtures, name, kind):
    ref = json.load(open(fixtures / name / "reference.json"))
    lines = "".join(f"{p}\t{h}\n" for p, h in ref["pairs"])
    p = run_cli("classify", "--model", str(fixtures / f"{name}-{kind}"), "--pair", "--json", "--max-length", "128",
                input=lines)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    logits = [o["logits"] for o in out]
    record_parity(name, kind, "logits", close(logits, ref["logits"]))
    assert [int(np.argmax(l)) for l in logits] == [int(np.argmax(l)) for l in ref["logits"]]


@pytest.mark.parametrize("name", FIXTURES)
def test_hidden_states(fixtures, name):
    ref = json.load(open(fixtures / name / "reference.json"))
    p = run_cli("embed", "--model", str(fixtures / f"{name}-st"), "--token-embeddings", "--max-length", "128",
                input="".join(t + "\n" for t in ref["texts"]))
    out = [json.loads(l)["token_embeddings"] for l in p.stdout.splitlines()]
    assert len(out) == len(ref["hidden"])
    for o, r in zip(out, ref["hidden"]):
        record_parity(name, "st", "hidden", close(o, r))


def test_batch_consistency(fixtures):
    """A text gives the same output alone and inside a padded batch of mixed lengths, and
    with 1 or 2 threads."""
    ref = json.load(open(fixtures / "bert-embed" / "reference.json"))
    texts = ref["texts"]
    model = str(fixtures / "bert-embed-st")
    batch = run_cli("embed", "--model", model, "--max-length", "128", "--batch-size", "8",
                    input="".join(t + "\n" for t in texts)).stdout.splitlines()
    for threads in ("1", "2"):
        for i in (0, 5, len(texts) - 1):
            alone = run_cli("embed", "--model", model, "--max-length", "128", "--threads", threads,
                            input=texts[i] + "\n").stdout
            a = np.array(json.loads(alone)["embedding"])
            b = np.array(json.loads(batch[i])["embedding"])
            assert np.abs(a - b).max() <= 1e-6


def test_minilm_vs_sentence_transformers_recipe(minilm, shared_dir):
    """Real weights: mlxport embed vs transformers BertModel + the sentence-transformers
    pipeline of this folder (mean pooling over the mask, then L2 normalize, max_seq_length 256)."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    texts = []
    with open(os.path.join(shared_dir, "datasets", "stsb", "dev.tsv")) as f:
        next(f)
        for i, line in enumerate(f):
            cols = line.rstrip("\n").split("\t")
            texts += [cols[7], cols[8]]
            if i == 49:
                break
    tok = AutoTokenizer.from_pretrained(minilm)
    model = AutoModel.from_pretrained(minilm).eval()
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hs = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((hs * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=1).numpy()
    p = run_cli("embed", "--model", minilm, input="".join(t + "\n" for t in texts))
    ours = np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()])
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.99999, cos.min()


def test_errors(fixtures, tmp_path):
    # unknown model_type
    d = tmp_path / "weird"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2Model"]}))
    p = run_cli("embed", "--model", str(d), input="x\n", check=False)
    assert p.returncode == 3 and "model_type \"gpt2\"" in p.stderr
    # too long without truncation
    long = " ".join(["word"] * 600)
    p = run_cli("embed", "--model", str(fixtures / "bert-embed-st"), "--truncation", "none", input=long + "\n",
                check=False)
    assert p.returncode == 3 and "max_position_embeddings" in p.stderr
    # missing tensor
    import shutil
    from safetensors.numpy import load_file, save_file
    bad = tmp_path / "missing"
    shutil.copytree(fixtures / "bert-cls-st", bad)
    w = load_file(str(bad / "model.safetensors"))
    del w["bert.encoder.layer.1.output.dense.weight"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "bert.encoder.layer.1.output.dense.weight" in p.stderr
    # wrong shape
    w = load_file(str(fixtures / "bert-cls-st" / "model.safetensors"))
    w["classifier.weight"] = w["classifier.weight"][:, :64].copy()
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "classifier.weight" in p.stderr and "expected" in p.stderr
