"""Issue #4 acceptance: the billing chain (products -> prices -> subscriptions, invoices -> invoice items,
quotes) through the real dbt CLI, the real SDK and the emulator."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.dbt_project import api_writes

pytestmark = pytest.mark.timeout(300)

BILLING = ("stripe_products", "stripe_prices", "stripe_subscriptions", "stripe_invoices")
BILLING += ("stripe_invoice_items", "stripe_quotes")


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _live(emu, kind: str) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in emu.objects(kind) if not o.get("deleted")}


def _ids(project, sync: str) -> dict[str, str]:
    return {k: v["stripe_id"] for k, v in project.ledger(sync).items()}


def _write_counts(requests) -> Counter:
    """(method, resource) of each write, e.g. ("POST", "prices") — ids left out."""
    return Counter(
        (r["method"], "/".join(p for p in r["path"].split("/")[2:] if "_" not in p))
        for r in api_writes(requests)
    )


def test_chain_builds_with_cross_references_then_second_run_sends_nothing(dbt_project):
    dbt_project.build()
    emu = dbt_project.emulator
    _ok(dbt_project.sync())

    products, prices = _ids(dbt_project, "stripe_products"), _ids(dbt_project, "stripe_prices")
    subs, invoices = _ids(dbt_project, "stripe_subscriptions"), _ids(dbt_project, "stripe_invoices")
    items, quotes = _ids(dbt_project, "stripe_invoice_items"), _ids(dbt_project, "stripe_quotes")
    customers = {c["email"]: c["id"] for c in emu.objects("customer")}

    # Products under the IDs the model chose; prices on them.
    assert products == {k: f"prod_dss_{k}" for k in ("basic", "pro", "setup", "legacy")}
    stripe_prices = _live(emu, "price")
    assert {stripe_prices[prices[k]]["product"] for k in prices} == {
        "prod_dss_basic",
        "prod_dss_pro",
        "prod_dss_setup",
    }
    assert stripe_prices[prices["pro_monthly"]]["unit_amount"] == 5000
    assert stripe_prices[prices["pro_monthly"]]["recurring"]["interval"] == "month"
    assert stripe_prices[prices["setup_fee"]]["type"] == "one_time"
    tagged = [
        o
        for kind in ("product", "price", "subscription", "invoice", "invoiceitem", "quote")
        for o in emu.objects(kind)
    ]
    assert all(o["metadata"].get("dbt_stripe_sync") for o in tagged)

    # Subscriptions: the customer by email, items through the price ledger.
    stripe_subs = _live(emu, "subscription")
    ada = stripe_subs[subs["s1"]]
    assert ada["customer"] == customers["ada@example.com"]
    assert [(i["price"]["id"], i["quantity"]) for i in ada["items"]["data"]] == [
        (prices["pro_monthly"], 1),
        (prices["pro_seat"], 4),
    ]
    assert ada["metadata"]["deal"] == "enterprise deal"
    grace = stripe_subs[subs["s2"]]
    assert [(i["price"]["id"], i["quantity"]) for i in grace["items"]["data"]] == [
        (prices["basic_monthly"], 2)
    ]

    # Invoices with their custom field; items on them (or pending), priced by price or amount.
    stripe_invoices = _live(emu, "invoice")
    inv1 = stripe_invoices[invoices["inv1"]]
    assert inv1["customer"] == customers["ada@example.com"]
    assert inv1["collection_method"] == "send_invoice"
    assert inv1["total"] == 25000 + 12000
    stripe_items = _live(emu, "invoiceitem")
    assert stripe_items[items["ii1"]]["invoice"] == invoices["inv1"]
    assert stripe_items[items["ii1"]]["pricing"]["price_details"]["price"] == prices["setup_fee"]
    assert stripe_items[items["ii2"]]["amount"] == 12000
    assert stripe_items[items["ii4"]]["invoice"] is None
    # The emulator does not keep custom_fields, so read what was sent: a list of name/value pairs,
    # and none for the invoice without a PO number.
    sent = [r["params"] for r in emu.requests() if r["method"] == "POST" and r["path"] == "/v1/invoices"]
    assert sorted(str(p.get("custom_fields")) for p in sent) == sorted(
        [
            str({"0": {"name": "PO number", "value": "PO-1001"}}),
            str({"0": {"name": "PO number", "value": "PO-2002"}}),
            "None",
        ]
    )

    # Quotes with their line items.
    stripe_quotes = _live(emu, "quote")
    assert stripe_quotes[quotes["q1"]]["customer"] == customers["katherine@example.com"]
    assert stripe_quotes[quotes["q1"]]["amount_total"] == 3 * 5000

    # Exactly one write per row (plus the customers), nothing else.
    rows = {
        name: len(dbt_project.read_seed(seed))
        for name, seed in (
            ("products", "raw_products"),
            ("prices", "raw_prices"),
            ("subscriptions", "raw_subscriptions"),
            ("invoices", "raw_invoices"),
            ("invoiceitems", "raw_invoice_items"),
            ("quotes", "raw_quotes"),
            ("customers", "raw_customers"),
        )
    }
    assert _write_counts(emu.requests()) == Counter({("POST", k): n for k, n in rows.items()})
    for sync in BILLING:
        assert {v["status"] for v in dbt_project.ledger(sync).values()} == {"synced"}, sync

    emu.clear_requests()
    _ok(dbt_project.sync())
    assert emu.requests() == []  # nothing changed: no write, not even a look-up
    plan = _ok(dbt_project.sync("plan"))
    assert plan.count("nothing to do") == len(BILLING) + 1


def _edit_seed(project, seed: str, key_column: str, key: str, **changes: str) -> None:
    rows = project.read_seed(seed)
    for row in rows:
        if row[key_column] == key:
            row.update(changes)
    project.write_seed(seed, rows)


def _drop_rows(project, seed: str, key_column: str, *keys: str) -> None:
    project.write_seed(seed, [r for r in project.read_seed(seed) if r[key_column] not in keys])


@pytest.mark.parametrize("on_price_change", ["replace", "reject"])
def test_price_amount_change(dbt_project, on_price_change):
    emu = dbt_project.emulator
    if on_price_change == "reject":
        billing = "models/billing.yml"
        dbt_project.edit_schema_yml("on_price_change: replace", "on_price_change: reject", file=billing)
    dbt_project.build()
    _ok(dbt_project.sync())
    old = _ids(dbt_project, "stripe_prices")["pro_monthly"]
    sub_id = _ids(dbt_project, "stripe_subscriptions")["s1"]
    item_ids = [i["id"] for i in _live(emu, "subscription")[sub_id]["items"]["data"]]
    _edit_seed(dbt_project, "raw_prices", "price_key", "pro_monthly", unit_amount="6000")
    dbt_project.build()
    emu.clear_requests()

    result = dbt_project.sync()
    ledger = dbt_project.ledger("stripe_prices")["pro_monthly"]
    prices = _live(emu, "price")
    if on_price_change == "reject":
        assert result.returncode == 1
        assert "unit_amount cannot be changed on an existing Stripe price" in result.stdout
        assert api_writes(emu.requests()) == []
        assert (ledger["status"], ledger["stripe_id"]) == ("rejected", old)
        assert prices[old]["unit_amount"] == 5000 and prices[old]["active"] is True
        return
    _ok(result)
    new = ledger["stripe_id"]
    assert new != old and ledger["status"] == "synced"
    assert (prices[new]["unit_amount"], prices[new]["active"]) == (6000, True)
    assert prices[new]["product"] == prices[old]["product"] == "prod_dss_pro"
    assert prices[old]["active"] is False
    # The subscription and the quote reference the price through `sync:`, so they follow it: the
    # subscription's item keeps its ID and gets the new price (the item IDs come from the ledger: no read).
    sub = _live(emu, "subscription")[sub_id]
    assert [i["id"] for i in sub["items"]["data"]] == item_ids
    assert [i["price"]["id"] for i in sub["items"]["data"]] == [new, prices_key(dbt_project, "pro_seat")]
    quote = _live(emu, "quote")[_ids(dbt_project, "stripe_quotes")["q1"]]
    assert quote["amount_total"] == 3 * 6000
    assert _write_counts(emu.requests()) == Counter(
        {("POST", "prices"): 2, ("POST", "subscriptions"): 1, ("POST", "quotes"): 1}
    )
    assert [r["method"] for r in emu.requests() if r["path"] == f"/v1/subscriptions/{sub_id}"] == ["POST"]

    emu.clear_requests()
    _ok(dbt_project.sync())
    assert emu.requests() == []


def prices_key(project, key: str) -> str:
    return _ids(project, "stripe_prices")[key]


def test_deletes_follow_stripe_rules_and_show_in_plan(dbt_project):
    emu = dbt_project.emulator
    dbt_project.build()
    _ok(dbt_project.sync())
    ids = {sync: _ids(dbt_project, sync) for sync in BILLING}
    import stripe

    client = stripe.StripeClient("sk_test_outside", base_addresses={"api": emu.url}, max_network_retries=0)
    client.v1.invoices.finalize_invoice(ids["stripe_invoices"]["inv1"])  # finalized outside the tool

    _drop_rows(dbt_project, "raw_products", "product_key", "legacy", "setup")
    _drop_rows(dbt_project, "raw_prices", "price_key", "setup_fee")
    _drop_rows(dbt_project, "raw_subscriptions", "subscription_key", "s3")
    _drop_rows(dbt_project, "raw_invoices", "invoice_key", "inv1", "inv3")
    _drop_rows(dbt_project, "raw_invoice_items", "item_key", "ii1", "ii2", "ii3", "ii4")
    _drop_rows(dbt_project, "raw_quotes", "quote_key", "q2")
    dbt_project.build()
    emu.clear_requests()

    # Every invoice item leaves the model, more than the default guard allows.
    guard = ("--vars", "{dbt_stripe_sync: {max_delete_fraction: 1, allow_empty_model_deletes: true}}")
    plan = _ok(dbt_project.sync("plan", *guard))
    assert api_writes(emu.requests()) == []
    for text in (
        "delete the product, or archive it (active=false) if it has prices",
        "archive (active=false): Stripe cannot delete prices",
        "cancel the subscription (prorated: unused time is credited)",
        "delete while draft; void once finalized (void_finalized: true)",
        "delete when pending or on a draft invoice; otherwise left",
        "cancel the quote",
    ):
        assert text in plan, text
    emu.clear_requests()

    _ok(dbt_project.sync(*guard))
    writes = [(r["method"], r["path"]) for r in api_writes(emu.requests())]
    assert sorted(writes) == sorted(
        [
            ("DELETE", "/v1/products/prod_dss_legacy"),
            ("POST", "/v1/products/prod_dss_setup"),
            ("POST", f"/v1/prices/{ids['stripe_prices']['setup_fee']}"),
            ("DELETE", f"/v1/subscriptions/{ids['stripe_subscriptions']['s3']}"),
            ("POST", f"/v1/invoices/{ids['stripe_invoices']['inv1']}/void"),
            ("DELETE", f"/v1/invoices/{ids['stripe_invoices']['inv3']}"),
            ("DELETE", f"/v1/invoiceitems/{ids['stripe_invoice_items']['ii3']}"),
            ("DELETE", f"/v1/invoiceitems/{ids['stripe_invoice_items']['ii4']}"),
            ("POST", f"/v1/quotes/{ids['stripe_quotes']['q2']}/cancel"),
        ]
    )
    cancel = next(r for r in emu.requests() if r["method"] == "DELETE" and "/subscriptions/" in r["path"])
    assert {k: str(v).lower() for k, v in cancel["params"].items()} == {
        "prorate": "true",
        "invoice_now": "false",
    }

    # What Stripe holds now.
    products = _live(emu, "product")
    assert "prod_dss_legacy" not in products and products["prod_dss_setup"]["active"] is False
    assert _live(emu, "price")[ids["stripe_prices"]["setup_fee"]]["active"] is False
    assert _live(emu, "subscription")[ids["stripe_subscriptions"]["s3"]]["status"] == "canceled"
    invoices = _live(emu, "invoice")
    assert invoices[ids["stripe_invoices"]["inv1"]]["status"] == "void"
    assert ids["stripe_invoices"]["inv3"] not in invoices
    assert set(_live(emu, "invoiceitem")) == {ids["stripe_invoice_items"][k] for k in ("ii1", "ii2")}
    assert _live(emu, "quote")[ids["stripe_quotes"]["q2"]]["status"] == "canceled"

    # And what the ledger says about each.
    def status(sync: str, key: str) -> str:
        return dbt_project.ledger(sync)[key]["status"]

    assert status("stripe_products", "legacy") == "deleted"
    assert status("stripe_products", "setup") == "archived"
    assert status("stripe_prices", "setup_fee") == "archived"
    assert status("stripe_subscriptions", "s3") == "deleted"
    assert status("stripe_invoices", "inv1") == status("stripe_invoices", "inv3") == "deleted"
    items = dbt_project.ledger("stripe_invoice_items")
    assert [items[k]["status"] for k in ("ii1", "ii2", "ii3", "ii4")] == [
        "left",
        "left",
        "deleted",
        "deleted",
    ]
    assert (
        "Stripe deletes invoice items only while pending or on a draft invoice" in items["ii1"]["last_error"]
    )
    assert status("stripe_quotes", "q2") == "deleted"
    # the rows that stay are untouched
    assert {v["status"] for k, v in dbt_project.ledger("stripe_subscriptions").items() if k != "s3"} == {
        "synced"
    }

    emu.clear_requests()
    _ok(dbt_project.sync(*guard))
    assert emu.requests() == []  # a row left alone is not retried


def test_unresolvable_or_incomplete_rows_are_rejected_and_the_rest_syncs(dbt_project):
    emu = dbt_project.emulator
    subs = dbt_project.read_seed("raw_subscriptions")
    subs.append(
        {
            "subscription_key": "s4",
            "customer_email": "nobody@example.com",
            "price_key": "pro_monthly",
            "quantity": "1",
        }
    )
    subs.append(
        {
            "subscription_key": "s5",
            "customer_email": "grace@example.com",
            "price_key": "no_such_price",
            "quantity": "1",
        }
    )
    dbt_project.write_seed("raw_subscriptions", subs)
    prices = dbt_project.read_seed("raw_prices")
    prices.append(
        {"price_key": "free_tier", "product_key": "basic", "currency": "usd", "billing_interval": "month"}
    )
    dbt_project.write_seed("raw_prices", prices)
    quotes = dbt_project.read_seed("raw_quotes")
    quotes.append({"quote_key": "q3", "customer_email": "ada@example.com", "header": "No lines yet"})
    dbt_project.write_seed("raw_quotes", quotes)
    dbt_project.build()

    result = dbt_project.sync()
    assert result.returncode == 1, result.stdout + result.stderr
    expected = {
        ("stripe_subscriptions", "s4"): "customer: no Stripe customer has email 'nobody@example.com'",
        (
            "stripe_subscriptions",
            "s5",
        ): "items[0].price: no stripe_prices row with key 'no_such_price' has been synced",
        (
            "stripe_prices",
            "free_tier",
        ): "a price needs unit_amount, unit_amount_decimal, custom_unit_amount or tiers",
        ("stripe_quotes", "q3"): "line_items: at least one entry is required",
    }
    for (sync, key), reason in expected.items():
        entry = dbt_project.ledger(sync)[key]
        assert entry["status"] == "rejected" and entry["stripe_id"] is None, (sync, key)
        assert reason in entry["last_error"], entry["last_error"]
        assert f"{sync} row {key}: {reason}" in result.stdout
    # Nothing half-filled reached Stripe, and every other row did.
    assert (
        len(_live(emu, "subscription")) == 3
        and len(_live(emu, "quote")) == 2
        and len(_live(emu, "price")) == 4
    )
    for sync in BILLING:
        others = {k: v for k, v in dbt_project.ledger(sync).items() if (sync, k) not in expected}
        assert {v["status"] for v in others.values()} == {"synced"}, sync

    # A rejected row is retried once it changes: s5 now names a synced price.
    _edit_seed(dbt_project, "raw_subscriptions", "subscription_key", "s5", price_key="pro_seat")
    dbt_project.build()
    emu.clear_requests()
    rerun = dbt_project.sync()  # unchanged rejected rows are not re-tried, but still counted
    assert rerun.returncode == 1 and "row(s) rejected by earlier runs are still not in Stripe" in rerun.stdout
    assert _write_counts(emu.requests()) == Counter({("POST", "subscriptions"): 1})
    ledger = dbt_project.ledger("stripe_subscriptions")
    assert (ledger["s5"]["status"], ledger["s4"]["status"]) == ("synced", "rejected")


@pytest.mark.parametrize("mode", ["update", "insert"])
def test_product_modes_match_on_the_stripe_id(dbt_project, mode):
    emu = dbt_project.emulator
    import stripe

    client = stripe.StripeClient("sk_test_outside", base_addresses={"api": emu.url}, max_network_retries=0)
    client.v1.products.create(params={"id": "prod_dss_basic", "name": "Old name"})
    billing = "models/billing.yml"
    dbt_project.edit_schema_yml(
        "mode: upsert\n          primary_key: product_key",
        f"mode: {mode}\n          primary_key: product_key",
        billing,
    )
    dbt_project.edit_schema_yml(
        "metadata.tier: tier\n          delete: delete\n", "metadata.tier: tier\n", billing
    )
    dbt_project.build("+stripe_products")
    emu.clear_requests()

    result = dbt_project.sync("-s", "stripe_products")
    products = _live(emu, "product")
    ledger = dbt_project.ledger("stripe_products")
    reads = [(r["method"], r["path"]) for r in emu.requests() if r["method"] == "GET"]
    assert reads == [("GET", "/v1/products")]  # which match IDs exist: one batched list
    if mode == "update":
        assert result.returncode == 1
        assert products["prod_dss_basic"]["name"] == "Basic plan"
        assert set(products) == {"prod_dss_basic"}
        assert [(r["method"], r["path"]) for r in api_writes(emu.requests())] == [
            ("POST", "/v1/products/prod_dss_basic")
        ]
        assert ledger["pro"]["status"] == "rejected"
        assert "update mode: no Stripe product found for id 'prod_dss_pro'" in ledger["pro"]["last_error"]
    else:
        _ok(result)
        assert products["prod_dss_basic"]["name"] == "Old name"  # insert never updates
        assert set(products) == {f"prod_dss_{k}" for k in ("basic", "pro", "setup", "legacy")}
        assert _write_counts(emu.requests()) == Counter({("POST", "products"): 3})
        assert products["prod_dss_pro"]["metadata"]["tier"] == "pro"
    assert ledger["basic"]["stripe_id"] == "prod_dss_basic" and ledger["basic"]["status"] == "synced"


def test_subscription_items_update_in_place(dbt_project):
    emu = dbt_project.emulator
    dbt_project.build()
    _ok(dbt_project.sync())
    subs, prices = _ids(dbt_project, "stripe_subscriptions"), _ids(dbt_project, "stripe_prices")
    before = {k: _live(emu, "subscription")[subs[k]]["items"]["data"] for k in ("s1", "s2")}
    # s1: more seats on the plan, add-on dropped; s2: an add-on item added
    _edit_seed(
        dbt_project,
        "raw_subscriptions",
        "subscription_key",
        "s1",
        quantity="2",
        addon_price_key="",
        addon_quantity="",
    )
    _edit_seed(
        dbt_project,
        "raw_subscriptions",
        "subscription_key",
        "s2",
        addon_price_key="pro_seat",
        addon_quantity="1",
    )
    dbt_project.build()
    emu.clear_requests()

    _ok(dbt_project.sync())
    sent = {r["path"].rsplit("/", 1)[1]: r["params"] for r in api_writes(emu.requests())}
    assert set(sent) == {subs["s1"], subs["s2"]}
    # the item IDs come from the ledger: an items update is one request, no read first
    # (two writes in flight at once: in whichever order they arrive)
    assert sorted((r["method"], r["path"]) for r in emu.requests()) == sorted(
        [("POST", f"/v1/subscriptions/{subs['s1']}"), ("POST", f"/v1/subscriptions/{subs['s2']}")]
    )
    assert sent[subs["s1"]]["items"] == {
        "0": {"id": before["s1"][0]["id"], "quantity": "2"},
        "1": {"id": before["s1"][1]["id"], "deleted": "true"},
    }
    assert sent[subs["s2"]]["items"] == {"0": {"price": prices["pro_seat"], "quantity": "1"}}
    now = _live(emu, "subscription")
    assert [(i["id"], i["price"]["id"], i["quantity"]) for i in now[subs["s1"]]["items"]["data"]] == [
        (before["s1"][0]["id"], prices["pro_monthly"], 2)
    ]
    assert [(i["price"]["id"], i["quantity"]) for i in now[subs["s2"]]["items"]["data"]] == [
        (prices["basic_monthly"], 2),
        (prices["pro_seat"], 1),
    ]
    assert now[subs["s2"]]["items"]["data"][0]["id"] == before["s2"][0]["id"]

    emu.clear_requests()
    _ok(dbt_project.sync())
    assert emu.requests() == []
