#!/usr/bin/env bash
# The pipeline's GPU scheduling on a real GPU (docs/cuda.md "Pipeline"), run on the GPU machine
# with what tests/gpu/prepare.sh staged (plus bin/test_pipeline_gpu copied there from build-cuda):
#   - test_pipeline_gpu: mp_device_memory answers on a real device;
#   - a pipeline of all-MiniLM-L6-v2 on cuda:0 (3 evaluations) beside the same model on the CPU
#     (-j 4): with a budget that holds one GPU evaluation, no two GPU evaluations overlap (from the
#     start/end events) while CPU jobs run; with a large budget they do overlap; with no budget the
#     default (0.9 x the device's memory) is used and the evaluations succeed (the query must not
#     initialize CUDA in the pipeline's own process);
#   - each GPU evaluation's estimate against its measured device_peak_mb.
# Not yet run on a GPU (written with the scheduler; on a machine without a GPU, parts 1-3 fail at
# the CUDA open as expected and part 4 passes).
#   bash tests/gpu/pipeline_sched.sh [CARRY_DIR=gpu-carry]
set -uo pipefail
CARRY="$(cd "${1:-gpu-carry}" && pwd)"
B="$CARRY/bin/mlxport"
export LD_LIBRARY_PATH="$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HF_HUB_OFFLINE=1
W="$(mktemp -d /tmp/mlxport-plgpu.XXXXXX)"
nfail=0
say() { echo "$*"; case "$1" in FAIL*) nfail=$((nfail + 1)) ;; esac; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | sed 's/^/== GPU: /'
if [ ! -x "$CARRY/bin/test_pipeline_gpu" ]; then
  echo "== (no bin/test_pipeline_gpu in the carry: cp build-cuda/test_pipeline_gpu $CARRY/bin/ to run it)"
elif "$CARRY/bin/test_pipeline_gpu" >"$W/unit.txt" 2>&1; then say "PASS test_pipeline_gpu ($(tail -1 "$W/unit.txt"))"; else
  say "FAIL test_pipeline_gpu: $(tail -5 "$W/unit.txt" | tr '\n' ' ')"; fi

M="$W/minilm"
cp -r "$CARRY/minilm" "$M"
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
  "$M/model.safetensors.xz" "$M/model.safetensors" && rm -f "$M/model.safetensors.xz"
# a small similarity set (pairs with a score), three dataset keys that differ in max_samples
python3 - "$W/sts.jsonl" <<'EOF'
import json, random, sys
random.seed(1)
words = "a man woman dog cat plays eats runs guitar food park ball music car drives sings".split()
with open(sys.argv[1], "w") as f:
    for i in range(400):
        a = " ".join(random.choice(words) for _ in range(8))
        b = " ".join(random.choice(words) for _ in range(8))
        f.write(json.dumps({"sentence1": a, "sentence2": b, "score": random.random() * 5}) + "\n")
EOF
cfg() { # FILE GPU_LINE
  cat >"$1" <<EOF
$2
models:
  - name: mini-gpu
    hf_name: $M
    device: cuda:0
    quantization: {bits: 8, group_size: 64, max_accuracy_drop: 1, min_speedup: 0}
    benchmarks: [s1, s2, s3]
  - name: mini-cpu
    hf_name: $M
    quantization: {bits: 4, group_size: 64, max_accuracy_drop: 1, min_speedup: 0}
    benchmarks: [s1, s2]
datasets:
  s1: {path: $W/sts.jsonl, task: semantic-similarity, text_fields: [sentence1, sentence2], score_field: score, max_samples: 400, preprocessing: {max_length: 64}}
  s2: {path: $W/sts.jsonl, task: semantic-similarity, text_fields: [sentence1, sentence2], score_field: score, max_samples: 399, preprocessing: {max_length: 64}}
  s3: {path: $W/sts.jsonl, task: semantic-similarity, text_fields: [sentence1, sentence2], score_field: score, max_samples: 398, preprocessing: {max_length: 64}}
EOF
}
# max number of GPU evaluations running at once, from the start / end lines of a run's stderr
overlap() {
  python3 - "$1" <<'EOF'
import re, sys
run, best, cpu_beside = set(), 0, 0
cpu = set()
for l in open(sys.argv[1]):
    m = re.match(r"start\s+(\S+)", l)
    e = re.match(r"\[\d+/\d+\]\s+\S+(?: failed)?\s+(\S+)", l)
    if m:
        j = m.group(1)
        (run if j.startswith("eval-mini-gpu") else cpu).add(j)
        if run and cpu: cpu_beside = 1
        best = max(best, len(run))
    elif e:
        run.discard(e.group(1)); cpu.discard(e.group(1))
print(best, cpu_beside)
EOF
}

