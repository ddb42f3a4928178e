"""Quarantine: rows that cannot be sent go to a Parquet file with their error; the rest land.

Smart meters report a uint64 energy counter; the table column is BIGINT. A meter that lost its
reading reports 0xFFFFFFFFFFFFFFFF, which is above INT64_MAX, so those rows cannot be
converted (docs/type-mapping.md). The send reports exactly those rows; they are written to a
quarantine Parquet file with their row index and error text, and the rest of the batch lands.
Later the quarantined rows are read back, fixed (the sentinel becomes NULL) and sent again.
Runs against LocalZerobus: no network, no Databricks.

Usage: python3 examples/python_quarantine.py [QUARANTINE_DIR]
"""
import os
import sys
import tempfile
import traceback
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arrow_zerobus_sdk_wrapper import TransmissionResult, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.energy.meter_readings"
ROWS = 2000
NO_READING = 2**64 - 1  # what a meter sends when it has no value
INT64_MAX = 2**63 - 1

DECLARATION = {
    "columns": [
        {"name": "reading_id", "type": "bigint", "nullable": False},
        {"name": "meter", "type": "string", "nullable": False},
        {"name": "energy_wh", "type": "bigint"},
    ]
}
SCHEMA = pa.schema(
    [
        pa.field("reading_id", pa.int64(), nullable=False),
        pa.field("meter", pa.string(), nullable=False),
        pa.field("energy_wh", pa.uint64()),
    ]
)


def meter_readings(rows: int) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(range(rows), pa.int64()),
            pa.array([f"meter-{i % 25:03d}" for i in range(rows)]),
            pa.array([NO_READING if i % 250 == 17 else 1_000 * i for i in range(rows)], pa.uint64()),
        ],
        schema=SCHEMA,
    )


def quarantine(batch: pa.RecordBatch, result: TransmissionResult, directory: Path) -> Path:
    """Writes the failed rows of `batch` with their row index, error and in-doubt flag."""
    failed = result.extract_failed_batch(batch)  # the failed rows, in index order
    indices = result.get_failed_row_indices()  # same order
    in_doubt = set(result.in_doubt_rows)  # may be in the table already: re-sending may duplicate
    failed = (
        failed.append_column("_row_index", pa.array(indices, pa.int64()))
        .append_column("_error", pa.array(result.get_error_messages(), pa.string()))
        .append_column("_in_doubt", pa.array([i in in_doubt for i in indices], pa.bool_()))
    )
    path = directory / f"{TABLE}.quarantine.parquet"
    pq.write_table(pa.Table.from_batches([failed]), path)
    return path


def fix(rows: pa.Table) -> pa.Table:
    """The repair: a missing reading is NULL, not a huge number. Drops the quarantine columns."""
    energy = rows.column("energy_wh")
    fixed = pc.if_else(pc.greater(energy, pa.scalar(INT64_MAX, pa.uint64())), pa.scalar(None, pa.uint64()), energy)
    rows = rows.set_column(rows.schema.get_field_index("energy_wh"), "energy_wh", fixed)
    return rows.select(SCHEMA.names).cast(SCHEMA)


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        raise SystemExit(1)


def run(directory: Path) -> int:
    batch = meter_readings(ROWS)
    bad = [i for i in range(ROWS) if i % 250 == 17]
    with LocalZerobus(tables={TABLE: DECLARATION}, strict=True) as zerobus:
        with ZerobusWrapper(zerobus.config(TABLE)) as wrapper:
            result = wrapper.send_batch(batch)
            print(f"first send: {result.successful_count} of {result.total_rows} rows delivered, "
                  f"{result.failed_count} failed, partial success: {result.is_partial_success()}")
            print(f"errors by type: {result.group_errors_by_type()}")
            for index, message in (result.failed_rows or [])[:2]:
                print(f"  row {index}: {message}")

            check(result.get_failed_row_indices() == bad, f"exactly rows {bad} fail")
            check(result.successful_count == ROWS - len(bad), "the other rows are delivered")
            check(not result.in_doubt_rows, "no row in doubt (conversion failures never reach the wire)")

            path = quarantine(batch, result, directory)
            print(f"quarantined {result.failed_count} rows to {path}")

            # ... later, maybe in another process: read the quarantine, fix, send again.
            held = pq.read_table(path)
            check(held.num_rows == len(bad), "the quarantine file holds the failed rows")
            check(held.column("_row_index").to_pylist() == bad, "with their row indices")
            check(all("out of range for int64" in e for e in held.column("_error").to_pylist()),
                  "and their error text")
            print(f"quarantine file: {held.num_rows} rows, columns {held.column_names}")

            fixed = fix(held)
            retry = wrapper.send_batch(fixed)
            print(f"re-send after the fix: {retry.successful_count} of {retry.total_rows} rows "
                  f"delivered, {retry.failed_count} failed")
            check(retry.failed_count == 0 and retry.successful_count == len(bad), "the fix works")

        landed = zerobus.read_table(TABLE).sort_by("reading_id")
        nulls = landed.filter(pc.is_null(landed.column("energy_wh")))
        print(f"read back {landed.num_rows} rows from {TABLE}; "
              f"{nulls.num_rows} with energy_wh NULL (the repaired rows)")

    check(landed.num_rows == ROWS, f"{ROWS} rows in the table, found {landed.num_rows}")
    check(landed.column("reading_id").to_pylist() == list(range(ROWS)), "every reading exactly once")
    check(nulls.column("reading_id").to_pylist() == bad, "the repaired rows have NULL energy")
    print("OK")
    return 0


def main() -> int:
    if len(sys.argv) > 1:
        directory = Path(sys.argv[1])
        directory.mkdir(parents=True, exist_ok=True)
        return run(directory)
    with tempfile.TemporaryDirectory(prefix="quarantine-") as directory:
        return run(Path(directory))


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
