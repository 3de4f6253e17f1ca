#!/usr/bin/env bash
# The one rule for mlxport's third-party test data (model configs and tokenizers, real dev sets;
# none of it is in the repository). The test data folder is, in this order:
#   1. $MLXPORT_TEST_DATA (must then be a test data folder: an error otherwise, no fall-through);
#   2. ../shared beside the checkout;
#   3. $MP_CACHE/test-data, fetched from the Hugging Face Hub by `fetch` with mlxport's own hub
#      client, file by file as tests/data/manifest.tsv lists them (repo, revision, sha256).
# A test data folder holds models/ and datasets/ (the layout of ../shared).
#
#   scripts/test-data.sh locate     print the folder; exit 1 when there is none
#   scripts/test-data.sh precheck   exit 0 when a folder is found or can be fetched (online); else
#                                   say what is missing and the three ways to provide it, exit 1
#   scripts/test-data.sh ensure     locate, else fetch (needs build/mlxport); print the folder
#   scripts/test-data.sh fetch      fetch into $MP_CACHE/test-data (replacing it whole)
#   scripts/test-data.sh publish DIR
#                                   upload the manifest's mirror-repo files from DIR (a test data
#                                   folder) with `mlxport upload` (maintainers; needs HF_TOKEN)
#
# Environment: MLXPORT_TEST_DATA, MP_CACHE (default <checkout>/.cache), MP_BIN (default
# <checkout>/build/mlxport), HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE, HF_TOKEN (see docs/hub.md).
# docs/testing.md describes the rule.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MP_CACHE:-$ROOT/.cache}"
BIN="${MP_BIN:-$ROOT/build/mlxport}"
MANIFEST="$ROOT/tests/data/manifest.tsv"
FETCHED="$CACHE/test-data"
ENDPOINT="${HF_ENDPOINT:-https://huggingface.co}"

say() { printf 'test-data: %s\n' "$*" >&2; }

is_data_dir() { [ -d "$1/models" ] && [ -d "$1/datasets" ]; }

