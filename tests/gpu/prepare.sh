#!/usr/bin/env bash
# Stages, on the build machine, what tests/gpu/run.sh needs on the GPU machine into one gitignored
# folder (default gpu-carry/, well under the 64 MiB a GPU run can carry): the CUDA build's CLI,
# the test_qgemm program, the real all-MiniLM-L6-v2 with its weights cast to float16 (the f32 original is 90 MB), and the
# configs + tokenizers + the few dataset rows tools/make_model_fixtures.py builds the random-weight
# twins from (the twins themselves are made on the GPU machine with its torch/transformers).
# With WHAT=bench it stages instead what bench/bench_cuda.py needs (bin/bench_device and every
# tokenizer file of the eleven models; no MiniLM weights); WHAT=pipeline what bench/bench_pipeline.py
# needs (the same tokenizers, no bench_device, plus the full dev sets of the original configuration's
# benchmarks under datasets/, xz-compressed); WHAT=all stages all three (about 51 MiB).
#   tests/gpu/prepare.sh [BUILD_DIR=build-cuda] [OUT=gpu-carry] [WHAT=suite|bench|pipeline|all]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build-cuda}"
OUT="${2:-$ROOT/gpu-carry}"
WHAT="${3:-suite}"
case "$WHAT" in suite | bench | pipeline | all) ;; *) echo "prepare: WHAT must be suite, bench, pipeline or all, not '$WHAT'"; exit 2 ;; esac
OUT="$(mkdir -p "$OUT" && cd "$OUT" && pwd)" # absolute: the steps below change directory
MP_CACHE="${MP_CACHE:-$ROOT/.cache}"
PY="${MP_PYTHON:-$MP_CACHE/venv/bin/python}"
SHARED="${MP_SHARED_DIR:-$ROOT/../shared}"
HUB="${HF_HUB_CACHE:-$MP_CACHE/huggingface/hub}"
[ -x "$BUILD/mlxport" ] || { echo "prepare: $BUILD/mlxport not found (cmake -S . -B build-cuda -DMP_CUDA=ON && cmake --build build-cuda)"; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/shared/models" "$OUT/shared/datasets/mnli/validation_matched" "$OUT/shared/datasets/sst2"
cp "$BUILD/mlxport" "$OUT/bin/mlxport"
# tests/gpu/test_qgemm.c (the quantized-matmul test run.sh runs)
if [ "$WHAT" = suite ] || [ "$WHAT" = all ]; then
  [ -x "$BUILD/test_qgemm" ] || { echo "prepare: $BUILD/test_qgemm not found (cmake --build $BUILD)"; exit 2; }
  cp "$BUILD/test_qgemm" "$OUT/bin/"
fi
# bench/bench_device.c (bench/bench_cuda.py's measuring half), when the build has it
if [ "$WHAT" = bench ] || [ "$WHAT" = all ]; then
  [ -x "$BUILD/bench_device" ] || { echo "prepare: $BUILD/bench_device not found (cmake --build $BUILD)"; exit 2; }
  cp "$BUILD/bench_device" "$OUT/bin/"
  # bench/*.cu research probes (gemm8_probe: cuBLASLt's 8-bit GEMMs)
  for p in "$BUILD"/gemm8_probe; do [ -x "$p" ] && cp "$p" "$OUT/bin/"; done
fi
strip "$OUT/bin/"* 2>/dev/null || true
# the suite's programs xz-compressed too (run.sh unpacks them): the carry, with the tree, stays under 64 MiB
[ "$WHAT" = suite ] && xz -9 "$OUT/bin/"*
# the shared libraries it links that another distribution may lack (libyaml, utf8proc, pcre2, curl,
# ...), beside it in lib/ (run.sh puts lib/ on LD_LIBRARY_PATH and checks that nothing is missing).
# Not copied: glibc, the C++ runtime, the CUDA libraries (cuBLASLt: the GPU machine's own toolkit)
# and the base libraries every glibc distribution has under the same soname (zlib, zstd, OpenSSL,
# GnuTLS and its crypto, Kerberos, brotli): the carry stays well under 64 MiB.
mkdir -p "$OUT/lib"
ldd "$BUILD/mlxport" | awk '/=> \//{print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
  libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | libresolv.so* | ld-linux* | libstdc++.so* | \
    libgcc_s.so* | libcublas* | libcudart* | libcuda.so* | libz.so* | libzstd.so* | libssl.so* | libcrypto.so* | \
    libgnutls.so* | libgmp.so* | libidn2.so* | libp11-kit.so* | libtasn1.so* | libffi.so* | libnettle.so* | \
    libhogweed.so* | libkrb5* | libgssapi_krb5.so* | libk5crypto.so* | libcom_err.so* | libkeyutils.so* | \
    libbrotli*) ;;
  *) cp -L "$lib" "$OUT/lib/" ;;
  esac
