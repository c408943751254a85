"""Which rows keep an object another model deletes (bound_elsewhere.py), from outside attack 5: a
pending adoption keeps it (it used to be deleted, then created again); a removed model's rows and a
row that left a `delete: nothing` model do not (they used to keep it forever); two rows leaving one
customer send one DELETE. `plan` predicts each run; writes counted from the emulator's request log."""

from __future__ import annotations

import json

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
from tests.support.moves import ada_moves_to, both_bind_ada, plan_and_run, plan_rows, without

pytestmark = pytest.mark.timeout(300)


def _writes(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if r["method"] != "GET"]


def _customers_with(emu, email: str) -> list[dict]:
    return [c for c in emu.objects("customer") if c.get("email") == email and not c.get("deleted")]


def test_a_pending_adoption_keeps_the_customer_from_the_old_models_delete(dbt_project, tmp_path):
    """Ada moves to stripe_leads, whose run is killed after checkpointing her update (matched by email:
    the ledger row is pending with no Stripe ID yet). `run -s stripe_customers` then must not delete her
    customer: the pending write is aimed at it. The next full run finishes the update: one customer."""
    sel, ada = ada_moves_to(dbt_project, "stripe_leads")
    emu = dbt_project.emulator
    proc = dbt_project.sync("run", "-s", "stripe_leads", env={CRASH_ENV: "after_checkpoint#1"})
    assert proc.returncode != 0
    pending = dbt_project.ledger("stripe_leads")["L1"]
    assert (pending["status"], pending["stripe_id"]) == ("pending", None)

    planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers")
    (kept,) = plan_rows(planned, "stripe_customers")
    assert (kept["key"], kept["action"]) == ("1", "rekey")
    assert kept["reason"] == f"moved: a write of stripe_leads row L1 to {ada} is pending; nothing is deleted"
    assert _writes(emu) == []
    assert done["syncs"][0]["message"] == f"1 delete(s) not sent: row 1: {kept['reason']}"  # the run says so

    emu.clear_requests()
    assert dbt_project.sync("run", *sel).returncode == 0
    assert _writes(emu) == [("POST", f"/v1/customers/{ada}")]  # the pending update, finished
    assert [c["id"] for c in _customers_with(emu, "ada@example.com")] == [ada]
    assert dbt_project.ledger("stripe_leads")["L1"]["stripe_id"] == ada


def test_a_pending_adoption_shows_in_plan_as_the_run_recovers_it(dbt_project, tmp_path):
    """The same pending update, then a full run: it finishes the update first, so the old row's delete
    is retired; `plan` (which finishes nothing) already shows the retirement, not a delete."""
    sel, ada = ada_moves_to(dbt_project, "stripe_leads")
    emu = dbt_project.emulator
    proc = dbt_project.sync("run", "-s", "stripe_leads", env={CRASH_ENV: "after_checkpoint#1"})
    assert proc.returncode != 0
    plan = tmp_path / "plan.json"
    assert dbt_project.sync("plan", *sel, "--output", str(plan)).returncode == 0
    planned = json.loads(plan.read_text())
    (kept,) = plan_rows(planned, "stripe_customers")
    assert kept["action"] == "rekey" and "pending" in kept["reason"]
    assert next(s for s in planned["syncs"] if s["model"] == "stripe_customers")["counts"]["deleted"] == 0
    emu.clear_requests()
    assert dbt_project.sync("run", *sel).returncode == 0
    assert _writes(emu) == [("POST", f"/v1/customers/{ada}")]


