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
