"""`mlxport upload` and publishing (issue 14) against the project's test Hub server
(tests/py/hub_server.py, 127.0.0.1 only, started and stopped here):

- the server itself is validated with the official huggingface_hub client (create_repo,
  upload_folder, hf_hub_download, HF_HUB_DISABLE_XET=1): both clients are accepted and produce
  the same repo state for the same folder (basic and multipart LFS transfers);
- round trip: convert the demo model, record an evaluation in its card, upload, download with
  huggingface_hub.snapshot_download and with `mlxport download`: same bytes, same eval numbers;
  the card's metadata passes the Hub's rules; an unchanged re-upload sends nothing, no commit;
- faults: an LFS PUT dropped half-way, a 409 (the branch moved), bad / read-only tokens, a 413,
  the server dying before the commit, kill -9 at several points: never a commit naming a missing
  LFS object, and the rerun completes;
- gating: a pipeline whose q4 model fails its accuracy gate publishes q8 and not q4.
Every wait is bounded."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["HF_HUB_OFFLINE"] = "0"  # CTest sets 1; huggingface_hub reads it at import time
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)


def _free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


# huggingface_hub builds URLs from HF_ENDPOINT read at import time: the test server's port is chosen first
HUB_PORT, CDN_PORT = _free_port(), _free_port()
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:%d" % HUB_PORT

import pytest  # noqa: E402
import yaml  # noqa: E402

import huggingface_hub  # noqa: E402
from huggingface_hub import HfApi, hf_hub_download, snapshot_download  # noqa: E402

from conftest import BIN, hub_cache, minilm_dir, require_shared  # noqa: E402
from hub_server import HubServer, validate_card_metadata  # noqa: E402

TIMEOUT = 120
WRITE = "write-token"


@pytest.fixture(scope="module")
def hub():
    s = HubServer().start(HUB_PORT, CDN_PORT)
    s.multipart_threshold = 150_000  # the 300 kB test weights go multipart, the 60 kB ones basic
    s.chunk_size = 64 * 1024
    assert huggingface_hub.constants.ENDPOINT == s.endpoint
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def env(hub, tmp_path):
    hub.clear()
    hub.on_request = None
    hub.strict_lfs = True
    hub.lose_commit_answers = 0
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    e.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "home"), HF_HUB_CACHE=str(tmp_path / "hub"),
             HF_HUB_OFFLINE="0", HF_TOKEN=WRITE, HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="5",
             MP_HUB_MAX_ATTEMPTS="3")
    return e


def mlx(env, *args, check=True, timeout=TIMEOUT):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("mlxport %s exited %d:\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


CARD = """---
library_name: mlx
license: apache-2.0
base_model: sentence-transformers/all-MiniLM-L6-v2
base_model_relation: quantized
pipeline_tag: sentence-similarity
tags:
- mlx
---

