"""mlxport convert / verify-weights against real MLX and mlx-lm's conventions:
every converted file loads with mx.load, quantized tensors equal mx.quantize of the source cast to
the output dtype (whole all-MiniLM-L6-v2 model), the config's quantization block is the one
mlx-lm writes (plus "<path>": false for layers kept in float), tools/mlx_bert.py rebuilds the
modules with nn.quantize and loads our weights with strict=True, conversions are byte-identical
and atomic (SIGKILL leaves no output folder)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import BIN, SOURCE_DIR, run_cli

import mlx.core as mx  # noqa: E402  (missing references are failures, not skips)
import mlx.nn as nn  # noqa: E402
sys.path.insert(0, os.path.join(SOURCE_DIR, "tools"))
import mlx_bert  # noqa: E402

DT = {"float16": mx.float16, "bfloat16": mx.bfloat16, "float32": mx.float32}


def sanitizer_build():
    """True in the ASan/UBSan build (slow): the kill test then uses a smaller synthetic model."""
    cache = os.path.join(os.environ.get("MP_BUILD_DIR", ""), "CMakeCache.txt")
    return os.path.exists(cache) and "MP_SANITIZE:BOOL=ON" in open(cache).read()


def convert(*args, check=True):
    return run_cli("convert", *map(str, args), check=check)


def convert_json(*args):
    return json.loads(convert(*args, "--json").stdout)


def bits(a):
    return np.array(a.view(mx.uint16) if a.dtype in (mx.float16, mx.bfloat16) else
                    (a.view(mx.uint32) if a.dtype == mx.float32 else a))


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(bits(a), bits(b))


def expected_quantization(config, weights_src, bits_, gs, skip=()):
    """The quantization block mlx-lm's quantize_model writes for this model (group_size, bits,
    mode), plus "<path>": false for each Linear/Embedding that stays float, built from the MLX
    module tree (tools/mlx_bert.py) and mlx-lm's rule: to_quantized() and last dim % group."""
    import fnmatch
    model = mlx_bert.BertForSequenceClassification(config) if any(
        k.startswith("classifier.") for k in weights_src) else mlx_bert.Bert(
        config, pooler=any(k.startswith("pooler.") for k in weights_src))
    q = {"group_size": gs, "bits": bits_, "mode": "affine"}
    from mlx.utils import tree_flatten
    for path, m in tree_flatten(model.leaf_modules(), is_leaf=nn.Module.is_module):
        if not hasattr(m, "to_quantized"):
            continue
        if m.weight.shape[-1] % gs != 0 or any(fnmatch.fnmatch(path, p) for p in skip):
            q[path] = False
    return q


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("convert")


@pytest.fixture(scope="module")
def minilm_src():
    from conftest import minilm_dir
    d = minilm_dir()
    if not d:
        pytest.fail("all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh", pytrace=False)
    return d


def minilm_converted(minilm_src, work, bits_, gs, dtype):
    out = work / f"minilm-q{bits_}-g{gs}-{dtype}"
    if not out.exists():
        args = ["--hf-path", minilm_src, "--mlx-path", out, "-q", "--q-bits", bits_, "--q-group-size", gs]
        if dtype:
            args += ["--dtype", dtype]
        s = convert_json(*args)
        assert s["status"] == "converted"
        (work / f"{out.name}.summary.json").write_text(json.dumps(s))
    return out, json.loads((work / f"{out.name}.summary.json").read_text())


