"""mlxport serve (issue 19): the HTTP routes with real clients (the `openai` package, curl, a TEI-style
client written from text-embeddings-inference's documented JSON), results equal to `mlxport embed /
classify / zero-shot`, dynamic batching under concurrency, limits, bearer key, abuse (oversized and
invalid bodies, slowloris, disconnects, many tiny requests) with /health answering throughout, and
SIGTERM draining. Loopback only; every server is started and stopped here; bounded counts and time."""
import base64
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time

import numpy as np
import openai
import pytest

from conftest import BIN, SOURCE_DIR, hub_cache, run_cli

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CACHE_DIR = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
NLI = os.path.join(CACHE_DIR, "models", "nli-minilm-l6-snli")
TOL = 2e-5  # batched vs single answers: the same arithmetic, padding-independent up to float noise


class Server:
    """One `mlxport serve` process on a free loopback port; its JSON-lines log in a file."""

    def __init__(self, *args, models=(MINILM, NLI)):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        env = dict(os.environ, HF_HUB_CACHE=hub_cache(), HF_HUB_OFFLINE="1")
        cmd = [BIN, "serve", "--port", "0", "--threads", "1"]
        for m in models:
            cmd += ["--model", m]
        self.proc = subprocess.Popen(cmd + list(args), stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.port = None
        t_end = time.time() + 30
        while time.time() < t_end and self.port is None:
            if self.proc.poll() is not None:
                raise AssertionError(f"mlxport serve exited {self.proc.returncode}:\n{self.read_log()}")
            for ev in self.events():
                if ev.get("event") == "listening":
                    self.port = ev["port"]
            time.sleep(0.05)
        assert self.port, "mlxport serve did not start listening in 30 s:\n" + self.read_log()

    def read_log(self):
        with open(self.log.name) as f:
            return f.read()

    def events(self):
        out = []
        for line in self.read_log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            js = json.loads(raw)
        except ValueError:
            js = None
        return r.status, js, raw, dict(r.getheaders())

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mlxport serve did not exit within 40 s of SIGTERM")
        return self.proc.returncode


@pytest.fixture(scope="module")
def server():
    s = Server("--timeout", "3", "--header-timeout", "2")
    yield s
    rc = s.stop()
    assert rc == 0, s.read_log()[-3000:]
    assert any(e.get("event") == "stopped" for e in s.events())


TEXTS = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
         "A man is riding a horse.", "Hello!", "Two men pushed carts through the woods.",
         "A cheetah is running behind its prey. " * 6, "word " * 120, "Ünïcödé — 日本語のテキスト 🚀"]


def cli_embed(texts):
    p = run_cli("embed", "--model", MINILM, "--compute", "fast", input="".join(t + "\n" for t in texts))
    return np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()], dtype=np.float32)


def test_startup_log_and_info(server):
    ev = [e for e in server.events() if e.get("event") == "model_loaded"]
    assert [e["model"] for e in ev] == [MINILM, NLI]
    assert ev[0]["quantization"] == "none" and ev[0]["compute"] == "fast" and ev[0]["max_length"] == 256
    assert ev[1]["labels"] == ["entailment", "neutral", "contradiction"]
    st, info, _, _ = server.request("GET", "/info")
    assert st == 200 and info["model_id"] == MINILM and info["max_input_length"] == 256
    assert info["model_type"] == {"embedding": {"pooling": "model"}}
    for k in ("max_batch_tokens", "max_client_batch_size", "max_concurrent_requests", "version", "auto_truncate"):
        assert k in info
    st, models, _, _ = server.request("GET", "/v1/models")
    assert st == 200 and [m["id"] for m in models["data"]] == [MINILM, NLI]
    st, h, _, _ = server.request("GET", "/health")
    assert st == 200 and h == {"status": "ok"}


