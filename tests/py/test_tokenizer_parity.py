"""Parity of `mlxport tokenize --json` with Hugging Face `tokenizers` (the Rust library behind
transformers' fast tokenizers) on real tokenizer files and real dataset texts.

Tokenizers: every folder in ../shared/models (except _spm-fixtures) plus the MiniLM package's
own folder in the HF cache. Reference: `tokenizers.Tokenizer.from_file(tokenizer.json)` when the
folder has one; otherwise transformers' fast tokenizer converted from the legacy files
(`AutoTokenizer.from_pretrained(dir, use_fast=True).backend_tokenizer`), which is what a
transformers user gets.

Texts: every text of every dataset in ../shared/datasets (single sentences; and pairs:
premise/hypothesis of MNLI, SNLI, RTE, question/sentence of QNLI, the sentence pairs of MRPC and
STS-B), plus tests/data/tokenizer_torture.txt (bytes; invalid UTF-8 is given to HF decoded with
errors="replace", which is what mlxport documents). Texts containing a newline (or a TAB, for
pairs) cannot travel on one CLI line and are skipped (counted).

Runs per tokenizer (each is one mlxport process over all its lines, compared with HF encode_batch):
  A. every distinct text of every dataset (each single sentence and both sides of every pair,
     ~36k texts) + the torture lines, as singles, no truncation, no padding
  B. the first 2000 distinct pairs + the torture pairs (line i with line i+1), max_length 128,
     longest_first
  C. the first 300 pairs + the torture pairs (and, as singles, their first texts + the torture
     lines) at max_length 128 and 512 with each truncation strategy (longest_first, only_first,
     only_second, none), plus padding longest / padding max_length / --no-special-tokens at
     128 longest_first.
In the ASan build (MP_BUILD_DIR ends in an "asan" folder name) run A is cut to its first 3000
texts + the torture lines; B and C are unchanged.
Required: identical input_ids, attention_mask and token_type_ids everywhere (and errors on the
same lines when HF refuses, e.g. only_second on a text too short).
"""
import csv
import glob
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import SHARED, require_shared

SRC = os.environ.get("MP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MP_BIN", os.path.join(SRC, "build", "mlxport"))
HUB = os.environ.get("HF_HUB_CACHE", os.path.join(SRC, ".cache", "huggingface", "hub"))
SUBSET = 300        # pairs (and their first texts) used for the setting sweep
PAIRS_ALL = 2000    # pairs at max_length 128 / longest_first
# Under the ASan build (MP_BUILD_DIR names an "asan" folder) the CLI is ~4x slower: the run over
# all singles is cut to its first QUICK_SINGLES texts there; the release build runs everything.
QUICK = "asan" in os.path.basename(os.path.normpath(os.environ.get("MP_BUILD_DIR", "")))
QUICK_SINGLES = 3000


