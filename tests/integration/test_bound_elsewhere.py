"""Which rows keep an object another model deletes (bound_elsewhere.py), from outside attack 5: a
pending adoption keeps it (it used to be deleted, then created again); a removed model's rows and a
row that left a `delete: nothing` model do not (they used to keep it forever); two rows leaving one
customer send one DELETE. `plan` predicts each run; writes counted from the emulator's request log."""

from __future__ import annotations

import json

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
from tests.support.moves import (
    ada_moves_to,
    both_bind_ada,
    plan_and_run,
    plan_rows,
    refused_leads,
    without,
)

pytestmark = pytest.mark.timeout(300)


def _writes(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if r["method"] != "GET"]


def _customers_with(emu, email: str) -> list[dict]:
    return [c for c in emu.objects("customer") if c.get("email") == email and not c.get("deleted")]


def test_a_pending_adoption_keeps_the_customer_from_the_old_models_delete(dbt_project, tmp_path):
    """Ada moves to stripe_leads, whose run is killed after checkpointing her update (matched by email:
    the ledger row is pending with no Stripe ID yet). `run -s stripe_customers` then must not delete her
    customer: the pending write is aimed at it. Nor may it retire the delete for good (the write might
    never land): it is held, planned again. The next full run finishes the update, and only then is the
    old row retired: one customer, bound to her lead row."""
    sel, ada = ada_moves_to(dbt_project, "stripe_leads")
    emu = dbt_project.emulator
    proc = dbt_project.sync("run", "-s", "stripe_leads", env={CRASH_ENV: "after_checkpoint#1"})
    assert proc.returncode != 0
    pending = dbt_project.ledger("stripe_leads")["L1"]
    assert (pending["status"], pending["stripe_id"]) == ("pending", None)

    planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers")
    assert plan_rows(planned, "stripe_customers") == []
    held = (
        f"1 delete(s) held back, planned again by the next run: row 1: a write of stripe_leads row L1 to "
        f"{ada} is pending; the delete waits for its outcome"
    )
    (customers,) = planned["syncs"]
    assert customers["counts"]["deleted"] == 0 and held in customers["warnings"]
    assert _writes(emu) == []
    assert done["syncs"][0]["message"] == held  # the run says so
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"  # not retired

    emu.clear_requests()
    assert dbt_project.sync("run", *sel).returncode == 0
    assert _writes(emu) == [("POST", f"/v1/customers/{ada}")]  # the pending update, finished
    assert [c["id"] for c in _customers_with(emu, "ada@example.com")] == [ada]
    assert dbt_project.ledger("stripe_leads")["L1"]["stripe_id"] == ada
    old = dbt_project.ledger("stripe_customers")["1"]
    assert (old["status"], old["last_error"]) == (
        "deleted",
        f"moved: {ada} is still synced by stripe_leads row L1; nothing is deleted",
    )


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
    moved = f"moved: {ada} is still synced by stripe_leads row L1; nothing is deleted"
    assert (kept["action"], kept["reason"]) == ("rekey", moved)
    assert next(s for s in planned["syncs"] if s["model"] == "stripe_customers")["counts"]["deleted"] == 0
    emu.clear_requests()
    assert dbt_project.sync("run", *sel).returncode == 0
    assert _writes(emu) == [("POST", f"/v1/customers/{ada}")]
    assert dbt_project.ledger("stripe_customers")["1"]["last_error"] == moved


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


def test_a_holder_row_rejected_in_the_same_run_still_keeps_the_customer(dbt_project, tmp_path):
    """Attack 6, finding 1: Ada leaves stripe_customers while her lead row stays but gets an invalid
    email. The lead row is rejected (its new values are refused), yet its customer is still its own: the
    old model's delete is retired, in `plan` and in the run (it used to be sent by the run alone)."""
    ada = both_bind_ada(dbt_project, "stripe_leads")
    emu = dbt_project.emulator
    leads = dbt_project.read_seed("raw_leads")
    dbt_project.write_seed(
        "raw_leads", [{**r, "email": "not-an-email"} if r["lead_id"] == "L1" else r for r in leads]
    )
    without(dbt_project, "raw_customers", "user_id", "1")
    dbt_project.build()
    planned, _ = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers", "stripe_leads", code=1)
    (kept,) = plan_rows(planned, "stripe_customers")
    assert (kept["key"], kept["action"]) == ("1", "rekey")
    assert _writes(emu) == []
    lead = dbt_project.ledger("stripe_leads")["L1"]
    assert (lead["status"], lead["stripe_id"]) == ("rejected", ada)
    assert _customers_with(emu, "ada@example.com")[0]["id"] == ada


