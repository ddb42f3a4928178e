"""End-to-end: ZerobusWrapper.send_batch with transport="arrow_flight" against the packaged local
Zerobus server's DoPut. Rows are read back from the Delta tables and compared value by value.
"""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import ConfigurationError, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

from test_pkg_send import ALL_TYPES_DECLARATION, FAST, all_types_batch, check_accounting, rows_by_id

FLIGHT = dict(FAST, transport="arrow_flight")


def arrow_streams(emu: LocalZerobus, table: str) -> list:
    return [s for s in emu.stats()["streams"] if s["table"] == table and s["record_type"] == "arrow"]


def test_every_type_lands_over_arrow_flight():
    name = "main.default.flight_all_types"
    batch = all_types_batch()
    with LocalZerobus(tables={name: ALL_TYPES_DECLARATION}, strict=True) as emu:
        with ZerobusWrapper(emu.config(name, ipc_compression="zstd", **FLIGHT)) as wrapper:
            result = wrapper.send_batch(batch)
            check_accounting(result)
            assert result.successful_rows == [0, 1, 2, 3, 4, 5], result.error
            assert result.in_doubt_rows == []
        streams = arrow_streams(emu, name)
        table = emu.read_table(name)
    assert len(streams) == 1
    assert table.num_rows == 6
    assert rows_by_id(table) == batch.to_pylist()


def test_unity_catalog_schema_rows_that_do_not_fit_fail_alone():
    name = "main.default.flight_uc"
    declaration = {"columns": [{"name": "id", "type": "bigint", "nullable": False},
                               {"name": "level", "type": "tinyint"},
                               {"name": "price", "type": "decimal(5,2)"}]}
    batch = pa.record_batch({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "level": pa.array([1, 300, 3, None], pa.int64()),
        "price": pa.array(["1.50", "2.00", "abc", "7.25"]),
    })
    with LocalZerobus(tables={name: declaration}, strict=True) as emu:
        config = emu.config(name, descriptor_source="unity_catalog", **FLIGHT)
        with ZerobusWrapper(config) as wrapper:
            result = wrapper.send_batch(batch)
        table = emu.read_table(name)
    check_accounting(result)
    assert result.successful_rows == [0, 3]
    failed = dict(result.failed_rows)
    assert sorted(failed) == [1, 2]
    assert "level" in failed[1] and "300" in failed[1]
    assert "price" in failed[2]
    assert result.in_doubt_rows == []
    got = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in got] == [1, 4]
    assert [r["level"] for r in got] == [1, None]
    assert [str(r["price"]) for r in got] == ["1.50", "7.25"]


def test_a_stream_ended_midway_loses_no_row():
    name = "main.default.flight_fault"
    faults = [{"end_stream": {"after_requests": 2, "code": "UNAVAILABLE"}, "times": 1}]
    batches = [pa.record_batch({"id": pa.array(range(i * 100, i * 100 + 100), pa.int64())})
               for i in range(8)]
    with LocalZerobus(faults=faults) as emu:
        with ZerobusWrapper(emu.config(name, **FLIGHT)) as wrapper:
            results = [wrapper.send_batch(b) for b in batches]
        table = emu.read_table(name)
    for r in results:
        check_accounting(r)
        assert r.successful_count == 100, r.error
    ids = table.column("id").to_pylist()
    assert set(ids) == set(range(800))  # at-least-once: replayed rows may be there twice


# ---- the cast for the table's Flight types, per compression; option conflicts ----------------

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
def test_casts_for_the_table_and_reports_rows_that_do_not_fit_per_compression(compression):
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
