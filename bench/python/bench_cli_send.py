"""cli_send_parquet: `zerobus-arrow send` on a >= 2 GB Parquet file against the wrapper itself.

The benchmark writes a Parquet file of `iot` rows (the schema of bench_python_send.py: id,
timestamp, device id, dictionary-encoded site, four doubles, status, alarm) in row groups of
1,048,576 rows, so generating it stays in bounded memory. It starts `zerobus-emulator --sink null
--no-fsync` with one OAuth client, then, interleaved round by round on that emulator:

  cli      `zerobus-arrow send FILE` (default settings: 64k-row batches, 8 in flight, one
           stream), timed from start to exit (reading the file, encoding, sending, acks); its
           peak RSS comes from wait4() on the child.
  wrapper  bench/python/cpp_send_peer FILE.parquet pipelined: reads every batch of the same file
           (same 64k-row batches) into memory first, then SendBatchAsync for all of them and
           waits for every result; only the sends are timed.

rows_per_s is the CLI's median, ratio_vs_wrapper the median over rounds of cli / wrapper
(target >= 0.8), peak_rss_mb the CLI's largest peak RSS (target < 512 MB: streaming in bounded
memory, while the file is several times that). The file is removed at the end.

Environment: AZ_CLI_BENCH_GB (2: the file's size on disk), AZ_CLI_BENCH_ROUNDS (2),
AZ_CLI_BENCH_DIR (where the file goes; default the temp directory), AZ_BUILD_DIR (build).
Ends with one JSON line: {"name":"cli_send_parquet", ...}.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
TABLE = "main.bench.iot_cli"
ROW_GROUP = 1 << 20
SCHEMA = pa.schema([
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
DEVICES = pa.array([f"device-{i:05d}" for i in range(5000)])
SITES = pa.array(["plant-a", "plant-b", "plant-c", "lab"])


def iot_table(first_id: int, n: int, rng: np.random.Generator) -> pa.Table:
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    columns = [
        pa.array(ids),
        pa.array(1_700_000_000_000_000 + ids * 1000, pa.timestamp("us", tz="UTC")),
        pc.take(DEVICES, pa.array(ids % 5000)),
        pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, n, dtype=np.int32)), SITES),
        pa.array(rng.uniform(-20, 45, n)),
        pa.array(rng.uniform(0, 100, n)),
        pa.array(rng.uniform(950, 1050, n)),
        pa.array(rng.uniform(3.0, 3.6, n)),
        pa.array(rng.integers(0, 8, n, dtype=np.int32)),
        pa.array(rng.random(n) < 0.01),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def write_parquet(path: Path, target_bytes: int) -> int:
    """Appends 1 Mi-row row groups until the file is at least target_bytes; returns the rows."""
    rng = np.random.default_rng(42)
    rows = 0
    with pq.ParquetWriter(path, SCHEMA, compression="snappy") as writer:
        while True:
            writer.write_table(iot_table(rows, ROW_GROUP, rng), row_group_size=ROW_GROUP)
            rows += ROW_GROUP
            # The bytes written so far (the footer adds a few kB at the end).
            if path.stat().st_size >= target_bytes:
                break
    return rows


def start_emulator(binary: Path, client_id: str, secret: str) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen([str(binary), "--sink", "null", "--no-fsync", "--quiet",
                             "--client", f"{client_id}:{secret}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""
    m = re.search(r"listening grpc=(\S+) http=(\S+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"zerobus-emulator did not start: {line!r}")
    return proc, f"http://{m.group(1)}", f"http://{m.group(2)}"


def run_measured(args: list[str], env: dict, log: Path) -> tuple[int, float, float]:
    """Runs a child; returns (exit code, wall seconds, its peak RSS in MB) via wait4."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return proc.returncode, seconds, usage.ru_maxrss / 1024


