"""The Spark data source `zerobus` (arrow_zerobus_sdk_wrapper.spark) against the local Zerobus.

One Spark session for the module (local[2,2]: two cores, and a failed task is run once more, so
that Spark's own task retries can be tested), one LocalZerobus serving its Python workers over
loopback. The environment holds the emulator's ZEROBUS_* variables before the session starts,
as a user's driver would (the documented fallback for credentials). Rows are read back from the
emulator's Delta tables with deltalake.
"""

from __future__ import annotations

import base64
import glob
import json
import logging
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from arrow_zerobus_sdk_wrapper import ConfigurationError, WrapperConfiguration, _core
from arrow_zerobus_sdk_wrapper import spark as zspark
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

REPO = Path(__file__).resolve().parents[2]

IOT_COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "ts", "type": "timestamp", "nullable": False},
    {"name": "device_id", "type": "string"},
    {"name": "site", "type": "string"},
    {"name": "temperature", "type": "double"},
    {"name": "humidity", "type": "double"},
    {"name": "pressure", "type": "double"},
    {"name": "voltage", "type": "double"},
    {"name": "status", "type": "int"},
    {"name": "alarm", "type": "boolean"},
]
IOT = {"columns": IOT_COLUMNS}
TABLES = {
    f"main.spark.{name}": IOT
    for name in (
        "iot", "quarantine", "fail", "faults_end_stream", "faults_withheld_acks",
        "task_retry", "stream", "secret", "in_process",
    )
}
TABLES["main.default.iot"] = IOT  # the table of docs/spark.md
# Short timeouts and quick retries: no test waits long for anything. Strings, as Spark passes.
FAST = {
    "retry_base_delay_ms": "10",
    "retry_max_delay_ms": "200",
    "recovery_backoff_ms": "50",
    "stream_open_timeout_ms": "5000",
    "flush_timeout_ms": "60000",
    "failure_cooldown_ms": "0",
    "cooldown_jitter_ms": "0",
}

# The iot rows as Spark expressions of `id`; expected_iot() computes the same values.
IOT_EXPRESSIONS = [
    "id",
    "timestamp_micros(1700000000000000 + id * 1000) AS ts",
    "concat('device-', lpad(CAST(id % 5000 AS STRING), 5, '0')) AS device_id",
    "element_at(array('plant-a', 'plant-b', 'plant-c', 'lab'), CAST(id % 4 AS INT) + 1) AS site",
    "CAST(id % 6500 AS DOUBLE) / 100.0D - 20.0D AS temperature",
    "CASE WHEN id % 97 = 0 THEN NULL ELSE CAST(id % 10000 AS DOUBLE) / 100.0D END AS humidity",
    "950.0D + CAST(id % 1000 AS DOUBLE) / 10.0D AS pressure",
    "3.0D + CAST(id % 600 AS DOUBLE) / 1000.0D AS voltage",
    "CAST(id % 8 AS INT) AS status",
    "id % 100 = 0 AS alarm",
]


def iot_frame(spark, start: int, end: int, partitions: int, status: str = "CAST(id % 8 AS INT) AS status",
              ts: str = "timestamp_micros(1700000000000000 + id * 1000) AS ts"):
    expressions = [status if e.endswith(" AS status") else ts if e.endswith(" AS ts") else e
                   for e in IOT_EXPRESSIONS]
    return spark.range(start, end, numPartitions=partitions).selectExpr(*expressions)


def expected_iot(ids: pa.Array) -> dict:
    import numpy as np

    i = ids.to_numpy()
    sites = np.array(["plant-a", "plant-b", "plant-c", "lab"], dtype=object)
    humidity = (i % 10000).astype("float64") / 100.0
    return {
        "ts": pa.array(1_700_000_000_000_000 + i * 1000, pa.timestamp("us", tz="UTC")),
        "device_id": pa.array([f"device-{v:05d}" for v in (i % 5000).tolist()], pa.string()),
        "site": pa.array(sites[i % 4], pa.string()),
        "temperature": pa.array((i % 6500).astype("float64") / 100.0 - 20.0),
        "humidity": pa.array(humidity, mask=(i % 97 == 0)),
        "pressure": pa.array(950.0 + (i % 1000).astype("float64") / 10.0),
        "voltage": pa.array(3.0 + (i % 600).astype("float64") / 1000.0),
        "status": pa.array((i % 8).astype("int32")),
        "alarm": pa.array(i % 100 == 0),
    }


def assert_iot_values(table: pa.Table) -> None:
    """Every column of every row equals what the Spark expressions computed."""
    table = table.sort_by("id")
    ids = table.column("id").combine_chunks()
    for name, expected in expected_iot(ids).items():
        got = table.column(name).combine_chunks()
        assert got.equals(expected), f"column {name} differs"


