#!/usr/bin/env python3
"""Checkpoints saved by the current transformers (5.x) and reference logits from both transformers
lines, for tests/py/test_model_parity_tf5.py.

    python tools/tf5_ref.py make OUT --shared SHARED [--only NAME,...]
        (transformers 5.x, $MP_CACHE/venv-tf5) one tiny random-weight *ForSequenceClassification
        per family, built from the real config of a model in SHARED/models shrunk to a few layers
        x 64 wide, saved with save_pretrained as a 5.x user saves it: bf16 weights, config.json in
        the 5.x schema ("dtype", ModernBERT's rope_parameters / layer_types, tie_word_embeddings,
        ...), the real tokenizer files beside it. Also "modernbert-theta": a ModernBERT config in
        the 5.x schema with non-default rope thetas and a layer_types pattern that
        global_attn_every_n_layers does not give, and "modernbert-scaled": the same with the
        linear and dynamic rope types. Writes OUT/NAME/ and OUT/index.json.
    python tools/tf5_ref.py logits IN.json TAG DIR...
        (any transformers line: 5.x in venv-tf5, 4.46.3 in venv, 4.48.3 in venv-modernbert for
        ModernBERT) float32 logits of each DIR's model for each set of IN.json's
        {SET: {"pairs": [[a, b], ...], "max_length": N}, ...}, written to DIR/reference-TAG.json as
        {"transformers": version, SET: logits, ...}.
    python tools/tf5_ref.py resave SRC DST [SRC DST ...]
        (any line) loads each SRC in float32 and saves it with that line's save_pretrained in bf16
        to DST (a 4.x-schema copy of a 5.x checkpoint when run with transformers 4.x).
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# name -> (real model folder in SHARED/models, size overrides, sequence-classification class)
SMALL = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128, "num_hidden_layers": 2}
FAMILIES = {
    "bert": ("all-MiniLM-L6-v2", SMALL, "BertForSequenceClassification"),
    "roberta": ("roberta-large-mnli", SMALL, "RobertaForSequenceClassification"),
    "distilbert": ("distilbert-base-uncased-mnli",
                   {"dim": 64, "n_heads": 4, "hidden_dim": 128, "n_layers": 2}, "DistilBertForSequenceClassification"),
    "deberta-v2": ("deberta-v3-xsmall-mnli-binary", dict(SMALL, pooler_hidden_size=64),
                   "DebertaV2ForSequenceClassification"),
    "bart": ("bart-large-mnli",
             {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
              "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128},
             "BartForSequenceClassification"),
    "mobilebert": ("mobilebert-uncased-mnli",
                   {"hidden_size": 64, "embedding_size": 32, "intra_bottleneck_size": 32, "num_attention_heads": 4,
                    "intermediate_size": 32, "num_hidden_layers": 2, "num_feedforward_networks": 2},
                   "MobileBertForSequenceClassification"),
    "mpnet": ("all-mpnet-base-v2", SMALL, "MPNetForSequenceClassification"),
    "modernbert": ("modernbert-large-zeroshot-v2",
                   {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 96, "num_hidden_layers": 3,
                    "local_attention": 8}, "ModernBertForSequenceClassification"),
}
# the case: rope thetas other than ModernBERT's defaults (160000 global, 10000 local), in
# the 5.x schema only, and layer types that differ from global_attn_every_n_layers' pattern
THETA = {"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 500.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 40.0}},
         "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]}
# the rope types besides "default" that mlxport implements: linear (inv_freq / factor) on the
# local layers, dynamic (the default up to max_position_embeddings) on the global ones
SCALED = {"rope_parameters": {"full_attention": {"rope_type": "dynamic", "rope_theta": 500.0, "factor": 2.0},
                              "sliding_attention": {"rope_type": "linear", "rope_theta": 40.0, "factor": 3.0}},
          "layer_types": THETA["layer_types"]}
VARIANTS = {"modernbert-theta": THETA, "modernbert-scaled": SCALED}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "spm.model", "sentencepiece.bpe.model")


def transformers_for(model_type):
    if model_type == "modernbert":
        from modernbert_ref import compat  # torch 1.13 shims for 4.48; no-ops on torch 2
        return compat()
    import transformers
    return transformers


def randomize(model, seed):
    """Weights far from transformers' tiny init, so that every part of the model moves the logits:
    norms 1 + 0.1 N(0,1), other vectors 0.1 N(0,1), matrices N(0,1) / sqrt(fan_in)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * r if "norm" in n.lower() or "LayerNorm" in n else 0.1 * r)
            else:
                p.copy_(r / float(p.shape[-1]) ** 0.5)


