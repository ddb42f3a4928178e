"""Writer-disabled mode: convert and write debug files, no network, no credentials
(python-api.md; docs/debug-files.md for the file layout, docs/type-mapping.md for what fails)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from arrow_zerobus_sdk_wrapper import (
    ConfigurationError,
    WrapperConfiguration,
    ZerobusWrapper,
)

SECRET = "debug-files-Secret-0b7d"
INT64_MAX = 2**63 - 1
NAME_RE = re.compile(r"^(?P<table>[A-Za-z0-9_.]+)--(?P<ts>\d{8}T\d{6}Z)--(?P<seq>\d+)\.(?P<ext>arrows|pb|desc)$")


def wrapper(tmp_path: Path, table: str = "main.default.events", **options) -> ZerobusWrapper:
    options.setdefault("debug_arrow_enabled", True)
    options.setdefault("debug_protobuf_enabled", True)
    # An endpoint nothing listens on: nothing may try to use it.
    return ZerobusWrapper("https://127.0.0.1:9", table, zerobus_writer_disabled=True,
                          debug_output_dir=str(tmp_path), **options)


def files(directory: Path, ext: str):
    return sorted(p for p in directory.iterdir() if p.name.endswith("." + ext))


def read_arrows(directory: Path) -> pa.Table:
    tables = [pa.ipc.open_stream(p).read_all() for p in files(directory, "arrows")]
    return pa.concat_tables(tables)


def read_pb(pb: Path):
    """The records of a .pb debug file, parsed with the DescriptorProto of its .desc
    (debug-files.md, "Reading back")."""
    desc = descriptor_pb2.DescriptorProto.FromString(pb.with_suffix(".desc").read_bytes())
    fdp = descriptor_pb2.FileDescriptorProto(name="debug.proto", syntax="proto2")
    fdp.message_type.add().CopyFrom(desc)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    row_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(desc.name))
    data, pos, rows = pb.read_bytes(), 0, []
    while pos < len(data):
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        rows.append(row_class.FromString(data[pos:pos + n]))
        pos += n
    assert pos == len(data)
    return desc, rows


def sample_batch() -> pa.RecordBatch:
    return pa.record_batch({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "name": pa.array(["a", "b", None, "d"], pa.string()),
        "score": pa.array([0.5, 1.5, 2.5, None], pa.float64()),
        "flag": pa.array([True, False, True, False], pa.bool_()),
    })


def test_send_without_network_or_credentials_writes_arrow_files(tmp_path):
    batch = sample_batch()
    with wrapper(tmp_path, debug_protobuf_enabled=False) as w:
        result = w.send_batch(batch)
        assert result.wait(timeout=30)
        assert result.success is True
        assert result.total_rows == 4
        assert result.successful_count == 4 and result.failed_count == 0
        assert result.successful_rows == [0, 1, 2, 3]
        assert result.failed_rows is None
        assert result.error is None
        assert not result.has_failed_rows() and result.has_successful_rows()
        assert w.stats()["streams_opened"] == 0
    arrows = files(tmp_path, "arrows")
    assert len(arrows) == 1
    assert files(tmp_path, "pb") == [] and files(tmp_path, "desc") == []
    match = NAME_RE.match(arrows[0].name)
    assert match and match["table"] == "main.default.events"
    table = pa.ipc.open_stream(arrows[0]).read_all()
    assert table.schema.equals(batch.schema)
    assert table.equals(pa.Table.from_batches([batch]))


def test_several_sends_and_a_table_land_in_order(tmp_path):
    batch = sample_batch()
    table = pa.Table.from_batches([batch.slice(0, 1), batch.slice(1, 3)])
    with wrapper(tmp_path) as w:
        results = [w.send_batch(batch), w.send_batch(table), w.send_batch(batch.slice(2))]
        for r in results:
            assert r.wait(timeout=30)
        assert [r.successful_count for r in results] == [4, 4, 2]
        assert results[1].successful_rows == [0, 1, 2, 3]  # counted from the stream's start
        assert results[2].successful_rows == [0, 1]
    got = read_arrows(tmp_path)
    expected = pa.concat_tables([pa.Table.from_batches([batch]), table,
                                 pa.Table.from_batches([batch.slice(2)])])
    assert got.to_pylist() == expected.to_pylist()


def test_polars_dataframe(tmp_path):
    df = pl.DataFrame({"id": [10, 20, 30], "name": ["x", "y", "z"]})
    with wrapper(tmp_path) as w:
        result = w.send_batch(df)
        assert result.wait(timeout=30)
        assert result.successful_count == 3 and result.failed_count == 0
    assert read_arrows(tmp_path).to_pylist() == df.to_dicts()
    pb = files(tmp_path, "pb")
    assert len(pb) == 1
    _, rows = read_pb(pb[0])
    assert [(r.id, r.name) for r in rows] == [(10, "x"), (20, "y"), (30, "z")]


def test_protobuf_files_with_their_descriptor(tmp_path):
    batch = sample_batch()
    with wrapper(tmp_path) as w:
        result = w.send_batch(batch)
        assert result.wait(timeout=30)
        assert result.successful_count == 4
    pbs = files(tmp_path, "pb")
    descs = files(tmp_path, "desc")
    assert len(pbs) == 1 and len(descs) == 1
    assert descs[0] == pbs[0].with_suffix(".desc")
    match = NAME_RE.match(pbs[0].name)
    assert match and match["table"] == "main.default.events"
    desc, rows = read_pb(pbs[0])
    assert [f.name for f in desc.field] == ["id", "name", "score", "flag"]
    assert len(rows) == 4
    assert [r.id for r in rows] == [1, 2, 3, 4]
    assert [r.name if r.HasField("name") else None for r in rows] == ["a", "b", None, "d"]
    assert [r.score if r.HasField("score") else None for r in rows] == [0.5, 1.5, 2.5, None]
    assert [r.flag for r in rows] == [True, False, True, False]
    # Arrow and protobuf files share the sequence numbers (each file its own).
    seqs = sorted(int(NAME_RE.match(p.name)["seq"]) for p in files(tmp_path, "arrows") + pbs)
    assert len(set(seqs)) == len(seqs) == 2


def test_legacy_debug_enabled_writes_both_formats(tmp_path):
    w = ZerobusWrapper("", "events", zerobus_writer_disabled=True, debug_enabled=True,
                       debug_output_dir=str(tmp_path))
    result = w.send_batch(sample_batch())
    assert result.successful_count == 4
    w.shutdown()
    assert len(files(tmp_path, "arrows")) == 1
    assert len(files(tmp_path, "pb")) == 1 and len(files(tmp_path, "desc")) == 1
    assert all(NAME_RE.match(p.name)["table"] == "events" for p in tmp_path.iterdir())


def test_protobuf_only(tmp_path):
    with wrapper(tmp_path, debug_arrow_enabled=False) as w:
        assert w.send_batch(sample_batch()).successful_count == 4
    assert files(tmp_path, "arrows") == []
    assert len(files(tmp_path, "pb")) == 1


def test_arrow_file_readable_after_flush_before_shutdown(tmp_path):
    batch = sample_batch()
    with wrapper(tmp_path) as w:
        assert w.send_batch(batch).successful_count == 4
        w.flush()
        assert read_arrows(tmp_path).equals(pa.Table.from_batches([batch]))


def test_unconvertible_rows_fail_per_row_as_conversion_errors(tmp_path):
    too_big = INT64_MAX + 10
    batch = pa.record_batch({
        "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "big": pa.array([0, too_big, 7, INT64_MAX, too_big + 1], pa.uint64()),
    })
    with wrapper(tmp_path) as w:
        result = w.send_batch(batch)
        assert result.wait(timeout=30)
        assert result.total_rows == 5
        assert result.successful_count == 3 and result.failed_count == 2
        assert result.successful_rows == [0, 2, 3]
        assert result.get_failed_row_indices() == [1, 4]
        assert result.is_partial_success()
        assert result.success is True
        assert result.group_errors_by_type() == {"ConversionError": [1, 4]}
        assert result.get_failed_row_indices_by_error_type("ConversionError") == [1, 4]
        for (index, message), value in zip(result.failed_rows, [too_big, too_big + 1]):
            assert message.startswith("Conversion error: ")
            assert "'big'" in message, message
            assert str(value) in message, message
        stats = result.get_error_statistics()
        assert stats["error_type_counts"] == {"ConversionError": 2}
        assert stats["success_rate"] == pytest.approx(0.6)
        assert stats["failure_rate"] == pytest.approx(0.4)
        assert result.extract_failed_batch(batch).to_pylist() == [
            {"id": 2, "big": too_big}, {"id": 5, "big": too_big + 1}]
        assert result.extract_successful_batch(batch).column("id").to_pylist() == [1, 3, 4]
    # The protobuf file holds the converted rows only.
    (pb,) = files(tmp_path, "pb")
    _, rows = read_pb(pb)
    assert [(r.id, r.big) for r in rows] == [(1, 0), (3, 7), (4, INT64_MAX)]


def test_conversion_failure_in_a_later_batch_of_a_table(tmp_path):
    first = pa.record_batch({"v": pa.array([1, 2], pa.uint64())})
    second = pa.record_batch({"v": pa.array([3, INT64_MAX + 1], pa.uint64())})
    table = pa.Table.from_batches([first, second])
    with wrapper(tmp_path) as w:
        result = w.send_batch(table)
        assert result.total_rows == 4
        assert result.successful_rows == [0, 1, 2]
        assert result.get_failed_row_indices() == [3]
        (message,) = result.get_error_messages()
        assert message.startswith("Conversion error: ") and "'v'" in message
        assert str(INT64_MAX + 1) in message


def test_every_row_failing(tmp_path):
    batch = pa.record_batch({"v": pa.array([INT64_MAX + 1, INT64_MAX + 2], pa.uint64())})
    with wrapper(tmp_path) as w:
        result = w.send_batch(batch)
        assert result.total_rows == 2
        assert result.successful_count == 0 and result.failed_count == 2
        assert result.success is False
        assert result.successful_rows is None
        assert result.extract_successful_batch(batch) is None
        assert result.extract_failed_batch(batch).equals(batch)
        assert result.error is not None and result.error.startswith("Conversion error: ")


def test_empty_batch_is_a_success(tmp_path):
    batch = sample_batch().slice(0, 0)
    with wrapper(tmp_path) as w:
        result = w.send_batch(batch)
        assert result.success is True
        assert result.total_rows == 0
        assert result.successful_count == 0 and result.failed_count == 0
        assert result.get_error_statistics()["success_rate"] == 0.0


def test_short_table_name_allowed_when_writer_disabled(tmp_path):
    with wrapper(tmp_path, table="events") as w:
        assert w.send_batch(sample_batch()).successful_count == 4
    assert {NAME_RE.match(p.name)["table"] for p in tmp_path.iterdir()} == {"events"}


def test_credentials_never_reach_debug_files_or_text(tmp_path):
    with wrapper(tmp_path, client_id="sp-id", client_secret=SECRET,
                 unity_catalog_url="https://ws.example.com") as w:
        result = w.send_batch(sample_batch())
        assert result.successful_count == 4
        for text in (repr(w), repr(w.config), str(w.config), repr(result)):
            assert SECRET not in text
    written = list(tmp_path.iterdir())
    assert written
    for path in written:
        assert SECRET.encode() not in path.read_bytes()
        assert SECRET not in path.name


def test_writer_disabled_without_a_debug_format_is_refused(tmp_path):
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("", "events", zerobus_writer_disabled=True)
    assert str(excinfo.value).startswith("Configuration error: ")
    assert "zerobus_writer_disabled" in str(excinfo.value)
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("", "events", zerobus_writer_disabled=True, debug_arrow_enabled=True)
    assert "debug_output_dir" in str(excinfo.value)


def test_writer_disabled_config_object(tmp_path):
    cfg = WrapperConfiguration("", "main.default.events", zerobus_writer_disabled=True,
                               debug_arrow_enabled=True, debug_output_dir=tmp_path)
    cfg.validate()
    with ZerobusWrapper(cfg) as w:
        assert w.config is cfg
        assert w.send_batch(sample_batch()).successful_count == 4
    assert len(files(tmp_path, "arrows")) == 1
