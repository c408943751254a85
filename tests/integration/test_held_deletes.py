"""A delete whose dependents' model is not selected waits (held_deletes.py): `run -s stripe_customers`
must not delete a customer that stripe_subscriptions (not selected) still has a live subscription on —
Stripe would cancel it at once, without the proration its model asks for. `plan` warns of the same
hold, naming the unselected sync and its row, and a run of both models sends the cancel, then the
delete. Also when a delete is sent: a cancel that invoices now goes before new pending items (F8).
Counted from the emulator's request log."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(300)

CHAIN = ("stripe_customers", "stripe_products", "stripe_prices", "stripe_subscriptions")


def _writes(emu) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in emu.requests()
        if r["method"] != "GET" and r["path"].startswith("/v1/")
    ]


def test_a_customer_delete_waits_for_its_unselected_subscriptions_model(dbt_project, tmp_path):
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", *CHAIN).returncode == 0
    cus_id = dbt_project.ledger("stripe_customers")["3"]["stripe_id"]
    sub_id = dbt_project.ledger("stripe_subscriptions")["s3"]["stripe_id"]
    # Alan leaves: his customer row and his subscription row both go
    customers = dbt_project.read_seed("raw_customers")
    dbt_project.write_seed("raw_customers", [r for r in customers if r["user_id"] != "3"])
    subs = dbt_project.read_seed("raw_subscriptions")
    dbt_project.write_seed("raw_subscriptions", [r for r in subs if r["subscription_key"] != "s3"])
    dbt_project.build()
    emu.clear_requests()

    out = tmp_path / "plan.json"
    proc = dbt_project.sync("plan", "-s", "stripe_customers", "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"row 3 ({cus_id}): delete held back — stripe_subscriptions row s3 (not selected)" in proc.stdout
    assert "-s stripe_customers stripe_subscriptions" in proc.stdout
    (planned,) = json.loads(out.read_text())["syncs"]
    assert planned["counts"]["deleted"] == 0

    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _writes(emu) == []  # nothing deleted: the subscription is still live
    assert "delete(s) held back" in proc.stdout and "stripe_subscriptions row s3" in proc.stdout
    (sub,) = [s for s in emu.objects("subscription") if s["id"] == sub_id]
    assert sub["status"] != "canceled"
    assert dbt_project.ledger("stripe_customers")["3"]["status"] == "synced"  # planned again next run

    # both models together: the subscription is cancelled as its model says, then the customer goes
    proc = dbt_project.sync("run", "-s", *CHAIN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _writes(emu) == [("DELETE", f"/v1/subscriptions/{sub_id}"), ("DELETE", f"/v1/customers/{cus_id}")]
    assert "held back" not in proc.stdout


def test_a_cancel_that_invoices_now_goes_before_new_pending_items(dbt_project):
    """Subscription s1 leaves (`always_invoice`: cancelled with invoice_now) while a new pending
    invoice item for the same customer arrives: as one sync at a time, the cancel is sent first, so the
    final invoice does not sweep in the new item (attack2 finding 8). The customer delete still goes last."""
    dbt_project.edit_schema_yml(
        "proration_behavior: create_prorations",
        "proration_behavior: always_invoice",
        file="models/billing.yml",
    )
    dbt_project.build()
    emu = dbt_project.emulator
    syncs = (*CHAIN, "stripe_invoices", "stripe_invoice_items")
    assert dbt_project.sync("run", "-s", *syncs).returncode == 0
    sub_id = dbt_project.ledger("stripe_subscriptions")["s1"]["stripe_id"]
    subs = dbt_project.read_seed("raw_subscriptions")
    dbt_project.write_seed("raw_subscriptions", [r for r in subs if r["subscription_key"] != "s1"])
    items = dbt_project.read_seed("raw_invoice_items")
    new_item = {**items[-1], "item_key": "ii9", "customer_email": "ada@example.com", "amount": "700"}
    dbt_project.write_seed("raw_invoice_items", [*items, new_item])
    dbt_project.build()
    emu.clear_requests()

    proc = dbt_project.sync("run", "-s", *syncs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _writes(emu) == [("DELETE", f"/v1/subscriptions/{sub_id}"), ("POST", "/v1/invoiceitems")]
    cancel = next(r for r in emu.requests() if r["method"] == "DELETE")
    assert cancel["params"].get("invoice_now") in (True, "true")


def test_a_subscriptions_model_removed_from_the_project_holds_no_delete(dbt_project):
    """The subscriptions model is disabled (gone from the project): its ledger rows can never be synced
    again, so they hold no customer delete (they used to hold it forever, naming a model that no longer
    exists); Stripe ends the subscription with the customer."""
    emu = dbt_project.emulator
    assert dbt_project.sync("run", "-s", *CHAIN).returncode == 0
    cus_id = dbt_project.ledger("stripe_customers")["3"]["stripe_id"]
    dbt_project.edit_schema_yml(
        "    description: Subscriptions with a plan item and an optional add-on item.\n    config:\n",
        "    description: Subscriptions with a plan item and an optional add-on item.\n    config:\n"
        "      enabled: false\n",
        file="models/billing.yml",
    )
    customers = dbt_project.read_seed("raw_customers")
    dbt_project.write_seed("raw_customers", [r for r in customers if r["user_id"] != "3"])
    dbt_project.build()
    emu.clear_requests()
    proc = dbt_project.sync("run", "-s", "stripe_customers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "held back" not in proc.stdout
    assert _writes(emu) == [("DELETE", f"/v1/customers/{cus_id}")]
