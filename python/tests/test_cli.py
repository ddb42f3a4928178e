"""End-to-end tests of the `zerobus-arrow` command-line tool (docs/cli.md).

Every test drives the built binary (`<build>/cli/zerobus-arrow`) with subprocess, against the
built emulator started by the conftest fixtures or against the CLI's own in-process emulator
(local mode, no endpoint), and reads the tables back with deltalake or `zerobus-arrow show`.
Rows carry an `id` column numbered from 0 in file order, so "every id exactly once" and "no id
before the checkpoint twice" are checked on the ids themselves.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from conftest import build_dir

TABLE = "main.default.cli_rows"
QUARANTINE_COLUMNS = ["_source_file", "_source_row", "_error", "_in_doubt"]


# ---- helpers ----------------------------------------------------------------------------------


def cli_binary() -> Path:
    path = build_dir() / "cli" / "zerobus-arrow"
    if not path.exists():
        pytest.fail(f"{path} not found: build it first (make build, or set AZ_BUILD_DIR)")
    return path


def clean_env(**extra) -> dict:
    """The environment without any setting the CLI would pick up, plus `extra`."""
    prefixes = ("ZEROBUS_", "UNITY_CATALOG_URL", "RETRY_", "OTLP_", "DEBUG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args, env=None, cwd=None, timeout=60, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(cli_binary()), *map(str, args)], env=env or clean_env(), cwd=cwd,
                          input=stdin, capture_output=True, timeout=timeout)


def text(proc) -> str:
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


def emulator_args(emu, table=TABLE):
    return ["--endpoint", emu.grpc_url, "--unity-catalog-url", emu.http_url,
            "--client-id", emu.client_id, "--table", table]


def emulator_env(emu, **extra) -> dict:
    env = clean_env(**{"ZEROBUS_CLIENT_SECRET": emu.client_secret, **extra})
    if emu.tls:
        env["ZEROBUS_CA_FILE"] = str(emu.tls.ca)
    return env


def send(emu, *args, table=TABLE, env=None, timeout=60):
    return run_cli("send", *args, *emulator_args(emu, table), env=env or emulator_env(emu),
                   timeout=timeout)


def table_ids(table_dir: Path) -> list:
    return deltalake.DeltaTable(str(table_dir)).to_pyarrow_table()["id"].to_pylist()


def assert_exactly(ids, expected) -> None:
    counts = Counter(ids)
    twice = sorted(i for i, c in counts.items() if c > 1)
    missing = sorted(set(expected) - set(counts))
    extra = sorted(set(counts) - set(expected))
    assert not twice and not missing and not extra, (
        f"duplicated {twice[:10]}, missing {missing[:10]}, unexpected {extra[:10]}")


def rows_table(lo: int, hi: int, v_type=pa.float64()) -> pa.Table:
    return pa.table({
        "id": pa.array(range(lo, hi), pa.int64()),
        "name": pa.array([f"row-{i}" for i in range(lo, hi)]),
        "v": pa.array([i * 0.5 for i in range(lo, hi)], v_type),
    })


def write_input(path: Path, table: pa.Table) -> Path:
    """Writes `table` in the format the extension names (several batches / row groups)."""
    kind = path.suffix
    if kind == ".parquet":
        pq.write_table(table, path, row_group_size=max(1, table.num_rows // 3))
    elif kind == ".arrow":
        with ipc.new_file(path, table.schema) as w:
            w.write_table(table, max_chunksize=max(1, table.num_rows // 4))
    elif kind == ".arrows":
        with ipc.new_stream(path, table.schema) as w:
            w.write_table(table, max_chunksize=max(1, table.num_rows // 4))
    elif kind == ".csv":
        pacsv.write_csv(table, path)
    elif kind == ".jsonl":
        with open(path, "w") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row) + "\n")
    else:
        raise ValueError(kind)
    return path


def stream_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=100)
    return sink.getvalue().to_pybytes()


def failing_table(n: int, every: int = 100, offset: int = 7) -> pa.Table:
    """`u` is uint64; rows with id % every == offset hold values above the BIGINT range, so
    exactly those rows fail with a conversion error."""
    u = [(2**63 + i) if i % every == offset else i for i in range(n)]
    return pa.table({"id": pa.array(range(n), pa.int64()), "u": pa.array(u, pa.uint64())})


def read_quarantine(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".arrow":
        return ipc.open_file(path).read_all()
    return ipc.open_stream(path).read_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_checkpoint(path: Path, min_rows: int, proc: subprocess.Popen, timeout=60) -> int:
    """Waits until the checkpoint file says at least min_rows rows are done; returns them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the send ended before it could be interrupted"
        if path.exists():
            files = json.loads(path.read_text())["files"]
            done = sum(f["rows_done"] for f in files.values())
            if done >= min_rows:
                return done
        time.sleep(0.05)
    pytest.fail(f"the checkpoint did not reach {min_rows} rows in {timeout} s")


def checkpoint_entry(path: Path) -> dict:
    files = json.loads(path.read_text())["files"]
    assert len(files) == 1, files
    return next(iter(files.values()))