@pytest.mark.parametrize("bits_,gs,dtype", [(4, 64, None), (8, 64, "float32")])
def test_minilm_whole_model_matches_mlx(minilm_src, work, bits_, gs, dtype):
    out, summary = minilm_converted(minilm_src, work, bits_, gs, dtype)
    dt = DT[dtype or "float16"]  # no torch_dtype in this config -> float16
    src = mx.load(os.path.join(minilm_src, "model.safetensors"))
    ours, meta = mx.load(str(out / "model.safetensors"), return_metadata=True)
    assert meta == {"format": "mlx"}
    n_q = 0
    for name, w in src.items():
        if name.endswith("position_ids"):
            assert name not in ours  # integer buffer transformers recomputes
            continue
        if w.ndim == 2 and name.endswith(".weight"):
            base = name[:-7]
            wq, s, b = mx.quantize(w.astype(dt), group_size=gs, bits=bits_)
            assert same(ours[name], wq) and same(ours[base + ".scales"], s) and same(ours[base + ".biases"], b), name
            n_q += 1
        else:
            assert same(ours[name], w.astype(dt)), name
    assert n_q == 40 and summary["quantized"] == 40
    assert len(ours) == 103 + 2 * 40
    # config: source config minus _name_or_path, plus mlx-lm's quantization block and its mirror
    cfg_src = json.load(open(os.path.join(minilm_src, "config.json")))
    cfg = json.load(open(out / "config.json"))
    q = expected_quantization(cfg_src, src, bits_, gs)
    assert cfg["quantization"] == q and cfg["quantization_config"] == q
    assert list(cfg) == sorted(cfg)  # mlx-lm's save_config sorts the keys
    rest = {k: v for k, v in cfg.items() if not k.startswith("quantization")}
    assert rest == {k: v for k, v in cfg_src.items() if k != "_name_or_path"}
    # side files, card, metadata
    for f in ["tokenizer.json", "vocab.txt", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
              "README.md", "conversion_metadata.json"]:
        assert (out / f).is_file(), f
    assert open(out / "tokenizer.json", "rb").read() == open(os.path.join(minilm_src, "tokenizer.json"), "rb").read()
    card = open(out / "README.md").read()
    assert "library_name: mlx" in card and "sentence-transformers/all-MiniLM-L6-v2" in card
    md = json.load(open(out / "conversion_metadata.json"))
    import hashlib
    sha = hashlib.sha256(open(os.path.join(minilm_src, "model.safetensors"), "rb").read()).hexdigest()
    assert md["source"]["files"][0]["sha256"] == sha
    assert md["sizes"]["output_weight_bytes"] == os.path.getsize(out / "model.safetensors")
    assert abs(md["sizes"]["compression_ratio"] - md["sizes"]["source_weight_bytes"] /
               md["sizes"]["output_weight_bytes"]) < 1e-9
    # per-tensor error in the metadata against an independent computation with mx.dequantize
    ent = {t["name"]: t for t in md["tensors"]}
    for name in ["encoder.layer.0.attention.self.query.weight", "embeddings.word_embeddings.weight"]:
        base = name[:-7]
        d = mx.dequantize(ours[name], ours[base + ".scales"], ours[base + ".biases"], group_size=gs,
                          bits=bits_).astype(mx.float32)
        e = np.array(d) - np.array(src[name])
        rms = float(np.sqrt((e.astype(np.float64) ** 2).mean()))
        assert ent[name]["action"] == "quantize"
        assert abs(ent[name]["max_abs_err"] - float(np.abs(e).max())) <= 1e-6 * max(1, float(np.abs(e).max()))
        assert abs(ent[name]["rms_err"] - rms) <= 1e-6 * rms
        ref_rms = float(np.sqrt((np.array(src[name]).astype(np.float64) ** 2).mean()))
        assert abs(ent[name]["rel_rms_err"] - rms / ref_rms) <= 1e-6
    # MLX module tree with nn.quantize(class_predicate) loads our weights strictly
    model, _, _ = mlx_bert.load(str(out))
    assert model is not None


def test_minilm_q8_outputs_close_to_transformers(minilm_src, work):
    out, _ = minilm_converted(minilm_src, work, 8, 64, "float32")
    r = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "mlx_bert.py"), str(out), "--hf",
                        minilm_src], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cos = json.loads(r.stdout.strip().splitlines()[-1])["cosine"]
    assert min(cos) > 0.999, cos


def test_q_skip_records_false_and_loads(classifier_src, work):
    out = work / "cls-skip"
    s = convert_json("--hf-path", classifier_src, "--mlx-path", out, "-q", "--q-group-size", 32, "--q-skip",
                     "bert.embeddings.*", "--q-skip", "classifier")
    assert s["float_layers"] == 4 and s["quantized"] == 13
    cfg = json.load(open(out / "config.json"))
    src = mx.load(str(classifier_src / "model.safetensors"))
    assert cfg["quantization"] == expected_quantization(cfg, src, 4, 32, skip=("bert.embeddings.*", "classifier"))
    w = mx.load(str(out / "model.safetensors"))
    assert w["bert.embeddings.word_embeddings.weight"].dtype == mx.float32  # torch_dtype float32
    assert "bert.embeddings.word_embeddings.scales" not in w and "classifier.scales" not in w
    mlx_bert.load(str(out))


