"""Pipeline YAML per model: quantization `mode`, `overrides`, `recipe` and `auto: {max_drop,
calibration, ...}` reach `mlxport convert`, each variant gets its own folder and label, bad
values are reported with their line, and the HTML report draws a size-vs-metric chart with the
Pareto front over every variant of a model (tiny random BERT fixture, STS-B samples)."""
import json
import os
import re
import subprocess
import sys

from conftest import SHARED, SOURCE_DIR, require_shared, run_cli


def test_pipeline_variants_and_pareto(tmp_path):
    require_shared()
    fx = tmp_path / "fx"
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(fx),
                    "--shared", SHARED, "--only", "bert-embed"], check=True, capture_output=True)
    src = fx / "bert-embed-st"
    variants = {
        "e-q8": "{bits: 8, dtype: float32, min_speedup: 0}",
        "e-q4": "{bits: 4, dtype: float32, min_speedup: 0}",
        "e-mxfp4": "{mode: mxfp4, dtype: float32, min_speedup: 0}",
        "e-nvfp4": "{mode: nvfp4, dtype: float32, min_speedup: 0}",
        "e-mixed": "{bits: 4, dtype: float32, overrides: ['*.attention.*=8', 'embeddings.*=nvfp4'], "
                   "recipe: keep-edges, min_speedup: 0}",
        "e-auto": "{dtype: float32, min_speedup: 0, auto: {max_drop: 0.05, calibration: stsb, "
                  "calibration_samples: 32, eval_samples: 100}}",
    }
    cfg = tmp_path / "pl.yaml"
    cfg.write_text("models:\n" + "".join(
        f"  - name: {n}\n    hf_name: {src}\n    quantization: {q}\n    benchmarks: [sts]\n" for n, q in variants.items())
        + "datasets:\n  sts: {name: glue, subset: stsb, task: semantic-similarity, max_samples: 40}\n")
    wd = tmp_path / "wd"
    run_cli("pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "2", "--threads", "1",
            "--data-dir", os.path.join(SHARED, "datasets"))
    models = sorted(os.listdir(wd / "models"))
    assert len(models) == len(variants), models
    q = {m: json.load(open(wd / "models" / m / "config.json"))["quantization"] for m in models}
    mx = next(m for m in models if m.startswith("e-mxfp4-mxfp4"))
    assert q[mx]["mode"] == "mxfp4" and q[mx]["group_size"] == 32
    mixed = next(m for m in models if "+mixed-" in m)
    assert q[mixed]["bits"] == 4 and any(isinstance(v, dict) and v["mode"] == "nvfp4" for v in q[mixed].values())
    auto = next(m for m in models if m.startswith("e-auto-auto0.05-"))
    assert json.load(open(wd / "models" / auto / "conversion_metadata.json"))["recipe"]["search"]["held_out"]
    html = open(wd / "reports" / "report.html").read()
    assert html.count('class="chart-pareto"') == 1
    for label in ("original", "q8g64", "q4g64", "mxfp4", "nvfp4", "+mixed-", "auto0.05-"):
        assert re.search(r"<title>[^<]*" + re.escape(label) + r"[^<]*MiB", html), label
    assert 'class="front"' in html and "(Pareto front)" in html


def test_pipeline_quant_errors(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""models:
  - name: a
    hf_name: x/y
    quantization: {mode: fp4}
  - name: b
    hf_name: x/y
    quantization: {overrides: ['classifier=4:16']}
  - name: c
    hf_name: x/y
    quantization: {recipe: keep-middle}
  - name: d
    hf_name: x/y
    quantization: {auto: {calibration: stsb}}
  - name: e
    hf_name: x/y
    quantization: {mode: nvfp4, group_size: 32}
""")
    p = run_cli("pipeline", "--config", str(cfg), "--dry-run", check=False)
    assert p.returncode != 0
    for needle in ('quantization.mode "fp4"', "classifier=4:16", 'quantization.recipe "keep-middle"',
                   "quantization.auto.max_drop is required", "nvfp4 mode takes exactly 4 bits and group size 16"):
        assert needle in p.stderr, (needle, p.stderr)
