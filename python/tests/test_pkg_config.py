"""WrapperConfiguration: keywords and defaults (python-api.md), read-only properties, type errors,
the constructor's debug-directory rule, validate() rules, from_env / from_yaml, pickling, and the
secret never showing in repr/str/error text."""

from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path

import pytest

import arrow_zerobus_sdk_wrapper as az
from arrow_zerobus_sdk_wrapper import ConfigurationError, WrapperConfiguration, _core

ENDPOINT = "https://1234567890.zerobus.us-west-2.cloud.databricks.com"
TABLE = "main.default.events"
SECRET = "s3cr3t-Value-never-shown-7f1c"
CREDS = dict(client_id="sp-id", client_secret=SECRET, unity_catalog_url="https://ws.example.com")
PREFIX = "Configuration error: "

# The contract's table (python-api.md), written out: compared with the package's values, not with
# _core.default_options(), so a drift on either side is caught.
CONTRACT_DEFAULTS = {
    "client_id": None,
    "client_secret": None,
    "unity_catalog_url": None,
    "observability_enabled": False,
    "observability_config": None,
    "debug_enabled": False,
    "debug_arrow_enabled": None,
    "debug_protobuf_enabled": None,
    "debug_output_dir": None,
    "debug_flush_interval_secs": 5,
    "debug_max_file_size": None,
    "debug_max_files_retained": 10,
    "retry_max_attempts": 5,
    "retry_base_delay_ms": 100,
    "retry_max_delay_ms": 30000,
    "zerobus_writer_disabled": False,
}

# The options this project adds (docs/configuration.md, "Options this project adds").
NEW_OPTION_DEFAULTS = {
    "debug_max_records_per_file": None,
    "streams_per_table": 1,
    "max_inflight_requests": 1_000_000,
    "max_inflight_bytes": 256 * 1024 * 1024,
    "when_inflight_full": "block",
    "stream_open_timeout_ms": 15000,
    "recovery_backoff_ms": 2000,
    "recovery_retries": 4,
    "flush_timeout_ms": 300000,
    "ack_timeout_ms": 60000,
    "application_name": None,
    "ca_file": None,
    "record_type": "proto",
    "transport": "protobuf",
    "ipc_compression": "none",
    "descriptor_source": "arrow_schema",
    "descriptor": None,
    "failure_rate_threshold": 0.01,
    "failure_rate_min_rows": 100,
    "failure_cooldown_ms": 30000,
    "cooldown_jitter_ms": 5000,
    "pipeline_blocked_cooldown_ms": 30000,
    "send_timeout_ms": 120000,
    "max_sends_per_row": 5,
}

ALL_DEFAULTS = {**CONTRACT_DEFAULTS, **NEW_OPTION_DEFAULTS}

# Every variable docs/configuration.md names (cleared before each from_env test).
ENV_VARS = [
    "ZEROBUS_ENDPOINT", "ZEROBUS_TABLE_NAME", "ZEROBUS_CLIENT_ID", "ZEROBUS_CLIENT_SECRET",
    "UNITY_CATALOG_URL", "OTLP_ENABLED", "OTLP_ENDPOINT", "OTLP_OUTPUT_DIR",
    "OTLP_WRITE_INTERVAL_SECS", "OTLP_LOG_LEVEL", "DEBUG_ENABLED", "DEBUG_ARROW_ENABLED",
    "DEBUG_PROTOBUF_ENABLED", "DEBUG_OUTPUT_DIR", "DEBUG_FLUSH_INTERVAL_SECS",
    "DEBUG_MAX_FILE_SIZE", "DEBUG_MAX_FILES_RETAINED", "RETRY_MAX_ATTEMPTS",
    "RETRY_BASE_DELAY_MS", "RETRY_MAX_DELAY_MS", "ZEROBUS_WRITER_DISABLED",
    "DEBUG_MAX_RECORDS_PER_FILE", "ZEROBUS_STREAMS_PER_TABLE", "ZEROBUS_MAX_INFLIGHT_REQUESTS",
    "ZEROBUS_MAX_INFLIGHT_BYTES", "ZEROBUS_WHEN_INFLIGHT_FULL", "ZEROBUS_STREAM_OPEN_TIMEOUT_MS",
    "ZEROBUS_RECOVERY_BACKOFF_MS", "ZEROBUS_RECOVERY_RETRIES", "ZEROBUS_FLUSH_TIMEOUT_MS",
    "ZEROBUS_ACK_TIMEOUT_MS", "ZEROBUS_APPLICATION_NAME", "ZEROBUS_CA_FILE",
    "ZEROBUS_RECORD_TYPE", "ZEROBUS_TRANSPORT", "ZEROBUS_IPC_COMPRESSION",
    "ZEROBUS_DESCRIPTOR_SOURCE", "ZEROBUS_DESCRIPTOR_FILE",
    "ZEROBUS_FAILURE_RATE_THRESHOLD", "ZEROBUS_FAILURE_RATE_MIN_ROWS",
    "ZEROBUS_FAILURE_COOLDOWN_MS", "ZEROBUS_COOLDOWN_JITTER_MS",
    "ZEROBUS_PIPELINE_BLOCKED_COOLDOWN_MS", "ZEROBUS_SEND_TIMEOUT_MS", "ZEROBUS_MAX_SENDS_PER_ROW",
]


