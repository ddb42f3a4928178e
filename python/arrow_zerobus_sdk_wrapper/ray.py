"""Ray Data sink: write a Dataset to a Zerobus table from many Ray tasks at once.

    import ray
    from arrow_zerobus_sdk_wrapper.ray import ZerobusDatasink

    sink = ZerobusDatasink(config, quarantine_path="/data/zerobus-quarantine")
    ray.data.read_parquet("s3://bucket/readings/").write_datasink(sink)
    print(sink.summary)   # rows, landed, failed, in_doubt, retried, replayed, tasks, ...

Each Ray write task opens one ZerobusWrapper (its own streams, so Zerobus's per-stream quotas
apply per task) and sends every block it is given as it is: an Arrow block crosses into C++
without a copy; a pandas block is converted once with ``pa.Table.from_pandas``. Sends are
pipelined (at most ``max_pending_batches`` blocks in flight per task). Each task returns its
exact accounting; ``on_write_complete`` adds them up into ``summary`` and logs it at INFO on the
``arrow_zerobus_sdk_wrapper`` logger. Rows that fail are written, with their error text and
their original columns, to Parquet files under ``quarantine_path``; with ``fail_on_error`` the
write raises FailedRowsError once every task is done. docs/ray.md has the details and the
at-least-once rules (stream replays, wrapper retries, Ray task retries).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Tuple

import pyarrow as pa

try:
    from ray.data.datasource.datasink import Datasink, WriteResult
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "arrow_zerobus_sdk_wrapper.ray needs Ray Data: pip install 'ray[data]'"
    ) from _error

from . import _core
from ._config import WrapperConfiguration
from ._errors import ConfigurationError, ZerobusError
from ._result import TransmissionResult
from ._wrapper import ZerobusWrapper

__all__ = ["ZerobusDatasink", "FailedRowsError", "QUARANTINE_COLUMNS"]

logger = logging.getLogger("arrow_zerobus_sdk_wrapper")

#: Columns the quarantine files add after the data's own columns.
QUARANTINE_COLUMNS: Tuple[str, ...] = ("_error", "_row", "_block", "_task", "_in_doubt")

#: Counters of one task's accounting that the summary adds up.
_SUMMED = (
    "rows",
    "landed",
    "failed",
    "in_doubt",
    "retried",
    "replayed",
    "retries",
    "blocks",
    "quarantined",
)

_DEFAULT_MAX_PENDING_BATCHES = 4


class FailedRowsError(ZerobusError):
    """Raised by the write (``Dataset.write_datasink``) when ``fail_on_error`` is set and rows
    failed. Every task has finished when it is raised: ``summary`` holds the job's totals and the
    quarantine files (if any) are complete."""

    retryable = False

    def __init__(self, message: str = "", summary: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.summary: Optional[Dict[str, Any]] = summary


class _SecretOption:
    """A client secret given as a keyword option (no configuration object to hold it): travels
    with the sink to the workers, never shows in a repr."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    def __getstate__(self) -> Any:
        return self.value

    def __setstate__(self, state: Any) -> None:
        self.value = state


