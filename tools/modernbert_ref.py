#!/usr/bin/env python3
"""transformers' ModernBERT as the reference for mlxport's src/model/modernbert.c.

ModernBERT arrived in transformers 4.48; the project's reference venv has 4.46.3 (the last line
for Debian's torch 1.13). scripts/setup.sh makes a second venv, $MP_CACHE/venv-modernbert, with
transformers 4.48.3 on the same Debian torch 1.13. Two torch >= 2 APIs that 4.48's
modeling_modernbert.py touches are shimmed here, test-side only:
  - torch.compile (used as a decorator; only called when reference_compile is set): identity;
  - nn.LayerNorm(..., bias=False) (torch 2.1): a LayerNorm whose bias is None.
On CPU without flash-attn or torch-2 SDPA, transformers runs the "eager" attention path.

    python tools/modernbert_ref.py params CONFIG_DIR...   -> one {"num_parameters": N} line per folder
    python tools/modernbert_ref.py logits MODEL_DIR IN.json OUT.json
        (sequence-classification logits; IN.json: {"pairs": [[premise, hypothesis], ...],
         "max_length": 128})
    python tools/modernbert_ref.py hidden MODEL_DIR IN.json OUT.json
        (last hidden states; IN.json: {"texts": [...], "max_length": N})
    python tools/modernbert_ref.py zeroshot MODEL_DIR IN.json OUT.json
        (zero-shot-classification pipeline; IN.json: {"texts": [...], "labels": [...], "multi": bool})
    python tools/modernbert_ref.py big OUT_DIR [--layers N]
        (a full-size model folder: the real config, random F16 weights, real tokenizer; for
         dev-time memory/time measurements at 8,192 tokens)
"""
import json
import os
import shutil
import sys

SHARED_NAME = "modernbert-large-zeroshot-v2"


def compat():
    """Makes transformers >= 4.48's ModernBERT importable and runnable on torch 1.13."""
    import torch
    import torch.nn as nn
    if not hasattr(torch, "compile"):
        def _compile(fn=None, **kw):
            return fn if fn is not None else (lambda f: f)
        torch.compile = _compile
    if "bias" not in nn.LayerNorm.__init__.__code__.co_varnames:
        base = nn.LayerNorm

        class LayerNorm(base):
            def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, **kw):
                super().__init__(normalized_shape, eps=eps, elementwise_affine=elementwise_affine, **kw)
                if not bias:
                    self.bias = None
        nn.LayerNorm = LayerNorm
    import transformers
    if not hasattr(transformers, "ModernBertForSequenceClassification"):
        raise SystemExit(f"transformers {transformers.__version__} has no ModernBERT (needs >= 4.48): "
                         "use $MP_CACHE/venv-modernbert (scripts/setup.sh test)")
    return transformers


def cmd_params(cfg_dirs):
    transformers = compat()
    from transformers.modeling_utils import no_init_weights
    for d in cfg_dirs:
        cfg = transformers.AutoConfig.from_pretrained(d)
        cls = getattr(transformers, (cfg.architectures or ["ModernBertModel"])[0])
        with no_init_weights():
            model = cls(cfg)
        print(json.dumps({"num_parameters": model.num_parameters()}))
        del model


def cmd_logits(model_dir, inp, outp):
    import torch
    transformers = compat()
    a = json.load(open(inp))
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.ModernBertForSequenceClassification.from_pretrained(model_dir).eval()
    pairs = a["pairs"]
    with torch.no_grad():
        enc = tok([p for p, _ in pairs], [h for _, h in pairs], padding=True, truncation=True,
                  max_length=a.get("max_length", 128), return_tensors="pt")
        logits = model(**enc).logits
    json.dump({"logits": logits.tolist()}, open(outp, "w"))


def cmd_hidden(model_dir, inp, outp):
    import torch
    transformers = compat()
    a = json.load(open(inp))
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for t in a["texts"]:
            enc = tok([t], truncation=True, max_length=a.get("max_length", 128), return_tensors="pt")
            out.append(model(**enc).last_hidden_state[0].tolist())
    json.dump({"hidden": out}, open(outp, "w"))


def cmd_zeroshot(model_dir, inp, outp):
    transformers = compat()
    a = json.load(open(inp))
    clf = transformers.pipeline("zero-shot-classification", model=model_dir, framework="pt")
    res = [clf(t, candidate_labels=a["labels"], multi_label=a["multi"]) for t in a["texts"]]
    json.dump([{"labels": r["labels"], "scores": r["scores"]} for r in res], open(outp, "w"))


def cmd_big(out, shared, layers=None):
    """Full-size ModernBERT-large folder with random F16 weights (tensor names and shapes from
    transformers' model built on the real config)."""
    import numpy as np
    from safetensors.numpy import save_file
    transformers = compat()
    from transformers.modeling_utils import no_init_weights
    src = os.path.join(shared, "models", SHARED_NAME)
    cfg = transformers.AutoConfig.from_pretrained(src)
    if layers:
        cfg.num_hidden_layers = layers
    with no_init_weights():
        model = transformers.ModernBertForSequenceClassification(cfg)
    rng = np.random.default_rng(0)
    sd = {}
    for n, p in model.named_parameters():
        shape = tuple(p.shape)
        if "norm" in n:
            v = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        elif len(shape) == 2:
            v = rng.standard_normal(shape, dtype=np.float32) * (1.0 / np.sqrt(shape[1]))
        else:
            v = 0.02 * rng.standard_normal(shape, dtype=np.float32)
        sd[n] = v.astype(np.float16)
    os.makedirs(out, exist_ok=True)
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(out)
    for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(src, fn), out)
    print(json.dumps({"num_parameters": model.num_parameters(), "out": out}))


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    if a[0] == "params":
        cmd_params(a[1:])
    elif a[0] == "logits":
        cmd_logits(*a[1:4])
    elif a[0] == "hidden":
        cmd_hidden(*a[1:4])
    elif a[0] == "zeroshot":
        cmd_zeroshot(*a[1:4])
    elif a[0] == "big":
        layers = int(a[a.index("--layers") + 1]) if "--layers" in a else None
        shared = a[a.index("--shared") + 1] if "--shared" in a else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
        cmd_big(a[1], shared, layers)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