def config(**options) -> WrapperConfiguration:
    return WrapperConfiguration(ENDPOINT, TABLE, **options)


def assert_config_error(excinfo, *names: str) -> str:
    """The error is a ConfigurationError with the display prefix naming every `names`."""
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ConfigurationError)
    assert message.startswith(PREFIX), message
    for name in names:
        assert name in message, (name, message)
    assert SECRET not in message
    return message


# ---- keywords and defaults --------------------------------------------------------------------


def test_every_contract_keyword_has_the_contract_default():
    c = WrapperConfiguration(ENDPOINT, TABLE)
    assert c.endpoint == ENDPOINT
    assert c.table_name == TABLE
    for name, expected in CONTRACT_DEFAULTS.items():
        value = getattr(c, name)
        assert value == expected and type(value) is type(expected), (name, value, expected)


def test_new_options_have_their_documented_defaults():
    c = WrapperConfiguration(ENDPOINT, TABLE)
    for name, expected in NEW_OPTION_DEFAULTS.items():
        value = getattr(c, name)
        assert value == expected and type(value) is type(expected), (name, value, expected)


def test_package_defaults_and_extension_defaults_agree_with_the_contract():
    # Both sides against the written-out contract, not against each other.
    native = _core.default_options()
    for name, expected in ALL_DEFAULTS.items():
        assert native[name] == expected, (name, native[name])
    assert set(native) == set(ALL_DEFAULTS) | {"endpoint", "table_name"}


def test_endpoint_and_table_name_positional_or_keyword_rest_keyword_only():
    c = WrapperConfiguration(endpoint=ENDPOINT, table_name=TABLE)
    assert (c.endpoint, c.table_name) == (ENDPOINT, TABLE)
    with pytest.raises(TypeError):
        WrapperConfiguration(ENDPOINT, TABLE, "sp-id")  # client_id is keyword-only


def test_every_keyword_is_accepted_and_kept():
    given = dict(
        client_id="sp-id",
        client_secret=SECRET,
        unity_catalog_url="https://ws.example.com",
        observability_enabled=True,
        observability_config={"endpoint": "http://localhost:4318", "output_dir": "/tmp/otlp",
                              "write_interval_secs": 7, "log_level": "debug"},
        debug_enabled=True,
        debug_arrow_enabled=True,
        debug_protobuf_enabled=False,
        debug_output_dir="/tmp/zerobus-debug",
        debug_flush_interval_secs=3,
        debug_max_file_size=1 << 20,
        debug_max_files_retained=None,
        retry_max_attempts=8,
        retry_base_delay_ms=50,
        retry_max_delay_ms=900,
        zerobus_writer_disabled=True,
        debug_max_records_per_file=1000,
        streams_per_table=3,
        max_inflight_requests=64,
        max_inflight_bytes=1 << 24,
        when_inflight_full="reject",
        stream_open_timeout_ms=1500,
        recovery_backoff_ms=0,
        recovery_retries=0,
        flush_timeout_ms=2500,
        ack_timeout_ms=3500,
        application_name="my-pipeline",
        ca_file="/etc/ssl/certs/ca-certificates.crt",
        record_type="json",
        transport="json",
        ipc_compression="zstd",
        descriptor_source="unity_catalog",
        failure_rate_threshold=0.5,
        failure_rate_min_rows=10,
        failure_cooldown_ms=0,
        cooldown_jitter_ms=0,
        pipeline_blocked_cooldown_ms=1,
        send_timeout_ms=4500,
        max_sends_per_row=2,
    )
    c = config(**given)
    for name, value in given.items():
        assert getattr(c, name) == value, name


def test_enum_options_are_case_insensitive_and_canonical():
    c = config(record_type="JSON", when_inflight_full="Reject", descriptor_source="ARROW_SCHEMA")
    assert (c.record_type, c.when_inflight_full, c.descriptor_source) == (
        "json", "reject", "arrow_schema")
    assert config(record_type="JSON") == config(record_type="json")


def test_observability_config_partial_dict_gets_its_defaults():
    c = config(observability_config={"endpoint": "http://localhost:4318"})
    assert c.observability_config == {
        "endpoint": "http://localhost:4318", "output_dir": None,
        "write_interval_secs": 5, "log_level": "info",
    }
    # A copy: changing it does not change the configuration.
    c.observability_config["write_interval_secs"] = 99
    assert c.observability_config["write_interval_secs"] == 5


def test_observability_config_unknown_key():
    with pytest.raises(ConfigurationError) as excinfo:
        config(observability_config={"endpont": "http://x"})
    assert_config_error(excinfo, "observability_config", "endpont")


