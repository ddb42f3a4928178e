#!/usr/bin/env bash
# The C++ suite under sanitizers (`make test-sanitize`), each tree building only what it runs:
#  1. build-asan: AddressSanitizer + UndefinedBehaviorSanitizer, every test program of tests/,
#     the whole ctest suite (leak checking on; any finding fails its test).
#  2. build-tsan: ThreadSanitizer, the transport and wrapper test programs only (the code with
#     its own threads: stream I/O, retry timer, leases, send futures), with tests/tsan.supp.
# Not run here: the libFuzzer targets (clang, `make fuzz-ci`) and the install/consumer test
# (it builds an uninstrumented consumer against the installed libraries; packaging, not memory).
# Environment: AZ_SANITIZE_PARTS="asan tsan" (a subset runs one part), JOBS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
PARTS=${AZ_SANITIZE_PARTS:-asan tsan}

# Stacks with file:line: the sanitizer runtimes look for llvm-symbolizer (clang-14's, from setup).
SYMBOLIZER=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || echo /usr/lib/llvm-14/bin/llvm-symbolizer)
[ -x "$SYMBOLIZER" ] || SYMBOLIZER=""
# Arrow (the pyarrow wheel) allocates from its own jemalloc/mimalloc pool by default, which the
# sanitizers cannot see into: send Arrow buffers through malloc so ASan checks their bounds and
# TSan sees their reuse.
export ARROW_DEFAULT_MEMORY_POOL=system

# Sanitized trees: -O1 with line tables (-g1: file:line in every stack, a fraction of -g's
# compile and link time), libstdc++'s cheap precondition checks on, no benchmarks, no Python.
configure() {  # dir sanitizers
  local dir=$1 san=$2
  echo "sanitize: configuring $dir (AZ_SANITIZE=$san)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_CXX_FLAGS="-D_GLIBCXX_ASSERTIONS" \
    -DAZ_SANITIZE="$san" -DAZ_BUILD_BENCH=OFF -DAZ_BUILD_PYTHON=OFF > "$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; exit 1; }
}

# The executables linked under tests/<subdirs...> (what the build.ninja says, so new test
# programs are picked up without a list here).
test_programs() {  # dir subdir-regex
  ninja -C "$1" -t targets all | sed -n "s#^\(tests/$2/[^:]*\): CXX_EXECUTABLE_LINKER.*#\1#p" | sort -u
}

build() {  # dir programs...
  local dir=$1
  shift
  echo "sanitize: building $# programs in $dir"
  cmake --build "$dir" -j "$JOBS" -- "$@"
}

seconds() { date +%s; }
declare -A took

if [[ " $PARTS " == *" asan "* ]]; then
  t0=$(seconds)
  configure build-asan "address,undefined"
  mapfile -t programs < <(test_programs build-asan '.*')
  build build-asan "${programs[@]}"
  t1=$(seconds)
  echo "sanitize: ASan+UBSan ctest"
  # halt_on_error: the first finding ends the process (non-zero exit: the test fails).
  ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}" \
  LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}" \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE install -E '_libfuzzer$'
  t2=$(seconds)
  took[asan_build]=$((t1 - t0))
  took[asan_test]=$((t2 - t1))
fi

if [[ " $PARTS " == *" tsan "* ]]; then
  t0=$(seconds)
  configure build-tsan thread
  mapfile -t programs < <(test_programs build-tsan '\(transport\|wrapper\)')
  build build-tsan "${programs[@]}"
  t1=$(seconds)
  echo "sanitize: ThreadSanitizer ctest (transport, wrapper)"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}"
  status=0
  for d in transport wrapper; do
    ctest --test-dir "build-tsan/tests/$d" --output-on-failure -j "$JOBS" || status=1
  done
  t2=$(seconds)
  took[tsan_build]=$((t1 - t0))
  took[tsan_test]=$((t2 - t1))
  [ "$status" = 0 ] || { echo "sanitize: ThreadSanitizer tests failed" >&2; exit 1; }
fi

for k in "${!took[@]}"; do echo "sanitize: $k ${took[$k]}s"; done | sort
