#!/usr/bin/env bash
# Runs every benchmark program and collects each one's JSON lines into bench-results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
out=bench-results.jsonl
: > "$out"
shopt -s nullglob
for prog in "$BUILD"/bench/*/bench_*; do
  [ -x "$prog" ] || continue
  echo "== $prog"
  log=$(mktemp)
  "$prog" | tee "$log"
  grep -E '^\{.*"name"' "$log" >> "$out" || { echo "bench: $prog printed no JSON line" >&2; exit 1; }
  rm -f "$log"
done
echo "== results in $out"
cat "$out"
