"""Polars and DuckDB: send a polars DataFrame and a DuckDB relation as they are.

Both speak the Arrow PyCapsule interface, so `send_batch` takes them directly: no conversion
to pyarrow, no copy. Polars and DuckDB mark every column nullable; with
`descriptor_source="unity_catalog"` the wrapper writes into the table's own schema (fetched
from the Unity Catalog endpoint), so NOT NULL columns are checked row by row instead of the
stream being refused. Runs against LocalZerobus: no network, no Databricks.

Usage: python3 examples/python_polars_duckdb.py
"""
import os
import sys
import traceback
from datetime import datetime, timedelta, timezone

import duckdb
import polars as pl

from arrow_zerobus_sdk_wrapper import ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.mobility.trips"
POLARS_ROWS = 5000
DUCKDB_ROWS = 20000

DECLARATION = {
    "columns": [
        {"name": "trip_id", "type": "bigint", "nullable": False},
        {"name": "source", "type": "string", "nullable": False},
        {"name": "started_at", "type": "timestamp"},
        {"name": "city", "type": "string"},
        {"name": "distance_km", "type": "double"},
        {"name": "fare", "type": "decimal(10,2)"},
    ]
}


def polars_trips() -> pl.DataFrame:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    cities = ["lisbon", "porto", "faro"]
    return pl.DataFrame(
        {
            "trip_id": list(range(POLARS_ROWS)),
            "source": ["polars"] * POLARS_ROWS,
            "started_at": [start + timedelta(minutes=i) for i in range(POLARS_ROWS)],
            "city": [cities[i % 3] for i in range(POLARS_ROWS)],
            "distance_km": [round(0.5 + (i % 40) * 0.25, 2) for i in range(POLARS_ROWS)],
        }
    ).with_columns(
        (pl.col("distance_km") * 1.8 + 3).round(2).cast(pl.Decimal(10, 2)).alias("fare"),
        pl.col("started_at").dt.replace_time_zone("UTC"),
    )


def duckdb_trips() -> duckdb.DuckDBPyRelation:
    # A lazy relation: the query runs while the wrapper reads its Arrow stream.
    return duckdb.sql(
        f"""
        SELECT {POLARS_ROWS} + range                                   AS trip_id,
               'duckdb'                                                AS source,
               TIMESTAMPTZ '2026-11-02 00:00:00+00' + to_seconds(range * 30) AS started_at,
               ['lisbon', 'porto', 'faro'][1 + range % 3]              AS city,
               (0.5 + (range % 40) * 0.25)::DOUBLE                     AS distance_km,
               (3 + (0.5 + (range % 40) * 0.25) * 1.8)::DECIMAL(10, 2) AS fare
        FROM range({DUCKDB_ROWS})
        """
    )


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        raise SystemExit(1)


def main() -> int:
    frame = polars_trips()
    relation = duckdb_trips()
    with LocalZerobus(tables={TABLE: DECLARATION}, strict=True) as zerobus:
        config = zerobus.config(TABLE, descriptor_source="unity_catalog")
        with ZerobusWrapper(config) as wrapper:
            from_polars = wrapper.send_batch(frame)  # the DataFrame itself
            from_duckdb = wrapper.send_batch(relation)  # the relation itself
            for name, result in (("polars DataFrame", from_polars), ("DuckDB relation", from_duckdb)):
                print(f"{name}: {result.successful_count} of {result.total_rows} rows delivered, "
                      f"{result.failed_count} failed")
                check(result.failed_count == 0, f"{name}: no failed rows ({result.error})")
            check(from_polars.total_rows == POLARS_ROWS, "every polars row reported")
            check(from_duckdb.total_rows == DUCKDB_ROWS, "every DuckDB row reported")

        landed = zerobus.read_table(TABLE)
        print(f"read back {landed.num_rows} rows from {TABLE}")
        print(f"table schema: {', '.join(f'{f.name} {f.type}' for f in landed.schema)}")

        # What landed, queried with DuckDB straight from the Arrow table.
        summary = duckdb.sql(
            "SELECT source, count(*) AS trips, count(DISTINCT trip_id) AS ids, "
            "min(started_at) AS first, sum(fare) AS fares "
            "FROM landed GROUP BY source ORDER BY source"
        )
        print(summary)
        rows = {source: (trips, ids) for source, trips, ids, _, _ in summary.fetchall()}

        # The same query over the inputs, for the comparison below.
        expected_fares = duckdb.sql(
            "SELECT sum(fare) FROM (SELECT fare FROM frame UNION ALL SELECT fare FROM relation)"
        ).fetchall()[0][0]
        landed_fares = duckdb.sql("SELECT sum(fare) FROM landed").fetchall()[0][0]

    check(landed.num_rows == POLARS_ROWS + DUCKDB_ROWS, "every row in the table")
    check(rows == {"duckdb": (DUCKDB_ROWS, DUCKDB_ROWS), "polars": (POLARS_ROWS, POLARS_ROWS)},
          f"each source's rows exactly once, got {rows}")
    check(landed_fares == expected_fares, f"fares add up: {landed_fares} vs {expected_fares}")
    check(str(landed.schema.field("started_at").type) == "timestamp[us, tz=UTC]",
          "started_at is a TIMESTAMP")
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
