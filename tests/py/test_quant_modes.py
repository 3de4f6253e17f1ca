"""MLX's floating-point quantization modes (mxfp4, nvfp4, mxfp8) and per-layer recipes
(--q-override, --q-recipe, --quant-predicate, --q-recipe-file):

- bit-exactness against the installed mx.quantize / mx.dequantize on adversarial tensors (zeros,
  float32/float16 subnormals, fp4/fp8 ties, e8m0 rounding edges, saturation, every float16
  value as a group maximum) and on the real all-MiniLM-L6-v2;
- MLX round trip: every mode and override layout loads in MLX (tools/mlx_bert.py, nn.quantize
  with mlx-lm's class predicate, strict=True) and MLX's outputs equal mlxport's (faithful mode)
  within 1e-3 relative, for MiniLM embeddings and the project's NLI classifier logits;
- bad input: NaN/inf refused, a glob matching nothing warns, mode/group combinations MLX does not
  allow are refused, a recipe file for another architecture is refused."""
import json
import os
import sys

import mlx.core as mx
import numpy as np
import pytest
from conftest import SOURCE_DIR, run_cli
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.join(SOURCE_DIR, "tools"))

MODES = ["mxfp4", "nvfp4", "mxfp8"]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
CACHE = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
NLI = os.path.join(CACHE, "models", "nli-minilm-l6-snli")