def test_reconvert_is_byte_identical_and_skips(classifier_src, work):
    a, b = work / "same-a" / "m", work / "same-b" / "m"
    convert("--hf-path", classifier_src, "--mlx-path", a, "-q", "--q-group-size", 32)
    convert("--hf-path", classifier_src, "--mlx-path", b, "-q", "--q-group-size", 32)
    for f in ["model.safetensors", "config.json", "README.md", "tokenizer.json"]:
        assert open(a / f, "rb").read() == open(b / f, "rb").read(), f
    ma, mb = (json.load(open(p / "conversion_metadata.json")) for p in (a, b))
    ma.pop("timings"), mb.pop("timings")
    assert ma == mb
    # same source and settings: skipped, nothing touched
    mtime = os.stat(a / "model.safetensors").st_mtime_ns
    assert convert_json("--hf-path", classifier_src, "--mlx-path", a, "-q", "--q-group-size", 32)["status"] == "skipped"
    assert os.stat(a / "model.safetensors").st_mtime_ns == mtime
    # --no-skip reconverts (replacing the folder); other settings reconvert too
    assert convert_json("--hf-path", classifier_src, "--mlx-path", a, "-q", "--q-group-size", 32,
                        "--no-skip")["status"] == "converted"
    assert convert_json("--hf-path", classifier_src, "--mlx-path", a, "-q", "--q-group-size", 32, "--q-bits",
                        8)["status"] == "converted"
    assert json.load(open(a / "config.json"))["quantization"]["bits"] == 8
    assert not [p for p in os.listdir(a.parent) if p.startswith(".")]  # no temp folders left
    # a folder that is not a conversion is never overwritten
    other = work / "not-ours"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    r = convert("--hf-path", classifier_src, "--mlx-path", other, "-q", check=False)
    assert r.returncode == 2 and "not an mlxport conversion" in r.stderr
    assert (other / "keep.txt").read_text() == "x"
    # an MLX-quantized folder is not a source
    r = convert("--hf-path", a, "--mlx-path", work / "again", check=False)
    assert r.returncode == 3 and "already MLX-quantized" in r.stderr


def test_dry_run_touches_nothing(minilm_src, work):
    out = work / "dry" / "m"
    p = convert_json("--hf-path", minilm_src, "--mlx-path", out, "-q", "--dry-run")
    assert p["status"] == "planned" and not (work / "dry").exists()
    acts = {e["name"]: e["action"] for e in p["plan"]}
    assert acts["encoder.layer.0.attention.self.query.weight"] == "quantize"
    assert acts["embeddings.LayerNorm.weight"] == "cast"
    assert acts["embeddings.position_ids"] == "drop"
    assert len(acts) == 104


def test_shards_and_index(classifier_src, work):
    out = work / "sharded"
    s = convert_json("--hf-path", classifier_src, "--mlx-path", out, "--max-shard-size", "2MB")
    assert s["files"] > 2
    idx = json.load(open(out / "model.safetensors.index.json"))
    files = sorted(set(idx["weight_map"].values()))
    assert files == [f"model-{i:05d}-of-{len(files):05d}.safetensors" for i in range(1, len(files) + 1)]
    loaded = {}
    for f in files:
        w, meta = mx.load(str(out / f), return_metadata=True)
        assert meta == {"format": "mlx"}
        for k in w:
            assert idx["weight_map"][k] == f
        loaded.update(w)
    assert set(loaded) == set(idx["weight_map"])
    assert idx["metadata"]["total_size"] == sum(v.nbytes for v in loaded.values())
    assert "quantization" not in json.load(open(out / "config.json"))
    src = mx.load(str(classifier_src / "model.safetensors"))
    for k, v in src.items():  # float32 source, torch_dtype float32: copied bit for bit
        assert same(loaded[k], v), k
    mlx_bert.load(str(out))


