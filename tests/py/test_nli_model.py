"""The trained NLI classifiers (models/nli-minilm-l6-snli*): rebuild from base + delta.

Checks, against independent references (the safetensors library, transformers):
  * scripts/rebuild_nli.py rebuilds each checkpoint byte-identically twice, and its SHA-256 is
    the one in the manifest;
  * every tensor equals base tensor (bert.-prefixed) / delta tensor widened to f32, read with the
    safetensors library, and nothing else is in the file;
  * transformers loads the folder with no missing / unexpected / mismatched keys, the config has
    the documented labels, and the logits of 20 MNLI pairs are finite;
  * a damaged delta or base is refused with a clear error and nothing is written.
"""
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SHARED, require_shared

SRC = os.environ.get("MP_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REBUILD = os.path.join(SRC, "scripts", "rebuild_nli.py")
NAMES = ["nli-minilm-l6-snli", "nli-minilm-l6-snli-binary"]
LABELS = {"nli-minilm-l6-snli": ["entailment", "neutral", "contradiction"],
          "nli-minilm-l6-snli-binary": ["entailment", "not_entailment"]}


def hub_cache():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    cache = os.environ.get("MP_CACHE") or os.path.join(SRC, ".cache")
    return os.path.join(cache, "huggingface", "hub")


def load_rebuild_module():
    spec = importlib.util.spec_from_file_location("rebuild_nli", REBUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rb():
    mod = load_rebuild_module()
    try:
        mod.find_base(hub_cache(), "sentence-transformers/all-MiniLM-L6-v2")
    except mod.RebuildError as e:
        pytest.fail(f"base model not installed ({e}); run scripts/setup.sh models", pytrace=False)
    return mod


@pytest.fixture(scope="module")
def built(rb, tmp_path_factory):
    out = tmp_path_factory.mktemp("nli")
    r = subprocess.run([sys.executable, REBUILD, "--out", str(out), "--hub-cache", hub_cache()],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def manifest(name):
    with open(os.path.join(SRC, "models", name, "manifest.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", NAMES)
def test_hash_matches_manifest_and_rebuild_is_byte_identical(rb, built, tmp_path, name):
    first = os.path.join(built, name)
    assert sha(os.path.join(first, "model.safetensors")) == manifest(name)["model_safetensors_sha256"]
    r = subprocess.run([sys.executable, REBUILD, "--out", str(tmp_path), "--hub-cache", hub_cache(), "--force", name],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    second = os.path.join(tmp_path, name)
    assert sorted(os.listdir(first)) == sorted(os.listdir(second)) == sorted(
        ["config.json", "model.safetensors", "README.md", "tokenizer.json", "tokenizer_config.json",
         "vocab.txt", "special_tokens_map.json"])
    for f in os.listdir(first):
        assert open(os.path.join(first, f), "rb").read() == open(os.path.join(second, f), "rb").read(), f


def test_second_run_is_a_no_op(rb, built):
    st = os.path.join(built, NAMES[0], "model.safetensors")
    before = os.stat(st).st_mtime_ns, os.stat(st).st_ino
    r = subprocess.run([sys.executable, REBUILD, "--out", str(built), "--hub-cache", hub_cache()],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stderr
    assert (os.stat(st).st_mtime_ns, os.stat(st).st_ino) == before


@pytest.mark.parametrize("name", NAMES)
def test_tensors_equal_base_plus_delta(rb, built, name):
    from safetensors.numpy import load_file
    m = manifest(name)
    base_dir = rb.find_base(hub_cache(), m["base"]["repo"])
    expect = {m["base_prefix"] + k: v for k, v in load_file(os.path.join(base_dir, "model.safetensors")).items()
              if k not in m["drop"]}
    n_delta = 0
    for d in m["deltas"]:
        for k, v in load_file(os.path.join(SRC, "models", name, d["file"])).items():
            if k in d.get("exclude", []):
                continue
            if k in expect:
                assert expect[k].shape == v.shape, k
            expect[k] = v.astype(np.float32)
            n_delta += 1
    assert n_delta > 0
    got = load_file(os.path.join(built, name, "model.safetensors"))
    assert sorted(got) == sorted(expect)
    for k in expect:
        assert got[k].dtype == expect[k].dtype, k
        assert np.array_equal(got[k], expect[k]), k
    # the trained tensors really differ from the base
    base = load_file(os.path.join(base_dir, "model.safetensors"))
    assert not np.array_equal(got["bert.pooler.dense.weight"], base["pooler.dense.weight"])


@pytest.mark.parametrize("name", NAMES)
def test_transformers_loads_cleanly(rb, built, name):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    d = os.path.join(built, name)
    model, info = BertForSequenceClassification.from_pretrained(d, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    assert info["mismatched_keys"] == [] and info["error_msgs"] == [], info
    cfg = model.config
    assert cfg.architectures == ["BertForSequenceClassification"]
    assert cfg.problem_type == "single_label_classification"
    assert [cfg.id2label[i] for i in range(len(LABELS[name]))] == LABELS[name]
    assert cfg.label2id == {l: i for i, l in enumerate(LABELS[name])}
    mnli = os.path.join(SHARED, "datasets", "mnli", "validation_matched", "dev.jsonl")
    require_shared()
    rows = [json.loads(l) for l in open(mnli, encoding="utf-8").read().splitlines()[:20]]
    tok = AutoTokenizer.from_pretrained(d)
    enc = tok([r["premise"] for r in rows], [r["hypothesis"] for r in rows], padding=True, truncation=True,
              return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**enc).logits
    assert logits.shape == (20, len(LABELS[name]))
    assert torch.isfinite(logits).all()
    # a trained classifier does not answer one class for everything
    assert len(set(logits.argmax(-1).tolist())) > 1


def test_damaged_delta_is_refused(rb, tmp_path, monkeypatch):
    src = tmp_path / "models"
    shutil.copytree(os.path.join(SRC, "models"), src)
    delta = src / NAMES[0] / "delta.safetensors"
    b = bytearray(delta.read_bytes())
    b[-3] ^= 0x40
    delta.write_bytes(bytes(b))
    monkeypatch.setattr(rb, "MODELS_SRC", str(src))
    out = tmp_path / "out"
    with pytest.raises(rb.RebuildError, match="delta.safetensors: SHA-256"):
        rb.rebuild(NAMES[0], str(out), hub_cache(), force=True, log=lambda s: None)
    assert not (out / NAMES[0]).exists()
    # and with the delta hash check removed, the rebuilt-file hash check still catches it
    m = json.loads((src / NAMES[0] / "manifest.json").read_text())
    for d in m["deltas"]:
        d.pop("sha256")
    (src / NAMES[0] / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(rb.RebuildError, match="rebuilt model.safetensors has SHA-256"):
        rb.rebuild(NAMES[0], str(out), hub_cache(), force=True, log=lambda s: None)
    assert not (out / NAMES[0]).exists()


def test_wrong_base_is_refused(rb, tmp_path):
    m = manifest(NAMES[0])
    base_dir = rb.find_base(hub_cache(), m["base"]["repo"])
    hub = tmp_path / "hub"
    snap = hub / ("models--" + m["base"]["repo"].replace("/", "--")) / "snapshots" / "x"
    snap.mkdir(parents=True)
    for f in os.listdir(base_dir):
        if os.path.isfile(os.path.join(base_dir, f)):
            os.symlink(os.path.join(base_dir, f), snap / f)
    (snap / "model.safetensors").unlink()
    b = bytearray(open(os.path.join(base_dir, "model.safetensors"), "rb").read())
    b[-1] ^= 1
    (snap / "model.safetensors").write_bytes(bytes(b))
    r = subprocess.run([sys.executable, REBUILD, "--out", str(tmp_path / "out"), "--hub-cache", str(hub), NAMES[0]],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "differs from the base recorded" in r.stderr
    assert not (tmp_path / "out" / NAMES[0]).exists()