def adversarial():
    rng = np.random.default_rng(0)
    a = {"rand": rng.standard_normal((32, 256)).astype(np.float32) * 0.05,
         "wide": (rng.standard_normal((32, 256)) * np.exp(rng.uniform(-20, 8, (32, 1)))).astype(np.float32)}
    z = np.zeros((4, 256), np.float32)
    z[1, :16] = 1e-40                                   # float32 subnormals
    z[2] = rng.standard_normal(256).astype(np.float32) * 1e-39
    z[3, ::3] = -0.0                                    # signed zeros, all-zero groups
    a["zeros_subnormal"] = z
    t = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0] * 4, np.float32)
    a["fp4_ties"] = (np.concatenate([t, -t] * 4).reshape(8, 32) * np.float32(2.0 ** -3))
    b = rng.standard_normal((64, 32)).astype(np.float32) * 0.01   # group max near 6 * 2^(n + 1/2)
    b[:, 0] = (6 * 2.0 ** (np.arange(64) % 20 - 10 + 0.5) * (1 + (np.arange(64) - 32) * 1e-7)).astype(np.float32)
    a["e8m0_edges"] = b
    c = rng.uniform(-480, 480, (16, 32)).astype(np.float32)       # fp8 range, saturation above 448
    c[:, 0] = 448 * 2.0 ** (np.arange(16) - 8)
    a["fp8_range"] = c
    h = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float32)  # every finite f16 >= 0
    a["f16_sweep"] = h[:len(h) // 32 * 32].reshape(-1, 32)
    return a


@pytest.mark.parametrize("mode", MODES)
def test_fp_bit_exact_random(tmp_path, mode):
    arrays = adversarial()
    src = tmp_path / "in.safetensors"
    save_file(arrays, str(src))
    for dt, mdt in DTYPES.items():
        q = tmp_path / f"q-{dt}.safetensors"
        run_cli("quantize", str(src), str(q), "--mode", mode, "--dtype", dt)
        ours = mx.load(str(q))
        for k, v in arrays.items():
            wq, sc = mx.quantize(mx.array(v).astype(mdt), mode=mode)
            assert ours[k].dtype == mx.uint32 and ours[k + ".scales"].dtype == mx.uint8 and k + ".biases" not in ours
            np.testing.assert_array_equal(np.array(ours[k]), np.array(wq), err_msg=f"{mode} {dt} {k} codes")
            np.testing.assert_array_equal(np.array(ours[k + ".scales"]), np.array(sc), err_msg=f"{mode} {dt} {k} scales")
        # dequantizing MLX's own output gives mx.dequantize bit for bit
        d = tmp_path / f"d-{dt}.safetensors"
        run_cli("quantize", str(q), str(d), "--mode", mode, "--dequantize", "--dtype", dt)
        deq = mx.load(str(d))
        for k in arrays:
            ref = mx.dequantize(ours[k], ours[k + ".scales"], mode=mode, dtype=mdt)
            assert deq[k].dtype == mdt
            np.testing.assert_array_equal(np.array(deq[k].astype(mx.float32)), np.array(ref.astype(mx.float32)),
                                          err_msg=f"dequantize {mode} {dt} {k}")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fp_nonfinite_refused(tmp_path, bad):
    w = np.ones((2, 64), np.float32)
    w[1, 37] = bad
    save_file({"layer.weight": w}, str(tmp_path / "in.safetensors"))
    p = run_cli("quantize", str(tmp_path / "in.safetensors"), str(tmp_path / "o.safetensors"), "--mode", "mxfp4",
                check=False)
    assert p.returncode != 0 and "layer.weight" in p.stderr and "flat index 101" in p.stderr, p.stderr


def test_fp_bad_mode_group(tmp_path):
    save_file({"w": np.ones((2, 64), np.float32)}, str(tmp_path / "in.safetensors"))
    p = run_cli("quantize", str(tmp_path / "in.safetensors"), str(tmp_path / "o.safetensors"), "--mode", "nvfp4",
                "--group-size", "32", check=False)
    assert p.returncode == 2 and "nvfp4 mode takes exactly 4 bits and group size 16" in p.stderr, p.stderr


@pytest.fixture(scope="module")
def minilm_modes(tmp_path_factory):
    from conftest import minilm_dir
    src = minilm_dir()
    assert src, "all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models"
    out = tmp_path_factory.mktemp("modes")
    folders = {}
    for mode in MODES:
        folders[mode] = str(out / mode)
        run_cli("convert", "--hf-path", src, "--mlx-path", folders[mode], "-q", "--q-mode", mode, "--dtype", "float32")
    return src, folders


def test_fp_minilm_bit_exact(minilm_modes):
    src, folders = minilm_modes
    w = mx.load(os.path.join(src, "model.safetensors"))
    for mode, d in folders.items():
        cfg = json.load(open(os.path.join(d, "config.json")))
        gs, bits = {"mxfp4": (32, 4), "nvfp4": (16, 4), "mxfp8": (32, 8)}[mode]
        assert cfg["quantization"] == {"group_size": gs, "bits": bits, "mode": mode}
        assert cfg["quantization_config"] == cfg["quantization"]
        ours = mx.load(os.path.join(d, "model.safetensors"))
        n = 0
        for k, v in w.items():
            if k.endswith(".weight") and v.ndim == 2:
                wq, sc = mx.quantize(v.astype(mx.float32), mode=mode)
                assert np.array_equal(np.array(ours[k]), np.array(wq)), (mode, k)
                assert np.array_equal(np.array(ours[k[:-7] + ".scales"]), np.array(sc)), (mode, k)
                n += 1
        assert n == 40
        v = json.loads(run_cli("verify-weights", src, d, "--json").stdout)
        assert v["verdict"] == "pass" and v["quantized"] == 40, mode


def texts(n=16):
    from conftest import require_shared
    out = []
    with open(os.path.join(require_shared(), "datasets", "stsb", "dev.tsv")) as f:
        next(f)
        for line in f:
            c = line.rstrip("\n").split("\t")
            out += [c[7], c[8]]
            if len(out) >= n:
                return out


def mlx_outputs(folder, a, b=None):
    import mlx_bert
    from tokenizers import Tokenizer
    model, _, _ = mlx_bert.load(folder)  # strict=True
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_padding()
    tok.enable_truncation(128)
    enc = tok.encode_batch(list(zip(a, b)) if b else a)
    ids, types, attn = (mx.array([getattr(e, f) for e in enc]) for f in ("ids", "type_ids", "attention_mask"))
    if isinstance(model, mlx_bert.BertForSequenceClassification):
        return np.array(model(ids, types, attn).astype(mx.float32))
    h, _ = model(ids, types, attn)
    m = attn[..., None].astype(h.dtype)
    return np.array(((h * m).sum(axis=1) / m.sum(axis=1)).astype(mx.float32))


def rel(a, b):
    return float(np.abs(a - b).max() / max(1e-12, np.abs(b).max()))


LAYOUTS = {
    "overrides": ["--q-bits", "4", "--q-override", "*.attention.self.*=8:32", "--q-override",
                  "encoder.layer.1.*=4:32:mxfp4", "--q-override", "*.intermediate.*=nvfp4", "--q-override",
                  "encoder.layer.5.output.dense=mxfp8", "--q-override", "embeddings.word_embeddings=none"],
    "keep-edges": ["--q-bits", "3", "--q-recipe", "keep-edges"],
    "keep-edges-float": ["--q-mode", "mxfp4", "--q-recipe", "keep-edges-float"],
    "mixed_3_6": ["--quant-predicate", "mixed_3_6"],
}


def test_mlx_roundtrip_modes(minilm_modes):
    _, folders = minilm_modes
    sents = texts()
    for mode, d in folders.items():
        ref = mlx_outputs(d, sents)
        ours = [np.mean(np.array(json.loads(l)["token_embeddings"]), 0) for l in run_cli(
            "embed", "--model", d, "--token-embeddings", "--max-length", "128",
            input="".join(s + "\n" for s in sents)).stdout.splitlines()]
        # MLX's QuantizedEmbedding returns bfloat16 in the fp modes, so tools/mlx_bert.py adds the
        # three embeddings in bfloat16 (mlxport in float32): the 1e-3 bound covers that
        assert rel(np.array(ours), ref) <= 1e-3, mode


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_mlx_roundtrip_layouts(minilm, tmp_path, layout):
    d = str(tmp_path / layout)
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", d, "-q", "--dtype", "float32", *LAYOUTS[layout])
    q = json.load(open(os.path.join(d, "config.json")))["quantization"]
    per_path = {k: v for k, v in q.items() if k not in ("group_size", "bits", "mode")}
    assert per_path, "the layout must produce per-path entries"
    meta = json.load(open(os.path.join(d, "conversion_metadata.json")))
    for t in meta["tensors"]:  # config and weights agree on every layer
        mod = t["name"][:-7]
        if t["action"] == "quantize":
            want = per_path.get(mod, {"group_size": q["group_size"], "bits": q["bits"], "mode": q["mode"]})
            assert want == {"group_size": t["group_size"], "bits": t["bits"], "mode": t["mode"]}, mod
        elif t["name"].endswith(".weight") and len(t["shape"]) == 2:
            assert per_path.get(mod) is False, mod
    sents = texts()
    ref = mlx_outputs(d, sents)
    ours = [np.mean(np.array(json.loads(l)["token_embeddings"]), 0) for l in run_cli(
        "embed", "--model", d, "--token-embeddings", "--max-length", "128",
        input="".join(s + "\n" for s in sents)).stdout.splitlines()]
    assert rel(np.array(ours), ref) <= 1e-3
    if layout == "keep-edges":
        assert per_path["embeddings.word_embeddings"] == {"group_size": 64, "bits": 8, "mode": "affine"}
        assert per_path["encoder.layer.0.attention.self.query"]["bits"] == 8
        assert per_path["encoder.layer.5.output.dense"]["bits"] == 8
        assert "encoder.layer.2.output.dense" not in per_path and q["bits"] == 3
    if layout == "mixed_3_6":  # mlx-lm: v_proj/down_proj of layers 0, 5 and (i - 0) % 3 == 2 at 6 bits
        six = sorted(k for k, v in per_path.items() if v["bits"] == 6)
        assert six == [f"encoder.layer.{i}.{m}" for i in (2, 5) for m in ("attention.self.value", "output.dense")]


def test_mlx_roundtrip_classifier(tmp_path):
    assert os.path.exists(os.path.join(NLI, "model.safetensors")), "the project's NLI model (scripts/setup.sh)"
    d = str(tmp_path / "nli")
    run_cli("convert", "--hf-path", NLI, "--mlx-path", d, "-q", "--dtype", "float32", "--q-mode", "mxfp4",
            "--q-override", "classifier=none", "--q-override", "bert.pooler.*=mxfp8", "--q-override",
            "*.attention.*=nvfp4", "--q-override", "bert.embeddings.*=6:32")
    prem = ["A man is playing a guitar on stage.", "Two dogs run through a field.", "A woman reads a book."]
    hyp = ["A person plays music.", "The animals are asleep.", "Someone is reading."]
    ref = mlx_outputs(d, prem, hyp)
    p = run_cli("classify", "--model", d, "--pair", "--json", "--max-length", "128",
                input="".join(f"{a}\t{b}\n" for a, b in zip(prem, hyp)))
    ours = np.array([json.loads(l)["logits"] for l in p.stdout.splitlines()])
    assert rel(ours, ref) <= 1e-3


def test_recipe_file_reapplies_and_refuses_other_arch(minilm, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    run_cli("convert", "--hf-path", minilm, "--mlx-path", a, "-q", *LAYOUTS["overrides"])
    run_cli("convert", "--hf-path", minilm, "--mlx-path", b, "-q", "--q-recipe-file",
            os.path.join(a, "conversion_metadata.json"))
    assert open(os.path.join(a, "model.safetensors"), "rb").read() == open(os.path.join(b, "model.safetensors"), "rb").read()
    ca, cb = (json.load(open(os.path.join(x, "config.json")))["quantization"] for x in (a, b))
    assert ca == cb
    assert "## Quantization recipe" in open(os.path.join(a, "README.md")).read()
    rec = json.load(open(os.path.join(a, "conversion_metadata.json")))["recipe"]
    rec["model_type"] = "deberta-v2"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(rec))
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", str(tmp_path / "c"), "-q", "--q-recipe-file",
                str(other), check=False)
    assert p.returncode != 0 and 'made for model_type "deberta-v2" but the model is "bert"' in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "c")
    rec["model_type"] = "bert"
    rec["rules"][0]["bitz"] = 4
    other.write_text(json.dumps(rec))
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", str(tmp_path / "c"), "-q", "--q-recipe-file",
                str(other), check=False)
    assert p.returncode != 0 and str(other) in p.stderr and 'key "bitz"' in p.stderr, p.stderr


