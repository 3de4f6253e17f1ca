#!/usr/bin/env bash
# The GPU suite of the CUDA backend (issue #20, docs/cuda.md), run on a machine with an NVIDIA GPU.
# It builds nothing: it runs the CLI that tests/gpu/prepare.sh staged (from a -DMP_CUDA=ON build)
# and checks, on fixed inputs:
#   - CUDA against the CPU faithful path on random-weight twins of the families on CUDA (BERT,
#     RoBERTa, DistilBERT, MPNet, DeBERTa-v3, BART, MobileBERT, ModernBERT; made here by
#     tools/make_model_fixtures.py with this machine's torch/transformers) and on the real
#     all-MiniLM-L6-v2 (float16 weights): embeddings cosine >= 0.9999 in float16 (>= 0.999999 in
#     float32, >= 0.999 in bfloat16), classification argmax agreement 100%;
#   - CUDA against PyTorch (transformers, float16) on the same GPU;
#   - MLX q8 / q4 conversions on CUDA against the CPU quantized (faithful) path, in the faithful
#     mode and in the fast mode (FP8 tensor cores; looser bounds: a second rounding);
#   - a CUDA device that does not exist fails with a clear error.
# Prints one PASS/FAIL line per check and a summary; exits 1 on any failure.
#   bash tests/gpu/run.sh [CARRY_DIR=gpu-carry]        (PYTHON= the interpreter with torch)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CARRY="$(cd "${1:-gpu-carry}" && pwd)"
B="$CARRY/bin/mlxport"
export LD_LIBRARY_PATH="$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PY="${PYTHON:-python3}"
# the carried shared libraries and programs are xz-compressed (prepare.sh): unpacked in place once
for f in "$CARRY"/lib/*.xz "$CARRY"/bin/*.xz; do
  [ -e "$f" ] || continue
  "$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$f" "${f%.xz}" &&
    rm -f "$f" && chmod +x "${f%.xz}"
done
W="${MP_GPU_WORK:-$(mktemp -d /tmp/mlxport-gpu.XXXXXX)}"
mkdir -p "$W"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
G="$ROOT/tests/gpu"
npass=0
nfail=0
FAILED=()
t0=$(date +%s)

record() { # rc line...
  local rc=$1
  shift
  echo "$*"
  if [ "$rc" -eq 0 ]; then npass=$((npass + 1)); else nfail=$((nfail + 1)); FAILED+=("$*"); fi
}
# cmp_out KIND NAME A B TOL: compare.py's line
cmp_out() {
  local line rc
  line="$("$PY" "$G/compare.py" "$@" 2>&1)"
  rc=$?
  record $rc "$line"
}
# run NAME OUTFILE CMD...: runs a command, stdout to OUTFILE; a failure is recorded with its stderr
run() {
  local name=$1 out=$2
  shift 2
  if ! "$@" >"$out" 2>"$out.err"; then
    record 1 "FAIL $name: command failed: $(tail -3 "$out.err" | tr '\n' ' ')"
    return 1
  fi
  return 0
}

# MP_GPU_SECTIONS="fast quant ...": only those sections after the set-up (default: all of faithful
# flash quant qgemm fast torch graphs errors; torch compares against faithful's CUDA outputs)
want() { [ -z "${MP_GPU_SECTIONS:-}" ] || [[ " $MP_GPU_SECTIONS " == *" $1 "* ]]; }
echo "== mlxport GPU suite: $(date -u +%FT%TZ)${MP_GPU_SECTIONS:+ (sections: $MP_GPU_SECTIONS)}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/== GPU: /'
[ -x "$B" ] || { echo "FAIL setup: $B missing (run tests/gpu/prepare.sh on the build machine and carry gpu-carry)"; exit 1; }
echo "== work folder: $W"
if ldd "$B" | grep -q "not found"; then
  echo "FAIL setup: $B lacks shared libraries on this machine:"
  ldd "$B" | grep "not found"
  exit 1
fi

# the carried tokenizer files are xz-compressed (prepare.sh): unpack a copy of shared/
rm -rf "$W/shared"
cp -r "$CARRY/shared" "$W/shared"
find "$W/shared" -name '*.xz' | while read -r f; do
  "$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$f" "${f%.xz}" &&
    rm -f "$f"
done

# ---- random-weight twins (the families on CUDA; MobileBERT's three: the real structure with
# NoNorm + trigram + shared key/query bottleneck, the LayerNorm / use_bottleneck_attention variant,
# and the no-bottleneck gelu variant)
if ! "$PY" tools/make_model_fixtures.py "$W/fx" --shared "$W/shared" \
  --only bert-cls,bert-embed,roberta-cls,distilbert-cls,mpnet-cls,mpnet-embed,deberta-wp-cls,deberta-bin-wp-cls,bart-cls,mobilebert-cls,mobilebert-var-cls,mobilebert-nobn-cls \
  >"$W/fixtures.log" 2>&1; then
  tail -20 "$W/fixtures.log"
  record 1 "FAIL setup: tools/make_model_fixtures.py"
  echo "== summary: $npass passed, $nfail failed"
  exit 1
fi
"$PY" - "$W" <<'PYEOF'
import json, sys
w = sys.argv[1]
ref = json.load(open(f"{w}/fx/bert-cls/reference.json"))
with open(f"{w}/texts.txt", "w") as f:
    for t in ref["texts"]:
        f.write(t.replace("\n", " ").replace("\t", " ") + "\n")
with open(f"{w}/pairs.tsv", "w") as f:
    for p, h in ref["pairs"]:
        f.write(p.replace("\t", " ") + "\t" + h.replace("\t", " ") + "\n")
# DeBERTa: long inputs (up to 512 tokens) reach the log-bucketed relative positions
d = json.load(open(f"{w}/fx/deberta-wp-cls/reference.json"))
with open(f"{w}/long.txt", "w") as f:
    f.write(d["long_text"].replace("\n", " ") + "\n")
    for p, h in d["long_pairs"]:
        f.write((p + " " + h).replace("\n", " ") + "\n")
# texts of many lengths (1 to ~500 tokens: one, several and partial key tiles of the flash kernel)
words = " ".join(t for pair in ref["pairs"] for t in pair).split() or ["word"]
with open(f"{w}/lengths.txt", "w") as f:
    for n in (1, 2, 3, 7, 15, 16, 17, 31, 33, 47, 63, 64, 65, 95, 127, 128, 129, 191, 255, 300, 400, 500):
        f.write(" ".join(words[i % len(words)] for i in range(n)) + "\n")
PYEOF
TEXTS="$W/texts.txt"
# ModernBERT twins: transformers >= 4.48 (tools/modernbert_ref.py shims older torch); built apart so
# that a machine without it fails only the ModernBERT checks
MODERNBERT=1
if ! "$PY" tools/make_model_fixtures.py "$W/fx" --shared "$W/shared" --only modernbert-cls,modernbert-bias-cls \
  >"$W/fixtures-modernbert.log" 2>&1; then
  tail -5 "$W/fixtures-modernbert.log"
  record 1 "FAIL setup: ModernBERT twins (tools/make_model_fixtures.py --only modernbert-cls,...)"
  MODERNBERT=0
fi
PAIRS="$W/pairs.tsv"
MINILM="$W/minilm" # the carried copy with its weights unpacked
rm -rf "$MINILM"
cp -r "$CARRY/minilm" "$MINILM"
"$PY" -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
  "$CARRY/minilm/model.safetensors.xz" "$MINILM/model.safetensors" && rm -f "$MINILM/model.safetensors.xz" ||
  record 1 "FAIL setup: unpacking the MiniLM weights"

# ---- MLX conversions (on the CPU, with the same CLI)
conv() { # SRC OUT BITS
  run "convert $(basename "$2")" "$W/conv.log" "$B" convert --hf-path "$1" --mlx-path "$2" -q --q-bits "$3"
}
mkdir -p "$W/q"
conv "$W/fx/bert-cls-st" "$W/q/bert-cls-q8" 8
conv "$W/fx/bert-cls-st" "$W/q/bert-cls-q4" 4
conv "$W/fx/roberta-cls-st" "$W/q/roberta-cls-q4" 4
conv "$MINILM" "$W/q/minilm-q8" 8
conv "$MINILM" "$W/q/minilm-q4" 4
conv "$W/fx/deberta-wp-cls-st" "$W/q/deberta-wp-cls-q8" 8
conv "$W/fx/bart-cls-st" "$W/q/bart-cls-q4" 4
conv "$W/fx/mpnet-embed-st" "$W/q/mpnet-embed-q8" 8
conv "$W/fx/mobilebert-cls-st" "$W/q/mobilebert-cls-q8" 8
[ $MODERNBERT = 1 ] && conv "$W/fx/modernbert-cls-st" "$W/q/modernbert-cls-q8" 8

# embed_check NAME MODEL [TEXTS]: CPU faithful vs CUDA (fp16, fp32, bf16)
embed_check() {
  local name=$1 m=$2 o="$W/out/$1" tx="${3:-$TEXTS}"
  mkdir -p "$o"
  run "$name embed cpu" "$o/cpu.emb" "$B" embed --model "$m" --compute faithful <"$tx" || return
  run "$name embed cuda" "$o/cuda.emb" "$B" embed --model "$m" --device cuda --compute faithful <"$tx" &&
    cmp_out emb "$name embeddings cuda fp16 vs cpu" "$o/cpu.emb" "$o/cuda.emb" 0.9999
  MP_CUDA_DTYPE=float32 run "$name embed cuda fp32" "$o/cuda32.emb" "$B" embed --model "$m" --device cuda \
    --compute faithful <"$tx" &&
    cmp_out emb "$name embeddings cuda fp32 vs cpu" "$o/cpu.emb" "$o/cuda32.emb" 0.999999
  MP_CUDA_DTYPE=bfloat16 run "$name embed cuda bf16" "$o/cudabf.emb" "$B" embed --model "$m" --device cuda \
    --compute faithful <"$tx" &&
    cmp_out emb "$name embeddings cuda bf16 vs cpu" "$o/cpu.emb" "$o/cudabf.emb" 0.999
}
# cls_check NAME MODEL TOL: CPU faithful vs CUDA logits (argmax 100%, max |d| <= TOL)
cls_check() {
  local name=$1 m=$2 tol=$3 o="$W/out/$1"
  mkdir -p "$o"
  run "$name classify cpu" "$o/cpu.cls" "$B" classify --model "$m" --pair --json --compute faithful <"$PAIRS" || return
  run "$name classify cuda" "$o/cuda.cls" "$B" classify --model "$m" --pair --json --device cuda --compute faithful \
    <"$PAIRS" &&
    cmp_out cls "$name logits cuda fp16 vs cpu" "$o/cpu.cls" "$o/cuda.cls" "$tol"
  MP_CUDA_DTYPE=float32 run "$name classify cuda fp32" "$o/cuda32.cls" "$B" classify --model "$m" --pair --json \
    --device cuda --compute faithful <"$PAIRS" && cmp_out cls "$name logits cuda fp32 vs cpu" "$o/cpu.cls" "$o/cuda32.cls" 1e-3
}

if want faithful; then
echo "== CUDA vs the CPU faithful path"
embed_check minilm "$MINILM"
embed_check bert-embed "$W/fx/bert-embed-st"
for f in bert-cls roberta-cls distilbert-cls mpnet-cls deberta-wp-cls deberta-bin-wp-cls bart-cls mobilebert-cls \
  mobilebert-var-cls mobilebert-nobn-cls; do
  embed_check "$f" "$W/fx/$f-st"
  cls_check "$f" "$W/fx/$f-st" 0.01
done
embed_check mpnet-embed "$W/fx/mpnet-embed-st"
if [ $MODERNBERT = 1 ]; then
  for f in modernbert-cls modernbert-bias-cls; do
    embed_check "$f" "$W/fx/$f-st"
    cls_check "$f" "$W/fx/$f-st" 0.01
  done
fi
embed_check deberta-long "$W/fx/deberta-wp-cls-st" "$W/long.txt"
embed_check roberta-lengths "$W/fx/roberta-cls-st" "$W/lengths.txt"
[ $MODERNBERT = 1 ] && embed_check modernbert-lengths "$W/fx/modernbert-cls-st" "$W/lengths.txt"

fi
# the tensor-core flash kernels (mma.sync, the default, MP_CUDA_ATTENTION=mma, in its plain form
# where only the key padding mask applies and its general form, MP_CUDA_FLASH_PLAIN=0; WMMA, =wmma)
# against the CUDA-core reference kernel (MP_CUDA_ATTENTION=simple) on inputs of many lengths, both
# 16-bit dtypes: masks, DeBERTa's relative terms, MPNet's bias, windows. The per-operation profile
# (MP_CUDA_PROFILE=1, on stderr) shows which kernel ran.
if want flash; then
echo "== flash attention vs the reference attention kernel"
flash_check() { # NAME MODEL PLAIN (1: every attention call has only the padding mask, so the default
  # runs the plain form only; 0: none or some do, the general form runs)
  local name=$1 m=$2 plain=$3 o="$W/out/flash-$1" dt k label att pl
  mkdir -p "$o"
  for dt in float16 bfloat16; do
    MP_CUDA_DTYPE=$dt MP_CUDA_ATTENTION=simple run "$name simple $dt" "$o/simple-$dt.emb" "$B" embed --model "$m" \
      --device cuda <"$W/lengths.txt" || continue
    for k in wmma mma mma-general; do
      att=$k pl=1 label="flash attention" # pl: MP_CUDA_FLASH_PLAIN (0: the general form only)
      [ $k = mma ] && label="flash attention (mma$([ "$plain" = 1 ] && echo ", plain"))"
      [ $k = mma-general ] && att=mma pl=0 label="flash attention (mma)"
      MP_CUDA_DTYPE=$dt MP_CUDA_ATTENTION=$att MP_CUDA_FLASH_PLAIN=$pl MP_CUDA_PROFILE=1 run "$name $k $dt" \
        "$o/$k-$dt.emb" "$B" embed --model "$m" --device cuda <"$W/lengths.txt" || continue
      if ! grep -q "  $label  " "$o/$k-$dt.emb.err"; then
        record 1 "FAIL $name: the $k flash kernel did not run ($dt): $(head -c 300 "$o/$k-$dt.emb.err")"
      elif [ $k != mma ] && grep -q "(mma, plain)" "$o/$k-$dt.emb.err"; then
        record 1 "FAIL $name: the plain form ran under $k ($dt)"
      elif [ $k = mma ] && [ "$plain" = 1 ] && grep -q "  flash attention (mma)  " "$o/$k-$dt.emb.err"; then
        record 1 "FAIL $name: the general form ran where only the padding mask applies ($dt)"
      else
        record 0 "PASS $name: the $k flash kernel ran ($dt)"
      fi
      cmp_out emb "$name embeddings $k flash vs reference attention $dt" "$o/simple-$dt.emb" "$o/$k-$dt.emb" \
        "$([ $dt = float16 ] && echo 0.9999 || echo 0.999)"
    done
  done
}
for f in bert-embed roberta-cls distilbert-cls mobilebert-cls; do
  flash_check "$f" "$W/fx/$f-st" 1
done
for f in mpnet-embed deberta-wp-cls; do
  flash_check "$f" "$W/fx/$f-st" 0
done
flash_check minilm "$MINILM" 1
[ $MODERNBERT = 1 ] && flash_check modernbert-cls "$W/fx/modernbert-cls-st" 0
fi

if want quant; then
echo "== MLX-quantized (q8/q4) on CUDA vs the CPU quantized path (faithful)"
embed_check minilm-q8 "$W/q/minilm-q8"
embed_check minilm-q4 "$W/q/minilm-q4"
cls_check bert-cls-q8 "$W/q/bert-cls-q8" 0.01
cls_check bert-cls-q4 "$W/q/bert-cls-q4" 0.01
cls_check roberta-cls-q4 "$W/q/roberta-cls-q4" 0.01
cls_check deberta-wp-cls-q8 "$W/q/deberta-wp-cls-q8" 0.01
cls_check bart-cls-q4 "$W/q/bart-cls-q4" 0.01
cls_check mobilebert-cls-q8 "$W/q/mobilebert-cls-q8" 0.01
embed_check mpnet-embed-q8 "$W/q/mpnet-embed-q8"
[ $MODERNBERT = 1 ] && cls_check modernbert-cls-q8 "$W/q/modernbert-cls-q8" 0.01

fi
# MLX affine weights kept quantized on the device (MP_CUDA_QGEMM=1, src/cuda/qgemm.cuh; the
# default dequantizes them at upload, checked above): test_qgemm checks the quantized matmul on
# random matrices against a double reference (both kernel paths, fp16 and bf16); then the real
# MiniLM q8 / q4 through each path against the CPU: the dequantize-in-GEMM kernel at every row
# count (MP_CUDA_QGEMM_ROWS=100000; the profile shows it ran) and dequantize + cuBLASLt
# (MP_CUDA_QGEMM_ROWS=0)
if want qgemm; then
echo "== quantized-weight kernels (qgemm.cuh, MP_CUDA_QGEMM=1)"
if [ -x "$CARRY/bin/test_qgemm" ]; then
  qline="$("$CARRY/bin/test_qgemm" 2>&1)"
  qrc=$?
  echo "$qline" | grep '^FAIL' | head -20
  record $qrc "$(echo "$qline" | tail -1)"
else
  record 1 "FAIL test_qgemm: $CARRY/bin/test_qgemm not staged (tests/gpu/prepare.sh from a -DMP_CUDA=ON build)"
fi
for qm in minilm-q8 minilm-q4; do
  o="$W/out/$qm"
  if MP_CUDA_QGEMM=1 MP_CUDA_QGEMM_ROWS=100000 MP_CUDA_PROFILE=1 run "$qm profile" "$o/prof.emb" "$B" embed --model "$W/q/$qm" --device cuda \
    --compute faithful <"$TEXTS"; then
    if grep -q "  qmatmul " "$o/prof.emb.err"; then
      record 0 "PASS $qm: the dequantize-in-GEMM kernel ran"
    else
      record 1 "FAIL $qm: the dequantize-in-GEMM kernel did not run: $(head -c 300 "$o/prof.emb.err")"
    fi
    cmp_out emb "$qm embeddings cuda dequantize-in-GEMM vs cpu" "$o/cpu.emb" "$o/prof.emb" 0.9999
  fi
  MP_CUDA_QGEMM=1 MP_CUDA_QGEMM_ROWS=0 run "$qm dequantize path" "$o/deq.emb" "$B" embed --model "$W/q/$qm" \
    --device cuda --compute faithful <"$TEXTS" && cmp_out emb "$qm embeddings cuda dequantize+cuBLASLt vs cpu" "$o/cpu.emb" "$o/deq.emb" 0.9999
done

fi
# The fast mode (--compute fast, the default; src/cuda/fp8gemm.cuh): MLX affine weights requantized
# per output channel to FP8 E4M3, activations per row, cuBLASLt's FP8 GEMM. A second rounding, so
# the bounds are looser than the faithful ones above: embeddings against the CPU faithful path
# (min cosine >= 0.99, fp16 and bf16 compute) on the real MiniLM and the twins of every family,
# classification argmax agreement >= 90% on the twins (random weights: near-ties flip); the
# profile must show the FP8 GEMM ran, and MP_CUDA_FAST8=0 must give the faithful results. By
# default only layers fed by a LayerNorm run on FP8 (the attention output and feed-forward output
# layers stay on fp16 / bf16 weights) and the erf GELU after an FP8 GEMM is cuBLASLt's tanh-form
# epilogue; the real MiniLM is also checked with MP_CUDA_FAST8_RAW=1 MP_CUDA_FAST_GELU=erf (every
# layer on FP8, the exact GELU writing the next layer's E4M3 copy), the bounds the same.
if want fast; then
echo "== the fast mode (FP8 E4M3 tensor cores, --compute fast)"
fast_check() { # NAME MODEL [cls]
  local name=$1 m=$2 o="$W/out/$1" dt
  mkdir -p "$o"
  [ -s "$o/cpu.emb" ] || run "$name embed cpu" "$o/cpu.emb" "$B" embed --model "$m" --compute faithful <"$TEXTS" || return
  for dt in float16 bfloat16; do
    MP_CUDA_DTYPE=$dt MP_CUDA_PROFILE=1 run "$name fast $dt" "$o/fast-$dt.emb" "$B" embed --model "$m" --device cuda \
      --compute fast <"$TEXTS" || continue
    if grep -q "  matmul (fp8) " "$o/fast-$dt.emb.err"; then
      record 0 "PASS $name: the FP8 GEMM ran ($dt)"
    else
      record 1 "FAIL $name: the FP8 GEMM did not run ($dt): $(head -c 300 "$o/fast-$dt.emb.err")"
    fi
    cmp_out emb "$name embeddings cuda fast (fp8, $dt) vs cpu faithful" "$o/cpu.emb" "$o/fast-$dt.emb" 0.99
  done
  MP_CUDA_FAST8=0 run "$name fast8 off" "$o/nofast.emb" "$B" embed --model "$m" --device cuda --compute fast \
    <"$TEXTS" && cmp_out emb "$name embeddings cuda MP_CUDA_FAST8=0 vs cpu faithful" "$o/cpu.emb" "$o/nofast.emb" 0.9999
  if [ "${3:-}" = cls ]; then
    [ -s "$o/cpu.cls" ] || run "$name classify cpu" "$o/cpu.cls" "$B" classify --model "$m" --pair --json \
      --compute faithful <"$PAIRS" || return
    run "$name classify fast" "$o/fast.cls" "$B" classify --model "$m" --pair --json --device cuda --compute fast \
      <"$PAIRS" && cmp_out agree "$name logits cuda fast (fp8) vs cpu faithful" "$o/cpu.cls" "$o/fast.cls" 0.9
  fi
}
fast_check minilm-q8 "$W/q/minilm-q8"
# the profile of the default: fp16 GEMMs beside the FP8 ones (raw-input layers), no activation pass
o="$W/out/minilm-q8"
if [ -s "$o/fast-float16.emb.err" ]; then
  if grep -q "  matmul (fp8) " "$o/fast-float16.emb.err" && grep -q "  matmul  " "$o/fast-float16.emb.err" &&
    ! grep -q "  activation" "$o/fast-float16.emb.err"; then
    record 0 "PASS minilm-q8 fast profile: FP8 and fp16 GEMMs, the GELU in the FP8 GEMM's epilogue"
  else
    record 1 "FAIL minilm-q8 fast profile: $(grep -E '  (matmul|activation)' "$o/fast-float16.emb.err" | head -c 400)"
  fi
fi
MP_CUDA_FAST8_RAW=1 MP_CUDA_FAST_GELU=erf MP_CUDA_PROFILE=1 run "minilm-q8 fast raw+erf" "$o/raw.emb" "$B" embed \
  --model "$W/q/minilm-q8" --device cuda --compute fast <"$TEXTS" &&
  cmp_out emb "minilm-q8 embeddings cuda fast, MP_CUDA_FAST8_RAW=1 GELU=erf, vs cpu faithful" "$o/cpu.emb" "$o/raw.emb" 0.99
if [ -s "$o/raw.emb.err" ]; then
  if grep -q "  activation + quantize (fp8) " "$o/raw.emb.err" && ! grep -q "  matmul  " "$o/raw.emb.err"; then
    record 0 "PASS minilm-q8 raw+erf profile: the GELU writes the E4M3 copy"
  else
    record 1 "FAIL minilm-q8 raw+erf profile: $(grep -E '  (matmul|activation)' "$o/raw.emb.err" | head -c 400)"
  fi
fi
fast_check minilm-q4 "$W/q/minilm-q4"
fast_check bert-cls-q8 "$W/q/bert-cls-q8" cls
fast_check roberta-cls-q4 "$W/q/roberta-cls-q4" cls
fast_check deberta-wp-cls-q8 "$W/q/deberta-wp-cls-q8" cls
fast_check bart-cls-q4 "$W/q/bart-cls-q4" cls
# the encoder output's E4M3 copy is made once (keep_copy) for every decoder layer's cross-attention
# keys and values, which then run on FP8
e="$W/out/bart-cls-q4/fast-float16.emb.err"
if [ -s "$e" ] && grep -q "  quantize (fp8), kept " "$e"; then
  record 0 "PASS bart-cls-q4 fast profile: the encoder output's E4M3 copy kept for the cross-attention"
else
  record 1 "FAIL bart-cls-q4 fast profile: no 'quantize (fp8), kept': $(grep -E '  (matmul|quantize)' "$e" 2>/dev/null | head -c 400)"
fi
# MobileBERT: NoNorm writes no E4M3 copy and its GEMMs are small, so every layer is raw_input and
# the default fast mode runs no FP8 GEMM there; MP_CUDA_FAST8_RAW=1 puts them all on FP8 (checked)
MP_CUDA_FAST8_RAW=1 fast_check mobilebert-cls-q8 "$W/q/mobilebert-cls-q8" cls
o="$W/out/mobilebert-cls-q8"
if MP_CUDA_PROFILE=1 run "mobilebert-cls-q8 fast default" "$o/default.emb" "$B" embed --model "$W/q/mobilebert-cls-q8" \
  --device cuda --compute fast <"$TEXTS"; then
  if grep -q "  matmul  " "$o/default.emb.err" && ! grep -q "  matmul (fp8) " "$o/default.emb.err"; then
    record 0 "PASS mobilebert-cls-q8 fast default: every layer raw_input, no FP8 GEMM"
  else
    record 1 "FAIL mobilebert-cls-q8 fast default: $(grep -E '  matmul' "$o/default.emb.err" | head -c 400)"
  fi
  cmp_out emb "mobilebert-cls-q8 embeddings cuda fast default vs cpu faithful" "$o/cpu.emb" "$o/default.emb" 0.9999
fi
fast_check mpnet-embed-q8 "$W/q/mpnet-embed-q8"
if [ $MODERNBERT = 1 ]; then
  fast_check modernbert-cls-q8 "$W/q/modernbert-cls-q8" cls
  # the GeGLU product writes mlp.Wo's E4M3 copy (mul_rows), so mlp.Wo runs on FP8 too
  e="$W/out/modernbert-cls-q8/fast-float16.emb.err"
  if [ -s "$e" ] && grep -q "  elementwise + quantize (fp8) " "$e"; then
    record 0 "PASS modernbert-cls-q8 fast profile: the GeGLU product wrote the E4M3 copy"
  else
    record 1 "FAIL modernbert-cls-q8 fast profile: no 'elementwise + quantize (fp8)': $(grep -E '  (matmul|elementwise)' "$e" 2>/dev/null | head -c 400)"
  fi
fi
# on real data: the real MiniLM q8 over the STS-B dev set (1,500 pairs) with eval's two passes on
# the GPU (faithful for the metric, fast for speed); the fast mode's Spearman within 0.01 of the
# faithful one, the device and both modes recorded, the 24 LayerNorm-fed quantized layers (q, k, v,
# intermediate of 6) in the fast mode
o="$W/out/eval"
mkdir -p "$o"
if [ ! -e "$CARRY/data/stsb/dev.tsv" ]; then
  record 1 "FAIL eval minilm-q8 stsb: $CARRY/data/stsb/dev.tsv not staged (tests/gpu/prepare.sh, ../shared)"
elif run "eval minilm-q8 stsb" "$o/stsb.json" "$B" eval --model "$W/q/minilm-q8" --dataset "$CARRY/data/stsb/dev.tsv" \
  --task semantic-similarity --latency-requests 0 --device cuda --json; then
  line="$("$PY" - "$o/stsb.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["converted"]
fm = c.get("fast_mode") or {}
d = abs(fm.get("spearman", -9) - c["spearman"])
ok = (c["device"].startswith("cuda") and c["metric_compute"] == "faithful" and c["perf_compute"] == "fast"
      and c["integer_layers"] == 24 and d <= 0.01)
print(f"{'PASS' if ok else 'FAIL'} eval minilm-q8 stsb on {c['device']}: Spearman faithful {c['spearman']:.4f}, "
      f"fast (fp8) {fm.get('spearman', float('nan')):.4f} (|diff| {d:.4f} <= 0.01), max |dcos| "
      f"{fm.get('max_abs_cosine_diff', float('nan')):.4f}, {c['integer_layers']} fast layers, "
      f"metric {c['metric_compute']}, perf {c['perf_compute']}, {c['n_examples']} pairs")
sys.exit(0 if ok else 1)
PYEOF
)"
  record $? "$line"
fi

fi
if want torch; then
echo "== CUDA vs PyTorch (transformers, float16, same GPU)"
o="$W/out/torch"
mkdir -p "$o"
if run "torch minilm" "$o/minilm.log" "$PY" "$G/torch_ref.py" emb "$MINILM" "$TEXTS" 256 "$o/minilm.emb"; then
  cmp_out emb "minilm embeddings cuda vs torch fp16" "$o/minilm.emb" "$W/out/minilm/cuda.emb" 0.9999
fi
TORCH_CLS="bert-cls roberta-cls distilbert-cls mpnet-cls deberta-wp-cls deberta-bin-wp-cls bart-cls mobilebert-cls"
TORCH_CLS="$TORCH_CLS mobilebert-var-cls mobilebert-nobn-cls"
if [ $MODERNBERT = 1 ] && "$PY" -c "import transformers.models.modernbert" 2>/dev/null; then
  TORCH_CLS="$TORCH_CLS modernbert-cls modernbert-bias-cls"
elif [ $MODERNBERT = 1 ]; then # twins built but this transformers has no ModernBERT: a failure, not a skip
  record 1 "FAIL modernbert vs torch: this transformers has no ModernBERT (needs >= 4.48)"
fi # (without twins the set-up step already recorded the failure)
for f in $TORCH_CLS; do
  if run "torch $f" "$o/$f.log" "$PY" "$G/torch_ref.py" cls "$W/fx/$f-st" "$PAIRS" 512 "$o/$f.cls"; then
    cmp_out cls "$f logits cuda vs torch fp16" "$o/$f.cls" "$W/out/$f/cuda.cls" 0.01
  fi
done

fi
# CUDA graphs (docs/cuda.md): batches of one shape, replayed as graphs, against plain launches. Every
# line holds the same words in another order (the first fixed), so every batch of 8 has the same
# token count in any tokenizer and different ids; cuBLASLt autotuning is off in both runs (the same
# algorithms). MP_CUDA_GRAPHS=2 prints how many passes ran as graphs: at least one must have.
if want graphs; then
echo "== CUDA graphs vs plain launches"
"$PY" - "$W/same.txt" "$W/same-pairs.tsv" <<'PYEOF'
import random, sys
rest = "cat sat on a mat while the dog ran to the park and then home".split()
rng = random.Random(0)
lines = []
for _ in range(64):
    rng.shuffle(rest)
    lines.append("the " + " ".join(rest))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
open(sys.argv[2], "w").write("".join(f"{a}\t{b}\n" for a, b in zip(lines, lines[1:] + lines[:1])))
PYEOF
graph_ran() { # NAME ERRFILE: the graphs' count line of MP_CUDA_GRAPHS=2
  local n
  n="$(sed -n 's/.*: \([0-9]*\) passes replayed as graphs.*/\1/p' "$2" | head -1)"
  if [ "${n:-0}" -gt 0 ]; then
    record 0 "PASS $1: $n passes ran as CUDA graphs"
  else
    record 1 "FAIL $1: no pass ran as a CUDA graph: $(grep -m1 'CUDA graphs' "$2" || head -c 300 "$2")"
  fi
}
graph_check() { # NAME MODEL CLS(0|1)
  local name=$1 m=$2 o="$W/out/graphs-$1"
  mkdir -p "$o"
  if MP_CUDA_AUTOTUNE=0 MP_CUDA_GRAPHS=0 run "$name embed plain" "$o/plain.emb" "$B" embed --model "$m" \
    --device cuda --batch-size 8 <"$W/same.txt" &&
    MP_CUDA_AUTOTUNE=0 MP_CUDA_GRAPHS=2 run "$name embed graphs" "$o/graphs.emb" "$B" embed --model "$m" \
      --device cuda --batch-size 8 <"$W/same.txt"; then
    graph_ran "$name embed" "$o/graphs.emb.err"
    cmp_out emb "$name embeddings cuda graphs vs plain launches" "$o/plain.emb" "$o/graphs.emb" 0.999999
  fi
  [ "$3" = 1 ] || return 0
  if MP_CUDA_AUTOTUNE=0 MP_CUDA_GRAPHS=0 run "$name classify plain" "$o/plain.cls" "$B" classify --model "$m" \
    --pair --json --device cuda --batch-size 8 <"$W/same-pairs.tsv" &&
    MP_CUDA_AUTOTUNE=0 MP_CUDA_GRAPHS=2 run "$name classify graphs" "$o/graphs.cls" "$B" classify --model "$m" \
      --pair --json --device cuda --batch-size 8 <"$W/same-pairs.tsv"; then
    graph_ran "$name classify" "$o/graphs.cls.err"
    cmp_out cls "$name logits cuda graphs vs plain launches" "$o/plain.cls" "$o/graphs.cls" 1e-4
  fi
}
graph_check minilm "$MINILM" 0
graph_check mpnet-embed "$W/fx/mpnet-embed-st" 0
for f in bert-cls roberta-cls distilbert-cls deberta-wp-cls bart-cls mobilebert-cls; do
  graph_check "$f" "$W/fx/$f-st" 1
done
[ $MODERNBERT = 1 ] && graph_check modernbert-cls "$W/fx/modernbert-cls-st" 1

fi
if want errors; then
echo "== clear errors"
msg="$(echo hello | "$B" embed --model "$MINILM" --device cuda:99 2>&1 >/dev/null)"
rc=$?
if [ $rc -eq 3 ] && grep -q "cuda:99" <<<"$msg"; then
  record 0 "PASS cuda:99 (no such device): exit 3, \"$msg\""
else
  record 1 "FAIL cuda:99 (no such device): exit $rc, \"$msg\""
fi

fi
echo "== summary: $npass passed, $nfail failed ($(($(date +%s) - t0))s)"
for f in "${FAILED[@]}"; do echo "   $f"; done
[ "$nfail" -eq 0 ]
