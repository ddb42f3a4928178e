"""WrapperConfiguration: every option of one wrapper, immutable, checked by the C++ rules.

The option names, types and defaults come from the extension (`_core.default_options()`), so
the Python and C++ sides cannot drift apart; docs/configuration.md documents each option.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Callable, Dict, Mapping, Optional, Type, TypeVar, Union

from . import _core
from ._errors import ConfigurationError

__all__ = ["WrapperConfiguration"]

_T = TypeVar("_T", bound="WrapperConfiguration")

# Every option with its default, straight from the C++ library (one source of truth).
_DEFAULTS: Dict[str, Any] = dict(_core.default_options())
# Keys of the observability_config dict (python-api.md).
_OBSERVABILITY_KEYS = ("endpoint", "output_dir", "write_interval_secs", "log_level")
# Options that name files or directories: os.PathLike is accepted and stored as str.
_PATH_OPTIONS = ("debug_output_dir", "ca_file")
# Kept as the caller gave them rather than as the extension echoes them back.
_KEPT_AS_GIVEN = ("client_secret", "descriptor")
_DESCRIPTOR_PROTO = "google.protobuf.DescriptorProto"


class _Secret:
    """Holds the client secret so that no repr (of the options dict, in a debugger, in a
    traceback's locals) ever shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        # Only the configuration's own __reduce__ may carry the secret, deliberately.
        raise TypeError("the client secret holder cannot be pickled on its own")


def _quote(value: str, limit: int = 80) -> str:
    """Like the C++ messages: the value in quotes, cut after `limit` characters."""
    return "'" + (value if len(value) <= limit else value[:limit] + "...") + "'"


def _config_error(detail: str) -> ConfigurationError:
    return ConfigurationError(ConfigurationError.prefix + detail)


def _as_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _secret_value(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, _Secret):
        return value.reveal()
    # pydantic's SecretStr and look-alikes: take the value without ever printing it.
    getter = getattr(value, "get_secret_value", None)
    if callable(getter):
        revealed = getter()
        if isinstance(revealed, str):
            return revealed
    # Never show the value: it might be the secret in the wrong type.
    raise TypeError(f"client_secret must be a str or None, got {type(value).__name__}")


def _path_value(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fsdecode(os.fspath(value))
    raise TypeError(f"{name} must be a str, os.PathLike or None, got {type(value).__name__}")


def _descriptor_bytes(value: Any) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    serialize = getattr(value, "SerializeToString", None)
    if callable(serialize):
        message_type = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None)
        if message_type is not None and message_type != _DESCRIPTOR_PROTO:
            raise TypeError(
                f"descriptor must be a {_DESCRIPTOR_PROTO} (the row message's descriptor), "
                f"got a {message_type} message"
            )
        return bytes(serialize())
    raise TypeError(
        f"descriptor must be bytes (a serialized {_DESCRIPTOR_PROTO}), a DescriptorProto "
        f"message or None, got {type(value).__name__}"
    )


def _observability_value(value: Any) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"observability_config must be a dict or None, got {type(value).__name__}")
    known = ", ".join(sorted(_OBSERVABILITY_KEYS))
    result: Dict[str, Any] = {}
    for key, item in value.items():
        if key not in _OBSERVABILITY_KEYS:
            raise _config_error(f"observability_config: unknown key {key!r} (known keys: {known})")
        result[key] = _path_value("observability_config.output_dir", item) if key == "output_dir" else item
    return result


# Per-option normalization before the values reach the extension.
_NORMALIZERS: Dict[str, Callable[[Any], Any]] = {
    "endpoint": lambda v: _as_str("endpoint", v),
    "table_name": lambda v: _as_str("table_name", v),
    "client_secret": _secret_value,
    "descriptor": _descriptor_bytes,
    "observability_config": _observability_value,
    **{name: (lambda v, _n=name: _path_value(_n, v)) for name in _PATH_OPTIONS},
}


