#!/usr/bin/env python3
"""PyTorch reference for tests/gpu/run.sh: runs a Hugging Face model folder with transformers in
float16 on the GPU (the same GPU as mlxport's CUDA backend) and writes mlxport's output format.

    torch_ref.py emb MODEL_DIR TEXTS_FILE MAX_LEN OUT.jsonl   (mean pooling over the mask + L2 norm:
                                                             sentence-transformers all-MiniLM-L6-v2)
    torch_ref.py cls MODEL_DIR PAIRS_TSV MAX_LEN OUT.jsonl    (sequence-classification logits)
"""
import json
import sys

import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer


def main():
    kind, model_dir, inp, max_len, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    tok = AutoTokenizer.from_pretrained(model_dir)
    lines = [l.rstrip("\n") for l in open(inp, encoding="utf-8") if l.strip()]
    cls = AutoModelForSequenceClassification if kind == "cls" else AutoModel
    model = cls.from_pretrained(model_dir, torch_dtype=torch.float16).cuda().eval()
    res = []
    with torch.no_grad():
        for s in range(0, len(lines), 32):
            chunk = lines[s:s + 32]
            if kind == "cls":
                a = [l.split("\t")[0] for l in chunk]
                b = [l.split("\t")[1] for l in chunk]
                enc = tok(a, b, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            else:
                enc = tok(chunk, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            enc = {k: v.cuda() for k, v in enc.items()}
            o = model(**enc)
            if kind == "cls":
                res += [{"logits": r} for r in o.logits.float().tolist()]
            else:
                h = o.last_hidden_state.float()
                m = enc["attention_mask"].unsqueeze(-1).float()
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                e = torch.nn.functional.normalize(e, dim=-1)
                res += [{"embedding": r} for r in e.tolist()]
    with open(out, "w") as f:
        for r in res:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
