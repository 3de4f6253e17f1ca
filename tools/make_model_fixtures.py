#!/usr/bin/env python3
"""Builds random-weight checkpoints of the BERT-family models from the real configs and
tokenizers in ../shared/models (shrunk in layers and width, real vocabulary), with their
classification heads and id2label, saved both as safetensors and as pytorch_model.bin, and
records transformers' outputs on real dataset inputs as the reference for mlxport.

    python tools/make_model_fixtures.py OUT_DIR [--shared ../shared]

Writes OUT_DIR/<fixture>-{st,bin}/ model folders and OUT_DIR/<fixture>/reference.json with
{"pairs": [[premise, hypothesis], ...], "logits": [...], "texts": [...],
 "hidden": [[...]] (last hidden state of real tokens per text), "embeddings": [...]}.
Deterministic: fixed seeds; run inside the tests (nothing binary is committed).
"""
import argparse
import json
import os
import shutil

import torch

FIXTURES = {
    # name: (shared model folder, transformers class, id2label)
    "bert-cls": ("all-MiniLM-L6-v2", "BertForSequenceClassification",
                 {0: "entailment", 1: "neutral", 2: "contradiction"}),
    "bert-embed": ("all-MiniLM-L12-v2", "BertModel", None),
    "roberta-cls": ("roberta-large-mnli", "RobertaForSequenceClassification", None),
    "distilbert-cls": ("distilbert-base-uncased-mnli", "DistilBertForSequenceClassification", None),
    "deberta-cls": ("deberta-v3-base-mnli-fever-anli", "DebertaV2ForSequenceClassification", None),
    "deberta-bin-cls": ("deberta-v3-xsmall-mnli-binary", "DebertaV2ForSequenceClassification", None),
    "deberta-wp-cls": ("deberta-v3-base-mnli-fever-anli", "DebertaV2ForSequenceClassification", None),
    "deberta-bin-wp-cls": ("deberta-v3-xsmall-mnli-binary", "DebertaV2ForSequenceClassification", None),
    "bart-cls": ("bart-large-mnli", "BartForSequenceClassification", None),
    "mobilebert-cls": ("mobilebert-uncased-mnli", "MobileBertForSequenceClassification", None),
    "mobilebert-var-cls": ("mobilebert-uncased-mnli", "MobileBertForSequenceClassification", None),
    "mobilebert-nobn-cls": ("mobilebert-uncased-mnli", "MobileBertForSequenceClassification", None),
    "mpnet-cls": ("all-mpnet-base-v2", "MPNetForSequenceClassification",
                  {0: "entailment", 1: "neutral", 2: "contradiction"}),
    "mpnet-embed": ("all-mpnet-base-v2", "MPNetModel", None),
    "modernbert-cls": ("modernbert-large-zeroshot-v2", "ModernBertForSequenceClassification", None),
    "modernbert-bias-cls": ("modernbert-large-zeroshot-v2", "ModernBertForSequenceClassification",
                            {0: "entailment", 1: "neutral", 2: "contradiction"}),
}
# Built only when named in --only (tests/py/test_model_parity_deberta.py).
OPT_IN = {"deberta-cls", "deberta-bin-cls", "deberta-wp-cls", "deberta-bin-wp-cls",
          "bart-cls"}  # tests/py/test_model_parity_bart.py
# Built only when named in --only (tests/py/test_model_parity_mobilebert.py).
OPT_IN |= {"mobilebert-cls", "mobilebert-var-cls", "mobilebert-nobn-cls"}
# Built only when named in --only (tests/py/test_model_parity_mpnet.py).
OPT_IN |= {"mpnet-cls", "mpnet-embed"}
# ModernBERT needs transformers >= 4.48 (tests/py/test_model_parity_modernbert.py runs this script
# with $MP_CACHE/venv-modernbert; see tools/modernbert_ref.py).
OPT_IN |= {"modernbert-cls", "modernbert-bias-cls"}
# Fixtures whose tokenizer files come from another shared model (the model math is checked with a
# tokenizer mlxport already has; the real SentencePiece files are in the other fixtures).
TOKENIZER_FROM = {"deberta-wp-cls": "all-MiniLM-L6-v2", "deberta-bin-wp-cls": "all-MiniLM-L6-v2"}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "vocab.json", "merges.txt", "modules.json", "sentence_bert_config.json",
                   "spm.model", "added_tokens.json"]


