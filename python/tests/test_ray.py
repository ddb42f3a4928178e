"""Ray Data: ZerobusDatasink against the packaged local Zerobus server, on a local Ray cluster.

The Ray workers reach the server the test process started over loopback. Rows are read back from
the Delta tables the server writes (deltalake) and compared with what was written; each job's
summary is checked against the table.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ray
import ray.cloudpickle

from arrow_zerobus_sdk_wrapper import ConfigurationError, WrapperConfiguration
from arrow_zerobus_sdk_wrapper.ray import QUARANTINE_COLUMNS, FailedRowsError, ZerobusDatasink
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

REPO = Path(__file__).resolve().parents[2]
INT64_MAX = 2**63 - 1

# Short timeouts and retries so that no test waits long for anything.
FAST = dict(
    retry_max_attempts=3,
    retry_base_delay_ms=10,
    retry_max_delay_ms=50,
    recovery_retries=8,
    recovery_backoff_ms=20,
    stream_open_timeout_ms=10000,
    ack_timeout_ms=10000,
    flush_timeout_ms=60000,
    failure_cooldown_ms=0,
    cooldown_jitter_ms=0,
)

# Ray Data's own DataContext warns about its deprecated fields whenever it copies the context.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

# Classes and functions of this module travel to the Ray workers by value (the workers cannot
# import the test module by name).
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


# ---- the local Ray cluster ----------------------------------------------------------------------


def ray_start_problem() -> str | None:
    """Why a local Ray cluster cannot start in this Python environment, or None.

    Ray's node agent imports every dashboard module and skips those whose dependencies are
    missing, recognizing them by ModuleNotFoundError. With opentelemetry-proto installed but not
    opentelemetry-api, `opentelemetry` is a namespace package and `from opentelemetry import
    metrics` raises a plain ImportError instead: the agent dies and the raylet with it (ray.init
    then times out after 30 s with "The current node timed out during startup").
    """
    try:
        import opentelemetry  # noqa: F401
    except ImportError:
        return None
    try:
        from opentelemetry import metrics  # noqa: F401
    except ModuleNotFoundError:
        return None
    except ImportError as error:
        return (
            f"Ray cannot start here: `from opentelemetry import metrics` fails with {error!r} "
            "(opentelemetry-proto is installed without opentelemetry-api). Install "
            "opentelemetry-api (requirements.txt) so that Ray's node agent starts."
        )
    return None


@pytest.fixture(scope="module")
def env_zerobus():
    """A server whose address and credentials the Ray workers find in their environment
    (ZEROBUS_* variables set before the cluster starts; the workers inherit them)."""
    with LocalZerobus(client_id="env-client", **FAST) as zerobus:
        yield zerobus


@pytest.fixture(scope="module")
def ray_cluster(env_zerobus):
    problem = ray_start_problem()
    if problem:
        pytest.fail(problem)
    variables = {
        "ZEROBUS_ENDPOINT": env_zerobus.endpoint,
        "UNITY_CATALOG_URL": env_zerobus.unity_catalog_url,
        "ZEROBUS_CLIENT_ID": env_zerobus.client_id,
        "ZEROBUS_CLIENT_SECRET": env_zerobus.client_secret,
    }
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=True)
    finally:
        # The cluster's processes have their copy; the rest of the test session does not.
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield
    ray.shutdown()


# ---- helpers ------------------------------------------------------------------------------------


def settled_table(emu: LocalZerobus, name: str, timeout: float = 20.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def check_summary(sink: ZerobusDatasink, rows: int) -> dict:
    """The summary is the sum of the tasks' accounting, and every row is accounted for."""
    summary = sink.summary
    assert summary is not None
    tasks = sink.task_results
    assert summary["tasks"] == len(tasks) > 0
    for key in ("rows", "landed", "failed", "in_doubt", "retried", "replayed", "blocks"):
        assert summary[key] == sum(task[key] for task in tasks), key
    assert summary["rows"] == rows
    assert summary["landed"] + summary["failed"] == rows
    assert 0 <= summary["in_doubt"] <= summary["failed"]
    for task in tasks:
        assert task["landed"] + task["failed"] == task["rows"]
    return summary


