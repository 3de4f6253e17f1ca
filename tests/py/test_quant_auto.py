"""`mlxport convert --q-auto` (src/eval/qsearch.c, docs/quantization.md "Recipe search") on the
real all-MiniLM-L6-v2 (calibration: the i % 5 == 0 slice of STS-B dev, held out: the other rows)
and on the project's NLI classifier (calibration: SNLI validation, held out: MNLI-matched): the
recipe found is smaller than uniform q8, its calibration criterion and its held-out drop stay
within the budget, it is recorded in conversion_metadata.json and the card, and
--q-recipe-file re-applies it. Small samples (about 2 minutes on the 2-core VM, ~70 forward passes); the table in
docs/convert.md comes from the full-size runs given there."""
import json
import os

import pytest
from conftest import SOURCE_DIR, require_shared, run_cli

CACHE = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
NLI = os.path.join(CACHE, "models", "nli-minilm-l6-snli")


def weights_bytes(d):
    return os.path.getsize(os.path.join(d, "model.safetensors"))


CASES = {
    "minilm": dict(budget=0.02, args=["--calibration", "stsb", "--calibration-samples", "64", "--eval-samples", "300"],
                   metric="spearman"),
    "nli": dict(budget=0.03, args=["--calibration", "snli", "--eval", "mnli", "--calibration-samples", "128",
                                   "--eval-samples", "300"], metric="accuracy"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_auto_recipe(minilm, tmp_path, case):
    shared = require_shared()
    src = minilm if case == "minilm" else NLI
    assert os.path.exists(os.path.join(src, "model.safetensors")), src
    cfg = CASES[case]
    out, q8 = str(tmp_path / "auto"), str(tmp_path / "q8")
    p = run_cli("convert", "--hf-path", src, "--mlx-path", out, "--q-auto", "--max-drop", str(cfg["budget"]),
                "--data-dir", os.path.join(shared, "datasets"), *cfg["args"], "--json")
    rep = json.loads(p.stdout)
    run_cli("convert", "--hf-path", src, "--mlx-path", q8, "-q", "--q-bits", "8")
    assert weights_bytes(out) < weights_bytes(q8)
    meta = json.load(open(os.path.join(out, "conversion_metadata.json")))
    search = meta["recipe"]["search"]
    assert search == rep["search"]
    assert search["method"] == "greedy" and search["max_drop"] == cfg["budget"]
    cal, held = search["calibration"], search["held_out"]
    assert cal["metric"] == held["metric"] == cfg["metric"]
    assert cal["criterion_drop"] <= cfg["budget"] + 1e-9
    assert held["drop"] <= cfg["budget"], held
    if case == "minilm":
        assert "i % 5 == 0" in cal["slice"] and "i % 5 != 0" in held["slice"] and held["examples"] == 300
    else:
        assert cal["dataset"] == "snli" and held["dataset"] == "mnli"
        assert 0 <= cal["changed_predictions"] <= cal["criterion_drop"] + 1e-9
    print(f"\n{case}: {weights_bytes(out) / 1e6:.2f} MB (q8 {weights_bytes(q8) / 1e6:.2f} MB), calibration "
          f"{cal['float']:.4f} -> {cal['recipe']:.4f}, held-out {held['float']:.4f} -> {held['recipe']:.4f}, "
          f"{search['evaluations']} evaluations")
    card = open(os.path.join(out, "README.md")).read()
    assert "## Quantization recipe" in card and "--q-auto" in card
    front = card.split("---")[1]
    assert "- mixed-precision" in front and "-bit\n" not in front, front  # no single bit-width tag for a mix
    assert "per-layer mixed-precision recipe found by `--q-auto` (default 8 bits)" in card
    again = str(tmp_path / "again")
    run_cli("convert", "--hf-path", src, "--mlx-path", again, "-q", "--q-recipe-file",
            os.path.join(out, "conversion_metadata.json"))
    assert open(os.path.join(out, "model.safetensors"), "rb").read() == \
        open(os.path.join(again, "model.safetensors"), "rb").read()


def test_auto_bad_input(minilm, tmp_path):
    o = str(tmp_path / "o")
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", o, "--q-auto", "--calibration", "stsb", check=False)
    assert p.returncode == 2 and "--q-auto needs --max-drop X and --calibration DATASET" in p.stderr
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", o, "--q-auto", "--max-drop", "0.01", "--calibration",
                "stsb", "--q-override", "classifier=none", check=False)
    assert p.returncode != 0 and "cannot be combined with --q-override" in p.stderr
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", o, "--max-drop", "0.01", check=False)
    assert p.returncode == 2 and "belong to --q-auto" in p.stderr
    p = run_cli("convert", "--hf-path", minilm, "--mlx-path", o, "--q-auto", "--max-drop", "0.01", "--calibration",
                str(tmp_path / "missing.tsv"), check=False)
    assert p.returncode != 0 and "--q-auto: dataset" in p.stderr
    assert not os.path.exists(o)