done
# xz-compressed (run.sh and bench/bench_cuda.py unpack them): the carry stays under 64 MiB
xz -9 "$OUT"/lib/*
# the twins' sources: configs and tokenizers only (make_model_fixtures.py reads no weights)
# (the DeBERTa twins take MiniLM's WordPiece tokenizer: no sentencepiece needed on the GPU machine)
for m in all-MiniLM-L6-v2 all-MiniLM-L12-v2 roberta-large-mnli distilbert-base-uncased-mnli all-mpnet-base-v2 \
  deberta-v3-base-mnli-fever-anli deberta-v3-xsmall-mnli-binary bart-large-mnli mobilebert-uncased-mnli \
  modernbert-large-zeroshot-v2 xtremedistil-l6-h256-nli-binary; do
  mkdir -p "$OUT/shared/models/$m"
  for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json modules.json \
    sentence_bert_config.json 1_Pooling; do
    [ -e "$SHARED/models/$m/$f" ] && cp -r "$SHARED/models/$m/$f" "$OUT/shared/models/$m/"
  done
  # the benchmark runs mlxport on the real tokenizers, also of the models without tokenizer.json
  if [ "$WHAT" != suite ] && [ ! -e "$SHARED/models/$m/tokenizer.json" ]; then
    for f in vocab.txt vocab.json merges.txt spm.model added_tokens.json; do
      [ -e "$SHARED/models/$m/$f" ] && cp "$SHARED/models/$m/$f" "$OUT/shared/models/$m/"
    done
  fi
done
# tokenizer files xz-compressed (run.sh and bench/bench_cuda.py unpack them): the carry stays under
# 64 MiB
find "$OUT/shared/models" \( -name tokenizer.json -o -name spm.model -o -name vocab.txt \) \
  -exec xz -9 {} +
head -n 30 "$SHARED/datasets/mnli/validation_matched/dev.jsonl" >"$OUT/shared/datasets/mnli/validation_matched/dev.jsonl"
head -n 40 "$SHARED/datasets/sst2/dev.tsv" >"$OUT/shared/datasets/sst2/dev.tsv"
# bench/bench_pipeline.py: the full dev sets of config/datasets.yaml's benchmarks, at the paths the
# built-in keys are looked up under (src/eval/data_dirs.c); those not in $SHARED (ANLI, FEVER-NLI) are
# left out, and bench_pipeline.py reports them as not available
if [ "$WHAT" = pipeline ] || [ "$WHAT" = all ]; then
  for rel in mnli/validation_matched/dev.jsonl sst2/dev.tsv stsb/dev.tsv rte/val.jsonl anli/R1/dev.jsonl \
    fever_nli/dev.jsonl; do
    if [ -e "$SHARED/datasets/$rel" ]; then
      mkdir -p "$OUT/datasets/$(dirname "$rel")"
      xz -9 <"$SHARED/datasets/$rel" >"$OUT/datasets/$rel.xz"
    fi
  done
fi
if [ "$WHAT" = bench ] || [ "$WHAT" = pipeline ]; then
  du -sh "$OUT"
  if [ "$WHAT" = bench ]; then
    echo "prepare: staged $OUT; on the GPU machine run: python3 bench/bench_cuda.py --carry $(basename "$OUT")"
  else
    echo "prepare: staged $OUT; on the GPU machine run: python3 bench/bench_pipeline.py --carry $(basename "$OUT")"
  fi
  exit 0
fi
# real data for run.sh's eval check of the fast mode: the STS-B dev set (../shared, 0.3 MB)
if [ -e "$SHARED/datasets/stsb/dev.tsv" ]; then
  mkdir -p "$OUT/data/stsb"
  cp "$SHARED/datasets/stsb/dev.tsv" "$OUT/data/stsb/dev.tsv"
fi
# the real MiniLM, float16 weights, xz-compressed (run.sh unpacks them with Python's lzma)
SNAP="$(ls -d "$HUB"/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*/ | head -1)"
mkdir -p "$OUT/minilm"
(cd "$SNAP" && for f in *.json vocab.txt 1_Pooling; do cp -rL "$f" "$OUT/minilm/"; done)
"$PY" - "$SNAP/model.safetensors" "$OUT/minilm/model.safetensors" <<'PYEOF'
import sys
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
save_file({k: (v.astype("float16") if v.dtype.kind == "f" else v) for k, v in t.items()}, sys.argv[2],
          metadata={"format": "pt"})
import lzma
with open(sys.argv[2], "rb") as f, lzma.open(sys.argv[2] + ".xz", "wb", preset=9) as g:
    g.write(f.read())
import os
os.remove(sys.argv[2])
PYEOF
du -sh "$OUT"
echo "prepare: staged $OUT; on the GPU machine run: bash tests/gpu/run.sh $(basename "$OUT")"
