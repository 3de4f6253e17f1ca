"""Every family against both transformers lines, on checkpoints saved by the current one.

Real users' checkpoints are saved by transformers 5.x: bf16 weights, config.json in the 5.x schema
("dtype" instead of "torch_dtype", ModernBERT's rope_parameters per layer type and layer_types,
tie_word_embeddings, ...). tools/tf5_ref.py makes, with transformers 5.x ($MP_CACHE/venv-tf5,
scripts/setup.sh test), one tiny random-weight *ForSequenceClassification per family (real config
of the family's model in ../shared/models shrunk to a few layers x 64 wide, real tokenizer), and
the same model re-saved by the pinned 4.x line (4.x schema). mlxport's logits on both folders
are compared with the float32 logits of transformers 5.x and of the pinned 4.46.3 (4.48.3 for
ModernBERT), with the tolerance of the other parity tests.

"modernbert-theta" is the issue-16 case: a ModernBERT config in the 5.x schema only, with rope
thetas other than the defaults and a layer_types pattern that global_attn_every_n_layers does not
give. transformers 5.x follows rope_parameters / layer_types, 4.48 ignores them; mlxport must
match 5.x. Also: config keys mlxport does not understand are refused with the file and key named.

Without venv-tf5 or the test data the tests fail with the way to provide them; they never skip."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SOURCE_DIR, record_parity, require_shared, run_cli
from parity_util import close, modernbert_python, tf5_python

TOOL = os.path.join(SOURCE_DIR, "tools", "tf5_ref.py")
FAMILIES = ["bert", "roberta", "distilbert", "deberta-v2", "bart", "mobilebert", "mpnet", "modernbert"]
PAIRS = [
    ["A man is playing a guitar on the stage.", "Someone performs music."],
    ["The cat sat on the mat.", "A dog is sleeping."],
    ["Stocks fell sharply on Monday after the central bank raised interest rates again.", "Markets rose."],
    ["Short.", "A much longer hypothesis that goes on for a while, with commas, numbers like 42 and 3.14."],
    ["¿Dónde está la biblioteca? Ça va très bien.", "naïve café résumé"],
    [" ".join(["word%d" % i for i in range(60)]), "the end"],
]
# up to 512 tokens: DeBERTa's log buckets and MPNet's capped relative buckets, many ModernBERT windows
LONG_PAIRS = [
    [" ".join(["The committee met on day %d and discussed item %d at length." % (i, 7 * i) for i in range(40)]),
     "Nothing was decided."],
    ["A short premise.", " ".join(["clause %d, then" % i for i in range(150)])],
]
SETS = {"short": {"pairs": PAIRS, "max_length": 128}, "long": {"pairs": LONG_PAIRS, "max_length": 512}}


def tool(py, *args):
    p = subprocess.run([py, TOOL, *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, f"{py} {TOOL} {args[0]} failed:\n{p.stderr[-4000:]}"


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    shared = require_shared()  # fails (never skips) without the test data
    tf5 = tf5_python()  # fails (never skips) without venv-tf5
    mb = modernbert_python()
    assert mb, ("no Python with transformers 4.48 (ModernBERT's pinned reference): scripts/setup.sh test makes "
                "$MP_CACHE/venv-modernbert, or set MP_MODERNBERT_PYTHON")
    out = tmp_path_factory.mktemp("tf5")
    tool(tf5, "make", out, "--shared", shared)
    # 4.x-schema copies: the 5.x checkpoints loaded and saved again by the pinned line
    tool(sys.executable, "resave", *[p for n in FAMILIES if n != "modernbert" for p in (out / n, out / f"{n}-tf4saved")])
    tool(mb, "resave", out / "modernbert", out / "modernbert-tf4saved")
    inp = out / "pairs.json"
    inp.write_text(json.dumps(SETS))
    dirs = [out / n for n in FAMILIES + ["modernbert-theta", "modernbert-scaled"]] + [out / f"{n}-tf4saved" for n in FAMILIES]
    tool(tf5, "logits", inp, "tf5", *dirs)
    tool(sys.executable, "logits", inp, "tf4", *[d for d in dirs if "modernbert" not in d.name])
    tool(mb, "logits", inp, "tf4", *[d for d in dirs if "modernbert" in d.name])
    return out


def classify(model, pairs=PAIRS, max_length=128, check=True):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--max-length", str(max_length),
                input=lines, check=check)
    if not check:
        return p
    return [json.loads(l)["logits"] for l in p.stdout.splitlines()]


def ref(folder, tag, set_name="short"):
    r = json.load(open(folder / f"reference-{tag}.json"))
    return r[set_name], r["transformers"]


def safetensors_dtypes(folder):
    """The dtypes of a folder's safetensors tensors, from the file header."""
    out = set()
    for f in os.listdir(folder):
        if f.endswith(".safetensors"):
            with open(os.path.join(folder, f), "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
                h = json.loads(fh.read(n))
            out |= {v["dtype"] for k, v in h.items() if k != "__metadata__"}
    return out


@pytest.mark.parametrize("saved", ["tf5saved", "tf4saved"])
@pytest.mark.parametrize("name", FAMILIES)
def test_logits_vs_both_transformers(fx, name, saved):
    model = fx / (name if saved == "tf5saved" else f"{name}-tf4saved")
    cfg = json.load(open(model / "config.json"))
    if saved == "tf5saved":  # the 5.x schema and bf16 default that the test is about
        assert cfg.get("dtype") == "bfloat16" and "torch_dtype" not in cfg, cfg
        assert cfg["transformers_version"].startswith("5."), cfg["transformers_version"]
    else:
        assert cfg.get("torch_dtype") == "bfloat16" and cfg["transformers_version"].startswith("4."), cfg
    assert safetensors_dtypes(model) == {"BF16"}
    for set_name, s in SETS.items():
        ours = classify(model, s["pairs"], s["max_length"])
        for tag in ("tf5", "tf4"):
            r, version = ref(model, tag, set_name)
            assert version.startswith("5." if tag == "tf5" else "4."), version
            err = close(ours, r)
            record_parity(name, saved, f"{set_name} vs {version}", err)
            assert [int(np.argmax(l)) for l in ours] == [int(np.argmax(l)) for l in r]
        # the two transformers lines agree on these checkpoints (they differ only on 5.x-only keys)
        assert np.abs(np.array(ref(model, "tf5", set_name)[0]) - np.array(ref(model, "tf4", set_name)[0])).max() <= 1e-4


def test_modernbert_5x_rope_parameters_and_layer_types(fx, tmp_path):
    """The issue's case: 5.x-schema ModernBERT config with non-default thetas (rope_parameters only,
    no global_rope_theta / local_rope_theta) and layer_types. mlxport matches transformers 5.x."""
    model = fx / "modernbert-theta"
    cfg = json.load(open(model / "config.json"))
    assert "rope_parameters" in cfg and cfg.get("global_rope_theta") is None and cfg.get("local_rope_theta") is None
    assert cfg["layer_types"] == ["sliding_attention", "full_attention", "sliding_attention"]
    r5, v5 = ref(model, "tf5")
    r4, v4 = ref(model, "tf4")
    ours = classify(model)
    err = close(ours, r5)
    record_parity("modernbert-theta", "tf5saved", f"short vs {v5}", err)
    long5 = ref(model, "tf5", "long")[0]
    err = close(classify(model, LONG_PAIRS, 512), long5)
    record_parity("modernbert-theta", "tf5saved", f"long vs {v5}", err)
    tol = 1e-4 * max(1.0, float(np.abs(r5).max()))
    # transformers 4.48 ignores rope_parameters / layer_types: the case really moves the logits
    assert np.abs(np.array(r4) - np.array(r5)).max() > 20 * tol
    # each 5.x key matters on its own: without it mlxport falls back to the 4.x reading
    for drop in ("rope_parameters", "layer_types"):
        d = tmp_path / drop
        shutil.copytree(model, d)
        c = dict(cfg)
        del c[drop]
        (d / "config.json").write_text(json.dumps(c))
        assert np.abs(np.array(classify(d)) - np.array(r5)).max() > 20 * tol, drop
    # the MLX conversion keeps the 5.x keys and the bf16 dtype, and the same logits
    conv = tmp_path / "mlx"
    run_cli("convert", "--hf-path", str(model), "--mlx-path", str(conv))
    c = json.load(open(conv / "config.json"))
    assert c["rope_parameters"] == cfg["rope_parameters"] and c["layer_types"] == cfg["layer_types"]
    assert safetensors_dtypes(conv) == {"BF16"}  # the 5.x "dtype" is the conversion's default
    err = close(classify(conv), r5)
    record_parity("modernbert-theta", "mlx-bf16", f"short vs {v5}", err)


def test_modernbert_5x_linear_and_dynamic_rope(fx):
    """rope_type "linear" (inv_freq / factor) and "dynamic" (the default up to
    max_position_embeddings) per layer type, against transformers 5.x."""
    model = fx / "modernbert-scaled"
    cfg = json.load(open(model / "config.json"))
    assert cfg["rope_parameters"]["sliding_attention"]["rope_type"] == "linear"
    assert cfg["rope_parameters"]["full_attention"]["rope_type"] == "dynamic"
    for set_name, s in SETS.items():
        r5, v5 = ref(model, "tf5", set_name)
        err = close(classify(model, s["pairs"], s["max_length"]), r5)
        record_parity("modernbert-scaled", "tf5saved", f"{set_name} vs {v5}", err)
    # the linear factor matters: the same weights and thetas without it (modernbert-theta's config)
    # give other logits
    r_theta = np.array(ref(fx / "modernbert-theta", "tf5")[0])
    r5 = np.array(ref(model, "tf5")[0])
    assert np.abs(r_theta - r5).max() > 20e-4 * max(1.0, float(np.abs(r5).max()))


def write_cfg(src, dst, edit):
    shutil.copytree(src, dst)
    c = json.load(open(dst / "config.json"))
    edit(c)
    (dst / "config.json").write_text(json.dumps(c, indent=2))
    return dst


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_key_refused(fx, tmp_path, name):
    """A key mlxport does not understand stops the load, naming config.json and the key."""
    d = write_cfg(fx / name, tmp_path / name, lambda c: c.update(some_new_switch=True))
    p = classify(d, check=False)
    assert p.returncode == 3
    assert "config.json" in p.stderr and '"some_new_switch"' in p.stderr and "not understood" in p.stderr, p.stderr


@pytest.mark.parametrize("edit,needle", [
    (lambda c: c["rope_parameters"]["sliding_attention"].update(rope_type="yarn", factor=2.0), '"yarn"'),
    (lambda c: c["rope_parameters"]["full_attention"].update(rope_type="llama3", factor=2.0), '"llama3"'),
    (lambda c: c["rope_parameters"]["full_attention"].update(rope_type="linear"), '"factor"'),
    (lambda c: c["rope_parameters"]["full_attention"].update(factor=2.0), "factor"),
    (lambda c: c["rope_parameters"]["full_attention"].update(partial_rotary_factor=0.5), "partial_rotary_factor"),
    (lambda c: c.update(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), "rope_scaling"),
    (lambda c: c.update(layer_types=["full_attention", "chunked_attention", "full_attention"]), "layer_types[1]"),
    (lambda c: c.update(layer_types=["full_attention"]), "layer_types"),
    (lambda c: c.update(sliding_window=16), "sliding_window"),
    (lambda c: c.update(head_dim=8), "head_dim"),
    (lambda c: c.update(is_decoder=True), "is_decoder"),
    (lambda c: c.update(auto_map={"AutoModel": "modeling_x.XModel"}), "auto_map"),
    (lambda c: c.update(quantization_config={"quant_method": "bitsandbytes"}), "quantization_config"),
])
def test_modernbert_unsupported_values_refused(fx, tmp_path, edit, needle):
    d = write_cfg(fx / "modernbert-theta", tmp_path / "m", edit)
    p = classify(d, check=False)
    assert p.returncode == 3 and needle in p.stderr and "config.json" in p.stderr, p.stderr


def test_modernbert_sliding_window_alias(fx, tmp_path):
    """5.x's sliding_window (half of local_attention) alone sets the window like local_attention."""
    model = fx / "modernbert-theta"
    d = write_cfg(model, tmp_path / "sw", lambda c: (c.pop("local_attention"), c.update(sliding_window=4)))
    close(classify(d), ref(model, "tf5")[0])
