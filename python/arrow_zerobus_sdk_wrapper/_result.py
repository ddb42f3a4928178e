"""TransmissionResult: the per-row outcome of one `send_batch`, possibly still in flight.

A result made by `ZerobusWrapper.send_batch` wraps a native pending send (`_core.Pending`).
Reading any property or calling any helper waits for the outcome (the GIL is released while
waiting); `await result` waits without blocking the event loop. The outcome is converted to
Python objects lazily: counts come straight from the native result, and the row lists (which
may hold tens of thousands of entries) are built only when something reads them.

A result can also be built by hand with the constructor, as in the original wrapper; its values
are taken as given.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Generator,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

from ._errors import ERROR_CLASSES, error_type_of_message

if TYPE_CHECKING:
    import pyarrow as pa

    from . import _core

__all__ = ["TransmissionResult"]

FailedRow = Tuple[int, str]


class _Given:
    """The values of a hand-built result, shaped like the extension's NativeResult."""

    __slots__ = (
        "success",
        "error",
        "attempts",
        "latency_ms",
        "batch_size_bytes",
        "total_rows",
        "successful_count",
        "failed_count",
        "failed_rows",
        "successful_rows",
        "in_doubt_rows",
        "message",
    )

    success: bool
    error: Optional[str]
    attempts: int
    latency_ms: Optional[float]
    batch_size_bytes: int
    total_rows: int
    successful_count: int
    failed_count: int
    failed_rows: Optional[List[FailedRow]]
    successful_rows: Optional[List[int]]
    in_doubt_rows: List[int]
    message: Optional[str]

    @property
    def in_doubt_count(self) -> int:
        return len(self.in_doubt_rows)


