"""libmlxport as a user gets it: `cmake --install` (with --prefix, and with DESTDIR), then the three
examples/ programs built in a separate temporary folder against the *installed* library through
pkg-config (shared, and static with --static), a CMake project using find_package(mlxport), and
the programs run on the real all-MiniLM-L6-v2 and the project's NLI classifier, checked against the
CLI's outputs (docs/api/README.md)."""
import json
import math
import os
import shutil
import subprocess

import pytest

from conftest import BIN, SOURCE_DIR, hub_cache, minilm_dir, run_cli

BUILD = os.environ.get("MP_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
CACHE = os.environ.get("MP_CACHE", os.path.join(SOURCE_DIR, ".cache"))
NLI = os.path.join(CACHE, "models", "nli-minilm-l6-snli")
SANITIZE = os.environ.get("MP_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")


def sh(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    prefix = root / "prefix"
    sh(["cmake", "--install", BUILD, "--prefix", str(prefix)])
    libdir = next(p for p in (prefix / "lib", prefix / "lib64") if (p / "pkgconfig" / "mlxport.pc").exists())
    return prefix, libdir


def run_env(libdir):
    e = dict(os.environ, HF_HUB_CACHE=hub_cache(), HF_HUB_OFFLINE="1", LD_LIBRARY_PATH=str(libdir))
    e.pop("PKG_CONFIG_PATH", None)
    return e


def test_install_layout(installed, tmp_path):
    prefix, libdir = installed
    for rel in ["include/mlxport.h", "include/mlxport/common.h", "include/mlxport/model.h", "include/mlxport/tokenizer.h",
                "include/mlxport/convert.h", "include/mlxport/eval.h", "bin/mlxport"]:
        assert (prefix / rel).is_file(), rel
    ver = sh([BIN, "--version"]).stdout.split()[-1]
    major = ver.split(".")[0]
    assert (libdir / f"libmlxport.so.{ver}").is_file()
    assert os.readlink(libdir / f"libmlxport.so.{major}") == f"libmlxport.so.{ver}"
    assert (libdir / "libmlxport.so").is_symlink() and (libdir / "libmlxport.a").is_file()
    assert (libdir / "cmake" / "mlxport" / "mlxportConfig.cmake").is_file()
    assert (libdir / "cmake" / "mlxport" / "mlxportConfigVersion.cmake").is_file()
    soname = sh(["objdump", "-p", str(libdir / f"libmlxport.so.{ver}")]).stdout
    assert f"SONAME               libmlxport.so.{major}" in soname
    pc = (libdir / "pkgconfig" / "mlxport.pc").read_text()
    assert f"prefix={prefix}" in pc and f"Version: {ver}" in pc
    # DESTDIR stages the same tree under another root, the prefix unchanged inside the files
    dest = tmp_path / "dest"
    sh(["cmake", "--install", BUILD, "--prefix", "/opt/mlxport"], env=dict(os.environ, DESTDIR=str(dest)))
    staged = list(dest.glob("opt/mlxport/lib*/pkgconfig/mlxport.pc"))
    assert staged and "prefix=/opt/mlxport" in staged[0].read_text()
    assert list(dest.glob(f"opt/mlxport/lib*/libmlxport.so.{ver}"))


@pytest.fixture(scope="module")
def examples(installed, tmp_path_factory):
    """The examples copied to a folder outside the tree and built by examples/Makefile through
    pkg-config, with only the installed prefix to find the library."""
    prefix, libdir = installed
    work = tmp_path_factory.mktemp("examples")
    for f in ["embed.c", "classify_pair.c", "convert.c", "Makefile"]:
        shutil.copy(os.path.join(SOURCE_DIR, "examples", f), work / f)
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    cflags = "-O2 -Wall -Wextra -Werror" + (" -fsanitize=address,undefined" if SANITIZE else "")
    out = sh(["make", "-C", str(work), f"CFLAGS={cflags}"], env=env).stdout
    assert "-I" + str(prefix / "include") in out and "/src" not in out.replace(str(work), "")
    for exe in ["embed", "classify_pair", "convert"]:
        ldd = sh(["ldd", str(work / exe)], env=run_env(libdir)).stdout
        assert str(libdir / "libmlxport.so.") in ldd, ldd  # the installed library, not the build's
    return work, libdir


def test_embed_example_matches_cli(examples, minilm):
    work, libdir = examples
    texts = ["A man is eating food.", "A man is eating pasta."]
    p = sh([str(work / "embed"), minilm, *texts], env=run_env(libdir))
    lines = p.stdout.splitlines()
    assert lines[0].endswith("dim 384")
    cli = [json.loads(l)["embedding"] for l in
           run_cli("embed", "--model", minilm, "--compute", "fast", input="\n".join(texts) + "\n").stdout.splitlines()]
    for i, line in enumerate(lines[1:3]):
        vals = [float(x) for x in line.split("[")[1].split(", ...")[0].split(",")]
        assert vals == pytest.approx(cli[i][:3], abs=1e-5)
    cos = float(lines[3].split("=")[1])
    assert cos == pytest.approx(sum(a * b for a, b in zip(cli[0], cli[1])), abs=1e-5) and 0.5 < cos < 1


def test_classify_pair_example_matches_cli(examples):
    work, libdir = examples
    assert os.path.isfile(os.path.join(NLI, "model.safetensors")), f"the project's NLI model is missing: {NLI}"
    prem, hyp = "A man is playing a guitar on stage.", "A man is performing music."
    p = sh([str(work / "classify_pair"), NLI, prem, hyp], env=run_env(libdir))
    rows = [l.split() for l in p.stdout.splitlines()]
    probs = [float(r[1]) for r in rows[:-1]]
    assert rows[-1][:2] == ["prediction:", "entailment"]
    cli = json.loads(run_cli("classify", "--model", NLI, "--pair", "--json", "--compute", "fast",
                             input=f"{prem}\t{hyp}\n").stdout.splitlines()[0])
    id2label = json.load(open(os.path.join(NLI, "config.json")))["id2label"]
    assert cli["label"] == "entailment" and [r[0] for r in rows[:-1]] == [id2label[str(i)] for i in range(len(id2label))]
    e = [math.exp(x - max(cli["logits"])) for x in cli["logits"]]
    assert probs == pytest.approx([x / sum(e) for x in e], abs=1e-4)


def test_convert_example_matches_cli(examples, minilm, tmp_path):
    work, libdir = examples
    out = tmp_path / "minilm-4bit"
    p = sh([str(work / "convert"), minilm, str(out)], env=run_env(libdir))
    summary = json.loads(p.stdout)
    assert summary["status"] == "converted"
    assert "[" in p.stderr and "/" in p.stderr  # the progress callback ran
    ref = tmp_path / "cli-4bit"
    run_cli("convert", "--hf-path", minilm, "--mlx-path", str(ref), "-q", "--q-bits", "4", "--q-group-size", "64")
    assert (out / "model.safetensors").read_bytes() == (ref / "model.safetensors").read_bytes()
    q = json.loads((out / "config.json").read_text())["quantization"]
    assert (q["bits"], q["group_size"]) == (4, 64)
    # a second run finds the conversion in place
    assert json.loads(sh([str(work / "convert"), minilm, str(out)], env=run_env(libdir)).stdout)["status"] == "skipped"


def test_static_and_find_package(installed, tmp_path):
    """libmlxport.a links with the dependencies mlxport.pc lists (no libmlxport.so at run time);
    find_package(mlxport) gives the imported target mlxport::mlxport."""
    prefix, libdir = installed
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    san = ["-fsanitize=address,undefined"] if SANITIZE else []
    # libmlxport.a itself, its dependencies as shared libraries (Debian ships no static libcurl
    # closure): Requires.private / Libs.private of mlxport.pc name them
    cflags = sh(["pkg-config", "--cflags", "mlxport"], env=env).stdout.split()
    pc = (libdir / "pkgconfig" / "mlxport.pc").read_text()
    req = [l.split(":", 1)[1].split() for l in pc.splitlines() if l.startswith("Requires.private:")][0]
    priv = [l.split(":", 1)[1].split() for l in pc.splitlines() if l.startswith("Libs.private:")][0]
    flags = [*cflags, str(libdir / "libmlxport.a"), *sh(["pkg-config", "--libs", *req]).stdout.split(), *priv]
    exe = tmp_path / "embed_static"
    sh(["cc", *san, os.path.join(SOURCE_DIR, "examples", "embed.c"), "-o", str(exe), *flags, "-lm"])
    assert "libmlxport" not in sh(["ldd", str(exe)]).stdout
    p = subprocess.run([str(exe), str(tmp_path / "no-such-model"), "x"], capture_output=True, text=True,
                       env=run_env(libdir))
    assert p.returncode == 1 and "no-such-model" in p.stderr
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(os.path.join(SOURCE_DIR, "examples", "embed.c"), proj / "embed.c")
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\nproject(user C)\nfind_package(mlxport 0.1 REQUIRED)\n"
        "add_executable(embed embed.c)\ntarget_link_libraries(embed PRIVATE mlxport::mlxport m)\n"
        + (f"target_compile_options(embed PRIVATE {san[0]})\ntarget_link_options(embed PRIVATE {san[0]})\n" if san else ""))
    sh(["cmake", "-S", str(proj), "-B", str(proj / "b"), f"-DCMAKE_PREFIX_PATH={prefix}"])
    sh(["cmake", "--build", str(proj / "b")])
    p = subprocess.run([str(proj / "b" / "embed"), str(tmp_path / "no-such-model"), "x"], capture_output=True,
                       text=True, env=run_env(libdir))
    assert p.returncode == 1 and "no-such-model" in p.stderr
