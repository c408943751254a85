"""A rejected row keeps the run at exit 1 while it waits in the model, and stops counting once the
model no longer has it (the reject reason may advise filtering it out)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(300)


def test_a_rejected_row_filtered_out_of_the_model_no_longer_fails_the_run(dbt_project, warehouse):
    rows = dbt_project.read_seed("raw_customers")
    rows[1]["email"] = "not-an-email"
    dbt_project.write_seed("raw_customers", rows)
    dbt_project.build()
    first = dbt_project.sync("-s", "stripe_customers")
    assert first.returncode == 1 and "not a valid email" in first.stdout
    again = dbt_project.sync("-s", "stripe_customers")  # still in the model: still counted, still exit 1
    assert again.returncode == 1 and "rejected by earlier runs" in again.stdout

    bad_key = rows[1]["user_id"]
    dbt_project.write_seed("raw_customers", [r for r in rows if r["user_id"] != bad_key])
    dbt_project.build()
    gone = dbt_project.sync("-s", "stripe_customers")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "rejected earlier" not in gone.stdout
    ((rejected, status),) = dbt_project.query(
        f"select rejected, status from {dbt_project.state_schema}.stripe_sync_runs "
        "order by started_at desc limit 1"
    )
    assert (rejected, status) == (0, "success")


def test_a_pending_create_of_a_row_that_left_the_model_is_never_sent_for_the_first_time(
    dbt_project, warehouse
):
    """Killed after checkpointing creates (nothing sent), then those rows leave the model: the next run
    looks their tags up, finds nothing, and drops them — no Stripe object for a row that is gone."""
    import signal

    from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
    from tests.support.dbt_project import api_writes

    dbt_project.build()
    small = "{dbt_stripe_sync: {batch_size: 2, concurrency: 1}}"
    killed = dbt_project.sync(
        "-s", "stripe_customers", "--vars", small, env={CRASH_ENV: "after_checkpoint#1"}
    )
    assert killed.returncode == -signal.SIGKILL
    emu = dbt_project.emulator
    assert emu.objects("customer") == []
    pending = {k for k, v in dbt_project.ledger("stripe_customers").items() if v["status"] == "pending"}
    assert len(pending) == 2
    rows = dbt_project.read_seed("raw_customers")
    dbt_project.write_seed("raw_customers", [r for r in rows if r["user_id"] not in pending])
    dbt_project.build()

    rerun = dbt_project.sync("-s", "stripe_customers")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    created = [w for w in api_writes(emu.requests()) if w["path"] == "/v1/customers"]
    assert len(created) == len(rows) - 2  # only the rows still in the model
    tags = {c["metadata"]["dbt_stripe_sync"] for c in emu.objects("customer")}
    assert not any(t.endswith(f":{k}") for t in tags for k in pending)
    ledger = dbt_project.ledger("stripe_customers")
    assert {ledger[k]["status"] for k in pending} == {"deleted"}
