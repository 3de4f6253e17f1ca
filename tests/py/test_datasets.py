"""src/eval/dataset*.c on the real shared files, on ANLI / FEVER-NLI files written here in their
published schemas, and on malformed files. The Python side parses every file independently
(csv with QUOTE_NONE for STS-B, json for JSON Lines) and the rows are compared one by one;
row counts and label distributions are the ones stated in ../shared/datasets/SOURCES.md.
The C loader is reached through tools/c/dataset_dump.c."""
import collections
import csv
import json
import os
import subprocess

import pytest

from conftest import SHARED, require_shared

SRC = os.environ.get("MP_SOURCE_DIR", ".")
BUILD = os.environ.get("MP_BUILD_DIR", "build")
TOOL = os.path.join(BUILD, "dataset_dump")
DS = os.path.join(SHARED, "datasets")


def need_shared():
    require_shared()


def dump(*args, ok=True):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, encoding="utf-8")
    if ok:
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    assert r.returncode != 0, "expected a failure"
    return r.stderr.strip()


def read_tsv(path, quoting=csv.QUOTE_NONE, header=True, bom=False):
    with open(path, encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=quoting))
    return (rows[0], rows[1:]) if header else (None, rows)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


# ----------------------------------------------------------------- real shared files

def test_sst2():
    need_shared()
    hdr, rows = read_tsv(os.path.join(DS, "sst2/dev.tsv"))
    assert hdr == ["sentence", "label"]
    info, ex = dump("--key", "sst2", "--path", os.path.join(DS, "sst2/dev.tsv"))
    assert info["labels"] == ["negative", "positive"]  # the dataset's defined order
    assert info["n"] == len(rows) == 872
    for e, r in zip(ex, rows):
        assert e["a"] == r[0] and e["label"] == int(r[1])
    c = collections.Counter(e["label"] for e in ex)
    assert c == {1: 444, 0: 428}  # SOURCES.md: 444 positive, 428 negative
    assert ex[0]["a"] == "it 's a charming and often affecting journey . " and ex[0]["line"] == 2


def test_stsb_glue_quoting_off():
    need_shared()
    hdr, rows = read_tsv(os.path.join(DS, "stsb/dev.tsv"))
    assert len(hdr) == 10
    info, ex = dump("--key", "stsb", "--path", os.path.join(DS, "stsb/dev.tsv"))
    assert info["has_score"] == 1 and info["n"] == len(rows) == 1500
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], e["score"], e["label"]) == (r[7], r[8], float(r[9]), -1)
    scores = [e["score"] for e in ex]
    assert min(scores) == 0.0 and max(scores) == 5.0
    assert abs(sum(scores) / len(scores) - 2.364) < 5e-4  # SOURCES.md: mean 2.364
    # the row with index 764 starts with an unbalanced quote: read verbatim (quoting off)
    assert ex[764]["a"].startswith('"The grass family') and ex[764]["score"] == 1.4


def test_stsb_original_headerless():
    need_shared()
    _, rows = read_tsv(os.path.join(DS, "stsb/original/sts-dev.tsv"), header=False)
    info, ex = dump("--key", "stsb_original", "--path", os.path.join(DS, "stsb/original/sts-dev.tsv"))
    assert info["n"] == len(rows) == 1500
    assert sum(len(r) == 9 for r in rows) == 22  # SOURCES.md: 22 rows carry two extra columns
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], e["score"]) == (r[5], r[6], float(r[4]))
    # the same 1500 pairs and scores as the GLUE copy
    _, glue = dump("--key", "stsb", "--path", os.path.join(DS, "stsb/dev.tsv"))
    assert [(e["a"], e["b"], e["score"]) for e in ex] == [(e["a"], e["b"], e["score"]) for e in glue]


def test_qnli():
    need_shared()
    hdr, rows = read_tsv(os.path.join(DS, "qnli/dev.tsv"))
    info, ex = dump("--key", "qnli", "--path", os.path.join(DS, "qnli/dev.tsv"))
    assert info["labels"] == ["entailment", "not_entailment"]
    assert info["n"] == len(rows) == 5463
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], info["labels"][e["label"]]) == (r[1], r[2], r[3])
    assert collections.Counter(e["label"] for e in ex) == {0: 2702, 1: 2761}