BAD = [
    (["--q-mode", "nvfp4", "--q-group-size", "32"], "nvfp4 mode takes exactly 4 bits and group size 16"),
    (["--q-mode", "mxfp8", "--q-bits", "4"], "mxfp8 mode takes exactly 8 bits and group size 32"),
    (["--q-override", "classifier=4:16"], "affine mode takes bits 2, 3, 4, 5, 6, 8 and group sizes 32, 64, 128"),
    (["--q-override", "*.query=8:32:mxfp4"], "mxfp4 mode takes exactly 4 bits and group size 32"),
    (["--q-override", "*.query=4:32:fp4"], "mode 'fp4'"),
    (["--q-override", "nonsense"], "expected GLOB=BITS[:GROUP[:MODE]] or GLOB=none"),
    (["--q-recipe", "keep-middle"], "recipe 'keep-middle' is not known"),
    (["--quant-predicate", "llama_q4_k_m"], "other predicates are Python functions of decoder module names"),
]


@pytest.mark.parametrize("args,msg", BAD, ids=[a[1] for a, _ in BAD])
def test_bad_input(minilm, tmp_path, args, msg):
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", str(tmp_path / "o"), "-q", *args, check=False)
    assert p.returncode != 0 and msg in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "o")


def test_override_needs_q_and_unmatched_glob_warns(minilm, tmp_path):
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", str(tmp_path / "o"), "--q-override", "x=4", check=False)
    assert p.returncode != 0 and "need -q" in p.stderr
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", str(tmp_path / "o"), "-q", "--dry-run",
                "--q-override", "decoder.*=4", "--q-override", "pooler.dense=none")
    assert "--q-override 'decoder.*' matches no Linear/Embedding layer" in p.stderr, p.stderr
    assert "pooler.dense" not in p.stderr
