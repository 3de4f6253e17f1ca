"""Float parity of mlxport's MobileBERT runtime (src/model/mobilebert.c) against transformers'
MobileBertForSequenceClassification: random-weight fixtures built from the real config of
mobilebert-uncased-mnli (real vocabulary, tokenizer and id2label), saved as safetensors and
pytorch_model.bin:
  mobilebert-cls       the real structure (trigram input, embedding 128, hidden 512, shared
                       key/query bottleneck of 128, 4 FFNs, NoNorm, relu, no pooler) in 2 layers;
  mobilebert-var-cls   LayerNorm, use_bottleneck_attention, no trigram input, 2 FFNs, tanh pooler;
  mobilebert-nobn-cls  no bottlenecks, 1 FFN, gelu, and a non-zero [PAD] embedding (with trigram
                       input the last real token of a padded row sees it, as in transformers).
Also: MLX conversions (float32, q8) load in mlxport and in MLX itself (nn.quantize +
load_weights with the Hugging Face names), and param_count against transformers' num_parameters()."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import BIN, SHARED, SOURCE_DIR, require_shared, run_cli
from parity_util import close, mlx_dequantized_state_dict

NAMES = ["mobilebert-cls", "mobilebert-var-cls", "mobilebert-nobn-cls"]
REAL = os.path.join(SHARED, "models", "mobilebert-uncased-mnli")


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    require_shared()
    out = tmp_path_factory.mktemp("mobilebert")
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(out),
                    "--shared", SHARED, "--only", ",".join(NAMES)], check=True, capture_output=True)
    return out




def classify(model, pairs, max_length=128, extra=()):
    lines = "".join(f"{p}\t{h}\n" for p, h in pairs)
    p = run_cli("classify", "--model", str(model), "--pair", "--json", "--max-length", str(max_length), *extra,
                input=lines)
    return [json.loads(l)["logits"] for l in p.stdout.splitlines()]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["st", "bin"])
def test_logits(fx, name, kind):
    ref = json.load(open(fx / name / "reference.json"))
    model = fx / f"{name}-{kind}"
    logits = classify(model, ref["pairs"])  # one batch padded like transformers' reference
    close(logits, ref["logits"])
    assert [int(np.argmax(l)) for l in logits] == [int(np.argmax(l)) for l in ref["logits"]]
    cfg = json.load(open(model / "config.json"))
    real = json.load(open(os.path.join(REAL, "config.json")))
    assert cfg["id2label"] == real["id2label"] and len(ref["logits"][0]) == 3


@pytest.mark.parametrize("name", NAMES)
def test_hidden_states(fx, name):
    ref = json.load(open(fx / name / "reference.json"))
    model = str(fx / f"{name}-st")
    p = run_cli("embed", "--model", model, "--token-embeddings", "--max-length", "128",
                input="".join(t + "\n" for t in ref["texts"]))
    got = [json.loads(l)["token_embeddings"] for l in p.stdout.splitlines()]
    assert len(got) == len(ref["hidden"])
    for o, r in zip(got, ref["hidden"]):
        close(o, r)
    if name == "mobilebert-cls":  # 512 tokens: the whole position table
        import torch
        import transformers
        text = " ".join(p + " " + h for p, h in ref["pairs"]) * 4
        tok = transformers.AutoTokenizer.from_pretrained(model)
        enc = tok([text], truncation=True, max_length=512, return_tensors="pt")
        with torch.no_grad():
            hs = transformers.MobileBertModel.from_pretrained(model).eval()(**enc).last_hidden_state[0].numpy()
        p = run_cli("embed", "--model", model, "--token-embeddings", "--max-length", "512", input=text + "\n")
        o = json.loads(p.stdout)["token_embeddings"]
        assert len(o) == 512
        close(o, hs)


def test_batch_and_threads(fx):
    """With a zero [PAD] row (transformers' init), a pair gives the same logits alone and inside a
    padded batch, with 1 or 2 threads."""
    ref = json.load(open(fx / "mobilebert-cls" / "reference.json"))
    model = str(fx / "mobilebert-cls-st")
    batch = classify(model, ref["pairs"], extra=("--batch-size", "8"))
    for threads in ("1", "2"):
        for i in (0, 7):
            alone = classify(model, [ref["pairs"][i]], extra=("--threads", threads))[0]
            assert np.abs(np.array(alone) - np.array(batch[i])).max() <= 1e-5


@pytest.mark.parametrize("multi", [False, True])
def test_zero_shot_vs_pipeline(fx, multi):
    from transformers import pipeline
    ref = json.load(open(fx / "mobilebert-cls" / "reference.json"))
    model = str(fx / "mobilebert-cls-st")
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


def test_real_tokenizer(fx):
    """The shared tokenizer of mobilebert-uncased-mnli through mlxport tokenize vs HF tokenizers."""
    from tokenizers import Tokenizer
    ref = json.load(open(fx / "mobilebert-cls" / "reference.json"))
    tok = Tokenizer.from_file(os.path.join(REAL, "tokenizer.json"))
    lines = [f"{p}\t{h}" for p, h in ref["pairs"][:8]]
    p = run_cli("tokenize", "--model", REAL, "--pair", input="".join(l + "\n" for l in lines))
    for l, o in zip(lines, p.stdout.splitlines()):
        a, b = l.split("\t", 1)
        assert [int(x) for x in o.split()] == tok.encode(a, b).ids


def test_errors(fx, tmp_path):
    import shutil
    from safetensors.numpy import load_file, save_file
    src = fx / "mobilebert-cls-st"
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    w = load_file(str(bad / "model.safetensors"))
    gone = "mobilebert.encoder.layer.1.ffn.2.output.LayerNorm.bias"
    del w[gone]
    save_file(w, str(bad / "model.safetensors"), metadata={"format": "pt"})
    p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
    assert p.returncode == 3 and gone in p.stderr
    shutil.copy(src / "model.safetensors", bad / "model.safetensors")
    cfg = json.load(open(src / "config.json"))
    for key, val, needle in (("normalization_type", "batch_norm", "normalization_type"),
                             ("num_attention_heads", 3, "divisible"),
                             ("num_feedforward_networks", 5, "ffn.3.intermediate.dense.weight"),
                             ("intra_bottleneck_size", 64, "bottleneck.input.dense.weight")):
        (bad / "config.json").write_text(json.dumps(dict(cfg, **{key: val})))
        p = run_cli("classify", "--model", str(bad), input="x\n", check=False)
        assert p.returncode == 3 and needle in p.stderr, (key, p.stderr)


# ---- parameter count from config.json alone

def test_param_count(tmp_path):
    require_shared()
    import transformers
    from transformers.modeling_utils import no_init_weights
    base = json.load(open(os.path.join(REAL, "config.json")))
    variants = {
        "real": {},
        "bare": {"architectures": ["MobileBertModel"]},
        "pooler-layernorm": {"classifier_activation": True, "normalization_type": "layer_norm"},
        "no-bottleneck": {"use_bottleneck": False, "trigram_input": False, "embedding_size": 512,
                          "num_feedforward_networks": 1, "key_query_shared_bottleneck": False},
        "bottleneck-attention": {"use_bottleneck_attention": True, "key_query_shared_bottleneck": False},
        "2-labels": {"id2label": {"0": "entailment", "1": "not_entailment"},
                     "label2id": {"entailment": 0, "not_entailment": 1}},
    }
    for name, over in variants.items():
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps(dict(base, **over)))
        got = json.loads(subprocess.run([BIN, "inspect", str(d), "--json"], capture_output=True, text=True,
                                        check=True).stdout)["config_parameters"]
        cfg = transformers.AutoConfig.from_pretrained(str(d))
        with no_init_weights():
            model = getattr(transformers, cfg.architectures[0])(cfg)
        assert got["count"] == model.num_parameters(), name


# ---- MLX conversion (mlxport convert): float and q8

def _mlx_weights(folder):
    import glob
    import mlx.core as mx
    w = {}
    for f in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        w.update(mx.load(f))
    return w


def _dequantized_reference(folder, pairs, hf_dir):
    """transformers' forward on the weights of an MLX folder, dequantized by MLX itself."""
    import torch
    import transformers
    sd = mlx_dequantized_state_dict(folder)
    tcfg = transformers.AutoConfig.from_pretrained(hf_dir)
    model = transformers.MobileBertForSequenceClassification(tcfg).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("position_ids" in k for k in missing), missing
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    with torch.no_grad():
        enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=128,
                  return_tensors="pt")
        return model(**enc).logits.numpy()