def test_a_pending_delete_is_not_resent_once_another_row_holds_the_customer(dbt_project):
    """Attack 6, finding 2: the old model's delete of Ada's customer gets 500s and stays pending; her
    row then comes back into stripe_leads, which still holds her customer. Recovery retires the pending
    delete instead of re-sending it."""
    ada = both_bind_ada(dbt_project, "stripe_leads", delete="nothing")
    emu = dbt_project.emulator
    leads = dbt_project.read_seed("raw_leads")
    without(dbt_project, "raw_leads", "lead_id", "L1")
    without(dbt_project, "raw_customers", "user_id", "1")
    dbt_project.build()
    emu.set_faults(error_rate=1.0)  # the DELETE is answered 500: its outcome is unknown, it stays pending
    proc = dbt_project.sync("run", "-s", "stripe_customers", "--vars", "{dbt_stripe_sync: {max_retries: 0}}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "pending"
    emu.set_faults(error_rate=0.0)
    dbt_project.write_seed("raw_leads", leads)  # her lead row is back
    dbt_project.build()
    emu.clear_requests()
    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _writes(emu) == []
    old = dbt_project.ledger("stripe_customers")["1"]
    assert old["status"] == "deleted" and "still synced by stripe_leads row L1" in old["last_error"]
    assert _customers_with(emu, "ada@example.com")[0]["id"] == ada


def test_a_failed_matched_update_keeps_its_customer(dbt_project, tmp_path):
    """Attack 6, findings 3 and 4: a lead row matches Ada's customer by email, and Stripe refuses its
    update (45 more metadata keys overflow the customer's 50). The failed row keeps her customer from
    `run -s stripe_customers`'s delete (it used to forget the match, so the delete went out and the next
    run created her again). It is not bound, though (attack 7): nothing of it reached her customer, so
    when it leaves its model, it deletes nothing. Nor does it take the delete over (attack 8): the delete
    is held, not retired, and goes out once nothing aims at her customer (it used to leak for good)."""
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    emu = dbt_project.emulator
    refused_leads(dbt_project, [{"lead_id": "L1", "email": "ada@example.com", "full_name": "Ada Lovelace"}])
    assert dbt_project.sync("run", "-s", "stripe_leads").returncode == 1
    lead = dbt_project.ledger("stripe_leads")["L1"]
    assert (lead["status"], lead["stripe_id"]) == ("failed", None)

    without(dbt_project, "raw_customers", "user_id", "1")
    dbt_project.build()
    emu.clear_requests()
    planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers")
    assert plan_rows(planned, "stripe_customers") == []
    held = (
        f"1 delete(s) held back, planned again by the next run: row 1: stripe_leads row L1 matched {ada}, "
        "and Stripe refused its update; the delete waits until that row binds to it (then it moved) or "
        "stops aiming at it"
    )
    assert held in planned["syncs"][0]["warnings"] and done["syncs"][0]["message"] == held
    assert _writes(emu) == []
    assert _customers_with(emu, "ada@example.com")[0]["id"] == ada
    dbt_project.write_seed("raw_leads", [{"lead_id": "L9", "email": "zed@example.com", "full_name": "Zed"}])
    dbt_project.build()
    emu.clear_requests()
    dbt_project.sync("run", "-s", "stripe_leads")
    assert ("DELETE", f"/v1/customers/{ada}") not in _writes(emu)  # L1 left: it deletes nothing
    assert _customers_with(emu, "ada@example.com")[0]["id"] == ada
    # the held delete was kept, not retired: with nothing aimed at her customer now, it goes out
    emu.clear_requests()
    planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers")
    assert [(r["key"], r["action"]) for r in plan_rows(planned, "stripe_customers")] == [("1", "delete")]
    assert _writes(emu) == [("DELETE", f"/v1/customers/{ada}")]
    assert done["syncs"][0]["counts"]["deleted"] == 1