def test_path_options_accept_pathlike(tmp_path):
    c = config(debug_output_dir=tmp_path, debug_arrow_enabled=True)
    assert c.debug_output_dir == str(tmp_path)
    assert isinstance(c.debug_output_dir, str)


# ---- read-only properties ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["endpoint", "table_name", *ALL_DEFAULTS])
def test_every_option_is_a_read_only_property(name):
    c = config(**CREDS)
    before = getattr(c, name)
    with pytest.raises(AttributeError):
        setattr(c, name, before)
    with pytest.raises(AttributeError):
        delattr(c, name)
    assert getattr(c, name) == before
    assert isinstance(getattr(WrapperConfiguration, name), property)


def test_no_new_attributes():
    c = config()
    with pytest.raises(AttributeError):
        c.extra = 1  # type: ignore[attr-defined]


# ---- keyword and type errors ------------------------------------------------------------------


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="retry_max_atempts"):
        config(retry_max_atempts=3)
    with pytest.raises(TypeError, match="bogus_option"):
        config(bogus_option=True)


WRONG_TYPES = [
    ("client_id", 42),
    ("unity_catalog_url", 1.5),
    ("observability_enabled", "yes"),
    ("observability_enabled", 1),
    ("observability_config", ["endpoint"]),
    ("debug_enabled", "true"),
    ("debug_arrow_enabled", 1),
    ("debug_protobuf_enabled", "no"),
    ("debug_output_dir", 12),
    ("debug_flush_interval_secs", "5"),
    ("debug_flush_interval_secs", 5.0),
    ("debug_max_file_size", "big"),
    ("debug_max_files_retained", 2.5),
    ("retry_max_attempts", "5"),
    ("retry_max_attempts", True),
    ("retry_base_delay_ms", 100.0),
    ("retry_max_delay_ms", None),
    ("zerobus_writer_disabled", "false"),
    ("debug_max_records_per_file", "1000"),
    ("streams_per_table", "2"),
    ("max_inflight_requests", 1.0),
    ("max_inflight_bytes", "1MiB"),
    ("when_inflight_full", 1),
    ("stream_open_timeout_ms", "1"),
    ("recovery_backoff_ms", []),
    ("recovery_retries", 4.0),
    ("flush_timeout_ms", "300000"),
    ("ack_timeout_ms", None),
    ("application_name", 7),
    ("ca_file", 7),
    ("record_type", None),
    ("transport", None),
    ("transport", 2),
    ("ipc_compression", None),
    ("ipc_compression", True),
    ("descriptor_source", 3),
    ("descriptor", 12345),
    ("failure_rate_threshold", "0.1"),
    ("failure_rate_threshold", True),
    ("failure_rate_min_rows", 1.5),
    ("failure_cooldown_ms", "1"),
    ("cooldown_jitter_ms", 2.0),
    ("pipeline_blocked_cooldown_ms", "x"),
    ("send_timeout_ms", "5000"),
    ("max_sends_per_row", 2.5),
]


@pytest.mark.parametrize("name,value", WRONG_TYPES, ids=[f"{n}-{type(v).__name__}" for n, v in WRONG_TYPES])
def test_wrong_value_type_is_a_type_error_naming_the_option(name, value):
    with pytest.raises(TypeError) as excinfo:
        config(**{name: value})
    assert name in str(excinfo.value)


def test_wrong_type_for_endpoint_and_table_name():
    with pytest.raises(TypeError, match="endpoint"):
        WrapperConfiguration(123, TABLE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="table_name"):
        WrapperConfiguration(ENDPOINT, None)  # type: ignore[arg-type]


def test_wrong_type_for_the_secret_names_the_option_not_the_value():
    with pytest.raises(TypeError) as excinfo:
        config(client_id="sp-id", client_secret=987654321)
    assert "client_secret" in str(excinfo.value)
    assert "987654321" not in str(excinfo.value)
    with pytest.raises(TypeError) as excinfo:
        config(client_id="sp-id", client_secret=SECRET.encode())
    assert "client_secret" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


@pytest.mark.parametrize("name,value", [
    ("record_type", "xml"),
    ("transport", "flight"),
    ("ipc_compression", "gzip"),
    ("when_inflight_full", "drop"),
    ("descriptor_source", "magic"),
])
def test_bad_enum_name_is_a_configuration_error_naming_the_option(name, value):
    with pytest.raises(ConfigurationError) as excinfo:
        config(**{name: value})
    assert_config_error(excinfo, name, value)


# ---- the constructor's debug-directory rule ----------------------------------------------------


@pytest.mark.parametrize("switches", [
    {"debug_enabled": True},
    {"debug_arrow_enabled": True},
    {"debug_protobuf_enabled": True},
    {"debug_arrow_enabled": True, "debug_protobuf_enabled": True},
    {"debug_enabled": True, "debug_protobuf_enabled": True, "zerobus_writer_disabled": True},
])
def test_constructor_requires_debug_output_dir_when_a_debug_format_is_on(switches):
    with pytest.raises(ConfigurationError) as excinfo:
        config(**switches)
    assert_config_error(excinfo, "debug_output_dir")