class ZerobusDatasink(Datasink[Dict[str, Any]]):
    """A Ray Data sink that sends a Dataset's blocks to one Zerobus table.

    ``ZerobusDatasink(config=None, *, quarantine_path=None, fail_on_error=False,
    max_pending_batches=4, min_rows_per_write=None, **config_options)``

    Args:
        config: the WrapperConfiguration every task uses (it pickles, secret included, so it
            travels to the workers). ``config_options`` are applied on top (``config.replace``).
            When None, each task loads its configuration on its worker with
            ``WrapperConfiguration.from_env()`` (ZEROBUS_ENDPOINT, ZEROBUS_TABLE_NAME,
            ZEROBUS_CLIENT_ID, ZEROBUS_CLIENT_SECRET, UNITY_CATALOG_URL, ...; see
            docs/configuration.md) and applies ``config_options`` on top.
        quarantine_path: a directory (local path, or a URI ``pyarrow.fs`` understands) for the
            failed rows: each task that has failures writes ``part-<task>-<uuid>.parquet`` there
            with the data's columns plus ``_error``, ``_row``, ``_block``, ``_task`` and
            ``_in_doubt``. A local relative path is made absolute on the driver. None: failed
            rows are counted and logged, not kept.
        fail_on_error: when rows failed, the write raises FailedRowsError after every task has
            finished (the summary and the quarantine are complete by then).
        max_pending_batches: blocks a task keeps in flight before it waits for the oldest
            (pipelining; at least 1).
        min_rows_per_write: passed to Ray Data: each write task gets at least that many rows
            (fewer, larger tasks: fewer streams). None lets Ray decide.
        **config_options: WrapperConfiguration options.

    After ``write_datasink`` returns, ``summary`` holds the job's totals and ``task_results``
    each task's accounting.
    """

    def __init__(
        self,
        config: Optional[WrapperConfiguration] = None,
        *,
        quarantine_path: Optional[Any] = None,
        fail_on_error: bool = False,
        max_pending_batches: int = _DEFAULT_MAX_PENDING_BATCHES,
        min_rows_per_write: Optional[int] = None,
        **config_options: Any,
    ) -> None:
        if config is not None and not isinstance(config, WrapperConfiguration):
            raise TypeError(
                f"config must be a WrapperConfiguration or None, got {type(config).__name__}"
            )
        if isinstance(max_pending_batches, bool) or not isinstance(max_pending_batches, int):
            raise TypeError("max_pending_batches must be an int")
        if max_pending_batches < 1:
            raise ValueError(f"max_pending_batches must be at least 1, got {max_pending_batches}")
        if min_rows_per_write is not None:
            if isinstance(min_rows_per_write, bool) or not isinstance(min_rows_per_write, int):
                raise TypeError("min_rows_per_write must be an int or None")
            if min_rows_per_write < 1:
                raise ValueError(f"min_rows_per_write must be at least 1, got {min_rows_per_write}")
        known = _core.default_options()
        for name in config_options:
            if name not in known:
                raise TypeError(f"ZerobusDatasink() got an unexpected keyword argument {name!r}")

        options: Dict[str, Any] = {}
        if config is not None:
            if config_options:
                config = config.replace(**config_options)
            # Fail on the driver, before any task starts: every rule, credentials included.
            config.validate()
            config._native().validate_for_wrapper()
        else:
            # The values are checked on each worker, where the environment completes them; the
            # types and names are checked now.
            probe = dict(config_options)
            WrapperConfiguration(
                probe.pop("endpoint", "http://127.0.0.1:1"),
                probe.pop("table_name", "main.default.probe"),
                **probe,
            )
            options = dict(config_options)
            if options.get("client_secret") is not None:
                options["client_secret"] = _SecretOption(options["client_secret"])

        self._config: Optional[WrapperConfiguration] = config
        self._env_options: Dict[str, Any] = options
        self._quarantine_path: Optional[str] = _normalize_path(quarantine_path)
        self._fail_on_error = bool(fail_on_error)
        self._max_pending_batches = max_pending_batches
        self._min_rows_per_write = min_rows_per_write
        self._started: Optional[float] = None
        #: The job's totals once a write has completed (None before, and after a failed write).
        self.summary: Optional[Dict[str, Any]] = None
        #: Each task's accounting (sorted by task index) once a write has completed.
        self.task_results: List[Dict[str, Any]] = []

    # ---- properties -------------------------------------------------------------------------

    @property
    def config(self) -> Optional[WrapperConfiguration]:
        """The configuration the tasks use, or None when each worker reads its environment."""
        return self._config

    @property
    def table_name(self) -> Optional[str]:
        """The target table, or None when it comes from ZEROBUS_TABLE_NAME on the workers."""
        if self._config is not None:
            return self._config.table_name
        return self._env_options.get("table_name")

    @property
    def quarantine_path(self) -> Optional[str]:
        return self._quarantine_path

    @property
    def fail_on_error(self) -> bool:
        return self._fail_on_error

    @property
    def max_pending_batches(self) -> int:
        return self._max_pending_batches

    @property
    def min_rows_per_write(self) -> Optional[int]:  # Ray Data reads this
        return self._min_rows_per_write

    @property
    def supports_distributed_writes(self) -> bool:
        return True

    def get_name(self) -> str:
        return "Zerobus"

    # ---- driver side ------------------------------------------------------------------------

    def on_write_start(self, schema: Optional[pa.Schema] = None) -> None:
        self._started = time.monotonic()
        self.summary = None
        self.task_results = []
        if self._quarantine_path is not None and schema is not None:
            _check_quarantine_columns(schema.names)

    def on_write_complete(self, write_result: WriteResult[Dict[str, Any]]) -> None:
        tasks = sorted(
            (r for r in write_result.write_returns if isinstance(r, Mapping)),
            key=lambda r: (r.get("task", 0), r.get("attempt") or 0),
        )
        summary: Dict[str, Any] = {
            name: sum(int(t.get(name, 0)) for t in tasks) for name in _SUMMED
        }
        summary["tasks"] = len(tasks)
        summary["task_retries"] = sum(_earlier_runs(t) for t in tasks)
        # Each earlier run may have landed any part of its task's rows (no account of it came
        # back): an upper bound of the duplicates that Ray's re-runs may have made.
        summary["task_retry_rows"] = sum(int(t["rows"]) * _earlier_runs(t) for t in tasks)
        errors: Dict[str, int] = {}
        for task in tasks:
            for kind, count in task.get("errors", {}).items():
                errors[kind] = errors.get(kind, 0) + int(count)
        summary["errors"] = errors
        summary["quarantine_path"] = self._quarantine_path
        summary["quarantine_files"] = [f for t in tasks for f in t.get("quarantine_files", [])]
        summary["table_name"] = self.table_name or next(
            (t.get("table_name") for t in tasks if t.get("table_name")), None
        )
        summary["seconds"] = (
            round(time.monotonic() - self._started, 3) if self._started is not None else None
        )
        self.task_results = [dict(t) for t in tasks]
        self.summary = summary

        logger.info("ZerobusDatasink: %s", _describe(summary))
        if summary["task_retries"]:
            logger.warning(
                "ZerobusDatasink: Ray ran %d write task(s) again after a failure; the earlier "
                "runs may have landed up to %d rows that are now in the table twice "
                "(at-least-once)",
                summary["task_retries"],
                summary["task_retry_rows"],
            )
        if summary["failed"]:
            message = _failure_message(summary)
            logger.warning("ZerobusDatasink: %s", message)
            if self._fail_on_error:
                raise FailedRowsError(message, summary)

    def on_write_failed(self, error: Exception) -> None:
        if isinstance(error, FailedRowsError):
            return  # raised by on_write_complete: the summary stands
        self.summary = None
        logger.error(
            "ZerobusDatasink: the write to %s failed (%s: %s); rows sent by the tasks that ran "
            "before the failure may be in the table, and their accounting is lost",
            self.table_name or "the table from ZEROBUS_TABLE_NAME",
            type(error).__name__,
            error,
        )

    # ---- worker side ------------------------------------------------------------------------

    def write(self, blocks: Iterable[Any], ctx: Any) -> Dict[str, Any]:
        """Sends the task's blocks through one ZerobusWrapper; returns the task's accounting."""
        started = time.monotonic()
        task = int(getattr(ctx, "task_idx", 0))
        config = self._worker_config()
        account: Dict[str, Any] = {name: 0 for name in _SUMMED}
        attempt = _task_attempt()
        account.update(
            task=task,
            attempt=attempt,
            reruns=_count_run(task, attempt),
            table_name=config.table_name,
            errors={},
            quarantine_files=[],
        )
        quarantine = (
            _Quarantine(self._quarantine_path, task) if self._quarantine_path is not None else None
        )
        pending: Deque[Tuple[int, Any, TransmissionResult]] = deque()
        try:
            wrapper = self._open_wrapper(config)
            with wrapper:
                for index, block in enumerate(blocks):
                    data = _as_arrow(block)
                    account["blocks"] += 1
                    if data.num_rows == 0:
                        continue
                    pending.append((index, data, wrapper.send_batch(data)))
                    while len(pending) >= self._max_pending_batches:
                        _settle(account, quarantine, *pending.popleft())
                while pending:
                    _settle(account, quarantine, *pending.popleft())
            # After shutdown: every stream is closed and every replay counted.
            stats = wrapper.stats()
        except BaseException:
            pending.clear()
            if quarantine is not None:
                quarantine.abort()
            raise
        account["retried"] = int(stats.get("rows_retried", 0))
        account["replayed"] = int(stats.get("replayed_records", 0))
        account["retries"] = int(stats.get("retries", 0))
        account["streams_opened"] = int(stats.get("streams_opened", 0))
        if quarantine is not None:
            account["quarantine_files"] = quarantine.finish()
            account["quarantined"] = quarantine.rows
        account["seconds"] = round(time.monotonic() - started, 3)
        logger.info("ZerobusDatasink task %d: %s", task, _describe(account))
        return account

    def _worker_config(self) -> WrapperConfiguration:
        if self._config is not None:
            return self._config
        options = {
            name: (value.value if isinstance(value, _SecretOption) else value)
            for name, value in self._env_options.items()
        }
        try:
            config = WrapperConfiguration.from_env()
            return config.replace(**options) if options else config
        except ConfigurationError as error:
            raise ConfigurationError(f"{error}{_ENV_HINT}") from None

    def _open_wrapper(self, config: WrapperConfiguration) -> ZerobusWrapper:
        try:
            return ZerobusWrapper(config)
        except ConfigurationError as error:
            if self._config is None:
                raise ConfigurationError(f"{error}{_ENV_HINT}") from None
            raise

    # ---- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        if self._config is not None:
            target = (
                f"table_name={self._config.table_name!r}, endpoint={self._config.endpoint!r}"
            )
        else:
            shown = ", ".join(
                f"{name}={value!r}" for name, value in self._env_options.items()
            )  # _SecretOption shows '***'
            target = "config=<from the workers' environment>" + (f", {shown}" if shown else "")
        return (
            f"{type(self).__name__}({target}, quarantine_path={self._quarantine_path!r}, "
            f"fail_on_error={self._fail_on_error}, "
            f"max_pending_batches={self._max_pending_batches})"
        )


