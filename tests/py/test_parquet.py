"""src/format/parquet.c against pyarrow: Parquet copies of the shared dev files (and synthetic
tables with nulls and every supported physical type) are written here with pyarrow in every
compression (none, snappy, gzip, zstd), dictionary on/off and data page v1/v2, with several
row groups and pages; our reader (tools/c/parquet_dump.c) must return identical rows.
Also: Hugging Face hub cache layouts through the dataset loader, nested schemas refused,
corrupt files rejected cleanly."""
import csv
import json
import os
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SHARED, require_shared

SRC = os.environ.get("MP_SOURCE_DIR", ".")
BUILD = os.environ.get("MP_BUILD_DIR", "build")
PQ_TOOL = os.path.join(BUILD, "parquet_dump")
DS_TOOL = os.path.join(BUILD, "dataset_dump")
DS = os.path.join(SHARED, "datasets")

COMBOS = [(c, d, v) for c in ("none", "snappy", "gzip", "zstd") for d in (True, False) for v in ("1.0", "2.0")]


def need_shared():
    require_shared()


def read_ours(path):
    r = subprocess.run([PQ_TOOL, str(path)], capture_output=True, text=True, encoding="utf-8")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ours_fails(path):
    r = subprocess.run([PQ_TOOL, str(path)], capture_output=True, text=True, encoding="utf-8")
    assert r.returncode == 3, (r.returncode, r.stderr[-2000:])
    return r.stderr


def check_same(path, table):
    got = read_ours(path)
    assert got["num_rows"] == table.num_rows
    assert [c["name"] for c in got["columns"]] == table.column_names
    ref = table.to_pydict()
    for c in got["columns"]:
        assert c["values"] == ref[c["name"]], c["name"]


def write(table, path, comp, dic, ver, **kw):
    pq.write_table(table, path, compression=comp, use_dictionary=dic, data_page_version=ver, **kw)


def tsv_rows(rel, bom=False):
    with open(os.path.join(DS, rel), encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], rows[1:]