class TransmissionResult:
    """The outcome of one `send_batch`: which rows were delivered and why the others were not.

    For every real send ``successful_count + failed_count == total_rows``, also when the batch
    failed as a whole (then every row is in `failed_rows`). Row indices count from the first
    row of the batch (of the whole stream, for a Table or a RecordBatchReader).
    """

    __slots__ = ("_pending", "_source", "_outcome", "_given", "_cache", "__weakref__")

    def __init__(
        self,
        success: bool,
        *,
        error: Optional[str] = None,
        attempts: int = 1,
        latency_ms: Optional[float] = None,
        batch_size_bytes: int = 0,
        failed_rows: Optional[Iterable[Tuple[int, str]]] = None,
        successful_rows: Optional[Iterable[int]] = None,
        total_rows: int = 0,
        successful_count: int = 0,
        failed_count: int = 0,
        message: Optional[str] = None,
        in_doubt_rows: Optional[Iterable[int]] = None,
    ) -> None:
        given = _Given()
        given.success = success
        given.error = error
        given.attempts = attempts
        given.latency_ms = latency_ms
        given.batch_size_bytes = batch_size_bytes
        given.total_rows = total_rows
        given.successful_count = successful_count
        given.failed_count = failed_count
        # Counts are not checked against the lists (the contract: taken as given); only the
        # order of failed_rows is normalized, because the property promises it sorted.
        given.failed_rows = (
            None
            if failed_rows is None
            else sorted(((int(i), m) for i, m in failed_rows), key=lambda row: row[0])
        )
        given.successful_rows = None if successful_rows is None else list(successful_rows)
        given.in_doubt_rows = [] if in_doubt_rows is None else list(in_doubt_rows)
        given.message = message
        self._pending: Optional[_core.Pending] = None
        self._source: Any = None
        self._outcome: Any = given
        self._given: Optional[_Given] = given
        self._cache: Dict[str, Any] = {}

    @classmethod
    def _from_pending(cls, pending: _core.Pending, source: Any = None) -> TransmissionResult:
        """A result for a send still in flight.

        `source` is kept only for callers that want the input held until the outcome is known;
        send_batch passes none (the input is fully read before it returns).
        """
        self = cls.__new__(cls)
        self._pending = pending
        self._source = source
        self._outcome = None
        self._given = None
        self._cache = {}
        return self

    # ---- waiting ----------------------------------------------------------------------------

    def _resolve(self) -> Any:
        """The outcome (NativeResult or _Given), waiting for it if needed."""
        outcome = self._outcome
        if outcome is not None:
            return outcome
        pending = self._pending
        if pending is None:  # another thread resolved it between the two reads
            return self._outcome
        outcome = pending.result()
        # Publish the outcome before dropping the pending handle (see the check above).
        self._outcome = outcome
        self._pending = None
        self._source = None
        return outcome

    def done(self) -> bool:
        """True when the outcome is known (reading it will not wait)."""
        pending = self._pending
        return pending is None or pending.done()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits up to `timeout` seconds (None: no limit) for the outcome; True when known.

        The GIL is released while waiting; Ctrl-C interrupts it.
        """
        pending = self._pending
        if pending is None:
            return True
        if not pending.wait(timeout):
            return False
        self._resolve()  # does not block now; releases the pending handle and the source
        return True

    def __await__(self) -> Generator[Any, None, TransmissionResult]:
        pending = self._pending
        if pending is not None:
            if not pending.done():
                yield from _completion_future(pending).__await__()
            self._resolve()  # done: does not block; releases the pending handle and the source
        return self

    # ---- scalar fields ----------------------------------------------------------------------

    @property
    def success(self) -> bool:
        """True when at least one row was delivered, or the batch was empty."""
        return bool(self._resolve().success)

    @property
    def error(self) -> Optional[str]:
        """A summary error message when rows failed, else None."""
        return self._resolve().error

    @property
    def message(self) -> Optional[str]:
        """The `message` given to the constructor (kept for compatibility); None for sends."""
        return self._given.message if self._given is not None else None

    @property
    def attempts(self) -> int:
        """Attempts made for the batch, the first included."""
        return int(self._resolve().attempts)

    @property
    def latency_ms(self) -> Optional[float]:
        """Time from the send to its outcome, in milliseconds."""
        return self._resolve().latency_ms

    @property
    def batch_size_bytes(self) -> int:
        """Bytes of the encoded records sent."""
        return int(self._resolve().batch_size_bytes)

    @property
    def retried_rows(self) -> int:
        """Rows sent again on a fresh stream after their stream failed (each re-send counts)."""
        return int(getattr(self._resolve(), "retried_rows", 0))

    @property
    def replayed_rows(self) -> int:
        """Row copies that went on the wire again: the table may hold up to this many duplicates
        of this send's rows (at-least-once delivery)."""
        return int(getattr(self._resolve(), "replayed_rows", 0))

    @property
    def wire_copies(self) -> int:
        """Copies of this send's rows that went on the wire, first sends included (at most
        ``max_sends_per_row`` per row)."""
        return int(getattr(self._resolve(), "wire_copies", 0))

    @property
    def rows_sent_more_than_once(self) -> int:
        """Rows of this send that went on the wire more than once."""
        return int(getattr(self._resolve(), "rows_sent_more_than_once", 0))

    @property
    def total_rows(self) -> int:
        return int(self._resolve().total_rows)

    @property
    def successful_count(self) -> int:
        return int(self._resolve().successful_count)

    @property
    def failed_count(self) -> int:
        return int(self._resolve().failed_count)

    @property
    def in_doubt_count(self) -> int:
        """How many failed rows are in doubt (see `in_doubt_rows`)."""
        return int(self._resolve().in_doubt_count)

    # ---- row lists (built once, on first read) ----------------------------------------------

    @property
    def failed_rows(self) -> Optional[List[FailedRow]]:
        """``(row_index, error_message)`` tuples sorted by index; None when no row failed.

        The list is built on first read and the same list is returned afterwards.
        """
        cache = self._cache
        if "failed_rows" not in cache:
            outcome = self._resolve()
            if self._given is not None:
                cache["failed_rows"] = self._given.failed_rows
            else:
                # The original wrapper documented None for "no failed row".
                cache["failed_rows"] = list(outcome.failed_rows) if outcome.failed_count else None
        return cache["failed_rows"]

    @property
    def successful_rows(self) -> Optional[List[int]]:
        """Indices of the delivered rows, ascending; None when no row was delivered."""
        cache = self._cache
        if "successful_rows" not in cache:
            outcome = self._resolve()
            if self._given is not None:
                cache["successful_rows"] = self._given.successful_rows
            else:
                cache["successful_rows"] = (
                    list(outcome.successful_rows) if outcome.successful_count else None
                )
        return cache["successful_rows"]

    @property
    def in_doubt_rows(self) -> List[int]:
        """Failed rows whose request reached the server but was not acknowledged before its
        stream ended. They may be in the table: sending them again may duplicate them."""
        cache = self._cache
        if "in_doubt_rows" not in cache:
            outcome = self._resolve()
            if self._given is not None:
                cache["in_doubt_rows"] = self._given.in_doubt_rows
            else:
                cache["in_doubt_rows"] = list(outcome.in_doubt_rows) if outcome.in_doubt_count else []
        return cache["in_doubt_rows"]

    def _failed(self) -> List[FailedRow]:
        return self.failed_rows or []

    # ---- helpers ----------------------------------------------------------------------------

    def get_failed_row_indices(self) -> List[int]:
        """Indices of the failed rows, ascending (a new list)."""
        return [index for index, _ in self._failed()]

    def get_successful_row_indices(self) -> List[int]:
        """Indices of the delivered rows (a new list)."""
        return list(self.successful_rows or ())

    def get_failed_row_indices_by_error_type(self, error_type: str) -> List[int]:
        """Indices of the failed rows whose error is of the kind named `error_type`
        (a class name such as ``"ConversionError"``); an unknown name has no rows."""
        if error_type not in ERROR_CLASSES:
            return []
        kinds = _KindMemo()
        return [index for index, message in self._failed() if kinds(message) == error_type]

    def group_errors_by_type(self) -> Dict[str, List[int]]:
        """Error class name -> indices of the failed rows of that kind (ascending)."""
        groups: Dict[str, List[int]] = {}
        kinds = _KindMemo()
        for index, message in self._failed():
            groups.setdefault(kinds(message), []).append(index)
        return {name: groups[name] for name in sorted(groups)}

    def get_error_statistics(self) -> Dict[str, Any]:
        """Counts, rates (0.0 when there are no rows) and failed rows per error kind."""
        total = self.total_rows
        successful = self.successful_count
        failed = self.failed_count
        counts: Dict[str, int] = {}
        kinds = _KindMemo()
        for _, message in self._failed():
            kind = kinds(message)
            counts[kind] = counts.get(kind, 0) + 1
        return {
            "total_rows": total,
            "successful_count": successful,
            "failed_count": failed,
            "success_rate": successful / total if total > 0 else 0.0,
            "failure_rate": failed / total if total > 0 else 0.0,
            "error_type_counts": {name: counts[name] for name in sorted(counts)},
        }

    def get_error_messages(self) -> List[str]:
        """The failed rows' messages, in row order."""
        return [message for _, message in self._failed()]

    def is_partial_success(self) -> bool:
        """True when some rows were delivered and some failed."""
        return self.successful_count > 0 and self.failed_count > 0

    def has_failed_rows(self) -> bool:
        if self._given is not None:
            return bool(self._given.failed_rows)
        return self.failed_count > 0

    def has_successful_rows(self) -> bool:
        if self._given is not None:
            return bool(self._given.successful_rows)
        return self.successful_count > 0

    def extract_failed_batch(self, batch: Any) -> Optional[pa.RecordBatch]:
        """The failed rows of `batch` (the data that was sent) as one pyarrow RecordBatch, in
        index order; None when no row failed.

        `batch` may be any Arrow data (PyCapsule interface). ValueError when an index is outside
        it, which means it is not the batch that was sent.
        """
        if not self.has_failed_rows():
            return None
        return self._extract(batch, "extract_failed_batch", failed=True)

    def extract_successful_batch(self, batch: Any) -> Optional[pa.RecordBatch]:
        """The delivered rows of `batch` as one pyarrow RecordBatch, in index order; None when no
        row was delivered."""
        if not self.has_successful_rows():
            return None
        return self._extract(batch, "extract_successful_batch", failed=False)

    def _extract(self, batch: Any, caller: str, *, failed: bool) -> pa.RecordBatch:
        record_batch = _as_record_batch(batch, caller)
        num_rows = record_batch.num_rows
        if self._given is None:
            # A real send's counts are exact: when every row is selected and the batch has that
            # many rows, the answer is the batch itself (no index list built).
            count = self.failed_count if failed else self.successful_count
            if count == self.total_rows == num_rows:
                return record_batch
            indices = self.get_failed_row_indices() if failed else self.get_successful_row_indices()
        else:
            # Hand-built lists are taken as given: sort them for "index order".
            indices = sorted(
                self.get_failed_row_indices() if failed else self.get_successful_row_indices()
            )
        return _take_rows(record_batch, indices)

    # ---- pickling ---------------------------------------------------------------------------

    def __reduce__(self) -> Any:
        # A result travels (e.g. from a Spark or Ray task back to the driver) as its values: the
        # outcome is awaited here and rebuilt on the other side as a plain result.
        state = {
            "success": self.success,
            "error": self.error,
            "attempts": self.attempts,
            "latency_ms": self.latency_ms,
            "batch_size_bytes": self.batch_size_bytes,
            "failed_rows": self.failed_rows,
            "successful_rows": self.successful_rows,
            "total_rows": self.total_rows,
            "successful_count": self.successful_count,
            "failed_count": self.failed_count,
            "message": self.message,
            "in_doubt_rows": self.in_doubt_rows,
        }
        return (_restore_result, (state,))

    # ---- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        if not self.done():
            return "TransmissionResult(pending)"
        outcome = self._resolve()
        parts = [
            f"success={bool(outcome.success)}",
            f"total_rows={outcome.total_rows}",
            f"successful_count={outcome.successful_count}",
            f"failed_count={outcome.failed_count}",
            f"in_doubt_count={outcome.in_doubt_count}",
            f"attempts={outcome.attempts}",
        ]
        if outcome.latency_ms is not None:
            parts.append(f"latency_ms={outcome.latency_ms:.3f}")
        parts.append(f"batch_size_bytes={outcome.batch_size_bytes}")
        if outcome.error is not None:
            parts.append(f"error={_shorten(outcome.error)!r}")
        return f"TransmissionResult({', '.join(parts)})"


