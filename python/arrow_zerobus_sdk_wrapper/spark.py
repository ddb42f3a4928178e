"""Spark integration: the ``zerobus`` data source (batch writes and Structured Streaming).

    from arrow_zerobus_sdk_wrapper.spark import ZerobusDataSource, last_write_summary

    spark.dataSource.register(ZerobusDataSource)
    (df.write.format("zerobus")
       .mode("append")
       .option("table", "main.default.events")
       .option("quarantine_path", "/mnt/quarantine/events")
       .save())
    print(last_write_summary())

Every Spark task sends its partition's Arrow batches through one ZerobusWrapper (pipelined) and
returns its exact accounting in its commit message; the job's commit adds them up. Options are
WrapperConfiguration's keywords (``table`` is accepted for ``table_name``), given as strings and
converted to each keyword's type; what is not given comes from the environment
(``WrapperConfiguration.from_env()``: ZEROBUS_ENDPOINT, ZEROBUS_CLIENT_ID, ...). The sink's own
options: ``quarantine_path``, ``fail_on_error``, ``max_pending_batches``, ``summary_path``.
docs/spark.md describes all of it. Needs pyspark >= 4.1 (Python data sources with Arrow writers).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import difflib
import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections import deque
from typing import Any, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import pyarrow as pa

try:
    from pyspark.sql.datasource import (
        DataSource,
        DataSourceArrowWriter,
        DataSourceStreamArrowWriter,
        WriterCommitMessage,
    )
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "arrow_zerobus_sdk_wrapper.spark needs pyspark >= 4.1 (Python data sources with Arrow "
        "writers): pip install 'pyspark>=4.1'"
    ) from _error

from . import _core
from ._config import WrapperConfiguration
from ._errors import ConfigurationError, ZerobusError, error_type_of_message
from ._result import TransmissionResult
from ._wrapper import ZerobusWrapper

__all__ = [
    "ZerobusDataSource",
    "ZerobusCommitMessage",
    "RowsFailedError",
    "last_write_summary",
    "micro_batch_summaries",
    "SINK_OPTIONS",
    "QUARANTINE_COLUMNS",
]

logger = logging.getLogger("arrow_zerobus_sdk_wrapper.spark")

#: The sink's own options (besides WrapperConfiguration's keywords) and their defaults.
SINK_OPTIONS: Dict[str, Any] = {
    "quarantine_path": None,
    "fail_on_error": False,
    "max_pending_batches": 16,
    "summary_path": None,
}
#: Columns added to the original ones in quarantine files.
QUARANTINE_COLUMNS = ("_error", "_in_doubt", "_partition")

# Option names that mean table_name.
_TABLE_ALIASES = ("table", "path")
# Options Spark itself adds to a streaming write; not ours to check.
_SPARK_OPTIONS = ("checkpointlocation",)
# Options whose default is None, so their type cannot be read from the default.
_TYPES_OF_NONE_DEFAULTS = {
    "client_id": "str",
    "client_secret": "str",
    "unity_catalog_url": "str",
    "observability_config": "json",
    "debug_arrow_enabled": "bool",
    "debug_protobuf_enabled": "bool",
    "debug_output_dir": "str",
    "debug_max_file_size": "int",
    "debug_max_records_per_file": "int",
    "application_name": "str",
    "ca_file": "str",
    "descriptor": "base64",
}
# Options that may be None although their default is not.
_ALSO_NONE = ("debug_max_files_retained",)
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NONE = ("none", "null")
# The sink's default differs from the library's: Spark's nullability rarely matches a table's
# exactly, which a descriptor generated from the Arrow schema must; the table's own descriptor
# (Unity Catalog) takes any column that fits (docs/spark.md, "Schemas").
_SINK_DESCRIPTOR_SOURCE = "unity_catalog"
_MAX_ERROR_SAMPLES = 5
_MAX_MESSAGE_CHARS = 500


class RowsFailedError(ZerobusError):
    """Raised by the job's commit when ``fail_on_error`` is true and rows failed. The message
    holds the totals, the errors by kind, a sample of messages and the quarantine location."""

    retryable = False
    prefix = "Rows failed: "


# ---- options ----------------------------------------------------------------------------------


def _option_kinds() -> Dict[str, Tuple[str, bool]]:
    """Every WrapperConfiguration keyword -> (value kind, may be None)."""
    kinds: Dict[str, Tuple[str, bool]] = {}
    for name, default in _core.default_options().items():
        if default is None:
            # A new option the table above does not know yet converts to nothing (an error
            # naming it when given); the test of every option finds it.
            kinds[name] = (_TYPES_OF_NONE_DEFAULTS.get(name, "unknown"), True)
        elif isinstance(default, bool):
            kinds[name] = ("bool", name in _ALSO_NONE)
        elif isinstance(default, int):
            kinds[name] = ("int", name in _ALSO_NONE)
        elif isinstance(default, float):
            kinds[name] = ("float", name in _ALSO_NONE)
        elif isinstance(default, str):
            kinds[name] = ("str", name in _ALSO_NONE)
        else:  # pragma: no cover - guarded by the test that converts every option
            kinds[name] = ("unknown", True)
    return kinds


_KINDS = _option_kinds()
_SINK_KINDS: Dict[str, Tuple[str, bool]] = {
    "quarantine_path": ("str", True),
    "fail_on_error": ("bool", False),
    "max_pending_batches": ("int", False),
    "summary_path": ("str", True),
}


def _option_error(name: str, detail: str) -> ConfigurationError:
    return ConfigurationError(f"{ConfigurationError.prefix}Spark option '{name}': {detail}")


def _convert(name: str, value: Any, kind: str, optional: bool) -> Any:
    """One Spark option value (a string) as the keyword's Python type."""
    if not isinstance(value, str):  # given from Python (tests, direct use): taken as it is
        return value
    # Never quote the secret, even in an error.
    shown = "the value" if name == "client_secret" else repr(value if len(value) <= 80 else value[:80] + "...")
    text = value.strip()
    if kind == "str":
        return value
    if optional and text.lower() in _NONE:
        return None
    if kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise _option_error(name, f"{shown} is not a boolean (true or false)")
    if kind == "int":
        try:
            return int(text, 10)
        except ValueError:
            raise _option_error(name, f"{shown} is not an integer") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise _option_error(name, f"{shown} is not a number") from None
    if kind == "json":
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise _option_error(name, f"{shown} is not JSON ({error})") from None
        if parsed is not None and not isinstance(parsed, dict):
            raise _option_error(name, f"{shown} is not a JSON object")
        return parsed
    if kind == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _option_error(
                name, "is not base64 text (give the serialized DescriptorProto as base64)"
            ) from None
    raise _option_error(name, "cannot be given as a Spark option (no conversion from text is "
                              "known for it)")


