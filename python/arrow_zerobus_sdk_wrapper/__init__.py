"""Stream Apache Arrow data into Databricks Delta tables through Zerobus Ingest.

    from arrow_zerobus_sdk_wrapper import ZerobusWrapper, WrapperConfiguration

    config = WrapperConfiguration(
        "https://<workspace-id>.zerobus.<region>.cloud.databricks.com",
        "main.default.events",
        client_id="...", client_secret="...",
        unity_catalog_url="https://<workspace>.cloud.databricks.com",
    )
    with ZerobusWrapper(config) as wrapper:
        result = wrapper.send_batch(record_batch)   # or: await wrapper.send_batch(...)
        if result.has_failed_rows():
            retry_later(result.extract_failed_batch(record_batch))

`arrow_zerobus_sdk_wrapper.testing.LocalZerobus` runs a local Zerobus server for tests.
"""

from __future__ import annotations

# pyarrow first: it loads the Arrow C++ libraries the extension is linked against.
import pyarrow  # noqa: F401

from ._errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    ConversionError,
    RetryExhausted,
    TokenRefreshError,
    TransmissionError,
    ZerobusError,
)
from . import _core
from . import _logging  # noqa: F401  (routes C++ log records to `logging` from import on)
from ._config import WrapperConfiguration
from ._result import TransmissionResult
from ._wrapper import ZerobusWrapper


def _version() -> str:
    version = getattr(_core, "__version__", None)
    if version:
        return str(version)
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version

        return dist_version("arrow-zerobus-sdk-wrapper")
    except PackageNotFoundError:
        return "0.1.0"


__version__: str = _version()

__all__ = [
    "ZerobusWrapper",
    "WrapperConfiguration",
    "TransmissionResult",
    "ZerobusError",
    "ConfigurationError",
    "AuthenticationError",
    "ConnectionError",
    "ConversionError",
    "TransmissionError",
    "RetryExhausted",
    "TokenRefreshError",
    "__version__",
]

del _version
