"""spark_write_iot: the `zerobus` Spark data source with 1 and 2 executor cores, against the
Python package sending the same rows in one process.

The `iot` rows (the schema of bench/python/bench_python_send.py; values computed from the id)
go into the emulator's null sink (it decodes and acknowledges every record and stores nothing)
over loopback with OAuth, with the table's Unity Catalog descriptor (the sink's default):
  spark 1 core / 2 cores   df.write.format("zerobus").save() in Spark local[1] / local[2]: the
                           rows are computed by Spark from spark.range, turned into Arrow
                           batches, and each task sends its partition through one
                           ZerobusWrapper. Timed: the whole save() (job start, Python workers,
                           sends, commit), after a warm-up write in the same session.
  spark noop               the same job into a data source whose Arrow writer only reads the
                           batches: what Spark itself costs to hand the rows to Python.
  python process           the same rows as Arrow batches of the same size (Spark's
                           spark.sql.execution.arrow.maxRecordsPerBatch, 10,000), made before
                           timing, sent by one ZerobusWrapper in this process, pipelined.
Figures are medians over the rounds. scaling = 2-core / 1-core rows/s;
ratio_vs_python_process = 2-core Spark / python process.
The machine has 2 cores, shared by Spark's JVM, its Python workers and the emulator.

Environment: AZ_SPARK_ROWS (2000000), AZ_SPARK_PARTITIONS (8), AZ_SPARK_ROUNDS (2).
Ends with one JSON line: {"name":"spark_write_iot", ...}.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import numpy as np
import pyarrow as pa

TABLE = "main.bench.iot_spark"
BATCH_ROWS = 10_000  # Spark's default spark.sql.execution.arrow.maxRecordsPerBatch
IOT = {"columns": [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "ts", "type": "timestamp", "nullable": False},
    {"name": "device_id", "type": "string"},
    {"name": "site", "type": "string"},
    {"name": "temperature", "type": "double"},
    {"name": "humidity", "type": "double"},
    {"name": "pressure", "type": "double"},
    {"name": "voltage", "type": "double"},
    {"name": "status", "type": "int"},
    {"name": "alarm", "type": "boolean"},
]}
SPARK_COLUMNS = [
    "id",
    "timestamp_micros(1700000000000000 + id * 1000) AS ts",
    "concat('device-', lpad(CAST(id % 5000 AS STRING), 5, '0')) AS device_id",
    "element_at(array('plant-a', 'plant-b', 'plant-c', 'lab'), CAST(id % 4 AS INT) + 1) AS site",
    "CAST(id % 6500 AS DOUBLE) / 100.0D - 20.0D AS temperature",
    "CAST(id % 10000 AS DOUBLE) / 100.0D AS humidity",
    "950.0D + CAST(id % 1000 AS DOUBLE) / 10.0D AS pressure",
    "3.0D + CAST(id % 600 AS DOUBLE) / 1000.0D AS voltage",
    "CAST(id % 8 AS INT) AS status",
    "id % 100 = 0 AS alarm",
]


def iot_batch(start: int, stop: int) -> pa.RecordBatch:
    """The rows SPARK_COLUMNS computes for ids start..stop-1 (same types, same values)."""
    i = np.arange(start, stop, dtype=np.int64)
    sites = np.array(["plant-a", "plant-b", "plant-c", "lab"], dtype=object)
    return pa.record_batch({
        "id": pa.array(i),
        "ts": pa.array(1_700_000_000_000_000 + i * 1000, pa.timestamp("us", tz="UTC")),
        "device_id": pa.array([f"device-{v:05d}" for v in (i % 5000).tolist()], pa.string()),
        "site": pa.array(sites[i % 4], pa.string()),
        "temperature": pa.array((i % 6500) / 100.0 - 20.0),
        "humidity": pa.array((i % 10000) / 100.0),
        "pressure": pa.array(950.0 + (i % 1000) / 10.0),
        "voltage": pa.array(3.0 + (i % 600) / 1000.0),
        "status": pa.array((i % 8).astype(np.int32)),
        "alarm": pa.array(i % 100 == 0),
    })


def spark_runs(cores: int, emu, rows: int, partitions: int, rounds: int) -> dict:
    from pyspark.sql import SparkSession
    from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage

    from arrow_zerobus_sdk_wrapper.spark import ZerobusDataSource, last_write_summary

    class _NoopWriter(DataSourceArrowWriter):
        def write(self, iterator):
            for _ in iterator:
                pass
            return WriterCommitMessage()

    class NoopSource(DataSource):
        @classmethod
        def name(cls) -> str:
            return "bench_noop"

        def writer(self, schema, overwrite):
            return _NoopWriter()

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(f"bench_spark_write local[{cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        spark.dataSource.register(ZerobusDataSource)
        spark.dataSource.register(NoopSource)

        def frame(n: int):
            return spark.range(0, n, numPartitions=partitions).selectExpr(*SPARK_COLUMNS)

        def zerobus_write(n: int) -> float:
            start = time.perf_counter()
            (frame(n).write.format("zerobus").mode("append").option("table", TABLE)
             .option("endpoint", emu.endpoint).option("client_id", emu.client_id)
             .option("client_secret", emu.client_secret)
             .option("unity_catalog_url", emu.unity_catalog_url).save())
            seconds = time.perf_counter() - start
            summary = last_write_summary()
            assert summary["landed"] == summary["rows"] == n, summary
            return n / seconds

        def noop_write(n: int) -> float:
            start = time.perf_counter()
            frame(n).write.format("bench_noop").mode("append").save()
            return n / (time.perf_counter() - start)

        zerobus_write(min(rows, 100_000))  # warm-up: JIT, Python workers, imports
        noop_write(min(rows, 100_000))
        figures = {"zerobus": [], "noop": []}
        for _ in range(rounds):
            figures["zerobus"].append(zerobus_write(rows))
            figures["noop"].append(noop_write(rows))
        return {k: statistics.median(v) for k, v in figures.items()}
    finally:
        spark.stop()


def python_process_run(emu, rows: int) -> float:
    from arrow_zerobus_sdk_wrapper import ZerobusWrapper

    batches = [iot_batch(s, min(s + BATCH_ROWS, rows)) for s in range(0, rows, BATCH_ROWS)]
    config = emu.config(TABLE, descriptor_source="unity_catalog")
    with ZerobusWrapper(config) as wrapper:
        warm = wrapper.send_batch(batches[0])
        assert warm.failed_count == 0, warm
        start = time.perf_counter()
        results = [wrapper.send_batch(b) for b in batches]
        landed = sum(r.successful_count for r in results)
        seconds = time.perf_counter() - start
    assert landed == rows, f"{rows - landed} of {rows} rows failed"
    return rows / seconds


def main() -> int:
    rows = int(os.environ.get("AZ_SPARK_ROWS", "2000000"))
    partitions = int(os.environ.get("AZ_SPARK_PARTITIONS", "8"))
    rounds = int(os.environ.get("AZ_SPARK_ROUNDS", "2"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

    with LocalZerobus(sink="null", tables={TABLE: IOT}) as emu:
        one = spark_runs(1, emu, rows, partitions, rounds)
        print(f"spark local[1]: {one['zerobus'] / 1e3:.0f} k rows/s "
              f"(noop sink {one['noop'] / 1e3:.0f} k rows/s)", flush=True)
        two = spark_runs(2, emu, rows, partitions, rounds)
        print(f"spark local[2]: {two['zerobus'] / 1e3:.0f} k rows/s "
              f"(noop sink {two['noop'] / 1e3:.0f} k rows/s)", flush=True)
        python = python_process_run(emu, rows)
        print(f"python process: {python / 1e3:.0f} k rows/s", flush=True)
    result = {
        "name": "spark_write_iot",
        "rows": rows,
        "partitions": partitions,
        "batch_rows": BATCH_ROWS,
        "rounds": rounds,
        "rows_per_s_1core": round(one["zerobus"]),
        "rows_per_s_2core": round(two["zerobus"]),
        "scaling": round(two["zerobus"] / one["zerobus"], 3),
        "python_process_rows_per_s": round(python),
        "ratio_vs_python_process": round(two["zerobus"] / python, 3),
        "spark_noop_rows_per_s_1core": round(one["noop"]),
        "spark_noop_rows_per_s_2core": round(two["noop"]),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)
