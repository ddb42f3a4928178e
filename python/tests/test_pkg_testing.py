"""`arrow_zerobus_sdk_wrapper.testing.LocalZerobus`: the local Zerobus server users test their own
pipelines with (python-api.md, "Logging and testing helpers").

Most tests run the real `zerobus-emulator` shipped with the package. The ones about a server that
misbehaves (prints something else than its listen line, never answers, ignores SIGTERM, exits
with an error) run a small shell script in its place, found where the package looks first for
its executables (`<package>/bin/`)."""

from __future__ import annotations

import gc
import json
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest

import arrow_zerobus_sdk_wrapper as pkg
from arrow_zerobus_sdk_wrapper import (
    ConfigurationError,
    WrapperConfiguration,
    ZerobusWrapper,
    _binaries,
)
from arrow_zerobus_sdk_wrapper import testing
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

SECRET = "local-Secret-4e7d19"

# Failing sends come back at once (no retries, no cool-down between tests).
FAST = dict(
    retry_max_attempts=1,
    retry_base_delay_ms=10,
    retry_max_delay_ms=50,
    recovery_retries=1,
    recovery_backoff_ms=10,
    stream_open_timeout_ms=5000,
    ack_timeout_ms=5000,
    flush_timeout_ms=10000,
    failure_cooldown_ms=0,
    cooldown_jitter_ms=0,
)

DECLARATION = {"columns": [{"name": "id", "type": "bigint", "nullable": False},
                           {"name": "v", "type": "string"}]}
DECLARED_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False),
                             pa.field("v", pa.string())])


def rows(start: int, count: int, schema: pa.Schema = DECLARED_SCHEMA) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array([f"v{i}" for i in ids])],
                           schema=schema)


