"""The ledger and runs tables: created on the first run, migrated when a newer version adds columns."""

from __future__ import annotations

import pytest

from tests.support.dbt_project import pg_connect

pytestmark = pytest.mark.timeout(300)


def _execute(project, sql: str) -> None:
    if project.target == "duckdb":
        import duckdb

        con = duckdb.connect(project.env["DSS_DUCKDB_PATH"])
        try:
            con.execute(sql)
        finally:
            con.close()
    else:
        con = pg_connect(project.env, autocommit=True)
        with con.cursor() as cur:
            cur.execute(sql)
        con.close()


def test_an_older_ledger_is_migrated_in_place(dbt_project):
    dbt_project.build()
    s = dbt_project.state_schema
    # the ledger and runs tables as an earlier version created them: fewer columns, one old row
    _execute(dbt_project, f"create schema {s}")
    _execute(
        dbt_project,
        f"create table {s}.stripe_sync_ledger (sync_name varchar, source_key varchar, object_type varchar, "
        "stripe_id varchar, payload_hash varchar, payload_json varchar, status varchar, last_error varchar, "
        "attempts integer, updated_at timestamp, primary key (sync_name, source_key))",
    )
    _execute(
        dbt_project, f"create table {s}.stripe_sync_runs (run_id varchar, sync_name varchar, status varchar)"
    )
    _execute(
        dbt_project,
        f"insert into {s}.stripe_sync_ledger values ('other_sync', '1', 'customer', "
        "'cus_kept', 'h', '{}', 'synced', null, 0, null)",
    )

    result = dbt_project.sync("-s", "stripe_customers")
    assert result.returncode == 0, result.stdout + result.stderr
    columns = {
        r[0]
        for r in dbt_project.query(
            f"select column_name from information_schema.columns where table_schema = '{s}' "
            "and table_name = 'stripe_sync_ledger'"
        )
    }
    assert {
        "pending_json",
        "idempotency_key",
        "attempt_hash",
        "first_synced_at",
        "run_id",
        "stripe_account",
        "payload_quick_hash",
    } <= columns
    assert dbt_project.query(
        f"select stripe_id, status from {s}.stripe_sync_ledger where sync_name = 'other_sync'"
    ) == [("cus_kept", "synced")]
    assert len(dbt_project.ledger("stripe_customers")) == 5
    runs = dbt_project.query(f"select created, api_calls, status from {s}.stripe_sync_runs")
    assert runs == [(5, 6, "success")]


def test_plan_reads_an_older_ledger_without_migrating_it(dbt_project):
    """`plan` writes nothing, so a ledger from before a column was added (here: Connect's
    stripe_account) is read with the new columns as null; `run` adds them."""
    assert dbt_project.sync("-s", "stripe_customers", "stripe_products").returncode == 0
    s = dbt_project.state_schema
    _execute(dbt_project, f"alter table {s}.stripe_sync_ledger drop column stripe_account")
    rows = dbt_project.read_seed("raw_customers")
    rows[0]["full_name"] = "Ada King"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()

    plan = dbt_project.sync("plan", "-s", "stripe_customers", "stripe_products")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "update" in plan.stdout
    columns = {
        r[0]
        for r in dbt_project.query(
            f"select column_name from information_schema.columns where table_schema = '{s}' "
            "and table_name = 'stripe_sync_ledger'"
        )
    }
    assert "stripe_account" not in columns  # plan migrated nothing