@pytest.fixture
def slow_emulator(emulator_factory):
    """Acks go out 200 ms after durability: with 1000-row batches and 2 in flight a send runs at
    about 10k rows/s, slow enough to be interrupted in the middle."""
    emu = emulator_factory(tls=False)
    emu.add_fault({"ack_delay_ms": 200})
    return emu


SLOW_SEND = ["--batch-rows", "1000", "--max-pending-batches", "2", "--progress", "lines"]


# ---- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".arrows", ".csv", ".jsonl"])
def test_send_each_input_kind(emulator_factory, tmp_path, suffix):
    emu = emulator_factory(tls=False)
    path = write_input(tmp_path / f"rows{suffix}", rows_table(0, 1000))
    report = tmp_path / "report.json"
    proc = send(emu, path, "--batch-rows", "128", "--report-json", report)
    assert proc.returncode == 0, text(proc)
    assert f"sent 1000 rows to {TABLE}: 1000 landed" in proc.stdout.decode()
    assert_exactly(table_ids(emu.table_path(TABLE)), range(1000))
    got = json.loads(report.read_text())
    formats = {".parquet": "parquet", ".arrow": "arrow-ipc-file", ".arrows": "arrow-ipc-stream",
               ".csv": "csv", ".jsonl": "jsonl"}
    assert got["files"][0]["format"] == formats[suffix]
    assert got["exit_code"] == 0 and got["local"] is False


def test_send_ipc_stream_on_stdin_in_local_mode(tmp_path):
    proc = run_cli("send", "-", "--local-dir", tmp_path / "local", stdin=stream_bytes(rows_table(0, 700)))
    assert proc.returncode == 0, text(proc)
    assert "local emulator" in proc.stderr.decode()
    assert_exactly(table_ids(tmp_path / "local" / "main" / "default" / "stdin"), range(700))


def test_send_directory_glob_and_several_files(emulator_factory, tmp_path):
    emu = emulator_factory(tls=False)
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    write_input(data / "part-0.parquet", rows_table(0, 300))
    write_input(data / "part-1.arrow", rows_table(300, 600))
    write_input(data / "nested" / "part-2.arrows", rows_table(600, 900))
    # Hidden and _-prefixed files and files of unknown kinds are not inputs.
    write_input(data / ".hidden.parquet", rows_table(5000, 5010))
    write_input(data / "_tmp.parquet", rows_table(6000, 6010))
    (data / "_SUCCESS").write_text("")
    (data / "README.txt").write_text("not data")
    report = tmp_path / "report.json"
    proc = send(emu, data, "--report-json", report, table="main.default.from_dir")
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path("main.default.from_dir")), range(900))
    files = json.loads(report.read_text())["files"]
    # A directory's files in the order of their sorted paths ("nested/..." before "part-0...").
    assert [Path(f["path"]).name for f in files] == ["part-2.arrows", "part-0.parquet", "part-1.arrow"]
    assert all(f["rows"] == f["landed"] == 300 for f in files)

    # A glob, and several files named one by one (a file named twice is sent once).
    proc = send(emu, str(data / "part-*"), table="main.default.from_glob")
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path("main.default.from_glob")), range(600))
    proc = send(emu, data / "part-1.arrow", data / "nested" / "part-2.arrows", data / "part-1.arrow",
                table="main.default.from_list")
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path("main.default.from_list")), range(300, 900))


def test_directory_with_a_mismatched_file_is_refused_before_sending(emulator_factory, tmp_path):
    emu = emulator_factory(tls=False)
    data = tmp_path / "data"
    data.mkdir()
    write_input(data / "a.parquet", rows_table(0, 100))
    write_input(data / "b.parquet", rows_table(100, 200, v_type=pa.float32()))
    write_input(data / "c.parquet", rows_table(200, 300))
    proc = send(emu, data)
    assert proc.returncode == 1, text(proc)
    err = proc.stderr.decode()
    assert "Input error" in err and "b.parquet" in err and "'v'" in err, err
    assert "float" in err and "double" in err, err
    assert not emu.table_path(TABLE).exists()
    assert emu.stats()["streams"] == []

    # A missing column is named too.
    pq.write_table(rows_table(100, 200).drop_columns(["name"]), data / "b.parquet")
    proc = send(emu, data)
    assert proc.returncode == 1
    assert "b.parquet" in proc.stderr.decode() and "'name'" in proc.stderr.decode()


def test_unreadable_file_in_the_middle_stops_before_any_row(emulator_factory, tmp_path):
    emu = emulator_factory(tls=False)
    data = tmp_path / "data"
    data.mkdir()
    write_input(data / "a.parquet", rows_table(0, 100))
    (data / "b.parquet").write_bytes(b"PAR1 not really a parquet file PAR1")
    write_input(data / "c.parquet", rows_table(200, 300))
    proc = send(emu, data)
    assert proc.returncode == 1, text(proc)
    assert re.search(r"Input error: \S*b\.parquet: not a readable Parquet file", proc.stderr.decode())
    assert not emu.table_path(TABLE).exists()

    proc = send(emu, tmp_path / "no-such-file.parquet")
    assert proc.returncode == 1
    assert "Input error" in proc.stderr.decode() and "no-such-file.parquet: no such file" in proc.stderr.decode()


