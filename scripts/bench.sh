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
# Python benchmarks (the installed package; `make bench` installs it first).
PYTHON=${PYTHON:-python3}
for script in bench/python/bench_*.py; do
  echo "== $script"
  log=$(mktemp)
  AZ_BUILD_DIR="$BUILD" $PYTHON "$script" | tee "$log"
  grep -E '^\{.*"name"' "$log" >> "$out" || { echo "bench: $script printed no JSON line" >&2; exit 1; }
  rm -f "$log"
done
echo "== results in $out"
cat "$out"
