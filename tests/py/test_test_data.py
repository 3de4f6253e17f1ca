"""The one rule for third-party test data (scripts/test-data.sh, docs/testing.md), end to end:
$MLXPORT_TEST_DATA, then ../shared beside the checkout, then a fetch from the Hub with mlxport's own
hub client as tests/data/manifest.tsv lists it. The fetch runs against the project's local Hub
server (tests/py/hub_server.py, 127.0.0.1 only) serving the same files under the manifest's repo
ids and revisions; the result must equal the test data folder byte for byte. Also: a file whose
sha256 differs from the pin is refused and an earlier complete fetch is kept; offline with no data
the precheck fails at once with the three ways; the manifest covers every file of the folder.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import BIN, SOURCE_DIR, require_shared  # noqa: E402
from hub_server import HubServer, Repo  # noqa: E402

MANIFEST = os.path.join(SOURCE_DIR, "tests", "data", "manifest.tsv")


def manifest():
    rows = []
    with open(MANIFEST, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            p = line.rstrip("\n").split("\t")
            assert len(p) == 7, f"malformed manifest line: {line!r}"
            rows.append(p)
    return rows


@pytest.fixture
def checkout(tmp_path):
    """A checkout with no ../shared beside it: the script and the manifest only."""
    co = tmp_path / "nowhere" / "co"
    (co / "scripts").mkdir(parents=True)
    (co / "tests" / "data").mkdir(parents=True)
    shutil.copy(os.path.join(SOURCE_DIR, "scripts", "test-data.sh"), co / "scripts")
    shutil.copy(MANIFEST, co / "tests" / "data")
    return co


def script(co, *args, env):
    return subprocess.run(["bash", str(co / "scripts" / "test-data.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def hub():
    shared = require_shared()
    s = HubServer(page_size=20).start()
    groups = {}
    for local, rtype, repo, rev, path, _sha, _up in manifest():
        with open(os.path.join(shared, local), "rb") as f:
            groups.setdefault((rtype, repo, rev), {})[path] = f.read()
    for (rtype, repo, rev), files in groups.items():
        r = Repo(repo, files, repo_type=rtype)
        if rev != "main":  # the manifest pins a commit: the server's repo is at that commit
            r.sha = rev
            r.refs = {"main": rev}
        s.add_repo(r)
    try:
        yield s
    finally:
        s.stop()


def base_env(tmp_path):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("HF_", "HUGGING", "MLXPORT_TEST_DATA", "MP_SHARED_DIR"))}
    e.update(MP_CACHE=str(tmp_path / "cache"), MP_BIN=BIN, HF_HUB_CACHE=str(tmp_path / "hub"),
             HF_HOME=str(tmp_path / "home"))
    return e


def test_manifest_covers_the_test_data_folder():
    shared = require_shared()
    rows = manifest()
    listed = {r[0] for r in rows}
    on_disk = set()
    for top in ("models", "datasets"):
        for d, _, files in os.walk(os.path.join(shared, top)):
            on_disk |= {os.path.relpath(os.path.join(d, f), shared) for f in files}
    assert listed == on_disk, (sorted(on_disk - listed)[:5], sorted(listed - on_disk)[:5])
    for local, rtype, repo, rev, path, sha, _up in rows:
        assert rtype in ("model", "dataset") and "/" in repo and rev and path
        assert sha == "-" or len(sha) == 64
        if sha != "-":
            with open(os.path.join(shared, local), "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == sha, local


def test_fetch_from_the_hub_equals_the_folder(hub, checkout, tmp_path):
    shared = require_shared()
    e = base_env(tmp_path)
    e.update(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0")
    # nothing local: locate finds nothing, the precheck says the fetch will happen (online)
    assert script(checkout, "locate", env=e).returncode == 1
    p = script(checkout, "precheck", env={**e, "MP_TEST_DATA_PROBE": "sentence-transformers/all-MiniLM-L6-v2"})
    assert p.returncode == 0, p.stderr
    t0 = time.time()
    p = script(checkout, "ensure", env=e)
    assert p.returncode == 0, p.stderr
    fetched = p.stdout.strip()
    assert fetched == str(tmp_path / "cache" / "test-data")
    print(f"\nfetched {len(manifest())} files in {time.time() - t0:.1f}s")
    for local, *_ in manifest():
        with open(os.path.join(shared, local), "rb") as a, open(os.path.join(fetched, local), "rb") as b:
            assert a.read() == b.read(), local
    # the manifest's pinned revisions were asked for, and every repo through mlxport's client
    assert hub.requests("GET", "/api/models/FacebookAI/roberta-large-mnli/revision/2a8f12d2")
    assert hub.requests("GET", "/api/datasets/mlxport/test-data/revision/main")
    # now locate finds the fetched folder; ensure does not fetch again
    n = len(hub.requests())
    assert script(checkout, "locate", env=e).stdout.strip() == fetched
    assert script(checkout, "ensure", env=e).stdout.strip() == fetched and len(hub.requests()) == n
    # MLXPORT_TEST_DATA comes first
    other = tmp_path / "other"
    (other / "models").mkdir(parents=True)
    (other / "datasets").mkdir()
    assert script(checkout, "locate", env={**e, "MLXPORT_TEST_DATA": str(other)}).stdout.strip() == str(other)


def test_a_changed_file_is_refused_and_the_old_fetch_kept(hub, checkout, tmp_path):
    e = base_env(tmp_path)
    e.update(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0")
    assert script(checkout, "fetch", env=e).returncode == 0
    fetched = tmp_path / "cache" / "test-data"
    # the server's roberta config changes under the same revision (a tampered mirror)
    r = hub.repos[("model", "FacebookAI/roberta-large-mnli")]
    r.files["config.json"] = r.files["config.json"].replace(b"1024", b"1025")
    p = script(checkout, "fetch", env={**e, "HF_HUB_CACHE": str(tmp_path / "hub2")})
    assert p.returncode == 1
    assert "config.json" in p.stderr and "sha256" in p.stderr and "refusing" in p.stderr, p.stderr
    # the earlier complete fetch is untouched and still found
    assert (fetched / ".complete").exists()
    assert script(checkout, "locate", env=e).stdout.strip() == str(fetched)
    assert not (tmp_path / "cache" / "test-data.partial").exists()


def test_offline_without_data_stops_at_once(checkout, tmp_path):
    e = base_env(tmp_path)
    e["HF_HUB_OFFLINE"] = "1"
    t0 = time.time()
    p = script(checkout, "precheck", env=e)
    assert p.returncode == 1 and time.time() - t0 < 30
    for way in ("MLXPORT_TEST_DATA", "beside the checkout", "fetches it from the Hugging Face Hub"):
        assert way in p.stderr, p.stderr
    # the tests themselves fail (never skip) without data: the C harness says how to provide it
    p = subprocess.run([os.path.join(os.environ.get("MP_BUILD_DIR", os.path.join(SOURCE_DIR, "build")), "test_hf")],
                       capture_output=True, text=True, env={**e, "MP_SOURCE_DIR": str(checkout)}, timeout=60)
    assert p.returncode == 1 and "MLXPORT_TEST_DATA" in p.stderr, p.stderr
    # a wrong MLXPORT_TEST_DATA is an error, not a fall-through
    p = script(checkout, "locate", env={**e, "MLXPORT_TEST_DATA": str(tmp_path)})
    assert p.returncode == 2 and "not a test data folder" in p.stderr


def test_publish_the_mirror_then_fetch_it(checkout, tmp_path):
    """`scripts/test-data.sh publish DIR` uploads the mirror repo's files with `mlxport upload` (the
    maintainers' one-time step); a fetch then gets them back byte for byte. The model repos are
    served as upstream has them."""
    shared = require_shared()
    s = HubServer(page_size=50).start()
    try:
        groups = {}
        for local, rtype, repo, rev, path, _sha, _up in manifest():
            if repo == "mlxport/test-data":
                continue
            with open(os.path.join(shared, local), "rb") as f:
                groups.setdefault((rtype, repo, rev), {})[path] = f.read()
        for (rtype, repo, rev), files in groups.items():
            r = Repo(repo, files, repo_type=rtype)
            if rev != "main":
                r.sha, r.refs = rev, {"main": rev}
            s.add_repo(r)
        e = base_env(tmp_path)
        e.update(HF_ENDPOINT=s.endpoint, HF_HUB_OFFLINE="0", HF_TOKEN="write-token")
        p = script(checkout, "publish", shared, env=e)
        assert p.returncode == 0, p.stderr
        mirror = s.repos[("dataset", "mlxport/test-data")]
        want = {r[4] for r in manifest() if r[2] == "mlxport/test-data"}
        assert want <= set(mirror.files) and set(mirror.files) - want <= {".gitattributes"}, set(mirror.files) - want
        p = script(checkout, "fetch", env=e)
        assert p.returncode == 0, p.stderr
        fetched = p.stdout.strip()
        for local, *_ in manifest():
            with open(os.path.join(shared, local), "rb") as a, open(os.path.join(fetched, local), "rb") as b:
                assert a.read() == b.read(), local
    finally:
        s.stop()
