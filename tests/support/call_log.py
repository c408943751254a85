"""Where the suite's time goes: one JSON line per tool call, when DSS_TEST_CALL_LOG names a directory.

    DSS_TEST_CALL_LOG=/tmp/calls pytest tests/integration/test_customers.py
    python -m tests.support.call_log /tmp/calls      # calls, wall and CPU per kind of call

A line says which test made the call (PYTEST_CURRENT_TEST), its kind (`dbt build`, `sync run` in
this process, `sync-subprocess run`, ...), wall seconds and CPU seconds (a subprocess's user+sys as
reported on its exit; an in-process call's CPU of this whole process, emulator threads included).
Off (no file, no cost beyond one environment look-up) unless the variable is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ENV = "DSS_TEST_CALL_LOG"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def logged(kind: str, subprocess_: bool) -> Iterator[None]:
    """Time the call in the block under `kind`; a no-op when DSS_TEST_CALL_LOG is unset."""
    directory = os.environ.get(ENV)
    if not directory:
        yield
        return
    cpu = _children_cpu if subprocess_ else time.process_time
    wall0, cpu0 = time.perf_counter(), cpu()
    try:
        yield
    finally:
        line = {
            "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0],
            "kind": kind,
            "wall": round(time.perf_counter() - wall0, 3),
            "cpu": round(cpu() - cpu0, 3),
        }
        path = Path(directory) / f"calls-{os.getpid()}.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def summarize(directory: Path) -> str:
    """Calls, wall and CPU seconds per kind, and the number of tests that made them."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    tests: dict[str, set[str]] = defaultdict(set)
    for path in sorted(directory.glob("calls-*.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            entry = totals[line["kind"]]
            entry[0] += 1
            entry[1] += line["wall"]
            entry[2] += line["cpu"]
            tests[line["kind"]].add(line["test"])
    rows = [f"{'kind':32} {'calls':>6} {'tests':>6} {'wall s':>9} {'cpu s':>9} {'cpu/call':>8}"]
    for kind, (calls, wall, cpu) in sorted(totals.items(), key=lambda kv: -kv[1][2]):
        rows.append(f"{kind:32} {calls:6d} {len(tests[kind]):6d} {wall:9.1f} {cpu:9.1f} {cpu / calls:8.2f}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1])))