def settled_table(emu: LocalZerobus, name: str, timeout: float = 20.0) -> pa.Table:
    """The table once the server has no open stream and nothing left to commit."""
    return emu.read_table(name, timeout=timeout)

def ids_of(table: pa.Table) -> list:
    return table.column("id").to_pylist()


def check_summary_invariants(summary: dict) -> None:
    assert summary["rows"] == summary["landed"] + summary["failed"]
    assert summary["in_doubt"] <= summary["failed"]
    assert summary["possibly_duplicated"] == summary["replayed"] + summary["rows_in_retried_tasks"]
    assert sum(summary["error_types"].values()) == summary["failed"]


def release_when_streams_open(emu: LocalZerobus, table: str, hold_s: float) -> threading.Thread:
    """Clears the faults `hold_s` seconds after a stream to `table` is open (or after 120 s)."""

    def run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(s["table"] == table and s["open"] for s in emu.stats()["streams"]):
                break
            time.sleep(0.05)
        time.sleep(hold_s)
        emu.clear_faults()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ---- fixtures ---------------------------------------------------------------------------------


LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.file.ref = file
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d %p %c: %m%n
"""


class SparkEnv:
    def __init__(self, spark, emu: LocalZerobus, root: Path) -> None:
        self.spark = spark
        self.emu = emu
        self.root = root
        self.event_dir = root / "events"
        self.spark_log = root / "spark.log"

    def options(self, **extra: str) -> dict:
        """Every connection option given explicitly (credentials included) plus FAST."""
        return {
            "endpoint": self.emu.endpoint,
            "client_id": self.emu.client_id,
            "client_secret": self.emu.client_secret,
            "unity_catalog_url": self.emu.unity_catalog_url,
            **FAST,
            **extra,
        }

    def write(self, df, table: str, **options: str) -> dict:
        writer = df.write.format("zerobus").mode("append").option("table", table)
        writer.options(**self.options(**options)).save()
        return zspark.last_write_summary()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    (root / "events").mkdir()
    log4j = root / "log4j2.properties"
    log4j.write_text(LOG4J.format(log_file=root / "spark.log"))
    with LocalZerobus(tables=TABLES) as emu, pytest.MonkeyPatch.context() as mp:
        # The driver's environment, before Spark starts: its Python workers inherit it.
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        mp.setenv("ZEROBUS_ENDPOINT", emu.endpoint)
        mp.setenv("ZEROBUS_CLIENT_ID", emu.client_id)
        mp.setenv("ZEROBUS_CLIENT_SECRET", emu.client_secret)
        mp.setenv("UNITY_CATALOG_URL", emu.unity_catalog_url)
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master("local[2,2]")
            .appName("test_spark")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.eventLog.enabled", "true")
            .config("spark.eventLog.compress", "false")
            .config("spark.eventLog.dir", str(root / "events"))
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log4j}")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("WARN")
        spark.dataSource.register(zspark.ZerobusDataSource)
        try:
            yield SparkEnv(spark, emu, root)
        finally:
            spark.stop()


# ---- options (no Spark needed) ----------------------------------------------------------------


def _as_spark_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def test_every_wrapper_option_converts_from_spark_text(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("ZEROBUS_", "UNITY_", "DEBUG_", "OTLP_", "RETRY_")):
            monkeypatch.delenv(name)
    from google.protobuf import descriptor_pb2  # noqa: F401  (only to build a real descriptor)

    descriptor = descriptor_pb2.DescriptorProto(name="Row")
    descriptor.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                         label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    # A value different from the default for every option (so a dropped option shows).
    values = {
        "endpoint": "https://example.invalid:8443",
        "table_name": "main.default.t",
        "client_id": "id",
        "client_secret": "s3cr3t-value",
        "unity_catalog_url": "https://uc.example.invalid",
        "observability_enabled": True,
        "observability_config": {"endpoint": None, "output_dir": str(tmp_path / "otel"),
                                 "write_interval_secs": 7, "log_level": "warn"},
        "debug_enabled": True,
        "debug_arrow_enabled": True,
        "debug_protobuf_enabled": False,
        "debug_output_dir": str(tmp_path / "debug"),
        "debug_flush_interval_secs": 9,
        "debug_max_file_size": 1 << 20,
        "debug_max_files_retained": None,
        "retry_max_attempts": 7,
        "retry_base_delay_ms": 11,
        "retry_max_delay_ms": 1234,
        "zerobus_writer_disabled": True,
        "debug_max_records_per_file": 500,
        "streams_per_table": 3,
        "max_inflight_requests": 77,
        "max_inflight_bytes": 1 << 22,
        "when_inflight_full": "reject",
        "stream_open_timeout_ms": 1001,
        "recovery_backoff_ms": 1002,
        "recovery_retries": 2,
        "flush_timeout_ms": 1003,
        "ack_timeout_ms": 1004,
        "application_name": "spark-test",
        "ca_file": str(tmp_path / "ca.pem"),
        "record_type": "json",
        "transport": "json",
        "ipc_compression": "lz4_frame",
        "descriptor_source": "given",
        "descriptor": descriptor.SerializeToString(),
        "failure_rate_threshold": 0.25,
        "failure_rate_min_rows": 10,
        "failure_cooldown_ms": 5,
        "cooldown_jitter_ms": 6,
        "pipeline_blocked_cooldown_ms": 8,
        "send_timeout_ms": 4321,
        "max_sends_per_row": 2,
    }
    defaults = _core.default_options()
    assert set(values) == set(defaults), "a new option needs a value here (and a Spark type)"
    assert [n for n, (kind, _) in zspark._KINDS.items() if kind == "unknown"] == []
    for name, value in values.items():
        assert value != defaults[name], name
    text = {name: _as_spark_text(value) for name, value in values.items()}
    # Spark hands options over with lower-case keys; upper case here proves case-insensitivity.
    text["RETRY_MAX_ATTEMPTS"] = text.pop("retry_max_attempts")
    config, settings = zspark._resolve(text)
    assert config.to_dict() == WrapperConfiguration(**{
        "endpoint": values["endpoint"], "table_name": values["table_name"],
        **{k: v for k, v in values.items() if k not in ("endpoint", "table_name")},
    }).to_dict()
    assert settings == zspark._Settings(None, False, zspark.SINK_OPTIONS["max_pending_batches"], None, None)


def test_options_none_and_sink_options(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    config, settings = zspark._resolve({
        "table": "a.b.c", "endpoint": "http://localhost:1",
        "debug_max_files_retained": "None", "debug_arrow_enabled": "null",
        "fail_on_error": "TRUE", "max_pending_batches": "3",
        "quarantine_path": "relative/q", "summary_path": "s3://bucket/summary.json",
    })
    assert config.debug_max_files_retained is None and config.debug_arrow_enabled is None
    for text, value in (("yes", True), ("On", True), ("1", True), ("no", False), ("off", False),
                        ("0", False)):
        config, _ = zspark._resolve({"table": "a.b.c", "endpoint": "http://localhost:1",
                                     "debug_protobuf_enabled": text,
                                     "debug_output_dir": str(tmp_path)})
        assert config.debug_protobuf_enabled is value, text
    assert settings.fail_on_error is True and settings.max_pending_batches == 3
    # A local path is made absolute where the write is planned; a URI is kept.
    assert settings.quarantine_path == str(tmp_path / "relative" / "q")
    assert settings.summary_path == "s3://bucket/summary.json"
    # The sink's descriptor default (the table's own descriptor), unless one is given.
    assert config.descriptor_source == "unity_catalog"
    config, _ = zspark._resolve({"table": "a.b.c", "endpoint": "http://localhost:1",
                                 "descriptor_source": "arrow_schema"})
    assert config.descriptor_source == "arrow_schema"
    monkeypatch.setenv("ZEROBUS_DESCRIPTOR_SOURCE", "arrow_schema")
    config, _ = zspark._resolve({"table": "a.b.c", "endpoint": "http://localhost:1"})
    assert config.descriptor_source == "arrow_schema"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"table": "a.b.c", "retry_max_attempts": "five"},
         "Spark option 'retry_max_attempts': 'five' is not an integer"),
        ({"table": "a.b.c", "observability_enabled": "maybe"},
         "Spark option 'observability_enabled': 'maybe' is not a boolean"),
        ({"table": "a.b.c", "failure_rate_threshold": "lots"},
         "Spark option 'failure_rate_threshold': 'lots' is not a number"),
        ({"table": "a.b.c", "observability_config": "[1]"},
         "Spark option 'observability_config': '[1]' is not a JSON object"),
        ({"table": "a.b.c", "descriptor": "not base64!"},
         "Spark option 'descriptor': is not base64 text"),
        ({"table": "a.b.c", "max_pending_batches": "0"},
         "Spark option 'max_pending_batches': must be an integer of at least 1"),
        ({"table": "a.b.c", "table_name": "x.y.z"},
         "the table is given twice"),
        ({"table": "a.b.c", "when_inflight_full": "sometimes"}, "when_inflight_full"),
        ({"table": "a.b.c", "retry_max_atempts": "3", "colour": "red"},
         "unknown Spark options 'retry_max_atempts' (did you mean 'retry_max_attempts'?), "
         "'colour' for format 'zerobus'"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ConfigurationError) as raised:
        zspark._resolve(options)
    assert message in str(raised.value)


def test_credentials_come_from_options_or_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("ZEROBUS_", "UNITY_")):
            monkeypatch.delenv(name)
    with pytest.raises(ConfigurationError, match="no endpoint"):
        zspark._resolve({"table": "a.b.c"})
    monkeypatch.setenv("ZEROBUS_ENDPOINT", "https://env.example.invalid")
    monkeypatch.setenv("ZEROBUS_CLIENT_ID", "env-id")
    monkeypatch.setenv("ZEROBUS_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("UNITY_CATALOG_URL", "https://uc.example.invalid")
    config, _ = zspark._resolve({"table": "a.b.c"})
    assert (config.endpoint, config.client_id, config.client_secret) == (
        "https://env.example.invalid", "env-id", "env-secret")
    zspark._check_config(config)
    # An option wins over the variable.
    config, _ = zspark._resolve({"table": "a.b.c", "client_secret": "option-secret"})
    assert config.client_secret == "option-secret" and config.client_id == "env-id"
    # Without credentials the plan fails on the driver, naming what is missing, never a secret.
    monkeypatch.delenv("ZEROBUS_CLIENT_SECRET")
    config, _ = zspark._resolve({"table": "a.b.c"})
    with pytest.raises(ConfigurationError, match="client_secret"):
        zspark._check_config(config)


def test_errors_and_reprs_never_show_the_secret(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("ZEROBUS_", "UNITY_")):
            monkeypatch.delenv(name)
    secret = "do-not-print-me-1234"
    good = {"table": "a.b.c", "endpoint": "https://x", "client_id": "i", "client_secret": secret,
            "unity_catalog_url": "https://u"}
    plan = zspark.ZerobusDataSource(good)._plan(None, False, "batch")
    assert secret not in repr(plan) and secret not in repr(zspark._ZerobusBatchWriter(plan))
    for change in ({"endpoint": "ftp://x"}, {"client_id": None}, {"unity_catalog_url": None},
                   {"max_inflight_requests": "many"}):
        options = {k: v for k, v in {**good, **change}.items() if v is not None}
        with pytest.raises(ConfigurationError) as raised:
            zspark.ZerobusDataSource(options)._plan(None, False, "batch")
        assert secret not in str(raised.value)


def test_overwrite_and_reserved_columns_are_refused(tmp_path):
    from pyspark.sql.types import LongType, StructField, StructType

    source = zspark.ZerobusDataSource({"table": "a.b.c", "endpoint": "https://x", "client_id": "i",
                                       "client_secret": "s", "unity_catalog_url": "https://u",
                                       "quarantine_path": str(tmp_path / "q")})
    with pytest.raises(ConfigurationError, match="only appends"):
        source.writer(StructType([StructField("id", LongType())]), True)
    with pytest.raises(ConfigurationError, match="_error: these names are reserved"):
        source.writer(StructType([StructField("_error", LongType())]), False)


# ---- the writer in this process (no Spark task) -----------------------------------------------


def test_writer_in_process_accounting_quarantine_and_no_secret_in_logs(env, tmp_path, caplog):
    """The task loop and the commit run here, with the package's logger at DEBUG: every count is
    exact, failed rows land in the quarantine with their error, and no log record, message,
    summary or repr holds the secret."""
    from pyspark.sql.types import LongType, StructField, StructType

    table = "main.spark.in_process"
    secret = env.emu.client_secret
    quarantine = tmp_path / "q"
    summary_path = tmp_path / "summary.json"
    options = {"table": table, **env.options(), "quarantine_path": str(quarantine),
               "summary_path": summary_path.as_uri(), "max_pending_batches": "2"}
    source = zspark.ZerobusDataSource(options)
    writer = source.writer(StructType([StructField("id", LongType(), False)]), False)
    writer = pickle.loads(pickle.dumps(writer))  # what Spark does on the way to a task

    n = 3000
    bad = {7, 1500, 2999}  # status out of the int column's range: conversion fails
    ids = pa.array(range(n), pa.int64())
    cols = expected_iot(ids)
    cols["status"] = pa.array([3_000_000_000 + i if i in bad else i % 8 for i in range(n)], pa.int64())
    full = pa.table({"id": ids, **cols})
    batches = full.to_batches(max_chunksize=500)
    caplog.set_level(logging.DEBUG, logger="arrow_zerobus_sdk_wrapper")
    message = writer.write(iter(batches))
    message = pickle.loads(pickle.dumps(message))  # what Spark does on the way back

    assert (message.rows, message.landed, message.failed, message.batches) == (n, n - 3, 3, 6)
    assert message.error_types == {"ConversionError": 3}
    assert message.quarantined == 3 and message.quarantine_file.startswith(writer._plan.write_id)
    stale = quarantine / f"{writer._plan.write_id}-part-00099-attempt-0.parquet"
    stale.write_bytes(b"left by a failed attempt")
    writer.commit([message])
    assert not stale.exists()
    summary = json.loads(summary_path.read_text())
    assert summary == zspark.last_write_summary()
    assert (summary["status"], summary["rows"], summary["landed"], summary["failed"]) == (
        "committed", n, n - 3, 3)
    assert summary["quarantine_files_removed"] == 1
    check_summary_invariants(summary)

    rows = pq.read_table(quarantine / message.quarantine_file)
    assert rows.column_names == full.column_names + list(zspark.QUARANTINE_COLUMNS)
    assert rows.column("id").to_pylist() == sorted(bad)
    assert rows.select(full.column_names).equals(full.take(sorted(bad)))
    for text in rows.column("_error").to_pylist():
        assert text.startswith("Conversion error: ") and "status" in text, text
    assert rows.column("_in_doubt").to_pylist() == [False] * 3
    landed = settled_table(env.emu, table)
    assert sorted(ids_of(landed)) == [i for i in range(n) if i not in bad]
    assert_iot_values(landed)

    # fail_on_error: the commit raises with the totals and the first error.
    failing = zspark.ZerobusDataSource({**options, "fail_on_error": "true"}).writer(None, False)
    with pytest.raises(zspark.RowsFailedError) as raised:
        failing.commit([message])
    text = str(raised.value)
    assert text.startswith("Rows failed: 3 of 3000 rows failed writing to main.spark.in_process "
                           "(ConversionError 3); 2997 landed"), text
    assert "Conversion error: " in text and str(quarantine) in text
    assert zspark.last_write_summary()["status"] == "failed"

    records = [r.getMessage() for r in caplog.records]
    assert any("zerobus write to main.spark.in_process committed: 3000 rows, 2997 landed" in r
               for r in records), records
    everything = "\n".join(records) + repr(writer) + repr(message) + text + summary_path.read_text()
    assert secret not in everything


def test_stream_writer_in_process_reports_by_table(env):
    """Without a checkpointLocation option, a query's micro-batches are found by table."""
    table = "main.spark.in_process"
    writer = zspark.ZerobusDataSource({"table": table, **env.options()}).streamWriter(None, False)
    ids = pa.array(range(10_000, 10_100), pa.int64())
    batch = pa.record_batch({"id": ids, **expected_iot(ids)})
    message = writer.write(iter([batch]))
    before = len(zspark.micro_batch_summaries(table=table))
    # The commit runs with a writer made again for it (as Spark does for every micro-batch).
    zspark.ZerobusDataSource({"table": table, **env.options()}).streamWriter(None, False) \
        .commit([message], 7)
    batches = zspark.micro_batch_summaries(table=table)
    assert len(batches) == before + 1
    last = batches[-1]
    assert (last["batch_id"], last["mode"], last["rows"], last["landed"]) == (7, "stream", 100, 100)
    assert last["write_id"] == message.write_id and last["checkpoint_location"] is None


