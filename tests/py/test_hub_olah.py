"""mlxport's Hub client against a real third-party Hub server: olah (PyPI), a self-hosted Hugging
Face mirror, run with `offline = true` and `mirrors-path` pointing at local git repositories this
test builds (LFS objects under .git/lfs/objects). It listens on 127.0.0.1 only and is started and
stopped here. olah lives in its own virtual environment (.cache/venv-olah, made by
scripts/setup.sh: it needs huggingface_hub >= 1, which the reference venv's transformers refuses)."""
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["HF_HUB_OFFLINE"] = "0"  # CTest sets 1; huggingface_hub reads it at import time
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import hashlib  # noqa: E402

import pyarrow as pa  # noqa: E402
import yaml  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download  # noqa: E402

from conftest import BIN, SHARED, SOURCE_DIR  # noqa: E402
from test_hub import tiny_bert_files  # noqa: E402

CACHE = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
OLAH = os.path.join(CACHE, "venv-olah", "bin", "olah-cli")
MODEL_ID = "test-org/minilm-tiny"
DS_ID = "test-org/glue-mini"
# The eleven models of the original configuration, under their real repo ids: random-weight twins
# (tools/make_hub_twins.py: real configs shrunk, real tokenizers and sentence-transformers files).
ORIGINAL = [(m["name"], m["hf_name"]) for m in
            yaml.safe_load(open(os.path.join(SOURCE_DIR, "config", "models.yaml")))["models"]]


def folder_files(root):
    out = {}
    for dp, _, fns in os.walk(root):
        for fn in fns:
            out[os.path.relpath(os.path.join(dp, fn), root)] = open(os.path.join(dp, fn), "rb").read()
    return out