def test_corrupt_row_group_stops_the_send_and_names_it(emulator_factory, tmp_path):
    """The footer is fine, so the file opens; row group 1's first page header is garbage. The
    rows before it land, the error names the file and the row group, the checkpoint stops there."""
    emu = emulator_factory(tls=False)
    path = tmp_path / "rg.parquet"
    pq.write_table(rows_table(0, 3000), path, row_group_size=1000)
    offset = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    raw = bytearray(path.read_bytes())
    raw[offset:offset + 40] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    checkpoint, report = tmp_path / "ck.json", tmp_path / "report.json"
    proc = send(emu, path, "--batch-rows", "500", "--checkpoint", checkpoint, "--report-json", report)
    assert proc.returncode == 1, text(proc)
    assert "Input error: " in proc.stderr.decode()
    assert "rg.parquet: row group 1, at row 1000" in proc.stderr.decode()
    assert_exactly(table_ids(emu.table_path(TABLE)), range(1000))
    assert checkpoint_entry(checkpoint)["rows_done"] == 1000
    assert checkpoint_entry(checkpoint)["complete"] is False
    got = json.loads(report.read_text())
    assert got["exit_code"] == 1 and "row group 1" in got["error"]
    assert got["total"]["landed"] == 1000


def test_truncated_ipc_stream_after_a_good_file(emulator_factory, tmp_path):
    emu = emulator_factory(tls=False)
    good = write_input(tmp_path / "a-good.arrows", rows_table(0, 400))
    bad = tmp_path / "b-bad.arrows"
    raw = stream_bytes(rows_table(400, 1400))
    bad.write_bytes(raw[: len(raw) // 2])
    proc = send(emu, good, bad)
    assert proc.returncode == 1, text(proc)
    assert re.search(r"Input error: \S*b-bad\.arrows: batch \d+, at row \d+:", proc.stderr.decode()), text(proc)
    ids = table_ids(emu.table_path(TABLE))
    assert_exactly([i for i in ids if i < 400], range(400))
    assert len(ids) == len(set(ids)) and max(ids) < 1400


def test_schema_from_types_csv_and_json_lines(tmp_path):
    schema_file = tmp_path / "schema.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.int16()), "code": pa.array([], pa.string()),
                             "ts": pa.array([], pa.timestamp("us", tz="UTC"))}), schema_file)
    (tmp_path / "codes.csv").write_text(
        "id,code,ts\n0,007,2024-01-02T03:04:05Z\n1,042,2024-01-02T03:04:06Z\n")
    (tmp_path / "codes.jsonl").write_text(
        '{"id": 2, "code": "008", "ts": "2024-01-02T03:04:07Z"}\n'
        '{"id": 3, "code": "043", "ts": "2024-01-02T03:04:08Z"}\n')
    local = tmp_path / "local"
    for name in ("codes.csv", "codes.jsonl"):
        proc = run_cli("send", tmp_path / name, "--schema-from", schema_file, "--local-dir", local,
                       "--table", "main.default.codes")
        assert proc.returncode == 0, text(proc)
    t = deltalake.DeltaTable(str(local / "main" / "default" / "codes")).to_pyarrow_table().sort_by("id")
    assert t.schema.field("id").type == pa.int16()
    assert t.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert t["code"].to_pylist() == ["007", "042", "008", "043"]
    assert t["ts"][0].as_py().isoformat() == "2024-01-02T03:04:05+00:00"

    # Without --schema-from, CSV infers `code` as an integer ("007" becomes 7).
    proc = run_cli("send", tmp_path / "codes.csv", "--local-dir", local, "--table", "main.default.inferred")
    assert proc.returncode == 0, text(proc)
    inferred = deltalake.DeltaTable(str(local / "main" / "default" / "inferred")).to_pyarrow_table()
    assert inferred.schema.field("code").type == pa.int64()

    # A JSON field the schema does not have is an input error, not silently dropped.
    (tmp_path / "extra.jsonl").write_text('{"id": 9, "code": "1", "ts": "2024-01-02T03:04:05Z", "x": 1}\n')
    proc = run_cli("send", tmp_path / "extra.jsonl", "--schema-from", schema_file, "--local-dir", local)
    assert proc.returncode == 1, text(proc)
    assert "Input error" in proc.stderr.decode() and "extra.jsonl" in proc.stderr.decode()


# ---- connection failures ----------------------------------------------------------------------