IOT_DECLARATION = {
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "ts", "type": "timestamp", "nullable": False},
        {"name": "device_id", "type": "string"},
        {"name": "site", "type": "string"},
        {"name": "temperature", "type": "double"},
        {"name": "humidity", "type": "double"},
        {"name": "pressure", "type": "double"},
        {"name": "voltage", "type": "double"},
        {"name": "status", "type": "int"},
        {"name": "alarm", "type": "boolean"},
    ]
}
IOT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("device_id", pa.string()),
        pa.field("site", pa.dictionary(pa.int32(), pa.string())),
        pa.field("temperature", pa.float64()),
        pa.field("humidity", pa.float64()),
        pa.field("pressure", pa.float64()),
        pa.field("voltage", pa.float64()),
        pa.field("status", pa.int32()),
        pa.field("alarm", pa.bool_()),
    ]
)
_SITES = pa.array([f"site-{i:02d}" for i in range(16)])
_DEVICES = pa.array([f"dev-{i:04d}" + "abcdefgh"[: i % 9] for i in range(997)])


def iot_rows(start: int, count: int) -> pa.Table:
    """The benchmarks' `iot` schema (docs/benchmarks.md): 8-16 character device ids, 16 sites
    dictionary-encoded, four float64 columns with 5% nulls, int32 status, bool alarm."""
    ids = np.arange(start, start + count, dtype=np.int64)

    def floats(scale: float, offset: float, salt: int) -> pa.Array:
        values = offset + ((ids * 7919 + salt) % 1000) * scale
        return pa.array(values, pa.float64(), mask=(ids + salt) % 20 == 0)

    return pa.Table.from_arrays(
        [
            pa.array(ids),
            pa.array(1_790_000_000_000_000 + ids * 1000, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            _DEVICES.take(pa.array(ids % 997)),
            pa.DictionaryArray.from_arrays(pa.array((ids % 16).astype(np.int32)), _SITES),
            floats(0.01, 15.0, 1),
            floats(0.05, 20.0, 2),
            floats(0.1, 950.0, 3),
            floats(0.001, 3.0, 4),
            pa.array((ids % 5).astype(np.int32)),
            pa.array(ids % 97 == 0),
        ],
        schema=IOT_SCHEMA,
    )


def assert_same_rows(table: pa.Table, expected: pa.Table) -> None:
    """`table` (read back) holds exactly `expected`'s rows, compared column by column."""
    assert table.num_rows == expected.num_rows
    table = table.sort_by("id")
    expected = expected.sort_by("id")
    for name in expected.column_names:
        got = table.column(name).combine_chunks()
        want = expected.column(name).combine_chunks()
        if pa.types.is_dictionary(want.type):
            want = want.cast(want.type.value_type)
        assert got.type == want.type, (name, got.type, want.type)
        assert got.equals(want), name


def counter_rows(start: int, count: int, bad_every: int) -> pa.Table:
    """id, a uint64 `counter` (ids that are multiples of `bad_every` get values above INT64_MAX,
    which a BIGINT cannot hold) and a `note`."""
    ids = np.arange(start, start + count, dtype=np.int64)
    bad = ids % bad_every == 0
    counter = np.where(bad, np.uint64(INT64_MAX) + ids.astype(np.uint64) + np.uint64(1), ids.astype(np.uint64) * np.uint64(3))
    return pa.Table.from_arrays(
        [pa.array(ids), pa.array(counter, pa.uint64()), pa.array([f"n{i}" for i in ids])],
        schema=pa.schema([pa.field("id", pa.int64(), nullable=False), ("counter", pa.uint64()), ("note", pa.string())]),
    )


COUNTER_DECLARATION = {
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "counter", "type": "bigint"},
        {"name": "note", "type": "string"},
    ]
}


# ---- the documented example (first: it starts its own Ray cluster, before this module's) -------


def test_example_runs_and_is_the_one_documented():
    example = REPO / "examples" / "ray_write.py"
    docs = (REPO / "docs" / "ray.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert example.read_text() in blocks, "docs/ray.md must show examples/ray_write.py verbatim"
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(example), "20000"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-5000:]}"
    out = run.stdout
    assert "summary: 20000 rows, 19998 landed, 2 failed (0 in doubt)" in out, out
    assert "quarantined rows: 2" in out, out
    assert "Conversion error: column 'counter'" in out, out
    assert "table rows: 19998" in out, out
    assert elapsed < 240


