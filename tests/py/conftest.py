"""Shared pytest fixtures: where the CLI, the sources, the shared data and the real model are."""
import glob
import os
import subprocess

import pytest

SOURCE_DIR = os.environ.get("MP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("MP_BIN", os.path.join(SOURCE_DIR, "build", "mlxport"))
SHARED = os.environ.get("MP_SHARED_DIR", os.path.join(SOURCE_DIR, "..", "shared"))


def hub_cache():
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache")), "huggingface", "hub")


def minilm_dir():
    snaps = glob.glob(os.path.join(hub_cache(), "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*"))
    return snaps[0] if snaps else None


@pytest.fixture
def shared_dir():
    if not os.path.isdir(SHARED):
        pytest.skip(f"shared data folder {SHARED} is absent")
    return SHARED


@pytest.fixture
def minilm():
    d = minilm_dir()
    if not d:
        pytest.skip("all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models")
    return d


def run_cli(*args, input=None, check=True, env=None):
    """Runs mlxport; returns CompletedProcess (text mode).

    The parity tests compare against the MLX-faithful semantics (weights as mx.dequantize gives
    them, float arithmetic), so the model-running commands get --compute faithful here unless the
    test chooses a mode; the fast integer mode is tested with explicit --compute fast
    (tests/py/test_fast_mode.py)."""
    if args and args[0] in ("embed", "classify", "zero-shot") and "--compute" not in args:
        args = (*args, "--compute", "faithful")
    e = dict(os.environ)
    e.setdefault("HF_HUB_CACHE", hub_cache())
    e.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the real Hub (tests/py/test_hub*.py use their own servers)
    if env:
        e.update(env)
    p = subprocess.run([BIN, *args], input=input, capture_output=True, text=True, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"mlxport {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


# ---- parity table: tests record their max |delta| per (model, format, quantity); pytest prints
# the table at the end of the run (also in CTest's log), the numbers behind the closing notes.
PARITY = {}


def record_parity(model, fmt, quantity, err):
    key = (model, fmt, quantity)
    PARITY[key] = max(PARITY.get(key, 0.0), float(err))


def pytest_terminal_summary(terminalreporter):
    if not PARITY:
        return
    tr = terminalreporter
    tr.write_line("")
    tr.write_line("parity vs reference (max |delta|):")
    tr.write_line(f"  {'model':<22} {'format':<10} {'quantity':<10} {'max |delta|':>12}")
    for (model, fmt, q), err in sorted(PARITY.items()):
        tr.write_line(f"  {model:<22} {fmt:<10} {q:<10} {err:12.3g}")
