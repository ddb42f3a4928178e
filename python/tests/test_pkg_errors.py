"""The exception classes (python-api.md, "Exceptions") and the errors real calls raise."""

from __future__ import annotations

import builtins
import pickle

import pyarrow as pa
import pytest

import arrow_zerobus_sdk_wrapper as az
from arrow_zerobus_sdk_wrapper import (
    AuthenticationError,
    ConfigurationError,
    ConnectionError,
    ConversionError,
    RetryExhausted,
    TokenRefreshError,
    TransmissionError,
    WrapperConfiguration,
    ZerobusError,
    ZerobusWrapper,
)
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

SECRET = "errors-test-Secret-9d2e"

# class, display prefix, retryable
KINDS = [
    (ConfigurationError, "Configuration error: ", False),
    (AuthenticationError, "Authentication error: ", False),
    (ConnectionError, "Connection error: ", True),
    (ConversionError, "Conversion error: ", False),
    (TransmissionError, "Transmission error: ", True),
    (RetryExhausted, "Retry exhausted: ", False),
    (TokenRefreshError, "Token refresh error: ", True),
]
CLASSES = [k[0] for k in KINDS]


def test_base_class():
    assert issubclass(ZerobusError, Exception)
    assert ZerobusError.__mro__[1] is Exception
    e = ZerobusError("base message")
    assert str(e) == "base message"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_hierarchy(cls):
    assert issubclass(cls, ZerobusError)
    assert cls.__bases__ == (ZerobusError,)
    assert getattr(az, cls.__name__) is cls
    with pytest.raises(ZerobusError):
        raise cls("x")


def test_the_seven_are_distinct():
    assert len(set(CLASSES)) == 7
    for a in CLASSES:
        for b in CLASSES:
            if a is not b:
                assert not issubclass(a, b)


def test_connection_error_is_not_the_builtin():
    assert az.ConnectionError is not builtins.ConnectionError
    assert not issubclass(az.ConnectionError, OSError)
    assert not issubclass(builtins.ConnectionError, ZerobusError)
    # The builtin is untouched by the import.
    assert builtins.ConnectionError.__module__ == "builtins"
    assert issubclass(builtins.ConnectionRefusedError, builtins.ConnectionError)
    with pytest.raises(builtins.ConnectionError):
        raise builtins.ConnectionRefusedError("refused")
    # Catching the builtin does not catch ours.
    with pytest.raises(az.ConnectionError):
        try:
            raise az.ConnectionError("Connection error: x")
        except builtins.ConnectionError:  # pragma: no cover - must not match
            pytest.fail("the package's ConnectionError was caught as the builtin")


@pytest.mark.parametrize("cls,prefix,retryable", KINDS, ids=[k[0].__name__ for k in KINDS])
def test_message_and_retryable(cls, prefix, retryable):
    message = prefix + "something specific happened"
    e = cls(message)
    assert str(e) == message
    assert e.args == (message,)
    assert e.retryable is retryable
    assert cls.retryable is retryable
    assert isinstance(e.retryable, bool)
    # Pickles with its message (e.g. out of a worker process).
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is cls and str(e2) == message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_takes_one_message_argument(cls):
    with pytest.raises(TypeError):
        cls("a", "b")  # type: ignore[call-arg]


def test_base_is_not_retryable_by_default():
    assert ZerobusError("x").retryable is False


# ---- errors from real calls -------------------------------------------------------------------


def test_wrapper_without_credentials_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("https://h.example.com", "main.default.t")
    message = str(excinfo.value)
    assert message.startswith("Configuration error: ")
    assert "client_id" in message and "client_secret" in message
    assert excinfo.value.retryable is False
    # The same with a configuration object.
    with pytest.raises(ConfigurationError):
        ZerobusWrapper(WrapperConfiguration("https://h.example.com", "main.default.t"))


def test_wrapper_with_only_a_secret_never_shows_it():
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("https://h.example.com", "main.default.t", client_secret=SECRET,
                       unity_catalog_url="https://ws.example.com")
    assert str(excinfo.value).startswith("Configuration error: ")
    assert "client_id" in str(excinfo.value)
    assert SECRET not in str(excinfo.value) and SECRET not in repr(excinfo.value)


def test_wrapper_needs_a_three_part_table_unless_writer_disabled():
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("https://h.example.com", "default.t", client_id="id",
                       client_secret=SECRET, unity_catalog_url="https://ws.example.com")
    message = str(excinfo.value)
    assert message.startswith("Configuration error: ") and "table_name" in message
    assert SECRET not in message


@pytest.mark.parametrize("name,value", [
    ("record_type", "avro"),
    ("when_inflight_full", "explode"),
    ("descriptor_source", "guess"),
])
def test_bad_enum_value_is_a_configuration_error_naming_the_option(name, value):
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("https://h.example.com", "main.default.t", client_id="id",
                       client_secret=SECRET, unity_catalog_url="https://ws.example.com",
                       **{name: value})
    message = str(excinfo.value)
    assert message.startswith("Configuration error: ")
    assert name in message and value in message
    assert SECRET not in message
    assert excinfo.value.retryable is False


def test_wrapper_validates_other_rules_at_construction():
    with pytest.raises(ConfigurationError) as excinfo:
        ZerobusWrapper("ftp://h.example.com", "main.default.t", client_id="id",
                       client_secret=SECRET, unity_catalog_url="https://ws.example.com")
    assert str(excinfo.value).startswith("Configuration error: endpoint")
    assert SECRET not in str(excinfo.value)


def test_send_after_shutdown_is_a_transmission_error(tmp_path):
    w = ZerobusWrapper("", "main.default.t", zerobus_writer_disabled=True,
                       debug_arrow_enabled=True, debug_output_dir=str(tmp_path))
    w.shutdown()
    assert w.is_shutdown
    with pytest.raises(TransmissionError) as excinfo:
        w.send_batch(pa.record_batch({"id": pa.array([1], pa.int64())}))
    assert str(excinfo.value).startswith("Transmission error: ")
    assert isinstance(excinfo.value, ZerobusError)


def test_send_of_something_that_is_not_arrow_is_a_type_error(tmp_path):
    with ZerobusWrapper("", "main.default.t", zerobus_writer_disabled=True,
                        debug_arrow_enabled=True, debug_output_dir=str(tmp_path)) as w:
        with pytest.raises(TypeError):
            w.send_batch([{"id": 1}])
        with pytest.raises(TypeError):
            w.send_batch(pa.array([1, 2, 3]))  # an array, not a record batch


def test_refused_credentials_come_back_as_authentication_errors_without_the_secret(caplog):
    batch = pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())})
    with LocalZerobus() as emu:
        assert emu.client_secret != SECRET
        cfg = emu.config("main.s.t", client_secret=SECRET, retry_max_attempts=2,
                         retry_base_delay_ms=5, retry_max_delay_ms=10)
        with caplog.at_level("DEBUG", logger="arrow_zerobus_sdk_wrapper"):
            with ZerobusWrapper(cfg) as w:
                result = w.send_batch(batch)
                assert result.wait(timeout=60)
                assert result.success is False
                assert result.failed_count == 3 and result.successful_count == 0
                assert result.group_errors_by_type() == {"AuthenticationError": [0, 1, 2]}
                assert result.error.startswith("Authentication error: ")
                texts = [repr(result), str(result), result.error, *result.get_error_messages(),
                         repr(w), repr(cfg), str(cfg)]
                for text in texts:
                    assert SECRET not in text
                    assert emu.client_secret not in text
        assert SECRET not in caplog.text
        assert emu.client_secret not in caplog.text
