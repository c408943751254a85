"""CI smoke run of `benchmarks/run.py`: every scenario runs at a tiny size and prints its row.

No timing is asserted (a loaded machine must pass); the figures that do not depend on speed are exact.
"""

from __future__ import annotations

import re
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
    values = {
        cells[0]: cells[1]
        for cells in (re.split(r"\s{2,}", line) for line in proc.stdout.splitlines())
        if len(cells) > 1
    }
    figures = (
        "row checks",
        "writes per changed row",
        "creates/s, test mode",
        "plan RSS, first sync",
        "plan CPU time",
    )
    for figure in figures:
        assert any(k.startswith(figure) for k in values), (figure, proc.stdout)
    assert values["writes per changed row"] == "1.00"
    assert values["requests on a no-op run"] == "0"
    assert values["reads, by: email syncs of the chain"] == "0"
    assert values["reads, match 10 emails vs 150 customers"] == "11"
    assert values["reads, 3 subscription items updates"] == "0"
