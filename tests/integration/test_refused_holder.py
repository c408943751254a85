"""A row only aimed at an object another model deletes — matched by email, its update refused by Stripe,
or an in-run takeover whose write did not land — holds that delete back; it never takes it over
(outside attack 8). Its recorded target goes stale when its email changes: `plan` must then predict the
delete the run sends, and a delete held for it must go out once nothing aims at the object any more,
instead of the customer leaking for good. Writes counted from the emulator's request log."""

from __future__ import annotations

import pytest
import stripe

from tests.support.moves import plan_and_run, plan_rows, refused_leads, without

pytestmark = pytest.mark.timeout(300)

ADA = {"lead_id": "L1", "email": "ada@example.com", "full_name": "Ada Lovelace"}
ADA_AS_ZED = {**ADA, "email": "zed@example.com"}


def _writes(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if r["method"] != "GET"]


def _alive(emu, stripe_id: str) -> bool:
    return any(c["id"] == stripe_id and not c.get("deleted") for c in emu.objects("customer"))


def _ada_refused_to_stripe_leads(dbt_project) -> str:
    """Ada's customer synced by stripe_customers; lead L1 matches it by email and Stripe refuses its
    update: the lead's ledger row is failed with no Stripe ID, aimed at her customer. Her ID."""
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    refused_leads(dbt_project, [ADA])
    assert dbt_project.sync("run", "-s", "stripe_leads").returncode == 1
    lead = dbt_project.ledger("stripe_leads")["L1"]
    assert (lead["status"], lead["stripe_id"]) == ("failed", None)
    return ada


def test_plan_predicts_the_delete_when_the_refused_rows_email_moves_away(dbt_project, tmp_path):
    """In one run, Ada's row leaves stripe_customers and the refused lead's email changes to Zed's: it no
    longer aims at her customer. `plan` said "nothing is deleted" (it read the lead's stale target) while
    the run deleted her; both now say delete, and the lead creates Zed's customer."""
    ada = _ada_refused_to_stripe_leads(dbt_project)
    emu = dbt_project.emulator
    without(dbt_project, "raw_customers", "user_id", "1")
    refused_leads(dbt_project, [ADA_AS_ZED])

    planned, _ = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers", "stripe_leads")
    assert [(r["key"], r["action"]) for r in plan_rows(planned, "stripe_customers")] == [("1", "delete")]
    assert [(r["key"], r["action"]) for r in plan_rows(planned, "stripe_leads")] == [("L1", "create")]
    assert sorted(_writes(emu)) == [("DELETE", f"/v1/customers/{ada}"), ("POST", "/v1/customers")]
    assert not _alive(emu, ada)
    assert dbt_project.ledger("stripe_leads")["L1"]["stripe_id"] not in (None, ada)


def test_a_delete_held_for_a_stale_target_goes_out_once_the_row_moved(dbt_project, tmp_path):
    """The same change, but `run -s stripe_customers` alone: the lead is not re-matched, so its target
    cannot be known stale, and the delete is held — not retired, as it was, which leaked her customer
    for good once the lead moved to Zed. The next full run moves the lead, and her customer is deleted."""
    ada = _ada_refused_to_stripe_leads(dbt_project)
    emu = dbt_project.emulator
    without(dbt_project, "raw_customers", "user_id", "1")
    refused_leads(dbt_project, [ADA_AS_ZED])

    planned, done = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers")
    assert plan_rows(planned, "stripe_customers") == [] and _writes(emu) == []
    assert (
        "1 delete(s) held back, planned again by the next run: row 1: stripe_leads row L1"
        in (done["syncs"][0]["message"])
    )
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"  # still its delete to send

    planned, _ = plan_and_run(dbt_project, tmp_path, "-s", "stripe_customers", "stripe_leads")
    assert [(r["key"], r["action"]) for r in plan_rows(planned, "stripe_customers")] == [("1", "delete")]
    assert sorted(_writes(emu)) == [("DELETE", f"/v1/customers/{ada}"), ("POST", "/v1/customers")]
    assert not _alive(emu, ada)


