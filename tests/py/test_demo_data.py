"""The embedded demo evaluation set (data/demo/): each file parses with Python's own csv/json
exactly as the real benchmark files do, has the counts and label balance data/demo/README.md
states, no duplicates, valid UTF-8, scores in range; when the shared data folder is present, the
layout matches the real files and no text was copied from them."""
import collections
import csv
import json
import os
import re

import pytest
from conftest import SHARED, SOURCE_DIR, require_shared, run_cli

DEMO = os.path.join(SOURCE_DIR, "data", "demo")
MNLI = os.path.join(DEMO, "mnli", "validation_matched", "dev.jsonl")
STSB = os.path.join(DEMO, "stsb", "dev.tsv")
SST2 = os.path.join(DEMO, "sst2", "dev.tsv")
STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2", "score"]
NLI_LABELS = ("entailment", "neutral", "contradiction")


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")  # raises on invalid UTF-8
    assert not text.startswith("\ufeff"), f"{path}: byte order mark"
    assert "\r" not in text, f"{path}: CR line endings"
    assert text.endswith("\n"), f"{path}: last line has no newline"
    return text


def read_tsv(path):
    read_text(path)
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def load_mnli():
    rows = []
    for i, line in enumerate(read_text(MNLI).split("\n")[:-1], 1):
        assert line.strip(), f"{MNLI}:{i}: empty line"
        obj = json.loads(line)
        assert list(obj) == ["premise", "hypothesis", "label"], f"{MNLI}:{i}: keys {list(obj)}"
        rows.append(obj)
    return rows


def clean_sentence(s, where):
    assert s == s.strip() and s, f"{where}: empty or padded sentence {s!r}"
    assert "\t" not in s and '"' not in s, f"{where}: tab or double quote in {s!r}"
    assert "  " not in s, f"{where}: double space in {s!r}"


def test_mnli_counts_balance_and_text():
    rows = load_mnli()
    assert len(rows) == 300
    assert collections.Counter(r["label"] for r in rows) == {l: 100 for l in NLI_LABELS}
    pairs = [(r["premise"], r["hypothesis"]) for r in rows]
    assert len(set(pairs)) == len(pairs), "duplicate pair"
    hyps = [r["hypothesis"] for r in rows]
    assert len(set(hyps)) == len(hyps), "duplicate hypothesis"
    for i, r in enumerate(rows, 1):
        for k in ("premise", "hypothesis"):
            clean_sentence(r[k], f"{MNLI}:{i}")
            assert r[k][0].isupper() and r[k][-1] in ".!?", f"{MNLI}:{i}: not a sentence: {r[k]!r}"
        assert r["premise"] != r["hypothesis"]
    # MNLI style: each premise carries one hypothesis of each label.
    by_premise = collections.defaultdict(list)
    for r in rows:
        by_premise[r["premise"]].append(r["label"])
    assert len(by_premise) == 100
    assert all(sorted(v) == sorted(NLI_LABELS) for v in by_premise.values())


def test_stsb_layout_counts_and_scores():
    rows = read_tsv(STSB)
    assert rows[0] == STSB_HEADER
    body = rows[1:]
    assert len(body) == 200
    seen = set()
    for i, r in enumerate(body):
        where = f"{STSB}:{i + 2}"
        assert len(r) == 10, f"{where}: {len(r)} columns"
        assert r[0] == str(i), where
        assert r[1] in ("main-captions", "main-news", "main-forums"), where
        assert r[2:4] == ["mlxport-demo", "2026"], where
        assert re.fullmatch(r"\d{4}", r[4]), where
        assert r[5:7] == ["none", "none"], where
        clean_sentence(r[7], where)
        clean_sentence(r[8], where)
        assert re.fullmatch(r"\d\.\d{3}", r[9]), f"{where}: score {r[9]!r}"
        assert 0.0 <= float(r[9]) <= 5.0, where
        key = (r[7], r[8])
        assert key not in seen and r[7] != r[8], f"{where}: duplicate pair"
        seen.add(key)
    scores = [float(r[9]) for r in body]
    # spread over the whole scale: every unit interval [k, k+1) holds at least 15 pairs
    per_bin = collections.Counter(min(int(s), 4) for s in scores)
    assert all(per_bin[k] >= 15 for k in range(5)), per_bin
    assert min(scores) == 0.0 and max(scores) == 5.0
    assert len({r[1] for r in body}) == 3
    # (genre, old_index) is unique like the original ids
    assert len({(r[1], r[4]) for r in body}) == len(body)


def test_sst2_layout_balance_and_tokenization():
    rows = read_tsv(SST2)
    assert rows[0] == ["sentence", "label"]
    body = rows[1:]
    assert len(body) == 200
    assert collections.Counter(r[1] for r in body) == {"0": 100, "1": 100}
    sents = [r[0] for r in body]
    assert len(set(sents)) == len(sents), "duplicate sentence"
    for i, (s, _) in enumerate(body, 2):
        where = f"{SST2}:{i}"
        # GLUE SST-2: lowercase, tokens separated by single spaces, one trailing space
        assert s.endswith(" ") and not s.endswith("  ") and not s.startswith(" "), where
        clean_sentence(s[:-1], where)
        assert s == s.lower(), f"{where}: not lowercase"
        for tok in s.split():
            if re.search(r"[.,!?;:]", tok):
                assert re.fullmatch(r"[.,!?;:]+|\w+(?:[.-]\w+)*", tok), f"{where}: untokenized {tok!r}"
            assert not re.search(r"\w'", tok) or tok.startswith("'") or tok == "n't", f"{where}: {tok!r}"


