"""End-to-end: faults injected by the local Zerobus server (docs/emulator.md, "Faults") and the
exact per-row accounting the wrapper must keep through them.

For every result: successful + failed == total, in-doubt rows are failed rows whose message says
so. Against the table: every row reported successful is there, no row that failed without being
in doubt is there, nothing else is there, and duplicates are bounded by the replays the wrapper
counted (at-least-once delivery)."""

from __future__ import annotations

import collections
import time

import pyarrow as pa

from arrow_zerobus_sdk_wrapper import TransmissionResult, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

IN_DOUBT = "in doubt"

FAST = dict(
    retry_max_attempts=3,
    retry_base_delay_ms=10,
    retry_max_delay_ms=50,
    recovery_retries=1,
    recovery_backoff_ms=10,
    stream_open_timeout_ms=3000,
    ack_timeout_ms=3000,
    flush_timeout_ms=5000,
    failure_cooldown_ms=0,
    cooldown_jitter_ms=0,
)


def settled_table(emu: LocalZerobus, name: str, timeout: float = 15.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def id_batch(start: int, count: int) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(range(start, start + count), pa.int64()),
                            "v": [f"v{i}" for i in range(start, start + count)]})


def check_result(result: TransmissionResult) -> None:
    assert result.done()
    assert result.successful_count + result.failed_count == result.total_rows
    failed = result.get_failed_row_indices()
    successful = result.get_successful_row_indices()
    assert len(failed) == result.failed_count and len(successful) == result.successful_count
    assert sorted(failed + successful) == list(range(result.total_rows))
    assert result.in_doubt_count == len(result.in_doubt_rows)
    in_doubt = set(result.in_doubt_rows)
    assert in_doubt <= set(failed)
    for index, message in result.failed_rows or []:
        assert (IN_DOUBT in message) == (index in in_doubt), (index, message)
    assert result.success == (result.successful_count > 0 or result.total_rows == 0)
    if result.failed_count:
        assert result.error is not None


def check_accounting(sent: list, table: pa.Table, stats: dict) -> dict:
    """sent: (batch, result) pairs (ids unique over all batches). Returns a summary."""
    successful_ids, doubtful_ids, lost_ids, all_ids = set(), set(), set(), set()
    for batch, result in sent:
        check_result(result)
        ids = batch.column("id").to_pylist()
        all_ids.update(ids)
        in_doubt = set(result.in_doubt_rows)
        successful_ids.update(ids[i] for i in result.get_successful_row_indices())
        for i in result.get_failed_row_indices():
            (doubtful_ids if i in in_doubt else lost_ids).add(ids[i])
    counts = collections.Counter(table.column("id").to_pylist())
    assert set(counts) <= all_ids, "the table holds rows that were never sent"
    assert successful_ids <= set(counts), "rows reported successful are missing"
    assert not (lost_ids & set(counts)), "rows failed (not in doubt) are in the table"
    # Values are the ones sent.
    for row in table.to_pylist():
        assert row["v"] == f"v{row['id']}"
    duplicates = sum(count - 1 for count in counts.values())
    assert duplicates <= stats["replayed_records"]
    assert table.num_rows <= stats["rows_successful"] + stats["rows_in_doubt"] + stats["replayed_records"]
    if not lost_ids and not doubtful_ids:
        assert table.num_rows <= stats["rows_successful"] + stats["replayed_records"]
    results = [result for _, result in sent]
    assert stats["rows"] == sum(r.total_rows for r in results)
    assert stats["rows_successful"] == sum(r.successful_count for r in results) == len(successful_ids)
    assert stats["rows_failed"] == sum(r.failed_count for r in results)
    assert stats["rows_in_doubt"] == sum(r.in_doubt_count for r in results) == len(doubtful_ids)
    return {"successful": successful_ids, "in_doubt": doubtful_ids, "lost": lost_ids,
            "counts": counts, "duplicates": duplicates}


def send_all(wrapper: ZerobusWrapper, count: int, rows: int = 10, first: int = 0) -> list:
    batches = [id_batch(first + i * rows, rows) for i in range(count)]
    results = [wrapper.send_batch(b) for b in batches]  # pipelined
    for r in results:
        r.wait(60)
    return list(zip(batches, results))


def closed_stream_codes(emu: LocalZerobus) -> list:
    return [s.get("status_code") for s in emu.stats()["streams"] if not s["open"]]


# ---- stream ends (UNAVAILABLE) ------------------------------------------------------------------