# test folder
"""


def make_folder(root, seed=0, big=300_000, small=60_000):
    """A folder like a converted model: regular files, a nested one, a multipart and a basic LFS file."""
    import random
    rnd = random.Random(seed)
    os.makedirs(os.path.join(root, "1_Pooling"), exist_ok=True)
    files = {"config.json": b'{"model_type": "bert", "seed": %d}' % seed,
             "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
             "README.md": CARD.encode(),
             "model.safetensors": bytes(rnd.getrandbits(8) for _ in range(big)),
             "extra.bin": bytes(rnd.getrandbits(8) for _ in range(small))}
    for p, b in files.items():
        with open(os.path.join(root, p), "wb") as f:
            f.write(b)
    return files


def repo_state(hub, repo_id, rev="main"):
    r = hub.repos[("model", repo_id)]
    return {p: hashlib.sha256(b).hexdigest() for p, b in r.snapshot(r.refs[rev]).items()}


def no_broken_commit(hub):
    bad = [c for c in hub.commits if c["missing_lfs"]]
    assert not bad, "commits naming missing LFS objects: %s" % [(c["repo"], c["missing_lfs"]) for c in bad]


def folder_state(files):
    return {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}


# ------------------------------------------------------------------ the server vs the official client

def test_both_clients_accepted_same_state(hub, env, tmp_path):
    files = make_folder(str(tmp_path / "f"))
    api = HfApi(endpoint=hub.endpoint, token=WRITE)
    api.create_repo("org/by-hf", exist_ok=True)
    api.upload_folder(folder_path=str(tmp_path / "f"), repo_id="org/by-hf", commit_message="by hf")
    assert hub.requests("POST", "/api/validate-yaml")  # huggingface_hub checks the card metadata first
    hf_puts = hub.requests("PUT")
    assert any("/part/" in r[2] for r in hf_puts) and any("/upload/" in r[2] for r in hf_puts)
    hub.clear()
    out = json.loads(mlx(env, "upload", str(tmp_path / "f"), "org/by-mlxport", "--json").stdout)
    assert out["created_repo"] and out["committed"] and out["lfs_uploaded"] == 2
    puts = hub.requests("PUT")
    assert any("/part/" in r[2] for r in puts) and any("/upload/" in r[2] for r in puts)
    assert all(r[3] is None for r in hub.log if r[0] == "cdn")  # no token to the storage origin
    assert all(r[3] == "Bearer " + WRITE for r in hub.log if r[0] == "hub" and "complete_multipart" not in r[2])
    a, b = repo_state(hub, "org/by-hf"), repo_state(hub, "org/by-mlxport")
    assert a == b == dict(folder_state(files), **{".gitattributes": a[".gitattributes"]})
    ra, rb = hub.repos[("model", "org/by-hf")], hub.repos[("model", "org/by-mlxport")]
    assert ra.lfs_paths == rb.lfs_paths == {"model.safetensors", "extra.bin"}
    commit = [c for c in hub.commits if c["repo"] == "org/by-mlxport"][-1]
    assert commit["parent"] == out["parent_commit"] and out["commit"] == rb.sha
    no_broken_commit(hub)
    # both repos download again with the official client
    for rid in ("org/by-hf", "org/by-mlxport"):
        for p, data in files.items():
            got = hf_hub_download(rid, p, endpoint=hub.endpoint, cache_dir=str(tmp_path / "dl"), token=WRITE)
            assert open(got, "rb").read() == data, (rid, p)
    # huggingface_hub uploading onto mlxport's repo and back changes nothing: same oids
    hub.clear()
    api.upload_folder(folder_path=str(tmp_path / "f"), repo_id="org/by-mlxport")
    assert not hub.requests("PUT") and hub.repos[("model", "org/by-mlxport")].sha == out["commit"]


def test_unchanged_rerun_is_a_noop_and_changes_send_only_the_difference(hub, env, tmp_path):
    d = str(tmp_path / "f")
    make_folder(d, seed=1)
    first = json.loads(mlx(env, "upload", d, "org/noop", "--json").stdout)
    n_commits = len(hub.commits)
    hub.clear()
    out = json.loads(mlx(env, "upload", d, "org/noop", "--json").stdout)
    assert not out["committed"] and out["commit"] == first["commit"] and out["files_changed"] == 0
    assert len(hub.commits) == n_commits
    assert not hub.requests("PUT") and not hub.requests(where="/lfs/objects/batch") and not hub.requests(where="/commit/")
    p = mlx(env, "upload", d, "org/noop")
    assert "up to date" in p.stdout
    # one regular file changed: one commit line, no LFS transfer
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"changed": true}')
    hub.clear()
    out = json.loads(mlx(env, "upload", d, "org/noop", "--json", "--commit-message", "config only").stdout)
    assert out["committed"] and out["files_changed"] == 1 and out["lfs_uploaded"] == 0 and not hub.requests("PUT")
    assert hub.commits[-1]["summary"] == "config only" and hub.commits[-1]["parent"] == first["commit"]


def test_dry_run_create_pr_branch(hub, env, tmp_path):
    d = str(tmp_path / "f")
    make_folder(d, seed=2)
    out = json.loads(mlx(env, "upload", d, "org/dry", "--dry-run", "--json").stdout)
    assert out["dry_run"] and out["repo_existed"] is False and not out["committed"]
    acts = {f["path"]: (f["action"], f["mode"]) for f in out["files"]}
    assert acts["model.safetensors"] == ("would-upload", "lfs") and acts["config.json"] == ("would-commit", "regular")
    assert ("model", "org/dry") not in hub.repos and not hub.requests("PUT")
    text = mlx(env, "upload", d, "org/dry", "--dry-run").stdout
    assert "would create org/dry" in text and "nothing was created" in text
    base = json.loads(mlx(env, "upload", d, "org/dry", "--json").stdout)["commit"]
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"pr": 1}')
    out = json.loads(mlx(env, "upload", d, "org/dry", "--dry-run", "--json").stdout)
    assert {f["path"]: f["action"] for f in out["files"]}["config.json"] == "would-commit"
    assert {f["path"]: f["why"] for f in out["files"]}["model.safetensors"] == "the repo has this exact file"
    pr = json.loads(mlx(env, "upload", d, "org/dry", "--create-pr", "--json").stdout)
    repo = hub.repos[("model", "org/dry")]
    assert pr["pr_url"].endswith("/discussions/1") and repo.refs["main"] == base and repo.refs["refs/pr/1"] == pr["commit"]
    br = json.loads(mlx(env, "upload", d, "org/dry", "--revision", "dev", "--json").stdout)
    assert repo.refs["dev"] == br["commit"] and repo.refs["main"] == base
    assert mlx(env, "upload", d, "org/dry", "--create-pr", "--revision", "dev", check=False).returncode == 2
    h = mlx(env, "upload", "--help").stdout
    assert "--create-pr" in h and "--dry-run" in h and "--json" in h


# ------------------------------------------------------------------ faults

def test_lfs_put_dropped_half_way_then_rerun(hub, env, tmp_path):
    d = str(tmp_path / "f")
    files = make_folder(d, seed=3)
    hub.strict_lfs = False  # a commit naming a missing object would be recorded, not refused
    hub.add_fault("drop", where="/upload/", method="PUT", count=1, after=20_000)
    p = mlx(dict(env, MP_HUB_MAX_ATTEMPTS="1"), "upload", d, "org/drop", check=False)
    assert p.returncode == 3 and "uploading extra.bin" in p.stderr, p.stderr
    assert len([c for c in hub.commits if c["repo"] == "org/drop"]) == 0
    out = json.loads(mlx(env, "upload", d, "org/drop", "--json").stdout)
    assert out["committed"] and repo_state(hub, "org/drop")["extra.bin"] == folder_state(files)["extra.bin"]
    # with retries the same fault is absorbed within one run (a multipart part this time)
    hub.add_fault("drop", where="/part/", method="PUT", count=1, after=10_000)
    with open(os.path.join(d, "model.safetensors"), "ab") as f:
        f.write(b"more")
    p = mlx(env, "upload", d, "org/drop")
    assert "retrying" in p.stderr
    no_broken_commit(hub)


def test_commit_refused_409_when_the_branch_moved(hub, env, tmp_path):
    d = str(tmp_path / "f")
    make_folder(d, seed=4)
    mlx(env, "upload", d, "org/moved")
    with open(os.path.join(d, "model.safetensors"), "ab") as f:
        f.write(b"changed weights")
    repo = hub.repos[("model", "org/moved")]
    moved = []

    def someone_else_commits(h, method, path):  # another client commits while we upload
        if method == "POST" and "/commit/" in path and not moved:
            moved.append(1)
            files = dict(repo.files, **{"other.txt": b"by someone else"})
            sha = hashlib.sha1(b"other").hexdigest()
            repo.snapshots[sha] = files
            repo.refs["main"], repo.files, repo.sha = sha, files, sha

    hub.on_request = someone_else_commits
    hub.clear()
    p = mlx(env, "upload", d, "org/moved", check=False)
    assert p.returncode == 3 and "409" in p.stderr and "moved" in p.stderr and "run the upload again" in p.stderr.lower()
    assert hub.requests("PUT")  # the new weights went up before the refused commit
    hub.on_request = None
    hub.clear()
    out = json.loads(mlx(env, "upload", d, "org/moved", "--json").stdout)
    assert out["committed"] and out["parent_commit"] == hashlib.sha1(b"other").hexdigest()
    assert not hub.requests("PUT") and out["lfs_already_on_server"] == 1  # not sent twice
    assert "other.txt" in repo_state(hub, "org/moved")


def test_commit_answer_lost_then_retry_sees_its_own_commit(hub, env, tmp_path):
    """The commit lands but its answer is lost: the retry gets 409 (the head moved: to our commit);
    the client recognises the head as this folder instead of failing."""
    d = str(tmp_path / "f")
    files = make_folder(d, seed=9)
    hub.lose_commit_answers = 1
    p = mlx(env, "upload", d, "org/lost", "--json")
    out = json.loads(p.stdout)
    assert out["committed"] and out["commit"] == hub.repos[("model", "org/lost")].sha
    assert "holds exactly this folder" in p.stderr
    assert len([c for c in hub.commits if c["repo"] == "org/lost"]) == 1
    st = repo_state(hub, "org/lost")
    assert st == dict(folder_state(files), **{".gitattributes": st[".gitattributes"]})


def test_auth_and_size_errors(hub, env, tmp_path):
    d = str(tmp_path / "f")
    make_folder(d, seed=5)
    p = mlx(dict(env, HF_TOKEN="bad-token"), "upload", d, "org/auth", check=False)
    assert p.returncode == 3 and "401" in p.stderr and "HF_TOKEN" in p.stderr and "invalid" in p.stderr
    e = dict(env)
    e.pop("HF_TOKEN")
    p = mlx(e, "upload", d, "org/auth", check=False)
    assert p.returncode == 3 and "401" in p.stderr and "missing" in p.stderr
    p = mlx(dict(env, HF_TOKEN="read-token"), "upload", d, "org/auth", check=False)
    assert p.returncode == 3 and "403" in p.stderr and "write" in p.stderr
    assert ("model", "org/auth") not in hub.repos
    hub.add_fault("status", where="/commit/", method="POST", count=1, code=413, message="Payload Too Large")
    p = mlx(env, "upload", d, "org/auth", check=False)
    assert p.returncode == 3 and "413" in p.stderr and "10 MB" in p.stderr
    assert len(hub.repos[("model", "org/auth")].snapshots) == 1  # only the creation commit
    mlx(env, "upload", d, "org/auth")
    no_broken_commit(hub)


def test_server_dies_before_commit_then_rerun(hub, env, tmp_path):
    d = str(tmp_path / "f")
    files = make_folder(d, seed=6)
    hub.strict_lfs = False
    hub.add_fault("die", where="/commit/", method="POST", count=1)
    hub_port, cdn_port = int(hub.endpoint.rsplit(":", 1)[1]), int(hub.cdn.rsplit(":", 1)[1])
    try:
        p = mlx(env, "upload", d, "org/dies", check=False, timeout=60)
        assert p.returncode == 3, p.stderr
        assert "committing" in p.stderr
    finally:
        for _ in range(50):  # bounded: the old sockets close quickly
            try:
                hub.stop() if hub._servers else None
                hub.start(hub_port, cdn_port)
                break
            except OSError:
                time.sleep(0.1)
    assert not [c for c in hub.commits if c["repo"] == "org/dies"]
    hub.clear()
    out = json.loads(mlx(env, "upload", d, "org/dies", "--json").stdout)
    assert out["committed"] and out["lfs_uploaded"] == 0 and out["lfs_already_on_server"] == 2
    assert repo_state(hub, "org/dies") == dict(folder_state(files), **{".gitattributes": repo_state(hub, "org/dies")[".gitattributes"]})
    no_broken_commit(hub)


@pytest.mark.parametrize("where", ["/preupload/", "/part/", "/upload/", "/verify", "/commit/"])
def test_kill9_then_rerun(hub, env, tmp_path, where):
    d = str(tmp_path / "f")
    files = make_folder(d, seed=7)
    repo_id = "org/kill" + where.strip("/").replace("/", "-")
    hub.strict_lfs = False
    reached, release = threading.Event(), threading.Event()

    def hold(h, method, path):
        if where in path and not reached.is_set():
            reached.set()
            release.wait(20)

    hub.on_request = hold
    proc = subprocess.Popen([BIN, "upload", d, repo_id, "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert reached.wait(30), "the upload never reached %s" % where
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    hub.on_request = None
    time.sleep(0.2)  # let a held handler finish against the dead client
    made = [c for c in hub.commits if c["repo"] == repo_id]
    # killed while the server held the whole commit request: the server may still apply it (complete)
    assert not made or (where == "/commit/" and len(made) == 1 and not made[0]["missing_lfs"])
    out = json.loads(mlx(env, "upload", d, repo_id, "--json").stdout)
    assert out["committed"] or made
    st = repo_state(hub, repo_id)
    assert st == dict(folder_state(files), **{".gitattributes": st[".gitattributes"]})
    no_broken_commit(hub)


# ------------------------------------------------------------------ round trip with the demo model

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not minilm_dir():  # never a silent skip (docs/testing.md)
        pytest.fail("all-MiniLM-L6-v2 is not in the hub cache: run scripts/setup.sh models", pytrace=False)
    require_shared()  # STS-B for the evaluations
    root = tmp_path_factory.mktemp("demo")
    out = root / "all-MiniLM-L6-v2-q8"
    e = dict(os.environ, HF_HUB_CACHE=hub_cache(), HF_HUB_OFFLINE="1")
    subprocess.run([BIN, "convert", "--hf-path", "sentence-transformers/all-MiniLM-L6-v2", "--mlx-path", str(out), "-q",
                    "--q-bits", "8"], check=True, capture_output=True, env=e, timeout=TIMEOUT)
    return out, e


EVAL_ARGS = ["--dataset", "stsb", "--max-samples", "30", "--latency-requests", "1", "--threads", "1", "--json"]


def test_roundtrip_convert_upload_download_eval(hub, env, tmp_path, demo):
    out, e_off = demo
    ev = subprocess.run([BIN, "eval", "--model", str(out), "--baseline", "sentence-transformers/all-MiniLM-L6-v2",
                         *EVAL_ARGS], capture_output=True, text=True, env=e_off, timeout=TIMEOUT)
    assert ev.returncode in (0, 1), ev.stderr
    assert "recorded in" in ev.stderr
    card = open(out / "README.md").read()
    assert validate_card_metadata(card) == []
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "mlx" and meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["base_model_relation"] == "quantized" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "sentence-similarity" and {"mlx", "8-bit", "sentence-similarity"} <= set(meta["tags"])
    res = meta["model-index"][0]["results"][0]
    conv = json.loads(ev.stdout)["converted"]
    assert res["dataset"]["name"] == "stsb" and {m["type"]: m["value"] for m in res["metrics"]}["spearman"] == \
        pytest.approx(conv["spearman"], rel=1e-5)
    assert "## Evaluation" in card and "| stsb | 30 | spearman |" in card and "mlxport eval --model" in card
    assert "mlxport convert --hf-path sentence-transformers/all-MiniLM-L6-v2" in card and "at commit `" in card
    # upload (the card passes the server's metadata rules, as huggingface_hub checks them)
    up = json.loads(mlx(env, "upload", str(out), "test-org/minilm-q8-mlx", "--json").stdout)
    assert up["committed"] and up["lfs_uploaded"] == 1
    local = {}
    for dp, _, fns in os.walk(out):
        for fn in fns:
            full = os.path.join(dp, fn)
            local[os.path.relpath(full, out)] = open(full, "rb").read()
    # download with huggingface_hub and with mlxport: identical bytes
    snap = snapshot_download("test-org/minilm-q8-mlx", endpoint=hub.endpoint, cache_dir=str(tmp_path / "hf"),
                             token=WRITE)
    mp = json.loads(mlx(dict(env, HF_HUB_CACHE=str(tmp_path / "mp")), "download", "test-org/minilm-q8-mlx",
                        "--json").stdout)["path"]
    for d in (snap, mp):
        got = {}
        for dp, _, fns in os.walk(d):
            for fn in fns:
                full = os.path.join(dp, fn)
                got[os.path.relpath(full, d)] = open(full, "rb").read()
        got.pop(".gitattributes")
        assert got == local, d
    # the downloaded copy evaluates to the same numbers (and its cached card is not edited)
    ev2 = subprocess.run([BIN, "eval", "--model", mp, "--baseline", "sentence-transformers/all-MiniLM-L6-v2",
                          *EVAL_ARGS], capture_output=True, text=True, env=e_off, timeout=TIMEOUT)
    assert ev2.returncode in (0, 1), ev2.stderr
    conv2 = json.loads(ev2.stdout)["converted"]
    for k in ("spearman", "pearson", "spearman_ci95", "n_examples"):
        assert conv2[k] == conv[k], k
    assert os.path.islink(os.path.join(mp, "README.md"))
    # re-uploading the unchanged folder is a no-op
    hub.clear()
    again = json.loads(mlx(env, "upload", str(out), "test-org/minilm-q8-mlx", "--json").stdout)
    assert not again["committed"] and not hub.requests("PUT") and not hub.requests(where="/commit/")


def test_convert_upload_repo(hub, env, tmp_path, demo):
    e = dict(env, HF_HUB_CACHE=hub_cache())
    out = tmp_path / "q4"
    p = mlx(e, "convert", "--hf-path", "sentence-transformers/all-MiniLM-L6-v2", "--mlx-path", str(out), "-q",
            "--upload-repo", "test-org/minilm-q4-direct")
    assert "uploaded" in p.stderr
    r = hub.repos[("model", "test-org/minilm-q4-direct")]
    assert r.files["README.md"] == open(out / "README.md", "rb").read() and "model.safetensors" in r.lfs_paths


# ------------------------------------------------------------------ pipeline gating

def test_pipeline_publishes_only_models_whose_gates_pass(hub, env, tmp_path, demo):
    cfg = tmp_path / "pl.yaml"
    cfg.write_text("""