# ---- Spark ------------------------------------------------------------------------------------


def test_one_million_iot_rows_land_exactly_once(env):
    """1,000,000 rows in 8 partitions: every id once, every value equal, and the job's totals
    equal the table."""
    table = "main.spark.iot"
    n = 1_000_000
    df = iot_frame(env.spark, 0, n, 8)
    started = time.monotonic()
    summary = env.write(df, table)
    seconds = time.monotonic() - started
    print(f"\n1M rows through Spark local[2]: {seconds:.1f} s ({n / seconds:,.0f} rows/s)")

    landed = settled_table(env.emu, table)
    assert landed.num_rows == n
    ids = landed.column("id")
    assert pc.count_distinct(ids).as_py() == n
    assert (pc.min(ids).as_py(), pc.max(ids).as_py()) == (0, n - 1)
    assert_iot_values(landed)

    check_summary_invariants(summary)
    assert summary["status"] == "committed" and summary["table"] == table
    assert (summary["rows"], summary["landed"], summary["failed"]) == (n, n, 0)
    assert summary["landed"] == landed.num_rows
    assert (summary["tasks"], summary["tasks_without_message"], summary["task_retries"]) == (8, 0, 0)
    assert (summary["replayed"], summary["possibly_duplicated"], summary["retries"]) == (0, 0, 0)
    assert summary["batches"] >= 8 and summary["streams_opened"] == 8
    stats = {t["name"]: t for t in env.emu.stats()["tables"]}[table]
    assert stats["rows"] == n