# ---- 1,000,000 rows ---------------------------------------------------------------------------


def test_million_iot_rows_land_exactly_once(ray_cluster, caplog):
    name = "main.default.iot"
    rows, block_count = 1_000_000, 8
    per_block = rows // block_count
    blocks = [iot_rows(i * per_block, per_block) for i in range(block_count)]
    caplog.set_level(logging.INFO, logger="arrow_zerobus_sdk_wrapper")
    with LocalZerobus(tables={name: IOT_DECLARATION}, strict=True) as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST))
        assert sink.summary is None and sink.task_results == []
        dataset = ray.data.from_arrow(blocks)
        started = time.monotonic()
        dataset.write_datasink(sink)
        elapsed = time.monotonic() - started
        table = settled_table(emu, name)
    summary = check_summary(sink, rows)
    assert summary["landed"] == rows
    assert summary["failed"] == summary["in_doubt"] == summary["quarantined"] == 0
    assert summary["replayed"] == summary["retried"] == 0
    assert summary["blocks"] == summary["tasks"] == block_count  # from_arrow: a task per block
    assert summary["task_retries"] == summary["task_retry_rows"] == 0
    assert summary["table_name"] == name
    # Every id exactly once, every value as sent; the job's totals equal the table.
    ids = table.column("id").to_numpy()
    assert len(np.unique(ids)) == len(ids) == rows
    assert table.num_rows == summary["landed"] + summary["replayed"]
    assert_same_rows(table, pa.concat_tables(blocks))
    # The totals were logged at INFO on the package's logger, by the driver.
    logged = [r.getMessage() for r in caplog.records
              if r.name == "arrow_zerobus_sdk_wrapper" and r.levelno == logging.INFO
              and r.getMessage().startswith("ZerobusDatasink: ")]
    assert len(logged) == 1
    assert f"{rows} rows in {block_count} blocks by {summary['tasks']} tasks to {name}" in logged[0]
    assert f"{rows} landed, 0 failed" in logged[0]
    assert elapsed < 120, f"the write took {elapsed:.1f} s"


# ---- failed rows --------------------------------------------------------------------------------


def test_rows_out_of_range_are_quarantined_with_their_error(ray_cluster, tmp_path, caplog):
    name = "main.default.counters"
    bad_every = 97
    blocks = [counter_rows(i * 2500, 2500, bad_every) for i in range(4)]
    source = pa.concat_tables(blocks)
    bad_ids = [i for i in source.column("id").to_pylist() if i % bad_every == 0]
    quarantine = tmp_path / "quarantine"
    caplog.set_level(logging.INFO, logger="arrow_zerobus_sdk_wrapper")
    with LocalZerobus(tables={name: COUNTER_DECLARATION}, strict=True) as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST), quarantine_path=quarantine)
        ray.data.from_arrow(blocks).write_datasink(sink)
        table = settled_table(emu, name)
    summary = check_summary(sink, source.num_rows)
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "arrow_zerobus_sdk_wrapper" and r.levelno == logging.WARNING]
    assert warnings == [
        f"ZerobusDatasink: {len(bad_ids)} of 10000 rows were not written to {name} "
        f"[ConversionError: {len(bad_ids)}]; quarantined in {quarantine} "
        f"({len(summary['quarantine_files'])} file(s))"
    ]
    assert summary["failed"] == summary["quarantined"] == len(bad_ids) > 0
    assert summary["in_doubt"] == 0
    assert summary["errors"] == {"ConversionError": len(bad_ids)}
    assert summary["quarantine_path"] == str(quarantine)
    files = summary["quarantine_files"]
    assert files and all(Path(f).parent == quarantine and Path(f).is_file() for f in files)
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(Path(f).name for f in files)
    for task in sink.task_results:
        for f in task["quarantine_files"]:
            assert re.fullmatch(rf"part-{task['task']:05d}-[0-9a-f]{{32}}\.parquet", Path(f).name)

    # The rest landed, each once, with its values.
    good = source.filter(pa.array([i % bad_every != 0 for i in source.column("id").to_pylist()]))
    expected = good.set_column(1, "counter", good.column("counter").cast(pa.int64()))
    assert_same_rows(table, expected)

    # The quarantine: the failed rows' original columns, their error and where they came from.
    quarantined = pq.read_table(quarantine)
    assert quarantined.column_names == source.column_names + list(QUARANTINE_COLUMNS)
    assert quarantined.schema.field("counter").type == pa.uint64()
    rows = sorted(quarantined.to_pylist(), key=lambda row: row["id"])
    assert [row["id"] for row in rows] == bad_ids
    by_id = {row["id"]: row for row in source.to_pylist()}
    tasks = {task["task"]: task for task in sink.task_results}
    for row in rows:
        original = by_id[row["id"]]
        assert {k: row[k] for k in source.column_names} == original
        assert row["_error"].startswith("Conversion error: ")
        assert "'counter'" in row["_error"] and str(original["counter"]) in row["_error"]
        assert "out of range" in row["_error"]
        assert row["_in_doubt"] is False
        # _row counts within the block (every block holds 2500 consecutive ids), _block is the
        # block's index among its task's blocks, _task the task that wrote the file.
        assert row["_row"] == row["id"] % 2500
        assert row["_task"] in tasks and tasks[row["_task"]]["quarantined"] > 0
        assert 0 <= row["_block"] < tasks[row["_task"]]["blocks"]


