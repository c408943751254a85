"""Issue #10 reads: every GET a sync makes, counted exactly from the emulator's request log.

- `by: email` references to customers this tool synced are resolved from the ledger in SQL: 0 calls;
- other emails are looked up once per run, shared by every sync of the run;
- matching N new emails against a large account costs at most N + 1 list calls;
- a subscription items update sends its item IDs from the ledger: no GET first, and Stripe's answer
  repairs items changed outside the tool.
"""

from __future__ import annotations

from collections import Counter

import pytest

pytestmark = pytest.mark.timeout(300)


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _reads(emu) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if r["method"] == "GET"]


def _client(emu):
    import stripe

    return stripe.StripeClient("sk_test_outside", base_addresses={"api": emu.url}, max_network_retries=0)


def _fill_account(emu, n: int) -> None:
    """n customers created outside the tool, none with an email the models use (newest listed first)."""
    client = _client(emu)
    for i in range(n):
        client.v1.customers.create(params={"email": f"filler{i}@elsewhere.example"})


def test_chain_resolves_email_references_from_the_ledger_with_no_call(dbt_project):
    dbt_project.build()
    emu = dbt_project.emulator
    _ok(dbt_project.sync())
    # customers: one page of an empty account; products: one batched look-up of the chosen IDs;
    # subscriptions, invoices, invoice items and quotes name customers by email: all from the ledger.
    # Each other sync's first run (no ledger rows yet) lists its objects once to find any it created
    # before (its tag), an empty page here.
    scans = [
        ("GET", p)
        for p in ("/v1/prices", "/v1/subscriptions", "/v1/invoiceitems", "/v1/invoices", "/v1/quotes")
    ]
    assert sorted(_reads(emu)) == sorted([("GET", "/v1/customers"), ("GET", "/v1/products"), *scans])
    runs = dict(
        dbt_project.query(f"select sync_name, api_calls from {dbt_project.state_schema}.stripe_sync_runs")
    )
    writes = Counter(r["path"].split("/")[2] for r in emu.requests() if r["method"] == "POST")
    assert runs["stripe_subscriptions"] - 1 == writes["subscriptions"] == 3  # + its tag scan
    assert runs["stripe_quotes"] - 1 == writes["quotes"] == 2


def test_emails_not_synced_by_the_tool_are_looked_up_once_per_run(dbt_project):
    client = _client(dbt_project.emulator)
    emails = ("ada", "grace", "alan", "katherine", "edsger")
    outside = {e: client.v1.customers.create(params={"email": f"{e}@example.com"}).id for e in emails}
    _fill_account(dbt_project.emulator, 150)  # listed first: the first page holds none of the wanted
    dbt_project.build()
    emu = dbt_project.emulator
    emu.clear_requests()
    _ok(dbt_project.sync("-s", "tag:billing"))  # the chain without the customers sync

    customer_reads = [r for r in emu.requests() if r["method"] == "GET" and r["path"] == "/v1/customers"]
    by_email = Counter(r["params"].get("email") for r in customer_reads if r["params"].get("email"))
    # subscriptions (ada, grace, alan): one page, no hit, then one look-up each = 4 = N + 1;
    # quotes (sent in the same wave as subscriptions: + katherine, edsger): one page, two look-ups = 3;
    # invoice items (edsger) and invoices (the same three as subscriptions): 0 — each email once per run
    order = " ".join(str(r["params"].get("email", "page")) for r in customer_reads)
    assert len(customer_reads) == 7, order
    assert by_email == Counter({f"{e}@example.com": 1 for e in emails})
    subs = dbt_project.ledger("stripe_subscriptions")
    assert {k: v["status"] for k, v in subs.items()} == {"s1": "synced", "s2": "synced", "s3": "synced"}
    stripe_subs = {s["id"]: s for s in emu.objects("subscription")}
    assert stripe_subs[subs["s1"]["stripe_id"]]["customer"] == outside["ada"]


