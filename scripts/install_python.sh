#!/usr/bin/env bash
# Builds and installs the Python package (arrow-zerobus-sdk-wrapper) from this checkout, reusing
# the C++ build tree given as $1 (default build/) so the library is not compiled twice.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PYTHON=${PYTHON:-python3}
# One build at a time in a tree (parallel callers wait).
mkdir -p "$BUILD"
exec 9>"$BUILD/.install-python.lock"
flock 9
echo "python: installing arrow-zerobus-sdk-wrapper (build tree $BUILD)"
# No build isolation: the build links the pyarrow that is installed (scripts/setup.sh), the same
# one the C++ build uses. Tests and benchmarks stay on in the shared tree.
$PYTHON -m pip install -q --disable-pip-version-check --root-user-action=ignore \
  --no-build-isolation --no-deps \
  -Cbuild-dir="$BUILD" \
  -Ccmake.define.AZ_BUILD_TESTS=ON -Ccmake.define.AZ_BUILD_BENCH=ON \
  .