def test_fail_on_error_raises_once_every_task_is_done(ray_cluster, tmp_path):
    name = "main.default.strict_counters"
    blocks = [counter_rows(i * 1000, 1000, 250) for i in range(4)]
    uri = (tmp_path / "q").as_uri()  # a URI works as well as a path
    with LocalZerobus(tables={name: COUNTER_DECLARATION}, strict=True) as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST), quarantine_path=uri, fail_on_error=True)
        with pytest.raises(FailedRowsError) as caught:
            ray.data.from_arrow(blocks).write_datasink(sink)
        table = settled_table(emu, name)
    message = str(caught.value)
    assert message == (f"16 of 4000 rows were not written to {name} [ConversionError: 16]; "
                       f"quarantined in {uri} (4 file(s))")
    assert caught.value.summary is sink.summary
    summary = check_summary(sink, 4000)
    assert summary["failed"] == summary["quarantined"] == 16
    # Every task finished before the raise: the good rows landed, the quarantine is complete.
    assert table.num_rows == summary["landed"] == 3984
    assert sorted(pq.read_table(tmp_path / "q").column("id").to_pylist()) == list(range(0, 4000, 250))
    assert all(f.startswith(uri + "/part-") for f in summary["quarantine_files"])


def test_without_quarantine_failures_are_counted_and_the_error_says_so(ray_cluster):
    name = "main.default.unkept"
    blocks = [counter_rows(0, 500, 100)]
    with LocalZerobus(tables={name: COUNTER_DECLARATION}, strict=True) as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST), fail_on_error=True)
        with pytest.raises(FailedRowsError, match=r"^5 of 500 rows .*no quarantine_path was given"):
            ray.data.from_arrow(blocks).write_datasink(sink)
        assert settled_table(emu, name).num_rows == 495
    assert sink.summary["failed"] == 5 and sink.summary["quarantined"] == 0
    assert sink.summary["quarantine_files"] == []


# ---- faults in the middle of a write ------------------------------------------------------------


def _release_withheld_acks_after_a_replay(emu: LocalZerobus, name: str, done: threading.Event) -> None:
    """Removes the withhold rule once a stream of the table has been given up by its client for
    want of acks (a closed stream that appended rows and sent no ack): its rows are then being
    replayed on a new stream."""
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline:
        streams = [s for s in emu.stats()["streams"] if s["table"] == name]
        if any(not s["open"] and s["rows"] > 0 and s["acks"] == 0 for s in streams):
            time.sleep(0.3)
            break
        time.sleep(0.02)
    emu.clear_faults()