def shrink_mobilebert(cfg, name):
    """MobileBERT keeps its real widths (embedding 128, trigram input, hidden 512, bottlenecks of 128,
    4 FFNs, NoNorm) with 2 layers; the variants take the other branches of transformers' code:
    "var": LayerNorm, use_bottleneck_attention, no trigram input, 2 FFNs, the tanh pooler;
    "nobn": no bottlenecks (true hidden size = hidden size), separate key/query, 1 FFN, gelu,
    a non-zero [PAD] embedding."""
    cfg.num_hidden_layers = 2
    cfg.initializer_range = 0.05  # wider weights than the 0.02 default: NoNorm does not rescale, logits stay O(1)
    if name == "mobilebert-var-cls":
        cfg.normalization_type, cfg.use_bottleneck_attention, cfg.trigram_input = "layer_norm", True, False
        cfg.num_feedforward_networks, cfg.classifier_activation, cfg.hidden_size = 2, True, 256
    elif name == "mobilebert-nobn-cls":
        cfg.use_bottleneck, cfg.key_query_shared_bottleneck, cfg.true_hidden_size = False, False, 128
        cfg.hidden_size, cfg.intermediate_size, cfg.num_feedforward_networks, cfg.hidden_act = 128, 256, 1, "gelu"


def shrink(cfg, name=""):
    d = cfg.to_dict()
    if cfg.model_type == "mobilebert":
        shrink_mobilebert(cfg, name)
        return d
    if cfg.model_type == "distilbert":
        cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads = 128, 256, 2, 4
    elif cfg.model_type == "bart":
        bart_shrink(cfg)
    else:
        cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.num_attention_heads = 128, 256, 2, 4
    if cfg.model_type == "deberta-v2":
        cfg.pooler_hidden_size = cfg.hidden_size
    return d


def bart_shrink(cfg):
    """BART: 2 encoder + 2 decoder layers, d_model 64 (4 heads of 16), different FFN widths so
    encoder/decoder sizes cannot be swapped unnoticed; real vocabulary, positions, id2label."""
    cfg.d_model = 64
    cfg.encoder_layers, cfg.decoder_layers = 2, 2
    cfg.encoder_attention_heads, cfg.decoder_attention_heads = 4, 2
    cfg.encoder_ffn_dim, cfg.decoder_ffn_dim = 128, 192
    cfg.num_hidden_layers = cfg.encoder_layers


def bart_long(model, tok, pairs, ref):
    """BART: one long text (512 tokens) and long pairs, as for DeBERTa."""
    text = " ".join(p + " " + h for p, h in pairs) * 4
    enc = tok([text], truncation=True, max_length=512, return_tensors="pt")
    hs = model.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    ref["long_text"] = text
    ref["long_hidden"] = hs[0].tolist()
    prem = " ".join(p for p, _ in pairs) * 3
    long_pairs = [[prem, h] for _, h in pairs[:3]] + [pairs[0]]
    enc = tok([p for p, _ in long_pairs], [h for _, h in long_pairs], padding=True, truncation=True,
              max_length=512, return_tensors="pt")
    ref["long_pairs"] = long_pairs
    ref["long_logits"] = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.tolist()


def modernbert_shrink(cfg, name):
    """3 layers (global, local, local with global_attn_every_n_layers 3) and an 8-token local
    window so windows matter at fixture lengths. The -bias variant turns every bias flag on,
    pools the CLS token, alternates global/local layers and uses other thetas."""
    cfg.num_hidden_layers = 3
    cfg.local_attention = 8
    cfg.reference_compile = False
    if name == "modernbert-bias-cls":
        cfg.norm_bias = cfg.attention_bias = cfg.mlp_bias = cfg.classifier_bias = True
        cfg.classifier_pooling = "cls"
        cfg.global_attn_every_n_layers = 2
        cfg.local_attention = 6
        cfg.global_rope_theta, cfg.local_rope_theta = 50000.0, 1000.0
        cfg.hidden_activation = "gelu_pytorch_tanh"
    if getattr(cfg, "layer_types", None) is not None:  # transformers 5.x: one entry per layer
        every = getattr(cfg, "global_attn_every_n_layers", 3) or 3
        cfg.__dict__["layer_types"] = ["full_attention" if i % every == 0 else "sliding_attention"
                                       for i in range(cfg.num_hidden_layers)]