def test_an_in_run_takeover_whose_write_is_refused_does_not_retire_the_delete(dbt_project):
    """In one run Ada's row leaves stripe_customers and lead L1 matches her customer: an in-run takeover.
    Stripe refuses the lead's update, so nothing binds it: the old row's delete is held (no DELETE, no
    re-tag), not retired for good as it was. When the lead leaves too, her customer is deleted: it used to
    stay in Stripe, tagged with the old row, owned by nobody."""
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    emu = dbt_project.emulator
    without(dbt_project, "raw_customers", "user_id", "1")
    refused_leads(dbt_project, [ADA])
    emu.clear_requests()
    run = dbt_project.sync("run", "-s", "stripe_customers", "stripe_leads")
    assert run.returncode == 1
    assert _writes(emu) == [("POST", f"/v1/customers/{ada}")]  # the refused takeover; no DELETE, no re-tag
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"
    assert f"stripe_leads row L1 took {ada} over in this run, but its write did not land" in run.stdout

    refused_leads(dbt_project, [{"lead_id": "L9", "email": "zed@example.com", "full_name": "Zed"}])
    emu.clear_requests()
    assert dbt_project.sync("run", "-s", "stripe_customers", "stripe_leads").returncode == 0
    assert sorted(_writes(emu)) == [("DELETE", f"/v1/customers/{ada}"), ("POST", "/v1/customers")]
    assert not _alive(emu, ada)


def test_a_re_key_whose_update_is_refused_does_not_retire_the_old_row(dbt_project):
    """Attack 9: within one model, Ada's row 1 is replaced by row 99 with her email (a re-key), and Stripe
    refuses row 99's update (its tag is a 51st metadata key on her customer, which has 46 of its own).
    The old row is not retired, as it was before any write: the re-key waits, and when row 99 leaves too,
    her customer is deleted — it used to stay in Stripe with no ledger row left to delete it."""
    emu = dbt_project.emulator
    client = stripe.StripeClient("sk_test_outside", base_addresses={"api": emu.url}, max_network_retries=0)
    outside = {f"o{i}": "x" for i in range(46)}
    ada = client.v1.customers.create(params={"email": "ada@example.com", "metadata": outside}).id
    dbt_project.build()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    assert dbt_project.ledger("stripe_customers")["1"]["stripe_id"] == ada  # matched; 50 keys now
    customers = dbt_project.read_seed("raw_customers")
    (row,) = [r for r in customers if r["user_id"] == "1"]
    others = [r for r in customers if r is not row]
    bad = {**row, "user_id": "77", "email": "not-an-email"}  # rejected: its note must not hide the hold
    dbt_project.write_seed("raw_customers", [*others, {**row, "user_id": "99"}, bad])
    dbt_project.build()

    emu.clear_requests()
    run = dbt_project.sync("run", "-s", "stripe_customers")
    assert run.returncode == 1
    assert _writes(emu) == [("POST", f"/v1/customers/{ada}")]  # refused: no DELETE
    ledger = dbt_project.ledger("stripe_customers")
    assert (ledger["1"]["status"], ledger["1"]["stripe_id"]) == ("synced", ada)  # not retired
    assert (ledger["99"]["status"], ledger["99"]["stripe_id"]) == ("failed", None)
    held = f"re-key(s) held back, planned again by the next run: row 1: stripe_customers row 99 took {ada}"
    assert held in run.stdout
    again = dbt_project.sync("run", "-s", "stripe_customers")  # attack 10: one note wrote over the other
    assert again.returncode == 1
    assert held in again.stdout and "1 row(s) rejected by earlier runs" in again.stdout
    assert dbt_project.ledger("stripe_customers")["1"]["status"] == "synced"

    dbt_project.write_seed("raw_customers", others)
    dbt_project.build()
    emu.clear_requests()
    assert dbt_project.sync("run", "-s", "stripe_customers").returncode == 0
    assert _writes(emu) == [("DELETE", f"/v1/customers/{ada}")]
    assert not _alive(emu, ada)