def _restore_result(state: Dict[str, Any]) -> TransmissionResult:
    values = dict(state)
    return TransmissionResult(values.pop("success"), **values)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class _KindMemo:
    """error_type_of_message with a per-call memo: a whole-batch failure repeats one message
    for every row, so each distinct message is classified once."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: Dict[str, str] = {}

    def __call__(self, message: str) -> str:
        kind = self._seen.get(message)
        if kind is None:
            kind = self._seen[message] = error_type_of_message(message)
        return kind


# ---- Arrow helpers --------------------------------------------------------------------------

_ARROW_TYPE_HINT = (
    "Arrow data (an object with __arrow_c_array__ or __arrow_c_stream__: pyarrow "
    "RecordBatch/Table/RecordBatchReader, polars DataFrame, DuckDB relation, ...)"
)


def _as_record_batch(data: Any, caller: str) -> pa.RecordBatch:
    """`data` as one pyarrow RecordBatch (a stream's batches joined in order)."""
    import pyarrow as pa

    if isinstance(data, pa.RecordBatch):
        return data
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatchReader):
        table = data.read_all()
    elif hasattr(data, "__arrow_c_array__") and not hasattr(data, "__arrow_c_stream__"):
        return pa.record_batch(data)
    elif hasattr(data, "__arrow_c_array__"):
        # Both interfaces (e.g. a nanoarrow Array): one contiguous array exports as such; several
        # chunks only as a stream (as send_batch does).
        try:
            return pa.record_batch(data)
        except Exception:
            table = pa.RecordBatchReader.from_stream(data).read_all()
    elif hasattr(data, "__arrow_c_stream__"):
        table = pa.RecordBatchReader.from_stream(data).read_all()
    else:
        raise TypeError(f"{caller} expects {_ARROW_TYPE_HINT}; got {type(data).__name__}")
    # One array per column, so that row indices address the whole table; an empty table gives
    # empty columns rather than no batch at all.
    columns = [column.combine_chunks() for column in table.columns]
    return pa.RecordBatch.from_arrays(columns, schema=table.schema)


