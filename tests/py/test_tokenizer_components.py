"""Components the eleven real tokenizers do not use (Split with String/Regex patterns and each
behavior, invert, Digits, Punctuation, Whitespace, WhitespaceSplit, NFD/NFC/NFKD/NFKC,
StripAccents, Lowercase, Prepend, Replace with a String pattern, Metaspace prepend_scheme
"first", Unigram with byte_fallback, BertProcessing / RobertaProcessing, added tokens with
single_word / lstrip / rstrip / normalized=true), checked against HF `tokenizers` on the small
tokenizer.json files of fuzz/corpus/fuzz_tokenizer_load (made by tools/make_fuzz_tokenizer_corpus.py)
over the torture corpus, singles and pairs, with and without truncation. Needs no shared data."""
import glob
import json
import os
import shutil
import subprocess

import pytest

SRC = os.environ.get("MP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MP_BIN", os.path.join(SRC, "build", "mlxport"))
SEEDS = sorted(glob.glob(os.path.join(SRC, "fuzz", "corpus", "fuzz_tokenizer_load", "*.json")))


def lines():
    with open(os.path.join(SRC, "tests", "data", "tokenizer_torture.txt"), "rb") as f:
        ls = f.read().split(b"\n")[:-1]
    extra = [b"The playing cafe hello world <mask> 123 4567", b"hello world", b"xhello world", b"hello worldx",
             b"  hello world  ", b"unable playing plays", b"a1b22c333d4444", b"e.e,e!e eee", b"\xe2\x96\x81the the\xe2\x96\x81"]
    return ls + extra


def run_mp(d, items, pair, args):
    data = b"".join((a + b"\t" + b if pair else a) + b"\n" for a, b in items)
    p = subprocess.run([BIN, "tokenize", "--model", d, "--json"] + (["--pair"] if pair else []) + args, input=data,
                       capture_output=True, timeout=300)
    out = [json.loads(x) for x in p.stdout.decode().split("\n")[:-1]]
    assert len(out) == len(items), p.stderr.decode()[-2000:]
    return out


@pytest.mark.parametrize("seed", SEEDS, ids=[os.path.basename(s) for s in SEEDS])
def test_component_parity(seed, tmp_path):
    from tokenizers import Tokenizer

    d = tmp_path / "tok"
    d.mkdir()
    shutil.copy(seed, d / "tokenizer.json")
    tk = Tokenizer.from_file(seed)
    ls = [x for x in lines() if b"\t" not in x]
    pairs = [(ls[i], ls[(i + 1) % len(ls)]) for i in range(len(ls))]
    n = 0
    for ml, tr in ((0, None), (24, "longest_first"), (24, "only_first")):
        args = ["--max-length", str(ml), "--truncation", tr] if ml else []
        for pair, items in ((False, [(x, None) for x in ls]), (True, pairs)):
            tk.no_padding()
            tk.no_truncation()
            if ml:
                tk.enable_truncation(ml, strategy=tr)
            got = run_mp(str(d), items, pair, args)
            for (a, b), g in zip(items, got):
                sa = a.decode("utf-8", "replace")
                try:
                    e = tk.encode(sa, b.decode("utf-8", "replace")) if pair else tk.encode(sa)
                    ref = {"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}
                except Exception as ex:  # HF refuses (e.g. only_first on a too-short text)
                    ref = {"error": str(ex)}
                if "error" in ref or "error" in g:
                    assert ("error" in ref) == ("error" in g), f"{a!r} {b!r}: hf={ref} mlx={g}"
                else:
                    assert g == ref, f"{os.path.basename(seed)} ml={ml} {tr} pair={pair}: {a!r} {b!r}\n hf={ref}\nmlx={g}"
                n += 1
    print(f"[components] {os.path.basename(seed)}: {n} encodings identical")
