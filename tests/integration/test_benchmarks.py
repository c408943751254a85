"""CI smoke run of `benchmarks/run.py`: every scenario runs at a tiny size and prints its rows.

One test per scenario (`run.py --smoke --only ...`), so the scenarios run side by side on the test
workers instead of one after another; together they cover every scenario of the script. No timing is
asserted (a loaded machine must pass); the figures that do not depend on speed are exact.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

# scenarios (as run.py names them) -> the figures each must print. "fixed cost" times no-op runs of
# the project "writes and reads" synced, so the two run together.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "planning": ("row checks", "plan 2,000 new rows"),
    "writes and reads,fixed cost": (
        "writes per changed row",
        "requests on a no-op run",
        "reads, by: email syncs of the chain",
        "reads, match 10 emails vs 150 customers",
        "reads, 3 subscription items updates",
        "no-op run wall time",
        "no-op run CPU time",
    ),
    "throughput": (
        "creates/s, test mode",
        "creates/s, live limits, one endpoint",
        "creates/s, live limits, 4 independent syncs",
    ),
    "connect": ("Connect: 200 creates, 10 accounts x 20 vs 1 account",),
    "memory and diff": (
        "plan RSS, first sync",
        "plan time",
        "plan CPU time",
        "plan RSS, 2,000 rows 1% changed",
    ),
    "run memory": ("run RSS, first sync of 100 rows, streamed",),
}
EXACT: dict[str, dict[str, str]] = {
    "writes and reads,fixed cost": {
        "writes per changed row": "1.00",
        "requests on a no-op run": "0",
        "reads, by: email syncs of the chain": "0",
        "reads, match 10 emails vs 150 customers": "11",
        "reads, 3 subscription items updates": "0",
    }
}


def test_every_scenario_is_smoke_tested():
    """A scenario added to run.py without a smoke test here fails this test."""
    source = (REPO / "benchmarks" / "run.py").read_text()
    steps = set(re.findall(r'\(\s*"([a-z ]+)",\s*lambda: ', source))
    covered = {name for group in SCENARIOS for name in group.split(",")}
    assert steps and steps == covered, (steps, covered)


@pytest.mark.parametrize("scenarios", list(SCENARIOS))
def test_benchmark_scenario_runs_at_smoke_size(warehouse, scenarios):
    if warehouse != "duckdb":
        pytest.skip("the benchmark runs on DuckDB")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--only", scenarios],
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = {
        cells[0]: cells[1]
        for cells in (re.split(r"\s{2,}", line) for line in proc.stdout.splitlines())
        if len(cells) > 1
    }
    for figure in SCENARIOS[scenarios]:
        assert any(k.startswith(figure) for k in values), (figure, proc.stdout)
    for figure, value in EXACT.get(scenarios, {}).items():
        assert values[figure] == value, (figure, proc.stdout)
