"""Legacy tokenizer files (no tokenizer.json): mlxport's conversion against what transformers
4.46 builds from the same files. Folders are assembled in a temporary directory from the real
files in ../shared/models:
  roberta-large-mnli  vocab.json + merges.txt + tokenizer_config.json      (RobertaConverter)
  bart-large-mnli     vocab.json + merges.txt + tokenizer_config.json      (BART = RoBERTa BPE)
  all-mpnet-base-v2   vocab.txt + tokenizer_config.json + special_tokens_map.json (MPNetConverter)
  all-MiniLM-L6-v2    vocab.txt + tokenizer_config.json + special_tokens_map.json (BertConverter)
(xtremedistil and the two DeBERTa-v3 folders are legacy-only and covered by
test_tokenizer_parity.py.) Reference: the fast tokenizer transformers converts from those files
(`AutoTokenizer.from_pretrained(dir, use_fast=True)`), required identical on the torture corpus
and the first 2000 MNLI pairs (as singles and as pairs), untruncated and at 128/longest_first.
The slow (pure Python) tokenizer is also run on the untruncated singles; its agreement is
printed, not required (slow and fast transformers tokenizers differ on some inputs)."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import SHARED, require_shared

SRC = os.environ.get("MP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MP_BIN", os.path.join(SRC, "build", "mlxport"))

CASES = [
    ("roberta-large-mnli", ["vocab.json", "merges.txt", "tokenizer_config.json"]),
    ("bart-large-mnli", ["vocab.json", "merges.txt", "tokenizer_config.json"]),
    ("all-mpnet-base-v2", ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]),
    ("all-MiniLM-L6-v2", ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]),
]


def inputs():
    with open(os.path.join(SRC, "tests", "data", "tokenizer_torture.txt"), "rb") as f:
        tort = [x.decode("utf-8", "replace") for x in f.read().split(b"\n")[:-1]]
    pairs = []
    with open(os.path.join(SHARED, "datasets", "mnli", "validation_matched", "dev.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if "\n" in r["premise"] + r["hypothesis"] or "\t" in r["premise"] + r["hypothesis"]:
                continue
            pairs.append((r["premise"], r["hypothesis"]))
            if len(pairs) == 2000:
                break
    tort = [t for t in tort if "\t" not in t and "\r" not in t]
    singles = tort + [a for a, _ in pairs]
    pairs = pairs + [(tort[i], tort[(i + 1) % len(tort)]) for i in range(len(tort))]
    return singles, pairs


def run_mp(d, items, pair, ml):
    args = [BIN, "tokenize", "--model", d, "--json"] + (["--pair"] if pair else []) + (["--max-length", str(ml)] if ml else [])
    data = "".join((f"{a}\t{b}" if pair else a) + "\n" for a, b in (items if pair else [(x, None) for x in items]))
    p = subprocess.run(args, input=data.encode("utf-8", "surrogatepass"), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return [json.loads(x) for x in p.stdout.decode().split("\n")[:-1]]


@pytest.mark.parametrize("name,files", CASES, ids=[c[0] for c in CASES])
def test_legacy_files(name, files, tmp_path):
    src = os.path.join(SHARED, "models", name)
    require_shared()
    from transformers import AutoTokenizer

    d = tmp_path / name
    d.mkdir()
    for f in files:
        shutil.copy(os.path.join(src, f), d / f)
    fast = AutoTokenizer.from_pretrained(str(d), use_fast=True)
    tk = fast.backend_tokenizer
    singles, pairs = inputs()
    n = 0
    for ml in (0, 128):
        tk.no_padding()
        tk.no_truncation()
        if ml:
            tk.enable_truncation(ml, strategy="longest_first")
        for pair, items in ((False, singles), (True, pairs)):
            ref = tk.encode_batch(list(items) if pair else items)
            got = run_mp(str(d), items, pair, ml)
            assert len(got) == len(ref)
            for it, e, g in zip(items, ref, got):
                r = {"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}
                assert g == r, f"{name} ml={ml} pair={pair} {it!r}\n fast={r}\n  mlx={g}"
                n += 1
    slow = AutoTokenizer.from_pretrained(str(d), use_fast=False)
    got = run_mp(str(d), singles, False, 0)
    agree = sum(1 for t, g in zip(singles, got) if slow(t)["input_ids"] == g["input_ids"])
    print(f"\n[legacy] {name}: {n} encodings identical to transformers fast ({type(fast).__name__}); "
          f"slow {type(slow).__name__} agrees on {agree}/{len(singles)} untruncated singles (informational)")