class WrapperConfiguration:
    """The configuration of one ZerobusWrapper (one table). Immutable; `replace()` makes a
    changed copy.

    ``WrapperConfiguration(endpoint, table_name, *, client_id=None, client_secret=None,
    unity_catalog_url=None, observability_enabled=False, observability_config=None,
    debug_enabled=False, debug_arrow_enabled=None, debug_protobuf_enabled=None,
    debug_output_dir=None, debug_flush_interval_secs=5, debug_max_file_size=None,
    debug_max_files_retained=10, retry_max_attempts=5, retry_base_delay_ms=100,
    retry_max_delay_ms=30000, zerobus_writer_disabled=False, ...)`` plus this project's options
    (streams, in-flight limits, timeouts, record type, descriptor, cool-downs); see
    docs/configuration.md for every option and its default.

    The constructor checks value types and the debug-directory rule only (`debug_output_dir`
    is required when a debug format is on); `validate()` checks everything else. Every option is
    a read-only property. `client_secret` never appears in repr/str or in error messages;
    `to_dict()` and pickling carry it (workers need it), so treat those like the secret itself.
    """

    __slots__ = ("_options", "_native_config")

    _options: Dict[str, Any]
    _native_config: _core.Config

    def __init__(self, endpoint: str, table_name: str, **options: Any) -> None:
        values = _default_values()
        for name, value in options.items():
            if name not in values:
                raise TypeError(
                    f"{type(self).__name__}() got an unexpected keyword argument {name!r}"
                )
            values[name] = value
        values["endpoint"] = endpoint
        values["table_name"] = table_name
        for name, normalize in _NORMALIZERS.items():
            if name in values:
                values[name] = normalize(values[name])

        # The extension converts every value (TypeError naming the option for a wrong type,
        # ConfigurationError for an unknown enum name) and applies the constructor's rule.
        native = _core.Config(values)
        native.validate_debug_output_dir()

        # Adopt the extension's canonical form (enum names in lower case, observability_config
        # completed with its defaults) so that equal configurations compare equal.
        canonical = native.to_dict()
        for name in values:
            if name not in _KEPT_AS_GIVEN and name in canonical:
                values[name] = canonical[name]
        secret = values["client_secret"]
        values["client_secret"] = None if secret is None else _Secret(secret)
        self._options = values
        self._native_config = native

    # ---- alternative constructors -----------------------------------------------------------

    @classmethod
    def from_env(cls: Type[_T]) -> _T:
        """Loads the options from environment variables (ZEROBUS_ENDPOINT, ZEROBUS_TABLE_NAME,
        ZEROBUS_CLIENT_ID, ...; docs/configuration.md). Unset variables keep the defaults; a
        malformed value is a ConfigurationError naming the variable. Does not `validate()`."""
        return cls._from_options(_core.options_from_env())

    @classmethod
    def from_yaml(cls: Type[_T], path: Union[str, os.PathLike]) -> _T:  # type: ignore[type-arg]
        """Loads the options from a YAML file (docs/configuration.md). Errors name the file,
        the line and the key. Does not `validate()`."""
        return cls._from_options(_core.options_from_yaml(os.fsdecode(os.fspath(path))))

    @classmethod
    def _from_options(cls: Type[_T], options: Mapping[str, Any]) -> _T:
        rest = dict(options)
        endpoint = rest.pop("endpoint", _DEFAULTS["endpoint"])
        table_name = rest.pop("table_name", _DEFAULTS["table_name"])
        return cls(endpoint, table_name, **rest)

    # ---- checks -----------------------------------------------------------------------------

    def validate(self) -> None:
        """Checks every rule (docs/configuration.md, "Validation"); raises ConfigurationError
        naming the first option that breaks one. Credentials are not required here."""
        options = self._options
        endpoint = options["endpoint"]
        if endpoint or not options["zerobus_writer_disabled"]:
            _check_endpoint_scheme(endpoint)
        native = self._native_config
        if (
            options["client_id"] is None
            and options["client_secret"] is None
            and not options["zerobus_writer_disabled"]
        ):
            # The C++ Validate() requires credentials unless the writer is disabled; the Python
            # contract checks every other rule without them (the wrapper's construction still
            # requires them). Stand-ins let the remaining rules run, in their order.
            stand_in = native.to_dict()
            stand_in["client_id"] = stand_in["client_secret"] = "validate-stand-in"
            if stand_in["unity_catalog_url"] is None:
                stand_in["unity_catalog_url"] = "https://validate.invalid"
            native = _core.Config(stand_in)
        native.validate()

    # ---- conversions ------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """Every option as a new dict, ``client_secret`` included as plain text (handle the
        dict like the secret). ``WrapperConfiguration(**d)`` rebuilds an equal configuration."""
        out: Dict[str, Any] = {}
        for name, value in self._options.items():
            if isinstance(value, _Secret):
                value = value.reveal()
            elif isinstance(value, dict):
                value = dict(value)
            out[name] = value
        return out

    def replace(self: _T, **changes: Any) -> _T:
        """A new configuration with `changes` applied (same keyword names as the constructor)."""
        options = self.to_dict()
        for name in changes:
            if name not in options:
                raise TypeError(f"replace() got an unexpected keyword argument {name!r}")
        options.update(changes)
        return type(self)._from_options(options)

    def _native(self) -> _core.Config:
        """The extension's configuration object (built once: the configuration is immutable)."""
        return self._native_config

    # ---- dunder -----------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WrapperConfiguration):
            return NotImplemented
        return self._options == other._options

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for name, value in self._options.items():
            if name == "descriptor" and value is not None:
                shown = f"<{_DESCRIPTOR_PROTO}, {len(value)} bytes>"
            else:
                shown = repr(value)  # _Secret shows '***'
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce__(self) -> Any:
        # Spark/Ray/multiprocessing workers rebuild the configuration, secret included; the
        # constructor's checks run again on the other side.
        return (_rebuild, (type(self), self.to_dict()))

    # ---- properties with special handling ---------------------------------------------------

    @property
    def client_secret(self) -> Optional[str]:
        """The OAuth client secret (plain text; never shown by repr/str)."""
        secret = self._options["client_secret"]
        return None if secret is None else secret.reveal()

    @property
    def observability_config(self) -> Optional[Dict[str, Any]]:
        """A copy of the observability settings (endpoint, output_dir, write_interval_secs,
        log_level), or None."""
        value = self._options["observability_config"]
        return None if value is None else dict(value)