def tokenizer_dirs():
    dirs = []
    if os.path.isdir(os.path.join(SHARED, "models")):
        for d in sorted(glob.glob(os.path.join(SHARED, "models", "*", ""))):
            if os.path.basename(os.path.normpath(d)).startswith("_"):
                continue
            dirs.append(os.path.normpath(d))
    pkg = sorted(glob.glob(os.path.join(HUB, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*", "")))
    if pkg:
        dirs.append(os.path.normpath(pkg[0]))
    return dirs


def _name(d):
    if "snapshots" in d:
        return "MiniLM-package"
    return os.path.basename(d)


def load_texts():
    """(singles, pairs) as str, from the real datasets."""
    ds = os.path.join(SHARED, "datasets")
    singles, pairs = [], []

    def jsonl(p, a, b):
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    pairs.append((r[a], r[b]))

    def tsv(p, a, b, encoding="utf-8"):
        with open(p, encoding=encoding, newline="") as f:
            rd = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            head = next(rd)
            ia, ib = head.index(a), (head.index(b) if b else None)
            for r in rd:
                if len(r) <= max(ia, ib or 0):
                    continue
                if ib is None:
                    singles.append(r[ia])
                else:
                    pairs.append((r[ia], r[ib]))

    jsonl(os.path.join(ds, "mnli/validation_matched/dev.jsonl"), "premise", "hypothesis")
    jsonl(os.path.join(ds, "snli/validation/dev.jsonl"), "premise", "hypothesis")
    jsonl(os.path.join(ds, "rte/val.jsonl"), "premise", "hypothesis")
    tsv(os.path.join(ds, "qnli/dev.tsv"), "question", "sentence")
    tsv(os.path.join(ds, "mrpc/dev.tsv"), "#1 String", "#2 String", encoding="utf-8-sig")
    tsv(os.path.join(ds, "stsb/dev.tsv"), "sentence1", "sentence2")
    tsv(os.path.join(ds, "sst2/dev.tsv"), "sentence", None)
    with open(os.path.join(ds, "stsb/original/sts-dev.tsv"), encoding="utf-8", newline="") as f:
        for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(r) >= 7:
                pairs.append((r[5], r[6]))
    for a, b in pairs:
        singles.append(a)
        singles.append(b)
    return singles, pairs


def torture():
    with open(os.path.join(SRC, "tests", "data", "tokenizer_torture.txt"), "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def to_bytes(t):
    return t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")


def to_str(t):
    return t.decode("utf-8", errors="replace") if isinstance(t, bytes) else t


def special_content(d, key):
    for fn in ("special_tokens_map.json", "tokenizer_config.json"):
        p = os.path.join(d, fn)
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                v = json.load(f).get(key)
            if isinstance(v, dict):
                v = v.get("content")
            if isinstance(v, str):
                return v
    return None


_REF = {}


def reference(d):
    if d in _REF:
        return _REF[d]
    tj = os.path.join(d, "tokenizer.json")
    if os.path.exists(tj):
        from tokenizers import Tokenizer

        tk = Tokenizer.from_file(tj)
        kind = "tokenizers"
    else:
        from transformers import AutoTokenizer

        tk = AutoTokenizer.from_pretrained(d, use_fast=True).backend_tokenizer
        kind = "transformers-fast"
    pad = special_content(d, "pad_token")
    pad_id = tk.token_to_id(pad) if pad else None
    if pad_id is None:
        for cand in ("[PAD]", "<pad>", "<|padding|>"):
            if tk.token_to_id(cand) is not None:
                pad, pad_id = cand, tk.token_to_id(cand)
                break
    if pad_id is None:
        pad, pad_id = "[PAD]", 0
    _REF[d] = (tk, kind, pad, pad_id)
    return _REF[d]


def _cache_path(d, items, pair, max_len, trunc, padding, special):
    """HF's outputs are cached (MP_CACHE/tokenizer-parity) under a key made of the tokenizers and
    transformers versions, every file of the tokenizer folder, the options and the inputs, so the
    second run of the suite (ASan build) and later runs reuse the reference instead of recomputing it."""
    import hashlib

    import tokenizers
    import transformers

    root = os.environ.get("MP_CACHE")
    if not root:
        return None
    h = hashlib.sha256()
    h.update(f"v1 {tokenizers.__version__} {transformers.__version__} {pair} {max_len} {trunc} {padding} {special}".encode())
    for fn in sorted(os.listdir(d)):
        p = os.path.join(d, fn)
        if os.path.isfile(p):
            h.update(fn.encode())
            with open(p, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    for it in items:
        if pair:
            h.update(to_bytes(it[0]) + b"\x01" + to_bytes(it[1]) + b"\x02")
        else:
            h.update(to_bytes(it) + b"\x02")
    return os.path.join(root, "tokenizer-parity", h.hexdigest() + ".json.gz")


def hf_encode(d, items, pair, max_len, trunc, padding, special):
    import gzip

    cp = _cache_path(d, items, pair, max_len, trunc, padding, special)
    if cp and os.path.exists(cp):
        try:
            with gzip.open(cp, "rt") as f:
                return json.load(f)
        except Exception:
            pass
    res = _hf_encode(d, items, pair, max_len, trunc, padding, special)
    if cp:
        try:
            os.makedirs(os.path.dirname(cp), exist_ok=True)
            tmp = cp + f".tmp{os.getpid()}"
            with gzip.open(tmp, "wt", compresslevel=1) as f:
                json.dump(res, f)
            os.replace(tmp, cp)
        except OSError:
            pass
    return res


def _hf_encode(d, items, pair, max_len, trunc, padding, special):
    tk, _, pad, pad_id = reference(d)
    tk.no_truncation()
    tk.no_padding()
    if max_len and trunc != "none":
        tk.enable_truncation(max_len, stride=0, strategy=trunc, direction="right")
    if padding == "longest":
        tk.enable_padding(direction="right", pad_id=pad_id, pad_type_id=0, pad_token=pad)
    elif padding == "max_length":
        tk.enable_padding(direction="right", pad_id=pad_id, pad_type_id=0, pad_token=pad, length=max_len)
    inputs = [(to_str(a), to_str(b)) for a, b in items] if pair else [to_str(a) for a in items]
    try:
        encs = tk.encode_batch(inputs, add_special_tokens=special)
        return [[e.ids, e.attention_mask, e.type_ids] for e in encs]
    except Exception:
        pass
    # some rows fail: HF refuses the whole batch; find the failing rows one by one
    tk.no_padding()
    out = []
    for x in inputs:
        try:
            e = tk.encode(*x, add_special_tokens=special) if pair else tk.encode(x, add_special_tokens=special)
            out.append([e.ids, e.attention_mask, e.type_ids])
        except Exception as ex:
            out.append(["error", str(ex)])
    ok = [o for o in out if o[0] != "error"]
    target = 0
    if padding == "longest" and ok:
        target = max(len(o[0]) for o in ok)
    elif padding == "max_length":
        target = max_len
    res = []
    for o in out:
        if o[0] == "error" or len(o[0]) >= target:
            res.append(o)
        else:
            k = target - len(o[0])
            res.append([o[0] + [pad_id] * k, o[1] + [0] * k, o[2] + [0] * k])
    return res


def mp_encode(d, items, pair, max_len, trunc, padding, special):
    args = [BIN, "tokenize", "--model", d, "--json"]
    if pair:
        args.append("--pair")
    if max_len:
        args += ["--max-length", str(max_len), "--truncation", trunc]
    if padding != "none":
        args += ["--padding", padding]
    if not special:
        args.append("--no-special-tokens")
    if pair:
        data = b"".join(to_bytes(a) + b"\t" + to_bytes(b) + b"\n" for a, b in items)
    else:
        data = b"".join(to_bytes(a) + b"\n" for a in items)
    p = subprocess.run(args, input=data, capture_output=True, timeout=900)
    lines = p.stdout.decode("utf-8").split("\n")[:-1]
    assert len(lines) == len(items), f"{len(lines)} output lines for {len(items)} inputs; rc={p.returncode} stderr={p.stderr[-2000:]!r}"
    out = []
    for ln in lines:
        j = json.loads(ln)
        if "error" in j:
            out.append(["error", j["error"]])
        else:
            out.append([j["input_ids"], j["attention_mask"], j["token_type_ids"]])
    has_err = any(o[0] == "error" for o in out)
    assert (p.returncode == 3) == has_err and p.returncode in (0, 3), f"rc={p.returncode} stderr={p.stderr[-2000:]!r}"
    return out


def compare(d, items, pair, max_len, trunc, padding="none", special=True):
    ref = hf_encode(d, items, pair, max_len, trunc, padding, special)
    got = mp_encode(d, items, pair, max_len, trunc, padding, special)
    bad = []
    for i, (r, g) in enumerate(zip(ref, got)):
        if r[0] == "error" or g[0] == "error":
            if (r[0] == "error") != (g[0] == "error"):
                bad.append(i)
        elif r != g:
            bad.append(i)
    return len(items), bad, ref, got


def line_ok(t, pair):
    b = to_bytes(t)
    return b"\n" not in b and not b.endswith(b"\r") and (not pair or b"\t" not in b)


@pytest.fixture(scope="module")
def corpus():
    require_shared()
    singles, pairs = load_texts()
    tort = torture()
    singles = list(dict.fromkeys(singles))
    pairs = list(dict.fromkeys(pairs))
    s_all = [t for t in singles if line_ok(t, False)]
    if QUICK:
        s_all = s_all[:QUICK_SINGLES]
    s_all += tort
    tort_pairs = [(tort[i], tort[(i + 1) % len(tort)]) for i in range(len(tort))]
    tort_pairs = [p for p in tort_pairs if line_ok(p[0], True) and line_ok(p[1], True)]
    p_all = [p for p in pairs if line_ok(p[0], True) and line_ok(p[1], True)] + tort_pairs
    sub_pairs = p_all[:SUBSET] + tort_pairs
    sub_singles = [a for a, _ in p_all[:SUBSET]] + tort
    skipped = (len(singles) + len(tort) - len(s_all), len(pairs) + len(tort_pairs) - len(p_all))
    pairs_b = p_all[:PAIRS_ALL] + tort_pairs
    return dict(singles=s_all, pairs=p_all, pairs_b=pairs_b, sub_pairs=sub_pairs, sub_singles=sub_singles, skipped=skipped)


DIRS = tokenizer_dirs()


@pytest.mark.parametrize("d", DIRS, ids=[_name(d) for d in DIRS])
def test_parity(d, corpus):
    if not os.path.exists(BIN):
        pytest.fail(f"mlxport binary not built ({BIN})", pytrace=False)
    probe = subprocess.run([BIN, "tokenize", "--model", d], input=b"x\n", capture_output=True)
    assert probe.returncode == 0, probe.stderr.decode()
    t0 = time.time()
    runs = [
        ("singles/all/none", corpus["singles"], False, 0, "none", "none", True),
        ("pairs/2000/128/longest_first", corpus["pairs_b"], True, 128, "longest_first", "none", True),
    ]
    for ml in (128, 512):
        for tr in ("longest_first", "only_first", "only_second", "none"):
            runs.append((f"pairs/subset/{ml}/{tr}", corpus["sub_pairs"], True, ml, tr, "none", True))
            runs.append((f"singles/subset/{ml}/{tr}", corpus["sub_singles"], False, ml, tr, "none", True))
    runs.append(("pairs/subset/128/longest_first/pad-longest", corpus["sub_pairs"], True, 128, "longest_first", "longest", True))
    runs.append(("singles/subset/128/longest_first/pad-max_length", corpus["sub_singles"], False, 128, "longest_first", "max_length", True))
    runs.append(("pairs/subset/128/longest_first/no-special", corpus["sub_pairs"], True, 128, "longest_first", "none", False))
    total = 0
    failures = []
    report = []
    for name, items, pair, ml, tr, pad, sp in runs:
        n, bad, ref, got = compare(d, items, pair, ml, tr, pad, sp)
        total += n
        report.append(f"{name}: {n - len(bad)}/{n}")
        for i in bad[:3]:
            failures.append(f"{name} item {i}: input={items[i]!r}\n  hf ={ref[i]!r}\n  mlx={got[i]!r}")
        if bad:
            failures.append(f"{name}: {len(bad)} of {n} differ")
    _, kind, _, _ = reference(d)
    print(f"\n[parity] {_name(d)} (reference: {kind}): {len(runs)} runs, "
          f"{total} encodings compared in {time.time() - t0:.1f}s; skipped lines (newline/tab inside) "
          f"singles={corpus['skipped'][0]} pairs={corpus['skipped'][1]}{' (ASan quick mode)' if QUICK else ''}")
    for r in report:
        print("   ", r)
    sys.stdout.flush()
    assert not failures, "\n".join(failures[:20])
