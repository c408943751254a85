"""A run killed after a row took a customer over, before the old row was retired: the next run must see
the customer as moved, not deleted — before any later sync resolves references to it. (The soak found
it, seed 564543607: the old row's delete doomed the customer for that run, so every `by: email`
reference to it was unresolved, its invoices rejected, the run failed; the run after healed.) Both a
move between two customers models and a re-key within one. Writes counted from the emulator's log."""

from __future__ import annotations

import json
import signal

import pytest

from dbt_stripe_sync.crashpoints import ENV as CRASH_ENV
from tests.support.moves import ada_moves_to, plan_and_run, plan_rows

pytestmark = pytest.mark.timeout(600)

BILLING = ("stripe_products", "stripe_prices", "stripe_invoices", "stripe_invoice_items")


def _killed_after_the_write(dbt_project, *sel: str) -> None:
    killed = dbt_project.sync("run", *sel, env={CRASH_ENV: "after_record"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr


def _billing_finds_ada(dbt_project, tmp_path, sel: tuple[str, ...], ada: str, pending: str = "") -> dict:
    """The next run, billing included for the first time: Ada's invoice and items resolve her customer by
    email (nothing rejected), and she is not deleted. `plan` predicts it — but for the sync whose write
    was left `pending` (if any): `plan` shows it as `wait`, the run counts the write recovery finishes.
    The old row's plan row."""
    emu = dbt_project.emulator
    if pending:
        planned, done = _plan_then_run(dbt_project, tmp_path, *sel, *BILLING)
        outcome = {s["model"]: (s["status"], s["counts"]) for s in done["syncs"] if s["model"] != pending}
        assert {
            s["model"]: (s["status"], s["counts"]) for s in planned["syncs"] if s["model"] != pending
        } == (outcome)
    else:
        planned, done = plan_and_run(dbt_project, tmp_path, *sel, *BILLING)
    assert all(s["status"] == "success" for s in done["syncs"]), done["syncs"]
    assert not [r for r in emu.requests() if r["method"] == "DELETE"]
    assert not next(c for c in emu.objects("customer") if c["id"] == ada).get("deleted")
    invoice = dbt_project.ledger("stripe_invoices")["inv1"]["stripe_id"]
    assert next(i for i in emu.objects("invoice") if i["id"] == invoice)["customer"] == ada
    items = dbt_project.ledger("stripe_invoice_items")
    assert {items[k]["status"] for k in ("ii1", "ii2")} == {"synced"}
    (old,) = plan_rows(planned, "stripe_customers")
    old_row = dbt_project.ledger("stripe_customers")[old["key"]]
    assert (old_row["status"], old["action"]) == ("deleted", "rekey")
    return old


def _plan_then_run(dbt_project, tmp_path, *sel: str) -> tuple[dict, dict]:
    plan_file, run_file = tmp_path / "plan.json", tmp_path / "run.json"
    assert dbt_project.sync("plan", *sel, "--output", str(plan_file)).returncode == 0
    dbt_project.emulator.clear_requests()
    run = dbt_project.sync("run", *sel, "--output", str(run_file))
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(plan_file.read_text()), json.loads(run_file.read_text())


def test_a_move_between_models_killed_before_the_old_row_is_retired(dbt_project, tmp_path):
    sel, ada = ada_moves_to(dbt_project, "stripe_leads")
    _killed_after_the_write(dbt_project, *sel)
    assert dbt_project.ledger("stripe_leads")["L1"]["stripe_id"] == ada  # the lead's update landed
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"  # not yet retired

    old = _billing_finds_ada(dbt_project, tmp_path, sel, ada)
    assert (old["key"], old["reason"]) == (
        "1",
        f"moved: {ada} is still synced by stripe_leads row L1; nothing is deleted",
    )


@pytest.mark.parametrize("point", ["after_checkpoint", "after_send"])
def test_a_move_killed_before_its_update_was_recorded(dbt_project, tmp_path, point):
    """Outside attack 11: killed before the lead's update was recorded, the lead is `pending`, aimed at
    her customer with no Stripe ID yet, and its model is planned after stripe_customers: when the old
    row's delete is planned, that write is not yet finished. It cannot be sent in this run either way
    (the write binds the lead, or is refused and holds it back), so it dooms nothing: billing still
    finds her (it was rejected for a run), and once the recovered write landed the old row is retired."""
    sel, ada = ada_moves_to(dbt_project, "stripe_leads")
    killed = dbt_project.sync("run", *sel, env={CRASH_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    lead = dbt_project.ledger("stripe_leads")["L1"]
    assert (lead["status"], lead["stripe_id"]) == ("pending", None)
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"

    old = _billing_finds_ada(dbt_project, tmp_path, sel, ada, pending="stripe_leads")
    assert (old["key"], old["reason"]) == (
        "1",
        f"moved: {ada} is still synced by stripe_leads row L1; nothing is deleted",
    )


def test_a_re_key_killed_before_the_old_row_is_retired(dbt_project, tmp_path):
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    customers = dbt_project.read_seed("raw_customers")
    dbt_project.write_seed(
        "raw_customers", [{**r, "user_id": "99"} if r["user_id"] == "1" else r for r in customers]
    )
    dbt_project.build()
    _killed_after_the_write(dbt_project, "-s", "stripe_customers")
    ledger = dbt_project.ledger("stripe_customers")
    assert (ledger["99"]["status"], ledger["99"]["stripe_id"]) == ("synced", ada)
    assert (ledger["1"]["status"], ledger["1"]["stripe_id"]) == ("synced", ada)  # not yet retired

    old = _billing_finds_ada(dbt_project, tmp_path, ("-s", "stripe_customers"), ada)
    assert old["key"] == "1" and "stripe_customers row 99" in old["reason"]
