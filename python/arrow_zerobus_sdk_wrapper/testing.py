"""Test helpers: a local Zerobus server for your own pipelines' tests, no Databricks needed.

    from arrow_zerobus_sdk_wrapper import ZerobusWrapper
    from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

    with LocalZerobus() as zerobus:
        with ZerobusWrapper(zerobus.config("main.default.events")) as wrapper:
            result = wrapper.send_batch(batch)
            assert result.failed_count == 0
        table = zerobus.read_table("main.default.events")  # needs the deltalake package

`LocalZerobus` runs the `zerobus-emulator` executable shipped with the package (docs/emulator.md):
gRPC Zerobus Ingest plus the OAuth token endpoint, Unity Catalog table lookups and an admin API
for statistics and fault injection, landing rows in Delta tables under a data directory.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

from . import WrapperConfiguration, _core
from ._binaries import binary_path

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["LocalZerobus"]

_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 20.0
_HTTP_TIMEOUT_S = 10.0
# The one line the emulator prints once both servers listen.
_LISTEN_PREFIX = b"zerobus-emulator listening "
# Options LocalZerobus itself sets on the configurations it makes.
_CONNECTION_OPTIONS = ("endpoint", "table_name", "client_id", "client_secret", "unity_catalog_url")

PathLike = Union[str, "os.PathLike[str]"]


class LocalZerobus:
    """A local Zerobus server for tests, as a context manager (or `start()` / `stop()`).

    Args:
        tables: declared tables, full name -> a declaration dict
            (``{"columns": [{"name": "id", "type": "bigint", "nullable": False}, ...]}``, types as
            Unity Catalog type text) or the path of such a JSON file.
        strict: refuse streams to tables that are not declared (NOT_FOUND). Without it the first
            stream to a table creates it from the rows' schema.
        client_id, client_secret: the OAuth service principal the server accepts (the secret is
            random when not given).
        sink: ``"delta"`` stores rows in Delta tables; ``"null"`` decodes and acknowledges them
            but stores nothing (benchmarks).
        data_dir: where the tables go; a temporary directory removed by `stop()` when None.
        faults: fault rules active from the start (docs/emulator.md, "Faults"); see `add_fault`.
        extra_args: more command-line flags for the emulator.
        **config_options: WrapperConfiguration options used by `config()` (which may override
            them per call).
    """

    def __init__(
        self,
        *,
        tables: Optional[Mapping[str, Union[Mapping[str, Any], PathLike]]] = None,
        strict: bool = False,
        client_id: str = "local-client",
        client_secret: Optional[str] = None,
        sink: str = "delta",
        data_dir: Optional[PathLike] = None,
        faults: Optional[Sequence[Mapping[str, Any]]] = None,
        extra_args: Sequence[Any] = (),
        **config_options: Any,
    ) -> None:
        if sink not in ("delta", "null"):
            raise ValueError(f"sink must be 'delta' or 'null', got {sink!r}")
        if ":" in client_id or not client_id:
            raise ValueError(f"client_id must be non-empty and contain no ':', got {client_id!r}")
        if client_secret is not None and (not isinstance(client_secret, str) or not client_secret):
            raise ValueError("client_secret must be a non-empty str (or None for a random one)")
        known = _core.default_options()
        for name in config_options:
            if name in _CONNECTION_OPTIONS:
                raise TypeError(f"LocalZerobus sets {name} itself; it cannot be given")
            if name not in known:
                raise TypeError(f"LocalZerobus() got an unexpected keyword argument {name!r}")
        # Fail on a misspelt option now rather than at the first config() call.
        WrapperConfiguration("http://127.0.0.1:1", "main.default.t", **config_options)
        self._tables: Dict[str, Union[Mapping[str, Any], PathLike]] = dict(tables or {})
        self._strict = strict
        self._client_id = client_id
        self._client_secret = client_secret if client_secret is not None else secrets.token_hex(16)
        self._sink = sink
        self._given_data_dir = None if data_dir is None else Path(data_dir)
        self._faults = [dict(rule) for rule in (faults or ())]
        self._extra_args = [str(arg) for arg in extra_args]
        self._config_options = dict(config_options)

        self._process: Optional[subprocess.Popen[bytes]] = None
        self._workdir: Optional[tempfile.TemporaryDirectory[str]] = None
        self._data_dir: Optional[Path] = None
        self._log_path: Optional[Path] = None
        self._grpc_address: Optional[str] = None
        self._http_address: Optional[str] = None
        self._finalizer: Optional[weakref.finalize] = None
        # Talks to 127.0.0.1 directly, whatever http_proxy says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> LocalZerobus:
        """Starts the server and waits (up to 20 s) until it listens. Returns self."""
        if self._process is not None:
            raise RuntimeError("LocalZerobus is already running")
        binary = binary_path("zerobus-emulator")
        # Holds the log and the table declarations (and the data unless data_dir was given).
        workdir = tempfile.TemporaryDirectory(prefix="zerobus-local-")
        root = Path(workdir.name)
        try:
            data_dir = self._given_data_dir or root / "data"
            args = [
                str(binary),
                "--data-dir", str(data_dir),
                "--grpc-port", "0",
                "--http-port", "0",
                "--client", f"{self._client_id}:{self._client_secret}",
                "--commit-interval-ms", "20",
                "--quiet",
            ]
            if self._sink == "null":
                args += ["--sink", "null"]
            if self._strict:
                args.append("--strict")
            args += self._table_args(root / "tables")
            for rule in self._faults:
                args += ["--fault", json.dumps(rule)]
            args += self._extra_args

            log_path = root / "emulator.log"
            # stderr goes to a file: a pipe nobody drains would eventually block the server.
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file
                )
            try:
                line = _read_first_line(process, _START_TIMEOUT_S)
                grpc_address, http_address = _parse_listen_line(line)
            except BaseException:
                _terminate(process)
                raise
        except BaseException as error:
            log = _read_text(root / "emulator.log")
            workdir.cleanup()
            if isinstance(error, _StartError):
                # The command line holds the client secret: never quote it, only the output.
                raise RuntimeError(f"zerobus-emulator did not start: {error}; log: {log!r}") from None
            raise
        self._process = process
        self._workdir = workdir
        self._data_dir = data_dir
        self._log_path = log_path
        self._grpc_address = grpc_address
        self._http_address = http_address
        # A LocalZerobus dropped without stop() must not leave a server running.
        self._finalizer = weakref.finalize(self, _terminate, process)
        return self

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 20 s) and removes the temporary
        directory. RuntimeError when it does not exit cleanly (exit code other than 0)."""
        process = self._process
        if process is None:
            return
        log = ""
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    log = self.log()
                    raise RuntimeError(
                        f"zerobus-emulator did not stop within {_STOP_TIMEOUT_S:.0f} s of "
                        f"SIGTERM and was killed; log: {log!r}"
                    ) from None
            if process.returncode != 0:
                log = self.log()
                raise RuntimeError(
                    f"zerobus-emulator exited with code {process.returncode}; log: {log!r}"
                )
        finally:
            if process.stdout is not None:
                process.stdout.close()
            if self._finalizer is not None:
                self._finalizer.detach()
            self._process = None
            self._grpc_address = self._http_address = None
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None
            self._log_path = None

    def __enter__(self) -> LocalZerobus:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None:
            self.stop()
            return
        # The block already failed: stop, but let its exception be the one that propagates.
        try:
            self.stop()
        except RuntimeError:
            pass

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # ---- connection details -----------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The Zerobus (gRPC) endpoint, e.g. ``http://127.0.0.1:41234``."""
        return "http://" + self._require(self._grpc_address)

    @property
    def unity_catalog_url(self) -> str:
        """The HTTP side: OAuth token endpoint, Unity Catalog API, admin API."""
        return "http://" + self._require(self._http_address)

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def client_secret(self) -> str:
        return self._client_secret

    @property
    def data_dir(self) -> Path:
        """Where the Delta tables are (one directory per catalog/schema/table)."""
        return self._require(self._data_dir)

    def config(self, table_name: str, **options: Any) -> WrapperConfiguration:
        """A WrapperConfiguration for `table_name` on this server, credentials included.
        `options` override the ones given to LocalZerobus."""
        for name in options:
            if name in ("endpoint", "table_name"):
                raise TypeError(f"config() sets {name} itself; it cannot be given")
        merged = {
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "unity_catalog_url": self.unity_catalog_url,
            **self._config_options,
            **options,
        }
        return WrapperConfiguration(self.endpoint, table_name, **merged)

    # ---- admin API --------------------------------------------------------------------------

    def add_fault(self, rule: Mapping[str, Any]) -> List[int]:
        """Adds a fault rule (or runs an action such as ``{"revoke_tokens": True}``) on the
        running server; docs/emulator.md lists the keys. Returns the new rule ids. ValueError
        with the server's message for an invalid rule."""
        return list(self._admin("POST", "/admin/faults", dict(rule)).get("ids", []))

    def clear_faults(self) -> None:
        """Removes every fault rule and creation block; withheld acks go out at once."""
        self._admin("DELETE", "/admin/faults")

    def stats(self) -> Dict[str, Any]:
        """The server's statistics: tables (rows, commits, ...), streams, tokens issued."""
        return self._admin("GET", "/admin/stats")

    # ---- tables -----------------------------------------------------------------------------

    def table_path(self, name: str) -> Path:
        """The Delta table directory of the full table name ``catalog.schema.table``."""
        parts = name.split(".")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"table name {name!r} must have three parts: catalog.schema.table")
        # The server stores names in lower case (Unity Catalog names are case-insensitive).
        return self.data_dir.joinpath(*(part.lower() for part in parts))

    def wait_settled(self, name: Optional[str] = None, timeout: float = 15.0) -> None:
        """Waits until the server has no open stream and nothing left to commit (for table
        `name`, or every table). A stream that ended before its acks may still have rows to
        commit: read a table only once it has settled. Raises TimeoutError with the server's
        stats when that does not happen within `timeout` seconds (e.g. a wrapper still open)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            pending = sum(t.get("pending_rows", 0) for t in stats.get("tables", [])
                          if name is None or t.get("name") == name)
            if stats.get("open_streams", 0) == 0 and pending == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the local Zerobus server did not settle within {timeout:g} s (open streams "
                    f"or rows still to commit: {stats}); shut the wrapper down first, or call "
                    "read_table(name, settle=False) for what is committed now"
                )
            time.sleep(0.02)

    def read_table(self, name: str, *, settle: bool = True, timeout: float = 15.0) -> pa.Table:
        """The rows of table `name` as a pyarrow Table (needs the deltalake package).

        With `settle` (the default) it first waits until the server has no open stream and
        nothing left to commit (`wait_settled`), so every row that can still land is in it."""
        if self._sink == "null":
            raise RuntimeError("read_table: this LocalZerobus uses sink='null', which stores no rows")
        try:
            from deltalake import DeltaTable
        except ImportError as error:
            raise ImportError(
                "LocalZerobus.read_table needs the deltalake package: pip install deltalake"
            ) from error
        if settle:
            self.wait_settled(name, timeout)
        path = self.table_path(name)
        if not (path / "_delta_log").is_dir():
            raise FileNotFoundError(f"table {name!r} does not exist yet (no Delta table at {path})")
        return DeltaTable(str(path)).to_pyarrow_table()

    def log(self) -> str:
        """What the server wrote on stderr so far (errors; stream lines are off)."""
        return _read_text(self._log_path) if self._log_path is not None else ""

    # ---- display ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        if self._process is None:
            return f"LocalZerobus(client_id={self._client_id!r}, state='stopped')"
        return (
            f"LocalZerobus(endpoint={self.endpoint!r}, unity_catalog_url={self.unity_catalog_url!r}, "
            f"client_id={self._client_id!r}, data_dir={str(self._data_dir)!r}, state='running')"
        )

    # ---- internals --------------------------------------------------------------------------

    def _require(self, value: Any) -> Any:
        if value is None or self._process is None:
            raise RuntimeError(
                "LocalZerobus is not running: use it as a context manager or call start()"
            )
        return value

    def _table_args(self, declarations_dir: Path) -> List[str]:
        args: List[str] = []
        for index, (name, declaration) in enumerate(self._tables.items()):
            if isinstance(declaration, Mapping):
                declarations_dir.mkdir(parents=True, exist_ok=True)
                path = declarations_dir / f"table{index}.json"
                path.write_text(json.dumps(declaration))
            elif isinstance(declaration, (str, os.PathLike)):
                path = Path(declaration)
            else:
                raise TypeError(
                    f"tables[{name!r}] must be a declaration dict or a path to one, got "
                    f"{type(declaration).__name__}"
                )
            args += ["--table", f"{name}={path}"]
        return args

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        url = self.unity_catalog_url + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=_HTTP_TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            if error.code == 400:
                raise ValueError(f"{method} {path}: {detail}") from None
            raise RuntimeError(f"{method} {path} answered {error.code}: {detail}") from None


class _StartError(Exception):
    """The server printed no listen line in time (message: what it printed instead)."""


def _read_first_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The first stdout line, read with select so that a silent or dead server cannot hang."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _StartError(f"no listen line within {timeout:.0f} s (stdout so far {buffer!r})")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:  # EOF: the server exited
                process.wait(timeout=5)
                raise _StartError(
                    f"it exited with code {process.returncode} (stdout {buffer!r})"
                )
            buffer += chunk
        elif process.poll() is not None:
            raise _StartError(f"it exited with code {process.returncode} (stdout {buffer!r})")
    return buffer.split(b"\n", 1)[0]


def _parse_listen_line(line: bytes) -> Tuple[str, str]:
    """(grpc host:port, http host:port) from
    ``zerobus-emulator listening grpc=HOST:PORT http=HOST:PORT tls=off``."""
    if not line.startswith(_LISTEN_PREFIX):
        raise _StartError(f"unexpected first line {line!r}")
    fields = dict(
        item.split("=", 1) for item in line[len(_LISTEN_PREFIX):].decode().split() if "=" in item
    )
    try:
        return _connect_address(fields["grpc"]), _connect_address(fields["http"])
    except (KeyError, ValueError):
        raise _StartError(f"unexpected first line {line!r}") from None


def _connect_address(listen: str) -> str:
    """host:port to connect to, for a listen address (a wildcard host becomes loopback)."""
    host, _, port = listen.rpartition(":")
    int(port)  # ValueError for a malformed line
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not reap it yet
            pass


def _read_text(path: Optional[Path]) -> str:
    try:
        return path.read_text(errors="replace") if path is not None else ""
    except OSError:
        return ""
