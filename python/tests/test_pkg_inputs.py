"""End-to-end: every kind of Arrow input send_batch accepts (PyCapsule interface), and what it
refuses. Rows are read back from the local server's Delta tables and compared by value."""

from __future__ import annotations

import gc
import itertools
import time

import arro3.core as a3
import duckdb
import nanoarrow as na
import polars as pl
import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import TransmissionResult, ZerobusWrapper, _core
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

INT64_MAX = 2**63 - 1

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

# The reference data every producer below is built from.
REFERENCE = pa.table(
    {
        "id": pa.array(range(9), pa.int64()),
        "name": pa.array(["a", "bb", None, "d\u00e9", "", "f", "g", "h", "i"]),
        "score": pa.array([0.5, -1.0, 2.25, None, 4.0, 5.5, 6.0, 7.125, 8.0]),
    }
)
EXPECTED = REFERENCE.to_pylist()

_names = itertools.count()


@pytest.fixture(scope="module")
def emu():
    with LocalZerobus() as server:
        yield server


def fresh_table() -> str:
    return f"main.default.input_{next(_names)}"


def settled_table(emu: LocalZerobus, name: str, timeout: float = 10.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def table_exists(emu: LocalZerobus, name: str) -> bool:
    return any(t["name"] == name for t in emu.stats()["tables"])


def rows_by_id(table: pa.Table) -> list:
    return sorted(table.to_pylist(), key=lambda row: row["id"])


def check_accounting(result: TransmissionResult) -> None:
    assert result.successful_count + result.failed_count == result.total_rows
    failed = result.get_failed_row_indices()
    successful = result.get_successful_row_indices()
    assert sorted(failed + successful) == list(range(result.total_rows))
    assert set(result.in_doubt_rows) <= set(failed)


def send_and_read(emu: LocalZerobus, data) -> tuple:
    name = fresh_table()
    with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
        result = wrapper.send_batch(data)
        check_accounting(result)
    return result, name


def three_chunks() -> pa.Table:
    batches = REFERENCE.to_batches()
    assert len(batches) == 1
    whole = batches[0]
    return pa.Table.from_batches([whole.slice(0, 2), whole.slice(2, 4), whole.slice(6, 3)])


def duckdb_query() -> str:
    values = ", ".join(
        "({}, {}, {})".format(
            row["id"],
            "NULL" if row["name"] is None else "'" + row["name"] + "'",
            "NULL" if row["score"] is None else repr(row["score"]),
        )
        for row in EXPECTED
    )
    return (
        "SELECT id::BIGINT AS id, name::VARCHAR AS name, score::DOUBLE AS score "
        f"FROM (VALUES {values}) AS t(id, name, score) ORDER BY id"
    )


PRODUCERS = {
    "pyarrow RecordBatch": lambda: REFERENCE.to_batches()[0],
    "pyarrow Table (3 chunks)": three_chunks,
    "pyarrow RecordBatchReader": lambda: pa.RecordBatchReader.from_batches(
        REFERENCE.schema, three_chunks().to_batches()
    ),
    "pyarrow StructArray": lambda: pa.StructArray.from_arrays(
        REFERENCE.to_batches()[0].columns, names=REFERENCE.column_names
    ),
    "polars DataFrame": lambda: pl.DataFrame(
        {"id": list(range(9)), "name": REFERENCE.column("name").to_pylist(),
         "score": REFERENCE.column("score").to_pylist()},
        schema={"id": pl.Int64, "name": pl.String, "score": pl.Float64},
    ),
    "duckdb relation": lambda: duckdb.sql(duckdb_query()),
    "duckdb arrow() reader": lambda: duckdb.sql(duckdb_query()).arrow(),
    "duckdb to_arrow_table()": lambda: duckdb.sql(duckdb_query()).to_arrow_table(),
    "nanoarrow c_array_stream": lambda: na.c_array_stream(three_chunks()),
    "nanoarrow Array": lambda: na.Array(REFERENCE.to_batches()[0]),
    # Offers both interfaces, but only the stream can carry its 3 chunks.
    "nanoarrow Array (3 chunks)": lambda: na.Array(three_chunks()),
    "arro3 RecordBatch": lambda: a3.RecordBatch.from_arrow(REFERENCE.to_batches()[0]),
    "arro3 Table": lambda: a3.Table.from_arrow(three_chunks()),
}


@pytest.mark.parametrize("producer", list(PRODUCERS), ids=list(PRODUCERS))
def test_input_kind_lands_with_values(emu, producer):
    data = PRODUCERS[producer]()
    result, name = send_and_read(emu, data)
    assert result.total_rows == 9
    assert result.successful_count == 9, result.failed_rows
    assert result.failed_rows is None
    assert result.successful_rows == list(range(9))
    assert result.success is True
    table = settled_table(emu, name)
    assert table.num_rows == 9
    assert rows_by_id(table) == EXPECTED


def test_sliced_batch_sends_only_its_rows(emu):
    batch = REFERENCE.to_batches()[0].slice(3, 4)
    assert batch.column(0).offset == 3
    result, name = send_and_read(emu, batch)
    assert result.total_rows == 4 and result.successful_rows == [0, 1, 2, 3]
    assert rows_by_id(settled_table(emu, name)) == EXPECTED[3:7]


def test_sliced_table_sends_only_its_rows(emu):
    table = three_chunks().slice(1, 6)  # starts inside the first chunk, ends inside the third
    assert table.column(0).num_chunks == 3
    result, name = send_and_read(emu, table)
    assert result.total_rows == 6 and result.successful_count == 6
    assert rows_by_id(settled_table(emu, name)) == EXPECTED[1:7]


@pytest.mark.parametrize(
    "make_empty",
    [
        lambda: REFERENCE.to_batches()[0].slice(0, 0),
        lambda: REFERENCE.schema.empty_table(),
        lambda: pa.Table.from_batches([], schema=REFERENCE.schema),
        lambda: pa.RecordBatchReader.from_batches(REFERENCE.schema, []),
        lambda: pl.DataFrame(schema={"id": pl.Int64}),
    ],
    ids=["empty batch", "empty table", "table without chunks", "empty reader", "empty polars"],
)
def test_empty_input_succeeds_with_no_rows(emu, make_empty):
    result, name = send_and_read(emu, make_empty())
    assert result.total_rows == 0
    assert result.successful_count == 0 and result.failed_count == 0
    assert result.success is True
    assert result.failed_rows is None
    assert result.error is None
    stats = result.get_error_statistics()
    assert stats["success_rate"] == 0.0 and stats["failure_rate"] == 0.0
    assert not table_exists(emu, name)


# ---- row indices count from the start of the input -------------------------------------------


def overflow_table() -> pa.Table:
    """Two chunks of 4 rows; the second chunk's row 1 (row 5 overall) does not fit int64."""
    first = pa.record_batch({"id": pa.array(range(4), pa.int64()),
                             "u": pa.array([0, 1, 2, 3], pa.uint64())})
    second = pa.record_batch({"id": pa.array(range(4, 8), pa.int64()),
                              "u": pa.array([4, INT64_MAX + 1, 6, 7], pa.uint64())})
    return pa.Table.from_batches([first, second])


STREAM_PRODUCERS = {
    "pyarrow Table": overflow_table,
    "pyarrow RecordBatchReader": lambda: pa.RecordBatchReader.from_batches(
        overflow_table().schema, overflow_table().to_batches()
    ),
    "nanoarrow c_array_stream": lambda: na.c_array_stream(overflow_table()),
    "nanoarrow Array (2 chunks)": lambda: na.Array(overflow_table()),
    "arro3 Table": lambda: a3.Table.from_arrow(overflow_table()),
}


@pytest.mark.parametrize("producer", list(STREAM_PRODUCERS), ids=list(STREAM_PRODUCERS))
def test_stream_row_indices_count_from_the_start(emu, producer):
    result, name = send_and_read(emu, STREAM_PRODUCERS[producer]())
    assert result.total_rows == 8
    assert result.get_failed_row_indices() == [5]
    assert result.get_successful_row_indices() == [0, 1, 2, 3, 4, 6, 7]
    index, message = result.failed_rows[0]
    assert message.startswith("Conversion error: ")
    assert "'u'" in message and str(INT64_MAX + 1) in message
    original = overflow_table()
    failed = result.extract_failed_batch(original)
    assert failed.to_pylist() == [{"id": 5, "u": INT64_MAX + 1}]
    successful = result.extract_successful_batch(original)
    assert successful.column("id").to_pylist() == [0, 1, 2, 3, 4, 6, 7]
    table = settled_table(emu, name)
    assert rows_by_id(table) == [{"id": i, "u": i} for i in (0, 1, 2, 3, 4, 6, 7)]


@pytest.mark.parametrize("producer", list(STREAM_PRODUCERS)[2:], ids=list(STREAM_PRODUCERS)[2:])
def test_extract_from_the_input_itself(emu, producer):
    # extract_*_batch takes the data that was sent, whatever produced it.
    result, _ = send_and_read(emu, STREAM_PRODUCERS[producer]())
    again = STREAM_PRODUCERS[producer]()
    assert result.extract_failed_batch(again).to_pylist() == [{"id": 5, "u": INT64_MAX + 1}]
    again = STREAM_PRODUCERS[producer]()
    assert result.extract_successful_batch(again).column("id").to_pylist() == [0, 1, 2, 3, 4, 6, 7]


def test_sliced_batch_row_indices_count_from_the_slice(emu):
    batch = pa.record_batch({"id": pa.array(range(10), pa.int64()),
                             "u": pa.array([0, 1, 2, 3, 2**64 - 1, 5, 6, 7, 8, 9], pa.uint64())})
    sliced = batch.slice(2, 5)  # original rows 2..6; row 4 is index 2 of the slice
    result, name = send_and_read(emu, sliced)
    assert result.get_failed_row_indices() == [2]
    assert result.extract_failed_batch(sliced).column("id").to_pylist() == [4]
    assert sorted(settled_table(emu, name).column("id").to_pylist()) == [2, 3, 5, 6]


def test_reader_that_breaks_sends_what_it_read(emu):
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])

    def batches():
        yield pa.record_batch({"id": pa.array([0, 1, 2], pa.int64()), "name": ["a", "b", "c"]})
        yield pa.record_batch({"id": pa.array([3, 4], pa.int64()), "name": ["d", "e"]})
        raise RuntimeError("the source broke")

    # A Python generator behind the C stream: the extension reads it with the GIL released,
    # pyarrow takes the GIL back for each batch.
    result, name = send_and_read(emu, pa.RecordBatchReader.from_batches(schema, batches()))
    assert result.total_rows == 5 and result.successful_count == 5
    assert result.error is not None
    assert "the source broke" in result.error and "5 rows" in result.error
    assert rows_by_id(settled_table(emu, name)) == [
        {"id": i, "name": n} for i, n in enumerate("abcde")
    ]