@pytest.mark.parametrize("switches", [
    {},
    {"debug_arrow_enabled": False},
    {"debug_protobuf_enabled": False, "debug_arrow_enabled": False},
    # The legacy switch is off once a format switch is given (configuration.md).
    {"debug_enabled": True, "debug_arrow_enabled": False},
])
def test_no_debug_format_on_needs_no_directory(switches):
    c = config(**switches)
    assert c.debug_output_dir is None


def test_constructor_checks_nothing_else():
    # Everything below is wrong, but only validate() says so.
    c = WrapperConfiguration(
        "ftp://nowhere", "a.b.c.d", retry_max_attempts=0, retry_base_delay_ms=500,
        retry_max_delay_ms=100, debug_flush_interval_secs=0, client_id="only-id",
    )
    with pytest.raises(ConfigurationError):
        c.validate()


def test_constructor_debug_rule_with_directory(tmp_path):
    c = config(debug_enabled=True, debug_output_dir=str(tmp_path), **CREDS)
    assert c.debug_output_dir == str(tmp_path)
    c.validate()


# ---- validate() --------------------------------------------------------------------------------


def test_validate_passes_on_a_good_configuration_with_credentials():
    assert config(**CREDS).validate() is None


def test_validate_does_not_require_credentials():
    # python-api.md: "validate() does not require credentials"; the wrapper's construction does.
    assert config().validate() is None
    assert WrapperConfiguration("http://localhost:5000", "t").validate() is None


def test_validate_without_credentials_still_checks_other_rules():
    with pytest.raises(ConfigurationError) as excinfo:
        config(retry_max_attempts=0).validate()
    assert_config_error(excinfo, "retry_max_attempts")
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration(ENDPOINT, "a.b.c.d").validate()
    assert_config_error(excinfo, "table_name")


def test_validate_half_credentials_is_an_error():
    with pytest.raises(ConfigurationError) as excinfo:
        config(client_id="sp-id").validate()
    assert_config_error(excinfo, "client_secret")
    with pytest.raises(ConfigurationError) as excinfo:
        config(client_secret=SECRET).validate()
    message = assert_config_error(excinfo, "client_id")
    assert SECRET not in message


def test_validate_writer_disabled_needs_no_endpoint_nor_credentials(tmp_path):
    c = WrapperConfiguration("", "events", zerobus_writer_disabled=True,
                             debug_arrow_enabled=True, debug_output_dir=str(tmp_path))
    assert c.validate() is None


@pytest.mark.parametrize("endpoint", [
    "https://host.example.com",
    "http://localhost:5000",
    "https://host.example.com:443/",
    "HTTPS://Host.Example.com",
])
def test_validate_accepts_https_and_http_endpoints(endpoint):
    assert WrapperConfiguration(endpoint, TABLE, **CREDS).validate() is None


@pytest.mark.parametrize("endpoint,detail", [
    ("host.example.com", "no scheme"),
    ("host.example.com:443", "host.example.com:443"),
    ("ftp://host.example.com", "ftp://"),
    ("grpc://host.example.com", "grpc://"),
    ("", "empty"),
])
def test_validate_refuses_other_schemes_and_no_scheme(endpoint, detail):
    c = WrapperConfiguration(endpoint, TABLE, **CREDS)
    with pytest.raises(ConfigurationError) as excinfo:
        c.validate()
    assert_config_error(excinfo, "endpoint", detail)


@pytest.mark.parametrize("table", ["events", "default.events", "main.default.events",
                                   "Main_1.s_2.T3", "a.b.c", "_x"])
def test_validate_accepts_one_to_three_part_table_names(table):
    assert WrapperConfiguration(ENDPOINT, table, **CREDS).validate() is None


@pytest.mark.parametrize("table", ["", "a.b.c.d", "a-b.c.d", "a..b", "a.b.", ".a", "a b",
                                   "main.default.events;drop", "ca\u00f1a.b.c"])
def test_validate_refuses_bad_table_names(table):
    c = WrapperConfiguration(ENDPOINT, table, **CREDS)
    with pytest.raises(ConfigurationError) as excinfo:
        c.validate()
    assert_config_error(excinfo, "table_name")


@pytest.mark.parametrize("name", ["retry_max_attempts", "retry_base_delay_ms", "retry_max_delay_ms"])
@pytest.mark.parametrize("value", [0, -1])
def test_validate_retry_numbers_must_be_positive(name, value):
    options = dict(CREDS, **{name: value})
    with pytest.raises(ConfigurationError) as excinfo:
        config(**options).validate()
    message = assert_config_error(excinfo, name)
    assert "positive" in message


def test_validate_max_delay_at_least_base_delay():
    with pytest.raises(ConfigurationError) as excinfo:
        config(retry_base_delay_ms=200, retry_max_delay_ms=199, **CREDS).validate()
    assert_config_error(excinfo, "retry_max_delay_ms", "retry_base_delay_ms", "199", "200")
    assert config(retry_base_delay_ms=200, retry_max_delay_ms=200, **CREDS).validate() is None


