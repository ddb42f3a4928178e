"""Proof of fidelity: the vendor's own Python SDK (databricks-zerobus-ingest-sdk) against the
emulator, over TLS with a CA made by the test, with OAuth through the emulator's token endpoint.
Rows are read back from the Delta table with the `deltalake` package and compared.

How the SDK is pointed at the emulator (found in the installed package's sources and stubs):
`ZerobusSdk(host, unity_catalog_url)` takes the gRPC endpoint and the workspace URL; it fetches
the token from `{unity_catalog_url}/oidc/v1/token` with resource
`api://databricks/workspaces/<first DNS label of host>/zerobusDirectWriteApi`, and trusts the CA
file named by SSL_CERT_FILE. `http://` URLs give plaintext (the SDK also has set_use_tls).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from zerobus.sdk.sync import (
    StreamConfigurationOptions,
    TableProperties,
    ZerobusSdk,
)

TABLE = "main.default.sdk_rows"
JSON_TABLE = "main.default.sdk_json"


def _row_class():
    """message Row (proto2), built at run time so no generated code is needed."""
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="sdk_row.proto", package="aztest", syntax="proto2")
    msg = fdp.message_type.add(name="Row")
    msg.field.add(name="id", number=1, type=f.TYPE_INT64, label=f.LABEL_REQUIRED)
    msg.field.add(name="name", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    msg.field.add(name="value", number=3, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    msg.field.add(name="flag", number=4, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    msg.field.add(name="count", number=5, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    msg.field.add(name="tags", number=6, type=f.TYPE_STRING, label=f.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("aztest.Row"))


Row = _row_class()


def _expected(i: int) -> dict:
    return {
        "id": i,
        "name": None if i % 4 == 0 else f"row-{i}",
        "value": i * 0.5,
        "flag": i % 2 == 0,
        "count": None if i % 3 == 0 else i * 10,
        "tags": [f"t{j}" for j in range(i % 3)],
    }


def _message(i: int):
    e = _expected(i)
    return Row(**{k: v for k, v in e.items() if v is not None})


def _sdk(emu, monkeypatch) -> ZerobusSdk:
    if emu.tls:
        monkeypatch.setenv("SSL_CERT_FILE", str(emu.tls.ca))
    return ZerobusSdk(emu.grpc_url, emu.http_url)


def _read_rows(emu, table: str) -> list[dict]:
    dt = DeltaTable(str(emu.table_path(table)))
    t = pa.table(dt.to_pyarrow_table())
    return sorted(t.to_pylist(), key=lambda r: r["id"])


def _fast_recovery() -> StreamConfigurationOptions:
    return StreamConfigurationOptions(recovery_backoff_ms=100, recovery_timeout_ms=5000)


def test_proto_records_and_batches_over_tls(emulator, monkeypatch):
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_stream(emulator.client_id, emulator.client_secret,
                               TableProperties(TABLE, Row.DESCRIPTOR))
    offsets = [stream.ingest_record_offset(_message(i)) for i in range(10)]
    batch_offset = stream.ingest_records_offset([_message(i) for i in range(10, 35)])
    stream.flush()
    stream.close()
    assert offsets == list(range(10))
    assert batch_offset == 10

    rows = _read_rows(emulator, TABLE)
    assert rows == [_expected(i) for i in range(35)]

    stats = emulator.stats_when_idle()
    assert stats["tokens_issued"] >= 1  # the stream was opened with an OAuth token
    (stream_stats,) = stats["streams"]
    assert stream_stats["requests"] == 11
    assert stream_stats["rows"] == 35
    assert stream_stats["last_ack_offset"] == 10
    assert stream_stats["open"] is False
    assert stream_stats["status_code"] == 0

    log = emulator.log()
    assert f"table={TABLE} opened (PROTO)" in log
    assert "ended code=0" in log
    assert emulator.client_secret not in log

    # The table the SDK created is visible through the Unity Catalog endpoint.
    status, body = emulator.request("GET", f"/api/2.1/unity-catalog/tables/{TABLE}",
                                    headers={"Authorization": "Bearer nope"})
    assert status == 401


def test_json_records_and_batches(emulator_factory, monkeypatch, tmp_path):
    declaration = tmp_path / "json_table.json"
    declaration.write_text(json.dumps({"columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "name", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "tags", "type": "array<string>"},
    ]}))
    emu = emulator_factory(tls=True, extra_args=["--strict", "--table", f"{JSON_TABLE}={declaration}"])
    sdk = _sdk(emu, monkeypatch)
    stream = sdk.create_stream(emu.client_id, emu.client_secret, TableProperties(JSON_TABLE))

    def record(i):
        return {"id": i, "name": f"j{i}", "value": i / 4, "tags": ["a"] * (i % 2)}

    for i in range(5):
        stream.ingest_record_offset(json.dumps(record(i)))
    stream.ingest_records_offset([json.dumps(record(i)) for i in range(5, 12)])
    stream.flush()
    stream.close()

    assert _read_rows(emu, JSON_TABLE) == [record(i) for i in range(12)]
    (s,) = emu.stats_when_idle()["streams"]
    assert s["record_type"] == "JSON"
    assert s["requests"] == 6


def test_plaintext_endpoint(emulator_factory, monkeypatch):
    emu = emulator_factory(tls=False)
    sdk = _sdk(emu, monkeypatch)
    stream = sdk.create_stream(emu.client_id, emu.client_secret, TableProperties(TABLE, Row.DESCRIPTOR))
    stream.ingest_records_offset([_message(i) for i in range(3)])
    stream.flush()
    stream.close()
    assert _read_rows(emu, TABLE) == [_expected(i) for i in range(3)]


def test_wrong_secret_is_refused(emulator, monkeypatch):
    sdk = _sdk(emulator, monkeypatch)
    options = StreamConfigurationOptions(recovery_retries=0, recovery_backoff_ms=50)
    with pytest.raises(Exception) as info:
        sdk.create_stream(emulator.client_id, "wrong-secret", TableProperties(TABLE, Row.DESCRIPTOR),
                          options)
    assert "wrong-secret" not in str(info.value)
    assert emulator.stats()["tokens_issued"] == 0


def test_sdk_recovers_when_the_server_ends_a_stream(emulator, monkeypatch):
    # The first stream ends with UNAVAILABLE after 3 requests; the SDK reconnects and replays what
    # was not acknowledged. Delivery is at least once, so every id must be there.
    emulator.add_fault({"end_stream": {"after_requests": 3, "code": "UNAVAILABLE",
                                       "message": "6002 Stream timeout reached"}, "times": 1})
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_stream(emulator.client_id, emulator.client_secret,
                               TableProperties(TABLE, Row.DESCRIPTOR), _fast_recovery())
    for i in range(8):
        stream.ingest_record_offset(_message(i))
    stream.flush()
    stream.close()

    rows = _read_rows(emulator, TABLE)
    assert {r["id"] for r in rows} == set(range(8))
    streams = emulator.stats_when_idle()["streams"]
    assert len(streams) >= 2
    assert streams[0]["status_code"] == 14  # UNAVAILABLE
    assert streams[0]["status_message"] == "6002 Stream timeout reached"


def test_sdk_follows_close_stream_signal(emulator, monkeypatch):
    emulator.add_fault({"close_signal": {"after_requests": 2, "duration_ms": 300}, "times": 1})
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_stream(emulator.client_id, emulator.client_secret,
                               TableProperties(TABLE, Row.DESCRIPTOR), _fast_recovery())
    for i in range(6):
        stream.ingest_record_offset(_message(i))
    stream.flush()
    stream.close()
    rows = _read_rows(emulator, TABLE)
    assert {r["id"] for r in rows} == set(range(6))
    assert emulator.stats_when_idle()["streams"][0]["close_signals"] == 1


def test_acked_rows_survive_kill_9(emulator_factory, monkeypatch):
    # What the SDK saw acknowledged must be in the table after the server is killed without any
    # chance to clean up, and the table must stay readable.
    emu = emulator_factory(tls=False)
    sdk = _sdk(emu, monkeypatch)
    options = StreamConfigurationOptions(recovery=False)
    stream = sdk.create_stream(emu.client_id, emu.client_secret, TableProperties(TABLE, Row.DESCRIPTOR),
                               options)
    last = None
    for i in range(40):
        last = stream.ingest_record_offset(_message(i))
    stream.wait_for_offset(last)  # offsets 0..39 acknowledged, so ids 0..39 are durable
    for i in range(40, 400):  # in flight when the server dies: may or may not land
        stream.ingest_record_offset(_message(i))
    emu.kill9()

    ids = [r["id"] for r in _read_rows(emu, TABLE)]
    assert set(range(40)) <= set(ids)
    assert len(ids) == len(set(ids))  # one stream, no replay: no duplicates
    # Everything the SDK counts as acknowledged (acks are in order, so a prefix) is in the table.
    try:
        stream.close()
    except Exception:
        pass  # the server is gone
    unacked = list(stream.get_unacked_records())
    acked = 400 - len(unacked)
    assert acked >= 40
    assert set(range(acked)) <= set(ids)


def test_vendor_schema_tool_reads_the_unity_catalog_endpoint(emulator_factory, monkeypatch, tmp_path):
    # The vendor's schema tool fetches the table from the emulator's Unity Catalog endpoint (with
    # a plain client-credentials token) and writes a .proto; a stream with that descriptor is
    # accepted by the emulator's strict schema check and its rows land typed as declared.
    import subprocess
    import sys
    from datetime import date, datetime, timedelta, timezone

    from google.protobuf import descriptor_pb2 as dpb

    table = "main.default.declared"
    declaration = tmp_path / "declared.json"
    declaration.write_text(json.dumps({"columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "count", "type": "int"},
        {"name": "ok", "type": "boolean"},
        {"name": "tags", "type": "array<string>"},
        {"name": "ts", "type": "timestamp"},
        {"name": "day", "type": "date"},
    ]}))
    emu = emulator_factory(tls=False, extra_args=["--strict", "--table", f"{table}={declaration}"])
    proto = tmp_path / "declared.proto"
    subprocess.run([sys.executable, "-m", "zerobus.tools.generate_proto", "--uc-endpoint", emu.http_url,
                    "--client-id", emu.client_id, "--client-secret", emu.client_secret,
                    "--table", table, "--output", str(proto), "--proto-msg", "Declared"],
                   check=True, capture_output=True, timeout=60)
    text = proto.read_text()
    assert "required int64 id = 1;" in text
    assert "optional string name = 2;" in text
    assert "repeated string tags = 6;" in text
    assert "optional int64 ts = 7;" in text
    assert "optional int32 day = 8;" in text

    descriptor_set = tmp_path / "declared.desc"
    subprocess.run(["protoc", f"-I{tmp_path}", f"--descriptor_set_out={descriptor_set}", str(proto)],
                   check=True, timeout=60)
    fds = dpb.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fds.file[0])
    Declared = message_factory.GetMessageClass(pool.FindMessageTypeByName("Declared"))

    ts0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    micros = int(ts0.timestamp()) * 1_000_000
    sdk = _sdk(emu, monkeypatch)
    stream = sdk.create_stream(emu.client_id, emu.client_secret, TableProperties(table, Declared.DESCRIPTOR))
    stream.ingest_records_offset([
        Declared(id=1, name="a", score=1.5, count=7, ok=True, tags=["x", "y"], ts=micros, day=20000),
        Declared(id=2),
    ])
    stream.flush()
    stream.close()

    rows = _read_rows(emu, table)
    assert rows[0] == {"id": 1, "name": "a", "score": 1.5, "count": 7, "ok": True, "tags": ["x", "y"],
                       "ts": ts0, "day": date(1970, 1, 1) + timedelta(days=20000)}
    assert rows[1] == {"id": 2, "name": None, "score": None, "count": None, "ok": None, "tags": [],
                       "ts": None, "day": None}