# ---- what is refused ----------------------------------------------------------------------------


class NotArrow:
    """Looks like a data frame (has columns) but offers no Arrow interface."""

    columns = ["id"]

    def to_dict(self):
        return {"id": [1]}


@pytest.mark.parametrize(
    "value",
    [[1, 2, 3], {"id": [1, 2]}, NotArrow(), None, "id", 42, b"bytes"],
    ids=["list", "dict", "object", "None", "str", "int", "bytes"],
)
def test_non_arrow_input_is_a_type_error(emu, value):
    with ZerobusWrapper(emu.config(fresh_table(), **FAST)) as wrapper:
        with pytest.raises(TypeError) as info:
            wrapper.send_batch(value)
        message = str(info.value)
        assert "__arrow_c_array__" in message and "__arrow_c_stream__" in message
        assert type(value).__name__ in message
        assert wrapper.stats()["batches"] == 0


def test_non_struct_array_is_a_type_error(emu):
    with ZerobusWrapper(emu.config(fresh_table(), **FAST)) as wrapper:
        with pytest.raises(TypeError) as info:
            wrapper.send_batch(pa.array([1, 2, 3], pa.int64()))
        message = str(info.value)
        assert "record batch" in message and "struct" in message
        # The wrapper is still usable afterwards.
        assert wrapper.send_batch(REFERENCE).successful_count == 9


