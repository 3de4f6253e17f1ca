"""Shared pytest fixtures: where the CLI, the sources, the shared data and the real model are."""
import glob
import os
import subprocess

import pytest

SOURCE_DIR = os.environ.get("MP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("MP_BIN", os.path.join(SOURCE_DIR, "build", "mlxport"))


def _locate_test_data():
    """The third-party test data folder by the one rule of scripts/test-data.sh (MP_SHARED_DIR when
    `make test` / CTest already resolved it), or None."""
    d = os.environ.get("MP_SHARED_DIR")
    if d:
        return d
    r = subprocess.run(["bash", os.path.join(SOURCE_DIR, "scripts", "test-data.sh"), "locate"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


_FOUND = _locate_test_data()
SHARED = _FOUND or os.path.join(SOURCE_DIR, "..", "shared")


def require_shared():
    """Fails (never skips) the calling test when the test data folder is absent: `make test`
    provides it or stops first (scripts/test-data.sh)."""
    if not _FOUND or not os.path.isdir(SHARED):
        pytest.fail("no third-party test data folder: set MLXPORT_TEST_DATA, put ../shared beside the "
                    "checkout, or run `make test` online to fetch it (docs/testing.md)", pytrace=False)
    return SHARED


def hub_cache():
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache")), "huggingface", "hub")


def minilm_dir():
    snaps = glob.glob(os.path.join(hub_cache(), "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*"))
    return snaps[0] if snaps else None


@pytest.fixture
def shared_dir():
    return require_shared()


@pytest.fixture
def minilm():
    d = minilm_dir()
    if not d:
        pytest.fail("all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models", pytrace=False)
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


# ---- no silent skips (docs/testing.md): every skipped or xfailed test is written, with its reason, to
# $MP_SKIP_DIR (CTest sets it), which `make test` summarises and checks against tests/skip-allowlist.txt;
# a file whose tests all skipped exits 77, CTest's skip code, instead of passing.
def pytest_runtest_logreport(report):
    if not report.skipped or (report.when == "teardown"):
        return
    if hasattr(report, "wasxfail"):
        reason = "xfail: " + (report.wasxfail or "")
    elif isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    else:
        reason = str(report.longrepr)
    test = "py/" + os.path.basename(report.fspath).removesuffix(".py")
    line = f"{test}\t{report.nodeid.split('::', 1)[-1]}\t{' '.join(reason.split())}\n"
    print(f"\nSKIPPED {report.nodeid}: {reason}")
    d = os.environ.get("MP_SKIP_DIR")
    if d:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, test.replace("/", "_") + ".tsv"), "a", encoding="utf-8") as f:
            f.write(line)


def pytest_sessionfinish(session, exitstatus):
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:
        return
    passed = len(tr.stats.get("passed", [])) + len(tr.stats.get("xpassed", []))
    failed = len(tr.stats.get("failed", [])) + len(tr.stats.get("error", []))
    skipped = len(tr.stats.get("skipped", [])) + len(tr.stats.get("xfailed", []))
    if passed == 0 and failed == 0 and skipped > 0:
        session.exitstatus = 77