def test_readme_states_the_counts():
    text = read_text(os.path.join(DEMO, "README.md"))
    for needle in ("300", "200", "100 entailment", "100 neutral", "100 contradiction",
                   "100 positive", "100 negative", "fallback"):
        assert needle in text, f"data/demo/README.md does not state {needle!r}"


def shared_datasets():
    d = os.path.join(SHARED, "datasets")
    require_shared()
    return d


def test_layout_matches_real_files_and_text_is_original():
    d = shared_datasets()
    real_stsb = read_tsv(os.path.join(d, "stsb", "dev.tsv"))
    real_sst2 = read_tsv(os.path.join(d, "sst2", "dev.tsv"))
    with open(os.path.join(d, "mnli", "validation_matched", "dev.jsonl"), encoding="utf-8") as f:
        real_mnli = [json.loads(l) for l in f if l.strip()]
    assert read_tsv(STSB)[0] == real_stsb[0]
    assert read_tsv(SST2)[0] == real_sst2[0]
    assert set(real_mnli[0]) >= {"premise", "hypothesis", "label"}
    assert {r["label"] for r in load_mnli()} <= {r["label"] for r in real_mnli}
    # SST-2 rows end with " \t<label>" in the real file too
    assert real_sst2[1][0].endswith(" ")
    # Nothing copied: no demo sentence occurs in the real dev sets (case-insensitive).
    real = set()
    for r in real_stsb[1:]:
        real.update(x.lower().strip() for x in r[7:9])
    real.update(r[0].lower().strip() for r in real_sst2[1:])
    for r in real_mnli:
        real.update((r["premise"].lower().strip(), r["hypothesis"].lower().strip()))
    ours = [s for r in read_tsv(STSB)[1:] for s in r[7:9]] + [r[0] for r in read_tsv(SST2)[1:]]
    ours += [s for r in load_mnli() for s in (r["premise"], r["hypothesis"])]
    copied = sorted({s for s in ours if s.lower().strip() in real})
    assert not copied, f"demo sentences found verbatim in the real dev sets: {copied[:5]}"


def test_c_loader_reads_demo_files_with_builtin_keys():
    """src/eval/dataset*.c (through tools/c/dataset_dump) reads each demo file with the built-in
    key, row for row equal to what Python's csv/json parse."""
    import subprocess
    tool = os.path.join(os.environ.get("MP_BUILD_DIR", os.path.join(SOURCE_DIR, "build")), "dataset_dump")
    if not os.path.exists(tool):
        pytest.fail(f"{tool} not built", pytrace=False)

    def dump(key, path):
        r = subprocess.run([tool, "--key", key, "--path", path], capture_output=True, text=True, encoding="utf-8")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]

    info, ex = dump("mnli", MNLI)
    rows = load_mnli()
    assert info["labels"] == list(NLI_LABELS) and info["n"] == len(rows) and info["n_dropped"] == 0
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], info["labels"][e["label"]]) == (r["premise"], r["hypothesis"], r["label"])

    info, ex = dump("stsb", STSB)
    rows = read_tsv(STSB)[1:]
    assert info["has_score"] == 1 and info["n"] == len(rows)
    for e, r in zip(ex, rows):
        assert (e["a"], e["b"], e["score"], e["label"]) == (r[7], r[8], float(r[9]), -1)

    info, ex = dump("sst2", SST2)
    rows = read_tsv(SST2)[1:]
    assert info["labels"] == ["negative", "positive"] and info["n"] == len(rows)
    for e, r in zip(ex, rows):
        assert (e["a"], e["label"]) == (r[0], int(r[1]))


def test_eval_says_when_the_demo_set_is_used(minilm, tmp_path):
    """Results from data/demo are marked as such (stderr, result JSON, summary.md); real data is not."""
    demo = os.path.join(SOURCE_DIR, "data", "demo")
    p = run_cli("eval", "--model", minilm, "--dataset", "stsb", "--data-dir", demo, "--max-samples", "10",
                "--latency-requests", "0", "--min-speedup", "0", "--report-dir", str(tmp_path / "d"))
    assert "embedded demo set" in p.stderr
    r = json.load(open(tmp_path / "d" / "test_results" / f"{os.path.basename(minilm)}_results.json"))
    assert r["demo_data"] is True and r["data_file"].startswith(demo)
    assert "stsb (demo set)" in open(tmp_path / "d" / "summary.md").read()
    require_shared()
    p = run_cli("eval", "--model", minilm, "--dataset", "stsb", "--data-dir", os.path.join(SHARED, "datasets"),
                "--max-samples", "10", "--latency-requests", "0", "--min-speedup", "0", "--report-dir", str(tmp_path / "r"))
    assert "demo set" not in p.stderr
    r = json.load(open(tmp_path / "r" / "test_results" / f"{os.path.basename(minilm)}_results.json"))
    assert r["demo_data"] is False
    assert "demo set" not in open(tmp_path / "r" / "summary.md").read()
