"""Our safetensors reader/writer against the references: the Python `safetensors` package,
MLX (`mx.load`) and huggingface_hub's shard splitting.

Our side is reached through build/st_dump (tools/c/st_dump.c): `dump` prints name, dtype, shape
and SHA-256 of the bytes of every tensor as read by the C reader / weights table; `copy` and
`shard` rewrite a file with the C writer.
"""
import glob
import hashlib
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import safetensors  # noqa: E402  (a missing reference is a failure, not a skip)
from safetensors.numpy import load_file as np_load_file  # noqa: E402
from safetensors.numpy import save_file as np_save_file  # noqa: E402

BUILD = os.environ.get("MP_BUILD_DIR", "")
ST_DUMP = os.path.join(BUILD, "st_dump")

NP_TO_ST = {
    np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64",
    np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("int16"): "I16", np.dtype("uint16"): "U16",
    np.dtype("int32"): "I32", np.dtype("uint32"): "U32", np.dtype("int64"): "I64", np.dtype("uint64"): "U64",
    np.dtype("bool"): "BOOL",
}


def need_tool():
    if not os.path.isfile(ST_DUMP):
        pytest.fail(f"{ST_DUMP} not built (run through ctest, MP_BUILD_DIR unset?)", pytrace=False)


def run_tool(*args, ok=True):
    r = subprocess.run([ST_DUMP, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, f"st_dump {args} failed: {r.stderr}"
    return r


def c_dump(path):
    lines = run_tool("dump", path).stdout.splitlines()
    head = json.loads(lines[0])
    tensors = [json.loads(l) for l in lines[1:]]
    assert head["count"] == len(tensors)
    return head, {t["name"]: t for t in tensors}


def sha(b):
    return hashlib.sha256(b).hexdigest()


def le_bytes(a):
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.byteswap().newbyteorder()
    return a.tobytes()


def hub_cache():
    for c in (os.environ.get("HF_HUB_CACHE"),
              os.path.join(os.environ["MP_CACHE"], "huggingface", "hub") if os.environ.get("MP_CACHE") else None,
              os.path.join(os.environ.get("MP_SOURCE_DIR", "."), ".cache", "huggingface", "hub")):
        if c and os.path.isdir(c):
            return c
    return None


def minilm_file():
    hub = hub_cache()
    if not hub:
        pytest.fail("no Hugging Face cache (HF_HUB_CACHE / MP_CACHE unset and .cache absent): run make setup", pytrace=False)
    files = glob.glob(os.path.join(hub, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots", "*",
                                   "model.safetensors"))
    if not files:
        pytest.fail(f"all-MiniLM-L6-v2 model.safetensors not in {hub}: run make setup", pytrace=False)
    return files[0]


def test_real_minilm_matches_reference():
    need_tool()
    path = minilm_file()
    head, ours = c_dump(path)
    assert head["format"] == 1 and head["files"] == [path]
    ref = {}
    with safetensors.safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        for k in f.keys():
            ref[k] = f.get_tensor(k)
    assert len(ref) > 100
    assert set(ours) == set(ref)
    for name, a in ref.items():
        t = ours[name]
        assert t["dtype"] == NP_TO_ST[a.dtype], name
        assert t["shape"] == list(a.shape), name
        assert t["nbytes"] == a.nbytes, name
        assert t["sha256"] == sha(le_bytes(a)), name
    # the model folder resolves to the same file and the same table
    head2, ours2 = c_dump(os.path.dirname(path))
    assert head2["files"] == [path] and ours2 == ours
    # metadata as the reference reads it
    r = run_tool("metadata", path)
    assert json.loads(r.stdout) == (meta or {})
    # the table order is ascending data offset, as in the file's header
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        hdr = json.loads(fh.read(n))
    by_off = sorted((v["data_offsets"], k) for k, v in hdr.items() if k != "__metadata__")
    assert [k for _, k in by_off] == list(ours)


def sample_arrays(rng):
    arrs = {}
    for dt in NP_TO_ST:
        for shape in [(3, 5), (), (0,), (2, 0, 3), (7,), (1, 1, 1), (4, 3, 2)]:
            name = f"{NP_TO_ST[dt]}.{'x'.join(map(str, shape)) or 'scalar'}"
            if dt == np.dtype("bool"):
                a = rng.integers(0, 2, size=shape).astype(bool)
            elif dt.kind == "f":
                a = rng.standard_normal(size=shape).astype(dt)
            else:
                info = np.iinfo(dt)
                a = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
            arrs[name] = a
    return arrs


def test_python_written_file_read_by_c_and_c_written_file_read_by_references(tmp_path):
    need_tool()
    rng = np.random.default_rng(1234)
    arrs = sample_arrays(rng)
    src = tmp_path / "py.safetensors"
    np_save_file(arrs, str(src), metadata={"format": "pt", "note": "h\u00e9llo \"q\""})
    _, ours = c_dump(src)
    assert set(ours) == set(arrs)
    for k, a in arrs.items():
        assert ours[k]["dtype"] == NP_TO_ST[a.dtype] and ours[k]["shape"] == list(a.shape), k
        assert ours[k]["sha256"] == sha(le_bytes(a)), k

    out = tmp_path / "c.safetensors"
    run_tool("copy", src, out)
    back = np_load_file(str(out))
    assert set(back) == set(arrs)
    for k, a in arrs.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape, k
        assert np.array_equal(back[k], a), k
    with safetensors.safe_open(str(out), framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "note": "h\u00e9llo \"q\""}
    # our header: 8-byte multiple padded with spaces (as the reference pads), every tensor
    # aligned to its element size
    raw = out.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    hdr = json.loads(raw[8:8 + n])
    for k, v in hdr.items():
        if k != "__metadata__":
            assert v["data_offsets"][0] % np.dtype(back[k].dtype).itemsize == 0, k

    # MLX reads every dtype but F64 from safetensors ("[safetensor] unsupported dtype F64")
    import mlx.core as mx
    no64 = {k: a for k, a in arrs.items() if a.dtype != np.float64}
    src2, out2 = tmp_path / "py_no64.safetensors", tmp_path / "c_no64.safetensors"
    np_save_file(no64, str(src2), metadata={"format": "mlx", "note": "h\u00e9llo \"q\""})
    run_tool("copy", src2, out2)
    loaded, meta = mx.load(str(out2), return_metadata=True)
    assert meta == {"format": "mlx", "note": "h\u00e9llo \"q\""}
    assert set(loaded) == set(no64)
    for k, a in no64.items():
        m = np.array(loaded[k])
        assert m.shape == a.shape, k
        assert np.array_equal(m.astype(a.dtype), a), k


def test_bf16_roundtrip_against_torch_and_mlx(tmp_path):
    need_tool()
    import torch
    from safetensors.torch import load_file as pt_load_file
    from safetensors.torch import save_file as pt_save_file
    g = torch.Generator().manual_seed(7)
    ts = {
        "w.bf16": torch.randn(5, 7, generator=g).to(torch.bfloat16),
        "s.bf16": torch.tensor(1.5, dtype=torch.bfloat16),
        "z.bf16": torch.zeros(0, 4, dtype=torch.bfloat16),
        "w.f16": torch.randn(3, 3, generator=g).to(torch.float16),
        "i.i64": torch.arange(10, dtype=torch.int64),
    }
    src = tmp_path / "pt.safetensors"
    pt_save_file(ts, str(src), metadata={"format": "pt"})
    _, ours = c_dump(src)
    for k, t in ts.items():
        b = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        assert ours[k]["sha256"] == sha(b), k
        assert ours[k]["shape"] == list(t.shape)
    out = tmp_path / "c.safetensors"
    run_tool("copy", src, out)
    back = pt_load_file(str(out))
    for k, t in ts.items():
        assert back[k].dtype == t.dtype and torch.equal(back[k], t), k
    import mlx.core as mx
    loaded = mx.load(str(out))
    for k, t in ts.items():
        m = np.array(loaded[k].astype(mx.float32))
        assert np.array_equal(m, t.float().numpy()), k


def test_sharding_matches_huggingface_hub(tmp_path):
    need_tool()
    import torch
    import huggingface_hub as hub
    rng = np.random.default_rng(5)
    sizes = [40, 8, 200, 16, 16, 0, 64, 24, 8, 120, 4, 4, 36]
    arrs = {f"layer.{i}.w": rng.standard_normal(s // 4).astype(np.float32) for i, s in enumerate(sizes)}
    arrs["emb.half"] = rng.standard_normal(6).astype(np.float16)
    src = tmp_path / "src.safetensors"
    np_save_file(arrs, str(src), metadata={"format": "pt"})
    _, table = c_dump(src)
    order = list(table)  # C writer adds tensors in file order; the hub splits in dict order
    total = sum(a.nbytes for a in arrs.values())
    for limit in [1, 30, 50, 100, 128, 250, total - 1, total, 10 ** 9]:
        d = tmp_path / f"out{limit}"
        r = run_tool("shard", src, d, "model", limit)
        nfiles = json.loads(r.stdout)["files"]
        sd = {k: torch.from_numpy(arrs[k].copy()) for k in order}
        split = hub.split_torch_state_dict_into_shards(sd, filename_pattern="model{suffix}.safetensors",
                                                       max_shard_size=limit)
        assert nfiles == len(split.filename_to_tensors), limit
        if not split.is_sharded:
            assert sorted(os.listdir(d)) == ["model.safetensors"]
            got = np_load_file(str(d / "model.safetensors"))
        else:
            idx_text = (d / "model.safetensors.index.json").read_text()
            want = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
            assert json.loads(idx_text) == want, limit
            # byte-identical to what transformers' save_pretrained writes
            assert idx_text == json.dumps(want, indent=2, sort_keys=True) + "\n"
            assert sorted(os.listdir(d)) == sorted(list(split.filename_to_tensors) + ["model.safetensors.index.json"])
            got = {}
            for fn, names in split.filename_to_tensors.items():
                part = np_load_file(str(d / fn))
                assert sorted(part) == sorted(names), fn
                with safetensors.safe_open(str(d / fn), framework="numpy") as f:
                    assert f.metadata() == {"format": "pt"}
                got.update(part)
            # and our weights table reads the sharded folder back
            head, ours = c_dump(d)
            assert head["format"] == 2 and len(head["files"]) == nfiles
            assert set(ours) == set(arrs)
        for k, a in arrs.items():
            assert np.array_equal(got[k], a), (limit, k)


def raw_file(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def ref_accepts(path):
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            for k in f.keys():
                f.get_tensor(k)
        return True
    except Exception:
        return False


T = lambda b, e, shape=None, dtype="U8": {"dtype": dtype, "shape": [e - b] if shape is None else shape,
                                          "data_offsets": [b, e]}


@pytest.mark.parametrize("label,blob,accepted", [
    ("ok_unsorted", raw_file({"b": T(4, 8), "a": T(0, 4)}, b"\0" * 8), True),
    ("ok_zero_size", raw_file({"a": T(0, 4), "z": T(4, 4), "b": T(4, 6)}, b"\0" * 6), True),
    ("ok_meta_null", raw_file({"__metadata__": None, "a": T(0, 2)}, b"\0" * 2), True),
    ("ok_empty", raw_file({}), True),
    ("gap", raw_file({"a": T(0, 4), "b": T(6, 8)}, b"\0" * 8), False),
    ("leading_gap", raw_file({"a": T(2, 4)}, b"\0" * 4), False),
    ("overlap", raw_file({"a": T(0, 4), "b": T(2, 6)}, b"\0" * 6), False),
    ("trailing", raw_file({"a": T(0, 4)}, b"\0" * 5), False),
    ("size_mismatch", raw_file({"a": T(0, 4, shape=[5])}, b"\0" * 4), False),
    ("out_of_range", raw_file({"a": T(0, 16)}, b"\0" * 8), False),
    ("bad_json", raw_file(b'{"a": ', b""), False),
    ("len_past_end", raw_file({"a": T(0, 4)}, b"\0" * 4, length=10 ** 6), False),
    ("len_huge", raw_file({"a": T(0, 4)}, b"\0" * 4, length=2 ** 40), False),
    ("short", b"\x01\x00\x00", False),
    ("unknown_dtype", raw_file({"a": T(0, 4, dtype="X9")}, b"\0" * 4), False),
    ("negative_dim", raw_file({"a": T(0, 4, shape=[-4])}, b"\0" * 4), False),
    ("metadata_not_str", raw_file({"__metadata__": {"k": 1}, "a": T(0, 4)}, b"\0" * 4), False),
])
def test_accepts_and_rejects_like_the_reference(tmp_path, label, blob, accepted):
    need_tool()
    p = tmp_path / f"{label}.safetensors"
    p.write_bytes(blob)
    assert ref_accepts(p) == accepted, f"reference disagrees with the test's expectation for {label}"
    r = run_tool("dump", p, ok=False)
    if accepted:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode == 3, f"{label} accepted by our reader"
        assert str(p) in r.stderr, r.stderr
