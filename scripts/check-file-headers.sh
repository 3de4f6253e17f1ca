#!/bin/sh
# Every C/CUDA source and header opens with a comment saying what it is for (docs/architecture.md,
# Conventions). Lists each file whose first line is not a comment and fails; run by CTest as
# lint/file_headers. Usage: scripts/check-file-headers.sh [SOURCE_DIR]
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
dirs="src include tests fuzz tools bench examples python"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked files plus new ones not yet committed (not the ignored build outputs)
  files=$(git ls-files --cached --others --exclude-standard -- $dirs | grep -E '\.(c|h|cu|cuh)$')
else
  files=$(find $dirs -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null)
fi
n=0 bad=0
for f in $files; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  case $(head -n 1 "$f") in
  '/*'* | '//'*) ;;
  *)
    echo "$f: the first line is not a comment saying what the file is for"
    bad=$((bad + 1))
    ;;
  esac
done
if [ "$n" -eq 0 ]; then
  echo "no C sources found under $root"
  exit 1
fi
if [ "$bad" -gt 0 ]; then
  echo "$bad of $n files lack a header comment"
  exit 1
fi
echo "all $n C/CUDA files open with a header comment"