# 1. a budget that holds one GPU evaluation: serialized, CPU jobs beside
cfg "$W/one.yaml" "gpu_memory_mb: 1000"
"$B" pipeline --config "$W/one.yaml" --workdir "$W/wd1" -j 4 --latency-requests 5 >"$W/one.out" 2>"$W/one.err"
rc=$?
grep -E "GPU cuda|on cuda" "$W/one.err" | head -4
read -r most beside < <(overlap "$W/one.err")
if [ $rc -le 1 ] && [ "$most" = 1 ]; then say "PASS budget 1000 MB: GPU evaluations one at a time (most at once: $most, CPU job beside a GPU one: $beside)"; else
  say "FAIL budget 1000 MB: rc $rc, most GPU evaluations at once: $most; $(tail -5 "$W/one.err" | tr '\n' ' ')"; fi
"$B" status --workdir "$W/wd1" | grep eval-
python3 - "$W/wd1" <<'EOF'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/jobs/eval-mini-gpu*.json")):
    j = json.load(open(f))
    r = json.load(open(f.replace("/jobs/", "/results/")))["evaluation"]
    peaks = [r[k].get("device_peak_mb", 0) for k in ("baseline", "converted") if k in r]
    print(f"== estimate {j['est_gpu_mb']} MB vs measured device_peak_mb {peaks} ({r['converted'].get('device', '?')})")
EOF

# 2. a large budget: they run together
cfg "$W/big.yaml" "gpu_memory_mb: 100000"
"$B" pipeline --config "$W/big.yaml" --workdir "$W/wd2" -j 4 --latency-requests 5 >"$W/big.out" 2>"$W/big.err"
rc=$?
read -r most beside < <(overlap "$W/big.err")
if [ $rc -le 1 ] && [ "$most" -ge 2 ]; then say "PASS budget 100000 MB: $most GPU evaluations at once"; else
  say "FAIL budget 100000 MB: rc $rc, most at once $most; $(tail -5 "$W/big.err" | tr '\n' ' ')"; fi

# 3. no budget configured: 0.9 x the device's memory, and the GPU jobs still work
cfg "$W/none.yaml" ""
"$B" pipeline --config "$W/none.yaml" --workdir "$W/wd3" -j 4 --latency-requests 5 >"$W/none.out" 2>"$W/none.err"
rc=$?
bud="$(grep -o "GPU cuda:0: memory budget [0-9]* MB (0.9 x the device's memory)" "$W/none.err" | head -1)"
nf="$("$B" status --workdir "$W/wd3" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['failed'])")"
if [ $rc -le 1 ] && [ -n "$bud" ] && [ "$nf" = 0 ]; then say "PASS default budget: $bud, no job failed"; else
  say "FAIL default budget: rc $rc, '$bud', failed $nf; $(tail -5 "$W/none.err" | tr '\n' ' ')"; fi

# 4. too large for the budget: fails with the reason, the CPU evaluations finish
cfg "$W/tiny.yaml" "gpu_memory_mb: 100"
"$B" pipeline --config "$W/tiny.yaml" --workdir "$W/wd4" -j 4 --latency-requests 5 >"$W/tiny.out" 2>"$W/tiny.err"
r="$("$B" status --workdir "$W/wd4" | grep -c "needs about [0-9]* MB of GPU memory on cuda:0, the budget is 100 MB (gpu_memory_mb)")"
d="$("$B" status --workdir "$W/wd4" | grep -c "done .*eval-mini-cpu")"
if [ "$r" = 3 ] && [ "$d" = 2 ]; then say "PASS budget 100 MB: 3 GPU evaluations refused with the reason, 2 CPU ones done"; else
  say "FAIL budget 100 MB: refused $r, CPU done $d"; "$B" status --workdir "$W/wd4"; fi

echo "== $nfail failure(s)"
[ $nfail = 0 ]