@pytest.mark.parametrize("fault", ["end_stream", "withhold_acks"])
def test_fault_in_some_streams_loses_nothing_and_counts_replays(ray_cluster, fault):
    name = f"main.default.fault_{fault}"
    rows, block_count = 40_000, 16
    per_block = rows // block_count
    blocks = [iot_rows(i * per_block, per_block) for i in range(block_count)]
    # One request in flight per stream: a stream that breaks has exactly one request the server
    # appended without acknowledging, which the stream replays; so every replayed record is in
    # the table twice and the table holds exactly landed + replayed rows.
    options = dict(FAST, max_inflight_requests=1)
    if fault == "end_stream":
        # The first three streams end (UNAVAILABLE) right after their first request is appended.
        rules = [{"table": name, "times": 3,
                  "end_stream": {"after_requests": 1, "code": "UNAVAILABLE", "message": "6002 Stream timeout reached"}}]
    else:
        # No acks until the rule is removed; the client gives a stream up after 700 ms without one.
        rules = [{"table": name, "withhold_acks": True}]
        options["ack_timeout_ms"] = 700
    with LocalZerobus(tables={name: IOT_DECLARATION}, strict=True, faults=rules) as emu:
        sink = ZerobusDatasink(emu.config(name, **options), max_pending_batches=2)
        done = threading.Event()
        releaser = None
        if fault == "withhold_acks":
            releaser = threading.Thread(target=_release_withheld_acks_after_a_replay, args=(emu, name, done))
            releaser.start()
        try:
            ray.data.from_arrow(blocks).write_datasink(sink)
        finally:
            done.set()
            if releaser is not None:
                releaser.join()
        table = settled_table(emu, name)
        closed = [s for s in emu.stats()["streams"] if s["table"] == name and not s["open"]]
    summary = check_summary(sink, rows)
    # Nothing lost: every row landed, every id is in the table.
    assert summary["landed"] == rows and summary["failed"] == 0
    ids = table.column("id").to_numpy()
    assert set(np.unique(ids)) == set(range(rows))
    # Replays counted, exactly: the duplicates in the table are the replayed records.
    assert summary["replayed"] > 0
    duplicates = len(ids) - rows
    assert duplicates == summary["replayed"]
    assert table.num_rows == summary["landed"] + summary["replayed"]
    if fault == "end_stream":
        assert sum(1 for s in closed if s["status_code"] == 14) == 3  # UNAVAILABLE
        assert summary["replayed"] == 3 * per_block
    # Duplicated rows hold the same values as the originals.
    deduplicated = table.group_by(table.column_names).aggregate([])
    assert deduplicated.num_rows == rows  # the copies are equal rows
    expected = pa.concat_tables(blocks)
    assert_same_rows(deduplicated.select(expected.column_names), expected)


# ---- Ray task retries ---------------------------------------------------------------------------


