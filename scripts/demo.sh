#!/usr/bin/env bash
# The main job on sample data: write sample IoT readings as Parquet, show the protobuf descriptor
# the rows are sent with, and encode them.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PYTHON=${PYTHON:-python3}
work=$(mktemp -d /tmp/zerobus-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== 1. sample data"
$PYTHON examples/make_sample_data.py "$work/readings.parquet" 200000

echo
echo "== 2. the descriptor Zerobus receives for these rows"
"$BUILD/cli/zerobus-arrow" describe "$work/readings.parquet" --message-name Reading

echo
echo "== 3. encoding every row to protobuf (columnar, from the Arrow buffers)"
"$BUILD/cli/zerobus-arrow" encode "$work/readings.parquet" --repeat 5
