"""Runs every examples/python_*.py as its own process, as a user would, and checks what it says.

Each example starts a LocalZerobus (the installed package's zerobus-emulator), sends data, reads
the table back, checks its own counts and prints "OK" last; a failed check exits non-zero.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT_S = 120

# Lines each example must print (substrings), in this order.
EXPECTED = {
    "python_quickstart.py": [
        "sent 1000 rows: 1000 successful, 0 failed",
        "TransmissionResult(success=True, total_rows=1000, successful_count=1000, failed_count=0",
        "read back 1000 rows from main.iot.readings",
        "OK",
    ],
    "python_asyncio.py": [
        "64 concurrent sends in ",
        ": 32000 rows delivered, 0 failed",
        "wrapper stats: batches=64 rows_successful=32000",
        "read back 32000 rows from main.shop.orders",
        "OK",
    ],
    "python_quarantine.py": [
        "first send: 1992 of 2000 rows delivered, 8 failed, partial success: True",
        "errors by type: {'ConversionError': [17, 267, 517, 767, 1017, 1267, 1517, 1767]}",
        "row 17: Conversion error: column 'energy_wh' row 17: value 18446744073709551615 out of "
        "range for int64",
        "quarantined 8 rows to ",
        "quarantine file: 8 rows, columns ['reading_id', 'meter', 'energy_wh', '_row_index', "
        "'_error', '_in_doubt']",
        "re-send after the fix: 8 of 8 rows delivered, 0 failed",
        "read back 2000 rows from main.energy.meter_readings; 8 with energy_wh NULL",
        "OK",
    ],
    "python_polars_duckdb.py": [
        "polars DataFrame: 5000 of 5000 rows delivered, 0 failed",
        "DuckDB relation: 20000 of 20000 rows delivered, 0 failed",
        "read back 25000 rows from main.mobility.trips",
        "started_at timestamp[us, tz=UTC]",
        "OK",
    ],
}


def test_every_example_is_checked():
    found = sorted(path.name for path in EXAMPLES.glob("python_*.py"))
    assert found == sorted(EXPECTED), "each examples/python_*.py needs its expected lines here"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, tmp_path):
    try:
        completed = subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            cwd=tmp_path,  # examples must not depend on the working directory
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{name} did not finish within {TIMEOUT_S} s; output so far:\n{error.stdout}")
    output = completed.stdout
    report = f"{name} exit code {completed.returncode}\nstdout:\n{output}\nstderr:\n{completed.stderr}"
    assert completed.returncode == 0, report
    position = 0
    for expected in EXPECTED[name]:
        found = output.find(expected, position)
        assert found >= 0, f"missing (in order) {expected!r}\n{report}"
        position = found + len(expected)
    assert output.rstrip().endswith("OK"), report
    assert "Traceback" not in completed.stderr, report
