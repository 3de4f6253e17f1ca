#!/usr/bin/env python3
"""Minimal MLX BERT-architecture encoders with Hugging Face parameter names: BERT (BertModel /
BertForSequenceClassification), RoBERTa and XLM-RoBERTa (the same layers, positions counted from
pad_token_id + 1, RobertaClassificationHead) and DistilBERT (DistilBertModel /
DistilBertForSequenceClassification), used to check that an `mlxport convert` output folder loads
in MLX as it is:

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


ROBERTA_TYPES = ("roberta", "xlm-roberta")


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c.get("type_vocab_size", 2), c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c.get("layer_norm_eps", 1e-12))
        # RoBERTa: position = pad + (number of non-pad tokens up to and including this one), pad
        # tokens themselves at pad (create_position_ids_from_input_ids)
        self._pad = c.get("pad_token_id", 1) if c.get("model_type") in ROBERTA_TYPES else None

    def __call__(self, ids, types):
        if self._pad is None:
            pos = mx.arange(ids.shape[1])[None]
        else:
            real = (ids != self._pad).astype(mx.int32)
            pos = mx.cumsum(real, axis=1) * real + self._pad
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


def attention(q, k, v, heads, mask):
    """softmax(q kᵀ / sqrt(d) + mask) v per head over [B, L, H] projections; [B, L, H] out"""
    B, L, H = q.shape
    d = H // heads

    def split(t):
        return t.reshape(B, L, heads, d).transpose(0, 2, 1, 3)

    s = (split(q) @ split(k).transpose(0, 1, 3, 2)) / math.sqrt(d) + mask
    return (mx.softmax(s, axis=-1) @ split(v)).transpose(0, 2, 1, 3).reshape(B, L, H)


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def __call__(self, x, mask):
        return attention(self.query(x), self.key(x), self.value(x), self.heads, mask)


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


def num_labels(c):
    return len(c.get("id2label", {0: 0, 1: 1}))


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = Bert(c)
        self.classifier = nn.Linear(c["hidden_size"], num_labels(c))

    def __call__(self, ids, types, attn):
        _, pooled = self.bert(ids, types, attn)
        return self.classifier(pooled)


class RobertaClassificationHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.out_proj = nn.Linear(c["hidden_size"], num_labels(c))

    def __call__(self, x):
        return self.out_proj(mx.tanh(self.dense(x[:, 0])))


class RobertaForSequenceClassification(nn.Module):
    """RobertaForSequenceClassification / XLMRobertaForSequenceClassification: no pooler, the head
    over the first token"""

    def __init__(self, c):
        super().__init__()
        self.roberta = Bert(c, pooler=False)
        self.classifier = RobertaClassificationHead(c)

    def __call__(self, ids, types, attn):
        h, _ = self.roberta(ids, types, attn)
        return self.classifier(h)


# ---------------------------------------------------------------- DistilBERT


class DistilEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["dim"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["dim"])
        self.LayerNorm = nn.LayerNorm(c["dim"], eps=1e-12)

    def __call__(self, ids):
        pos = mx.arange(ids.shape[1])[None]
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos))


class DistilAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["dim"]
        self.heads = c["n_heads"]
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(h, h) for _ in range(4))

    def __call__(self, x, mask):
        return self.out_lin(attention(self.q_lin(x), self.k_lin(x), self.v_lin(x), self.heads, mask))


class DistilFFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lin1 = nn.Linear(c["dim"], c["hidden_dim"])
        self.lin2 = nn.Linear(c["hidden_dim"], c["dim"])
        self.act = nn.relu if c.get("activation", "gelu") == "relu" else nn.gelu

    def __call__(self, x):
        return self.lin2(self.act(self.lin1(x)))


class DistilBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = DistilAttention(c)
        self.sa_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)
        self.ffn = DistilFFN(c)
        self.output_layer_norm = nn.LayerNorm(c["dim"], eps=1e-12)

    def __call__(self, x, mask):
        a = self.sa_layer_norm(self.attention(x, mask) + x)
        return self.output_layer_norm(self.ffn(a) + a)


class DistilTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = [DistilBlock(c) for _ in range(c["n_layers"])]


class DistilBert(nn.Module):
    """DistilBertModel: called as the BERT models are (types ignored); returns (hidden, None)"""

    def __init__(self, c):
        super().__init__()
        self.embeddings = DistilEmbeddings(c)
        self.transformer = DistilTransformer(c)

    def __call__(self, ids, types, attn):
        mask = (1.0 - attn[:, None, None, :].astype(mx.float32)) * -1e9
        x = self.embeddings(ids)
        for layer in self.transformer.layer:
            x = layer(x, mask)
        return x, None


class DistilBertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBert(c)
        self.pre_classifier = nn.Linear(c["dim"], c["dim"])
        self.classifier = nn.Linear(c["dim"], num_labels(c))

    def __call__(self, ids, types, attn):
        h, _ = self.distilbert(ids, types, attn)
        return self.classifier(nn.relu(self.pre_classifier(h[:, 0])))


CLASSIFIERS = (BertForSequenceClassification, RobertaForSequenceClassification, DistilBertForSequenceClassification)
MODEL_TYPES = ("bert",) + ROBERTA_TYPES + ("distilbert",)


def is_classifier(model):
    """whether model returns logits (else (hidden, pooled))"""
    return isinstance(model, CLASSIFIERS)


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
    mt = c.get("model_type", "bert")
    if mt not in MODEL_TYPES:
        raise ValueError(f"{d}: model_type {mt!r}: mlx_bert runs {', '.join(MODEL_TYPES)} only")
    arch = (c.get("architectures") or ["BertModel"])[0]
    if arch.endswith("ForSequenceClassification"):
        model = (DistilBertForSequenceClassification if mt == "distilbert" else
                 RobertaForSequenceClassification if mt in ROBERTA_TYPES else BertForSequenceClassification)(c)
    elif mt == "distilbert":
        model = DistilBert(c)
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
    if is_classifier(model):
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
        cls = AutoModelForSequenceClassification if is_classifier(model) else AutoModel
        ref_model = cls.from_pretrained(a.hf).eval()
        with torch.no_grad():
            t = {k: torch.tensor(np.array(v)) for k, v in (("input_ids", ids), ("token_type_ids", types),
                                                            ("attention_mask", attn))}
            if c.get("model_type") == "distilbert":  # DistilBERT has no token types
                del t["token_type_ids"]
            r = ref_model(**t)
            if is_classifier(model):
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