def test_openai_client_float_and_base64(server):
    """The real `openai` client: embeddings.create with float and base64 (which it decodes)."""
    ref = cli_embed(TEXTS)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="unused", max_retries=0)
    r = client.embeddings.create(model=MINILM, input=TEXTS, encoding_format="float")
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert [d.index for d in r.data] == list(range(len(TEXTS)))
    assert np.abs(got - ref).max() <= TOL
    assert r.usage.prompt_tokens == r.usage.total_tokens > len(TEXTS)
    # without encoding_format the client asks for base64 and decodes it itself
    rdef = client.embeddings.create(model=MINILM, input=TEXTS[0])
    assert np.abs(np.array(rdef.data[0].embedding, dtype=np.float32) - ref[0]).max() <= TOL
    # an explicit base64 hands the string back
    r64 = client.embeddings.create(model=MINILM, input=TEXTS[0], encoding_format="base64")
    v = np.frombuffer(base64.b64decode(r64.data[0].embedding), dtype="<f4")
    assert np.abs(v - ref[0]).max() <= TOL
    # raw base64 bytes are little-endian float32
    st, js, _, _ = server.post("/v1/embeddings", {"input": TEXTS[:2], "encoding_format": "base64"})
    v = np.frombuffer(base64.b64decode(js["data"][1]["embedding"]), dtype="<f4")
    assert st == 200 and v.shape == (384,) and np.abs(v - ref[1]).max() <= TOL
    # token ids (decoded, then tokenized again): the same embedding as the text for plain WordPiece text
    ids = [101, 1037, 2158, 2003, 5983, 2833, 1012, 102]  # [CLS] a man is eating food . [SEP]
    st, js, _, _ = server.post("/v1/embeddings", {"input": [ids], "model": MINILM})
    assert st == 200 and np.abs(np.array(js["data"][0]["embedding"]) - ref[0]).max() <= TOL
    # dimensions: only the model's own
    st, js, _, _ = server.post("/v1/embeddings", {"input": "x", "dimensions": 128})
    assert st == 400 and "dimensions" in js["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MINILM, input="x", dimensions=64)
    st, js, _, _ = server.post("/v1/embeddings", {"input": "x", "dimensions": 384})
    assert st == 200
    st, js, _, _ = server.post("/v1/embeddings", {"input": "x", "model": "no/such-model"})
    assert st == 404 and "no/such-model" in js["error"]["message"]


def test_curl(server):
    out = subprocess.run(["curl", "-sS", "-f", f"http://127.0.0.1:{server.port}/embed", "-H",
                          "Content-Type: application/json", "-d", json.dumps({"inputs": TEXTS[:3]})],
                         capture_output=True, text=True, check=True).stdout
    got = np.array(json.loads(out), dtype=np.float32)
    ref = cli_embed(TEXTS[:3])  # MiniLM has a Normalize module: normalize=true changes nothing
    assert np.abs(got - ref).max() <= TOL
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{server.port}/embed",
                        "-d", "{\"inputs\": "], capture_output=True, text=True)
    assert p.stdout == "400"


