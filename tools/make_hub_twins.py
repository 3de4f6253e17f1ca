#!/usr/bin/env python3
"""Random-weight twins of the original configuration's eleven models, for serving from a local
Hub server in the tests (tests/py/test_hub_olah.py): each twin is the model's real config
(shrunk as tools/make_model_fixtures.py shrinks it: fewer layers, narrower; real vocabulary,
labels and tokenizer) with random weights saved as model.safetensors, plus every other file of
the model's folder in ../shared/models (tokenizer, sentence-transformers modules, pooling).

    python tools/make_hub_twins.py OUT_DIR [--shared ../shared] [--only name,name]

Writes OUT_DIR/<name>/. ModernBERT needs transformers >= 4.48: run it with
$MP_CACHE/venv-modernbert/bin/python and --only modernbert-large-zeroshot-v2. Deterministic.
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import modernbert_shrink, shrink  # noqa: E402

# shared folder -> transformers class (embedders: the bare model, as sentence-transformers saves it)
TWINS = {
    "distilbert-base-uncased-mnli": "DistilBertForSequenceClassification",
    "all-MiniLM-L6-v2": "BertModel",
    "deberta-v3-base-mnli-fever-anli": "DebertaV2ForSequenceClassification",
    "bart-large-mnli": "BartForSequenceClassification",
    "all-MiniLM-L12-v2": "BertModel",
    "all-mpnet-base-v2": "MPNetModel",
    "deberta-v3-xsmall-mnli-binary": "DebertaV2ForSequenceClassification",
    "mobilebert-uncased-mnli": "MobileBertForSequenceClassification",
    "modernbert-large-zeroshot-v2": "ModernBertForSequenceClassification",
    "roberta-large-mnli": "RobertaForSequenceClassification",
    "xtremedistil-l6-h256-nli-binary": "BertForSequenceClassification",
}

# ../shared/models/xtremedistil-l6-h256-nli-binary/config.json is the base model's (no classifier,
# see its SOURCES.md); the real model's head is binary NLI with these labels.
LABELS = {"xtremedistil-l6-h256-nli-binary": {0: "entailment", 1: "not_entailment"}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    only = a.only.split(",") if a.only else None
    if only and any(n.startswith("modernbert") for n in only):
        from modernbert_ref import compat
        compat()
    import transformers
    from transformers import AutoConfig
    for name, cls_name in TWINS.items():
        if (only and name not in only) or (not only and name.startswith("modernbert")):
            continue
        src = os.path.join(a.shared, "models", name)
        cfg = AutoConfig.from_pretrained(src)
        shrink(cfg, name)
        if cfg.model_type == "modernbert":
            modernbert_shrink(cfg, name)
        if name in LABELS:
            cfg.id2label = LABELS[name]
            cfg.label2id = {v: k for k, v in LABELS[name].items()}
        torch.manual_seed(13)
        model = getattr(transformers, cls_name)(cfg).eval()
        d = os.path.join(a.out, name)
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d, safe_serialization=True)
        # the real architectures entry stays (the model's own, e.g. BertModel for an embedder)
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        c["architectures"] = [cls_name]
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=2)
        for dp, _, fns in os.walk(src):
            for fn in fns:
                rel = os.path.relpath(os.path.join(dp, fn), src)
                if rel == "config.json":
                    continue
                os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
                shutil.copy(os.path.join(dp, fn), os.path.join(d, rel))
        print(name, sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))))


if __name__ == "__main__":
    main()
