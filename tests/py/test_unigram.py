"""Unigram / Precompiled / SentencePiece parity against the independent references.

build/spm_check (tools/c/spm_check.c) drives src/tokenizer/{precompiled,unigram,spm_model}.c.
References:
  - HF `tokenizers` (Rust): `Precompiled.normalize_str`, `Tokenizer.model.tokenize` on the
    pre-tokenized pieces, for the DeBERTa-v3 tokenizer and the sentencepiece test model, both as
    transformers 4.46 converts them from their .model files (DebertaV2TokenizerFast);
  - transformers' slow->fast converter (the tokenizer.json we generate from spm.model);
  - the `sentencepiece` package (its own normalizer and encoder);
  - the `protobuf` package (ModelProto fields).
Texts: every text of every dataset in ../shared/datasets, a torture list, random strings and a
sweep over every Unicode code point. Counts are printed (run pytest with -s to see them).
"""
import base64
import csv
import json
import os
import random
import subprocess
import sys

import pytest

from conftest import SHARED, require_shared

SRC = os.environ.get("MP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MP_BUILD_DIR", os.path.join(SRC, "build"))
TOOL = os.path.join(BUILD, "spm_check")
# Under the ASan build (MP_BUILD_DIR names an "asan" folder) the dataset texts are thinned to
# every 5th, the code-point sweep runs on the DeBERTa charsmap only and the folder test on three
# variants; the release build runs everything.
QUICK = "asan" in os.path.basename(os.path.normpath(BUILD))

DEBERTA_DIRS = ["deberta-v3-base-mnli-fever-anli", "deberta-v3-xsmall-mnli-binary"]
TEST_MODEL = os.path.join(SHARED, "models", "_spm-fixtures", "sentencepiece_test_model.model")

require_shared()
if not os.path.exists(TOOL):
    pytest.fail(f"{TOOL} not built", pytrace=False)

import sentencepiece as spm  # noqa: E402,F401  (missing references are failures, not skips)
import tokenizers  # noqa: E402
import transformers  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# inputs


def dataset_texts():
    d = os.path.join(SHARED, "datasets")
    out = []

    def jsonl(path, keys):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    out.extend(r[k] for k in keys if isinstance(r.get(k), str))

    def tsv(path, cols):
        with open(path, encoding="utf-8-sig", newline="") as f:
            rd = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rd)
            idx = [header.index(c) for c in cols]
            for row in rd:
                out.extend(row[i] for i in idx if i < len(row))

    jsonl(os.path.join(d, "mnli/validation_matched/dev.jsonl"), ["premise", "hypothesis"])
    jsonl(os.path.join(d, "snli/validation/dev.jsonl"), ["premise", "hypothesis"])
    jsonl(os.path.join(d, "rte/val.jsonl"), ["premise", "hypothesis"])
    tsv(os.path.join(d, "sst2/dev.tsv"), ["sentence"])
    tsv(os.path.join(d, "stsb/dev.tsv"), ["sentence1", "sentence2"])
    tsv(os.path.join(d, "qnli/dev.tsv"), ["question", "sentence"])
    tsv(os.path.join(d, "mrpc/dev.tsv"), ["#1 String", "#2 String"])
    return out


