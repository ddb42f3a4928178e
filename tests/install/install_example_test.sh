#!/usr/bin/env bash
# Driven by ctest (tests/install/CMakeLists.txt), which passes the AZ_* variables below.
# 1. cmake --install the build tree (COMPONENT dev) into a temporary prefix and check its files;
# 2. configure and build examples/cpp against it (find_package(ArrowZerobus), only that prefix);
# 3. start the built emulator (OAuth on) and run the example: exit code 0 and every row landed,
#    in the output and in the Delta table; with a wrong secret the example must fail.
set -euo pipefail

: "${AZ_CMAKE:?}" "${AZ_SOURCE_DIR:?}" "${AZ_BUILD_DIR:?}" "${AZ_EMULATOR:?}" "${AZ_GENERATOR:?}"
: "${AZ_CXX_COMPILER:?}"
AZ_MAKE_PROGRAM=${AZ_MAKE_PROGRAM:-}
AZ_PYTHON3=${AZ_PYTHON3:-}

# The example reads its configuration from the environment too: start from a clean one.
for v in $(compgen -e); do
  case "$v" in ZEROBUS_* | UNITY_CATALOG_URL | DEBUG_* | RETRY_* | OTLP_* | OTEL_*) unset "$v" ;; esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/az-install-test.XXXXXX")
prefix="$work/prefix"
emulator_pid=""
cleanup() {
  local status=$?
  if [ -n "$emulator_pid" ]; then
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    for f in "$work"/*.log; do
      [ -f "$f" ] || continue
      echo "----- $(basename "$f") (last 60 lines)"
      tail -n 60 "$f"
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

# ---- 1. install -----------------------------------------------------------------------------
step "install $AZ_BUILD_DIR (component dev) into $prefix"
"$AZ_CMAKE" --install "$AZ_BUILD_DIR" --prefix "$prefix" --component dev > "$work/install.log" 2>&1 ||
  fail "cmake --install failed"

config=$(find "$prefix" -path '*/cmake/ArrowZerobus/ArrowZerobusConfig.cmake')
[ -n "$config" ] || fail "no ArrowZerobusConfig.cmake under $prefix"
cmakedir=$(dirname "$config")
libdir=$(dirname "$(dirname "$cmakedir")")
[ "$libdir" = "$prefix/lib" ] || fail "package config not in $prefix/lib/cmake/ArrowZerobus: $cmakedir"
for f in ArrowZerobusConfigVersion.cmake ArrowZerobusTargets.cmake ArrowFromPython.cmake; do
  [ -f "$cmakedir/$f" ] || fail "not installed: $cmakedir/$f"
done
for f in libarrow_zerobus.a libaz_proto.a; do
  [ -s "$libdir/$f" ] || fail "not installed: $libdir/$f"
done
nheaders=0
for h in "$AZ_SOURCE_DIR"/include/arrow_zerobus/*.h; do
  cmp -s "$h" "$prefix/include/arrow_zerobus/$(basename "$h")" ||
    fail "header not installed (or differs): include/arrow_zerobus/$(basename "$h")"
  nheaders=$((nheaders + 1))
done
# The package must not point back into the source or build tree.
if grep -rlF "$AZ_SOURCE_DIR/" "$cmakedir" > "$work/leaks.txt"; then
  fail "installed CMake files refer to $AZ_SOURCE_DIR: $(tr '\n' ' ' < "$work/leaks.txt")"
fi
echo "installed: $nheaders headers, libarrow_zerobus.a, libaz_proto.a, package files in $cmakedir"

# ---- 2. configure and build the example against the prefix ----------------------------------
step "configure and build examples/cpp with CMAKE_PREFIX_PATH=$prefix"
example_build="$work/example-build"
args=(-S "$AZ_SOURCE_DIR/examples/cpp" -B "$example_build" -G "$AZ_GENERATOR"
  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$prefix" "-DCMAKE_CXX_COMPILER=$AZ_CXX_COMPILER"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
[ -z "$AZ_MAKE_PROGRAM" ] || args+=("-DCMAKE_MAKE_PROGRAM=$AZ_MAKE_PROGRAM")
[ -z "$AZ_PYTHON3" ] || args+=("-DPython3_EXECUTABLE=$AZ_PYTHON3")
"$AZ_CMAKE" "${args[@]}" > "$work/example-configure.log" 2>&1 ||
  fail "configuring examples/cpp against the installed package failed"
found_dir=$(sed -n 's/^ArrowZerobus_DIR:PATH=//p' "$example_build/CMakeCache.txt")
[ "$found_dir" = "$cmakedir" ] || fail "find_package(ArrowZerobus) used '$found_dir', not $cmakedir"
"$AZ_CMAKE" --build "$example_build" > "$work/example-build.log" 2>&1 ||
  fail "building examples/cpp failed"
example="$example_build/send_example"
[ -x "$example" ] || fail "no $example"
echo "built $example"

# ---- 3. run it against the emulator ----------------------------------------------------------
step "start the emulator"
client_id=install-test
secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
"$AZ_EMULATOR" --data-dir "$work/data" --grpc-port 0 --http-port 0 \
  --client "$client_id:$secret" --quiet > "$work/emulator-stdout.log" 2> "$work/emulator.log" &
emulator_pid=$!
line=""
for _ in $(seq 300); do
  line=$(grep -m1 '^zerobus-emulator listening ' "$work/emulator-stdout.log" || true)
  [ -z "$line" ] || break
  kill -0 "$emulator_pid" 2>/dev/null || fail "the emulator exited before listening"
  sleep 0.1
done
[ -n "$line" ] || fail "the emulator printed no 'listening' line within 30 s"
echo "$line"
grpc=$(sed -n 's/.* grpc=\([^ ]*\).*/\1/p' <<< "$line")
http=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<< "$line")
[[ "$grpc" =~ :[0-9]+$ && "$http" =~ :[0-9]+$ ]] || fail "cannot parse the listening line: $line"