class CrashOnceSink(ZerobusDatasink):
    """Kills its worker process (as an OOM kill would) when it is about to take the third block
    of a task, the first time only (a marker file remembers); Ray then runs the task again."""

    def __init__(self, marker: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker = marker

    def write(self, blocks, ctx):
        marker = self.marker

        def blocks_then_crash():
            for index, block in enumerate(blocks):
                if index == 2:
                    try:  # atomic: of two tasks here at once, only one crashes
                        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    except FileExistsError:
                        pass
                    else:
                        os._exit(1)
                yield block

        return super().write(blocks_then_crash(), ctx)


def check_retried_write(sink: ZerobusDatasink, emu: LocalZerobus, name: str, quarantine: Path) -> None:
    """8 blocks of 1000 counter rows (4 failing per block) in 2 tasks of 4 blocks; one task's
    first run stopped when it took its third block, after two acknowledged blocks."""
    table = settled_table(emu, name)
    summary = check_summary(sink, 8000)
    assert summary["tasks"] == 2 and summary["blocks"] == 8
    # The final runs' accounting is exact.
    assert summary["failed"] == summary["quarantined"] == 32
    assert summary["landed"] == 7968
    # The earlier run is counted as a task retry, with its task's rows as the bound of what it
    # may have landed twice.
    assert summary["task_retries"] == 1
    assert summary["task_retry_rows"] == 4000
    counts = Counter(table.column("id").to_pylist())
    assert set(counts) == {i for i in range(8000) if i % 250}
    assert max(counts.values()) == 2
    twice = sorted(i for i, n in counts.items() if n == 2)
    # The duplicates are exactly the good rows of the two blocks acknowledged before the stop.
    first = twice[0] // 4000 * 4000
    assert twice == [i for i in range(first, first + 2000) if i % 250]
    assert len(twice) <= summary["task_retry_rows"]
    assert table.num_rows == summary["landed"] + summary["replayed"] + len(twice)
    # The quarantine holds the final runs' failed rows, once each.
    failed_ids = sorted(pq.read_table(quarantine).column("id").to_pylist())
    assert failed_ids == list(range(0, 8000, 250))
    visible = sorted(p.name for p in quarantine.iterdir() if not p.name.startswith("."))
    assert visible == sorted(Path(f).name for f in summary["quarantine_files"])
    assert len(visible) == 2


def test_ray_task_retry_after_a_worker_crash_is_counted(ray_cluster, tmp_path, caplog):
    name = "main.default.task_retry"
    blocks = [counter_rows(i * 1000, 1000, 250) for i in range(8)]
    quarantine = tmp_path / "quarantine"
    with LocalZerobus(tables={name: COUNTER_DECLARATION}, strict=True) as emu:
        # Four blocks per task; one block in flight, so that the two blocks before the crash are
        # acknowledged (in the table) when the worker dies.
        sink = CrashOnceSink(str(tmp_path / "crashed"), emu.config(name, **FAST),
                             quarantine_path=quarantine, min_rows_per_write=4000,
                             max_pending_batches=1)
        ray.data.from_arrow(blocks).write_datasink(sink)
        assert (tmp_path / "crashed").exists()
        check_retried_write(sink, emu, name, quarantine)
    assert any(r.levelno == logging.WARNING and r.getMessage().startswith(
        "ZerobusDatasink: Ray ran 1 write task(s) again after a failure; the earlier runs may "
        "have landed up to 4000 rows") for r in caplog.records)
    # Ray ran the task again in a new worker (attempt 1).
    assert sorted((t["attempt"], t["reruns"]) for t in sink.task_results) == [(0, 0), (1, 0)]
    # The dead worker's unfinished quarantine file stays hidden (a name starting with "."),
    # which Parquet readers skip.
    hidden = [p.name for p in quarantine.iterdir() if p.name.startswith(".")]
    assert len(hidden) == 1 and hidden[0].endswith(".parquet.inprogress")


class RaiseOnceSink(ZerobusDatasink):
    """Raises in the middle of its task the first time (after two blocks were acknowledged)."""

    def __init__(self, marker: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker = marker

    def write(self, blocks, ctx):
        marker = self.marker

        def blocks_then_raise():
            for index, block in enumerate(blocks):
                if index == 2:
                    try:
                        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    except FileExistsError:
                        pass
                    else:
                        raise RuntimeError("injected failure in the middle of a write task")
                yield block

        return super().write(blocks_then_raise(), ctx)


def test_ray_data_rerun_inside_a_task_is_counted(ray_cluster, tmp_path):
    """With DataContext.retried_map_errors, Ray Data runs a failed task's write again in the same
    task attempt: that run is counted like a task retry."""
    name = "main.default.task_rerun"
    blocks = [counter_rows(i * 1000, 1000, 250) for i in range(8)]
    quarantine = tmp_path / "quarantine"
    context = ray.data.DataContext.get_current()
    saved = (context.retried_map_errors, context.max_map_retries)
    context.retried_map_errors, context.max_map_retries = True, 1
    try:
        with LocalZerobus(tables={name: COUNTER_DECLARATION}, strict=True) as emu:
            sink = RaiseOnceSink(str(tmp_path / "raised"), emu.config(name, **FAST),
                                 quarantine_path=quarantine, min_rows_per_write=4000,
                                 max_pending_batches=1)
            ray.data.from_arrow(blocks).write_datasink(sink)
            assert (tmp_path / "raised").exists()
            check_retried_write(sink, emu, name, quarantine)
    finally:
        context.retried_map_errors, context.max_map_retries = saved
    assert sorted((t["attempt"], t["reruns"]) for t in sink.task_results) == [(0, 0), (0, 1)]
    # The failed run removed its unfinished quarantine file.
    assert not [p.name for p in quarantine.iterdir() if p.name.startswith(".")]


# ---- blocks, configuration, pickling ------------------------------------------------------------


def test_pandas_blocks_are_converted_and_land(ray_cluster):
    import pandas as pd

    name = "main.default.from_pandas"
    frames = [pd.DataFrame({"id": np.arange(i * 100, i * 100 + 100, dtype=np.int64),
                            "value": np.linspace(0, 1, 100), "label": [f"l{j}" for j in range(100)]})
              for i in range(3)]
    dataset = ray.data.from_pandas(frames)
    with LocalZerobus() as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST))
        dataset.write_datasink(sink)
        table = settled_table(emu, name)
    check_summary(sink, 300)
    assert sink.summary["landed"] == 300
    expected = pa.Table.from_pandas(pd.concat(frames), preserve_index=False)
    got = table.sort_by("id")
    assert got.column("id").to_pylist() == list(range(300))
    assert got.column("value").to_pylist() == expected.column("value").to_pylist()
    assert got.column("label").to_pylist() == [str(x) for x in expected.column("label").to_pylist()]