def _take_rows(batch: pa.RecordBatch, indices: Sequence[int]) -> pa.RecordBatch:
    """The rows at `indices` (ascending) of `batch`; ValueError naming an index outside it."""
    import pyarrow as pa

    num_rows = batch.num_rows
    if not indices:
        return batch.slice(0, 0)
    # Sorted, so the ends are the only candidates for being out of range.
    for index in (indices[0], indices[-1]):
        if index < 0 or index >= num_rows:
            raise ValueError(
                f"row index {index} is outside the batch of {num_rows} rows "
                "(is this the batch that was sent?)"
            )
    first, last = indices[0], indices[-1]
    if last - first + 1 == len(indices):
        # Consecutive rows (the common case: a failed tail, a delivered head): zero-copy slice.
        return batch.slice(first, len(indices))
    try:
        return batch.take(pa.array(indices, type=pa.int64()))
    except pa.ArrowNotImplementedError:
        # Some types have no take kernel (string_view / binary_view, which polars exports):
        # join slices of the runs of consecutive indices instead.
        return pa.concat_batches([batch.slice(start, length) for start, length in _runs(indices)])


def _runs(indices: Sequence[int]) -> List[Tuple[int, int]]:
    """(start, length) of each run of consecutive indices, in order."""
    runs: List[Tuple[int, int]] = []
    start = previous = indices[0]
    for index in indices[1:]:
        if index != previous + 1:
            runs.append((start, previous - start + 1))
            start = index
        previous = index
    runs.append((start, previous - start + 1))
    return runs