def settled_table(server: LocalZerobus, name: str, timeout: float = 15.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return server.read_table(name, timeout=timeout)

def send(server: LocalZerobus, table: str, batch, **options):
    with ZerobusWrapper(server.config(table, **options)) as wrapper:
        result = wrapper.send_batch(batch)
        assert result.wait(60)
    assert result.successful_count + result.failed_count == result.total_rows
    return result


def sorted_ids(table: pa.Table) -> list:
    return sorted(table.column("id").to_pylist())


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """tempfile's directory for this test only, to see what LocalZerobus leaves behind."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


# ---- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize("sink", ["parquet", "", "Delta", None])
def test_sink_must_be_delta_or_null(sink):
    with pytest.raises(ValueError) as info:
        LocalZerobus(sink=sink)
    assert str(info.value) == f"sink must be 'delta' or 'null', got {sink!r}"


@pytest.mark.parametrize("client_id", ["", "a:b", ":"])
def test_client_id_must_be_non_empty_without_colon(client_id):
    with pytest.raises(ValueError) as info:
        LocalZerobus(client_id=client_id)
    assert str(info.value) == (
        f"client_id must be non-empty and contain no ':', got {client_id!r}")


@pytest.mark.parametrize("secret", ["", 12345, b"bytes-secret"])
def test_client_secret_must_be_a_non_empty_str(secret):
    with pytest.raises(ValueError) as info:
        LocalZerobus(client_secret=secret)
    assert str(info.value) == "client_secret must be a non-empty str (or None for a random one)"
    assert "bytes-secret" not in str(info.value) and "12345" not in str(info.value)


@pytest.mark.parametrize("name", ["endpoint", "table_name", "unity_catalog_url"])
def test_connection_options_are_set_by_local_zerobus(name):
    with pytest.raises(TypeError) as info:
        LocalZerobus(**{name: "x"})
    assert str(info.value) == f"LocalZerobus sets {name} itself; it cannot be given"


def test_unknown_or_bad_config_options_fail_at_construction():
    with pytest.raises(TypeError) as info:
        LocalZerobus(retry_attempts=3)
    assert str(info.value) == "LocalZerobus() got an unexpected keyword argument 'retry_attempts'"
    with pytest.raises(TypeError, match="retry_max_attempts"):
        LocalZerobus(retry_max_attempts="three")
    with pytest.raises(ConfigurationError, match="debug_output_dir"):
        LocalZerobus(debug_enabled=True)


def test_not_running_before_start():
    server = LocalZerobus(client_secret=SECRET)
    assert server.running is False
    assert repr(server) == "LocalZerobus(client_id='local-client', state='stopped')"
    for attribute in ("endpoint", "unity_catalog_url", "data_dir"):
        with pytest.raises(RuntimeError) as info:
            getattr(server, attribute)
        assert str(info.value) == (
            "LocalZerobus is not running: use it as a context manager or call start()")
    with pytest.raises(RuntimeError, match="not running"):
        server.config("main.default.t")
    with pytest.raises(RuntimeError, match="not running"):
        server.stats()
    with pytest.raises(RuntimeError, match="not running"):
        server.table_path("main.default.t")
    assert server.log() == ""
    server.stop()  # stopping a server that never started does nothing
    # Credentials are known before start.
    assert server.client_id == "local-client" and server.client_secret == SECRET


def test_random_secret_when_none_is_given():
    first, second = LocalZerobus(), LocalZerobus()
    assert re.fullmatch(r"[0-9a-f]{32}", first.client_secret)
    assert first.client_secret != second.client_secret


# ---- life cycle with the real server ------------------------------------------------------------


def test_context_manager_form(private_tmp):
    with LocalZerobus(client_secret=SECRET) as server:
        assert server.running
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.endpoint)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.unity_catalog_url)
        assert server.endpoint != server.unity_catalog_url
        # A temporary data directory, under tempfile's directory.
        data_dir = server.data_dir
        assert data_dir.is_relative_to(private_tmp) and data_dir.name == "data"
        text = repr(server)
        assert text == (
            f"LocalZerobus(endpoint={server.endpoint!r}, "
            f"unity_catalog_url={server.unity_catalog_url!r}, client_id='local-client', "
            f"data_dir={str(data_dir)!r}, state='running')"
        )
        assert SECRET not in text
        assert server.log() == ""  # --quiet: no stream lines, no errors
        assert send(server, "main.default.cm", rows(0, 3)).successful_count == 3
        assert data_dir.is_dir()
    assert not server.running
    assert repr(server) == "LocalZerobus(client_id='local-client', state='stopped')"
    # stop() removed the temporary directory, data included.
    assert list(private_tmp.iterdir()) == []
    assert server.log() == ""


def test_start_stop_form_and_restart(private_tmp):
    server = LocalZerobus(faults=[{"ack_delay_ms": 1}])
    assert server.start() is server
    try:
        first_endpoint = server.endpoint
        with pytest.raises(RuntimeError) as info:
            server.start()
        assert str(info.value) == "LocalZerobus is already running"
        assert server.running and server.endpoint == first_endpoint  # still the first one
        assert send(server, "main.default.ss", rows(0, 2)).successful_count == 2
    finally:
        server.stop()
    assert not server.running
    server.stop()  # a second stop does nothing
    # The same object starts again: a fresh server, fresh (empty) data directory.
    with server:
        assert server.running
        assert server.stats()["tables"] == []
        assert send(server, "main.default.ss", rows(10, 1)).successful_count == 1
        assert sorted_ids(settled_table(server, "main.default.ss")) == [10]
    assert list(private_tmp.iterdir()) == []


def test_server_dropped_without_stop_is_terminated(private_tmp):
    server = LocalZerobus().start()
    grpc_port = port_of(server.endpoint)
    http_port = port_of(server.unity_catalog_url)
    socket.create_connection(("127.0.0.1", grpc_port), timeout=5).close()
    del server
    gc.collect()
    for port in (grpc_port, http_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert list(private_tmp.iterdir()) == []


def test_exception_in_the_block_propagates_and_the_server_stops(private_tmp):
    with pytest.raises(KeyError, match="from the block"):
        with LocalZerobus() as server:
            port = port_of(server.endpoint)
            raise KeyError("from the block")
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert list(private_tmp.iterdir()) == []


def test_host_flag_with_a_wildcard_address_gives_a_loopback_endpoint():
    with LocalZerobus(extra_args=["--host", "0.0.0.0"]) as server:
        # The server listens on 0.0.0.0; clients connect to loopback.
        assert server.endpoint.startswith("http://127.0.0.1:")
        assert server.unity_catalog_url.startswith("http://127.0.0.1:")
        assert send(server, "main.default.wild", rows(0, 4)).successful_count == 4


# ---- config() -----------------------------------------------------------------------------------


def test_config_carries_connection_and_credentials():
    with LocalZerobus(client_id="my-client", client_secret=SECRET, retry_max_attempts=2,
                      streams_per_table=2) as server:
        config = server.config("main.default.cfg")
        assert isinstance(config, WrapperConfiguration)
        assert config.endpoint == server.endpoint
        assert config.table_name == "main.default.cfg"
        assert config.unity_catalog_url == server.unity_catalog_url
        assert config.client_id == "my-client" and config.client_secret == SECRET
        # Options given to LocalZerobus apply; per-call options override them.
        assert config.retry_max_attempts == 2 and config.streams_per_table == 2
        override = server.config("main.default.cfg", retry_max_attempts=4, client_id="other")
        assert override.retry_max_attempts == 4 and override.streams_per_table == 2
        assert override.client_id == "other"
        config.validate()
        with pytest.raises(TypeError) as info:
            server.config("main.default.cfg", endpoint="http://elsewhere:1")
        assert str(info.value) == "config() sets endpoint itself; it cannot be given"
        with pytest.raises(TypeError, match="table_name"):
            server.config("main.default.cfg", table_name="main.default.other")
        assert send(server, "main.default.cfg", rows(0, 5)).successful_count == 5


def test_the_oauth_client_is_enforced():
    with LocalZerobus(client_secret=SECRET, **FAST) as server:
        result = send(server, "main.default.auth", rows(0, 2), client_secret="wrong-secret")
        assert result.failed_count == 2 and not result.success
        assert result.error.startswith("Authentication error: ")
        assert "wrong-secret" not in result.error and SECRET not in result.error
        assert result.get_failed_row_indices_by_error_type("AuthenticationError") == [0, 1]
        assert send(server, "main.default.auth", rows(0, 2)).successful_count == 2


# ---- tables -------------------------------------------------------------------------------------


def test_declared_tables_and_strict_mode(tmp_path):
    declaration_file = tmp_path / "decl.json"
    declaration_file.write_text(json.dumps(DECLARATION))
    tables = {
        "main.default.from_dict": DECLARATION,
        "main.default.from_str": str(declaration_file),
        "main.default.from_path": declaration_file,
    }
    with LocalZerobus(tables=tables, strict=True, **FAST) as server:
        # Declared tables exist before any stream, empty, with the declared schema.
        stats = server.stats()
        assert sorted(t["name"] for t in stats["tables"]) == sorted(tables)
        assert all(t["rows"] == 0 for t in stats["tables"])
        empty = server.read_table("main.default.from_dict")
        assert empty.num_rows == 0
        assert empty.schema.field("id").type == pa.int64()
        assert not empty.schema.field("id").nullable and empty.schema.field("v").nullable

        for index, name in enumerate(tables):
            result = send(server, name, rows(index * 10, 3))
            assert result.successful_count == 3, result.error
        # Strict: an undeclared table is NOT_FOUND.
        refused = send(server, "main.default.undeclared", rows(0, 2))
        assert refused.failed_count == 2
        assert "NOT_FOUND" in refused.error and "strict" in refused.error
        # The declaration is enforced: a nullable id does not match the NOT NULL column.
        nullable = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
        mismatch = send(server, "main.default.from_dict", rows(100, 1, nullable))
        assert mismatch.failed_count == 1
        assert "descriptor field 'id'" in mismatch.error and "NOT NULL" in mismatch.error

        for index, name in enumerate(tables):
            table = settled_table(server, name)
            assert sorted_ids(table) == [index * 10, index * 10 + 1, index * 10 + 2]
            assert table.column("v").to_pylist() == [f"v{i}" for i in table.column("id").to_pylist()]
        with pytest.raises(FileNotFoundError) as info:
            server.read_table("main.default.undeclared")
        assert "does not exist yet" in str(info.value)


def test_without_strict_the_first_stream_creates_the_table():
    with LocalZerobus() as server:
        assert server.stats()["tables"] == []
        with pytest.raises(FileNotFoundError) as info:
            server.read_table("main.default.created")
        assert str(info.value) == (
            f"table 'main.default.created' does not exist yet (no Delta table at "
            f"{server.table_path('main.default.created')})")
        batch = pa.record_batch({"id": pa.array([5, 6], pa.int64()), "name": ["x", "y"]})
        assert send(server, "main.default.created", batch).successful_count == 2
        table = settled_table(server, "main.default.created")
        assert table.num_rows == 2 and set(table.column_names) == {"id", "name"}
        assert sorted_ids(table) == [5, 6]


def test_table_declaration_of_a_wrong_type(private_tmp):
    server = LocalZerobus(tables={"main.default.t": 42})
    with pytest.raises(TypeError) as info:
        server.start()
    assert str(info.value) == (
        "tables['main.default.t'] must be a declaration dict or a path to one, got int")
    assert not server.running
    assert list(private_tmp.iterdir()) == []


def test_table_path():
    with LocalZerobus() as server:
        # Names are stored in lower case.
        assert server.table_path("Main.Default.Events") == server.data_dir / "main" / "default" / "events"
        for bad in ("main.events", "a.b.c.d", "main..events", "", "events"):
            with pytest.raises(ValueError) as info:
                server.table_path(bad)
            assert str(info.value) == (
                f"table name {bad!r} must have three parts: catalog.schema.table")


def test_read_table_needs_deltalake(monkeypatch):
    import deltalake

    with LocalZerobus() as server:
        assert send(server, "main.default.dl", rows(0, 1)).successful_count == 1
        settled_table(server, "main.default.dl")
        monkeypatch.setitem(sys.modules, "deltalake", None)  # as if it were not installed
        with pytest.raises(ImportError) as info:
            server.read_table("main.default.dl")
        assert str(info.value) == (
            "LocalZerobus.read_table needs the deltalake package: pip install deltalake")
        assert isinstance(info.value.__cause__, ImportError)
        monkeypatch.setitem(sys.modules, "deltalake", deltalake)
        assert sorted_ids(server.read_table("main.default.dl")) == [0]


def test_given_data_dir_keeps_the_tables(tmp_path, private_tmp):
    data_dir = tmp_path / "tables"
    with LocalZerobus(data_dir=data_dir) as server:
        assert server.data_dir == data_dir
        assert send(server, "main.default.kept", rows(0, 3)).successful_count == 3
        settled_table(server, "main.default.kept")
        assert server.table_path("main.default.kept") == data_dir / "main" / "default" / "kept"
    # Not removed by stop(); the temporary directory (log, declarations) is.
    assert (data_dir / "main" / "default" / "kept" / "_delta_log").is_dir()
    assert list(private_tmp.iterdir()) == []
    # A new server on the same directory serves the table from disk, and appends to it.
    with LocalZerobus(data_dir=str(data_dir)) as again:
        assert [t["name"] for t in again.stats()["tables"]] == ["main.default.kept"]
        assert sorted_ids(again.read_table("main.default.kept")) == [0, 1, 2]
        assert send(again, "main.default.kept", rows(3, 1)).successful_count == 1
        assert sorted_ids(settled_table(again, "main.default.kept")) == [0, 1, 2, 3]


def test_null_sink_acknowledges_and_stores_nothing():
    with LocalZerobus(sink="null") as server:
        result = send(server, "main.default.void", rows(0, 7))
        assert result.successful_count == 7 and result.success
        table = {t["name"]: t for t in server.stats()["tables"]}["main.default.void"]
        assert table["rows"] == 7 and table["commits"] == 0
        with pytest.raises(RuntimeError) as info:
            server.read_table("main.default.void")
        assert str(info.value) == (
            "read_table: this LocalZerobus uses sink='null', which stores no rows")
        assert not server.table_path("main.default.void").exists()


# ---- stats and faults ---------------------------------------------------------------------------


def test_stats():
    with LocalZerobus() as server:
        stats = server.stats()
        assert stats["version"] == pkg.__version__
        assert stats["open_streams"] == 0 and stats["streams"] == [] and stats["tables"] == []
        assert stats["tokens_issued"] == 0
        assert send(server, "main.default.st", rows(0, 4)).successful_count == 4
        settled_table(server, "main.default.st")
        stats = server.stats()
        assert stats["tokens_issued"] >= 1
        (table,) = stats["tables"]
        assert table["name"] == "main.default.st" and table["rows"] == 4
        assert table["commits"] >= 1 and table["pending_rows"] == 0
        (stream,) = stats["streams"]
        assert stream["table"] == "main.default.st" and stream["rows"] == 4
        assert stream["status_code"] == 0 and stream["open"] is False


def test_faults_from_start_then_cleared_then_added():
    denied = {"table": "main.default.fa",
              "end_stream": {"after_requests": 0, "code": "PERMISSION_DENIED",
                             "message": "start-fault-1c"}}
    with LocalZerobus(faults=[denied], **FAST) as server:
        # Active from the start, on its table only.
        failed = send(server, "main.default.fa", rows(0, 3))
        assert failed.failed_count == 3
        assert "PERMISSION_DENIED" in failed.error and "start-fault-1c" in failed.error
        assert send(server, "main.default.fb", rows(0, 3)).successful_count == 3

        server.clear_faults()
        assert send(server, "main.default.fa", rows(3, 3)).successful_count == 3

        ids = server.add_fault({"end_stream": {"after_requests": 0, "code": "PERMISSION_DENIED",
                                               "message": "added-fault-2d"}})
        assert len(ids) == 1 and isinstance(ids[0], int)
        # Now every table is affected.
        for name in ("main.default.fa", "main.default.fb"):
            result = send(server, name, rows(10, 1))
            assert result.failed_count == 1 and "added-fault-2d" in result.error
        more = server.add_fault({"ack_delay_ms": 1})
        assert len(more) == 1 and more[0] > ids[0]
        # An action is not a rule: it has no id.
        assert server.add_fault({"expire_tokens": True}) == []

        server.clear_faults()
        assert send(server, "main.default.fb", rows(20, 2)).successful_count == 2
        streams = server.stats()["streams"]
        # PERMISSION_DENIED (7) on the streams the faults ended, OK on the others.
        ended = {s["status_message"] for s in streams if s["status_code"] == 7}
        assert ended == {"start-fault-1c", "added-fault-2d"}
        assert all(s["status_code"] in (0, 7) for s in streams)
        assert sorted_ids(settled_table(server, "main.default.fa")) == [3, 4, 5]


def test_bad_fault_rule_is_a_value_error_and_changes_nothing():
    with LocalZerobus() as server:
        with pytest.raises(ValueError) as info:
            server.add_fault({"bogus": 1})
        message = str(info.value)
        assert message.startswith("POST /admin/faults: ")
        assert "unknown fault key 'bogus'" in message
        with pytest.raises(ValueError, match="end_stream"):
            server.add_fault({"ack_delay_ms": 1000000,
                              "end_stream": {"after_requests": 0, "code": "OK"}})
        # Nothing of the refused requests applies.
        assert send(server, "main.default.nf", rows(0, 2)).successful_count == 2
        # Other HTTP failures of the admin API are RuntimeErrors naming the status.
        with pytest.raises(RuntimeError) as info:
            server._admin("GET", "/admin/no-such-thing")
        assert str(info.value).startswith("GET /admin/no-such-thing answered 404")


def test_bad_fault_at_start_is_a_start_failure(private_tmp):
    server = LocalZerobus(faults=[{"bogus": 1}], client_secret=SECRET)
    with pytest.raises(RuntimeError) as info:
        server.start()
    message = str(info.value)
    assert message.startswith("zerobus-emulator did not start: it exited with code ")
    assert "unknown fault key 'bogus'" in message
    assert SECRET not in message
    assert not server.running
    assert list(private_tmp.iterdir()) == []


# ---- start failures of the real server ----------------------------------------------------------


def test_unknown_flag_is_a_start_failure_without_the_secret(private_tmp):
    server = LocalZerobus(client_secret=SECRET, extra_args=["--no-such-flag"])
    with pytest.raises(RuntimeError) as info:
        server.start()
    message = str(info.value)
    assert message.startswith("zerobus-emulator did not start: it exited with code ")
    assert "--no-such-flag" in message.split("; log: ", 1)[1]  # the server's own words
    assert SECRET not in message and info.value.__cause__ is None
    assert not server.running
    assert list(private_tmp.iterdir()) == []


def test_bad_declaration_is_a_start_failure_naming_the_column(private_tmp):
    declaration = {"columns": [{"name": "amount", "type": "no_such_type"}]}
    with pytest.raises(RuntimeError) as info:
        with LocalZerobus(tables={"main.default.bad": declaration}):
            pass  # pragma: no cover - the server does not start
    assert "main.default.bad" in str(info.value)
    assert "'amount'" in str(info.value) and "no_such_type" in str(info.value)
    assert list(private_tmp.iterdir()) == []


def test_missing_executable(tmp_path, monkeypatch, private_tmp):
    monkeypatch.setattr(_binaries, "_PACKAGE_DIR", tmp_path / "a" / "b" / "pkg")
    monkeypatch.delenv("AZ_BUILD_DIR", raising=False)
    server = LocalZerobus()
    with pytest.raises(FileNotFoundError, match="the zerobus-emulator executable was not found"):
        server.start()
    assert not server.running
    assert list(private_tmp.iterdir()) == []


# ---- a misbehaving server (a script in its place) -----------------------------------------------

LISTEN = "zerobus-emulator listening grpc=127.0.0.1:1 http=127.0.0.1:2 tls=off"
# Waits for SIGTERM, then exits with the given code (the trap is set before the listen line).
SERVE = """\
trap 'kill $child 2>/dev/null; exit {code}' TERM
echo '{listen}'
sleep 60 & child=$!
wait $child
"""


@pytest.fixture
def fake_emulator(tmp_path, monkeypatch):
    """Installs a shell script as `<package>/bin/zerobus-emulator` (the first place looked at)."""
    package_dir = tmp_path / "fake-site" / "arrow_zerobus_sdk_wrapper"
    monkeypatch.setattr(_binaries, "_PACKAGE_DIR", package_dir)

    def install(body: str) -> Path:
        path = package_dir / "bin" / "zerobus-emulator"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
        return path

    return install


def assert_gone(pid_file: Path) -> None:
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_command_line_given_to_the_server(fake_emulator, tmp_path, private_tmp):
    record = tmp_path / "argv"
    seen = tmp_path / "declaration"
    # Records its arguments (one per line) and the first declaration file it is given.
    fake_emulator(
        f'for arg in "$@"; do printf "%s\\n" "$arg"; done > {record}\n'
        f'for arg in "$@"; do case "$arg" in *table0.json) cat "${{arg#*=}}" > {seen};; esac; done\n'
        + SERVE.format(code=0, listen=LISTEN)
    )
    declared_file = tmp_path / "declared.json"
    declared_file.write_text(json.dumps(DECLARATION))
    faults = [{"ack_delay_ms": 5}, {"table": "a.b.c", "withhold_acks": True}]
    server = LocalZerobus(
        tables={"main.default.one": DECLARATION, "main.default.two": declared_file},
        strict=True, sink="null", client_id="cid", client_secret=SECRET, faults=faults,
        data_dir=tmp_path / "data", extra_args=["--token-lifetime-s", 60],
    )
    with server:
        assert server.endpoint == "http://127.0.0.1:1"
        assert server.unity_catalog_url == "http://127.0.0.1:2"
    argv = record.read_text().splitlines()
    assert argv[:12] == [
        "--data-dir", str(tmp_path / "data"),
        "--grpc-port", "0", "--http-port", "0",
        "--client", f"cid:{SECRET}",
        "--commit-interval-ms", "20",
        "--quiet",
        "--sink",
    ]
    assert argv[12:] == [
        "null",
        "--strict",
        "--table", f"main.default.one={argv[15].split('=', 1)[1]}",
        "--table", f"main.default.two={declared_file}",
        "--fault", json.dumps(faults[0]),
        "--fault", json.dumps(faults[1]),
        "--token-lifetime-s", "60",
    ]
    assert argv[15].endswith("/tables/table0.json")
    assert json.loads(seen.read_text()) == DECLARATION
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("line,grpc,http", [
    ("grpc=0.0.0.0:4001 http=[::]:4002 tls=off", "127.0.0.1:4001", "127.0.0.1:4002"),
    ("grpc=[::1]:4001 http=localhost:4002 tls=on", "[::1]:4001", "localhost:4002"),
    ("tls=off http=127.0.0.2:4002 grpc=:4001 extra", "127.0.0.1:4001", "127.0.0.2:4002"),
])
def test_listen_addresses_become_connect_addresses(fake_emulator, line, grpc, http):
    fake_emulator(SERVE.format(code=0, listen="zerobus-emulator listening " + line))
    with LocalZerobus() as server:
        assert server.endpoint == f"http://{grpc}"
        assert server.unity_catalog_url == f"http://{http}"
        assert server.config("main.default.t").endpoint == f"http://{grpc}"


@pytest.mark.parametrize("line", [
    "hello",
    "zerobus-emulator listening grpc=127.0.0.1:1 tls=off",
    "zerobus-emulator listening grpc=127.0.0.1:x http=127.0.0.1:2 tls=off",
    "zerobus-emulator listening grpc=127.0.0.1 http=127.0.0.1:2 tls=off",
    "zerobus-emulator started",
])
def test_unexpected_first_line_is_a_start_failure(fake_emulator, tmp_path, private_tmp, line):
    pid_file = tmp_path / "pid"
    fake_emulator(f"echo $$ > {pid_file}\necho 'fake stderr 93b1' >&2\necho '{line}'\n"
                  "exec sleep 60\n")
    server = LocalZerobus(client_secret=SECRET)
    with pytest.raises(RuntimeError) as info:
        server.start()
    assert str(info.value) == (
        f"zerobus-emulator did not start: unexpected first line {line.encode()!r}; "
        f"log: 'fake stderr 93b1\\n'")
    assert not server.running
    assert_gone(pid_file)  # the server that printed it was killed
    assert list(private_tmp.iterdir()) == []


def test_silent_server_times_out_and_is_killed(fake_emulator, tmp_path, monkeypatch, private_tmp):
    pid_file = tmp_path / "pid"
    fake_emulator(f"echo $$ > {pid_file}\nprintf 'partial'\nexec sleep 60\n")
    monkeypatch.setattr(testing, "_START_TIMEOUT_S", 1.0)
    server = LocalZerobus()
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        server.start()
    assert time.monotonic() - started < 10
    assert str(info.value) == (
        "zerobus-emulator did not start: no listen line within 1 s (stdout so far b'partial'); "
        "log: ''")
    assert_gone(pid_file)
    assert list(private_tmp.iterdir()) == []


def test_server_exiting_at_once_is_a_start_failure(fake_emulator, private_tmp):
    fake_emulator("echo 'cannot bind 7c0e' >&2\nprintf 'half a line'\nexit 4\n")
    with pytest.raises(RuntimeError) as info:
        LocalZerobus().start()
    assert str(info.value) == (
        "zerobus-emulator did not start: it exited with code 4 (stdout b'half a line'); "
        "log: 'cannot bind 7c0e\\n'")
    assert list(private_tmp.iterdir()) == []


def test_server_exiting_while_its_stdout_stays_open(fake_emulator, private_tmp):
    # A child keeps stdout open: no end of file, the exit itself must be noticed.
    fake_emulator("sleep 8 &\nexit 5\n")
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        LocalZerobus().start()
    assert time.monotonic() - started < 5  # not when the child finally closes stdout
    assert str(info.value) == (
        "zerobus-emulator did not start: it exited with code 5 (stdout b''); log: ''")
    assert list(private_tmp.iterdir()) == []


def test_stop_reports_a_bad_exit_code_with_the_log(fake_emulator, private_tmp):
    fake_emulator("echo 'shutdown failed 5d2a' >&2\n" + SERVE.format(code=3, listen=LISTEN))
    server = LocalZerobus(client_secret=SECRET).start()
    assert server.log() == "shutdown failed 5d2a\n"
    with pytest.raises(RuntimeError) as info:
        server.stop()
    assert str(info.value) == (
        "zerobus-emulator exited with code 3; log: 'shutdown failed 5d2a\\n'")
    assert SECRET not in str(info.value)
    # Stopped all the same: state cleared, directory removed, a second stop is quiet.
    assert not server.running
    assert repr(server) == "LocalZerobus(client_id='local-client', state='stopped')"
    assert server.log() == ""
    assert list(private_tmp.iterdir()) == []
    server.stop()


def test_server_that_died_is_not_running_and_stop_says_so(fake_emulator, private_tmp):
    fake_emulator(f"echo '{LISTEN}'\necho 'crashed 0a11' >&2\nexit 6\n")
    server = LocalZerobus().start()
    deadline = time.monotonic() + 10
    while server.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.running
    with pytest.raises(RuntimeError) as info:
        server.stop()
    assert str(info.value) == "zerobus-emulator exited with code 6; log: 'crashed 0a11\\n'"
    assert list(private_tmp.iterdir()) == []


def test_server_ignoring_sigterm_is_killed(fake_emulator, tmp_path, monkeypatch, private_tmp):
    pid_file = tmp_path / "pid"
    fake_emulator(f"echo $$ > {pid_file}\ntrap '' TERM\necho '{LISTEN}'\n"
                  "echo 'still here 62f0' >&2\nexec sleep 60\n")
    monkeypatch.setattr(testing, "_STOP_TIMEOUT_S", 1.0)
    server = LocalZerobus().start()
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        server.stop()
    assert 1.0 <= time.monotonic() - started < 10
    assert str(info.value) == (
        "zerobus-emulator did not stop within 1 s of SIGTERM and was killed; "
        "log: 'still here 62f0\\n'")
    assert_gone(pid_file)
    assert not server.running
    assert list(private_tmp.iterdir()) == []


def test_failing_stop_at_the_end_of_a_block(fake_emulator, private_tmp):
    fake_emulator(SERVE.format(code=3, listen=LISTEN))
    # No exception in the block: stop's error is raised.
    with pytest.raises(RuntimeError, match="exited with code 3"):
        with LocalZerobus():
            pass
    # An exception in the block: that one propagates, stop's error does not replace it.
    with pytest.raises(KeyError, match="the block's own error") as info:
        with LocalZerobus() as server:
            raise KeyError("the block's own error")
    assert not isinstance(info.value.__context__, RuntimeError)
    assert not server.running
    assert list(private_tmp.iterdir()) == []


def test_read_table_waits_for_the_server_to_settle_and_says_when_it_cannot():
    """read_table first waits until no stream is open and nothing is left to commit; with a
    wrapper still open it gives up after `timeout` with a TimeoutError that says what to do, and
    settle=False reads what is committed now."""
    from arrow_zerobus_sdk_wrapper import ZerobusWrapper

    name = "main.default.settle"
    with LocalZerobus() as server:
        wrapper = ZerobusWrapper(server.config(name))
        try:
            assert wrapper.send_batch(pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())})).success
            with pytest.raises(TimeoutError, match="settle=False"):
                server.read_table(name, timeout=0.3)
            assert server.read_table(name, settle=False).num_rows == 3  # acked means committed
        finally:
            wrapper.shutdown()
        server.wait_settled(name, timeout=10)
        assert server.read_table(name).column("id").to_pylist() == [1, 2, 3]
