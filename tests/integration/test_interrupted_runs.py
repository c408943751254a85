"""A killed run stays in the runs table: each sync writes a `running` row when it starts, and the next
run (holding the run lock, so the killed one is certainly dead) marks it `interrupted` with what the
changelog says it did — history, the HTML report and the README's queries see it."""

from __future__ import annotations

import signal

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV

pytestmark = pytest.mark.timeout(300)

SMALL_BATCHES = "{dbt_stripe_sync: {batch_size: 2, concurrency: 1}}"


def test_a_killed_run_is_marked_interrupted_with_its_changelog_counts(dbt_project, warehouse):
    dbt_project.build()
    killed = dbt_project.sync(
        "-s", "stripe_customers", "--vars", SMALL_BATCHES, env={CRASH_ENV: "after_record#2"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    schema = dbt_project.state_schema
    ((killed_id, status, finished),) = dbt_project.query(
        f"select run_id, status, finished_at from {schema}.stripe_sync_runs"
    )
    assert (status, finished) == ("running", None)  # written when the sync started

    assert dbt_project.sync("-s", "stripe_customers").returncode == 0
    rows = dict(
        (r[0], r[1:])
        for r in dbt_project.query(f"select run_id, status, created, error from {schema}.stripe_sync_runs")
    )
    assert len(rows) == 2
    status, created, error = rows[killed_id]
    ((logged,),) = dbt_project.query(
        f"select count(*) from {schema}.stripe_sync_changelog "
        f"where run_id = '{killed_id}' and action = 'create' and outcome = 'ok'"
    )
    assert status == "interrupted" and "stopped before this sync finished" in error
    assert created == logged == 4  # two recorded batches of two creates before the kill
    ((other_status, other_created, _),) = [v for k, v in rows.items() if k != killed_id]
    n = len(dbt_project.read_seed("raw_customers"))
    assert (other_status, other_created) == ("success", n - 4)

    history = dbt_project.sync("history", "-s", "stripe_customers")
    assert history.returncode == 0 and "interrupted" in history.stdout