def test_matching_n_new_emails_costs_at_most_n_plus_one_reads(dbt_project):
    emu = dbt_project.emulator
    _fill_account(emu, 150)
    rows = dbt_project.read_seed("raw_customers")
    template = rows[0]
    dbt_project.write_seed(
        "raw_customers",
        [{**template, "user_id": str(100 + i), "email": f"new{i}@example.com"} for i in range(10)],
    )
    dbt_project.build()
    emu.clear_requests()
    _ok(dbt_project.sync("-s", "stripe_customers"))
    customer_reads = [r for r in emu.requests() if r["method"] == "GET"]
    assert len(customer_reads) == 11  # one page (no hit on it), then one look-up per email; was 2N - 1
    assert len([r for r in emu.requests() if r["method"] == "POST"]) == 10


def test_items_update_needs_no_read_and_repairs_items_changed_outside(dbt_project):
    emu = dbt_project.emulator
    dbt_project.build()
    _ok(dbt_project.sync())
    sub_id = dbt_project.ledger("stripe_subscriptions")["s1"]["stripe_id"]
    items = {s["id"]: s for s in emu.objects("subscription")}[sub_id]["items"]["data"]
    # someone removes the add-on item in the dashboard; the ledger still has its ID
    _client(emu).v1.subscriptions.update(sub_id, params={"items": [{"id": items[1]["id"], "deleted": True}]})
    rows = dbt_project.read_seed("raw_subscriptions")
    rows[0]["quantity"] = "2"
    dbt_project.write_seed("raw_subscriptions", rows)
    dbt_project.build()
    emu.clear_requests()

    _ok(dbt_project.sync())
    # one update with the kept IDs; Stripe's answer lacks the add-on, so one more puts it back; no GET
    assert [(r["method"], r["path"]) for r in emu.requests()] == [("POST", f"/v1/subscriptions/{sub_id}")] * 2
    now = {s["id"]: s for s in emu.objects("subscription")}[sub_id]["items"]["data"]
    prices = dbt_project.ledger("stripe_prices")
    assert [(i["price"]["id"], i["quantity"]) for i in now] == [
        (prices["pro_monthly"]["stripe_id"], 2),
        (prices["pro_seat"]["stripe_id"], 4),
    ]
    emu.clear_requests()
    _ok(dbt_project.sync())
    assert emu.requests() == []


def test_email_references_still_need_no_call_after_their_customers_were_updated(dbt_project):
    """An update keeps the customer's match email in the ledger (it used to keep only the mapped fields,
    so every later `by: email` look-up of an updated customer went to Stripe). The email here is only
    the match value, not a mapped field: the shape an outside tester found it with."""
    dbt_project.edit_schema_yml("            email: email\n", "")
    dbt_project.build()
    emu = dbt_project.emulator
    _ok(dbt_project.sync())
    rows = dbt_project.read_seed("raw_customers")
    for row in rows:
        row["full_name"] += " Jr."
    dbt_project.write_seed("raw_customers", rows)
    subs = dbt_project.read_seed("raw_subscriptions")
    s1 = next(r for r in subs if r["subscription_key"] == "s1")
    dbt_project.write_seed("raw_subscriptions", [*subs, {**s1, "subscription_key": "s4"}])  # Ada again
    dbt_project.build()
    emu.clear_requests()
    _ok(dbt_project.sync("-s", "stripe_customers"))  # every customer updated
    assert sum(1 for r in emu.requests() if r["method"] == "POST") == len(rows)
    emu.clear_requests()
    _ok(dbt_project.sync("-s", "stripe_subscriptions"))
    assert [r for r in _reads(emu) if r[1] == "/v1/customers"] == []  # Ada found in the ledger
    ada = dbt_project.ledger("stripe_customers")["1"]["stripe_id"]
    s4 = dbt_project.ledger("stripe_subscriptions")["s4"]["stripe_id"]
    assert {s["id"]: s["customer"] for s in emu.objects("subscription")}[s4] == ada
