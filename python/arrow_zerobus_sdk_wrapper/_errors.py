"""The package's exceptions and the classification of row error messages.

The extension `_core` raises these classes (it looks them up here by name) with the rendered
C++ message, which already starts with the kind's display prefix, and sets `retryable` on the
instance when the C++ side knows better than the class default.
"""

from __future__ import annotations

from typing import Dict, Type

__all__ = [
    "ZerobusError",
    "ConfigurationError",
    "AuthenticationError",
    "ConnectionError",
    "ConversionError",
    "TransmissionError",
    "RetryExhausted",
    "TokenRefreshError",
    "ERROR_CLASSES",
    "error_class",
    "error_type_of_message",
]


class ZerobusError(Exception):
    """Base class of every error this package raises on purpose.

    ``str(error)`` is the message, which starts with the kind's display prefix
    (``"Conversion error: ..."``) when the library made it. ``retryable`` says whether trying
    the same operation again may succeed.
    """

    #: Whether retrying may help. A class default; the extension may set it per instance.
    retryable: bool = False
    #: The display prefix messages of this kind start with.
    prefix: str = ""

    def __init__(self, message: str = "") -> None:
        # Exactly one argument, so that str(e) is the message and pickling round-trips.
        super().__init__(message)

    @property
    def message(self) -> str:
        """The message (the same as ``str(error)``)."""
        return str(self.args[0]) if self.args else ""

    @classmethod
    def _with_prefix(cls, detail: str) -> ZerobusError:
        """An instance whose message is the display prefix followed by `detail`."""
        return cls(cls.prefix + detail)


class ConfigurationError(ZerobusError):
    """An option is missing, malformed or inconsistent; the message names the option."""

    retryable = False
    prefix = "Configuration error: "


class AuthenticationError(ZerobusError):
    """The OAuth token request or the stream's authorization was refused."""

    retryable = False
    prefix = "Authentication error: "


# Deliberately shadows the builtin inside this package only: `arrow_zerobus_sdk_wrapper.
# ConnectionError` is a ZerobusError, not an OSError, and the builtin stays untouched.
class ConnectionError(ZerobusError):  # noqa: A001
    """The server could not be reached or the connection broke."""

    retryable = True
    prefix = "Connection error: "


class ConversionError(ZerobusError):
    """Arrow data could not be converted to records (type, value or schema problem)."""

    retryable = False
    prefix = "Conversion error: "


class TransmissionError(ZerobusError):
    """Sending or acknowledging records failed, or the wrapper was misused (e.g. after
    shutdown)."""

    retryable = True
    prefix = "Transmission error: "


class RetryExhausted(ZerobusError):
    """Every allowed attempt failed."""

    retryable = False
    prefix = "Retry exhausted: "


class TokenRefreshError(ZerobusError):
    """A new OAuth token could not be obtained for a running stream."""

    retryable = True
    prefix = "Token refresh error: "


#: Class name -> class, for the seven kinds (not the base class).
ERROR_CLASSES: Dict[str, Type[ZerobusError]] = {
    cls.__name__: cls
    for cls in (
        ConfigurationError,
        AuthenticationError,
        ConnectionError,
        ConversionError,
        TransmissionError,
        RetryExhausted,
        TokenRefreshError,
    )
}


def error_class(name: str) -> Type[ZerobusError]:
    """The exception class named `name` ("ConversionError"); KeyError naming it otherwise."""
    try:
        return ERROR_CLASSES[name]
    except KeyError:
        known = ", ".join(ERROR_CLASSES)
        raise KeyError(f"unknown error type {name!r} (known: {known})") from None


def error_type_of_message(message: str) -> str:
    """The class name of the kind a row error message belongs to.

    A message names its kind with a class-name prefix (``"ConversionError: ..."``) or a display
    prefix (``"Conversion error: ..."``); anything else counts as a ConversionError, as the C++
    library's ErrorKindOfMessage decides.
    """
    if not isinstance(message, str):  # a hand-built result may hold anything
        return ConversionError.__name__
    for name, cls in ERROR_CLASSES.items():
        if message.startswith(name) and message[len(name) : len(name) + 1] == ":":
            return name
        if message.startswith(cls.prefix):
            return name
    return ConversionError.__name__