_ENV_HINT = (
    " (ZerobusDatasink without a config reads its options from the environment of each Ray "
    "worker: ZEROBUS_ENDPOINT, ZEROBUS_TABLE_NAME, ZEROBUS_CLIENT_ID, ZEROBUS_CLIENT_SECRET, "
    "UNITY_CATALOG_URL, ...; see docs/configuration.md)"
)


# ---- per-task helpers ----------------------------------------------------------------------


def _as_arrow(block: Any) -> Any:
    """The block as Arrow data: an Arrow table or record batch as it is (no copy), a pandas
    DataFrame converted with ``pa.Table.from_pandas`` (index dropped)."""
    if isinstance(block, (pa.Table, pa.RecordBatch)):
        return block
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - Ray Data depends on pandas
        pd = None
    if pd is not None and isinstance(block, pd.DataFrame):
        return pa.Table.from_pandas(block, preserve_index=False)
    if hasattr(block, "__arrow_c_stream__") or hasattr(block, "__arrow_c_array__"):
        return pa.table(block)
    raise TypeError(
        f"ZerobusDatasink: a block of type {type(block).__name__} is neither Arrow data nor a "
        "pandas DataFrame"
    )


def _settle(
    account: Dict[str, Any],
    quarantine: Optional[_Quarantine],
    index: int,
    data: Any,
    result: TransmissionResult,
) -> None:
    """Adds one block's outcome (waiting for it) to the task's accounting."""
    account["rows"] += data.num_rows
    account["landed"] += result.successful_count
    account["failed"] += result.failed_count
    if result.failed_count:
        account["in_doubt"] += result.in_doubt_count
        errors = account["errors"]
        for kind, indices in result.group_errors_by_type().items():
            errors[kind] = errors.get(kind, 0) + len(indices)
        if quarantine is not None:
            quarantine.add(index, data, result)


