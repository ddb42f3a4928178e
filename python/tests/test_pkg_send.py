"""End-to-end: ZerobusWrapper.send_batch against the packaged local Zerobus server.

Rows are read back from the Delta tables the server writes and compared value by value.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import time

import numpy as np
import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import TransmissionResult, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

INT64_MAX = 2**63 - 1

# Short timeouts and retries so that no test waits long for anything.
FAST = dict(
    retry_max_attempts=2,
    retry_base_delay_ms=10,
    retry_max_delay_ms=50,
    recovery_retries=1,
    recovery_backoff_ms=10,
    stream_open_timeout_ms=5000,
    ack_timeout_ms=5000,
    flush_timeout_ms=10000,
    failure_cooldown_ms=0,
    cooldown_jitter_ms=0,
)

ALL_TYPES_DECLARATION = {
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "tinyint"},
        {"name": "ts", "type": "timestamp"},
        {"name": "day", "type": "date"},
        {"name": "amount", "type": "decimal(10,2)"},
        {"name": "tags", "type": "array<string>"},
        {"name": "point", "type": "struct<x:double,y:double>"},
        {"name": "attrs", "type": "map<string,bigint>"},
        {"name": "blob", "type": "binary"},
    ]
}


def settled_table(emu: LocalZerobus, name: str, timeout: float = 10.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def rows_by_id(table: pa.Table) -> list:
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def check_accounting(result: TransmissionResult) -> None:
    """successful + failed == total, and the index lists partition the rows."""
    assert result.successful_count + result.failed_count == result.total_rows
    failed = result.get_failed_row_indices()
    successful = result.get_successful_row_indices()
    assert len(failed) == result.failed_count
    assert len(successful) == result.successful_count
    assert sorted(failed + successful) == list(range(result.total_rows))
    assert set(result.in_doubt_rows) <= set(failed)


def all_types_batch() -> pa.RecordBatch:
    n = 6
    utc = datetime.timezone.utc
    batch = pa.record_batch(
        {
            "id": pa.array([10, 11, 12, 13, 14, 15], pa.int64()),
            "name": pa.array(["a", None, "ccc", "d\u00e9", "", "f"]),
            "score": pa.array([0.5, -1.25, None, 3.0, 1e300, 2.5]),
            "flag": pa.array([True, False, None, True, False, True]),
            "small": pa.array([1, -2, 3, None, 5, 127], pa.int8()),
            "ts": pa.array(
                [datetime.datetime(2024, 1, 1, 12, 0, i, 123456 + i, tzinfo=utc) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([datetime.date(2024, 2, i + 1) for i in range(n)], pa.date32()),
            "amount": pa.array(
                [decimal.Decimal(v) if v else None
                 for v in ("1.25", "-3.50", None, "0.01", "99999999.99", "0.00")],
                pa.decimal128(10, 2),
            ),
            "tags": pa.array([["x", "y"], [], [], ["z"], ["a"], ["b", "c", "d"]], pa.list_(pa.string())),
            "point": pa.array(
                [{"x": 1.0, "y": 2.0}, None, {"x": 3.0, "y": None}, {"x": 0.0, "y": 0.0},
                 {"x": 1.0, "y": 1.0}, {"x": -1.0, "y": 5.0}],
                pa.struct([("x", pa.float64()), ("y", pa.float64())]),
            ),
            "attrs": pa.array(
                [[("k", 1)], [], [], [("a", 2), ("b", 3)], [("c", 7)], [("d", 4)]],
                pa.map_(pa.string(), pa.int64()),
            ),
            "blob": pa.array([b"\x00\x01", b"", None, b"abc", b"\xff", b"z"], pa.binary()),
        }
    )
    # The table's id is NOT NULL: the batch's id field must be non-nullable (required).
    return batch.cast(batch.schema.set(0, pa.field("id", pa.int64(), nullable=False)))


# ---- a batch lands ------------------------------------------------------------------------------


def test_record_batch_lands_with_every_value():
    name = "main.default.all_types"
    batch = all_types_batch()
    with LocalZerobus(tables={name: ALL_TYPES_DECLARATION}, strict=True) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(batch)
            assert isinstance(result, TransmissionResult)
            assert result.success is True
            assert result.total_rows == 6
            assert result.successful_count == 6
            assert result.failed_count == 0
            assert result.failed_rows is None
            assert result.successful_rows == [0, 1, 2, 3, 4, 5]
            assert result.in_doubt_rows == []
            assert result.error is None
            assert result.attempts == 1
            assert result.latency_ms is not None and result.latency_ms > 0
            assert result.batch_size_bytes > 0
            assert not result.has_failed_rows() and result.has_successful_rows()
            assert not result.is_partial_success()
            assert result.extract_failed_batch(batch) is None
            assert result.extract_successful_batch(batch).equals(batch)
            check_accounting(result)
            assert "success=True" in repr(result) and "total_rows=6" in repr(result)
        table = settled_table(emu, name)
    assert table.num_rows == 6
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("amount").type == pa.decimal128(10, 2)
    assert rows_by_id(table) == batch.to_pylist()


def test_many_batches_every_id_exactly_once():
    name = "main.default.many"
    batches = [
        pa.record_batch({"id": pa.array(range(i * 100, i * 100 + 100), pa.int64()),
                         "text": [f"row-{j}" for j in range(i * 100, i * 100 + 100)]})
        for i in range(10)
    ]
    with LocalZerobus() as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            results = [wrapper.send_batch(b) for b in batches]  # pipelined
            assert [r.successful_count for r in results] == [100] * 10
            for r in results:
                check_accounting(r)
            stats = wrapper.stats()
            assert stats["batches"] == 10
            assert stats["rows"] == 1000
            assert stats["rows_successful"] == 1000
            assert stats["rows_failed"] == 0
        table = settled_table(emu, name)
    assert table.column("id").to_pylist() and sorted(table.column("id").to_pylist()) == list(range(1000))
    assert rows_by_id(table) == [{"id": j, "text": f"row-{j}"} for j in range(1000)]


# ---- per-row failures ---------------------------------------------------------------------------


def test_uint64_above_int64_max_fails_only_those_rows():
    name = "main.default.unsigned"
    big_a, big_b = INT64_MAX + 1, 2**64 - 1
    values = [0, 1, big_a, INT64_MAX, 4, big_b, 6, 7]
    batch = pa.record_batch(
        {"id": pa.array(range(8), pa.int64()), "u": pa.array(values, pa.uint64()),
         "s": [f"s{i}" for i in range(8)]}
    )
    with LocalZerobus() as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(batch)
            check_accounting(result)
            assert result.total_rows == 8
            assert result.successful_count == 6 and result.failed_count == 2
            assert result.success is True  # some rows were delivered
            assert result.is_partial_success()
            assert result.get_failed_row_indices() == [2, 5]
            assert result.get_successful_row_indices() == [0, 1, 3, 4, 6, 7]
            assert result.in_doubt_rows == []
            messages = dict(result.failed_rows)
            for index, value in ((2, big_a), (5, big_b)):
                assert messages[index].startswith("Conversion error: ")
                assert "'u'" in messages[index]
                assert str(value) in messages[index]
            assert result.error is not None and result.error.startswith("Conversion error: ")
            assert result.get_error_messages() == [messages[2], messages[5]]
            assert result.group_errors_by_type() == {"ConversionError": [2, 5]}
            assert result.get_failed_row_indices_by_error_type("ConversionError") == [2, 5]
            assert result.get_failed_row_indices_by_error_type("TransmissionError") == []
            statistics = result.get_error_statistics()
            assert statistics["total_rows"] == 8
            assert statistics["successful_count"] == 6
            assert statistics["failed_count"] == 2
            assert statistics["success_rate"] == pytest.approx(0.75)
            assert statistics["failure_rate"] == pytest.approx(0.25)
            assert statistics["error_type_counts"] == {"ConversionError": 2}

            failed = result.extract_failed_batch(batch)
            assert isinstance(failed, pa.RecordBatch)
            assert failed.schema == batch.schema
            assert failed.to_pylist() == [batch.slice(2, 1).to_pylist()[0], batch.slice(5, 1).to_pylist()[0]]
            successful = result.extract_successful_batch(batch)
            assert successful.to_pylist() == [r for i, r in enumerate(batch.to_pylist()) if i not in (2, 5)]

            stats = wrapper.stats()
            assert (stats["rows"], stats["rows_successful"], stats["rows_failed"]) == (8, 6, 2)
            assert stats["rows_in_doubt"] == 0
        table = settled_table(emu, name)
    # Only the delivered rows, each once, with their values (u read back as bigint).
    assert rows_by_id(table) == [
        {"id": i, "u": values[i], "s": f"s{i}"} for i in (0, 1, 3, 4, 6, 7)
    ]


def test_null_in_non_nullable_column_fails_its_row():
    name = "main.default.required"
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("v", pa.string())])
    # A non-nullable field holding a null (pyarrow does not check): that row cannot be encoded.
    batch = pa.RecordBatch.from_arrays(
        [pa.array([1, None, 3], pa.int64()), pa.array(["a", "b", "c"])], schema=schema
    )
    with LocalZerobus() as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(batch)
            check_accounting(result)
            assert result.get_failed_row_indices() == [1]
            assert result.failed_rows[0][1].startswith("Conversion error: ")
            assert "id" in result.failed_rows[0][1]
            assert result.extract_failed_batch(batch).column("v").to_pylist() == ["b"]
        table = settled_table(emu, name)
    assert rows_by_id(table) == [{"id": 1, "v": "a"}, {"id": 3, "v": "c"}]


# ---- declared tables ----------------------------------------------------------------------------


def test_strict_declared_table_refuses_a_batch_that_does_not_fit():
    name = "main.default.declared"
    declaration = {"columns": [{"name": "id", "type": "bigint", "nullable": False},
                               {"name": "name", "type": "string"}]}
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
    fits = pa.RecordBatch.from_arrays([pa.array([1, 2, 3], pa.int64()), pa.array(["a", None, "c"])],
                                      schema=schema)
    # A double where the table has a string: the stream's descriptor does not match the table.
    wrong_type = pa.RecordBatch.from_arrays(
        [pa.array([4, 5], pa.int64()), pa.array([1.5, 2.5])],
        schema=pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.float64())]),
    )
    with LocalZerobus(tables={name: declaration}, strict=True) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            ok = wrapper.send_batch(fits)
            bad = wrapper.send_batch(wrong_type)
            assert ok.successful_count == 3 and ok.failed_count == 0
            check_accounting(bad)
            assert bad.success is False
            assert bad.total_rows == 2 and bad.failed_count == 2 and bad.successful_count == 0
            assert bad.successful_rows is None
            assert [i for i, _ in bad.failed_rows] == [0, 1]
            # Not retryable: one attempt, and nothing can be in the table, so nothing in doubt.
            assert bad.attempts == 1
            assert bad.in_doubt_rows == []
            for _, message in bad.failed_rows:
                assert message.startswith("Transmission error: ")
                assert "INVALID_ARGUMENT" in message
                assert "name" in message
            assert bad.error == bad.failed_rows[0][1]
            assert bad.extract_failed_batch(wrong_type).equals(wrong_type)
            assert bad.extract_successful_batch(wrong_type) is None
            assert wrapper.stats()["retries"] == 0
        with ZerobusWrapper(emu.config("main.default.not_declared", **FAST)) as other:
            missing = other.send_batch(fits)
            check_accounting(missing)
            assert missing.failed_count == 3 and missing.success is False
            assert "NOT_FOUND" in missing.error and "main.default.not_declared" in missing.error
        table = settled_table(emu, name)
    assert rows_by_id(table) == [{"id": 1, "name": "a"}, {"id": 2, "name": None}, {"id": 3, "name": "c"}]


# ---- awaiting and reading -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_await_send_batch_in_asyncio():
    name = "main.default.awaited"
    batch = pa.record_batch({"id": pa.array(range(50), pa.int64()), "v": [i * 0.5 for i in range(50)]})
    with LocalZerobus(faults=[{"ack_delay_ms": 150}]) as emu:
        async with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            pending = wrapper.send_batch(batch)
            assert not pending.done()
            result = await pending
            assert result is pending
            assert result.done()
            assert result.successful_count == 50 and result.failed_count == 0
            # Awaiting a finished result again returns at once.
            assert (await result) is result
            both = await asyncio.gather(wrapper.send_batch(batch.slice(0, 10)),
                                        wrapper.send_batch(batch.slice(10, 5)))
            assert [r.total_rows for r in both] == [10, 5]
            assert all(r.failed_count == 0 for r in both)
        table = settled_table(emu, name)
    ids = sorted(table.column("id").to_pylist())
    assert ids == sorted(list(range(50)) + list(range(15)))


def test_plain_reading_waits_for_the_pending_result():
    name = "main.default.plain"
    batch = pa.record_batch({"id": pa.array(range(20), pa.int64())})
    with LocalZerobus(faults=[{"ack_delay_ms": 600}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            started = time.monotonic()
            result = wrapper.send_batch(batch)
            returned_after = time.monotonic() - started
            assert returned_after < 0.5  # returns while the rows are still in flight
            assert result.done() is False
            assert repr(result) == "TransmissionResult(pending)"
            # Reading a field waits for the outcome.
            assert result.successful_count == 20
            assert time.monotonic() - started >= 0.5
            assert result.done() is True
            assert result.wait(timeout=0) is True
            assert result.success and result.failed_count == 0
            assert result.latency_ms >= 500


def test_wait_with_timeout_and_done():
    name = "main.default.waited"
    batch = pa.record_batch({"id": pa.array(range(5), pa.int64())})
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(batch)
            started = time.monotonic()
            assert result.wait(timeout=0.3) is False
            waited = time.monotonic() - started
            assert 0.25 <= waited < 3.0
            assert result.done() is False
            emu.clear_faults()  # the withheld acks go out
            assert result.wait(timeout=10) is True
            assert result.done() is True
            check_accounting(result)
            assert result.successful_count == 5 and result.in_doubt_rows == []
        table = settled_table(emu, name)
    assert sorted(table.column("id").to_pylist()) == [0, 1, 2, 3, 4]


def test_hand_built_result_is_taken_as_given():
    result = TransmissionResult(
        False,
        error="ConversionError: bad",
        failed_rows=[(3, "ConversionError: bad"), (1, "Transmission error: lost")],
        successful_rows=[0, 2],
        total_rows=4,
        successful_count=2,
        failed_count=2,
        message="kept",
    )
    assert result.done() and result.wait() is True
    assert result.failed_rows == [(1, "Transmission error: lost"), (3, "ConversionError: bad")]
    assert result.group_errors_by_type() == {"ConversionError": [3], "TransmissionError": [1]}
    assert result.message == "kept"
    batch = pa.record_batch({"id": [10, 11, 12, 13]})
    assert result.extract_failed_batch(batch).column("id").to_pylist() == [11, 13]
    assert result.extract_successful_batch(batch).column("id").to_pylist() == [10, 12]


def test_batch_larger_than_one_request_is_split_and_lands():
    # About 9 bytes per framed record: 1.3 M rows need two requests under the 10 MiB limit.
    # The first request is filled to within a few bytes of the limit; it must still be accepted.
    name = "main.default.big"
    rows = 1_300_000
    batch = pa.record_batch({"id": pa.array(np.arange(rows, dtype=np.int64)),
                             "s": pa.repeat(pa.scalar("x"), rows)})
    with LocalZerobus(sink="null") as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(batch)
            assert result.wait(60)
            assert result.successful_count + result.failed_count == result.total_rows == rows
            assert result.failed_count == 0, result.error
            assert result.successful_count == rows
            assert result.batch_size_bytes > 10 * 1024 * 1024
        stats = emu.stats()
    table = {t["name"]: t for t in stats["tables"]}[name]
    assert table["rows"] == rows
    streams = [s for s in stats["streams"] if s["table"] == name]
    assert sum(s["requests"] for s in streams) >= 2