def test_unreachable_endpoint_fails_every_row_quickly_without_the_secret(tmp_path):
    """Nothing listens on the port. The first batch fails as a whole (Retry exhausted): its rows
    are quarantined and the send stops there, in seconds, with exit code 1 and the cause.
    Settings from a YAML file; the secret only in the env."""
    port = free_port()
    secret = "unreachable-secret-77e1c0"
    config = tmp_path / "zerobus.yaml"
    config.write_text(
        f"zerobus_endpoint: http://127.0.0.1:{port}\n"
        f"table_name: {TABLE}\n"
        f"unity_catalog_url: http://127.0.0.1:{port}\n"
        "client_id: cli-test\n"
        "retry:\n  max_attempts: 2\n  base_delay_ms: 50\n  max_delay_ms: 100\n"
        "stream:\n  open_timeout_ms: 1000\n  recovery_retries: 0\n  recovery_backoff_ms: 50\n")
    quarantine, report = tmp_path / "failed.arrows", tmp_path / "report.json"
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 500))
    start = time.monotonic()
    proc = run_cli("send", path, "--config", config, "--failed-rows", quarantine, "--report-json",
                   report, env=clean_env(ZEROBUS_CLIENT_SECRET=secret), timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, text(proc)
    assert elapsed < 30, elapsed
    out = text(proc)
    assert "0 landed" in out and "500 failed" in out
    assert "the send stopped after every row of a batch" in out
    assert f"127.0.0.1:{port}" in out and "Couldn't connect" in out
    assert secret not in out and secret not in report.read_text()
    q = read_quarantine(quarantine)
    assert sorted(q["_source_row"].to_pylist()) == list(range(500))
    assert all(e.startswith("Retry exhausted") for e in q["_error"].to_pylist())
    assert secret not in json.dumps(q.to_pylist())
    assert json.loads(report.read_text())["total"]["landed"] == 0


def test_bad_credentials_over_tls_then_the_right_ones(emulator_factory, tmp_path):
    emu = emulator_factory(tls=True)
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 500))
    wrong = "wrong-secret-4f9c2a1b"
    env = emulator_env(emu, ZEROBUS_CLIENT_SECRET=wrong, RETRY_MAX_ATTEMPTS=2,
                       ZEROBUS_RECOVERY_RETRIES=0, ZEROBUS_STREAM_OPEN_TIMEOUT_MS=2000)
    start = time.monotonic()
    proc = send(emu, path, "--report-json", tmp_path / "bad.json", env=env)
    assert time.monotonic() - start < 30
    assert proc.returncode == 1, text(proc)
    out = text(proc)
    assert "Authentication error" in out and "invalid_client" in out, out
    assert "the send stopped after every row of a batch" in out
    assert wrong not in out and emu.client_secret not in out
    assert wrong not in (tmp_path / "bad.json").read_text()
    assert not emu.table_path(TABLE).exists()

    proc = send(emu, path)  # the right secret, same TLS server
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path(TABLE)), range(500))


def test_stream_ended_by_the_server_is_recovered_at_least_once(emulator_factory, tmp_path):
    """The server ends the stream after 3 requests (rows of those still land): the client
    replays what was not acknowledged, every row lands, the report counts the possible
    duplicates, and the table holds every id at least once, no more extra rows than that."""
    emu = emulator_factory(tls=False)
    emu.add_fault({"end_stream": {"after_requests": 3, "code": "UNAVAILABLE"}, "times": 1})
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 20_000))
    report = tmp_path / "report.json"
    proc = send(emu, path, "--batch-rows", "1000", "--report-json", report,
                env=emulator_env(emu, ZEROBUS_RECOVERY_BACKOFF_MS=50))
    assert proc.returncode == 0, text(proc)
    total = json.loads(report.read_text())["total"]
    assert total["landed"] == 20_000 and total["failed"] == 0
    assert total["retried"] + total["possibly_duplicated"] > 0, total
    ids = table_ids(emu.table_path(TABLE))
    assert set(ids) == set(range(20_000))
    assert len(ids) - 20_000 <= total["possibly_duplicated"]
    assert f"{total['possibly_duplicated']} possibly duplicated by replay" in proc.stdout.decode()
    # The per-file counts are the batches' own: one file here, so they match the totals.
    (only,) = json.loads(report.read_text())["files"]
    assert only["possibly_duplicated"] == total["possibly_duplicated"]
    assert only["retried"] == total["retried"]


# ---- partial failures, quarantine, re-send ----------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".arrows"])
def test_partial_failure_quarantine_and_resend(emulator_factory, tmp_path, suffix):
    emu = emulator_factory(tls=False)
    path = tmp_path / "readings.parquet"
    pq.write_table(failing_table(1000), path)
    failed_ids = [i for i in range(1000) if i % 100 == 7]
    quarantine, report = tmp_path / f"failed{suffix}", tmp_path / "report.json"
    proc = send(emu, path, "--batch-rows", "256", "--failed-rows", quarantine, "--report-json", report)
    assert proc.returncode == 3, text(proc)
    assert "990 landed (acknowledged), 10 failed" in proc.stdout.decode()
    assert f"failed rows written to {quarantine}" in proc.stdout.decode()
    assert_exactly(table_ids(emu.table_path(TABLE)), sorted(set(range(1000)) - set(failed_ids)))

    q = read_quarantine(quarantine)
    assert q.column_names == ["id", "u", *QUARANTINE_COLUMNS]
    assert q["id"].to_pylist() == failed_ids
    assert q["_source_row"].to_pylist() == failed_ids
    assert set(q["_source_file"].to_pylist()) == {str(path)}
    assert q["u"].to_pylist() == [2**63 + i for i in failed_ids]
    assert all("Conversion error" in e and "out of range" in e for e in q["_error"].to_pylist())
    assert q["_in_doubt"].to_pylist() == [False] * 10
    got = json.loads(report.read_text())
    assert got["exit_code"] == 3 and got["quarantined_rows"] == 10
    assert got["failed_rows_file"] == str(quarantine)
    assert (got["total"]["rows"], got["total"]["landed"], got["total"]["failed"]) == (1000, 990, 10)

    # The quarantine file exists: a second run must not overwrite it silently (usage error).
    proc = send(emu, path, "--failed-rows", quarantine)
    assert proc.returncode == 2 and "--overwrite-failed-rows" in proc.stderr.decode()

    # Fix the values, send the quarantine file back without its extra columns.
    fixed = q.set_column(1, "u", pc.subtract(q["u"], pa.scalar(2**63, pa.uint64())))
    fixed_path = tmp_path / f"fixed{suffix}"
    if suffix == ".parquet":
        pq.write_table(fixed, fixed_path)
    else:
        write_input(fixed_path, fixed)
    proc = send(emu, fixed_path, "--drop-quarantine-columns")
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path(TABLE)), range(1000))


