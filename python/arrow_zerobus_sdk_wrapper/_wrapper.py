"""ZerobusWrapper: sends Arrow data to one Zerobus table.

Every method works from plain code and from asyncio code: `send_batch` returns at once with a
result that can be awaited or simply read, and `flush()` / `shutdown()` return an awaitable
when called inside a running event loop and block otherwise.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Awaitable, Dict, Optional, Type

import pyarrow as pa

from . import _core, _logging
from ._config import WrapperConfiguration
from ._result import TransmissionResult

__all__ = ["ZerobusWrapper"]

_ARROW_HINT = (
    "Arrow data (an object with __arrow_c_array__ or __arrow_c_stream__: pyarrow "
    "RecordBatch/Table/RecordBatchReader, polars DataFrame, DuckDB relation, ...)"
)


class ZerobusWrapper:
    """Sends Arrow record batches to one Zerobus table.

    ``ZerobusWrapper(config)`` or ``ZerobusWrapper(endpoint, table_name, **options)`` (the
    options of WrapperConfiguration). Construction validates the configuration; credentials are
    required unless ``zerobus_writer_disabled``.

    Thread-safe: calls from many threads and many asyncio tasks at once are fine. Use it as a
    context manager (``with`` or ``async with``) to shut it down on exit.
    """

    __slots__ = ("_config", "_native", "__weakref__")

    def __init__(
        self,
        config_or_endpoint: WrapperConfiguration | str | None = None,
        table_name: Optional[str] = None,
        **options: Any,
    ) -> None:
        # Keyword forms too, as the original wrapper's users wrote them:
        # ZerobusWrapper(config=cfg) and ZerobusWrapper(endpoint=..., table_name=..., ...).
        if config_or_endpoint is None:
            if "config" in options:
                config_or_endpoint = options.pop("config")
            elif "endpoint" in options:
                config_or_endpoint = options.pop("endpoint")
            else:
                raise TypeError(
                    "ZerobusWrapper needs a WrapperConfiguration (config=...) or an endpoint "
                    "and a table_name"
                )
        if isinstance(config_or_endpoint, WrapperConfiguration):
            if table_name is not None or options:
                raise TypeError(
                    "ZerobusWrapper(config) takes no other arguments; use config.replace(...) "
                    "to change options"
                )
            config = config_or_endpoint
        elif isinstance(config_or_endpoint, str):
            if table_name is None:
                raise TypeError("ZerobusWrapper(endpoint, table_name, ...) needs table_name")
            config = WrapperConfiguration(config_or_endpoint, table_name, **options)
        else:
            raise TypeError(
                "ZerobusWrapper expects a WrapperConfiguration or an endpoint string, got "
                f"{type(config_or_endpoint).__name__}"
            )
        _logging.sync_level()
        config.validate()
        self._config = config
        self._native = _core.Wrapper(config._native())

    # ---- sending ----------------------------------------------------------------------------

    def send_batch(self, batch: Any) -> TransmissionResult:
        """Starts sending `batch` and returns its result at once, while the rows are in flight.

        `batch` is any Arrow data: an object with ``__arrow_c_array__`` (one record batch:
        pyarrow RecordBatch, a struct array, ...) or ``__arrow_c_stream__`` (pyarrow Table or
        RecordBatchReader, polars DataFrame, DuckDB relation, ...). It crosses into C++ without
        a copy. For a stream, every batch is sent and row indices count from the stream's start.

        ``await wrapper.send_batch(b)`` waits without blocking the event loop; in plain code,
        reading any field of the result waits for it. Delivery failures are reported in the
        result, not raised. Raises TypeError for something that is not Arrow data, and
        TransmissionError after `shutdown()`.
        """
        _logging.sync_level()
        native = self._native
        # On an event loop's thread a full in-flight budget must not block the loop: the C++
        # side then hands the requests to the streams from an I/O thread.
        block = asyncio._get_running_loop() is None
        if _prefers_stream(batch):
            pending = native.send_stream(batch.__arrow_c_stream__(), block)
        elif hasattr(batch, "__arrow_c_array__"):
            # The extension refuses an array that is not a struct array (TypeError naming its
            # Arrow format), whoever produced it.
            try:
                schema_capsule, array_capsule = batch.__arrow_c_array__()
            except Exception:
                # An object offering both interfaces whose data is not one contiguous array
                # (e.g. a nanoarrow Array of several chunks) can only be exported as a stream.
                if not hasattr(batch, "__arrow_c_stream__"):
                    raise
                pending = native.send_stream(batch.__arrow_c_stream__(), block)
            else:
                pending = native.send_array(schema_capsule, array_capsule, block)
        else:
            raise TypeError(f"send_batch expects {_ARROW_HINT}; got {type(batch).__name__}")
        # The C++ side has read (and let go of) the input by now: the result holds no reference
        # to it, so pipelined sends keep no batch alive.
        return TransmissionResult._from_pending(pending)

    # ---- flush / shutdown -------------------------------------------------------------------

    def flush(self) -> Optional[Awaitable[None]]:
        """Waits until every row sent so far is acknowledged (or failed).

        In a running event loop this returns an awaitable (the work runs in the loop's default
        executor and completes whether or not it is awaited); otherwise it blocks and returns
        None. Raises the error of a flush that could not complete (e.g. its timeout).
        """
        _logging.sync_level()
        return _run_blocking(self._native.flush)

    def shutdown(self) -> Optional[Awaitable[None]]:
        """Flushes, closes the streams and stops the wrapper; later sends raise
        TransmissionError. Awaitable in a running event loop, blocking otherwise (as flush)."""
        _logging.sync_level()
        return _run_blocking(self._native.shutdown)

    def __enter__(self) -> ZerobusWrapper:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # Always blocking, also inside an event loop: leaving the block must mean "shut down".
        _logging.sync_level()
        self._native.shutdown()

    async def __aenter__(self) -> ZerobusWrapper:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        _logging.sync_level()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._native.shutdown)

    # ---- state ------------------------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """The wrapper's counters (batches, rows, retries, streams, ...) as a dict."""
        return self._native.stats()

    def cooldown(self) -> Optional[Dict[str, Any]]:
        """The cool-down in force (``{"reason": str, "remaining_ms": int}``), or None. During a
        cool-down, sends fail fast."""
        return self._native.cooldown()

    @property
    def is_shutdown(self) -> bool:
        return bool(self._native.is_shutdown())

    @property
    def config(self) -> WrapperConfiguration:
        return self._config

    def __reduce__(self) -> Any:
        # A wrapper owns live streams and cannot travel; its configuration can.
        raise TypeError(
            "a ZerobusWrapper cannot be pickled: send its configuration (wrapper.config pickles) "
            "and create one wrapper per worker process"
        )

    def __repr__(self) -> str:
        state = "shut down" if self.is_shutdown else "open"
        return (
            f"ZerobusWrapper(table_name={self._config.table_name!r}, "
            f"endpoint={self._config.endpoint!r}, state={state!r})"
        )


def _prefers_stream(batch: Any) -> bool:
    """A Table or RecordBatchReader goes as a stream (all its batches, one result); so does an
    object that only offers the stream interface."""
    if isinstance(batch, (pa.Table, pa.RecordBatchReader)):
        return True
    return hasattr(batch, "__arrow_c_stream__") and not hasattr(batch, "__arrow_c_array__")


def _run_blocking(call: Any) -> Optional[Awaitable[None]]:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        call()
        return None
    # Inside a running loop: do not block it. The executor runs the call to completion even if
    # the caller never awaits the future.
    return loop.run_in_executor(None, call)
