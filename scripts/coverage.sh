#!/usr/bin/env bash
# Per-file line coverage of the C++ sources (gcovr on an instrumented build), then of the Python
# package's own layer (pytest-cov over the Python suite, against the installed package that
# `make coverage` builds from build/ first).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build-coverage
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAZ_COVERAGE=ON -DAZ_BUILD_BENCH=OFF > /dev/null
cmake --build "$BUILD" -j 2
find "$BUILD" -name '*.gcda' -delete
ctest --test-dir "$BUILD" -j 2 --output-on-failure || true
mkdir -p coverage
gcovr -r . --object-directory "$BUILD" --gcov-ignore-parse-errors --filter 'src/' --filter 'emulator/' --filter 'include/' \
  --txt coverage/cpp.txt --html-details coverage/cpp.html
cat coverage/cpp.txt

echo
echo "== Python layer (pytest-cov)"
python3 -m pytest -q python/tests --cov=arrow_zerobus_sdk_wrapper --cov-report=term-missing \
  --cov-report=html:coverage/python.html | tee coverage/python.txt
