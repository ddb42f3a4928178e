"""Finds the executables that ship with the package (the CLI and the local Zerobus server)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

__all__ = ["binary_path"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def _build_dirs() -> List[Path]:
    dirs: List[Path] = []
    build_dir = os.environ.get("AZ_BUILD_DIR")
    if build_dir:
        dirs.append(Path(build_dir))
    # A source checkout: python/arrow_zerobus_sdk_wrapper -> <repo>/build (`make build`).
    dirs.append(_PACKAGE_DIR.parents[1] / "build")
    # The package mirrored into a build tree (<build>/python/arrow_zerobus_sdk_wrapper).
    if (_PACKAGE_DIR.parents[1] / "CMakeCache.txt").is_file():
        dirs.append(_PACKAGE_DIR.parents[1])
    return dirs


def _candidates(name: str) -> List[Path]:
    # An installed wheel first (<package>/bin/<name>), then build trees, where the emulator is
    # at the top and the CLI under cli/.
    places = [_PACKAGE_DIR / "bin" / name]
    for build_dir in _build_dirs():
        places += [build_dir / name, build_dir / "cli" / name]
    return places


def binary_path(name: str) -> Path:
    """The path of the shipped executable `name` ("zerobus-emulator", "zerobus-arrow").

    FileNotFoundError listing the places looked at when none holds an executable file.
    """
    places = _candidates(name)
    for place in places:
        if place.is_file() and os.access(place, os.X_OK):
            return place
    looked = ", ".join(str(place) for place in places)
    raise FileNotFoundError(
        f"the {name} executable was not found (looked in: {looked}); install the "
        "arrow-zerobus-sdk-wrapper wheel, or build the C++ project and set AZ_BUILD_DIR to "
        "its build directory"
    )