@pytest.fixture(scope="module")
def classifier_src(work, minilm_src):
    """A small random BertForSequenceClassification written by transformers (safetensors), with
    id2label; hidden size 96 so that group size 64 leaves some layers in float."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=192, max_position_embeddings=128,
                     id2label={0: "entailment", 1: "not_entailment"}, label2id={"entailment": 0, "not_entailment": 1})
    m = BertForSequenceClassification(cfg).eval()
    d = work / "cls-src"
    m.save_pretrained(d, safe_serialization=True)
    for f in ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(minilm_src, f), d / f)
    return d


def test_classifier_head_kept(classifier_src, work):
    out = work / "cls-q8"
    s = convert_json("--hf-path", classifier_src, "--mlx-path", out, "-q", "--q-bits", 8, "--q-group-size", 64)
    cfg = json.load(open(out / "config.json"))
    assert cfg["id2label"] == {"0": "entailment", "1": "not_entailment"}
    src = mx.load(str(classifier_src / "model.safetensors"))
    q = expected_quantization(cfg, src, 8, 64)
    assert cfg["quantization"] == q
    assert q["bert.embeddings.word_embeddings"] is False and s["float_layers"] > 0  # 96 % 64 != 0
    assert s["quantized"] == 2  # the two output.dense (in_features 192)
    w = mx.load(str(out / "model.safetensors"))
    assert "classifier.weight" in w and "bert.pooler.dense.weight" in w
    assert cfg["torch_dtype"] == "float32" and w["classifier.bias"].dtype == mx.float32
    mlx_bert.load(str(out))
    # with group size 32 everything is quantized; outputs stay close to transformers
    out32 = work / "cls-q8-g32"
    s = convert_json("--hf-path", classifier_src, "--mlx-path", out32, "-q", "--q-bits", 8, "--q-group-size", 32)
    assert s["float_layers"] == 0
    r = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "mlx_bert.py"), str(out32), "--hf",
                        str(classifier_src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert min(json.loads(r.stdout.strip().splitlines()[-1])["cosine"]) > 0.99
    # 3-bit, bfloat16: every tensor equals MLX
    out3 = work / "cls-q3-bf16"
    convert("--hf-path", classifier_src, "--mlx-path", out3, "-q", "--q-bits", 3, "--q-group-size", 32, "--dtype",
            "bfloat16")
    ours = mx.load(str(out3 / "model.safetensors"))
    for name, w in mx.load(str(classifier_src / "model.safetensors")).items():
        if w.ndim == 2 and name.endswith(".weight"):
            wq, sc, bi = mx.quantize(w.astype(mx.bfloat16), group_size=32, bits=3)
            base = name[:-7]
            assert same(ours[name], wq) and same(ours[base + ".scales"], sc) and same(ours[base + ".biases"], bi)
        elif not name.endswith("position_ids"):
            assert same(ours[name], w.astype(mx.bfloat16)), name
    mlx_bert.load(str(out3))


def test_verify_weights_report(minilm_src, work):
    out, _ = minilm_converted(minilm_src, work, 4, 64, None)
    r = run_cli("verify-weights", minilm_src, str(out), "--json")
    rep = json.loads(r.stdout)
    assert rep["verdict"] == "pass" and rep["tensors_compared"] == 103 and rep["quantized"] == 40
    rels = [t["rel_rms_err"] for t in rep["tensors"]]
    assert rels == sorted(rels, reverse=True)  # worst first
    src = mx.load(os.path.join(minilm_src, "model.safetensors"))
    ours = mx.load(str(out / "model.safetensors"))
    for t in rep["tensors"][:3] + rep["tensors"][-3:]:
        name = t["name"]
        if t["kind"] == "quantized":
            base = name[:-7]
            d = mx.dequantize(ours[name], ours[base + ".scales"], ours[base + ".biases"], group_size=64, bits=4)
        else:
            d = ours[name]
        e = np.array(d.astype(mx.float32)).astype(np.float64) - np.array(src[name]).astype(np.float64)
        ref = np.array(src[name]).astype(np.float64)
        rms = np.sqrt((e ** 2).mean())
        assert abs(t["max_abs_err"] - np.abs(e).max()) <= 1e-7 + 1e-6 * np.abs(e).max()
        assert abs(t["rms_err"] - rms) <= 1e-12 + 1e-6 * rms
        if rms > 0:
            snr = 10 * np.log10((ref ** 2).sum() / (e ** 2).sum())
            assert abs(t["snr_db"] - snr) < 1e-4
    # a strict gate fails with exit 1 and names the worst tensor first
    r = run_cli("verify-weights", minilm_src, str(out), "--max-rel-rms", "0.05", check=False)
    assert r.returncode == 1 and "FAIL" in r.stdout
    # a tampered converted file is caught
    bad = work / "verify-bad"
    shutil.copytree(out, bad)
    w = dict(mx.load(str(bad / "model.safetensors")))
    name = "encoder.layer.2.attention.self.key.scales"
    w[name] = w[name] * 3
    mx.save_safetensors(str(bad / "model.safetensors"), w, metadata={"format": "mlx"})
    rep = json.loads(run_cli("verify-weights", minilm_src, str(bad), "--json", check=False).stdout)
    assert rep["verdict"] == "fail" and rep["tensors"][0]["name"] == "encoder.layer.2.attention.self.key.weight"


def synthetic_model(d, n_layers=12, h=1024):
    """~200 MB BERT-shaped float32 checkpoint (random weights) for the kill test."""
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    t = {}
    for i in range(n_layers):
        p = f"encoder.layer.{i}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            t[p + n + ".weight"] = rng.standard_normal((h, h), dtype=np.float32) * 0.02
            t[p + n + ".bias"] = np.zeros(h, np.float32)
    t["embeddings.word_embeddings.weight"] = rng.standard_normal((1024, h), dtype=np.float32)
    d.mkdir()
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": h, "torch_dtype": "float32"}))
    return sum(v.nbytes for v in t.values())


def test_sigkill_leaves_no_output(work):
    src = work / "big-src"
    small = sanitizer_build()  # ~10x slower there: a quarter of the size still takes seconds
    size = synthetic_model(src, n_layers=3 if small else 12)
    assert size > (45e6 if small else 190e6)
    parent = work / "kill"
    parent.mkdir()
    out = parent / "m"
    args = [BIN, "convert", "--hf-path", str(src), "--mlx-path", str(out), "-q", "--max-shard-size", "1MB" if small else "5MB"]

    def temp_dirs():
        return [p for p in os.listdir(parent) if p.startswith(".m.tmp-")]

    def kill_when(pred, timeout=120):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while p.poll() is None and not pred() and time.time() - t0 < timeout:
            time.sleep(0.002)
        finished = p.poll() is not None
        p.send_signal(signal.SIGKILL)
        p.wait()
        return not finished

    def in_tmp(pattern):
        def pred():
            return any(glob.glob(str(parent / t / pattern)) for t in temp_dirs())
        return pred

    moments = [
        lambda: bool(temp_dirs()),               # temp folder just created
        in_tmp("model-00002-of-*.safetensors"),  # after the first shards
        in_tmp("model-00004-of-*.safetensors"),
        in_tmp("config.json"),                   # weights done, writing side files
    ]
    killed = 0
    for pred in moments:
        if kill_when(pred):
            killed += 1
        assert not out.exists(), "a killed conversion left an output folder"
    assert killed >= 2
    # the next conversion removes the dead temporary folders and succeeds
    s = json.loads(subprocess.run(args + ["--json"], capture_output=True, text=True, check=True).stdout)
    assert s["status"] == "converted" and out.is_dir() and not temp_dirs()
    shards = glob.glob(str(out / "model-*.safetensors"))
    assert len(shards) >= (2 if small else 5)
    for f in shards:
        mx.load(f)


def test_real_configs_round_trip(shared_dir, tmp_path):
    """config.json of the eleven target models (real files) survive conversion unchanged apart
    from mlx-lm's edits: exercises the JSON writer on real numbers, nulls, nested label maps."""
    from safetensors.numpy import save_file
    cfgs = sorted(glob.glob(os.path.join(shared_dir, "models", "*", "config.json")))
    assert len(cfgs) >= 10
    for i, c in enumerate(cfgs):
        src = tmp_path / f"src{i}"
        src.mkdir()
        shutil.copy(c, src / "config.json")
        save_file({"dense.weight": np.linspace(-1, 1, 64 * 64, dtype=np.float32).reshape(64, 64)},
                  str(src / "model.safetensors"))
        out = tmp_path / f"out{i}"
        convert("--hf-path", src, "--mlx-path", out, "-q")
        ref = json.load(open(c))
        got = json.load(open(out / "config.json"))
        q = {"group_size": 64, "bits": 4, "mode": "affine"}
        assert got.pop("quantization") == q and got.pop("quantization_config") == q, c
        ref.pop("_name_or_path", None)
        ref.pop("quantization_config", None)
        assert got == ref, c
