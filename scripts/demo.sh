#!/usr/bin/env bash
# The main job on the embedded default: inspect the default model, then run the pipeline on
# config/default.yaml (MiniLM embedder and the project's NLI classifier, each converted to MLX q8
# and q4, evaluated against the originals on real data, gated) and show the summary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/mlxport"
WORKDIR="${MLXPORT_DEMO_WORKDIR:-${MP_CACHE:-$ROOT/.cache}/demo}"
MODEL="sentence-transformers/all-MiniLM-L6-v2"

echo "== mlxport inspect $MODEL"
"$BIN" inspect "$MODEL"
echo
echo "== mlxport pipeline --config config/default.yaml --workdir $WORKDIR"
set +e
"$BIN" pipeline --config "$ROOT/config/default.yaml" --workdir "$WORKDIR" "$@"
rc=$?
set -e
echo
case $rc in
  0) echo "demo: every quality gate passed (report: $WORKDIR/reports/report.html)" ;;
  1) echo "demo: finished; some quality gate failed (see the table above and $WORKDIR/reports/report.html)" ;;
  *) echo "demo: failed (exit $rc); see 'build/mlxport status --workdir $WORKDIR'"; exit $rc ;;
esac
