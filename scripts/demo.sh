#!/usr/bin/env bash
# The main job on sample data: write sample IoT readings as Parquet, show the descriptor and the
# Delta table they map to, start the local Zerobus emulator (OAuth on, strict tables), send every
# row through it, and read back what landed in the Delta table.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PYTHON=${PYTHON:-python3}
CLI="$BUILD/cli/zerobus-arrow"
work=$(mktemp -d /tmp/zerobus-demo.XXXXXX)
emulator_pid=""
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
TABLE=main.iot.readings

echo "== 1. sample data: 200,000 IoT readings as Parquet"
$PYTHON examples/make_sample_data.py "$work/readings.parquet" 200000

echo
echo "== 2. the descriptor the rows are sent with, and the table they land in"
"$CLI" describe "$work/readings.parquet" --message-name Reading --table "$TABLE" \
  --declaration-out "$work/readings.table.json"

echo
echo "== 3. a local Zerobus server: OAuth service principal, table declared up front"
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$BUILD/zerobus-emulator" --data-dir "$work/data" --client "demo-client:$secret" --strict \
  --table "$TABLE=$work/readings.table.json" > "$work/emulator.log" 2>&1 &
emulator_pid=$!
for _ in $(seq 100); do grep -q listening "$work/emulator.log" && break; sleep 0.1; done
head -1 "$work/emulator.log"
grpc=$(grep -o 'grpc=[^ ]*' "$work/emulator.log" | head -1 | cut -d= -f2)
http=$(grep -o 'http=[^ ]*' "$work/emulator.log" | head -1 | cut -d= -f2)

echo
echo "== 4. send every row (rows that cannot be converted are reported, the rest land)"
status=0
ZEROBUS_CLIENT_SECRET="$secret" "$CLI" send "$work/readings.parquet" --table "$TABLE" \
  --endpoint "http://$grpc" --unity-catalog-url "http://$http" --client-id demo-client || status=$?
# Exit code 3 means "some rows failed", which this sample data is made to show.
[ "$status" = 0 ] || [ "$status" = 3 ] || exit "$status"

echo
echo "== 5. what landed in the Delta table (read with deltalake and DuckDB)"
$PYTHON examples/show_table.py "$work/data/main/iot/readings"
