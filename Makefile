# mlxport: thin wrapper over CMake. The two commands README.md promises:
#   make demo   set up, build, run the main job on the embedded default
#   make test   set up, build, run the whole test suite (release + ASan/UBSan builds, fuzz smoke,
#               the aarch64 cross build's kernel and model-parity tests under qemu-aarch64)
ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
MP_CACHE  ?= $(ROOT)/.cache
export MP_CACHE
PY        := $(MP_CACHE)/venv/bin/python
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
HUB       := $(MP_CACHE)/huggingface/hub
FUZZ_SECONDS ?= 30

.PHONY: all install setup setup-build setup-cross build build-asan build-fuzz build-cuda build-aarch64 test test-data-precheck test-release test-asan fuzz demo clean format format-check

all: build

setup:
	@bash scripts/setup.sh all

setup-build:
	@bash scripts/setup.sh build

build: setup-build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMP_PYTHON=$(PY) >/dev/null
	@cmake --build build -j $(JOBS)

# Installs the CLI, libmlxport.so.MAJOR + libmlxport.a, the headers, mlxport.pc and the CMake
# package config under PREFIX (default /usr/local), staged under DESTDIR when given.
PREFIX ?= /usr/local
install: build
	@DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"

# aarch64 cross build (Debian's gcc-aarch64-linux-gnu, multiarch arm64 libraries, scripts/setup.sh
# cross): the library, the CLI and the kernel tests; ctest in build-aarch64 runs them under
# qemu-aarch64, with the host build's CLI as the model-parity reference (docs/testing.md).
setup-cross:
	@bash scripts/setup.sh cross

build-aarch64: setup-cross build
	@cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
	  -DMP_HOST_MLXPORT=$(ROOT)/build/mlxport >/dev/null
	@cmake --build build-aarch64 -j $(JOBS) --target mlxport_cli test_kernels test_qlinear

build-asan: setup-build
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMP_SANITIZE=ON -DMP_PYTHON=$(PY) >/dev/null
	@cmake --build build-asan -j $(JOBS)

# The CUDA backend (docs/cuda.md), built when nvcc is there (CI has it; no GPU is needed to build
# or to run its CPU tests): only the CLI and the tests scripts/run-tests.sh runs from it.
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
MP_CUDA_TARGETS := mlxport_cli test_device test_api test_kernels
build-cuda: setup-build
	@if [ -z "$(NVCC)" ]; then echo "build-cuda: no nvcc (CUDA toolkit): the CUDA build is not made"; exit 0; fi; \
	cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DMP_CUDA=ON -DCMAKE_CUDA_COMPILER=$(NVCC) -DMP_PYTHON=$(PY) >/dev/null && \
	cmake --build build-cuda -j $(JOBS) --target $(MP_CUDA_TARGETS)

build-fuzz: setup-build
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMP_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

# test-data-precheck first: without test data and offline, `make test` stops at once (docs/testing.md).
test: test-data-precheck setup build build-asan build-fuzz build-cuda build-aarch64
	@HF_HUB_CACHE=$(HUB) JOBS=$(JOBS) bash scripts/run-tests.sh

test-data-precheck:
	@bash scripts/test-data.sh precheck

# Each libFuzzer target runs FUZZ_SECONDS from its committed seed corpus (fuzz/corpus/<name>).
fuzz: build-fuzz
	@set -e; for f in build-fuzz/fuzz_*; do \
	  [ -x "$$f" ] || continue; n=$$(basename $$f); \
	  mkdir -p build-fuzz/corpus-$$n; \
	  echo "== fuzz $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build-fuzz/ -max_len=65536 -rss_limit_mb=2048 -print_final_stats=0 \
	      build-fuzz/corpus-$$n fuzz/corpus/$$n 2>build-fuzz/$$n.log || { tail -50 build-fuzz/$$n.log; exit 1; }; \
	done

# The demo needs the build and the default model, not the test reference environments.
demo: setup-build
	@bash scripts/setup.sh demo
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)
	@HF_HUB_CACHE=$(HUB) bash scripts/demo.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h' '*.cu' '*.cuh')

# CI: the tree is formatted (.clang-format); `make format` fixes it.
format-check:
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h' '*.cu' '*.cuh') || \
	  { echo "clang-format: the files above are not formatted; run make format"; exit 1; }

clean:
	rm -rf build build-asan build-fuzz build-cuda build-aarch64