def jsonl_rows(rel):
    with open(os.path.join(DS, rel), encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


def sst2_table():
    _, rows = tsv_rows("sst2/dev.tsv")
    return pa.table({"sentence": [r[0] for r in rows], "label": pa.array([int(r[1]) for r in rows], pa.int64()),
                     "idx": pa.array(range(len(rows)), pa.int32())})


def stsb_table():
    _, rows = tsv_rows("stsb/dev.tsv")
    return pa.table({"sentence1": [r[7] for r in rows], "sentence2": [r[8] for r in rows],
                     "label": pa.array([float(r[9]) for r in rows], pa.float32()),
                     "score64": pa.array([float(r[9]) for r in rows], pa.float64()),
                     "idx": pa.array(range(len(rows)), pa.int32())})


@pytest.mark.parametrize("comp,dic,ver", COMBOS)
def test_sst2_and_stsb_copies(tmp_path, comp, dic, ver):
    need_shared()
    for name, t in (("sst2", sst2_table()), ("stsb", stsb_table())):
        p = tmp_path / f"{name}.parquet"
        # several row groups and small pages exercise the page/row-group walk
        write(t, p, comp, dic, ver, row_group_size=300, data_page_size=4096)
        assert pq.ParquetFile(p).metadata.num_row_groups > 1
        check_same(p, t)


@pytest.mark.parametrize("comp,ver", [("zstd", "1.0"), ("snappy", "2.0"), ("gzip", "2.0"), ("none", "1.0")])
def test_mnli_copy(tmp_path, comp, ver):
    need_shared()
    rows = jsonl_rows("mnli/validation_matched/dev.jsonl")
    names = ["entailment", "neutral", "contradiction"]
    t = pa.table({"premise": [r["premise"] for r in rows], "hypothesis": [r["hypothesis"] for r in rows],
                  "label": pa.array([names.index(r["label"]) for r in rows], pa.int64())})
    p = tmp_path / "mnli.parquet"
    write(t, p, comp, True, ver)
    check_same(p, t)


@pytest.mark.parametrize("comp,dic,ver", COMBOS)
def test_all_types_with_nulls(tmp_path, comp, dic, ver):
    n = 2500
    t = pa.table({
        "s": pa.array([None if i % 7 == 0 else ("é—" * (i % 5)) + str(i % 13) for i in range(n)], pa.string()),
        "empty": pa.array(["" if i % 2 else None for i in range(n)], pa.string()),
        "i32": pa.array([None if i % 11 == 0 else (i * 7919) % 100003 - 50000 for i in range(n)], pa.int32()),
        "i64": pa.array([None if i % 3 == 0 else i * 10**12 - 7 for i in range(n)], pa.int64()),
        "f32": pa.array([None if i % 5 == 0 else i / 8.0 for i in range(n)], pa.float32()),
        "f64": pa.array([None if i % 4 == 0 else i / 3.0 for i in range(n)], pa.float64()),
        "b": pa.array([None if i % 6 == 0 else i % 3 == 0 for i in range(n)], pa.bool_()),
        "allnull": pa.array([None] * n, pa.string()),
    })
    p = tmp_path / "t.parquet"
    write(t, p, comp, dic, ver, row_group_size=1000, data_page_size=1024)
    check_same(p, t)
    # required (non-nullable) columns: no definition levels at all
    schema = pa.schema([pa.field("s", pa.string(), nullable=False), pa.field("x", pa.int64(), nullable=False),
                        pa.field("b", pa.bool_(), nullable=False)])
    t2 = pa.table({"s": [str(i % 17) for i in range(n)], "x": list(range(n)), "b": [i % 2 == 0 for i in range(n)]},
                  schema=schema)
    p2 = tmp_path / "req.parquet"
    write(t2, p2, comp, dic, ver)
    got = read_ours(p2)
    assert [c["optional"] for c in got["columns"]] == [0, 0, 0]
    check_same(p2, t2)


def test_empty_table(tmp_path):
    t = pa.table({"s": pa.array([], pa.string())})
    p = tmp_path / "e.parquet"
    pq.write_table(t, p)
    check_same(p, t)


def test_nested_schema_refused(tmp_path):
    t = pa.table({"s": ["a", "b"], "tags": [[1, 2], [3]]})
    p = tmp_path / "n.parquet"
    pq.write_table(t, p)
    msg = ours_fails(p)
    assert str(p) in msg and "nested" in msg or "repeated" in msg


def test_corrupt_files_rejected(tmp_path):
    t = pa.table({"s": [f"row {i}" for i in range(500)], "x": list(range(500))})
    p = tmp_path / "ok.parquet"
    pq.write_table(t, p, compression="zstd")
    data = p.read_bytes()
    (tmp_path / "magic.parquet").write_bytes(b"XXXX" + data[4:])
    assert "not a Parquet file" in ours_fails(tmp_path / "magic.parquet")
    (tmp_path / "trunc.parquet").write_bytes(data[: len(data) // 2])
    ours_fails(tmp_path / "trunc.parquet")
    # flip bytes in the middle of the data pages: must fail cleanly or decode, never crash
    for off in range(8, min(len(data) - 8, 400), 37):
        b = bytearray(data)
        b[off] ^= 0xFF
        q = tmp_path / f"flip{off}.parquet"
        q.write_bytes(bytes(b))
        r = subprocess.run([PQ_TOOL, str(q)], capture_output=True, text=True)
        assert r.returncode in (0, 3), (off, r.returncode, r.stderr[-500:])


# ----------------------------------------------------------------- HF hub cache layouts

def hub_snapshot(root, repo, rev="0123456789abcdef0123456789abcdef01234567"):
    d = root / ("datasets--" + repo.replace("/", "--"))
    (d / "refs").mkdir(parents=True)
    (d / "refs" / "main").write_text(rev)
    s = d / "snapshots" / rev
    s.mkdir(parents=True)
    return s


def dump(env, *args):
    r = subprocess.run([DS_TOOL, *map(str, args)], capture_output=True, text=True, encoding="utf-8",
                       env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]


def test_hf_cache_glue_layout(tmp_path):
    need_shared()
    snap = hub_snapshot(tmp_path, "nyu-mll/glue")
    (snap / "sst2").mkdir()
    t = sst2_table()
    pq.write_table(t.slice(0, 500), snap / "sst2" / "validation-00000-of-00002.parquet", compression="snappy")
    pq.write_table(t.slice(500), snap / "sst2" / "validation-00001-of-00002.parquet", compression="zstd")
    pq.write_table(t.slice(0, 5), snap / "sst2" / "train-00000-of-00001.parquet")
    env = {"HF_HUB_CACHE": str(tmp_path)}
    info, ex = dump(env, "--key", "sst2", "--hf", "nyu-mll/glue", "--config", "sst2")
    assert info["format"] == "parquet" and info["n"] == 872
    _, ref = dump({}, "--key", "sst2", "--path", os.path.join(DS, "sst2/dev.tsv"))
    assert [(e["a"], e["label"]) for e in ex] == [(e["a"], e["label"]) for e in ref]
    # HF_HOME/hub is used when HF_HUB_CACHE is unset
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(tmp_path / "datasets--nyu-mll--glue", home / "datasets--nyu-mll--glue")
    os.rename(home, tmp_path / "hub")
    env2 = {"HF_HUB_CACHE": "", "HF_HOME": str(tmp_path)}
    info2, ex2 = dump(env2, "--key", "sst2", "--hf", "nyu-mll/glue", "--config", "sst2")
    assert ex2 == ex
    # scored dataset with a float label column (glue/stsb), given as a snapshot folder path
    (snap / "stsb").mkdir()
    pq.write_table(stsb_table(), snap / "stsb" / "validation-00000-of-00001.parquet")
    info, ex = dump({}, "--key", "stsb", "--path", snap, "--config", "stsb")
    _, ref = dump({}, "--key", "stsb", "--path", os.path.join(DS, "stsb/dev.tsv"))
    assert info["has_score"] == 1
    assert [(e["a"], e["b"]) for e in ex] == [(e["a"], e["b"]) for e in ref]
    # float32 scores read as the shortest decimal of the float: 2.4f -> 2.4 (exact TSV value)
    assert sum(e["score"] == r["score"] for e, r in zip(ex, ref)) > 1400
    assert all(abs(e["score"] - r["score"]) < 1e-6 for e, r in zip(ex, ref))


def test_hf_data_and_split_folder_layouts(tmp_path):
    need_shared()
    rows = jsonl_rows("snli/validation/dev.jsonl")
    names = ["entailment", "neutral", "contradiction"]
    labels = [names.index(r["label"]) for r in rows]
    labels[3] = -1  # HF: -1 = no gold label, dropped
    t = pa.table({"premise": [r["premise"] for r in rows], "hypothesis": [r["hypothesis"] for r in rows],
                  "label": pa.array(labels, pa.int64())})
    snap = hub_snapshot(tmp_path, "stanfordnlp/snli")
    (snap / "data").mkdir()
    pq.write_table(t, snap / "data" / "validation-00000-of-00001.parquet", use_dictionary=False,
                   data_page_version="2.0", compression="gzip")
    info, ex = dump({"HF_HUB_CACHE": str(tmp_path)}, "--key", "snli", "--hf", "stanfordnlp/snli")
    assert info["n"] == len(rows) - 1 and info["n_dropped"] == 1
    keep = [r for i, r in enumerate(rows) if i != 3]
    assert [(e["a"], e["b"], info["labels"][e["label"]]) for e in ex] == [(r["premise"], r["hypothesis"], r["label"]) for r in keep]
    assert ex[3]["line"] == 5  # Parquet row numbers, 1-based, count dropped rows too
    # <config>/<split>/*.parquet
    snap2 = hub_snapshot(tmp_path, "facebook/anli")
    (snap2 / "plain_text" / "dev_r1").mkdir(parents=True)
    t3 = pa.table({"uid": ["u1", "u2"], "premise": ["p1", "p2"], "hypothesis": ["h1", "h2"],
                   "label": pa.array([2, 0], pa.int64()), "reason": ["", "r"]})
    pq.write_table(t3, snap2 / "plain_text" / "dev_r1" / "0000.parquet")
    info, ex = dump({"HF_HUB_CACHE": str(tmp_path)}, "--key", "anli", "--hf", "facebook/anli", "--split", "dev_r1")
    assert [info["labels"][e["label"]] for e in ex] == ["contradiction", "entailment"]