def modernbert_perturb(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)


def modernbert_long(model, tok, pairs, ref):
    """Inputs of 1024 tokens (many local windows, rotary positions far from 0)."""
    text = " ".join(p + " " + h for p, h in pairs) * 4
    enc = tok([text], truncation=True, max_length=1024, return_tensors="pt")
    ref["long_text"] = text
    ref["long_hidden"] = model.model(**enc).last_hidden_state[0].tolist()
    prem = " ".join(p for p, _ in pairs) * 3
    long_pairs = [[prem, h] for _, h in pairs[:3]] + [pairs[0]]
    enc = tok([p for p, _ in long_pairs], [h for _, h in long_pairs], padding=True, truncation=True,
              max_length=512, return_tensors="pt")
    ref["long_pairs"] = long_pairs
    ref["long_logits"] = model(**enc).logits.tolist()


def load_inputs(shared, n_pairs=24, n_texts=24):
    pairs = []
    with open(os.path.join(shared, "datasets", "mnli", "validation_matched", "dev.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            pairs.append([r["premise"], r["hypothesis"]])
            if len(pairs) == n_pairs:
                break
    texts = []
    with open(os.path.join(shared, "datasets", "sst2", "dev.tsv")) as f:
        next(f)
        for line in f:
            texts.append(line.rstrip("\n").split("\t")[0])
            if len(texts) == n_texts:
                break
    # a long input (truncated at 128 tokens by both sides) and a one-word input
    texts.append(" ".join(t for t, _ in pairs))
    texts.append("hello")
    return pairs, texts


def deberta_long(model, tok, pairs, ref):
    """Long inputs (up to 512 tokens) reach DeBERTa's log-bucketed relative positions (beyond
    position_buckets / 2): hidden states of one long text and logits of long pairs."""
    text = " ".join(p + " " + h for p, h in pairs) * 4
    enc = tok([text], truncation=True, max_length=512, return_tensors="pt")
    hs = model.deberta(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    ref["long_text"] = text
    ref["long_hidden"] = hs[0].tolist()
    prem = " ".join(p for p, _ in pairs) * 3
    long_pairs = [[prem, h] for _, h in pairs[:3]] + [pairs[0]]
    enc = tok([p for p, _ in long_pairs], [h for _, h in long_pairs], padding=True, truncation=True,
              max_length=512, return_tensors="pt")
    ref["long_pairs"] = long_pairs
    ref["long_logits"] = model(**enc).logits.tolist()


def mpnet_perturb(model):
    """MPNet: a relative_attention_bias large enough that a wrong bucket shows in the outputs, and a
    classification head whose logits are O(1) (a missing tanh or a wrong token shows)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("relative_attention_bias.weight"):
                p.copy_(torch.randn_like(p))
            elif n.startswith("classifier.") and n.endswith("weight"):
                p.copy_(torch.randn_like(p) * 0.1)


def mpnet_long(model, tok, pairs, texts, ref):
    """MPNet: inputs up to 512 tokens reach the log-spaced relative buckets and their cap at
    distance >= 128 (bucket 15 / 31), and position ids up to 513."""
    base = model.mpnet if hasattr(model, "mpnet") else model
    text = " ".join(p + " " + h for p, h in pairs) * 4
    enc = tok([text, texts[0]], padding=True, truncation=True, max_length=512, return_tensors="pt")
    hs = base(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    ref["long_text"] = text
    ref["long_hidden"] = hs[0].tolist()
    if hasattr(model, "classifier"):
        prem = " ".join(p for p, _ in pairs) * 3
        long_pairs = [[prem, h] for _, h in pairs[:3]] + [pairs[0]]
        enc = tok([p for p, _ in long_pairs], [h for _, h in long_pairs], padding=True, truncation=True,
                  max_length=512, return_tensors="pt")
        ref["long_pairs"] = long_pairs
        ref["long_logits"] = model(**enc).logits.tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    if a.only and any(n.startswith("modernbert") for n in a.only.split(",")):
        from modernbert_ref import compat
        compat()
    import transformers
    from transformers import AutoConfig, AutoTokenizer
    torch.manual_seed(0)
    pairs, texts = load_inputs(a.shared)
    for name, (src, cls_name, id2label) in FIXTURES.items():
        if a.only and name not in a.only.split(","):
            continue
        if not a.only and name in OPT_IN:
            continue
        src_dir = os.path.join(a.shared, "models", src)
        tok_dir = os.path.join(a.shared, "models", TOKENIZER_FROM.get(name, src))
        cfg = AutoConfig.from_pretrained(src_dir)
        shrink(cfg, name)
        if cfg.model_type == "modernbert":
            modernbert_shrink(cfg, name)
        cfg.architectures = [cls_name]
        if id2label:
            cfg.id2label = id2label
            cfg.label2id = {v: k for k, v in id2label.items()}
        torch.manual_seed(1234)
        model = getattr(transformers, cls_name)(cfg).eval()
        # make LayerNorm and biases non-trivial so a missing term shows
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n or "layernorm" in n:
                    p.add_(torch.randn_like(p) * 0.1)
            if name == "mobilebert-nobn-cls":
                # with trigram input the last real token sees its right neighbour, a [PAD] when
                # padded: a non-zero [PAD] row shows that padding tokens are embedded like transformers
                model.mobilebert.embeddings.word_embeddings.weight[cfg.pad_token_id].normal_(0, 0.5)
        if cfg.model_type == "mpnet":
            mpnet_perturb(model)
        if cfg.model_type == "modernbert":
            modernbert_perturb(model)
        dirs = {}
        for kind, safe in (("st", True), ("bin", False)):
            d = os.path.join(a.out, f"{name}-{kind}")
            shutil.rmtree(d, ignore_errors=True)
            model.save_pretrained(d, safe_serialization=safe)
            for fn in TOKENIZER_FILES:
                if name in TOKENIZER_FROM and fn in ("modules.json", "sentence_bert_config.json"):
                    continue
                if os.path.exists(os.path.join(tok_dir, fn)):
                    shutil.copy(os.path.join(tok_dir, fn), d)
            if name not in TOKENIZER_FROM and os.path.isdir(os.path.join(src_dir, "1_Pooling")):
                shutil.copytree(os.path.join(src_dir, "1_Pooling"), os.path.join(d, "1_Pooling"))
            dirs[kind] = d
        tok = AutoTokenizer.from_pretrained(dirs["st"])
        ref = {"model_type": cfg.model_type, "architecture": cls_name, "pairs": pairs, "texts": texts}
        with torch.no_grad():
            if cls_name.endswith("ForSequenceClassification"):
                enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True,
                          max_length=128, return_tensors="pt")
                ref["logits"] = model(**enc).logits.tolist()
                base = getattr(model, model.base_model_prefix)
            else:
                base = model
            enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
            kw = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            if cfg.model_type == "distilbert":
                kw.pop("token_type_ids", None)
            hs = base(**kw).last_hidden_state
            mask = enc["attention_mask"]
            ref["hidden"] = [hs[i, : int(mask[i].sum())].tolist() for i in range(len(texts))]
            m = mask.unsqueeze(-1).float()
            mean = (hs * m).sum(1) / m.sum(1).clamp(min=1e-9)
            ref["mean_pooled"] = mean.tolist()
            if cfg.model_type == "deberta-v2":
                deberta_long(model, tok, pairs, ref)
            if cfg.model_type == "bart":
                bart_long(model, tok, pairs, ref)
            if cfg.model_type == "mpnet":
                mpnet_long(model, tok, pairs, texts, ref)
            if cfg.model_type == "modernbert":
                modernbert_long(model, tok, pairs, ref)
        os.makedirs(os.path.join(a.out, name), exist_ok=True)
        with open(os.path.join(a.out, name, "reference.json"), "w") as f:
            json.dump(ref, f)
        print(name, "->", dirs["st"], dirs["bin"])


if __name__ == "__main__":
    main()