def test_rows_that_cannot_convert_go_to_the_quarantine(env, tmp_path):
    """Out-of-range values and a NULL in a NOT NULL column fail their rows only; the quarantine
    holds exactly those rows with their original columns and their error."""
    table = "main.spark.quarantine"
    n = 20_000
    quarantine = tmp_path / "quarantine"
    df = iot_frame(
        env.spark, 0, n, 4,
        status="CASE WHEN id % 1000 = 7 THEN 3000000000 + id ELSE id % 8 END AS status",
        ts="CASE WHEN id % 5000 = 123 THEN NULL "
           "ELSE timestamp_micros(1700000000000000 + id * 1000) END AS ts",
    )
    out_of_range = {i for i in range(n) if i % 1000 == 7}
    null_ts = {i for i in range(n) if i % 5000 == 123}
    bad = out_of_range | null_ts
    # Spark hands timestamps over in the session's time zone; they land as the same instants.
    zone = env.spark.conf.get("spark.sql.session.timeZone")
    env.spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        summary = env.write(df, table, quarantine_path=quarantine.as_uri())  # a pyarrow URI
    finally:
        env.spark.conf.set("spark.sql.session.timeZone", zone)

    check_summary_invariants(summary)
    assert (summary["rows"], summary["landed"], summary["failed"]) == (n, n - len(bad), len(bad))
    assert summary["error_types"] == {"ConversionError": len(bad)}
    assert summary["quarantined"] == len(bad)
    files = sorted(p.name for p in quarantine.iterdir())
    assert files == summary["quarantine_files"] and len(files) == 4  # every partition has bad rows

    landed = settled_table(env.emu, table)
    assert sorted(ids_of(landed)) == [i for i in range(n) if i not in bad]
    assert_iot_values(landed)

    rows = pq.read_table(quarantine).sort_by("id")
    assert rows.column("id").to_pylist() == sorted(bad)
    assert rows.column_names == df.columns + list(zspark.QUARANTINE_COLUMNS)
    original = df.filter(df.id.isin(sorted(bad))).toArrow().sort_by("id")
    assert rows.select(df.columns).cast(original.schema).equals(original)
    for row in rows.select(["id", "_error", "_in_doubt", "_partition"]).to_pylist():
        assert row["_error"].startswith("Conversion error: "), row
        assert ("status" if row["id"] in out_of_range else "ts") in row["_error"], row
        assert row["_in_doubt"] is False and row["_partition"] == row["id"] * 4 // n


