"""The pipeline end to end on tiny real-config models and real data: outputs, dry-run, resume,
lock, config errors, and crash safety (SIGKILL at 30+ random moments: nothing corrupt or
half-written, and the rerun completes with the same results)."""
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import BIN, SHARED, SOURCE_DIR, require_shared, run_cli



@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require_shared()
    root = tmp_path_factory.mktemp("pl")
    fx = root / "fx"
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(fx),
                    "--shared", SHARED, "--only", "bert-cls,bert-embed"], check=True, capture_output=True)
    cfg = root / "pl.yaml"
    cfg.write_text(f"""
models:
  - name: tiny-embed
    hf_name: {fx}/bert-embed-st
    quantization: {{bits: 8, group_size: 64, dtype: float32, target_size_mb: 100, max_accuracy_drop: 0.5, min_speedup: 0}}
    benchmarks: [sts, sts_again]
  - name: tiny-embed-alias
    hf_name: {fx}/bert-embed-st
    quantization: {{bits: 8, group_size: 64, dtype: float32, target_size_mb: 100, max_accuracy_drop: 0.5, min_speedup: 0}}
    benchmarks: [sts]
  - name: tiny-nli
    hf_name: {fx}/bert-cls-st
    quantization: {{bits: 4, group_size: 32, dtype: float32, max_accuracy_drop: 0.5, min_speedup: 0}}
    benchmarks: [mnli]
  - name: absent
    hf_name: nobody/not-here
    benchmarks: [mnli]
datasets:
  sts: {{name: glue, subset: stsb, task: semantic-similarity, max_samples: 40}}
  sts_again: {{name: glue, subset: stsb, task: semantic-similarity, max_samples: 40}}
  mnli: {{name: glue, subset: mnli, task: nli, max_samples: 40}}
""")
    return root, cfg


def run_pl(cfg, wd, *extra, check=False, **kw):
    return run_cli("pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "3", "--threads", "1",
                   *extra, check=check, **kw)


def metrics_of(wd):
    out = {}
    for f in sorted(glob.glob(os.path.join(wd, "results", "*.json"))):
        ev = json.load(open(f))["evaluation"]
        c = ev["converted"]
        out[os.path.basename(f)] = (c.get("accuracy"), c.get("spearman"), ev.get("original", {}).get("accuracy"))
    return out


def check_consistent(wd):
    """Every final file is whole: results parse, converted models are complete."""
    for f in glob.glob(os.path.join(wd, "results", "*.json")):
        if os.path.basename(f).startswith("."):
            continue
        doc = json.load(open(f))
        assert "settings_key" in doc and "evaluation" in doc, f
    for d in glob.glob(os.path.join(wd, "models", "*")):
        if os.path.basename(d).startswith("."):
            continue
        for need in ("config.json", "conversion_metadata.json"):
            assert os.path.exists(os.path.join(d, need)), (d, need)
        json.load(open(os.path.join(d, "conversion_metadata.json")))
    for f in glob.glob(os.path.join(wd, "jobs", "*.json")):
        json.load(open(f))


def test_end_to_end(setup):
    root, cfg = setup
    wd = root / "wd"
    p = run_pl(cfg, wd, "--dry-run")
    assert p.returncode == 0 and not wd.exists(), "dry-run must not touch the disk"
    assert "not available locally" in p.stdout
    p = run_pl(cfg, wd)
    assert p.returncode == 0, p.stderr
    check_consistent(wd)
    for rel in ("testing_summary.json", "summary.md", "reports/report.html",
                "comparisons/tiny-embed_q8_sts_comparison.json", "comparisons/tiny-embed_q8_sts_again_comparison.json",
                "comparisons/tiny-embed-alias_q8_sts_comparison.json", "comparisons/tiny-nli_q4_mnli_comparison.json",
                "test_results/tiny-embed_results.json"):
        assert (wd / rel).exists(), rel
    # converted once for both names, evaluated once for both dataset keys
    assert len(glob.glob(str(wd / "models" / "tiny-embed*"))) == 1
    assert len(glob.glob(str(wd / "results" / "eval-tiny-embed*.json"))) == 1
    st = json.loads(run_cli("status", "--workdir", str(wd), "--json").stdout)
    assert st["failed"] == 0 and st["skipped"] >= 2
    # rerun: everything up to date
    p = run_pl(cfg, wd)
    assert p.returncode == 0
    assert "up to date" in p.stderr
    # the lock: a second pipeline on the same folder is refused clearly
    import fcntl
    with open(wd / ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = run_pl(cfg, wd)
        assert p.returncode == 3 and "another mlxport pipeline" in p.stderr


def test_config_errors(setup, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: a/b\n    hf_name: x\n    benchmarks: [nope]\n")
    p = run_cli("pipeline", "--config", str(bad), "--dry-run", check=False)
    assert p.returncode == 2
    assert f"{bad}:2:" in p.stderr and "folder name" in p.stderr and "not a defined dataset" in p.stderr


def test_sigkill_anywhere(setup):
    root, cfg = setup
    ref = root / "ref"
    t0 = time.time()
    assert run_pl(cfg, ref).returncode == 0
    full = time.time() - t0  # how long the whole job takes on this machine
    expected = metrics_of(ref)
    wd = root / "killed"
    rng = random.Random(1234)
    kills = 0
    for attempt in range(200):
        # every other run redoes all work (--no-skip) so that a kill always lands in the middle of
        # something: conversions, evaluations, result and report writing
        extra = ["--no-skip"] if attempt % 2 == 0 else []
        proc = subprocess.Popen([BIN, "pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "3",
                                 "--threads", "1", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.01, max(0.05, 0.9 * full)))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the pipeline (its jobs die with it), like a crash
            kills += 1
        proc.wait()
        check_consistent(wd)
        if kills >= 30:
            break
    assert kills >= 30
    p = run_pl(cfg, wd)
    assert p.returncode == 0, p.stderr
    check_consistent(wd)
    assert metrics_of(wd) == expected
    assert not glob.glob(str(wd / "**" / ".*.tmp*"), recursive=True)


def test_status_shows_a_dead_pipelines_job_as_interrupted(tmp_path):
    """A job recorded as running whose pipeline died (kill -9: nobody holds the folder's lock) is
    "interrupted"; while a process holds the lock, it is "running"."""
    import fcntl
    wd = tmp_path / "wd"
    (wd / "jobs").mkdir(parents=True)
    (wd / "jobs" / "convert-x.json").write_text(json.dumps({"id": "convert-x", "state": "running", "seconds": 1.5}))
    (wd / "jobs" / "eval-x.json").write_text(json.dumps({"id": "eval-x", "state": "done", "seconds": 2}))
    st = json.loads(run_cli("status", "--workdir", str(wd), "--json").stdout)
    assert st["pipeline_running"] is False and st["interrupted"] == 1 and st["running"] == 0
    assert {j["id"]: j["state"] for j in st["jobs"]} == {"convert-x": "interrupted", "eval-x": "done"}
    assert "interrupted" in run_cli("status", "--workdir", str(wd)).stdout
    with open(wd / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        st = json.loads(run_cli("status", "--workdir", str(wd), "--json").stdout)
        assert st["pipeline_running"] is True and st["running"] == 1 and st["interrupted"] == 0