def test_huggingface_hub_inference_client(server):
    """huggingface_hub's InferenceClient, the Python client of text-embeddings-inference, unchanged:
    feature_extraction posts to TEI's POST / and text_classification to /predict. It runs in a
    subprocess because the library refuses every URL under HF_HUB_OFFLINE=1 (the target is loopback)."""
    code = (
        "import json, sys\n"
        "from huggingface_hub import InferenceClient\n"
        "base = sys.argv[1]\n"
        "v = InferenceClient(model=base).feature_extraction(sys.argv[2])\n"
        "c = InferenceClient(model=base + '/predict').text_classification(sys.argv[3])\n"
        "c = c if isinstance(c, list) else [c]  # this version hands back the top element of TEI's list\n"
        "print(json.dumps({'emb': v.ravel().tolist(), 'cls': [[x.label, x.score] for x in c]}))\n")
    env = dict(os.environ, HF_HUB_OFFLINE="0", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    p = subprocess.run([os.sys.executable, "-c", code, f"http://127.0.0.1:{server.port}", TEXTS[0],
                        "A man plays a guitar."], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert np.abs(np.array(out["emb"], dtype=np.float32) - cli_embed(TEXTS[:1])[0]).max() <= TOL
    labels = [l for l, _ in out["cls"]]
    st, ref, _, _ = server.post("/predict", {"inputs": "A man plays a guitar."})
    assert st == 200 and labels == [ref[0]["label"]]  # the top label, as /predict ranks it


def test_tei_predict_rerank_zero_shot_equal_cli(server):
    pairs = [("A man plays a guitar.", "A person makes music."), ("A cat sleeps.", "A dog barks loudly."),
             ("Two kids play soccer outside.", "Children are indoors.")]
    cli = [json.loads(l) for l in run_cli("classify", "--model", NLI, "--pair", "--json", "--compute", "fast",
                                          input="".join(f"{a}\t{b}\n" for a, b in pairs)).stdout.splitlines()]
    # TEI /predict: a single pair -> [{score, label}] sorted; a batch -> a list of those
    st, one, _, _ = server.post("/predict", {"inputs": list(pairs[0])})
    assert st == 200 and one[0]["label"] == cli[0]["label"] and abs(one[0]["score"] - cli[0]["score"]) <= 1e-5
    assert abs(sum(x["score"] for x in one) - 1) < 1e-5
    st, batch, _, _ = server.post("/predict", {"inputs": [list(p) for p in pairs], "raw_scores": True})
    assert st == 200 and len(batch) == 3
    for b, c in zip(batch, cli):
        got = {x["label"]: x["score"] for x in b}
        ref = dict(zip(["entailment", "neutral", "contradiction"], c["logits"]))
        assert all(abs(got[k] - ref[k]) <= 1e-4 for k in ref)
    # TEI /rerank over the NLI classifier: score = P(entailment), sorted, with texts on request
    st, rr, _, _ = server.post("/rerank", {"query": pairs[0][0], "texts": ["A cat sleeps.", pairs[0][1]],
                                           "return_text": True})
    assert st == 200 and rr[0]["index"] == 1 and rr[0]["text"] == pairs[0][1]
    assert abs(rr[0]["score"] - cli[0]["score"]) <= 1e-5 and rr[0]["score"] >= rr[1]["score"]
    # zero-shot: the transformers pipeline's {sequence, labels, scores}, equal to the CLI
    texts = ["I love this movie, it was wonderful", "The stock market fell sharply today"]
    labels = ["positive", "negative", "finance"]
    for multi in (False, True):
        args = ["zero-shot", "--model", NLI, "--labels", ",".join(labels), "--json", "--compute", "fast"]
        ref = [json.loads(l) for l in run_cli(*args, *(["--multi-label"] if multi else []),
                                              input="".join(t + "\n" for t in texts)).stdout.splitlines()]
        st, got, _, _ = server.post("/zero-shot", {"inputs": texts, "candidate_labels": labels, "multi_label": multi,
                                                   "hypothesis_template": "This example is {}."})
        assert st == 200
        for g, r in zip(got, ref):
            assert g["sequence"] == r["sequence"] and g["labels"] == r["labels"]
            assert np.abs(np.array(g["scores"]) - np.array(r["scores"])).max() <= 1e-5
    st, one, _, _ = server.post("/zero-shot", {"inputs": texts[0], "candidate_labels": "positive, negative"})
    assert st == 200 and isinstance(one, dict) and sorted(one["labels"]) == ["negative", "positive"]


def test_zero_shot_merging(server):
    """Concurrent zero-shot requests asking the same question (labels, template, mode) share a
    batch; others do not; every answer equals its single-request answer."""
    texts = [f"review {i}: " + ("great film " if i % 2 else "boring and slow ") * (1 + i % 5) for i in range(12)]
    questions = [["positive", "negative"], ["sports", "politics", "cinema"]]
    single = {}
    for t in texts:
        for q in range(2):
            st, js, _, _ = server.post("/zero-shot", {"inputs": t, "candidate_labels": questions[q]})
            assert st == 200
            single[t, q] = dict(zip(js["labels"], js["scores"]))
    before = metric(server, "mlxport_batches_total")
    bad, n = [], [0]

    def hit(t, q):
        st, js, _, _ = server.post("/zero-shot", {"inputs": t, "candidate_labels": questions[q]})
        n[0] += 1
        if st != 200 or any(abs(sc - single[t, q][l]) > 1e-5 for l, sc in zip(js["labels"], js["scores"])):
            bad.append((st, js))

    th = [threading.Thread(target=hit, args=(t, k % 2)) for k, t in enumerate(texts * 2)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    assert not bad, bad[:2]
    assert metric(server, "mlxport_batches_total") - before < n[0]


def test_errors_name_the_field(server):
    cases = [
        ("/embed", b"{\"inputs\": [\"a\",", 400, "malformed JSON"),
        ("/embed", b"[1,2]", 400, "JSON object"),
        ("/embed", {"inputs": 5}, 400, "inputs"),
        ("/embed", {"inputs": ["ok", 7]}, 400, "inputs[1]"),
        ("/embed", {"inputs": "x", "normalize": "yes"}, 400, "normalize"),
        ("/embed", {"inputs": []}, 400, "inputs"),
        ("/embed", {}, 400, "inputs"),
        ("/v1/embeddings", {"input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
        ("/v1/embeddings", {"input": [[1, -2]]}, 400, "input[0]"),
        ("/v1/embeddings", {"input": [[999999]]}, 400, "vocabulary"),
        ("/predict", {"inputs": [["a", "b"], "c"]}, 400, "mixes"),
        ("/rerank", {"query": 1, "texts": ["a"]}, 400, "query"),
        ("/zero-shot", {"inputs": "x", "candidate_labels": []}, 400, "candidate_labels"),
        ("/zero-shot", {"inputs": "x", "candidate_labels": ["a"], "hypothesis_template": "no slot"}, 400,
         "hypothesis_template"),
        ("/zero-shot", {"inputs": "x", "candidate_labels": ["a"], "multi_label": 1}, 400, "multi_label"),
        ("/embed", {"inputs": ["x"] * 65}, 413, "--max-client-batch"),
    ]
    for path, body, code, word in cases:
        st, js, raw, h = server.post(path, body)
        assert st == code, (path, body, st, raw)
        msg = js["error"]["message"] if path.startswith("/v1") else js["error"]
        assert word in msg, (path, msg)
        assert h.get("X-Request-Id", "").startswith("req-")
    st, js, _, _ = server.post("/embed", b"{\"inputs\": \"a\\u0000b\"}")
    assert st == 400 and "NUL" in js["error"]
    st, js, _, _ = server.post("/embed", b"{\"inputs\": \"caf\xc3\"}")  # invalid UTF-8
    assert st == 400 and "utf" in js["error"].lower(), js
    st, _, _, _ = server.request("GET", "/embed")
    assert st == 405
    st, _, _, _ = server.request("GET", "/nope")
    assert st == 404
    st, js, _, _ = server.request("GET", "/health")
    assert st == 200


def test_truncation_is_never_silent(server):
    long = "token " * 400
    st, js, _, _ = server.post("/embed", {"inputs": ["short", long]})
    assert st == 413 and "256" in js["error"] and "truncate" in js["error"]
    st, js, _, h = server.post("/embed", {"inputs": ["short", long], "truncate": True})
    assert st == 200 and h.get("X-Truncated-Inputs") == "1" and len(js) == 2
    st, js, _, h = server.post("/v1/embeddings", {"input": [long, "short"], "truncate": True})
    assert st == 200 and js["truncated_inputs"] == [0] and js["usage"]["prompt_tokens"] == 256 + 3
    st, js, _, _ = server.post("/v1/embeddings", {"input": [long]})
    assert st == 413 and "256" in js["error"]["message"]
    st, js, _, _ = server.post("/zero-shot", {"inputs": "w " * 600, "candidate_labels": ["a"]})
    assert st == 413 and "512" in js["error"]
    st, js, _, _ = server.post("/zero-shot", {"inputs": "w " * 600, "candidate_labels": ["a"], "truncate": True})
    assert st == 200 and js["truncated"] is True


def test_bearer_key():
    s = Server("--api-key", "s3cret-key", models=(MINILM,))
    try:
        assert s.post("/embed", {"inputs": "x"})[0] == 401
        assert s.post("/embed", {"inputs": "x"}, headers={"Authorization": "Bearer s3cret-kez"})[0] == 401
        assert s.post("/embed", {"inputs": "x"}, headers={"Authorization": "Bearer s3cret-key2"})[0] == 401
        assert s.post("/embed", {"inputs": "x"}, headers={"Authorization": "Bearer s3cret-key"})[0] == 200
        assert s.request("GET", "/metrics")[0] == 401
        assert s.request("GET", "/health")[0] == 200
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="s3cret-key", max_retries=0)
        assert len(c.embeddings.create(model=MINILM, input="x").data[0].embedding) == 384
    finally:
        assert s.stop() == 0


def test_concurrency_batching(server):
    """64 clients for ~12 s, mixed lengths and routes: every answer equals its single-request
    answer, nothing lost, requests really merged into batches, peak RSS bounded."""
    pool = TEXTS + [f"sentence number {i} " + "more words " * (i % 40) for i in range(24)]
    single = {}
    for t in pool:  # single-request answers, one at a time
        st, js, _, _ = server.post("/embed", {"inputs": [t]})
        assert st == 200
        single[t] = np.array(js[0], dtype=np.float32)
    pairs = [("A man plays a guitar.", "A person makes music."), ("A cat sleeps.", "A dog barks.")]
    single_cls = {}
    for p in pairs:
        st, js, _, _ = server.post("/predict", {"inputs": list(p), "raw_scores": True})
        single_cls[p] = {x["label"]: x["score"] for x in js}
    before = metric(server, "mlxport_batches_total")
    n_clients, duration = 64, 12.0
    stats = {"ok": 0, "sent": 0, "bad": [], "batched_items": 0}
    lock = threading.Lock()
    t_end = time.time() + duration

    def client(k):
        rnd = random.Random(k)
        while time.time() < t_end:
            if rnd.random() < 0.15:
                p = rnd.choice(pairs)
                with lock:
                    stats["sent"] += 1
                st, js, _, _ = server.post("/predict", {"inputs": list(p), "raw_scores": True})
                ok = st == 200 and all(abs(x["score"] - single_cls[p][x["label"]]) <= 1e-4 for x in js)
            else:
                ts = rnd.sample(pool, rnd.randint(1, 4))
                with lock:
                    stats["sent"] += 1
                st, js, _, _ = server.post("/embed", {"inputs": ts})
                ok = st == 200 and len(js) == len(ts) and all(
                    np.abs(np.array(v, dtype=np.float32) - single[t]).max() <= TOL for v, t in zip(js, ts))
            with lock:
                if ok:
                    stats["ok"] += 1
                else:
                    stats["bad"].append((st, str(js)[:200]))

    th = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    assert not stats["bad"], stats["bad"][:3]
    assert stats["ok"] == stats["sent"] and stats["ok"] > n_clients
    batches = metric(server, "mlxport_batches_total") - before
    assert batches < stats["ok"], "no two requests were ever merged into one batch"
    rss = server.peak_rss_mb()
    print(f"\nconcurrency: {n_clients} clients, {stats['ok']} requests in {duration:.0f} s, "
          f"{batches:.0f} batches, peak RSS {rss:.0f} MB")
    assert rss < (3072 if os.environ.get("MP_SANITIZE") in ("ON", "1", "TRUE") else 1024)
    assert server.request("GET", "/health")[0] == 200


def metric(server, name):
    _, _, raw, _ = server.request("GET", "/metrics")
    for line in raw.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_prometheus(server):
    server.post("/embed", {"inputs": "metrics"})
    _, _, raw, h = server.request("GET", "/metrics")
    text = raw.decode()
    assert h["Content-Type"].startswith("text/plain")
    for name in ("mlxport_requests_total{route=\"/embed\",status=\"200\"}", "mlxport_request_duration_seconds_bucket",
                 "mlxport_queue_duration_seconds_count", "mlxport_batch_size_bucket", "mlxport_tokens_total",
                 "mlxport_queue_depth", "mlxport_peak_rss_bytes"):
        assert name in text, name
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


class HealthWatch:
    """Polls /health every 50 ms on a fresh connection; records every failure."""

    def __init__(self, server):
        self.server, self.fail, self.n, self.stop_ev = server, [], 0, threading.Event()
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                st = self.server.request("GET", "/health", timeout=5)[0]
                if st != 200:
                    self.fail.append(st)
            except Exception as e:  # noqa: BLE001 - any failure counts
                self.fail.append(repr(e))
            self.n += 1
            time.sleep(0.05)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        assert not self.fail and self.n > 0, self.fail[:5]


def test_abuse(server):
    watch = HealthWatch(server)
    try:
        # oversized bodies: announced, and streamed in chunks without a Content-Length
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        assert b" 413 " in s.recv(4096).split(b"\r\n")[0] + b" "
        s.close()
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        try:
            for _ in range(48):  # 3 MB > the 2 MiB limit
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
            assert b" 413 " in s.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close first; either way it lives
        s.close()
        # invalid UTF-8 and binary garbage
        for body in (b"\xff\xfe\x00garbage", b"{\"inputs\": \"\xed\xa0\x80\"}", os.urandom(2000)):
            assert server.post("/embed", body)[0] == 400
        # slowloris: 40 connections trickling a header line every 0.25 s, never finishing the head:
        # the 2 s --header-timeout cuts them although they are never idle
        slow = []
        for _ in range(40):
            c = socket.create_connection(("127.0.0.1", server.port))
            c.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\n")
            slow.append(c)
        t0 = time.time()
        assert server.post("/embed", {"inputs": "still served"})[0] == 200
        closed = 0
        while time.time() - t0 < 15 and closed < len(slow):
            closed = 0
            for c in slow:
                c.settimeout(0.01)
                try:
                    c.sendall(b"X-a: b\r\n")
                    if c.recv(1) == b"":
                        closed += 1
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    closed += 1
            time.sleep(0.25)
        assert closed == len(slow), f"{closed}/{len(slow)} slow connections closed"
        assert time.time() - t0 < 12  # 2 s --header-timeout, with room for a loaded CI machine
        assert metric(server, "mlxport_slow_clients_cut_total") >= len(slow)
        for c in slow:
            c.close()
        # mid-request disconnects: half a body, and a full request closed before the answer
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", server.port))
            c.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inputs\":")
            c.close()
            c = socket.create_connection(("127.0.0.1", server.port))
            body = json.dumps({"inputs": ["gone " * 100] * 8}).encode()
            c.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            c.close()
        # many tiny requests (keep-alive connections, 8 threads)
        n_tiny, errors = 10000, []

        def tiny(k):
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            for i in range(n_tiny // 8):
                c.request("POST", "/embed", body=b"{\"inputs\":\"t\"}" if i % 2 else b"{}")
                r = c.getresponse()
                r.read()
                if r.status != (200 if i % 2 else 400):
                    errors.append(r.status)
            c.close()

        th = [threading.Thread(target=tiny, args=(k,)) for k in range(8)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        assert not errors, errors[:5]
    finally:
        watch.stop()
    assert server.proc.poll() is None
    assert server.post("/embed", {"inputs": "alive"})[0] == 200


def test_queue_full_429_and_sigterm_drain():
    s = Server("--max-queue", "1", "--max-client-batch", "64", models=(MINILM,))
    try:
        results = []
        body = {"inputs": ["a longer sentence for the queue test " * 6] * 64}

        def hit():
            results.append(s.post("/embed", body, timeout=60))

        th = [threading.Thread(target=hit) for _ in range(12)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        codes = [r[0] for r in results]
        assert set(codes) <= {200, 429} and 429 in codes and 200 in codes, codes
        assert all(r[3].get("Retry-After") == "1" for r in results if r[0] == 429)
        # SIGTERM while requests are in flight: they are answered, then the server exits 0
        results.clear()
        th = [threading.Thread(target=hit) for _ in range(2)]
        for t in th:
            t.start()
        # until both requests have reached the server: in flight (this /metrics request counts as one
        # more) or already answered (a 429 comes back at once). A request that arrives after SIGTERM
        # is refused with 503, which is right but not what this test is about.
        t_wait = time.time() + 20
        while metric(s, "mlxport_inflight_requests") - 1 + len(results) < 2 and time.time() < t_wait:
            time.sleep(0.01)
        s.proc.send_signal(signal.SIGTERM)
        for t in th:
            t.join()
        assert s.proc.wait(timeout=40) == 0
        assert all(r[0] in (200, 429) for r in results) and any(r[0] == 200 for r in results), \
            [r[0] for r in results]
        ev = [e["event"] for e in s.events()]
        assert "draining" in ev and ev[-1] == "stopped"
        access = [e for e in s.events() if e.get("event") == "access"]
        assert access and all(e["id"].startswith("req-") and "status" in e for e in access)
    finally:
        s.stop()


def test_mlx_q8_model(tmp_path):
    """A converted MLX 8-bit model: the start-up log says so, and /embed equals `mlxport embed`
    on it (fast compute, the server's default)."""
    q8 = str(tmp_path / "q8")
    run_cli("convert", "--hf-path", MINILM, "--mlx-path", q8, "-q", "--q-bits", "8", "--q-group-size", "64")
    s = Server(models=(q8,))
    try:
        ev = [e for e in s.events() if e.get("event") == "model_loaded"][0]
        assert ev["quantization"] == "mlx-affine" and ev["compute"] == "fast"
        p = run_cli("embed", "--model", q8, "--compute", "fast", input="".join(t + "\n" for t in TEXTS[:4]))
        ref = np.array([json.loads(l)["embedding"] for l in p.stdout.splitlines()], dtype=np.float32)
        st, js, _, _ = s.post("/embed", {"inputs": TEXTS[:4]})
        assert st == 200 and np.abs(np.array(js, dtype=np.float32) - ref).max() <= TOL
        st, info, _, _ = s.request("GET", "/info")
        assert info["model_dtype"] == "mlx-affine" and info["models"][0]["quantized"] is True
    finally:
        assert s.stop() == 0


def test_device_options_are_checked_before_loading():
    """--device / --device-dtype errors are usage errors (exit 2) naming the value; a GPU dtype with
    the CPU device is accepted (it applies on a GPU only)."""
    r = run_cli("serve", "--port", "0", "--device-dtype", "float8", MINILM, check=False)
    assert r.returncode == 2 and "--device-dtype must be float16, bfloat16 or float32, not float8" in r.stderr, r.stderr
    r = run_cli("serve", "--port", "0", "--device", "gpu0", MINILM, check=False)
    assert r.returncode == 2 and "--device must be cpu, cuda or cuda:N, not gpu0" in r.stderr, r.stderr
    r = run_cli("serve", "--help", check=False)
    assert r.returncode == 0 and "--device-dtype" in r.stdout + r.stderr