TORTURE = [
    "", " ", "   ", "a", "Hello world!", "  leading and trailing  ", "multiple   spaces\t\ttabs",
    "line\nbreak\r\nwindows\rold mac", "a\r\nb", "\r\n", "\r\r\n\n",
    "caf\u00e9 cafe\u0301 \u0041\u030a\u0301 Ａ\u0301 ａ\u0308\u0301x",  # combining marks
    "\uff21\uff22\uff23 \uff41\uff42\uff43 \uff10\uff11\uff12 \uff01\uff1f\uff08\uff09",  # full width
    "\ufb01 \ufb02 \u2460\u2461\u2462 \u3392 \u216b \u00bd \u2153 \u33a1 \u2122 \u00aa \u00b2",  # NFKC
    "\uff76\uff9e \uff8a\uff9f \uff73\uff9e\uff9e \u30ab\u3099 \u304b\u3099",  # half-width kana + voicing
    "\U0001F600\U0001F601 \U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
    "\U0001F1FA\U0001F1F8\U0001F1EC\U0001F1E7\U0001F1EB \u2764\ufe0f \u0031\ufe0f\u20e3 \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",
    "\x00\x01\x02\x07\x08\x0b\x0c\x0e\x1b\x1f\x7f \x80\x85\x9f",  # C0/C1 controls
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
    "zero\u200bwidth\u200cjoin\u200dnon\u2060word\ufeffbom",
    "\u1100\u1161\u11a8 \u1100\u1161 \uac00\u11a8 \ud55c\uad6d\uc5b4",  # Hangul jamo clusters
    "\u0915\u094d\u0937 \u0928\u092e\u0938\u094d\u0924\u0947 \u0915\u094d\u200d\u0937",  # Devanagari
    "\u0e01\u0e33 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",  # Thai (SpacingMark)
    "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd \u200f\u200e",  # RTL
    "\u4e2d\u6587\u6d4b\u8bd5 \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u3002\u3001",
    "\ufffd \ufffe \uffff \ue000 \U0010fffd \U0001d400\U0001d4d0 \U0001d7d8",
    "\u0600\u0661 \u0605x \u110bd \u08e2 prepend",  # Prepend characters
    "x" * 300, "\u00e9" * 100, "\U0001F600" * 50, "a\u0301" * 40,
    "[CLS] [SEP] [UNK] [PAD] [MASK] <unk> <s> </s> <0x41>",
    "\u2581 \u2581\u2581x \u2581",  # the Metaspace replacement itself
    "Mr. O'Neil's 12,345.67 $5 #tag @user e-mail@example.com http://x.y/z?q=1&r=2",
    "\u00df \u0130 \u0131 \u03a3\u03c3\u03c2 \u1e9e \ufb00\ufb03",
    "\u2028\u2029\u0085\u000b\u000c",
    "\U000e0001\U000e0020 tag \ufe00\ufe0f\U000e0100 variation",
]


def random_texts(n, seed=1234):
    rng = random.Random(seed)
    pools = [
        (0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
        (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F),
        (0x2100, 0x24FF), (0x3000, 0x30FF), (0x3200, 0x33FF), (0x4E00, 0x4E80), (0xAC00, 0xAC40),
        (0xFE00, 0xFE0F), (0xFF00, 0xFFEF), (0x1F1E6, 0x1F1FF), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF),
        (0xE0000, 0xE007F),
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 24)
        s = []
        for _ in range(k):
            lo, hi = rng.choice(pools)
            cp = rng.randint(lo, hi)
            if 0xD800 <= cp <= 0xDFFF:
                continue
            s.append(chr(cp))
            if rng.random() < 0.15:
                s.append(" " * rng.randint(1, 3))
        out.append("".join(s))
    return out


def codepoint_sweep():
    """Every scalar value, in runs of 8 consecutive code points and alone between letters."""
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    runs = ["".join(chr(c) for c in cps[i:i + 8]) for i in range(0, len(cps), 8)]
    return runs


# ---------------------------------------------------------------------------------------------
# helpers


