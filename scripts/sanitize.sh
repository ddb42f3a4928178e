#!/usr/bin/env bash
# The C++ suite under sanitizers (`make test-sanitize`), each tree building only what it runs:
#  1. build-asan: AddressSanitizer + UndefinedBehaviorSanitizer (Debug, -O0), every test program
#     of tests/, the whole ctest suite; leaks checked (tests/lsan.supp); the first finding
#     aborts its test, which fails.
#  2. build-tsan: ThreadSanitizer (-O1), the transport and wrapper test programs only, with
#     tests/tsan.supp, in two tiers (see below: gRPC is uninstrumented).
# Not run here: the libFuzzer targets (clang; `make fuzz-ci`), the decoder libFuzzer ctest entry
# and the install/consumer test (it builds an uninstrumented consumer against the installed
# static libraries: packaging, not memory safety).
# Environment: AZ_SANITIZE_PARTS="asan tsan" (one of them runs one part), JOBS=2.
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

# Sanitized trees: line tables only (-g1: file:line in every stack for a fraction of -g's
# compile and link time), libstdc++'s cheap precondition checks on, no benchmarks, no Python.
# ASan+UBSan at -O0: gcc compiles this code base's TUs about 45% faster than at -O1 with these
# sanitizers (UBSan's checks are costly to optimize) and the tests stay fast. TSan at -O1: its
# instrumentation is cheaper to compile, and -O0 would slow its already 5-15x slower runs.
configure() {  # dir sanitizers build-type flags
  local dir=$1 san=$2 type=$3 flags=$4
  echo "sanitize: configuring $dir (AZ_SANITIZE=$san, $type: $flags)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" \
    -DCMAKE_CXX_FLAGS_"${type^^}"="$flags" -DCMAKE_CXX_FLAGS="-D_GLIBCXX_ASSERTIONS" \
    -DAZ_SANITIZE="$san" -DAZ_BUILD_BENCH=OFF -DAZ_BUILD_PYTHON=OFF > "$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; exit 1; }
}

# The executables linked under tests/<subdirs...> (what the build.ninja says, so new test
# programs are picked up without a list here).
test_programs() {  # dir subdir-regex
  ninja -C "$1" -t targets all | sed -n "s#^\(tests/$2/[^:]*\): CXX_EXECUTABLE_LINKER.*#\1#p" \
    | grep -v '\.cmake$' | sort -u
}

build() {  # dir programs...
  local dir=$1
  shift
  echo "sanitize: building $# programs in $dir"
  cmake --build "$dir" -j "$JOBS" -- "$@"
}

# The ThreadSanitizer tests that meet no gRPC stream (fixtures of the transport and wrapper
# test programs): OAuth token source and refresh, framing, the stream's state machine, wrapper
# configuration and its writer-disabled send path, retry policy, JSON rows, type text, Arrow
# Flight framing.
TSAN_STRICT_TESTS='^(AuthTest|FramingTest|Offsets/FramingTest|StreamMachineTest|StreamOptionsTest|Sha256Test|WrapperMakeTest|AllOptions/WrapperConfigErrorTest|WrapperWriterDisabledTest|TypeTextTest|JsonRowsTest|RetryPolicyTest|FlightWire)\.'

seconds() { date +%s; }
declare -A took
failed=()

if [[ " $PARTS " == *" asan "* ]]; then
  t0=$(seconds)
  configure build-asan "address,undefined" Debug "-O0 -g1"
  mapfile -t programs < <(test_programs build-asan '.*')
  build build-asan "${programs[@]}"
  t1=$(seconds)
  echo "sanitize: ASan+UBSan ctest"
  # halt_on_error: the first finding ends the process (non-zero exit: the test fails).
  ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}" \
  LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}" \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE install -E '_libfuzzer$' \
    || failed+=("ASan+UBSan tests")
  t2=$(seconds)
  took[asan_build]=$((t1 - t0))
  took[asan_test]=$((t2 - t1))
fi

