#!/usr/bin/env python3
"""Writes tests/data/manifest.tsv, the list of third-party test data files (model configs and
tokenizers, real dev sets) and where `scripts/test-data.sh fetch` gets each one from the Hugging
Face Hub when neither $MLXPORT_TEST_DATA nor ../shared is present (docs/testing.md).

Input: a test data folder laid out as ../shared (models/<name>/..., datasets/<key>/...), with its
SOURCES.md files, which say for each model file whether it is the exact upstream file.

One row per file: local path, repo type, repo id, revision, path in the repo, sha256, upstream.
- Model files whose SOURCES.md status is EXACT or EXACT CONTENT come from the model's own Hub
  repo, at the known revision where SOURCES.md gives one, with their sha256 pinned.
- Other model files (re-saves, substitutes, reconstructions) come from the model's own Hub repo
  too, where the real file lives, with sha256 "-": the upstream bytes are not known here.
- Dev sets, SOURCES.md files and test fixtures that no model repo holds come from the project's
  mirror dataset repo (MIRROR below), with their sha256 pinned; `scripts/test-data.sh publish`
  uploads that repo with `mlxport upload`.

Usage: tools/make_test_data_manifest.py SHARED_DIR > tests/data/manifest.tsv
"""
import hashlib
import os
import re
import sys

MIRROR = "mlxport/test-data"  # dataset repo: the files no upstream Hub repo holds byte for byte


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def parse_sources(path):
    """-> (folder -> repo id, (folder, file) -> status, repo id -> revision)."""
    text = open(path, encoding="utf-8").read()
    repos, status, revs = {}, {}, {}
    folder = None
    for line in text.splitlines():
        m = re.match(r"^## (\S+)\s+\(`([^`]+)`\)", line)
        if m:
            folder = m.group(1)
            repos[folder] = m.group(2)
            continue
        if line.startswith("## "):
            folder = None
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 2 and cells[1] and not cells[0].startswith(("file", "---", "folder")):
            key = cells[0]
            if folder:
                status[(folder, key)] = cells[1]
            elif "/" in key:  # the additions table: "folder/file"
                f, _, rest = key.partition("/")
                status[(f, rest)] = cells[1]
    for m in re.finditer(r"([\w.-]+/[\w.-]+) ([0-9a-f]{40})", text):
        revs.setdefault(m.group(1), m.group(2))
    return repos, status, revs


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    repos, status, revs = parse_sources(os.path.join(root, "models", "SOURCES.md"))
    rows = []
    for top in ("models", "datasets"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                p = os.path.join(d, f)
                rel = os.path.relpath(p, root)
                parts = rel.split(os.sep)
                folder, inner = (parts[1], "/".join(parts[2:])) if len(parts) > 2 else (None, None)
                st = status.get((folder, inner), "")
                repo = repos.get(folder) if top == "models" else None
                upstream = f"{repo}@{revs.get(repo, 'main')}" if repo else "-"
                if repo and st.startswith("EXACT") and "RE-SAVED" not in st:
                    rows.append((rel, "model", repo, revs.get(repo, "main"), inner, sha256(p), upstream))
                else:
                    rows.append((rel, "dataset", MIRROR, "main", rel, sha256(p), upstream))
    rows.sort()
    print("# Third-party test data: local path, repo type, repo id, revision, path in repo, sha256, upstream repo")
    print("# the file stands for. Made by tools/make_test_data_manifest.py; read by scripts/test-data.sh.")
    for r in rows:
        print("\t".join(r))


if __name__ == "__main__":
    main()