def run_tool(args, lines):
    data = "".join(json.dumps(s, ensure_ascii=True) + "\n" for s in lines)
    p = subprocess.run([TOOL] + args, input=data.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = [json.loads(x) for x in p.stdout.decode().split("\n")[:-1]]
    assert len(out) == len(lines)
    return out


def compare(name, inputs, ours, ref, limit=5):
    bad = [(i, o, r) for i, (o, r) in enumerate(zip(ours, ref)) if o != r]
    log(f"{name}: {len(inputs) - len(bad)}/{len(inputs)} identical")
    for i, o, r in bad[:limit]:
        log(f"  input {inputs[i]!r}\n    ours {o!r}\n    ref  {r!r}")
    assert not bad, f"{name}: {len(bad)} of {len(inputs)} differ"


@pytest.fixture(scope="module")
def texts():
    t = dataset_texts()
    assert len(t) > 50000, len(t)
    return t[::5] if QUICK else t


def hf_fast_from_model(model_file, tmp, **kw):
    """transformers' own conversion of a .model file (what AutoTokenizer builds)."""
    from transformers import DebertaV2TokenizerFast

    tok = DebertaV2TokenizerFast(vocab_file=model_file, **kw)
    path = os.path.join(tmp, "tokenizer.json")
    tok.backend_tokenizer.save(path)
    return path


def _unique_models():
    """The DeBERTa-v3 spm.model files (each distinct file once) and the sentencepiece fixture."""
    import hashlib

    seen, out = set(), []
    for m in [os.path.join(SHARED, "models", d, "spm.model") for d in DEBERTA_DIRS] + [TEST_MODEL]:
        if not os.path.exists(m):
            continue
        with open(m, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()
        if h in seen:
            log(f"{m}: same bytes as a model already tested (sha256 {h[:12]}), not repeated")
            continue
        seen.add(h)
        out.append(m)
    return out


MODELS = _unique_models()


@pytest.fixture(scope="module", params=MODELS, ids=lambda p: os.path.basename(os.path.dirname(p)))
def model_file(request):
    return request.param


@pytest.fixture(scope="module")
def hf_json(model_file, tmp_path_factory):
    return hf_fast_from_model(model_file, str(tmp_path_factory.mktemp("hf")))


# ---------------------------------------------------------------------------------------------
# protobuf reader


def test_modelproto_fields(model_file):
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    with open(model_file, "rb") as f:
        m.ParseFromString(f.read())
    p = subprocess.run([TOOL, "info", model_file], stdout=subprocess.PIPE, check=True)
    info = json.loads(p.stdout)
    ts, ns = m.trainer_spec, m.normalizer_spec
    assert info["n_pieces"] == len(m.pieces)
    assert info["model_type"] == ts.model_type and info["vocab_size"] == ts.vocab_size
    assert info["byte_fallback"] == int(ts.byte_fallback)
    assert (info["unk_id"], info["bos_id"], info["eos_id"], info["pad_id"]) == (ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id)
    assert info["unk_piece"] == ts.unk_piece
    n = info["normalizer"]
    assert n["name"] == ns.name and n["charsmap_len"] == len(ns.precompiled_charsmap)
    assert (n["add_dummy_prefix"], n["remove_extra_whitespaces"], n["escape_whitespaces"]) == (
        int(ns.add_dummy_prefix), int(ns.remove_extra_whitespaces), int(ns.escape_whitespaces))
    ref = [[x.piece, x.score, x.type] for x in m.pieces]
    assert info["pieces"] == ref
    log(f"{os.path.basename(model_file)}: {len(ref)} pieces identical to protobuf")


def test_malformed_models(tmp_path, model_file):
    with open(model_file, "rb") as f:
        data = f.read()
    cases = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "garbage": b"\xff" * 64,
        "bad-wiretype": b"\x0b" + data[1:],  # field 1 with wire type 3 (group)
        "huge-length": b"\x0a\xff\xff\xff\xff\x0f" + data[6:],
        "text": b"this is not a protobuf\n",
    }
    for name, blob in cases.items():
        p = tmp_path / (name + ".model")
        p.write_bytes(blob)
        r = subprocess.run([TOOL, "info", str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 3, (name, r.returncode, r.stderr)
        msg = r.stderr.decode()
        assert str(p) in msg, msg
        if name not in ("empty",):
            assert "offset" in msg or "no pieces" in msg, msg


# ---------------------------------------------------------------------------------------------
# HF Precompiled normalizer


def precompiled_ref(json_path):
    with open(json_path, encoding="utf-8") as f:
        j = json.load(f)
    for n in j["normalizer"]["normalizers"]:
        if n["type"] == "Precompiled":
            return tokenizers.normalizers.Precompiled(base64.b64decode(n["precompiled_charsmap"]))
    raise AssertionError("no Precompiled normalizer")


def test_precompiled_normalizer(model_file, hf_json, texts):
    ref = precompiled_ref(hf_json)
    inputs = TORTURE + texts + random_texts(5000)
    ours = run_tool(["normalize", hf_json], inputs)
    compare(f"Precompiled.normalize_str {os.path.basename(model_file)} (datasets+torture+random)", inputs, ours,
            [ref.normalize_str(s) for s in inputs])
    # the same charsmap read from the .model file
    ours2 = run_tool(["normalize", model_file], inputs[:3000])
    assert ours2 == ours[:3000]


def test_precompiled_codepoint_sweep(model_file, hf_json):
    ref = precompiled_ref(hf_json)
    inputs = codepoint_sweep()
    if QUICK and model_file != MODELS[0]:
        inputs = inputs[::64]  # ASan quick mode: the full sweep on the first model only
    ours = run_tool(["normalize", hf_json], inputs)
    compare("Precompiled.normalize_str every code point (runs of 8)", inputs, ours, [ref.normalize_str(s) for s in inputs])


# ---------------------------------------------------------------------------------------------
# HF Unigram model


def hf_pieces(tok, inputs):
    pieces = set()
    for s in inputs:
        n = tok.normalizer.normalize_str(s)
        for p, _ in tok.pre_tokenizer.pre_tokenize_str(n):
            pieces.add(p)
    return sorted(pieces)


def test_unigram_model(model_file, hf_json, texts):
    tok = tokenizers.Tokenizer.from_file(hf_json)
    inputs = TORTURE + texts + random_texts(5000)
    pieces = hf_pieces(tok, inputs)
    # whole normalized texts (spaces replaced) too: long pieces, many unknowns
    pieces += ["\u2581" + tok.normalizer.normalize_str(s).replace(" ", "\u2581") for s in random_texts(500, seed=7)]
    ref = [[t.id for t in tok.model.tokenize(p)] for p in pieces]
    compare(f"Unigram.tokenize {os.path.basename(model_file)} (unique pre-tokenized pieces)", pieces,
            run_tool(["unigram", hf_json], pieces), ref)
    # the .model read directly gives the same model
    assert run_tool(["unigram", model_file], pieces[:3000]) == ref[:3000]


def test_unigram_byte_fallback(hf_json, tmp_path, texts):
    with open(hf_json, encoding="utf-8") as f:
        j = json.load(f)
    vocab = j["model"]["vocab"]
    if not any(p == "<0x41>" for p, _ in vocab):
        # a vocabulary without byte pieces (the sentencepiece test model) gets the 256 <0xNN> pieces,
        # scored below every other piece, so that byte fallback is exercised on it too
        low = min(sc for _, sc in vocab) - 1.0
        vocab += [[f"<0x{b:02X}>", low] for b in range(256)]
    j["model"]["byte_fallback"] = True
    path = tmp_path / "bf.json"
    path.write_text(json.dumps(j))
    tok = tokenizers.Tokenizer.from_file(str(path))
    pieces = hf_pieces(tok, TORTURE + random_texts(3000, seed=99) + texts[:3000])
    ref = [[t.id for t in tok.model.tokenize(p)] for p in pieces]
    compare("Unigram.tokenize byte_fallback=true", pieces, run_tool(["unigram", str(path)], pieces), ref)


def test_unigram_synthetic_vocabs(tmp_path):
    """Small vocabularies that reach the corner cases: duplicates, unk_id null, ties, unk fusing,
    byte fallback with missing byte pieces, pieces equal to the unk string."""
    rng = random.Random(5)
    alphabet = ["a", "b", "c", "\u00e9", "\u2581", "\U0001F600"]
    for case in range(40):
        vocab = [["<unk>", 0.0]]
        for _ in range(rng.randint(3, 40)):
            p = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
            score = rng.choice([-1.0, -2.0, -2.5, -3.0, float(-rng.randint(1, 80)) / 7])
            vocab.append([p, score])
        if case % 3 == 0:
            vocab.append([vocab[1][0], -0.5])  # duplicate string, different score
        if case % 4 == 1:
            for b in rng.sample(range(256), 200):
                vocab.append([f"<0x{b:02X}>", -5.0])
        unk = None if case % 5 == 2 else 0
        model = {"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": case % 4 == 1}
        tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
              "pre_tokenizer": None, "post_processor": None, "decoder": None, "model": model}
        path = tmp_path / f"v{case}.json"
        path.write_text(json.dumps(tj))
        tok = tokenizers.Tokenizer.from_file(str(path))
        inputs = ["".join(rng.choice(alphabet + ["x", "y", "<unk>"]) for _ in range(rng.randint(1, 12)))
                  for _ in range(200)]
        ref = []
        for s in inputs:
            try:
                ref.append([t.id for t in tok.model.tokenize(s)])
            except Exception:
                ref.append("error")
        ours = [o if isinstance(o, list) else "error" for o in run_tool(["unigram", str(path)], inputs)]
        compare(f"synthetic vocab {case}", inputs, ours, ref)


# ---------------------------------------------------------------------------------------------
# SentencePiece's own pipeline


def test_sentencepiece_encode(model_file, texts):
    sp = spm.SentencePieceProcessor(model_file=model_file)
    inputs = TORTURE + texts + random_texts(5000)
    compare(f"sentencepiece normalize {os.path.basename(model_file)}", inputs,
            run_tool(["spm-normalize", model_file], inputs), [sp.normalize(s) for s in inputs])
    compare(f"sentencepiece encode {os.path.basename(model_file)}", inputs, run_tool(["spm", model_file], inputs),
            sp.encode(inputs))


# ---------------------------------------------------------------------------------------------
# model folder with spm.model only (the legacy path): what AutoTokenizer builds


def folder_variants(tmp_path):
    deb = os.path.join(SHARED, "models", DEBERTA_DIRS[0])
    spm_file = os.path.join(deb, "spm.model")
    out = {}
    seen = set()
    for d in DEBERTA_DIRS:
        p = os.path.join(SHARED, "models", d)
        if not os.path.exists(os.path.join(p, "spm.model")):
            continue
        key = tuple(open(os.path.join(p, f), "rb").read() if os.path.exists(os.path.join(p, f)) else None
                    for f in ("spm.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"))
        if key in seen:
            log(f"{d}: same tokenizer files as a folder already tested, not repeated")
            continue
        seen.add(key)
        out[d] = p

    def make(name, model, files):
        p = tmp_path / name
        p.mkdir()
        os.symlink(model, p / "spm.model")
        (p / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))  # for AutoTokenizer
        for fn, content in files.items():
            (p / fn).write_text(json.dumps(content))
        out[name] = str(p)

    if os.path.exists(spm_file):
        make("spm-only", spm_file, {})
        make("lower-punct", spm_file, {"tokenizer_config.json": {"do_lower_case": True, "split_by_punct": True,
                                                                 "tokenizer_class": "DebertaV2Tokenizer"}})
        make("special-dicts", spm_file, {
            "tokenizer_config.json": {"tokenizer_class": "DebertaV2Tokenizer", "mask_token": "[MASK]",
                                      "cls_token": "[CLS]"},
            "special_tokens_map.json": {"unk_token": {"content": "[UNK]", "lstrip": False, "normalized": True,
                                                      "rstrip": False, "single_word": False},
                                        "mask_token": {"content": "[MASK]", "lstrip": True, "normalized": False,
                                                       "rstrip": False, "single_word": False}},
            "added_tokens.json": {"[MASK]": 128000, "<extra>": 128001}})
        make("additional-special", spm_file, {
            "tokenizer_config.json": {"tokenizer_class": "DebertaV2Tokenizer",
                                      "additional_special_tokens": ["<extra1>", "[SEP]"]},
            "special_tokens_map.json": {"additional_special_tokens": [
                {"content": "<extra2>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False},
                "<extra3>"]}})
        with open(os.path.join(deb, "tokenizer_config.json")) as f:
            base_cfg = json.load(f)
        saved = dict(base_cfg)
        saved["added_tokens_decoder"] = {
            "0": {"content": "[PAD]", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            "3": {"content": "[UNK]", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False, "special": True},
            "128000": {"content": "[MASK]", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            "128001": {"content": "<new>", "lstrip": False, "normalized": True, "rstrip": True, "single_word": False, "special": False},
        }
        make("added-tokens-decoder", spm_file, {"tokenizer_config.json": saved})
    if os.path.exists(TEST_MODEL):
        make("fixture-no-cls", TEST_MODEL, {"tokenizer_config.json": {"tokenizer_class": "DebertaV2Tokenizer"}})
    return out


def test_folder_json_equals_autotokenizer(tmp_path):
    from transformers import AutoTokenizer

    variants = folder_variants(tmp_path)
    if QUICK:
        variants = {k: v for k, v in variants.items() if k in (DEBERTA_DIRS[0], "added-tokens-decoder", "fixture-no-cls")}
    sample = TORTURE + dataset_texts()[::200] + ["a <new> b [MASK] c <extra> [UNK] [CLS]",
                                                  "x <extra1> y <extra2>z  <extra3> w"]
    for name, d in variants.items():
        tok = AutoTokenizer.from_pretrained(d)
        ref = json.loads(tok.backend_tokenizer.to_str())
        p = subprocess.run([TOOL, "folder-json", d], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.returncode == 0, p.stderr.decode()
        ours = json.loads(p.stdout)
        for k in ("added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model"):
            assert ours[k] == ref[k], (name, k, json.dumps(ours[k])[:400], json.dumps(ref[k])[:400])
        a = tokenizers.Tokenizer.from_str(json.dumps(ours))
        ea = [e.ids for e in a.encode_batch(sample)]
        eb = [tok(s)["input_ids"] for s in sample]
        compare(f"folder {name}: our tokenizer.json under HF vs AutoTokenizer", sample, ea, eb)