def test_mrpc_with_bom():
    need_shared()
    with open(os.path.join(DS, "mrpc/dev.tsv"), "rb") as f:
        assert f.read(3) == b"\xef\xbb\xbf"
    hdr, rows = read_tsv(os.path.join(DS, "mrpc/dev.tsv"), bom=True)
    assert hdr[0] == "Quality"
    info, ex = dump("--key", "mrpc", "--path", os.path.join(DS, "mrpc/dev.tsv"))
    assert info["labels"] == ["not_equivalent", "equivalent"]
    assert info["n"] == len(rows) == 408
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], e["label"]) == (r[3], r[4], int(r[0]))
    assert collections.Counter(e["label"] for e in ex) == {1: 279, 0: 129}


@pytest.mark.parametrize("key,rel,n,counts", [
    ("rte", "rte/val.jsonl", 277, {"entailment": 146, "not_entailment": 131}),
    ("mnli", "mnli/validation_matched/dev.jsonl", 9815, {"entailment": 3479, "neutral": 3123, "contradiction": 3213}),
    ("snli", "snli/validation/dev.jsonl", 9842, {"entailment": 3329, "neutral": 3235, "contradiction": 3278}),
])
def test_jsonl_nli(key, rel, n, counts):
    need_shared()
    rows = read_jsonl(os.path.join(DS, rel))
    info, ex = dump("--key", key, "--path", os.path.join(DS, rel))
    assert info["n"] == len(rows) == n
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], info["labels"][e["label"]]) == (r["premise"], r["hypothesis"], r["label"])
    assert collections.Counter(info["labels"][e["label"]] for e in ex) == counts


def test_folder_resolution():
    need_shared()
    info, ex = dump("--key", "mnli", "--path", os.path.join(DS, "mnli"))
    assert info["path"].endswith("mnli/validation_matched/dev.jsonl") and info["n"] == 9815
    info, _ = dump("--key", "sst2", "--path", os.path.join(DS, "sst2"))
    assert info["path"].endswith("sst2/dev.tsv")
    info, _ = dump("--key", "rte", "--path", os.path.join(DS, "rte"))
    assert info["path"].endswith("rte/val.jsonl")
    info, _ = dump("--key", "stsb_original", "--path", os.path.join(DS, "stsb"))
    assert info["path"].endswith("stsb/original/sts-dev.tsv") and info["n"] == 1500
    info, _ = dump("--key", "stsb", "--path", os.path.join(DS, "stsb"))
    assert info["path"].endswith("stsb/dev.tsv")


def test_sampling_is_seeded_and_reproducible():
    need_shared()
    p = os.path.join(DS, "mnli/validation_matched/dev.jsonl")
    _, full = dump("--key", "mnli", "--path", p)
    _, a = dump("--key", "mnli", "--path", p, "--max-samples", 100, "--seed", 42)
    _, b = dump("--key", "mnli", "--path", p, "--max-samples", 100, "--seed", 42)
    _, c = dump("--key", "mnli", "--path", p, "--max-samples", 100, "--seed", 43)
    assert a == b and a != c and len(a) == 100
    idx = [e["index"] for e in a]
    assert idx == sorted(idx)  # file order kept
    for e in a:
        assert full[e["index"]] == e
    # Python re-implementation of the documented algorithm
    from test_metrics import py_sample
    assert idx == py_sample(len(full), 100, 42)
    _, allx = dump("--key", "mnli", "--path", p, "--max-samples", 0, "--seed", 42)
    assert len(allx) == 9815


# ----------------------------------------------------------------- ANLI / FEVER-NLI in their schemas