# ---- asyncio bridge -------------------------------------------------------------------------
#
# One native Notifier per event loop: its file descriptor becomes readable when a watched send
# completes, the loop's reader callback drains the completed tokens and resolves their futures.
# No thread per send, no polling, and no Python code runs on C++ threads.


class _LoopBridge:
    __slots__ = ("_notifier", "_futures", "_tokens", "_loop_ref", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from . import _core

        notifier = _core.Notifier()
        self._notifier = notifier
        self._futures: Dict[int, asyncio.Future[None]] = {}
        self._tokens = itertools.count(1)
        # Weak: the bridge is the value of a WeakKeyDictionary keyed by the loop, and a strong
        # reference back would keep every loop alive forever.
        self._loop_ref = weakref.ref(loop)
        try:
            loop.add_reader(notifier.fileno(), self._drain)
        except BaseException:
            notifier.close()
            raise
        # The fd lives as long as the loop object; closing it with the loop is best effort.
        weakref.finalize(loop, _close_quietly, notifier)

    def watch(self, pending: _core.Pending) -> asyncio.Future[None]:
        """A future of the running loop, resolved when `pending` completes."""
        loop = self._loop_ref()
        assert loop is not None  # called from inside the running loop
        future: asyncio.Future[None] = loop.create_future()
        token = next(self._tokens)
        self._futures[token] = future
        try:
            pending.notify(self._notifier, token)
        except BaseException:
            del self._futures[token]
            raise
        return future

    def _drain(self) -> None:
        for token in self._notifier.drain():
            future = self._futures.pop(token, None)
            # A cancelled await (task cancelled, wait_for timeout) leaves a done future behind.
            if future is not None and not future.done():
                future.set_result(None)


def _close_quietly(notifier: Any) -> None:
    try:
        notifier.close()
    except Exception:  # pragma: no cover - best effort during loop teardown
        pass


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Optional[_LoopBridge]] = (
    weakref.WeakKeyDictionary()
)
_bridges_lock = threading.Lock()


def _bridge_for(loop: asyncio.AbstractEventLoop) -> Optional[_LoopBridge]:
    """The loop's bridge; None for loops without add_reader (e.g. Windows' proactor loop)."""
    try:
        return _bridges[loop]
    except KeyError:
        pass
    except TypeError:  # a loop class without weak reference support: no bridge
        return None
    with _bridges_lock:
        if loop in _bridges:
            return _bridges[loop]
        try:
            bridge: Optional[_LoopBridge] = _LoopBridge(loop)
        except NotImplementedError:
            bridge = None
        _bridges[loop] = bridge
        return bridge


def _completion_future(pending: _core.Pending) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    bridge = _bridge_for(loop)
    if bridge is None:
        # No fd watching on this loop: wait in the loop's executor instead.
        return loop.run_in_executor(None, pending.wait)
    return bridge.watch(pending)
