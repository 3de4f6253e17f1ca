#!/usr/bin/env bash
# `make test`'s test run (after set-up and the four builds): finds or fetches the third-party test
# data by the one rule of scripts/test-data.sh, runs the whole CTest suite in the release and the
# ASan/UBSan builds, the aarch64 cross build's tests under qemu-aarch64 and the fuzz smoke, then
# prints the summary (tests/summary.py: counts, slowest tests, every skip with its reason) and
# fails on any failure or on any skip that tests/skip-allowlist.txt does not list. Runs every stage even after a failure, so that the
# summary is complete. docs/testing.md.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
MP_CACHE="${MP_CACHE:-$ROOT/.cache}"
export MP_CACHE
export HF_HUB_CACHE="${HF_HUB_CACHE:-$MP_CACHE/huggingface/hub}"
t0=$(date +%s)

MP_SHARED_DIR="$(bash scripts/test-data.sh ensure)" || exit 1
export MP_SHARED_DIR
echo "== test data: $MP_SHARED_DIR"

rc=0
echo "== clang-format"
make --no-print-directory format-check || rc=1

run_suite() { # build folder, title, extra environment...
  local b="$1" title="$2"
  shift 2
  rm -rf "$b/test-skips" "$b/junit.xml"
  echo "== $title"
  (cd "$b" && env "$@" ctest --output-on-failure --no-tests=error -j "$JOBS" --output-junit junit.xml) || rc=1
}
run_suite build "release build: full suite"
run_suite build-asan "ASan + UBSan build: full suite" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
# aarch64: the kernel tests (NEON with and without SDOT) and the model-forward parity against the
# release build, under qemu-aarch64; a missing cross build, toolchain or qemu fails here, never skips
t1=$(date +%s)
run_suite build-aarch64 "aarch64 cross build under qemu-aarch64: kernels (NEON, NEON+SDOT), model parity"
echo "== aarch64 stage: $(( $(date +%s) - t1 ))s"
make --no-print-directory fuzz || rc=1
# The CUDA build (when make built it): the CPU path is unchanged in it (API, kernels, the BERT-family
# parity against transformers through its CLI), --device cuda fails with the clear no-GPU error on
# this GPU-less machine (c/test_device), and `mlxport version` reports that error
# (py/test_pipeline_gpu). The GPU results themselves: tests/gpu/run.sh.
if [ -x build-cuda/mlxport ]; then
  echo "== CUDA build (-DMP_CUDA=ON): CPU tests and the no-GPU error"
  (cd build-cuda && ctest --output-on-failure -j "$JOBS" -R '^(c/test_device|c/test_api|c/test_kernels|py/test_model_parity|py/test_pipeline_gpu)$') || rc=1
  msg="$(echo hello | HF_HUB_OFFLINE=1 build-cuda/mlxport embed --model sentence-transformers/all-MiniLM-L6-v2 --device cuda 2>&1 >/dev/null)"
  echo "   --device cuda here: $msg"
  case "$msg" in *CUDA*) ;; *) echo "FAIL: --device cuda did not give the CUDA error"; rc=1 ;; esac
else
  echo "== CUDA build: not made (no nvcc)"
fi
python3 tests/summary.py build build-asan build-aarch64 || rc=1
echo "== make test: $(( $(date +%s) - t0 ))s for the test run (set-up and builds not included); exit $rc"
exit $rc