def git_repo(root, kind, repo_id, files):
    """A git repository as olah's mirrors-path expects it: <root>/<models|datasets>/<org>/<name>,
    LFS files committed as pointers with their objects in .git/lfs/objects."""
    d = os.path.join(root, kind, *repo_id.split("/"))
    os.makedirs(d)
    subprocess.run(["git", "init", "-q", "-b", "main", d], check=True)
    for path, data in files.items():
        full = os.path.join(d, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if path.endswith((".safetensors", ".parquet", ".model", ".bin")):  # LFS as Hugging Face's .gitattributes
            oid = hashlib.sha256(data).hexdigest()
            obj = os.path.join(d, ".git", "lfs", "objects", oid[:2], oid[2:4], oid)
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            open(obj, "wb").write(data)
            data = b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (oid.encode(), len(data))
        open(full, "wb").write(data)
    subprocess.run(["git", "-C", d, "add", "-A"], check=True)
    subprocess.run(["git", "-C", d, "-c", "user.email=t@example.invalid", "-c", "user.name=test", "commit", "-q",
                    "-m", "init"], check=True)
    return subprocess.run(["git", "-C", d, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def glue_mnli_parquet():
    rows = [json.loads(line) for line in open(os.path.join(SHARED, "datasets", "mnli", "validation_matched",
                                                           "dev.jsonl"))][:300]
    glue = {"entailment": 0, "neutral": 1, "contradiction": 2}  # GLUE's label ids
    t = pa.table({"premise": [r["premise"] for r in rows], "hypothesis": [r["hypothesis"] for r in rows],
                  "label": pa.array([glue.get(r["label"], r["label"]) for r in rows], pa.int64()),
                  "idx": pa.array(range(len(rows)), pa.int32())})
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink)
    return sink.getvalue().to_pybytes(), t


def nli_parquet(cols, n=40):
    """A Parquet file of n MNLI pairs under the given column names (value: the MNLI field, None: an
    id column, a string: that constant), labels as GLUE's integer ids."""
    rows = [json.loads(line) for line in open(os.path.join(SHARED, "datasets", "mnli", "validation_matched",
                                                           "dev.jsonl"))][:n]
    ids = {"entailment": 0, "neutral": 1, "contradiction": 2}
    data = {}
    for c, v in cols.items():
        data[c] = [str(i) for i in range(n)] if v is None else [r[v] for r in rows] if v in rows[0] else [v] * n
    data["label"] = pa.array([ids[r["label"]] for r in rows], pa.int64())
    t = pa.table(data)
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink)
    return sink.getvalue().to_pybytes(), t


@pytest.fixture(scope="module")
def olah(tmp_path_factory):
    assert os.access(OLAH, os.X_OK), f"{OLAH} is missing: run scripts/setup.sh test (it makes .cache/venv-olah)"
    root = tmp_path_factory.mktemp("olah")
    mirrors = root / "mirrors"
    model_files = tiny_bert_files()
    pq_bytes, table = glue_mnli_parquet()
    ds_files = {"README.md": b"---\nconfigs:\n- config_name: mnli\n---\n",
                "mnli/validation_matched-00000-of-00001.parquet": pq_bytes}
    shas = {MODEL_ID: git_repo(str(mirrors), "models", MODEL_ID, model_files),
            DS_ID: git_repo(str(mirrors), "datasets", DS_ID, ds_files)}
    assert len(ORIGINAL) == 11, ORIGINAL
    twins = root / "twins"
    subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tools", "make_hub_twins.py"), str(twins),
                    "--shared", SHARED], check=True, capture_output=True)
    mb_py = os.path.join(CACHE, "venv-modernbert", "bin", "python")
    assert os.access(mb_py, os.X_OK), f"{mb_py} is missing: run scripts/setup.sh test"
    subprocess.run([mb_py, os.path.join(SOURCE_DIR, "tools", "make_hub_twins.py"), str(twins), "--shared", SHARED,
                    "--only", "modernbert-large-zeroshot-v2"], check=True, capture_output=True)
    originals = {}
    for name, repo_id in ORIGINAL:
        originals[repo_id] = folder_files(str(twins / name))
        assert "model.safetensors" in originals[repo_id], name
        shas[repo_id] = git_repo(str(mirrors), "models", repo_id, originals[repo_id])
    # the dataset keys with no copy in ../shared/datasets, in their Hub repos' layouts and schemas
    anli_bytes, _ = nli_parquet({"uid": None, "premise": "premise", "hypothesis": "hypothesis", "reason": ""})
    fever_bytes, _ = nli_parquet({"cid": None, "premise": "hypothesis", "hypothesis": "premise"})
    shas["facebook/anli"] = git_repo(str(mirrors), "datasets", "facebook/anli", {
        "plain_text/dev_r1-00000-of-00001.parquet": anli_bytes, "README.md": b"# anli twin\n"})
    shas["pietrolesci/nli_fever"] = git_repo(str(mirrors), "datasets", "pietrolesci/nli_fever", {
        "data/dev-00000-of-00001.parquet": fever_bytes, "README.md": b"# nli_fever twin\n"})
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    (root / "olah.toml").write_text(
        "[basic]\nhost = \"127.0.0.1\"\nport = %d\nmirror-netloc = \"127.0.0.1:%d\"\n"
        "mirror-lfs-netloc = \"127.0.0.1:%d\"\nrepos-path = \"%s\"\nmirrors-path = [\"%s\"]\n"
        "[accessibility]\noffline = true\n" % (port, port, port, root / "repos", mirrors))
    log = open(root / "olah.log", "w")
    proc = subprocess.Popen([OLAH, "-c", str(root / "olah.toml")], cwd=str(root), stdout=log, stderr=subprocess.STDOUT)
    endpoint = "http://127.0.0.1:%d" % port
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, open(root / "olah.log").read()[-3000:]
            try:
                urllib.request.urlopen(endpoint + "/api/models/%s/revision/main" % MODEL_ID, timeout=5).read()
                break
            except OSError:
                assert time.time() < deadline, "olah did not answer within 60 s:\n" + open(root / "olah.log").read()[-3000:]
                time.sleep(0.3)
        yield {"endpoint": endpoint, "root": root, "shas": shas, "model": model_files, "ds": ds_files, "table": table,
               "originals": originals}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def env(olah, tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    e.update(HF_ENDPOINT=olah["endpoint"], HF_HOME=str(tmp_path / "home"), HF_HUB_CACHE=str(tmp_path / "hub"),
             HF_HUB_OFFLINE="0")
    return e


def mlx(env, *args, check=True, input=None):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=120, input=input)
    if check and p.returncode != 0:
        raise AssertionError("mlxport %s exited %d:\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


def check_cache(env, repo_id, repo_type, files, sha):
    info = scan_cache_dir(env["HF_HUB_CACHE"])
    assert info.warnings == [], info.warnings
    r = {(r.repo_type, r.repo_id): r for r in info.repos}[(repo_type, repo_id)]
    rev = {x.commit_hash: x for x in r.revisions}[sha]
    assert rev.nb_files == len(files) and "main" in rev.refs
    for path, data in files.items():
        got = hf_hub_download(repo_id, path, repo_type=repo_type, cache_dir=env["HF_HUB_CACHE"], local_files_only=True)
        assert open(got, "rb").read() == data, path


def test_model_download_through_olah(olah, env):
    out = json.loads(mlx(env, "download", MODEL_ID, "--json").stdout)
    assert out["commit"] == olah["shas"][MODEL_ID] and out["files"] == len(olah["model"]) == out["downloaded"]
    check_cache(env, MODEL_ID, "model", olah["model"], olah["shas"][MODEL_ID])
    # olah's LFS etag is the sha256, which mlxport verified: the blob is named by it
    digest = hashlib.sha256(olah["model"]["model.safetensors"]).hexdigest()
    assert os.path.isfile(os.path.join(env["HF_HUB_CACHE"], "models--test-org--minilm-tiny", "blobs", digest))
    again = json.loads(mlx(env, "download", MODEL_ID, "--json").stdout)
    assert again["downloaded"] == 0


def test_dataset_download_through_olah(olah, env):
    out = json.loads(mlx(env, "download", DS_ID, "--repo-type", "dataset", "--include", "mnli/*", "--json").stdout)
    assert out["files"] == 1
    f = os.path.join(out["path"], "mnli", "validation_matched-00000-of-00001.parquet")
    assert pq.read_table(f).equals(olah["table"])
    out = json.loads(mlx(env, "download", DS_ID, "--repo-type", "dataset", "--json").stdout)
    check_cache(env, DS_ID, "dataset", olah["ds"], olah["shas"][DS_ID])


def test_mlxport_uses_snapshot_download_cache_from_olah(olah, env):
    path = snapshot_download(MODEL_ID, cache_dir=env["HF_HUB_CACHE"], endpoint=olah["endpoint"])
    out = json.loads(mlx(env, "download", MODEL_ID, "--json").stdout)
    assert out["path"] == path and out["downloaded"] == 0
    check_cache(env, MODEL_ID, "model", olah["model"], olah["shas"][MODEL_ID])


def test_on_demand_through_olah(olah, env):
    info = json.loads(mlx(env, "inspect", MODEL_ID, "--json").stdout)
    assert info["model_type"] == "bert" and info["config_parameters"]["count"] > 0
    p = mlx(env, "embed", "--model", MODEL_ID, input="a sentence\n")
    assert len(json.loads(p.stdout.splitlines()[0])["embedding"]) == 32
    assert glob.glob(os.path.join(env["HF_HUB_CACHE"], "models--test-org--minilm-tiny", "snapshots", "*", "model.safetensors"))


def test_errors_through_olah(olah, env):
    p = mlx(env, "download", "test-org/no-such-repo", check=False)
    assert p.returncode == 3 and "not found" in p.stderr and "test-org/no-such-repo" in p.stderr, p.stderr
    p = mlx(env, "download", MODEL_ID, "no-such-file.json", check=False)
    assert p.returncode == 3 and "file not found" in p.stderr, p.stderr
    assert os.path.isfile(os.path.join(env["HF_HUB_CACHE"], "models--test-org--minilm-tiny", ".no_exist",
                                       olah["shas"][MODEL_ID], "no-such-file.json"))


@pytest.mark.parametrize("name,repo_id", ORIGINAL)
def test_original_models_by_repo_id_through_olah(olah, env, name, repo_id):
    """Each of the original configuration's repo ids (a random-weight twin) downloads through olah,
    passes huggingface_hub's checks, and `mlxport inspect REPO_ID` fetches and reads it on demand."""
    files = olah["originals"][repo_id]
    info = json.loads(mlx(env, "inspect", repo_id, "--json").stdout)
    cfg = json.loads(files["config.json"])
    assert info["model_type"] == cfg["model_type"], name
    assert info["tokenizer"] is not None and info["weights"] is not None, name
    check_cache(env, repo_id, "model", files, olah["shas"][repo_id])
    out = json.loads(mlx(env, "download", repo_id, "--json").stdout)
    assert out["commit"] == olah["shas"][repo_id] and out["downloaded"] == 0


def test_pipeline_original_configuration_through_olah(olah, env, tmp_path):
    """`mlxport pipeline` on the shipped original configuration with an empty cache: the eleven
    models and the dataset keys without a local copy (anli, fever) come from olah as download jobs,
    and every job runs; no row says "not available"."""
    wd = tmp_path / "wd"
    args = ["pipeline", "--config", os.path.join(SOURCE_DIR, "config", "models.yaml"), "--config",
            os.path.join(SOURCE_DIR, "config", "datasets.yaml"), "--workdir", str(wd), "-j", "2", "--threads", "2",
            "--max-samples", "8", "--latency-requests", "2"]
    p = mlx(env, *args, "--dry-run")
    assert "not available" not in p.stdout, p.stdout
    assert p.stdout.count("  download-") == 13, p.stdout  # 11 models + anli + fever
    p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=1500)
    assert p.returncode in (0, 1), p.stderr[-4000:]
    jobs = {os.path.basename(f)[:-5]: json.load(open(f)) for f in glob.glob(str(wd / "jobs" / "*.json"))}
    table = sorted((j["kind"], j["model"], j["dataset"] or "-", j["state"]) for j in jobs.values())
    print("\n".join("%-9s %-36s %-22s %s" % t for t in table))
    assert not [j for j in jobs.values() if "not available" in j["reason"]]
    assert sum(j["kind"] == "download" for j in jobs.values()) == 13
    assert all(j["state"] == "done" for j in jobs.values() if j["kind"] in ("download", "convert")), table
    evals = [j for j in jobs.values() if j["kind"] == "eval"]
    assert evals and all(j["state"] in ("done", "gate failed") for j in evals), table
    assert {j["model"] for j in jobs.values() if j["kind"] == "convert"} == {n for n, _ in ORIGINAL}
    assert {"anli", "fever"} <= {j["dataset"] for j in evals}
    assert scan_cache_dir(env["HF_HUB_CACHE"]).warnings == []
