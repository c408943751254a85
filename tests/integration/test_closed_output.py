"""A reader that leaves (`dbt-stripe-sync run | head -1`) neither stops a run nor hides its outcome.

Before, the first write to a closed stdout raised BrokenPipeError wherever the run was: the command
stopped there and exited 0 — a run blocked by its delete guard, or one that could not reach Stripe,
looked like a pass to the CI job piping it, and `--output` was never written (outside attack 13 #3).
Now output to a closed pipe is dropped and the command ends as it would have: its report written,
its exit code its own. The pipe is closed before the program starts, so every write to it fails:
no race with a reader."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.dbt_project import BIN, api_writes

pytestmark = pytest.mark.timeout(600)


def _run_into_closed_pipe(project, *args: str) -> subprocess.CompletedProcess[bytes]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        return subprocess.run(
            [
                str(BIN / "dbt-stripe-sync"),
                *args,
                "--project-dir",
                str(project.path),
                "--profiles-dir",
                str(project.path),
            ],
            env=project.env,
            cwd=project.path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=300,
        )
    finally:
        os.close(write_end)


def test_a_run_whose_reader_left_finishes_and_writes_its_report(dbt_project, warehouse, tmp_path):
    project, emu = dbt_project, dbt_project.emulator
    project.build()
    report = tmp_path / "report.json"
    emu.clear_requests()
    done = _run_into_closed_pipe(project, "run", "-s", "stripe_customers", "--output", str(report))
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    rows = project.read_seed("raw_customers")
    creates = [w for w in api_writes(emu.requests()) if w["path"] == "/v1/customers"]
    assert len(creates) == len(rows)
    assert json.loads(report.read_text())["status"] == "success"
    assert {e["status"] for e in project.ledger("stripe_customers").values()} == {"synced"}


def test_a_blocked_run_whose_reader_left_still_fails(dbt_project, warehouse, tmp_path):
    project, emu = dbt_project, dbt_project.emulator
    assert project.sync("-s", "stripe_customers").returncode == 0
    rows = project.read_seed("raw_customers")
    project.write_seed("raw_customers", rows[:1])  # most rows leave: the delete guard blocks the sync
    project.build()
    report = tmp_path / "report.json"
    emu.clear_requests()
    blocked = _run_into_closed_pipe(project, "run", "-s", "stripe_customers", "--output", str(report))
    assert blocked.returncode == 1, blocked.stderr.decode()[-3000:]
    assert api_writes(emu.requests()) == []
    assert json.loads(report.read_text())["status"] != "success"
