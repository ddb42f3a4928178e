"""The vendor Python SDK's Arrow Flight stream (`create_arrow_stream`,
databricks-zerobus-ingest-sdk 1.10.0) against the emulator's DoPut: OAuth through the emulator's
token endpoint, batches split by the SDK's encoder, rows read back from the Delta table with the
`deltalake` package and compared; schema rejections; recovery and rotation under faults; IPC
compression.

Arrow types are the ones the vendor derives from Unity Catalog for each Delta type (large_utf8
for STRING and DECIMAL text, large_binary, timestamp[us, UTC], ...), see docs/emulator.md.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from zerobus.sdk.shared.arrow import ArrowStreamConfigurationOptions, IPCCompression
from zerobus.sdk.sync import NonRetriableException, ZerobusSdk

TABLE = "main.default.sdk_arrow"

SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("name", pa.large_utf8()),
    pa.field("value", pa.float64()),
    pa.field("tags", pa.list_(pa.large_utf8())),
])


def _expected(i: int) -> dict:
    return {
        "id": i,
        "name": None if i % 5 == 0 else f"name-{i}",
        "value": i * 0.25,
        "tags": [f"t{j}" for j in range(i % 3)],
    }


def _batch(first: int, n: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([_expected(i) for i in range(first, first + n)], schema=SCHEMA)


def _sdk(emu, monkeypatch) -> ZerobusSdk:
    if emu.tls:
        monkeypatch.setenv("SSL_CERT_FILE", str(emu.tls.ca))
    return ZerobusSdk(emu.grpc_url, emu.http_url)


def _read_rows(emu, table: str = TABLE) -> list[dict]:
    t = pa.table(DeltaTable(str(emu.table_path(table))).to_pyarrow_table())
    return sorted(t.to_pylist(), key=lambda r: r["id"])


def _options(**kwargs) -> ArrowStreamConfigurationOptions:
    kwargs.setdefault("recovery_backoff_ms", 100)
    kwargs.setdefault("recovery_timeout_ms", 5000)
    return ArrowStreamConfigurationOptions(**kwargs)


def _declared(emulator_factory, tmp_path, columns, **kwargs):
    declaration = tmp_path / "declared.json"
    declaration.write_text(json.dumps({"columns": columns}))
    return emulator_factory(extra_args=["--strict", "--table", f"{TABLE}={declaration}"], **kwargs)


def test_arrow_batches_over_tls_land_in_the_table(emulator, monkeypatch):
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emulator.client_id, emulator.client_secret,
                                     _options())
    offsets = [stream.ingest_batch(_batch(0, 10)), stream.ingest_batch(_batch(10, 1))]
    # Large enough for the SDK's encoder to split it into several FlightData (2 MiB target).
    offsets.append(stream.ingest_batch(pa.Table.from_batches([_batch(11, 60_000)])))
    stream.flush()
    stream.close()
    assert offsets == [0, 1, 2]

    assert _read_rows(emulator) == [_expected(i) for i in range(60_011)]
    (s,) = emulator.stats_when_idle()["streams"]
    assert s["record_type"] == "arrow"
    assert s["rows"] == 60_011
    assert s["requests"] > 3  # the big batch arrived as several pieces
    assert s["status_code"] == 0
    log = emulator.log()
    assert f"table={TABLE} opened (arrow)" in log
    assert emulator.client_secret not in log


def test_every_type_into_a_declared_table(emulator_factory, monkeypatch, tmp_path):
    emu = _declared(emulator_factory, tmp_path, [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "i", "type": "int"},
        {"name": "flag", "type": "boolean"},
        {"name": "raw", "type": "binary"},
        {"name": "price", "type": "decimal(10,2)"},
        {"name": "day", "type": "date"},
        {"name": "ts", "type": "timestamp"},
        {"name": "ntz", "type": "timestamp_ntz"},
        {"name": "attrs", "type": "map<string,bigint>"},
        {"name": "pt", "type": "struct<x:int,label:string>"},
    ], tls=False)
    schema = pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("i", pa.int32()),
        pa.field("flag", pa.bool_()),
        pa.field("raw", pa.large_binary()),
        pa.field("price", pa.large_utf8()),
        pa.field("day", pa.date32()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("ntz", pa.timestamp("us")),
        pa.field("attrs", pa.map_(pa.large_utf8(), pa.int64())),
        pa.field("pt", pa.struct([pa.field("x", pa.int32()), pa.field("label", pa.large_utf8())])),
    ])
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    rows = [
        {"id": 1, "i": -3, "flag": True, "raw": b"\x00\x01", "price": "12.34", "day": date(2026, 5, 6),
         "ts": ts, "ntz": datetime(2026, 1, 2), "attrs": [("a", 1), ("b", None)],
         "pt": {"x": 7, "label": "p"}},
        {"id": 2, "i": None, "flag": None, "raw": None, "price": "-0.5", "day": None, "ts": None,
         "ntz": None, "attrs": [], "pt": None},
    ]
    sdk = _sdk(emu, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, schema, emu.client_id, emu.client_secret, _options())
    stream.ingest_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
    stream.flush()
    stream.close()

    got = _read_rows(emu)
    assert got[0] == {"id": 1, "i": -3, "flag": True, "raw": b"\x00\x01", "price": Decimal("12.34"),
                      "day": date(2026, 5, 6), "ts": ts, "ntz": datetime(2026, 1, 2),
                      "attrs": [("a", 1), ("b", None)], "pt": {"x": 7, "label": "p"}}
    assert got[1] == {"id": 2, "i": None, "flag": None, "raw": None, "price": Decimal("-0.50"),
                      "day": None, "ts": None, "ntz": None, "attrs": [], "pt": None}


@pytest.mark.parametrize("schema, cause, words", [
    (pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.utf8())]),
     "TYPE_INCOMPATIBLE", "needs large_string"),
    (pa.schema([pa.field("name", pa.large_utf8())]), "MISSING_REQUIRED_COLUMN", "'id'"),
    (pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("extra", pa.int32())]),
     "FIELD_NOT_IN_TABLE", "'extra'"),
], ids=["utf8", "missing", "extra"])
def test_schema_mismatch_fails_creation_without_retry(emulator_factory, monkeypatch, tmp_path,
                                                      schema, cause, words):
    emu = _declared(emulator_factory, tmp_path, [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "name", "type": "string"},
    ], tls=False)
    sdk = _sdk(emu, monkeypatch)
    with pytest.raises(NonRetriableException) as info:
        sdk.create_arrow_stream(TABLE, schema, emu.client_id, emu.client_secret, _options())
    message = str(info.value)
    assert message.startswith("Arrow schema does not match the target table"), message
    assert words in message
    # Non-retriable: one DoPut only, and no stream was opened.
    assert emu.stats_when_idle()["streams"] == []
    assert emu.log().count("arrow stream not opened code=3") == 1


def test_sdk_recovers_and_replays_when_the_server_ends_a_stream(emulator, monkeypatch):
    # The first DoPut ends with UNAVAILABLE after 3 data messages; the SDK reconnects and replays
    # what was not acknowledged (at least once: every id must be there).
    emulator.add_fault({"end_stream": {"after_requests": 3, "code": "UNAVAILABLE",
                                       "message": "6002 Stream timeout reached"}, "times": 1})
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emulator.client_id, emulator.client_secret,
                                     _options())
    for k in range(8):
        stream.ingest_batch(_batch(k * 100, 100))
    stream.flush()
    stream.close()

    ids = [r["id"] for r in _read_rows(emulator)]
    assert set(ids) == set(range(800))
    streams = emulator.stats_when_idle()["streams"]
    assert len(streams) >= 2
    assert streams[0]["status_code"] == 14
    assert streams[0]["requests"] == 3
    assert all(s["record_type"] == "arrow" for s in streams)


def test_sdk_rotates_on_the_close_signal(emulator, monkeypatch):
    emulator.add_fault({"close_signal": {"after_requests": 2, "duration_ms": 1500}, "times": 1})
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emulator.client_id, emulator.client_secret,
                                     _options())
    for k in range(6):
        stream.ingest_batch(_batch(k * 10, 10))
        stream.flush()
    stream.close()
    assert {r["id"] for r in _read_rows(emulator)} == set(range(60))
    streams = emulator.stats_when_idle()["streams"]
    assert streams[0]["close_signals"] == 1
    assert len(streams) >= 2  # the SDK opened a new DoPut after the signal


def test_delayed_acks_still_complete(emulator, monkeypatch):
    emulator.add_fault({"ack_delay_ms": 300})
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emulator.client_id, emulator.client_secret,
                                     _options())
    for k in range(3):
        stream.ingest_batch(_batch(k * 10, 10))
    stream.flush()
    stream.close()
    assert [r["id"] for r in _read_rows(emulator)] == list(range(30))


def test_withheld_acks_make_the_sdk_time_out_and_replay(emulator, monkeypatch):
    # The server stores the rows but does not confirm them: the SDK's ack timeout fires, it
    # reconnects and sends them again; once acks flow again everything is confirmed. Rows the
    # server stored without acking are in the table twice (at-least-once), none is missing.
    emulator.add_fault({"withhold_acks": True})
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emulator.client_id, emulator.client_secret,
                                     _options(server_lack_of_ack_timeout_ms=1000,
                                              recovery_retries=20))
    stream.ingest_batch(_batch(0, 50))
    time.sleep(1.5)  # past the ack timeout: at least one reconnect and replay
    status, _ = emulator.request("DELETE", "/admin/faults")
    assert status == 200
    stream.ingest_batch(_batch(50, 50))
    stream.flush()
    stream.close()

    ids = [r["id"] for r in _read_rows(emulator)]
    assert set(ids) == set(range(100))
    assert ids.count(0) >= 2  # stored, unacknowledged, replayed
    assert len(emulator.stats_when_idle()["streams"]) >= 2


def test_new_token_after_revocation_on_reconnect(emulator, monkeypatch):
    # Tokens are read when each DoPut opens: after a revocation the reconnect fetches a new one.
    sdk = _sdk(emulator, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emulator.client_id, emulator.client_secret,
                                     _options())
    stream.ingest_batch(_batch(0, 10))
    stream.flush()
    emulator.add_fault({"revoke_tokens": True})
    emulator.add_fault({"end_stream": {"after_requests": 1, "code": "UNAVAILABLE"}, "times": 1})
    stream.ingest_batch(_batch(10, 10))
    stream.ingest_batch(_batch(20, 10))
    stream.flush()
    stream.close()
    assert {r["id"] for r in _read_rows(emulator)} == set(range(30))
    assert emulator.stats()["tokens_issued"] >= 2


@pytest.mark.parametrize("compression", [IPCCompression.LZ4_FRAME, IPCCompression.ZSTD],
                         ids=["lz4_frame", "zstd"])
def test_compressed_ipc_bodies(emulator_factory, monkeypatch, compression):
    emu = emulator_factory(tls=False)
    sdk = _sdk(emu, monkeypatch)
    stream = sdk.create_arrow_stream(TABLE, SCHEMA, emu.client_id, emu.client_secret,
                                     _options(ipc_compression=compression))
    stream.ingest_batch(_batch(0, 2000))
    stream.ingest_batch(_batch(2000, 5))
    stream.flush()
    stream.close()
    assert _read_rows(emu) == [_expected(i) for i in range(2005)]
