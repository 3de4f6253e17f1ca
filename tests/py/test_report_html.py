"""The HTML report is self-contained and renders in headless Chromium: no console errors, the
charts (inline SVG) and the gate table present in the rendered DOM."""
import json
import shutil
import subprocess

from conftest import run_cli


def chromium():
    for c in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(c):
            return shutil.which(c)
    return None


def test_report_renders(minilm, shared_dir, tmp_path):
    exe = chromium()
    assert exe, "chromium is not installed (scripts/setup.sh installs Debian's chromium)"
    rep = tmp_path / "rep"
    p = run_cli("eval", "--model", minilm, "--baseline", minilm, "--dataset", "stsb", "--max-samples", "30",
                "--latency-requests", "5", "--min-speedup", "0", "--target-size-mb", "100", "--report-dir", str(rep),
                "--json", "--threads", "1")
    doc = json.loads(p.stdout)
    assert doc["quality_gates"]["passed"] is True
    html = (rep / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                        "--dump-dom", f"file://{rep / 'report.html'}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert 'id="chart-accuracy-size"' in dom and 'id="chart-latency"' in dom and 'id="gates"' in dom
    assert dom.count("<circle") >= 1 and dom.count('class="bar"') >= 3
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    assert not console, console
    for rel in ("summary.md", "testing_summary.json", "comparisons", "test_results"):
        assert (rep / rel).exists()
