#!/usr/bin/env python3
"""Rebuild the trained NLI classifiers' Hugging Face checkpoint folders from the packaged base
weights (sentence-transformers/all-MiniLM-L6-v2 in the hub cache) plus the committed deltas.

Standard library only (it runs at set-up time, before any Python environment exists).
Deterministic: the same inputs always give byte-identical files; model.safetensors is
checked against the SHA-256 recorded in models/<name>/manifest.json.

  scripts/rebuild_nli.py [--out DIR] [--hub-cache DIR] [--force] [NAME ...]

Output: $MP_CACHE/models/<name>/ (default MP_CACHE: <repo>/.cache) holding config.json,
model.safetensors, README.md, tokenizer.json, tokenizer_config.json, vocab.txt and
special_tokens_map.json. Each folder appears whole (built beside it, then renamed into place).
An output whose files already match is left alone.

Exit status: 0 ok, 1 a hash differs / an input is missing or malformed, 2 usage.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_SRC = os.path.join(ROOT, "models")
NAMES = ["nli-minilm-l6-snli", "nli-minilm-l6-snli-binary"]
DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
CHUNK = 1 << 16  # elements per struct call when widening f16 -> f32


class RebuildError(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_header(path):
    """Parse a safetensors header: returns (tensors dict, metadata, data start offset)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise RebuildError(f"{path}: shorter than 8 bytes, not a safetensors file")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8 or n > 100 << 20:
                raise RebuildError(f"{path}: header length {n} exceeds the file size {size}")
            hdr = json.loads(f.read(n).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise RebuildError(f"{path}: cannot read safetensors header: {e}") from None
    if not isinstance(hdr, dict):
        raise RebuildError(f"{path}: header is not a JSON object")
    meta = hdr.pop("__metadata__", None)
    for name, t in hdr.items():
        if (not isinstance(t, dict) or t.get("dtype") not in DTYPE_SIZE or not isinstance(t.get("shape"), list)
                or not isinstance(t.get("data_offsets"), list) or len(t["data_offsets"]) != 2):
            raise RebuildError(f"{path}: tensor {name!r} has a malformed or unsupported entry: {t}")
        count = 1
        for d in t["shape"]:
            count *= d
        b, e = t["data_offsets"]
        if e - b != count * DTYPE_SIZE[t["dtype"]] or 8 + n + e > size:
            raise RebuildError(f"{path}: tensor {name!r} data_offsets {t['data_offsets']} do not fit its "
                               f"shape {t['shape']} / the file")
    return hdr, meta, 8 + n


def read_tensor(path, start, t):
    with open(path, "rb") as f:
        f.seek(start + t["data_offsets"][0])
        n = t["data_offsets"][1] - t["data_offsets"][0]
        data = f.read(n)
    if len(data) != n:
        raise RebuildError(f"{path}: truncated tensor data")
    return data


def f16_to_f32(data):
    """Exact widening of little-endian IEEE half floats to little-endian f32 bytes."""
    n = len(data) // 2
    out = bytearray()
    for s in range(0, n, CHUNK):
        k = min(CHUNK, n - s)
        vals = struct.unpack_from(f"<{k}e", data, 2 * s)
        out += struct.pack(f"<{k}f", *vals)
    return bytes(out)


def find_base(hub_cache, repo):
    root = os.path.join(hub_cache, "models--" + repo.replace("/", "--"))
    cands = []
    ref = os.path.join(root, "refs", "main")
    if os.path.isfile(ref):
        with open(ref) as f:
            cands.append(os.path.join(root, "snapshots", f.read().strip()))
    snaps = os.path.join(root, "snapshots")
    if os.path.isdir(snaps):
        cands += [os.path.join(snaps, d) for d in sorted(os.listdir(snaps))]
    for c in cands:
        if os.path.isfile(os.path.join(c, "model.safetensors")):
            return c
    raise RebuildError(f"base model {repo} not found under {hub_cache} (no snapshot with model.safetensors); "
                       f"run scripts/setup.sh models first, or pass --hub-cache")


def load_manifest(name, need_hash=True):
    path = os.path.join(MODELS_SRC, name, "manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        m["base"]["repo"], m["base"]["sha256"], [d["file"] for d in m["deltas"]]
        if need_hash:
            m["model_safetensors_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RebuildError(f"{path}: missing or malformed manifest ({e})") from None
    return m


def build_safetensors(name, m, base_dir):
    """Returns the bytes of the rebuilt model.safetensors."""
    base_path = os.path.join(base_dir, m["base"].get("file", "model.safetensors"))
    got = sha256_file(base_path)
    if got != m["base"]["sha256"]:
        raise RebuildError(f"{base_path}: SHA-256 {got} differs from the base recorded in "
                           f"models/{name}/manifest.json ({m['base']['sha256']}); the base weights are "
                           f"not the ones the delta was trained on: reinstall them (scripts/setup.sh models)")
    bhdr, _, bstart = read_header(base_path)
    prefix = m.get("base_prefix", "")
    drop = set(m.get("drop", []))
    tensors = {}  # final name -> (dtype, shape, source path, data start, entry, widen)
    for bn, t in bhdr.items():
        if bn in drop:
            continue
        tensors[prefix + bn] = (t["dtype"], t["shape"], base_path, bstart, t, False)
    for rel in m["deltas"]:
        dpath = os.path.normpath(os.path.join(MODELS_SRC, name, rel["file"]))
        if "sha256" in rel:
            got = sha256_file(dpath) if os.path.isfile(dpath) else "(missing)"
            if got != rel["sha256"]:
                raise RebuildError(f"{dpath}: SHA-256 {got} differs from models/{name}/manifest.json "
                                   f"({rel['sha256']}); the delta file is damaged or out of date")
        dhdr, _, dstart = read_header(dpath)
        skip = set(rel.get("exclude", []))
        for dn, t in dhdr.items():
            if dn in skip:
                continue
            if dn in tensors and tensors[dn][1] != t["shape"]:
                raise RebuildError(f"{dpath}: tensor {dn} has shape {t['shape']}, the base has {tensors[dn][1]}")
            if t["dtype"] not in ("F32", "F16"):
                raise RebuildError(f"{dpath}: tensor {dn} has dtype {t['dtype']}; deltas hold F32 or F16")
            tensors[dn] = ("F32", t["shape"], dpath, dstart, t, t["dtype"] == "F16")
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for n in names:
        dtype, shape, _, _, t, widen = tensors[n]
        size = t["data_offsets"][1] - t["data_offsets"][0]
        if widen:
            size *= 2
        header[n] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + size]}
        off += size
    hb = json.dumps(header, separators=(",", ":"), sort_keys=False).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    parts = [struct.pack("<Q", len(hb)), hb]
    for n in names:
        _, _, path, start, t, widen = tensors[n]
        data = read_tensor(path, start, t)
        parts.append(f16_to_f32(data) if widen else data)
    return b"".join(parts)


def expected_files(name, m, base_dir):
    """(file name, source path) of every file besides model.safetensors."""
    files = [(f, os.path.join(MODELS_SRC, name, f)) for f in ("config.json", "README.md")]
    files += [(f, os.path.join(base_dir, f)) for f in m.get("copy_from_base", [])]
    for f, src in files:
        if not os.path.isfile(src):
            raise RebuildError(f"{src}: missing (needed for {name}/{f})")
    return files


def up_to_date(out, name, m, base_dir):
    d = os.path.join(out, name)
    st = os.path.join(d, "model.safetensors")
    if not os.path.isfile(st) or sha256_file(st) != m["model_safetensors_sha256"]:
        return False
    for f, src in expected_files(name, m, base_dir):
        p = os.path.join(d, f)
        if not os.path.isfile(p) or sha256_file(p) != sha256_file(src):
            return False
    return True


def fsync_write(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def record(name, hub_cache, log=print):
    """Maintainer step after training: store the deltas' and the rebuilt file's SHA-256 in the manifest."""
    path = os.path.join(MODELS_SRC, name, "manifest.json")
    m = load_manifest(name, need_hash=False)
    base_dir = find_base(hub_cache, m["base"]["repo"])
    for rel in m["deltas"]:
        rel["sha256"] = sha256_file(os.path.normpath(os.path.join(MODELS_SRC, name, rel["file"])))
    m["model_safetensors_sha256"] = hashlib.sha256(build_safetensors(name, m, base_dir)).hexdigest()
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    log(f"[rebuild_nli] {name}: recorded model.safetensors sha256 {m['model_safetensors_sha256']} in {path}")


def rebuild(name, out, hub_cache, force=False, log=print):
    m = load_manifest(name)
    base_dir = find_base(hub_cache, m["base"]["repo"])
    if not force and up_to_date(out, name, m, base_dir):
        log(f"[rebuild_nli] {name}: up to date")
        return os.path.join(out, name)
    data = build_safetensors(name, m, base_dir)
    got = hashlib.sha256(data).hexdigest()
    if got != m["model_safetensors_sha256"]:
        raise RebuildError(f"{name}: rebuilt model.safetensors has SHA-256 {got}, models/{name}/manifest.json "
                           f"expects {m['model_safetensors_sha256']}; nothing was written (check the base "
                           f"weights and the delta files)")
    os.makedirs(out, exist_ok=True)
    final = os.path.join(out, name)
    tmp = os.path.join(out, f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        fsync_write(os.path.join(tmp, "model.safetensors"), data)
        for f, src in expected_files(name, m, base_dir):
            with open(src, "rb") as fh:
                fsync_write(os.path.join(tmp, f), fh.read())
        old = None
        if os.path.lexists(final):
            old = os.path.join(out, f".{name}.old-{os.getpid()}")
            os.rename(final, old)
        os.rename(tmp, final)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"[rebuild_nli] {name}: rebuilt {final} (model.safetensors sha256 {got})")
    return final


def main(argv=None):
    cache = os.environ.get("MP_CACHE") or os.path.join(ROOT, ".cache")
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(cache, "huggingface", "hub")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(cache, "models"), help="output folder (default: $MP_CACHE/models)")
    ap.add_argument("--hub-cache", default=hub, help="Hugging Face hub cache holding the base model")
    ap.add_argument("--force", action="store_true", help="rebuild even when the output is up to date")
    ap.add_argument("--record", action="store_true",
                    help="maintainers only, after training: write the delta and rebuilt hashes into the manifests")
    ap.add_argument("names", nargs="*", help=f"models to rebuild (default: {' '.join(NAMES)})")
    a = ap.parse_args(argv)
    for n in a.names:
        if n not in NAMES:
            ap.error(f"unknown model {n!r}; known: {', '.join(NAMES)}")
    try:
        for n in a.names or NAMES:
            if a.record:
                record(n, a.hub_cache, log=lambda s: print(s, file=sys.stderr))
            else:
                rebuild(n, a.out, a.hub_cache, a.force, log=lambda s: print(s, file=sys.stderr))
    except (RebuildError, OSError) as e:
        print(f"[rebuild_nli] error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