def main() -> int:
    gb = float(os.environ.get("AZ_CLI_BENCH_GB", "2"))
    rounds = int(os.environ.get("AZ_CLI_BENCH_ROUNDS", "2"))
    build = Path(os.environ.get("AZ_BUILD_DIR", REPO / "build")).resolve()
    cli = build / "cli" / "zerobus-arrow"
    peer = build / "bench" / "python" / "cpp_send_peer"
    emulator = build / "zerobus-emulator"
    for binary in (cli, peer, emulator):
        if not binary.exists():
            print(f"{binary} not found: build first (make build)", file=sys.stderr)
            return 1
    target_bytes = int(gb * 1e9)
    work_parent = Path(os.environ.get("AZ_CLI_BENCH_DIR", tempfile.gettempdir()))
    free = shutil.disk_usage(work_parent).free
    if free < 2 * target_bytes:
        print(f"bench_cli_send: {work_parent} has {free / 1e9:.1f} GB free, needs at least "
              f"{2 * target_bytes / 1e9:.1f} GB (2x the {gb:g} GB file; set AZ_CLI_BENCH_DIR or "
              f"AZ_CLI_BENCH_GB)", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="bench-cli-send.", dir=work_parent))
    emu = None
    try:
        path = work / "iot.parquet"
        start = time.perf_counter()
        rows = write_parquet(path, target_bytes)
        file_bytes = path.stat().st_size
        print(f"wrote {path}: {file_bytes / 1e9:.2f} GB, {rows:,} rows, "
              f"{pq.ParquetFile(path).metadata.num_row_groups} row groups in "
              f"{time.perf_counter() - start:.1f} s", flush=True)

        client_id, secret = "bench-cli", secrets.token_hex(16)
        emu, grpc_url, http_url = start_emulator(emulator, client_id, secret)
        env = dict(os.environ, ZEROBUS_CLIENT_SECRET=secret, ZEROBUS_ENDPOINT=grpc_url,
                   ZEROBUS_TABLE_NAME=TABLE, ZEROBUS_CLIENT_ID=client_id,
                   UNITY_CATALOG_URL=http_url)
        report = work / "report.json"
        cli_args = [str(cli), "send", str(path), "--endpoint", grpc_url, "--unity-catalog-url",
                    http_url, "--client-id", client_id, "--table", TABLE, "--progress", "lines",
                    "--report-json", str(report)]
        cli_rates, peer_rates, rss, peer_rss = [], [], [], []
        for r in range(rounds):
            code, seconds, peak = run_measured(cli_args, env, work / "cli.log")
            if code != 0:
                raise RuntimeError(f"zerobus-arrow send exited {code}: "
                                   f"{(work / 'cli.log').read_text()[-2000:]}")
            total = json.loads(report.read_text())["total"]
            if total["rows"] != rows or total["landed"] != rows:
                raise RuntimeError(f"zerobus-arrow send: {total} for a file of {rows} rows")
            cli_rates.append(rows / seconds)
            rss.append(peak)

            code, _, peak = run_measured([str(peer), str(path), "pipelined"], env, work / "peer.log")
            text = (work / "peer.log").read_text()
            if code != 0:
                raise RuntimeError(f"cpp_send_peer exited {code}: {text[-2000:]}")
            peer_result = json.loads(text.strip().splitlines()[-1])
            if peer_result["rows"] != rows:
                raise RuntimeError(f"cpp_send_peer sent {peer_result['rows']} of {rows} rows")
            peer_rates.append(float(peer_result["rows_per_s"]))
            peer_rss.append(peak)
            print(f"round {r + 1}: cli {cli_rates[-1] / 1e6:.2f} M rows/s ({seconds:.1f} s wall, "
                  f"peak RSS {rss[-1]:.0f} MB, send phase {total['seconds']:.1f} s); wrapper "
                  f"{peer_rates[-1] / 1e6:.2f} M rows/s (sends only, peak RSS "
                  f"{peer_rss[-1]:.0f} MB)", flush=True)
    finally:
        if emu is not None:
            emu.send_signal(signal.SIGTERM)
            try:
                emu.wait(timeout=20)
            except subprocess.TimeoutExpired:
                emu.kill()
        shutil.rmtree(work, ignore_errors=True)

    ratios = [c / p for c, p in zip(cli_rates, peer_rates)]
    result = {
        "name": "cli_send_parquet",
        "rows": rows,
        "file_gb": round(file_bytes / 1e9, 3),
        "rounds": rounds,
        "rows_per_s": statistics.median(cli_rates),
        "mb_per_s": round(statistics.median(cli_rates) * file_bytes / rows / 1e6, 1),
        "wrapper_rows_per_s": statistics.median(peer_rates),
        "ratio_vs_wrapper": round(statistics.median(ratios), 3),
        "peak_rss_mb": round(max(rss), 1),
        "wrapper_peak_rss_mb": round(max(peer_rss), 1),
        "targets": {"peak_rss_mb": "< 512", "ratio_vs_wrapper": ">= 0.8"},
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