def test_quarantine_columns_must_be_dropped_to_resend(tmp_path):
    local = tmp_path / "local"
    path = tmp_path / "readings.parquet"
    pq.write_table(failing_table(300), path)
    proc = run_cli("send", path, "--local-dir", local, "--table", TABLE, "--failed-rows", tmp_path / "q.parquet")
    assert proc.returncode == 3, text(proc)
    # Sent as it is, the quarantine's rows fail again and cannot be quarantined a second time
    # (its columns would clash): an error that stops the send, and the checkpoint stays before
    # those rows, since they are in no quarantine file.
    checkpoint = tmp_path / "ck.json"
    proc = run_cli("send", tmp_path / "q.parquet", "--local-dir", local, "--table", "main.default.other",
                   "--failed-rows", tmp_path / "q2.parquet", "--checkpoint", checkpoint)
    assert proc.returncode == 1, text(proc)
    assert "--drop-quarantine-columns" in proc.stderr.decode()
    assert checkpoint_entry(checkpoint) == {"complete": False, "rows_done": 0,
                                            "size_bytes": (tmp_path / "q.parquet").stat().st_size}


def test_checkpoint_holds_before_failed_rows_without_a_quarantine(tmp_path):
    local = tmp_path / "local"
    path = tmp_path / "readings.parquet"
    pq.write_table(failing_table(1000, every=1000, offset=620), path)  # only row 620 fails
    checkpoint = tmp_path / "ck.json"
    proc = run_cli("send", path, "--local-dir", local, "--batch-rows", "100", "--checkpoint", checkpoint)
    assert proc.returncode == 3, text(proc)
    assert "holds at row 600" in proc.stdout.decode()
    assert checkpoint_entry(checkpoint)["rows_done"] == 600
    assert checkpoint_entry(checkpoint)["complete"] is False

    # With an IPC stream quarantine (flushed on every write) the checkpoint passes the row.
    checkpoint2 = tmp_path / "ck2.json"
    proc = run_cli("send", path, "--local-dir", local, "--batch-rows", "100", "--checkpoint", checkpoint2,
                   "--failed-rows", tmp_path / "q.arrows", "--table", "main.default.again")
    assert proc.returncode == 3, text(proc)
    assert checkpoint_entry(checkpoint2)["rows_done"] == 1000
    assert checkpoint_entry(checkpoint2)["complete"] is True


# ---- interruption and resume ------------------------------------------------------------------