ANLI_ROWS = [  # anli_v1.0/R1/dev.jsonl schema (facebookresearch/anli)
    {"uid": "a1", "context": "Idris Sultan (born January 1993) is a Tanzanian actor.", "hypothesis": "Idris Sultan was born in 1993.",
     "label": "e", "model_label": "e", "emturk": False, "genre": "wiki", "reason": "stated", "tag": []},
    {"uid": "a2", "context": "The cat sat.", "hypothesis": "A dog sat.", "label": "c", "model_label": "e",
     "emturk": False, "genre": "wiki", "reason": "cat is not dog", "tag": []},
    {"uid": "a3", "context": "It rained — heavily — in Zürich.", "hypothesis": "Streets were wet.", "label": "n",
     "model_label": "e", "emturk": True, "genre": "news", "reason": "", "tag": []},
]

FEVER_ROWS = [  # nli_fever/dev_fitems.jsonl schema (combine-FEVER-NSMN): query = claim, context = evidence
    {"cid": 1, "fid": "1-0", "query": "Paris is in France.", "context": "Paris is the capital of France .",
     "label": "SUPPORTS"},
    {"cid": 2, "fid": "2-0", "query": "The Moon is made of cheese.", "context": "The Moon is a rocky body .",
     "label": "REFUTES"},
    {"cid": 3, "fid": "3-0", "query": "X likes tea.", "context": "X was born in 1950 .", "label": "NOT ENOUGH INFO"},
    {"cid": 4, "fid": "4-0", "query": "Hidden claim.", "context": "Hidden evidence .", "label": "hidden"},
]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def test_anli_schema(tmp_path):
    d = tmp_path / "anli_v1.0" / "R1"
    d.mkdir(parents=True)
    write_jsonl(d / "dev.jsonl", ANLI_ROWS)
    info, ex = dump("--key", "anli", "--path", tmp_path / "anli_v1.0", "--config", "R1")
    assert info["labels"] == ["entailment", "neutral", "contradiction"]
    assert [(e["a"], e["b"]) for e in ex] == [(r["context"], r["hypothesis"]) for r in ANLI_ROWS]
    m = {"e": "entailment", "n": "neutral", "c": "contradiction"}
    assert [info["labels"][e["label"]] for e in ex] == [m[r["label"]] for r in ANLI_ROWS]
    # the HF hub schema (premise/hypothesis, integer labels) also loads
    hf = [{"uid": r["uid"], "premise": r["context"], "hypothesis": r["hypothesis"], "label": "enc".index(r["label"]),
           "reason": r["reason"]} for r in ANLI_ROWS]
    write_jsonl(tmp_path / "hf.jsonl", hf)
    _, ex2 = dump("--key", "anli", "--path", tmp_path / "hf.jsonl")
    assert ex2 == ex


def test_fever_nli_schema(tmp_path):
    write_jsonl(tmp_path / "dev_fitems.jsonl", FEVER_ROWS)
    info, ex = dump("--key", "fever_nli", "--path", tmp_path)
    assert info["n"] == 3 and info["n_dropped"] == 1  # "hidden" = no gold label
    assert [(e["a"], e["b"]) for e in ex] == [(r["context"], r["query"]) for r in FEVER_ROWS[:3]]
    m = {"SUPPORTS": "entailment", "NOT ENOUGH INFO": "neutral", "REFUTES": "contradiction"}
    assert [info["labels"][e["label"]] for e in ex] == [m[r["label"]] for r in FEVER_ROWS[:3]]
    # HF hub copy pietrolesci/nli_fever: query renamed to premise, context to hypothesis, integer
    # labels (0 entailment / 1 neutral / 2 contradiction); read back in the original direction
    hf = [{"cid": r["cid"], "fid": r["fid"], "id": r["cid"], "premise": r["query"], "hypothesis": r["context"],
           "verifiable": 1, "fever_gold_label": r["label"], "label": ["SUPPORTS", "NOT ENOUGH INFO", "REFUTES"].index(r["label"])}
          for r in FEVER_ROWS[:3]]
    write_jsonl(tmp_path / "dev.jsonl", hf)
    _, ex2 = dump("--key", "fever_nli", "--path", tmp_path / "dev.jsonl")
    assert [(e["a"], e["b"], e["label"]) for e in ex2] == [(e["a"], e["b"], e["label"]) for e in ex]


