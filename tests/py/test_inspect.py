"""mlxport inspect against independent references: the `safetensors` package for tensors and
bytes, transformers for parameter counts, the files themselves for configuration."""
import hashlib
import json
import os

import numpy as np
import pytest
from conftest import run_cli


def test_minilm_tensors_match_safetensors(minilm):
    from safetensors.numpy import load_file
    ref = load_file(os.path.join(minilm, "model.safetensors"))
    out = json.loads(run_cli("inspect", minilm, "--checksums", "--json").stdout)
    ours = {t["name"]: t for t in out["tensors"]}
    assert set(ours) == set(ref)
    dt = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}
    for name, arr in ref.items():
        t = ours[name]
        assert t["dtype"] == dt[arr.dtype], name
        assert t["shape"] == list(arr.shape), name
        assert t["bytes"] == arr.nbytes, name
        assert t["sha256"] == hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest(), name
    assert out["weights"]["parameters"] == sum(a.size for a in ref.values() if a.dtype.kind == "f")
    assert out["weights"]["tensor_count"] == len(ref)


def test_minilm_summary(minilm):
    from transformers import AutoConfig, AutoModel
    out = json.loads(run_cli("inspect", "sentence-transformers/all-MiniLM-L6-v2", "--json").stdout)
    assert out["path"].rstrip("/") == minilm.rstrip("/")
    cfg = AutoConfig.from_pretrained(minilm)
    assert out["model_type"] == cfg.model_type
    assert out["architecture"] == cfg.architectures[0]
    model = AutoModel.from_pretrained(minilm)
    n_tf = model.num_parameters()
    assert out["weights"]["parameters"] == n_tf
    assert out["tokenizer"]["model"] == "WordPiece"
    st = out["sentence_transformers"]
    pool = json.load(open(os.path.join(minilm, "1_Pooling", "config.json")))
    assert (st["pooling"] == "mean") == pool["pooling_mode_mean_tokens"]
    mods = json.load(open(os.path.join(minilm, "modules.json")))
    assert st["normalize"] == any("Normalize" in m["type"] for m in mods)
    assert out["weights"]["bytes"] == os.path.getsize(os.path.join(minilm, "model.safetensors"))
    text = run_cli("inspect", minilm).stdout
    assert "BertModel" in text and "parameters:" in text and "pooling:     mean" in text


def test_shared_configs_without_weights(shared_dir):
    for name in sorted(os.listdir(os.path.join(shared_dir, "models"))):
        d = os.path.join(shared_dir, "models", name)
        if not os.path.isfile(os.path.join(d, "config.json")):
            continue
        out = json.loads(run_cli("inspect", d, "--json").stdout)
        cfg = json.load(open(os.path.join(d, "config.json")))
        assert out["model_type"] == cfg["model_type"], name
        assert out["weights"] is None, name
        assert out["tokenizer"] is not None, name


def test_errors():
    p = run_cli("inspect", "no-such-org/no-such-model", check=False)
    assert p.returncode == 3
    assert "not in the Hugging Face cache" in p.stderr and "huggingface-cli download" in p.stderr
    p = run_cli("inspect", check=False)
    assert p.returncode == 2
    p = run_cli("inspect", "--bogus", "x", check=False)
    assert p.returncode == 2 and "unknown option" in p.stderr


def test_bad_weights_file(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    p = run_cli("inspect", str(bad), check=False)
    assert p.returncode == 3
    assert str(bad) in p.stderr


# Model folders of ../shared/models whose family mlxport runs; each must report the parameter
# count transformers gives for the same config.json (no weights in those folders). The eleventh,
# modernbert-large-zeroshot-v2, needs transformers >= 4.48 and is checked the same way (through
# `mlxport inspect --json`) in test_model_parity_modernbert.py with the venv-modernbert reference.
CONFIG_COUNT_MODELS = ["all-MiniLM-L12-v2", "all-MiniLM-L6-v2", "deberta-v3-base-mnli-fever-anli",
                       "deberta-v3-xsmall-mnli-binary", "distilbert-base-uncased-mnli", "roberta-large-mnli",
                       "xtremedistil-l6-h256-nli-binary", "bart-large-mnli",
                       "mobilebert-uncased-mnli", "all-mpnet-base-v2"]


def transformers_param_count(folder):
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
    from transformers.modeling_utils import no_init_weights
    cfg = AutoConfig.from_pretrained(folder)
    arch = (cfg.architectures or [""])[0]
    cls = AutoModelForSequenceClassification if arch.endswith("ForSequenceClassification") else AutoModel
    torch.set_default_dtype(torch.float16)  # halves the memory of the 355M-parameter models
    try:
        with no_init_weights():
            m = cls.from_config(cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    return m.num_parameters(), cls.__name__


@pytest.mark.parametrize("name", CONFIG_COUNT_MODELS)
def test_parameter_count_from_config_equals_transformers(shared_dir, name):
    folder = os.path.join(shared_dir, "models", name)
    r = json.loads(run_cli("inspect", folder, "--json").stdout)
    ours = r["config_parameters"]
    assert ours is not None, f"{name}: no parameter count from config.json"
    ref, cls = transformers_param_count(folder)
    assert ours["class"] == cls
    assert ours["count"] == ref, f"{name}: mlxport {ours['count']} vs transformers {ref}"


def test_absurd_sizes_give_a_clear_answer(tmp_path):
    """Sizes beyond any real model are refused by name instead of overflowing the count."""
    cfg = {"model_type": "bert", "vocab_size": 2 ** 40, "hidden_size": 8, "num_hidden_layers": 1,
           "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 32}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = json.loads(run_cli("inspect", str(tmp_path), "--json").stdout)
    assert r["config_parameters"] is None
    text = run_cli("inspect", str(tmp_path)).stdout
    assert "vocab_size" in text and "too large" in text
    cfg.update(vocab_size=30522, type_vocab_size=2 ** 62)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = json.loads(run_cli("inspect", str(tmp_path), "--json").stdout)
    assert r["config_parameters"] is None
