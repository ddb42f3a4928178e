"""python_send_iot: the Python package's send_batch against the C++ wrapper doing the same.

The `iot` rows (the schema of bench/e2e, 64k-row batches) go into the emulator's null sink over
loopback with OAuth, one stream, in four ways, interleaved round by round on the same emulator:
  python pipelined   results = [w.send_batch(b) for b in batches], then every result read
  python awaited     each result read before the next send
  cpp pipelined      ZerobusWrapper::SendBatchAsync for every batch, then every result
  cpp awaited        ZerobusWrapper::SendBatch per batch
The C++ runs are bench/python/cpp_send_peer (a separate process reading the same batches from an
Arrow IPC file into memory first; only the sends are timed, as here). ratio_vs_cpp is the median
over rounds of python pipelined / cpp pipelined. peak_rss_mb is this Python process's.

Environment: AZ_PY_BATCHES (32), AZ_PY_ROUNDS (3), AZ_BUILD_DIR (build).
Ends with one JSON line: {"name":"python_send_iot", ...}.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

import arrow_zerobus_sdk_wrapper as az
from arrow_zerobus_sdk_wrapper.testing import LocalZerobus

BATCH_ROWS = 64 * 1024
TABLE = "main.bench.iot_python"
REPO = Path(__file__).resolve().parents[2]


def iot_batch(first_id: int, rng: random.Random) -> pa.RecordBatch:
    n = BATCH_ROWS
    sites = pa.array(["plant-a", "plant-b", "plant-c", "lab"])
    schema = pa.schema([
        pa.field("id", pa.int64(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("device_id", pa.utf8()),
        pa.field("site", pa.dictionary(pa.int32(), pa.utf8())),
        pa.field("temperature", pa.float64()),
        pa.field("humidity", pa.float64()),
        pa.field("pressure", pa.float64()),
        pa.field("voltage", pa.float64()),
        pa.field("status", pa.int32()),
        pa.field("alarm", pa.bool_()),
    ])
    ids = range(first_id, first_id + n)
    columns = [
        pa.array(ids, pa.int64()),
        pa.array([1_700_000_000_000_000 + i * 1000 for i in ids], pa.timestamp("us", tz="UTC")),
        pa.array([f"device-{i % 5000:05d}" for i in ids]),
        pa.DictionaryArray.from_arrays(pa.array([rng.randrange(4) for _ in ids], pa.int32()), sites),
        pa.array([rng.uniform(-20, 45) for _ in ids]),
        pa.array([rng.uniform(0, 100) for _ in ids]),
        pa.array([rng.uniform(950, 1050) for _ in ids]),
        pa.array([rng.uniform(3.0, 3.6) for _ in ids]),
        pa.array([rng.randrange(8) for _ in ids], pa.int32()),
        pa.array([rng.random() < 0.01 for _ in ids]),
    ]
    return pa.record_batch(columns, schema=schema)


def python_run(config: az.WrapperConfiguration, batches, mode: str) -> float:
    with az.ZerobusWrapper(config) as w:
        warm = w.send_batch(batches[0])
        assert warm.failed_count == 0, warm
        rows = successful = 0
        start = time.perf_counter()
        if mode == "pipelined":
            results = [w.send_batch(b) for b in batches]
            for r in results:
                rows += r.total_rows
                successful += r.successful_count
        else:
            for b in batches:
                r = w.send_batch(b)
                rows += r.total_rows
                successful += r.successful_count
        seconds = time.perf_counter() - start
    assert successful == rows, f"{rows - successful} of {rows} rows failed"
    return rows / seconds


def cpp_run(peer: Path, ipc_path: Path, env: dict, mode: str) -> float:
    out = subprocess.run([str(peer), str(ipc_path), mode], env=env, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"cpp_send_peer {mode} failed: {out.stderr.strip()}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rows_per_s"])


def main() -> int:
    n_batches = int(os.environ.get("AZ_PY_BATCHES", "32"))
    rounds = int(os.environ.get("AZ_PY_ROUNDS", "3"))
    build = Path(os.environ.get("AZ_BUILD_DIR", REPO / "build"))
    peer = build / "bench" / "python" / "cpp_send_peer"
    if not peer.exists():
        print(f"{peer} not found: build first (make build)", file=sys.stderr)
        return 1
    rng = random.Random(42)
    batches = [iot_batch(i * BATCH_ROWS, rng) for i in range(n_batches)]
    rows = n_batches * BATCH_ROWS
    figures = {k: [] for k in ("py_pipelined", "py_awaited", "cpp_pipelined", "cpp_awaited")}
    with tempfile.TemporaryDirectory() as tmp, LocalZerobus(sink="null") as emu:
        ipc_path = Path(tmp) / "iot.arrow"
        with ipc.new_file(ipc_path, batches[0].schema) as writer:
            for b in batches:
                writer.write_batch(b)
        config = emu.config(TABLE)
        env = dict(os.environ, ZEROBUS_ENDPOINT=emu.endpoint, ZEROBUS_TABLE_NAME=TABLE,
                   ZEROBUS_CLIENT_ID=emu.client_id, ZEROBUS_CLIENT_SECRET=emu.client_secret,
                   UNITY_CATALOG_URL=emu.unity_catalog_url)
        for r in range(rounds):
            figures["py_pipelined"].append(python_run(config, batches, "pipelined"))
            figures["cpp_pipelined"].append(cpp_run(peer, ipc_path, env, "pipelined"))
            figures["py_awaited"].append(python_run(config, batches, "awaited"))
            figures["cpp_awaited"].append(cpp_run(peer, ipc_path, env, "awaited"))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1] / 1e6:.2f} M rows/s"
                                                 for k, v in figures.items()), flush=True)
    ratios = [p / c for p, c in zip(figures["py_pipelined"], figures["cpp_pipelined"])]
    ratios_awaited = [p / c for p, c in zip(figures["py_awaited"], figures["cpp_awaited"])]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "name": "python_send_iot",
        "rows": rows,
        "rounds": rounds,
        "rows_per_s": statistics.median(figures["py_pipelined"]),
        "awaited_rows_per_s": statistics.median(figures["py_awaited"]),
        "cpp_rows_per_s": statistics.median(figures["cpp_pipelined"]),
        "cpp_awaited_rows_per_s": statistics.median(figures["cpp_awaited"]),
        "ratio_vs_cpp": statistics.median(ratios),
        "ratio_vs_cpp_awaited": statistics.median(ratios_awaited),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "input_mb": round(sum(b.nbytes for b in batches) / 2**20, 1),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)
