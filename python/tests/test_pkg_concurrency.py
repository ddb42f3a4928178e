"""End-to-end: one ZerobusWrapper used from many threads and many asyncio tasks at once, with
exact accounting against the rows the local server stored."""

from __future__ import annotations

import asyncio
import threading
import time

import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import TransmissionResult, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

FAST = dict(
    retry_max_attempts=3,
    retry_base_delay_ms=10,
    retry_max_delay_ms=50,
    recovery_retries=2,
    recovery_backoff_ms=10,
    stream_open_timeout_ms=5000,
    ack_timeout_ms=10000,
    flush_timeout_ms=20000,
    failure_cooldown_ms=0,
    cooldown_jitter_ms=0,
)


def settled_table(emu: LocalZerobus, name: str, timeout: float = 15.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def id_batch(start: int, count: int) -> pa.RecordBatch:
    ids = pa.array(range(start, start + count), pa.int64())
    return pa.record_batch({"id": ids, "payload": [f"p{i}" for i in range(start, start + count)]})


def check_accounting(result: TransmissionResult) -> None:
    assert result.successful_count + result.failed_count == result.total_rows
    failed = result.get_failed_row_indices()
    successful = result.get_successful_row_indices()
    assert sorted(failed + successful) == list(range(result.total_rows))
    assert set(result.in_doubt_rows) <= set(failed)


def check_table(table: pa.Table, expected_ids: list) -> None:
    ids = table.column("id").to_pylist()
    assert len(ids) == len(expected_ids)
    assert sorted(ids) == sorted(expected_ids)  # every id exactly once
    payloads = dict(zip(ids, table.column("payload").to_pylist()))
    assert all(payloads[i] == f"p{i}" for i in expected_ids)


def check_stats(stats: dict, batches: int, rows: int) -> None:
    assert stats["batches"] == batches
    assert stats["rows"] == rows
    assert stats["rows_successful"] == rows
    assert stats["rows_failed"] == 0
    assert stats["rows_in_doubt"] == 0


@pytest.mark.parametrize("streams", [1, 3])
def test_eight_threads_twenty_batches_each(streams):
    name = f"main.default.threads_{streams}"
    threads_count, batches_per_thread, rows_per_batch = 8, 20, 25
    results: dict = {}
    errors: list = []
    with LocalZerobus() as emu:
        with ZerobusWrapper(emu.config(name, streams_per_table=streams, **FAST)) as wrapper:
            barrier = threading.Barrier(threads_count)

            def worker(t: int) -> None:
                try:
                    barrier.wait()
                    mine = []
                    for b in range(batches_per_thread):
                        start = (t * batches_per_thread + b) * rows_per_batch
                        mine.append(wrapper.send_batch(id_batch(start, rows_per_batch)))
                    # Plain reading from each thread waits for that thread's results.
                    results[t] = [(r.total_rows, r.successful_count, r.failed_count) for r in mine]
                    for r in mine:
                        check_accounting(r)
                except BaseException as error:  # reported by the main thread
                    errors.append(error)

            threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not any(thread.is_alive() for thread in threads)
            assert errors == []
            total = threads_count * batches_per_thread * rows_per_batch
            flat = [entry for t in range(threads_count) for entry in results[t]]
            assert len(flat) == threads_count * batches_per_thread
            assert all(entry == (rows_per_batch, rows_per_batch, 0) for entry in flat)
            assert sum(entry[1] for entry in flat) == total
            stats = wrapper.stats()
            check_stats(stats, threads_count * batches_per_thread, total)
            assert len(stats["streams"]) == streams
            assert sum(s["records_acked"] for s in stats["streams"]) == total
        table = settled_table(emu, name)
    check_table(table, list(range(total)))


@pytest.mark.asyncio
async def test_sixty_four_tasks_at_once():
    name = "main.default.tasks"
    tasks_count, rows_per_batch = 64, 40
    with LocalZerobus(faults=[{"ack_delay_ms": 50}]) as emu:
        async with ZerobusWrapper(emu.config(name, streams_per_table=2, **FAST)) as wrapper:

            async def one(t: int) -> TransmissionResult:
                return await wrapper.send_batch(id_batch(t * rows_per_batch, rows_per_batch))

            results = await asyncio.gather(*(one(t) for t in range(tasks_count)))
            assert len(results) == tasks_count
            for result in results:
                assert result.done()
                check_accounting(result)
                assert result.total_rows == rows_per_batch
                assert result.failed_count == 0
            total = tasks_count * rows_per_batch
            assert sum(r.successful_count for r in results) == total
            check_stats(wrapper.stats(), tasks_count, total)
        table = settled_table(emu, name)
    check_table(table, list(range(total)))


@pytest.mark.asyncio
async def test_event_loop_keeps_running_while_sends_are_pending():
    name = "main.default.ticker"
    ack_delay_s = 0.8
    ticks: list = []
    with LocalZerobus(faults=[{"ack_delay_ms": int(ack_delay_s * 1000)}]) as emu:
        async with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)
            started = time.monotonic()
            results = await asyncio.gather(
                *(wrapper.send_batch(id_batch(i * 10, 10)) for i in range(16))
            )
            finished = time.monotonic()
            stop.set()
            await ticking
            assert finished - started >= ack_delay_s * 0.9  # the sends really were pending
            during = [t for t in ticks if started <= t <= finished]
            # A blocked loop would show one gap as long as the ack delay; 10 ms ticks keep coming.
            assert len(during) >= 10
            gaps = [b - a for a, b in zip(during, during[1:])]
            assert max(gaps) < ack_delay_s / 2
            assert sum(r.successful_count for r in results) == 160
            # Awaited flush does not block the loop either.
            ticks.clear()
            stop.clear()
            ticking = asyncio.create_task(ticker())
            pending = [wrapper.send_batch(id_batch(1000 + i * 10, 10)) for i in range(4)]
            await asyncio.sleep(0.05)
            flush_started = time.monotonic()
            await wrapper.flush()
            flush_finished = time.monotonic()
            stop.set()
            await ticking
            assert all(r.done() for r in pending)
            during = [t for t in ticks if flush_started <= t <= flush_finished]
            assert flush_finished - flush_started >= ack_delay_s / 2
            assert len(during) >= 5
            assert max(b - a for a, b in zip(during, during[1:])) < ack_delay_s / 2
        table = settled_table(emu, name)
    expected = list(range(160)) + list(range(1000, 1040))
    check_table(table, expected)


