"""mlxport eval end to end on real data: the real all-MiniLM-L6-v2 against its MLX q8/q4
conversions on STS-B dev; NLI and zero-shot mechanics on a random-weight classifier built from
a real config; gates and exit codes; clear errors for bad dataset files. Metric functions are
checked separately against scipy/sklearn (test_metrics.py)."""
import json
import os
import subprocess
import sys

import pytest
from conftest import SHARED, SOURCE_DIR, require_shared, run_cli


SIX = ["accuracy", "qpm", "size_mb", "tokens_per_sec", "memory_avg_mb", "memory_peak_mb", "memory_peak_os_mb",
       "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "load_time_s"]


@pytest.mark.parametrize("bits", [8, 4])
def test_minilm_stsb(minilm, shared_dir, tmp_path, bits):
    out = tmp_path / f"q{bits}"
    run_cli("convert", "--hf-path", minilm, "--mlx-path", str(out), "-q", "--q-bits", str(bits), "--dtype", "float32")
    p = run_cli("eval", "--model", str(out), "--baseline", minilm, "--dataset", "stsb", "--max-samples", "400",
                "--latency-requests", "10", "--min-speedup", "0", "--json", "--threads", "2", check=False)
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(p.stdout)
    conv, orig = doc["converted"], doc["original"]
    for r in (conv, orig):
        for k in SIX:
            assert k in r and r[k] is not None, k
        assert 0.75 <= r["spearman"] <= 0.95 and 0.75 <= r["pearson"] <= 0.95
        lo, hi = r["spearman_ci95"]
        assert lo <= r["spearman"] <= hi
        assert r["n_examples"] == 400
    assert conv["size_mb"] < orig["size_mb"] * (0.35 if bits == 8 else 0.25)
    assert abs(doc["comparison"]["accuracy_drop"]) < (0.01 if bits == 8 else 0.05)


@pytest.fixture(scope="module")
def cls_fixture(tmp_path_factory):
    require_shared()
    fx = tmp_path_factory.mktemp("fx")
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(fx),
                    "--shared", SHARED, "--only", "bert-cls"], check=True, capture_output=True)
    q8 = fx / "q8"
    run_cli("convert", "--hf-path", str(fx / "bert-cls-st"), "--mlx-path", str(q8), "-q", "--q-bits", "8",
            "--dtype", "float32")
    return fx / "bert-cls-st", q8


def test_nli_and_zero_shot_mechanics(cls_fixture, tmp_path):
    orig, q8 = cls_fixture
    p = run_cli("eval", "--model", str(q8), "--baseline", str(orig), "--dataset", "mnli", "--max-samples", "60",
                "--latency-requests", "3", "--min-speedup", "0", "--json", check=False)
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(p.stdout)
    c = doc["converted"]
    assert c["task"] == "nli" and c["labels"] == ["entailment", "neutral", "contradiction"]
    assert sum(map(sum, c["confusion_matrix"])) == 60
    assert 0.9 <= doc["comparison"]["agreement"] <= 1.0 and doc["comparison"]["mean_kl"] >= 0
    # zero-shot SST-2: labels in the dataset's order (negative, positive)
    p = run_cli("eval", "--model", str(q8), "--dataset", "sst2", "--task", "zero-shot-classification",
                "--max-samples", "40", "--latency-requests", "2", "--json")
    c = json.loads(p.stdout)["converted"]
    assert c["labels"] == ["negative", "positive"] and c["task"] == "zero-shot-classification"
    # the same examples for any model: a seeded sample
    p2 = run_cli("eval", "--model", str(orig), "--dataset", "sst2", "--task", "zero-shot-classification",
                 "--max-samples", "40", "--latency-requests", "2", "--json")
    assert json.loads(p2.stdout)["converted"]["n_examples"] == 40


def test_gates_and_errors(cls_fixture, tmp_path):
    orig, q8 = cls_fixture
    p = run_cli("eval", "--model", str(q8), "--baseline", str(orig), "--dataset", "rte", "--max-samples", "20",
                "--latency-requests", "2", "--target-size-mb", "0.001", "--min-speedup", "0", "--json", check=False)
    assert p.returncode == 1
    gates = json.loads(p.stdout)["quality_gates"]
    assert gates["passed"] is False and any(g["name"] == "size_mb" and not g["passed"] for g in gates["gates"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"premise": "a", "hypothesis": "b", "label": "entailment"}\n{"premise": "c", "label": 7}\n')
    p = run_cli("eval", "--model", str(q8), "--dataset", "mnli", "--data-file", str(bad), check=False)
    assert p.returncode == 3 and f"{bad}:2" in p.stderr
    p = run_cli("eval", "--model", str(q8), "--dataset", "no-such-key", check=False)
    assert p.returncode == 3 and ("not available locally" in p.stderr or "no built-in" in p.stderr)


def test_dataset_file_by_path_uses_the_tasks_usual_columns(minilm, shared_dir, tmp_path):
    """A dataset file given by path is read by the usual column names of the task (--task), with no
    field options: MNLI JSONL (premise/hypothesis/label), GLUE STS-B TSV (sentence1/sentence2/score),
    QNLI TSV (question/sentence), SST-2 TSV (sentence/label); without a task the error says what to give."""
    ds = os.path.join(shared_dir, "datasets")

    def ev(path, *extra, model=minilm):
        p = run_cli("eval", "--model", model, "--dataset", os.path.join(ds, path), "--max-samples", "40", "--json",
                    "--latency-requests", "2", *extra)
        return json.loads(p.stdout)["converted"]

    r = ev("stsb/dev.tsv", "--task", "semantic-similarity")
    by_key = ev("stsb/dev.tsv", "--task", "semantic-similarity", "--text-fields", "sentence1,sentence2",
                "--score-field", "score")
    assert r["n_examples"] == 40 and r["spearman"] == by_key["spearman"] and r["task"] == "semantic-similarity"
    nli = os.path.join(os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache")), "models", "nli-minilm-l6-snli")
    r = ev("mnli/validation_matched/dev.jsonl", "--task", "nli", model=nli)
    assert r["n_examples"] == 40 and 0 <= r["accuracy"] <= 1 and r["labels"] == ["entailment", "neutral", "contradiction"]
    r = ev("qnli/dev.tsv", "--task", "binary-nli", model=nli)
    assert r["n_examples"] == 40 and r["labels"] == ["entailment", "not_entailment"]
    r = ev("sst2/dev.tsv", "--task", "zero-shot-classification", "--label-names", "negative,positive", model=nli)
    assert r["n_examples"] == 40 and r["labels"] == ["negative", "positive"]
    p = run_cli("eval", "--model", nli, "--dataset", os.path.join(ds, "sst2/dev.tsv"), check=False)
    assert p.returncode == 2 and "--task" in p.stderr and "--text-fields" in p.stderr
