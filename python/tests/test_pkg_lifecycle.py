"""End-to-end: a ZerobusWrapper's life: construction forms, context managers, flush, shutdown
(plain, awaited, twice, inside a running loop), use after shutdown, and Ctrl-C while waiting."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pytest

from arrow_zerobus_sdk_wrapper import (
    ConfigurationError,
    TransmissionError,
    WrapperConfiguration,
    ZerobusError,
    ZerobusWrapper,
)
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

FAST = dict(
    retry_max_attempts=2,
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


def settled_table(emu: LocalZerobus, name: str, timeout: float = 10.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def id_batch(start: int, count: int) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(range(start, start + count), pa.int64())})


def table_ids(emu: LocalZerobus, name: str) -> list:
    return sorted(settled_table(emu, name).column("id").to_pylist())


def stream_statuses(emu: LocalZerobus, name: str) -> list:
    """(open, status_code) of every stream the server saw for the table."""
    return [(s["open"], s.get("status_code")) for s in emu.stats()["streams"] if s["table"] == name]


def assert_refuses_sends(wrapper: ZerobusWrapper) -> None:
    with pytest.raises(TransmissionError) as info:
        wrapper.send_batch(id_batch(0, 1))
    assert isinstance(info.value, ZerobusError)
    assert str(info.value).startswith("Transmission error: ")


# ---- construction -------------------------------------------------------------------------------


def test_endpoint_and_table_name_form():
    name = "main.default.kwargs_form"
    with LocalZerobus() as emu:
        wrapper = ZerobusWrapper(
            emu.endpoint,
            name,
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            unity_catalog_url=emu.unity_catalog_url,
            **FAST,
        )
        try:
            assert isinstance(wrapper.config, WrapperConfiguration)
            assert wrapper.config.endpoint == emu.endpoint
            assert wrapper.config.table_name == name
            assert wrapper.config.retry_max_attempts == FAST["retry_max_attempts"]
            assert emu.client_secret not in repr(wrapper) and emu.client_secret not in repr(wrapper.config)
            assert wrapper.send_batch(id_batch(0, 5)).successful_count == 5
        finally:
            wrapper.shutdown()
        assert table_ids(emu, name) == [0, 1, 2, 3, 4]


def test_config_form_takes_no_other_arguments():
    config = WrapperConfiguration("http://127.0.0.1:1", "main.default.t", client_id="c",
                                  client_secret="s")
    with pytest.raises(TypeError):
        ZerobusWrapper(config, "main.default.other")
    with pytest.raises(TypeError):
        ZerobusWrapper(config, retry_max_attempts=3)
    with pytest.raises(TypeError):
        ZerobusWrapper("http://127.0.0.1:1")  # no table name


@pytest.mark.parametrize(
    "credentials, named",
    [({}, "client_id"), ({"client_id": "someone"}, "client_secret"),
     ({"client_secret": "s3cr3t-value"}, "client_id")],
    ids=["none", "id only", "secret only"],
)
def test_construction_without_credentials_is_a_configuration_error(credentials, named):
    with pytest.raises(ConfigurationError) as info:
        ZerobusWrapper("http://127.0.0.1:1", "main.default.t", **credentials)
    message = str(info.value)
    assert message.startswith("Configuration error: ")
    assert named in message
    assert "s3cr3t-value" not in message
    config = WrapperConfiguration("http://127.0.0.1:1", "main.default.t", **credentials)
    if credentials:
        # Both or neither: half a service principal is wrong already in validate().
        with pytest.raises(ConfigurationError, match=named):
            config.validate()
    else:
        # validate() does not need credentials; the wrapper does.
        config.validate()
    with pytest.raises(ConfigurationError, match=named):
        ZerobusWrapper(config)


def test_invalid_configuration_is_refused_by_the_constructor():
    with pytest.raises(ConfigurationError, match="endpoint"):
        ZerobusWrapper("ftp://127.0.0.1:1", "main.default.t", client_id="c", client_secret="s")
    with pytest.raises(ConfigurationError, match="table"):
        ZerobusWrapper("http://127.0.0.1:1", "a.b.c.d", client_id="c", client_secret="s")


# ---- context managers and shutdown --------------------------------------------------------------


def test_with_block_shuts_down_and_delivers_pending_rows():
    name = "main.default.with_block"
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            assert wrapper.is_shutdown is False
            results = [wrapper.send_batch(id_batch(i * 10, 10)) for i in range(3)]
            assert not any(r.done() for r in results)
        # Leaving the block shut the wrapper down, after every pending send finished.
        assert wrapper.is_shutdown is True
        assert "shut down" in repr(wrapper)
        assert all(r.done() for r in results)
        assert [r.successful_count for r in results] == [10, 10, 10]
        assert_refuses_sends(wrapper)
        assert table_ids(emu, name) == list(range(30))
        # The stream was closed cleanly (OK), not abandoned.
        assert stream_statuses(emu, name) == [(False, 0)]


def test_with_block_shuts_down_when_the_body_raises():
    name = "main.default.with_error"
    with LocalZerobus() as emu:
        with pytest.raises(RuntimeError, match="boom"):
            with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
                result = wrapper.send_batch(id_batch(0, 4))
                raise RuntimeError("boom")
        assert wrapper.is_shutdown
        assert result.successful_count == 4
        assert table_ids(emu, name) == [0, 1, 2, 3]


@pytest.mark.asyncio
async def test_async_with_shuts_down():
    name = "main.default.async_with"
    with LocalZerobus(faults=[{"ack_delay_ms": 200}]) as emu:
        async with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            first = await wrapper.send_batch(id_batch(0, 10))
            assert first.successful_count == 10
            pending = wrapper.send_batch(id_batch(10, 10))
        assert wrapper.is_shutdown
        assert pending.done() and pending.successful_count == 10
        assert_refuses_sends(wrapper)
        assert table_ids(emu, name) == list(range(20))
        assert stream_statuses(emu, name) == [(False, 0)]


def test_shutdown_twice_is_fine():
    name = "main.default.twice"
    with LocalZerobus() as emu:
        wrapper = ZerobusWrapper(emu.config(name, **FAST))
        assert wrapper.send_batch(id_batch(0, 3)).successful_count == 3
        assert wrapper.shutdown() is None
        assert wrapper.shutdown() is None
        assert wrapper.is_shutdown
        with wrapper:  # a context manager exit after shutdown is fine too
            pass
        assert_refuses_sends(wrapper)
        # Flush after shutdown has nothing to wait for: no error, or a TransmissionError.
        try:
            wrapper.flush()
        except TransmissionError:
            pass
        assert table_ids(emu, name) == [0, 1, 2]


@pytest.mark.asyncio
async def test_awaited_shutdown_twice_and_send_after_it():
    name = "main.default.await_twice"
    with LocalZerobus() as emu:
        wrapper = ZerobusWrapper(emu.config(name, **FAST))
        result = await wrapper.send_batch(id_batch(0, 3))
        assert result.successful_count == 3
        await wrapper.shutdown()
        await wrapper.shutdown()
        assert wrapper.is_shutdown
        assert_refuses_sends(wrapper)
        assert table_ids(emu, name) == [0, 1, 2]


def test_shutdown_waits_for_pending_sends():
    name = "main.default.shutdown_waits"
    with LocalZerobus(faults=[{"ack_delay_ms": 400}]) as emu:
        wrapper = ZerobusWrapper(emu.config(name, **FAST))
        results = [wrapper.send_batch(id_batch(i * 5, 5)) for i in range(4)]
        started = time.monotonic()
        wrapper.shutdown()
        assert time.monotonic() - started >= 0.3
        assert all(r.done() for r in results)
        assert sum(r.successful_count for r in results) == 20
        assert table_ids(emu, name) == list(range(20))


# ---- flush --------------------------------------------------------------------------------------


def test_plain_flush_waits_for_every_ack():
    name = "main.default.flush_plain"
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            results = [wrapper.send_batch(id_batch(i * 10, 10)) for i in range(3)]
            assert not any(r.done() for r in results)
            assert wrapper.flush() is None
            assert all(r.done() for r in results)
            assert [r.successful_count for r in results] == [10, 10, 10]
            # The wrapper is still open after a flush.
            assert wrapper.is_shutdown is False
            assert wrapper.send_batch(id_batch(30, 5)).successful_count == 5
            wrapper.flush()  # nothing pending: returns at once
        assert table_ids(emu, name) == list(range(35))


@pytest.mark.asyncio
async def test_awaited_flush_waits_for_every_ack():
    name = "main.default.flush_awaited"
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        async with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
            results = [wrapper.send_batch(id_batch(i * 10, 10)) for i in range(3)]
            assert not any(r.done() for r in results)
            await wrapper.flush()
            assert all(r.done() for r in results)
            assert [r.successful_count for r in results] == [10, 10, 10]
        assert table_ids(emu, name) == list(range(30))


def test_flush_timeout_is_reported():
    name = "main.default.flush_timeout"
    options = dict(FAST, flush_timeout_ms=300, ack_timeout_ms=5000)
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        wrapper = ZerobusWrapper(emu.config(name, **options))
        result = wrapper.send_batch(id_batch(0, 5))
        started = time.monotonic()
        with pytest.raises(ZerobusError):
            wrapper.flush()
        assert time.monotonic() - started < 3
        emu.clear_faults()
        assert result.wait(10) and result.successful_count == 5
        wrapper.shutdown()


def test_plain_flush_and_shutdown_inside_a_running_loop_still_complete():
    name = "main.default.in_loop"
    outcome = {}
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        wrapper = ZerobusWrapper(emu.config(name, **FAST))

        async def main() -> None:
            results = [wrapper.send_batch(id_batch(i * 10, 10)) for i in range(3)]
            # Called plainly (not awaited) from a coroutine, as code written for plain callers does.
            flushing = wrapper.flush()
            shutting = wrapper.shutdown()
            outcome["results"] = results
            outcome["returned"] = (flushing, shutting)
            # The loop is not blocked by them.
            ticks = 0
            while ticks < 5:
                await asyncio.sleep(0.01)
                ticks += 1
            outcome["ticks"] = ticks

        asyncio.run(main())
        # Both ran to completion although nobody awaited them.
        assert outcome["ticks"] == 5
        assert wrapper.is_shutdown
        results = outcome["results"]
        assert all(r.done() for r in results)
        assert [r.successful_count for r in results] == [10, 10, 10]
        for returned in outcome["returned"]:
            if returned is not None:
                assert returned.done() and returned.exception() is None
        assert_refuses_sends(wrapper)
        assert table_ids(emu, name) == list(range(30))
        assert stream_statuses(emu, name) == [(False, 0)]


def test_with_block_inside_a_running_loop_shuts_down_on_exit():
    name = "main.default.with_in_loop"
    with LocalZerobus() as emu:

        async def main():
            with ZerobusWrapper(emu.config(name, **FAST)) as wrapper:
                result = await wrapper.send_batch(id_batch(0, 7))
            return wrapper, result

        wrapper, result = asyncio.run(main())
        assert wrapper.is_shutdown and result.successful_count == 7
        assert table_ids(emu, name) == list(range(7))


# ---- Ctrl-C -------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pyarrow as pa
    from arrow_zerobus_sdk_wrapper import ZerobusWrapper

    args = json.loads(sys.argv[1])
    wrapper = ZerobusWrapper(args["endpoint"], args["table"], client_id=args["client_id"],
                             client_secret=args["client_secret"],
                             unity_catalog_url=args["unity_catalog_url"], ack_timeout_ms=60000)
    batch = pa.record_batch({"id": pa.array(range(100), pa.int64())})
    result = wrapper.send_batch(batch)
    print("waiting", flush=True)
    started = time.monotonic()
    try:
        result.wait()
        print("not-interrupted", flush=True)
        sys.exit(3)
    except KeyboardInterrupt:
        print(json.dumps({"interrupted_after": time.monotonic() - started,
                          "done": result.done()}), flush=True)
    sys.stdin.readline()  # the parent releases the acks, then says go
    counts = [result.total_rows, result.successful_count, result.failed_count]
    wrapper.shutdown()
    print(json.dumps({"counts": counts, "done": result.done(),
                      "shut_down": wrapper.is_shutdown}), flush=True)
    """
)