upload: {repo: "test-org/{name}", private: false}
models:
  - name: gate-q8
    hf_name: sentence-transformers/all-MiniLM-L6-v2
    quantization: {bits: 8, group_size: 64, dtype: float32, max_accuracy_drop: 0.05, min_speedup: 0}
    benchmarks: [sts]
  - name: gate-q4
    hf_name: sentence-transformers/all-MiniLM-L6-v2
    quantization: {bits: 4, group_size: 128, dtype: float32, max_accuracy_drop: 0.001, min_speedup: 0}
    benchmarks: [sts]
  - name: not-published
    hf_name: sentence-transformers/all-MiniLM-L6-v2
    quantization: {bits: 8, group_size: 32, dtype: float32, min_speedup: 0}
    benchmarks: [sts]
    upload: false
datasets:
  sts: {name: glue, subset: stsb, task: semantic-similarity, max_samples: 30}
""")
    e = dict(env, HF_HUB_CACHE=hub_cache())
    wd = tmp_path / "wd"
    base = [BIN, "pipeline", "--config", str(cfg), "--workdir", str(wd), "--latency-requests", "1", "--threads", "1",
            "--models", "gate-q8,gate-q4"]
    dry = subprocess.run(base + ["--dry-run"], capture_output=True, text=True, env=e, timeout=TIMEOUT)
    assert dry.returncode == 0 and "publish gate-q8" in dry.stdout and "only if every gate passes" in dry.stdout
    assert not hub.requests("POST")
    p = subprocess.run(base, capture_output=True, text=True, env=e, timeout=300)
    assert p.returncode == 1, p.stderr  # a gate failed
    assert ("model", "test-org/gate-q8") in hub.repos and ("model", "test-org/gate-q4") not in hub.repos
    assert ("model", "test-org/not-published") not in hub.repos
    assert "publish gate-q4" in p.stderr and "not uploaded: a quality gate failed: sts: spearman_drop" in p.stderr
    assert "| gate-q4 | test-org/gate-q4 | not uploaded | a quality gate failed" in p.stdout
    assert "| gate-q8 | test-org/gate-q8 | uploaded | every quality gate passed" in p.stdout
    ups = {u["model"]: u for u in json.load(open(wd / "uploads.json"))["uploads"]}
    assert ups["gate-q8"]["result"] == "uploaded" and ups["gate-q4"]["result"] == "not uploaded"
    card = hub.repos[("model", "test-org/gate-q8")].files["README.md"].decode()
    assert validate_card_metadata(card) == [] and "**Every quality gate passed.**" in card
    dry = subprocess.run(base + ["--dry-run"], capture_output=True, text=True, env=e, timeout=TIMEOUT)
    assert [ln for ln in dry.stdout.splitlines() if ln.startswith("publish gate-q8") and "would upload: every quality gate passed" in ln], dry.stdout
    assert "would not upload: a quality gate failed: sts: spearman_drop" in dry.stdout
    # on request the q4 model is published too, and its card says a gate failed
    p = subprocess.run(base + ["--upload-even-if-gates-fail"], capture_output=True, text=True, env=e, timeout=300)
    card = hub.repos[("model", "test-org/gate-q4")].files["README.md"].decode()
    assert "--upload-even-if-gates-fail although a quality gate failed" in card and "**FAIL**" in card
    assert validate_card_metadata(card) == []
    no_broken_commit(hub)


def test_progress_bar_on_a_terminal(hub, env, tmp_path):
    d = str(tmp_path / "f")
    make_folder(d, seed=8)
    cmd = "%s upload %s org/tty" % (BIN, d)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, env=env, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout
    assert b"\rupload [" in p.stdout and b"100%" in p.stdout and b"2/2 LFS files" in p.stdout, p.stdout[-300:]
