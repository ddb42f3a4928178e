"""C++ log records reach Python's `logging` under the logger `arrow_zerobus_sdk_wrapper`; the
level set there is honoured by the C++ side; no secret ever appears in a record."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import ZerobusWrapper, _core, _logging
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

LOGGER = "arrow_zerobus_sdk_wrapper"
SECRET = "logging-test-Secret-51aa"


@contextmanager
def logger_level(level: int):
    """Sets the package logger's level; restores it (and pushes it to C++) afterwards."""
    logger = logging.getLogger(LOGGER)
    before = logger.level
    logger.setLevel(level)
    try:
        yield logger
    finally:
        logger.setLevel(before)
        _logging.sync_level()


@contextmanager
def spy_on_cpp_records():
    """Replaces the package's C++ log handler with a recorder (restored afterwards), so a test
    sees what the C++ side produced, before Python's own level filtering."""
    seen = []
    _core.set_log_handler(lambda level, message: seen.append((level, message)))
    try:
        yield seen
    finally:
        _core.set_log_handler(_logging._handle)


def writer_disabled_wrapper(tmp_path, **options) -> ZerobusWrapper:
    return ZerobusWrapper("", "main.default.t", zerobus_writer_disabled=True,
                          debug_arrow_enabled=True, debug_output_dir=str(tmp_path), **options)


def records_of(caplog):
    return [r for r in caplog.records if r.name == LOGGER]


def test_package_logger_name():
    assert _logging.logger is logging.getLogger(LOGGER)


@pytest.mark.parametrize("severity,levelno", [
    (10, logging.DEBUG), (20, logging.INFO), (30, logging.WARNING), (40, logging.ERROR),
])
def test_cpp_levels_map_to_logging_levels(caplog, tmp_path, severity, levelno):
    caplog.set_level(logging.DEBUG)
    with logger_level(logging.DEBUG):
        writer_disabled_wrapper(tmp_path).shutdown()  # an entry point: pushes the level to C++
        caplog.clear()
        _core.log(severity, f"hello from C++ at {severity}")
    got = [(r.levelno, r.getMessage()) for r in records_of(caplog)]
    assert got == [(levelno, f"hello from C++ at {severity}")]
    assert records_of(caplog)[0].levelname == logging.getLevelName(levelno)


def test_logger_level_warning_stops_info_records_in_cpp(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    with logger_level(logging.WARNING):
        writer_disabled_wrapper(tmp_path).shutdown()
        assert _core.get_log_level() == 30
        with spy_on_cpp_records() as seen:
            _core.log(10, "debug record")
            _core.log(20, "info record")
            _core.log(30, "warning record")
            _core.log(40, "error record")
        # Produced by C++ only at WARNING and above: nothing below reached Python at all.
        assert seen == [(30, "warning record"), (40, "error record")]
        caplog.clear()
        _core.log(20, "info record")
        _core.log(30, "warning record")
    assert [(r.levelno, r.getMessage()) for r in records_of(caplog)] == [
        (logging.WARNING, "warning record")]


def test_level_change_is_honoured_at_the_next_entry_point(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    with logger_level(logging.ERROR):
        w = writer_disabled_wrapper(tmp_path)
        assert _core.get_log_level() == 40
        logging.getLogger(LOGGER).setLevel(logging.DEBUG)
        w.send_batch(pa.record_batch({"id": pa.array([1], pa.int64())})).wait()
        assert _core.get_log_level() == 10
        caplog.clear()
        _core.log(10, "now wanted")
        logging.getLogger(LOGGER).setLevel(logging.WARNING)
        w.flush()
        assert _core.get_log_level() == 30
        _core.log(10, "not wanted any more")
        w.shutdown()
    assert [r.getMessage() for r in records_of(caplog)] == ["now wanted"]


def test_level_inherited_from_parent_logger(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    root = logging.getLogger()
    with logger_level(logging.NOTSET):
        before = root.level
        root.setLevel(logging.ERROR)
        try:
            writer_disabled_wrapper(tmp_path).shutdown()
            assert _core.get_log_level() == 40
            with spy_on_cpp_records() as seen:
                _core.log(30, "warning")
                _core.log(40, "error")
            assert seen == [(40, "error")]
        finally:
            root.setLevel(before)


def test_debug_records_flow_from_a_real_send_and_hide_the_secret(caplog):
    caplog.set_level(logging.DEBUG)
    batch = pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())})
    with LocalZerobus(client_secret=SECRET) as emu:
        with logger_level(logging.DEBUG):
            with ZerobusWrapper(emu.config("main.s.t")) as w:
                result = w.send_batch(batch)
                assert result.wait(timeout=60)
                assert result.successful_count == 3
        debug = [r for r in records_of(caplog) if r.levelno == logging.DEBUG]
        assert debug, "no debug record from the C++ side"
        assert any(r.getMessage().startswith("stream: ") for r in debug)
        assert SECRET not in caplog.text
        for record in records_of(caplog):
            assert SECRET not in record.getMessage()


def test_no_debug_records_at_warning(caplog):
    caplog.set_level(logging.DEBUG)
    batch = pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())})
    with LocalZerobus(client_secret=SECRET) as emu:
        with logger_level(logging.WARNING):
            with spy_on_cpp_records() as seen:
                with ZerobusWrapper(emu.config("main.s.t")) as w:
                    result = w.send_batch(batch)
                    assert result.wait(timeout=60)
                    assert result.successful_count == 3
    assert [m for level, m in seen if level < 30] == []
    assert [r for r in records_of(caplog) if r.levelno < logging.WARNING] == []


def test_retry_warning_from_a_retryable_failure_without_the_secret(caplog):
    caplog.set_level(logging.DEBUG)
    batch = pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())})
    with LocalZerobus(client_secret=SECRET) as emu:
        # The first stream ends at once with UNAVAILABLE; with no stream-level recovery the
        # send fails retryably and the wrapper retries it (and says so at WARNING).
        emu.add_fault({"end_stream": {"after_requests": 0, "code": "UNAVAILABLE",
                                      "message": "6002 Stream timeout reached"},
                       "times": 1})
        cfg = emu.config("main.s.t", recovery_retries=0, retry_max_attempts=4,
                         retry_base_delay_ms=10, retry_max_delay_ms=50)
        with logger_level(logging.INFO):
            with ZerobusWrapper(cfg) as w:
                result = w.send_batch(batch)
                assert result.wait(timeout=60)
                assert result.successful_count == 3 and result.failed_count == 0
                assert result.attempts == 2
                assert w.stats()["retries"] == 1
        warnings = [r for r in records_of(caplog) if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        text = warnings[0].getMessage()
        assert "table main.s.t" in text
        assert "not acknowledged after attempt 1 of 4" in text
        assert "UNAVAILABLE" in text and "next attempt in" in text
        assert SECRET not in caplog.text
        assert emu.read_table("main.s.t").column("id").to_pylist() == [1, 2, 3]