@pytest.mark.parametrize(
    "make_value",
    [lambda: pa.chunked_array([[1, 2], [3]], pa.int64()), lambda: pl.Series("id", [1, 2, 3])],
    ids=["pyarrow ChunkedArray", "polars Series"],
)
def test_non_struct_stream_is_a_type_error(emu, make_value):
    # A stream of plain (non-struct) arrays is not tabular data, like a non-struct pa.Array:
    # the same TypeError saying what was expected.
    with ZerobusWrapper(emu.config(fresh_table(), **FAST)) as wrapper:
        with pytest.raises(TypeError) as info:
            wrapper.send_batch(make_value())
        assert "struct" in str(info.value) or "record batch" in str(info.value)


def test_extract_with_something_that_is_not_arrow_is_a_type_error(emu):
    result, _ = send_and_read(emu, overflow_table())
    with pytest.raises(TypeError, match="extract_failed_batch"):
        result.extract_failed_batch([1, 2, 3])
    with pytest.raises(ValueError, match="outside the batch"):
        result.extract_failed_batch(overflow_table().slice(0, 3))


# ---- no copy ------------------------------------------------------------------------------------


def pyarrow_addresses(batch: pa.RecordBatch) -> list:
    return [
        [buffer.address if buffer is not None else 0 for buffer in batch.column(i).buffers()]
        for i in range(batch.num_columns)
    ]


@pytest.mark.parametrize("offset", [0, 3])
def test_buffers_cross_without_a_copy(offset):
    batch = pa.record_batch(
        {
            "id": pa.array(range(10), pa.int64()),
            "name": pa.array([None if i % 3 == 0 else f"n{i}" for i in range(10)]),
            "score": pa.array([float(i) for i in range(10)]),
        }
    ).slice(offset, 10 - offset)
    addresses = _core.buffer_addresses(*batch.__arrow_c_array__())
    expected = pyarrow_addresses(batch)
    assert addresses == expected
    assert all(address != 0 for column in expected for address in column[1:])


def test_input_dropped_at_once_still_lands(emu):
    name = fresh_table()
    with LocalZerobus(faults=[{"ack_delay_ms": 200}]) as slow:
        with ZerobusWrapper(slow.config(name, **FAST)) as wrapper:

            def send_temporary():
                # The only reference to the data is dropped at once.
                return wrapper.send_batch(pa.record_batch({"id": pa.array(range(1000), pa.int64())}))

            result = send_temporary()
            gc.collect()
            assert result.successful_count == 1000
        table = settled_table(slow, name)
    assert sorted(table.column("id").to_pylist()) == list(range(1000))
