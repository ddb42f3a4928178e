"""Spark -> Zerobus: a DataFrame written with the `zerobus` data source, bad rows quarantined.

Sensor readings are made in Spark (8 partitions); a few carry a status code that does not fit
the table's INT column. Every Spark task sends its partition through one ZerobusWrapper; the
job's commit adds up the tasks' exact accounting. The rows that cannot be converted go to a
quarantine directory (Parquet) with their error, the rest land. Runs against LocalZerobus, a
local Zerobus server: no network, no Databricks. Needs pyspark and a Java runtime.

Usage: python3 examples/spark_write.py [ROWS]
"""
import os
import sys
import tempfile
import traceback

import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from arrow_zerobus_sdk_wrapper.spark import ZerobusDataSource, last_write_summary
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.sensors.readings"
DECLARATION = {
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "ts", "type": "timestamp", "nullable": False},
        {"name": "device_id", "type": "string"},
        {"name": "temperature", "type": "double"},
        {"name": "status", "type": "int"},
    ]
}


def readings(spark, rows: int):
    """Readings with ids 0..rows-1; every 10,000th has a status above INT's range."""
    return spark.range(0, rows, numPartitions=8).selectExpr(
        "id",
        "timestamp_micros(1700000000000000 + id * 1000) AS ts",
        "concat('device-', CAST(id % 500 AS STRING)) AS device_id",
        "20.0D + CAST(id % 150 AS DOUBLE) / 10.0D AS temperature",
        "CASE WHEN id % 10000 = 42 THEN 4000000000 + id ELSE id % 8 END AS status",
    )


def main(rows: int) -> int:
    # Spark's Python workers run this interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="zerobus-quarantine-") as quarantine, \
            LocalZerobus(tables={TABLE: DECLARATION}) as zerobus:
        spark = (
            SparkSession.builder.master("local[2]")
            .appName("spark_write example")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("WARN")
        try:
            spark.dataSource.register(ZerobusDataSource)
            (
                readings(spark, rows)
                .write.format("zerobus")
                .mode("append")
                .option("table", TABLE)
                .option("endpoint", zerobus.endpoint)
                .option("unity_catalog_url", zerobus.unity_catalog_url)
                .option("client_id", zerobus.client_id)
                # A real job takes it from a secret store (or ZEROBUS_CLIENT_SECRET); Spark
                # redacts it, and the package never prints it.
                .option("client_secret", zerobus.client_secret)
                .option("quarantine_path", quarantine)
                .save()
            )
            summary = last_write_summary()
        finally:
            spark.stop()
        print(
            f"wrote {summary['rows']} rows to {TABLE} in {summary['tasks']} tasks: "
            f"{summary['landed']} landed, {summary['failed']} failed "
            f"({summary['error_types']}), {summary['replayed']} replayed, "
            f"{summary['task_retries']} task retries"
        )
        print(f"first error: {summary['errors'][0] if summary['errors'] else None}")

        bad = pq.read_table(quarantine)
        print(f"quarantine {quarantine}: {bad.num_rows} rows in {len(summary['quarantine_files'])} files")
        for row in bad.sort_by("id").select(["id", "status", "_error"]).to_pylist()[:3]:
            print(f"  id={row['id']} status={row['status']}: {row['_error'][:90]}")

        table = zerobus.read_table(TABLE)  # waits for nothing: the write flushed every row
        print(f"the table holds {table.num_rows} rows")
        expected_bad = sorted(i for i in range(rows) if i % 10000 == 42)
        ok = (
            summary["status"] == "committed"
            and summary["rows"] == rows
            and summary["failed"] == len(expected_bad)
            and summary["landed"] == rows - len(expected_bad) == table.num_rows
            and sorted(bad.column("id").to_pylist()) == expected_bad
        )
    print("example OK" if ok else "example FAILED: the counts do not match")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        status = main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
    except Exception:
        traceback.print_exc()
        status = 1
    # deltalake 1.6.6 with pyarrow 26 can abort during interpreter teardown after all work is
    # done ("terminate called without an active exception"); leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