@pytest.mark.parametrize("value", [0, -5])
def test_validate_flush_interval_positive(value):
    with pytest.raises(ConfigurationError) as excinfo:
        config(debug_flush_interval_secs=value, **CREDS).validate()
    assert_config_error(excinfo, "debug_flush_interval_secs")


@pytest.mark.parametrize("name,value", [
    ("streams_per_table", 0),
    ("streams_per_table", 257),
    ("max_inflight_requests", 0),
    ("ack_timeout_ms", 0),
    ("failure_rate_threshold", 1.5),
    ("debug_max_files_retained", 0),
])
def test_validate_new_options(name, value):
    with pytest.raises(ConfigurationError) as excinfo:
        config(**{name: value}, **CREDS).validate()
    assert_config_error(excinfo, name)


def test_validate_writer_disabled_needs_a_debug_format():
    c = config(zerobus_writer_disabled=True)
    with pytest.raises(ConfigurationError) as excinfo:
        c.validate()
    assert_config_error(excinfo, "zerobus_writer_disabled")


# ---- the secret -------------------------------------------------------------------------------


def test_secret_is_readable_but_never_shown():
    c = config(**CREDS)
    assert c.client_secret == SECRET
    for text in (repr(c), str(c), format(c), f"{c!r}"):
        assert SECRET not in text
        assert "client_secret" in text
    assert "***" in repr(c)


def test_error_text_never_shows_the_secret():
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration("ftp://x", TABLE, **CREDS).validate()
    assert SECRET not in str(excinfo.value)
    assert SECRET not in repr(excinfo.value)
    with pytest.raises(ConfigurationError) as excinfo:
        config(client_secret=SECRET).validate()
    assert SECRET not in str(excinfo.value)


def test_pickle_round_trip_keeps_the_secret_and_hides_it():
    c = config(**CREDS, streams_per_table=4, record_type="json",
               observability_config={"endpoint": "http://localhost:4318"})
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        c2 = pickle.loads(pickle.dumps(c, protocol=protocol))
        assert c2 == c
        assert type(c2) is WrapperConfiguration
        assert c2.client_secret == SECRET
        assert c2.streams_per_table == 4 and c2.record_type == "json"
        assert c2.observability_config == c.observability_config
        for text in (repr(c2), str(c2), repr(c), str(c)):
            assert SECRET not in text
        assert repr(c2) == repr(c)


def test_pickle_without_secret():
    c = config()
    c2 = pickle.loads(pickle.dumps(c))
    assert c2 == c and c2.client_secret is None


def test_equality_depends_on_every_option():
    assert config(**CREDS) == config(**CREDS)
    assert config(**CREDS) != config(**dict(CREDS, client_secret="other-secret"))
    assert config() != config(streams_per_table=2)


# ---- from_env ---------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_env_reads_every_documented_variable(clean_env, tmp_path):
    env = {
        "ZEROBUS_ENDPOINT": ENDPOINT,
        "ZEROBUS_TABLE_NAME": TABLE,
        "ZEROBUS_CLIENT_ID": "sp-id",
        "ZEROBUS_CLIENT_SECRET": SECRET,
        "UNITY_CATALOG_URL": "https://ws.example.com",
        "OTLP_ENABLED": "yes",
        "OTLP_ENDPOINT": "http://localhost:4318",
        "OTLP_WRITE_INTERVAL_SECS": "9",
        "OTLP_LOG_LEVEL": "WARN",
        "DEBUG_ENABLED": "0",
        "DEBUG_ARROW_ENABLED": "true",
        "DEBUG_PROTOBUF_ENABLED": "off",
        "DEBUG_OUTPUT_DIR": str(tmp_path),
        "DEBUG_FLUSH_INTERVAL_SECS": "2",
        "DEBUG_MAX_FILE_SIZE": "4096",
        "DEBUG_MAX_FILES_RETAINED": "none",
        "RETRY_MAX_ATTEMPTS": "8",
        "RETRY_BASE_DELAY_MS": "20",
        "RETRY_MAX_DELAY_MS": "400",
        "ZEROBUS_WRITER_DISABLED": "false",
        "ZEROBUS_STREAMS_PER_TABLE": "3",
        "ZEROBUS_RECORD_TYPE": "JSON",
        "ZEROBUS_WHEN_INFLIGHT_FULL": "reject",
        "ZEROBUS_ACK_TIMEOUT_MS": "1234",
    }
    for name, value in env.items():
        clean_env.setenv(name, value)
    c = WrapperConfiguration.from_env()
    assert isinstance(c, WrapperConfiguration)
    assert c.endpoint == ENDPOINT and c.table_name == TABLE
    assert c.client_id == "sp-id" and c.client_secret == SECRET
    assert c.unity_catalog_url == "https://ws.example.com"
    assert c.observability_enabled is True
    assert c.observability_config == {"endpoint": "http://localhost:4318", "output_dir": None,
                                      "write_interval_secs": 9, "log_level": "warn"}
    assert c.debug_enabled is False
    assert c.debug_arrow_enabled is True and c.debug_protobuf_enabled is False
    assert c.debug_output_dir == str(tmp_path)
    assert c.debug_flush_interval_secs == 2 and c.debug_max_file_size == 4096
    assert c.debug_max_files_retained is None
    assert (c.retry_max_attempts, c.retry_base_delay_ms, c.retry_max_delay_ms) == (8, 20, 400)
    assert c.zerobus_writer_disabled is False
    assert c.streams_per_table == 3 and c.record_type == "json"
    assert c.when_inflight_full == "reject" and c.ack_timeout_ms == 1234
    assert SECRET not in repr(c) and SECRET not in str(c)
    c.validate()