@dataclasses.dataclass(frozen=True)
class _Settings:
    """The sink's own options."""

    quarantine_path: Optional[str]
    fail_on_error: bool
    max_pending_batches: int
    summary_path: Optional[str]
    checkpoint_location: Optional[str]


def _resolve(options: Mapping[str, Any]) -> Tuple[WrapperConfiguration, _Settings]:
    """The wrapper configuration and the sink settings from a write's options.

    Options are WrapperConfiguration's keywords (case-insensitive, as Spark passes them) plus
    the sink's own; anything not given comes from WrapperConfiguration.from_env().
    """
    given: Dict[str, Any] = {}
    sink: Dict[str, Any] = dict(SINK_OPTIONS)
    checkpoint: Optional[str] = None
    unknown: List[str] = []
    table_given_as: Optional[str] = None
    for raw_name, value in options.items():
        name = raw_name.lower()
        if name in _TABLE_ALIASES or name == "table_name":
            if table_given_as is not None and given["table_name"] != value:
                raise _option_error(
                    name, f"the table is given twice, as '{table_given_as}' and as '{name}', "
                    "with different values"
                )
            table_given_as = name
            given["table_name"] = _convert("table_name", value, "str", False)
        elif name in _KINDS:
            kind, optional = _KINDS[name]
            given[name] = _convert(name, value, kind, optional)
        elif name in _SINK_KINDS:
            kind, optional = _SINK_KINDS[name]
            sink[name] = _convert(name, value, kind, optional)
        elif name in _SPARK_OPTIONS:
            checkpoint = value
        else:
            unknown.append(raw_name)
    if unknown:
        known = sorted([*_KINDS, *_SINK_KINDS, "table"])
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.lower(), known, n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ConfigurationError(
            f"{ConfigurationError.prefix}unknown Spark option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(hints)} for format 'zerobus': options are WrapperConfiguration's "
            "keywords (table for table_name) and quarantine_path, fail_on_error, "
            "max_pending_batches, summary_path (docs/spark.md)"
        )
    if not isinstance(sink["max_pending_batches"], int) or sink["max_pending_batches"] < 1:
        raise _option_error("max_pending_batches", "must be an integer of at least 1")

    # The environment gives what the options do not (ZEROBUS_* and the other variables of
    # docs/configuration.md, read where the write is planned: on the driver's host).
    values = WrapperConfiguration.from_env().to_dict()
    if (
        "descriptor_source" not in given
        and "descriptor" not in given
        and "ZEROBUS_DESCRIPTOR_SOURCE" not in os.environ
        and values.get("descriptor") is None
    ):
        values["descriptor_source"] = _SINK_DESCRIPTOR_SOURCE
    values.update(given)
    try:
        config = WrapperConfiguration._from_options(values)
    except TypeError as error:
        # A value of the wrong type given from Python: the message names the option.
        raise ConfigurationError(f"{ConfigurationError.prefix}{error}") from None
    if not config.table_name:
        raise ConfigurationError(
            f"{ConfigurationError.prefix}no table: give option('table', 'catalog.schema.table') "
            "or set ZEROBUS_TABLE_NAME"
        )
    if not config.endpoint and not config.zerobus_writer_disabled:
        raise ConfigurationError(
            f"{ConfigurationError.prefix}no endpoint: give option('endpoint', 'https://...') or "
            "set ZEROBUS_ENDPOINT"
        )
    quarantine = sink["quarantine_path"]
    if quarantine is not None and not quarantine.strip():
        raise _option_error("quarantine_path", "is empty")
    settings = _Settings(
        quarantine_path=_absolute_location(quarantine) if quarantine else None,
        fail_on_error=bool(sink["fail_on_error"]),
        max_pending_batches=int(sink["max_pending_batches"]),
        summary_path=_absolute_location(sink["summary_path"]) if sink["summary_path"] else None,
        checkpoint_location=checkpoint,
    )
    return config, settings