if [[ " $PARTS " == *" tsan "* ]]; then
  t0=$(seconds)
  configure build-tsan thread RelWithDebInfo "-O1 -g1"
  mapfile -t programs < <(test_programs build-tsan '\(transport\|wrapper\)')
  build build-tsan "${programs[@]}"
  t1=$(seconds)
  base="second_deadlock_stack=1:history_size=4:suppressions=$ROOT/tests/tsan.supp${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}"
  status=0

  # Tier 1, strict: the tests that open no gRPC stream (TSAN_STRICT_TESTS; one starts and stops
  # the emulator for its token endpoint). The first report fails the test.
  echo "sanitize: ThreadSanitizer, strict tier: $TSAN_STRICT_TESTS"
  for d in transport wrapper; do
    TSAN_OPTIONS="halt_on_error=1:$base" \
      ctest --test-dir "build-tsan/tests/$d" --output-on-failure -j "$JOBS" -R "$TSAN_STRICT_TESTS" || status=1
  done

  # Tier 2, triaged: every other transport/wrapper test drives gRPC streams against the
  # in-process emulator. gRPC is uninstrumented: the order it gives between its threads and ours
  # is invisible to TSan, so these tests yield thousands of reports at every gRPC hand-over
  # (reactor callbacks, completion tags, buffers), which no suppression can tell apart from a
  # race in our callbacks without hiding those too. So they run to the end (halt_on_error=0),
  # reports go to files, and only reports whose racing accesses involve no gRPC/absl/protobuf/
  # Arrow/OpenSSL code at all fail the job: races between this project's own threads (stream
  # workers, the wrapper's retry timer, stream-pool leases, send futures, callers) on its own
  # memory. The others are counted. Test assertions are not judged here (TSan slows the
  # timing-based tests down 5-15x); the ASan tree runs the same tests for correctness.
  logdir="$ROOT/build-tsan/tsan-reports"
  rm -rf "$logdir" && mkdir -p "$logdir"
  echo "sanitize: ThreadSanitizer, triaged tier: the other transport/wrapper tests (gRPC streams)"
  for d in transport wrapper; do
    TSAN_OPTIONS="halt_on_error=0:exitcode=0:log_path=$logdir/report:$base" \
      ctest --test-dir "build-tsan/tests/$d" -j "$JOBS" -E "$TSAN_STRICT_TESTS" --output-on-failure \
      > "$logdir/ctest-$d.log" 2>&1 || true
    grep -E "tests passed|\*\*\*(Failed|Timeout|Exception)" "$logdir/ctest-$d.log" || true
  done
  python3 - "$logdir" <<'PY' || status=1
import os, re, sys
# Which racing accesses are judged: a report is left unjudged when either racing access has
# gRPC/absl/protobuf/OpenSSL/c-ares code anywhere on its stack (a shared library, or gRPC/absl/
# protobuf header code compiled into our programs), or is made by Arrow itself (a libarrow
# frame on top, below the sanitizer's own interceptor frames and the standard library's inline
# frames). Arrow lower in the stack (our code called back from an Arrow future) does not exempt
# a report.
RUNTIME = re.compile(r"(^|/)(libtsan|libstdc\+\+|libc|libm|libgcc_s|ld-linux[^/]*)\.so")
LIB_FUNC = ("grpc::", "grpc_", "absl::", "google::protobuf::")
def module(frame):
    m = re.search(r"\(([^()\s]*\.so[^()+\s]*)\+0x[0-9a-f]+\)\s*$", frame)
    return m.group(1) if m else None
STD_FUNC = ("std::", "__gnu_cxx::")
def function(frame):
    return re.sub(r"^\s*#\d+\s+(0x[0-9a-f]+ in )?", "", frame)
def library(frame, top):
    mod = module(frame)
    if mod and not RUNTIME.search(mod):
        return top or "libarrow" not in mod
    return function(frame).startswith(LIB_FUNC)
counts = {"library": 0, "inconclusive": 0, "project": 0}
project = []
for name in sorted(os.listdir(sys.argv[1])):
    if not name.startswith("report."):
        continue
    text = open(os.path.join(sys.argv[1], name), errors="replace").read()
    for block in re.findall(r"WARNING: ThreadSanitizer:.*?SUMMARY: ThreadSanitizer:[^\n]*", text, re.S):
        sections = re.split(r"\n  (?=\S)", block)
        if "data race" in sections[0]:
            accesses = [s for s in sections[1:] if re.match(r"(Read|Write|Atomic|Previous)", s)]
        else:  # lock-order inversions, bad unlocks, leaked threads...: every stack but thread creation
            accesses = [s for s in sections[1:] if not s.startswith(("Thread T", "Location is"))]
        involved = False
        for s in accesses:
            frames = [l for l in s.splitlines() if re.match(r"\s*#\d+ ", l)]
            frames = [f for f in frames if "libtsan.so" not in (module(f) or "")]
            # The standard library's inline frames on top (a shared_ptr's control block freeing
            # itself) belong to whoever called them: when that caller is Arrow (a Status copy in
            # libarrow releasing the last reference to a detail), the reference count that
            # orders the free was decremented in uninstrumented code.
            top = 0
            while top < len(frames) - 1 and function(frames[top]).startswith(STD_FUNC):
                top += 1
            involved |= any(library(f, i <= top) for i, f in enumerate(frames))
        if involved:
            counts["library"] += 1
        elif any("failed to restore the stack" in s for s in accesses) or not accesses:
            counts["inconclusive"] += 1
        else:
            counts["project"] += 1
            project.append(block)
print("sanitize: TSan reports in the gRPC-stream tests: %(library)d involve gRPC/absl/protobuf/"
      "OpenSSL/Arrow code (not judged), %(inconclusive)d inconclusive (a stack TSan could not "
      "restore), %(project)d between this project's own threads only (each fails the job)" % counts)
for block in project:
    print(block + "\n")
sys.exit(1 if project else 0)
PY
  t2=$(seconds)
  took[tsan_build]=$((t1 - t0))
  took[tsan_test]=$((t2 - t1))
  [ "$status" = 0 ] || failed+=("ThreadSanitizer")
fi

for k in "${!took[@]}"; do echo "sanitize: $k ${took[$k]}s"; done | sort
if ((${#failed[@]})); then
  echo "sanitize: FAILED: ${failed[*]}" >&2
  exit 1
fi