def test_threads_and_an_event_loop_share_one_wrapper():
    name = "main.default.mixed"
    with LocalZerobus(faults=[{"ack_delay_ms": 30}]) as emu:
        with ZerobusWrapper(emu.config(name, streams_per_table=2, **FAST)) as wrapper:
            thread_results: list = []

            def plain_sender(t: int) -> None:
                for b in range(10):
                    thread_results.append(wrapper.send_batch(id_batch((t * 10 + b) * 10, 10)))

            async def async_senders() -> list:
                return await asyncio.gather(
                    *(wrapper.send_batch(id_batch(10_000 + i * 10, 10)) for i in range(30))
                )

            threads = [threading.Thread(target=plain_sender, args=(t,)) for t in range(4)]
            for thread in threads:
                thread.start()
            async_results = asyncio.run(async_senders())
            for thread in threads:
                thread.join(60)
            wrapper.flush()
            assert all(r.done() for r in thread_results)
            all_results = thread_results + list(async_results)
            assert len(all_results) == 70
            for r in all_results:
                check_accounting(r)
            assert sum(r.successful_count for r in all_results) == 700
            check_stats(wrapper.stats(), 70, 700)
        table = settled_table(emu, name)
    check_table(table, list(range(400)) + list(range(10_000, 10_300)))