how_to() {
  cat >&2 <<EOF
test-data: no third-party test data (model configs and tokenizers, real dev sets) was found.
  The tests need it; they never pass having tested nothing. Provide it in one of three ways:
    1. set MLXPORT_TEST_DATA to a folder laid out as models/ and datasets/ (a copy of the data);
    2. put that folder at $(cd "$ROOT/.." && pwd)/shared, beside the checkout;
    3. be online: \`make test\` then fetches it from the Hugging Face Hub ($ENDPOINT) into
       $FETCHED, as tests/data/manifest.tsv lists it (unset HF_HUB_OFFLINE).
  See docs/testing.md.
EOF
}

locate() {
  if [ -n "${MLXPORT_TEST_DATA:-}" ]; then
    if is_data_dir "$MLXPORT_TEST_DATA"; then
      (cd "$MLXPORT_TEST_DATA" && pwd)
      return 0
    fi
    say "MLXPORT_TEST_DATA=$MLXPORT_TEST_DATA is not a test data folder (it needs models/ and datasets/): fix or unset it"
    exit 2
  fi
  if is_data_dir "$ROOT/../shared"; then
    (cd "$ROOT/../shared" && pwd)
    return 0
  fi
  if is_data_dir "$FETCHED" && [ -f "$FETCHED/.complete" ]; then
    echo "$FETCHED"
    return 0
  fi
  return 1
}

online() {
  [ "${HF_HUB_OFFLINE:-0}" = "1" ] && return 1
  command -v curl >/dev/null || return 0 # cannot tell: let the fetch say
  curl -s -o /dev/null --max-time 10 -I "$ENDPOINT/api/models/${MP_TEST_DATA_PROBE:-sentence-transformers/all-MiniLM-L6-v2}"
}

fetch() {
  [ -x "$BIN" ] || { say "$BIN is not built: run make build first"; exit 1; }
  if [ "${HF_HUB_OFFLINE:-0}" = "1" ]; then
    say "HF_HUB_OFFLINE=1: cannot fetch"
    how_to
    exit 1
  fi
  local tmp="$FETCHED.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local n=0 groups
  groups="$(awk -F'\t' '!/^#/ && NF>=6 {print $2 "\t" $3 "\t" $4}' "$MANIFEST" | sort -u)"
  while IFS=$'\t' read -r type repo rev; do
    [ -n "$repo" ] || continue
    local paths=()
    mapfile -t paths < <(awk -F'\t' -v t="$type" -v r="$repo" -v v="$rev" '!/^#/ && $2==t && $3==r && $4==v {print $5}' "$MANIFEST")
    say "fetching ${#paths[@]} file(s) from $type repo $repo@$rev"
    local out
    if ! out="$("$BIN" download --quiet --repo-type "$type" --revision "$rev" "$repo" "${paths[@]}")"; then
      say "could not fetch $repo@$rev from $ENDPOINT (see the error above)"
      rm -rf "$tmp"
      exit 1
    fi
    while IFS=$'\t' read -r local_path path want; do
      local src="$out/$path"
      [ "${#paths[@]}" -eq 1 ] && src="$out"
      if [ ! -f "$src" ]; then
        say "$repo@$rev: $path missing from the download ($src)"
        rm -rf "$tmp"
        exit 1
      fi
      local got
      got="$(sha256sum "$src" | cut -c1-64)"
      if [ "$want" != "-" ] && [ "$got" != "$want" ]; then
        say "$repo@$rev: $path has sha256 $got, the manifest pins $want: refusing it (tests/data/manifest.tsv)"
        rm -rf "$tmp"
        exit 1
      fi
      mkdir -p "$(dirname "$tmp/$local_path")"
      cp "$src" "$tmp/$local_path.tmp" && mv "$tmp/$local_path.tmp" "$tmp/$local_path"
      n=$((n + 1))
    done < <(awk -F'\t' -v t="$type" -v r="$repo" -v v="$rev" '!/^#/ && $2==t && $3==r && $4==v {print $1 "\t" $5 "\t" $6}' "$MANIFEST")
  done <<<"$groups"
  sync -f "$tmp" 2>/dev/null || sync
  touch "$tmp/.complete"
  rm -rf "$FETCHED.old"
  [ -e "$FETCHED" ] && mv "$FETCHED" "$FETCHED.old"
  mv "$tmp" "$FETCHED"
  rm -rf "$FETCHED.old"
  say "fetched $n file(s) into $FETCHED"
  echo "$FETCHED"
}

publish() {
  local src="${1:?usage: scripts/test-data.sh publish DIR}"
  is_data_dir "$src" || { say "$src is not a test data folder"; exit 1; }
  [ -x "$BIN" ] || { say "$BIN is not built: run make build first"; exit 1; }
  STAGE="$(mktemp -d)"
  trap 'rm -rf "$STAGE"' EXIT
  local p want
  while IFS=$'\t' read -r p want; do
    if [ "$(sha256sum "$src/$p" | cut -c1-64)" != "$want" ]; then
      say "$src/$p differs from the sha256 tests/data/manifest.tsv pins: not publishing"
      exit 1
    fi
    mkdir -p "$(dirname "$STAGE/$p")" && cp "$src/$p" "$STAGE/$p"
  done < <(awk -F'\t' '!/^#/ && NF>=6 && $2=="dataset" && $3=="mlxport/test-data" {print $5 "\t" $6}' "$MANIFEST")
  "$BIN" upload "$STAGE" mlxport/test-data --repo-type dataset --quiet \
    --commit-message "mlxport test data (tests/data/manifest.tsv)"
}

case "${1:-locate}" in
  locate) locate ;;
  precheck)
    if locate >/dev/null; then exit 0; fi
    if online; then say "no local test data: it will be fetched from $ENDPOINT after the build"; exit 0; fi
    how_to
    exit 1
    ;;
  ensure)
    if locate; then exit 0; fi
    fetch
    ;;
  fetch) fetch ;;
  publish) shift; publish "$@" ;;
  *) say "unknown command ${1}: locate, precheck, ensure, fetch or publish"; exit 2 ;;
esac