def _earlier_runs(task: Mapping[str, Any]) -> int:
    """How many times the task's blocks were being written before its final run."""
    return int(task.get("attempt") or 0) + int(task.get("reruns") or 0)


# Runs of write() per (Ray task id, task index, attempt) in this worker process: Ray Data runs a
# task's transform again inside the same attempt when DataContext.retried_map_errors allows it.
_runs: "OrderedDict[Tuple[str, int, int], int]" = OrderedDict()
_runs_lock = threading.Lock()
_RUNS_KEPT = 4096


def _count_run(task: int, attempt: Optional[int]) -> int:
    """How many earlier runs of this task attempt this process has seen (0 on the first)."""
    try:
        import ray

        task_id = ray.get_runtime_context().get_task_id()
    except Exception:
        task_id = None
    if task_id is None:
        return 0
    key = (str(task_id), task, attempt or 0)
    with _runs_lock:
        earlier = _runs.pop(key, 0)
        _runs[key] = earlier + 1
        while len(_runs) > _RUNS_KEPT:
            _runs.popitem(last=False)
    return earlier


def _task_attempt() -> Optional[int]:
    """How many times Ray ran this task before (0 on the first run), or None when Ray does not
    say (the number comes from Ray's core worker, which has no public accessor for it)."""
    try:
        import ray

        worker = ray._private.worker.global_worker
        return int(worker.core_worker.get_current_task_attempt_number())
    except Exception:
        return None


