"""pytorch_model.bin reader against torch / safetensors / transformers.

tools/make_torch_fixtures.py writes real torch.save checkpoints (zip, zip protocol 4, legacy
non-zip, DEFLATE re-zip, ZIP64 re-zip), the same weights as safetensors, and malicious or
broken files. Our reader (through `test_torch_pickle --dump FILE`, the C test binary) must give
the names, dtypes, shapes and bytes torch and safetensors give, refuse every bad file with the
right status and a clear message, and never run a payload.
"""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import require_shared

SRC = os.environ.get("MP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MP_BUILD_DIR", os.path.join(SRC, "build"))
DUMP = os.path.join(BUILD, "test_torch_pickle")

STATUS = {"security": 17, "format": 13, "unsupported": 14}


def dump(path):
    r = subprocess.run([DUMP, "--dump", str(path)], capture_output=True, text=True, timeout=120)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None


def st_reference(path):
    """name -> (dtype, shape, sha256) through the safetensors package (numpy)."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="np") as f:
        for k in f.keys():
            try:
                a = f.get_tensor(k)
                data = np.ascontiguousarray(a).tobytes()
                shape = list(a.shape)
            except TypeError:  # bf16 has no numpy dtype: read through torch
                import torch
                from safetensors.torch import load_file

                t = load_file(str(path))[k]
                data = t.view(torch.int16).numpy().tobytes()
                shape = list(t.shape)
            out[k] = shape, hashlib.sha256(data).hexdigest()
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return {k: (header[k]["dtype"], shape, h) for k, (shape, h) in out.items()}


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    if not os.path.exists(DUMP):
        pytest.fail("test_torch_pickle binary not built (%s)" % DUMP, pytrace=False)
    d = tmp_path_factory.mktemp("torch_fixtures")
    marker = d / "PWNED"
    subprocess.run([sys.executable, os.path.join(SRC, "tools", "make_torch_fixtures.py"), str(d),
                    "--marker", str(marker)], check=True, timeout=300)
    return d


@pytest.mark.parametrize("name", ["zip.bin", "zip_proto4.bin", "legacy.bin", "zip_deflate.bin", "zip64.bin"])
def test_reads_like_torch_and_safetensors(fx, name):
    manifest = json.load(open(fx / "manifest.json"))
    rc, got = dump(fx / name)
    assert rc == 0, got
    # state-dict order, names, dtypes, shapes and bytes exactly as torch gives them
    assert [t["name"] for t in got] == list(manifest)
    ref = st_reference(fx / "ref.safetensors")
    for t in got:
        m = manifest[t["name"]]
        assert t["dtype"] == m["dtype"], t["name"]
        assert t["shape"] == m["shape"], t["name"]
        assert t["sha256"] == m["sha256"], t["name"]
        assert t["contiguous"] == 1 and t["found"] == 1
        assert ref[t["name"]] == (t["dtype"], t["shape"], t["sha256"]), t["name"]


def test_refused_files(fx):
    refused = json.load(open(fx / "refused.json"))
    assert len(refused) >= 15
    for name, (status, needle) in refused.items():
        rc, got = dump(fx / name)
        assert rc == 10 + {"security": 7, "format": 3, "unsupported": 4}[status], (name, got)
        assert got and got["error"].startswith(str(fx / name)) and needle in got["error"], (name, got)
        if status == "security":
            assert "safetensors" in got["error"]
    assert not (fx / "PWNED").exists(), "a payload ran"


def test_payload_really_is_live(fx, tmp_path):
    """Guard against a test that cannot fail: torch.load of the same file does run the payload."""
    import torch

    marker = tmp_path / "ran"
    sys.path.insert(0, os.path.join(SRC, "tools"))
    import make_torch_fixtures as m

    torch.save({"x": m.SystemPayload(str(marker))}, tmp_path / "e.bin")
    rc, got = dump(tmp_path / "e.bin")
    assert rc == 17 and not marker.exists()
    torch.load(tmp_path / "e.bin")  # the reference loader executes it
    assert marker.exists()


def test_transformers_bert_bin_equals_safetensors(tmp_path):
    if not os.path.exists(DUMP):
        pytest.fail("test_torch_pickle binary not built", pytrace=False)
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64)
    model = BertModel(cfg)
    model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    model.save_pretrained(tmp_path / "st", safe_serialization=True)
    rc, got = dump(tmp_path / "bin" / "pytorch_model.bin")
    assert rc == 0, got
    ref = st_reference(tmp_path / "st" / "model.safetensors")
    assert sorted(t["name"] for t in got) == sorted(ref)
    for t in got:
        assert ref[t["name"]] == (t["dtype"], t["shape"], t["sha256"]), t["name"]
    # and a half-precision legacy save of the same state dict
    sd = {k: v.half() for k, v in model.state_dict().items() if v.is_floating_point()}
    torch.save(sd, tmp_path / "legacy_half.bin", _use_new_zipfile_serialization=False)
    rc, got = dump(tmp_path / "legacy_half.bin")
    assert rc == 0, got
    assert [t["name"] for t in got] == list(sd)
    for t in got:
        v = sd[t["name"]]
        assert t["dtype"] == "F16" and t["shape"] == list(v.shape)
        assert t["sha256"] == hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()


ST_DUMP = os.path.join(BUILD, "st_dump")


def weights_table(path):
    """Our weights table (src/format/weights.c) through tools/c/st_dump: (format, {name: (dtype, shape, sha)})."""
    r = subprocess.run([ST_DUMP, "dump", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    return lines[0]["format"], [(t["name"], (t["dtype"], t["shape"], t["sha256"])) for t in lines[1:]]


def test_weights_table_reads_bin_folders_and_shards(tmp_path):
    """mp_weights_open on folders holding only pytorch_model.bin (single and sharded with
    pytorch_model.bin.index.json) gives what the safetensors save of the same model gives."""
    if not os.path.exists(ST_DUMP):
        pytest.fail("st_dump not built", pytrace=False)
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64)
    model = BertModel(cfg)
    model.save_pretrained(tmp_path / "st", safe_serialization=True)
    model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    model.save_pretrained(tmp_path / "shard", safe_serialization=False, max_shard_size="20KB")
    assert (tmp_path / "shard" / "pytorch_model.bin.index.json").exists()
    ref = st_reference(tmp_path / "st" / "model.safetensors")
    for sub, fmt in (("bin", 3), ("shard", 4)):
        got_fmt, got = weights_table(tmp_path / sub)
        assert got_fmt == fmt, sub
        assert dict(got) == ref, sub
    # the CLI sees the same model either way
    if os.path.exists(os.environ.get("MP_BIN", "")):
        def insp(d):
            r = subprocess.run([os.environ["MP_BIN"], "inspect", str(d), "--json"], capture_output=True, text=True,
                               timeout=120)
            assert r.returncode == 0, r.stderr
            w = json.loads(r.stdout)["weights"]
            return w["tensor_count"], w["parameters"], w["dtypes"]
        assert insp(tmp_path / "bin") == insp(tmp_path / "st") == insp(tmp_path / "shard")


def test_legacy_distilbert_from_real_config(tmp_path):
    """typeform/distilbert-base-uncased-mnli (2020) ships a legacy (non-zip) pytorch_model.bin: a
    DistilBERT built from that model's real config (shrunk), saved in the legacy layout, reads
    like its safetensors save."""
    cfg_path = os.path.join(require_shared(), "models", "distilbert-base-uncased-mnli", "config.json")
    if not os.path.exists(ST_DUMP):
        pytest.fail("st_dump not built", pytrace=False)
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = AutoConfig.from_pretrained(os.path.dirname(cfg_path))
    cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.n_heads, cfg.vocab_size = 2, 32, 37, 4, 200
    torch.manual_seed(2)
    model = AutoModelForSequenceClassification.from_config(cfg)
    (tmp_path / "legacy").mkdir()
    torch.save(model.state_dict(), tmp_path / "legacy" / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    with open(tmp_path / "legacy" / "pytorch_model.bin", "rb") as f:
        assert f.read(2) == b"\x80\x02"  # really the legacy stream, not a zip
    model.save_pretrained(tmp_path / "st", safe_serialization=True)
    ref = st_reference(tmp_path / "st" / "model.safetensors")
    fmt, got = weights_table(tmp_path / "legacy")
    assert fmt == 3
    assert dict(got) == ref
    assert [n for n, _ in got] == list(model.state_dict())
