"""mlxport's Hub client against the project's own fault-injecting Hub server (tests/py/hub_server.py,
127.0.0.1 only, started and stopped here): downloads, the cache shared with huggingface_hub in
both directions, faults (dropped connections, 5xx, 429, short bodies, wrong sizes, corrupt
content, slow servers, kill -9, concurrent processes) and bad input (unknown / gated repos, bad
revisions, path traversal in a listing). Every wait is bounded."""
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# CTest sets HF_HUB_OFFLINE=1 for every test; huggingface_hub reads it at import time.
os.environ["HF_HUB_OFFLINE"] = "0"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from safetensors.numpy import save as st_save  # noqa: E402

import huggingface_hub  # noqa: E402  (a missing package is a failure, not a skip)
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download  # noqa: E402

from conftest import BIN, SHARED  # noqa: E402
from hub_server import HubServer, Repo  # noqa: E402

MODEL_ID = "test-org/minilm-tiny"
DS_ID = "test-org/tiny-ds"
GATED_ID = "test-org/gated"
NLI_ID = "test-org/nli-tiny"
SRC_MODEL = os.path.join(SHARED, "models", "all-MiniLM-L6-v2")
CMD_TIMEOUT = 120


def tiny_bert_files():
    """The real all-MiniLM-L6-v2 configs and tokenizer (shrunk config) + random weights."""
    files = {}
    for dp, _, fns in os.walk(SRC_MODEL):
        for fn in fns:
            full = os.path.join(dp, fn)
            files[os.path.relpath(full, SRC_MODEL)] = open(full, "rb").read()
    assert "config.json" in files and "tokenizer.json" in files and "1_Pooling/config.json" in files, sorted(files)
    cfg = json.loads(files["config.json"])
    cfg.update(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    files["config.json"] = json.dumps(cfg, indent=2).encode()
    h, inter, v = 32, 64, cfg["vocab_size"]
    rng = np.random.default_rng(13)

    def r(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    t = {"embeddings.word_embeddings.weight": r(v, h), "embeddings.position_embeddings.weight": r(512, h),
         "embeddings.token_type_embeddings.weight": r(2, h), "embeddings.LayerNorm.weight": np.ones(h, np.float32),
         "embeddings.LayerNorm.bias": np.zeros(h, np.float32)}
    for i in range(2):
        p = "encoder.layer.%d." % i
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + n + ".weight"], t[p + n + ".bias"] = r(h, h), r(h)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = r(inter, h), r(inter)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = r(h, inter), r(h)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + n + ".weight"], t[p + n + ".bias"] = np.ones(h, np.float32), np.zeros(h, np.float32)
    files["model.safetensors"] = st_save(t)
    files["README.md"] = b"# tiny random-weight twin of all-MiniLM-L6-v2 (tests only)\n"
    return files


def tiny_nli_files():
    """The MiniLM twin with a 3-way NLI head (BertForSequenceClassification names and config)."""
    base = tiny_bert_files()
    from safetensors.numpy import load as st_load
    t = {"bert." + k: v for k, v in st_load(base["model.safetensors"]).items()}
    rng = np.random.default_rng(7)
    t["bert.pooler.dense.weight"] = (rng.standard_normal((32, 32)) * 0.05).astype(np.float32)
    t["bert.pooler.dense.bias"] = np.zeros(32, np.float32)
    t["classifier.weight"] = (rng.standard_normal((3, 32)) * 0.5).astype(np.float32)
    t["classifier.bias"] = np.zeros(3, np.float32)
    cfg = json.loads(base["config.json"])
    cfg.update(architectures=["BertForSequenceClassification"],
               id2label={"0": "entailment", "1": "neutral", "2": "contradiction"},
               label2id={"entailment": 0, "neutral": 1, "contradiction": 2})
    files = {k: v for k, v in base.items() if k in ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                                    "special_tokens_map.json")}
    files["config.json"] = json.dumps(cfg).encode()
    files["model.safetensors"] = st_save(t)
    return files


