#!/usr/bin/env python3
"""Compares two mlxport outputs for tests/gpu/run.sh and prints one PASS/FAIL line.

    compare.py emb NAME A.jsonl B.jsonl MIN_COS      (embed output: {"embedding": [...]} per line)
    compare.py cls NAME A.jsonl B.jsonl MAX_ABS      (classify --json: {"logits": [...]} per line)
    compare.py agree NAME A.jsonl B.jsonl MIN_FRAC   (classify --json, a lossy mode against a reference)

emb: the smallest cosine similarity over rows must be >= MIN_COS. cls: argmax must agree on every
row (100%) and the largest |logit difference| must be <= MAX_ABS. agree: argmax must agree on at
least MIN_FRAC of the rows (the largest |logit difference| is printed). Exit 0 on PASS, 1 on FAIL.
"""
import json
import math
import sys


def rows(path, key):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line)[key])
    return out


def main():
    kind, name, a_path, b_path, tol = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    key = "embedding" if kind == "emb" else "logits"
    try:
        a, b = rows(a_path, key), rows(b_path, key)
    except (OSError, ValueError, KeyError) as e:
        print(f"FAIL {name}: cannot read the outputs: {e}")
        return 1
    if len(a) != len(b) or not a:
        print(f"FAIL {name}: {len(a)} vs {len(b)} rows")
        return 1
    if kind == "emb":
        worst = 1.0
        for x, y in zip(a, b):
            dot = sum(p * q for p, q in zip(x, y))
            nx, ny = math.sqrt(sum(p * p for p in x)), math.sqrt(sum(q * q for q in y))
            worst = min(worst, dot / max(nx * ny, 1e-30))
        ok = worst >= tol
        print(f"{'PASS' if ok else 'FAIL'} {name}: min cosine {worst:.7f} over {len(a)} rows (>= {tol})")
        return 0 if ok else 1
    agree = sum(max(range(len(x)), key=x.__getitem__) == max(range(len(y)), key=y.__getitem__) for x, y in zip(a, b))
    maxd = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x, y))
    if kind == "agree":
        ok = agree >= tol * len(a)
        print(f"{'PASS' if ok else 'FAIL'} {name}: argmax agreement {agree}/{len(a)} (>= {tol:.0%}), "
              f"max |dlogit| {maxd:.2e}")
        return 0 if ok else 1
    ok = agree == len(a) and maxd <= tol
    print(f"{'PASS' if ok else 'FAIL'} {name}: argmax agreement {agree}/{len(a)}, max |dlogit| {maxd:.2e} (<= {tol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
