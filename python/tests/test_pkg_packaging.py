"""The package as installed: its version, the executables it ships and their console entry points
(`zerobus-arrow`, `zerobus-emulator`), how it finds those executables, and the smaller corners of
its Python layer (errors, logging hand-off, configuration, wrapper and result details) that the
feature suites do not reach."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import arrow_zerobus_sdk_wrapper as pkg
from arrow_zerobus_sdk_wrapper import (
    ConfigurationError,
    ConversionError,
    RetryExhausted,
    TransmissionResult,
    WrapperConfiguration,
    ZerobusError,
    ZerobusWrapper,
    _binaries,
    _core,
    _errors,
    _logging,
    _result,
    _scripts,
)
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

DIST = "arrow-zerobus-sdk-wrapper"
LOGGER = "arrow_zerobus_sdk_wrapper"
PACKAGE_DIR = Path(pkg.__file__).resolve().parent
NAMES = ("zerobus-arrow", "zerobus-emulator")


# ---- __version__ --------------------------------------------------------------------------------


def test_version_is_the_distribution_version():
    assert isinstance(pkg.__version__, str) and pkg.__version__
    assert pkg.__version__ == importlib.metadata.version(DIST)
    # The extension and the Python layer come from one build.
    assert pkg.__version__ == _core.__version__
    assert "__version__" in pkg.__all__


def _load_init_again() -> object:
    """Runs the installed package's __init__.py again as a separate module object (the real
    package stays in sys.modules, so its submodules are reused)."""
    spec = importlib.util.spec_from_file_location(
        pkg.__name__, PACKAGE_DIR / "__init__.py", submodule_search_locations=[str(PACKAGE_DIR)]
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_version_falls_back_to_the_distribution_metadata(monkeypatch):
    # An extension built without a version string: the installed distribution's version.
    monkeypatch.delattr(_core, "__version__")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: f"9.8.7+{name}")
    module = _load_init_again()
    assert module.__version__ == f"9.8.7+{DIST}"
    assert not hasattr(module, "_version")  # the helper does not stay in the namespace


def test_version_without_any_metadata_is_the_project_version(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.delattr(_core, "__version__")
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    module = _load_init_again()
    assert module.__version__ == "0.1.0"
    # The module loaded again exposes the same public names as the real one.
    assert module.ZerobusWrapper is pkg.ZerobusWrapper
    assert module.__all__ == pkg.__all__


# ---- the console entry points, for real ---------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_entry_points_are_installed_on_path(name):
    found = shutil.which(name)
    assert found is not None, f"{name} is not on PATH"
    assert os.access(found, os.X_OK)
    entry_points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")
                    if ep.name in NAMES}
    assert entry_points[name] == f"arrow_zerobus_sdk_wrapper._scripts:{name.replace('-', '_')}"


def test_zerobus_emulator_version():
    done = subprocess.run([shutil.which("zerobus-emulator"), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == pkg.__version__


def test_zerobus_arrow_help_names_the_command_not_a_path():
    done = subprocess.run([shutil.which("zerobus-arrow"), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The CLI prints its argv[0]: the entry point passes the command's name, not the binary's path.
    assert "Usage: zerobus-arrow [OPTIONS] SUBCOMMAND" in done.stdout
    for subcommand in ("send", "serve", "describe", "encode", "show"):
        assert subcommand in done.stdout
    assert str(PACKAGE_DIR) not in done.stdout


def test_zerobus_arrow_without_subcommand_keeps_the_cli_exit_code():
    done = subprocess.run([shutil.which("zerobus-arrow")], capture_output=True, text=True,
                          timeout=60)
    # The executable's own exit code and stderr, not a Python traceback.
    assert done.returncode != 0
    assert "subcommand is required" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_zerobus_emulator_entry_point_replaces_the_python_process():
    """The server started through the entry point is the process that was started (exec): its
    argv is the command's, and SIGTERM reaches the server, which shuts down with exit code 0."""
    process = subprocess.Popen(
        [shutil.which("zerobus-emulator"), "--no-auth", "--sink", "null", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "no listen line within 30 s"
        line = process.stdout.readline()
        assert line.startswith(b"zerobus-emulator listening grpc=127.0.0.1:")
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[:5] == [b"zerobus-emulator", b"--no-auth", b"--sink", b"null", b"--quiet"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert b"shutting down" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


# ---- the console entry points, in process (os.execv captured) ----------------------------------


class _Execed(Exception):
    pass


@pytest.fixture
def captured_exec(monkeypatch):
    calls = []

    def fake_execv(path, argv):
        calls.append((path, list(argv)))
        raise _Execed()  # execv does not return

    monkeypatch.setattr(os, "execv", fake_execv)
    return calls


@pytest.mark.parametrize("function,name", [
    (_scripts.zerobus_arrow, "zerobus-arrow"),
    (_scripts.zerobus_emulator, "zerobus-emulator"),
])
def test_script_execs_the_shipped_binary_with_the_command_name(monkeypatch, captured_exec,
                                                               function, name):
    monkeypatch.setattr(sys, "argv", [f"/some/venv/bin/{name}", "send", "--table", "a.b.c", ""])
    with pytest.raises(_Execed):
        function()
    assert captured_exec == [(_binaries.binary_path(name), [name, "send", "--table", "a.b.c", ""])]
    # The shipped one: inside the installed package.
    assert captured_exec[0][0] == PACKAGE_DIR / "bin" / name


def test_script_without_arguments(monkeypatch, captured_exec):
    monkeypatch.setattr(sys, "argv", ["zerobus-emulator"])
    with pytest.raises(_Execed):
        _scripts.zerobus_emulator()
    assert captured_exec[0][1] == ["zerobus-emulator"]


@pytest.fixture
def empty_install(tmp_path, monkeypatch):
    """The package seen as installed in an empty tree: no bin/, no build directory."""
    package_dir = tmp_path / "site" / "lib" / "arrow_zerobus_sdk_wrapper"
    package_dir.mkdir(parents=True)
    monkeypatch.setattr(_binaries, "_PACKAGE_DIR", package_dir)
    monkeypatch.delenv("AZ_BUILD_DIR", raising=False)
    return package_dir


@pytest.mark.parametrize("function,name", [
    (_scripts.zerobus_arrow, "zerobus-arrow"),
    (_scripts.zerobus_emulator, "zerobus-emulator"),
])
def test_script_without_its_binary_exits_127_with_the_reason(empty_install, captured_exec, capsys,
                                                             function, name):
    with pytest.raises(SystemExit) as exit_info:
        function()
    assert exit_info.value.code == 127
    assert captured_exec == []
    err = capsys.readouterr().err
    assert err.startswith(f"{name}: the {name} executable was not found (looked in: ")
    assert str(empty_install / "bin" / name) in err
    assert "AZ_BUILD_DIR" in err


# ---- binary_path: where the executables are looked for ------------------------------------------


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_binary_path_of_the_installed_package():
    for name in NAMES:
        path = _binaries.binary_path(name)
        assert path == PACKAGE_DIR / "bin" / name
        assert path.is_file() and os.access(path, os.X_OK)


def test_binary_path_lookup_order(tmp_path, monkeypatch):
    # <repo>/python/arrow_zerobus_sdk_wrapper, as in a source checkout.
    repo = tmp_path / "repo"
    package_dir = repo / "python" / "arrow_zerobus_sdk_wrapper"
    package_dir.mkdir(parents=True)
    env_build = tmp_path / "env-build"
    monkeypatch.setattr(_binaries, "_PACKAGE_DIR", package_dir)
    monkeypatch.setenv("AZ_BUILD_DIR", str(env_build))
    name = "zerobus-emulator"

    # Every place, each holding the executable; remove them one by one from the front.
    places = [
        package_dir / "bin" / name,         # an installed wheel
        env_build / name,                   # AZ_BUILD_DIR
        env_build / "cli" / name,
        repo / "build" / name,              # <repo>/build of a source checkout
        repo / "build" / "cli" / name,
    ]
    for place in places:
        _executable(place)
    for place in places:
        assert _binaries.binary_path(name) == place
        place.unlink()
    with pytest.raises(FileNotFoundError):
        _binaries.binary_path(name)


def test_binary_path_in_a_build_tree_mirror(tmp_path, monkeypatch):
    # <build>/python/arrow_zerobus_sdk_wrapper: the package mirrored into a CMake build tree.
    build = tmp_path / "build"
    package_dir = build / "python" / "arrow_zerobus_sdk_wrapper"
    package_dir.mkdir(parents=True)
    monkeypatch.setattr(_binaries, "_PACKAGE_DIR", package_dir)
    monkeypatch.delenv("AZ_BUILD_DIR", raising=False)
    cli = _executable(build / "cli" / "zerobus-arrow")
    emulator = _executable(build / "zerobus-emulator")
    # Without a CMakeCache.txt the directory is not taken for a build tree.
    with pytest.raises(FileNotFoundError):
        _binaries.binary_path("zerobus-arrow")
    (build / "CMakeCache.txt").write_text("# CMake\n")
    assert _binaries.binary_path("zerobus-arrow") == cli
    assert _binaries.binary_path("zerobus-emulator") == emulator


def test_binary_path_skips_what_is_not_an_executable_file(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    package_dir = repo / "python" / "arrow_zerobus_sdk_wrapper"
    (package_dir / "bin" / "zerobus-arrow").mkdir(parents=True)  # a directory of that name
    env_build = tmp_path / "env-build"
    plain = env_build / "zerobus-arrow"
    plain.parent.mkdir(parents=True)
    plain.write_text("not executable\n")  # a file without the x bit
    monkeypatch.setattr(_binaries, "_PACKAGE_DIR", package_dir)
    monkeypatch.setenv("AZ_BUILD_DIR", str(env_build))
    wanted = _executable(repo / "build" / "cli" / "zerobus-arrow")
    assert _binaries.binary_path("zerobus-arrow") == wanted


def test_binary_path_ignores_an_empty_az_build_dir(empty_install, monkeypatch):
    monkeypatch.setenv("AZ_BUILD_DIR", "")
    with pytest.raises(FileNotFoundError) as info:
        _binaries.binary_path("zerobus-emulator")
    # Looked in the package's bin/ and <tree>/build only (not in the working directory).
    looked = str(info.value).split("(looked in: ", 1)[1].split(")", 1)[0].split(", ")
    root = empty_install.parents[1]
    assert looked == [
        str(empty_install / "bin" / "zerobus-emulator"),
        str(root / "build" / "zerobus-emulator"),
        str(root / "build" / "cli" / "zerobus-emulator"),
    ]


def test_binary_path_not_found_message_lists_every_place_in_order(empty_install, monkeypatch,
                                                                   tmp_path):
    env_build = tmp_path / "nowhere"
    monkeypatch.setenv("AZ_BUILD_DIR", str(env_build))
    with pytest.raises(FileNotFoundError) as info:
        _binaries.binary_path("zerobus-arrow")
    message = str(info.value)
    root = empty_install.parents[1]
    expected = [
        empty_install / "bin" / "zerobus-arrow",
        env_build / "zerobus-arrow",
        env_build / "cli" / "zerobus-arrow",
        root / "build" / "zerobus-arrow",
        root / "build" / "cli" / "zerobus-arrow",
    ]
    assert message == (
        f"the zerobus-arrow executable was not found (looked in: "
        f"{', '.join(map(str, expected))}); install the arrow-zerobus-sdk-wrapper wheel, or build "
        "the C++ project and set AZ_BUILD_DIR to its build directory"
    )


# ---- _errors helpers ----------------------------------------------------------------------------


def test_error_message_property():
    error = ConversionError("Conversion error: column 'x'")
    assert error.message == str(error) == "Conversion error: column 'x'"
    assert ZerobusError().message == ""
    error.args = ()  # an exception whose args were cleared still has a (empty) message
    assert error.message == ""


@pytest.mark.parametrize("name", sorted(_errors.ERROR_CLASSES))
def test_with_prefix_and_error_class(name):
    cls = _errors.error_class(name)
    assert cls.__name__ == name and issubclass(cls, ZerobusError)
    error = cls._with_prefix("detail here")
    assert type(error) is cls
    assert str(error) == cls.prefix + "detail here"
    # The message it makes is classified back as its own kind.
    assert _errors.error_type_of_message(str(error)) == name


@pytest.mark.parametrize("name", ["ZerobusError", "conversionerror", "ValueError", ""])
def test_error_class_unknown_name(name):
    with pytest.raises(KeyError) as info:
        _errors.error_class(name)
    text = info.value.args[0]
    assert text.startswith(f"unknown error type {name!r} (known: ")
    for known in _errors.ERROR_CLASSES:
        assert known in text


@pytest.mark.parametrize("message", [None, 42, b"RetryExhausted: bytes", ("x",)])
def test_error_type_of_a_message_that_is_not_a_str(message):
    assert _errors.error_type_of_message(message) == "ConversionError"


def test_hand_built_result_with_odd_messages_counts_them_as_conversion_errors():
    result = TransmissionResult(False, failed_rows=[(1, None), (0, "RetryExhausted: gave up")],
                                total_rows=2, failed_count=2)
    assert result.group_errors_by_type() == {"ConversionError": [1], "RetryExhausted": [0]}
    assert RetryExhausted.__name__ in result.get_error_statistics()["error_type_counts"]


# ---- _logging -----------------------------------------------------------------------------------


def _package_records(caplog):
    return [r for r in caplog.records if r.name == LOGGER]


@pytest.fixture
def logger_at_info():
    """The package logger at INFO (pushed to C++); its level is restored and pushed afterwards."""
    logger = logging.getLogger(LOGGER)
    before = logger.level
    logger.setLevel(logging.INFO)
    _logging.sync_level()
    yield logger
    logger.setLevel(before)
    _logging.sync_level()


def test_uninstall_detaches_the_cpp_log_handler(caplog, logger_at_info):
    try:
        _core.log(logging.ERROR, "before uninstall 7f3a")
        assert [r.getMessage() for r in _package_records(caplog)] == ["before uninstall 7f3a"]
        caplog.clear()
        _logging._uninstall()
        _core.log(logging.ERROR, "after uninstall 7f3a")
        assert _package_records(caplog) == []
        _logging._uninstall()  # at exit it may run with no handler set: harmless
    finally:
        _core.set_log_handler(_logging._handle)
    _core.log(logging.ERROR, "reinstalled 7f3a")
    assert [r.getMessage() for r in _package_records(caplog)] == ["reinstalled 7f3a"]


def test_install_is_done_once(monkeypatch, caplog, logger_at_info):
    import atexit

    calls = []
    monkeypatch.setattr(atexit, "register", lambda *a: calls.append(("atexit", a)))
    monkeypatch.setattr(_core, "set_log_handler", lambda h: calls.append(("handler", h)))
    assert _logging._installed
    _logging._install()
    _logging._install()
    assert calls == []  # no second handler, no second exit hook
    monkeypatch.undo()
    _core.log(logging.ERROR, "once 81c2")
    assert [r.getMessage() for r in _package_records(caplog)] == ["once 81c2"]


# ---- _config corners ----------------------------------------------------------------------------

SECRET = "cfg-Secret-9d41"


def _config(**options) -> WrapperConfiguration:
    return WrapperConfiguration("https://h.example", "c.s.t", **options)


def test_secret_holder_never_shows_or_pickles_the_secret():
    config = _config(client_id="id", client_secret=SECRET)
    holder = config._options["client_secret"]  # what a debugger or traceback would show
    assert str(holder) == "***" and repr(holder) == "'***'" and f"{holder}" == "***"
    assert SECRET not in repr(config._options) and SECRET not in str(config)
    with pytest.raises(TypeError, match="cannot be pickled on its own") as info:
        pickle.dumps(holder)
    assert SECRET not in str(info.value)
    # Equal only to a holder of the same secret; never to the plain string.
    assert (holder == SECRET) is False
    assert holder != SECRET
    assert holder == _config(client_id="id", client_secret=SECRET)._options["client_secret"]
    assert holder != _config(client_id="id", client_secret=SECRET + "x")._options["client_secret"]
    # A holder given back as the secret is taken by value.
    again = _config(client_id="id", client_secret=holder)
    assert again.client_secret == SECRET and again == config


class _SecretStr:
    """pydantic's SecretStr look-alike."""

    def __init__(self, value):
        self._value = value

    def get_secret_value(self):
        return self._value

    def __repr__(self):
        return "SecretStr('**********')"


def test_secret_str_like_values_are_accepted():
    config = _config(client_id="id", client_secret=_SecretStr(SECRET))
    assert config.client_secret == SECRET
    assert config == _config(client_id="id", client_secret=SECRET)
    assert SECRET not in repr(config)


def test_secret_str_like_value_that_is_not_a_str_is_refused_without_showing_it():
    with pytest.raises(TypeError) as info:
        _config(client_id="id", client_secret=_SecretStr(b"cfg-bytes-secret"))
    assert str(info.value) == "client_secret must be a str or None, got _SecretStr"
    with pytest.raises(TypeError) as info:
        _config(client_id="id", client_secret=12345)
    assert "12345" not in str(info.value) and "got int" in str(info.value)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_descriptor_bytes_like_are_kept_as_bytes(kind):
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.DescriptorProto(name="Row")
    proto.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    raw = proto.SerializeToString()
    config = _config(descriptor=kind(raw))
    assert type(config.descriptor) is bytes and config.descriptor == raw
    # The message itself gives the same configuration as its bytes.
    assert _config(descriptor=proto) == config
    assert f"descriptor=<google.protobuf.DescriptorProto, {len(raw)} bytes>" in repr(config)


def test_descriptor_of_another_message_type_is_refused():
    from google.protobuf import descriptor_pb2

    with pytest.raises(TypeError) as info:
        _config(descriptor=descriptor_pb2.FileDescriptorProto(name="rows.proto"))
    assert str(info.value) == (
        "descriptor must be a google.protobuf.DescriptorProto (the row message's descriptor), "
        "got a google.protobuf.FileDescriptorProto message"
    )
    with pytest.raises(TypeError, match="descriptor must be bytes"):
        _config(descriptor="not bytes")


def test_replace_makes_a_changed_copy():
    config = _config(client_id="id", client_secret=SECRET, retry_max_attempts=3)
    changed = config.replace(retry_max_attempts=7, table_name="c.s.u", when_inflight_full="REJECT")
    assert type(changed) is WrapperConfiguration
    assert changed.retry_max_attempts == 7 and changed.table_name == "c.s.u"
    assert changed.when_inflight_full == "reject"  # canonical form, as the constructor makes it
    assert changed.client_secret == SECRET and changed.endpoint == config.endpoint
    assert config.retry_max_attempts == 3 and config.table_name == "c.s.t"  # unchanged
    assert changed != config
    assert config.replace() == config and config.replace() is not config


def test_replace_checks_names_and_values():
    config = _config()
    with pytest.raises(TypeError, match="replace\\(\\) got an unexpected keyword argument 'retries'"):
        config.replace(retries=3)
    with pytest.raises(ConfigurationError, match="debug_output_dir"):
        config.replace(debug_enabled=True)


def test_configuration_compared_with_other_types():
    config = _config()
    assert config.__eq__(config.to_dict()) is NotImplemented
    assert (config == config.to_dict()) is False
    assert config != "https://h.example"
    assert config != None  # noqa: E711


# ---- _wrapper corners ---------------------------------------------------------------------------


def _offline_options(tmp_path) -> dict:
    return dict(zerobus_writer_disabled=True, debug_arrow_enabled=True,
                debug_output_dir=str(tmp_path))


def test_wrapper_keyword_forms(tmp_path):
    config = WrapperConfiguration("", "main.default.t", **_offline_options(tmp_path))
    with ZerobusWrapper(config=config) as wrapper:
        assert wrapper.config is config
    with ZerobusWrapper(endpoint="", table_name="main.default.k",
                        **_offline_options(tmp_path)) as wrapper:
        assert wrapper.config.table_name == "main.default.k"
        assert wrapper.config == config.replace(table_name="main.default.k")
        result = wrapper.send_batch(pa.record_batch({"id": pa.array([1, 2], pa.int64())}))
        assert result.successful_count == 2
    assert wrapper.is_shutdown


def test_wrapper_argument_errors(tmp_path):
    config = WrapperConfiguration("", "main.default.t", **_offline_options(tmp_path))
    with pytest.raises(TypeError, match="needs a WrapperConfiguration \\(config=...\\) or an endpoint"):
        ZerobusWrapper()
    with pytest.raises(TypeError, match="needs a WrapperConfiguration"):
        ZerobusWrapper(table_name="main.default.t")
    with pytest.raises(TypeError, match="expects a WrapperConfiguration or an endpoint string, got int"):
        ZerobusWrapper(42)
    with pytest.raises(TypeError, match="got dict"):
        ZerobusWrapper(config=config.to_dict())
    with pytest.raises(TypeError, match="takes no other arguments"):
        ZerobusWrapper(config=config, retry_max_attempts=2)
    with pytest.raises(TypeError, match="needs table_name"):
        ZerobusWrapper(endpoint="")


def test_wrapper_cannot_be_pickled_but_its_configuration_can(tmp_path):
    with ZerobusWrapper("", "main.default.t", **_offline_options(tmp_path)) as wrapper:
        with pytest.raises(TypeError, match="cannot be pickled: send its configuration"):
            pickle.dumps(wrapper)
        assert pickle.loads(pickle.dumps(wrapper.config)) == wrapper.config


class _ArrayOnly:
    """An Arrow producer with only the array interface."""

    def __init__(self, batch=None, error=None):
        self._batch = batch
        self._error = error

    def __arrow_c_array__(self, requested_schema=None):
        if self._error is not None:
            raise self._error
        return self._batch.__arrow_c_array__(requested_schema)


def test_send_of_an_array_producer_whose_export_fails_raises_its_error(tmp_path):
    with ZerobusWrapper("", "main.default.t", **_offline_options(tmp_path)) as wrapper:
        with pytest.raises(ValueError, match="export refused 51b0"):
            wrapper.send_batch(_ArrayOnly(error=ValueError("export refused 51b0")))
        # The wrapper is still usable.
        batch = pa.record_batch({"id": pa.array([1, 2, 3], pa.int64())})
        assert wrapper.send_batch(_ArrayOnly(batch)).successful_rows == [0, 1, 2]


# ---- _result corners ----------------------------------------------------------------------------


def test_extract_from_an_array_only_producer():
    batch = pa.record_batch({"id": pa.array([10, 11, 12, 13], pa.int64()),
                             "v": ["a", "b", "c", "d"]})
    result = TransmissionResult(True, failed_rows=[(3, "x"), (1, "y")], successful_rows=[0, 2],
                                total_rows=4, successful_count=2, failed_count=2)
    failed = result.extract_failed_batch(_ArrayOnly(batch))
    assert isinstance(failed, pa.RecordBatch)
    assert failed.to_pydict() == {"id": [11, 13], "v": ["b", "d"]}
    assert result.extract_successful_batch(_ArrayOnly(batch)).to_pydict() == {
        "id": [10, 12], "v": ["a", "c"]}


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """An event loop that cannot watch file descriptors (as Windows' proactor loop)."""

    def add_reader(self, fd, callback, *args):
        raise NotImplementedError("no fd watching on this loop")


def test_await_on_a_loop_without_add_reader_waits_in_the_executor():
    loop = _NoReaderLoop()
    batch = pa.record_batch({"id": pa.array(range(5), pa.int64())})
    try:
        with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as server:
            with ZerobusWrapper(server.config("main.default.noreader")) as wrapper:
                async def main():
                    ticks = 0
                    stop = asyncio.Event()

                    async def ticker():
                        nonlocal ticks
                        while not stop.is_set():
                            ticks += 1
                            await asyncio.sleep(0.01)

                    task = asyncio.ensure_future(ticker())
                    first = await wrapper.send_batch(batch)
                    second = await wrapper.send_batch(batch)  # the loop's (absent) bridge is kept
                    stop.set()
                    await task
                    return first, second, ticks

                first, second, ticks = loop.run_until_complete(main())
        assert first.successful_count == second.successful_count == 5
        assert first.done() and second.done()
        # The loop kept running while the sends waited (about 2 x 300 ms of acks).
        assert ticks >= 10
        assert loop in _result._bridges and _result._bridges[loop] is None
    finally:
        loop.close()
