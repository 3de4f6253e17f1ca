"""Float parity of mlxport's BART runtime (src/model/bart.c) against transformers 4.46.3's
BartForSequenceClassification / BartModel: a random-weight fixture built from the real config of
bart-large-mnli (real vocabulary of 50265, 1024 positions, real id2label and BPE tokenizer),
shrunk to 2 encoder + 2 decoder layers of width 64 (encoder 4 heads / FFN 128, decoder 2 heads /
FFN 192), saved as safetensors and pytorch_model.bin; MLX float32 and q8 conversions by
`mlxport convert`; the eos-count rule of the head; param_count on the real full-size config.

The hidden states mlxport reports for BART (token embeddings, mean-pooled `embed`) are BartModel's
last_hidden_state: the decoder output."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED, SOURCE_DIR, require_shared, run_cli
from parity_util import close, mlx_dequantized_state_dict

NAME = "bart-cls"


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    require_shared()
    out = tmp_path_factory.mktemp("bart")
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out),
                    "--shared", SHARED, "--only", NAME], check=True, capture_output=True)
    return out




def classify(model, pairs, max_length=128, extra=()):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--max-length", str(max_length), *extra,
                input=lines)
    return [json.loads(l)["logits"] for l in p.stdout.splitlines()]


def hf_logits(folder, pairs, max_length=128):
    import torch
    import transformers
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.BartForSequenceClassification.from_pretrained(str(folder)).eval()
    enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=max_length,
              return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.numpy()


@pytest.mark.parametrize("kind", ["st", "bin"])
def test_logits(fx, kind):
    ref = json.load(open(fx / NAME / "reference.json"))
    model = fx / f"{NAME}-{kind}"
    for pairs, refl, ml in ((ref["pairs"], ref["logits"], 128), (ref["long_pairs"], ref["long_logits"], 512)):
        logits = classify(model, pairs, ml)
        err = close(logits, refl)
        print(f"{kind} max|d| logits (max_length {ml}): {err:.3g}")
        assert [int(np.argmax(l)) for l in logits] == [int(np.argmax(l)) for l in refl]
    cfg = json.load(open(model / "config.json"))
    assert len(ref["logits"][0]) == len(cfg["id2label"]) == 3


@pytest.mark.parametrize("kind", ["st", "bin"])
def test_hidden_states(fx, kind):
    """Token embeddings = BartModel.last_hidden_state (decoder output) of the real tokens."""
    ref = json.load(open(fx / NAME / "reference.json"))
    model = str(fx / f"{NAME}-{kind}")
    p = run_cli("embed", "--model", model, "--token-embeddings", "--max-length", "128",
                input="".join(t + "\n" for t in ref["texts"]))
    got = [json.loads(l)["token_embeddings"] for l in p.stdout.splitlines()]
    assert len(got) == len(ref["hidden"])
    err = max(close(o, r) for o, r in zip(got, ref["hidden"]))
    print(f"{kind} max|d| hidden: {err:.3g}")
    p = run_cli("embed", "--model", model, "--token-embeddings", "--max-length", "512", input=ref["long_text"] + "\n")
    o = json.loads(p.stdout)["token_embeddings"]
    assert len(o) == len(ref["long_hidden"]) == 512
    close(o, ref["long_hidden"])
    # embed: mean of the decoder states over the real tokens
    p = run_cli("embed", "--model", model, "--max-length", "128", input="".join(t + "\n" for t in ref["texts"]))
    close([json.loads(l)["embedding"] for l in p.stdout.splitlines()], ref["mean_pooled"])


def test_batch_and_threads(fx):
    """An input gives the same logits / states alone and inside a padded batch, with 1 or 2 threads."""
    ref = json.load(open(fx / NAME / "reference.json"))
    model = str(fx / f"{NAME}-st")
    batch = classify(model, ref["pairs"], extra=("--batch-size", "8"))
    texts = ref["texts"][:10]
    bh = [json.loads(l)["token_embeddings"] for l in run_cli(
        "embed", "--model", model, "--token-embeddings", "--batch-size", "10",
        input="".join(t + "\n" for t in texts)).stdout.splitlines()]
    for threads in ("1", "2"):
        for i in (0, 7):
            alone = classify(model, [ref["pairs"][i]], extra=("--threads", threads))[0]
            assert np.abs(np.array(alone) - np.array(batch[i])).max() <= 1e-6
            h = json.loads(run_cli("embed", "--model", model, "--token-embeddings", "--threads", threads,
                                   input=texts[i] + "\n").stdout)["token_embeddings"]
            assert np.abs(np.array(h) - np.array(bh[i])).max() <= 1e-6


@pytest.mark.parametrize("multi", [False, True])
def test_zero_shot_vs_pipeline(fx, multi):
    from transformers import pipeline
    ref = json.load(open(fx / NAME / "reference.json"))
    model = str(fx / f"{NAME}-st")
    labels = ["politics", "sports", "food and cooking"]
    texts = ref["texts"][:6]
    args = ["zero-shot", "--model", model, "--labels", ",".join(labels), "--json"] + (["--multi-label"] if multi else [])
    got = [json.loads(l) for l in run_cli(*args, input="".join(t + "\n" for t in texts)).stdout.splitlines()]
    clf = pipeline("zero-shot-classification", model=model, framework="pt")
    for t, g in zip(texts, got):
        r = clf(t, candidate_labels=labels, multi_label=multi)
        assert g["labels"][0] == r["labels"][0]
        mine = dict(zip(g["labels"], g["scores"]))
        for lab, s in zip(r["labels"], r["scores"]):
            assert abs(mine[lab] - s) <= 1e-4


def test_eos_count_rule(fx):
    """The head reads the decoder state at the LAST eos token; a batch whose rows hold different
    numbers of eos tokens is refused (transformers raises ValueError too); alone, such a row is
    classified like transformers does."""
    import torch
    import transformers
    ref = json.load(open(fx / NAME / "reference.json"))
    model = fx / f"{NAME}-st"
    odd = ["The cat sat on the mat. </s> It was warm.", "A cat was sitting."]
    pairs = [ref["pairs"][0], odd]
    tok = transformers.AutoTokenizer.from_pretrained(str(model))
    hf = transformers.BartForSequenceClassification.from_pretrained(str(model)).eval()
    enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="same number of <eos>"):
        with torch.no_grad():
            hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--batch-size", "2", input=lines, check=False)
    assert p.returncode == 3 and "different numbers of eos tokens" in p.stderr, p.stderr
    # alone: the last of its 4 eos tokens
    close(classify(model, [odd]), hf_logits(model, [odd]))


def test_variant_scale_embedding_relu(fx, tmp_path):
    """scale_embedding (sqrt(d_model)) and another activation_function, against transformers."""
    ref = json.load(open(fx / NAME / "reference.json"))
    d = tmp_path / "variant"
    shutil.copytree(fx / f"{NAME}-st", d)
    cfg = json.load(open(d / "config.json"))
    cfg["scale_embedding"] = True
    cfg["activation_function"] = "relu"
    (d / "config.json").write_text(json.dumps(cfg))
    pairs = ref["pairs"][:8]
    close(classify(d, pairs), hf_logits(d, pairs))
    with pytest.raises(AssertionError):  # the variant is really different from the base model
        close(classify(d, pairs), ref["logits"][:8], tol=1e-6)


def test_bare_model_and_tied_names(fx, tmp_path):
    """A BartModel folder (no "model." prefix, no head) and a checkpoint holding the token table
    under encoder.embed_tokens only (a tied name) load and match transformers."""
    import torch
    import transformers
    from safetensors.numpy import load_file, save_file
    ref = json.load(open(fx / NAME / "reference.json"))
    src = fx / f"{NAME}-st"
    full = transformers.BartForSequenceClassification.from_pretrained(str(src)).eval()
    bare = tmp_path / "bare"
    full.model.save_pretrained(str(bare))
    for fn in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        shutil.copy(src / fn, bare / fn)
    assert json.load(open(bare / "config.json"))["architectures"] == ["BartModel"]
    texts = ref["texts"][:5]
    p = run_cli("embed", "--model", str(bare), "--token-embeddings", input="".join(t + "\n" for t in texts))
    got = [json.loads(l)["token_embeddings"] for l in p.stdout.splitlines()]
    for o, r in zip(got, ref["hidden"][:5]):
        close(o, r)
    p = run_cli("classify", "--model", str(bare), input="x\n", check=False)
    assert p.returncode != 0 and "classification head" in p.stderr
    # tied name
    tied = tmp_path / "tied"
    shutil.copytree(src, tied)
    w = load_file(str(tied / "model.safetensors"))
    w["model.encoder.embed_tokens.weight"] = w.pop("model.shared.weight")
    save_file(w, str(tied / "model.safetensors"), metadata={"format": "pt"})
    close(classify(tied, ref["pairs"][:4]), ref["logits"][:4])
    with torch.no_grad():  # transformers reads the tied name the same way
        close(hf_logits(tied, ref["pairs"][:4]), ref["logits"][:4])


def test_errors(fx, tmp_path):
    from safetensors.numpy import load_file, save_file
    src = fx / f"{NAME}-st"
    bad = tmp_path / "missing"
    shutil.copytree(src, bad)
    w = load_file(str(bad / "model.safetensors"))
    del w["model.decoder.layers.1.encoder_attn.k_proj.weight"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "model.decoder.layers.1.encoder_attn.k_proj.weight" in p.stderr
    # no token table under any of its names
    w = load_file(str(src / "model.safetensors"))
    del w["model.shared.weight"]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "model.shared.weight" in p.stderr and "embed_tokens" in p.stderr
    # config sizes that do not match the weights
    shutil.copy(src / "model.safetensors", bad / "model.safetensors")
    cfg = json.load(open(src / "config.json"))
    cfg["decoder_ffn_dim"] = 100
    (bad / "config.json").write_text(json.dumps(cfg))
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "fc1.weight" in p.stderr
    cfg["decoder_ffn_dim"] = 192
    cfg["decoder_attention_heads"] = 3
    (bad / "config.json").write_text(json.dumps(cfg))
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and "decoder_attention_heads" in p.stderr


# ---- MLX conversion (mlxport convert): float and q8

def _torch_quantizable(hf_dir, group_size):
    """Weights mlx.nn.quantize would quantize in the same module tree: every Linear and Embedding
    whose input dimension is a multiple of the group size (tied tables under every name)."""
    import torch
    import transformers
    model = transformers.BartForSequenceClassification.from_pretrained(hf_dir)
    names = set()
    for n, mod in model.named_modules(remove_duplicate=False):
        if isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)) and mod.weight.shape[1] % group_size == 0:
            names.add(n + ".weight")
    return names


def _mlx_tree(hf_dir, names):
    """An MLX module tree with BART's Hugging Face parameter names (Linear, Embedding, LayerNorm
    leaves, built from transformers' modules), to load an MLX folder into with load_weights. The
    tied encoder/decoder embed_tokens are leaves only where the folder holds them (an MLX port
    would point them at model.shared)."""
    import mlx.nn as mnn
    import torch
    import transformers
    model = transformers.BartForSequenceClassification.from_pretrained(hf_dir)
    tree = {}
    for n, mod in model.named_modules(remove_duplicate=False):
        if isinstance(mod, torch.nn.Linear):
            leaf = mnn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
        elif isinstance(mod, torch.nn.Embedding):
            leaf = mnn.Embedding(mod.num_embeddings, mod.embedding_dim)
        elif isinstance(mod, torch.nn.LayerNorm):
            leaf = mnn.LayerNorm(mod.normalized_shape[0], eps=mod.eps)
        else:
            continue
        if n.endswith("embed_tokens") and n + ".weight" not in names:
            continue
        parts = n.split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = leaf

    def build(node):
        if isinstance(node, mnn.Module):
            return node
        if all(k.isdigit() for k in node):
            return [build(node[str(i)]) for i in range(len(node))]
        m = mnn.Module()
        for k, v in node.items():
            setattr(m, k, build(v))
        return m
    return build(tree)


def _dequantized_reference(folder, pairs, hf_dir):
    """transformers' forward on the weights of an MLX folder, dequantized by MLX itself."""
    import torch
    import transformers
    sd = mlx_dequantized_state_dict(folder)
    tcfg = transformers.AutoConfig.from_pretrained(hf_dir)
    model = transformers.BartForSequenceClassification(tcfg).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("embed_tokens" in k for k in missing), missing
    model.tie_weights()
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    with torch.no_grad():
        enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=128,
                  return_tensors="pt")
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.numpy()