def test_kill_9_mid_send_then_resume(slow_emulator, tmp_path):
    emu = slow_emulator
    n = 100_000
    path = tmp_path / "big.parquet"
    pq.write_table(rows_table(0, n), path, row_group_size=10_000)
    checkpoint = tmp_path / "ck.json"
    args = [str(cli_binary()), "send", str(path), *emulator_args(emu), "--checkpoint", str(checkpoint),
            *SLOW_SEND]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(args, env=emulator_env(emu), stdout=log, stderr=log)
    try:
        wait_for_checkpoint(checkpoint, 3000, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
    done = checkpoint_entry(checkpoint)["rows_done"]  # the last one written before the kill
    assert 3000 <= done < n

    emu.request("DELETE", "/admin/faults")
    report = tmp_path / "report.json"
    proc = run_cli("send", path, *emulator_args(emu), "--checkpoint", checkpoint, "--report-json", report,
                   env=emulator_env(emu), timeout=120)
    assert proc.returncode == 0, text(proc)
    assert "resumed from" in proc.stdout.decode()
    file_report = json.loads(report.read_text())["files"][0]
    assert file_report["skipped_by_checkpoint"] == done
    assert file_report["rows"] == file_report["landed"] == n - done
    assert checkpoint_entry(checkpoint)["complete"] is True

    time.sleep(0.2)  # rows of the killed run's last requests are committed by now
    counts = Counter(table_ids(emu.table_path(TABLE)))
    assert sorted(counts) == list(range(n)), "every id is in the table"
    twice_before = [i for i in range(done) if counts[i] != 1]
    assert not twice_before, f"ids before the checkpoint ({done}) more than once: {twice_before[:10]}"


def test_ctrl_c_drains_writes_checkpoint_and_summary_then_resume(slow_emulator, tmp_path):
    emu = slow_emulator
    n = 100_000
    path = tmp_path / "big.parquet"
    pq.write_table(rows_table(0, n), path, row_group_size=10_000)
    checkpoint, report = tmp_path / "ck.json", tmp_path / "report.json"
    args = [str(cli_binary()), "send", str(path), *emulator_args(emu), "--checkpoint", str(checkpoint),
            "--report-json", str(report), *SLOW_SEND]
    proc = subprocess.Popen(args, env=emulator_env(emu), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_checkpoint(checkpoint, 2000, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 130, (out + err).decode()
    out = out.decode()
    assert "interrupted: stopped reading; the checkpoint is written" in out
    landed = int(re.search(r"sent (\d+) rows to \S+: (\d+) landed", out).group(2))
    entry = checkpoint_entry(checkpoint)
    assert entry["complete"] is False and entry["rows_done"] == landed < n
    got = json.loads(report.read_text())
    assert got["interrupted"] is True and got["exit_code"] == 130
    assert got["total"]["unresolved"] == 0 and got["total"]["landed"] == landed

    # Everything in flight was drained: after the resume every id is there exactly once.
    emu.request("DELETE", "/admin/faults")
    proc = run_cli("send", path, *emulator_args(emu), "--checkpoint", checkpoint, env=emulator_env(emu),
                   timeout=120)
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path(TABLE)), range(n))


def test_ctrl_c_waits_only_drain_timeout_when_acks_never_come(emulator_factory, tmp_path):
    emu = emulator_factory(tls=False)
    emu.add_fault({"withhold_acks": True})
    path = tmp_path / "big.parquet"
    pq.write_table(rows_table(0, 50_000), path, row_group_size=10_000)
    checkpoint, report = tmp_path / "ck.json", tmp_path / "report.json"
    args = [str(cli_binary()), "send", str(path), *emulator_args(emu), "--checkpoint", str(checkpoint),
            "--report-json", str(report), "--drain-timeout-s", "1", *SLOW_SEND]
    proc = subprocess.Popen(args, env=emulator_env(emu), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Wait until both batches of the window are on the server, waiting for acks that never come.
    deadline = time.monotonic() + 30
    while not any(st["requests"] >= 2 for st in emu.stats()["streams"]):
        assert proc.poll() is None and time.monotonic() < deadline, "the send did not start"
        time.sleep(0.05)
    time.sleep(0.2)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out + err).decode()
    assert time.monotonic() - start < 10
    assert "still in flight when the drain timeout ran out" in out.decode()
    got = json.loads(report.read_text())
    assert got["total"]["unresolved"] == 2000 and got["total"]["landed"] == 0
    assert checkpoint_entry(checkpoint)["rows_done"] == 0
    emu.request("DELETE", "/admin/faults")


# ---- local mode, show, serve, describe, encode --------------------------------------------------


def test_local_mode_default_directory_and_show(tmp_path):
    path = write_input(tmp_path / "my readings.parquet", rows_table(0, 250))
    proc = run_cli("send", path, cwd=tmp_path)
    assert proc.returncode == 0, text(proc)
    table_dir = tmp_path / "zerobus-local" / "main" / "default" / "my_readings"
    assert "zerobus-arrow show zerobus-local/main/default/my_readings" in proc.stderr.decode()
    assert_exactly(table_ids(table_dir), range(250))

    shown = run_cli("show", "zerobus-local/main/default/my_readings", "--limit", "3", cwd=tmp_path)
    assert shown.returncode == 0, text(shown)
    lines = shown.stdout.decode().splitlines()
    assert re.match(r"table zerobus-local/main/default/my_readings: 250 rows in \d+ data files", lines[0])
    assert "id: int64" in lines and "name: string" in lines and "v: double" in lines
    assert "first 3 rows:" in lines
    assert lines[-3:] == ["  {id: 0, name: row-0, v: 0}", "  {id: 1, name: row-1, v: 0.5}",
                          "  {id: 2, name: row-2, v: 1}"]

    proc = run_cli("show", tmp_path)
    assert proc.returncode == 1 and "not a Delta table" in proc.stderr.decode()


def test_serve_then_send_to_it(tmp_path):
    data = tmp_path / "served"
    secret = "serve-secret-1234"
    serve = subprocess.Popen([str(cli_binary()), "serve", "--data-dir", str(data), "--client",
                              f"served:{secret}", "--quiet"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        ready, _, _ = select.select([serve.stdout], [], [], 20)
        line = serve.stdout.readline() if ready else ""
        m = re.match(r"zerobus-arrow serve listening grpc=(\S+) http=(\S+) tls=off", line)
        assert m, line
        path = write_input(tmp_path / "rows.arrows", rows_table(0, 400))
        proc = run_cli("send", path, "--endpoint", f"http://{m.group(1)}", "--unity-catalog-url",
                       f"http://{m.group(2)}", "--client-id", "served", "--table", TABLE,
                       env=clean_env(ZEROBUS_CLIENT_SECRET=secret))
        assert proc.returncode == 0, text(proc)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
    assert serve.returncode == 0
    assert_exactly(table_ids(data / "main" / "default" / "cli_rows"), range(400))

    proc = run_cli("serve", "--data-dir", data)  # no --client and no --no-auth
    assert proc.returncode == 2 and "--client" in proc.stderr.decode()


@pytest.mark.parametrize("kind", [".parquet", ".arrow", ".arrows", ".csv", ".jsonl", "dir", "glob", "stdin"])
def test_describe_every_input_kind(tmp_path, kind):
    table = rows_table(0, 50)
    stdin = None
    if kind == "dir":
        (tmp_path / "d").mkdir()
        write_input(tmp_path / "d" / "a.parquet", table)
        arg = tmp_path / "d"
    elif kind == "glob":
        write_input(tmp_path / "a.arrow", table)
        arg = str(tmp_path / "*.arrow")
    elif kind == "stdin":
        arg, stdin = "-", stream_bytes(table)
    else:
        arg = write_input(tmp_path / f"rows{kind}", table)
    decl = tmp_path / "decl.json"
    proc = run_cli("describe", arg, "--message-name", "Reading", "--table", "main.iot.readings",
                   "--declaration-out", decl, stdin=stdin)
    assert proc.returncode == 0, text(proc)
    out = proc.stdout.decode()
    assert "# Arrow schema of" in out and "id: int64" in out
    assert "message Reading {" in out
    assert re.search(r"int64 id = 1;", out) and re.search(r"string name = 2;", out)
    assert re.search(r"double v = 3;", out)
    assert "CREATE TABLE main.iot.readings" in out
    columns = json.loads(decl.read_text())["columns"]
    assert [(c["name"], c["type"]) for c in columns] == [("id", "bigint"), ("name", "string"), ("v", "double")]


def test_encode_reports_rows_and_row_errors(tmp_path):
    path = tmp_path / "readings.parquet"
    pq.write_table(failing_table(1000), path)
    proc = run_cli("encode", path, "--max-errors", "2")
    assert proc.returncode == 0, text(proc)
    out = proc.stdout.decode()
    assert out.startswith("row 7: column 'u' row 7: value 9223372036854775815 out of range for int64\n")
    assert "rows 1000, encoded 990, failed 10," in out
    assert len([line for line in out.splitlines() if line.startswith("row ")]) == 2


# ---- progress, quiet, report, usage -----------------------------------------------------------


def test_progress_lines_bar_terminal_and_quiet(tmp_path):
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 300))
    local = tmp_path / "local"
    # Not a terminal: plain lines (at least the final one).
    proc = run_cli("send", path, "--local-dir", local)
    assert proc.returncode == 0
    assert re.search(r"^progress: rows 300 read, 300 landed, 0 failed \|", proc.stderr.decode(), re.M)
    assert "\r" not in proc.stderr.decode()
    # --progress bar: one line rewritten in place.
    proc = run_cli("send", path, "--local-dir", local, "--progress", "bar")
    assert "\rrows 300 read, 300 landed, 0 failed" in proc.stderr.decode()
    # --quiet: nothing at all on success.
    proc = run_cli("send", path, "--local-dir", local, "--quiet")
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b""
    # auto on a terminal: the updating line.
    master, slave = pty.openpty()
    p = subprocess.Popen([str(cli_binary()), "send", str(path), "--local-dir", str(local)],
                         stdout=subprocess.DEVNULL, stderr=slave, env=clean_env())
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert p.wait(timeout=30) == 0
    assert b"\rrows 300 read, 300 landed, 0 failed" in seen and b"\x1b[K" in seen
    assert Counter(table_ids(local / "main" / "default" / "rows")) == Counter({i: 4 for i in range(300)})


def test_report_json_shape(tmp_path):
    a = write_input(tmp_path / "a.parquet", rows_table(0, 100))
    b = write_input(tmp_path / "b.csv", rows_table(100, 300))
    report = tmp_path / "report.json"
    proc = run_cli("send", a, b, "--local-dir", tmp_path / "local", "--report-json", report,
                   "--checkpoint", tmp_path / "ck.json")
    assert proc.returncode == 0, text(proc)
    got = json.loads(report.read_text())
    assert set(got) == {"table", "endpoint", "local", "exit_code", "interrupted", "error", "total",
                        "files", "failed_rows_file", "quarantined_rows", "checkpoint"}
    assert got["table"] == "main.default.a" and got["local"] is True and got["error"] is None
    assert set(got["total"]) == {"rows", "landed", "failed", "in_doubt", "unresolved", "retried",
                                 "possibly_duplicated", "bytes", "seconds", "rows_per_s"}
    assert got["total"]["rows"] == got["total"]["landed"] == 300 and got["total"]["bytes"] > 0
    assert [f["path"] for f in got["files"]] == [str(a), str(b)]
    assert [f["format"] for f in got["files"]] == ["parquet", "csv"]
    for f in got["files"]:
        assert set(f) == {"path", "format", "rows", "landed", "failed", "in_doubt", "retried_batches",
                          "retried", "possibly_duplicated", "bytes", "seconds",
                          "skipped_by_checkpoint", "checkpoint_rows_done"}
        assert f["retried"] == 0 and f["possibly_duplicated"] == 0
    assert [f["checkpoint_rows_done"] for f in got["files"]] == [100, 200]

    # Re-run with the same checkpoint: both files are complete, nothing is sent again.
    proc = run_cli("send", a, b, "--local-dir", tmp_path / "local", "--report-json", report,
                   "--checkpoint", tmp_path / "ck.json")
    assert proc.returncode == 0, text(proc)
    got = json.loads(report.read_text())
    assert got["total"]["rows"] == 0
    assert [f["skipped_by_checkpoint"] for f in got["files"]] == [100, 200]
    assert_exactly(table_ids(tmp_path / "local" / "main" / "default" / "a"), range(300))

    # A file that changed since the checkpoint is refused.
    write_input(a, rows_table(0, 150))
    proc = run_cli("send", a, b, "--local-dir", tmp_path / "local", "--checkpoint", tmp_path / "ck.json")
    assert proc.returncode == 1 and "changed since the checkpoint was written" in proc.stderr.decode()


def test_usage_errors_exit_2(tmp_path):
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 10))
    (tmp_path / "bad-ck.json").write_text("not json")
    (tmp_path / "exists.parquet").write_text("")
    cases = [
        (["send"], "inputs is required"),
        (["send", path, "--no-such-flag"], "no-such-flag"),
        (["send", path, "--progress", "sometimes"], "progress"),
        (["send", path, "--batch-rows", "0"], "batch-rows"),
        (["send", path, "--failed-rows", tmp_path / "q.txt"], ".parquet, .arrow/.feather or .arrows"),
        (["send", path, "--failed-rows", tmp_path / "exists.parquet"], "--overwrite-failed-rows"),
        (["send", path, "--checkpoint", tmp_path / "bad-ck.json"], "not a checkpoint"),
        (["send", "-", "--checkpoint", tmp_path / "ck.json"], "cannot resume stdin"),
        (["send", path, "--endpoint", "http://127.0.0.1:1"], "--table is required"),
        (["show"], "table_dir is required"),
        ([], "A subcommand is required"),
    ]
    for args, message in cases:
        proc = run_cli(*args, stdin=b"")
        assert proc.returncode == 2, (args, text(proc))
        assert message in text(proc), (args, text(proc))
    assert run_cli("send", "--help").returncode == 0


