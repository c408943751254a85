"""CI smoke run of `benchmarks/run.py`: every scenario runs at a tiny size and prints its row.

No timing is asserted (a loaded machine must pass); the figures that do not depend on speed are exact.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(1200)
REPO = Path(__file__).resolve().parents[2]


def test_benchmark_suite_runs_at_smoke_size(warehouse):
    if warehouse != "duckdb":
        pytest.skip("the benchmark runs on DuckDB")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = {line.split("  ")[0]: line for line in proc.stdout.splitlines()}
    for figure in ("row checks", "writes per changed row", "creates/s, test mode", "plan RSS, first sync"):
        assert any(k.startswith(figure) for k in lines), (figure, proc.stdout)
    assert lines["writes per changed row"].split()[4] == "1.00"
    assert lines["requests on a no-op run"].split()[5] == "0"
    assert lines["reads, by: email syncs of the chain"].split()[6] == "0"
    assert lines["reads, match 10 emails vs 150 customers"].split()[7] == "11"