@pytest.mark.parametrize("change", ["removed", "renamed"])
def test_a_removed_models_rows_do_not_keep_a_customer(dbt_project, tmp_path, change):
    """stripe_leads' row L1 shares Ada's customer; then stripe_leads leaves the project (removed, or
    renamed to stripe_prospects, which adopts her customer again by email). When Ada leaves every model,
    her customer is deleted once: the old model's ledger rows hold nothing (they used to keep it forever,
    naming a model that no longer exists)."""
    ada = both_bind_ada(dbt_project, "stripe_leads")
    emu = dbt_project.emulator
    (dbt_project.path / "models" / "stripe_leads.sql").unlink()
    sel = ["-s", "stripe_customers"]
    if change == "renamed":
        dbt_project.write_file("models/stripe_prospects.sql", "select * from {{ ref('raw_leads') }}\n")
        dbt_project.edit_schema_yml(
            "- name: stripe_leads", "- name: stripe_prospects", file="models/leads.yml"
        )
        dbt_project.build()
        planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_prospects")
        assert [r["action"] for r in plan_rows(planned, "stripe_prospects")] == ["adopt", "adopt"]
        assert done["syncs"][0]["counts"]["unchanged"] == 2  # plan counts adoptions as the run does
        assert _writes(emu) == []
        assert dbt_project.ledger("stripe_prospects")["L1"]["stripe_id"] == ada
        without(dbt_project, "raw_leads", "lead_id", "L1")
        sel.append("stripe_prospects")
    else:
        (dbt_project.path / "models" / "leads.yml").unlink()
    without(dbt_project, "raw_customers", "user_id", "1")
    dbt_project.build()

    planned, _ = plan_and_run(dbt_project, tmp_path, *sel)
    assert [(r["key"], r["action"]) for r in plan_rows(planned, "stripe_customers")] == [("1", "delete")]
    assert _writes(emu) == [("DELETE", f"/v1/customers/{ada}")]
    if change == "renamed":
        (gone,) = plan_rows(planned, "stripe_prospects")
        assert (gone["action"], gone["reason"]) == (
            "rekey",
            f"{ada} is deleted once, by stripe_customers row 1",
        )
    assert _customers_with(emu, "ada@example.com") == []


def test_a_row_that_left_a_delete_nothing_model_does_not_keep_a_customer(dbt_project, tmp_path):
    """stripe_leads (delete: nothing) and stripe_customers share Ada's customer. Her lead row leaves:
    nothing is sent (its model deletes nothing). When her customers row leaves later, her customer is
    deleted: a row no longer in its model keeps nothing."""
    ada = both_bind_ada(dbt_project, "stripe_leads", delete="nothing")
    emu = dbt_project.emulator
    without(dbt_project, "raw_leads", "lead_id", "L1")
    dbt_project.build()
    emu.clear_requests()
    assert dbt_project.sync("run", "-s", "stripe_leads").returncode == 0
    assert _writes(emu) == []
    without(dbt_project, "raw_customers", "user_id", "1")
    dbt_project.build()
    planned, _ = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers", "stripe_leads")
    assert [(r["key"], r["action"]) for r in plan_rows(planned, "stripe_customers")] == [("1", "delete")]
    assert _writes(emu) == [("DELETE", f"/v1/customers/{ada}")]


def test_two_rows_leaving_one_customer_send_one_delete(dbt_project, tmp_path):
    """Ada's customer is bound to a row of each of two models (both delete: delete); both rows leave in
    one run: one DELETE (the second used to get a 404 and both counted it), the other row retired."""
    ada = both_bind_ada(dbt_project, "stripe_leads")
    emu = dbt_project.emulator
    without(dbt_project, "raw_leads", "lead_id", "L1")
    without(dbt_project, "raw_customers", "user_id", "1")
    dbt_project.build()
    planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers", "stripe_leads")
    assert _writes(emu) == [("DELETE", f"/v1/customers/{ada}")]
    assert sum(s["counts"]["deleted"] for s in done["syncs"]) == 1
    (retired,) = plan_rows(planned, "stripe_leads")
    assert (retired["key"], retired["action"]) == ("L1", "rekey")
    assert retired["reason"] == f"{ada} is deleted once, by stripe_customers row 1"
    assert dbt_project.ledger("stripe_leads")["L1"]["status"] == "deleted"
    emu.clear_requests()
    assert dbt_project.sync("run", "-s", "stripe_customers", "stripe_leads").returncode == 0
    assert _writes(emu) == []
