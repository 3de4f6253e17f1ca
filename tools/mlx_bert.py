#!/usr/bin/env python3
"""Minimal MLX BERT (BertModel / BertForSequenceClassification) with Hugging Face parameter
names, used to check that an `mlxport convert` output folder loads in MLX as it is:

    python tools/mlx_bert.py OUT_DIR [--hf SOURCE_DIR] [--text "..."]

It rebuilds the module tree from OUT_DIR/config.json, applies nn.quantize with the
class_predicate mlx-lm's loader uses (per-layer entries of config["quantization"] first, then
"has to_quantized() and <path>.scales is in the weights"), loads model.safetensors (or its
shards) with strict=True and runs a forward pass. With --hf it also runs the original checkpoint
through transformers and prints the cosine similarity of the pooled outputs (mean pooling, or
the logits for a classifier). Test/dev tool only: mlxport never runs Python.
"""
import argparse
import glob
import json
import math
import os
import sys

import mlx.core as mx
import mlx.nn as nn


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c.get("type_vocab_size", 2), c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c.get("layer_norm_eps", 1e-12))

    def __call__(self, ids, types):
        pos = mx.arange(ids.shape[1])[None]
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def __call__(self, x, mask):
        B, L, H = x.shape
        d = H // self.heads

        def split(t):
            return t.reshape(B, L, self.heads, d).transpose(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        s = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(d) + mask
        return (mx.softmax(s, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(B, L, H)


class DenseNorm(nn.Module):
    def __init__(self, c, n_in):
        super().__init__()
        self.dense = nn.Linear(n_in, c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c.get("layer_norm_eps", 1e-12))

    def __call__(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "self", SelfAttention(c))  # the HF path is attention.self.query
        self.output = DenseNorm(c, c["hidden_size"])

    def __call__(self, x, mask):
        return self.output(self["self"](x, mask), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def __call__(self, x):
        return nn.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseNorm(c, c["intermediate_size"])

    def __call__(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = [Layer(c) for _ in range(c["num_hidden_layers"])]


class Pooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])


class Bert(nn.Module):
    def __init__(self, c, pooler=True):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        if pooler:
            self.pooler = Pooler(c)

    def __call__(self, ids, types, attn):
        mask = (1.0 - attn[:, None, None, :].astype(mx.float32)) * -1e9
        x = self.embeddings(ids, types)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        pooled = mx.tanh(self.pooler.dense(x[:, 0])) if "pooler" in self else None
        return x, pooled


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = Bert(c)
        self.classifier = nn.Linear(c["hidden_size"], len(c.get("id2label", {0: 0, 1: 1})))

    def __call__(self, ids, types, attn):
        _, pooled = self.bert(ids, types, attn)
        return self.classifier(pooled)


def weight_files(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            return sorted({os.path.join(d, v) for v in json.load(f)["weight_map"].values()})
    return [os.path.join(d, "model.safetensors")]


def load(d):
    """Builds the model from d/config.json, quantizes like mlx-lm's loader, loads strictly."""
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    weights = {}
    for p in weight_files(d):
        weights.update(mx.load(p))
    arch = (c.get("architectures") or ["BertModel"])[0]
    if arch.endswith("ForSequenceClassification"):
        model = BertForSequenceClassification(c)
    else:
        model = Bert(c, pooler=any(k.startswith("pooler.") for k in weights))
    q = c.get("quantization")
    if q is not None:
        def class_predicate(p, m):  # mlx_lm.utils.load_model
            if p in q:
                return q[p]
            if not hasattr(m, "to_quantized"):
                return False
            return f"{p}.scales" in weights

        nn.quantize(model, group_size=q["group_size"], bits=q["bits"], mode=q.get("mode", "affine"),
                    class_predicate=class_predicate)
    model.load_weights(list(weights.items()), strict=True)
    return model, c, weights


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--hf", help="original checkpoint folder, to compare outputs with transformers")
    ap.add_argument("--text", action="append", default=None)
    a = ap.parse_args()
    model, c, weights = load(a.out_dir)
    n_q = sum(1 for k in weights if k.endswith(".scales"))
    print(f"loaded {a.out_dir} strictly: {len(weights)} tensors, {n_q} quantized layers")
    texts = a.text or ["A man is playing a guitar.", "The weather is lovely today in Paris."]
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.out_dir, "tokenizer.json"))
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    ids = mx.array([e.ids for e in enc])
    types = mx.array([e.type_ids for e in enc])
    attn = mx.array([e.attention_mask for e in enc])
    if isinstance(model, BertForSequenceClassification):
        out = model(ids, types, attn)
    else:
        h, _ = model(ids, types, attn)
        m = attn[..., None].astype(h.dtype)
        out = (h * m).sum(axis=1) / m.sum(axis=1)
    out = out.astype(mx.float32)
    if a.hf:
        import numpy as np
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification
        cls = AutoModelForSequenceClassification if isinstance(model, BertForSequenceClassification) else AutoModel
        ref_model = cls.from_pretrained(a.hf).eval()
        with torch.no_grad():
            t = {k: torch.tensor(np.array(v)) for k, v in (("input_ids", ids), ("token_type_ids", types),
                                                            ("attention_mask", attn))}
            r = ref_model(**t)
            if isinstance(model, BertForSequenceClassification):
                ref = r.logits.numpy()
            else:
                m = t["attention_mask"][..., None].float()
                ref = ((r.last_hidden_state * m).sum(1) / m.sum(1)).numpy()
        o = np.array(out)
        cos = (o * ref).sum(-1) / np.linalg.norm(o, axis=-1) / np.linalg.norm(ref, axis=-1)
        print("cosine vs transformers:", " ".join(f"{x:.5f}" for x in cos))
        print(json.dumps({"cosine": [float(x) for x in cos]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