@pytest.mark.parametrize("kind", ["st", "bin"])
@pytest.mark.parametrize("mode", ["float32", "q8"])
def test_mlx_conversion(fx, tmp_path, mode, kind):
    import mlx.core as mx
    ref = json.load(open(fx / NAME / "reference.json"))
    src = fx / f"{NAME}-{kind}"
    dst = tmp_path / f"{NAME}-{kind}-{mode}"
    args = ["convert", "--hf-path", str(src), "--mlx-path", str(dst), "--dtype", "float32"]
    if mode == "q8":
        args += ["-q", "--q-bits", "8", "--q-group-size", "64"]
    run_cli(*args)
    w = mx.load(str(dst / "model.safetensors"))
    pairs = ref["pairs"][:8]
    logits = np.array(classify(dst, pairs))
    if mode == "float32":
        assert not any(v.dtype == mx.uint32 for v in w.values())
        err = close(logits, np.array(ref["logits"][:8]))
    else:
        quantized = {k for k, v in w.items() if v.dtype == mx.uint32}
        assert quantized == _torch_quantizable(str(src), 64) & set(w), quantized
        assert "model.shared.weight" in quantized and "classification_head.out_proj.weight" in quantized
        # MLX itself: nn.quantize (default predicate: every Linear and Embedding) on the module tree,
        # then a strict load of the folder's tensors
        import mlx.nn as mnn
        tree = _mlx_tree(str(src), set(w))
        mnn.quantize(tree, group_size=64, bits=8)
        tree.load_weights(list(w.items()), strict=True)
        # our q8 path vs transformers on the same weights dequantized by MLX
        err = close(logits, _dequantized_reference(str(dst), pairs, str(src)))
        # and q8 stays close to the float model
        assert float(np.abs(logits - np.array(ref["logits"][:8])).max()) <= 0.05 * max(1.0, np.abs(logits).max())
    print(f"MLX {mode} ({kind}) max|d| logits: {err:.3g}")


