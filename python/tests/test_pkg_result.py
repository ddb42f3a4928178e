"""TransmissionResult built by hand (python-api.md, "TransmissionResult"): constructor, properties,
row helpers, extraction from pyarrow and polars data, error grouping and statistics, repr."""

from __future__ import annotations

import inspect
import pickle

import polars as pl
import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import TransmissionResult


def sample_batch(n: int = 6) -> pa.RecordBatch:
    return pa.record_batch({
        "id": pa.array(range(n), pa.int64()),
        "name": pa.array([f"row{i}" for i in range(n)], pa.string()),
        "score": pa.array([i / 2 for i in range(n)], pa.float64()),
    })


def mixed_result() -> TransmissionResult:
    """Six rows: 0, 2, 5 delivered; 1, 3, 4 failed with three spellings of the kinds."""
    return TransmissionResult(
        True,
        error="Conversion error: 2 rows failed",
        attempts=3,
        latency_ms=12.5,
        batch_size_bytes=321,
        # Deliberately out of order: the property promises them sorted by index.
        failed_rows=[
            (4, "TransmissionError: stream ended"),
            (1, "ConversionError: column 'x' row 1: value 9 out of range"),
            (3, "Conversion error: column 'y' row 3: null in a required field"),
        ],
        successful_rows=[0, 2, 5],
        total_rows=6,
        successful_count=3,
        failed_count=3,
    )


# ---- constructor ----------------------------------------------------------------------------