def read_line(process: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output from the child within {timeout} s"
    return process.stdout.readline()


def test_ctrl_c_interrupts_wait_and_the_result_stays_readable():
    name = "main.default.ctrl_c"
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        args = {"endpoint": emu.endpoint, "table": name, "client_id": emu.client_id,
                "client_secret": emu.client_secret, "unity_catalog_url": emu.unity_catalog_url}
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        try:
            assert read_line(process, 30).strip() == "waiting"
            time.sleep(0.3)  # in result.wait() by now
            signalled = time.monotonic()
            process.send_signal(signal.SIGINT)
            line = read_line(process, 5)
            reaction = time.monotonic() - signalled
            interrupted = json.loads(line)
            assert reaction < 2.0
            assert interrupted["done"] is False  # the send goes on after the interrupt
            emu.clear_faults()  # the acks go out now
            process.stdin.write("go\n")
            process.stdin.flush()
            final = json.loads(read_line(process, 30))
            assert final["counts"] == [100, 100, 0]
            assert final["done"] is True and final["shut_down"] is True
            assert process.wait(30) == 0, process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert table_ids(emu, name) == list(range(100))


def test_ctrl_c_not_caught_ends_the_process_promptly():
    name = "main.default.ctrl_c_uncaught"
    child = textwrap.dedent(
        """
        import json, sys
        import pyarrow as pa
        from arrow_zerobus_sdk_wrapper import ZerobusWrapper
        args = json.loads(sys.argv[1])
        wrapper = ZerobusWrapper(args["endpoint"], args["table"], client_id=args["client_id"],
                                 client_secret=args["client_secret"],
                                 unity_catalog_url=args["unity_catalog_url"],
                                 ack_timeout_ms=2000, recovery_retries=0, retry_max_attempts=1,
                                 flush_timeout_ms=2000)
        result = wrapper.send_batch(pa.record_batch({"id": pa.array(range(10), pa.int64())}))
        print("waiting", flush=True)
        result.successful_count  # plain reading waits
        """
    )
    with LocalZerobus(faults=[{"withhold_acks": True}]) as emu:
        args = {"endpoint": emu.endpoint, "table": name, "client_id": emu.client_id,
                "client_secret": emu.client_secret, "unity_catalog_url": emu.unity_catalog_url}
        process = subprocess.Popen(
            [sys.executable, "-c", child, json.dumps(args)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert read_line(process, 30).strip() == "waiting"
            time.sleep(0.3)
            signalled = time.monotonic()
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
            # It ends (with the interpreter's KeyboardInterrupt exit) well before the ack timeout
            # could have completed the send.
            assert time.monotonic() - signalled < 2.0
            assert "KeyboardInterrupt" in stderr
            assert process.returncode in (-signal.SIGINT, 1, 130)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_dropped_wrapper_still_completes_pending_sends():
    import gc

    name = "main.default.dropped"
    with LocalZerobus(faults=[{"ack_delay_ms": 300}]) as emu:
        wrapper = ZerobusWrapper(emu.config(name, **FAST))
        results = [wrapper.send_batch(id_batch(i * 10, 10)) for i in range(3)]
        del wrapper
        gc.collect()
        for r in results:
            assert r.wait(10)
            assert r.successful_count + r.failed_count == r.total_rows == 10
            assert r.successful_count == 10
        assert table_ids(emu, name) == list(range(30))
        assert stream_statuses(emu, name) == [(False, 0)]
