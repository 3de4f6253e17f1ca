"""Hub download benchmark: one repo of about SIZE MB (random LFS shards + a config) served by the
project's local Hub server (tests/py/hub_server.py in its own process, 127.0.0.1, LFS files
redirected to a CDN port), downloaded into a fresh cache by `mlxport download`, by
`huggingface_hub.snapshot_download` and by `hf download`; wall time and peak RSS (GNU time's %M)
of each, median of RUNS runs taken in turn.

    cmake --build build && .cache/venv/bin/python bench/bench_hub.py --size-mb 500 --shards 4 --runs 3
"""
import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env):
    p = subprocess.run(["/usr/bin/time", "-f", "MPTIME %e %M", *cmd], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), p.stderr[-2000:]))
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("MPTIME ")][-1].split()
    return float(line[1]), float(line[2]) / 1024.0


def verify(cache, repo_id, sha, src):
    snap = os.path.join(cache, "models--" + repo_id.replace("/", "--"), "snapshots", sha)
    for fn in os.listdir(src):
        with open(os.path.join(snap, fn), "rb") as a, open(os.path.join(src, fn), "rb") as b:
            assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest(), fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "mlxport"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mp-bench-hub-")
    src = os.path.join(work, "repo")
    os.makedirs(src)
    with open(os.path.join(src, "config.json"), "w") as f:
        f.write('{"model_type": "bert"}')
    per = a.size_mb * 1_000_000 // a.shards
    for i in range(a.shards):
        with open(os.path.join(src, "model-%05d-of-%05d.safetensors" % (i + 1, a.shards)), "wb") as f:
            f.write(os.urandom(per))
    repo_id = "bench/big"
    srv = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "py", "hub_server.py"), src, repo_id],
                           stdout=subprocess.PIPE, text=True)
    try:
        first = srv.stdout.readline().split()
        endpoint, sha = first[0].split("=", 1)[1], first[1]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        base.update(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0", HF_HUB_DISABLE_PROGRESS_BARS="1",
                    HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=os.path.join(work, "home"))
        py = sys.executable
        tools = [
            ("mlxport download", [a.bin, "download", repo_id, "--quiet"]),
            ("huggingface_hub.snapshot_download",
             [py, "-c", "from huggingface_hub import snapshot_download as s; s('%s')" % repo_id]),
            ("hf download", [os.path.join(os.path.dirname(py), "hf"), "download", repo_id, "--quiet"]),
        ]
        res = {name: [] for name, _ in tools}
        for _ in range(a.runs):
            for name, cmd in tools:
                cache = os.path.join(work, "cache")
                shutil.rmtree(cache, ignore_errors=True)
                res[name].append(run(cmd, dict(base, HF_HUB_CACHE=cache)))
                verify(cache, repo_id, sha, src)
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        srv.terminate()
        srv.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    total = a.size_mb
    ref = statistics.median(w for w, _ in res[tools[0][0]])
    print("repo: %d MB in %d LFS shards + config.json; local server; fresh cache; median of %d" %
          (total, a.shards, a.runs))
    print("| tool | wall s | MB/s | peak RSS MB | wall / mlxport |")
    print("|---|---|---|---|---|")
    for name, _ in tools:
        wall = statistics.median(w for w, _ in res[name])
        rss = max(r for _, r in res[name])
        print("| %s | %.2f | %.0f | %.0f | %.2fx |" % (name, wall, total / wall, rss, wall / ref))


if __name__ == "__main__":
    main()
