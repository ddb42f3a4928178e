"""transport="arrow_flight" from Python, end to end against the local Zerobus server: batches are
cast to the table's Flight types, rows whose values do not fit come back failed with their
reason, the rest land; the configuration rules of the option."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import ConfigurationError, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.default.flight_rows"
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "name", "type": "string"},
    {"name": "level", "type": "tinyint"},
    {"name": "price", "type": "decimal(5,2)"},
    {"name": "at", "type": "timestamp"},
    {"name": "tags", "type": "array<string>"},
]


def _batch(n: int) -> pa.RecordBatch:
    """Types that all need a cast: utf8 (large_utf8 on the wire), dictionary strings, int16 into
    TINYINT, decimal128(6,3) into DECIMAL(5,2), nanosecond timestamps; row 3 overflows TINYINT
    and row 5 has a third decimal digit."""
    names = pa.array([f"row-{i}" for i in range(n)]).dictionary_encode()
    return pa.record_batch({
        "id": pa.array(range(n), pa.int64()),
        "name": names,
        "level": pa.array([300 if i == 3 else i for i in range(n)], pa.int16()),
        "price": pa.array([decimal.Decimal("1.255") if i == 5 else decimal.Decimal(i) / 4
                           for i in range(n)], pa.decimal128(6, 3)),
        "at": pa.array([1_700_000_000_000_000_123 + i for i in range(n)],
                       pa.timestamp("ns", tz="UTC")),
        "tags": pa.array([["a"] * (i % 3) for i in range(n)], pa.list_(pa.utf8())),
    })


@pytest.mark.parametrize("compression", ["none", "lz4_frame", "zstd"])
def test_arrow_flight_sends_the_rows_that_fit_and_reports_the_others(compression):
    with LocalZerobus(tables={TABLE: {"columns": COLUMNS}}, strict=True) as zb:
        config = zb.config(TABLE, transport="arrow_flight", ipc_compression=compression,
                           descriptor_source="unity_catalog", retry_max_attempts=1)
        with ZerobusWrapper(config) as wrapper:
            result = wrapper.send_batch(_batch(8))
            assert result.total_rows == 8
            assert result.successful_count + result.failed_count == result.total_rows
            assert result.get_failed_row_indices() == [3, 5]
            messages = dict(result.failed_rows)
            assert "level" in messages[3] and "value 300 overflows TINYINT" in messages[3]
            assert "price" in messages[5]
            assert "decimal 1.255 does not fit DECIMAL(5,2)" in messages[5]
            assert result.get_successful_row_indices() == [0, 1, 2, 4, 6, 7]
            wrapper.flush()
        table = zb.read_table(TABLE).sort_by("id")
        assert table["id"].to_pylist() == [0, 1, 2, 4, 6, 7]
        assert table["level"].to_pylist() == [0, 1, 2, 4, 6, 7]
        assert table["price"].to_pylist() == [decimal.Decimal(i) / 4 for i in (0, 1, 2, 4, 6, 7)]
        assert table["name"].to_pylist() == [f"row-{i}" for i in (0, 1, 2, 4, 6, 7)]
        # Nanoseconds floor to microseconds (as on the protobuf path).
        assert [t.value for t in table["at"]] == [1_700_000_000_000_000] * 6
        assert table["tags"].to_pylist() == [["a"] * (i % 3) for i in (0, 1, 2, 4, 6, 7)]
        streams = zb.stats()["streams"]
        assert streams and {s["record_type"] for s in streams} == {"arrow"}


def test_arrow_flight_from_the_batch_schema_lands_every_row():
    with LocalZerobus() as zb:
        config = zb.config(TABLE, transport="arrow_flight")
        batch = pa.record_batch({"id": pa.array(range(1000), pa.int64()),
                                 "label": pa.array([f"l{i}" for i in range(1000)])})
        with ZerobusWrapper(config) as wrapper:
            results = [wrapper.send_batch(batch.slice(i, 250)) for i in range(0, 1000, 250)]
            assert [r.successful_count for r in results] == [250] * 4
            assert all(r.failed_count == 0 for r in results)
        table = zb.read_table(TABLE).sort_by("id")
        assert table["id"].to_pylist() == list(range(1000))
        assert table["label"].to_pylist() == [f"l{i}" for i in range(1000)]
        assert {s["record_type"] for s in zb.stats()["streams"]} == {"arrow"}


@pytest.mark.parametrize("options,detail", [
    (dict(transport="arrow_flight", record_type="json"),
     "transport 'arrow_flight' conflicts with record_type 'json'"),
    (dict(ipc_compression="zstd"),
     "ipc_compression 'zstd' needs transport 'arrow_flight' (transport is 'protobuf')"),
])
def test_wrapper_refuses_conflicting_transport_options(options, detail):
    with LocalZerobus() as zb:
        with pytest.raises(ConfigurationError) as excinfo:
            ZerobusWrapper(zb.config(TABLE, **options))
        assert detail in str(excinfo.value)