rows=1000
table=main.install_test.readings
run_example() {  # run_example SECRET LOG: the example's exit code in $status
  status=0
  ZEROBUS_CLIENT_SECRET="$1" timeout 120 "$example" --endpoint "http://$grpc" --table "$table" \
    --unity-catalog-url "http://$http" --client-id "$client_id" --rows "$rows" > "$2" 2>&1 ||
    status=$?
  cat "$2"
}

step "send $rows rows"
run_example "$secret" "$work/example-run.log"
[ "$status" -eq 0 ] || fail "send_example exited with $status (expected 0)"
grep -qx "total_rows=$rows successful=$rows failed=0" "$work/example-run.log" ||
  fail "send_example did not report total_rows=$rows successful=$rows failed=0"
grep -q '^TransmissionResult(success=true' "$work/example-run.log" ||
  fail "send_example did not print a successful TransmissionResult"

# Acks come after the rows are committed: they are in the Delta table now.
log_dir="$work/data/main/install_test/readings/_delta_log"
[ -d "$log_dir" ] || fail "no Delta table at $log_dir"
landed=$(cat "$log_dir"/*.json | grep -oE 'numRecords[^0-9]*[0-9]+' | grep -oE '[0-9]+$' |
  awk '{ s += $1 } END { print s + 0 }')
[ "$landed" -eq "$rows" ] || fail "the Delta table holds $landed rows, expected $rows"
echo "the Delta table holds $landed rows"

step "a wrong secret must fail"
run_example "not-the-secret" "$work/example-wrong-secret.log"
[ "$status" -eq 1 ] || fail "send_example with a wrong secret exited with $status (expected 1)"
grep -qx "total_rows=$rows successful=0 failed=$rows" "$work/example-wrong-secret.log" ||
  fail "send_example with a wrong secret did not report every row failed"

kill "$emulator_pid"
emulator_status=0
wait "$emulator_pid" || emulator_status=$?
emulator_pid=""
[ "$emulator_status" -eq 0 ] || fail "the emulator exited with $emulator_status on SIGTERM"
echo "PASS"
