"""Quick start: send a pyarrow Table into a Zerobus table and read the table back.

Runs against LocalZerobus, the local Zerobus server shipped with the package: no network, no
Databricks. Against a real workspace only the configuration changes (see docs/python.md).

Usage: python3 examples/python_quickstart.py
"""
import os
import sys
import traceback
from datetime import datetime, timezone

import pyarrow as pa

from arrow_zerobus_sdk_wrapper import ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.iot.readings"
ROWS = 1000

# The Delta table as Unity Catalog would hold it. With strict=True the server refuses streams
# to tables it does not know, as a real workspace does.
DECLARATION = {
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "ts", "type": "timestamp", "nullable": False},
        {"name": "site", "type": "string"},
        {"name": "temperature", "type": "double"},
    ]
}

# NOT NULL columns need non-nullable Arrow fields (they become `required` protobuf fields).
SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("site", pa.string()),
        pa.field("temperature", pa.float64()),
    ]
)


def make_readings(rows: int) -> pa.Table:
    start = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
    sites = ["berlin", "lyon", "oslo", "porto"]
    return pa.table(
        {
            "id": list(range(rows)),
            "ts": [start + i * 1_000_000 for i in range(rows)],
            "site": [sites[i % len(sites)] for i in range(rows)],
            "temperature": [None if i % 10 == 3 else 18.0 + (i % 50) / 10 for i in range(rows)],
        },
        schema=SCHEMA,
    )


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        raise SystemExit(1)


def main() -> int:
    readings = make_readings(ROWS)
    with LocalZerobus(tables={TABLE: DECLARATION}, strict=True) as zerobus:
        # A ready configuration: endpoint, OAuth client and Unity Catalog URL of the local server.
        config = zerobus.config(TABLE)
        with ZerobusWrapper(config) as wrapper:
            # Returns at once with the rows in flight; reading any field waits for the outcome.
            result = wrapper.send_batch(readings)
            print(f"sent {result.total_rows} rows: {result.successful_count} successful, "
                  f"{result.failed_count} failed")
            print(result)
        # Leaving the `with` block shut the wrapper down (flushed, streams closed).

        landed = zerobus.read_table(TABLE).sort_by("id")
        print(f"read back {landed.num_rows} rows from {TABLE}")
        for row in landed.slice(0, 3).to_pylist():
            print("  ", row)

    check(result.failed_count == 0, f"no row should fail, got {result.failed_rows}")
    check(result.successful_count == ROWS, f"{ROWS} rows successful")
    check(landed.num_rows == ROWS, f"{ROWS} rows in the table, found {landed.num_rows}")
    check(landed.column("id").to_pylist() == list(range(ROWS)), "every id exactly once")
    check(landed.column("temperature").null_count == ROWS // 10, "nulls kept as NULL")
    check(landed.schema.field("ts").type == pa.timestamp("us", tz="UTC"), "ts is a TIMESTAMP")
    print("OK")
    return 0


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        status = 1
    # Reading the table loads deltalake, which (1.6.6 with pyarrow 26) can abort during
    # interpreter teardown after all work is done; leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
