"""asyncio: 64 sends in flight at once from 64 tasks, each awaited without blocking the loop.

`await wrapper.send_batch(batch)` waits for the acknowledgements without a thread per send;
the event loop keeps running (a heartbeat task counts its ticks meanwhile). Runs against
LocalZerobus: no network, no Databricks.

Usage: python3 examples/python_asyncio.py
"""
import asyncio
import os
import sys
import time
import traceback

import pyarrow as pa

from arrow_zerobus_sdk_wrapper import TransmissionResult, ZerobusWrapper
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

TABLE = "main.shop.orders"
TASKS = 64
ROWS_PER_BATCH = 500

SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.int64(), nullable=False),
        pa.field("task", pa.int32(), nullable=False),
        pa.field("amount_cents", pa.int64()),
    ]
)
DECLARATION = {
    "columns": [
        {"name": "order_id", "type": "bigint", "nullable": False},
        {"name": "task", "type": "int", "nullable": False},
        {"name": "amount_cents", "type": "bigint"},
    ]
}


def orders_of(task: int) -> pa.RecordBatch:
    first = task * ROWS_PER_BATCH
    ids = list(range(first, first + ROWS_PER_BATCH))
    return pa.record_batch(
        [
            pa.array(ids, pa.int64()),
            pa.array([task] * ROWS_PER_BATCH, pa.int32()),
            pa.array([(i * 37) % 10_000 for i in ids], pa.int64()),
        ],
        schema=SCHEMA,
    )


async def producer(wrapper: ZerobusWrapper, task: int) -> TransmissionResult:
    batch = orders_of(task)
    result = await wrapper.send_batch(batch)  # suspends this task only
    if result.has_failed_rows():
        print(f"task {task}: {result.failed_count} rows failed: {result.error}")
    return result


async def heartbeat(stop: asyncio.Event) -> int:
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.001)
        ticks += 1
    return ticks


async def send_all(config) -> tuple:
    stop = asyncio.Event()
    beats = asyncio.create_task(heartbeat(stop))
    # `async with` shuts the wrapper down on exit without blocking the loop.
    async with ZerobusWrapper(config) as wrapper:
        started = time.perf_counter()
        results = await asyncio.gather(*(producer(wrapper, task) for task in range(TASKS)))
        elapsed = time.perf_counter() - started
        await wrapper.flush()  # awaitable inside a running loop
        stats = wrapper.stats()
    stop.set()
    return results, elapsed, await beats, stats


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        raise SystemExit(1)


def main() -> int:
    with LocalZerobus(tables={TABLE: DECLARATION}, strict=True) as zerobus:
        # Two streams to the table; the 64 concurrent sends are spread over them.
        config = zerobus.config(TABLE, streams_per_table=2)
        results, elapsed, ticks, stats = asyncio.run(send_all(config))

        delivered = sum(r.successful_count for r in results)
        failed = sum(r.failed_count for r in results)
        print(f"{len(results)} concurrent sends in {elapsed * 1000:.0f} ms: "
              f"{delivered} rows delivered, {failed} failed")
        print(f"event loop heartbeat ticks meanwhile: {ticks}")
        print(f"wrapper stats: batches={stats['batches']} rows_successful={stats['rows_successful']} "
              f"streams_opened={stats['streams_opened']}")

        landed = zerobus.read_table(TABLE)
        print(f"read back {landed.num_rows} rows from {TABLE}")

    total = TASKS * ROWS_PER_BATCH
    check(len(results) == TASKS, f"{TASKS} results")
    check(all(isinstance(r, TransmissionResult) for r in results), "await gives the result")
    check(failed == 0 and delivered == total, f"{total} rows delivered, none failed")
    check(stats["batches"] == TASKS and stats["rows_successful"] == total, "wrapper stats")
    check(landed.num_rows == total, f"{total} rows in the table, found {landed.num_rows}")
    ids = landed.column("order_id").to_pylist()
    check(sorted(ids) == list(range(total)), "every order exactly once")
    per_task = landed.group_by("task").aggregate([("order_id", "count")])
    check(per_task.num_rows == TASKS and
          set(per_task.column("order_id_count").to_pylist()) == {ROWS_PER_BATCH},
          f"{ROWS_PER_BATCH} rows from each of the {TASKS} tasks")
    print("OK")
    return 0


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        status = 1
    # Reading the table loads deltalake, which (1.6.6 with pyarrow 26) can abort during
    # interpreter teardown after all work is done; leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