def test_from_env_unset_variables_keep_defaults(clean_env):
    clean_env.setenv("ZEROBUS_ENDPOINT", ENDPOINT)
    clean_env.setenv("ZEROBUS_TABLE_NAME", TABLE)
    c = WrapperConfiguration.from_env()
    for name, expected in ALL_DEFAULTS.items():
        assert getattr(c, name) == expected, name


def test_from_env_does_not_validate(clean_env):
    clean_env.setenv("ZEROBUS_ENDPOINT", "no-scheme.example.com")
    clean_env.setenv("ZEROBUS_TABLE_NAME", TABLE)
    clean_env.setenv("RETRY_MAX_ATTEMPTS", "0")
    c = WrapperConfiguration.from_env()
    assert c.retry_max_attempts == 0
    with pytest.raises(ConfigurationError) as excinfo:
        c.validate()
    assert_config_error(excinfo, "endpoint")


@pytest.mark.parametrize("variable,value", [
    ("RETRY_MAX_ATTEMPTS", "lots"),
    ("RETRY_BASE_DELAY_MS", "1.5"),
    ("DEBUG_ENABLED", "maybe"),
    ("ZEROBUS_WRITER_DISABLED", "2"),
    ("ZEROBUS_RECORD_TYPE", "xml"),
    ("ZEROBUS_TRANSPORT", "grpc"),
    ("ZEROBUS_IPC_COMPRESSION", "lz4"),
    ("ZEROBUS_WHEN_INFLIGHT_FULL", "drop"),
    ("OTLP_LOG_LEVEL", "loud"),
    ("ZEROBUS_FAILURE_RATE_THRESHOLD", "a lot"),
    ("DEBUG_MAX_FILES_RETAINED", "many"),
])
def test_from_env_malformed_value_names_the_variable(clean_env, variable, value):
    clean_env.setenv("ZEROBUS_ENDPOINT", ENDPOINT)
    clean_env.setenv("ZEROBUS_TABLE_NAME", TABLE)
    clean_env.setenv("ZEROBUS_CLIENT_ID", "sp-id")
    clean_env.setenv("ZEROBUS_CLIENT_SECRET", SECRET)
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration.from_env()
    assert_config_error(excinfo, variable, value)


# ---- from_yaml --------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "zerobus.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_from_yaml_reads_the_documented_keys(tmp_path):
    path = write(tmp_path, f"""
        zerobus_endpoint: {ENDPOINT}
        table_name: {TABLE}
        unity_catalog_url: https://ws.example.com
        client_id: sp-id
        client_secret: "{SECRET}"
        zerobus_writer_disabled: false
        observability:
          enabled: true
          endpoint: http://localhost:4318
          write_interval_secs: 6
          log_level: debug
        debug:
          enabled: false
          arrow_enabled: true
          protobuf_enabled: yes
          output_dir: {tmp_path}
          flush_interval_secs: 4
          max_file_size: 1000
          max_files_retained: null
          max_records_per_file: 77
        retry:
          max_attempts: 7
          base_delay_ms: 10
          max_delay_ms: 1000
        stream:
          streams_per_table: 2
          when_inflight_full: reject
          record_type: json
          application_name: my-pipeline
        cooldown:
          failure_rate_threshold: 0.25
          jitter_ms: 0
        """)
    c = WrapperConfiguration.from_yaml(path)  # os.PathLike accepted
    assert c == WrapperConfiguration.from_yaml(str(path))
    assert (c.endpoint, c.table_name) == (ENDPOINT, TABLE)
    assert c.client_id == "sp-id" and c.client_secret == SECRET
    assert c.observability_enabled is True
    assert c.observability_config == {"endpoint": "http://localhost:4318", "output_dir": None,
                                      "write_interval_secs": 6, "log_level": "debug"}
    assert c.debug_arrow_enabled is True and c.debug_protobuf_enabled is True
    assert c.debug_output_dir == str(tmp_path)
    assert c.debug_flush_interval_secs == 4 and c.debug_max_file_size == 1000
    assert c.debug_max_files_retained is None and c.debug_max_records_per_file == 77
    assert (c.retry_max_attempts, c.retry_base_delay_ms, c.retry_max_delay_ms) == (7, 10, 1000)
    assert c.streams_per_table == 2 and c.when_inflight_full == "reject"
    assert c.record_type == "json" and c.application_name == "my-pipeline"
    assert c.failure_rate_threshold == 0.25 and c.cooldown_jitter_ms == 0
    assert c.retry_max_delay_ms == 1000
    assert SECRET not in repr(c) and SECRET not in str(c)
    c.validate()