def test_fail_on_error_fails_the_job(env, tmp_path):
    table = "main.spark.fail"
    n = 4_000
    df = iot_frame(env.spark, 0, n, 2,
                   status="CASE WHEN id = 1234 THEN 9999999999 ELSE id % 8 END AS status")
    with pytest.raises(Exception) as raised:
        env.write(df, table, fail_on_error="true", quarantine_path=str(tmp_path / "q"))
    text = str(raised.value)
    assert "Rows failed: 1 of 4000 rows failed writing to main.spark.fail (ConversionError 1); " \
           "3999 landed" in text, text[:2000]
    summary = zspark.last_write_summary()
    assert summary["status"] == "failed" and summary["failed"] == 1
    # Zerobus has no transactions: the good rows landed all the same, as the message says.
    assert settled_table(env.emu, table).num_rows == n - 1
    assert pq.read_table(tmp_path / "q").column("id").to_pylist() == [1234]


def test_only_append_mode_writes(env):
    df = iot_frame(env.spark, 0, 10, 1)
    writer = df.write.format("zerobus").option("table", "main.spark.fail")
    with pytest.raises(Exception, match="UNSUPPORTED_DATA_SOURCE_SAVE_MODE"):
        writer.save()  # Spark's default mode, ErrorIfExists
    with pytest.raises(Exception, match="format 'zerobus' only appends"):
        writer.mode("overwrite").save()