def sharded_files():
    """The MiniLM twin with its weights in two shards and a model.safetensors.index.json."""
    from safetensors.numpy import load as st_load
    base = tiny_bert_files()
    t = st_load(base.pop("model.safetensors"))
    names = sorted(t)
    half = {n: t[n] for n in names[: len(names) // 2]}, {n: t[n] for n in names[len(names) // 2:]}
    files = dict(base)
    wm = {}
    for i, part in enumerate(half):
        fn = "model-%05d-of-00002.safetensors" % (i + 1)
        files[fn] = st_save(part)
        wm.update({n: fn for n in part})
    files["model.safetensors.index.json"] = json.dumps({"metadata": {}, "weight_map": wm}).encode()
    return files


def anli_parquet(n=60, seed=0):
    """ANLI's Hub layout and schema (uid, premise, hypothesis, label int, reason), rows from MNLI."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [json.loads(line) for line in open(os.path.join(SHARED, "datasets", "mnli", "validation_matched",
                                                           "dev.jsonl"))][seed:seed + n]
    ids = {"entailment": 0, "neutral": 1, "contradiction": 2}
    t = pa.table({"uid": ["u%d" % i for i in range(n)], "premise": [r["premise"] for r in rows],
                  "hypothesis": [r["hypothesis"] for r in rows],
                  "label": pa.array([ids[r["label"]] for r in rows], pa.int64()), "reason": [""] * n})
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink)
    return sink.getvalue().to_pybytes()


@pytest.fixture(scope="module")
def hub():
    s = HubServer(page_size=4).start()
    try:
        s.model = s.add_repo(Repo(MODEL_ID, tiny_bert_files()))
        rng = np.random.default_rng(5)
        s.ds = s.add_repo(Repo(DS_ID, {
            "README.md": b"---\nconfigs: []\n---\n",
            "plain_text/dev_r1-00000-of-00001.parquet": rng.bytes(300_000),
            "plain_text/test_r1-00000-of-00001.parquet": rng.bytes(200_000)}, repo_type="dataset"))
        s.gated = s.add_repo(Repo(GATED_ID, {"config.json": b"{}", "model.safetensors": rng.bytes(1000)}, gated=True))
        s.nli = s.add_repo(Repo(NLI_ID, tiny_nli_files()))
        s.sharded = s.add_repo(Repo("test-org/sharded", sharded_files()))
        s.private = s.add_repo(Repo("test-org/private", {"config.json": b'{"a": 1}'}, private=True))
        s.anli = s.add_repo(Repo("facebook/anli", {
            "README.md": b"---\nconfigs: [plain_text]\n---\n",
            "plain_text/dev_r1-00000-of-00001.parquet": anli_parquet(),
            "plain_text/train_r1-00000-of-00001.parquet": anli_parquet(200, 100)}, repo_type="dataset"))
        yield s
    finally:
        s.stop()


@pytest.fixture
def env(hub, tmp_path):
    hub.clear()
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    e.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "home"), HF_HUB_CACHE=str(tmp_path / "hub"),
             HF_HUB_OFFLINE="0", HF_HUB_ETAG_TIMEOUT="10", HF_HUB_DOWNLOAD_TIMEOUT="10")
    e["TMP_ROOT"] = str(tmp_path)
    return e


def mlx(env, *args, timeout=CMD_TIMEOUT, check=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("mlxport %s exited %d:\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


def repo_dir(env, repo_id=MODEL_ID, kind="models"):
    return os.path.join(env["HF_HUB_CACHE"], "%s--%s" % (kind, repo_id.replace("/", "--")))


def check_snapshot_sane(env, repo):
    """Never a corrupt or half file under snapshots/: every entry is a relative symlink to a blob
    whose content is exactly the repo's file."""
    rd = repo_dir(env, repo.repo_id, repo.repo_type + "s")
    for p in glob.glob(os.path.join(rd, "snapshots", "*", "**"), recursive=True):
        if os.path.isdir(p) and not os.path.islink(p):
            continue
        assert os.path.islink(p), p
        target = os.readlink(p)
        assert not os.path.isabs(target) and "/blobs/" in target, (p, target)
        rel = os.path.relpath(p, os.path.join(rd, "snapshots", repo.sha))
        assert rel in repo.files, rel
        assert open(p, "rb").read() == repo.files[rel], rel
    for b in glob.glob(os.path.join(rd, "blobs", "*")):
        if b.endswith(".incomplete"):
            continue
        data = open(b, "rb").read()
        name = os.path.basename(b)
        if len(name) == 64:
            assert hashlib.sha256(data).hexdigest() == name, b


def check_cache_complete(env, repo):
    check_snapshot_sane(env, repo)
    info = scan_cache_dir(env["HF_HUB_CACHE"])
    assert info.warnings == [], info.warnings
    repos = {(r.repo_type, r.repo_id): r for r in info.repos}
    r = repos[(repo.repo_type, repo.repo_id)]
    revs = {rv.commit_hash: rv for rv in r.revisions}
    assert repo.sha in revs and revs[repo.sha].nb_files == len(repo.files)
    assert "main" in revs[repo.sha].refs
    for path, data in repo.files.items():
        got = hf_hub_download(repo.repo_id, path, repo_type=repo.repo_type, cache_dir=env["HF_HUB_CACHE"],
                              local_files_only=True)
        assert open(got, "rb").read() == data, path
    assert not glob.glob(os.path.join(repo_dir(env, repo.repo_id, repo.repo_type + "s"), "blobs", "*.incomplete"))


def nothing_outside_cache(env):
    root = env["TMP_ROOT"]
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            full = os.path.join(dp, n)
            assert full.startswith(env["HF_HUB_CACHE"] + os.sep) or full in (env["HF_HUB_CACHE"],), full
            assert "evil" not in n, full


# ------------------------------------------------------------------ downloads

def test_download_whole_repo_and_huggingface_hub_reads_it(hub, env):
    p = mlx(env, "download", MODEL_ID, "--json")
    out = json.loads(p.stdout)
    snap = os.path.join(repo_dir(env), "snapshots", hub.model.sha)
    assert out["path"] == snap and out["commit"] == hub.model.sha
    assert out["files"] == len(hub.model.files) == out["downloaded"]
    assert "\r[" not in p.stderr  # no progress bar when stderr is not a terminal
    check_cache_complete(env, hub.model)
    assert open(os.path.join(repo_dir(env), "refs", "main")).read() == hub.model.sha
    # the listing was paged (Link: rel="next"), the LFS file came from the CDN origin
    assert len(hub.requests("GET", "/tree/")) >= 3
    assert len(hub.requests("GET", "/cdn/")) == 1
    lock = os.path.join(env["HF_HUB_CACHE"], ".locks", "models--test-org--minilm-tiny",
                        hashlib.sha256(hub.model.files["model.safetensors"]).hexdigest() + ".lock")
    assert os.path.isfile(lock)
    # plain output is the snapshot path; a second run downloads nothing (no HEAD, no GET of a file)
    hub.clear()
    p = mlx(env, "download", MODEL_ID)
    assert p.stdout.strip() == snap
    assert not hub.requests(where="/resolve/") and not hub.requests(where="/cdn/")


def test_token_sent_to_hub_never_to_cdn(hub, env):
    env["HF_TOKEN"] = "secret-token"
    mlx(env, "download", MODEL_ID)
    hub_reqs = [r for r in hub.log if r[0] == "hub"]
    cdn_reqs = [r for r in hub.log if r[0] == "cdn"]
    assert hub_reqs and cdn_reqs
    assert all(r[3] == "Bearer secret-token" for r in hub_reqs)
    assert all(r[3] is None for r in cdn_reqs)


def test_cache_dir_token_force_download(hub, env, tmp_path):
    other = str(tmp_path / "hub" / "other-cache")
    out = json.loads(mlx(env, "download", GATED_ID, "--cache-dir", other, "--token", "good-token", "--json").stdout)
    assert out["path"].startswith(other + "/models--test-org--gated/snapshots/")
    assert not os.path.exists(repo_dir(env, GATED_ID))
    hub.clear()
    out = json.loads(mlx(env, "download", GATED_ID, "--cache-dir", other, "--token", "good-token", "--force-download",
                         "--json").stdout)
    assert out["downloaded"] == len(hub.gated.files) and len(hub.requests("GET", "/cdn/")) == 1
    env2 = dict(env, HF_HUB_CACHE=other)
    check_cache_complete(env2, hub.gated)


def test_token_from_hf_home_file(hub, env):
    os.makedirs(env["HF_HOME"], exist_ok=True)
    with open(os.path.join(env["HF_HOME"], "token"), "w") as f:
        f.write("good-token\n")
    p = mlx(env, "download", GATED_ID, "--json")
    assert json.loads(p.stdout)["commit"] == hub.gated.sha


def test_renamed_repo_relative_redirects(hub, env):
    """A renamed repo answers 307 with a relative Location (followed, token kept: same origin);
    the LFS 302 to the CDN is not followed by HEAD but read as the download location."""
    hub.renamed["old-org/minilm-tiny"] = MODEL_ID
    env["HF_TOKEN"] = "secret-token"
    try:
        out = json.loads(mlx(env, "download", "old-org/minilm-tiny", "--json").stdout)
    finally:
        hub.renamed.clear()
    assert out["commit"] == hub.model.sha and out["files"] == len(hub.model.files)
    snap = os.path.join(repo_dir(env, "old-org/minilm-tiny"), "snapshots", hub.model.sha)
    assert out["path"] == snap
    for p, data in hub.model.files.items():
        assert open(os.path.join(snap, p), "rb").read() == data
    assert hub.requests("HEAD", "/old-org/minilm-tiny/resolve/") and hub.requests("HEAD", "/test-org/minilm-tiny/resolve/")
    assert all(r[3] == "Bearer secret-token" for r in hub.log if r[0] == "hub")
    assert all(r[3] is None for r in hub.log if r[0] == "cdn")
    assert not [r for r in hub.log if r[0] == "cdn" and r[1] == "HEAD"]


def test_progress_bar_on_a_terminal(hub, env):
    cmd = "%s download %s" % (BIN, MODEL_ID)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=env, timeout=CMD_TIMEOUT)
    assert p.returncode == 0, p.stdout
    n = len(hub.model.files)
    assert b"\r[" in p.stdout and b"100%" in p.stdout and b"%d/%d files" % (n, n) in p.stdout, p.stdout[-300:]


def test_mlxport_uses_a_cache_filled_by_snapshot_download(hub, env):
    path = snapshot_download(MODEL_ID, cache_dir=env["HF_HUB_CACHE"], endpoint=hub.endpoint)
    assert path.endswith(hub.model.sha)
    hub.clear()
    out = json.loads(mlx(env, "download", MODEL_ID, "--json").stdout)
    assert out["path"] == path and out["downloaded"] == 0
    assert not hub.requests(where="/resolve/") and not hub.requests(where="/cdn/")
    # on-demand resolution finds it without any request at all
    hub.clear()
    info = json.loads(mlx(env, "inspect", MODEL_ID, "--json").stdout)
    assert info["model_type"] == "bert" and not hub.log
    check_cache_complete(env, hub.model)


def test_files_include_exclude_local_dir(hub, env, tmp_path):
    out = json.loads(mlx(env, "download", MODEL_ID, "config.json", "1_Pooling/config.json", "--json").stdout)
    snap = out["path"]
    got = sorted(os.path.relpath(p, snap) for p in glob.glob(snap + "/**", recursive=True) if os.path.islink(p))
    assert got == ["1_Pooling/config.json", "config.json"] and out["files"] == 2
    check_snapshot_sane(env, hub.model)
    # one file: its path is printed, as hf download does
    assert mlx(env, "download", MODEL_ID, "vocab.txt").stdout.strip() == os.path.join(snap, "vocab.txt")
    out = json.loads(mlx(env, "download", MODEL_ID, "--include", "*.json", "--exclude", "1_Pooling/",
                         "--json").stdout)
    want = sorted(p for p in hub.model.files if p.endswith(".json") and not p.startswith("1_Pooling/"))
    assert out["files"] == len(want)
    local = tmp_path / "hub" / "local-copy"  # inside the cache root so nothing_outside_cache stays simple
    out = json.loads(mlx(env, "download", MODEL_ID, "--local-dir", str(local), "--json").stdout)
    assert out["path"] == str(local)
    for p, data in hub.model.files.items():
        assert open(local / p, "rb").read() == data and not os.path.islink(local / p)
        meta = open(local / ".cache" / "huggingface" / "download" / (p + ".metadata")).read().split("\n")
        assert meta[0] == hub.model.sha
    # huggingface_hub reads the local-dir metadata as its own
    got = hf_hub_download(MODEL_ID, "config.json", local_dir=str(local), local_files_only=True)
    assert open(got, "rb").read() == hub.model.files["config.json"]


def test_dataset_repo(hub, env):
    out = json.loads(mlx(env, "download", DS_ID, "--repo-type", "dataset", "--json").stdout)
    assert out["path"] == os.path.join(repo_dir(env, DS_ID, "datasets"), "snapshots", hub.ds.sha)
    check_cache_complete(env, hub.ds)
    assert hub.requests("GET", "/api/datasets/") and hub.requests("HEAD", "/datasets/test-org/tiny-ds/resolve/")


def test_entry_not_found_marker(hub, env):
    p = mlx(env, "download", MODEL_ID, "no-such-file.txt", check=False)
    assert p.returncode == 3 and "file not found" in p.stderr, p.stderr
    assert os.path.isfile(os.path.join(repo_dir(env), ".no_exist", hub.model.sha, "no-such-file.txt"))
    assert scan_cache_dir(env["HF_HUB_CACHE"]).warnings == []


def test_offline(hub, env):
    p = mlx(env, "download", MODEL_ID, check=False, timeout=30)
    assert p.returncode == 0
    hub.clear()
    env["HF_HUB_OFFLINE"] = "1"
    out = json.loads(mlx(env, "download", MODEL_ID, "--json").stdout)
    assert out["cache_only"] is True and not hub.log
    p = mlx(env, "download", DS_ID, "--repo-type", "dataset", check=False)
    assert p.returncode == 3 and "HF_HUB_OFFLINE" in p.stderr and not hub.log
    p = mlx(env, "inspect", "test-org/not-cached", check=False)
    assert p.returncode == 3 and "not in the Hugging Face cache" in p.stderr and "HF_HUB_OFFLINE" in p.stderr


def test_on_demand_download_for_model_commands(hub, env):
    info = json.loads(mlx(env, "inspect", MODEL_ID, "--json").stdout)
    assert info["model_type"] == "bert"
    check_cache_complete(env, hub.model)
    p = subprocess.run([BIN, "embed", "--model", MODEL_ID], input="hello world\n", capture_output=True, text=True,
                       env=env, timeout=CMD_TIMEOUT)
    assert p.returncode == 0, p.stderr
    vec = json.loads(p.stdout.splitlines()[0])["embedding"]
    assert len(vec) == 32 and all(np.isfinite(vec))


# ------------------------------------------------------------------ faults

def test_connection_dropped_mid_file_resumes_with_range(hub, env):
    hub.add_fault("drop", where="/cdn/", method="GET", count=1, after=1_000_000)
    mlx(env, "download", MODEL_ID)
    cdn = hub.requests("GET", "/cdn/")
    assert len(cdn) == 2 and cdn[1][4] == "bytes=1000000-", cdn
    check_cache_complete(env, hub.model)


def test_500_then_success(hub, env):
    hub.add_fault("status", where="/revision/", count=2, code=500)
    hub.add_fault("status", where="/resolve/main/config.json", method="HEAD", count=2, code=503)
    hub.add_fault("status", where="/resolve/", method="HEAD", count=1, code=502)
    t = time.time()
    mlx(env, "download", MODEL_ID)
    assert time.time() - t < 30
    assert len(hub.requests("GET", "/revision/")) == 3
    check_cache_complete(env, hub.model)


def test_429_with_retry_after(hub, env):
    hub.add_fault("status", where="/cdn/", count=1, code=429, retry_after=2)
    t = time.time()
    mlx(env, "download", MODEL_ID)
    assert time.time() - t >= 2.0
    assert len(hub.requests("GET", "/cdn/")) == 2
    check_cache_complete(env, hub.model)


def test_short_body_then_resume(hub, env):
    hub.add_fault("short", where="/cdn/", count=1, after=777_777)
    mlx(env, "download", MODEL_ID)
    cdn = hub.requests("GET", "/cdn/")
    assert len(cdn) == 2 and cdn[1][4] == "bytes=777777-"
    check_cache_complete(env, hub.model)


def test_200_answer_to_a_range_request_restarts(hub, env):
    hub.add_fault("drop", where="/cdn/", method="GET", count=1, after=500_000)
    hub.ignore_range = True
    try:
        mlx(env, "download", MODEL_ID)
    finally:
        hub.ignore_range = False
    cdn = hub.requests("GET", "/cdn/")
    assert len(cdn) == 2 and cdn[1][4] == "bytes=500000-"
    check_cache_complete(env, hub.model)


def test_wrong_size_is_refused(hub, env):
    hub.add_fault("size_plus", where="/resolve/main/model.safetensors", method="HEAD", count=None, extra=10)
    hub.add_fault("size_plus", where="/model.safetensors", method="HEAD", count=None, extra=10)
    p = mlx(env, "download", MODEL_ID, check=False)
    assert p.returncode == 3 and "size mismatch" in p.stderr, p.stderr
    snap = os.path.join(repo_dir(env), "snapshots", hub.model.sha)
    assert not os.path.lexists(os.path.join(snap, "model.safetensors"))
    check_snapshot_sane(env, hub.model)
    assert not glob.glob(os.path.join(repo_dir(env), "blobs", "*.incomplete"))


def test_etag_mismatch_is_refused(hub, env):
    hub.add_fault("corrupt", where="/cdn/", count=None)
    p = mlx(env, "download", MODEL_ID, check=False)
    assert p.returncode == 3 and "does not match its etag" in p.stderr, p.stderr
    digest = hashlib.sha256(hub.model.files["model.safetensors"]).hexdigest()
    assert not os.path.exists(os.path.join(repo_dir(env), "blobs", digest))
    assert not os.path.lexists(os.path.join(repo_dir(env), "snapshots", hub.model.sha, "model.safetensors"))
    check_snapshot_sane(env, hub.model)
    hub.clear()  # the server heals: the next run completes
    mlx(env, "download", MODEL_ID)
    check_cache_complete(env, hub.model)


def test_slow_server_times_out(hub, env):
    hub.add_fault("slow", where="/revision/", count=None, seconds=4)
    env.update(HF_HUB_ETAG_TIMEOUT="1", MP_HUB_MAX_ATTEMPTS="2")
    t = time.time()
    p = mlx(env, "download", MODEL_ID, check=False, timeout=60)
    assert p.returncode == 3 and "timed out" in p.stderr and "HF_HUB_ETAG_TIMEOUT" in p.stderr, p.stderr
    assert time.time() - t < 20
    hub.clear()
    # a body that stalls: HF_HUB_DOWNLOAD_TIMEOUT
    hub.add_fault("throttle", where="/cdn/", count=None, chunk=100_000, delay=3)
    env.update(HF_HUB_DOWNLOAD_TIMEOUT="1")
    p = mlx(env, "download", MODEL_ID, check=False, timeout=60)
    assert p.returncode == 3 and "timed out" in p.stderr, p.stderr
    check_snapshot_sane(env, hub.model)
    hub.clear()
    env.pop("MP_HUB_MAX_ATTEMPTS")
    mlx(env, "download", MODEL_ID)  # resumes what the stalled attempts kept
    check_cache_complete(env, hub.model)


def test_kill9_mid_download_then_rerun(hub, env):
    hub.add_fault("throttle", where="/cdn/", count=None, chunk=64 * 1024, delay=0.01)
    points = [0.002, 0.005, 0.008, 0.012] + [0.02 + 0.06 * i for i in range(20)]
    for delay in points:
        proc = subprocess.Popen([BIN, "download", MODEL_ID, "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        check_snapshot_sane(env, hub.model)
        info = scan_cache_dir(env["HF_HUB_CACHE"]) if os.path.isdir(env["HF_HUB_CACHE"]) else None
        assert info is None or info.warnings == [], info.warnings
    resumed = [r for r in hub.log if r[0] == "cdn" and r[4]]
    assert resumed, "no run resumed a partial file with Range"
    hub.clear()
    mlx(env, "download", MODEL_ID)
    check_cache_complete(env, hub.model)
    assert len(hub.requests("GET", "/cdn/")) <= 1


def test_two_processes_and_python_at_once(hub, env):
    hub.add_fault("throttle", where="/cdn/", count=None, chunk=256 * 1024, delay=0.05)
    procs = [subprocess.Popen([BIN, "download", MODEL_ID, "--json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = []

    def py():
        try:
            snapshot_download(MODEL_ID, cache_dir=env["HF_HUB_CACHE"], endpoint=hub.endpoint)
        except Exception as e:  # noqa: BLE001 (reported below)
            errs.append(e)
    th = threading.Thread(target=py)
    th.start()
    outs = [p.communicate(timeout=CMD_TIMEOUT) for p in procs]
    th.join(timeout=CMD_TIMEOUT)
    assert not th.is_alive() and not errs, errs
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e
        assert json.loads(o)["commit"] == hub.model.sha
    check_cache_complete(env, hub.model)
    # the lock made the blob download once per process at most, never twice at the same time
    assert len(hub.requests("GET", "/cdn/")) <= 3


# ------------------------------------------------------------------ bad input

def test_unknown_repo(hub, env):
    p = mlx(env, "download", "test-org/nope", check=False)
    assert p.returncode == 3 and "repository 'test-org/nope' not found" in p.stderr, p.stderr
    assert "/api/models/test-org/nope/revision/main" in p.stderr
    p = mlx(env, "inspect", "test-org/nope", check=False)
    assert p.returncode == 3 and "not found" in p.stderr
    nothing_outside_cache(env)


def test_gated_repo_without_token(hub, env):
    p = mlx(env, "download", GATED_ID, check=False)
    assert p.returncode == 3 and "gated" in p.stderr and "accept the terms" in p.stderr and "HF_TOKEN" in p.stderr
    env["HF_TOKEN"] = "good-token"
    mlx(env, "download", GATED_ID)
    check_cache_complete(env, hub.gated)


def test_private_repo_without_token(hub, env):
    p = mlx(env, "download", "test-org/private", check=False)
    assert p.returncode == 3 and "not found (HTTP 401)" in p.stderr and "no token is set" in p.stderr, p.stderr
    env["HF_TOKEN"] = "wrong-token"
    p = mlx(env, "download", "test-org/private", check=False)
    assert p.returncode == 3 and "a token was sent" in p.stderr, p.stderr
    env["HF_TOKEN"] = "good-token"
    mlx(env, "download", "test-org/private")
    check_cache_complete(env, hub.private)
    nothing_outside_cache(env)


def test_bad_revision(hub, env):
    p = mlx(env, "download", MODEL_ID, "--revision", "no-such-branch", check=False)
    assert p.returncode == 3 and "revision 'no-such-branch' not found" in p.stderr, p.stderr
    out = json.loads(mlx(env, "download", MODEL_ID, "--revision", hub.model.sha, "--json").stdout)
    assert out["commit"] == hub.model.sha and not os.path.exists(os.path.join(repo_dir(env), "refs", hub.model.sha))


@pytest.mark.parametrize("entry", [
    {"type": "file", "path": "../evil.txt", "size": 4, "oid": "0" * 40},
    {"type": "file", "path": "sub/../../evil.txt", "size": 4, "oid": "0" * 40},
    {"type": "file", "path": "/tmp/evil.txt", "size": 4, "oid": "0" * 40},
    {"type": "file", "path": "a//evil.txt", "size": 4, "oid": "0" * 40},
    {"type": "symlink", "path": "evil-link", "size": 4, "oid": "0" * 40},
])
def test_path_traversal_in_listing_refused(hub, env, entry):
    hub.model.extra_tree = [entry]
    try:
        p = mlx(env, "download", MODEL_ID, check=False)
    finally:
        hub.model.extra_tree = []
    assert p.returncode == 3 and "refusing the tree listing" in p.stderr, p.stderr
    assert not hub.requests(where="/resolve/") and not hub.requests(where="/cdn/")
    nothing_outside_cache(env)
    assert not os.path.exists("/tmp/evil.txt")


def test_symlink_inside_the_snapshot_refused(hub, env):
    """A folder of the snapshot that is a symlink (planted, or left by another tool) is never
    written through."""
    outside = os.path.join(env["TMP_ROOT"], "outside")
    os.makedirs(outside)
    snap = os.path.join(repo_dir(env), "snapshots", hub.model.sha)
    os.makedirs(snap)
    os.symlink(outside, os.path.join(snap, "1_Pooling"))
    p = mlx(env, "download", MODEL_ID, check=False)
    assert p.returncode == 3 and "refusing to write through" in p.stderr, p.stderr
    assert os.listdir(outside) == []


def test_bad_arguments(hub, env):
    p = mlx(env, "download", MODEL_ID, "../etc/passwd", check=False)
    assert p.returncode == 3 and "not a safe path" in p.stderr
    p = mlx(env, "download", "a/b/c", check=False)
    assert p.returncode == 2
    p = mlx(env, "download", check=False)
    assert p.returncode == 2
    p = mlx(env, "download", MODEL_ID, "--repo-type", "space", check=False)
    assert p.returncode == 2
    p = mlx(env, "download", "--help")
    assert "--local-dir" in p.stdout and "HF_ENDPOINT" in p.stdout
    assert huggingface_hub.__version__


def test_pipeline_plans_download_jobs(hub, env, tmp_path):
    """A repo id that is not cached becomes a download job of its own: shown by --dry-run (which
    makes no request), run before the conversions that need it, shared by the models that name
    it, logged; a failed download skips only its own conversions."""
    cfg = tmp_path / "pl.yaml"
    cfg.write_text("""
models:
  - name: tiny-q8
    hf_name: %s
    quantization: {bits: 8, group_size: 32, dtype: float32, max_accuracy_drop: 0.5, min_speedup: 0}
    benchmarks: [sts]
  - name: tiny-q4
    hf_name: %s
    quantization: {bits: 4, group_size: 32, dtype: float32, max_accuracy_drop: 0.5, min_speedup: 0}
    benchmarks: [sts]
  - name: absent
    hf_name: test-org/nope
    benchmarks: [sts]
datasets:
  sts: {name: glue, subset: stsb, task: semantic-similarity, max_samples: 20}
""" % (MODEL_ID, MODEL_ID))
    wd = tmp_path / "wd"
    args = ["pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "2", "--threads", "1"]
    p = mlx(env, *args, "--dry-run")
    lines = [ln.split()[0] for ln in p.stdout.splitlines() if ln.startswith("  download-")]
    assert lines == ["download-test-org--minilm-tiny", "download-test-org--nope"], p.stdout
    assert "after download-test-org--minilm-tiny" in p.stdout
    assert not hub.log and not wd.exists() and not os.path.exists(env["HF_HUB_CACHE"])
    p = mlx(env, *args, "-j", "2", timeout=300, check=False)
    assert p.returncode == 3 and "1 job(s) failed" in p.stderr, p.stderr  # the absent repo's download
    jobs = {os.path.basename(f)[:-5]: json.load(open(f)) for f in glob.glob(str(wd / "jobs" / "*.json"))}
    assert jobs["download-test-org--minilm-tiny"]["state"] == "done"
    assert jobs["download-test-org--minilm-tiny"]["kind"] == "download"
    assert jobs["download-test-org--nope"]["state"] == "failed"
    assert "not found" in open(wd / "logs" / "download-test-org--nope.log").read()
    assert jobs["convert-absent-q8g64"]["state"] == "skipped" and "download failed" in jobs["convert-absent-q8g64"]["reason"]
    for name in ("tiny-q8-q8g32-float32", "tiny-q4-q4g32-float32"):
        assert jobs["convert-" + name]["state"] == "done", jobs["convert-" + name]
        assert jobs["eval-%s-sts" % name]["state"] in ("done", "gate failed"), jobs["eval-%s-sts" % name]
    assert len(hub.requests("GET", "/revision/")) == 2  # one download per repo id, not per model
    check_cache_complete(env, hub.model)
    # rerun: the model is cached now, so there is no download job; everything is up to date
    hub.clear()
    p = mlx(env, *args, "--dry-run")
    assert "download-test-org--minilm-tiny" not in p.stdout and "download-test-org--nope" in p.stdout


def test_dataset_key_from_the_hub_on_demand(hub, env):
    """A built-in key with no local copy (anli) is read from its Hub dataset repo's Parquet file:
    only that file is downloaded; offline and not cached, the error says where it looked."""
    args = ["eval", "--model", NLI_ID, "--dataset", "anli", "--max-samples", "30", "--latency-requests", "2",
            "--threads", "1", "--json"]
    off = dict(env, HF_HUB_OFFLINE="1")
    p = mlx(off, *args, check=False)
    assert p.returncode == 3 and "facebook/anli" in p.stderr, p.stderr
    p = mlx(env, *args, check=False)
    assert p.returncode in (0, 1), p.stderr
    conv = json.loads(p.stdout)["converted"]
    assert conv["n_examples"] == 30 and 0 <= conv["accuracy"] <= 1
    assert conv["data_file"].endswith("datasets--facebook--anli/snapshots/%s/plain_text/dev_r1-00000-of-00001.parquet"
                                      % hub.anli.sha), conv["data_file"]
    snap = os.path.join(repo_dir(env, "facebook/anli", "datasets"), "snapshots", hub.anli.sha)
    assert os.path.isfile(os.path.join(snap, "plain_text", "dev_r1-00000-of-00001.parquet"))
    assert not os.path.lexists(os.path.join(snap, "plain_text", "train_r1-00000-of-00001.parquet"))
    assert scan_cache_dir(env["HF_HUB_CACHE"]).warnings == []
    # now cached: offline works
    p = mlx(off, *args, check=False)
    assert p.returncode in (0, 1), p.stderr


def test_pipeline_plans_dataset_download_jobs(hub, env, tmp_path):
    cfg = tmp_path / "pl.yaml"
    cfg.write_text("""
models:
  - name: nli-q8
    hf_name: %s
    task: nli
    quantization: {bits: 8, group_size: 32, dtype: float32, max_accuracy_drop: 1.0, min_speedup: 0}
    benchmarks: [anli]
datasets:
  anli: {name: anli, splits: [dev_r1], task: nli, max_samples: 20}
""" % NLI_ID)
    wd = tmp_path / "wd"
    args = ["pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "2", "--threads", "1"]
    p = mlx(env, *args, "--dry-run")
    assert "download-dataset-anli" in p.stdout and "data from the Hub" in p.stdout, p.stdout
    assert not hub.log
    p = mlx(env, *args, "-j", "2", timeout=300, check=False)
    assert p.returncode in (0, 1), p.stderr
    jobs = {os.path.basename(f)[:-5]: json.load(open(f)) for f in glob.glob(str(wd / "jobs" / "*.json"))}
    assert jobs["download-dataset-anli"]["state"] == "done", jobs
    ev = [v for k, v in jobs.items() if k.startswith("eval-")]
    assert len(ev) == 1 and ev[0]["state"] in ("done", "gate failed"), ev
    p = mlx(env, *args, "--dry-run")
    assert "download-" not in p.stdout  # both are cached now


def test_half_snapshot_is_completed_not_used(hub, env):
    """A cached snapshot without weights, or with a shard of its index missing, is completed by a
    model command before use (online)."""
    have = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "vocab.txt",
            "tokenizer.json", "tokenizer_config.json"]
    mlx(env, "download", "test-org/sharded", *have)
    snap = os.path.join(repo_dir(env, "test-org/sharded"), "snapshots", hub.sharded.sha)
    missing = os.path.join(snap, "model-00002-of-00002.safetensors")
    assert not os.path.lexists(missing)
    hub.clear()
    info = json.loads(mlx(env, "inspect", "test-org/sharded", "--json").stdout)
    assert os.path.isfile(missing) and len(hub.requests("GET", "/cdn/")) == 1
    assert info["model_type"] == "bert", info
    w = info["weights"]
    assert len(w["files"]) == 2 and w["tensor_count"] == 2 * 16 + 5, w  # every tensor of both shards
    check_cache_complete(env, hub.sharded)
    # single-file model: config only in the cache -> the weights are fetched by `embed`
    mlx(env, "download", MODEL_ID, "config.json")
    p = subprocess.run([BIN, "embed", "--model", MODEL_ID], input="hi\n", capture_output=True, text=True, env=env,
                       timeout=CMD_TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout.splitlines()[0])["embedding"]) == 32