def test_from_yaml_absent_keys_keep_defaults(tmp_path):
    path = write(tmp_path, f"zerobus_endpoint: {ENDPOINT}\ntable_name: {TABLE}\n")
    c = WrapperConfiguration.from_yaml(path)
    for name, expected in ALL_DEFAULTS.items():
        assert getattr(c, name) == expected, name


@pytest.mark.parametrize("body,line,key,detail", [
    ("retry:\n  max_attempts: lots\n", 4, "retry.max_attempts", "lots"),
    ("retry:\n  max_atempts: 3\n", 4, "retry.max_atempts", "unknown key"),
    ("stream:\n  record_type: xml\n", 4, "stream.record_type", "xml"),
    ("stream:\n  transport: http\n", 4, "stream.transport", "http"),
    ("stream:\n  ipc_compression: snappy\n", 4, "stream.ipc_compression", "snappy"),
    ("debug:\n  enabled: maybe\n", 4, "debug.enabled", "maybe"),
    ("zerobus_writer_disabled: sometimes\n", 3, "zerobus_writer_disabled", "sometimes"),
    ("bogus_key: 1\n", 3, "bogus_key", "unknown"),
    ("retry:\n  max_attempts: null\n", 4, "retry.max_attempts", ""),
])
def test_from_yaml_malformed_value_names_file_line_and_key(tmp_path, body, line, key, detail):
    path = write(tmp_path, f"zerobus_endpoint: {ENDPOINT}\ntable_name: {TABLE}\n" + body)
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration.from_yaml(path)
    assert_config_error(excinfo, f"{path}:{line}", key, detail)


def test_from_yaml_error_never_shows_the_secret(tmp_path):
    path = write(tmp_path, f"""
        zerobus_endpoint: {ENDPOINT}
        table_name: {TABLE}
        client_id: sp-id
        client_secret: "{SECRET}"
        retry:
          max_attempts: lots
        """)
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration.from_yaml(path)
    assert_config_error(excinfo, "retry.max_attempts", "lots")
    # A secret given as a list is refused without quoting it.
    path = write(tmp_path, f"""
        zerobus_endpoint: {ENDPOINT}
        table_name: {TABLE}
        client_secret: ["{SECRET}", "b"]
        """, name="list.yaml")
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration.from_yaml(path)
    assert_config_error(excinfo, "client_secret", "single value")


def test_from_yaml_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError) as excinfo:
        WrapperConfiguration.from_yaml(missing)
    assert_config_error(excinfo, str(missing))


def test_from_yaml_does_not_validate(tmp_path):
    path = write(tmp_path, f"zerobus_endpoint: ftp://x\ntable_name: a.b.c.d\n")
    c = WrapperConfiguration.from_yaml(path)
    assert c.endpoint == "ftp://x"
    with pytest.raises(ConfigurationError):
        c.validate()


# ---- new options as keywords ------------------------------------------------------------------


def test_new_options_as_keywords_reach_the_native_config():
    c = config(streams_per_table=4, record_type="json", max_inflight_requests=10,
               when_inflight_full="reject", application_name="app", **CREDS)
    native = c._native().to_dict()
    assert native["streams_per_table"] == 4
    assert native["record_type"] == "json"
    assert native["max_inflight_requests"] == 10
    assert native["when_inflight_full"] == "reject"
    assert native["application_name"] == "app"
    assert SECRET not in repr(c._native())


def test_descriptor_keyword(tmp_path):
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.DescriptorProto(name="Row")
    proto.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    c = config(descriptor=proto, descriptor_source="given", **CREDS)
    assert descriptor_pb2.DescriptorProto.FromString(c.descriptor) == proto
    c.validate()
    assert "bytes>" in repr(c)  # not the raw bytes
    with pytest.raises(ConfigurationError) as excinfo:
        config(descriptor=proto, **CREDS).validate()  # descriptor_source is not 'given'
    assert_config_error(excinfo, "descriptor")


def test_package_exports_the_names():
    for name in ("ZerobusWrapper", "WrapperConfiguration", "TransmissionResult", "ZerobusError",
                 "ConfigurationError", "AuthenticationError", "ConnectionError",
                 "ConversionError", "TransmissionError", "RetryExhausted", "TokenRefreshError",
                 "__version__"):
        assert hasattr(az, name), name
        assert name in az.__all__
    assert isinstance(az.__version__, str) and az.__version__
    assert os.path.basename(os.path.dirname(az.__file__)) == "arrow_zerobus_sdk_wrapper"