# ---- --transport and --ipc-compression ---------------------------------------------------------


def test_transport_json_sends_json_rows(emulator_factory, tmp_path):
    declaration = tmp_path / "table.json"
    declaration.write_text(json.dumps({"columns": [{"name": "id", "type": "bigint"},
                                                   {"name": "name", "type": "string"},
                                                   {"name": "v", "type": "double"}]}))
    emu = emulator_factory(tls=False, extra_args=["--table", f"{TABLE}={declaration}"])
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 300))
    proc = send(emu, path, "--transport", "JSON", "--batch-rows", "100")
    assert proc.returncode == 0, text(proc)
    assert_exactly(table_ids(emu.table_path(TABLE)), range(300))
    streams = emu.stats_when_idle()["streams"]
    assert streams and {s["record_type"] for s in streams} == {"JSON"}


@pytest.mark.parametrize("flag,value,allowed", [
    ("--transport", "flight", "protobuf,json,arrow_flight"),
    ("--transport", "proto", "protobuf,json,arrow_flight"),
    ("--ipc-compression", "lz4", "none,lz4_frame,zstd"),
    ("--ipc-compression", "gzip", "none,lz4_frame,zstd"),
])
def test_bad_transport_flag_values_are_usage_errors(tmp_path, flag, value, allowed):
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 10))
    proc = run_cli("send", path, flag, value, "--local-dir", tmp_path / "local")
    assert proc.returncode == 2, text(proc)
    assert flag in text(proc) and value in text(proc) and allowed in text(proc), text(proc)
    assert not (tmp_path / "local").exists()


@pytest.mark.parametrize("args,detail", [
    (["--ipc-compression", "zstd"],
     "ipc_compression 'zstd' needs transport 'arrow_flight' (transport is 'protobuf')"),
    (["--transport", "json", "--ipc-compression", "lz4_frame"],
     "ipc_compression 'lz4_frame' needs transport 'arrow_flight' (transport is 'json')"),
])
def test_ipc_compression_without_arrow_flight_is_a_configuration_error(tmp_path, args, detail):
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 10))
    proc = run_cli("send", path, *args, "--local-dir", tmp_path / "local")
    assert proc.returncode == 1, text(proc)
    assert "Configuration error: " + detail in text(proc), text(proc)


def test_transport_conflict_between_yaml_and_flag_names_both_options(tmp_path):
    path = write_input(tmp_path / "rows.parquet", rows_table(0, 10))
    config = tmp_path / "zerobus.yaml"
    config.write_text("stream:\n  record_type: json\n")
    proc = run_cli("send", path, "--config", config, "--transport", "arrow_flight",
                   "--local-dir", tmp_path / "local")
    assert proc.returncode == 1, text(proc)
    assert "transport 'arrow_flight' conflicts with record_type 'json'" in text(proc), text(proc)
