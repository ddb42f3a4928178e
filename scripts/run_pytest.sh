#!/usr/bin/env bash
# Runs the Python test suite; the C++ build must exist (tests start the built emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! ls python/tests/test_*.py >/dev/null 2>&1; then
  echo "pytest: no Python tests yet"
  exit 0
fi
$PYTHON -m pytest -q python/tests "$@"