def test_constructor_signature():
    sig = inspect.signature(TransmissionResult)
    params = sig.parameters
    assert list(params)[0] == "success"
    assert params["success"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    expected_defaults = {
        "error": None, "attempts": 1, "latency_ms": None, "batch_size_bytes": 0,
        "failed_rows": None, "successful_rows": None, "total_rows": 0,
        "successful_count": 0, "failed_count": 0, "message": None,
    }
    for name, default in expected_defaults.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default == default, name


def test_keywords_are_keyword_only():
    with pytest.raises(TypeError):
        TransmissionResult(True, "an error")  # type: ignore[misc]


def test_defaults():
    r = TransmissionResult(True)
    assert r.success is True
    assert r.error is None
    assert r.attempts == 1
    assert r.latency_ms is None
    assert r.batch_size_bytes == 0
    assert r.failed_rows is None
    assert r.successful_rows is None
    assert r.total_rows == 0
    assert r.successful_count == 0
    assert r.failed_count == 0
    assert r.message is None
    assert r.in_doubt_rows == []
    assert r.done() is True
    assert r.wait() is True and r.wait(timeout=0) is True


def test_values_are_taken_as_given():
    # Counts that do not match the lists are not corrected.
    r = TransmissionResult(False, failed_rows=[(0, "x")], successful_rows=[1, 2], total_rows=10,
                           successful_count=7, failed_count=1, message="kept")
    assert r.success is False
    assert r.total_rows == 10 and r.successful_count == 7 and r.failed_count == 1
    assert r.successful_rows == [1, 2]
    assert r.message == "kept"


def test_properties():
    r = mixed_result()
    assert r.success is True
    assert r.error == "Conversion error: 2 rows failed"
    assert r.attempts == 3
    assert r.latency_ms == 12.5
    assert r.batch_size_bytes == 321
    assert r.total_rows == 6 and r.successful_count == 3 and r.failed_count == 3
    assert r.failed_rows == [
        (1, "ConversionError: column 'x' row 1: value 9 out of range"),
        (3, "Conversion error: column 'y' row 3: null in a required field"),
        (4, "TransmissionError: stream ended"),
    ]
    assert all(isinstance(row, tuple) for row in r.failed_rows)
    assert r.successful_rows == [0, 2, 5]


def test_properties_are_read_only():
    r = mixed_result()
    for name in ("success", "error", "attempts", "latency_ms", "batch_size_bytes", "failed_rows",
                 "successful_rows", "total_rows", "successful_count", "failed_count"):
        with pytest.raises(AttributeError):
            setattr(r, name, None)


def test_constructor_accepts_iterables():
    r = TransmissionResult(True, failed_rows=iter([(2, "b"), (0, "a")]),
                           successful_rows=(i for i in [1]))
    assert r.failed_rows == [(0, "a"), (2, "b")]
    assert r.successful_rows == [1]


# ---- row helpers ------------------------------------------------------------------------------


def test_row_index_helpers():
    r = mixed_result()
    assert r.get_failed_row_indices() == [1, 3, 4]
    assert r.get_successful_row_indices() == [0, 2, 5]
    # New lists each time.
    r.get_failed_row_indices().append(99)
    r.get_successful_row_indices().append(99)
    assert r.get_failed_row_indices() == [1, 3, 4]
    assert r.get_successful_row_indices() == [0, 2, 5]


def test_row_index_helpers_when_none():
    r = TransmissionResult(True)
    assert r.get_failed_row_indices() == []
    assert r.get_successful_row_indices() == []
    assert r.get_error_messages() == []
    assert r.group_errors_by_type() == {}


def test_has_and_partial():
    r = mixed_result()
    assert r.has_failed_rows() and r.has_successful_rows() and r.is_partial_success()

    all_ok = TransmissionResult(True, successful_rows=[0, 1], total_rows=2, successful_count=2)
    assert all_ok.has_successful_rows() and not all_ok.has_failed_rows()
    assert not all_ok.is_partial_success()

    all_failed = TransmissionResult(False, failed_rows=[(0, "x"), (1, "y")], total_rows=2,
                                    failed_count=2)
    assert all_failed.has_failed_rows() and not all_failed.has_successful_rows()
    assert not all_failed.is_partial_success()

    empty_lists = TransmissionResult(True, failed_rows=[], successful_rows=[])
    assert not empty_lists.has_failed_rows() and not empty_lists.has_successful_rows()
    assert not empty_lists.is_partial_success()


def test_failed_row_indices_by_error_type():
    r = mixed_result()
    assert r.get_failed_row_indices_by_error_type("ConversionError") == [1, 3]
    assert r.get_failed_row_indices_by_error_type("TransmissionError") == [4]
    assert r.get_failed_row_indices_by_error_type("AuthenticationError") == []
    # Display prefixes are not type names.
    assert r.get_failed_row_indices_by_error_type("Conversion error") == []
    assert r.get_failed_row_indices_by_error_type("NoSuchError") == []


# ---- grouping, statistics, messages -----------------------------------------------------------


ALL_KINDS = [
    ("ConfigurationError", "Configuration error"),
    ("AuthenticationError", "Authentication error"),
    ("ConnectionError", "Connection error"),
    ("ConversionError", "Conversion error"),
    ("TransmissionError", "Transmission error"),
    ("RetryExhausted", "Retry exhausted"),
    ("TokenRefreshError", "Token refresh error"),
]


@pytest.mark.parametrize("class_name,display", ALL_KINDS)
def test_group_errors_by_type_understands_both_prefixes(class_name, display):
    r = TransmissionResult(False, failed_rows=[
        (0, f"{class_name}: by class name"),
        (1, f"{display}: by display prefix"),
        (2, "no known prefix at all"),
    ], total_rows=3, failed_count=3)
    groups = r.group_errors_by_type()
    if class_name == "ConversionError":
        assert groups == {"ConversionError": [0, 1, 2]}
    else:
        assert groups == {class_name: [0, 1], "ConversionError": [2]}
    assert r.get_failed_row_indices_by_error_type(class_name) == (
        [0, 1, 2] if class_name == "ConversionError" else [0, 1])


def test_group_errors_by_type_mixed():
    r = mixed_result()
    assert r.group_errors_by_type() == {"ConversionError": [1, 3], "TransmissionError": [4]}


def test_unprefixed_and_lookalike_messages_count_as_conversion_errors():
    r = TransmissionResult(False, failed_rows=[
        (0, "something broke"),
        (1, "ConnectionErrorish: not a prefix"),
        (2, "conversion error: lower case"),
        (3, ""),
        (4, "Transmission errors: plural"),
    ])
    assert r.group_errors_by_type() == {"ConversionError": [0, 1, 2, 3, 4]}


def test_error_statistics():
    stats = mixed_result().get_error_statistics()
    assert stats == {
        "total_rows": 6,
        "successful_count": 3,
        "failed_count": 3,
        "success_rate": 0.5,
        "failure_rate": 0.5,
        "error_type_counts": {"ConversionError": 2, "TransmissionError": 1},
    }


def test_error_statistics_rates():
    r = TransmissionResult(True, failed_rows=[(3, "Retry exhausted: gave up")],
                           successful_rows=[0, 1, 2], total_rows=4, successful_count=3,
                           failed_count=1)
    stats = r.get_error_statistics()
    assert stats["success_rate"] == pytest.approx(0.75)
    assert stats["failure_rate"] == pytest.approx(0.25)
    assert stats["error_type_counts"] == {"RetryExhausted": 1}


def test_error_statistics_no_rows():
    stats = TransmissionResult(True).get_error_statistics()
    assert stats == {
        "total_rows": 0, "successful_count": 0, "failed_count": 0,
        "success_rate": 0.0, "failure_rate": 0.0, "error_type_counts": {},
    }
    assert isinstance(stats["success_rate"], float) and isinstance(stats["failure_rate"], float)


def test_error_messages_in_row_order():
    assert mixed_result().get_error_messages() == [
        "ConversionError: column 'x' row 1: value 9 out of range",
        "Conversion error: column 'y' row 3: null in a required field",
        "TransmissionError: stream ended",
    ]


# ---- extraction -------------------------------------------------------------------------------


def rows(batch: pa.RecordBatch):
    return batch.to_pylist()


def test_extract_from_record_batch():
    batch = sample_batch()
    r = mixed_result()
    failed = r.extract_failed_batch(batch)
    ok = r.extract_successful_batch(batch)
    assert isinstance(failed, pa.RecordBatch) and isinstance(ok, pa.RecordBatch)
    assert failed.schema == batch.schema and ok.schema == batch.schema
    assert failed.equals(batch.take(pa.array([1, 3, 4])))
    assert ok.equals(batch.take(pa.array([0, 2, 5])))


def test_extract_consecutive_rows():
    batch = sample_batch()
    r = TransmissionResult(True, failed_rows=[(4, "x"), (5, "y")], successful_rows=[0, 1, 2, 3])
    assert r.extract_failed_batch(batch).equals(batch.slice(4, 2))
    assert r.extract_successful_batch(batch).equals(batch.slice(0, 4))


def test_extract_from_table_with_several_chunks():
    batch = sample_batch()
    table = pa.Table.from_batches([batch.slice(0, 2), batch.slice(2, 3), batch.slice(5, 1)])
    r = mixed_result()
    failed = r.extract_failed_batch(table)
    ok = r.extract_successful_batch(table)
    assert isinstance(failed, pa.RecordBatch) and isinstance(ok, pa.RecordBatch)
    assert rows(failed) == [rows(batch)[i] for i in (1, 3, 4)]
    assert rows(ok) == [rows(batch)[i] for i in (0, 2, 5)]


def test_extract_from_record_batch_reader():
    batch = sample_batch()
    reader = pa.RecordBatchReader.from_batches(batch.schema, [batch.slice(0, 3), batch.slice(3)])
    failed = mixed_result().extract_failed_batch(reader)
    assert rows(failed) == [rows(batch)[i] for i in (1, 3, 4)]


def test_extract_from_polars_dataframe():
    df = pl.DataFrame({
        "id": list(range(6)),
        "name": [f"row{i}" for i in range(6)],
        "score": [i / 2 for i in range(6)],
    })
    r = mixed_result()
    failed = r.extract_failed_batch(df)
    ok = r.extract_successful_batch(df)
    assert isinstance(failed, pa.RecordBatch) and isinstance(ok, pa.RecordBatch)
    assert failed.schema.names == ["id", "name", "score"]
    assert rows(failed) == df[[1, 3, 4]].to_dicts()
    assert rows(ok) == df[[0, 2, 5]].to_dicts()
    # Consecutive rows from polars too.
    tail = TransmissionResult(False, failed_rows=[(4, "x"), (5, "y")])
    assert rows(tail.extract_failed_batch(df)) == df[4:6].to_dicts()


def test_extract_sorts_hand_given_successful_rows():
    batch = sample_batch()
    r = TransmissionResult(True, successful_rows=[5, 0, 2])
    assert rows(r.extract_successful_batch(batch)) == [rows(batch)[i] for i in (0, 2, 5)]


def test_extract_none_when_empty():
    batch = sample_batch()
    assert TransmissionResult(True).extract_failed_batch(batch) is None
    assert TransmissionResult(True).extract_successful_batch(batch) is None
    assert TransmissionResult(True, failed_rows=[], successful_rows=[]).extract_failed_batch(batch) is None
    assert TransmissionResult(True, failed_rows=[], successful_rows=[]).extract_successful_batch(batch) is None
    all_ok = TransmissionResult(True, successful_rows=[0, 1])
    assert all_ok.extract_failed_batch(batch) is None
    assert all_ok.extract_successful_batch(batch).num_rows == 2


@pytest.mark.parametrize("failed,successful", [
    ([(6, "x")], [0]),
    ([(0, "x"), (9, "y")], [1]),
    ([(1, "x")], [2, 10]),
])
def test_extract_out_of_range_index_is_an_error(failed, successful):
    batch = sample_batch()  # 6 rows
    r = TransmissionResult(True, failed_rows=failed, successful_rows=successful)
    bad_failed = any(i >= 6 for i, _ in failed)
    if bad_failed:
        with pytest.raises(ValueError, match="outside"):
            r.extract_failed_batch(batch)
    else:
        with pytest.raises(ValueError, match="outside"):
            r.extract_successful_batch(batch)


def test_extract_negative_index_is_an_error():
    r = TransmissionResult(False, failed_rows=[(-1, "x")])
    with pytest.raises(ValueError):
        r.extract_failed_batch(sample_batch())


def test_extract_not_arrow_is_a_type_error():
    r = mixed_result()
    with pytest.raises(TypeError):
        r.extract_failed_batch([1, 2, 3])
    with pytest.raises(TypeError):
        r.extract_successful_batch({"id": [1]})


# ---- repr and pickling ------------------------------------------------------------------------


def test_repr():
    text = repr(mixed_result())
    assert text.startswith("TransmissionResult(")
    for part in ("success=True", "total_rows=6", "successful_count=3", "failed_count=3",
                 "attempts=3", "latency_ms=12.5", "batch_size_bytes=321",
                 "Conversion error: 2 rows failed"):
        assert part in text, part
    plain = repr(TransmissionResult(False))
    assert "success=False" in plain and "error" not in plain


def test_repr_shortens_long_errors():
    text = repr(TransmissionResult(False, error="Transmission error: " + "x" * 5000))
    assert len(text) < 600


def test_pickle_round_trip():
    r = mixed_result()
    r2 = pickle.loads(pickle.dumps(r))
    for name in ("success", "error", "attempts", "latency_ms", "batch_size_bytes", "failed_rows",
                 "successful_rows", "total_rows", "successful_count", "failed_count"):
        assert getattr(r2, name) == getattr(r, name), name
    assert r2.group_errors_by_type() == r.group_errors_by_type()