# ---- parameter count from config.json alone (family op param_count)

def _param_count(folder):
    """mlxport inspect's count from config.json alone (the family's param_count op)."""
    r = json.loads(run_cli("inspect", str(folder), "--json").stdout)
    assert r["model_type"] == "bart"
    return r["config_parameters"]["count"] if r["config_parameters"] else None


@pytest.mark.parametrize("arch", ["BartForSequenceClassification", "BartModel", "minimal"])
def test_param_count_real_config(tmp_path, arch):
    """From config.json alone, equal to transformers' num_parameters() of the real config (and of
    a config that leaves every size to BartConfig's defaults)."""
    import transformers
    from transformers.modeling_utils import no_init_weights
    src = os.path.join(SHARED, "models", "bart-large-mnli")
    require_shared()
    cfg = json.load(open(os.path.join(src, "config.json")))
    if arch == "minimal":
        cfg = {"model_type": "bart", "architectures": ["BartForSequenceClassification"], "d_model": 256,
               "decoder_layers": 3}
    else:
        cfg["architectures"] = [arch]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    got = _param_count(tmp_path)
    tcfg = transformers.AutoConfig.from_pretrained(str(tmp_path))
    with no_init_weights():
        model = getattr(transformers, cfg["architectures"][0])(tcfg)
    assert got == model.num_parameters()


