#!/usr/bin/env python3
"""Serving benchmark (issue 19): mlxport serve vs infinity-emb, loopback, one run.

    python bench/bench_serve.py [--bin build/mlxport] [--model REPO_OR_DIR] [--threads 2]
                                [--clients 1,8,64] [--duration 20] [--json OUT]
                                [--infinity-python .cache/venv-infinity/bin/python] [--setup-infinity]

Backends, each serving all-MiniLM-L6-v2 (default) on 127.0.0.1 with --threads compute threads:
  mlxport fp32   `mlxport serve --model M` (the original float32 weights)
  mlxport q8     `mlxport serve --model Q8` (converted here: `mlxport convert -q --q-bits 8`)
  infinity fp32  `infinity_emb v2 --model-id M --engine torch --device cpu` (PyPI infinity-emb in its
                 own venv; --setup-infinity creates it: pip install "infinity-emb[server,torch]==0.0.78",
                 a large download because it brings PyPI torch). Skipped, and said so in the table,
                 when that venv is absent.
For each backend and each client count: closed-loop clients (threads, keep-alive HTTP/1.1) each
send one sentence per OpenAI-style POST /v1/embeddings for --duration seconds after a warm-up.
Reports embeddings/s and p50/p99 latency (ms), and the ratios mlxport / infinity. The clients run
on the same machine and take CPU from the servers: on a 2-core machine the absolute numbers are
low for every backend alike; run it on a quiet machine.
Goals from the issue: >= 1.5x infinity's throughput at 64 clients, lower p50 at 1 client.
"""
import argparse
import glob
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.environ.get("MP_CACHE", os.path.join(ROOT, ".cache"))
INFINITY_PIN = "infinity-emb[server,torch]==0.0.78"

SENTENCES = [
    "A man is playing a guitar.", "A woman is slicing an onion.", "Two dogs run across a snowy field.",
    "The stock market closed higher on Friday after a volatile week of trading.",
    "A child in a red jacket is climbing the stairs of a playground slide.",
    "Scientists announced the discovery of a new species of frog in the rainforest.",
    "The committee will meet again next month to review the proposed budget and the hiring plan.",
    "Hello!", "Where is the nearest train station?", "I really enjoyed the concert last night.",
    "A group of people are standing outside a building waiting for the doors to open in the morning.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
]