def _absolute_location(location: str) -> str:
    """A URI is kept; a local path is made absolute where the write is planned (executors run
    in other working directories)."""
    if "://" in location:
        return location
    return os.path.abspath(os.path.expanduser(location))


def _check_config(config: WrapperConfiguration) -> None:
    """Every rule the wrapper's construction checks (credentials included), without making a
    wrapper (no debug files, no telemetry on the driver): a misconfigured write fails there,
    before any task starts."""
    config.validate()
    config._native().validate_for_wrapper()


# ---- the data source --------------------------------------------------------------------------


class ZerobusDataSource(DataSource):
    """The ``zerobus`` data source: ``spark.dataSource.register(ZerobusDataSource)``, then
    ``df.write.format("zerobus").mode("append").option("table", ...).save()`` or
    ``df.writeStream.format("zerobus").option("table", ...).option("checkpointLocation", ...)
    .start()``. Write-only; append only (Zerobus appends)."""

    @classmethod
    def name(cls) -> str:
        return "zerobus"

    def writer(self, schema: Any, overwrite: bool) -> "_ZerobusBatchWriter":
        return _ZerobusBatchWriter(self._plan(schema, overwrite, "batch"))

    def streamWriter(self, schema: Any, overwrite: bool) -> "_ZerobusStreamWriter":
        return _ZerobusStreamWriter(self._plan(schema, overwrite, "stream"))

    def _plan(self, schema: Any, overwrite: bool, mode: str) -> "_Plan":
        if overwrite:
            raise ConfigurationError(
                f"{ConfigurationError.prefix}format 'zerobus' only appends (Zerobus cannot "
                "replace a table's rows): use mode('append') / outputMode('append')"
            )
        config, settings = _resolve(self.options)
        _check_config(config)
        names = list(getattr(schema, "names", None) or [])
        if settings.quarantine_path is not None:
            taken = [name for name in QUARANTINE_COLUMNS if name in names]
            if taken:
                raise ConfigurationError(
                    f"{ConfigurationError.prefix}column{'s' if len(taken) > 1 else ''} "
                    f"{', '.join(taken)}: these names are reserved for the quarantine's own "
                    "columns when quarantine_path is set"
                )
            _make_directory(settings.quarantine_path)
        return _Plan(
            config=config,
            settings=settings,
            write_id=uuid.uuid4().hex[:16],
            mode=mode,
            started=time.time(),
        )


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every task of one write (one micro-batch, when streaming) needs; pickled to them."""

    config: WrapperConfiguration
    settings: _Settings
    write_id: str
    mode: str
    started: float

    def __repr__(self) -> str:  # the configuration's repr shows the secret as ***
        return f"_Plan(write_id={self.write_id!r}, mode={self.mode!r}, config={self.config!r})"


# ---- commit messages --------------------------------------------------------------------------


@dataclasses.dataclass
class ZerobusCommitMessage(WriterCommitMessage):
    """One task's exact accounting, sent to the driver's commit.

    ``rows == landed + failed``; ``in_doubt`` of the failed rows may be in the table anyway;
    ``replayed`` records went on the wire a second time (the table may hold up to that many
    duplicates); ``attempt`` is Spark's attempt number of the task (0 first): a task that
    Spark ran again sent all its rows again.
    """

    write_id: str
    partition: int
    attempt: int
    stage: int
    task_attempt_id: int
    batch_id: Optional[int]
    rows: int = 0
    landed: int = 0
    failed: int = 0
    in_doubt: int = 0
    batches: int = 0
    retries: int = 0
    rows_retried: int = 0
    replayed: int = 0
    streams_opened: int = 0
    started: float = 0.0
    quarantined: int = 0
    quarantine_file: Optional[str] = None
    error_types: Dict[str, int] = dataclasses.field(default_factory=dict)
    errors: List[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


# ---- writers ----------------------------------------------------------------------------------


class _WriterBase:
    """The task-side send loop and the driver-side commit shared by both writers."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._plan!r})"

    def _write(self, batches: Iterator[pa.RecordBatch]) -> ZerobusCommitMessage:
        plan = self._plan
        started = time.monotonic()
        partition, attempt, stage, task_attempt_id, batch_id = _task_identity()
        message = ZerobusCommitMessage(
            write_id=plan.write_id,
            partition=partition,
            attempt=attempt,
            stage=stage,
            task_attempt_id=task_attempt_id,
            batch_id=batch_id,
            started=time.time(),
        )
        quarantine = (
            _Quarantine(plan, message) if plan.settings.quarantine_path is not None else None
        )
        limit = plan.settings.max_pending_batches
        pending: Deque[Tuple[pa.RecordBatch, TransmissionResult]] = deque()
        wrapper = ZerobusWrapper(plan.config)
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                pending.append((batch, wrapper.send_batch(batch)))
                message.batches += 1
                while len(pending) > limit:
                    _settle(message, quarantine, *pending.popleft())
            while pending:
                _settle(message, quarantine, *pending.popleft())
        except BaseException:
            # The input (or the quarantine) failed: the rows already sent are still flushed,
            # and the task fails with the original error.
            try:
                wrapper.shutdown()
            except Exception:  # the original error is the one to report
                pass
            finally:
                if quarantine is not None:
                    quarantine.close()
            raise
        wrapper.shutdown()
        if quarantine is not None:
            quarantine.close()
        stats = wrapper.stats()
        message.retries = int(stats.get("retries", 0))
        message.rows_retried = int(stats.get("rows_retried", 0))
        message.replayed = int(stats.get("replayed_records", 0))
        message.streams_opened = int(stats.get("streams_opened", 0))
        message.seconds = round(time.monotonic() - started, 3)
        return message

    def _summary(self, messages: List[Optional[WriterCommitMessage]], status: str,
                 batch_id: Optional[int] = None) -> Dict[str, Any]:
        plan = self._plan
        summary = _add_up(messages)
        # A streaming commit runs with a writer made for it: the tasks' start times count.
        started = min([plan.started] + [m.started for m in messages
                                         if isinstance(m, ZerobusCommitMessage) and m.started])
        finished = time.time()
        summary.update(
            status=status,
            mode=plan.mode,
            write_id=_write_id(messages, plan.write_id),
            table=plan.config.table_name,
            endpoint=plan.config.endpoint,
            quarantine_path=plan.settings.quarantine_path,
            fail_on_error=plan.settings.fail_on_error,
            started_at=_iso(started),
            finished_at=_iso(finished),
            seconds=round(finished - started, 3),
        )
        if batch_id is not None:
            summary["batch_id"] = batch_id
            summary["checkpoint_location"] = plan.settings.checkpoint_location
        return summary

    def _finish(self, messages: List[Optional[WriterCommitMessage]], status: str,
                batch_id: Optional[int] = None) -> Dict[str, Any]:
        summary = self._summary(messages, status, batch_id)
        if status == "aborted" and _failed_on_purpose(summary, self._plan.settings):
            # Spark aborts a write whose commit raised: that was fail_on_error, and the summary
            # published then (status "failed") is the one that stands.
            return summary
        if plan_quarantine := self._plan.settings.quarantine_path:
            summary["quarantine_files_removed"] = _remove_stale_quarantine(
                plan_quarantine, summary["write_id"], summary["quarantine_files"]
            )
        failing = status == "committed" and self._plan.settings.fail_on_error and summary["failed"] > 0
        if failing:
            summary["status"] = "failed"
        _publish(summary, self._plan.settings)
        _log_summary(summary)
        if failing:
            raise RowsFailedError(RowsFailedError.prefix + _failure_text(summary))
        return summary


