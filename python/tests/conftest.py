"""Shared pytest fixtures: the built `zerobus-emulator` executable, started on free ports.

The emulator comes from the C++ build directory: env AZ_BUILD_DIR, else `<repo>/build` (what
`make build` makes). Tests that need it fail (not skip) when it is missing, so a broken build
cannot pass as green.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret-value"
_LISTEN_RE = re.compile(r"zerobus-emulator listening grpc=(\S+):(\d+) http=(\S+):(\d+) tls=(on|off)")


def build_dir() -> Path:
    return Path(os.environ.get("AZ_BUILD_DIR", REPO / "build")).resolve()


def emulator_binary() -> Path:
    path = build_dir() / "zerobus-emulator"
    if not path.exists():
        pytest.fail(f"{path} not found: build it first (make build, or set AZ_BUILD_DIR)")
    return path


@dataclass
class TlsFiles:
    """A throwaway CA and a server certificate it signed (localhost, 127.0.0.1)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Makes a CA and a leaf certificate with the openssl CLI.

    A leaf signed by a CA, not one self-signed certificate: rustls (the vendor SDK's TLS) refuses
    a CA certificate used as the server's own.
    """
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=arrow-zerobus test CA", "-keyout", ca_key, "-out", ca], **quiet)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", csr], **quiet)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", cert], **quiet)
    return TlsFiles(ca=ca, cert=cert, key=key)


@dataclass
class EmulatorProcess:
    """A running `zerobus-emulator`; stop() ends it with SIGTERM and checks a clean exit."""

    process: subprocess.Popen
    data_dir: Path
    grpc_port: int
    http_port: int
    tls: Optional[TlsFiles]
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    log_path: Optional[Path] = None
    crashed: bool = False

    def log(self) -> str:
        """What the emulator wrote on stderr so far (one line per stream)."""
        return self.log_path.read_text() if self.log_path else ""

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def grpc_url(self) -> str:
        # The certificate names localhost; plaintext works with either name.
        return f"{self.scheme}://localhost:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.scheme}://localhost:{self.http_port}"

    def table_path(self, full_name: str) -> Path:
        catalog, schema, table = full_name.split(".")
        return self.data_dir / catalog / schema / table

    def request(self, method: str, path: str, body=None, headers=None):
        """Calls the HTTP side; returns (status, parsed JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        context = ssl.create_default_context(cafile=str(self.tls.ca)) if self.tls else None
        try:
            with urllib.request.urlopen(req, timeout=10, context=context) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stats(self) -> dict:
        status, body = self.request("GET", "/admin/stats")
        assert status == 200, body
        return body

    def stats_when_idle(self, timeout: float = 5.0) -> dict:
        """Stats once no stream is open (the server ends a stream just after its client sees the
        end, so right after close() it may still count as open)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["open_streams"] == 0 or time.monotonic() > deadline:
                return stats
            time.sleep(0.02)

    def add_fault(self, rule: dict) -> None:
        status, body = self.request("POST", "/admin/faults", rule)
        assert status == 200, body

    def kill9(self) -> None:
        """Crash it (SIGKILL): no shutdown, no final commit."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.crashed = True

    def stop(self) -> int:
        if self.crashed:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail("zerobus-emulator did not stop within 20 s of SIGTERM")
        return self.process.returncode


def start_emulator(tmp_path: Path, *, tls: bool = True, extra_args=(), name: str = "emu") -> EmulatorProcess:
    data_dir = tmp_path / f"{name}-data"
    tls_files = make_tls_files(tmp_path / f"{name}-tls") if tls else None
    args = [str(emulator_binary()), "--data-dir", str(data_dir), "--grpc-port", "0",
            "--http-port", "0", "--client", f"{CLIENT_ID}:{CLIENT_SECRET}",
            "--commit-interval-ms", "20", *map(str, extra_args)]
    if tls_files:
        args += ["--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key)]
    # stderr (one line per stream) goes to a file: a pipe nobody drains would block the server.
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log_file, text=True)
    deadline = time.monotonic() + 20
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            break
        if process.poll() is not None:
            break
    match = _LISTEN_RE.search(line)
    if not match:
        process.kill()
        process.wait(timeout=5)
        pytest.fail(f"zerobus-emulator did not start: stdout={line!r} stderr={log_path.read_text()!r}")
    return EmulatorProcess(process=process, data_dir=data_dir, grpc_port=int(match.group(2)),
                           http_port=int(match.group(4)), tls=tls_files, log_path=log_path)


@pytest.fixture
def emulator_factory(tmp_path):
    """Starts emulators with chosen options; stops them all (and checks a clean exit) afterwards."""
    started = []

    def factory(**kwargs) -> EmulatorProcess:
        emu = start_emulator(tmp_path, name=f"emu{len(started)}", **kwargs)
        started.append(emu)
        return emu

    yield factory
    codes = [emu.stop() for emu in started]
    assert all(code == 0 for code in codes), f"emulator exit codes {codes}"


@pytest.fixture
def emulator(emulator_factory) -> EmulatorProcess:
    """A TLS emulator (CA made for the test) with one service principal."""
    return emulator_factory(tls=True)


# deltalake 1.6.6 with pyarrow 26 can abort during interpreter teardown, after every test has
# run and the summary is printed ("terminate called without an active exception"), which would
# turn a green run into exit code 134. Leave with pytest's own exit status, without teardown.
_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