def test_observability_config_values_are_checked():
    with pytest.raises(TypeError, match="observability_config.write_interval_secs"):
        config(observability_config={"write_interval_secs": "5"})
    with pytest.raises(ConfigurationError) as excinfo:
        config(observability_config={"log_level": "loud"})
    assert_config_error(excinfo, "observability_config.log_level", "loud")
    with pytest.raises(ConfigurationError) as excinfo:
        config(observability_config={"write_interval_secs": 0}, **CREDS).validate()
    assert_config_error(excinfo, "observability_config.write_interval_secs")


def test_int_out_of_range_names_the_option():
    with pytest.raises(ConfigurationError) as excinfo:
        config(retry_max_attempts=2**40)
    assert_config_error(excinfo, "retry_max_attempts", str(2**40))


def test_empty_credentials_are_refused_by_validate():
    with pytest.raises(ConfigurationError) as excinfo:
        config(client_id="", client_secret="", unity_catalog_url="https://ws.example.com").validate()
    assert_config_error(excinfo, "client_id")


# ---- transport and ipc_compression ------------------------------------------------------------


@pytest.mark.parametrize("transport", ["protobuf", "json", "arrow_flight", "Arrow_Flight"])
def test_transport_keyword_is_kept_canonical_and_validates(transport):
    c = config(**CREDS, transport=transport)
    assert c.transport == transport.lower()
    assert f"transport={transport.lower()!r}" in repr(c)
    assert c._native().to_dict()["transport"] == transport.lower()
    c.validate()


@pytest.mark.parametrize("compression", ["none", "lz4_frame", "zstd", "ZSTD"])
def test_ipc_compression_with_arrow_flight(compression):
    c = config(**CREDS, transport="arrow_flight", ipc_compression=compression)
    assert c.ipc_compression == compression.lower()
    assert f"ipc_compression={compression.lower()!r}" in repr(c)
    c.validate()


@pytest.mark.parametrize("name,value,allowed", [
    ("transport", "flight", "protobuf, json, arrow_flight"),
    ("transport", "", "protobuf, json, arrow_flight"),
    ("transport", "proto", "protobuf, json, arrow_flight"),
    ("ipc_compression", "lz4", "none, lz4_frame, zstd"),
    ("ipc_compression", "gzip", "none, lz4_frame, zstd"),
    ("ipc_compression", "", "none, lz4_frame, zstd"),
])
def test_bad_transport_values_name_the_option_and_the_choices(name, value, allowed):
    with pytest.raises(ConfigurationError) as excinfo:
        config(**{name: value})
    message = assert_config_error(excinfo, name)
    assert f"{name}: '{value}' is not one of {allowed}" in message


def test_record_type_json_agrees_with_transport_json():
    config(**CREDS, record_type="json", transport="json").validate()
    config(**CREDS, record_type="json").validate()


@pytest.mark.parametrize("options,names,detail", [
    (dict(transport="arrow_flight", record_type="json"), ("transport", "record_type"),
     "transport 'arrow_flight' conflicts with record_type 'json'"),
    (dict(ipc_compression="zstd"), ("ipc_compression", "transport"),
     "ipc_compression 'zstd' needs transport 'arrow_flight' (transport is 'protobuf')"),
    (dict(transport="json", ipc_compression="lz4_frame"), ("ipc_compression", "transport"),
     "ipc_compression 'lz4_frame' needs transport 'arrow_flight' (transport is 'json')"),
    (dict(record_type="json", ipc_compression="zstd"), ("ipc_compression",),
     "(transport is 'json')"),
    (dict(transport="arrow_flight", descriptor_source="given", descriptor=b"\n\x03Row"),
     ("descriptor_source", "arrow_flight"),
     "descriptor_source 'given' (a protobuf descriptor) cannot be used with transport "
     "'arrow_flight'"),
])
def test_transport_conflicts_are_configuration_errors_naming_both_options(options, names, detail):
    c = config(**CREDS, **options)  # the constructor checks only the debug directory
    with pytest.raises(ConfigurationError) as excinfo:
        c.validate()
    message = assert_config_error(excinfo, *names)
    assert detail in message


def test_transport_from_env_and_yaml(clean_env, tmp_path):
    clean_env.setenv("ZEROBUS_ENDPOINT", ENDPOINT)
    clean_env.setenv("ZEROBUS_TABLE_NAME", TABLE)
    clean_env.setenv("ZEROBUS_TRANSPORT", "arrow_flight")
    clean_env.setenv("ZEROBUS_IPC_COMPRESSION", "zstd")
    c = WrapperConfiguration.from_env()
    assert (c.transport, c.ipc_compression) == ("arrow_flight", "zstd")
    path = write(tmp_path, f"zerobus_endpoint: {ENDPOINT}\ntable_name: {TABLE}\n"
                           "stream:\n  transport: arrow_flight\n  ipc_compression: lz4_frame\n")
    c = WrapperConfiguration.from_yaml(path)
    assert (c.transport, c.ipc_compression) == ("arrow_flight", "lz4_frame")
    assert c.replace(transport="json", ipc_compression="none").transport == "json"
    assert pickle.loads(pickle.dumps(c)) == c