def cmd_make(out, shared, only):
    import torch
    import transformers
    assert int(transformers.__version__.split(".")[0]) >= 5, "make needs transformers 5.x (venv-tf5)"
    index = {}
    names = list(FAMILIES) + list(VARIANTS)
    for name in names:
        if only and name not in only:
            continue
        fam = "modernbert" if name in VARIANTS else name
        src, sizes, cls_name = FAMILIES[fam]
        src = os.path.join(shared, "models", src)
        # rebuilt from a dict so that derived fields (MobileBERT's true_hidden_size, ModernBERT's
        # layer_types) follow the new sizes, as they do when transformers loads a config.json
        d = transformers.AutoConfig.from_pretrained(src).to_dict()
        d.update(sizes)
        d.pop("layer_types", None)
        d.pop("true_hidden_size", None)
        if name in VARIANTS:
            d.update(json.loads(json.dumps(VARIANTS[name])))
        cfg = transformers.AutoConfig.for_model(d.pop("model_type"), **d)
        if not getattr(cfg, "id2label", None) or len(cfg.id2label) < 2:
            cfg.num_labels = 3
        cfg.architectures = [cls_name]
        seed = list(FAMILIES).index(fam)  # the ModernBERT variants share the weights of "modernbert"
        torch.manual_seed(seed)
        model = getattr(transformers, cls_name)(cfg).eval()
        randomize(model, 1000 + seed)
        model = model.to(torch.bfloat16)
        d = os.path.join(out, name)
        model.save_pretrained(d)
        for f in TOKENIZER_FILES:
            if os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), d)
        index[name] = {"family": fam, "source": os.path.basename(src)}
    json.dump(index, open(os.path.join(out, "index.json"), "w"), indent=1)


def cmd_logits(inp, tag, dirs):
    import torch
    sets = json.load(open(inp))
    for d in dirs:
        mt = json.load(open(os.path.join(d, "config.json")))["model_type"]
        tf = transformers_for(mt)
        tok = tf.AutoTokenizer.from_pretrained(d)
        kw = {"dtype": torch.float32} if int(tf.__version__.split(".")[0]) >= 5 else {"torch_dtype": torch.float32}
        model = tf.AutoModelForSequenceClassification.from_pretrained(d, **kw).eval()
        res = {"transformers": tf.__version__}
        for set_name, a in sets.items():
            pairs = a["pairs"]
            with torch.no_grad():
                enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True,
                          max_length=a["max_length"], return_tensors="pt")
                if mt in ("distilbert", "mpnet", "bart", "roberta", "modernbert"):
                    enc.pop("token_type_ids", None)
                res[set_name] = model(**enc).logits.float().tolist()
        json.dump(res, open(os.path.join(d, f"reference-{tag}.json"), "w"))


def cmd_resave(pairs):
    import torch
    for src, dst in pairs:
        mt = json.load(open(os.path.join(src, "config.json")))["model_type"]
        tf = transformers_for(mt)
        kw = {"dtype": torch.float32} if int(tf.__version__.split(".")[0]) >= 5 else {"torch_dtype": torch.float32}
        model = tf.AutoModelForSequenceClassification.from_pretrained(src, **kw).eval()
        model.to(torch.bfloat16).save_pretrained(dst)
        for f in TOKENIZER_FILES:
            if os.path.exists(os.path.join(src, f)):
                shutil.copy(os.path.join(src, f), dst)


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    if a[0] == "make":
        only = a[a.index("--only") + 1].split(",") if "--only" in a else None
        cmd_make(a[1], a[a.index("--shared") + 1], only)
    elif a[0] == "logits":
        cmd_logits(a[1], a[2], a[3:])
    elif a[0] == "resave":
        cmd_resave(list(zip(a[1::2], a[2::2])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