def _rebuild(cls: Type[_T], options: Mapping[str, Any]) -> _T:
    return cls._from_options(options)


def _default_values() -> Dict[str, Any]:
    values = dict(_DEFAULTS)
    if isinstance(values.get("observability_config"), dict):
        values["observability_config"] = dict(values["observability_config"])
    return values


def _check_endpoint_scheme(endpoint: str) -> None:
    """The Python contract: the endpoint names its scheme (the C++ library would default a
    bare host to https://)."""
    if not endpoint:
        raise _config_error("endpoint is empty: give https://host[:port] (or http:// for a local "
                            "plaintext server)")
    lowered = endpoint.lower()
    if lowered.startswith(("https://", "http://")):
        return
    scheme_end = endpoint.find("://")
    if scheme_end >= 0:
        raise _config_error(
            f"endpoint: {_quote(endpoint)} has scheme '{endpoint[:scheme_end + 3]}': only "
            "https:// and http:// are supported (http:// for a local plaintext server)"
        )
    raise _config_error(
        f"endpoint: {_quote(endpoint)} has no scheme: it must start with https:// "
        "(or http:// for a local plaintext server)"
    )


def _option_property(name: str, default: Any) -> property:
    def getter(self: WrapperConfiguration) -> Any:
        return self._options[name]

    getter.__name__ = name
    shown = "***" if name == "client_secret" else repr(default)
    return property(getter, doc=f"The ``{name}`` option (default {shown}; read-only).")


# One read-only property per option; the ones defined above (the secret, the dict) win.
for _name, _default in _DEFAULTS.items():
    if not hasattr(WrapperConfiguration, _name):
        setattr(WrapperConfiguration, _name, _option_property(_name, _default))
del _name, _default