def test_one_result_read_from_many_threads():
    name = "main.default.shared_result"
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(id_batch(0, 100))
            seen: list = []
            lock = threading.Lock()

            def reader() -> None:
                values = (result.successful_count, tuple(result.successful_rows), result.failed_rows)
                with lock:
                    seen.append(values)

            threads = [threading.Thread(target=reader) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert seen == [(100, tuple(range(100)), None)] * 8


@pytest.mark.asyncio
async def test_full_inflight_budget_does_not_block_the_event_loop():
    # One request in flight at a time, acks 500 ms late: sends wait for room. Waiting for room
    # must not happen on the event loop's thread either.
    name = "main.default.budget"
    ack_delay_s = 0.5
    ticks: list = []
    with LocalZerobus(faults=[{"ack_delay_ms": int(ack_delay_s * 1000)}]) as emu:
        async with ZerobusWrapper(emu.config(name, max_inflight_requests=1, **FAST)) as wrapper:
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            async def one(i: int) -> TransmissionResult:
                return await wrapper.send_batch(id_batch(i * 10, 10))

            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)
            started = time.monotonic()
            results = await asyncio.gather(*(one(i) for i in range(4)))
            finished = time.monotonic()
            stop.set()
            await ticking
            assert sum(r.successful_count for r in results) == 40
            assert finished - started >= 3 * ack_delay_s * 0.9  # really one at a time
            during = [t for t in ticks if started <= t <= finished]
            gaps = [b - a for a, b in zip(during, during[1:])]
            assert gaps and max(gaps) < ack_delay_s / 2, f"event loop blocked for {max(gaps):.2f} s"
        table = settled_table(emu, name)
    check_table(table, list(range(40)))


@pytest.mark.asyncio
async def test_cancelled_await_leaves_the_send_going():
    name = "main.default.cancelled"
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        async with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(id_batch(0, 10))
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(result, 0.2)
            assert not result.done()
            # Two tasks awaiting the same result, then the acks are released.
            waiters = [asyncio.ensure_future(_await(result)) for _ in range(2)]
            await asyncio.sleep(0.05)
            emu.clear_faults()
            first, second = await asyncio.gather(*waiters)
            assert first is result and second is result
            assert result.successful_count == 10
        table = settled_table(emu, name)
    check_table(table, list(range(10)))


async def _await(result: TransmissionResult) -> TransmissionResult:
    return await result


def test_event_loops_in_several_threads():
    name = "main.default.loops"
    results: list = []
    lock = threading.Lock()
    with LocalZerobus(faults=[{"ack_delay_ms": 50}]) as emu:
        with ZerobusWrapper(emu.config(name, streams_per_table=2, **FAST)) as wrapper:

            def thread_main(k: int) -> None:
                async def gather() -> list:
                    return await asyncio.gather(
                        *(wrapper.send_batch(id_batch((k * 16 + i) * 10, 10)) for i in range(16))
                    )

                done = asyncio.run(gather())
                with lock:
                    results.extend(done)

            threads = [threading.Thread(target=thread_main, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert len(results) == 64
            for r in results:
                check_accounting(r)
            assert sum(r.successful_count for r in results) == 640
            check_stats(wrapper.stats(), 64, 640)
        table = settled_table(emu, name)
    check_table(table, list(range(640)))


def test_plain_waiting_releases_the_gil():
    name = "main.default.gil"
    counter = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counter[0] += 1

    with LocalZerobus(faults=[{"ack_delay_ms": 500}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            result = wrapper.send_batch(id_batch(0, 10))
            spinner = threading.Thread(target=spin)
            spinner.start()
            time.sleep(0.05)
            before = counter[0]
            assert result.successful_count == 10  # waits about 0.5 s here
            during = counter[0] - before
            stop.set()
            spinner.join()
    # A Python thread ran a lot of bytecode while the main thread waited.
    assert during > 10_000