def _mlx_load_check(float_dir, q_dir):
    """The q8 folder loads in MLX: a module tree with the Hugging Face names (nn.Embedding for
    *_embeddings, nn.Linear for other matrices, plain arrays for the norms) built from the float
    folder, quantized with nn.quantize as the folder's README says, then load_weights(strict)."""
    import mlx.core as mx
    import mlx.nn as nn
    fw, qw = _mlx_weights(float_dir), _mlx_weights(q_dir)
    tree = {}
    for name, v in fw.items():
        *path, leaf = name.split(".")
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
        mod = ".".join(path)
        if leaf == "weight" and v.ndim == 2:
            node[path[-1]] = (nn.Embedding(v.shape[0], v.shape[1]) if path[-1].endswith("_embeddings")
                              else nn.Linear(v.shape[1], v.shape[0], bias=mod + ".bias" in fw))
        elif not isinstance(node.get(path[-1]), nn.Module):
            node.setdefault(path[-1], {})[leaf] = v

    def build(t):
        if isinstance(t, nn.Module) or isinstance(t, mx.array):
            return t
        if all(k.isdigit() for k in t):
            return [build(t[str(i)]) for i in range(len(t))]
        m = nn.Module()
        for k, v in t.items():
            setattr(m, k, build(v))
        return m

    model = build(tree)
    q = json.load(open(os.path.join(q_dir, "config.json")))["quantization"]
    nn.quantize(model, group_size=q["group_size"], bits=q["bits"],
                class_predicate=lambda p, m: q[p] if p in q else hasattr(m, "to_quantized") and f"{p}.scales" in qw)
    model.load_weights(list(qw.items()), strict=True)
    # every Linear/Embedding of MobileBERT is quantized (their input widths 128, 384, 512 divide 64)
    n_q = sum(1 for k, v in qw.items() if v.dtype == mx.uint32)
    n_mat = sum(1 for k, v in fw.items() if v.ndim == 2)
    assert n_q == n_mat
    return model


