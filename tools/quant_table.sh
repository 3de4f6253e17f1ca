#!/usr/bin/env bash
# The size / held-out metric table of docs/convert.md ("Mixed precision and modes: measured"):
# every uniform mode and bit width and --q-auto at two budgets, for all-MiniLM-L6-v2 (STS-B dev:
# calibration = rows i % 5 == 0, held out = the other 1200 rows) and the project's NLI classifier
# (calibration: SNLI validation; held out: 2000 MNLI-matched pairs, seed 2).
#   tools/quant_table.sh OUT_DIR [SHARED_DIR]     -> OUT_DIR/table.md
set -euo pipefail
OUT=${1:?usage: tools/quant_table.sh OUT_DIR [SHARED_DIR]}
SHARED=${2:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/mlxport
CACHE=${MP_CACHE:-$ROOT/.cache}
MINILM=$(ls -d "$CACHE"/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/* | head -1)
NLI=$CACHE/models/nli-minilm-l6-snli
mkdir -p "$OUT"
# the STS-B held-out slice as a file (header + rows i % 5 != 0)
awk 'NR == 1 || (NR - 2) % 5 != 0' "$SHARED/datasets/stsb/dev.tsv" > "$OUT/stsb-heldout.tsv"
VARIANTS=("q8:-q --q-bits 8" "q6:-q --q-bits 6" "q5:-q --q-bits 5" "q4:-q --q-bits 4" "q3:-q --q-bits 3"
          "q2:-q --q-bits 2" "mxfp8:-q --q-mode mxfp8" "nvfp4:-q --q-mode nvfp4" "mxfp4:-q --q-mode mxfp4")
metric() { # model dataset-args...
  "$BIN" eval --model "$1" "${@:2}" --compute faithful --latency-requests 0 --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); c=d.get("converted", d); print(c.get("spearman", c.get("accuracy")))'
}
# each row is cached in OUT/rows/ (a rerun after an interruption redoes only the missing rows)
mkdir -p "$OUT/rows"
cached() { [ -s "$OUT/rows/$1" ] && cat "$OUT/rows/$1"; }
mb() { python3 -c "import os,sys; print('%.2f' % (sum(os.path.getsize(os.path.join(sys.argv[1], f)) for f in os.listdir(sys.argv[1]) if f.endswith('.safetensors'))/1e6))" "$1"; }
{
  echo "| model | variant | weights MB | held-out metric | command |"
  echo "|---|---|---:|---:|---|"
  for m in minilm nli; do
    if [ $m = minilm ]; then SRC=$MINILM; EV=(--dataset stsb --data-file "$OUT/stsb-heldout.tsv"); B=(0.002 0.01)
      AUTO=(--calibration stsb --calibration-samples 300 --eval-samples 1200)
    else SRC=$NLI; EV=(--dataset mnli --max-samples 2000 --seed 2); B=(0.01 0.03)
      AUTO=(--calibration snli --eval mnli --calibration-samples 256 --eval-samples 2000); fi
    cached "$m-float" || echo "| $m | float (source) | $(mb "$SRC") | $(metric "$SRC" "${EV[@]}") | - |" | tee "$OUT/rows/$m-float"
    for v in "${VARIANTS[@]}"; do
      name=${v%%:*}; args=${v#*:}
      cached "$m-$name" && continue
      "$BIN" convert --hf-path "$SRC" --mlx-path "$OUT/$m-$name" $args >/dev/null
      echo "| $m | $name | $(mb "$OUT/$m-$name") | $(metric "$OUT/$m-$name" "${EV[@]}") | \`convert $args\` |" | tee "$OUT/rows/$m-$name"
    done
    for b in "${B[@]}"; do
      cached "$m-auto-$b" && continue
      "$BIN" convert --hf-path "$SRC" --mlx-path "$OUT/$m-auto-$b" --q-auto --max-drop "$b" \
        --data-dir "$SHARED/datasets" "${AUTO[@]}" --no-skip 2> "$OUT/$m-auto-$b.log" >/dev/null
      echo "| $m | auto, --max-drop $b | $(mb "$OUT/$m-auto-$b") | $(metric "$OUT/$m-auto-$b" "${EV[@]}") | \`convert --q-auto --max-drop $b ${AUTO[*]}\` |" | tee "$OUT/rows/$m-auto-$b"
    done
  done
} > "$OUT/table.md"
cat "$OUT/table.md"
