"""The device path (fused and separate Q/K/V) of every family with separate q/k/v projections, on
the host-memory test backend of tests/c/test_device_host.c, against the CPU path: the
random-weight twins of tools/make_model_fixtures.py (RoBERTa, DistilBERT, MPNet, DeBERTa-v3 x2,
BART, MobileBERT x3) are made here and the C test runs again with MP_TEST_DEVICE_FIXTURES."""
import os
import subprocess
import sys

from conftest import SHARED, SOURCE_DIR

NAMES = ["roberta-cls", "distilbert-cls", "mpnet-cls", "deberta-wp-cls", "deberta-bin-wp-cls", "bart-cls",
         "mobilebert-cls", "mobilebert-var-cls", "mobilebert-nobn-cls"]


def test_device_host_twins(tmp_path):
    assert os.path.isdir(SHARED), f"{SHARED} is absent (the shared data folder): run scripts/setup.sh"
    exe = os.path.join(os.environ.get("MP_BUILD_DIR", os.path.join(SOURCE_DIR, "build")), "test_device_host")
    assert os.path.exists(exe), f"{exe} is not built (cmake --build build)"
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_model_fixtures.py"), str(tmp_path),
                    "--shared", SHARED, "--only", ",".join(NAMES)], check=True, capture_output=True)
    for name in NAMES:
        assert os.path.isdir(tmp_path / f"{name}-st"), f"the {name} twin was not made"
    p = subprocess.run([exe], env={**os.environ, "MP_TEST_DEVICE_FIXTURES": str(tmp_path)}, capture_output=True,
                       text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "ok   test_fixtures" in out, out[-4000:]
    assert "ok   test_fast8_fixtures" in out, out[-4000:]
    print(out.strip().splitlines()[-1])