def test_hf_integer_labels_minus_one_dropped(tmp_path):
    rows = [{"premise": "p%d" % i, "hypothesis": "h%d" % i, "label": l} for i, l in enumerate([0, 1, 2, -1, 1])]
    write_jsonl(tmp_path / "validation_matched.jsonl", rows)
    info, ex = dump("--key", "mnli", "--path", tmp_path)
    assert info["n"] == 4 and info["n_dropped"] == 1
    assert [e["label"] for e in ex] == [0, 1, 2, 1]


def test_csv_quoting(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('text,label\n"a, ""quoted"" text",positive\n"multi\nline",negative\nplain,positive\n', encoding="utf-8")
    info, ex = dump("--path", p, "--text-a", "text", "--label", "label", "--labels", "negative,positive")
    with open(p, newline="", encoding="utf-8") as f:
        ref = list(csv.DictReader(f))
    assert [e["a"] for e in ex] == [r["text"] for r in ref]
    assert [e["line"] for e in ex] == [2, 3, 5]
    assert [info["labels"][e["label"]] for e in ex] == [r["label"] for r in ref]


# ----------------------------------------------------------------- malformed input

def bad(tmp_path, name, content, *args):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(p), dump("--path", p, *args, ok=False)


SST = ("--key", "sst2")


def test_errors_name_file_and_line(tmp_path):
    p, m = bad(tmp_path, "a.tsv", "sentence\tlabel\ngood\t1\nbad\t7\n", *SST)
    assert f"{p}:3:" in m and "unknown label value '7'" in m
    p, m = bad(tmp_path, "b.tsv", "sentence\tlabel\ngood\t1\nno tab here\n", *SST)
    assert f"{p}:3:" in m and "wrong column count" in m
    p, m = bad(tmp_path, "c.tsv", "text\tlabel\nx\t1\n", *SST)
    assert f"{p}:1:" in m and "no text column 'sentence'" in m
    p, m = bad(tmp_path, "d.tsv", "", *SST)
    assert p in m and "empty file" in m
    p, m = bad(tmp_path, "e.tsv", "sentence\tlabel\n", *SST)
    assert p in m and "empty file" in m
    p, m = bad(tmp_path, "f.tsv", b"sentence\tlabel\nok\t1\ncaf\xe9\t0\n", *SST)
    assert f"{p}:3:" in m and "UTF-8" in m
    p, m = bad(tmp_path, "g.jsonl", '{"premise":"a","hypothesis":"b","label":"neutral"}\n{"premise": "a",\n', "--key", "mnli")
    assert f"{p}:2:" in m and "malformed JSON" in m
    p, m = bad(tmp_path, "h.jsonl", '{"premise":"a","hypothesis":"b","label":"neutral"}\n{"premise":"a","label":"neutral"}\n', "--key", "mnli")
    assert f"{p}:2:" in m and "missing field 'hypothesis|sentence2'" in m
    p, m = bad(tmp_path, "i.jsonl", '{"premise":"a","hypothesis":"b","label":"maybe"}\n', "--key", "mnli")
    assert f"{p}:1:" in m and "unknown label value 'maybe'" in m
    p, m = bad(tmp_path, "j.jsonl", b'{"premise":"caf\xe9","hypothesis":"b","label":"neutral"}\n', "--key", "mnli")
    assert f"{p}:1:" in m and "UTF-8" in m
    p, m = bad(tmp_path, "k.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                                  "0\tg\tf\t2012\t0\tn\tn\ta\tb\tfive\n", "--key", "stsb")
    assert f"{p}:2:" in m and "not a number" in m
    m = dump("--key", "sst2", "--path", tmp_path / "missing.tsv", ok=False)
    assert "missing.tsv" in m and "no such file" in m
    p, m = bad(tmp_path, "l.jsonl", '[1,2]\n', "--key", "mnli")
    assert f"{p}:1:" in m and "expected a JSON object" in m
    p, m = bad(tmp_path, "m.csv", 'text,label\n"never closed,positive\n', "--text-a", "text", "--label", "label",
               "--labels", "negative,positive")
    assert f"{p}:2:" in m and "never closed" in m
