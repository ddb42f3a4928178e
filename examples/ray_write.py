"""Writes a Ray Dataset to a Zerobus table with ZerobusDatasink, against the local Zerobus server
(no Databricks needed): a few rows carry a counter too large for the table's BIGINT column; they
come back in the quarantine directory with their error, the others land.

Usage: python3 examples/ray_write.py [ROWS]
"""
import logging
import os
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from arrow_zerobus_sdk_wrapper.ray import ZerobusDatasink
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.default.readings"


def readings(start: int, count: int) -> pa.Table:
    ids = np.arange(start, start + count, dtype=np.int64)
    # uint64 into a BIGINT column: the values above 2**63 - 1 (every 10,000th row) cannot land.
    counter = np.where(ids % 10_000 == 9_999, np.uint64(2**63) + ids.astype(np.uint64), ids.astype(np.uint64))
    return pa.table({
        "id": ids,
        "site": pa.array(["berlin", "lyon", "oslo", "porto"]).take(pa.array(ids % 4)),
        "temperature": 18.0 + (ids % 50) / 10,
        "counter": pa.array(counter, pa.uint64()),
    })


def main(rows: int) -> int:
    # The job's totals are logged at INFO on the "arrow_zerobus_sdk_wrapper" logger.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("arrow_zerobus_sdk_wrapper").setLevel(logging.INFO)
    ray.init(num_cpus=2, include_dashboard=False)
    with LocalZerobus() as zerobus, tempfile.TemporaryDirectory(prefix="quarantine-") as quarantine:
        blocks = 4
        dataset = ray.data.from_arrow([readings(i * rows // blocks, rows // blocks) for i in range(blocks)])

        sink = ZerobusDatasink(zerobus.config(TABLE), quarantine_path=quarantine)
        dataset.write_datasink(sink)

        s = sink.summary
        print(f"summary: {s['rows']} rows, {s['landed']} landed, {s['failed']} failed "
              f"({s['in_doubt']} in doubt), {s['replayed']} replayed, {s['tasks']} tasks")
        failed = pq.read_table(quarantine)  # the data's columns + _error, _row, _block, _task, _in_doubt
        print(f"quarantined rows: {failed.num_rows}")
        for row in failed.select(["id", "counter", "_error"]).to_pylist():
            print(f"  {row}")
        landed = zerobus.read_table(TABLE)
        print(f"table rows: {landed.num_rows}")
        ok = landed.num_rows == s["landed"] and failed.num_rows == s["failed"] == s["quarantined"]
    ray.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    status = main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    # deltalake (read_table) can abort during interpreter teardown after all work is done;
    # leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