@pytest.mark.parametrize("fault", ["end_stream", "withheld_acks"])
def test_stream_faults_lose_nothing_and_count_replays(env, fault):
    """Streams that end or stop acknowledging during a Spark write: every row lands, the
    accounting is exact and the replays (the possible duplicates) are counted."""
    table = f"main.spark.faults_{fault}"
    n = 200_000
    df = iot_frame(env.spark, 0, n, 4)
    options = {"recovery_retries": "20", "retry_max_attempts": "10", "ack_timeout_ms": "1000"}
    if fault == "end_stream":
        env.emu.add_fault({"table": table, "times": 3,
                           "end_stream": {"after_requests": 3, "code": "UNAVAILABLE",
                                          "message": "6002 Stream timeout reached"}})
        release = None
    else:
        # No acks until 2.5 s after the first stream opened: the streams time out waiting for
        # acks, reconnect and replay what was not acknowledged.
        env.emu.add_fault({"table": table, "withhold_acks": True})
        release = release_when_streams_open(env.emu, table, hold_s=2.5)
    try:
        summary = env.write(df, table, **options)
    finally:
        if release is not None:
            release.join()
        env.emu.clear_faults()

    landed = settled_table(env.emu, table)
    check_summary_invariants(summary)
    assert (summary["rows"], summary["landed"], summary["failed"], summary["in_doubt"]) == (n, n, 0, 0)
    assert summary["task_retries"] == 0
    assert summary["replayed"] > 0, summary
    assert pc.count_distinct(landed.column("id")).as_py() == n  # nothing lost
    # A replayed request that had reached the server is in the table twice; one that had not
    # (sent just as the stream ended) is there once.
    duplicates = landed.num_rows - n
    assert 0 <= duplicates <= summary["possibly_duplicated"] == summary["replayed"]
    assert_iot_values(landed.group_by(landed.column_names).aggregate([]))