def test_blocks_given_to_the_wrapper():
    import pandas as pd

    from arrow_zerobus_sdk_wrapper.ray import _as_arrow

    table = pa.table({"id": pa.array([1, 2], pa.int64())})
    batch = table.to_batches()[0]
    # Arrow blocks go as they are: the very object, so its buffers reach C++ without a copy.
    assert _as_arrow(table) is table
    assert _as_arrow(batch) is batch
    frame = pd.DataFrame({"id": [1, 2]}, index=[10, 11])
    converted = _as_arrow(frame)
    assert isinstance(converted, pa.Table)
    assert converted.column_names == ["id"]  # the index is dropped
    with pytest.raises(TypeError, match="neither Arrow data nor a pandas DataFrame"):
        _as_arrow([1, 2])


def test_configuration_from_the_workers_environment(ray_cluster, env_zerobus):
    """No config: each worker loads ZEROBUS_* from its environment; options apply on top."""
    name = "main.default.from_env"
    blocks = [pa.table({"id": pa.array(range(i * 50, i * 50 + 50), pa.int64())}) for i in range(3)]
    sink = ZerobusDatasink(table_name=name, retry_max_attempts=2)
    assert sink.config is None and sink.table_name == name
    ray.data.from_arrow(blocks).write_datasink(sink)
    assert sink.summary["landed"] == 150 and sink.summary["table_name"] == name
    assert sorted(settled_table(env_zerobus, name).column("id").to_pylist()) == list(range(150))


def test_configuration_error_from_the_environment_names_the_variables(ray_cluster):
    # The workers' environment has no table name: the task fails with a message that says where
    # the options were looked for.
    sink = ZerobusDatasink()
    with pytest.raises(Exception) as caught:
        ray.data.from_arrow([pa.table({"id": pa.array([1], pa.int64())})]).write_datasink(sink)
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, ray.exceptions.RayTaskError)
    message = str(caught.value)
    assert ("Configuration error: table_name is empty (ZerobusDatasink without a config reads its "
            "options from the environment of each Ray worker: ZEROBUS_ENDPOINT, "
            "ZEROBUS_TABLE_NAME, ZEROBUS_CLIENT_ID, ZEROBUS_CLIENT_SECRET, UNITY_CATALOG_URL") in message
    assert sink.summary is None


def test_configuration_is_checked_on_the_driver():
    config = WrapperConfiguration("http://127.0.0.1:1", "main.default.t")  # no credentials
    with pytest.raises(ConfigurationError, match="client_id"):
        ZerobusDatasink(config)
    with pytest.raises(ConfigurationError, match="table_name"):
        ZerobusDatasink(config.replace(table_name="two.parts", client_id="c", client_secret="s",
                                       unity_catalog_url="http://127.0.0.1:2"))
    with pytest.raises(TypeError, match="retry_max_attempt"):
        ZerobusDatasink(retry_max_attempt=3)
    with pytest.raises(TypeError, match="retry_max_attempts"):
        ZerobusDatasink(retry_max_attempts="three")
    with pytest.raises(ValueError, match="max_pending_batches"):
        ZerobusDatasink(max_pending_batches=0)
    with pytest.raises(TypeError, match="config"):
        ZerobusDatasink({"endpoint": "http://127.0.0.1:1"})