class _ZerobusBatchWriter(_WriterBase, DataSourceArrowWriter):
    """Batch write: each task sends its partition; commit() reports the job's totals."""

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ZerobusCommitMessage:
        return self._write(iterator)

    def commit(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        self._finish(messages, "committed")

    def abort(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        # Zerobus has no transactions: the rows that tasks landed stay. The summary says which.
        self._finish(messages, "aborted")


class _ZerobusStreamWriter(_WriterBase, DataSourceStreamArrowWriter):
    """Streaming write: each micro-batch's tasks send their partitions; commit() reports the
    micro-batch's totals."""

    def write(self, iterator: Iterator[pa.RecordBatch]) -> ZerobusCommitMessage:
        return self._write(iterator)

    def commit(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        self._finish(messages, "committed", batchId)

    def abort(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        self._finish(messages, "aborted", batchId)


def _task_identity() -> Tuple[int, int, int, int, Optional[int]]:
    """(partition, attempt number, stage, task attempt id, micro-batch id or None)."""
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
    except ImportError:  # pragma: no cover
        context = None
    if context is None:  # called outside a Spark task (direct use, tests)
        return 0, 0, 0, 0, None
    batch = context.getLocalProperty("streaming.sql.batchId")
    return (
        int(context.partitionId()),
        int(context.attemptNumber()),
        int(context.stageId()),
        int(context.taskAttemptId()),
        int(batch) if batch is not None else None,
    )


def _settle(message: ZerobusCommitMessage, quarantine: Optional["_Quarantine"],
            batch: pa.RecordBatch, result: TransmissionResult) -> None:
    """Waits for one batch's outcome and adds it to the task's accounting."""
    message.rows += result.total_rows
    message.landed += result.successful_count
    failed = result.failed_count
    if not failed:
        return
    message.failed += failed
    message.in_doubt += result.in_doubt_count
    rows = result.failed_rows or []
    for _, text in rows:
        kind = error_type_of_message(text)
        message.error_types[kind] = message.error_types.get(kind, 0) + 1
        if len(message.errors) < _MAX_ERROR_SAMPLES and text not in message.errors:
            message.errors.append(_shorten(text))
    if quarantine is not None:
        quarantine.add(batch, result, rows)


# ---- quarantine -------------------------------------------------------------------------------


def _filesystem(location: str) -> Tuple[Any, str]:
    import pyarrow.fs as pafs

    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), location


def _make_directory(location: str) -> None:
    filesystem, path = _filesystem(location)
    filesystem.create_dir(path, recursive=True)


class _Quarantine:
    """The failed rows of one task attempt, with their error, in one Parquet file."""

    def __init__(self, plan: _Plan, message: ZerobusCommitMessage) -> None:
        assert plan.settings.quarantine_path is not None
        parts = [plan.write_id]
        if message.batch_id is not None:
            parts.append(f"batch-{message.batch_id}")
        parts += [f"part-{message.partition:05d}", f"attempt-{message.attempt}"]
        self._name = "-".join(parts) + ".parquet"
        self._directory = plan.settings.quarantine_path
        self._message = message
        self._writer: Any = None

    def add(self, batch: pa.RecordBatch, result: TransmissionResult,
            failed_rows: List[Tuple[int, str]]) -> None:
        import pyarrow.parquet as pq

        rows = result.extract_failed_batch(batch)
        if rows is None:
            return
        in_doubt = set(result.in_doubt_rows)
        rows = (
            rows.append_column("_error", pa.array([text for _, text in failed_rows], pa.string()))
            .append_column("_in_doubt", pa.array([index in in_doubt for index, _ in failed_rows], pa.bool_()))
            .append_column("_partition", pa.array([self._message.partition] * rows.num_rows, pa.int32()))
        )
        if self._writer is None:
            filesystem, directory = _filesystem(self._directory)
            filesystem.create_dir(directory, recursive=True)
            path = directory.rstrip("/") + "/" + self._name
            self._writer = pq.ParquetWriter(path, rows.schema, filesystem=filesystem)
            self._message.quarantine_file = self._name
        self._writer.write_batch(rows)
        self._message.quarantined += rows.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _remove_stale_quarantine(location: str, write_id: str, kept: List[str]) -> int:
    """Removes this write's quarantine files that no committed task reported (attempts that
    failed and were run again); returns how many."""
    import pyarrow.fs as pafs

    filesystem, directory = _filesystem(location)
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    except OSError:  # pragma: no cover - a store that cannot list
        return 0
    removed = 0
    keep = set(kept)
    for info in infos:
        name = info.base_name
        if name.startswith(write_id + "-") and name.endswith(".parquet") and name not in keep:
            filesystem.delete_file(info.path)
            removed += 1
    return removed


# ---- summaries --------------------------------------------------------------------------------

_COUNTS = ("rows", "landed", "failed", "in_doubt", "batches", "retries", "rows_retried",
           "replayed", "streams_opened", "quarantined")


def _add_up(messages: Iterable[Optional[WriterCommitMessage]]) -> Dict[str, Any]:
    totals: Dict[str, Any] = {name: 0 for name in _COUNTS}
    error_types: Dict[str, int] = {}
    errors: List[str] = []
    files: List[str] = []
    tasks = missing = task_retries = rows_in_retried_tasks = 0
    for message in messages:
        if not isinstance(message, ZerobusCommitMessage):
            missing += 1
            continue
        tasks += 1
        for name in _COUNTS:
            totals[name] += getattr(message, name)
        for kind, count in message.error_types.items():
            error_types[kind] = error_types.get(kind, 0) + count
        for text in message.errors:
            if len(errors) < 2 * _MAX_ERROR_SAMPLES and text not in errors:
                errors.append(text)
        if message.quarantine_file:
            files.append(message.quarantine_file)
        if message.attempt > 0:
            task_retries += message.attempt
            rows_in_retried_tasks += message.rows
    totals.update(
        tasks=tasks,
        tasks_without_message=missing,
        task_retries=task_retries,
        rows_in_retried_tasks=rows_in_retried_tasks,
        # Upper bound on rows the table may hold twice: records replayed on the wire, plus the
        # rows of tasks that Spark ran again (an earlier attempt may have landed some of them).
        possibly_duplicated=totals["replayed"] + rows_in_retried_tasks,
        error_types={kind: error_types[kind] for kind in sorted(error_types)},
        errors=errors,
        quarantine_files=sorted(files),
    )
    return totals


def _write_id(messages: Iterable[Optional[WriterCommitMessage]], default: str) -> str:
    # A streaming commit runs with a writer made again for it: the tasks' id is the one to use.
    for message in messages:
        if isinstance(message, ZerobusCommitMessage):
            return message.write_id
    return default


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def _failure_text(summary: Mapping[str, Any]) -> str:
    kinds = ", ".join(f"{kind} {count}" for kind, count in summary["error_types"].items())
    text = (
        f"{summary['failed']} of {summary['rows']} rows failed writing to {summary['table']} "
        f"({kinds}); {summary['landed']} landed"
    )
    if summary.get("batch_id") is not None:
        text += f" (micro-batch {summary['batch_id']})"
    if summary["quarantine_path"]:
        text += f"; failed rows with their errors are in {summary['quarantine_path']}"
    if summary["errors"]:
        text += f"; first error: {summary['errors'][0]}"
    return text


def _summary_directory() -> str:
    """Where commits leave their summaries for `last_write_summary` and
    `micro_batch_summaries`: a per-user directory in the temporary directory of the host that
    commits (Spark's driver host)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"arrow-zerobus-spark-{uid}")


def _stream_file(key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return os.path.join(_summary_directory(), f"stream-{digest}.jsonl")


def _stream_key(checkpoint_location: Optional[str], table: Optional[str]) -> str:
    if checkpoint_location:
        return "checkpoint:" + checkpoint_location
    return "table:" + (table or "").lower()


def _publish(summary: Mapping[str, Any], settings: _Settings) -> None:
    text = json.dumps(summary, sort_keys=True)
    if summary["mode"] == "batch":
        directory = _summary_directory()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        _replace_file(os.path.join(directory, "last_write.json"), text)
        if settings.summary_path:
            _write_location(settings.summary_path, text, append=False)
    else:
        path = _stream_file(_stream_key(settings.checkpoint_location, summary["table"]))
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "a") as f:
            f.write(text + "\n")
        if settings.summary_path:
            _write_location(settings.summary_path, text, append=True)


def _last_published(settings: _Settings, mode: str, table: str) -> Optional[Dict[str, Any]]:
    if mode == "batch":
        return last_write_summary()
    published = micro_batch_summaries(settings.checkpoint_location, table=table)
    return published[-1] if published else None


def _failed_on_purpose(summary: Mapping[str, Any], settings: _Settings) -> bool:
    last = _last_published(settings, summary["mode"], summary["table"])
    return (
        last is not None
        and last.get("status") == "failed"
        and last.get("write_id") == summary["write_id"]
        and last.get("batch_id") == summary.get("batch_id")
    )


def _replace_file(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def _write_location(location: str, text: str, *, append: bool) -> None:
    if "://" not in location:
        os.makedirs(os.path.dirname(location) or ".", exist_ok=True)
        if append:
            with open(location, "a") as f:
                f.write(text + "\n")
        else:
            _replace_file(location, text)
        return
    filesystem, path = _filesystem(location)
    if append:
        with filesystem.open_append_stream(path) as f:
            f.write((text + "\n").encode())
    else:
        with filesystem.open_output_stream(path) as f:
            f.write(text.encode())


def _log_summary(summary: Mapping[str, Any]) -> None:
    what = f"micro-batch {summary['batch_id']}" if summary.get("batch_id") is not None else "write"
    level = logging.WARNING if summary["failed"] or summary["status"] != "committed" else logging.INFO
    logger.log(
        level,
        "zerobus %s to %s %s: %d rows, %d landed, %d failed (%d in doubt), %d replayed, "
        "%d task retries, %d quarantined",
        what, summary["table"], summary["status"], summary["rows"], summary["landed"],
        summary["failed"], summary["in_doubt"], summary["replayed"], summary["task_retries"],
        summary["quarantined"],
    )


def last_write_summary() -> Optional[Dict[str, Any]]:
    """The totals of the last batch write committed (or aborted) on this host, as a dict; None
    when there was none. Call it on the Spark driver (commits run there).

    Keys: ``status`` ("committed", "aborted", "failed" when fail_on_error raised), ``table``,
    ``rows``, ``landed``, ``failed``, ``in_doubt``, ``replayed``, ``retries``,
    ``rows_retried``, ``task_retries``, ``rows_in_retried_tasks``, ``possibly_duplicated``,
    ``quarantined``, ``quarantine_files``, ``error_types``, ``errors``, ``tasks``, ... (see
    docs/spark.md). The ``summary_path`` option writes the same JSON to a place of your choice.
    """
    path = os.path.join(_summary_directory(), "last_write.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def micro_batch_summaries(checkpoint_location: Optional[str] = None, *,
                          table: Optional[str] = None) -> List[Dict[str, Any]]:
    """The accounting of every micro-batch committed (or aborted) by the streaming query with
    this ``checkpointLocation`` option (as given), oldest first; or, for a query without that
    option, of the streaming writes to `table`. Call it on the Spark driver."""
    if checkpoint_location is None and table is None:
        raise TypeError("micro_batch_summaries needs checkpoint_location or table")
    path = _stream_file(_stream_key(checkpoint_location, table))
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
