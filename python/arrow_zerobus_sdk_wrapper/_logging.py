"""Routes the C++ library's log records to Python's `logging`.

Records go to the logger ``arrow_zerobus_sdk_wrapper``. The level set there (or inherited from
its parents) is pushed to the C++ side, so records nobody would see are never produced there;
`sync_level()` is called at the package's entry points (wrapper construction, send, flush,
shutdown) because `logging` has no hook for level changes.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Optional

from . import _core

__all__ = ["logger", "sync_level"]

logger = logging.getLogger("arrow_zerobus_sdk_wrapper")

_lock = threading.Lock()
_synced_level: Optional[int] = None
_installed = False


def sync_level() -> None:
    """Pushes the logger's effective level to the C++ side when it changed since last time."""
    global _synced_level
    level = logger.getEffectiveLevel()
    if level == _synced_level:  # the common case: no lock, no call into C++
        return
    with _lock:
        if level != _synced_level:
            _core.set_log_level(level)
            _synced_level = level


def _handle(level: int, message: str) -> None:
    # Called by the extension with the GIL held, possibly on a C++ thread: it must never raise
    # back into C++. logging already reports its own handler failures; this guards the rest.
    try:
        logger.log(level, message)
    except Exception:  # pragma: no cover - defensive
        pass


def _uninstall() -> None:
    # At exit, before the interpreter is torn down, so that a C++ thread still logging cannot
    # call into a finalizing interpreter.
    try:
        _core.set_log_handler(None)
    except Exception:  # pragma: no cover - best effort at exit
        pass


def _install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        _core.set_log_handler(_handle)
        atexit.register(_uninstall)
        _installed = True


_install()
sync_level()