def test_spark_task_retries_are_counted(env):
    """A task that fails once is run again by Spark and sends its partition again
    (at-least-once): the retry is counted and its rows bound the possible duplicates."""
    from pyspark.sql import functions as F

    table = "main.spark.task_retry"
    n = 40_000

    @F.udf("long")
    def fail_once(i):
        from pyspark import TaskContext

        context = TaskContext.get()
        if context.partitionId() == 1 and context.attemptNumber() == 0 and i >= 39_000:
            raise RuntimeError("injected failure of the first attempt")
        return i

    df = iot_frame(env.spark, 0, n, 2).withColumn("id", fail_once("id"))
    summary = env.write(df, table)
    landed = settled_table(env.emu, table)
    check_summary_invariants(summary)
    assert (summary["rows"], summary["landed"], summary["failed"]) == (n, n, 0)
    assert (summary["tasks"], summary["task_retries"], summary["rows_in_retried_tasks"]) == (2, 1, n // 2)
    assert pc.count_distinct(landed.column("id")).as_py() == n
    assert 0 <= landed.num_rows - n <= summary["possibly_duplicated"]


def test_structured_streaming_reports_each_micro_batch(env, tmp_path):
    """The same source as a streaming sink: three micro-batches (one file each), each with its
    own accounting; a bad row in one of them goes to the quarantine with its batch id."""
    table = "main.spark.stream"
    source = tmp_path / "incoming"
    source.mkdir()
    per_file = 3000
    for k in range(3):
        status = ("CASE WHEN id = 4321 THEN 8000000000 ELSE id % 8 END AS status" if k == 1
                  else "id % 8 AS status")  # BIGINT in every file
        part = iot_frame(env.spark, k * per_file, (k + 1) * per_file, 1, status=status)
        pq.write_table(part.toArrow(), source / f"part-{k}.parquet")
    schema = env.spark.read.parquet(str(source)).schema
    checkpoint = str(tmp_path / "checkpoint")
    quarantine = tmp_path / "quarantine"
    summary_path = tmp_path / "batches.jsonl"
    query = (
        env.spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(source))
        .writeStream.format("zerobus")
        .option("table", table)
        .option("checkpointLocation", checkpoint)
        .option("quarantine_path", str(quarantine))
        .option("summary_path", str(summary_path))
        .options(**FAST)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(timeout=300)
    assert not query.isActive and query.exception() is None

    batches = zspark.micro_batch_summaries(checkpoint)
    assert [b["batch_id"] for b in batches] == [0, 1, 2]
    assert [json.loads(line) for line in summary_path.read_text().splitlines()] == batches
    for b in batches:
        check_summary_invariants(b)
        assert 0 < b["seconds"] < 300
        assert (b["mode"], b["status"], b["table"], b["rows"]) == ("stream", "committed", table, per_file)
        assert b["checkpoint_location"] == checkpoint
    assert [(b["landed"], b["failed"]) for b in batches] == [(3000, 0), (2999, 1), (3000, 0)]
    files = batches[1]["quarantine_files"]
    assert len(files) == 1 and "-batch-1-part-" in files[0]
    assert pq.read_table(quarantine / files[0]).column("id").to_pylist() == [4321]
    landed = settled_table(env.emu, table)
    assert sorted(ids_of(landed)) == [i for i in range(3 * per_file) if i != 4321]
    assert_iot_values(landed)

    # fail_on_error: the query stops at the micro-batch with a failed row.
    checkpoint = str(tmp_path / "checkpoint-strict")
    query = (
        env.spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(source))
        .writeStream.format("zerobus")
        .option("table", table)
        .option("checkpointLocation", checkpoint)
        .option("fail_on_error", "true")
        .options(**FAST)
        .trigger(availableNow=True)
        .start()
    )
    with pytest.raises(Exception, match="Rows failed: 1 of 3000 rows failed"):
        query.awaitTermination(timeout=300)
    assert [(b["batch_id"], b["status"]) for b in zspark.micro_batch_summaries(checkpoint)] == [
        (0, "committed"), (1, "failed")]


