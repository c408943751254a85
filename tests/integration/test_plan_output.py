"""Operator findings F5, F7, F9 (attack report, issue #11/#12), on DuckDB and PostgreSQL through the
real CLI: `plan` counts rows still rejected by earlier runs as the run will (and exits 1), `plan
--output` is the run report's shape with the whole plan in it, and in a Connect project the changelog,
`history --key` and the plan file say which account each operation went to."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_changelog import _write_sql
from tests.integration.test_connect import EAST, NORTH, SOUTH, market, marketplace_template  # noqa: F401
from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(300)
SEL = ("-s", "stripe_customers")
REPORT_KEYS = {"run_id", "status", "started_at", "finished_at", "syncs"}
SYNC_KEYS = {"model", "object", "status", "counts", "api_calls", "duration_s", "message", "rejected_rows"}


def test_plan_counts_rows_still_rejected_by_earlier_runs_and_exits_1(dbt_project, tmp_path):
    """F5: the run counts a row rejected earlier (data unchanged) as rejected and exits 1; so must plan."""
    rows = dbt_project.read_seed("raw_customers")
    rows[1]["email"] = "grace-at-example.com"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    assert dbt_project.sync("run", *SEL).returncode == 1
    emu = dbt_project.emulator
    emu.clear_requests()

    plan_file = tmp_path / "plan.json"
    plan = dbt_project.sync("plan", *SEL, "--output", str(plan_file))
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "stripe_customers -> Stripe customer (upsert): 1 reject; 4 unchanged of 5 rows" in plan.stdout
    assert "nothing to do" not in plan.stdout
    assert "reject   row 2  ((rejected earlier) email: 'grace-at-example.com'" in plan.stdout
    (planned,) = json.loads(plan_file.read_text())["syncs"]
    assert planned["counts"]["rejected"] == 1 and planned["counts"]["unchanged"] == 4
    assert [r["key"] for r in planned["rejected_rows"]] == ["2"]
    assert emu.requests() == []  # bound rows need no look-up; nothing is written

    report_file = tmp_path / "run.json"
    ran = dbt_project.sync("run", *SEL, "--output", str(report_file))
    assert ran.returncode == 1
    (done,) = json.loads(report_file.read_text())["syncs"]
    assert done["counts"] == planned["counts"] and done["status"] == planned["status"] == "partial"
    assert api_writes(emu.requests()) == []


def test_plan_output_is_the_run_report_shape_with_the_whole_plan(dbt_project, tmp_path):
    """F9: one parser reads `plan --output` and `run --output`; the plan rows stay in the file."""
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "run.json"
    plan = dbt_project.sync("plan", *SEL, "--output", str(plan_file), "--sample", "2")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    data = json.loads(plan_file.read_text())
    assert REPORT_KEYS | {"command"} <= set(data) and data["command"] == "plan"
    assert data["status"] == "success"
    (sync,) = data["syncs"]
    assert set(sync) >= SYNC_KEYS and sync["counts"]["created"] == 5
    assert sync["actions"]["create"] == 5 and sync["model_rows"] == 5 and sync["mode"] == "upsert"
    assert [r["key"] for r in sync["rows"]] == ["1", "2", "3", "4", "5"]
    assert [r["key"] for r in sync["sample"]] == ["1", "2"]
    assert all(r["action"] == "create" and r["account"] is None for r in sync["rows"])  # the platform
    assert data["plans"][0]["rows"] == sync["rows"]  # the earlier layout, kept for its readers

    ran = dbt_project.sync("run", *SEL, "--output", str(report_file))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(report_file.read_text())
    assert set(report) == REPORT_KEYS  # the run report itself is unchanged (design.md)
    (done,) = report["syncs"]
    assert {k: done[k] for k in SYNC_KEYS - {"api_calls", "duration_s"}} == {
        k: sync[k] for k in SYNC_KEYS - {"api_calls", "duration_s"}
    }


def _changelog_accounts(project) -> list[tuple]:
    return project.query(
        f"select sync_name, source_key, action, outcome, stripe_account "
        f'from {project.state_schema}.stripe_sync_changelog order by source_key, "at"'
    )


def test_connect_changelog_history_and_plan_name_each_rows_account(market, tmp_path):  # noqa: F811
    """F7 (and F5 for Connect rows with a bad account)."""
    plan_file = tmp_path / "plan.json"
    assert market.sync("plan", "-s", "mp_customers", "--output", str(plan_file)).returncode == 0
    (sync,) = json.loads(plan_file.read_text())["syncs"]
    assert {r["key"]: r["account"] for r in sync["rows"]} == {
        "b1": NORTH,
        "b2": SOUTH,
        "b3": EAST,
        "b4": NORTH,
    }

    sellers = market.read_seed("raw_sellers")
    sellers[1]["stripe_account_id"] = "south-cycles"  # b2: not an account ID, rejected per row
    market.write_seed("raw_sellers", sellers)
    market.build()
    first = market.sync("-s", "mp_customers")
    assert first.returncode == 1, first.stdout + first.stderr
    rows = _changelog_accounts(market)
    assert [(k, a, o, acct) for _, k, a, o, acct in rows] == [
        ("b1", "create", "ok", NORTH),
        ("b2", "reject", "rejected", None),  # it never reached an account
        ("b3", "create", "ok", EAST),
        ("b4", "create", "ok", NORTH),
    ]
    ledger = {
        k: a
        for k, a in market.query(
            f"select source_key, stripe_account from {market.state_schema}.stripe_sync_ledger"
        )
    }
    assert {k: acct for _, k, _, _, acct in rows} == ledger

    again = market.sync("plan", "-s", "mp_customers")  # F5: b2 is still rejected: the run exits 1
    assert again.returncode == 1, again.stdout + again.stderr
    assert "1 reject; 3 unchanged of 4 rows" in again.stdout
    assert "reject   row b2  ((rejected earlier)" in again.stdout and "south-cycles" in again.stdout

    history = market.sync("history", "--key", "b3")
    assert history.returncode == 0, history.stdout + history.stderr
    header, _, line = history.stdout.splitlines()[1:4]
    assert "stripe_account" in header.split() and EAST in line.split()


def test_an_older_changelog_gains_the_account_column_on_the_next_run(market):  # noqa: F811
    """F7: a changelog table created by an earlier version (no stripe_account) is altered, through
    the dispatched add_column_sql macro, by the next run; history reads it before and after."""
    assert market.sync("-s", "mp_customers").returncode == 0
    state = market.state_schema
    _write_sql(market, f"alter table {state}.stripe_sync_changelog drop column stripe_account")
    before = market.sync("history", "--key", "b1")
    assert before.returncode == 0 and "stripe_account" not in before.stdout and "create" in before.stdout

    buyers = market.read_seed("raw_buyers")
    buyers[0]["full_name"] = "Augusta Ada King"  # b1, North Bakery
    market.write_seed("raw_buyers", buyers)
    market.build()
    assert market.sync("-s", "mp_customers").returncode == 0
    rows = market.query(
        f'select source_key, action, stripe_account from {state}.stripe_sync_changelog order by "at"'
    )
    assert rows[-1] == ("b1", "update", NORTH)
    assert sorted(r for r in rows[:-1]) == [
        ("b1", "create", None),
        ("b2", "create", None),
        ("b3", "create", None),
        ("b4", "create", None),
    ]  # fmt: skip  -- rows written before the column existed have no account recorded
    after = market.sync("history", "--key", "b1")
    assert "stripe_account" in after.stdout and NORTH in after.stdout
