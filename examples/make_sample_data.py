"""Writes sample IoT readings (flat columns plus nested ones) as a Parquet file; a few rows
carry a counter too large for the table, to show per-row failures.

Usage: python3 examples/make_sample_data.py OUT.parquet [ROWS]
"""
import sys
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq


def sample_table(rows: int) -> pa.Table:
    sites = ["berlin", "lyon", "oslo", "porto"]
    start = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() * 1_000_000)
    ids = list(range(rows))
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "ts": pa.array([start + i * 250_000 for i in ids], pa.timestamp("us", tz="UTC")),
            "device_id": pa.array([f"dev-{i % 97:05d}" for i in ids], pa.string()),
            "site": pa.array([sites[i % len(sites)] for i in ids]).dictionary_encode(),
            "temperature": pa.array(
                [None if i % 20 == 7 else 18.0 + (i % 50) / 10 for i in ids], pa.float64()
            ),
            "status": pa.array([i % 3 for i in ids], pa.int32()),
            "alarm": pa.array([i % 50 == 0 for i in ids], pa.bool_()),
            # uint64 lands in a BIGINT column: the few values above INT64_MAX make their rows
            # fail (and be reported), the rest go.
            "counter": pa.array(
                [2**63 + i if i % 40_000 == 39_999 else i * 3 for i in ids], pa.uint64()
            ),
            "price": pa.array([f"{i % 1000}.{i % 100:02d}" for i in ids]).cast(pa.decimal128(8, 2)),
            "tags": pa.array(
                [[("fw", "1.2"), ("rack", str(i % 8))] for i in ids],
                pa.map_(pa.string(), pa.string()),
            ),
            "readings": pa.array(
                [[{"sensor": "t1", "value": float(i % 7)}, {"sensor": "h1", "value": 0.5}] for i in ids],
                pa.list_(pa.struct([("sensor", pa.string()), ("value", pa.float64())])),
            ),
        }
    )
    schema = table.schema
    for name in ("id", "ts"):
        i = schema.get_field_index(name)
        schema = schema.set(i, schema.field(i).with_nullable(False))
    return table.cast(schema)


if __name__ == "__main__":
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    pq.write_table(sample_table(rows), out)
    print(f"wrote {rows} rows to {out}")
