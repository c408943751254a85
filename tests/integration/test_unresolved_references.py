"""A row rejected because a referenced object does not exist yet (no customer with its `by: email`
email, no synced row behind its `sync:` key) is re-planned on every run until the reference resolves,
then sent — not left rejected until its data changes (attack2 finding 6). Other rejected rows still
wait for a change. Counted from the emulator's request log, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytestmark = pytest.mark.timeout(300)

SEL = ("-s", "stripe_customers", "stripe_invoice_items")


def _calls(emu) -> Counter:
    return Counter((r["method"], r["path"], r["status"]) for r in emu.requests())


def test_an_item_rejected_for_a_missing_customer_is_created_once_the_customer_syncs(dbt_project, tmp_path):
    customers = dbt_project.read_seed("raw_customers")
    edsger = next(c for c in customers if c["email"] == "edsger@example.com")
    dbt_project.write_seed("raw_customers", [c for c in customers if c is not edsger])
    items = dbt_project.read_seed("raw_invoice_items")
    # ii4: a pending item for Edsger (no invoice, no price); ii5: rejected for its own data
    pending = next(i for i in items if i["item_key"] == "ii4")
    broken = {**pending, "item_key": "ii5", "customer_email": "ada@example.com", "currency": "US$"}
    dbt_project.write_seed("raw_invoice_items", [pending, broken])
    dbt_project.build()
    emu = dbt_project.emulator

    first = dbt_project.sync("run", *SEL)
    assert first.returncode == 1, first.stdout + first.stderr
    ledger = dbt_project.ledger("stripe_invoice_items")
    assert (ledger["ii4"]["status"], ledger["ii5"]["status"]) == ("rejected", "rejected")
    assert "no Stripe customer has email 'edsger@example.com'" in ledger["ii4"]["last_error"]
    assert not emu.objects("invoiceitem")

    # nothing changed: ii4 is looked up again (still no such customer), ii5 waits for a change
    emu.clear_requests()
    again = dbt_project.sync("run", *SEL)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "stripe_invoice_items row ii4: customer: no Stripe customer has email" in again.stdout
    assert "stripe_invoice_items row ii5: (rejected earlier)" in again.stdout
    assert _calls(emu) == Counter({("GET", "/v1/customers", 200): 1})  # Edsger's email, once

    # Edsger joins the customers model: plan predicts the item's create, and the run does it
    dbt_project.write_seed("raw_customers", customers)
    dbt_project.build()
    emu.clear_requests()
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "run.json"
    plan = dbt_project.sync("plan", *SEL, "--output", str(plan_file))
    assert plan.returncode == 1, plan.stdout + plan.stderr  # ii5 is still rejected
    assert "create   row ii4" in plan.stdout
    plan_calls = _calls(emu)
    emu.clear_requests()
    run = dbt_project.sync("run", *SEL, "--output", str(report_file))
    assert run.returncode == 1, run.stdout + run.stderr
    (item,) = emu.objects("invoiceitem")
    cus_id = dbt_project.ledger("stripe_customers")["5"]["stripe_id"]
    assert item["customer"] == cus_id and item["amount"] == 5000
    # Edsger's customer is looked up by email (customers match on email), created, then the item is
    # created with the ID the ledger now holds for that email: no look-up of its own
    assert _calls(emu) == Counter(
        {
            ("GET", "/v1/customers", 200): 1,
            ("POST", "/v1/customers", 200): 1,
            ("POST", "/v1/invoiceitems", 200): 1,
        }
    )
    planned = {s["model"]: s["counts"] for s in json.loads(plan_file.read_text())["syncs"]}
    done = {s["model"]: s["counts"] for s in json.loads(report_file.read_text())["syncs"]}
    assert done == planned
    assert done["stripe_invoice_items"]["created"] == 1 and done["stripe_invoice_items"]["rejected"] == 1
    # plan sends nothing, so Edsger is looked up for each sync (the item's customer is the one the
    # customers plan creates, as the run resolves it)
    assert plan_calls == Counter({("GET", "/v1/customers", 200): 2})
    ledger = dbt_project.ledger("stripe_invoice_items")
    assert (ledger["ii4"]["status"], ledger["ii5"]["status"]) == ("synced", "rejected")

    # ii5 fixed: exit 0, one write, nothing else re-sent
    dbt_project.write_seed("raw_invoice_items", [pending, {**broken, "currency": "usd"}])
    dbt_project.build()
    emu.clear_requests()
    fixed = dbt_project.sync("run", *SEL)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert _calls(emu) == Counter({("POST", "/v1/invoiceitems", 200): 1})
    emu.clear_requests()
    assert dbt_project.sync("run", *SEL).returncode == 0
    assert emu.requests() == []


def test_plan_predicts_the_create_of_a_row_waiting_for_a_sync_reference(dbt_project, tmp_path):
    """A `sync:` reject is re-planned too, so `plan` resolves it as the run does (it used to show
    `(rejected earlier)` while the run created the row)."""
    sel = ("-s", "stripe_customers", "stripe_invoices", "stripe_invoice_items")
    invoices = dbt_project.read_seed("raw_invoices")
    dbt_project.write_seed("raw_invoices", [i for i in invoices if i["invoice_key"] != "inv2"])
    items = dbt_project.read_seed("raw_invoice_items")
    ii3 = next(i for i in items if i["item_key"] == "ii3")  # on inv2; priced by amount, not a price
    dbt_project.write_seed(
        "raw_invoice_items", [{**ii3, "price_key": "", "amount": "900", "currency": "usd"}]
    )
    dbt_project.build()
    emu = dbt_project.emulator
    first = dbt_project.sync("run", *sel)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "no stripe_invoices row with key 'inv2' has been synced" in first.stdout

    dbt_project.write_seed("raw_invoices", invoices)
    dbt_project.build()
    emu.clear_requests()
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "run.json"
    plan = dbt_project.sync("plan", *sel, "--output", str(plan_file))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "create   row ii3" in plan.stdout and "rejected earlier" not in plan.stdout
    assert [r for r in emu.requests() if r["method"] != "GET"] == []
    run = dbt_project.sync("run", *sel, "--output", str(report_file))
    assert run.returncode == 0, run.stdout + run.stderr
    planned = {s["model"]: s["counts"] for s in json.loads(plan_file.read_text())["syncs"]}
    done = {s["model"]: s["counts"] for s in json.loads(report_file.read_text())["syncs"]}
    assert done == planned and done["stripe_invoice_items"]["created"] == 1
    inv2 = dbt_project.ledger("stripe_invoices")["inv2"]["stripe_id"]
    (item,) = emu.objects("invoiceitem")
    assert item["invoice"] == inv2
