#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time each (`make fuzz-ci`), one after the other:
#   decoder    the emulator's record decoders (tests/emulator/store/fuzz/)
#   encoder    RecordBatchEncoder on random schemas/arrays, records parsed by libprotobuf
#   json_rows  the emulator's JSON rows decoder on arbitrary bytes
# Seeds come from tests/fuzz/corpus/<name>/ (read-only); what a run adds goes to
# $BUILD/fuzz/corpus/<name>/ (kept between local runs), crashes to $BUILD/fuzz/artifacts/<name>/.
# Reproduce a crash: ARROW_DEFAULT_MEMORY_POOL=system <fuzzer> <crash-file>
# Usage: scripts/fuzz.sh [build-dir]   (the tree must be configured: `make configure`)
# Environment: AZ_FUZZ_SECONDS (per target, default 60), AZ_FUZZ_TARGETS (default all three),
# AZ_FUZZ_SEED (default: libFuzzer picks one and prints it), JOBS (build parallelism, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${AZ_FUZZ_SECONDS:-60}
JOBS=${JOBS:-2}
WANT=${AZ_FUZZ_TARGETS:-decoder encoder json_rows}

# name|executable|seed corpus|extra libFuzzer flags
TARGETS=(
  "decoder|$BUILD/tests/emulator/store/emulator_decoder_fuzzer|tests/fuzz/corpus/decoder|"
  "encoder|$BUILD/tests/fuzz/encoder_fuzzer|tests/fuzz/corpus/encoder|"
  "json_rows|$BUILD/tests/fuzz/json_rows_fuzzer|tests/fuzz/corpus/json_rows|-dict=tests/fuzz/json_rows.dict"
)

# grep without -q: it reads the whole list, so ninja never writes into a closed pipe (SIGPIPE
# would fail the pipeline under pipefail although the target is there).
if ! ninja -C "$BUILD" -t targets all 2>/dev/null | grep '^az_fuzzers:' > /dev/null; then
  echo "fuzz: $BUILD has no az_fuzzers target (needs clang++-14 and the pyarrow Arrow; run scripts/setup.sh, then configure)" >&2
  exit 1
fi
echo "fuzz: building the fuzzers in $BUILD"
t0=$(date +%s)
cmake --build "$BUILD" -j "$JOBS" --target az_fuzzers
echo "fuzz: built in $(( $(date +%s) - t0 ))s"

SYMBOLIZER=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || echo /usr/lib/llvm-14/bin/llvm-symbolizer)
# Arrow buffers through malloc, where ASan sees them (not Arrow's own jemalloc/mimalloc pool).
export ARROW_DEFAULT_MEMORY_POOL=system
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}:external_symbolizer_path=$SYMBOLIZER"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:external_symbolizer_path=$SYMBOLIZER"

failed=()
summary=()
for entry in "${TARGETS[@]}"; do
  IFS='|' read -r name exe seeds extra <<< "$entry"
  [[ " $WANT " == *" $name "* ]] || continue
  work="$BUILD/fuzz/corpus/$name"
  artifacts="$BUILD/fuzz/artifacts/$name"
  log="$BUILD/fuzz/$name.log"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz: $name for ${SECS}s ($exe)"
  start=$(date +%s)
  status=0
  # -timeout: one input taking longer is a finding (a hang); -rss_limit_mb bounds memory.
  # shellcheck disable=SC2086
  "$exe" -max_total_time="$SECS" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" ${AZ_FUZZ_SEED:+-seed=$AZ_FUZZ_SEED} $extra \
    "$work" "$seeds" > "$log" 2>&1 || status=$?
  took=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  seed=$(sed -n 's/.*Seed: \([0-9]*\).*/\1/p' "$log" | head -1)
  summary+=("$name: ${took}s, ${runs:-?} inputs, coverage ${cov:-?} edges, corpus $(ls "$work" | wc -l) files, seed ${seed:-?}, exit $status")
  if [ "$status" != 0 ]; then
    failed+=("$name")
    echo "fuzz: $name FAILED (exit $status); the end of $log:" >&2
    tail -n 80 "$log" >&2
    ls -1 "$artifacts" >&2 || true
  fi
done

echo "== fuzz summary"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: findings in: ${failed[*]} (inputs under $BUILD/fuzz/artifacts/)" >&2
  exit 1
fi