def minilm_dir():
    hub = os.environ.get("HF_HUB_CACHE", os.path.join(CACHE, "huggingface", "hub"))
    s = glob.glob(os.path.join(hub, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*"))
    return s[0] if s else "sentence-transformers/all-MiniLM-L6-v2"


def wait_port(port, path, timeout=120):
    t_end = time.time() + timeout
    while time.time() < t_end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_mlxport(binary, model, threads):
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    p = subprocess.Popen([binary, "serve", "--model", model, "--port", str(port), "--threads", str(threads),
                          "--access-log", "off", "--max-queue", "4096"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    if not wait_port(port, "/health"):
        p.kill()
        raise SystemExit(f"mlxport serve --model {model} did not start")
    return p, port, "/v1/embeddings"


def start_infinity(python, model, threads):
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               INFINITY_ANONYMOUS_USAGE_STATS="0")
    exe = os.path.join(os.path.dirname(python), "infinity_emb")
    p = subprocess.Popen([exe, "v2", "--model-id", model, "--host", "127.0.0.1", "--port", str(port), "--engine", "torch", "--device",
                          "cpu", "--url-prefix", "/v1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    if not wait_port(port, "/health", timeout=300):  # infinity's health route is not under --url-prefix
        p.kill()
        raise SystemExit("infinity_emb did not start (see its venv)")
    return p, port, "/v1/embeddings"


def run_load(port, path, model, clients, duration):
    lat, lock = [], threading.Lock()
    count = [0]
    errors = [0]
    t_start = time.time() + 0.2
    t_end = t_start + duration

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k
        mine = []
        while time.time() < t_start:
            time.sleep(0.001)
        while time.time() < t_end:
            body = json.dumps({"input": [SENTENCES[i % len(SENTENCES)]], "model": model}).encode()
            t0 = time.perf_counter()
            try:
                c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                with lock:
                    errors[0] += 1
            i += 1
        with lock:
            lat.extend(mine)
            count[0] += len(mine)

    th = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1e3 if lat else float("nan")  # noqa: E731
    return {"clients": clients, "embeddings_per_s": count[0] / duration, "p50_ms": q(0.50), "p99_ms": q(0.99),
            "requests": count[0], "errors": errors[0]}


def bench_backend(name, start, clients, duration, model_name):
    proc, port, path = start()
    try:
        run_load(port, path, model_name, 4, 3.0)  # warm-up (torch backends need a few calls)
        rows = []
        for n in clients:
            r = run_load(port, path, model_name, n, duration)
            r["backend"] = name
            rows.append(r)
            print(f"  {name:14s} {n:3d} clients: {r['embeddings_per_s']:8.1f} emb/s  p50 {r['p50_ms']:7.2f} ms  "
                  f"p99 {r['p99_ms']:7.2f} ms  ({r['errors']} errors)", flush=True)
        return rows
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "mlxport"))
    ap.add_argument("--model", default=None, help="float model (default: all-MiniLM-L6-v2 from the cache)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--infinity-python", default=os.path.join(CACHE, "venv-infinity", "bin", "python"))
    ap.add_argument("--setup-infinity", action="store_true", help=f"create the infinity venv ({INFINITY_PIN})")
    ap.add_argument("--no-q8", action="store_true")
    a = ap.parse_args()
    model = a.model or minilm_dir()
    clients = [int(x) for x in a.clients.split(",")]
    if a.setup_infinity and not os.path.exists(a.infinity_python):
        venv = os.path.dirname(os.path.dirname(a.infinity_python))
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([a.infinity_python, "-m", "pip", "install", "-q", INFINITY_PIN], check=True)
    rows, notes = [], []
    print(f"model {model}, {a.threads} threads, clients {clients}, {a.duration:.0f} s each", flush=True)
    rows += bench_backend("mlxport fp32", lambda: start_mlxport(a.bin, model, a.threads), clients, a.duration, model)
    if not a.no_q8:
        with tempfile.TemporaryDirectory() as tmp:
            q8 = os.path.join(tmp, "q8")
            subprocess.run([a.bin, "convert", "--hf-path", model, "--mlx-path", q8, "-q", "--q-bits", "8",
                            "--q-group-size", "64"], check=True, stdout=subprocess.DEVNULL)
            rows += bench_backend("mlxport q8", lambda: start_mlxport(a.bin, q8, a.threads), clients, a.duration, q8)
    if os.path.exists(a.infinity_python):
        rows += bench_backend("infinity fp32", lambda: start_infinity(a.infinity_python, model, a.threads), clients,
                              a.duration, model)
    else:
        notes.append(f"infinity-emb not measured: no venv at {a.infinity_python} (run with --setup-infinity)")
    print("\n| backend | clients | embeddings/s | p50 ms | p99 ms | vs infinity (throughput) |")
    print("|---|---|---|---|---|---|")
    inf = {r["clients"]: r for r in rows if r["backend"].startswith("infinity")}
    for r in rows:
        ratio = (f"{r['embeddings_per_s'] / inf[r['clients']]['embeddings_per_s']:.2f}x"
                 if r["clients"] in inf and inf[r["clients"]]["embeddings_per_s"] else "-")
        print(f"| {r['backend']} | {r['clients']} | {r['embeddings_per_s']:.1f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {ratio} |")
    for n in notes:
        print(f"\nnote: {n}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "notes": notes, "threads": a.threads, "duration_s": a.duration}, f, indent=1)


if __name__ == "__main__":
    main()
