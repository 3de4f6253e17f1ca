"""The pipeline's GPU scheduling through the CLI (docs/cuda.md "Pipeline"), without a GPU: the plan
shows each GPU evaluation's device and GPU memory estimate and each device's budget
(gpu_memory_mb, --gpu-memory-mb, or none); a GPU evaluation larger than the budget fails with the
reason while the CPU model beside it is evaluated; `mlxport status` (text and --json) shows the
device and the estimate; gpu_memory_mb errors name the field; `mlxport version --kernels` / --json
say whether this build has the CUDA backend and which GPUs it sees, or why none. The admission
decision itself is unit-tested in tests/c/test_pipeline_gpu.c."""
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import SHARED, SOURCE_DIR, require_shared, run_cli


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require_shared()
    root = tmp_path_factory.mktemp("plgpu")
    fx = root / "fx"
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(fx),
                    "--shared", SHARED, "--only", "bert-cls"], check=True, capture_output=True)
    models = f"""
models:
  - name: nli-gpu
    hf_name: {fx}/bert-cls-st
    device: cuda:0
    quantization: {{bits: 8, group_size: 64, dtype: float32, max_accuracy_drop: 0.5, min_speedup: 0}}
    benchmarks: [mnli]
  - name: nli-cpu
    hf_name: {fx}/bert-cls-st
    quantization: {{bits: 4, group_size: 32, dtype: float32, max_accuracy_drop: 0.5, min_speedup: 0}}
    benchmarks: [mnli]
datasets:
  mnli: {{name: glue, subset: mnli, task: nli, max_samples: 20, preprocessing: {{max_length: 64}}}}
"""
    cfg = root / "pl.yaml"
    cfg.write_text("gpu_memory_mb: 5000\n" + models)
    cfg_none = root / "pl-none.yaml"
    cfg_none.write_text(models)
    return root, cfg, cfg_none


def run_pl(cfg, wd, *extra, check=False):
    return run_cli("pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "2", "--threads", "2",
                   *extra, check=check)


def test_plan_shows_device_estimate_and_budget(setup):
    root, cfg, cfg_none = setup
    wd = root / "wd-plan"
    p = run_pl(cfg, wd, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert not wd.exists()
    assert "GPU cuda:0: memory budget 5000 MB (gpu_memory_mb)" in p.stdout
    lines = {l.split()[0]: l for l in p.stdout.splitlines() if l.startswith("  eval-")}
    gpu = [l for k, l in lines.items() if k.startswith("eval-nli-gpu")]
    cpu = [l for k, l in lines.items() if k.startswith("eval-nli-cpu")]
    assert len(gpu) == 1 and len(cpu) == 1, p.stdout
    m = re.search(r"on cuda:0, GPU memory ~(\d+) MB \(estimate\)", gpu[0])
    assert m, gpu[0]
    est = int(m.group(1))
    assert 512 < est < 5000, est  # a tiny model: the fixed margin dominates
    assert "cuda" not in cpu[0]
    # --gpu-memory-mb wins over the configuration's
    p = run_pl(cfg, wd, "--dry-run", "--gpu-memory-mb", "1234")
    assert "GPU cuda:0: memory budget 1234 MB (gpu_memory_mb)" in p.stdout
    p = run_pl(cfg, wd, "--dry-run", "--gpu-memory-mb", "-5")
    assert p.returncode == 2 and "--gpu-memory-mb" in p.stderr
    # nothing configured: the GPU's memory x 0.9 when one can be asked, else one job at a time
    p = run_pl(cfg_none, wd, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert ("GPU cuda:0: no memory budget" in p.stdout and "one GPU job at a time" in p.stdout) or \
        "(0.9 x the device's memory)" in p.stdout, p.stdout


def test_too_large_fails_with_reason_cpu_job_runs(setup):
    root, cfg, _ = setup
    wd = root / "wd-run"
    p = run_pl(cfg, wd, "-j", "2", "--gpu-memory-mb", "100")
    assert p.returncode == 3, p.stderr  # a job failed
    jobs = {os.path.basename(f)[:-5]: json.load(open(f)) for f in (wd / "jobs").glob("*.json")}
    gpu = [j for k, j in jobs.items() if k.startswith("eval-nli-gpu")]
    cpu = [j for k, j in jobs.items() if k.startswith("eval-nli-cpu")]
    assert len(gpu) == 1 and len(cpu) == 1, jobs.keys()
    g = gpu[0]
    assert g["state"] == "failed"
    assert re.fullmatch(r"needs about \d+ MB of GPU memory on cuda:0, the budget is 100 MB \(gpu_memory_mb\)",
                        g["reason"]), g["reason"]
    assert g["device"] == "cuda:0" and g["est_gpu_mb"] > 100
    assert cpu[0]["state"] in ("done", "gate failed"), cpu[0]
    assert "device" not in cpu[0] and "est_gpu_mb" not in cpu[0]
    # status: text and --json
    st = run_cli("status", "--workdir", str(wd)).stdout
    line = [l for l in st.splitlines() if "eval-nli-gpu" in l][0]
    assert re.search(r"\[cuda:0, GPU ~\d+ MB\] needs about", line), line
    sj = json.loads(run_cli("status", "--workdir", str(wd), "--json").stdout)
    row = [j for j in sj["jobs"] if j["id"].startswith("eval-nli-gpu")][0]
    assert row["device"] == "cuda:0" and row["est_gpu_mb"] == g["est_gpu_mb"]
    assert all("device" not in j for j in sj["jobs"] if not j["id"].startswith("eval-nli-gpu"))


def test_gpu_memory_mb_errors(tmp_path):
    for text, needle in (("gpu_memory_mb: -1\n", ":1:16: gpu_memory_mb must be a positive number of megabytes"),
                         ("gpu_memory_mb: big\n", ":1:16: gpu_memory_mb must be a number of megabytes"),
                         ("defaults: {gpu_memory_mb: true}\n", ":1:27: defaults.gpu_memory_mb must be a number of megabytes")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        p = run_cli("pipeline", "--config", str(bad), "--dry-run", check=False)
        assert p.returncode == 2, text
        assert f"{bad}{needle}" in p.stderr, p.stderr


def test_version_reports_cuda():
    """version --json: "cuda" says built or not and lists the GPUs, or the reason there are none; the
    text form has a "cuda:" line saying the same (this machine has no usable GPU)."""
    v = json.loads(run_cli("version", "--json").stdout)["cuda"]
    assert isinstance(v["built"], bool) and isinstance(v["devices"], list)
    text = run_cli("version", "--kernels").stdout
    if not v["built"]:
        assert v["devices"] == [] and "built without CUDA (cmake -DMP_CUDA=ON)" in v["error"]
        assert "cuda: not built (cmake -DMP_CUDA=ON)" in text
    elif not v["devices"]:
        assert "CUDA: no usable GPU" in v["error"]
        assert "cuda: built; no GPU usable: CUDA: no usable GPU" in text
    else:
        assert all(d["name"] and d["memory_bytes"] > 0 for d in v["devices"]) and "error" not in v
        assert re.search(r"cuda: built; \d+ GPUs?\n  cuda:0 ", text)
