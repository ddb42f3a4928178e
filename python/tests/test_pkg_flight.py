"""End-to-end: ZerobusWrapper.send_batch with transport="arrow_flight" against the packaged local
Zerobus server's DoPut. Rows are read back from the Delta tables and compared value by value.
"""

from __future__ import annotations

import pyarrow as pa

from arrow_zerobus_sdk_wrapper import ZerobusWrapper
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
