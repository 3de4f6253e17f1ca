#!/usr/bin/env python3
"""Dev-time check of the real all-mpnet-base-v2 (tools/fetch_mpnet.py) on STS-B dev: mlxport's
embeddings against sentence-transformers' recipe computed in Python (transformers AutoModel +
mean pooling over the attention mask + L2 normalize; max_seq_length 384 from
sentence_bert_config.json), and the STS-B dev Spearman of both.

    python tools/check_mpnet_stsb.py [--model DIR] [--pairs N|all] [--cos-sentences 200]

Prints JSON: min / mean cosine between the two embeddings of each sentence, max |delta|, and
Spearman(cosine(a, b), gold score) x 100 for mlxport and for the Python reference.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    cache = os.environ.get("MP_CACHE", os.path.join(root, ".cache"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(cache, "models", "all-mpnet-base-v2"))
    ap.add_argument("--bin", default=os.path.join(root, "build", "mlxport"))
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--pairs", default="all", help="STS-B dev pairs used for Spearman (default all 1500)")
    ap.add_argument("--cos-sentences", type=int, default=200, help="sentences in the cosine comparison")
    a = ap.parse_args()
    import torch
    from scipy.stats import spearmanr
    from transformers import AutoModel, AutoTokenizer

    rows = []
    with open(os.path.join(a.shared, "datasets", "stsb", "dev.tsv"), newline="") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(r)
        for row in r:
            rows.append((row[7], row[8], float(row[9])))
    if a.pairs != "all":
        rows = rows[: int(a.pairs)]
    texts = [x for x, _, _ in rows] + [y for _, y, _ in rows]

    t0 = time.time()
    p = subprocess.run([a.bin, "embed", "--model", a.model], input="".join(t.replace("\n", " ") + "\n" for t in texts),
                       capture_output=True, text=True, check=True)
    ours = np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()], dtype=np.float64)
    t_ours = time.time() - t0

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModel.from_pretrained(a.model).eval()
    ref = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], padding=True, truncation=True, max_length=384, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            ref.append(torch.nn.functional.normalize(e, p=2, dim=1).numpy())
    ref = np.concatenate(ref).astype(np.float64)
    t_ref = time.time() - t0

    # the first cos_sentences sentences alternate a/b so both sides of the pairs are covered
    n = len(rows)
    sel = [i for k in range(n) for i in (k, n + k)][: a.cos_sentences]
    cos_all = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    gold = [s for _, _, s in rows]
    out = {
        "model": a.model,
        "pairs": n,
        "cos_sentences": len(sel),
        "min_cosine": float(cos_all[sel].min()),
        "min_cosine_all_sentences": float(cos_all.min()),
        "mean_cosine_all_sentences": float(cos_all.mean()),
        "max_abs_delta": float(np.abs(ours - ref).max()),
        "spearman_mlxport": 100 * float(spearmanr((ours[:n] * ours[n:]).sum(1), gold).correlation),
        "spearman_reference": 100 * float(spearmanr((ref[:n] * ref[n:]).sum(1), gold).correlation),
        "seconds_mlxport": round(t_ours, 1),
        "seconds_reference": round(t_ref, 1),
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