def test_the_secret_is_not_in_plans_ui_events_or_logs(env):
    """A write with the secret as an option, Spark's log at INFO: the event log (what the UI
    shows: plans, SQL executions, jobs, environment) and Spark's log never hold it."""
    table = "main.spark.secret"
    secret = env.emu.client_secret
    env.spark.sparkContext.setLogLevel("INFO")
    try:
        summary = env.write(iot_frame(env.spark, 0, 5000, 2), table)
        # A write that fails: rows with errors, an exception on the driver.
        with pytest.raises(Exception) as raised:
            env.write(iot_frame(env.spark, 0, 10, 1), table, client_secret=secret[::-1],
                      fail_on_error="true", retry_max_attempts="1")
    finally:
        env.spark.sparkContext.setLogLevel("WARN")
    assert summary["landed"] == 5000
    assert "Authentication error" in str(raised.value) or "invalid_client" in str(raised.value)
    events = "".join(Path(p).read_text() for p in glob.glob(str(env.event_dir / "**" / "*"),
                                                             recursive=True) if Path(p).is_file())
    assert "AppendData zerobus" in events  # the plans of these writes are in it
    log = env.spark_log.read_text()
    assert "AppendDataExec" in log  # Spark's INFO lines about these writes are in it
    for text in (events, log, json.dumps(zspark.last_write_summary()), str(raised.value)):
        assert secret not in text
        assert secret[::-1] not in text


# ---- documentation and example ----------------------------------------------------------------


def python_blocks(markdown: str) -> list:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_docs_spark_md_examples_run(env, capsys):
    """Every Python block of docs/spark.md, in order, in one namespace, against this session
    (whose environment holds the emulator's ZEROBUS_* variables, as the docs say)."""
    blocks = python_blocks((REPO / "docs" / "spark.md").read_text())
    assert len(blocks) >= 4
    namespace = {"__name__": "docs_spark_md"}
    for block in blocks:
        exec(compile(block, "docs/spark.md", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    # The outputs the page shows are the ones printed.
    shown = re.findall(r"prints\n\n```\n(.*?)```", (REPO / "docs" / "spark.md").read_text(), flags=re.S)
    assert len(shown) == 4
    for text in shown:
        assert text in out, (text, out)
    landed = settled_table(env.emu, "main.default.iot")
    # What the blocks printed matches the table.
    assert "rows=100000 landed=100000 failed=0" in out, out
    assert "landed=990 failed=10" in out, out
    assert "Rows failed: 10 of 1000 rows failed writing to main.default.iot (ConversionError 10); " \
           "990 landed\nfailed\n" in out, out
    assert re.search(r"micro-batch 0: rows=1000 landed=1000 failed=0", out), out
    assert landed.num_rows == 100_000 + 100_000 + 990 + 990 + 1000
    assert pc.count_distinct(landed.column("id")).as_py() == landed.num_rows
    # Columns of the table that the DataFrame lacks are NULL.
    first = landed.filter(pc.less(landed.column("id"), 100_000))
    assert first.num_rows == 100_000 and first.column("humidity").null_count == 100_000


def test_example_spark_write_runs():
    """examples/spark_write.py: its own LocalZerobus and Spark session; checks what landed."""
    env_vars = {k: v for k, v in os.environ.items()
                if not k.startswith(("ZEROBUS_", "UNITY_CATALOG"))}
    env_vars["PYSPARK_PYTHON"] = sys.executable
    done = subprocess.run([sys.executable, str(REPO / "examples" / "spark_write.py")],
                          env=env_vars, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "example OK" in done.stdout, done.stdout


def test_transport_options_from_spark_text(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("ZEROBUS_", "UNITY_", "DEBUG_", "OTLP_", "RETRY_")):
            monkeypatch.delenv(name)
    config, _ = zspark._resolve({"table": "a.b.c", "endpoint": "http://localhost:1",
                                 "transport": "ARROW_FLIGHT", "ipc_compression": "lz4_frame"})
    assert (config.transport, config.ipc_compression) == ("arrow_flight", "lz4_frame")
    for name, value, detail in [("transport", "flight", "protobuf, json, arrow_flight"),
                                ("ipc_compression", "gzip", "none, lz4_frame, zstd")]:
        with pytest.raises(ConfigurationError) as excinfo:
            zspark._resolve({"table": "a.b.c", "endpoint": "http://localhost:1", name: value})
        assert f"{name}: '{value}' is not one of {detail}" in str(excinfo.value)