def test_repr_hides_the_secret_and_pickling_carries_it(tmp_path):
    secret = "s3cr3t-value-for-ray"
    config = WrapperConfiguration("http://127.0.0.1:1", "main.default.t", client_id="c",
                                  client_secret=secret, unity_catalog_url="http://127.0.0.1:2")
    sink = ZerobusDatasink(config, quarantine_path=tmp_path / "q", retry_max_attempts=7)
    assert secret not in repr(sink) and secret not in str(sink)
    assert "main.default.t" in repr(sink) and str(tmp_path / "q") in repr(sink)
    for copy in (pickle.loads(pickle.dumps(sink)), ray.cloudpickle.loads(ray.cloudpickle.dumps(sink))):
        assert copy.config.client_secret == secret
        assert copy.config.retry_max_attempts == 7
        assert copy.quarantine_path == str(tmp_path / "q")
    # The secret given as an option (no config object) is hidden and travels too.
    env_sink = ZerobusDatasink(client_secret=secret, table_name="main.default.t")
    assert secret not in repr(env_sink) and "'***'" in repr(env_sink)
    copy = pickle.loads(pickle.dumps(env_sink))
    assert copy._worker_config().client_secret == secret
    # A relative quarantine path is made absolute on the driver.
    relative = ZerobusDatasink(config, quarantine_path="q-dir")
    assert relative.quarantine_path == os.path.abspath("q-dir")


def test_quarantine_refuses_data_with_a_clashing_column(ray_cluster, tmp_path):
    name = "main.default.clash"
    block = pa.table({"id": pa.array([1, 2], pa.int64()), "_error": ["a", "b"]})
    with LocalZerobus() as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST), quarantine_path=tmp_path / "q")
        with pytest.raises(ValueError, match=r"already has column\(s\) \['_error'\]"):
            ray.data.from_arrow([block]).write_datasink(sink)


def test_write_outside_ray_counts_empty_blocks_and_creates_no_quarantine_without_failures(tmp_path):
    """write() itself, called as a Ray task would call it."""
    from types import SimpleNamespace

    name = "main.default.direct"
    empty = pa.table({"id": pa.array([], pa.int64())})
    full = pa.table({"id": pa.array(range(10), pa.int64())})
    quarantine = tmp_path / "q"
    with LocalZerobus() as emu:
        sink = ZerobusDatasink(emu.config(name, **FAST), quarantine_path=quarantine)
        account = sink.write(iter([empty, full, full.slice(0, 0)]), SimpleNamespace(task_idx=7))
        table = settled_table(emu, name)
    assert account["task"] == 7 and account["blocks"] == 3
    assert (account["rows"], account["landed"], account["failed"]) == (10, 10, 0)
    assert account["quarantine_files"] == [] and account["quarantined"] == 0
    assert account["streams_opened"] == 1
    assert not quarantine.exists()  # created only when a row fails
    assert sorted(table.column("id").to_pylist()) == list(range(10))


def test_ray_start_problem_is_recognized(tmp_path):
    """The fixture's diagnosis: a bare `opentelemetry` namespace (opentelemetry-proto without
    opentelemetry-api) is recognized; run with only such a namespace on the path."""
    import inspect

    (tmp_path / "opentelemetry" / "proto").mkdir(parents=True)
    source = inspect.getsource(ray_start_problem)
    code = (
        "import sys\n"
        f"sys.path[:] = [{str(tmp_path)!r}] + [p for p in sys.path if 'site-packages' not in p and p]\n"
        f"{source}\n"
        "print(ray_start_problem())\n"
    )
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Ray cannot start here" in run.stdout and "opentelemetry-api" in run.stdout
    # Here (the environment the suite runs in) there is no problem.
    assert ray_start_problem() is None


def test_transport_options_are_datasink_keywords():
    config = WrapperConfiguration("http://127.0.0.1:1", "main.default.t", client_id="c",
                                  client_secret="s", unity_catalog_url="http://127.0.0.1:2")
    sink = ZerobusDatasink(config, transport="arrow_flight", ipc_compression="zstd")
    assert (sink.config.transport, sink.config.ipc_compression) == ("arrow_flight", "zstd")
    with pytest.raises(ConfigurationError, match="transport: 'flight' is not one of"):
        ZerobusDatasink(config, transport="flight")
    with pytest.raises(ConfigurationError, match="ipc_compression 'zstd' needs transport"):
        ZerobusDatasink(config, ipc_compression="zstd")
    # Without a config object the names and values are checked on the driver too.
    with pytest.raises(ConfigurationError, match="ipc_compression: 'lz4' is not one of"):
        ZerobusDatasink(ipc_compression="lz4")
