#!/usr/bin/env bash
# Per-file line coverage of the C++ sources (gcovr on an instrumented build). Python coverage
# (pytest-cov) joins once the project has Python code of its own.
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