class _Quarantine:
    """One task's quarantine files: Parquet, written as failures come, published (renamed from
    a hidden name) only when the task completes."""

    def __init__(self, root: str, task: int) -> None:
        from pyarrow import fs as pafs

        self._root = root
        self._filesystem, self._directory = pafs.FileSystem.from_uri(root)
        self._task = task
        self._id = uuid.uuid4().hex
        self._parts = 0
        self._schema: Optional[pa.Schema] = None
        self._writer: Any = None
        self._stream: Any = None
        self._temp: Optional[str] = None
        self._final: Optional[Tuple[str, str]] = None
        self._published: List[str] = []
        self._staged: List[Tuple[str, str, str]] = []  # (temp, final, shown)
        self.rows = 0

    def add(self, block_index: int, data: Any, result: TransmissionResult) -> None:
        failed = result.extract_failed_batch(data)
        if failed is None:
            return
        rows = result.failed_rows or []
        in_doubt = set(result.in_doubt_rows)
        count = len(rows)
        columns = list(failed.columns) + [
            pa.array([message for _, message in rows], pa.string()),
            pa.array([index for index, _ in rows], pa.int64()),
            pa.array([block_index] * count, pa.int64()),
            pa.array([self._task] * count, pa.int64()),
            pa.array([index in in_doubt for index, _ in rows], pa.bool_()),
        ]
        batch = pa.RecordBatch.from_arrays(columns, schema=_quarantine_schema(failed.schema))
        if self._schema is None or not batch.schema.equals(self._schema):
            self._close_part()
            self._open_part(batch.schema)
        self._writer.write_batch(batch)
        self.rows += count

    def finish(self) -> List[str]:
        """Closes the files and publishes them under their final names."""
        self._close_part()
        for temp, final, shown in self._staged:
            self._filesystem.move(temp, final)
            self._published.append(shown)
        self._staged = []
        return list(self._published)

    def abort(self) -> None:
        """The task failed: its files are removed (a new attempt writes its own)."""
        try:
            self._close_part()
        except Exception:  # pragma: no cover - best effort
            pass
        for temp, _, _ in self._staged:
            try:
                self._filesystem.delete_file(temp)
            except Exception:  # pragma: no cover - best effort
                pass
        self._staged = []

    def _open_part(self, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        _check_quarantine_columns(schema.names[: -len(QUARANTINE_COLUMNS)])
        suffix = f"-{self._parts}" if self._parts else ""
        name = f"part-{self._task:05d}-{self._id}{suffix}.parquet"
        self._parts += 1
        self._filesystem.create_dir(self._directory, recursive=True)
        temp = f"{self._directory}/.{name}.inprogress"
        final = f"{self._directory}/{name}"
        self._stream = self._filesystem.open_output_stream(temp)
        self._writer = pq.ParquetWriter(self._stream, schema)
        self._schema = schema
        self._staged.append((temp, final, f"{self._root.rstrip('/')}/{name}"))

    def _close_part(self) -> None:
        if self._writer is not None:
            writer, stream = self._writer, self._stream
            self._writer = self._stream = None
            self._schema = None
            try:
                writer.close()
            finally:
                stream.close()


def _quarantine_schema(data_schema: pa.Schema) -> pa.Schema:
    metadata = dict(data_schema.metadata or {})
    metadata.pop(b"pandas", None)  # it would describe only the data's columns
    fields = list(data_schema) + [
        pa.field("_error", pa.string(), nullable=False),
        pa.field("_row", pa.int64(), nullable=False),
        pa.field("_block", pa.int64(), nullable=False),
        pa.field("_task", pa.int64(), nullable=False),
        pa.field("_in_doubt", pa.bool_(), nullable=False),
    ]
    return pa.schema(fields, metadata=metadata or None)


def _check_quarantine_columns(names: Iterable[str]) -> None:
    clashes = [name for name in names if name in QUARANTINE_COLUMNS]
    if clashes:
        raise ValueError(
            f"ZerobusDatasink quarantine: the data already has column(s) {clashes}; the "
            f"quarantine files add {list(QUARANTINE_COLUMNS)}: rename those columns"
        )


def _normalize_path(path: Any) -> Optional[str]:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"quarantine_path must be a str, os.PathLike or None, got {type(path).__name__}"
        )
    text = os.fsdecode(os.fspath(path))
    if not text:
        raise ValueError("quarantine_path must not be empty")
    if "://" in text:
        from pyarrow import fs as pafs

        pafs.FileSystem.from_uri(text)  # an unknown scheme fails now, on the driver
        return text
    return os.path.abspath(text)