def _mlx_forward(model, cfg, enc):
    """MobileBERT (trigram input, shared key/query bottleneck, NoNorm, no pooler: the structure of
    mobilebert-cls) written with MLX on the quantized module tree: MLX's own quantized matmuls."""
    import mlx.core as mx
    assert cfg["trigram_input"] and cfg["normalization_type"] == "no_norm" and cfg["key_query_shared_bottleneck"]
    assert not cfg["use_bottleneck_attention"] and not cfg["classifier_activation"]
    ids, types = mx.array(enc["input_ids"].numpy()), mx.array(enc["token_type_ids"].numpy())
    mask = mx.array(enc["attention_mask"].numpy()).astype(mx.float32)
    nonorm = lambda n, x: x * n.weight + n.bias
    mb = model.mobilebert
    e = mb.embeddings
    w = e.word_embeddings(ids)
    z = mx.zeros_like(w[:, :1])
    w = mx.concatenate([mx.concatenate([w[:, 1:], z], 1), w, mx.concatenate([z, w[:, :-1]], 1)], axis=-1)
    B, T = ids.shape
    x = e.embedding_transformation(w) + e.position_embeddings(mx.arange(T)) + e.token_type_embeddings(types)
    x = nonorm(e.LayerNorm, x)
    nh = cfg["num_attention_heads"]
    bias = ((1.0 - mask) * -1e30)[:, None, None, :]
    for L in mb.encoder.layer:
        li = nonorm(L.bottleneck.input.LayerNorm, L.bottleneck.input.dense(x))
        qk = nonorm(L.bottleneck.attention.LayerNorm, L.bottleneck.attention.dense(x))
        sa = L.attention.self
        q, k, v = sa.query(qk), sa.key(qk), sa.value(x)
        d = q.shape[-1] // nh
        sp = lambda t: t.reshape(B, T, nh, d).transpose(0, 2, 1, 3)
        s = (sp(q) @ sp(k).transpose(0, 1, 3, 2)) / (d ** 0.5) + bias
        ctx = (mx.softmax(s, axis=-1) @ sp(v)).transpose(0, 2, 1, 3).reshape(B, T, nh * d)
        a = nonorm(L.attention.output.LayerNorm, L.attention.output.dense(ctx) + li)
        for f in L.ffn:
            a = nonorm(f.output.LayerNorm, f.output.dense(mx.maximum(f.intermediate.dense(a), 0)) + a)
        o = nonorm(L.output.LayerNorm, L.output.dense(mx.maximum(L.intermediate.dense(a), 0)) + a)
        x = nonorm(L.output.bottleneck.LayerNorm, L.output.bottleneck.dense(o) + x)
    return np.array(model.classifier(x[:, 0]))


@pytest.mark.parametrize("mode", ["float32", "q8"])
def test_mlx_conversion(fx, tmp_path, mode):
    name = "mobilebert-cls"
    ref = json.load(open(fx / name / "reference.json"))
    src = fx / f"{name}-st"
    dst = tmp_path / f"{name}-{mode}"
    args = ["convert", "--hf-path", str(src), "--mlx-path", str(dst), "--dtype", "float32"]
    if mode == "q8":
        args += ["-q", "--q-bits", "8", "--q-group-size", "64"]
    run_cli(*args)
    pairs = ref["pairs"][:8]
    logits = np.array(classify(dst, pairs))
    if mode == "float32":
        close(logits, np.array(ref["logits"][:8]))
    else:
        # our q8 path vs transformers on the same weights dequantized by MLX
        close(logits, _dequantized_reference(str(dst), pairs, str(src)))
        # and q8 stays close to the float model
        assert float(np.abs(logits - np.array(ref["logits"][:8])).max()) <= 0.05 * max(1.0, np.abs(logits).max())
        fdst = tmp_path / f"{name}-float32"
        run_cli("convert", "--hf-path", str(src), "--mlx-path", str(fdst), "--dtype", "float32")
        model = _mlx_load_check(str(fdst), str(dst))
        # and vs MLX itself running the q8 folder (quantized matmuls / embeddings)
        import transformers
        tok = transformers.AutoTokenizer.from_pretrained(str(src))
        enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True, max_length=128,
                  return_tensors="pt")
        close(logits, _mlx_forward(model, json.load(open(dst / "config.json")), enc))
