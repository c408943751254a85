"""`plan --output` is the predicted run report, and a run's counts stay right after a crash (attack2
finding 11): a removed price is counted `archived` by both (Stripe cannot delete prices), and a run
finishing deletes a killed run left pending does not subtract them from `unchanged` (their rows left
the model; they were never counted there)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(300)

BILLING = ("-s", "stripe_products", "stripe_prices")


def _counts(path) -> dict[str, dict[str, int]]:
    return {s["model"]: s["counts"] for s in json.loads(path.read_text())["syncs"]}


def test_plan_counts_a_price_removal_as_the_run_does_archived(dbt_project, tmp_path):
    assert dbt_project.sync("run", *BILLING).returncode == 0
    prices = dbt_project.read_seed("raw_prices")
    dbt_project.write_seed("raw_prices", [p for p in prices if p["price_key"] != "setup_fee"])
    dbt_project.build()
    plan_out, run_out = tmp_path / "plan.json", tmp_path / "run.json"
    proc = dbt_project.sync("plan", *BILLING, "--output", str(plan_out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = dbt_project.sync("run", *BILLING, "--output", str(run_out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned, ran = _counts(plan_out)["stripe_prices"], _counts(run_out)["stripe_prices"]
    assert (planned["archived"], planned["deleted"]) == (ran["archived"], ran["deleted"]) == (1, 0)


def test_recovered_deletes_are_not_taken_off_unchanged(dbt_project, tmp_path):
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    customers = dbt_project.read_seed("raw_customers")
    kept = [r for r in customers if r["user_id"] not in ("4", "5")]
    dbt_project.write_seed("raw_customers", kept)
    dbt_project.build()
    # killed with both deletes checkpointed (the run's only batch) and not sent
    killed = dbt_project.sync(
        "run", "-s", "stripe_customers", env={"DBT_STRIPE_SYNC_CRASH_AT": "after_checkpoint"}
    )
    assert killed.returncode != 0
    assert sorted(e["status"] for k, e in dbt_project.ledger("stripe_customers").items() if k in "45") == [
        "pending",
        "pending",
    ]
    out = tmp_path / "run.json"
    proc = dbt_project.sync("run", "-s", "stripe_customers", "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (summary,) = json.loads(out.read_text())["syncs"]
    assert summary["counts"]["deleted"] == 2
    assert summary["counts"]["unchanged"] == len(kept)  # every row still in the model