# ---- messages ------------------------------------------------------------------------------


def _describe(account: Mapping[str, Any]) -> str:
    text = (
        f"{account['rows']} rows in {account['blocks']} blocks"
        + (f" by {account['tasks']} tasks" if "tasks" in account else "")
        + f" to {account.get('table_name')}: {account['landed']} landed, "
        f"{account['failed']} failed ({account['in_doubt']} of them in doubt), "
        f"{account['retried']} rows retried, {account['replayed']} records replayed "
        f"(possible duplicates)"
    )
    if account.get("quarantined"):
        text += f", {account['quarantined']} rows quarantined"
    if account.get("task_retries"):
        text += f", {account['task_retries']} Ray task retries"
    elif account.get("attempt") or account.get("reruns"):
        text += f", attempt {account.get('attempt')}, rerun {account.get('reruns')}"
    if account.get("seconds") is not None:
        text += f", {account['seconds']} s"
    return text


def _failure_message(summary: Mapping[str, Any]) -> str:
    text = (
        f"{summary['failed']} of {summary['rows']} rows were not written to "
        f"{summary.get('table_name')}"
    )
    if summary["in_doubt"]:
        text += f" ({summary['in_doubt']} in doubt: they may be in the table nevertheless)"
    kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(summary["errors"].items()))
    if kinds:
        text += f" [{kinds}]"
    if summary.get("quarantine_path") is not None:
        files = len(summary.get("quarantine_files", []))
        text += f"; quarantined in {summary['quarantine_path']} ({files} file(s))"
    else:
        text += "; no quarantine_path was given, so they were not kept"
    return text