def test_param_count_absurd_config(tmp_path):
    """Sizes whose count overflows int64 give no count (no undefined arithmetic)."""
    cfg = {"model_type": "bart", "architectures": ["BartForSequenceClassification"], "d_model": 2 ** 40,
           "encoder_attention_heads": 1, "vocab_size": 2 ** 40}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert _param_count(tmp_path) is None


def test_verify_layers_covers_the_decoder(fx, tmp_path):
    """verify-layers walks encoder and decoder: a damaged decoder layer is found there."""
    from safetensors.numpy import load_file, save_file
    src = os.path.join(fx, "bart-cls-st")
    cfg = json.load(open(os.path.join(src, "config.json")))
    le, ld = cfg["encoder_layers"], cfg["decoder_layers"]
    bad = str(tmp_path / "bad")
    shutil.copytree(src, bad)
    w = load_file(os.path.join(src, "model.safetensors"))
    name = next(k for k in w if k.endswith("decoder.layers.1.fc2.weight"))
    w[name] = (w[name] + np.random.default_rng(0).normal(0, 0.5, w[name].shape)).astype(w[name].dtype)
    os.remove(os.path.join(bad, "model.safetensors"))
    save_file(w, os.path.join(bad, "model.safetensors"), metadata={"format": "pt"})
    texts = "".join(t + "\n" for t in ["A man is playing a guitar.", "hello world", "Three dogs run in a field."])
    p = run_cli("verify-layers", src, bad, "--dataset", "-", "--json", input=texts, check=False)
    assert p.returncode == 1, p.stderr
    r = json.loads(p.stdout)
    assert len(r["layers"]) == le + ld + 2
    # encoder (0..le), decoder embeddings (le+1) and decoder layer 0 (le+2) untouched; layer 1 damaged
    assert all(x["max_abs_diff"] == 0 for x in r["layers"][:le + 3])
    assert r["first_layer_below"] == le + 3
