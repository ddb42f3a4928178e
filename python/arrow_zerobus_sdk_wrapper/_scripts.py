"""Console entry points: run the executables shipped in the wheel under their own names."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from ._binaries import binary_path

__all__ = ["zerobus_arrow", "zerobus_emulator"]


def _exec(name: str) -> NoReturn:
    try:
        path = binary_path(name)
    except FileNotFoundError as error:
        print(f"{name}: {error}", file=sys.stderr)
        raise SystemExit(127) from None
    # Replace this process: signals, exit codes and stdio then belong to the executable itself
    # (the emulator's SIGTERM handling and its listen line on stdout rely on that).
    sys.stdout.flush()
    sys.stderr.flush()
    # argv[0] is the command's name, so usage lines read "zerobus-arrow ...", not a path.
    os.execv(path, [name, *sys.argv[1:]])


def zerobus_arrow() -> NoReturn:
    """`zerobus-arrow`: the command-line client (send Arrow/Parquet/CSV files to a table)."""
    _exec("zerobus-arrow")


def zerobus_emulator() -> NoReturn:
    """`zerobus-emulator`: the local Zerobus server (docs/emulator.md)."""
    _exec("zerobus-emulator")