def test_stream_end_unavailable_is_recovered_with_counted_replays():
    name = "main.default.end_once"
    fault = {"end_stream": {"after_requests": 3, "code": "UNAVAILABLE"}, "times": 1}
    with LocalZerobus(faults=[fault]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            sent = send_all(wrapper, 8)
            assert all(r.successful_count == 10 for _, r in sent)
            assert all(r.in_doubt_rows == [] for _, r in sent)
        stats = wrapper.stats()
        table = settled_table(emu, name)
        summary = check_accounting(sent, table, stats)
        assert summary["successful"] == set(range(80))
        assert set(summary["counts"]) == set(range(80))
        # The fault fired: the first stream ended with UNAVAILABLE (14) and requests were replayed.
        assert 14 in closed_stream_codes(emu)
        assert stats["replayed_records"] > 0
        assert table.num_rows >= 80


def test_stream_end_on_every_stream_exhausts_the_retries():
    name = "main.default.end_always"
    # Every stream ends right after create_stream: nothing is ever acknowledged.
    fault = {"end_stream": {"after_requests": 0, "code": "UNAVAILABLE"}, "times": 0}
    started = time.monotonic()
    with LocalZerobus(faults=[fault]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            sent = send_all(wrapper, 6)
        stats = wrapper.stats()
        for _, result in sent:
            assert result.success is False
            assert result.successful_count == 0 and result.failed_count == 10
            assert result.attempts == FAST["retry_max_attempts"]
            assert result.error.startswith("Retry exhausted: ")
            assert "UNAVAILABLE" in result.error
            assert result.group_errors_by_type() == {"RetryExhausted": list(range(10))}
            assert result.get_error_statistics()["failure_rate"] == 1.0
            assert result.extract_failed_batch(sent[0][0]).num_rows == 10
        assert stats["retries"] == 6 * (FAST["retry_max_attempts"] - 1)
        table = settled_table(emu, name)
        summary = check_accounting(sent, table, stats)
        assert summary["successful"] == set()
        assert table.num_rows == 0  # no request was ever appended
    assert time.monotonic() - started < 20


def test_copies_of_a_row_on_the_wire_are_bounded_by_max_sends_per_row():
    name = "main.default.end_after_one"
    # Every stream ends after one request, which the server stored: each send of a row lands.
    fault = {"end_stream": {"after_requests": 1, "code": "UNAVAILABLE"}, "times": 0,
             "ack_delay_ms": 150}
    options = dict(FAST, retry_max_attempts=5, recovery_retries=4, max_sends_per_row=2)
    with LocalZerobus(faults=[fault]) as emu:
        with ZerobusWrapper(emu.config(name, **options)) as wrapper:
            sent = send_all(wrapper, 1, rows=50)
        stats = wrapper.stats()
        (_, result), = sent
        check_result(result)
        assert result.failed_count == 50 and result.in_doubt_count == 50
        assert result.wire_copies == 100
        assert result.rows_sent_more_than_once == 50
        assert "max_sends_per_row" in result.error
        assert stats["wire_copies"] == 100 and stats["rows_sent_more_than_once"] == 50
        # Whatever of those sends the server kept: never more than two copies of a row.
        counts = collections.Counter(settled_table(emu, name).column("id").to_pylist())
        assert max(counts.values(), default=0) <= 2
        assert sum(counts.values()) <= result.wire_copies


def test_stream_end_after_two_requests_on_every_stream():
    name = "main.default.end_often"
    # Each stream takes two requests and ends: acks come only for requests that were alone
    # on a stream long enough; the others are replayed or retried. Whatever the timing, the
    # accounting is exact.
    fault = {"end_stream": {"after_requests": 2, "code": "UNAVAILABLE"}, "times": 0}
    with LocalZerobus(faults=[fault]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            sent = send_all(wrapper, 6)
            sent += [(b, wrapper.send_batch(b)) for b in (id_batch(100 + i * 10, 10) for i in range(4))]
            for _, r in sent:
                r.wait(60)
        stats = wrapper.stats()
        assert stats["streams_failed"] + stats["replayed_records"] > 0
        for _, result in sent:
            if result.failed_count:
                assert result.error.startswith("Retry exhausted: ")
        table = settled_table(emu, name)
        check_accounting(sent, table, stats)
        assert 14 in closed_stream_codes(emu)


def test_non_retryable_stream_end_fails_at_once():
    name = "main.default.end_fatal"
    fault = {"end_stream": {"after_requests": 1, "code": "INVALID_ARGUMENT", "message": "bad request"},
             "times": 1}
    with LocalZerobus(faults=[fault]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            first = id_batch(0, 10)
            failed = wrapper.send_batch(first)
            assert failed.wait(30)
            check_result(failed)
            assert failed.success is False and failed.failed_count == 10
            assert failed.attempts == 1  # not retried
            assert failed.error.startswith("Transmission error: ")
            assert "INVALID_ARGUMENT" in failed.error and "bad request" in failed.error
            assert "Retry exhausted" not in failed.error
            assert failed.group_errors_by_type() == {"TransmissionError": list(range(10))}
            # Its request reached the server (the fault ends the stream after appending it).
            assert failed.in_doubt_rows == list(range(10))
            assert wrapper.stats()["retries"] == 0
            assert wrapper.stats()["replayed_records"] == 0
            # The failed stream is replaced: the next batch goes out on a fresh one.
            second = id_batch(10, 10)
            ok = wrapper.send_batch(second)
            assert ok.successful_count == 10
        stats = wrapper.stats()
        assert stats["streams_failed"] >= 1
        table = settled_table(emu, name)
        summary = check_accounting([(first, failed), (second, ok)], table, stats)
        assert set(range(10, 20)) <= set(summary["counts"])
        assert 3 in closed_stream_codes(emu)  # INVALID_ARGUMENT


# ---- acks withheld or late ----------------------------------------------------------------------


def test_withheld_acks_fail_rows_as_in_doubt_quickly():
    name = "main.default.withheld"
    options = dict(FAST, ack_timeout_ms=300, flush_timeout_ms=1000, recovery_retries=0,
                   retry_max_attempts=1)
    started = time.monotonic()
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        with ZerobusWrapper(emu.config(name, **options)) as wrapper:
            sent = send_all(wrapper, 3)
        elapsed = time.monotonic() - started
        stats = wrapper.stats()
        for _, result in sent:
            assert result.success is False
            assert result.failed_count == 10
            assert result.in_doubt_rows == list(range(10))
            assert all(IN_DOUBT in message for message in result.get_error_messages())
            assert "300 ms" in result.error or "ack" in result.error
        table = settled_table(emu, name)
        summary = check_accounting(sent, table, stats)
        assert summary["in_doubt"] == set(range(30))
        # Acks were withheld, not rows: what reached the server is stored.
        assert set(summary["counts"]) <= set(range(30))
    assert elapsed < 8


def test_withheld_acks_released_in_time_deliver_every_row_once():
    name = "main.default.released"
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            batches = [id_batch(i * 10, 10) for i in range(4)]
            results = [wrapper.send_batch(b) for b in batches]
            time.sleep(0.3)
            assert not any(r.done() for r in results)
            emu.clear_faults()
            for r in results:
                assert r.wait(10)
            assert all(r.successful_count == 10 for r in results)
        stats = wrapper.stats()
        assert stats["replayed_records"] == 0
        table = settled_table(emu, name)
        summary = check_accounting(list(zip(batches, results)), table, stats)
        assert summary["duplicates"] == 0
        assert sorted(table.column("id").to_pylist()) == list(range(40))


def test_ack_delay_within_the_ack_timeout():
    name = "main.default.delayed"
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            sent = send_all(wrapper, 5)
            for _, result in sent:
                assert result.successful_count == 10
                assert result.latency_ms >= 300
                assert result.attempts == 1
        stats = wrapper.stats()
        assert stats["replayed_records"] == 0 and stats["retries"] == 0
        table = settled_table(emu, name)
        summary = check_accounting(sent, table, stats)
        assert summary["duplicates"] == 0 and table.num_rows == 50


def test_ack_delay_beyond_the_ack_timeout():
    name = "main.default.too_late"
    options = dict(FAST, ack_timeout_ms=250, retry_max_attempts=2, recovery_retries=1)
    started = time.monotonic()
    with LocalZerobus(faults=[{"ack_delay_ms": 700}]) as emu:
        with ZerobusWrapper(emu.config(name, **options)) as wrapper:
            sent = send_all(wrapper, 3)
        stats = wrapper.stats()
        # The acks never come in time: every attempt times out and the rows end in doubt.
        for _, result in sent:
            assert result.failed_count == 10
            assert result.in_doubt_rows == list(range(10))
            assert result.error.startswith("Retry exhausted: ")
        assert stats["streams_failed"] >= 1 and stats["replayed_records"] > 0
        table = settled_table(emu, name)
        summary = check_accounting(sent, table, stats)
        # Rows were durable each time they were sent: duplicates, all counted as replays.
        assert set(summary["counts"]) == set(range(30))
        assert summary["duplicates"] > 0
    assert time.monotonic() - started < 15


def test_close_signal_switches_streams_without_losing_rows():
    name = "main.default.close_signal"
    fault = {"close_signal": {"after_requests": 2, "duration_ms": 300}, "times": 1}
    with LocalZerobus(faults=[fault]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            sent = send_all(wrapper, 6)
            assert all(r.successful_count == 10 for _, r in sent)
        stats = wrapper.stats()
        table = settled_table(emu, name)
        summary = check_accounting(sent, table, stats)
        assert set(summary["counts"]) == set(range(60))
        assert any(s["close_signals"] > 0 for s in emu.stats()["streams"])


# ---- refusals -----------------------------------------------------------------------------------


def test_pipeline_blocked_starts_a_cooldown():
    name = "main.default.blocked"
    options = dict(FAST, pipeline_blocked_cooldown_ms=500, cooldown_jitter_ms=0)
    with LocalZerobus() as emu:
        emu.add_fault({"block_creation_s": 0.6, "table": name})
        with ZerobusWrapper(emu.config(name, **options)) as wrapper:
            first_batch = id_batch(0, 10)
            first = wrapper.send_batch(first_batch)
            assert first.wait(30)
            check_result(first)
            assert first.failed_count == 10 and first.in_doubt_rows == []
            assert "6006" in first.error
            cooldown = wrapper.cooldown()
            assert cooldown is not None
            assert "6006" in cooldown["reason"]
            assert 0 < cooldown["remaining_ms"] <= 500
            refused_batch = id_batch(10, 10)
            refused = wrapper.send_batch(refused_batch)
            assert refused.wait(30)
            check_result(refused)
            assert refused.failed_count == 10 and refused.in_doubt_rows == []
            assert refused.error.startswith("Transmission error: cool-down in force")
            assert "no row was sent" in refused.error
            assert refused.batch_size_bytes == 0
            time.sleep(0.8)  # the cool-down and the block are over
            assert wrapper.cooldown() is None
            later_batch = id_batch(20, 10)
            later = wrapper.send_batch(later_batch)
            assert later.successful_count == 10
            stats = wrapper.stats()
            assert stats["cooldowns_started"] == 1
            assert stats["batches_refused_in_cooldown"] == 1
        table = settled_table(emu, name)
        summary = check_accounting(
            [(first_batch, first), (refused_batch, refused), (later_batch, later)], table, stats
        )
        assert sorted(summary["counts"]) == list(range(20, 30)) and summary["duplicates"] == 0


def test_revoked_tokens_are_refreshed_on_recovery():
    name = "main.default.tokens"
    with LocalZerobus() as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            before = send_all(wrapper, 2)
            assert all(r.successful_count == 10 for _, r in before)
            issued = emu.stats()["tokens_issued"]
            emu.add_fault({"revoke_tokens": True})
            emu.add_fault({"end_stream": {"after_requests": 0, "code": "UNAVAILABLE"}, "times": 1})
            after = send_all(wrapper, 2, first=20)
            assert all(r.successful_count == 10 for _, r in after)
        stats = wrapper.stats()
        table = settled_table(emu, name)
        summary = check_accounting(before + after, table, stats)
        assert set(summary["counts"]) == set(range(40))
        assert emu.stats()["tokens_issued"] > issued


# ---- per-result replay counts ------------------------------------------------------------------


def test_each_result_counts_its_own_replays():
    """Streams ended after two requests (acks held back, so requests are in flight when they
    end): every result says how many of its row copies went on the wire again, the sum equals the
    wrapper's counter, and the table holds no more duplicates than that."""
    name = "main.default.replays"
    with LocalZerobus() as emu:
        emu.add_fault({"end_stream": {"after_requests": 2, "code": "UNAVAILABLE"}, "times": 3,
                       "ack_delay_ms": 100})
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            sent = send_all(wrapper, 10, rows=1000)
            wrapper.flush()
            stats = wrapper.stats()
        results = [r for _, r in sent]
        assert all(r.successful_count == 1000 for r in results)
        replayed = sum(r.replayed_rows for r in results)
        assert replayed > 0
        assert replayed == stats["replayed_records"]
        assert sum(r.retried_rows for r in results) == stats["rows_retried"]
        table = settled_table(emu, name)
        ids = table.column("id").to_pylist()
        assert set(ids) == set(range(10_000))
        assert len(ids) - 10_000 <= replayed
